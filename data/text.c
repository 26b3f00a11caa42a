/* Text normalisation through utf8proc, AG-News field decoding, text lists (see text.h). */
#include "text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

void imb_text_list_free(imb_text_list *l) {
    if (!l) return;
    for (int i = 0; l->texts && i < l->n; i++) free(l->texts[i]);
    for (int k = 0; l->class_names && k < l->nclasses; k++) free(l->class_names[k]);
    free(l->texts);
    free(l->labels);
    free(l->class_names);
    memset(l, 0, sizeof *l);
}

long imb_text_utf8_invalid_at(const char *s, size_t n) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { i++; continue; }   /* ASCII fast path */
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k < 1) return (long)i;
        i += (size_t)k;
    }
    return -1;
}

static int is_space(utf8proc_int32_t c) {
    if (c == ' ' || (c >= '\t' && c <= '\r') || c == 0x85) return 1;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

int imb_text_normalize(const char *s, size_t n, char **out, char *why, size_t whyn) {
    *out = NULL;
    long bad = imb_text_utf8_invalid_at(s, n);
    if (bad >= 0) {
        snprintf(why, whyn, "invalid UTF-8 at byte %ld", bad);
        return -1;
    }
    utf8proc_uint8_t *m = NULL;
    utf8proc_ssize_t len = 0;
    if (n) {
        len = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &m,
                           UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
        if (len < 0) {
            snprintf(why, whyn, "utf8proc: %s", utf8proc_errmsg(len));
            return -1;
        }
    }
    /* white space collapses, so the result is never longer than the mapped text */
    char *o = malloc((size_t)len + 1);
    if (!o) {
        free(m);
        snprintf(why, whyn, "out of memory");
        return -1;
    }
    size_t w = 0;
    int pending = 0;
    for (utf8proc_ssize_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(m + i, len - i, &c);
        if (k < 1) {   /* utf8proc's own output is valid; this would be a library bug */
            free(m);
            free(o);
            snprintf(why, whyn, "utf8proc produced invalid UTF-8");
            return -1;
        }
        if (is_space(c)) pending = w > 0;
        else if (utf8proc_category(c) != UTF8PROC_CATEGORY_CC) {
            if (pending) o[w++] = ' ';
            pending = 0;
            memcpy(o + w, m + i, (size_t)k);
            w += (size_t)k;
        }
        i += k;
    }
    o[w] = 0;
    free(m);
    *out = o;
    return 0;
}

/* A decoded reference's code point is kept only when it is a character one can print. */
static int printable_cp(long c) {
    return c >= 0x20 && c <= 0x10FFFF && !(c >= 0x7F && c <= 0x9F) && !(c >= 0xD800 && c <= 0xDFFF);
}

/* "#N;" / "#xH;" at s (s[0] == '#'): the code point and the reference's length, or 0. */
static size_t numeric_ref(const char *s, size_t n, long *cp) {
    size_t i = 1;
    int hex = i < n && (s[i] == 'x' || s[i] == 'X');
    if (hex) i++;
    long v = 0;
    size_t d0 = i;
    while (i < n && i - d0 < 8) {
        char c = s[i];
        int dv = c >= '0' && c <= '9' ? c - '0'
                 : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                 : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (dv < 0) break;
        v = v * (hex ? 16 : 10) + dv;
        i++;
    }
    if (i == d0 || i >= n || s[i] != ';' || !printable_cp(v)) return 0;
    *cp = v;
    return i + 1;
}

size_t imb_text_unescape_agnews(char *s, size_t n) {
    static const struct { const char *name; char c; } named[] = {
        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
    };
    size_t r = 0, w = 0;
    int after_amp = 0;   /* the previous reference decoded to '&': a bare "#N;" right after it is text */
    while (r < n) {
        char c = s[r];
        if (c == '\\' && r + 1 < n && s[r + 1] == 'n') {
            s[w++] = '\n';
            r += 2;
            after_amp = 0;
            continue;
        }
        long cp;
        size_t k = 0;
        if (c == '&' && r + 1 < n && s[r + 1] == '#') {
            k = numeric_ref(s + r + 1, n - r - 1, &cp);
            if (k) k++;
        } else if (c == '#' && !after_amp) {
            k = numeric_ref(s + r, n - r, &cp);
        } else if (c == '&') {
            for (size_t e = 0; e < sizeof named / sizeof *named && !k; e++) {
                size_t len = strlen(named[e].name);
                if (len <= n - r && !memcmp(s + r, named[e].name, len)) {
                    k = len;
                    cp = named[e].c;
                }
            }
        }
        if (k) {
            /* every reference is at least as long as the UTF-8 it stands for */
            w += (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)s + w);
            r += k;
            after_amp = cp == '&';
            continue;
        }
        s[w++] = c;
        r++;
        after_amp = 0;
    }
    s[w] = 0;
    return w;
}
