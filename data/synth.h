/* Synthetic mini datasets written in the real on-disk layouts (tests and smoke runs). */
#ifndef IMB_SYNTH_H
#define IMB_SYNTH_H
#include <stddef.h>
#include <stdint.h>
#include "image.h"

/* Number of distinct drawable classes. Class k draws shape k at a random position, size
 * and colour over a random background, plus pixel noise:
 *   0 disc, 1 square, 2 plus, 3 horizontal stripes, 4 vertical stripes, 5 ring,
 *   6 triangle, 7 diagonal stripes, 8 X, 9 checkerboard, 10 hollow square.
 * Shape and foreground/background contrast carry the class, colour does not, so a small
 * model has to learn shapes (and grayscale copies stay learnable). */
#define IMB_SYNTH_NSHAPES 11

/* Draws image `index` of class `cls` (0..IMB_SYNTH_NSHAPES-1) at h x w x c (c = 1 or 3);
 * a pure function of (seed, cls, index, h, w, c). */
int imb_synth_image(int cls, int h, int w, int c, uint64_t seed, uint64_t index, imb_image *out);

/* Writes a mini dataset under root (created if needed; existing files are overwritten):
 *  "imagenet": train/<wnid>/<wnid>_<i>.{JPEG,png,jpeg} and val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG
 *     for 6 classes (the first six ImageNet wnids) plus LOC_synset_mapping.txt; images are
 *     32..47 px a side. In train/n01440764 (when per_class_train >= 3) image 0 is a PNG
 *     named .JPEG, image 1 a grayscale JPEG and image 2 a CMYK JPEG, like the odd files of
 *     the real ImageNet.
 *  "imagenet-csv": the same with a flat val/ and the Kaggle LOC_val_solution.csv at root.
 *  "imagenet-txt": the same with a flat val/ and a "<file> <label index>" val.txt at root.
 *  "food101": images/<class>/<id>.jpg, meta/{classes,labels,train,test}.txt, 5 classes,
 *     per_class_val images per class in test.
 *  "food11": {training,validation,evaluation}/<cls>_<id>.jpg, 11 classes, 32x32;
 *     per_class_val images per class in validation and in evaluation.
 *  "mnist-idx": {train,t10k}-{images-idx3,labels-idx1}-ubyte, 10 classes of 28x28 gray
 *     shapes in shuffled order.
 *  "agnews": AG-News CSV (classes.txt World/Sports/Business/Sci-Tech, train.csv, test.csv):
 *     filler words plus topic words of the row's class (some non-ASCII or upper case), one
 *     row in eight with a word of another class; rows carry the corpus's quirks (doubled
 *     quotes, the \n escape, #39; and &amp; references, stray backslashes, empty descriptions).
 *  "imdb": aclImdb folders {train,test}/{neg,pos}/<id>_<rating>.txt (ratings 1..4 / 7..10)
 *     with sentiment words, "<br /><br />" breaks, plus train/unsup/ and train/urls_pos.txt
 *     (which the reader ignores).
 *  "librispeech": a LibriSpeech tree spoken by the espeak-ng program: LibriSpeech/<subset>/
 *     <spk>/<chap>/<spk>-<chap>-<utt>.flac (16 kHz mono FLAC through libsndfile) and
 *     <spk>-<chap>.trans.txt (upper case) for train-clean-100 (per_class_train utterances),
 *     dev-clean and test-clean (per_class_val each; voices of the training set), dev-other and
 *     test-other (per_class_val each; voices not in the training set). Sentences of 2..7 words
 *     from a vocabulary of a few hundred; each speaker is an espeak-ng voice + variant with its
 *     own speed and pitch. Fails with "--synth for librispeech needs espeak-ng" when the
 *     program is not on PATH. Deterministic for a given espeak-ng version.
 * Deterministic: the same arguments write the same bytes. */
int imb_synth_write(const char *layout, const char *root, int per_class_train, int per_class_val, uint64_t seed,
                    char *err, size_t errn);
#endif
