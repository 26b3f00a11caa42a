/* Text classification glue: the run and prepare entry points of the textcls task kind. */
#ifndef IMB_TRAIN_TEXTCLS_H
#define IMB_TRAIN_TEXTCLS_H
#include <stdio.h>
#include "cli.h"
#include "protocol.h"
#include "registry.h"

/* Protocol values of text tasks when the protocol leaves them unset. */
#define IMB_TEXT_MAX_LEN 512
#define IMB_TEXT_VOCAB 8192


/* Trains (or with cli->cmd "eval" only evaluates) a text task (task->reader: an imb_text_reader)
 * under protocol p: tokenizer and shards from imb_prepare_text, batches padded to their longest
 * text (at most data.max_len), accuracy and mean cross-entropy on the validation split. */
int imb_run_textcls(const imb_cli *cli, const imb_task_def *task, imb_protocol *p, char *err, size_t errn);
/* harness prepare for text tasks: the BPE tokenizer (data.vocab_size, trained on the train split)
 * and the shards of the protocol's train and val splits; one line per file on log. */
int imb_prepare_text(const imb_task_def *task, const char *root, const imb_protocol *p, FILE *log, char *err,
                     size_t errn);
#endif
