/* Cross-entropy op: checks labels (on the device, without waiting, on CUDA), keeps the softmax
 * for the backward. */
#include "loss.h"
#include "op.h"
#include "step.h"

typedef struct { imb_tensor *logits, *labels, *loss; float *prob, *scale; int64_t N, C; float smoothing; } xent_saved;

static void xent_backward(imb_ctx *ctx, void *p) {
    xent_saved *s = p;
    IMB_RUN(ctx, imb_xent_bwd, imb_gradf(s->logits), s->prob, imb_i32(s->labels), s->N, s->C, s->smoothing,
            imb_gradf(s->loss), s->scale);
}

imb_tensor *imb_cross_entropy(imb_ctx *ctx, imb_tensor *logits, imb_tensor *labels, float smoothing) {
    static const char *op = "cross_entropy";
    if (IMB_CHECK(ctx, op, logits) || IMB_CHECK_ANY(ctx, op, labels)) return NULL;
    if (logits->ndim != 2) return imb_shape_fail(ctx, op, "logits must be [N, C]", logits), NULL;
    if (labels->dtype != IMB_I32 || labels->ndim != 1 || labels->shape[0] != logits->shape[0])
        return imb_shape_fail(ctx, op, "labels must be i32 [N] with N = rows of logits", labels), NULL;
    if (!(smoothing >= 0.0f && smoothing < 1.0f)) return imb_fail(ctx, "%s: label smoothing %g outside [0, 1)", op, smoothing), NULL;
    int64_t N = logits->shape[0], C = logits->shape[1];
    /* a bad label is an error, never a wild read: the kernels skip it until it is reported */
    if (imb_check_range(ctx, op, IMB_CHECK_LABEL, labels, C)) return NULL;
    imb_tensor *loss = imb_new(ctx, IMB_F32, 1, IMB_SHAPE(1), IMB_WANTS_GRAD(ctx, logits));
    float *prob = imb_scratch(ctx, sizeof(float) * (size_t)(N * C));
    float *rows = imb_scratch(ctx, sizeof(float) * (size_t)N);
    float *scale = imb_scratch(ctx, sizeof(float));
    if (!loss || !prob || !rows || !scale) return NULL;
    IMB_RUN(ctx, imb_xent_fwd, rows, prob, imb_f32(logits), imb_i32(labels), N, C, smoothing);
    IMB_RUN(ctx, imb_xent_mean, imb_f32(loss), scale, rows, imb_i32(labels), N, C);
    if (loss->grad) {
        xent_saved *s = imb_tape_push(ctx, op, xent_backward, sizeof *s);
        if (!s) return NULL;
        *s = (xent_saved){ logits, labels, loss, prob, scale, N, C, smoothing };
    }
    return imb_ok(ctx) ? loss : NULL;
}
