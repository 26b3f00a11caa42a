/* The backbone skeleton: stages of `x += mixer(norm(x)); x += mlp(norm(x))` with
 * downsampling between stages, per-stage features, a pooled vector, and the registry of
 * token mixers. Inputs are always tokens [B, L, C] on a grid (H, W) (W = 1 for 1-D); the
 * stem that makes the tokens belongs to the task. */
#ifndef IMB_BACKBONE_H
#define IMB_BACKBONE_H
#include <stdio.h>
#include "ctx.h"

#define IMB_MAX_STAGES 4
#define IMB_MAX_OPTS 16

/* The token grid of a sequence plus its padding mask. */
typedef struct imb_grid {
    int H, W;               /* L = H * W; W = 1 for 1-D inputs */
    imb_tensor *mask;       /* f32 [B, L]: 1 = token, 0 = padding; NULL when nothing is padded */
} imb_grid;

typedef struct imb_backbone_cfg {
    char mixer[16];         /* registry name: "vit", ... */
    char preset[32];        /* e.g. "vit-nano" */
    int nstages;
    int depths[IMB_MAX_STAGES], dims[IMB_MAX_STAGES], heads[IMB_MAX_STAGES];
    float mlp_ratio;
    float norm_eps;
    int cls_token;          /* prepend a learned class token (ViT); pooled output = its final state */
    int pos_embed;          /* learned absolute positions, sized for pos_grid (+ prefix) */
    int pos_h, pos_w;       /* grid the positions are learned for; other grids interpolate, except
                             * a 1-D grid shorter than pos_h, which takes the leading positions */
    int causal;             /* 1-D mixers: causal (1) or bidirectional (0) */
    float init_std;         /* trunc-normal std for weights (timm: 0.02) */
    int nclasses;           /* set by the task: classes of a one-label-per-sample task (for the
                             * backbone's label-based auxiliary losses), 0 for other tasks */
    int nopts;              /* mixer-specific options (ablations etc.), "key" = "value" */
    char opt_key[IMB_MAX_OPTS][24], opt_val[IMB_MAX_OPTS][24];
} imb_backbone_cfg;

/* Auxiliary losses a backbone adds to the task loss (InfoMamba's InfoNCE, redundancy and hash
 * terms): each unweighted scalar term with its name and weight, for logging them separately. */
#define IMB_MAX_AUX 8
typedef struct imb_aux_terms {
    int n;
    char name[IMB_MAX_AUX][16];
    imb_tensor *term[IMB_MAX_AUX];   /* scalars [1] */
    float weight[IMB_MAX_AUX];
} imb_aux_terms;

struct imb_backbone;

/* A token mixer: one file per mixer, one row in the registry (backbones/registry.c). */
typedef struct imb_mixer_def {
    const char *name;
    const char *about;
    const char *param_prefix;   /* block sub-module name: "attn" (timm ViT), "mixer", ... */
    /* preset names this mixer provides ("vit-nano", ...) and their configs */
    int (*preset)(const char *preset, imb_backbone_cfg *cfg);
    const char *const *presets;
    /* mixer-specific option keys it accepts (NULL-terminated), checked before create */
    const char *const *options;
    /* declare one mixer's parameters under prefix (e.g. "blocks.3.attn") for stage s */
    void *(*create)(imb_ctx *ctx, const imb_backbone_cfg *cfg, int stage, const char *prefix);
    /* x: normalised tokens [B, L, C] -> [B, L, C] */
    imb_tensor *(*forward)(imb_ctx *ctx, void *state, imb_tensor *x, const imb_grid *grid);
    /* optional: backbone-level parameters beyond the blocks (declared once, after the blocks;
     * kept in imb_backbone.extra and released with free()) */
    void *(*create_extra)(imb_ctx *ctx, const imb_backbone_cfg *cfg);
    /* optional: the auxiliary losses of the last forward (see imb_backbone_aux_loss) */
    imb_tensor *(*aux_loss)(imb_ctx *ctx, struct imb_backbone *bb, imb_tensor *labels, imb_aux_terms *terms);
} imb_mixer_def;

extern const imb_mixer_def *const imb_mixers[];
const imb_mixer_def *imb_mixer_find(const char *name);

typedef struct imb_block {
    imb_tensor *norm1_w, *norm1_b, *norm2_w, *norm2_b;
    imb_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    void *mixer;
} imb_block;

typedef struct imb_backbone {
    imb_backbone_cfg cfg;
    const imb_mixer_def *mixer;
    imb_block *blocks;                   /* all stages, in order */
    imb_tensor *merge_w[IMB_MAX_STAGES], *merge_norm_w[IMB_MAX_STAGES], *merge_norm_b[IMB_MAX_STAGES];
    imb_tensor *cls_token, *pos_embed, *norm_w, *norm_b;
    void *extra;                         /* the mixer's create_extra state */
} imb_backbone;

typedef struct imb_backbone_out {
    int nstages;
    imb_tensor *feats[IMB_MAX_STAGES];   /* per-stage tokens [B, L_s, C_s] (class token removed) */
    imb_grid grids[IMB_MAX_STAGES];
    imb_tensor *pooled;                  /* [B, C_last] */
} imb_backbone_out;

/* spec: "<preset>[:key=value,...]" e.g. "vit-nano" or "vit-t:cls_token=0". The bare mixer
 * name ("vit") means its default preset. Unknown names/keys -> error listing valid ones. */
int imb_backbone_parse(const char *spec, imb_backbone_cfg *cfg, char *err, size_t errn);
/* apply one "key=value" option (generic keys or the mixer's own) */
int imb_backbone_set(imb_backbone_cfg *cfg, const char *key, const char *val, char *err, size_t errn);
/* declares every parameter in ctx (call before imb_params_alloc) */
imb_backbone *imb_backbone_create(imb_ctx *ctx, const imb_backbone_cfg *cfg);
void imb_backbone_free(imb_backbone *bb);
int imb_backbone_forward(imb_ctx *ctx, imb_backbone *bb, imb_tensor *tokens, imb_grid grid, imb_backbone_out *out);
/* After imb_backbone_forward: the weighted sum of the backbone's auxiliary losses for that
 * batch, to be added to the task loss, or NULL (with terms->n = 0) when the mixer has none.
 * labels: int32 [B] class labels for one-label-per-sample tasks (cfg.nclasses > 0), NULL
 * otherwise (label-based terms are then off). terms (may be NULL) receives each term. */
imb_tensor *imb_backbone_aux_loss(imb_ctx *ctx, imb_backbone *bb, imb_tensor *labels, imb_aux_terms *terms);
/* Turns a hierarchical layout into the isotropic single stage 1-D tasks need (the frame rate
 * is kept): width and heads of the middle stage (stage nstages/2, which holds most of the
 * parameters), depth = all stages' blocks. Single-stage configs are left as they are. */
void imb_backbone_isotropic(imb_backbone_cfg *cfg);
/* the value of a mixer option, or def */
const char *imb_backbone_opt(const imb_backbone_cfg *cfg, const char *key, const char *def);
/* lists every preset of every mixer, one per line */
void imb_backbone_list(FILE *f);
#endif
