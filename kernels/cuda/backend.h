/* The CUDA backend's C interface: process-wide state (one device per process) and its sticky error. */
#ifndef IMB_CUDA_BACKEND_H
#define IMB_CUDA_BACKEND_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the stream, the cuBLAS and cuBLASLt handles and their workspace on the current
 * device, once per process (later calls return at once). Kernels also call it lazily, so
 * this only moves the cost (and a failure, reported here with its reason) to context
 * creation. 0, or -1 with the reason in err. */
int imb_cuda_init(char *err, size_t errn);
/* The backend state (opaque to C; for ctx->cuda), NULL before a successful init. */
void *imb_cuda_backend_ptr(void);
/* The backend stream as an opaque cudaStream_t, for code that launches its own kernels with
 * its own stream argument (starting the backend if needed; NULL, the legacy stream, if it
 * cannot start). */
void *imb_cuda_stream_handle(void);
/* Releases the handles, stream and buffers; the next use re-creates them. Only for
 * programs that want a clean teardown (leak checkers): the OS frees them at exit anyway. */
void imb_cuda_shutdown(void);

/* GEMM math for the calls that follow: 0 = fp32 (pedantic), 1 = TF32 tensor cores. The op
 * dispatch (IMB_RUN) sets it from the context before every CUDA kernel call. */
void imb_cuda_set_tf32(int on);
int imb_cuda_tf32(void);

/* The scratch buffer (imb_cuda_scratch) is reallocated when it grows; a CUDA graph captured
 * before that holds the old address. The generation counts reallocations. Growth inside a
 * stream capture is refused (it would wait for the device): the call fails with the error
 * recorded and imb_cuda_scratch_refused(1) returns 1 once (and clears the note). */
unsigned long long imb_cuda_scratch_generation(void);
int imb_cuda_scratch_refused(int clear);

/* Sticky error. The raw CUDA kernels return void like their CPU twins, so a failed launch,
 * CUDA runtime or cuBLAS call is recorded here ("<call> failed: <reason> at <file>:<line>
 * in <function>"); the first one is kept until cleared. imb_cuda_poll also picks up an
 * error the runtime holds that no check has seen yet (a fault in an earlier kernel), after
 * synchronising the stream when IMB_CUDA_SYNC=1 is set in the environment (so a fault is
 * reported by the op that caused it). Both return the message or NULL. */
const char *imb_cuda_last_error(void);
const char *imb_cuda_poll(void);
void imb_cuda_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
