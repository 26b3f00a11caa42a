/* The step block: what the host hands the kernels of a training step (learning rate, AdamW
 * bias corrections, the step number) and what they hand back (the loss and its terms, the
 * gradient norm and clip factor, the first failed data check), at fixed device addresses, so
 * that a step needs no host synchronisation before its end and can run as a CUDA graph
 * (kernels/graph.h). Also the data checks (labels, ids) that feed it, and pinned staging for
 * host-to-device copies that do not wait.
 *
 * A step: the host fills st->in_host and queues imb_step_upload; the step's kernels read the
 * device copy and write the output block; imb_step_fetch queues its copy to the host mirror
 * and imb_step_sync waits once, reports a failed data check as the context's error and leaves
 * the values in imb_step_result. On the CPU every part happens at once. */
#ifndef IMB_STEP_H
#define IMB_STEP_H
#include "ctx.h"

#define IMB_STEP_VALS 32
#define IMB_CHECK_NONE UINT64_MAX

typedef struct imb_step_in {
    float lr, bc1, bc2;    /* AdamW: learning rate, 1 - beta1^t and 1 - beta2^t of this update */
    float reserved;
    int64_t step;          /* the caller's step number: per-step randomness in a kernel reads it here */
} imb_step_in;

typedef struct imb_step_out {
    uint64_t bad;          /* the first failed data check, site << 32 | flat index; IMB_CHECK_NONE if none */
    double sumsq;          /* sum of squared gradients (imb_grad_clip_async) */
    float clip_scale;      /* the factor the gradients were scaled by (1: not clipped) */
    int32_t skip;          /* 1: the gradient norm is not finite, AdamW leaves everything untouched */
    float vals[IMB_STEP_VALS];   /* scalars kept by imb_step_keep (the loss and its terms); NaN if not kept */
} imb_step_out;

typedef enum { IMB_CHECK_LABEL = 0, IMB_CHECK_ID = 1 } imb_check_kind;

/* One data check of the step, kept on the host to word the error if the device flags it. */
typedef struct imb_check_site {
    const char *op;
    imb_check_kind kind;
    int64_t limit;
    const int32_t *data;   /* the checked tensor's data, read back for the bad value */
    int ndim;
    int64_t shape[IMB_MAX_DIMS];
} imb_check_site;

typedef struct imb_pinned_buf { char *p; size_t bytes; } imb_pinned_buf;

typedef struct imb_step_state {
    imb_step_in in_host;       /* the values of the next upload */
    imb_step_in *in;           /* device copy, read by kernels */
    imb_step_out *out;         /* device, written by kernels */
    imb_step_out *out_host;    /* host mirror filled by imb_step_fetch: pinned on CUDA, == out on the CPU */
    imb_check_site *sites;     /* this step's data checks in launch order (reset by imb_step_begin) */
    int nsites, capsites;
    int unreported;            /* checks queued on the device whose verdict nobody has read yet */
    char *stage;               /* pinned staging for host -> device copies, reused after each sync */
    size_t stage_cap, stage_used;
    imb_pinned_buf *pinned;    /* imb_pinned_alloc's buffers */
    int npinned, cappinned;
} imb_step_state;

/* Made and freed with the context (imb_ctx_new / imb_ctx_free). */
int imb_step_state_new(imb_ctx *ctx, char *err, size_t errn);
void imb_step_state_free(imb_ctx *ctx);

/* Resets the output block for a new step (imb_step_begin calls it): no failed check, no
 * clipping, no skip, every kept value NaN. */
void imb_step_reset(imb_ctx *ctx);
/* Queues the copy of st->in_host to the device (no wait); never inside a graph capture. */
int imb_step_upload(imb_ctx *ctx);
/* Queues the copy of the scalar t (f32, one element) into vals[slot]. */
int imb_step_keep(imb_ctx *ctx, int slot, const imb_tensor *t);
/* Queues the copy of the output block into the host mirror. */
int imb_step_fetch(imb_ctx *ctx);
/* Waits for the device, frees the staging for reuse and reports a data check that failed in
 * the fetched block as the context's error. 0, or -1 with the error recorded. */
int imb_step_sync(imb_ctx *ctx);
/* The host mirror: what the last imb_step_fetch copied (read after imb_step_sync). */
const imb_step_out *imb_step_result(const imb_ctx *ctx);

/* Every element of the i32 tensor t must lie in [0, limit); LABEL also lets negative values
 * (ignored labels) pass. The CPU checks now and fails with "<op>: label 12 at row 3 is out of
 * range for 10 classes" or "<op>: id 12 at position [1, 2] is out of range for a table of 5
 * rows". On CUDA a kernel notes the first bad element in the output block without waiting,
 * and the same error is raised at the next imb_step_sync, imb_to_host or imb_step_begin; the
 * kernels that read t must skip bad values meanwhile. 0, or -1 with the error recorded. */
int imb_check_range(imb_ctx *ctx, const char *op, imb_check_kind kind, const imb_tensor *t, int64_t limit);
/* Reads the device's verdict on the checks queued so far (waits) and reports a failure. */
int imb_check_report(imb_ctx *ctx);

/* Host memory that imb_input copies from without staging: pinned on CUDA (the copy is a
 * DMA that does not wait), ordinary on the CPU. The caller leaves its contents unchanged
 * until the device is done with the step that read it (imb_step_sync, imb_to_host). NULL
 * with the error recorded. Freed with the context, or by imb_pinned_free. */
void *imb_pinned_alloc(imb_ctx *ctx, size_t bytes);
void imb_pinned_free(imb_ctx *ctx, void *p);
/* Pinned scratch for one host -> device copy, valid until the next wait for the device.
 * NULL with the error recorded. */
void *imb_stage(imb_ctx *ctx, size_t bytes);
/* Queues the copy of bytes from host to the device address dev: straight from a pinned
 * buffer, otherwise through the staging (host may be reused at once). 0 or -1. */
int imb_copy_in(imb_ctx *ctx, void *dev, const void *host, size_t bytes);

/* Raw kernels. bad: min-updated with site << 32 | index of the first bad element. */
void imb_check_range_cpu(uint64_t *bad, const int32_t *x, int64_t n, int64_t limit, int allow_negative, uint32_t site);
void imb_step_reset_cpu(imb_step_out *o);
void imb_step_keep_cpu(float *dst, const float *src);
void imb_step_fetch_cpu(imb_step_out *host, const imb_step_out *dev);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/step.cu): device pointers (host: pinned), queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_check_range_cuda(uint64_t *bad, const int32_t *x, int64_t n, int64_t limit, int allow_negative, uint32_t site);
void imb_step_reset_cuda(imb_step_out *o);
void imb_step_keep_cuda(float *dst, const float *src);
void imb_step_fetch_cuda(imb_step_out *host, const imb_step_out *dev);
#endif
#endif
