/* AG-News reader: <root>/{train,test}.csv (RFC 4180, three quoted fields) and classes.txt. */
#include "text.h"
#include "fileio.h"
#include "shard.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NFIELDS = 3 };
static const char *const field_names[NFIELDS] = { "class", "title", "description" };

static int csv_name(const char *split, const char **name, char *err, size_t errn) {
    if (!strcmp(split, "train")) *name = "train.csv";
    else if (!strcmp(split, "test") || !strcmp(split, "val")) *name = "test.csv";
    else return imb_errf(err, errn, "agnews: unknown split '%s' (train, test)", split);
    return 0;
}

static int agnews_fingerprint(const char *root, const char *split, uint64_t *fp, char *err, size_t errn) {
    const char *name = NULL;
    if (csv_name(split, &name, err, errn)) return -1;
    char *csv = imb_path_join(root, name), *cls = imb_path_join(root, "classes.txt");
    uint64_t h = imb_fingerprint_str(IMB_FINGERPRINT_INIT, "agnews");
    h = imb_fingerprint_u64(h, IMB_TEXT_NORM_VERSION);
    int rc = !csv || !cls ? imb_errf(err, errn, "%s: out of memory", root)
                          : imb_fingerprint_file(&h, csv, err, errn) || imb_fingerprint_file(&h, cls, err, errn) ? -1 : 0;
    free(csv);
    free(cls);
    if (!rc) *fp = h;
    return rc;
}

/* classes.txt: one class name per non-empty line, label = line order */
static int read_classes(const char *root, imb_text_list *out, char *err, size_t errn) {
    char *path = imb_path_join(root, "classes.txt");
    if (!path) return imb_errf(err, errn, "%s: out of memory", root);
    uint8_t *buf;
    size_t n;
    int rc = imb_file_read(path, &buf, &n, err, errn);
    if (rc) {
        free(path);
        return -1;
    }
    int cap = 0;
    char *cur = (char *)buf, *line;
    while (!rc && (line = imb_next_line(&cur))) {
        line = imb_trim(line);
        if (!*line) continue;
        if (imb_text_utf8_invalid_at(line, strlen(line)) >= 0) {
            rc = imb_errf(err, errn, "%s: class %d: invalid UTF-8", path, out->nclasses + 1);
            break;
        }
        if (out->nclasses == cap) {
            cap = cap ? 2 * cap : 8;
            char **c = realloc(out->class_names, sizeof *c * (size_t)cap);
            if (!c) { rc = imb_errf(err, errn, "%s: out of memory", path); break; }
            out->class_names = c;
        }
        if (!(out->class_names[out->nclasses] = imb_strdup(line))) rc = imb_errf(err, errn, "%s: out of memory", path);
        else out->nclasses++;
    }
    if (!rc && out->nclasses < 2) rc = imb_errf(err, errn, "%s: %d classes listed, need at least 2", path, out->nclasses);
    free(buf);
    free(path);
    return rc;
}

/* The CSV scanner: the buffer is parsed in place (a field's decoded bytes are never more than
 * its raw bytes, so each field is written over its own raw text and NUL-terminated). */
typedef struct csv {
    char *p, *end;
    const char *path;
    long line;           /* line of *p (1-based) */
} csv;

/* One field at c->p. *sep gets ',' or '\n' (end of record, also at the end of the buffer). */
static int csv_field(csv *c, char **field, size_t *len, int *quoted, char *sep, long rec_line, int idx, char *err,
                     size_t errn) {
    char *w = c->p, *start = c->p;
    const char *name = idx < NFIELDS ? field_names[idx] : "extra field";
    *quoted = c->p < c->end && *c->p == '"';
    if (*quoted) {
        long open_line = c->line;
        c->p++;
        for (;;) {
            if (c->p >= c->end)
                return imb_errf(err, errn, "%s:%ld: %s: quoted field opened on line %ld is never closed", c->path,
                                rec_line, name, open_line);
            char ch = *c->p++;
            if (ch == '"') {
                if (c->p < c->end && *c->p == '"') { *w++ = '"'; c->p++; continue; }
                break;
            }
            if (ch == '\n') c->line++;
            *w++ = ch;
        }
        if (c->p < c->end && *c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n') c->p++;
        if (c->p < c->end && *c->p != ',' && *c->p != '\n')
            return imb_errf(err, errn, "%s:%ld: %s: text after the closing quote", c->path, c->line, name);
    } else {
        while (c->p < c->end && *c->p != ',' && *c->p != '\n') {
            if (*c->p == '"')
                return imb_errf(err, errn, "%s:%ld: %s: quote inside an unquoted field", c->path, c->line, name);
            *w++ = *c->p++;
        }
        if (w > start && w[-1] == '\r' && c->p < c->end && *c->p == '\n') w--;   /* CRLF */
    }
    *sep = c->p < c->end && *c->p == ',' ? ',' : '\n';
    if (c->p < c->end) {
        if (*c->p == '\n') c->line++;
        c->p++;
    }
    *w = 0;
    *field = start;
    *len = (size_t)(w - start);
    return 0;
}

static int push(imb_text_list *out, int *cap, char *text, int32_t label) {
    if (out->n == *cap) {
        int nc = *cap ? 2 * *cap : 1024;
        char **t = realloc(out->texts, sizeof *t * (size_t)nc);
        if (t) out->texts = t;
        int32_t *l = realloc(out->labels, sizeof *l * (size_t)nc);
        if (l) out->labels = l;
        if (!t || !l) return -1;
        *cap = nc;
    }
    out->texts[out->n] = text;
    out->labels[out->n++] = label;
    return 0;
}

static int parse_csv(const char *path, char *buf, size_t n, imb_text_list *out, char *err, size_t errn) {
    csv c = { buf, buf + n, path, 1 };
    if (n >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) c.p += 3;
    int cap = 0;
    while (c.p < c.end) {
        long rec_line = c.line;
        char *f[NFIELDS];
        size_t len[NFIELDS];
        int nf = 0, quoted = 0;
        char sep = ',';
        while (sep == ',') {
            char *fld = NULL;
            size_t fl = 0;
            if (csv_field(&c, &fld, &fl, &quoted, &sep, rec_line, nf, err, errn)) return -1;
            if (nf < NFIELDS) { f[nf] = fld; len[nf] = fl; }
            nf++;
        }
        if (nf == 1 && len[0] == 0 && !quoted) continue;   /* blank line */
        if (nf != NFIELDS)
            return imb_errf(err, errn, "%s:%ld: %s: expected 3 fields (class, title, description), got %d", path,
                            rec_line, nf < NFIELDS ? field_names[nf] : "extra field", nf);
        for (int k = 0; k < NFIELDS; k++) {
            long bad = imb_text_utf8_invalid_at(f[k], len[k]);
            if (bad >= 0)
                return imb_errf(err, errn, "%s:%ld: %s: invalid UTF-8 at byte %ld of the field", path, rec_line,
                                field_names[k], bad);
        }
        char *end;
        long cls = strtol(f[0], &end, 10);
        if (!len[0] || *end || f[0][0] < '0' || f[0][0] > '9' || cls < 1 || cls > out->nclasses)
            return imb_errf(err, errn, "%s:%ld: class: '%.32s' is not a class number in 1..%d", path, rec_line, f[0],
                            out->nclasses);
        len[1] = imb_text_unescape_agnews(f[1], len[1]);
        len[2] = imb_text_unescape_agnews(f[2], len[2]);
        char *joined = malloc(len[1] + len[2] + 2), *text, why[128];
        if (!joined) return imb_errf(err, errn, "%s: out of memory", path);
        memcpy(joined, f[1], len[1]);
        joined[len[1]] = ' ';
        memcpy(joined + len[1] + 1, f[2], len[2] + 1);
        int rc = imb_text_normalize(joined, len[1] + 1 + len[2], &text, why, sizeof why);
        free(joined);
        if (rc) return imb_errf(err, errn, "%s:%ld: title/description: %s", path, rec_line, why);
        if (!*text) {   /* a sample without a single token has nothing to classify */
            free(text);
            return imb_errf(err, errn, "%s:%ld: title/description: both empty after normalisation", path, rec_line);
        }
        if (push(out, &cap, text, (int32_t)(cls - 1))) {
            free(text);
            return imb_errf(err, errn, "%s: out of memory", path);
        }
    }
    if (!out->n) return imb_errf(err, errn, "%s: no records", path);
    return 0;
}

static int agnews_read(const char *root, const char *split, imb_text_list *out, char *err, size_t errn) {
    memset(out, 0, sizeof *out);
    const char *name = NULL;
    if (csv_name(split, &name, err, errn)) return -1;
    if (!imb_is_dir(root)) return imb_errf(err, errn, "%s: not a folder (expected the AG-News folder with %s)", root, name);
    if (read_classes(root, out, err, errn)) {
        imb_text_list_free(out);
        return -1;
    }
    char *path = imb_path_join(root, name);
    uint8_t *buf = NULL;
    size_t n;
    int rc = !path ? imb_errf(err, errn, "%s: out of memory", root) : imb_file_read(path, &buf, &n, err, errn);
    if (!rc) rc = parse_csv(path, (char *)buf, n, out, err, errn);
    free(buf);
    free(path);
    if (rc) imb_text_list_free(out);
    return rc;
}

const imb_text_reader imb_text_agnews = { "agnews", agnews_fingerprint, agnews_read };
