/* Synthetic MNIST in the original IDX files: 10 classes of 28x28 gray shapes, shuffled. */
#include "fileio.h"
#include "rng.h"
#include "synth/layouts.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static int write_split(const char *root, const char *prefix, int per_class, uint64_t seed, uint64_t base, char *err,
                       size_t errn) {
    enum { H = 28, W = 28, NCLS = 10 };
    int n = per_class * NCLS;
    uint8_t *img = malloc(16 + (size_t)n * H * W), *lab = malloc(8 + (size_t)n);
    char name[64];
    int rc = 0;
    if (!img || !lab) rc = imb_errf(err, errn, "%s: out of memory", root);
    if (rc == 0) {
        put_be32(img, 0x00000803u), put_be32(img + 4, (uint32_t)n), put_be32(img + 8, H), put_be32(img + 12, W);
        put_be32(lab, 0x00000801u), put_be32(lab + 4, (uint32_t)n);
        /* labels 0..9 repeated, then a Fisher-Yates shuffle: real MNIST is not sorted */
        for (int i = 0; i < n; i++) lab[8 + i] = (uint8_t)(i % NCLS);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)imb_rng_below(seed, base + 77, (uint64_t)i, (uint32_t)(i + 1));
            uint8_t t = lab[8 + i];
            lab[8 + i] = lab[8 + j], lab[8 + j] = t;
        }
    }
    for (int i = 0; i < n && rc == 0; i++) {
        imb_image im;
        if (imb_synth_image(lab[8 + i], H, W, 1, seed, base + (uint64_t)i, &im) != 0) {
            rc = imb_errf(err, errn, "%s: out of memory", root);
            break;
        }
        memcpy(img + 16 + (size_t)i * H * W, im.px, H * W);
        imb_image_free(&im);
    }
    for (int f = 0; f < 2 && rc == 0; f++) {
        snprintf(name, sizeof name, f ? "%s-labels-idx1-ubyte" : "%s-images-idx3-ubyte", prefix);
        char *path = imb_path_join(root, name);
        if (!path) rc = imb_errf(err, errn, "%s: out of memory", root);
        else rc = f ? imb_file_write(path, lab, 8 + (size_t)n, err, errn)
                    : imb_file_write(path, img, 16 + (size_t)n * H * W, err, errn);
        free(path);
    }
    free(img);
    free(lab);
    return rc;
}

int imb_synth_write_mnist_idx(const char *root, int per_class_train, int per_class_val, uint64_t seed, char *err,
                              size_t errn) {
    if (write_split(root, "train", per_class_train, seed, 4000000u, err, errn) != 0) return -1;
    return write_split(root, "t10k", per_class_val, seed, 5000000u, err, errn);
}
