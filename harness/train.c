/* The train / eval loop for image classification: shards -> loader -> model -> AdamW,
 * checkpoints, evaluation, run record. */
#include "train.h"
#include "checkpoint.h"
#include "elementwise.h"
#include "imagecls.h"
#include "loader.h"
#include "loss.h"
#include "optim.h"
#include "prepare.h"
#include "progress.h"
#include "record.h"
#include "synth.h"
#include "topk.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct run {
    const imb_cli *cli;
    const imb_task_def *task;
    imb_protocol *p;
    imb_backbone_cfg bcfg;
    imb_ctx *ctx;
    imb_imagecls *model;
    imb_shard train_shard, val_shard;
    imb_loader *train, *val;
    imb_transform_opts ttrain, teval;
    float *x;
    int32_t *y;
    int batch;
    imb_aux_terms aux;   /* the backbone's auxiliary loss terms of the last train step (weights recorded) */
    char root[4096], ckpt[4096], losses[4096], records[4096];
} run;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int mkdirs(const char *path, char *err, size_t errn) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) {
                snprintf(err, errn, "%s: cannot create folder: %s", buf, strerror(errno));
                return -1;
            }
            if (!c) return 0;
            *p = c;
        }
    }
}

/* --data, or the task's synthetic mini dataset (written once under <out>/synth/<task>) */
static int resolve_data(run *r, char *err, size_t errn) {
    if (r->cli->data && !r->cli->synth) {
        snprintf(r->root, sizeof r->root, "%s", r->cli->data);
        return 0;
    }
    if (!r->cli->synth) {
        snprintf(err, errn, "task %s needs --data DIR (its dataset in the real layout) or --synth", r->task->name);
        return -1;
    }
    snprintf(r->root, sizeof r->root, "%s/synth/%s", r->cli->out_dir, r->task->name);
    char done[4200];
    snprintf(done, sizeof done, "%s/.synth-complete", r->root);
    if (!access(done, F_OK)) return 0;
    if (mkdirs(r->root, err, errn)) return -1;
    if (imb_synth_write(r->task->synth_layout, r->root, (int)r->p->data.synth_train, (int)r->p->data.synth_val,
                        (uint64_t)r->p->train.seed, err, errn))
        return -1;
    FILE *f = fopen(done, "w");
    if (f) fclose(f);
    return 0;
}

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
    if (resolve_data(r, err, errn)) return -1;
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
    r->batch = (int)p->train.batch;
    int threads = r->cli->threads ? r->cli->threads : (int)p->data.loader_threads;
    if (threads < 1) {   /* 0: one loader thread per online core, at most 8 */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : n > 8 ? 8 : (int)n;
    }
    uint64_t seed = r->cli->seed >= 0 ? (uint64_t)r->cli->seed : (uint64_t)p->train.seed;
    r->train = imb_loader_new(&r->train_shard, &r->ttrain, r->batch, 1, 1, seed, threads, err, errn);
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
    int n1 = r->cli->checkpoint ? snprintf(r->ckpt, sizeof r->ckpt, "%s", r->cli->checkpoint)
                                : snprintf(r->ckpt, sizeof r->ckpt, "%s/%s-%s.safetensors", r->cli->out_dir,
                                           r->task->name, r->bcfg.preset);
    int n2 = snprintf(r->losses, sizeof r->losses, "%s.losses", r->ckpt);
    int n3 = snprintf(r->records, sizeof r->records, "%s/runs.jsonl", r->cli->out_dir);
    if (n1 >= (int)sizeof r->ckpt || n2 >= (int)sizeof r->losses || n3 >= (int)sizeof r->records) {
        snprintf(err, errn, "%s: path too long", r->cli->out_dir);
        return -1;
    }
    return mkdirs(r->cli->out_dir, err, errn);
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

static imb_tensor *forward(run *r, int n, int training) {
    const imb_transform_opts *o = training ? &r->ttrain : &r->teval;
    imb_step_begin(r->ctx, training);
    imb_tensor *x = imb_input(r->ctx, IMB_F32, 4, IMB_SHAPE(n, o->channels, o->size, o->size), r->x);
    return imb_imagecls_forward(r->ctx, r->model, x);
}

/* one pass over the validation split: top-1/top-5 as timm, mean cross-entropy */
static int evaluate(run *r, imb_topk *acc, double *loss, double *flops_per_sample, char *err, size_t errn) {
    memset(acc, 0, sizeof *acc);
    double lsum = 0;
    int64_t n = 0;
    int count;
    if (imb_loader_seek(r->val, 0, 0)) { snprintf(err, errn, "val loader: %s", imb_loader_error(r->val)); return -1; }
    *flops_per_sample = 0;
    for (;;) {
        int rc = imb_loader_next(r->val, r->x, r->y, &count);
        if (rc < 0) { snprintf(err, errn, "val loader: %s", imb_loader_error(r->val)); return -1; }
        if (rc == 1) break;
        r->ctx->flops = 0;
        imb_tensor *logits = forward(r, count, 0);
        imb_tensor *l = imb_cross_entropy(r->ctx, logits, imb_input(r->ctx, IMB_I32, 1, IMB_SHAPE(count), r->y), 0.0f);
        if (!l) { snprintf(err, errn, "eval: %s", imb_error(r->ctx)); return -1; }
        if (*flops_per_sample == 0) *flops_per_sample = r->ctx->flops / count;
        int64_t C = logits->shape[1];
        float *h = malloc(sizeof *h * (size_t)(count * C));
        float lv;
        imb_to_host(r->ctx, logits, h, 0);
        imb_to_host(r->ctx, l, &lv, 0);
        imb_topk_update(acc, h, r->y, count, C);
        free(h);
        lsum += (double)lv * count;
        n += count;
    }
    *loss = n ? lsum / (double)n : NAN;
    return 0;
}

static int save(run *r, int64_t step, const imb_adamw *opt, char *err, size_t errn) {
    imb_ckpt_meta m;
    memset(&m, 0, sizeof m);
    m.step = step;
    m.adamw_t = opt->t;
    imb_loader_position(r->train, &m.loader_epoch, &m.loader_batch);
    snprintf(m.task, sizeof m.task, "%s", r->task->name);
    snprintf(m.backbone, sizeof m.backbone, "%s", r->cli->backbone);
    snprintf(m.preset, sizeof m.preset, "%s", r->bcfg.preset);
    imb_protocol_hash(r->p, m.protocol_hash);
    return imb_ckpt_save(r->ctx, r->ckpt, &m, err, errn);
}

static int write_record(run *r, const imb_topk *acc, double val_loss, double flops, double sps, double wall,
                        int64_t steps, char *err, size_t errn) {
    imb_record rec;
    imb_record_init(&rec);
    imb_record_set(&rec, "task", r->task->name);
    imb_record_set(&rec, "backbone", r->bcfg.mixer);
    imb_record_set(&rec, "preset", r->bcfg.preset);
    imb_record_set(&rec, "device", r->cli->device);
    imb_record_set(&rec, "precision", r->cli->precision);
    imb_record_set_protocol(&rec, r->p);
    rec.seed = r->ctx->seed;
    rec.params = (int64_t)0;
    for (int i = 0; i < r->ctx->params.n; i++) rec.params += imb_numel(r->ctx->params.p[i].t);
    rec.flops_per_sample = flops;
    rec.samples_per_s = sps;
    rec.wall_s = wall;
    imb_record_option(&rec, "spec", r->cli->backbone);
    for (int i = 0; i < r->cli->nbackbone; i++) imb_record_option(&rec, "kv", r->cli->backbone_kv[i]);
    imb_record_metric(&rec, "top1", imb_topk_top1(acc));
    imb_record_metric(&rec, "top5", imb_topk_top5(acc));
    imb_record_metric(&rec, "val_loss", val_loss);
    imb_record_metric(&rec, "val_samples", (double)acc->n);
    imb_record_extra_num(&rec, "steps", (double)steps);
    if (r->aux.n) {   /* {"name": weight, ...} of the backbone's auxiliary losses */
        char js[512];
        int k = snprintf(js, sizeof js, "{");
        for (int i = 0; i < r->aux.n && k > 0 && k < (int)sizeof js; i++)
            k += snprintf(js + k, sizeof js - (size_t)k, "%s\"%s\":%.9g", i ? "," : "", r->aux.name[i], r->aux.weight[i]);
        if (k > 0 && k < (int)sizeof js - 1) {
            snprintf(js + k, sizeof js - (size_t)k, "}");
            imb_record_extra_json(&rec, "aux_loss_weights", js);
        }
    }
    imb_record_extra_str(&rec, "data", r->root);
    imb_record_extra_str(&rec, "checkpoint", r->ckpt);
    int rc = imb_record_append(&rec, r->records, err, errn);
    imb_record_free(&rec);
    return rc;
}

/* keeps the lines "<step> <loss>" with step < keep */
static int truncate_losses(const char *path, int64_t keep, char *err, size_t errn) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char tmp[4200], line[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "w");
    if (!o) { fclose(f); snprintf(err, errn, "%s: %s", tmp, strerror(errno)); return -1; }
    while (fgets(line, sizeof line, f))
        if (strtoll(line, NULL, 10) < keep) fputs(line, o);
    fclose(f);
    if (fclose(o) || rename(tmp, path)) { snprintf(err, errn, "%s: %s", path, strerror(errno)); return -1; }
    return 0;
}

int imb_run_imagecls(const imb_cli *cli, const imb_task_def *task, imb_protocol *p, char *err, size_t errn) {
    run r;
    memset(&r, 0, sizeof r);
    r.cli = cli;
    r.task = task;
    r.p = p;
    double t0 = now();
    int rc = -1;
    if (setup(&r, err, errn)) goto out;
    imb_adamw opt = imb_adamw_default((float)p->train.weight_decay);
    opt.beta1 = (float)p->train.beta1;
    opt.beta2 = (float)p->train.beta2;
    opt.eps = (float)p->train.eps;
    int64_t spe = imb_loader_batches(r.train), total = imb_protocol_total_steps(p, spe);
    int64_t warm = imb_protocol_warmup_steps(p, spe), step = 0;
    /* 0 in the protocol: once per epoch */
    int64_t ckpt_every = p->train.ckpt_interval > 0 ? p->train.ckpt_interval : spe;
    int64_t eval_every = p->train.eval_interval > 0 ? p->train.eval_interval : spe;
    imb_topk acc;
    double vloss = NAN, flops = 0, train_time = 0;
    int64_t trained = 0;

    if (!strcmp(cli->cmd, "eval") || cli->resume) {
        imb_ckpt_meta m;
        /* eval loads weights only (a safetensors file from PyTorch works too); resume needs all */
        if (imb_ckpt_load(r.ctx, r.ckpt, &m, cli->resume, err, errn)) goto out;
        step = m.step;
        if (cli->resume) {
            opt.t = m.adamw_t;
            if (imb_loader_seek(r.train, m.loader_epoch, m.loader_batch)) {
                snprintf(err, errn, "%s: loader position: %s", r.ckpt, imb_loader_error(r.train));
                goto out;
            }
            printf("resumed %s at step %lld\n", r.ckpt, (long long)step);
        }
    }
    if (!strcmp(cli->cmd, "train")) {
        /* the loss log keeps one line per step; a resumed run drops what came after its checkpoint */
        if (cli->resume && truncate_losses(r.losses, step, err, errn)) goto out;
        FILE *lf = fopen(r.losses, cli->resume ? "a" : "w");
        if (!lf) { snprintf(err, errn, "%s: %s", r.losses, strerror(errno)); goto out; }
        int64_t params = 0;
        for (int i = 0; i < r.ctx->params.n; i++) params += imb_numel(r.ctx->params.p[i].t);
        printf("train %s on %s: %s (%lld params), %lld steps (%lld per epoch), batch %d, protocol %s%s\n", task->name,
               r.root, r.bcfg.preset, (long long)params, (long long)total, (long long)spe, r.batch, p->name,
               p->off_protocol ? " (off-protocol)" : "");
        imb_progress *pg = imb_progress_new(total, stdout);
        int64_t last_good = -1;
        for (; step < total; step++) {
            int count;
            int lr_rc = imb_loader_next(r.train, r.x, r.y, &count);
            if (lr_rc == 1) lr_rc = imb_loader_next(r.train, r.x, r.y, &count);   /* next epoch */
            if (lr_rc) { snprintf(err, errn, "train loader: %s", imb_loader_error(r.train)); break; }
            double ts = now();
            imb_params_zero_grad(r.ctx);
            imb_tensor *logits = forward(&r, count, 1);
            imb_tensor *labels = imb_input(r.ctx, IMB_I32, 1, IMB_SHAPE(count), r.y);
            imb_tensor *l = imb_cross_entropy(r.ctx, logits, labels, (float)p->train.label_smoothing);
            /* the backbone's auxiliary losses (InfoMamba's), weighted, join the task loss */
            imb_tensor *aux = imb_backbone_aux_loss(r.ctx, r.model->bb, labels, &r.aux);
            if (aux) l = imb_add(r.ctx, l, aux);
            float lv = NAN, tv[IMB_MAX_AUX];
            if (l) imb_to_host(r.ctx, l, &lv, 0);
            for (int i = 0; i < r.aux.n; i++) imb_to_host(r.ctx, r.aux.term[i], &tv[i], 0);
            if (!imb_ok(r.ctx)) { snprintf(err, errn, "step %lld: %s", (long long)step, imb_error(r.ctx)); break; }
            if (!isfinite(lv)) {
                snprintf(err, errn, "loss is %g at step %lld; stopped. Last good checkpoint: %s", lv, (long long)step,
                         last_good >= 0 || cli->resume ? r.ckpt : "(none written yet)");
                break;
            }
            imb_backward(r.ctx, l);
            double gn = imb_grad_clip(r.ctx, (float)p->train.clip_grad);
            if (!isfinite(gn)) {
                snprintf(err, errn, "gradient norm is %g at step %lld; stopped. Last good checkpoint: %s", gn,
                         (long long)step, last_good >= 0 || cli->resume ? r.ckpt : "(none written yet)");
                break;
            }
            float lr = !strcmp(p->train.schedule, "constant")
                           ? imb_lr_cosine(step < warm ? step : warm, warm + 1, warm, (float)p->train.lr, (float)p->train.lr)
                           : imb_lr_cosine(step, total, warm, (float)p->train.lr, (float)p->train.min_lr);
            if (imb_adamw_step(r.ctx, &opt, lr)) { snprintf(err, errn, "step %lld: %s", (long long)step, imb_error(r.ctx)); break; }
            train_time += now() - ts;
            trained += count;
            /* "<step> <loss>", then each auxiliary term unweighted: " nce=... red=... hash=..." */
            fprintf(lf, "%lld %.9g", (long long)step, lv);
            for (int i = 0; i < r.aux.n; i++) fprintf(lf, " %s=%.9g", r.aux.name[i], tv[i]);
            fputc('\n', lf);
            fflush(lf);
            imb_progress_update(pg, step + 1, lv, train_time > 0 ? (double)trained / train_time : 0);
            if ((step + 1) % ckpt_every == 0 || step + 1 == total) {
                if (save(&r, step + 1, &opt, err, errn)) break;
                last_good = step + 1;
            }
            if ((step + 1) % eval_every == 0 && step + 1 < total) {
                if (evaluate(&r, &acc, &vloss, &flops, err, errn)) break;
                imb_progress_note(pg, "step %lld: val top1 %.2f%% top5 %.2f%% loss %.4f", (long long)step + 1,
                                  imb_topk_top1(&acc), imb_topk_top5(&acc), vloss);
            }
            if (cli->stop_after > 0 && step + 1 == cli->stop_after) {
                imb_progress_finish(pg);
                fclose(lf);
                printf("stopped after step %lld as asked (--stop-after)\n", (long long)step + 1);
                rc = 0;
                goto out;
            }
        }
        imb_progress_finish(pg);
        fclose(lf);
        if (step < total) goto out;
    }
    if (evaluate(&r, &acc, &vloss, &flops, err, errn)) goto out;
    double wall = now() - t0, sps = train_time > 0 ? (double)trained / train_time : 0;
    if (write_record(&r, &acc, vloss, flops, sps, wall, step, err, errn)) goto out;
    printf("\n| task | backbone | params | steps | val top-1 | val top-5 | val loss | train samples/s | wall s |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    int64_t params = 0;
    for (int i = 0; i < r.ctx->params.n; i++) params += imb_numel(r.ctx->params.p[i].t);
    printf("| %s | %s | %lld | %lld | %.2f%% | %.2f%% | %.4f | %.1f | %.1f |\n", task->name, r.bcfg.preset,
           (long long)params, (long long)step, imb_topk_top1(&acc), imb_topk_top5(&acc), vloss, sps, wall);
    printf("record appended to %s; checkpoint %s\n", r.records, r.ckpt);
    rc = 0;
out:
    teardown(&r);
    return rc;
}
