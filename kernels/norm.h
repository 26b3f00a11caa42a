/* Normalisation over the last dim: LayerNorm and RMSNorm (statistics in fp32). */
#ifndef IMB_NORM_H
#define IMB_NORM_H
#include "ctx.h"

/* x [..., C]; w, b [C] (either may be NULL: no affine scale / shift) -> [..., C] */
imb_tensor *imb_layernorm(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *b, float eps);
/* x [..., C]; w [C] or NULL -> x / sqrt(mean(x^2) + eps) * w */
imb_tensor *imb_rmsnorm(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, float eps);

/* Raw kernels (rows = numel / C). Forward saves per-row mean and rstd [rows] for the
 * backward (rmsnorm: rstd only). Backward adds into dx, dw, db (each may be NULL). */
void imb_layernorm_fwd_cpu(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                           int64_t rows, int64_t C, float eps);
void imb_layernorm_bwd_cpu(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                           const float *mean, const float *rstd, int64_t rows, int64_t C);
void imb_rmsnorm_fwd_cpu(float *out, float *rstd, const float *x, const float *w, int64_t rows, int64_t C, float eps);
void imb_rmsnorm_bwd_cpu(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                         int64_t rows, int64_t C);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/norm.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_layernorm_fwd_cuda(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                            int64_t rows, int64_t C, float eps);
void imb_layernorm_bwd_cuda(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                            const float *mean, const float *rstd, int64_t rows, int64_t C);
void imb_rmsnorm_fwd_cuda(float *out, float *rstd, const float *x, const float *w, int64_t rows, int64_t C, float eps);
void imb_rmsnorm_bwd_cuda(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                          int64_t rows, int64_t C);
#endif
#endif
