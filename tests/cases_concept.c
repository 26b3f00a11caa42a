/* Op-table cases: the concept-bottleneck ops (candidate buckets, sparse assignment, aggregation,
 * scatter) and row entropy. */
#include "optest.h"
#include "activation.h"
#include "concept.h"
#include "elementwise.h"
#include "softmax.h"

/* B = 2 rows of L = 5 tokens, width D = 6, K = 7 concepts, Bk = 3 buckets */
#define CB 2
#define CL 5
#define CD 6
#define CK 7
#define CBK 3

/* Candidate lists from fixed centres and embeddings: buckets depend on C only through argmins, so
 * the cases keep them away from the differentiable C (a finite-difference step must not move a
 * concept between buckets). kmin = 2 makes some bucket fall back to its nearest concepts. */
static imb_tensor *fixed_cand(imb_ctx *c, int kmin) {
    imb_tensor *C0 = optest_floats(c, -1, 1, 31, 2, IMB_SHAPE(CK, CD));
    imb_tensor *E = optest_floats(c, -1, 1, 32, 2, IMB_SHAPE(CBK, CD));
    return imb_concept_buckets(c, C0, E, kmin);
}

static void assign_setup(imb_ctx *c, optest *t) {
    OPT_P(c, t, "q", 1, CB, CL, CD);
    OPT_P(c, t, "C", 1, CK, CD);
}

/* the assignment weights themselves */
static imb_tensor *assign_val_fwd(imb_ctx *c, optest *t) {
    imb_tensor *idx, *hash = optest_floats(c, -1, 1, 33, 3, IMB_SHAPE(CB, CL, CBK));
    return imb_concept_assign(c, t->p[0], t->p[1], hash, fixed_cand(c, 2), NULL, 2, 4, 0.6f, &idx);
}

/* weights and indices together: A z for a fixed z, so parity also compares which concepts were kept */
static const float assign_mask[CB * CL] = { 1, 1, 0, 1, 1, 1, 1, 1, 0, 0 };
static imb_tensor *assign_scatter_fwd(imb_ctx *c, optest *t) {
    imb_tensor *idx, *hash = optest_floats(c, -1, 1, 34, 3, IMB_SHAPE(CB, CL, CBK));
    imb_tensor *mask = imb_input(c, IMB_F32, 2, IMB_SHAPE(CB, CL), assign_mask);
    imb_tensor *val = imb_concept_assign(c, t->p[0], t->p[1], hash, fixed_cand(c, 3), mask, 1, 3, 0.8f, &idx);
    return imb_concept_scatter(c, idx, val, optest_floats(c, -1, 1, 35, 3, IMB_SHAPE(CB, CK, 4)), mask);
}

/* aggregation weights are kept positive (squares), as assignment weights are */
static void agg_setup(imb_ctx *c, optest *t) {
    OPT_P(c, t, "v", 1, CB, CL, 3);
    OPT_P(c, t, "x", 1, CB, CL, CD);
}
static imb_tensor *agg_fwd(imb_ctx *c, optest *t) {
    /* -1 marks unused slots; a token may list a concept twice */
    imb_tensor *idx = optest_ints(c, -1, CK - 1, 36, 3, IMB_SHAPE(CB, CL, 3));
    return imb_concept_aggregate(c, idx, imb_mul(c, t->p[0], t->p[0]), t->p[1], NULL, CK, 0.1f);
}
static const float agg_mask[CB * CL] = { 1, 0, 1, 1, 1, 0, 1, 1, 1, 0 };
static imb_tensor *agg_masked_fwd(imb_ctx *c, optest *t) {
    imb_tensor *idx = optest_ints(c, -1, CK - 1, 37, 3, IMB_SHAPE(CB, CL, 3));
    imb_tensor *mask = imb_input(c, IMB_F32, 2, IMB_SHAPE(CB, CL), agg_mask);
    return imb_concept_aggregate(c, idx, imb_mul(c, t->p[0], t->p[0]), t->p[1], mask, CK, 0.1f);
}
/* dense rows (the Static-P ablation): softmax weights over all K concepts */
static void agg_dense_setup(imb_ctx *c, optest *t) {
    OPT_P(c, t, "p", 1, CB, CL, CK);
    OPT_P(c, t, "x", 1, CB, CL, CD);
}
static imb_tensor *agg_dense_fwd(imb_ctx *c, optest *t) {
    imb_tensor *mask = imb_input(c, IMB_F32, 2, IMB_SHAPE(CB, CL), agg_mask);
    return imb_concept_aggregate(c, NULL, imb_softmax(c, t->p[0], NULL), t->p[1], mask, CK, 1e-3f);
}

static void scatter_setup(imb_ctx *c, optest *t) {
    OPT_P(c, t, "v", 1, CB, CL, 3);
    OPT_P(c, t, "z", 1, CB, CK, CD);
}
static imb_tensor *scatter_fwd(imb_ctx *c, optest *t) {
    imb_tensor *idx = optest_ints(c, -1, CK - 1, 38, 3, IMB_SHAPE(CB, CL, 3));
    return imb_concept_scatter(c, idx, t->p[0], t->p[1], NULL);
}
static void scatter_dense_setup(imb_ctx *c, optest *t) {
    OPT_P(c, t, "v", 1, CB, CL, CK);
    OPT_P(c, t, "z", 1, CB, CK, CD);
}
static imb_tensor *scatter_dense_fwd(imb_ctx *c, optest *t) {
    imb_tensor *mask = imb_input(c, IMB_F32, 2, IMB_SHAPE(CB, CL), agg_mask);
    return imb_concept_scatter(c, NULL, t->p[0], t->p[1], mask);
}

/* entropy of softmax rows, and of a 1-D probability vector */
static void entropy_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 3, 4, 6); }
static imb_tensor *entropy_fwd(imb_ctx *c, optest *t) { return imb_entropy(c, imb_softmax(c, t->p[0], NULL)); }
static void entropy1_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "x", 1, 9); }
static imb_tensor *entropy1_fwd(imb_ctx *c, optest *t) { return imb_entropy(c, imb_softmax(c, t->p[0], NULL)); }

const op_case optest_concept[] = {
    { "concept_assign", assign_setup, assign_val_fwd, 0, 0 },
    { "concept_assign_scatter_mask", assign_setup, assign_scatter_fwd, 0, 0 },
    { "concept_aggregate", agg_setup, agg_fwd, 0, 0 },
    { "concept_aggregate_masked", agg_setup, agg_masked_fwd, 0, 0 },
    { "concept_aggregate_dense", agg_dense_setup, agg_dense_fwd, 0, 0 },
    { "concept_scatter", scatter_setup, scatter_fwd, 0, 0 },
    { "concept_scatter_dense_mask", scatter_dense_setup, scatter_dense_fwd, 0, 0 },
    { "entropy", entropy_setup, entropy_fwd, 0, 0 },
    { "entropy_1d", entropy1_setup, entropy1_fwd, 0, 0 },
    { 0 },
};
