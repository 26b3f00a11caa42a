/* Packed-shard cache: decoded 8-bit images + labels in one checksummed file, read through mmap. */
#ifndef IMB_SHARD_H
#define IMB_SHARD_H
#include <stddef.h>
#include <stdint.h>
#include "image.h"

/* File layout (all integers little-endian):
 *   header, 72 bytes: magic "IMBSHARD", u32 version, u32 header size, u64 record count,
 *     u32 nclasses, u32 store_size, u64 source fingerprint, u64 index offset,
 *     u64 payload offset, u64 payload size, u32 crc32(index || payload), u32 crc32(header[0..68))
 *   index, 24 bytes per record: u32 h, u32 w, u32 c, i32 label, u64 offset into the payload
 *   payload: each record's pixels, HWC uint8, back to back in record order. */
#define IMB_SHARD_VERSION 1

/* imb_shard_open results: anything but OK means "do not use this file". MISSING, STALE and
 * CORRUPT mean "rebuild it"; IOERR is a system failure (permissions, mmap) that a rebuild
 * would not fix. */
enum imb_shard_status {
    IMB_SHARD_OK = 0,
    IMB_SHARD_MISSING = 1,  /* no file at the path */
    IMB_SHARD_STALE = 2,    /* format version or source fingerprint differ */
    IMB_SHARD_CORRUPT = 3,  /* bad magic, sizes, offsets, checksum, truncated */
    IMB_SHARD_IOERR = 4
};

/* An open shard. Fields are read-only for callers; the mapping is PROT_READ. */
typedef struct imb_shard {
    char *path;
    int n;                   /* records */
    int nclasses;
    int store_size;          /* shorter-side cap it was written with, 0 = original sizes */
    uint64_t fingerprint;
    const uint8_t *map;      /* whole file */
    size_t map_size;
    const uint8_t *index;    /* n * 24 bytes */
    const uint8_t *payload;
} imb_shard;

/* The writer pulls samples one at a time, so a caller can decode file i, hand it over and
 * free it before decoding file i + 1; memory stays at one image whatever n is. */
typedef struct imb_shard_source {
    int n;                   /* records to write, >= 1 */
    int nclasses;            /* labels must lie in [0, nclasses) */
    uint64_t fingerprint;    /* caller's hash of what the shard is built from (see below) */
    /* Yields sample i (called for i = 0 .. n-1 in order): fills *im (h, w, c in {1, 3},
     * px) and *label. Returns 0, or -1 with "<file>: <what>" in err, which aborts the write. */
    int (*get)(void *ctx, int i, imb_image *im, int32_t *label, char *err, size_t errn);
    /* Optional: called once the writer is done with the image get gave for i (e.g. to
     * imb_image_free it). Called on every path, errors included. */
    void (*put)(void *ctx, int i, imb_image *im);
    void *ctx;
    /* Optional shrink: when store_size > 0 and an image's shorter side exceeds it, the
     * writer asks resize for an image whose shorter side is store_size and whose longer side
     * is floor(store_size * long / short) (torchvision Resize(int)), and free()s out->px after
     * writing it. imb_image_resize fits. store_size = 0 keeps the
     * original sizes; store_size > 0 without resize is an error. */
    int store_size;
    int (*resize)(const imb_image *in, int h, int w, imb_image *out);
} imb_shard_source;

/* Writes the shard atomically: a temp file "<path>.tmp.XXXXXX" in the same folder, written,
 * flushed and fsynced, then renamed over path (and the folder fsynced), so a reader never
 * sees a half-written shard and a crash leaves at most a stray temp file. On error the temp
 * file is removed and path is untouched. Returns 0 or -1 with a message in err. */
int imb_shard_write(const char *path, const imb_shard_source *src, char *err, size_t errn);
/* Convenience for samples already in memory (MNIST IDX, tests): images[i], labels[i]. */
int imb_shard_write_images(const char *path, int n, const imb_image *images, const int32_t *labels,
                           int nclasses, uint64_t fingerprint, char *err, size_t errn);

/* Maps path read-only and validates magic, version, header checksum, sizes, fingerprint,
 * the crc32 of index + payload (a full read of the file) and every index entry. Returns an
 * imb_shard_status; on anything but IMB_SHARD_OK *s is zeroed and err says
 * "<path>: <field>: <what>". */
int imb_shard_open(const char *path, uint64_t expected_fingerprint, imb_shard *s, char *err, size_t errn);
/* The common first step of every shard reader (images, text, speech): maps path read-only.
 * Returns IMB_SHARD_MISSING (no file), IMB_SHARD_IOERR (open/stat/mmap failed) or
 * IMB_SHARD_CORRUPT (shorter than min_size) with "<path>: <what>" in err, else IMB_SHARD_OK
 * with *map and *size set (release with munmap). */
int imb_shard_map(const char *path, size_t min_size, const uint8_t **map, size_t *size, char *err, size_t errn);
/* Record i as a view into the mapping (no copy; px must not be written or freed, and is
 * valid until imb_shard_close). Returns 0, or -1 when i is out of range. */
int imb_shard_get(const imb_shard *s, int i, imb_image *view, int32_t *label);
void imb_shard_close(imb_shard *s);

/* "<root>/.imbench/<name>-<split>.shard" into buf, creating <root>/.imbench if needed.
 * Returns 0, or -1 with a message when the folder can't be made or buf is too small. */
int imb_cache_path(const char *root, const char *name, const char *split, char *buf, size_t n,
                   char *err, size_t errn);

/* Fingerprint building blocks: start from IMB_FINGERPRINT_INIT and fold in whatever the
 * shard depends on (reader name, split, store_size, every file's path/size/mtime). */
#define IMB_FINGERPRINT_INIT 0xcbf29ce484222325ull
uint64_t imb_fingerprint_bytes(uint64_t h, const void *p, size_t n);
uint64_t imb_fingerprint_str(uint64_t h, const char *s);
uint64_t imb_fingerprint_u64(uint64_t h, uint64_t v);
/* Folds in the path, size and modification time (ns) of a file; -1 with a message if stat fails. */
int imb_fingerprint_file(uint64_t *h, const char *path, char *err, size_t errn);
#endif
