// CUDA softmax over the last dim with a broadcast additive mask: a block per row, sums in double.
#include "backend.cuh"
extern "C" {
#include "../softmax.h"
}

__global__ static void softmax_fwd(float *out, const float *x, const float *mask, int64_t rows, int64_t L,
                                   int64_t mask_rows) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * L, *mr = mask ? mask + imb_mod(r, mask_rows) * L : NULL;
        float *yr = out + r * L;
        float mx = -INFINITY;
        for (int64_t j = threadIdx.x; j < L; j += blockDim.x) mx = fmaxf(mx, xr[j] + (mr ? mr[j] : 0.0f));
        mx = imb_block_max(mx);
        // every entry excluded: exp(-inf - -inf) would be NaN, the documented answer is zeros
        if (mx == -INFINITY) {
            for (int64_t j = threadIdx.x; j < L; j += blockDim.x) yr[j] = 0.0f;
            continue;
        }
        double s = 0;
        for (int64_t j = threadIdx.x; j < L; j += blockDim.x) s += (double)expf(xr[j] + (mr ? mr[j] : 0.0f) - mx);
        s = imb_block_sum(s);
        for (int64_t j = threadIdx.x; j < L; j += blockDim.x) yr[j] = (float)(expf(xr[j] + (mr ? mr[j] : 0.0f) - mx) / s);
    }
}

__global__ static void softmax_bwd(float *dx, const float *y, const float *dy, int64_t rows, int64_t L) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *yr = y + r * L, *gr = dy + r * L;
        double dot = 0;
        for (int64_t j = threadIdx.x; j < L; j += blockDim.x) dot += (double)gr[j] * yr[j];
        dot = imb_block_sum(dot);
        for (int64_t j = threadIdx.x; j < L; j += blockDim.x) dx[r * L + j] += (float)(yr[j] * (gr[j] - dot));
    }
}

extern "C" {
void imb_softmax_fwd_cuda(float *out, const float *x, const float *mask, int64_t rows, int64_t L, int64_t mask_rows) {
    if (rows <= 0 || L <= 0) return;
    IMB_LAUNCH(softmax_fwd, imb_blocks(rows, 1), imb_row_threads(L), 0, out, x, mask, rows, L, mask_rows);
}

void imb_softmax_bwd_cuda(float *dx, const float *y, const float *dy, int64_t rows, int64_t L) {
    if (rows <= 0 || L <= 0) return;
    IMB_LAUNCH(softmax_bwd, imb_blocks(rows, 1), imb_row_threads(L), 0, dx, y, dy, rows, L);
}
}
