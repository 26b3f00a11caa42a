/* Op-table cases through whole blocks: ViT and Linformer backbones and the image-classification
 * model, every parameter checked against finite differences. */
#include "optest.h"
#include "backbone.h"
#include "imagecls.h"
#include "loss.h"
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
    { "linformer_backbone", lin_setup, lin_fwd, 0, 0 },
    { "linformer_backbone_short", lin_short_setup, lin_short_fwd, 0, 0 },
    { "linformer_shared_layers_mask", lin_layers_setup, lin_masked_fwd, 0, 0 },
    { "linformer_one_e_mask", lin_one_setup, lin_masked_fwd, 0, 0 },
    { 0 },
};
