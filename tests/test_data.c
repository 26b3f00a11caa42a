/* Dataset reader tests on synth data in temp folders: counts, labels, class order, and
 * every broken layout giving an error that names the path. Also runs the image suite. */
#include "datatest.h"
#include "dataset.h"
#include "synth.h"
#include "checkrun.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Suite *image_suite(void);

typedef int (*reader_fn)(const char *, const char *, imb_sample_list *, char *, size_t);

static imb_sample_list read_ok(reader_fn fn, const char *root, const char *split) {
    imb_sample_list s;
    char err[1024] = "";
    int rc = fn(root, split, &s, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    return s;
}

/* reading must fail, leave *out empty, and the error must mention every given string */
#define READ_FAILS(fn, root, split, ...)                                                      \
    do {                                                                                      \
        imb_sample_list s_;                                                                   \
        char e_[1024] = "";                                                                   \
        ck_assert_int_eq(fn(root, split, &s_, e_, sizeof e_), -1);                            \
        ck_assert(s_.n == 0 && s_.paths == NULL && s_.labels == NULL && s_.class_names == NULL); \
        dt_err_has(e_, __VA_ARGS__, NULL);                                                    \
    } while (0)

static void check_counts(const imb_sample_list *s, int nclasses, int per_class) {
    ck_assert_int_eq(s->nclasses, nclasses);
    ck_assert_int_eq(s->n, nclasses * per_class);
    int *cnt = calloc((size_t)nclasses, sizeof *cnt);
    for (int i = 0; i < s->n; i++) {
        ck_assert(s->labels[i] >= 0 && s->labels[i] < nclasses);
        cnt[s->labels[i]]++;
    }
    for (int k = 0; k < nclasses; k++) ck_assert_msg(cnt[k] == per_class, "class %d has %d samples", k, cnt[k]);
    free(cnt);
}

static const char *base(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void sh(const char *fmt, const char *a, const char *b) {   /* small file moves via the shell */
    char cmd[3 * PATHN];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

static void append(const char *path, const char *text) {
    FILE *f = fopen(path, "ab");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* ------------------------------------------------------------ ImageNet */

START_TEST(imagenet_train_sorted_classes) {
    char *root = dt_synth("imagenet", 4, 2), p[PATHN], err[512];
    imb_sample_list s = read_ok(imb_read_imagenet, root, "train");
    check_counts(&s, 6, 4);
    static const char *wnids[] = {"n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331"};
    for (int k = 0; k < 6; k++) ck_assert_str_eq(s.class_names[k], wnids[k]);
    for (int i = 0; i < s.n; i++) {
        if (i) ck_assert(s.labels[i] >= s.labels[i - 1]);   /* class by class, as torchvision */
        ck_assert_str_eq(s.paths[i], dt_path(p, "%s/train/%s/%s", root, wnids[s.labels[i]], base(s.paths[i])));
        if (i && s.labels[i] == s.labels[i - 1]) ck_assert(strcmp(s.paths[i - 1], s.paths[i]) < 0);
        imb_image im;
        ck_assert_msg(imb_image_load(s.paths[i], &im, err, sizeof err) == 0, "%s", err);
        /* synth's odd files: PNG named .JPEG, grayscale JPEG, CMYK JPEG */
        const char *b = base(s.paths[i]);
        ck_assert_int_eq(im.c, strcmp(b, "n01440764_1.JPEG") == 0 ? 1 : 3);
        ck_assert(im.h >= 32 && im.h < 48 && im.w >= 32 && im.w < 48);
        imb_image_free(&im);
    }
    size_t n;
    uint8_t *png = dt_read(dt_path(p, "%s/train/n01440764/n01440764_0.JPEG", root), &n);
    ck_assert(png[0] == 0x89 && png[1] == 'P');
    free(png);
    imb_samples_free(&s);
    ck_assert_ptr_null(s.labels);
    imb_samples_free(&s);   /* twice is harmless */
    dt_rm_tree(root);
    free(root);
}
END_TEST

/* the three val layouts give the same label to the same file */
START_TEST(imagenet_val_layouts_agree) {
    char *roots[3] = {dt_synth("imagenet", 1, 3), dt_synth("imagenet-csv", 1, 3), dt_synth("imagenet-txt", 1, 3)};
    imb_sample_list v[3];
    for (int r = 0; r < 3; r++) {
        v[r] = read_ok(imb_read_imagenet, roots[r], "val");
        check_counts(&v[r], 6, 3);
    }
    for (int r = 1; r < 3; r++)
        for (int i = 0; i < v[r].n; i++) {
            int found = 0;
            for (int j = 0; j < v[0].n; j++)
                if (strcmp(base(v[0].paths[j]), base(v[r].paths[i])) == 0) {
                    ck_assert_int_eq(v[0].labels[j], v[r].labels[i]);
                    found = 1;
                }
            ck_assert(found);
            if (i) ck_assert(strcmp(v[r].paths[i - 1], v[r].paths[i]) < 0);   /* flat: file order */
        }
    for (int r = 0; r < 3; r++) {
        imb_samples_free(&v[r]);
        dt_rm_tree(roots[r]);
        free(roots[r]);
    }
}
END_TEST

START_TEST(imagenet_val_without_train_uses_synset_mapping) {
    char *root = dt_synth("imagenet-csv", 1, 2), p[PATHN];
    dt_rm_tree(dt_path(p, "%s/train", root));
    imb_sample_list s = read_ok(imb_read_imagenet, root, "val");
    check_counts(&s, 6, 2);
    ck_assert_str_eq(s.class_names[5], "n01496331");
    imb_samples_free(&s);
    /* and with neither train nor the mapping, a flat split cannot be named */
    unlink(dt_path(p, "%s/LOC_synset_mapping.txt", root));
    READ_FAILS(imb_read_imagenet, root, "val", "/val", "no class folders");
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(imagenet_missing_root_and_split) {
    char *root = dt_synth("imagenet", 1, 1), p[PATHN];
    READ_FAILS(imb_read_imagenet, dt_path(p, "%s/nowhere", root), "train", p, "not found");
    READ_FAILS(imb_read_imagenet, root, "test", dt_path(p, "%s/test", root), "split folder not found");
    READ_FAILS(imb_read_imagenet, root, "../x", "bad split");
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(imagenet_class_folder_mismatch) {
    char *root = dt_synth("imagenet", 1, 1), p[PATHN], q[PATHN];
    /* a val folder whose wnid train does not know */
    sh("mv '%s' '%s'", dt_path(p, "%s/val/n01443537", root), dt_path(q, "%s/val/n09999999", root));
    READ_FAILS(imb_read_imagenet, root, "val", dt_path(p, "%s/val/n09999999", root), "unknown wnid");
    /* a train class missing from val */
    dt_rm_tree(dt_path(p, "%s/val/n09999999", root));
    READ_FAILS(imb_read_imagenet, root, "val", dt_path(p, "%s/val", root), "n01443537", "missing");
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(imagenet_empty_split_and_class) {
    char *root = dt_synth("imagenet", 2, 1), p[PATHN];
    dt_rm_tree(dt_path(p, "%s/val", root));
    ck_assert_int_eq(mkdir(p, 0777), 0);
    READ_FAILS(imb_read_imagenet, root, "val", p, "empty split");
    /* a class folder with no images (a stray text file does not count) */
    dt_rm_tree(dt_path(p, "%s/train/n01484850", root));
    ck_assert_int_eq(mkdir(p, 0777), 0);
    dt_write(dt_path(p, "%s/train/n01484850/notes.txt", root), "x", 1);
    READ_FAILS(imb_read_imagenet, root, "train", dt_path(p, "%s/train/n01484850", root), "no images");
    /* no class folders at all in train */
    dt_rm_tree(dt_path(p, "%s/train", root));
    ck_assert_int_eq(mkdir(p, 0777), 0);
    READ_FAILS(imb_read_imagenet, root, "train", p, "no class folders");
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(imagenet_flat_label_file_errors) {
    char *root = dt_synth("imagenet-csv", 1, 2), p[PATHN], csv[PATHN], err[512];
    dt_path(csv, "%s/LOC_val_solution.csv", root);
    size_t n;
    uint8_t *orig = dt_read(csv, &n);
    /* unknown wnid */
    append(csv, "ILSVRC2012_val_00000099,n09999999 1 2 3 4\n");
    READ_FAILS(imb_read_imagenet, root, "val", csv, ":14:", "n09999999");
    /* a label for an image that is not there */
    dt_write(csv, orig, n);
    append(csv, "ILSVRC2012_val_00000099,n01440764 1 2 3 4\n");
    READ_FAILS(imb_read_imagenet, root, "val", csv, "ILSVRC2012_val_00000099", "not found");
    /* an image without a label */
    dt_write(csv, orig, n);
    imb_image im;
    ck_assert_int_eq(imb_synth_image(0, 32, 32, 3, 1, 1, &im), 0);
    ck_assert_int_eq(imb_image_write_jpeg(dt_path(p, "%s/val/extra.JPEG", root), &im, 90, err, sizeof err), 0);
    imb_image_free(&im);
    READ_FAILS(imb_read_imagenet, root, "val", p, "no label");
    unlink(p);
    /* a bad header, a duplicate, then no label file at all */
    dt_write(csv, "ImageId;Prediction\n", 19);
    READ_FAILS(imb_read_imagenet, root, "val", csv, "header");
    dt_write(csv, orig, n);
    append(csv, "ILSVRC2012_val_00000001,n01440764\n");
    READ_FAILS(imb_read_imagenet, root, "val", csv, "twice");
    unlink(csv);
    READ_FAILS(imb_read_imagenet, root, "val", dt_path(p, "%s/val", root), "label file");
    /* the text form: indices out of range, and a wnid label is accepted */
    dt_path(p, "%s/val.txt", root);
    dt_write(p, "ILSVRC2012_val_00000001.JPEG 6\n", 31);
    READ_FAILS(imb_read_imagenet, root, "val", p, ":1:", "label '6'");
    free(orig);
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(imagenet_txt_accepts_wnids_and_index) {
    char *root = dt_synth("imagenet-txt", 1, 1), p[PATHN];
    dt_path(p, "%s/val.txt", root);
    size_t n;
    uint8_t *orig = dt_read(p, &n);
    /* rewrite every label as a wnid: same result */
    imb_sample_list a = read_ok(imb_read_imagenet, root, "val");
    static const char *wnids[] = {"n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331"};
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < a.n; i++) fprintf(f, "val/%s %s\r\n", base(a.paths[i]), wnids[a.labels[i]]);
    fclose(f);
    imb_sample_list b = read_ok(imb_read_imagenet, root, "val");
    ck_assert_int_eq(a.n, b.n);
    ck_assert_mem_eq(a.labels, b.labels, sizeof *a.labels * (size_t)a.n);
    imb_samples_free(&a);
    imb_samples_free(&b);
    free(orig);
    dt_rm_tree(root);
    free(root);
}
END_TEST

/* ------------------------------------------------------------ Food-101 */

START_TEST(food101_reads_splits) {
    char *root = dt_synth("food101", 3, 2), p[PATHN];
    imb_sample_list tr = read_ok(imb_read_food101, root, "train"), te = read_ok(imb_read_food101, root, "test"),
                    va = read_ok(imb_read_food101, root, "val");
    check_counts(&tr, 5, 3);
    check_counts(&te, 5, 2);
    ck_assert_int_eq(va.n, te.n);
    ck_assert_str_eq(tr.class_names[0], "apple_pie");
    ck_assert_str_eq(tr.class_names[4], "beef_tartare");
    for (int i = 0; i < tr.n; i++) {
        ck_assert_str_eq(tr.paths[i], dt_path(p, "%s/images/%s/%s", root, tr.class_names[tr.labels[i]], base(tr.paths[i])));
        ck_assert(access(tr.paths[i], R_OK) == 0);
    }
    imb_samples_free(&tr);
    imb_samples_free(&te);
    imb_samples_free(&va);
    READ_FAILS(imb_read_food101, root, "dev", "unknown Food-101 split");
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(food101_errors) {
    char *root = dt_synth("food101", 2, 1), p[PATHN], q[PATHN];
    dt_path(p, "%s/meta/train.txt", root);
    size_t n;
    uint8_t *orig = dt_read(p, &n);
    append(p, "pizza/123\n");   /* line 11 */
    READ_FAILS(imb_read_food101, root, "train", p, ":11:", "unknown class 'pizza'");
    dt_write(p, orig, n);
    append(p, "baklava\n");
    READ_FAILS(imb_read_food101, root, "train", p, ":11:", "class/id");
    dt_write(p, orig, n);
    append(p, "baklava/999999\n");
    READ_FAILS(imb_read_food101, root, "train", dt_path(q, "%s/images/baklava/999999.jpg", root), "not found", ":11");
    dt_write(p, "\n\n", 2);
    READ_FAILS(imb_read_food101, root, "train", p, "empty split");
    unlink(p);
    READ_FAILS(imb_read_food101, root, "train", p, "No such file");
    unlink(dt_path(q, "%s/meta/classes.txt", root));
    READ_FAILS(imb_read_food101, root, "test", q, "No such file");
    READ_FAILS(imb_read_food101, dt_path(q, "%s/none", root), "test", q, "not found");
    free(orig);
    dt_rm_tree(root);
    free(root);
}
END_TEST

/* ------------------------------------------------------------ Food-11 */

START_TEST(food11_reads_splits_and_aliases) {
    char *root = dt_synth("food11", 2, 1);
    const char *names[][2] = {{"train", "training"}, {"val", "validation"}, {"test", "evaluation"}};
    for (int s = 0; s < 3; s++) {
        imb_sample_list a = read_ok(imb_read_food11, root, names[s][0]), b = read_ok(imb_read_food11, root, names[s][1]);
        check_counts(&a, 11, s == 0 ? 2 : 1);
        ck_assert_int_eq(a.n, b.n);
        for (int i = 0; i < a.n; i++) {
            ck_assert_str_eq(a.paths[i], b.paths[i]);
            ck_assert_int_eq(a.labels[i], atoi(base(a.paths[i])));   /* label = the number before '_' */
            ck_assert(strstr(a.paths[i], names[s][1]) != NULL);
        }
        ck_assert_str_eq(a.class_names[0], "Bread");
        ck_assert_str_eq(a.class_names[10], "Vegetable/Fruit");
        imb_samples_free(&a);
        imb_samples_free(&b);
    }
    READ_FAILS(imb_read_food11, root, "dev", "unknown Food-11 split");
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(food11_bad_names) {
    char *root = dt_synth("food11", 1, 1), p[PATHN];
    const char *bad[] = {"11_0.jpg", "x_1.jpg", "3-1.jpg", "3_.jpg", "3_1.txt", "3_1.jpg.bak", "03_1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dt_write(dt_path(p, "%s/evaluation/%s", root, bad[i]), "x", 1);
        READ_FAILS(imb_read_food11, root, "test", p, "not a Food-11 image name");
        unlink(p);
    }
    ck_assert_int_eq(mkdir(dt_path(p, "%s/evaluation/Bread", root), 0777), 0);   /* the class-folder variant */
    READ_FAILS(imb_read_food11, root, "test", p, "not a Food-11 image name");
    dt_rm_tree(dt_path(p, "%s/validation", root));
    READ_FAILS(imb_read_food11, root, "val", p, "No such file");
    ck_assert_int_eq(mkdir(p, 0777), 0);
    READ_FAILS(imb_read_food11, root, "val", p, "empty split");
    dt_rm_tree(root);
    free(root);
}
END_TEST

/* ------------------------------------------------------------ MNIST IDX */

START_TEST(mnist_reads_idx) {
    char *root = dt_synth("mnist-idx", 3, 2);
    imb_sample_list tr = read_ok(imb_read_mnist_idx, root, "train"), te = read_ok(imb_read_mnist_idx, root, "test"),
                    va = read_ok(imb_read_mnist_idx, root, "val");
    check_counts(&tr, 10, 3);
    check_counts(&te, 10, 2);
    ck_assert_int_eq(va.n, te.n);
    ck_assert_ptr_null(tr.paths);
    ck_assert_ptr_nonnull(tr.images);
    ck_assert_str_eq(tr.class_names[7], "7");
    int sorted = 1;
    for (int i = 0; i < tr.n; i++) {
        ck_assert(tr.images[i].h == 28 && tr.images[i].w == 28 && tr.images[i].c == 1);
        if (i && tr.labels[i] < tr.labels[i - 1]) sorted = 0;
    }
    ck_assert_msg(!sorted, "synth MNIST should be shuffled");
    /* the pixels are synth's drawing of that label */
    imb_image want;
    ck_assert_int_eq(imb_synth_image(te.labels[5], 28, 28, 1, 7, 5000000u + 5, &want), 0);
    ck_assert_mem_eq(te.images[5].px, want.px, 28 * 28);
    imb_image_free(&want);
    imb_samples_free(&tr);
    imb_samples_free(&te);
    imb_samples_free(&va);
    READ_FAILS(imb_read_mnist_idx, root, "dev", "unknown MNIST split");
    dt_rm_tree(root);
    free(root);
}
END_TEST

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

START_TEST(mnist_bad_files) {
    char *root = dt_synth("mnist-idx", 2, 1), img[PATHN], lab[PATHN];
    dt_path(img, "%s/t10k-images-idx3-ubyte", root);
    dt_path(lab, "%s/t10k-labels-idx1-ubyte", root);
    size_t ni, nl;
    uint8_t *oi = dt_read(img, &ni), *ol = dt_read(lab, &nl);
    uint8_t *b = malloc(ni);
    /* bad magic */
    memcpy(b, oi, ni);
    put_be32(b, 0x00000804);
    dt_write(img, b, ni);
    READ_FAILS(imb_read_mnist_idx, root, "test", img, "magic");
    /* truncated pixels: 10 images in the header, 9 and a bit in the file */
    dt_write(img, oi, ni - 100);
    READ_FAILS(imb_read_mnist_idx, root, "test", img, "header says 10 images, file holds 9");
    /* truncated header */
    dt_write(img, oi, 10);
    READ_FAILS(imb_read_mnist_idx, root, "test", img, "truncated header");
    /* trailing bytes */
    memcpy(b, oi, ni);
    dt_write(img, oi, ni);
    append(img, "junk");
    READ_FAILS(imb_read_mnist_idx, root, "test", img, "4 bytes more");
    dt_write(img, oi, ni);
    /* truncated labels, as the brief's example */
    dt_write(lab, ol, nl - 1);
    READ_FAILS(imb_read_mnist_idx, root, "test", lab, "header says 10 labels, file holds 9");
    /* consistent labels file with a different count */
    memcpy(b, ol, nl);
    put_be32(b + 4, 9);
    dt_write(lab, b, nl - 1);
    READ_FAILS(imb_read_mnist_idx, root, "test", lab, "9 labels", "10 images");
    /* a label that is not a digit */
    memcpy(b, ol, nl);
    b[8 + 3] = 10;
    dt_write(lab, b, nl);
    READ_FAILS(imb_read_mnist_idx, root, "test", lab, "label 10 of item 3");
    unlink(lab);
    READ_FAILS(imb_read_mnist_idx, root, "test", lab, "No such file");
    free(b);
    free(oi);
    free(ol);
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(mnist_any_image_size) {
    char *root = dt_tmpdir(), p[PATHN];
    uint8_t hdr[16 + 2 * 5 * 3], lab[8 + 2] = {0};
    put_be32(hdr, 0x803), put_be32(hdr + 4, 2), put_be32(hdr + 8, 5), put_be32(hdr + 12, 3);
    for (int i = 0; i < 30; i++) hdr[16 + i] = (uint8_t)i;
    put_be32(lab, 0x801), put_be32(lab + 4, 2);
    lab[8] = 4, lab[9] = 9;
    dt_write(dt_path(p, "%s/train-images.idx3-ubyte", root), hdr, sizeof hdr);   /* the dotted spelling */
    dt_write(dt_path(p, "%s/train-labels.idx1-ubyte", root), lab, sizeof lab);
    imb_sample_list s = read_ok(imb_read_mnist_idx, root, "train");
    ck_assert(s.n == 2 && s.images[1].h == 5 && s.images[1].w == 3 && s.images[1].px[0] == 15 && s.labels[1] == 9);
    imb_samples_free(&s);
    dt_rm_tree(root);
    free(root);
}
END_TEST

/* ------------------------------------------------------------ synth */

START_TEST(synth_is_deterministic) {
    const char *layouts[] = {"mnist-idx", "food11"};
    const char *files[] = {"train-images-idx3-ubyte", "training/4_1.jpg"};
    for (int l = 0; l < 2; l++) {
        char *a = dt_synth(layouts[l], 2, 1), *b = dt_synth(layouts[l], 2, 1), *c = dt_tmpdir(), p[PATHN], err[512];
        ck_assert_int_eq(imb_synth_write(layouts[l], c, 2, 1, 8, err, sizeof err), 0);
        size_t na, nb, nc;
        uint8_t *ba = dt_read(dt_path(p, "%s/%s", a, files[l]), &na), *bb = dt_read(dt_path(p, "%s/%s", b, files[l]), &nb),
                *bc = dt_read(dt_path(p, "%s/%s", c, files[l]), &nc);
        ck_assert(na == nb && memcmp(ba, bb, na) == 0);
        ck_assert(na != nc || memcmp(ba, bc, na) != 0);
        free(ba), free(bb), free(bc);
        dt_rm_tree(a), dt_rm_tree(b), dt_rm_tree(c);
        free(a), free(b), free(c);
    }
    char err[512];
    ck_assert_int_eq(imb_synth_write("coco", "/tmp/x", 1, 1, 1, err, sizeof err), -1);
    dt_err_has(err, "unknown synth layout", NULL);
}
END_TEST

static Suite *reader_suite(void) {
    Suite *s = suite_create("readers");
    TCase *t = tcase_create("imagenet");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, imagenet_train_sorted_classes);
    tcase_add_test(t, imagenet_val_layouts_agree);
    tcase_add_test(t, imagenet_val_without_train_uses_synset_mapping);
    tcase_add_test(t, imagenet_missing_root_and_split);
    tcase_add_test(t, imagenet_class_folder_mismatch);
    tcase_add_test(t, imagenet_empty_split_and_class);
    tcase_add_test(t, imagenet_flat_label_file_errors);
    tcase_add_test(t, imagenet_txt_accepts_wnids_and_index);
    suite_add_tcase(s, t);
    TCase *f = tcase_create("food");
    tcase_set_timeout(f, 60);
    tcase_add_test(f, food101_reads_splits);
    tcase_add_test(f, food101_errors);
    tcase_add_test(f, food11_reads_splits_and_aliases);
    tcase_add_test(f, food11_bad_names);
    suite_add_tcase(s, f);
    TCase *m = tcase_create("mnist");
    tcase_set_timeout(m, 60);
    tcase_add_test(m, mnist_reads_idx);
    tcase_add_test(m, mnist_bad_files);
    tcase_add_test(m, mnist_any_image_size);
    tcase_add_test(m, synth_is_deterministic);
    suite_add_tcase(s, m);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(image_suite());
    srunner_add_suite(sr, reader_suite());
    return imb_check_run(sr);
}
