/* aclImdb reader: <root>/{train,test}/{neg,pos}/<id>_<rating>.txt, one review per file. */
#include "text.h"
#include "fileio.h"
#include "shard.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const label_dirs[2] = { "neg", "pos" };

static int split_dir(const char *split, const char **name, char *err, size_t errn) {
    if (!strcmp(split, "train")) *name = "train";
    else if (!strcmp(split, "test") || !strcmp(split, "val")) *name = "test";
    else return imb_errf(err, errn, "imdb: unknown split '%s' (train, test)", split);
    return 0;
}

/* "<id>_<rating>.txt" with the rating allowed for the folder */
static int parse_name(const char *name, int label, long *id, long *rating) {
    const char *p = name;
    char *end;
    if (!isdigit((unsigned char)*p)) return -1;
    *id = strtol(p, &end, 10);
    if (*end != '_' || !isdigit((unsigned char)end[1])) return -1;
    *rating = strtol(end + 1, &end, 10);
    if (strcmp(end, ".txt")) return -1;
    return label ? (*rating >= 7 && *rating <= 10 ? 0 : -1) : (*rating >= 1 && *rating <= 4 ? 0 : -1);
}

typedef struct entry { long id, rating; char *path; } entry;

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->rating > y->rating) - (x->rating < y->rating);
}

/* The files of one label folder, checked and sorted. */
static int list_label(const char *root, const char *split, int label, entry **out, int *n, char *err, size_t errn) {
    *out = NULL;
    *n = 0;
    const char *sd = NULL;
    if (split_dir(split, &sd, err, errn)) return -1;
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/%s/%s", root, sd, label_dirs[label]) >= (int)sizeof dir)
        return imb_errf(err, errn, "%s: path too long", root);
    if (!imb_is_dir(dir)) return imb_errf(err, errn, "%s: missing folder (aclImdb layout: %s/{neg,pos}/<id>_<rating>.txt)", dir, sd);
    imb_strlist names = { 0 };
    if (imb_dir_list(dir, IMB_LIST_FILES | IMB_LIST_DIRS, &names, err, errn)) return -1;
    int rc = 0;
    entry *e = names.n ? calloc((size_t)names.n, sizeof *e) : NULL;
    if (!names.n) rc = imb_errf(err, errn, "%s: no reviews", dir);
    else if (!e) rc = imb_errf(err, errn, "%s: out of memory", dir);
    for (int i = 0; !rc && i < names.n; i++) {
        e[i].path = imb_path_join(dir, names.s[i]);
        if (!e[i].path) rc = imb_errf(err, errn, "%s: out of memory", dir);
        else if (!imb_is_file(e[i].path)) rc = imb_errf(err, errn, "%s: not a review file", e[i].path);
        else if (parse_name(names.s[i], label, &e[i].id, &e[i].rating))
            rc = imb_errf(err, errn, "%s: file name: expected <id>_<rating>.txt with a rating in %s", e[i].path,
                          label ? "7..10 (pos)" : "1..4 (neg)");
    }
    if (!rc) qsort(e, (size_t)names.n, sizeof *e, cmp_entry);
    if (rc && e)
        for (int i = 0; i < names.n; i++) free(e[i].path);
    if (rc) free(e);
    else {
        *out = e;
        *n = names.n;
    }
    imb_strlist_free(&names);
    return rc;
}

static void free_entries(entry *e, int n) {
    for (int i = 0; e && i < n; i++) free(e[i].path);
    free(e);
}

static int imdb_fingerprint(const char *root, const char *split, uint64_t *fp, char *err, size_t errn) {
    uint64_t h = imb_fingerprint_str(IMB_FINGERPRINT_INIT, "imdb");
    h = imb_fingerprint_u64(h, IMB_TEXT_NORM_VERSION);
    for (int label = 0; label < 2; label++) {
        entry *e;
        int n;
        if (list_label(root, split, label, &e, &n, err, errn)) return -1;
        int rc = 0;
        for (int i = 0; !rc && i < n; i++) rc = imb_fingerprint_file(&h, e[i].path, err, errn);
        free_entries(e, n);
        if (rc) return -1;
    }
    *fp = h;
    return 0;
}

/* "<br />" in any case and spacing variant ("<br>", "<br/>", "<BR />") becomes a space, in place */
static size_t strip_br(char *s, size_t n) {
    size_t r = 0, w = 0;
    while (r < n) {
        if (s[r] == '<' && r + 2 < n && (s[r + 1] | 0x20) == 'b' && (s[r + 2] | 0x20) == 'r') {
            size_t k = r + 3;
            while (k < n && s[k] == ' ') k++;
            if (k < n && s[k] == '/') k++;
            if (k < n && s[k] == '>') {
                s[w++] = ' ';
                r = k + 1;
                continue;
            }
        }
        s[w++] = s[r++];
    }
    s[w] = 0;
    return w;
}

static int read_review(const char *path, int label, imb_text_list *out, char *err, size_t errn) {
    uint8_t *buf;
    size_t n;
    if (imb_file_read(path, &buf, &n, err, errn)) return -1;
    long bad = imb_text_utf8_invalid_at((char *)buf, n);
    if (bad >= 0) {
        long line = 1;
        for (long i = 0; i < bad; i++) line += buf[i] == '\n';
        free(buf);
        return imb_errf(err, errn, "%s:%ld: invalid UTF-8 at byte %ld of the file", path, line, bad);
    }
    n = strip_br((char *)buf, n);
    char *text, why[128];
    int rc = imb_text_normalize((char *)buf, n, &text, why, sizeof why);
    free(buf);
    if (rc) return imb_errf(err, errn, "%s: %s", path, why);
    if (!*text) {
        free(text);
        return imb_errf(err, errn, "%s: no text after normalisation", path);
    }
    out->texts[out->n] = text;
    out->labels[out->n++] = label;
    return 0;
}

static int imdb_read(const char *root, const char *split, imb_text_list *out, char *err, size_t errn) {
    memset(out, 0, sizeof *out);
    entry *e[2] = { NULL, NULL };
    int n[2] = { 0, 0 }, rc = 0;
    for (int label = 0; label < 2 && !rc; label++) rc = list_label(root, split, label, &e[label], &n[label], err, errn);
    if (!rc) {
        out->texts = calloc((size_t)(n[0] + n[1]), sizeof *out->texts);
        out->labels = calloc((size_t)(n[0] + n[1]), sizeof *out->labels);
        out->class_names = calloc(2, sizeof *out->class_names);
        if (out->class_names) out->nclasses = 2;
        for (int k = 0; k < 2 && out->class_names; k++) out->class_names[k] = imb_strdup(label_dirs[k]);
        if (!out->texts || !out->labels || !out->class_names || !out->class_names[0] || !out->class_names[1])
            rc = imb_errf(err, errn, "%s: out of memory", root);
    }
    for (int label = 0; label < 2 && !rc; label++)
        for (int i = 0; i < n[label] && !rc; i++) rc = read_review(e[label][i].path, label, out, err, errn);
    free_entries(e[0], n[0]);
    free_entries(e[1], n[1]);
    if (rc) imb_text_list_free(out);
    return rc;
}

const imb_text_reader imb_text_imdb = { "imdb", imdb_fingerprint, imdb_read };
