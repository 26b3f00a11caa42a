/* Image decode by content (magic bytes), file loading and the imb_image life cycle. */
#include "fileio.h"
#include "image_codec.h"
#include <stdlib.h>
#include <string.h>

int imb_image_decode(const uint8_t *buf, size_t n, const char *path, imb_image *out, char *err, size_t errn) {
    memset(out, 0, sizeof *out);
    if (!path) path = "(memory)";
    if (!buf || n == 0) return imb_errf(err, errn, "%s: empty file", path);
    /* by content, never by name: ImageNet has PNG and CMYK files named .JPEG */
    static const uint8_t jpeg_magic[3] = {0xFF, 0xD8, 0xFF};
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (n >= 3 && memcmp(buf, jpeg_magic, 3) == 0) return imb_jpeg_decode(buf, n, path, out, err, errn);
    if (n >= 4 && memcmp(buf, png_magic, 4) == 0) {
        if (n < 8 || memcmp(buf, png_magic, 8) != 0)
            return imb_errf(err, errn, "%s: corrupt PNG signature (file damaged by a text-mode transfer?)", path);
        return imb_png_decode(buf, n, path, out, err, errn);
    }
    return imb_errf(err, errn, "%s: not a JPEG or PNG (first bytes %02X %02X %02X %02X)", path, buf[0],
                    n > 1 ? buf[1] : 0, n > 2 ? buf[2] : 0, n > 3 ? buf[3] : 0);
}

int imb_image_load(const char *path, imb_image *out, char *err, size_t errn) {
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t n;
    if (imb_file_read(path, &buf, &n, err, errn) != 0) return -1;
    int rc = imb_image_decode(buf, n, path, out, err, errn);
    free(buf);
    return rc;
}

void imb_image_free(imb_image *im) {
    if (!im) return;
    free(im->px);
    memset(im, 0, sizeof *im);
}

int imb_image_alloc(imb_image *im, int h, int w, int c) {
    memset(im, 0, sizeof *im);
    if (h <= 0 || w <= 0 || c <= 0 || c > 4 || (long)h * w > IMB_IMAGE_MAX_PIXELS) return -1;
    im->px = calloc((size_t)h * w * c, 1);
    if (!im->px) return -1;
    im->h = h, im->w = w, im->c = c;
    return 0;
}
