/* Selective scan (Mamba S6) with 1, 2 or 4 (VMamba cross-scan) directions: op and raw CPU kernels. */
#ifndef IMB_SCAN_H
#define IMB_SCAN_H
#include "ctx.h"

/* y = selective scan of u, summed over the directions' orders, plus D*u once, times silu(z).
 * u, delta, z: [Bt, Dm, L] (z may be NULL: no gate); A: [Dm, N]; B, C: [Bt, G, N, L] with G
 * dividing Dm (channel d reads group d / (Dm/G)); D, delta_bias: [Dm] (each may be NULL).
 * directions: 1 (causal), 2 (forward + reversed), 4 (row-major, column-major and both reversed
 * over an H x W grid, token t = row*W + col, so L must equal H*W; H, W are ignored otherwise).
 * Returns [Bt, Dm, L], or NULL with the reason in ctx. */
imb_tensor *imb_selective_scan(imb_ctx *ctx, imb_tensor *u, imb_tensor *delta, imb_tensor *A, imb_tensor *B,
                               imb_tensor *C, imb_tensor *D, imb_tensor *delta_bias, imb_tensor *z,
                               int directions, int64_t H, int64_t W);

/* Sizes shared by the raw kernels. */
typedef struct {
    int64_t Bt, Dm, N, G, L, H, W;
    int dirs;
} imb_scan_geom;

/* Floats of scratch the raw kernels need: forward [Bt, Dm, N + L]; backward per (batch, channel)
 * the recomputed states and the dB, dC partials [3, N, L], three [L] rows, two [N] rows and two
 * scalars. */
size_t imb_scan_fwd_ws(const imb_scan_geom *g);
size_t imb_scan_bwd_ws(const imb_scan_geom *g);

/* Raw kernels. y [Bt, Dm, L] is overwritten; ws is uninitialised scratch of the sizes above;
 * D, bias, z may be NULL. Backward ADDS into every non-NULL gradient (du, ddelta, dz [Bt, Dm, L],
 * dA [Dm, N], dB, dC [Bt, G, N, L], dD, dbias [Dm]) from dy [Bt, Dm, L]. */
void imb_selective_scan_fwd_cpu(const imb_scan_geom *g, float *y, float *ws, const float *u, const float *delta,
                                const float *A, const float *B, const float *C, const float *D, const float *bias,
                                const float *z);
void imb_selective_scan_bwd_cpu(const imb_scan_geom *g, float *du, float *ddelta, float *dA, float *dB, float *dC,
                                float *dD, float *dbias, float *dz, float *ws, const float *dy, const float *u,
                                const float *delta, const float *A, const float *B, const float *C, const float *D,
                                const float *bias, const float *z);
#endif
