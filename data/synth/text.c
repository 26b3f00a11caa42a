/* Synthetic text corpora: AG-News CSV and aclImdb folders with a learnable topic/sentiment signal. */
#include "fileio.h"
#include "rng.h"
#include "synth/layouts.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Words every class uses: alone they carry no label. */
static const char *const filler[] = {
    "the", "a", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "it", "this", "by",
    "from", "at", "are", "be", "has", "had", "new", "after", "over", "more", "about", "said", "year", "week",
    "people", "time", "first", "last", "two", "three", "report", "today", "while", "could", "would", "will",
    "still", "many", "some", "other", "their", "there", "when", "than",
};
#define NFILLER ((int)(sizeof filler / sizeof *filler))

/* Topic words: a sample of class k draws a few of row k (AG-News order: World, Sports,
 * Business, Sci/Tech; IMDb: neg, pos). Some are non-ASCII or mixed case, so the learnable
 * signal survives only if NFKC + case folding treat them consistently. */
static const char *const topics[4][12] = {
    { "minister", "government", "election", "embassy", "troops", "Ministère", "parliament", "treaty", "refugees",
      "ceasefire", "diplomats", "Président" },
    { "match", "goal", "season", "coach", "tournament", "striker", "Olympic", "medal", "playoff", "inning",
      "championship", "Fußball" },
    { "shares", "profit", "earnings", "investors", "merger", "quarterly", "stocks", "revenue", "Dow", "acquisition",
      "dividend", "économie" },
    { "software", "internet", "computer", "NASA", "researchers", "wireless", "chip", "genome", "spacecraft",
      "browser", "quantum", "Linux" },
};
static const char *const sentiment[2][12] = {
    { "awful", "boring", "terrible", "waste", "dull", "worst", "mess", "clumsy", "tedious", "DISAPPOINTING",
      "lifeless", "mediocre" },
    { "wonderful", "brilliant", "superb", "moving", "masterpiece", "delightful", "gripping", "Charming",
      "excellent", "beautiful", "touching", "FANTASTIC" },
};

typedef struct buf { char *s; size_t n, cap; int oom; } buf;

static void put(buf *b, const char *s) {
    size_t k = strlen(s);
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = (b->n + k + 1) * 2 + 256;
        char *q = realloc(b->s, cap);
        if (!q) { b->oom = 1; return; }
        b->s = q;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, k + 1);
    b->n += k;
}

/* A draw from the sample's own stream: every sample is a pure function of (seed, stream). */
typedef struct draw { uint64_t seed, stream, i; } draw;
static uint32_t below(draw *d, uint32_t n) { return imb_rng_below(d->seed, d->stream, d->i++, n); }

/* nwords words: filler, with `signal` words of `row` at random places and, one time in eight,
 * one word of `other` (label noise a model must learn to outvote). */
static void sentence(buf *b, draw *d, const char *const *row, const char *const *other, int nwords, int signal) {
    int noise = below(d, 8) == 0 ? (int)below(d, (uint32_t)nwords) : -1;
    for (int w = 0; w < nwords; w++) {
        if (w) put(b, " ");
        if (w == noise) put(b, other[below(d, 12)]);
        else if ((int)below(d, (uint32_t)nwords) < signal) put(b, row[below(d, 12)]);
        else put(b, filler[below(d, NFILLER)]);
    }
}

/* ---------------------------------------------------------------- AG-News */

static const char *const ag_classes = "World\nSports\nBusiness\nSci/Tech\n";

/* One CSV record: "class","title","description" with AG-News's quirks in some rows. */
static void ag_record(buf *b, draw *d, int cls) {
    char num[16];
    snprintf(num, sizeof num, "\"%d\",\"", cls + 1);
    put(b, num);
    const char *const *other = topics[(cls + 1 + (int)below(d, 3)) % 4];
    sentence(b, d, topics[cls], other, 4 + (int)below(d, 5), 1);
    switch (below(d, 6)) {   /* title decorations the reader must decode */
    case 0: put(b, " (Reuters)"); break;
    case 1: put(b, " #39;s"); break;
    case 2: put(b, ", \"\"quoted\"\""); break;
    default: break;
    }
    put(b, "\",\"");
    int sentences = (int)below(d, 4);   /* 0: an empty description */
    for (int s = 0; s < sentences; s++) {
        if (s) put(b, below(d, 2) ? "\\n" : ". ");
        sentence(b, d, topics[cls], other, 6 + (int)below(d, 14), 2);
    }
    if (sentences && below(d, 5) == 0) put(b, " AT&amp;T, &lt;b&gt; 50\\$");
    put(b, "\"\n");
}

static int ag_split(const char *root, const char *name, int per_class, uint64_t seed, uint64_t base, char *err,
                    size_t errn) {
    buf b = { 0 };
    int n = 4 * per_class;
    /* per_class of each class in a seeded order: the real files are not sorted by class */
    int *cls = malloc(sizeof *cls * (size_t)(n ? n : 1));
    for (int i = 0; cls && i < n; i++) cls[i] = i % 4;
    for (int i = n - 1; cls && i > 0; i--) {
        int j = (int)imb_rng_below(seed, base + 77, (uint64_t)i, (uint32_t)i + 1), t = cls[i];
        cls[i] = cls[j];
        cls[j] = t;
    }
    for (int i = 0; cls && i < n; i++) {
        draw d = { seed, imb_hash64(base + (uint64_t)i), 0 };
        ag_record(&b, &d, cls[i]);
    }
    char *path = imb_path_join(root, name);
    int rc = b.oom || !path || !cls ? imb_errf(err, errn, "%s: out of memory", root)
                                    : imb_file_write(path, b.s ? b.s : "", b.n, err, errn);
    free(cls);
    free(path);
    free(b.s);
    return rc;
}

int imb_synth_write_agnews(const char *root, int per_class_train, int per_class_val, uint64_t seed, char *err,
                           size_t errn) {
    char *cls = imb_path_join(root, "classes.txt");
    int rc = cls ? imb_file_write(cls, ag_classes, strlen(ag_classes), err, errn) : imb_errf(err, errn, "%s: out of memory", root);
    free(cls);
    if (!rc) rc = ag_split(root, "train.csv", per_class_train, seed, 0x1000000, err, errn);
    if (!rc) rc = ag_split(root, "test.csv", per_class_val, seed, 0x2000000, err, errn);
    return rc;
}

/* ---------------------------------------------------------------- aclImdb */

static int imdb_file(const char *dir, int id, int rating, const char *text, size_t n, char *err, size_t errn) {
    char name[64];
    snprintf(name, sizeof name, "%d_%d.txt", id, rating);
    char *path = imb_path_join(dir, name);
    int rc = path ? imb_file_write(path, text, n, err, errn) : imb_errf(err, errn, "%s: out of memory", dir);
    free(path);
    return rc;
}

static int imdb_split(const char *root, const char *split, int per_class, int unsup, uint64_t seed, uint64_t base,
                      char *err, size_t errn) {
    static const char *const labels[3] = { "neg", "pos", "unsup" };
    int rc = 0;
    for (int label = 0; label < 3 && !rc; label++) {
        int count = label < 2 ? per_class : unsup;
        if (label == 2 && !count) break;
        char sub[64];
        snprintf(sub, sizeof sub, "%s/%s", split, labels[label]);
        char *dir = imb_path_join(root, sub);
        rc = dir ? imb_mkdirs(dir, err, errn) : imb_errf(err, errn, "%s: out of memory", root);
        for (int i = 0; i < count && !rc; i++) {
            draw d = { seed, imb_hash64(base + (uint64_t)label * 0x100000 + (uint64_t)i), 0 };
            buf b = { 0 };
            int sentences = 2 + (int)below(&d, 5), row = label < 2 ? label : (int)below(&d, 2);
            for (int s = 0; s < sentences; s++) {
                if (s) put(&b, below(&d, 3) ? ". " : ".<br /><br />");
                sentence(&b, &d, sentiment[row], sentiment[1 - row], 8 + (int)below(&d, 16), 2);
            }
            put(&b, ".");
            int rating = label == 0 ? 1 + (int)below(&d, 4) : label == 1 ? 7 + (int)below(&d, 4) : 0;
            rc = b.oom ? imb_errf(err, errn, "%s: out of memory", dir) : imdb_file(dir, i, rating, b.s, b.n, err, errn);
            free(b.s);
        }
        free(dir);
    }
    return rc;
}

int imb_synth_write_imdb(const char *root, int per_class_train, int per_class_val, uint64_t seed, char *err,
                         size_t errn) {
    /* train/unsup/ and a stray file beside the label folders are there to be ignored */
    int rc = imdb_split(root, "train", per_class_train, per_class_train / 4 + 1, seed, 0x3000000, err, errn);
    if (!rc) rc = imdb_split(root, "test", per_class_val, 0, seed, 0x4000000, err, errn);
    if (!rc) {
        char *p = imb_path_join(root, "train/urls_pos.txt");
        rc = p ? imb_file_write(p, "http://www.imdb.com/title/tt0000000/usercomments\n", 49, err, errn)
               : imb_errf(err, errn, "%s: out of memory", root);
        free(p);
    }
    return rc;
}
