/* The backbone skeleton: parameters, block loop, stage downsampling, pooling. */
#include "backbone.h"
#include "activation.h"
#include "elementwise.h"
#include "embedding.h"
#include "matmul.h"
#include "norm.h"
#include "resize.h"
#include "shape.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const imb_mixer_def *imb_mixer_find(const char *name) {
    for (int i = 0; imb_mixers[i]; i++)
        if (!strcmp(imb_mixers[i]->name, name)) return imb_mixers[i];
    return NULL;
}

const char *imb_backbone_opt(const imb_backbone_cfg *cfg, const char *key, const char *def) {
    for (int i = 0; i < cfg->nopts; i++)
        if (!strcmp(cfg->opt_key[i], key)) return cfg->opt_val[i];
    return def;
}

void imb_backbone_list(FILE *f) {
    for (int i = 0; imb_mixers[i]; i++) {
        const imb_mixer_def *m = imb_mixers[i];
        fprintf(f, "  %-10s %s\n", m->name, m->about);
        fprintf(f, "             presets:");
        for (int k = 0; m->presets[k]; k++) fprintf(f, " %s", m->presets[k]);
        fprintf(f, "\n             options: cls_token pos_embed causal depth dim heads mlp_ratio");
        for (int k = 0; m->options && m->options[k]; k++) fprintf(f, " %s", m->options[k]);
        fprintf(f, "\n");
    }
}

static int parse_int(const char *key, const char *val, int lo, int hi, int *out, char *err, size_t errn) {
    char *end;
    long v = strtol(val, &end, 10);
    if (!*val || *end || v < lo || v > hi) {
        snprintf(err, errn, "backbone option %s=%s: expected an integer in [%d, %d]", key, val, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int imb_backbone_set(imb_backbone_cfg *cfg, const char *key, const char *val, char *err, size_t errn) {
    const imb_mixer_def *m = imb_mixer_find(cfg->mixer);
    int v;
    if (!strcmp(key, "cls_token")) return parse_int(key, val, 0, 1, &cfg->cls_token, err, errn);
    if (!strcmp(key, "pos_embed")) return parse_int(key, val, 0, 1, &cfg->pos_embed, err, errn);
    if (!strcmp(key, "causal")) return parse_int(key, val, 0, 1, &cfg->causal, err, errn);
    if (!strcmp(key, "depth") || !strcmp(key, "dim") || !strcmp(key, "heads")) {
        if (cfg->nstages != 1) {
            snprintf(err, errn, "backbone option %s: only for single-stage backbones", key);
            return -1;
        }
        int *dst = key[0] == 'd' ? (key[1] == 'e' ? &cfg->depths[0] : &cfg->dims[0]) : &cfg->heads[0];
        if (parse_int(key, val, 1, 65536, &v, err, errn)) return -1;
        *dst = v;
        return 0;
    }
    if (!strcmp(key, "mlp_ratio")) {
        char *end;
        float r = strtof(val, &end);
        if (!*val || *end || !(r > 0 && r <= 64)) {
            snprintf(err, errn, "backbone option mlp_ratio=%s: expected a number in (0, 64]", val);
            return -1;
        }
        cfg->mlp_ratio = r;
        return 0;
    }
    for (int k = 0; m && m->options && m->options[k]; k++)
        if (!strcmp(m->options[k], key)) {
            for (int i = 0; i < cfg->nopts; i++)
                if (!strcmp(cfg->opt_key[i], key)) {
                    snprintf(cfg->opt_val[i], sizeof cfg->opt_val[i], "%s", val);
                    return 0;
                }
            if (cfg->nopts == IMB_MAX_OPTS || strlen(val) >= sizeof cfg->opt_val[0]) {
                snprintf(err, errn, "backbone option %s=%s: too many options or value too long", key, val);
                return -1;
            }
            snprintf(cfg->opt_key[cfg->nopts], sizeof cfg->opt_key[0], "%s", key);
            snprintf(cfg->opt_val[cfg->nopts++], sizeof cfg->opt_val[0], "%s", val);
            return 0;
        }
    int k = snprintf(err, errn, "unknown backbone option '%s' for %s; valid: cls_token pos_embed causal depth dim heads mlp_ratio",
                     key, cfg->mixer);
    for (int i = 0; m && m->options && m->options[i] && k > 0 && (size_t)k < errn; i++)
        k += snprintf(err + k, errn - (size_t)k, " %s", m->options[i]);
    return -1;
}

int imb_backbone_parse(const char *spec, imb_backbone_cfg *cfg, char *err, size_t errn) {
    char buf[256];
    if (!spec || strlen(spec) >= sizeof buf) { snprintf(err, errn, "backbone: empty or too long spec"); return -1; }
    snprintf(buf, sizeof buf, "%s", spec);
    char *opts = strchr(buf, ':');
    if (opts) *opts++ = 0;
    memset(cfg, 0, sizeof *cfg);
    const imb_mixer_def *found = NULL;
    for (int i = 0; imb_mixers[i] && !found; i++) {
        const imb_mixer_def *m = imb_mixers[i];
        const char *preset = !strcmp(buf, m->name) ? m->presets[0] : buf;
        for (int k = 0; m->presets[k]; k++)
            if (!strcmp(m->presets[k], preset)) {
                found = m;
                snprintf(cfg->mixer, sizeof cfg->mixer, "%s", m->name);
                snprintf(cfg->preset, sizeof cfg->preset, "%.31s", m->presets[k]);
                if (m->preset(preset, cfg)) { snprintf(err, errn, "backbone %s: bad preset table", preset); return -1; }
            }
    }
    if (!found) {
        int k = snprintf(err, errn, "unknown backbone '%s'; valid:", buf);
        for (int i = 0; imb_mixers[i]; i++)
            for (int p = 0; imb_mixers[i]->presets[p] && k > 0 && (size_t)k < errn; p++)
                k += snprintf(err + k, errn - (size_t)k, " %s", imb_mixers[i]->presets[p]);
        return -1;
    }
    for (char *tok = opts ? strtok(opts, ",") : NULL; tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        if (!eq) { snprintf(err, errn, "backbone option '%s': expected key=value", tok); return -1; }
        *eq = 0;
        if (imb_backbone_set(cfg, tok, eq + 1, err, errn)) return -1;
    }
    return 0;
}

static imb_tensor *param(imb_ctx *ctx, const char *prefix, const char *name, int ndim, const int64_t *shape,
                         imb_init init, float arg, int decay) {
    char full[128];
    snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", name);
    return imb_param_new(ctx, full, ndim, shape, init, arg, decay);
}

imb_backbone *imb_backbone_create(imb_ctx *ctx, const imb_backbone_cfg *cfg) {
    const imb_mixer_def *m = imb_mixer_find(cfg->mixer);
    if (!m) { imb_fail(ctx, "backbone: unknown mixer '%s'", cfg->mixer); return NULL; }
    int nblocks = 0;
    for (int s = 0; s < cfg->nstages; s++) nblocks += cfg->depths[s];
    imb_backbone *bb = calloc(1, sizeof *bb);
    if (bb) bb->blocks = calloc((size_t)nblocks, sizeof *bb->blocks);
    if (!bb || !bb->blocks) { free(bb); imb_fail(ctx, "backbone: out of host memory"); return NULL; }
    bb->cfg = *cfg;
    bb->mixer = m;
    int C0 = cfg->dims[0];
    float sd = cfg->init_std;
    if (cfg->cls_token) bb->cls_token = param(ctx, "", "cls_token", 3, IMB_SHAPE(1, 1, C0), IMB_INIT_NORMAL, 1e-6f, 0);
    if (cfg->pos_embed)
        bb->pos_embed = param(ctx, "", "pos_embed", 3, IMB_SHAPE(1, cfg->cls_token + cfg->pos_h * cfg->pos_w, C0),
                              IMB_INIT_TRUNC_NORMAL, sd, 0);
    int bi = 0;
    for (int s = 0; s < cfg->nstages; s++) {
        int C = cfg->dims[s], Hd = (int)(cfg->mlp_ratio * (float)C);
        if (s > 0) {
            /* 2x2 patch merging: norm over the gathered channels, then a bias-free linear */
            char pre[48];
            snprintf(pre, sizeof pre, "stages.%d.downsample", s);
            int Cin = cfg->dims[s - 1] * 4;
            bb->merge_norm_w[s] = param(ctx, pre, "norm.weight", 1, IMB_SHAPE(Cin), IMB_INIT_ONES, 0, 0);
            bb->merge_norm_b[s] = param(ctx, pre, "norm.bias", 1, IMB_SHAPE(Cin), IMB_INIT_ZEROS, 0, 0);
            bb->merge_w[s] = param(ctx, pre, "reduction.weight", 2, IMB_SHAPE(C, Cin), IMB_INIT_TRUNC_NORMAL, sd, 1);
        }
        for (int d = 0; d < cfg->depths[s]; d++, bi++) {
            char pre[48], mpre[64];
            snprintf(pre, sizeof pre, "blocks.%d", bi);
            imb_block *b = &bb->blocks[bi];
            b->norm1_w = param(ctx, pre, "norm1.weight", 1, IMB_SHAPE(C), IMB_INIT_ONES, 0, 0);
            b->norm1_b = param(ctx, pre, "norm1.bias", 1, IMB_SHAPE(C), IMB_INIT_ZEROS, 0, 0);
            snprintf(mpre, sizeof mpre, "%s.%s", pre, m->param_prefix);
            b->mixer = m->create(ctx, cfg, s, mpre);
            b->norm2_w = param(ctx, pre, "norm2.weight", 1, IMB_SHAPE(C), IMB_INIT_ONES, 0, 0);
            b->norm2_b = param(ctx, pre, "norm2.bias", 1, IMB_SHAPE(C), IMB_INIT_ZEROS, 0, 0);
            b->fc1_w = param(ctx, pre, "mlp.fc1.weight", 2, IMB_SHAPE(Hd, C), IMB_INIT_TRUNC_NORMAL, sd, 1);
            b->fc1_b = param(ctx, pre, "mlp.fc1.bias", 1, IMB_SHAPE(Hd), IMB_INIT_ZEROS, 0, 0);
            b->fc2_w = param(ctx, pre, "mlp.fc2.weight", 2, IMB_SHAPE(C, Hd), IMB_INIT_TRUNC_NORMAL, sd, 1);
            b->fc2_b = param(ctx, pre, "mlp.fc2.bias", 1, IMB_SHAPE(C), IMB_INIT_ZEROS, 0, 0);
        }
    }
    if (m->create_extra) bb->extra = m->create_extra(ctx, cfg);
    int CL = cfg->dims[cfg->nstages - 1];
    bb->norm_w = param(ctx, "", "norm.weight", 1, IMB_SHAPE(CL), IMB_INIT_ONES, 0, 0);
    bb->norm_b = param(ctx, "", "norm.bias", 1, IMB_SHAPE(CL), IMB_INIT_ZEROS, 0, 0);
    if (!imb_ok(ctx)) { imb_backbone_free(bb); return NULL; }
    return bb;
}

void imb_backbone_free(imb_backbone *bb) {
    if (!bb) return;
    int nblocks = 0;
    for (int s = 0; s < bb->cfg.nstages; s++) nblocks += bb->cfg.depths[s];
    for (int i = 0; i < nblocks; i++) free(bb->blocks[i].mixer);
    free(bb->blocks);
    free(bb->extra);
    free(bb);
}

imb_tensor *imb_backbone_aux_loss(imb_ctx *ctx, imb_backbone *bb, imb_tensor *labels, imb_aux_terms *terms) {
    imb_aux_terms local;
    if (!terms) terms = &local;
    terms->n = 0;
    if (!imb_ok(ctx) || !bb || !bb->mixer->aux_loss) return NULL;
    return bb->mixer->aux_loss(ctx, bb, labels, terms);
}

void imb_backbone_isotropic(imb_backbone_cfg *cfg) {
    if (cfg->nstages <= 1) return;
    int mid = cfg->nstages / 2, depth = 0;
    for (int s = 0; s < cfg->nstages; s++) depth += cfg->depths[s];
    cfg->dims[0] = cfg->dims[mid];
    cfg->heads[0] = cfg->heads[mid];
    cfg->depths[0] = depth;
    for (int s = 1; s < IMB_MAX_STAGES; s++) cfg->dims[s] = cfg->depths[s] = cfg->heads[s] = 0;
    cfg->nstages = 1;
}

static imb_tensor *block_forward(imb_ctx *ctx, const imb_backbone *bb, const imb_block *b, imb_tensor *x,
                                 const imb_grid *g) {
    float eps = bb->cfg.norm_eps;
    imb_tensor *h = bb->mixer->forward(ctx, b->mixer, imb_layernorm(ctx, x, b->norm1_w, b->norm1_b, eps), g);
    x = imb_residual(ctx, x, h, NULL);
    h = imb_layernorm(ctx, x, b->norm2_w, b->norm2_b, eps);
    h = imb_linear(ctx, imb_linear_gelu(ctx, h, b->fc1_w, b->fc1_b), b->fc2_w, b->fc2_b);
    return imb_residual(ctx, x, h, NULL);
}

/* 2x2 patch merging of an H x W grid: [B, H*W, C] -> [B, ceil(H/2) * ceil(W/2), 4C], channel
 * order (dh, dw, c); an odd grid gets a zero row / column at the bottom / right first (Swin's and
 * VMamba's PatchMerging2D), so a 224 / 16 = 14 grid still runs four stages (14, 7, 4, 2).
 * Hierarchical layouts are for images only (1-D tasks run isotropic). */
static imb_tensor *merge(imb_ctx *ctx, const imb_backbone *bb, int s, imb_tensor *x, imb_grid *g) {
    if (!x) return NULL;
    int64_t B = x->shape[0], C = x->shape[2];
    if (g->W == 1 || g->mask)
        return imb_fail(ctx, "backbone %s: hierarchical stages need an unpadded 2-D grid (1-D inputs run isotropic)",
                        bb->cfg.preset), NULL;
    if (g->H % 2 || g->W % 2) {
        x = imb_reshape(ctx, x, 4, IMB_SHAPE(B, g->H, g->W, C));
        if (g->W % 2)
            x = imb_concat(ctx, (imb_tensor *[]){ x, imb_full(ctx, 4, IMB_SHAPE(B, g->H, 1, C), 0.0f) }, 2, 2), g->W++;
        if (g->H % 2)
            x = imb_concat(ctx, (imb_tensor *[]){ x, imb_full(ctx, 4, IMB_SHAPE(B, 1, g->W, C), 0.0f) }, 2, 1), g->H++;
        if (!x) return NULL;
    }
    x = imb_reshape(ctx, x, 4, IMB_SHAPE(B * g->H / 2, 2, g->W / 2, 2 * C));
    x = imb_permute(ctx, x, (const int[]){ 0, 2, 1, 3 });
    g->H /= 2;
    g->W /= 2;
    x = imb_reshape(ctx, x, 3, IMB_SHAPE(B, (int64_t)g->H * g->W, 4 * C));
    x = imb_layernorm(ctx, x, bb->merge_norm_w[s], bb->merge_norm_b[s], bb->cfg.norm_eps);
    return imb_linear(ctx, x, bb->merge_w[s], NULL);
}

int imb_backbone_forward(imb_ctx *ctx, imb_backbone *bb, imb_tensor *x, imb_grid g, imb_backbone_out *out) {
    const imb_backbone_cfg *cfg = &bb->cfg;
    memset(out, 0, sizeof *out);
    if (!imb_ok(ctx)) return -1;
    if (!x || x->ndim != 3 || x->shape[1] != (int64_t)g.H * g.W || x->shape[2] != cfg->dims[0]) {
        char b[64];
        return imb_fail(ctx, "backbone %s: tokens must be [B, %d*%d, %d], got %s", cfg->preset, g.H, g.W, cfg->dims[0],
                        x ? imb_shape_str(x, b, sizeof b) : "NULL");
    }
    int64_t B = x->shape[0], C0 = cfg->dims[0];
    int prefix = cfg->cls_token;
    imb_grid tg = g;
    if (prefix) {
        /* class token first (timm's order), then positions added to every token */
        imb_tensor *cls = imb_add(ctx, imb_full(ctx, 3, IMB_SHAPE(B, 1, C0), 0.0f),
                                  imb_reshape(ctx, bb->cls_token, 1, IMB_SHAPE(C0)));
        x = imb_concat(ctx, (imb_tensor *[]){ cls, x }, 2, 1);
        if (g.mask)   /* the class token is never padding */
            tg.mask = imb_concat(ctx, (imb_tensor *[]){ imb_full(ctx, 2, IMB_SHAPE(B, 1), 1.0f), g.mask }, 2, 1);
    }
    if (bb->pos_embed) {
        imb_tensor *pos = bb->pos_embed;
        if (g.W == 1 && cfg->pos_w == 1 && g.H < cfg->pos_h) {
            /* a 1-D sequence shorter than the positions (a padded batch's length varies) takes
             * the leading ones: stretching them would move every token when padding changes */
            pos = imb_slice(ctx, pos, 1, 0, prefix + (int64_t)g.H);
        } else if (g.H != cfg->pos_h || g.W != cfg->pos_w) {
            imb_tensor *grid_pos = imb_slice(ctx, pos, 1, prefix, (int64_t)cfg->pos_h * cfg->pos_w);
            grid_pos = imb_resize_tokens(ctx, grid_pos, cfg->pos_h, cfg->pos_w, g.H, g.W);
            pos = prefix ? imb_concat(ctx, (imb_tensor *[]){ imb_slice(ctx, pos, 1, 0, prefix), grid_pos }, 2, 1)
                         : grid_pos;
        }
        x = imb_add(ctx, x, pos ? imb_reshape(ctx, pos, 2, IMB_SHAPE(pos->shape[1], C0)) : NULL);
    }
    int bi = 0;
    for (int s = 0; s < cfg->nstages; s++) {
        if (s > 0) x = merge(ctx, bb, s, x, &tg);
        for (int d = 0; d < cfg->depths[s]; d++, bi++) x = block_forward(ctx, bb, &bb->blocks[bi], x, &tg);
        out->grids[s] = (imb_grid){ tg.H, tg.W, s == 0 ? g.mask : NULL };
        out->feats[s] = prefix && x ? imb_slice(ctx, x, 1, prefix, (int64_t)tg.H * tg.W) : x;
    }
    out->nstages = cfg->nstages;
    x = imb_layernorm(ctx, x, bb->norm_w, bb->norm_b, cfg->norm_eps);
    if (!x) return -1;
    /* the last stage's features are the normalised ones (what dense heads and timm use) */
    int last = cfg->nstages - 1;
    out->feats[last] = prefix ? imb_slice(ctx, x, 1, prefix, (int64_t)tg.H * tg.W) : x;
    out->pooled = prefix ? imb_reshape(ctx, imb_slice(ctx, x, 1, 0, 1), 2, IMB_SHAPE(B, x->shape[2]))
                         : imb_mean_pool(ctx, x, tg.mask);
    return imb_ok(ctx) ? 0 : -1;
}
