// CUDA GEMM through cuBLAS (row-major operands by the transpose identity) and the bias kernels.
#include "backend.cuh"
#include <limits.h>
extern "C" {
#include "../elementwise.h"
#include "../matmul.h"
}

// Operand and compute types of a GEMM. Only fp32 exists today; bf16 operands (CUDA_R_16BF)
// and TF32 compute (CUBLAS_COMPUTE_32F_FAST_TF32) become other values of this struct once a
// context carries a precision flag. CUBLAS_COMPUTE_32F with the handle's default math mode
// is plain fp32 (no TF32, no emulation), which CPU parity at 1e-5 needs.
struct imb_gemm_types {
    cudaDataType_t ab, c;
    cublasComputeType_t compute;
};
static const imb_gemm_types GEMM_F32 = { CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F };

// cuBLAS is column-major; a row-major matrix read column-major is its transpose. So the
// row-major C [M,N] = op(A) op(B) is computed as the column-major Cᵀ [N,M] = op(B)ᵀ op(A)ᵀ:
// B goes first, each operand keeps its own transpose flag and row-major leading dimension.
static void gemm(const imb_gemm_types &t, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                 const float *A, const float *B, float beta, float *C, int64_t batch, int64_t sa, int64_t sb,
                 int64_t sc) {
    cublasHandle_t h = imb_cuda_blas();
    if (!h) return;
    // gridDim.z bounds the batches one call may take on some cuBLAS kernels
    const int64_t chunk = 65535;
    for (int64_t b0 = 0; b0 < batch; b0 += chunk) {
        int nb = (int)(batch - b0 < chunk ? batch - b0 : chunk);
        IMB_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
            h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha,
            B + b0 * sb, t.ab, tb ? (int)K : (int)N, (long long)sb, A + b0 * sa, t.ab, ta ? (int)M : (int)K,
            (long long)sa, &beta, C + b0 * sc, t.c, (int)N, (long long)sc, nb, t.compute, CUBLAS_GEMM_DEFAULT));
    }
}

extern "C" void imb_gemm_cuda(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                              const float *B, float beta, float *C, int64_t batch, int64_t sa, int64_t sb,
                              int64_t sc) {
    if (M <= 0 || N <= 0 || K <= 0 || batch <= 0) return;
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX) {
        imb_cuda_record("imb_gemm_cuda: M=%lld N=%lld K=%lld exceed cuBLAS's 32-bit sizes", (long long)M,
                        (long long)N, (long long)K);
        return;
    }
    // Every batch writing the same C (sc == 0) must go in order, as the CPU loop does;
    // a batched call would run them concurrently.
    if (sc == 0 && batch > 1) {
        for (int64_t b = 0; b < batch; b++) gemm(GEMM_F32, ta, tb, M, N, K, alpha, A + b * sa, B + b * sb, beta, C, 1, 0, 0, 0);
        return;
    }
    gemm(GEMM_F32, ta, tb, M, N, K, alpha, A, B, beta, C, batch, sa, sb, sc);
}

__global__ static void bias_add_kernel(float *C, const float *bias, int64_t n, int64_t N) {
    IMB_FOR(i, n) C[i] += bias[imb_mod(i, N)];
}

extern "C" void imb_bias_add_cuda(float *C, const float *bias, int64_t rows, int64_t N) {
    int64_t n = rows * N;
    if (n <= 0) return;
    IMB_LAUNCH(bias_add_kernel, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, C, bias, n, N);
}

extern "C" void imb_bias_grad_cuda(float *dbias, const float *dC, int64_t rows, int64_t N) {
    imb_colsum_cuda(dbias, dC, NULL, rows, N);
}
