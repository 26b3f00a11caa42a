/* Layout writers behind imb_synth_write, one file each (internal to data/synth). */
#ifndef IMB_SYNTH_LAYOUTS_H
#define IMB_SYNTH_LAYOUTS_H
#include "synth.h"

int imb_synth_write_mnist_idx(const char *root, int per_class_train, int per_class_val, uint64_t seed, char *err,
                              size_t errn);
/* data/synth/text.c */
int imb_synth_write_agnews(const char *root, int per_class_train, int per_class_val, uint64_t seed, char *err,
                           size_t errn);
int imb_synth_write_imdb(const char *root, int per_class_train, int per_class_val, uint64_t seed, char *err,
                         size_t errn);
/* data/synth/speech.c: ntrain utterances in train-clean-100, nval in each eval subset */
int imb_synth_write_librispeech(const char *root, int ntrain, int nval, uint64_t seed, char *err, size_t errn);
#endif
