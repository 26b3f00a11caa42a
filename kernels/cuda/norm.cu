// CUDA LayerNorm / RMSNorm: a block per row with statistics in double (as on the CPU), and
// the affine grads as deterministic column sums.
#include "backend.cuh"
extern "C" {
#include "../elementwise.h"
#include "../norm.h"
}

// Two passes over the row: the one-pass E[x^2] - E[x]^2 loses everything when |mean| >> std.
__global__ static void layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w,
                                     const float *b, int64_t rows, int64_t C, float eps) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * C;
        float *yr = out + r * C;
        double s = 0, v = 0;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += xr[c];
        double mu = imb_block_sum(s) / (double)C;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            double d = xr[c] - mu;
            v += d * d;
        }
        double rs = 1.0 / sqrt(imb_block_sum(v) / (double)C + eps);
        if (threadIdx.x == 0) {
            mean[r] = (float)mu;
            rstd[r] = (float)rs;
        }
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            float xh = (float)((xr[c] - mu) * rs);
            yr[c] = xh * (w ? w[c] : 1.0f) + (b ? b[c] : 0.0f);
        }
    }
}

__global__ static void rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int64_t rows, int64_t C,
                                   float eps) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * C;
        double s = 0;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += (double)xr[c] * xr[c];
        double rs = 1.0 / sqrt(imb_block_sum(s) / (double)C + eps);
        if (threadIdx.x == 0) rstd[r] = (float)rs;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) out[r * C + c] = (float)(xr[c] * rs) * (w ? w[c] : 1.0f);
    }
}

// dx += rstd * (g - center * mean(g) - xhat * mean(g * xhat)), g = dout * w; RMSNorm has no
// centering (mean == NULL).
__global__ static void norm_dx(float *dx, const float *dout, const float *x, const float *w, const float *mean,
                               const float *rstd, int64_t rows, int64_t C) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * C, *gr = dout + r * C;
        double mu = mean ? mean[r] : 0.0, rs = rstd[r], sg = 0, sgx = 0;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            double g = (double)gr[c] * (w ? w[c] : 1.0f);
            sg += g;
            sgx += g * (xr[c] - mu) * rs;
        }
        sg = imb_block_sum(sg);
        sgx = imb_block_sum(sgx);
        double mg = mean ? sg / (double)C : 0.0, mgx = sgx / (double)C;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            double g = (double)gr[c] * (w ? w[c] : 1.0f);
            double xh = (xr[c] - mu) * rs;
            dx[r * C + c] += (float)(rs * (g - mg - xh * mgx));
        }
    }
}

// dw[c] += sum_r dout[r,c] * xhat[r,c]
struct weight_term {
    const float *dout, *x, *mean, *rstd;
    int64_t C;
    __device__ double operator()(int64_t r, int64_t c) const {
        return (double)dout[r * C + c] * (((double)x[r * C + c] - (mean ? mean[r] : 0.0f)) * rstd[r]);
    }
    __device__ int64_t out_index(int64_t c) const { return c; }
};

static void norm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                     const float *mean, const float *rstd, int64_t rows, int64_t C) {
    if (rows <= 0 || C <= 0) return;
    if (dx) IMB_LAUNCH(norm_dx, imb_blocks(rows, 1), imb_row_threads(C), 0, dx, dout, x, w, mean, rstd, rows, C);
    if (dw) imb_colsum(weight_term{ dout, x, mean, rstd, C }, dw, rows, C);
    if (db) imb_colsum_cuda(db, dout, NULL, rows, C);
}

extern "C" {
void imb_layernorm_fwd_cuda(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                            int64_t rows, int64_t C, float eps) {
    if (rows <= 0 || C <= 0) return;
    IMB_LAUNCH(layernorm_fwd, imb_blocks(rows, 1), imb_row_threads(C), 0, out, mean, rstd, x, w, b, rows, C, eps);
}

void imb_layernorm_bwd_cuda(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                            const float *mean, const float *rstd, int64_t rows, int64_t C) {
    norm_bwd(dx, dw, db, dout, x, w, mean, rstd, rows, C);
}

void imb_rmsnorm_fwd_cuda(float *out, float *rstd, const float *x, const float *w, int64_t rows, int64_t C, float eps) {
    if (rows <= 0 || C <= 0) return;
    IMB_LAUNCH(rmsnorm_fwd, imb_blocks(rows, 1), imb_row_threads(C), 0, out, rstd, x, w, rows, C, eps);
}

void imb_rmsnorm_bwd_cuda(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                          int64_t rows, int64_t C) {
    norm_bwd(dx, dw, NULL, dout, x, w, NULL, rstd, rows, C);
}
}
