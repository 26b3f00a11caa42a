// Device memory for the CUDA backend: allocation, fill and copies, queued on the backend stream.
#include "backend.cuh"
#include <stdio.h>
extern "C" {
#include "../mem.h"
}

__global__ static void fill32_kernel(uint32_t *p, uint32_t v, int64_t n) {
    IMB_FOR(i, n) p[i] = v;
}

extern "C" {
int imb_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();   // "no device" is an answer here, not an error for the next op
        return 0;
    }
    return n;
}

int imb_cuda_alloc(void **p, size_t bytes, char *err, size_t errn) {
    *p = NULL;
    if (imb_cuda_init(err, errn)) return -1;   // the first use may be an allocation
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();   // reported through err; the sticky error stays for kernel failures
        if (err) snprintf(err, errn, "cudaMalloc(%zu bytes): %s", bytes, cudaGetErrorString(e));
        *p = NULL;
        return -1;
    }
    return 0;
}

// cudaFree waits for the device, so nothing queued can still be using p.
void imb_cuda_free(void *p) { IMB_CUDA_CHECK(cudaFree(p)); }

int imb_cuda_zero(void *p, size_t bytes) {
    return IMB_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, imb_cuda_stream())) ? 0 : -1;
}

int imb_cuda_fill32(void *p, uint32_t v, size_t n) {
    if (n == 0) return 0;
    unsigned blocks = imb_blocks((int64_t)n, IMB_THREADS);
    fill32_kernel<<<blocks, IMB_THREADS, 0, imb_cuda_stream()>>>((uint32_t *)p, v, (int64_t)n);
    return IMB_CUDA_CHECK(cudaGetLastError()) ? 0 : -1;
}

// Copies touching host memory wait for the stream: the caller may read or free its buffer
// as soon as this returns (and the host side is ordinary pageable memory).
int imb_cuda_copy(void *dst, const void *src, size_t bytes, int kind) {
    cudaMemcpyKind k = kind == 0 ? cudaMemcpyHostToDevice : kind == 1 ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
    cudaStream_t s = imb_cuda_stream();
    if (!IMB_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, s))) return -1;
    if (kind != 2 && !IMB_CUDA_CHECK(cudaStreamSynchronize(s))) return -1;
    return 0;
}

int imb_cuda_host_alloc(void **p, size_t bytes, char *err, size_t errn) {
    *p = NULL;
    if (imb_cuda_init(err, errn)) return -1;
    cudaError_t e = cudaHostAlloc(p, bytes ? bytes : 1, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (err) snprintf(err, errn, "cudaHostAlloc(%zu bytes): %s", bytes, cudaGetErrorString(e));
        *p = NULL;
        return -1;
    }
    return 0;
}

// cudaFreeHost waits for the device: no queued copy can still be reading p.
void imb_cuda_host_free(void *p) {
    if (p) IMB_CUDA_CHECK(cudaFreeHost(p));
}

int imb_cuda_copy_async(void *dst, const void *src, size_t bytes, int kind) {
    if (bytes == 0) return 0;
    cudaMemcpyKind k = kind == 0 ? cudaMemcpyHostToDevice : kind == 1 ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
    return IMB_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, imb_cuda_stream())) ? 0 : -1;
}

int imb_cuda_sync(void) { return IMB_CUDA_CHECK(cudaStreamSynchronize(imb_cuda_stream())) ? 0 : -1; }
}
