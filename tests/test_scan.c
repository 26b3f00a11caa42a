/* Selective scan tests: a hand-computed recurrence, the 2- and 4-direction orders against
 * 1-direction scans of permuted sequences, determinism of the backward, and bad shapes. */
#include "ctx.h"
#include "rng.h"
#include "scan.h"
#include "checkrun.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static imb_ctx *cpu_ctx(int training) {
    char e[256];
    imb_ctx *c = imb_ctx_new(IMB_CPU, 1, e, sizeof e);
    ck_assert_msg(c != NULL, "%s", e);
    imb_step_begin(c, training);
    return c;
}

/* host inputs of one scan; D, bias, z may be NULL */
typedef struct {
    int64_t Bt, Dm, L, N, G;
    float *u, *delta, *A, *B, *C, *D, *bias, *z;
} scan_in;

static float *normals(int64_t n, uint64_t stream, float scale, float shift) {
    float *h = malloc(sizeof *h * (size_t)n);
    for (int64_t i = 0; i < n; i++) h[i] = shift + scale * imb_rng_normal(5, stream, (uint64_t)i);
    return h;
}

static void scan_in_random(scan_in *s, int withD, int withz) {
    int64_t nu = s->Bt * s->Dm * s->L, nb = s->Bt * s->G * s->N * s->L;
    s->u = normals(nu, 1, 1, 0);
    s->delta = normals(nu, 2, 1, 0);
    s->A = normals(s->Dm * s->N, 3, 0.3f, -0.8f);
    s->B = normals(nb, 4, 1, 0);
    s->C = normals(nb, 5, 1, 0);
    s->D = withD ? normals(s->Dm, 6, 1, 0) : NULL;
    s->bias = normals(s->Dm, 7, 0.5f, 0);
    s->z = withz ? normals(nu, 8, 1, 0) : NULL;
}

static void scan_in_free(scan_in *s) {
    free(s->u); free(s->delta); free(s->A); free(s->B); free(s->C); free(s->D); free(s->bias); free(s->z);
}

static imb_tensor *in(imb_ctx *c, const float *h, int ndim, const int64_t *shape) {
    return h ? imb_input(c, IMB_F32, ndim, shape, h) : NULL;
}

/* runs the op and copies the output into y [Bt, Dm, L] */
static void run_scan(const scan_in *s, int dirs, int64_t H, int64_t W, float *y) {
    imb_ctx *c = cpu_ctx(0);
    int64_t su[3] = { s->Bt, s->Dm, s->L }, sa[2] = { s->Dm, s->N }, sb[4] = { s->Bt, s->G, s->N, s->L }, sd[1] = { s->Dm };
    imb_tensor *out = imb_selective_scan(c, in(c, s->u, 3, su), in(c, s->delta, 3, su), in(c, s->A, 2, sa),
                                         in(c, s->B, 4, sb), in(c, s->C, 4, sb), in(c, s->D, 1, sd),
                                         in(c, s->bias, 1, sd), in(c, s->z, 3, su), dirs, H, W);
    ck_assert_msg(out != NULL, "%s", imb_error(c));
    ck_assert_int_eq(imb_to_host(c, out, y, 0), 0);
    imb_ctx_free(c);
}

/* out[.., t] = x[.., perm[t]] for rows of length L */
static float *permuted(const float *x, int64_t rows, int64_t L, const int64_t *perm) {
    if (!x) return NULL;
    float *o = malloc(sizeof *o * (size_t)(rows * L));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t t = 0; t < L; t++) o[r * L + t] = x[r * L + perm[t]];
    return o;
}

static double silu(double x) { return x / (1.0 + exp(-x)); }
static double softplus(double x) { return log1p(exp(x)); }

START_TEST(hand_computed_L2_N1) {
    float u[2] = { 1.0f, 2.0f }, delta[2] = { 0.0f, 1.0f }, A = -0.5f, B[2] = { 0.5f, -1.0f }, C[2] = { 2.0f, 3.0f };
    float D = 0.25f, bias = 0.0f, z[2] = { 1.0f, -1.0f };
    double dt0 = softplus(0.0), dt1 = softplus(1.0);
    double h0 = dt0 * 0.5 * 1.0, h1 = exp(dt1 * -0.5) * h0 + dt1 * -1.0 * 2.0;
    double y0 = 2.0 * h0 + 0.25 * 1.0, y1 = 3.0 * h1 + 0.25 * 2.0;
    for (int gate = 0; gate < 2; gate++) {
        scan_in s = { 1, 1, 2, 1, 1, u, delta, &A, B, C, &D, &bias, gate ? z : NULL };
        float y[2];
        run_scan(&s, 1, 0, 0, y);
        double w0 = gate ? silu(1.0) : 1.0, w1 = gate ? silu(-1.0) : 1.0;
        ck_assert_double_eq_tol(y[0], y0 * w0, 1e-6);
        ck_assert_double_eq_tol(y[1], y1 * w1, 1e-6);
    }
}
END_TEST

/* two directions = forward scan + the scan of the reversed sequence flipped back, D*u once */
START_TEST(two_dirs_are_forward_plus_reversed) {
    scan_in s = { .Bt = 2, .Dm = 4, .L = 5, .N = 3, .G = 2 };
    scan_in_random(&s, 1, 0);
    int64_t L = s.L, nu = s.Bt * s.Dm * L, rev[5];
    for (int64_t t = 0; t < L; t++) rev[t] = L - 1 - t;
    float *y2 = malloc(sizeof *y2 * nu), *yf = malloc(sizeof *yf * nu), *yr = malloc(sizeof *yr * nu);
    run_scan(&s, 2, 0, 0, y2);
    run_scan(&s, 1, 0, 0, yf);
    scan_in r = s;
    r.u = permuted(s.u, s.Bt * s.Dm, L, rev);
    r.delta = permuted(s.delta, s.Bt * s.Dm, L, rev);
    r.B = permuted(s.B, s.Bt * s.G * s.N, L, rev);
    r.C = permuted(s.C, s.Bt * s.G * s.N, L, rev);
    run_scan(&r, 1, 0, 0, yr);
    for (int64_t i = 0; i < nu; i++) {
        int64_t row = i / L, t = i % L, d = row % s.Dm;
        double want = (double)yf[i] + yr[row * L + rev[t]] - (double)s.D[d] * s.u[i];
        ck_assert_double_eq_tol(y2[i], want, 1e-5 * (1 + fabs(want)));
    }
    free(r.u); free(r.delta); free(r.B); free(r.C);
    free(y2); free(yf); free(yr);
    scan_in_free(&s);
}
END_TEST

/* four directions on a 2 x 3 grid: each order (row-major, column-major, both reversed) is a
 * 1-direction scan of the permuted sequence, placed back; D*u once, the gate once after the sum */
START_TEST(four_dirs_are_permuted_scans) {
    enum { H = 2, W = 3, L = H * W };
    scan_in s = { .Bt = 2, .Dm = 4, .L = L, .N = 3, .G = 2 };
    scan_in_random(&s, 1, 1);
    int64_t nu = s.Bt * s.Dm * L, perms[4][L];
    for (int64_t t = 0; t < L; t++) {
        perms[0][t] = t;
        perms[1][t] = (t % H) * W + t / H;
        perms[2][t] = L - 1 - t;
    }
    for (int64_t t = 0; t < L; t++) perms[3][t] = perms[1][L - 1 - t];
    ck_assert_int_eq(perms[1][1], 3);   /* column-major visits (row 1, col 0) second */
    float *y4 = malloc(sizeof *y4 * nu), *yk = malloc(sizeof *yk * nu);
    double *sum = calloc((size_t)nu, sizeof *sum);
    run_scan(&s, 4, H, W, y4);
    for (int k = 0; k < 4; k++) {
        scan_in p = s;
        p.u = permuted(s.u, s.Bt * s.Dm, L, perms[k]);
        p.delta = permuted(s.delta, s.Bt * s.Dm, L, perms[k]);
        p.B = permuted(s.B, s.Bt * s.G * s.N, L, perms[k]);
        p.C = permuted(s.C, s.Bt * s.G * s.N, L, perms[k]);
        p.D = NULL;
        p.z = NULL;
        run_scan(&p, 1, 0, 0, yk);
        for (int64_t i = 0; i < nu; i++) sum[(i / L) * L + perms[k][i % L]] += yk[i];
        free(p.u); free(p.delta); free(p.B); free(p.C);
    }
    for (int64_t i = 0; i < nu; i++) {
        int64_t d = (i / L) % s.Dm;
        double want = (sum[i] + (double)s.D[d] * s.u[i]) * silu(s.z[i]);
        ck_assert_double_eq_tol(y4[i], want, 1e-5 * (1 + fabs(want)));
    }
    free(y4); free(yk); free(sum);
    scan_in_free(&s);
}
END_TEST

/* the backward reduces shared gradients in a fixed order: 1 and 2 threads give the same bits */
START_TEST(backward_is_deterministic) {
    enum { Bt = 2, Dm = 4, L = 6, N = 3, G = 2 };
    scan_in s = { .Bt = Bt, .Dm = Dm, .L = L, .N = N, .G = G };
    scan_in_random(&s, 1, 1);
    int64_t su[3] = { Bt, Dm, L }, sa[2] = { Dm, N }, sb[4] = { Bt, G, N, L }, sd[1] = { Dm };
    float gA[2][Dm * N], gB[2][Bt * G * N * L], gbias[2][Dm];
    for (int rep = 0; rep < 2; rep++) {
#ifdef _OPENMP
        omp_set_num_threads(rep + 1);
#endif
        imb_ctx *c = cpu_ctx(1);
        imb_tensor *A = imb_param_new(c, "A", 2, sa, IMB_INIT_ZEROS, 0, 0);
        imb_tensor *B = imb_param_new(c, "B", 4, sb, IMB_INIT_ZEROS, 0, 0);
        imb_tensor *bias = imb_param_new(c, "bias", 1, sd, IMB_INIT_ZEROS, 0, 0);
        ck_assert_int_eq(imb_params_alloc(c), 0);
        memcpy(imb_f32(A), s.A, sizeof gA[0]);
        memcpy(imb_f32(B), s.B, sizeof gB[0]);
        memcpy(imb_f32(bias), s.bias, sizeof gbias[0]);
        imb_step_begin(c, 1);
        imb_tensor *y = imb_selective_scan(c, in(c, s.u, 3, su), in(c, s.delta, 3, su), A, B, in(c, s.C, 4, sb),
                                           in(c, s.D, 1, sd), bias, in(c, s.z, 3, su), 4, 2, 3);
        ck_assert_msg(y != NULL, "%s", imb_error(c));
        float *dy = normals(Bt * Dm * L, 9, 1, 0);
        ck_assert_int_eq(imb_backward_seed(c, y, dy), 0);
        memcpy(gA[rep], imb_gradf(A), sizeof gA[0]);
        memcpy(gB[rep], imb_gradf(B), sizeof gB[0]);
        memcpy(gbias[rep], imb_gradf(bias), sizeof gbias[0]);
        free(dy);
        imb_ctx_free(c);
    }
#ifdef _OPENMP
    omp_set_num_threads(omp_get_num_procs());
#endif
    ck_assert_mem_eq(gA[0], gA[1], sizeof gA[0]);
    ck_assert_mem_eq(gB[0], gB[1], sizeof gB[0]);
    ck_assert_mem_eq(gbias[0], gbias[1], sizeof gbias[0]);
    scan_in_free(&s);
}
END_TEST

/* the op returned NULL and the message holds want; clears the error for the next check */
#define EXPECT_FAIL(c, expr, want) do { \
        ck_assert_ptr_null(expr); \
        ck_assert_msg(strstr(imb_error(c), (want)) != NULL, "expected \"%s\" in \"%s\"", (want), imb_error(c)); \
        imb_error_clear(c); \
    } while (0)

START_TEST(bad_shapes_are_errors) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *u = imb_full(c, 3, IMB_SHAPE(2, 4, 6), 0.1f), *A = imb_full(c, 2, IMB_SHAPE(4, 3), -1.0f);
    imb_tensor *B = imb_full(c, 4, IMB_SHAPE(2, 2, 3, 6), 0.5f), *D = imb_full(c, 1, IMB_SHAPE(4), 1.0f);
    ck_assert_ptr_nonnull(imb_selective_scan(c, u, u, A, B, B, D, D, u, 4, 2, 3));
    imb_tensor *B3 = imb_full(c, 4, IMB_SHAPE(2, 3, 3, 6), 0.5f);
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B3, B3, NULL, NULL, NULL, 1, 0, 0), "3 groups do not divide the 4 channels");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, NULL, NULL, NULL, 4, 2, 2), "4 directions need L = H*W");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, NULL, NULL, NULL, 4, 0, 6), "4 directions need L = H*W");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, imb_full(c, 2, IMB_SHAPE(3, 3), -1.0f), B, B, NULL, NULL, NULL, 1, 0, 0),
                "A must be [Dm, N]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, imb_full(c, 1, IMB_SHAPE(4), -1.0f), B, B, NULL, NULL, NULL, 1, 0, 0),
                "A must be [Dm, N]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, imb_full(c, 2, IMB_SHAPE(4, 2), -1.0f), B, B, NULL, NULL, NULL, 1, 0, 0),
                "B must be [Bt, G, N, L]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, imb_full(c, 4, IMB_SHAPE(2, 1, 3, 6), 0.5f), NULL, NULL, NULL, 1, 0, 0),
                "C must have B's shape");
    EXPECT_FAIL(c, imb_selective_scan(c, u, imb_full(c, 3, IMB_SHAPE(2, 4, 5), 0.1f), A, B, B, NULL, NULL, NULL, 1, 0, 0),
                "delta must have u's shape");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, imb_full(c, 1, IMB_SHAPE(3), 1.0f), NULL, NULL, 1, 0, 0),
                "D must be [Dm]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, NULL, NULL, NULL, 3, 0, 0), "directions must be 1, 2 or 4");
    EXPECT_FAIL(c, imb_selective_scan(c, NULL, u, A, B, B, NULL, NULL, NULL, 1, 0, 0), "input 0 is NULL");
    imb_ctx_free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("scan");
    TCase *tc = tcase_create("scan");
    tcase_add_test(tc, hand_computed_L2_N1);
    tcase_add_test(tc, two_dirs_are_forward_plus_reversed);
    tcase_add_test(tc, four_dirs_are_permuted_scans);
    tcase_add_test(tc, backward_is_deterministic);
    tcase_add_test(tc, bad_shapes_are_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
