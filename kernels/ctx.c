/* imb_ctx lifecycle, sticky errors, activation tensors and the tape. */
#include "config.h"
#include "ctx.h"
#include "mem.h"
#include "op.h"
#include "step.h"
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#ifdef IMB_HAVE_CUDA
#include "cuda/backend.h"
#endif

/* A failed copy: the CUDA backend's reason when it recorded one, else a plain message. */
static int copy_fail(imb_ctx *ctx, const char *what) {
    return imb_device_check(ctx, what) ? -1 : imb_fail(ctx, "%s: copy failed", what);
}

/* false while a CUDA graph replay is being checked: then nothing may touch the device */
static int live(const imb_ctx *ctx) { return ctx->graph_mode != IMB_GRAPH_PROBE; }

imb_ctx *imb_ctx_new(imb_device dev, uint64_t seed, char *err, size_t errn) {
    if (dev == IMB_CUDA && !imb_have_cuda()) {
#ifdef IMB_HAVE_CUDA
        snprintf(err, errn, "no CUDA device is visible");
#else
        snprintf(err, errn, "this build has no CUDA backend (reconfigure with nvcc on PATH or --with-cuda=DIR)");
#endif
        return NULL;
    }
    imb_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) { snprintf(err, errn, "out of host memory"); return NULL; }
#ifdef IMB_HAVE_CUDA
    /* the process-wide stream and BLAS handles: created here so a failure is reported with
     * its reason now rather than by the first kernel */
    if (dev == IMB_CUDA) {
        if (imb_cuda_init(err, errn)) { free(ctx); return NULL; }
        ctx->cuda = imb_cuda_backend_ptr();
    }
#endif
    ctx->device = dev;
    ctx->seed = seed;
    imb_arena_init(&ctx->act, dev, "activation", 0);
    imb_arena_init(&ctx->host, IMB_CPU, "host", (size_t)4 << 20);
    if (imb_step_state_new(ctx, err, errn)) {
        imb_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

void imb_ctx_free(imb_ctx *ctx) {
    if (!ctx) return;
    imb_step_state_free(ctx);
    imb_arena_free(&ctx->act);
    imb_arena_free(&ctx->host);
    imb_params *ps = &ctx->params;
    for (int i = 0; i < ps->n; i++) { free(ps->p[i].name); free(ps->p[i].t); }
    free(ps->p);
    imb_mem_free(ctx->device, ps->data);
    imb_mem_free(ctx->device, ps->grad);
    imb_mem_free(ctx->device, ps->m);
    imb_mem_free(ctx->device, ps->v);
    imb_mem_free(ctx->device, ps->decay_mask);
    imb_mem_free(ctx->device, ps->update_mask);
    free(ctx->tape.e);
    free(ctx->gb.first);
    free(ctx->gb.order);
    free(ctx);
}

int imb_grad_buckets_set(imb_ctx *ctx, size_t floats, imb_grad_ready_fn fn, void *user) {
    imb_grad_buckets *gb = &ctx->gb;
    free(gb->first);
    free(gb->order);
    memset(gb, 0, sizeof *gb);
    if (!fn) return 0;
    if (!ctx->params.allocated || !floats) return imb_fail(ctx, "grad buckets: need allocated parameters and a size");
    gb->floats = floats;
    gb->n = (int)((ctx->params.total + floats - 1) / floats);
    gb->first = malloc(sizeof *gb->first * (size_t)(gb->n ? gb->n : 1));
    gb->order = malloc(sizeof *gb->order * (size_t)(gb->n ? gb->n : 1));
    if (!gb->first || !gb->order) return imb_fail(ctx, "grad buckets: out of host memory");
    for (int b = 0; b < gb->n; b++) gb->first[b] = INT_MAX;
    gb->fn = fn;
    gb->user = user;
    return 0;
}

void imb_note_read(imb_ctx *ctx, const imb_tensor *t) {
    imb_grad_buckets *gb = &ctx->gb;
    if (!gb->fn || !ctx->training || !t || !t->grad) return;
    const float *g = t->grad, *base = ctx->params.grad;
    if (g < base || g >= base + ctx->params.total) return;   /* an activation, not a parameter */
    size_t off = (size_t)(g - base), end = off + (size_t)imb_numel(t);
    for (size_t b = off / gb->floats; b < (end + gb->floats - 1) / gb->floats && b < (size_t)gb->n; b++)
        if (gb->first[b] > ctx->tape.n) gb->first[b] = ctx->tape.n;
}

int imb_fail(imb_ctx *ctx, const char *fmt, ...) {
    if (ctx->err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    va_end(ap);
    ctx->err = 1;
    return -1;
}

const char *imb_error(const imb_ctx *ctx) { return ctx->err ? ctx->errmsg : ""; }

void imb_error_clear(imb_ctx *ctx) { ctx->err = 0; ctx->errmsg[0] = 0; }

void imb_step_begin(imb_ctx *ctx, int training) {
    /* a data check of the last step that failed on the device is reported, not lost */
    if (ctx->st && ctx->st->unreported && ctx->graph_mode == IMB_GRAPH_EAGER && imb_ok(ctx)) imb_check_report(ctx);
    imb_arena_reset(&ctx->act);
    imb_arena_reset(&ctx->host);
    ctx->tape.n = 0;
    ctx->training = training;
    ctx->step++;
    for (int b = 0; b < ctx->gb.n; b++) ctx->gb.first[b] = INT_MAX;
    imb_step_reset(ctx);
}

void *imb_host_alloc(imb_ctx *ctx, size_t bytes) {
    void *p = imb_arena_alloc(&ctx->host, bytes);
    if (!p) imb_fail(ctx, "%s", ctx->host.err);
    return p;
}

void *imb_scratch(imb_ctx *ctx, size_t bytes) {
    void *p = imb_arena_alloc(&ctx->act, bytes);
    if (!p) imb_fail(ctx, "%s", ctx->act.err);
    else if (ctx->trace) imb_trace_alloc(ctx, p, bytes);
    return p;
}

imb_tensor *imb_new(imb_ctx *ctx, imb_dtype dt, int ndim, const int64_t *shape, int with_grad) {
    if (ndim < 0 || ndim > IMB_MAX_DIMS) {
        imb_fail(ctx, "tensor: %d dims (at most %d)", ndim, IMB_MAX_DIMS);
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0) {
            imb_fail(ctx, "tensor: dim %d has size %lld (must be > 0)", i, (long long)shape[i]);
            return NULL;
        }
    imb_tensor *t = imb_host_alloc(ctx, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->device = ctx->device;
    /* shapes are kernel arguments: a replay must see the captured ones, not just the sizes */
    if (ctx->trace) {
        imb_trace_op(ctx, (uintptr_t)dt << 8 | (uintptr_t)ndim);
        for (int i = 0; i < ndim; i++) imb_trace_op(ctx, (uintptr_t)shape[i]);
    }
    t->data = imb_scratch(ctx, imb_nbytes(t));
    if (!t->data) return NULL;
    if (with_grad && ctx->training) {
        size_t gb = (size_t)imb_numel(t) * sizeof(float);
        t->grad = imb_scratch(ctx, gb);
        if (!t->grad) return NULL;
        if (live(ctx)) imb_mem_zero(ctx->device, t->grad, gb);
    }
    return t;
}

imb_tensor *imb_input(imb_ctx *ctx, imb_dtype dt, int ndim, const int64_t *shape, const void *host) {
    imb_tensor *t = imb_new(ctx, dt, ndim, shape, 0);
    if (!t) return NULL;
    size_t n = imb_nbytes(t);
    /* a capture or a replay's probe records the copy; the graph code makes it before the launch */
    if (ctx->trace && imb_trace_input(ctx, t->data, host, n)) return NULL;
    if (ctx->graph_mode != IMB_GRAPH_EAGER) return t;
    if (ctx->device == IMB_CUDA) return imb_copy_in(ctx, t->data, host, n) ? NULL : t;
    if (imb_mem_copy(ctx->device, t->data, IMB_CPU, host, n)) {
        copy_fail(ctx, "input");
        return NULL;
    }
    return t;
}

imb_tensor *imb_full(imb_ctx *ctx, int ndim, const int64_t *shape, float value) {
    imb_tensor *t = imb_new(ctx, IMB_F32, ndim, shape, 0);
    if (!t) return NULL;
    union { float f; uint32_t u; } v = { value };
    if (live(ctx)) imb_mem_fill32(ctx->device, t->data, v.u, (size_t)imb_numel(t));
    return t;
}

int imb_to_host(imb_ctx *ctx, const imb_tensor *t, void *host, int grad) {
    if (!t) return imb_fail(ctx, "to_host: NULL tensor");
    const void *src = grad ? t->grad : t->data;
    if (!src) return imb_fail(ctx, "to_host: tensor %s has no %s", t->name ? t->name : "(unnamed)", grad ? "gradient" : "data");
    size_t n = grad ? (size_t)imb_numel(t) * sizeof(float) : imb_nbytes(t);
    if (!live(ctx)) {
        /* a replay's probe has no device data to give: the step differs from the captured one
         * (which could not have waited for the device either) */
        if (ctx->trace && !ctx->trace->host_read) ctx->trace->host_read = t->name ? t->name : "to_host";
        memset(host, 0, n);
        return 0;
    }
    if (imb_mem_copy(IMB_CPU, host, t->device, src, n)) return copy_fail(ctx, "to_host");
    if (ctx->device == IMB_CUDA) {
        ctx->st->stage_used = 0;   /* the copy waited for the stream: staged copies are done */
        if (ctx->st->unreported) return imb_check_report(ctx);
    }
    return 0;
}

void *imb_tape_push(imb_ctx *ctx, const char *op, imb_backward_fn fn, size_t saved_bytes) {
    imb_tape *tp = &ctx->tape;
    if (tp->n == tp->cap) {
        int nc = tp->cap ? 2 * tp->cap : 256;
        imb_tape_entry *ne = realloc(tp->e, sizeof *ne * (size_t)nc);
        if (!ne) { imb_fail(ctx, "tape: out of host memory"); return NULL; }
        tp->e = ne; tp->cap = nc;
    }
    void *saved = imb_host_alloc(ctx, saved_bytes);
    if (!saved) return NULL;
    memset(saved, 0, saved_bytes);
    tp->e[tp->n++] = (imb_tape_entry){ fn, saved, op };
    if (ctx->trace) imb_trace_op(ctx, (uintptr_t)fn);
    return saved;
}

static imb_grad_buckets *sort_gb;
static int by_first_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b, fx = sort_gb->first[x], fy = sort_gb->first[y];
    return fx != fy ? (fx < fy) - (fx > fy) : (x < y) - (x > y);
}

/* reports the buckets whose first reader is at tape index >= i, from position *k of order */
static void report_ready(imb_ctx *ctx, int i, int *k) {
    imb_grad_buckets *gb = &ctx->gb;
    for (; *k < gb->n && gb->first[gb->order[*k]] >= i && imb_ok(ctx); ++*k) {
        size_t lo = (size_t)gb->order[*k] * gb->floats, hi = lo + gb->floats;
        gb->fn(ctx, lo, hi < ctx->params.total ? hi : ctx->params.total, gb->user);
    }
}

static int replay(imb_ctx *ctx) {
    imb_grad_buckets *gb = &ctx->gb;
    int k = 0;
    if (gb->fn) {
        for (int b = 0; b < gb->n; b++) gb->order[b] = b;
        sort_gb = gb;   /* qsort has no context argument; replay is not re-entrant anyway */
        qsort(gb->order, (size_t)gb->n, sizeof *gb->order, by_first_desc);
        report_ready(ctx, ctx->tape.n, &k);   /* buckets no recorded op reads */
    }
    for (int i = ctx->tape.n - 1; i >= 0 && imb_ok(ctx); i--) {
        ctx->tape.e[i].fn(ctx, ctx->tape.e[i].saved);
        if (gb->fn) report_ready(ctx, i, &k);
    }
    if (gb->fn) report_ready(ctx, INT_MIN, &k);   /* reads noted after the last record, if any */
    ctx->tape.n = 0;
    return imb_ok(ctx) ? 0 : -1;
}

int imb_backward(imb_ctx *ctx, imb_tensor *loss) {
    if (!imb_ok(ctx)) return -1;
    if (!loss) return imb_fail(ctx, "backward: NULL loss");
    if (imb_numel(loss) != 1) return imb_fail(ctx, "backward: loss must be a scalar, got %lld elements", (long long)imb_numel(loss));
    if (!loss->grad) return imb_fail(ctx, "backward: loss has no gradient (not training, or no parameter reaches it)");
    if (live(ctx)) imb_mem_fill32(ctx->device, loss->grad, 0x3f800000u, 1);   /* 1.0f */
    return replay(ctx);
}

int imb_backward_seed(imb_ctx *ctx, imb_tensor *t, const float *dy) {
    if (!imb_ok(ctx)) return -1;
    if (!t || !t->grad) return imb_fail(ctx, "backward: output has no gradient");
    if (live(ctx) && imb_mem_copy(ctx->device, t->grad, IMB_CPU, dy, (size_t)imb_numel(t) * sizeof(float)))
        return copy_fail(ctx, "backward seed");
    return replay(ctx);
}
