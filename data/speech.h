/* Speech data for CTC: symbol ids, LibriSpeech splits packed as log-mel feature shards, CMVN, SpecAugment and the padded-batch loader. */
#ifndef IMB_SPEECH_H
#define IMB_SPEECH_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- symbols
 * 29 CTC symbols: blank 0, space 1, 'a'..'z' 2..27, apostrophe 28. LibriSpeech transcripts
 * are upper case and are mapped to lower case; nothing else is accepted. */
#define IMB_SPEECH_NSYMBOLS 29
#define IMB_SPEECH_BLANK 0
#define IMB_SPEECH_SPACE 1
#define IMB_SPEECH_APOSTROPHE 28

/* ' ' -> 1, 'a'..'z' and 'A'..'Z' -> 2..27, '\'' -> 28, anything else -> -1. */
int imb_speech_symbol(int c);
/* The inverse: 1 -> ' ', 2..27 -> 'a'..'z', 28 -> '\''; blank and out-of-range ids -> 0. */
int imb_speech_char(int id);
/* Transcript text -> ids: upper case to lower, runs of spaces and tabs collapsed into one
 * space, both ends trimmed. ids needs strlen(text) slots. Returns the number of ids (0 for
 * an empty or all-blank text), or -1 with *bad (if not NULL) set to the byte offset of the
 * first character outside the alphabet. */
int imb_speech_encode(const char *text, int32_t *ids, size_t *bad);
/* ids -> text (blanks skipped, no CTC collapsing: that is the decoder's job), NUL-terminated
 * and cut at textn - 1 characters. Returns the full length it needed (like snprintf). */
size_t imb_speech_decode(const int32_t *ids, int n, char *text, size_t textn);

/* ---------------------------------------------------------------- features
 * 80-bin log-mel filterbank with Kaldi's conventions (data/fbank.h has the details): 16 kHz
 * input on the int16 scale, 25 ms povey window, 10 ms hop, snip_edges, so an utterance of N
 * samples has 1 + (N - 400) / 160 frames (0 below 400 samples). */
#define IMB_SPEECH_RATE 16000
#define IMB_SPEECH_NMEL 80

/* ---------------------------------------------------------------- sets
 * A split is one LibriSpeech subset or several joined by '+', e.g.
 * "train-clean-100+train-clean-360+train-other-500". Subsets are the folders
 * <root>/<subset>/<spk>/<chap>/ holding <spk>-<chap>-<utt>.flac (or any other extension
 * libsndfile or, when built with it, FFmpeg decodes) and <spk>-<chap>.trans.txt; <root> may
 * also be the folder above LibriSpeech/ (the tarballs' top folder). Every subset is packed
 * once into <root>/.imbench/librispeech-<subset>.shard: per utterance its id, the symbol ids
 * of its transcript and its features [frames, 80] stored as IEEE half floats (log-mel values
 * lie in about [-16, 30]: half's 11-bit mantissa keeps them to 0.016 at worst, well under the
 * CMVN-scaled noise SpecAugment adds, and halves the cache: 960 h of speech is ~55 GB in f16),
 * plus the subset's per-bin sums over all its frames (sum, sum of squares, count in double)
 * from which a split's CMVN is exact. The cache is rebuilt when missing, stale (different
 * files, sizes or modification times, or another format/front-end version) or corrupt. */
typedef struct imb_speech_set imb_speech_set;

/* Opens a split, first (re)building any subset shard that needs it (nthreads decode + fbank
 * workers, 0 = every online core; progress lines to log, NULL = quiet). Reader errors name
 * the file (and line for transcripts): unreadable or corrupt audio, a sample rate other than
 * 16 kHz without FFmpeg ("... FFmpeg support was not built"), an audio file without a
 * transcript line or a line without audio, a character outside the alphabet. Returns 0, or
 * -1 with err set and *out NULL. */
int imb_speech_open(const char *root, const char *split, int nthreads, FILE *log, imb_speech_set **out, char *err,
                    size_t errn);
/* Only (re)builds the shards of split (harness prepare). 0 or -1 with err. */
int imb_speech_prepare(const char *root, const char *split, int nthreads, FILE *log, char *err, size_t errn);
/* NULL is fine. */
void imb_speech_close(imb_speech_set *s);

/* Utterances are indexed 0 .. count-1: subsets in the order named, speakers, chapters and
 * utterances in strcmp order within each. */
int imb_speech_count(const imb_speech_set *s);
int64_t imb_speech_total_frames(const imb_speech_set *s);
int imb_speech_max_frames(const imb_speech_set *s);
/* Frames of utterance i (0 when i is out of range). */
int imb_speech_frames(const imb_speech_set *s, int i);
/* "<spk>-<chap>-<utt>", valid until close (NULL when out of range). */
const char *imb_speech_id(const imb_speech_set *s, int i);
/* Transcript length in symbols, and the symbols copied into out (imb_speech_decode turns them
 * back into the normalised text: the reference for WER). -1 when out of range. */
int imb_speech_target_len(const imb_speech_set *s, int i);
int imb_speech_targets(const imb_speech_set *s, int i, int32_t *out);
/* Features of utterance i as float [frames, 80], normalised (x - mean) * istd when mean and
 * istd are given (both or neither). 0, or -1 when out of range. */
int imb_speech_features(const imb_speech_set *s, int i, const float *mean, const float *istd, float *out);

/* Global CMVN of a set (every frame of every subset): per-bin mean and 1 / std, std from the
 * population variance floored at 1e-10 (like ESPnet's GlobalMVN). 0 or -1 with err. */
int imb_speech_cmvn(const imb_speech_set *s, float mean[IMB_SPEECH_NMEL], float istd[IMB_SPEECH_NMEL], char *err,
                    size_t errn);
/* The same from the cached shards of split without opening the split (reads only their
 * headers and statistics, checksummed; no listing of the audio files): for evaluating with a
 * training split's CMVN when only the eval split is at hand. Fails when a shard is missing. */
int imb_speech_cmvn_read(const char *root, const char *split, float mean[IMB_SPEECH_NMEL],
                         float istd[IMB_SPEECH_NMEL], char *err, size_t errn);

/* ---------------------------------------------------------------- SpecAugment */
typedef struct imb_specaug_opts {
    int freq_masks;      /* 2 frequency masks ... */
    int freq_width;      /* ... each F ~ U{0..27} bins wide at f0 ~ U{0..80-F} */
    int time_masks;      /* 2 time masks ... */
    double time_ratio;   /* ... each T ~ U{0..floor(0.05 * frames)} wide at t0 ~ U{0..frames-T} */
} imb_specaug_opts;
/* The LibriSpeech "LD" policy (Park et al. 2019) with the time-mask width capped at 5% of
 * each utterance (as in adaptive SpecAugment), without time warping. */
void imb_specaug_defaults(imb_specaug_opts *o);
/* Masks feats [frames, nmel] in place with `value` (0 after CMVN = the mean). Every draw is a
 * counter-based function of (seed, epoch, index), so an utterance gets the same masks in the
 * same epoch whatever the batch or thread. */
void imb_specaug_apply(const imb_specaug_opts *o, float *feats, int frames, int nmel, float value, uint64_t seed,
                       uint64_t epoch, uint64_t index);

/* ---------------------------------------------------------------- loader */
typedef struct imb_speech_loader_opts {
    int batch;              /* utterances per batch, >= 1 */
    int shuffle;            /* epoch e visits utterances in a permutation drawn from (seed, e) */
    int drop_last;          /* drop the one shorter batch of an epoch */
    uint64_t seed;
    /* Bucketing: 0 = batches are consecutive runs of the permutation. k > 0 = each run of
     * k * batch permuted utterances is sorted by length (stable, so ties keep permutation
     * order) and cut into k batches, then the order of all batches of the epoch is shuffled
     * from (seed, epoch) (when shuffle): batches hold utterances of similar length, so little
     * padding, while each epoch still mixes long and short. Without shuffle the set order is
     * sorted by length in runs of k * batch and batches keep that order (eval). */
    int bucket;
    int pad_multiple;       /* tmax rounded up to a multiple of this (>= 1), e.g. 4 for 2 stride-2 convs */
    const float *mean, *istd;   /* CMVN [80] applied to every frame; both NULL = raw log-mel */
    int specaug;            /* 1: SpecAugment (training only) */
    imb_specaug_opts aug;
} imb_speech_loader_opts;
/* batch, no shuffle/bucketing/specaug, pad_multiple 1, no CMVN; train = 1 turns on shuffle,
 * bucket 50 and SpecAugment with imb_specaug_defaults. */
void imb_speech_loader_defaults(imb_speech_loader_opts *o, int batch, int train);

/* One batch; the arrays belong to the loader and stay valid until its next call. */
typedef struct imb_speech_batch {
    int count;                      /* utterances (<= opts.batch) */
    int tmax;                       /* padded frames: max length, rounded up to pad_multiple */
    int nmel;                       /* 80 */
    const float *feats;             /* [count, tmax, nmel]; rows past an utterance's length are 0 */
    const int32_t *lengths;         /* [count] frames */
    const int32_t *targets;         /* [ntargets] symbol ids of all utterances, back to back */
    const int32_t *target_lengths;  /* [count] */
    int ntargets;
    const int32_t *index;           /* [count] utterance indices in the set (imb_speech_id) */
    int64_t epoch, batch;           /* position this batch came from */
} imb_speech_batch;

typedef struct imb_speech_loader imb_speech_loader;
/* The set must stay open (and mean/istd valid) until imb_speech_loader_free. NULL with err on
 * bad options (including drop_last leaving no batch). */
imb_speech_loader *imb_speech_loader_new(const imb_speech_set *s, const imb_speech_loader_opts *o, char *err,
                                         size_t errn);
/* Fills *b with the next batch and returns 0; at the end of an epoch returns 1 with
 * b->count = 0, and the following call starts the next epoch. -1 on failure
 * (imb_speech_loader_error). The batch depends only on (seed, epoch, batch index). */
int imb_speech_loader_next(imb_speech_loader *l, imb_speech_batch *b);
/* Position of the batch the next call returns (save in checkpoints), and the way back to it:
 * batch_index == imb_speech_loader_batches means "at the end of the epoch". 0 or -1. */
void imb_speech_loader_position(const imb_speech_loader *l, int64_t *epoch, int64_t *batch_index);
int imb_speech_loader_seek(imb_speech_loader *l, int64_t epoch, int64_t batch_index);
int64_t imb_speech_loader_batches(const imb_speech_loader *l);
const char *imb_speech_loader_error(const imb_speech_loader *l);
void imb_speech_loader_free(imb_speech_loader *l);
#endif
