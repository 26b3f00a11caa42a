/* CPU reference convolutions: im2col/col2im + cblas GEMM for patch embedding, direct
 * loops for the depthwise 1-D and 2-D convs on token layouts. */
#include "../conv.h"
#include "../matmul.h"

void imb_im2col_cpu(const imb_conv_geom *g, float *cols, const float *x) {
    const int64_t B = g->B, Cin = g->Cin, H = g->H, W = g->W, kh = g->kh, kw = g->kw, Ho = g->Ho, Wo = g->Wo;
    const int64_t K = Cin * kh * kw;
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < B; b++)
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                float *row = cols + ((b * Ho + oy) * Wo + ox) * K;
                for (int64_t ci = 0; ci < Cin; ci++) {
                    const float *plane = x + (b * Cin + ci) * H * W;
                    for (int64_t ky = 0; ky < kh; ky++) {
                        int64_t iy = oy * g->stride - g->pad + ky;
                        for (int64_t kx = 0; kx < kw; kx++) {
                            int64_t ix = ox * g->stride - g->pad + kx;
                            *row++ = iy >= 0 && iy < H && ix >= 0 && ix < W ? plane[iy * W + ix] : 0.0f;
                        }
                    }
                }
            }
}

/* Overlapping windows (stride < kernel) send several taps to one input pixel, so threads
 * own whole (b, cin) planes of dx and each pixel's sum is taken in a fixed order. */
void imb_col2im_cpu(const imb_conv_geom *g, float *dx, const float *dcols) {
    const int64_t B = g->B, Cin = g->Cin, H = g->H, W = g->W, kh = g->kh, kw = g->kw, Ho = g->Ho, Wo = g->Wo;
    const int64_t K = Cin * kh * kw;
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < B; b++)
        for (int64_t ci = 0; ci < Cin; ci++) {
            float *plane = dx + (b * Cin + ci) * H * W;
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    const float *row = dcols + ((b * Ho + oy) * Wo + ox) * K + ci * kh * kw;
                    for (int64_t ky = 0; ky < kh; ky++) {
                        int64_t iy = oy * g->stride - g->pad + ky;
                        if (iy < 0 || iy >= H) continue;
                        for (int64_t kx = 0; kx < kw; kx++) {
                            int64_t ix = ox * g->stride - g->pad + kx;
                            if (ix >= 0 && ix < W) plane[iy * W + ix] += row[ky * kw + kx];
                        }
                    }
                }
        }
}

void imb_patch_embed_fwd_cpu(const imb_conv_geom *g, float *out, float *cols, const float *x, const float *w,
                             const float *b) {
    int64_t M = g->B * g->Ho * g->Wo, K = g->Cin * g->kh * g->kw;
    imb_im2col_cpu(g, cols, x);
    imb_gemm_cpu(0, 1, M, g->Cout, K, 1.0f, cols, w, 0.0f, out, 1, 0, 0, 0);
    if (b) imb_bias_add_cpu(out, b, M, g->Cout);
}

void imb_patch_embed_bwd_cpu(const imb_conv_geom *g, float *dx, float *dw, float *db, float *dcols,
                             const float *cols, const float *w, const float *dout) {
    int64_t M = g->B * g->Ho * g->Wo, K = g->Cin * g->kh * g->kw;
    /* dW [Cout, K] = dYᵀ cols: PyTorch's weight layout directly, no transpose afterwards */
    if (dw) imb_gemm_cpu(1, 0, g->Cout, K, M, 1.0f, dout, cols, 1.0f, dw, 1, 0, 0, 0);
    if (db) imb_bias_grad_cpu(db, dout, M, g->Cout);
    if (dx) {
        imb_gemm_cpu(0, 0, M, K, g->Cout, 1.0f, dout, w, 0.0f, dcols, 1, 0, 0, 0);
        imb_col2im_cpu(g, dx, dcols);
    }
}

/* out[b, t, c] = bias[c] + sum_k w[c, k] x[b, t + k - (K-1), c]: PyTorch's Conv1d with
 * padding K-1, truncated to the first L outputs (Mamba's conv1d). */
void imb_dwconv1d_fwd_cpu(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t L,
                          int64_t C, int64_t K) {
#pragma omp parallel for collapse(2)
    for (int64_t n = 0; n < B; n++)
        for (int64_t t = 0; t < L; t++) {
            float *o = out + (n * L + t) * C;
            for (int64_t c = 0; c < C; c++) o[c] = b ? b[c] : 0.0f;
            for (int64_t k = 0; k < K; k++) {
                int64_t s = t + k - (K - 1);
                if (s < 0) continue;
                const float *xs = x + (n * L + s) * C;
                for (int64_t c = 0; c < C; c++) o[c] += w[c * K + k] * xs[c];
            }
        }
}

/* dx is gathered per input position (no two threads write the same element); dw and db
 * are summed per channel in double, in a fixed order. */
void imb_dwconv1d_bwd_cpu(float *dx, float *dw, float *db, const float *x, const float *w, const float *dout,
                          int64_t B, int64_t L, int64_t C, int64_t K) {
    if (dx) {
#pragma omp parallel for collapse(2)
        for (int64_t n = 0; n < B; n++)
            for (int64_t s = 0; s < L; s++) {
                float *d = dx + (n * L + s) * C;
                for (int64_t k = 0; k < K; k++) {
                    int64_t t = s + (K - 1) - k;
                    if (t >= L) continue;
                    const float *dy = dout + (n * L + t) * C;
                    for (int64_t c = 0; c < C; c++) d[c] += w[c * K + k] * dy[c];
                }
            }
    }
    if (dw || db) {
#pragma omp parallel for
        for (int64_t c = 0; c < C; c++) {
            for (int64_t k = 0; dw && k < K; k++) {
                double acc = 0;
                for (int64_t n = 0; n < B; n++)
                    for (int64_t t = 0; t < L; t++) {
                        int64_t s = t + k - (K - 1);
                        if (s >= 0) acc += (double)dout[(n * L + t) * C + c] * x[(n * L + s) * C + c];
                    }
                dw[c * K + k] += (float)acc;
            }
            if (db) {
                double acc = 0;
                for (int64_t i = 0; i < B * L; i++) acc += dout[i * C + c];
                db[c] += (float)acc;
            }
        }
    }
}

void imb_dwconv2d_fwd_cpu(float *out, const float *x, const float *w, const float *b, int64_t B, int64_t H,
                          int64_t W, int64_t C, int64_t k) {
    int64_t p = k / 2;
#pragma omp parallel for collapse(2)
    for (int64_t n = 0; n < B; n++)
        for (int64_t y = 0; y < H; y++)
            for (int64_t xx = 0; xx < W; xx++) {
                float *o = out + ((n * H + y) * W + xx) * C;
                for (int64_t c = 0; c < C; c++) o[c] = b ? b[c] : 0.0f;
                for (int64_t ky = 0; ky < k; ky++) {
                    int64_t iy = y + ky - p;
                    if (iy < 0 || iy >= H) continue;
                    for (int64_t kx = 0; kx < k; kx++) {
                        int64_t ix = xx + kx - p;
                        if (ix < 0 || ix >= W) continue;
                        const float *xs = x + ((n * H + iy) * W + ix) * C;
                        for (int64_t c = 0; c < C; c++) o[c] += w[(c * k + ky) * k + kx] * xs[c];
                    }
                }
            }
}

/* Same ownership rule as the 1-D backward: dx gathered per input pixel, dw/db per channel. */
void imb_dwconv2d_bwd_cpu(float *dx, float *dw, float *db, const float *x, const float *w, const float *dout,
                          int64_t B, int64_t H, int64_t W, int64_t C, int64_t k) {
    int64_t p = k / 2;
    if (dx) {
#pragma omp parallel for collapse(2)
        for (int64_t n = 0; n < B; n++)
            for (int64_t iy = 0; iy < H; iy++)
                for (int64_t ix = 0; ix < W; ix++) {
                    float *d = dx + ((n * H + iy) * W + ix) * C;
                    for (int64_t ky = 0; ky < k; ky++) {
                        int64_t y = iy - ky + p;
                        if (y < 0 || y >= H) continue;
                        for (int64_t kx = 0; kx < k; kx++) {
                            int64_t xx = ix - kx + p;
                            if (xx < 0 || xx >= W) continue;
                            const float *dy = dout + ((n * H + y) * W + xx) * C;
                            for (int64_t c = 0; c < C; c++) d[c] += w[(c * k + ky) * k + kx] * dy[c];
                        }
                    }
                }
    }
    if (dw || db) {
#pragma omp parallel for
        for (int64_t c = 0; c < C; c++) {
            for (int64_t ky = 0; dw && ky < k; ky++)
                for (int64_t kx = 0; kx < k; kx++) {
                    double acc = 0;
                    for (int64_t n = 0; n < B; n++)
                        for (int64_t y = 0; y < H; y++) {
                            int64_t iy = y + ky - p;
                            if (iy < 0 || iy >= H) continue;
                            for (int64_t xx = 0; xx < W; xx++) {
                                int64_t ix = xx + kx - p;
                                if (ix >= 0 && ix < W)
                                    acc += (double)dout[((n * H + y) * W + xx) * C + c] * x[((n * H + iy) * W + ix) * C + c];
                            }
                        }
                    dw[(c * k + ky) * k + kx] += (float)acc;
                }
            if (db) {
                double acc = 0;
                for (int64_t i = 0; i < B * H * W; i++) acc += dout[i * C + c];
                db[c] += (float)acc;
            }
        }
    }
}
