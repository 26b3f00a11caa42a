/* JPEG decoding and encoding through the TurboJPEG API (libjpeg-turbo 2.x tj* functions). */
#include "fileio.h"
#include "image_codec.h"
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* Adobe-inverted CMYK (what Photoshop writes and libjpeg hands back untouched) to RGB.
 * Pillow inverts every 4-component JPEG ("CMYK;I", assume Adobe conventions) and then
 * converts with R = nk - nk*C/255 (nk = 255 - K); in the raw inverted values c, k that is
 * R = k - (255 - c) * k / 255, i.e. about c * k / 255, the formula of libjpeg-turbo's
 * cmyk_to_rgb. We use Pillow's integer rounding so torchvision-style pipelines and ours
 * agree on the few CMYK files in ImageNet. */
static uint8_t inv_cmyk_channel(int c, int k) {
    int t = (255 - c) * k + 128;
    int v = k - ((t + (t >> 8)) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void cmyk_to_rgb(uint8_t *px, size_t npix) {
    for (size_t i = 0; i < npix; i++) {   /* in place: pixel i's 3 bytes never pass pixel i's 4 */
        const uint8_t *s = px + 4 * i;
        uint8_t c = s[0], m = s[1], y = s[2], k = s[3];
        px[3 * i + 0] = inv_cmyk_channel(c, k);
        px[3 * i + 1] = inv_cmyk_channel(m, k);
        px[3 * i + 2] = inv_cmyk_channel(y, k);
    }
}

/* The one libjpeg warning we accept: junk between the last entropy-coded segment and the
 * end-of-image marker. It is only reported once every scan has been read, so the image is
 * complete (a handful of real ImageNet files have it; Pillow accepts them). Every other
 * warning -- "Premature end of JPEG file", "Corrupt JPEG data: premature end of data
 * segment", bad Huffman codes -- means missing or damaged pixels and is an error. */
static int benign_warning(const char *msg) {
    return msg && strstr(msg, "extraneous bytes before marker 0xd9") != NULL;
}

int imb_jpeg_decode(const uint8_t *buf, size_t n, const char *path, imb_image *out, char *err, size_t errn) {
    memset(out, 0, sizeof *out);
    tjhandle tj = tjInitDecompress();
    if (!tj) return imb_errf(err, errn, "%s: cannot start the JPEG decoder: %s", path, tjGetErrorStr2(NULL));
    int w = 0, h = 0, subsamp = 0, cs = 0, rc = -1;
    if (tjDecompressHeader3(tj, buf, (unsigned long)n, &w, &h, &subsamp, &cs) != 0) {
        imb_errf(err, errn, "%s: corrupt JPEG header: %s", path, tjGetErrorStr2(tj));
        goto done;
    }
    if (w <= 0 || h <= 0 || (long)w * h > IMB_IMAGE_MAX_PIXELS) {
        imb_errf(err, errn, "%s: JPEG size %dx%d out of range", path, w, h);
        goto done;
    }
    int pf = TJPF_RGB, c = 3;
    if (cs == TJCS_GRAY) pf = TJPF_GRAY, c = 1;
    else if (cs == TJCS_CMYK || cs == TJCS_YCCK) pf = TJPF_CMYK, c = 4;
    uint8_t *px = malloc((size_t)w * h * c);
    if (!px) {
        imb_errf(err, errn, "%s: out of memory for a %dx%d image", path, w, h);
        goto done;
    }
    /* LIMITSCANS guards against progressive files with absurd scan counts (a known DoS) */
    int flags = TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS | TJFLAG_STOPONWARNING;
    int st = tjDecompress2(tj, buf, (unsigned long)n, px, w, 0, h, pf, flags);
    if (st != 0 && tjGetErrorCode(tj) == TJERR_WARNING && benign_warning(tjGetErrorStr2(tj))) {
        /* the first warning was the benign one, so nothing can follow it: decode again
         * without stopping, and accept when that same warning is all there is */
        st = tjDecompress2(tj, buf, (unsigned long)n, px, w, 0, h, pf, flags & ~TJFLAG_STOPONWARNING);
        if (st != 0 && tjGetErrorCode(tj) == TJERR_WARNING && benign_warning(tjGetErrorStr2(tj))) st = 0;
    }
    if (st != 0) {
        imb_errf(err, errn, "%s: corrupt or truncated JPEG: %s", path, tjGetErrorStr2(tj));
        free(px);
        goto done;
    }
    if (c == 4) {
        cmyk_to_rgb(px, (size_t)w * h);
        c = 3;
        uint8_t *shrunk = realloc(px, (size_t)w * h * 3);
        if (shrunk) px = shrunk;
    }
    out->h = h, out->w = w, out->c = c, out->px = px;
    rc = 0;
done:
    tjDestroy(tj);
    return rc;
}

/* Encodes pixels in pixel format pf and writes the file; shared by the RGB/gray and CMYK writers. */
static int encode_write(const char *path, const uint8_t *px, int w, int h, int pf, int quality, char *err, size_t errn) {
    if (quality < 1 || quality > 100) return imb_errf(err, errn, "%s: JPEG quality %d not in 1..100", path, quality);
    tjhandle tj = tjInitCompress();
    if (!tj) return imb_errf(err, errn, "%s: cannot start the JPEG encoder: %s", path, tjGetErrorStr2(NULL));
    unsigned char *jpg = NULL;
    unsigned long size = 0;
    int samp = pf == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_420;   /* 4:2:0 like Pillow's default */
    int rc = 0;
    if (tjCompress2(tj, px, w, 0, h, pf, &jpg, &size, samp, quality, TJFLAG_ACCURATEDCT) != 0)
        rc = imb_errf(err, errn, "%s: JPEG encoding failed: %s", path, tjGetErrorStr2(tj));
    else
        rc = imb_file_write(path, jpg, size, err, errn);
    tjFree(jpg);
    tjDestroy(tj);
    return rc;
}

int imb_image_write_jpeg(const char *path, const imb_image *im, int quality, char *err, size_t errn) {
    if (!im || !im->px || im->h <= 0 || im->w <= 0 || (im->c != 1 && im->c != 3))
        return imb_errf(err, errn, "%s: cannot write an image with c != 1 or 3 or no pixels", path);
    return encode_write(path, im->px, im->w, im->h, im->c == 1 ? TJPF_GRAY : TJPF_RGB, quality, err, errn);
}

int imb_image_write_jpeg_cmyk(const char *path, const imb_image *im, int quality, char *err, size_t errn) {
    if (!im || !im->px || im->h <= 0 || im->w <= 0 || im->c != 3)
        return imb_errf(err, errn, "%s: the CMYK writer takes an RGB image", path);
    size_t npix = (size_t)im->w * im->h;
    uint8_t *cmyk = malloc(npix * 4);
    if (!cmyk) return imb_errf(err, errn, "%s: out of memory", path);
    /* Inverse of the decoder's conversion, in inverted (Adobe) values: k = max(r, g, b)
     * and c = r * 255 / k, so that c * k / 255 gives r back. */
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *s = im->px + 3 * i;
        int k = s[0] > s[1] ? s[0] : s[1];
        if (s[2] > k) k = s[2];
        for (int j = 0; j < 3; j++) cmyk[4 * i + j] = (uint8_t)(k ? (s[j] * 255 + k / 2) / k : 255);
        cmyk[4 * i + 3] = (uint8_t)k;
    }
    int rc = encode_write(path, cmyk, im->w, im->h, TJPF_CMYK, quality, err, errn);
    free(cmyk);
    return rc;
}
