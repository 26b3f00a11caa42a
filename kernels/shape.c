/* Shape ops (reshape view, permute, concat, split, slice, copy) and their backward records. */
#include "shape.h"
#include "op.h"
#include <string.h>

/* Resolves a possibly negative dim against x's rank; records an error and returns -1 when
 * it is out of range. */
static int norm_dim(imb_ctx *ctx, const char *op, const imb_tensor *x, int dim) {
    int d = dim < 0 ? dim + x->ndim : dim;
    if (d < 0 || d >= x->ndim) {
        char b[96];
        return imb_fail(ctx, "%s: dim %d is out of range for a %d-dim tensor %s", op, dim, x->ndim,
                        imb_shape_str(x, b, sizeof b));
    }
    return d;
}

imb_tensor *imb_reshape(imb_ctx *ctx, imb_tensor *x, int ndim, const int64_t *shape) {
    static const char *op = "reshape";
    if (IMB_CHECK_ANY(ctx, op, x)) return NULL;
    if (ndim < 0 || ndim > IMB_MAX_DIMS || (ndim > 0 && !shape))
        return imb_fail(ctx, "%s: %d dims requested (0 to %d, with a shape)", op, ndim, IMB_MAX_DIMS), NULL;
    /* one -1 is inferred from the rest, as in torch.reshape */
    imb_tensor want = { .ndim = ndim };
    int64_t known = 1, n = imb_numel(x);
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        want.shape[i] = shape[i];
        if (shape[i] == -1 && infer < 0) infer = i;
        else if (shape[i] > 0) known *= shape[i];
        else return imb_fail(ctx, "%s: size %lld at dim %d (sizes must be > 0, with at most one -1)", op,
                             (long long)shape[i], i), NULL;
    }
    if (infer >= 0 && n % known == 0) want.shape[infer] = n / known;
    if (imb_numel(&want) != n) {
        char bx[96], bw[96];
        return imb_fail(ctx, "%s: cannot view %s (%lld elements) as %s", op, imb_shape_str(x, bx, sizeof bx),
                        (long long)n, imb_shape_str(&want, bw, sizeof bw)), NULL;
    }
    /* the gradient buffer is shared, so consumers of the view accumulate straight into x's
     * gradient and no tape record is needed */
    imb_tensor *v = imb_host_alloc(ctx, sizeof *v);
    if (!v) return NULL;
    *v = *x;
    v->ndim = ndim;
    memcpy(v->shape, want.shape, sizeof v->shape);
    return v;
}

typedef struct { imb_tensor *x, *out; int ndim; int perm[IMB_MAX_DIMS]; int64_t xshape[IMB_MAX_DIMS]; } perm_saved;

static void permute_backward(imb_ctx *ctx, void *p) {
    perm_saved *s = p;
    IMB_RUN(ctx, imb_permute_bwd, imb_gradf(s->x), imb_gradf(s->out), s->ndim, s->xshape, s->perm);
}

imb_tensor *imb_permute(imb_ctx *ctx, imb_tensor *x, const int *perm) {
    static const char *op = "permute";
    if (IMB_CHECK(ctx, op, x)) return NULL;
    if (x->ndim > 0 && !perm) return imb_fail(ctx, "%s: perm is NULL", op), NULL;
    int seen[IMB_MAX_DIMS] = { 0 };
    int64_t shape[IMB_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]]++)
            return imb_shape_fail(ctx, op, "perm must list each dim of x exactly once", x), NULL;
        shape[i] = x->shape[perm[i]];
    }
    imb_tensor *out = imb_new(ctx, IMB_F32, x->ndim, shape, IMB_WANTS_GRAD(ctx, x));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_permute_fwd, imb_f32(out), imb_f32(x), x->ndim, x->shape, perm);
    if (out->grad) {
        perm_saved *s = imb_tape_push(ctx, op, permute_backward, sizeof *s);
        if (!s) return NULL;
        s->x = x; s->out = out; s->ndim = x->ndim;
        memcpy(s->perm, perm, sizeof *perm * (size_t)x->ndim);
        memcpy(s->xshape, x->shape, sizeof s->xshape);
    }
    return imb_ok(ctx) ? out : NULL;
}

/* One whole tensor cut along a dim into parts: part i covers [off[i], off[i] + size[i]) of
 * that dim. Concat writes the whole from the parts, split and slice write the parts from
 * the whole; each backward runs the other way and adds. */
typedef struct {
    imb_tensor *whole;
    imb_tensor **parts;
    int64_t *off, *size;
    int n;
    int64_t outer, inner, len;   /* product of the dims before, product of the dims after, size of the dim */
} blocks_saved;

static int blocks_init(imb_ctx *ctx, blocks_saved *b, const imb_tensor *whole, int d, int n) {
    b->n = n;
    b->outer = imb_dims(whole, 0, d);
    b->inner = imb_dims(whole, d + 1, whole->ndim);
    b->len = whole->shape[d];
    b->parts = imb_host_alloc(ctx, sizeof *b->parts * (size_t)n);
    b->off = imb_host_alloc(ctx, sizeof *b->off * (size_t)n);
    b->size = imb_host_alloc(ctx, sizeof *b->size * (size_t)n);
    return b->parts && b->off && b->size ? 0 : -1;
}

/* whole <-> part i, as outer blocks of size[i] * inner floats; to_whole picks the direction */
static void part_copy(imb_ctx *ctx, const blocks_saved *b, int i, int to_whole, float *whole, float *part, int acc) {
    int64_t n = b->size[i] * b->inner, ld = b->len * b->inner;
    float *w = whole + b->off[i] * b->inner;
    if (to_whole) IMB_RUN(ctx, imb_block_copy, w, ld, part, n, b->outer, n, acc);
    else IMB_RUN(ctx, imb_block_copy, part, n, w, ld, b->outer, n, acc);
}

static void concat_backward(imb_ctx *ctx, void *p) {
    blocks_saved *b = p;
    for (int i = 0; i < b->n; i++)
        if (b->parts[i]->grad) part_copy(ctx, b, i, 0, imb_gradf(b->whole), imb_gradf(b->parts[i]), 1);
}

static void split_backward(imb_ctx *ctx, void *p) {
    blocks_saved *b = p;
    for (int i = 0; i < b->n; i++)
        if (b->parts[i]->grad) part_copy(ctx, b, i, 1, imb_gradf(b->whole), imb_gradf(b->parts[i]), 1);
}

static int push_blocks(imb_ctx *ctx, const char *op, imb_backward_fn fn, const blocks_saved *b) {
    blocks_saved *s = imb_tape_push(ctx, op, fn, sizeof *s);
    if (!s) return -1;
    *s = *b;
    return 0;
}

imb_tensor *imb_concat(imb_ctx *ctx, imb_tensor *const *xs, int n, int dim) {
    static const char *op = "concat";
    if (!imb_ok(ctx)) return NULL;
    if (!xs || n < 1) return imb_fail(ctx, "%s: needs at least one tensor (got %d)", op, xs ? n : 0), NULL;
    const imb_tensor *const *cxs = (const imb_tensor *const *)xs;
    if (imb_check_inputs(ctx, op, 0, n, cxs)) return NULL;
    int d = norm_dim(ctx, op, xs[0], dim);
    if (d < 0) return NULL;
    int64_t shape[IMB_MAX_DIMS], len = 0;
    memcpy(shape, xs[0]->shape, sizeof shape);
    for (int i = 0; i < n; i++) {
        int same = xs[i]->ndim == xs[0]->ndim;
        for (int k = 0; same && k < xs[0]->ndim; k++) same = k == d || xs[i]->shape[k] == shape[k];
        if (!same) {
            char b0[96], bi[96];
            return imb_fail(ctx, "%s: input %d %s differs from input 0 %s outside dim %d", op, i,
                            imb_shape_str(xs[i], bi, sizeof bi), imb_shape_str(xs[0], b0, sizeof b0), d), NULL;
        }
        len += xs[i]->shape[d];
    }
    shape[d] = len;
    imb_tensor *out = imb_new(ctx, IMB_F32, xs[0]->ndim, shape, imb_any_grad(ctx, n, cxs));
    blocks_saved b = { .whole = out };
    if (!out || blocks_init(ctx, &b, out, d, n)) return NULL;
    for (int i = 0; i < n; i++) {
        b.parts[i] = xs[i];
        b.off[i] = i ? b.off[i - 1] + b.size[i - 1] : 0;
        b.size[i] = xs[i]->shape[d];
        part_copy(ctx, &b, i, 1, imb_f32(out), imb_f32(xs[i]), 0);
    }
    if (out->grad && push_blocks(ctx, op, concat_backward, &b)) return NULL;
    return imb_ok(ctx) ? out : NULL;
}

/* Split and slice: n parts of x along d, at the given offsets and sizes (already checked). */
static int cut(imb_ctx *ctx, const char *op, imb_tensor *x, int d, int n, const int64_t *off, const int64_t *size,
               imb_tensor **out) {
    blocks_saved b = { .whole = x };
    if (blocks_init(ctx, &b, x, d, n)) return -1;
    int grad = IMB_WANTS_GRAD(ctx, x);
    for (int i = 0; i < n; i++) {
        int64_t shape[IMB_MAX_DIMS];
        memcpy(shape, x->shape, sizeof shape);
        shape[d] = size[i];
        b.parts[i] = imb_new(ctx, IMB_F32, x->ndim, shape, grad);
        if (!b.parts[i]) return -1;
        b.off[i] = off[i];
        b.size[i] = size[i];
        part_copy(ctx, &b, i, 0, imb_f32(x), imb_f32(b.parts[i]), 0);
    }
    if (grad && push_blocks(ctx, op, split_backward, &b)) return -1;
    if (!imb_ok(ctx)) return -1;
    memcpy(out, b.parts, sizeof *out * (size_t)n);
    return 0;
}

int imb_split(imb_ctx *ctx, imb_tensor *x, int dim, int n, const int64_t *sizes, imb_tensor **out) {
    static const char *op = "split";
    for (int i = 0; out && i < n; i++) out[i] = NULL;
    if (IMB_CHECK(ctx, op, x)) return -1;
    if (n < 1 || !sizes || !out) return imb_fail(ctx, "%s: needs n >= 1 sizes and an output array (n = %d)", op, n);
    int d = norm_dim(ctx, op, x, dim);
    if (d < 0) return -1;
    int64_t *off = imb_host_alloc(ctx, sizeof *off * (size_t)n), sum = 0;
    if (!off) return -1;
    for (int i = 0; i < n; i++) {
        if (sizes[i] <= 0) return imb_fail(ctx, "%s: part %d has size %lld (must be > 0)", op, i, (long long)sizes[i]);
        off[i] = sum;
        sum += sizes[i];
    }
    if (sum != x->shape[d]) {
        char b[96];
        return imb_fail(ctx, "%s: the %d sizes sum to %lld but dim %d of %s is %lld", op, n, (long long)sum, d,
                        imb_shape_str(x, b, sizeof b), (long long)x->shape[d]);
    }
    return cut(ctx, op, x, d, n, off, sizes, out);
}

imb_tensor *imb_slice(imb_ctx *ctx, imb_tensor *x, int dim, int64_t start, int64_t len) {
    static const char *op = "slice";
    if (IMB_CHECK(ctx, op, x)) return NULL;
    int d = norm_dim(ctx, op, x, dim);
    if (d < 0) return NULL;
    int64_t S = x->shape[d], s0 = start < 0 ? start + S : start;   /* negative start as in torch.narrow */
    if (s0 < 0 || len < 1 || s0 + len > S) {
        char b[96];
        return imb_fail(ctx, "%s: start %lld, length %lld is out of range for dim %d of %s", op, (long long)start,
                        (long long)len, d, imb_shape_str(x, b, sizeof b)), NULL;
    }
    imb_tensor *out;
    return cut(ctx, op, x, d, 1, &s0, &len, &out) ? NULL : out;
}

typedef struct { imb_tensor *x, *out; int64_t rows, n; } copy_saved;

static void copy_backward(imb_ctx *ctx, void *p) {
    copy_saved *s = p;
    IMB_RUN(ctx, imb_block_copy, imb_gradf(s->x), s->n, imb_gradf(s->out), s->n, s->rows, s->n, 1);
}

imb_tensor *imb_copy(imb_ctx *ctx, imb_tensor *x) {
    static const char *op = "copy";
    if (IMB_CHECK(ctx, op, x)) return NULL;
    imb_tensor *out = imb_new(ctx, IMB_F32, x->ndim, x->shape, IMB_WANTS_GRAD(ctx, x));
    if (!out) return NULL;
    /* rows of the last dim, so the copy spreads over threads */
    int64_t n = x->ndim ? x->shape[x->ndim - 1] : 1, rows = imb_numel(x) / n;
    IMB_RUN(ctx, imb_block_copy, imb_f32(out), n, imb_f32(x), n, rows, n, 0);
    if (out->grad) {
        copy_saved *s = imb_tape_push(ctx, op, copy_backward, sizeof *s);
        if (!s) return NULL;
        *s = (copy_saved){ x, out, rows, n };
    }
    return imb_ok(ctx) ? out : NULL;
}
