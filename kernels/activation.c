/* Activation ops and their backward records. */
#include "activation.h"
#include "op.h"

static const char *const names[] = { "gelu", "silu", "softplus", "exp" };
typedef struct { imb_tensor *x, *out; imb_act_kind kind; } act_saved;

static void act_backward(imb_ctx *ctx, void *p) {
    act_saved *s = p;
    IMB_RUN(ctx, imb_act_bwd, s->kind, imb_gradf(s->x), imb_f32(s->x), imb_gradf(s->out), imb_numel(s->x));
}

imb_tensor *imb_activation(imb_ctx *ctx, imb_tensor *x, imb_act_kind kind) {
    const char *op = names[kind];
    if (IMB_CHECK(ctx, op, x)) return NULL;
    imb_tensor *out = imb_new(ctx, IMB_F32, x->ndim, x->shape, IMB_WANTS_GRAD(ctx, x));
    if (!out) return NULL;
    IMB_RUN(ctx, imb_act_fwd, kind, imb_f32(out), imb_f32(x), imb_numel(x));
    if (out->grad) {
        act_saved *s = imb_tape_push(ctx, op, act_backward, sizeof *s);
        if (!s) return NULL;
        *s = (act_saved){ x, out, kind };
    }
    return imb_ok(ctx) ? out : NULL;
}

imb_tensor *imb_gelu(imb_ctx *ctx, imb_tensor *x) { return imb_activation(ctx, x, IMB_ACT_GELU); }
imb_tensor *imb_silu(imb_ctx *ctx, imb_tensor *x) { return imb_activation(ctx, x, IMB_ACT_SILU); }
imb_tensor *imb_softplus(imb_ctx *ctx, imb_tensor *x) { return imb_activation(ctx, x, IMB_ACT_SOFTPLUS); }
imb_tensor *imb_exp(imb_ctx *ctx, imb_tensor *x) { return imb_activation(ctx, x, IMB_ACT_EXP); }
