/* The registry of token mixers: one row per mixer file. */
#include "backbone.h"

extern const imb_mixer_def imb_mixer_vit;
extern const imb_mixer_def imb_mixer_linformer;
extern const imb_mixer_def imb_mixer_vmamba;
extern const imb_mixer_def imb_mixer_infomamba;

const imb_mixer_def *const imb_mixers[] = { &imb_mixer_vit, &imb_mixer_linformer, &imb_mixer_vmamba, &imb_mixer_infomamba, NULL };
