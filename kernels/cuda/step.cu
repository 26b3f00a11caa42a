// CUDA twins of the step block's kernels: data range check (the first bad element wins by an
// atomic minimum, so the verdict does not depend on scheduling), block reset, scalar keep, fetch.
#include "backend.cuh"
#include <math.h>
extern "C" {
#include "../step.h"
}

__global__ static void check_range(unsigned long long *bad, const int32_t *x, int64_t n, int64_t limit,
                                   int allow_negative, uint32_t site) {
    IMB_FOR(i, n) {
        int32_t v = x[i];
        if (v < limit && (v >= 0 || allow_negative)) continue;
        atomicMin(bad, (unsigned long long)site << 32 | (unsigned long long)i);
    }
}

__global__ static void step_reset(imb_step_out *o) {
    int t = threadIdx.x;
    if (t < IMB_STEP_VALS) o->vals[t] = NAN;
    if (t == 0) {
        o->bad = IMB_CHECK_NONE;
        o->sumsq = 0.0;
        o->clip_scale = 1.0f;
        o->skip = 0;
    }
}

extern "C" {
void imb_check_range_cuda(uint64_t *bad, const int32_t *x, int64_t n, int64_t limit, int allow_negative, uint32_t site) {
    if (n <= 0) return;
    static_assert(sizeof(unsigned long long) == sizeof(uint64_t), "atomicMin on the 64-bit key");
    IMB_LAUNCH(check_range, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, (unsigned long long *)bad, x, n, limit,
               allow_negative, site);
}

void imb_step_reset_cuda(imb_step_out *o) {
    static_assert(IMB_STEP_VALS <= 32, "one warp resets the block");
    IMB_LAUNCH(step_reset, 1, 32, 0, o);
}

void imb_step_keep_cuda(float *dst, const float *src) {
    IMB_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(float), cudaMemcpyDeviceToDevice, imb_cuda_stream()));
}

void imb_step_fetch_cuda(imb_step_out *host, const imb_step_out *dev) {
    IMB_CUDA_CHECK(cudaMemcpyAsync(host, dev, sizeof *host, cudaMemcpyDeviceToHost, imb_cuda_stream()));
}
}
