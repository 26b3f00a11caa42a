/* CTC loss op: checks lengths and targets on the host, keeps log-probs and alphas for the backward. */
#include "ctc_loss.h"
#include "op.h"
#include <stdlib.h>

typedef struct {
    imb_tensor *logits, *in_len, *targets, *tgt_len, *loss, *nll;
    float *logp, *alpha;
    int64_t B, T, V, S;
    int blank, reduction;
} ctc_saved;

static void ctc_backward(imb_ctx *ctx, void *p) {
    ctc_saved *s = p;
    float *beta = imb_scratch(ctx, sizeof(float) * (size_t)(s->B * s->T * (2 * s->S + 1)));
    if (!beta) return;
    IMB_RUN(ctx, imb_ctc_bwd, imb_gradf(s->logits), beta, s->logp, s->alpha, imb_f32(s->nll), imb_i32(s->in_len),
            imb_i32(s->targets), imb_i32(s->tgt_len), imb_gradf(s->loss), s->reduction, s->B, s->T, s->V, s->S,
            s->blank);
}

/* lengths and labels are small: validated on the host so a bad one is an error naming the
 * utterance, never a read out of bounds in a kernel */
static int check_labels(imb_ctx *ctx, const char *op, const imb_tensor *in_len, const imb_tensor *targets,
                        const imb_tensor *tgt_len, int64_t B, int64_t T, int64_t V, int64_t S, int blank) {
    int32_t *h = malloc(sizeof *h * (size_t)(2 * B + B * S));
    if (!h) return imb_fail(ctx, "%s: out of host memory", op);
    int32_t *il = h, *tl = h + B, *y = h + 2 * B;
    int rc = 0;
    if (imb_to_host(ctx, in_len, il, 0) || imb_to_host(ctx, tgt_len, tl, 0) ||
        (B * S > 0 && imb_to_host(ctx, targets, y, 0))) {
        free(h);
        return -1;
    }
    for (int64_t b = 0; b < B && !rc; b++) {
        if (il[b] < 1 || il[b] > T)
            rc = imb_fail(ctx, "%s: utterance %lld has input length %d outside [1, %lld]", op, (long long)b, il[b],
                          (long long)T);
        else if (tl[b] < 0 || tl[b] > S)
            rc = imb_fail(ctx, "%s: utterance %lld has target length %d outside [0, %lld]", op, (long long)b, tl[b],
                          (long long)S);
        for (int64_t i = 0; i < tl[b] && !rc; i++) {
            int32_t v = y[b * S + i];
            if (v < 0 || v >= V || v == blank)
                rc = imb_fail(ctx, "%s: utterance %lld target %lld is %d: symbols must be in [0, %lld) and not the blank %d",
                              op, (long long)b, (long long)i, v, (long long)V, blank);
        }
    }
    free(h);
    return rc;
}

imb_tensor *imb_ctc_loss(imb_ctx *ctx, imb_tensor *logits, imb_tensor *in_len, imb_tensor *targets,
                         imb_tensor *tgt_len, int blank, imb_ctc_reduction reduction, int zero_infinity,
                         imb_tensor **nll_out) {
    static const char *op = "ctc_loss";
    if (nll_out) *nll_out = NULL;
    if (IMB_CHECK(ctx, op, logits) || IMB_CHECK_ANY(ctx, op, in_len, targets, tgt_len)) return NULL;
    if (logits->ndim != 3) return imb_shape_fail(ctx, op, "logits must be [B, T, V]", logits), NULL;
    int64_t B = logits->shape[0], T = logits->shape[1], V = logits->shape[2];
    if (B < 1 || T < 1 || V < 2) return imb_shape_fail(ctx, op, "logits need B >= 1, T >= 1 and V >= 2", logits), NULL;
    if (in_len->dtype != IMB_I32 || in_len->ndim != 1 || in_len->shape[0] != B)
        return imb_shape_fail(ctx, op, "input lengths must be i32 [B]", in_len), NULL;
    if (tgt_len->dtype != IMB_I32 || tgt_len->ndim != 1 || tgt_len->shape[0] != B)
        return imb_shape_fail(ctx, op, "target lengths must be i32 [B]", tgt_len), NULL;
    if (targets->dtype != IMB_I32 || targets->ndim != 2 || targets->shape[0] != B)
        return imb_shape_fail(ctx, op, "targets must be i32 [B, S]", targets), NULL;
    if (blank < 0 || blank >= V)
        return imb_fail(ctx, "%s: blank %d outside the %lld symbols", op, blank, (long long)V), NULL;
    if (reduction != IMB_CTC_MEAN && reduction != IMB_CTC_SUM && reduction != IMB_CTC_NONE)
        return imb_fail(ctx, "%s: unknown reduction %d", op, (int)reduction), NULL;
    int64_t S = targets->shape[1], E = 2 * S + 1;
    if (check_labels(ctx, op, in_len, targets, tgt_len, B, T, V, S, blank)) return NULL;
    imb_tensor *nll = imb_new(ctx, IMB_F32, 1, IMB_SHAPE(B), 0);
    imb_tensor *loss = reduction == IMB_CTC_NONE ? imb_new(ctx, IMB_F32, 1, IMB_SHAPE(B), IMB_WANTS_GRAD(ctx, logits))
                                                 : imb_new(ctx, IMB_F32, 1, IMB_SHAPE(1), IMB_WANTS_GRAD(ctx, logits));
    float *logp = imb_scratch(ctx, sizeof(float) * (size_t)(B * T * V));
    float *alpha = imb_scratch(ctx, sizeof(float) * (size_t)(B * T * E));
    if (!nll || !loss || !logp || !alpha) return NULL;
    IMB_RUN(ctx, imb_ctc_fwd, imb_f32(nll), logp, alpha, imb_f32(logits), imb_i32(in_len), imb_i32(targets),
            imb_i32(tgt_len), B, T, V, S, blank);
    IMB_RUN(ctx, imb_ctc_reduce, imb_f32(loss), imb_f32(nll), imb_i32(tgt_len), B, (int)reduction, zero_infinity);
    if (loss->grad) {
        ctc_saved *s = imb_tape_push(ctx, op, ctc_backward, sizeof *s);
        if (!s) return NULL;
        *s = (ctc_saved){ logits, in_len, targets, tgt_len, loss, nll, logp, alpha, B, T, V, S, blank, (int)reduction };
    }
    if (!imb_ok(ctx)) return NULL;
    if (nll_out) *nll_out = nll;
    return loss;
}
