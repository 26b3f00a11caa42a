/* Audio decoding through libsndfile (FLAC, WAV, ...), handing other files to FFmpeg when built with it. */
#include "audio.h"
#include "fileio.h"
#include "config.h"
#include <errno.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 4 hours at 16 kHz: far beyond any utterance, and keeps sizes inside int64 / size_t math */
#define MAX_SAMPLES ((int64_t)16000 * 3600 * 4)

int imb_audio_have_ffmpeg(void) {
#ifdef IMB_HAVE_FFMPEG
    return 1;
#else
    return 0;
#endif
}

void imb_audio_free(imb_audio *a) {
    if (!a) return;
    free(a->x);
    memset(a, 0, sizeof *a);
}

/* The FFmpeg fallback, or the error saying it was not built. */
static int other_path(const char *path, imb_audio *out, const char *why, char *err, size_t errn) {
#ifdef IMB_HAVE_FFMPEG
    char e2[512];
    if (imb_audio_read_ffmpeg(path, out, e2, sizeof e2) == 0) return 0;
    return imb_errf(err, errn, "%s (FFmpeg: %s)", why, e2);
#else
    (void)path;
    (void)out;
    return imb_errf(err, errn, "%s; FFmpeg support was not built (configure found no libavformat, libavcodec, "
                    "libswresample, libavutil), so nothing else can decode or resample it", why);
#endif
}

int imb_audio_read(const char *path, imb_audio *out, char *err, size_t errn) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st) != 0) return imb_errf(err, errn, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return imb_errf(err, errn, "%s: not a regular file", path);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    char why[768];
    if (!sf) {
        snprintf(why, sizeof why, "%s: libsndfile cannot decode it: %s", path, sf_strerror(NULL));
        return other_path(path, out, why, err, errn);
    }
    if (info.samplerate != IMB_AUDIO_RATE) {
        sf_close(sf);
        snprintf(why, sizeof why, "%s: sample rate %d Hz, need %d Hz", path, info.samplerate, IMB_AUDIO_RATE);
        return other_path(path, out, why, err, errn);
    }
    if (info.channels < 1 || info.channels > 64) {
        sf_close(sf);
        return imb_errf(err, errn, "%s: %d channels", path, info.channels);
    }
    if (info.frames <= 0 || info.frames > MAX_SAMPLES) {
        sf_close(sf);
        return imb_errf(err, errn, "%s: %lld samples (need 1 .. %lld)", path, (long long)info.frames,
                        (long long)MAX_SAMPLES);
    }
    int ch = info.channels;
    float *x = malloc(sizeof *x * (size_t)info.frames);
    float *buf = malloc(sizeof *buf * 4096 * (size_t)ch);
    if (!x || !buf) {
        free(x);
        free(buf);
        sf_close(sf);
        return imb_errf(err, errn, "%s: out of memory for %lld samples", path, (long long)info.frames);
    }
    int64_t got = 0;
    while (got < info.frames) {
        sf_count_t want = info.frames - got < 4096 ? info.frames - got : 4096;
        sf_count_t k = sf_readf_float(sf, buf, want);
        if (k <= 0) break;
        for (sf_count_t i = 0; i < k; i++) {
            double s = 0.0;
            for (int c = 0; c < ch; c++) s += buf[i * ch + c];
            x[got + i] = (float)(s / ch * 32768.0);
        }
        got += k;
    }
    int sferr = sf_error(sf);
    const char *sfmsg = sf_strerror(sf);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", sfmsg ? sfmsg : "");
    sf_close(sf);
    free(buf);
    if (got != info.frames || sferr != SF_ERR_NO_ERROR) {
        free(x);
        return imb_errf(err, errn, "%s: truncated or corrupt audio: decoded %lld of %lld samples%s%s", path,
                        (long long)got, (long long)info.frames, sferr ? ": " : "", sferr ? msg : "");
    }
    out->x = x;
    out->n = got;
    out->rate = IMB_AUDIO_RATE;
    out->src_rate = info.samplerate;
    out->channels = ch;
    return 0;
}

int imb_audio_write_flac(const char *path, const float *x, int64_t n, int rate, char *err, size_t errn) {
    if (!x || n < 1 || rate < 1) return imb_errf(err, errn, "%s: nothing to write (%lld samples at %d Hz)", path,
                                                  (long long)n, rate);
    size_t tn = strlen(path) + 16;
    char *tmp = malloc(tn);
    short *buf = malloc(sizeof *buf * 4096);
    if (!tmp || !buf) {
        free(tmp);
        free(buf);
        return imb_errf(err, errn, "%s: out of memory", path);
    }
    snprintf(tmp, tn, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        free(buf);
        return imb_errf(err, errn, "%s: create temp file: %s", path, strerror(e));
    }
    (void)fchmod(fd, 0644);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = rate;
    info.channels = 1;
    info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    SNDFILE *sf = sf_open_fd(fd, SFM_WRITE, &info, 1);
    int rc = 0;
    if (!sf) {
        close(fd);
        rc = imb_errf(err, errn, "%s: libsndfile: %s", tmp, sf_strerror(NULL));
    }
    for (int64_t i = 0; rc == 0 && i < n; i += 4096) {
        int64_t k = n - i < 4096 ? n - i : 4096;
        for (int64_t j = 0; j < k; j++) {
            float v = x[i + j];
            v = v > 32767.0f ? 32767.0f : v < -32768.0f ? -32768.0f : v;
            buf[j] = (short)(v < 0 ? v - 0.5f : v + 0.5f);
        }
        if (sf_write_short(sf, buf, (sf_count_t)k) != k)
            rc = imb_errf(err, errn, "%s: write: %s", tmp, sf_strerror(sf));
    }
    if (sf && sf_close(sf) != 0 && rc == 0) rc = imb_errf(err, errn, "%s: close failed", tmp);
    if (rc == 0 && rename(tmp, path) != 0) rc = imb_errf(err, errn, "%s: rename: %s", path, strerror(errno));
    if (rc != 0) unlink(tmp);
    free(tmp);
    free(buf);
    return rc;
}
