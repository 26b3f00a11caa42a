/* Speech splits: '+'-joined LibriSpeech subsets, each packed once into a feature shard (parallel decode + fbank), opened together; CMVN. */
#include "audio.h"
#include "fbank.h"
#include "fileio.h"
#include "librispeech.h"
#include "shard.h"
#include "speech.h"
#include "speech_shard.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SUBSETS 16

struct imb_speech_set {
    int nshards, n;
    imb_speech_shard sh[MAX_SUBSETS];
    int start[MAX_SUBSETS + 1];   /* first utterance index of each shard; start[nshards] = n */
    int64_t total_frames;
    int max_frames;
};

/* Splits "a+b+c" into subset names (copied into names[k], at most MAX_SUBSETS, no repeats). */
static int parse_split(const char *split, char names[MAX_SUBSETS][128], int *n, char *err, size_t errn) {
    *n = 0;
    const char *s = split;
    for (;;) {
        size_t len = strcspn(s, "+");
        if (len == 0 || len >= 128)
            return imb_errf(err, errn, "split '%s': %s subset name", split, len ? "too long a" : "an empty");
        if (*n == MAX_SUBSETS) return imb_errf(err, errn, "split '%s': more than %d subsets", split, MAX_SUBSETS);
        memcpy(names[*n], s, len);
        names[*n][len] = 0;
        for (int k = 0; k < *n; k++)
            if (strcmp(names[k], names[*n]) == 0) return imb_errf(err, errn, "split '%s': subset %s named twice", split, names[k]);
        (*n)++;
        if (!s[len]) return 0;
        s += len + 1;
    }
}

static int cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

/* What a worker hands the writer for one utterance. */
typedef struct item {
    float *feats;
    int frames, ntargets;
    int32_t *targets;
    int rc;
    char err[1024];
} item;

static void decode_one(const imb_utt_list *l, int i, item *it) {
    imb_audio a;
    it->rc = -1;
    if (imb_audio_read(l->paths[i], &a, it->err, sizeof it->err) != 0) return;
    int64_t frames = imb_fbank_frames(a.n);
    if (frames < 1 || frames > INT32_MAX / IMB_SPEECH_NMEL) {
        imb_errf(it->err, sizeof it->err, "%s: %lld samples (%.3f s): %s", l->paths[i], (long long)a.n,
                 (double)a.n / IMB_SPEECH_RATE, frames < 1 ? "shorter than one 25 ms frame" : "too long");
        imb_audio_free(&a);
        return;
    }
    it->feats = malloc(sizeof *it->feats * (size_t)frames * IMB_SPEECH_NMEL);
    it->targets = malloc(sizeof *it->targets * (strlen(l->texts[i]) + 1));
    if (!it->feats || !it->targets) {
        imb_errf(it->err, sizeof it->err, "%s: out of memory for %lld frames", l->paths[i], (long long)frames);
        imb_audio_free(&a);
        return;
    }
    it->frames = (int)imb_fbank(a.x, a.n, it->feats);
    imb_audio_free(&a);
    size_t bad = 0;
    it->ntargets = imb_speech_encode(l->texts[i], it->targets, &bad);
    if (it->ntargets < 1) {   /* the reader checked; kept so a shard can never hold a bad target */
        imb_errf(it->err, sizeof it->err, "%s: bad transcript", l->where[i]);
        return;
    }
    it->rc = 0;
}

/* Packs list l into a shard at path: utterances decoded in parallel blocks, written in order,
 * so the file is the same whatever the thread count. */
static int build(const char *path, const char *label, const imb_utt_list *l, uint64_t fp, int nthreads, FILE *log,
                 char *err, size_t errn) {
    imb_speech_writer *w = imb_speech_writer_new(path, fp, err, errn);
    if (!w) return -1;
    int block = 8 * nthreads;
    item *items = calloc((size_t)block, sizeof *items);
    if (!items) {
        imb_speech_writer_abort(w);
        return imb_errf(err, errn, "%s: out of memory", path);
    }
    int rc = 0, next_log = l->n / 10;
    for (int s = 0; rc == 0 && s < l->n; s += block) {
        int m = l->n - s < block ? l->n - s : block;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
        for (int j = 0; j < m; j++) decode_one(l, s + j, &items[j]);
        for (int j = 0; j < m; j++) {
            item *it = &items[j];
            if (rc == 0 && it->rc != 0) rc = imb_errf(err, errn, "%s", it->err);
            if (rc == 0)
                rc = imb_speech_writer_add(w, l->ids[s + j], it->targets, it->ntargets, it->feats, it->frames, err, errn);
            free(it->feats);
            free(it->targets);
            memset(it, 0, sizeof *it);
        }
        if (log && rc == 0 && s + m >= next_log && s + m < l->n) {
            fprintf(log, "prepare: %s: %d / %d utterances\n", label, s + m, l->n);
            fflush(log);
            next_log = s + m + l->n / 10;
        }
    }
    free(items);
    if (rc) {
        imb_speech_writer_abort(w);
        return -1;
    }
    return imb_speech_writer_finish(w, err, errn);
}

/* Opens subset's shard into sh, building it first when it is missing, stale or corrupt. */
static int open_subset(const char *root, const char *subset, int nthreads, FILE *log, imb_speech_shard *sh, char *err,
                       size_t errn) {
    uint64_t fp = IMB_FINGERPRINT_INIT;
    fp = imb_fingerprint_str(fp, "librispeech");
    fp = imb_fingerprint_str(fp, subset);
    fp = imb_fingerprint_u64(fp, IMB_SPEECH_SHARD_VERSION);
    fp = imb_fingerprint_u64(fp, IMB_FBANK_VERSION);
    imb_utt_list l;
    if (imb_librispeech_list(root, subset, &l, &fp, err, errn) != 0) return -1;
    char path[4096], why[1024], label[200];
    int rc = imb_cache_path(root, "librispeech", subset, path, sizeof path, err, errn);
    if (rc == 0) {
        int st = imb_speech_shard_open(path, fp, sh, why, sizeof why);
        if (st == IMB_SHARD_IOERR) rc = imb_errf(err, errn, "%s", why);
        else if (st != IMB_SHARD_OK) {
            snprintf(label, sizeof label, "librispeech-%s", subset);
            if (log) {
                fprintf(log, "prepare: %s: packing %d utterances into %s (%s)\n", label, l.n, path,
                        st == IMB_SHARD_MISSING ? "no cache yet" : why);
                fflush(log);
            }
            rc = build(path, label, &l, fp, nthreads, log, err, errn);
            if (rc == 0 && (st = imb_speech_shard_open(path, fp, sh, err, errn)) != IMB_SHARD_OK) rc = -1;
            if (rc == 0 && log) {
                fprintf(log, "prepare: %s: %d utterances, %.2f h, written\n", label, sh->n,
                        (double)sh->total_frames / 100.0 / 3600.0);
                fflush(log);
            }
        }
    }
    imb_utt_list_free(&l);
    return rc;
}

void imb_speech_close(imb_speech_set *s) {
    if (!s) return;
    for (int k = 0; k < s->nshards; k++) imb_speech_shard_close(&s->sh[k]);
    free(s);
}

int imb_speech_open(const char *root, const char *split, int nthreads, FILE *log, imb_speech_set **out, char *err,
                    size_t errn) {
    *out = NULL;
    char names[MAX_SUBSETS][128];
    int nn;
    if (!root || !split) return imb_errf(err, errn, "speech: no root or split");
    if (parse_split(split, names, &nn, err, errn) != 0) return -1;
    if (nthreads <= 0) nthreads = cpu_count();
    imb_speech_set *s = calloc(1, sizeof *s);
    if (!s) return imb_errf(err, errn, "%s: out of memory", root);
    for (int k = 0; k < nn; k++) {
        if (open_subset(root, names[k], nthreads, log, &s->sh[k], err, errn) != 0) {
            imb_speech_close(s);
            return -1;
        }
        s->nshards++;
        if ((int64_t)s->n + s->sh[k].n > INT32_MAX) {
            imb_speech_close(s);
            return imb_errf(err, errn, "%s: split %s: too many utterances", root, split);
        }
        s->start[k] = s->n;
        s->n += s->sh[k].n;
        s->total_frames += s->sh[k].total_frames;
        if (s->sh[k].max_frames > s->max_frames) s->max_frames = s->sh[k].max_frames;
    }
    s->start[nn] = s->n;
    *out = s;
    return 0;
}

int imb_speech_prepare(const char *root, const char *split, int nthreads, FILE *log, char *err, size_t errn) {
    imb_speech_set *s;
    if (imb_speech_open(root, split, nthreads, log, &s, err, errn) != 0) return -1;
    imb_speech_close(s);
    return 0;
}

int imb_speech_count(const imb_speech_set *s) { return s ? s->n : 0; }
int64_t imb_speech_total_frames(const imb_speech_set *s) { return s ? s->total_frames : 0; }
int imb_speech_max_frames(const imb_speech_set *s) { return s ? s->max_frames : 0; }

/* utterance i -> its shard's record; 0 or -1 when out of range */
static int locate(const imb_speech_set *s, int i, imb_speech_utt *u) {
    if (!s || i < 0 || i >= s->n) return -1;
    int k = 0;
    while (i >= s->start[k + 1]) k++;
    imb_speech_shard_utt(&s->sh[k], i - s->start[k], u);
    return 0;
}

int imb_speech_frames(const imb_speech_set *s, int i) {
    imb_speech_utt u;
    return locate(s, i, &u) ? 0 : u.frames;
}

const char *imb_speech_id(const imb_speech_set *s, int i) {
    imb_speech_utt u;
    return locate(s, i, &u) ? NULL : u.id;
}

int imb_speech_target_len(const imb_speech_set *s, int i) {
    imb_speech_utt u;
    return locate(s, i, &u) ? -1 : u.ntargets;
}

int imb_speech_targets(const imb_speech_set *s, int i, int32_t *out) {
    imb_speech_utt u;
    if (locate(s, i, &u)) return -1;
    for (int k = 0; k < u.ntargets; k++) out[k] = u.targets[k];
    return u.ntargets;
}

const void *imb_speech_feature_bytes(const imb_speech_set *s, int i, size_t *n) {
    imb_speech_utt u;
    if (locate(s, i, &u)) return NULL;
    *n = (size_t)u.frames * IMB_SPEECH_NMEL * 2;
    return u.feats;
}

int imb_speech_features(const imb_speech_set *s, int i, const float *mean, const float *istd, float *out) {
    imb_speech_utt u;
    if (locate(s, i, &u)) return -1;
    const uint8_t *p = (const uint8_t *)u.feats;
    size_t nv = (size_t)u.frames * IMB_SPEECH_NMEL;
    for (size_t k = 0; k < nv; k++) {
        float v = imb_f16_to_f32((uint16_t)(p[2 * k] | (p[2 * k + 1] << 8)));
        int b = (int)(k % IMB_SPEECH_NMEL);
        out[k] = mean && istd ? (v - mean[b]) * istd[b] : v;
    }
    return 0;
}

static int finish_cmvn(const imb_speech_stats *st, const char *what, float *mean, float *istd, char *err, size_t errn) {
    if (!(st->count >= 1.0)) return imb_errf(err, errn, "%s: CMVN: no frames", what);
    for (int b = 0; b < IMB_SPEECH_NMEL; b++) {
        double m = st->sum[b] / st->count, var = st->sumsq[b] / st->count - m * m;
        if (!isfinite(m) || !isfinite(var)) return imb_errf(err, errn, "%s: CMVN: bin %d is not finite", what, b);
        mean[b] = (float)m;
        istd[b] = (float)(1.0 / sqrt(var > 1e-10 ? var : 1e-10));
    }
    return 0;
}

static void add_stats(imb_speech_stats *a, const imb_speech_stats *b) {
    a->count += b->count;
    for (int k = 0; k < IMB_SPEECH_NMEL; k++) {
        a->sum[k] += b->sum[k];
        a->sumsq[k] += b->sumsq[k];
    }
}

int imb_speech_cmvn(const imb_speech_set *s, float mean[IMB_SPEECH_NMEL], float istd[IMB_SPEECH_NMEL], char *err,
                    size_t errn) {
    imb_speech_stats st;
    memset(&st, 0, sizeof st);
    for (int k = 0; s && k < s->nshards; k++) add_stats(&st, &s->sh[k].stats);
    return finish_cmvn(&st, s && s->nshards ? s->sh[0].path : "speech set", mean, istd, err, errn);
}

int imb_speech_cmvn_read(const char *root, const char *split, float mean[IMB_SPEECH_NMEL],
                         float istd[IMB_SPEECH_NMEL], char *err, size_t errn) {
    char names[MAX_SUBSETS][128], path[4096];
    int nn;
    if (parse_split(split, names, &nn, err, errn) != 0) return -1;
    imb_speech_stats st, one;
    memset(&st, 0, sizeof st);
    for (int k = 0; k < nn; k++) {
        if (imb_cache_path(root, "librispeech", names[k], path, sizeof path, err, errn) != 0) return -1;
        if (imb_speech_shard_stats(path, &one, err, errn) != IMB_SHARD_OK) return -1;
        add_stats(&st, &one);
    }
    return finish_cmvn(&st, path, mean, istd, err, errn);
}
