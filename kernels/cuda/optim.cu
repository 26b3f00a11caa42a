// CUDA AdamW over the flat parameter buffers, and the deterministic sum of squares for clipping.
#include "backend.cuh"
#include <math.h>
extern "C" {
#include "../optim.h"
}

__global__ static void adamw_kernel(float *p, const float *g, float *m, float *v, const float *decay_mask,
                                    const float *update_mask, int64_t n, float lr, float b1, float b2, float eps,
                                    float wd, float bc1, float bc2) {
    IMB_FOR(i, n) {
        if (update_mask[i] == 0.0f) continue;   // frozen: parameter and moments untouched
        float gi = g[i];
        float pi = p[i] * (1.0f - lr * wd * decay_mask[i]);
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    }
}

// Elements per partial sum. Fixed, so how the sum is split and combined depends only on n:
// the norm (and whether clipping triggers) is the same on every run.
#define SUMSQ_CHUNK 8192

__global__ static void sumsq_partial(double *part, const float *x, int64_t n, int64_t nchunks) {
    for (int64_t b = blockIdx.x; b < nchunks; b += gridDim.x) {
        int64_t lo = b * SUMSQ_CHUNK, hi = lo + SUMSQ_CHUNK < n ? lo + SUMSQ_CHUNK : n;
        double s = 0;
        for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)x[i] * x[i];
        s = imb_block_sum(s);
        if (threadIdx.x == 0) part[b] = s;
    }
}

__global__ static void __launch_bounds__(1024) sumsq_final(double *out, const double *part, int64_t nchunks) {
    double s = 0;
    for (int64_t b = threadIdx.x; b < nchunks; b += blockDim.x) s += part[b];
    s = imb_block_sum(s);
    if (threadIdx.x == 0) out[0] = s;
}

extern "C" {
void imb_adamw_cuda(float *p, const float *g, float *m, float *v, const float *decay_mask, const float *update_mask,
                    int64_t n, float lr, float b1, float b2, float eps, float wd, float bc1, float bc2) {
    if (n <= 0) return;
    IMB_LAUNCH(adamw_kernel, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, p, g, m, v, decay_mask, update_mask, n, lr,
               b1, b2, eps, wd, bc1, bc2);
}

// Synchronises: the caller needs the value on the host.
double imb_sumsq_cuda(const float *x, int64_t n) {
    if (n <= 0) return 0.0;
    int64_t nchunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double *part = (double *)imb_cuda_scratch(sizeof(double) * (size_t)(nchunks + 1)), host = NAN;
    if (!part) return NAN;
    IMB_LAUNCH(sumsq_partial, imb_blocks(nchunks, 1), IMB_THREADS, 0, part, x, n, nchunks);
    IMB_LAUNCH(sumsq_final, 1, 1024, 0, part + nchunks, part, nchunks);
    cudaStream_t s = imb_cuda_stream();
    if (!IMB_CUDA_CHECK(cudaMemcpyAsync(&host, part + nchunks, sizeof host, cudaMemcpyDeviceToHost, s))) return NAN;
    if (!IMB_CUDA_CHECK(cudaStreamSynchronize(s))) return NAN;
    return host;
}
}
