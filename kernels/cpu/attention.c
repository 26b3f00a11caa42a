/* CPU reference multi-head attention: plain loops, one (batch, head) per OpenMP iteration. */
#include "../attention.h"
#include <math.h>
#include <stdlib.h>

/* Every (b, h) touches only its own head's channels of q/k/v/out and its own block of P,
 * so the (b, h) loop needs no atomics and the sums inside it run in a fixed order. */

static inline int key_kept(const float *key_mask, int64_t b, int64_t Lk, int64_t i, int64_t j, int causal) {
    if (causal && j > i) return 0;
    return !key_mask || key_mask[b * Lk + j] != 0.0f;
}

static inline float dot(const float *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

void imb_attention_fwd_cpu(float *out, float *P, const float *q, const float *k, const float *v,
                           const float *key_mask, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dh,
                           int causal, float scale) {
    int64_t C = H * Dh;
#pragma omp parallel for
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        const float *kb = k + b * Lk * C + h * Dh, *vb = v + b * Lk * C + h * Dh;
        for (int64_t i = 0; i < Lq; i++) {
            const float *qi = q + (b * Lq + i) * C + h * Dh;
            float *oi = out + (b * Lq + i) * C + h * Dh;
            float *pi = P + (bh * Lq + i) * Lk;
            float mx = -INFINITY;
            for (int64_t j = 0; j < Lk; j++) {
                if (!key_kept(key_mask, b, Lk, i, j, causal)) { pi[j] = 0.0f; continue; }
                pi[j] = scale * dot(qi, kb + j * C, Dh);
                mx = pi[j] > mx ? pi[j] : mx;
            }
            for (int64_t d = 0; d < Dh; d++) oi[d] = 0.0f;
            /* no key left for this query: its output and probabilities stay zero */
            if (mx == -INFINITY) continue;
            double sum = 0;
            for (int64_t j = 0; j < Lk; j++)
                if (key_kept(key_mask, b, Lk, i, j, causal)) {
                    pi[j] = expf(pi[j] - mx);
                    sum += pi[j];
                }
            float inv = (float)(1.0 / sum);
            for (int64_t j = 0; j < Lk; j++) {
                if (!key_kept(key_mask, b, Lk, i, j, causal)) continue;
                pi[j] *= inv;
                const float *vj = vb + j * C;
                for (int64_t d = 0; d < Dh; d++) oi[d] += pi[j] * vj[d];
            }
        }
    }
}

void imb_attention_bwd_cpu(float *dq, float *dk, float *dv, const float *dout, const float *P, const float *q,
                           const float *k, const float *v, const float *key_mask, int64_t B, int64_t H, int64_t Lq,
                           int64_t Lk, int64_t Dh, int causal, float scale) {
    int64_t C = H * Dh;
#pragma omp parallel
    {
        /* dP of one query row, computed once and reused for the row sum and for dS */
        float *dp = malloc(sizeof *dp * (size_t)Lk);
#pragma omp for
        for (int64_t bh = 0; bh < B * H; bh++) {
            int64_t b = bh / H, h = bh % H;
            const float *kb = k + b * Lk * C + h * Dh, *vb = v + b * Lk * C + h * Dh;
            for (int64_t i = 0; i < Lq; i++) {
                const float *qi = q + (b * Lq + i) * C + h * Dh, *doi = dout + (b * Lq + i) * C + h * Dh;
                const float *pi = P + (bh * Lq + i) * Lk;
                /* dS = P ⊙ (dP - rowsum(dP ⊙ P)) with dP_j = dout_i · v_j */
                double rowdot = 0;
                for (int64_t j = 0; j < Lk; j++) {
                    dp[j] = key_kept(key_mask, b, Lk, i, j, causal) ? dot(doi, vb + j * C, Dh) : 0.0f;
                    rowdot += (double)pi[j] * dp[j];
                }
                for (int64_t j = 0; j < Lk; j++) {
                    if (!key_kept(key_mask, b, Lk, i, j, causal) || pi[j] == 0.0f) continue;
                    const float *kj = kb + j * C;
                    float ds = (float)(pi[j] * ((double)dp[j] - rowdot)) * scale;
                    if (dq) {
                        float *dqi = dq + (b * Lq + i) * C + h * Dh;
                        for (int64_t d = 0; d < Dh; d++) dqi[d] += ds * kj[d];
                    }
                    if (dk) {
                        float *dkj = dk + (b * Lk + j) * C + h * Dh;
                        for (int64_t d = 0; d < Dh; d++) dkj[d] += ds * qi[d];
                    }
                    if (dv) {
                        float *dvj = dv + (b * Lk + j) * C + h * Dh;
                        for (int64_t d = 0; d < Dh; d++) dvj[d] += pi[j] * doi[d];
                    }
                }
            }
        }
        free(dp);
    }
}
