/* Op-table cases: matmul/linear and elementwise. */
#include "optest.h"
#include "matmul.h"
#include "elementwise.h"
#include "resize.h"
#include "activation.h"
#include "loss.h"

static void mm_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "a", 1, 2, 5, 7); OPT_P(c, t, "b", 1, 7, 4); OPT_P(c, t, "bias", 1, 4); }
static imb_tensor *mm_fwd(imb_ctx *c, optest *t) { return imb_matmul(c, t->p[0], t->p[1], t->p[2], 0, 0); }

static void mm_tt_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "a", 1, 3, 6, 5); OPT_P(c, t, "b", 1, 4, 6); }
static imb_tensor *mm_tt_fwd(imb_ctx *c, optest *t) { return imb_matmul(c, t->p[0], t->p[1], NULL, 1, 1); }

static void bmm_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "a", 1, 3, 4, 5); OPT_P(c, t, "b", 1, 3, 6, 5); }
static imb_tensor *bmm_fwd(imb_ctx *c, optest *t) { return imb_matmul(c, t->p[0], t->p[1], NULL, 0, 1); }

static void bmm_ta_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "a", 1, 2, 5, 4); OPT_P(c, t, "b", 1, 2, 5, 3); }
static imb_tensor *bmm_ta_fwd(imb_ctx *c, optest *t) { return imb_matmul(c, t->p[0], t->p[1], NULL, 1, 0); }

static void lin_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 3, 8); OPT_P(c, t, "w", 0.5f, 6, 8); OPT_P(c, t, "b", 1, 6); }
static imb_tensor *lin_fwd(imb_ctx *c, optest *t) { return imb_linear(c, t->p[0], t->p[1], t->p[2]); }

/* linear + activation in one op (the bias in the GEMM's epilogue on CUDA) */
static imb_tensor *lin_gelu_fwd(imb_ctx *c, optest *t) { return imb_linear_gelu(c, t->p[0], t->p[1], t->p[2]); }
static imb_tensor *lin_silu_fwd(imb_ctx *c, optest *t) { return imb_linear_act(c, t->p[0], t->p[1], t->p[2], IMB_ACT_SILU); }
static void lin_nobias_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 5, 8); OPT_P(c, t, "w", 0.5f, 7, 8); }
static imb_tensor *lin_gelu_nobias_fwd(imb_ctx *c, optest *t) { return imb_linear_gelu(c, t->p[0], t->p[1], NULL); }

/* a transposed 2-D a with a bias: one GEMM, so the fused bias and bias-gradient paths */
static void mm_ta_bias_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "a", 1, 6, 5); OPT_P(c, t, "b", 1, 4, 6); OPT_P(c, t, "bias", 1, 4); }
static imb_tensor *mm_ta_bias_fwd(imb_ctx *c, optest *t) { return imb_matmul(c, t->p[0], t->p[1], t->p[2], 1, 1); }

static void bin_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "a", 1, 3, 4, 5); OPT_P(c, t, "b", 1, 4, 5); }
static imb_tensor *add_fwd(imb_ctx *c, optest *t) { return imb_add(c, t->p[0], t->p[1]); }
static imb_tensor *mul_fwd(imb_ctx *c, optest *t) { return imb_mul(c, t->p[0], t->p[1]); }

static void scale_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "a", 1, 5, 7); }
static imb_tensor *scale_fwd(imb_ctx *c, optest *t) { return imb_scale(c, t->p[0], -1.7f); }

static void res_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 3, 6); OPT_P(c, t, "y", 1, 2, 3, 6); OPT_P(c, t, "gamma", 1, 6); }
static imb_tensor *res_fwd(imb_ctx *c, optest *t) { return imb_residual(c, t->p[0], t->p[1], t->p[2]); }

static void rs_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 3 * 4, 5); }
static imb_tensor *rs_up_fwd(imb_ctx *c, optest *t) { return imb_resize_tokens(c, t->p[0], 3, 4, 5, 7); }
static imb_tensor *rs_down_fwd(imb_ctx *c, optest *t) { return imb_resize_tokens(c, t->p[0], 3, 4, 2, 3); }

static void act_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 2, 4, 9); }
static imb_tensor *gelu_fwd(imb_ctx *c, optest *t) { return imb_gelu(c, t->p[0]); }
static imb_tensor *silu_fwd(imb_ctx *c, optest *t) { return imb_silu(c, t->p[0]); }
static imb_tensor *softplus_fwd(imb_ctx *c, optest *t) { return imb_softplus(c, t->p[0]); }
/* std 1: e^x of a std-2 input reaches e^8, too steep for float finite differences */
static void exp_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 4, 9); }
static imb_tensor *exp_fwd(imb_ctx *c, optest *t) { return imb_exp(c, t->p[0]); }

static void xent_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "logits", 2, 6, 5); }
static imb_tensor *xent_fwd(imb_ctx *c, optest *t) {
    static const int32_t lab[6] = { 0, 4, -1, 2, 2, 1 };   /* row 2 ignored */
    return imb_cross_entropy(c, t->p[0], imb_input(c, IMB_I32, 1, IMB_SHAPE(6), lab), 0.1f);
}

const op_case optest_core[] = {
    { "matmul", mm_setup, mm_fwd, 0, 0 },
    { "matmul_transposed", mm_tt_setup, mm_tt_fwd, 0, 0 },
    { "matmul_batched", bmm_setup, bmm_fwd, 0, 0 },
    { "matmul_batched_ta", bmm_ta_setup, bmm_ta_fwd, 0, 0 },
    { "linear", lin_setup, lin_fwd, 0, 0 },
    { "linear_gelu", lin_setup, lin_gelu_fwd, 0, 0 },
    { "linear_silu", lin_setup, lin_silu_fwd, 0, 0 },
    { "linear_gelu_nobias", lin_nobias_setup, lin_gelu_nobias_fwd, 0, 0 },
    { "matmul_ta_bias", mm_ta_bias_setup, mm_ta_bias_fwd, 0, 0 },
    { "add", bin_setup, add_fwd, 0, 0 },
    { "mul", bin_setup, mul_fwd, 0, 0 },
    { "scale", scale_setup, scale_fwd, 0, 0 },
    { "residual", res_setup, res_fwd, 0, 0 },
    { "gelu", act_setup, gelu_fwd, 0, 0 },
    { "silu", act_setup, silu_fwd, 0, 0 },
    { "softplus", act_setup, softplus_fwd, 0, 0 },
    { "exp", exp_setup, exp_fwd, 0, 0 },
    { "cross_entropy_smoothed", xent_setup, xent_fwd, 0, 0 },
    { "resize_tokens_up", rs_setup, rs_up_fwd, 0, 0 },
    { "resize_tokens_down", rs_setup, rs_down_fwd, 0, 0 },
    { 0 },
};
