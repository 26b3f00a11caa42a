/* Convolution and shape ops: hand-computed values, identities, and bad inputs as errors. */
#include "conv.h"
#include "ctx.h"
#include "matmul.h"
#include "rng.h"
#include "shape.h"
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

/* a deterministic random-normal input; the stream keeps different inputs different */
static imb_tensor *randn(imb_ctx *c, uint64_t stream, int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *h = malloc(sizeof *h * (size_t)n);
    for (int64_t i = 0; i < n; i++) h[i] = imb_rng_normal(11, stream, (uint64_t)i);
    imb_tensor *t = imb_input(c, IMB_F32, ndim, shape, h);
    free(h);
    return t;
}
#define RANDN(c, stream, ...) randn((c), (stream), IMB_NDIM(__VA_ARGS__), IMB_SHAPE(__VA_ARGS__))

static void assert_close(const float *a, const float *b, int64_t n, double tol) {
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs((double)a[i] - b[i]) <= tol * (1 + fabs((double)b[i])), "element %lld: %.7g vs %.7g",
                      (long long)i, a[i], b[i]);
}

/* the error message must name the op and mention the given words */
static void assert_error(imb_ctx *c, const void *result, const char *op, const char *words) {
    ck_assert_ptr_null(result);
    ck_assert_msg(!imb_ok(c), "%s: no error recorded", op);
    ck_assert_msg(strstr(imb_error(c), op) && strstr(imb_error(c), words), "unexpected message: %s", imb_error(c));
    imb_error_clear(c);
}

START_TEST(patch_embed_1x1_is_linear) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *x = RANDN(c, 1, 2, 3, 2, 5), *w = RANDN(c, 2, 4, 3, 1, 1), *b = RANDN(c, 3, 4);
    imb_tensor *y = imb_patch_embed(c, x, w, b, 1, 0);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    ck_assert_int_eq(y->ndim, 3);
    ck_assert(y->shape[0] == 2 && y->shape[1] == 10 && y->shape[2] == 4);
    /* tokens [B, H*W, Cin] times w [Cout, Cin]ᵀ */
    imb_tensor *tok = imb_reshape(c, imb_permute(c, x, (const int[]){ 0, 2, 3, 1 }), 3, IMB_SHAPE(2, 10, 3));
    imb_tensor *ref = imb_linear(c, tok, imb_reshape(c, w, 2, IMB_SHAPE(4, 3)), b);
    ck_assert_msg(ref != NULL, "%s", imb_error(c));
    assert_close(imb_f32(y), imb_f32(ref), imb_numel(y), 1e-5);
    imb_ctx_free(c);
}
END_TEST

/* a direct 7-loop convolution for arbitrary kernel, stride and padding */
START_TEST(patch_embed_matches_direct_conv) {
    imb_ctx *c = cpu_ctx(0);
    const int64_t B = 2, Ci = 3, H = 7, W = 6, Co = 4, kh = 3, kw = 2;
    const int s = 2, p = 1;
    imb_tensor *x = RANDN(c, 4, B, Ci, H, W), *w = RANDN(c, 5, Co, Ci, kh, kw), *b = RANDN(c, 6, Co);
    imb_tensor *y = imb_patch_embed(c, x, w, b, s, p);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    int64_t Ho = (H + 2 * p - kh) / s + 1, Wo = (W + 2 * p - kw) / s + 1;
    ck_assert_int_eq(y->shape[1], Ho * Wo);
    const float *X = imb_f32(x), *Wt = imb_f32(w), *Bs = imb_f32(b), *Y = imb_f32(y);
    for (int64_t n = 0; n < B; n++)
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++)
                for (int64_t co = 0; co < Co; co++) {
                    double acc = Bs[co];
                    for (int64_t ci = 0; ci < Ci; ci++)
                        for (int64_t ky = 0; ky < kh; ky++)
                            for (int64_t kx = 0; kx < kw; kx++) {
                                int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)Wt[((co * Ci + ci) * kh + ky) * kw + kx] * X[((n * Ci + ci) * H + iy) * W + ix];
                            }
                    float got = Y[((n * Ho + oy) * Wo + ox) * Co + co];
                    ck_assert_msg(fabs(got - acc) < 1e-4, "(%lld,%lld,%lld,%lld): %g vs %g", (long long)n,
                                  (long long)oy, (long long)ox, (long long)co, got, acc);
                }
    imb_ctx_free(c);
}
END_TEST

START_TEST(patch_embed_grid_size) {
    imb_ctx *c = cpu_ctx(0);
    /* ViT patchify: 8x12 image, 4x4 patches -> 2x3 tokens */
    imb_tensor *y = imb_patch_embed(c, RANDN(c, 1, 1, 3, 8, 12), RANDN(c, 2, 5, 3, 4, 4), NULL, 4, 0);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    ck_assert(y->shape[0] == 1 && y->shape[1] == 6 && y->shape[2] == 5);
    /* speech-stem style 3x3 stride 2 pad 1: 7x9 -> 4x5 */
    y = imb_patch_embed(c, RANDN(c, 3, 2, 1, 7, 9), RANDN(c, 4, 2, 1, 3, 3), NULL, 2, 1);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    ck_assert(y->shape[0] == 2 && y->shape[1] == 20 && y->shape[2] == 2);
    /* a kernel equal to the padded input gives a single position */
    y = imb_patch_embed(c, RANDN(c, 5, 1, 1, 3, 3), RANDN(c, 6, 1, 1, 5, 5), NULL, 1, 1);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    ck_assert_int_eq(y->shape[1], 1);
    imb_ctx_free(c);
}
END_TEST

START_TEST(patch_embed_sums_a_patch) {
    imb_ctx *c = cpu_ctx(0);
    float x[16], w[4] = { 1, 1, 1, 1 };
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    /* 4x4 image 0..15 in 2x2 patches of ones: sums of each patch, row-major over the grid */
    imb_tensor *y = imb_patch_embed(c, imb_input(c, IMB_F32, 4, IMB_SHAPE(1, 1, 4, 4), x),
                                    imb_input(c, IMB_F32, 4, IMB_SHAPE(1, 1, 2, 2), w), NULL, 2, 0);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    const float want[4] = { 0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15 };
    assert_close(imb_f32(y), want, 4, 0);
    imb_ctx_free(c);
}
END_TEST

START_TEST(dwconv1d_k1_is_channel_scale) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *x = RANDN(c, 1, 2, 5, 3);
    float w[3] = { 2.0f, -0.5f, 3.0f }, b[3] = { 0.25f, 0, -1 };
    imb_tensor *y = imb_dwconv1d(c, x, imb_input(c, IMB_F32, 3, IMB_SHAPE(3, 1, 1), w),
                                 imb_input(c, IMB_F32, 1, IMB_SHAPE(3), b));
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    for (int64_t i = 0; i < imb_numel(x); i++)
        ck_assert_float_eq(imb_f32(y)[i], w[i % 3] * imb_f32(x)[i] + b[i % 3]);
    imb_ctx_free(c);
}
END_TEST

START_TEST(dwconv1d_taps_and_causality) {
    imb_ctx *c = cpu_ctx(0);
    /* one channel, K=3, w = (a, b, c): y[t] = a x[t-2] + b x[t-1] + c x[t] (PyTorch's last tap is "now") */
    float x[5] = { 1, 2, 3, 4, 5 }, w[3] = { 100, 10, 1 };
    imb_tensor *y = imb_dwconv1d(c, imb_input(c, IMB_F32, 3, IMB_SHAPE(1, 5, 1), x),
                                 imb_input(c, IMB_F32, 3, IMB_SHAPE(1, 1, 3), w), NULL);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    const float want[5] = { 1, 12, 123, 234, 345 };
    assert_close(imb_f32(y), want, 5, 0);

    /* changing x at t leaves every output before t unchanged */
    const int64_t L = 7, C = 3, t = 4;
    imb_tensor *xr = RANDN(c, 2, 1, L, C), *wr = RANDN(c, 3, C, 1, 4), *br = RANDN(c, 4, C);
    imb_tensor *y0 = imb_dwconv1d(c, xr, wr, br);
    for (int64_t k = 0; k < C; k++) imb_f32(xr)[t * C + k] += 1.0f;
    imb_tensor *y1 = imb_dwconv1d(c, xr, wr, br);
    ck_assert_msg(y0 && y1, "%s", imb_error(c));
    ck_assert_mem_eq(imb_f32(y0), imb_f32(y1), sizeof(float) * (size_t)(t * C));
    for (int64_t k = 0; k < C; k++) ck_assert(imb_f32(y0)[t * C + k] != imb_f32(y1)[t * C + k]);
    imb_ctx_free(c);
}
END_TEST

START_TEST(dwconv2d_centre_tap_is_scale) {
    imb_ctx *c = cpu_ctx(0);
    const int H = 3, W = 4;
    const int64_t C = 2;
    imb_tensor *x = RANDN(c, 1, 2, H * W, C);
    float w[2 * 9] = { 0 };
    w[4] = 1.5f;        /* channel 0, centre */
    w[9 + 4] = -2.0f;   /* channel 1, centre */
    imb_tensor *y = imb_dwconv2d(c, x, H, W, imb_input(c, IMB_F32, 4, IMB_SHAPE(C, 1, 3, 3), w), NULL);
    ck_assert_msg(y != NULL, "%s", imb_error(c));
    for (int64_t i = 0; i < imb_numel(x); i++)
        ck_assert_float_eq(imb_f32(y)[i], (i % 2 ? -2.0f : 1.5f) * imb_f32(x)[i]);
    /* a right-neighbour tap (ky=1, kx=2) shifts the grid left, with a zero column at the edge */
    float wr[9] = { 0 };
    wr[5] = 1.0f;
    imb_tensor *x1 = RANDN(c, 2, 1, H * W, 1);
    imb_tensor *y1 = imb_dwconv2d(c, x1, H, W, imb_input(c, IMB_F32, 4, IMB_SHAPE(1, 1, 3, 3), wr), NULL);
    ck_assert_msg(y1 != NULL, "%s", imb_error(c));
    for (int r = 0; r < H; r++)
        for (int q = 0; q < W; q++)
            ck_assert_float_eq(imb_f32(y1)[r * W + q], q + 1 < W ? imb_f32(x1)[r * W + q + 1] : 0.0f);
    imb_ctx_free(c);
}
END_TEST

START_TEST(permute_inverse_is_identity) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *x = RANDN(c, 1, 2, 3, 4, 5);
    const int perm[4] = { 2, 0, 3, 1 };
    int inv[4];
    for (int i = 0; i < 4; i++) inv[perm[i]] = i;
    imb_tensor *p = imb_permute(c, x, perm);
    ck_assert_msg(p != NULL, "%s", imb_error(c));
    ck_assert(p->shape[0] == 4 && p->shape[1] == 2 && p->shape[2] == 5 && p->shape[3] == 3);
    /* p[k, i, l, j] = x[i, j, k, l] */
    ck_assert_float_eq(imb_f32(p)[((3 * 2 + 1) * 5 + 4) * 3 + 2], imb_f32(x)[((1 * 3 + 2) * 4 + 3) * 5 + 4]);
    imb_tensor *back = imb_permute(c, p, inv);
    ck_assert_msg(back != NULL, "%s", imb_error(c));
    ck_assert(imb_same_shape(back, x));
    ck_assert_mem_eq(imb_f32(back), imb_f32(x), imb_nbytes(x));
    imb_ctx_free(c);
}
END_TEST

START_TEST(split_then_concat_is_identity) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *x = RANDN(c, 1, 3, 7, 4), *parts[3];
    for (int dim = -3; dim < 3; dim++) {
        int d = dim < 0 ? dim + 3 : dim;
        int64_t S = x->shape[d], sizes[3] = { 1, S - 2, 1 };
        ck_assert_int_eq(imb_split(c, x, dim, 3, sizes, parts), 0);
        for (int i = 0; i < 3; i++) ck_assert_int_eq(parts[i]->shape[d], sizes[i]);
        imb_tensor *y = imb_concat(c, parts, 3, dim);
        ck_assert_msg(y != NULL, "%s", imb_error(c));
        ck_assert(imb_same_shape(y, x));
        ck_assert_mem_eq(imb_f32(y), imb_f32(x), imb_nbytes(x));
    }
    /* slice of the middle part equals the split's middle part */
    ck_assert_int_eq(imb_split(c, x, 1, 3, IMB_SHAPE(2, 4, 1), parts), 0);
    imb_tensor *s = imb_slice(c, x, 1, 2, 4), *s2 = imb_slice(c, x, 1, -5, 4);
    ck_assert_msg(s && s2, "%s", imb_error(c));
    ck_assert_mem_eq(imb_f32(s), imb_f32(parts[1]), imb_nbytes(s));
    ck_assert_mem_eq(imb_f32(s2), imb_f32(parts[1]), imb_nbytes(s));
    imb_ctx_free(c);
}
END_TEST

START_TEST(reshape_is_a_view) {
    imb_ctx *c = cpu_ctx(1);
    imb_tensor *x = imb_new(c, IMB_F32, 3, IMB_SHAPE(2, 3, 4), 1);
    ck_assert_ptr_nonnull(x->grad);
    imb_tensor *v = imb_reshape(c, x, 2, IMB_SHAPE(6, -1));
    ck_assert_msg(v != NULL, "%s", imb_error(c));
    ck_assert(v->ndim == 2 && v->shape[0] == 6 && v->shape[1] == 4);
    ck_assert_ptr_eq(v->data, x->data);
    ck_assert_ptr_eq(v->grad, x->grad);
    ck_assert_int_eq(x->ndim, 3);   /* the original keeps its shape */
    imb_ctx_free(c);
}
END_TEST

START_TEST(bad_shape_ops_are_errors) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *x = RANDN(c, 1, 2, 3, 4), *parts[3];
    assert_error(c, imb_reshape(c, x, 2, IMB_SHAPE(5, 5)), "reshape", "cannot view [2, 3, 4]");
    assert_error(c, imb_reshape(c, x, 2, IMB_SHAPE(-1, 5)), "reshape", "cannot view");
    assert_error(c, imb_reshape(c, x, 3, IMB_SHAPE(-1, -1, 2)), "reshape", "at most one -1");
    imb_tensor *bad[2] = { x, RANDN(c, 2, 2, 5, 3) };
    assert_error(c, imb_concat(c, bad, 2, 1), "concat", "outside dim 1");
    imb_tensor *bad_rank[2] = { x, RANDN(c, 3, 2, 3) };
    assert_error(c, imb_concat(c, bad_rank, 2, 0), "concat", "differs from input 0");
    assert_error(c, imb_concat(c, bad, 2, 3), "concat", "dim 3 is out of range");
    assert_error(c, imb_concat(c, bad, 0, 0), "concat", "at least one");
    ck_assert_int_eq(imb_split(c, x, 2, 2, IMB_SHAPE(1, 2), parts), -1);
    ck_assert_ptr_null(parts[0]);
    assert_error(c, NULL, "split", "sum to 3 but dim 2");
    ck_assert_int_eq(imb_split(c, x, 2, 2, IMB_SHAPE(5, -1), parts), -1);
    assert_error(c, NULL, "split", "size -1");
    assert_error(c, imb_slice(c, x, 1, 2, 2), "slice", "out of range");
    assert_error(c, imb_slice(c, x, 1, -4, 1), "slice", "out of range");
    assert_error(c, imb_slice(c, x, 1, 0, 0), "slice", "out of range");
    assert_error(c, imb_slice(c, x, -4, 0, 1), "slice", "dim -4 is out of range");
    assert_error(c, imb_permute(c, x, (const int[]){ 0, 0, 1 }), "permute", "exactly once");
    assert_error(c, imb_permute(c, x, (const int[]){ 0, 1, 3 }), "permute", "exactly once");
    assert_error(c, imb_copy(c, NULL), "copy", "NULL");
    imb_ctx_free(c);
}
END_TEST

START_TEST(bad_convs_are_errors) {
    imb_ctx *c = cpu_ctx(0);
    imb_tensor *img = RANDN(c, 1, 1, 3, 4, 4);
    assert_error(c, imb_patch_embed(c, img, RANDN(c, 2, 5, 2, 2, 2), NULL, 2, 0), "patch_embed",
                 "expects 2 input channels but x [1, 3, 4, 4] has 3");
    assert_error(c, imb_patch_embed(c, img, RANDN(c, 3, 5, 3, 7, 3), NULL, 1, 1), "patch_embed",
                 "kernel 7x3 is larger than the padded input 6x6");
    assert_error(c, imb_patch_embed(c, img, RANDN(c, 4, 5, 3, 2), NULL, 2, 0), "patch_embed", "[Cout, Cin, kh, kw]");
    assert_error(c, imb_patch_embed(c, RANDN(c, 5, 3, 4, 4), RANDN(c, 6, 5, 3, 2, 2), NULL, 2, 0), "patch_embed",
                 "[B, Cin, H, W]");
    assert_error(c, imb_patch_embed(c, img, RANDN(c, 7, 5, 3, 2, 2), RANDN(c, 8, 4), 2, 0), "patch_embed", "bias");
    assert_error(c, imb_patch_embed(c, img, RANDN(c, 9, 5, 3, 2, 2), NULL, 0, 0), "patch_embed", "stride 0");
    imb_tensor *tok = RANDN(c, 10, 2, 12, 3);
    assert_error(c, imb_dwconv1d(c, tok, RANDN(c, 11, 4, 1, 3), NULL), "dwconv1d", "[C, 1, K]");
    assert_error(c, imb_dwconv1d(c, tok, RANDN(c, 12, 3, 4), NULL), "dwconv1d", "[C, 1, K]");
    assert_error(c, imb_dwconv1d(c, tok, RANDN(c, 13, 3, 1, 4), RANDN(c, 14, 2)), "dwconv1d", "bias");
    assert_error(c, imb_dwconv2d(c, tok, 3, 3, RANDN(c, 15, 3, 1, 3, 3), NULL), "dwconv2d", "grid 3x3");
    assert_error(c, imb_dwconv2d(c, tok, 3, 4, RANDN(c, 16, 3, 1, 2, 2), NULL), "dwconv2d", "odd k");
    assert_error(c, imb_dwconv2d(c, tok, 3, 4, RANDN(c, 17, 2, 1, 3, 3), NULL), "dwconv2d", "C = last dim");
    /* a failed op leaves the first message for later ops given NULL */
    ck_assert_ptr_null(imb_dwconv2d(c, tok, 3, 3, RANDN(c, 18, 3, 1, 3, 3), NULL));
    ck_assert_ptr_null(imb_patch_embed(c, NULL, NULL, NULL, 1, 0));
    ck_assert_msg(strstr(imb_error(c), "dwconv2d"), "%s", imb_error(c));
    imb_ctx_free(c);
}
END_TEST

/* the backward of every op here adds, so running the same graph twice doubles the grads,
 * and two identical runs give bit-identical grads (no atomics, fixed reduction order) */
START_TEST(conv_backward_accumulates_deterministically) {
    float g1[3 * 2 * 3 * 3], g2[3 * 2 * 3 * 3];
    for (int rep = 0; rep < 2; rep++) {
        imb_ctx *c = cpu_ctx(1);
        imb_tensor *x = imb_param_new(c, "x", 4, IMB_SHAPE(2, 2, 9, 8), IMB_INIT_NORMAL, 1, 1);
        imb_tensor *w = imb_param_new(c, "w", 4, IMB_SHAPE(3, 2, 3, 3), IMB_INIT_NORMAL, 1, 1);
        ck_assert_int_eq(imb_params_alloc(c), 0);
        imb_step_begin(c, 1);
        imb_tensor *y = imb_patch_embed(c, x, w, NULL, 2, 1);
        ck_assert_msg(y != NULL, "%s", imb_error(c));
        float *dy = malloc(sizeof *dy * (size_t)imb_numel(y));
        for (int64_t i = 0; i < imb_numel(y); i++) dy[i] = imb_rng_normal(3, 3, (uint64_t)i);
        ck_assert_int_eq(imb_backward_seed(c, y, dy), 0);
        memcpy(rep ? g2 : g1, imb_gradf(w), sizeof g1);
        if (rep) {
            ck_assert_mem_eq(g1, g2, sizeof g1);
            imb_step_begin(c, 1);
            y = imb_patch_embed(c, x, w, NULL, 2, 1);
            ck_assert_int_eq(imb_backward_seed(c, y, dy), 0);
            for (int i = 0; i < 3 * 2 * 3 * 3; i++) ck_assert_float_eq_tol(imb_gradf(w)[i], 2 * g1[i], 1e-5 * (1 + fabsf(g1[i])));
        }
        free(dy);
        imb_ctx_free(c);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_add_test(tc, patch_embed_1x1_is_linear);
    tcase_add_test(tc, patch_embed_matches_direct_conv);
    tcase_add_test(tc, patch_embed_grid_size);
    tcase_add_test(tc, patch_embed_sums_a_patch);
    tcase_add_test(tc, dwconv1d_k1_is_channel_scale);
    tcase_add_test(tc, dwconv1d_taps_and_causality);
    tcase_add_test(tc, dwconv2d_centre_tap_is_scale);
    tcase_add_test(tc, permute_inverse_is_identity);
    tcase_add_test(tc, split_then_concat_is_identity);
    tcase_add_test(tc, reshape_is_a_view);
    tcase_add_test(tc, bad_shape_ops_are_errors);
    tcase_add_test(tc, bad_convs_are_errors);
    tcase_add_test(tc, conv_backward_accumulates_deterministically);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
