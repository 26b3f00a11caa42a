/* CPU reference concept-bottleneck kernels: sums in double, every output element summed in a fixed order. */
#include "../concept.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* concept of slot j of token row r, or -1 (unused slot, padding, or an index outside [0, K)) */
static inline int64_t slot_concept(const imb_concept_geom *g, const int32_t *idx, const float *mask, int64_t r,
                                   int64_t j) {
    if (mask && mask[r] == 0.0f) return -1;
    int64_t k = idx ? idx[r * g->S + j] : j;
    return k >= 0 && k < g->K ? k : -1;
}

/* ---- candidate concepts per bucket ---- */

static double sqdist(const float *a, const float *b, int64_t D) {
    double s = 0;
    for (int64_t d = 0; d < D; d++) {
        double t = (double)a[d] - (double)b[d];
        s += t * t;
    }
    return s;
}

void imb_concept_buckets_cpu(int32_t *cand, const float *C, const float *E, int64_t K, int64_t Bk, int64_t D,
                             int kmin) {
    double *dist = malloc(sizeof *dist * (size_t)(K * Bk));
    int32_t *owner = malloc(sizeof *owner * (size_t)K);
    char *taken = malloc((size_t)K);
    if (!dist || !owner || !taken) {   /* no error channel in a raw kernel: leave every bucket empty-safe */
        for (int64_t b = 0; b < Bk; b++) {
            cand[b * (K + 1)] = 1;
            cand[b * (K + 1) + 1] = 0;
            for (int64_t j = 1; j < K; j++) cand[b * (K + 1) + 1 + j] = -1;
        }
        free(dist); free(owner); free(taken);
        return;
    }
    for (int64_t k = 0; k < K; k++) {
        int32_t best = 0;
        for (int64_t b = 0; b < Bk; b++) {
            dist[k * Bk + b] = sqdist(C + k * D, E + b * D, D);
            if (dist[k * Bk + b] < dist[k * Bk + best]) best = (int32_t)b;
        }
        owner[k] = best;
    }
    for (int64_t b = 0; b < Bk; b++) {
        int32_t *row = cand + b * (K + 1), n = 0;
        for (int64_t k = 0; k < K; k++) n += owner[k] == b;
        memset(taken, 0, (size_t)K);
        if (n >= kmin) {
            for (int64_t k = 0; k < K; k++) taken[k] = owner[k] == b;
        } else {
            /* the kmin concepts nearest to this bucket's embedding */
            for (int r = 0; r < kmin; r++) {
                int64_t best = -1;
                for (int64_t k = 0; k < K; k++)
                    if (!taken[k] && (best < 0 || dist[k * Bk + b] < dist[best * Bk + b])) best = k;
                if (best < 0) break;   /* kmin > K: every concept is listed */
                taken[best] = 1;
            }
            n = 0;
            for (int64_t k = 0; k < K; k++) n += taken[k];
        }
        row[0] = n;
        int64_t j = 1;
        for (int64_t k = 0; k < K; k++)
            if (taken[k]) row[j++] = (int32_t)k;
        for (; j <= K; j++) row[j] = -1;
    }
    free(dist); free(owner); free(taken);
}

/* ---- sparse soft assignment ---- */

/* One token: bucket, candidate scores (into sc [K]), softmax, budget, top-k; writes its slots. */
static void assign_row(const imb_concept_geom *g, int64_t r, int32_t *idx, float *val, const float *q,
                       const float *C, const float *hash, const int32_t *cand, const float *mask, double *sc) {
    const int64_t S = g->S, D = g->D, K = g->K;
    int32_t *ir = idx + r * S;
    float *vr = val + r * S;
    for (int64_t j = 0; j < S; j++) { ir[j] = -1; vr[j] = 0.0f; }
    if (mask && mask[r] == 0.0f) return;
    const float *hr = hash + r * g->Bk, *qr = q + r * D;
    int64_t bucket = 0;
    for (int64_t b = 1; b < g->Bk; b++)
        if (hr[b] > hr[bucket]) bucket = b;
    const int32_t *list = cand + bucket * (K + 1) + 1;
    int64_t n = cand[bucket * (K + 1)];
    if (n < 1 || n > K) return;   /* not a list from imb_concept_buckets: leave the row empty */
    for (int64_t j = 0; j < n; j++)
        if (list[j] < 0 || list[j] >= K) return;
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        const float *cr = C + (int64_t)list[j] * D;
        double s = 0;
        for (int64_t d = 0; d < D; d++) s += (double)qr[d] * (double)cr[d];
        sc[j] = s * (double)g->scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    double Z = 0, Zs = 0;
    for (int64_t j = 0; j < n; j++) {
        double e = exp(sc[j] - mx);
        Z += e;
        Zs += e * (sc[j] - mx);
    }
    /* H(A0) = log Z - E[s - mx] */
    double H = log(Z) - Zs / Z, u = n > 1 ? H / log((double)n) : 0.0;
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    int64_t k = (int64_t)round((double)g->kmin + u * (double)(g->kmax - g->kmin));
    k = k < 1 ? 1 : k > n ? n : k;
    k = k > S ? S : k;
    double Zk = 0;
    for (int64_t t = 0; t < k; t++) {
        int64_t best = -1;
        for (int64_t j = 0; j < n; j++)
            if (sc[j] != -INFINITY && (best < 0 || sc[j] > sc[best])) best = j;
        if (best < 0) { k = t; break; }
        ir[t] = list[best];
        double e = exp(sc[best] - mx);
        sc[best] = -INFINITY;
        sc[K + t] = e;   /* the kept exponentials, after the K scores */
        Zk += e;
    }
    for (int64_t t = 0; t < k; t++) vr[t] = (float)(sc[K + t] / Zk);
}

void imb_concept_assign_fwd_cpu(const imb_concept_geom *g, int32_t *idx, float *val, const float *q,
                                const float *C, const float *hash, const int32_t *cand, const float *mask) {
    const int64_t rows = g->B * g->L;
#pragma omp parallel
    {
        double *sc = malloc(sizeof *sc * (size_t)(g->K + g->S));
#pragma omp for
        for (int64_t r = 0; r < rows; r++)
            if (sc) assign_row(g, r, idx, val, q, C, hash, cand, mask, sc);
        free(sc);
    }
}

void imb_concept_assign_bwd_cpu(const imb_concept_geom *g, float *dq, float *dC, float *ws, const float *dval,
                                const int32_t *idx, const float *val, const float *q, const float *C) {
    const int64_t rows = g->B * g->L, S = g->S, D = g->D;
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        const int32_t *ir = idx + r * S;
        const float *vr = val + r * S, *gr = dval + r * S;
        double dot = 0;
        for (int64_t j = 0; j < S; j++)
            if (ir[j] >= 0 && ir[j] < g->K) dot += (double)vr[j] * gr[j];
        for (int64_t j = 0; j < S; j++)
            ws[r * S + j] = ir[j] >= 0 && ir[j] < g->K
                                ? (float)((double)g->scale * (double)vr[j] * ((double)gr[j] - dot)) : 0.0f;
        if (dq)
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t j = 0; j < S; j++)
                    if (ir[j] >= 0 && ir[j] < g->K) s += (double)ws[r * S + j] * C[(int64_t)ir[j] * D + d];
                dq[r * D + d] += (float)s;
            }
    }
    if (dC) {
        /* C is shared by every batch row: one flat batch of B*L tokens */
        imb_concept_geom flat = *g;
        flat.L = g->B * g->L;
        flat.B = 1;
        imb_concept_agg_add_cpu(&flat, dC, idx, ws, q, NULL, 1.0f);
    }
}

/* ---- aggregation and scatter ---- */

/* columns per task: one task sums a column block of every concept of one batch row, tokens in order */
#define AGG_COLS 32

/* acc [K, AGG_COLS] = sum over tokens of a * x[:, c0..c1) for batch row b */
static void agg_block(const imb_concept_geom *g, double *acc, int64_t b, int64_t c0, int64_t c1,
                      const int32_t *idx, const float *val, const float *x, const float *mask) {
    const int64_t L = g->L, S = g->S, D = g->D;
    memset(acc, 0, sizeof *acc * (size_t)(g->K * AGG_COLS));
    for (int64_t i = 0; i < L; i++) {
        int64_t r = b * L + i;
        const float *xr = x + r * D;
        for (int64_t j = 0; j < S; j++) {
            int64_t k = slot_concept(g, idx, mask, r, j);
            if (k < 0) continue;
            double a = val[r * S + j];
            double *ak = acc + k * AGG_COLS - c0;
            for (int64_t c = c0; c < c1; c++) ak[c] += a * xr[c];
        }
    }
}

/* out = acc / cnt (norm) or out += scale * acc */
static void agg_run(const imb_concept_geom *g, float *out, const float *cnt, const int32_t *idx, const float *val,
                    const float *x, const float *mask, int norm, float scale) {
    const int64_t D = g->D, K = g->K, nblk = (D + AGG_COLS - 1) / AGG_COLS;
#pragma omp parallel
    {
        double *acc = malloc(sizeof *acc * (size_t)(K * AGG_COLS));
#pragma omp for collapse(2)
        for (int64_t b = 0; b < g->B; b++)
            for (int64_t blk = 0; blk < nblk; blk++) {
                if (!acc) continue;
                int64_t c0 = blk * AGG_COLS, c1 = c0 + AGG_COLS < D ? c0 + AGG_COLS : D;
                agg_block(g, acc, b, c0, c1, idx, val, x, mask);
                for (int64_t k = 0; k < K; k++) {
                    float *o = out + (b * K + k) * D;
                    for (int64_t c = c0; c < c1; c++)
                        o[c] = norm ? (float)(acc[k * AGG_COLS + c - c0] / cnt[b * K + k])
                                    : o[c] + (float)((double)scale * acc[k * AGG_COLS + c - c0]);
                }
            }
        free(acc);
    }
}

void imb_concept_agg_fwd_cpu(const imb_concept_geom *g, float *out, float *cnt, const int32_t *idx,
                             const float *val, const float *x, const float *mask) {
    const int64_t L = g->L, S = g->S, K = g->K;
#pragma omp parallel for
    for (int64_t b = 0; b < g->B; b++) {
        double *c = calloc((size_t)K, sizeof *c);
        if (!c) continue;
        for (int64_t i = 0; i < L; i++)
            for (int64_t j = 0; j < S; j++) {
                int64_t k = slot_concept(g, idx, mask, b * L + i, j);
                if (k >= 0) c[k] += val[(b * L + i) * S + j];
            }
        for (int64_t k = 0; k < K; k++) cnt[b * K + k] = (float)(c[k] + (double)g->eps);
        free(c);
    }
    agg_run(g, out, cnt, idx, val, x, mask, 1, 1.0f);
}

void imb_concept_agg_add_cpu(const imb_concept_geom *g, float *out, const int32_t *idx, const float *val,
                             const float *x, const float *mask, float scale) {
    agg_run(g, out, NULL, idx, val, x, mask, 0, scale);
}

void imb_concept_agg_bwd_cpu(const imb_concept_geom *g, float *dx, float *dval, const int32_t *idx,
                             const float *val, const float *x, const float *z, const float *cnt, const float *dz,
                             const float *mask) {
    const int64_t rows = g->B * g->L, S = g->S, D = g->D, K = g->K;
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        const int64_t b = r / g->L;
        const float *xr = x + r * D;
        if (dval)
            for (int64_t j = 0; j < S; j++) {
                int64_t k = slot_concept(g, idx, mask, r, j);
                if (k < 0) continue;
                const float *zk = z + (b * K + k) * D, *gk = dz + (b * K + k) * D;
                double s = 0;
                for (int64_t d = 0; d < D; d++) s += ((double)xr[d] - zk[d]) * gk[d];
                dval[r * S + j] += (float)(s / cnt[b * K + k]);
            }
        if (dx)
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t j = 0; j < S; j++) {
                    int64_t k = slot_concept(g, idx, mask, r, j);
                    if (k >= 0) s += (double)val[r * S + j] * dz[(b * K + k) * D + d] / cnt[b * K + k];
                }
                dx[r * D + d] += (float)s;
            }
    }
}

void imb_concept_scatter_fwd_cpu(const imb_concept_geom *g, float *out, const int32_t *idx, const float *val,
                                 const float *z, const float *mask) {
    const int64_t rows = g->B * g->L, S = g->S, D = g->D, K = g->K;
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        const int64_t b = r / g->L;
        for (int64_t d = 0; d < D; d++) {
            double s = 0;
            for (int64_t j = 0; j < S; j++) {
                int64_t k = slot_concept(g, idx, mask, r, j);
                if (k >= 0) s += (double)val[r * S + j] * z[(b * K + k) * D + d];
            }
            out[r * D + d] = (float)s;
        }
    }
}

void imb_concept_scatter_bwd_cpu(const imb_concept_geom *g, float *dz, float *dval, const int32_t *idx,
                                 const float *val, const float *z, const float *dout, const float *mask) {
    const int64_t rows = g->B * g->L, S = g->S, D = g->D, K = g->K;
    if (dval) {
#pragma omp parallel for
        for (int64_t r = 0; r < rows; r++) {
            const int64_t b = r / g->L;
            for (int64_t j = 0; j < S; j++) {
                int64_t k = slot_concept(g, idx, mask, r, j);
                if (k < 0) continue;
                double s = 0;
                for (int64_t d = 0; d < D; d++) s += (double)z[(b * K + k) * D + d] * dout[r * D + d];
                dval[r * S + j] += (float)s;
            }
        }
    }
    if (dz) imb_concept_agg_add_cpu(g, dz, idx, val, dout, mask, 1.0f);
}

/* ---- entropy ---- */

void imb_entropy_fwd_cpu(float *out, const float *p, int64_t rows, int64_t n) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        double h = 0;
        for (int64_t j = 0; j < n; j++) {
            double v = p[r * n + j];
            if (v > 0) h -= v * log(v);
        }
        out[r] = (float)h;
    }
}

void imb_entropy_bwd_cpu(float *dp, const float *p, const float *dout, int64_t rows, int64_t n) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) {
            double v = p[r * n + j];
            dp[r * n + j] += (float)(-(double)dout[r] * (log(v > 1e-12 ? v : 1e-12) + 1.0));
        }
}
