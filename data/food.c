/* Food-101 (meta split files of "class/id" lines) and Food-11 (<cls>_<id>.jpg file names) readers. */
#include "samples.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- Food-101 */

/* meta/classes.txt, one name a line; its order is the label order (it is sorted in the
 * release, matching torchvision's sorted(train.json keys)). Returned sorted for lookup
 * together with the label of each sorted name. */
static int read_food101_classes(const char *path, imb_strlist *names, char *err, size_t errn) {
    uint8_t *buf;
    size_t n;
    if (imb_file_read(path, &buf, &n, err, errn) != 0) return -1;
    char *cur = (char *)buf, *line;
    int rc = 0;
    while (rc == 0 && (line = imb_next_line(&cur)) != NULL) {
        line = imb_trim(line);
        if (*line && imb_strlist_push(names, line) != 0) rc = imb_errf(err, errn, "%s: out of memory", path);
    }
    free(buf);
    if (rc == 0 && names->n == 0) rc = imb_errf(err, errn, "%s: no classes listed", path);
    for (int i = 0; rc == 0 && i < names->n; i++)
        for (int j = 0; rc == 0 && j < i; j++)
            if (strcmp(names->s[i], names->s[j]) == 0)
                rc = imb_errf(err, errn, "%s: class '%s' listed twice", path, names->s[i]);
    if (rc != 0) imb_strlist_free(names);
    return rc;
}

typedef struct name_index {
    const char *name;
    int label;
} name_index;

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const name_index *)a)->name, ((const name_index *)b)->name);
}

int imb_read_food101(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn) {
    imb_sample_builder b;
    imb_samples_begin(&b, out);
    if (!root || !split) return imb_errf(err, errn, "%s: no root or split given", root ? root : "(null)");
    /* Food-101 has no val split; evaluation code asks for "val" and gets the test list */
    const char *file = strcmp(split, "train") == 0 ? "meta/train.txt"
                       : strcmp(split, "test") == 0 || strcmp(split, "val") == 0 ? "meta/test.txt"
                                                                                 : NULL;
    if (!file) return imb_errf(err, errn, "%s: unknown Food-101 split '%s' (train, test or val = test)", root, split);
    if (!imb_is_dir(root)) return imb_errf(err, errn, "%s: dataset root folder not found", root);
    char *cls_path = imb_path_join(root, "meta/classes.txt");
    char *split_path = imb_path_join(root, file);
    char *img_dir = imb_path_join(root, "images");
    imb_strlist names = {0};
    name_index *idx = NULL;
    uint8_t *buf = NULL;
    size_t n;
    int rc = 0;
    if (!cls_path || !split_path || !img_dir) rc = imb_errf(err, errn, "%s: out of memory", root);
    if (rc == 0) rc = read_food101_classes(cls_path, &names, err, errn);
    if (rc == 0 && !(idx = malloc(sizeof *idx * (size_t)names.n))) rc = imb_errf(err, errn, "%s: out of memory", root);
    if (rc == 0) {
        for (int i = 0; i < names.n; i++) idx[i] = (name_index){names.s[i], i};
        qsort(idx, (size_t)names.n, sizeof *idx, cmp_name);
        rc = imb_file_read(split_path, &buf, &n, err, errn);
    }
    char *cur = (char *)buf, *line, *path = NULL;
    int lineno = 0;
    while (rc == 0 && (line = imb_next_line(&cur)) != NULL) {
        lineno++;
        line = imb_trim(line);
        if (!*line) continue;
        char *slash = strchr(line, '/');
        if (!slash || slash == line || !slash[1] || strchr(slash + 1, '/')) {
            rc = imb_errf(err, errn, "%s:%d: expected \"class/id\", got \"%s\"", split_path, lineno, line);
            break;
        }
        *slash = 0;
        name_index probe = {line, 0}, *hit = bsearch(&probe, idx, (size_t)names.n, sizeof *idx, cmp_name);
        if (!hit) {
            rc = imb_errf(err, errn, "%s:%d: unknown class '%s' (not in %s)", split_path, lineno, line, cls_path);
            break;
        }
        size_t len = strlen(img_dir) + strlen(line) + strlen(slash + 1) + 8;
        if (!(path = malloc(len))) {
            rc = imb_errf(err, errn, "%s: out of memory", root);
            break;
        }
        snprintf(path, len, "%s/%s/%s.jpg", img_dir, line, slash + 1);
        /* checked now, so a partial download fails here with the line that names it and
         * not hours later in a loader thread */
        if (!imb_is_file(path)) rc = imb_errf(err, errn, "%s: image not found (listed at %s:%d)", path, split_path, lineno);
        else if (imb_samples_add(&b, path, NULL, hit->label) != 0) rc = imb_errf(err, errn, "%s: out of memory", root);
        free(path);
    }
    if (rc == 0 && out->n == 0) rc = imb_errf(err, errn, "%s: empty split: no \"class/id\" lines", split_path);
    free(buf);
    free(idx);
    free(cls_path);
    free(split_path);
    free(img_dir);
    if (rc != 0) {
        imb_strlist_free(&names);
        return imb_samples_fail(&b);
    }
    imb_samples_set_classes(&b, &names);
    return 0;
}

/* ---------------------------------------------------------------- Food-11 */

/* The 11 categories of Food-11 (Singla et al., 2016), in label order. */
static const char *const food11_names[11] = {
    "Bread", "Dairy product", "Dessert", "Egg", "Fried food", "Meat",
    "Noodles/Pasta", "Rice", "Seafood", "Soup", "Vegetable/Fruit",
};

/* "<cls>_<id>.<ext>" with decimal cls in 0..10 and id; returns cls or -1. */
static int food11_label(const char *name) {
    const char *p = name;
    if (!isdigit((unsigned char)*p)) return -1;
    long cls = 0;
    for (; isdigit((unsigned char)*p); p++)
        if ((cls = cls * 10 + (*p - '0')) > 10) return -1;
    if (*p++ != '_' || !isdigit((unsigned char)*p)) return -1;
    while (isdigit((unsigned char)*p)) p++;
    if (*p != '.' || strchr(p + 1, '.') || !imb_has_image_ext(name)) return -1;
    return (int)cls;
}

int imb_read_food11(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn) {
    imb_sample_builder b;
    imb_samples_begin(&b, out);
    if (!root || !split) return imb_errf(err, errn, "%s: no root or split given", root ? root : "(null)");
    const char *folder = NULL;
    if (!strcmp(split, "train") || !strcmp(split, "training")) folder = "training";
    else if (!strcmp(split, "val") || !strcmp(split, "validation")) folder = "validation";
    else if (!strcmp(split, "test") || !strcmp(split, "evaluation")) folder = "evaluation";
    else
        return imb_errf(err, errn, "%s: unknown Food-11 split '%s' (train/training, val/validation, test/evaluation)",
                        root, split);
    if (!imb_is_dir(root)) return imb_errf(err, errn, "%s: dataset root folder not found", root);
    char *dir = imb_path_join(root, folder);
    if (!dir) return imb_errf(err, errn, "%s: out of memory", root);
    imb_strlist files = {0}, names = {0};
    int rc = imb_dir_list(dir, IMB_LIST_FILES | IMB_LIST_DIRS, &files, err, errn);
    for (int i = 0; rc == 0 && i < files.n; i++) {
        char *p = imb_path_join(dir, files.s[i]);
        int label = food11_label(files.s[i]);
        if (!p) rc = imb_errf(err, errn, "%s: out of memory", dir);
        else if (label < 0 || !imb_is_file(p))
            rc = imb_errf(err, errn, "%s: not a Food-11 image name (expected <class 0-10>_<id>.jpg)", p);
        else if (imb_samples_add(&b, p, NULL, label) != 0) rc = imb_errf(err, errn, "%s: out of memory", dir);
        free(p);
    }
    if (rc == 0 && out->n == 0) rc = imb_errf(err, errn, "%s: empty split: no images", dir);
    for (int i = 0; rc == 0 && i < 11; i++)
        if (imb_strlist_push(&names, food11_names[i]) != 0) rc = imb_errf(err, errn, "%s: out of memory", dir);
    imb_strlist_free(&files);
    free(dir);
    if (rc != 0) {
        imb_strlist_free(&names);
        return imb_samples_fail(&b);
    }
    imb_samples_set_classes(&b, &names);
    return 0;
}
