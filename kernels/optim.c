/* AdamW, gradient clipping and the learning-rate schedule. */
#include "optim.h"
#include "elementwise.h"
#include "op.h"
#include <math.h>

imb_adamw imb_adamw_default(float weight_decay) { return (imb_adamw){ 0.9f, 0.999f, 1e-8f, weight_decay, 0 }; }

int imb_adamw_step(imb_ctx *ctx, imb_adamw *o, float lr) {
    imb_params *ps = &ctx->params;
    if (!imb_ok(ctx)) return -1;
    if (!ps->allocated) return imb_fail(ctx, "adamw: parameters not allocated");
    if (!isfinite(lr) || lr < 0) return imb_fail(ctx, "adamw: learning rate %g", lr);
    o->t++;
    float bc1 = 1.0f - powf(o->beta1, (float)o->t), bc2 = 1.0f - powf(o->beta2, (float)o->t);
    IMB_RUN(ctx, imb_adamw, ps->data, ps->grad, ps->m, ps->v, ps->decay_mask, ps->update_mask,
            (int64_t)ps->total, lr, o->beta1, o->beta2, o->eps, o->weight_decay, bc1, bc2);
    return imb_ok(ctx) ? 0 : -1;
}

/* The sum of squares comes back to the host (the clip decision is made here), so on CUDA
 * this synchronises once per step. */
static double sumsq(imb_ctx *ctx, const float *x, int64_t n) {
#ifdef IMB_HAVE_CUDA
    if (ctx->device == IMB_CUDA) {
        double s = imb_sumsq_cuda(x, n);
        return imb_device_check(ctx, "imb_sumsq") ? -1 : s;
    }
#endif
    (void)ctx;
    return imb_sumsq_cpu(x, n);
}

double imb_grad_clip(imb_ctx *ctx, float max_norm) {
    imb_params *ps = &ctx->params;
    if (!imb_ok(ctx)) return -1;
    if (!ps->allocated) return imb_fail(ctx, "grad_clip: parameters not allocated");
    double ss = sumsq(ctx, ps->grad, (int64_t)ps->total);
    if (!imb_ok(ctx)) return -1;
    double norm = sqrt(ss);
    if (max_norm > 0 && isfinite(norm) && norm > max_norm)
        IMB_RUN(ctx, imb_scale, ps->grad, ps->grad, (float)(max_norm / (norm + 1e-6)), (int64_t)ps->total, 0);
    return imb_ok(ctx) ? norm : -1;
}

float imb_lr_cosine(int64_t step, int64_t total, int64_t warmup, float base_lr, float min_lr) {
    if (warmup > 0 && step < warmup) return base_lr * (float)(step + 1) / (float)warmup;
    if (total <= warmup) return base_lr;
    double prog = (double)(step - warmup) / (double)(total - warmup);
    if (prog > 1) prog = 1;
    return (float)(min_lr + 0.5 * (base_lr - min_lr) * (1.0 + cos(M_PI * prog)));
}
