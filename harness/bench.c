/* harness bench: times inference and a full train step (forward, backward, AdamW) of the
 * image-classification model on random input, median of repeated runs after warm-up. */
#include "bench.h"
#include "elementwise.h"
#include "imagecls.h"
#include "loss.h"
#include "optim.h"
#include "rng.h"
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

typedef struct { imb_ctx *ctx; imb_imagecls *m; float *x; int32_t *y; int B, C, S; } bench_model;

/* one inference (train = 0) or train step (train = 1); returns the loss, waits for the device
 * (reading the loss back synchronises), NaN on error */
static double run_once(bench_model *b, int train, imb_adamw *opt) {
    imb_step_begin(b->ctx, train);
    if (train) imb_params_zero_grad(b->ctx);
    imb_tensor *x = imb_input(b->ctx, IMB_F32, 4, IMB_SHAPE(b->B, b->C, b->S, b->S), b->x);
    imb_tensor *logits = imb_imagecls_forward(b->ctx, b->m, x);
    imb_tensor *labels = imb_input(b->ctx, IMB_I32, 1, IMB_SHAPE(b->B), b->y);
    imb_tensor *l = imb_cross_entropy(b->ctx, logits, labels, 0.0f);
    if (train) {
        /* a train step pays for the backbone's auxiliary losses too, as in training */
        imb_tensor *aux = imb_backbone_aux_loss(b->ctx, b->m->bb, labels, NULL);
        if (aux) l = imb_add(b->ctx, l, aux);
        imb_backward(b->ctx, l);
        imb_adamw_step(b->ctx, opt, 1e-4f);
    }
    float v = NAN;
    if (l) imb_to_host(b->ctx, l, &v, 0);
    return imb_ok(b->ctx) ? v : NAN;
}

/* median seconds of reps runs after warm runs */
static double time_median(bench_model *b, int train, imb_adamw *opt, int warm, int reps, char *err, size_t errn) {
    double *t = malloc(sizeof *t * (size_t)reps), med = -1;
    if (!t) { snprintf(err, errn, "bench: out of host memory"); return -1; }
    for (int i = 0; i < warm + reps; i++) {
        double t0 = now();
        if (isnan(run_once(b, train, opt))) {
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

static int bench_res(const imb_cli *cli, const imb_backbone_cfg *cfg, int S, FILE *out, char *err, size_t errn) {
    bench_model b = { 0 };
    int rc = -1;
    b.B = cli->bench_batch;
    b.C = 3;
    b.S = S;
    b.ctx = imb_ctx_new(!strcmp(cli->device, "cuda") ? IMB_CUDA : IMB_CPU, 0, err, errn);
    if (!b.ctx) return -1;
    b.m = imb_imagecls_create(b.ctx, cfg, b.C, S, cli->bench_patch, 1000);
    if (!b.m || imb_params_alloc(b.ctx)) { snprintf(err, errn, "bench: %s", imb_error(b.ctx)); goto out; }
    size_t n = (size_t)b.B * b.C * S * S;
    b.x = malloc(sizeof *b.x * n);
    b.y = malloc(sizeof *b.y * (size_t)b.B);
    if (!b.x || !b.y) { snprintf(err, errn, "bench: out of host memory"); goto out; }
    for (size_t i = 0; i < n; i++) b.x[i] = imb_rng_normal(1, 2, i);
    for (int i = 0; i < b.B; i++) b.y[i] = (int32_t)imb_rng_below(1, 3, (uint64_t)i, 1000);
    imb_adamw opt = imb_adamw_default(0.05f);
    b.ctx->flops = 0;
    run_once(&b, 0, &opt);
    double gflops = b.ctx->flops / b.B * 1e-9;
    double tin = time_median(&b, 0, &opt, cli->bench_warmup, cli->bench_reps, err, errn);
    if (tin < 0) goto out;
    double ttr = time_median(&b, 1, &opt, cli->bench_warmup, cli->bench_reps, err, errn);
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
    free(b.x);
    free(b.y);
    imb_imagecls_free(b.m);
    imb_ctx_free(b.ctx);
    return rc;
}

int imb_bench_run(const imb_cli *cli, FILE *out, char *err, size_t errn) {
    imb_backbone_cfg cfg;
    if (imb_cli_backbone(cli, &cfg, err, errn)) return -1;
    fprintf(out, "device %s, fp32, batch %d, median of %d after %d warm-up runs; memory = peak activations + "
                 "parameters, gradients and AdamW state\n\n", cli->device, cli->bench_batch, cli->bench_reps,
            cli->bench_warmup);
    fprintf(out, "| backbone | res | batch | params (M) | GFLOPs/img (2 per MAC) | latency (ms/batch) | infer img/s | "
                 "train img/s | train memory (MiB) |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < cli->bench_nres; i++)
        if (bench_res(cli, &cfg, cli->bench_res[i], out, err, errn)) return -1;
    return 0;
}
