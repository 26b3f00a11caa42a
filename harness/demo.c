/* The embedded demo: two-spirals classification with a 3-layer GELU MLP. */
#include "demo.h"
#include "activation.h"
#include "ctx.h"
#include "loss.h"
#include "matmul.h"
#include "optim.h"
#include "rng.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

imb_demo_cfg imb_demo_defaults(void) { return (imb_demo_cfg){ 1500, 128, 64, 1e-2f, 1e-4f, 42 }; }

/* point i of a stream: class = i % 2, radius and angle along an arm, small noise */
static void spiral_point(uint64_t seed, uint64_t stream, uint64_t i, float *xy, int32_t *label) {
    int c = (int)(i % 2);
    float t = imb_rng_uniform(seed, stream, 3 * i);
    float r = 0.15f + 0.85f * t, a = 3.0f * (float)M_PI * t + (float)M_PI * (float)c;
    xy[0] = r * cosf(a) + 0.02f * imb_rng_normal(seed, stream, 3 * i + 1);
    xy[1] = r * sinf(a) + 0.02f * imb_rng_normal(seed, stream, 3 * i + 2);
    *label = c;
}

typedef struct { imb_tensor *w1, *b1, *w2, *b2, *w3, *b3; } mlp;

static imb_tensor *mlp_forward(imb_ctx *ctx, const mlp *m, imb_tensor *x) {
    imb_tensor *h = imb_gelu(ctx, imb_linear(ctx, x, m->w1, m->b1));
    h = imb_gelu(ctx, imb_linear(ctx, h, m->w2, m->b2));
    return imb_linear(ctx, h, m->w3, m->b3);
}

int imb_demo_mlp(const imb_demo_cfg *cfg, double *accuracy, double *final_loss, FILE *log, char *err, size_t errn) {
    imb_ctx *ctx = imb_ctx_new(IMB_CPU, cfg->seed, err, errn);
    if (!ctx) return -1;
    int H = cfg->hidden, B = cfg->batch;
    mlp m = {
        imb_param_new(ctx, "fc1.weight", 2, IMB_SHAPE(H, 2), IMB_INIT_TRUNC_NORMAL, 1.0f, 1),
        imb_param_new(ctx, "fc1.bias", 1, IMB_SHAPE(H), IMB_INIT_ZEROS, 0, 0),
        imb_param_new(ctx, "fc2.weight", 2, IMB_SHAPE(H, H), IMB_INIT_TRUNC_NORMAL, 1.0f / sqrtf((float)H), 1),
        imb_param_new(ctx, "fc2.bias", 1, IMB_SHAPE(H), IMB_INIT_ZEROS, 0, 0),
        imb_param_new(ctx, "head.weight", 2, IMB_SHAPE(2, H), IMB_INIT_TRUNC_NORMAL, 0.02f, 1),
        imb_param_new(ctx, "head.bias", 1, IMB_SHAPE(2), IMB_INIT_ZEROS, 0, 0),
    };
    imb_params_alloc(ctx);
    imb_adamw opt = imb_adamw_default(cfg->weight_decay);
    float *xy = malloc(sizeof *xy * 2 * (size_t)(B > 2000 ? B : 2000));
    int32_t *lab = malloc(sizeof *lab * (size_t)(B > 2000 ? B : 2000));
    double loss = NAN;
    for (int step = 0; step < cfg->steps && imb_ok(ctx); step++) {
        for (int i = 0; i < B; i++) spiral_point(cfg->seed, 1, (uint64_t)step * (uint64_t)B + (uint64_t)i, xy + 2 * i, lab + i);
        imb_step_begin(ctx, 1);
        imb_params_zero_grad(ctx);
        imb_tensor *x = imb_input(ctx, IMB_F32, 2, IMB_SHAPE(B, 2), xy);
        imb_tensor *y = imb_input(ctx, IMB_I32, 1, IMB_SHAPE(B), lab);
        imb_tensor *l = imb_cross_entropy(ctx, mlp_forward(ctx, &m, x), y, 0.0f);
        if (imb_backward(ctx, l)) break;
        imb_grad_clip(ctx, 1.0f);
        imb_adamw_step(ctx, &opt, imb_lr_cosine(step, cfg->steps, cfg->steps / 20, cfg->lr, cfg->lr * 0.01f));
        loss = imb_f32(l)[0];
        if (log && (step % 250 == 0 || step == cfg->steps - 1))
            fprintf(log, "step %5d  loss %.4f\n", step, loss);
    }
    int correct = 0, N = 2000;
    if (imb_ok(ctx)) {
        for (int i = 0; i < N; i++) spiral_point(cfg->seed, 2, (uint64_t)i, xy + 2 * i, lab + i);
        imb_step_begin(ctx, 0);
        imb_tensor *logits = mlp_forward(ctx, &m, imb_input(ctx, IMB_F32, 2, IMB_SHAPE(N, 2), xy));
        if (logits)
            for (int i = 0; i < N; i++) {
                const float *z = imb_f32(logits) + 2 * i;
                correct += (z[1] > z[0]) == (lab[i] == 1);
            }
    }
    int rc = imb_ok(ctx) ? 0 : -1;
    if (rc) snprintf(err, errn, "%s", imb_error(ctx));
    *accuracy = (double)correct / N;
    *final_loss = loss;
    free(xy); free(lab);
    imb_ctx_free(ctx);
    return rc;
}
