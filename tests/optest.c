/* The op-table engine: finite-difference gradient checks and CPU/CUDA parity. */
#include "optest.h"
#include "mem.h"
#include "rng.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_SAMPLES 48

static const op_case *const tables[] = { optest_core, optest_nn, optest_shape, optest_scan, optest_concept, optest_model, optest_ctc,
                                         optest_scan_parity };
static const op_case *const parity_only[] = { optest_scan_parity };

int optest_parity_only(const op_case *c) {
    for (size_t t = 0; t < sizeof parity_only / sizeof *parity_only; t++)
        for (const op_case *p = parity_only[t]; p->name; p++)
            if (p == c) return 1;
    return 0;
}

int optest_count(void) {
    int n = 0;
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (const op_case *c = tables[t]; c->name; c++) n++;
    return n;
}

const op_case *optest_case(int i) {
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (const op_case *c = tables[t]; c->name; c++)
            if (i-- == 0) return c;
    return NULL;
}   /* gradient elements checked per input (all of them when fewer) */

imb_tensor *optest_param(imb_ctx *ctx, const char *name, float std, int ndim, const int64_t *shape) {
    return imb_param_new(ctx, name, ndim, shape, IMB_INIT_NORMAL, std, 1);
}

imb_tensor *optest_ints(imb_ctx *ctx, int32_t lo, int32_t hi, uint64_t stream, int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    int32_t *h = malloc(sizeof *h * (size_t)n);
    if (!h) return NULL;
    for (int64_t i = 0; i < n; i++) h[i] = lo + (int32_t)imb_rng_below(7, stream, (uint64_t)i, (uint32_t)(hi - lo + 1));
    imb_tensor *t = imb_input(ctx, IMB_I32, ndim, shape, h);
    free(h);
    return t;
}

imb_tensor *optest_floats(imb_ctx *ctx, float lo, float hi, uint64_t stream, int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *h = malloc(sizeof *h * (size_t)n);
    if (!h) return NULL;
    for (int64_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * imb_rng_uniform(7, stream, (uint64_t)i);
    imb_tensor *t = imb_input(ctx, IMB_F32, ndim, shape, h);
    free(h);
    return t;
}

static void destroy(const op_case *c, optest *t, imb_ctx *ctx) {
    (void)c;
    if (t->cleanup) t->cleanup(t->state);
    imb_ctx_free(ctx);
}

/* Builds the case on a fresh context; returns NULL with r->msg set on failure. */
static imb_ctx *make_ctx(const op_case *c, imb_device dev, optest *t, optest_result *r) {
    char e[256];
    imb_ctx *ctx = imb_ctx_new(dev, 1234, e, sizeof e);
    if (!ctx) { snprintf(r->msg, sizeof r->msg, "context: %s", e); return NULL; }
    ctx->act.debug = 1;
    memset(t, 0, sizeof *t);
    c->setup(ctx, t);
    if (imb_params_alloc(ctx)) {
        snprintf(r->msg, sizeof r->msg, "setup: %s", imb_error(ctx));
        destroy(c, t, ctx);
        return NULL;
    }
    return ctx;
}

/* Runs the forward; copies the output to a fresh host buffer (*y, *ny). Checks that
 * every element was written and no guard was touched. */
static imb_tensor *run_forward(imb_ctx *ctx, const op_case *c, optest *t, int training, float **y, int64_t *ny,
                               optest_result *r) {
    imb_step_begin(ctx, training);
    imb_tensor *out = c->forward(ctx, t);
    if (!out || !imb_ok(ctx)) {
        snprintf(r->msg, sizeof r->msg, "forward: %s", imb_ok(ctx) ? "returned NULL" : imb_error(ctx));
        return NULL;
    }
    *ny = imb_numel(out);
    *y = malloc(sizeof **y * (size_t)*ny);
    imb_to_host(ctx, out, *y, 0);
    for (int64_t i = 0; i < *ny; i++)
        if (!isfinite((*y)[i])) {
            snprintf(r->msg, sizeof r->msg, "forward: output element %lld not written (or not finite)", (long long)i);
            return NULL;
        }
    int g = imb_arena_check_guards(&ctx->act);
    if (g >= 0) {
        snprintf(r->msg, sizeof r->msg, "forward: out-of-bounds write after activation allocation %d", g);
        return NULL;
    }
    return out;
}

static double weighted_sum(const float *y, const float *w, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)w[i] * y[i];
    return s;
}

static float *seed_weights(int64_t n) {
    float *w = malloc(sizeof *w * (size_t)n);
    for (int64_t i = 0; i < n; i++) w[i] = imb_rng_normal(99, 5, (uint64_t)i);
    return w;
}

void optest_grad(const op_case *c, optest_result *r) {
    memset(r, 0, sizeof *r);
    optest t;
    imb_ctx *ctx = make_ctx(c, IMB_CPU, &t, r);
    if (!ctx) return;
    float *y = NULL, *w = NULL, *ga = NULL;
    int64_t ny = 0;
    imb_tensor *out = run_forward(ctx, c, &t, 1, &y, &ny, r);
    if (!out) goto done;
    w = seed_weights(ny);
    if (!out->grad) { snprintf(r->msg, sizeof r->msg, "output carries no gradient in training mode"); goto done; }
    if (imb_backward_seed(ctx, out, w)) { snprintf(r->msg, sizeof r->msg, "backward: %s", imb_error(ctx)); goto done; }
    if (imb_arena_check_guards(&ctx->act) >= 0) { snprintf(r->msg, sizeof r->msg, "backward: out-of-bounds write"); goto done; }
    imb_params *ps = &ctx->params;
    ga = malloc(sizeof *ga * ps->total);
    memcpy(ga, ps->grad, sizeof *ga * ps->total);
    double eps = c->fd_eps > 0 ? c->fd_eps : 1e-3, tol = c->tol > 0 ? c->tol : 1e-2;
    /* a case that declares no inputs of its own (a whole block or model) checks every parameter */
    int nin = t.n ? t.n : ps->n;
    for (int k = 0; k < nin; k++) {
        imb_param *p = t.n ? imb_param_find(ctx, t.p[k]->name) : &ps->p[k];
        int64_t n = imb_numel(p->t);
        const float *g = ga + p->offset;
        double rms = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(g[i])) { snprintf(r->msg, sizeof r->msg, "%s: gradient %lld not finite", p->name, (long long)i); goto done; }
            rms += (double)g[i] * g[i];
        }
        rms = sqrt(rms / (double)n);
        int64_t m = n < FD_SAMPLES ? n : FD_SAMPLES;
        for (int64_t s = 0; s < m; s++) {
            int64_t i = n <= FD_SAMPLES ? s : (int64_t)imb_rng_below(3, (uint64_t)k, (uint64_t)s, (uint32_t)n);
            float *x = imb_f32(p->t) + i, orig = *x;
            float *yp, *ym;
            int64_t nn;
            *x = orig + (float)eps;
            if (!run_forward(ctx, c, &t, 0, &yp, &nn, r)) goto done;
            *x = orig - (float)eps;
            if (!run_forward(ctx, c, &t, 0, &ym, &nn, r)) { free(yp); goto done; }
            double h = (double)(orig + (float)eps) - (double)(orig - (float)eps);   /* the step really taken */
            *x = orig;
            double num = (weighted_sum(yp, w, ny) - weighted_sum(ym, w, ny)) / h;
            free(yp); free(ym);
            double err = fabs(num - g[i]) / (fmax(fabs(num), fabs(g[i])) + rms + 1e-6);
            if (err > r->max_err) r->max_err = err;
            r->checked++;
            if (err > tol && !r->msg[0])
                snprintf(r->msg, sizeof r->msg, "%s[%lld]: analytic %.6g vs numeric %.6g (err %.3g > %.1g)", p->name,
                         (long long)i, g[i], num, err, tol);
        }
    }
done:
    free(y); free(w); free(ga);
    destroy(c, &t, ctx);
}

static double rel_diff(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num = fmax(num, fabs(d));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / (den + 1e-12);
}

int optest_parity(const op_case *c, double tol, optest_result *r) {
    memset(r, 0, sizeof *r);
    if (!imb_have_cuda()) return 77;
    optest tc, tg;
    imb_ctx *cc = make_ctx(c, IMB_CPU, &tc, r), *gc = cc ? make_ctx(c, IMB_CUDA, &tg, r) : NULL;
    float *yc = NULL, *yg = NULL, *w = NULL, *gcpu = NULL, *ggpu = NULL;
    int64_t nc = 0, ng = 0;
    if (!gc) goto done;
    imb_tensor *oc = run_forward(cc, c, &tc, 1, &yc, &nc, r);
    imb_tensor *og = oc ? run_forward(gc, c, &tg, 1, &yg, &ng, r) : NULL;
    if (!og) goto done;
    r->max_err = rel_diff(yg, yc, nc);
    r->checked = nc;
    if (r->max_err > tol) { snprintf(r->msg, sizeof r->msg, "forward differs: %.3g > %.1g", r->max_err, tol); goto done; }
    w = seed_weights(nc);
    if (imb_backward_seed(cc, oc, w) || imb_backward_seed(gc, og, w)) {
        snprintf(r->msg, sizeof r->msg, "backward: %s%s", imb_error(cc), imb_error(gc));
        goto done;
    }
    if (imb_arena_check_guards(&gc->act) >= 0) { snprintf(r->msg, sizeof r->msg, "backward: out-of-bounds write on CUDA"); goto done; }
    size_t total = cc->params.total;
    gcpu = malloc(sizeof *gcpu * total);
    ggpu = malloc(sizeof *ggpu * total);
    memcpy(gcpu, cc->params.grad, sizeof *gcpu * total);
    imb_mem_copy(IMB_CPU, ggpu, IMB_CUDA, gc->params.grad, sizeof *ggpu * total);
    int nin = tc.n ? tc.n : cc->params.n;
    for (int k = 0; k < nin; k++) {
        imb_param *p = tc.n ? imb_param_find(cc, tc.p[k]->name) : &cc->params.p[k];
        int64_t n = imb_numel(p->t);
        double e = rel_diff(ggpu + p->offset, gcpu + p->offset, n);
        if (e > r->max_err) r->max_err = e;
        r->checked += n;
        if (e > tol && !r->msg[0]) snprintf(r->msg, sizeof r->msg, "grad of %s differs: %.3g > %.1g", p->name, e, tol);
    }
done:
    free(yc); free(yg); free(w); free(gcpu); free(ggpu);
    if (cc) destroy(c, &tc, cc);
    if (gc) destroy(c, &tg, gc);
    return 0;
}
