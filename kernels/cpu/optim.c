/* CPU reference AdamW, sum of squares and the clip factor. */
#include "../optim.h"
#include <math.h>

void imb_adamw_cpu(float *p, const float *g, float *m, float *v, const float *decay_mask, const float *update_mask,
                   int64_t n, float b1, float b2, float eps, float wd, const imb_step_in *in, const imb_step_out *out) {
    if (out->skip) return;
    const float lr = in->lr, bc1 = in->bc1, bc2 = in->bc2;
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) {
        if (update_mask[i] == 0.0f) continue;
        float gi = g[i];
        float pi = p[i] * (1.0f - lr * wd * decay_mask[i]);
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float mh = m[i] / bc1, vh = v[i] / bc2;
        p[i] = pi - lr * mh / (sqrtf(vh) + eps);
    }
}

void imb_sumsq_cpu(double *out, const float *x, int64_t n) {
    /* fixed-size chunks summed in order: the same result for any thread count */
    enum { CH = 4096 };
    int64_t nch = (n + CH - 1) / CH;
    double total = 0;
    for (int64_t c0 = 0; c0 < nch; c0 += 256) {
        double part[256];
        int64_t cn = nch - c0 < 256 ? nch - c0 : 256;
#pragma omp parallel for
        for (int64_t c = 0; c < cn; c++) {
            double s = 0;
            int64_t lo = (c0 + c) * CH, hi = lo + CH < n ? lo + CH : n;
            for (int64_t i = lo; i < hi; i++) s += (double)x[i] * x[i];
            part[c] = s;
        }
        for (int64_t c = 0; c < cn; c++) total += part[c];
    }
    *out = total;
}

void imb_clip_factor_cpu(imb_step_out *o, float max_norm) {
    double norm = sqrt(o->sumsq);
    o->skip = !isfinite(norm);
    o->clip_scale = max_norm > 0 && isfinite(norm) && norm > max_norm ? (float)(max_norm / (norm + 1e-6)) : 1.0f;
}

void imb_scale_by_cpu(float *x, int64_t n, const float *factor) {
    const float s = *factor;
    if (s == 1.0f) return;
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) x[i] = s * x[i];
}
