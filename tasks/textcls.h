/* Text classification: token embedding stem -> any backbone (isotropic, 1-D) -> masked mean pool
 * -> linear head; cross-entropy plus the backbone's auxiliary losses. */
#ifndef IMB_TEXTCLS_H
#define IMB_TEXTCLS_H
#include "backbone.h"

typedef struct imb_textcls {
    imb_backbone *bb;
    imb_tensor *embed_w, *head_w, *head_b;
    int vocab, max_len, nclasses;
} imb_textcls;

/* Declares the stem (embed_tokens.weight [vocab, C]), the backbone and the head (head.*). The
 * backbone runs as one stage at the token rate (imb_backbone_isotropic), with cfg.nclasses set
 * and its learned positions (when the preset has pos_embed) sized to max_len on a (max_len, 1)
 * grid; a shorter batch uses the leading positions, so padding never moves a token's position. */
imb_textcls *imb_textcls_create(imb_ctx *ctx, const imb_backbone_cfg *cfg, int vocab, int max_len, int nclasses);
void imb_textcls_free(imb_textcls *m);
/* ids i32 [B, L] (1 <= L <= max_len; ids checked to lie in [0, vocab)), mask f32 [B, L] (1 token,
 * 0 padding) or NULL when nothing is padded -> logits [B, nclasses]. Padding reaches no logit:
 * the backbone masks it (attention keys, identity scan steps) and the pool skips it. */
imb_tensor *imb_textcls_forward(imb_ctx *ctx, imb_textcls *m, imb_tensor *ids, imb_tensor *mask);
/* After imb_textcls_forward: cross-entropy of logits against labels i32 [B] (label smoothing s)
 * plus the backbone's weighted auxiliary losses (their unweighted terms into terms, when not NULL). */
imb_tensor *imb_textcls_loss(imb_ctx *ctx, imb_textcls *m, imb_tensor *logits, imb_tensor *labels, float smoothing,
                             imb_aux_terms *terms);
#endif
