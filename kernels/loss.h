/* Classification loss: softmax cross-entropy with label smoothing and ignored labels. */
#ifndef IMB_LOSS_H
#define IMB_LOSS_H
#include "ctx.h"

/* logits [N, C] f32, labels [N] i32 (a label < 0 is ignored) -> scalar mean over kept rows of
 * (1 - smoothing) * -log p[label] + smoothing * mean_c(-log p[c])   (PyTorch's definition) */
imb_tensor *imb_cross_entropy(imb_ctx *ctx, imb_tensor *logits, imb_tensor *labels, float smoothing);

/* Raw kernels. Forward writes per-row losses (0 for ignored rows, NaN for a label >= C, which
 * the op's data check reports) and the softmax into prob [N, C]; mean counts the kept rows
 * (labels in [0, C)), writes scale = 1 / kept (0 without any) and loss[0] = the row losses'
 * sum (in double) * scale; backward adds dloss[0] * scale[0] * (prob - target) into dlogits
 * for the kept rows. dloss and scale are read by the kernels on their device, so nothing
 * goes to the host (the step can be a CUDA graph). */
void imb_xent_fwd_cpu(float *rowloss, float *prob, const float *logits, const int32_t *labels, int64_t N, int64_t C,
                      float smoothing);
void imb_xent_mean_cpu(float *loss, float *scale, const float *rowloss, const int32_t *labels, int64_t N, int64_t C);
void imb_xent_bwd_cpu(float *dlogits, const float *prob, const int32_t *labels, int64_t N, int64_t C,
                      float smoothing, const float *dloss, const float *scale);
/* out[0] = sum(x[0..n)) * scale, in double */
void imb_sum_cpu(float *out, const float *x, int64_t n, float scale);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/loss.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_xent_fwd_cuda(float *rowloss, float *prob, const float *logits, const int32_t *labels, int64_t N, int64_t C,
                       float smoothing);
void imb_xent_mean_cuda(float *loss, float *scale, const float *rowloss, const int32_t *labels, int64_t N, int64_t C);
void imb_xent_bwd_cuda(float *dlogits, const float *prob, const int32_t *labels, int64_t N, int64_t C,
                       float smoothing, const float *dloss, const float *scale);
void imb_sum_cuda(float *out, const float *x, int64_t n, float scale);
#endif
#endif
