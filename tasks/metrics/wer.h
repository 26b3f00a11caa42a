/* Word and character error rates, computed exactly as jiwer (4.x) does over a corpus. */
#ifndef IMB_WER_H
#define IMB_WER_H
#include <stdint.h>

/* Corpus sums. jiwer's wer() over lists of sentences is not a mean of per-sentence rates: it
 * is the sum of every sentence's word edit distance (substitutions + deletions + insertions
 * of a minimum alignment) over the total number of reference words; cer() the same over
 * characters. */
typedef struct imb_wer {
    int64_t word_edits, ref_words, hyp_words;
    int64_t char_edits, ref_chars;
    int64_t sentences;
} imb_wer;

/* Adds one (reference, hypothesis) pair of UTF-8 texts, transformed as jiwer's defaults do.
 * Words (wer_default): runs of two or more whitespace characters become one space, both ends
 * are stripped, and the text is split at spaces (so a lone tab stays inside a word, as in
 * jiwer). Characters (cer_default): both ends stripped, then every code point counts, spaces
 * included. Whitespace is Python's str.isspace(). Bytes that are not valid UTF-8 count as
 * one character each. Returns 0, or -1 when out of memory (acc unchanged). */
int imb_wer_add(imb_wer *acc, const char *ref, const char *hyp);
/* word_edits / ref_words as a fraction (jiwer's value); when the references hold no word at
 * all jiwer returns the number of inserted words instead, and so does this. */
double imb_wer_value(const imb_wer *acc);
double imb_cer_value(const imb_wer *acc);

/* Levenshtein distance between two sequences of tokens (unit costs). */
int64_t imb_edit_distance(const uint32_t *a, int64_t na, const uint32_t *b, int64_t nb);
#endif
