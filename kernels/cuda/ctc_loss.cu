// CUDA CTC: a block per (utterance, frame) row for the log-softmax and the gradient, one block
// per utterance for the alpha and beta recursions (threads over the extended states, a barrier
// per frame). Double inside each step and the CPU's order of operations, so the two agree to
// rounding; no atomics.
#include "backend.cuh"
extern "C" {
#include "../ctc_loss.h"
}

#define CTC_THREADS 256

__device__ static double lse2(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

__device__ __forceinline__ int32_t label(const int32_t *y, int64_t s, int blank) { return s & 1 ? y[s >> 1] : blank; }
__device__ __forceinline__ bool can_skip(const int32_t *y, int64_t s) {
    return (s & 1) && s >= 3 && y[s >> 1] != y[(s >> 1) - 1];
}

// logp[r, :] = logits[r, :] - logsumexp, a block per row r = b*T + t
__global__ static void log_softmax_rows(float *logp, const float *logits, int64_t rows, int64_t V) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *z = logits + r * V;
        float mx = -INFINITY;
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, z[v]);
        mx = imb_block_max(mx);
        double se = 0;
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x) se += exp((double)z[v] - mx);
        se = imb_block_sum(se);
        double lse = mx + log(se);
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x) logp[r * V + v] = (float)((double)z[v] - lse);
    }
}

__global__ static void __launch_bounds__(CTC_THREADS) alpha_kernel(float *nll, float *alpha, const float *logp,
                                                                    const int32_t *in_len, const int32_t *targets,
                                                                    const int32_t *tgt_len, int64_t T, int64_t V,
                                                                    int64_t S, int blank) {
    const int64_t b = blockIdx.x, E = 2 * S + 1, Tb = in_len[b], Eb = 2 * (int64_t)tgt_len[b] + 1;
    const int32_t *y = targets + b * S;
    const float *lp = logp + b * T * V;
    float *a = alpha + b * T * E;
    for (int64_t s = threadIdx.x; s < Eb; s += blockDim.x) a[s] = s < 2 ? lp[label(y, s, blank)] : -INFINITY;
    for (int64_t t = 1; t < Tb; t++) {
        __syncthreads();   // frame t-1 is complete (global writes of this block are visible after the barrier)
        const float *prev = a + (t - 1) * E;
        float *cur = a + t * E;
        for (int64_t s = threadIdx.x; s < Eb; s += blockDim.x) {
            double acc = prev[s];
            if (s >= 1) acc = lse2(acc, prev[s - 1]);
            if (can_skip(y, s)) acc = lse2(acc, prev[s - 2]);
            cur[s] = acc == -INFINITY ? -INFINITY : (float)(acc + lp[t * V + label(y, s, blank)]);
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        const float *last = a + (Tb - 1) * E;
        double ll = last[Eb - 1];
        if (Eb > 1) ll = lse2(ll, last[Eb - 2]);
        nll[b] = (float)-ll;
    }
}

__global__ static void __launch_bounds__(CTC_THREADS) beta_kernel(float *beta, const float *logp, const float *nll,
                                                                   const int32_t *in_len, const int32_t *targets,
                                                                   const int32_t *tgt_len, int64_t T, int64_t V,
                                                                   int64_t S, int blank) {
    const int64_t b = blockIdx.x, E = 2 * S + 1, Tb = in_len[b], Eb = 2 * (int64_t)tgt_len[b] + 1;
    if (!isfinite(nll[b])) return;   // no gradient: beta is never read
    const int32_t *y = targets + b * S;
    const float *lp = logp + b * T * V;
    float *be = beta + b * T * E;
    for (int64_t s = threadIdx.x; s < Eb; s += blockDim.x) be[(Tb - 1) * E + s] = s >= Eb - 2 ? 0.0f : -INFINITY;
    for (int64_t t = Tb - 2; t >= 0; t--) {
        __syncthreads();
        const float *next = be + (t + 1) * E, *lpn = lp + (t + 1) * V;
        float *cur = be + t * E;
        for (int64_t s = threadIdx.x; s < Eb; s += blockDim.x) {
            double acc = (double)next[s] + lpn[label(y, s, blank)];
            if (s + 1 < Eb) acc = lse2(acc, (double)next[s + 1] + lpn[label(y, s + 1, blank)]);
            if (s + 2 < Eb && can_skip(y, s + 2)) acc = lse2(acc, (double)next[s + 2] + lpn[label(y, s + 2, blank)]);
            cur[s] = (float)acc;
        }
    }
}

// a block per (b, t) row, a thread per symbol: softmax minus the occupancy of the states that
// carry the symbol, subtracted in state order as on the CPU
__global__ static void grad_kernel(float *dlogits, const float *beta, const float *logp, const float *alpha,
                                   const float *nll, const int32_t *in_len, const int32_t *targets,
                                   const int32_t *tgt_len, const float *dloss, int reduction, int64_t B, int64_t T,
                                   int64_t V, int64_t S, int blank) {
    const int64_t E = 2 * S + 1;
    for (int64_t r = blockIdx.x; r < B * T; r += gridDim.x) {
        const int64_t b = r / T, t = r - b * T;
        if (t >= in_len[b] || !isfinite(nll[b])) continue;
        double g = reduction == IMB_CTC_NONE ? dloss[b] : dloss[0];
        if (reduction == IMB_CTC_MEAN) g /= (double)B * (double)(tgt_len[b] > 1 ? tgt_len[b] : 1);
        const int64_t Eb = 2 * (int64_t)tgt_len[b] + 1;
        const int32_t *y = targets + b * S;
        const float *a = alpha + r * E, *be = beta + r * E, *lp = logp + r * V;
        float *d = dlogits + r * V;
        const double ln = nll[b];
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
            float acc = d[v] + (float)(g * exp((double)lp[v]));
            for (int64_t s = v == blank ? 0 : 1; s < Eb; s += 2) {   // blanks sit on even states, symbols on odd
                if (label(y, s, blank) != v) continue;
                double ab = (double)a[s] + be[s];
                if (ab != -INFINITY) acc -= (float)(g * exp(ab + ln));
            }
            d[v] = acc;
        }
    }
}

// one thread, index order: the reduced loss has the CPU's bits
__global__ static void reduce_kernel(float *out, const float *nll, const int32_t *tgt_len, int64_t B, int reduction,
                                     int zero_infinity) {
    if (threadIdx.x || blockIdx.x) return;
    double sum = 0;
    for (int64_t b = 0; b < B; b++) {
        double l = nll[b];
        if (zero_infinity && isinf(l)) l = 0;
        if (reduction == IMB_CTC_NONE) out[b] = (float)l;
        else sum += reduction == IMB_CTC_MEAN ? l / (double)(tgt_len[b] > 1 ? tgt_len[b] : 1) : l;
    }
    if (reduction == IMB_CTC_MEAN) out[0] = (float)(sum / (double)B);
    else if (reduction == IMB_CTC_SUM) out[0] = (float)sum;
}

extern "C" {
void imb_ctc_fwd_cuda(float *nll, float *logp, float *alpha, const float *logits, const int32_t *in_len,
                      const int32_t *targets, const int32_t *tgt_len, int64_t B, int64_t T, int64_t V, int64_t S,
                      int blank) {
    if (B <= 0 || T <= 0 || V <= 0) return;
    IMB_LAUNCH(log_softmax_rows, imb_blocks(B * T, 1), imb_row_threads(V), 0, logp, logits, B * T, V);
    IMB_LAUNCH(alpha_kernel, (unsigned)B, CTC_THREADS, 0, nll, alpha, logp, in_len, targets, tgt_len, T, V, S, blank);
}

void imb_ctc_bwd_cuda(float *dlogits, float *beta, const float *logp, const float *alpha, const float *nll,
                      const int32_t *in_len, const int32_t *targets, const int32_t *tgt_len, const float *dloss,
                      int reduction, int64_t B, int64_t T, int64_t V, int64_t S, int blank) {
    if (B <= 0 || T <= 0 || V <= 0 || !dlogits) return;
    IMB_LAUNCH(beta_kernel, (unsigned)B, CTC_THREADS, 0, beta, logp, nll, in_len, targets, tgt_len, T, V, S, blank);
    IMB_LAUNCH(grad_kernel, imb_blocks(B * T, 1), imb_row_threads(V), 0, dlogits, beta, logp, alpha, nll, in_len,
               targets, tgt_len, dloss, reduction, B, T, V, S, blank);
}

void imb_ctc_reduce_cuda(float *out, const float *nll, const int32_t *tgt_len, int64_t B, int reduction,
                         int zero_infinity) {
    if (B <= 0) return;
    IMB_LAUNCH(reduce_kernel, 1, 32, 0, out, nll, tgt_len, B, reduction, zero_infinity);
}
}
