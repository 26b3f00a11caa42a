/* CTC speech model: the convolutional subsampling stem, the backbone and the CTC head. */
#include "ctc.h"
#include "activation.h"
#include "conv.h"
#include "elementwise.h"
#include "matmul.h"
#include "shape.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int conv_len(int n) { return n >= 3 ? (n - 3) / 2 + 1 : 0; }

int imb_ctc_subsampled_len(int frames) { return conv_len(conv_len(frames)); }

/* PyTorch's default for Conv2d and Linear (kaiming_uniform with a = sqrt(5)): U(+-1/sqrt(fan_in))
 * for weights and biases alike */
static imb_tensor *torch_param(imb_ctx *ctx, const char *prefix, const char *name, int ndim, const int64_t *shape,
                               int64_t fan_in, int decay) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    return imb_param_new(ctx, full, ndim, shape, IMB_INIT_UNIFORM, (float)(1.0 / sqrt((double)fan_in)), decay);
}

imb_ctc_stem *imb_ctc_stem_create(imb_ctx *ctx, const char *prefix, int mel, int channels, int dim) {
    if (!imb_ok(ctx)) return NULL;
    if (mel < 7 || channels < 1 || dim < 2) {
        imb_fail(ctx, "ctc stem: need mel >= 7, channels >= 1, dim >= 2 (got %d, %d, %d)", mel, channels, dim);
        return NULL;
    }
    imb_ctc_stem *s = calloc(1, sizeof *s);
    if (!s) { imb_fail(ctx, "ctc stem: out of host memory"); return NULL; }
    s->mel = mel;
    s->channels = channels;
    s->dim = dim;
    s->freq_out = imb_ctc_subsampled_len(mel);
    int64_t C = channels, F = s->freq_out;
    char p[96];
    snprintf(p, sizeof p, "%s.conv", prefix);
    s->conv1_w = torch_param(ctx, p, "0.weight", 4, IMB_SHAPE(C, 1, 3, 3), 9, 1);
    s->conv1_b = torch_param(ctx, p, "0.bias", 1, IMB_SHAPE(C), 9, 0);
    s->conv2_w = torch_param(ctx, p, "2.weight", 4, IMB_SHAPE(C, C, 3, 3), 9 * C, 1);
    s->conv2_b = torch_param(ctx, p, "2.bias", 1, IMB_SHAPE(C), 9 * C, 0);
    snprintf(p, sizeof p, "%s.out", prefix);
    s->out_w = torch_param(ctx, p, "0.weight", 2, IMB_SHAPE(dim, C * F), C * F, 1);
    s->out_b = torch_param(ctx, p, "0.bias", 1, IMB_SHAPE(dim), C * F, 0);
    if (!imb_ok(ctx)) { free(s); return NULL; }
    return s;
}

/* ESPnet's PositionalEncoding: pe[t, 2i] = sin(t / 10000^(2i/d)), pe[t, 2i+1] = cos(same) */
static imb_tensor *sinusoids(imb_ctx *ctx, int64_t T, int64_t d) {
    float *h = malloc(sizeof *h * (size_t)(T * d));
    if (!h) { imb_fail(ctx, "ctc stem: out of host memory"); return NULL; }
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < d; i += 2) {
            double a = (double)t * exp(-(double)i * log(10000.0) / (double)d);
            h[t * d + i] = (float)sin(a);
            if (i + 1 < d) h[t * d + i + 1] = (float)cos(a);
        }
    imb_tensor *pe = imb_input(ctx, IMB_F32, 2, IMB_SHAPE(T, d), h);
    free(h);
    return pe;
}

imb_tensor *imb_ctc_stem_forward(imb_ctx *ctx, const imb_ctc_stem *s, imb_tensor *feats, const int32_t *len,
                                 int32_t *out_len, imb_tensor **mask) {
    if (mask) *mask = NULL;
    if (!imb_ok(ctx)) return NULL;
    if (!s || !feats || feats->ndim != 3 || feats->shape[2] != s->mel) {
        char b[64];
        imb_fail(ctx, "ctc stem: features must be [B, T, %d], got %s", s ? s->mel : 0,
                 feats ? imb_shape_str(feats, b, sizeof b) : "NULL");
        return NULL;
    }
    int64_t B = feats->shape[0], T = feats->shape[1], C = s->channels, F = s->freq_out;
    int T1 = conv_len((int)T), T2 = imb_ctc_subsampled_len((int)T), F1 = conv_len(s->mel), padded = 0;
    for (int64_t b = 0; b < B; b++) {
        if (len[b] < 7 || len[b] > T) {
            imb_fail(ctx, "ctc stem: utterance %lld has %d frames; the stem needs 7 .. %lld (the batch's frames)",
                     (long long)b, len[b], (long long)T);
            return NULL;
        }
        out_len[b] = imb_ctc_subsampled_len(len[b]);
        padded |= out_len[b] < T2;
    }
    imb_tensor *x = imb_reshape(ctx, feats, 4, IMB_SHAPE(B, 1, T, s->mel));
    x = imb_gelu(ctx, imb_patch_embed(ctx, x, s->conv1_w, s->conv1_b, 2, 0));   /* [B, T1*F1, C] */
    /* tokens back to an NCHW image for the second conv */
    x = imb_reshape(ctx, imb_permute(ctx, x, (const int[]){ 0, 2, 1 }), 4, IMB_SHAPE(B, C, T1, F1));
    x = imb_gelu(ctx, imb_patch_embed(ctx, x, s->conv2_w, s->conv2_b, 2, 0));   /* [B, T2*F, C] */
    x = imb_linear(ctx, imb_reshape(ctx, x, 3, IMB_SHAPE(B, T2, F * C)), s->out_w, s->out_b);
    x = imb_add(ctx, imb_scale(ctx, x, sqrtf((float)s->dim)), sinusoids(ctx, T2, s->dim));
    if (mask && padded && x) {
        float *h = malloc(sizeof *h * (size_t)(B * T2));
        if (!h) { imb_fail(ctx, "ctc stem: out of host memory"); return NULL; }
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T2; t++) h[b * T2 + t] = t < out_len[b] ? 1.0f : 0.0f;
        *mask = imb_input(ctx, IMB_F32, 2, IMB_SHAPE(B, T2), h);
        free(h);
    }
    return imb_ok(ctx) ? x : NULL;
}

imb_ctc_model *imb_ctc_model_create(imb_ctx *ctx, const imb_backbone_cfg *cfg_in, int mel, int stem_channels, int nsym,
                                    int causal) {
    if (!imb_ok(ctx)) return NULL;
    if (nsym < 2) { imb_fail(ctx, "ctc: need >= 2 symbols (got %d)", nsym); return NULL; }
    imb_ctc_model *m = calloc(1, sizeof *m);
    if (!m) { imb_fail(ctx, "ctc: out of host memory"); return NULL; }
    imb_backbone_cfg cfg = *cfg_in;
    imb_backbone_isotropic(&cfg);
    cfg.causal = causal;
    cfg.cls_token = 0;   /* every frame is a token CTC labels */
    cfg.pos_embed = 0;   /* the stem adds sinusoids: learned positions would tie the model to one length */
    cfg.nclasses = 0;    /* no one-label-per-sample losses */
    m->nsym = nsym;
    int C = cfg.dims[0];
    m->stem = imb_ctc_stem_create(ctx, "encoder.embed", mel, stem_channels, C);
    m->bb = imb_backbone_create(ctx, &cfg);
    m->head_w = imb_param_new(ctx, "ctc.ctc_lo.weight", 2, IMB_SHAPE(nsym, C), IMB_INIT_TRUNC_NORMAL, cfg.init_std, 1);
    m->head_b = imb_param_new(ctx, "ctc.ctc_lo.bias", 1, IMB_SHAPE(nsym), IMB_INIT_ZEROS, 0, 0);
    if (!imb_ok(ctx)) { imb_ctc_model_free(m); return NULL; }
    return m;
}

void imb_ctc_model_free(imb_ctc_model *m) {
    if (!m) return;
    free(m->stem);
    imb_backbone_free(m->bb);
    free(m);
}

imb_tensor *imb_ctc_model_forward(imb_ctx *ctx, imb_ctc_model *m, imb_tensor *feats, const int32_t *len,
                                  int32_t *out_len) {
    imb_grid g = { 0, 1, NULL };
    imb_tensor *x = imb_ctc_stem_forward(ctx, m->stem, feats, len, out_len, &g.mask);
    if (!x) return NULL;
    g.H = (int)x->shape[1];
    imb_backbone_out out;
    if (imb_backbone_forward(ctx, m->bb, x, g, &out)) return NULL;
    return imb_linear(ctx, out.feats[out.nstages - 1], m->head_w, m->head_b);
}
