// CUDA concept-bottleneck kernels. No atomics: a warp owns a token row (assignment, scatter, the
// per-token gradients), and the token->concept sums run a block per (concept, token chunk, batch
// row) that walks its chunk's slots in order, then add the chunks in order. Sums are in double, in
// the CPU reference's order where a single thread owns them.
#include "backend.cuh"
extern "C" {
#include "../concept.h"
}

#define FULL_MASK 0xffffffffu
#define ROW_WARPS 4                  // warp-per-token kernels: tokens per block
#define AGG_THREADS 128
#define AGG_CHUNK 1024               // tokens per partial sum of the aggregation (at least)

// concept of slot j of token row r, or -1 (unused slot, padding, or an index outside [0, K))
__device__ __forceinline__ int64_t slot_concept(const imb_concept_geom &g, const int32_t *idx, const float *mask,
                                                int64_t r, int64_t j) {
    if (mask && mask[r] == 0.0f) return -1;
    int64_t k = idx ? idx[r * g.S + j] : j;
    return k >= 0 && k < g.K ? k : -1;
}

__device__ __forceinline__ double warp_max_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

// ---- candidate concepts per bucket ----

// dist [K, Bk] squared distances (rounded operations, so the sums are the CPU's bit for bit) and
// owner [K] = the nearest bucket, ties to the lower one
__global__ static void bucket_dist(double *dist, int32_t *owner, const float *C, const float *E, int64_t K,
                                   int64_t Bk, int64_t D) {
    IMB_FOR(k, K) {
        int32_t best = 0;
        for (int64_t b = 0; b < Bk; b++) {
            double s = 0;
            for (int64_t d = 0; d < D; d++) {
                double t = __dsub_rn((double)C[k * D + d], (double)E[b * D + d]);
                s = __dadd_rn(s, __dmul_rn(t, t));
            }
            dist[k * Bk + b] = s;
            if (s < dist[k * Bk + best]) best = (int32_t)b;
        }
        owner[k] = best;
    }
}

// a thread per bucket: its members in ascending order, or its kmin nearest concepts
__global__ static void bucket_lists(int32_t *cand, const double *dist, const int32_t *owner, int64_t K, int64_t Bk,
                                    int kmin) {
    IMB_FOR(b, Bk) {
        int32_t *row = cand + b * (K + 1), n = 0;
        for (int64_t k = 0; k < K; k++) n += owner[k] == b;
        if (n >= kmin) {
            int64_t j = 1;
            for (int64_t k = 0; k < K; k++)
                if (owner[k] == b) row[j++] = (int32_t)k;
        } else {
            // the r-th nearest is the smallest (distance, index) pair above the (r-1)-th
            double dl = -1;
            int64_t kl = -1;
            for (int r = 0; r < kmin; r++) {
                int64_t best = -1;
                for (int64_t k = 0; k < K; k++) {
                    double d = dist[k * Bk + b];
                    bool above = d > dl || (d == dl && k > kl);
                    if (above && (best < 0 || d < dist[best * Bk + b])) best = k;
                }
                if (best < 0) {   // only with NaN distances: list what was found
                    kmin = r;
                    break;
                }
                dl = dist[best * Bk + b];
                kl = best;
                row[1 + r] = (int32_t)best;
            }
            for (int i = 2; i <= kmin; i++)   // insertion sort into ascending concept order
                for (int j = i; j > 1 && row[j - 1] > row[j]; j--) {
                    int32_t t = row[j];
                    row[j] = row[j - 1];
                    row[j - 1] = t;
                }
            n = kmin;
        }
        row[0] = n;
        for (int64_t j = n + 1; j <= K; j++) row[j] = -1;
    }
}

// ---- sparse soft assignment ----

// (value, position) of the larger entry, ties to the lower position; position -1 is "none"
__device__ __forceinline__ void warp_argmax(double &v, int &j) {
    for (int o = 16; o > 0; o >>= 1) {
        double ov = __shfl_xor_sync(FULL_MASK, v, o);
        int oj = __shfl_xor_sync(FULL_MASK, j, o);
        if (oj >= 0 && (j < 0 || ov > v || (ov == v && oj < j))) {
            v = ov;
            j = oj;
        }
    }
}

// A warp per token. Shared memory per warp: K candidate scores, then the S kept exponentials.
__global__ static void assign_fwd(imb_concept_geom g, int32_t *idx, float *val, const float *q, const float *C,
                                  const float *hash, const int32_t *cand, const float *mask) {
    extern __shared__ double smem[];
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    const int64_t K = g.K, S = g.S, D = g.D, rows = g.B * g.L;
    double *sc = smem + (threadIdx.x >> 5) * (K + S), *kept = sc + K;
    for (int64_t r = blockIdx.x * (int64_t)warps + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * warps) {
        int32_t *ir = idx + r * S;
        float *vr = val + r * S;
        for (int64_t j = lane; j < S; j += 32) {
            ir[j] = -1;
            vr[j] = 0.0f;
        }
        __syncwarp();
        if (mask && mask[r] == 0.0f) continue;
        const float *hr = hash + r * g.Bk, *qr = q + r * D;
        int64_t bucket = 0;   // every lane, in the CPU's order: buckets are few
        for (int64_t b = 1; b < g.Bk; b++)
            if (hr[b] > hr[bucket]) bucket = b;
        const int32_t *list = cand + bucket * (K + 1) + 1;
        int64_t n = cand[bucket * (K + 1)];
        if (n < 1 || n > K) continue;
        bool bad = false;
        for (int64_t j = lane; j < n; j += 32) bad |= list[j] < 0 || list[j] >= K;
        if (__any_sync(FULL_MASK, bad)) continue;
        double mx = -INFINITY;
        for (int64_t j = lane; j < n; j += 32) {
            const float *cr = C + (int64_t)list[j] * D;
            double s = 0;
            for (int64_t d = 0; d < D; d++) s += (double)qr[d] * (double)cr[d];   // exact products
            sc[j] = s * (double)g.scale;
            mx = fmax(mx, sc[j]);
        }
        mx = warp_max_d(mx);
        double Z = 0, Zs = 0;
        for (int64_t j = lane; j < n; j += 32) {
            double e = exp(sc[j] - mx);
            Z += e;
            Zs += e * (sc[j] - mx);
        }
        Z = imb_warp_sum(Z);
        Zs = imb_warp_sum(Zs);
        double H = log(Z) - Zs / Z, u = n > 1 ? H / log((double)n) : 0.0;
        u = u < 0 ? 0 : u > 1 ? 1 : u;
        int64_t k = (int64_t)round((double)g.kmin + u * (double)(g.kmax - g.kmin));
        k = k < 1 ? 1 : k > n ? n : k;
        k = k > S ? S : k;
        double Zk = 0;
        __syncwarp();
        for (int64_t t = 0; t < k; t++) {
            double bv = -INFINITY;
            int bj = -1;
            for (int64_t j = lane; j < n; j += 32)
                if (sc[j] != -INFINITY && (bj < 0 || sc[j] > bv)) {
                    bv = sc[j];
                    bj = (int)j;
                }
            warp_argmax(bv, bj);
            if (bj < 0) {
                k = t;
                break;
            }
            double e = exp(bv - mx);
            Zk += e;
            __syncwarp();   // every lane has read the scores before lane 0 retires the winner
            if (lane == 0) {
                ir[t] = list[bj];
                kept[t] = e;
                sc[bj] = -INFINITY;
            }
            __syncwarp();
        }
        for (int64_t t = lane; t < k; t += 32) vr[t] = (float)(kept[t] / Zk);
        __syncwarp();
    }
}

// A warp per token: the kept entries' score gradients into ws (scaled) and dq.
__global__ static void assign_bwd_q(imb_concept_geom g, float *dq, float *ws, const float *dval, const int32_t *idx,
                                    const float *val, const float *C) {
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    const int64_t S = g.S, D = g.D, rows = g.B * g.L;
    for (int64_t r = blockIdx.x * (int64_t)warps + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * warps) {
        const int32_t *ir = idx + r * S;
        const float *vr = val + r * S, *gr = dval + r * S;
        double dot = 0;
        for (int64_t j = 0; j < S; j++)
            if (ir[j] >= 0 && ir[j] < g.K) dot += (double)vr[j] * gr[j];
        for (int64_t j = lane; j < S; j += 32)
            ws[r * S + j] = ir[j] >= 0 && ir[j] < g.K ? (float)((double)g.scale * (double)vr[j] * ((double)gr[j] - dot))
                                                      : 0.0f;
        __syncwarp();
        if (dq)
            for (int64_t d = lane; d < D; d += 32) {
                double s = 0;
                for (int64_t j = 0; j < S; j++)
                    if (ir[j] >= 0 && ir[j] < g.K) s += (double)ws[r * S + j] * C[(int64_t)ir[j] * D + d];
                dq[r * D + d] += (float)s;
            }
        __syncwarp();
    }
}

// ---- aggregation ----

struct agg_plan {
    int64_t chunk, chunks;
};

// chunks depend on L only, so the order of the sums does not depend on the GPU
static agg_plan agg_chunks(int64_t L) {
    int64_t chunk = AGG_CHUNK;
    if ((L + chunk - 1) / chunk > 65535) chunk = (L + 65534) / 65535;
    return { chunk, (L + chunk - 1) / chunk };
}

// Block (concept k, chunk c, batch row b): part [B, chunks, K, D] and pcnt [B, chunks, K] get the
// chunk's sum of a * x and of a. Each tile of slots is compacted in slot order into shared memory
// (ballot + prefix), then every thread adds the matches into its own columns in that order.
__global__ static void __launch_bounds__(AGG_THREADS) agg_partial(imb_concept_geom g, double *part, double *pcnt,
                                                                  const int32_t *idx, const float *val,
                                                                  const float *x, const float *mask, int64_t chunk,
                                                                  int64_t chunks) {
    extern __shared__ double acc[];   // [D]
    __shared__ int64_t mtok[AGG_THREADS];
    __shared__ float mval[AGG_THREADS];
    __shared__ int wcount[AGG_THREADS / 32];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t k = blockIdx.x, c = blockIdx.y, b = blockIdx.z, L = g.L, S = g.S, D = g.D;
    for (int64_t d = tid; d < D; d += AGG_THREADS) acc[d] = 0;
    double cnt = 0;
    const int64_t t0 = c * chunk, t1 = t0 + chunk < L ? t0 + chunk : L;
    for (int64_t base = t0 * S; base < t1 * S; base += AGG_THREADS) {
        int64_t s = base + tid;
        bool hit = s < t1 * S && slot_concept(g, idx, mask, b * L + s / S, s % S) == k;
        unsigned bal = __ballot_sync(FULL_MASK, hit);
        if (lane == 0) wcount[warp] = __popc(bal);
        __syncthreads();
        int off = 0, nm = 0;
        for (int w = 0; w < AGG_THREADS / 32; w++) {
            off += w < warp ? wcount[w] : 0;
            nm += wcount[w];
        }
        if (hit) {
            int p = off + __popc(bal & ((1u << lane) - 1u));
            mtok[p] = s / S;
            mval[p] = val[(b * L) * S + s];
        }
        __syncthreads();
        for (int64_t d = tid; d < D; d += AGG_THREADS) {
            double a = acc[d];
            for (int m = 0; m < nm; m++) a += (double)mval[m] * x[(b * L + mtok[m]) * D + d];
            acc[d] = a;
        }
        if (tid == 0)
            for (int m = 0; m < nm; m++) cnt += mval[m];
        __syncthreads();
    }
    double *out = part + ((b * chunks + c) * g.K + k) * D;
    for (int64_t d = tid; d < D; d += AGG_THREADS) out[d] = acc[d];
    if (tid == 0) pcnt[(b * chunks + c) * g.K + k] = cnt;
}

// out = sum / cnt (norm, also writing cnt) or out += scale * sum; chunks added in order
__global__ static void agg_final(imb_concept_geom g, float *out, float *cnt, const double *part, const double *pcnt,
                                 int64_t chunks, int norm, float scale) {
    const int64_t K = g.K, D = g.D;
    IMB_FOR(i, g.B * K * D) {
        int64_t b = i / (K * D), k = (i / D) % K, d = i % D;
        double s = 0;
        for (int64_t c = 0; c < chunks; c++) s += part[((b * chunks + c) * K + k) * D + d];
        if (norm) {
            double n = 0;
            for (int64_t c = 0; c < chunks; c++) n += pcnt[(b * chunks + c) * K + k];
            float nf = (float)(n + (double)g.eps);
            if (d == 0) cnt[b * K + k] = nf;
            out[i] = (float)(s / (double)nf);
        } else {
            out[i] += (float)((double)scale * s);
        }
    }
}

static void agg_run(const imb_concept_geom *g, float *out, float *cnt, const int32_t *idx, const float *val,
                    const float *x, const float *mask, int norm, float scale) {
    if (g->B <= 0 || g->L <= 0 || g->K <= 0 || g->D <= 0) return;
    agg_plan p = agg_chunks(g->L);
    size_t np = (size_t)(g->B * p.chunks * g->K);
    double *part = (double *)imb_cuda_scratch(sizeof(double) * np * (size_t)(g->D + 1));
    if (!part) return;
    double *pcnt = part + np * (size_t)g->D;
    dim3 grid((unsigned)g->K, (unsigned)p.chunks, (unsigned)g->B);
    IMB_LAUNCH(agg_partial, grid, AGG_THREADS, sizeof(double) * (size_t)g->D, *g, part, pcnt, idx, val, x, mask,
               p.chunk, p.chunks);
    IMB_LAUNCH(agg_final, imb_blocks(g->B * g->K * g->D, IMB_THREADS), IMB_THREADS, 0, *g, out, cnt, part, pcnt,
               p.chunks, norm, scale);
}

// A warp per token: dval (warp dot per slot) and dx (lanes over columns, slots in order).
__global__ static void agg_bwd(imb_concept_geom g, float *dx, float *dval, const int32_t *idx, const float *val,
                               const float *x, const float *z, const float *cnt, const float *dz, const float *mask) {
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    const int64_t S = g.S, D = g.D, K = g.K, rows = g.B * g.L;
    for (int64_t r = blockIdx.x * (int64_t)warps + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * warps) {
        const int64_t b = r / g.L;
        const float *xr = x + r * D;
        if (dval)
            for (int64_t j = 0; j < S; j++) {
                int64_t k = slot_concept(g, idx, mask, r, j);
                if (k < 0) continue;
                const float *zk = z + (b * K + k) * D, *gk = dz + (b * K + k) * D;
                double s = 0;
                for (int64_t d = lane; d < D; d += 32) s += ((double)xr[d] - zk[d]) * gk[d];
                s = imb_warp_sum(s);
                if (lane == 0) dval[r * S + j] += (float)(s / cnt[b * K + k]);
            }
        if (dx)
            for (int64_t d = lane; d < D; d += 32) {
                double s = 0;
                for (int64_t j = 0; j < S; j++) {
                    int64_t k = slot_concept(g, idx, mask, r, j);
                    if (k >= 0) s += (double)val[r * S + j] * dz[(b * K + k) * D + d] / cnt[b * K + k];
                }
                dx[r * D + d] += (float)s;
            }
    }
}

// ---- scatter ----

__global__ static void scatter_fwd(imb_concept_geom g, float *out, const int32_t *idx, const float *val,
                                   const float *z, const float *mask) {
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    const int64_t S = g.S, D = g.D, K = g.K, rows = g.B * g.L;
    for (int64_t r = blockIdx.x * (int64_t)warps + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * warps) {
        const int64_t b = r / g.L;
        for (int64_t d = lane; d < D; d += 32) {
            double s = 0;
            for (int64_t j = 0; j < S; j++) {
                int64_t k = slot_concept(g, idx, mask, r, j);
                if (k >= 0) s += (double)val[r * S + j] * z[(b * K + k) * D + d];
            }
            out[r * D + d] = (float)s;
        }
    }
}

__global__ static void scatter_bwd_val(imb_concept_geom g, float *dval, const int32_t *idx, const float *z,
                                       const float *dout, const float *mask) {
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    const int64_t S = g.S, D = g.D, K = g.K, rows = g.B * g.L;
    for (int64_t r = blockIdx.x * (int64_t)warps + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * warps) {
        const int64_t b = r / g.L;
        for (int64_t j = 0; j < S; j++) {
            int64_t k = slot_concept(g, idx, mask, r, j);
            if (k < 0) continue;
            double s = 0;
            for (int64_t d = lane; d < D; d += 32) s += (double)z[(b * K + k) * D + d] * dout[r * D + d];
            s = imb_warp_sum(s);
            if (lane == 0) dval[r * S + j] += (float)s;
        }
    }
}

// ---- entropy ----

__global__ static void entropy_fwd(float *out, const float *p, int64_t rows, int64_t n) {
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int64_t r = blockIdx.x * (int64_t)warps + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * warps) {
        double h = 0;
        for (int64_t j = lane; j < n; j += 32) {
            double v = p[r * n + j];
            if (v > 0) h -= v * log(v);
        }
        h = imb_warp_sum(h);
        if (lane == 0) out[r] = (float)h;
    }
}

__global__ static void entropy_bwd(float *dp, const float *p, const float *dout, int64_t rows, int64_t n) {
    IMB_FOR(i, rows * n) {
        double v = p[i];
        dp[i] += (float)(-(double)dout[i / n] * (log(v > 1e-12 ? v : 1e-12) + 1.0));
    }
}

static unsigned row_blocks(int64_t rows) { return imb_blocks(rows, ROW_WARPS); }

extern "C" {
void imb_concept_buckets_cuda(int32_t *cand, const float *C, const float *E, int64_t K, int64_t Bk, int64_t D,
                              int kmin) {
    if (K <= 0 || Bk <= 0) return;
    double *dist = (double *)imb_cuda_scratch(sizeof(double) * (size_t)(K * Bk) + sizeof(int32_t) * (size_t)K);
    if (!dist) return;
    int32_t *owner = (int32_t *)(dist + K * Bk);
    IMB_LAUNCH(bucket_dist, imb_blocks(K, 64), 64, 0, dist, owner, C, E, K, Bk, D);
    IMB_LAUNCH(bucket_lists, imb_blocks(Bk, 32), 32, 0, cand, dist, owner, K, Bk, kmin);
}

void imb_concept_assign_fwd_cuda(const imb_concept_geom *g, int32_t *idx, float *val, const float *q,
                                 const float *C, const float *hash, const int32_t *cand, const float *mask) {
    int64_t rows = g->B * g->L;
    if (rows <= 0) return;
    // as many warps as 48 KiB of shared memory holds (K <= 4096, S <= 64: at least one)
    size_t per = sizeof(double) * (size_t)(g->K + g->S);
    int warps = (int)((48 << 10) / per);
    warps = warps < 1 ? 1 : warps > ROW_WARPS ? ROW_WARPS : warps;
    IMB_LAUNCH(assign_fwd, imb_blocks(rows, warps), 32 * warps, per * (size_t)warps, *g, idx, val, q, C, hash, cand,
               mask);
}

void imb_concept_assign_bwd_cuda(const imb_concept_geom *g, float *dq, float *dC, float *ws, const float *dval,
                                 const int32_t *idx, const float *val, const float *q, const float *C) {
    int64_t rows = g->B * g->L;
    if (rows <= 0) return;
    IMB_LAUNCH(assign_bwd_q, row_blocks(rows), 32 * ROW_WARPS, 0, *g, dq, ws, dval, idx, val, C);
    if (dC) {
        // C is shared by every batch row: one flat batch of B*L tokens
        imb_concept_geom flat = *g;
        flat.L = rows;
        flat.B = 1;
        agg_run(&flat, dC, NULL, idx, ws, q, NULL, 0, 1.0f);
    }
}

void imb_concept_agg_fwd_cuda(const imb_concept_geom *g, float *out, float *cnt, const int32_t *idx,
                              const float *val, const float *x, const float *mask) {
    agg_run(g, out, cnt, idx, val, x, mask, 1, 1.0f);
}

void imb_concept_agg_add_cuda(const imb_concept_geom *g, float *out, const int32_t *idx, const float *val,
                              const float *x, const float *mask, float scale) {
    agg_run(g, out, NULL, idx, val, x, mask, 0, scale);
}

void imb_concept_agg_bwd_cuda(const imb_concept_geom *g, float *dx, float *dval, const int32_t *idx,
                              const float *val, const float *x, const float *z, const float *cnt, const float *dz,
                              const float *mask) {
    int64_t rows = g->B * g->L;
    if (rows <= 0 || (!dx && !dval)) return;
    IMB_LAUNCH(agg_bwd, row_blocks(rows), 32 * ROW_WARPS, 0, *g, dx, dval, idx, val, x, z, cnt, dz, mask);
}

void imb_concept_scatter_fwd_cuda(const imb_concept_geom *g, float *out, const int32_t *idx, const float *val,
                                  const float *z, const float *mask) {
    int64_t rows = g->B * g->L;
    if (rows <= 0) return;
    IMB_LAUNCH(scatter_fwd, row_blocks(rows), 32 * ROW_WARPS, 0, *g, out, idx, val, z, mask);
}

void imb_concept_scatter_bwd_cuda(const imb_concept_geom *g, float *dz, float *dval, const int32_t *idx,
                                  const float *val, const float *z, const float *dout, const float *mask) {
    int64_t rows = g->B * g->L;
    if (rows <= 0) return;
    if (dval) IMB_LAUNCH(scatter_bwd_val, row_blocks(rows), 32 * ROW_WARPS, 0, *g, dval, idx, z, dout, mask);
    if (dz) agg_run(g, dz, NULL, idx, val, dout, mask, 0, 1.0f);
}

void imb_entropy_fwd_cuda(float *out, const float *p, int64_t rows, int64_t n) {
    if (rows <= 0 || n <= 0) return;
    IMB_LAUNCH(entropy_fwd, row_blocks(rows), 32 * ROW_WARPS, 0, out, p, rows, n);
}

void imb_entropy_bwd_cuda(float *dp, const float *p, const float *dout, int64_t rows, int64_t n) {
    if (rows <= 0 || n <= 0) return;
    IMB_LAUNCH(entropy_bwd, imb_blocks(rows * n, IMB_THREADS), IMB_THREADS, 0, dp, p, dout, rows, n);
}
}
