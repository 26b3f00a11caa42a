/* Speech front end and readers: real FFT vs a naive DFT, fbank frame counts, tone peaks and the
 * torchaudio fixture, symbol ids, audio decoding errors, LibriSpeech layout errors. */
#include "audio.h"
#include "checkrun.h"
#include "datatest.h"
#include "fbank.h"
#include "speech.h"
#include "speech_test.h"
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Suite *speech_data_suite(void);

static const double PI = 3.14159265358979323846;

/* ---------------------------------------------------------------- shared helpers */

void st_tone(float *x, int64_t n, double hz, double amp) {
    for (int64_t t = 0; t < n; t++) x[t] = (float)(amp * sin(2 * PI * hz * (double)t / 16000.0));
}

void st_write_utt(const char *path, double hz, int64_t n) {
    float *x = malloc(sizeof *x * (size_t)n);
    ck_assert_ptr_nonnull(x);
    st_tone(x, n, hz, 8000.0);
    /* a little deterministic noise so no filter sits at the log floor */
    uint32_t r = (uint32_t)(hz * 1000);
    for (int64_t t = 0; t < n; t++) {
        r = r * 1664525u + 1013904223u;
        x[t] += (float)((int)(r >> 24) - 128);
    }
    char err[1024] = "";
    ck_assert_msg(imb_audio_write_flac(path, x, n, 16000, err, sizeof err) == 0, "%s", err);
    free(x);
}

/* <root>/<subset>/<spk>/<chap>/ with nutt utterances per chapter; utterance k of a chapter says
 * texts[k % ntexts] and is a tone of 300 + 100 k Hz lasting 0.3 + 0.05 k s. */
static const char *const texts[] = {"HELLO WORLD", "IT'S A TEST", "ONE TWO  THREE", "DON'T PANIC"};
void st_tree(const char *root, const char *subset, int nspk, int nchap, int nutt) {
    char dir[PATHN], path[PATHN], err[1024];
    for (int s = 0; s < nspk; s++)
        for (int c = 0; c < nchap; c++) {
            int spk = 10 + s, chap = 100 * spk + c;
            dt_path(dir, "%s/%s/%d/%d", root, subset, spk, chap);
            ck_assert_msg(imb_mkdirs(dir, err, sizeof err) == 0, "%s", err);
            FILE *f = fopen(dt_path(path, "%s/%d-%d.trans.txt", dir, spk, chap), "w");
            ck_assert_ptr_nonnull(f);
            for (int k = 0; k < nutt; k++) {
                fprintf(f, "%d-%d-%04d %s\n", spk, chap, k, texts[k % 4]);
                st_write_utt(dt_path(path, "%s/%d-%d-%04d.flac", dir, spk, chap, k), 300.0 + 100 * k,
                             (int64_t)(16000 * (0.3 + 0.05 * k)));
            }
            fclose(f);
        }
}

/* ---------------------------------------------------------------- FFT and fbank */

static void naive_dft(const float *x, double *re, double *im) {
    for (int k = 0; k <= 256; k++) {
        double r = 0, i = 0;
        for (int t = 0; t < 512; t++) {
            double a = -2 * PI * (double)((k * t) % 512) / 512.0;
            r += x[t] * cos(a);
            i += x[t] * sin(a);
        }
        re[k] = r;
        im[k] = i;
    }
}

START_TEST(rfft_matches_naive_dft) {
    float x[512], re[257], im[257];
    double dr[257], di[257];
    uint32_t s = 12345u;
    for (int trial = 0; trial < 4; trial++) {
        for (int t = 0; t < 512; t++) {
            s = s * 1664525u + 1013904223u;
            x[t] = (float)((double)(s >> 8) / 16777216.0 * 2.0 - 1.0) * (trial == 3 ? 30000.0f : 1.0f);
        }
        if (trial == 1)   /* a pure cosine on bin 37 plus DC */
            for (int t = 0; t < 512; t++) x[t] = (float)(cos(2 * PI * 37 * t / 512.0) + 0.25);
        imb_rfft512(x, re, im);
        naive_dft(x, dr, di);
        double scale = 0;
        for (int k = 0; k <= 256; k++) scale = fmax(scale, hypot(dr[k], di[k]));
        for (int k = 0; k <= 256; k++) {
            ck_assert_msg(fabs(re[k] - dr[k]) <= 2e-6 * scale && fabs(im[k] - di[k]) <= 2e-6 * scale,
                          "trial %d bin %d: (%g, %g) vs (%g, %g)", trial, k, re[k], im[k], dr[k], di[k]);
        }
        if (trial == 1) {
            ck_assert(fabs(re[37] - 256.0) < 1e-3 && fabs(re[0] - 128.0) < 1e-3);
            ck_assert(fabs(re[36]) < 1e-3 && fabs(re[38]) < 1e-3);
        }
    }
}
END_TEST

START_TEST(frame_counts) {
    ck_assert_int_eq(imb_fbank_frames(0), 0);
    ck_assert_int_eq(imb_fbank_frames(399), 0);
    ck_assert_int_eq(imb_fbank_frames(400), 1);
    ck_assert_int_eq(imb_fbank_frames(559), 1);
    ck_assert_int_eq(imb_fbank_frames(560), 2);
    ck_assert_int_eq(imb_fbank_frames(16000), 98);
    static const int64_t ns[] = {400, 561, 1000, 4321, 16000};
    for (int i = 0; i < 5; i++) {
        int64_t n = ns[i];
        float *x = calloc((size_t)n, sizeof *x), *o = malloc(sizeof *o * 80 * 200);
        st_tone(x, n, 440.0, 1000.0);
        ck_assert_int_eq(imb_fbank(x, n, o), 1 + (n - 400) / 160);
        free(x);
        free(o);
    }
}
END_TEST

/* The mel filter whose centre is nearest the tone holds the largest energy in every frame. */
START_TEST(tone_peaks_in_its_mel_bin) {
    static const double hz[] = {250.0, 1000.0, 2500.0, 6000.0};
    double lo = imb_mel(20.0), hi = imb_mel(8000.0), delta = (hi - lo) / 81;
    for (int i = 0; i < 4; i++) {
        int64_t n = 8000;
        float *x = malloc(sizeof *x * (size_t)n), *o = malloc(sizeof *o * 80 * 50);
        st_tone(x, n, hz[i], 10000.0);
        int64_t frames = imb_fbank(x, n, o);
        int want = 0;
        for (int b = 1; b < 80; b++)
            if (fabs(lo + (b + 1) * delta - imb_mel(hz[i])) < fabs(lo + (want + 1) * delta - imb_mel(hz[i]))) want = b;
        for (int64_t f = 0; f < frames; f++) {
            int arg = 0;
            for (int b = 1; b < 80; b++)
                if (o[f * 80 + b] > o[f * 80 + arg]) arg = b;
            ck_assert_msg(arg == want, "%g Hz frame %lld: peak in bin %d, expected %d", hz[i], (long long)f, arg, want);
            /* far from the tone only leakage is left: at least 10 nats below the peak */
            int far = want < 40 ? 79 : 0;
            ck_assert(o[f * 80 + far] < o[f * 80 + want] - 10.0);
        }
        free(x);
        free(o);
    }
}
END_TEST

/* The filters are Kaldi's triangles: each rises to at most 1, consecutive filters cross where
 * one falls and the next rises, and bin 0 / the Nyquist bin carry no weight. */
START_TEST(mel_filters_are_kaldi_triangles) {
    for (int b = 0; b < 80; b++) {
        int first, len;
        const float *w;
        imb_fbank_filter(b, &first, &len, &w);
        ck_assert(len > 0 && first >= 1 && first + len <= 256);
        float mx = 0;
        for (int i = 0; i < len; i++) {
            ck_assert(w[i] > 0.0f && w[i] <= 1.0f);
            mx = fmaxf(mx, w[i]);
        }
        ck_assert(mx > 0.3f);
    }
    int f0, l0, f1, l1;
    const float *w0, *w1;
    imb_fbank_filter(40, &f0, &l0, &w0);
    imb_fbank_filter(41, &f1, &l1, &w1);
    for (int i = f1; i < f0 + l0; i++) ck_assert(fabsf(w0[i - f0] + w1[i - f1] - 1.0f) < 1e-5f);
}
END_TEST

/* tests/fixtures/fbank_ref.{wav,txt}: torchaudio.compliance.kaldi.fbank on the same samples
 * (tests/fixtures/make_fbank_fixture.py). Both sides compute in float32; the largest
 * difference seen is 6e-4 nats, in a bin 17 nats below the frame's loudest. */
START_TEST(fbank_matches_torchaudio_fixture) {
    char path[PATHN], err[1024] = "";
    imb_audio a;
    ck_assert_msg(imb_audio_read(dt_path(path, "%s/tests/fixtures/fbank_ref.wav", IMB_TEST_SRCDIR), &a, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(a.n, 8123);
    FILE *f = fopen(dt_path(path, "%s/tests/fixtures/fbank_ref.txt", IMB_TEST_SRCDIR), "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    int rows, cols;
    ck_assert_int_eq(fscanf(f, "%d %d", &rows, &cols), 2);
    ck_assert_int_eq(cols, 80);
    ck_assert_int_eq(rows, imb_fbank_frames(a.n));
    float *o = malloc(sizeof *o * 80 * (size_t)rows);
    ck_assert_int_eq(imb_fbank(a.x, a.n, o), rows);
    double worst = 0;
    for (int i = 0; i < rows * cols; i++) {
        double v;
        ck_assert_int_eq(fscanf(f, "%lf", &v), 1);
        worst = fmax(worst, fabs(v - o[i]));
        ck_assert_msg(fabs(v - o[i]) < 2e-3, "frame %d bin %d: %f, torchaudio %f", i / 80, i % 80, o[i], v);
    }
    fclose(f);
    free(o);
    imb_audio_free(&a);
}
END_TEST

/* ---------------------------------------------------------------- symbols */

START_TEST(symbols_round_trip) {
    ck_assert_int_eq(imb_speech_symbol(' '), 1);
    ck_assert_int_eq(imb_speech_symbol('a'), 2);
    ck_assert_int_eq(imb_speech_symbol('Z'), 27);
    ck_assert_int_eq(imb_speech_symbol('\''), 28);
    ck_assert_int_eq(imb_speech_symbol('-'), -1);
    ck_assert_int_eq(imb_speech_char(0), 0);
    for (int id = 1; id < IMB_SPEECH_NSYMBOLS; id++) ck_assert_int_eq(imb_speech_symbol(imb_speech_char(id)), id);
    int32_t ids[64];
    size_t bad = 99;
    int n = imb_speech_encode("  HELLO \t WORLD'S  ", ids, &bad);
    ck_assert_int_eq(n, 13);
    ck_assert_int_eq(ids[0], 2 + 'h' - 'a');
    ck_assert_int_eq(ids[5], IMB_SPEECH_SPACE);
    ck_assert_int_eq(ids[11], IMB_SPEECH_APOSTROPHE);
    char text[64];
    ck_assert_uint_eq(imb_speech_decode(ids, n, text, sizeof text), 13);
    ck_assert_str_eq(text, "hello world's");
    ck_assert_uint_eq(imb_speech_decode(ids, n, text, 6), 13);   /* cut, still terminated */
    ck_assert_str_eq(text, "hello");
    ck_assert_int_eq(imb_speech_encode("", ids, &bad), 0);
    ck_assert_int_eq(imb_speech_encode("ABC 1", ids, &bad), -1);
    ck_assert_uint_eq(bad, 4);
    ck_assert_int_eq(imb_speech_encode("CAF\xc3\xa9", ids, &bad), -1);
    ck_assert_uint_eq(bad, 3);
}
END_TEST

/* ---------------------------------------------------------------- audio */

static void write_wav(const char *path, int rate, int channels, int64_t frames, double hz) {
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    ck_assert_msg(sf != NULL, "%s: %s", path, sf_strerror(NULL));
    short *b = malloc(sizeof *b * (size_t)(frames * channels));
    for (int64_t t = 0; t < frames; t++)
        for (int c = 0; c < channels; c++)
            b[t * channels + c] = (short)(c == 0 ? 8000 * sin(2 * PI * hz * (double)t / rate) : 2000);
    ck_assert_int_eq(sf_writef_short(sf, b, frames), frames);
    sf_close(sf);
    free(b);
}

START_TEST(flac_round_trip_and_channels) {
    char *dir = dt_tmpdir(), path[PATHN], err[1024] = "";
    float x[3000];
    for (int t = 0; t < 3000; t++) x[t] = (float)((t * 37) % 65536 - 32768);
    ck_assert_msg(imb_audio_write_flac(dt_path(path, "%s/a.flac", dir), x, 3000, 16000, err, sizeof err) == 0, "%s", err);
    imb_audio a;
    ck_assert_msg(imb_audio_read(path, &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.n, 3000);
    ck_assert_int_eq(a.rate, 16000);
    for (int t = 0; t < 3000; t++) ck_assert_float_eq(a.x[t], x[t]);
    imb_audio_free(&a);
    /* stereo 16 kHz: channels averaged */
    write_wav(dt_path(path, "%s/st.wav", dir), 16000, 2, 1600, 500.0);
    ck_assert_msg(imb_audio_read(path, &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.channels, 2);
    ck_assert_int_eq(a.n, 1600);
    ck_assert_float_eq_tol(a.x[0], 1000.0f, 1e-3f);
    ck_assert_float_eq_tol(a.x[8], (float)((round(8000 * sin(2 * PI * 500 * 8 / 16000.0)) + 2000) / 2), 1e-3f);
    imb_audio_free(&a);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(corrupt_and_missing_audio_fail_with_the_path) {
    char *dir = dt_tmpdir(), path[PATHN], err[1024] = "";
    imb_audio a;
    ck_assert_int_eq(imb_audio_read(dt_path(path, "%s/none.flac", dir), &a, err, sizeof err), -1);
    dt_err_has(err, path, "No such file", NULL);
    ck_assert_ptr_null(a.x);
    /* garbage with a .flac name */
    char junk[4000];
    for (int i = 0; i < 4000; i++) junk[i] = (char)(i * 131 + 7);
    dt_write(dt_path(path, "%s/junk.flac", dir), junk, sizeof junk);
    ck_assert_int_eq(imb_audio_read(path, &a, err, sizeof err), -1);
    dt_err_has(err, path, "libsndfile", NULL);
    if (!imb_audio_have_ffmpeg()) dt_err_has(err, "FFmpeg support was not built", NULL);
    /* a real FLAC cut in half: the stream info promises more samples than there are */
    st_write_utt(dt_path(path, "%s/cut.flac", dir), 440.0, 32000);
    size_t n;
    uint8_t *b = dt_read(path, &n);
    dt_write(path, b, n / 2);
    ck_assert_int_eq(imb_audio_read(path, &a, err, sizeof err), -1);
    dt_err_has(err, path, "truncated or corrupt", NULL);
    /* frames of a FLAC overwritten in the middle */
    for (size_t i = n / 3; i < n / 3 + 200; i++) b[i] ^= 0x5a;
    dt_write(path, b, n);
    ck_assert_int_eq(imb_audio_read(path, &a, err, sizeof err), -1);
    dt_err_has(err, path, NULL);
    free(b);
    /* empty file */
    dt_write(dt_path(path, "%s/empty.flac", dir), "", 0);
    ck_assert_int_eq(imb_audio_read(path, &a, err, sizeof err), -1);
    dt_err_has(err, path, NULL);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

/* 22.05 kHz audio: resampled by FFmpeg when it was built, otherwise a clear error. */
START_TEST(wrong_rate_resampled_or_refused) {
    char *dir = dt_tmpdir(), path[PATHN], err[1024] = "";
    write_wav(dt_path(path, "%s/r22.wav", dir), 22050, 1, 22050, 1000.0);
    imb_audio a;
    int rc = imb_audio_read(path, &a, err, sizeof err);
    if (imb_audio_have_ffmpeg()) {
        ck_assert_msg(rc == 0, "%s", err);
        ck_assert_int_eq(a.src_rate, 22050);
        ck_assert_int_eq(a.rate, 16000);
        ck_assert(a.n >= 15990 && a.n <= 16010);
        /* still a 1 kHz tone: its energy lands in the 1 kHz filter */
        float *o = malloc(sizeof *o * 80 * 100);
        int64_t frames = imb_fbank(a.x, a.n, o);
        ck_assert(frames > 90);
        int arg = 0;
        for (int b = 1; b < 80; b++)
            if (o[50 * 80 + b] > o[50 * 80 + arg]) arg = b;
        double lo = imb_mel(20.0), delta = (imb_mel(8000.0) - lo) / 81;
        ck_assert(fabs(lo + (arg + 1) * delta - imb_mel(1000.0)) < delta);
        free(o);
        imb_audio_free(&a);
    } else {
        ck_assert_int_eq(rc, -1);
        dt_err_has(err, path, "22050 Hz", "16000 Hz", "FFmpeg support was not built", NULL);
    }
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- LibriSpeech reader errors */

#define OPEN_FAILS(root, split, ...)                                                       \
    do {                                                                                   \
        imb_speech_set *s_ = (imb_speech_set *)1;                                          \
        char e_[2048] = "";                                                                \
        ck_assert_int_eq(imb_speech_open(root, split, 1, NULL, &s_, e_, sizeof e_), -1);   \
        ck_assert_ptr_null(s_);                                                            \
        dt_err_has(e_, __VA_ARGS__, NULL);                                                 \
    } while (0)

START_TEST(reader_errors_name_file_and_line) {
    char *root = dt_tmpdir(), p[PATHN], q[PATHN];
    st_tree(root, "dev-clean", 1, 1, 3);
    imb_speech_set *s;
    char err[2048] = "";
    ck_assert_msg(imb_speech_open(root, "dev-clean", 1, NULL, &s, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(imb_speech_count(s), 3);
    imb_speech_close(s);
    OPEN_FAILS(root, "test-other", "test-other", "LibriSpeech");
    OPEN_FAILS(root, "dev-clean+", "empty");
    OPEN_FAILS(root, "dev-clean+dev-clean", "twice");
    const char *tr = dt_path(p, "%s/dev-clean/10/1000/10-1000.trans.txt", root);
    size_t n;
    uint8_t *orig = dt_read(tr, &n);
    /* a character outside the alphabet */
    const char *bad = "10-1000-0000 HELLO WORLD\n10-1000-0001 IT'S 4 TEST\n10-1000-0002 ONE\n";
    dt_write(tr, bad, strlen(bad));
    OPEN_FAILS(root, "dev-clean", tr, ":2:", "'4'", "10-1000-0001");
    /* a line without audio */
    const char *extra = "10-1000-0000 HELLO\n10-1000-0001 A\n10-1000-0002 B\n10-1000-0009 C\n";
    dt_write(tr, extra, strlen(extra));
    OPEN_FAILS(root, "dev-clean", tr, ":4:", "no audio file", "10-1000-0009");
    /* audio without a line */
    const char *missing = "10-1000-0000 HELLO\n10-1000-0002 B\n";
    dt_write(tr, missing, strlen(missing));
    OPEN_FAILS(root, "dev-clean", "10-1000-0001.flac", "no transcript line", tr);
    /* an empty transcript, a foreign id */
    const char *empty = "10-1000-0000 HELLO\n10-1000-0001\n10-1000-0002 B\n";
    dt_write(tr, empty, strlen(empty));
    OPEN_FAILS(root, "dev-clean", tr, ":2:", "empty transcript");
    const char *foreign = "10-1000-0000 HELLO\n11-1000-0001 A\n10-1000-0002 B\n";
    dt_write(tr, foreign, strlen(foreign));
    OPEN_FAILS(root, "dev-clean", tr, ":2:", "does not start with 10-1000-");
    /* no transcript file at all */
    ck_assert_int_eq(unlink(tr), 0);
    OPEN_FAILS(root, "dev-clean", "missing transcript file", "10-1000.trans.txt");
    dt_write(tr, orig, n);
    /* a corrupt audio file */
    const char *fl = dt_path(q, "%s/dev-clean/10/1000/10-1000-0001.flac", root);
    dt_write(fl, "not a flac file at all, just text", 33);
    OPEN_FAILS(root, "dev-clean", fl);
    /* too short for one frame */
    float x[300] = {0};
    ck_assert_int_eq(imb_audio_write_flac(fl, x, 300, 16000, err, sizeof err), 0);
    OPEN_FAILS(root, "dev-clean", fl, "shorter than one 25 ms frame");
    /* a wrong-rate file: resampled with FFmpeg, refused without */
    write_wav(fl, 8000, 1, 8000, 300.0);
    if (!imb_audio_have_ffmpeg()) {
        OPEN_FAILS(root, "dev-clean", fl, "8000 Hz", "FFmpeg support was not built");
    } else {
        ck_assert_msg(imb_speech_open(root, "dev-clean", 1, NULL, &s, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(imb_speech_frames(s, 1), imb_fbank_frames(16000));
        imb_speech_close(s);
    }
    free(orig);
    dt_rm_tree(root);
    free(root);
}
END_TEST

/* The tarballs unpack into LibriSpeech/: a root above it works too. */
START_TEST(reader_accepts_librispeech_folder_and_joined_splits) {
    char *root = dt_tmpdir(), p[PATHN], err[2048] = "";
    st_tree(dt_path(p, "%s/LibriSpeech", root), "train-clean-100", 2, 2, 2);
    st_tree(dt_path(p, "%s/LibriSpeech", root), "train-other-500", 1, 1, 3);
    imb_speech_set *s;
    ck_assert_msg(imb_speech_open(root, "train-clean-100+train-other-500", 1, NULL, &s, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(imb_speech_count(s), 2 * 2 * 2 + 3);
    ck_assert_str_eq(imb_speech_id(s, 0), "10-1000-0000");
    ck_assert_str_eq(imb_speech_id(s, 3), "10-1001-0001");
    ck_assert_str_eq(imb_speech_id(s, 4), "11-1100-0000");
    ck_assert_str_eq(imb_speech_id(s, 8), "10-1000-0000");   /* first of train-other-500 */
    ck_assert_ptr_null(imb_speech_id(s, 11));
    int32_t ids[64];
    char text[64];
    int n = imb_speech_targets(s, 10, ids);
    imb_speech_decode(ids, n, text, sizeof text);
    ck_assert_str_eq(text, "one two three");   /* double space collapsed */
    ck_assert_int_eq(imb_speech_frames(s, 10), imb_fbank_frames((int64_t)(16000 * 0.4)));
    ck_assert(imb_speech_present(root, "train-clean-100+train-other-500"));
    ck_assert(!imb_speech_present(root, "train-clean-100+dev-clean"));
    ck_assert(!imb_speech_present(root, "train-clean-100+"));
    ck_assert(access(dt_path(p, "%s/.imbench/librispeech-train-clean-100.shard", root), F_OK) == 0);
    ck_assert(access(dt_path(p, "%s/.imbench/librispeech-train-other-500.shard", root), F_OK) == 0);
    imb_speech_close(s);
    dt_rm_tree(root);
    free(root);
}
END_TEST

static Suite *front_suite(void) {
    Suite *s = suite_create("speech front end");
    TCase *tc = tcase_create("fbank");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rfft_matches_naive_dft);
    tcase_add_test(tc, frame_counts);
    tcase_add_test(tc, tone_peaks_in_its_mel_bin);
    tcase_add_test(tc, mel_filters_are_kaldi_triangles);
    tcase_add_test(tc, fbank_matches_torchaudio_fixture);
    tcase_add_test(tc, symbols_round_trip);
    suite_add_tcase(s, tc);
    TCase *rd = tcase_create("readers");
    tcase_set_timeout(rd, 120);
    tcase_add_test(rd, flac_round_trip_and_channels);
    tcase_add_test(rd, corrupt_and_missing_audio_fail_with_the_path);
    tcase_add_test(rd, wrong_rate_resampled_or_refused);
    tcase_add_test(rd, reader_errors_name_file_and_line);
    tcase_add_test(rd, reader_accepts_librispeech_folder_and_joined_splits);
    suite_add_tcase(s, rd);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(front_suite());
    srunner_add_suite(sr, speech_data_suite());
    return imb_check_run(sr);
}
