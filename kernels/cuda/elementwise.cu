// CUDA elementwise kernels, one thread per element, and the deterministic column sum behind the
// broadcast and bias gradients.
#include "backend.cuh"
extern "C" {
#include "../elementwise.h"
}

// x[i, j] * (w ? w[i, j] : 1) for imb_colsum, in double as on the CPU
struct weighted_col {
    const float *x, *w;
    int64_t N;
    __device__ double operator()(int64_t i, int64_t j) const {
        int64_t k = i * N + j;
        return (double)x[k] * (w ? w[k] : 1.0f);
    }
    __device__ int64_t out_index(int64_t j) const { return j; }
};

__global__ static void add_fwd(float *out, const float *a, const float *b, int64_t n, int64_t nb) {
    IMB_FOR(i, n) out[i] = a[i] + b[imb_mod(i, nb)];
}

__global__ static void mul_fwd(float *out, const float *a, const float *b, int64_t n, int64_t nb) {
    IMB_FOR(i, n) out[i] = a[i] * b[imb_mod(i, nb)];
}

// da += dout * b[i % nb]
__global__ static void mul_bwd_a(float *da, const float *b, const float *dout, int64_t n, int64_t nb) {
    IMB_FOR(i, n) da[i] += dout[i] * b[imb_mod(i, nb)];
}

__global__ static void residual_fwd(float *out, const float *x, const float *y, const float *g, int64_t n, int64_t C) {
    IMB_FOR(i, n) out[i] = x[i] + (g ? g[imb_mod(i, C)] : 1.0f) * y[i];
}

// dst = s * src, or dst += s * src
__global__ static void scale_kernel(float *dst, const float *src, float s, int64_t n, int acc) {
    IMB_FOR(i, n) dst[i] = acc ? dst[i] + s * src[i] : s * src[i];
}

extern "C" {
void imb_colsum_cuda(float *db, const float *x, const float *w, int64_t rows, int64_t N) {
    imb_colsum(weighted_col{ x, w, N }, db, rows, N);
}

void imb_scale_cuda(float *dst, const float *src, float s, int64_t n, int acc) {
    if (n <= 0) return;
    IMB_LAUNCH(scale_kernel, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, dst, src, s, n, acc);
}

void imb_add_fwd_cuda(float *out, const float *a, const float *b, int64_t n, int64_t nb) {
    if (n <= 0) return;
    IMB_LAUNCH(add_fwd, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, out, a, b, n, nb);
}

void imb_add_bwd_cuda(float *da, float *db, const float *dout, int64_t n, int64_t nb) {
    if (n <= 0) return;
    if (da) imb_scale_cuda(da, dout, 1.0f, n, 1);
    if (db) imb_colsum_cuda(db, dout, NULL, n / nb, nb);
}

void imb_mul_fwd_cuda(float *out, const float *a, const float *b, int64_t n, int64_t nb) {
    if (n <= 0) return;
    IMB_LAUNCH(mul_fwd, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, out, a, b, n, nb);
}

void imb_mul_bwd_cuda(float *da, float *db, const float *a, const float *b, const float *dout, int64_t n, int64_t nb) {
    if (n <= 0) return;
    if (da) IMB_LAUNCH(mul_bwd_a, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, da, b, dout, n, nb);
    if (db) imb_colsum_cuda(db, dout, a, n / nb, nb);
}

void imb_residual_fwd_cuda(float *out, const float *x, const float *y, const float *g, int64_t n, int64_t C) {
    if (n <= 0) return;
    IMB_LAUNCH(residual_fwd, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, out, x, y, g, n, C);
}

void imb_residual_bwd_cuda(float *dx, float *dy, float *dg, const float *y, const float *g, const float *dout,
                           int64_t n, int64_t C) {
    if (n <= 0) return;
    if (dx) imb_scale_cuda(dx, dout, 1.0f, n, 1);
    // dy += g[i % C] * dout: mul_bwd_a with g as the broadcast operand (g NULL: plain add)
    if (dy && g) IMB_LAUNCH(mul_bwd_a, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, dy, g, dout, n, C);
    if (dy && !g) imb_scale_cuda(dy, dout, 1.0f, n, 1);
    if (dg) imb_colsum_cuda(dg, dout, y, n / C, C);
}
}
