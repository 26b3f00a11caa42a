/* Per-sample image transforms to normalised float CHW: timm's train (RandomResizedCrop + flip) and eval (resize + centre crop). */
#ifndef IMB_TRANSFORM_H
#define IMB_TRANSFORM_H
#include <stddef.h>
#include <stdint.h>
#include "image.h"
#include "resample.h"

typedef struct imb_transform_opts {
    int size;            /* output is channels x size x size */
    int channels;        /* 1 or 3: gray -> 3 replicates, RGB -> 1 is PIL 'L' luma (ITU-R 601) */
    int train;           /* 1: train path, 0: eval path */
    int augment;         /* train only; 0 = no crop or flip, just resize to size x size (MNIST) */
    double scale[2];     /* RandomResizedCrop area fraction range, (0.08, 1.0) */
    double ratio[2];     /* aspect (w/h) range, drawn log-uniform, (3/4, 4/3) */
    double hflip;        /* horizontal flip probability, 0.5 */
    double crop_pct;     /* eval: shorter side resized to floor(size / crop_pct), in (0, 1] */
    float mean[3], std[3];   /* on [0, 1] pixel values; channel 0 is used when channels = 1 */
} imb_transform_opts;

/* timm defaults: ImageNet mean/std, 3 channels, augment on, the ranges above. */
void imb_transform_defaults(imb_transform_opts *o, int size, int train);
/* Returns 0, or -1 with "transform: <field>: <what>" in err. */
int imb_transform_check(const imb_transform_opts *o, char *err, size_t errn);
/* channels * size * size */
size_t imb_transform_out_len(const imb_transform_opts *o);

/* The train crop box and flip drawn for sample `index` of `epoch` from an h x w image: the
 * torchvision RandomResizedCrop.get_params procedure (10 tries, then a centre crop clamped
 * to the ratio range). Every draw is a counter-based function of (seed, epoch, index), so
 * the same sample gets the same crop in the same epoch whichever thread handles it. */
void imb_transform_crop(const imb_transform_opts *o, int h, int w, uint64_t seed, uint64_t epoch,
                        uint64_t index, imb_box *box, int *flip);

/* Scratch memory for one thread; zero-initialise, free with imb_transform_work_free. */
typedef struct imb_transform_work {
    imb_resample_work rs;
    uint8_t *luma;
    size_t luma_cap;
    float *hwc;
    size_t hwc_cap;
} imb_transform_work;
void imb_transform_work_free(imb_transform_work *w);

/* Transforms src into out [channels, size, size]: (pixel / 255 - mean) / std. Training
 * (o->train) with augment: crop box from imb_transform_crop resampled to size x size, then
 * flipped; without augment: whole image resampled to size x size. Eval: shorter side to
 * floor(size / crop_pct), longer side floor(that * long / short), then the centre
 * size x size window (offsets rounded half to even, like Python's round). Returns 0, or -1
 * with a message on a bad image or no memory. */
int imb_transform_apply(const imb_transform_opts *o, const imb_image *src, uint64_t seed, uint64_t epoch,
                        uint64_t index, float *out, imb_transform_work *work, char *err, size_t errn);
#endif
