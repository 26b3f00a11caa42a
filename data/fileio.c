/* File-system helpers for the data readers (see fileio.h). */
#include "fileio.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int imb_errf(char *err, size_t errn, const char *fmt, ...) {
    if (err && errn) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errn, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int imb_file_read(const char *path, uint8_t **buf, size_t *n, char *err, size_t errn) {
    *buf = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return imb_errf(err, errn, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return imb_errf(err, errn, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return imb_errf(err, errn, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a folder, not a file" : "not a regular file");
    }
    if (st.st_size == 0) {
        fclose(f);
        return imb_errf(err, errn, "%s: empty file", path);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *b = malloc(size + 1);
    if (!b) {
        fclose(f);
        return imb_errf(err, errn, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = fread(b, 1, size, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || got != size) {
        free(b);
        return imb_errf(err, errn, "%s: read error (%zu of %zu bytes)", path, got, size);
    }
    b[size] = 0;
    *buf = b;
    *n = size;
    return 0;
}

int imb_file_write(const char *path, const void *buf, size_t n, char *err, size_t errn) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) return imb_errf(err, errn, "%s: out of memory", path);
    snprintf(tmp, len + 16, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(tmp);
        return imb_errf(err, errn, "%s: %s", path, strerror(e));
    }
    size_t put = fwrite(buf, 1, n, f);
    int bad = put != n || fflush(f) != 0;
    int e = errno;
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        if (!bad) e = errno;
        unlink(tmp);
        free(tmp);
        return imb_errf(err, errn, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}

int imb_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int imb_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int imb_mkdirs(const char *path, char *err, size_t errn) {
    char *p = imb_strdup(path);
    if (!p) return imb_errf(err, errn, "%s: out of memory", path);
    /* create each prefix in turn; EEXIST on a folder is fine */
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && !(errno == EEXIST && imb_is_dir(p))) {
                int e = errno;
                imb_errf(err, errn, "%s: cannot create folder: %s", p, strerror(e));
                free(p);
                return -1;
            }
            *s = c;
            if (c == 0) break;
        }
    }
    free(p);
    return 0;
}

char *imb_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *imb_path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    int slash = na > 0 && a[na - 1] != '/';
    char *p = malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    if (slash) p[na] = '/';
    memcpy(p + na + slash, b, nb + 1);
    return p;
}

int imb_has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    return strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".png") == 0;
}

int imb_strlist_push(imb_strlist *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **ns = realloc(l->s, sizeof *ns * (size_t)cap);
        if (!ns) return -1;
        l->s = ns;
        l->cap = cap;
    }
    char *d = imb_strdup(s);
    if (!d) return -1;
    l->s[l->n++] = d;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void imb_strlist_sort(imb_strlist *l) {
    if (l->n > 1) qsort(l->s, (size_t)l->n, sizeof *l->s, cmp_str);
}

int imb_strlist_find(const imb_strlist *l, const char *s) {
    if (l->n == 0) return -1;
    char *const *hit = bsearch(&s, l->s, (size_t)l->n, sizeof *l->s, cmp_str);
    return hit ? (int)(hit - l->s) : -1;
}

void imb_strlist_free(imb_strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    l->s = NULL;
    l->n = l->cap = 0;
}

int imb_dir_list(const char *dir, int what, imb_strlist *out, char *err, size_t errn) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return imb_errf(err, errn, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
        if (e->d_name[0] == '.') continue;
        int isdir, isfile;
        if (e->d_type == DT_DIR || e->d_type == DT_REG) {
            isdir = e->d_type == DT_DIR;
            isfile = !isdir;
        } else {   /* symlink or a file system without d_type: ask stat, which follows links */
            char *p = imb_path_join(dir, e->d_name);
            struct stat st;
            int ok = p && stat(p, &st) == 0;
            free(p);
            isdir = ok && S_ISDIR(st.st_mode);
            isfile = ok && S_ISREG(st.st_mode);
        }
        if (((what & IMB_LIST_DIRS) && isdir) || ((what & IMB_LIST_FILES) && isfile)) {
            if (imb_strlist_push(out, e->d_name) != 0) {
                closedir(d);
                imb_strlist_free(out);
                return imb_errf(err, errn, "%s: out of memory listing the folder", dir);
            }
        }
    }
    int rerr = errno;
    closedir(d);
    if (rerr) {
        imb_strlist_free(out);
        return imb_errf(err, errn, "%s: %s", dir, strerror(rerr));
    }
    imb_strlist_sort(out);
    return 0;
}

char *imb_next_line(char **cur) {
    char *s = *cur;
    if (!s || !*s) return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = 0;
        *cur = nl + 1;
    } else {
        *cur = s + strlen(s);
    }
    size_t n = strlen(s);
    if (n && s[n - 1] == '\r') s[n - 1] = 0;
    return s;
}

char *imb_trim(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

int imb_fsync_dir_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == path) strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) { memcpy(dir, path, (size_t)(slash - path)); dir[slash - path] = 0; }
    else return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}
