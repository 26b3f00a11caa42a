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
#ifdef IMB_HAVE_CUDA
/* CUDA kernels (kernels/cuda/scan.cu, scan_fast.cu). Same sizes, semantics and "adds into every non-NULL
 * gradient" as the CPU pair; different scratch, and a stream and a status like the attention kernels:
 *   stream: a cudaStream_t, NULL for the legacy default stream.
 *   forward ws: imb_scan_fwd_ws_cuda(g) floats. With save_states set, the forward leaves in it what
 *       the backward needs (the scan states at chunk boundaries); the backward gets it back as fws.
 *   backward ws: imb_scan_bwd_ws_cuda(g, z != NULL) floats of scratch, overwritten.
 * The fast kernels scan chunks in shared memory and fuse the directions; shapes whose rows do not fit
 * in shared memory, and every call while IMB_SCAN_KERNEL=simple is set, run the simple kernels (one
 * thread per (batch, channel), as the CPU reference). IMB_SCAN_CFG ("nw=4,items=7,rf=2,rb=1,tiles=3,
 * acc=global,rows=global,atomics=1") overrides the fast plan, for tuning. Both variables are read at
 * every call: change them only between steps. Deterministic: no atomics (unless atomics=1).
 * Return 0, or -1 with the reason in imb_scan_cuda_error() (a bad size or a failed launch; a kernel's
 * own failure shows up at the next synchronising call). */
size_t imb_scan_fwd_ws_cuda(const imb_scan_geom *g);
size_t imb_scan_bwd_ws_cuda(const imb_scan_geom *g, int has_z);
int imb_selective_scan_fwd_cuda(void *stream, const imb_scan_geom *g, float *y, float *ws, int save_states,
                                const float *u, const float *delta, const float *A, const float *B, const float *C,
                                const float *D, const float *bias, const float *z, const float *mask);
int imb_selective_scan_bwd_cuda(void *stream, const imb_scan_geom *g, float *du, float *ddelta, float *dA, float *dB,
                                float *dC, float *dD, float *dbias, float *dz, float *ws, const float *fws,
                                const float *dy, const float *u, const float *delta, const float *A, const float *B,
                                const float *C, const float *D, const float *bias, const float *z, const float *mask);
/* The message of this thread's last failed imb_selective_scan_*_cuda call. */
const char *imb_scan_cuda_error(void);
/* What a call with these sizes runs (kernel, chunk, blocks, shared memory), written into buf. */
const char *imb_scan_cuda_plan(const imb_scan_geom *g, int has_z, char *buf, size_t n);
#endif
#endif
