/* Shared plumbing for op implementations. */
#include "op.h"
#include <stdio.h>
#ifdef IMB_HAVE_CUDA
#include "cuda/backend.h"
#endif

int imb_check_inputs(imb_ctx *ctx, const char *op, int allow_int, int n, const imb_tensor *const *ts) {
    if (!imb_ok(ctx)) return -1;
    for (int i = 0; i < n; i++) {
        const imb_tensor *t = ts[i];
        if (!t) return imb_fail(ctx, "%s: input %d is NULL", op, i);
        if (!t->data) return imb_fail(ctx, "%s: input %d (%s) has no data", op, i, t->name ? t->name : "unnamed");
        if (t->device != ctx->device)
            return imb_fail(ctx, "%s: input %d (%s) is on %s but the context is on %s", op, i,
                            t->name ? t->name : "unnamed", imb_device_name(t->device), imb_device_name(ctx->device));
        if (!allow_int && t->dtype != IMB_F32)
            return imb_fail(ctx, "%s: input %d (%s) is %s, expected f32", op, i, t->name ? t->name : "unnamed",
                            imb_dtype_name(t->dtype));
        imb_note_read(ctx, t);
    }
    return 0;
}

int imb_any_grad(imb_ctx *ctx, int n, const imb_tensor *const *ts) {
    if (!ctx->training) return 0;
    int any = 0;
    for (int i = 0; i < n; i++) {
        imb_note_read(ctx, ts[i]);
        any |= ts[i] && ts[i]->grad;
    }
    return any;
}

int imb_shape_fail(imb_ctx *ctx, const char *op, const char *what, const imb_tensor *t) {
    char b[96];
    return imb_fail(ctx, "%s: %s (got %s)", op, what, t ? imb_shape_str(t, b, sizeof b) : "NULL");
}

int imb_cpu_only(imb_ctx *ctx, const char *op) {
    if (ctx->device == IMB_CPU) return 0;
#ifdef IMB_HAVE_CUDA
    return imb_fail(ctx, "%s: no CUDA kernel for this op yet", op);
#else
    return imb_fail(ctx, "%s: this build has no CUDA backend", op);
#endif
}

void imb_cuda_enter(const imb_ctx *ctx) {
#ifdef IMB_HAVE_CUDA
    imb_cuda_set_tf32(ctx->precision == IMB_PREC_TF32);
#else
    (void)ctx;
#endif
}

int imb_device_check(imb_ctx *ctx, const char *what) {
#ifdef IMB_HAVE_CUDA
    if (ctx->device != IMB_CUDA) return 0;
    const char *why = imb_cuda_poll();
    /* a call that is not allowed while capturing invalidates the capture, sometimes without
     * failing itself: name the op that did it */
    if (!why && ctx->graph_mode == IMB_GRAPH_CAPTURE && imb_cuda_capture_broken())
        why = "not capture-safe: the CUDA graph capture broke here (a wait for the device or an allocation)";
    if (!why) return 0;
    imb_fail(ctx, "%s: %s", what, why);   /* a no-op when ctx already failed: the first error stands */
    imb_cuda_clear_error();
    return -1;
#else
    (void)ctx;
    (void)what;
    return 0;
#endif
}
