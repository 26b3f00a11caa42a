/* Training steps as CUDA graphs. A step is a function that records its whole device work on
 * a context (zero the gradients, forward, backward, clip, AdamW). imb_graph_step runs it:
 *
 *   - the first step eagerly (warm-up: cuBLAS workspace, arena blocks, scratch sizes);
 *   - the second under stream capture into a CUDA graph, instantiated once and launched;
 *   - every later step as a replay: the step function runs again in probe mode, where ops
 *     do their host work only (shape checks, arena allocations, tape records) and launch
 *     nothing; if that walk made the same allocations at the same addresses, the same op
 *     sequence and the same inputs (device address and size) as the capture, the inputs are
 *     copied to their arena addresses and the graph is launched. Any difference (a shorter
 *     last batch, another shape) runs that step eagerly; two in a row re-capture.
 *
 * Every mode ends the same way: the step block (kernels/step.h) is fetched and the stream
 * waited for once. Replays run the captured kernels in the captured order on the same
 * addresses, so their results are bit-identical to eager steps. The rule that makes this
 * safe: a kernel argument depends only on shapes, addresses and settings fixed for the run;
 * per-step values (learning rate, bias corrections, the step number for randomness, counts
 * taken from the data) live in device memory (the step block, the inputs), never in kernel
 * arguments, and nothing inside a step reads device data on the host.
 *
 * A capture that fails (an op that waits for the device or allocates inside the step) prints
 * one warning naming the failing op and call, and training goes on eagerly. Graphs are used
 * on CUDA contexts only; IMB_GRAPH_EMULATE runs the same bookkeeping on a CPU context
 * (capture = eager step with a trace, replay = probe + eager step), for tests. */
#ifndef IMB_GRAPH_H
#define IMB_GRAPH_H
#include "ctx.h"
#include <stdio.h>

/* ---- the host walk's record, compared between capture and replay ---- */
typedef struct imb_input_rec { void *dev; const void *host; size_t bytes; } imb_input_rec;
typedef struct imb_trace {
    uint64_t hash;             /* allocations (address, size), ops and tape records, in order */
    int64_t nalloc, nops;
    imb_input_rec *in;         /* imb_input calls */
    int nin, capin;
    const char *host_read;     /* probe: the first op that wanted device data on the host */
} imb_trace;

/* Called by ctx.c and op.h while ctx->trace is set. */
void imb_trace_alloc(imb_ctx *ctx, const void *p, size_t bytes);
void imb_trace_op(imb_ctx *ctx, uintptr_t tag);
int imb_trace_input(imb_ctx *ctx, void *dev, const void *host, size_t bytes);

/* ---- graphs ---- */
typedef enum { IMB_GRAPH_OFF = 0, IMB_GRAPH_ON = 1, IMB_GRAPH_EMULATE = 2 } imb_graph_use;
typedef int (*imb_step_fn)(imb_ctx *ctx, void *ud);

typedef struct imb_graph_stats {
    int on;                    /* graphs in use (may turn off after a failed capture) */
    int64_t eager, captured, replayed, mismatched;
    int64_t probe_wrote;       /* EMULATE: probes that changed parameters, gradients, optimizer
                                * state or the step block (an op launching outside IMB_RUN) */
    char why_off[640];         /* why graphs are off, when they are */
} imb_graph_stats;

typedef struct imb_graph imb_graph;

/* use = ON: graphs when ctx is a CUDA context without data-parallel hooks and IMB_CUDA_SYNC
 * is unset (otherwise every step is eager and stats say why); why_off: the reason recorded
 * for use = OFF. warn: where the one warning of a failed capture goes (NULL: stderr). NULL
 * when out of host memory. */
imb_graph *imb_graph_new(imb_ctx *ctx, imb_graph_use use, const char *why_off, FILE *warn);
void imb_graph_free(imb_graph *g);
/* One step: uploads ctx->st->in_host, runs fn (eagerly, captured or replayed), fetches the
 * step block and waits; afterwards imb_step_result(ctx) holds the kept values, the gradient
 * norm and the clip verdict. fn returns 0, or -1 with ctx's error set. 0 or -1 (ctx says why). */
int imb_graph_step(imb_graph *g, imb_step_fn fn, void *ud);
const imb_graph_stats *imb_graph_get_stats(const imb_graph *g);
/* "on (1 eager, 1 captured, 28 replayed, 0 eager after a mismatch)" or "off (<why>)" */
const char *imb_graph_describe(const imb_graph *g, char *buf, size_t n);

#ifdef IMB_HAVE_CUDA
/* The CUDA side (kernels/cuda/graph.cu). Each returns 0, or -1 with the reason in err. */
int imb_cuda_capture_begin(char *err, size_t errn);
/* Ends the capture; *graph is the captured graph (cudaGraph_t), NULL when the capture broke. */
int imb_cuda_capture_end(void **graph, char *err, size_t errn);
/* 1 when the backend stream's capture has been invalidated by an unsafe call, else 0. */
int imb_cuda_capture_broken(void);
int imb_cuda_graph_instantiate(void *graph, void **exec, char *err, size_t errn);
int imb_cuda_graph_launch(void *exec, char *err, size_t errn);
/* Nodes in a graph; name gets the first kernel node's function name (or node type). */
int64_t imb_cuda_graph_nodes(void *graph, char *name, size_t namen, uintptr_t *dst);
void imb_cuda_graph_destroy(void *graph);
void imb_cuda_graph_exec_destroy(void *exec);
/* Clears the runtime's last error (a broken capture leaves one behind). */
void imb_cuda_clear_last(void);
#endif
#endif
