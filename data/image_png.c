/* PNG decoding and encoding through libpng, with setjmp error recovery. */
#include "fileio.h"
#include "image_codec.h"
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Everything the decoder touches after setjmp lives here, outside the function that calls
 * setjmp, so nothing is left indeterminate by the longjmp. */
typedef struct png_state {
    const uint8_t *buf;
    size_t n, pos;
    char msg[200];
    uint8_t *px;
    png_bytep *rows;
} png_state;

static void on_error(png_structp png, png_const_charp msg) {
    png_state *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* libpng warns on harmless things (the "known incorrect sRGB profile" of many web PNGs);
 * they are not errors and must not spam stderr from loader threads. */
static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void read_mem(png_structp png, png_bytep dst, png_size_t len) {
    png_state *s = png_get_io_ptr(png);
    if (len > s->n - s->pos) png_error(png, "unexpected end of file");
    memcpy(dst, s->buf + s->pos, len);
    s->pos += len;
}

/* Returns 0, or -1 with s->msg set; cleans up libpng itself but leaves s->px/rows to the caller. */
static int decode(png_state *s, imb_image *out) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        snprintf(s->msg, sizeof s->msg, "out of memory");
        png_destroy_read_struct(&png, NULL, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, s, read_mem);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if (w == 0 || h == 0 || (long)w * h > IMB_IMAGE_MAX_PIXELS) png_error(png, "image size out of range");
    /* To 8-bit gray or RGB, as Pillow's convert("RGB"/"L") does (checked against Pillow 13):
     * palette expands to RGB, alpha (and tRNS transparency) is dropped, not composited,
     * 16-bit keeps the high byte. One deliberate difference: Pillow opens 16-bit gray as
     * 32-bit "I" and convert("L") clips it at 255 (an almost white image); we keep the high
     * byte there too, as Pillow itself does for 16-bit RGB. */
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    if (ctype & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    if ((c != 1 && c != 3) || png_get_rowbytes(png, info) != (size_t)w * c)
        png_error(png, "unsupported pixel layout after conversion");
    s->px = malloc((size_t)w * h * c);
    s->rows = malloc(sizeof *s->rows * h);
    if (!s->px || !s->rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) s->rows[y] = s->px + (size_t)y * w * c;
    png_read_image(png, s->rows);
    /* read up to IEND too: a file cut after its pixel data is still a truncated file */
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    out->h = (int)h, out->w = (int)w, out->c = c;
    return 0;
}

int imb_png_decode(const uint8_t *buf, size_t n, const char *path, imb_image *out, char *err, size_t errn) {
    memset(out, 0, sizeof *out);
    png_state s = {.buf = buf, .n = n};
    int rc = decode(&s, out);
    free(s.rows);
    if (rc != 0) {
        free(s.px);
        memset(out, 0, sizeof *out);
        return imb_errf(err, errn, "%s: corrupt or truncated PNG: %s", path, s.msg);
    }
    out->px = s.px;
    return 0;
}

typedef struct png_wstate {
    FILE *f;
    png_bytep *rows;
    char msg[200];
} png_wstate;

static int encode(png_wstate *s, const imb_image *im) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        snprintf(s->msg, sizeof s->msg, "out of memory");
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, s->f);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8,
                 im->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, s->rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int imb_image_write_png(const char *path, const imb_image *im, char *err, size_t errn) {
    if (!im || !im->px || im->h <= 0 || im->w <= 0 || (im->c != 1 && im->c != 3))
        return imb_errf(err, errn, "%s: cannot write an image with c != 1 or 3 or no pixels", path);
    png_wstate s = {0};
    s.rows = malloc(sizeof *s.rows * (size_t)im->h);
    if (!s.rows) return imb_errf(err, errn, "%s: out of memory", path);
    for (int y = 0; y < im->h; y++) s.rows[y] = im->px + (size_t)y * im->w * im->c;
    s.f = fopen(path, "wb");
    if (!s.f) {
        int e = errno;
        free(s.rows);
        return imb_errf(err, errn, "%s: cannot create: %s", path, strerror(e));
    }
    int rc = encode(&s, im);
    if (fclose(s.f) != 0 && rc == 0) {
        rc = -1;
        snprintf(s.msg, sizeof s.msg, "write failed");
    }
    free(s.rows);
    if (rc != 0) {
        unlink(path);   /* never leave a half-written image behind for a reader to trip on */
        return imb_errf(err, errn, "%s: PNG encoding failed: %s", path, s.msg);
    }
    return 0;
}
