/* CTC speech recognition glue: the run and prepare entry points of the ctc task kind. */
#ifndef IMB_TRAIN_CTC_H
#define IMB_TRAIN_CTC_H
#include <stdio.h>
#include "cli.h"
#include "protocol.h"
#include "registry.h"

/* Trains (or with cli->cmd "eval" only evaluates) a CTC task under protocol p: the training
 * split (data.train_split, subsets joined by '+') with its global CMVN, every eval set of
 * data.val_split (comma-separated; those present under the data root), WER/CER per set as
 * metrics wer_<set>, cer_<set> (percent; the first set's WER is the headline) and val_loss.
 * Returns 0, or -1 with err set. */
int imb_run_ctc(const imb_cli *cli, const imb_task_def *task, imb_protocol *p, char *err, size_t errn);
/* harness prepare: packs the feature shards of the training split and of every eval set present. */
int imb_prepare_ctc(const imb_task_def *task, const char *root, const imb_protocol *p, FILE *log, char *err,
                    size_t errn);
#endif
