/* CPU reference LayerNorm and RMSNorm: row statistics in double, parameter grads per column. */
#include "../norm.h"
#include <math.h>

void imb_layernorm_fwd_cpu(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                           int64_t rows, int64_t C, float eps) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = out + r * C;
        /* two passes: the one-pass E[x^2] - E[x]^2 loses everything when |mean| >> std */
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += xr[c];
        double mu = s / (double)C, v = 0;
        for (int64_t c = 0; c < C; c++) { double d = xr[c] - mu; v += d * d; }
        double rs = 1.0 / sqrt(v / (double)C + eps);
        mean[r] = (float)mu;
        rstd[r] = (float)rs;
        for (int64_t c = 0; c < C; c++) {
            float xh = (float)((xr[c] - mu) * rs);
            yr[c] = xh * (w ? w[c] : 1.0f) + (b ? b[c] : 0.0f);
        }
    }
}

/* dw[c] += sum_r dout[r,c] * xhat[r,c];  db[c] += sum_r dout[r,c]. One thread per column,
 * rows summed in order, so the result does not depend on the thread count. */
static void affine_grads(float *dw, float *db, const float *dout, const float *x, const float *mean,
                         const float *rstd, int64_t rows, int64_t C) {
#pragma omp parallel for
    for (int64_t c = 0; c < C; c++) {
        double sw = 0, sb = 0;
        for (int64_t r = 0; r < rows; r++) {
            double g = dout[r * C + c];
            double xh = ((double)x[r * C + c] - (mean ? mean[r] : 0.0f)) * rstd[r];
            sw += g * xh;
            sb += g;
        }
        if (dw) dw[c] += (float)sw;
        if (db) db[c] += (float)sb;
    }
}

/* dx = rstd * (g - center * mean(g) - xhat * mean(g * xhat)), g = dout * w; center = 0 for RMSNorm */
static void norm_dx(float *dx, const float *dout, const float *x, const float *w, const float *mean,
                    const float *rstd, int64_t rows, int64_t C) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C, *gr = dout + r * C;
        double mu = mean ? mean[r] : 0.0, rs = rstd[r], sg = 0, sgx = 0;
        for (int64_t c = 0; c < C; c++) {
            double g = (double)gr[c] * (w ? w[c] : 1.0f);
            sg += g;
            sgx += g * (xr[c] - mu) * rs;
        }
        double mg = mean ? sg / (double)C : 0.0, mgx = sgx / (double)C;
        for (int64_t c = 0; c < C; c++) {
            double g = (double)gr[c] * (w ? w[c] : 1.0f);
            double xh = (xr[c] - mu) * rs;
            dx[r * C + c] += (float)(rs * (g - mg - xh * mgx));
        }
    }
}

void imb_layernorm_bwd_cpu(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                           const float *mean, const float *rstd, int64_t rows, int64_t C) {
    if (dx) norm_dx(dx, dout, x, w, mean, rstd, rows, C);
    if (dw || db) affine_grads(dw, db, dout, x, mean, rstd, rows, C);
}

void imb_rmsnorm_fwd_cpu(float *out, float *rstd, const float *x, const float *w, int64_t rows, int64_t C, float eps) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += (double)xr[c] * xr[c];
        double rs = 1.0 / sqrt(s / (double)C + eps);
        rstd[r] = (float)rs;
        for (int64_t c = 0; c < C; c++) out[r * C + c] = (float)(xr[c] * rs) * (w ? w[c] : 1.0f);
    }
}

void imb_rmsnorm_bwd_cpu(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                         int64_t rows, int64_t C) {
    if (dx) norm_dx(dx, dout, x, w, NULL, rstd, rows, C);
    if (dw) affine_grads(dw, NULL, dout, x, NULL, rstd, rows, C);
}
