/* CPU GEMM through OpenBLAS cblas, plus the bias helpers. */
#include "../matmul.h"
#include "../elementwise.h"
#include <cblas.h>

void imb_gemm_cpu(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, const float *B,
                  float beta, float *C, int64_t batch, int64_t sa, int64_t sb, int64_t sc) {
    for (int64_t b = 0; b < batch; b++)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                    (int)K, alpha, A + b * sa, ta ? (int)M : (int)K, B + b * sb, tb ? (int)K : (int)N, beta,
                    C + b * sc, (int)N);
}

void imb_bias_grad_cpu(float *dbias, const float *dC, int64_t rows, int64_t N) {
    imb_colsum_cpu(dbias, dC, NULL, rows, N);
}

void imb_bias_add_cpu(float *C, const float *bias, int64_t rows, int64_t N) {
#pragma omp parallel for
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < N; j++) C[i * N + j] += bias[j];
}

void imb_gemm_bias_cpu(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                       const float *bias) {
    imb_gemm_cpu(ta, tb, M, N, K, 1.0f, A, B, 0.0f, C, 1, 0, 0, 0);
    imb_bias_add_cpu(C, bias, M, N);
}

void imb_gemm_bgrad_cpu(int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                        float *dbias) {
    imb_gemm_cpu(1, tb, M, N, K, 1.0f, A, B, 1.0f, C, 1, 0, 0, 0);
    imb_bias_grad_cpu(dbias, A, K, M);
}
