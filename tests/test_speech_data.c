/* Speech shards and loader: half floats, shard round trip and cache rebuilds, CMVN, loader
 * determinism, resume, bucketing, padding, SpecAugment only in training. */
#include "audio.h"
#include "datatest.h"
#include "fbank.h"
#include "shard.h"
#include "speech.h"
#include "speech_shard.h"
#include "speech_test.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

Suite *speech_data_suite(void);

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

START_TEST(half_floats) {
    ck_assert_uint_eq(imb_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(imb_f32_to_f16(-2.0f), 0xc000);
    ck_assert_uint_eq(imb_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(imb_f32_to_f16(65520.0f), 0x7c00);            /* rounds up to infinity */
    ck_assert_uint_eq(imb_f32_to_f16(ldexpf(1.0f, -24)), 0x0001);   /* smallest subnormal */
    ck_assert_uint_eq(imb_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);   /* tie -> even (0) */
    ck_assert_uint_eq(imb_f32_to_f16(ldexpf(3.0f, -25)), 0x0002);   /* tie -> even (2) */
    ck_assert_uint_eq(imb_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00);        /* tie -> even */
    ck_assert_uint_eq(imb_f32_to_f16(1.0f + ldexpf(3.0f, -11)), 0x3c02);        /* tie -> even */
    ck_assert_uint_eq(imb_f32_to_f16(ldexpf(1.0f, -14)), 0x0400);   /* smallest normal */
    ck_assert_uint_eq(imb_f32_to_f16(INFINITY), 0x7c00);
    ck_assert(isnan(imb_f16_to_f32(imb_f32_to_f16(NAN))));
    /* every finite half survives half -> float -> half */
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        float f = imb_f16_to_f32((uint16_t)h);
        ck_assert_msg(imb_f32_to_f16(f) == h, "half %04x -> %g (%08x) -> %04x", h, f, f2u(f), imb_f32_to_f16(f));
    }
    /* log-mel range: relative error at most 2^-11 */
    for (int i = 0; i < 10000; i++) {
        float v = -20.0f + 50.0f * (float)i / 10000.0f + 1e-4f;
        float r = imb_f16_to_f32(imb_f32_to_f16(v));
        ck_assert(fabsf(r - v) <= ldexpf(fabsf(v), -11));
    }
}
END_TEST

static imb_speech_set *open_ok(const char *root, const char *split) {
    imb_speech_set *s = NULL;
    char err[2048] = "";
    ck_assert_msg(imb_speech_open(root, split, 2, NULL, &s, err, sizeof err) == 0, "%s", err);
    return s;
}

/* Features in the shard are the fbank of the decoded audio, to half precision; targets are the
 * transcript; statistics are the sums of the stored features. */
START_TEST(shard_round_trip_and_cmvn) {
    char *root = dt_tmpdir(), p[PATHN], err[2048] = "";
    st_tree(root, "dev-clean", 2, 1, 3);
    imb_speech_set *s = open_ok(root, "dev-clean");
    ck_assert_int_eq(imb_speech_count(s), 6);
    double sum[80] = {0}, sq[80] = {0}, cnt = 0;
    int64_t total = 0;
    int maxf = 0;
    for (int i = 0; i < 6; i++) {
        int k = i % 3, spk = 10 + i / 3;
        char id[64];
        snprintf(id, sizeof id, "%d-%d-%04d", spk, 100 * spk, k);
        ck_assert_str_eq(imb_speech_id(s, i), id);
        imb_audio a;
        ck_assert_msg(imb_audio_read(dt_path(p, "%s/dev-clean/%d/%d/%s.flac", root, spk, 100 * spk, id), &a, err,
                                     sizeof err) == 0, "%s", err);
        int frames = imb_speech_frames(s, i);
        ck_assert_int_eq(frames, imb_fbank_frames(a.n));
        float *ref = malloc(sizeof *ref * 80 * (size_t)frames), *got = malloc(sizeof *got * 80 * (size_t)frames);
        imb_fbank(a.x, a.n, ref);
        ck_assert_int_eq(imb_speech_features(s, i, NULL, NULL, got), 0);
        for (int j = 0; j < frames * 80; j++) {
            ck_assert(fabsf(got[j] - ref[j]) <= ldexpf(fabsf(ref[j]), -11));
            sum[j % 80] += got[j];
            sq[j % 80] += (double)got[j] * got[j];
        }
        cnt += frames;
        total += frames;
        if (frames > maxf) maxf = frames;
        int32_t t[64], want[64];
        static const char *const texts[] = {"HELLO WORLD", "IT'S A TEST", "ONE TWO  THREE"};
        int n = imb_speech_targets(s, i, t);
        ck_assert_int_eq(n, imb_speech_encode(texts[k], want, NULL));
        ck_assert_int_eq(imb_speech_target_len(s, i), n);
        ck_assert_mem_eq(t, want, sizeof *t * (size_t)n);
        free(ref);
        free(got);
        imb_audio_free(&a);
    }
    ck_assert_int_eq(imb_speech_total_frames(s), total);
    ck_assert_int_eq(imb_speech_max_frames(s), maxf);
    float mean[80], istd[80], m2[80], i2[80];
    ck_assert_msg(imb_speech_cmvn(s, mean, istd, err, sizeof err) == 0, "%s", err);
    for (int b = 0; b < 80; b++) {
        double m = sum[b] / cnt, sd = sqrt(sq[b] / cnt - m * m);
        ck_assert(fabs(mean[b] - m) < 1e-4 * (1 + fabs(m)));
        ck_assert(fabs(1.0 / istd[b] - sd) < 1e-4 * (1 + sd));
    }
    /* the statistics alone, without listing the audio */
    ck_assert_msg(imb_speech_cmvn_read(root, "dev-clean", m2, i2, err, sizeof err) == 0, "%s", err);
    ck_assert_mem_eq(mean, m2, sizeof mean);
    ck_assert_mem_eq(istd, i2, sizeof istd);
    ck_assert_int_eq(imb_speech_cmvn_read(root, "dev-other", m2, i2, err, sizeof err), -1);
    dt_err_has(err, "librispeech-dev-other.shard", "missing", NULL);
    /* normalised features */
    float *x = malloc(sizeof *x * 80 * (size_t)imb_speech_frames(s, 0)), *y = malloc(sizeof *y * 80 * (size_t)imb_speech_frames(s, 0));
    imb_speech_features(s, 0, NULL, NULL, x);
    imb_speech_features(s, 0, mean, istd, y);
    for (int j = 0; j < 80 * imb_speech_frames(s, 0); j++) ck_assert_float_eq(y[j], (x[j] - mean[j % 80]) * istd[j % 80]);
    ck_assert_int_eq(imb_speech_features(s, 6, NULL, NULL, x), -1);
    free(x);
    free(y);
    imb_speech_close(s);
    dt_rm_tree(root);
    free(root);
}
END_TEST

static void stat_of(const char *path, struct stat *st) { ck_assert_int_eq(stat(path, st), 0); }

/* The cache is reused while its sources are unchanged and rebuilt when they change or the file
 * is damaged; the reader reports each case. */
START_TEST(shard_cache_reuse_and_rebuild) {
    char *root = dt_tmpdir(), sp[PATHN], p[PATHN], err[2048] = "";
    st_tree(root, "test-clean", 1, 1, 2);
    imb_speech_close(open_ok(root, "test-clean"));
    dt_path(sp, "%s/.imbench/librispeech-test-clean.shard", root);
    struct stat a, b;
    stat_of(sp, &a);
    imb_speech_close(open_ok(root, "test-clean"));
    stat_of(sp, &b);
    ck_assert(a.st_ino == b.st_ino && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_mtim.tv_sec == b.st_mtim.tv_sec);
    /* a source file with a new modification time: stale, rebuilt */
    struct utimbuf ut = {.actime = 1000000000, .modtime = 1000000000};
    ck_assert_int_eq(utime(dt_path(p, "%s/test-clean/10/1000/10-1000-0001.flac", root), &ut), 0);
    imb_speech_shard sh;
    ck_assert_int_eq(imb_speech_shard_open(sp, b.st_ino /* any other fingerprint */, &sh, err, sizeof err), IMB_SHARD_STALE);
    dt_err_has(err, sp, "fingerprint", NULL);
    imb_speech_close(open_ok(root, "test-clean"));
    stat_of(sp, &a);
    ck_assert(a.st_ino != b.st_ino);
    /* damaged bytes in the features: corrupt, rebuilt */
    size_t n;
    uint8_t *buf = dt_read(sp, &n);
    buf[n / 2] ^= 0x40;
    dt_write(sp, buf, n);
    uint64_t fp = 0;
    for (int i = 0; i < 8; i++) fp |= (uint64_t)buf[32 + i] << (8 * i);
    ck_assert_int_eq(imb_speech_shard_open(sp, fp, &sh, err, sizeof err), IMB_SHARD_CORRUPT);
    dt_err_has(err, sp, "checksum", NULL);
    buf[n / 2] ^= 0x40;
    dt_write(sp, buf, n / 2);   /* truncated */
    ck_assert_int_eq(imb_speech_shard_open(sp, fp, &sh, err, sizeof err), IMB_SHARD_CORRUPT);
    dt_err_has(err, sp, "truncated", NULL);
    buf[8] = 99;   /* another format version */
    dt_write(sp, buf, n);
    ck_assert_int_eq(imb_speech_shard_open(sp, fp, &sh, err, sizeof err), IMB_SHARD_STALE);
    dt_err_has(err, sp, "version", NULL);
    buf[8] = IMB_SPEECH_SHARD_VERSION;
    buf[200] ^= 1;   /* the statistics */
    dt_write(sp, buf, n);
    ck_assert_int_eq(imb_speech_shard_open(sp, fp, &sh, err, sizeof err), IMB_SHARD_CORRUPT);
    imb_speech_stats st;
    ck_assert_int_eq(imb_speech_shard_stats(sp, &st, err, sizeof err), IMB_SHARD_CORRUPT);
    dt_err_has(err, sp, "statistics", NULL);
    buf[200] ^= 1;
    dt_write(sp, buf, n);
    ck_assert_int_eq(imb_speech_shard_open(sp, fp, &sh, err, sizeof err), IMB_SHARD_OK);
    ck_assert_int_eq(sh.n, 2);
    imb_speech_shard_close(&sh);
    buf[n / 2] ^= 0x40;
    dt_write(sp, buf, n);
    imb_speech_set *s = open_ok(root, "test-clean");   /* rebuilds */
    ck_assert_int_eq(imb_speech_count(s), 2);
    imb_speech_close(s);
    ck_assert_int_eq(imb_speech_shard_open(sp, fp, &sh, err, sizeof err), IMB_SHARD_OK);
    imb_speech_shard_close(&sh);
    free(buf);
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(shard_writer_rejects_bad_records) {
    char *dir = dt_tmpdir(), p[PATHN], err[1024] = "";
    float f[160] = {0};
    int32_t t[3] = {2, 29, 3};
    imb_speech_writer *w = imb_speech_writer_new(dt_path(p, "%s/x.shard", dir), 1, err, sizeof err);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(imb_speech_writer_add(w, "a-1-0", t, 3, f, 2, err, sizeof err), -1);
    dt_err_has(err, "symbol 29", NULL);
    imb_speech_writer_abort(w);
    w = imb_speech_writer_new(p, 1, err, sizeof err);
    f[5] = NAN;
    ck_assert_int_eq(imb_speech_writer_add(w, "a-1-0", t, 1, f, 2, err, sizeof err), -1);
    dt_err_has(err, "non-finite", NULL);
    imb_speech_writer_abort(w);
    w = imb_speech_writer_new(p, 1, err, sizeof err);
    ck_assert_int_eq(imb_speech_writer_finish(w, err, sizeof err), -1);
    dt_err_has(err, "no utterances", NULL);
    ck_assert(access(p, F_OK) != 0);
    /* nothing but the (absent) shard is left behind */
    imb_strlist l;
    ck_assert_int_eq(imb_dir_list(dir, IMB_LIST_FILES, &l, err, sizeof err), 0);
    ck_assert_int_eq(l.n, 0);
    imb_strlist_free(&l);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- loader */

/* 2 speakers x 2 chapters x 8 utterances: 32 utterances of 0.3 .. 0.65 s */
static char *loader_root;
static imb_speech_set *lset;
static float lmean[80], listd[80];

static void loader_setup(void) {
    loader_root = dt_tmpdir();
    st_tree(loader_root, "train-clean-100", 2, 2, 8);
    lset = open_ok(loader_root, "train-clean-100");
    char err[512];
    ck_assert(imb_speech_cmvn(lset, lmean, listd, err, sizeof err) == 0);
}

static void loader_teardown(void) {
    imb_speech_close(lset);
    dt_rm_tree(loader_root);
    free(loader_root);
}

static imb_speech_loader *mk(const imb_speech_loader_opts *o) {
    char err[1024] = "";
    imb_speech_loader *l = imb_speech_loader_new(lset, o, err, sizeof err);
    ck_assert_msg(l != NULL, "%s", err);
    return l;
}

/* A copy of a batch, to compare batches served by different loaders. */
typedef struct saved {
    int count, tmax, ntargets;
    float *feats;
    int32_t *lengths, *targets, *tlens, *index;
} saved;

static saved save(const imb_speech_batch *b) {
    saved s = {b->count, b->tmax, b->ntargets, NULL, NULL, NULL, NULL, NULL};
    size_t nf = (size_t)b->count * b->tmax * 80;
    s.feats = malloc(sizeof *s.feats * (nf + 1));
    memcpy(s.feats, b->feats, sizeof *s.feats * nf);
    s.lengths = malloc(sizeof(int32_t) * (size_t)b->count);
    memcpy(s.lengths, b->lengths, sizeof(int32_t) * (size_t)b->count);
    s.tlens = malloc(sizeof(int32_t) * (size_t)b->count);
    memcpy(s.tlens, b->target_lengths, sizeof(int32_t) * (size_t)b->count);
    s.index = malloc(sizeof(int32_t) * (size_t)b->count);
    memcpy(s.index, b->index, sizeof(int32_t) * (size_t)b->count);
    s.targets = malloc(sizeof(int32_t) * (size_t)(b->ntargets + 1));
    memcpy(s.targets, b->targets, sizeof(int32_t) * (size_t)b->ntargets);
    return s;
}

static void same(const saved *a, const imb_speech_batch *b) {
    ck_assert_int_eq(a->count, b->count);
    ck_assert_int_eq(a->tmax, b->tmax);
    ck_assert_int_eq(a->ntargets, b->ntargets);
    ck_assert_mem_eq(a->index, b->index, sizeof(int32_t) * (size_t)a->count);
    ck_assert_mem_eq(a->lengths, b->lengths, sizeof(int32_t) * (size_t)a->count);
    ck_assert_mem_eq(a->tlens, b->target_lengths, sizeof(int32_t) * (size_t)a->count);
    ck_assert_mem_eq(a->targets, b->targets, sizeof(int32_t) * (size_t)a->ntargets);
    ck_assert_mem_eq(a->feats, b->feats, sizeof(float) * (size_t)a->count * a->tmax * 80);
}

static void unsave(saved *s) {
    free(s->feats);
    free(s->lengths);
    free(s->targets);
    free(s->tlens);
    free(s->index);
}

/* Every field of a batch agrees with the set; returns the padded frames it holds. */
static int64_t check_batch(const imb_speech_batch *b, const imb_speech_loader_opts *o, int *seen) {
    ck_assert(b->count >= 1 && b->count <= o->batch);
    ck_assert_int_eq(b->nmel, 80);
    ck_assert_int_eq(b->tmax % o->pad_multiple, 0);
    int mx = 0, tpos = 0;
    float *ref = malloc(sizeof *ref * 80 * (size_t)imb_speech_max_frames(lset));
    for (int j = 0; j < b->count; j++) {
        int i = b->index[j], f = imb_speech_frames(lset, i);
        seen[i]++;
        ck_assert_int_eq(b->lengths[j], f);
        if (f > mx) mx = f;
        int32_t t[64];
        int n = imb_speech_targets(lset, i, t);
        ck_assert_int_eq(b->target_lengths[j], n);
        ck_assert_mem_eq(b->targets + tpos, t, sizeof *t * (size_t)n);
        tpos += n;
        const float *x = b->feats + (size_t)j * b->tmax * 80;
        imb_speech_features(lset, i, o->mean, o->istd, ref);
        for (int k = 0; k < f * 80; k++)   /* SpecAugment only ever writes zeros */
            ck_assert(x[k] == ref[k] || (o->specaug && x[k] == 0.0f));
        for (int k = f * 80; k < b->tmax * 80; k++) ck_assert(x[k] == 0.0f);
    }
    ck_assert_int_eq(tpos, b->ntargets);
    ck_assert_int_eq(b->tmax, (mx + o->pad_multiple - 1) / o->pad_multiple * o->pad_multiple);
    free(ref);
    return (int64_t)b->count * b->tmax;
}

/* One epoch: every utterance once, batch count as promised, the end marker, then epoch 1. */
static int64_t run_epoch(imb_speech_loader *l, const imb_speech_loader_opts *o, int expect_batches) {
    int seen[32] = {0};
    imb_speech_batch b;
    int64_t padded = 0;
    for (int k = 0; k < expect_batches; k++) {
        ck_assert_int_eq(imb_speech_loader_next(l, &b), 0);
        ck_assert_int_eq(b.batch, k);
        padded += check_batch(&b, o, seen);
    }
    ck_assert_int_eq(imb_speech_loader_next(l, &b), 1);
    ck_assert_int_eq(b.count, 0);
    int total = 0;
    for (int i = 0; i < 32; i++) {
        ck_assert(seen[i] <= 1);
        total += seen[i];
    }
    ck_assert_int_eq(total, o->drop_last ? expect_batches * o->batch : 32);
    return padded;
}

START_TEST(loader_epochs_cover_the_set) {
    imb_speech_loader_opts o;
    imb_speech_loader_defaults(&o, 5, 1);
    o.mean = lmean;
    o.istd = listd;
    o.pad_multiple = 4;
    o.seed = 3;
    imb_speech_loader *l = mk(&o);
    ck_assert_int_eq(imb_speech_loader_batches(l), 7);
    run_epoch(l, &o, 7);
    int64_t e, k;
    imb_speech_loader_position(l, &e, &k);
    ck_assert(e == 1 && k == 0);
    run_epoch(l, &o, 7);
    imb_speech_loader_free(l);
    o.drop_last = 1;
    l = mk(&o);
    ck_assert_int_eq(imb_speech_loader_batches(l), 6);
    run_epoch(l, &o, 6);
    imb_speech_loader_free(l);
    /* eval: set order, no augmentation, exact features */
    imb_speech_loader_defaults(&o, 6, 0);
    l = mk(&o);
    imb_speech_batch b;
    for (int k2 = 0, next = 0; k2 < 6; k2++) {
        ck_assert_int_eq(imb_speech_loader_next(l, &b), 0);
        for (int j = 0; j < b.count; j++) ck_assert_int_eq(b.index[j], next++);
    }
    imb_speech_loader_free(l);
}
END_TEST

START_TEST(loader_is_deterministic_and_resumes) {
    imb_speech_loader_opts o;
    imb_speech_loader_defaults(&o, 4, 1);
    o.mean = lmean;
    o.istd = listd;
    o.seed = 11;
    imb_speech_loader *a = mk(&o), *b = mk(&o);
    saved keep[20];
    imb_speech_batch x, y;
    int nk = 0;
    ck_assert_int_eq(imb_speech_loader_batches(a), 8);
    int64_t pe = 0, pb = 0;
    /* two loaders on the same seed serve the same batches; position after 1.5 epochs kept */
    for (int step = 0; step < 14; step++) {
        if (step == 12) imb_speech_loader_position(a, &pe, &pb);
        int ra = imb_speech_loader_next(a, &x);
        if (ra == 0) {
            ck_assert_int_eq(imb_speech_loader_next(b, &y), 0);
            saved s = save(&x);
            same(&s, &y);
            unsave(&s);
        } else {
            ck_assert_int_eq(imb_speech_loader_next(b, &y), 1);
        }
    }
    ck_assert(pe == 1 && pb == 3);   /* 9 calls per epoch: 8 batches and the end marker */
    /* remember what follows the kept position */
    imb_speech_loader_seek(a, pe, pb);
    for (int k = 0; k < 10; k++) {
        int r = imb_speech_loader_next(a, &x);
        ck_assert(r >= 0);
        if (r == 0) keep[nk++] = save(&x);
    }
    /* a fresh loader seeking there serves the same batches, augmentation included */
    imb_speech_loader *c = mk(&o);
    ck_assert_int_eq(imb_speech_loader_seek(c, pe, pb), 0);
    int got = 0;
    for (int k = 0; k < 10; k++) {
        int r = imb_speech_loader_next(c, &x);
        if (r == 0) same(&keep[got++], &x);
    }
    ck_assert_int_eq(got, nk);
    for (int k = 0; k < nk; k++) unsave(&keep[k]);
    /* the order depends on the epoch and the seed */
    imb_speech_loader_seek(a, 0, 0);
    imb_speech_loader_seek(c, 1, 0);
    imb_speech_loader_next(a, &x);
    saved s0 = save(&x);
    imb_speech_loader_next(c, &y);
    ck_assert(memcmp(s0.index, y.index, sizeof(int32_t) * 4) != 0 || s0.count != y.count);
    o.seed = 12;
    imb_speech_loader *d = mk(&o);
    imb_speech_loader_next(d, &y);
    ck_assert(memcmp(s0.index, y.index, sizeof(int32_t) * 4) != 0 || s0.count != y.count);
    unsave(&s0);
    /* seeking to the end of an epoch, and out of range */
    ck_assert_int_eq(imb_speech_loader_seek(d, 2, imb_speech_loader_batches(d)), 0);
    ck_assert_int_eq(imb_speech_loader_next(d, &y), 1);
    int64_t e, k;
    imb_speech_loader_position(d, &e, &k);
    ck_assert(e == 3 && k == 0);
    ck_assert_int_eq(imb_speech_loader_seek(d, 0, imb_speech_loader_batches(d) + 1), -1);
    dt_err_has(imb_speech_loader_error(d), "seek", NULL);
    imb_speech_loader_free(a);
    imb_speech_loader_free(b);
    imb_speech_loader_free(c);
    imb_speech_loader_free(d);
}
END_TEST

/* Sorting runs of the permutation by length cuts padding; every epoch still covers the set. */
START_TEST(bucketing_limits_padding) {
    imb_speech_loader_opts o;
    imb_speech_loader_defaults(&o, 4, 1);
    o.specaug = 0;
    int64_t with = 0, without = 0;
    for (int seed = 0; seed < 3; seed++) {
        o.seed = (uint64_t)seed;
        o.bucket = 50;
        imb_speech_loader *l = mk(&o);
        with += run_epoch(l, &o, 8);
        imb_speech_loader_free(l);
        o.bucket = 0;
        l = mk(&o);
        without += run_epoch(l, &o, 8);
        imb_speech_loader_free(l);
    }
    ck_assert_msg(with < without, "padded frames: %lld with bucketing, %lld without", (long long)with, (long long)without);
    /* the whole set fits in one run here, so bucketed batches hold the exact padded minimum */
    int64_t minimum = 0;
    int order[32];
    for (int i = 0; i < 32; i++) order[i] = imb_speech_frames(lset, i);
    for (int i = 1; i < 32; i++)
        for (int j = i; j > 0 && order[j - 1] > order[j]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int bb = 0; bb < 8; bb++) minimum += 4 * order[4 * bb + 3];
    ck_assert_int_eq(with, 3 * minimum);
}
END_TEST

START_TEST(specaugment_in_training_only) {
    imb_speech_loader_opts tr, ev;
    imb_speech_loader_defaults(&tr, 8, 1);
    imb_speech_loader_defaults(&ev, 8, 0);
    ck_assert_int_eq(ev.specaug, 0);
    ck_assert_int_eq(tr.specaug, 1);
    tr.mean = ev.mean = lmean;
    tr.istd = ev.istd = listd;
    imb_speech_loader *t = mk(&tr), *e = mk(&ev);
    imb_speech_batch b;
    int seen[32] = {0};
    int64_t zeros_train = 0, zeros_eval = 0;
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(imb_speech_loader_next(t, &b), 0);
        check_batch(&b, &tr, seen);   /* equal to the features except where zeroed */
        for (int j = 0; j < b.count; j++)
            for (int q = 0; q < b.lengths[j] * 80; q++) zeros_train += b.feats[(size_t)j * b.tmax * 80 + q] == 0.0f;
        ck_assert_int_eq(imb_speech_loader_next(e, &b), 0);
        memset(seen, 0, sizeof seen);
        check_batch(&b, &ev, seen);
        for (int j = 0; j < b.count; j++)
            for (int q = 0; q < b.lengths[j] * 80; q++) zeros_eval += b.feats[(size_t)j * b.tmax * 80 + q] == 0.0f;
        memset(seen, 0, sizeof seen);
    }
    ck_assert_int_eq(zeros_eval, 0);
    ck_assert(zeros_train > 1000);
    imb_speech_loader_free(t);
    imb_speech_loader_free(e);
}
END_TEST

/* Mask counts and widths follow the options; draws depend on (seed, epoch, index) only. */
START_TEST(specaugment_masks) {
    imb_specaug_opts o;
    imb_specaug_defaults(&o);
    ck_assert(o.freq_masks == 2 && o.freq_width == 27 && o.time_masks == 2 && fabs(o.time_ratio - 0.05) < 1e-12);
    enum { T = 400 };
    float *a = malloc(sizeof *a * T * 80), *b = malloc(sizeof *b * T * 80);
    int widest_f = 0, widest_t = 0, differ = 0;
    for (uint64_t idx = 0; idx < 200; idx++) {
        for (int i = 0; i < T * 80; i++) a[i] = b[i] = 1.0f;
        imb_specaug_apply(&o, a, T, 80, 0.0f, 5, 1, idx);
        imb_specaug_apply(&o, b, T, 80, 0.0f, 5, 1, idx);
        ck_assert_mem_eq(a, b, sizeof *a * T * 80);
        for (int i = 0; i < T * 80; i++) b[i] = 1.0f;
        imb_specaug_apply(&o, b, T, 80, 0.0f, 5, 2, idx);
        differ += memcmp(a, b, sizeof *a * T * 80) != 0;
        int zc = 0, zr = 0;   /* all-zero columns can only come from frequency masks, rows from time masks */
        for (int c = 0; c < 80; c++) {
            int z = 1;
            for (int t = 0; t < T && z; t++) z = a[t * 80 + c] == 0.0f;
            zc += z;
        }
        for (int t = 0; t < T; t++) {
            int z = 1;
            for (int c = 0; c < 80 && z; c++) z = a[t * 80 + c] == 0.0f;
            zr += z;
        }
        /* every zero is in a masked row or column */
        for (int t = 0; t < T; t++)
            for (int c = 0; c < 80; c++) {
                if (a[t * 80 + c] != 0.0f) continue;
                int col = 1, row = 1;
                for (int u = 0; u < T && col; u++) col = a[u * 80 + c] == 0.0f;
                for (int d = 0; d < 80 && row; d++) row = a[t * 80 + d] == 0.0f;
                ck_assert(col || row);
            }
        ck_assert(zc <= 2 * 27 && zr <= 2 * (int)(0.05 * T));
        if (zc > widest_f) widest_f = zc;
        if (zr > widest_t) widest_t = zr;
    }
    ck_assert(widest_f > 27);   /* two masks adding up beyond one mask's limit happen */
    ck_assert(widest_t > 20);
    ck_assert(differ > 190);
    /* time masks scale with the utterance: 40 frames allow 2 frames per mask */
    for (uint64_t idx = 0; idx < 100; idx++) {
        for (int i = 0; i < 40 * 80; i++) a[i] = 1.0f;
        imb_specaug_apply(&o, a, 40, 80, 0.0f, 5, 0, idx);
        int zr = 0;
        for (int t = 0; t < 40; t++) {
            int z = 1;
            for (int c = 0; c < 80 && z; c++) z = a[t * 80 + c] == 0.0f;
            zr += z;
        }
        ck_assert(zr <= 4);
    }
    free(a);
    free(b);
}
END_TEST

/* The background builder changes nothing: same batches with and without it, across epochs
 * and seeks, and a served batch stays intact while the next one is built. */
START_TEST(prefetch_serves_the_same_batches) {
    imb_speech_loader_opts o;
    imb_speech_loader_defaults(&o, 3, 1);
    o.mean = lmean;
    o.istd = listd;
    o.seed = 9;
    o.pad_multiple = 2;
    o.prefetch = 1;
    imb_speech_loader *p = mk(&o);
    o.prefetch = 0;
    imb_speech_loader *q = mk(&o);
    imb_speech_batch a, b;
    for (int step = 0; step < 40; step++) {
        if (step == 17) {   /* jump back mid-epoch, and later to an epoch's end */
            ck_assert_int_eq(imb_speech_loader_seek(p, 0, 5), 0);
            ck_assert_int_eq(imb_speech_loader_seek(q, 0, 5), 0);
        }
        if (step == 30) {
            ck_assert_int_eq(imb_speech_loader_seek(p, 4, imb_speech_loader_batches(p)), 0);
            ck_assert_int_eq(imb_speech_loader_seek(q, 4, imb_speech_loader_batches(q)), 0);
        }
        int rp = imb_speech_loader_next(p, &a);
        ck_assert_int_eq(imb_speech_loader_next(q, &b), rp);
        if (rp) continue;
        saved s = save(&a);
        same(&s, &b);
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);   /* the builder is done with the next one */
        same(&s, &a);
        unsave(&s);
    }
    imb_speech_loader_free(p);
    imb_speech_loader_free(q);
}
END_TEST

/* Two ranks of batch 4 together serve what one process of batch 8 serves, slice by slice. */
START_TEST(loader_ranks_slice_the_global_batch) {
    imb_speech_loader_opts o;
    imb_speech_loader_defaults(&o, 8, 1);
    o.mean = lmean;
    o.istd = listd;
    o.drop_last = 1;
    o.seed = 5;
    imb_speech_loader *one = mk(&o);
    o.batch = 4;
    o.world = 2;
    imb_speech_loader *r[2];
    for (int k = 0; k < 2; k++) {
        o.rank = k;
        r[k] = mk(&o);
        ck_assert_int_eq(imb_speech_loader_batches(r[k]), 4);
    }
    imb_speech_batch g, b;
    for (int step = 0; step < 10; step++) {   /* two epochs and their end markers */
        int rc = imb_speech_loader_next(one, &g);
        saved all = save(&g);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(imb_speech_loader_next(r[k], &b), rc);
            if (rc) continue;
            ck_assert_int_eq(b.count, 4);
            ck_assert_mem_eq(b.index, all.index + 4 * k, sizeof(int32_t) * 4);
            for (int j = 0; j < 4; j++)   /* same features, augmentation included (padding may differ) */
                ck_assert_mem_eq(b.feats + (size_t)j * b.tmax * 80, all.feats + (size_t)(4 * k + j) * all.tmax * 80,
                                 sizeof(float) * 80 * (size_t)b.lengths[j]);
        }
        unsave(&all);
    }
    imb_speech_loader_free(one);
    imb_speech_loader_free(r[0]);
    imb_speech_loader_free(r[1]);
    char err[256];
    o.drop_last = 0;
    ck_assert_ptr_null(imb_speech_loader_new(lset, &o, err, sizeof err));
    dt_err_has(err, "ranks need drop_last", NULL);
}
END_TEST

START_TEST(loader_rejects_bad_options) {
    imb_speech_loader_opts o;
    char err[512] = "";
    imb_speech_loader_defaults(&o, 0, 1);
    ck_assert_ptr_null(imb_speech_loader_new(lset, &o, err, sizeof err));
    dt_err_has(err, "batch 0", NULL);
    imb_speech_loader_defaults(&o, 4, 1);
    o.mean = lmean;
    ck_assert_ptr_null(imb_speech_loader_new(lset, &o, err, sizeof err));
    dt_err_has(err, "both or neither", NULL);
    imb_speech_loader_defaults(&o, 40, 1);
    o.drop_last = 1;
    ck_assert_ptr_null(imb_speech_loader_new(lset, &o, err, sizeof err));
    dt_err_has(err, "drop_last", NULL);
    imb_speech_loader_defaults(&o, 4, 1);
    o.aug.time_ratio = 2;
    ck_assert_ptr_null(imb_speech_loader_new(lset, &o, err, sizeof err));
    dt_err_has(err, "SpecAugment", NULL);
}
END_TEST

Suite *speech_data_suite(void) {
    Suite *s = suite_create("speech shards and loader");
    TCase *sh = tcase_create("shards");
    tcase_set_timeout(sh, 120);
    tcase_add_test(sh, half_floats);
    tcase_add_test(sh, shard_round_trip_and_cmvn);
    tcase_add_test(sh, shard_cache_reuse_and_rebuild);
    tcase_add_test(sh, shard_writer_rejects_bad_records);
    tcase_add_test(sh, specaugment_masks);
    suite_add_tcase(s, sh);
    TCase *ld = tcase_create("loader");
    tcase_set_timeout(ld, 120);
    tcase_add_unchecked_fixture(ld, loader_setup, loader_teardown);
    tcase_add_test(ld, loader_epochs_cover_the_set);
    tcase_add_test(ld, loader_is_deterministic_and_resumes);
    tcase_add_test(ld, bucketing_limits_padding);
    tcase_add_test(ld, specaugment_in_training_only);
    tcase_add_test(ld, prefetch_serves_the_same_batches);
    tcase_add_test(ld, loader_ranks_slice_the_global_batch);
    tcase_add_test(ld, loader_rejects_bad_options);
    suite_add_tcase(s, ld);
    return s;
}
