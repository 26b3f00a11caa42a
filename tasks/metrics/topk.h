/* Top-1 / top-5 accuracy, computed as timm's accuracy(): label among the k largest logits. */
#ifndef IMB_TOPK_H
#define IMB_TOPK_H
#include <stdint.h>

typedef struct imb_topk { int64_t n, top1, top5; } imb_topk;

/* logits [B, C] row-major on the host; k is capped at C as timm does (maxk = min(5, C)).
 * Ties go to the lower class index. Rows with label < 0 are skipped. */
void imb_topk_update(imb_topk *acc, const float *logits, const int32_t *labels, int64_t B, int64_t C);
double imb_topk_top1(const imb_topk *acc);   /* percent */
double imb_topk_top5(const imb_topk *acc);
#endif
