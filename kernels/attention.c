/* Attention op: shape checks, scale default, dispatch, and the backward record (P on CPU, lse on CUDA). */
#include "config.h"   /* before attention.h: IMB_HAVE_CUDA gates the CUDA declarations */
#include "attention.h"
#include "op.h"
#ifdef IMB_HAVE_CUDA
#include "cuda/backend.h"
#endif
#include <math.h>

typedef struct {
    imb_tensor *q, *k, *v, *mask, *out;
    float *P;            /* CPU: [B, H, Lq, Lk] probabilities */
    float *lse, *work;   /* CUDA: [B, H, Lq] log-sum-exp from the forward, and [B, H, Lq] backward scratch */
    int64_t B, H, Lq, Lk, Dh;
    int causal;
    float scale;
} attn_saved;

#ifdef IMB_HAVE_CUDA
/* The attention kernels run on the backend's stream, ordered with every other op. */
static void *attn_stream(imb_ctx *ctx) {
    (void)ctx;
    return imb_cuda_stream_handle();
}
#endif

static void attention_backward(imb_ctx *ctx, void *p) {
    attn_saved *s = p;
#ifdef IMB_HAVE_CUDA
    if (ctx->device == IMB_CUDA) {
        if (ctx->trace) imb_trace_op(ctx, (uintptr_t)"imb_attention_bwd_cuda");
        if (ctx->graph_mode == IMB_GRAPH_PROBE) return;   /* a replay's host walk: nothing runs */
        imb_cuda_enter(ctx);
        if (imb_attention_bwd_cuda(attn_stream(ctx), imb_g(s->q), imb_g(s->k), imb_g(s->v), s->work,
                                   imb_gradf(s->out), imb_f32(s->out), s->lse, imb_f32(s->q), imb_f32(s->k),
                                   imb_f32(s->v), s->mask ? imb_f32(s->mask) : NULL, s->B, s->H, s->Lq, s->Lk,
                                   s->Dh, s->causal, s->scale))
            imb_fail(ctx, "attention backward: %s", imb_attention_cuda_error());
        return;
    }
#endif
    IMB_RUN_CPU(ctx, "attention", imb_attention_bwd, imb_g(s->q), imb_g(s->k), imb_g(s->v), imb_gradf(s->out), s->P,
                imb_f32(s->q), imb_f32(s->k), imb_f32(s->v), s->mask ? imb_f32(s->mask) : NULL, s->B, s->H, s->Lq,
                s->Lk, s->Dh, s->causal, s->scale);
}

imb_tensor *imb_attention(imb_ctx *ctx, imb_tensor *q, imb_tensor *k, imb_tensor *v, int heads,
                          imb_tensor *key_mask, int causal, float scale) {
    static const char *op = "attention";
    if (IMB_CHECK(ctx, op, q, k, v) || (key_mask && IMB_CHECK(ctx, op, key_mask))) return NULL;
    if (q->ndim != 3) return imb_shape_fail(ctx, op, "q must be [B, Lq, H*Dh]", q), NULL;
    if (k->ndim != 3 || k->shape[0] != q->shape[0] || k->shape[2] != q->shape[2])
        return imb_shape_fail(ctx, op, "k must be [B, Lk, H*Dh] with q's B and channels", k), NULL;
    if (!imb_same_shape(k, v)) return imb_shape_fail(ctx, op, "v must have k's shape", v), NULL;
    int64_t B = q->shape[0], Lq = q->shape[1], Lk = k->shape[1], C = q->shape[2];
    if (heads < 1 || C % heads)
        return imb_fail(ctx, "%s: %d heads do not divide the %lld channels", op, heads, (long long)C), NULL;
    if (key_mask && (key_mask->ndim != 2 || key_mask->shape[0] != B || key_mask->shape[1] != Lk))
        return imb_shape_fail(ctx, op, "key_mask must be [B, Lk] with q's B and k's Lk", key_mask), NULL;
    if (causal && Lq != Lk)
        return imb_fail(ctx, "%s: causal attention needs Lq == Lk (got Lq %lld, Lk %lld)", op, (long long)Lq,
                        (long long)Lk), NULL;
    if (isnan(scale) || isinf(scale)) return imb_fail(ctx, "%s: scale %g is not finite", op, scale), NULL;
    int64_t H = heads, Dh = C / heads;
    if (scale <= 0.0f) scale = (float)(1.0 / sqrt((double)Dh));
    imb_tensor *out = imb_new(ctx, IMB_F32, 3, q->shape, IMB_WANTS_GRAD(ctx, q, k, v));
    if (!out) return NULL;
    float *P = NULL, *lse = NULL, *work = NULL;
    const float *mask = key_mask ? imb_f32(key_mask) : NULL;
#ifdef IMB_HAVE_CUDA
    if (ctx->device == IMB_CUDA) {
        /* lse and the backward's scratch, only when a backward will run; both come from this step's
         * arena here, so the backward allocates nothing (same addresses every step for graph capture) */
        if (out->grad) {
            lse = imb_scratch(ctx, sizeof(float) * (size_t)(2 * B * H * Lq));
            if (!lse) return NULL;
            work = lse + B * H * Lq;
        }
        if (ctx->trace) imb_trace_op(ctx, (uintptr_t)"imb_attention_fwd_cuda");
        imb_cuda_enter(ctx);
        if (ctx->graph_mode != IMB_GRAPH_PROBE && imb_attention_fwd_cuda(attn_stream(ctx), imb_f32(out), lse, imb_f32(q), imb_f32(k), imb_f32(v), mask,
                                   B, H, Lq, Lk, Dh, causal != 0, scale))
            return imb_fail(ctx, "%s: %s", op, imb_attention_cuda_error()), NULL;
    } else
#endif
    {
        P = imb_scratch(ctx, sizeof(float) * (size_t)(B * H * Lq * Lk));
        if (!P) return NULL;
        IMB_RUN_CPU(ctx, op, imb_attention_fwd, imb_f32(out), P, imb_f32(q), imb_f32(k), imb_f32(v), mask, B, H, Lq,
                    Lk, Dh, causal != 0, scale);
    }
    ctx->flops += 4.0 * (double)(B * H * Lq * Lk * Dh);   /* QKᵀ and PV */
    if (out->grad) {
        attn_saved *s = imb_tape_push(ctx, op, attention_backward, sizeof *s);
        if (!s) return NULL;
        *s = (attn_saved){ q, k, v, key_mask, out, P, lse, work, B, H, Lq, Lk, Dh, causal != 0, scale };
    }
    return imb_ok(ctx) ? out : NULL;
}
