// The CUDA side of kernels/graph.c: stream capture on the backend stream, graph instantiation
// and launch, and the node count of a probe's tripwire capture.
#include "backend.cuh"
#include <stdio.h>
#include <vector>
extern "C" {
#include "../graph.h"
}

static void say(char *err, size_t errn, const char *call, cudaError_t e) {
    if (err && errn) snprintf(err, errn, "%s: %s (%s)", call, cudaGetErrorName(e), cudaGetErrorString(e));
}

extern "C" {
int imb_cuda_capture_begin(char *err, size_t errn) {
    // global mode: an unsafe call from any thread (a cudaMalloc, a synchronisation) fails and
    // breaks the capture instead of silently escaping it
    cudaError_t e = cudaStreamBeginCapture(imb_cuda_stream(), cudaStreamCaptureModeGlobal);
    if (e == cudaSuccess) return 0;
    cudaGetLastError();
    say(err, errn, "cudaStreamBeginCapture", e);
    return -1;
}

int imb_cuda_capture_end(void **graph, char *err, size_t errn) {
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(imb_cuda_stream(), &g);
    if (e == cudaSuccess && g) {
        *graph = g;
        return 0;
    }
    cudaGetLastError();
    if (g) cudaGraphDestroy(g);
    *graph = NULL;
    say(err, errn, "cudaStreamEndCapture", e == cudaSuccess ? cudaErrorStreamCaptureInvalidated : e);
    return -1;
}

int imb_cuda_capture_broken(void) {
    cudaStreamCaptureStatus s = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(imb_cuda_stream(), &s) != cudaSuccess) {
        cudaGetLastError();
        return 1;
    }
    return s == cudaStreamCaptureStatusInvalidated;
}

int imb_cuda_graph_instantiate(void *graph, void **exec, char *err, size_t errn) {
    cudaGraphExec_t x = NULL;
    cudaError_t e = cudaGraphInstantiate(&x, (cudaGraph_t)graph, 0);
    if (e != cudaSuccess) {
        cudaGetLastError();
        say(err, errn, "cudaGraphInstantiate", e);
        *exec = NULL;
        return -1;
    }
    // the first launch then does not pay for moving the graph to the device
    e = cudaGraphUpload(x, imb_cuda_stream());
    if (e != cudaSuccess) {
        cudaGetLastError();
        cudaGraphExecDestroy(x);
        say(err, errn, "cudaGraphUpload", e);
        *exec = NULL;
        return -1;
    }
    *exec = x;
    return 0;
}

int imb_cuda_graph_launch(void *exec, char *err, size_t errn) {
    cudaError_t e = cudaGraphLaunch((cudaGraphExec_t)exec, imb_cuda_stream());
    if (e == cudaSuccess) return 0;
    imb_cuda_ok(e, "cudaGraphLaunch", __func__, __FILE__, __LINE__);
    say(err, errn, "cudaGraphLaunch", e);
    return -1;
}

static const char *node_kind(cudaGraphNodeType t) {
    switch (t) {
    case cudaGraphNodeTypeKernel: return "kernel";
    case cudaGraphNodeTypeMemcpy: return "memcpy";
    case cudaGraphNodeTypeMemset: return "memset";
    case cudaGraphNodeTypeHost: return "host function";
    case cudaGraphNodeTypeEventRecord: return "event record";
    case cudaGraphNodeTypeWaitEvent: return "event wait";
    case cudaGraphNodeTypeMemAlloc: return "allocation";
    case cudaGraphNodeTypeMemFree: return "free";
    default: return "node";
    }
}

int64_t imb_cuda_graph_nodes(void *graph, char *name, size_t namen, uintptr_t *dst) {
    if (dst) *dst = 0;
    size_t n = 0;
    if (cudaGraphGetNodes((cudaGraph_t)graph, NULL, &n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    if (name && namen) snprintf(name, namen, "?");
    if (n && name && namen) {
        std::vector<cudaGraphNode_t> nodes(n);
        cudaGraphNodeType t;
        if (cudaGraphGetNodes((cudaGraph_t)graph, nodes.data(), &n) == cudaSuccess && n &&
            cudaGraphNodeGetType(nodes[0], &t) == cudaSuccess) {
            snprintf(name, namen, "a %s", node_kind(t));
            cudaMemsetParams mp;
            if (t == cudaGraphNodeTypeMemset && cudaGraphMemsetNodeGetParams(nodes[0], &mp) == cudaSuccess) {
                snprintf(name, namen, "a memset of %zu x %u bytes", mp.width * mp.height, mp.elementSize);
                if (dst) *dst = (uintptr_t)mp.dst;
            }
            cudaKernelNodeParams p;
            const char *fn = NULL;
            if (t == cudaGraphNodeTypeKernel && cudaGraphKernelNodeGetParams(nodes[0], &p) == cudaSuccess &&
                cudaFuncGetName(&fn, p.func) == cudaSuccess && fn)
                snprintf(name, namen, "kernel %s", fn);
        }
        cudaGetLastError();
    }
    return (int64_t)n;
}

void imb_cuda_graph_destroy(void *graph) {
    if (graph) cudaGraphDestroy((cudaGraph_t)graph);
}

void imb_cuda_graph_exec_destroy(void *exec) {
    if (exec) cudaGraphExecDestroy((cudaGraphExec_t)exec);
}

void imb_cuda_clear_last(void) { cudaGetLastError(); }
}
