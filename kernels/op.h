/* Shared plumbing for op implementations: input checks, device dispatch, tape records. */
#ifndef IMB_OP_H
#define IMB_OP_H
#include "config.h"
#include "ctx.h"
#include "tensor.h"
#include "graph.h"

/* Checks that every tensor is non-NULL, lives on the context's device and (unless
 * allow_int) is fp32. Records "<op>: ..." and returns -1 on the first problem, or if the
 * context already holds an error. */
int imb_check_inputs(imb_ctx *ctx, const char *op, int allow_int, int n, const imb_tensor *const *ts);
#define IMB_CHECK(ctx, op, ...) \
    imb_check_inputs((ctx), (op), 0, (int)(sizeof((const imb_tensor *[]){ __VA_ARGS__ }) / sizeof(imb_tensor *)), \
                     (const imb_tensor *const[]){ __VA_ARGS__ })
#define IMB_CHECK_ANY(ctx, op, ...) \
    imb_check_inputs((ctx), (op), 1, (int)(sizeof((const imb_tensor *[]){ __VA_ARGS__ }) / sizeof(imb_tensor *)), \
                     (const imb_tensor *const[]){ __VA_ARGS__ })

/* 1 when the context is training and any of the inputs carries a gradient (it also notes the
 * parameters among them for gradient readiness, see imb_grad_buckets). */
int imb_any_grad(imb_ctx *ctx, int n, const imb_tensor *const *ts);
#define IMB_WANTS_GRAD(ctx, ...) \
    imb_any_grad((ctx), (int)(sizeof((const imb_tensor *[]){ __VA_ARGS__ }) / sizeof(imb_tensor *)), \
                 (const imb_tensor *const[]){ __VA_ARGS__ })

/* Shape check helper: records "<op>: <what> (got <shape>)" and returns -1. */
int imb_shape_fail(imb_ctx *ctx, const char *op, const char *what, const imb_tensor *t);

/* Device dispatch. IMB_RUN calls name##_cpu, or on a CUDA context name##_cuda followed by
 * imb_device_check: raw kernels return void, so a CUDA kernel records a failed launch or
 * cuBLAS call in the backend's sticky error and the check turns it into the context's
 * error, "<name>: <reason>". Ops whose CUDA kernel does not exist yet use IMB_RUN_CPU,
 * which fails loudly on a CUDA context. Both are statements.
 *
 * CUDA graphs (kernels/graph.h): every call is noted in the host walk's trace, and in probe
 * mode nothing runs. So every device access of an op goes through these two macros (or
 * checks ctx->graph_mode itself, as attention.c does): a replay's check would otherwise run
 * it once more (the probe's tripwire capture catches such launches and turns graphs off). */
#ifdef IMB_HAVE_CUDA
#define IMB_RUN(ctx, name, ...)                                                             \
    do {                                                                                    \
        if ((ctx)->trace) imb_trace_op((ctx), (uintptr_t)(#name));                          \
        if ((ctx)->graph_mode == IMB_GRAPH_PROBE) break;                                    \
        if ((ctx)->device == IMB_CUDA) {                                                    \
            imb_cuda_enter(ctx);                                                            \
            name##_cuda(__VA_ARGS__);                                                       \
            imb_device_check((ctx), #name);                                                 \
        } else {                                                                            \
            name##_cpu(__VA_ARGS__);                                                        \
        }                                                                                   \
    } while (0)
#else
#define IMB_RUN(ctx, name, ...)                                                             \
    do {                                                                                    \
        if ((ctx)->trace) imb_trace_op((ctx), (uintptr_t)(#name));                          \
        if ((ctx)->graph_mode != IMB_GRAPH_PROBE) name##_cpu(__VA_ARGS__);                  \
    } while (0)
#endif
int imb_cpu_only(imb_ctx *ctx, const char *op);
#define IMB_RUN_CPU(ctx, opname, name, ...)                                                 \
    do {                                                                                    \
        if ((ctx)->trace) imb_trace_op((ctx), (uintptr_t)(#name));                          \
        if ((ctx)->graph_mode != IMB_GRAPH_PROBE && !imb_cpu_only((ctx), (opname)))         \
            name##_cpu(__VA_ARGS__);                                                        \
    } while (0)
/* Before a CUDA kernel call: the context's GEMM precision becomes the backend's. */
void imb_cuda_enter(const imb_ctx *ctx);
/* On a CUDA context, moves an error the CUDA backend recorded (or, with IMB_CUDA_SYNC=1, a
 * fault found by synchronising) into ctx as "<what>: <reason>" and returns -1; otherwise
 * returns 0. Always 0 in a build without CUDA. */
int imb_device_check(imb_ctx *ctx, const char *what);

/* grad pointer or NULL: backward kernels skip inputs that need no gradient */
static inline float *imb_g(const imb_tensor *t) { return t ? (float *)t->grad : NULL; }
#endif
