/* Separable bilinear resampling of an 8-bit HWC box, antialiased when shrinking (PIL's filter). */
#ifndef IMB_RESAMPLE_H
#define IMB_RESAMPLE_H
#include <stddef.h>
#include <stdint.h>
#include "image.h"

/* A rectangle of pixels: top row y, left column x, h rows, w columns. */
typedef struct imb_box {
    int y, x, h, w;
} imb_box;

/* Scratch memory reused across calls (one per thread); zero-initialise, free when done. */
typedef struct imb_resample_work {
    void *buf;
    size_t cap;
} imb_resample_work;
void imb_resample_work_free(imb_resample_work *w);

/* Resamples box of src (sh x sw x c, HWC uint8) to a virtual out_h x out_w image and writes
 * its window win (rows win.y .. win.y+win.h, columns likewise) to out as float HWC in
 * [0, 255], win.h * win.w * c values. Only pixels inside box contribute (as if the box had
 * been cropped first, like torchvision's resized_crop). The filter is PIL's bilinear: a
 * triangle of support 1 stretched by the shrink factor, so shrinking averages every source
 * pixel (antialias) and enlarging is plain bilinear with half-pixel centres; an unchanged
 * size is an exact copy. Weights and sums are float, so values differ from PIL's 8-bit
 * output by its rounding. Returns 0, or -1 on a box or window out of range or no memory. */
int imb_resample(const uint8_t *src, int sh, int sw, int c, imb_box box, int out_h, int out_w,
                 imb_box win, float *out, imb_resample_work *work);

#endif
