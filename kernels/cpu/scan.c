/* CPU reference selective scan: float32 state (as Mamba's reference), y accumulated in double. */
#include "../scan.h"
#include <math.h>
#include <string.h>

/* PyTorch softplus (threshold 20) and its derivative, matching kernels/cpu/activation.c */
static inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static inline float dsoftplus(float x) { return x > 20.0f ? 1.0f : 1.0f / (1.0f + expf(-x)); }
static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The scan orders: bit 0 = column-major, bit 1 = reversed. Two directions use orders 0 and 2
 * (forward, reversed), four use all of them (VMamba's cross-scan order). */
static inline int scan_order(int dirs, int k) { return dirs == 2 ? 2 * k : k; }

/* token position of the s-th element scanned in order o */
static inline int64_t scan_pos(const imb_scan_geom *g, int o, int64_t s) {
    if (o & 2) s = g->L - 1 - s;
    if (o & 1) return (s % g->H) * g->W + s / g->H;   /* column-major: s walks down a column first */
    return s;
}

/* One direction of one (batch, channel): runs the recurrence from a zero state. Adds the
 * C.h readout into y (when non-NULL) and stores every state into hs [L, N] (when non-NULL).
 * The forward and the backward's recompute both come here, so they agree bit for bit. */
static void scan_dir(const imb_scan_geom *g, int o, const float *u, const float *dt, const float *Ad,
                     const float *Bg, const float *Cg, float *h, float *hs, float *y) {
    const int64_t N = g->N, L = g->L;
    for (int64_t n = 0; n < N; n++) h[n] = 0.0f;
    for (int64_t s = 0; s < L; s++) {
        int64_t p = scan_pos(g, o, s);
        float dtu = dt[p] * u[p];
        double acc = 0.0;
        for (int64_t n = 0; n < N; n++) {
            h[n] = expf(dt[p] * Ad[n]) * h[n] + dtu * Bg[n * L + p];
            acc += (double)Cg[n * L + p] * h[n];
        }
        if (hs) memcpy(hs + s * N, h, sizeof *h * (size_t)N);
        if (y) y[p] += (float)acc;
    }
}

/* per (batch, channel): the state [N] and dt [L] */
size_t imb_scan_fwd_ws(const imb_scan_geom *g) { return (size_t)(g->Bt * g->Dm * (g->N + g->L)); }

/* per (batch, channel): hs, dBp, dCp [N*L]; dt, ys, ddt [L]; state adjoint, dA partial [N]; dD, dbias partials */
static int64_t bwd_stride(const imb_scan_geom *g) { return 3 * g->N * g->L + 3 * g->L + 2 * g->N + 2; }
size_t imb_scan_bwd_ws(const imb_scan_geom *g) { return (size_t)(g->Bt * g->Dm * bwd_stride(g)); }

/* dt and the pre-gate output (D*u plus every direction) of one (batch, channel) */
static void fwd_row(const imb_scan_geom *g, int64_t b, int64_t d, float *h, float *dt, float *y, const float *u,
                    const float *delta, const float *A, const float *B, const float *C, const float *D,
                    const float *bias) {
    const int64_t L = g->L, N = g->N, gi = d / (g->Dm / g->G);
    const int64_t row = (b * g->Dm + d) * L, grp = (b * g->G + gi) * N * L;
    float bd = bias ? bias[d] : 0.0f, Dd = D ? D[d] : 0.0f;
    for (int64_t p = 0; p < L; p++) {
        dt[p] = softplus(delta[row + p] + bd);
        y[p] = Dd * u[row + p];
    }
    for (int k = 0; k < g->dirs; k++)
        scan_dir(g, scan_order(g->dirs, k), u + row, dt, A + d * N, B + grp, C + grp, h, NULL, y);
}

void imb_selective_scan_fwd_cpu(const imb_scan_geom *g, float *y, float *ws, const float *u, const float *delta,
                                const float *A, const float *B, const float *C, const float *D, const float *bias,
                                const float *z) {
    const int64_t L = g->L, N = g->N;
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < g->Bt; b++)
        for (int64_t d = 0; d < g->Dm; d++) {
            const int64_t row = (b * g->Dm + d) * L;
            float *h = ws + (b * g->Dm + d) * (N + L), *yr = y + row;
            fwd_row(g, b, d, h, h + N, yr, u, delta, A, B, C, D, bias);
            if (z)   /* the gate applies once, after the directions are merged */
                for (int64_t p = 0; p < L; p++) yr[p] *= z[row + p] * sigm(z[row + p]);
        }
}

/* Backward in two phases. Phase 1, parallel over (batch, channel): recompute dt, the pre-gate
 * output and, per direction, every state, then run the reverse-time adjoint
 *   g_s = dy_p C_p + g_{s+1} a_{s+1},  a_s = exp(dt_p A),  h_s = a_s h_{s-1} + dt_p B_p u_p,
 * writing what belongs to this (batch, channel) (du, ddelta, dz) directly and what is shared
 * (dA, dD, dbias across the batch; dB, dC across a group's channels) as partials in ws.
 * Phase 2 reduces the partials in a fixed order, so the result does not depend on threads. */
void imb_selective_scan_bwd_cpu(const imb_scan_geom *g, float *du, float *ddelta, float *dA, float *dB, float *dC,
                                float *dD, float *dbias, float *dz, float *ws, const float *dy, const float *u,
                                const float *delta, const float *A, const float *B, const float *C, const float *D,
                                const float *bias, const float *z) {
    const int64_t L = g->L, N = g->N, Dm = g->Dm, S = bwd_stride(g), per = Dm / g->G;
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < g->Bt; b++)
        for (int64_t d = 0; d < Dm; d++) {
            const int64_t row = (b * Dm + d) * L, grp = (b * g->G + d / per) * N * L;
            float *hs = ws + (b * Dm + d) * S, *dBp = hs + N * L, *dCp = dBp + N * L, *dt = dCp + N * L;
            float *ys = dt + L, *ddt = ys + L, *gs = ddt + L, *dAp = gs + N, *sc = dAp + N;
            const float *Ad = A + d * N, *ur = u + row;
            fwd_row(g, b, d, gs, dt, ys, u, delta, A, B, C, D, bias);
            /* ys becomes the gradient of the pre-gate output, which every direction shares */
            double dDacc = 0.0;
            for (int64_t p = 0; p < L; p++) {
                float gy = dy[row + p];
                if (z) {
                    float zz = z[row + p], sg = sigm(zz);
                    if (dz) dz[row + p] += gy * ys[p] * sg * (1.0f + zz * (1.0f - sg));
                    gy *= zz * sg;
                }
                ys[p] = gy;
                ddt[p] = 0.0f;
                dDacc += (double)gy * ur[p];
                if (du && D) du[row + p] += gy * D[d];
            }
            sc[0] = (float)dDacc;
            memset(dBp, 0, sizeof *dBp * (size_t)(2 * N * L));
            for (int64_t n = 0; n < N; n++) dAp[n] = 0.0f;
            for (int k = 0; k < g->dirs; k++) {
                int o = scan_order(g->dirs, k);
                scan_dir(g, o, ur, dt, Ad, B + grp, C + grp, gs, hs, NULL);
                for (int64_t n = 0; n < N; n++) gs[n] = 0.0f;   /* now the state adjoint */
                for (int64_t s = L - 1; s >= 0; s--) {
                    int64_t p = scan_pos(g, o, s);
                    float gy = ys[p], dtp = dt[p], up = ur[p];
                    double ddtacc = 0.0;
                    for (int64_t n = 0; n < N; n++) {
                        float hprev = s > 0 ? hs[(s - 1) * N + n] : 0.0f;
                        float a = expf(dtp * Ad[n]), Bv = B[grp + n * L + p];
                        float gn = gs[n] + gy * C[grp + n * L + p];
                        float ga = gn * hprev * a;   /* gradient of the exponent dt*A */
                        dCp[n * L + p] += gy * hs[s * N + n];
                        dBp[n * L + p] += gn * dtp * up;
                        dAp[n] += ga * dtp;
                        ddtacc += (double)ga * Ad[n] + (double)gn * Bv * up;
                        if (du) du[row + p] += gn * dtp * Bv;
                        gs[n] = gn * a;
                    }
                    ddt[p] += (float)ddtacc;
                }
            }
            double dbacc = 0.0;
            float bd = bias ? bias[d] : 0.0f;
            for (int64_t p = 0; p < L; p++) {
                float gx = ddt[p] * dsoftplus(delta[row + p] + bd);
                if (ddelta) ddelta[row + p] += gx;
                dbacc += gx;
            }
            sc[1] = (float)dbacc;
        }
    /* per-channel parameters: sum over the batch in batch order */
#pragma omp parallel for
    for (int64_t d = 0; d < Dm; d++)
        for (int64_t b = 0; b < g->Bt; b++) {
            const float *dAp = ws + (b * Dm + d) * S + 3 * N * L + 3 * L + N, *sc = dAp + N;
            if (dA)
                for (int64_t n = 0; n < N; n++) dA[d * N + n] += dAp[n];
            if (dD) dD[d] += sc[0];
            if (dbias) dbias[d] += sc[1];
        }
    /* dB, dC: sum a group's channels in channel order */
    if (dB || dC) {
#pragma omp parallel for collapse(2)
        for (int64_t b = 0; b < g->Bt; b++)
            for (int64_t gi = 0; gi < g->G; gi++) {
                const int64_t grp = (b * g->G + gi) * N * L;
                for (int64_t d = gi * per; d < (gi + 1) * per; d++) {
                    const float *dBp = ws + (b * Dm + d) * S + N * L, *dCp = dBp + N * L;
                    for (int64_t i = 0; i < N * L; i++) {
                        if (dB) dB[grp + i] += dBp[i];
                        if (dC) dC[grp + i] += dCp[i];
                    }
                }
            }
    }
}
