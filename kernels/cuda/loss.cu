// CUDA softmax cross-entropy (a block per row, sums in double as on the CPU) and the loss sum.
#include "backend.cuh"
extern "C" {
#include "../loss.h"
}

__global__ static void xent_fwd(float *rowloss, float *prob, const float *logits, const int32_t *labels, int64_t N,
                                int64_t C, float smoothing) {
    for (int64_t i = blockIdx.x; i < N; i += gridDim.x) {
        const float *z = logits + i * C;
        float *p = prob + i * C;
        float mx = -INFINITY;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = fmaxf(mx, z[c]);
        mx = imb_block_max(mx);
        double se = 0, sz = 0;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            se += (double)expf(z[c] - mx);
            sz += z[c];
        }
        se = imb_block_sum(se);
        sz = imb_block_sum(sz);
        // relative to the row maximum the exponent is <= 0, so expf stays accurate
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) p[c] = (float)(expf(z[c] - mx) / se);
        if (threadIdx.x == 0) {
            int32_t y = labels[i];
            double lse = mx + log(se);
            rowloss[i] = y < 0 ? 0.0f : (float)((1.0 - smoothing) * (lse - z[y]) + smoothing * (lse - sz / (double)C));
        }
    }
}

__global__ static void xent_bwd(float *dlogits, const float *prob, const int32_t *labels, int64_t N, int64_t C,
                                float smoothing, const float *dloss, float scale) {
    float s = scale * dloss[0];
    IMB_FOR(i, N * C) {
        int64_t r = i / C, c = i - r * C;
        int32_t y = labels[r];
        if (y < 0) continue;
        float target = smoothing / (float)C + (c == y ? 1.0f - smoothing : 0.0f);
        dlogits[i] += s * (prob[i] - target);
    }
}

// One block, a fixed order: the loss is bit-identical run to run.
__global__ static void __launch_bounds__(1024) sum_kernel(float *out, const float *x, int64_t n, float scale) {
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    s = imb_block_sum(s);
    if (threadIdx.x == 0) out[0] = (float)(s * scale);
}

extern "C" {
void imb_xent_fwd_cuda(float *rowloss, float *prob, const float *logits, const int32_t *labels, int64_t N, int64_t C,
                       float smoothing) {
    if (N <= 0 || C <= 0) return;
    IMB_LAUNCH(xent_fwd, imb_blocks(N, 1), imb_row_threads(C), 0, rowloss, prob, logits, labels, N, C, smoothing);
}

void imb_xent_bwd_cuda(float *dlogits, const float *prob, const int32_t *labels, int64_t N, int64_t C,
                       float smoothing, const float *dloss, float scale) {
    if (N <= 0 || C <= 0) return;
    IMB_LAUNCH(xent_bwd, imb_blocks(N * C, IMB_THREADS), IMB_THREADS, 0, dlogits, prob, labels, N, C, smoothing,
               dloss, scale);
}

void imb_sum_cuda(float *out, const float *x, int64_t n, float scale) {
    IMB_LAUNCH(sum_kernel, 1, 1024, 0, out, x, n, scale);
}
}
