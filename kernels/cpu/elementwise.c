/* CPU reference elementwise kernels. Broadcast reductions run per column, in order. */
#include "../elementwise.h"

void imb_add_fwd_cpu(float *out, const float *a, const float *b, int64_t n, int64_t nb) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i % nb];
}

void imb_colsum_cpu(float *db, const float *x, const float *w, int64_t rows, int64_t N) {
    /* column blocks in parallel, rows read contiguously inside a block, double sums in row
     * order: the same result for any thread count */
    enum { BLK = 64 };
#pragma omp parallel for
    for (int64_t j0 = 0; j0 < N; j0 += BLK) {
        int64_t nb = N - j0 < BLK ? N - j0 : BLK;
        double acc[BLK] = { 0 };
        for (int64_t i = 0; i < rows; i++) {
            const float *r = x + i * N + j0, *wr = w ? w + i * N + j0 : NULL;
            if (wr) for (int64_t j = 0; j < nb; j++) acc[j] += (double)r[j] * wr[j];
            else for (int64_t j = 0; j < nb; j++) acc[j] += r[j];
        }
        for (int64_t j = 0; j < nb; j++) db[j0 + j] += (float)acc[j];
    }
}

void imb_add_bwd_cpu(float *da, float *db, const float *dout, int64_t n, int64_t nb) {
    if (da) imb_scale_cpu(da, dout, 1.0f, n, 1);
    if (db) imb_colsum_cpu(db, dout, NULL, n / nb, nb);
}

void imb_mul_fwd_cpu(float *out, const float *a, const float *b, int64_t n, int64_t nb) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i % nb];
}

void imb_mul_bwd_cpu(float *da, float *db, const float *a, const float *b, const float *dout, int64_t n, int64_t nb) {
    if (da) {
#pragma omp parallel for
        for (int64_t i = 0; i < n; i++) da[i] += dout[i] * b[i % nb];
    }
    if (db) imb_colsum_cpu(db, dout, a, n / nb, nb);
}

void imb_residual_fwd_cpu(float *out, const float *x, const float *y, const float *g, int64_t n, int64_t C) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) out[i] = x[i] + (g ? g[i % C] : 1.0f) * y[i];
}

void imb_residual_bwd_cpu(float *dx, float *dy, float *dg, const float *y, const float *g, const float *dout,
                          int64_t n, int64_t C) {
    if (dx) imb_scale_cpu(dx, dout, 1.0f, n, 1);
    if (dy) {
#pragma omp parallel for
        for (int64_t i = 0; i < n; i++) dy[i] += (g ? g[i % C] : 1.0f) * dout[i];
    }
    if (dg) imb_colsum_cpu(dg, dout, y, n / C, C);
}

void imb_scale_cpu(float *dst, const float *src, float s, int64_t n, int acc) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) dst[i] = acc ? dst[i] + s * src[i] : s * src[i];
}
