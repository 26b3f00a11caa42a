/* Shape ops: reshape (a view sharing data and gradient), permute, concat, split, slice, copy. */
#ifndef IMB_SHAPE_H
#define IMB_SHAPE_H
#include "ctx.h"

/* a view with a new shape of the same numel; no copy, gradient shared */
imb_tensor *imb_reshape(imb_ctx *ctx, imb_tensor *x, int ndim, const int64_t *shape);
/* out.shape[i] = x.shape[perm[i]] (copy) */
imb_tensor *imb_permute(imb_ctx *ctx, imb_tensor *x, const int *perm);
/* tensors equal except along dim (negative counts from the end) */
imb_tensor *imb_concat(imb_ctx *ctx, imb_tensor *const *xs, int n, int dim);
/* splits x along dim into n parts of the given sizes (summing to x.shape[dim]); writes out[n];
 * returns 0 or -1 */
int imb_split(imb_ctx *ctx, imb_tensor *x, int dim, int n, const int64_t *sizes, imb_tensor **out);
/* x.narrow(dim, start, len) as a copy */
imb_tensor *imb_slice(imb_ctx *ctx, imb_tensor *x, int dim, int64_t start, int64_t len);
imb_tensor *imb_copy(imb_ctx *ctx, imb_tensor *x);

/* Raw kernels. Concat, split, slice and copy are all one strided block copy: rows blocks of
 * n contiguous floats, src block r at src + r * src_ld, dst block r at dst + r * dst_ld;
 * acc=0 overwrites dst, acc=1 adds into it (the backward). */
void imb_block_copy_cpu(float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t n,
                        int acc);
/* x [xshape] (ndim <= 4), out [xshape[perm[0]], ...]; backward adds dout into dx. */
/* Both backends' permute geometry: the output is walked in order as 4 dims of sizes os, and x
 * is addressed through st, the stride of the x dim each output dim came from; fewer than 4
 * dims are padded with leading size-1 dims so one loop nest serves every rank. */
void imb_permute_geom(int ndim, const int64_t *xshape, const int *perm, int64_t os[4], int64_t st[4]);
void imb_permute_fwd_cpu(float *out, const float *x, int ndim, const int64_t *xshape, const int *perm);
void imb_permute_bwd_cpu(float *dx, const float *dout, int ndim, const int64_t *xshape, const int *perm);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/shape.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). */
void imb_block_copy_cuda(float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t n,
                         int acc);
void imb_permute_fwd_cuda(float *out, const float *x, int ndim, const int64_t *xshape, const int *perm);
void imb_permute_bwd_cuda(float *dx, const float *dout, int ndim, const int64_t *xshape, const int *perm);
#endif
#endif
