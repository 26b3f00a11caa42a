/* Matrix multiply (+bias, transposes, batched) and the linear layer; GEMM via cblas/cuBLASLt. */
#ifndef IMB_MATMUL_H
#define IMB_MATMUL_H
#include "ctx.h"
#include "activation.h"

/* C = op(a) op(b) (+ bias).
 *   a: [..., M, K] (ta=0) or [..., K, M] (ta=1)
 *   b: [K, N] (tb=0) or [N, K] (tb=1), shared by every leading index of a;
 *      or [Bt, K, N] / [Bt, N, K] with a: [Bt, M, K] for a batched product
 *   bias: [N] or NULL
 * -> [..., M, N] */
imb_tensor *imb_matmul(imb_ctx *ctx, imb_tensor *a, imb_tensor *b, imb_tensor *bias, int ta, int tb);
/* y = x wᵀ + bias with PyTorch's layout: x [..., in], w [out, in], bias [out] or NULL -> [..., out]
 * (on CUDA the bias is added by the GEMM's epilogue and its gradient summed by the weight
 * gradient's GEMM, where cuBLASLt has an algorithm for it; otherwise by our kernels) */
imb_tensor *imb_linear(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *bias);
/* y = act(x wᵀ + bias), one op: the pre-activation stays internal (no gradient buffer), the
 * bias rides the GEMM's epilogue, the activation is ours: cuBLASLt's GELU epilogue is the tanh
 * approximation, and timm's GELU is the exact erf one (as imb_gelu). Same results as
 * imb_linear followed by imb_activation, bit for bit on the CPU. */
imb_tensor *imb_linear_act(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *bias, imb_act_kind act);
imb_tensor *imb_linear_gelu(imb_ctx *ctx, imb_tensor *x, imb_tensor *w, imb_tensor *bias);

/* Raw kernels. Row-major, contiguous; batch matrices at strides sa, sb, sc (elements).
 * C[b] = alpha op(A[b]) op(B[b]) + beta C[b];  A [M,K] or [K,M]; B [K,N] or [N,K]; C [M,N]. */
void imb_gemm_cpu(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, const float *B,
                  float beta, float *C, int64_t batch, int64_t sa, int64_t sb, int64_t sc);
/* dbias[N] += sum over rows of dC[rows, N] */
void imb_bias_grad_cpu(float *dbias, const float *dC, int64_t rows, int64_t N);
/* C[rows, N] += bias[N] */
void imb_bias_add_cpu(float *C, const float *bias, int64_t rows, int64_t N);
/* One GEMM with a bias: C [M,N] = op(A) op(B) + bias[N] (the CUDA twin fuses the bias into the
 * GEMM's epilogue). */
void imb_gemm_bias_cpu(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                       const float *bias);
/* A weight gradient with its bias gradient: C [M,N] += Aᵀ op(B) with A [K, M], and dbias[M] +=
 * the column sums of A (the CUDA twin sums them in the GEMM's BGRADB epilogue). */
void imb_gemm_bgrad_cpu(int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                        float *dbias);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/matmul.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_gemm_cuda(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, const float *B,
                   float beta, float *C, int64_t batch, int64_t sa, int64_t sb, int64_t sc);
void imb_bias_grad_cuda(float *dbias, const float *dC, int64_t rows, int64_t N);
void imb_bias_add_cuda(float *C, const float *bias, int64_t rows, int64_t N);
void imb_gemm_bias_cuda(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                        const float *bias);
void imb_gemm_bgrad_cuda(int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                         float *dbias);
#endif
#endif
