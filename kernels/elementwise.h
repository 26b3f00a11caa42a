/* Elementwise ops: add, mul, scale, residual (x + gamma ⊙ y). */
#ifndef IMB_ELEMENTWISE_H
#define IMB_ELEMENTWISE_H
#include "ctx.h"

/* b has a's shape or a's trailing shape (broadcast over leading dims): a [..., S], b [S] */
imb_tensor *imb_add(imb_ctx *ctx, imb_tensor *a, imb_tensor *b);
imb_tensor *imb_mul(imb_ctx *ctx, imb_tensor *a, imb_tensor *b);
imb_tensor *imb_scale(imb_ctx *ctx, imb_tensor *a, float s);
/* x + gamma ⊙ y; x, y [..., C]; gamma [C] (layer scale) or NULL for x + y */
imb_tensor *imb_residual(imb_ctx *ctx, imb_tensor *x, imb_tensor *y, imb_tensor *gamma);

/* Raw kernels: a, out [n]; b [nb] with n % nb == 0, indexed i % nb. Backward adds. */
void imb_add_fwd_cpu(float *out, const float *a, const float *b, int64_t n, int64_t nb);
void imb_add_bwd_cpu(float *da, float *db, const float *dout, int64_t n, int64_t nb);
void imb_mul_fwd_cpu(float *out, const float *a, const float *b, int64_t n, int64_t nb);
void imb_mul_bwd_cpu(float *da, float *db, const float *a, const float *b, const float *dout, int64_t n, int64_t nb);
/* out = x + g[i % C] * y  (g NULL: 1) */
void imb_residual_fwd_cpu(float *out, const float *x, const float *y, const float *g, int64_t n, int64_t C);
void imb_residual_bwd_cpu(float *dx, float *dy, float *dg, const float *y, const float *g, const float *dout,
                          int64_t n, int64_t C);
/* db[j] += sum over rows i of x[i, j] * w[i, j] (w NULL: 1); x, w [rows, N] */
void imb_colsum_cpu(float *db, const float *x, const float *w, int64_t rows, int64_t N);
/* dst[i] = s * src[i] (acc=0) or dst[i] += s * src[i] (acc=1) */
void imb_scale_cpu(float *dst, const float *src, float s, int64_t n, int acc);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/elementwise.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_add_fwd_cuda(float *out, const float *a, const float *b, int64_t n, int64_t nb);
void imb_add_bwd_cuda(float *da, float *db, const float *dout, int64_t n, int64_t nb);
void imb_mul_fwd_cuda(float *out, const float *a, const float *b, int64_t n, int64_t nb);
void imb_mul_bwd_cuda(float *da, float *db, const float *a, const float *b, const float *dout, int64_t n, int64_t nb);
void imb_residual_fwd_cuda(float *out, const float *x, const float *y, const float *g, int64_t n, int64_t C);
void imb_residual_bwd_cuda(float *dx, float *dy, float *dg, const float *y, const float *g, const float *dout,
                           int64_t n, int64_t C);
void imb_colsum_cuda(float *db, const float *x, const float *w, int64_t rows, int64_t N);
void imb_scale_cuda(float *dst, const float *src, float s, int64_t n, int acc);
#endif
#endif
