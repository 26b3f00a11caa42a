/* Text shards: writer, validating mmap reader, and the padding batch loader (see textshard.h). */
#include "textshard.h"
#include "fileio.h"
#include "rng.h"
#include "shard.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { HDR = 80, HDR_CRC_AT = 76, ENTRY = 16 };
static const char MAGIC[8] = { 'I', 'M', 'B', 'T', 'E', 'X', 'T', 'S' };
/* keeps the text loader's shuffle apart from the image loader's draws of the same seed */
#define TEXT_PERM_TAG 0x746578747065726dull

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n) {
    while (n) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        crc = (uint32_t)crc32(crc, p, (uInt)k);
        p += k;
        n -= k;
    }
    return crc;
}

int imb_text_shard_write(const char *path, int n, const size_t *offsets, const int32_t *ids, const int32_t *labels,
                         int nclasses, int vocab, uint64_t fingerprint, char *err, size_t errn) {
    if (n < 1 || nclasses < 1 || vocab < 1 || !offsets || !ids || !labels)
        return imb_errf(err, errn, "%s: text shard write: need records, classes and a vocabulary", path);
    int idb = vocab <= 65536 ? 2 : 4;
    size_t ntok = offsets[n] - offsets[0];
    size_t size = HDR + (size_t)n * ENTRY + ntok * (size_t)idb;
    uint8_t *buf = calloc(1, size);
    if (!buf) return imb_errf(err, errn, "%s: out of memory for %zu bytes", path, size);
    uint8_t *idx = buf + HDR, *pay = idx + (size_t)n * ENTRY;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        size_t len = offsets[i + 1] - offsets[i];
        if (len < 1 || len > INT32_MAX || labels[i] < 0 || labels[i] >= nclasses)
            rc = imb_errf(err, errn, "%s: record %d: %zu ids, label %d (need >= 1 id, label in [0, %d))", path, i, len,
                          (int)labels[i], nclasses);
        put64(idx + (size_t)i * ENTRY, offsets[i] - offsets[0]);
        put32(idx + (size_t)i * ENTRY + 8, (uint32_t)len);
        put32(idx + (size_t)i * ENTRY + 12, (uint32_t)labels[i]);
    }
    for (size_t k = 0; k < ntok && !rc; k++) {
        int32_t v = ids[offsets[0] + k];
        if (v < 0 || v >= vocab) rc = imb_errf(err, errn, "%s: id %d outside [0, %d)", path, (int)v, vocab);
        if (idb == 2) { pay[2 * k] = (uint8_t)v; pay[2 * k + 1] = (uint8_t)(v >> 8); }
        else put32(pay + 4 * k, (uint32_t)v);
    }
    if (!rc) {
        memcpy(buf, MAGIC, 8);
        put32(buf + 8, IMB_TEXTSHARD_VERSION);
        put32(buf + 12, HDR);
        put64(buf + 16, (uint64_t)n);
        put32(buf + 24, (uint32_t)nclasses);
        put32(buf + 28, (uint32_t)vocab);
        put32(buf + 32, (uint32_t)idb);
        put64(buf + 40, fingerprint);
        put64(buf + 48, HDR);
        put64(buf + 56, HDR + (uint64_t)n * ENTRY);
        put64(buf + 64, ntok * (uint64_t)idb);
        put32(buf + 72, crc_update(0, idx, size - HDR));
        put32(buf + HDR_CRC_AT, crc_update(0, buf, HDR_CRC_AT));
        rc = imb_file_write(path, buf, size, err, errn);
        if (!rc) (void)imb_fsync_dir_of(path);
    }
    free(buf);
    return rc;
}

static int validate(const char *path, uint64_t want, imb_text_shard *s, char *err, size_t errn) {
    const uint8_t *h = s->map;
    size_t size = s->map_size;
    if (size < HDR) return imb_errf(err, errn, "%s: header: truncated (%zu bytes)", path, size), IMB_SHARD_CORRUPT;
    if (memcmp(h, MAGIC, 8)) return imb_errf(err, errn, "%s: magic: not an imbench text shard", path), IMB_SHARD_CORRUPT;
    if (get32(h + 8) != IMB_TEXTSHARD_VERSION)
        return imb_errf(err, errn, "%s: version: format %u, this build reads %u", path, get32(h + 8),
                        IMB_TEXTSHARD_VERSION), IMB_SHARD_STALE;
    if (get32(h + HDR_CRC_AT) != crc_update(0, h, HDR_CRC_AT))
        return imb_errf(err, errn, "%s: header: checksum mismatch", path), IMB_SHARD_CORRUPT;
    uint64_t n = get64(h + 16), ioff = get64(h + 48), poff = get64(h + 56), psize = get64(h + 64);
    uint32_t ncls = get32(h + 24), vocab = get32(h + 28), idb = get32(h + 32);
    if (get32(h + 12) != HDR || ioff != HDR || n < 1 || n > INT_MAX || ncls < 1 || ncls > INT_MAX || vocab < 1 ||
        vocab > INT_MAX || (idb != 2 && idb != 4) || (idb == 2) != (vocab <= 65536) || poff != ioff + n * ENTRY ||
        psize % idb || psize > UINT64_MAX - poff || poff + psize != size)
        return imb_errf(err, errn, "%s: header: inconsistent sizes (%llu records, %u-byte ids, %zu-byte file)", path,
                        (unsigned long long)n, idb, size), IMB_SHARD_CORRUPT;
    if (get64(h + 40) != want)
        return imb_errf(err, errn, "%s: fingerprint: built from other sources or another tokenizer (%016llx, expected %016llx)",
                        path, (unsigned long long)get64(h + 40), (unsigned long long)want), IMB_SHARD_STALE;
    if (crc_update(0, h + ioff, size - ioff) != get32(h + 72))
        return imb_errf(err, errn, "%s: checksum: index and payload do not match their crc32", path), IMB_SHARD_CORRUPT;
    uint64_t ntok = psize / idb, run = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *e = h + ioff + i * ENTRY;
        uint64_t off = get64(e), len = get32(e + 8);
        int32_t lab = (int32_t)get32(e + 12);
        if (off != run || len < 1 || len > ntok - run || lab < 0 || (uint32_t)lab >= ncls)
            return imb_errf(err, errn, "%s: index entry %llu: offset %llu, %llu ids, label %d inconsistent", path,
                            (unsigned long long)i, (unsigned long long)off, (unsigned long long)len, (int)lab),
                   IMB_SHARD_CORRUPT;
        run += len;
    }
    if (run != ntok)
        return imb_errf(err, errn, "%s: payload: %llu ids, records use %llu", path, (unsigned long long)ntok,
                        (unsigned long long)run), IMB_SHARD_CORRUPT;
    const uint8_t *p = h + poff;
    for (uint64_t k = 0; k < ntok; k++) {
        uint32_t v = idb == 2 ? (uint32_t)p[2 * k] | (uint32_t)p[2 * k + 1] << 8 : get32(p + 4 * k);
        if (v >= vocab)
            return imb_errf(err, errn, "%s: payload: id %u at %llu outside the vocabulary of %u", path, v,
                            (unsigned long long)k, vocab), IMB_SHARD_CORRUPT;
    }
    s->n = (int)n;
    s->nclasses = (int)ncls;
    s->vocab = (int)vocab;
    s->id_bytes = (int)idb;
    s->ntokens = (int64_t)ntok;
    s->fingerprint = want;
    s->index = h + ioff;
    s->payload = p;
    return IMB_SHARD_OK;
}

int imb_text_shard_open(const char *path, uint64_t fingerprint, imb_text_shard *s, char *err, size_t errn) {
    memset(s, 0, sizeof *s);
    int rc = imb_shard_map(path, HDR, &s->map, &s->map_size, err, errn);
    if (rc != IMB_SHARD_OK) return rc;
    rc = validate(path, fingerprint, s, err, errn);
    if (rc == IMB_SHARD_OK && !(s->path = imb_strdup(path))) {
        imb_errf(err, errn, "%s: out of memory", path);
        rc = IMB_SHARD_IOERR;
    }
    if (rc != IMB_SHARD_OK) {
        munmap((void *)s->map, s->map_size);
        memset(s, 0, sizeof *s);
    }
    return rc;
}

int imb_text_shard_get(const imb_text_shard *s, int i, int32_t *dst, int max, int *len, int32_t *label) {
    if (!s || !s->map || i < 0 || i >= s->n) return -1;
    const uint8_t *e = s->index + (size_t)i * ENTRY;
    uint64_t off = get64(e);
    int n = (int)get32(e + 8);
    if (len) *len = n;
    if (label) *label = (int32_t)get32(e + 12);
    int k = n < max ? n : max;
    for (int j = 0; dst && j < k; j++) {
        const uint8_t *p = s->payload + (off + (uint64_t)j) * (uint64_t)s->id_bytes;
        dst[j] = s->id_bytes == 2 ? (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8) : (int32_t)get32(p);
    }
    return 0;
}

void imb_text_shard_close(imb_text_shard *s) {
    if (!s) return;
    if (s->map) munmap((void *)s->map, s->map_size);
    free(s->path);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- loader */

struct imb_text_loader {
    const imb_text_shard *s;
    int batch, max_len, shuffle, rank, world, fixed;
    uint64_t seed;
    int64_t nbatches, epoch, next, window;
    int32_t *perm, *key;
    int64_t *sortbuf;            /* (length, position) of one window */
    int64_t perm_epoch;
};

imb_text_loader *imb_text_loader_new(const imb_text_shard *s, int batch, int max_len, int shuffle, int drop_last,
                                     uint64_t seed, char *err, size_t errn) {
    return imb_text_loader_new_rank(s, batch, max_len, shuffle, drop_last, seed, 0, 1, err, errn);
}

imb_text_loader *imb_text_loader_new_rank(const imb_text_shard *s, int batch, int max_len, int shuffle, int drop_last,
                                          uint64_t seed, int rank, int world, char *err, size_t errn) {
    if (!s || !s->map || batch < 1 || max_len < 1 || world < 1 || rank < 0 || rank >= world ||
        (world > 1 && !drop_last) || (drop_last && s->n < batch * world)) {
        imb_errf(err, errn, "text loader: need an open shard, batch >= 1, max_len >= 1, rank in [0, world)%s "
                 "(%d records, batch %d, rank %d of %d)", drop_last ? " and at least one full batch" : " and drop_last for ranks",
                 s ? s->n : 0, batch, rank, world);
        return NULL;
    }
    imb_text_loader *l = calloc(1, sizeof *l);
    if (l) l->perm = malloc(sizeof *l->perm * (size_t)s->n);
    if (l) l->key = malloc(sizeof *l->key * (size_t)s->n);
    if (l) l->sortbuf = malloc(sizeof *l->sortbuf * (size_t)s->n);
    if (!l || !l->perm || !l->key || !l->sortbuf) {
        if (l) free(l->perm), free(l->key), free(l->sortbuf);
        free(l);
        imb_errf(err, errn, "text loader: out of memory");
        return NULL;
    }
    l->s = s;
    l->batch = batch;
    l->max_len = max_len;
    l->shuffle = shuffle;
    l->seed = seed;
    l->rank = rank;
    l->world = world;
    l->nbatches = drop_last ? s->n / (batch * world) : (s->n + batch - 1) / batch;
    l->perm_epoch = -1;
    return l;
}

void imb_text_loader_fixed(imb_text_loader *l, int fixed) { l->fixed = fixed != 0; }

void imb_text_loader_bucket(imb_text_loader *l, int64_t window) {
    l->window = window > 0 ? window : 0;
    l->perm_epoch = -1;
}

/* (length, position) pairs packed in one int64 for sorting a window */
static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts each window of the order by length, then shuffles its whole batches. */
static void group_lengths(imb_text_loader *l, uint64_t stream) {
    int n = l->s->n, bw = l->batch * l->world;
    int64_t span = l->window * bw < n ? l->window * bw : n;
    int64_t *tmp = l->sortbuf;
    for (int64_t w0 = 0; w0 < n; w0 += span) {
        int64_t m = n - w0 < span ? n - w0 : span;
        for (int64_t i = 0; i < m; i++) {
            int len;
            imb_text_shard_get(l->s, l->perm[w0 + i], NULL, 0, &len, NULL);
            if (len > l->max_len) len = l->max_len;
            tmp[i] = (int64_t)len << 32 | (int64_t)i;
        }
        qsort(tmp, (size_t)m, sizeof *tmp, cmp_i64);
        for (int64_t i = 0; i < m; i++) l->key[i] = l->perm[w0 + (tmp[i] & 0xffffffff)];
        memcpy(l->perm + w0, l->key, sizeof *l->perm * (size_t)m);
        if (!l->shuffle) continue;
        /* the window's full batches in a seeded order (a short tail batch stays last) */
        int64_t nb = m / bw;
        for (int64_t i = nb - 1; i > 0; i--) {
            int64_t j = imb_rng_below(l->seed, stream ^ 0x6275636b6574ull, (uint64_t)(w0 + i), (uint32_t)i + 1);
            if (j == i) continue;
            memcpy(l->key, l->perm + w0 + i * bw, sizeof *l->key * (size_t)bw);
            memcpy(l->perm + w0 + i * bw, l->perm + w0 + j * bw, sizeof *l->perm * (size_t)bw);
            memcpy(l->perm + w0 + j * bw, l->key, sizeof *l->key * (size_t)bw);
        }
    }
}

/* Fisher-Yates with one counter-based draw per position: a pure function of (seed, epoch). */
static void make_perm(imb_text_loader *l) {
    int n = l->s->n;
    for (int i = 0; i < n; i++) l->perm[i] = i;
    uint64_t stream = imb_hash64((uint64_t)l->epoch ^ TEXT_PERM_TAG);
    if (l->shuffle) {
        for (int i = n - 1; i > 0; i--) {
            int j = (int)imb_rng_below(l->seed, stream, (uint64_t)i, (uint32_t)i + 1);
            int32_t t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    if (l->window) group_lengths(l, stream);
    l->perm_epoch = l->epoch;
}

int imb_text_loader_next(imb_text_loader *l, int32_t *ids, float *mask, int32_t *labels, int *count, int *len) {
    *count = *len = 0;
    if (l->next >= l->nbatches) {
        l->epoch++;
        l->next = 0;
        return 1;
    }
    if (l->perm_epoch != l->epoch) make_perm(l);
    int64_t start = (l->next * l->world + l->rank) * l->batch;
    int c = (int)(l->s->n - start < l->batch ? l->s->n - start : l->batch), L = 1;
    for (int r = 0; r < c; r++) {
        int n;
        imb_text_shard_get(l->s, l->perm[start + r], NULL, 0, &n, NULL);
        if (n > L) L = n;
    }
    if (L > l->max_len || l->fixed) L = l->max_len;
    for (int r = 0; r < c; r++) {
        int n;
        imb_text_shard_get(l->s, l->perm[start + r], ids + (size_t)r * L, L, &n, &labels[r]);
        if (n > L) n = L;
        for (int j = 0; j < L; j++) mask[(size_t)r * L + j] = j < n ? 1.0f : 0.0f;
        for (int j = n; j < L; j++) ids[(size_t)r * L + j] = 0;
    }
    l->next++;
    *count = c;
    *len = L;
    return 0;
}

int imb_text_loader_seek(imb_text_loader *l, int64_t epoch, int64_t batch) {
    if (epoch < 0 || batch < 0 || batch > l->nbatches) return -1;
    l->epoch = epoch;
    l->next = batch;
    return 0;
}

void imb_text_loader_position(const imb_text_loader *l, int64_t *epoch, int64_t *batch) {
    *epoch = l->epoch;
    *batch = l->next;
}

int64_t imb_text_loader_batches(const imb_text_loader *l) { return l->nbatches; }

void imb_text_loader_free(imb_text_loader *l) {
    if (!l) return;
    free(l->perm);
    free(l->key);
    free(l->sortbuf);
    free(l);
}
