// The CUDA backend's process-wide state (stream, cuBLAS/cuBLASLt handles, workspace, scratch)
// and the sticky error that the op layer turns into a context error.
#include "backend.cuh"
#include <atomic>
#include <mutex>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// cuBLAS's documented workspace for Hopper; also what its fastest fp32 and bf16 kernels ask for.
#define IMB_BLAS_WORKSPACE ((size_t)32 << 20)

static std::mutex init_lock, err_lock;   // two locks: init records errors while holding the first
static std::atomic<bool> ready(false);
static imb_cuda_state state;
static char err_msg[1024];
static bool has_err;

void imb_cuda_record(const char *fmt, ...) {
    std::lock_guard<std::mutex> g(err_lock);
    if (has_err) return;   // the first failure is the one worth reading; later ones follow from it
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    has_err = true;
}

extern "C" const char *imb_cuda_last_error(void) {
    std::lock_guard<std::mutex> g(err_lock);
    return has_err ? err_msg : NULL;
}

extern "C" void imb_cuda_clear_error(void) {
    std::lock_guard<std::mutex> g(err_lock);
    has_err = false;
    err_msg[0] = 0;
}

// "kernels/cuda/norm.cu" rather than the build tree's "../../kernels/cuda/norm.cu"
static const char *short_path(const char *file) {
    const char *k = strstr(file, "kernels/");
    return k ? k : file;
}

bool imb_cuda_ok(cudaError_t e, const char *call, const char *func, const char *file, int line) {
    if (e == cudaSuccess) return true;
    imb_cuda_record("%s failed: %s (%s) at %s:%d in %s", call, cudaGetErrorName(e), cudaGetErrorString(e),
                    short_path(file), line, func);
    return false;
}

bool imb_cublas_ok(cublasStatus_t s, const char *call, const char *func, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    imb_cuda_record("%s failed: %s (%s) at %s:%d in %s", call, cublasGetStatusName(s), cublasGetStatusString(s),
                    short_path(file), line, func);
    return false;
}

static void destroy(imb_cuda_state *s) {
    if (s->stream) cudaStreamSynchronize(s->stream);
    imb_gemm_plans_clear();
    if (s->lt) cublasLtDestroy(s->lt);
    if (s->blas) cublasDestroy(s->blas);
    if (s->blas_ws) cudaFree(s->blas_ws);
    if (s->scratch) cudaFree(s->scratch);
    if (s->stream) cudaStreamDestroy(s->stream);
    memset(s, 0, sizeof *s);
}

static int create(imb_cuda_state *s, char *err, size_t errn) {
    memset(s, 0, sizeof *s);
    cudaError_t ce;
    cublasStatus_t be;
#define TRY_RT(call)                                                                                \
    if ((ce = (call)) != cudaSuccess) {                                                            \
        snprintf(err, errn, "%s: %s (%s)", #call, cudaGetErrorName(ce), cudaGetErrorString(ce));   \
        return -1;                                                                                 \
    }
#define TRY_BLAS(call)                                                                              \
    if ((be = (call)) != CUBLAS_STATUS_SUCCESS) {                                                   \
        snprintf(err, errn, "%s: %s (%s)", #call, cublasGetStatusName(be), cublasGetStatusString(be)); \
        return -1;                                                                                 \
    }
    TRY_RT(cudaGetDevice(&s->device));
    // A blocking stream (not cudaStreamNonBlocking): work that some code still queues on the
    // legacy default stream (cudaMemcpy, a <<<>>> without a stream) is then ordered with ours.
    TRY_RT(cudaStreamCreate(&s->stream));
    TRY_RT(cudaMalloc(&s->blas_ws, IMB_BLAS_WORKSPACE));
    s->blas_ws_bytes = IMB_BLAS_WORKSPACE;
    TRY_BLAS(cublasCreate(&s->blas));
    TRY_BLAS(cublasSetStream(s->blas, s->stream));
    // Our own workspace: cuBLAS then never allocates behind our back (CUDA graph capture).
    TRY_BLAS(cublasSetWorkspace(s->blas, s->blas_ws, s->blas_ws_bytes));
    // fp32 GEMMs stay fp32 (no TF32, no BF16x9 emulation) unless a call asks for another
    // compute type (--precision tf32 does, kernels/cuda/matmul.cu); and no atomics, so GEMMs
    // are reproducible (--deterministic).
    TRY_BLAS(cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH));
    TRY_BLAS(cublasSetAtomicsMode(s->blas, CUBLAS_ATOMICS_NOT_ALLOWED));
    TRY_BLAS(cublasLtCreate(&s->lt));
    const char *sync = getenv("IMB_CUDA_SYNC");
    s->sync_each_op = sync && *sync && strcmp(sync, "0") != 0;
#undef TRY_RT
#undef TRY_BLAS
    return 0;
}

extern "C" int imb_cuda_init(char *err, size_t errn) {
    if (ready.load(std::memory_order_acquire)) return 0;
    std::lock_guard<std::mutex> g(init_lock);
    if (ready.load(std::memory_order_relaxed)) return 0;
    char e[512];
    if (create(&state, e, sizeof e)) {
        destroy(&state);
        if (err && errn) snprintf(err, errn, "CUDA backend: %s", e);
        return -1;
    }
    ready.store(true, std::memory_order_release);
    return 0;
}

extern "C" void *imb_cuda_backend_ptr(void) { return ready.load(std::memory_order_acquire) ? &state : NULL; }

extern "C" void imb_cuda_shutdown(void) {
    std::lock_guard<std::mutex> g(init_lock);
    if (!ready.load(std::memory_order_relaxed)) return;
    ready.store(false, std::memory_order_release);
    destroy(&state);
}

imb_cuda_state *imb_cuda_get(void) {
    if (ready.load(std::memory_order_acquire)) return &state;
    char e[512];
    if (imb_cuda_init(e, sizeof e)) {
        imb_cuda_record("%s", e);
        return NULL;
    }
    return &state;
}

cudaStream_t imb_cuda_stream(void) {
    imb_cuda_state *s = imb_cuda_get();
    return s ? s->stream : 0;
}

extern "C" void *imb_cuda_stream_handle(void) { return (void *)imb_cuda_stream(); }

cublasHandle_t imb_cuda_blas(void) {
    imb_cuda_state *s = imb_cuda_get();
    return s ? s->blas : NULL;
}

void *imb_cuda_scratch(size_t bytes) {
    imb_cuda_state *s = imb_cuda_get();
    if (!s) return NULL;
    if (bytes <= s->scratch_bytes && s->scratch) return s->scratch;
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s->stream, &cs) != cudaSuccess) cudaGetLastError();
    if (cs != cudaStreamCaptureStatusNone) {
        // growing waits for the stream and frees the old buffer: neither may happen in a capture
        s->scratch_refused = 1;
        imb_cuda_record("imb_cuda_scratch: would grow from %zu to %zu bytes inside a CUDA graph capture", s->scratch_bytes,
                        bytes);
        return NULL;
    }
    size_t cap = bytes > 2 * s->scratch_bytes ? bytes : 2 * s->scratch_bytes;
    cap = (cap + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    if (s->scratch) {
        // kernels queued earlier may still be reading the old buffer
        if (!IMB_CUDA_CHECK(cudaStreamSynchronize(s->stream))) return NULL;
        IMB_CUDA_CHECK(cudaFree(s->scratch));
        s->scratch = NULL;
        s->scratch_bytes = 0;
    }
    if (!IMB_CUDA_CHECK(cudaMalloc(&s->scratch, cap))) {
        s->scratch = NULL;
        return NULL;
    }
    s->scratch_bytes = cap;
    s->scratch_gen++;
    return s->scratch;
}

static int use_tf32;   // one device and one stream per process: the dispatch sets it per call

extern "C" void imb_cuda_set_tf32(int on) { use_tf32 = on != 0; }
extern "C" int imb_cuda_tf32(void) { return use_tf32; }

extern "C" unsigned long long imb_cuda_scratch_generation(void) {
    imb_cuda_state *s = imb_cuda_get();
    return s ? s->scratch_gen : 0;
}

extern "C" int imb_cuda_scratch_refused(int clear) {
    imb_cuda_state *s = imb_cuda_get();
    if (!s) return 0;
    int r = s->scratch_refused;
    if (clear) s->scratch_refused = 0;
    return r;
}

extern "C" const char *imb_cuda_poll(void) {
    if (ready.load(std::memory_order_acquire) && state.sync_each_op)
        IMB_CUDA_CHECK(cudaStreamSynchronize(state.stream));
    // an error no check saw yet: a launch outside IMB_LAUNCH, or a fault the runtime reported
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        imb_cuda_record("an earlier CUDA call or kernel failed: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
    return imb_cuda_last_error();
}
