/* Run records: building, JSONL append (one write per line) and reading back, with jansson. */
#include "record.h"
#include "fileio.h"
#include "imb_commit.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef IMB_GIT_COMMIT
#define IMB_GIT_COMMIT "unknown"
#endif

const char *imb_git_commit(void) { return IMB_GIT_COMMIT; }

void imb_time_iso8601(char *buf, size_t n) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Standard string fields, by JSON name. */
static char **str_field(imb_record *r, const char *name) {
    struct { const char *n; char **f; } t[] = {
        { "time", &r->time }, { "commit", &r->commit }, { "task", &r->task }, { "backbone", &r->backbone },
        { "preset", &r->preset }, { "protocol", &r->protocol }, { "protocol_hash", &r->protocol_hash },
        { "device", &r->device }, { "precision", &r->precision },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(t[i].n, name)) return t[i].f;
    return NULL;
}

static const char *const standard[] = {
    "time", "commit", "task", "backbone", "preset", "options", "protocol", "protocol_hash", "off_protocol",
    "overrides", "seed", "device", "precision", "params", "flops_per_sample", "metrics", "samples_per_s", "wall_s",
};

static int is_standard(const char *name) {
    for (size_t i = 0; i < sizeof standard / sizeof *standard; i++)
        if (!strcmp(standard[i], name)) return 1;
    return 0;
}

void imb_record_init(imb_record *r) { memset(r, 0, sizeof *r); }

static void kv_free(imb_kvlist *l) {
    for (int i = 0; i < l->n; i++) { free(l->v[i].key); free(l->v[i].str); }
    free(l->v);
    memset(l, 0, sizeof *l);
}

void imb_record_free(imb_record *r) {
    if (!r) return;
    const char *names[] = { "time", "commit", "task", "backbone", "preset", "protocol", "protocol_hash", "device", "precision" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) free(*str_field(r, names[i]));
    kv_free(&r->options);
    kv_free(&r->metrics);
    kv_free(&r->extra);
    for (int i = 0; i < r->n_overrides; i++) free(r->overrides[i]);
    free(r->overrides);
    memset(r, 0, sizeof *r);
}

int imb_record_set(imb_record *r, const char *field, const char *value) {
    char **f = str_field(r, field);
    if (!f) return -1;
    char *c = NULL;
    if (value && !(c = strdup(value))) return -1;
    free(*f);
    *f = c;
    return 0;
}

static int kv_set(imb_kvlist *l, const char *key, imb_kv_type type, double num, const char *str) {
    char *s = NULL;
    if (str && !(s = strdup(str))) return -1;
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].key, key)) {
            free(l->v[i].str);
            l->v[i].type = type;
            l->v[i].num = num;
            l->v[i].str = s;
            return 0;
        }
    char *k = strdup(key);
    if (!k) { free(s); return -1; }
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 8;
        imb_kv *nv = realloc(l->v, sizeof *nv * (size_t)nc);
        if (!nv) { free(k); free(s); return -1; }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (imb_kv){ k, type, num, s };
    return 0;
}

int imb_record_option(imb_record *r, const char *key, const char *value) {
    return kv_set(&r->options, key, IMB_KV_STR, 0, value ? value : "");
}
int imb_record_option_num(imb_record *r, const char *key, double value) {
    return kv_set(&r->options, key, IMB_KV_NUM, value, NULL);
}
int imb_record_metric(imb_record *r, const char *name, double value) {
    return kv_set(&r->metrics, name, IMB_KV_NUM, value, NULL);
}
int imb_record_extra_num(imb_record *r, const char *key, double value) {
    return is_standard(key) ? -1 : kv_set(&r->extra, key, IMB_KV_NUM, value, NULL);
}
int imb_record_extra_str(imb_record *r, const char *key, const char *value) {
    return is_standard(key) ? -1 : kv_set(&r->extra, key, IMB_KV_STR, 0, value ? value : "");
}
int imb_record_extra_json(imb_record *r, const char *key, const char *json) {
    if (is_standard(key)) return -1;
    json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
    if (!j) return -1;   /* refuse text that would make the line unparsable */
    json_decref(j);
    return kv_set(&r->extra, key, IMB_KV_JSON, 0, json);
}

int imb_record_override(imb_record *r, const char *assignment) {
    char *c = strdup(assignment);
    char **g = c ? realloc(r->overrides, sizeof *g * (size_t)(r->n_overrides + 1)) : NULL;
    if (!g) { free(c); return -1; }
    r->overrides = g;
    r->overrides[r->n_overrides++] = c;
    return 0;
}

int imb_record_set_protocol(imb_record *r, const imb_protocol *p) {
    char h[IMB_PROTOCOL_HASH_LEN];
    imb_protocol_hash(p, h);
    if (imb_record_set(r, "protocol", p->name) || imb_record_set(r, "protocol_hash", h)) return -1;
    r->off_protocol = p->off_protocol;
    r->seed = (uint64_t)p->train.seed;
    for (int i = 0; i < r->n_overrides; i++) free(r->overrides[i]);
    r->n_overrides = 0;
    for (int i = 0; i < p->n_overrides; i++)
        if (imb_record_override(r, p->overrides[i])) return -1;
    return 0;
}

/* ---- writing ---- */

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *kv_value(const imb_kv *kv) {
    switch (kv->type) {
    case IMB_KV_NUM: return num_or_null(kv->num);
    case IMB_KV_STR: return json_string(kv->str);
    case IMB_KV_JSON: return json_loads(kv->str, JSON_DECODE_ANY, NULL);
    }
    return NULL;
}

/* jansson's *_new functions steal the reference, so a NULL (failed) value is counted as
 * an error and nothing leaks. */
static int put(json_t *o, const char *k, json_t *v) { return v ? json_object_set_new(o, k, v) : -1; }

static json_t *kv_object(const imb_kvlist *l) {
    json_t *o = json_object();
    for (int i = 0; o && i < l->n; i++)
        if (put(o, l->v[i].key, kv_value(&l->v[i]))) { json_decref(o); return NULL; }
    return o;
}

char *imb_record_to_json(const imb_record *r, char *err, size_t errn) {
    char now[32];
    imb_time_iso8601(now, sizeof now);
    json_t *o = json_object(), *ov = json_array();
    int bad = !o || !ov;
    for (int i = 0; !bad && i < r->n_overrides; i++) bad |= json_array_append_new(ov, json_string(r->overrides[i])) != 0;
    if (bad) { json_decref(o); json_decref(ov); snprintf(err, errn, "record: out of memory"); return NULL; }
    /* seeds above INT64_MAX do not fit a JSON integer in jansson: written as a string */
    json_t *seed = r->seed <= INT64_MAX ? json_integer((json_int_t)r->seed) : NULL;
    if (!seed) {
        char s[32];
        snprintf(s, sizeof s, "%llu", (unsigned long long)r->seed);
        seed = json_string(s);
    }
    bad |= put(o, "time", json_string(r->time ? r->time : now));
    bad |= put(o, "commit", json_string(r->commit ? r->commit : imb_git_commit()));
    bad |= put(o, "task", str_or_null(r->task));
    bad |= put(o, "backbone", str_or_null(r->backbone));
    bad |= put(o, "preset", str_or_null(r->preset));
    bad |= put(o, "options", kv_object(&r->options));
    bad |= put(o, "protocol", str_or_null(r->protocol));
    bad |= put(o, "protocol_hash", str_or_null(r->protocol_hash));
    bad |= put(o, "off_protocol", json_boolean(r->off_protocol));
    bad |= put(o, "overrides", ov);
    bad |= put(o, "seed", seed);
    bad |= put(o, "device", str_or_null(r->device));
    bad |= put(o, "precision", str_or_null(r->precision));
    bad |= put(o, "params", json_integer((json_int_t)r->params));
    bad |= put(o, "flops_per_sample", num_or_null(r->flops_per_sample));
    bad |= put(o, "metrics", kv_object(&r->metrics));
    bad |= put(o, "samples_per_s", num_or_null(r->samples_per_s));
    bad |= put(o, "wall_s", num_or_null(r->wall_s));
    for (int i = 0; i < r->extra.n; i++) bad |= put(o, r->extra.v[i].key, kv_value(&r->extra.v[i]));
    /* Compact output escapes control characters, so the line holds no raw newline.
     * 15 significant digits: 0.98 stays "0.98" (17 would print 0.97999999999999998)
     * and a decimal written with up to 15 digits reads back as the same double. */
    char *s = bad ? NULL
                  : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15));
    json_decref(o);
    if (!s) snprintf(err, errn, "record: cannot serialise (invalid UTF-8 in a string, or out of memory)");
    return s;
}

int imb_record_append(const imb_record *r, const char *path, char *err, size_t errn) {
    char *json = imb_record_to_json(r, err, errn);
    if (!json) return -1;
    size_t jl = strlen(json);
    char *line = malloc(jl + 3);
    if (!line) { free(json); snprintf(err, errn, "%s: out of memory", path); return -1; }
    int created = 1;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(err, errn, "%s: %s", path, strerror(errno));
        free(json); free(line);
        return -1;
    }
    /* A run killed mid-write leaves a line without its newline; start on a fresh line so
     * only that broken line is lost, not this one too. */
    size_t off = 0;
    struct stat sb;
    if (!created && fstat(fd, &sb) == 0 && sb.st_size > 0) {
        int rfd = open(path, O_RDONLY | O_CLOEXEC);
        char last = '\n';
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, sb.st_size - 1) != 1) last = '\n';
            close(rfd);
        }
        if (last != '\n') line[off++] = '\n';
    }
    memcpy(line + off, json, jl);
    line[off + jl] = '\n';
    size_t total = off + jl + 1;
    free(json);
    ssize_t w = write(fd, line, total);
    int werr = errno;
    free(line);
    if (w != (ssize_t)total) {
        close(fd);
        if (w < 0) snprintf(err, errn, "%s: write failed: %s", path, strerror(werr));
        else snprintf(err, errn, "%s: short write (%zd of %zu bytes); the file may end in a partial line", path, w, total);
        return -1;
    }
    if (fsync(fd)) {
        werr = errno;
        close(fd);
        snprintf(err, errn, "%s: fsync failed: %s", path, strerror(werr));
        return -1;
    }
    if (close(fd)) { snprintf(err, errn, "%s: close failed: %s", path, strerror(errno)); return -1; }
    if (created && imb_fsync_dir_of(path)) { snprintf(err, errn, "%s: fsync of its directory failed", path); return -1; }
    return 0;
}

/* ---- reading ---- */

static int get_str(json_t *o, const char *k, imb_record *r, char *err, size_t errn) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) { snprintf(err, errn, "field '%s': expected a string", k); return -1; }
    if (imb_record_set(r, k, json_string_value(v))) { snprintf(err, errn, "out of memory"); return -1; }
    return 0;
}

static int get_num(json_t *o, const char *k, double *out, char *err, size_t errn) {
    json_t *v = json_object_get(o, k);
    if (!v) return 0;
    if (json_is_null(v)) { *out = NAN; return 0; }
    if (!json_is_number(v)) { snprintf(err, errn, "field '%s': expected a number", k); return -1; }
    *out = json_number_value(v);
    return 0;
}

static int kv_from_json(imb_kvlist *l, const char *k, json_t *v) {
    if (json_is_number(v)) return kv_set(l, k, IMB_KV_NUM, json_number_value(v), NULL);
    if (json_is_null(v)) return kv_set(l, k, IMB_KV_NUM, NAN, NULL);
    if (json_is_string(v)) return kv_set(l, k, IMB_KV_STR, 0, json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    int rc = s ? kv_set(l, k, IMB_KV_JSON, 0, s) : -1;
    free(s);
    return rc;
}

static int get_object(json_t *o, const char *k, imb_kvlist *l, int numbers_only, char *err, size_t errn) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v)) { snprintf(err, errn, "field '%s': expected an object", k); return -1; }
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
        if (numbers_only && !json_is_number(x) && !json_is_null(x)) {
            snprintf(err, errn, "field '%s.%s': expected a number", k, key);
            return -1;
        }
        if (kv_from_json(l, key, x)) { snprintf(err, errn, "out of memory"); return -1; }
    }
    return 0;
}

static int parse_obj(json_t *o, imb_record *r, char *err, size_t errn) {
    const char *strs[] = { "time", "commit", "task", "backbone", "preset", "protocol", "protocol_hash", "device", "precision" };
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        if (get_str(o, strs[i], r, err, errn)) return -1;
    if (get_object(o, "options", &r->options, 0, err, errn) || get_object(o, "metrics", &r->metrics, 1, err, errn)) return -1;
    json_t *v = json_object_get(o, "off_protocol");
    if (v && !json_is_null(v)) {
        if (json_is_boolean(v)) r->off_protocol = json_is_true(v);
        else if (json_is_integer(v)) r->off_protocol = json_integer_value(v) != 0;
        else { snprintf(err, errn, "field 'off_protocol': expected true or false"); return -1; }
    }
    if ((v = json_object_get(o, "overrides")) && !json_is_null(v)) {
        if (!json_is_array(v)) { snprintf(err, errn, "field 'overrides': expected an array"); return -1; }
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (!json_is_string(x)) { snprintf(err, errn, "field 'overrides[%zu]': expected a string", i); return -1; }
            if (imb_record_override(r, json_string_value(x))) { snprintf(err, errn, "out of memory"); return -1; }
        }
    }
    if ((v = json_object_get(o, "seed")) && !json_is_null(v)) {
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        char *end = NULL;
        errno = 0;
        if (json_is_integer(v) && json_integer_value(v) >= 0) r->seed = (uint64_t)json_integer_value(v);
        else if (s && *s >= '0' && *s <= '9' && (r->seed = strtoull(s, &end, 10), !*end && !errno)) {
            /* written as a string when above INT64_MAX */
        } else { snprintf(err, errn, "field 'seed': expected a non-negative integer"); return -1; }
    }
    if ((v = json_object_get(o, "params")) && !json_is_null(v)) {
        if (!json_is_integer(v)) { snprintf(err, errn, "field 'params': expected an integer"); return -1; }
        r->params = (int64_t)json_integer_value(v);
    }
    if (get_num(o, "flops_per_sample", &r->flops_per_sample, err, errn) ||
        get_num(o, "samples_per_s", &r->samples_per_s, err, errn) || get_num(o, "wall_s", &r->wall_s, err, errn))
        return -1;
    const char *key;
    json_object_foreach(o, key, v) {
        if (is_standard(key)) continue;
        if (kv_from_json(&r->extra, key, v)) { snprintf(err, errn, "out of memory"); return -1; }
    }
    return 0;
}

int imb_record_from_json(const char *line, imb_record *out, char *err, size_t errn) {
    imb_record_init(out);
    json_error_t je;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
    if (!o) { snprintf(err, errn, "invalid JSON at column %d: %s", je.column, je.text); return -1; }
    if (!json_is_object(o)) { json_decref(o); snprintf(err, errn, "not a JSON object"); return -1; }
    int rc = parse_obj(o, out, err, errn);
    json_decref(o);
    if (rc) imb_record_free(out);
    return rc;
}

void imb_records_free(imb_record *v, int n) {
    for (int i = 0; v && i < n; i++) imb_record_free(&v[i]);
    free(v);
}

int imb_record_read(const char *path, imb_record **out, int *n, int strict, char *err, size_t errn) {
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errn, "%s: %s", path, strerror(errno)); return -1; }
    imb_record *v = NULL;
    int cnt = 0, cap = 0, skipped = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    if (errn) err[0] = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        size_t k = strspn(line, " \t\r\n");
        if (line[k] == 0) continue;
        if (cnt == cap) {
            int nc = cap ? 2 * cap : 16;
            imb_record *nv = realloc(v, sizeof *nv * (size_t)nc);
            if (!nv) { snprintf(err, errn, "%s: out of memory", path); goto fail; }
            v = nv;
            cap = nc;
        }
        char why[400];
        if ((size_t)len != strlen(line)) snprintf(why, sizeof why, "NUL byte inside the line");
        else if (!imb_record_from_json(line, &v[cnt], why, sizeof why)) { cnt++; continue; }
        if (strict) { snprintf(err, errn, "%s:%d: %s", path, lineno, why); goto fail; }
        if (!skipped) snprintf(err, errn, "%s:%d: %s", path, lineno, why);
        skipped++;
    }
    if (ferror(f)) { snprintf(err, errn, "%s: read error", path); goto fail; }
    free(line);
    fclose(f);
    *out = v;
    *n = cnt;
    return skipped;
fail:
    free(line);
    fclose(f);
    imb_records_free(v, cnt);
    return -1;
}
