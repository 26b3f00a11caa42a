/* The task table: every task name the CLI accepts, its kind, reader and splits. */
#ifndef IMB_REGISTRY_H
#define IMB_REGISTRY_H
#include <stdio.h>
#include "cli.h"
#include "dataset.h"
#include "protocol.h"

/* One task: its name, kind and data, and the kind's entry points. */
typedef struct imb_task_def {
    const char *name, *kind, *about;
    /* image kinds: the reader of one split as a sample list */
    int (*read)(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
    const char *train_split, *val_split;
    const char *synth_layout;   /* data/synth layout written by --synth */
    /* trains or evaluates (cli->cmd) under protocol p: the kind's glue around imb_trainer_run */
    int (*run)(const imb_cli *cli, const struct imb_task_def *task, imb_protocol *p, char *err, size_t errn);
    /* harness prepare: builds (or checks) the caches of the protocol's splits under root */
    int (*prepare)(const struct imb_task_def *task, const char *root, const imb_protocol *p, FILE *log, char *err,
                   size_t errn);
    const void *reader;         /* kind-specific reader data (text, speech); NULL for images */
} imb_task_def;

const imb_task_def *imb_task_find(const char *name);
/* "unknown task 'x'; valid: ..." into err */
void imb_task_unknown(const char *name, char *err, size_t errn);
void imb_task_list(FILE *f);
#endif
