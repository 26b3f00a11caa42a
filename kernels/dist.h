/* Collectives for data-parallel training over NCCL: the gradient all-reduce, the initial
 * parameter broadcast and host-scalar averages. One process per GPU. */
#ifndef IMB_DIST_H
#define IMB_DIST_H
#include "ctx.h"

#define IMB_DIST_ID_BYTES 128   /* sizeof(ncclUniqueId) */

typedef struct imb_dist {
    int rank, world;
    void *comm;        /* ncclComm_t; NULL for a CPU run of one rank */
    float *dev_buf;    /* small device buffer for host-value averages */
} imb_dist;

/* Picks the GPU of a local rank (local_rank modulo the visible GPUs) for this process; call
 * before the first CUDA context. 0, or -1 with the reason in err (no GPU, or CUDA not built). */
int imb_dist_select_device(int local_rank, char *err, size_t errn);
/* Rank 0 creates the group's id (ncclGetUniqueId) to hand to the others. */
int imb_dist_id(unsigned char id[IMB_DIST_ID_BYTES], char *err, size_t errn);
/* Joins the group. A CUDA context always gets an NCCL communicator (one rank included, so
 * --nproc 1 runs the same code as a group); a CPU context can only be a group of one. */
int imb_dist_init(imb_dist *d, const imb_ctx *ctx, int rank, int world, const unsigned char id[IMB_DIST_ID_BYTES],
                  char *err, size_t errn);
/* Averages the gradient buffer over the ranks (in place, on ctx's stream). */
int imb_dist_allreduce_grads(imb_ctx *ctx, const imb_dist *d);
/* Copies rank 0's parameters to every rank. */
int imb_dist_broadcast_params(imb_ctx *ctx, const imb_dist *d);
/* Averages n (<= 256) host floats over the ranks, in place (synchronises). */
int imb_dist_mean(imb_ctx *ctx, const imb_dist *d, float *vals, int n);
void imb_dist_free(imb_dist *d);
#endif
