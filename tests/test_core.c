/* Core tests: errors instead of aborts, arena guards, RNG, AdamW/clip/schedule by hand. */
#include "activation.h"
#include "ctx.h"
#include "elementwise.h"
#include "loss.h"
#include "matmul.h"
#include "mem.h"
#include "optim.h"
#include "rng.h"
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

static imb_tensor *ones(imb_ctx *c, int64_t r, int64_t k) {
    float *h = malloc(sizeof *h * (size_t)(r * k));
    for (int64_t i = 0; i < r * k; i++) h[i] = 1.0f;
    imb_tensor *t = imb_input(c, IMB_F32, 2, IMB_SHAPE(r, k), h);
    free(h);
    return t;
}

START_TEST(bad_shapes_are_errors) {
    imb_ctx *c = cpu_ctx();
    ck_assert_ptr_null(imb_matmul(c, ones(c, 2, 3), ones(c, 4, 5), NULL, 0, 0));
    ck_assert_msg(strstr(imb_error(c), "inner dims"), "%s", imb_error(c));
    imb_error_clear(c);
    ck_assert_ptr_null(imb_add(c, ones(c, 2, 3), ones(c, 2, 4)));
    ck_assert_msg(strstr(imb_error(c), "add:"), "%s", imb_error(c));
    imb_error_clear(c);
    ck_assert_ptr_null(imb_new(c, IMB_F32, 2, IMB_SHAPE(0, 3), 0));
    ck_assert_msg(strstr(imb_error(c), "size 0"), "%s", imb_error(c));
    imb_error_clear(c);
    ck_assert_ptr_null(imb_new(c, IMB_F32, 5, IMB_SHAPE(1, 1, 1, 1, 1), 0));
    imb_error_clear(c);
    ck_assert_ptr_null(imb_linear(c, ones(c, 2, 3), ones(c, 4, 3), ones(c, 1, 5)));
    ck_assert_msg(strstr(imb_error(c), "bias"), "%s", imb_error(c));
    imb_ctx_free(c);
}
END_TEST

START_TEST(null_inputs_propagate_first_error) {
    imb_ctx *c = cpu_ctx();
    ck_assert_ptr_null(imb_gelu(c, NULL));
    ck_assert_msg(strstr(imb_error(c), "gelu: input 0 is NULL"), "%s", imb_error(c));
    /* the first message stays */
    ck_assert_ptr_null(imb_silu(c, ones(c, 1, 1)));
    ck_assert_msg(strstr(imb_error(c), "gelu"), "%s", imb_error(c));
    imb_ctx_free(c);
}
END_TEST

START_TEST(mismatched_device_is_error) {
    imb_ctx *c = cpu_ctx();
    imb_tensor *a = ones(c, 2, 2), fake = *a;
    fake.device = IMB_CUDA;
    ck_assert_ptr_null(imb_add(c, a, &fake));
    ck_assert_msg(strstr(imb_error(c), "is on cuda but the context is on cpu"), "%s", imb_error(c));
    imb_ctx_free(c);
}
END_TEST

START_TEST(bad_labels_are_errors) {
    imb_ctx *c = cpu_ctx();
    int32_t lab[2] = { 0, 7 };
    imb_tensor *y = imb_input(c, IMB_I32, 1, IMB_SHAPE(2), lab);
    ck_assert_ptr_null(imb_cross_entropy(c, ones(c, 2, 3), y, 0));
    ck_assert_msg(strstr(imb_error(c), "label 7 at row 1"), "%s", imb_error(c));
    imb_error_clear(c);
    ck_assert_ptr_null(imb_cross_entropy(c, ones(c, 2, 3), ones(c, 1, 2), 0));
    ck_assert_msg(strstr(imb_error(c), "is f32, expected") || strstr(imb_error(c), "labels"), "%s", imb_error(c));
    imb_ctx_free(c);
}
END_TEST

START_TEST(cuda_context_without_gpu) {
    char e[256] = "";
    imb_ctx *c = imb_ctx_new(IMB_CUDA, 1, e, sizeof e);
    if (imb_have_cuda()) { imb_ctx_free(c); return; }
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(e, "CUDA"), "%s", e);
}
END_TEST

START_TEST(params_declared_badly) {
    imb_ctx *c = cpu_ctx();
    ck_assert_ptr_nonnull(imb_param_new(c, "w", 1, IMB_SHAPE(3), IMB_INIT_ONES, 0, 1));
    ck_assert_ptr_null(imb_param_new(c, "w", 1, IMB_SHAPE(3), IMB_INIT_ONES, 0, 1));
    ck_assert_msg(strstr(imb_error(c), "declared twice"), "%s", imb_error(c));
    imb_error_clear(c);
    ck_assert_ptr_null(imb_param_new(c, "eye", 2, IMB_SHAPE(2, 3), IMB_INIT_IDENTITY, 0, 1));
    imb_ctx_free(c);
}
END_TEST

START_TEST(guards_catch_overflow_and_poison_is_nan) {
    imb_arena a;
    imb_arena_init(&a, IMB_CPU, "test", 4096);
    a.debug = 1;
    float *p = imb_arena_alloc(&a, 10 * sizeof(float));
    float *q = imb_arena_alloc(&a, 3 * sizeof(float));
    ck_assert(isnan(p[0]) && isnan(p[9]) && isnan(q[2]));
    for (int i = 0; i < 10; i++) p[i] = 1;
    ck_assert_int_eq(imb_arena_check_guards(&a), -1);
    p[10] = 1;   /* one past the end */
    ck_assert_int_eq(imb_arena_check_guards(&a), 0);
    p[10] = q[0];
    imb_arena_reset(&a);
    float *r = imb_arena_alloc(&a, 10 * sizeof(float));
    ck_assert_ptr_eq(r, p);   /* same sequence, same addresses after reset */
    imb_arena_free(&a);
}
END_TEST

START_TEST(rng_is_counter_based) {
    ck_assert_float_eq(imb_rng_uniform(5, 2, 1000), imb_rng_uniform(5, 2, 1000));
    ck_assert(imb_rng_uniform(5, 2, 1000) != imb_rng_uniform(5, 3, 1000));
    double s = 0, s2 = 0;
    int n = 100000, out = 0;
    for (int i = 0; i < n; i++) {
        double z = imb_rng_normal(1, 1, (uint64_t)i);
        s += z; s2 += z * z;
        float t = imb_rng_trunc_normal(1, 2, (uint64_t)i, 0.5f);
        out += fabsf(t) > 1.0f;
    }
    ck_assert_double_eq_tol(s / n, 0.0, 0.02);
    ck_assert_double_eq_tol(s2 / n, 1.0, 0.02);
    ck_assert_int_eq(out, 0);
}
END_TEST

START_TEST(init_kinds) {
    imb_ctx *c = cpu_ctx();
    imb_tensor *eye = imb_param_new(c, "eye", 2, IMB_SHAPE(3, 3), IMB_INIT_IDENTITY, 0, 0);
    imb_tensor *k = imb_param_new(c, "k", 1, IMB_SHAPE(4), IMB_INIT_CONST, 2.5f, 0);
    imb_tensor *tn = imb_param_new(c, "tn", 1, IMB_SHAPE(1000), IMB_INIT_TRUNC_NORMAL, 0.02f, 1);
    ck_assert_int_eq(imb_params_alloc(c), 0);
    for (int i = 0; i < 9; i++) ck_assert_float_eq(imb_f32(eye)[i], i % 4 == 0 ? 1.0f : 0.0f);
    ck_assert_float_eq(imb_f32(k)[3], 2.5f);
    float mx = 0;
    for (int i = 0; i < 1000; i++) mx = fmaxf(mx, fabsf(imb_f32(tn)[i]));
    ck_assert(mx > 0.02f && mx <= 0.04f);
    /* initialisation depends on (seed, name), not on declaration order */
    imb_ctx *d = cpu_ctx();
    imb_tensor *tn2 = imb_param_new(d, "tn", 1, IMB_SHAPE(1000), IMB_INIT_TRUNC_NORMAL, 0.02f, 1);
    imb_params_alloc(d);
    ck_assert_mem_eq(imb_f32(tn), imb_f32(tn2), 1000 * sizeof(float));
    imb_ctx_free(c);
    imb_ctx_free(d);
}
END_TEST

/* Mamba's A_log = log(1..N) per row; dt bias = softplus^-1 of dt in [0.001, 0.1], spread over it */
START_TEST(ssm_init_kinds) {
    imb_ctx *c = cpu_ctx();
    imb_tensor *a = imb_param_new(c, "A_logs", 2, IMB_SHAPE(3, 4), IMB_INIT_SSM_A_LOG, 0, 0);
    imb_tensor *b = imb_param_new(c, "dt_bias", 1, IMB_SHAPE(2000), IMB_INIT_SSM_DT_BIAS, 0, 0);
    ck_assert_int_eq(imb_params_alloc(c), 0);
    for (int i = 0; i < 12; i++) ck_assert_float_eq_tol(imb_f32(a)[i], logf((float)(1 + i % 4)), 1e-7f);
    double lo = 1, hi = 0, below = 0;
    for (int i = 0; i < 2000; i++) {
        double dt = log1p(exp(imb_f32(b)[i]));
        lo = fmin(lo, dt), hi = fmax(hi, dt);
        below += dt < 0.01;   /* log-uniform: half the mass below the geometric middle */
    }
    ck_assert(lo >= 0.001 * (1 - 1e-4) && lo < 0.0012);
    ck_assert(hi <= 0.1 * (1 + 1e-4) && hi > 0.09);
    ck_assert_double_eq_tol(below / 2000, 0.5, 0.05);
    imb_ctx_free(c);
}
END_TEST

START_TEST(adamw_matches_hand_computation) {
    imb_ctx *c = cpu_ctx();
    imb_tensor *w = imb_param_new(c, "w", 1, IMB_SHAPE(2), IMB_INIT_ONES, 0, 1);
    imb_tensor *b = imb_param_new(c, "b", 1, IMB_SHAPE(1), IMB_INIT_ONES, 0, 0);
    imb_tensor *f = imb_param_new(c, "f", 1, IMB_SHAPE(1), IMB_INIT_ONES, 0, 1);
    imb_param_freeze(c, f);
    imb_params_alloc(c);
    imb_adamw o = imb_adamw_default(0.1f);
    float g[2] = { 0.5f, -2.0f };
    for (int step = 1; step <= 2; step++) {
        imb_gradf(w)[0] = g[0]; imb_gradf(w)[1] = g[1];
        imb_gradf(b)[0] = 3.0f; imb_gradf(f)[0] = 1.0f;
        ck_assert_int_eq(imb_adamw_step(c, &o, 0.01f), 0);
    }
    /* constant gradient: mhat = g, vhat = g^2 each step, so the step is lr * sign(g) */
    double w0 = 1.0;
    for (int s = 0; s < 2; s++) w0 = w0 * (1 - 0.01 * 0.1) - 0.01 * 0.5 / (0.5 + 1e-8);
    ck_assert_double_eq_tol(imb_f32(w)[0], w0, 1e-6);
    ck_assert_double_eq_tol(imb_f32(b)[0], 1.0 - 2 * 0.01 * 3 / (3 + 1e-8), 1e-6);   /* no decay */
    ck_assert_float_eq(imb_f32(f)[0], 1.0f);                                         /* frozen */
    imb_ctx_free(c);
}
END_TEST

START_TEST(clip_and_schedule) {
    imb_ctx *c = cpu_ctx();
    imb_tensor *w = imb_param_new(c, "w", 1, IMB_SHAPE(2), IMB_INIT_ONES, 0, 1);
    imb_params_alloc(c);
    imb_gradf(w)[0] = 3; imb_gradf(w)[1] = 4;
    ck_assert_double_eq_tol(imb_grad_clip(c, 1.0f), 5.0, 1e-9);
    ck_assert_double_eq_tol(imb_gradf(w)[0], 0.6, 1e-5);
    ck_assert_double_eq_tol(imb_grad_clip(c, 10.0f), 1.0, 1e-5);   /* under the bound: untouched */
    imb_gradf(w)[0] = NAN;
    ck_assert(isnan(imb_grad_clip(c, 1.0f)));
    ck_assert_float_eq_tol(imb_lr_cosine(0, 100, 10, 1.0f, 0.0f), 0.1f, 1e-6);
    ck_assert_float_eq_tol(imb_lr_cosine(9, 100, 10, 1.0f, 0.0f), 1.0f, 1e-6);
    ck_assert_float_eq_tol(imb_lr_cosine(55, 100, 10, 1.0f, 0.0f), 0.5f, 1e-6);
    ck_assert_float_eq_tol(imb_lr_cosine(100, 100, 10, 1.0f, 0.1f), 0.1f, 1e-6);
    imb_ctx_free(c);
}
END_TEST

START_TEST(cross_entropy_value) {
    imb_ctx *c = cpu_ctx();
    float z[6] = { 1, 2, 3, 0, 0, 0 };
    int32_t y[2] = { 2, -1 };
    imb_tensor *l = imb_cross_entropy(c, imb_input(c, IMB_F32, 2, IMB_SHAPE(2, 3), z),
                                      imb_input(c, IMB_I32, 1, IMB_SHAPE(2), y), 0.1f);
    ck_assert_ptr_nonnull(l);
    double lse = log(exp(1) + exp(2) + exp(3));
    double want = 0.9 * (lse - 3) + 0.1 * (lse - 2);   /* row 1 ignored */
    ck_assert_double_eq_tol(imb_f32(l)[0], want, 1e-6);
    imb_ctx_free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, bad_shapes_are_errors);
    tcase_add_test(tc, null_inputs_propagate_first_error);
    tcase_add_test(tc, mismatched_device_is_error);
    tcase_add_test(tc, bad_labels_are_errors);
    tcase_add_test(tc, cuda_context_without_gpu);
    tcase_add_test(tc, params_declared_badly);
    tcase_add_test(tc, guards_catch_overflow_and_poison_is_nan);
    tcase_add_test(tc, rng_is_counter_based);
    tcase_add_test(tc, init_kinds);
    tcase_add_test(tc, ssm_init_kinds);
    tcase_add_test(tc, adamw_matches_hand_computation);
    tcase_add_test(tc, clip_and_schedule);
    tcase_add_test(tc, cross_entropy_value);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
