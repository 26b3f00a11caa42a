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
#endif
