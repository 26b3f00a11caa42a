/* Audio decoding to 16 kHz mono samples: libsndfile for FLAC/WAV, FFmpeg (when built with it) for other containers and resampling. */
#ifndef IMB_AUDIO_H
#define IMB_AUDIO_H
#include <stddef.h>
#include <stdint.h>

#define IMB_AUDIO_RATE 16000

typedef struct imb_audio {
    float *x;        /* n samples on the int16 scale ([-32768, 32767], as Kaldi reads WAV) */
    int64_t n;
    int rate;        /* always IMB_AUDIO_RATE on success */
    int src_rate;    /* the file's own rate */
    int channels;    /* the file's channels; several are averaged into one */
} imb_audio;

/* 1 when this build decodes through FFmpeg (libavformat + libavcodec + libswresample). */
int imb_audio_have_ffmpeg(void);

/* Decodes path into *out (zeroed on error). libsndfile is tried first (FLAC, WAV, Ogg, ...);
 * a file it can't open, or one whose rate is not 16 kHz, goes through FFmpeg, which decodes
 * any container/codec it knows and resamples (libswresample) to 16 kHz. Without FFmpeg those
 * are errors saying that FFmpeg support was not built. A file that decodes to no samples, or
 * stops early (truncated or corrupt stream), is an error. Messages are "<path>: <what>". */
int imb_audio_read(const char *path, imb_audio *out, char *err, size_t errn);
void imb_audio_free(imb_audio *a);

/* Writes x[n] (int16 scale, clipped) as 16-bit mono FLAC at `rate` through libsndfile,
 * atomically (temp file + rename). For data/synth and tests. */
int imb_audio_write_flac(const char *path, const float *x, int64_t n, int rate, char *err, size_t errn);

/* Internal: the FFmpeg path of imb_audio_read (audio_ffmpeg.c, built only with FFmpeg). */
int imb_audio_read_ffmpeg(const char *path, imb_audio *out, char *err, size_t errn);
#endif
