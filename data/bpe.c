/* Byte-level BPE: pre-tokenisation, deterministic merge learning, encode/decode, the file format. */
#include "bpe.h"
#include "fileio.h"
#include "shard.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <zlib.h>

enum { HDR = 40, HDR_CRC_AT = 36, MIN_PAIR_COUNT = 2 };
static const char MAGIC[8] = { 'I', 'M', 'B', 'T', 'O', 'K', 'E', 'N' };

/* ---------------------------------------------------------------- hashing */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return mix64(h ^ n);
}

/* Open addressing from u64 keys to int values (>= 0); slots hold value + 1, 0 = empty. */
typedef struct u64map { uint64_t *key; int32_t *val; size_t cap, n; } u64map;

static int u64map_grow(u64map *m) {
    size_t cap = m->cap ? 2 * m->cap : 1024;
    uint64_t *k = calloc(cap, sizeof *k);
    int32_t *v = calloc(cap, sizeof *v);
    if (!k || !v) { free(k); free(v); return -1; }
    for (size_t i = 0; i < m->cap; i++)
        if (m->val[i]) {
            size_t j = mix64(m->key[i]) & (cap - 1);
            while (v[j]) j = (j + 1) & (cap - 1);
            k[j] = m->key[i];
            v[j] = m->val[i];
        }
    free(m->key);
    free(m->val);
    m->key = k;
    m->val = v;
    m->cap = cap;
    return 0;
}

static int u64map_get(const u64map *m, uint64_t key) {
    if (!m->cap) return -1;
    for (size_t j = mix64(key) & (m->cap - 1); m->val[j]; j = (j + 1) & (m->cap - 1))
        if (m->key[j] == key) return m->val[j] - 1;
    return -1;
}

static int u64map_put(u64map *m, uint64_t key, int32_t val) {
    if (2 * (m->n + 1) > m->cap && u64map_grow(m)) return -1;
    size_t j = mix64(key) & (m->cap - 1);
    while (m->val[j] && m->key[j] != key) j = (j + 1) & (m->cap - 1);
    if (!m->val[j]) m->n++;
    m->key[j] = key;
    m->val[j] = val + 1;
    return 0;
}

static void u64map_free(u64map *m) {
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

/* Interned byte strings: id -> (offset, length) in a pool, found by content. */
typedef struct strtab {
    uint8_t *pool;
    size_t pool_n, pool_cap;
    size_t *off;
    uint32_t *len;
    int n, cap;
    int32_t *slot;   /* id + 1, 0 = empty */
    size_t nslot;
} strtab;

static int strtab_rehash(strtab *t, size_t nslot) {
    int32_t *s = calloc(nslot, sizeof *s);
    if (!s) return -1;
    for (int i = 0; i < t->n; i++) {
        size_t j = hash_bytes(t->pool + t->off[i], t->len[i]) & (nslot - 1);
        while (s[j]) j = (j + 1) & (nslot - 1);
        s[j] = i + 1;
    }
    free(t->slot);
    t->slot = s;
    t->nslot = nslot;
    return 0;
}

/* The id of p[0..n), added when new (*added = 1); -1 when out of memory. */
static int strtab_intern(strtab *t, const uint8_t *p, size_t n, int *added) {
    *added = 0;
    if (2 * ((size_t)t->n + 1) > t->nslot && strtab_rehash(t, t->nslot ? 2 * t->nslot : 4096)) return -1;
    size_t j = hash_bytes(p, n) & (t->nslot - 1);
    for (; t->slot[j]; j = (j + 1) & (t->nslot - 1)) {
        int i = t->slot[j] - 1;
        if (t->len[i] == n && !memcmp(t->pool + t->off[i], p, n)) return i;
    }
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 4096;
        size_t *o = realloc(t->off, sizeof *o * (size_t)cap);
        if (o) t->off = o;
        uint32_t *l = realloc(t->len, sizeof *l * (size_t)cap);
        if (l) t->len = l;
        if (!o || !l) return -1;
        t->cap = cap;
    }
    if (t->pool_n + n > t->pool_cap) {
        size_t cap = (t->pool_n + n) * 2 + 4096;
        uint8_t *q = realloc(t->pool, cap);
        if (!q) return -1;
        t->pool = q;
        t->pool_cap = cap;
    }
    memcpy(t->pool + t->pool_n, p, n);
    t->off[t->n] = t->pool_n;
    t->len[t->n] = (uint32_t)n;
    t->pool_n += n;
    t->slot[j] = ++t->n;
    *added = 1;
    return t->n - 1;
}

static void strtab_free(strtab *t) {
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- pre-tokenisation */

enum { CL_SPACE, CL_LETTER, CL_NUMBER, CL_OTHER };

static int char_class(const uint8_t *s, size_t n, size_t i, size_t *len) {
    *len = 1;
    if (s[i] == ' ') return CL_SPACE;
    if (s[i] < 0x80) return isalpha(s[i]) ? CL_LETTER : isdigit(s[i]) ? CL_NUMBER : CL_OTHER;
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &c);
    if (k < 1) return CL_OTHER;   /* a stray byte is a piece of its own class */
    *len = (size_t)k;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        return CL_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CL_NUMBER;
    default:
        return CL_OTHER;
    }
}

/* End of the piece starting at i: [space] run-of-one-class, or a lone space. A run stops after
 * MAX_PIECE bytes (at a character boundary): merging inside a piece costs its length squared,
 * and nothing useful is learned from a megabyte without a space. */
enum { MAX_PIECE = 64 };
static size_t piece_end(const uint8_t *s, size_t n, size_t i) {
    size_t len;
    int c = char_class(s, n, i, &len);
    size_t j = i + len;
    if (c == CL_SPACE) {
        if (j >= n) return j;
        c = char_class(s, n, j, &len);
        if (c == CL_SPACE) return j;
        j += len;
    }
    while (j < n && j - i < MAX_PIECE) {
        if (char_class(s, n, j, &len) != c) break;
        j += len;
    }
    return j;
}

/* ---------------------------------------------------------------- the tokenizer */

struct imb_bpe {
    int nmerges, requested;
    int32_t (*merge)[2];
    strtab tok;          /* token id - 1 -> bytes (ids 1..256 first) */
    u64map rank;         /* (left << 32 | right) -> merge rank */
    strtab cache;        /* pieces seen by encode */
    imb_ids cache_ids;   /* their ids, cache_off[i] .. cache_off[i + 1] */
    size_t *cache_off;
    int cache_cap;
};

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

void imb_ids_free(imb_ids *v) {
    free(v->v);
    memset(v, 0, sizeof *v);
}

static int ids_push(imb_ids *v, int32_t x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 256;
        int32_t *p = realloc(v->v, sizeof *p * cap);
        if (!p) return -1;
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

/* A tokenizer with the 256 byte tokens and room for nmerges merges. */
static imb_bpe *bpe_new(int requested, int nmerges) {
    imb_bpe *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->requested = requested;
    b->merge = malloc(sizeof *b->merge * (size_t)(nmerges > 0 ? nmerges : 1));
    if (!b->merge) { free(b); return NULL; }
    for (int i = 0; i < 256; i++) {
        uint8_t c = (uint8_t)i;
        int added;
        if (strtab_intern(&b->tok, &c, 1, &added) != i) { imb_bpe_free(b); return NULL; }
    }
    return b;
}

/* Appends merge (a, b) as id 257 + nmerges. */
static int bpe_add_merge(imb_bpe *b, int32_t l, int32_t r) {
    size_t la = 0, lb = 0;
    const uint8_t *pa = imb_bpe_token(b, l, &la), *pb = imb_bpe_token(b, r, &lb);
    uint8_t buf[512], *cat = la + lb <= sizeof buf ? buf : malloc(la + lb);
    if (!pa || !pb || !cat) return -1;
    memcpy(cat, pa, la);
    memcpy(cat + la, pb, lb);
    /* a merge can spell a token that exists already (different split): keep both ids */
    int rc = 0;
    if (b->tok.n == b->tok.cap) {
        int cap = b->tok.cap * 2;
        size_t *o = realloc(b->tok.off, sizeof *o * (size_t)cap);
        if (o) b->tok.off = o;
        uint32_t *ln = realloc(b->tok.len, sizeof *ln * (size_t)cap);
        if (ln) b->tok.len = ln;
        if (!o || !ln) rc = -1;
        else b->tok.cap = cap;
    }
    if (!rc && b->tok.pool_n + la + lb > b->tok.pool_cap) {
        size_t cap = (b->tok.pool_n + la + lb) * 2;
        uint8_t *q = realloc(b->tok.pool, cap);
        if (!q) rc = -1;
        else { b->tok.pool = q; b->tok.pool_cap = cap; }
    }
    if (!rc) {
        memcpy(b->tok.pool + b->tok.pool_n, cat, la + lb);
        b->tok.off[b->tok.n] = b->tok.pool_n;
        b->tok.len[b->tok.n++] = (uint32_t)(la + lb);
        b->tok.pool_n += la + lb;
        rc = u64map_put(&b->rank, pair_key(l, r), b->nmerges);
    }
    if (cat != buf) free(cat);
    if (rc) return -1;
    b->merge[b->nmerges][0] = l;
    b->merge[b->nmerges][1] = r;
    b->nmerges++;
    return 0;
}

void imb_bpe_free(imb_bpe *b) {
    if (!b) return;
    free(b->merge);
    strtab_free(&b->tok);
    u64map_free(&b->rank);
    strtab_free(&b->cache);
    imb_ids_free(&b->cache_ids);
    free(b->cache_off);
    free(b);
}

int imb_bpe_vocab(const imb_bpe *b) { return IMB_BPE_BASE + b->nmerges; }
int imb_bpe_requested(const imb_bpe *b) { return b->requested; }

uint32_t imb_bpe_hash(const imb_bpe *b) {
    uint32_t crc = (uint32_t)crc32(0, NULL, 0);
    for (int r = 0; r < b->nmerges; r++) {
        uint8_t e[8];
        for (int k = 0; k < 4; k++) {
            e[k] = (uint8_t)((uint32_t)b->merge[r][0] >> (8 * k));
            e[4 + k] = (uint8_t)((uint32_t)b->merge[r][1] >> (8 * k));
        }
        crc = (uint32_t)crc32(crc, e, 8);
    }
    return crc;
}

const uint8_t *imb_bpe_token(const imb_bpe *b, int id, size_t *len) {
    if (id < 1 || id >= IMB_BPE_BASE + b->nmerges) return NULL;
    *len = b->tok.len[id - 1];
    return b->tok.pool + b->tok.off[id - 1];
}

/* ---------------------------------------------------------------- training */

typedef struct word { int32_t *sym; int len; int64_t count; int seen; } word;
typedef struct pair { int32_t a, b; int64_t count; int32_t *where; int nwhere, capwhere, touched; } pair;
typedef struct hent { int64_t count; int32_t a, b; } hent;

typedef struct trainer {
    word *w;
    int nw;
    pair *p;
    int np, capp;
    u64map index;        /* pair key -> index into p */
    hent *heap;
    size_t nheap, capheap;
    int *touched;
    int ntouched, captouched;
} trainer;

static int hent_better(const hent *x, const hent *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static int heap_push(trainer *t, int64_t count, int32_t a, int32_t b) {
    if (t->nheap == t->capheap) {
        size_t cap = t->capheap ? 2 * t->capheap : 4096;
        hent *h = realloc(t->heap, sizeof *h * cap);
        if (!h) return -1;
        t->heap = h;
        t->capheap = cap;
    }
    size_t i = t->nheap++;
    hent e = { count, a, b };
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!hent_better(&e, &t->heap[up])) break;
        t->heap[i] = t->heap[up];
        i = up;
    }
    t->heap[i] = e;
    return 0;
}

static hent heap_pop(trainer *t) {
    hent top = t->heap[0], last = t->heap[--t->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->nheap) break;
        if (c + 1 < t->nheap && hent_better(&t->heap[c + 1], &t->heap[c])) c++;
        if (!hent_better(&t->heap[c], &last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (t->nheap) t->heap[i] = last;
    return top;
}

/* Adds delta occurrences of (a, b) from word w; a new occurrence records w in the pair's list. */
static int pair_add(trainer *t, int32_t a, int32_t b, int64_t delta, int w, int stamp) {
    int i = u64map_get(&t->index, pair_key(a, b));
    if (i < 0) {
        if (t->np == t->capp) {
            int cap = t->capp ? 2 * t->capp : 4096;
            pair *q = realloc(t->p, sizeof *q * (size_t)cap);
            if (!q) return -1;
            t->p = q;
            t->capp = cap;
        }
        i = t->np++;
        memset(&t->p[i], 0, sizeof t->p[i]);
        t->p[i].a = a;
        t->p[i].b = b;
        t->p[i].touched = -1;
        if (u64map_put(&t->index, pair_key(a, b), i)) return -1;
    }
    pair *p = &t->p[i];
    p->count += delta;
    if (delta > 0 && (p->nwhere == 0 || p->where[p->nwhere - 1] != w)) {
        if (p->nwhere == p->capwhere) {
            int cap = p->capwhere ? 2 * p->capwhere : 4;
            int32_t *q = realloc(p->where, sizeof *q * (size_t)cap);
            if (!q) return -1;
            p->where = q;
            p->capwhere = cap;
        }
        p->where[p->nwhere++] = w;
    }
    if (p->touched != stamp) {
        p->touched = stamp;
        if (t->ntouched == t->captouched) {
            int cap = t->captouched ? 2 * t->captouched : 1024;
            int *q = realloc(t->touched, sizeof *q * (size_t)cap);
            if (!q) return -1;
            t->touched = q;
            t->captouched = cap;
        }
        t->touched[t->ntouched++] = i;
    }
    return 0;
}

static void trainer_free(trainer *t) {
    for (int i = 0; i < t->nw; i++) free(t->w[i].sym);
    for (int i = 0; i < t->np; i++) free(t->p[i].where);
    free(t->w);
    free(t->p);
    free(t->heap);
    free(t->touched);
    u64map_free(&t->index);
}

/* Applies merge (a, b) -> id to word w, updating pair counts (stamp marks the pairs touched). */
static int merge_word(trainer *t, int w, int32_t a, int32_t b, int32_t id, int stamp) {
    word *wd = &t->w[w];
    int has = 0;
    for (int i = 0; i + 1 < wd->len && !has; i++) has = wd->sym[i] == a && wd->sym[i + 1] == b;
    if (!has) return 0;
    for (int i = 0; i + 1 < wd->len; i++)
        if (pair_add(t, wd->sym[i], wd->sym[i + 1], -wd->count, w, stamp)) return -1;
    int o = 0;
    for (int i = 0; i < wd->len; o++) {
        if (i + 1 < wd->len && wd->sym[i] == a && wd->sym[i + 1] == b) {
            wd->sym[o] = id;
            i += 2;
        } else {
            wd->sym[o] = wd->sym[i++];
        }
    }
    wd->len = o;
    for (int i = 0; i + 1 < wd->len; i++)
        if (pair_add(t, wd->sym[i], wd->sym[i + 1], wd->count, w, stamp)) return -1;
    return 0;
}

imb_bpe *imb_bpe_train(char *const *texts, int n, int vocab_size, char *err, size_t errn) {
    if (vocab_size < IMB_BPE_BASE || n < 0) {
        imb_errf(err, errn, "bpe: vocab_size %d must be >= %d (padding + 256 bytes)", vocab_size, IMB_BPE_BASE);
        return NULL;
    }
    int target = vocab_size - IMB_BPE_BASE;
    imb_bpe *b = bpe_new(vocab_size, target);
    trainer t;
    memset(&t, 0, sizeof t);
    strtab pieces;
    memset(&pieces, 0, sizeof pieces);
    int64_t *counts = NULL;
    int ok = b != NULL;
    /* 1. piece frequencies */
    for (int d = 0; ok && d < n; d++) {
        const uint8_t *s = (const uint8_t *)texts[d];
        size_t len = strlen(texts[d]);
        for (size_t i = 0; ok && i < len;) {
            size_t j = piece_end(s, len, i);
            int added, id = strtab_intern(&pieces, s + i, j - i, &added);
            if (id < 0) { ok = 0; break; }
            if (added) {
                int64_t *c = realloc(counts, sizeof *c * (size_t)pieces.cap);
                if (!c) { ok = 0; break; }
                counts = c;
                counts[id] = 0;
            }
            counts[id]++;
            i = j;
        }
    }
    /* 2. words, their pairs and the heap. Counts are exact integer sums and the heap orders
     * by (count, left, right), so no hash or word order can change which merge comes next. */
    if (ok) {
        t.nw = pieces.n;
        ok = (t.w = calloc((size_t)(pieces.n ? pieces.n : 1), sizeof *t.w)) != NULL;
    }
    for (int w = 0; ok && w < t.nw; w++) {
        int pi = w;
        word *wd = &t.w[w];
        wd->len = (int)pieces.len[pi];
        wd->count = counts[pi];
        wd->seen = -1;
        if (!(wd->sym = malloc(sizeof *wd->sym * (size_t)wd->len))) { ok = 0; break; }
        for (int i = 0; i < wd->len; i++) wd->sym[i] = 1 + pieces.pool[pieces.off[pi] + (size_t)i];
        for (int i = 0; ok && i + 1 < wd->len; i++) ok = !pair_add(&t, wd->sym[i], wd->sym[i + 1], wd->count, w, -2);
    }
    for (int i = 0; ok && i < t.np; i++) ok = !heap_push(&t, t.p[i].count, t.p[i].a, t.p[i].b);
    t.ntouched = 0;
    strtab_free(&pieces);
    free(counts);
    /* 3. merges */
    int32_t *where = NULL;
    while (ok && b->nmerges < target && t.nheap) {
        hent top = heap_pop(&t);
        int pi = u64map_get(&t.index, pair_key(top.a, top.b));
        if (pi < 0 || t.p[pi].count != top.count) continue;   /* stale entry */
        if (top.count < MIN_PAIR_COUNT) break;
        int r = b->nmerges, nwhere = t.p[pi].nwhere;
        int32_t id = IMB_BPE_BASE + r;
        if (bpe_add_merge(b, top.a, top.b)) { ok = 0; break; }
        /* the pair's word list, detached: merging adds entries to other pairs' lists */
        free(where);
        where = t.p[pi].where;
        t.p[pi].where = NULL;
        t.p[pi].nwhere = t.p[pi].capwhere = 0;
        t.ntouched = 0;
        for (int k = 0; ok && k < nwhere; k++) {
            int w = where[k];
            if (t.w[w].seen == r) continue;
            t.w[w].seen = r;
            ok = !merge_word(&t, w, top.a, top.b, id, r);
        }
        for (int k = 0; ok && k < t.ntouched; k++) {
            const pair *p = &t.p[t.touched[k]];
            if (p->count > 0) ok = !heap_push(&t, p->count, p->a, p->b);
        }
    }
    free(where);
    trainer_free(&t);
    if (!ok) {
        imb_bpe_free(b);
        imb_errf(err, errn, "bpe: out of memory while training");
        return NULL;
    }
    return b;
}

/* ---------------------------------------------------------------- encode / decode */

static int encode_piece(const imb_bpe *b, const uint8_t *s, size_t n, imb_ids *out) {
    int32_t stack[64], *sym = n <= 64 ? stack : malloc(sizeof *sym * n);
    if (!sym) return -1;
    int len = (int)n;
    for (int i = 0; i < len; i++) sym[i] = 1 + s[i];
    for (;;) {
        int best = -1;
        for (int i = 0; i + 1 < len; i++) {
            int r = u64map_get(&b->rank, pair_key(sym[i], sym[i + 1]));
            if (r >= 0 && (best < 0 || r < best)) best = r;
        }
        if (best < 0) break;
        int32_t a = b->merge[best][0], c = b->merge[best][1], o = 0;
        for (int i = 0; i < len; o++) {
            if (i + 1 < len && sym[i] == a && sym[i + 1] == c) {
                sym[o] = IMB_BPE_BASE + best;
                i += 2;
            } else {
                sym[o] = sym[i++];
            }
        }
        len = o;
    }
    int rc = 0;
    for (int i = 0; i < len && !rc; i++) rc = ids_push(out, sym[i]);
    if (sym != stack) free(sym);
    return rc;
}

int imb_bpe_encode(imb_bpe *b, const char *text, size_t n, imb_ids *out) {
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < n;) {
        size_t j = piece_end(s, n, i);
        int added, id = strtab_intern(&b->cache, s + i, j - i, &added);
        if (id < 0) return -1;
        if (added) {
            if (id + 2 > b->cache_cap) {
                int cap = b->cache_cap ? 2 * b->cache_cap : 4096;
                size_t *o = realloc(b->cache_off, sizeof *o * (size_t)cap);
                if (!o) return -1;
                b->cache_off = o;
                b->cache_cap = cap;
            }
            b->cache_off[id] = b->cache_ids.n;
            if (encode_piece(b, s + i, j - i, &b->cache_ids)) return -1;
            b->cache_off[id + 1] = b->cache_ids.n;
        }
        for (size_t k = b->cache_off[id]; k < b->cache_off[id + 1]; k++)
            if (ids_push(out, b->cache_ids.v[k])) return -1;
        i = j;
    }
    return 0;
}

char *imb_bpe_decode(const imb_bpe *b, const int32_t *ids, size_t n, size_t *len) {
    size_t total = 0, tl = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == IMB_BPE_PAD) continue;
        if (!imb_bpe_token(b, ids[i], &tl)) return NULL;
        total += tl;
    }
    char *o = malloc(total + 1);
    if (!o) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == IMB_BPE_PAD) continue;
        const uint8_t *p = imb_bpe_token(b, ids[i], &tl);
        memcpy(o + w, p, tl);
        w += tl;
    }
    o[w] = 0;
    if (len) *len = w;
    return o;
}

/* ---------------------------------------------------------------- file */

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int imb_bpe_save(const imb_bpe *b, const char *path, uint64_t fingerprint, char *err, size_t errn) {
    size_t size = HDR + 8 * (size_t)b->nmerges;
    uint8_t *buf = calloc(1, size);
    if (!buf) return imb_errf(err, errn, "%s: out of memory", path);
    memcpy(buf, MAGIC, 8);
    put32(buf + 8, IMB_BPE_VERSION);
    put32(buf + 12, HDR);
    put32(buf + 16, (uint32_t)imb_bpe_vocab(b));
    put32(buf + 20, (uint32_t)b->requested);
    put32(buf + 24, (uint32_t)fingerprint);
    put32(buf + 28, (uint32_t)(fingerprint >> 32));
    for (int r = 0; r < b->nmerges; r++) {
        put32(buf + HDR + 8 * (size_t)r, (uint32_t)b->merge[r][0]);
        put32(buf + HDR + 8 * (size_t)r + 4, (uint32_t)b->merge[r][1]);
    }
    put32(buf + 32, imb_bpe_hash(b));
    put32(buf + HDR_CRC_AT, (uint32_t)crc32(0, buf, HDR_CRC_AT));
    int rc = imb_file_write(path, buf, size, err, errn);
    free(buf);
    if (!rc) (void)imb_fsync_dir_of(path);
    return rc;
}

int imb_bpe_load(const char *path, uint64_t fingerprint, imb_bpe **out, char *err, size_t errn) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        imb_errf(err, errn, "%s: %s", path, e == ENOENT ? "missing (no tokenizer trained yet)" : strerror(e));
        return e == ENOENT ? IMB_SHARD_MISSING : IMB_SHARD_IOERR;
    }
    fclose(f);
    uint8_t *buf;
    size_t n;
    if (imb_file_read(path, &buf, &n, err, errn)) return IMB_SHARD_CORRUPT;   /* empty or unreadable */
    int st = IMB_SHARD_CORRUPT;
    uint32_t vocab = n >= HDR ? get32(buf + 16) : 0;
    uint64_t fp = n >= HDR ? (uint64_t)get32(buf + 24) | (uint64_t)get32(buf + 28) << 32 : 0;
    imb_bpe *b = NULL;
    if (n < HDR) imb_errf(err, errn, "%s: header: truncated (%zu bytes)", path, n);
    else if (memcmp(buf, MAGIC, 8)) imb_errf(err, errn, "%s: magic: not an imbench tokenizer", path);
    else if (get32(buf + 8) != IMB_BPE_VERSION) {
        imb_errf(err, errn, "%s: version: format %u, this build reads %u", path, get32(buf + 8), IMB_BPE_VERSION);
        st = IMB_SHARD_STALE;
    } else if (get32(buf + HDR_CRC_AT) != (uint32_t)crc32(0, buf, HDR_CRC_AT))
        imb_errf(err, errn, "%s: header: checksum mismatch", path);
    else if (get32(buf + 12) != HDR || vocab < IMB_BPE_BASE || vocab > get32(buf + 20) ||
             n != HDR + 8 * (size_t)(vocab - IMB_BPE_BASE))
        imb_errf(err, errn, "%s: size: %zu bytes for a vocabulary of %u", path, n, vocab);
    else if (fp != fingerprint) {
        imb_errf(err, errn, "%s: fingerprint: trained on other data (%016llx, expected %016llx)", path,
                 (unsigned long long)fp, (unsigned long long)fingerprint);
        st = IMB_SHARD_STALE;
    } else if (!(b = bpe_new((int)get32(buf + 20), (int)(vocab - IMB_BPE_BASE)))) {
        imb_errf(err, errn, "%s: out of memory", path);
        st = IMB_SHARD_IOERR;
    } else {
        st = IMB_SHARD_OK;
        for (uint32_t r = 0; r < vocab - IMB_BPE_BASE && st == IMB_SHARD_OK; r++) {
            uint32_t l = get32(buf + HDR + 8 * (size_t)r), rr = get32(buf + HDR + 8 * (size_t)r + 4);
            if (l < 1 || rr < 1 || l >= IMB_BPE_BASE + r || rr >= IMB_BPE_BASE + r) {
                imb_errf(err, errn, "%s: merge %u: ids (%u, %u) not below its own id %u", path, r, l, rr, IMB_BPE_BASE + r);
                st = IMB_SHARD_CORRUPT;
            } else if (bpe_add_merge(b, (int32_t)l, (int32_t)rr)) {
                imb_errf(err, errn, "%s: out of memory", path);
                st = IMB_SHARD_IOERR;
            }
        }
        if (st == IMB_SHARD_OK && imb_bpe_hash(b) != get32(buf + 32)) {
            imb_errf(err, errn, "%s: checksum: merge table does not match its crc32", path);
            st = IMB_SHARD_CORRUPT;
        }
    }
    free(buf);
    if (st != IMB_SHARD_OK) imb_bpe_free(b);
    else *out = b;
    return st;
}
