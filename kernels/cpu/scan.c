/* CPU reference selective scan: float32 state (as Mamba's reference), y accumulated in double. */
#include "../scan.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* PyTorch softplus (threshold 20) and its derivative, matching kernels/cpu/activation.c */
static inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static inline float dsoftplus(float x) { return x > 20.0f ? 1.0f : 1.0f / (1.0f + expf(-x)); }
static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The scan orders: bit 0 = column-major, bit 1 = reversed. Two directions use orders 0 and 2
 * (forward, reversed), four use all of them (VMamba's cross-scan order). */
static inline int scan_order(int dirs, int k) { return dirs == 2 ? 2 * k : k; }

/* the parameter set direction k reads */
static inline int scan_set(const imb_scan_geom *g, int k) { return g->K == 1 ? 0 : k; }

/* offset of the [N, L] B/C block of (batch b, set s, group gi) */
static inline int64_t grp_off(const imb_scan_geom *g, int64_t b, int s, int64_t gi) {
    return ((b * g->K + s) * g->G + gi) * g->N * g->L;
}

/* The token position order o visits at scan index s: with q = s (q = L-1-s when reversed), token
 * q itself (row-major) or, column-major, the token at row q % H, column q / H (a column is walked
 * first): position (q % H) * W + q / H. The walk keeps q and that (row, column) and steps them
 * by one, so no step divides. */
typedef struct { int64_t q, r, c; } scan_walk;

static inline scan_walk walk_at(const imb_scan_geom *g, int o, int64_t s) {
    int64_t q = (o & 2) ? g->L - 1 - s : s;
    return (scan_walk){ q, q % g->H, q / g->H };
}

static inline int64_t walk_pos(const imb_scan_geom *g, int o, const scan_walk *w) {
    return (o & 1) ? w->r * g->W + w->c : w->q;
}

/* to scan index s + ds, ds = +1 or -1 */
static inline void walk_step(const imb_scan_geom *g, int o, scan_walk *w, int ds) {
    int64_t dq = (o & 2) ? -ds : ds;
    w->q += dq;
    w->r += dq;
    if (w->r == g->H) w->r = 0, w->c++;
    else if (w->r < 0) w->r = g->H - 1, w->c--;
}

/* One direction of one (batch, channel): runs the recurrence from a zero state. Adds the
 * C.h readout into y (when non-NULL); stores every state into hs [L, N] and every decay
 * exp(dt A) into as [L, N] (when non-NULL) for the backward. The forward and the backward's
 * recompute both come here, so they agree bit for bit. */
static void scan_dir(const imb_scan_geom *g, int o, const float *u, const float *dt, const float *Ad,
                     const float *Bg, const float *Cg, float *h, float *hs, float *as, float *y) {
    const int64_t N = g->N, L = g->L;
    for (int64_t n = 0; n < N; n++) h[n] = 0.0f;
    scan_walk w = walk_at(g, o, 0);
    for (int64_t s = 0; s < L; s++, walk_step(g, o, &w, 1)) {
        int64_t p = walk_pos(g, o, &w);
        float dtu = dt[p] * u[p];
        double acc = 0.0;
        for (int64_t n = 0; n < N; n++) {
            float a = expf(dt[p] * Ad[n]);
            h[n] = a * h[n] + dtu * Bg[n * L + p];
            acc += (double)Cg[n * L + p] * h[n];
            if (hs) hs[s * N + n] = h[n], as[s * N + n] = a;
        }
        if (y) y[p] += (float)acc;
    }
}

/* per (batch, channel): the state [N] and the sets' dt [K, L] */
static int64_t fwd_stride(const imb_scan_geom *g) { return g->N + g->K * g->L; }
size_t imb_scan_fwd_ws(const imb_scan_geom *g) { return (size_t)(g->Bt * g->Dm * fwd_stride(g)); }

/* the backward's per-(batch, channel) scratch */
typedef struct {
    float *hs;     /* [L, N] states of the direction being differentiated */
    float *as;     /* [L, N] its decays exp(dt A) */
    float *dBp;    /* [K, N, L] */
    float *dCp;    /* [K, N, L] */
    float *dt;     /* [K, L] */
    float *ddt;    /* [K, L] */
    float *ys;     /* [L] pre-gate output, then its gradient */
    float *gs;     /* [N] state, then the state adjoint */
    float *dAp;    /* [K, N] */
    float *sc;     /* [K, 2]: dD, dbias partials */
} bwd_ws;

static int64_t bwd_stride(const imb_scan_geom *g) {
    const int64_t N = g->N, L = g->L, K = g->K;
    return 2 * N * L + 2 * K * N * L + 2 * K * L + L + N + K * N + 2 * K;
}
size_t imb_scan_bwd_ws(const imb_scan_geom *g) { return (size_t)(g->Bt * g->Dm * bwd_stride(g)); }

static bwd_ws bwd_slice(const imb_scan_geom *g, float *ws, int64_t b, int64_t d) {
    const int64_t N = g->N, L = g->L, K = g->K;
    bwd_ws w;
    w.hs = ws + (b * g->Dm + d) * bwd_stride(g);
    w.as = w.hs + N * L;
    w.dBp = w.as + N * L;
    w.dCp = w.dBp + K * N * L;
    w.dt = w.dCp + K * N * L;
    w.ddt = w.dt + K * L;
    w.ys = w.ddt + K * L;
    w.gs = w.ys + L;
    w.dAp = w.gs + N;
    w.sc = w.dAp + K * N;
    return w;
}

/* dt [K, L] and, when y is non-NULL, the pre-gate output (the D skips plus every direction) of
 * one (batch, channel); returns the sum of the sets' D */
static float fwd_row(const imb_scan_geom *g, int64_t b, int64_t d, float *h, float *dt, float *y, const float *u,
                    const float *delta, const float *A, const float *B, const float *C, const float *D,
                    const float *bias, const float *mask) {
    const int64_t L = g->L, N = g->N, Dm = g->Dm, gi = d / (Dm / g->G);
    const int64_t row = (b * Dm + d) * L;
    float Dsum = 0.0f;
    for (int s = 0; s < g->K; s++) {
        const int64_t cd = s * Dm + d, drow = (b * g->K * Dm + cd) * L;
        float bd = bias ? bias[cd] : 0.0f;
        if (D) Dsum += D[cd];
        for (int64_t p = 0; p < L; p++) {
            float sp = softplus(delta[drow + p] + bd);
            dt[s * L + p] = mask ? mask[b * L + p] * sp : sp;
        }
    }
    if (!y) return Dsum;
    for (int64_t p = 0; p < L; p++) y[p] = Dsum * u[row + p];
    for (int k = 0; k < g->dirs; k++) {
        int s = scan_set(g, k);
        scan_dir(g, scan_order(g->dirs, k), u + row, dt + s * L, A + (s * Dm + d) * N, B + grp_off(g, b, s, gi),
                 C + grp_off(g, b, s, gi), h, NULL, NULL, y);
    }
    return Dsum;
}

void imb_selective_scan_fwd_cpu(const imb_scan_geom *g, float *y, float *ws, const float *u, const float *delta,
                                const float *A, const float *B, const float *C, const float *D, const float *bias,
                                const float *z, const float *mask) {
    const int64_t L = g->L, N = g->N;
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < g->Bt; b++)
        for (int64_t d = 0; d < g->Dm; d++) {
            const int64_t row = (b * g->Dm + d) * L;
            float *h = ws + (b * g->Dm + d) * fwd_stride(g), *yr = y + row;
            fwd_row(g, b, d, h, h + N, yr, u, delta, A, B, C, D, bias, mask);
            if (z)   /* the gate applies once, after the directions are merged */
                for (int64_t p = 0; p < L; p++) yr[p] *= z[row + p] * sigm(z[row + p]);
        }
}

/* Backward in two phases. Phase 1, parallel over (batch, channel): recompute dt, the pre-gate
 * output (only the gate's gradient needs it) and, per direction, every state and decay, then run
 * the reverse-time adjoint
 *   g_s = dy_p C_p + g_{s+1} a_{s+1},  a_s = exp(dt_p A),  h_s = a_s h_{s-1} + dt_p B_p u_p,
 * writing what belongs to this (batch, channel) (du, ddelta, dz) directly and what is shared
 * (dA, dD, dbias across the batch; dB, dC across a group's channels) as partials in ws.
 * Phase 2 reduces the partials in a fixed order, so the result does not depend on threads. */
void imb_selective_scan_bwd_cpu(const imb_scan_geom *g, float *du, float *ddelta, float *dA, float *dB, float *dC,
                                float *dD, float *dbias, float *dz, float *ws, const float *dy, const float *u,
                                const float *delta, const float *A, const float *B, const float *C, const float *D,
                                const float *bias, const float *z, const float *mask) {
    const int64_t L = g->L, N = g->N, Dm = g->Dm, K = g->K, per = Dm / g->G;
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < g->Bt; b++)
        for (int64_t d = 0; d < Dm; d++) {
            const int64_t row = (b * Dm + d) * L, gi = d / per;
            bwd_ws w = bwd_slice(g, ws, b, d);
            const float *ur = u + row;
            float Dsum = fwd_row(g, b, d, w.gs, w.dt, z ? w.ys : NULL, u, delta, A, B, C, D, bias, mask);
            /* ys becomes the gradient of the pre-gate output, which every direction shares */
            double dDacc = 0.0;
            for (int64_t p = 0; p < L; p++) {
                float gy = dy[row + p];
                if (z) {
                    float zz = z[row + p], sg = sigm(zz);
                    if (dz) dz[row + p] += gy * w.ys[p] * sg * (1.0f + zz * (1.0f - sg));
                    gy *= zz * sg;
                }
                w.ys[p] = gy;
                dDacc += (double)gy * ur[p];
                if (du && D) du[row + p] += gy * Dsum;
            }
            memset(w.dBp, 0, sizeof(float) * (size_t)(2 * K * N * L));
            memset(w.ddt, 0, sizeof(float) * (size_t)(K * L));
            memset(w.dAp, 0, sizeof(float) * (size_t)(K * N));
            /* dA sums L * dirs terms per state: in double, or a long sequence alone costs ~1e-5
             * relative (the reference must be the more accurate side of the parity check) */
            /* dA sums and the state adjoint run in double: over thousands of steps float
             * rounding alone reaches ~1e-5 relative, and the reference must be the accurate side
             * of the parity check (CUDA keeps fp32 state, as Mamba does) */
            double small[128], *big = N > 64 ? calloc((size_t)(2 * N), sizeof *big) : NULL;
            double *dAacc = N <= 64 ? small : big;   /* NULL only if calloc failed: float sums then */
            double *adj = dAacc ? dAacc + N : NULL;
            for (int64_t n = 0; n < N && dAacc; n++) dAacc[n] = 0.0;
            for (int k = 0; k < g->dirs; k++) {
                const int o = scan_order(g->dirs, k), s = scan_set(g, k);
                const int64_t grp = grp_off(g, b, s, gi);
                const float *Ad = A + (s * Dm + d) * N, *dt = w.dt + s * L;
                float *dBp = w.dBp + s * N * L, *dCp = w.dCp + s * N * L, *dAp = w.dAp + s * N, *ddt = w.ddt + s * L;
                scan_dir(g, o, ur, dt, Ad, B + grp, C + grp, w.gs, w.hs, w.as, NULL);
                for (int64_t n = 0; n < N; n++) w.gs[n] = 0.0f;   /* now the state adjoint */
                for (int64_t n = 0; n < N && adj; n++) adj[n] = 0.0;
                scan_walk sw = walk_at(g, o, L - 1);
                for (int64_t t = L - 1; t >= 0; t--, walk_step(g, o, &sw, -1)) {
                    int64_t p = walk_pos(g, o, &sw);
                    float gy = w.ys[p], dtp = dt[p], up = ur[p];
                    double ddtacc = 0.0;
                    for (int64_t n = 0; n < N; n++) {
                        float hprev = t > 0 ? w.hs[(t - 1) * N + n] : 0.0f;
                        float a = w.as[t * N + n], Bv = B[grp + n * L + p];
                        double gnd = adj ? adj[n] + (double)gy * C[grp + n * L + p] : 0.0;
                        float gn = adj ? (float)gnd : w.gs[n] + gy * C[grp + n * L + p];
                        float ga = gn * hprev * a;   /* gradient of the exponent dt*A */
                        dCp[n * L + p] += gy * w.hs[t * N + n];
                        dBp[n * L + p] += gn * dtp * up;
                        if (dAacc) dAacc[n] += (double)ga * dtp;
                        else dAp[n] += ga * dtp;
                        ddtacc += (double)ga * Ad[n] + (double)gn * Bv * up;
                        if (du) du[row + p] += gn * dtp * Bv;
                        if (adj) adj[n] = gnd * a;
                        else w.gs[n] = gn * a;
                    }
                    ddt[p] += (float)ddtacc;
                }
                for (int64_t n = 0; n < N && dAacc; n++) {
                    dAp[n] += (float)dAacc[n];
                    dAacc[n] = 0.0;
                }
            }
            free(big);
            for (int64_t s = 0; s < K; s++) {
                const int64_t cd = s * Dm + d, drow = (b * K * Dm + cd) * L;
                float bd = bias ? bias[cd] : 0.0f;
                double dbacc = 0.0;
                for (int64_t p = 0; p < L; p++) {
                    float gx = w.ddt[s * L + p] * dsoftplus(delta[drow + p] + bd);
                    if (mask) gx *= mask[b * L + p];
                    if (ddelta) ddelta[drow + p] += gx;
                    dbacc += gx;
                }
                w.sc[2 * s] = (float)dDacc;   /* every set's D multiplies the same u */
                w.sc[2 * s + 1] = (float)dbacc;
            }
        }
    /* per-channel parameters: sum over the batch in batch order */
#pragma omp parallel for collapse(2)
    for (int64_t s = 0; s < K; s++)
        for (int64_t d = 0; d < Dm; d++) {
            const int64_t cd = s * Dm + d;
            for (int64_t b = 0; b < g->Bt; b++) {
                bwd_ws w = bwd_slice(g, ws, b, d);
                if (dA)
                    for (int64_t n = 0; n < N; n++) dA[cd * N + n] += w.dAp[s * N + n];
                if (dD) dD[cd] += w.sc[2 * s];
                if (dbias) dbias[cd] += w.sc[2 * s + 1];
            }
        }
    /* dB, dC: sum a group's channels in channel order */
    if (dB || dC) {
#pragma omp parallel for collapse(3)
        for (int64_t b = 0; b < g->Bt; b++)
            for (int64_t s = 0; s < K; s++)
                for (int64_t gi = 0; gi < g->G; gi++) {
                    const int64_t grp = grp_off(g, b, (int)s, gi);
                    for (int64_t d = gi * per; d < (gi + 1) * per; d++) {
                        bwd_ws w = bwd_slice(g, ws, b, d);
                        const float *dBp = w.dBp + s * N * L, *dCp = w.dCp + s * N * L;
                        for (int64_t i = 0; i < N * L; i++) {
                            if (dB) dB[grp + i] += dBp[i];
                            if (dC) dC[grp + i] += dCp[i];
                        }
                    }
                }
    }
}
