/* WER and CER as jiwer: its default transforms on code points, word ids, a Levenshtein DP. */
#include "wer.h"
#include <stdlib.h>
#include <string.h>

int64_t imb_edit_distance(const uint32_t *a, int64_t na, const uint32_t *b, int64_t nb) {
    if (na == 0 || nb == 0) return na + nb;
    int64_t *row = malloc(sizeof *row * (size_t)(nb + 1));
    if (!row) return -1;
    for (int64_t j = 0; j <= nb; j++) row[j] = j;
    for (int64_t i = 1; i <= na; i++) {
        int64_t diag = row[0];   /* D[i-1][j-1] */
        row[0] = i;
        for (int64_t j = 1; j <= nb; j++) {
            int64_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    int64_t d = row[nb];
    free(row);
    return d;
}

/* the code points of Python's str.isspace() (and of re's \s), listed from CPython 3.11 */
static int is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* UTF-8 -> code points; an invalid byte becomes 0xDC00 + byte (Python's surrogateescape), so
 * it is one character equal only to the same byte. out needs strlen(s) slots. */
static int64_t decode(const char *s, uint32_t *out) {
    const unsigned char *p = (const unsigned char *)s;
    int64_t n = 0;
    while (*p) {
        uint32_t c = *p;
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        int ok = len > 0;
        for (int i = 1; ok && i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) ok = 0;
            else cp = cp << 6 | (p[i] & 0x3F);
        }
        /* overlong forms, surrogates and values past U+10FFFF are invalid, as in Python */
        static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (ok && (cp < min[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)) ok = 0;
        if (!ok) { out[n++] = 0xDC00 + c; p++; continue; }
        out[n++] = cp;
        p += len;
    }
    return n;
}

/* strip both ends (str.strip()) in place: returns the new start and updates *n */
static uint32_t *strip(uint32_t *c, int64_t *n) {
    while (*n && is_space(c[*n - 1])) (*n)--;
    while (*n && is_space(c[0])) { c++; (*n)--; }
    return c;
}

/* A word list: text code points [start[i], start[i] + len[i]) of buffer cp. */
typedef struct { uint32_t *cp; int64_t *start, *len; int64_t n; } words;

/* jiwer's wer_default: RemoveMultipleSpaces (re.sub(r"\s\s+", " ")), Strip, split(" ") without
 * empty strings. Collapsing first means a run of whitespace becomes one space even when it is
 * all tabs; a single tab stays. */
static int split_words(const char *s, words *w) {
    size_t L = strlen(s);
    w->cp = malloc(sizeof *w->cp * (L + 1));
    w->start = malloc(sizeof *w->start * (L + 1));
    w->len = malloc(sizeof *w->len * (L + 1));
    w->n = 0;
    if (!w->cp || !w->start || !w->len) return -1;
    int64_t n = decode(s, w->cp), m = 0;
    for (int64_t i = 0; i < n;) {
        if (is_space(w->cp[i]) && i + 1 < n && is_space(w->cp[i + 1])) {
            while (i < n && is_space(w->cp[i])) i++;
            w->cp[m++] = ' ';
        } else {
            w->cp[m++] = w->cp[i++];
        }
    }
    uint32_t *c = strip(w->cp, &m);
    for (int64_t i = 0; i < m;) {
        while (i < m && c[i] == ' ') i++;
        if (i == m) break;
        int64_t j = i;
        while (j < m && c[j] != ' ') j++;
        w->start[w->n] = (c - w->cp) + i;
        w->len[w->n++] = j - i;
        i = j;
    }
    return 0;
}

static void words_free(words *w) { free(w->cp); free(w->start); free(w->len); }

static int same_word(const words *a, int64_t i, const words *b, int64_t j) {
    return a->len[i] == b->len[j] &&
           !memcmp(a->cp + a->start[i], b->cp + b->start[j], sizeof(uint32_t) * (size_t)a->len[i]);
}

/* words -> ids shared by the pair (as jiwer's word2int), so the DP compares integers */
static void word_ids(const words *r, const words *h, uint32_t *rid, uint32_t *hid) {
    int64_t nr = r->n, total = r->n + h->n;
    for (int64_t k = 0; k < total; k++) {
        const words *w = k < nr ? r : h;
        int64_t i = k < nr ? k : k - nr;
        uint32_t id = (uint32_t)k;
        for (int64_t q = 0; q < k; q++) {   /* the first earlier occurrence names the word */
            const words *wq = q < nr ? r : h;
            if (same_word(w, i, wq, q < nr ? q : q - nr)) { id = (uint32_t)q; break; }
        }
        (k < nr ? rid : hid)[i] = id;
    }
}

int imb_wer_add(imb_wer *acc, const char *ref, const char *hyp) {
    words r = { 0 }, h = { 0 };
    uint32_t *ids = NULL, *rc = NULL, *hc = NULL;
    int rc_ = -1;
    if (split_words(ref, &r) || split_words(hyp, &h)) goto done;
    ids = malloc(sizeof *ids * (size_t)(r.n + h.n + 1));
    rc = malloc(sizeof *rc * (strlen(ref) + 1));
    hc = malloc(sizeof *hc * (strlen(hyp) + 1));
    if (!ids || !rc || !hc) goto done;
    word_ids(&r, &h, ids, ids + r.n);
    int64_t we = imb_edit_distance(ids, r.n, ids + r.n, h.n);
    int64_t nrc = decode(ref, rc), nhc = decode(hyp, hc);
    uint32_t *rs = strip(rc, &nrc), *hs = strip(hc, &nhc);
    int64_t ce = imb_edit_distance(rs, nrc, hs, nhc);
    if (we < 0 || ce < 0) goto done;
    acc->word_edits += we;
    acc->ref_words += r.n;
    acc->hyp_words += h.n;
    acc->char_edits += ce;
    acc->ref_chars += nrc;
    acc->sentences++;
    rc_ = 0;
done:
    words_free(&r);
    words_free(&h);
    free(ids); free(rc); free(hc);
    return rc_;
}

double imb_wer_value(const imb_wer *acc) {
    return acc->ref_words ? (double)acc->word_edits / (double)acc->ref_words : (double)acc->word_edits;
}

double imb_cer_value(const imb_wer *acc) {
    return acc->ref_chars ? (double)acc->char_edits / (double)acc->ref_chars : (double)acc->char_edits;
}
