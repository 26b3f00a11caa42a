// CUDA activations (and exp) and their derivatives, one thread per element (formulas as in kernels/cpu/activation.c).
#include "backend.cuh"
extern "C" {
#include "../activation.h"
}

__device__ __forceinline__ float act(imb_act_kind k, float x) {
    switch (k) {
    case IMB_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
    case IMB_ACT_SILU: return x / (1.0f + expf(-x));
    case IMB_ACT_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));   // PyTorch's threshold
    case IMB_ACT_EXP: return expf(x);
    }
    return 0.0f;
}

__device__ __forceinline__ float dact(imb_act_kind k, float x) {
    switch (k) {
    case IMB_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752440f));
        float pdf = expf(-0.5f * x * x) * 0.3989422804014327f;
        return cdf + x * pdf;
    }
    case IMB_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    case IMB_ACT_SOFTPLUS: return x > 20.0f ? 1.0f : 1.0f / (1.0f + expf(-x));
    case IMB_ACT_EXP: return expf(x);
    }
    return 0.0f;
}

__global__ static void act_fwd(imb_act_kind kind, float *out, const float *x, int64_t n) {
    IMB_FOR(i, n) out[i] = act(kind, x[i]);
}

__global__ static void act_bwd(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n) {
    IMB_FOR(i, n) dx[i] += dout[i] * dact(kind, x[i]);
}

// 0 + v, as a zeroed buffer plus v: -0 becomes +0 exactly as in act_bwd
__global__ static void act_grad(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n) {
    IMB_FOR(i, n) dx[i] = 0.0f + dout[i] * dact(kind, x[i]);
}

extern "C" void imb_act_fwd_cuda(imb_act_kind kind, float *out, const float *x, int64_t n) {
    if (n <= 0) return;
    IMB_LAUNCH(act_fwd, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, kind, out, x, n);
}

extern "C" void imb_act_bwd_cuda(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n) {
    if (n <= 0) return;
    IMB_LAUNCH(act_bwd, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, kind, dx, x, dout, n);
}

extern "C" void imb_act_grad_cuda(imb_act_kind kind, float *dx, const float *x, const float *dout, int64_t n) {
    if (n <= 0) return;
    IMB_LAUNCH(act_grad, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, kind, dx, x, dout, n);
}
