/* Data-path tests: shard round trip and damage detection, transforms, loader order/threads/resume. */
#include "loader.h"
#include "resample.h"
#include "shard.h"
#include "transform.h"
#include "checkrun.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FP 0x1234abcd5678ef00ull

/* ---- helpers ---- */

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "test_loader.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(tmpdir);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Image i: size and channels vary with i, pixels encode (i, y, x, ch). */
static imb_image make_image(int i, int h, int w, int c) {
    imb_image im = {h, w, c, malloc((size_t)h * w * c)};
    for (int k = 0; k < h * w * c; k++) im.px[k] = (uint8_t)((i * 37 + k * 11 + (k / 7) * 3) & 0xff);
    return im;
}

typedef struct dataset {
    int n;
    imb_image *im;
    int32_t *lab;
} dataset;

static dataset make_dataset(int n, int nclasses) {
    dataset d = {n, calloc((size_t)n, sizeof(imb_image)), calloc((size_t)n, sizeof(int32_t))};
    for (int i = 0; i < n; i++) {
        d.im[i] = make_image(i, 9 + (i * 5) % 23, 7 + (i * 3) % 29, i % 3 == 2 ? 1 : 3);
        d.lab[i] = i % nclasses;
    }
    return d;
}

static void free_dataset(dataset *d) {
    for (int i = 0; i < d->n; i++) free(d->im[i].px);
    free(d->im);
    free(d->lab);
}

static void write_shard(const char *path, const dataset *d, int nclasses) {
    char err[512] = "";
    int rc = imb_shard_write_images(path, d->n, d->im, d->lab, nclasses, FP, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
}

static void shard_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* Rewrites one byte of a file at off (negative: from the end). */
static void flip_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, -1, SEEK_CUR);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static long file_size(const char *path) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (long)st.st_size;
}

/* ---- shard ---- */

START_TEST(shard_round_trip) {
    make_tmpdir();
    dataset d = make_dataset(17, 5);
    char path[512], err[512] = "";
    shard_path(path, sizeof path, "rt.shard");
    write_shard(path, &d, 5);
    imb_shard s;
    int rc = imb_shard_open(path, FP, &s, err, sizeof err);
    ck_assert_msg(rc == IMB_SHARD_OK, "%s", err);
    ck_assert_int_eq(s.n, 17);
    ck_assert_int_eq(s.nclasses, 5);
    ck_assert(s.fingerprint == FP);
    for (int i = 0; i < d.n; i++) {
        imb_image v;
        int32_t lab;
        ck_assert_int_eq(imb_shard_get(&s, i, &v, &lab), 0);
        ck_assert_int_eq(v.h, d.im[i].h);
        ck_assert_int_eq(v.w, d.im[i].w);
        ck_assert_int_eq(v.c, d.im[i].c);
        ck_assert_int_eq(lab, d.lab[i]);
        ck_assert_mem_eq(v.px, d.im[i].px, (size_t)v.h * v.w * v.c);
        /* a view, not a copy */
        ck_assert(v.px >= s.map && v.px < s.map + s.map_size);
    }
    imb_image v;
    ck_assert_int_eq(imb_shard_get(&s, 17, &v, NULL), -1);
    ck_assert_int_eq(imb_shard_get(&s, -1, &v, NULL), -1);
    imb_shard_close(&s);
    ck_assert_ptr_null(s.map);
    free_dataset(&d);
    remove_tmpdir();
}
END_TEST

START_TEST(shard_detects_damage) {
    make_tmpdir();
    dataset d = make_dataset(6, 3);
    char path[512], err[512] = "";
    imb_shard s;
    shard_path(path, sizeof path, "bad.shard");

    /* payload byte flipped -> corrupt, message names the file and the checksum */
    write_shard(path, &d, 3);
    flip_byte(path, -3);
    ck_assert_int_eq(imb_shard_open(path, FP, &s, err, sizeof err), IMB_SHARD_CORRUPT);
    ck_assert_msg(strstr(err, path) && strstr(err, "checksum"), "%s", err);
    ck_assert_ptr_null(s.map);

    /* index byte flipped (a label) -> corrupt */
    write_shard(path, &d, 3);
    flip_byte(path, 72 + 24 + 12);
    ck_assert_int_eq(imb_shard_open(path, FP, &s, err, sizeof err), IMB_SHARD_CORRUPT);
    ck_assert_msg(strstr(err, path), "%s", err);

    /* header field flipped (record count) -> corrupt via the header checksum */
    write_shard(path, &d, 3);
    flip_byte(path, 16);
    ck_assert_int_eq(imb_shard_open(path, FP, &s, err, sizeof err), IMB_SHARD_CORRUPT);
    ck_assert_msg(strstr(err, path) && strstr(err, "header"), "%s", err);

    /* truncated payload, truncated header, empty file -> corrupt */
    write_shard(path, &d, 3);
    ck_assert_int_eq(truncate(path, file_size(path) - 10), 0);
    ck_assert_int_eq(imb_shard_open(path, FP, &s, err, sizeof err), IMB_SHARD_CORRUPT);
    ck_assert_msg(strstr(err, path) && strstr(err, "size"), "%s", err);
    ck_assert_int_eq(truncate(path, 40), 0);
    ck_assert_int_eq(imb_shard_open(path, FP, &s, err, sizeof err), IMB_SHARD_CORRUPT);
    ck_assert_msg(strstr(err, path) && strstr(err, "truncated"), "%s", err);
    ck_assert_int_eq(truncate(path, 0), 0);
    ck_assert_int_eq(imb_shard_open(path, FP, &s, err, sizeof err), IMB_SHARD_CORRUPT);

    /* not a shard */
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 200; i++) fputc('x', f);
    fclose(f);
    ck_assert_int_eq(imb_shard_open(path, FP, &s, err, sizeof err), IMB_SHARD_CORRUPT);
    ck_assert_msg(strstr(err, path) && strstr(err, "magic"), "%s", err);

    /* other fingerprint or format version -> stale */
    write_shard(path, &d, 3);
    ck_assert_int_eq(imb_shard_open(path, FP + 1, &s, err, sizeof err), IMB_SHARD_STALE);
    ck_assert_msg(strstr(err, path) && strstr(err, "fingerprint"), "%s", err);
    flip_byte(path, 8);
    ck_assert_int_eq(imb_shard_open(path, FP, &s, err, sizeof err), IMB_SHARD_STALE);
    ck_assert_msg(strstr(err, path) && strstr(err, "version"), "%s", err);

    /* missing */
    shard_path(path, sizeof path, "nothing-here.shard");
    ck_assert_int_eq(imb_shard_open(path, FP, &s, err, sizeof err), IMB_SHARD_MISSING);
    ck_assert_msg(strstr(err, path) && strstr(err, "missing"), "%s", err);
    free_dataset(&d);
    remove_tmpdir();
}
END_TEST

/* A source that decodes "on demand" and fails at one index, to check clean-up. */
typedef struct lazy {
    int fail_at;
    int gets, puts;
} lazy;

static int lazy_get(void *ctx, int i, imb_image *im, int32_t *label, char *err, size_t errn) {
    lazy *z = ctx;
    if (i == z->fail_at) {
        snprintf(err, errn, "img%d.jpg: truncated JPEG", i);
        return -1;
    }
    z->gets++;
    *im = make_image(i, 40 + i, 30, 3);
    *label = i % 2;
    return 0;
}

static void lazy_put(void *ctx, int i, imb_image *im) {
    (void)i;
    ((lazy *)ctx)->puts++;
    free(im->px);
    im->px = NULL;
}

START_TEST(shard_write_is_atomic_and_streams) {
    make_tmpdir();
    char path[512], err[512] = "";
    shard_path(path, sizeof path, "lazy.shard");
    lazy z = {.fail_at = 3};
    imb_shard_source src = {.n = 6, .nclasses = 2, .fingerprint = FP, .get = lazy_get, .put = lazy_put, .ctx = &z};
    /* a failing decode leaves neither the shard nor a temp file, and passes the message on */
    ck_assert_int_eq(imb_shard_write(path, &src, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "img3.jpg"), "%s", err);
    ck_assert_int_eq(z.gets, 3);
    ck_assert_int_eq(z.puts, 3);
    ck_assert_int_eq(count_files(tmpdir), 0);

    /* success: exactly one file, every image handed back; shrinking to store_size 20 */
    z = (lazy){.fail_at = -1};
    src.store_size = 20;
    ck_assert_int_eq(imb_shard_write(path, &src, err, sizeof err), -1);   /* no resize callback */
    ck_assert_msg(strstr(err, "resize"), "%s", err);
    src.resize = imb_image_resize;
    ck_assert_msg(imb_shard_write(path, &src, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(z.gets, 6);
    ck_assert_int_eq(z.puts, 6);
    ck_assert_int_eq(count_files(tmpdir), 1);
    imb_shard s;
    ck_assert_msg(imb_shard_open(path, FP, &s, err, sizeof err) == IMB_SHARD_OK, "%s", err);
    ck_assert_int_eq(s.store_size, 20);
    for (int i = 0; i < 6; i++) {
        imb_image v;
        ck_assert_int_eq(imb_shard_get(&s, i, &v, NULL), 0);
        /* (40+i) x 30 -> shorter side 20, longer floor(20 * (40+i) / 30) */
        ck_assert_int_eq(v.w, 20);
        ck_assert_int_eq(v.h, 20 * (40 + i) / 30);
    }
    imb_shard_close(&s);
    /* overwriting an existing shard also goes through a temp file and leaves one file */
    ck_assert_msg(imb_shard_write(path, &src, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(count_files(tmpdir), 1);

    /* bad records are errors naming the file and sample */
    dataset d = make_dataset(3, 2);
    d.lab[1] = 7;
    ck_assert_int_eq(imb_shard_write_images(path, 3, d.im, d.lab, 2, FP, err, sizeof err), -1);
    ck_assert_msg(strstr(err, path) && strstr(err, "sample 1") && strstr(err, "label"), "%s", err);
    ck_assert_int_eq(count_files(tmpdir), 1);
    free_dataset(&d);
    remove_tmpdir();
}
END_TEST

START_TEST(cache_path_and_fingerprint) {
    make_tmpdir();
    char buf[512], small[8], err[512] = "";
    ck_assert_msg(imb_cache_path(tmpdir, "mnist", "train", buf, sizeof buf, err, sizeof err) == 0, "%s", err);
    char want[512];
    snprintf(want, sizeof want, "%s/.imbench/mnist-train.shard", tmpdir);
    ck_assert_str_eq(buf, want);
    struct stat st;
    snprintf(want, sizeof want, "%s/.imbench", tmpdir);
    ck_assert(stat(want, &st) == 0 && S_ISDIR(st.st_mode));
    ck_assert_int_eq(imb_cache_path(tmpdir, "mnist", "train", buf, sizeof buf, err, sizeof err), 0);
    ck_assert_int_eq(imb_cache_path(tmpdir, "mnist", "train", small, sizeof small, err, sizeof err), -1);
    rmdir(want);

    uint64_t a = imb_fingerprint_str(IMB_FINGERPRINT_INIT, "ab");
    a = imb_fingerprint_str(a, "c");
    uint64_t b = imb_fingerprint_str(IMB_FINGERPRINT_INIT, "a");
    b = imb_fingerprint_str(b, "bc");
    ck_assert(a != b);
    ck_assert(imb_fingerprint_u64(a, 1) != imb_fingerprint_u64(a, 2));
    uint64_t h = IMB_FINGERPRINT_INIT;
    ck_assert_int_eq(imb_fingerprint_file(&h, "/nonexistent/file", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "/nonexistent/file"), "%s", err);
    remove_tmpdir();
}
END_TEST

/* ---- resample and transform ---- */

START_TEST(resample_known_values) {
    imb_resample_work w = {0};
    /* identity size is an exact copy */
    imb_image im = make_image(3, 5, 6, 3);
    float out[5 * 6 * 3];
    ck_assert_int_eq(imb_resample(im.px, 5, 6, 3, (imb_box){0, 0, 5, 6}, 5, 6, (imb_box){0, 0, 5, 6}, out, &w), 0);
    for (int k = 0; k < 5 * 6 * 3; k++) ck_assert_float_eq(out[k], (float)im.px[k]);
    /* 4 -> 2 shrink uses PIL's stretched triangle: out0 = (0*.75 + 100*.75 + 200*.25) / 1.75 */
    uint8_t row[4] = {0, 100, 200, 250};
    float o2[2];
    ck_assert_int_eq(imb_resample(row, 1, 4, 1, (imb_box){0, 0, 1, 4}, 1, 2, (imb_box){0, 0, 1, 2}, o2, &w), 0);
    ck_assert_float_eq_tol(o2[0], 125.0f / 1.75f, 1e-4f);
    ck_assert_float_eq_tol(o2[1], (100 * .25f + 200 * .75f + 250 * .75f) / 1.75f, 1e-4f);
    /* 2 -> 4 enlarge is bilinear with half-pixel centres, edges clamped */
    uint8_t two[2] = {0, 200};
    float o4[4];
    ck_assert_int_eq(imb_resample(two, 1, 2, 1, (imb_box){0, 0, 1, 2}, 1, 4, (imb_box){0, 0, 1, 4}, o4, &w), 0);
    ck_assert_float_eq_tol(o4[0], 0.0f, 1e-4f);
    ck_assert_float_eq_tol(o4[1], 50.0f, 1e-4f);
    ck_assert_float_eq_tol(o4[2], 150.0f, 1e-4f);
    ck_assert_float_eq_tol(o4[3], 200.0f, 1e-4f);
    /* a constant image stays constant under any shrink (weights sum to 1) */
    imb_image flat = {37, 53, 1, malloc(37 * 53)};
    memset(flat.px, 77, 37 * 53);
    float o3[5 * 7];
    ck_assert_int_eq(imb_resample(flat.px, 37, 53, 1, (imb_box){2, 3, 30, 41}, 5, 7, (imb_box){0, 0, 5, 7}, o3, &w), 0);
    for (int k = 0; k < 35; k++) ck_assert_float_eq_tol(o3[k], 77.0f, 1e-3f);
    /* window outside the output grid, box outside the image */
    ck_assert_int_eq(imb_resample(flat.px, 37, 53, 1, (imb_box){0, 0, 37, 53}, 5, 7, (imb_box){1, 0, 5, 7}, o3, &w), -1);
    ck_assert_int_eq(imb_resample(flat.px, 37, 53, 1, (imb_box){1, 0, 37, 53}, 5, 7, (imb_box){0, 0, 5, 7}, o3, &w), -1);
    imb_resample_work_free(&w);
    free(flat.px);
    free(im.px);
}
END_TEST

static imb_transform_opts plain_opts(int size, int train, int channels) {
    imb_transform_opts o;
    imb_transform_defaults(&o, size, train);
    o.channels = channels;
    for (int c = 0; c < 3; c++) {
        o.mean[c] = 0.0f;
        o.std[c] = 1.0f;
    }
    return o;
}

START_TEST(eval_centre_crop) {
    char err[256] = "";
    /* crop_pct 0.5 and size 4: shorter side to floor(4 / 0.5) = 8 = its size, so no
     * resampling, and the centre window is exact source pixels */
    imb_image im = {8, 13, 1, malloc(8 * 13)};
    for (int k = 0; k < 8 * 13; k++) im.px[k] = (uint8_t)k;
    imb_transform_opts o = plain_opts(4, 0, 1);
    o.crop_pct = 0.5;
    float out[16];
    ck_assert_msg(imb_transform_apply(&o, &im, 1, 0, 0, out, NULL, err, sizeof err) == 0, "%s", err);
    /* top = round((8-4)/2) = 2; left = round((13-4)/2 = 4.5) = 4 (half to even, as Python) */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) ck_assert_float_eq(out[y * 4 + x], (float)((2 + y) * 13 + 4 + x) / 255.0f);
    /* same with an odd offset that rounds up: width 11 -> left = round(3.5) = 4 */
    imb_image im2 = {8, 11, 1, malloc(8 * 11)};
    for (int k = 0; k < 8 * 11; k++) im2.px[k] = (uint8_t)(k * 2);
    ck_assert_int_eq(imb_transform_apply(&o, &im2, 1, 0, 0, out, NULL, err, sizeof err), 0);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) ck_assert_float_eq(out[y * 4 + x], (float)(((2 + y) * 11 + 4 + x) * 2) / 255.0f);
    /* normalisation: (v / 255 - mean) / std per channel */
    imb_image rgb = {4, 4, 3, malloc(48)};
    for (int k = 0; k < 16; k++) {
        rgb.px[3 * k] = 128;
        rgb.px[3 * k + 1] = 64;
        rgb.px[3 * k + 2] = 255;
    }
    imb_transform_opts n;
    imb_transform_defaults(&n, 4, 0);
    n.crop_pct = 1.0;
    float o3[48];
    ck_assert_int_eq(imb_transform_apply(&n, &rgb, 1, 0, 0, o3, NULL, err, sizeof err), 0);
    const float v[3] = {128, 64, 255};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 16; k++)
            ck_assert_float_eq(o3[c * 16 + k], (v[c] / 255.0f - n.mean[c]) / n.std[c]);
    ck_assert_float_eq_tol(o3[0], (128.0f / 255.0f - 0.485f) / 0.229f, 1e-6f);
    /* eval resampling keeps the aspect: a 16 x 32 image at size 4, crop_pct 1 -> 4 x 8 then
     * centre 4 x 4; a constant image stays constant */
    imb_image wide = {16, 32, 1, malloc(16 * 32)};
    memset(wide.px, 200, 16 * 32);
    ck_assert_int_eq(imb_transform_apply(&o, &wide, 1, 0, 0, out, NULL, err, sizeof err), 0);
    for (int k = 0; k < 16; k++) ck_assert_float_eq_tol(out[k], 200.0f / 255.0f, 1e-5f);
    free(im.px);
    free(im2.px);
    free(rgb.px);
    free(wide.px);
}
END_TEST

START_TEST(channel_conversion) {
    char err[256] = "";
    /* gray -> 3 replicates the plane */
    imb_image g = {6, 6, 1, malloc(36)};
    for (int k = 0; k < 36; k++) g.px[k] = (uint8_t)(k * 7);
    imb_transform_opts o = plain_opts(6, 0, 3);
    o.crop_pct = 1.0;
    float out[3 * 36];
    ck_assert_int_eq(imb_transform_apply(&o, &g, 1, 0, 0, out, NULL, err, sizeof err), 0);
    for (int k = 0; k < 36; k++) {
        ck_assert_float_eq(out[k], (float)g.px[k] / 255.0f);
        ck_assert_float_eq(out[36 + k], out[k]);
        ck_assert_float_eq(out[72 + k], out[k]);
    }
    /* RGB -> 1 is PIL's 'L': (R*299 + G*587 + B*114) / 1000, rounded */
    const uint8_t px[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 200, 30}};
    const int luma[4] = {76, 150, 29, 124};   /* exact: 76.245, 149.685, 29.07, 123.81 */
    imb_image rgb = {2, 2, 3, malloc(12)};
    memcpy(rgb.px, px, 12);
    imb_transform_opts l = plain_opts(2, 0, 1);
    l.crop_pct = 1.0;
    float o1[4];
    ck_assert_int_eq(imb_transform_apply(&l, &rgb, 1, 0, 0, o1, NULL, err, sizeof err), 0);
    for (int k = 0; k < 4; k++) ck_assert_float_eq(o1[k], (float)luma[k] / 255.0f);
    /* bad options and images are errors */
    l.channels = 2;
    ck_assert_int_eq(imb_transform_check(&l, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "channels"), "%s", err);
    l.channels = 1;
    l.crop_pct = 1.5;
    ck_assert_int_eq(imb_transform_check(&l, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "crop_pct"), "%s", err);
    imb_image bad = {2, 2, 4, rgb.px};
    l.crop_pct = 1.0;
    ck_assert_int_eq(imb_transform_apply(&l, &bad, 1, 0, 0, o1, NULL, err, sizeof err), -1);
    free(g.px);
    free(rgb.px);
}
END_TEST

START_TEST(train_crop_bounds) {
    imb_transform_opts o;
    imb_transform_defaults(&o, 32, 1);
    const int H = 100, W = 120;
    int flips = 0, fallbacks = 0;
    double min_s = 1, max_s = 0, min_r = 10, max_r = 0;
    for (int i = 0; i < 4000; i++) {
        imb_box b;
        int flip;
        imb_transform_crop(&o, H, W, 42, (uint64_t)(i / 100), (uint64_t)i, &b, &flip);
        ck_assert(b.h >= 1 && b.w >= 1 && b.y >= 0 && b.x >= 0 && b.y + b.h <= H && b.x + b.w <= W);
        flips += flip;
        double s = (double)b.h * b.w / (H * W), r = (double)b.w / b.h;
        if (b.h == H && b.w == W) {
            fallbacks++;
            continue;
        }
        /* w and h are rounded, so allow their +-0.5 */
        double tol_s = 0.5 * (b.h + b.w + 0.5) / (H * W), tol_r = 0.5 / b.h + 0.5 * r / b.h + 1e-9;
        ck_assert_msg(s >= 0.08 - tol_s && s <= 1.0 + tol_s, "scale %g", s);
        ck_assert_msg(r >= 0.75 - tol_r && r <= 4.0 / 3.0 + tol_r, "ratio %g (%dx%d)", r, b.h, b.w);
        if (s < min_s) min_s = s;
        if (s > max_s) max_s = s;
        if (r < min_r) min_r = r;
        if (r > max_r) max_r = r;
    }
    /* the draws cover the ranges and flips are about half */
    ck_assert_msg(min_s < 0.1 && max_s > 0.9, "scale range %g..%g", min_s, max_s);
    ck_assert_msg(min_r < 0.8 && max_r > 1.25, "ratio range %g..%g", min_r, max_r);
    ck_assert_msg(flips > 1800 && flips < 2200, "flips %d", flips);
    ck_assert_msg(fallbacks < 40, "fallbacks %d", fallbacks);

    /* no try can fit in a 1-pixel strip: torchvision's fallback exactly */
    imb_box b;
    int flip;
    imb_transform_crop(&o, 1, 100, 7, 0, 0, &b, &flip);
    ck_assert(b.y == 0 && b.x == 49 && b.h == 1 && b.w == 1);   /* w = round(1 * 4/3) = 1 */
    imb_transform_crop(&o, 100, 1, 7, 0, 0, &b, &flip);
    ck_assert(b.y == 49 && b.x == 0 && b.h == 1 && b.w == 1);   /* h = round(1 / (3/4)) = 1 */
    imb_transform_crop(&o, 2, 100, 7, 0, 0, &b, &flip);
    ck_assert(b.y == 0 && b.h == 2 && b.w == 3 && b.x == 48);  /* w = round(2 * 4/3 = 2.67) = 3 */
}
END_TEST

START_TEST(train_transform_determinism) {
    char err[256] = "";
    imb_image im = make_image(5, 64, 80, 3);
    imb_transform_opts o;
    imb_transform_defaults(&o, 24, 1);
    size_t n = imb_transform_out_len(&o);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    imb_transform_work w = {0};
    ck_assert_int_eq(imb_transform_apply(&o, &im, 9, 3, 11, a, &w, err, sizeof err), 0);
    /* another draw in between, then the same key: the same bytes */
    ck_assert_int_eq(imb_transform_apply(&o, &im, 9, 4, 12, b, &w, err, sizeof err), 0);
    ck_assert_int_eq(imb_transform_apply(&o, &im, 9, 3, 11, b, NULL, err, sizeof err), 0);
    ck_assert_mem_eq(a, b, n * sizeof *a);
    /* another epoch, index or seed: another crop */
    ck_assert_int_eq(imb_transform_apply(&o, &im, 9, 4, 11, b, &w, err, sizeof err), 0);
    ck_assert(memcmp(a, b, n * sizeof *a) != 0);
    ck_assert_int_eq(imb_transform_apply(&o, &im, 9, 3, 12, b, &w, err, sizeof err), 0);
    ck_assert(memcmp(a, b, n * sizeof *a) != 0);
    ck_assert_int_eq(imb_transform_apply(&o, &im, 10, 3, 11, b, &w, err, sizeof err), 0);
    ck_assert(memcmp(a, b, n * sizeof *a) != 0);
    /* the flip is a mirror of the unflipped crop: full-image box via scale (1, 1) and the
     * image's own aspect */
    imb_transform_opts f = o;
    f.scale[0] = f.scale[1] = 1.0;
    f.ratio[0] = f.ratio[1] = 80.0 / 64.0;
    f.hflip = 0.0;
    ck_assert_int_eq(imb_transform_apply(&f, &im, 9, 0, 0, a, &w, err, sizeof err), 0);
    f.hflip = 1.0;
    ck_assert_int_eq(imb_transform_apply(&f, &im, 9, 0, 0, b, &w, err, sizeof err), 0);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 24; y++)
            for (int x = 0; x < 24; x++)
                ck_assert_float_eq(a[(c * 24 + y) * 24 + x], b[(c * 24 + y) * 24 + 23 - x]);
    /* augment = 0: plain resize to size x size, no randomness (MNIST) */
    imb_image m = make_image(1, 28, 28, 1);
    imb_transform_opts q = plain_opts(28, 1, 1);
    q.augment = 0;
    float mo[28 * 28];
    ck_assert_int_eq(imb_transform_apply(&q, &m, 9, 5, 3, mo, &w, err, sizeof err), 0);
    for (int k = 0; k < 28 * 28; k++) ck_assert_float_eq(mo[k], (float)m.px[k] / 255.0f);
    imb_transform_work_free(&w);
    free(a);
    free(b);
    free(im.px);
    free(m.px);
}
END_TEST

/* ---- loader ---- */

enum { SAMPLE = 3 * 8 * 8 };   /* floats per sample at size 8 */

typedef struct fixture {
    dataset d;
    char path[512];
    imb_shard s;
} fixture;

/* n images whose label is their index, so batches reveal the order. */
static void open_fixture(fixture *fx, int n) {
    make_tmpdir();
    fx->d = make_dataset(n, n);
    for (int i = 0; i < n; i++) fx->d.lab[i] = i;
    shard_path(fx->path, sizeof fx->path, "loader.shard");
    write_shard(fx->path, &fx->d, n);
    char err[512] = "";
    ck_assert_msg(imb_shard_open(fx->path, FP, &fx->s, err, sizeof err) == IMB_SHARD_OK, "%s", err);
}

static void close_fixture(fixture *fx) {
    imb_shard_close(&fx->s);
    free_dataset(&fx->d);
    remove_tmpdir();
}

static imb_loader *new_loader(fixture *fx, int train, int batch, int shuffle, int drop_last, uint64_t seed, int threads) {
    imb_transform_opts t;
    imb_transform_defaults(&t, 8, train);
    char err[512] = "";
    imb_loader *l = imb_loader_new(&fx->s, &t, batch, shuffle, drop_last, seed, threads, err, sizeof err);
    ck_assert_msg(l != NULL, "%s", err);
    return l;
}

/* Labels of one epoch in order; returns how many samples the epoch had. */
static int epoch_labels(imb_loader *l, int32_t *out, int *nbatches) {
    float img[5 * 3 * 8 * 8];
    int32_t lab[5];
    int count, total = 0, rc;
    *nbatches = 0;
    while ((rc = imb_loader_next(l, img, lab, &count)) == 0) {
        memcpy(out + total, lab, sizeof *lab * (size_t)count);
        total += count;
        ++*nbatches;
    }
    ck_assert_int_eq(rc, 1);
    ck_assert_int_eq(count, 0);
    return total;
}

START_TEST(loader_epochs_visit_everything) {
    fixture fx;
    open_fixture(&fx, 23);
    imb_loader *l = new_loader(&fx, 1, 5, 1, 0, 77, 2);
    ck_assert_int_eq(imb_loader_batches(l), 5);
    int32_t e0[23], e1[23];
    int nb;
    ck_assert_int_eq(epoch_labels(l, e0, &nb), 23);
    ck_assert_int_eq(nb, 5);
    ck_assert_int_eq(imb_loader_epoch(l), 1);
    ck_assert_int_eq(imb_loader_batch_index(l), 0);
    ck_assert_int_eq(epoch_labels(l, e1, &nb), 23);
    int seen[23] = {0}, seen1[23] = {0};
    for (int i = 0; i < 23; i++) {
        seen[e0[i]]++;
        seen1[e1[i]]++;
    }
    for (int i = 0; i < 23; i++) ck_assert(seen[i] == 1 && seen1[i] == 1);
    ck_assert(memcmp(e0, e1, sizeof e0) != 0);   /* reshuffled per epoch */
    imb_loader_free(l);

    /* another seed, another order; no shuffle, identity order */
    int32_t o[23];
    l = new_loader(&fx, 1, 5, 1, 0, 78, 1);
    epoch_labels(l, o, &nb);
    ck_assert(memcmp(e0, o, sizeof e0) != 0);
    imb_loader_free(l);
    l = new_loader(&fx, 0, 5, 0, 0, 77, 3);
    epoch_labels(l, o, &nb);
    for (int i = 0; i < 23; i++) ck_assert_int_eq(o[i], i);
    imb_loader_free(l);
    close_fixture(&fx);
}
END_TEST

/* Two ranks with batch 2 together load exactly what one loader with batch 4 loads, images
 * included (augmentation depends on the sample, not on the rank). */
START_TEST(loader_ranks_split_the_global_batch) {
    fixture fx;
    open_fixture(&fx, 19);
    imb_transform_opts t;
    imb_transform_defaults(&t, 8, 1);
    char err[512] = "";
    imb_loader *one = imb_loader_new(&fx.s, &t, 4, 1, 1, 9, 2, err, sizeof err), *r[2];
    for (int k = 0; k < 2; k++) {
        r[k] = imb_loader_new_rank(&fx.s, &t, 2, 1, 1, 9, 1 + k, k, 2, err, sizeof err);
        ck_assert_msg(r[k] != NULL, "%s", err);
    }
    ck_assert_int_eq(imb_loader_batches(one), 4);
    ck_assert_int_eq(imb_loader_batches(r[0]), 4);
    static float img1[4 * 3 * 8 * 8], imgr[4 * 3 * 8 * 8];
    for (int e = 0; e < 2; e++)
        for (int b = 0; b <= 4; b++) {
            int32_t lab1[4], labr[4];
            int c1, c0, cr;
            int rc1 = imb_loader_next(one, img1, lab1, &c1);
            int rc0 = imb_loader_next(r[0], imgr, labr, &c0);
            int rcr = imb_loader_next(r[1], imgr + 2 * 3 * 8 * 8, labr + 2, &cr);
            ck_assert_int_eq(rc1, b == 4);
            ck_assert(rc0 == rc1 && rcr == rc1);
            if (rc1) continue;
            ck_assert(c1 == 4 && c0 == 2 && cr == 2);
            ck_assert(!memcmp(lab1, labr, sizeof lab1));
            ck_assert(!memcmp(img1, imgr, sizeof img1));
        }
    /* ranks need drop_last and a valid rank */
    ck_assert_ptr_null(imb_loader_new_rank(&fx.s, &t, 2, 1, 0, 9, 1, 0, 2, err, sizeof err));
    ck_assert_ptr_null(imb_loader_new_rank(&fx.s, &t, 2, 1, 1, 9, 1, 2, 2, err, sizeof err));
    /* 19 samples hold no global batch of 2 x 10 */
    ck_assert_ptr_null(imb_loader_new_rank(&fx.s, &t, 10, 1, 1, 9, 1, 0, 2, err, sizeof err));
    imb_loader_free(one);
    imb_loader_free(r[0]);
    imb_loader_free(r[1]);
    close_fixture(&fx);
}
END_TEST

START_TEST(loader_drop_last) {
    fixture fx;
    open_fixture(&fx, 10);
    int32_t o[10];
    int nb;
    imb_loader *l = new_loader(&fx, 1, 4, 1, 1, 5, 2);
    ck_assert_int_eq(imb_loader_batches(l), 2);
    ck_assert_int_eq(epoch_labels(l, o, &nb), 8);
    ck_assert_int_eq(nb, 2);
    imb_loader_free(l);
    l = new_loader(&fx, 1, 4, 1, 0, 5, 2);
    ck_assert_int_eq(imb_loader_batches(l), 3);
    ck_assert_int_eq(epoch_labels(l, o, &nb), 10);
    ck_assert_int_eq(nb, 3);
    imb_loader_free(l);
    /* a batch larger than the dataset with drop_last has nothing to give */
    imb_transform_opts t;
    imb_transform_defaults(&t, 8, 1);
    char err[512] = "";
    ck_assert_ptr_null(imb_loader_new(&fx.s, &t, 11, 1, 1, 5, 1, err, sizeof err));
    ck_assert_msg(strstr(err, "drop_last"), "%s", err);
    ck_assert_ptr_null(imb_loader_new(&fx.s, &t, 4, 1, 1, 5, 0, err, sizeof err));
    close_fixture(&fx);
}
END_TEST

/* Runs `batches` calls of next (epoch ends included) into one buffer per call. */
static void run_batches(imb_loader *l, int calls, float *img, int32_t *lab, int *counts, int *rcs) {
    size_t per = 5 * 3 * 8 * 8;
    for (int k = 0; k < calls; k++) rcs[k] = imb_loader_next(l, img + k * per, lab + k * 5, &counts[k]);
}

START_TEST(loader_threads_bit_identical) {
    fixture fx;
    open_fixture(&fx, 23);
    enum { CALLS = 14 };   /* over two epochs of 5 batches + end markers */
    size_t per = 5 * 3 * 8 * 8;
    float *i1 = calloc(CALLS * per, sizeof(float)), *i3 = calloc(CALLS * per, sizeof(float));
    int32_t l1[CALLS * 5] = {0}, l3[CALLS * 5] = {0};
    int c1[CALLS], c3[CALLS], r1[CALLS], r3[CALLS];
    imb_loader *l = new_loader(&fx, 1, 5, 1, 0, 99, 1);
    run_batches(l, CALLS, i1, l1, c1, r1);
    imb_loader_free(l);
    l = new_loader(&fx, 1, 5, 1, 0, 99, 3);
    run_batches(l, CALLS, i3, l3, c3, r3);
    imb_loader_free(l);
    ck_assert_mem_eq(r1, r3, sizeof r1);
    ck_assert_mem_eq(c1, c3, sizeof c1);
    ck_assert_int_eq(r1[5], 1);
    ck_assert_int_eq(c1[4], 3);
    ck_assert_mem_eq(l1, l3, sizeof l1);
    ck_assert_mem_eq(i1, i3, CALLS * per * sizeof(float));
    /* and the images really are the transformed samples */
    imb_transform_opts t;
    imb_transform_defaults(&t, 8, 1);
    float want[3 * 8 * 8];
    char err[256];
    imb_image v;
    ck_assert_int_eq(imb_shard_get(&fx.s, l1[7], &v, NULL), 0);
    ck_assert_int_eq(imb_transform_apply(&t, &v, 99, 0, (uint64_t)l1[7], want, NULL, err, sizeof err), 0);
    ck_assert_mem_eq(i1 + per + 2 * SAMPLE, want, sizeof want);
    free(i1);
    free(i3);
    close_fixture(&fx);
}
END_TEST

START_TEST(loader_seek_resumes_exactly) {
    fixture fx;
    open_fixture(&fx, 23);
    enum { CALLS = 20 };
    size_t per = 5 * 3 * 8 * 8;
    float *ref = calloc(CALLS * per, sizeof(float)), *got = calloc(per, sizeof(float));
    int32_t rl[CALLS * 5] = {0}, gl[5];
    int rc_[CALLS], cn[CALLS];
    imb_loader *l = new_loader(&fx, 1, 5, 1, 0, 3, 2);
    run_batches(l, CALLS, ref, rl, cn, rc_);
    /* calls 0..4 are epoch 0, 5 its end, 6..10 epoch 1, 11 its end, 12..16 epoch 2 */
    int64_t e, k;
    imb_loader_position(l, &e, &k);
    ck_assert(e == 3 && k == 2);
    imb_loader_free(l);

    const int at[][3] = {{1, 3, 9}, {2, 0, 12}, {0, 4, 4}, {1, 0, 6}, {0, 0, 0}};
    l = new_loader(&fx, 1, 5, 1, 0, 3, 3);
    int count;
    for (int t = 0; t < 5; t++) {
        ck_assert_int_eq(imb_loader_seek(l, at[t][0], at[t][1]), 0);
        imb_loader_position(l, &e, &k);
        ck_assert(e == at[t][0] && k == at[t][1]);
        int j = at[t][2];
        ck_assert_int_eq(imb_loader_next(l, got, gl, &count), 0);
        ck_assert_int_eq(count, cn[j]);
        ck_assert_mem_eq(gl, rl + j * 5, sizeof *gl * (size_t)count);
        ck_assert_mem_eq(got, ref + j * per, sizeof(float) * SAMPLE * (size_t)count);
        /* and it continues in step */
        ck_assert_int_eq(imb_loader_next(l, got, gl, &count), rc_[j + 1]);
        ck_assert_int_eq(count, cn[j + 1]);
        ck_assert_mem_eq(got, ref + (j + 1) * per, sizeof(float) * SAMPLE * (size_t)count);
    }
    /* seek to the end of an epoch, then past the range */
    ck_assert_int_eq(imb_loader_seek(l, 1, 5), 0);
    ck_assert_int_eq(imb_loader_next(l, got, gl, &count), 1);
    ck_assert_int_eq(imb_loader_epoch(l), 2);
    ck_assert_int_eq(imb_loader_next(l, got, gl, &count), 0);
    ck_assert_mem_eq(got, ref + 12 * per, sizeof(float) * SAMPLE * (size_t)count);
    ck_assert_int_eq(imb_loader_seek(l, 1, 6), -1);
    ck_assert_msg(strstr(imb_loader_error(l), "seek"), "%s", imb_loader_error(l));
    ck_assert_int_eq(imb_loader_seek(l, -1, 0), -1);
    imb_loader_free(l);
    free(ref);
    free(got);
    close_fixture(&fx);
}
END_TEST

START_TEST(loader_free_mid_epoch) {
    /* stopping with work in flight joins cleanly (valgrind/helgrind runs check no leaks) */
    fixture fx;
    open_fixture(&fx, 23);
    for (int threads = 1; threads <= 4; threads++) {
        imb_loader *l = new_loader(&fx, 1, 5, 1, 0, 1, threads);
        float img[5 * 3 * 8 * 8];
        int32_t lab[5];
        int count;
        ck_assert_int_eq(imb_loader_next(l, img, lab, &count), 0);
        imb_loader_free(l);
        l = new_loader(&fx, 1, 5, 1, 0, 1, threads);
        imb_loader_free(l);   /* before any next */
    }
    close_fixture(&fx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, shard_round_trip);
    tcase_add_test(tc, shard_detects_damage);
    tcase_add_test(tc, shard_write_is_atomic_and_streams);
    tcase_add_test(tc, cache_path_and_fingerprint);
    tcase_add_test(tc, resample_known_values);
    tcase_add_test(tc, eval_centre_crop);
    tcase_add_test(tc, channel_conversion);
    tcase_add_test(tc, train_crop_bounds);
    tcase_add_test(tc, train_transform_determinism);
    tcase_add_test(tc, loader_epochs_visit_everything);
    tcase_add_test(tc, loader_drop_last);
    tcase_add_test(tc, loader_ranks_split_the_global_batch);
    tcase_add_test(tc, loader_threads_bit_identical);
    tcase_add_test(tc, loader_seek_resumes_exactly);
    tcase_add_test(tc, loader_free_mid_epoch);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
