// Device memory for the CUDA backend: cudaMalloc/cudaMemset/cudaMemcpy with checked errors.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdint.h>

__global__ static void fill32_kernel(uint32_t *p, uint32_t v, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) p[i] = v;
}

extern "C" {
int imb_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return 0; }
    return n;
}

int imb_cuda_alloc(void **p, size_t bytes, char *err, size_t errn) {
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        if (err) snprintf(err, errn, "cudaMalloc(%zu bytes): %s", bytes, cudaGetErrorString(e));
        *p = NULL;
        return -1;
    }
    return 0;
}

void imb_cuda_free(void *p) { cudaFree(p); }

int imb_cuda_zero(void *p, size_t bytes) { return cudaMemset(p, 0, bytes) == cudaSuccess ? 0 : -1; }

int imb_cuda_fill32(void *p, uint32_t v, size_t n) {
    if (n == 0) return 0;
    fill32_kernel<<<(unsigned)((n + 255) / 256), 256>>>((uint32_t *)p, v, n);
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

int imb_cuda_copy(void *dst, const void *src, size_t bytes, int kind) {
    cudaMemcpyKind k = kind == 0 ? cudaMemcpyHostToDevice : kind == 1 ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
    return cudaMemcpy(dst, src, bytes, k) == cudaSuccess ? 0 : -1;
}
}
