/* Helpers for the data tests (see datatest.h). */
#include "datatest.h"
#include "synth.h"
#include <check.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *dt_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[PATHN];
    snprintf(tmpl, sizeof tmpl, "%s/imb-data-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char *p = strdup(tmpl);
    ck_assert_ptr_nonnull(p);
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void dt_rm_tree(const char *path) {
    if (path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *dt_path(char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, PATHN, fmt, ap);
    va_end(ap);
    return buf;
}

void dt_write(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

uint8_t *dt_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return b;
}

char *dt_synth(const char *layout, int per_class_train, int per_class_val) {
    char *root = dt_tmpdir(), err[512] = "";
    int rc = imb_synth_write(layout, root, per_class_train, per_class_val, 7, err, sizeof err);
    ck_assert_msg(rc == 0, "synth %s: %s", layout, err);
    return root;
}

void dt_err_has(const char *err, ...) {
    va_list ap;
    va_start(ap, err);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        ck_assert_msg(strstr(err, s) != NULL, "error \"%s\" does not mention \"%s\"", err, s);
    va_end(ap);
}
