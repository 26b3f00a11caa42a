/* Counter-based RNG: every draw is a pure function of (seed, stream, index), so
 * results never depend on thread count or call order. */
#ifndef IMB_RNG_H
#define IMB_RNG_H
#include <stdint.h>

uint64_t imb_hash64(uint64_t x);
/* uniform in [0, 1) with 24 random bits */
float imb_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* standard normal (Box-Muller over two counter draws) */
float imb_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);
/* normal(0, std) truncated to [-2 std, 2 std] by counter-indexed rejection */
float imb_rng_trunc_normal(uint64_t seed, uint64_t stream, uint64_t index, float std);
/* uniform integer in [0, n) */
uint32_t imb_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint32_t n);
#endif
