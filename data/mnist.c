/* MNIST IDX reader: {train,t10k}-{images-idx3,labels-idx1}-ubyte into in-memory 1-channel images. */
#include "samples.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* <root>/<prefix>-<kind>-ubyte, or the <prefix>-<kind with '.' for the last '-'> spelling
 * some mirrors use (train-images.idx3-ubyte). */
static char *idx_path(const char *root, const char *prefix, const char *kind, const char *alt) {
    char name[64];
    snprintf(name, sizeof name, "%s-%s-ubyte", prefix, kind);
    char *p = imb_path_join(root, name);
    if (!p || imb_is_file(p)) return p;
    snprintf(name, sizeof name, "%s-%s-ubyte", prefix, alt);
    char *q = imb_path_join(root, name);
    if (q && imb_is_file(q)) {
        free(p);
        return q;
    }
    free(q);
    return p;   /* neither exists: report the canonical name */
}

/* Reads an IDX file and checks magic and size; *dims gets the big-endian dimensions. */
static int read_idx(const char *path, uint32_t magic, int ndims, uint32_t *dims, uint8_t **buf, size_t *n,
                    char *err, size_t errn) {
    const char *what = ndims == 3 ? "images" : "labels";
    if (imb_file_read(path, buf, n, err, errn) != 0) return -1;
    size_t head = 4 + 4 * (size_t)ndims;
    int rc = 0;
    if (*n < head) {
        rc = imb_errf(err, errn, "%s: truncated header: %zu bytes, an IDX %s header needs %zu", path, *n, what, head);
    } else if (be32(*buf) != magic) {
        rc = imb_errf(err, errn, "%s: bad magic 0x%08X, expected 0x%08X (IDX %s)", path, be32(*buf), magic, what);
    } else {
        uint64_t items = 1;
        for (int i = 0; i < ndims; i++) items *= dims[i] = be32(*buf + 4 + 4 * i);
        if (ndims == 3 && (dims[1] == 0 || dims[2] == 0 || (uint64_t)dims[1] * dims[2] > IMB_IMAGE_MAX_PIXELS))
            rc = imb_errf(err, errn, "%s: image size %ux%u out of range", path, dims[1], dims[2]);
        else if (dims[0] > 0x7FFFFFFF)
            rc = imb_errf(err, errn, "%s: header says %u %s, more than this reader handles", path, dims[0], what);
        else if (*n - head != items) {
            uint64_t per = ndims == 3 ? (uint64_t)dims[1] * dims[2] : 1;
            if (*n - head < items)
                rc = imb_errf(err, errn, "%s: header says %u %s, file holds %llu (truncated)", path, dims[0], what,
                              (unsigned long long)((*n - head) / per));
            else
                rc = imb_errf(err, errn, "%s: header says %u %s, file has %llu bytes more", path, dims[0], what,
                              (unsigned long long)(*n - head - items));
        }
    }
    if (rc != 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

int imb_read_mnist_idx(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn) {
    imb_sample_builder b;
    imb_samples_begin(&b, out);
    if (!root || !split) return imb_errf(err, errn, "%s: no root or split given", root ? root : "(null)");
    const char *prefix = !strcmp(split, "train") ? "train"
                         : !strcmp(split, "val") || !strcmp(split, "test") || !strcmp(split, "t10k") ? "t10k"
                                                                                                       : NULL;
    if (!prefix) return imb_errf(err, errn, "%s: unknown MNIST split '%s' (train, or val/test = t10k)", root, split);
    if (!imb_is_dir(root)) return imb_errf(err, errn, "%s: dataset root folder not found", root);
    char *ipath = idx_path(root, prefix, "images-idx3", "images.idx3");
    char *lpath = idx_path(root, prefix, "labels-idx1", "labels.idx1");
    uint8_t *ibuf = NULL, *lbuf = NULL;
    size_t in = 0, ln = 0;
    uint32_t idims[3], ldims[1];
    imb_strlist names = {0};
    int rc = 0;
    if (!ipath || !lpath) rc = imb_errf(err, errn, "%s: out of memory", root);
    if (rc == 0) rc = read_idx(ipath, 0x00000803u, 3, idims, &ibuf, &in, err, errn);
    if (rc == 0) rc = read_idx(lpath, 0x00000801u, 1, ldims, &lbuf, &ln, err, errn);
    if (rc == 0 && idims[0] != ldims[0])
        rc = imb_errf(err, errn, "%s: %u labels but %s holds %u images", lpath, ldims[0], ipath, idims[0]);
    if (rc == 0 && idims[0] == 0) rc = imb_errf(err, errn, "%s: empty split: 0 images", ipath);
    int count = rc == 0 ? (int)idims[0] : 0, h = (int)idims[1], w = (int)idims[2];
    for (int i = 0; rc == 0 && i < count; i++) {
        uint8_t lab = lbuf[8 + i];
        if (lab > 9) {
            rc = imb_errf(err, errn, "%s: label %d of item %d is not a digit 0..9", lpath, lab, i);
            break;
        }
        imb_image im;
        if (imb_image_alloc(&im, h, w, 1) != 0) {
            rc = imb_errf(err, errn, "%s: out of memory", ipath);
            break;
        }
        memcpy(im.px, ibuf + 16 + (size_t)i * h * w, (size_t)h * w);
        if (imb_samples_add(&b, NULL, &im, lab) != 0) {
            imb_image_free(&im);
            rc = imb_errf(err, errn, "%s: out of memory", ipath);
        }
    }
    for (int d = 0; rc == 0 && d < 10; d++) {
        char nm[2] = {(char)('0' + d), 0};
        if (imb_strlist_push(&names, nm) != 0) rc = imb_errf(err, errn, "%s: out of memory", root);
    }
    free(ibuf);
    free(lbuf);
    free(ipath);
    free(lpath);
    if (rc != 0) {
        imb_strlist_free(&names);
        return imb_samples_fail(&b);
    }
    imb_samples_set_classes(&b, &names);
    return 0;
}
