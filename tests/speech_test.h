/* Helpers shared by the speech tests: tones, FLAC utterances, small LibriSpeech trees. */
#ifndef IMB_SPEECH_TEST_H
#define IMB_SPEECH_TEST_H
#include <stdint.h>
#include "fileio.h"

/* x[t] = amp sin(2 pi hz t / 16000) */
void st_tone(float *x, int64_t n, double hz, double amp);
/* A 16 kHz FLAC of n samples: a tone plus a little deterministic noise. */
void st_write_utt(const char *path, double hz, int64_t n);
/* <root>/<subset>/<10+s>/<100(10+s)+c>/ for nspk speakers x nchap chapters x nutt utterances:
 * utterance k says one of "HELLO WORLD", "IT'S A TEST", "ONE TWO  THREE", "DON'T PANIC"
 * (k % 4) over a tone of 300 + 100 k Hz lasting 0.3 + 0.05 k s. */
void st_tree(const char *root, const char *subset, int nspk, int nchap, int nutt);
#endif
