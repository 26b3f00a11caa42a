/* Device-neutral memory: the CPU side, forwarding to kernels/cuda/mem.cu on CUDA. */
#include "config.h"
#include "mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int imb_have_cuda(void) {
#ifdef IMB_HAVE_CUDA
    return imb_cuda_device_count() > 0;
#else
    return 0;
#endif
}

int imb_mem_alloc(imb_device dev, void **p, size_t bytes, char *err, size_t errn) {
    *p = NULL;
    if (bytes == 0) bytes = 1;
    if (dev == IMB_CUDA) {
#ifdef IMB_HAVE_CUDA
        return imb_cuda_alloc(p, bytes, err, errn);
#else
        if (err) snprintf(err, errn, "this build has no CUDA backend (reconfigure with nvcc on PATH or --with-cuda=DIR)");
        return -1;
#endif
    }
    size_t rounded = (bytes + 255) & ~(size_t)255;
    *p = aligned_alloc(256, rounded);
    if (!*p) {
        if (err) snprintf(err, errn, "out of host memory allocating %zu bytes", bytes);
        return -1;
    }
    return 0;
}

void imb_mem_free(imb_device dev, void *p) {
    if (!p) return;
#ifdef IMB_HAVE_CUDA
    if (dev == IMB_CUDA) { imb_cuda_free(p); return; }
#endif
    (void)dev;
    free(p);
}

int imb_mem_zero(imb_device dev, void *p, size_t bytes) {
#ifdef IMB_HAVE_CUDA
    if (dev == IMB_CUDA) return imb_cuda_zero(p, bytes);
#endif
    (void)dev;
    memset(p, 0, bytes);
    return 0;
}

int imb_mem_fill32(imb_device dev, void *p, uint32_t pattern, size_t n32) {
#ifdef IMB_HAVE_CUDA
    if (dev == IMB_CUDA) return imb_cuda_fill32(p, pattern, n32);
#endif
    (void)dev;
    uint32_t *q = p;
    for (size_t i = 0; i < n32; i++) q[i] = pattern;
    return 0;
}

int imb_mem_copy(imb_device dst_dev, void *dst, imb_device src_dev, const void *src, size_t bytes) {
    if (bytes == 0) return 0;
    if (dst_dev == IMB_CPU && src_dev == IMB_CPU) {
        memmove(dst, src, bytes);
        return 0;
    }
#ifdef IMB_HAVE_CUDA
    int kind = dst_dev == IMB_CUDA ? (src_dev == IMB_CUDA ? 2 : 0) : 1;
    return imb_cuda_copy(dst, src, bytes, kind);
#else
    return -1;
#endif
}
