/* CPU twins of the step block's kernels: data range check, block reset, scalar keep, fetch. */
#include "../step.h"
#include <math.h>
#include <string.h>

void imb_check_range_cpu(uint64_t *bad, const int32_t *x, int64_t n, int64_t limit, int allow_negative, uint32_t site) {
    for (int64_t i = 0; i < n; i++) {
        int32_t v = x[i];
        if (v < limit && (v >= 0 || allow_negative)) continue;
        uint64_t key = (uint64_t)site << 32 | (uint64_t)i;
        if (key < *bad) *bad = key;
        return;
    }
}

void imb_step_reset_cpu(imb_step_out *o) {
    o->bad = IMB_CHECK_NONE;
    o->sumsq = 0.0;
    o->clip_scale = 1.0f;
    o->skip = 0;
    for (int i = 0; i < IMB_STEP_VALS; i++) o->vals[i] = NAN;
}

void imb_step_keep_cpu(float *dst, const float *src) { *dst = *src; }

void imb_step_fetch_cpu(imb_step_out *host, const imb_step_out *dev) {
    if (host != dev) memcpy(host, dev, sizeof *host);
}
