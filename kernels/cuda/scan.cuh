// What the CUDA selective-scan files share: the argument block, the launch plan and device helpers.
//
// kernels/cuda/scan.cu holds the host side (plan, workspace sizes, launches), the simple kernels and the
// reductions; kernels/cuda/scan_fast.cu the chunked block-scan kernels. Both compile unchanged on the CPU
// emulator (bench/emu, -DIMB_CUDA_EMU), which is how they were tested where they were written.
#ifndef IMB_CUDA_SCAN_CUH
#define IMB_CUDA_SCAN_CUH
#ifndef IMB_HAVE_CUDA
#define IMB_HAVE_CUDA 1   // scan.h declares the _cuda entry points under it
#endif
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
extern "C" {
#include "scan.h"
}

namespace imb_scan {

constexpr int kMaxThreads = 256;   // threads per block of the fast kernels (launch bound)
constexpr float kLog2e = 1.4426950408889634f;

// Everything a kernel needs, passed by value. Sizes are int64 where they index global memory.
struct Args {
    // inputs (see scan.h for shapes); D, bias, z, mask may be NULL
    const float *u, *delta, *A, *B, *C, *D, *bias, *z, *mask;
    float *y;              // forward output [Bt, Dm, L]
    float *states;         // [Bt, Dm, dirs, nc - 1, N] chunk-boundary states, or NULL (not saved)
    float *hws;            // simple forward: [Bt * Dm, N] running states
    const float *dy;       // backward: gradient of y
    float *du, *ddelta, *dA, *dB, *dC, *dD, *dbias, *dz;   // added into; each may be NULL
    float *q;              // fast backward: dB/dC partials [Bt, G, tiles, K, 2, N, Lp]
    float *pp;             // fast backward: [Bt, K, Dm, N + 2] per-(batch, channel) dA, dD, dbias partials
    float *sws;            // simple backward: per-(batch, channel) scratch, as the CPU reference's
    int64_t Bt, Dm, N, G, L, H, W;
    int64_t cpg;           // channels per group, Dm / G
    int64_t Lp;            // row pitch in shared memory: L plus one pad float per 32 (see sk)
    int64_t T, nc;         // chunk length (nw * 32 * items) and chunks per direction
    int64_t tiles, rc;     // fast backward: tiles per (batch, group), channels per tile
    int dirs, K;
    int nw;                // warps per channel
    int rf, rb;            // channels per block (forward) and per batch of a backward block
    int acc_smem;          // fast backward: dB/dC accumulators in shared (1) or global (0) memory
    int nb;                // fast kernels: states staged per round (the forward's or the backward's)
    int atomics;           // fast backward: channel slots add dB/dC terms with atomics (not deterministic)
    int rows_global;       // fast backward: the channels' rows in rowsg, not in shared memory (long L)
    float *rowsg;          // fast backward: [blocks, R, nrows, Lp] when rows_global
};

// Launch plan, chosen on the host from the shapes, the device and IMB_SCAN_KERNEL / IMB_SCAN_CFG.
struct Plan {
    int fast_f, fast_b;       // 0: the simple kernels for the forward / the backward
    int items, nw;            // items per thread, warps per channel
    int nbf, nbb;             // states staged per round, forward and backward
    int64_t T, nc, Lp;
    int rf, rb;
    int64_t tiles, rc;
    int acc_smem, atomics, rows_global;
    size_t smem_f, smem_b;    // dynamic shared memory of the fast kernels, bytes
};

// PyTorch's softplus (threshold 20) and sigmoid, as the CPU reference computes them.
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float dsoftplus_f(float x) { return x > 20.0f ? 1.0f : 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float sigm_f(float x) { return 1.0f / (1.0f + expf(-x)); }

// Scan orders (as kernels/cpu/scan.c): bit 0 column-major, bit 1 reversed; 2 directions use 0 and 2.
__host__ __device__ __forceinline__ int order_of(int dirs, int k) { return dirs == 2 ? 2 * k : k; }
__host__ __device__ __forceinline__ int set_of(int K, int k) { return K == 1 ? 0 : k; }

// token position of scan step s in order o
__device__ __forceinline__ int64_t pos_of(const Args &a, int o, int64_t s) {
    if (o & 2) s = a.L - 1 - s;
    if (o & 1) return (s % a.H) * a.W + s / a.H;
    return s;
}

// Shared-memory row index of token p: one pad float per 32, so that the lanes of a warp reading
// ITEMS consecutive tokens each (stride ITEMS, a power of two) fall into distinct banks.
__host__ __device__ __forceinline__ int64_t sk(int64_t p) { return p + (p >> 5); }
__host__ __device__ __forceinline__ int64_t row_pitch(int64_t L) { return L + (L >> 5) + 1; }

// The sum over parameter sets of D for channel d (0 without D).
__device__ __forceinline__ float d_sum(const Args &a, int64_t d) {
    float s = 0.0f;
    if (a.D)
        for (int k = 0; k < a.K; k++) s += a.D[k * a.Dm + d];
    return s;
}

// dt = mask * softplus(delta + bias) for set st of (batch b, channel d) at token p
__device__ __forceinline__ float dt_at(const Args &a, int64_t b, int st, int64_t d, int64_t p) {
    const int64_t cd = st * a.Dm + d;
    float x = a.delta[(b * a.K * a.Dm + cd) * a.L + p] + (a.bias ? a.bias[cd] : 0.0f);
    float sp = softplus_f(x);
    return a.mask ? a.mask[b * a.L + p] * sp : sp;
}

// offset of the [N, L] B/C block of (batch b, set st, group gi)
__host__ __device__ __forceinline__ int64_t grp_off(const Args &a, int64_t b, int st, int64_t gi) {
    return ((b * a.K + st) * a.G + gi) * a.N * a.L;
}

}   // namespace imb_scan

// Host entry points of scan_fast.cu, called by scan.cu: 0, or a static message on a launch failure.
namespace imb_scan {
const char *launch_fwd_fast(const Args &a, const Plan &p, cudaStream_t st);
const char *launch_bwd_fast(const Args &a, const Plan &p, cudaStream_t st);
// shared-memory bytes of the fast kernels for a plan (the plan's R, acc mode), for the planner
size_t fwd_smem_bytes(const Args &a, const Plan &p);
size_t bwd_smem_bytes(const Args &a, const Plan &p);
}
#endif
