// bench/scan_bench.c on the CPU emulator with tiny shapes: checks its check mode (dumps, fast vs simple,
// determinism) and the plumbing of its time mode without a GPU (the times themselves mean nothing here).
//   gcc -std=c11 -O1 -Ibuild -Ikernels -c kernels/rng.c -o /tmp/rng.o
//   g++ -std=c++17 -O1 -fpermissive -Wno-narrowing -DIMB_CUDA_EMU -Ibench/emu -Ibuild -Ikernels \
//       bench/scan_bench_emu.cpp /tmp/rng.o -o /tmp/scan_bench_emu && /tmp/scan_bench_emu all /tmp/scan_check
// (-fpermissive, -Wno-narrowing: scan_bench.c is C, compiled here as C++)
#include "cuda_runtime.h"
#include <cstring>
// the runtime calls scan_bench makes that bench/emu does not provide
inline cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = nullptr; return cudaSuccess; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t) { return cudaMemcpy(d, s, n, k); }
inline cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
#define cudaDevAttrClockRate cudaDevAttrMultiProcessorCount
#include "../kernels/cuda/scan.cu"
#include "../kernels/cuda/scan_fast.cu"
// the tables scan_bench.c uses instead of its own (see SCAN_BENCH_TABLES there)
#define SCAN_BENCH_TABLES \
static const cfg timing[] = { { "tiny4", 2, 8, 20, 3, 1, 4, 4, 5, 4, 1, 1, 0, 0 } }; \
static const cfg checks[] = { \
    { "c4k4", 2, 8, 20, 3, 2, 4, 4, 5, 4, 1, 1, 0, 0 }, \
    { "c1z_mask", 2, 4, 30, 2, 1, 1, 30, 1, 1, 1, 1, 1, 1 }, \
    { "c2k2g2", 2, 4, 12, 16, 2, 2, 12, 1, 2, 0, 1, 1, 0 }, \
    { "c4k1", 1, 6, 35, 1, 3, 4, 5, 7, 1, 1, 0, 1, 1 }, \
};
extern "C" {   // rng.h is a C header without C++ guards
#include "rng.h"
}
#include "scan_bench.c"
