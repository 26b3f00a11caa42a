// Stand-in for <cuda_runtime.h> that runs kernels on the CPU: each thread of a block is a ucontext fiber.
//
// Why: kernels/cuda/attention.cu is written on machines without a GPU. Compiled with g++ -I bench/emu and
// -DIMB_CUDA_EMU, the same kernel source runs here, block after block, so its indexing, masking and
// barrier structure can be tested against the CPU reference (bench/attn_emu.cpp), under AddressSanitizer.
// Only what attention.cu and scan*.cu use is provided. Semantics:
//   - fibers switch only at __syncthreads / __syncwarp / shuffles, in an order chosen per run (forward,
//     reverse or random), so a missing barrier shows up as a wrong result under one of the orders;
//   - a barrier that some threads of the block (or warp) never reach, because they returned or wait at a
//     different barrier, aborts with a message instead of hanging;
//   - dynamic shared memory is a heap buffer of exactly the launch's size, filled with NaN at each block
//     start, so reads of unwritten shared memory poison the result and overruns trip the sanitizer;
//   - shuffles and mma.sync (m16n8k8 tf32, the PTX ISA's fragment layouts) need all 32 lanes.
#ifndef IMB_EMU_CUDA_RUNTIME_H
#define IMB_EMU_CUDA_RUNTIME_H
#ifndef IMB_CUDA_EMU
#define IMB_CUDA_EMU 1
#endif
#include <ucontext.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define IMB_EMU_ASAN 1
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
inline float4 make_float4(float x, float y, float z, float w) { return float4{ x, y, z, w }; }
inline float2 make_float2(float x, float y) { return float2{ x, y }; }
template <class T> inline T __ldg(const T *p) { return *p; }

enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorLaunchFailure = 719 };
typedef struct CUstream_st *cudaStream_t;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

namespace imb_emu {

enum { READY, AT_BLOCK, AT_WARP, DONE };

struct Fiber {
    ucontext_t uc;
    uint3 tid;
    int lin, state, shfl_phase;
    char *stack;
};

struct State {
    std::vector<Fiber> f;
    ucontext_t sched;
    int cur = -1;
    dim3 grid, block;
    uint3 bidx{ 0, 0, 0 };
    std::function<void()> body;
    unsigned char *smem = nullptr;
    size_t smem_bytes = 0;
    std::vector<double> shfl;   // [warp][phase 0/1][lane]
    std::vector<uint32_t> mma;  // [warp][phase 0/1][lane][a0..3, b0..1, c0..3]
    int order = 0;              // 0 forward, 1 reverse, 2 random
    std::mt19937 rng{ 12345 };
    cudaError_t err = cudaSuccess;
    size_t stack_bytes = (size_t)256 << 10;
    long blocks_run = 0;
    const void *sched_stack_bottom = nullptr;
    size_t sched_stack_size = 0;
    int smem_optin = 227 * 1024;   // what cudaDeviceGetAttribute reports; a test may lower it
};
inline State &S() { static State s; return s; }

inline void fail(const char *msg) {
    State &s = S();
    fprintf(stderr, "cuda-emu: %s (block %u, thread %d)\n", msg, s.bidx.x, s.cur);
    abort();
}

// Fiber switches, annotated for AddressSanitizer (which otherwise mistakes the new stack for an overflow).
inline void to_fiber(int i) {
    State &s = S();
    s.cur = i;
#ifdef IMB_EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, s.f[i].stack, s.stack_bytes);
    swapcontext(&s.sched, &s.f[i].uc);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    swapcontext(&s.sched, &s.f[i].uc);
#endif
}
inline void to_sched(bool dying) {
    State &s = S();
    Fiber &f = s.f[s.cur];
#ifdef IMB_EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(dying ? nullptr : &fake, s.sched_stack_bottom, s.sched_stack_size);
    swapcontext(&f.uc, &s.sched);
    __sanitizer_finish_switch_fiber(fake, &s.sched_stack_bottom, &s.sched_stack_size);
#else
    (void)dying;
    swapcontext(&f.uc, &s.sched);
#endif
}

inline void fiber_main() {
#ifdef IMB_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &S().sched_stack_bottom, &S().sched_stack_size);
#endif
    S().body();
    S().f[S().cur].state = DONE;
    to_sched(true);
}

inline void wait_at(int st) {
    State &s = S();
    s.f[s.cur].state = st;
    to_sched(false);
}

inline void run_block() {
    State &s = S();
    const int n = (int)(s.block.x * s.block.y * s.block.z);
    if (n % 32) fail("block size is not a multiple of 32");
    s.f.assign(n, Fiber{});
    for (size_t i = 0; i < s.smem_bytes / sizeof(float); i++) ((float *)s.smem)[i] = NAN;
    for (int i = 0; i < n; i++) {
        Fiber &f = s.f[i];
        f.lin = i;
        f.tid = uint3{ (unsigned)(i % s.block.x), (unsigned)(i / s.block.x % s.block.y), (unsigned)(i / (s.block.x * s.block.y)) };
        f.state = READY;
        f.shfl_phase = 0;
        f.stack = (char *)malloc(s.stack_bytes);
        getcontext(&f.uc);
        f.uc.uc_stack.ss_sp = f.stack;
        f.uc.uc_stack.ss_size = s.stack_bytes;
        f.uc.uc_link = nullptr;
        makecontext(&f.uc, fiber_main, 0);
    }
    s.shfl.assign((size_t)n / 32 * 2 * 32, 0.0);
    std::vector<int> idx(n);
    for (;;) {
        for (int i = 0; i < n; i++) idx[i] = s.order == 1 ? n - 1 - i : i;
        if (s.order == 2) std::shuffle(idx.begin(), idx.end(), s.rng);
        for (int i : idx)
            if (s.f[i].state == READY) to_fiber(i);
        int done = 0, at_block = 0;
        for (auto &f : s.f) { done += f.state == DONE; at_block += f.state == AT_BLOCK; }
        if (done == n) break;
        bool released = false;
        for (int w = 0; w < n / 32; w++) {
            int at_warp = 0, wdone = 0;
            for (int l = 0; l < 32; l++) {
                at_warp += s.f[w * 32 + l].state == AT_WARP;
                wdone += s.f[w * 32 + l].state == DONE;
            }
            if (at_warp == 32) {
                for (int l = 0; l < 32; l++) s.f[w * 32 + l].state = READY;
                released = true;
            } else if (at_warp && wdone) {
                s.cur = w * 32;
                fail("warp-level barrier or shuffle with exited lanes");
            }
        }
        if (released) continue;
        if (at_block + done == n) {
            if (done) fail("__syncthreads reached by some threads while others have exited");
            for (auto &f : s.f) f.state = READY;
            continue;
        }
        fail("deadlock: threads wait at different barriers (divergent __syncthreads / __syncwarp)");
    }
    for (auto &f : s.f) free(f.stack);
    s.blocks_run++;
}

}   // namespace imb_emu

inline const uint3 &imb_emu_tid() { return imb_emu::S().f[imb_emu::S().cur].tid; }
#define threadIdx (imb_emu_tid())
#define blockIdx (imb_emu::S().bidx)
#define blockDim (imb_emu::S().block)
#define gridDim (imb_emu::S().grid)

inline void __syncthreads() { imb_emu::wait_at(imb_emu::AT_BLOCK); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (mask != 0xffffffffu) imb_emu::fail("__syncwarp with a partial mask");
    imb_emu::wait_at(imb_emu::AT_WARP);
}
// Two slot sets alternate, so one barrier per shuffle suffices: a lane can only get two shuffles ahead
// after every lane has passed the barrier of the next one, i.e. has read this one.
template <class T> inline T imb_emu_shfl(unsigned mask, T v, int src_of_lane_xor, bool is_xor, int width) {
    using namespace imb_emu;
    if (mask != 0xffffffffu || width != 32) fail("shuffle with a partial mask or width");
    State &s = S();
    Fiber &f = s.f[s.cur];
    const int w = f.lin / 32, lane = f.lin % 32, ph = f.shfl_phase;
    f.shfl_phase ^= 1;
    s.shfl[((size_t)w * 2 + ph) * 32 + lane] = (double)v;
    wait_at(AT_WARP);
    const int src = is_xor ? (lane ^ src_of_lane_xor) : (src_of_lane_xor & 31);
    return (T)s.shfl[((size_t)w * 2 + ph) * 32 + src];
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return imb_emu_shfl(mask, v, lane_mask, true, width);
}
template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return imb_emu_shfl(mask, v, src, false, width);
}
// up/down: lanes whose source would fall outside the warp get their own value back (as the hardware does)
template <class T> inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    const int lane = imb_emu::S().f[imb_emu::S().cur].lin % 32;
    return imb_emu_shfl(mask, v, lane >= (int)delta ? lane - (int)delta : lane, false, width);
}
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    const int lane = imb_emu::S().f[imb_emu::S().cur].lin % 32;
    return imb_emu_shfl(mask, v, lane + (int)delta < 32 ? lane + (int)delta : lane, false, width);
}

// Fibers switch only at barriers and shuffles, so a read-modify-write is atomic here.
template <class T> inline T atomicAdd(T *p, T v) {
    const T old = *p;
    *p = old + v;
    return old;
}

inline uint32_t __float_as_uint(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
inline float __uint_as_float(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 d, a, b, d: a warp-collective op. Fragment layouts
// (PTX ISA), g = lane / 4, t = lane % 4: A a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); B b0 (k t,
// n g), b1 (k t+4, n g); C/D c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1). Operands are read as
// tf32 (the low 13 bits ignored, as the hardware does); sums run in fp32, k ascending.
inline void imb_emu_mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    using namespace imb_emu;
    State &s = S();
    Fiber &f = s.f[s.cur];
    const int w = f.lin / 32, lane = f.lin % 32, ph = f.shfl_phase;
    f.shfl_phase ^= 1;
    if (s.mma.size() < s.shfl.size() / 32 * 10 * 32) s.mma.resize(s.shfl.size() / 32 * 10 * 32);
    uint32_t *slot = &s.mma[(((size_t)w * 2 + ph) * 32 + lane) * 10];
    for (int i = 0; i < 4; i++) slot[i] = a[i];
    slot[4] = b[0]; slot[5] = b[1];
    for (int i = 0; i < 4; i++) slot[6 + i] = __float_as_uint(d[i]);
    wait_at(AT_WARP);
    float A[16][8], B[8][8], C[16][8];
    for (int L = 0; L < 32; L++) {
        const uint32_t *o = &s.mma[(((size_t)w * 2 + ph) * 32 + L) * 10];
        const int g = L >> 2, t = L & 3;
        auto tf = [](uint32_t u) { return __uint_as_float(u & 0xffffe000u); };
        A[g][t] = tf(o[0]); A[g + 8][t] = tf(o[1]); A[g][t + 4] = tf(o[2]); A[g + 8][t + 4] = tf(o[3]);
        B[t][g] = tf(o[4]); B[t + 4][g] = tf(o[5]);
        C[g][2 * t] = __uint_as_float(o[6]); C[g][2 * t + 1] = __uint_as_float(o[7]);
        C[g + 8][2 * t] = __uint_as_float(o[8]); C[g + 8][2 * t + 1] = __uint_as_float(o[9]);
    }
    const int g = lane >> 2, t = lane & 3;
    const int rr[4] = { g, g, g + 8, g + 8 }, cc[4] = { 2 * t, 2 * t + 1, 2 * t, 2 * t + 1 };
    for (int i = 0; i < 4; i++) {
        float acc = C[rr[i]][cc[i]];
        for (int k = 0; k < 8; k++) acc += A[rr[i]][k] * B[k][cc[i]];
        d[i] = acc;
    }
}

template <class T> inline T *imb_emu_dynamic_smem() { return reinterpret_cast<T *>(imb_emu::S().smem); }

// Runs body once per thread of every block of the grid (x, then y, then z), blocks one after another.
inline void imb_emu_launch(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body) {
    using namespace imb_emu;
    State &s = S();
    if (smem > (size_t)s.smem_optin) { s.err = cudaErrorInvalidValue; return; }
    if (block.x * block.y * block.z > 1024) { s.err = cudaErrorInvalidValue; return; }
    s.grid = grid;
    s.block = block;
    s.body = body;
    s.smem_bytes = smem;
    s.smem = smem ? (unsigned char *)aligned_alloc(16, (smem + 15) & ~(size_t)15) : nullptr;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                s.bidx = uint3{ x, y, z };
                run_block();
            }
    free(s.smem);
    s.smem = nullptr;
}

// Memory, events and device queries for host programs (bench/attn_bench.cu): device memory is host memory.
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
inline cudaError_t cudaMalloc(void **p, size_t n) {
    *p = aligned_alloc(256, (n + 255) & ~(size_t)255);
    return *p ? cudaSuccess : cudaErrorInvalidValue;
}
template <class T> inline cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
inline cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) { memmove(d, s, n); return cudaSuccess; }
inline cudaError_t cudaMemset(void *d, int v, size_t n) { memset(d, v, n); return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
typedef struct CUevent_st *cudaEvent_t;
inline cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = nullptr; return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t = nullptr) { return cudaSuccess; }
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 0.f; return cudaSuccess; }
inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
struct cudaDeviceProp { char name[256]; int major, minor, multiProcessorCount; };
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    snprintf(p->name, sizeof p->name, "CPU emulation (bench/emu)");
    p->major = 9; p->minor = 0; p->multiProcessorCount = 1;
    return cudaSuccess;
}

inline cudaError_t cudaGetLastError() {
    cudaError_t e = imb_emu::S().err;
    imb_emu::S().err = cudaSuccess;
    return e;
}
inline const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
inline cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
inline cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr attr, int) {
    *v = attr == cudaDevAttrMultiProcessorCount ? 132 : imb_emu::S().smem_optin;
    return cudaSuccess;
}
template <class K> inline cudaError_t cudaFuncSetAttribute(K, cudaFuncAttribute, int v) {
    return v <= imb_emu::S().smem_optin ? cudaSuccess : cudaErrorInvalidValue;
}
#endif
