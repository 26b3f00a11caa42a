/* Text classification on the generic trainer: BPE tokenizer + text shards -> padded batches ->
 * token stem, backbone, masked mean pool, linear head -> cross-entropy (+ the backbone's
 * auxiliary losses); accuracy and mean cross-entropy on the validation split. */
#include "train_textcls.h"
#include "loss.h"
#include "record.h"
#include "textcls.h"
#include "textprep.h"
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
    imb_ctx *ctx;
    imb_textcls *model;
    imb_bpe *tok;
    imb_text_shard train_shard, val_shard;
    imb_text_loader *train, *val;
    int32_t *ids, *y;
    float *mask;
    int count, len;              /* the loaded training batch: samples and padded length */
    int batch, max_len, fixed;
    char root[4096];
} run;

static int max_len_of(const imb_protocol *p) { return p->data.max_len ? (int)p->data.max_len : IMB_TEXT_MAX_LEN; }
static int vocab_of(const imb_protocol *p) { return p->data.vocab_size ? (int)p->data.vocab_size : IMB_TEXT_VOCAB; }
static const char *train_split(const imb_task_def *t, const imb_protocol *p) {
    return p->data.train_split[0] ? p->data.train_split : t->train_split;
}
static const char *val_split(const imb_task_def *t, const imb_protocol *p) {
    return p->data.val_split[0] ? p->data.val_split : t->val_split;
}

/* Tokenizer and the train and val shards of root (built when missing, stale or corrupt). */
static int open_caches(const imb_task_def *task, const char *root, const imb_protocol *p, imb_bpe **tok,
                       imb_text_shard *tr, imb_text_shard *va, FILE *log, char *err, size_t errn) {
    const imb_text_reader *r = task->reader;
    if (!r) return snprintf(err, errn, "task %s: no text reader", task->name), -1;
    if (imb_text_tokenizer(r, task->name, root, train_split(task, p), vocab_of(p), tok, log, err, errn) ||
        imb_text_prepare_split(r, task->name, root, train_split(task, p), *tok, tr, log, err, errn) ||
        imb_text_prepare_split(r, task->name, root, val_split(task, p), *tok, va, log, err, errn))
        return -1;
    if (tr->nclasses != va->nclasses)
        return snprintf(err, errn, "%s: %s has %d classes, %s has %d", root, train_split(task, p), tr->nclasses,
                        val_split(task, p), va->nclasses), -1;
    return 0;
}

int imb_prepare_text(const imb_task_def *task, const char *root, const imb_protocol *p, FILE *log, char *err,
                     size_t errn) {
    imb_bpe *tok = NULL;
    imb_text_shard s[2];
    memset(s, 0, sizeof s);
    int rc = open_caches(task, root, p, &tok, &s[0], &s[1], log, err, errn);
    if (!rc && log) {
        fprintf(log, "%s: BPE vocabulary %d (of %d asked)\n", task->name, imb_bpe_vocab(tok), vocab_of(p));
        for (int i = 0; i < 2; i++)
            fprintf(log, "%s %s: %d texts, %d classes, %lld tokens in %s\n", task->name,
                    i ? val_split(task, p) : train_split(task, p), s[i].n, s[i].nclasses, (long long)s[i].ntokens,
                    s[i].path);
    }
    imb_text_shard_close(&s[0]);
    imb_text_shard_close(&s[1]);
    imb_bpe_free(tok);
    return rc;
}

static int setup(run *r, char *err, size_t errn) {
    const imb_protocol *p = r->p;
    if (imb_cli_backbone(r->cli, &r->bcfg, err, errn)) return -1;
    if (imb_trainer_data_root(r->cli, r->task, p, r->root, sizeof r->root, err, errn)) return -1;
    if (open_caches(r->task, r->root, p, &r->tok, &r->train_shard, &r->val_shard, stdout, err, errn)) return -1;
    /* the protocol's batch is the global one: each rank of a data-parallel group loads its slice */
    if (p->train.batch % r->cli->world) {
        snprintf(err, errn, "train.batch %lld is not divisible by %d ranks", (long long)p->train.batch, r->cli->world);
        return -1;
    }
    r->batch = (int)p->train.batch / r->cli->world;
    r->max_len = max_len_of(p);
    uint64_t seed = imb_trainer_seed(r->cli, p);
    r->train = imb_text_loader_new_rank(&r->train_shard, r->batch, r->max_len, 1, 1, seed, r->cli->rank, r->cli->world,
                                        err, errn);
    if (!r->train) return -1;
    r->val = imb_text_loader_new(&r->val_shard, r->batch, r->max_len, 0, 0, seed, err, errn);
    if (!r->val) return -1;
    /* similar lengths share a batch: much less padding to compute (training: within windows of
     * data.bucket batches, shuffled; evaluation: the whole split sorted) */
    imb_text_loader_bucket(r->train, p->data.bucket);
    imb_text_loader_bucket(r->val, imb_text_loader_batches(r->val));
    /* a CUDA graph replays one shape: there every training batch is padded to max_len (the
     * mask makes padding invisible, so this changes the cost, not the model) */
    r->fixed = !strcmp(r->cli->device, "cuda") && !r->cli->no_graph;
    imb_text_loader_fixed(r->train, r->fixed);
    r->ctx = imb_ctx_new(!strcmp(r->cli->device, "cuda") ? IMB_CUDA : IMB_CPU, seed, err, errn);
    if (!r->ctx) return -1;
    r->ctx->deterministic = r->cli->deterministic;
    r->model = imb_textcls_create(r->ctx, &r->bcfg, r->train_shard.vocab, r->max_len, r->train_shard.nclasses);
    if (!r->model || imb_params_alloc(r->ctx)) {
        snprintf(err, errn, "model: %s", imb_error(r->ctx));
        return -1;
    }
    size_t cells = (size_t)r->batch * (size_t)r->max_len;
    r->ids = malloc(sizeof *r->ids * cells);
    r->mask = malloc(sizeof *r->mask * cells);
    r->y = malloc(sizeof *r->y * (size_t)r->batch);
    if (!r->ids || !r->mask || !r->y) { snprintf(err, errn, "out of host memory"); return -1; }
    return 0;
}

static void teardown(run *r) {
    imb_text_loader_free(r->train);
    imb_text_loader_free(r->val);
    imb_text_shard_close(&r->train_shard);
    imb_text_shard_close(&r->val_shard);
    imb_bpe_free(r->tok);
    imb_textcls_free(r->model);
    imb_ctx_free(r->ctx);
    free(r->ids);
    free(r->mask);
    free(r->y);
}

/* the trainer begins training steps; evaluation begins its own. The mask goes in even when a
 * batch has no padding: every training step then records the same ops (a CUDA graph replays). */
static imb_tensor *forward(run *r, int n, int L, int training) {
    if (!training) imb_step_begin(r->ctx, 0);
    imb_tensor *ids = imb_input(r->ctx, IMB_I32, 2, IMB_SHAPE(n, L), r->ids);
    imb_tensor *mask = imb_input(r->ctx, IMB_F32, 2, IMB_SHAPE(n, L), r->mask);
    return imb_textcls_forward(r->ctx, r->model, ids, mask);
}

static int evaluate(void *ud, imb_metrics *m, char *err, size_t errn) {
    run *r = ud;
    imb_topk acc;
    memset(&acc, 0, sizeof acc);
    double lsum = 0;
    int64_t n = 0;
    double flops = 0;
    int count, L;
    imb_text_loader_seek(r->val, 0, 0);
    while (!imb_text_loader_next(r->val, r->ids, r->mask, r->y, &count, &L)) {
        r->ctx->flops = 0;
        imb_tensor *logits = forward(r, count, L, 0);
        imb_tensor *l = imb_cross_entropy(r->ctx, logits, imb_input(r->ctx, IMB_I32, 1, IMB_SHAPE(count), r->y), 0.0f);
        if (!l) { snprintf(err, errn, "eval: %s", imb_error(r->ctx)); return -1; }
        flops += r->ctx->flops;
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
    if (!imb_ok(r->ctx)) { snprintf(err, errn, "eval: %s", imb_error(r->ctx)); return -1; }
    imb_metrics_set(m, "accuracy", imb_topk_top1(&acc));
    imb_metrics_set(m, "val_loss", n ? lsum / (double)n : NAN);
    /* texts differ in length: the mean over the split (padding included, as it is computed) */
    m->flops_per_sample = n ? flops / (double)n : 0;
    m->samples = acc.n;
    return 0;
}

static int next(void *ud, char *err, size_t errn) {
    run *r = ud;
    int rc = imb_text_loader_next(r->train, r->ids, r->mask, r->y, &r->count, &r->len);
    if (rc == 1) rc = imb_text_loader_next(r->train, r->ids, r->mask, r->y, &r->count, &r->len);   /* next epoch */
    if (rc) { snprintf(err, errn, "train loader: %s: no batch", r->train_shard.path); return -1; }
    return r->count;
}

static imb_tensor *loss(void *ud, imb_aux_terms *terms) {
    run *r = ud;
    imb_tensor *logits = forward(r, r->count, r->len, 1);
    imb_tensor *y = imb_input(r->ctx, IMB_I32, 1, IMB_SHAPE(r->count), r->y);
    return imb_textcls_loss(r->ctx, r->model, logits, y, (float)r->p->train.label_smoothing, terms);
}

static void position(void *ud, int64_t *epoch, int64_t *batch) {
    imb_text_loader_position(((run *)ud)->train, epoch, batch);
}

static int seek(void *ud, int64_t epoch, int64_t batch, char *err, size_t errn) {
    run *r = ud;
    if (imb_text_loader_seek(r->train, epoch, batch)) {
        snprintf(err, errn, "%s: loader position (%lld, %lld) out of range", r->train_shard.path, (long long)epoch,
                 (long long)batch);
        return -1;
    }
    return 0;
}

static void record(void *ud, imb_record *rec) {
    run *r = ud;
    imb_record_extra_num(rec, "vocab", (double)imb_bpe_vocab(r->tok));
    imb_record_extra_num(rec, "max_len", (double)r->max_len);
    imb_record_extra_str(rec, "train_padding", r->fixed ? "max_len" : "longest in batch");
    imb_record_extra_num(rec, "train_tokens_per_text", (double)r->train_shard.ntokens / r->train_shard.n);
}

int imb_run_textcls(const imb_cli *cli, const imb_task_def *task, imb_protocol *p, char *err, size_t errn) {
    run r;
    memset(&r, 0, sizeof r);
    r.cli = cli;
    r.task = task;
    r.p = p;
    int rc = -1;
    if (!setup(&r, err, errn)) {
        imb_task_run t = { .ud = &r, .ctx = r.ctx, .steps_per_epoch = imb_text_loader_batches(r.train), .batch = r.batch,
                           .data_root = r.root, .mixer = r.bcfg.mixer, .preset = r.bcfg.preset, .next = next,
                           .loss = loss, .evaluate = evaluate, .position = position, .seek = seek, .record = record };
        rc = imb_trainer_run(cli, task, p, &t, err, errn);
    }
    teardown(&r);
    return rc;
}
