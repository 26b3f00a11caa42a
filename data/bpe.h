/* Byte-level BPE tokenizer: merges learned deterministically on normalised training text,
 * encode/decode, and its versioned, checksummed file beside the shards. */
#ifndef IMB_BPE_H
#define IMB_BPE_H
#include <stddef.h>
#include <stdint.h>

/* Ids: 0 is padding, 1..256 are the bytes 0..255 (so no input is ever out of vocabulary),
 * 257 + r is the token made by merge r. vocab = 257 + merges. */
#define IMB_BPE_PAD 0
#define IMB_BPE_BASE 257
/* File layout and pre-tokenisation version (bumped when either changes). */
#define IMB_BPE_VERSION 1

typedef struct imb_bpe imb_bpe;

/* A growable id vector: encode appends to it. */
typedef struct imb_ids { int32_t *v; size_t n, cap; } imb_ids;
void imb_ids_free(imb_ids *v);

/* Learns up to vocab_size - 257 merges on texts (normalised UTF-8). Pre-tokenisation: the text
 * is cut into pieces, each an optional single leading space plus a maximal run of one class
 * (letters and marks, numbers, anything else; a run ends after 64 bytes at a character
 * boundary); merges never cross pieces. Each step merges the
 * most frequent adjacent pair (counted over pieces weighted by their frequency); ties go to the
 * smaller left id, then the smaller right id, so the result depends only on the texts' multiset
 * of pieces. Training stops early when no pair occurs twice (imb_bpe_vocab says how many ids
 * were learned). vocab_size >= 257. NULL with err on bad arguments or out of memory. */
imb_bpe *imb_bpe_train(char *const *texts, int n, int vocab_size, char *err, size_t errn);
void imb_bpe_free(imb_bpe *b);
/* Ids in use (257 + merges learned) and the vocab_size it was trained for. */
int imb_bpe_vocab(const imb_bpe *b);
int imb_bpe_requested(const imb_bpe *b);
/* crc32 of the merge table: what the tokenizer's output depends on. */
uint32_t imb_bpe_hash(const imb_bpe *b);
/* The bytes of token id (NULL for the padding id or an id out of range). */
const uint8_t *imb_bpe_token(const imb_bpe *b, int id, size_t *len);

/* Appends the ids of s[0..n) to out: within each piece, the adjacent pair of lowest merge rank
 * is merged (all its occurrences, left to right) until none is left, which reproduces the
 * training segmentation. Any bytes are accepted. Keeps a cache of the pieces it has seen, so
 * one imb_bpe must not be used by two threads at once. 0, or -1 when out of memory. */
int imb_bpe_encode(imb_bpe *b, const char *s, size_t n, imb_ids *out);
/* The bytes of ids (padding skipped) as a malloc'd NUL-terminated string, *len its length;
 * NULL for an id outside [0, vocab) or out of memory. decode(encode(s)) == s for any s. */
char *imb_bpe_decode(const imb_bpe *b, const int32_t *ids, size_t n, size_t *len);

/* File layout (little-endian): header, 40 bytes: magic "IMBTOKEN", u32 version, u32 header
 * size, u32 vocab, u32 requested vocab_size, u64 fingerprint of what it was trained on, u32
 * crc32 of the merge table, u32 crc32(header[0..36)); then (vocab - 257) merges, u32 left id,
 * u32 right id each (both < the merge's own id). Written atomically (temp file + rename). */
int imb_bpe_save(const imb_bpe *b, const char *path, uint64_t fingerprint, char *err, size_t errn);
/* Returns an imb_shard_status (shard.h): OK, MISSING, STALE (version or fingerprint differ),
 * CORRUPT (magic, sizes, checksums, a merge referring to a later id) or IOERR; err says why. */
int imb_bpe_load(const char *path, uint64_t fingerprint, imb_bpe **out, char *err, size_t errn);
#endif
