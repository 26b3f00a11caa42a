/* InfoMamba token mixer (DESIGN.md section 4): a concept-bottleneck linear filtering layer and a
 * selective SSM stream fused by IMF, plus its auxiliary losses (InfoNCE against class prototypes,
 * cross-covariance redundancy, InfoMax hash) and the paper's Table 5 ablations as options.
 *
 * Decisions where the spec is silent (also in the issue report):
 * - Linear layers have no bias (as Mamba's in/out projections), except dt_proj (dt bias).
 * - Scan parameters are shared by the directions (one set, K = 1 in kernels/scan.h); dt rank
 *   R = ceil(D / 16) (Mamba's "auto"). 1-D grids (W = 1) scan 1 direction when cfg->causal,
 *   else 2; 2-D grids use the preset's directions (option directions). The concept bottleneck
 *   is global in both cases: "causal" picks the scan, it does not make the block autoregressive.
 * - Conv: causal k=4 depthwise for 1-D tasks (task grid pos_w <= 1), 3x3 depthwise for images.
 * - Init: concept centres C and bucket embeddings Eb ~ N(0, 1) (so nearest-bucket ownership is
 *   spread); Eb is frozen (the spec gives it no gradient, so a trainable Eb would only decay);
 *   M = I; gamma, Wr, Wf = 1, so the fused block starts as (s + g) silu(z) with the IMF injection on.
 * - Aggregation eps = 1e-3: small against a concept's mass, large enough that a concept holding
 *   a sliver of one token does not get a 1/eps-sized gradient.
 * - Auxiliary losses: the hash loss averages every block's InfoMax term (each block owns a hash
 *   head, which only this loss trains); InfoNCE and redundancy use the last block of every
 *   stage (each stage's most processed streams, one per resolution, without paying for every
 *   block), each stage with its own pair of linear projection heads into a shared 128-d space,
 *   both streams against one set of class prototypes P; terms are means over stages/streams, so
 *   their scale does not grow with the depth. Prototype rows are L2-normalised like the streams
 *   (cosine logits / tau_nce). H(mean p) takes the mean over every unpadded token of the batch.
 * - Ablations drop the parameters they make dead (ssm=off: no scan, conv, x/dt projections and
 *   only the z half of in_proj; global=off: no concept layer, Wg, gamma, Wf; assign=static: no
 *   Wq, C, hash head, Eb; imf=off: no gamma, Wr, Wf and x_proj reads u only; mix=off keeps M
 *   frozen at I, so a checkpoint has the same names). A loss whose weight is 0 is neither built
 *   nor logged, and heads/prototypes exist only when a loss uses them. */
#include "backbone.h"
#include "activation.h"
#include "concept.h"
#include "conv.h"
#include "elementwise.h"
#include "embedding.h"
#include "loss.h"
#include "matmul.h"
#include "norm.h"
#include "resize.h"
#include "scan.h"
#include "shape.h"
#include "softmax.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IM_PROJ 128      /* projection space of the auxiliary heads */
#define IM_AGG_EPS 1e-3f

typedef struct im_opts {
    int imf, ssm, global, assign_static, mix;
    int K, Bk, kmin, kmax, N, dirs;
    float tau, tau_nce, lambda_mi, lambda_red, lambda_hash;
} im_opts;

typedef struct im_mixer {
    im_opts o;
    int D, E, R, conv1d, causal, stage, static_h, static_w;
    /* concept layer */
    imb_tensor *q_w, *centres, *hash_w, *bucket_e, *v_w, *mix, *z_w, *static_p, *g_w;
    /* recurrent stream and fusion */
    imb_tensor *in_w, *conv_w, *conv_b, *x_w, *dt_w, *dt_b, *A_log, *Dskip, *gamma, *fuse_r, *fuse_f, *out_w;
    /* the last forward's tensors for the auxiliary losses (activation arena: valid for that step) */
    uint64_t step;
    imb_tensor *g, *s, *hash_p, *mask;
} im_mixer;

typedef struct im_extra {
    im_opts o;
    int nstages, nclasses, proj;
    imb_tensor *head_gw[IMB_MAX_STAGES], *head_gb[IMB_MAX_STAGES], *head_sw[IMB_MAX_STAGES], *head_sb[IMB_MAX_STAGES];
    imb_tensor *protos;
} im_extra;

/* ---- presets and options ---- */

static const char *const im_presets[] = { "infomamba-nano", "infomamba-t", "infomamba-s", "infomamba-b", NULL };
static const char *const im_options[] = { "imf", "ssm", "global", "mixer", "assign", "mix", "lambda_mi", "lambda_red",
                                          "lambda_hash", "K", "buckets", "kmin", "kmax", "tau", "tau_nce",
                                          "d_state", "directions", NULL };

/* per preset: layout and the mixer defaults the options override */
static const struct im_preset {
    const char *name;
    int nstages, dims[4], depths[4];
    float mlp_ratio;
    int K, Bk, kmin, kmax, N, dirs;
} im_table[] = {
    /* nano: sized for CPU runs (MNIST's 4x4 token grid): the CPU scan dominates its step, so a
     * narrow 2-state SSM; 0.47M parameters */
    { "infomamba-nano", 1, { 64 }, { 5 }, 4.0f, 32, 4, 2, 8, 2, 2 },
    /* t/s/b: VMamba-T/S/B's layouts; mlp_ratio 1 and a 4-state, 2-direction scan bring the
     * heavier mixer (concept layer, [u; g] projections, E = 2D) to their parameters and FLOPs
     * (harness bench --res 224 --patch 4: +7/+6/+5% parameters, +1/+1/-0% FLOPs, aux heads included) */
    { "infomamba-t", 4, { 96, 192, 384, 768 }, { 2, 2, 5, 2 }, 1.0f, 64, 8, 2, 8, 4, 2 },
    { "infomamba-s", 4, { 96, 192, 384, 768 }, { 2, 2, 15, 2 }, 1.0f, 64, 8, 2, 8, 4, 2 },
    { "infomamba-b", 4, { 128, 256, 512, 1024 }, { 2, 2, 15, 2 }, 1.0f, 64, 8, 2, 8, 4, 2 },
};

static const struct im_preset *im_find(const char *name) {
    for (size_t i = 0; i < sizeof im_table / sizeof *im_table; i++)
        if (!strcmp(name, im_table[i].name)) return &im_table[i];
    return NULL;
}

static int im_preset(const char *name, imb_backbone_cfg *c) {
    const struct im_preset *p = im_find(name);
    if (!p) return -1;
    c->nstages = p->nstages;
    for (int s = 0; s < p->nstages; s++) {
        c->dims[s] = p->dims[s];
        c->depths[s] = p->depths[s];
        c->heads[s] = 1;   /* unused by this mixer */
    }
    c->mlp_ratio = p->mlp_ratio;
    c->norm_eps = 1e-6f;
    c->cls_token = 0;
    c->pos_embed = 0;   /* the conv and the scan see positions, as in Mamba and VMamba */
    c->init_std = 0.02f;
    return 0;
}

/* a two-way option: on_word (or 1) -> 1, off_word (or 0) -> 0 */
static int opt_flag(imb_ctx *ctx, const imb_backbone_cfg *cfg, const char *key, const char *on_word,
                    const char *off_word, int *out) {
    const char *v = imb_backbone_opt(cfg, key, NULL);
    if (!v) return 0;
    if (!strcmp(v, on_word) || !strcmp(v, "1")) { *out = 1; return 0; }
    if (!strcmp(v, off_word) || !strcmp(v, "0")) { *out = 0; return 0; }
    return imb_fail(ctx, "%s: option %s=%s: expected %s or %s", cfg->preset, key, v, on_word, off_word);
}

static int opt_int(imb_ctx *ctx, const imb_backbone_cfg *cfg, const char *key, int lo, int hi, int *out) {
    const char *v = imb_backbone_opt(cfg, key, NULL);
    if (!v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return imb_fail(ctx, "%s: option %s=%s: expected an integer in [%d, %d]", cfg->preset, key, v, lo, hi);
    *out = (int)x;
    return 0;
}

static int opt_float(imb_ctx *ctx, const imb_backbone_cfg *cfg, const char *key, float lo, int lo_open, float *out) {
    const char *v = imb_backbone_opt(cfg, key, NULL);
    if (!v) return 0;
    char *end;
    float x = strtof(v, &end);
    if (!*v || *end || !isfinite(x) || x < lo || (lo_open && x == lo))
        return imb_fail(ctx, "%s: option %s=%s: expected a number %s %g", cfg->preset, key, v, lo_open ? ">" : ">=",
                        lo);
    *out = x;
    return 0;
}

/* the preset's defaults with the options applied and checked */
static int im_parse(imb_ctx *ctx, const imb_backbone_cfg *cfg, im_opts *o) {
    const struct im_preset *p = im_find(cfg->preset);
    if (!p) return imb_fail(ctx, "infomamba: unknown preset '%s'", cfg->preset);
    *o = (im_opts){ 1, 1, 1, 0, 1, p->K, p->Bk, p->kmin, p->kmax, p->N, p->dirs, 0.5f, 0.1f, 0.1f, 0.01f, 0.01f };
    int mixer = 1, dynamic = 1;
    if (opt_flag(ctx, cfg, "imf", "on", "off", &o->imf) || opt_flag(ctx, cfg, "ssm", "on", "off", &o->ssm) ||
        opt_flag(ctx, cfg, "global", "on", "off", &o->global) || opt_flag(ctx, cfg, "mixer", "on", "off", &mixer) ||
        opt_flag(ctx, cfg, "assign", "dynamic", "static", &dynamic) || opt_flag(ctx, cfg, "mix", "on", "off", &o->mix) ||
        opt_float(ctx, cfg, "lambda_mi", 0, 0, &o->lambda_mi) || opt_float(ctx, cfg, "lambda_red", 0, 0, &o->lambda_red) ||
        opt_float(ctx, cfg, "lambda_hash", 0, 0, &o->lambda_hash) || opt_int(ctx, cfg, "K", 1, 4096, &o->K) ||
        opt_int(ctx, cfg, "buckets", 1, 4096, &o->Bk) || opt_int(ctx, cfg, "kmin", 1, 64, &o->kmin) ||
        opt_int(ctx, cfg, "kmax", 1, 64, &o->kmax) || opt_float(ctx, cfg, "tau", 0, 1, &o->tau) ||
        opt_float(ctx, cfg, "tau_nce", 0, 1, &o->tau_nce) || opt_int(ctx, cfg, "d_state", 1, 256, &o->N) ||
        opt_int(ctx, cfg, "directions", 1, 4, &o->dirs))
        return -1;
    if (o->dirs == 3) return imb_fail(ctx, "%s: option directions=3: expected 1, 2 or 4", cfg->preset);
    if (o->kmin > o->kmax) return imb_fail(ctx, "%s: kmin %d > kmax %d", cfg->preset, o->kmin, o->kmax);
    if (o->kmin > o->K) return imb_fail(ctx, "%s: kmin %d > K %d concepts", cfg->preset, o->kmin, o->K);
    o->assign_static = !dynamic;
    if (!mixer) o->ssm = o->global = 0;   /* both paths off */
    return 0;
}

/* ---- parameters ---- */

static imb_tensor *P(imb_ctx *ctx, const char *prefix, const char *name, int ndim, const int64_t *shape, imb_init init,
                     float arg, int decay) {
    char n[160];
    snprintf(n, sizeof n, "%s.%s", prefix, name);
    return imb_param_new(ctx, n, ndim, shape, init, arg, decay);
}

static void *im_create(imb_ctx *ctx, const imb_backbone_cfg *cfg, int stage, const char *prefix) {
    im_opts o;
    if (im_parse(ctx, cfg, &o)) return NULL;
    im_mixer *m = calloc(1, sizeof *m);
    if (!m) { imb_fail(ctx, "infomamba: out of host memory"); return NULL; }
    int64_t D = cfg->dims[stage], E = 2 * D, K = o.K, Bk = o.Bk, N = o.N, R = (D + 15) / 16;
    float sd = cfg->init_std;
    m->o = o;
    m->D = (int)D; m->E = (int)E; m->R = (int)R; m->stage = stage;
    m->conv1d = cfg->pos_w <= 1;
    m->causal = cfg->causal;
    if (o.global) {
        if (o.assign_static) {
            /* one row per token of this stage's grid (the task's grid, halved per stage) */
            m->static_h = cfg->pos_h;
            m->static_w = cfg->pos_w;
            for (int k = 0; k < stage; k++) {   /* 2x2 merging, odd sides padded */
                m->static_h = (m->static_h + 1) / 2;
                m->static_w = (m->static_w + 1) / 2;
            }
            if (m->static_h < 1 || m->static_w < 1) {
                imb_fail(ctx, "%s: assign=static needs the task's token grid (got %dx%d at stage %d)", cfg->preset,
                         m->static_h, m->static_w, stage);
                free(m);
                return NULL;
            }
            m->static_p = P(ctx, prefix, "static_assign", 2, IMB_SHAPE((int64_t)m->static_h * m->static_w, K),
                            IMB_INIT_NORMAL, 1.0f, 0);
        } else {
            m->q_w = P(ctx, prefix, "q_proj.weight", 2, IMB_SHAPE(D, D), IMB_INIT_TRUNC_NORMAL, sd, 1);
            m->centres = P(ctx, prefix, "centres", 2, IMB_SHAPE(K, D), IMB_INIT_NORMAL, 1.0f, 0);
            m->hash_w = P(ctx, prefix, "hash.weight", 2, IMB_SHAPE(Bk, D), IMB_INIT_TRUNC_NORMAL, sd, 1);
            m->bucket_e = P(ctx, prefix, "bucket_embed", 2, IMB_SHAPE(Bk, D), IMB_INIT_NORMAL, 1.0f, 0);
            imb_param_freeze(ctx, m->bucket_e);
        }
        m->v_w = P(ctx, prefix, "v_proj.weight", 2, IMB_SHAPE(D, D), IMB_INIT_TRUNC_NORMAL, sd, 1);
        m->mix = P(ctx, prefix, "mix", 2, IMB_SHAPE(K, K), IMB_INIT_IDENTITY, 0, 0);
        if (!o.mix) imb_param_freeze(ctx, m->mix);
        m->z_w = P(ctx, prefix, "z_proj.weight", 2, IMB_SHAPE(D, D), IMB_INIT_TRUNC_NORMAL, sd, 1);
        m->g_w = P(ctx, prefix, "g_proj.weight", 2, IMB_SHAPE(E, D), IMB_INIT_TRUNC_NORMAL, sd, 1);
    }
    if (o.ssm || o.global) {
        /* [u, z] = xn Win; without the scan only the gate z is needed */
        m->in_w = P(ctx, prefix, "in_proj.weight", 2, IMB_SHAPE(o.ssm ? 2 * E : E, D), IMB_INIT_TRUNC_NORMAL, sd, 1);
        m->out_w = P(ctx, prefix, "out_proj.weight", 2, IMB_SHAPE(D, E), IMB_INIT_TRUNC_NORMAL, sd, 1);
    }
    if (o.ssm) {
        int inject = o.imf && o.global;
        if (m->conv1d)
            m->conv_w = P(ctx, prefix, "conv.weight", 3, IMB_SHAPE(E, 1, 4), IMB_INIT_UNIFORM, 0.5f, 1);
        else
            m->conv_w = P(ctx, prefix, "conv.weight", 4, IMB_SHAPE(E, 1, 3, 3), IMB_INIT_UNIFORM, 1.0f / 3.0f, 1);
        m->conv_b = P(ctx, prefix, "conv.bias", 1, IMB_SHAPE(E), IMB_INIT_ZEROS, 0, 0);
        int64_t xin = inject ? 2 * E : E;
        m->x_w = P(ctx, prefix, "x_proj.weight", 2, IMB_SHAPE(R + 2 * N, xin), IMB_INIT_UNIFORM,
                   1.0f / sqrtf((float)xin), 1);
        m->dt_w = P(ctx, prefix, "dt_proj.weight", 2, IMB_SHAPE(E, R), IMB_INIT_UNIFORM, 1.0f / sqrtf((float)R), 1);
        m->dt_b = P(ctx, prefix, "dt_proj.bias", 1, IMB_SHAPE(E), IMB_INIT_SSM_DT_BIAS, 0, 0);
        m->A_log = P(ctx, prefix, "A_log", 2, IMB_SHAPE(E, N), IMB_INIT_SSM_A_LOG, 0, 0);
        m->Dskip = P(ctx, prefix, "D", 1, IMB_SHAPE(E), IMB_INIT_ONES, 0, 0);
        if (inject) m->gamma = P(ctx, prefix, "gamma", 1, IMB_SHAPE(E), IMB_INIT_ONES, 0, 0);
        if (o.imf) m->fuse_r = P(ctx, prefix, "fuse_r", 1, IMB_SHAPE(E), IMB_INIT_ONES, 0, 0);
    }
    if (o.global && o.imf) m->fuse_f = P(ctx, prefix, "fuse_f", 1, IMB_SHAPE(E), IMB_INIT_ONES, 0, 0);
    if (!imb_ok(ctx)) { free(m); return NULL; }
    return m;
}

/* ---- forward ---- */

/* Z' = (M Z) Wz^T for Z [B, K, D], as two products with a transposed left operand (no permutes) */
static imb_tensor *concept_mix(imb_ctx *ctx, const im_mixer *m, imb_tensor *Z) {
    if (!m->o.mix) return imb_linear(ctx, Z, m->z_w, NULL);   /* M = I */
    return imb_matmul(ctx, imb_matmul(ctx, Z, m->mix, NULL, 1, 1), m->z_w, NULL, 1, 1);   /* via (M Z)^T [B, D, K] */
}

/* G = A Z' with the learned, input-independent assignment softmax(P) of every token (Static-P) */
static imb_tensor *static_global(imb_ctx *ctx, const im_mixer *m, imb_tensor *xv, const imb_grid *g) {
    int64_t B = xv->shape[0], L = xv->shape[1], K = m->o.K;
    imb_tensor *p = m->static_p;
    if (g->H != m->static_h || g->W != m->static_w) {
        if ((int64_t)g->H * g->W != L) return imb_fail(ctx, "infomamba: grid does not match the tokens"), NULL;
        p = imb_reshape(ctx, imb_resize_tokens(ctx, imb_reshape(ctx, p, 3, IMB_SHAPE(1, -1, K)), m->static_h,
                                               m->static_w, g->H, g->W), 2, IMB_SHAPE(L, K));
    }
    imb_tensor *A = imb_add(ctx, imb_full(ctx, 3, IMB_SHAPE(B, L, K), 0.0f), imb_softmax(ctx, p, NULL));
    imb_tensor *Z = imb_concept_aggregate(ctx, NULL, A, xv, g->mask, (int)K, IM_AGG_EPS);
    return imb_concept_scatter(ctx, NULL, A, concept_mix(ctx, m, Z), g->mask);
}

/* steps 1-5 of the spec: the concept bottleneck; keeps the hash probabilities for L_hash */
static imb_tensor *dynamic_global(imb_ctx *ctx, im_mixer *m, imb_tensor *xn, imb_tensor *xv, const imb_grid *g) {
    const im_opts *o = &m->o;
    imb_tensor *q = imb_linear(ctx, xn, m->q_w, NULL);
    imb_tensor *hl = imb_linear(ctx, xn, m->hash_w, NULL);
    m->hash_p = imb_softmax(ctx, hl, NULL);
    imb_tensor *cand = imb_concept_buckets(ctx, m->centres, m->bucket_e, o->kmin);
    imb_tensor *idx;
    float scale = 1.0f / (o->tau * sqrtf((float)m->D));
    imb_tensor *A = imb_concept_assign(ctx, q, m->centres, hl, cand, g->mask, o->kmin, o->kmax, scale, &idx);
    imb_tensor *Z = imb_concept_aggregate(ctx, idx, A, xv, g->mask, o->K, IM_AGG_EPS);
    return imb_concept_scatter(ctx, idx, A, concept_mix(ctx, m, Z), g->mask);
}

/* [B, L, C] <-> [B, C, L] (the scan's channel-major layout) */
static imb_tensor *swap12(imb_ctx *ctx, imb_tensor *x) { return imb_permute(ctx, x, (const int[]){ 0, 2, 1 }); }

/* steps 6-8: the selective scan with the global context g (NULL: none) in delta, B, C and the input */
static imb_tensor *ssm_stream(imb_ctx *ctx, const im_mixer *m, imb_tensor *u, imb_tensor *g, const imb_grid *grid) {
    int64_t B = u->shape[0], L = u->shape[1], N = m->o.N, R = m->R;
    u = m->conv1d ? imb_dwconv1d(ctx, u, m->conv_w, m->conv_b)
                  : imb_dwconv2d(ctx, u, grid->H, grid->W, m->conv_w, m->conv_b);
    u = imb_silu(ctx, u);
    int inject = g && m->gamma;
    imb_tensor *xin = inject ? imb_concat(ctx, (imb_tensor *[]){ u, g }, 2, 2) : u;
    imb_tensor *dbl = imb_linear(ctx, xin, m->x_w, NULL), *parts[3];
    if (imb_split(ctx, dbl, 2, 3, IMB_SHAPE(R, N, N), parts)) return NULL;
    imb_tensor *delta = imb_linear(ctx, parts[0], m->dt_w, NULL);
    if (inject) u = imb_residual(ctx, u, g, m->gamma);   /* u + gamma * g */
    imb_tensor *Bm = imb_reshape(ctx, swap12(ctx, parts[1]), 4, IMB_SHAPE(B, 1, N, L));
    imb_tensor *Cm = imb_reshape(ctx, swap12(ctx, parts[2]), 4, IMB_SHAPE(B, 1, N, L));
    imb_tensor *A = imb_scale(ctx, imb_exp(ctx, m->A_log), -1.0f);
    int dirs = grid->W == 1 ? (m->causal ? 1 : 2) : m->o.dirs;
    imb_tensor *s = imb_selective_scan(ctx, swap12(ctx, u), swap12(ctx, delta), A, Bm, Cm, m->Dskip, m->dt_b, NULL,
                                       grid->mask, dirs, grid->H, grid->W);
    return swap12(ctx, s);
}

static imb_tensor *im_forward(imb_ctx *ctx, void *state, imb_tensor *xn, const imb_grid *grid) {
    im_mixer *m = state;
    if (!m || !xn || !imb_ok(ctx)) return NULL;
    const im_opts *o = &m->o;
    m->step = ctx->step;
    m->g = m->s = m->hash_p = NULL;
    m->mask = grid->mask;
    if (!o->ssm && !o->global)   /* mixer=off: the block is x + mlp(norm(x)) */
        return imb_full(ctx, 3, xn->shape, 0.0f);
    int64_t E = m->E;
    imb_tensor *uz = imb_linear(ctx, xn, m->in_w, NULL), *u = NULL, *z = uz, *parts[2];
    if (o->ssm) {
        if (imb_split(ctx, uz, 2, 2, IMB_SHAPE(E, E), parts)) return NULL;
        u = parts[0];
        z = parts[1];
    }
    imb_tensor *g = NULL;
    if (o->global) {
        imb_tensor *xv = imb_linear(ctx, xn, m->v_w, NULL);
        imb_tensor *G = o->assign_static ? static_global(ctx, m, xv, grid) : dynamic_global(ctx, m, xn, xv, grid);
        g = imb_linear(ctx, G, m->g_w, NULL);
    }
    imb_tensor *s = o->ssm ? ssm_stream(ctx, m, u, o->imf ? g : NULL, grid) : NULL;
    m->g = g;
    m->s = s;
    /* y = (Wr s + Wf g) silu(z); without IMF the plain sum s + g */
    imb_tensor *ys = s && m->fuse_r ? imb_mul(ctx, s, m->fuse_r) : s, *y;
    if (ys && g) y = imb_residual(ctx, ys, g, m->fuse_f);
    else if (ys) y = ys;
    else y = m->fuse_f ? imb_mul(ctx, g, m->fuse_f) : g;
    y = imb_mul(ctx, y, imb_silu(ctx, z));
    return imb_linear(ctx, y, m->out_w, NULL);
}

/* ---- auxiliary losses ---- */

static void *im_create_extra(imb_ctx *ctx, const imb_backbone_cfg *cfg) {
    im_extra *x = calloc(1, sizeof *x);
    if (!x) { imb_fail(ctx, "infomamba: out of host memory"); return NULL; }
    if (im_parse(ctx, cfg, &x->o)) { free(x); return NULL; }
    x->nstages = cfg->nstages;
    x->nclasses = cfg->nclasses;
    x->proj = IM_PROJ;
    const im_opts *o = &x->o;
    int nce = o->lambda_mi > 0 && cfg->nclasses > 1 && (o->ssm || o->global);
    int red = o->lambda_red > 0 && o->ssm && o->global;
    for (int s = 0; s < cfg->nstages && (nce || red); s++) {
        int64_t E = 2 * (int64_t)cfg->dims[s];
        char pre[64];
        snprintf(pre, sizeof pre, "infomamba.stages.%d", s);
        if (o->global) {
            x->head_gw[s] = P(ctx, pre, "proj_g.weight", 2, IMB_SHAPE(IM_PROJ, E), IMB_INIT_TRUNC_NORMAL, cfg->init_std, 1);
            x->head_gb[s] = P(ctx, pre, "proj_g.bias", 1, IMB_SHAPE(IM_PROJ), IMB_INIT_ZEROS, 0, 0);
        }
        if (o->ssm) {
            x->head_sw[s] = P(ctx, pre, "proj_s.weight", 2, IMB_SHAPE(IM_PROJ, E), IMB_INIT_TRUNC_NORMAL, cfg->init_std, 1);
            x->head_sb[s] = P(ctx, pre, "proj_s.bias", 1, IMB_SHAPE(IM_PROJ), IMB_INIT_ZEROS, 0, 0);
        }
    }
    if (nce)
        x->protos = imb_param_new(ctx, "infomamba.prototypes", 2, IMB_SHAPE(cfg->nclasses, IM_PROJ), IMB_INIT_NORMAL,
                                  1.0f, 0);
    if (!imb_ok(ctx)) { free(x); return NULL; }
    return x;
}

/* rows scaled to unit L2 norm: rmsnorm gives norm sqrt(n) */
static imb_tensor *l2norm(imb_ctx *ctx, imb_tensor *x) {
    return imb_scale(ctx, imb_rmsnorm(ctx, x, NULL, 1e-12f), 1.0f / sqrtf((float)x->shape[x->ndim - 1]));
}

/* the mean of a [B, L] or [B, L, C] tensor over its unpadded tokens -> [1, C] (C = 1 for [B, L]) */
static imb_tensor *token_mean(imb_ctx *ctx, imb_tensor *x, imb_tensor *mask) {
    int64_t n = x->shape[0] * x->shape[1], C = x->ndim == 3 ? x->shape[2] : 1;
    imb_tensor *mf = mask ? imb_reshape(ctx, mask, 2, IMB_SHAPE(1, n)) : NULL;
    return imb_mean_pool(ctx, imb_reshape(ctx, x, 3, IMB_SHAPE(1, n, C)), mf);
}

/* L_hash of one block: mean_i H(p_i) - H(mean_i p_i) = -(H(mean p) - mean H(p)) */
static imb_tensor *hash_term(imb_ctx *ctx, const im_mixer *m) {
    imb_tensor *hi = token_mean(ctx, imb_entropy(ctx, m->hash_p), m->mask);
    imb_tensor *hm = imb_entropy(ctx, token_mean(ctx, m->hash_p, m->mask));
    return imb_add(ctx, imb_reshape(ctx, hi, 1, IMB_SHAPE(1)), imb_scale(ctx, hm, -1.0f));
}

static imb_tensor *acc_add(imb_ctx *ctx, imb_tensor *acc, imb_tensor *t) { return acc ? imb_add(ctx, acc, t) : t; }

/* a pooled stream through its head, L2-normalised: [B, IM_PROJ] */
static imb_tensor *stream_vec(imb_ctx *ctx, imb_tensor *x, imb_tensor *mask, imb_tensor *w, imb_tensor *b) {
    return l2norm(ctx, imb_linear(ctx, imb_mean_pool(ctx, x, mask), w, b));
}

/* ||std(rg)^T std(rs) / Bsz||_F^2 / d^2, standardised per dimension over the batch */
static imb_tensor *red_term(imb_ctx *ctx, imb_tensor *rg, imb_tensor *rs) {
    int64_t Bsz = rg->shape[0], d = rg->shape[1];
    imb_tensor *gz = imb_layernorm(ctx, swap12(ctx, imb_reshape(ctx, rg, 3, IMB_SHAPE(1, Bsz, d))), NULL, NULL, 1e-5f);
    imb_tensor *sz = imb_layernorm(ctx, swap12(ctx, imb_reshape(ctx, rs, 3, IMB_SHAPE(1, Bsz, d))), NULL, NULL, 1e-5f);
    imb_tensor *c = imb_scale(ctx, imb_matmul(ctx, gz, imb_reshape(ctx, sz, 2, IMB_SHAPE(d, Bsz)), NULL, 0, 1),
                              1.0f / (float)Bsz);   /* [1, d, d] */
    imb_tensor *c2 = imb_mul(ctx, c, c);
    return imb_reshape(ctx, imb_mean_pool(ctx, imb_reshape(ctx, c2, 3, IMB_SHAPE(1, d * d, 1)), NULL), 1, IMB_SHAPE(1));
}

static void add_term(imb_aux_terms *t, const char *name, imb_tensor *v, float w) {
    if (t->n == IMB_MAX_AUX || !v) return;
    snprintf(t->name[t->n], sizeof t->name[0], "%s", name);
    t->term[t->n] = v;
    t->weight[t->n++] = w;
}

static imb_tensor *im_aux_loss(imb_ctx *ctx, imb_backbone *bb, imb_tensor *labels, imb_aux_terms *terms) {
    im_extra *x = bb->extra;
    if (!x) return NULL;
    const im_opts *o = &x->o;
    const imb_backbone_cfg *cfg = &bb->cfg;
    imb_tensor *hash = NULL, *nce = NULL, *red = NULL;
    int nhash = 0, nnce = 0, nred = 0, bi = 0;
    for (int s = 0; s < cfg->nstages; s++)
        for (int d = 0; d < cfg->depths[s]; d++, bi++) {
            im_mixer *m = bb->blocks[bi].mixer;
            if (m->step != ctx->step)
                return imb_fail(ctx, "infomamba: auxiliary losses asked for without a forward in this step"), NULL;
            if (o->lambda_hash > 0 && m->hash_p) {
                hash = acc_add(ctx, hash, hash_term(ctx, m));
                nhash++;
            }
            if (d != cfg->depths[s] - 1) continue;
            imb_tensor *rg = m->g && x->head_gw[s] ? stream_vec(ctx, m->g, m->mask, x->head_gw[s], x->head_gb[s]) : NULL;
            imb_tensor *rs = m->s && x->head_sw[s] ? stream_vec(ctx, m->s, m->mask, x->head_sw[s], x->head_sb[s]) : NULL;
            if (x->protos && labels) {
                imb_tensor *pn = l2norm(ctx, x->protos);
                imb_tensor *r[2] = { rg, rs };
                for (int k = 0; k < 2; k++)
                    if (r[k]) {
                        imb_tensor *logits = imb_scale(ctx, imb_matmul(ctx, r[k], pn, NULL, 0, 1), 1.0f / o->tau_nce);
                        nce = acc_add(ctx, nce, imb_cross_entropy(ctx, logits, labels, 0.0f));
                        nnce++;
                    }
            }
            if (o->lambda_red > 0 && rg && rs) {
                red = acc_add(ctx, red, red_term(ctx, rg, rs));
                nred++;
            }
        }
    imb_tensor *total = NULL;
    if (nnce) {
        nce = imb_scale(ctx, nce, 1.0f / (float)nnce);
        add_term(terms, "mi", nce, o->lambda_mi);   /* named after its weight: the record keys terms as lambda_<name> */
        total = acc_add(ctx, total, imb_scale(ctx, nce, o->lambda_mi));
    }
    if (nred) {
        red = imb_scale(ctx, red, 1.0f / (float)nred);
        add_term(terms, "red", red, o->lambda_red);
        total = acc_add(ctx, total, imb_scale(ctx, red, o->lambda_red));
    }
    if (nhash) {
        hash = imb_scale(ctx, hash, 1.0f / (float)nhash);
        add_term(terms, "hash", hash, o->lambda_hash);
        total = acc_add(ctx, total, imb_scale(ctx, hash, o->lambda_hash));
    }
    return imb_ok(ctx) ? total : NULL;
}

const imb_mixer_def imb_mixer_infomamba = {
    .name = "infomamba",
    .about = "concept-bottleneck filtering + selective SSM fused by IMF; ablations imf=off ssm=off global=off "
             "mixer=off assign=static mix=off lambda_mi=0",
    .param_prefix = "mixer",
    .preset = im_preset,
    .presets = im_presets,
    .options = im_options,
    .create = im_create,
    .forward = im_forward,
    .create_extra = im_create_extra,
    .aux_loss = im_aux_loss,
};
