/* CPU reference activations (and exp) and their derivatives. */
#include "../activation.h"
#include <math.h>

static inline float act(imb_act_kind k, float x) {
    switch (k) {
    case IMB_ACT_GELU: return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    case IMB_ACT_SILU: return x / (1.0f + expf(-x));
    case IMB_ACT_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
    case IMB_ACT_EXP: return expf(x);
    }
    return 0;
}

static inline float dact(imb_act_kind k, float x) {
    switch (k) {
    case IMB_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
        float pdf = expf(-0.5f * x * x) * 0.3989422804014327f;
        return cdf + x * pdf;
    }
    case IMB_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    case IMB_ACT_SOFTPLUS: return x > 20.0f ? 1.0f : 1.0f / (1.0f + expf(-x));
    case IMB_ACT_EXP: return expf(x);
    }
    return 0;
}

void imb_act_fwd_cpu(imb_act_kind kind, float *out, const float *x, int64_t n) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) out[i] = act(kind, x[i]);
}

void imb_act_bwd_cpu(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) dx[i] += dout[i] * dact(kind, x[i]);
}

void imb_act_grad_cpu(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) dx[i] = 0.0f + dout[i] * dact(kind, x[i]);
}
