/* The step block, the data checks that report through it, and pinned staging (see step.h). */
#include "config.h"
#include "step.h"
#include "mem.h"
#include "op.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGE_MIN ((size_t)1 << 20)

int imb_step_state_new(imb_ctx *ctx, char *err, size_t errn) {
    imb_step_state *st = calloc(1, sizeof *st);
    if (!st) { snprintf(err, errn, "step block: out of host memory"); return -1; }
    ctx->st = st;
    char e[256];
    if (imb_mem_alloc(ctx->device, (void **)&st->in, sizeof *st->in, e, sizeof e) ||
        imb_mem_alloc(ctx->device, (void **)&st->out, sizeof *st->out, e, sizeof e)) {
        snprintf(err, errn, "step block: %s", e);
        return -1;
    }
    st->out_host = st->out;
#ifdef IMB_HAVE_CUDA
    if (ctx->device == IMB_CUDA) {
        st->out_host = NULL;
        if (imb_cuda_host_alloc((void **)&st->out_host, sizeof *st->out_host, e, sizeof e)) {
            snprintf(err, errn, "step block: %s", e);
            return -1;
        }
        imb_step_reset_cpu(st->out_host);
    }
#endif
    memset(&st->in_host, 0, sizeof st->in_host);
    imb_step_reset(ctx);
    if (imb_mem_copy(ctx->device, st->in, IMB_CPU, &st->in_host, sizeof st->in_host) || imb_device_check(ctx, "step block")) {
        snprintf(err, errn, "step block: %s", imb_ok(ctx) ? "copy to the device failed" : imb_error(ctx));
        return -1;
    }
    return 0;
}

void imb_step_state_free(imb_ctx *ctx) {
    imb_step_state *st = ctx->st;
    if (!st) return;
    imb_mem_free(ctx->device, st->in);
    imb_mem_free(ctx->device, st->out);
#ifdef IMB_HAVE_CUDA
    if (ctx->device == IMB_CUDA) {
        imb_cuda_host_free(st->out_host);
        imb_cuda_host_free(st->stage);
        for (int i = 0; i < st->npinned; i++) imb_cuda_host_free(st->pinned[i].p);
    } else
#endif
    {
        for (int i = 0; i < st->npinned; i++) free(st->pinned[i].p);
    }
    free(st->pinned);
    free(st->sites);
    free(st);
    ctx->st = NULL;
}

void imb_step_reset(imb_ctx *ctx) {
    imb_step_state *st = ctx->st;
    if (!st) return;
    st->nsites = 0;
    IMB_RUN(ctx, imb_step_reset, st->out);
}

int imb_step_upload(imb_ctx *ctx) {
    imb_step_state *st = ctx->st;
    if (!imb_ok(ctx)) return -1;
    /* a capture would keep the staging address, not the values: later replays would read
     * whatever the staging holds then */
    if (ctx->graph_mode != IMB_GRAPH_EAGER) return imb_fail(ctx, "step block: upload inside a graph capture or replay");
    if (ctx->device == IMB_CPU) {
        *st->in = st->in_host;
        return 0;
    }
    return imb_copy_in(ctx, st->in, &st->in_host, sizeof st->in_host);
}

int imb_step_keep(imb_ctx *ctx, int slot, const imb_tensor *t) {
    static const char *op = "step_keep";
    if (IMB_CHECK(ctx, op, t)) return -1;
    if (slot < 0 || slot >= IMB_STEP_VALS) return imb_fail(ctx, "%s: slot %d outside [0, %d)", op, slot, IMB_STEP_VALS);
    if (imb_numel(t) != 1) return imb_shape_fail(ctx, op, "the kept value must be a scalar", t);
    IMB_RUN(ctx, imb_step_keep, &ctx->st->out->vals[slot], imb_f32(t));
    return imb_ok(ctx) ? 0 : -1;
}

int imb_step_fetch(imb_ctx *ctx) {
    if (!imb_ok(ctx)) return -1;
    IMB_RUN(ctx, imb_step_fetch, ctx->st->out_host, ctx->st->out);
    return imb_ok(ctx) ? 0 : -1;
}

const imb_step_out *imb_step_result(const imb_ctx *ctx) { return ctx->st->out_host; }

/* "[1, 3]": the multi-dim position of flat index i in the checked tensor */
static const char *position_str(const imb_check_site *s, int64_t i, char *buf, size_t n) {
    int64_t idx[IMB_MAX_DIMS];
    for (int d = s->ndim - 1; d >= 0; d--) { idx[d] = i % s->shape[d]; i /= s->shape[d]; }
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < s->ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)idx[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* Words a failed check and clears the verdict, so the next step starts clean. */
static int report_bad(imb_ctx *ctx, uint64_t key) {
    imb_step_state *st = ctx->st;
    uint32_t site = (uint32_t)(key >> 32);
    int64_t i = (int64_t)(key & 0xffffffffu);
    uint64_t none = IMB_CHECK_NONE;
    st->out_host->bad = none;
    int32_t v = 0;
    int read = -1;
    if (ctx->device == IMB_CPU) {
        if (site < (uint32_t)st->nsites) { v = st->sites[site].data[i]; read = 0; }
    } else {
        imb_mem_copy(ctx->device, &st->out->bad, IMB_CPU, &none, sizeof none);
        if (site < (uint32_t)st->nsites) read = imb_mem_copy(IMB_CPU, &v, ctx->device, st->sites[site].data + i, sizeof v);
    }
    if (read) return imb_fail(ctx, "a data check failed on the device (element %lld of check %u of the step)", (long long)i, site);
    const imb_check_site *s = &st->sites[site];
    if (s->kind == IMB_CHECK_LABEL)
        return imb_fail(ctx, "%s: label %d at row %lld is out of range for %lld classes", s->op, v, (long long)i,
                        (long long)s->limit);
    char pos[64];
    return imb_fail(ctx, "%s: id %d at position %s is out of range for a table of %lld rows", s->op, v,
                    position_str(s, i, pos, sizeof pos), (long long)s->limit);
}

int imb_check_range(imb_ctx *ctx, const char *op, imb_check_kind kind, const imb_tensor *t, int64_t limit) {
    if (!imb_ok(ctx)) return -1;
    imb_step_state *st = ctx->st;
    int64_t n = imb_numel(t);
    if (n > (int64_t)UINT32_MAX) return imb_fail(ctx, "%s: %lld values to check (at most 2^32)", op, (long long)n);
    if (st->nsites == st->capsites) {
        int nc = st->capsites ? 2 * st->capsites : 16;
        imb_check_site *ns = realloc(st->sites, sizeof *ns * (size_t)nc);
        if (!ns) return imb_fail(ctx, "%s: out of host memory", op);
        st->sites = ns;
        st->capsites = nc;
    }
    uint32_t site = (uint32_t)st->nsites++;
    imb_check_site *s = &st->sites[site];
    *s = (imb_check_site){ op, kind, limit, imb_i32(t), t->ndim, { 0 } };
    for (int d = 0; d < t->ndim; d++) s->shape[d] = t->shape[d];
    IMB_RUN(ctx, imb_check_range, &st->out->bad, imb_i32(t), n, limit, kind == IMB_CHECK_LABEL, site);
    if (ctx->device == IMB_CPU) return imb_check_report(ctx);
    if (ctx->graph_mode == IMB_GRAPH_EAGER) st->unreported++;
    return imb_ok(ctx) ? 0 : -1;
}

int imb_check_report(imb_ctx *ctx) {
    imb_step_state *st = ctx->st;
    st->unreported = 0;
    uint64_t bad = IMB_CHECK_NONE;
    if (ctx->device == IMB_CPU) {
        bad = st->out->bad;
    } else {
        if (imb_mem_copy(IMB_CPU, &bad, ctx->device, &st->out->bad, sizeof bad))
            return imb_device_check(ctx, "data check") ? -1 : imb_fail(ctx, "data check: copy failed");
        st->stage_used = 0;   /* the copy waited for the stream */
    }
    return bad == IMB_CHECK_NONE ? 0 : report_bad(ctx, bad);
}

int imb_step_sync(imb_ctx *ctx) {
    imb_step_state *st = ctx->st;
#ifdef IMB_HAVE_CUDA
    if (ctx->device == IMB_CUDA) {
        if (imb_cuda_sync()) return imb_device_check(ctx, "step") ? -1 : imb_fail(ctx, "step: waiting for the device failed");
        if (imb_device_check(ctx, "step")) return -1;
        st->stage_used = 0;
    }
#endif
    st->unreported = 0;
    uint64_t bad = st->out_host->bad;
    if (bad != IMB_CHECK_NONE) return report_bad(ctx, bad);
    return imb_ok(ctx) ? 0 : -1;
}

/* ---- pinned buffers and staging ---- */

void *imb_pinned_alloc(imb_ctx *ctx, size_t bytes) {
    imb_step_state *st = ctx->st;
    if (st->npinned == st->cappinned) {
        int nc = st->cappinned ? 2 * st->cappinned : 8;
        imb_pinned_buf *nb = realloc(st->pinned, sizeof *nb * (size_t)nc);
        if (!nb) { imb_fail(ctx, "pinned memory: out of host memory"); return NULL; }
        st->pinned = nb;
        st->cappinned = nc;
    }
    void *p = NULL;
#ifdef IMB_HAVE_CUDA
    if (ctx->device == IMB_CUDA) {
        char e[256];
        if (imb_cuda_host_alloc(&p, bytes, e, sizeof e)) { imb_fail(ctx, "pinned memory: %s", e); return NULL; }
    } else
#endif
    {
        p = malloc(bytes ? bytes : 1);
        if (!p) { imb_fail(ctx, "pinned memory: out of host memory allocating %zu bytes", bytes); return NULL; }
    }
    st->pinned[st->npinned++] = (imb_pinned_buf){ p, bytes };
    return p;
}

void imb_pinned_free(imb_ctx *ctx, void *p) {
    imb_step_state *st = ctx->st;
    if (!p) return;
    for (int i = 0; i < st->npinned; i++)
        if (st->pinned[i].p == p) {
#ifdef IMB_HAVE_CUDA
            if (ctx->device == IMB_CUDA) imb_cuda_host_free(p);
            else
#endif
                free(p);
            st->pinned[i] = st->pinned[--st->npinned];
            return;
        }
}

#ifdef IMB_HAVE_CUDA
static int in_pinned(const imb_step_state *st, const void *host, size_t bytes) {
    const char *h = host;
    for (int i = 0; i < st->npinned; i++) {
        const char *b = st->pinned[i].p;
        if (h >= b && bytes <= st->pinned[i].bytes && (size_t)(h - b) <= st->pinned[i].bytes - bytes) return 1;
    }
    return 0;
}
#endif

void *imb_stage(imb_ctx *ctx, size_t bytes) {
    imb_step_state *st = ctx->st;
    size_t need = (bytes + 255) & ~(size_t)255;
    if (!need) need = 256;
    if (st->stage_cap - st->stage_used < need) {
#ifdef IMB_HAVE_CUDA
        if (ctx->device != IMB_CUDA) { imb_fail(ctx, "staging: only for CUDA contexts"); return NULL; }
        if (ctx->graph_mode != IMB_GRAPH_EAGER) { imb_fail(ctx, "staging: would grow inside a graph capture"); return NULL; }
        size_t cap = 2 * st->stage_cap;
        if (cap < need) cap = need;
        if (cap < STAGE_MIN) cap = STAGE_MIN;
        /* copies queued from the old buffer must be done before it goes */
        if (st->stage && st->stage_used && imb_cuda_sync()) { imb_device_check(ctx, "staging"); return NULL; }
        imb_cuda_host_free(st->stage);
        st->stage = NULL;
        st->stage_cap = st->stage_used = 0;
        char e[256];
        void *p;
        if (imb_cuda_host_alloc(&p, cap, e, sizeof e)) { imb_fail(ctx, "staging: %s", e); return NULL; }
        st->stage = p;
        st->stage_cap = cap;
#else
        imb_fail(ctx, "staging: this build has no CUDA backend");
        return NULL;
#endif
    }
    void *p = st->stage + st->stage_used;
    st->stage_used += need;
    return p;
}

int imb_copy_in(imb_ctx *ctx, void *dev, const void *host, size_t bytes) {
    if (!bytes) return 0;
    if (ctx->device == IMB_CPU) {
        memmove(dev, host, bytes);
        return 0;
    }
#ifdef IMB_HAVE_CUDA
    const void *src = host;
    if (!in_pinned(ctx->st, host, bytes)) {
        void *p = imb_stage(ctx, bytes);
        if (!p) return -1;
        memcpy(p, host, bytes);
        src = p;
    }
    if (imb_cuda_copy_async(dev, src, bytes, 0))
        return imb_device_check(ctx, "input copy") ? -1 : imb_fail(ctx, "input copy failed");
    return 0;
#else
    (void)dev;
    (void)host;
    return imb_fail(ctx, "input copy: this build has no CUDA backend");
#endif
}
