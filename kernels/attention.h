/* Scaled-dot-product multi-head attention with an optional key-padding mask. */
#ifndef IMB_ATTENTION_H
#define IMB_ATTENTION_H
#include "ctx.h"

/* q [B, Lq, H*Dh], k, v [B, Lk, H*Dh] in token-major layout with heads interleaved as in
 * timm (channel = h*Dh + d); key_mask NULL or f32 [B, Lk] with 1 = attend, 0 = padding
 * (a query whose keys are all padding gets zeros); causal=1 masks keys after the query
 * position (needs Lq == Lk). scale <= 0 means 1/sqrt(Dh). -> [B, Lq, H*Dh] */
imb_tensor *imb_attention(imb_ctx *ctx, imb_tensor *q, imb_tensor *k, imb_tensor *v, int heads,
                          imb_tensor *key_mask, int causal, float scale);

/* Raw kernels. C = H*Dh; q, out, dq [B, Lq, C]; k, v, dk, dv [B, Lk, C]; key_mask NULL or
 * [B, Lk] (a key is kept where the mask is non-zero); scale already resolved (> 0).
 * P [B, H, Lq, Lk]: the attention probabilities, written by the CPU forward and read by
 * the CPU backward (excluded keys and fully masked query rows hold 0). Backward adds into
 * dq, dk, dv (each may be NULL). */
void imb_attention_fwd_cpu(float *out, float *P, const float *q, const float *k, const float *v,
                           const float *key_mask, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dh,
                           int causal, float scale);
void imb_attention_bwd_cpu(float *dq, float *dk, float *dv, const float *dout, const float *P, const float *q,
                           const float *k, const float *v, const float *key_mask, int64_t B, int64_t H, int64_t Lq,
                           int64_t Lk, int64_t Dh, int causal, float scale);

#ifdef IMB_HAVE_CUDA
/* CUDA kernels (kernels/cuda/attention.cu), flash-attention style. Their signatures differ from the CPU
 * pair because the CUDA forward never materialises P ([B, H, Lq, Lk] would not fit at long sequence
 * lengths and costs more memory traffic than the math): it saves one log-sum-exp per query row, and the
 * backward recomputes P tile by tile from q, k and lse. The backward also reads the forward's out (for
 * rowdot = rowsum(dout ⊙ out)) and takes a scratch buffer for that rowdot.
 *   stream: a cudaStream_t, NULL for the legacy default stream.
 *   lse [B, H, Lq]: natural log of sum_j exp(scale * q_i . k_j) over the kept keys, -inf for a query with
 *       no kept key (its out row is zeros); the forward may be given NULL (inference: not saved).
 *   work [B, H, Lq] floats of device scratch, overwritten.
 * Same sizes, masks and "adds into dq, dk, dv (each may be NULL)" as the CPU pair; Dh up to 128
 * (16, 32, 64, 128 are specialised, other Dh run zero-padded to the next). Deterministic: no atomics.
 * Return 0, or -1 with the reason in imb_attention_cuda_error() (a launch or configuration error; a
 * kernel's own failure shows up at the next synchronising call, as for any CUDA kernel). */
int imb_attention_fwd_cuda(void *stream, float *out, float *lse, const float *q, const float *k, const float *v,
                           const float *key_mask, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dh,
                           int causal, float scale);
int imb_attention_bwd_cuda(void *stream, float *dq, float *dk, float *dv, float *work, const float *dout,
                           const float *out, const float *lse, const float *q, const float *k, const float *v,
                           const float *key_mask, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dh,
                           int causal, float scale);
/* The message of this thread's last failed imb_attention_*_cuda call. */
const char *imb_attention_cuda_error(void);
#endif
#endif
