/* imb_resize_tokens: checks, dispatch, backward record. */
#include "resize.h"
#include "op.h"

typedef struct { imb_tensor *x, *out; int H, W, H2, W2; } rs_saved;

static void resize_backward(imb_ctx *ctx, void *p) {
    rs_saved *s = p;
    IMB_RUN(ctx, imb_resize_tokens_bwd, imb_gradf(s->x), imb_gradf(s->out), s->x->shape[0], s->H,
            s->W, s->H2, s->W2, s->x->shape[2]);
}

imb_tensor *imb_resize_tokens(imb_ctx *ctx, imb_tensor *x, int H, int W, int H2, int W2) {
    static const char *op = "resize_tokens";
    if (IMB_CHECK(ctx, op, x)) return NULL;
    if (H < 1 || W < 1 || H2 < 1 || W2 < 1) return imb_fail(ctx, "%s: grid sizes must be positive", op), NULL;
    if (x->ndim != 3 || x->shape[1] != (int64_t)H * W) return imb_shape_fail(ctx, op, "x must be [B, H*W, C]", x), NULL;
    imb_tensor *out = imb_new(ctx, IMB_F32, 3, IMB_SHAPE(x->shape[0], (int64_t)H2 * W2, x->shape[2]), IMB_WANTS_GRAD(ctx, x));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_resize_tokens_fwd, imb_f32(out), imb_f32(x), x->shape[0], H, W, H2, W2, x->shape[2]);
    if (out->grad) {
        rs_saved *s = imb_tape_push(ctx, op, resize_backward, sizeof *s);
        if (!s) return NULL;
        *s = (rs_saved){ x, out, H, W, H2, W2 };
    }
    return imb_ok(ctx) ? out : NULL;
}
