/* imb_logits: run an image-classification model on raw float input and write its logits
 * (for golden checks against timm: bench/vit_timm.py). */
#include "checkpoint.h"
#include "imagecls.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void) {
    fprintf(stderr, "usage: imb_logits --backbone B --weights W.safetensors --input X.f32 --output Y.f32\n"
                    "                  --batch N --res R [--channels 3] [--patch 16] [--classes 1000] [--device cpu|cuda]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *bb = NULL, *weights = NULL, *in = NULL, *outp = NULL, *dev = "cpu";
    int batch = 0, res = 0, channels = 3, patch = 16, classes = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--backbone")) bb = v;
        else if (!strcmp(k, "--weights")) weights = v;
        else if (!strcmp(k, "--input")) in = v;
        else if (!strcmp(k, "--output")) outp = v;
        else if (!strcmp(k, "--device")) dev = v;
        else if (!strcmp(k, "--batch")) batch = atoi(v);
        else if (!strcmp(k, "--res")) res = atoi(v);
        else if (!strcmp(k, "--channels")) channels = atoi(v);
        else if (!strcmp(k, "--patch")) patch = atoi(v);
        else if (!strcmp(k, "--classes")) classes = atoi(v);
        else return usage();
    }
    if (!bb || !weights || !in || !outp || batch < 1 || res < 1) return usage();
    char err[1024];
    imb_backbone_cfg cfg;
    if (imb_backbone_parse(bb, &cfg, err, sizeof err)) { fprintf(stderr, "imb_logits: %s\n", err); return 1; }
    imb_ctx *ctx = imb_ctx_new(!strcmp(dev, "cuda") ? IMB_CUDA : IMB_CPU, 0, err, sizeof err);
    if (!ctx) { fprintf(stderr, "imb_logits: %s\n", err); return 1; }
    imb_imagecls *m = imb_imagecls_create(ctx, &cfg, channels, res, patch, classes);
    if (!m || imb_params_alloc(ctx)) { fprintf(stderr, "imb_logits: %s\n", imb_error(ctx)); return 1; }
    if (imb_ckpt_load_weights(ctx, weights, err, sizeof err)) { fprintf(stderr, "imb_logits: %s\n", err); return 1; }
    size_t n = (size_t)batch * channels * res * res;
    float *x = malloc(n * sizeof *x), *y = malloc((size_t)batch * classes * sizeof *y);
    FILE *f = fopen(in, "rb");
    if (!f || fread(x, sizeof *x, n, f) != n) { fprintf(stderr, "imb_logits: %s: expected %zu floats\n", in, n); return 1; }
    fclose(f);
    imb_step_begin(ctx, 0);
    imb_tensor *logits = imb_imagecls_forward(ctx, m, imb_input(ctx, IMB_F32, 4, IMB_SHAPE(batch, channels, res, res), x));
    if (!logits || imb_to_host(ctx, logits, y, 0)) { fprintf(stderr, "imb_logits: %s\n", imb_error(ctx)); return 1; }
    f = fopen(outp, "wb");
    if (!f || fwrite(y, sizeof *y, (size_t)batch * classes, f) != (size_t)batch * classes) {
        fprintf(stderr, "imb_logits: cannot write %s\n", outp);
        return 1;
    }
    fclose(f);
    free(x); free(y);
    imb_imagecls_free(m);
    imb_ctx_free(ctx);
    return 0;
}
