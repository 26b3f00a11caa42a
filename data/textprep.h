/* Text corpus -> tokenizer + text shards under <root>/.imbench/, reused while the sources,
 * the vocabulary size and the formats are unchanged (stale or corrupt files are rebuilt). */
#ifndef IMB_TEXTPREP_H
#define IMB_TEXTPREP_H
#include <stdio.h>
#include "bpe.h"
#include "text.h"
#include "textshard.h"

/* The BPE tokenizer of a corpus: <root>/.imbench/<name>-bpe<vocab_size>-tokenizer.tok, trained on
 * train_split (its fingerprint, the vocabulary size and the format versions in the file's
 * fingerprint). Loads it when valid, else reads the split, trains and writes it. log may be NULL. */
int imb_text_tokenizer(const imb_text_reader *r, const char *name, const char *root, const char *train_split,
                       int vocab_size, imb_bpe **out, FILE *log, char *err, size_t errn);
/* The shard of one split encoded with tok: <root>/.imbench/<name>-bpe<vocab_size>-<split>.shard;
 * its fingerprint folds the split's sources with the tokenizer's merge table. */
int imb_text_prepare_split(const imb_text_reader *r, const char *name, const char *root, const char *split,
                           imb_bpe *tok, imb_text_shard *out, FILE *log, char *err, size_t errn);
#endif
