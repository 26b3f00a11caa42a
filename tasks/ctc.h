/* CTC speech recognition model: convolutional subsampling stem -> isotropic 1-D backbone ->
 * linear head over the CTC symbols (blank = 0). */
#ifndef IMB_CTC_TASK_H
#define IMB_CTC_TASK_H
#include "backbone.h"

/* Frames after the stem's two 3x3 stride-2 unpadded convs: T1 = (T - 1) / 2, T' = (T1 - 1) / 2
 * (ESPnet's Conv2dSubsampling), 0 for fewer than 7 frames. Output frame t' reads input frames
 * 4t' .. 4t' + 6 only, so with every output length taken from this formula no kept output
 * ever sees a padded frame: the stem's outputs do not depend on what else is in the batch. */
int imb_ctc_subsampled_len(int frames);

/* ESPnet's Conv2dSubsampling over (time, mel) as a 1-channel image: conv 3x3/2 -> GELU ->
 * conv 3x3/2 -> GELU -> linear from channels x F' (F' = (mel - 1) / 2 - 1) / 2, 19 for 80 bins)
 * to the backbone width, then x sqrt(dim) + sinusoidal positions (ESPnet's PositionalEncoding;
 * attention mixers have no other position signal here). The linear's inputs are ordered
 * (frequency, channel), ESPnet's (channel, frequency): the same layer up to a fixed permutation
 * of its weight columns. Parameters: <prefix>.conv.0.{weight,bias}, <prefix>.conv.2.*,
 * <prefix>.out.0.* (ESPnet's names), PyTorch's default initialisation. */
typedef struct imb_ctc_stem {
    imb_tensor *conv1_w, *conv1_b, *conv2_w, *conv2_b, *out_w, *out_b;
    int mel, channels, dim, freq_out;
} imb_ctc_stem;

/* NULL with the error in ctx when mel < 7, channels < 1 or dim < 2. */
imb_ctc_stem *imb_ctc_stem_create(imb_ctx *ctx, const char *prefix, int mel, int channels, int dim);
/* feats [B, T, mel] (what lies past an utterance's frames is never read by its kept outputs),
 * len [B] host frames per utterance (7 <= len[b] <= T) -> tokens [B, T', dim] with T' =
 * imb_ctc_subsampled_len(T); out_len [B] (host) receives each utterance's T'. mask (may be NULL)
 * receives f32 [B, T'] (1 = token, 0 = padding), or NULL when no utterance is padded. */
imb_tensor *imb_ctc_stem_forward(imb_ctx *ctx, const imb_ctc_stem *s, imb_tensor *feats, const int32_t *len,
                                 int32_t *out_len, imb_tensor **mask);

typedef struct imb_ctc_model {
    imb_ctc_stem *stem;
    imb_backbone *bb;
    imb_tensor *head_w, *head_b;
    int nsym;
} imb_ctc_model;

/* Declares the stem (encoder.embed.*), the backbone as one isotropic stage
 * (imb_backbone_isotropic; no class token, no learned positions; causal from the argument)
 * and the head (ctc.ctc_lo.*, ESPnet's name) over nsym symbols. NULL with the error in ctx. */
imb_ctc_model *imb_ctc_model_create(imb_ctx *ctx, const imb_backbone_cfg *cfg, int mel, int stem_channels, int nsym,
                                    int causal);
void imb_ctc_model_free(imb_ctc_model *m);
/* feats [B, T, mel], len host [B] -> logits [B, T', nsym]; out_len host [B] as the stem's. */
imb_tensor *imb_ctc_model_forward(imb_ctx *ctx, imb_ctc_model *m, imb_tensor *feats, const int32_t *len,
                                  int32_t *out_len);
#endif
