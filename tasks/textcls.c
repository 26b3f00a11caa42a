/* Text classification stem, head and loss around any backbone. */
#include "textcls.h"
#include "elementwise.h"
#include "embedding.h"
#include "loss.h"
#include "matmul.h"
#include <stdlib.h>

imb_textcls *imb_textcls_create(imb_ctx *ctx, const imb_backbone_cfg *cfg_in, int vocab, int max_len, int nclasses) {
    if (vocab < 2 || max_len < 1 || nclasses < 2) {
        imb_fail(ctx, "textcls: need vocab >= 2, max_len >= 1, >= 2 classes (got %d, %d, %d)", vocab, max_len, nclasses);
        return NULL;
    }
    imb_textcls *m = calloc(1, sizeof *m);
    if (!m) { imb_fail(ctx, "textcls: out of host memory"); return NULL; }
    imb_backbone_cfg cfg = *cfg_in;
    imb_backbone_isotropic(&cfg);
    cfg.pos_h = max_len;
    cfg.pos_w = 1;
    cfg.nclasses = nclasses;
    int C = cfg.dims[0];
    m->vocab = vocab;
    m->max_len = max_len;
    m->nclasses = nclasses;
    m->embed_w = imb_param_new(ctx, "embed_tokens.weight", 2, IMB_SHAPE(vocab, C), IMB_INIT_TRUNC_NORMAL, cfg.init_std, 1);
    m->bb = imb_backbone_create(ctx, &cfg);
    m->head_w = imb_param_new(ctx, "head.weight", 2, IMB_SHAPE(nclasses, C), IMB_INIT_TRUNC_NORMAL, cfg.init_std, 1);
    m->head_b = imb_param_new(ctx, "head.bias", 1, IMB_SHAPE(nclasses), IMB_INIT_ZEROS, 0, 0);
    if (!imb_ok(ctx)) { imb_textcls_free(m); return NULL; }
    return m;
}

void imb_textcls_free(imb_textcls *m) {
    if (!m) return;
    imb_backbone_free(m->bb);
    free(m);
}

imb_tensor *imb_textcls_forward(imb_ctx *ctx, imb_textcls *m, imb_tensor *ids, imb_tensor *mask) {
    if (!imb_ok(ctx)) return NULL;
    if (!ids || ids->ndim != 2 || ids->dtype != IMB_I32 || ids->shape[1] < 1 || ids->shape[1] > m->max_len) {
        imb_fail(ctx, "textcls: ids must be i32 [B, L] with 1 <= L <= max_len %d", m->max_len);
        return NULL;
    }
    int64_t B = ids->shape[0], L = ids->shape[1];
    if (mask && (mask->ndim != 2 || mask->dtype != IMB_F32 || mask->shape[0] != B || mask->shape[1] != L)) {
        imb_fail(ctx, "textcls: mask must be f32 [%lld, %lld] like the ids", (long long)B, (long long)L);
        return NULL;
    }
    imb_tensor *tokens = imb_embedding(ctx, m->embed_w, ids);
    imb_grid g = { (int)L, 1, mask };
    imb_backbone_out out;
    if (imb_backbone_forward(ctx, m->bb, tokens, g, &out)) return NULL;
    /* the skeleton's pooled vector is the class token for presets that have one; text pools
     * every real token of the (normalised) last stage */
    imb_tensor *pooled = imb_mean_pool(ctx, out.feats[out.nstages - 1], mask);
    return imb_linear(ctx, pooled, m->head_w, m->head_b);
}

imb_tensor *imb_textcls_loss(imb_ctx *ctx, imb_textcls *m, imb_tensor *logits, imb_tensor *labels, float smoothing,
                             imb_aux_terms *terms) {
    imb_tensor *loss = imb_cross_entropy(ctx, logits, labels, smoothing);
    imb_tensor *aux = imb_backbone_aux_loss(ctx, m->bb, labels, terms);
    return aux ? imb_add(ctx, loss, aux) : loss;
}
