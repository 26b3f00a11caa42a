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
#endif
