/* Top-k accuracy counters. */
#include "topk.h"

void imb_topk_update(imb_topk *acc, const float *logits, const int32_t *labels, int64_t B, int64_t C) {
    for (int64_t i = 0; i < B; i++) {
        int32_t y = labels[i];
        if (y < 0 || y >= C) continue;
        const float *z = logits + i * C;
        /* rank of the label: classes strictly above it, or equal with a lower index */
        int64_t rank = 0;
        for (int64_t c = 0; c < C; c++) rank += z[c] > z[y] || (z[c] == z[y] && c < y);
        acc->n++;
        acc->top1 += rank < 1;
        acc->top5 += rank < (C < 5 ? C : 5);
    }
}

double imb_topk_top1(const imb_topk *a) { return a->n ? 100.0 * (double)a->top1 / (double)a->n : 0.0; }
double imb_topk_top5(const imb_topk *a) { return a->n ? 100.0 * (double)a->top5 / (double)a->n : 0.0; }
