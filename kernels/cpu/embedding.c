/* CPU reference embedding lookup/scatter-add and masked mean pooling. */
#include "../embedding.h"

/* columns per backward task: wide enough for contiguous row updates, narrow enough to
 * spread a typical C (64..1024) over the cores */
#define EMB_COL_BLOCK 32

void imb_embedding_fwd_cpu(float *out, const float *table, const int32_t *ids, int64_t N, int64_t V, int64_t C) {
    (void)V;
#pragma omp parallel for
    for (int64_t n = 0; n < N; n++) {
        const float *row = table + (int64_t)ids[n] * C;
        for (int64_t c = 0; c < C; c++) out[n * C + c] = row[c];
    }
}

void imb_embedding_bwd_cpu(float *dtable, const float *dout, const int32_t *ids, int64_t N, int64_t V, int64_t C) {
    (void)V;
    /* Split by columns, not by tokens: two tokens with the same id then never race, and
     * every element still adds its tokens in index order whatever the thread count. */
    int64_t nblk = (C + EMB_COL_BLOCK - 1) / EMB_COL_BLOCK;
#pragma omp parallel for
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t c0 = blk * EMB_COL_BLOCK, c1 = c0 + EMB_COL_BLOCK < C ? c0 + EMB_COL_BLOCK : C;
        for (int64_t n = 0; n < N; n++) {
            float *row = dtable + (int64_t)ids[n] * C;
            for (int64_t c = c0; c < c1; c++) row[c] += dout[n * C + c];
        }
    }
}

/* 1 / (sum of the row's weights), or 0 for a row without tokens */
static double inv_count(const float *mask, int64_t b, int64_t L) {
    if (!mask) return 1.0 / (double)L;
    double cnt = 0;
    for (int64_t l = 0; l < L; l++) cnt += mask[b * L + l];
    return cnt != 0.0 ? 1.0 / cnt : 0.0;
}

void imb_mean_pool_fwd_cpu(float *out, const float *x, const float *mask, int64_t B, int64_t L, int64_t C) {
#pragma omp parallel for
    for (int64_t b = 0; b < B; b++) {
        double inv = inv_count(mask, b, L);
        for (int64_t c = 0; c < C; c++) {
            double s = 0;
            for (int64_t l = 0; l < L; l++) s += (double)x[(b * L + l) * C + c] * (mask ? mask[b * L + l] : 1.0f);
            out[b * C + c] = (float)(s * inv);
        }
    }
}

void imb_mean_pool_bwd_cpu(float *dx, const float *dout, const float *mask, int64_t B, int64_t L, int64_t C) {
#pragma omp parallel for
    for (int64_t b = 0; b < B; b++) {
        double inv = inv_count(mask, b, L);
        for (int64_t l = 0; l < L; l++) {
            float wl = (float)((mask ? mask[b * L + l] : 1.0f) * inv);
            for (int64_t c = 0; c < C; c++) dx[(b * L + l) * C + c] += wl * dout[b * C + c];
        }
    }
}
