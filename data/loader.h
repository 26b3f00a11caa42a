/* Batch loader over an open shard: seeded per-epoch shuffle, transforms in background threads, exact resume. */
#ifndef IMB_LOADER_H
#define IMB_LOADER_H
#include <stddef.h>
#include <stdint.h>
#include "shard.h"
#include "transform.h"

/* Batches prefetched ahead of the consumer. */
#define IMB_LOADER_RING 2

typedef struct imb_loader imb_loader;

/* Starts nthreads (>= 1) worker threads that fill a ring of IMB_LOADER_RING batches in the
 * background, every worker transforming a slice of a batch. Epoch e visits the samples in
 * the order of a Fisher-Yates permutation drawn from (seed, e) (identity when shuffle = 0);
 * batch k of epoch e holds positions [k*batch, (k+1)*batch) of that order; the last,
 * shorter batch is dropped when drop_last. Sample i in epoch e is transformed with
 * imb_transform_apply(t, ..., seed, e, i, ...), so the output depends only on (seed, epoch,
 * batch index) and is bit-identical for any nthreads. The shard must stay open until
 * imb_loader_free. Returns NULL with a message in err on bad arguments (including
 * drop_last with fewer samples than one batch) or when threads can't start. */
imb_loader *imb_loader_new(const imb_shard *shard, const imb_transform_opts *t, int batch, int shuffle,
                           int drop_last, uint64_t seed, int nthreads, char *err, size_t errn);

/* The same for one rank of a data-parallel group: global batch k of epoch e holds positions
 * [k*batch*world, (k+1)*batch*world) of the epoch's order, and this rank loads its slice
 * [(k*world + rank)*batch, +batch): the ranks together see exactly what one process with
 * batch * world sees. world > 1 needs drop_last. imb_loader_new is rank 0 of 1. */
imb_loader *imb_loader_new_rank(const imb_shard *shard, const imb_transform_opts *t, int batch, int shuffle,
                                int drop_last, uint64_t seed, int nthreads, int rank, int world, char *err,
                                size_t errn);

/* Copies the next batch into images [batch, C, S, S] and labels [batch] (only the first
 * *count rows are written) and returns 0. At the end of an epoch returns 1 with *count = 0
 * and writes nothing; the following call starts the next epoch. Returns -1 when a sample
 * failed to transform (imb_loader_error says why; the position does not move). */
int imb_loader_next(imb_loader *l, float *images, int32_t *labels, int *count);

/* Repositions so that the next imb_loader_next returns batch `batch_index` of `epoch`
 * (batch_index == imb_loader_batches(l) means "at the end of epoch": next returns 1).
 * Prefetched work is dropped. Returns 0, or -1 on an out-of-range position. */
int imb_loader_seek(imb_loader *l, int64_t epoch, int64_t batch_index);

/* Position of the batch the next imb_loader_next returns: save it in a checkpoint and seek
 * to it on resume. */
void imb_loader_position(const imb_loader *l, int64_t *epoch, int64_t *batch_index);
int64_t imb_loader_epoch(const imb_loader *l);
int64_t imb_loader_batch_index(const imb_loader *l);
/* Batches per epoch. */
int64_t imb_loader_batches(const imb_loader *l);
const char *imb_loader_error(const imb_loader *l);
/* Stops and joins the workers and frees everything (not the shard). NULL is fine. */
void imb_loader_free(imb_loader *l);
/* The calls above are for one consumer thread; don't call them concurrently on one loader. */
#endif
