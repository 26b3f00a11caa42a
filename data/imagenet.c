/* ImageNet reader: class folders (torchvision ImageFolder order) and flat val folders with a label file. */
#include "samples.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Class order is the strcmp-sorted folder names of <root>/train, as torchvision's
 * find_classes sorts them, so a val split reuses train's indices even when it lacks or
 * reorders folders. Without a train folder: LOC_synset_mapping.txt (Kaggle's ImageNet),
 * else the split's own folders. */
static int read_synset_mapping(const char *path, imb_strlist *classes, char *err, size_t errn) {
    uint8_t *buf;
    size_t n;
    if (imb_file_read(path, &buf, &n, err, errn) != 0) return -1;
    char *cur = (char *)buf, *line;
    int lineno = 0;
    while ((line = imb_next_line(&cur)) != NULL) {
        lineno++;
        line = imb_trim(line);
        if (!*line) continue;
        line[strcspn(line, " \t")] = 0;   /* "n01440764 tench, Tinca tinca" -> the wnid */
        if (imb_strlist_push(classes, line) != 0) {
            free(buf);
            imb_strlist_free(classes);
            return imb_errf(err, errn, "%s: out of memory", path);
        }
    }
    free(buf);
    imb_strlist_sort(classes);
    for (int i = 1; i < classes->n; i++)
        if (strcmp(classes->s[i - 1], classes->s[i]) == 0) {
            imb_errf(err, errn, "%s: class '%s' listed twice", path, classes->s[i]);
            imb_strlist_free(classes);
            return -1;
        }
    if (classes->n == 0) return imb_errf(err, errn, "%s: no classes listed", path);
    return 0;
}

static int find_classes(const char *root, const char *split_dir, imb_strlist *classes, char *err, size_t errn) {
    char *train = imb_path_join(root, "train");
    char *mapping = imb_path_join(root, "LOC_synset_mapping.txt");
    int rc;
    if (!train || !mapping) rc = imb_errf(err, errn, "%s: out of memory", root);
    else if (imb_is_dir(train)) {
        rc = imb_dir_list(train, IMB_LIST_DIRS, classes, err, errn);
        if (rc == 0 && classes->n == 0) rc = imb_errf(err, errn, "%s: no class folders", train);
    } else if (imb_is_file(mapping))
        rc = read_synset_mapping(mapping, classes, err, errn);
    else
        rc = imb_dir_list(split_dir, IMB_LIST_DIRS, classes, err, errn);
    free(train);
    free(mapping);
    return rc;
}

/* <split_dir>/<class>/<image> for every class, in class order then file order. */
static int read_class_folders(const char *split_dir, const imb_strlist *folders, const imb_strlist *classes,
                              imb_sample_builder *b, char *err, size_t errn) {
    for (int i = 0; i < folders->n; i++)
        if (imb_strlist_find(classes, folders->s[i]) < 0)
            return imb_errf(err, errn, "%s/%s: class folder not in the train split (unknown wnid)", split_dir,
                            folders->s[i]);
    for (int c = 0; c < classes->n; c++) {
        /* a split that lacks a class would silently skew per-class metrics */
        if (imb_strlist_find(folders, classes->s[c]) < 0)
            return imb_errf(err, errn, "%s: class folder '%s' is missing (it is in the train split)", split_dir,
                            classes->s[c]);
        char *dir = imb_path_join(split_dir, classes->s[c]);
        imb_strlist files;
        if (!dir) return imb_errf(err, errn, "%s: out of memory", split_dir);
        if (imb_dir_list(dir, IMB_LIST_FILES, &files, err, errn) != 0) {
            free(dir);
            return -1;
        }
        int added = 0, rc = 0;
        for (int f = 0; f < files.n && rc == 0; f++) {
            if (!imb_has_image_ext(files.s[f])) continue;   /* torchvision skips other files too */
            char *p = imb_path_join(dir, files.s[f]);
            rc = p && imb_samples_add(b, p, NULL, c) == 0 ? 0 : imb_errf(err, errn, "%s: out of memory", dir);
            free(p);
            added++;
        }
        if (rc == 0 && added == 0) rc = imb_errf(err, errn, "%s: no images (.JPEG .jpg .jpeg .png)", dir);
        imb_strlist_free(&files);
        free(dir);
        if (rc != 0) return -1;
    }
    return 0;
}

/* One entry of a val label file, keyed by the image's file name without extension (the
 * Kaggle CSV has bare ImageIds; the text files have full names). */
typedef struct label_entry {
    char *key;
    int label, line, used;
} label_entry;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const label_entry *)a)->key, ((const label_entry *)b)->key);
}

static void strip_ext(char *name) {
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = 0;
}

/* Parses LOC_<split>_solution.csv ("ImageId,PredictionString", wnid = first token of the
 * prediction) or a "<file> <label>" text file, where label is a 0-based index into the
 * sorted classes (Caffe's val.txt) or a wnid. */
static int parse_labels(const char *path, int csv, const imb_strlist *classes, label_entry **out, int *nout,
                        char *err, size_t errn) {
    uint8_t *buf;
    size_t n;
    *out = NULL;
    *nout = 0;
    if (imb_file_read(path, &buf, &n, err, errn) != 0) return -1;
    char *cur = (char *)buf, *line;
    if (n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) cur += 3;   /* UTF-8 BOM from spreadsheet tools */
    label_entry *e = NULL;
    int ne = 0, cap = 0, lineno = 0, rc = 0, header = csv;
    while (rc == 0 && (line = imb_next_line(&cur)) != NULL) {
        lineno++;
        line = imb_trim(line);
        if (!*line) continue;
        char *key, *lab;
        if (csv) {
            if (header) {
                header = 0;
                if (strncmp(line, "ImageId,PredictionString", 24) != 0)
                    rc = imb_errf(err, errn, "%s:%d: header is not \"ImageId,PredictionString\"", path, lineno);
                continue;
            }
            char *comma = strchr(line, ',');
            if (!comma) {
                rc = imb_errf(err, errn, "%s:%d: expected \"ImageId,PredictionString\"", path, lineno);
                break;
            }
            *comma = 0;
            key = imb_trim(line);
            lab = imb_trim(comma + 1);
            lab[strcspn(lab, " \t")] = 0;
        } else {
            key = line;
            size_t k = strcspn(line, " \t,");
            if (!line[k]) {
                rc = imb_errf(err, errn, "%s:%d: expected \"<file> <label>\"", path, lineno);
                break;
            }
            line[k] = 0;
            lab = imb_trim(line + k + 1);
        }
        char *end;
        long v = strtol(lab, &end, 10);
        int label = -1;
        if (*lab && !*end && v >= 0 && v < classes->n) label = (int)v;
        else if (*lab && *end) label = imb_strlist_find(classes, lab);
        if (label < 0) {
            rc = imb_errf(err, errn, "%s:%d: label '%s' is not a class index 0..%d or a known wnid", path, lineno,
                          lab, classes->n - 1);
            break;
        }
        char *slash = strrchr(key, '/');   /* "val/ILSVRC2012_val_00000001.JPEG" -> the name */
        if (slash) key = slash + 1;
        if (!*key) {
            rc = imb_errf(err, errn, "%s:%d: empty image name", path, lineno);
            break;
        }
        if (!csv) strip_ext(key);   /* the CSV's ImageIds are bare already */
        if (ne == cap) {
            cap = cap ? 2 * cap : 1024;
            label_entry *ne2 = realloc(e, sizeof *e * (size_t)cap);
            if (!ne2) {
                rc = imb_errf(err, errn, "%s: out of memory", path);
                break;
            }
            e = ne2;
        }
        if (!(e[ne].key = imb_strdup(key))) {
            rc = imb_errf(err, errn, "%s: out of memory", path);
            break;
        }
        e[ne].label = label, e[ne].line = lineno, e[ne].used = 0;
        ne++;
    }
    free(buf);
    if (rc == 0 && ne == 0) rc = imb_errf(err, errn, "%s: no labels", path);
    if (rc == 0 && ne > 1) {
        qsort(e, (size_t)ne, sizeof *e, cmp_entry);
        for (int i = 1; i < ne && rc == 0; i++)
            if (strcmp(e[i - 1].key, e[i].key) == 0)
                rc = imb_errf(err, errn, "%s:%d: image '%s' labelled twice (also line %d)", path, e[i].line, e[i].key,
                              e[i - 1].line);
    }
    if (rc != 0) {
        for (int i = 0; i < ne; i++) free(e[i].key);
        free(e);
        return -1;
    }
    *out = e;
    *nout = ne;
    return 0;
}

/* The label files a flat split may come with, first found wins. */
static char *find_label_file(const char *root, const char *split, const char *split_dir, int *csv) {
    char name[3][256];
    snprintf(name[0], sizeof name[0], "LOC_%s_solution.csv", split);
    snprintf(name[1], sizeof name[1], "%s.txt", split);
    snprintf(name[2], sizeof name[2], "%s_labels.txt", split);
    const char *dirs[2] = {root, split_dir};
    for (int i = 0; i < 3; i++)
        for (int d = 0; d < 2; d++) {
            char *p = imb_path_join(dirs[d], name[i]);
            if (p && imb_is_file(p)) {
                *csv = i == 0;
                return p;
            }
            free(p);
        }
    return NULL;
}

static int read_flat(const char *root, const char *split, const char *split_dir, const imb_strlist *classes,
                     imb_sample_builder *b, char *err, size_t errn) {
    imb_strlist files;
    if (imb_dir_list(split_dir, IMB_LIST_FILES, &files, err, errn) != 0) return -1;
    int nimg = 0;
    for (int i = 0; i < files.n; i++) nimg += imb_has_image_ext(files.s[i]);
    if (nimg == 0) {
        imb_strlist_free(&files);
        return imb_errf(err, errn, "%s: empty split: no class folders and no images", split_dir);
    }
    int csv = 0;
    char *lf = find_label_file(root, split, split_dir, &csv);
    if (!lf) {
        imb_strlist_free(&files);
        return imb_errf(err, errn,
                        "%s: flat split folder without a label file (looked for LOC_%s_solution.csv, %s.txt, "
                        "%s_labels.txt in %s and in the split folder)",
                        split_dir, split, split, split, root);
    }
    label_entry *e;
    int ne, rc = parse_labels(lf, csv, classes, &e, &ne, err, errn);
    for (int i = 0; rc == 0 && i < files.n; i++) {
        if (!imb_has_image_ext(files.s[i])) continue;
        char *key = imb_strdup(files.s[i]);
        char *p = imb_path_join(split_dir, files.s[i]);
        if (!key || !p) {
            rc = imb_errf(err, errn, "%s: out of memory", split_dir);
        } else {
            strip_ext(key);
            label_entry probe = {.key = key};
            label_entry *hit = bsearch(&probe, e, (size_t)ne, sizeof *e, cmp_entry);
            if (!hit) rc = imb_errf(err, errn, "%s: no label in %s", p, lf);
            else if (hit->used) rc = imb_errf(err, errn, "%s: a second image named '%s' in the folder", p, key);
            else if (imb_samples_add(b, p, NULL, hit->label) != 0) rc = imb_errf(err, errn, "%s: out of memory", p);
            else hit->used = 1;
        }
        free(key);
        free(p);
    }
    /* a label for an image that is not there means a partial copy of the split */
    for (int i = 0; rc == 0 && i < ne; i++)
        if (!e[i].used) rc = imb_errf(err, errn, "%s:%d: image '%s' not found in %s", lf, e[i].line, e[i].key, split_dir);
    for (int i = 0; i < ne; i++) free(e[i].key);
    free(e);
    free(lf);
    imb_strlist_free(&files);
    return rc;
}

int imb_read_imagenet(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn) {
    imb_sample_builder b;
    imb_samples_begin(&b, out);
    if (!root || !split || !*split || strchr(split, '/'))
        return imb_errf(err, errn, "%s: bad split name '%s'", root ? root : "(null)", split ? split : "(null)");
    if (!imb_is_dir(root)) return imb_errf(err, errn, "%s: dataset root folder not found", root);
    char *split_dir = imb_path_join(root, split);
    if (!split_dir) return imb_errf(err, errn, "%s: out of memory", root);
    if (!imb_is_dir(split_dir)) {
        imb_errf(err, errn, "%s: split folder not found", split_dir);
        free(split_dir);
        return -1;
    }
    imb_strlist classes = {0}, folders = {0};
    int rc = find_classes(root, split_dir, &classes, err, errn);
    if (rc == 0) rc = imb_dir_list(split_dir, IMB_LIST_DIRS, &folders, err, errn);
    if (rc == 0) {
        if (folders.n > 0) rc = read_class_folders(split_dir, &folders, &classes, &b, err, errn);
        else if (classes.n > 0) rc = read_flat(root, split, split_dir, &classes, &b, err, errn);
        else
            rc = imb_errf(err, errn,
                          "%s: no class folders, and no %s/train or %s/LOC_synset_mapping.txt to name the classes",
                          split_dir, root, root);
    }
    imb_strlist_free(&folders);
    free(split_dir);
    if (rc != 0) {
        imb_strlist_free(&classes);
        return imb_samples_fail(&b);
    }
    imb_samples_set_classes(&b, &classes);
    return 0;
}
