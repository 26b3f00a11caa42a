/* Linformer token mixer: attention whose keys and values come from the normalised input
 * compressed along the sequence to k rows (fairseq's MultiheadLinearAttention). */
#include "backbone.h"
#include "attention.h"
#include "elementwise.h"
#include "matmul.h"
#include "shape.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* E (and F) are [k, L_max] bias-free linears along L, PyTorch layout: compressed = E[:, :L] x.
 * With share_layers the blocks hold no E/F of their own and find the backbone-level ones
 * ("E.weight", "F.weight") by name on their first forward: the mixer's forward only sees its
 * own state, and those parameters are declared after the blocks (create_extra). */
typedef struct {
    imb_tensor *qkv_w, *qkv_b, *proj_w, *proj_b, *E, *F;
    int heads, k, lmax, share_kv, share_layers;
    char preset[32];
} lin_mixer;

static const char *const lin_presets[] = { "linformer-nano", "linformer-t", "linformer-s", NULL };
static const char *const lin_options[] = { "k", "share_kv", "share_layers", NULL };

static int lin_preset(const char *name, imb_backbone_cfg *c) {
    /* the ViT shapes (vit.c): nano is vit-nano's sibling, -t/-s are ViT-T/S with k = 64 at
     * 224 (L = 197 with the class token, about L/3 as the Linformer paper's k = 256 of 512+) */
    static const struct { const char *name; int dim, depth, heads, k; } t[] = {
        { "linformer-nano", 128, 5, 4, 8 }, { "linformer-t", 192, 12, 3, 64 }, { "linformer-s", 384, 12, 6, 64 },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(name, t[i].name)) {
            c->nstages = 1;
            c->dims[0] = t[i].dim;
            c->depths[0] = t[i].depth;
            c->heads[0] = t[i].heads;
            c->mlp_ratio = 4.0f;
            c->norm_eps = 1e-6f;
            /* average pooling for nano, as vit-nano, so their MNIST runs compare */
            c->cls_token = strcmp(name, "linformer-nano") != 0;
            c->pos_embed = 1;
            c->pos_h = c->pos_w = 14;
            c->init_std = 0.02f;
            /* nano's k halves MNIST's 4x4 token grid. The preset's k travels as an option
             * (the cfg has no mixer fields); k=... on the command line replaces it. */
            c->nopts = 1;
            snprintf(c->opt_key[0], sizeof c->opt_key[0], "k");
            snprintf(c->opt_val[0], sizeof c->opt_val[0], "%d", t[i].k);
            return 0;
        }
    return -1;
}

static int opt_int(imb_ctx *ctx, const imb_backbone_cfg *cfg, const char *key, const char *def, int lo, int hi,
                   int *out) {
    const char *v = imb_backbone_opt(cfg, key, def);
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x < lo || x > hi)
        return imb_fail(ctx, "%s: option %s=%s: expected an integer in [%d, %d]", cfg->preset, key, v ? v : "(unset)",
                        lo, hi);
    *out = (int)x;
    return 0;
}

/* The options shared by create and create_extra; also rejects what Linformer cannot do. */
static int lin_config(imb_ctx *ctx, const imb_backbone_cfg *cfg, int *k, int *share_kv, int *share_layers,
                      int *lmax) {
    if (cfg->causal)
        return imb_fail(ctx, "%s: causal=1 is not supported: E mixes every position along the sequence, so each "
                             "compressed key would see future tokens", cfg->preset);
    if (cfg->nstages != 1) return imb_fail(ctx, "%s: Linformer runs single-stage (isotropic) layouts only", cfg->preset);
    if (cfg->pos_h < 1 || cfg->pos_w < 1)
        return imb_fail(ctx, "%s: the grid E is sized for must be positive, got %dx%d", cfg->preset, cfg->pos_h,
                        cfg->pos_w);
    if (opt_int(ctx, cfg, "k", NULL, 1, 65536, k)) return -1;
    if (opt_int(ctx, cfg, "share_kv", "0", 0, 1, share_kv)) return -1;
    if (opt_int(ctx, cfg, "share_layers", "0", 0, 1, share_layers)) return -1;
    /* the positions' grid plus the class token: the longest sequence the blocks see */
    *lmax = cfg->pos_h * cfg->pos_w + cfg->cls_token;
    return 0;
}

/* fairseq: xavier_uniform_(gain = 1/sqrt(2)) on the compress linears */
static imb_tensor *new_proj(imb_ctx *ctx, const char *name, int k, int lmax) {
    float bound = sqrtf(3.0f / (float)(k + lmax));
    return imb_param_new(ctx, name, 2, IMB_SHAPE(k, lmax), IMB_INIT_UNIFORM, bound, 1);
}

static void *lin_create(imb_ctx *ctx, const imb_backbone_cfg *cfg, int stage, const char *prefix) {
    int C = cfg->dims[stage], H = cfg->heads[stage], k, skv, sl, lmax;
    if (lin_config(ctx, cfg, &k, &skv, &sl, &lmax)) return NULL;
    if (H < 1 || C % H) {
        imb_fail(ctx, "%s: %d heads do not divide width %d", cfg->preset, H, C);
        return NULL;
    }
    lin_mixer *m = calloc(1, sizeof *m);
    if (!m) { imb_fail(ctx, "linformer: out of host memory"); return NULL; }
    char n[128];
#define P(field, suffix, ndim, shape, init, arg, decay) \
    snprintf(n, sizeof n, "%s.%s", prefix, suffix); \
    m->field = imb_param_new(ctx, n, ndim, shape, init, arg, decay)
    /* q, k, v stay fused as in ViT so the two share weight layouts */
    P(qkv_w, "qkv.weight", 2, IMB_SHAPE(3 * C, C), IMB_INIT_TRUNC_NORMAL, cfg->init_std, 1);
    P(qkv_b, "qkv.bias", 1, IMB_SHAPE(3 * C), IMB_INIT_ZEROS, 0, 0);
    P(proj_w, "proj.weight", 2, IMB_SHAPE(C, C), IMB_INIT_TRUNC_NORMAL, cfg->init_std, 1);
    P(proj_b, "proj.bias", 1, IMB_SHAPE(C), IMB_INIT_ZEROS, 0, 0);
#undef P
    if (!sl) {
        snprintf(n, sizeof n, "%s.E.weight", prefix);
        m->E = new_proj(ctx, n, k, lmax);
        if (!skv) {
            snprintf(n, sizeof n, "%s.F.weight", prefix);
            m->F = new_proj(ctx, n, k, lmax);
        }
    }
    m->heads = H;
    m->k = k;
    m->lmax = lmax;
    m->share_kv = skv;
    m->share_layers = sl;
    snprintf(m->preset, sizeof m->preset, "%s", cfg->preset);
    return m;
}

/* share_layers=1: one E (and F) for every block, at the backbone level */
static void *lin_create_extra(imb_ctx *ctx, const imb_backbone_cfg *cfg) {
    int k, skv, sl, lmax;
    if (lin_config(ctx, cfg, &k, &skv, &sl, &lmax) || !sl) return NULL;
    new_proj(ctx, "E.weight", k, lmax);
    if (!skv) new_proj(ctx, "F.weight", k, lmax);
    return NULL;
}

/* P[:, :L] x_b for every batch index b as one GEMM: xt is x laid out [L, B*C] (shared by the E
 * and F compressions), P [k, L_max] -> [B, k, C]. One GEMM instead of a batched one keeps the
 * backward of P a single GEMM too (a batched product with a shared operand accumulates P's
 * gradient one batch index at a time). */
static imb_tensor *compress(imb_ctx *ctx, imb_tensor *xt, imb_tensor *P, int64_t B, int64_t L, int64_t C,
                            int64_t lmax) {
    if (L < lmax) P = imb_slice(ctx, P, 1, 0, L);
    imb_tensor *c = imb_matmul(ctx, P, xt, NULL, 0, 0);
    return imb_permute(ctx, imb_reshape(ctx, c, 3, IMB_SHAPE(-1, B, C)), (const int[]){ 1, 0, 2 });
}

static imb_tensor *lin_forward(imb_ctx *ctx, void *state, imb_tensor *x, const imb_grid *g) {
    lin_mixer *m = state;
    if (!m || !x || !imb_ok(ctx)) return NULL;
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2];
    if (L > m->lmax)
        return imb_fail(ctx, "%s: sequence of %lld tokens is longer than L_max = %d, the length its E is sized for "
                             "(positions grid + class token); longer inputs need a preset or task sized for them",
                        m->preset, (long long)L, m->lmax), NULL;
    if (m->share_layers && !m->E) {
        imb_param *e = imb_param_find(ctx, "E.weight"), *f = m->share_kv ? NULL : imb_param_find(ctx, "F.weight");
        if (!e || (!m->share_kv && !f))
            return imb_fail(ctx, "%s: share_layers=1 but the backbone-level E/F parameters are missing", m->preset),
                   NULL;
        m->E = e->t;
        m->F = f ? f->t : NULL;
    }
    if (g->mask) {
        /* E mixes along L, so a padded token would leak into every compressed key: zero
         * those rows first (mask [B, L] broadcast over C as an outer product with ones) */
        imb_tensor *mc = imb_matmul(ctx, imb_reshape(ctx, g->mask, 3, IMB_SHAPE(B, L, 1)),
                                    imb_full(ctx, 2, IMB_SHAPE(1, C), 1.0f), NULL, 0, 0);
        x = imb_mul(ctx, x, mc);
    }
    imb_tensor *q = imb_linear(ctx, x, imb_slice(ctx, m->qkv_w, 0, 0, C), imb_slice(ctx, m->qkv_b, 0, 0, C));
    imb_tensor *xt = imb_reshape(ctx, imb_permute(ctx, x, (const int[]){ 1, 0, 2 }), 2, IMB_SHAPE(L, B * C));
    imb_tensor *k, *v, *ck = compress(ctx, xt, m->E, B, L, C, m->lmax);
    if (m->share_kv) {
        /* one compressed sequence feeds both projections: a single GEMM for k and v */
        imb_tensor *kv = imb_linear(ctx, ck, imb_slice(ctx, m->qkv_w, 0, C, 2 * C),
                                    imb_slice(ctx, m->qkv_b, 0, C, 2 * C)), *o[2];
        if (imb_split(ctx, kv, -1, 2, IMB_SHAPE(C, C), o)) return NULL;
        k = o[0];
        v = o[1];
    } else {
        imb_tensor *cv = compress(ctx, xt, m->F, B, L, C, m->lmax);
        k = imb_linear(ctx, ck, imb_slice(ctx, m->qkv_w, 0, C, C), imb_slice(ctx, m->qkv_b, 0, C, C));
        v = imb_linear(ctx, cv, imb_slice(ctx, m->qkv_w, 0, 2 * C, C), imb_slice(ctx, m->qkv_b, 0, 2 * C, C));
    }
    /* every compressed key is a real one: no key mask; padded queries compute rows nobody reads */
    imb_tensor *a = imb_attention(ctx, q, k, v, m->heads, NULL, 0, 0.0f);
    return imb_linear(ctx, a, m->proj_w, m->proj_b);
}

const imb_mixer_def imb_mixer_linformer = {
    .name = "linformer",
    .about = "attention with K, V compressed along the sequence to k by E, F [k, L_max] (fairseq Linformer)",
    .param_prefix = "attn",
    .preset = lin_preset,
    .presets = lin_presets,
    .options = lin_options,
    .create = lin_create,
    .forward = lin_forward,
    .create_extra = lin_create_extra,
};
