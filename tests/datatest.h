/* Helpers for the data tests: temp folders, file bytes, synth datasets. */
#ifndef IMB_DATATEST_H
#define IMB_DATATEST_H
#include <stddef.h>
#include <stdint.h>

#define PATHN 4096
/* mkdtemp under $TMPDIR (or /tmp); malloc'd path */
char *dt_tmpdir(void);
/* rm -rf */
void dt_rm_tree(const char *path);
/* snprintf into a PATHN buffer: dt_path(buf, "%s/train", root) */
char *dt_path(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dt_write(const char *path, const void *buf, size_t n);
/* malloc'd whole file; *n gets the size */
uint8_t *dt_read(const char *path, size_t *n);
/* a fresh temp folder holding imb_synth_write(layout, ..., seed 7); malloc'd root */
char *dt_synth(const char *layout, int per_class_train, int per_class_val);
/* ck_assert that err mentions each of the given substrings (NULL-terminated) */
void dt_err_has(const char *err, ...);
#endif
