/* Softmax over the last dim with an optional additive mask. */
#ifndef IMB_SOFTMAX_H
#define IMB_SOFTMAX_H
#include "ctx.h"

/* x [..., L]; mask NULL or additive, with x's shape or a trailing part of it (broadcast
 * over leading dims, like imb_add); -INFINITY entries exclude a position; a row whose
 * every entry is excluded yields zeros. The mask gets no gradient. -> [..., L] */
imb_tensor *imb_softmax(imb_ctx *ctx, imb_tensor *x, imb_tensor *mask);

void imb_softmax_fwd_cpu(float *out, const float *x, const float *mask, int64_t rows, int64_t L, int64_t mask_rows);
/* dx += y ⊙ (dy - sum(dy ⊙ y)) per row */
void imb_softmax_bwd_cpu(float *dx, const float *y, const float *dy, int64_t rows, int64_t L);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/softmax.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_softmax_fwd_cuda(float *out, const float *x, const float *mask, int64_t rows, int64_t L, int64_t mask_rows);
void imb_softmax_bwd_cuda(float *dx, const float *y, const float *dy, int64_t rows, int64_t L);
#endif
#endif
