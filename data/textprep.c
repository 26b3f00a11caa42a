/* Text corpus -> BPE tokenizer and text shards in the cache folder (see textprep.h). */
#include "textprep.h"
#include "fileio.h"
#include "shard.h"
#include <stdlib.h>
#include <string.h>

static int tokenizer_path(const char *root, const char *name, int vocab, char *path, size_t n, char *err, size_t errn) {
    char tag[96];
    snprintf(tag, sizeof tag, "%s-bpe%d", name, vocab);
    /* imb_cache_path makes the folder; the tokenizer sits beside the shards with its own suffix */
    if (imb_cache_path(root, tag, "tokenizer", path, n, err, errn)) return -1;
    char *dot = strrchr(path, '.');
    size_t room = n - (size_t)(dot - path);
    if (room < 5) return imb_errf(err, errn, "%s: path too long", root);
    memcpy(dot, ".tok", 5);
    return 0;
}

int imb_text_tokenizer(const imb_text_reader *r, const char *name, const char *root, const char *train_split,
                       int vocab_size, imb_bpe **out, FILE *log, char *err, size_t errn) {
    *out = NULL;
    char path[4096], why[512];
    uint64_t fp;
    if (r->fingerprint(root, train_split, &fp, err, errn)) return -1;
    fp = imb_fingerprint_u64(imb_fingerprint_u64(fp, (uint64_t)vocab_size), IMB_BPE_VERSION);
    if (tokenizer_path(root, name, vocab_size, path, sizeof path, err, errn)) return -1;
    int st = imb_bpe_load(path, fp, out, why, sizeof why);
    if (st == IMB_SHARD_OK) return 0;
    if (st == IMB_SHARD_IOERR) return imb_errf(err, errn, "%s", why);
    imb_text_list l;
    if (r->read(root, train_split, &l, err, errn)) return -1;
    if (log)
        fprintf(log, "prepare: %s: training a %d-id BPE tokenizer on %d %s texts -> %s (%s)\n", name, vocab_size, l.n,
                train_split, path, st == IMB_SHARD_MISSING ? "new" : why);
    imb_bpe *b = imb_bpe_train(l.texts, l.n, vocab_size, err, errn);
    imb_text_list_free(&l);
    if (!b) return -1;
    if (imb_bpe_save(b, path, fp, err, errn)) {
        imb_bpe_free(b);
        return -1;
    }
    if (log && imb_bpe_vocab(b) < vocab_size)
        fprintf(log, "prepare: %s: %d ids learned (no pair occurs twice beyond that)\n", name, imb_bpe_vocab(b));
    *out = b;
    return 0;
}

int imb_text_prepare_split(const imb_text_reader *r, const char *name, const char *root, const char *split,
                           imb_bpe *tok, imb_text_shard *out, FILE *log, char *err, size_t errn) {
    char path[4096], tag[96], why[512];
    uint64_t fp;
    if (r->fingerprint(root, split, &fp, err, errn)) return -1;
    fp = imb_fingerprint_u64(imb_fingerprint_u64(fp, imb_bpe_hash(tok)), (uint64_t)imb_bpe_vocab(tok));
    snprintf(tag, sizeof tag, "%s-bpe%d", name, imb_bpe_requested(tok));
    if (imb_cache_path(root, tag, split, path, sizeof path, err, errn)) return -1;
    int st = imb_text_shard_open(path, fp, out, why, sizeof why);
    if (st == IMB_SHARD_OK) return 0;
    if (st == IMB_SHARD_IOERR) return imb_errf(err, errn, "%s", why);
    imb_text_list l;
    if (r->read(root, split, &l, err, errn)) return -1;
    imb_ids ids = { 0 };
    size_t *off = malloc(sizeof *off * ((size_t)l.n + 1));
    int rc = off ? 0 : imb_errf(err, errn, "%s: out of memory", path);
    for (int i = 0; !rc && i < l.n; i++) {
        off[i] = ids.n;
        if (imb_bpe_encode(tok, l.texts[i], strlen(l.texts[i]), &ids))
            rc = imb_errf(err, errn, "%s: out of memory while encoding", path);
    }
    if (!rc) {
        off[l.n] = ids.n;
        if (log)
            fprintf(log, "prepare: %s %s: %d texts, %zu tokens (%.1f per text) -> %s (%s)\n", name, split, l.n, ids.n,
                    (double)ids.n / l.n, path, st == IMB_SHARD_MISSING ? "new" : why);
        rc = imb_text_shard_write(path, l.n, off, ids.v, l.labels, l.nclasses, imb_bpe_vocab(tok), fp, err, errn);
    }
    free(off);
    imb_ids_free(&ids);
    imb_text_list_free(&l);
    if (!rc && imb_text_shard_open(path, fp, out, err, errn) != IMB_SHARD_OK) rc = -1;
    return rc;
}
