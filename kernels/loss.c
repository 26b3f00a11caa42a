/* Cross-entropy op: checks labels, keeps the softmax for the backward. */
#include "loss.h"
#include "op.h"
#include <stdlib.h>

typedef struct { imb_tensor *logits, *labels, *loss; float *prob; int64_t N, C; float smoothing, inv_kept; } xent_saved;

static void xent_backward(imb_ctx *ctx, void *p) {
    xent_saved *s = p;
    IMB_RUN(ctx, imb_xent_bwd, imb_gradf(s->logits), s->prob, imb_i32(s->labels), s->N, s->C, s->smoothing,
            imb_gradf(s->loss), s->inv_kept);
}

imb_tensor *imb_cross_entropy(imb_ctx *ctx, imb_tensor *logits, imb_tensor *labels, float smoothing) {
    static const char *op = "cross_entropy";
    if (IMB_CHECK(ctx, op, logits) || IMB_CHECK_ANY(ctx, op, labels)) return NULL;
    if (logits->ndim != 2) return imb_shape_fail(ctx, op, "logits must be [N, C]", logits), NULL;
    if (labels->dtype != IMB_I32 || labels->ndim != 1 || labels->shape[0] != logits->shape[0])
        return imb_shape_fail(ctx, op, "labels must be i32 [N] with N = rows of logits", labels), NULL;
    if (!(smoothing >= 0.0f && smoothing < 1.0f)) return imb_fail(ctx, "%s: label smoothing %g outside [0, 1)", op, smoothing), NULL;
    int64_t N = logits->shape[0], C = logits->shape[1];
    /* labels are small: validate on the host so a bad label is an error, not a wild read */
    int32_t *lab = malloc(sizeof *lab * (size_t)N);
    if (!lab) return imb_fail(ctx, "%s: out of host memory", op), NULL;
    imb_to_host(ctx, labels, lab, 0);
    int64_t kept = 0;
    for (int64_t i = 0; i < N; i++) {
        if (lab[i] >= C) {
            imb_fail(ctx, "%s: label %d at row %lld is out of range for %lld classes", op, lab[i], (long long)i, (long long)C);
            free(lab);
            return NULL;
        }
        kept += lab[i] >= 0;
    }
    free(lab);
    imb_tensor *loss = imb_new(ctx, IMB_F32, 1, IMB_SHAPE(1), IMB_WANTS_GRAD(ctx, logits));
    float *prob = imb_scratch(ctx, sizeof(float) * (size_t)(N * C));
    float *rows = imb_scratch(ctx, sizeof(float) * (size_t)N);
    if (!loss || !prob || !rows) return NULL;
    float inv = kept ? 1.0f / (float)kept : 0.0f;
    IMB_RUN(ctx, imb_xent_fwd, rows, prob, imb_f32(logits), imb_i32(labels), N, C, smoothing);
    IMB_RUN(ctx, imb_sum, imb_f32(loss), rows, N, inv);
    if (loss->grad) {
        xent_saved *s = imb_tape_push(ctx, op, xent_backward, sizeof *s);
        if (!s) return NULL;
        *s = (xent_saved){ logits, labels, loss, prob, N, C, smoothing, inv };
    }
    return imb_ok(ctx) ? loss : NULL;
}
