/* File-system helpers for the data readers: whole-file reads, sorted listings, paths, "<path>: <what>" errors. */
#ifndef IMB_FILEIO_H
#define IMB_FILEIO_H
#include <stddef.h>
#include <stdint.h>

/* snprintf into err (NULL or errn == 0 is allowed); always returns -1 so callers can
 * `return imb_errf(...)`. */
int imb_errf(char *err, size_t errn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reads a whole file into a malloc'd buffer with a NUL appended (so text files can be
 * parsed in place). An empty file is an error: no reader has a use for one. */
int imb_file_read(const char *path, uint8_t **buf, size_t *n, char *err, size_t errn);
/* Writes buf to path through a temporary file and rename, so readers never see half a file. */
int imb_file_write(const char *path, const void *buf, size_t n, char *err, size_t errn);
/* mkdir -p */
int imb_mkdirs(const char *path, char *err, size_t errn);
/* fsync the directory holding path (after a rename, so the new name is durable); 0 or -1 */
int imb_fsync_dir_of(const char *path);
int imb_is_dir(const char *path);
int imb_is_file(const char *path);

/* "a/b" in a new malloc'd string (NULL when out of memory) */
char *imb_path_join(const char *a, const char *b);
char *imb_strdup(const char *s);
/* Case-insensitive: does name end in one of the image extensions the readers accept
 * (.jpeg .jpg .png, so .JPEG too)? */
int imb_has_image_ext(const char *name);

/* A growable list of malloc'd strings. */
typedef struct imb_strlist {
    int n, cap;
    char **s;
} imb_strlist;
int imb_strlist_push(imb_strlist *l, const char *s);   /* copies s; -1 when out of memory */
void imb_strlist_sort(imb_strlist *l);                 /* strcmp order, like Python's sorted() */
int imb_strlist_find(const imb_strlist *l, const char *s);   /* index in a sorted list, or -1 */
void imb_strlist_free(imb_strlist *l);

enum { IMB_LIST_FILES = 1, IMB_LIST_DIRS = 2 };
/* Names in dir (files and/or folders, symlinks followed), sorted with strcmp. Names that
 * start with '.' are skipped: they are never samples (.DS_Store, .ipynb_checkpoints, our
 * own .imbench cache). */
int imb_dir_list(const char *dir, int what, imb_strlist *out, char *err, size_t errn);

/* Splits a NUL-terminated text buffer into lines in place: returns the next line with its
 * "\n" / "\r\n" removed and *cur advanced, or NULL at the end. */
char *imb_next_line(char **cur);
/* Trims ASCII white space at both ends, in place. */
char *imb_trim(char *s);
#endif
