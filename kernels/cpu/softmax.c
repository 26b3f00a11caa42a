/* CPU reference softmax over the last dim with a broadcast additive mask (sums in double). */
#include "../softmax.h"
#include <math.h>

void imb_softmax_fwd_cpu(float *out, const float *x, const float *mask, int64_t rows, int64_t L, int64_t mask_rows) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * L, *mr = mask ? mask + (r % mask_rows) * L : NULL;
        float *yr = out + r * L;
        float mx = -INFINITY;
        for (int64_t j = 0; j < L; j++) {
            float z = xr[j] + (mr ? mr[j] : 0.0f);
            yr[j] = z;
            mx = z > mx ? z : mx;
        }
        /* every entry excluded: exp(-inf - -inf) would be NaN, the documented answer is zeros */
        if (mx == -INFINITY) {
            for (int64_t j = 0; j < L; j++) yr[j] = 0.0f;
            continue;
        }
        double s = 0;
        for (int64_t j = 0; j < L; j++) s += exp((double)yr[j] - mx);
        for (int64_t j = 0; j < L; j++) yr[j] = (float)(exp((double)yr[j] - mx) / s);
    }
}

void imb_softmax_bwd_cpu(float *dx, const float *y, const float *dy, int64_t rows, int64_t L) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * L, *gr = dy + r * L;
        double dot = 0;
        for (int64_t j = 0; j < L; j++) dot += (double)gr[j] * yr[j];
        for (int64_t j = 0; j < L; j++) dx[r * L + j] += (float)(yr[j] * (gr[j] - dot));
    }
}
