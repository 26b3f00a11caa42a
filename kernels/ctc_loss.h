/* CTC loss (connectionist temporal classification) in log space, with the log-softmax fused in. */
#ifndef IMB_CTC_LOSS_H
#define IMB_CTC_LOSS_H
#include "ctx.h"

/* How per-utterance losses become the op's output (PyTorch's CTCLoss reductions):
 *   MEAN: (1/B) sum_b loss_b / max(target_length_b, 1)   (PyTorch's 'mean') -> [1]
 *   SUM:  sum_b loss_b                                                       -> [1]
 *   NONE: loss_b                                                             -> [B] */
typedef enum { IMB_CTC_MEAN = 0, IMB_CTC_SUM = 1, IMB_CTC_NONE = 2 } imb_ctc_reduction;

/* logits [B, T, V] (unnormalised scores; the op applies log-softmax over V itself, as warp-ctc
 * and cuDNN do, so it equals PyTorch's ctc_loss(log_softmax(logits))); in_len i32 [B], each in
 * [1, T] (frames past it are ignored and get no gradient); targets i32 [B, S], row b's first
 * tgt_len[b] entries in [0, V) and != blank (the rest is ignored); tgt_len i32 [B] in [0, S].
 * loss_b = -log p(target_b | logits_b). A target that no alignment can emit in in_len frames
 * (too long, counting the blank that must separate repeated symbols) has loss_b = +inf: with
 * zero_infinity its loss and gradient are 0 (PyTorch's zero_infinity), without it the
 * reduced loss is inf and its gradient rows are 0. nll (may be NULL) receives a new tensor
 * f32 [B] with every -log p before zeroing, so a caller can count and name infinite ones. */
imb_tensor *imb_ctc_loss(imb_ctx *ctx, imb_tensor *logits, imb_tensor *in_len, imb_tensor *targets,
                         imb_tensor *tgt_len, int blank, imb_ctc_reduction reduction, int zero_infinity,
                         imb_tensor **nll);

/* Raw kernels. Sizes: B utterances, T frames, V symbols, S target slots; the extended label
 * sequence of utterance b (blank, y1, blank, y2, ..., blank) has 2 tgt_len[b] + 1 states, laid
 * out with stride E = 2S + 1.
 * Forward: logp [B, T, V] = log_softmax(logits) over V; alpha [B, T, E] the forward variables
 * (log probability of the prefixes ending in state s at frame t, emission at t included);
 * nll [B]. Only frames t < in_len[b] and states s <= 2 tgt_len[b] are written in alpha. */
void imb_ctc_fwd_cpu(float *nll, float *logp, float *alpha, const float *logits, const int32_t *in_len,
                     const int32_t *targets, const int32_t *tgt_len, int64_t B, int64_t T, int64_t V, int64_t S,
                     int blank);
/* Backward: beta [B, T, E] scratch (the backward variables, emission at t excluded); adds
 * g_b (softmax(logits) - occupancy) into dlogits rows t < in_len[b], where occupancy[t, v] =
 * sum over states s labelled v of exp(alpha + beta + nll) and g_b is the gradient reaching
 * loss_b: dloss[b] for NONE, dloss[0] for SUM, dloss[0] / (B max(tgt_len[b], 1)) for MEAN;
 * 0 where nll_b is infinite. dloss lives on the kernel's device (no copy to the host). */
void imb_ctc_bwd_cpu(float *dlogits, float *beta, const float *logp, const float *alpha, const float *nll,
                     const int32_t *in_len, const int32_t *targets, const int32_t *tgt_len, const float *dloss,
                     int reduction, int64_t B, int64_t T, int64_t V, int64_t S, int blank);
/* The reduction of nll [B] into out ([1], or [B] for NONE); infinite entries become 0 when
 * zero_infinity is set. Sums in double, in index order. */
void imb_ctc_reduce_cpu(float *out, const float *nll, const int32_t *tgt_len, int64_t B, int reduction,
                        int zero_infinity);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/ctc.cu): same arguments, device pointers, queued on the backend
 * stream; failures go to the backend's sticky error (see op.h, IMB_RUN). The recursions run
 * one thread block per utterance. */
void imb_ctc_fwd_cuda(float *nll, float *logp, float *alpha, const float *logits, const int32_t *in_len,
                      const int32_t *targets, const int32_t *tgt_len, int64_t B, int64_t T, int64_t V, int64_t S,
                      int blank);
void imb_ctc_bwd_cuda(float *dlogits, float *beta, const float *logp, const float *alpha, const float *nll,
                      const int32_t *in_len, const int32_t *targets, const int32_t *tgt_len, const float *dloss,
                      int reduction, int64_t B, int64_t T, int64_t V, int64_t S, int blank);
void imb_ctc_reduce_cuda(float *out, const float *nll, const int32_t *tgt_len, int64_t B, int reduction,
                         int zero_infinity);
#endif
#endif
