/* Image decoding (libjpeg-turbo, libpng) into 8-bit HWC pixels, and resizing. */
#ifndef IMB_IMAGE_H
#define IMB_IMAGE_H
#include <stddef.h>
#include <stdint.h>

typedef struct imb_image {
    int h, w, c;     /* c = 1 (grayscale) or 3 (RGB) */
    uint8_t *px;     /* h*w*c bytes, row-major HWC, malloc'd */
} imb_image;

/* Decodes JPEG or PNG by content (magic bytes), whatever the file is named; grayscale
 * stays 1 channel, CMYK/YCCK JPEG and palette/16-bit/alpha PNG become RGB (alpha dropped).
 * Truncated or corrupt data -> -1 with "<path>: <what>" in err. */
int imb_image_decode(const uint8_t *buf, size_t n, const char *path, imb_image *out, char *err, size_t errn);
int imb_image_load(const char *path, imb_image *out, char *err, size_t errn);
void imb_image_free(imb_image *im);
/* Bilinear resize (antialiased when shrinking) into a new image. */
int imb_image_resize(const imb_image *in, int h, int w, imb_image *out);
/* PNG / JPEG writers, for synth data and tests */
int imb_image_write_png(const char *path, const imb_image *im, char *err, size_t errn);
int imb_image_write_jpeg(const char *path, const imb_image *im, int quality, char *err, size_t errn);

/* Decoders refuse images larger than this (a corrupt header must not make us allocate
 * gigabytes); the largest ImageNet image has about 1/20 of it. */
#define IMB_IMAGE_MAX_PIXELS (1L << 28)
/* Allocates im->px for h x w x c zeroed bytes; -1 when out of memory or the size is invalid. */
int imb_image_alloc(imb_image *im, int h, int w, int c);
/* Writes an RGB image as a CMYK (YCCK, Adobe-inverted) JPEG, the kind a few ImageNet files
 * are; for synth data and tests of the CMYK path. */
int imb_image_write_jpeg_cmyk(const char *path, const imb_image *im, int quality, char *err, size_t errn);
#endif
