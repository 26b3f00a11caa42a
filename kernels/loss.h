/* Classification loss: softmax cross-entropy with label smoothing and ignored labels. */
#ifndef IMB_LOSS_H
#define IMB_LOSS_H
#include "ctx.h"

/* logits [N, C] f32, labels [N] i32 (a label < 0 is ignored) -> scalar mean over kept rows of
 * (1 - smoothing) * -log p[label] + smoothing * mean_c(-log p[c])   (PyTorch's definition) */
imb_tensor *imb_cross_entropy(imb_ctx *ctx, imb_tensor *logits, imb_tensor *labels, float smoothing);

/* Raw kernels. Forward writes per-row losses (0 for ignored rows) and the softmax into prob
 * [N, C]; backward adds dloss * (prob - target) / kept into dlogits. */
void imb_xent_fwd_cpu(float *rowloss, float *prob, const float *logits, const int32_t *labels, int64_t N, int64_t C,
                      float smoothing);
void imb_xent_bwd_cpu(float *dlogits, const float *prob, const int32_t *labels, int64_t N, int64_t C,
                      float smoothing, float scale);
/* out[0] = sum(x[0..n)) * scale, in double */
void imb_sum_cpu(float *out, const float *x, int64_t n, float scale);
#endif
