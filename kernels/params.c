/* Parameters: declared one by one, then placed in single data/grad/AdamW buffers. */
#include "ctx.h"
#include "mem.h"
#include "rng.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARAM_ALIGN 64   /* floats: every parameter starts on a 256-byte boundary */

imb_tensor *imb_param_new(imb_ctx *ctx, const char *name, int ndim, const int64_t *shape,
                          imb_init init, float init_arg, int decay) {
    imb_params *ps = &ctx->params;
    if (!name || !*name) { imb_fail(ctx, "param: empty name"); return NULL; }
    if (ps->allocated) { imb_fail(ctx, "param %s: declared after imb_params_alloc", name); return NULL; }
    if (imb_param_find(ctx, name)) { imb_fail(ctx, "param %s: declared twice", name); return NULL; }
    if (ndim < 1 || ndim > IMB_MAX_DIMS) { imb_fail(ctx, "param %s: %d dims", name, ndim); return NULL; }
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0) { imb_fail(ctx, "param %s: dim %d has size %lld", name, i, (long long)shape[i]); return NULL; }
    if (init == IMB_INIT_IDENTITY && (ndim != 2 || shape[0] != shape[1])) {
        imb_fail(ctx, "param %s: identity init needs a square matrix", name);
        return NULL;
    }
    if (ps->n == ps->cap) {
        int nc = ps->cap ? 2 * ps->cap : 64;
        imb_param *np = realloc(ps->p, sizeof *np * (size_t)nc);
        if (!np) { imb_fail(ctx, "param %s: out of host memory", name); return NULL; }
        ps->p = np; ps->cap = nc;
    }
    imb_tensor *t = calloc(1, sizeof *t);
    char *nm = strdup(name);
    if (!t || !nm) { free(t); free(nm); imb_fail(ctx, "param %s: out of host memory", name); return NULL; }
    t->dtype = IMB_F32;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->device = ctx->device;
    t->name = nm;
    ps->p[ps->n++] = (imb_param){ t, nm, ps->total, init, init_arg, decay, 0 };
    size_t n = (size_t)imb_numel(t);
    ps->total += (n + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
    return t;
}

imb_param *imb_param_find(imb_ctx *ctx, const char *name) {
    for (int i = 0; i < ctx->params.n; i++)
        if (!strcmp(ctx->params.p[i].name, name)) return &ctx->params.p[i];
    return NULL;
}

void imb_param_freeze(imb_ctx *ctx, imb_tensor *t) {
    imb_params *ps = &ctx->params;
    for (int i = 0; i < ps->n; i++)
        if (ps->p[i].t == t) {
            ps->p[i].frozen = 1;
            if (ps->allocated)
                imb_mem_zero(ctx->device, ps->update_mask + ps->p[i].offset, (size_t)imb_numel(t) * sizeof(float));
        }
}

static uint64_t name_stream(const char *s) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void init_values(const imb_param *p, uint64_t seed, float *dst) {
    int64_t n = imb_numel(p->t);
    uint64_t st = name_stream(p->name);
    for (int64_t i = 0; i < n; i++) {
        float v = 0.0f;
        switch (p->init) {
        case IMB_INIT_ZEROS: v = 0.0f; break;
        case IMB_INIT_ONES: v = 1.0f; break;
        case IMB_INIT_CONST: v = p->init_arg; break;
        case IMB_INIT_NORMAL: v = p->init_arg * imb_rng_normal(seed, st, (uint64_t)i); break;
        case IMB_INIT_TRUNC_NORMAL: v = imb_rng_trunc_normal(seed, st, (uint64_t)i, p->init_arg); break;
        case IMB_INIT_UNIFORM: v = p->init_arg * (2.0f * imb_rng_uniform(seed, st, (uint64_t)i) - 1.0f); break;
        case IMB_INIT_IDENTITY: v = (i / p->t->shape[1] == i % p->t->shape[1]) ? 1.0f : 0.0f; break;
        case IMB_INIT_SSM_A_LOG: v = logf((float)(1 + i % p->t->shape[p->t->ndim - 1])); break;
        case IMB_INIT_SSM_DT_BIAS: {
            double lo = log(0.001), hi = log(0.1);
            double dt = fmax(exp(lo + (hi - lo) * imb_rng_uniform(seed, st, (uint64_t)i)), 1e-4);
            v = (float)(dt + log(-expm1(-dt)));   /* inverse softplus */
            break;
        }
        }
        dst[i] = v;
    }
}

int imb_params_init(imb_ctx *ctx) {
    imb_params *ps = &ctx->params;
    if (!ps->allocated) return imb_fail(ctx, "params: init before alloc");
    float *h = calloc(ps->total ? ps->total : 1, sizeof *h);
    float *dm = calloc(ps->total ? ps->total : 1, sizeof *dm);
    float *um = calloc(ps->total ? ps->total : 1, sizeof *um);
    if (!h || !dm || !um) { free(h); free(dm); free(um); return imb_fail(ctx, "params: out of host memory"); }
    for (int i = 0; i < ps->n; i++) {
        imb_param *p = &ps->p[i];
        size_t n = (size_t)imb_numel(p->t);
        init_values(p, ctx->seed, h + p->offset);
        for (size_t k = 0; k < n; k++) {
            dm[p->offset + k] = p->decay ? 1.0f : 0.0f;
            um[p->offset + k] = p->frozen ? 0.0f : 1.0f;
        }
    }
    size_t bytes = ps->total * sizeof(float);
    int rc = imb_mem_copy(ctx->device, ps->data, IMB_CPU, h, bytes) ||
             imb_mem_copy(ctx->device, ps->decay_mask, IMB_CPU, dm, bytes) ||
             imb_mem_copy(ctx->device, ps->update_mask, IMB_CPU, um, bytes) ||
             imb_mem_zero(ctx->device, ps->m, bytes) || imb_mem_zero(ctx->device, ps->v, bytes) ||
             imb_mem_zero(ctx->device, ps->grad, bytes);
    free(h); free(dm); free(um);
    return rc ? imb_fail(ctx, "params: copy to %s failed", imb_device_name(ctx->device)) : 0;
}

int imb_params_alloc(imb_ctx *ctx) {
    imb_params *ps = &ctx->params;
    if (!imb_ok(ctx)) return -1;
    if (ps->allocated) return imb_fail(ctx, "params: allocated twice");
    size_t bytes = (ps->total ? ps->total : 1) * sizeof(float);
    char e[256];
    float **bufs[] = { &ps->data, &ps->grad, &ps->m, &ps->v, &ps->decay_mask, &ps->update_mask };
    for (size_t b = 0; b < sizeof bufs / sizeof *bufs; b++)
        if (imb_mem_alloc(ctx->device, (void **)bufs[b], bytes, e, sizeof e)) return imb_fail(ctx, "params: %s", e);
    for (int i = 0; i < ps->n; i++) {
        ps->p[i].t->data = ps->data + ps->p[i].offset;
        ps->p[i].t->grad = ps->grad + ps->p[i].offset;
    }
    ps->allocated = 1;
    return imb_params_init(ctx);
}

int imb_params_zero_grad(imb_ctx *ctx) {
    imb_params *ps = &ctx->params;
    if (!ps->allocated) return imb_fail(ctx, "params: zero_grad before alloc");
    if (ctx->graph_mode == IMB_GRAPH_PROBE) return 0;   /* a replay's host walk (kernels/graph.h) */
    return imb_mem_zero(ctx->device, ps->grad, ps->total * sizeof(float)) ? imb_fail(ctx, "params: zero_grad failed") : 0;
}
