// CUDA shape kernels: the strided block copy (concat/split/slice/copy) and the 4-D permute.
#include "backend.cuh"
extern "C" {
#include "../shape.h"
}

__global__ static void block_copy(float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows,
                                  int64_t n, int acc) {
    IMB_FOR(i, rows * n) {
        int64_t r = i / n, j = i - r * n;
        float v = src[r * src_ld + j];
        float *d = dst + r * dst_ld + j;
        *d = acc ? *d + v : v;
    }
}

// the permute geometry (imb_permute_geom), passed by value
struct perm_geom {
    int64_t os[4], st[4];
};

// The output is walked in order; the forward reads the x element of each output element,
// the backward adds into it. A permutation is a bijection, so those writes never collide.
template <int BWD> __global__ static void permute_kernel(float *dst, const float *src, perm_geom g, int64_t n) {
    IMB_FOR(i, n) {
        int64_t d = i % g.os[3], r = i / g.os[3];
        int64_t c = r % g.os[2];
        r /= g.os[2];
        int64_t b = r % g.os[1], a = r / g.os[1];
        int64_t xi = a * g.st[0] + b * g.st[1] + c * g.st[2] + d * g.st[3];
        if (BWD) dst[xi] += src[i];
        else dst[i] = src[xi];
    }
}

static bool geometry(int ndim, const int64_t *xshape, const int *perm, perm_geom *g, int64_t *n) {
    imb_permute_geom(ndim, xshape, perm, g->os, g->st);
    *n = g->os[0] * g->os[1] * g->os[2] * g->os[3];
    return *n > 0;
}

extern "C" {
void imb_block_copy_cuda(float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t n,
                         int acc) {
    if (rows <= 0 || n <= 0) return;
    // one contiguous run: the copy engine does it
    if (!acc && (rows == 1 || (dst_ld == n && src_ld == n))) {
        IMB_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(float) * (size_t)(rows * n), cudaMemcpyDeviceToDevice,
                                       imb_cuda_stream()));
        return;
    }
    IMB_LAUNCH(block_copy, imb_blocks(rows * n, IMB_THREADS), IMB_THREADS, 0, dst, dst_ld, src, src_ld, rows, n, acc);
}

void imb_permute_fwd_cuda(float *out, const float *x, int ndim, const int64_t *xshape, const int *perm) {
    perm_geom g;
    int64_t n;
    if (geometry(ndim, xshape, perm, &g, &n))
        IMB_LAUNCH(permute_kernel<0>, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, out, x, g, n);
}

void imb_permute_bwd_cuda(float *dx, const float *dout, int ndim, const int64_t *xshape, const int *perm) {
    perm_geom g;
    int64_t n;
    if (geometry(ndim, xshape, perm, &g, &n))
        IMB_LAUNCH(permute_kernel<1>, imb_blocks(n, IMB_THREADS), IMB_THREADS, 0, dx, dout, g, n);
}
}
