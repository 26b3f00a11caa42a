/* Convolutions: patch embedding / strided conv to tokens (im2col + GEMM), depthwise
 * 1-D causal conv and depthwise 2-D conv with same padding, both on token layouts. */
#ifndef IMB_CONV_H
#define IMB_CONV_H
#include "ctx.h"

/* x [B, Cin, H, W] (NCHW images), w [Cout, Cin, kh, kw] (PyTorch Conv2d layout), b [Cout] or
 * NULL; stride, pad -> tokens [B, Ho*Wo, Cout] (row-major over the output grid), with
 * Ho = (H + 2 pad - kh) / stride + 1 (likewise Wo). Patch embedding: kernel = stride = P. */
imb_tensor *imb_patch_embed(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *b, int stride, int pad);
/* x [B, L, C], w [C, 1, K] (PyTorch depthwise Conv1d layout), b [C] or NULL; causal: output
 * t sees inputs t-K+1..t (zero left padding) -> [B, L, C] */
imb_tensor *imb_dwconv1d(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *b);
/* x [B, H*W, C] tokens of an H x W grid, w [C, 1, k, k] with odd k, b [C] or NULL; same
 * padding, stride 1 -> [B, H*W, C] */
imb_tensor *imb_dwconv2d(imb_ctx *ctx, imb_tensor *x, int H, int W, imb_tensor *w, imb_tensor *b);

/* Raw kernels. Backward kernels add into whichever of dx, dw, db is non-NULL. */
typedef struct imb_conv_geom {
    int64_t B, Cin, H, W, Cout, kh, kw, stride, pad, Ho, Wo;
} imb_conv_geom;
/* cols [B*Ho*Wo, Cin*kh*kw]: one row per output position, columns in PyTorch's weight order
 * (cin, ky, kx); taps in the padding are 0. col2im adds dcols back into dx [B, Cin, H, W]. */
void imb_im2col_cpu(const imb_conv_geom *g, float *cols, const float *x);
void imb_col2im_cpu(const imb_conv_geom *g, float *dx, const float *dcols);
/* Forward fills cols (kept for the backward) and out [B*Ho*Wo, Cout] = cols wᵀ + b (b may be
 * NULL). Backward: dcols is scratch [B*Ho*Wo, Cin*kh*kw], used only when dx is wanted. */
void imb_patch_embed_fwd_cpu(const imb_conv_geom *g, float *out, float *cols, const float *x, const float *w,
                             const float *b);
void imb_patch_embed_bwd_cpu(const imb_conv_geom *g, float *dx, float *dw, float *db, float *dcols,
                             const float *cols, const float *w, const float *dout);
/* x, out [B, L, C], w [C, K], b [C] or NULL; causal. */
void imb_dwconv1d_fwd_cpu(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t L,
                          int64_t C, int64_t K);
void imb_dwconv1d_bwd_cpu(float *dx, float *dw, float *db, const float *x, const float *w, const float *dout,
                          int64_t B, int64_t L, int64_t C, int64_t K);
/* x, out [B, H, W, C], w [C, k, k] with odd k, b [C] or NULL; zero "same" padding of k/2. */
void imb_dwconv2d_fwd_cpu(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t H,
                          int64_t W, int64_t C, int64_t k);
void imb_dwconv2d_bwd_cpu(float *dx, float *dw, float *db, const float *x, const float *w, const float *dout,
                          int64_t B, int64_t H, int64_t W, int64_t C, int64_t k);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/conv.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_im2col_cuda(const imb_conv_geom *g, float *cols, const float *x);
void imb_col2im_cuda(const imb_conv_geom *g, float *dx, const float *dcols);
void imb_patch_embed_fwd_cuda(const imb_conv_geom *g, float *out, float *cols, const float *x, const float *w,
                              const float *b);
void imb_patch_embed_bwd_cuda(const imb_conv_geom *g, float *dx, float *dw, float *db, float *dcols,
                              const float *cols, const float *w, const float *dout);
void imb_dwconv1d_fwd_cuda(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t L,
                           int64_t C, int64_t K);
void imb_dwconv1d_bwd_cuda(float *dx, float *dw, float *db, const float *x, const float *w, const float *dout,
                           int64_t B, int64_t L, int64_t C, int64_t K);
void imb_dwconv2d_fwd_cuda(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t H,
                           int64_t W, int64_t C, int64_t k);
void imb_dwconv2d_bwd_cuda(float *dx, float *dw, float *db, const float *x, const float *w, const float *dout,
                           int64_t B, int64_t H, int64_t W, int64_t C, int64_t k);
#endif
#endif
