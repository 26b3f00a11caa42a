/* Class-dependent synthetic images: one shape per class over a random background, plus noise. */
#include "rng.h"
#include "synth.h"
#include <math.h>

typedef struct shape {
    int cls;
    double cx, cy, r, t, p;   /* centre, radius, stroke thickness, stripe period */
} shape;

static int in_box(double dx, double dy, double half) {
    return fabs(dx) <= half && fabs(dy) <= half;
}

static int even(double v) {
    return ((long)floor(v)) % 2 == 0;
}

/* Is the pixel centre at offset (dx, dy) from the shape's centre inside the shape? */
static int inside(const shape *s, double dx, double dy) {
    double r = s->r, t = s->t, p = s->p, d = sqrt(dx * dx + dy * dy);
    switch (s->cls) {
    case 0: return d <= r;
    case 1: return in_box(dx, dy, 0.85 * r);
    case 2: return (fabs(dx) <= t / 2 && fabs(dy) <= r) || (fabs(dy) <= t / 2 && fabs(dx) <= r);
    case 3: return in_box(dx, dy, r) && even((dy + r) / p);
    case 4: return in_box(dx, dy, r) && even((dx + r) / p);
    case 5: return d <= r && d >= r - t;
    case 6: return dy >= -r && dy <= r && fabs(dx) <= (dy + r) / 2;
    case 7: return in_box(dx, dy, r) && even((dx + dy + 2 * r) / (1.4 * p));
    case 8: return in_box(dx, dy, r) && (fabs(dx - dy) <= 0.7 * t || fabs(dx + dy) <= 0.7 * t);
    case 9: return in_box(dx, dy, r) && even((dx + r) / p) == even((dy + r) / p);
    default: return in_box(dx, dy, 0.85 * r) && !in_box(dx, dy, 0.85 * r - t);
    }
}

static uint8_t clamp8(double v) {
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
}

int imb_synth_image(int cls, int h, int w, int c, uint64_t seed, uint64_t index, imb_image *out) {
    if (cls < 0 || cls >= IMB_SYNTH_NSHAPES || (c != 1 && c != 3) || h < 8 || w < 8) return -1;
    if (imb_image_alloc(out, h, w, c) != 0) return -1;
    /* one RNG stream per (class, image); draws 0..15 are the parameters, 64+ the noise */
    uint64_t stream = imb_hash64((uint64_t)cls * 0x9E3779B97F4A7C15ull ^ index);
    uint64_t k = 0;
#define U() imb_rng_uniform(seed, stream, k++)
    int m = h < w ? h : w;
    shape s = {.cls = cls};
    s.r = m * (0.2 + 0.15 * U());
    s.t = fmax(2.0, s.r / 2.5);
    s.p = 3.0 + 3.0 * U();
    s.cx = s.r + (w - 2 * s.r) * U();
    s.cy = s.r + (h - 2 * s.r) * U();
    /* the luminance gap between shape and background is kept large, the hue is free */
    int dark_bg = U() < 0.5f;
    double bg_l = 20 + 70 * U(), fg_l = 170 + 70 * U();
    if (!dark_bg) {
        bg_l = 255 - bg_l;
        fg_l = 255 - fg_l;
    }
    double bg[3], fg[3];
    for (int ch = 0; ch < 3; ch++) {
        bg[ch] = bg_l + 60 * (U() - 0.5);
        fg[ch] = fg_l + 60 * (U() - 0.5);
    }
    k = 64;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int on = inside(&s, x + 0.5 - s.cx, y + 0.5 - s.cy);
            for (int ch = 0; ch < c; ch++) {
                double base = c == 1 ? (on ? fg_l : bg_l) : (on ? fg[ch] : bg[ch]);
                out->px[((size_t)y * w + x) * c + ch] = clamp8(base + 32 * (U() - 0.5));
            }
        }
#undef U
    return 0;
}
