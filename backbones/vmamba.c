/* VMamba token mixer: SS2D (VMamba v2 forward_type "v05_noz") on the shared backbone skeleton. */
#include "backbone.h"
#include "activation.h"
#include "conv.h"
#include "elementwise.h"
#include "matmul.h"
#include "norm.h"
#include "scan.h"
#include "shape.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SS2D of one block, with the names and layouts of VMamba's SS2D parameters:
 *   in_proj.weight [E, C], conv2d.weight [E, 1, 3, 3] (depthwise, no bias: ssm_conv_bias=False),
 *   x_proj_weight [K, R + 2N, E] (direction k's dt-rank, B and C rows), dt_projs_weight [K, E, R],
 *   dt_projs_bias [K, E], A_logs [K*E, N], Ds [K*E], out_norm.{weight,bias} [E], out_proj.weight [C, E],
 * with E = ssm_ratio * C, R = dt_rank (ceil(C / 16) by default), N = d_state and K = directions, one
 * parameter set per direction as VMamba's k_group. "noz": no gate branch, in_proj yields E channels.
 * The option defaults are VMamba v2's (vssm_*_0229/0230): d_state 1, ssm_ratio 2.0, dt_rank auto,
 * ssm_init v0 (Mamba's dt and S4D A; v1 is VMamba's all-normal alternative).
 * A 1-D model (the task's grid is L x 1) has a 3-tap conv1d.weight [E, 1, 3] instead of the 3x3. */
typedef struct {
    imb_tensor *in_w, *conv_w, *xproj_w, *dt_w, *dt_b, *A_logs, *Ds, *onorm_w, *onorm_b, *out_w;
    int E, N, R, K;
    int one_d, causal;
    float eps;
} vmamba_mixer;

static const char *const vmamba_presets[] = { "vmamba-nano", "vmamba-t", "vmamba-s", "vmamba-b", NULL };
static const char *const vmamba_options[] = { "d_state", "ssm_ratio", "dt_rank", "directions", "ssm_init", NULL };

/* Deviations from VMamba's VSSM, all from the shared skeleton: the task's stem (one patch
 * embedding, not VMamba's two 3x3 stride-2 convs), 2x2 linear patch merging (not a 3x3 stride-2
 * conv), the skeleton's block norms and final norm. vmamba-t here: 28.7M parameters with a patch-4
 * stem and 1000 classes (VMamba-T v2: 30M; its conv stem and 3x3 downsampling hold the rest). */
static int vmamba_preset(const char *name, imb_backbone_cfg *c) {
    static const struct { const char *name; int d0, depths[4], nstages; } t[] = {
        /* nano (ours, 0.92M with the MNIST stem and head): two stages, sized for 7x7 patches of
         * 28x28 (a 4x4 grid, then 2x2); MNIST after one epoch of the mnist protocol: 97.0%
         * (vit-nano: 94.4%) at the same step time */
        { "vmamba-nano", 80, { 2, 2, 0, 0 }, 2 },
        { "vmamba-t", 96, { 2, 2, 5, 2 }, 4 },
        { "vmamba-s", 96, { 2, 2, 15, 2 }, 4 },
        { "vmamba-b", 128, { 2, 2, 15, 2 }, 4 },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(name, t[i].name)) {
            c->nstages = t[i].nstages;
            for (int s = 0; s < t[i].nstages; s++) {
                c->dims[s] = t[i].d0 << s;
                c->depths[s] = t[i].depths[s];
                c->heads[s] = 1;   /* unused by SS2D; the skeleton's isotropic copy carries it */
            }
            c->mlp_ratio = 4.0f;
            c->norm_eps = 1e-5f;   /* nn.LayerNorm's default, as VMamba */
            c->cls_token = 0;
            c->pos_embed = 0;
            c->pos_h = c->pos_w = 56;   /* 224 / 4, VMamba's stem; tasks set their own grid */
            c->init_std = 0.02f;
            return 0;
        }
    return -1;
}

/* an option's integer value in [lo, hi], or def when unset; -1 (error recorded) otherwise */
static int opt_int(imb_ctx *ctx, const imb_backbone_cfg *cfg, const char *key, int def, int lo, int hi) {
    const char *v = imb_backbone_opt(cfg, key, NULL);
    if (!v || !strcmp(v, "auto")) return def;
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        imb_fail(ctx, "%s: option %s=%s: expected an integer in [%d, %d] or auto", cfg->preset, key, v, lo, hi);
        return -1;
    }
    return (int)x;
}

static void *vmamba_create(imb_ctx *ctx, const imb_backbone_cfg *cfg, int stage, const char *prefix) {
    int C = cfg->dims[stage];
    int N = opt_int(ctx, cfg, "d_state", 1, 1, 256);
    int R = opt_int(ctx, cfg, "dt_rank", (C + 15) / 16, 1, 65536);
    /* a task whose tokens are a sequence sizes its grid L_max x 1 */
    int one_d = cfg->pos_w == 1;
    int K = opt_int(ctx, cfg, "directions", one_d ? (cfg->causal ? 1 : 2) : 4, 1, 4);
    const char *rs = imb_backbone_opt(cfg, "ssm_ratio", "2.0");
    char *end;
    float ratio = strtof(rs, &end);
    if (N < 0 || R < 0 || K < 0) return NULL;
    if (!*rs || *end || !(ratio > 0 && ratio <= 64))
        return imb_fail(ctx, "%s: option ssm_ratio=%s: expected a number in (0, 64]", cfg->preset, rs), NULL;
    if (K == 3) return imb_fail(ctx, "%s: option directions=3: expected 1, 2 or 4 or auto", cfg->preset), NULL;
    const char *init = imb_backbone_opt(cfg, "ssm_init", "v0");
    if (strcmp(init, "v0") && strcmp(init, "v1"))
        return imb_fail(ctx, "%s: option ssm_init=%s: expected v0 or v1", cfg->preset, init), NULL;
    int v1 = !strcmp(init, "v1");
    if (cfg->causal && (!one_d || K != 1))
        return imb_fail(ctx, "%s: causal=1 needs a 1-D grid (the task's L x 1) and 1 direction (got a %dx%d grid, "
                        "%d directions)", cfg->preset, cfg->pos_h, cfg->pos_w, K), NULL;
    if (!one_d && cfg->cls_token)
        return imb_fail(ctx, "%s: cls_token=1 needs a 1-D grid: the cross-scan and the 3x3 conv take exactly the "
                        "grid's tokens", cfg->preset), NULL;
    if (one_d && K == 4)
        return imb_fail(ctx, "%s: 4 directions (cross-scan) need a 2-D grid; a 1-D grid scans 1 or 2", cfg->preset),
               NULL;
    int E = (int)(ratio * (float)C);
    if (E < 1)
        return imb_fail(ctx, "%s: ssm_ratio %g leaves no inner channels at width %d", cfg->preset, ratio, C), NULL;
    vmamba_mixer *m = calloc(1, sizeof *m);
    if (!m) { imb_fail(ctx, "vmamba: out of host memory"); return NULL; }
    *m = (vmamba_mixer){ .E = E, .N = N, .R = R, .K = K, .one_d = one_d, .causal = cfg->causal, .eps = cfg->norm_eps };
    char n[128];
#define P(field, suffix, ndim, shape, init, arg, decay) \
    snprintf(n, sizeof n, "%s.%s", prefix, suffix); \
    m->field = imb_param_new(ctx, n, ndim, shape, init, arg, decay)
    /* VMamba's _init_weights: trunc-normal linears; the stacked x_proj / dt_projs and the conv
     * keep PyTorch's defaults (uniform within 1/sqrt(fan_in); dt_projs within dt_rank^-0.5) */
    P(in_w, "in_proj.weight", 2, IMB_SHAPE(E, C), IMB_INIT_TRUNC_NORMAL, cfg->init_std, 1);
    if (one_d) {
        P(conv_w, "conv1d.weight", 3, IMB_SHAPE(E, 1, 3), IMB_INIT_UNIFORM, 1.0f / sqrtf(3.0f), 1);
    } else {
        P(conv_w, "conv2d.weight", 4, IMB_SHAPE(E, 1, 3, 3), IMB_INIT_UNIFORM, 1.0f / 3.0f, 1);
    }
    P(xproj_w, "x_proj_weight", 3, IMB_SHAPE(K, R + 2 * N, E), IMB_INIT_UNIFORM, 1.0f / sqrtf((float)E), 1);
    if (v1) {   /* VMamba's initialize="v1": standard normals (steps of order 1, no S4D spectrum) */
        P(dt_w, "dt_projs_weight", 3, IMB_SHAPE(K, E, R), IMB_INIT_NORMAL, 1.0f, 1);
        P(dt_b, "dt_projs_bias", 2, IMB_SHAPE(K, E), IMB_INIT_NORMAL, 1.0f, 0);
        P(A_logs, "A_logs", 2, IMB_SHAPE((int64_t)K * E, N), IMB_INIT_NORMAL, 1.0f, 0);
    } else {
        P(dt_w, "dt_projs_weight", 3, IMB_SHAPE(K, E, R), IMB_INIT_UNIFORM, 1.0f / sqrtf((float)R), 1);
        P(dt_b, "dt_projs_bias", 2, IMB_SHAPE(K, E), IMB_INIT_SSM_DT_BIAS, 0, 0);
        P(A_logs, "A_logs", 2, IMB_SHAPE((int64_t)K * E, N), IMB_INIT_SSM_A_LOG, 0, 0);
    }
    P(Ds, "Ds", 1, IMB_SHAPE((int64_t)K * E), IMB_INIT_ONES, 0, 0);
    P(onorm_w, "out_norm.weight", 1, IMB_SHAPE(E), IMB_INIT_ONES, 0, 0);
    P(onorm_b, "out_norm.bias", 1, IMB_SHAPE(E), IMB_INIT_ZEROS, 0, 0);
    P(out_w, "out_proj.weight", 2, IMB_SHAPE(C, E), IMB_INIT_TRUNC_NORMAL, cfg->init_std, 1);
#undef P
    return m;
}

/* x [B, L, C] with padded tokens zeroed: mask [B, L] spread over the channels by a rank-1 product */
static imb_tensor *zero_padding(imb_ctx *ctx, imb_tensor *x, imb_tensor *mask) {
    if (!x || !mask) return x;
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    imb_tensor *m = imb_matmul(ctx, imb_reshape(ctx, mask, 3, IMB_SHAPE(B, L, 1)),
                               imb_full(ctx, 2, IMB_SHAPE(1, C), 1.0f), NULL, 0, 0);
    return imb_mul(ctx, x, m);
}

/* the depthwise conv over the token grid: 3x3 "same" on a 2-D grid; on a 1-D grid a 3-tap conv,
 * causal (t-2..t) or centred (t-1..t+1: the causal conv of x with one zero appended, shifted) */
static imb_tensor *ss2d_conv(imb_ctx *ctx, const vmamba_mixer *m, imb_tensor *x, const imb_grid *g) {
    if (!x) return NULL;
    if (!m->one_d) return imb_dwconv2d(ctx, x, g->H, g->W, m->conv_w, NULL);
    if (m->causal) return imb_dwconv1d(ctx, x, m->conv_w, NULL);
    int64_t B = x->shape[0], L = x->shape[1], E = x->shape[2];
    imb_tensor *xp = imb_concat(ctx, (imb_tensor *[]){ x, imb_full(ctx, 3, IMB_SHAPE(B, 1, E), 0.0f) }, 2, 1);
    return imb_slice(ctx, imb_dwconv1d(ctx, xp, m->conv_w, NULL), 1, 1, L);
}

static imb_tensor *vmamba_forward(imb_ctx *ctx, void *state, imb_tensor *x, const imb_grid *g) {
    vmamba_mixer *m = state;
    if (!m || !x) return NULL;
    if (m->one_d && g->W != 1)
        return imb_fail(ctx, "vmamba: the model was built for a 1-D grid (the task's L x 1) but got %dx%d", g->H, g->W),
               NULL;
    const int64_t B = x->shape[0], L = x->shape[1], E = m->E, N = m->N, R = m->R, K = m->K;
    /* padded tokens must not reach real ones through the conv: zero them before the bias-free
     * in_proj (the scan's mask makes them identity steps) */
    imb_tensor *h = imb_linear(ctx, zero_padding(ctx, x, g->mask), m->in_w, NULL);
    h = imb_silu(ctx, ss2d_conv(ctx, m, h, g));   /* [B, L, E] */
    /* per-token projections in token order: x_proj is pointwise, so VMamba's projection of each
     * cross-scanned copy equals this one read in that direction's order */
    imb_tensor *xdbl = imb_linear(ctx, h, imb_reshape(ctx, m->xproj_w, 2, IMB_SHAPE(K * (R + 2 * N), E)), NULL);
    imb_tensor *parts[3];
    if (imb_split(ctx, imb_reshape(ctx, xdbl, 4, IMB_SHAPE(B, L, K, R + 2 * N)), 3, 3, IMB_SHAPE(R, N, N), parts))
        return NULL;
    /* delta of direction k: dt_projs_weight[k] [E, R] times its dt-rank rows -> [B, K*E, L] */
    imb_tensor *dts = imb_reshape(ctx, imb_permute(ctx, parts[0], (const int[]){ 2, 0, 1, 3 }), 3,
                                  IMB_SHAPE(K, B * L, R));
    imb_tensor *delta = imb_reshape(ctx, imb_matmul(ctx, dts, m->dt_w, NULL, 0, 1), 4, IMB_SHAPE(K, B, L, E));
    delta = imb_reshape(ctx, imb_permute(ctx, delta, (const int[]){ 1, 0, 3, 2 }), 3, IMB_SHAPE(B, K * E, L));
    imb_tensor *Bs = imb_permute(ctx, parts[1], (const int[]){ 0, 2, 3, 1 });   /* [B, K, N, L] */
    imb_tensor *Cs = imb_permute(ctx, parts[2], (const int[]){ 0, 2, 3, 1 });
    imb_tensor *u = imb_permute(ctx, h, (const int[]){ 0, 2, 1 });              /* [B, E, L] */
    imb_tensor *A = imb_scale(ctx, imb_exp(ctx, m->A_logs), -1.0f);
    imb_tensor *y = imb_selective_scan(ctx, u, delta, A, Bs, Cs, m->Ds,
                                       imb_reshape(ctx, m->dt_b, 1, IMB_SHAPE(K * E)), NULL, g->mask, (int)K,
                                       g->H, g->W);
    y = imb_layernorm(ctx, imb_permute(ctx, y, (const int[]){ 0, 2, 1 }), m->onorm_w, m->onorm_b, m->eps);
    return imb_linear(ctx, y, m->out_w, NULL);
}

const imb_mixer_def imb_mixer_vmamba = {
    .name = "vmamba",
    .about = "SS2D: in-proj, depthwise 3x3 conv, SiLU, 4-direction selective scan, out-norm (VMamba v2 v05_noz)",
    .param_prefix = "op",
    .preset = vmamba_preset,
    .presets = vmamba_presets,
    .options = vmamba_options,
    .create = vmamba_create,
    .forward = vmamba_forward,
};
