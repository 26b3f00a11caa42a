/* CTC decoding on the host: best path (greedy) and prefix beam search over one utterance's frame scores. */
#ifndef IMB_CTC_DECODE_H
#define IMB_CTC_DECODE_H
#include <stdint.h>

/* scores [T, V]: logits or log-probabilities of T frames (row-major); out needs T slots.
 * Best path: the argmax of every frame (ties to the lower symbol), repeats merged, blanks
 * dropped. Returns the number of symbols written. */
int imb_ctc_greedy(const float *scores, int T, int V, int blank, int32_t *out);

/* Prefix beam search (Hannun et al. 2014, no language model): after every frame keeps the
 * `beam` most probable label prefixes, each prefix's probability summed over all the paths
 * that collapse to it (kept apart as ending in blank / in a symbol so that repeats merge
 * correctly); ties go to the prefix created first. scores are normalised per frame
 * (log-softmax) first, so logits are fine. With a beam at least as large as the number of
 * distinct prefixes the search is exact (the most probable labelling); with beam 1 it keeps
 * one prefix, which is the best path whenever every frame's argmax has probability >= 0.9
 * (in general the two can differ: the prefix merges paths, the best path does not). Writes
 * the best labelling to out (T slots) and, when logp is not NULL, its log probability.
 * Returns the number of symbols, or -1 on bad arguments (T, V, beam < 1, blank outside V)
 * or out of memory. */
int imb_ctc_prefix_beam(const float *scores, int T, int V, int blank, int beam, int32_t *out, double *logp);
#endif
