/* Concept-bottleneck ops: shape checks, dispatch and the backward records. */
#include "concept.h"
#include "op.h"
#include <math.h>

/* idx, val, mask of a sparse assignment over B x L tokens; idx NULL means S = K dense slots */
static int check_slots(imb_ctx *ctx, const char *op, const imb_tensor *idx, const imb_tensor *val,
                       const imb_tensor *mask, int64_t B, int64_t L, int64_t K) {
    if (IMB_CHECK(ctx, op, val) || (idx && IMB_CHECK_ANY(ctx, op, idx)) || (mask && IMB_CHECK(ctx, op, mask)))
        return -1;
    if (val->ndim != 3 || val->shape[0] != B || val->shape[1] != L)
        return imb_shape_fail(ctx, op, "val must be [B, L, S] with the tokens' B and L", val);
    if (idx && (idx->dtype != IMB_I32 || !imb_same_shape(idx, val)))
        return imb_shape_fail(ctx, op, "idx must be i32 with val's shape [B, L, S]", idx);
    if (!idx && val->shape[2] != K)
        return imb_shape_fail(ctx, op, "without idx (dense rows) val must be [B, L, K]", val);
    if (mask && (mask->ndim != 2 || mask->shape[0] != B || mask->shape[1] != L))
        return imb_shape_fail(ctx, op, "mask must be [B, L]", mask);
    return 0;
}

static const float *fptr(const imb_tensor *t) { return t ? imb_f32(t) : NULL; }
static const int32_t *iptr(const imb_tensor *t) { return t ? imb_i32(t) : NULL; }

imb_tensor *imb_concept_buckets(imb_ctx *ctx, imb_tensor *C, imb_tensor *E, int kmin) {
    static const char *op = "concept_buckets";
    if (IMB_CHECK(ctx, op, C, E)) return NULL;
    if (C->ndim != 2) return imb_shape_fail(ctx, op, "centres must be [K, D]", C), NULL;
    if (E->ndim != 2 || E->shape[1] != C->shape[1])
        return imb_shape_fail(ctx, op, "bucket embeddings must be [Bk, D] with the centres' D", E), NULL;
    int64_t K = C->shape[0], Bk = E->shape[0], D = C->shape[1];
    if (kmin < 1 || kmin > K) return imb_fail(ctx, "%s: kmin %d outside [1, K = %lld]", op, kmin, (long long)K), NULL;
    imb_tensor *cand = imb_new(ctx, IMB_I32, 2, IMB_SHAPE(Bk, K + 1), 0);
    if (!cand) return NULL;
    IMB_RUN(ctx, imb_concept_buckets, imb_i32(cand), imb_f32(C), imb_f32(E), K, Bk, D, kmin);
    ctx->flops += 3.0 * (double)(K * Bk * D);
    return imb_ok(ctx) ? cand : NULL;
}

typedef struct { imb_tensor *q, *C, *idx, *val; imb_concept_geom g; } assign_saved;

static void assign_backward(imb_ctx *ctx, void *p) {
    assign_saved *s = p;
    float *ws = imb_scratch(ctx, sizeof(float) * (size_t)(s->g.B * s->g.L * s->g.S));
    if (!ws) return;
    IMB_RUN(ctx, imb_concept_assign_bwd, &s->g, imb_g(s->q), imb_g(s->C), ws, imb_gradf(s->val), imb_i32(s->idx),
            imb_f32(s->val), imb_f32(s->q), imb_f32(s->C));
}

imb_tensor *imb_concept_assign(imb_ctx *ctx, imb_tensor *q, imb_tensor *C, imb_tensor *hash, imb_tensor *cand,
                               imb_tensor *mask, int kmin, int kmax, float scale, imb_tensor **idx) {
    static const char *op = "concept_assign";
    if (idx) *idx = NULL;
    if (!idx) return imb_fail(ctx, "%s: idx output is NULL", op), NULL;
    if (IMB_CHECK(ctx, op, q, C, hash) || IMB_CHECK_ANY(ctx, op, cand) || (mask && IMB_CHECK(ctx, op, mask)))
        return NULL;
    if (q->ndim != 3) return imb_shape_fail(ctx, op, "q must be [B, L, D]", q), NULL;
    int64_t B = q->shape[0], L = q->shape[1], D = q->shape[2];
    if (C->ndim != 2 || C->shape[1] != D) return imb_shape_fail(ctx, op, "centres must be [K, D] with q's D", C), NULL;
    int64_t K = C->shape[0];
    if (hash->ndim != 3 || hash->shape[0] != B || hash->shape[1] != L)
        return imb_shape_fail(ctx, op, "hash must be [B, L, Bk] with q's B and L", hash), NULL;
    int64_t Bk = hash->shape[2];
    if (cand->dtype != IMB_I32 || cand->ndim != 2 || cand->shape[0] != Bk || cand->shape[1] != K + 1)
        return imb_shape_fail(ctx, op, "cand must be i32 [Bk, K + 1] (imb_concept_buckets)", cand), NULL;
    if (mask && (mask->ndim != 2 || mask->shape[0] != B || mask->shape[1] != L))
        return imb_shape_fail(ctx, op, "mask must be [B, L]", mask), NULL;
    /* the CUDA kernel keeps a token's candidate scores and kept entries in shared memory */
    if (kmin < 1 || kmin > kmax || kmax > 64 || K > 4096)
        return imb_fail(ctx, "%s: need 1 <= kmin <= kmax <= 64 and K <= 4096 (got kmin %d, kmax %d, K %lld)", op, kmin,
                        kmax, (long long)K), NULL;
    if (!(scale > 0.0f) || isinf(scale)) return imb_fail(ctx, "%s: scale %g must be finite and > 0", op, scale), NULL;
    imb_concept_geom g = { .B = B, .L = L, .S = kmax, .K = K, .D = D, .Bk = Bk, .kmin = kmin, .kmax = kmax,
                           .scale = scale };
    imb_tensor *val = imb_new(ctx, IMB_F32, 3, IMB_SHAPE(B, L, kmax), IMB_WANTS_GRAD(ctx, q, C));
    imb_tensor *ix = imb_new(ctx, IMB_I32, 3, IMB_SHAPE(B, L, kmax), 0);
    if (!val || !ix) return NULL;
    IMB_RUN(ctx, imb_concept_assign_fwd, &g, imb_i32(ix), imb_f32(val), imb_f32(q), imb_f32(C), imb_f32(hash),
            imb_i32(cand), fptr(mask));
    /* scores of a token's candidates: K / Bk of them with balanced buckets (the actual count lives on
     * the device), at least kmin */
    double n = (double)K / (double)Bk < kmin ? kmin : (double)K / (double)Bk;
    ctx->flops += 2.0 * (double)(B * L * D) * n;
    if (val->grad) {
        assign_saved *s = imb_tape_push(ctx, op, assign_backward, sizeof *s);
        if (!s) return NULL;
        *s = (assign_saved){ q, C, ix, val, g };
    }
    if (!imb_ok(ctx)) return NULL;
    *idx = ix;
    return val;
}

typedef struct { imb_tensor *idx, *val, *x, *mask, *out; float *cnt; imb_concept_geom g; } agg_saved;

static void aggregate_backward(imb_ctx *ctx, void *p) {
    agg_saved *s = p;
    IMB_RUN(ctx, imb_concept_agg_bwd, &s->g, imb_g(s->x), imb_g(s->val), iptr(s->idx), imb_f32(s->val), imb_f32(s->x),
            imb_f32(s->out), s->cnt, imb_gradf(s->out), fptr(s->mask));
}

imb_tensor *imb_concept_aggregate(imb_ctx *ctx, imb_tensor *idx, imb_tensor *val, imb_tensor *x, imb_tensor *mask,
                                  int K, float eps) {
    static const char *op = "concept_aggregate";
    if (IMB_CHECK(ctx, op, x)) return NULL;
    if (x->ndim != 3) return imb_shape_fail(ctx, op, "x must be [B, L, D]", x), NULL;
    int64_t B = x->shape[0], L = x->shape[1], D = x->shape[2];
    if (K < 1) return imb_fail(ctx, "%s: K = %d concepts", op, K), NULL;
    if (check_slots(ctx, op, idx, val, mask, B, L, K)) return NULL;
    if (!(eps > 0.0f) || isinf(eps)) return imb_fail(ctx, "%s: eps %g must be finite and > 0", op, eps), NULL;
    imb_concept_geom g = { .B = B, .L = L, .S = val->shape[2], .K = K, .D = D, .eps = eps };
    imb_tensor *out = imb_new(ctx, IMB_F32, 3, IMB_SHAPE(B, K, D), IMB_WANTS_GRAD(ctx, val, x));
    float *cnt = imb_scratch(ctx, sizeof(float) * (size_t)(B * K));
    if (!out || !cnt) return NULL;
    IMB_RUN(ctx, imb_concept_agg_fwd, &g, imb_f32(out), cnt, iptr(idx), imb_f32(val), imb_f32(x), fptr(mask));
    ctx->flops += 2.0 * (double)(B * L * g.S * D);
    if (out->grad) {
        agg_saved *s = imb_tape_push(ctx, op, aggregate_backward, sizeof *s);
        if (!s) return NULL;
        *s = (agg_saved){ idx, val, x, mask, out, cnt, g };
    }
    return imb_ok(ctx) ? out : NULL;
}

static void scatter_backward(imb_ctx *ctx, void *p) {
    agg_saved *s = p;   /* x holds z here */
    IMB_RUN(ctx, imb_concept_scatter_bwd, &s->g, imb_g(s->x), imb_g(s->val), iptr(s->idx), imb_f32(s->val),
            imb_f32(s->x), imb_gradf(s->out), fptr(s->mask));
}

imb_tensor *imb_concept_scatter(imb_ctx *ctx, imb_tensor *idx, imb_tensor *val, imb_tensor *z, imb_tensor *mask) {
    static const char *op = "concept_scatter";
    if (IMB_CHECK(ctx, op, z)) return NULL;
    if (z->ndim != 3) return imb_shape_fail(ctx, op, "z must be [B, K, D]", z), NULL;
    if (IMB_CHECK(ctx, op, val)) return NULL;
    if (val->ndim != 3) return imb_shape_fail(ctx, op, "val must be [B, L, S]", val), NULL;
    int64_t B = z->shape[0], K = z->shape[1], D = z->shape[2], L = val->shape[1];
    if (check_slots(ctx, op, idx, val, mask, B, L, K)) return NULL;
    imb_concept_geom g = { .B = B, .L = L, .S = val->shape[2], .K = K, .D = D };
    imb_tensor *out = imb_new(ctx, IMB_F32, 3, IMB_SHAPE(B, L, D), IMB_WANTS_GRAD(ctx, val, z));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_concept_scatter_fwd, &g, imb_f32(out), iptr(idx), imb_f32(val), imb_f32(z), fptr(mask));
    ctx->flops += 2.0 * (double)(B * L * g.S * D);
    if (out->grad) {
        agg_saved *s = imb_tape_push(ctx, op, scatter_backward, sizeof *s);
        if (!s) return NULL;
        *s = (agg_saved){ idx, val, z, mask, out, NULL, g };
    }
    return imb_ok(ctx) ? out : NULL;
}

typedef struct { imb_tensor *p, *out; int64_t rows, n; } entropy_saved;

static void entropy_backward(imb_ctx *ctx, void *p) {
    entropy_saved *s = p;
    IMB_RUN(ctx, imb_entropy_bwd, imb_gradf(s->p), imb_f32(s->p), imb_gradf(s->out), s->rows, s->n);
}

imb_tensor *imb_entropy(imb_ctx *ctx, imb_tensor *p) {
    static const char *op = "entropy";
    if (IMB_CHECK(ctx, op, p)) return NULL;
    if (p->ndim < 1) return imb_shape_fail(ctx, op, "p needs at least 1 dim", p), NULL;
    int64_t n = p->shape[p->ndim - 1], rows = imb_numel(p) / n;
    imb_tensor *out = p->ndim == 1 ? imb_new(ctx, IMB_F32, 1, IMB_SHAPE(1), IMB_WANTS_GRAD(ctx, p))
                                   : imb_new(ctx, IMB_F32, p->ndim - 1, p->shape, IMB_WANTS_GRAD(ctx, p));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_entropy_fwd, imb_f32(out), imb_f32(p), rows, n);
    if (out->grad) {
        entropy_saved *s = imb_tape_push(ctx, op, entropy_backward, sizeof *s);
        if (!s) return NULL;
        *s = (entropy_saved){ p, out, rows, n };
    }
    return imb_ok(ctx) ? out : NULL;
}
