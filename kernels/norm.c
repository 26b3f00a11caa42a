/* LayerNorm / RMSNorm ops: shape checks, dispatch, and backward records keeping row statistics. */
#include "norm.h"
#include "op.h"
#include <math.h>

typedef struct { imb_tensor *x, *w, *b, *out; float *mean, *rstd; int64_t rows, C; } norm_saved;

/* x [..., C]; an affine vector must be [C] */
static int check_norm(imb_ctx *ctx, const char *op, const imb_tensor *x, const imb_tensor *w, const imb_tensor *b,
                      float eps) {
    if (IMB_CHECK(ctx, op, x) || (w && IMB_CHECK(ctx, op, w)) || (b && IMB_CHECK(ctx, op, b))) return -1;
    if (x->ndim < 1) return imb_shape_fail(ctx, op, "x needs at least 1 dim", x);
    int64_t C = x->shape[x->ndim - 1];
    if (w && (w->ndim != 1 || w->shape[0] != C))
        return imb_shape_fail(ctx, op, "weight must be [C] with C = last dim of x", w);
    if (b && (b->ndim != 1 || b->shape[0] != C))
        return imb_shape_fail(ctx, op, "bias must be [C] with C = last dim of x", b);
    if (!(eps >= 0.0f) || isinf(eps)) return imb_fail(ctx, "%s: eps %g must be finite and >= 0", op, eps);
    return 0;
}

static void layernorm_backward(imb_ctx *ctx, void *p) {
    norm_saved *s = p;
    IMB_RUN(ctx, imb_layernorm_bwd, imb_g(s->x), imb_g(s->w), imb_g(s->b), imb_gradf(s->out),
            imb_f32(s->x), s->w ? imb_f32(s->w) : NULL, s->mean, s->rstd, s->rows, s->C);
}

imb_tensor *imb_layernorm(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *b, float eps) {
    static const char *op = "layernorm";
    if (check_norm(ctx, op, x, w, b, eps)) return NULL;
    int64_t C = x->shape[x->ndim - 1], rows = imb_numel(x) / C;
    imb_tensor *out = imb_new(ctx, IMB_F32, x->ndim, x->shape, IMB_WANTS_GRAD(ctx, x, w, b));
    float *mean = imb_scratch(ctx, sizeof(float) * (size_t)rows);
    float *rstd = imb_scratch(ctx, sizeof(float) * (size_t)rows);
    if (!out || !mean || !rstd) return NULL;
    IMB_RUN(ctx, imb_layernorm_fwd, imb_f32(out), mean, rstd, imb_f32(x), w ? imb_f32(w) : NULL,
            b ? imb_f32(b) : NULL, rows, C, eps);
    if (out->grad) {
        norm_saved *s = imb_tape_push(ctx, op, layernorm_backward, sizeof *s);
        if (!s) return NULL;
        *s = (norm_saved){ x, w, b, out, mean, rstd, rows, C };
    }
    return imb_ok(ctx) ? out : NULL;
}

static void rmsnorm_backward(imb_ctx *ctx, void *p) {
    norm_saved *s = p;
    IMB_RUN(ctx, imb_rmsnorm_bwd, imb_g(s->x), imb_g(s->w), imb_gradf(s->out), imb_f32(s->x),
            s->w ? imb_f32(s->w) : NULL, s->rstd, s->rows, s->C);
}

imb_tensor *imb_rmsnorm(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, float eps) {
    static const char *op = "rmsnorm";
    if (check_norm(ctx, op, x, w, NULL, eps)) return NULL;
    int64_t C = x->shape[x->ndim - 1], rows = imb_numel(x) / C;
    imb_tensor *out = imb_new(ctx, IMB_F32, x->ndim, x->shape, IMB_WANTS_GRAD(ctx, x, w));
    float *rstd = imb_scratch(ctx, sizeof(float) * (size_t)rows);
    if (!out || !rstd) return NULL;
    IMB_RUN(ctx, imb_rmsnorm_fwd, imb_f32(out), rstd, imb_f32(x), w ? imb_f32(w) : NULL, rows, C, eps);
    if (out->grad) {
        norm_saved *s = imb_tape_push(ctx, op, rmsnorm_backward, sizeof *s);
        if (!s) return NULL;
        *s = (norm_saved){ x, w, NULL, out, NULL, rstd, rows, C };
    }
    return imb_ok(ctx) ? out : NULL;
}
