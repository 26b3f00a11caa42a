/* The step block and the CUDA-graph bookkeeping on the CPU: device-side clipping and the AdamW
 * skip, the step block's values, data checks inside a step, and kernels/graph.c run in
 * emulation (capture = eager step with a trace, replay = the probe walk + an eager step), which
 * checks that a replay's probe touches nothing and that shape changes are caught. */
#include "graphtoy.h"
#include "softmax.h"
#include "imagecls.h"
#include "checkrun.h"

static imb_ctx *cpu_ctx(void) {
    char e[256];
    imb_ctx *c = imb_ctx_new(IMB_CPU, 1, e, sizeof e);
    ck_assert_msg(c != NULL, "%s", e);
    return c;
}

static void train_ok(imb_graph_use use, toy_run *r) {
    ck_assert_msg(!toy_train(IMB_CPU, use, r), "%s", r->err);
}

/* eight steps, the fifth one short (the last batch of an epoch without drop_last) */
static const int batches[] = { 8, 8, 8, 8, 5, 8, 8, 8 };

START_TEST(emulated_replay_matches_eager) {
    toy_run a = { .steps = 8, .batch = batches, .bad_label_step = -1 }, b = a;
    train_ok(IMB_GRAPH_OFF, &a);
    train_ok(IMB_GRAPH_EMULATE, &b);
    char why[256];
    ck_assert_msg(toy_same(&a, &b, why, sizeof why), "%s", why);
    /* 1: warm-up, 2: captured, 3-4 replayed, 5: short batch (eager), 6-8 replayed */
    ck_assert_int_eq(b.stats.captured, 1);
    ck_assert_int_eq(b.stats.replayed, 5);
    ck_assert_int_eq(b.stats.mismatched, 1);
    ck_assert_int_eq(b.stats.eager, 2);
    ck_assert_int_eq(b.stats.probe_wrote, 0);
    ck_assert_int_eq(a.stats.eager, 8);
    ck_assert_int_eq(a.stats.replayed + a.stats.captured, 0);
    ck_assert(isfinite(a.loss[7]) && a.loss[7] > 0);
    free(a.params);
    free(b.params);
}
END_TEST

/* a new shape that stays: two mismatches in a row capture again, then replay the new graph */
START_TEST(lasting_shape_change_recaptures) {
    static const int bs[] = { 8, 8, 8, 5, 5, 5, 5, 5 };
    toy_run a = { .steps = 8, .batch = bs, .bad_label_step = -1 }, b = a;
    train_ok(IMB_GRAPH_OFF, &a);
    train_ok(IMB_GRAPH_EMULATE, &b);
    char why[256];
    ck_assert_msg(toy_same(&a, &b, why, sizeof why), "%s", why);
    /* 1 eager, 2 captured, 3 replayed, 4-5 mismatched, 6 captured, 7-8 replayed */
    ck_assert_int_eq(b.stats.captured, 2);
    ck_assert_int_eq(b.stats.mismatched, 2);
    ck_assert_int_eq(b.stats.replayed, 3);
    ck_assert_int_eq(b.stats.probe_wrote, 0);
    free(a.params);
    free(b.params);
}
END_TEST

/* a graph on a CPU context is refused with a reason; every step runs eagerly */
START_TEST(graphs_are_for_cuda_contexts) {
    toy_run r = { .steps = 3, .batch = batches, .bad_label_step = -1 };
    train_ok(IMB_GRAPH_ON, &r);
    ck_assert_int_eq(r.stats.on, 0);
    ck_assert_int_eq(r.stats.eager, 3);
    ck_assert_msg(strstr(r.stats.why_off, "CUDA contexts"), "%s", r.stats.why_off);
    free(r.params);
}
END_TEST

/* a bad label stops the step with the op's message, in a replayed step too */
START_TEST(bad_label_inside_a_step) {
    toy_run r = { .steps = 6, .batch = batches, .bad_label_step = 4, .bad_label_row = 3 };
    ck_assert_int_eq(toy_train(IMB_CPU, IMB_GRAPH_EMULATE, &r), -1);
    ck_assert_int_eq(r.failed_step, 4);
    ck_assert_msg(strstr(r.err, "cross_entropy: label 12 at row 3 is out of range for 10 classes"), "%s", r.err);
    free(r.params);
}
END_TEST

/* shapes are part of the graph: the same sizes with another shape are not a replay */
typedef struct { int rows; float in[24]; imb_tensor *out; } shape_ud;
static int shape_step(imb_ctx *c, void *p) {
    shape_ud *u = p;
    imb_step_begin(c, 0);
    int64_t r = u->rows, k = 24 / u->rows;
    imb_tensor *x = imb_input(c, IMB_F32, 2, IMB_SHAPE(r, k), u->in);
    u->out = imb_softmax(c, imb_scale(c, x, 1.5f), NULL);
    return u->out ? 0 : -1;
}

START_TEST(same_sizes_other_shape_is_a_mismatch) {
    imb_ctx *c = cpu_ctx();
    shape_ud u = { 4, { 0 }, NULL };
    for (int i = 0; i < 24; i++) u.in[i] = (float)(i % 7) * 0.3f;
    imb_graph *g = imb_graph_new(c, IMB_GRAPH_EMULATE, NULL, NULL);
    for (int s = 0; s < 3; s++) ck_assert_msg(!imb_graph_step(g, shape_step, &u), "%s", imb_error(c));
    u.rows = 6;   /* [6, 4] instead of [4, 6]: every allocation has the same size */
    ck_assert_msg(!imb_graph_step(g, shape_step, &u), "%s", imb_error(c));
    const imb_graph_stats *st = imb_graph_get_stats(g);
    ck_assert_int_eq(st->replayed, 1);
    ck_assert_int_eq(st->mismatched, 1);
    /* and the step ran with its own shape: rows of 4 sum to 1 */
    ck_assert_int_eq(u.out->shape[0], 6);
    for (int r = 0; r < 6; r++) {
        double sum = 0;
        for (int k = 0; k < 4; k++) sum += imb_f32(u.out)[r * 4 + k];
        ck_assert_double_eq_tol(sum, 1.0, 1e-6);
    }
    imb_graph_free(g);
    imb_ctx_free(c);
}
END_TEST

/* the image model (conv stem, class token, positions, each mixer's blocks): replays match,
 * probes write nothing */
typedef struct { imb_imagecls *m; imb_adamw opt; float x[3 * 3 * 8 * 8]; int32_t y[3]; } vit_ud;
static int vit_step(imb_ctx *c, void *p) {
    vit_ud *u = p;
    imb_params_zero_grad(c);
    imb_step_begin(c, 1);
    imb_tensor *x = imb_input(c, IMB_F32, 4, IMB_SHAPE(3, 3, 8, 8), u->x);
    imb_tensor *y = imb_input(c, IMB_I32, 1, IMB_SHAPE(3), u->y);
    imb_tensor *l = imb_cross_entropy(c, imb_imagecls_forward(c, u->m, x), y, 0.1f);
    imb_tensor *aux = imb_backbone_aux_loss(c, u->m->bb, y, NULL);   /* InfoMamba's losses */
    if (aux) l = imb_add(c, l, aux);
    imb_step_keep(c, 0, l);
    imb_backward(c, l);
    imb_grad_clip_async(c, 1.0f);
    imb_adamw_apply(c, &u->opt);
    return imb_ok(c) ? 0 : -1;
}

static void vit_run(const char *spec, imb_graph_use use, float *loss, imb_graph_stats *st) {
    imb_ctx *c = cpu_ctx();
    imb_backbone_cfg cfg;
    char e[256];
    ck_assert_msg(!imb_backbone_parse(spec, &cfg, e, sizeof e), "%s", e);
    vit_ud u;
    u.m = imb_imagecls_create(c, &cfg, 3, 8, 4, 5);
    ck_assert_msg(u.m && !imb_params_alloc(c), "%s", imb_error(c));
    u.opt = imb_adamw_default(0.05f);
    imb_graph *g = imb_graph_new(c, use, NULL, NULL);
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < 3 * 3 * 8 * 8; i++) u.x[i] = imb_rng_normal(3, (uint64_t)s, (uint64_t)i);
        for (int i = 0; i < 3; i++) u.y[i] = (int32_t)imb_rng_below(4, (uint64_t)s, (uint64_t)i, 5);
        ck_assert_int_eq(imb_adamw_prepare(c, &u.opt, 1e-3f), 0);
        ck_assert_msg(!imb_graph_step(g, vit_step, &u), "%s", imb_error(c));
        loss[s] = imb_step_result(c)->vals[0];
    }
    *st = *imb_graph_get_stats(g);
    imb_graph_free(g);
    imb_imagecls_free(u.m);
    imb_ctx_free(c);
}

/* every mixer of the registry, smallest shapes */
static const char *const specs[] = { "vit-s:dim=16,depth=1,heads=2", "linformer-nano:dim=16,depth=1,heads=2",
                                     "vmamba-nano", "infomamba-nano:dim=16,depth=1" };

START_TEST(model_probes_touch_nothing) {
    float a[5], b[5];
    imb_graph_stats sa, sb;
    vit_run(specs[_i], IMB_GRAPH_OFF, a, &sa);
    vit_run(specs[_i], IMB_GRAPH_EMULATE, b, &sb);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert_int_eq(sb.replayed, 3);
    ck_assert_int_eq(sb.probe_wrote, 0);
}
END_TEST

/* the step block: kept values, the norm, the clip factor; a non-finite norm skips AdamW */
START_TEST(step_block_clip_and_skip) {
    imb_ctx *c = cpu_ctx();
    imb_tensor *w = imb_param_new(c, "w", 1, IMB_SHAPE(2), IMB_INIT_ONES, 0, 1);
    ck_assert_int_eq(imb_params_alloc(c), 0);
    imb_adamw o = imb_adamw_default(0.1f);
    imb_step_begin(c, 1);
    imb_gradf(w)[0] = 3;
    imb_gradf(w)[1] = 4;
    float three = 3.0f;
    imb_tensor *k = imb_input(c, IMB_F32, 1, IMB_SHAPE(1), &three);
    ck_assert_int_eq(imb_step_keep(c, 2, k), 0);
    ck_assert_int_eq(imb_grad_clip_async(c, 1.0f), 0);
    ck_assert_int_eq(imb_adamw_step(c, &o, 0.01f), 0);
    ck_assert_int_eq(imb_step_fetch(c), 0);
    ck_assert_int_eq(imb_step_sync(c), 0);
    const imb_step_out *r = imb_step_result(c);
    ck_assert_double_eq_tol(sqrt(r->sumsq), 5.0, 1e-12);
    ck_assert_float_eq_tol(r->clip_scale, (float)(1.0 / (5.0 + 1e-6)), 1e-9);
    ck_assert_int_eq(r->skip, 0);
    ck_assert_float_eq(r->vals[2], 3.0f);
    ck_assert(isnan(r->vals[0]));   /* not kept this step */
    ck_assert_double_eq_tol(imb_gradf(w)[0], 0.6, 1e-6);
    float before[2] = { imb_f32(w)[0], imb_f32(w)[1] };
    ck_assert(before[0] < 1.0f);    /* the update happened */
    /* a NaN gradient: the norm is NaN, AdamW leaves parameters and moments alone */
    imb_step_begin(c, 1);
    float m0 = c->params.m[0];
    imb_gradf(w)[0] = NAN;
    ck_assert(isnan(imb_grad_clip(c, 1.0f)));
    ck_assert_int_eq(c->st->out->skip, 1);
    ck_assert_int_eq(imb_adamw_step(c, &o, 0.01f), 0);
    ck_assert_float_eq(imb_f32(w)[0], before[0]);
    ck_assert_float_eq(imb_f32(w)[1], before[1]);
    ck_assert_float_eq(c->params.m[0], m0);
    /* the next step starts clean */
    imb_step_begin(c, 1);
    ck_assert_int_eq(c->st->out->skip, 0);
    ck_assert_float_eq(c->st->out->clip_scale, 1.0f);
    imb_ctx_free(c);
}
END_TEST

/* data checks report at once on the CPU, and the verdict does not stick to later checks */
START_TEST(data_checks_on_the_cpu) {
    imb_ctx *c = cpu_ctx();
    imb_step_begin(c, 0);
    int32_t lab[4] = { 1, -1, 3, 0 };
    imb_tensor *l = imb_input(c, IMB_I32, 1, IMB_SHAPE(4), lab);
    ck_assert_int_eq(imb_check_range(c, "op", IMB_CHECK_LABEL, l, 4), 0);   /* -1: ignored label */
    ck_assert_int_eq(imb_check_range(c, "op", IMB_CHECK_ID, l, 4), -1);
    ck_assert_msg(strstr(imb_error(c), "op: id -1 at position [1] is out of range for a table of 4 rows"), "%s",
                  imb_error(c));
    imb_error_clear(c);
    ck_assert_int_eq(imb_check_range(c, "xe", IMB_CHECK_LABEL, l, 3), -1);
    ck_assert_msg(strstr(imb_error(c), "xe: label 3 at row 2 is out of range for 3 classes"), "%s", imb_error(c));
    imb_error_clear(c);
    ck_assert_int_eq(imb_check_range(c, "op", IMB_CHECK_LABEL, l, 4), 0);
    ck_assert_int_eq(c->st->out->bad, IMB_CHECK_NONE);
    imb_ctx_free(c);
}
END_TEST

/* pinned buffers: plain memory on the CPU, usable as inputs, freed with the context */
START_TEST(pinned_buffers) {
    imb_ctx *c = cpu_ctx();
    float *p = imb_pinned_alloc(c, 6 * sizeof *p), *q = imb_pinned_alloc(c, 16);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    for (int i = 0; i < 6; i++) p[i] = (float)i;
    imb_step_begin(c, 0);
    imb_tensor *t = imb_input(c, IMB_F32, 1, IMB_SHAPE(6), p);
    ck_assert_float_eq(imb_f32(t)[5], 5.0f);
    imb_pinned_free(c, q);
    ck_assert_int_eq(c->st->npinned, 1);
    imb_ctx_free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("graph");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, emulated_replay_matches_eager);
    tcase_add_test(tc, lasting_shape_change_recaptures);
    tcase_add_test(tc, graphs_are_for_cuda_contexts);
    tcase_add_test(tc, bad_label_inside_a_step);
    tcase_add_test(tc, same_sizes_other_shape_is_a_mismatch);
    tcase_add_loop_test(tc, model_probes_touch_nothing, 0, (int)(sizeof specs / sizeof *specs));
    tcase_add_test(tc, step_block_clip_and_skip);
    tcase_add_test(tc, data_checks_on_the_cpu);
    tcase_add_test(tc, pinned_buffers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
