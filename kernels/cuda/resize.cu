// CUDA bilinear token-grid resampling (align_corners=False); the backward gathers per input
// element, so it needs no atomics and sums in a fixed order.
#include "backend.cuh"
extern "C" {
#include "../resize.h"
}

// source index pair and weight of the second one along one axis (as kernels/cpu/resize.c)
__device__ __forceinline__ void src_index(int o, int in, int out, int *i0, int *i1, float *w1) {
    float s = ((float)o + 0.5f) * (float)in / (float)out - 0.5f;
    if (s < 0) s = 0;
    int a = (int)s;
    if (a > in - 1) a = in - 1;
    *i0 = a;
    *i1 = a + 1 < in ? a + 1 : in - 1;
    *w1 = s - (float)a;
}

__global__ static void resize_fwd(float *out, const float *x, int64_t B, int H, int W, int H2, int W2, int64_t C) {
    IMB_FOR(i, B * H2 * W2 * C) {
        int64_t c = i % C, p = i / C;
        int ox = (int)(p % W2), oy = (int)(p / W2 % H2);
        int64_t b = p / ((int64_t)W2 * H2);
        int y0, y1, x0, x1;
        float wy, wx;
        src_index(oy, H, H2, &y0, &y1, &wy);
        src_index(ox, W, W2, &x0, &x1, &wx);
        const float *xb = x + b * H * W * C + c;
        float p00 = xb[((int64_t)y0 * W + x0) * C], p01 = xb[((int64_t)y0 * W + x1) * C];
        float p10 = xb[((int64_t)y1 * W + x0) * C], p11 = xb[((int64_t)y1 * W + x1) * C];
        out[i] = (1 - wy) * ((1 - wx) * p00 + wx * p01) + wy * ((1 - wx) * p10 + wx * p11);
    }
}

// Outputs along one axis that read input index i: s(o) grows with o and output o reads
// floor(s) and the next index, so only o with s(o) in [i-1, i+1) (or the clamped ends)
// can; a margin of one on each side absorbs rounding, and the caller checks each candidate.
__device__ __forceinline__ void readers(int i, int in, int out, int *lo, int *hi) {
    float r = (float)out / (float)in;
    int a = (int)floorf(((float)i - 0.5f) * r - 0.5f) - 1, b = (int)ceilf(((float)i + 1.5f) * r - 0.5f) + 1;
    *lo = i <= 1 || a < 0 ? 0 : a;
    *hi = i >= in - 1 || b > out - 1 ? out - 1 : b;
}

// the weight with which output o reads input i along one axis (0 when it does not)
__device__ __forceinline__ float axis_weight(int o, int i, int in, int out) {
    int i0, i1;
    float w1;
    src_index(o, in, out, &i0, &i1, &w1);
    return (i0 == i ? 1 - w1 : 0.0f) + (i1 == i ? w1 : 0.0f);
}

__global__ static void resize_bwd(float *dx, const float *dout, int64_t B, int H, int W, int H2, int W2, int64_t C) {
    IMB_FOR(i, B * H * W * C) {
        int64_t c = i % C, p = i / C;
        int ix = (int)(p % W), iy = (int)(p / W % H);
        int64_t b = p / ((int64_t)W * H);
        int ylo, yhi, xlo, xhi;
        readers(iy, H, H2, &ylo, &yhi);
        readers(ix, W, W2, &xlo, &xhi);
        const float *gb = dout + b * H2 * W2 * C + c;
        float acc = 0.0f;
        for (int oy = ylo; oy <= yhi; oy++) {
            float wy = axis_weight(oy, iy, H, H2);
            if (wy == 0.0f) continue;
            for (int ox = xlo; ox <= xhi; ox++) {
                float wx = axis_weight(ox, ix, W, W2);
                if (wx != 0.0f) acc += wy * wx * gb[((int64_t)oy * W2 + ox) * C];
            }
        }
        dx[i] += acc;
    }
}

extern "C" {
void imb_resize_tokens_fwd_cuda(float *out, const float *x, int64_t B, int H, int W, int H2, int W2, int64_t C) {
    int64_t n = B * H2 * W2 * C;
    if (n <= 0) return;
    IMB_LAUNCH(resize_fwd, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, out, x, B, H, W, H2, W2, C);
}

void imb_resize_tokens_bwd_cuda(float *dx, const float *dout, int64_t B, int H, int W, int H2, int W2, int64_t C) {
    int64_t n = B * H * W * C;
    if (n <= 0) return;
    IMB_LAUNCH(resize_bwd, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, dx, dout, B, H, W, H2, W2, C);
}
}
