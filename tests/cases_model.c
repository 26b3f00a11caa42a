/* Op-table cases through whole blocks: a ViT backbone and the image-classification model,
 * every parameter checked against finite differences. */
#include "optest.h"
#include "backbone.h"
#include "imagecls.h"
#include "loss.h"
#include "textcls.h"
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

const op_case optest_model[] = {
    { "vit_backbone", vit_setup, vit_fwd, 0, 0 },
    { "vit_backbone_gap", vit_gap_setup, vit_fwd, 0, 0 },
    { "vit_backbone_regrid", vit_setup, vit_regrid_fwd, 0, 0 },
    { "imagecls_vit_loss", cls_setup, cls_fwd, 0, 0 },
    { "textcls_vit_loss", txt_setup, txt_fwd, 0, 0 },
    { 0 },
};
