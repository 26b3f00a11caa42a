/* Speech feature shards: streaming atomic writer, validating mmap reader, statistics-only reader, half floats. */
#include "speech_shard.h"
#include "fileio.h"
#include "shard.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { HDR = 128, HDR_CRC_AT = 124, NMEL = IMB_SPEECH_NMEL, STATS = 8 * (1 + 2 * NMEL), ENTRY = 40,
       FEAT_TYPE_F16 = 1 };
#define FEATS_AT ((uint64_t)((HDR + STATS + 63) / 64 * 64))
static const char MAGIC[8] = {'I', 'M', 'B', 'S', 'P', 'C', 'H', 0};

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static void putf64(uint8_t *p, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    put64(p, v);
}
static double getf64(const uint8_t *p) {
    uint64_t v = get64(p);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

/* imb_errf that returns an imb_shard_status */
static int ferr(int status, char *err, size_t errn, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int ferr(int status, char *err, size_t errn, const char *fmt, ...) {
    if (err && errn) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errn, fmt, ap);
        va_end(ap);
    }
    return status;
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n) {
    while (n) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        crc = (uint32_t)crc32(crc, p, (uInt)k);
        p += k;
        n -= k;
    }
    return crc;
}

uint16_t imb_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {   /* half subnormal: value / 2^-24, rounded to nearest even */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;   /* a carry into the exponent is right */
    return (uint16_t)(sign | h);
}


/* ---------------------------------------------------------------- writer */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static int buf_add(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 4096;
        uint8_t *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

struct imb_speech_writer {
    char *path, *tmp;
    FILE *f;
    uint64_t fingerprint;
    int64_t n, frames;
    int max_frames;
    imb_speech_stats st;
    buf index, targets, ids, half;
    uint32_t fcrc;   /* of the features written so far */
};

void imb_speech_writer_abort(imb_speech_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    if (w->tmp) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w->index.p);
    free(w->targets.p);
    free(w->ids.p);
    free(w->half.p);
    free(w);
}

imb_speech_writer *imb_speech_writer_new(const char *path, uint64_t fingerprint, char *err, size_t errn) {
    imb_speech_writer *w = calloc(1, sizeof *w);
    size_t tn = strlen(path) + 16;
    if (!w || !(w->path = imb_strdup(path)) || !(w->tmp = malloc(tn))) {
        if (w) free(w->path);
        free(w);
        imb_errf(err, errn, "%s: out of memory", path);
        return NULL;
    }
    snprintf(w->tmp, tn, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(w->tmp);
    if (fd < 0) {
        imb_errf(err, errn, "%s: create temp file: %s", w->tmp, strerror(errno));
        free(w->tmp);
        w->tmp = NULL;
        imb_speech_writer_abort(w);
        return NULL;
    }
    (void)fchmod(fd, 0644);   /* a shared cache must be readable by others */
    if (!(w->f = fdopen(fd, "wb"))) {
        imb_errf(err, errn, "%s: fdopen: %s", w->tmp, strerror(errno));
        close(fd);
        imb_speech_writer_abort(w);
        return NULL;
    }
    if (fseeko(w->f, (off_t)FEATS_AT, SEEK_SET) != 0) {
        imb_errf(err, errn, "%s: seek: %s", w->tmp, strerror(errno));
        imb_speech_writer_abort(w);
        return NULL;
    }
    w->fingerprint = fingerprint;
    return w;
}

int imb_speech_writer_add(imb_speech_writer *w, const char *id, const int32_t *targets, int ntargets,
                          const float *feats, int frames, char *err, size_t errn) {
    size_t idlen = strlen(id);
    if (frames < 1 || ntargets < 0 || idlen == 0 || idlen > 4096)
        return imb_errf(err, errn, "%s: utterance '%s': %d frames, %d targets", w->path, id, frames, ntargets);
    uint8_t e[ENTRY] = {0};
    put32(e, (uint32_t)frames);
    put32(e + 4, (uint32_t)ntargets);
    put32(e + 8, (uint32_t)idlen);
    put64(e + 16, w->targets.n);
    put64(e + 24, w->ids.n);
    put64(e + 32, (uint64_t)w->frames);
    if (buf_add(&w->index, e, ENTRY) || buf_add(&w->ids, id, idlen + 1))
        return imb_errf(err, errn, "%s: out of memory", w->path);
    for (int i = 0; i < ntargets; i++) {
        if (targets[i] < 0 || targets[i] >= IMB_SPEECH_NSYMBOLS)
            return imb_errf(err, errn, "%s: utterance %s: symbol %d outside [0, %d)", w->path, id, (int)targets[i],
                            IMB_SPEECH_NSYMBOLS);
        uint8_t b = (uint8_t)targets[i];
        if (buf_add(&w->targets, &b, 1)) return imb_errf(err, errn, "%s: out of memory", w->path);
    }
    size_t nv = (size_t)frames * NMEL;
    w->half.n = 0;
    for (size_t i = 0; i < nv; i++) {
        if (!isfinite(feats[i]))
            return imb_errf(err, errn, "%s: utterance %s: non-finite feature at frame %zu", w->path, id, i / NMEL);
        uint16_t h = imb_f32_to_f16(feats[i]);
        uint8_t le[2] = {(uint8_t)(h & 0xff), (uint8_t)(h >> 8)};
        if (buf_add(&w->half, le, 2)) return imb_errf(err, errn, "%s: out of memory", w->path);
        /* statistics of what the loader will read back, i.e. of the stored halves */
        double v = imb_f16_to_f32(h);
        w->st.sum[i % NMEL] += v;
        w->st.sumsq[i % NMEL] += v * v;
    }
    if (fwrite(w->half.p, 1, w->half.n, w->f) != w->half.n)
        return imb_errf(err, errn, "%s: write: %s", w->tmp, strerror(errno));
    w->fcrc = crc_update(w->fcrc, w->half.p, w->half.n);
    w->st.count += frames;
    w->frames += frames;
    if (frames > w->max_frames) w->max_frames = frames;
    w->n++;
    return 0;
}

int imb_speech_writer_finish(imb_speech_writer *w, char *err, size_t errn) {
    int rc = 0;
    if (w->n < 1) rc = imb_errf(err, errn, "%s: no utterances to write", w->path);
    uint64_t index_at = FEATS_AT + (uint64_t)w->frames * NMEL * 2;
    uint64_t targets_at = index_at + w->index.n, ids_at = targets_at + w->targets.n, size = ids_at + w->ids.n;
    if (rc == 0 && (fwrite(w->index.p, 1, w->index.n, w->f) != w->index.n ||
                    fwrite(w->targets.p, 1, w->targets.n, w->f) != w->targets.n ||
                    fwrite(w->ids.p, 1, w->ids.n, w->f) != w->ids.n))
        rc = imb_errf(err, errn, "%s: write: %s", w->tmp, strerror(errno));
    if (rc == 0) {
        uint32_t tail = crc_update(0, w->index.p, w->index.n);
        tail = crc_update(tail, w->targets.p, w->targets.n);
        tail = crc_update(tail, w->ids.p, w->ids.n);
        uint32_t crc = (uint32_t)crc32_combine(w->fcrc, tail, (z_off_t)(w->index.n + w->targets.n + w->ids.n));
        uint8_t st[STATS], h[HDR];
        putf64(st, w->st.count);
        for (int b = 0; b < NMEL; b++) {
            putf64(st + 8 + 8 * b, w->st.sum[b]);
            putf64(st + 8 + 8 * (NMEL + b), w->st.sumsq[b]);
        }
        memset(h, 0, HDR);
        memcpy(h, MAGIC, 8);
        put32(h + 8, IMB_SPEECH_SHARD_VERSION);
        put32(h + 12, HDR);
        put64(h + 16, (uint64_t)w->n);
        put32(h + 24, NMEL);
        put32(h + 28, FEAT_TYPE_F16);
        put64(h + 32, w->fingerprint);
        put64(h + 40, (uint64_t)w->frames);
        put64(h + 48, FEATS_AT);
        put64(h + 56, index_at);
        put64(h + 64, targets_at);
        put64(h + 72, ids_at);
        put64(h + 80, size);
        put32(h + 88, (uint32_t)w->max_frames);
        put32(h + 92, crc_update(0, st, STATS));
        put32(h + 96, crc);
        put32(h + HDR_CRC_AT, crc_update(0, h, HDR_CRC_AT));
        if (fseeko(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, HDR, w->f) != HDR || fwrite(st, 1, STATS, w->f) != STATS)
            rc = imb_errf(err, errn, "%s: write: %s", w->tmp, strerror(errno));
    }
    if (rc == 0 && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
        rc = imb_errf(err, errn, "%s: write: %s", w->tmp, strerror(errno));
    if (fclose(w->f) != 0 && rc == 0) rc = imb_errf(err, errn, "%s: close: %s", w->tmp, strerror(errno));
    w->f = NULL;
    if (rc == 0 && rename(w->tmp, w->path) != 0)
        rc = imb_errf(err, errn, "%s: rename from %s: %s", w->path, w->tmp, strerror(errno));
    if (rc == 0) {
        (void)imb_fsync_dir_of(w->path);
        free(w->tmp);
        w->tmp = NULL;   /* nothing left to unlink */
    }
    imb_speech_writer_abort(w);
    return rc;
}

/* ---------------------------------------------------------------- reader */

/* Header fields; h holds at least HDR bytes, size is the file size. */
static int check_header(const char *path, const uint8_t *h, uint64_t size, char *err, size_t errn) {
    if (memcmp(h, MAGIC, 8) != 0) return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: magic: not an imbench speech shard", path);
    if (get32(h + 8) != IMB_SPEECH_SHARD_VERSION) {
        imb_errf(err, errn, "%s: version: format %u, this build reads %u", path, get32(h + 8), IMB_SPEECH_SHARD_VERSION);
        return IMB_SHARD_STALE;
    }
    if (get32(h + HDR_CRC_AT) != crc_update(0, h, HDR_CRC_AT))
        return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: header: checksum mismatch", path);
    if (get32(h + 12) != HDR || get32(h + 24) != NMEL || get32(h + 28) != FEAT_TYPE_F16)
        return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: header: size %u, %u mel bins, feature type %u (expected %d, %d, %d)", path,
                        get32(h + 12), get32(h + 24), get32(h + 28), HDR, NMEL, FEAT_TYPE_F16);
    if (get64(h + 80) != size)
        return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: size: file has %llu bytes, header says %llu (truncated?)", path,
                        (unsigned long long)size, (unsigned long long)get64(h + 80));
    return IMB_SHARD_OK;
}

static void read_stats(const uint8_t *p, imb_speech_stats *st) {
    st->count = getf64(p);
    for (int b = 0; b < NMEL; b++) {
        st->sum[b] = getf64(p + 8 + 8 * b);
        st->sumsq[b] = getf64(p + 8 + 8 * (NMEL + b));
    }
}

static int validate(const char *path, uint64_t want_fp, imb_speech_shard *s, char *err, size_t errn) {
    const uint8_t *h = s->map;
    uint64_t size = s->map_size;
    int rc = check_header(path, h, size, err, errn);
    if (rc != IMB_SHARD_OK) return rc;
    uint64_t n = get64(h + 16), frames = get64(h + 40), fa = get64(h + 48), ia = get64(h + 56), ta = get64(h + 64),
             da = get64(h + 72);
    if (n < 1 || n > INT_MAX) return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: utterance count: %llu", path, (unsigned long long)n);
    if (fa != FEATS_AT || frames > (size - fa) / (2 * NMEL) || ia != fa + frames * 2 * NMEL ||
        n > (size - ia) / ENTRY || ta != ia + n * ENTRY || ta > da || da > size)
        return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: section offsets: inconsistent with %llu utterances, %llu frames, %llu bytes", path,
                        (unsigned long long)n, (unsigned long long)frames, (unsigned long long)size);
    if (get64(h + 32) != want_fp) {
        imb_errf(err, errn, "%s: fingerprint: built from other sources (%016llx, expected %016llx)", path,
                 (unsigned long long)get64(h + 32), (unsigned long long)want_fp);
        return IMB_SHARD_STALE;
    }
    if (get32(h + 92) != crc_update(0, h + HDR, STATS))
        return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: statistics: checksum mismatch", path);
    uint32_t crc = crc_update(0, h + fa, size - fa);
    if (crc != get32(h + 96))
        return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: checksum: crc32 of the data is %08x, header says %08x", path, crc, get32(h + 96));
    /* a matching crc proves only that the bytes are the writer's; check every entry so a
     * writer bug can't become an out-of-bounds read */
    uint64_t tsz = da - ta, dsz = size - da, run_f = 0, run_t = 0, run_d = 0, maxf = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *e = h + ia + i * ENTRY;
        uint64_t ef = get32(e), et = get32(e + 4), el = get32(e + 8);
        if (ef < 1 || get64(e + 32) != run_f || ef > frames - run_f || get64(e + 16) != run_t || et > tsz - run_t ||
            get64(e + 24) != run_d || el < 1 || el >= dsz - run_d || h[da + run_d + el] != 0 ||
            memchr(h + da + run_d, 0, el) != NULL)
            return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: index entry %llu: inconsistent offsets or lengths", path, (unsigned long long)i);
        for (uint64_t k = 0; k < et; k++)
            if (h[ta + run_t + k] >= IMB_SPEECH_NSYMBOLS)
                return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: utterance %llu: symbol %u outside [0, %d)", path, (unsigned long long)i,
                                h[ta + run_t + k], IMB_SPEECH_NSYMBOLS);
        run_f += ef;
        run_t += et;
        run_d += el + 1;
        if (ef > maxf) maxf = ef;
    }
    if (run_f != frames || run_t != tsz || run_d != dsz || maxf != get32(h + 88))
        return ferr(IMB_SHARD_CORRUPT, err, errn, "%s: index: sections hold more than the entries use", path);
    s->n = (int)n;
    s->fingerprint = want_fp;
    s->total_frames = (int64_t)frames;
    s->max_frames = (int)maxf;
    read_stats(h + HDR, &s->stats);
    s->feats = h + fa;
    s->index = h + ia;
    s->targets = h + ta;
    s->ids = h + da;
    return IMB_SHARD_OK;
}

int imb_speech_shard_open(const char *path, uint64_t fingerprint, imb_speech_shard *s, char *err, size_t errn) {
    memset(s, 0, sizeof *s);
    int rc = imb_shard_map(path, (size_t)(FEATS_AT), &s->map, &s->map_size, err, errn);
    if (rc != IMB_SHARD_OK) return rc;
    rc = validate(path, fingerprint, s, err, errn);
    if (rc == IMB_SHARD_OK && !(s->path = imb_strdup(path))) rc = ferr(IMB_SHARD_IOERR, err, errn, "%s: out of memory", path);
    if (rc != IMB_SHARD_OK) {
        munmap((void *)s->map, s->map_size);
        memset(s, 0, sizeof *s);
    }
    return rc;
}

void imb_speech_shard_close(imb_speech_shard *s) {
    if (!s) return;
    if (s->map) munmap((void *)s->map, s->map_size);
    free(s->path);
    memset(s, 0, sizeof *s);
}

void imb_speech_shard_utt(const imb_speech_shard *s, int i, imb_speech_utt *u) {
    const uint8_t *e = s->index + (size_t)i * ENTRY;
    u->frames = (int)get32(e);
    u->ntargets = (int)get32(e + 4);
    u->targets = s->targets + get64(e + 16);
    u->id = (const char *)(s->ids + get64(e + 24));
    u->feats = (const uint16_t *)(const void *)(s->feats + get64(e + 32) * NMEL * 2);
}

int imb_speech_shard_stats(const char *path, imb_speech_stats *st, char *err, size_t errn) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        imb_errf(err, errn, "%s: %s", path, e == ENOENT ? "missing (no shard built yet: prepare the split)" : strerror(e));
        return e == ENOENT ? IMB_SHARD_MISSING : IMB_SHARD_IOERR;
    }
    uint8_t b[HDR + STATS];
    struct stat fs;
    int rc = IMB_SHARD_OK;
    if (fstat(fd, &fs) != 0) rc = ferr(IMB_SHARD_IOERR, err, errn, "%s: stat: %s", path, strerror(errno));
    else if (pread(fd, b, sizeof b, 0) != (ssize_t)sizeof b)
        rc = ferr(IMB_SHARD_CORRUPT, err, errn, "%s: header: truncated", path);
    close(fd);
    if (rc == IMB_SHARD_OK) rc = check_header(path, b, (uint64_t)fs.st_size, err, errn);
    if (rc == IMB_SHARD_OK && get32(b + 92) != crc_update(0, b + HDR, STATS))
        rc = ferr(IMB_SHARD_CORRUPT, err, errn, "%s: statistics: checksum mismatch", path);
    if (rc == IMB_SHARD_OK) read_stats(b + HDR, st);
    return rc;
}
