/* Image classification: conv patch-embedding stem -> backbone -> linear head, cross-entropy. */
#ifndef IMB_IMAGECLS_H
#define IMB_IMAGECLS_H
#include "backbone.h"

typedef struct imb_imagecls {
    imb_backbone *bb;
    imb_tensor *patch_w, *patch_b, *head_w, *head_b;
    int channels, size, patch, nclasses;
} imb_imagecls;

/* Declares the stem (timm names patch_embed.proj.*), the backbone (its positions sized for
 * this input grid) and the head (head.*). size must be a multiple of patch. */
imb_imagecls *imb_imagecls_create(imb_ctx *ctx, const imb_backbone_cfg *cfg, int channels, int size, int patch,
                                  int nclasses);
void imb_imagecls_free(imb_imagecls *m);
/* images [B, channels, H, W] (H, W multiples of patch) -> logits [B, nclasses] */
imb_tensor *imb_imagecls_forward(imb_ctx *ctx, imb_imagecls *m, imb_tensor *images);
#endif
