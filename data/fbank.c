/* Kaldi-compatible log-mel filterbank: povey window, pre-emphasis, 512-point real FFT, mel bank. */
#include "fbank.h"
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

enum { HALF = IMB_FBANK_NFFT / 2, NB = IMB_FBANK_NBINS };

/* Read-only after init: window, FFT twiddles and bit reversal, the mel filters as runs of
 * non-zero weights (each FFT bin feeds at most two filters, so the bank is sparse). */
static struct {
    float window[IMB_FBANK_FRAME];
    float cw[HALF / 2], sw[HALF / 2];   /* exp(-2 pi i k / 256) for the complex FFT */
    float cs[HALF + 1], ss[HALF + 1];   /* exp(-2 pi i k / 512) for the split step */
    int rev[HALF];
    int first[NB], len[NB];
    float w[NB][HALF];
} T;
static pthread_once_t once = PTHREAD_ONCE_INIT;

double imb_mel(double hz) { return 1127.0 * log(1.0 + hz / 700.0); }

static void init(void) {
    const double pi = 3.14159265358979323846;
    for (int t = 0; t < IMB_FBANK_FRAME; t++)
        T.window[t] = (float)pow(0.5 - 0.5 * cos(2.0 * pi * t / (IMB_FBANK_FRAME - 1)), 0.85);
    for (int k = 0; k < HALF / 2; k++) {
        T.cw[k] = (float)cos(2.0 * pi * k / HALF);
        T.sw[k] = (float)-sin(2.0 * pi * k / HALF);
    }
    for (int k = 0; k <= HALF; k++) {
        T.cs[k] = (float)cos(2.0 * pi * k / IMB_FBANK_NFFT);
        T.ss[k] = (float)-sin(2.0 * pi * k / IMB_FBANK_NFFT);
    }
    int bits = 0;
    while ((1 << bits) < HALF) bits++;
    for (int i = 0; i < HALF; i++) {
        int r = 0;
        for (int b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
        T.rev[i] = r;
    }
    /* Kaldi MelBanks: num_bins + 2 points equally spaced in mel between low and Nyquist;
     * bin i of the 256 (Nyquist excluded) sits at i * 16000 / 512 Hz. */
    double lo = imb_mel(IMB_FBANK_LOW_HZ), hi = imb_mel(8000.0), delta = (hi - lo) / (NB + 1);
    double width = 16000.0 / IMB_FBANK_NFFT;
    for (int b = 0; b < NB; b++) {
        double left = lo + b * delta, centre = left + delta, right = centre + delta;
        T.first[b] = -1;
        T.len[b] = 0;
        for (int i = 0; i < HALF; i++) {
            double m = imb_mel(width * i);
            if (m <= left || m >= right) continue;
            double v = m <= centre ? (m - left) / (centre - left) : (right - m) / (right - centre);
            if (T.first[b] < 0) T.first[b] = i;
            T.w[b][i - T.first[b]] = (float)v;
            T.len[b] = i - T.first[b] + 1;
        }
        if (T.first[b] < 0) T.first[b] = 0;
    }
}

void imb_fbank_filter(int b, int *first, int *len, const float **w) {
    pthread_once(&once, init);
    if (b < 0 || b >= NB) {
        *first = *len = 0;
        *w = NULL;
        return;
    }
    *first = T.first[b];
    *len = T.len[b];
    *w = T.w[b];
}

int64_t imb_fbank_frames(int64_t n) {
    return n < IMB_FBANK_FRAME ? 0 : 1 + (n - IMB_FBANK_FRAME) / IMB_FBANK_HOP;
}

/* in-place iterative radix-2 decimation in time over HALF complex points */
static void fft256(float *re, float *im) {
    for (int i = 0; i < HALF; i++) {
        int j = T.rev[i];
        if (j > i) {
            float t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    for (int size = 2; size <= HALF; size *= 2) {
        int half = size / 2, step = HALF / size;
        for (int s = 0; s < HALF; s += size)
            for (int k = 0; k < half; k++) {
                float wr = T.cw[k * step], wi = T.sw[k * step];
                int a = s + k, b = a + half;
                float tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
    }
}

void imb_rfft512(const float *x, float *re, float *im) {
    pthread_once(&once, init);
    float zr[HALF], zi[HALF];
    for (int k = 0; k < HALF; k++) {
        zr[k] = x[2 * k];
        zi[k] = x[2 * k + 1];
    }
    fft256(zr, zi);
    /* z = even + i odd, so E[k] = (Z[k] + conj Z[-k]) / 2, O[k] = (Z[k] - conj Z[-k]) / 2i and
     * X[k] = E[k] + exp(-2 pi i k / 512) O[k] for k = 0..256 (Z is 256-periodic). */
    for (int k = 0; k <= HALF; k++) {
        int a = k % HALF, b = (HALF - k) % HALF;
        float er = 0.5f * (zr[a] + zr[b]), ei = 0.5f * (zi[a] - zi[b]);
        float or_ = 0.5f * (zi[a] + zi[b]), oi = -0.5f * (zr[a] - zr[b]);
        re[k] = er + T.cs[k] * or_ - T.ss[k] * oi;
        im[k] = ei + T.cs[k] * oi + T.ss[k] * or_;
    }
}

int64_t imb_fbank(const float *x, int64_t n, float *out) {
    pthread_once(&once, init);
    int64_t frames = imb_fbank_frames(n);
    float buf[IMB_FBANK_NFFT], re[HALF + 1], im[HALF + 1], pw[HALF + 1];
    for (int64_t f = 0; f < frames; f++) {
        const float *s = x + f * IMB_FBANK_HOP;
        double mean = 0.0;
        for (int t = 0; t < IMB_FBANK_FRAME; t++) mean += s[t];
        mean /= IMB_FBANK_FRAME;
        for (int t = 0; t < IMB_FBANK_FRAME; t++) buf[t] = (float)(s[t] - mean);
        for (int t = IMB_FBANK_FRAME - 1; t > 0; t--) buf[t] -= (float)IMB_FBANK_PREEMPH * buf[t - 1];
        buf[0] -= (float)IMB_FBANK_PREEMPH * buf[0];
        for (int t = 0; t < IMB_FBANK_FRAME; t++) buf[t] *= T.window[t];
        memset(buf + IMB_FBANK_FRAME, 0, sizeof(float) * (IMB_FBANK_NFFT - IMB_FBANK_FRAME));
        imb_rfft512(buf, re, im);
        for (int k = 0; k <= HALF; k++) pw[k] = re[k] * re[k] + im[k] * im[k];
        float *o = out + f * NB;
        for (int b = 0; b < NB; b++) {
            double e = 0.0;
            for (int i = 0; i < T.len[b]; i++) e += (double)T.w[b][i] * pw[T.first[b] + i];
            o[b] = (float)log(e > FLT_EPSILON ? e : FLT_EPSILON);
        }
    }
    return frames;
}
