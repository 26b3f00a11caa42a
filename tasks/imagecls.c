/* Image classification head and stem around any backbone. */
#include "imagecls.h"
#include "conv.h"
#include "matmul.h"
#include <stdlib.h>

imb_imagecls *imb_imagecls_create(imb_ctx *ctx, const imb_backbone_cfg *cfg_in, int channels, int size, int patch,
                                  int nclasses) {
    if (channels < 1 || patch < 1 || size < patch || size % patch || nclasses < 2) {
        imb_fail(ctx, "imagecls: need channels >= 1, size a multiple of patch, >= 2 classes (got %d, %d, %d, %d)",
                 channels, size, patch, nclasses);
        return NULL;
    }
    imb_imagecls *m = calloc(1, sizeof *m);
    if (!m) { imb_fail(ctx, "imagecls: out of host memory"); return NULL; }
    imb_backbone_cfg cfg = *cfg_in;
    cfg.pos_h = cfg.pos_w = size / patch;
    cfg.nclasses = nclasses;
    int C = cfg.dims[0], CL = cfg.dims[cfg.nstages - 1];
    m->channels = channels; m->size = size; m->patch = patch; m->nclasses = nclasses;
    m->patch_w = imb_param_new(ctx, "patch_embed.proj.weight", 4, IMB_SHAPE(C, channels, patch, patch),
                               IMB_INIT_TRUNC_NORMAL, cfg.init_std, 1);
    m->patch_b = imb_param_new(ctx, "patch_embed.proj.bias", 1, IMB_SHAPE(C), IMB_INIT_ZEROS, 0, 0);
    m->bb = imb_backbone_create(ctx, &cfg);
    m->head_w = imb_param_new(ctx, "head.weight", 2, IMB_SHAPE(nclasses, CL), IMB_INIT_TRUNC_NORMAL, cfg.init_std, 1);
    m->head_b = imb_param_new(ctx, "head.bias", 1, IMB_SHAPE(nclasses), IMB_INIT_ZEROS, 0, 0);
    if (!imb_ok(ctx)) { imb_imagecls_free(m); return NULL; }
    return m;
}

void imb_imagecls_free(imb_imagecls *m) {
    if (!m) return;
    imb_backbone_free(m->bb);
    free(m);
}

imb_tensor *imb_imagecls_forward(imb_ctx *ctx, imb_imagecls *m, imb_tensor *images) {
    if (!imb_ok(ctx)) return NULL;
    if (!images || images->ndim != 4 || images->shape[1] != m->channels || images->shape[2] % m->patch ||
        images->shape[3] % m->patch) {
        imb_fail(ctx, "imagecls: images must be [B, %d, H, W] with H, W multiples of %d", m->channels, m->patch);
        return NULL;
    }
    imb_tensor *tokens = imb_patch_embed(ctx, images, m->patch_w, m->patch_b, m->patch, 0);
    imb_grid g = { (int)(images->shape[2] / m->patch), (int)(images->shape[3] / m->patch), NULL };
    imb_backbone_out out;
    if (imb_backbone_forward(ctx, m->bb, tokens, g, &out)) return NULL;
    return imb_linear(ctx, out.pooled, m->head_w, m->head_b);
}
