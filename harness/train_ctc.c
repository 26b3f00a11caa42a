/* CTC speech recognition on the generic trainer: LibriSpeech feature shards -> padded batches
 * (global CMVN, SpecAugment) -> conv stem, backbone, CTC head -> CTC loss; evaluation decodes
 * every eval set (best path or prefix beam search) and scores WER/CER as jiwer. */
#include "train_ctc.h"
#include "ctc.h"
#include "ctc_decode.h"
#include "ctc_loss.h"
#include "elementwise.h"
#include "fileio.h"
#include "mem.h"
#include "record.h"
#include "speech.h"
#include "trainer.h"
#include "wer.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVAL 7   /* wer + cer of each, plus val_loss, fit IMB_MAX_METRICS */

typedef struct run {
    const imb_cli *cli;
    const imb_task_def *task;
    imb_protocol *p;
    imb_backbone_cfg bcfg;
    imb_ctx *ctx;
    imb_ctc_model *model;
    /* the training split's global CMVN, kept as frozen parameters so checkpoints carry it
     * (evaluation needs no training data) */
    imb_tensor *cmvn_mean, *cmvn_istd;
    float mean[IMB_SPEECH_NMEL], istd[IMB_SPEECH_NMEL];
    imb_speech_set *train_set;
    imb_speech_loader *train;
    int neval;
    char eval_name[MAX_EVAL][64];
    imb_speech_set *eval_set[MAX_EVAL];
    imb_speech_loader *eval[MAX_EVAL];
    /* this rank's slice of the loaded training batch */
    imb_speech_batch cur;
    int lo, count;
    int batch;
    /* protocol values with the task's defaults filled in */
    int stem_channels, causal, beam, zero_inf;
    int64_t inf_losses;        /* every occurrence counts; each utterance is named once */
    unsigned char *warned;     /* [training utterances] */
    char root[4096];
    char ckpt[4096];   /* the trainer's checkpoint path: hypotheses go next to it */
} run;

static int64_t get_int(const imb_protocol *p, const char *key, int64_t v, int64_t def) {
    return imb_protocol_is_set(p, key) ? v : def;
}

/* "dev-clean" -> "dev_clean" for metric names */
static void metric_name(char *out, size_t n, const char *prefix, const char *set) {
    snprintf(out, n, "%s_%s", prefix, set);
    for (char *c = out; *c; c++)
        if (*c == '-' || *c == '+' || *c == '.') *c = '_';
}

static int subset_present(const char *root, const char *name) {
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/%s", root, name);
    snprintf(b, sizeof b, "%s/LibriSpeech/%s", root, name);
    return imb_is_dir(a) || imb_is_dir(b);
}

/* the protocol's comma-separated eval sets that exist under root, at most MAX_EVAL */
static int eval_sets(const run *r, char names[MAX_EVAL][64], int *n, FILE *log, char *err, size_t errn) {
    const char *list = r->p->data.val_split[0] ? r->p->data.val_split : r->task->val_split;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        if (!subset_present(r->root, tok)) {
            if (log) fprintf(log, "%s: eval set %s not found under %s, skipped\n", r->task->name, tok, r->root);
            continue;
        }
        if (*n == MAX_EVAL) return imb_errf(err, errn, "data.val_split: more than %d eval sets", MAX_EVAL);
        snprintf(names[(*n)++], 64, "%s", tok);
    }
    if (!*n) return imb_errf(err, errn, "%s: none of the eval sets '%s' is there", r->root, list);
    return 0;
}

static const char *train_split(const run *r) {
    return r->p->data.train_split[0] ? r->p->data.train_split : r->task->train_split;
}

/* packs (or checks) one split and says what it holds */
static int prepare_one(const imb_task_def *task, const char *root, const char *split, int threads, FILE *log, char *err,
                       size_t errn) {
    imb_speech_set *s;
    if (imb_speech_open(root, split, threads, log, &s, err, errn)) return -1;
    if (log)
        fprintf(log, "%s %s: %d utterances, %.2f h, longest %d frames\n", task->name, split, imb_speech_count(s),
                (double)imb_speech_total_frames(s) / 360000.0, imb_speech_max_frames(s));
    imb_speech_close(s);
    return 0;
}

int imb_prepare_ctc(const imb_task_def *task, const char *root, const imb_protocol *p, FILE *log, char *err,
                    size_t errn) {
    run r;
    memset(&r, 0, sizeof r);
    r.task = task;
    r.p = (imb_protocol *)p;
    snprintf(r.root, sizeof r.root, "%s", root);
    char names[MAX_EVAL][64];
    int n, threads = (int)p->data.loader_threads;
    if (prepare_one(task, root, train_split(&r), threads, log, err, errn)) return -1;
    if (eval_sets(&r, names, &n, log, err, errn)) return -1;
    for (int i = 0; i < n; i++)
        if (prepare_one(task, root, names[i], threads, log, err, errn)) return -1;
    return 0;
}

static int setup(run *r, char *err, size_t errn) {
    const imb_protocol *p = r->p;
    int training = !strcmp(r->cli->cmd, "train");
    if (imb_cli_backbone(r->cli, &r->bcfg, err, errn)) return -1;
    if (imb_trainer_data_root(r->cli, r->task, p, r->root, sizeof r->root, err, errn)) return -1;
    if (r->cli->checkpoint) snprintf(r->ckpt, sizeof r->ckpt, "%s", r->cli->checkpoint);
    else snprintf(r->ckpt, sizeof r->ckpt, "%s/%s-%s.safetensors", r->cli->out_dir, r->task->name, r->bcfg.preset);
    r->stem_channels = (int)get_int(p, "ctc.stem_channels", p->ctc.stem_channels, 256);
    r->causal = (int)get_int(p, "ctc.causal", p->ctc.causal, 0);
    r->zero_inf = (int)get_int(p, "ctc.zero_infinity", p->ctc.zero_infinity, 1);
    /* 0: best path */
    r->beam = !strcmp(p->ctc.decode, "greedy") ? 0 : (int)get_int(p, "ctc.beam_width", p->ctc.beam_width, 10);
    int world = r->cli->world > 0 ? r->cli->world : 1, threads = imb_trainer_threads(r->cli, p);
    if (p->train.batch % world)
        return imb_errf(err, errn, "train.batch %lld is not divisible by %d ranks", (long long)p->train.batch, world);
    r->batch = (int)p->train.batch / world;
    uint64_t seed = imb_trainer_seed(r->cli, p);
    FILE *log = r->cli->rank == 0 ? stdout : NULL;
    if (training) {
        if (imb_speech_open(r->root, train_split(r), threads, log, &r->train_set, err, errn)) return -1;
        if (imb_speech_cmvn(r->train_set, r->mean, r->istd, err, errn)) return -1;
        imb_speech_loader_opts o;
        /* every rank loads the global batch and keeps its slice (the speech loader has no rank
         * sharding); drop_last keeps the slices full */
        imb_speech_loader_defaults(&o, (int)p->train.batch, 1);
        o.seed = seed;
        o.drop_last = world > 1;
        o.specaug = p->data.augment > 0;
        o.mean = r->mean;
        o.istd = r->istd;
        if (!(r->train = imb_speech_loader_new(r->train_set, &o, err, errn))) return -1;
        if (!(r->warned = calloc((size_t)imb_speech_count(r->train_set) + 1, 1))) return imb_errf(err, errn, "out of host memory");
    }
    if (eval_sets(r, r->eval_name, &r->neval, log, err, errn)) return -1;
    for (int i = 0; i < r->neval; i++) {
        if (imb_speech_open(r->root, r->eval_name[i], threads, log, &r->eval_set[i], err, errn)) return -1;
        imb_speech_loader_opts o;
        imb_speech_loader_defaults(&o, r->batch, 0);
        o.bucket = 50;   /* similar lengths per batch: less padding (the order does not change the scores) */
        o.mean = r->mean;
        o.istd = r->istd;
        if (!(r->eval[i] = imb_speech_loader_new(r->eval_set[i], &o, err, errn))) return -1;
    }
    r->ctx = imb_ctx_new(!strcmp(r->cli->device, "cuda") ? IMB_CUDA : IMB_CPU, seed, err, errn);
    if (!r->ctx) return -1;
    r->ctx->deterministic = r->cli->deterministic;
    r->model = imb_ctc_model_create(r->ctx, &r->bcfg, IMB_SPEECH_NMEL, r->stem_channels, IMB_SPEECH_NSYMBOLS, r->causal);
    r->cmvn_mean = imb_param_new(r->ctx, "normalize.mean", 1, IMB_SHAPE(IMB_SPEECH_NMEL), IMB_INIT_ZEROS, 0, 0);
    r->cmvn_istd = imb_param_new(r->ctx, "normalize.istd", 1, IMB_SHAPE(IMB_SPEECH_NMEL), IMB_INIT_ONES, 0, 0);
    if (!r->model || imb_params_alloc(r->ctx)) return imb_errf(err, errn, "model: %s", imb_error(r->ctx));
    imb_param_freeze(r->ctx, r->cmvn_mean);
    imb_param_freeze(r->ctx, r->cmvn_istd);
    if (training) {
        /* a resumed run loads the same values back from its checkpoint */
        if (imb_mem_copy(r->ctx->device, r->cmvn_mean->data, IMB_CPU, r->mean, sizeof r->mean) ||
            imb_mem_copy(r->ctx->device, r->cmvn_istd->data, IMB_CPU, r->istd, sizeof r->istd))
            return imb_errf(err, errn, "model: cannot copy the CMVN statistics to the %s", r->cli->device);
    }
    return 0;
}

static void teardown(run *r) {
    imb_speech_loader_free(r->train);
    imb_speech_close(r->train_set);
    for (int i = 0; i < r->neval; i++) {
        imb_speech_loader_free(r->eval[i]);
        imb_speech_close(r->eval_set[i]);
    }
    imb_ctc_model_free(r->model);
    imb_ctx_free(r->ctx);
    free(r->warned);
}

/* The model's logits for n utterances of batch b starting at lo, and the CTC loss (mean) with
 * each utterance's -log p in nll; out_len [n] receives the frames after the stem. */
static imb_tensor *forward_loss(run *r, const imb_speech_set *set, const imb_speech_batch *b, int lo, int n,
                                int32_t *out_len, imb_tensor **logits, imb_tensor **nll) {
    imb_ctx *ctx = r->ctx;
    for (int i = 0; i < n; i++)
        if (imb_ctc_subsampled_len(b->lengths[lo + i]) < 1) {
            imb_fail(ctx, "utterance %s has %d frames: the stem needs at least 7 (70 ms)",
                     imb_speech_id(set, b->index[lo + i]), b->lengths[lo + i]);
            return NULL;
        }
    int off = 0, smax = 1;
    for (int i = 0; i < lo; i++) off += b->target_lengths[i];
    for (int i = 0; i < n; i++) smax = b->target_lengths[lo + i] > smax ? b->target_lengths[lo + i] : smax;
    int32_t *y = calloc((size_t)n * (size_t)smax, sizeof *y);
    if (!y) { imb_fail(ctx, "ctc: out of host memory"); return NULL; }
    for (int i = 0; i < n; i++) {
        memcpy(y + (size_t)i * smax, b->targets + off, sizeof *y * (size_t)b->target_lengths[lo + i]);
        off += b->target_lengths[lo + i];
    }
    const float *f = b->feats + (size_t)lo * b->tmax * b->nmel;
    imb_tensor *x = imb_input(ctx, IMB_F32, 3, IMB_SHAPE(n, b->tmax, b->nmel), f);
    *logits = imb_ctc_model_forward(ctx, r->model, x, b->lengths + lo, out_len);
    imb_tensor *loss = imb_ctc_loss(ctx, *logits, imb_input(ctx, IMB_I32, 1, IMB_SHAPE(n), out_len),
                                    imb_input(ctx, IMB_I32, 2, IMB_SHAPE(n, smax), y),
                                    imb_input(ctx, IMB_I32, 1, IMB_SHAPE(n), b->target_lengths + lo), IMB_SPEECH_BLANK,
                                    IMB_CTC_MEAN, r->zero_inf, nll);
    free(y);
    return loss;
}

static int next(void *ud, char *err, size_t errn) {
    run *r = ud;
    int rc = imb_speech_loader_next(r->train, &r->cur);
    if (rc == 1) rc = imb_speech_loader_next(r->train, &r->cur);   /* next epoch */
    if (rc) return imb_errf(err, errn, "train loader: %s", imb_speech_loader_error(r->train));
    int world = r->cli->world > 0 ? r->cli->world : 1, rank = r->cli->rank;
    r->lo = (int)((int64_t)r->cur.count * rank / world);
    r->count = (int)((int64_t)r->cur.count * (rank + 1) / world) - r->lo;
    return r->count;
}

static imb_tensor *loss(void *ud, imb_aux_terms *terms) {
    run *r = ud;
    int32_t *out_len = malloc(sizeof *out_len * (size_t)(r->count > 0 ? r->count : 1));
    float *h = malloc(sizeof *h * (size_t)(r->count > 0 ? r->count : 1));
    imb_tensor *logits = NULL, *nll = NULL, *l = NULL;
    if (!out_len || !h) imb_fail(r->ctx, "ctc: out of host memory");
    else l = forward_loss(r, r->train_set, &r->cur, r->lo, r->count, out_len, &logits, &nll);
    if (l && !imb_to_host(r->ctx, nll, h, 0))
        for (int i = 0; i < r->count; i++) {
            int u = r->cur.index[r->lo + i];
            if (!isinf(h[i])) continue;
            r->inf_losses++;
            if (r->warned[u]) continue;
            r->warned[u] = 1;
            fprintf(stderr, "harness: warning: utterance %s: CTC loss is infinite (%d symbols cannot be emitted in %d "
                    "frames after subsampling)%s\n", imb_speech_id(r->train_set, u),
                    r->cur.target_lengths[r->lo + i], out_len[i],
                    r->zero_inf ? "; zeroed (ctc.zero_infinity), not named again" : "");
        }
    free(out_len);
    free(h);
    imb_tensor *aux = l ? imb_backbone_aux_loss(r->ctx, r->model->bb, NULL, terms) : NULL;
    return aux ? imb_add(r->ctx, l, aux) : l;
}

/* one pass over every eval set: WER and CER (percent, jiwer's corpus-level definition) and,
 * for the first set, the mean CTC loss */
static int evaluate(void *ud, imb_metrics *m, char *err, size_t errn) {
    run *r = ud;
    imb_ctx *ctx = r->ctx;
    /* the loaders normalise with these arrays: the checkpoint's values (eval) or the training split's */
    if (imb_to_host(ctx, r->cmvn_mean, r->mean, 0) || imb_to_host(ctx, r->cmvn_istd, r->istd, 0))
        return imb_errf(err, errn, "eval: %s", imb_error(ctx));
    int V = IMB_SPEECH_NSYMBOLS;
    double val_loss = NAN;
    for (int s = 0; s < r->neval; s++) {
        imb_wer w;
        memset(&w, 0, sizeof w);
        double lsum = 0;
        int64_t n = 0;
        if (imb_speech_loader_seek(r->eval[s], 0, 0))
            return imb_errf(err, errn, "%s loader: %s", r->eval_name[s], imb_speech_loader_error(r->eval[s]));
        /* the hypotheses in Kaldi's text format, "<utterance> <words>", for scoring elsewhere */
        char hpath[4400];
        snprintf(hpath, sizeof hpath, "%s.%s.hyp", r->ckpt, r->eval_name[s]);
        FILE *hf = fopen(hpath, "w");
        if (!hf) return imb_errf(err, errn, "%s: cannot write: %s", hpath, strerror(errno));
        for (;;) {
            imb_speech_batch b;
            int rc = imb_speech_loader_next(r->eval[s], &b);
            if (rc < 0) {
                fclose(hf);
                return imb_errf(err, errn, "%s loader: %s", r->eval_name[s], imb_speech_loader_error(r->eval[s]));
            }
            if (rc == 1) break;
            imb_step_begin(ctx, 0);
            ctx->flops = 0;
            int32_t *out_len = malloc(sizeof *out_len * (size_t)b.count);
            imb_tensor *logits = NULL, *nll = NULL;
            imb_tensor *l = out_len ? forward_loss(r, r->eval_set[s], &b, 0, b.count, out_len, &logits, &nll) : NULL;
            if (!l) { free(out_len); fclose(hf); return imb_errf(err, errn, "eval %s: %s", r->eval_name[s], out_len ? imb_error(ctx) : "out of host memory"); }
            if (s == 0 && m->flops_per_sample == 0) m->flops_per_sample = ctx->flops / b.count;
            int64_t T = logits->shape[1];
            float *h = malloc(sizeof *h * (size_t)(b.count * T * V)), lv;
            int32_t *ids = malloc(sizeof *ids * (size_t)(T + b.ntargets + 1));
            size_t textn = (size_t)(T + b.ntargets) * 2 + 2;
            char *hyp = malloc(textn), *ref = malloc(textn);
            int bad = !h || !ids || !hyp || !ref || imb_to_host(ctx, logits, h, 0) || imb_to_host(ctx, l, &lv, 0);
            for (int i = 0, off = 0; i < b.count && !bad; off += b.target_lengths[i], i++) {
                const float *sc = h + (size_t)i * T * V;
                int k = r->beam ? imb_ctc_prefix_beam(sc, out_len[i], V, IMB_SPEECH_BLANK, r->beam, ids, NULL)
                                : imb_ctc_greedy(sc, out_len[i], V, IMB_SPEECH_BLANK, ids);
                if (k < 0) { bad = 1; break; }
                imb_speech_decode(ids, k, hyp, textn);
                imb_speech_decode(b.targets + off, b.target_lengths[i], ref, textn);
                if (imb_wer_add(&w, ref, hyp)) bad = 1;
                if (hf) fprintf(hf, "%s %s\n", imb_speech_id(r->eval_set[s], b.index[i]), hyp);
            }
            free(h); free(ids); free(hyp); free(ref); free(out_len);
            if (bad) {
                fclose(hf);
                return imb_errf(err, errn, "eval %s: %s", r->eval_name[s], imb_ok(ctx) ? "out of host memory" : imb_error(ctx));
            }
            lsum += (double)lv * b.count;
            n += b.count;
        }
        if (fclose(hf)) return imb_errf(err, errn, "%s: write failed", hpath);
        char name[40];
        metric_name(name, sizeof name, "wer", r->eval_name[s]);
        imb_metrics_set(m, name, 100.0 * imb_wer_value(&w));
        metric_name(name, sizeof name, "cer", r->eval_name[s]);
        imb_metrics_set(m, name, 100.0 * imb_cer_value(&w));
        if (s == 0) {
            m->samples = n;
            val_loss = n ? lsum / (double)n : NAN;
        }
    }
    imb_metrics_set(m, "val_loss", val_loss);
    return 0;
}

static void position(void *ud, int64_t *epoch, int64_t *batch) {
    run *r = ud;
    if (r->train) imb_speech_loader_position(r->train, epoch, batch);
    else *epoch = *batch = 0;
}

static int seek(void *ud, int64_t epoch, int64_t batch, char *err, size_t errn) {
    run *r = ud;
    if (r->train && imb_speech_loader_seek(r->train, epoch, batch))
        return imb_errf(err, errn, "%s", imb_speech_loader_error(r->train));
    return 0;
}

static void record(void *ud, struct imb_record *rec) {
    run *r = ud;
    imb_record_extra_str(rec, "ctc_decode", r->beam ? "prefix_beam" : "greedy");
    if (r->beam) imb_record_extra_num(rec, "ctc_beam_width", r->beam);
    imb_record_extra_num(rec, "ctc_stem_channels", r->stem_channels);
    imb_record_extra_num(rec, "ctc_causal", r->causal);
    imb_record_extra_num(rec, "ctc_inf_losses", (double)r->inf_losses);
    char sets[MAX_EVAL * 65] = "";
    for (int i = 0; i < r->neval; i++) snprintf(sets + strlen(sets), sizeof sets - strlen(sets), "%s%s", i ? "," : "", r->eval_name[i]);
    imb_record_extra_str(rec, "eval_sets", sets);
}

int imb_run_ctc(const imb_cli *cli, const imb_task_def *task, imb_protocol *p, char *err, size_t errn) {
    run r;
    memset(&r, 0, sizeof r);
    r.cli = cli;
    r.task = task;
    r.p = p;
    int rc = -1;
    if (!setup(&r, err, errn)) {
        imb_task_run t = { .ud = &r, .ctx = r.ctx, .steps_per_epoch = r.train ? imb_speech_loader_batches(r.train) : 1,
                           .batch = r.batch, .data_root = r.root, .mixer = r.bcfg.mixer, .preset = r.bcfg.preset,
                           .next = next, .loss = loss, .evaluate = evaluate, .position = position, .seek = seek,
                           .record = record };
        rc = imb_trainer_run(cli, task, p, &t, err, errn);
        if (rc == 0 && r.inf_losses)
            printf("%lld training utterance(s) had an infinite CTC loss (see the warnings above)\n",
                   (long long)r.inf_losses);
    }
    teardown(&r);
    return rc;
}
