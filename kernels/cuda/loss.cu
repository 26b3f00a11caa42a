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
            // y >= C: flagged by the op's data check, reported after the step; no read past the row
            rowloss[i] = y < 0 ? 0.0f
                       : y >= C ? NAN
                                : (float)((1.0 - smoothing) * (lse - z[y]) + smoothing * (lse - sz / (double)C));
        }
    }
}

__global__ static void xent_bwd(float *dlogits, const float *prob, const int32_t *labels, int64_t N, int64_t C,
                                float smoothing, const float *dloss, const float *scale) {
    float s = scale[0] * dloss[0];
    IMB_FOR(i, N * C) {
        int64_t r = i / C, c = i - r * C;
        int32_t y = labels[r];
        if (y < 0 || y >= C) continue;
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

// The mean over kept rows, with the count taken on the device (no label comes to the host):
// the sum in sum_kernel's order, the scale as the CPU computes it.
__global__ static void __launch_bounds__(1024) xent_mean(float *loss, float *scale, const float *rowloss,
                                                         const int32_t *labels, int64_t N, int64_t C) {
    double s = 0;
    long long kept = 0;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
        s += rowloss[i];
        kept += labels[i] >= 0 && labels[i] < C;
    }
    s = imb_block_sum(s);
    kept = imb_block_sum(kept);
    if (threadIdx.x == 0) {
        float inv = kept ? 1.0f / (float)kept : 0.0f;
        scale[0] = inv;
        loss[0] = (float)(s * inv);
    }
}

extern "C" {
void imb_xent_fwd_cuda(float *rowloss, float *prob, const float *logits, const int32_t *labels, int64_t N, int64_t C,
                       float smoothing) {
    if (N <= 0 || C <= 0) return;
    IMB_LAUNCH(xent_fwd, imb_blocks(N, 1), imb_row_threads(C), 0, rowloss, prob, logits, labels, N, C, smoothing);
}

void imb_xent_mean_cuda(float *loss, float *scale, const float *rowloss, const int32_t *labels, int64_t N, int64_t C) {
    IMB_LAUNCH(xent_mean, 1, 1024, 0, loss, scale, rowloss, labels, N, C);
}

void imb_xent_bwd_cuda(float *dlogits, const float *prob, const int32_t *labels, int64_t N, int64_t C,
                       float smoothing, const float *dloss, const float *scale) {
    if (N <= 0 || C <= 0) return;
    IMB_LAUNCH(xent_bwd, imb_blocks(N * C, IMB_THREADS), IMB_THREADS, 0, dlogits, prob, labels, N, C, smoothing,
               dloss, scale);
}

void imb_sum_cuda(float *out, const float *x, int64_t n, float scale) {
    IMB_LAUNCH(sum_kernel, 1, 1024, 0, out, x, n, scale);
}
}
