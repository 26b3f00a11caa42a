/* Image codec and resize tests: round trips, odd files (PNG named .JPEG, gray, CMYK,
 * PNG colour types), truncated/corrupt/empty inputs, resize against Pillow's numbers. */
#include "datatest.h"
#include "image.h"
#include "synth.h"
#include <check.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

Suite *image_suite(void);

static imb_image synth(int cls, int h, int w, int c) {
    imb_image im;
    ck_assert_int_eq(imb_synth_image(cls, h, w, c, 7, 1, &im), 0);
    return im;
}

/* a smooth image, which JPEG keeps closely */
static imb_image gradient(int h, int w, int c) {
    imb_image im;
    ck_assert_int_eq(imb_image_alloc(&im, h, w, c), 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) im.px[((size_t)y * w + x) * c + ch] = (uint8_t)(40 + 3 * x + 2 * y + 30 * ch);
    return im;
}

static double mean_abs_diff(const imb_image *a, const imb_image *b) {
    ck_assert(a->h == b->h && a->w == b->w && a->c == b->c);
    double s = 0;
    size_t n = (size_t)a->h * a->w * a->c;
    for (size_t i = 0; i < n; i++) s += abs((int)a->px[i] - (int)b->px[i]);
    return s / (double)n;
}

static void load_ok(const char *path, imb_image *out) {
    char err[512] = "";
    int rc = imb_image_load(path, out, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
}

/* loading must fail, name the file and leave *out empty */
static void load_fails(const char *path, const char *what) {
    char err[512] = "";
    imb_image im;
    ck_assert_int_eq(imb_image_load(path, &im, err, sizeof err), -1);
    ck_assert_ptr_null(im.px);
    dt_err_has(err, path, what, NULL);
}

START_TEST(png_round_trip) {
    char *dir = dt_tmpdir(), p[PATHN], err[512] = "";
    for (int c = 1; c <= 3; c += 2) {
        imb_image im = synth(3, 21, 34, c), back;
        ck_assert_msg(imb_image_write_png(dt_path(p, "%s/x%d.png", dir, c), &im, err, sizeof err) == 0, "%s", err);
        load_ok(p, &back);
        ck_assert(back.h == 21 && back.w == 34 && back.c == c);
        ck_assert_mem_eq(back.px, im.px, (size_t)21 * 34 * c);
        imb_image_free(&im);
        imb_image_free(&back);
    }
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(jpeg_round_trip) {
    char *dir = dt_tmpdir(), p[PATHN], err[512] = "";
    for (int c = 1; c <= 3; c += 2) {
        imb_image im = gradient(30, 40, c), back;
        ck_assert_msg(imb_image_write_jpeg(dt_path(p, "%s/x%d.jpg", dir, c), &im, 95, err, sizeof err) == 0, "%s", err);
        load_ok(p, &back);
        ck_assert(back.h == 30 && back.w == 40 && back.c == c);
        double d = mean_abs_diff(&im, &back);
        ck_assert_msg(d < 2.0, "JPEG q95 mean abs error %.2f", d);
        imb_image_free(&im);
        imb_image_free(&back);
    }
    imb_image im = gradient(8, 8, 3);
    ck_assert_int_eq(imb_image_write_jpeg(p, &im, 0, err, sizeof err), -1);   /* quality out of range */
    imb_image_free(&im);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(png_named_jpeg_decodes) {
    char *dir = dt_tmpdir(), p[PATHN], err[512] = "";
    imb_image im = synth(0, 16, 20, 3), back;
    ck_assert_int_eq(imb_image_write_png(dt_path(p, "%s/n02105855_2933.JPEG", dir), &im, err, sizeof err), 0);
    load_ok(p, &back);
    ck_assert(back.c == 3 && back.h == 16 && back.w == 20);
    ck_assert_mem_eq(back.px, im.px, (size_t)16 * 20 * 3);
    imb_image_free(&im);
    imb_image_free(&back);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(gray_jpeg_stays_one_channel) {
    char *dir = dt_tmpdir(), p[PATHN], err[512] = "";
    imb_image im = gradient(17, 23, 1), back;
    ck_assert_int_eq(imb_image_write_jpeg(dt_path(p, "%s/g.JPEG", dir), &im, 90, err, sizeof err), 0);
    load_ok(p, &back);
    ck_assert_int_eq(back.c, 1);
    imb_image_free(&im);
    imb_image_free(&back);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(cmyk_jpeg_becomes_rgb) {
    char *dir = dt_tmpdir(), p[PATHN], err[512] = "";
    /* four flat 16x16 quadrants: red, green, blue, light gray */
    static const uint8_t col[4][3] = {{220, 30, 30}, {30, 200, 40}, {20, 40, 210}, {200, 200, 200}};
    imb_image im, back;
    ck_assert_int_eq(imb_image_alloc(&im, 32, 32, 3), 0);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) memcpy(im.px + (y * 32 + x) * 3, col[(y / 16) * 2 + x / 16], 3);
    ck_assert_msg(imb_image_write_jpeg_cmyk(dt_path(p, "%s/cmyk.JPEG", dir), &im, 95, err, sizeof err) == 0, "%s", err);
    /* make sure the file really is a 4-component JPEG */
    size_t n;
    uint8_t *buf = dt_read(p, &n);
    tjhandle tj = tjInitDecompress();
    int w, h, ss, cs;
    ck_assert_int_eq(tjDecompressHeader3(tj, buf, n, &w, &h, &ss, &cs), 0);
    ck_assert(cs == TJCS_YCCK || cs == TJCS_CMYK);
    tjDestroy(tj);
    free(buf);
    load_ok(p, &back);
    ck_assert_int_eq(back.c, 3);
    for (int q = 0; q < 4; q++) {
        const uint8_t *px = back.px + ((8 + 16 * (q / 2)) * 32 + 8 + 16 * (q % 2)) * 3;
        for (int ch = 0; ch < 3; ch++)
            ck_assert_msg(abs(px[ch] - col[q][ch]) <= 12, "quadrant %d channel %d: %d vs %d", q, ch, px[ch], col[q][ch]);
    }
    imb_image_free(&im);
    imb_image_free(&back);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

/* writes a valid file of each kind into dir and returns its bytes */
static uint8_t *valid_file(const char *dir, int png, char *path, size_t *n) {
    char err[512] = "";
    imb_image im = synth(9, 64, 64, 3);
    if (png) ck_assert_int_eq(imb_image_write_png(dt_path(path, "%s/ok.png", dir), &im, err, sizeof err), 0);
    else ck_assert_int_eq(imb_image_write_jpeg(dt_path(path, "%s/ok.JPEG", dir), &im, 90, err, sizeof err), 0);
    imb_image_free(&im);
    return dt_read(path, n);
}

START_TEST(truncated_jpeg_is_error) {
    char *dir = dt_tmpdir(), p[PATHN], q[PATHN];
    size_t n;
    uint8_t *buf = valid_file(dir, 0, p, &n);
    size_t cuts[] = {n / 2, n / 4, 40, 3};   /* mid-data, early data, inside the header, magic only */
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        dt_write(dt_path(q, "%s/cut%zu.JPEG", dir, i), buf, cuts[i]);
        load_fails(q, "JPEG");
    }
    free(buf);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(truncated_png_is_error) {
    char *dir = dt_tmpdir(), p[PATHN], q[PATHN];
    size_t n;
    uint8_t *buf = valid_file(dir, 1, p, &n);
    size_t cuts[] = {n / 2, n - 12, 30, 8, 6};   /* mid-data, IEND missing, in IHDR, signature only, half signature */
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        dt_write(dt_path(q, "%s/cut%zu.png", dir, i), buf, cuts[i]);
        load_fails(q, "PNG");
    }
    /* a damaged byte inside the pixel data: the chunk CRC catches it */
    buf[n / 2] ^= 0x5A;
    dt_write(dt_path(q, "%s/flipped.png", dir), buf, n);
    load_fails(q, "PNG");
    free(buf);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(junk_before_jpeg_end_is_accepted) {
    /* bytes between the last scan and the EOI marker: libjpeg warns, the image is whole
     * (a few real ImageNet files are like this) */
    char *dir = dt_tmpdir(), p[PATHN], q[PATHN];
    size_t n;
    uint8_t *buf = valid_file(dir, 0, p, &n);
    ck_assert(buf[n - 2] == 0xFF && buf[n - 1] == 0xD9);
    uint8_t *junk = malloc(n + 100);
    memcpy(junk, buf, n - 2);
    memset(junk + n - 2, 0x00, 100);
    junk[n + 98] = 0xFF, junk[n + 99] = 0xD9;
    dt_write(dt_path(q, "%s/junk.JPEG", dir), junk, n + 100);
    imb_image a, b;
    load_ok(p, &a);
    load_ok(q, &b);
    ck_assert_mem_eq(a.px, b.px, (size_t)64 * 64 * 3);
    imb_image_free(&a);
    imb_image_free(&b);
    free(junk);
    free(buf);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(garbage_empty_and_missing_are_errors) {
    char *dir = dt_tmpdir(), p[PATHN], err[512] = "";
    uint8_t rnd[300];
    for (int i = 0; i < 300; i++) rnd[i] = (uint8_t)(i * 7919 % 251 + 1);
    dt_write(dt_path(p, "%s/random.JPEG", dir), rnd, sizeof rnd);
    load_fails(p, "not a JPEG or PNG");
    dt_write(dt_path(p, "%s/empty.png", dir), rnd, 0);
    load_fails(p, "empty");
    load_fails(dt_path(p, "%s/missing.png", dir), "No such file");
    load_fails(dir, "folder");
    /* the right magic followed by garbage */
    uint8_t fake[300];
    memcpy(fake, rnd, sizeof fake);
    memcpy(fake, "\xFF\xD8\xFF", 3);
    dt_write(dt_path(p, "%s/fake.JPEG", dir), fake, sizeof fake);
    load_fails(p, "JPEG");
    memcpy(fake, "\x89PNG\r\n\x1a\n", 8);
    dt_write(dt_path(p, "%s/fake.png", dir), fake, sizeof fake);
    load_fails(p, "PNG");
    /* from memory without a path */
    imb_image im;
    ck_assert_int_eq(imb_image_decode(rnd, sizeof rnd, NULL, &im, err, sizeof err), -1);
    dt_err_has(err, "(memory)", NULL);
    ck_assert_int_eq(imb_image_decode(rnd, 0, "x", &im, err, sizeof err), -1);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------ PNG colour types */

typedef struct png_spec {
    int ctype, depth, interlace;
} png_spec;

/* the value of sample (x, y, ch) in the test PNGs (palette: the index) */
static int sample(int x, int y, int ch) {
    return (x * 29 + y * 53 + ch * 97) & 0xFF;
}

/* writes a w x h PNG of the given type with sample() values (16-bit: as the high byte) */
static void write_png_raw(const char *path, int w, int h, png_spec s) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    if (setjmp(png_jmpbuf(png))) ck_abort_msg("libpng could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, s.depth, s.ctype, s.interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_color pal[256];
    if (s.ctype == PNG_COLOR_TYPE_PALETTE) {
        for (int i = 0; i < 256; i++) pal[i] = (png_color){(png_byte)i, (png_byte)(255 - i), (png_byte)(i * 3)};
        png_set_PLTE(png, info, pal, 256);
    }
    png_write_info(png, info);
    int c = png_get_channels(png, info), bytes = s.depth == 16 ? 2 : 1;
    png_bytep data = calloc((size_t)w * h * c * bytes + 1, 1);
    png_bytepp rows = malloc(sizeof *rows * (size_t)h);
    for (int y = 0; y < h; y++) {
        rows[y] = data + (size_t)y * w * c * bytes;
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                int v = sample(x, y, ch);
                png_bytep q = rows[y] + ((size_t)x * c + ch) * bytes;
                if (s.depth == 16) q[0] = (png_byte)v, q[1] = (png_byte)(255 - v);   /* high byte = v */
                else q[0] = (png_byte)v;
            }
    }
    if (s.depth == 1) {   /* repack 0/1 per pixel into bits for gray 1-bit */
        for (int y = 0; y < h; y++) {
            png_bytep r = rows[y];
            uint8_t packed[64] = {0};
            for (int x = 0; x < w; x++) packed[x / 8] |= (uint8_t)((sample(x, y, 0) & 1) << (7 - x % 8));
            memcpy(r, packed, (size_t)(w + 7) / 8);
        }
    }
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(rows);
    free(data);
}

START_TEST(png_colour_types_convert) {
    char *dir = dt_tmpdir(), p[PATHN];
    enum { W = 13, H = 9 };
    struct {
        png_spec s;
        int c;
    } cases[] = {
        {{PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE}, 3},
        {{PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7}, 3},
        {{PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE}, 3},
        {{PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE}, 3},
        {{PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE}, 1},
        {{PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE}, 1},
        {{PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE}, 1},
        {{PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE}, 1},
        {{PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        png_spec s = cases[i].s;
        write_png_raw(dt_path(p, "%s/t%zu.png", dir, i), W, H, s);
        imb_image im;
        load_ok(p, &im);
        ck_assert_msg(im.c == cases[i].c && im.w == W && im.h == H, "case %zu: %dx%dx%d", i, im.h, im.w, im.c);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int ch = 0; ch < im.c; ch++) {
                    int v = sample(x, y, ch), want = v, idx = sample(x, y, 0);
                    if (s.ctype == PNG_COLOR_TYPE_PALETTE) want = ch == 0 ? idx : ch == 1 ? 255 - idx : (idx * 3) & 0xFF;
                    if (s.depth == 1) want = (sample(x, y, 0) & 1) ? 255 : 0;
                    int got = im.px[((size_t)y * W + x) * im.c + ch];
                    ck_assert_msg(got == want, "case %zu at (%d,%d,%d): %d, want %d", i, x, y, ch, got, want);
                }
        imb_image_free(&im);
    }
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------ resize */

START_TEST(resize_constant_stays_constant) {
    imb_image im, out;
    ck_assert_int_eq(imb_image_alloc(&im, 37, 23, 3), 0);
    for (int i = 0; i < 37 * 23; i++) im.px[3 * i] = 77, im.px[3 * i + 1] = 140, im.px[3 * i + 2] = 201;
    int sizes[][2] = {{10, 9}, {64, 80}, {37, 23}, {1, 1}, {5, 100}, {200, 3}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        ck_assert_int_eq(imb_image_resize(&im, sizes[s][0], sizes[s][1], &out), 0);
        ck_assert(out.h == sizes[s][0] && out.w == sizes[s][1] && out.c == 3);
        for (int i = 0; i < out.h * out.w; i++)
            ck_assert(out.px[3 * i] == 77 && out.px[3 * i + 1] == 140 && out.px[3 * i + 2] == 201);
        imb_image_free(&out);
    }
    imb_image_free(&im);
}
END_TEST

START_TEST(resize_checkerboard_averages) {
    imb_image im, out;
    ck_assert_int_eq(imb_image_alloc(&im, 32, 32, 1), 0);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) im.px[y * 32 + x] = (uint8_t)((x + y) % 2 ? 255 : 0);
    for (int f = 2; f <= 8; f *= 2) {
        /* antialiasing: an inner output sees both colours with equal weight; the filter is
         * cut at the image border (as in Pillow), so border outputs are only near the mean.
         * Plain bilinear sampling would give 0s and 255s here. */
        ck_assert_int_eq(imb_image_resize(&im, 32 / f, 32 / f, &out), 0);
        for (int y = 0; y < out.h; y++)
            for (int x = 0; x < out.w; x++) {
                int v = out.px[y * out.w + x], border = x == 0 || y == 0 || x == out.w - 1 || y == out.h - 1;
                ck_assert_msg(border ? v >= 100 && v <= 155 : v >= 127 && v <= 128, "factor %d (%d,%d) = %d", f, x, y, v);
            }
        imb_image_free(&out);
    }
    imb_image_free(&im);
}
END_TEST

START_TEST(resize_matches_pillow) {
    /* reference values from Pillow 13: Image.fromarray(a).resize((w, h), Image.BILINEAR)
     * with a[y][x] = (37x + 91y + 13xy) % 256, 7 x 9; (2, 8) takes Pillow's vertical-first path */
    static const uint8_t r3x4[] = {107, 138, 139, 131, 122, 148, 137, 124, 109, 142, 137, 150};
    static const uint8_t r2x8[] = {93, 136, 136, 146, 134, 147, 116, 140, 113, 117, 118, 168, 141, 129, 128, 153};
    static const uint8_t r11x5[] = {21,  79,  148, 169, 37,  66,  133, 124, 151, 114, 127, 189, 103, 128,
                                    200, 178, 132, 155, 122, 157, 149, 134, 159, 135, 120, 60,  179, 125,
                                    160, 88,  112, 122, 140, 134, 114, 138, 108, 150, 117, 145, 130, 154,
                                    154, 111, 184, 103, 111, 168, 132, 162, 81,  70,  178, 150, 139};
    struct {
        int h, w;
        const uint8_t *want;
    } cases[] = {{3, 4, r3x4}, {2, 8, r2x8}, {11, 5, r11x5}};
    imb_image im, out;
    ck_assert_int_eq(imb_image_alloc(&im, 7, 9, 1), 0);
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 9; x++) im.px[y * 9 + x] = (uint8_t)((x * 37 + y * 91 + x * y * 13) % 256);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ck_assert_int_eq(imb_image_resize(&im, cases[c].h, cases[c].w, &out), 0);
        ck_assert_mem_eq(out.px, cases[c].want, (size_t)cases[c].h * cases[c].w);
        imb_image_free(&out);
    }
    ck_assert_int_eq(imb_image_resize(&im, 0, 5, &out), -1);
    ck_assert_ptr_null(out.px);
    imb_image_free(&im);
}
END_TEST

Suite *image_suite(void) {
    Suite *s = suite_create("image");
    TCase *t = tcase_create("codec");
    tcase_add_test(t, png_round_trip);
    tcase_add_test(t, jpeg_round_trip);
    tcase_add_test(t, png_named_jpeg_decodes);
    tcase_add_test(t, gray_jpeg_stays_one_channel);
    tcase_add_test(t, cmyk_jpeg_becomes_rgb);
    tcase_add_test(t, truncated_jpeg_is_error);
    tcase_add_test(t, truncated_png_is_error);
    tcase_add_test(t, junk_before_jpeg_end_is_accepted);
    tcase_add_test(t, garbage_empty_and_missing_are_errors);
    tcase_add_test(t, png_colour_types_convert);
    suite_add_tcase(s, t);
    TCase *r = tcase_create("resize");
    tcase_add_test(r, resize_constant_stays_constant);
    tcase_add_test(r, resize_checkerboard_averages);
    tcase_add_test(r, resize_matches_pillow);
    suite_add_tcase(s, r);
    return s;
}
