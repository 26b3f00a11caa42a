/* imb_matmul / imb_linear: shape checks, dispatch and the backward record. */
#include "matmul.h"
#include "op.h"

typedef struct {
    imb_tensor *a, *b, *bias, *c;
    int ta, tb;
    int64_t batch, M, N, K, sa, sb;
} mm_saved;

static void gemm(imb_ctx *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 const float *B, float beta, float *C, int64_t batch, int64_t sa, int64_t sb, int64_t sc) {
    IMB_RUN(ctx, imb_gemm, ta, tb, M, N, K, alpha, A, B, beta, C, batch, sa, sb, sc);
}

static void matmul_backward(imb_ctx *ctx, void *p) {
    mm_saved *s = p;
    const float *dC = imb_gradf(s->c);
    const float *A = imb_f32(s->a), *B = imb_f32(s->b);
    int64_t M = s->M, N = s->N, K = s->K, sc = M * N;
    if (s->a->grad) {
        /* dA = dC op(B)ᵀ   (ta=0: [M,K]);   dAᵀ = op(B) dCᵀ   (ta=1: [K,M]) */
        if (!s->ta) gemm(ctx, 0, !s->tb, M, K, N, 1.0f, dC, B, 1.0f, imb_gradf(s->a), s->batch, sc, s->sb, s->sa);
        else gemm(ctx, s->tb, 1, K, M, N, 1.0f, B, dC, 1.0f, imb_gradf(s->a), s->batch, s->sb, sc, s->sa);
    }
    /* one weight-gradient GEMM (a linear layer's) also sums the bias gradient (CUDA: in its
     * epilogue; CPU: the same two steps as below) */
    if (s->b->grad && s->tb && s->batch == 1 && s->bias && s->bias->grad) {
        IMB_RUN(ctx, imb_gemm_bgrad, s->ta, N, K, M, dC, A, imb_gradf(s->b), imb_gradf(s->bias));
        return;
    }
    if (s->b->grad) {
        /* dB = op(A)ᵀ dC  (tb=0: [K,N]);  dBᵀ = dCᵀ op(A)  (tb=1: [N,K]).
         * A shared b (sb == 0) accumulates one product per batch index. */
        int64_t nb = s->sb ? s->batch : 1, reps = s->sb ? 1 : s->batch;
        for (int64_t r = 0; r < reps; r++) {
            const float *Ar = A + r * s->sa, *dCr = dC + r * sc;
            if (!s->tb) gemm(ctx, !s->ta, 0, K, N, M, 1.0f, Ar, dCr, 1.0f, imb_gradf(s->b), nb, s->sa, sc, s->sb);
            else gemm(ctx, 1, s->ta, N, K, M, 1.0f, dCr, Ar, 1.0f, imb_gradf(s->b), nb, sc, s->sa, s->sb);
        }
    }
    if (s->bias && s->bias->grad)
        IMB_RUN(ctx, imb_bias_grad, imb_gradf(s->bias), dC, s->batch * M, N);
}

imb_tensor *imb_matmul(imb_ctx *ctx, imb_tensor *a, imb_tensor *b, imb_tensor *bias, int ta, int tb) {
    static const char *op = "matmul";
    if (IMB_CHECK(ctx, op, a, b)) return NULL;
    if (bias && IMB_CHECK(ctx, op, bias)) return NULL;
    if (a->ndim < 2) { imb_shape_fail(ctx, op, "a needs at least 2 dims", a); return NULL; }
    if (b->ndim != 2 && b->ndim != 3) { imb_shape_fail(ctx, op, "b must be 2-D or 3-D", b); return NULL; }
    int64_t M = a->shape[a->ndim - 2 + ta], K = a->shape[a->ndim - 1 - ta];
    int64_t Kb = b->shape[b->ndim - 2 + tb], N = b->shape[b->ndim - 1 - tb];
    if (K != Kb)
        return imb_fail(ctx, "matmul: inner dims differ (a gives K=%lld, b gives K=%lld)", (long long)K, (long long)Kb),
               NULL;
    int64_t batch = imb_dims(a, 0, a->ndim - 2), sb = 0;
    if (b->ndim == 3) {
        if (a->ndim != 3 || a->shape[0] != b->shape[0])
            return imb_shape_fail(ctx, op, "batched b [Bt,K,N] needs a [Bt,M,K] with the same Bt", a), NULL;
        sb = K * N;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != N))
        return imb_shape_fail(ctx, op, "bias must be [N]", bias), NULL;
    int64_t shape[IMB_MAX_DIMS];
    for (int i = 0; i < a->ndim - 2; i++) shape[i] = a->shape[i];
    shape[a->ndim - 2] = M;
    shape[a->ndim - 1] = N;
    imb_tensor *c = imb_new(ctx, IMB_F32, a->ndim, shape, IMB_WANTS_GRAD(ctx, a, b, bias));
    if (!c) return NULL;
    /* A shared 2-D b with an untransposed a: one GEMM over all rows. */
    int64_t gb = batch, gM = M;
    if (!sb && !ta) { gM = batch * M; gb = 1; }
    if (bias && gb == 1) {
        IMB_RUN(ctx, imb_gemm_bias, ta, tb, gM, N, K, imb_f32(a), imb_f32(b), imb_f32(c), imb_f32(bias));
    } else {
        gemm(ctx, ta, tb, gM, N, K, 1.0f, imb_f32(a), imb_f32(b), 0.0f, imb_f32(c), gb, M * K, sb, gM * N);
        if (bias) IMB_RUN(ctx, imb_bias_add, imb_f32(c), imb_f32(bias), batch * M, N);
    }
    ctx->flops += 2.0 * (double)gb * (double)gM * (double)N * (double)K;
    if (c->grad) {
        mm_saved *s = imb_tape_push(ctx, op, matmul_backward, sizeof *s);
        if (!s) return NULL;
        *s = (mm_saved){ a, b, bias, c, ta, tb, gb, gM, N, K, M * K, sb };
    }
    return imb_ok(ctx) ? c : NULL;
}

imb_tensor *imb_linear(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *bias) {
    if (w && w->ndim != 2) return imb_shape_fail(ctx, "linear", "weight must be [out, in]", w), NULL;
    return imb_matmul(ctx, x, w, bias, 0, 1);
}

/* ---- linear + activation ---- */

static const char *const act_op[] = { "linear_gelu", "linear_silu", "linear_softplus", "linear_exp" };

typedef struct {
    imb_tensor *x, *w, *bias, *out;
    float *z, *dz;   /* the pre-activation and its gradient [rows, N] */
    imb_act_kind act;
    int64_t rows, N, K;
} linact_saved;

/* the matmul backward of an untransposed x and a [N, K] weight, with dC = dz */
static void linear_act_backward(imb_ctx *ctx, void *p) {
    linact_saved *s = p;
    int64_t rows = s->rows, N = s->N, K = s->K;
    const float *W = imb_f32(s->w), *X = imb_f32(s->x);
    IMB_RUN(ctx, imb_act_grad, s->act, s->dz, s->z, imb_gradf(s->out), rows * N);
    if (s->x->grad) gemm(ctx, 0, 0, rows, K, N, 1.0f, s->dz, W, 1.0f, imb_gradf(s->x), 1, 0, 0, 0);
    int db = s->bias && s->bias->grad;
    if (s->w->grad && db) IMB_RUN(ctx, imb_gemm_bgrad, 0, N, K, rows, s->dz, X, imb_gradf(s->w), imb_gradf(s->bias));
    else if (s->w->grad) gemm(ctx, 1, 0, N, K, rows, 1.0f, s->dz, X, 1.0f, imb_gradf(s->w), 1, 0, 0, 0);
    else if (db) IMB_RUN(ctx, imb_bias_grad, imb_gradf(s->bias), s->dz, rows, N);
}

imb_tensor *imb_linear_act(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *bias, imb_act_kind act) {
    if ((int)act < 0 || (int)act >= (int)(sizeof act_op / sizeof *act_op)) return imb_fail(ctx, "linear_act: unknown activation %d", (int)act), NULL;
    const char *op = act_op[act];
    if (IMB_CHECK(ctx, op, x, w)) return NULL;
    if (bias && IMB_CHECK(ctx, op, bias)) return NULL;
    if (w->ndim != 2) return imb_shape_fail(ctx, op, "weight must be [out, in]", w), NULL;
    int64_t N = w->shape[0], K = w->shape[1];
    if (x->ndim < 1 || x->shape[x->ndim - 1] != K) return imb_shape_fail(ctx, op, "x must be [..., in] with the weight's in", x), NULL;
    if (bias && (bias->ndim != 1 || bias->shape[0] != N)) return imb_shape_fail(ctx, op, "bias must be [out]", bias), NULL;
    int64_t rows = imb_numel(x) / K, shape[IMB_MAX_DIMS];
    for (int i = 0; i < x->ndim - 1; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = N;
    imb_tensor *out = imb_new(ctx, IMB_F32, x->ndim, shape, IMB_WANTS_GRAD(ctx, x, w, bias));
    float *z = imb_scratch(ctx, sizeof(float) * (size_t)(rows * N));
    float *dz = out && out->grad ? imb_scratch(ctx, sizeof(float) * (size_t)(rows * N)) : NULL;
    if (!out || !z || (out->grad && !dz)) return NULL;
    if (bias) IMB_RUN(ctx, imb_gemm_bias, 0, 1, rows, N, K, imb_f32(x), imb_f32(w), z, imb_f32(bias));
    else gemm(ctx, 0, 1, rows, N, K, 1.0f, imb_f32(x), imb_f32(w), 0.0f, z, 1, 0, 0, 0);
    IMB_RUN(ctx, imb_act_fwd, act, imb_f32(out), z, rows * N);
    ctx->flops += 2.0 * (double)rows * (double)N * (double)K;
    if (out->grad) {
        linact_saved *s = imb_tape_push(ctx, op, linear_act_backward, sizeof *s);
        if (!s) return NULL;
        *s = (linact_saved){ x, w, bias, out, z, dz, act, rows, N, K };
    }
    return imb_ok(ctx) ? out : NULL;
}

imb_tensor *imb_linear_gelu(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *bias) {
    return imb_linear_act(ctx, x, w, bias, IMB_ACT_GELU);
}
