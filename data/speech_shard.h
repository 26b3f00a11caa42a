/* Speech feature shards (internal to data/): one LibriSpeech subset's ids, symbol targets, half-float log-mel features and per-bin sums, checksummed, read through mmap. */
#ifndef IMB_SPEECH_SHARD_H
#define IMB_SPEECH_SHARD_H
#include <stddef.h>
#include <stdint.h>
#include "speech.h"

/* File layout (integers little-endian):
 *   header, 128 bytes: magic "IMBSPCH\0", u32 version, u32 header size, u64 utterances,
 *     u32 nmel, u32 feature type (1 = IEEE half), u64 source fingerprint, u64 total frames,
 *     u64 features offset, u64 index offset, u64 targets offset, u64 ids offset, u64 file size,
 *     u32 max frames, u32 crc32(stats), u32 crc32(features .. end of file), zeros,
 *     u32 crc32(header[0..124)) at 124
 *   stats at 128: f64 frame count, f64 sum[nmel], f64 sum of squares[nmel] (over every frame)
 *   features at 64-byte alignment: each utterance's [frames, nmel] halves, back to back
 *   index, 40 bytes per utterance: u32 frames, u32 target count, u32 id length, u32 0,
 *     u64 first target, u64 first id byte, u64 first frame
 *   targets: one byte per symbol id (< 29)
 *   ids: the utterance ids, each followed by a NUL
 * Statistics come before the features so a training split's CMVN can be read without
 * touching the rest (imb_speech_shard_stats). */
#define IMB_SPEECH_SHARD_VERSION 1

typedef struct imb_speech_stats {
    double count;
    double sum[IMB_SPEECH_NMEL], sumsq[IMB_SPEECH_NMEL];
} imb_speech_stats;

typedef struct imb_speech_shard {
    char *path;
    int n;
    uint64_t fingerprint;
    int64_t total_frames;
    int max_frames;
    imb_speech_stats stats;
    const uint8_t *map;
    size_t map_size;
    const uint8_t *feats, *index, *targets, *ids;
} imb_speech_shard;

typedef struct imb_speech_writer imb_speech_writer;
/* Starts writing path through a temp file in the same folder. NULL with err on failure. */
imb_speech_writer *imb_speech_writer_new(const char *path, uint64_t fingerprint, char *err, size_t errn);
/* Appends one utterance (frames >= 1, targets < 29). 0 or -1 with err (the writer is then
 * only good for abort). */
int imb_speech_writer_add(imb_speech_writer *w, const char *id, const int32_t *targets, int ntargets,
                          const float *feats, int frames, char *err, size_t errn);
/* Writes index, header, fsyncs and renames over the path (at least one utterance needed);
 * frees w either way. 0 or -1 with err (the temp file removed). */
int imb_speech_writer_finish(imb_speech_writer *w, char *err, size_t errn);
void imb_speech_writer_abort(imb_speech_writer *w);

/* Maps and validates (magic, version, checksums, every index entry, fingerprint); returns an
 * imb_shard_status (shard.h) with "<path>: <field>: <what>" in err when not OK. */
int imb_speech_shard_open(const char *path, uint64_t fingerprint, imb_speech_shard *s, char *err, size_t errn);
void imb_speech_shard_close(imb_speech_shard *s);
/* Utterance i: frames, target count, id (NUL-terminated in the mapping), target bytes and the
 * first half of its features. */
typedef struct imb_speech_utt {
    int frames, ntargets;
    const char *id;
    const uint8_t *targets;
    const uint16_t *feats;   /* [frames, nmel] halves; unaligned-safe reads via memcpy */
} imb_speech_utt;
void imb_speech_shard_utt(const imb_speech_shard *s, int i, imb_speech_utt *u);
/* Reads only the header and statistics of the shard at path (both checksummed). An
 * imb_shard_status. */
int imb_speech_shard_stats(const char *path, imb_speech_stats *st, char *err, size_t errn);

/* Where utterance i's features lie in its shard's mapping (n bytes), for read-ahead hints;
 * NULL when out of range. (speech_set.c) */
struct imb_speech_set;
const void *imb_speech_feature_bytes(const struct imb_speech_set *s, int i, size_t *n);

/* IEEE half <-> float, round to nearest even (overflow to infinity, which log-mel values never reach). */
uint16_t imb_f32_to_f16(float f);
float imb_f16_to_f32(uint16_t h);
#endif
