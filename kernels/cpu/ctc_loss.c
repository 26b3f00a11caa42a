/* CPU reference CTC: log-softmax, the alpha and beta recursions in log space (double inside
 * each step), and the gradient through the fused log-softmax. One utterance per thread. */
#include "../ctc_loss.h"
#include <math.h>

/* log(exp(a) + exp(b)) with -inf as the empty sum */
static double lse2(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

/* symbol of extended state s: blank on even states, target (s-1)/2 on odd ones */
static inline int32_t label(const int32_t *y, int64_t s, int blank) { return s & 1 ? y[s >> 1] : blank; }

/* the skip s-2 -> s is allowed into a non-blank state whose symbol differs from s-2's */
static inline int can_skip(const int32_t *y, int64_t s) { return (s & 1) && s >= 3 && y[s >> 1] != y[(s >> 1) - 1]; }

void imb_ctc_fwd_cpu(float *nll, float *logp, float *alpha, const float *logits, const int32_t *in_len,
                     const int32_t *targets, const int32_t *tgt_len, int64_t B, int64_t T, int64_t V, int64_t S,
                     int blank) {
    const int64_t E = 2 * S + 1;
#pragma omp parallel for
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < T; t++) {
            const float *z = logits + (b * T + t) * V;
            float *lp = logp + (b * T + t) * V;
            float mx = z[0];
            for (int64_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
            double se = 0;
            for (int64_t v = 0; v < V; v++) se += exp((double)z[v] - mx);
            double lse = mx + log(se);
            for (int64_t v = 0; v < V; v++) lp[v] = (float)((double)z[v] - lse);
        }
        const int64_t Tb = in_len[b], Eb = 2 * (int64_t)tgt_len[b] + 1;
        const int32_t *y = targets + b * S;
        const float *lp = logp + b * T * V;
        float *a = alpha + b * T * E;
        for (int64_t s = 0; s < Eb; s++) a[s] = s < 2 ? lp[label(y, s, blank)] : -INFINITY;
        for (int64_t t = 1; t < Tb; t++) {
            const float *prev = a + (t - 1) * E;
            float *cur = a + t * E;
            for (int64_t s = 0; s < Eb; s++) {
                double acc = prev[s];
                if (s >= 1) acc = lse2(acc, prev[s - 1]);
                if (can_skip(y, s)) acc = lse2(acc, prev[s - 2]);
                cur[s] = acc == -INFINITY ? -INFINITY : (float)(acc + lp[t * V + label(y, s, blank)]);
            }
        }
        const float *last = a + (Tb - 1) * E;
        double ll = last[Eb - 1];
        if (Eb > 1) ll = lse2(ll, last[Eb - 2]);
        nll[b] = (float)-ll;
    }
}

void imb_ctc_bwd_cpu(float *dlogits, float *beta, const float *logp, const float *alpha, const float *nll,
                     const int32_t *in_len, const int32_t *targets, const int32_t *tgt_len, const float *dloss,
                     int reduction, int64_t B, int64_t T, int64_t V, int64_t S, int blank) {
    const int64_t E = 2 * S + 1;
#pragma omp parallel for
    for (int64_t b = 0; b < B; b++) {
        if (!isfinite(nll[b])) continue;   /* impossible targets: no gradient (zero_infinity or a stopped run) */
        double g = reduction == IMB_CTC_NONE ? dloss[b] : dloss[0];
        if (reduction == IMB_CTC_MEAN) g /= (double)B * (double)(tgt_len[b] > 1 ? tgt_len[b] : 1);
        const int64_t Tb = in_len[b], Eb = 2 * (int64_t)tgt_len[b] + 1;
        const int32_t *y = targets + b * S;
        const float *lp = logp + b * T * V, *a = alpha + b * T * E;
        float *be = beta + b * T * E;
        for (int64_t s = 0; s < Eb; s++) be[(Tb - 1) * E + s] = s >= Eb - 2 ? 0.0f : -INFINITY;
        for (int64_t t = Tb - 2; t >= 0; t--) {
            const float *next = be + (t + 1) * E, *lpn = lp + (t + 1) * V;
            float *cur = be + t * E;
            for (int64_t s = 0; s < Eb; s++) {
                double acc = (double)next[s] + lpn[label(y, s, blank)];
                if (s + 1 < Eb) acc = lse2(acc, (double)next[s + 1] + lpn[label(y, s + 1, blank)]);
                if (s + 2 < Eb && can_skip(y, s + 2)) acc = lse2(acc, (double)next[s + 2] + lpn[label(y, s + 2, blank)]);
                cur[s] = (float)acc;
            }
        }
        /* d logits = g (softmax - occupancy): the log-softmax Jacobian folded in */
        for (int64_t t = 0; t < Tb; t++) {
            float *d = dlogits + (b * T + t) * V;
            for (int64_t v = 0; v < V; v++) d[v] += (float)(g * exp((double)lp[t * V + v]));
            for (int64_t s = 0; s < Eb; s++) {
                double ab = (double)a[t * E + s] + be[t * E + s];
                if (ab != -INFINITY) d[label(y, s, blank)] -= (float)(g * exp(ab + nll[b]));
            }
        }
    }
}

void imb_ctc_reduce_cpu(float *out, const float *nll, const int32_t *tgt_len, int64_t B, int reduction,
                        int zero_infinity) {
    double sum = 0;
    for (int64_t b = 0; b < B; b++) {
        double l = nll[b];
        if (zero_infinity && isinf(l)) l = 0;
        if (reduction == IMB_CTC_NONE) out[b] = (float)l;
        else sum += reduction == IMB_CTC_MEAN ? l / (double)(tgt_len[b] > 1 ? tgt_len[b] : 1) : l;
    }
    if (reduction == IMB_CTC_MEAN) out[0] = (float)(sum / (double)B);
    else if (reduction == IMB_CTC_SUM) out[0] = (float)sum;
}
