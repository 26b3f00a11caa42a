/* timm-style per-sample transforms: RandomResizedCrop + flip for training, resize + centre crop for eval. */
#include "transform.h"
#include "fileio.h"
#include "rng.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps augmentation draws apart from every other user of the same seed (e.g. the loader's
 * shuffle). */
#define AUG_TAG 0x6175676d656e7431ull
enum { TRIES = 10, DRAW_FLIP = 4 * TRIES };

void imb_transform_defaults(imb_transform_opts *o, int size, int train) {
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memset(o, 0, sizeof *o);
    o->size = size;
    o->channels = 3;
    o->train = train;
    o->augment = 1;
    o->scale[0] = 0.08;
    o->scale[1] = 1.0;
    o->ratio[0] = 3.0 / 4.0;
    o->ratio[1] = 4.0 / 3.0;
    o->hflip = 0.5;
    o->crop_pct = 0.875;
    memcpy(o->mean, mean, sizeof mean);
    memcpy(o->std, std, sizeof std);
}

int imb_transform_check(const imb_transform_opts *o, char *err, size_t errn) {
    if (!o) return imb_errf(err, errn, "transform: no options");
    if (o->size < 1 || o->size > 16384) return imb_errf(err, errn, "transform: size: %d outside [1, 16384]", o->size);
    if (o->channels != 1 && o->channels != 3) return imb_errf(err, errn, "transform: channels: %d, need 1 or 3", o->channels);
    if (!(o->scale[0] > 0.0 && o->scale[0] <= o->scale[1]))
        return imb_errf(err, errn, "transform: scale: (%g, %g) is not a range in (0, inf)", o->scale[0], o->scale[1]);
    if (!(o->ratio[0] > 0.0 && o->ratio[0] <= o->ratio[1]))
        return imb_errf(err, errn, "transform: ratio: (%g, %g) is not a range in (0, inf)", o->ratio[0], o->ratio[1]);
    if (!(o->hflip >= 0.0 && o->hflip <= 1.0)) return imb_errf(err, errn, "transform: hflip: %g outside [0, 1]", o->hflip);
    /* above 1 the resized image would be smaller than the crop and need padding */
    if (!(o->crop_pct > 0.0 && o->crop_pct <= 1.0))
        return imb_errf(err, errn, "transform: crop_pct: %g outside (0, 1]", o->crop_pct);
    for (int c = 0; c < o->channels; c++)
        if (!(o->std[c] > 0.0f) || !isfinite(o->mean[c]))
            return imb_errf(err, errn, "transform: std/mean: channel %d has mean %g std %g", c, o->mean[c], o->std[c]);
    return 0;
}

size_t imb_transform_out_len(const imb_transform_opts *o) {
    return (size_t)o->channels * (size_t)o->size * (size_t)o->size;
}

void imb_transform_crop(const imb_transform_opts *o, int h, int w, uint64_t seed, uint64_t epoch,
                        uint64_t index, imb_box *box, int *flip) {
    uint64_t stream = imb_hash64(imb_hash64(epoch ^ AUG_TAG) + index);
    double area = (double)h * w, lr0 = log(o->ratio[0]), lr1 = log(o->ratio[1]);
    int found = 0;
    for (int t = 0; t < TRIES && !found; t++) {
        double target = area * (o->scale[0] + (o->scale[1] - o->scale[0]) * imb_rng_uniform(seed, stream, 4 * t));
        double ar = exp(lr0 + (lr1 - lr0) * imb_rng_uniform(seed, stream, 4 * t + 1));
        /* nearbyint rounds half to even, as Python's round() does */
        int cw = (int)nearbyint(sqrt(target * ar)), ch = (int)nearbyint(sqrt(target / ar));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            box->y = (int)imb_rng_below(seed, stream, 4 * t + 2, (uint32_t)(h - ch + 1));
            box->x = (int)imb_rng_below(seed, stream, 4 * t + 3, (uint32_t)(w - cw + 1));
            box->h = ch;
            box->w = cw;
            found = 1;
        }
    }
    if (!found) {
        /* torchvision's fallback: the largest centred box whose aspect is inside the range */
        double in_ratio = (double)w / h;
        int cw = w, ch = h;
        if (in_ratio < o->ratio[0]) ch = (int)nearbyint(w / o->ratio[0]);
        else if (in_ratio > o->ratio[1]) cw = (int)nearbyint(h * o->ratio[1]);
        if (ch < 1) ch = 1;
        if (ch > h) ch = h;
        if (cw < 1) cw = 1;
        if (cw > w) cw = w;
        *box = (imb_box){.y = (h - ch) / 2, .x = (w - cw) / 2, .h = ch, .w = cw};
    }
    *flip = o->hflip > 0.0 && imb_rng_uniform(seed, stream, DRAW_FLIP) < o->hflip;
}

void imb_transform_work_free(imb_transform_work *w) {
    if (!w) return;
    imb_resample_work_free(&w->rs);
    free(w->luma);
    free(w->hwc);
    memset(w, 0, sizeof *w);
}

static void *grow(void *p, size_t *cap, size_t bytes, int *ok) {
    if (*cap >= bytes) return p;
    void *q = realloc(p, bytes);
    if (!q) {
        *ok = 0;
        return p;
    }
    *cap = bytes;
    return q;
}

/* PIL's RGB -> L: fixed-point ITU-R 601 weights, rounded. */
static void to_luma(const imb_image *src, imb_box b, uint8_t *dst) {
    for (int y = 0; y < b.h; y++) {
        const uint8_t *p = src->px + ((size_t)(b.y + y) * src->w + b.x) * 3;
        uint8_t *d = dst + (size_t)y * b.w;
        for (int x = 0; x < b.w; x++, p += 3)
            d[x] = (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
    }
}

/* Source box, virtual output grid and window for this sample. */
static void plan(const imb_transform_opts *o, const imb_image *src, uint64_t seed, uint64_t epoch,
                 uint64_t index, imb_box *box, int *oh, int *ow, imb_box *win, int *flip) {
    int s = o->size, h = src->h, w = src->w;
    *box = (imb_box){0, 0, h, w};
    *win = (imb_box){0, 0, s, s};
    *oh = *ow = s;
    *flip = 0;
    if (o->train) {
        if (o->augment) imb_transform_crop(o, h, w, seed, epoch, index, box, flip);
        return;
    }
    int shrt = (int)floor(s / o->crop_pct);
    if (h <= w) {
        *oh = shrt;
        *ow = (int)((int64_t)shrt * w / h);
    } else {
        *ow = shrt;
        *oh = (int)((int64_t)shrt * h / w);
    }
    win->y = (int)nearbyint((*oh - s) / 2.0);
    win->x = (int)nearbyint((*ow - s) / 2.0);
}

int imb_transform_apply(const imb_transform_opts *o, const imb_image *src, uint64_t seed, uint64_t epoch,
                        uint64_t index, float *out, imb_transform_work *work, char *err, size_t errn) {
    if (!src || !src->px || src->h < 1 || src->w < 1 || (src->c != 1 && src->c != 3))
        return imb_errf(err, errn, "transform: sample %llu: bad image %dx%dx%d", (unsigned long long)index,
                    src ? src->h : 0, src ? src->w : 0, src ? src->c : 0);
    imb_transform_work local = {0}, *wk = work ? work : &local;
    imb_box box, win;
    int oh, ow, flip, s = o->size, cc = src->c, ok = 1;
    plan(o, src, seed, epoch, index, &box, &oh, &ow, &win, &flip);
    const uint8_t *sp = src->px;
    int sh = src->h, sw = src->w;
    if (src->c == 3 && o->channels == 1) {
        /* convert before resampling, as PIL does with .convert('L'), so luma is exact */
        wk->luma = grow(wk->luma, &wk->luma_cap, (size_t)box.h * box.w, &ok);
        if (ok) {
            to_luma(src, box, wk->luma);
            sp = wk->luma;
            sh = box.h;
            sw = box.w;
            box.y = box.x = 0;
            cc = 1;
        }
    }
    size_t plane = (size_t)s * s;
    if (ok) wk->hwc = grow(wk->hwc, &wk->hwc_cap, plane * cc * sizeof(float), &ok);
    int rc = ok ? imb_resample(sp, sh, sw, cc, box, oh, ow, win, wk->hwc, &wk->rs) : -1;
    if (rc == 0) {
        for (int ch = 0; ch < o->channels; ch++) {
            int sc = cc == 1 ? 0 : ch;
            float m = o->mean[ch], sd = o->std[ch];
            float *dst = out + (size_t)ch * plane;
            for (int y = 0; y < s; y++) {
                const float *row = wk->hwc + (size_t)y * s * cc;
                for (int x = 0; x < s; x++) {
                    int xs = flip ? s - 1 - x : x;
                    dst[(size_t)y * s + x] = (row[(size_t)xs * cc + sc] / 255.0f - m) / sd;
                }
            }
        }
    } else {
        imb_errf(err, errn, "transform: sample %llu: %s", (unsigned long long)index,
             ok ? "resample failed" : "out of memory");
    }
    if (wk == &local) imb_transform_work_free(&local);
    return rc;
}
