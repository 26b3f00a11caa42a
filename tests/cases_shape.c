/* Op-table cases: convolutions (patch embedding, depthwise 1-D/2-D) and shape ops. */
#include "optest.h"
#include "conv.h"
#include "elementwise.h"
#include "shape.h"

static void pe_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 3, 4, 6); OPT_P(c, t, "w", 0.5f, 5, 3, 2, 2); OPT_P(c, t, "b", 1, 5); }
static imb_tensor *pe_fwd(imb_ctx *c, optest *t) { return imb_patch_embed(c, t->p[0], t->p[1], t->p[2], 2, 0); }

static void cs2_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 1, 2, 5, 7); OPT_P(c, t, "w", 0.5f, 4, 2, 3, 3); OPT_P(c, t, "b", 1, 4); }
static imb_tensor *cs2_fwd(imb_ctx *c, optest *t) { return imb_patch_embed(c, t->p[0], t->p[1], t->p[2], 2, 1); }

static void dw1_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 6, 3); OPT_P(c, t, "w", 0.5f, 3, 1, 4); OPT_P(c, t, "b", 1, 3); }
static imb_tensor *dw1_fwd(imb_ctx *c, optest *t) { return imb_dwconv1d(c, t->p[0], t->p[1], t->p[2]); }

static void dw2_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 12, 3); OPT_P(c, t, "w", 0.5f, 3, 1, 3, 3); OPT_P(c, t, "b", 1, 3); }
static imb_tensor *dw2_fwd(imb_ctx *c, optest *t) { return imb_dwconv2d(c, t->p[0], 3, 4, t->p[1], t->p[2]); }

/* a view alone would hand the seed straight to x; the mul makes the new shape matter */
static void reshape_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 3, 4); OPT_P(c, t, "g", 1, 8); }
static imb_tensor *reshape_fwd(imb_ctx *c, optest *t) {
    return imb_mul(c, imb_reshape(c, t->p[0], 2, IMB_SHAPE(-1, 8)), t->p[1]);
}

static void perm4_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 3, 4, 5); }
static imb_tensor *perm4_fwd(imb_ctx *c, optest *t) { return imb_permute(c, t->p[0], (const int[]){ 0, 2, 1, 3 }); }

static void perm3_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 3, 5, 2); }
static imb_tensor *perm3_fwd(imb_ctx *c, optest *t) { return imb_permute(c, t->p[0], (const int[]){ 2, 0, 1 }); }

static void concat_setup(imb_ctx *c, optest *t) {
    OPT_P(c, t, "a", 1, 2, 3, 4); OPT_P(c, t, "b", 1, 2, 1, 4); OPT_P(c, t, "c", 1, 2, 2, 4);
}
static imb_tensor *concat_fwd(imb_ctx *c, optest *t) { return imb_concat(c, t->p, 3, -2); }

/* every part gets a different scale and the parts come back in another order, so a part's
 * gradient landing in the wrong place shows */
static void split_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 6, 3); }
static imb_tensor *split_fwd(imb_ctx *c, optest *t) {
    imb_tensor *p[3];
    if (imb_split(c, t->p[0], 1, 3, IMB_SHAPE(1, 3, 2), p)) return NULL;
    imb_tensor *q[3] = { imb_scale(c, p[2], 0.5f), imb_scale(c, p[0], 2.0f), imb_scale(c, p[1], -1.5f) };
    return imb_concat(c, q, 3, 1);
}

static void split_mid_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 5, 3, 2); }
static imb_tensor *split_mid_fwd(imb_ctx *c, optest *t) {
    imb_tensor *p[3];
    return imb_split(c, t->p[0], 0, 3, IMB_SHAPE(2, 1, 2), p) ? NULL : p[1];
}

static void slice_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 3, 5, 4); }
static imb_tensor *slice_fwd(imb_ctx *c, optest *t) { return imb_slice(c, t->p[0], 1, 1, 3); }
static imb_tensor *slice_neg_fwd(imb_ctx *c, optest *t) { return imb_slice(c, t->p[0], -1, -3, 2); }

static void copy_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 3, 5); }
static imb_tensor *copy_fwd(imb_ctx *c, optest *t) { return imb_copy(c, t->p[0]); }

const op_case optest_shape[] = {
    { "patch_embed", pe_setup, pe_fwd, 0, 0 },
    { "conv_s2", cs2_setup, cs2_fwd, 0, 0 },
    { "dwconv1d", dw1_setup, dw1_fwd, 0, 0 },
    { "dwconv2d", dw2_setup, dw2_fwd, 0, 0 },
    { "reshape", reshape_setup, reshape_fwd, 0, 0 },
    { "permute", perm4_setup, perm4_fwd, 0, 0 },
    { "permute_3d", perm3_setup, perm3_fwd, 0, 0 },
    { "concat", concat_setup, concat_fwd, 0, 0 },
    { "split", split_setup, split_fwd, 0, 0 },
    { "split_middle", split_mid_setup, split_mid_fwd, 0, 0 },
    { "slice", slice_setup, slice_fwd, 0, 0 },
    { "slice_negative", slice_setup, slice_neg_fwd, 0, 0 },
    { "copy", copy_setup, copy_fwd, 0, 0 },
    { 0 },
};
