/* Speech batch loader: per-epoch permutation, length bucketing, CMVN, SpecAugment, padding; seekable. */
#include "fileio.h"
#include "rng.h"
#include "speech.h"
#include "speech_shard.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Keep shuffle, batch-order and augmentation draws made from one seed apart. */
#define PERM_TAG 0x73707065726d3031ull
#define BATCH_TAG 0x7370626174636831ull
#define AUG_TAG 0x7370617567303031ull

void imb_specaug_defaults(imb_specaug_opts *o) {
    o->freq_masks = 2;
    o->freq_width = 27;
    o->time_masks = 2;
    o->time_ratio = 0.05;
}

void imb_specaug_apply(const imb_specaug_opts *o, float *feats, int frames, int nmel, float value, uint64_t seed,
                       uint64_t epoch, uint64_t index) {
    if (frames < 1 || nmel < 1) return;
    uint64_t stream = imb_hash64(imb_hash64(epoch ^ AUG_TAG) + index);
    uint64_t k = 0;
    for (int m = 0; m < o->freq_masks; m++) {
        int f = (int)imb_rng_below(seed, stream, k++, (uint32_t)(o->freq_width > 0 ? o->freq_width + 1 : 1));
        if (f > nmel) f = nmel;
        int f0 = (int)imb_rng_below(seed, stream, k++, (uint32_t)(nmel - f + 1));
        for (int t = 0; t < frames; t++)
            for (int b = f0; b < f0 + f; b++) feats[(size_t)t * nmel + b] = value;
    }
    int tmax = (int)(o->time_ratio * frames);
    if (tmax < 0) tmax = 0;
    for (int m = 0; m < o->time_masks; m++) {
        int w = (int)imb_rng_below(seed, stream, k++, (uint32_t)tmax + 1);
        int t0 = (int)imb_rng_below(seed, stream, k++, (uint32_t)(frames - w + 1));
        for (int t = t0; t < t0 + w; t++)
            for (int b = 0; b < nmel; b++) feats[(size_t)t * nmel + b] = value;
    }
}

void imb_speech_loader_defaults(imb_speech_loader_opts *o, int batch, int train) {
    memset(o, 0, sizeof *o);
    o->batch = batch;
    o->pad_multiple = 1;
    imb_specaug_defaults(&o->aug);
    if (train) {
        o->shuffle = 1;
        o->bucket = 50;
        o->specaug = 1;
    }
}

struct imb_speech_loader {
    const imb_speech_set *set;
    imb_speech_loader_opts o;
    int n;
    int64_t nbatches;
    /* the plan of plan_epoch: utterance order, and the order in which its batches are served */
    int32_t *order, *border;
    int64_t plan_epoch;
    int64_t epoch, batch;   /* the next batch to serve */
    /* batch memory, grown on demand */
    float *feats;
    size_t feats_cap;
    int32_t *lengths, *tlens, *index, *targets;
    size_t targets_cap;
    long page;
    char err[512];
};

typedef struct keyed {
    int32_t frames, pos;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->frames != y->frames) return x->frames < y->frames ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;   /* stable: ties keep permutation order */
}

static int make_plan(imb_speech_loader *l, int64_t epoch) {
    int n = l->n, B = l->o.batch;
    for (int i = 0; i < n; i++) l->order[i] = i;
    if (l->o.shuffle) {
        uint64_t stream = imb_hash64((uint64_t)epoch ^ PERM_TAG);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)imb_rng_below(l->o.seed, stream, (uint64_t)i, (uint32_t)i + 1);
            int32_t t = l->order[i];
            l->order[i] = l->order[j];
            l->order[j] = t;
        }
    }
    if (l->o.bucket > 0) {
        int64_t run = (int64_t)l->o.bucket * B;
        if (run > n) run = n;
        keyed *k = malloc(sizeof *k * (size_t)run);
        if (!k) return imb_errf(l->err, sizeof l->err, "speech loader: out of memory");
        for (int64_t s = 0; s < n; s += run) {
            int m = (int)(n - s < run ? n - s : run);
            for (int j = 0; j < m; j++) {
                k[j].frames = imb_speech_frames(l->set, l->order[s + j]);
                k[j].pos = j;
            }
            qsort(k, (size_t)m, sizeof *k, cmp_keyed);
            for (int j = 0; j < m; j++) k[j].pos = l->order[s + k[j].pos];
            for (int j = 0; j < m; j++) l->order[s + j] = k[j].pos;
        }
        free(k);
    }
    for (int64_t b = 0; b < l->nbatches; b++) l->border[b] = (int32_t)b;
    if (l->o.shuffle && l->o.bucket > 0) {
        uint64_t stream = imb_hash64((uint64_t)epoch ^ BATCH_TAG);
        for (int64_t i = l->nbatches - 1; i > 0; i--) {
            int64_t j = imb_rng_below(l->o.seed, stream, (uint64_t)i, (uint32_t)i + 1);
            int32_t t = l->border[i];
            l->border[i] = l->border[j];
            l->border[j] = t;
        }
    }
    l->plan_epoch = epoch;
    return 0;
}

void imb_speech_loader_free(imb_speech_loader *l) {
    if (!l) return;
    free(l->order);
    free(l->border);
    free(l->feats);
    free(l->lengths);
    free(l->tlens);
    free(l->index);
    free(l->targets);
    free(l);
}

imb_speech_loader *imb_speech_loader_new(const imb_speech_set *s, const imb_speech_loader_opts *o, char *err,
                                         size_t errn) {
    int n = imb_speech_count(s);
    if (n < 1) {
        imb_errf(err, errn, "speech loader: no utterances");
        return NULL;
    }
    if (o->batch < 1 || o->bucket < 0 || o->pad_multiple < 1 || o->pad_multiple > 4096 || !o->mean != !o->istd) {
        imb_errf(err, errn, "speech loader: batch %d, bucket %d, pad_multiple %d, CMVN %s (need batch >= 1, bucket >= 0, "
                 "1 <= pad_multiple <= 4096, mean and istd both or neither)", o->batch, o->bucket, o->pad_multiple,
                 !o->mean != !o->istd ? "half given" : "ok");
        return NULL;
    }
    if (o->specaug && (o->aug.freq_masks < 0 || o->aug.freq_width < 0 || o->aug.time_masks < 0 ||
                       !(o->aug.time_ratio >= 0.0 && o->aug.time_ratio <= 1.0))) {
        imb_errf(err, errn, "speech loader: SpecAugment: %d frequency masks of up to %d bins, %d time masks of up to %g "
                 "of the length (need counts and widths >= 0, ratio in [0, 1])", o->aug.freq_masks, o->aug.freq_width,
                 o->aug.time_masks, o->aug.time_ratio);
        return NULL;
    }
    if (o->drop_last && n < o->batch) {
        imb_errf(err, errn, "speech loader: drop_last with %d utterances and batch %d leaves no batch", n, o->batch);
        return NULL;
    }
    imb_speech_loader *l = calloc(1, sizeof *l);
    if (!l) {
        imb_errf(err, errn, "speech loader: out of memory");
        return NULL;
    }
    l->set = s;
    l->o = *o;
    l->n = n;
    l->nbatches = o->drop_last ? n / o->batch : (n + o->batch - 1) / o->batch;
    l->plan_epoch = -1;
    l->page = sysconf(_SC_PAGESIZE);
    if (l->page < 1) l->page = 4096;
    size_t B = (size_t)o->batch;
    if (!(l->order = malloc(sizeof *l->order * (size_t)n)) || !(l->border = malloc(sizeof *l->border * (size_t)l->nbatches)) ||
        !(l->lengths = malloc(sizeof(int32_t) * B)) || !(l->tlens = malloc(sizeof(int32_t) * B)) ||
        !(l->index = malloc(sizeof(int32_t) * B))) {
        imb_speech_loader_free(l);
        imb_errf(err, errn, "speech loader: out of memory");
        return NULL;
    }
    return l;
}

/* Batch b of the current plan: its utterances are order[b * batch ...]. */
static int batch_members(const imb_speech_loader *l, int64_t pos, const int32_t **members) {
    int64_t b = l->border[pos], start = b * l->o.batch;
    *members = l->order + start;
    return (int)(l->n - start < l->o.batch ? l->n - start : l->o.batch);
}

/* Asks the kernel to start reading the features of the batch after pos, so a dataset larger
 * than the page cache streams from disk while the current batch trains. */
static void prefetch(const imb_speech_loader *l, int64_t pos) {
    if (pos >= l->nbatches) return;
    const int32_t *m;
    int c = batch_members(l, pos, &m);
    for (int j = 0; j < c; j++) {
        size_t nb;
        const void *p = imb_speech_feature_bytes(l->set, m[j], &nb);
        if (!p) continue;
        uintptr_t a = (uintptr_t)p & ~(uintptr_t)(l->page - 1);
        (void)madvise((void *)a, nb + ((uintptr_t)p - a), MADV_WILLNEED);
    }
}

int imb_speech_loader_next(imb_speech_loader *l, imb_speech_batch *b) {
    memset(b, 0, sizeof *b);
    b->nmel = IMB_SPEECH_NMEL;
    b->epoch = l->epoch;
    b->batch = l->batch;
    if (l->batch >= l->nbatches) {
        l->epoch++;
        l->batch = 0;
        return 1;
    }
    if (l->plan_epoch != l->epoch && make_plan(l, l->epoch) != 0) return -1;
    const int32_t *m;
    int count = batch_members(l, l->batch, &m), tmax = 0;
    size_t ntg = 0;
    for (int j = 0; j < count; j++) {
        int f = imb_speech_frames(l->set, m[j]);
        if (f > tmax) tmax = f;
        ntg += (size_t)imb_speech_target_len(l->set, m[j]);
    }
    int pm = l->o.pad_multiple;
    tmax = (tmax + pm - 1) / pm * pm;
    size_t need = (size_t)count * (size_t)tmax * IMB_SPEECH_NMEL;
    if (need > l->feats_cap) {
        float *f = realloc(l->feats, sizeof *f * need);
        if (!f) return imb_errf(l->err, sizeof l->err, "speech loader: out of memory for %d x %d frames", count, tmax);
        l->feats = f;
        l->feats_cap = need;
    }
    if (ntg > l->targets_cap || !l->targets) {
        int32_t *t = realloc(l->targets, sizeof *t * (ntg + 1));
        if (!t) return imb_errf(l->err, sizeof l->err, "speech loader: out of memory for %zu targets", ntg);
        l->targets = t;
        l->targets_cap = ntg;
    }
    size_t tpos = 0;
    for (int j = 0; j < count; j++) {
        int f = imb_speech_frames(l->set, m[j]);
        float *dst = l->feats + (size_t)j * tmax * IMB_SPEECH_NMEL;
        if (imb_speech_features(l->set, m[j], l->o.mean, l->o.istd, dst) != 0)
            return imb_errf(l->err, sizeof l->err, "speech loader: utterance %d out of range", m[j]);
        if (l->o.specaug)
            imb_specaug_apply(&l->o.aug, dst, f, IMB_SPEECH_NMEL, 0.0f, l->o.seed, (uint64_t)l->epoch, (uint64_t)m[j]);
        memset(dst + (size_t)f * IMB_SPEECH_NMEL, 0, sizeof *dst * (size_t)(tmax - f) * IMB_SPEECH_NMEL);
        l->lengths[j] = f;
        l->index[j] = m[j];
        l->tlens[j] = imb_speech_targets(l->set, m[j], l->targets + tpos);
        tpos += (size_t)l->tlens[j];
    }
    b->count = count;
    b->tmax = tmax;
    b->feats = l->feats;
    b->lengths = l->lengths;
    b->targets = l->targets;
    b->target_lengths = l->tlens;
    b->ntargets = (int)tpos;
    b->index = l->index;
    l->batch++;
    prefetch(l, l->batch);
    return 0;
}

void imb_speech_loader_position(const imb_speech_loader *l, int64_t *epoch, int64_t *batch_index) {
    if (epoch) *epoch = l->epoch;
    if (batch_index) *batch_index = l->batch;
}

int imb_speech_loader_seek(imb_speech_loader *l, int64_t epoch, int64_t batch_index) {
    if (epoch < 0 || batch_index < 0 || batch_index > l->nbatches)
        return imb_errf(l->err, sizeof l->err, "speech loader: seek: epoch %lld batch %lld outside [0, %lld]",
                        (long long)epoch, (long long)batch_index, (long long)l->nbatches);
    l->epoch = epoch;
    l->batch = batch_index;
    l->err[0] = 0;
    return 0;
}

int64_t imb_speech_loader_batches(const imb_speech_loader *l) { return l->nbatches; }
const char *imb_speech_loader_error(const imb_speech_loader *l) { return l->err; }
