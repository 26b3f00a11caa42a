/* Selective scan tests: a hand-computed recurrence, the 2- and 4-direction orders against
 * 1-direction scans of permuted sequences (shared and per-direction parameter sets), padding
 * masks as identity steps, determinism of the backward, and bad shapes. */
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

/* host inputs of one scan with K parameter sets; D, bias, z, mask may be NULL */
typedef struct {
    int64_t Bt, Dm, L, N, G, K;
    float *u, *delta, *A, *B, *C, *D, *bias, *z, *mask;
} scan_in;

/* element counts: [0] u/z/y, [1] delta, [2] A, [3] B/C, [4] D/bias, [5] mask */
static void counts(const scan_in *s, int64_t n[6]) {
    n[0] = s->Bt * s->Dm * s->L;
    n[1] = s->Bt * s->K * s->Dm * s->L;
    n[2] = s->K * s->Dm * s->N;
    n[3] = s->Bt * s->K * s->G * s->N * s->L;
    n[4] = s->K * s->Dm;
    n[5] = s->Bt * s->L;
}

static float *normals(int64_t n, uint64_t stream, float scale, float shift) {
    float *h = malloc(sizeof *h * (size_t)n);
    for (int64_t i = 0; i < n; i++) h[i] = shift + scale * imb_rng_normal(5, stream, (uint64_t)i);
    return h;
}

static void scan_in_random(scan_in *s, int withD, int withz) {
    int64_t n[6];
    if (!s->K) s->K = 1;
    counts(s, n);
    s->u = normals(n[0], 1, 1, 0);
    s->delta = normals(n[1], 2, 1, 0);
    s->A = normals(n[2], 3, 0.3f, -0.8f);
    s->B = normals(n[3], 4, 1, 0);
    s->C = normals(n[3], 5, 1, 0);
    s->D = withD ? normals(n[4], 6, 1, 0) : NULL;
    s->bias = normals(n[4], 7, 0.5f, 0);
    s->z = withz ? normals(n[0], 8, 1, 0) : NULL;
    s->mask = NULL;
}

static void scan_in_free(scan_in *s) {
    free(s->u); free(s->delta); free(s->A); free(s->B); free(s->C); free(s->D); free(s->bias); free(s->z);
    free(s->mask);
}

static float *dup(const float *x, int64_t n) {
    if (!x) return NULL;
    float *o = malloc(sizeof *o * (size_t)n);
    memcpy(o, x, sizeof *o * (size_t)n);
    return o;
}

/* parameter set k of s as a one-set scan_in (fresh copies; u and z shared by reference: the
 * caller frees only the set's arrays with set_free) */
static scan_in set_of(const scan_in *s, int64_t k) {
    scan_in o = *s;
    const int64_t Dm = s->Dm, L = s->L, NL = s->N * s->L, GNL = s->G * NL, K = s->K;
    o.K = 1;
    o.delta = malloc(sizeof(float) * (size_t)(s->Bt * Dm * L));
    o.B = malloc(sizeof(float) * (size_t)(s->Bt * GNL));
    o.C = malloc(sizeof(float) * (size_t)(s->Bt * GNL));
    for (int64_t b = 0; b < s->Bt; b++) {
        memcpy(o.delta + b * Dm * L, s->delta + (b * K + k) * Dm * L, sizeof(float) * (size_t)(Dm * L));
        memcpy(o.B + b * GNL, s->B + (b * K + k) * GNL, sizeof(float) * (size_t)GNL);
        memcpy(o.C + b * GNL, s->C + (b * K + k) * GNL, sizeof(float) * (size_t)GNL);
    }
    o.A = dup(s->A + k * Dm * s->N, Dm * s->N);
    o.D = s->D ? dup(s->D + k * Dm, Dm) : NULL;
    o.bias = s->bias ? dup(s->bias + k * Dm, Dm) : NULL;
    return o;
}

static void set_free(scan_in *o) { free(o->delta); free(o->B); free(o->C); free(o->A); free(o->D); free(o->bias); }

/* outputs of one run: y and, after a backward, the gradient of every present input */
typedef struct { float *y, *du, *ddelta, *dA, *dB, *dC, *dD, *dbias, *dz; } scan_res;

static void scan_res_free(scan_res *r) {
    free(r->y); free(r->du); free(r->ddelta); free(r->dA); free(r->dB); free(r->dC); free(r->dD); free(r->dbias);
    free(r->dz);
}

/* a parameter holding host values h (NULL when h is) */
static imb_tensor *param(imb_ctx *c, const char *name, const float *h, int ndim, const int64_t *shape) {
    if (!h) return NULL;
    return imb_param_new(c, name, ndim, shape, IMB_INIT_ZEROS, 0, 0);
}

static float *grad_of(imb_ctx *c, imb_tensor *t, int64_t n) {
    if (!t) return NULL;
    float *g = malloc(sizeof *g * (size_t)n);
    ck_assert_int_eq(imb_to_host(c, t, g, 1), 0);
    return g;
}

/* Runs the op on s; with dy non-NULL also the backward, every input a parameter. */
static scan_res scan_eval(const scan_in *s, int dirs, int64_t H, int64_t W, const float *dy) {
    int64_t n[6];
    counts(s, n);
    const int64_t su[3] = { s->Bt, s->Dm, s->L }, sdl[3] = { s->Bt, s->K * s->Dm, s->L };
    const int64_t sa[2] = { s->K * s->Dm, s->N }, sb[4] = { s->Bt, s->K * s->G, s->N, s->L };
    const int64_t sd[1] = { s->K * s->Dm }, sm[2] = { s->Bt, s->L };
    char e[256];
    imb_ctx *c = imb_ctx_new(IMB_CPU, 1, e, sizeof e);
    ck_assert_msg(c != NULL, "%s", e);
    const float *h[8] = { s->u, s->delta, s->A, s->B, s->C, s->D, s->bias, s->z };
    const int64_t nn[8] = { n[0], n[1], n[2], n[3], n[3], n[4], n[4], n[0] };
    imb_tensor *t[8] = {
        param(c, "u", s->u, 3, su), param(c, "delta", s->delta, 3, sdl), param(c, "A", s->A, 2, sa),
        param(c, "B", s->B, 4, sb), param(c, "C", s->C, 4, sb), param(c, "D", s->D, 1, sd),
        param(c, "bias", s->bias, 1, sd), param(c, "z", s->z, 3, su),
    };
    ck_assert_int_eq(imb_params_alloc(c), 0);
    for (int i = 0; i < 8; i++)
        if (t[i]) memcpy(imb_f32(t[i]), h[i], sizeof(float) * (size_t)nn[i]);
    imb_step_begin(c, dy != NULL);
    imb_tensor *mask = s->mask ? imb_input(c, IMB_F32, 2, sm, s->mask) : NULL;
    imb_tensor *y = imb_selective_scan(c, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], mask, dirs, H, W);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    scan_res r = { 0 };
    r.y = malloc(sizeof(float) * (size_t)n[0]);
    ck_assert_int_eq(imb_to_host(c, y, r.y, 0), 0);
    if (dy) {
        ck_assert_msg(imb_backward_seed(c, y, dy) == 0, "%s", imb_error(c));
        float **g[8] = { &r.du, &r.ddelta, &r.dA, &r.dB, &r.dC, &r.dD, &r.dbias, &r.dz };
        for (int i = 0; i < 8; i++) *g[i] = grad_of(c, t[i], nn[i]);
    }
    imb_ctx_free(c);
    return r;
}

/* forward only, into y [Bt, Dm, L] */
static void run_scan(const scan_in *s, int dirs, int64_t H, int64_t W, float *y) {
    scan_res r = scan_eval(s, dirs, H, W, NULL);
    memcpy(y, r.y, sizeof *y * (size_t)(s->Bt * s->Dm * s->L));
    scan_res_free(&r);
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

static void expect_close(const float *got, const float *want, int64_t n, double rel, const char *what) {
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs((double)got[i] - want[i]) <= rel * (1 + fabs((double)want[i])), "%s[%lld]: %g vs %g", what,
                      (long long)i, (double)got[i], (double)want[i]);
}

START_TEST(hand_computed_L2_N1) {
    float u[2] = { 1.0f, 2.0f }, delta[2] = { 0.0f, 1.0f }, A = -0.5f, B[2] = { 0.5f, -1.0f }, C[2] = { 2.0f, 3.0f };
    float D = 0.25f, bias = 0.0f, z[2] = { 1.0f, -1.0f };
    double dt0 = softplus(0.0), dt1 = softplus(1.0);
    double h0 = dt0 * 0.5 * 1.0, h1 = exp(dt1 * -0.5) * h0 + dt1 * -1.0 * 2.0;
    double y0 = 2.0 * h0 + 0.25 * 1.0, y1 = 3.0 * h1 + 0.25 * 2.0;
    for (int gate = 0; gate < 2; gate++) {
        scan_in s = { 1, 1, 2, 1, 1, 1, u, delta, &A, B, C, &D, &bias, gate ? z : NULL, NULL };
        float y[2];
        run_scan(&s, 1, 0, 0, y);
        double w0 = gate ? silu(1.0) : 1.0, w1 = gate ? silu(-1.0) : 1.0;
        ck_assert_double_eq_tol(y[0], y0 * w0, 1e-6);
        ck_assert_double_eq_tol(y[1], y1 * w1, 1e-6);
    }
    /* a padded first step: h0 = 0, so y0 = D u0 only, and h1 starts from zero */
    float mask[2] = { 0.0f, 1.0f }, y[2];
    scan_in s = { 1, 1, 2, 1, 1, 1, u, delta, &A, B, C, &D, &bias, NULL, mask };
    run_scan(&s, 1, 0, 0, y);
    ck_assert_double_eq_tol(y[0], 0.25, 1e-6);
    ck_assert_double_eq_tol(y[1], 3.0 * dt1 * -1.0 * 2.0 + 0.25 * 2.0, 1e-6);
}
END_TEST

/* two directions = forward scan (set 0) + the scan of the reversed sequence flipped back (set
 * 0 with K = 1, set 1 with K = 2), plus the D skip of every set */
START_TEST(two_dirs_are_forward_plus_reversed) {
    for (int K = 1; K <= 2; K++) {
        scan_in s = { .Bt = 2, .Dm = 4, .L = 5, .N = 3, .G = 2, .K = K };
        scan_in_random(&s, 1, 0);
        int64_t L = s.L, nu = s.Bt * s.Dm * L, rev[5];
        for (int64_t t = 0; t < L; t++) rev[t] = L - 1 - t;
        float *y2 = malloc(sizeof *y2 * nu), *yf = malloc(sizeof *yf * nu), *yr = malloc(sizeof *yr * nu);
        run_scan(&s, 2, 0, 0, y2);
        scan_in f = set_of(&s, 0), r = set_of(&s, K - 1);
        free(f.D); free(r.D);
        f.D = r.D = NULL;
        run_scan(&f, 1, 0, 0, yf);
        scan_in rp = r;
        rp.u = permuted(s.u, s.Bt * s.Dm, L, rev);
        rp.delta = permuted(r.delta, s.Bt * s.Dm, L, rev);
        rp.B = permuted(r.B, s.Bt * s.G * s.N, L, rev);
        rp.C = permuted(r.C, s.Bt * s.G * s.N, L, rev);
        run_scan(&rp, 1, 0, 0, yr);
        for (int64_t i = 0; i < nu; i++) {
            int64_t row = i / L, t = i % L, d = row % s.Dm;
            double Dsum = 0;
            for (int k = 0; k < K; k++) Dsum += s.D[k * s.Dm + d];
            double want = (double)yf[i] + yr[row * L + rev[t]] + Dsum * s.u[i];
            ck_assert_double_eq_tol(y2[i], want, 1e-5 * (1 + fabs(want)));
        }
        free(rp.u); free(rp.delta); free(rp.B); free(rp.C);
        set_free(&f); set_free(&r);
        free(y2); free(yf); free(yr);
        scan_in_free(&s);
    }
}
END_TEST

/* four directions on a 2 x 3 grid: each order (row-major, column-major, both reversed) is a
 * 1-direction scan of the permuted sequence with its parameter set (K = 4) or the shared one
 * (K = 1), placed back; the D skips once per set, the gate once after the sum */
START_TEST(four_dirs_are_permuted_scans) {
    enum { H = 2, W = 3, L = H * W };
    for (int K = 1; K <= 4; K += 3) {
        scan_in s = { .Bt = 2, .Dm = 4, .L = L, .N = 3, .G = 2, .K = K };
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
            scan_in q = set_of(&s, K == 1 ? 0 : k), p = q;
            p.u = permuted(s.u, s.Bt * s.Dm, L, perms[k]);
            p.delta = permuted(q.delta, s.Bt * s.Dm, L, perms[k]);
            p.B = permuted(q.B, s.Bt * s.G * s.N, L, perms[k]);
            p.C = permuted(q.C, s.Bt * s.G * s.N, L, perms[k]);
            p.D = NULL;
            p.z = NULL;
            run_scan(&p, 1, 0, 0, yk);
            for (int64_t i = 0; i < nu; i++) sum[(i / L) * L + perms[k][i % L]] += yk[i];
            free(p.u); free(p.delta); free(p.B); free(p.C);
            set_free(&q);
        }
        for (int64_t i = 0; i < nu; i++) {
            int64_t d = (i / L) % s.Dm;
            double Dsum = 0;
            for (int k = 0; k < K; k++) Dsum += s.D[k * s.Dm + d];
            double want = (sum[i] + Dsum * s.u[i]) * silu(s.z[i]);
            ck_assert_double_eq_tol(y4[i], want, 1e-5 * (1 + fabs(want)));
        }
        free(y4); free(yk); free(sum);
        scan_in_free(&s);
    }
}
END_TEST

/* K = dirs sets that are copies of one set give K = 1's output with D scaled by dirs; each
 * set's gradient is one direction's share, so they sum to K = 1's gradient, and every set's
 * dD is the scaled D's dD */
START_TEST(identical_sets_equal_one_set) {
    for (int dirs = 2; dirs <= 4; dirs += 2) {
        const int64_t H = dirs == 4 ? 2 : 0, W = dirs == 4 ? 3 : 0;
        scan_in one = { .Bt = 2, .Dm = 4, .L = 6, .N = 3, .G = 2, .K = 1 };
        scan_in_random(&one, 1, 1);
        scan_in many = one;
        many.K = dirs;
        const int64_t Dm = one.Dm, Bt = one.Bt, L = one.L, GNL = one.G * one.N * L, nu = Bt * Dm * L;
        many.delta = malloc(sizeof(float) * (size_t)(Bt * dirs * Dm * L));
        many.B = malloc(sizeof(float) * (size_t)(Bt * dirs * GNL));
        many.C = malloc(sizeof(float) * (size_t)(Bt * dirs * GNL));
        many.A = malloc(sizeof(float) * (size_t)(dirs * Dm * one.N));
        many.D = malloc(sizeof(float) * (size_t)(dirs * Dm));
        many.bias = malloc(sizeof(float) * (size_t)(dirs * Dm));
        for (int k = 0; k < dirs; k++) {
            for (int64_t b = 0; b < Bt; b++) {
                memcpy(many.delta + (b * dirs + k) * Dm * L, one.delta + b * Dm * L, sizeof(float) * (size_t)(Dm * L));
                memcpy(many.B + (b * dirs + k) * GNL, one.B + b * GNL, sizeof(float) * (size_t)GNL);
                memcpy(many.C + (b * dirs + k) * GNL, one.C + b * GNL, sizeof(float) * (size_t)GNL);
            }
            memcpy(many.A + k * Dm * one.N, one.A, sizeof(float) * (size_t)(Dm * one.N));
            memcpy(many.D + k * Dm, one.D, sizeof(float) * (size_t)Dm);
            memcpy(many.bias + k * Dm, one.bias, sizeof(float) * (size_t)Dm);
        }
        for (int64_t d = 0; d < Dm; d++) one.D[d] *= (float)dirs;
        float *dy = normals(nu, 9, 1, 0);
        scan_res r1 = scan_eval(&one, dirs, H, W, dy), rk = scan_eval(&many, dirs, H, W, dy);
        expect_close(rk.y, r1.y, nu, 1e-5, "y");
        expect_close(rk.du, r1.du, nu, 1e-5, "du");
        expect_close(rk.dz, r1.dz, nu, 1e-5, "dz");
        double *sd = calloc((size_t)(Bt * Dm * L), sizeof *sd), *sb = calloc((size_t)(Bt * GNL), sizeof *sb);
        double *sc = calloc((size_t)(Bt * GNL), sizeof *sc), *sa = calloc((size_t)(Dm * one.N), sizeof *sa);
        double *sbias = calloc((size_t)Dm, sizeof *sbias);
        for (int k = 0; k < dirs; k++) {
            for (int64_t b = 0; b < Bt; b++) {
                for (int64_t i = 0; i < Dm * L; i++) sd[b * Dm * L + i] += rk.ddelta[(b * dirs + k) * Dm * L + i];
                for (int64_t i = 0; i < GNL; i++) {
                    sb[b * GNL + i] += rk.dB[(b * dirs + k) * GNL + i];
                    sc[b * GNL + i] += rk.dC[(b * dirs + k) * GNL + i];
                }
            }
            for (int64_t i = 0; i < Dm * one.N; i++) sa[i] += rk.dA[k * Dm * one.N + i];
            for (int64_t d = 0; d < Dm; d++) {
                sbias[d] += rk.dbias[k * Dm + d];
                ck_assert_double_eq_tol(rk.dD[k * Dm + d], r1.dD[d], 1e-5 * (1 + fabs(r1.dD[d])));
            }
        }
        const struct { const double *sum; const float *want; int64_t n; const char *what; } cmp[] = {
            { sd, r1.ddelta, Bt * Dm * L, "ddelta" }, { sb, r1.dB, Bt * GNL, "dB" }, { sc, r1.dC, Bt * GNL, "dC" },
            { sa, r1.dA, Dm * one.N, "dA" }, { sbias, r1.dbias, Dm, "dbias" },
        };
        for (size_t j = 0; j < sizeof cmp / sizeof *cmp; j++)
            for (int64_t i = 0; i < cmp[j].n; i++)
                ck_assert_msg(fabs(cmp[j].sum[i] - cmp[j].want[i]) <= 1e-5 * (1 + fabs(cmp[j].want[i])),
                              "dirs %d %s[%lld]: %g vs %g", dirs, cmp[j].what, (long long)i, cmp[j].sum[i],
                              (double)cmp[j].want[i]);
        free(sd); free(sb); free(sc); free(sa); free(sbias); free(dy);
        scan_res_free(&r1); scan_res_free(&rk);
        free(many.delta); free(many.B); free(many.C); free(many.A); free(many.D); free(many.bias);
        scan_in_free(&one);
    }
}
END_TEST

/* out[r, i] = x[r, pos[i]]: rows of length L gathered to rows of length n */
static float *gather(const float *x, int64_t rows, int64_t L, const int64_t *pos, int64_t n) {
    if (!x) return NULL;
    float *o = malloc(sizeof *o * (size_t)(rows * n));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) o[r * n + i] = x[r * L + pos[i]];
    return o;
}

/* batch b of s restricted to the token positions pos[0..n) (in order), as a one-sample scan */
static scan_in compact(const scan_in *s, int64_t b, const int64_t *pos, int64_t n) {
    scan_in o = *s;
    const int64_t L = s->L, KD = s->K * s->Dm, KGN = s->K * s->G * s->N;
    o.Bt = 1;
    o.L = n;
    o.mask = NULL;
    o.u = gather(s->u + b * s->Dm * L, s->Dm, L, pos, n);
    o.z = s->z ? gather(s->z + b * s->Dm * L, s->Dm, L, pos, n) : NULL;
    o.delta = gather(s->delta + b * KD * L, KD, L, pos, n);
    o.B = gather(s->B + b * KGN * L, KGN, L, pos, n);
    o.C = gather(s->C + b * KGN * L, KGN, L, pos, n);
    o.A = dup(s->A, s->K * s->Dm * s->N);
    o.D = dup(s->D, KD);
    o.bias = dup(s->bias, KD);
    return o;
}

/* 1-D padding (inside and at the end, a different pattern per sample) in 1 and 2 directions,
 * shared and per-direction sets: outputs and gradients at real tokens equal those of the
 * unpadded sequence, padded tokens get zero gradients when nobody reads their outputs, and the
 * shared gradients (dA, dD, dbias) equal the unpadded samples' sum */
START_TEST(padding_is_an_identity_step) {
    enum { Bt = 2, L = 8 };
    static const int64_t pads[Bt][L] = { { 0, 0, 0, 0, 0, 0, 1, 1 }, { 0, 0, 1, 0, 0, 1, 1, 1 } };
    for (int dirs = 1; dirs <= 2; dirs++)
        for (int K = 1; K <= dirs; K++) {
            scan_in s = { .Bt = Bt, .Dm = 4, .L = L, .N = 3, .G = 2, .K = K };
            scan_in_random(&s, 1, 1);
            const int64_t Dm = s.Dm, KD = K * Dm, KGN = K * s.G * s.N;
            s.mask = malloc(sizeof(float) * Bt * L);
            for (int64_t i = 0; i < Bt * L; i++) s.mask[i] = pads[i / L][i % L] ? 0.0f : 1.0f;
            float *dy = normals(Bt * Dm * L, 9, 1, 0);
            for (int64_t i = 0; i < Bt * Dm * L; i++)
                if (pads[i / (Dm * L)][i % L]) dy[i] = 0.0f;
            scan_res r = scan_eval(&s, dirs, 0, 0, dy);
            double dA[64] = { 0 }, dD[8] = { 0 }, dbias[8] = { 0 };
            for (int64_t b = 0; b < Bt; b++) {
                int64_t pos[L], n = 0;
                for (int64_t t = 0; t < L; t++)
                    if (!pads[b][t]) pos[n++] = t;
                scan_in c = compact(&s, b, pos, n);
                float *dyc = gather(dy + b * Dm * L, Dm, L, pos, n);
                scan_res rc = scan_eval(&c, dirs, 0, 0, dyc);
                /* per-token tensors: rows of [rows, L] in the padded run vs [rows, n] in the compact one */
                const struct { const float *pad, *cmp; int64_t rows; const char *what; } tok[] = {
                    { r.y + b * Dm * L, rc.y, Dm, "y" }, { r.du + b * Dm * L, rc.du, Dm, "du" },
                    { r.dz + b * Dm * L, rc.dz, Dm, "dz" }, { r.ddelta + b * KD * L, rc.ddelta, KD, "ddelta" },
                    { r.dB + b * KGN * L, rc.dB, KGN, "dB" }, { r.dC + b * KGN * L, rc.dC, KGN, "dC" },
                };
                for (size_t j = 0; j < sizeof tok / sizeof *tok; j++)
                    for (int64_t row = 0; row < tok[j].rows; row++) {
                        for (int64_t i = 0; i < n; i++) {
                            double got = tok[j].pad[row * L + pos[i]], want = tok[j].cmp[row * n + i];
                            ck_assert_msg(fabs(got - want) <= 1e-5 * (1 + fabs(want)),
                                          "dirs %d K %d b %lld %s row %lld t %lld: %g vs %g", dirs, K, (long long)b,
                                          tok[j].what, (long long)row, (long long)pos[i], got, want);
                        }
                        for (int64_t t = 0; t < L && j > 0; t++)
                            if (pads[b][t])
                                ck_assert_msg(tok[j].pad[row * L + t] == 0.0f, "%s at padded t %lld is %g",
                                              tok[j].what, (long long)t, (double)tok[j].pad[row * L + t]);
                    }
                for (int64_t i = 0; i < KD * s.N; i++) dA[i] += rc.dA[i];
                for (int64_t i = 0; i < KD; i++) dD[i] += rc.dD[i], dbias[i] += rc.dbias[i];
                scan_res_free(&rc);
                free(dyc);
                free(c.u); free(c.z); free(c.delta); free(c.B); free(c.C); free(c.A); free(c.D); free(c.bias);
            }
            for (int64_t i = 0; i < KD * s.N; i++) ck_assert_double_eq_tol(r.dA[i], dA[i], 1e-5 * (1 + fabs(dA[i])));
            for (int64_t i = 0; i < KD; i++) {
                ck_assert_double_eq_tol(r.dD[i], dD[i], 1e-5 * (1 + fabs(dD[i])));
                ck_assert_double_eq_tol(r.dbias[i], dbias[i], 1e-5 * (1 + fabs(dbias[i])));
            }
            scan_res_free(&r);
            free(dy);
            scan_in_free(&s);
        }
}
END_TEST

/* the backward reduces shared gradients in a fixed order: 1 and 2 threads give the same bits */
START_TEST(backward_is_deterministic) {
    enum { Bt = 2, Dm = 4, L = 6, N = 3, G = 2 };
    for (int K = 1; K <= 4; K += 3) {
        scan_in s = { .Bt = Bt, .Dm = Dm, .L = L, .N = N, .G = G, .K = K };
        scan_in_random(&s, 1, 1);
        s.mask = normals(Bt * L, 10, 0.5f, 1.0f);
        float *dy = normals(Bt * Dm * L, 9, 1, 0);
        scan_res r[2];
        for (int rep = 0; rep < 2; rep++) {
#ifdef _OPENMP
            omp_set_num_threads(rep + 1);
#endif
            r[rep] = scan_eval(&s, 4, 2, 3, dy);
        }
#ifdef _OPENMP
        omp_set_num_threads(omp_get_num_procs());
#endif
        ck_assert_mem_eq(r[0].dA, r[1].dA, sizeof(float) * (size_t)(K * Dm * N));
        ck_assert_mem_eq(r[0].dB, r[1].dB, sizeof(float) * (size_t)(Bt * K * G * N * L));
        ck_assert_mem_eq(r[0].dC, r[1].dC, sizeof(float) * (size_t)(Bt * K * G * N * L));
        ck_assert_mem_eq(r[0].dD, r[1].dD, sizeof(float) * (size_t)(K * Dm));
        ck_assert_mem_eq(r[0].dbias, r[1].dbias, sizeof(float) * (size_t)(K * Dm));
        scan_res_free(&r[0]); scan_res_free(&r[1]);
        free(dy);
        scan_in_free(&s);
    }
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
    imb_tensor *m = imb_full(c, 2, IMB_SHAPE(2, 6), 1.0f);
    ck_assert_ptr_nonnull(imb_selective_scan(c, u, u, A, B, B, D, D, u, m, 4, 2, 3));
    /* K = 4 sets */
    imb_tensor *d4 = imb_full(c, 3, IMB_SHAPE(2, 16, 6), 0.1f), *A4 = imb_full(c, 2, IMB_SHAPE(16, 3), -1.0f);
    imb_tensor *B4 = imb_full(c, 4, IMB_SHAPE(2, 8, 3, 6), 0.5f), *D4 = imb_full(c, 1, IMB_SHAPE(16), 1.0f);
    ck_assert_ptr_nonnull(imb_selective_scan(c, u, d4, A4, B4, B4, D4, D4, u, m, 4, 2, 3));
    EXPECT_FAIL(c, imb_selective_scan(c, u, d4, A4, B4, B4, D4, D4, NULL, NULL, 2, 0, 0),
                "delta must be [Bt, K*Dm, L] with u's Bt, L, Dm = 4 and K = 1 or K = directions = 2 (got [2, 16, 6])");
    EXPECT_FAIL(c, imb_selective_scan(c, u, imb_full(c, 3, IMB_SHAPE(2, 12, 6), 0.1f), A4, B4, B4, NULL, NULL, NULL,
                                      NULL, 4, 2, 3), "delta must be [Bt, K*Dm, L]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, d4, A, B4, B4, NULL, NULL, NULL, NULL, 4, 2, 3), "A must be [K*Dm, N]");
    imb_tensor *B12 = imb_full(c, 4, IMB_SHAPE(2, 12, 3, 6), 0.5f);
    EXPECT_FAIL(c, imb_selective_scan(c, u, d4, A4, B12, B12, NULL, NULL, NULL, NULL, 4, 2, 3),
                "3 groups do not divide the 4 channels");
    EXPECT_FAIL(c, imb_selective_scan(c, u, d4, A4, B, B, NULL, NULL, NULL, NULL, 4, 2, 3), "B must be [Bt, K*G, N, L]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, d4, A4, imb_full(c, 4, IMB_SHAPE(2, 6, 3, 6), 0.5f), B4, NULL, NULL,
                                      NULL, NULL, 4, 2, 3), "B must be [Bt, K*G, N, L]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, d4, A4, B4, B4, D, NULL, NULL, NULL, 4, 2, 3), "D must be [K*Dm]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, d4, A4, B4, B4, NULL, D, NULL, NULL, 4, 2, 3), "delta_bias must be [K*Dm]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, NULL, NULL, NULL, imb_full(c, 2, IMB_SHAPE(2, 5), 1.0f), 1, 0, 0),
                "mask must be [Bt, L]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, NULL, NULL, NULL, imb_full(c, 1, IMB_SHAPE(12), 1.0f), 1, 0, 0),
                "mask must be [Bt, L]");
    imb_tensor *B3 = imb_full(c, 4, IMB_SHAPE(2, 3, 3, 6), 0.5f);
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B3, B3, NULL, NULL, NULL, NULL, 1, 0, 0), "3 groups do not divide the 4 channels");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, NULL, NULL, NULL, NULL, 4, 2, 2), "4 directions need L = H*W");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, NULL, NULL, NULL, NULL, 4, 0, 6), "4 directions need L = H*W");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, imb_full(c, 2, IMB_SHAPE(3, 3), -1.0f), B, B, NULL, NULL, NULL, NULL, 1, 0, 0),
                "A must be [K*Dm, N]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, imb_full(c, 1, IMB_SHAPE(4), -1.0f), B, B, NULL, NULL, NULL, NULL, 1, 0, 0),
                "A must be [K*Dm, N]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, imb_full(c, 2, IMB_SHAPE(4, 2), -1.0f), B, B, NULL, NULL, NULL, NULL, 1, 0, 0),
                "B must be [Bt, K*G, N, L]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, imb_full(c, 4, IMB_SHAPE(2, 1, 3, 6), 0.5f), NULL, NULL, NULL, NULL, 1, 0, 0),
                "C must have B's shape");
    EXPECT_FAIL(c, imb_selective_scan(c, u, imb_full(c, 3, IMB_SHAPE(2, 4, 5), 0.1f), A, B, B, NULL, NULL, NULL, NULL, 1, 0, 0),
                "delta must be [Bt, K*Dm, L]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, imb_full(c, 1, IMB_SHAPE(3), 1.0f), NULL, NULL, NULL, 1, 0, 0),
                "D must be [K*Dm]");
    EXPECT_FAIL(c, imb_selective_scan(c, u, u, A, B, B, NULL, NULL, NULL, NULL, 3, 0, 0), "directions must be 1, 2 or 4");
    EXPECT_FAIL(c, imb_selective_scan(c, NULL, u, A, B, B, NULL, NULL, NULL, NULL, 1, 0, 0), "input 0 is NULL");
    imb_ctx_free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("scan");
    TCase *tc = tcase_create("scan");
    tcase_add_test(tc, hand_computed_L2_N1);
    tcase_add_test(tc, two_dirs_are_forward_plus_reversed);
    tcase_add_test(tc, four_dirs_are_permuted_scans);
    tcase_add_test(tc, identical_sets_equal_one_set);
    tcase_add_test(tc, padding_is_an_identity_step);
    tcase_add_test(tc, backward_is_deterministic);
    tcase_add_test(tc, bad_shapes_are_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
