// CUDA AdamW over the flat parameter buffers, the deterministic sum of squares for clipping and
// the clip factor: all on the device, reading and writing the step block (kernels/step.h).
#include "backend.cuh"
#include <math.h>
extern "C" {
#include "../optim.h"
}

__global__ static void adamw_kernel(float *p, const float *g, float *m, float *v, const float *decay_mask,
                                    const float *update_mask, int64_t n, float b1, float b2, float eps, float wd,
                                    const imb_step_in *in, const imb_step_out *out) {
    if (out->skip) return;   // a non-finite gradient norm: this step changes nothing
    const float lr = in->lr, bc1 = in->bc1, bc2 = in->bc2;
    IMB_FOR(i, n) {
        if (update_mask[i] == 0.0f) continue;   // frozen: parameter and moments untouched
        float gi = g[i];
        float pi = p[i] * (1.0f - lr * wd * decay_mask[i]);
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    }
}

// Elements per partial sum. Fixed, so how the sum is split and combined depends only on n:
// the norm (and whether clipping triggers) is the same on every run.
#define SUMSQ_CHUNK 8192

__global__ static void sumsq_partial(double *part, const float *x, int64_t n, int64_t nchunks) {
    for (int64_t b = blockIdx.x; b < nchunks; b += gridDim.x) {
        int64_t lo = b * SUMSQ_CHUNK, hi = lo + SUMSQ_CHUNK < n ? lo + SUMSQ_CHUNK : n;
        double s = 0;
        for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)x[i] * x[i];
        s = imb_block_sum(s);
        if (threadIdx.x == 0) part[b] = s;
    }
}

__global__ static void __launch_bounds__(1024) sumsq_final(double *out, const double *part, int64_t nchunks) {
    double s = 0;
    for (int64_t b = threadIdx.x; b < nchunks; b += blockDim.x) s += part[b];
    s = imb_block_sum(s);
    if (threadIdx.x == 0) out[0] = s;
}

// the formula of kernels/cpu/optim.c: sqrt and the division in double are correctly rounded
// on both, so the factor (and whether clipping triggers) is the CPU's
__global__ static void clip_factor(imb_step_out *o, float max_norm) {
    double norm = sqrt(o->sumsq);
    o->skip = !isfinite(norm);
    o->clip_scale = max_norm > 0 && isfinite(norm) && norm > max_norm ? (float)(max_norm / (norm + 1e-6)) : 1.0f;
}

__global__ static void scale_by(float *x, int64_t n, const float *factor) {
    const float s = *factor;
    if (s == 1.0f) return;   // not clipped: every block leaves at once
    IMB_FOR(i, n) x[i] = s * x[i];
}

extern "C" {
void imb_adamw_cuda(float *p, const float *g, float *m, float *v, const float *decay_mask, const float *update_mask,
                    int64_t n, float b1, float b2, float eps, float wd, const imb_step_in *in, const imb_step_out *out) {
    if (n <= 0) return;
    IMB_LAUNCH(adamw_kernel, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, p, g, m, v, decay_mask, update_mask, n, b1, b2,
               eps, wd, in, out);
}

void imb_sumsq_cuda(double *out, const float *x, int64_t n) {
    if (n <= 0) {
        IMB_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof *out, imb_cuda_stream()));
        return;
    }
    int64_t nchunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double *part = (double *)imb_cuda_scratch(sizeof(double) * (size_t)nchunks);
    if (!part) return;
    IMB_LAUNCH(sumsq_partial, imb_blocks(nchunks, 1), IMB_THREADS, 0, part, x, n, nchunks);
    IMB_LAUNCH(sumsq_final, 1, 1024, 0, out, part, nchunks);
}

void imb_clip_factor_cuda(imb_step_out *o, float max_norm) { IMB_LAUNCH(clip_factor, 1, 1, 0, o, max_norm); }

void imb_scale_by_cuda(float *x, int64_t n, const float *factor) {
    if (n <= 0) return;
    IMB_LAUNCH(scale_by, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, x, n, factor);
}
}
