// CUDA convolutions: im2col/col2im around the cuBLAS GEMM for patch embedding, direct
// depthwise 1-D (causal) and 2-D (same) convs. Gradients are gathered per input element or
// summed per weight by deterministic column sums: no atomics anywhere.
#include "backend.cuh"
extern "C" {
#include "../conv.h"
#include "../matmul.h"
}

// cols [B*Ho*Wo, Cin*kh*kw], one thread per element; taps in the padding read 0
__global__ static void im2col_kernel(imb_conv_geom g, float *cols, const float *x) {
    const int64_t K = g.Cin * g.kh * g.kw;
    IMB_FOR(i, g.B * g.Ho * g.Wo * K) {
        int64_t m = i / K, q = i - m * K;
        int64_t ox = m % g.Wo, oy = m / g.Wo % g.Ho, b = m / (g.Wo * g.Ho);
        int64_t kx = q % g.kw, ky = q / g.kw % g.kh, ci = q / (g.kw * g.kh);
        int64_t iy = oy * g.stride - g.pad + ky, ix = ox * g.stride - g.pad + kx;
        cols[i] = iy >= 0 && iy < g.H && ix >= 0 && ix < g.W ? x[((b * g.Cin + ci) * g.H + iy) * g.W + ix] : 0.0f;
    }
}

// dx [B, Cin, H, W] += every tap that read this pixel: a gather, so overlapping windows
// (stride < kernel) need no atomics
__global__ static void col2im_kernel(imb_conv_geom g, float *dx, const float *dcols) {
    const int64_t K = g.Cin * g.kh * g.kw;
    IMB_FOR(i, g.B * g.Cin * g.H * g.W) {
        int64_t ix = i % g.W, iy = i / g.W % g.H, ci = i / (g.W * g.H) % g.Cin, b = i / (g.W * g.H * g.Cin);
        float acc = 0.0f;
        for (int64_t ky = 0; ky < g.kh; ky++) {
            int64_t ty = iy + g.pad - ky;
            if (ty < 0 || ty % g.stride || ty / g.stride >= g.Ho) continue;
            for (int64_t kx = 0; kx < g.kw; kx++) {
                int64_t tx = ix + g.pad - kx;
                if (tx < 0 || tx % g.stride || tx / g.stride >= g.Wo) continue;
                int64_t m = (b * g.Ho + ty / g.stride) * g.Wo + tx / g.stride;
                acc += dcols[m * K + (ci * g.kh + ky) * g.kw + kx];
            }
        }
        dx[i] += acc;
    }
}

// out[n, t, c] = b[c] + sum_k w[c, k] x[n, t + k - (K-1), c]
__global__ static void dw1_fwd(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t L,
                               int64_t C, int64_t K) {
    IMB_FOR(i, B * L * C) {
        int64_t c = i % C, r = i / C, t = r % L;
        float acc = b ? b[c] : 0.0f;
        for (int64_t k = 0; k < K; k++)
            if (t + k - (K - 1) >= 0) acc += w[c * K + k] * x[(r + k - (K - 1)) * C + c];
        out[i] = acc;
    }
}

// dx[n, s, c] += sum_k w[c, k] dout[n, s + (K-1) - k, c]
__global__ static void dw1_dx(float *dx, const float *w, const float *dout, int64_t B, int64_t L, int64_t C, int64_t K) {
    IMB_FOR(i, B * L * C) {
        int64_t c = i % C, r = i / C, s = r % L;
        float acc = dx[i];
        for (int64_t k = 0; k < K; k++)
            if (s + (K - 1) - k < L) acc += w[c * K + k] * dout[(r + (K - 1) - k) * C + c];
        dx[i] = acc;
    }
}

// dw[c, k] over rows i = n*L + t; column j = k*C + c puts neighbouring threads on
// neighbouring channels, so the reads coalesce
struct dw1_term {
    const float *x, *dout;
    int64_t L, C, K;
    __device__ double operator()(int64_t i, int64_t j) const {
        int64_t k = j / C, c = j - k * C;
        if (i % L + k - (K - 1) < 0) return 0.0;
        return (double)dout[i * C + c] * x[(i + k - (K - 1)) * C + c];
    }
    __device__ int64_t out_index(int64_t j) const { return (j % C) * K + j / C; }
};

__global__ static void dw2_fwd(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t H,
                               int64_t W, int64_t C, int64_t k) {
    int64_t pd = k / 2;
    IMB_FOR(i, B * H * W * C) {
        int64_t c = i % C, p = i / C, xx = p % W, y = p / W % H;
        float acc = b ? b[c] : 0.0f;
        for (int64_t ky = 0; ky < k; ky++) {
            int64_t iy = y + ky - pd;
            if (iy < 0 || iy >= H) continue;
            for (int64_t kx = 0; kx < k; kx++) {
                int64_t ix = xx + kx - pd;
                if (ix >= 0 && ix < W) acc += w[(c * k + ky) * k + kx] * x[(p + (iy - y) * W + (ix - xx)) * C + c];
            }
        }
        out[i] = acc;
    }
}

__global__ static void dw2_dx(float *dx, const float *w, const float *dout, int64_t B, int64_t H, int64_t W, int64_t C,
                              int64_t k) {
    int64_t pd = k / 2;
    IMB_FOR(i, B * H * W * C) {
        int64_t c = i % C, p = i / C, ix = p % W, iy = p / W % H;
        float acc = dx[i];
        for (int64_t ky = 0; ky < k; ky++) {
            int64_t y = iy - ky + pd;
            if (y < 0 || y >= H) continue;
            for (int64_t kx = 0; kx < k; kx++) {
                int64_t xx = ix - kx + pd;
                if (xx >= 0 && xx < W) acc += w[(c * k + ky) * k + kx] * dout[(p + (y - iy) * W + (xx - ix)) * C + c];
            }
        }
        dx[i] = acc;
    }
}

// dw[c, ky, kx] over rows i = (n*H + y)*W + x; column j = (ky*k + kx)*C + c (coalesced)
struct dw2_term {
    const float *x, *dout;
    int64_t H, W, C, k;
    __device__ double operator()(int64_t i, int64_t j) const {
        int64_t tap = j / C, c = j - tap * C, ky = tap / k, kx = tap - ky * k, pd = k / 2;
        int64_t xx = i % W, y = i / W % H, iy = y + ky - pd, ix = xx + kx - pd;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) return 0.0;
        return (double)dout[i * C + c] * x[(i + (iy - y) * W + (ix - xx)) * C + c];
    }
    __device__ int64_t out_index(int64_t j) const { return (j % C) * k * k + j / C; }
};

extern "C" {
void imb_im2col_cuda(const imb_conv_geom *g, float *cols, const float *x) {
    int64_t n = g->B * g->Ho * g->Wo * g->Cin * g->kh * g->kw;
    if (n <= 0) return;
    IMB_LAUNCH(im2col_kernel, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, *g, cols, x);
}

void imb_col2im_cuda(const imb_conv_geom *g, float *dx, const float *dcols) {
    int64_t n = g->B * g->Cin * g->H * g->W;
    if (n <= 0) return;
    IMB_LAUNCH(col2im_kernel, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, *g, dx, dcols);
}

void imb_patch_embed_fwd_cuda(const imb_conv_geom *g, float *out, float *cols, const float *x, const float *w,
                              const float *b) {
    int64_t M = g->B * g->Ho * g->Wo, K = g->Cin * g->kh * g->kw;
    imb_im2col_cuda(g, cols, x);
    imb_gemm_cuda(0, 1, M, g->Cout, K, 1.0f, cols, w, 0.0f, out, 1, 0, 0, 0);
    if (b) imb_bias_add_cuda(out, b, M, g->Cout);
}

void imb_patch_embed_bwd_cuda(const imb_conv_geom *g, float *dx, float *dw, float *db, float *dcols,
                              const float *cols, const float *w, const float *dout) {
    int64_t M = g->B * g->Ho * g->Wo, K = g->Cin * g->kh * g->kw;
    // dW [Cout, K] = dYᵀ cols: PyTorch's weight layout directly
    if (dw) imb_gemm_cuda(1, 0, g->Cout, K, M, 1.0f, dout, cols, 1.0f, dw, 1, 0, 0, 0);
    if (db) imb_bias_grad_cuda(db, dout, M, g->Cout);
    if (dx) {
        imb_gemm_cuda(0, 0, M, K, g->Cout, 1.0f, dout, w, 0.0f, dcols, 1, 0, 0, 0);
        imb_col2im_cuda(g, dx, dcols);
    }
}

void imb_dwconv1d_fwd_cuda(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t L,
                           int64_t C, int64_t K) {
    int64_t n = B * L * C;
    if (n <= 0) return;
    IMB_LAUNCH(dw1_fwd, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, out, x, w, b, B, L, C, K);
}

void imb_dwconv1d_bwd_cuda(float *dx, float *dw, float *db, const float *x, const float *w, const float *dout,
                           int64_t B, int64_t L, int64_t C, int64_t K) {
    int64_t n = B * L * C;
    if (n <= 0) return;
    if (dx) IMB_LAUNCH(dw1_dx, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, dx, w, dout, B, L, C, K);
    if (dw) imb_colsum(dw1_term{ x, dout, L, C, K }, dw, B * L, C * K);
    if (db) imb_bias_grad_cuda(db, dout, B * L, C);
}

void imb_dwconv2d_fwd_cuda(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t H,
                           int64_t W, int64_t C, int64_t k) {
    int64_t n = B * H * W * C;
    if (n <= 0) return;
    IMB_LAUNCH(dw2_fwd, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, out, x, w, b, B, H, W, C, k);
}

void imb_dwconv2d_bwd_cuda(float *dx, float *dw, float *db, const float *x, const float *w, const float *dout,
                           int64_t B, int64_t H, int64_t W, int64_t C, int64_t k) {
    int64_t n = B * H * W * C;
    if (n <= 0) return;
    if (dx) IMB_LAUNCH(dw2_dx, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, dx, w, dout, B, H, W, C, k);
    if (dw) imb_colsum(dw2_term{ x, dout, H, W, C, k }, dw, B * H * W, C * k * k);
    if (db) imb_bias_grad_cuda(db, dout, B * H * W, C);
}
}
