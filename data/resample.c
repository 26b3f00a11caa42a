/* Separable antialiased bilinear resampling (triangle filter scaled by the shrink factor). */
#include "resample.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void imb_resample_work_free(imb_resample_work *w) {
    if (!w) return;
    free(w->buf);
    w->buf = NULL;
    w->cap = 0;
}

static void *work_get(imb_resample_work *w, size_t bytes) {
    if (w->cap < bytes) {
        void *p = realloc(w->buf, bytes);
        if (!p) return NULL;
        w->buf = p;
        w->cap = bytes;
    }
    return w->buf;
}

/* Taps per output pixel for in -> out: the triangle reaches `support` input pixels to each
 * side of the centre, so at most 2 ceil(support) + 1 taps. */
static int taps(int in, int out) {
    double scale = (double)in / out, support = scale > 1.0 ? scale : 1.0;
    return (int)ceil(support) * 2 + 1;
}

/* PIL's precompute_coeffs for output pixels first .. first+count-1 of an in -> out resize:
 * first[i] is the first input pixel used, len[i] the number of taps, wt[i*k ...] the
 * normalised weights. Positions are relative to the box. */
static void coeffs(int in, int out, int first_out, int count, int k, int *first, int *len, float *wt) {
    double scale = (double)in / out, fscale = scale > 1.0 ? scale : 1.0, support = fscale;
    for (int i = 0; i < count; i++) {
        double centre = (first_out + i + 0.5) * scale;
        int lo = (int)(centre - support + 0.5), hi = (int)(centre + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int n = hi - lo;
        if (n > k) n = k;
        double sum = 0.0;
        float *w = wt + (size_t)i * k;
        for (int t = 0; t < n; t++) {
            double x = fabs((t + lo - centre + 0.5) / fscale);
            sum += x < 1.0 ? 1.0 - x : 0.0;
        }
        for (int t = 0; t < k; t++) {
            double x = fabs((t + lo - centre + 0.5) / fscale);
            w[t] = t < n && sum > 0.0 && x < 1.0 ? (float)((1.0 - x) / sum) : 0.0f;
        }
        first[i] = lo;
        len[i] = n;
    }
}

int imb_resample(const uint8_t *src, int sh, int sw, int c, imb_box box, int out_h, int out_w,
                 imb_box win, float *out, imb_resample_work *work) {
    if (!src || !out || !work || c < 1 || box.h < 1 || box.w < 1 || box.y < 0 || box.x < 0 ||
        box.y + box.h > sh || box.x + box.w > sw || out_h < 1 || out_w < 1 || win.h < 1 || win.w < 1 ||
        win.y < 0 || win.x < 0 || win.y + win.h > out_h || win.x + win.w > out_w)
        return -1;
    int kx = taps(box.w, out_w), ky = taps(box.h, out_h);
    size_t nx = (size_t)win.w, ny = (size_t)win.h;
    /* layout: x weights, y weights, then the horizontal pass result */
    size_t wx_b = nx * kx * sizeof(float), wy_b = ny * ky * sizeof(float);
    size_t ix_b = 2 * nx * sizeof(int), iy_b = 2 * ny * sizeof(int);
    size_t fixed = wx_b + wy_b + ix_b + iy_b;
    fixed = (fixed + 63) & ~(size_t)63;
    size_t tmp_b = (size_t)box.h * nx * c * sizeof(float);
    uint8_t *mem = work_get(work, fixed + tmp_b);
    if (!mem) return -1;
    float *wx = (float *)mem, *wy = (float *)(mem + wx_b);
    int *fx = (int *)(mem + wx_b + wy_b), *lx = fx + nx;
    int *fy = (int *)(mem + wx_b + wy_b + ix_b), *ly = fy + ny;
    float *tmp = (float *)(mem + fixed);
    coeffs(box.w, out_w, win.x, win.w, kx, fx, lx, wx);
    coeffs(box.h, out_h, win.y, win.h, ky, fy, ly, wy);

    /* Horizontal pass, only over the box rows the window's vertical taps read. */
    int r0 = fy[0], r1 = fy[ny - 1] + ly[ny - 1];
    size_t srow = (size_t)sw * c, trow = nx * c;
    for (int r = r0; r < r1; r++) {
        const uint8_t *s = src + (size_t)(box.y + r) * srow + (size_t)box.x * c;
        float *t = tmp + (size_t)(r - r0) * trow;
        for (size_t ox = 0; ox < nx; ox++) {
            const float *w = wx + ox * kx;
            const uint8_t *p = s + (size_t)fx[ox] * c;
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int q = 0; q < lx[ox]; q++) acc += w[q] * (float)p[(size_t)q * c + ch];
                t[ox * c + ch] = acc;
            }
        }
    }
    /* Vertical pass into the window. */
    for (size_t oy = 0; oy < ny; oy++) {
        const float *w = wy + oy * ky;
        const float *t = tmp + (size_t)(fy[oy] - r0) * trow;
        float *o = out + oy * trow;
        for (size_t j = 0; j < trow; j++) {
            float acc = 0.0f;
            for (int q = 0; q < ly[oy]; q++) acc += w[q] * t[(size_t)q * trow + j];
            o[j] = acc;
        }
    }
    return 0;
}
