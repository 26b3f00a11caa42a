/* VMamba backbone tests: SS2D against a direct double-precision transcription of VMamba's
 * forward, preset parameter counts, 1-D padding as identity steps, odd-grid merging, options. */
#include "backbone.h"
#include "ctx.h"
#include "rng.h"
#include "checkrun.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static imb_ctx *cpu_ctx(void) {
    char e[256];
    imb_ctx *c = imb_ctx_new(IMB_CPU, 7, e, sizeof e);
    ck_assert_msg(c != NULL, "%s", e);
    return c;
}

static imb_backbone_cfg parse(const char *spec) {
    imb_backbone_cfg cfg;
    char e[256];
    ck_assert_msg(imb_backbone_parse(spec, &cfg, e, sizeof e) == 0, "%s", e);
    return cfg;
}

static const float *pf(imb_ctx *c, const char *name) {
    imb_param *p = imb_param_find(c, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    return imb_f32(p->t);
}

static double sp(double x) { return x > 20 ? x : log1p(exp(x)); }

/* VMamba's SS2D forward (v05_noz) for one sample, from its definition: in_proj, depthwise conv
 * (3x3 on an H x W grid; on a 1-D grid 3 taps, centred or causal), SiLU, then per direction k
 * (k = 0 row-major, 1 column-major, 2 and 3 those reversed; on a 1-D grid 0 forward, 1 reversed)
 * x_proj_weight[k] -> (dt rank, B, C), delta = dt_projs_weight[k] dt + dt_projs_bias[k], the
 * sequential selective scan in that order with A = -exp(A_logs), y += C.h + Ds u; out_norm,
 * out_proj. x [L, Cm] -> out [L, Cm]. */
typedef struct { int L, H, W, Cm, E, N, R, K, one_d, causal; } ss2d_dims;

static void ss2d_ref(imb_ctx *c, const ss2d_dims *d, const float *x, double *out) {
    const int L = d->L, Cm = d->Cm, E = d->E, N = d->N, R = d->R, J = R + 2 * N;
    const float *in_w = pf(c, "op.in_proj.weight"), *xw = pf(c, "op.x_proj_weight");
    const float *dtw = pf(c, "op.dt_projs_weight"), *dtb = pf(c, "op.dt_projs_bias"), *Al = pf(c, "op.A_logs");
    const float *Ds = pf(c, "op.Ds"), *nw = pf(c, "op.out_norm.weight"), *nb = pf(c, "op.out_norm.bias");
    const float *ow = pf(c, "op.out_proj.weight");
    const float *cw = pf(c, d->one_d ? "op.conv1d.weight" : "op.conv2d.weight");
    double *h = calloc((size_t)(L * E), sizeof *h), *u = calloc((size_t)(L * E), sizeof *u);
    double *y = calloc((size_t)(L * E), sizeof *y), *xd = calloc((size_t)(L * J), sizeof *xd);
    for (int t = 0; t < L; t++)
        for (int e = 0; e < E; e++)
            for (int k = 0; k < Cm; k++) h[t * E + e] += (double)in_w[e * Cm + k] * x[t * Cm + k];
    for (int t = 0; t < L; t++)
        for (int e = 0; e < E; e++) {
            double a = 0;
            if (d->one_d) {
                for (int k = 0; k < 3; k++) {
                    int s = t + k - (d->causal ? 2 : 1);
                    if (s >= 0 && s < L) a += (double)cw[e * 3 + k] * h[s * E + e];
                }
            } else {
                int i = t / d->W, j = t % d->W;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int ii = i + ky - 1, jj = j + kx - 1;
                        if (ii >= 0 && ii < d->H && jj >= 0 && jj < d->W)
                            a += (double)cw[e * 9 + ky * 3 + kx] * h[(ii * d->W + jj) * E + e];
                    }
            }
            u[t * E + e] = a / (1 + exp(-a));
        }
    for (int k = 0; k < d->K; k++) {
        for (int t = 0; t < L; t++)
            for (int j = 0; j < J; j++) {
                double a = 0;
                for (int e = 0; e < E; e++) a += (double)xw[(k * J + j) * E + e] * u[t * E + e];
                xd[t * J + j] = a;
            }
        for (int e = 0; e < E; e++) {
            double st[16] = { 0 };
            for (int s = 0; s < L; s++) {
                int q = (k >= 2 || (d->one_d && k == 1)) ? L - 1 - s : s, t = q;
                if (!d->one_d && (k & 1)) t = (q % d->H) * d->W + q / d->H;   /* walk down a column */
                double dl = dtb[k * E + e];
                for (int r = 0; r < R; r++) dl += (double)dtw[(k * E + e) * R + r] * xd[t * J + r];
                double dt = sp(dl), acc = 0;
                for (int n = 0; n < N; n++) {
                    double A = -exp((double)Al[(k * E + e) * N + n]);
                    st[n] = exp(dt * A) * st[n] + dt * xd[t * J + R + n] * u[t * E + e];
                    acc += xd[t * J + R + N + n] * st[n];
                }
                y[t * E + e] += acc + (double)Ds[k * E + e] * u[t * E + e];
            }
        }
    }
    for (int t = 0; t < L; t++) {
        double m = 0, v = 0;
        for (int e = 0; e < E; e++) m += y[t * E + e] / E;
        for (int e = 0; e < E; e++) v += (y[t * E + e] - m) * (y[t * E + e] - m) / E;
        for (int e = 0; e < E; e++) y[t * E + e] = (y[t * E + e] - m) / sqrt(v + 1e-5) * nw[e] + nb[e];
        for (int k = 0; k < Cm; k++) {
            double a = 0;
            for (int e = 0; e < E; e++) a += (double)ow[k * E + e] * y[t * E + e];
            out[t * Cm + k] = a;
        }
    }
    free(h); free(u); free(y); free(xd);
}

/* the mixer on random tokens [2, L, Cm] against ss2d_ref, sample by sample */
static void check_ss2d(const char *spec, int H, int W, int K, int one_d, int causal) {
    enum { B = 2, Cm = 4 };
    imb_backbone_cfg cfg = parse(spec);
    cfg.dims[0] = Cm;
    cfg.pos_h = H, cfg.pos_w = W;
    cfg.init_std = 0.5f;
    imb_ctx *c = cpu_ctx();
    const imb_mixer_def *m = imb_mixer_find("vmamba");
    void *st = m->create(c, &cfg, 0, "op");
    ck_assert_msg(st && imb_params_alloc(c) == 0, "%s", imb_error(c));
    const int L = H * W;
    ss2d_dims d = { L, H, W, Cm, (int)imb_param_find(c, "op.in_proj.weight")->t->shape[0],
                    (int)imb_param_find(c, "op.A_logs")->t->shape[1], 0, K, one_d, causal };
    d.R = (int)imb_param_find(c, "op.dt_projs_weight")->t->shape[2];
    ck_assert_int_eq(imb_param_find(c, "op.x_proj_weight")->t->shape[0], K);
    float x[B * 16 * Cm], y[B * 16 * Cm];
    ck_assert_int_le(L, 16);
    for (int i = 0; i < B * L * Cm; i++) x[i] = imb_rng_normal(3, 1, (uint64_t)i);
    imb_step_begin(c, 0);
    imb_grid g = { H, W, NULL };
    imb_tensor *out = m->forward(c, st, imb_input(c, IMB_F32, 3, IMB_SHAPE(B, L, Cm), x), &g);
    ck_assert_msg(out != NULL, "%s", imb_error(c));
    ck_assert_int_eq(imb_to_host(c, out, y, 0), 0);
    double ref[16 * Cm];
    for (int b = 0; b < B; b++) {
        ss2d_ref(c, &d, x + b * L * Cm, ref);
        for (int i = 0; i < L * Cm; i++)
            ck_assert_msg(fabs(y[b * L * Cm + i] - ref[i]) <= 1e-4 * (1 + fabs(ref[i])), "%s b %d [%d]: %g vs %g",
                          spec, b, i, (double)y[b * L * Cm + i], ref[i]);
    }
    free(st);
    imb_ctx_free(c);
}

/* ssm_init=v1 (normal dt and A) so the scan is a visible share of the output */
START_TEST(ss2d_matches_reference_2d) {
    check_ss2d("vmamba-nano:d_state=3,dt_rank=2,ssm_ratio=1.5,ssm_init=v1", 3, 4, 4, 0, 0);
    check_ss2d("vmamba-nano:d_state=1,ssm_init=v1", 2, 2, 4, 0, 0);
    check_ss2d("vmamba-nano", 4, 3, 4, 0, 0);   /* the real initialisation */
}
END_TEST

START_TEST(ss2d_matches_reference_1d) {
    check_ss2d("vmamba-nano:d_state=2,dt_rank=3,ssm_init=v1", 7, 1, 2, 1, 0);
    check_ss2d("vmamba-nano:d_state=2,dt_rank=3,ssm_init=v1,causal=1", 7, 1, 1, 1, 1);
}
END_TEST

static int64_t param_count(imb_ctx *c) {
    int64_t n = 0;
    for (int i = 0; i < c->params.n; i++) n += imb_numel(c->params.p[i].t);
    return n;
}

/* every preset's count from the layer shapes (VMamba's SS2D with K = 4 sets, the skeleton's
 * norms, MLP and 2x2 merging), and nano within the project's ~1M budget */
START_TEST(preset_parameter_counts) {
    static const char *const presets[] = { "vmamba-nano", "vmamba-t", "vmamba-s", "vmamba-b" };
    for (int p = 0; p < 4; p++) {
        imb_backbone_cfg cfg = parse(presets[p]);
        int64_t want = 0;
        for (int s = 0; s < cfg.nstages; s++) {
            int64_t C = cfg.dims[s], E = 2 * C, N = 1, R = (C + 15) / 16, K = 4;
            int64_t ss2d = E * C + E * 9 + K * (R + 2 * N) * E + K * E * R + K * E + K * E * N + K * E + 2 * E + C * E;
            int64_t block = 4 * C + ss2d + 4 * C * C + 4 * C + 4 * C * C + C;
            want += cfg.depths[s] * block;
            if (s > 0) want += 2 * 4 * cfg.dims[s - 1] + C * 4 * cfg.dims[s - 1];
        }
        want += 2 * cfg.dims[cfg.nstages - 1];
        imb_ctx *c = cpu_ctx();
        imb_backbone *bb = imb_backbone_create(c, &cfg);
        ck_assert_msg(bb != NULL, "%s", imb_error(c));
        int64_t got = param_count(c);
        ck_assert_msg(got == want, "%s: %lld parameters, expected %lld", presets[p], (long long)got, (long long)want);
        printf("%s: %lld backbone parameters\n", presets[p], (long long)got);
        if (p == 0) ck_assert_int_le(got, 1000000);
        imb_backbone_free(bb);
        imb_ctx_free(c);
    }
    ck_assert_int_eq(parse("vmamba-t").depths[2], 5);
    ck_assert_int_eq(parse("vmamba-s").depths[2], 15);
    ck_assert_int_eq(parse("vmamba-b").dims[3], 1024);
}
END_TEST

/* Runs bb on tokens [B, L, C] (grid L x 1, mask [B, L] or NULL); copies the stage's features
 * [B, L, C] into f and the pooled vector [B, C] into pooled. */
static void run_1d(imb_ctx *c, imb_backbone *bb, const float *tok, const float *mask, int B, int L, int C, float *f,
                   float *pooled) {
    imb_step_begin(c, 0);
    imb_grid g = { L, 1, mask ? imb_input(c, IMB_F32, 2, IMB_SHAPE(B, L), mask) : NULL };
    imb_backbone_out out;
    ck_assert_msg(imb_backbone_forward(c, bb, imb_input(c, IMB_F32, 3, IMB_SHAPE(B, L, C), tok), g, &out) == 0, "%s",
                  imb_error(c));
    ck_assert_int_eq(imb_to_host(c, out.feats[0], f, 0), 0);
    ck_assert_int_eq(imb_to_host(c, out.pooled, pooled, 0), 0);
}

/* A padded batch (lengths 5 and 3, padded to 8 with junk tokens) gives every real token, and the
 * pooled vector, what each sequence alone gives: padded steps are identity steps of the scan in
 * both directions, and padding never reaches a real token through the conv. */
START_TEST(padding_changes_no_real_token_1d) {
    enum { C = 8, Lmax = 8 };
    static const int len[2] = { 5, 3 };
    for (int causal = 0; causal < 2; causal++) {
        imb_backbone_cfg cfg = parse(causal ? "vmamba-nano:d_state=2,causal=1,ssm_init=v1" : "vmamba-nano:d_state=2,ssm_init=v1");
        imb_backbone_isotropic(&cfg);
        cfg.dims[0] = C, cfg.depths[0] = 2;
        cfg.pos_h = Lmax, cfg.pos_w = 1;
        cfg.init_std = 0.5f;
        imb_ctx *c = cpu_ctx();
        imb_backbone *bb = imb_backbone_create(c, &cfg);
        ck_assert_msg(bb && imb_params_alloc(c) == 0, "%s", imb_error(c));
        ck_assert_int_eq(imb_param_find(c, "blocks.0.op.Ds")->t->shape[0], (causal ? 1 : 2) * 2 * C);
        float tok[2 * Lmax * C], mask[2 * Lmax], f[2 * Lmax * C], pooled[2 * C], f1[Lmax * C], p1[C];
        for (int i = 0; i < 2 * Lmax * C; i++) tok[i] = imb_rng_normal(4, 2, (uint64_t)i);
        for (int i = 0; i < 2 * Lmax; i++) mask[i] = i % Lmax < len[i / Lmax] ? 1.0f : 0.0f;
        run_1d(c, bb, tok, mask, 2, Lmax, C, f, pooled);
        for (int b = 0; b < 2; b++) {
            run_1d(c, bb, tok + b * Lmax * C, NULL, 1, len[b], C, f1, p1);
            for (int i = 0; i < len[b] * C; i++)
                ck_assert_msg(fabsf(f[b * Lmax * C + i] - f1[i]) <= 1e-5f * (1 + fabsf(f1[i])),
                              "causal %d b %d feature %d: %g vs %g", causal, b, i, (double)f[b * Lmax * C + i],
                              (double)f1[i]);
            for (int i = 0; i < C; i++)
                ck_assert_msg(fabsf(pooled[b * C + i] - p1[i]) <= 1e-5f * (1 + fabsf(p1[i])),
                              "causal %d b %d pooled %d: %g vs %g", causal, b, i, (double)pooled[b * C + i], (double)p1[i]);
        }
        imb_backbone_free(bb);
        imb_ctx_free(c);
    }
}
END_TEST

/* A causal model's output at t depends on tokens up to t only */
START_TEST(causal_sees_no_future) {
    enum { C = 8, L = 6 };
    imb_backbone_cfg cfg = parse("vmamba-nano:d_state=2,causal=1,ssm_init=v1");
    imb_backbone_isotropic(&cfg);
    cfg.dims[0] = C, cfg.depths[0] = 2;
    cfg.pos_h = L, cfg.pos_w = 1;
    cfg.init_std = 0.5f;
    imb_ctx *c = cpu_ctx();
    imb_backbone *bb = imb_backbone_create(c, &cfg);
    ck_assert_msg(bb && imb_params_alloc(c) == 0, "%s", imb_error(c));
    float tok[L * C], f0[L * C], f1[L * C], p[C];
    for (int i = 0; i < L * C; i++) tok[i] = imb_rng_normal(4, 3, (uint64_t)i);
    run_1d(c, bb, tok, NULL, 1, L, C, f0, p);
    /* change tokens 4 and 5 (not by a constant over the channels, which the norms remove) */
    for (int i = 4 * C; i < L * C; i++) tok[i] += 0.3f * (float)(i % C);
    run_1d(c, bb, tok, NULL, 1, L, C, f1, p);
    ck_assert_mem_eq(f0, f1, sizeof(float) * 4 * C);
    ck_assert(fabsf(f0[4 * C] - f1[4 * C]) > 1e-4f);
    imb_backbone_free(bb);
    imb_ctx_free(c);
}
END_TEST

/* An odd grid merges as if padded with zero tokens at the bottom and right (VMamba's
 * PatchMerging2D): a 3x3 grid and the same tokens in a 4x4 grid of zeros give stage 1 the same
 * 2x2 tokens (stage 0 has no blocks here, so nothing mixes the padding in first). */
START_TEST(odd_grid_merges_zero_padded) {
    enum { C = 4 };
    imb_backbone_cfg cfg = parse("vmamba-nano");
    cfg.dims[0] = C, cfg.dims[1] = 8, cfg.depths[0] = 0, cfg.depths[1] = 1;
    cfg.pos_h = cfg.pos_w = 4;
    cfg.init_std = 0.5f;
    imb_ctx *c = cpu_ctx();
    imb_backbone *bb = imb_backbone_create(c, &cfg);
    ck_assert_msg(bb && imb_params_alloc(c) == 0, "%s", imb_error(c));
    float t3[9 * C], t4[16 * C] = { 0 }, f[2][4 * 8];
    for (int i = 0; i < 9 * C; i++) t3[i] = t4[((i / C) / 3 * 4 + (i / C) % 3) * C + i % C] = imb_rng_normal(4, 4, (uint64_t)i);
    for (int k = 0; k < 2; k++) {
        imb_step_begin(c, 0);
        int S = k ? 4 : 3;
        imb_backbone_out out;
        imb_grid g = { S, S, NULL };
        ck_assert_msg(imb_backbone_forward(c, bb, imb_input(c, IMB_F32, 3, IMB_SHAPE(1, S * S, C), k ? t4 : t3), g,
                                           &out) == 0, "%s", imb_error(c));
        ck_assert_int_eq(out.grids[1].H, 2);
        ck_assert_int_eq(out.grids[1].W, 2);
        ck_assert_int_eq(imb_to_host(c, out.feats[1], f[k], 0), 0);
    }
    for (int i = 0; i < 4 * 8; i++) ck_assert_float_eq_tol(f[0][i], f[1][i], 1e-5f);
    imb_backbone_free(bb);
    imb_ctx_free(c);
}
END_TEST

/* creating with cfg fails and the message holds want */
static void expect_create_fails(imb_backbone_cfg cfg, const char *want) {
    imb_ctx *c = cpu_ctx();
    imb_backbone *bb = imb_backbone_create(c, &cfg);
    ck_assert_ptr_null(bb);
    ck_assert_msg(strstr(imb_error(c), want) != NULL, "expected \"%s\" in \"%s\"", want, imb_error(c));
    imb_ctx_free(c);
}

START_TEST(bad_options_are_errors) {
    imb_backbone_cfg cfg;
    char e[256];
    ck_assert_int_ne(imb_backbone_parse("vmamba-t:d_stat=2", &cfg, e, sizeof e), 0);
    ck_assert_msg(strstr(e, "d_state ssm_ratio dt_rank directions") != NULL, "%s", e);
    expect_create_fails(parse("vmamba-nano:d_state=0"), "option d_state=0: expected an integer in [1, 256]");
    expect_create_fails(parse("vmamba-nano:dt_rank=x"), "option dt_rank=x");
    expect_create_fails(parse("vmamba-nano:directions=3"), "option directions=3");
    expect_create_fails(parse("vmamba-nano:ssm_ratio=abc"), "option ssm_ratio=abc");
    expect_create_fails(parse("vmamba-nano:ssm_init=v7"), "option ssm_init=v7");
    expect_create_fails(parse("vmamba-nano:causal=1"), "causal=1 needs a 1-D grid");
    expect_create_fails(parse("vmamba-nano:cls_token=1"), "cls_token=1 needs a 1-D grid");
    imb_backbone_cfg one = parse("vmamba-nano:directions=4");
    imb_backbone_isotropic(&one);
    one.pos_h = 9, one.pos_w = 1;
    expect_create_fails(one, "4 directions (cross-scan) need a 2-D grid");
    /* a 1-D model fed a 2-D grid */
    one = parse("vmamba-nano");
    imb_backbone_isotropic(&one);
    one.dims[0] = 8, one.depths[0] = 1;
    one.pos_h = 4, one.pos_w = 1;
    imb_ctx *c = cpu_ctx();
    imb_backbone *bb = imb_backbone_create(c, &one);
    ck_assert_msg(bb && imb_params_alloc(c) == 0, "%s", imb_error(c));
    imb_step_begin(c, 0);
    imb_backbone_out out;
    ck_assert_int_ne(imb_backbone_forward(c, bb, imb_full(c, 3, IMB_SHAPE(1, 4, 8), 0.5f), (imb_grid){ 2, 2, NULL },
                                          &out), 0);
    ck_assert_msg(strstr(imb_error(c), "built for a 1-D grid") != NULL, "%s", imb_error(c));
    imb_backbone_free(bb);
    imb_ctx_free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("vmamba");
    TCase *tc = tcase_create("vmamba");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ss2d_matches_reference_2d);
    tcase_add_test(tc, ss2d_matches_reference_1d);
    tcase_add_test(tc, preset_parameter_counts);
    tcase_add_test(tc, padding_changes_no_real_token_1d);
    tcase_add_test(tc, causal_sees_no_future);
    tcase_add_test(tc, odd_grid_merges_zero_padded);
    tcase_add_test(tc, bad_options_are_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
