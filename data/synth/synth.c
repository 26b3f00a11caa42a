/* Synthetic ImageNet, Food-101 and Food-11 trees (imb_synth_write); MNIST IDX is in idx.c. */
#include "fileio.h"
#include "rng.h"
#include "synth/layouts.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FMT_JPEG, FMT_PNG, FMT_GRAY_JPEG, FMT_CMYK_JPEG };
enum { JPEG_QUALITY = 90 };

/* Draws and writes one image; sizes are drawn from the image's own RNG stream when lo < hi. */
static int put_image(const char *dir, const char *name, int cls, int lo, int hi, int fmt, uint64_t seed,
                     uint64_t index, char *err, size_t errn) {
    char *path = imb_path_join(dir, name);
    if (!path) return imb_errf(err, errn, "%s: out of memory", dir);
    int h = lo, w = lo;
    if (hi > lo) {
        h = lo + (int)imb_rng_below(seed, ~index, 0, (uint32_t)(hi - lo));
        w = lo + (int)imb_rng_below(seed, ~index, 1, (uint32_t)(hi - lo));
    }
    imb_image im;
    int rc;
    if (imb_synth_image(cls, h, w, fmt == FMT_GRAY_JPEG ? 1 : 3, seed, index, &im) != 0)
        rc = imb_errf(err, errn, "%s: cannot draw a %dx%d image", path, h, w);
    else if (fmt == FMT_PNG)
        rc = imb_image_write_png(path, &im, err, errn);
    else if (fmt == FMT_CMYK_JPEG)
        rc = imb_image_write_jpeg_cmyk(path, &im, JPEG_QUALITY, err, errn);
    else
        rc = imb_image_write_jpeg(path, &im, JPEG_QUALITY, err, errn);
    imb_image_free(&im);
    free(path);
    return rc;
}

static int put_text(const char *root, const char *name, const char *text, char *err, size_t errn) {
    char *path = imb_path_join(root, name);
    if (!path) return imb_errf(err, errn, "%s: out of memory", root);
    int rc = imb_file_write(path, text, strlen(text), err, errn);
    free(path);
    return rc;
}

/* A growable text buffer for the label files. */
typedef struct text {
    char *s;
    size_t n, cap;
} text;

static int text_add(text *t, const char *line) {
    size_t len = strlen(line);
    if (t->n + len + 1 > t->cap) {
        size_t cap = (t->n + len + 1) * 2;
        char *s = realloc(t->s, cap);
        if (!s) return -1;
        t->s = s;
        t->cap = cap;
    }
    memcpy(t->s + t->n, line, len + 1);
    t->n += len;
    return 0;
}

static int mkdir_in(const char *root, const char *sub, char *err, size_t errn) {
    char *p = imb_path_join(root, sub);
    int rc = p ? imb_mkdirs(p, err, errn) : imb_errf(err, errn, "%s: out of memory", root);
    free(p);
    return rc;
}

/* ---------------------------------------------------------------- ImageNet */

/* the first six ImageNet-1k wnids, already in sorted order, so class k draws shape k */
static const char *const wnids[] = {"n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331"};
enum { IN_CLASSES = 6, IN_MIN = 32, IN_MAX = 48 };

/* train image i of class k: a mix of formats and extension spellings, with the odd files
 * of the real dataset in the first class */
static int train_format(int k, int i, const char **ext) {
    if (k == 0 && i < 3) {
        *ext = "JPEG";
        return i == 0 ? FMT_PNG : i == 1 ? FMT_GRAY_JPEG : FMT_CMYK_JPEG;
    }
    static const char *const exts[4] = {"JPEG", "JPEG", "png", "jpeg"};
    *ext = exts[i % 4];
    return i % 4 == 2 ? FMT_PNG : FMT_JPEG;
}

static int synth_imagenet(const char *root, int ntrain, int nval, int flat, uint64_t seed, char *err, size_t errn) {
    char name[128], line[256];
    text map = {0}, labels = {0};
    int rc = 0;
    for (int k = 0; k < IN_CLASSES && rc == 0; k++) {
        snprintf(line, sizeof line, "%s synthetic shape %d\n", wnids[k], k);
        if (text_add(&map, line) != 0) rc = imb_errf(err, errn, "%s: out of memory", root);
    }
    if (rc == 0) rc = put_text(root, "LOC_synset_mapping.txt", map.s, err, errn);
    if (rc == 0 && flat == 1) rc = text_add(&labels, "ImageId,PredictionString\n");
    for (int k = 0; k < IN_CLASSES && rc == 0; k++) {
        snprintf(name, sizeof name, "train/%s", wnids[k]);
        char *dir = imb_path_join(root, name);
        if (!dir || imb_mkdirs(dir, err, errn) != 0) rc = dir ? -1 : imb_errf(err, errn, "%s: out of memory", root);
        for (int i = 0; i < ntrain && rc == 0; i++) {
            const char *ext;
            int fmt = train_format(k, i, &ext);
            snprintf(name, sizeof name, "%s_%d.%s", wnids[k], i, ext);
            rc = put_image(dir, name, k, IN_MIN, IN_MAX, fmt, seed, (uint64_t)i, err, errn);
        }
        free(dir);
    }
    if (rc == 0) rc = mkdir_in(root, "val", err, errn);
    /* val ids interleave the classes, as the real val set does */
    for (int v = IN_CLASSES * nval; v > 0 && rc == 0; v--) {
        int k = (v - 1) % IN_CLASSES;
        snprintf(name, sizeof name, "val/%s", wnids[k]);
        char *dir = imb_path_join(root, flat ? "val" : name);
        if (!dir || (!flat && imb_mkdirs(dir, err, errn) != 0)) rc = dir ? -1 : imb_errf(err, errn, "%s: oom", root);
        snprintf(name, sizeof name, "ILSVRC2012_val_%08d.JPEG", v);
        if (rc == 0) rc = put_image(dir, name, k, IN_MIN, IN_MAX, FMT_JPEG, seed, 1000000u + (uint64_t)v, err, errn);
        free(dir);
        /* written in descending id order: readers must match by name, not by position */
        if (flat == 1) snprintf(line, sizeof line, "ILSVRC2012_val_%08d,%s 1 2 30 30 %s 3 4 20 20 \n", v, wnids[k], wnids[k]);
        else snprintf(line, sizeof line, "ILSVRC2012_val_%08d.JPEG %d\n", v, k);
        if (rc == 0 && flat && text_add(&labels, line) != 0) rc = imb_errf(err, errn, "%s: out of memory", root);
    }
    if (rc == 0 && flat) rc = put_text(root, flat == 1 ? "LOC_val_solution.csv" : "val.txt", labels.s ? labels.s : "", err, errn);
    free(map.s);
    free(labels.s);
    return rc;
}

/* ---------------------------------------------------------------- Food-101 */

static const char *const food101_classes[] = {"apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare"};
static const char *const food101_labels[] = {"Apple pie", "Baby back ribs", "Baklava", "Beef carpaccio", "Beef tartare"};
enum { F101_CLASSES = 5 };

static int synth_food101(const char *root, int ntrain, int ntest, uint64_t seed, char *err, size_t errn) {
    text classes = {0}, labels = {0}, split[2] = {{0}};
    char name[128], line[128];
    int rc = mkdir_in(root, "meta", err, errn);
    for (int k = 0; k < F101_CLASSES && rc == 0; k++) {
        snprintf(line, sizeof line, "%s\n", food101_classes[k]);
        if (text_add(&classes, line) != 0) rc = imb_errf(err, errn, "%s: out of memory", root);
        snprintf(line, sizeof line, "%s\n", food101_labels[k]);
        if (rc == 0 && text_add(&labels, line) != 0) rc = imb_errf(err, errn, "%s: out of memory", root);
        snprintf(name, sizeof name, "images/%s", food101_classes[k]);
        char *dir = imb_path_join(root, name);
        if (rc == 0 && (!dir || imb_mkdirs(dir, err, errn) != 0)) rc = dir ? -1 : imb_errf(err, errn, "%s: oom", root);
        for (int i = 0; i < ntrain + ntest && rc == 0; i++) {
            int id = (k + 1) * 100000 + 37 * i + 11;   /* ids look like the real 6-7 digit ones */
            snprintf(name, sizeof name, "%d.jpg", id);
            rc = put_image(dir, name, k, IN_MIN, IN_MAX, FMT_JPEG, seed, 2000000u + (uint64_t)i, err, errn);
            snprintf(line, sizeof line, "%s/%d\n", food101_classes[k], id);
            if (rc == 0 && text_add(&split[i >= ntrain], line) != 0) rc = imb_errf(err, errn, "%s: oom", root);
        }
        free(dir);
    }
    if (rc == 0) rc = put_text(root, "meta/classes.txt", classes.s, err, errn);
    if (rc == 0) rc = put_text(root, "meta/labels.txt", labels.s, err, errn);
    if (rc == 0) rc = put_text(root, "meta/train.txt", split[0].s ? split[0].s : "", err, errn);
    if (rc == 0) rc = put_text(root, "meta/test.txt", split[1].s ? split[1].s : "", err, errn);
    free(classes.s);
    free(labels.s);
    free(split[0].s);
    free(split[1].s);
    return rc;
}

/* ---------------------------------------------------------------- Food-11 */

static int synth_food11(const char *root, int ntrain, int nval, uint64_t seed, char *err, size_t errn) {
    static const char *const folders[3] = {"training", "validation", "evaluation"};
    int rc = 0;
    for (int s = 0; s < 3 && rc == 0; s++) {
        char *dir = imb_path_join(root, folders[s]);
        if (!dir || imb_mkdirs(dir, err, errn) != 0) rc = dir ? -1 : imb_errf(err, errn, "%s: out of memory", root);
        int per = s == 0 ? ntrain : nval;
        for (int k = 0; k < 11 && rc == 0; k++)
            for (int i = 0; i < per && rc == 0; i++) {
                char name[64];
                snprintf(name, sizeof name, "%d_%d.jpg", k, i);
                rc = put_image(dir, name, k, 32, 32, FMT_JPEG, seed, 3000000u + 100000u * (uint64_t)s + (uint64_t)i,
                               err, errn);
            }
        free(dir);
    }
    return rc;
}

int imb_synth_write(const char *layout, const char *root, int per_class_train, int per_class_val, uint64_t seed,
                    char *err, size_t errn) {
    if (!layout || !root) return imb_errf(err, errn, "synth: no layout or root given");
    if (per_class_train < 0 || per_class_val < 0 || per_class_train > 100000 || per_class_val > 100000)
        return imb_errf(err, errn, "%s: synth: per-class counts %d/%d out of range", root, per_class_train, per_class_val);
    static const char *const layouts[] = {"imagenet", "imagenet-csv", "imagenet-txt", "food101", "food11", "mnist-idx",
                                          "librispeech", "agnews", "imdb"};
    int which = -1;
    for (int i = 0; i < (int)(sizeof layouts / sizeof *layouts); i++)
        if (!strcmp(layout, layouts[i])) which = i;
    if (which < 0)
        return imb_errf(err, errn, "%s: unknown synth layout '%s' (imagenet, imagenet-csv, imagenet-txt, food101, "
                        "food11, mnist-idx, librispeech, agnews, imdb)", root, layout);
    if (imb_mkdirs(root, err, errn) != 0) return -1;
    int tr = per_class_train, va = per_class_val;
    switch (which) {
    case 0: case 1: case 2: return synth_imagenet(root, tr, va, which, seed, err, errn);
    case 3: return synth_food101(root, tr, va, seed, err, errn);
    case 4: return synth_food11(root, tr, va, seed, err, errn);
    case 6: return imb_synth_write_librispeech(root, tr, va, seed, err, errn);
    case 7: return imb_synth_write_agnews(root, tr, va, seed, err, errn);
    case 8: return imb_synth_write_imdb(root, tr, va, seed, err, errn);
    default: return imb_synth_write_mnist_idx(root, tr, va, seed, err, errn);
    }
}
