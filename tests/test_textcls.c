/* Text classification model tests: padding invariance for every registered backbone, shape
 * checks, and a short training run on the synthetic AG-News corpus that must learn. */
#include "checkrun.h"
#include "datatest.h"
#include "graph.h"
#include "optim.h"
#include "step.h"
#include "rng.h"
#include "textcls.h"
#include "textprep.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V = 64, MAXLEN = 24, NCLS = 3, B = 3, LPAD = 16 };
static const int lens[B] = { 5, 9, 12 };

/* logits [n, NCLS] of ids [n, L] (mask NULL: no padding) */
static void logits_of(imb_ctx *ctx, imb_textcls *m, const int32_t *ids, const float *mask, int n, int L, float *out) {
    imb_step_begin(ctx, 0);
    imb_tensor *t = imb_input(ctx, IMB_I32, 2, IMB_SHAPE(n, L), ids);
    imb_tensor *mk = mask ? imb_input(ctx, IMB_F32, 2, IMB_SHAPE(n, L), mask) : NULL;
    imb_tensor *lg = imb_textcls_forward(ctx, m, t, mk);
    ck_assert_msg(lg != NULL, "forward: %s", imb_error(ctx));
    ck_assert_int_eq(imb_to_host(ctx, lg, out, 0), 0);
}

static double max_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* Each sequence alone (no padding, no mask) must give the logits it gets in a batch padded
 * to its longest member and in one padded further with random ids, up to rounding; and the
 * random padding must change the logits when the mask is withheld, which shows the test can
 * see a leak through this backbone at all. */
static void padding_invariance(const char *spec) {
    char err[512] = "";
    imb_backbone_cfg cfg;
    ck_assert_msg(imb_backbone_parse(spec, &cfg, err, sizeof err) == 0, "%s: %s", spec, err);
    cfg.init_std = 0.2f;   /* O(1) logits, so a leak is far above rounding */
    imb_ctx *ctx = imb_ctx_new(IMB_CPU, 11, err, sizeof err);
    ck_assert_ptr_nonnull(ctx);
    imb_textcls *m = imb_textcls_create(ctx, &cfg, V, MAXLEN, NCLS);
    ck_assert_msg(m && imb_params_alloc(ctx) == 0, "%s: %s", spec, imb_error(ctx));
    int32_t seq[B][LPAD], padded[B * LPAD], tight[B * 12];
    float mask[B * LPAD], tmask[B * 12], alone[B][NCLS], got[B * NCLS], open[B * NCLS];
    for (int r = 0; r < B; r++)
        for (int j = 0; j < LPAD; j++) {
            seq[r][j] = 1 + (int32_t)imb_rng_below(5, (uint64_t)r, (uint64_t)j, V - 1);
            int real = j < lens[r];
            /* garbage ids where the padding is: the mask alone must keep them out */
            padded[r * LPAD + j] = real ? seq[r][j] : (int32_t)imb_rng_below(6, (uint64_t)r, (uint64_t)j, V);
            mask[r * LPAD + j] = (float)real;
            if (j < 12) {
                tight[r * 12 + j] = j < lens[r] ? seq[r][j] : 0;
                tmask[r * 12 + j] = (float)(j < lens[r]);
            }
        }
    for (int r = 0; r < B; r++) logits_of(ctx, m, seq[r], NULL, 1, lens[r], alone[r]);
    logits_of(ctx, m, padded, mask, B, LPAD, got);
    double scale = 0;
    for (int r = 0; r < B; r++)
        for (int k = 0; k < NCLS; k++) scale = fmax(scale, fabs(alone[r][k]));
    ck_assert_msg(scale > 1e-2, "%s: logits too small (%g) to see anything", spec, scale);
    for (int r = 0; r < B; r++) {
        double d = max_diff(alone[r], got + r * NCLS, NCLS);
        ck_assert_msg(d <= 1e-4 * fmax(1, scale), "%s: sequence %d (length %d) moves by %g when padded to %d", spec, r,
                      lens[r], d, LPAD);
    }
    logits_of(ctx, m, tight, tmask, B, 12, got);
    for (int r = 0; r < B; r++) {
        double d = max_diff(alone[r], got + r * NCLS, NCLS);
        ck_assert_msg(d <= 1e-4 * fmax(1, scale), "%s: sequence %d moves by %g in a batch padded to 12", spec, r, d);
    }
    logits_of(ctx, m, padded, NULL, B, LPAD, open);
    ck_assert_msg(max_diff(alone[0], open, NCLS) > 1e-3, "%s: unmasked padding changed nothing: the test is blind", spec);
    imb_textcls_free(m);
    imb_ctx_free(ctx);
}

/* every mixer in the registry, so backbones that land later are covered too: its -nano preset
 * (or its first), and the same with a class token and learned positions */
START_TEST(padding_invariance_every_backbone) {
    int n = 0;
    for (int i = 0; imb_mixers[i]; i++) {
        const imb_mixer_def *mx = imb_mixers[i];
        char preset[64], spec[128];
        snprintf(preset, sizeof preset, "%s", mx->presets[0]);
        for (int k = 0; mx->presets[k]; k++)
            if (strstr(mx->presets[k], "-nano")) snprintf(preset, sizeof preset, "%s", mx->presets[k]);
        padding_invariance(preset);
        snprintf(spec, sizeof spec, "%s:cls_token=1,pos_embed=1", preset);
        padding_invariance(spec);
        n++;
    }
    ck_assert_int_ge(n, 1);
}
END_TEST

START_TEST(shapes_and_errors) {
    char err[512] = "";
    imb_backbone_cfg cfg;
    ck_assert_int_eq(imb_backbone_parse("vit-nano:dim=16,heads=2,depth=1", &cfg, err, sizeof err), 0);
    imb_ctx *ctx = imb_ctx_new(IMB_CPU, 1, err, sizeof err);
    imb_textcls *m = imb_textcls_create(ctx, &cfg, V, 8, NCLS);
    ck_assert_int_eq(imb_params_alloc(ctx), 0);
    /* positions sized to max_len on a (max_len, 1) grid; vocab x width embedding */
    ck_assert_int_eq(m->bb->pos_embed->shape[1], 8);
    ck_assert_int_eq(m->embed_w->shape[0], V);
    ck_assert_int_eq(m->bb->cfg.nclasses, NCLS);
    int32_t ids[2 * 9] = { 0 };
    float mask[2 * 9] = { 0 };
    imb_step_begin(ctx, 0);
    ck_assert_ptr_null(imb_textcls_forward(ctx, m, imb_input(ctx, IMB_I32, 2, IMB_SHAPE(2, 9), ids), NULL));
    dt_err_has(imb_error(ctx), "max_len 8", NULL);
    imb_error_clear(ctx);
    imb_step_begin(ctx, 0);
    ck_assert_ptr_null(imb_textcls_forward(ctx, m, imb_input(ctx, IMB_I32, 2, IMB_SHAPE(2, 4), ids),
                                           imb_input(ctx, IMB_F32, 2, IMB_SHAPE(2, 5), mask)));
    dt_err_has(imb_error(ctx), "mask", NULL);
    imb_error_clear(ctx);
    ids[3] = V;   /* out of the vocabulary */
    imb_step_begin(ctx, 0);
    ck_assert_ptr_null(imb_textcls_forward(ctx, m, imb_input(ctx, IMB_I32, 2, IMB_SHAPE(2, 4), ids), NULL));
    imb_error_clear(ctx);
    imb_textcls_free(m);
    ck_assert_ptr_null(imb_textcls_create(ctx, &cfg, V, 8, 1));
    imb_ctx_free(ctx);
}
END_TEST

/* The whole data path (synth CSV -> tokenizer -> shards -> length-grouped batches) into a small
 * ViT trained with AdamW for a few epochs: test accuracy far above the 25% of chance. */
START_TEST(learns_synth_agnews) {
    char *root = dt_synth("agnews", 64, 25), err[1024] = "";
    imb_bpe *tok;
    imb_text_shard tr, te;
    ck_assert_msg(imb_text_tokenizer(&imb_text_agnews, "agnews", root, "train", 1024, &tok, NULL, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(imb_text_prepare_split(&imb_text_agnews, "agnews", root, "train", tok, &tr, NULL, err, sizeof err), 0);
    ck_assert_int_eq(imb_text_prepare_split(&imb_text_agnews, "agnews", root, "test", tok, &te, NULL, err, sizeof err), 0);
    enum { BATCH = 16, ML = 64 };
    imb_text_loader *lt = imb_text_loader_new(&tr, BATCH, ML, 1, 1, 3, err, sizeof err);
    imb_text_loader *lv = imb_text_loader_new(&te, BATCH, ML, 0, 0, 3, err, sizeof err);
    imb_text_loader_bucket(lt, 4);
    imb_backbone_cfg cfg;
    ck_assert_int_eq(imb_backbone_parse("vit-nano:dim=32,heads=2,depth=2", &cfg, err, sizeof err), 0);
    imb_ctx *ctx = imb_ctx_new(IMB_CPU, 3, err, sizeof err);
    imb_textcls *m = imb_textcls_create(ctx, &cfg, tr.vocab, ML, tr.nclasses);
    ck_assert_int_eq(imb_params_alloc(ctx), 0);
    imb_adamw opt = imb_adamw_default(0.01f);
    int32_t ids[BATCH * ML], y[BATCH];
    float mask[BATCH * ML], first = 0, last = 0;
    int count, L, steps = 10 * (int)imb_text_loader_batches(lt);
    for (int s = 0; s < steps; s++) {
        if (imb_text_loader_next(lt, ids, mask, y, &count, &L)) imb_text_loader_next(lt, ids, mask, y, &count, &L);
        imb_params_zero_grad(ctx);
        imb_step_begin(ctx, 1);
        imb_tensor *lg = imb_textcls_forward(ctx, m, imb_input(ctx, IMB_I32, 2, IMB_SHAPE(count, L), ids),
                                             imb_input(ctx, IMB_F32, 2, IMB_SHAPE(count, L), mask));
        imb_tensor *loss = imb_textcls_loss(ctx, m, lg, imb_input(ctx, IMB_I32, 1, IMB_SHAPE(count), y), 0.0f, NULL);
        float lv;
        ck_assert_msg(loss && imb_to_host(ctx, loss, &lv, 0) == 0, "%s", imb_error(ctx));
        if (s == 0) first = lv;
        last = lv;
        ck_assert_int_eq(imb_backward(ctx, loss), 0);
        ck_assert_int_eq(imb_adamw_step(ctx, &opt, imb_lr_cosine(s, steps, 5, 3e-3f, 1e-4f)), 0);
    }
    int right = 0, n = 0;
    while (!imb_text_loader_next(lv, ids, mask, y, &count, &L)) {
        float lg[BATCH * 4];
        logits_of(ctx, m, ids, mask, count, L, lg);
        for (int r = 0; r < count; r++) {
            int best = 0;
            for (int k = 1; k < 4; k++)
                if (lg[r * 4 + k] > lg[r * 4 + best]) best = k;
            right += best == y[r];
            n++;
        }
    }
    ck_assert_int_eq(n, 100);
    printf("synth agnews: loss %.3f -> %.3f, test accuracy %d/%d\n", first, last, right, n);
    ck_assert_msg(right >= 70, "test accuracy %d/100 (chance 25)", right);
    imb_textcls_free(m);
    imb_ctx_free(ctx);
    imb_text_loader_free(lt);
    imb_text_loader_free(lv);
    imb_text_shard_close(&tr);
    imb_text_shard_close(&te);
    imb_bpe_free(tok);
    dt_rm_tree(root);
    free(root);
}
END_TEST

/* Training steps as the trainer runs them on CUDA (batches padded to max_len, the real length
 * changing every step) through the graph bookkeeping emulated on the CPU: after the capture,
 * every step replays (same ops, allocations and inputs), probes write nothing, and the losses
 * are the eager ones, for every backbone in the registry. */
typedef struct { imb_textcls *m; imb_adamw opt; int32_t ids[4 * MAXLEN], y[4]; float mask[4 * MAXLEN]; } step_ud;

static int text_step(imb_ctx *c, void *p) {
    step_ud *u = p;
    imb_params_zero_grad(c);
    imb_step_begin(c, 1);
    imb_tensor *lg = imb_textcls_forward(c, u->m, imb_input(c, IMB_I32, 2, IMB_SHAPE(4, MAXLEN), u->ids),
                                         imb_input(c, IMB_F32, 2, IMB_SHAPE(4, MAXLEN), u->mask));
    imb_tensor *l = imb_textcls_loss(c, u->m, lg, imb_input(c, IMB_I32, 1, IMB_SHAPE(4), u->y), 0.0f, NULL);
    imb_step_keep(c, 0, l);
    imb_backward(c, l);
    imb_grad_clip_async(c, 1.0f);
    imb_adamw_apply(c, &u->opt);
    return imb_ok(c) ? 0 : -1;
}

static void text_steps(const char *spec, imb_graph_use use, float *loss, imb_graph_stats *st) {
    char err[512] = "";
    imb_backbone_cfg cfg;
    ck_assert_msg(imb_backbone_parse(spec, &cfg, err, sizeof err) == 0, "%s", err);
    imb_ctx *c = imb_ctx_new(IMB_CPU, 4, err, sizeof err);
    step_ud u;
    u.m = imb_textcls_create(c, &cfg, V, MAXLEN, NCLS);
    ck_assert_msg(u.m && !imb_params_alloc(c), "%s", imb_error(c));
    u.opt = imb_adamw_default(0.05f);
    imb_graph *g = imb_graph_new(c, use, NULL, NULL);
    for (int s = 0; s < 5; s++) {
        for (int r = 0; r < 4; r++) {
            int n = 1 + (int)imb_rng_below(7, (uint64_t)s, (uint64_t)r, MAXLEN);
            for (int j = 0; j < MAXLEN; j++) {
                u.ids[r * MAXLEN + j] = j < n ? 1 + (int32_t)imb_rng_below(8, (uint64_t)s, (uint64_t)(r * MAXLEN + j), V - 1) : 0;
                u.mask[r * MAXLEN + j] = (float)(j < n);
            }
            u.y[r] = (int32_t)imb_rng_below(9, (uint64_t)s, (uint64_t)r, NCLS);
        }
        ck_assert_int_eq(imb_adamw_prepare(c, &u.opt, 1e-3f), 0);
        ck_assert_msg(!imb_graph_step(g, text_step, &u), "%s: %s", spec, imb_error(c));
        loss[s] = imb_step_result(c)->vals[0];
    }
    *st = *imb_graph_get_stats(g);
    imb_graph_free(g);
    imb_textcls_free(u.m);
    imb_ctx_free(c);
}

START_TEST(graph_replays_every_backbone) {
    for (int i = 0; imb_mixers[i]; i++) {
        const imb_mixer_def *mx = imb_mixers[i];
        char spec[64];
        snprintf(spec, sizeof spec, "%s", mx->presets[0]);
        for (int k = 0; mx->presets[k]; k++)
            if (strstr(mx->presets[k], "-nano")) snprintf(spec, sizeof spec, "%s", mx->presets[k]);
        float a[5], b[5];
        imb_graph_stats sa, sb;
        text_steps(spec, IMB_GRAPH_OFF, a, &sa);
        text_steps(spec, IMB_GRAPH_EMULATE, b, &sb);
        ck_assert_msg(!memcmp(a, b, sizeof a), "%s: emulated graph steps change the losses", spec);
        ck_assert_msg(sb.replayed == 3 && sb.mismatched == 0, "%s: %lld replayed, %lld mismatched", spec,
                      (long long)sb.replayed, (long long)sb.mismatched);
        ck_assert_int_eq(sb.probe_wrote, 0);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("textcls");
    TCase *t = tcase_create("model");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, padding_invariance_every_backbone);
    tcase_add_test(t, shapes_and_errors);
    tcase_add_test(t, learns_synth_agnews);
    tcase_add_test(t, graph_replays_every_backbone);
    suite_add_tcase(s, t);
    return imb_check_run(srunner_create(s));
}
