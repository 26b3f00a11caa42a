/* The task table: every task name the CLI accepts, its kind, reader and splits. */
#ifndef IMB_REGISTRY_H
#define IMB_REGISTRY_H
#include <stdio.h>
#include "dataset.h"

typedef struct imb_task_def {
    const char *name, *kind, *about;
    int (*read)(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
    const char *train_split, *val_split;
    const char *synth_layout;   /* data/synth layout written by --synth */
} imb_task_def;

const imb_task_def *imb_task_find(const char *name);
/* "unknown task 'x'; valid: ..." into err */
void imb_task_unknown(const char *name, char *err, size_t errn);
void imb_task_list(FILE *f);
#endif
