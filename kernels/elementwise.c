/* Elementwise ops with broadcasting over leading dims, and their backward records. */
#include "elementwise.h"
#include "op.h"

typedef struct { imb_tensor *a, *b, *g, *out; float s; int64_t n, nb; } ew_saved;

/* b must equal a's shape or a trailing part of it */
static int check_bcast(imb_ctx *ctx, const char *op, const imb_tensor *a, const imb_tensor *b) {
    if (b->ndim > a->ndim) return imb_shape_fail(ctx, op, "second operand has more dims than the first", b);
    for (int i = 1; i <= b->ndim; i++)
        if (b->shape[b->ndim - i] != a->shape[a->ndim - i])
            return imb_shape_fail(ctx, op, "second operand must match the trailing dims of the first", b);
    return 0;
}

static void add_backward(imb_ctx *ctx, void *p) {
    ew_saved *s = p;
    IMB_RUN(ctx, imb_add_bwd, imb_g(s->a), imb_g(s->b), imb_gradf(s->out), s->n, s->nb);
}

static void mul_backward(imb_ctx *ctx, void *p) {
    ew_saved *s = p;
    IMB_RUN(ctx, imb_mul_bwd, imb_g(s->a), imb_g(s->b), imb_f32(s->a), imb_f32(s->b), imb_gradf(s->out), s->n, s->nb);
}

static imb_tensor *binary(imb_ctx *ctx, const char *op, imb_tensor *a, imb_tensor *b, int mul) {
    if (IMB_CHECK(ctx, op, a, b) || check_bcast(ctx, op, a, b)) return NULL;
    imb_tensor *out = imb_new(ctx, IMB_F32, a->ndim, a->shape, IMB_WANTS_GRAD(ctx, a, b));
    if (!out) return NULL;
    int64_t n = imb_numel(a), nb = imb_numel(b);
    if (mul) IMB_RUN(ctx, imb_mul_fwd, imb_f32(out), imb_f32(a), imb_f32(b), n, nb);
    else IMB_RUN(ctx, imb_add_fwd, imb_f32(out), imb_f32(a), imb_f32(b), n, nb);
    if (out->grad) {
        ew_saved *s = imb_tape_push(ctx, op, mul ? mul_backward : add_backward, sizeof *s);
        if (!s) return NULL;
        *s = (ew_saved){ a, b, NULL, out, 0, n, nb };
    }
    return imb_ok(ctx) ? out : NULL;
}

imb_tensor *imb_add(imb_ctx *ctx, imb_tensor *a, imb_tensor *b) { return binary(ctx, "add", a, b, 0); }
imb_tensor *imb_mul(imb_ctx *ctx, imb_tensor *a, imb_tensor *b) { return binary(ctx, "mul", a, b, 1); }

static void scale_backward(imb_ctx *ctx, void *p) {
    ew_saved *s = p;
    IMB_RUN(ctx, imb_scale, imb_gradf(s->a), imb_gradf(s->out), s->s, s->n, 1);
}

imb_tensor *imb_scale(imb_ctx *ctx, imb_tensor *a, float sc) {
    if (IMB_CHECK(ctx, "scale", a)) return NULL;
    imb_tensor *out = imb_new(ctx, IMB_F32, a->ndim, a->shape, IMB_WANTS_GRAD(ctx, a));
    if (!out) return NULL;
    int64_t n = imb_numel(a);
    IMB_RUN(ctx, imb_scale, imb_f32(out), imb_f32(a), sc, n, 0);
    if (out->grad) {
        ew_saved *s = imb_tape_push(ctx, "scale", scale_backward, sizeof *s);
        if (!s) return NULL;
        *s = (ew_saved){ a, NULL, NULL, out, sc, n, n };
    }
    return imb_ok(ctx) ? out : NULL;
}

static void residual_backward(imb_ctx *ctx, void *p) {
    ew_saved *s = p;
    IMB_RUN(ctx, imb_residual_bwd, imb_g(s->a), imb_g(s->b), imb_g(s->g), imb_f32(s->b),
            s->g ? imb_f32(s->g) : NULL, imb_gradf(s->out), s->n, s->nb);
}

imb_tensor *imb_residual(imb_ctx *ctx, imb_tensor *x, imb_tensor *y, imb_tensor *gamma) {
    static const char *op = "residual";
    if (IMB_CHECK(ctx, op, x, y) || (gamma && IMB_CHECK(ctx, op, gamma))) return NULL;
    if (!imb_same_shape(x, y)) return imb_shape_fail(ctx, op, "y must have x's shape", y), NULL;
    int64_t C = x->shape[x->ndim - 1];
    if (gamma && (gamma->ndim != 1 || gamma->shape[0] != C))
        return imb_shape_fail(ctx, op, "gamma must be [C] with C = last dim of x", gamma), NULL;
    imb_tensor *out = imb_new(ctx, IMB_F32, x->ndim, x->shape, IMB_WANTS_GRAD(ctx, x, y, gamma));
    if (!out) return NULL;
    int64_t n = imb_numel(x);
    IMB_RUN(ctx, imb_residual_fwd, imb_f32(out), imb_f32(x), imb_f32(y), gamma ? imb_f32(gamma) : NULL, n, C);
    if (out->grad) {
        ew_saved *s = imb_tape_push(ctx, op, residual_backward, sizeof *s);
        if (!s) return NULL;
        *s = (ew_saved){ x, y, gamma, out, 0, n, C };
    }
    return imb_ok(ctx) ? out : NULL;
}
