/* A small model trained through kernels/graph.h, shared by test_graph (CPU) and test_graph_cuda:
 * token embedding + a float input, layer norm, attention, the fused linear+GELU MLP, mean
 * pooling, a linear head and cross-entropy; AdamW with clipping. Batches are generated from
 * the step number, so two runs see the same data whatever their graph use. */
#ifndef IMB_GRAPHTOY_H
#define IMB_GRAPHTOY_H
#include "attention.h"
#include "ctx.h"
#include "elementwise.h"
#include "embedding.h"
#include "graph.h"
#include "loss.h"
#include "matmul.h"
#include "mem.h"
#include "norm.h"
#include "optim.h"
#include "rng.h"
#include "step.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOY_BMAX 8
#define TOY_L 6
#define TOY_V 11
#define TOY_D 16
#define TOY_C 10

typedef struct toy {
    imb_tensor *emb, *ln_w, *ln_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b, *head_w, *head_b;
    imb_adamw opt;
    int B;                     /* this step's batch */
    float *x;                  /* [B, L, D]: pinned (imb_pinned_alloc) */
    int32_t *ids, *y;          /* [B, L] and [B]: ordinary memory (staged copies) */
    int bad_label_row;         /* >= 0: this row's label is TOY_C + 2 */
    int host_read;             /* 1: the step reads the loss on the host (not capture-safe) */
} toy;

static imb_tensor *toy_param(imb_ctx *c, const char *n, int ndim, const int64_t *shape, imb_init init, float a) {
    return imb_param_new(c, n, ndim, shape, init, a, 1);
}

/* NULL with ctx's error on failure */
static toy *toy_new(imb_ctx *c) {
    toy *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->emb = toy_param(c, "emb", 2, IMB_SHAPE(TOY_V, TOY_D), IMB_INIT_NORMAL, 0.5f);
    t->ln_w = toy_param(c, "ln.w", 1, IMB_SHAPE(TOY_D), IMB_INIT_ONES, 0);
    t->ln_b = toy_param(c, "ln.b", 1, IMB_SHAPE(TOY_D), IMB_INIT_ZEROS, 0);
    t->fc1_w = toy_param(c, "fc1.w", 2, IMB_SHAPE(2 * TOY_D, TOY_D), IMB_INIT_NORMAL, 0.3f);
    t->fc1_b = toy_param(c, "fc1.b", 1, IMB_SHAPE(2 * TOY_D), IMB_INIT_NORMAL, 0.1f);
    t->fc2_w = toy_param(c, "fc2.w", 2, IMB_SHAPE(TOY_D, 2 * TOY_D), IMB_INIT_NORMAL, 0.3f);
    t->fc2_b = toy_param(c, "fc2.b", 1, IMB_SHAPE(TOY_D), IMB_INIT_ZEROS, 0);
    t->head_w = toy_param(c, "head.w", 2, IMB_SHAPE(TOY_C, TOY_D), IMB_INIT_NORMAL, 0.3f);
    t->head_b = toy_param(c, "head.b", 1, IMB_SHAPE(TOY_C), IMB_INIT_ZEROS, 0);
    t->opt = imb_adamw_default(0.05f);
    t->bad_label_row = -1;
    if (imb_params_alloc(c)) { free(t); return NULL; }
    t->x = imb_pinned_alloc(c, sizeof *t->x * TOY_BMAX * TOY_L * TOY_D);
    t->ids = malloc(sizeof *t->ids * TOY_BMAX * TOY_L);
    t->y = malloc(sizeof *t->y * TOY_BMAX);
    if (!t->x || !t->ids || !t->y) { free(t->ids); free(t->y); free(t); return NULL; }
    return t;
}

static void toy_free(toy *t) {
    if (!t) return;
    free(t->ids);
    free(t->y);
    free(t);
}

/* the batch of a step: B samples, data drawn from the step number */
static void toy_batch(toy *t, int step, int B) {
    t->B = B;
    for (int i = 0; i < B * TOY_L * TOY_D; i++) t->x[i] = imb_rng_normal(5, (uint64_t)step, (uint64_t)i);
    for (int i = 0; i < B * TOY_L; i++) t->ids[i] = (int32_t)imb_rng_below(6, (uint64_t)step, (uint64_t)i, TOY_V);
    for (int i = 0; i < B; i++) t->y[i] = (int32_t)imb_rng_below(7, (uint64_t)step, (uint64_t)i, TOY_C);
    if (t->bad_label_row >= 0 && t->bad_label_row < B) t->y[t->bad_label_row] = TOY_C + 2;
}

static imb_tensor *toy_loss(imb_ctx *c, toy *t) {
    int64_t B = t->B;
    imb_tensor *ids = imb_input(c, IMB_I32, 2, IMB_SHAPE(B, TOY_L), t->ids);
    imb_tensor *x = imb_input(c, IMB_F32, 3, IMB_SHAPE(B, TOY_L, TOY_D), t->x);
    imb_tensor *h = imb_add(c, imb_embedding(c, t->emb, ids), x);
    imb_tensor *n = imb_layernorm(c, h, t->ln_w, t->ln_b, 1e-5f);
    h = imb_residual(c, h, imb_attention(c, n, n, n, 2, NULL, 0, 0.0f), NULL);
    imb_tensor *m = imb_linear(c, imb_linear_gelu(c, h, t->fc1_w, t->fc1_b), t->fc2_w, t->fc2_b);
    h = imb_residual(c, h, m, NULL);
    imb_tensor *logits = imb_linear(c, imb_mean_pool(c, h, NULL), t->head_w, t->head_b);
    return imb_cross_entropy(c, logits, imb_input(c, IMB_I32, 1, IMB_SHAPE(B), t->y), 0.1f);
}

/* the training step's device work, as the trainer's */
static int toy_step(imb_ctx *c, void *ud) {
    toy *t = ud;
    imb_params_zero_grad(c);
    imb_step_begin(c, 1);
    imb_tensor *l = toy_loss(c, t);
    if (t->host_read && l) {
        float v;
        imb_to_host(c, l, &v, 0);
    }
    imb_step_keep(c, 0, l);
    imb_backward(c, l);
    imb_grad_clip_async(c, 0.5f);
    imb_adamw_apply(c, &t->opt);
    return imb_ok(c) ? 0 : -1;
}

typedef struct toy_run {
    int steps;
    const int *batch;          /* per step */
    float loss[64];
    float *params;             /* final parameters (malloc'd), params.total floats */
    size_t nparams;
    imb_graph_stats stats;
    char err[1024];
    int failed_step;           /* the step that failed, -1 if none */
    FILE *warn;                /* where graph warnings go (NULL: stderr) */
    int host_read;
    int bad_label_step, bad_label_row;   /* step (-1: none) whose batch carries a bad label */
    /* called after each step (e.g. eager work between steps); may be NULL */
    void (*between)(imb_ctx *c, int step);
} toy_run;

/* Trains the toy for r->steps steps on dev with the given graph use. 0, or -1 with r->err. */
static int toy_train(imb_device dev, imb_graph_use use, toy_run *r) {
    char e[512];
    r->failed_step = -1;
    imb_ctx *c = imb_ctx_new(dev, 9, e, sizeof e);
    if (!c) { snprintf(r->err, sizeof r->err, "context: %s", e); return -1; }
    toy *t = toy_new(c);
    imb_graph *g = t ? imb_graph_new(c, use, NULL, r->warn) : NULL;
    int rc = -1;
    if (!t || !g) { snprintf(r->err, sizeof r->err, "set-up: %s", imb_error(c)); goto out; }
    t->host_read = r->host_read;
    for (int s = 0; s < r->steps; s++) {
        t->bad_label_row = s == r->bad_label_step ? r->bad_label_row : -1;
        toy_batch(t, s, r->batch[s]);
        float lr = 1e-2f * (float)(s + 1) / (float)r->steps;
        if (imb_adamw_prepare(c, &t->opt, lr) || imb_graph_step(g, toy_step, t)) {
            snprintf(r->err, sizeof r->err, "%s", imb_error(c));
            r->failed_step = s;
            goto out;
        }
        r->loss[s] = imb_step_result(c)->vals[0];
        if (r->between) r->between(c, s);
    }
    r->nparams = c->params.total;
    r->params = malloc(sizeof *r->params * r->nparams);
    if (!r->params || imb_mem_copy(IMB_CPU, r->params, dev, c->params.data, sizeof *r->params * r->nparams)) {
        snprintf(r->err, sizeof r->err, "copying the parameters back failed");
        goto out;
    }
    rc = 0;
out:
    if (g) r->stats = *imb_graph_get_stats(g);
    imb_graph_free(g);
    toy_free(t);
    imb_ctx_free(c);
    return rc;
}

/* bitwise equality of two runs' losses and final parameters */
static int toy_same(const toy_run *a, const toy_run *b, char *why, size_t n) {
    for (int s = 0; s < a->steps; s++)
        if (memcmp(&a->loss[s], &b->loss[s], sizeof(float))) {
            snprintf(why, n, "step %d: loss %.9g vs %.9g", s, a->loss[s], b->loss[s]);
            return 0;
        }
    if (a->nparams != b->nparams || !a->params || !b->params) { snprintf(why, n, "no parameters to compare"); return 0; }
    for (size_t i = 0; i < a->nparams; i++)
        if (memcmp(&a->params[i], &b->params[i], sizeof(float))) {
            snprintf(why, n, "parameter %zu: %.9g vs %.9g", i, a->params[i], b->params[i]);
            return 0;
        }
    return 1;
}
#endif
