// Fused multi-head attention on CUDA, fp32: flash-attention forward and a deterministic FlashAttention-2 backward.
//
// Nothing of size Lq x Lk ever reaches global memory. The forward streams key/value tiles through shared
// memory with an online softmax and saves one log-sum-exp per query row; the backward recomputes the
// probabilities tile by tile from it. The backward needs no atomics (DESIGN: deterministic reductions):
//   1. rowdot: D[i] = dout_i . out_i (what the CPU reference calls rowdot),
//   2. dK/dV: one block per key tile walks the query tiles and keeps dK, dV in registers,
//   3. dQ:    one block per query tile walks the key tiles and keeps dQ in registers,
// so every gradient element is summed by one thread in a fixed order. 2 and 3 both recompute the scores,
// which costs 7 tile products per (query tile, key tile) instead of FA-2's 5; that is the price of
// determinism without a second Lq x Lk-sized buffer.
//
// Thread layout (every kernel): 4 warps; lane = ty * 8 + tx with ty in 0..3, tx in 0..7. A kernel's tile
// has "rows" (queries in the forward and dQ, keys in dK/dV) and "columns" (the other side). Warp w owns
// 4*TM rows; thread (ty, tx) owns rows w*4*TM + ty + 4*i (i < TM), columns tx + 8*j (j < TN) of the score
// tile, and head-dim columns g*8*VO + tx*VO + c of the accumulators (see acc_col). The 8 lanes that share a
// row are one aligned group of 8 lanes, so row reductions are 3 xor-shuffles, and a row's probabilities
// only travel through shared memory inside one warp (__syncwarp, not __syncthreads).
//
// Shared-memory tiles are row-major with a row stride of width + 4 floats: rows stay 16-byte aligned for
// float4 reads, and the stride is 4 banks off a multiple of 32, so the 8 tx lanes reading 8 different rows
// (the B operand of the score products) and the 4 ty lanes reading 4 different rows (the A operand) hit
// disjoint banks. Score products read along the head dim with float4 (k-steps of 4).
//
// Head dims 16, 32, 64, 128 are compiled; any other Dh <= 128 runs the next larger one with the head dim
// zero-padded in shared memory (exact: the padded terms add 0*0) and scalar global loads. The scalar path
// is also used when a pointer is not 16-byte aligned.
//
// Each of the three big kernels exists in three versions, picked per call by IMB_ATTN_FWD_TILES,
// IMB_ATTN_DKV_TILES, IMB_ATTN_DQ_TILES (see tiles_env): "large" (default) and "small" register tiles of
// the SIMT kernels above, and "tc", tensor-core kernels (mma.m16n8k8 tf32 with the 3xTF32 split, fp32
// accuracy) further down. The tensor-core ones should be the fastest by far on an H100 but were written
// without a GPU to check them on (only bench/emu's emulation of the PTX fragment layouts): make them the
// default once bench/attn_bench has passed with them on the GPU.
#ifndef IMB_HAVE_CUDA
#define IMB_HAVE_CUDA 1   // this file only builds with CUDA; attention.h declares the _cuda entry points under it
#endif
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
extern "C" {
#include "attention.h"
}

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct AttnParams {
    const float *q, *k, *v;        // [B, Lq, C], [B, Lk, C], [B, Lk, C], C = H*Dh
    const float *mask;             // NULL or [B, Lk], key kept where != 0
    float *out, *lse;              // forward: [B, Lq, C]; [B, H, Lq] or NULL (inference: not saved)
    const float *dout, *fout;      // backward: dL/dout and the forward's out, [B, Lq, C]
    const float *lse_in;           // backward: the forward's lse
    float *rowdot;                 // backward scratch [B, H, Lq]
    float *dq, *dk, *dv;           // backward, added into; each may be NULL
    int B, H, Lq, Lk, Dh;
    int64_t C;
    int causal;
    float scale;                   // applied to q.k
    float scale_log2;              // scale * log2(e): scores are kept in base-2 units for exp2
};

__host__ __device__ constexpr int ld_of(int width) { return width + 4; }

// Dynamic shared memory. The emulator build (bench/emu) hands out an exactly sized heap buffer instead,
// so that a sanitizer sees any read or write past the size the host asked for.
__device__ __forceinline__ float *attn_smem() {
#ifdef IMB_CUDA_EMU
    return imb_emu_dynamic_smem<float>();
#else
    extern __shared__ float4 imb_attn_smem[];
    return reinterpret_cast<float *>(imb_attn_smem);
#endif
}

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

// 2^x on the special-function unit (relative error ~2^-22, far inside the 1e-5 parity bound), without
// exp2f's denormal range fix-ups; -inf gives 0 and results below 2^-126 flush to 0 (they would round
// away in every sum they enter). The emulator has no PTX: it uses exp2f.
__device__ __forceinline__ float fast_exp2(float x) {
#ifdef IMB_CUDA_EMU
    return exp2f(x);
#else
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#endif
}

// Vectors of VO consecutive floats (VO = 2, 4) for the accumulator columns.
template <int VO> struct Vec;
template <> struct Vec<4> {
    __device__ __forceinline__ static void ld(const float *p, float *o) {
        float4 t = *reinterpret_cast<const float4 *>(p);
        o[0] = t.x; o[1] = t.y; o[2] = t.z; o[3] = t.w;
    }
    __device__ __forceinline__ static void st(float *p, const float *o) {
        *reinterpret_cast<float4 *>(p) = make_float4(o[0], o[1], o[2], o[3]);
    }
};
template <> struct Vec<2> {
    __device__ __forceinline__ static void ld(const float *p, float *o) {
        float2 t = *reinterpret_cast<const float2 *>(p);
        o[0] = t.x; o[1] = t.y;
    }
    __device__ __forceinline__ static void st(float *p, const float *o) {
        *reinterpret_cast<float2 *>(p) = make_float2(o[0], o[1]);
    }
};

// Accumulator column layout over a head dim of DH: VO consecutive columns per thread and group, GO groups;
// the 8 tx lanes of a group cover 8*VO consecutive columns, so a row's loads and stores are contiguous.
template <int DH> struct AccCols {
    static constexpr int VO = DH >= 32 ? 4 : DH / 8;
    static constexpr int GO = DH / (8 * VO);
    static constexpr int N = VO * GO;   // = DH / 8 accumulators per row and thread
    static_assert(DH % 16 == 0 && N == DH / 8, "head dim tile must be a multiple of 16");
};
template <int DH> __device__ __forceinline__ int acc_col(int g, int tx) {
    return g * 8 * AccCols<DH>::VO + tx * AccCols<DH>::VO;
}

// Copies rows [0, NROWS) of a token-major global tile into a [NROWS][DH + 4] shared tile. Rows at or past
// nvalid and head-dim columns at or past Dh are zero-filled: the products then run over whole tiles and
// every value they touch is finite.
template <int DH, int NROWS, bool VEC>
__device__ __forceinline__ void load_tile(float *s, const float *__restrict__ g, int64_t ldg, int nvalid, int Dh,
                                          int tid) {
    constexpr int LD = ld_of(DH);
    if (VEC) {
        constexpr int V4 = DH / 4;
#pragma unroll
        for (int e = tid; e < NROWS * V4; e += kThreads) {
            int r = e / V4, c = (e % V4) * 4;
            float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
            if (r < nvalid) x = __ldg(reinterpret_cast<const float4 *>(g + (int64_t)r * ldg + c));
            *reinterpret_cast<float4 *>(s + r * LD + c) = x;
        }
    } else {
        for (int e = tid; e < NROWS * DH; e += kThreads) {
            int r = e / DH, c = e % DH;
            float x = 0.f;
            if (r < nvalid && c < Dh) x = __ldg(g + (int64_t)r * ldg + c);
            s[r * LD + c] = x;
        }
    }
}

// acc[i][j] = sum_k A[4i][k] * B[tx + 8j][k] over k < DH: the score-like products (Q.K^T, dO.V^T and the
// transposed ones). A points at the thread's first row, B at the tile's row 0, both [*][DH + 4]. Only
// column groups j < njg are computed (PARTIAL: the last key or query tile), the rest keep their value.
// The sum runs k = 0, 1, ... with one fmaf each, so S recomputed in the backward is bit-identical to the
// forward's (fmaf(a, b, c) == fmaf(b, a, c)).
template <int TM, int TN, int DH, bool PARTIAL>
__device__ __forceinline__ void mm_nt(float (&acc)[TM][TN], const float *A, const float *Bm, int tx, int njg) {
    constexpr int LD = ld_of(DH);
#pragma unroll 2
    for (int k = 0; k < DH; k += 4) {
        float4 a[TM], b[TN];
#pragma unroll
        for (int i = 0; i < TM; i++) a[i] = *reinterpret_cast<const float4 *>(A + 4 * i * LD + k);
#pragma unroll
        for (int j = 0; j < TN; j++) {
            b[j] = make_float4(0.f, 0.f, 0.f, 0.f);
            if (!PARTIAL || j < njg) b[j] = *reinterpret_cast<const float4 *>(Bm + (tx + 8 * j) * LD + k);
        }
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++)
                if (!PARTIAL || j < njg) {
                    acc[i][j] = fmaf(a[i].x, b[j].x, acc[i][j]);
                    acc[i][j] = fmaf(a[i].y, b[j].y, acc[i][j]);
                    acc[i][j] = fmaf(a[i].z, b[j].z, acc[i][j]);
                    acc[i][j] = fmaf(a[i].w, b[j].w, acc[i][j]);
                }
    }
}

template <int TM, int TN, int DH>
__device__ __forceinline__ void mm_nt_tile(float (&acc)[TM][TN], const float *A, const float *Bm, int tx, int njg) {
    if (njg >= TN) mm_nt<TM, TN, DH, false>(acc, A, Bm, tx, TN);
    else mm_nt<TM, TN, DH, true>(acc, A, Bm, tx, njg);
}

// acc[i][col] += sum_{kk < nkk} P[4i][kk] * V[kk][col]: probabilities (or dS) times a [*][DH + 4] tile.
// P points at the thread's first row with row stride ldp; nkk is a multiple of 4 and P[.][kk] is 0 (and
// V[kk] finite) for every kk past the valid ones.
template <int TM, int DH>
__device__ __forceinline__ void mm_nn(float (&acc)[TM][AccCols<DH>::N], const float *P, int ldp, const float *V,
                                      int tx, int nkk) {
    constexpr int LD = ld_of(DH), VO = AccCols<DH>::VO, GO = AccCols<DH>::GO;
    for (int kk = 0; kk < nkk; kk += 4) {
        float p[TM][4];
#pragma unroll
        for (int i = 0; i < TM; i++) {
            float4 t = *reinterpret_cast<const float4 *>(P + 4 * i * ldp + kk);
            p[i][0] = t.x; p[i][1] = t.y; p[i][2] = t.z; p[i][3] = t.w;
        }
#pragma unroll
        for (int u = 0; u < 4; u++) {
            float vv[GO][VO];
#pragma unroll
            for (int g = 0; g < GO; g++) Vec<VO>::ld(V + (kk + u) * LD + acc_col<DH>(g, tx), vv[g]);
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int g = 0; g < GO; g++)
#pragma unroll
                    for (int c = 0; c < VO; c++) acc[i][g * VO + c] = fmaf(p[i][u], vv[g][c], acc[i][g * VO + c]);
        }
    }
}

// Writes (ADD: adds) mul * acc into one token row of a [.., C] tensor at the thread's head-dim columns.
template <int DH, bool VEC, bool ADD>
__device__ __forceinline__ void store_row(float *g, const float *acc, float mul, int tx, int Dh) {
    constexpr int VO = AccCols<DH>::VO, GO = AccCols<DH>::GO;
#pragma unroll
    for (int gi = 0; gi < GO; gi++) {
        int col = acc_col<DH>(gi, tx);
        if (VEC) {
            float o[VO];
            if (ADD) Vec<VO>::ld(g + col, o);
#pragma unroll
            for (int c = 0; c < VO; c++) o[c] = ADD ? o[c] + mul * acc[gi * VO + c] : mul * acc[gi * VO + c];
            Vec<VO>::st(g + col, o);
        } else {
#pragma unroll
            for (int c = 0; c < VO; c++)
                if (col + c < Dh) g[col + c] = ADD ? g[col + c] + mul * acc[gi * VO + c] : mul * acc[gi * VO + c];
        }
    }
}

__device__ __forceinline__ float warp_max8(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 4));
}
__device__ __forceinline__ float warp_sum8(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    x += __shfl_xor_sync(0xffffffffu, x, 2);
    return x + __shfl_xor_sync(0xffffffffu, x, 4);
}

// Grid: one block per (row tile, batch*head), flattened into x (no 65535 limit on y). Tiles of one head
// are neighbours, so its K/V are still in L2 for the next block. rev puts the last tile first: with a
// causal mask the last query tiles are the longest, and starting them first shortens the tail.
struct TileIdx { int tile, bh, b, h; };
__device__ __forceinline__ TileIdx tile_index(int ntiles, int H, bool rev) {
    TileIdx t;
    t.bh = (int)(blockIdx.x / (unsigned)ntiles);
    t.tile = (int)(blockIdx.x % (unsigned)ntiles);
    if (rev) t.tile = ntiles - 1 - t.tile;
    t.b = t.bh / H;
    t.h = t.bh % H;
    return t;
}

// ---------------------------------------------------------------------------------------------------
// Forward. Rows = BM = 16*TM queries, columns = BN = 8*TN keys per tile.
template <int DH, int TM, int TN> struct FwdSmem {
    static constexpr int BM = 16 * TM, BN = 8 * TN, LDD = ld_of(DH), LDP = ld_of(BN);
    static constexpr int floats = BM * LDD + 2 * BN * LDD + BM * LDP + BN;
};

// MINB: blocks per SM promised to the compiler, which caps registers at 65536 / (128 * MINB).
template <int DH, int TM, int TN, int MINB, bool VEC>
__global__ void __launch_bounds__(kThreads, MINB) attn_fwd_kernel(AttnParams p) {
    using L = FwdSmem<DH, TM, TN>;
    constexpr int BM = L::BM, BN = L::BN, LDD = L::LDD, LDP = L::LDP, NA = AccCols<DH>::N;
    float *Qs = attn_smem();          // [BM][LDD]
    float *Ks = Qs + BM * LDD;        // [BN][LDD]
    float *Vs = Ks + BN * LDD;        // [BN][LDD]
    float *Ps = Vs + BN * LDD;        // [BM][LDP], each warp's rows written and read by that warp only
    float *keep = Ps + BM * LDP;      // [BN], 1 for a kept key of the tile, 0 for padding or past Lk

    const int tid = threadIdx.x, warp = tid >> 5, ty = (tid & 31) >> 3, tx = tid & 7;
    const int ntiles = (p.Lq + BM - 1) / BM;
    const TileIdx t = tile_index(ntiles, p.H, p.causal != 0);
    const int q0 = t.tile * BM, nq = imin(BM, p.Lq - q0);
    const int64_t hoff = (int64_t)t.h * p.Dh;
    const int row0 = warp * 4 * TM + ty;           // the thread's first row in the tile
    const bool warp_rows = q0 + warp * 4 * TM < p.Lq;   // warp-uniform: the warp owns at least one real query

    load_tile<DH, BM, VEC>(Qs, p.q + ((int64_t)t.b * p.Lq + q0) * p.C + hoff, p.C, nq, p.Dh, tid);

    float m[TM], l[TM], acc[TM][NA];
#pragma unroll
    for (int i = 0; i < TM; i++) {
        m[i] = -INFINITY;   // running max of the row's base-2 scores; -inf while no key was kept
        l[i] = 0.f;         // this thread's share of the row's sum of exp2(s - m)
#pragma unroll
        for (int c = 0; c < NA; c++) acc[i][c] = 0.f;
    }

    // With a causal mask the keys past this tile's last query are excluded for every row: stop there.
    const int kend = p.causal ? imin(p.Lk, q0 + BM) : p.Lk;
    for (int k0 = 0; k0 < kend; k0 += BN) {
        const int nk = imin(BN, p.Lk - k0);
        __syncthreads();   // every warp is done with the previous K, V (and, first time round, Qs is complete after the next one)
        const int64_t kvoff = ((int64_t)t.b * p.Lk + k0) * p.C + hoff;
        load_tile<DH, BN, VEC>(Ks, p.k + kvoff, p.C, nk, p.Dh, tid);
        load_tile<DH, BN, VEC>(Vs, p.v + kvoff, p.C, nk, p.Dh, tid);
        for (int j = tid; j < BN; j += kThreads)
            keep[j] = (j < nk && (!p.mask || p.mask[(int64_t)t.b * p.Lk + k0 + j] != 0.0f)) ? 1.f : 0.f;
        __syncthreads();
        if (!warp_rows) continue;

        const int njg = (nk + 7) >> 3;   // column groups holding at least one key < Lk
        float s[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++) s[i][j] = 0.f;
        mm_nt_tile<TM, TN, DH>(s, Qs + row0 * LDD, Ks, tx, njg);

        bool kept[TN];   // read once: the compiler cannot move these loads across the Ps stores below
#pragma unroll
        for (int j = 0; j < TN; j++) kept[j] = j < njg && keep[tx + 8 * j] != 0.f;
#pragma unroll
        for (int i = 0; i < TM; i++) {
            const int qi = q0 + row0 + 4 * i;
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < TN; j++) {
                const int kj = tx + 8 * j;
                const bool ok = kept[j] && (!p.causal || k0 + kj <= qi);
                s[i][j] = ok ? s[i][j] * p.scale_log2 : -INFINITY;
                mx = fmaxf(mx, s[i][j]);
            }
            const float mnew = fmaxf(m[i], warp_max8(mx));
            // mnew = -inf: nothing kept yet for this row; any finite reference gives p = 0 and no NaN
            const float mref = mnew == -INFINITY ? 0.f : mnew;
            const float alpha = fast_exp2(m[i] - mref);   // 0 when m was -inf (l and acc are still 0 then)
            m[i] = mnew;
            float psum = 0.f;
#pragma unroll
            for (int j = 0; j < TN; j++) {
                const float pj = fast_exp2(s[i][j] - mref);
                psum += pj;
                Ps[(row0 + 4 * i) * LDP + tx + 8 * j] = pj;
            }
            l[i] = l[i] * alpha + psum;
#pragma unroll
            for (int c = 0; c < NA; c++) acc[i][c] *= alpha;
        }
        __syncwarp();
        mm_nn<TM, DH>(acc, Ps + row0 * LDP, LDP, Vs, tx, (nk + 3) & ~3);
    }

    if (!warp_rows) return;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const float lt = warp_sum8(l[i]);   // all 32 lanes, before the per-row branch
        const int qi = q0 + row0 + 4 * i;
        if (qi >= p.Lq) continue;
        // lt = 0 only for a query with no kept key: zeros and lse = -inf (the CPU reference's zero row of P)
        const float inv = lt > 0.f ? 1.f / lt : 0.f;
        store_row<DH, VEC, false>(p.out + ((int64_t)t.b * p.Lq + qi) * p.C + hoff, acc[i], inv, tx, p.Dh);
        if (p.lse && tx == 0) p.lse[(int64_t)t.bh * p.Lq + qi] = lt > 0.f ? m[i] * kLn2 + logf(lt) : -INFINITY;
    }
}

// ---------------------------------------------------------------------------------------------------
// Forward on tensor cores (opt-in: IMB_ATTN_FWD_TILES=tc), fp32 accuracy through 3xTF32: each operand x is
// split into big = tf32(x) and small = tf32(x - big), and a product is accumulated as small*big +
// big*small + big*big (the dropped small*small term is ~2^-22 relative; plain tf32 would be ~2^-11 and
// miss the 1e-5 parity bound). mma.m16n8k8 (tf32 in, fp32
// accumulate), fragment layouts per the PTX ISA, with g = lane / 4 and t = lane % 4:
//   A 16x8 (row): a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4)
//   B 8x8 (col):  b0 (k = t, n = g), b1 (k = t+4, n = g)
//   C 16x8:       c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
// Each warp owns 16 query rows. S = Q K^T comes out in C layout; P V needs P in A layout, which the C
// registers already are if the 8 keys of a chunk enter the P V product permuted (k index t <-> key 2t,
// t+4 <-> key 2t+1): the contraction does not care about key order, and V's B fragment is read with the
// same permutation. So P never goes through shared memory.
// x = big + small with big, small tf32 values (low 13 bits zero): round-half-away at bit 13 on the bits
// (what cvt.rna.tf32 does, but as two integer ops, and the same code in the emulator); x - big is exact.
__device__ __forceinline__ void split_tf32(float x, uint32_t &big, uint32_t &small) {
    big = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
    small = (__float_as_uint(x - __uint_as_float(big)) + 0x1000u) & 0xffffe000u;
}
__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#ifdef IMB_CUDA_EMU
    imb_emu_mma_m16n8k8_tf32(d, a, b);
#else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Rows = 16 per warp, BM = 64 queries per block; BN = 64 keys per tile.
template <int DH> struct FwdTcSmem {
    static constexpr int BM = 16 * kWarps, BN = 64, LDD = ld_of(DH);
    static constexpr int floats = BM * LDD + 2 * BN * LDD + BN;
};

// s[j] += (A B^T) for the warp's 16 rows of A and columns 8j..8j+7 of B^T, i.e. rows of B, over the
// head dim: Q K^T, dO V^T, K Q^T, V dO^T. Aw points at the warp's first row, Bm at the tile's row 0, both
// [*][DH + 4]. Only column chunks j < njg (PARTIAL).
template <int DH, int NJ, bool PARTIAL>
__device__ __forceinline__ void tc_nt(float (&s)[NJ][4], const float *Aw, const float *Bm, int g, int t, int njg) {
    constexpr int LD = ld_of(DH);
#pragma unroll 2
    for (int d0 = 0; d0 < DH; d0 += 8) {
        float a[4];
        a[0] = Aw[g * LD + d0 + t];
        a[1] = Aw[(g + 8) * LD + d0 + t];
        a[2] = Aw[g * LD + d0 + t + 4];
        a[3] = Aw[(g + 8) * LD + d0 + t + 4];
        uint32_t ab[4], as[4];
#pragma unroll
        for (int i = 0; i < 4; i++) split_tf32(a[i], ab[i], as[i]);
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            if (PARTIAL && j >= njg) continue;
            uint32_t bb[2], bs[2];
            split_tf32(Bm[(8 * j + g) * LD + d0 + t], bb[0], bs[0]);
            split_tf32(Bm[(8 * j + g) * LD + d0 + t + 4], bb[1], bs[1]);
            mma_tf32(s[j], as, bb);
            mma_tf32(s[j], ab, bs);
            mma_tf32(s[j], ab, bb);
        }
    }
}

template <int DH, int NJ>
__device__ __forceinline__ void tc_nt_tile(float (&s)[NJ][4], const float *Aw, const float *Bm, int g, int t, int njg) {
    if (njg >= NJ) tc_nt<DH, NJ, false>(s, Aw, Bm, g, t, NJ);
    else tc_nt<DH, NJ, true>(s, Aw, Bm, g, t, njg);
}

// o[n] += P V for the warp's 16 rows: P (16 x 8*NJ) in the C registers of a tc_nt product, V a
// [8*NJ][DH + 4] tile (rows past the valid ones zero). Chunks j >= njg are skipped (P is 0 there). The
// chunk's keys enter permuted (k index t <-> key 2t, t+4 <-> 2t+1) so that P's C registers are its A
// fragment as they are.
template <int DH, int NJ>
__device__ __forceinline__ void tc_pv(float (&o)[DH / 8][4], const float (&pm)[NJ][4], const float *V, int g, int t,
                                      int njg) {
    constexpr int LD = ld_of(DH), ND = DH / 8;
#pragma unroll
    for (int j = 0; j < NJ; j++) {
        if (j >= njg) continue;   // warp-uniform
        const float a[4] = { pm[j][0], pm[j][2], pm[j][1], pm[j][3] };
        uint32_t ab[4], as[4];
#pragma unroll
        for (int i = 0; i < 4; i++) split_tf32(a[i], ab[i], as[i]);
        const float *v0 = V + (8 * j + 2 * t) * LD + g, *v1 = v0 + LD;
#pragma unroll
        for (int n = 0; n < ND; n++) {
            uint32_t bb[2], bs[2];
            split_tf32(v0[8 * n], bb[0], bs[0]);
            split_tf32(v1[8 * n], bb[1], bs[1]);
            mma_tf32(o[n], as, bb);
            mma_tf32(o[n], ab, bs);
            mma_tf32(o[n], ab, bb);
        }
    }
}

// Adds (ADD) or writes mul * the warp's C-layout accumulator rows into a token row of a [.., C] tensor:
// r = 0 is the lane's row g (registers 0, 1), r = 1 row g + 8 (registers 2, 3); columns 8n + 2t, +1.
template <int DH, bool VEC, bool ADD>
__device__ __forceinline__ void tc_store_row(float *row, const float (&o)[DH / 8][4], int r, float mul, int t, int Dh) {
#pragma unroll
    for (int n = 0; n < DH / 8; n++) {
        const int col = 8 * n + 2 * t;
        float x0 = o[n][2 * r] * mul, x1 = o[n][2 * r + 1] * mul;
        if (VEC) {
            if (ADD) {
                const float2 y = *reinterpret_cast<const float2 *>(row + col);
                x0 += y.x;
                x1 += y.y;
            }
            *reinterpret_cast<float2 *>(row + col) = make_float2(x0, x1);
        } else {
            if (col < Dh) row[col] = ADD ? row[col] + x0 : x0;
            if (col + 1 < Dh) row[col + 1] = ADD ? row[col + 1] + x1 : x1;
        }
    }
}

template <int DH, bool VEC>
__global__ void __launch_bounds__(kThreads) attn_fwd_tc_kernel(AttnParams p) {
    using L = FwdTcSmem<DH>;
    constexpr int BM = L::BM, BN = L::BN, LDD = L::LDD, NJ = BN / 8, ND = DH / 8;
    float *Qs = attn_smem();          // [BM][LDD]
    float *Ks = Qs + BM * LDD;        // [BN][LDD]
    float *Vs = Ks + BN * LDD;        // [BN][LDD]
    float *keep = Vs + BN * LDD;      // [BN]

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int ntiles = (p.Lq + BM - 1) / BM;
    const TileIdx ti = tile_index(ntiles, p.H, p.causal != 0);
    const int q0 = ti.tile * BM, nq = imin(BM, p.Lq - q0);
    const int64_t hoff = (int64_t)ti.h * p.Dh;
    const bool warp_rows = q0 + warp * 16 < p.Lq;
    const int qa = q0 + warp * 16 + g, qb = qa + 8;   // this lane's two query rows

    load_tile<DH, BM, VEC>(Qs, p.q + ((int64_t)ti.b * p.Lq + q0) * p.C + hoff, p.C, nq, p.Dh, tid);

    float m[2] = { -INFINITY, -INFINITY }, l[2] = { 0.f, 0.f }, o[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;

    const int kend = p.causal ? imin(p.Lk, q0 + BM) : p.Lk;
    for (int k0 = 0; k0 < kend; k0 += BN) {
        const int nk = imin(BN, p.Lk - k0);
        __syncthreads();
        const int64_t kvoff = ((int64_t)ti.b * p.Lk + k0) * p.C + hoff;
        load_tile<DH, BN, VEC>(Ks, p.k + kvoff, p.C, nk, p.Dh, tid);
        load_tile<DH, BN, VEC>(Vs, p.v + kvoff, p.C, nk, p.Dh, tid);
        for (int j = tid; j < BN; j += kThreads)
            keep[j] = (j < nk && (!p.mask || p.mask[(int64_t)ti.b * p.Lk + k0 + j] != 0.0f)) ? 1.f : 0.f;
        __syncthreads();
        if (!warp_rows) continue;

        const int njg = (nk + 7) >> 3;
        float s[NJ][4];
#pragma unroll
        for (int j = 0; j < NJ; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
        tc_nt_tile<DH, NJ>(s, Qs + warp * 16 * LDD, Ks, g, t, njg);

        float mx[2] = { -INFINITY, -INFINITY };
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int kj = 8 * j + 2 * t + (c & 1);   // key within the tile
                const int qi = c < 2 ? qa : qb;
                const bool ok = j < njg && keep[kj] != 0.f && (!p.causal || k0 + kj <= qi);
                s[j][c] = ok ? s[j][c] * p.scale_log2 : -INFINITY;
                mx[c >> 1] = fmaxf(mx[c >> 1], s[j][c]);
            }
        float mref[2], alpha[2], psum[2] = { 0.f, 0.f };
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            const float mnew = fmaxf(m[r], mx[r]);
            mref[r] = mnew == -INFINITY ? 0.f : mnew;   // see the SIMT forward
            alpha[r] = fast_exp2(m[r] - mref[r]);
            m[r] = mnew;
        }
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                s[j][c] = fast_exp2(s[j][c] - mref[c >> 1]);
                psum[c >> 1] += s[j][c];
            }
#pragma unroll
        for (int r = 0; r < 2; r++) l[r] = l[r] * alpha[r] + psum[r];
#pragma unroll
        for (int n = 0; n < ND; n++) {
            o[n][0] *= alpha[0]; o[n][1] *= alpha[0];
            o[n][2] *= alpha[1]; o[n][3] *= alpha[1];
        }
        tc_pv<DH, NJ>(o, s, Vs, g, t, njg);   // O += P V
    }

    if (!warp_rows) return;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float lt = l[r];
        lt += __shfl_xor_sync(0xffffffffu, lt, 1);
        lt += __shfl_xor_sync(0xffffffffu, lt, 2);
        const int qi = r ? qb : qa;
        if (qi >= p.Lq) continue;
        const float inv = lt > 0.f ? 1.f / lt : 0.f;
        tc_store_row<DH, VEC, false>(p.out + ((int64_t)ti.b * p.Lq + qi) * p.C + hoff, o, r, inv, t, p.Dh);
        if (p.lse && t == 0) p.lse[(int64_t)ti.bh * p.Lq + qi] = lt > 0.f ? m[r] * kLn2 + logf(lt) : -INFINITY;
    }
}

// ---------------------------------------------------------------------------------------------------
// Backward step 1: rowdot[b, h, i] = sum_d dout[b, i, h*Dh + d] * out[b, i, h*Dh + d] (= sum_j P_ij dP_ij).
// One thread per (b, i, h), consecutive threads on consecutive heads of one token: together contiguous.
template <bool VEC>
__global__ void __launch_bounds__(256) attn_rowdot_kernel(AttnParams p) {
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t total = (int64_t)p.B * p.Lq * p.H;
    if (idx >= total) return;
    const int h = (int)(idx % p.H);
    const int64_t bi = idx / p.H;   // b * Lq + i
    const float *o = p.fout + bi * p.C + (int64_t)h * p.Dh, *d = p.dout + bi * p.C + (int64_t)h * p.Dh;
    float s = 0.f;
    if (VEC) {   // Dh % 4 == 0 and 16-byte aligned rows
        for (int c = 0; c < p.Dh; c += 4) {
            const float4 a = __ldg(reinterpret_cast<const float4 *>(o + c));
            const float4 b = __ldg(reinterpret_cast<const float4 *>(d + c));
            s = fmaf(a.x, b.x, s); s = fmaf(a.y, b.y, s); s = fmaf(a.z, b.z, s); s = fmaf(a.w, b.w, s);
        }
    } else {
        for (int c = 0; c < p.Dh; c++) s = fmaf(__ldg(o + c), __ldg(d + c), s);
    }
    const int64_t b = bi / p.Lq, i = bi % p.Lq;
    p.rowdot[(b * p.H + h) * p.Lq + i] = s;
}

// Backward step 2: dK, dV. Rows = BNK = 16*TM keys (the block's), columns = BMQ = 8*TN queries per tile.
template <int DH, int TM, int TN> struct DkvSmem {
    static constexpr int BNK = 16 * TM, BMQ = 8 * TN, LDD = ld_of(DH), LDP = ld_of(BMQ);
    static constexpr int floats = 2 * BNK * LDD + 2 * BMQ * LDD + 2 * BNK * LDP + 2 * BMQ;
};

template <int DH, int TM, int TN, int MINB, bool VEC>
__global__ void __launch_bounds__(kThreads, MINB) attn_bwd_dkdv_kernel(AttnParams p) {
    using L = DkvSmem<DH, TM, TN>;
    constexpr int BNK = L::BNK, BMQ = L::BMQ, LDD = L::LDD, LDP = L::LDP, NA = AccCols<DH>::N;
    float *Ks = attn_smem();            // [BNK][LDD]
    float *Vs = Ks + BNK * LDD;         // [BNK][LDD]
    float *Qs = Vs + BNK * LDD;         // [BMQ][LDD]
    float *dOs = Qs + BMQ * LDD;        // [BMQ][LDD]
    float *Ps = dOs + BMQ * LDD;        // [BNK][LDP] P^T, per-warp rows
    float *dSs = Ps + BNK * LDP;        // [BNK][LDP] dS^T, per-warp rows
    float *lse2 = dSs + BNK * LDP;      // [BMQ] base-2 lse; +inf for padding and for queries with no key
    float *Dq = lse2 + BMQ;             // [BMQ] rowdot; 0 for padding

    const int tid = threadIdx.x, warp = tid >> 5, ty = (tid & 31) >> 3, tx = tid & 7;
    const int ntiles = (p.Lk + BNK - 1) / BNK;
    const TileIdx t = tile_index(ntiles, p.H, false);   // causal: the first key tiles see the most queries
    const int k0 = t.tile * BNK, nk = imin(BNK, p.Lk - k0);
    const int64_t hoff = (int64_t)t.h * p.Dh;
    const int row0 = warp * 4 * TM + ty;
    const bool warp_rows = k0 + warp * 4 * TM < p.Lk;

    const int64_t kvoff = ((int64_t)t.b * p.Lk + k0) * p.C + hoff;
    load_tile<DH, BNK, VEC>(Ks, p.k + kvoff, p.C, nk, p.Dh, tid);
    load_tile<DH, BNK, VEC>(Vs, p.v + kvoff, p.C, nk, p.Dh, tid);

    bool kept[TM];
    float dk[TM][NA], dv[TM][NA];
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int key = k0 + row0 + 4 * i;
        kept[i] = key < p.Lk && (!p.mask || p.mask[(int64_t)t.b * p.Lk + key] != 0.0f);
#pragma unroll
        for (int c = 0; c < NA; c++) dk[i][c] = dv[i][c] = 0.f;
    }

    // With a causal mask, queries before k0 see none of this block's keys.
    const int qstart = p.causal ? (k0 / BMQ) * BMQ : 0;
    for (int q0 = qstart; q0 < p.Lq; q0 += BMQ) {
        const int nq = imin(BMQ, p.Lq - q0);
        __syncthreads();   // every warp is done with the previous Q, dO, lse2, Dq
        const int64_t qoff = ((int64_t)t.b * p.Lq + q0) * p.C + hoff;
        load_tile<DH, BMQ, VEC>(Qs, p.q + qoff, p.C, nq, p.Dh, tid);
        load_tile<DH, BMQ, VEC>(dOs, p.dout + qoff, p.C, nq, p.Dh, tid);
        for (int j = tid; j < BMQ; j += kThreads) {
            float lv = INFINITY, dv_ = 0.f;
            if (j < nq) {
                const int64_t r = (int64_t)t.bh * p.Lq + q0 + j;
                const float ls = p.lse_in[r];
                lv = ls == -INFINITY ? INFINITY : ls * kLog2e;   // no kept key: P = exp2(s - inf) = 0
                dv_ = p.rowdot[r];
            }
            lse2[j] = lv;
            Dq[j] = dv_;
        }
        __syncthreads();
        if (!warp_rows) continue;

        const int njg = (nq + 7) >> 3;
        float s[TM][TN], dp[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++) s[i][j] = dp[i][j] = 0.f;
        mm_nt_tile<TM, TN, DH>(s, Ks + row0 * LDD, Qs, tx, njg);    // S^T = K Q^T
        mm_nt_tile<TM, TN, DH>(dp, Vs + row0 * LDD, dOs, tx, njg);  // dP^T = V dO^T
        float lj[TN], dj[TN];   // read once, ahead of the Ps / dSs stores
#pragma unroll
        for (int j = 0; j < TN; j++) {
            lj[j] = lse2[tx + 8 * j];
            dj[j] = Dq[tx + 8 * j];
        }
#pragma unroll
        for (int i = 0; i < TM; i++) {
            const int key = k0 + row0 + 4 * i;
#pragma unroll
            for (int j = 0; j < TN; j++) {
                const int qj = tx + 8 * j;
                const bool ok = j < njg && qj < nq && kept[i] && (!p.causal || q0 + qj >= key);
                const float pj = ok ? fast_exp2(s[i][j] * p.scale_log2 - lj[j]) : 0.f;
                Ps[(row0 + 4 * i) * LDP + qj] = pj;
                dSs[(row0 + 4 * i) * LDP + qj] = pj * (dp[i][j] - dj[j]);
            }
        }
        __syncwarp();
        const int nqq = (nq + 3) & ~3;
        mm_nn<TM, DH>(dv, Ps + row0 * LDP, LDP, dOs, tx, nqq);   // dV += P^T dO
        mm_nn<TM, DH>(dk, dSs + row0 * LDP, LDP, Qs, tx, nqq);   // dK += dS^T Q (scale applied at the end)
    }

    if (!warp_rows) return;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int key = k0 + row0 + 4 * i;
        if (key >= p.Lk) continue;
        const int64_t off = ((int64_t)t.b * p.Lk + key) * p.C + hoff;
        if (p.dk) store_row<DH, VEC, true>(p.dk + off, dk[i], p.scale, tx, p.Dh);
        if (p.dv) store_row<DH, VEC, true>(p.dv + off, dv[i], 1.f, tx, p.Dh);
    }
}

// Backward step 3: dQ. Rows = BMQ = 16*TM queries (the block's), columns = BNK = 8*TN keys per tile.
template <int DH, int TM, int TN> struct DqSmem {
    static constexpr int BMQ = 16 * TM, BNK = 8 * TN, LDD = ld_of(DH), LDP = ld_of(BNK);
    static constexpr int floats = 2 * BMQ * LDD + 2 * BNK * LDD + BMQ * LDP + BNK;
};

template <int DH, int TM, int TN, int MINB, bool VEC>
__global__ void __launch_bounds__(kThreads, MINB) attn_bwd_dq_kernel(AttnParams p) {
    using L = DqSmem<DH, TM, TN>;
    constexpr int BMQ = L::BMQ, BNK = L::BNK, LDD = L::LDD, LDP = L::LDP, NA = AccCols<DH>::N;
    float *Qs = attn_smem();            // [BMQ][LDD]
    float *dOs = Qs + BMQ * LDD;        // [BMQ][LDD]
    float *Ks = dOs + BMQ * LDD;        // [BNK][LDD]
    float *Vs = Ks + BNK * LDD;         // [BNK][LDD]
    float *dSs = Vs + BNK * LDD;        // [BMQ][LDP], per-warp rows
    float *keep = dSs + BMQ * LDP;      // [BNK]

    const int tid = threadIdx.x, warp = tid >> 5, ty = (tid & 31) >> 3, tx = tid & 7;
    const int ntiles = (p.Lq + BMQ - 1) / BMQ;
    const TileIdx t = tile_index(ntiles, p.H, p.causal != 0);
    const int q0 = t.tile * BMQ, nq = imin(BMQ, p.Lq - q0);
    const int64_t hoff = (int64_t)t.h * p.Dh;
    const int row0 = warp * 4 * TM + ty;
    const bool warp_rows = q0 + warp * 4 * TM < p.Lq;

    const int64_t qoff = ((int64_t)t.b * p.Lq + q0) * p.C + hoff;
    load_tile<DH, BMQ, VEC>(Qs, p.q + qoff, p.C, nq, p.Dh, tid);
    load_tile<DH, BMQ, VEC>(dOs, p.dout + qoff, p.C, nq, p.Dh, tid);

    float lse2[TM], Di[TM], dq[TM][NA];
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int qi = q0 + row0 + 4 * i;
        lse2[i] = INFINITY;
        Di[i] = 0.f;
        if (qi < p.Lq) {
            const int64_t r = (int64_t)t.bh * p.Lq + qi;
            const float ls = p.lse_in[r];
            lse2[i] = ls == -INFINITY ? INFINITY : ls * kLog2e;
            Di[i] = p.rowdot[r];
        }
#pragma unroll
        for (int c = 0; c < NA; c++) dq[i][c] = 0.f;
    }

    const int kend = p.causal ? imin(p.Lk, q0 + BMQ) : p.Lk;
    for (int k0 = 0; k0 < kend; k0 += BNK) {
        const int nk = imin(BNK, p.Lk - k0);
        __syncthreads();
        const int64_t kvoff = ((int64_t)t.b * p.Lk + k0) * p.C + hoff;
        load_tile<DH, BNK, VEC>(Ks, p.k + kvoff, p.C, nk, p.Dh, tid);
        load_tile<DH, BNK, VEC>(Vs, p.v + kvoff, p.C, nk, p.Dh, tid);
        for (int j = tid; j < BNK; j += kThreads)
            keep[j] = (j < nk && (!p.mask || p.mask[(int64_t)t.b * p.Lk + k0 + j] != 0.0f)) ? 1.f : 0.f;
        __syncthreads();
        if (!warp_rows) continue;

        const int njg = (nk + 7) >> 3;
        float s[TM][TN], dp[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++) s[i][j] = dp[i][j] = 0.f;
        mm_nt_tile<TM, TN, DH>(s, Qs + row0 * LDD, Ks, tx, njg);    // S = Q K^T
        mm_nt_tile<TM, TN, DH>(dp, dOs + row0 * LDD, Vs, tx, njg);  // dP = dO V^T
        bool kept[TN];
#pragma unroll
        for (int j = 0; j < TN; j++) kept[j] = j < njg && keep[tx + 8 * j] != 0.f;
#pragma unroll
        for (int i = 0; i < TM; i++) {
            const int qi = q0 + row0 + 4 * i;
#pragma unroll
            for (int j = 0; j < TN; j++) {
                const int kj = tx + 8 * j;
                const bool ok = kept[j] && (!p.causal || k0 + kj <= qi);
                const float pj = ok ? fast_exp2(s[i][j] * p.scale_log2 - lse2[i]) : 0.f;
                dSs[(row0 + 4 * i) * LDP + kj] = pj * (dp[i][j] - Di[i]);
            }
        }
        __syncwarp();
        mm_nn<TM, DH>(dq, dSs + row0 * LDP, LDP, Ks, tx, (nk + 3) & ~3);   // dQ += dS K
    }

    if (!warp_rows) return;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int qi = q0 + row0 + 4 * i;
        if (qi >= p.Lq) continue;
        store_row<DH, VEC, true>(p.dq + ((int64_t)t.b * p.Lq + qi) * p.C + hoff, dq[i], p.scale, tx, p.Dh);
    }
}

// ---------------------------------------------------------------------------------------------------
// Backward on tensor cores (opt-in: IMB_ATTN_DKV_TILES=tc, IMB_ATTN_DQ_TILES=tc; Dh <= 64, larger head dims
// keep the SIMT kernels, whose 64 x 64 tiles here would need 132 KB of shared memory): the same two kernels
// as above with 3xTF32 mma products (see the tensor-core forward); every warp owns 16 rows, tiles 64 x 64.
template <int DH> struct DkvTcSmem {
    static constexpr int BNK = 16 * kWarps, BMQ = 64, LDD = ld_of(DH);
    static constexpr int floats = 2 * BNK * LDD + 2 * BMQ * LDD + 2 * BMQ;
};

template <int DH, bool VEC>
__global__ void __launch_bounds__(kThreads, 2) attn_bwd_dkdv_tc_kernel(AttnParams p) {
    using L = DkvTcSmem<DH>;
    constexpr int BNK = L::BNK, BMQ = L::BMQ, LDD = L::LDD, NJ = BMQ / 8, ND = DH / 8;
    float *Ks = attn_smem();            // [BNK][LDD]
    float *Vs = Ks + BNK * LDD;         // [BNK][LDD]
    float *Qs = Vs + BNK * LDD;         // [BMQ][LDD]
    float *dOs = Qs + BMQ * LDD;        // [BMQ][LDD]
    float *lse2 = dOs + BMQ * LDD;      // [BMQ] base-2 lse; +inf for padding and for queries with no key
    float *Dq = lse2 + BMQ;             // [BMQ] rowdot; 0 for padding

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int ntiles = (p.Lk + BNK - 1) / BNK;
    const TileIdx ti = tile_index(ntiles, p.H, false);
    const int k0 = ti.tile * BNK, nk = imin(BNK, p.Lk - k0);
    const int64_t hoff = (int64_t)ti.h * p.Dh;
    const bool warp_rows = k0 + warp * 16 < p.Lk;
    const int key[2] = { k0 + warp * 16 + g, k0 + warp * 16 + g + 8 };   // this lane's two keys

    const int64_t kvoff = ((int64_t)ti.b * p.Lk + k0) * p.C + hoff;
    load_tile<DH, BNK, VEC>(Ks, p.k + kvoff, p.C, nk, p.Dh, tid);
    load_tile<DH, BNK, VEC>(Vs, p.v + kvoff, p.C, nk, p.Dh, tid);
    bool kept[2];
#pragma unroll
    for (int r = 0; r < 2; r++)
        kept[r] = key[r] < p.Lk && (!p.mask || p.mask[(int64_t)ti.b * p.Lk + key[r]] != 0.0f);
    float dk[ND][4], dv[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++)
#pragma unroll
        for (int c = 0; c < 4; c++) dk[n][c] = dv[n][c] = 0.f;

    const int qstart = p.causal ? (k0 / BMQ) * BMQ : 0;
    for (int q0 = qstart; q0 < p.Lq; q0 += BMQ) {
        const int nq = imin(BMQ, p.Lq - q0);
        __syncthreads();
        const int64_t qoff = ((int64_t)ti.b * p.Lq + q0) * p.C + hoff;
        load_tile<DH, BMQ, VEC>(Qs, p.q + qoff, p.C, nq, p.Dh, tid);
        load_tile<DH, BMQ, VEC>(dOs, p.dout + qoff, p.C, nq, p.Dh, tid);
        for (int j = tid; j < BMQ; j += kThreads) {
            float lv = INFINITY, dv_ = 0.f;
            if (j < nq) {
                const int64_t r = (int64_t)ti.bh * p.Lq + q0 + j;
                const float ls = p.lse_in[r];
                lv = ls == -INFINITY ? INFINITY : ls * kLog2e;
                dv_ = p.rowdot[r];
            }
            lse2[j] = lv;
            Dq[j] = dv_;
        }
        __syncthreads();
        if (!warp_rows) continue;

        const int njg = (nq + 7) >> 3;
        float s[NJ][4], dp[NJ][4];
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) s[j][c] = dp[j][c] = 0.f;
        tc_nt_tile<DH, NJ>(s, Ks + warp * 16 * LDD, Qs, g, t, njg);    // S^T = K Q^T
        tc_nt_tile<DH, NJ>(dp, Vs + warp * 16 * LDD, dOs, g, t, njg);  // dP^T = V dO^T
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int qc = 8 * j + 2 * t + (c & 1);   // query within the tile
                const bool ok = qc < nq && kept[c >> 1] && (!p.causal || q0 + qc >= key[c >> 1]);
                const float pj = ok ? fast_exp2(s[j][c] * p.scale_log2 - lse2[qc]) : 0.f;
                dp[j][c] = pj * (dp[j][c] - Dq[qc]);   // dS^T
                s[j][c] = pj;                          // P^T
            }
        tc_pv<DH, NJ>(dv, s, dOs, g, t, njg);   // dV += P^T dO
        tc_pv<DH, NJ>(dk, dp, Qs, g, t, njg);   // dK += dS^T Q (scale applied at the end)
    }

    if (!warp_rows) return;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (key[r] >= p.Lk) continue;
        const int64_t off = ((int64_t)ti.b * p.Lk + key[r]) * p.C + hoff;
        if (p.dk) tc_store_row<DH, VEC, true>(p.dk + off, dk, r, p.scale, t, p.Dh);
        if (p.dv) tc_store_row<DH, VEC, true>(p.dv + off, dv, r, 1.f, t, p.Dh);
    }
}

template <int DH> struct DqTcSmem {
    static constexpr int BMQ = 16 * kWarps, BNK = 64, LDD = ld_of(DH);
    static constexpr int floats = 2 * BMQ * LDD + 2 * BNK * LDD + BNK;
};

template <int DH, bool VEC>
__global__ void __launch_bounds__(kThreads) attn_bwd_dq_tc_kernel(AttnParams p) {
    using L = DqTcSmem<DH>;
    constexpr int BMQ = L::BMQ, BNK = L::BNK, LDD = L::LDD, NJ = BNK / 8, ND = DH / 8;
    float *Qs = attn_smem();            // [BMQ][LDD]
    float *dOs = Qs + BMQ * LDD;        // [BMQ][LDD]
    float *Ks = dOs + BMQ * LDD;        // [BNK][LDD]
    float *Vs = Ks + BNK * LDD;         // [BNK][LDD]
    float *keep = Vs + BNK * LDD;       // [BNK]

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int ntiles = (p.Lq + BMQ - 1) / BMQ;
    const TileIdx ti = tile_index(ntiles, p.H, p.causal != 0);
    const int q0 = ti.tile * BMQ, nq = imin(BMQ, p.Lq - q0);
    const int64_t hoff = (int64_t)ti.h * p.Dh;
    const bool warp_rows = q0 + warp * 16 < p.Lq;
    const int qrow[2] = { q0 + warp * 16 + g, q0 + warp * 16 + g + 8 };   // this lane's two queries

    const int64_t qoff = ((int64_t)ti.b * p.Lq + q0) * p.C + hoff;
    load_tile<DH, BMQ, VEC>(Qs, p.q + qoff, p.C, nq, p.Dh, tid);
    load_tile<DH, BMQ, VEC>(dOs, p.dout + qoff, p.C, nq, p.Dh, tid);
    float lse2[2], Di[2], dq[ND][4];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        lse2[r] = INFINITY;
        Di[r] = 0.f;
        if (qrow[r] < p.Lq) {
            const int64_t i = (int64_t)ti.bh * p.Lq + qrow[r];
            const float ls = p.lse_in[i];
            lse2[r] = ls == -INFINITY ? INFINITY : ls * kLog2e;
            Di[r] = p.rowdot[i];
        }
    }
#pragma unroll
    for (int n = 0; n < ND; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;

    const int kend = p.causal ? imin(p.Lk, q0 + BMQ) : p.Lk;
    for (int k0 = 0; k0 < kend; k0 += BNK) {
        const int nk = imin(BNK, p.Lk - k0);
        __syncthreads();
        const int64_t kvoff = ((int64_t)ti.b * p.Lk + k0) * p.C + hoff;
        load_tile<DH, BNK, VEC>(Ks, p.k + kvoff, p.C, nk, p.Dh, tid);
        load_tile<DH, BNK, VEC>(Vs, p.v + kvoff, p.C, nk, p.Dh, tid);
        for (int j = tid; j < BNK; j += kThreads)
            keep[j] = (j < nk && (!p.mask || p.mask[(int64_t)ti.b * p.Lk + k0 + j] != 0.0f)) ? 1.f : 0.f;
        __syncthreads();
        if (!warp_rows) continue;

        const int njg = (nk + 7) >> 3;
        float s[NJ][4], dp[NJ][4];
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) s[j][c] = dp[j][c] = 0.f;
        tc_nt_tile<DH, NJ>(s, Qs + warp * 16 * LDD, Ks, g, t, njg);    // S = Q K^T
        tc_nt_tile<DH, NJ>(dp, dOs + warp * 16 * LDD, Vs, g, t, njg);  // dP = dO V^T
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int kc = 8 * j + 2 * t + (c & 1);   // key within the tile
                const bool ok = j < njg && keep[kc] != 0.f && (!p.causal || k0 + kc <= qrow[c >> 1]);
                const float pj = ok ? fast_exp2(s[j][c] * p.scale_log2 - lse2[c >> 1]) : 0.f;
                dp[j][c] = pj * (dp[j][c] - Di[c >> 1]);   // dS
            }
        tc_pv<DH, NJ>(dq, dp, Ks, g, t, njg);   // dQ += dS K
    }

    if (!warp_rows) return;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (qrow[r] >= p.Lq) continue;
        tc_store_row<DH, VEC, true>(p.dq + ((int64_t)ti.b * p.Lq + qrow[r]) * p.C + hoff, dq, r, p.scale, t, p.Dh);
    }
}


// ---------------------------------------------------------------------------------------------------
// Host side.

// Tile shapes: (TM, TN) and MINB of each kernel; rows per block = 16*TM, columns per tile = 8*TN.
// A thread's product step reads TM + TN floats from shared memory for TM*TN FMAs; shared memory delivers
// 32 floats per clock per SM against 128 FMAs, so a product runs at most at TM*TN / (4 * (TM + TN)) of
// the FMA peak: 4x4 tiles 50%, 4x8 67%, 8x8 100%. Bigger tiles need more registers (accumulators), which
// costs occupancy. Two sets for Dh <= 64, chosen per kernel at run time (environment, see tiles_for):
//   large (default): fwd 8x8, dK/dV 4x8, dQ 8x4; up to 255 registers, ~105 KB shared, 2 blocks per SM;
//   small:           fwd 4x8, dK/dV 4x4, dQ 4x4; <= 168 registers, 62-71 KB shared, 3 blocks per SM.
// Dh 128 has one set (accumulators of 16 columns per row): fwd 4x4, dK/dV 2x4, dQ 2x4, 72-78 KB.
struct TileSet {
    int fwd_tm, fwd_tn, fwd_minb, dkv_tm, dkv_tn, dkv_minb, dq_tm, dq_tn, dq_minb;
};
constexpr TileSet kLarge = { 8, 8, 2, 4, 8, 2, 8, 4, 2 };
constexpr TileSet kSmall = { 4, 8, 3, 4, 4, 3, 4, 4, 3 };
constexpr TileSet k128 = { 4, 4, 2, 2, 4, 2, 2, 4, 3 };
template <int DH, bool LARGE> constexpr TileSet tiles() { return DH > 64 ? k128 : LARGE ? kLarge : kSmall; }

thread_local char g_err[512];

int set_error(const char *what, cudaError_t e) {
    snprintf(g_err, sizeof g_err, "%s: %s", what, cudaGetErrorString(e));
    return -1;
}

// Kernels above 48 KB of dynamic shared memory must opt in, once per device.
template <typename K> cudaError_t allow_smem(K kern, size_t bytes, unsigned *done_mask) {
    if (bytes <= 48 * 1024) return cudaSuccess;
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    const unsigned bit = dev < 32 ? 1u << dev : 0u;
    if (bit && (*done_mask & bit)) return cudaSuccess;
    e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (e == cudaSuccess) *done_mask |= bit;   // a race here only repeats the call
    return e;
}

template <typename K> int launch(const char *what, K kern, int64_t blocks, unsigned threads, size_t smem,
                                 cudaStream_t st, const AttnParams &p) {
    if (blocks > 0x7fffffff) {
        snprintf(g_err, sizeof g_err, "%s: grid of %lld blocks is too large", what, (long long)blocks);
        return -1;
    }
#ifdef IMB_CUDA_EMU
    (void)st;
    imb_emu_launch(dim3((unsigned)blocks), dim3(threads), smem, [&] { kern(p); });
#else
    kern<<<(unsigned)blocks, threads, smem, st>>>(p);
#endif
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? 0 : set_error(what, e);
}

template <int DH, bool VEC, bool LARGE> int run_fwd(const AttnParams &p, cudaStream_t st) {
    constexpr TileSet T = tiles<DH, LARGE>();
    using L = FwdSmem<DH, T.fwd_tm, T.fwd_tn>;
    static unsigned done;
    auto kern = attn_fwd_kernel<DH, T.fwd_tm, T.fwd_tn, T.fwd_minb, VEC>;
    const size_t smem = sizeof(float) * L::floats;
    cudaError_t e = allow_smem(kern, smem, &done);
    if (e != cudaSuccess) return set_error("attention forward: shared-memory opt-in", e);
    const int64_t blocks = (int64_t)((p.Lq + L::BM - 1) / L::BM) * p.B * p.H;
    return launch("attention forward", kern, blocks, kThreads, smem, st, p);
}

template <int DH, bool VEC> int run_rowdot(const AttnParams &p, cudaStream_t st) {
    const int64_t rows = (int64_t)p.B * p.Lq * p.H;
    // out is read by this kernel only: float4 where it is aligned too
    const bool vec4 = VEC && ((uintptr_t)p.fout & 15u) == 0;
    return launch("attention backward (rowdot)", vec4 ? attn_rowdot_kernel<true> : attn_rowdot_kernel<false>,
                  (rows + 255) / 256, 256, 0, st, p);
}

template <int DH, bool VEC, bool LARGE> int run_dkdv(const AttnParams &p, cudaStream_t st) {
    constexpr TileSet T = tiles<DH, LARGE>();
    using LK = DkvSmem<DH, T.dkv_tm, T.dkv_tn>;
    static unsigned done;
    auto kern = attn_bwd_dkdv_kernel<DH, T.dkv_tm, T.dkv_tn, T.dkv_minb, VEC>;
    const size_t smem = sizeof(float) * LK::floats;
    cudaError_t e = allow_smem(kern, smem, &done);
    if (e != cudaSuccess) return set_error("attention backward dK/dV: shared-memory opt-in", e);
    const int64_t blocks = (int64_t)((p.Lk + LK::BNK - 1) / LK::BNK) * p.B * p.H;
    return launch("attention backward (dK, dV)", kern, blocks, kThreads, smem, st, p);
}

template <int DH, bool VEC, bool LARGE> int run_dq(const AttnParams &p, cudaStream_t st) {
    constexpr TileSet T = tiles<DH, LARGE>();
    using LQ = DqSmem<DH, T.dq_tm, T.dq_tn>;
    static unsigned done;
    auto kern = attn_bwd_dq_kernel<DH, T.dq_tm, T.dq_tn, T.dq_minb, VEC>;
    const size_t smem = sizeof(float) * LQ::floats;
    cudaError_t e = allow_smem(kern, smem, &done);
    if (e != cudaSuccess) return set_error("attention backward dQ: shared-memory opt-in", e);
    const int64_t blocks = (int64_t)((p.Lq + LQ::BMQ - 1) / LQ::BMQ) * p.B * p.H;
    return launch("attention backward (dQ)", kern, blocks, kThreads, smem, st, p);
}

template <int DH, bool VEC> int run_fwd_tc(const AttnParams &p, cudaStream_t st) {
    using L = FwdTcSmem<DH>;
    static unsigned done;
    auto kern = attn_fwd_tc_kernel<DH, VEC>;
    const size_t smem = sizeof(float) * L::floats;
    cudaError_t e = allow_smem(kern, smem, &done);
    if (e != cudaSuccess) return set_error("attention forward (tensor cores): shared-memory opt-in", e);
    const int64_t blocks = (int64_t)((p.Lq + L::BM - 1) / L::BM) * p.B * p.H;
    return launch("attention forward (tensor cores)", kern, blocks, kThreads, smem, st, p);
}

template <int DH, bool VEC> int run_dkdv_tc(const AttnParams &p, cudaStream_t st) {
    using L = DkvTcSmem<DH>;
    static unsigned done;
    auto kern = attn_bwd_dkdv_tc_kernel<DH, VEC>;
    const size_t smem = sizeof(float) * L::floats;
    cudaError_t e = allow_smem(kern, smem, &done);
    if (e != cudaSuccess) return set_error("attention backward dK/dV (tensor cores): shared-memory opt-in", e);
    const int64_t blocks = (int64_t)((p.Lk + L::BNK - 1) / L::BNK) * p.B * p.H;
    return launch("attention backward (dK, dV, tensor cores)", kern, blocks, kThreads, smem, st, p);
}

template <int DH, bool VEC> int run_dq_tc(const AttnParams &p, cudaStream_t st) {
    using L = DqTcSmem<DH>;
    static unsigned done;
    auto kern = attn_bwd_dq_tc_kernel<DH, VEC>;
    const size_t smem = sizeof(float) * L::floats;
    cudaError_t e = allow_smem(kern, smem, &done);
    if (e != cudaSuccess) return set_error("attention backward dQ (tensor cores): shared-memory opt-in", e);
    const int64_t blocks = (int64_t)((p.Lq + L::BMQ - 1) / L::BMQ) * p.B * p.H;
    return launch("attention backward (dQ, tensor cores)", kern, blocks, kThreads, smem, st, p);
}

// Which tile set each kernel uses for Dh <= 64: large unless the environment says
// IMB_ATTN_FWD_TILES / IMB_ATTN_DKV_TILES / IMB_ATTN_DQ_TILES=small (read at every call, so a benchmark
// can compare them in one process). The value tc selects that kernel's tensor-core version (any Dh).
const char *tiles_env(const char *env) {
    const char *v = getenv(env);
    return v ? v : "large";
}
bool tiles_large(const char *env) { return strcmp(tiles_env(env), "small") != 0; }

template <int DH, bool VEC> int run_fwd_any(const AttnParams &p, cudaStream_t st) {
    if (!strcmp(tiles_env("IMB_ATTN_FWD_TILES"), "tc")) return run_fwd_tc<DH, VEC>(p, st);
    return tiles_large("IMB_ATTN_FWD_TILES") ? run_fwd<DH, VEC, true>(p, st) : run_fwd<DH, VEC, false>(p, st);
}

template <int DH, bool VEC> int run_bwd(const AttnParams &p, cudaStream_t st) {
    if (run_rowdot<DH, VEC>(p, st)) return -1;
    if (p.dk || p.dv) {
        const char *v = tiles_env("IMB_ATTN_DKV_TILES");
        if (!strcmp(v, "tc") && DH <= 64 ? run_dkdv_tc<DH <= 64 ? DH : 64, VEC>(p, st)
            : strcmp(v, "small") ? run_dkdv<DH, VEC, true>(p, st) : run_dkdv<DH, VEC, false>(p, st))
            return -1;
    }
    if (p.dq) {
        const char *v = tiles_env("IMB_ATTN_DQ_TILES");
        if (!strcmp(v, "tc") && DH <= 64 ? run_dq_tc<DH <= 64 ? DH : 64, VEC>(p, st)
            : strcmp(v, "small") ? run_dq<DH, VEC, true>(p, st) : run_dq<DH, VEC, false>(p, st))
            return -1;
    }
    return 0;
}

bool aligned16(const void *ptr) { return ((uintptr_t)ptr & 15u) == 0; }

// Shared argument checks; fills p's shape fields. Returns 1 for nothing to do, 0 to go on, -1 on error.
int prepare(AttnParams *p, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dh, int causal, float scale,
            const char *what) {
    if (B < 0 || H < 0 || Lq < 0 || Lk < 0 || Dh < 0) {
        snprintf(g_err, sizeof g_err, "%s: negative size", what);
        return -1;
    }
    if (B == 0 || H == 0 || Lq == 0 || Dh == 0) return 1;
    if (Dh > 128) {
        snprintf(g_err, sizeof g_err, "%s: head dim %lld > 128 is not supported by the CUDA kernel", what, (long long)Dh);
        return -1;
    }
    if (causal && Lq != Lk) {
        snprintf(g_err, sizeof g_err, "%s: causal attention needs Lq == Lk", what);
        return -1;
    }
    // token and block indices are 32-bit inside the kernels; offsets are 64-bit
    if (Lq > 0x7fffffff || Lk > 0x7fffffff || B * H > 0x7fffffff || B * Lq * H > ((int64_t)1 << 40)) {
        snprintf(g_err, sizeof g_err, "%s: sizes too large", what);
        return -1;
    }
    if (!(scale > 0.0f) || isinf(scale)) {
        snprintf(g_err, sizeof g_err, "%s: scale %g must be finite and > 0", what, scale);
        return -1;
    }
    p->B = (int)B; p->H = (int)H; p->Lq = (int)Lq; p->Lk = (int)Lk; p->Dh = (int)Dh;
    p->C = H * Dh;
    p->causal = causal != 0;
    p->scale = scale;
    p->scale_log2 = scale * kLog2e;
    return 0;
}

}   // namespace

extern "C" {

const char *imb_attention_cuda_error(void) { return g_err; }

int imb_attention_fwd_cuda(void *stream, float *out, float *lse, const float *q, const float *k, const float *v,
                           const float *key_mask, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dh,
                           int causal, float scale) {
    AttnParams p = {};
    int r = prepare(&p, B, H, Lq, Lk, Dh, causal, scale, "attention forward");
    if (r) return r < 0 ? -1 : 0;
    p.q = q; p.k = k; p.v = v; p.mask = key_mask; p.out = out; p.lse = lse;
    cudaStream_t st = (cudaStream_t)stream;
    // Lk == 0 needs no special case: the key loop is empty, every row gets zeros and lse = -inf
    const bool vec = aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out);
    switch (Dh <= 16 ? 16 : Dh <= 32 ? 32 : Dh <= 64 ? 64 : 128) {
    case 16: return Dh == 16 && vec ? run_fwd_any<16, true>(p, st) : run_fwd_any<16, false>(p, st);
    case 32: return Dh == 32 && vec ? run_fwd_any<32, true>(p, st) : run_fwd_any<32, false>(p, st);
    case 64: return Dh == 64 && vec ? run_fwd_any<64, true>(p, st) : run_fwd_any<64, false>(p, st);
    default: return Dh == 128 && vec ? run_fwd_any<128, true>(p, st) : run_fwd_any<128, false>(p, st);
    }
}

int imb_attention_bwd_cuda(void *stream, float *dq, float *dk, float *dv, float *work, const float *dout,
                           const float *out, const float *lse, const float *q, const float *k, const float *v,
                           const float *key_mask, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dh,
                           int causal, float scale) {
    AttnParams p = {};
    int r = prepare(&p, B, H, Lq, Lk, Dh, causal, scale, "attention backward");
    if (r) return r < 0 ? -1 : 0;
    if (!dq && !dk && !dv) return 0;
    if (Lk == 0) return 0;   // no key: every gradient is zero, and the grads are added into
    p.q = q; p.k = k; p.v = v; p.mask = key_mask;
    p.dout = dout; p.fout = out; p.lse_in = lse; p.rowdot = work;
    p.dq = dq; p.dk = dk; p.dv = dv;
    cudaStream_t st = (cudaStream_t)stream;
    const bool vec = aligned16(q) && aligned16(k) && aligned16(v) && aligned16(dout) && (!dq || aligned16(dq)) &&
                     (!dk || aligned16(dk)) && (!dv || aligned16(dv));
    switch (Dh <= 16 ? 16 : Dh <= 32 ? 32 : Dh <= 64 ? 64 : 128) {
    case 16: return Dh == 16 && vec ? run_bwd<16, true>(p, st) : run_bwd<16, false>(p, st);
    case 32: return Dh == 32 && vec ? run_bwd<32, true>(p, st) : run_bwd<32, false>(p, st);
    case 64: return Dh == 64 && vec ? run_bwd<64, true>(p, st) : run_bwd<64, false>(p, st);
    default: return Dh == 128 && vec ? run_bwd<128, true>(p, st) : run_bwd<128, false>(p, st);
    }
}

}   // extern "C"
