/* imb_tensor helpers: sizes, names, shape printing. */
#include "tensor.h"
#include <stdio.h>
#include <string.h>

size_t imb_dtype_size(imb_dtype dt) { return dt == IMB_BF16 ? 2 : 4; }

const char *imb_dtype_name(imb_dtype dt) {
    switch (dt) {
    case IMB_F32: return "f32";
    case IMB_BF16: return "bf16";
    case IMB_I32: return "i32";
    }
    return "?";
}

const char *imb_device_name(imb_device d) { return d == IMB_CUDA ? "cuda" : "cpu"; }

int64_t imb_dims(const imb_tensor *t, int from, int to) {
    int64_t n = 1;
    for (int i = from; i < to; i++) n *= t->shape[i];
    return n;
}

int64_t imb_numel(const imb_tensor *t) { return imb_dims(t, 0, t->ndim); }

size_t imb_nbytes(const imb_tensor *t) { return (size_t)imb_numel(t) * imb_dtype_size(t->dtype); }

const char *imb_shape_str(const imb_tensor *t, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

int imb_same_shape(const imb_tensor *a, const imb_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}
