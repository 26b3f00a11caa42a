/* imb_ctx: device, arenas, parameter buffers, the tape, RNG seed and the sticky error state.
 *
 * Errors are sticky: an op that fails (bad shape, NULL input, wrong device) records a
 * message and returns NULL; every later op given a NULL input returns NULL without
 * overwriting the first message. A model's forward is written straight through and
 * checked once with imb_ok(ctx) / imb_error(ctx). */
#ifndef IMB_CTX_H
#define IMB_CTX_H
#include "config.h"   /* every op header includes this one and declares its CUDA kernels under IMB_HAVE_CUDA */
#include <stdint.h>
#include "arena.h"
#include "tensor.h"

struct imb_ctx;
typedef void (*imb_backward_fn)(struct imb_ctx *ctx, void *saved);

typedef struct imb_tape_entry { imb_backward_fn fn; void *saved; const char *op; } imb_tape_entry;
typedef struct imb_tape { imb_tape_entry *e; int n, cap; } imb_tape;

typedef enum {
    IMB_INIT_ZEROS, IMB_INIT_ONES, IMB_INIT_CONST, IMB_INIT_NORMAL, IMB_INIT_TRUNC_NORMAL,
    IMB_INIT_UNIFORM, IMB_INIT_IDENTITY,
    /* Mamba's SSM parameters: A_log [.., N] = log(1..N) along the last dim (S4D-real, so
     * A = -exp(A_log) = -(1..N)); dt bias = softplus^-1(dt) with dt log-uniform in
     * [0.001, 0.1], floored at 1e-4 (mamba_simple.py's dt_min, dt_max, dt_init_floor) */
    IMB_INIT_SSM_A_LOG, IMB_INIT_SSM_DT_BIAS
} imb_init;

typedef struct imb_param {
    imb_tensor *t;
    char *name;
    size_t offset;       /* in floats, into the single parameter buffer */
    imb_init init;
    float init_arg;      /* std, bound or constant */
    int decay;           /* 1: AdamW weight decay applies; 0: no-decay group */
    int frozen;          /* 1: never updated (e.g. a fixed mixing matrix in an ablation) */
} imb_param;

typedef struct imb_params {
    imb_param *p; int n, cap;
    size_t total;                  /* floats */
    float *data, *grad, *m, *v;    /* one buffer each, on the context's device */
    float *decay_mask;             /* [total] 1 where weight decay applies, 0 elsewhere */
    float *update_mask;            /* [total] 0 for frozen parameters */
    int allocated;
} imb_params;

/* Gradient readiness, for overlapping a data-parallel all-reduce with the backward: the
 * parameter gradient buffer is cut into buckets of `floats` floats; during the forward every
 * op's input check notes, per bucket, the lowest tape index of an op that reads one of its
 * parameters; during imb_backward, once every op at or after that index has been replayed,
 * the bucket's gradients are final and fn(ctx, lo, hi, user) is called with its float range
 * [lo, hi). Buckets are reported in an order that depends only on the model (the same on
 * every rank), each exactly once per backward. */
typedef void (*imb_grad_ready_fn)(struct imb_ctx *ctx, size_t lo, size_t hi, void *user);
typedef struct imb_grad_buckets {
    size_t floats;
    int n;
    int *first;          /* per bucket, this step: lowest reading tape index (INT_MAX: none) */
    int *order;          /* buckets by first reader, latest first (scratch of replay) */
    imb_grad_ready_fn fn;
    void *user;
} imb_grad_buckets;

/* GEMM precision on CUDA: fp32 (pedantic, CPU parity at 1e-5) or TF32 tensor cores (fp32
 * storage, 10-bit-mantissa products, fp32 accumulation). The CPU always computes in fp32. */
typedef enum { IMB_PREC_FP32 = 0, IMB_PREC_TF32 = 1 } imb_precision;

/* What a CUDA context is doing with the ops it is given (kernels/graph.h): launching them
 * (eager), recording them into a CUDA graph (capture), or only walking their host side to
 * check that a replay of the captured graph is valid (probe: nothing touches the device). */
typedef enum { IMB_GRAPH_EAGER = 0, IMB_GRAPH_CAPTURE = 1, IMB_GRAPH_PROBE = 2 } imb_graph_mode;

struct imb_trace;
struct imb_step_state;

typedef struct imb_ctx {
    imb_device device;
    imb_arena act;       /* activation data and activation grads (device memory), reset each step */
    imb_arena host;      /* tensor structs and tape records (host memory), reset each step */
    imb_params params;
    imb_tape tape;
    int training;        /* ops record their backward only when set */
    uint64_t seed;
    uint64_t step;       /* bumps every imb_step_begin; a stream for per-step randomness */
    int deterministic;
    double flops;        /* forward FLOPs of GEMM-like ops since the caller last zeroed it */
    imb_grad_buckets gb; /* off unless imb_grad_buckets_set was called */
    int err;
    char errmsg[1024];
    void *cuda;          /* backend state (stream, BLAS handles) when device == IMB_CUDA */
    imb_precision precision;        /* set before the first op; fp32 unless asked */
    imb_graph_mode graph_mode;      /* EAGER outside kernels/graph.c */
    struct imb_trace *trace;        /* the host walk's record while capturing or probing */
    struct imb_step_state *st;      /* the step block (kernels/step.h), made with the context */
} imb_ctx;

/* NULL on failure, with the reason in err. */
imb_ctx *imb_ctx_new(imb_device dev, uint64_t seed, char *err, size_t errn);
void imb_ctx_free(imb_ctx *ctx);

/* Sticky error: records the first failure, returns -1. */
int imb_fail(imb_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int imb_ok(const imb_ctx *ctx) { return !ctx->err; }
const char *imb_error(const imb_ctx *ctx);
void imb_error_clear(imb_ctx *ctx);

/* Start a forward pass: resets activations and the tape; training=1 records backward. */
void imb_step_begin(imb_ctx *ctx, int training);

/* Activation tensors (valid until the next imb_step_begin). with_grad=1 also allocates a
 * zeroed gradient when the context is training. Shape is copied. */
imb_tensor *imb_new(imb_ctx *ctx, imb_dtype dt, int ndim, const int64_t *shape, int with_grad);
/* Copy host data (numel elements of dt) into a new activation tensor without gradient. host
 * may be reused as soon as this returns: on CUDA the copy is queued without waiting, through
 * pinned staging (or straight from host when it lies in a buffer of imb_pinned_alloc, which
 * the caller keeps unchanged until the step's end). While a CUDA graph is captured or a
 * replay is probed (kernels/graph.h), the copy is recorded and made before the graph runs. */
imb_tensor *imb_input(imb_ctx *ctx, imb_dtype dt, int ndim, const int64_t *shape, const void *host);
/* A new f32 activation filled with value, without gradient (constants, masks). */
imb_tensor *imb_full(imb_ctx *ctx, int ndim, const int64_t *shape, float value);
/* Copy a tensor's data (or grad) to host memory; returns 0 or -1 (error recorded). On CUDA
 * this waits for the device, and also reports a data check (labels, ids) that failed on the
 * device since the last report (kernels/step.h). */
int imb_to_host(imb_ctx *ctx, const imb_tensor *t, void *host, int grad);
/* Host-arena scratch (reset each step): for op records. */
void *imb_host_alloc(imb_ctx *ctx, size_t bytes);
/* Device-arena scratch (reset each step), uninitialised. */
void *imb_scratch(imb_ctx *ctx, size_t bytes);

#define IMB_SHAPE(...) ((const int64_t[]){ __VA_ARGS__ })
#define IMB_NDIM(...) ((int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)))

/* Parameters: declare, then imb_params_alloc once, which places them in one buffer. */
imb_tensor *imb_param_new(imb_ctx *ctx, const char *name, int ndim, const int64_t *shape,
                          imb_init init, float init_arg, int decay);
int imb_params_alloc(imb_ctx *ctx);
/* Re-run every parameter's initialiser (seeded by ctx->seed and the parameter's name). */
int imb_params_init(imb_ctx *ctx);
int imb_params_zero_grad(imb_ctx *ctx);
imb_param *imb_param_find(imb_ctx *ctx, const char *name);
void imb_param_freeze(imb_ctx *ctx, imb_tensor *t);

/* Turns gradient readiness reporting on (after imb_params_alloc): buckets of `floats` floats
 * (> 0), fn called as described at imb_grad_buckets. fn = NULL turns it off. 0 or -1. */
int imb_grad_buckets_set(imb_ctx *ctx, size_t floats, imb_grad_ready_fn fn, void *user);
/* Called by the op input checks: notes that the op about to be recorded reads t. */
void imb_note_read(imb_ctx *ctx, const imb_tensor *t);

/* The tape. */
void *imb_tape_push(imb_ctx *ctx, const char *op, imb_backward_fn fn, size_t saved_bytes);
/* Seeds d(loss)=1 (loss must be a scalar with a gradient) and replays the tape backwards. */
int imb_backward(imb_ctx *ctx, imb_tensor *loss);
/* Seeds t's gradient with host values dy (numel(t) floats) and replays the tape (tests). */
int imb_backward_seed(imb_ctx *ctx, imb_tensor *t, const float *dy);
#endif
