/* Text shards (token ids + labels in one checksummed file, read through mmap) and the batch
 * loader that pads them. */
#ifndef IMB_TEXTSHARD_H
#define IMB_TEXTSHARD_H
#include <stddef.h>
#include <stdint.h>

/* File layout (all integers little-endian):
 *   header, 80 bytes: magic "IMBTEXTS", u32 version, u32 header size, u64 record count,
 *     u32 nclasses, u32 vocab, u32 bytes per id (2 when vocab <= 65536, else 4), u32 0,
 *     u64 source fingerprint, u64 index offset, u64 payload offset, u64 payload size,
 *     u32 crc32(index || payload), u32 crc32(header[0..76))
 *   index, 16 bytes per record: u64 offset of its first id (in ids), u32 length, i32 label
 *   payload: every record's ids, whole (untruncated: max_len applies when batching), in order.
 * Status codes are imb_shard_status (shard.h). */
#define IMB_TEXTSHARD_VERSION 1

typedef struct imb_text_shard {
    char *path;
    int n, nclasses, vocab, id_bytes;
    int64_t ntokens;
    uint64_t fingerprint;
    const uint8_t *map;      /* whole file, PROT_READ */
    size_t map_size;
    const uint8_t *index, *payload;
} imb_text_shard;

/* Record i is ids[offsets[i] .. offsets[i + 1]) with labels[i]; every id in [0, vocab), every
 * label in [0, nclasses), every record at least one id. Written atomically (temp + rename). */
int imb_text_shard_write(const char *path, int n, const size_t *offsets, const int32_t *ids, const int32_t *labels,
                         int nclasses, int vocab, uint64_t fingerprint, char *err, size_t errn);
/* Maps and validates (magic, version, checksums, sizes, fingerprint, every index entry and id). */
int imb_text_shard_open(const char *path, uint64_t fingerprint, imb_text_shard *s, char *err, size_t errn);
/* Record i: *len its full length, *label; its first min(len, max) ids go to dst (when dst).
 * 0, or -1 when i is out of range. */
int imb_text_shard_get(const imb_text_shard *s, int i, int32_t *dst, int max, int *len, int32_t *label);
void imb_text_shard_close(imb_text_shard *s);

/* Batches over an open shard. Epoch e visits the records in a Fisher-Yates order drawn from
 * (seed, e) (identity without shuffle); batch k holds positions [k*batch, (k+1)*batch); the
 * last shorter batch is dropped when drop_last. A batch is padded to its longest record, cut
 * to max_len (longer records keep their first max_len ids). Deterministic and seekable, so a
 * resumed run sees the same batches; no threads: batching is a copy out of the mapping. */
typedef struct imb_text_loader imb_text_loader;
imb_text_loader *imb_text_loader_new(const imb_text_shard *s, int batch, int max_len, int shuffle, int drop_last,
                                     uint64_t seed, char *err, size_t errn);
/* One rank of a data-parallel group (as imb_loader_new_rank): global batch k of epoch e holds
 * positions [k*batch*world, (k+1)*batch*world) and this rank loads [(k*world + rank)*batch,
 * +batch). world > 1 needs drop_last. imb_text_loader_new is rank 0 of 1. */
imb_text_loader *imb_text_loader_new_rank(const imb_text_shard *s, int batch, int max_len, int shuffle, int drop_last,
                                          uint64_t seed, int rank, int world, char *err, size_t errn);
/* Length grouping, so batches carry little padding: the epoch's order is cut into windows of
 * `window` global batches, each window is sorted by length (capped at max_len; ties keep their
 * order) and, when shuffling, its batches are put in an order drawn from (seed, epoch). Still a
 * pure function of (seed, epoch), so resuming and ranks work as before. 0 (the default) = off;
 * a window of at least imb_text_loader_batches sorts the whole epoch (evaluation). */
void imb_text_loader_bucket(imb_text_loader *l, int64_t window);
/* fixed = 1: every batch is padded to max_len (one shape for the whole run, so a CUDA graph
 * can replay every step); 0 (the default): to its longest record. */
void imb_text_loader_fixed(imb_text_loader *l, int fixed);
/* Writes ids i32 [count, *len] (padding id 0), mask f32 [count, *len] (1 token, 0 padding) and
 * labels [count], row-major and packed (ids, mask hold batch * max_len) and returns 0; at the
 * end of an epoch returns 1 with *count = 0 (the next call starts the next epoch). */
int imb_text_loader_next(imb_text_loader *l, int32_t *ids, float *mask, int32_t *labels, int *count, int *len);
/* Next imb_text_loader_next returns batch `batch` of `epoch` (== batches: the end marker). */
int imb_text_loader_seek(imb_text_loader *l, int64_t epoch, int64_t batch);
void imb_text_loader_position(const imb_text_loader *l, int64_t *epoch, int64_t *batch);
int64_t imb_text_loader_batches(const imb_text_loader *l);
void imb_text_loader_free(imb_text_loader *l);
#endif
