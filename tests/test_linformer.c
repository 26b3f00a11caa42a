/* Linformer backbone tests: the mixer against a direct double-precision evaluation, the first
 * L columns of E for shorter inputs, padding invariance of a 1-D batch, the L_max and causal
 * errors, option parsing and parameter names and counts. */
#include "backbone.h"
#include "ctx.h"
#include "rng.h"
#include "checkrun.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static imb_ctx *cpu_ctx(void) {
    char e[256];
    imb_ctx *c = imb_ctx_new(IMB_CPU, 1, e, sizeof e);
    ck_assert_msg(c != NULL, "%s", e);
    return c;
}

static imb_backbone_cfg parse(const char *spec) {
    imb_backbone_cfg c;
    char e[256];
    ck_assert_msg(!imb_backbone_parse(spec, &c, e, sizeof e), "%s: %s", spec, e);
    return c;
}

/* every parameter redrawn from N(0, std) (biases included, so that misplaced ones show) */
static void randomise(imb_ctx *c, float std, uint64_t stream) {
    for (int i = 0; i < c->params.n; i++) {
        imb_tensor *t = c->params.p[i].t;
        float *d = imb_f32(t);
        for (int64_t j = 0; j < imb_numel(t); j++) d[j] = std * imb_rng_normal(11, stream + (uint64_t)i, (uint64_t)j);
    }
}

static float *param_data(imb_ctx *c, const char *name) {
    imb_param *p = imb_param_find(c, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    return imb_f32(p->t);
}

static void fill(float *x, int64_t n, uint64_t stream) {
    for (int64_t i = 0; i < n; i++) x[i] = imb_rng_normal(3, stream, (uint64_t)i);
}

/* The reference: q = x Wqᵀ + bq; K = (E[:, :L] (m ⊙ x)) Wkᵀ + bk, V likewise with F; per head
 * softmax(q Kᵀ / sqrt(Dh)) V; then the output projection. Heads are interleaved as in timm. */
static void reference(double *out, const float *x, const float *mask, const float *qkv_w, const float *qkv_b,
                      const float *proj_w, const float *proj_b, const float *E, const float *F, int L, int C, int H,
                      int k, int lmax) {
    int Dh = C / H;
    double *q = calloc((size_t)(L * C), sizeof *q), *K = calloc((size_t)(k * C), sizeof *K);
    double *V = calloc((size_t)(k * C), sizeof *V), *a = calloc((size_t)(L * C), sizeof *a);
    double *cx = calloc((size_t)(k * C), sizeof *cx), *cf = calloc((size_t)(k * C), sizeof *cf);
    for (int j = 0; j < k; j++)
        for (int c = 0; c < C; c++)
            for (int l = 0; l < L; l++) {
                double xm = (mask ? mask[l] : 1.0) * x[l * C + c];
                cx[j * C + c] += E[j * lmax + l] * xm;
                cf[j * C + c] += F[j * lmax + l] * xm;
            }
    for (int l = 0; l < L; l++)
        for (int o = 0; o < C; o++) {
            double s = qkv_b[o];
            for (int c = 0; c < C; c++) s += qkv_w[o * C + c] * (mask ? mask[l] : 1.0) * x[l * C + c];
            q[l * C + o] = s;
        }
    for (int j = 0; j < k; j++)
        for (int o = 0; o < C; o++) {
            double sk = qkv_b[C + o], sv = qkv_b[2 * C + o];
            for (int c = 0; c < C; c++) {
                sk += qkv_w[(C + o) * C + c] * cx[j * C + c];
                sv += qkv_w[(2 * C + o) * C + c] * cf[j * C + c];
            }
            K[j * C + o] = sk;
            V[j * C + o] = sv;
        }
    for (int h = 0; h < H; h++)
        for (int l = 0; l < L; l++) {
            double s[64], mx = -INFINITY, z = 0;
            for (int j = 0; j < k; j++) {
                s[j] = 0;
                for (int d = 0; d < Dh; d++) s[j] += q[l * C + h * Dh + d] * K[j * C + h * Dh + d];
                s[j] /= sqrt((double)Dh);
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < k; j++) z += (s[j] = exp(s[j] - mx));
            for (int d = 0; d < Dh; d++) {
                double v = 0;
                for (int j = 0; j < k; j++) v += s[j] / z * V[j * C + h * Dh + d];
                a[l * C + h * Dh + d] = v;
            }
        }
    for (int l = 0; l < L; l++)
        for (int o = 0; o < C; o++) {
            double s = proj_b[o];
            for (int c = 0; c < C; c++) s += proj_w[o * C + c] * a[l * C + c];
            out[l * C + o] = s;
        }
    free(q); free(K); free(V); free(a); free(cx); free(cf);
}

/* The mixer alone (through the registry) against the reference, with separate and shared E/F,
 * an input shorter than L_max and a padding mask. */
static void mixer_case(const char *opts, int L, const float *mask) {
    enum { C = 8, H = 2, K = 3, LMAX = 6 };
    imb_ctx *c = cpu_ctx();
    char spec[128];
    snprintf(spec, sizeof spec, "linformer-nano:dim=%d,heads=%d,k=%d,cls_token=0%s", C, H, K, opts);
    imb_backbone_cfg cfg = parse(spec);
    cfg.pos_h = LMAX;
    cfg.pos_w = 1;
    const imb_mixer_def *m = imb_mixer_find("linformer");
    ck_assert_ptr_nonnull(m);
    void *st = m->create(c, &cfg, 0, "attn");
    ck_assert_msg(imb_ok(c), "%s", imb_error(c));
    int shared_kv = strstr(opts, "share_kv=1") != NULL;
    ck_assert_int_eq(imb_param_find(c, "attn.F.weight") == NULL, shared_kv);
    ck_assert_int_eq(imb_params_alloc(c), 0);
    randomise(c, 0.5f, 1);
    imb_step_begin(c, 0);
    float x[LMAX * C];
    fill(x, L * C, 1);
    imb_tensor *tx = imb_input(c, IMB_F32, 3, IMB_SHAPE(1, L, C), x);
    imb_grid g = { L, 1, mask ? imb_input(c, IMB_F32, 2, IMB_SHAPE(1, L), mask) : NULL };
    imb_tensor *y = m->forward(c, st, tx, &g);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    float got[LMAX * C];
    imb_to_host(c, y, got, 0);
    const float *E = param_data(c, "attn.E.weight");
    double want[LMAX * C];
    reference(want, x, mask, param_data(c, "attn.qkv.weight"), param_data(c, "attn.qkv.bias"),
              param_data(c, "attn.proj.weight"), param_data(c, "attn.proj.bias"), E,
              shared_kv ? E : param_data(c, "attn.F.weight"), L, C, H, K, LMAX);
    for (int i = 0; i < L * C; i++)
        if (!mask || mask[i / C] != 0)
            ck_assert_msg(fabs(got[i] - want[i]) <= 1e-4 * (1 + fabs(want[i])), "%s L=%d [%d]: %g vs %g", opts, L, i,
                          got[i], want[i]);
    free(st);
    imb_ctx_free(c);
}

START_TEST(mixer_matches_reference) {
    static const float mask[5] = { 1, 0, 1, 1, 0 };
    mixer_case("", 6, NULL);
    mixer_case("", 4, NULL);
    mixer_case(",share_kv=1", 5, NULL);
    mixer_case("", 5, mask);
    mixer_case(",share_kv=1", 5, mask);
}
END_TEST

/* a backbone for a 1-D grid of lmax tokens (plus the class token), parameters redrawn with std
 * when std > 0 */
static imb_backbone *make_1d(imb_ctx *c, const char *spec, int lmax, float std) {
    imb_backbone_cfg cfg = parse(spec);
    cfg.pos_h = lmax;
    cfg.pos_w = 1;
    cfg.init_std = 0.3f;
    imb_backbone *bb = imb_backbone_create(c, &cfg);
    ck_assert_msg(bb != NULL, "%s", imb_error(c));
    ck_assert_int_eq(imb_params_alloc(c), 0);
    if (std > 0) randomise(c, std, 7);
    return bb;
}

/* features [B, L, C] and pooled [B, C] of tokens [B, L, C] on a 1-D grid with an optional mask */
static void run_1d(imb_ctx *c, imb_backbone *bb, const float *x, const float *mask, int B, int L, float *feats,
                   float *pooled) {
    int C = bb->cfg.dims[0];
    imb_step_begin(c, 0);
    imb_tensor *tx = imb_input(c, IMB_F32, 3, IMB_SHAPE(B, L, C), x);
    imb_grid g = { L, 1, mask ? imb_input(c, IMB_F32, 2, IMB_SHAPE(B, L), mask) : NULL };
    imb_backbone_out out;
    ck_assert_msg(!imb_backbone_forward(c, bb, tx, g, &out), "%s", imb_error(c));
    imb_to_host(c, out.feats[0], feats, 0);
    imb_to_host(c, out.pooled, pooled, 0);
}

/* Sequences of 5 and 3 tokens, alone and then as one batch padded to 7 with large garbage in the
 * padded slots: the real tokens' features and the pooled vectors must not change. The same batch
 * without its mask must change them (so the comparison can see a leak). */
static void padding_case(const char *spec) {
    enum { C = 8, LMAX = 8, LP = 7 };
    static const int len[2] = { 5, 3 };
    imb_ctx *c = cpu_ctx();
    imb_backbone *bb = make_1d(c, spec, LMAX, 0.3f);
    float xp[2 * LP * C], mask[2 * LP], fp[2 * LP * C], pp[2 * C], fn[2 * LP * C], pn[2 * C];
    for (int b = 0; b < 2; b++)
        for (int l = 0; l < LP; l++) {
            mask[b * LP + l] = l < len[b];
            for (int ch = 0; ch < C; ch++)
                xp[(b * LP + l) * C + ch] = l < len[b] ? imb_rng_normal(5, (uint64_t)b, (uint64_t)(l * C + ch))
                                                       : 50.0f * (float)((l + ch) % 3 - 1) + 7.0f;
        }
    run_1d(c, bb, xp, mask, 2, LP, fp, pp);
    run_1d(c, bb, xp, NULL, 2, LP, fn, pn);
    double leak = 0;
    for (int b = 0; b < 2; b++) {
        float f1[LP * C], p1[C];
        run_1d(c, bb, xp + b * LP * C, NULL, 1, len[b], f1, p1);
        for (int i = 0; i < len[b] * C; i++) {
            float got = fp[b * LP * C + i];
            ck_assert_msg(fabsf(got - f1[i]) <= 1e-5f * (1 + fabsf(f1[i])), "%s: seq %d feature %d: %g padded vs %g",
                          spec, b, i, got, f1[i]);
            leak = fmax(leak, fabs(fn[b * LP * C + i] - f1[i]));
        }
        for (int i = 0; i < C; i++)
            ck_assert_msg(fabsf(pp[b * C + i] - p1[i]) <= 1e-5f * (1 + fabsf(p1[i])), "%s: seq %d pooled %d: %g vs %g",
                          spec, b, i, pp[b * C + i], p1[i]);
    }
    ck_assert_msg(leak > 1e-2, "%s: the unmasked padded batch matched too (max diff %g): the test sees no leak", spec,
                  leak);
    imb_backbone_free(bb);
    imb_ctx_free(c);
}

START_TEST(padding_invariance_1d) {
    padding_case("linformer-nano:dim=8,heads=2,depth=2,k=3,pos_embed=0,cls_token=0");
    padding_case("linformer-nano:dim=8,heads=2,depth=2,k=3,pos_embed=0,cls_token=1");
    padding_case("linformer-nano:dim=8,heads=2,depth=2,k=3,pos_embed=0,cls_token=1,share_kv=1,share_layers=1");
    padding_case("linformer-nano:dim=8,heads=2,depth=2,k=3,pos_embed=0,cls_token=0,share_layers=1");
}
END_TEST

/* Columns of E past the input's length are never read; the first ones are. */
START_TEST(shorter_input_uses_first_columns) {
    enum { C = 8, LMAX = 6, L = 4, K = 3 };
    imb_ctx *c = cpu_ctx();
    imb_backbone *bb = make_1d(c, "linformer-nano:dim=8,heads=2,depth=1,k=3,pos_embed=0,cls_token=0,share_kv=1", LMAX, 0.3f);
    float x[L * C], f0[L * C], f1[L * C], f2[L * C], p[C];
    fill(x, L * C, 4);
    run_1d(c, bb, x, NULL, 1, L, f0, p);
    float *E = param_data(c, "blocks.0.attn.E.weight");
    for (int j = 0; j < K; j++)
        for (int l = L; l < LMAX; l++) E[j * LMAX + l] = 1e6f;
    run_1d(c, bb, x, NULL, 1, L, f1, p);
    ck_assert_mem_eq(f0, f1, sizeof f0);
    E[0] += 1.0f;
    run_1d(c, bb, x, NULL, 1, L, f2, p);
    ck_assert_msg(memcmp(f0, f2, sizeof f0) != 0, "E's first column does not reach the output");
    imb_backbone_free(bb);
    imb_ctx_free(c);
}
END_TEST

START_TEST(longer_than_lmax_is_an_error) {
    imb_ctx *c = cpu_ctx();
    /* 1-D: E sized for 6 tokens, given 7 */
    imb_backbone *bb = make_1d(c, "linformer-nano:dim=8,heads=2,depth=1,k=3,cls_token=0", 6, 0.3f);
    float x[7 * 8], f[7 * 8], p[8];
    fill(x, 7 * 8, 2);
    run_1d(c, bb, x, NULL, 1, 6, f, p);
    imb_step_begin(c, 0);
    imb_backbone_out out;
    ck_assert_int_ne(imb_backbone_forward(c, bb, imb_input(c, IMB_F32, 3, IMB_SHAPE(1, 7, 8), x),
                                          (imb_grid){ 7, 1, NULL }, &out), 0);
    ck_assert_msg(strstr(imb_error(c), "linformer-nano: sequence of 7 tokens is longer than L_max = 6"), "%s",
                  imb_error(c));
    imb_backbone_free(bb);
    imb_ctx_free(c);
    /* an image grid: 2x3 positions + the class token = 7; a 3x3 grid gives 10 */
    c = cpu_ctx();
    imb_backbone_cfg cfg = parse("linformer-t:dim=8,heads=2,depth=1,k=3");
    cfg.pos_h = 2;
    cfg.pos_w = 3;
    bb = imb_backbone_create(c, &cfg);
    ck_assert_int_eq(imb_params_alloc(c), 0);
    imb_step_begin(c, 0);
    float img[9 * 8];
    fill(img, 9 * 8, 3);
    ck_assert_int_ne(imb_backbone_forward(c, bb, imb_input(c, IMB_F32, 3, IMB_SHAPE(1, 9, 8), img),
                                          (imb_grid){ 3, 3, NULL }, &out), 0);
    ck_assert_msg(strstr(imb_error(c), "linformer-t: sequence of 10 tokens is longer than L_max = 7"), "%s",
                  imb_error(c));
    imb_backbone_free(bb);
    imb_ctx_free(c);
}
END_TEST

/* create fails with want in the message */
static void expect_create_error(const char *spec, int causal, const char *want) {
    imb_ctx *c = cpu_ctx();
    imb_backbone_cfg cfg = parse(spec);
    if (causal) cfg.causal = 1;
    imb_backbone *bb = imb_backbone_create(c, &cfg);
    ck_assert_msg(bb == NULL, "%s: created", spec);
    ck_assert_msg(strstr(imb_error(c), want) != NULL, "%s: expected \"%s\" in \"%s\"", spec, want, imb_error(c));
    imb_ctx_free(c);
}

START_TEST(options_and_errors) {
    imb_backbone_cfg cfg = parse("linformer-t:k=32,share_kv=1,share_layers=0");
    ck_assert_str_eq(imb_backbone_opt(&cfg, "k", ""), "32");
    ck_assert_str_eq(imb_backbone_opt(&cfg, "share_kv", ""), "1");
    imb_backbone_cfg s = parse("linformer-s"), n = parse("linformer");   /* the bare name: nano */
    ck_assert_str_eq(imb_backbone_opt(&s, "k", ""), "64");
    ck_assert_str_eq(n.preset, "linformer-nano");
    ck_assert_str_eq(imb_backbone_opt(&n, "k", ""), "8");
    char e[256];
    ck_assert_int_ne(imb_backbone_parse("linformer-nano:kk=3", &cfg, e, sizeof e), 0);
    ck_assert_msg(strstr(e, "unknown backbone option 'kk' for linformer; valid:") && strstr(e, "k share_kv share_layers"),
                  "%s", e);
    ck_assert_int_ne(imb_backbone_parse("vit-nano:k=3", &cfg, e, sizeof e), 0);   /* Linformer's keys only */
    ck_assert_int_ne(imb_backbone_parse("linformer-xl", &cfg, e, sizeof e), 0);
    ck_assert_msg(strstr(e, "linformer-nano linformer-t linformer-s"), "%s", e);
    expect_create_error("linformer-nano:k=0", 0, "linformer-nano: option k=0: expected an integer in [1, 65536]");
    expect_create_error("linformer-nano:k=12x", 0, "option k=12x: expected an integer");
    expect_create_error("linformer-nano:k=", 0, "option k=: expected an integer");
    expect_create_error("linformer-nano:share_kv=2", 0, "option share_kv=2: expected an integer in [0, 1]");
    expect_create_error("linformer-nano:share_layers=yes", 0, "option share_layers=yes: expected an integer in [0, 1]");
    expect_create_error("linformer-nano:heads=3", 0, "linformer-nano: 3 heads do not divide width 128");
    expect_create_error("linformer-nano", 1, "linformer-nano: causal=1 is not supported");
    expect_create_error("linformer-s:causal=1", 0, "linformer-s: causal=1 is not supported");
}
END_TEST

static int64_t count_params(imb_ctx *c) {
    int64_t n = 0;
    for (int i = 0; i < c->params.n; i++) n += imb_numel(c->params.p[i].t);
    return n;
}

static void expect_shape(imb_ctx *c, const char *name, int64_t d0, int64_t d1) {
    imb_param *p = imb_param_find(c, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    ck_assert_int_eq(p->t->ndim, 2);
    ck_assert_int_eq(p->t->shape[0], d0);
    ck_assert_int_eq(p->t->shape[1], d1);
}

/* A preset's backbone parameters on a 14x14 grid: the ViT block (12 C^2 + 13 C with mlp_ratio 4),
 * positions, class token, final norm, plus E/F of [k, L_max] per layer or once. */
static void count_case(const char *spec, int C, int depth, int cls, int k, int nproj, int shared_layers) {
    imb_ctx *c = cpu_ctx();
    imb_backbone_cfg cfg = parse(spec);
    imb_backbone *bb = imb_backbone_create(c, &cfg);
    ck_assert_msg(bb != NULL, "%s", imb_error(c));
    int64_t lmax = 196 + cls;
    int64_t vit = (int64_t)depth * (12LL * C * C + 13LL * C) + (lmax + 2) * C + (cls ? C : 0);
    int64_t proj = (int64_t)nproj * k * lmax * (shared_layers ? 1 : depth);
    ck_assert_msg(count_params(c) == vit + proj, "%s: %lld parameters, expected %lld", spec, (long long)count_params(c),
                  (long long)(vit + proj));
    const char *blockE = "blocks.0.attn.E.weight", *blockF = "blocks.0.attn.F.weight";
    if (shared_layers) {
        expect_shape(c, "E.weight", k, lmax);
        ck_assert_ptr_null(imb_param_find(c, blockE));
        ck_assert_int_eq(imb_param_find(c, "F.weight") != NULL, nproj == 2);
    } else {
        expect_shape(c, blockE, k, lmax);
        char last[64];
        snprintf(last, sizeof last, "blocks.%d.attn.E.weight", depth - 1);
        expect_shape(c, last, k, lmax);
        ck_assert_int_eq(imb_param_find(c, blockF) != NULL, nproj == 2);
        ck_assert_ptr_null(imb_param_find(c, "E.weight"));
    }
    expect_shape(c, "blocks.0.attn.qkv.weight", 3 * C, C);
    expect_shape(c, "blocks.0.attn.proj.weight", C, C);
    imb_backbone_free(bb);
    imb_ctx_free(c);
}

START_TEST(parameter_counts_and_names) {
    count_case("linformer-nano", 128, 5, 0, 8, 2, 0);
    count_case("linformer-t", 192, 12, 1, 64, 2, 0);
    count_case("linformer-s", 384, 12, 1, 64, 2, 0);
    count_case("linformer-s:share_kv=1", 384, 12, 1, 64, 1, 0);
    count_case("linformer-s:share_layers=1", 384, 12, 1, 64, 2, 1);
    count_case("linformer-t:share_kv=1,share_layers=1,k=32", 192, 12, 1, 32, 1, 1);
    /* linformer-s = ViT-S (21.37M without patch embedding and head) + 12 x 2 x 64 x 197 */
    imb_ctx *c = cpu_ctx();
    imb_backbone_cfg cfg = parse("linformer-s");
    imb_backbone *bb = imb_backbone_create(c, &cfg);
    ck_assert_int_eq(count_params(c), 21370368 + 302592);
    imb_backbone_free(bb);
    imb_ctx_free(c);
}
END_TEST

/* A few training steps of a padded 1-D batch through the tape: a finite loss that goes down. */
START_TEST(trains_on_padded_batch) {
    enum { B = 2, L = 6, C = 8 };
    imb_ctx *c = cpu_ctx();
    /* L_max = L + the class token; both sequences end in padding, so E's last column never
     * meets a real token and its gradient must stay exactly zero */
    imb_backbone *bb = make_1d(c, "linformer-nano:dim=8,heads=2,depth=2,k=3,cls_token=1,share_layers=1", L, 0);
    float x[B * L * C], mask[B * L] = { 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0 }, first = 0, last = 0;
    fill(x, B * L * C, 6);
    for (int step = 0; step < 30; step++) {
        imb_step_begin(c, 1);
        imb_params_zero_grad(c);
        imb_backbone_out out;
        imb_tensor *tx = imb_input(c, IMB_F32, 3, IMB_SHAPE(B, L, C), x);
        imb_grid g = { L, 1, imb_input(c, IMB_F32, 2, IMB_SHAPE(B, L), mask) };
        ck_assert_msg(!imb_backbone_forward(c, bb, tx, g, &out), "%s", imb_error(c));
        /* pull the pooled vectors towards +1 in every channel: sum((p - 1)^2) by hand on the host */
        float p[B * C], dp[B * C], loss = 0;
        imb_to_host(c, out.pooled, p, 0);
        for (int i = 0; i < B * C; i++) {
            loss += (p[i] - 1) * (p[i] - 1);
            dp[i] = 2 * (p[i] - 1);
        }
        ck_assert(isfinite(loss));
        if (step == 0) first = loss;
        last = loss;
        ck_assert_msg(!imb_backward_seed(c, out.pooled, dp), "%s", imb_error(c));
        for (int i = 0; i < c->params.n; i++) {
            imb_tensor *t = c->params.p[i].t;
            float *d = imb_f32(t), *gr = imb_gradf(t);
            for (int64_t j = 0; j < imb_numel(t); j++) d[j] -= 0.05f * gr[j];
        }
    }
    ck_assert_msg(last < 0.5f * first, "loss %g -> %g", first, last);
    const float *dE = imb_gradf(imb_param_find(c, "E.weight")->t);
    for (int j = 0; j < 3; j++) {
        ck_assert_float_eq(dE[j * (L + 1) + L], 0.0f);
        ck_assert_float_ne(dE[j * (L + 1)], 0.0f);
    }
    imb_backbone_free(bb);
    imb_ctx_free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("linformer");
    TCase *tc = tcase_create("linformer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mixer_matches_reference);
    tcase_add_test(tc, padding_invariance_1d);
    tcase_add_test(tc, shorter_input_uses_first_columns);
    tcase_add_test(tc, longer_than_lmax_is_an_error);
    tcase_add_test(tc, options_and_errors);
    tcase_add_test(tc, parameter_counts_and_names);
    tcase_add_test(tc, trains_on_padded_batch);
    suite_add_tcase(s, tc);
    return imb_check_run(srunner_create(s));
}
