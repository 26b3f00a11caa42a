/* FFmpeg decoding path: any container/codec libavformat + libavcodec know, downmixed and resampled to 16 kHz by libswresample. */
#include "audio.h"
#include "fileio.h"
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libswresample/swresample.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLES ((int64_t)16000 * 3600 * 4)

/* FFmpeg logs to stderr on its own; our errors carry the message instead. */
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void quiet(void) { av_log_set_level(AV_LOG_QUIET); }

typedef struct dec {
    AVFormatContext *fmt;
    AVCodecContext *cc;
    SwrContext *swr;
    AVPacket *pkt;
    AVFrame *frame;
    int stream;
    float *x;
    int64_t n, cap;
} dec;

static const char *averr(int rc, char *buf, size_t n) {
    if (av_strerror(rc, buf, n) != 0) snprintf(buf, n, "error %d", rc);
    return buf;
}

/* Resamples nb input samples (NULL/0 flushes) onto the end of d->x. */
static int convert(dec *d, const uint8_t **in, int nb, const char *path, char *err, size_t errn) {
    int want = swr_get_out_samples(d->swr, nb);
    if (want < 0) return imb_errf(err, errn, "%s: FFmpeg: resampler failed", path);
    if (d->n + want > MAX_SAMPLES) return imb_errf(err, errn, "%s: longer than %lld samples", path, (long long)MAX_SAMPLES);
    if (d->n + want > d->cap) {
        int64_t cap = (d->n + want) * 2 + 16000;
        float *x = realloc(d->x, sizeof *x * (size_t)cap);
        if (!x) return imb_errf(err, errn, "%s: out of memory", path);
        d->x = x;
        d->cap = cap;
    }
    uint8_t *out = (uint8_t *)(d->x + d->n);
    int got = swr_convert(d->swr, &out, want, in, nb);
    if (got < 0) return imb_errf(err, errn, "%s: FFmpeg: resampling failed", path);
    d->n += got;
    return 0;
}

/* Receives every frame the decoder has ready. */
static int drain(dec *d, const char *path, char *err, size_t errn) {
    char eb[128];
    for (;;) {
        int rc = avcodec_receive_frame(d->cc, d->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return imb_errf(err, errn, "%s: corrupt audio: %s", path, averr(rc, eb, sizeof eb));
        rc = convert(d, (const uint8_t **)d->frame->extended_data, d->frame->nb_samples, path, err, errn);
        av_frame_unref(d->frame);
        if (rc) return -1;
    }
}

static int run(dec *d, const char *path, char *err, size_t errn) {
    char eb[128];
    int rc = avformat_open_input(&d->fmt, path, NULL, NULL);
    if (rc < 0) return imb_errf(err, errn, "%s: unknown or unreadable container: %s", path, averr(rc, eb, sizeof eb));
    if ((rc = avformat_find_stream_info(d->fmt, NULL)) < 0)
        return imb_errf(err, errn, "%s: no stream information: %s", path, averr(rc, eb, sizeof eb));
    const AVCodec *codec = NULL;
    d->stream = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (d->stream < 0 || !codec) return imb_errf(err, errn, "%s: no decodable audio stream", path);
    if (!(d->cc = avcodec_alloc_context3(codec))) return imb_errf(err, errn, "%s: out of memory", path);
    if ((rc = avcodec_parameters_to_context(d->cc, d->fmt->streams[d->stream]->codecpar)) < 0 ||
        (rc = avcodec_open2(d->cc, codec, NULL)) < 0)
        return imb_errf(err, errn, "%s: cannot open the %s decoder: %s", path, codec->name, averr(rc, eb, sizeof eb));
    if (d->cc->sample_rate < 1 || d->cc->ch_layout.nb_channels < 1)
        return imb_errf(err, errn, "%s: bad stream: %d Hz, %d channels", path, d->cc->sample_rate,
                        d->cc->ch_layout.nb_channels);
    AVChannelLayout in, mono = AV_CHANNEL_LAYOUT_MONO;
    if (d->cc->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) av_channel_layout_default(&in, d->cc->ch_layout.nb_channels);
    else if (av_channel_layout_copy(&in, &d->cc->ch_layout) < 0) return imb_errf(err, errn, "%s: out of memory", path);
    rc = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_FLT, IMB_AUDIO_RATE, &in, d->cc->sample_fmt,
                             d->cc->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in);
    if (rc < 0 || (rc = swr_init(d->swr)) < 0)
        return imb_errf(err, errn, "%s: cannot resample %d Hz to %d Hz: %s", path, d->cc->sample_rate, IMB_AUDIO_RATE,
                        averr(rc, eb, sizeof eb));
    if (!(d->pkt = av_packet_alloc()) || !(d->frame = av_frame_alloc()))
        return imb_errf(err, errn, "%s: out of memory", path);
    while ((rc = av_read_frame(d->fmt, d->pkt)) >= 0) {
        int r2 = 0;
        if (d->pkt->stream_index == d->stream) {
            r2 = avcodec_send_packet(d->cc, d->pkt);
            if (r2 < 0) r2 = imb_errf(err, errn, "%s: corrupt audio: %s", path, averr(r2, eb, sizeof eb));
            else r2 = drain(d, path, err, errn);
        }
        av_packet_unref(d->pkt);
        if (r2) return -1;
    }
    if (rc != AVERROR_EOF) return imb_errf(err, errn, "%s: read error: %s", path, averr(rc, eb, sizeof eb));
    if ((rc = avcodec_send_packet(d->cc, NULL)) < 0 && rc != AVERROR_EOF)
        return imb_errf(err, errn, "%s: decoder flush: %s", path, averr(rc, eb, sizeof eb));
    if (drain(d, path, err, errn) || convert(d, NULL, 0, path, err, errn)) return -1;
    if (d->n < 1) return imb_errf(err, errn, "%s: no audio samples decoded", path);
    return 0;
}

int imb_audio_read_ffmpeg(const char *path, imb_audio *out, char *err, size_t errn) {
    pthread_once(&quiet_once, quiet);
    memset(out, 0, sizeof *out);
    dec d;
    memset(&d, 0, sizeof d);
    int rc = run(&d, path, err, errn);
    if (rc == 0) {
        for (int64_t i = 0; i < d.n; i++) d.x[i] *= 32768.0f;
        out->x = d.x;
        out->n = d.n;
        out->rate = IMB_AUDIO_RATE;
        out->src_rate = d.cc->sample_rate;
        out->channels = d.cc->ch_layout.nb_channels;
        d.x = NULL;
    }
    free(d.x);
    av_frame_free(&d.frame);
    av_packet_free(&d.pkt);
    swr_free(&d.swr);
    avcodec_free_context(&d.cc);
    avformat_close_input(&d.fmt);
    return rc;
}
