/* Op-table cases: norms, softmax, attention, embedding and pooling. */
#include "optest.h"
#include "attention.h"
#include "embedding.h"
#include "norm.h"
#include "softmax.h"
#include <math.h>

static void ln_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 3, 7); OPT_P(c, t, "w", 1, 7); OPT_P(c, t, "b", 1, 7); }
static imb_tensor *ln_fwd(imb_ctx *c, optest *t) { return imb_layernorm(c, t->p[0], t->p[1], t->p[2], 1e-5f); }

static void ln_plain_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 3, 5, 9); }
static imb_tensor *ln_plain_fwd(imb_ctx *c, optest *t) { return imb_layernorm(c, t->p[0], NULL, NULL, 1e-5f); }

static void rms_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 4, 11); OPT_P(c, t, "w", 1, 11); }
static imb_tensor *rms_fwd(imb_ctx *c, optest *t) { return imb_rmsnorm(c, t->p[0], t->p[1], 1e-6f); }

static void sm_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 3, 4, 9); }
static imb_tensor *sm_fwd(imb_ctx *c, optest *t) { return imb_softmax(c, t->p[0], NULL); }

/* [3, 7], broadcast over x's leading dim; each row keeps at least two entries */
static const float sm_mask[21] = {
    0.0f, -INFINITY, 0.5f, 0.0f, -INFINITY, -1.0f, 0.0f,
    -INFINITY, -INFINITY, 0.0f, 0.25f, -INFINITY, -INFINITY, -INFINITY,
    0.0f, 0.0f, 0.0f, -2.0f, 0.0f, 0.0f, -INFINITY,
};
static void sm_masked_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 2, 3, 7); }
static imb_tensor *sm_masked_fwd(imb_ctx *c, optest *t) {
    return imb_softmax(c, t->p[0], imb_input(c, IMB_F32, 2, IMB_SHAPE(3, 7), sm_mask));
}

/* B=2, H=2, Dh=4 */
static void attn_setup(imb_ctx *c, optest *t) {
    OPT_P(c, t, "q", 1, 2, 5, 8); OPT_P(c, t, "k", 1, 2, 7, 8); OPT_P(c, t, "v", 1, 2, 7, 8);
}
static imb_tensor *attn_fwd(imb_ctx *c, optest *t) { return imb_attention(c, t->p[0], t->p[1], t->p[2], 2, NULL, 0, 0); }

/* batch 0 pads its tail, batch 1 has holes; both keep some keys */
static const float attn_mask[14] = { 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1 };
static imb_tensor *attn_mask_fwd(imb_ctx *c, optest *t) {
    imb_tensor *m = imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 7), attn_mask);
    return imb_attention(c, t->p[0], t->p[1], t->p[2], 2, m, 0, 0);
}

static void attn_causal_setup(imb_ctx *c, optest *t) {
    OPT_P(c, t, "q", 1, 2, 6, 6); OPT_P(c, t, "k", 1, 2, 6, 6); OPT_P(c, t, "v", 1, 2, 6, 6);
}
static imb_tensor *attn_causal_fwd(imb_ctx *c, optest *t) {
    return imb_attention(c, t->p[0], t->p[1], t->p[2], 3, NULL, 1, 0.7f);
}
/* key 0 of batch 1 is padding, so that batch's first query has no key at all (zeros) */
static const float causal_mask[12] = { 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1 };
static imb_tensor *attn_causal_mask_fwd(imb_ctx *c, optest *t) {
    imb_tensor *m = imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 6), causal_mask);
    return imb_attention(c, t->p[0], t->p[1], t->p[2], 3, m, 1, 0);
}

static void emb_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "table", 1, 11, 6); }
static imb_tensor *emb_fwd(imb_ctx *c, optest *t) {
    /* 15 ids over 11 rows: some rows repeat (accumulation), some are never used */
    return imb_embedding(c, t->p[0], optest_ints(c, 0, 10, 21, 2, IMB_SHAPE(3, 5)));
}

static void pool_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 3, 5, 6); }
static imb_tensor *pool_fwd(imb_ctx *c, optest *t) { return imb_mean_pool(c, t->p[0], NULL); }
/* the last row has no token: its output and gradient are zeros */
static const float pool_mask[15] = { 1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0 };
static imb_tensor *pool_masked_fwd(imb_ctx *c, optest *t) {
    return imb_mean_pool(c, t->p[0], imb_input(c, IMB_F32, 2, IMB_SHAPE(3, 5), pool_mask));
}

const op_case optest_nn[] = {
    { "layernorm", ln_setup, ln_fwd, 0, 0 },
    { "layernorm_noaffine", ln_plain_setup, ln_plain_fwd, 0, 0 },
    { "rmsnorm", rms_setup, rms_fwd, 0, 0 },
    { "softmax", sm_setup, sm_fwd, 0, 0 },
    { "softmax_masked", sm_masked_setup, sm_masked_fwd, 0, 0 },
    { "attention", attn_setup, attn_fwd, 0, 0 },
    { "attention_keymask", attn_setup, attn_mask_fwd, 0, 0 },
    { "attention_causal", attn_causal_setup, attn_causal_fwd, 0, 0 },
    { "attention_causal_keymask", attn_causal_setup, attn_causal_mask_fwd, 0, 0 },
    { "embedding", emb_setup, emb_fwd, 0, 0 },
    { "mean_pool", pool_setup, pool_fwd, 0, 0 },
    { "mean_pool_masked", pool_setup, pool_masked_fwd, 0, 0 },
    { 0 },
};
