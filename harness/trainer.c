/* The task-independent train / eval loop: every task kind plugs in through imb_task_run. */
#include "trainer.h"
#include "checkpoint.h"
#include "dist.h"
#include "launch.h"
#include "fileio.h"
#include "optim.h"
#include "progress.h"
#include "record.h"
#include "synth.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void imb_metrics_set(imb_metrics *m, const char *name, double value) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->name[i], name)) { m->value[i] = value; return; }
    if (m->n == IMB_MAX_METRICS) return;
    snprintf(m->name[m->n], sizeof m->name[0], "%s", name);
    m->value[m->n++] = value;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int imb_trainer_data_root(const imb_cli *cli, const imb_task_def *task, const imb_protocol *p, char *root,
                          size_t rootn, char *err, size_t errn) {
    if (cli->data && !cli->synth) {
        if (snprintf(root, rootn, "%s", cli->data) >= (int)rootn) { snprintf(err, errn, "--data: path too long"); return -1; }
        return 0;
    }
    if (!cli->synth) {
        snprintf(err, errn, "task %s needs --data DIR (its dataset in the real layout) or --synth", task->name);
        return -1;
    }
    if (snprintf(root, rootn, "%s/synth/%s", cli->out_dir, task->name) >= (int)rootn) {
        snprintf(err, errn, "%s: path too long", cli->out_dir);
        return -1;
    }
    char done[4200];
    snprintf(done, sizeof done, "%s/.synth-complete", root);
    if (!access(done, F_OK)) return 0;
    if (cli->rank > 0) {   /* rank 0 of a group writes it; the others wait (at most an hour) */
        for (int i = 0; i < 36000 && access(done, F_OK); i++) nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
        if (!access(done, F_OK)) return 0;
        snprintf(err, errn, "%s: rank 0 did not finish writing the synthetic dataset", root);
        return -1;
    }
    if (imb_mkdirs(root, err, errn)) return -1;
    if (imb_synth_write(task->synth_layout, root, (int)p->data.synth_train, (int)p->data.synth_val,
                        (uint64_t)p->train.seed, err, errn))
        return -1;
    FILE *f = fopen(done, "w");
    if (f) fclose(f);
    return 0;
}

uint64_t imb_trainer_seed(const imb_cli *cli, const imb_protocol *p) {
    return cli->seed >= 0 ? (uint64_t)cli->seed : (uint64_t)p->train.seed;
}

int imb_trainer_threads(const imb_cli *cli, const imb_protocol *p) {
    int threads = cli->threads ? cli->threads : (int)p->data.loader_threads;
    if (threads < 1) {   /* 0: one loader thread per online core, at most 8 */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : n > 8 ? 8 : (int)n;
    }
    return threads;
}

typedef struct trainer {
    const imb_cli *cli;
    const imb_task_def *task;
    imb_protocol *p;
    imb_task_run *t;
    imb_aux_terms terms;   /* the last training step's loss terms (their weights are recorded) */
    float term_vals[IMB_MAX_AUX];   /* their values, averaged over the ranks */
    imb_dist dist;         /* the data-parallel group (no-ops for a plain run) */
    int lead;              /* rank 0: the only one that logs, evaluates and writes files */
    char ckpt[4096], losses[4096], records[4096];
} trainer;

static int64_t count_params(const imb_ctx *ctx) {
    int64_t n = 0;
    for (int i = 0; i < ctx->params.n; i++) n += imb_numel(ctx->params.p[i].t);
    return n;
}

static int save(trainer *tr, int64_t step, const imb_adamw *opt, char *err, size_t errn) {
    imb_ckpt_meta m;
    memset(&m, 0, sizeof m);
    m.step = step;
    m.adamw_t = opt->t;
    tr->t->position(tr->t->ud, &m.loader_epoch, &m.loader_batch);
    snprintf(m.task, sizeof m.task, "%s", tr->task->name);
    snprintf(m.backbone, sizeof m.backbone, "%s", tr->cli->backbone);
    snprintf(m.preset, sizeof m.preset, "%s", tr->t->preset);
    imb_protocol_hash(tr->p, m.protocol_hash);
    return imb_ckpt_save(tr->t->ctx, tr->ckpt, &m, err, errn);
}

static int write_record(trainer *tr, const imb_metrics *m, double sps, double wall, int64_t steps, char *err,
                        size_t errn) {
    const imb_task_run *t = tr->t;
    imb_record rec;
    imb_record_init(&rec);
    imb_record_set(&rec, "task", tr->task->name);
    imb_record_set(&rec, "backbone", t->mixer);
    imb_record_set(&rec, "preset", t->preset);
    imb_record_set(&rec, "device", tr->cli->device);
    imb_record_set(&rec, "precision", tr->cli->precision);
    imb_record_set_protocol(&rec, tr->p);
    rec.seed = t->ctx->seed;
    rec.params = count_params(t->ctx);
    rec.flops_per_sample = m->flops_per_sample;
    rec.samples_per_s = sps;
    rec.wall_s = wall;
    imb_record_option(&rec, "spec", tr->cli->backbone);
    for (int i = 0; i < tr->cli->nbackbone; i++) imb_record_option(&rec, "kv", tr->cli->backbone_kv[i]);
    /* the weights of the auxiliary loss terms (InfoMamba's lambdas), defaults included */
    for (int i = 0; i < tr->terms.n; i++) {
        char key[40];
        snprintf(key, sizeof key, "lambda_%s", tr->terms.name[i]);
        imb_record_option_num(&rec, key, tr->terms.weight[i]);
    }
    for (int i = 0; i < m->n; i++) imb_record_metric(&rec, m->name[i], m->value[i]);
    imb_record_metric(&rec, "val_samples", (double)m->samples);
    imb_record_extra_num(&rec, "steps", (double)steps);
    imb_record_extra_str(&rec, "data", t->data_root);
    imb_record_extra_str(&rec, "checkpoint", tr->ckpt);
    if (t->record) t->record(t->ud, &rec);
    int rc = imb_record_append(&rec, tr->records, err, errn);
    imb_record_free(&rec);
    return rc;
}

/* keeps the lines "<step> ..." with step < keep */
static int truncate_losses(const char *path, int64_t keep, char *err, size_t errn) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char tmp[4200], line[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "w");
    if (!o) { fclose(f); snprintf(err, errn, "%s: %s", tmp, strerror(errno)); return -1; }
    while (fgets(line, sizeof line, f))
        if (strtoll(line, NULL, 10) < keep) fputs(line, o);
    fclose(f);
    if (fclose(o) || rename(tmp, path)) { snprintf(err, errn, "%s: %s", path, strerror(errno)); return -1; }
    return 0;
}

static void headline(const imb_metrics *m, char *buf, size_t n) {
    int k = 0;
    for (int i = 0; i < m->n && i < 4 && k >= 0 && (size_t)k < n; i++)
        k += snprintf(buf + k, n - (size_t)k, "%s%s %.4g", i ? ", " : "", m->name[i], m->value[i]);
    if (!m->n) snprintf(buf, n, "(no metrics)");
}

/* one training step; returns the loss (NaN when it is not finite: the caller stops) or -1 on error */
static int train_step(trainer *tr, int64_t step, float lr, imb_adamw *opt, float *loss, char *err, size_t errn) {
    imb_task_run *t = tr->t;
    imb_ctx *ctx = t->ctx;
    imb_params_zero_grad(ctx);
    imb_step_begin(ctx, 1);
    memset(&tr->terms, 0, sizeof tr->terms);
    imb_tensor *l = t->loss(t->ud, &tr->terms);
    /* the loss and its terms averaged over the ranks, so that every rank takes the same
     * decisions (NaN stop) and rank 0 logs the global batch's loss */
    float vals[1 + IMB_MAX_AUX];
    int nv = 1 + tr->terms.n;
    for (int i = 0; i < nv; i++) vals[i] = NAN;
    if (l) imb_to_host(ctx, l, &vals[0], 0);
    for (int i = 0; i < tr->terms.n; i++)
        if (tr->terms.term[i]) imb_to_host(ctx, tr->terms.term[i], &vals[1 + i], 0);
    imb_dist_mean(ctx, &tr->dist, vals, nv);
    if (!imb_ok(ctx)) { snprintf(err, errn, "step %lld: %s", (long long)step, imb_error(ctx)); return -1; }
    *loss = vals[0];
    memcpy(tr->term_vals, vals + 1, sizeof *vals * (size_t)tr->terms.n);
    if (!isfinite(*loss)) return 0;
    imb_backward(ctx, l);
    imb_dist_allreduce_grads(ctx, &tr->dist);
    double gn = imb_grad_clip(ctx, (float)tr->p->train.clip_grad);
    if (!isfinite(gn)) { *loss = (float)gn; return 1; }
    if (imb_adamw_step(ctx, opt, lr)) { snprintf(err, errn, "step %lld: %s", (long long)step, imb_error(ctx)); return -1; }
    return 0;
}

static void log_step(trainer *tr, FILE *lf, int64_t step, float lv) {
    fprintf(lf, "%lld %.9g", (long long)step, lv);
    for (int i = 0; i < tr->terms.n; i++) fprintf(lf, " %s=%.6g", tr->terms.name[i], tr->term_vals[i]);
    fputc('\n', lf);
    fflush(lf);
}

/* The training steps from *step to the protocol's end (or --stop-after). 0 when done, 1 when
 * stopped as asked, -1 on error. */
static int train_loop(trainer *tr, imb_adamw *opt, int64_t *step, int64_t total, double *train_time,
                      int64_t *trained, char *err, size_t errn) {
    const imb_cli *cli = tr->cli;
    const imb_protocol *p = tr->p;
    imb_task_run *t = tr->t;
    int64_t spe = t->steps_per_epoch, warm = imb_protocol_warmup_steps(p, spe);
    /* 0 in the protocol: once per epoch */
    int64_t ckpt_every = p->train.ckpt_interval > 0 ? p->train.ckpt_interval : spe;
    int64_t eval_every = p->train.eval_interval > 0 ? p->train.eval_interval : spe;
    /* the loss log keeps one line per step; a resumed run drops what came after its checkpoint */
    FILE *lf = NULL;
    if (tr->lead) {
        if (cli->resume && truncate_losses(tr->losses, *step, err, errn)) return -1;
        lf = fopen(tr->losses, cli->resume ? "a" : "w");
        if (!lf) { snprintf(err, errn, "%s: %s", tr->losses, strerror(errno)); return -1; }
        printf("train %s on %s: %s (%lld params), %lld steps (%lld per epoch), batch %d%s, protocol %s%s\n",
               tr->task->name, t->data_root, t->preset, (long long)count_params(t->ctx), (long long)total,
               (long long)spe, t->batch * tr->dist.world, tr->dist.world > 1 ? " (global)" : "", p->name,
               p->off_protocol ? " (off-protocol)" : "");
        if (tr->dist.comm) printf("data parallel: %d rank(s) over NCCL, %d samples per rank\n", tr->dist.world, t->batch);
    }
    imb_progress *pg = tr->lead ? imb_progress_new(total, stdout) : NULL;
    int64_t last_good = -1;
    int rc = -1;
    char line[512];
    for (; *step < total; ++*step) {
        int count = t->next(t->ud, err, errn);
        if (count < 0) goto out;
        double ts = now();
        float lr = !strcmp(p->train.schedule, "constant")
                       ? imb_lr_cosine(*step < warm ? *step : warm, warm + 1, warm, (float)p->train.lr, (float)p->train.lr)
                       : imb_lr_cosine(*step, total, warm, (float)p->train.lr, (float)p->train.min_lr);
        float lv;
        int src = train_step(tr, *step, lr, opt, &lv, err, errn);
        if (src < 0) goto out;
        if (!isfinite(lv)) {
            snprintf(err, errn, "%s is %g at step %lld; stopped. Last good checkpoint: %s", src ? "gradient norm" : "loss",
                     lv, (long long)*step, last_good >= 0 || cli->resume ? tr->ckpt : "(none written yet)");
            goto out;
        }
        *train_time += now() - ts;
        *trained += (int64_t)count * tr->dist.world;
        if (tr->lead) {
            log_step(tr, lf, *step, lv);
            imb_progress_update(pg, *step + 1, lv, *train_time > 0 ? (double)*trained / *train_time : 0);
            if ((*step + 1) % ckpt_every == 0 || *step + 1 == total) {
                if (save(tr, *step + 1, opt, err, errn)) goto out;
                last_good = *step + 1;
            }
            if ((*step + 1) % eval_every == 0 && *step + 1 < total) {
                imb_metrics m;
                memset(&m, 0, sizeof m);
                if (t->evaluate(t->ud, &m, err, errn)) goto out;
                headline(&m, line, sizeof line);
                imb_progress_note(pg, "step %lld: val %s", (long long)*step + 1, line);
            }
        }
        if (cli->stop_after > 0 && *step + 1 == cli->stop_after) {
            if (tr->lead) printf("\nstopped after step %lld as asked (--stop-after)\n", (long long)*step + 1);
            ++*step;
            rc = 1;
            goto out;
        }
    }
    rc = 0;
out:
    if (pg) imb_progress_finish(pg);
    if (lf) fclose(lf);
    return rc;
}

/* The data-parallel group of a launched rank: rank 0's NCCL id travels through the
 * rendezvous; a plain run keeps the no-op group of one. */
static int join_group(trainer *tr, char *err, size_t errn) {
    const imb_cli *cli = tr->cli;
    memset(&tr->dist, 0, sizeof tr->dist);
    tr->dist.world = 1;
    if (!cli->group) return 0;
    unsigned char id[IMB_DIST_ID_BYTES] = { 0 };
    if (cli->rank == 0 && strcmp(cli->device, "cpu") && imb_dist_id(id, err, errn)) return -1;
    if (imb_rendezvous(cli->init_spec, cli->rank, cli->world, id, sizeof id, 600, err, errn)) return -1;
    if (imb_dist_init(&tr->dist, tr->t->ctx, cli->rank, cli->world, id, err, errn)) return -1;
    /* every rank has joined (NCCL's init waits for all): the published id is no longer needed */
    if (cli->rank == 0 && cli->world > 1 && !strncmp(cli->init_spec, "file:", 5)) unlink(cli->init_spec + 5);
    return imb_dist_broadcast_params(tr->t->ctx, &tr->dist) ? (snprintf(err, errn, "%s", imb_error(tr->t->ctx)), -1)
                                                             : 0;
}

static void summary(const trainer *tr, const imb_metrics *m, int64_t step, double sps, double wall) {
    const imb_task_run *t = tr->t;
    printf("\n| task | backbone | params | steps |");
    for (int i = 0; i < m->n; i++) printf(" val %s |", m->name[i]);
    printf(" train samples/s | wall s |\n|---|---|---|---|");
    for (int i = 0; i < m->n; i++) printf("---|");
    printf("---|---|\n| %s | %s | %lld | %lld |", tr->task->name, t->preset, (long long)count_params(t->ctx),
           (long long)step);
    for (int i = 0; i < m->n; i++) printf(" %.4g |", m->value[i]);
    printf(" %.1f | %.1f |\n", sps, wall);
    printf("record appended to %s; checkpoint %s\n", tr->records, tr->ckpt);
}

int imb_trainer_run(const imb_cli *cli, const imb_task_def *task, imb_protocol *p, imb_task_run *t, char *err,
                    size_t errn) {
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.cli = cli;
    tr.task = task;
    tr.p = p;
    tr.t = t;
    tr.lead = cli->rank == 0;
    imb_ctx *ctx = t->ctx;
    double t0 = now();
    int n1 = cli->checkpoint ? snprintf(tr.ckpt, sizeof tr.ckpt, "%s", cli->checkpoint)
                             : snprintf(tr.ckpt, sizeof tr.ckpt, "%s/%s-%s.safetensors", cli->out_dir, task->name,
                                        t->preset);
    int n2 = snprintf(tr.losses, sizeof tr.losses, "%s.losses", tr.ckpt);
    int n3 = snprintf(tr.records, sizeof tr.records, "%s/runs.jsonl", cli->out_dir);
    if (n1 >= (int)sizeof tr.ckpt || n2 >= (int)sizeof tr.losses || n3 >= (int)sizeof tr.records) {
        snprintf(err, errn, "%s: path too long", cli->out_dir);
        return -1;
    }
    if (tr.lead && imb_mkdirs(cli->out_dir, err, errn)) return -1;
    int rc = -1;
    imb_adamw opt = imb_adamw_default((float)p->train.weight_decay);
    opt.beta1 = (float)p->train.beta1;
    opt.beta2 = (float)p->train.beta2;
    opt.eps = (float)p->train.eps;
    int64_t total = imb_protocol_total_steps(p, t->steps_per_epoch), step = 0, trained = 0;
    double train_time = 0;
    imb_metrics m;
    memset(&m, 0, sizeof m);

    if (!strcmp(cli->cmd, "eval") || cli->resume) {
        imb_ckpt_meta meta;
        /* eval loads weights only (a safetensors file from PyTorch works too); resume needs all;
         * every rank resumes from the same file */
        if (imb_ckpt_load(ctx, tr.ckpt, &meta, cli->resume, err, errn)) return -1;
        step = meta.step;
        if (cli->resume) {
            opt.t = meta.adamw_t;
            char why[512];
            if (t->seek(t->ud, meta.loader_epoch, meta.loader_batch, why, sizeof why)) {
                snprintf(err, errn, "%s: loader position: %s", tr.ckpt, why);
                return -1;
            }
            if (tr.lead) printf("resumed %s at step %lld\n", tr.ckpt, (long long)step);
        }
    }
    if (!strcmp(cli->cmd, "train")) {
        if (join_group(&tr, err, errn)) goto out;
        int lrc = train_loop(&tr, &opt, &step, total, &train_time, &trained, err, errn);
        if (lrc) { rc = lrc > 0 ? 0 : -1; goto out; }
    }
    rc = 0;
    if (!tr.lead) goto out;   /* rank 0 evaluates and writes the record */
    rc = -1;
    if (t->evaluate(t->ud, &m, err, errn)) goto out;
    double wall = now() - t0, sps = train_time > 0 ? (double)trained / train_time : 0;
    if (write_record(&tr, &m, sps, wall, step, err, errn)) goto out;
    summary(&tr, &m, step, sps, wall);
    rc = 0;
out:
    imb_dist_free(&tr.dist);
    return rc;
}
