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
#endif
