// CUDA GEMM through cuBLASLt (one cached plan per shape, layout, alignment, epilogue and math
// mode), with the bias epilogue for a linear layer's forward and the bias-gradient epilogue for
// its weight gradient; the legacy cuBLAS call where Lt offers no algorithm. fp32 storage; the
// math is fp32 or TF32 tensor cores (imb_cuda_tf32, set by the dispatch from the context).
#include "backend.cuh"
#include <limits.h>
#include <mutex>
#include <string.h>
#include <unordered_map>
extern "C" {
#include "../elementwise.h"
#include "../matmul.h"
}

enum { EPI_NONE = 0, EPI_BIAS = 1, EPI_BGRADB = 2 };

// Everything a plan depends on. Compared and hashed as bytes: always memset before filling.
struct lt_key {
    int32_t ta, tb, tf32, epi;
    int64_t M, N, K, batch, sa, sb, sc;
    int32_t align_a, align_b, align_c, pad;
    bool operator==(const lt_key &o) const { return memcmp(this, &o, sizeof *this) == 0; }
};
struct lt_key_hash {
    size_t operator()(const lt_key &k) const {
        const unsigned char *p = (const unsigned char *)&k;
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < sizeof k; i++) h = (h ^ p[i]) * 1099511628211ull;
        return (size_t)h;
    }
};
struct lt_plan {
    bool ok;   // false: Lt has no algorithm for this case; the legacy call does it
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
};

static std::mutex plan_lock;
static std::unordered_map<lt_key, lt_plan, lt_key_hash> *plans;

// Releases every plan (imb_cuda_shutdown calls it: leak checkers stay quiet).
void imb_gemm_plans_clear(void) {
    std::lock_guard<std::mutex> g(plan_lock);
    if (!plans) return;
    for (auto &kv : *plans) {
        lt_plan &p = kv.second;
        if (p.op) cublasLtMatmulDescDestroy(p.op);
        if (p.a) cublasLtMatrixLayoutDestroy(p.a);
        if (p.b) cublasLtMatrixLayoutDestroy(p.b);
        if (p.c) cublasLtMatrixLayoutDestroy(p.c);
    }
    delete plans;
    plans = NULL;
}

// Largest power of two (bytes, at most 256) dividing the address of every matrix of a batch.
static int32_t alignment(const void *p, int64_t stride_elems, int64_t batch) {
    uintptr_t v = (uintptr_t)p | (batch > 1 ? (uintptr_t)(stride_elems * (int64_t)sizeof(float)) : 0);
    int32_t a = 256;
    while (a > 4 && (v & (uintptr_t)(a - 1))) a >>= 1;
    return a;
}

// Setting up a plan may fail for a case Lt does not support: that is an answer (the legacy
// call takes over), not an error to record.
#define LT_TRY(call)                                                                              \
    do {                                                                                          \
        if ((call) != CUBLAS_STATUS_SUCCESS) return false;                                        \
    } while (0)

static bool layout(cublasLtMatrixLayout_t *l, uint64_t rows, uint64_t cols, int64_t ld, int64_t batch, int64_t stride) {
    LT_TRY(cublasLtMatrixLayoutCreate(l, CUDA_R_32F, rows, cols, ld));
    if (batch > 1) {
        int32_t n = (int32_t)batch;
        LT_TRY(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &n, sizeof n));
        LT_TRY(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
    }
    return true;
}

// cuBLASLt is column-major; a row-major matrix read column-major is its transpose. So the
// row-major C [M,N] = op(A) op(B) is the column-major Cᵀ [N,M] = op(B)ᵀ op(A)ᵀ: Lt's A is our
// B (with our tb), Lt's B is our A (with our ta), each with its row-major leading dimension.
// Lt's BIAS epilogue adds a vector along Cᵀ's rows (our N); BGRADB sums Lt's B over k, i.e.
// our op(A) [M,K] over K: for ta = 1 (A stored [K,M]) the column sums of A.
static bool make_plan(const lt_key &k, const float *bias, lt_plan *p) {
    imb_cuda_state *st = imb_cuda_get();
    if (!st) return false;
    memset(p, 0, sizeof *p);
    cublasComputeType_t ct = k.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    LT_TRY(cublasLtMatmulDescCreate(&p->op, ct, CUDA_R_32F));
    cublasOperation_t opa = k.tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = k.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    if (k.epi != EPI_NONE) {
        cublasLtEpilogue_t e = k.epi == EPI_BIAS ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_BGRADB;
        cudaDataType_t bt = CUDA_R_32F;
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e));
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    int64_t M = k.M, N = k.N, K = k.K;
    if (!layout(&p->a, k.tb ? K : N, k.tb ? N : K, k.tb ? K : N, k.batch, k.sb) ||
        !layout(&p->b, k.ta ? M : K, k.ta ? K : M, k.ta ? M : K, k.batch, k.sa) ||
        !layout(&p->c, N, M, N, k.batch, k.sc))
        return false;
    cublasLtMatmulPreference_t pref;
    LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = st->blas_ws_bytes;
    uint32_t aa = (uint32_t)k.align_b, ab = (uint32_t)k.align_a, ac = (uint32_t)k.align_c;   // Lt's A is our B
    const cublasStatus_t S = CUBLAS_STATUS_SUCCESS;
    bool ok = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) == S &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof aa) == S &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof ab) == S &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ac, sizeof ac) == S &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ac, sizeof ac) == S;
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    // no algorithm is an answer (the legacy call takes over), not an error
    if (ok && cublasLtMatmulAlgoGetHeuristic(st->lt, p->op, p->a, p->b, p->c, p->c, pref, 1, &res, &found) !=
                  CUBLAS_STATUS_SUCCESS)
        found = 0;
    cublasLtMatmulPreferenceDestroy(pref);
    if (!ok || found < 1 || res.state != CUBLAS_STATUS_SUCCESS || res.workspaceSize > ws) return false;
    p->algo = res.algo;
    p->ok = true;
    return true;
}

// Runs the GEMM through cuBLASLt; false when Lt has no plan for it (nothing was queued).
static bool lt_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, const float *B,
                    float beta, float *C, int64_t batch, int64_t sa, int64_t sb, int64_t sc, int epi, const float *bias) {
    imb_cuda_state *st = imb_cuda_get();
    if (!st) return true;   // the error is recorded; nothing more to do
    lt_key k;
    memset(&k, 0, sizeof k);
    k.ta = ta; k.tb = tb; k.tf32 = imb_cuda_tf32(); k.epi = epi;
    k.M = M; k.N = N; k.K = K; k.batch = batch;
    k.sa = batch > 1 ? sa : 0; k.sb = batch > 1 ? sb : 0; k.sc = batch > 1 ? sc : 0;
    k.align_a = alignment(A, sa, batch); k.align_b = alignment(B, sb, batch); k.align_c = alignment(C, sc, batch);
    lt_plan plan;
    {
        std::lock_guard<std::mutex> g(plan_lock);
        if (!plans) plans = new std::unordered_map<lt_key, lt_plan, lt_key_hash>();
        auto it = plans->find(k);
        if (it == plans->end()) {
            lt_plan p;
            if (!make_plan(k, bias, &p)) p.ok = false;
            it = plans->emplace(k, p).first;
        }
        plan = it->second;
    }
    if (!plan.ok) return false;
    if (epi != EPI_NONE &&
        !IMB_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias)))
        return true;
    IMB_CUBLAS_CHECK(cublasLtMatmul(st->lt, plan.op, &alpha, B, plan.a, A, plan.b, &beta, C, plan.c, C, plan.c,
                                    &plan.algo, st->blas_ws, st->blas_ws_bytes, st->stream));
    return true;
}

// The legacy cuBLAS call (strided batches, a zero stride included), same operand order.
static void legacy_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, const float *B,
                        float beta, float *C, int64_t batch, int64_t sa, int64_t sb, int64_t sc) {
    cublasHandle_t h = imb_cuda_blas();
    if (!h) return;
    cublasComputeType_t ct = imb_cuda_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    // gridDim.z bounds the batches one call may take on some cuBLAS kernels
    const int64_t chunk = 65535;
    for (int64_t b0 = 0; b0 < batch; b0 += chunk) {
        int nb = (int)(batch - b0 < chunk ? batch - b0 : chunk);
        IMB_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
            h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha,
            B + b0 * sb, CUDA_R_32F, tb ? (int)K : (int)N, (long long)sb, A + b0 * sa, CUDA_R_32F, ta ? (int)M : (int)K,
            (long long)sa, &beta, C + b0 * sc, CUDA_R_32F, (int)N, (long long)sc, nb, ct, CUBLAS_GEMM_DEFAULT));
    }
}

static void gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, const float *B,
                 float beta, float *C, int64_t batch, int64_t sa, int64_t sb, int64_t sc) {
    // Lt's batches need a positive stride on every operand (a shared B has stride 0)
    bool batched_zero = batch > 1 && (sa == 0 || sb == 0);
    if (batch > INT_MAX || batched_zero || !lt_gemm(ta, tb, M, N, K, alpha, A, B, beta, C, batch, sa, sb, sc, EPI_NONE, NULL))
        legacy_gemm(ta, tb, M, N, K, alpha, A, B, beta, C, batch, sa, sb, sc);
}

static bool too_big(const char *who, int64_t M, int64_t N, int64_t K) {
    if (M <= INT_MAX && N <= INT_MAX && K <= INT_MAX) return false;
    imb_cuda_record("%s: M=%lld N=%lld K=%lld exceed cuBLAS's 32-bit sizes", who, (long long)M, (long long)N, (long long)K);
    return true;
}

extern "C" void imb_gemm_cuda(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                              const float *B, float beta, float *C, int64_t batch, int64_t sa, int64_t sb,
                              int64_t sc) {
    if (M <= 0 || N <= 0 || K <= 0 || batch <= 0) return;
    if (too_big("imb_gemm_cuda", M, N, K)) return;
    // Every batch writing the same C (sc == 0) must go in order, as the CPU loop does;
    // a batched call would run them concurrently.
    if (sc == 0 && batch > 1) {
        for (int64_t b = 0; b < batch; b++) gemm(ta, tb, M, N, K, alpha, A + b * sa, B + b * sb, beta, C, 1, 0, 0, 0);
        return;
    }
    gemm(ta, tb, M, N, K, alpha, A, B, beta, C, batch, sa, sb, sc);
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

extern "C" void imb_gemm_bias_cuda(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B,
                                   float *C, const float *bias) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    if (too_big("imb_gemm_bias_cuda", M, N, K)) return;
    if (lt_gemm(ta, tb, M, N, K, 1.0f, A, B, 0.0f, C, 1, 0, 0, 0, EPI_BIAS, bias)) return;
    legacy_gemm(ta, tb, M, N, K, 1.0f, A, B, 0.0f, C, 1, 0, 0, 0);
    imb_bias_add_cuda(C, bias, M, N);
}

__global__ static void add_kernel(float *dst, const float *src, int64_t n) {
    IMB_FOR(i, n) dst[i] += src[i];
}

extern "C" void imb_gemm_bgrad_cuda(int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                                    float *dbias) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    if (too_big("imb_gemm_bgrad_cuda", M, N, K)) return;
    // the epilogue writes the bias gradient; gradients accumulate, so it lands in scratch first
    float *tmp = (float *)imb_cuda_scratch(sizeof(float) * (size_t)M);
    if (!tmp) return;
    if (lt_gemm(1, tb, M, N, K, 1.0f, A, B, 1.0f, C, 1, 0, 0, 0, EPI_BGRADB, tmp)) {
        IMB_LAUNCH(add_kernel, imb_blocks(M, IMB_THREADS), IMB_THREADS, 0, dbias, tmp, M);
        return;
    }
    legacy_gemm(1, tb, M, N, K, 1.0f, A, B, 1.0f, C, 1, 0, 0, 0);
    imb_colsum_cuda(dbias, A, NULL, K, M);
}
