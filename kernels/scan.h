/* Selective scan (Mamba S6) with 1, 2 or 4 (VMamba cross-scan) directions: op and raw CPU kernels. */
#ifndef IMB_SCAN_H
#define IMB_SCAN_H
#include "ctx.h"

/* y = selective scan of u, summed over the directions' orders, plus the D skip, times silu(z).
 * u, z: [Bt, Dm, L], token order (t = row*W + col); every direction reads and writes token
 * positions, its order is applied inside the kernel.
 * Parameter sets: K = 1 (every direction shares one set) or K = directions (direction k owns
 * set k, as VMamba's per-direction x_proj/dt_projs/A_logs/Ds). K is taken from delta's
 * channel count and must be the same for every parameter:
 *   delta: [Bt, K*Dm, L] (direction k reads channels [k*Dm, (k+1)*Dm));
 *   A: [K*Dm, N]; D, delta_bias: [K*Dm] (each may be NULL);
 *   B, C: [Bt, K*G, N, L], G dividing Dm: channel d of direction k reads group k*G + d/(Dm/G).
 * dt_t = mask_t * softplus(delta_t + delta_bias), h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t,
 * y_t = sum over directions of C_t . h_t + (sum over sets of D_set) u_t.
 * mask: [Bt, L] or NULL; 1 = token, 0 = padding. A padded step has dt = 0, so the state passes
 * through it unchanged in every direction and no gradient reaches its delta; its y is still
 * C.h + D u, which nobody should read.
 * directions: 1 (causal), 2 (forward + reversed), 4 (row-major, column-major and both reversed
 * over an H x W grid, so L must equal H*W; H, W are ignored otherwise).
 * Returns [Bt, Dm, L], or NULL with the reason in ctx. */
imb_tensor *imb_selective_scan(imb_ctx *ctx, imb_tensor *u, imb_tensor *delta, imb_tensor *A, imb_tensor *B,
                               imb_tensor *C, imb_tensor *D, imb_tensor *delta_bias, imb_tensor *z,
                               imb_tensor *mask, int directions, int64_t H, int64_t W);

/* Sizes shared by the raw kernels: G groups and Dm channels per parameter set, K sets. */
typedef struct {
    int64_t Bt, Dm, N, G, L, H, W;
    int dirs;
    int K;
} imb_scan_geom;

/* Floats of scratch the raw CPU kernels need: forward per (batch, channel) a state [N] and the
 * K sets' dt [K, L]; backward per (batch, channel) the recomputed states and decays [2, N, L],
 * the dB, dC partials [2, K, N, L], dt and ddt [K, L] each, one [L] row, the state adjoint [N],
 * the dA partials [K, N] and the dD, dbias partials [2, K]. */
size_t imb_scan_fwd_ws(const imb_scan_geom *g);
size_t imb_scan_bwd_ws(const imb_scan_geom *g);

/* Raw kernels. y [Bt, Dm, L] is overwritten; ws is uninitialised scratch of the sizes above;
 * D, bias, z, mask may be NULL. Backward ADDS into every non-NULL gradient (du, dz [Bt, Dm, L],
 * ddelta [Bt, K*Dm, L], dA [K*Dm, N], dB, dC [Bt, K*G, N, L], dD, dbias [K*Dm]) from dy
 * [Bt, Dm, L]; the mask gets no gradient. */
void imb_selective_scan_fwd_cpu(const imb_scan_geom *g, float *y, float *ws, const float *u, const float *delta,
                                const float *A, const float *B, const float *C, const float *D, const float *bias,
                                const float *z, const float *mask);
void imb_selective_scan_bwd_cpu(const imb_scan_geom *g, float *du, float *ddelta, float *dA, float *dB, float *dC,
                                float *dD, float *dbias, float *dz, float *ws, const float *dy, const float *u,
                                const float *delta, const float *A, const float *B, const float *C, const float *D,
                                const float *bias, const float *z, const float *mask);
#endif
