/* NN op tests: bad inputs are errors, masking edge cases, hand-computed values. */
#include "attention.h"
#include "ctx.h"
#include "embedding.h"
#include "norm.h"
#include "softmax.h"
#include "checkrun.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static imb_ctx *cpu_ctx(void) {
    char e[256];
    imb_ctx *c = imb_ctx_new(IMB_CPU, 1, e, sizeof e);
    ck_assert_msg(c != NULL, "%s", e);
    imb_step_begin(c, 0);
    return c;
}

/* a tensor filled with 0.1, 0.2, ... (never all equal, never zero) */
static imb_tensor *ramp(imb_ctx *c, int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *h = malloc(sizeof *h * (size_t)n);
    for (int64_t i = 0; i < n; i++) h[i] = 0.1f * (float)(i % 13 + 1) - 0.3f * (float)(i % 3);
    imb_tensor *t = imb_input(c, IMB_F32, ndim, shape, h);
    free(h);
    return t;
}
#define RAMP(c, ...) ramp((c), IMB_NDIM(__VA_ARGS__), IMB_SHAPE(__VA_ARGS__))

/* the op returned NULL and the message holds want; clears the error for the next check */
#define EXPECT_FAIL(c, expr, want) do { \
        ck_assert_ptr_null(expr); \
        ck_assert_msg(strstr(imb_error(c), (want)) != NULL, "expected \"%s\" in \"%s\"", (want), imb_error(c)); \
        imb_error_clear(c); \
    } while (0)

START_TEST(norm_bad_inputs) {
    imb_ctx *c = cpu_ctx();
    EXPECT_FAIL(c, imb_layernorm(c, RAMP(c, 2, 5), RAMP(c, 4), NULL, 1e-5f), "layernorm: weight must be [C]");
    EXPECT_FAIL(c, imb_layernorm(c, RAMP(c, 2, 5), RAMP(c, 5), RAMP(c, 1, 5), 1e-5f), "layernorm: bias must be [C]");
    EXPECT_FAIL(c, imb_layernorm(c, RAMP(c, 2, 5), NULL, NULL, -1.0f), "eps");
    EXPECT_FAIL(c, imb_rmsnorm(c, RAMP(c, 2, 5), RAMP(c, 6), 1e-5f), "rmsnorm: weight must be [C]");
    EXPECT_FAIL(c, imb_layernorm(c, NULL, NULL, NULL, 1e-5f), "layernorm: input 0 is NULL");
    imb_ctx_free(c);
}
END_TEST

START_TEST(softmax_bad_mask) {
    imb_ctx *c = cpu_ctx();
    EXPECT_FAIL(c, imb_softmax(c, RAMP(c, 2, 3, 4), RAMP(c, 2, 4)), "softmax: mask must match the trailing dims");
    EXPECT_FAIL(c, imb_softmax(c, RAMP(c, 3, 4), RAMP(c, 2, 3, 4)), "softmax: mask must have x's shape");
    ck_assert_ptr_nonnull(imb_softmax(c, RAMP(c, 2, 3, 4), RAMP(c, 3, 4)));
    ck_assert_ptr_nonnull(imb_softmax(c, RAMP(c, 2, 3, 4), RAMP(c, 4)));
    imb_ctx_free(c);
}
END_TEST

START_TEST(attention_bad_inputs) {
    imb_ctx *c = cpu_ctx();
    EXPECT_FAIL(c, imb_attention(c, RAMP(c, 2, 3, 6), RAMP(c, 2, 4, 6), RAMP(c, 2, 4, 6), 4, NULL, 0, 0),
                "attention: 4 heads do not divide the 6 channels");
    EXPECT_FAIL(c, imb_attention(c, RAMP(c, 2, 3, 6), RAMP(c, 2, 4, 6), RAMP(c, 2, 4, 6), 0, NULL, 0, 0), "heads");
    EXPECT_FAIL(c, imb_attention(c, RAMP(c, 2, 3, 6), RAMP(c, 2, 4, 6), RAMP(c, 2, 4, 6), 2, NULL, 1, 0),
                "causal attention needs Lq == Lk (got Lq 3, Lk 4)");
    EXPECT_FAIL(c, imb_attention(c, RAMP(c, 2, 3, 6), RAMP(c, 2, 4, 6), RAMP(c, 2, 4, 6), 2, RAMP(c, 2, 3), 0, 0),
                "attention: key_mask must be [B, Lk]");
    EXPECT_FAIL(c, imb_attention(c, RAMP(c, 2, 3, 6), RAMP(c, 2, 4, 6), RAMP(c, 2, 4, 6), 2, RAMP(c, 1, 2, 4), 0, 0),
                "key_mask");
    EXPECT_FAIL(c, imb_attention(c, RAMP(c, 2, 3, 6), RAMP(c, 1, 4, 6), RAMP(c, 1, 4, 6), 2, NULL, 0, 0), "k must be");
    EXPECT_FAIL(c, imb_attention(c, RAMP(c, 2, 3, 6), RAMP(c, 2, 4, 6), RAMP(c, 2, 5, 6), 2, NULL, 0, 0), "v must");
    EXPECT_FAIL(c, imb_attention(c, RAMP(c, 6, 6), RAMP(c, 2, 4, 6), RAMP(c, 2, 4, 6), 2, NULL, 0, 0), "q must be");
    imb_ctx_free(c);
}
END_TEST

START_TEST(embedding_bad_ids) {
    imb_ctx *c = cpu_ctx();
    int32_t ids[6] = { 0, 3, 4, 1, 2, 12 };
    EXPECT_FAIL(c, imb_embedding(c, RAMP(c, 5, 3), imb_input(c, IMB_I32, 2, IMB_SHAPE(2, 3), ids)),
                "embedding: id 12 at position [1, 2] is out of range for a table of 5 rows");
    ids[5] = 0;
    ids[1] = -1;
    EXPECT_FAIL(c, imb_embedding(c, RAMP(c, 5, 3), imb_input(c, IMB_I32, 1, IMB_SHAPE(6), ids)),
                "id -1 at position [1]");
    EXPECT_FAIL(c, imb_embedding(c, RAMP(c, 5, 3), RAMP(c, 6)), "embedding: ids must be i32");
    EXPECT_FAIL(c, imb_embedding(c, RAMP(c, 15), imb_input(c, IMB_I32, 1, IMB_SHAPE(6), ids)), "table must be [V, C]");
    imb_ctx_free(c);
}
END_TEST

START_TEST(mean_pool_bad_inputs) {
    imb_ctx *c = cpu_ctx();
    EXPECT_FAIL(c, imb_mean_pool(c, RAMP(c, 2, 3, 4), RAMP(c, 2, 4)), "mean_pool: mask must be [B, L]");
    EXPECT_FAIL(c, imb_mean_pool(c, RAMP(c, 2, 3, 4), RAMP(c, 3, 2)), "mean_pool: mask must be [B, L]");
    EXPECT_FAIL(c, imb_mean_pool(c, RAMP(c, 6, 4), NULL), "mean_pool: x must be [B, L, C]");
    imb_ctx_free(c);
}
END_TEST

/* a training context with one parameter p of the given shape, filled from host */
static imb_ctx *train_ctx(imb_tensor **p, const char *name, int ndim, const int64_t *shape, const float *host) {
    imb_ctx *c = cpu_ctx();
    *p = imb_param_new(c, name, ndim, shape, IMB_INIT_ZEROS, 0, 0);
    ck_assert_int_eq(imb_params_alloc(c), 0);
    memcpy(imb_f32(*p), host, sizeof(float) * (size_t)imb_numel(*p));
    imb_step_begin(c, 1);
    return c;
}

static void seed_ones(imb_ctx *c, imb_tensor *out) {
    int64_t n = imb_numel(out);
    float *dy = malloc(sizeof *dy * (size_t)n);
    for (int64_t i = 0; i < n; i++) dy[i] = 1.0f + 0.1f * (float)i;
    ck_assert_int_eq(imb_backward_seed(c, out, dy), 0);
    free(dy);
}

START_TEST(softmax_fully_masked_row_is_zero) {
    float x[6] = { 0.3f, -1.0f, 2.0f, 0.5f, 0.1f, -0.2f };
    float m[6] = { 0, -INFINITY, 0.5f, -INFINITY, -INFINITY, -INFINITY };
    imb_tensor *p;
    imb_ctx *c = train_ctx(&p, "x", 2, IMB_SHAPE(2, 3), x);
    imb_tensor *y = imb_softmax(c, p, imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 3), m));
    ck_assert_ptr_nonnull(y);
    const float *o = imb_f32(y);
    double e0 = exp(0.3), e2 = exp(2.5);
    ck_assert_double_eq_tol(o[0], e0 / (e0 + e2), 1e-6);
    ck_assert_float_eq(o[1], 0.0f);
    ck_assert_double_eq_tol(o[2], e2 / (e0 + e2), 1e-6);
    for (int j = 3; j < 6; j++) ck_assert_float_eq(o[j], 0.0f);
    seed_ones(c, y);
    for (int j = 0; j < 6; j++) ck_assert(isfinite(imb_gradf(p)[j]));
    for (int j = 3; j < 6; j++) ck_assert_float_eq(imb_gradf(p)[j], 0.0f);
    ck_assert_float_eq(imb_gradf(p)[1], 0.0f);
    imb_ctx_free(c);
}
END_TEST

START_TEST(attention_fully_padded_query_is_zero) {
    /* B=2, L=3, H=1, Dh=2; batch 1 has no key at all */
    float q[12] = { 0.1f, 0.2f, -0.3f, 0.4f, 0.5f, -0.6f, 0.7f, 0.8f, -0.9f, 1.0f, 1.1f, -1.2f };
    float mask[6] = { 1, 0, 1, 0, 0, 0 };
    imb_tensor *p;
    imb_ctx *c = train_ctx(&p, "q", 3, IMB_SHAPE(2, 3, 2), q);
    imb_tensor *kv = RAMP(c, 2, 3, 2);
    imb_tensor *o = imb_attention(c, p, kv, kv, 1, imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 3), mask), 0, 0);
    ck_assert_ptr_nonnull(o);
    for (int i = 0; i < 6; i++) ck_assert(imb_f32(o)[i] != 0.0f);
    for (int i = 6; i < 12; i++) ck_assert_float_eq(imb_f32(o)[i], 0.0f);
    seed_ones(c, o);
    for (int i = 0; i < 6; i++) ck_assert(isfinite(imb_gradf(p)[i]) && imb_gradf(p)[i] != 0.0f);
    for (int i = 6; i < 12; i++) ck_assert_float_eq(imb_gradf(p)[i], 0.0f);
    imb_ctx_free(c);

    /* causal with the first key padded: query 0 sees nothing */
    c = cpu_ctx();
    float m1[3] = { 0, 1, 1 };
    o = imb_attention(c, RAMP(c, 1, 3, 2), RAMP(c, 1, 3, 2), RAMP(c, 1, 3, 2), 1,
                      imb_input(c, IMB_F32, 2, IMB_SHAPE(1, 3), m1), 1, 0);
    ck_assert_ptr_nonnull(o);
    ck_assert_float_eq(imb_f32(o)[0], 0.0f);
    ck_assert_float_eq(imb_f32(o)[1], 0.0f);
    ck_assert(imb_f32(o)[2] != 0.0f);
    imb_ctx_free(c);
}
END_TEST

START_TEST(attention_hand_computed) {
    /* B=1, H=1, L=2, Dh=1: scale 1/sqrt(1) = 1, score s_ij = q_i k_j */
    float q[2] = { 1.0f, 2.0f }, k[2] = { 0.5f, -1.0f }, v[2] = { 3.0f, 5.0f };
    imb_ctx *c = cpu_ctx();
    imb_tensor *tq = imb_input(c, IMB_F32, 3, IMB_SHAPE(1, 2, 1), q);
    imb_tensor *tk = imb_input(c, IMB_F32, 3, IMB_SHAPE(1, 2, 1), k);
    imb_tensor *tv = imb_input(c, IMB_F32, 3, IMB_SHAPE(1, 2, 1), v);
    imb_tensor *o = imb_attention(c, tq, tk, tv, 1, NULL, 0, 0);
    ck_assert_ptr_nonnull(o);
    for (int i = 0; i < 2; i++) {
        double a = exp(q[i] * 0.5), b = exp(q[i] * -1.0);
        ck_assert_double_eq_tol(imb_f32(o)[i], (3.0 * a + 5.0 * b) / (a + b), 1e-6);
    }
    /* causal: query 0 only sees key 0, query 1 sees both */
    imb_tensor *oc = imb_attention(c, tq, tk, tv, 1, NULL, 1, 0);
    ck_assert_ptr_nonnull(oc);
    ck_assert_float_eq(imb_f32(oc)[0], 3.0f);
    ck_assert_float_eq(imb_f32(oc)[1], imb_f32(o)[1]);
    /* an explicit scale: 2 doubles every score */
    imb_tensor *os = imb_attention(c, tq, tk, tv, 1, NULL, 0, 2.0f);
    double a = exp(2.0 * 0.5), b = exp(2.0 * -1.0);
    ck_assert_double_eq_tol(imb_f32(os)[0], (3.0 * a + 5.0 * b) / (a + b), 1e-6);
    imb_ctx_free(c);
}
END_TEST

/* one training run of attention over [B=1, Lq=3, H=2, Dh=3] with Lk keys; returns the
 * output and the gradients of q, k, v (host copies) */
static void attn_run(int64_t Lk, const float *k, const float *v, const float *mask, float *out, float *dq,
                     float *dk, float *dv) {
    imb_ctx *c = cpu_ctx();
    imb_tensor *q = imb_param_new(c, "q", 3, IMB_SHAPE(1, 3, 6), IMB_INIT_NORMAL, 1, 0);
    imb_tensor *tk = imb_param_new(c, "k", 3, IMB_SHAPE(1, Lk, 6), IMB_INIT_ZEROS, 0, 0);
    imb_tensor *tv = imb_param_new(c, "v", 3, IMB_SHAPE(1, Lk, 6), IMB_INIT_ZEROS, 0, 0);
    ck_assert_int_eq(imb_params_alloc(c), 0);
    memcpy(imb_f32(tk), k, sizeof(float) * (size_t)(Lk * 6));
    memcpy(imb_f32(tv), v, sizeof(float) * (size_t)(Lk * 6));
    imb_step_begin(c, 1);
    imb_tensor *m = mask ? imb_input(c, IMB_F32, 2, IMB_SHAPE(1, Lk), mask) : NULL;
    imb_tensor *o = imb_attention(c, q, tk, tv, 2, m, 0, 0);
    ck_assert_msg(o != NULL, "%s", imb_error(c));
    memcpy(out, imb_f32(o), sizeof(float) * 18);
    seed_ones(c, o);
    memcpy(dq, imb_gradf(q), sizeof(float) * 18);
    memcpy(dk, imb_gradf(tk), sizeof(float) * (size_t)(Lk * 6));
    memcpy(dv, imb_gradf(tv), sizeof(float) * (size_t)(Lk * 6));
    imb_ctx_free(c);
}

START_TEST(attention_padding_invariance) {
    float k[18], v[18];
    for (int i = 0; i < 12; i++) { k[i] = 0.3f * (float)(i % 5) - 0.5f; v[i] = 0.2f * (float)(i % 7) - 0.4f; }
    for (int i = 12; i < 18; i++) { k[i] = 50.0f; v[i] = -100.0f; }   /* the pad key: large, so a leak shows */
    float mask[3] = { 1, 1, 0 };
    float o2[18], q2[18], k2[12], v2[12], o3[18], q3[18], k3[18], v3[18];
    attn_run(2, k, v, NULL, o2, q2, k2, v2);
    attn_run(3, k, v, mask, o3, q3, k3, v3);
    for (int i = 0; i < 18; i++) {
        ck_assert_float_eq_tol(o3[i], o2[i], 1e-6f);
        ck_assert_float_eq_tol(q3[i], q2[i], 1e-6f);
    }
    for (int i = 0; i < 12; i++) {
        ck_assert_float_eq_tol(k3[i], k2[i], 1e-6f);
        ck_assert_float_eq_tol(v3[i], v2[i], 1e-6f);
    }
    for (int i = 12; i < 18; i++) {
        ck_assert_float_eq(k3[i], 0.0f);
        ck_assert_float_eq(v3[i], 0.0f);
    }
}
END_TEST

START_TEST(layernorm_hand_values) {
    imb_ctx *c = cpu_ctx();
    float x[4] = { 1, 2, 3, 4 }, w[4] = { 1, 2, 1, 1 }, b[4] = { 0, 0, 1, 0 };
    imb_tensor *tx = imb_input(c, IMB_F32, 2, IMB_SHAPE(1, 4), x);
    imb_tensor *y = imb_layernorm(c, tx, imb_input(c, IMB_F32, 1, IMB_SHAPE(4), w),
                                  imb_input(c, IMB_F32, 1, IMB_SHAPE(4), b), 0.0f);
    ck_assert_ptr_nonnull(y);
    /* mean 2.5, biased variance 1.25 */
    double r = 1.0 / sqrt(1.25), want[4] = { -1.5 * r, -0.5 * r * 2, 0.5 * r + 1, 1.5 * r };
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(imb_f32(y)[i], want[i], 1e-6);
    /* eps enters under the square root */
    y = imb_layernorm(c, tx, NULL, NULL, 0.75f);
    ck_assert_double_eq_tol(imb_f32(y)[3], 1.5 / sqrt(2.0), 1e-6);
    /* a large offset must not cancel the variance */
    float xo[4] = { 10001, 10002, 10003, 10004 };
    y = imb_layernorm(c, imb_input(c, IMB_F32, 2, IMB_SHAPE(1, 4), xo), NULL, NULL, 0.0f);
    ck_assert_double_eq_tol(imb_f32(y)[0], -1.5 * r, 1e-5);
    float xr[2] = { 3, 4 };
    y = imb_rmsnorm(c, imb_input(c, IMB_F32, 2, IMB_SHAPE(1, 2), xr), NULL, 0.0f);
    ck_assert_double_eq_tol(imb_f32(y)[0], 3 / sqrt(12.5), 1e-6);
    ck_assert_double_eq_tol(imb_f32(y)[1], 4 / sqrt(12.5), 1e-6);
    imb_ctx_free(c);
}
END_TEST

START_TEST(embedding_and_pool_values) {
    float tab[6] = { 1, 2, 3, 4, 5, 6 };   /* V=3, C=2 */
    imb_tensor *p;
    imb_ctx *c = train_ctx(&p, "table", 2, IMB_SHAPE(3, 2), tab);
    int32_t ids[4] = { 2, 0, 2, 2 };
    imb_tensor *e = imb_embedding(c, p, imb_input(c, IMB_I32, 2, IMB_SHAPE(2, 2), ids));
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->ndim, 3);
    ck_assert_float_eq(imb_f32(e)[0], 5.0f);
    ck_assert_float_eq(imb_f32(e)[3], 2.0f);
    float dy[8] = { 1, 10, 100, 1000, 2, 20, 3, 30 };
    ck_assert_int_eq(imb_backward_seed(c, e, dy), 0);
    /* row 2 collects positions 0, 2, 3; row 1 nothing */
    float want[6] = { 100, 1000, 0, 0, 6, 60 };
    for (int i = 0; i < 6; i++) ck_assert_float_eq(imb_gradf(p)[i], want[i]);
    imb_ctx_free(c);

    c = cpu_ctx();
    float x[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };   /* B=2, L=3, C=2 */
    float m[6] = { 1, 0, 1, 0, 0, 0 };
    imb_tensor *tx = imb_input(c, IMB_F32, 3, IMB_SHAPE(2, 3, 2), x);
    imb_tensor *y = imb_mean_pool(c, tx, imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 3), m));
    ck_assert_ptr_nonnull(y);
    float wm[4] = { 3, 4, 0, 0 };
    for (int i = 0; i < 4; i++) ck_assert_float_eq(imb_f32(y)[i], wm[i]);
    y = imb_mean_pool(c, tx, NULL);
    float wa[4] = { 3, 4, 9, 10 };
    for (int i = 0; i < 4; i++) ck_assert_float_eq(imb_f32(y)[i], wa[i]);
    imb_ctx_free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("nn");
    tcase_add_test(tc, norm_bad_inputs);
    tcase_add_test(tc, softmax_bad_mask);
    tcase_add_test(tc, attention_bad_inputs);
    tcase_add_test(tc, embedding_bad_ids);
    tcase_add_test(tc, mean_pool_bad_inputs);
    tcase_add_test(tc, softmax_fully_masked_row_is_zero);
    tcase_add_test(tc, attention_fully_padded_query_is_zero);
    tcase_add_test(tc, attention_hand_computed);
    tcase_add_test(tc, attention_padding_invariance);
    tcase_add_test(tc, layernorm_hand_values);
    tcase_add_test(tc, embedding_and_pool_values);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
