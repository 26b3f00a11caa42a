/* imb_tensor: a contiguous row-major tensor of up to 4 dims, plus its gradient buffer. */
#ifndef IMB_TENSOR_H
#define IMB_TENSOR_H
#include <stddef.h>
#include <stdint.h>

typedef enum { IMB_F32 = 0, IMB_BF16 = 1, IMB_I32 = 2 } imb_dtype;
typedef enum { IMB_CPU = 0, IMB_CUDA = 1 } imb_device;

#define IMB_MAX_DIMS 4

typedef struct imb_tensor {
    imb_dtype dtype;
    int ndim;
    int64_t shape[IMB_MAX_DIMS];
    void *data;
    void *grad;          /* same shape, fp32; NULL when no gradient flows into this tensor */
    imb_device device;
    const char *name;    /* static or arena-owned string, may be NULL */
} imb_tensor;

size_t imb_dtype_size(imb_dtype dt);
const char *imb_dtype_name(imb_dtype dt);
const char *imb_device_name(imb_device d);
int64_t imb_numel(const imb_tensor *t);
size_t imb_nbytes(const imb_tensor *t);
/* product of shape[from..to) */
int64_t imb_dims(const imb_tensor *t, int from, int to);
/* "[2, 3, 4]" into buf; returns buf */
const char *imb_shape_str(const imb_tensor *t, char *buf, size_t n);
int imb_same_shape(const imb_tensor *a, const imb_tensor *b);

static inline float *imb_f32(const imb_tensor *t) { return (float *)t->data; }
static inline float *imb_gradf(const imb_tensor *t) { return (float *)t->grad; }
static inline int32_t *imb_i32(const imb_tensor *t) { return (int32_t *)t->data; }

#endif
