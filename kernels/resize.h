/* Bilinear resampling of token grids (position-embedding interpolation when the grid changes). */
#ifndef IMB_RESIZE_H
#define IMB_RESIZE_H
#include "ctx.h"

/* x [B, H*W, C] on an H x W grid -> [B, H2*W2, C], bilinear with align_corners=False
 * (PyTorch F.interpolate semantics: source = (dst + 0.5) * in/out - 0.5, clamped at 0) */
imb_tensor *imb_resize_tokens(imb_ctx *ctx, imb_tensor *x, int H, int W, int H2, int W2);

void imb_resize_tokens_fwd_cpu(float *out, const float *x, int64_t B, int H, int W, int H2, int W2, int64_t C);
void imb_resize_tokens_bwd_cpu(float *dx, const float *dout, int64_t B, int H, int W, int H2, int W2, int64_t C);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/resize.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_resize_tokens_fwd_cuda(float *out, const float *x, int64_t B, int H, int W, int H2, int W2, int64_t C);
void imb_resize_tokens_bwd_cuda(float *dx, const float *dout, int64_t B, int H, int W, int H2, int W2, int64_t C);
#endif
#endif
