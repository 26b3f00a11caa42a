/* Op-table cases of the speech model: the CTC loss (every reduction, zero_infinity, a blank
 * that is not symbol 0) and the convolutional subsampling stem with padded utterances. */
#include "optest.h"
#include "ctc_loss.h"
#include "ctc.h"
#include <stdlib.h>

/* B = 4, T = 7, V = 5, S = 4: a repeated symbol (needs a blank between), a full-length input,
 * an empty target, one utterance shorter than the batch's T */
static const int32_t in4[4] = { 7, 5, 3, 6 }, tl4[4] = { 4, 2, 0, 3 };
static const int32_t tg4[16] = { 1, 2, 2, 3, 4, 4, 0, 0, 0, 0, 0, 0, 3, 1, 3, 0 };

static void ctc_setup(imb_ctx *c, optest *t) { OPT_P(c, t, "logits", 1.5f, 4, 7, 5); }
static imb_tensor *ctc_run(imb_ctx *c, optest *t, const int32_t *il, const int32_t *tl, const int32_t *tg, int blank,
                           imb_ctc_reduction red, int zinf) {
    return imb_ctc_loss(c, t->p[0], imb_input(c, IMB_I32, 1, IMB_SHAPE(4), il), imb_input(c, IMB_I32, 2, IMB_SHAPE(4, 4), tg),
                        imb_input(c, IMB_I32, 1, IMB_SHAPE(4), tl), blank, red, zinf, NULL);
}
static imb_tensor *ctc_none_fwd(imb_ctx *c, optest *t) { return ctc_run(c, t, in4, tl4, tg4, 0, IMB_CTC_NONE, 0); }
static imb_tensor *ctc_mean_fwd(imb_ctx *c, optest *t) { return ctc_run(c, t, in4, tl4, tg4, 0, IMB_CTC_MEAN, 0); }

/* blank = 4 (last symbol); utterance 1 cannot be emitted (3 frames for "2 2 1", which needs
 * 4): zero_infinity keeps its loss and gradient at 0 while the others train */
static const int32_t in_inf[4] = { 7, 3, 6, 4 }, tl_inf[4] = { 3, 3, 1, 2 };
static const int32_t tg_inf[16] = { 0, 1, 0, 0, 2, 2, 1, 0, 3, 0, 0, 0, 1, 1, 0, 0 };
static imb_tensor *ctc_sum_zinf_fwd(imb_ctx *c, optest *t) { return ctc_run(c, t, in_inf, tl_inf, tg_inf, 4, IMB_CTC_SUM, 1); }

/* the stem on two utterances of 13 and 9 frames (3 and 1 outputs), 11 mel bins, 3 channels, width 6 */
static void stem_setup(imb_ctx *c, optest *t) {
    imb_ctc_stem *s = imb_ctc_stem_create(c, "stem", 11, 3, 6);
    t->state = s;
    t->cleanup = free;
    OPT_P(c, t, "x", 1, 2, 13, 11);
    if (s) { t->p[t->n++] = s->conv1_w; t->p[t->n++] = s->conv1_b; t->p[t->n++] = s->conv2_w;
             t->p[t->n++] = s->conv2_b; t->p[t->n++] = s->out_w; t->p[t->n++] = s->out_b; }
}
static imb_tensor *stem_fwd(imb_ctx *c, optest *t) {
    static const int32_t len[2] = { 13, 9 };
    int32_t out_len[2];
    return imb_ctc_stem_forward(c, t->state, t->p[0], len, out_len, NULL);
}

const op_case optest_ctc[] = {
    { "ctc_loss_none", ctc_setup, ctc_none_fwd, 0, 0 },
    { "ctc_loss_mean", ctc_setup, ctc_mean_fwd, 0, 0 },
    { "ctc_loss_sum_zero_inf", ctc_setup, ctc_sum_zinf_fwd, 0, 0 },
    { "ctc_conv_stem", stem_setup, stem_fwd, 0, 0 },
    { 0 },
};
