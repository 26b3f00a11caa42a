/* Checkpoints: safetensors save (atomic: temp file, fsync, rename) and validated load. */
#include "checkpoint.h"
#include "fileio.h"
#include "mem.h"
#include "record.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes host floats as is; safetensors data is little-endian"
#endif

#define MAX_HEADER (100u * 1000u * 1000u)   /* what the reference (Rust) reader accepts */
#define MAX_RANK 16

static const char *const optim_prefix[3] = { "", "optim.m.", "optim.v." };

static float *param_buffer(imb_params *ps, int which) { return which == 0 ? ps->data : which == 1 ? ps->m : ps->v; }

/* ---- save ---- */

static json_t *tensor_entry(const imb_tensor *t, uint64_t begin, uint64_t end) {
    json_t *e = json_object(), *shape = json_array(), *offs = json_array();
    int bad = !e || !shape || !offs;
    for (int d = 0; !bad && d < t->ndim; d++) bad |= json_array_append_new(shape, json_integer(t->shape[d])) != 0;
    if (!bad) {
        bad |= json_array_append_new(offs, json_integer((json_int_t)begin)) != 0;
        bad |= json_array_append_new(offs, json_integer((json_int_t)end)) != 0;
    }
    if (bad) { json_decref(e); json_decref(shape); json_decref(offs); return NULL; }
    json_object_set_new(e, "dtype", json_string("F32"));
    json_object_set_new(e, "shape", shape);
    json_object_set_new(e, "data_offsets", offs);
    return e;
}

static int meta_put(json_t *md, const char *k, const char *v) { return json_object_set_new(md, k, json_string(v ? v : "")); }

static int meta_put_int(json_t *md, const char *k, long long v) {
    char s[32];
    snprintf(s, sizeof s, "%lld", v);
    return meta_put(md, k, s);
}

static int meta_put_u64(json_t *md, const char *k, uint64_t v) {
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    return meta_put(md, k, s);
}

/* The header text, padded with spaces to a multiple of 8 so the data that follows is
 * 8-byte aligned (as the Python writer does). */
static char *build_header(imb_ctx *ctx, const imb_ckpt_meta *meta, size_t *len, char *err, size_t errn) {
    imb_params *ps = &ctx->params;
    json_t *h = json_object(), *md = json_object();
    if (!h || !md) { json_decref(h); json_decref(md); snprintf(err, errn, "out of memory"); return NULL; }
    imb_ckpt_meta z;
    memset(&z, 0, sizeof z);
    if (!meta) meta = &z;
    int bad = 0;
    bad |= meta_put(md, "format", "imbench");
    bad |= meta_put_int(md, "format_version", IMB_CKPT_VERSION);
    bad |= meta_put_int(md, "step", meta->step);
    bad |= meta_put_int(md, "adamw_t", meta->adamw_t);
    bad |= meta_put_u64(md, "seed", ctx->seed);
    bad |= meta_put_u64(md, "ctx_step", ctx->step);
    bad |= meta_put_int(md, "loader_epoch", meta->loader_epoch);
    bad |= meta_put_int(md, "loader_batch", meta->loader_batch);
    bad |= meta_put(md, "task", meta->task);
    bad |= meta_put(md, "backbone", meta->backbone);
    bad |= meta_put(md, "preset", meta->preset);
    bad |= meta_put(md, "protocol_hash", meta->protocol_hash);
    bad |= meta_put(md, "commit", imb_git_commit());
    bad |= json_object_set_new(h, "__metadata__", md);
    uint64_t off = 0;
    for (int w = 0; w < 3 && !bad; w++)
        for (int i = 0; i < ps->n && !bad; i++) {
            const imb_tensor *t = ps->p[i].t;
            char name[1024];
            if ((size_t)snprintf(name, sizeof name, "%s%s", optim_prefix[w], ps->p[i].name) >= sizeof name) {
                json_decref(h);
                snprintf(err, errn, "parameter name too long: %s", ps->p[i].name);
                return NULL;
            }
            uint64_t bytes = (uint64_t)imb_numel(t) * sizeof(float);
            bad |= json_object_set_new(h, name, tensor_entry(t, off, off + bytes));
            off += bytes;
        }
    char *text = bad ? NULL : json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!text) { snprintf(err, errn, "cannot build the header (invalid UTF-8 in a name, or out of memory)"); return NULL; }
    size_t l = strlen(text), padded = (l + 7) / 8 * 8;
    char *out = realloc(text, padded + 1);
    if (!out) { free(text); snprintf(err, errn, "out of memory"); return NULL; }
    memset(out + l, ' ', padded - l);
    out[padded] = 0;
    *len = padded;
    return out;
}

int imb_ckpt_save(imb_ctx *ctx, const char *path, const imb_ckpt_meta *meta, char *err, size_t errn) {
    imb_params *ps = &ctx->params;
    char why[512] = "";
    if (!ps->allocated) { snprintf(err, errn, "%s: parameters not allocated", path); return -1; }
    for (int i = 0; i < ps->n; i++)
        if (!strncmp(ps->p[i].name, "optim.", 6) || !strcmp(ps->p[i].name, "__metadata__")) {
            snprintf(err, errn, "%s: parameter name '%s' is reserved in checkpoints", path, ps->p[i].name);
            return -1;
        }
    size_t hlen;
    char *header = build_header(ctx, meta, &hlen, why, sizeof why);
    if (!header) { snprintf(err, errn, "%s: %s", path, why); return -1; }
    float *host = malloc((ps->total ? ps->total : 1) * sizeof *host);
    size_t tl = strlen(path) + 16;
    char *tmp = malloc(tl);
    FILE *f = NULL;
    int fd = -1;
    if (!host || !tmp) { snprintf(why, sizeof why, "out of memory"); goto fail; }
    snprintf(tmp, tl, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        snprintf(why, sizeof why, "cannot create a temporary file next to it: %s", strerror(errno));
        free(tmp);
        tmp = NULL;
        goto fail;
    }
    fchmod(fd, 0644);   /* mkstemp makes 0600; checkpoints are shared like any output */
    if (!(f = fdopen(fd, "wb"))) { snprintf(why, sizeof why, "%s", strerror(errno)); close(fd); goto fail; }
    unsigned char lenb[8];
    for (int b = 0; b < 8; b++) lenb[b] = (unsigned char)((uint64_t)hlen >> (8 * b));
    if (fwrite(lenb, 1, 8, f) != 8 || fwrite(header, 1, hlen, f) != hlen) goto io_fail;
    for (int w = 0; w < 3; w++) {
        if (imb_mem_copy(IMB_CPU, host, ctx->device, param_buffer(ps, w), ps->total * sizeof(float))) {
            snprintf(why, sizeof why, "copying parameters from %s failed", imb_device_name(ctx->device));
            goto fail;
        }
        for (int i = 0; i < ps->n; i++) {
            size_t n = (size_t)imb_numel(ps->p[i].t);
            if (fwrite(host + ps->p[i].offset, sizeof(float), n, f) != n) goto io_fail;
        }
    }
    if (fflush(f) || fsync(fileno(f))) goto io_fail;
    int rc = fclose(f);
    f = NULL;
    if (rc) goto io_fail;
    if (rename(tmp, path)) { snprintf(why, sizeof why, "rename from %s failed: %s", tmp, strerror(errno)); goto fail; }
    free(tmp);
    tmp = NULL;
    if (imb_fsync_dir_of(path)) { snprintf(why, sizeof why, "fsync of the directory failed: %s", strerror(errno)); goto fail; }
    free(host);
    free(header);
    return 0;
io_fail:
    snprintf(why, sizeof why, "write failed: %s", strerror(errno));
fail:
    if (f) fclose(f);
    if (tmp) { unlink(tmp); free(tmp); }
    free(host);
    free(header);
    snprintf(err, errn, "%s: %s", path, why);
    return -1;
}

/* ---- load ---- */

typedef struct entry {
    const char *name;       /* borrowed from the parsed header */
    char dtype[12];
    int ndim;
    int64_t shape[MAX_RANK];
    uint64_t begin, end;
    int used;
} entry;

static int dtype_size(const char *d) {
    static const struct { const char *n; int s; } t[] = {
        { "F64", 8 }, { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 }, { "I32", 4 }, { "I16", 2 }, { "I8", 1 },
        { "U64", 8 }, { "U32", 4 }, { "U16", 2 }, { "U8", 1 }, { "BOOL", 1 }, { "F8_E4M3", 1 }, { "F8_E5M2", 1 },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(t[i].n, d)) return t[i].s;
    return 0;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t l = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && l < n; d++) l += (size_t)snprintf(buf + l, n - l, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (l < n) snprintf(buf + l, n - l, "]");
}

static int parse_entry(const char *name, json_t *v, uint64_t data_size, entry *e, char *why, size_t whyn) {
    memset(e, 0, sizeof *e);
    e->name = name;
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"), *of = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(sh) || !json_is_array(of) || json_array_size(of) != 2) {
        snprintf(why, whyn, "tensor '%s': entry needs dtype, shape and data_offsets [begin, end]", name);
        return -1;
    }
    int ds = dtype_size(json_string_value(dt));
    if (!ds) { snprintf(why, whyn, "tensor '%s': unknown dtype '%s'", name, json_string_value(dt)); return -1; }
    snprintf(e->dtype, sizeof e->dtype, "%s", json_string_value(dt));
    if (json_array_size(sh) > MAX_RANK) { snprintf(why, whyn, "tensor '%s': rank above %d", name, MAX_RANK); return -1; }
    e->ndim = (int)json_array_size(sh);
    uint64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        json_t *x = json_array_get(sh, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0) {
            snprintf(why, whyn, "tensor '%s': shape holds a non-integer or negative size", name);
            return -1;
        }
        e->shape[d] = json_integer_value(x);
        if (e->shape[d] && numel > UINT64_MAX / 16 / (uint64_t)e->shape[d]) {
            snprintf(why, whyn, "tensor '%s': shape too large", name);
            return -1;
        }
        numel *= (uint64_t)e->shape[d];
    }
    json_t *b = json_array_get(of, 0), *en = json_array_get(of, 1);
    if (!json_is_integer(b) || !json_is_integer(en) || json_integer_value(b) < 0 || json_integer_value(en) < json_integer_value(b)) {
        snprintf(why, whyn, "tensor '%s': data_offsets must be integers with 0 <= begin <= end", name);
        return -1;
    }
    e->begin = (uint64_t)json_integer_value(b);
    e->end = (uint64_t)json_integer_value(en);
    if (e->end > data_size) {
        snprintf(why, whyn, "tensor '%s': data_offsets [%llu, %llu] run past the end of the data (%llu bytes; file truncated?)",
                 name, (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)data_size);
        return -1;
    }
    if (e->end - e->begin != numel * (uint64_t)ds) {
        char s[160];
        shape_str(e->ndim, e->shape, s, sizeof s);
        snprintf(why, whyn, "tensor '%s': %llu data bytes for %s %s (needs %llu)", name,
                 (unsigned long long)(e->end - e->begin), e->dtype, s, (unsigned long long)(numel * (uint64_t)ds));
        return -1;
    }
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static entry *find_entry(entry *es, int n, const char *prefix, const char *name) {
    size_t pl = strlen(prefix);
    for (int i = 0; i < n; i++)
        if (!strncmp(es[i].name, prefix, pl) && !strcmp(es[i].name + pl, name)) return &es[i];
    return NULL;
}

static int read_at(int fd, void *dst, size_t n, uint64_t off) {
    char *p = dst;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int meta_int(json_t *md, const char *k, int64_t *out, char *why, size_t whyn) {
    json_t *v = json_object_get(md, k);
    const char *s = v ? json_string_value(v) : NULL;
    char *end;
    errno = 0;
    long long x = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno) {
        snprintf(why, whyn, "metadata '%s' %s%s%s", k, s ? "= '" : "missing", s ? s : "", s ? "' is not an integer" : "");
        return -1;
    }
    *out = x;
    return 0;
}

static void meta_str(json_t *md, const char *k, char *dst, size_t n) {
    json_t *v = json_object_get(md, k);
    snprintf(dst, n, "%s", v && json_is_string(v) ? json_string_value(v) : "");
}

/* Reads imbench metadata; a file from another writer (no "format": "imbench") gives
 * version 0 and zeros. */
static int parse_meta(json_t *md, imb_ckpt_meta *m, char *why, size_t whyn) {
    memset(m, 0, sizeof *m);
    json_t *fmt = md ? json_object_get(md, "format") : NULL;
    if (!fmt || !json_is_string(fmt) || strcmp(json_string_value(fmt), "imbench")) return 0;
    int64_t ver, seed, cstep;
    if (meta_int(md, "format_version", &ver, why, whyn)) return -1;
    if (ver < 1 || ver > IMB_CKPT_VERSION) {
        snprintf(why, whyn, "format_version %lld is not one this build reads (1..%d)", (long long)ver, IMB_CKPT_VERSION);
        return -1;
    }
    if (meta_int(md, "step", &m->step, why, whyn) || meta_int(md, "adamw_t", &m->adamw_t, why, whyn) ||
        meta_int(md, "loader_epoch", &m->loader_epoch, why, whyn) || meta_int(md, "loader_batch", &m->loader_batch, why, whyn))
        return -1;
    /* seeds are unsigned 64-bit */
    const char *names[2] = { "seed", "ctx_step" };
    int64_t *dst[2] = { &seed, &cstep };
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(md, names[i]);
        const char *s = v ? json_string_value(v) : NULL;
        char *end;
        errno = 0;
        unsigned long long u = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
        if (!s || *s < '0' || *s > '9' || *end || errno) {
            snprintf(why, whyn, "metadata '%s' missing or not an unsigned integer", names[i]);
            return -1;
        }
        memcpy(dst[i], &u, sizeof u);
    }
    memcpy(&m->seed, &seed, sizeof seed);
    memcpy(&m->ctx_step, &cstep, sizeof cstep);
    meta_str(md, "task", m->task, sizeof m->task);
    meta_str(md, "backbone", m->backbone, sizeof m->backbone);
    meta_str(md, "preset", m->preset, sizeof m->preset);
    meta_str(md, "protocol_hash", m->protocol_hash, sizeof m->protocol_hash);
    meta_str(md, "commit", m->commit, sizeof m->commit);
    m->version = (int)ver;
    return 0;
}

/* Checks one model tensor against its file entry. */
static int check_tensor(const imb_tensor *t, const entry *e, const char *name, char *why, size_t whyn) {
    if (!e) { snprintf(why, whyn, "tensor '%.300s' missing", name); return -1; }
    if (strcmp(e->dtype, "F32")) { snprintf(why, whyn, "tensor '%.300s': dtype %s, expected F32", name, e->dtype); return -1; }
    int same = e->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = e->shape[d] == t->shape[d];
    if (!same) {
        char a[160], b[160];
        shape_str(e->ndim, e->shape, a, sizeof a);
        shape_str(t->ndim, t->shape, b, sizeof b);
        snprintf(why, whyn, "tensor '%.300s': shape %s in the file, %s in the model", name, a, b);
        return -1;
    }
    return 0;
}

int imb_ckpt_load(imb_ctx *ctx, const char *path, imb_ckpt_meta *meta_out, int load_optim, char *err, size_t errn) {
    imb_params *ps = &ctx->params;
    char why[700] = "";
    int fd = -1, ne = 0;
    char *hbuf = NULL;
    json_t *h = NULL;
    entry *es = NULL;
    entry **order = NULL;
    float *host[3] = { NULL, NULL, NULL };
    imb_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    if (!ps->allocated) { snprintf(why, sizeof why, "parameters not allocated"); goto fail; }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) { snprintf(why, sizeof why, "%s", strerror(errno)); goto fail; }
    struct stat sb;
    if (fstat(fd, &sb)) { snprintf(why, sizeof why, "%s", strerror(errno)); goto fail; }
    uint64_t fsize = (uint64_t)sb.st_size;
    unsigned char lenb[8];
    if (fsize < 8 || read_at(fd, lenb, 8, 0)) {
        snprintf(why, sizeof why, "truncated: %llu bytes, shorter than the 8-byte header length", (unsigned long long)fsize);
        goto fail;
    }
    uint64_t hl = 0;
    for (int b = 7; b >= 0; b--) hl = hl << 8 | lenb[b];
    if (hl < 2 || hl > MAX_HEADER || hl > fsize - 8) {
        snprintf(why, sizeof why, "header length %llu is %s (file is %llu bytes); not a safetensors file, or truncated",
                 (unsigned long long)hl, hl > fsize - 8 ? "beyond the end of the file" : "implausible",
                 (unsigned long long)fsize);
        goto fail;
    }
    uint64_t data_size = fsize - 8 - hl;
    if (!(hbuf = malloc(hl + 1)) || read_at(fd, hbuf, hl, 8)) { snprintf(why, sizeof why, "cannot read the header"); goto fail; }
    hbuf[hl] = 0;
    if (hbuf[0] != '{') { snprintf(why, sizeof why, "header does not start with '{'; not a safetensors file"); goto fail; }
    json_error_t je;
    if (!(h = json_loadb(hbuf, hl, JSON_REJECT_DUPLICATES, &je))) {
        snprintf(why, sizeof why, "header is not valid JSON (column %d: %s)", je.column, je.text);
        goto fail;
    }
    if (!json_is_object(h)) { snprintf(why, sizeof why, "header is not a JSON object"); goto fail; }
    json_t *md = json_object_get(h, "__metadata__");
    if (md) {
        const char *k;
        json_t *v;
        if (!json_is_object(md)) { snprintf(why, sizeof why, "__metadata__ is not an object"); goto fail; }
        json_object_foreach(md, k, v) if (!json_is_string(v)) {
            snprintf(why, sizeof why, "__metadata__ '%s' is not a string", k);
            goto fail;
        }
    }
    size_t cap = json_object_size(h);
    es = calloc(cap ? cap : 1, sizeof *es);
    order = calloc(cap ? cap : 1, sizeof *order);
    if (!es || !order) { snprintf(why, sizeof why, "out of memory"); goto fail; }
    {
        const char *k;
        json_t *v;
        json_object_foreach(h, k, v) {
            if (!strcmp(k, "__metadata__")) continue;
            if (parse_entry(k, v, data_size, &es[ne], why, sizeof why)) goto fail;
            order[ne] = &es[ne];
            ne++;
        }
    }
    qsort(order, (size_t)ne, sizeof *order, cmp_begin);
    /* against the furthest end so far, so an empty tensor in between hides nothing */
    for (int i = 0, last = -1; i < ne; i++) {
        if (order[i]->begin == order[i]->end) continue;
        if (last >= 0 && order[i]->begin < order[last]->end) {
            snprintf(why, sizeof why, "tensors '%s' and '%s' overlap in the data", order[last]->name, order[i]->name);
            goto fail;
        }
        if (last < 0 || order[i]->end > order[last]->end) last = i;
    }
    int passes = load_optim ? 3 : 1;
    for (int w = 0; w < passes; w++)
        for (int i = 0; i < ps->n; i++) {
            char name[1100];
            snprintf(name, sizeof name, "%s%s", optim_prefix[w], ps->p[i].name);
            entry *e = find_entry(es, ne, optim_prefix[w], ps->p[i].name);
            if (check_tensor(ps->p[i].t, e, name, why, sizeof why)) {
                if (!e && w)
                    snprintf(why + strlen(why), sizeof why - strlen(why), " (the file holds no optimizer state for it)");
                goto fail;
            }
            e->used = 1;
        }
    for (int i = 0; i < ne; i++)
        if (!es[i].used && (load_optim || strncmp(es[i].name, "optim.", 6))) {
            snprintf(why, sizeof why, "unexpected tensor '%s' (not a %s of this model)", es[i].name,
                     strncmp(es[i].name, "optim.", 6) ? "parameter" : "parameter's optimizer state");
            goto fail;
        }
    if (parse_meta(md, &meta, why, sizeof why)) goto fail;
    if (load_optim && !meta.version) {
        snprintf(why, sizeof why, "no imbench metadata (step, seed, loader position): cannot resume from it; load weights only");
        goto fail;
    }
    for (int w = 0; w < passes; w++) {
        /* padding between parameters reads as zeros, as imb_params_init leaves it */
        if (!(host[w] = calloc(ps->total ? ps->total : 1, sizeof(float)))) { snprintf(why, sizeof why, "out of memory"); goto fail; }
        for (int i = 0; i < ps->n; i++) {
            entry *e = find_entry(es, ne, optim_prefix[w], ps->p[i].name);
            if (read_at(fd, host[w] + ps->p[i].offset, (size_t)(e->end - e->begin), 8 + hl + e->begin)) {
                snprintf(why, sizeof why, "tensor '%s%s': read failed (file truncated?)", optim_prefix[w], ps->p[i].name);
                goto fail;
            }
        }
    }
    /* Everything validated and in host memory: only now touch the model. */
    for (int w = 0; w < passes; w++)
        if (imb_mem_copy(ctx->device, param_buffer(ps, w), IMB_CPU, host[w], ps->total * sizeof(float))) {
            snprintf(why, sizeof why, "copy to %s failed", imb_device_name(ctx->device));
            goto fail;
        }
    if (load_optim) {
        ctx->seed = meta.seed;
        ctx->step = meta.ctx_step;
    }
    if (meta_out) *meta_out = meta;
    for (int w = 0; w < 3; w++) free(host[w]);
    free(es); free(order); free(hbuf); json_decref(h); close(fd);
    return 0;
fail:
    for (int w = 0; w < 3; w++) free(host[w]);
    free(es); free(order); free(hbuf); json_decref(h);
    if (fd >= 0) close(fd);
    snprintf(err, errn, "%s: %s", path, why);
    return -1;
}
