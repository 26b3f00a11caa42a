/* Separable bilinear resize, antialiased when shrinking, computed the way Pillow's
 * Image.resize(size, BILINEAR) computes it, so preprocessing matches timm/torchvision. */
#include "image.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pillow's 8-bit path: weights in 22-bit fixed point (32 - 8 bits of pixel - 2 of headroom),
 * one pass per axis through an 8-bit intermediate; every output is rounded half up and
 * clipped. Integer arithmetic makes it deterministic across
 * compilers and machines. */
#define PREC 22

typedef struct taps {
    int ksize;       /* weights per output sample */
    int *lo;         /* first input index of output i */
    int *cnt;        /* number of inputs used by output i */
    int32_t *k;      /* ksize weights per output */
} taps;

static double triangle(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Output i covers input [i*scale, (i+1)*scale); its centre is (i + 0.5)*scale. When
 * shrinking, the triangle is stretched by the scale so that every input pixel contributes
 * (the antialiasing); when enlarging it is the plain bilinear tent. */
static int make_taps(int in, int out, taps *t) {
    double scale = (double)in / out;
    double fscale = scale > 1.0 ? scale : 1.0;
    double support = 1.0 * fscale;
    t->ksize = (int)ceil(support) * 2 + 1;
    t->lo = malloc(sizeof *t->lo * (size_t)out);
    t->cnt = malloc(sizeof *t->cnt * (size_t)out);
    t->k = calloc((size_t)out * t->ksize, sizeof *t->k);
    double *w = malloc(sizeof *w * (size_t)t->ksize);
    if (!t->lo || !t->cnt || !t->k || !w) {
        free(w);
        return -1;
    }
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int cnt = hi - lo;
        double sum = 0.0;
        for (int x = 0; x < cnt; x++) sum += w[x] = triangle((x + lo - center + 0.5) / fscale);
        for (int x = 0; x < cnt; x++) {
            double v = sum != 0.0 ? w[x] / sum : 0.0;
            t->k[(size_t)i * t->ksize + x] = (int32_t)(v < 0 ? v * (1 << PREC) - 0.5 : v * (1 << PREC) + 0.5);
        }
        t->lo[i] = lo;
        t->cnt[i] = cnt;
    }
    free(w);
    return 0;
}

static void free_taps(taps *t) {
    free(t->lo);
    free(t->cnt);
    free(t->k);
}

static uint8_t clip8(int64_t acc) {
    int64_t v = acc >> PREC;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* dst is h x out_w, src is h x src_w, both with c channels */
static void pass_h(uint8_t *dst, const uint8_t *src, int h, int src_w, int out_w, int c, const taps *t) {
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)y * src_w * c;
        for (int x = 0; x < out_w; x++) {
            const int32_t *k = t->k + (size_t)x * t->ksize;
            for (int ch = 0; ch < c; ch++) {
                int64_t acc = 1 << (PREC - 1);
                for (int j = 0; j < t->cnt[x]; j++) acc += (int64_t)row[(size_t)(t->lo[x] + j) * c + ch] * k[j];
                dst[((size_t)y * out_w + x) * c + ch] = clip8(acc);
            }
        }
    }
}

/* dst is out_h x w, src is src_h x w */
static void pass_v(uint8_t *dst, const uint8_t *src, int out_h, int w, int c, const taps *t) {
    size_t stride = (size_t)w * c;
    for (int y = 0; y < out_h; y++) {
        const int32_t *k = t->k + (size_t)y * t->ksize;
        for (size_t i = 0; i < stride; i++) {
            int64_t acc = 1 << (PREC - 1);
            for (int j = 0; j < t->cnt[y]; j++) acc += (int64_t)src[(size_t)(t->lo[y] + j) * stride + i] * k[j];
            dst[(size_t)y * stride + i] = clip8(acc);
        }
    }
}

int imb_image_resize(const imb_image *in, int h, int w, imb_image *out) {
    memset(out, 0, sizeof *out);
    if (!in || !in->px || in->h <= 0 || in->w <= 0 || in->c <= 0) return -1;
    if (imb_image_alloc(out, h, w, in->c) != 0) return -1;
    int c = in->c, rc = -1;
    taps th = {0}, tv = {0};
    uint8_t *tmp = NULL;
    if (w == in->w && h == in->h) {   /* Pillow copies too: both passes would be the identity */
        memcpy(out->px, in->px, (size_t)h * w * c);
        return 0;
    }
    if (make_taps(in->w, w, &th) != 0 || make_taps(in->h, h, &tv) != 0) goto done;
    /* Pillow (>= 11) runs the vertical pass first when the height shrinks by more than
     * twice as many rows as the width loses columns; the order changes the rounding of the
     * 8-bit intermediate, so we follow it to stay bit-identical. */
    int vertical_first = in->h > h && in->h - h > 2 * (in->w - w);
    if (w == in->w || h == in->h) {
        if (w != in->w) pass_h(out->px, in->px, h, in->w, w, c, &th);
        else pass_v(out->px, in->px, h, w, c, &tv);
    } else if (vertical_first) {
        if (!(tmp = malloc((size_t)h * in->w * c))) goto done;
        pass_v(tmp, in->px, h, in->w, c, &tv);
        pass_h(out->px, tmp, h, in->w, w, c, &th);
    } else {
        if (!(tmp = malloc((size_t)in->h * w * c))) goto done;
        pass_h(tmp, in->px, in->h, in->w, w, c, &th);
        pass_v(out->px, tmp, h, w, c, &tv);
    }
    rc = 0;
done:
    free(tmp);
    free_taps(&th);
    free_taps(&tv);
    if (rc != 0) imb_image_free(out);
    return rc;
}
