/* AdamW over the single parameter buffer, global-norm clipping, cosine schedule. */
#ifndef IMB_OPTIM_H
#define IMB_OPTIM_H
#include "ctx.h"
#include "step.h"

typedef struct imb_adamw {
    float beta1, beta2, eps, weight_decay;
    int64_t t;   /* steps taken (bias correction) */
} imb_adamw;

/* PyTorch AdamW defaults: betas (0.9, 0.999), eps 1e-8, weight decay as given */
imb_adamw imb_adamw_default(float weight_decay);
/* One update of every parameter with lr; decoupled decay only where the parameter was
 * declared with decay=1; frozen parameters untouched. imb_adamw_prepare + imb_step_upload +
 * imb_adamw_apply, for code outside CUDA graphs. */
int imb_adamw_step(imb_ctx *ctx, imb_adamw *opt, float lr);
/* The two halves of a step, for a step run by kernels/graph.h. prepare (host only, before
 * the step): counts the step and writes lr and the bias corrections 1 - beta^t into the step
 * block's host values (ctx->st->in_host), which the step's upload hands the device. apply
 * (inside the step): the update, reading them from the device block, skipped entirely when
 * the gradient clip of this step found a non-finite norm. */
int imb_adamw_prepare(imb_ctx *ctx, imb_adamw *opt, float lr);
int imb_adamw_apply(imb_ctx *ctx, const imb_adamw *opt);
/* Global L2 norm of all gradients, on the device: its square goes to the step block
 * (sumsq); when max_norm > 0 and the norm exceeds it, every gradient is scaled by
 * max_norm / (norm + 1e-6) (PyTorch clip_grad_norm_); a non-finite norm sets the block's skip
 * flag (AdamW then leaves this step out). No host synchronisation. 0 or -1. */
int imb_grad_clip_async(imb_ctx *ctx, float max_norm);
/* imb_grad_clip_async, then waits and returns the norm before clipping (NaN/Inf propagate so
 * the caller can stop), or -1 on error. */
double imb_grad_clip(imb_ctx *ctx, float max_norm);
/* Linear warmup from 0 over warmup steps, then cosine from base_lr down to min_lr at total. */
float imb_lr_cosine(int64_t step, int64_t total, int64_t warmup, float base_lr, float min_lr);

/* Raw kernels over n floats. AdamW reads lr, bc1, bc2 from in and does nothing when
 * out->skip is set; sumsq writes the sum of squares (in double) to *out; clip_factor turns
 * out->sumsq into out->clip_scale and out->skip; scale_by multiplies x by *factor unless it is 1. */
void imb_adamw_cpu(float *p, const float *g, float *m, float *v, const float *decay_mask, const float *update_mask,
                   int64_t n, float b1, float b2, float eps, float wd, const imb_step_in *in, const imb_step_out *out);
void imb_sumsq_cpu(double *out, const float *x, int64_t n);
void imb_clip_factor_cpu(imb_step_out *o, float max_norm);
void imb_scale_by_cpu(float *x, int64_t n, const float *factor);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/optim.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_adamw_cuda(float *p, const float *g, float *m, float *v, const float *decay_mask, const float *update_mask,
                    int64_t n, float b1, float b2, float eps, float wd, const imb_step_in *in, const imb_step_out *out);
void imb_sumsq_cuda(double *out, const float *x, int64_t n);
void imb_clip_factor_cuda(imb_step_out *o, float max_norm);
void imb_scale_by_cuda(float *x, int64_t n, const float *factor);
#endif
#endif
