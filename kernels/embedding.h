/* Lookups and pooling: embedding table lookup, masked mean pooling over tokens. */
#ifndef IMB_EMBEDDING_H
#define IMB_EMBEDDING_H
#include "ctx.h"

/* table [V, C], ids i32 [...] (every id in [0, V), checked) -> [..., C] */
imb_tensor *imb_embedding(imb_ctx *ctx, imb_tensor *table, imb_tensor *ids);
/* x [B, L, C], mask NULL or f32 [B, L] (1 = token, 0 = padding) -> [B, C], the mean over
 * unmasked tokens (zeros for a row with none) */
imb_tensor *imb_mean_pool(imb_ctx *ctx, imb_tensor *x, imb_tensor *mask);
#endif
