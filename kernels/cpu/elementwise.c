/* CPU reference elementwise kernels. Broadcast reductions run per column, in order. */
#include "../elementwise.h"

void imb_add_fwd_cpu(float *out, const float *a, const float *b, int64_t n, int64_t nb) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i % nb];
}

/* db[j] += sum over rows r of w(r, j) * dout[r*nb + j], with w = 1 or a[...] */
static void col_sum(float *db, const float *dout, const float *w, int64_t n, int64_t nb) {
    int64_t rows = n / nb;
#pragma omp parallel for
    for (int64_t j = 0; j < nb; j++) {
        double s = 0;
        for (int64_t r = 0; r < rows; r++) s += (double)dout[r * nb + j] * (w ? w[r * nb + j] : 1.0f);
        db[j] += (float)s;
    }
}

void imb_add_bwd_cpu(float *da, float *db, const float *dout, int64_t n, int64_t nb) {
    if (da) imb_scale_cpu(da, dout, 1.0f, n, 1);
    if (db) col_sum(db, dout, NULL, n, nb);
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
    if (db) col_sum(db, dout, a, n, nb);
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
    if (dg) col_sum(dg, dout, y, n, C);
}

void imb_scale_cpu(float *dst, const float *src, float s, int64_t n, int acc) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) dst[i] = acc ? dst[i] + s * src[i] : s * src[i];
}
