/* Counter-based RNG built on the splitmix64 finaliser. */
#include "rng.h"
#include <math.h>

uint64_t imb_hash64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t draw(uint64_t seed, uint64_t stream, uint64_t index) {
    return imb_hash64(imb_hash64(seed ^ imb_hash64(stream)) + index);
}

float imb_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return (float)(draw(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

static double normal_at(uint64_t seed, uint64_t stream, uint64_t k) {
    uint64_t r = draw(seed, stream, k);
    double u1 = ((double)(r >> 11) + 1.0) / 9007199254740993.0;     /* (0, 1] */
    double u2 = (double)(draw(seed ^ 0x5bd1e995u, stream, k) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

float imb_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    return (float)normal_at(seed, stream, index * 64);
}

float imb_rng_trunc_normal(uint64_t seed, uint64_t stream, uint64_t index, float std) {
    for (uint64_t t = 0; t < 64; t++) {
        double z = normal_at(seed, stream, index * 64 + t);
        if (z >= -2.0 && z <= 2.0) return (float)(z * std);
    }
    return 0.0f;   /* P(64 rejections) ~ 1e-85 */
}

uint32_t imb_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint32_t n) {
    return (uint32_t)(((draw(seed, stream, index) >> 32) * (uint64_t)n) >> 32);
}
