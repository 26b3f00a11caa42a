/* CTC decoders: best path and prefix beam search (prefixes kept in a trie, log space). */
#include "ctc_decode.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int imb_ctc_greedy(const float *scores, int T, int V, int blank, int32_t *out) {
    int n = 0, prev = -1;
    for (int t = 0; t < T; t++) {
        const float *row = scores + (int64_t)t * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        if (best != blank && best != prev) out[n++] = best;
        prev = best;
    }
    return n;
}

static double lse2(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

/* A trie of prefixes: node 0 is the empty prefix; (parent, sym) -> child through an open
 * addressing table. Only prefixes that made it into a beam become nodes. */
typedef struct {
    int32_t *parent, *sym, *len;
    int n, cap;
    int32_t *table;   /* node index or -1; size tcap, a power of two */
    int tcap;
} trie;

static uint32_t slot_of(int32_t parent, int32_t sym, int tcap) {
    uint64_t h = ((uint64_t)(uint32_t)parent << 32 | (uint32_t)sym) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32) & (uint32_t)(tcap - 1);
}

static int trie_find(const trie *tr, int32_t parent, int32_t sym) {
    for (uint32_t i = slot_of(parent, sym, tr->tcap);; i = (i + 1) & (uint32_t)(tr->tcap - 1)) {
        int32_t k = tr->table[i];
        if (k < 0) return -1;
        if (tr->parent[k] == parent && tr->sym[k] == sym) return k;
    }
}

/* a realloc that keeps the old buffer on failure */
static int grow(int32_t **a, size_t n) {
    int32_t *g = realloc(*a, sizeof *g * n);
    if (!g) return -1;
    *a = g;
    return 0;
}

static int trie_add(trie *tr, int32_t parent, int32_t sym) {
    if (tr->n == tr->cap) {
        size_t n = (size_t)tr->cap * 2;
        if (grow(&tr->parent, n) || grow(&tr->sym, n) || grow(&tr->len, n)) return -1;
        tr->cap *= 2;
    }
    if (2 * (tr->n + 1) > tr->tcap) {   /* keep the table at most half full */
        int tcap = tr->tcap * 2;
        int32_t *t = malloc(sizeof *t * (size_t)tcap);
        if (!t) return -1;
        for (int i = 0; i < tcap; i++) t[i] = -1;
        for (int k = 1; k < tr->n; k++) {
            uint32_t i = slot_of(tr->parent[k], tr->sym[k], tcap);
            while (t[i] >= 0) i = (i + 1) & (uint32_t)(tcap - 1);
            t[i] = k;
        }
        free(tr->table);
        tr->table = t;
        tr->tcap = tcap;
    }
    int k = tr->n++;
    tr->parent[k] = parent;
    tr->sym[k] = sym;
    tr->len[k] = tr->len[parent] + 1;
    uint32_t i = slot_of(parent, sym, tr->tcap);
    while (tr->table[i] >= 0) i = (i + 1) & (uint32_t)(tr->tcap - 1);
    tr->table[i] = k;
    return k;
}

/* A candidate prefix of the next beam: an existing node, or a new one (parent + sym) */
typedef struct {
    int node, parent, sym, order;
    double pb, pnb;   /* log p of the paths ending in blank / in the last symbol */
} cand;

static double score(const cand *c) { return lse2(c->pb, c->pnb); }

static int by_score(const void *a, const void *b) {
    const cand *x = a, *y = b;
    double sx = score(x), sy = score(y);
    if (sx != sy) return sx > sy ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

typedef struct {
    cand *c;
    int n;
    int *slot_of_node;    /* [trie nodes] candidate index this frame, or -1 */
    int nslots;
} cands;

/* the candidate for (node) or for the new prefix (parent, sym); NULL when out of memory */
static cand *get(cands *cs, const trie *tr, int parent, int sym) {
    int node = sym < 0 ? parent : trie_find(tr, parent, sym);
    if (node >= 0) {
        if (node >= cs->nslots) {
            int n = tr->n > 2 * cs->nslots ? tr->n : 2 * cs->nslots;
            int *s = realloc(cs->slot_of_node, sizeof *s * (size_t)n);
            if (!s) return NULL;
            for (int i = cs->nslots; i < n; i++) s[i] = -1;
            cs->slot_of_node = s;
            cs->nslots = n;
        }
        if (cs->slot_of_node[node] >= 0) return &cs->c[cs->slot_of_node[node]];
        cs->slot_of_node[node] = cs->n;
    }
    /* a new (parent, sym) is proposed once per frame: only its parent's beam entry extends by sym */
    cand *c = &cs->c[cs->n];
    *c = (cand){ node, parent, sym, cs->n, -INFINITY, -INFINITY };
    cs->n++;
    return c;
}

int imb_ctc_prefix_beam(const float *scores, int T, int V, int blank, int beam, int32_t *out, double *logp) {
    if (T < 1 || V < 1 || beam < 1 || blank < 0 || blank >= V) return -1;
    int rc = -1, nbeam = 1;
    trie tr = { 0 };
    cands cs = { 0 };
    tr.cap = 1024;
    tr.tcap = 2048;
    tr.parent = malloc(sizeof(int32_t) * (size_t)tr.cap);
    tr.sym = malloc(sizeof(int32_t) * (size_t)tr.cap);
    tr.len = malloc(sizeof(int32_t) * (size_t)tr.cap);
    tr.table = malloc(sizeof(int32_t) * (size_t)tr.tcap);
    cand *cur = malloc(sizeof *cur * (size_t)beam);
    double *lp = malloc(sizeof *lp * (size_t)V);
    cs.c = malloc(sizeof *cs.c * (size_t)beam * (size_t)(V + 1));
    if (!tr.parent || !tr.sym || !tr.len || !tr.table || !cur || !lp || !cs.c) goto done;
    for (int i = 0; i < tr.tcap; i++) tr.table[i] = -1;
    tr.n = 1;
    tr.parent[0] = -1;
    tr.sym[0] = -1;
    tr.len[0] = 0;
    cur[0] = (cand){ 0, -1, -1, 0, 0.0, -INFINITY };
    for (int t = 0; t < T; t++) {
        const float *row = scores + (int64_t)t * V;
        double mx = row[0], se = 0;
        for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        for (int v = 0; v < V; v++) se += exp((double)row[v] - mx);
        for (int v = 0; v < V; v++) lp[v] = (double)row[v] - mx - log(se);
        cs.n = 0;
        for (int i = 0; i < nbeam; i++) {
            const cand *b = &cur[i];
            int y = b->node, last = tr.sym[y];
            double tot = score(b);
            cand *c = get(&cs, &tr, y, -1);
            if (!c) goto done;
            c->pb = lse2(c->pb, tot + lp[blank]);
            if (last >= 0) c->pnb = lse2(c->pnb, b->pnb + lp[last]);   /* the last symbol held */
            for (int v = 0; v < V; v++) {
                if (v == blank) continue;
                cand *e = get(&cs, &tr, y, v);
                if (!e) goto done;
                /* a repeat of the last symbol starts a new one only after a blank */
                e->pnb = lse2(e->pnb, (v == last ? b->pb : tot) + lp[v]);
            }
        }
        for (int i = 0; i < cs.n; i++)
            if (cs.c[i].node >= 0) cs.slot_of_node[cs.c[i].node] = -1;
        qsort(cs.c, (size_t)cs.n, sizeof *cs.c, by_score);
        nbeam = cs.n < beam ? cs.n : beam;
        for (int i = 0; i < nbeam; i++) {
            cur[i] = cs.c[i];
            if (cur[i].node < 0 && (cur[i].node = trie_add(&tr, cur[i].parent, cur[i].sym)) < 0) goto done;
            cur[i].order = i;
        }
    }
    int best = cur[0].node, n = tr.len[best];
    for (int k = best, i = n - 1; k > 0; k = tr.parent[k], i--) out[i] = tr.sym[k];
    if (logp) *logp = score(&cur[0]);
    rc = n;
done:
    free(tr.parent); free(tr.sym); free(tr.len); free(tr.table);
    free(cur); free(lp); free(cs.c); free(cs.slot_of_node);
    return rc;
}
