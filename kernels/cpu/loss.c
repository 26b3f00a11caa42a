/* CPU reference cross-entropy (log-sum-exp in double per row). */
#include "../loss.h"
#include <math.h>

void imb_xent_fwd_cpu(float *rowloss, float *prob, const float *logits, const int32_t *labels, int64_t N, int64_t C,
                      float smoothing) {
#pragma omp parallel for
    for (int64_t i = 0; i < N; i++) {
        const float *z = logits + i * C;
        float mx = z[0];
        for (int64_t c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
        double se = 0, sz = 0;
        for (int64_t c = 0; c < C; c++) { se += exp((double)z[c] - mx); sz += z[c]; }
        double lse = mx + log(se);
        for (int64_t c = 0; c < C; c++) prob[i * C + c] = (float)exp((double)z[c] - lse);
        int32_t y = labels[i];
        if (y < 0) { rowloss[i] = 0; continue; }
        if (y >= C) { rowloss[i] = NAN; continue; }
        double nll = lse - z[y], smooth = lse - sz / (double)C;
        rowloss[i] = (float)((1.0 - smoothing) * nll + smoothing * smooth);
    }
}

void imb_xent_mean_cpu(float *loss, float *scale, const float *rowloss, const int32_t *labels, int64_t N, int64_t C) {
    int64_t kept = 0;
    for (int64_t i = 0; i < N; i++) kept += labels[i] >= 0 && labels[i] < C;
    float inv = kept ? 1.0f / (float)kept : 0.0f;
    double s = 0;
    for (int64_t i = 0; i < N; i++) s += rowloss[i];
    *scale = inv;
    loss[0] = (float)(s * inv);
}

void imb_xent_bwd_cpu(float *dlogits, const float *prob, const int32_t *labels, int64_t N, int64_t C,
                      float smoothing, const float *dloss, const float *scale) {
    float sc = scale[0];
    sc *= dloss[0];
#pragma omp parallel for
    for (int64_t i = 0; i < N; i++) {
        int32_t y = labels[i];
        if (y < 0 || y >= C) continue;
        for (int64_t c = 0; c < C; c++) {
            float target = smoothing / (float)C + (c == y ? 1.0f - smoothing : 0.0f);
            dlogits[i * C + c] += sc * (prob[i * C + c] - target);
        }
    }
}

void imb_sum_cpu(float *out, const float *x, int64_t n, float scale) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    out[0] = (float)(s * scale);
}
