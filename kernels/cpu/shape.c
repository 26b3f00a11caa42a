/* CPU reference shape kernels: the strided block copy and the 4-D permute. */
#include "../shape.h"
#include <string.h>

void imb_block_copy_cpu(float *dst, int64_t dst_ld, const float *src, int64_t src_ld, int64_t rows, int64_t n,
                        int acc) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        float *d = dst + r * dst_ld;
        const float *s = src + r * src_ld;
        if (acc)
            for (int64_t j = 0; j < n; j++) d[j] += s[j];
        else
            memcpy(d, s, sizeof *d * (size_t)n);
    }
}

void imb_permute_geom(int ndim, const int64_t *xshape, const int *perm, int64_t os[4], int64_t st[4]) {
    int64_t xst[IMB_MAX_DIMS], s = 1;
    for (int d = ndim - 1; d >= 0; d--) { xst[d] = s; s *= xshape[d]; }
    for (int i = 0; i < 4; i++) { os[i] = 1; st[i] = 0; }
    int lead = 4 - ndim;
    for (int i = 0; i < ndim; i++) { os[lead + i] = xshape[perm[i]]; st[lead + i] = xst[perm[i]]; }
}

void imb_permute_fwd_cpu(float *out, const float *x, int ndim, const int64_t *xshape, const int *perm) {
    int64_t os[4], st[4];
    imb_permute_geom(ndim, xshape, perm, os, st);
#pragma omp parallel for collapse(2)
    for (int64_t a = 0; a < os[0]; a++)
        for (int64_t b = 0; b < os[1]; b++) {
            float *o = out + (a * os[1] + b) * os[2] * os[3];
            const float *xb = x + a * st[0] + b * st[1];
            for (int64_t c = 0; c < os[2]; c++)
                for (int64_t d = 0; d < os[3]; d++) *o++ = xb[c * st[2] + d * st[3]];
        }
}

/* A permutation maps each x element to exactly one output element, so the parallel
 * writes into dx never collide. */
void imb_permute_bwd_cpu(float *dx, const float *dout, int ndim, const int64_t *xshape, const int *perm) {
    int64_t os[4], st[4];
    imb_permute_geom(ndim, xshape, perm, os, st);
#pragma omp parallel for collapse(2)
    for (int64_t a = 0; a < os[0]; a++)
        for (int64_t b = 0; b < os[1]; b++) {
            const float *o = dout + (a * os[1] + b) * os[2] * os[3];
            float *xb = dx + a * st[0] + b * st[1];
            for (int64_t c = 0; c < os[2]; c++)
                for (int64_t d = 0; d < os[3]; d++) xb[c * st[2] + d * st[3]] += *o++;
        }
}
