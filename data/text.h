/* Text-classification corpora read from their real layouts (AG-News CSV, aclImdb folders) and the
 * normalisation every text goes through (utf8proc NFKC + case folding). */
#ifndef IMB_TEXT_H
#define IMB_TEXT_H
#include <stddef.h>
#include <stdint.h>

/* Bumped whenever the normalisation or a reader's decoding rules change (folded into the
 * fingerprints of tokenizers and text shards, so caches built by older rules are rebuilt). */
#define IMB_TEXT_NORM_VERSION 1

typedef struct imb_text_list {
    int n;
    char **texts;          /* n normalised UTF-8 strings (see imb_text_normalize) */
    int32_t *labels;       /* n labels in [0, nclasses) */
    int nclasses;
    char **class_names;    /* nclasses names, index = label */
} imb_text_list;

void imb_text_list_free(imb_text_list *l);

/* A text task's reader (the task table's kind-specific reader data). split: "train" or "test"
 * ("val" is accepted for "test": neither corpus has a separate validation split). */
typedef struct imb_text_reader {
    const char *name;
    /* Cheap: folds the path, size and mtime of every file the split is read from (and the
     * normalisation version) into *fp, without reading them. */
    int (*fingerprint)(const char *root, const char *split, uint64_t *fp, char *err, size_t errn);
    /* Reads and normalises every sample of the split. Errors: "<file>:<line>: <field>: <what>". */
    int (*read)(const char *root, const char *split, imb_text_list *out, char *err, size_t errn);
} imb_text_reader;

/* AG-News (Zhang et al. 2015, ag_news_csv): <root>/{train,test}.csv and <root>/classes.txt.
 * CSV exactly as shipped: no header, 3 fields "class","title","description", RFC 4180 quoting
 * (fields may be quoted, "" is a quote inside a quoted field, a quoted field may hold commas
 * and raw line breaks; a record ends at LF or CRLF; blank lines are skipped; a UTF-8 BOM at
 * the start is skipped). class is 1..N with N the number of non-empty lines of classes.txt.
 * Field decoding, in this order:
 *  - the raw bytes must be valid UTF-8, else an error naming file, line, field and byte;
 *  - the two characters \n become a line break; every other backslash is kept as is (the
 *    corpus never escapes backslashes, so "\\n" is a literal backslash before a break);
 *  - HTML character references are decoded: &#N; and &#xH; and the bare #N; form AG-News
 *    has (its '&' was lost: "it#39;s"), plus &amp; &lt; &gt; &quot; &apos;. A reference to a
 *    control character, surrogate or value above U+10FFFF stays as written. One left-to-right
 *    pass: what a reference decodes to is not decoded again ("&amp;#39;" gives "&#39;"); the
 *    bare named forms ("quot;") are left as they are (too easily part of real text);
 *  - text = title + " " + description, then imb_text_normalize; an empty result is an error
 *    (an empty title or an empty description alone is fine). */
extern const imb_text_reader imb_text_agnews;
/* aclImdb (Maas et al. 2011): <root>/{train,test}/{neg,pos}/<id>_<rating>.txt, labels neg = 0,
 * pos = 1; unsup/ and every other file beside neg/ and pos/ are ignored. Inside neg/ and pos/
 * every entry must be such a file (an empty file, a bad name or a rating outside 1..4 for neg,
 * 7..10 for pos is an error). Samples: neg then pos, each in ascending (id, rating) order.
 * The "<br />" line breaks of the reviews (any case, "<br>", "<br/>" too) become spaces; the
 * file must be valid UTF-8 (error names file, line and byte). Then imb_text_normalize (a review
 * with no text left is an error). */
extern const imb_text_reader imb_text_imdb;

/* Normalises UTF-8 text: NFKC with Unicode case folding and default-ignorable code points
 * removed (utf8proc, as utf8proc_NFKC_Casefold but with an explicit length, so a NUL is data),
 * then every run of white space (Unicode Zs/Zl/Zp and ASCII \t\n\v\f\r, U+0085) becomes one
 * space, other control characters (Cc) are dropped, and leading and trailing space removed.
 * Idempotent. *out is malloc'd and NUL-terminated. Returns 0, or -1 with why set on invalid
 * UTF-8 ("invalid UTF-8 at byte N") or when out of memory. */
int imb_text_normalize(const char *s, size_t n, char **out, char *why, size_t whyn);
/* Byte offset of the first invalid UTF-8 sequence in s[0..n), or -1 when s is valid. */
long imb_text_utf8_invalid_at(const char *s, size_t n);
/* AG-News field decoding in place (the \n escape and HTML references above); returns the new
 * length; s is NUL-terminated again. The result is never longer than the input. */
size_t imb_text_unescape_agnews(char *s, size_t n);
#endif
