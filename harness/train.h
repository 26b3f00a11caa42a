/* Image classification glue: the run entry point of the imagecls task kind. */
#ifndef IMB_TRAIN_H
#define IMB_TRAIN_H
#include "cli.h"
#include "protocol.h"
#include "registry.h"

/* Trains (or with cli->cmd "eval" only evaluates) task under protocol p with the backbone
 * spec cli->backbone (+ cli->backbone_kv); writes checkpoints and appends the run record.
 * Returns 0, or -1 with err set. */
int imb_run_imagecls(const imb_cli *cli, const imb_task_def *task, imb_protocol *p, char *err, size_t errn);
#endif
