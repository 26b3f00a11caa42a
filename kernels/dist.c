/* NCCL collectives on the parameter buffers (CUDA builds with NCCL), no-ops for one CPU rank. */
#include "dist.h"
#include <stdio.h>
#include <string.h>
#ifdef IMB_HAVE_CUDA
#include <cuda_runtime.h>
#include "cuda/backend.h"
#endif
#ifdef IMB_HAVE_NCCL
#include <nccl.h>
#endif

#define MEAN_MAX 256

int imb_dist_select_device(int local_rank, char *err, size_t errn) {
#ifdef IMB_HAVE_CUDA
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        snprintf(err, errn, "no CUDA device for local rank %d (%s)", local_rank,
                 e != cudaSuccess ? cudaGetErrorString(e) : "none visible");
        return -1;
    }
    if ((e = cudaSetDevice(local_rank % n)) != cudaSuccess) {
        snprintf(err, errn, "cudaSetDevice(%d): %s", local_rank % n, cudaGetErrorString(e));
        return -1;
    }
    return 0;
#else
    snprintf(err, errn, "local rank %d: this build has no CUDA backend", local_rank);
    return -1;
#endif
}

int imb_dist_id(unsigned char id[IMB_DIST_ID_BYTES], char *err, size_t errn) {
    memset(id, 0, IMB_DIST_ID_BYTES);
#ifdef IMB_HAVE_NCCL
    ncclUniqueId u;
    ncclResult_t r = ncclGetUniqueId(&u);
    if (r != ncclSuccess) { snprintf(err, errn, "ncclGetUniqueId: %s", ncclGetErrorString(r)); return -1; }
    memcpy(id, &u, sizeof u < IMB_DIST_ID_BYTES ? sizeof u : IMB_DIST_ID_BYTES);
#else
    (void)err; (void)errn;
#endif
    return 0;
}

int imb_dist_init(imb_dist *d, const imb_ctx *ctx, int rank, int world, const unsigned char id[IMB_DIST_ID_BYTES],
                  char *err, size_t errn) {
    memset(d, 0, sizeof *d);
    d->rank = rank;
    d->world = world;
    if (ctx->device == IMB_CPU) {
        if (world == 1) return 0;
        snprintf(err, errn, "data parallel over %d ranks needs --device cuda (NCCL); CPU runs are one process", world);
        return -1;
    }
#ifdef IMB_HAVE_NCCL
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    ncclComm_t comm;
    ncclResult_t r = ncclCommInitRank(&comm, world, u, rank);
    if (r != ncclSuccess) {
        snprintf(err, errn, "rank %d of %d: ncclCommInitRank: %s", rank, world, ncclGetErrorString(r));
        return -1;
    }
    d->comm = comm;
    cudaError_t e = cudaMalloc((void **)&d->dev_buf, MEAN_MAX * sizeof(float));
    if (e != cudaSuccess) {
        snprintf(err, errn, "rank %d: cudaMalloc: %s", rank, cudaGetErrorString(e));
        imb_dist_free(d);
        return -1;
    }
    return 0;
#else
    (void)id;
    snprintf(err, errn, "this build has no NCCL: multi-GPU training is off (configure found no NCCL)");
    return -1;
#endif
}

#ifdef IMB_HAVE_NCCL
static int nccl_fail(imb_ctx *ctx, const char *what, ncclResult_t r) {
    return imb_fail(ctx, "%s: %s", what, ncclGetErrorString(r));
}
#endif

int imb_dist_allreduce_grads(imb_ctx *ctx, const imb_dist *d) {
    if (!imb_ok(ctx)) return -1;
    if (!d->comm) return 0;
#ifdef IMB_HAVE_NCCL
    /* one buffer, one call: NCCL splits it into pipelined chunks itself */
    ncclResult_t r = ncclAllReduce(ctx->params.grad, ctx->params.grad, ctx->params.total, ncclFloat, ncclAvg,
                                   (ncclComm_t)d->comm, (cudaStream_t)imb_cuda_stream_handle());
    if (r != ncclSuccess) return nccl_fail(ctx, "gradient all-reduce", r);
#endif
    return 0;
}

int imb_dist_broadcast_params(imb_ctx *ctx, const imb_dist *d) {
    if (!imb_ok(ctx)) return -1;
    if (!d->comm) return 0;
#ifdef IMB_HAVE_NCCL
    ncclResult_t r = ncclBroadcast(ctx->params.data, ctx->params.data, ctx->params.total, ncclFloat, 0,
                                   (ncclComm_t)d->comm, (cudaStream_t)imb_cuda_stream_handle());
    if (r != ncclSuccess) return nccl_fail(ctx, "parameter broadcast", r);
#endif
    return 0;
}

int imb_dist_mean(imb_ctx *ctx, const imb_dist *d, float *vals, int n) {
    if (!imb_ok(ctx)) return -1;
    if (!d->comm) return 0;
    if (n < 1 || n > MEAN_MAX) return imb_fail(ctx, "dist mean: %d values (1..%d)", n, MEAN_MAX);
#ifdef IMB_HAVE_NCCL
    cudaStream_t s = (cudaStream_t)imb_cuda_stream_handle();
    size_t bytes = (size_t)n * sizeof(float);
    if (cudaMemcpyAsync(d->dev_buf, vals, bytes, cudaMemcpyHostToDevice, s) != cudaSuccess)
        return imb_fail(ctx, "dist mean: copy to device failed");
    ncclResult_t r = ncclAllReduce(d->dev_buf, d->dev_buf, (size_t)n, ncclFloat, ncclAvg, (ncclComm_t)d->comm, s);
    if (r != ncclSuccess) return nccl_fail(ctx, "dist mean", r);
    if (cudaMemcpyAsync(vals, d->dev_buf, bytes, cudaMemcpyDeviceToHost, s) != cudaSuccess ||
        cudaStreamSynchronize(s) != cudaSuccess)
        return imb_fail(ctx, "dist mean: copy to host failed");
#endif
    return 0;
}

void imb_dist_free(imb_dist *d) {
#ifdef IMB_HAVE_NCCL
    if (d->comm) ncclCommDestroy((ncclComm_t)d->comm);
    if (d->dev_buf) cudaFree(d->dev_buf);
#endif
    memset(d, 0, sizeof *d);
}
