/* harness bench: times inference and a full train step (forward, backward, AdamW) of the
 * image-classification model on random input, median of repeated runs after warm-up. */
#include "bench.h"
#include "elementwise.h"
#include "graph.h"
#include "imagecls.h"
#include "loss.h"
#include "optim.h"
#include "rng.h"
#include "step.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    imb_ctx *ctx;
    imb_imagecls *m;
    float *x;
    int32_t *y;
    int B, C, S;
    imb_graph *graph;   /* the train step: a CUDA graph after two steps, as in training */
    imb_adamw *opt;
} bench_model;

/* the loss of the model on the batch (imb_step_begin called) */
static imb_tensor *model_loss(bench_model *b) {
    imb_tensor *x = imb_input(b->ctx, IMB_F32, 4, IMB_SHAPE(b->B, b->C, b->S, b->S), b->x);
    imb_tensor *logits = imb_imagecls_forward(b->ctx, b->m, x);
    return imb_cross_entropy(b->ctx, logits, imb_input(b->ctx, IMB_I32, 1, IMB_SHAPE(b->B), b->y), 0.0f);
}

/* the train step's device work, as the trainer's (kernels/graph.h runs it) */
static int train_fn(imb_ctx *ctx, void *ud) {
    bench_model *b = ud;
    imb_params_zero_grad(ctx);
    imb_step_begin(ctx, 1);
    imb_tensor *l = model_loss(b);
    /* a train step pays for the backbone's auxiliary losses too, as in training */
    imb_tensor *aux = imb_backbone_aux_loss(ctx, b->m->bb, imb_input(ctx, IMB_I32, 1, IMB_SHAPE(b->B), b->y), NULL);
    if (aux) l = imb_add(ctx, l, aux);
    imb_step_keep(ctx, 0, l);
    imb_backward(ctx, l);
    imb_grad_clip_async(ctx, 1.0f);
    imb_adamw_apply(ctx, b->opt);
    return imb_ok(ctx) ? 0 : -1;
}

/* one inference (train = 0) or train step (train = 1); returns the loss, waits for the device
 * (reading the loss back synchronises), NaN on error */
static double run_once(bench_model *b, int train) {
    if (train) {
        if (imb_adamw_prepare(b->ctx, b->opt, 1e-4f) || imb_graph_step(b->graph, train_fn, b)) return NAN;
        return imb_step_result(b->ctx)->vals[0];
    }
    imb_step_begin(b->ctx, 0);
    imb_tensor *l = model_loss(b);
    float v = NAN;
    if (l) imb_to_host(b->ctx, l, &v, 0);
    return imb_ok(b->ctx) ? v : NAN;
}

/* median seconds of reps runs after warm runs */
static double time_median(bench_model *b, int train, int warm, int reps, char *err, size_t errn) {
    double *t = malloc(sizeof *t * (size_t)reps), med = -1;
    if (!t) { snprintf(err, errn, "bench: out of host memory"); return -1; }
    for (int i = 0; i < warm + reps; i++) {
        double t0 = now();
        if (isnan(run_once(b, train))) {
            snprintf(err, errn, "bench: %s", imb_ok(b->ctx) ? "non-finite loss" : imb_error(b->ctx));
            free(t);
            return -1;
        }
        if (i >= warm) t[i - warm] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    med = t[reps / 2];
    free(t);
    return med;
}

static int bench_res(const imb_cli *cli, const imb_backbone_cfg *cfg, int S, FILE *out, char *notes, size_t notesn,
                     char *err, size_t errn) {
    bench_model b = { 0 };
    int rc = -1;
    b.B = cli->bench_batch;
    b.C = 3;
    b.S = S;
    b.ctx = imb_ctx_new(!strcmp(cli->device, "cuda") ? IMB_CUDA : IMB_CPU, 0, err, errn);
    if (!b.ctx) return -1;
    imb_adamw opt = imb_adamw_default(0.05f);
    b.opt = &opt;
    if (imb_cli_precision(cli, b.ctx, err, errn)) goto out;
    b.graph = imb_graph_new(b.ctx, cli->no_graph ? IMB_GRAPH_OFF : IMB_GRAPH_ON, "--no-graph", stderr);
    if (!b.graph) { snprintf(err, errn, "bench: out of host memory"); goto out; }
    /* the stems of the models the paper compares: ViT/Linformer patch 16 (timm), hierarchical
     * backbones a stride-4 stem (VMamba, Swin) */
    int patch = cli->bench_patch ? cli->bench_patch : cfg->nstages > 1 ? 4 : 16;
    b.m = imb_imagecls_create(b.ctx, cfg, b.C, S, patch, 1000);
    if (!b.m || imb_params_alloc(b.ctx)) { snprintf(err, errn, "bench: %s", imb_error(b.ctx)); goto out; }
    size_t n = (size_t)b.B * b.C * S * S;
    /* pinned (CUDA): the input goes to the device by DMA, as the training loaders' batches do */
    b.x = imb_pinned_alloc(b.ctx, sizeof *b.x * n);
    b.y = imb_pinned_alloc(b.ctx, sizeof *b.y * (size_t)b.B);
    if (!b.x || !b.y) { snprintf(err, errn, "bench: %s", imb_error(b.ctx)); goto out; }
    for (size_t i = 0; i < n; i++) b.x[i] = imb_rng_normal(1, 2, i);
    for (int i = 0; i < b.B; i++) b.y[i] = (int32_t)imb_rng_below(1, 3, (uint64_t)i, 1000);
    b.ctx->flops = 0;
    run_once(&b, 0);
    double gflops = b.ctx->flops / b.B * 1e-9;
    double tin = time_median(&b, 0, cli->bench_warmup, cli->bench_reps, err, errn);
    if (tin < 0) goto out;
    /* at least two warm-up steps: the eager one and the capture */
    double ttr = time_median(&b, 1, cli->bench_warmup < 2 ? 2 : cli->bench_warmup, cli->bench_reps, err, errn);
    if (ttr < 0) goto out;
    /* parameters, gradients, AdamW m and v, masks: six buffers of the same size */
    double mem_mb = ((double)b.ctx->act.peak + 6.0 * (double)b.ctx->params.total * sizeof(float)) / (1 << 20);
    int64_t params = 0;
    for (int i = 0; i < b.ctx->params.n; i++) params += imb_numel(b.ctx->params.p[i].t);
    fprintf(out, "| %s | %d | %d | %.2f | %.2f | %.1f | %.1f | %.0f | %.0f |\n", cfg->preset, S, b.B,
            (double)params / 1e6, gflops, tin * 1e3, (double)b.B / tin, (double)b.B / ttr, mem_mb);
    fflush(out);
    rc = 0;
out:
    if (b.graph && b.ctx->device == IMB_CUDA) {
        char gd[800];
        size_t k = strlen(notes);
        if (k < notesn) snprintf(notes + k, notesn - k, "%s at %d px, train step CUDA graph: %s\n", cfg->preset, S,
                                 imb_graph_describe(b.graph, gd, sizeof gd));
    }
    imb_graph_free(b.graph);
    imb_imagecls_free(b.m);
    imb_ctx_free(b.ctx);   /* frees the pinned input too */
    return rc;
}

int imb_bench_run(const imb_cli *cli, FILE *out, char *err, size_t errn) {
    imb_backbone_cfg cfg;
    if (imb_cli_backbone(cli, &cfg, err, errn)) return -1;
    fprintf(out, "device %s, %s, batch %d, median of %d after %d warm-up runs (train: at least 2); train step = forward, "
                 "backward, clipping, AdamW%s; memory = peak activations + parameters, gradients and AdamW state\n\n",
            cli->device, cli->precision, cli->bench_batch, cli->bench_reps, cli->bench_warmup,
            strcmp(cli->device, "cuda") ? "" : cli->no_graph ? ", eager (--no-graph)" : ", replayed as a CUDA graph");
    fprintf(out, "| backbone | res | batch | params (M) | GFLOPs/img (2 per MAC) | latency (ms/batch) | infer img/s | "
                 "train img/s | train memory (MiB) |\n|---|---|---|---|---|---|---|---|---|\n");
    char notes[4096] = "";
    int rc = 0;
    for (int i = 0; i < cli->bench_nres && !rc; i++)
        rc = bench_res(cli, &cfg, cli->bench_res[i], out, notes, sizeof notes, err, errn);
    if (notes[0]) fprintf(out, "\n%s", notes);
    return rc;
}
