/* Training steps as CUDA graphs: eager warm-up, capture, probe-checked replay (see graph.h). */
#include "config.h"
#include "graph.h"
#include "mem.h"
#include "op.h"
#include "step.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef IMB_HAVE_CUDA
#include "cuda/backend.h"
#endif

/* Captures per run: a step whose shapes keep changing (variable-length batches) stops
 * re-capturing after this many and keeps the last graph for the steps that match it. */
#define MAX_CAPTURES 4

struct imb_graph {
    imb_ctx *ctx;
    imb_graph_use use;
    FILE *warn;
    imb_graph_stats stats;
    imb_trace cap, probe;          /* the captured step's walk, the current replay's */
    void *exec;                    /* cudaGraphExec_t; EMULATE: the graph itself as a marker */
    unsigned long long scratch_gen;
    int captures, mismatch_run;
    int64_t steps;
    char pending[600];             /* a failed capture's warning, printed once an eager step succeeds */
};

/* ---- the host walk's trace ---- */

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

void imb_trace_alloc(imb_ctx *ctx, const void *p, size_t bytes) {
    imb_trace *t = ctx->trace;
    t->hash = mix(mix(t->hash, (uint64_t)(uintptr_t)p), (uint64_t)bytes);
    t->nalloc++;
}

void imb_trace_op(imb_ctx *ctx, uintptr_t tag) {
    imb_trace *t = ctx->trace;
    t->hash = mix(t->hash, (uint64_t)tag);
    t->nops++;
}

int imb_trace_input(imb_ctx *ctx, void *dev, const void *host, size_t bytes) {
    imb_trace *t = ctx->trace;
    if (t->nin == t->capin) {
        int nc = t->capin ? 2 * t->capin : 16;
        imb_input_rec *ni = realloc(t->in, sizeof *ni * (size_t)nc);
        if (!ni) return imb_fail(ctx, "input: out of host memory");
        t->in = ni;
        t->capin = nc;
    }
    t->in[t->nin++] = (imb_input_rec){ dev, host, bytes };
    return 0;
}

static void trace_reset(imb_trace *t) {
    t->hash = 0;
    t->nalloc = t->nops = 0;
    t->nin = 0;
    t->host_read = NULL;
}

/* The same walk: every allocation at the same address with the same size, the same ops and
 * tape records in the same order, the same inputs at the same addresses and sizes. */
static int trace_same(const imb_trace *a, const imb_trace *b) {
    if (a->hash != b->hash || a->nalloc != b->nalloc || a->nops != b->nops || a->nin != b->nin) return 0;
    for (int i = 0; i < a->nin; i++)
        if (a->in[i].dev != b->in[i].dev || a->in[i].bytes != b->in[i].bytes) return 0;
    return !b->host_read;
}

/* ---- set-up ---- */

static int sync_env(void) {
    const char *s = getenv("IMB_CUDA_SYNC");
    return s && *s && strcmp(s, "0") != 0;
}

imb_graph *imb_graph_new(imb_ctx *ctx, imb_graph_use use, const char *why_off, FILE *warn) {
    imb_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->ctx = ctx;
    g->use = use;
    g->warn = warn ? warn : stderr;
    const char *why = NULL;
    if (use == IMB_GRAPH_OFF) why = why_off && *why_off ? why_off : "not requested";
    else if (use == IMB_GRAPH_ON && ctx->device != IMB_CUDA) why = "CUDA graphs are for CUDA contexts";
#ifndef IMB_HAVE_CUDA
    else if (use == IMB_GRAPH_ON) why = "this build has no CUDA backend";
#endif
    else if (ctx->gb.fn) why = "data-parallel gradient buckets all-reduce during the backward (not captured)";
    else if (use == IMB_GRAPH_ON && sync_env()) why = "IMB_CUDA_SYNC=1 waits for the device after every op";
    g->stats.on = why == NULL;
    if (why) snprintf(g->stats.why_off, sizeof g->stats.why_off, "%s", why);
    return g;
}

static void drop_exec(imb_graph *g) {
#ifdef IMB_HAVE_CUDA
    if (g->exec && g->use == IMB_GRAPH_ON) imb_cuda_graph_exec_destroy(g->exec);
#endif
    g->exec = NULL;
}

void imb_graph_free(imb_graph *g) {
    if (!g) return;
    drop_exec(g);
    free(g->cap.in);
    free(g->probe.in);
    free(g);
}

const imb_graph_stats *imb_graph_get_stats(const imb_graph *g) { return &g->stats; }

const char *imb_graph_describe(const imb_graph *g, char *buf, size_t n) {
    const imb_graph_stats *s = &g->stats;
    if (!s->on && !s->captured)
        snprintf(buf, n, "off (%s)", s->why_off);
    else
        snprintf(buf, n, "%s (%lld eager, %lld captured, %lld replayed, %lld eager after a shape change)%s%s",
                 s->on ? "on" : "turned off", (long long)s->eager, (long long)s->captured, (long long)s->replayed,
                 (long long)s->mismatched, s->on ? "" : ": ", s->on ? "" : s->why_off);
    return buf;
}

static void turn_off(imb_graph *g, const char *why) {
    g->stats.on = 0;
    snprintf(g->stats.why_off, sizeof g->stats.why_off, "%s", why);
    drop_exec(g);
}

/* ---- the three ways to run a step ---- */

#ifdef IMB_HAVE_CUDA
/* inputs recorded by a capture or a probe, copied to their arena addresses before a launch */
static int flush_inputs(imb_graph *g, const imb_trace *t) {
    for (int i = 0; i < t->nin; i++)
        if (imb_copy_in(g->ctx, t->in[i].dev, t->in[i].host, t->in[i].bytes)) return -1;
    return 0;
}
#endif

static int run_eager(imb_graph *g, imb_step_fn fn, void *ud) {
    imb_ctx *ctx = g->ctx;
    int rc = fn(ctx, ud);
    if (rc || !imb_ok(ctx)) return imb_ok(ctx) ? imb_fail(ctx, "step: the step function failed") : -1;
    return imb_step_fetch(ctx);
}

#ifdef IMB_HAVE_CUDA
/* A failed capture or probe leaves errors in three places; the step is then run eagerly. */
static void clear_errors(imb_ctx *ctx) {
    imb_error_clear(ctx);
    imb_cuda_clear_error();
    imb_cuda_clear_last();
}
#endif

/* 1: the step ran (launched, or eagerly under EMULATE); 0: it did not, run it eagerly;
 * -1: an error that an eager step would not fix (ctx says why). */
static int capture(imb_graph *g, imb_step_fn fn, void *ud) {
    imb_ctx *ctx = g->ctx;
    g->captures++;
    trace_reset(&g->cap);
    if (g->use == IMB_GRAPH_EMULATE) {
        ctx->trace = &g->cap;
        int rc = fn(ctx, ud);
        ctx->trace = NULL;   /* the fetch below is no part of the step's walk: a probe makes none */
        if (rc || !imb_ok(ctx)) return imb_ok(ctx) ? imb_fail(ctx, "step: the step function failed") : -1;
        if (imb_step_fetch(ctx)) return -1;
        g->exec = g;
        g->stats.captured++;
        return 1;
    }
#ifdef IMB_HAVE_CUDA
    uint64_t step0 = ctx->step;
    char why[512] = "";
    if (imb_cuda_capture_begin(why, sizeof why)) {
        snprintf(g->pending, sizeof g->pending, "%s", why);
        return 0;
    }
    imb_cuda_scratch_refused(1);
    ctx->act.grow_refused = 0;
    ctx->act.frozen = 1;
    ctx->graph_mode = IMB_GRAPH_CAPTURE;
    ctx->trace = &g->cap;
    int rc = fn(ctx, ud);
    ctx->trace = NULL;   /* the fetch is captured but no part of the step's walk: a probe makes none */
    if (!rc && imb_ok(ctx)) imb_step_fetch(ctx);
    ctx->graph_mode = IMB_GRAPH_EAGER;
    ctx->act.frozen = 0;
    void *graph = NULL;
    char end[256] = "";
    int end_rc = imb_cuda_capture_end(&graph, end, sizeof end);
    int grew = ctx->act.grow_refused || imb_cuda_scratch_refused(1);
    void *exec = NULL;
    if (rc || !imb_ok(ctx) || end_rc || !graph) {
        snprintf(why, sizeof why, "%s", !imb_ok(ctx) ? imb_error(ctx) : end[0] ? end : "the step function failed");
    } else if (imb_cuda_graph_instantiate(graph, &exec, why, sizeof why)) {
        exec = NULL;
    }
    if (graph) imb_cuda_graph_destroy(graph);
    if (!exec) {
        clear_errors(ctx);
        ctx->step = step0;
        /* a step that needed more memory than the warm-up is no unsafe op: capture again later */
        if (!(grew && g->captures < MAX_CAPTURES))
            snprintf(g->pending, sizeof g->pending, "CUDA graph capture failed at %s", why);
        return 0;
    }
    g->exec = exec;
    g->scratch_gen = imb_cuda_scratch_generation();
    g->stats.captured++;
    g->mismatch_run = 0;
    if (flush_inputs(g, &g->cap)) return -1;
    if (imb_cuda_graph_launch(exec, why, sizeof why)) return imb_fail(ctx, "step: %s", why);
    return 1;
#else
    (void)fn;
    (void)ud;
    return 0;
#endif
}

static uint64_t sum_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* EMULATE: a fingerprint of everything a leaked launch in the probe could change */
static uint64_t state_print(const imb_ctx *ctx) {
    const imb_params *ps = &ctx->params;
    size_t bytes = ps->total * sizeof(float);
    uint64_t h = 1469598103934665603ull;
    if (ps->allocated) {
        h = sum_bytes(h, ps->data, bytes);
        h = sum_bytes(h, ps->grad, bytes);
        h = sum_bytes(h, ps->m, bytes);
        h = sum_bytes(h, ps->v, bytes);
    }
    return sum_bytes(h, ctx->st->out, sizeof *ctx->st->out);
}

#ifdef IMB_HAVE_CUDA
/* which of the context's buffers holds device address a (diagnostics of a stray launch) */
static const char *buffer_name(const imb_ctx *ctx, uintptr_t a) {
    const imb_params *ps = &ctx->params;
    size_t pb = ps->total * sizeof(float);
    struct { const void *base; size_t n; const char *name; } b[] = {
        { ps->data, pb, "the parameters" }, { ps->grad, pb, "the parameter gradients" },
        { ps->m, pb, "AdamW m" }, { ps->v, pb, "AdamW v" },
        { ctx->st ? ctx->st->out : NULL, ctx->st ? sizeof *ctx->st->out : 0, "the step block" },
    };
    for (size_t i = 0; i < sizeof b / sizeof *b; i++)
        if (b[i].base && a >= (uintptr_t)b[i].base && a < (uintptr_t)b[i].base + b[i].n) return b[i].name;
    for (int i = 0; i < ctx->act.nblocks; i++) {
        const imb_arena_block *k = &ctx->act.blocks[i];
        if (a >= (uintptr_t)k->base && a < (uintptr_t)k->base + k->cap) return "the activation arena";
    }
    return "a buffer outside the context (backend scratch?)";
}
#endif

static int replay(imb_graph *g, imb_step_fn fn, void *ud) {
    imb_ctx *ctx = g->ctx;
    uint64_t step0 = ctx->step, print = 0;
    trace_reset(&g->probe);
    int emulate = g->use == IMB_GRAPH_EMULATE;
    if (emulate && ctx->device == IMB_CPU) print = state_print(ctx);
#ifdef IMB_HAVE_CUDA
    /* the tripwire: a launch that slips past the dispatch is captured, not run */
    char why[512] = "";
    int wire = !emulate && !imb_cuda_capture_begin(why, sizeof why);
#endif
    ctx->act.grow_refused = 0;
    ctx->act.frozen = 1;
    ctx->act.quiet = 1;
    ctx->graph_mode = IMB_GRAPH_PROBE;
    ctx->trace = &g->probe;
    int rc = fn(ctx, ud);
    ctx->trace = NULL;
    ctx->graph_mode = IMB_GRAPH_EAGER;
    ctx->act.frozen = 0;
    ctx->act.quiet = 0;
    int failed = rc || !imb_ok(ctx), grew = ctx->act.grow_refused;
    char msg[600] = "";
    if (failed && !grew) snprintf(msg, sizeof msg, "replay check failed: %s", imb_ok(ctx) ? "the step function failed" : imb_error(ctx));
#ifdef IMB_HAVE_CUDA
    if (wire) {
        void *graph = NULL;
        char end[256] = "", node[160] = "";
        int end_rc = imb_cuda_capture_end(&graph, end, sizeof end);
        uintptr_t dst = 0;
        int64_t leaked = graph ? imb_cuda_graph_nodes(graph, node, sizeof node, &dst) : 0;
        if (graph) imb_cuda_graph_destroy(graph);
        if (leaked > 0)
            snprintf(msg, sizeof msg, "%lld device operation(s) were launched outside the op dispatch during a replay check "
                     "(first: %s%s%s); they would run twice", (long long)leaked, node, dst ? " into " : "",
                     dst ? buffer_name(ctx, dst) : "");
        else if (end_rc && !msg[0])
            snprintf(msg, sizeof msg, "replay check: %s", end);
    }
    if (failed || msg[0]) clear_errors(ctx);
#else
    if (failed) imb_error_clear(ctx);
#endif
    if (emulate && ctx->device == IMB_CPU && state_print(ctx) != print) g->stats.probe_wrote++;
    uint64_t step1 = ctx->step;   /* the probe stepped the counter as the launched step does */
    ctx->step = step0;
    if (msg[0]) {
        /* not a shape change: something in the step cannot be replayed; say so once the
         * eager run of this step has shown that the step itself is fine */
        snprintf(g->pending, sizeof g->pending, "%s", msg);
        return 0;
    }
    if (failed || !trace_same(&g->cap, &g->probe)) {
        g->stats.mismatched++;
        if (++g->mismatch_run >= 2 && g->captures < MAX_CAPTURES) drop_exec(g);
        return 0;
    }
    g->mismatch_run = 0;
    if (emulate) {
        if (run_eager(g, fn, ud)) return -1;
        g->stats.replayed++;
        return 1;
    }
#ifdef IMB_HAVE_CUDA
    ctx->step = step1;
    if (flush_inputs(g, &g->probe)) return -1;
    if (imb_cuda_graph_launch(g->exec, why, sizeof why)) return imb_fail(ctx, "step: %s", why);
    g->stats.replayed++;
    return 1;
#else
    (void)step1;
    return 0;
#endif
}

int imb_graph_step(imb_graph *g, imb_step_fn fn, void *ud) {
    imb_ctx *ctx = g->ctx;
    if (!imb_ok(ctx)) return -1;
    if (imb_step_upload(ctx)) return -1;
    int r = 0;
    if (g->stats.on && g->steps > 0) {
#ifdef IMB_HAVE_CUDA
        /* the scratch buffer moved since the capture (the graph holds the old address) */
        if (g->exec && g->use == IMB_GRAPH_ON && imb_cuda_scratch_generation() != g->scratch_gen) drop_exec(g);
#endif
        r = g->exec ? replay(g, fn, ud) : capture(g, fn, ud);
    }
    g->steps++;
    if (r < 0) return -1;
    if (r == 0) {
        g->stats.eager++;
        if (run_eager(g, fn, ud)) {
            g->pending[0] = 0;   /* the step itself fails: that error is the one to report */
            return -1;
        }
    }
    if (imb_step_sync(ctx)) return -1;
    if (g->pending[0]) {
        fprintf(g->warn, "warning: %s; training goes on without CUDA graphs\n", g->pending);
        fflush(g->warn);
        turn_off(g, g->pending);
        g->pending[0] = 0;
    }
    return 0;
}
