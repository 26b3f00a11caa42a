/* AdamW, gradient clipping and the learning-rate schedule. */
#include "optim.h"
#include "mem.h"
#include "op.h"
#include <math.h>

imb_adamw imb_adamw_default(float weight_decay) { return (imb_adamw){ 0.9f, 0.999f, 1e-8f, weight_decay, 0 }; }

int imb_adamw_prepare(imb_ctx *ctx, imb_adamw *o, float lr) {
    if (!imb_ok(ctx)) return -1;
    if (!isfinite(lr) || lr < 0) return imb_fail(ctx, "adamw: learning rate %g", lr);
    o->t++;
    imb_step_in *in = &ctx->st->in_host;
    in->lr = lr;
    in->bc1 = 1.0f - powf(o->beta1, (float)o->t);
    in->bc2 = 1.0f - powf(o->beta2, (float)o->t);
    return 0;
}

int imb_adamw_apply(imb_ctx *ctx, const imb_adamw *o) {
    imb_params *ps = &ctx->params;
    if (!imb_ok(ctx)) return -1;
    if (!ps->allocated) return imb_fail(ctx, "adamw: parameters not allocated");
    IMB_RUN(ctx, imb_adamw, ps->data, ps->grad, ps->m, ps->v, ps->decay_mask, ps->update_mask, (int64_t)ps->total,
            o->beta1, o->beta2, o->eps, o->weight_decay, ctx->st->in, ctx->st->out);
    return imb_ok(ctx) ? 0 : -1;
}

int imb_adamw_step(imb_ctx *ctx, imb_adamw *o, float lr) {
    if (!ctx->params.allocated && imb_ok(ctx)) return imb_fail(ctx, "adamw: parameters not allocated");
    if (imb_adamw_prepare(ctx, o, lr) || imb_step_upload(ctx)) return -1;
    return imb_adamw_apply(ctx, o);
}

int imb_grad_clip_async(imb_ctx *ctx, float max_norm) {
    imb_params *ps = &ctx->params;
    if (!imb_ok(ctx)) return -1;
    if (!ps->allocated) return imb_fail(ctx, "grad_clip: parameters not allocated");
    imb_step_out *o = ctx->st->out;
    IMB_RUN(ctx, imb_sumsq, &o->sumsq, ps->grad, (int64_t)ps->total);
    IMB_RUN(ctx, imb_clip_factor, o, max_norm);
    IMB_RUN(ctx, imb_scale_by, ps->grad, (int64_t)ps->total, &o->clip_scale);
    return imb_ok(ctx) ? 0 : -1;
}

double imb_grad_clip(imb_ctx *ctx, float max_norm) {
    if (imb_grad_clip_async(ctx, max_norm)) return -1;
    double ss = 0;
    if (imb_mem_copy(IMB_CPU, &ss, ctx->device, &ctx->st->out->sumsq, sizeof ss))
        return imb_device_check(ctx, "grad_clip") ? -1 : imb_fail(ctx, "grad_clip: copy failed");
    return sqrt(ss);
}

float imb_lr_cosine(int64_t step, int64_t total, int64_t warmup, float base_lr, float min_lr) {
    if (warmup > 0 && step < warmup) return base_lr * (float)(step + 1) / (float)warmup;
    if (total <= warmup) return base_lr;
    double prog = (double)(step - warmup) / (double)(total - warmup);
    if (prog > 1) prog = 1;
    return (float)(min_lr + 0.5 * (base_lr - min_lr) * (1.0 + cos(M_PI * prog)));
}
