/* harness prepare: decode a task's split once into a packed shard under <root>/.imbench/,
 * reusing it while the source files are unchanged (stale or corrupt caches are rebuilt). */
#ifndef IMB_PREPARE_H
#define IMB_PREPARE_H
#include <stdio.h>
#include "registry.h"
#include "shard.h"

/* Opens (building first when missing, stale or corrupt) the shard of one split; images
 * whose shorter side exceeds store_size are shrunk to it (0 keeps sizes). log may be NULL. */
int imb_prepare_split(const imb_task_def *task, const char *root, const char *split, int store_size, imb_shard *out,
                      FILE *log, char *err, size_t errn);
/* harness prepare for image tasks: the shards of the protocol's train and val splits
 * (data.train_split / data.val_split, default the task's), one line per split on log. */
int imb_prepare_images(const imb_task_def *task, const char *root, const imb_protocol *p, FILE *log, char *err,
                       size_t errn);
#endif
