/* Device-neutral memory: allocate, fill, copy on the CPU or a CUDA device. */
#ifndef IMB_MEM_H
#define IMB_MEM_H
#include <stddef.h>
#include "tensor.h"

/* All return 0 on success; on failure write a message into err (may be NULL) and return -1. */
int imb_mem_alloc(imb_device dev, void **p, size_t bytes, char *err, size_t errn);
void imb_mem_free(imb_device dev, void *p);
int imb_mem_zero(imb_device dev, void *p, size_t bytes);
/* fill with a repeated 32-bit pattern (n32 words) */
int imb_mem_fill32(imb_device dev, void *p, uint32_t pattern, size_t n32);
int imb_mem_copy(imb_device dst_dev, void *dst, imb_device src_dev, const void *src, size_t bytes);
int imb_have_cuda(void);   /* 1 if this build has the CUDA backend and a device is visible */

#ifdef IMB_HAVE_CUDA
int imb_cuda_alloc(void **p, size_t bytes, char *err, size_t errn);
void imb_cuda_free(void *p);
int imb_cuda_zero(void *p, size_t bytes);
int imb_cuda_fill32(void *p, uint32_t pattern, size_t n32);
/* kind: 0 h2d, 1 d2h, 2 d2d */
int imb_cuda_copy(void *dst, const void *src, size_t bytes, int kind);
int imb_cuda_device_count(void);
/* Page-locked host memory: copies from and to it are DMA transfers that do not wait. */
int imb_cuda_host_alloc(void **p, size_t bytes, char *err, size_t errn);
void imb_cuda_host_free(void *p);
/* imb_cuda_copy without the wait: the host side must be pinned and left alone until the
 * stream has run the copy. */
int imb_cuda_copy_async(void *dst, const void *src, size_t bytes, int kind);
/* Waits for everything queued on the backend stream. */
int imb_cuda_sync(void);
#endif
#endif
