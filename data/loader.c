/* Batch loader: per-epoch permutation, a prefetch ring filled by worker threads, seekable position. */
#include "loader.h"
#include "fileio.h"
#include "rng.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps shuffle draws apart from augmentation draws made from the same seed. */
#define PERM_TAG 0x7065726d75746531ull

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

/* One batch of the ring. Batch index == nbatches is the end-of-epoch marker (count 0),
 * so epoch ends travel through the ring in order with the batches. */
typedef struct slot {
    int state;
    int64_t epoch, batch;
    int count;          /* samples in the batch */
    int claimed, done;  /* samples handed to workers / finished by them */
    int failed;
    int32_t *idx;       /* dataset index of each sample, [batch] */
    float *images;      /* [batch, C, S, S] */
    int32_t *labels;
} slot;

struct imb_loader {
    const imb_shard *shard;
    imb_transform_opts topts;
    int batch, shuffle, nthreads;
    int rank, world;            /* this rank's slice of every global batch of batch * world */
    uint64_t seed;
    int64_t nbatches;
    size_t sample_len;          /* floats per sample */
    int32_t *perm;              /* order of perm_epoch; producer side, under mu */
    int64_t perm_epoch;
    slot ring[IMB_LOADER_RING];
    int64_t prod_seq, cons_seq; /* ring[seq % RING]; producer may run RING ahead */
    int64_t p_epoch, p_batch;   /* what the next assigned slot will hold */
    int64_t c_epoch, c_batch;   /* what the next imb_loader_next returns */
    int active;                 /* workers transforming outside the lock */
    int paused, stop;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;     /* workers: a slot freed, work appeared, pause lifted, stop */
    pthread_cond_t done_cv;     /* consumer: a slot became ready, workers went idle */
    pthread_t *threads;
    int nstarted;
    char err[512];
};

/* Fisher-Yates with one counter-based draw per position: a pure function of (seed, epoch). */
static void make_perm(imb_loader *l, int64_t epoch) {
    int n = l->shard->n;
    for (int i = 0; i < n; i++) l->perm[i] = i;
    if (l->shuffle) {
        uint64_t stream = imb_hash64((uint64_t)epoch ^ PERM_TAG);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)imb_rng_below(l->seed, stream, (uint64_t)i, (uint32_t)i + 1);
            int32_t t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    l->perm_epoch = epoch;
}

static void advance(int64_t *epoch, int64_t *batch, int64_t nbatches) {
    if (++*batch > nbatches) {
        ++*epoch;
        *batch = 0;
    }
}

/* Gives the next position to the slot at prod_seq. Called with mu held. */
static void assign(imb_loader *l) {
    slot *s = &l->ring[l->prod_seq % IMB_LOADER_RING];
    s->epoch = l->p_epoch;
    s->batch = l->p_batch;
    s->claimed = s->done = s->failed = 0;
    if (s->batch == l->nbatches) {
        s->count = 0;
        s->state = SLOT_READY;
        pthread_cond_broadcast(&l->done_cv);
    } else {
        if (l->perm_epoch != s->epoch) make_perm(l, s->epoch);
        int64_t start = (s->batch * l->world + l->rank) * l->batch, left = l->shard->n - start;
        s->count = left < l->batch ? (int)left : l->batch;
        memcpy(s->idx, l->perm + start, sizeof *s->idx * (size_t)s->count);
        s->state = SLOT_FILLING;
        pthread_cond_broadcast(&l->work_cv);
    }
    l->prod_seq++;
    advance(&l->p_epoch, &l->p_batch, l->nbatches);
}

/* Transforms samples [a, b) of s; the slot can't be reassigned meanwhile since the worker
 * counts as active and seek waits for active == 0. */
static int fill(imb_loader *l, slot *s, int a, int b, imb_transform_work *wk, char *err, size_t errn) {
    for (int j = a; j < b; j++) {
        imb_image view;
        int32_t label;
        if (imb_shard_get(l->shard, s->idx[j], &view, &label) != 0) {
            imb_errf(err, errn, "%s: record %d out of range", l->shard->path, s->idx[j]);
            return -1;
        }
        s->labels[j] = label;
        if (imb_transform_apply(&l->topts, &view, l->seed, (uint64_t)s->epoch, (uint64_t)s->idx[j],
                                s->images + (size_t)j * l->sample_len, wk, err, errn) != 0)
            return -1;
    }
    return 0;
}

static void *worker(void *arg) {
    imb_loader *l = arg;
    imb_transform_work wk = {0};
    char err[512];
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (l->paused) {
            pthread_cond_wait(&l->work_cv, &l->mu);
            continue;
        }
        /* oldest slot that still has unclaimed samples, so batches finish in order */
        slot *s = NULL;
        for (int64_t q = l->cons_seq; q < l->prod_seq && !s; q++) {
            slot *t = &l->ring[q % IMB_LOADER_RING];
            if (t->state == SLOT_FILLING && t->claimed < t->count) s = t;
        }
        if (!s) {
            if (l->prod_seq < l->cons_seq + IMB_LOADER_RING) assign(l);
            else pthread_cond_wait(&l->work_cv, &l->mu);
            continue;
        }
        int chunk = (s->count + l->nthreads - 1) / l->nthreads;
        int a = s->claimed, b = a + chunk < s->count ? a + chunk : s->count;
        s->claimed = b;
        l->active++;
        pthread_mutex_unlock(&l->mu);
        int rc = fill(l, s, a, b, &wk, err, sizeof err);
        pthread_mutex_lock(&l->mu);
        l->active--;
        if (rc != 0) {
            s->failed = 1;
            /* first message only: the consumer may be reading it unlocked */
            if (!l->err[0]) snprintf(l->err, sizeof l->err, "%s", err);
        }
        s->done += b - a;
        if (s->done == s->count) s->state = SLOT_READY;
        pthread_cond_broadcast(&l->done_cv);
    }
    pthread_mutex_unlock(&l->mu);
    imb_transform_work_free(&wk);
    return NULL;
}

static void stop_workers(imb_loader *l) {
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nstarted; i++) pthread_join(l->threads[i], NULL);
    l->nstarted = 0;
}

void imb_loader_free(imb_loader *l) {
    if (!l) return;
    stop_workers(l);
    for (int i = 0; i < IMB_LOADER_RING; i++) {
        free(l->ring[i].idx);
        free(l->ring[i].images);
        free(l->ring[i].labels);
    }
    free(l->perm);
    free(l->threads);
    pthread_cond_destroy(&l->work_cv);
    pthread_cond_destroy(&l->done_cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

imb_loader *imb_loader_new(const imb_shard *shard, const imb_transform_opts *t, int batch, int shuffle,
                           int drop_last, uint64_t seed, int nthreads, char *err, size_t errn) {
    return imb_loader_new_rank(shard, t, batch, shuffle, drop_last, seed, nthreads, 0, 1, err, errn);
}

imb_loader *imb_loader_new_rank(const imb_shard *shard, const imb_transform_opts *t, int batch, int shuffle,
                                int drop_last, uint64_t seed, int nthreads, int rank, int world, char *err,
                                size_t errn) {
    if (!shard || !shard->map || shard->n < 1) {
        imb_errf(err, errn, "loader: shard: not open");
        return NULL;
    }
    if (imb_transform_check(t, err, errn) != 0) return NULL;
    if (batch < 1 || nthreads < 1 || nthreads > 256) {
        imb_errf(err, errn, "loader: %s: batch %d, threads %d (need batch >= 1, 1 <= threads <= 256)", shard->path,
             batch, nthreads);
        return NULL;
    }
    if (world < 1 || rank < 0 || rank >= world || (world > 1 && !drop_last)) {
        imb_errf(err, errn, "loader: %s: rank %d of %d (ranks need drop_last)", shard->path, rank, world);
        return NULL;
    }
    if (drop_last && shard->n < batch * world) {
        imb_errf(err, errn, "loader: %s: drop_last with %d samples and batch %d x %d ranks leaves no batch",
                 shard->path, shard->n, batch, world);
        return NULL;
    }
    imb_loader *l = calloc(1, sizeof *l);
    if (!l) {
        imb_errf(err, errn, "loader: out of memory");
        return NULL;
    }
    l->shard = shard;
    l->topts = *t;
    l->batch = batch;
    l->shuffle = shuffle;
    l->nthreads = nthreads;
    l->seed = seed;
    l->rank = rank;
    l->world = world;
    l->nbatches = drop_last ? shard->n / (batch * world) : (shard->n + batch - 1) / batch;
    l->sample_len = imb_transform_out_len(t);
    l->perm_epoch = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->done_cv, NULL);
    int ok = (l->perm = malloc(sizeof *l->perm * (size_t)shard->n)) != NULL &&
             (l->threads = calloc((size_t)nthreads, sizeof *l->threads)) != NULL;
    for (int i = 0; ok && i < IMB_LOADER_RING; i++) {
        slot *s = &l->ring[i];
        ok = (s->idx = malloc(sizeof *s->idx * (size_t)batch)) != NULL &&
             (s->labels = malloc(sizeof *s->labels * (size_t)batch)) != NULL &&
             (s->images = malloc(sizeof *s->images * l->sample_len * (size_t)batch)) != NULL;
    }
    if (!ok) {
        imb_errf(err, errn, "loader: %s: out of memory for %d batches of %d x %zu floats", shard->path,
             IMB_LOADER_RING, batch, l->sample_len);
        imb_loader_free(l);
        return NULL;
    }
    for (int i = 0; i < nthreads; i++) {
        int rc = pthread_create(&l->threads[i], NULL, worker, l);
        if (rc != 0) {
            imb_errf(err, errn, "loader: start thread %d of %d: %s", i + 1, nthreads, strerror(rc));
            imb_loader_free(l);
            return NULL;
        }
        l->nstarted++;
    }
    return l;
}

int imb_loader_next(imb_loader *l, float *images, int32_t *labels, int *count) {
    *count = 0;
    pthread_mutex_lock(&l->mu);
    slot *s = &l->ring[l->cons_seq % IMB_LOADER_RING];
    while (l->cons_seq >= l->prod_seq || s->state != SLOT_READY) pthread_cond_wait(&l->done_cv, &l->mu);
    if (s->failed) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    pthread_mutex_unlock(&l->mu);
    /* the slot stays out of the producer's reach until cons_seq moves, so copy unlocked */
    int rc = s->batch == l->nbatches ? 1 : 0;
    if (rc == 0) {
        memcpy(images, s->images, sizeof *images * l->sample_len * (size_t)s->count);
        memcpy(labels, s->labels, sizeof *labels * (size_t)s->count);
        *count = s->count;
    }
    pthread_mutex_lock(&l->mu);
    s->state = SLOT_FREE;
    l->cons_seq++;
    advance(&l->c_epoch, &l->c_batch, l->nbatches);
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int imb_loader_seek(imb_loader *l, int64_t epoch, int64_t batch_index) {
    if (epoch < 0 || batch_index < 0 || batch_index > l->nbatches) {
        snprintf(l->err, sizeof l->err, "loader: seek: epoch %lld batch %lld outside [0, %lld]",
                 (long long)epoch, (long long)batch_index, (long long)l->nbatches);
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    /* let in-flight slices land before their slots are reused */
    l->paused = 1;
    while (l->active > 0) pthread_cond_wait(&l->done_cv, &l->mu);
    for (int i = 0; i < IMB_LOADER_RING; i++) l->ring[i].state = SLOT_FREE;
    l->prod_seq = l->cons_seq = 0;
    l->p_epoch = l->c_epoch = epoch;
    l->p_batch = l->c_batch = batch_index;
    l->err[0] = '\0';
    l->paused = 0;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

void imb_loader_position(const imb_loader *l, int64_t *epoch, int64_t *batch_index) {
    if (epoch) *epoch = l->c_epoch;
    if (batch_index) *batch_index = l->c_batch;
}

int64_t imb_loader_epoch(const imb_loader *l) { return l->c_epoch; }
int64_t imb_loader_batch_index(const imb_loader *l) { return l->c_batch; }
int64_t imb_loader_batches(const imb_loader *l) { return l->nbatches; }
const char *imb_loader_error(const imb_loader *l) { return l->err; }
