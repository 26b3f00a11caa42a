/* Packed-shard cache: atomic writer, validating mmap reader, cache paths and fingerprints. */
#include "shard.h"
#include "fileio.h"
#include "rng.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { HDR_SIZE = 72, HDR_CRC_AT = 68, ENTRY_SIZE = 24 };
static const char MAGIC[8] = {'I', 'M', 'B', 'S', 'H', 'A', 'R', 'D'};

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

/* zlib's crc32 takes 32-bit lengths on some builds; feed it in bounded pieces. */
static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n) {
    while (n) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        crc = (uint32_t)crc32(crc, p, (uInt)k);
        p += k;
        n -= k;
    }
    return crc;
}

/* ---- writer ---- */

/* Flushes, fsyncs and closes; a full disk often only shows up here. */
static int finish_file(FILE *f, const char *tmp, char *err, size_t errn) {
    int rc = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        imb_errf(err, errn, "%s: write: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (fclose(f) != 0 && rc == 0) {
        imb_errf(err, errn, "%s: close: %s", tmp, strerror(errno));
        rc = -1;
    }
    return rc;
}

static int check_image(const char *path, int i, const imb_image *im, int32_t label, int nclasses,
                       char *err, size_t errn) {
    if (im->h < 1 || im->w < 1 || (im->c != 1 && im->c != 3) || !im->px ||
        (int64_t)im->h * im->w > ((int64_t)1 << 31)) {
        imb_errf(err, errn, "%s: sample %d: bad image %dx%dx%d%s", path, i, im->h, im->w, im->c,
             im->px ? "" : " (no pixels)");
        return -1;
    }
    if (label < 0 || label >= nclasses) {
        imb_errf(err, errn, "%s: sample %d: label %d outside [0, %d)", path, i, (int)label, nclasses);
        return -1;
    }
    return 0;
}

/* Writes one record's pixels (shrunk first when asked) and fills its index entry. */
static int write_record(FILE *f, const char *path, const char *tmp, const imb_shard_source *src,
                        int i, const imb_image *im, int32_t label, uint8_t *entry, uint64_t *off,
                        uint32_t *crc, char *err, size_t errn) {
    imb_image small = {0};
    const imb_image *out = im;
    int s = src->store_size, shrt = im->h < im->w ? im->h : im->w;
    if (s > 0 && shrt > s) {
        int64_t lng = im->h < im->w ? im->w : im->h;
        int nl = (int)(lng * s / shrt);
        int nh = im->h <= im->w ? s : nl, nw = im->h <= im->w ? nl : s;
        if (src->resize(im, nh, nw, &small) != 0 || small.h != nh || small.w != nw ||
            small.c != im->c || !small.px) {
            imb_errf(err, errn, "%s: sample %d: resize %dx%d -> %dx%d failed", path, i, im->h, im->w, nh, nw);
            free(small.px);
            return -1;
        }
        out = &small;
    }
    size_t bytes = (size_t)out->h * (size_t)out->w * (size_t)out->c;
    int rc = 0;
    if (fwrite(out->px, 1, bytes, f) != bytes) {
        imb_errf(err, errn, "%s: write: %s", tmp, strerror(errno));
        rc = -1;
    } else {
        *crc = crc_update(*crc, out->px, bytes);
        put32(entry, (uint32_t)out->h);
        put32(entry + 4, (uint32_t)out->w);
        put32(entry + 8, (uint32_t)out->c);
        put32(entry + 12, (uint32_t)label);
        put64(entry + 16, *off);
        *off += bytes;
    }
    free(small.px);
    return rc;
}

static void fill_header(uint8_t *h, const imb_shard_source *src, uint64_t payload_size, uint32_t crc) {
    memset(h, 0, HDR_SIZE);
    memcpy(h, MAGIC, 8);
    put32(h + 8, IMB_SHARD_VERSION);
    put32(h + 12, HDR_SIZE);
    put64(h + 16, (uint64_t)src->n);
    put32(h + 24, (uint32_t)src->nclasses);
    put32(h + 28, (uint32_t)src->store_size);
    put64(h + 32, src->fingerprint);
    put64(h + 40, HDR_SIZE);
    put64(h + 48, HDR_SIZE + (uint64_t)src->n * ENTRY_SIZE);
    put64(h + 56, payload_size);
    put32(h + 64, crc);
    put32(h + HDR_CRC_AT, crc_update(0, h, HDR_CRC_AT));
}

int imb_shard_write(const char *path, const imb_shard_source *src, char *err, size_t errn) {
    if (!path || !src || !src->get || src->n < 1 || src->nclasses < 1 || src->store_size < 0 ||
        (src->store_size > 0 && !src->resize)) {
        imb_errf(err, errn, "%s: shard write: need n >= 1, nclasses >= 1, a get callback%s",
             path ? path : "(null)", src && src->store_size > 0 ? " and a resize callback" : "");
        return -1;
    }
    size_t tn = strlen(path) + 16;
    char *tmp = malloc(tn);
    uint8_t *index = calloc((size_t)src->n, ENTRY_SIZE);
    if (!tmp || !index) {
        free(tmp);
        free(index);
        imb_errf(err, errn, "%s: out of memory for the index", path);
        return -1;
    }
    snprintf(tmp, tn, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        imb_errf(err, errn, "%s: create temp file: %s", tmp, strerror(errno));
        free(tmp);
        free(index);
        return -1;
    }
    (void)fchmod(fd, 0644);   /* mkstemp's 0600 would hide a shared cache from other users */
    FILE *f = fdopen(fd, "wb");
    int rc = f ? 0 : -1;
    if (!f) {
        imb_errf(err, errn, "%s: fdopen: %s", tmp, strerror(errno));
        close(fd);
    }
    uint64_t payload_off = HDR_SIZE + (uint64_t)src->n * ENTRY_SIZE, off = 0;
    uint32_t pcrc = 0;
    if (rc == 0 && fseeko(f, (off_t)payload_off, SEEK_SET) != 0) {
        imb_errf(err, errn, "%s: seek: %s", tmp, strerror(errno));
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < src->n; i++) {
        imb_image im = {0};
        int32_t label = -1;
        if (src->get(src->ctx, i, &im, &label, err, errn) != 0) {
            rc = -1;
        } else {
            rc = check_image(path, i, &im, label, src->nclasses, err, errn);
            if (rc == 0)
                rc = write_record(f, path, tmp, src, i, &im, label, index + (size_t)i * ENTRY_SIZE,
                                  &off, &pcrc, err, errn);
            if (src->put) src->put(src->ctx, i, &im);
        }
    }
    if (rc == 0) {
        /* crc(index || payload) without a second pass over the payload */
        uint32_t icrc = crc_update(0, index, (size_t)src->n * ENTRY_SIZE);
        uint32_t crc = (uint32_t)crc32_combine(icrc, pcrc, (z_off_t)off);
        uint8_t hdr[HDR_SIZE];
        fill_header(hdr, src, off, crc);
        if (fseeko(f, 0, SEEK_SET) != 0 || fwrite(hdr, 1, HDR_SIZE, f) != HDR_SIZE ||
            fwrite(index, ENTRY_SIZE, (size_t)src->n, f) != (size_t)src->n) {
            imb_errf(err, errn, "%s: write: %s", tmp, strerror(errno));
            rc = -1;
        }
    }
    if (f) {
        if (rc == 0) rc = finish_file(f, tmp, err, errn);
        else fclose(f);
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        imb_errf(err, errn, "%s: rename from %s: %s", path, tmp, strerror(errno));
        rc = -1;
    }
    /* the rename is durable once the folder entry is on disk; best effort, since some file
     * systems refuse fsync on folders */
    if (rc == 0) (void)imb_fsync_dir_of(path);
    else unlink(tmp);
    free(tmp);
    free(index);
    return rc;
}

typedef struct mem_source {
    const imb_image *images;
    const int32_t *labels;
} mem_source;

static int mem_get(void *ctx, int i, imb_image *im, int32_t *label, char *err, size_t errn) {
    (void)err;
    (void)errn;
    const mem_source *m = ctx;
    *im = m->images[i];
    *label = m->labels[i];
    return 0;
}

int imb_shard_write_images(const char *path, int n, const imb_image *images, const int32_t *labels,
                           int nclasses, uint64_t fingerprint, char *err, size_t errn) {
    if (!images || !labels) {
        imb_errf(err, errn, "%s: shard write: no images or labels", path ? path : "(null)");
        return -1;
    }
    mem_source m = {images, labels};
    imb_shard_source src = {.n = n, .nclasses = nclasses, .fingerprint = fingerprint,
                            .get = mem_get, .ctx = &m};
    return imb_shard_write(path, &src, err, errn);
}

/* ---- reader ---- */

/* Header fields and whole-file checks; the mapping is already in s. */
static int validate(const char *path, uint64_t want_fp, imb_shard *s, char *err, size_t errn) {
    const uint8_t *h = s->map;
    size_t size = s->map_size;
    if (size < HDR_SIZE) {
        imb_errf(err, errn, "%s: header: truncated (%zu bytes, need %d)", path, size, HDR_SIZE);
        return IMB_SHARD_CORRUPT;
    }
    if (memcmp(h, MAGIC, 8) != 0) {
        imb_errf(err, errn, "%s: magic: not an imbench shard", path);
        return IMB_SHARD_CORRUPT;
    }
    uint32_t version = get32(h + 8);
    if (version != IMB_SHARD_VERSION) {
        imb_errf(err, errn, "%s: version: format %u, this build reads %u", path, version, IMB_SHARD_VERSION);
        return IMB_SHARD_STALE;
    }
    if (get32(h + HDR_CRC_AT) != crc_update(0, h, HDR_CRC_AT)) {
        imb_errf(err, errn, "%s: header: checksum mismatch", path);
        return IMB_SHARD_CORRUPT;
    }
    uint64_t count = get64(h + 16), ioff = get64(h + 40), poff = get64(h + 48), psize = get64(h + 56);
    uint32_t nclasses = get32(h + 24);
    if (get32(h + 12) != HDR_SIZE || ioff != HDR_SIZE) {
        imb_errf(err, errn, "%s: header size: %u, expected %d", path, get32(h + 12), HDR_SIZE);
        return IMB_SHARD_CORRUPT;
    }
    if (count < 1 || count > INT_MAX) {
        imb_errf(err, errn, "%s: record count: %llu", path, (unsigned long long)count);
        return IMB_SHARD_CORRUPT;
    }
    if (nclasses < 1 || nclasses > INT_MAX) {
        imb_errf(err, errn, "%s: nclasses: %u", path, nclasses);
        return IMB_SHARD_CORRUPT;
    }
    if (poff != ioff + count * ENTRY_SIZE) {
        imb_errf(err, errn, "%s: payload offset: %llu, expected %llu", path, (unsigned long long)poff,
             (unsigned long long)(ioff + count * ENTRY_SIZE));
        return IMB_SHARD_CORRUPT;
    }
    if (psize > UINT64_MAX - poff || poff + psize != size) {
        imb_errf(err, errn, "%s: size: file has %zu bytes, header says %llu (truncated?)", path, size,
             psize > UINT64_MAX - poff ? 0ull : (unsigned long long)(poff + psize));
        return IMB_SHARD_CORRUPT;
    }
    uint64_t fp = get64(h + 32);
    if (fp != want_fp) {
        imb_errf(err, errn, "%s: fingerprint: built from other sources (%016llx, expected %016llx)", path,
             (unsigned long long)fp, (unsigned long long)want_fp);
        return IMB_SHARD_STALE;
    }
    uint32_t crc = crc_update(0, h + ioff, size - ioff);
    if (crc != get32(h + 64)) {
        imb_errf(err, errn, "%s: checksum: crc32 of index and payload is %08x, header says %08x", path,
             crc, get32(h + 64));
        return IMB_SHARD_CORRUPT;
    }
    /* A matching crc only proves the bytes are what the writer wrote; check the entries
     * so a writer bug can't turn into out-of-bounds reads later. */
    uint64_t run = 0;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *e = h + ioff + i * ENTRY_SIZE;
        uint32_t eh = get32(e), ew = get32(e + 4), ec = get32(e + 8);
        int32_t lab = (int32_t)get32(e + 12);
        if (eh < 1 || ew < 1 || (ec != 1 && ec != 3) || (uint64_t)eh * ew > ((uint64_t)1 << 31)) {
            imb_errf(err, errn, "%s: index entry %llu: shape %ux%ux%u", path, (unsigned long long)i, eh, ew, ec);
            return IMB_SHARD_CORRUPT;
        }
        if (lab < 0 || (uint32_t)lab >= nclasses) {
            imb_errf(err, errn, "%s: index entry %llu: label %d outside [0, %u)", path, (unsigned long long)i,
                 (int)lab, nclasses);
            return IMB_SHARD_CORRUPT;
        }
        uint64_t bytes = (uint64_t)eh * ew * ec;
        if (get64(e + 16) != run || bytes > psize - run) {
            imb_errf(err, errn, "%s: index entry %llu: offset %llu (+%llu bytes) inconsistent with payload of %llu",
                 path, (unsigned long long)i, (unsigned long long)get64(e + 16), (unsigned long long)bytes,
                 (unsigned long long)psize);
            return IMB_SHARD_CORRUPT;
        }
        run += bytes;
    }
    if (run != psize) {
        imb_errf(err, errn, "%s: payload size: %llu bytes, records use %llu", path, (unsigned long long)psize,
             (unsigned long long)run);
        return IMB_SHARD_CORRUPT;
    }
    s->n = (int)count;
    s->nclasses = (int)nclasses;
    s->store_size = (int)get32(h + 28);
    s->fingerprint = fp;
    s->index = h + ioff;
    s->payload = h + poff;
    return IMB_SHARD_OK;
}

int imb_shard_map(const char *path, size_t min_size, const uint8_t **map, size_t *size, char *err, size_t errn) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        imb_errf(err, errn, "%s: %s", path, e == ENOENT ? "missing (no shard built yet)" : strerror(e));
        return e == ENOENT ? IMB_SHARD_MISSING : IMB_SHARD_IOERR;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        imb_errf(err, errn, "%s: stat: %s", path, strerror(errno));
        close(fd);
        return IMB_SHARD_IOERR;
    }
    if ((size_t)st.st_size < min_size) {
        close(fd);
        imb_errf(err, errn, "%s: header: truncated (%lld bytes, need %zu)", path, (long long)st.st_size, min_size);
        return IMB_SHARD_CORRUPT;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);   /* the mapping keeps the file alive */
    if (m == MAP_FAILED) {
        imb_errf(err, errn, "%s: mmap: %s", path, strerror(errno));
        return IMB_SHARD_IOERR;
    }
    *map = m;
    *size = (size_t)st.st_size;
    return IMB_SHARD_OK;
}

int imb_shard_open(const char *path, uint64_t expected_fingerprint, imb_shard *s, char *err, size_t errn) {
    memset(s, 0, sizeof *s);
    int rc = imb_shard_map(path, HDR_SIZE, &s->map, &s->map_size, err, errn);
    if (rc != IMB_SHARD_OK) return rc;
    rc = validate(path, expected_fingerprint, s, err, errn);
    if (rc == IMB_SHARD_OK && !(s->path = strdup(path))) {
        imb_errf(err, errn, "%s: out of memory", path);
        rc = IMB_SHARD_IOERR;
    }
    if (rc != IMB_SHARD_OK) {
        munmap((void *)s->map, s->map_size);
        memset(s, 0, sizeof *s);
    }
    return rc;
}

int imb_shard_get(const imb_shard *s, int i, imb_image *view, int32_t *label) {
    if (!s || !s->map || i < 0 || i >= s->n) return -1;
    const uint8_t *e = s->index + (size_t)i * ENTRY_SIZE;
    view->h = (int)get32(e);
    view->w = (int)get32(e + 4);
    view->c = (int)get32(e + 8);
    view->px = (uint8_t *)(s->payload + get64(e + 16));   /* read-only mapping; see shard.h */
    if (label) *label = (int32_t)get32(e + 12);
    return 0;
}

void imb_shard_close(imb_shard *s) {
    if (!s) return;
    if (s->map) munmap((void *)s->map, s->map_size);
    free(s->path);
    memset(s, 0, sizeof *s);
}

/* ---- cache paths and fingerprints ---- */

int imb_cache_path(const char *root, const char *name, const char *split, char *buf, size_t n,
                   char *err, size_t errn) {
    int k = snprintf(buf, n, "%s/.imbench", root);
    if (k < 0 || (size_t)k >= n) {
        imb_errf(err, errn, "%s: cache path too long for a %zu-byte buffer", root, n);
        return -1;
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        imb_errf(err, errn, "%s: create cache folder: %s", buf, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
        imb_errf(err, errn, "%s: cache folder: exists but is not a folder", buf);
        return -1;
    }
    k = snprintf(buf, n, "%s/.imbench/%s-%s.shard", root, name, split);
    if (k < 0 || (size_t)k >= n) {
        imb_errf(err, errn, "%s: cache path too long for a %zu-byte buffer", root, n);
        return -1;
    }
    return 0;
}

uint64_t imb_fingerprint_bytes(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;   /* FNV-1a */
    return h;
}

uint64_t imb_fingerprint_str(uint64_t h, const char *s) {
    /* the terminator keeps ("ab","c") and ("a","bc") apart */
    return imb_fingerprint_bytes(h, s, strlen(s) + 1);
}

uint64_t imb_fingerprint_u64(uint64_t h, uint64_t v) {
    return imb_hash64(h ^ imb_hash64(v));
}

int imb_fingerprint_file(uint64_t *h, const char *path, char *err, size_t errn) {
    struct stat st;
    if (stat(path, &st) != 0) {
        imb_errf(err, errn, "%s: %s", path, strerror(errno));
        return -1;
    }
    uint64_t v = imb_fingerprint_str(*h, path);
    v = imb_fingerprint_u64(v, (uint64_t)st.st_size);
    v = imb_fingerprint_u64(v, (uint64_t)st.st_mtim.tv_sec);
    *h = imb_fingerprint_u64(v, (uint64_t)st.st_mtim.tv_nsec);
    return 0;
}
