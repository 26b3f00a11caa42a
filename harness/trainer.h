/* The task-independent training loop: resume, AdamW with clipping and the protocol's schedule,
 * the per-step loss log, checkpoints, NaN stop, periodic evaluation, the run record and the
 * summary table. Each task kind supplies its batches, loss and evaluation (imb_task_run). */
#ifndef IMB_TRAINER_H
#define IMB_TRAINER_H
#include <stdint.h>
#include "backbone.h"
#include "cli.h"
#include "protocol.h"
#include "registry.h"

#define IMB_MAX_METRICS 16

struct imb_record;

/* Evaluation results: name/value pairs, the first one is the headline (shown in the progress
 * line and the summary table); all go into the run record's metrics. */
typedef struct imb_metrics {
    int n;
    char name[IMB_MAX_METRICS][24];
    double value[IMB_MAX_METRICS];
    double flops_per_sample;   /* forward FLOPs per evaluated sample (ctx->flops), 0 if unknown */
    int64_t samples;           /* evaluated samples */
} imb_metrics;

void imb_metrics_set(imb_metrics *m, const char *name, double value);

/* What a task kind hands the trainer. Every callback gets ud. */
typedef struct imb_task_run {
    void *ud;
    imb_ctx *ctx;                  /* every parameter declared and allocated */
    int64_t steps_per_epoch;       /* training batches per epoch */
    int batch;                     /* training batch size (for the progress line) */
    const char *data_root;         /* recorded */
    const char *mixer, *preset;    /* backbone mixer ("vit") and preset ("vit-nano", names the
                                    * default checkpoint), recorded */
    /* Loads the next training batch, starting the next epoch when one ends. Returns the
     * number of samples in it, or -1 with err set. */
    int (*next)(void *ud, char *err, size_t errn);
    /* Records the forward of the loaded batch on the tape (imb_step_begin already called with
     * training = 1) and returns the scalar loss to minimise, NULL on error (ctx says why).
     * terms (zeroed) may receive named, unweighted parts of the loss, logged per step. */
    imb_tensor *(*loss)(void *ud, imb_aux_terms *terms);
    /* One full pass over the validation split into m (zeroed by the caller). 0 or -1 + err. */
    int (*evaluate)(void *ud, imb_metrics *m, char *err, size_t errn);
    /* The training loader position: saved in checkpoints, restored on resume. */
    void (*position)(void *ud, int64_t *epoch, int64_t *batch);
    int (*seek)(void *ud, int64_t epoch, int64_t batch, char *err, size_t errn);
    /* Optional: adds task-specific fields to the run record (e.g. the decoder's beam width). */
    void (*record)(void *ud, struct imb_record *rec);
} imb_task_run;

/* The dataset root of a run: --data, or with --synth the task's mini dataset, written once
 * under <out>/synth/<task> by data/synth (layout task->synth_layout, sizes from the protocol). */
int imb_trainer_data_root(const imb_cli *cli, const imb_task_def *task, const imb_protocol *p, char *root,
                          size_t rootn, char *err, size_t errn);

/* The loader seed and thread count of a run: --seed or the protocol's, --threads or the
 * protocol's (0 = one per online core, at most 8). */
uint64_t imb_trainer_seed(const imb_cli *cli, const imb_protocol *p);
int imb_trainer_threads(const imb_cli *cli, const imb_protocol *p);

/* Trains t under protocol p (or, when cli->cmd is "eval", loads the checkpoint and only
 * evaluates), writes checkpoints, the loss log "<ckpt>.losses" (one line per step:
 * "<step> <loss>[ <term>=<value> ...]"), appends the run record and prints the summary.
 * Returns 0, or -1 with err set. The caller owns t and frees it afterwards. */
int imb_trainer_run(const imb_cli *cli, const imb_task_def *task, imb_protocol *p, imb_task_run *t, char *err,
                    size_t errn);
#endif
