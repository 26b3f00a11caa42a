/* Embedding and mean-pool ops: id checks, dispatch, backward records. */
#include "embedding.h"
#include "op.h"
#include "step.h"

typedef struct { imb_tensor *table, *ids, *out; int64_t N, V, C; } emb_saved;
typedef struct { imb_tensor *x, *mask, *out; int64_t B, L, C; } pool_saved;

static void embedding_backward(imb_ctx *ctx, void *p) {
    emb_saved *s = p;
    IMB_RUN(ctx, imb_embedding_bwd, imb_gradf(s->table), imb_gradf(s->out), imb_i32(s->ids), s->N, s->V, s->C);
}

imb_tensor *imb_embedding(imb_ctx *ctx, imb_tensor *table, imb_tensor *ids) {
    static const char *op = "embedding";
    if (IMB_CHECK(ctx, op, table) || IMB_CHECK_ANY(ctx, op, ids)) return NULL;
    if (table->ndim != 2) return imb_shape_fail(ctx, op, "table must be [V, C]", table), NULL;
    if (ids->dtype != IMB_I32 || ids->ndim < 1 || ids->ndim > IMB_MAX_DIMS - 1)
        return imb_shape_fail(ctx, op, "ids must be i32 with 1 to 3 dims", ids), NULL;
    int64_t V = table->shape[0], C = table->shape[1], N = imb_numel(ids);
    /* a bad id is an error naming it, never a wild read: the CPU checks now, CUDA on the
     * device (its kernels skip bad ids until the check is reported, see step.h) */
    if (imb_check_range(ctx, op, IMB_CHECK_ID, ids, V)) return NULL;
    int64_t shape[IMB_MAX_DIMS];
    for (int d = 0; d < ids->ndim; d++) shape[d] = ids->shape[d];
    shape[ids->ndim] = C;
    imb_tensor *out = imb_new(ctx, IMB_F32, ids->ndim + 1, shape, IMB_WANTS_GRAD(ctx, table));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_embedding_fwd, imb_f32(out), imb_f32(table), imb_i32(ids), N, V, C);
    if (out->grad) {
        emb_saved *s = imb_tape_push(ctx, op, embedding_backward, sizeof *s);
        if (!s) return NULL;
        *s = (emb_saved){ table, ids, out, N, V, C };
    }
    return imb_ok(ctx) ? out : NULL;
}

static void mean_pool_backward(imb_ctx *ctx, void *p) {
    pool_saved *s = p;
    IMB_RUN(ctx, imb_mean_pool_bwd, imb_gradf(s->x), imb_gradf(s->out),
            s->mask ? imb_f32(s->mask) : NULL, s->B, s->L, s->C);
}

imb_tensor *imb_mean_pool(imb_ctx *ctx, imb_tensor *x, imb_tensor *mask) {
    static const char *op = "mean_pool";
    if (IMB_CHECK(ctx, op, x) || (mask && IMB_CHECK(ctx, op, mask))) return NULL;
    if (x->ndim != 3) return imb_shape_fail(ctx, op, "x must be [B, L, C]", x), NULL;
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    if (mask && (mask->ndim != 2 || mask->shape[0] != B || mask->shape[1] != L))
        return imb_shape_fail(ctx, op, "mask must be [B, L] with x's B and L", mask), NULL;
    imb_tensor *out = imb_new(ctx, IMB_F32, 2, IMB_SHAPE(B, C), IMB_WANTS_GRAD(ctx, x));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_mean_pool_fwd, imb_f32(out), imb_f32(x), mask ? imb_f32(mask) : NULL, B, L, C);
    if (out->grad) {
        pool_saved *s = imb_tape_push(ctx, op, mean_pool_backward, sizeof *s);
        if (!s) return NULL;
        *s = (pool_saved){ x, mask, out, B, L, C };
    }
    return imb_ok(ctx) ? out : NULL;
}
