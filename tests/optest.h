/* The op table: one case per op, checked against central finite differences (grad mode)
 * and, on a GPU machine, CUDA against CPU (parity mode). Outputs are poisoned (NaN)
 * before each run and must be fully written; guard regions after every activation catch
 * out-of-bounds writes. */
#ifndef IMB_OPTEST_H
#define IMB_OPTEST_H
#include "ctx.h"

#define OPTEST_MAX 8
typedef struct optest {
    imb_tensor *p[OPTEST_MAX];   /* differentiable inputs, declared as parameters in setup */
    int n;
    void *state;                 /* a case's own model, freed by cleanup (set both in setup) */
    void (*cleanup)(void *state);
} optest;

typedef struct op_case {
    const char *name;
    /* declare the differentiable inputs: t->p[t->n++] = optest_param(ctx, ...); a case that
     * declares a whole model and leaves t->n = 0 gets every parameter checked */
    void (*setup)(imb_ctx *ctx, optest *t);
    /* build any non-differentiable inputs (indices, masks) and run the op */
    imb_tensor *(*forward)(imb_ctx *ctx, optest *t);
    double tol;          /* max allowed error; 0 means the default 1e-2 */
    double fd_eps;       /* finite-difference step; 0 means 1e-3 */
} op_case;

/* a random-normal (scale std, never all zeros) differentiable input */
imb_tensor *optest_param(imb_ctx *ctx, const char *name, float std, int ndim, const int64_t *shape);
#define OPT_P(ctx, t, name, std, ...) ((t)->p[(t)->n++] = optest_param((ctx), (name), (std), IMB_NDIM(__VA_ARGS__), IMB_SHAPE(__VA_ARGS__)))
/* deterministic host buffers for non-differentiable inputs */
imb_tensor *optest_ints(imb_ctx *ctx, int32_t lo, int32_t hi, uint64_t stream, int ndim, const int64_t *shape);
imb_tensor *optest_floats(imb_ctx *ctx, float lo, float hi, uint64_t stream, int ndim, const int64_t *shape);

typedef struct optest_result {
    double max_err;      /* worst |analytic - numeric| / max(1, |numeric|) */
    int64_t checked;     /* gradient elements compared */
    char msg[512];       /* empty when the case passed */
} optest_result;

/* grad mode: finite differences on CPU */
void optest_grad(const op_case *c, optest_result *r);
/* parity mode: the same case on CUDA and CPU, forward and backward; returns 77 when
 * this build or machine has no CUDA device */
int optest_parity(const op_case *c, double tol, optest_result *r);

/* Every family's table ends with a zero entry; optest.c lists the tables. */
extern const op_case optest_core[];
extern const op_case optest_nn[];
extern const op_case optest_model[];
extern const op_case optest_shape[];
extern const op_case optest_scan[];
extern const op_case optest_concept[];
extern const op_case optest_ctc[];
/* Cases too big for the finite-difference check: in the table for CUDA/CPU parity, skipped by grad mode. */
extern const op_case optest_scan_parity[];
int optest_parity_only(const op_case *c);

int optest_count(void);
const op_case *optest_case(int i);
#endif
