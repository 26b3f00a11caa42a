/* Selective scan op: shape checks, dispatch (CPU or CUDA) and the backward record. */
#include "config.h"   /* before scan.h: IMB_HAVE_CUDA gates the CUDA declarations */
#include "scan.h"
#include "op.h"
#ifdef IMB_HAVE_CUDA
#include "cuda/backend.h"
#endif

typedef struct {
    imb_tensor *u, *delta, *A, *B, *C, *D, *bias, *z, *mask, *out;
    float *fws;   /* CUDA: the forward's workspace, holding the chunk-boundary states */
    imb_scan_geom g;
} scan_saved;

#define F32_OR_NULL(t) ((t) ? imb_f32(t) : NULL)

static void scan_backward(imb_ctx *ctx, void *p) {
    static const char *op = "selective_scan";
    scan_saved *s = p;
#ifdef IMB_HAVE_CUDA
    if (ctx->device == IMB_CUDA) {
        float *ws = imb_scratch(ctx, sizeof(float) * imb_scan_bwd_ws_cuda(&s->g, s->z != NULL));
        if (!ws) return;
        if (ctx->trace) imb_trace_op(ctx, (uintptr_t)"imb_selective_scan_bwd_cuda");
        if (ctx->graph_mode == IMB_GRAPH_PROBE) return;   /* a replay's host walk: nothing runs */
        imb_cuda_enter(ctx);
        if (imb_selective_scan_bwd_cuda(imb_cuda_stream_handle(), &s->g, imb_g(s->u), imb_g(s->delta), imb_g(s->A),
                                        imb_g(s->B), imb_g(s->C), imb_g(s->D), imb_g(s->bias), imb_g(s->z), ws, s->fws,
                                        imb_gradf(s->out), imb_f32(s->u), imb_f32(s->delta), imb_f32(s->A),
                                        imb_f32(s->B), imb_f32(s->C), F32_OR_NULL(s->D), F32_OR_NULL(s->bias),
                                        F32_OR_NULL(s->z), F32_OR_NULL(s->mask)))
            imb_fail(ctx, "%s backward: %s", op, imb_scan_cuda_error());
        else
            imb_device_check(ctx, op);
        return;
    }
#endif
    /* the backward's scratch is taken here, not in the forward: inference never pays for it */
    float *ws = imb_cpu_only(ctx, op) ? NULL : imb_scratch(ctx, sizeof(float) * imb_scan_bwd_ws(&s->g));
    if (!ws) return;
    IMB_RUN_CPU(ctx, op, imb_selective_scan_bwd, &s->g, imb_g(s->u), imb_g(s->delta), imb_g(s->A), imb_g(s->B),
                imb_g(s->C), imb_g(s->D), imb_g(s->bias), imb_g(s->z), ws, imb_gradf(s->out), imb_f32(s->u),
                imb_f32(s->delta), imb_f32(s->A), imb_f32(s->B), imb_f32(s->C), F32_OR_NULL(s->D),
                F32_OR_NULL(s->bias), F32_OR_NULL(s->z), F32_OR_NULL(s->mask));
}

imb_tensor *imb_selective_scan(imb_ctx *ctx, imb_tensor *u, imb_tensor *delta, imb_tensor *A, imb_tensor *B,
                               imb_tensor *C, imb_tensor *D, imb_tensor *delta_bias, imb_tensor *z,
                               imb_tensor *mask, int directions, int64_t H, int64_t W) {
    static const char *op = "selective_scan";
    if (IMB_CHECK(ctx, op, u, delta, A, B, C) || (D && IMB_CHECK(ctx, op, D)) ||
        (delta_bias && IMB_CHECK(ctx, op, delta_bias)) || (z && IMB_CHECK(ctx, op, z)) ||
        (mask && IMB_CHECK(ctx, op, mask)))
        return NULL;
    if (directions != 1 && directions != 2 && directions != 4)
        return imb_fail(ctx, "%s: directions must be 1, 2 or 4 (got %d)", op, directions), NULL;
    if (u->ndim != 3 || u->shape[1] < 1) return imb_shape_fail(ctx, op, "u must be [Bt, Dm, L]", u), NULL;
    int64_t Bt = u->shape[0], Dm = u->shape[1], L = u->shape[2];
    if (z && !imb_same_shape(z, u)) return imb_shape_fail(ctx, op, "z must have u's shape", z), NULL;
    /* K parameter sets: one shared by every direction, or one per direction */
    if (delta->ndim != 3 || delta->shape[0] != Bt || delta->shape[2] != L || delta->shape[1] % Dm ||
        (delta->shape[1] != Dm && delta->shape[1] != directions * Dm)) {
        char sh[96];
        return imb_fail(ctx, "%s: delta must be [Bt, K*Dm, L] with u's Bt, L, Dm = %lld and K = 1 or K = directions "
                        "= %d (got %s)", op, (long long)Dm, directions, imb_shape_str(delta, sh, sizeof sh)), NULL;
    }
    const int K = (int)(delta->shape[1] / Dm);
    const int64_t KD = delta->shape[1];
    if (A->ndim != 2 || A->shape[0] != KD)
        return imb_shape_fail(ctx, op, "A must be [K*Dm, N] (K from delta)", A), NULL;
    int64_t N = A->shape[1];
    if (B->ndim != 4 || B->shape[0] != Bt || B->shape[2] != N || B->shape[3] != L || B->shape[1] % K)
        return imb_shape_fail(ctx, op, "B must be [Bt, K*G, N, L] with u's Bt, L, A's N and K from delta", B), NULL;
    int64_t G = B->shape[1] / K;
    if (G < 1 || Dm % G)
        return imb_fail(ctx, "%s: %lld groups do not divide the %lld channels", op, (long long)G, (long long)Dm),
               NULL;
    if (!imb_same_shape(C, B)) return imb_shape_fail(ctx, op, "C must have B's shape", C), NULL;
    if (D && (D->ndim != 1 || D->shape[0] != KD)) return imb_shape_fail(ctx, op, "D must be [K*Dm]", D), NULL;
    if (delta_bias && (delta_bias->ndim != 1 || delta_bias->shape[0] != KD))
        return imb_shape_fail(ctx, op, "delta_bias must be [K*Dm]", delta_bias), NULL;
    if (mask && (mask->ndim != 2 || mask->shape[0] != Bt || mask->shape[1] != L))
        return imb_shape_fail(ctx, op, "mask must be [Bt, L]", mask), NULL;
    if (directions == 4 && (H < 1 || W < 1 || H * W != L))
        return imb_fail(ctx, "%s: 4 directions need L = H*W (got L %lld, H %lld, W %lld)", op, (long long)L,
                        (long long)H, (long long)W), NULL;
    if (directions != 4) H = L, W = 1;   /* unused by the 1- and 2-direction orders */
    imb_scan_geom g = { Bt, Dm, N, G, L, H, W, directions, K };
    imb_tensor *out = imb_new(ctx, IMB_F32, 3, u->shape, IMB_WANTS_GRAD(ctx, u, delta, A, B, C, D, delta_bias, z));
    if (!out) return NULL;
    float *ws = NULL;
#ifdef IMB_HAVE_CUDA
    if (ctx->device == IMB_CUDA) {
        /* the workspace outlives the forward: with a backward to come it carries the chunk states */
        ws = imb_scratch(ctx, sizeof(float) * imb_scan_fwd_ws_cuda(&g));
        if (!ws) return NULL;
        if (ctx->trace) imb_trace_op(ctx, (uintptr_t)"imb_selective_scan_fwd_cuda");
        if (ctx->graph_mode != IMB_GRAPH_PROBE) {   /* a replay's host walk launches nothing */
            imb_cuda_enter(ctx);
            if (imb_selective_scan_fwd_cuda(imb_cuda_stream_handle(), &g, imb_f32(out), ws, out->grad != NULL,
                                            imb_f32(u), imb_f32(delta), imb_f32(A), imb_f32(B), imb_f32(C),
                                            F32_OR_NULL(D), F32_OR_NULL(delta_bias), F32_OR_NULL(z), F32_OR_NULL(mask)))
                return imb_fail(ctx, "%s: %s", op, imb_scan_cuda_error()), NULL;
            if (imb_device_check(ctx, op)) return NULL;
        }
    } else
#endif
    {
        ws = imb_cpu_only(ctx, op) ? NULL : imb_scratch(ctx, sizeof(float) * imb_scan_fwd_ws(&g));
        if (!ws) return NULL;
        IMB_RUN_CPU(ctx, op, imb_selective_scan_fwd, &g, imb_f32(out), ws, imb_f32(u), imb_f32(delta), imb_f32(A),
                    imb_f32(B), imb_f32(C), F32_OR_NULL(D), F32_OR_NULL(delta_bias), F32_OR_NULL(z), F32_OR_NULL(mask));
    }
    /* per direction and state element: exp, two multiply-adds for h, one for the readout */
    ctx->flops += 7.0 * (double)(directions * Bt * Dm * N * L);
    if (out->grad) {
        scan_saved *s = imb_tape_push(ctx, op, scan_backward, sizeof *s);
        if (!s) return NULL;
        *s = (scan_saved){ u, delta, A, B, C, D, delta_bias, z, mask, out, ws, g };
    }
    return imb_ok(ctx) ? out : NULL;
}
