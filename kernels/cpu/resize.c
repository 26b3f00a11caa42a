/* CPU reference bilinear token-grid resampling (align_corners=False). */
#include "../resize.h"

/* source index pair and weight of the second one along one axis */
static void src_index(int o, int in, int out, int *i0, int *i1, float *w1) {
    float s = ((float)o + 0.5f) * (float)in / (float)out - 0.5f;
    if (s < 0) s = 0;
    int a = (int)s;
    if (a > in - 1) a = in - 1;
    *i0 = a;
    *i1 = a + 1 < in ? a + 1 : in - 1;
    *w1 = s - (float)a;
}

void imb_resize_tokens_fwd_cpu(float *out, const float *x, int64_t B, int H, int W, int H2, int W2, int64_t C) {
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < B; b++)
        for (int oy = 0; oy < H2; oy++) {
            int y0, y1, x0, x1;
            float wy, wx;
            src_index(oy, H, H2, &y0, &y1, &wy);
            for (int ox = 0; ox < W2; ox++) {
                src_index(ox, W, W2, &x0, &x1, &wx);
                const float *p00 = x + ((b * H + y0) * W + x0) * C, *p01 = x + ((b * H + y0) * W + x1) * C;
                const float *p10 = x + ((b * H + y1) * W + x0) * C, *p11 = x + ((b * H + y1) * W + x1) * C;
                float *o = out + ((b * H2 + oy) * W2 + ox) * C;
                for (int64_t c = 0; c < C; c++)
                    o[c] = (1 - wy) * ((1 - wx) * p00[c] + wx * p01[c]) + wy * ((1 - wx) * p10[c] + wx * p11[c]);
            }
        }
}

void imb_resize_tokens_bwd_cpu(float *dx, const float *dout, int64_t B, int H, int W, int H2, int W2, int64_t C) {
    /* scatter in a fixed order per batch row: deterministic, parallel over (b, c) */
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            for (int oy = 0; oy < H2; oy++) {
                int y0, y1, x0, x1;
                float wy, wx;
                src_index(oy, H, H2, &y0, &y1, &wy);
                for (int ox = 0; ox < W2; ox++) {
                    src_index(ox, W, W2, &x0, &x1, &wx);
                    float g = dout[((b * H2 + oy) * W2 + ox) * C + c];
                    dx[((b * H + y0) * W + x0) * C + c] += (1 - wy) * (1 - wx) * g;
                    dx[((b * H + y0) * W + x1) * C + c] += (1 - wy) * wx * g;
                    dx[((b * H + y1) * W + x0) * C + c] += wy * (1 - wx) * g;
                    dx[((b * H + y1) * W + x1) * C + c] += wy * wx * g;
                }
            }
}
