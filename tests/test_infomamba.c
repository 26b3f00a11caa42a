/* InfoMamba tests: the concept kernels against host references (candidate buckets, the sparse
 * assignment's rows, budgets and order, aggregation and scatter against dense products, entropy),
 * bad shapes, every ablation building and training a step, the hash loss (<= 0 at init, falling on
 * a toy problem) and the loss terms' bookkeeping. Finite-difference checks of the ops and of whole
 * blocks live in the op table (cases_concept.c, cases_model.c). */
#include "backbone.h"
#include "concept.h"
#include "ctx.h"
#include "elementwise.h"
#include "imagecls.h"
#include "loss.h"
#include "optim.h"
#include "rng.h"
#include <stdio.h>
#include "checkrun.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static imb_ctx *cpu_ctx(int training) {
    char e[256];
    imb_ctx *c = imb_ctx_new(IMB_CPU, 1, e, sizeof e);
    ck_assert_msg(c != NULL, "%s", e);
    imb_step_begin(c, training);
    return c;
}

static float *normals(int64_t n, uint64_t stream, float scale) {
    float *h = malloc(sizeof *h * (size_t)n);
    for (int64_t i = 0; i < n; i++) h[i] = scale * imb_rng_normal(11, stream, (uint64_t)i);
    return h;
}

static imb_tensor *in(imb_ctx *c, const float *h, int ndim, const int64_t *shape) {
    return imb_input(c, IMB_F32, ndim, shape, h);
}

/* ---- candidate buckets ---- */

/* bucket rows of cand [Bk, K + 1] from 1-D centres and embeddings */
static void check_buckets(const float *C, int K, const float *E, int Bk, int kmin, const int32_t *want) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *cand = imb_concept_buckets(c, in(c, C, 2, IMB_SHAPE(K, 1)), in(c, E, 2, IMB_SHAPE(Bk, 1)), kmin);
    ck_assert_msg(cand != NULL, "%s", imb_error(c));
    ck_assert_int_eq(cand->shape[0], Bk);
    ck_assert_int_eq(cand->shape[1], K + 1);
    for (int i = 0; i < Bk * (K + 1); i++)
        ck_assert_msg(imb_i32(cand)[i] == want[i], "bucket %d entry %d: %d, want %d", i / (K + 1), i % (K + 1),
                      imb_i32(cand)[i], want[i]);
    imb_ctx_free(c);
}

START_TEST(buckets_hand_computed) {
    /* centres 0, 1, 2, 10, 11; embeddings 0.4, 10.6, 50: bucket 0 owns {0, 1, 2}, bucket 1 owns
     * {3, 4}, bucket 2 owns nothing and lists its kmin = 2 nearest, {3, 4} */
    const float C[5] = { 0, 1, 2, 10, 11 };
    check_buckets(C, 5, (const float[]){ 0.4f, 10.6f, 50 }, 3, 2,
                  (const int32_t[]){ 3, 0, 1, 2, -1, -1, 2, 3, 4, -1, -1, -1, 2, 3, 4, -1, -1, -1 });
    /* kmin 3: bucket 1 (two members) falls back to its 3 nearest, {2, 3, 4} */
    check_buckets(C, 5, (const float[]){ 1.0f, 10.6f, 50 }, 3, 3,
                  (const int32_t[]){ 3, 0, 1, 2, -1, -1, 3, 2, 3, 4, -1, -1, 3, 2, 3, 4, -1, -1 });
    /* centre 11 is as far from 10 as from 12: the lower bucket owns it */
    check_buckets(C, 5, (const float[]){ 10, 12, 50 }, 3, 1,
                  (const int32_t[]){ 5, 0, 1, 2, 3, 4, 1, 4, -1, -1, -1, -1, 1, 4, -1, -1, -1, -1 });
    /* a tie at the fallback's boundary: around 3, centres 1 and 5 are 2 away, -1 and 7 are 4 away;
     * the third pick is the lower of the tied pair, -1 (concept 0) */
    check_buckets((const float[]){ -1, 1, 5, 7 }, 4, (const float[]){ 0, 100, 3 }, 3, 3,
                  (const int32_t[]){ 3, 0, 1, 2, -1, 3, 1, 2, 3, -1, 3, 0, 1, 2, -1 });
}
END_TEST

/* ---- the sparse assignment against a host reference ---- */

typedef struct { int64_t B, L, D, K, Bk; int kmin, kmax; float scale; } asg_cfg;

/* reference of one token: kept concepts in descending order and their weights; returns k_i */
static int ref_row(const asg_cfg *a, const float *q, const float *C, const float *h, const int32_t *cand, int *kc,
                   double *kv) {
    int bucket = 0;
    for (int b = 1; b < a->Bk; b++)
        if (h[b] > h[bucket]) bucket = b;
    const int32_t *row = cand + bucket * (a->K + 1);
    int n = row[0];
    double *s = malloc(sizeof *s * (size_t)n), mx = -INFINITY, Z = 0, H = 0;
    for (int j = 0; j < n; j++) {
        double acc = 0;
        for (int d = 0; d < a->D; d++) acc += (double)q[d] * C[row[1 + j] * a->D + d];
        s[j] = acc * a->scale;
        mx = fmax(mx, s[j]);
    }
    for (int j = 0; j < n; j++) Z += exp(s[j] - mx);
    for (int j = 0; j < n; j++) {
        double p = exp(s[j] - mx) / Z;
        if (p > 0) H -= p * log(p);
    }
    double u = n > 1 ? H / log(n) : 0;
    int k = (int)round(a->kmin + u * (a->kmax - a->kmin));
    k = k < 1 ? 1 : k > n ? n : k;
    double Zk = 0;
    for (int t = 0; t < k; t++) {
        int best = -1;
        for (int j = 0; j < n; j++)
            if (s[j] > -INFINITY && (best < 0 || s[j] > s[best])) best = j;
        kc[t] = row[1 + best];
        kv[t] = exp(s[best] - mx);
        Zk += kv[t];
        s[best] = -INFINITY;
    }
    for (int t = 0; t < k; t++) kv[t] /= Zk;
    free(s);
    return k;
}

static void check_assign(const asg_cfg *a, const float *mask) {
    int64_t nq = a->B * a->L * a->D, nh = a->B * a->L * a->Bk;
    float *q = normals(nq, 1, 1), *C = normals(a->K * a->D, 2, 1), *h = normals(nh, 3, 1), *E = normals(a->Bk * a->D, 4, 1);
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *cand = imb_concept_buckets(c, in(c, C, 2, IMB_SHAPE(a->K, a->D)), in(c, E, 2, IMB_SHAPE(a->Bk, a->D)),
                                           a->kmin);
    imb_tensor *idx, *val = imb_concept_assign(c, in(c, q, 3, IMB_SHAPE(a->B, a->L, a->D)),
                                               in(c, C, 2, IMB_SHAPE(a->K, a->D)), in(c, h, 3, IMB_SHAPE(a->B, a->L, a->Bk)),
                                               cand, mask ? in(c, mask, 2, IMB_SHAPE(a->B, a->L)) : NULL, a->kmin,
                                               a->kmax, a->scale, &idx);
    ck_assert_msg(val != NULL, "%s", imb_error(c));
    ck_assert_int_eq(val->shape[2], a->kmax);
    int kc[64], budgets[65] = { 0 };
    double kv[64];
    for (int64_t r = 0; r < a->B * a->L; r++) {
        const int32_t *ir = imb_i32(idx) + r * a->kmax;
        const float *vr = imb_f32(val) + r * a->kmax;
        if (mask && mask[r] == 0) {
            for (int j = 0; j < a->kmax; j++) {
                ck_assert_int_eq(ir[j], -1);
                ck_assert(vr[j] == 0.0f);
            }
            continue;
        }
        int k = ref_row(a, q + r * a->D, C, h + r * a->Bk, imb_i32(cand), kc, kv);
        budgets[k]++;
        double sum = 0;
        int nz = 0;
        for (int j = 0; j < a->kmax; j++) {
            if (j < k) {
                ck_assert_msg(ir[j] == kc[j], "token %lld slot %d: concept %d, reference %d", (long long)r, j, ir[j], kc[j]);
                ck_assert_msg(fabs(vr[j] - kv[j]) < 1e-6, "token %lld slot %d: %g vs %g", (long long)r, j, vr[j], kv[j]);
                ck_assert(j == 0 || vr[j] <= vr[j - 1]);   /* descending */
            } else {
                ck_assert_int_eq(ir[j], -1);
                ck_assert(vr[j] == 0.0f);
            }
            nz += vr[j] != 0.0f;
            sum += vr[j];
        }
        /* a row sums to 1 with at most k_i non-zero entries */
        ck_assert_msg(fabs(sum - 1.0) < 1e-5, "token %lld sums to %g", (long long)r, sum);
        ck_assert_int_le(nz, k);
        ck_assert_int_ge(k, 1);
        ck_assert_int_le(k, a->kmax);
    }
    /* the budget really varies with the token (not all rows at one k) */
    int distinct = 0;
    for (int k = 1; k <= a->kmax; k++) distinct += budgets[k] > 0;
    ck_assert_msg(distinct >= 2, "every token got the same budget");
    free(q); free(C); free(h); free(E);
    imb_ctx_free(c);
}

START_TEST(assign_matches_reference) {
    /* scale 2: peaked and flat rows both occur, so budgets spread over kmin..kmax */
    asg_cfg a = { 3, 40, 8, 24, 3, 2, 8, 1.0f };
    check_assign(&a, NULL);
    asg_cfg b = { 2, 30, 5, 9, 4, 1, 5, 0.7f };   /* small buckets: k clamped to |S_i| */
    float mask[60];
    for (int i = 0; i < 60; i++) mask[i] = (i % 7) != 3;
    check_assign(&b, mask);
}
END_TEST

/* ---- aggregation and scatter against dense products ---- */

START_TEST(aggregate_scatter_dense_reference) {
    const int64_t B = 2, L = 9, S = 3, K = 5, D = 4;
    float *v = normals(B * L * S, 5, 1), *x = normals(B * L * D, 6, 1), *z = normals(B * K * D, 7, 1);
    int32_t idx[2 * 9 * 3];
    float mask[18];
    for (int i = 0; i < B * L * S; i++) {
        idx[i] = (int32_t)imb_rng_below(3, 9, (uint64_t)i, (uint32_t)(K + 1)) - 1;   /* -1 .. K-1 */
        v[i] = fabsf(v[i]);
    }
    for (int i = 0; i < B * L; i++) mask[i] = i % 5 != 2;
    /* dense A [B, L, K] from the slots (a repeated concept adds), padding rows zero */
    double A[2 * 9 * 5] = { 0 };
    for (int64_t r = 0; r < B * L; r++)
        for (int64_t j = 0; j < S; j++)
            if (idx[r * S + j] >= 0 && mask[r]) A[r * K + idx[r * S + j]] += v[r * S + j];
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *ti = imb_input(c, IMB_I32, 3, IMB_SHAPE(B, L, S), idx), *tv = in(c, v, 3, IMB_SHAPE(B, L, S));
    imb_tensor *tm = in(c, mask, 2, IMB_SHAPE(B, L));
    imb_tensor *Z = imb_concept_aggregate(c, ti, tv, in(c, x, 3, IMB_SHAPE(B, L, D)), tm, (int)K, 0.01f);
    imb_tensor *G = imb_concept_scatter(c, ti, tv, in(c, z, 3, IMB_SHAPE(B, K, D)), tm);
    ck_assert_msg(Z && G, "%s", imb_error(c));
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++) {
            double cnt = 0.01;
            for (int64_t i = 0; i < L; i++) cnt += A[(b * L + i) * K + k];
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t i = 0; i < L; i++) s += A[(b * L + i) * K + k] * x[(b * L + i) * D + d];
                ck_assert_msg(fabs(imb_f32(Z)[(b * K + k) * D + d] - s / cnt) < 1e-5, "Z[%lld,%lld,%lld]", (long long)b,
                              (long long)k, (long long)d);
            }
        }
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < L; i++)
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += A[(b * L + i) * K + k] * z[(b * K + k) * D + d];
                ck_assert(fabs(imb_f32(G)[(b * L + i) * D + d] - s) < 1e-5);
            }
    imb_ctx_free(c);
    free(v); free(x); free(z);
}
END_TEST

START_TEST(entropy_values) {
    const float p[8] = { 0.5f, 0.5f, 0, 0, 1, 0, 0, 0 };
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *h = imb_entropy(c, in(c, p, 2, IMB_SHAPE(2, 4)));
    ck_assert_msg(h != NULL, "%s", imb_error(c));
    ck_assert_int_eq(h->ndim, 1);
    ck_assert(fabs(imb_f32(h)[0] - log(2.0)) < 1e-6);
    ck_assert(imb_f32(h)[1] == 0.0f);
    imb_ctx_free(c);
}
END_TEST

START_TEST(bad_shapes_are_errors) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *q = imb_full(c, 3, IMB_SHAPE(2, 3, 4), 1), *C = imb_full(c, 2, IMB_SHAPE(5, 4), 1);
    imb_tensor *h = imb_full(c, 3, IMB_SHAPE(2, 3, 2), 1), *E = imb_full(c, 2, IMB_SHAPE(2, 4), 1), *idx;
    imb_tensor *cand = imb_concept_buckets(c, C, E, 2);
    ck_assert(cand != NULL);
    ck_assert(imb_concept_assign(c, q, C, h, cand, NULL, 3, 2, 1.0f, &idx) == NULL);
    ck_assert_msg(strstr(imb_error(c), "kmin") != NULL, "%s", imb_error(c));
    imb_error_clear(c);
    ck_assert(imb_concept_assign(c, q, imb_full(c, 2, IMB_SHAPE(5, 3), 1), h, cand, NULL, 1, 2, 1.0f, &idx) == NULL);
    ck_assert_msg(strstr(imb_error(c), "concept_assign: centres must be [K, D]") != NULL, "%s", imb_error(c));
    imb_error_clear(c);
    ck_assert(imb_concept_buckets(c, C, E, 6) == NULL);
    ck_assert_msg(strstr(imb_error(c), "kmin 6 outside") != NULL, "%s", imb_error(c));
    imb_error_clear(c);
    imb_tensor *v = imb_full(c, 3, IMB_SHAPE(2, 3, 4), 1);
    ck_assert(imb_concept_aggregate(c, NULL, v, q, NULL, 5, 1e-3f) == NULL);   /* dense rows need S = K */
    ck_assert_msg(strstr(imb_error(c), "dense") != NULL, "%s", imb_error(c));
    imb_error_clear(c);
    ck_assert(imb_concept_scatter(c, NULL, imb_full(c, 3, IMB_SHAPE(2, 3, 5), 1), imb_full(c, 3, IMB_SHAPE(3, 5, 4), 1),
                                  NULL) == NULL);
    ck_assert_msg(strstr(imb_error(c), "concept_scatter") != NULL, "%s", imb_error(c));
    imb_ctx_free(c);
}
END_TEST


/* ---- the model: ablations, loss terms, the hash loss ---- */

/* a tiny image classifier: 8x8 single-channel images, 2x2 patches (a 4x4 grid), 3 classes */
typedef struct { imb_ctx *ctx; imb_imagecls *m; int64_t params, mixer_params; } tiny_model;

static int tiny_build(tiny_model *t, const char *opts, char *err, size_t errn) {
    char spec[256];
    snprintf(spec, sizeof spec, "infomamba-nano:dim=16,depth=2,mlp_ratio=2,K=8,buckets=2,d_state=2%s%s", *opts ? "," : "",
             opts);
    imb_backbone_cfg cfg;
    memset(t, 0, sizeof *t);
    if (imb_backbone_parse(spec, &cfg, err, errn)) return -1;
    t->ctx = imb_ctx_new(IMB_CPU, 3, err, errn);
    t->m = imb_imagecls_create(t->ctx, &cfg, 1, 8, 2, 3);
    if (!t->m || imb_params_alloc(t->ctx)) {
        snprintf(err, errn, "%s", imb_error(t->ctx));
        return -1;
    }
    for (int i = 0; i < t->ctx->params.n; i++) {
        int64_t n = imb_numel(t->ctx->params.p[i].t);
        t->params += n;
        if (strstr(t->ctx->params.p[i].name, ".mixer.")) t->mixer_params += n;
    }
    return 0;
}

static void tiny_free(tiny_model *t) {
    imb_imagecls_free(t->m);
    imb_ctx_free(t->ctx);
}

static int has_param(const tiny_model *t, const char *name) { return imb_param_find(t->ctx, name) != NULL; }

/* one training step (forward, task + auxiliary loss, backward, AdamW); returns the loss and
 * fills terms */
static float tiny_step(tiny_model *t, imb_aux_terms *terms, float *tvals) {
    float x[4 * 64];
    int32_t y[4] = { 0, 1, 2, 1 };
    for (int i = 0; i < 4 * 64; i++) x[i] = imb_rng_normal(5, 77, (uint64_t)i);
    imb_ctx *c = t->ctx;
    imb_step_begin(c, 1);
    imb_params_zero_grad(c);
    imb_tensor *labels = imb_input(c, IMB_I32, 1, IMB_SHAPE(4), y);
    imb_tensor *logits = imb_imagecls_forward(c, t->m, imb_input(c, IMB_F32, 4, IMB_SHAPE(4, 1, 8, 8), x));
    imb_tensor *l = imb_cross_entropy(c, logits, labels, 0.0f);
    imb_tensor *aux = imb_backbone_aux_loss(c, t->m->bb, labels, terms);
    if (aux) l = imb_add(c, l, aux);
    float v = NAN;
    if (l && !imb_to_host(c, l, &v, 0))
        for (int i = 0; i < terms->n; i++) imb_to_host(c, terms->term[i], &tvals[i], 0);
    imb_backward(c, l);
    imb_adamw opt = imb_adamw_default(0.05f);
    imb_adamw_step(c, &opt, 1e-3f);
    ck_assert_msg(imb_ok(c), "%s", imb_error(c));
    return v;
}

static int term_index(const imb_aux_terms *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->name[i], name)) return i;
    return -1;
}

static const struct ablation {
    const char *opts;
    const char *terms;   /* the loss terms it keeps, in order */
} ablations[] = {
    { "", "mi red hash" },
    { "imf=off", "mi red hash" },
    { "ssm=off", "mi hash" },
    { "global=off", "mi" },
    { "mixer=off", "" },
    { "assign=static", "mi red" },
    { "mix=off", "mi red hash" },
    { "lambda_mi=0", "red hash" },
    { "lambda_red=0,lambda_hash=0", "mi" },
    { "K=6,buckets=3,kmin=1,kmax=4,tau=0.3,tau_nce=0.2,d_state=3,directions=4", "mi red hash" },
};

START_TEST(ablation_trains) {
    const struct ablation *a = &ablations[_i];
    tiny_model t, full;
    char e[512];
    ck_assert_msg(!tiny_build(&t, a->opts, e, sizeof e), "%s: %s", a->opts, e);
    ck_assert_msg(!tiny_build(&full, "", e, sizeof e), "%s", e);
    imb_aux_terms terms;
    float tv[IMB_MAX_AUX];
    float l0 = tiny_step(&t, &terms, tv);
    ck_assert_msg(isfinite(l0), "%s: loss %g", a->opts, l0);
    char got[128] = "";
    for (int i = 0; i < terms.n; i++) {
        ck_assert_msg(isfinite(tv[i]), "%s: term %s = %g", a->opts, terms.name[i], tv[i]);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", terms.name[i]);
    }
    ck_assert_msg(!strcmp(got, a->terms), "%s: terms '%s', expected '%s'", a->opts, got, a->terms);
    for (int s = 0; s < 3; s++) ck_assert(isfinite(tiny_step(&t, &terms, tv)));
    /* every gradient finite after the steps */
    for (size_t i = 0; i < t.ctx->params.total; i++) ck_assert(isfinite(t.ctx->params.grad[i]));
    /* each ablation removes what it names and nothing else */
    const char *o = a->opts;
    if (!strcmp(o, "imf=off")) {
        ck_assert(!has_param(&t, "blocks.0.mixer.gamma") && !has_param(&t, "blocks.0.mixer.fuse_r") &&
                  !has_param(&t, "blocks.0.mixer.fuse_f"));
        ck_assert(has_param(&t, "blocks.0.mixer.centres") && has_param(&t, "blocks.0.mixer.A_log"));
        ck_assert_int_eq(imb_param_find(t.ctx, "blocks.0.mixer.x_proj.weight")->t->shape[1], 32);   /* reads u only */
        ck_assert_int_eq(imb_param_find(full.ctx, "blocks.0.mixer.x_proj.weight")->t->shape[1], 64);   /* [u; g] */
    } else if (!strcmp(o, "ssm=off")) {
        ck_assert(!has_param(&t, "blocks.0.mixer.A_log") && !has_param(&t, "blocks.0.mixer.conv.weight"));
        ck_assert(has_param(&t, "blocks.0.mixer.centres") && has_param(&t, "blocks.0.mixer.fuse_f"));
        ck_assert_int_eq(imb_param_find(t.ctx, "blocks.0.mixer.in_proj.weight")->t->shape[0], 32);   /* z only */
    } else if (!strcmp(o, "global=off")) {
        ck_assert(!has_param(&t, "blocks.0.mixer.centres") && !has_param(&t, "blocks.0.mixer.g_proj.weight") &&
                  !has_param(&t, "blocks.0.mixer.fuse_f"));
        ck_assert(has_param(&t, "blocks.0.mixer.A_log") && has_param(&t, "blocks.0.mixer.fuse_r"));
    } else if (!strcmp(o, "mixer=off")) {
        ck_assert_int_eq(t.mixer_params, 0);
        ck_assert(has_param(&t, "blocks.0.mlp.fc1.weight"));
    } else if (!strcmp(o, "assign=static")) {
        ck_assert(has_param(&t, "blocks.0.mixer.static_assign") && !has_param(&t, "blocks.0.mixer.centres") &&
                  !has_param(&t, "blocks.0.mixer.hash.weight"));
        ck_assert_int_eq(imb_param_find(t.ctx, "blocks.0.mixer.static_assign")->t->shape[0], 16);   /* 4x4 grid */
    } else if (!strcmp(o, "mix=off")) {
        /* M stays the identity: frozen */
        ck_assert_int_eq(t.params, full.params);
        imb_param *m = imb_param_find(t.ctx, "blocks.1.mixer.mix");
        for (int i = 0; i < 64; i++) ck_assert(imb_f32(m->t)[i] == (i / 8 == i % 8 ? 1.0f : 0.0f));
    } else if (!strcmp(o, "lambda_mi=0")) {
        ck_assert(!has_param(&t, "infomamba.prototypes"));
        ck_assert(has_param(&t, "infomamba.stages.0.proj_g.weight"));   /* the redundancy term uses the heads */
        ck_assert_int_eq(t.mixer_params, full.mixer_params);
    } else if (*o == 'K') {
        ck_assert_int_eq(imb_param_find(t.ctx, "blocks.0.mixer.centres")->t->shape[0], 6);
        ck_assert_int_eq(imb_param_find(t.ctx, "blocks.0.mixer.A_log")->t->shape[1], 3);
    }
    if (*o && strcmp(o, "mix=off") && !strstr(o, "lambda")) ck_assert_int_ne(t.params, full.params);
    tiny_free(&t);
    tiny_free(&full);
}
END_TEST

START_TEST(term_weights) {
    tiny_model t;
    char e[512];
    ck_assert_msg(!tiny_build(&t, "lambda_mi=0.5,lambda_red=0.25,lambda_hash=2", e, sizeof e), "%s", e);
    imb_aux_terms terms;
    float tv[IMB_MAX_AUX];
    tiny_step(&t, &terms, tv);
    ck_assert_int_eq(terms.n, 3);
    ck_assert(terms.weight[term_index(&terms, "mi")] == 0.5f);
    ck_assert(terms.weight[term_index(&terms, "red")] == 0.25f);
    ck_assert(terms.weight[term_index(&terms, "hash")] == 2.0f);
    tiny_free(&t);
    /* the defaults: 0.1, 0.01, 0.01 */
    ck_assert_msg(!tiny_build(&t, "", e, sizeof e), "%s", e);
    tiny_step(&t, &terms, tv);
    ck_assert(terms.weight[term_index(&terms, "mi")] == 0.1f);
    ck_assert(terms.weight[term_index(&terms, "red")] == 0.01f);
    ck_assert(terms.weight[term_index(&terms, "hash")] == 0.01f);
    /* the InfoNCE term starts near log(classes) or above (random prototypes), the redundancy term
     * is a mean of squared correlations */
    ck_assert(tv[term_index(&terms, "mi")] > 0.5f);
    ck_assert(tv[term_index(&terms, "red")] >= 0.0f && tv[term_index(&terms, "red")] <= 1.0f);
    tiny_free(&t);
    /* no labels: no InfoNCE */
    tiny_build(&t, "", e, sizeof e);
    imb_step_begin(t.ctx, 1);
    float x[4 * 64] = { 0 };
    for (int i = 0; i < 4 * 64; i++) x[i] = imb_rng_normal(5, 78, (uint64_t)i);
    imb_imagecls_forward(t.ctx, t.m, imb_input(t.ctx, IMB_F32, 4, IMB_SHAPE(4, 1, 8, 8), x));
    ck_assert(imb_backbone_aux_loss(t.ctx, t.m->bb, NULL, &terms) != NULL);
    ck_assert_int_eq(term_index(&terms, "mi"), -1);
    ck_assert_int_ge(term_index(&terms, "hash"), 0);
    tiny_free(&t);
}
END_TEST

START_TEST(bad_options) {
    static const struct { const char *opts, *msg; } bad[] = {
        { "imf=maybe", "option imf=maybe: expected on or off" },
        { "assign=dense", "option assign=dense: expected dynamic or static" },
        { "kmin=5,kmax=4", "kmin 5 > kmax 4" },
        { "K=3,kmin=4,kmax=6", "kmin 4 > K 3" },
        { "directions=3", "directions=3" },
        { "tau=0", "option tau=0: expected a number > 0" },
        { "lambda_mi=-1", "option lambda_mi=-1" },
        { "d_state=0", "option d_state=0: expected an integer" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tiny_model t;
        char e[512];
        ck_assert_msg(tiny_build(&t, bad[i].opts, e, sizeof e) != 0, "%s accepted", bad[i].opts);
        ck_assert_msg(strstr(e, bad[i].msg) != NULL, "%s: '%s'", bad[i].opts, e);
        tiny_free(&t);
    }
}
END_TEST

/* L_hash = -(H(mean p) - mean H(p)) is <= 0 for any heads (entropy is concave), and training the
 * hash heads on tokens from a few clusters drives it towards -log(buckets) */
START_TEST(hash_loss_falls) {
    char e[256];
    imb_backbone_cfg cfg;
    ck_assert(!imb_backbone_parse("infomamba-nano:dim=16,depth=1,mlp_ratio=1,K=8,buckets=4,d_state=2,lambda_mi=0,"
                                  "lambda_red=0,lambda_hash=1", &cfg, e, sizeof e));
    cfg.pos_h = 4;
    cfg.pos_w = 4;
    imb_ctx *c = imb_ctx_new(IMB_CPU, 5, e, sizeof e);
    imb_backbone *bb = imb_backbone_create(c, &cfg);
    ck_assert_msg(bb && !imb_params_alloc(c), "%s", imb_error(c));
    /* 8 sequences of 16 tokens, each token near one of 4 random centres */
    float *ctr = normals(4 * 16, 21, 3.0f), *x = normals(8 * 16 * 16, 22, 0.3f);
    for (int i = 0; i < 8 * 16; i++)
        for (int d = 0; d < 16; d++) x[i * 16 + d] += ctr[(i % 4) * 16 + d];
    imb_adamw opt = imb_adamw_default(0.0f);
    float first = 0, last = 0;
    for (int step = 0; step < 40; step++) {
        imb_step_begin(c, 1);
        imb_params_zero_grad(c);
        imb_backbone_out out;
        ck_assert(!imb_backbone_forward(c, bb, in(c, x, 3, IMB_SHAPE(8, 16, 16)), (imb_grid){ 4, 4, NULL }, &out));
        imb_aux_terms terms;
        imb_tensor *l = imb_backbone_aux_loss(c, bb, NULL, &terms);
        ck_assert_msg(l && terms.n == 1 && !strcmp(terms.name[0], "hash"), "%s", imb_error(c));
        float v;
        imb_to_host(c, l, &v, 0);
        ck_assert_msg(v <= 1e-6f && v >= -logf(4.0f) - 1e-5f, "step %d: L_hash %g outside [-log 4, 0]", step, v);
        if (step == 0) first = v;
        last = v;
        imb_backward(c, l);
        imb_adamw_step(c, &opt, 2e-2f);
    }
    printf("hash loss: %.4f -> %.4f over 40 steps (bound -log 4 = %.4f)\n", first, last, -logf(4.0f));
    ck_assert_msg(last < first - 0.3f, "L_hash %g -> %g: did not fall", first, last);
    free(ctr);
    free(x);
    imb_backbone_free(bb);
    imb_ctx_free(c);
}
END_TEST

/* Cost linear in L: the forward's counted FLOPs grow 4x, less the fixed per-concept work, when the
 * grid grows 4x (attention's would grow ~16x in its L^2 terms) */
START_TEST(flops_linear_in_tokens) {
    char e[256];
    imb_backbone_cfg cfg;
    ck_assert(!imb_backbone_parse("infomamba-nano:dim=16,depth=2,K=8,buckets=2,d_state=2", &cfg, e, sizeof e));
    cfg.pos_h = cfg.pos_w = 8;
    imb_ctx *c = imb_ctx_new(IMB_CPU, 5, e, sizeof e);
    imb_backbone *bb = imb_backbone_create(c, &cfg);
    ck_assert_msg(bb && !imb_params_alloc(c), "%s", imb_error(c));
    double f[2];
    for (int k = 0; k < 2; k++) {
        int side = k ? 16 : 8;
        float *x = normals(2 * side * side * 16, 30 + k, 1.0f);
        imb_step_begin(c, 0);
        c->flops = 0;
        imb_backbone_out out;
        ck_assert(!imb_backbone_forward(c, bb, in(c, x, 3, IMB_SHAPE(2, side * side, 16)), (imb_grid){ side, side, NULL },
                                        &out));
        f[k] = c->flops;
        free(x);
    }
    printf("forward FLOPs: %.0f at 8x8 tokens, %.0f at 16x16 (ratio %.3f)\n", f[0], f[1], f[1] / f[0]);
    ck_assert_msg(f[1] / f[0] > 3.8 && f[1] / f[0] <= 4.0, "FLOPs ratio %g for 4x the tokens", f[1] / f[0]);
    imb_backbone_free(bb);
    imb_ctx_free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("infomamba");
    TCase *k = tcase_create("kernels");
    tcase_add_test(k, buckets_hand_computed);
    tcase_add_test(k, assign_matches_reference);
    tcase_add_test(k, aggregate_scatter_dense_reference);
    tcase_add_test(k, entropy_values);
    tcase_add_test(k, bad_shapes_are_errors);
    suite_add_tcase(s, k);
    TCase *m = tcase_create("model");
    tcase_set_timeout(m, 120);
    tcase_add_loop_test(m, ablation_trains, 0, (int)(sizeof ablations / sizeof *ablations));
    tcase_add_test(m, term_weights);
    tcase_add_test(m, bad_options);
    tcase_add_test(m, hash_loss_falls);
    tcase_add_test(m, flops_linear_in_tokens);
    suite_add_tcase(s, m);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
