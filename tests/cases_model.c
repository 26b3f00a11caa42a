/* Op-table cases through whole blocks: ViT, Linformer and VMamba backbones and the
 * image-classification model, every parameter checked against finite differences. */
#include "optest.h"
#include "backbone.h"
#include "imagecls.h"
#include "loss.h"
#include "textcls.h"
#include "shape.h"
#include <stdlib.h>
#include <string.h>


static void bb_cleanup(void *s) { imb_backbone_free(s); }
static void cls_cleanup(void *s) { imb_imagecls_free(s); }

/* cls = 1: class-token pooling (timm's ViTs); 0: average pooling (vit-nano's default) */
static imb_backbone_cfg tiny_vit(int cls) {
    imb_backbone_cfg c;
    char e[256];
    imb_backbone_parse(cls ? "vit-nano:dim=8,heads=2,depth=2,mlp_ratio=2,cls_token=1"
                           : "vit-nano:dim=8,heads=2,depth=2,mlp_ratio=2,cls_token=0", &c, e, sizeof e);
    c.pos_h = 2;
    c.pos_w = 3;
    c.init_std = 0.3f;   /* larger than timm's 0.02 so every path carries a visible gradient */
    return c;
}

static void vit_setup_cfg(imb_ctx *c, optest *t, imb_backbone_cfg cfg) {
    t->state = imb_backbone_create(c, &cfg);
    t->cleanup = bb_cleanup;
    imb_param_new(c, "tokens", 3, IMB_SHAPE(2, 6, 8), IMB_INIT_NORMAL, 1.0f, 0);
}

static void vit_setup(imb_ctx *c, optest *t) { vit_setup_cfg(c, t, tiny_vit(1)); }
static void vit_gap_setup(imb_ctx *c, optest *t) { vit_setup_cfg(c, t, tiny_vit(0)); }

static imb_tensor *vit_fwd(imb_ctx *c, optest *t) {
    imb_backbone_out out;
    imb_tensor *x = imb_param_find(c, "tokens")->t;
    if (imb_backbone_forward(c, t->state, x, (imb_grid){ 2, 3, NULL }, &out)) return NULL;
    return out.pooled;
}

/* the positions are interpolated from the 2x3 grid to 3x2 */
static imb_tensor *vit_regrid_fwd(imb_ctx *c, optest *t) {
    imb_backbone_out out;
    imb_tensor *x = imb_param_find(c, "tokens")->t;
    if (imb_backbone_forward(c, t->state, x, (imb_grid){ 3, 2, NULL }, &out)) return NULL;
    return out.feats[0];
}

static void cls_setup(imb_ctx *c, optest *t) {
    imb_backbone_cfg cfg = tiny_vit(1);
    t->state = imb_imagecls_create(c, &cfg, 1, 4, 2, 3);
    t->cleanup = cls_cleanup;
    imb_param_new(c, "images", 4, IMB_SHAPE(2, 1, 4, 4), IMB_INIT_NORMAL, 1.0f, 0);
}

static imb_tensor *cls_fwd(imb_ctx *c, optest *t) {
    static const int32_t lab[2] = { 2, 0 };
    imb_tensor *logits = imb_imagecls_forward(c, t->state, imb_param_find(c, "images")->t);
    return imb_cross_entropy(c, logits, imb_input(c, IMB_I32, 1, IMB_SHAPE(2), lab), 0.1f);
}

static void txt_cleanup(void *s) { imb_textcls_free(s); }

/* text: token stem, positions sliced to a padded batch shorter than max_len, masked pool */
static void txt_setup(imb_ctx *c, optest *t) {
    imb_backbone_cfg cfg = tiny_vit(0);
    t->state = imb_textcls_create(c, &cfg, 11, 6, 3);
    t->cleanup = txt_cleanup;
}

static imb_tensor *txt_fwd(imb_ctx *c, optest *t) {
    static const int32_t ids[2 * 5] = { 3, 7, 1, 9, 2, 4, 10, 6, 0, 0 }, lab[2] = { 1, 2 };
    static const float mask[2 * 5] = { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 };
    imb_textcls *m = t->state;
    imb_tensor *logits = imb_textcls_forward(c, m, imb_input(c, IMB_I32, 2, IMB_SHAPE(2, 5), ids),
                                             imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 5), mask));
    return imb_textcls_loss(c, m, logits, imb_input(c, IMB_I32, 1, IMB_SHAPE(2), lab), 0.1f, NULL);
}
/* Whole VMamba backbones with the real initialisation, through the skeleton: the tokens and
 * the parameters on the block's main path (float finite differences cannot resolve the SSM
 * parameters' gradients here, which are orders smaller: the vmamba_ss2d cases check those).
 * Two stages on a 2x3 grid (stage 1 merges it, padded to 2x4, into 1x2), or 1-D on a 5 x 1
 * grid (the second sequence padded after 3 tokens) as 1-D tasks run it: isotropic,
 * bidirectional (2 directions, centred conv) or causal (1 direction, causal conv). */
static void vmamba_declare(imb_ctx *c, optest *t, imb_backbone_cfg cfg, const char *conv, int L, int C) {
    cfg.init_std = 0.3f;   /* larger than 0.02 so every path carries a visible gradient */
    t->state = imb_backbone_create(c, &cfg);
    t->cleanup = bb_cleanup;
    OPT_P(c, t, "tokens", 1.0f, 2, L, C);
    const char *names[] = { "blocks.0.op.in_proj.weight", conv, "blocks.0.op.out_norm.weight",
                            "blocks.0.op.out_proj.weight", "blocks.1.op.in_proj.weight", "blocks.1.op.out_proj.weight",
                            cfg.nstages > 1 ? "stages.1.downsample.reduction.weight" : "blocks.1.mlp.fc1.weight" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        imb_param *p = imb_param_find(c, names[i]);
        if (p) t->p[t->n++] = p->t;
    }
}

static void vmamba_setup(imb_ctx *c, optest *t) {
    imb_backbone_cfg cfg;
    char e[256];
    imb_backbone_parse("vmamba-nano:d_state=2,dt_rank=2,ssm_ratio=1.5,mlp_ratio=2", &cfg, e, sizeof e);
    cfg.dims[0] = 4, cfg.dims[1] = 8, cfg.depths[0] = cfg.depths[1] = 1;
    cfg.pos_h = 2, cfg.pos_w = 3;
    vmamba_declare(c, t, cfg, "blocks.0.op.conv2d.weight", 6, 4);
}

static imb_tensor *vmamba_fwd(imb_ctx *c, optest *t) {
    imb_backbone_out out;
    if (imb_backbone_forward(c, t->state, t->p[0], (imb_grid){ 2, 3, NULL }, &out)) return NULL;
    return out.pooled;
}

static void vmamba_1d_setup_cfg(imb_ctx *c, optest *t, int causal) {
    imb_backbone_cfg cfg;
    char e[256];
    imb_backbone_parse(causal ? "vmamba-nano:d_state=2,dt_rank=2,mlp_ratio=2,causal=1"
                              : "vmamba-nano:d_state=2,dt_rank=2,mlp_ratio=2", &cfg, e, sizeof e);
    imb_backbone_isotropic(&cfg);
    cfg.dims[0] = 4, cfg.depths[0] = 2;
    cfg.pos_h = 5, cfg.pos_w = 1;
    vmamba_declare(c, t, cfg, "blocks.0.op.conv1d.weight", 5, 4);
}
static void vmamba_bidir_setup(imb_ctx *c, optest *t) { vmamba_1d_setup_cfg(c, t, 0); }
static void vmamba_causal_setup(imb_ctx *c, optest *t) { vmamba_1d_setup_cfg(c, t, 1); }

/* pooled over the real tokens only: the padded ones must not change it */
static imb_tensor *vmamba_1d_fwd(imb_ctx *c, optest *t) {
    static const float mask[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 };
    imb_backbone_out out;
    imb_grid g = { 5, 1, imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 5), mask) };
    if (imb_backbone_forward(c, t->state, t->p[0], g, &out)) return NULL;
    return out.pooled;
}

/* SS2D alone, every parameter: no residual, MLP or norms around it, and VMamba's ssm_init=v1
 * (normal dt and A), so the scan's share of the output is large enough for float finite
 * differences (steps of 1e-2, 3e-2 where 1e-2 was still noise-bound). 4 directions on a 3x4
 * grid, or a 1-D 6 x 1 grid with the second sequence padded after 4 tokens, bidirectional or
 * causal. */
typedef struct { const imb_mixer_def *m; void *state; int H, W; } ss2d_case;

static void ss2d_cleanup(void *p) {
    ss2d_case *s = p;
    if (s) free(s->state);
    free(s);
}

static void ss2d_setup_cfg(imb_ctx *c, optest *t, int H, int W, const char *spec) {
    imb_backbone_cfg cfg;
    char e[256];
    imb_backbone_parse(spec, &cfg, e, sizeof e);
    cfg.dims[0] = 4;
    cfg.pos_h = H, cfg.pos_w = W;
    cfg.init_std = 1.0f;
    ss2d_case *s = calloc(1, sizeof *s);
    s->m = imb_mixer_find("vmamba");
    s->state = s->m->create(c, &cfg, 0, "op");
    s->H = H, s->W = W;
    t->state = s;
    t->cleanup = ss2d_cleanup;
    imb_param_new(c, "tokens", 3, IMB_SHAPE(2, H * W, 4), IMB_INIT_NORMAL, 1.0f, 0);
}
static void ss2d_setup(imb_ctx *c, optest *t) {
    ss2d_setup_cfg(c, t, 3, 4, "vmamba-nano:d_state=2,dt_rank=2,ssm_ratio=1.5,ssm_init=v1");
}
static void ss2d_bidir_setup(imb_ctx *c, optest *t) {
    ss2d_setup_cfg(c, t, 6, 1, "vmamba-nano:d_state=4,dt_rank=2,ssm_init=v1");
}
static void ss2d_causal_setup(imb_ctx *c, optest *t) {
    ss2d_setup_cfg(c, t, 6, 1, "vmamba-nano:d_state=2,dt_rank=2,ssm_init=v1,causal=1");
}

static imb_tensor *ss2d_fwd(imb_ctx *c, optest *t) {
    static const float mask[12] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 };
    ss2d_case *s = t->state;
    imb_grid g = { s->H, s->W, s->W == 1 ? imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 6), mask) : NULL };
    imb_tensor *y = s->m->forward(c, s->state, imb_param_find(c, "tokens")->t, &g);
    if (!y || !g.mask) return y;
    /* the padded tokens' outputs are nobody's: only the real ones */
    return imb_concat(c, (imb_tensor *[]){ imb_slice(c, y, 0, 0, 1),
                                           imb_slice(c, imb_slice(c, y, 0, 1, 1), 1, 0, 4) }, 2, 1);
}
/* Linformer blocks: E/F per layer or shared (share_kv, share_layers), inputs shorter than
 * L_max, and a padded 1-D batch (the padded rows are zeroed before the compression) */
static imb_backbone_cfg tiny_linformer(const char *opts, int pos_h, int pos_w) {
    imb_backbone_cfg c;
    char spec[160], e[256];
    snprintf(spec, sizeof spec, "linformer-nano:dim=8,heads=2,depth=2,mlp_ratio=2,k=3,%s", opts);
    imb_backbone_parse(spec, &c, e, sizeof e);
    c.pos_h = pos_h;
    c.pos_w = pos_w;
    c.init_std = 0.3f;
    return c;
}

static void lin_setup_cfg(imb_ctx *c, optest *t, imb_backbone_cfg cfg, int64_t L) {
    t->state = imb_backbone_create(c, &cfg);
    t->cleanup = bb_cleanup;
    imb_param_new(c, "tokens", 3, IMB_SHAPE(2, L, 8), IMB_INIT_NORMAL, 1.0f, 0);
}

/* separate E and F per layer, class token: L = L_max = 2*3 + 1 */
static void lin_setup(imb_ctx *c, optest *t) { lin_setup_cfg(c, t, tiny_linformer("cls_token=1", 2, 3), 6); }
/* E = F per layer, a 2x2 grid on a 2x3 E: the first 5 of its 7 columns */
static void lin_short_setup(imb_ctx *c, optest *t) {
    lin_setup_cfg(c, t, tiny_linformer("cls_token=1,share_kv=1", 2, 3), 4);
}
/* backbone-level E and F (share_layers), 1-D */
static void lin_layers_setup(imb_ctx *c, optest *t) {
    lin_setup_cfg(c, t, tiny_linformer("cls_token=1,share_layers=1", 6, 1), 5);
}
/* one E for everything, 1-D, average pooling */
static void lin_one_setup(imb_ctx *c, optest *t) {
    lin_setup_cfg(c, t, tiny_linformer("cls_token=0,share_kv=1,share_layers=1", 6, 1), 5);
}

static imb_tensor *lin_fwd(imb_ctx *c, optest *t) {
    imb_backbone_out out;
    imb_tensor *x = imb_param_find(c, "tokens")->t;
    if (imb_backbone_forward(c, t->state, x, (imb_grid){ 2, 3, NULL }, &out)) return NULL;
    return out.pooled;
}

static imb_tensor *lin_short_fwd(imb_ctx *c, optest *t) {
    imb_backbone_out out;
    imb_tensor *x = imb_param_find(c, "tokens")->t;
    if (imb_backbone_forward(c, t->state, x, (imb_grid){ 2, 2, NULL }, &out)) return NULL;
    return out.pooled;
}

/* the second sequence has 3 real tokens and 2 padded ones; every token's features are checked */
static imb_tensor *lin_masked_fwd(imb_ctx *c, optest *t) {
    static const float mask[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 };
    imb_backbone_out out;
    imb_tensor *x = imb_param_find(c, "tokens")->t;
    imb_tensor *m = imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 5), mask);
    if (imb_backbone_forward(c, t->state, x, (imb_grid){ 5, 1, m }, &out)) return NULL;
    return out.feats[0];
}


const op_case optest_model[] = {
    { "vit_backbone", vit_setup, vit_fwd, 0, 0 },
    { "vit_backbone_gap", vit_gap_setup, vit_fwd, 0, 0 },
    { "vit_backbone_regrid", vit_setup, vit_regrid_fwd, 0, 0 },
    { "imagecls_vit_loss", cls_setup, cls_fwd, 0, 0 },
    { "textcls_vit_loss", txt_setup, txt_fwd, 0, 0 },
    { "linformer_backbone", lin_setup, lin_fwd, 0, 0 },
    { "linformer_backbone_short", lin_short_setup, lin_short_fwd, 0, 0 },
    { "linformer_shared_layers_mask", lin_layers_setup, lin_masked_fwd, 0, 0 },
    { "linformer_one_e_mask", lin_one_setup, lin_masked_fwd, 0, 0 },
    { "vmamba_ss2d", ss2d_setup, ss2d_fwd, 0, 1e-2 },
    { "vmamba_ss2d_1d", ss2d_bidir_setup, ss2d_fwd, 0, 3e-2 },
    { "vmamba_ss2d_1d_causal", ss2d_causal_setup, ss2d_fwd, 0, 1e-2 },
    { "vmamba_backbone", vmamba_setup, vmamba_fwd, 0, 0 },
    { "vmamba_backbone_1d", vmamba_bidir_setup, vmamba_1d_fwd, 0, 0 },
    { "vmamba_backbone_1d_causal", vmamba_causal_setup, vmamba_1d_fwd, 0, 0 },
    { 0 },
};
