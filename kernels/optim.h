/* AdamW over the single parameter buffer, global-norm clipping, cosine schedule. */
#ifndef IMB_OPTIM_H
#define IMB_OPTIM_H
#include "ctx.h"

typedef struct imb_adamw {
    float beta1, beta2, eps, weight_decay;
    int64_t t;   /* steps taken (bias correction) */
} imb_adamw;

/* PyTorch AdamW defaults: betas (0.9, 0.999), eps 1e-8, weight decay as given */
imb_adamw imb_adamw_default(float weight_decay);
/* One update of every parameter with lr; decoupled decay only where the parameter was
 * declared with decay=1; frozen parameters untouched. */
int imb_adamw_step(imb_ctx *ctx, imb_adamw *opt, float lr);
/* Global L2 norm of all gradients; when max_norm > 0 and the norm exceeds it, scales every
 * gradient by max_norm / (norm + 1e-6) (PyTorch clip_grad_norm_). Returns the norm before
 * clipping (NaN/Inf propagate so the caller can stop), or -1 on error. */
double imb_grad_clip(imb_ctx *ctx, float max_norm);
/* Linear warmup from 0 over warmup steps, then cosine from base_lr down to min_lr at total. */
float imb_lr_cosine(int64_t step, int64_t total, int64_t warmup, float base_lr, float min_lr);

/* Raw kernels over n floats. */
void imb_adamw_cpu(float *p, const float *g, float *m, float *v, const float *decay_mask, const float *update_mask,
                   int64_t n, float lr, float b1, float b2, float eps, float wd, float bc1, float bc2);
double imb_sumsq_cpu(const float *x, int64_t n);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/optim.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_adamw_cuda(float *p, const float *g, float *m, float *v, const float *decay_mask, const float *update_mask,
                    int64_t n, float lr, float b1, float b2, float eps, float wd, float bc1, float bc2);
double imb_sumsq_cuda(const float *x, int64_t n);
#endif
#endif
