// The fast CUDA selective scan: chunked block scans over (a, b) pairs, every direction fused in one block.
//
// Work split. A block owns R channels of one (batch, group), so the B and C rows of the group are read
// once per block. Each channel is scanned by NW warps; a thread holds ITEMS consecutive steps of the
// scan order, a chunk is T = NW * 32 * ITEMS steps. Per state n and chunk: every thread folds its items
// into one affine map h -> a h + b (a = exp(dt A), b = dt B u), a Kogge-Stone scan over the warp's lanes
// (and over the channel's warps through shared memory) gives each thread its incoming state, and the
// items are replayed from it. The state entering the next chunk is carried in registers; the forward
// saves it (chunk-boundary states, [Bt, Dm, dirs, nc-1, N]) when a backward will run. Steps past the end
// of the sequence (L not a multiple of T) have dt = 0, B = 0: a = 1, b = 0, the identity.
//
// Directions without copies. The block keeps its channels' rows u, dt and the output in shared memory
// (token order, see sk), and each direction reads them in its own order: position lookups replace the
// cross-scan copy, and the output of every direction is accumulated into the block's own row, so the
// directions are merged without atomics or races: the owner of a token in one direction is one thread,
// and directions are separated by barriers. B and C of the current chunk and block of NB states are
// staged in shared memory as [n][item][thread], so a warp reads 32 consecutive floats.
//
// Backward. (A sequence whose rows do not fit in shared memory keeps them in a per-block slice of global
// scratch instead: the backward has few blocks, about one wave.) Per direction the chunks run from last to first: each is recomputed from its saved
// boundary state (forward replay of the chunk), then a suffix scan of the adjoint X_s = a_s (gy_s C_s +
// X_{s+1}) runs over items, lanes and warps, with the adjoint carried into the previous chunk. Per-token
// sums over the states (S1 = sum G B, S2 = sum G h_prev a A, the pre-gate output for dz) go to shared
// rows; du, ddelta, dz are written per channel. Reductions, all fixed-order (no atomics):
//   - dB, dC: a block walks a tile of rc channels of its group, R at a time. The R channels' terms are
//     summed through shared memory (slot order), then added into the block's accumulator [K, 2, N, Lp]
//     (shared memory when it fits, else the block's own slice of global scratch). A second kernel sums
//     the tiles of a group in tile order.
//     (IMB_SCAN_CFG=atomics=1, off by default and not deterministic: the slots add their terms into the
//     accumulators with atomics instead, saving the shared-memory round trip and a barrier per state.)
//   - dA, dD, dbias: summed per channel (butterfly within warps, warps in order), written per (batch,
//     channel) and summed over the batch in batch order by a second kernel.
#include "scan.cuh"
#include <stdio.h>
#include <string.h>

namespace imb_scan {
namespace {

__device__ __forceinline__ float *dyn_smem() {
#ifdef IMB_CUDA_EMU
    return imb_emu_dynamic_smem<float>();
#else
    extern __shared__ float4 imb_scan_smem[];
    return reinterpret_cast<float *>(imb_scan_smem);
#endif
}

// 2^x; the hardware's approximation (2 ulp) on the GPU. A is pre-scaled by log2(e).
__device__ __forceinline__ float ex2(float x) {
#ifdef IMB_CUDA_EMU
    return exp2f(x);
#else
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#endif
}

__device__ __forceinline__ float shfl_up(float v, int o) { return __shfl_up_sync(0xffffffffu, v, o); }
__device__ __forceinline__ float shfl_down(float v, int o) { return __shfl_down_sync(0xffffffffu, v, o); }
__device__ __forceinline__ float shfl_idx(float v, int l) { return __shfl_sync(0xffffffffu, v, l); }

// sk() with 32-bit arithmetic, for shared-memory indices (64-bit index math costs registers per item)
__device__ __forceinline__ int ski(int p) { return p + (p >> 5); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Token positions of the ITEMS consecutive scan steps s0, s0 + 1, ... of order o; -1 past the end.
// One division, then steps (a column-major walk moves down a column and wraps to the next).
template <int ITEMS>
__device__ __forceinline__ void item_pos(const Args &a, int o, int64_t s0, int (&p)[ITEMS]) {
    const int L = (int)a.L;
    if (s0 >= L) {
#pragma unroll
        for (int j = 0; j < ITEMS; j++) p[j] = -1;
        return;
    }
    const int s = (int)s0, t = (o & 2) ? L - 1 - s : s;
    if (!(o & 1)) {
#pragma unroll
        for (int j = 0; j < ITEMS; j++) p[j] = s + j < L ? ((o & 2) ? t - j : t + j) : -1;
        return;
    }
    const int H = (int)a.H, W = (int)a.W;
    int r = t % H, c = t / H;
#pragma unroll
    for (int j = 0; j < ITEMS; j++) {
        p[j] = s + j < L ? r * W + c : -1;
        if (o & 2) {
            if (--r < 0) r = H - 1, --c;
        } else if (++r == H) {
            r = 0, ++c;
        }
    }
}

// Stages B and C of states [n0, n0 + nb) (zeros past N) for chunk c of order o: stage[0 or 1][n][j][t] =
// B or C at the token of step c*T + t*ITEMS + j (0 past the end), rows of NT + 1 floats. spos (when
// non-NULL) gets those tokens as [j][t], -1 past the end. Consecutive threads take consecutive steps, so
// row-major orders read B and C coalesced.
template <int ITEMS>
__device__ void stage_bc(const Args &a, int o, int64_t c, int n0, const float *Bg, const float *Cg, float *stage,
                         int *spos) {
    const int NT = a.nw * 32, NTp = NT + 1, T = (int)a.T, nb = a.nb;
    for (int i = threadIdx.x; i < T; i += blockDim.x) {
        const int64_t s = c * a.T + i;
        const int64_t p = s < a.L ? pos_of(a, o, s) : -1;
        const int j = i % ITEMS, t = i / ITEMS;
        float *dst = stage + j * NTp + t;
        for (int n = 0; n < nb; n++) {
            const bool in = p >= 0 && n0 + n < a.N;
            dst[n * ITEMS * NTp] = in ? Bg[(int64_t)(n0 + n) * a.L + p] : 0.0f;
            dst[(nb + n) * ITEMS * NTp] = in ? Cg[(int64_t)(n0 + n) * a.L + p] : 0.0f;
        }
        if (spos) spos[j * NT + t] = (int)p;
    }
}

// Sums v over the threads of each slot (channel); every thread gets its slot's sum. Fixed order:
// butterfly in the warp, warps in order. Every thread of the block must call it (barriers).
__device__ float slot_sum(float v, float *red, int slot, int wc, int lane, int NW) {
    v = warp_sum(v);
    __syncthreads();   // red is free (an earlier call's readers are done)
    if (lane == 0) red[slot * NW + wc] = v;
    __syncthreads();
    float s = 0.0f;
    for (int w = 0; w < NW; w++) s += red[slot * NW + w];
    return s;
}

// ---- forward ----

// Shared-memory layout of the forward (floats): rows [R][3][Lp] (u, dt, y), stage [2][nb][ITEMS][NT+1],
// warp totals [2][R][NW][2], carried states [2][R][nb] (by chunk parity).
struct FwdLayout {
    int64_t rows, stage, xw, carry, total;
};

__host__ __device__ inline FwdLayout fwd_layout(const Args &a, int items) {
    FwdLayout l;
    const int64_t R = a.rf;
    l.rows = R * 3 * a.Lp;
    l.stage = 2 * (int64_t)a.nb * items * (a.nw * 32 + 1);
    l.xw = a.nw > 1 ? 2 * R * a.nw * 2 : 0;
    l.carry = 2 * R * a.nb;
    l.total = l.rows + l.stage + l.xw + l.carry;
    return l;
}

template <int ITEMS>
__global__ void __launch_bounds__(kMaxThreads, 3) scan_fwd_kernel(Args a) {
    float *sm = dyn_smem();
    const int NW = a.nw, NT = NW * 32, NTp = NT + 1, R = a.rf, nb = a.nb;
    const int tid = threadIdx.x, slot = tid / NT, ct = tid % NT, lane = tid & 31, wc = ct >> 5;
    const int64_t tpg = (a.cpg + R - 1) / R;
    int64_t blk = blockIdx.x;
    const int64_t tile = blk % tpg;
    blk /= tpg;
    const int64_t gi = blk % a.G, b = blk / a.G, cig = tile * R + slot;
    const bool active = cig < a.cpg;   // the last tile of a group may have idle slots
    const int64_t d = gi * a.cpg + (active ? cig : 0), L = a.L, row = (b * a.Dm + d) * L;
    const int Lp = (int)a.Lp;   // shared-memory offsets are 32-bit
    const FwdLayout lay = fwd_layout(a, ITEMS);
    float *ru = sm + slot * 3 * Lp, *rdt = ru + Lp, *ry = rdt + Lp;
    float *stage = sm + lay.rows, *xw = stage + lay.stage, *carry = xw + lay.xw;

    for (int64_t i = ct; i < L; i += NT) {
        ru[sk(i)] = active ? a.u[row + i] : 0.0f;
        ry[sk(i)] = 0.0f;
        if (a.K == 1) rdt[sk(i)] = active ? dt_at(a, b, 0, d, i) : 0.0f;
    }
    for (int k = 0; k < a.dirs; k++) {
        const int o = order_of(a.dirs, k), st = set_of(a.K, k);
        if (a.K > 1) {
            __syncthreads();   // the previous direction is done reading the previous set's dt
            for (int64_t i = ct; i < L; i += NT) rdt[sk(i)] = active ? dt_at(a, b, st, d, i) : 0.0f;
        }
        const float *Bg = a.B + grp_off(a, b, st, gi), *Cg = a.C + grp_off(a, b, st, gi);
        const float *Ar = a.A + (st * a.Dm + d) * a.N;
        for (int n0 = 0; n0 < a.N; n0 += nb) {
            const int nn = a.N - n0 < nb ? (int)(a.N - n0) : nb;
            for (int64_t c = 0; c < a.nc; c++) {
                __syncthreads();   // rows written; the previous chunk is done with the stage and carries
                stage_bc<ITEMS>(a, o, c, n0, Bg, Cg, stage, nullptr);
                __syncthreads();
                int p[ITEMS];
                item_pos<ITEMS>(a, o, c * a.T + (int64_t)ct * ITEMS, p);
                float dt[ITEMS], dtu[ITEMS], y[ITEMS];
#pragma unroll
                for (int j = 0; j < ITEMS; j++) {
                    const bool in = p[j] >= 0;
                    dt[j] = in ? rdt[ski(p[j])] : 0.0f;
                    dtu[j] = in ? dt[j] * ru[ski(p[j])] : 0.0f;
                    y[j] = 0.0f;
                }
                const float *cin = carry + ((c & 1) * R + slot) * nb;
                float *cout = carry + (((c + 1) & 1) * R + slot) * nb;
#pragma unroll 1
                for (int n = 0; n < nn; n++) {
                    const float A2 = active ? Ar[n0 + n] * kLog2e : 0.0f, h0 = c > 0 ? cin[n] : 0.0f;
                    const float *Bs = stage + n * ITEMS * NTp + ct, *Cs = stage + (nb + n) * ITEMS * NTp + ct;
                    float av[ITEMS], bv[ITEMS];
#pragma unroll
                    for (int j = 0; j < ITEMS; j++) {
                        av[j] = ex2(dt[j] * A2);
                        bv[j] = dtu[j] * Bs[j * NTp];
                    }
                    float ag = av[0], bg = bv[0];
#pragma unroll
                    for (int j = 1; j < ITEMS; j++) {
                        bg = fmaf(av[j], bg, bv[j]);
                        ag *= av[j];
                    }
                    for (int off = 1; off < 32; off <<= 1) {   // inclusive prefix over the lanes
                        const float ao = shfl_up(ag, off), bo = shfl_up(bg, off);
                        if (lane >= off) {
                            bg = fmaf(ag, bo, bg);
                            ag *= ao;
                        }
                    }
                    float hw = h0, hend;   // hw: the state entering this warp
                    if (NW > 1) {
                        float *x = xw + (int64_t)((n & 1) * R + slot) * NW * 2;
                        if (lane == 31) x[2 * wc] = ag, x[2 * wc + 1] = bg;
                        __syncthreads();
                        for (int w = 0; w < wc; w++) hw = fmaf(x[2 * w], hw, x[2 * w + 1]);
                        hend = hw;
                        for (int w = wc; w < NW; w++) hend = fmaf(x[2 * w], hend, x[2 * w + 1]);
                    }
                    // the state after this thread's items; the previous lane's is this thread's start
                    const float hl = fmaf(ag, hw, bg), hp = shfl_up(hl, 1);
                    if (NW == 1) hend = shfl_idx(hl, 31);
                    float h = lane == 0 ? hw : hp;
#pragma unroll
                    for (int j = 0; j < ITEMS; j++) {
                        h = fmaf(av[j], h, bv[j]);
                        y[j] = fmaf(Cs[j * NTp], h, y[j]);
                    }
                    if (ct == 0) {
                        cout[n] = hend;
                        if (a.states && active && c + 1 < a.nc)
                            a.states[(((b * a.Dm + d) * a.dirs + k) * (a.nc - 1) + c) * a.N + n0 + n] = hend;
                    }
                }
                item_pos<ITEMS>(a, o, c * a.T + (int64_t)ct * ITEMS, p);   // again: cheaper than keeping them
#pragma unroll
                for (int j = 0; j < ITEMS; j++)
                    if (p[j] >= 0) ry[ski(p[j])] += y[j];
            }
        }
    }
    __syncthreads();
    if (active) {
        const float Ds = d_sum(a, d);
        for (int64_t i = ct; i < L; i += NT) {
            float v = fmaf(Ds, ru[sk(i)], ry[sk(i)]);
            if (a.z) {
                const float zz = a.z[row + i];
                v *= zz * sigm_f(zz);
            }
            a.y[row + i] = v;
        }
    }
}

// ---- backward ----

// Shared-memory layout of the backward (floats), in this order: rows [R][nrows][Lp] (u, gy, dt, S1, S2,
// then the pre-gate output when z is given and the du sum when K > 1), the dB/dC accumulators
// [K][2][N][Lp] when in shared memory, stage [2][nb][ITEMS][NT+1], warp totals of the forward and the
// adjoint scans [2][R][NW][2] each, the slots' dB/dC terms [2][R][2][ITEMS][NT] (R > 1), per-thread dA
// terms [nb][R*NT], slot sums [R][NW], dA per slot [R][K][N], dbias per slot [R][K], the staged boundary
// states [R][nb], the carried adjoints [2][R][nb] (by chunk parity), token positions [ITEMS][NT] (R > 1).
struct BwdLayout {
    int64_t nrows, rows, acc, stage, xwf, xwr, xb, dat, red, das, pdb, h0, gc, spos, total;
};

__host__ __device__ inline BwdLayout bwd_layout(const Args &a, int items) {
    BwdLayout l;
    const int64_t NT = a.nw * 32, R = a.rb, nb = a.nb;
    l.nrows = 5 + (a.z != nullptr) + (a.K > 1);
    l.rows = a.rows_global ? 0 : R * l.nrows * a.Lp;
    l.acc = a.acc_smem ? (int64_t)a.K * 2 * a.N * a.Lp : 0;
    l.stage = 2 * nb * items * (NT + 1);
    l.xwf = l.xwr = a.nw > 1 ? 2 * R * a.nw * 2 : 0;
    l.xb = R > 1 && !a.atomics ? 2 * R * 2 * items * NT : 0;
    l.dat = nb * R * NT;
    l.red = R * a.nw;
    l.das = R * a.K * a.N;
    l.pdb = R * a.K;
    l.h0 = R * nb;
    l.gc = 2 * R * nb;
    l.spos = R > 1 && !a.atomics ? items * NT : 0;
    l.total = l.rows + l.acc + l.stage + l.xwf + l.xwr + l.xb + l.dat + l.red + l.das + l.pdb + l.h0 + l.gc + l.spos;
    return l;
}

template <int ITEMS>
__global__ void __launch_bounds__(kMaxThreads, 1) scan_bwd_kernel(Args a) {
    float *sm = dyn_smem();
    const int NW = a.nw, NT = NW * 32, NTp = NT + 1, R = a.rb, K = a.K, nb = a.nb;
    const int tid = threadIdx.x, slot = tid / NT, ct = tid % NT, lane = tid & 31, wc = ct >> 5;
    int64_t blk = blockIdx.x;
    const int64_t tile = blk % a.tiles;
    blk /= a.tiles;
    const int64_t gi = blk % a.G, b = blk / a.G;
    const int64_t cbeg = tile * a.rc, cend = cbeg + a.rc < a.cpg ? cbeg + a.rc : a.cpg;
    const int64_t L = a.L, N = a.N, Dm = a.Dm;
    const int Lp = (int)a.Lp;   // shared-memory (and accumulator-slice) offsets are 32-bit
    const bool hz = a.z != nullptr, hk = K > 1;
    const BwdLayout lay = bwd_layout(a, ITEMS);
    float *rows = a.rows_global ? a.rowsg + (int64_t)blockIdx.x * R * lay.nrows * Lp : sm;
    float *ru = rows + slot * (int)lay.nrows * Lp, *rgy = ru + Lp, *rdt = rgy + Lp, *rs1 = rdt + Lp,
          *rs2 = rs1 + Lp, *rys = hz ? rs2 + Lp : nullptr, *rdu = hk ? rs2 + Lp * (1 + hz) : nullptr;
    const int64_t accn = (int64_t)K * 2 * N * Lp;
    float *const qslice = a.q + ((b * a.G + gi) * a.tiles + tile) * accn;
    float *acc = a.acc_smem ? sm + lay.rows : qslice;
    float *stage = sm + lay.rows + lay.acc, *xwf = stage + lay.stage, *xwr = xwf + lay.xwf, *xb = xwr + lay.xwr;
    float *dat = xb + lay.xb, *red = dat + lay.dat, *das = red + lay.red, *pdb = das + lay.das, *h0s = pdb + lay.pdb;
    float *gc = h0s + lay.h0;
    int *spos = (int *)(gc + lay.gc);

    for (int64_t i = tid; i < accn; i += blockDim.x) acc[i] = 0.0f;

    for (int64_t cb = cbeg; cb < cend; cb += R) {
        const int64_t cig = cb + slot;
        const bool active = cig < cend;
        const int64_t d = gi * a.cpg + (active ? cig : cbeg), row = (b * Dm + d) * L;
        const float Ds = d_sum(a, d);
        __syncthreads();   // the previous batch is done with the rows and the per-slot sums
        float dDp = 0.0f;
        for (int64_t i = ct; i < L; i += NT) {
            const int64_t q = sk(i);
            const float uu = active ? a.u[row + i] : 0.0f;
            float g = active ? a.dy[row + i] : 0.0f;
            if (hz && active) {
                const float zz = a.z[row + i];
                g *= zz * sigm_f(zz);
            }
            ru[q] = uu;
            rgy[q] = g;
            rs1[q] = rs2[q] = 0.0f;
            if (hz) rys[q] = Ds * uu;
            if (hk) rdu[q] = 0.0f;
            else rdt[q] = active ? dt_at(a, b, 0, d, i) : 0.0f;
            dDp = fmaf(g, uu, dDp);
        }
        for (int64_t i = ct; i < K * N; i += NT) das[slot * K * N + i] = 0.0f;
        dDp = slot_sum(dDp, red, slot, wc, lane, NW);
        for (int st = 0; st < K; st++) {
            const int64_t cd = st * Dm + d;
            if (hk) {
                __syncthreads();   // the previous set's token pass is done with dt, S1, S2
                for (int64_t i = ct; i < L; i += NT) {
                    rdt[sk(i)] = active ? dt_at(a, b, st, d, i) : 0.0f;
                    rs1[sk(i)] = rs2[sk(i)] = 0.0f;
                }
            }
            for (int k = 0; k < a.dirs; k++) {
                if (set_of(K, k) != st) continue;
                const int o = order_of(a.dirs, k);
                const float *Bg = a.B + grp_off(a, b, st, gi), *Cg = a.C + grp_off(a, b, st, gi);
                const float *Ar = a.A + cd * N;
                float *accB = acc + st * 2 * (int)N * Lp, *accC = accB + (int)N * Lp;
                for (int n0 = 0; n0 < N; n0 += nb) {
                    const int nn = N - n0 < nb ? (int)(N - n0) : nb;
                    for (int n = 0; n < nn; n++) dat[n * R * NT + tid] = 0.0f;
                    for (int64_t c = a.nc - 1; c >= 0; c--) {
                        __syncthreads();   // rows written; the previous chunk is done with the stage, carries
                        stage_bc<ITEMS>(a, o, c, n0, Bg, Cg, stage, R > 1 && !a.atomics ? spos : nullptr);
                        for (int i = tid; i < R * nn; i += blockDim.x) {   // the chunk's saved boundary states
                            const int64_t r = i / nn, n = i % nn, dd = gi * a.cpg + cb + r;
                            h0s[r * nb + n] = c > 0 && cb + r < cend
                                                  ? a.states[(((b * Dm + dd) * a.dirs + k) * (a.nc - 1) + c - 1) * N +
                                                             n0 + n]
                                                  : 0.0f;
                        }
                        __syncthreads();
                        int p[ITEMS];
                        item_pos<ITEMS>(a, o, c * a.T + (int64_t)ct * ITEMS, p);
                        float dt[ITEMS], dtu[ITEMS], gy[ITEMS], s1[ITEMS], s2[ITEMS], ys[ITEMS];
#pragma unroll
                        for (int j = 0; j < ITEMS; j++) {
                            const bool in = p[j] >= 0;
                            dt[j] = in ? rdt[ski(p[j])] : 0.0f;
                            dtu[j] = in ? dt[j] * ru[ski(p[j])] : 0.0f;
                            gy[j] = in ? rgy[ski(p[j])] : 0.0f;
                            s1[j] = s2[j] = ys[j] = 0.0f;
                        }
                        const float *gin = gc + ((c & 1) * R + slot) * nb;
                        float *gout = gc + (((c + 1) & 1) * R + slot) * nb;
#pragma unroll 1
                        for (int n = 0; n < nn; n++) {
                            const float An = active ? Ar[n0 + n] : 0.0f, A2 = An * kLog2e;
                            const float *Bs = stage + n * ITEMS * NTp + ct, *Cs = stage + (nb + n) * ITEMS * NTp + ct;
                            float av[ITEMS], hs[ITEMS], bj[ITEMS], beta[ITEMS];
#pragma unroll
                            for (int j = 0; j < ITEMS; j++) {
                                bj[j] = Bs[j * NTp];
                                beta[j] = gy[j] * Cs[j * NTp];
                                av[j] = ex2(dt[j] * A2);
                            }
                            // recompute the chunk's states from its saved boundary state
                            float ag = av[0], bg = dtu[0] * bj[0];
#pragma unroll
                            for (int j = 1; j < ITEMS; j++) {
                                bg = fmaf(av[j], bg, dtu[j] * bj[j]);
                                ag *= av[j];
                            }
                            for (int off = 1; off < 32; off <<= 1) {
                                const float ao = shfl_up(ag, off), bo = shfl_up(bg, off);
                                if (lane >= off) {
                                    bg = fmaf(ag, bo, bg);
                                    ag *= ao;
                                }
                            }
                            float hw = h0s[slot * nb + n];
                            if (NW > 1) {
                                float *x = xwf + (int64_t)((n & 1) * R + slot) * NW * 2;
                                if (lane == 31) x[2 * wc] = ag, x[2 * wc + 1] = bg;
                                __syncthreads();
                                for (int w = 0; w < wc; w++) hw = fmaf(x[2 * w], hw, x[2 * w + 1]);
                            }
                            const float hup = shfl_up(fmaf(ag, hw, bg), 1), hin = lane == 0 ? hw : hup;
                            float h = hin;
#pragma unroll
                            for (int j = 0; j < ITEMS; j++) {
                                h = fmaf(av[j], h, dtu[j] * bj[j]);
                                hs[j] = h;
                            }
                            if (hz)
#pragma unroll
                                for (int j = 0; j < ITEMS; j++) ys[j] = fmaf(Cs[j * NTp], hs[j], ys[j]);
                            // adjoint: X_s = a_s (beta_s + X_{s+1}); a thread maps X_in (from its right) to
                            // al * X_in + bl, and the maps compose right to left over lanes and warps
                            float al = 1.0f, bl = 0.0f;
#pragma unroll
                            for (int j = ITEMS - 1; j >= 0; j--) {
                                bl = av[j] * (beta[j] + bl);
                                al *= av[j];
                            }
                            for (int off = 1; off < 32; off <<= 1) {   // inclusive suffix over the lanes
                                const float ao = shfl_down(al, off), bo = shfl_down(bl, off);
                                if (lane + off < 32) {
                                    bl = fmaf(al, bo, bl);
                                    al *= ao;
                                }
                            }
                            float gw = c + 1 < a.nc ? gin[n] : 0.0f, gtot = 0.0f;   // gw: X entering the warp
                            if (NW > 1) {
                                float *x = xwr + (int64_t)((n & 1) * R + slot) * NW * 2;
                                if (lane == 0) x[2 * wc] = al, x[2 * wc + 1] = bl;
                                __syncthreads();
                                for (int w = NW - 1; w > wc; w--) gw = fmaf(x[2 * w], gw, x[2 * w + 1]);
                                gtot = gw;
                                for (int w = wc; w >= 0; w--) gtot = fmaf(x[2 * w], gtot, x[2 * w + 1]);
                            }
                            // X leaving this thread to the left; the next lane's is what enters this one
                            const float xl = fmaf(al, gw, bl), xdn = shfl_down(xl, 1);
                            if (NW == 1) gtot = shfl_idx(xl, 0);
                            if (ct == 0) gout[n] = gtot;
                            float gx = lane == 31 ? gw : xdn, dA = 0.0f;
                            float *xbb = xb + (int64_t)(n & 1) * R * 2 * ITEMS * NT;
#pragma unroll
                            for (int j = ITEMS - 1; j >= 0; j--) {
                                const float G = beta[j] + gx;
                                const float hp = j > 0 ? hs[j - 1] : hin;
                                const float ga = G * hp * av[j];   // gradient of the exponent dt*A
                                const float vB = G * dtu[j], vC = gy[j] * hs[j];
                                dA = fmaf(ga, dt[j], dA);
                                s2[j] = fmaf(ga, An, s2[j]);
                                s1[j] = fmaf(G, bj[j], s1[j]);
                                gx = av[j] * G;
                                if (R == 1) {
                                    if (p[j] >= 0) {
                                        accB[(n0 + n) * Lp + ski(p[j])] += vB;
                                        accC[(n0 + n) * Lp + ski(p[j])] += vC;
                                    }
                                } else if (a.atomics) {   // opt-in: the slots' order varies from run to run
                                    if (p[j] >= 0) {
                                        atomicAdd(&accB[(n0 + n) * Lp + ski(p[j])], vB);
                                        atomicAdd(&accC[(n0 + n) * Lp + ski(p[j])], vC);
                                    }
                                } else {
                                    xbb[((slot * 2) * ITEMS + j) * NT + ct] = vB;
                                    xbb[((slot * 2 + 1) * ITEMS + j) * NT + ct] = vC;
                                }
                            }
                            dat[n * R * NT + tid] += dA;
                            if (R > 1 && !a.atomics) {   // the R channels' dB, dC terms, summed in slot order
                                __syncthreads();
                                for (int e = tid; e < 2 * ITEMS * NT; e += blockDim.x) {
                                    const int which = e / (ITEMS * NT), jt = e % (ITEMS * NT), pp = spos[jt];
                                    if (pp < 0) continue;
                                    float sum = 0.0f;
                                    for (int r = 0; r < R; r++) sum += xbb[(r * 2 + which) * ITEMS * NT + jt];
                                    (which ? accC : accB)[(n0 + n) * Lp + ski(pp)] += sum;
                                }
                            }
                        }
#pragma unroll
                        for (int j = 0; j < ITEMS; j++)
                            if (p[j] >= 0) {
                                rs1[ski(p[j])] += s1[j];
                                rs2[ski(p[j])] += s2[j];
                                if (hz) rys[ski(p[j])] += ys[j];
                            }
                    }
                    for (int n = 0; n < nn; n++) {
                        const float v = slot_sum(dat[n * R * NT + tid], red, slot, wc, lane, NW);
                        if (ct == 0) das[(slot * K + st) * N + n0 + n] += v;
                    }
                }
            }
            __syncthreads();   // S1, S2 of this set are complete
            float dbp = 0.0f;
            if (active) {
                const int64_t drow = (b * K * Dm + cd) * L;
                const float bd = a.bias ? a.bias[cd] : 0.0f;
                for (int64_t i = ct; i < L; i += NT) {
                    const int64_t q = sk(i);
                    float g = fmaf(ru[q], rs1[q], rs2[q]) * dsoftplus_f(a.delta[drow + i] + bd);
                    if (a.mask) g *= a.mask[b * L + i];
                    if (a.ddelta) a.ddelta[drow + i] += g;
                    dbp += g;
                    if (hk) rdu[q] = fmaf(rdt[q], rs1[q], rdu[q]);
                    else if (a.du) a.du[row + i] += fmaf(rdt[q], rs1[q], Ds * rgy[q]);
                }
            }
            dbp = slot_sum(dbp, red, slot, wc, lane, NW);
            if (ct == 0) pdb[slot * K + st] = dbp;
        }
        if (active) {
            for (int64_t i = ct; i < L; i += NT) {
                const int64_t q = sk(i);
                if (hk && a.du) a.du[row + i] += fmaf(Ds, rgy[q], rdu[q]);
                if (hz && a.dz) {
                    const float zz = a.z[row + i], sg = sigm_f(zz);
                    a.dz[row + i] += a.dy[row + i] * rys[q] * sg * (1.0f + zz * (1.0f - sg));
                }
            }
        }
        __syncthreads();   // das, pdb complete
        if (active)
            for (int64_t i = ct; i < K * (N + 2); i += NT) {
                const int64_t st = i / (N + 2), j = i % (N + 2);
                const float v = j < N ? das[(slot * K + st) * N + j] : j == N ? dDp : pdb[slot * K + st];
                a.pp[((b * K + st) * Dm + d) * (N + 2) + j] = v;
            }
    }
    if (a.acc_smem) {
        __syncthreads();
        for (int64_t i = tid; i < accn; i += blockDim.x) qslice[i] = acc[i];
    }
}

// ---- host side ----

// Kernels above 48 KB of dynamic shared memory must opt in; done once per kernel and size (a race only
// repeats the call), so that steps after the first make no such call (CUDA graph capture).
cudaError_t allow_smem(const void *kern, size_t bytes) {
    static const void *done_kern[16];
    static size_t done_bytes[16];
    if (bytes <= 48 * 1024) return cudaSuccess;
    int i = 0;
    for (; i < 16 && done_kern[i]; i++)
        if (done_kern[i] == kern && done_bytes[i] >= bytes) return cudaSuccess;
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (e == cudaSuccess && i < 16) done_kern[i] = kern, done_bytes[i] = bytes;
    return e;
}

template <typename Kern> const char *launch(Kern kern, int64_t blocks, int threads, size_t smem, cudaStream_t st,
                                            const Args &a, const char *what) {
    thread_local char msg[256];
    if (blocks < 1 || blocks > 0x7fffffff) {
        snprintf(msg, sizeof msg, "%s: grid of %lld blocks out of range", what, (long long)blocks);
        return msg;
    }
    if (threads < 32 || threads > kMaxThreads || threads % 32) {
        snprintf(msg, sizeof msg, "%s: %d threads per block", what, threads);
        return msg;
    }
    cudaError_t e = allow_smem((const void *)kern, smem);
    if (e == cudaSuccess) {
#ifdef IMB_CUDA_EMU
        (void)st;
        imb_emu_launch(dim3((unsigned)blocks), dim3((unsigned)threads), smem, [&] { kern(a); });
#else
        kern<<<(unsigned)blocks, threads, smem, st>>>(a);
#endif
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) return nullptr;
    snprintf(msg, sizeof msg, "%s (%lld blocks x %d threads, %zu B shared): %s", what, (long long)blocks, threads,
             smem, cudaGetErrorString(e));
    return msg;
}

}   // namespace

size_t fwd_smem_bytes(const Args &a, const Plan &p) {
    Args f = a;
    f.nw = p.nw, f.rf = p.rf, f.nb = p.nbf, f.Lp = p.Lp;
    return sizeof(float) * (size_t)fwd_layout(f, p.items).total;
}

size_t bwd_smem_bytes(const Args &a, const Plan &p) {
    Args f = a;
    f.nw = p.nw, f.rb = p.rb, f.nb = p.nbb, f.acc_smem = p.acc_smem, f.atomics = p.atomics, f.Lp = p.Lp;
    f.rows_global = p.rows_global;
    return sizeof(float) * (size_t)bwd_layout(f, p.items).total;
}

const char *launch_fwd_fast(const Args &a, const Plan &p, cudaStream_t st) {
    const int64_t blocks = a.Bt * a.G * ((a.cpg + p.rf - 1) / p.rf);
    const int threads = p.rf * p.nw * 32;
    const char *w = "selective scan forward";
    return p.items == 4 ? launch(scan_fwd_kernel<4>, blocks, threads, p.smem_f, st, a, w)
         : p.items == 7 ? launch(scan_fwd_kernel<7>, blocks, threads, p.smem_f, st, a, w)
                        : launch(scan_fwd_kernel<8>, blocks, threads, p.smem_f, st, a, w);
}

const char *launch_bwd_fast(const Args &a, const Plan &p, cudaStream_t st) {
    const int64_t blocks = a.Bt * a.G * p.tiles;
    const int threads = p.rb * p.nw * 32;
    const char *w = "selective scan backward";
    return p.items == 4 ? launch(scan_bwd_kernel<4>, blocks, threads, p.smem_b, st, a, w)
         : p.items == 7 ? launch(scan_bwd_kernel<7>, blocks, threads, p.smem_b, st, a, w)
                        : launch(scan_bwd_kernel<8>, blocks, threads, p.smem_b, st, a, w);
}

}   // namespace imb_scan
