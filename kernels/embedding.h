/* Lookups and pooling: embedding table lookup, masked mean pooling over tokens. */
#ifndef IMB_EMBEDDING_H
#define IMB_EMBEDDING_H
#include "ctx.h"

/* table [V, C], ids i32 [...] (every id in [0, V), checked) -> [..., C] */
imb_tensor *imb_embedding(imb_ctx *ctx, imb_tensor *table, imb_tensor *ids);
/* x [B, L, C], mask NULL or f32 [B, L] (1 = token, 0 = padding) -> [B, C], the mean over
 * unmasked tokens (zeros for a row with none) */
imb_tensor *imb_mean_pool(imb_ctx *ctx, imb_tensor *x, imb_tensor *mask);

/* Raw kernels. out, dout [N, C]; table, dtable [V, C]; ids [N], checked by the op to lie in
 * [0, V) (on CUDA the check reports later: the CUDA kernels write zeros for a bad id and
 * skip it in the backward). The backward adds into dtable without atomics: each table element sums its
 * contributions in index order, so repeated ids give the same bits on every run. */
void imb_embedding_fwd_cpu(float *out, const float *table, const int32_t *ids, int64_t N, int64_t V, int64_t C);
void imb_embedding_bwd_cpu(float *dtable, const float *dout, const int32_t *ids, int64_t N, int64_t V, int64_t C);
/* x, dx [B, L, C]; out, dout [B, C]; mask NULL or [B, L], used as weights: out = sum_l m x /
 * sum_l m (zeros where the weights sum to 0). Backward adds into dx. */
void imb_mean_pool_fwd_cpu(float *out, const float *x, const float *mask, int64_t B, int64_t L, int64_t C);
void imb_mean_pool_bwd_cpu(float *dx, const float *dout, const float *mask, int64_t B, int64_t L, int64_t C);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/embedding.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_embedding_fwd_cuda(float *out, const float *table, const int32_t *ids, int64_t N, int64_t V, int64_t C);
void imb_embedding_bwd_cuda(float *dtable, const float *dout, const int32_t *ids, int64_t N, int64_t V, int64_t C);
void imb_mean_pool_fwd_cuda(float *out, const float *x, const float *mask, int64_t B, int64_t L, int64_t C);
void imb_mean_pool_bwd_cuda(float *dx, const float *dout, const float *mask, int64_t B, int64_t L, int64_t C);
#endif
#endif
