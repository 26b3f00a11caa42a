/* Convolution ops (patch embedding, depthwise 1-D causal, depthwise 2-D same): shape
 * checks, dispatch and the backward records. */
#include "conv.h"
#include "op.h"

static int check_bias(imb_ctx *ctx, const char *op, const imb_tensor *b, int64_t C, const char *what) {
    if (b && (IMB_CHECK(ctx, op, b) || b->ndim != 1 || b->shape[0] != C)) return imb_shape_fail(ctx, op, what, b);
    return 0;
}

typedef struct { imb_tensor *x, *w, *b, *out; float *cols; imb_conv_geom g; } pe_saved;

static void patch_embed_backward(imb_ctx *ctx, void *p) {
    pe_saved *s = p;
    float *dcols = NULL;
    if (s->x->grad) {
        dcols = imb_scratch(ctx, sizeof(float) * (size_t)(s->g.B * s->g.Ho * s->g.Wo * s->g.Cin * s->g.kh * s->g.kw));
        if (!dcols) return;
    }
    IMB_RUN(ctx, imb_patch_embed_bwd, &s->g, imb_g(s->x), imb_g(s->w), imb_g(s->b), dcols,
            s->cols, imb_f32(s->w), imb_gradf(s->out));
}

imb_tensor *imb_patch_embed(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *b, int stride, int pad) {
    static const char *op = "patch_embed";
    if (IMB_CHECK(ctx, op, x, w)) return NULL;
    if (x->ndim != 4) return imb_shape_fail(ctx, op, "x must be [B, Cin, H, W]", x), NULL;
    if (w->ndim != 4) return imb_shape_fail(ctx, op, "w must be [Cout, Cin, kh, kw]", w), NULL;
    if (w->shape[1] != x->shape[1]) {
        char bw[96], bx[96];
        return imb_fail(ctx, "%s: w %s expects %lld input channels but x %s has %lld", op,
                        imb_shape_str(w, bw, sizeof bw), (long long)w->shape[1], imb_shape_str(x, bx, sizeof bx),
                        (long long)x->shape[1]), NULL;
    }
    if (stride < 1 || pad < 0) return imb_fail(ctx, "%s: stride %d must be >= 1 and pad %d >= 0", op, stride, pad), NULL;
    imb_conv_geom g = { .B = x->shape[0], .Cin = x->shape[1], .H = x->shape[2], .W = x->shape[3],
                        .Cout = w->shape[0], .kh = w->shape[2], .kw = w->shape[3], .stride = stride, .pad = pad };
    if (g.kh > g.H + 2 * pad || g.kw > g.W + 2 * pad)
        return imb_fail(ctx, "%s: kernel %lldx%lld is larger than the padded input %lldx%lld (pad %d)", op,
                        (long long)g.kh, (long long)g.kw, (long long)(g.H + 2 * pad), (long long)(g.W + 2 * pad), pad),
               NULL;
    if (check_bias(ctx, op, b, g.Cout, "bias must be [Cout]")) return NULL;
    g.Ho = (g.H + 2 * pad - g.kh) / stride + 1;
    g.Wo = (g.W + 2 * pad - g.kw) / stride + 1;
    imb_tensor *out = imb_new(ctx, IMB_F32, 3, IMB_SHAPE(g.B, g.Ho * g.Wo, g.Cout), IMB_WANTS_GRAD(ctx, x, w, b));
    if (!out) return NULL;
    /* the im2col matrix is both the GEMM operand and what the weight gradient needs */
    float *cols = imb_scratch(ctx, sizeof(float) * (size_t)(g.B * g.Ho * g.Wo * g.Cin * g.kh * g.kw));
    if (!cols) return NULL;
    IMB_RUN(ctx, imb_patch_embed_fwd, &g, imb_f32(out), cols, imb_f32(x), imb_f32(w), b ? imb_f32(b) : NULL);
    ctx->flops += 2.0 * (double)(g.B * g.Ho * g.Wo) * (double)g.Cout * (double)(g.Cin * g.kh * g.kw);
    if (out->grad) {
        pe_saved *s = imb_tape_push(ctx, op, patch_embed_backward, sizeof *s);
        if (!s) return NULL;
        *s = (pe_saved){ x, w, b, out, cols, g };
    }
    return imb_ok(ctx) ? out : NULL;
}

/* shared by both depthwise convs: n0, n1 are (L, 1) for 1-D and (H, W) for 2-D */
typedef struct { imb_tensor *x, *w, *b, *out; int64_t B, n0, n1, C, k; } dw_saved;

static void dwconv1d_backward(imb_ctx *ctx, void *p) {
    dw_saved *s = p;
    IMB_RUN(ctx, imb_dwconv1d_bwd, imb_g(s->x), imb_g(s->w), imb_g(s->b), imb_f32(s->x),
            imb_f32(s->w), imb_gradf(s->out), s->B, s->n0, s->C, s->k);
}

imb_tensor *imb_dwconv1d(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *b) {
    static const char *op = "dwconv1d";
    if (IMB_CHECK(ctx, op, x, w)) return NULL;
    if (x->ndim != 3) return imb_shape_fail(ctx, op, "x must be [B, L, C]", x), NULL;
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    if (w->ndim != 3 || w->shape[0] != C || w->shape[1] != 1)
        return imb_shape_fail(ctx, op, "w must be [C, 1, K] with C = last dim of x", w), NULL;
    if (check_bias(ctx, op, b, C, "bias must be [C]")) return NULL;
    int64_t K = w->shape[2];
    imb_tensor *out = imb_new(ctx, IMB_F32, 3, x->shape, IMB_WANTS_GRAD(ctx, x, w, b));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_dwconv1d_fwd, imb_f32(out), imb_f32(x), imb_f32(w), b ? imb_f32(b) : NULL, B, L, C, K);
    if (out->grad) {
        dw_saved *s = imb_tape_push(ctx, op, dwconv1d_backward, sizeof *s);
        if (!s) return NULL;
        *s = (dw_saved){ x, w, b, out, B, L, 1, C, K };
    }
    return imb_ok(ctx) ? out : NULL;
}

static void dwconv2d_backward(imb_ctx *ctx, void *p) {
    dw_saved *s = p;
    IMB_RUN(ctx, imb_dwconv2d_bwd, imb_g(s->x), imb_g(s->w), imb_g(s->b), imb_f32(s->x),
            imb_f32(s->w), imb_gradf(s->out), s->B, s->n0, s->n1, s->C, s->k);
}

imb_tensor *imb_dwconv2d(imb_ctx *ctx, imb_tensor *x, int H, int W, imb_tensor *w, imb_tensor *b) {
    static const char *op = "dwconv2d";
    if (IMB_CHECK(ctx, op, x, w)) return NULL;
    if (x->ndim != 3) return imb_shape_fail(ctx, op, "x must be [B, H*W, C]", x), NULL;
    if (H < 1 || W < 1 || x->shape[1] != (int64_t)H * W)
        return imb_fail(ctx, "%s: grid %dx%d does not match the %lld tokens of x", op, H, W, (long long)x->shape[1]),
               NULL;
    int64_t B = x->shape[0], C = x->shape[2];
    if (w->ndim != 4 || w->shape[0] != C || w->shape[1] != 1 || w->shape[2] != w->shape[3] || w->shape[2] % 2 == 0)
        return imb_shape_fail(ctx, op, "w must be [C, 1, k, k] with odd k and C = last dim of x", w), NULL;
    if (check_bias(ctx, op, b, C, "bias must be [C]")) return NULL;
    int64_t k = w->shape[2];
    imb_tensor *out = imb_new(ctx, IMB_F32, 3, x->shape, IMB_WANTS_GRAD(ctx, x, w, b));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_dwconv2d_fwd, imb_f32(out), imb_f32(x), imb_f32(w), b ? imb_f32(b) : NULL, B, H, W, C, k);
    if (out->grad) {
        dw_saved *s = imb_tape_push(ctx, op, dwconv2d_backward, sizeof *s);
        if (!s) return NULL;
        *s = (dw_saved){ x, w, b, out, B, H, W, C, k };
    }
    return imb_ok(ctx) ? out : NULL;
}
