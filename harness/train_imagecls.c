/* Image classification on the generic trainer: shards -> loader -> patch stem, backbone,
 * linear head -> cross-entropy (+ the backbone's auxiliary losses); top-1/top-5 as timm. */
#include "train.h"
#include "elementwise.h"
#include "imagecls.h"
#include "loader.h"
#include "loss.h"
#include "prepare.h"
#include "topk.h"
#include "trainer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run {
    const imb_cli *cli;
    const imb_task_def *task;
    imb_protocol *p;
    imb_backbone_cfg bcfg;
    int count;                      /* samples in the loaded training batch */
    imb_ctx *ctx;
    imb_imagecls *model;
    imb_shard train_shard, val_shard;
    imb_loader *train, *val;
    imb_transform_opts ttrain, teval;
    float *x;
    int32_t *y;
    int batch;
    char root[4096];
} run;

static void transform_opts(const imb_protocol *p, int train, imb_transform_opts *o) {
    imb_transform_defaults(o, (int)p->data.input_size, train);
    o->channels = (int)p->data.channels;
    o->augment = (int)p->data.augment;
    o->crop_pct = p->data.crop_pct;
    for (int c = 0; c < 3; c++) {
        o->mean[c] = (float)p->data.mean.v[c < p->data.mean.n ? c : 0];
        o->std[c] = (float)p->data.std.v[c < p->data.std.n ? c : 0];
    }
}

static int setup(run *r, char *err, size_t errn) {
    const imb_protocol *p = r->p;
    if (imb_cli_backbone(r->cli, &r->bcfg, err, errn)) return -1;
    if (imb_trainer_data_root(r->cli, r->task, p, r->root, sizeof r->root, err, errn)) return -1;
    const char *trs = p->data.train_split[0] ? p->data.train_split : r->task->train_split;
    const char *vas = p->data.val_split[0] ? p->data.val_split : r->task->val_split;
    int store = (int)p->data.store_size;
    if (imb_prepare_split(r->task, r->root, trs, store, &r->train_shard, stdout, err, errn) ||
        imb_prepare_split(r->task, r->root, vas, store, &r->val_shard, stdout, err, errn))
        return -1;
    if (r->train_shard.nclasses != r->val_shard.nclasses) {
        snprintf(err, errn, "%s: train has %d classes, %s has %d", r->root, r->train_shard.nclasses, vas,
                 r->val_shard.nclasses);
        return -1;
    }
    transform_opts(p, 1, &r->ttrain);
    transform_opts(p, 0, &r->teval);
    /* the protocol's batch is the global one: each rank of a data-parallel group loads its slice */
    if (p->train.batch % r->cli->world) {
        snprintf(err, errn, "train.batch %lld is not divisible by %d ranks", (long long)p->train.batch, r->cli->world);
        return -1;
    }
    r->batch = (int)p->train.batch / r->cli->world;
    int threads = imb_trainer_threads(r->cli, p);
    uint64_t seed = imb_trainer_seed(r->cli, p);
    r->train = imb_loader_new_rank(&r->train_shard, &r->ttrain, r->batch, 1, 1, seed, threads, r->cli->rank,
                                   r->cli->world, err, errn);
    if (!r->train) return -1;
    r->val = imb_loader_new(&r->val_shard, &r->teval, r->batch, 0, 0, seed, threads, err, errn);
    if (!r->val) return -1;
    r->ctx = imb_ctx_new(!strcmp(r->cli->device, "cuda") ? IMB_CUDA : IMB_CPU, seed, err, errn);
    if (!r->ctx) return -1;
    r->ctx->deterministic = r->cli->deterministic;
    r->model = imb_imagecls_create(r->ctx, &r->bcfg, (int)p->data.channels, (int)p->data.input_size,
                                   (int)p->data.patch_size, r->train_shard.nclasses);
    if (!r->model || imb_params_alloc(r->ctx)) {
        snprintf(err, errn, "model: %s", imb_error(r->ctx));
        return -1;
    }
    size_t per = imb_transform_out_len(&r->ttrain);
    r->x = malloc(sizeof *r->x * per * (size_t)r->batch);
    r->y = malloc(sizeof *r->y * (size_t)r->batch);
    if (!r->x || !r->y) { snprintf(err, errn, "out of host memory"); return -1; }
    return 0;
}

static void teardown(run *r) {
    imb_loader_free(r->train);
    imb_loader_free(r->val);
    imb_shard_close(&r->train_shard);
    imb_shard_close(&r->val_shard);
    imb_imagecls_free(r->model);
    imb_ctx_free(r->ctx);
    free(r->x);
    free(r->y);
}

/* the trainer begins training steps; evaluation begins its own */
static imb_tensor *forward(run *r, int n, int training) {
    const imb_transform_opts *o = training ? &r->ttrain : &r->teval;
    if (!training) imb_step_begin(r->ctx, 0);
    imb_tensor *x = imb_input(r->ctx, IMB_F32, 4, IMB_SHAPE(n, o->channels, o->size, o->size), r->x);
    return imb_imagecls_forward(r->ctx, r->model, x);
}

/* one pass over the validation split: top-1/top-5 as timm, mean cross-entropy */
static int evaluate(void *ud, imb_metrics *m, char *err, size_t errn) {
    run *r = ud;
    imb_topk acc;
    memset(&acc, 0, sizeof acc);
    double lsum = 0;
    int64_t n = 0;
    int count;
    if (imb_loader_seek(r->val, 0, 0)) { snprintf(err, errn, "val loader: %s", imb_loader_error(r->val)); return -1; }
    for (;;) {
        int rc = imb_loader_next(r->val, r->x, r->y, &count);
        if (rc < 0) { snprintf(err, errn, "val loader: %s", imb_loader_error(r->val)); return -1; }
        if (rc == 1) break;
        r->ctx->flops = 0;
        imb_tensor *logits = forward(r, count, 0);
        imb_tensor *l = imb_cross_entropy(r->ctx, logits, imb_input(r->ctx, IMB_I32, 1, IMB_SHAPE(count), r->y), 0.0f);
        if (!l) { snprintf(err, errn, "eval: %s", imb_error(r->ctx)); return -1; }
        if (m->flops_per_sample == 0) m->flops_per_sample = r->ctx->flops / count;
        int64_t C = logits->shape[1];
        float *h = malloc(sizeof *h * (size_t)(count * C));
        if (!h) { snprintf(err, errn, "eval: out of host memory"); return -1; }
        float lv;
        imb_to_host(r->ctx, logits, h, 0);
        imb_to_host(r->ctx, l, &lv, 0);
        imb_topk_update(&acc, h, r->y, count, C);
        free(h);
        lsum += (double)lv * count;
        n += count;
    }
    imb_metrics_set(m, "top1", imb_topk_top1(&acc));
    imb_metrics_set(m, "top5", imb_topk_top5(&acc));
    imb_metrics_set(m, "val_loss", n ? lsum / (double)n : NAN);
    m->samples = acc.n;
    return 0;
}

static int next(void *ud, char *err, size_t errn) {
    run *r = ud;
    int rc = imb_loader_next(r->train, r->x, r->y, &r->count);
    if (rc == 1) rc = imb_loader_next(r->train, r->x, r->y, &r->count);   /* next epoch */
    if (rc) { snprintf(err, errn, "train loader: %s", imb_loader_error(r->train)); return -1; }
    return r->count;
}

static imb_tensor *loss(void *ud, imb_aux_terms *terms) {
    run *r = ud;
    imb_tensor *logits = forward(r, r->count, 1);
    imb_tensor *y = imb_input(r->ctx, IMB_I32, 1, IMB_SHAPE(r->count), r->y);
    imb_tensor *l = imb_cross_entropy(r->ctx, logits, y, (float)r->p->train.label_smoothing);
    imb_tensor *aux = imb_backbone_aux_loss(r->ctx, r->model->bb, y, terms);
    return aux ? imb_add(r->ctx, l, aux) : l;
}

static void position(void *ud, int64_t *epoch, int64_t *batch) {
    imb_loader_position(((run *)ud)->train, epoch, batch);
}

static int seek(void *ud, int64_t epoch, int64_t batch, char *err, size_t errn) {
    run *r = ud;
    if (imb_loader_seek(r->train, epoch, batch)) { snprintf(err, errn, "%s", imb_loader_error(r->train)); return -1; }
    return 0;
}

int imb_run_imagecls(const imb_cli *cli, const imb_task_def *task, imb_protocol *p, char *err, size_t errn) {
    run r;
    memset(&r, 0, sizeof r);
    r.cli = cli;
    r.task = task;
    r.p = p;
    int rc = -1;
    if (!setup(&r, err, errn)) {
        imb_task_run t = { .ud = &r, .ctx = r.ctx, .steps_per_epoch = imb_loader_batches(r.train), .batch = r.batch,
                           .data_root = r.root, .mixer = r.bcfg.mixer, .preset = r.bcfg.preset, .next = next,
                           .loss = loss, .evaluate = evaluate, .position = position, .seek = seek };
        rc = imb_trainer_run(cli, task, p, &t, err, errn);
    }
    teardown(&r);
    return rc;
}
