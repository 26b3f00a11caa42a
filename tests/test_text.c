/* Text data tests: normalisation, AG-News CSV and aclImdb edge cases, the BPE tokenizer (round
 * trip, determinism, its file), text shards, the padding loader and the prepare cache. */
#include "datatest.h"
#include "bpe.h"
#include "checkrun.h"
#include "shard.h"
#include "synth.h"
#include "text.h"
#include "textprep.h"
#include "textshard.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- normalisation */

static char *norm(const char *s) {
    char *o, why[128] = "";
    ck_assert_msg(imb_text_normalize(s, strlen(s), &o, why, sizeof why) == 0, "%s: %s", s, why);
    return o;
}

#define NORM_IS(in, want)                                                          \
    do {                                                                           \
        char *o_ = norm(in);                                                       \
        ck_assert_msg(!strcmp(o_, want), "normalize(\"%s\") = \"%s\", want \"%s\"", in, o_, want); \
        free(o_);                                                                  \
    } while (0)

START_TEST(normalize_nfkc_casefold) {
    NORM_IS("Hello World", "hello world");
    NORM_IS("Stra\xc3\x9f" "e", "strasse");                      /* ß folds to ss */
    NORM_IS("\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3", "abc");      /* fullwidth ABC (NFKC) */
    NORM_IS("\xef\xac\x81le", "file");                          /* the fi ligature */
    NORM_IS("cafe\xcc\x81", "caf\xc3\xa9");                     /* e + combining acute composes */
    NORM_IS("\xce\xa3\xce\x99\xce\xa3", "\xcf\x83\xce\xb9\xcf\x83");   /* Greek capitals fold */
    NORM_IS("x\xc2\xb2", "x2");                                 /* superscript two */
}
END_TEST

START_TEST(normalize_space_and_controls) {
    NORM_IS("  a \t\n\r b  ", "a b");
    NORM_IS("a\xc2\xa0" "b\xe2\x80\x83" "c", "a b c");           /* no-break and em spaces */
    NORM_IS("a\x07" "b\x01", "ab");                             /* BEL and SOH dropped */
    NORM_IS("zero\xe2\x80\x8bwidth", "zerowidth");              /* default ignorable */
    NORM_IS("", "");
    NORM_IS(" \n\t ", "");
    /* a NUL inside the text is data (dropped as a control), not the end */
    char *o, why[64];
    ck_assert_int_eq(imb_text_normalize("a\0b", 3, &o, why, sizeof why), 0);
    ck_assert_str_eq(o, "ab");
    free(o);
    /* idempotent */
    const char *samples[] = { "Ünïcödé  Text\xef\xac\x81", "ＭＩＸ  ed\tCase", "plain" };
    for (int i = 0; i < 3; i++) {
        char *a = norm(samples[i]), *b = norm(a);
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
    }
}
END_TEST

START_TEST(normalize_rejects_invalid_utf8) {
    static const struct { const char *s; long at; } bad[] = {
        { "ok\xff", 2 }, { "\xc3", 0 }, { "ab\xc3(", 2 }, { "\xed\xa0\x80", 0 } /* surrogate */,
        { "a\xf8\x88\x80\x80\x80", 1 } /* 5-byte form */, { "\xc0\xaf", 0 } /* overlong */,
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *o = (char *)1, why[128] = "", want[64];
        ck_assert_int_eq(imb_text_utf8_invalid_at(bad[i].s, strlen(bad[i].s)), bad[i].at);
        ck_assert_int_eq(imb_text_normalize(bad[i].s, strlen(bad[i].s), &o, why, sizeof why), -1);
        ck_assert_ptr_null(o);
        snprintf(want, sizeof want, "invalid UTF-8 at byte %ld", bad[i].at);
        dt_err_has(why, want, NULL);
    }
    ck_assert_int_eq(imb_text_utf8_invalid_at("\xe2\x82\xac ok", 6), -1);
}
END_TEST

static void unescape_is(const char *in, const char *want) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", in);
    size_t n = imb_text_unescape_agnews(buf, strlen(buf));
    ck_assert_msg(n == strlen(want) && !strcmp(buf, want), "unescape(\"%s\") = \"%s\", want \"%s\"", in, buf, want);
}

START_TEST(agnews_unescape) {
    unescape_is("a\\nb", "a\nb");
    unescape_is("end\\\\nnext", "end\\\nnext");   /* a literal backslash before a break */
    unescape_is("50\\$ and \\b", "50\\$ and \\b");  /* other backslashes stay */
    unescape_is("it#39;s", "it's");
    unescape_is("it&#39;s &#x41;&#X42;", "it's AB");
    unescape_is("AT&amp;T &lt;b&gt; &quot;q&quot; &apos;", "AT&T <b> \"q\" '");
    unescape_is("&amp;#39;", "&#39;");            /* decoded once */
    unescape_is("#39;#39;", "''");
    unescape_is("#8364; &#233;", "\xe2\x82\xac \xc3\xa9");
    unescape_is("#1; #31; &#0; #55296; #99999999; #1114112;", "#1; #31; &#0; #55296; #99999999; #1114112;");
    unescape_is("quot;x quot; #39 #; &#; &bogus;", "quot;x quot; #39 #; &#; &bogus;");
    unescape_is("", "");
}
END_TEST

/* ---------------------------------------------------------------- AG-News */

static char *ag_dir(const char *train, const char *test) {
    char *root = dt_tmpdir(), p[PATHN];
    dt_write(dt_path(p, "%s/classes.txt", root), "World\nSports\nBusiness\nSci/Tech\n", 31);
    if (train) dt_write(dt_path(p, "%s/train.csv", root), train, strlen(train));
    if (test) dt_write(dt_path(p, "%s/test.csv", root), test, strlen(test));
    return root;
}

static imb_text_list ag_ok(const char *csv) {
    char *root = ag_dir(csv, NULL), err[1024] = "";
    imb_text_list l;
    int rc = imb_text_agnews.read(root, "train", &l, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    dt_rm_tree(root);
    free(root);
    return l;
}

/* reading must fail with an empty list and an error mentioning every given string */
static void ag_fails(const char *csv, ...) {
    char *root = ag_dir(csv, NULL), err[1024] = "", path[PATHN];
    imb_text_list l;
    ck_assert_int_eq(imb_text_agnews.read(root, "train", &l, err, sizeof err), -1);
    ck_assert(l.n == 0 && !l.texts && !l.labels && !l.class_names);
    dt_err_has(err, dt_path(path, "%s/train.csv", root), NULL);
    va_list ap;
    va_start(ap, csv);
    for (const char *s; (s = va_arg(ap, const char *));)
        ck_assert_msg(strstr(err, s), "error \"%s\" does not mention \"%s\"", err, s);
    va_end(ap);
    dt_rm_tree(root);
    free(root);
}

START_TEST(agnews_csv_quoting) {
    const char *csv =
        "\xef\xbb\xbf\"3\",\"Wall St. Bears Claw Back\",\"Reuters - Short-sellers, Wall Street's \"\"dwindling\"\" band\"\n"
        "\"2\",\"Title, with comma\",\"\"\n"                       /* empty description */
        "\"1\",\"\",\"only a description\"\r\n"                   /* empty title, CRLF */
        "\n"                                                      /* blank line */
        "4,unquoted title,unquoted description\n"
        "\"4\",\"multi\nline\",\"raw break inside quotes\\nand an escaped one\"\n"
        "\"1\",\"It#39;s AT&amp;T\",\"50\\$ ÜBER\"";             /* no newline at the end */
    imb_text_list l = ag_ok(csv);
    ck_assert_int_eq(l.n, 6);
    ck_assert_int_eq(l.nclasses, 4);
    ck_assert_str_eq(l.class_names[3], "Sci/Tech");
    const int32_t labels[6] = { 2, 1, 0, 3, 3, 0 };
    const char *texts[6] = {
        "wall st. bears claw back reuters - short-sellers, wall street's \"dwindling\" band",
        "title, with comma",
        "only a description",
        "unquoted title unquoted description",
        "multi line raw break inside quotes and an escaped one",
        "it's at&t 50\\$ \xc3\xbc" "ber",
    };
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(l.labels[i], labels[i]);
        ck_assert_msg(!strcmp(l.texts[i], texts[i]), "row %d: \"%s\"", i, l.texts[i]);
    }
    imb_text_list_free(&l);
}
END_TEST

START_TEST(agnews_csv_errors) {
    ag_fails("\"1\",\"a\",\"b\"\n\"2\",\"only two\"\n", ":2:", "description", "expected 3 fields", NULL);
    ag_fails("\"1\",\"a\",\"b\",\"extra\"\n", ":1:", "got 4", NULL);
    ag_fails("\"1\",\"a\",\"b\"\n\"x\",\"a\",\"b\"\n", ":2:", "class", "'x'", NULL);
    ag_fails("\"1\",\"a\",\"b\"\n\"\",\"a\",\"b\"\n", ":2:", "class", NULL);
    ag_fails("\"0\",\"a\",\"b\"\n", ":1:", "class", "1..4", NULL);
    ag_fails("\"5\",\"a\",\"b\"\n", ":1:", "class", "'5'", NULL);
    ag_fails("\" 1\",\"a\",\"b\"\n", ":1:", "class", NULL);
    ag_fails("\"2.5\",\"a\",\"b\"\n", ":1:", "class", NULL);
    /* line numbers count the raw breaks inside quoted fields */
    ag_fails("\"1\",\"a\nb\nc\",\"d\"\n\"2\",\"a\",\"b\"x\n", ":4:", "description", "after the closing quote", NULL);
    ag_fails("\"1\",\"a\",\"never closed\n2,a,b\n", ":1:", "description", "never closed", NULL);
    ag_fails("1,a \"quoted\" word,b\n", ":1:", "title", "quote inside an unquoted field", NULL);
    ag_fails("\"1\",\"a\",\"b\"\n\"3\",\"bad \xc3\x28 byte\",\"d\"\n", ":2:", "title", "invalid UTF-8 at byte 4", NULL);
    ag_fails("\"1\",\"a\",\"b\xff\"\n", ":1:", "description", "invalid UTF-8", NULL);
    ag_fails("\"1\",\"\",\"  \"\n", ":1:", "empty", NULL);
    ag_fails("\n\n", "no records", NULL);
    ag_fails("\"\"\n", ":1:", "expected 3 fields", NULL);
}
END_TEST

START_TEST(agnews_layout_errors) {
    char err[1024], p[PATHN];
    imb_text_list l;
    char *root = ag_dir(NULL, "\"1\",\"a\",\"b\"\n");
    ck_assert_int_eq(imb_text_agnews.read(root, "train", &l, err, sizeof err), -1);
    dt_err_has(err, dt_path(p, "%s/train.csv", root), NULL);
    ck_assert_int_eq(imb_text_agnews.read(root, "val", &l, err, sizeof err), 0);   /* val = test.csv */
    ck_assert_int_eq(l.n, 1);
    imb_text_list_free(&l);
    ck_assert_int_eq(imb_text_agnews.read(root, "dev", &l, err, sizeof err), -1);
    dt_err_has(err, "unknown split 'dev'", NULL);
    dt_write(dt_path(p, "%s/classes.txt", root), "only\n", 5);
    ck_assert_int_eq(imb_text_agnews.read(root, "test", &l, err, sizeof err), -1);
    dt_err_has(err, "classes.txt", "at least 2", NULL);
    unlink(p);
    ck_assert_int_eq(imb_text_agnews.read(root, "test", &l, err, sizeof err), -1);
    dt_err_has(err, "classes.txt", NULL);
    uint64_t fp;
    ck_assert_int_eq(imb_text_agnews.fingerprint(root, "test", &fp, err, sizeof err), -1);
    dt_err_has(err, "classes.txt", NULL);
    dt_rm_tree(root);
    free(root);
    ck_assert_int_eq(imb_text_agnews.read("/nonexistent/agnews", "train", &l, err, sizeof err), -1);
    dt_err_has(err, "/nonexistent/agnews", NULL);
}
END_TEST

START_TEST(agnews_synth_and_fingerprint) {
    char *root = dt_synth("agnews", 12, 5), err[1024] = "", p[PATHN];
    imb_text_list tr, te;
    ck_assert_msg(imb_text_agnews.read(root, "train", &tr, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(imb_text_agnews.read(root, "test", &te, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(tr.n, 48);
    ck_assert_int_eq(te.n, 20);
    int cnt[4] = { 0 };
    for (int i = 0; i < tr.n; i++) cnt[tr.labels[i]]++;
    for (int k = 0; k < 4; k++) ck_assert_int_eq(cnt[k], 12);
    for (int i = 0; i < tr.n; i++)   /* the quirks were decoded and folded */
        ck_assert_msg(!strstr(tr.texts[i], "#39;") && !strstr(tr.texts[i], "&amp;") && !strstr(tr.texts[i], "\\n") &&
                          !strstr(tr.texts[i], "Pr"),
                      "%s", tr.texts[i]);
    imb_text_list_free(&tr);
    imb_text_list_free(&te);
    uint64_t a, b, c;
    ck_assert_int_eq(imb_text_agnews.fingerprint(root, "train", &a, err, sizeof err), 0);
    ck_assert_int_eq(imb_text_agnews.fingerprint(root, "train", &b, err, sizeof err), 0);
    ck_assert(a == b);
    ck_assert_int_eq(imb_text_agnews.fingerprint(root, "test", &c, err, sizeof err), 0);
    ck_assert(a != c);
    FILE *f = fopen(dt_path(p, "%s/train.csv", root), "ab");
    fputs("\"1\",\"one more\",\"row\"\n", f);
    fclose(f);
    ck_assert_int_eq(imb_text_agnews.fingerprint(root, "train", &b, err, sizeof err), 0);
    ck_assert(a != b);
    dt_rm_tree(root);
    free(root);
}
END_TEST

/* ---------------------------------------------------------------- aclImdb */

static void put_review(const char *root, const char *rel, const char *text) {
    char p[PATHN];
    dt_write(dt_path(p, "%s/%s", root, rel), text, strlen(text));
}

static char *imdb_tree(void) {
    char *root = dt_tmpdir(), p[PATHN];
    const char *dirs[] = { "train", "train/neg", "train/pos", "train/unsup", "test", "test/neg", "test/pos" };
    for (int i = 0; i < 7; i++) ck_assert_int_eq(mkdir(dt_path(p, "%s/%s", root, dirs[i]), 0755), 0);
    put_review(root, "train/neg/10_2.txt", "Dull.<br /><br />Really DULL.");
    put_review(root, "train/neg/2_4.txt", "Meh<BR>meh<br/>meh");
    put_review(root, "train/pos/0_10.txt", "Great\xc2\xa0" "film!");
    put_review(root, "train/unsup/0_0.txt", "not read");
    put_review(root, "train/labeledBow.feat", "0:1\n");
    put_review(root, "test/neg/0_1.txt", "bad");
    put_review(root, "test/pos/0_7.txt", "good");
    return root;
}

static void imdb_fails(const char *root, const char *split, ...) {
    char err[1024] = "";
    imb_text_list l;
    ck_assert_int_eq(imb_text_imdb.read(root, split, &l, err, sizeof err), -1);
    ck_assert(l.n == 0 && !l.texts && !l.labels);
    va_list ap;
    va_start(ap, split);
    for (const char *s; (s = va_arg(ap, const char *));)
        ck_assert_msg(strstr(err, s), "error \"%s\" does not mention \"%s\"", err, s);
    va_end(ap);
}

START_TEST(imdb_folders) {
    char *root = imdb_tree(), err[1024] = "";
    imb_text_list l;
    ck_assert_msg(imb_text_imdb.read(root, "train", &l, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(l.n, 3);
    ck_assert_int_eq(l.nclasses, 2);
    ck_assert_str_eq(l.class_names[0], "neg");
    ck_assert_str_eq(l.class_names[1], "pos");
    /* neg first, ids in numeric order (2 before 10), <br> variants are spaces */
    ck_assert_str_eq(l.texts[0], "meh meh meh");
    ck_assert_str_eq(l.texts[1], "dull. really dull.");
    ck_assert_str_eq(l.texts[2], "great film!");
    ck_assert_int_eq(l.labels[0], 0);
    ck_assert_int_eq(l.labels[1], 0);
    ck_assert_int_eq(l.labels[2], 1);
    imb_text_list_free(&l);
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(imdb_errors) {
    char p[PATHN];
    char *root = imdb_tree();
    put_review(root, "train/pos/3_8.txt", "fine\nline two \xe0\x80 bad");
    imdb_fails(root, "train", "train/pos/3_8.txt:2:", "invalid UTF-8", NULL);
    unlink(dt_path(p, "%s/train/pos/3_8.txt", root));
    put_review(root, "train/neg/4_8.txt", "rating of a positive review");
    imdb_fails(root, "train", "train/neg/4_8.txt", "1..4", NULL);
    unlink(dt_path(p, "%s/train/neg/4_8.txt", root));
    put_review(root, "train/pos/review.txt", "x");
    imdb_fails(root, "train", "train/pos/review.txt", "<id>_<rating>.txt", NULL);
    unlink(dt_path(p, "%s/train/pos/review.txt", root));
    put_review(root, "train/pos/5_9.txt", "");
    imdb_fails(root, "train", "train/pos/5_9.txt", "empty", NULL);
    unlink(dt_path(p, "%s/train/pos/5_9.txt", root));
    put_review(root, "train/pos/6_9.txt", " <br /> \t ");
    imdb_fails(root, "train", "train/pos/6_9.txt", "no text", NULL);
    unlink(dt_path(p, "%s/train/pos/6_9.txt", root));
    ck_assert_int_eq(mkdir(dt_path(p, "%s/train/pos/7_9.txt", root), 0755), 0);
    imdb_fails(root, "train", "train/pos/7_9.txt", "not a review file", NULL);
    rmdir(p);
    unlink(dt_path(p, "%s/test/pos/0_7.txt", root));
    imdb_fails(root, "test", "test/pos", "no reviews", NULL);
    rmdir(dt_path(p, "%s/test/pos", root));
    imdb_fails(root, "test", "test/pos", "missing folder", NULL);
    imdb_fails(root, "unsup", "unknown split", NULL);
    imb_text_list l;
    char err[512];
    ck_assert_int_eq(imb_text_imdb.read(root, "train", &l, err, sizeof err), 0);   /* back to valid */
    imb_text_list_free(&l);
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(imdb_synth) {
    char *root = dt_synth("imdb", 9, 4), err[1024] = "";
    imb_text_list tr, te;
    ck_assert_msg(imb_text_imdb.read(root, "train", &tr, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(imb_text_imdb.read(root, "test", &te, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(tr.n, 18);
    ck_assert_int_eq(te.n, 8);
    for (int i = 0; i < tr.n; i++) {
        ck_assert_int_eq(tr.labels[i], i >= 9);
        ck_assert_msg(!strstr(tr.texts[i], "<br") && !strstr(tr.texts[i], "  "), "%s", tr.texts[i]);
    }
    uint64_t a, b;
    ck_assert_int_eq(imb_text_imdb.fingerprint(root, "train", &a, err, sizeof err), 0);
    char p[PATHN];
    put_review(root, "train/pos/100_7.txt", "one more");
    ck_assert_int_eq(imb_text_imdb.fingerprint(root, "train", &b, err, sizeof err), 0);
    ck_assert(a != b);
    unlink(dt_path(p, "%s/train/pos/100_7.txt", root));
    imb_text_list_free(&tr);
    imb_text_list_free(&te);
    dt_rm_tree(root);
    free(root);
}
END_TEST

/* ---------------------------------------------------------------- BPE */

static char *corpus[] = {
    "the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "cats and dogs and cats",
    "the the the theme", "1999 and 2000, 12345!", "caf\xc3\xa9 caf\xc3\xa9 na\xc3\xafve", "...!!! ?? --",
};
enum { NCORPUS = sizeof corpus / sizeof *corpus };

static void roundtrip(imb_bpe *b, const char *s, size_t n) {
    imb_ids ids = { 0 };
    ck_assert_int_eq(imb_bpe_encode(b, s, n, &ids), 0);
    for (size_t i = 0; i < ids.n; i++) ck_assert(ids.v[i] >= 1 && ids.v[i] < imb_bpe_vocab(b));
    size_t len;
    char *d = imb_bpe_decode(b, ids.v, ids.n, &len);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(len, n);
    ck_assert(!memcmp(d, s, n));
    free(d);
    imb_ids_free(&ids);
}

START_TEST(bpe_roundtrip) {
    char err[256];
    imb_bpe *b = imb_bpe_train(corpus, NCORPUS, 300, err, sizeof err);
    ck_assert_ptr_nonnull(b);
    ck_assert(imb_bpe_vocab(b) > 257 && imb_bpe_vocab(b) <= 300);
    for (int i = 0; i < NCORPUS; i++) roundtrip(b, corpus[i], strlen(corpus[i]));
    /* any bytes at all, invalid UTF-8 and NULs included: the byte fallback */
    uint8_t raw[512];
    for (int i = 0; i < 512; i++) raw[i] = (uint8_t)(i * 167 + 13);
    roundtrip(b, (const char *)raw, sizeof raw);
    roundtrip(b, "", 0);
    roundtrip(b, "  double  spaces ", 17);
    /* a 100000-letter "word": cut into bounded pieces, so encoding stays linear */
    char *longword = malloc(100000);
    for (int i = 0; i < 100000; i++) longword[i] = "the cat"[i % 3];
    roundtrip(b, longword, 100000);
    free(longword);
    /* learned merges compress the training text */
    imb_ids ids = { 0 };
    ck_assert_int_eq(imb_bpe_encode(b, corpus[0], strlen(corpus[0]), &ids), 0);
    ck_assert_uint_lt(ids.n, strlen(corpus[0]) / 2);
    /* encode is deterministic and the cache gives what a fresh encode gives */
    imb_ids again = { 0 };
    ck_assert_int_eq(imb_bpe_encode(b, corpus[0], strlen(corpus[0]), &again), 0);
    ck_assert_uint_eq(again.n, ids.n);
    ck_assert(!memcmp(again.v, ids.v, ids.n * sizeof *ids.v));
    /* padding ids are skipped by decode; unknown ids are refused */
    int32_t with_pad[3] = { IMB_BPE_PAD, 1 + 'x', IMB_BPE_PAD }, bad[1] = { 100000 };
    size_t len;
    char *d = imb_bpe_decode(b, with_pad, 3, &len);
    ck_assert_str_eq(d, "x");
    free(d);
    ck_assert_ptr_null(imb_bpe_decode(b, bad, 1, &len));
    int32_t neg[1] = { -3 };
    ck_assert_ptr_null(imb_bpe_decode(b, neg, 1, &len));
    imb_ids_free(&ids);
    imb_ids_free(&again);
    imb_bpe_free(b);
}
END_TEST

START_TEST(bpe_merge_rule) {
    char err[256];
    /* (a, b) occurs 4 times, (c, d) 3; then (ab, ab) twice, (b, a) no more */
    char *texts[] = { "abab", "cd", "cd", "cd", "abab zz" };
    imb_bpe *b = imb_bpe_train(texts, 5, 1000, err, sizeof err);
    ck_assert_ptr_nonnull(b);
    size_t n;
    const uint8_t *t = imb_bpe_token(b, 257, &n);
    ck_assert(n == 2 && !memcmp(t, "ab", 2));
    t = imb_bpe_token(b, 258, &n);
    ck_assert(n == 2 && !memcmp(t, "cd", 2));
    t = imb_bpe_token(b, 259, &n);
    ck_assert(n == 4 && !memcmp(t, "abab", 4));
    /* nothing occurs twice after that (" z" and "zz" once each): training stops early */
    ck_assert_int_eq(imb_bpe_vocab(b), 260);
    ck_assert_int_eq(imb_bpe_requested(b), 1000);
    imb_ids ids = { 0 };
    ck_assert_int_eq(imb_bpe_encode(b, "ababcd", 6, &ids), 0);   /* one piece: abab + cd */
    ck_assert_uint_eq(ids.n, 2);
    ck_assert_int_eq(ids.v[0], 259);
    ck_assert_int_eq(ids.v[1], 258);
    imb_ids_free(&ids);
    imb_bpe_free(b);
    ck_assert_ptr_null(imb_bpe_train(texts, 5, 256, err, sizeof err));
    dt_err_has(err, "257", NULL);
    b = imb_bpe_train(texts, 5, 257, err, sizeof err);   /* bytes only */
    ck_assert_int_eq(imb_bpe_vocab(b), 257);
    roundtrip(b, "abab", 4);
    imb_bpe_free(b);
    /* a tie (2 and 2): the smaller left id first ('b' < 'x'), whatever the text order */
    char *tie[2][4] = { { "xy", "xy", "ba", "ba" }, { "ba", "xy", "ba", "xy" } };
    for (int k = 0; k < 2; k++) {
        b = imb_bpe_train(tie[k], 4, 1000, err, sizeof err);
        ck_assert_int_eq(imb_bpe_vocab(b), 259);
        t = imb_bpe_token(b, 257, &n);
        ck_assert(n == 2 && !memcmp(t, "ba", 2));
        t = imb_bpe_token(b, 258, &n);
        ck_assert(n == 2 && !memcmp(t, "xy", 2));
        imb_bpe_free(b);
    }
}
END_TEST

START_TEST(bpe_pieces_never_merge_across) {
    char err[256];
    char *texts[] = { "a.a.a.a.a.a", "x y x y x y", "12ab 12ab" };
    imb_bpe *b = imb_bpe_train(texts, 3, 2000, err, sizeof err);
    for (int id = IMB_BPE_BASE; id < imb_bpe_vocab(b); id++) {
        size_t n;
        const uint8_t *t = imb_bpe_token(b, id, &n);
        char s[64];
        snprintf(s, sizeof s, "%.*s", (int)n, t);
        /* a token is [space] + one class: never "a.", "y x" or "2a" */
        ck_assert_msg(!strchr(s, '.') || strspn(s, ".") == n, "token '%s'", s);
        ck_assert_msg(!strstr(s + 1, " "), "token '%s'", s);
        ck_assert_msg(!(strpbrk(s, "0123456789") && strpbrk(s, "ab")), "token '%s'", s);
    }
    imb_bpe_free(b);
}
END_TEST

START_TEST(bpe_deterministic) {
    char *root = dt_synth("agnews", 40, 2), err[1024] = "";
    imb_text_list l;
    ck_assert_msg(imb_text_agnews.read(root, "train", &l, err, sizeof err) == 0, "%s", err);
    imb_bpe *a = imb_bpe_train(l.texts, l.n, 700, err, sizeof err);
    imb_bpe *b = imb_bpe_train(l.texts, l.n, 700, err, sizeof err);
    /* the same texts in another order give the same merges */
    for (int i = 0; i < l.n / 2; i++) {
        char *t = l.texts[i];
        l.texts[i] = l.texts[l.n - 1 - i];
        l.texts[l.n - 1 - i] = t;
    }
    imb_bpe *c = imb_bpe_train(l.texts, l.n, 700, err, sizeof err);
    ck_assert_int_eq(imb_bpe_vocab(a), imb_bpe_vocab(b));
    ck_assert_int_eq(imb_bpe_vocab(a), imb_bpe_vocab(c));
    ck_assert_uint_eq(imb_bpe_hash(a), imb_bpe_hash(b));
    ck_assert_uint_eq(imb_bpe_hash(a), imb_bpe_hash(c));
    for (int i = 0; i < l.n; i++) roundtrip(a, l.texts[i], strlen(l.texts[i]));
    imb_bpe_free(a);
    imb_bpe_free(b);
    imb_bpe_free(c);
    imb_text_list_free(&l);
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(bpe_file) {
    char *dir = dt_tmpdir(), err[512] = "", p[PATHN];
    imb_bpe *b = imb_bpe_train(corpus, NCORPUS, 290, err, sizeof err), *r;
    dt_path(p, "%s/t.tok", dir);
    ck_assert_int_eq(imb_bpe_load(p, 42, &r, err, sizeof err), IMB_SHARD_MISSING);
    ck_assert_int_eq(imb_bpe_save(b, p, 42, err, sizeof err), 0);
    ck_assert_int_eq(imb_bpe_load(p, 42, &r, err, sizeof err), IMB_SHARD_OK);
    ck_assert_int_eq(imb_bpe_vocab(r), imb_bpe_vocab(b));
    ck_assert_int_eq(imb_bpe_requested(r), 290);
    ck_assert_uint_eq(imb_bpe_hash(r), imb_bpe_hash(b));
    for (int i = 0; i < NCORPUS; i++) {
        imb_ids x = { 0 }, y = { 0 };
        imb_bpe_encode(b, corpus[i], strlen(corpus[i]), &x);
        imb_bpe_encode(r, corpus[i], strlen(corpus[i]), &y);
        ck_assert_uint_eq(x.n, y.n);
        ck_assert(!memcmp(x.v, y.v, x.n * sizeof *x.v));
        imb_ids_free(&x);
        imb_ids_free(&y);
    }
    imb_bpe_free(r);
    ck_assert_int_eq(imb_bpe_load(p, 43, &r, err, sizeof err), IMB_SHARD_STALE);
    dt_err_has(err, "fingerprint", NULL);
    size_t n;
    uint8_t *bytes = dt_read(p, &n);
    /* a flipped byte in the merges, in the header, a truncation, a newer version */
    bytes[n - 3] ^= 1;
    dt_write(p, bytes, n);
    ck_assert_int_eq(imb_bpe_load(p, 42, &r, err, sizeof err), IMB_SHARD_CORRUPT);
    bytes[n - 3] ^= 1;
    bytes[20] ^= 1;
    dt_write(p, bytes, n);
    ck_assert_int_eq(imb_bpe_load(p, 42, &r, err, sizeof err), IMB_SHARD_CORRUPT);
    dt_err_has(err, "header", NULL);
    bytes[20] ^= 1;
    dt_write(p, bytes, n - 8);
    ck_assert_int_eq(imb_bpe_load(p, 42, &r, err, sizeof err), IMB_SHARD_CORRUPT);
    dt_write(p, bytes, 10);
    ck_assert_int_eq(imb_bpe_load(p, 42, &r, err, sizeof err), IMB_SHARD_CORRUPT);
    bytes[8] = 99;
    dt_write(p, bytes, n);
    ck_assert_int_eq(imb_bpe_load(p, 42, &r, err, sizeof err), IMB_SHARD_STALE);
    dt_err_has(err, "version", NULL);
    ck_assert_ptr_null(r);
    free(bytes);
    imb_bpe_free(b);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- shards and loader */

/* n records, record i of length 1 + (i * 7) % 23, ids i*100 + j (mod vocab), label i % 3 */
static void make_shard(const char *path, int n, int vocab, uint64_t fp) {
    size_t *off = malloc(sizeof *off * (size_t)(n + 1)), total = 0;
    for (int i = 0; i < n; i++) {
        off[i] = total;
        total += 1 + (size_t)((i * 7) % 23);
    }
    off[n] = total;
    int32_t *ids = malloc(sizeof *ids * total), *lab = malloc(sizeof *lab * (size_t)n);
    for (int i = 0; i < n; i++) {
        lab[i] = i % 3;
        for (size_t j = off[i]; j < off[i + 1]; j++) ids[j] = (int32_t)(((size_t)i * 100 + (j - off[i])) % (size_t)vocab);
    }
    char err[512] = "";
    ck_assert_msg(imb_text_shard_write(path, n, off, ids, lab, 3, vocab, fp, err, sizeof err) == 0, "%s", err);
    free(off);
    free(ids);
    free(lab);
}

static int rec_len(int i) { return 1 + (i * 7) % 23; }

START_TEST(text_shard_file) {
    char *dir = dt_tmpdir(), err[512] = "", p[PATHN];
    imb_text_shard s;
    for (int big = 0; big < 2; big++) {   /* u16 and u32 ids */
        int vocab = big ? 70000 : 5000;
        dt_path(p, "%s/t%d.shard", dir, big);
        make_shard(p, 50, vocab, 9);
        ck_assert_int_eq(imb_text_shard_open(p, 9, &s, err, sizeof err), IMB_SHARD_OK);
        ck_assert_int_eq(s.n, 50);
        ck_assert_int_eq(s.id_bytes, big ? 4 : 2);
        ck_assert_int_eq(s.vocab, vocab);
        int32_t buf[64], lab;
        int len;
        for (int i = 0; i < 50; i++) {
            ck_assert_int_eq(imb_text_shard_get(&s, i, buf, 64, &len, &lab), 0);
            ck_assert_int_eq(len, rec_len(i));
            ck_assert_int_eq(lab, i % 3);
            for (int j = 0; j < len; j++) ck_assert_int_eq(buf[j], (i * 100 + j) % vocab);
        }
        ck_assert_int_eq(imb_text_shard_get(&s, 50, buf, 64, &len, &lab), -1);
        imb_text_shard_close(&s);
    }
    ck_assert_int_eq(imb_text_shard_open(p, 10, &s, err, sizeof err), IMB_SHARD_STALE);
    size_t n;
    uint8_t *bytes = dt_read(p, &n);
    bytes[n - 1] ^= 0x40;
    dt_write(p, bytes, n);
    ck_assert_int_eq(imb_text_shard_open(p, 9, &s, err, sizeof err), IMB_SHARD_CORRUPT);
    dt_err_has(err, p, "checksum", NULL);
    bytes[n - 1] ^= 0x40;
    dt_write(p, bytes, n - 4);
    ck_assert_int_eq(imb_text_shard_open(p, 9, &s, err, sizeof err), IMB_SHARD_CORRUPT);
    dt_write(p, "IMBTEXTS", 8);
    ck_assert_int_eq(imb_text_shard_open(p, 9, &s, err, sizeof err), IMB_SHARD_CORRUPT);
    ck_assert_int_eq(imb_text_shard_open(dt_path(p, "%s/none.shard", dir), 9, &s, err, sizeof err), IMB_SHARD_MISSING);
    free(bytes);
    /* the writer refuses ids outside the vocabulary, empty records and bad labels */
    size_t off[3] = { 0, 2, 2 };
    int32_t ids[2] = { 1, 7 }, lab[2] = { 0, 1 };
    ck_assert_int_eq(imb_text_shard_write(p, 1, off, ids, lab, 2, 5, 0, err, sizeof err), -1);
    ck_assert_int_eq(imb_text_shard_write(p, 2, off, ids, lab, 2, 10, 0, err, sizeof err), -1);
    dt_err_has(err, "record 1", NULL);
    lab[0] = 2;
    ck_assert_int_eq(imb_text_shard_write(p, 1, off, ids, lab, 2, 10, 0, err, sizeof err), -1);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

enum { NREC = 53, BATCH = 8, MAXLEN = 16 };

/* every batch of one epoch: ids/mask agree with the records, each record at most once */
static int check_epoch(imb_text_loader *l, int *seen, int64_t *sig) {
    int32_t ids[BATCH * MAXLEN], lab[BATCH];
    float mask[BATCH * MAXLEN];
    int count, L, batches = 0;
    memset(seen, 0, sizeof *seen * NREC);
    *sig = 0;
    while (!imb_text_loader_next(l, ids, mask, lab, &count, &L)) {
        ck_assert(count >= 1 && count <= BATCH && L >= 1 && L <= MAXLEN);
        int longest = 0;
        for (int r = 0; r < count; r++) {
            /* the first id names the record (ids i*100 + j, vocab large enough) */
            int i = ids[r * L] / 100, n = rec_len(i) < MAXLEN ? rec_len(i) : MAXLEN;
            ck_assert(i >= 0 && i < NREC);
            seen[i]++;
            ck_assert_int_eq(lab[r], i % 3);
            longest = n > longest ? n : longest;
            for (int j = 0; j < L; j++) {
                ck_assert(mask[r * L + j] == (j < n ? 1.0f : 0.0f));
                ck_assert_int_eq(ids[r * L + j], j < n ? i * 100 + j : 0);
            }
            *sig = *sig * 31 + i;
        }
        ck_assert_int_eq(L, longest);   /* padded to the longest, cut at max_len */
        batches++;
    }
    ck_assert_int_eq(count, 0);
    return batches;
}

START_TEST(text_loader_batches) {
    char *dir = dt_tmpdir(), err[512] = "", p[PATHN];
    make_shard(dt_path(p, "%s/t.shard", dir), NREC, 100000, 1);
    imb_text_shard s;
    ck_assert_int_eq(imb_text_shard_open(p, 1, &s, err, sizeof err), IMB_SHARD_OK);
    int seen[NREC];
    int64_t sig0, sig1, sig;
    /* evaluation order: everything once, the short last batch kept */
    imb_text_loader *l = imb_text_loader_new(&s, BATCH, MAXLEN, 0, 0, 5, err, sizeof err);
    ck_assert_int_eq(check_epoch(l, seen, &sig0), 7);
    for (int i = 0; i < NREC; i++) ck_assert_int_eq(seen[i], 1);
    imb_text_loader_free(l);
    /* training order: shuffled, drop_last, a new order every epoch, reproducible */
    l = imb_text_loader_new(&s, BATCH, MAXLEN, 1, 1, 5, err, sizeof err);
    ck_assert_int_eq(imb_text_loader_batches(l), 6);
    ck_assert_int_eq(check_epoch(l, seen, &sig0), 6);
    int total = 0;
    for (int i = 0; i < NREC; i++) {
        ck_assert(seen[i] <= 1);
        total += seen[i];
    }
    ck_assert_int_eq(total, 48);
    ck_assert_int_eq(check_epoch(l, seen, &sig1), 6);
    ck_assert(sig0 != sig1);
    imb_text_loader *m = imb_text_loader_new(&s, BATCH, MAXLEN, 1, 1, 5, err, sizeof err);
    ck_assert_int_eq(imb_text_loader_seek(m, 1, 0), 0);
    check_epoch(m, seen, &sig);
    ck_assert(sig == sig1);
    /* resume mid-epoch: position, then seek a fresh loader there */
    int32_t ids[2][BATCH * MAXLEN], lab[2][BATCH];
    float mask[2][BATCH * MAXLEN];
    int c[2], L[2];
    imb_text_loader_seek(l, 3, 0);
    imb_text_loader_next(l, ids[0], mask[0], lab[0], &c[0], &L[0]);
    imb_text_loader_next(l, ids[0], mask[0], lab[0], &c[0], &L[0]);
    int64_t e, bi;
    imb_text_loader_position(l, &e, &bi);
    ck_assert(e == 3 && bi == 2);
    imb_text_loader_next(l, ids[0], mask[0], lab[0], &c[0], &L[0]);
    ck_assert_int_eq(imb_text_loader_seek(m, e, bi), 0);
    imb_text_loader_next(m, ids[1], mask[1], lab[1], &c[1], &L[1]);
    ck_assert(c[0] == c[1] && L[0] == L[1] && !memcmp(ids[0], ids[1], sizeof(int32_t) * (size_t)(c[0] * L[0])));
    ck_assert_int_eq(imb_text_loader_seek(m, 0, 7), -1);
    imb_text_loader_free(l);
    imb_text_loader_free(m);
    ck_assert_ptr_null(imb_text_loader_new(&s, 60, MAXLEN, 1, 1, 5, err, sizeof err));
    imb_text_shard_close(&s);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(text_loader_buckets_and_ranks) {
    char *dir = dt_tmpdir(), err[512] = "", p[PATHN];
    make_shard(dt_path(p, "%s/t.shard", dir), NREC, 100000, 1);
    imb_text_shard s;
    ck_assert_int_eq(imb_text_shard_open(p, 1, &s, err, sizeof err), IMB_SHARD_OK);
    int seen[NREC];
    int64_t sig, sig2;
    /* grouped by length: still each record once an epoch, far less padding */
    imb_text_loader *plain = imb_text_loader_new(&s, BATCH, MAXLEN, 1, 1, 5, err, sizeof err);
    imb_text_loader *grouped = imb_text_loader_new(&s, BATCH, MAXLEN, 1, 1, 5, err, sizeof err);
    imb_text_loader_bucket(grouped, 3);
    int32_t ids[BATCH * MAXLEN], lab[BATCH];
    float mask[BATCH * MAXLEN];
    int count, L;
    long pad[2] = { 0, 0 };
    for (int k = 0; k < 2; k++)
        for (imb_text_loader *l = k ? grouped : plain; !imb_text_loader_next(l, ids, mask, lab, &count, &L);)
            for (int i = 0; i < count * L; i++) pad[k] += mask[i] == 0.0f;
    ck_assert_msg(pad[1] * 2 < pad[0], "padding %ld grouped vs %ld plain", pad[1], pad[0]);
    ck_assert_int_eq(check_epoch(grouped, seen, &sig), 6);
    for (int i = 0; i < NREC; i++) ck_assert(seen[i] <= 1);
    imb_text_loader_seek(grouped, 1, 0);
    check_epoch(grouped, seen, &sig2);
    ck_assert(sig == sig2);
    imb_text_loader_free(plain);
    imb_text_loader_free(grouped);
    /* evaluation: the whole split sorted, nothing lost */
    imb_text_loader *ev = imb_text_loader_new(&s, BATCH, MAXLEN, 0, 0, 5, err, sizeof err);
    imb_text_loader_bucket(ev, imb_text_loader_batches(ev));
    ck_assert_int_eq(check_epoch(ev, seen, &sig), 7);
    for (int i = 0; i < NREC; i++) ck_assert_int_eq(seen[i], 1);
    imb_text_loader_free(ev);
    /* fixed shape (CUDA graphs): always max_len wide, the same records as without */
    imb_text_loader *fx = imb_text_loader_new(&s, BATCH, MAXLEN, 1, 1, 5, err, sizeof err);
    imb_text_loader *dy = imb_text_loader_new(&s, BATCH, MAXLEN, 1, 1, 5, err, sizeof err);
    imb_text_loader_fixed(fx, 1);
    {
        int32_t fi[BATCH * MAXLEN], di[BATCH * MAXLEN], fl[BATCH], dl[BATCH];
        float fm[BATCH * MAXLEN], dm[BATCH * MAXLEN];
        int fc, dc, fL, dL;
        while (!imb_text_loader_next(fx, fi, fm, fl, &fc, &fL)) {
            ck_assert_int_eq(imb_text_loader_next(dy, di, dm, dl, &dc, &dL), 0);
            ck_assert_int_eq(fL, MAXLEN);
            ck_assert_int_eq(fc, dc);
            for (int r = 0; r < fc; r++)
                for (int j = 0; j < MAXLEN; j++) {
                    ck_assert_int_eq(fi[r * MAXLEN + j], j < dL ? di[r * dL + j] : 0);
                    ck_assert(fm[r * MAXLEN + j] == (j < dL ? dm[r * dL + j] : 0.0f));
                }
        }
    }
    imb_text_loader_free(fx);
    imb_text_loader_free(dy);
    /* two ranks of batch 4 see exactly what one process of batch 8 sees */
    imb_text_loader *one = imb_text_loader_new(&s, BATCH, MAXLEN, 1, 1, 5, err, sizeof err);
    imb_text_loader *r0 = imb_text_loader_new_rank(&s, BATCH / 2, MAXLEN, 1, 1, 5, 0, 2, err, sizeof err);
    imb_text_loader *r1 = imb_text_loader_new_rank(&s, BATCH / 2, MAXLEN, 1, 1, 5, 1, 2, err, sizeof err);
    ck_assert_int_eq(imb_text_loader_batches(r0), 6);
    imb_text_loader_bucket(one, 2);
    imb_text_loader_bucket(r0, 2);
    imb_text_loader_bucket(r1, 2);
    int32_t a[BATCH * MAXLEN], la[BATCH], b0[BATCH * MAXLEN], lb0[BATCH], b1[BATCH * MAXLEN], lb1[BATCH];
    int c0, c1, L0, L1;
    while (!imb_text_loader_next(one, a, mask, la, &count, &L)) {
        ck_assert_int_eq(imb_text_loader_next(r0, b0, mask, lb0, &c0, &L0), 0);
        ck_assert_int_eq(imb_text_loader_next(r1, b1, mask, lb1, &c1, &L1), 0);
        ck_assert(c0 == 4 && c1 == 4);
        for (int r = 0; r < 8; r++) {
            int32_t want = a[r * L], got = r < 4 ? b0[r * L0] : b1[(r - 4) * L1];
            ck_assert_int_eq(got, want);
            ck_assert_int_eq(r < 4 ? lb0[r] : lb1[r - 4], la[r]);
        }
    }
    ck_assert_ptr_null(imb_text_loader_new_rank(&s, 4, MAXLEN, 1, 0, 5, 0, 2, err, sizeof err));
    imb_text_loader_free(one);
    imb_text_loader_free(r0);
    imb_text_loader_free(r1);
    imb_text_shard_close(&s);
    dt_rm_tree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- prepare */

static time_t mtime_ns(const char *path, long *ns) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    *ns = st.st_mtim.tv_nsec;
    return st.st_mtim.tv_sec;
}

START_TEST(prepare_cache) {
    char *root = dt_synth("agnews", 20, 5), err[1024] = "", p[PATHN], tokp[PATHN], shp[PATHN];
    imb_bpe *tok;
    imb_text_shard s;
    ck_assert_msg(imb_text_tokenizer(&imb_text_agnews, "agnews", root, "train", 600, &tok, NULL, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(imb_text_prepare_split(&imb_text_agnews, "agnews", root, "test", tok, &s, NULL, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(s.n, 20);
    ck_assert_int_eq(s.nclasses, 4);
    ck_assert_int_eq(s.vocab, imb_bpe_vocab(tok));
    /* the shard holds exactly the encoded normalised texts */
    imb_text_list l;
    ck_assert_int_eq(imb_text_agnews.read(root, "test", &l, err, sizeof err), 0);
    for (int i = 0; i < l.n; i++) {
        int32_t ids[4096], lab;
        int len;
        imb_text_shard_get(&s, i, ids, 4096, &len, &lab);
        char *d = imb_bpe_decode(tok, ids, (size_t)len, NULL);
        ck_assert_str_eq(d, l.texts[i]);
        ck_assert_int_eq(lab, l.labels[i]);
        free(d);
    }
    imb_text_list_free(&l);
    snprintf(shp, sizeof shp, "%s", s.path);
    imb_text_shard_close(&s);
    snprintf(tokp, sizeof tokp, "%s/.imbench/agnews-bpe600-tokenizer.tok", root);
    long ns0, ns1, sn0, sn1;
    time_t t0 = mtime_ns(tokp, &ns0), s0 = mtime_ns(shp, &sn0);
    uint32_t h0 = imb_bpe_hash(tok);
    imb_bpe_free(tok);
    /* unchanged sources: both reused as they are */
    ck_assert_int_eq(imb_text_tokenizer(&imb_text_agnews, "agnews", root, "train", 600, &tok, NULL, err, sizeof err), 0);
    ck_assert_int_eq(imb_text_prepare_split(&imb_text_agnews, "agnews", root, "test", tok, &s, NULL, err, sizeof err), 0);
    ck_assert(mtime_ns(tokp, &ns1) == t0 && ns1 == ns0);
    ck_assert(mtime_ns(shp, &sn1) == s0 && sn1 == sn0);
    ck_assert_uint_eq(imb_bpe_hash(tok), h0);
    imb_text_shard_close(&s);
    imb_bpe_free(tok);
    /* a corrupt shard is rebuilt */
    size_t n;
    uint8_t *bytes = dt_read(shp, &n);
    bytes[n / 2] ^= 0xff;
    dt_write(shp, bytes, n);
    free(bytes);
    ck_assert_int_eq(imb_text_tokenizer(&imb_text_agnews, "agnews", root, "train", 600, &tok, NULL, err, sizeof err), 0);
    ck_assert_int_eq(imb_text_prepare_split(&imb_text_agnews, "agnews", root, "test", tok, &s, NULL, err, sizeof err), 0);
    imb_text_shard_close(&s);
    imb_bpe_free(tok);
    /* new training text: a new tokenizer, and the test shard follows it */
    FILE *f = fopen(dt_path(p, "%s/train.csv", root), "ab");
    fputs("\"2\",\"zyzzyva zyzzyva zyzzyva\",\"zyzzyva qoph qoph\"\n", f);
    fclose(f);
    ck_assert_int_eq(imb_text_tokenizer(&imb_text_agnews, "agnews", root, "train", 600, &tok, NULL, err, sizeof err), 0);
    ck_assert_uint_ne(imb_bpe_hash(tok), h0);
    ck_assert_int_eq(imb_text_prepare_split(&imb_text_agnews, "agnews", root, "test", tok, &s, NULL, err, sizeof err), 0);
    ck_assert_int_eq(s.vocab, imb_bpe_vocab(tok));
    imb_text_shard_close(&s);
    imb_bpe_free(tok);
    /* a broken source is an error naming it, not a crash */
    f = fopen(p, "ab");
    fputs("\"9\",\"bad\",\"class\"\n", f);
    fclose(f);
    ck_assert_int_eq(imb_text_tokenizer(&imb_text_agnews, "agnews", root, "train", 600, &tok, NULL, err, sizeof err), -1);
    dt_err_has(err, "train.csv", "class", NULL);
    dt_rm_tree(root);
    free(root);
}
END_TEST

static Suite *text_suite(void) {
    Suite *s = suite_create("text");
    TCase *t = tcase_create("norm");
    tcase_add_test(t, normalize_nfkc_casefold);
    tcase_add_test(t, normalize_space_and_controls);
    tcase_add_test(t, normalize_rejects_invalid_utf8);
    tcase_add_test(t, agnews_unescape);
    suite_add_tcase(s, t);
    t = tcase_create("readers");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, agnews_csv_quoting);
    tcase_add_test(t, agnews_csv_errors);
    tcase_add_test(t, agnews_layout_errors);
    tcase_add_test(t, agnews_synth_and_fingerprint);
    tcase_add_test(t, imdb_folders);
    tcase_add_test(t, imdb_errors);
    tcase_add_test(t, imdb_synth);
    suite_add_tcase(s, t);
    t = tcase_create("bpe");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, bpe_roundtrip);
    tcase_add_test(t, bpe_merge_rule);
    tcase_add_test(t, bpe_pieces_never_merge_across);
    tcase_add_test(t, bpe_deterministic);
    tcase_add_test(t, bpe_file);
    suite_add_tcase(s, t);
    t = tcase_create("shards");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, text_shard_file);
    tcase_add_test(t, text_loader_batches);
    tcase_add_test(t, text_loader_buckets_and_ranks);
    tcase_add_test(t, prepare_cache);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return imb_check_run(srunner_create(text_suite())); }
