// CUDA embedding lookup, its deterministic backward (tokens sorted by id, then one pass per
// run of equal ids; no atomics), and masked mean pooling.
#include "backend.cuh"
extern "C" {
#include "../embedding.h"
}

__global__ static void emb_fwd(float *out, const float *table, const int32_t *ids, int64_t N, int64_t V, int64_t C) {
    IMB_FOR(i, N * C) {
        int64_t n = i / C, c = i - n * C;
        int32_t id = ids[n];
        out[i] = id >= 0 && id < V ? table[(int64_t)id * C + c] : 0.0f;   // a bad id: reported by the op's check
    }
}

// ---- Backward ----
// Keys id << 32 | token are unique, so any correct sort gives one order: tokens grouped by id
// and, within an id, in index order (the order the CPU adds them in). The sort is a bitonic
// network over a power of two of keys (padding keys sort last): each tile of SORT_TILE keys
// is sorted in shared memory, then every larger stage does its long strides in global
// memory and its last log2(SORT_TILE) strides in shared memory again.
#define SORT_TILE 1024

__global__ static void emb_keys(uint64_t *key, const int32_t *ids, int64_t N, int64_t n2) {
    IMB_FOR(i, n2) key[i] = i < N ? ((uint64_t)(uint32_t)ids[i] << 32) | (uint64_t)i : ~(uint64_t)0;
}

// The pair (i, i ^ j) ends up ascending where bit k of i is clear, descending where set.
__device__ __forceinline__ void compare_swap(uint64_t *a, uint64_t *b, bool up) {
    uint64_t x = *a, y = *b;
    if ((x > y) == up) {
        *a = y;
        *b = x;
    }
}

// stages k = 2 .. SORT_TILE of the network, each block on its own tile
__global__ static void __launch_bounds__(SORT_TILE) sort_tiles(uint64_t *key) {
    __shared__ uint64_t s[SORT_TILE];
    int64_t base = blockIdx.x * (int64_t)SORT_TILE;
    int t = threadIdx.x;
    s[t] = key[base + t];
    __syncthreads();
    for (int k = 2; k <= SORT_TILE; k <<= 1)
        for (int j = k >> 1; j > 0; j >>= 1) {
            int l = t ^ j;
            if (l > t) compare_swap(&s[t], &s[l], ((base + t) & k) == 0);
            __syncthreads();
        }
    key[base + t] = s[t];
}

// one stride j >= SORT_TILE of stage k: the partners lie in different tiles
__global__ static void merge_global(uint64_t *key, int64_t n2, int64_t k, int64_t j) {
    IMB_FOR(i, n2) {
        int64_t l = i ^ j;
        if (l > i) compare_swap(&key[i], &key[l], (i & k) == 0);
    }
}

// the strides j < SORT_TILE of stage k > SORT_TILE: the partners share a tile
__global__ static void __launch_bounds__(SORT_TILE) merge_tiles(uint64_t *key, int64_t k) {
    __shared__ uint64_t s[SORT_TILE];
    int64_t base = blockIdx.x * (int64_t)SORT_TILE;
    int t = threadIdx.x;
    bool up = ((base + t) & k) == 0;
    s[t] = key[base + t];
    __syncthreads();
    for (int j = SORT_TILE >> 1; j > 0; j >>= 1) {
        int l = t ^ j;
        if (l > t) compare_swap(&s[t], &s[l], up);
        __syncthreads();
    }
    key[base + t] = s[t];
}

// A warp per (sorted position p, 32-column slice). The warp at the first position of a run
// of equal ids adds the run's gradient rows, in token order, onto that table row: exactly
// the CPU's sequence of float additions, and no two warps write the same element.
__global__ static void emb_bwd_runs(float *dtable, const float *dout, const uint64_t *key, int64_t N, int64_t V,
                                    int64_t C) {
    int64_t slices = (C + 31) / 32, warps = (int64_t)gridDim.x * (blockDim.x / 32);
    int lane = threadIdx.x & 31;
    for (int64_t w = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32; w < N * slices; w += warps) {
        int64_t p = w / slices, c = (w - p * slices) * 32 + lane;
        uint32_t id = (uint32_t)(key[p] >> 32);
        if ((p > 0 && (uint32_t)(key[p - 1] >> 32) == id) || c >= C || id >= (uint64_t)V) continue;
        float *row = dtable + (int64_t)id * C;
        float acc = row[c];
        for (int64_t q = p; q < N && (uint32_t)(key[q] >> 32) == id; q++) acc += dout[(int64_t)(uint32_t)key[q] * C + c];
        row[c] = acc;
    }
}

// ---- Mean pooling ----
// inv[b] = 1 / (sum of row b's weights), 0 for a row without tokens; summed in order in double
__global__ static void pool_inv(double *inv, const float *mask, int64_t B, int64_t L) {
    IMB_FOR(b, B) {
        if (!mask) {
            inv[b] = 1.0 / (double)L;
            continue;
        }
        double cnt = 0;
        for (int64_t l = 0; l < L; l++) cnt += mask[b * L + l];
        inv[b] = cnt != 0.0 ? 1.0 / cnt : 0.0;
    }
}

__global__ static void pool_fwd(float *out, const float *x, const float *mask, const double *inv, int64_t B, int64_t L,
                                int64_t C) {
    IMB_FOR(i, B * C) {
        int64_t b = i / C, c = i - b * C;
        double s = 0;
        for (int64_t l = 0; l < L; l++) s += (double)x[(b * L + l) * C + c] * (mask ? mask[b * L + l] : 1.0f);
        out[i] = (float)(s * inv[b]);
    }
}

__global__ static void pool_bwd(float *dx, const float *dout, const float *mask, const double *inv, int64_t B,
                                int64_t L, int64_t C) {
    IMB_FOR(i, B * L * C) {
        int64_t bl = i / C, b = bl / L, c = i - bl * C;
        float wl = (float)((mask ? mask[bl] : 1.0f) * inv[b]);
        dx[i] += wl * dout[b * C + c];
    }
}

static double *pool_weights(const float *mask, int64_t B, int64_t L) {
    double *inv = (double *)imb_cuda_scratch(sizeof(double) * (size_t)B);
    if (inv) IMB_LAUNCH(pool_inv, imb_blocks(B, IMB_THREADS), IMB_THREADS, 0, inv, mask, B, L);
    return inv;
}

extern "C" {
void imb_embedding_fwd_cuda(float *out, const float *table, const int32_t *ids, int64_t N, int64_t V, int64_t C) {
    if (N <= 0 || C <= 0) return;
    IMB_LAUNCH(emb_fwd, imb_blocks(N * C, IMB_THREADS), IMB_THREADS, 0, out, table, ids, N, V, C);
}

void imb_embedding_bwd_cuda(float *dtable, const float *dout, const int32_t *ids, int64_t N, int64_t V, int64_t C) {
    if (N <= 0 || C <= 0) return;
    if (N > (int64_t)UINT32_MAX) {
        imb_cuda_record("imb_embedding_bwd_cuda: %lld tokens exceed the sort's 32-bit token index", (long long)N);
        return;
    }
    int64_t n2 = SORT_TILE;
    while (n2 < N) n2 <<= 1;
    uint64_t *key = (uint64_t *)imb_cuda_scratch(sizeof(uint64_t) * (size_t)n2);
    if (!key) return;
    unsigned tiles = (unsigned)(n2 / SORT_TILE);
    IMB_LAUNCH(emb_keys, imb_blocks(n2, IMB_THREADS), IMB_THREADS, 0, key, ids, N, n2);
    IMB_LAUNCH(sort_tiles, tiles, SORT_TILE, 0, key);
    for (int64_t k = 2 * SORT_TILE; k <= n2; k <<= 1) {
        for (int64_t j = k >> 1; j >= SORT_TILE; j >>= 1)
            IMB_LAUNCH(merge_global, imb_blocks(n2, IMB_THREADS), IMB_THREADS, 0, key, n2, k, j);
        IMB_LAUNCH(merge_tiles, tiles, SORT_TILE, 0, key, k);
    }
    int64_t warps = N * ((C + 31) / 32);
    IMB_LAUNCH(emb_bwd_runs, imb_blocks(warps, IMB_THREADS / 32), IMB_THREADS, 0, dtable, dout, key, N, V, C);
}

void imb_mean_pool_fwd_cuda(float *out, const float *x, const float *mask, int64_t B, int64_t L, int64_t C) {
    if (B <= 0 || C <= 0) return;
    double *inv = pool_weights(mask, B, L);
    if (inv) IMB_LAUNCH(pool_fwd, imb_blocks(B * C, IMB_THREADS), IMB_THREADS, 0, out, x, mask, inv, B, L, C);
}

void imb_mean_pool_bwd_cuda(float *dx, const float *dout, const float *mask, int64_t B, int64_t L, int64_t C) {
    if (B <= 0 || L <= 0 || C <= 0) return;
    double *inv = pool_weights(mask, B, L);
    if (inv) IMB_LAUNCH(pool_bwd, imb_blocks(B * L * C, IMB_THREADS), IMB_THREADS, 0, dx, dout, mask, inv, B, L, C);
}
}
