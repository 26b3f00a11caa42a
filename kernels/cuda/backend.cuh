// What every CUDA kernel file shares: the backend stream, BLAS handles and scratch buffer,
// error checks that record into the sticky error, launch helpers and deterministic reductions.
#ifndef IMB_CUDA_BACKEND_CUH
#define IMB_CUDA_BACKEND_CUH
#include "config.h"
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "backend.h"

// Threads per block for pointwise kernels and row reductions.
#define IMB_THREADS 256
// Grid-stride loops cap the grid here: enough blocks to fill any current GPU many times over,
// and far below the 2^31-1 limit of gridDim.x. (A test build may lower it so that small
// tensors take the loops' later iterations too.)
#ifndef IMB_MAX_BLOCKS
#define IMB_MAX_BLOCKS 65536
#endif

struct imb_cuda_state {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    // one workspace serves cuBLAS and cuBLASLt: both run on the one stream, never at once
    void *blas_ws;
    size_t blas_ws_bytes;
    void *scratch;           // grows on demand, reused by every kernel wrapper
    size_t scratch_bytes;
    int sync_each_op;        // IMB_CUDA_SYNC=1
    unsigned long long scratch_gen;   // scratch reallocations (CUDA graphs hold its address)
    int scratch_refused;     // growth refused inside a stream capture, not yet read
};

// The state, created on first use; NULL when creation failed (the error is recorded).
imb_cuda_state *imb_cuda_get(void);
// The backend stream (0, the legacy stream, if the backend could not start: the error is
// already recorded, and launching there keeps the failure path simple).
cudaStream_t imb_cuda_stream(void);
cublasHandle_t imb_cuda_blas(void);
// Device scratch of at least bytes, valid until the next call; kernels queued on the backend
// stream before the next call may still use it (stream order). NULL with the error recorded.
// Growing synchronises the stream, so it belongs to warm-up, never to a captured graph.
void *imb_cuda_scratch(size_t bytes);

// Releases the cached cuBLASLt GEMM plans (kernels/cuda/matmul.cu); part of the teardown.
void imb_gemm_plans_clear(void);

// Error recording; true when the call succeeded.
bool imb_cuda_ok(cudaError_t e, const char *call, const char *func, const char *file, int line);
bool imb_cublas_ok(cublasStatus_t s, const char *call, const char *func, const char *file, int line);
void imb_cuda_record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define IMB_CUDA_CHECK(call) imb_cuda_ok((call), #call, __func__, __FILE__, __LINE__)
#define IMB_CUBLAS_CHECK(call) imb_cublas_ok((call), #call, __func__, __FILE__, __LINE__)

// Launches on the backend stream and records a launch failure (bad configuration, too much
// shared memory, no kernel image for this GPU) with the kernel's name.
#define IMB_LAUNCH(kernel, grid, block, smem, ...)                                                   \
    do {                                                                                           \
        kernel<<<(grid), (block), (smem), imb_cuda_stream()>>>(__VA_ARGS__);                       \
        imb_cuda_ok(cudaGetLastError(), #kernel "<<<>>>", __func__, __FILE__, __LINE__);          \
    } while (0)

// Blocks for n work items of `threads` each, capped (kernels loop with IMB_FOR).
static inline unsigned imb_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : b > IMB_MAX_BLOCKS ? IMB_MAX_BLOCKS : b);
}

// Threads for a block that reduces one row of C elements: whole warps, at most IMB_THREADS,
// so short rows do not leave most of a 256-thread block idle.
static inline int imb_row_threads(int64_t C) {
    int64_t t = (C + 31) / 32 * 32;
    return (int)(t < 32 ? 32 : t > IMB_THREADS ? IMB_THREADS : t);
}

// Grid-stride loop over [0, n) with 64-bit indices (tensors may exceed 2^31 elements).
#define IMB_FOR(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

// i % n; the 32-bit remainder is several times cheaper and covers almost every tensor.
__device__ __forceinline__ int64_t imb_mod(int64_t i, int64_t n) {
    return ((i | n) >> 32) ? i % n : (int64_t)((uint32_t)i % (uint32_t)n);
}

// Butterfly sums and maxima: a fixed pairing order, so the same inputs give the same bits.
template <class T> __device__ __forceinline__ T imb_warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float imb_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum / max returned to every thread; blockDim.x must be a multiple of 32. The
// leading barrier lets a kernel call these several times in a row.
template <class T> __device__ T imb_block_sum(T v) {
    __shared__ T part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = imb_warp_sum(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    return imb_warp_sum(lane < nw ? part[lane] : T(0));
}
__device__ inline float imb_block_max(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = imb_warp_max(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    return imb_warp_max(lane < nw ? part[lane] : -INFINITY);
}

// ---- Deterministic column sums (no atomics) ----
// out[f.out_index(j)] += sum over i < rows of f(i, j), for j < cols, in double.
// Pass 1: a block covers 32 columns and one chunk of rows, 8 threads per column striding the
// chunk, combined by a fixed tree, one partial per (chunk, column) in scratch. Pass 2 adds
// the partials in chunk order. The chunking depends only on (rows, cols), so the result is
// bit-identical from run to run and does not depend on the GPU model.
// F provides: __device__ double operator()(int64_t i, int64_t j) const;
//             __device__ int64_t out_index(int64_t j) const.
#define IMB_COLSUM_TY 8
#define IMB_COLSUM_MAX_CHUNKS 1024
#define IMB_COLSUM_MAX_PARTIALS ((int64_t)1 << 22)   // 32 MiB of partials at most

template <class F>
__global__ void imb_colsum_partial(F f, double *part, int64_t rows, int64_t cols, int64_t rows_per_chunk) {
    __shared__ double s[IMB_COLSUM_TY][33];
    int tx = threadIdx.x, ty = threadIdx.y;
    int64_t j = blockIdx.x * (int64_t)32 + tx;
    int64_t r0 = blockIdx.y * rows_per_chunk, r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
    double acc = 0;
    if (j < cols)
        for (int64_t i = r0 + ty; i < r1; i += IMB_COLSUM_TY) acc += f(i, j);
    s[ty][tx] = acc;
    __syncthreads();
    for (int h = IMB_COLSUM_TY / 2; h > 0; h >>= 1) {
        if (ty < h) s[ty][tx] += s[ty + h][tx];
        __syncthreads();
    }
    if (ty == 0 && j < cols) part[blockIdx.y * cols + j] = s[0][tx];
}

template <class F> __global__ void imb_colsum_final(F f, float *out, const double *part, int64_t cols, int64_t chunks) {
    IMB_FOR(j, cols) {
        double s = 0;
        for (int64_t c = 0; c < chunks; c++) s += part[c * cols + j];
        out[f.out_index(j)] += (float)s;
    }
}

template <class F> void imb_colsum(F f, float *out, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    int64_t chunks = (rows + 63) / 64, cap = IMB_COLSUM_MAX_PARTIALS / cols;
    if (chunks > IMB_COLSUM_MAX_CHUNKS) chunks = IMB_COLSUM_MAX_CHUNKS;
    if (chunks > cap) chunks = cap;
    if (chunks < 1) chunks = 1;
    int64_t per = (rows + chunks - 1) / chunks;
    chunks = (rows + per - 1) / per;
    double *part = (double *)imb_cuda_scratch(sizeof(double) * (size_t)(chunks * cols));
    if (!part) return;
    dim3 grid((unsigned)((cols + 31) / 32), (unsigned)chunks), block(32, IMB_COLSUM_TY);
    IMB_LAUNCH(imb_colsum_partial<F>, grid, block, 0, f, part, rows, cols, per);
    IMB_LAUNCH(imb_colsum_final<F>, imb_blocks(cols, IMB_THREADS), IMB_THREADS, 0, f, out, part, cols, chunks);
}
#endif
