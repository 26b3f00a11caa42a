/* CTC tests: the loss and its gradient against brute-force enumeration of every alignment,
 * the reductions and zero_infinity, bad inputs, the stem's length arithmetic and batch
 * independence, greedy and prefix beam search decoding. */
#include "ctc.h"
#include "ctc_decode.h"
#include "ctc_loss.h"
#include "ctx.h"
#include "rng.h"
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

/* Brute force over all V^T frame labellings of one utterance: p = sum of the probabilities of
 * the paths that collapse (merge repeats, drop blanks) to y, and for the gradient the
 * softmax minus each (t, v)'s share of p. Returns -log p (inf when no path emits y). */
static double brute_force(const float *logits, int T, int V, const int32_t *y, int S, int blank, double *grad) {
    double *lp = malloc(sizeof *lp * (size_t)(T * V)), *occ = calloc((size_t)(T * V), sizeof *occ);
    for (int t = 0; t < T; t++) {
        double mx = -INFINITY, se = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, logits[t * V + v]);
        for (int v = 0; v < V; v++) se += exp(logits[t * V + v] - mx);
        for (int v = 0; v < V; v++) lp[t * V + v] = logits[t * V + v] - mx - log(se);
    }
    int64_t npaths = 1;
    for (int t = 0; t < T; t++) npaths *= V;
    int path[16], out[16];
    double p = 0;
    for (int64_t k = 0; k < npaths; k++) {
        int64_t r = k;
        for (int t = 0; t < T; t++) { path[t] = (int)(r % V); r /= V; }
        int n = 0, prev = -1;
        for (int t = 0; t < T; t++) {
            if (path[t] != blank && path[t] != prev) out[n++] = path[t];
            prev = path[t];
        }
        if (n != S) continue;
        int same = 1;
        for (int i = 0; i < S; i++) same &= out[i] == y[i];
        if (!same) continue;
        double lpath = 0;
        for (int t = 0; t < T; t++) lpath += lp[t * V + path[t]];
        p += exp(lpath);
        for (int t = 0; t < T; t++) occ[t * V + path[t]] += exp(lpath);
    }
    if (grad)
        for (int i = 0; i < T * V; i++) grad[i] = p > 0 ? exp(lp[i]) - occ[i] / p : 0;
    free(lp);
    free(occ);
    return -log(p);
}

/* one batch: B utterances of up to T frames, V symbols, S target slots */
typedef struct {
    int B, T, V, S, blank;
    const int32_t *in_len, *tgt_len, *targets;
} batch;

/* runs the op (NONE, MEAN or SUM) with dloss = dy; fills loss [B or 1], nll [B], grad [B*T*V] */
static void run_ctc(const batch *bt, const float *logits, imb_ctc_reduction red, int zinf, const float *dy,
                    float *loss, float *nll, float *grad) {
    imb_ctx *c = cpu_ctx(1);
    imb_tensor *x = imb_new(c, IMB_F32, 3, IMB_SHAPE(bt->B, bt->T, bt->V), 1);
    memcpy(imb_f32(x), logits, sizeof(float) * (size_t)(bt->B * bt->T * bt->V));
    imb_tensor *n = NULL;
    imb_tensor *l = imb_ctc_loss(c, x, imb_input(c, IMB_I32, 1, IMB_SHAPE(bt->B), bt->in_len),
                                 imb_input(c, IMB_I32, 2, IMB_SHAPE(bt->B, bt->S), bt->targets),
                                 imb_input(c, IMB_I32, 1, IMB_SHAPE(bt->B), bt->tgt_len), bt->blank, red, zinf, &n);
    ck_assert_msg(l != NULL, "%s", imb_error(c));
    memcpy(loss, imb_f32(l), sizeof(float) * (size_t)imb_numel(l));
    memcpy(nll, imb_f32(n), sizeof(float) * (size_t)bt->B);
    if (grad) {
        ck_assert_int_eq(imb_backward_seed(c, l, dy), 0);
        memcpy(grad, imb_gradf(x), sizeof(float) * (size_t)(bt->B * bt->T * bt->V));
    }
    imb_ctx_free(c);
}

static void check_against_brute_force(const batch *bt, uint64_t stream) {
    int B = bt->B, T = bt->T, V = bt->V;
    float *logits = normals((int64_t)B * T * V, stream, 1.5f), *dy = normals(B, stream + 100, 1.0f);
    float *loss = malloc(sizeof *loss * (size_t)B), *nll = malloc(sizeof *nll * (size_t)B);
    float *grad = malloc(sizeof *grad * (size_t)(B * T * V));
    double *bg = malloc(sizeof *bg * (size_t)(T * V));
    run_ctc(bt, logits, IMB_CTC_NONE, 0, dy, loss, nll, grad);
    for (int b = 0; b < B; b++) {
        int Tb = bt->in_len[b];
        /* the utterance's own frames only: what lies past in_len must not matter */
        double want = brute_force(logits + (int64_t)b * T * V, Tb, V, bt->targets + b * bt->S, bt->tgt_len[b],
                                  bt->blank, bg);
        if (isinf(want)) {
            ck_assert_msg(isinf(nll[b]) && nll[b] > 0, "utterance %d: nll %g, want inf", b, nll[b]);
        } else {
            ck_assert_msg(fabs(nll[b] - want) <= 1e-5 * fmax(1, fabs(want)), "utterance %d: nll %.8g, brute force %.8g",
                          b, nll[b], want);
            ck_assert_msg(fabs(loss[b] - want) <= 1e-5 * fmax(1, fabs(want)), "utterance %d: loss %.8g", b, loss[b]);
        }
        for (int t = 0; t < T; t++)
            for (int v = 0; v < V; v++) {
                double g = grad[((int64_t)b * T + t) * V + v], w = t < Tb ? dy[b] * bg[t * V + v] : 0;
                ck_assert_msg(fabs(g - w) <= 2e-5, "utterance %d frame %d symbol %d: grad %.7g, brute force %.7g", b, t,
                              v, g, w);
            }
    }
    free(logits); free(dy); free(loss); free(nll); free(grad); free(bg);
}

START_TEST(loss_and_grad_match_brute_force) {
    /* repeats (a a needs a blank between), an empty target, T = 1, a target exactly as long as
     * its frames allow (2 2 in 3), one too long (1 1 in 2: inf), frames past the length */
    static const int32_t in_len[8] = { 6, 6, 4, 1, 1, 5, 3, 2 };
    static const int32_t tgt_len[8] = { 3, 2, 0, 1, 0, 3, 2, 2 };
    static const int32_t targets[24] = { 1, 2, 1, 3, 3, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 0, 1, 1, 0 };
    batch bt = { 8, 6, 4, 3, 0, in_len, tgt_len, targets };
    check_against_brute_force(&bt, 1);
    /* a blank that is not 0 */
    static const int32_t targets3[21] = { 0, 1, 0, 2, 2, 1, 1, 1, 1, 2, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0 };
    batch b3 = { 7, 6, 4, 3, 3, in_len, tgt_len, targets3 };
    check_against_brute_force(&b3, 2);
}
END_TEST

START_TEST(reductions_and_zero_infinity) {
    /* utterance 1 ("1 1 1" in 4 frames needs 5) is impossible */
    static const int32_t in_len[3] = { 5, 4, 3 }, tgt_len[3] = { 2, 3, 1 };
    static const int32_t targets[9] = { 1, 2, 0, 1, 1, 1, 3, 0, 0 };
    batch bt = { 3, 5, 4, 3, 0, in_len, tgt_len, targets };
    float *logits = normals(3 * 5 * 4, 7, 1.0f), ones[3] = { 1, 1, 1 };
    float none[3], nll[3], mean, sum, gnone[60], gmean[60], gsum[60], nll2[3];
    run_ctc(&bt, logits, IMB_CTC_NONE, 1, ones, none, nll, gnone);
    ck_assert(isinf(nll[1]) && nll[1] > 0);
    ck_assert(none[1] == 0.0f && isfinite(none[0]) && none[0] > 0 && isfinite(none[2]));
    run_ctc(&bt, logits, IMB_CTC_MEAN, 1, ones, &mean, nll2, gmean);
    /* PyTorch's 'mean': over the batch (the zeroed utterance counts) of loss / target length */
    double want = (none[0] / 2.0 + 0.0 + none[2] / 1.0) / 3.0;
    ck_assert_msg(fabs(mean - want) < 1e-6 * want, "mean %g, want %g", mean, want);
    run_ctc(&bt, logits, IMB_CTC_SUM, 1, ones, &sum, nll2, gsum);
    ck_assert_msg(fabs(sum - (none[0] + none[2])) < 1e-6 * sum, "sum %g", sum);
    for (int t = 0; t < 5; t++)
        for (int v = 0; v < 4; v++) {
            int i0 = t * 4 + v, i1 = 20 + i0, i2 = 40 + i0;
            ck_assert(gnone[i1] == 0.0f && gmean[i1] == 0.0f && gsum[i1] == 0.0f);   /* zeroed with its loss */
            ck_assert(fabsf(gsum[i0] - gnone[i0]) < 1e-7f && fabsf(gsum[i2] - gnone[i2]) < 1e-7f);
            ck_assert(fabsf(gmean[i0] - gnone[i0] / 6.0f) < 1e-7f && fabsf(gmean[i2] - gnone[i2] / 3.0f) < 1e-7f);
        }
    /* without zero_infinity the loss is inf (the trainer stops), the gradient stays finite */
    run_ctc(&bt, logits, IMB_CTC_MEAN, 0, ones, &mean, nll2, gmean);
    ck_assert(isinf(mean));
    for (int i = 0; i < 60; i++) ck_assert(isfinite(gmean[i]));
    free(logits);
}
END_TEST

#define EXPECT_FAIL(c, expr, want) do { \
        ck_assert_ptr_null(expr); \
        ck_assert_msg(strstr(imb_error(c), (want)) != NULL, "expected \"%s\" in \"%s\"", (want), imb_error(c)); \
        imb_error_clear(c); \
    } while (0)

START_TEST(bad_inputs_are_errors) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *x = imb_full(c, 3, IMB_SHAPE(2, 5, 4), 0.5f);
    imb_tensor *il = imb_input(c, IMB_I32, 1, IMB_SHAPE(2), (const int32_t[]){ 5, 3 });
    imb_tensor *tl = imb_input(c, IMB_I32, 1, IMB_SHAPE(2), (const int32_t[]){ 2, 1 });
    imb_tensor *y = imb_input(c, IMB_I32, 2, IMB_SHAPE(2, 2), (const int32_t[]){ 1, 2, 3, 0 });
    ck_assert_ptr_nonnull(imb_ctc_loss(c, x, il, y, tl, 0, IMB_CTC_MEAN, 1, NULL));
    EXPECT_FAIL(c, imb_ctc_loss(c, x, imb_input(c, IMB_I32, 1, IMB_SHAPE(2), (const int32_t[]){ 6, 3 }), y, tl, 0,
                                IMB_CTC_MEAN, 1, NULL), "utterance 0 has input length 6 outside [1, 5]");
    EXPECT_FAIL(c, imb_ctc_loss(c, x, imb_input(c, IMB_I32, 1, IMB_SHAPE(2), (const int32_t[]){ 5, 0 }), y, tl, 0,
                                IMB_CTC_MEAN, 1, NULL), "utterance 1 has input length 0");
    EXPECT_FAIL(c, imb_ctc_loss(c, x, il, y, imb_input(c, IMB_I32, 1, IMB_SHAPE(2), (const int32_t[]){ 2, 3 }), 0,
                                IMB_CTC_MEAN, 1, NULL), "utterance 1 has target length 3 outside [0, 2]");
    EXPECT_FAIL(c, imb_ctc_loss(c, x, il, imb_input(c, IMB_I32, 2, IMB_SHAPE(2, 2), (const int32_t[]){ 1, 0, 3, 0 }), tl,
                                0, IMB_CTC_MEAN, 1, NULL), "utterance 0 target 1 is 0");
    EXPECT_FAIL(c, imb_ctc_loss(c, x, il, imb_input(c, IMB_I32, 2, IMB_SHAPE(2, 2), (const int32_t[]){ 1, 2, 4, 0 }), tl,
                                0, IMB_CTC_MEAN, 1, NULL), "utterance 1 target 0 is 4");
    EXPECT_FAIL(c, imb_ctc_loss(c, x, il, y, tl, 4, IMB_CTC_MEAN, 1, NULL), "blank 4 outside the 4 symbols");
    EXPECT_FAIL(c, imb_ctc_loss(c, imb_full(c, 2, IMB_SHAPE(2, 5), 0.5f), il, y, tl, 0, IMB_CTC_MEAN, 1, NULL),
                "logits must be [B, T, V]");
    EXPECT_FAIL(c, imb_ctc_loss(c, x, tl, y, imb_full(c, 1, IMB_SHAPE(2), 1.0f), 0, IMB_CTC_MEAN, 1, NULL),
                "target lengths must be i32 [B]");
    EXPECT_FAIL(c, imb_ctc_loss(c, x, il, imb_input(c, IMB_I32, 1, IMB_SHAPE(2), (const int32_t[]){ 1, 2 }), tl, 0,
                                IMB_CTC_MEAN, 1, NULL), "targets must be i32 [B, S]");
    EXPECT_FAIL(c, imb_ctc_loss(c, x, il, y, tl, 0, (imb_ctc_reduction)7, 1, NULL), "unknown reduction 7");
    EXPECT_FAIL(c, imb_ctc_loss(c, NULL, il, y, tl, 0, IMB_CTC_MEAN, 1, NULL), "input 0 is NULL");
    imb_ctx_free(c);
}
END_TEST

START_TEST(subsampling_lengths) {
    /* ESPnet: T1 = (T - 1) // 2, T' = (T1 - 1) // 2 */
    for (int T = 0; T < 200; T++) {
        int t1 = T >= 3 ? (T - 1) / 2 : 0, want = t1 >= 3 ? (t1 - 1) / 2 : 0;
        ck_assert_int_eq(imb_ctc_subsampled_len(T), want);
    }
    ck_assert_int_eq(imb_ctc_subsampled_len(6), 0);
    ck_assert_int_eq(imb_ctc_subsampled_len(7), 1);
    ck_assert_int_eq(imb_ctc_subsampled_len(1600), 399);
    ck_assert_int_eq(imb_ctc_subsampled_len(80), 19);
}
END_TEST

/* an utterance's kept stem outputs are the same alone and padded in a batch with garbage after it */
START_TEST(stem_ignores_padding) {
    imb_ctx *c = cpu_ctx(0);
    imb_ctc_stem *s = imb_ctc_stem_create(c, "stem", 20, 4, 8);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(imb_params_alloc(c), 0);
    ck_assert_int_eq(imb_params_init(c), 0);
    const int T = 29, n0 = 29, n1 = 18, mel = 20;
    float *f = normals(2 * T * mel, 3, 1.0f);
    int32_t len[2] = { n0, n1 }, out_len[2], one[1] = { n1 }, out1[1];
    imb_tensor *mask;
    imb_step_begin(c, 0);
    imb_tensor *y = imb_ctc_stem_forward(c, s, imb_input(c, IMB_F32, 3, IMB_SHAPE(2, T, mel), f), len, out_len, &mask);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    ck_assert_int_eq(y->shape[1], 6);
    ck_assert_int_eq(out_len[0], 6);
    ck_assert_int_eq(out_len[1], 3);
    ck_assert_ptr_nonnull(mask);
    static const float want_mask[12] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0 };
    ck_assert_mem_eq(imb_f32(mask), want_mask, sizeof want_mask);
    float *batched = malloc(sizeof(float) * 3 * 8);
    memcpy(batched, imb_f32(y) + 6 * 8, sizeof(float) * 3 * 8);
    imb_step_begin(c, 0);
    imb_tensor *y1 = imb_ctc_stem_forward(c, s, imb_input(c, IMB_F32, 3, IMB_SHAPE(1, n1, mel), f + T * mel), one, out1,
                                          &mask);
    ck_assert_ptr_nonnull(y1);
    ck_assert_ptr_null(mask);   /* nothing padded */
    ck_assert_int_eq(out1[0], 3);
    for (int i = 0; i < 3 * 8; i++) ck_assert_float_eq_tol(imb_f32(y1)[i], batched[i], 1e-5f);
    EXPECT_FAIL(c, imb_ctc_stem_forward(c, s, imb_input(c, IMB_F32, 3, IMB_SHAPE(1, 6, mel), f), (int32_t[]){ 6 }, out1, NULL),
                "utterance 0 has 6 frames; the stem needs 7 .. 6");
    EXPECT_FAIL(c, imb_ctc_stem_forward(c, s, imb_input(c, IMB_F32, 3, IMB_SHAPE(1, 9, 19), f), (int32_t[]){ 9 }, out1, NULL),
                "features must be [B, T, 20]");
    free(batched);
    free(f);
    free(s);
    imb_ctx_free(c);
}
END_TEST

/* log-probabilities of T frames where frame t puts prob `top` on sym[t] and spreads the rest
 * over the other symbols at random */
static void peaked(float *lp, int T, int V, const int *sym, double top, uint64_t stream) {
    for (int t = 0; t < T; t++) {
        double w[16], sum = 0;
        for (int v = 0; v < V; v++) sum += (w[v] = v == sym[t] ? 0 : 0.05 + imb_rng_uniform(13, stream, (uint64_t)(t * V + v)));
        for (int v = 0; v < V; v++) lp[t * V + v] = (float)log(v == sym[t] ? top : (1 - top) * w[v] / sum);
    }
}

START_TEST(greedy_hand_case) {
    /* frames a a _ a b b _ _ c (blank 0, a = 1, b = 2, c = 3) -> a a b c */
    static const int sym[9] = { 1, 1, 0, 1, 2, 2, 0, 0, 3 };
    float lp[9 * 4];
    int32_t out[9];
    peaked(lp, 9, 4, sym, 0.7, 1);
    ck_assert_int_eq(imb_ctc_greedy(lp, 9, 4, 0, out), 4);
    ck_assert(out[0] == 1 && out[1] == 1 && out[2] == 2 && out[3] == 3);
    /* ties go to the lower symbol: an all-equal frame is symbol 0 */
    float flat[4] = { 0.5f, 0.5f, 0.5f, 0.5f };
    ck_assert_int_eq(imb_ctc_greedy(flat, 1, 4, 0, out), 0);
    ck_assert_int_eq(imb_ctc_greedy(flat, 1, 4, 2, out), 1);
    ck_assert_int_eq(out[0], 0);
}
END_TEST

/* beam 1 keeps one prefix; with every frame's argmax at >= 0.9 it follows the best path */
START_TEST(beam_one_is_greedy) {
    enum { T = 40, V = 6 };
    int sym[T];
    float lp[T * V];
    int32_t g[T], b[T];
    for (int u = 0; u < 300; u++) {
        for (int t = 0; t < T; t++) {   /* half blanks, many repeats */
            uint32_t r = imb_rng_below(17, (uint64_t)u, (uint64_t)t, 10);
            sym[t] = r < 5 ? 0 : r < 8 && t ? sym[t - 1] : 1 + (int)imb_rng_below(18, (uint64_t)u, (uint64_t)t, V - 1);
        }
        peaked(lp, T, V, sym, 0.9 + 0.09 * imb_rng_uniform(19, (uint64_t)u, 0), (uint64_t)u);
        int ng = imb_ctc_greedy(lp, T, V, 0, g), nb = imb_ctc_prefix_beam(lp, T, V, 0, 1, b, NULL);
        ck_assert_int_eq(nb, ng);
        ck_assert_mem_eq(b, g, sizeof(int32_t) * (size_t)ng);
    }
}
END_TEST

/* with a beam wider than the number of prefixes the search is exact: the most probable
 * labelling over all alignments, found by brute force */
START_TEST(beam_is_exact_when_wide) {
    enum { T = 5, V = 3 };
    for (int u = 0; u < 40; u++) {
        float *logits = normals(T * V, 200 + (uint64_t)u, 1.5f);
        /* every labelling of length <= T over symbols 1..V-1 */
        int32_t y[T], best[T];
        int nbest = -1;
        double pbest = INFINITY;
        for (int n = 0; n <= T; n++) {
            int64_t count = 1;
            for (int i = 0; i < n; i++) count *= V - 1;
            for (int64_t k = 0; k < count; k++) {
                int64_t r = k;
                for (int i = 0; i < n; i++) { y[i] = 1 + (int32_t)(r % (V - 1)); r /= V - 1; }
                double nll = brute_force(logits, T, V, y, n, 0, NULL);
                if (nll < pbest) { pbest = nll; nbest = n; memcpy(best, y, sizeof(int32_t) * (size_t)n); }
            }
        }
        int32_t out[T];
        double logp;
        int n = imb_ctc_prefix_beam(logits, T, V, 0, 64, out, &logp);
        ck_assert_int_eq(n, nbest);
        ck_assert_mem_eq(out, best, sizeof(int32_t) * (size_t)n);
        ck_assert_msg(fabs(logp + pbest) < 1e-9, "logp %.12g, brute force %.12g", logp, -pbest);
        free(logits);
    }
}
END_TEST

/* two frames of p(blank) = 0.6, p(a) = 0.4: the best path is "" (0.36), but "a" has the
 * three paths aa, a_, _a (0.64); a beam of 2 finds it, and the CTC loss agrees */
START_TEST(beam_beats_greedy) {
    float lp[4] = { logf(0.6f), logf(0.4f), logf(0.6f), logf(0.4f) };
    int32_t g[2], b[2];
    double logp;
    ck_assert_int_eq(imb_ctc_greedy(lp, 2, 2, 0, g), 0);
    ck_assert_int_eq(imb_ctc_prefix_beam(lp, 2, 2, 0, 2, b, &logp), 1);
    ck_assert_int_eq(b[0], 1);
    ck_assert_msg(fabs(logp - log(0.64)) < 1e-6, "logp %g", logp);
    static const int32_t in_len[2] = { 2, 2 }, tgt_len[2] = { 0, 1 }, targets[2] = { 0, 1 };
    batch bt = { 2, 2, 2, 1, 0, in_len, tgt_len, targets };
    float logits[8], loss[2], nll[2];
    memcpy(logits, lp, sizeof lp);
    memcpy(logits + 4, lp, sizeof lp);
    run_ctc(&bt, logits, IMB_CTC_NONE, 0, NULL, loss, nll, NULL);
    ck_assert(fabs(nll[0] + log(0.36)) < 1e-6 && fabs(nll[1] + log(0.64)) < 1e-6);
    ck_assert(nll[1] < nll[0]);
    /* 6 frames of 0.55 / 0.45: the best path is again "" (0.55^6); the beam finds a labelling
     * with more probability mass */
    float lp6[12];
    for (int t = 0; t < 6; t++) { lp6[2 * t] = logf(0.55f); lp6[2 * t + 1] = logf(0.45f); }
    int32_t o6[6];
    ck_assert_int_eq(imb_ctc_greedy(lp6, 6, 2, 0, o6), 0);
    ck_assert_int_ge(imb_ctc_prefix_beam(lp6, 6, 2, 0, 4, o6, &logp), 1);
    ck_assert(logp > 6 * log(0.55) + 0.5);
    ck_assert_int_eq(imb_ctc_prefix_beam(lp6, 0, 2, 0, 4, o6, &logp), -1);
    ck_assert_int_eq(imb_ctc_prefix_beam(lp6, 6, 2, 2, 4, o6, &logp), -1);
    ck_assert_int_eq(imb_ctc_prefix_beam(lp6, 6, 2, 0, 0, o6, &logp), -1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ctc");
    TCase *tc = tcase_create("ctc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, loss_and_grad_match_brute_force);
    tcase_add_test(tc, reductions_and_zero_infinity);
    tcase_add_test(tc, bad_inputs_are_errors);
    tcase_add_test(tc, subsampling_lengths);
    tcase_add_test(tc, stem_ignores_padding);
    tcase_add_test(tc, greedy_hand_case);
    tcase_add_test(tc, beam_one_is_greedy);
    tcase_add_test(tc, beam_is_exact_when_wide);
    tcase_add_test(tc, beam_beats_greedy);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
