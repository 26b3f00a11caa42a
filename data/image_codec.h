/* Codec entry points behind imb_image_decode (internal to data/). */
#ifndef IMB_IMAGE_CODEC_H
#define IMB_IMAGE_CODEC_H
#include "image.h"

int imb_jpeg_decode(const uint8_t *buf, size_t n, const char *path, imb_image *out, char *err, size_t errn);
int imb_png_decode(const uint8_t *buf, size_t n, const char *path, imb_image *out, char *err, size_t errn);
#endif
