/* Kaldi-compatible log-mel filterbank front end (compute-fbank-feats defaults, 80 bins, no dither) and its 512-point real FFT. */
#ifndef IMB_FBANK_H
#define IMB_FBANK_H
#include <stdint.h>

#define IMB_FBANK_FRAME 400   /* 25 ms at 16 kHz */
#define IMB_FBANK_HOP 160     /* 10 ms */
#define IMB_FBANK_NFFT 512    /* frame zero-padded to the next power of two */
#define IMB_FBANK_NBINS 80
#define IMB_FBANK_LOW_HZ 20.0 /* Kaldi's low_freq; high_freq is the Nyquist frequency */
#define IMB_FBANK_PREEMPH 0.97
#define IMB_FBANK_VERSION 1   /* folded into shard fingerprints: bump when the features change */

/* Kaldi's mel scale, 1127 ln(1 + hz / 700). */
double imb_mel(double hz);

/* 1 + (n - 400) / 160 (snip_edges: only whole frames), 0 when n < 400. */
int64_t imb_fbank_frames(int64_t n);

/* X[k] = sum_t x[t] exp(-2 pi i k t / 512) for k = 0..256 of a real x[512]: a 256-point complex
 * radix-2 FFT over the even/odd samples packed as (re, im) pairs, then the split step that
 * separates the two halves' spectra. */
void imb_rfft512(const float *x, float *re, float *im);

/* Filter b's weights over the FFT bins: bins first .. first+len-1 (within 0..255: the Nyquist
 * bin has no weight in Kaldi's bank) have weights w[0 .. len-1]. For tests and diagnostics. */
void imb_fbank_filter(int b, int *first, int *len, const float **w);

/* Features of x[n] (16 kHz samples on the int16 scale, as Kaldi reads WAV) into
 * out[frames * 80], row-major by frame, and returns frames (imb_fbank_frames(n)). For each
 * frame of 400 samples at hop 160: subtract the frame's mean (DC removal), pre-emphasis
 * y[t] = x[t] - 0.97 x[t-1] (x[-1] := x[0]), povey window (0.5 - 0.5 cos(2 pi t / 399))^0.85,
 * zero-pad to 512, power spectrum, 80 triangular filters equally spaced on the mel scale
 * between 20 Hz and 8 kHz, log(max(energy, FLT_EPSILON)). Matches
 * torchaudio.compliance.kaldi.fbank(num_mel_bins=80, dither=0) on the same samples (to
 * float rounding). Thread-safe; no allocation. */
int64_t imb_fbank(const float *x, int64_t n, float *out);
#endif
