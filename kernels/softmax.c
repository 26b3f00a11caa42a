/* Softmax op: mask broadcast checks, dispatch, and the backward record (keeps the output). */
#include "softmax.h"
#include "op.h"

typedef struct { imb_tensor *x, *out; int64_t rows, L; } softmax_saved;

static void softmax_backward(imb_ctx *ctx, void *p) {
    softmax_saved *s = p;
    IMB_RUN(ctx, imb_softmax_bwd, imb_gradf(s->x), imb_f32(s->out), imb_gradf(s->out), s->rows, s->L);
}

imb_tensor *imb_softmax(imb_ctx *ctx, imb_tensor *x, imb_tensor *mask) {
    static const char *op = "softmax";
    if (IMB_CHECK(ctx, op, x) || (mask && IMB_CHECK(ctx, op, mask))) return NULL;
    if (x->ndim < 1) return imb_shape_fail(ctx, op, "x needs at least 1 dim", x), NULL;
    if (mask) {
        if (mask->ndim < 1 || mask->ndim > x->ndim)
            return imb_shape_fail(ctx, op, "mask must have x's shape or a trailing part of it (at least the last dim)",
                                  mask), NULL;
        for (int i = 1; i <= mask->ndim; i++)
            if (mask->shape[mask->ndim - i] != x->shape[x->ndim - i])
                return imb_shape_fail(ctx, op, "mask must match the trailing dims of x", mask), NULL;
    }
    int64_t L = x->shape[x->ndim - 1], rows = imb_numel(x) / L, mask_rows = mask ? imb_numel(mask) / L : 1;
    imb_tensor *out = imb_new(ctx, IMB_F32, x->ndim, x->shape, IMB_WANTS_GRAD(ctx, x));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_softmax_fwd, imb_f32(out), imb_f32(x), mask ? imb_f32(mask) : NULL, rows, L, mask_rows);
    if (out->grad) {
        softmax_saved *s = imb_tape_push(ctx, op, softmax_backward, sizeof *s);
        if (!s) return NULL;
        *s = (softmax_saved){ x, out, rows, L };
    }
    return imb_ok(ctx) ? out : NULL;
}
