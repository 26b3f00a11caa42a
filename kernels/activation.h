/* Pointwise activations: GELU (exact erf), SiLU, softplus (PyTorch threshold 20), exp. */
#ifndef IMB_ACTIVATION_H
#define IMB_ACTIVATION_H
#include "ctx.h"

typedef enum { IMB_ACT_GELU = 0, IMB_ACT_SILU = 1, IMB_ACT_SOFTPLUS = 2, IMB_ACT_EXP = 3 } imb_act_kind;

imb_tensor *imb_gelu(imb_ctx *ctx, imb_tensor *x);
imb_tensor *imb_silu(imb_ctx *ctx, imb_tensor *x);
imb_tensor *imb_softplus(imb_ctx *ctx, imb_tensor *x);
/* e^x (Mamba's A = -exp(A_log)) */
imb_tensor *imb_exp(imb_ctx *ctx, imb_tensor *x);
imb_tensor *imb_activation(imb_ctx *ctx, imb_tensor *x, imb_act_kind kind);

/* Raw kernels: out, x, dx, dout [n]; backward adds into dx. */
void imb_act_fwd_cpu(imb_act_kind kind, float *out, const float *x, int64_t n);
void imb_act_bwd_cpu(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n);
/* dx = 0 + dout * act'(x), written (not added): what imb_act_bwd leaves in a zeroed dx, bit
 * for bit (-0 included), without zeroing it first (a fused op's own gradient buffer). */
void imb_act_grad_cpu(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/activation.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_act_fwd_cuda(imb_act_kind kind, float *out, const float *x, int64_t n);
void imb_act_bwd_cuda(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n);
void imb_act_grad_cuda(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n);
#endif
#endif
