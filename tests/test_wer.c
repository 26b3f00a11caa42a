/* WER/CER tests: hand-computed substitutions, insertions, deletions and empty hypotheses, the
 * edit distance, and corpora whose values jiwer computed (fixtures/wer_jiwer.txt, written by
 * fixtures/make_wer_fixture.py), which must match exactly. */
#include "wer.h"
#include "checkrun.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static imb_wer one(const char *ref, const char *hyp) {
    imb_wer w;
    memset(&w, 0, sizeof w);
    ck_assert_int_eq(imb_wer_add(&w, ref, hyp), 0);
    return w;
}

START_TEST(hand_computed) {
    imb_wer w = one("the cat sat on the mat", "the cat sat on the mat");
    ck_assert_int_eq(w.word_edits, 0);
    ck_assert_int_eq(w.ref_words, 6);
    ck_assert(imb_wer_value(&w) == 0.0);
    /* one substitution (sat -> sit) and one deletion (the): 2 / 6 */
    w = one("the cat sat on the mat", "the cat sit on mat");
    ck_assert_int_eq(w.word_edits, 2);
    ck_assert(imb_wer_value(&w) == 2.0 / 6.0);
    /* chars: "sat"->"sit" 1, "the " deleted 4 -> 5 of 22 */
    ck_assert_int_eq(w.char_edits, 5);
    ck_assert_int_eq(w.ref_chars, 22);
    /* three insertions around an exact match: 3 / 3 */
    w = one("a b c", "x a b c y z");
    ck_assert_int_eq(w.word_edits, 3);
    ck_assert(imb_wer_value(&w) == 1.0);
    /* an empty hypothesis: every reference word deleted; spaces only is empty too */
    w = one("hello big world", "");
    ck_assert_int_eq(w.word_edits, 3);
    ck_assert(imb_wer_value(&w) == 1.0);
    ck_assert_int_eq(w.char_edits, 15);
    w = one("hello big world", "  \t ");
    ck_assert_int_eq(w.word_edits, 3);
    ck_assert_int_eq(w.char_edits, 15);
    /* whitespace runs and the ends do not count */
    w = one("  two   words ", "two words");
    ck_assert_int_eq(w.word_edits, 0);
    ck_assert_int_eq(w.ref_words, 2);
    /* a word swapped for two: 1 substitution + 1 insertion */
    w = one("i want tea", "i want the tea");
    ck_assert_int_eq(w.word_edits, 1);
    w = one("i want tea", "i won the tea");
    ck_assert_int_eq(w.word_edits, 2);
}
END_TEST

/* corpus level: the sum of edits over the sum of reference words, not a mean of rates */
START_TEST(corpus_level) {
    imb_wer w;
    memset(&w, 0, sizeof w);
    ck_assert_int_eq(imb_wer_add(&w, "a", "b"), 0);                     /* 1 of 1 */
    ck_assert_int_eq(imb_wer_add(&w, "a b c d e f g h i", "a b c d e f g h i"), 0);   /* 0 of 9 */
    ck_assert_int_eq(w.sentences, 2);
    ck_assert(imb_wer_value(&w) == 0.1);   /* mean of rates would be 0.5 */
    /* no reference word at all: jiwer returns the number of insertions */
    memset(&w, 0, sizeof w);
    ck_assert_int_eq(imb_wer_add(&w, "", "x y"), 0);
    ck_assert_int_eq(imb_wer_add(&w, " ", "z"), 0);
    ck_assert(imb_wer_value(&w) == 3.0);
    ck_assert(imb_cer_value(&w) == 4.0);
}
END_TEST

START_TEST(edit_distance) {
    const uint32_t a[] = { 1, 2, 3, 4 }, b[] = { 2, 3, 5, 4, 6 };
    ck_assert_int_eq(imb_edit_distance(a, 4, b, 5), 3);
    ck_assert_int_eq(imb_edit_distance(a, 4, a, 4), 0);
    ck_assert_int_eq(imb_edit_distance(a, 0, b, 5), 5);
    ck_assert_int_eq(imb_edit_distance(a, 4, b, 0), 4);
    ck_assert_int_eq(imb_edit_distance(b, 5, a, 4), 3);
}
END_TEST

/* "\xHH" escapes back to bytes, in place */
static void unescape(char *s) {
    char *o = s;
    for (char *p = s; *p;) {
        if (p[0] == '\\' && p[1] == 'x' && p[2] && p[3]) {
            char hex[3] = { p[2], p[3], 0 };
            *o++ = (char)strtol(hex, NULL, 16);
            p += 4;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
}

START_TEST(matches_jiwer) {
    const char *path = IMB_TEST_SRCDIR "/tests/fixtures/wer_jiwer.txt";
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: cannot open", path);
    char line[4096], ref[4096] = "";
    imb_wer w;
    memset(&w, 0, sizeof w);
    int corpora = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || !line[0]) continue;
        ck_assert_msg(line[1] == ' ' || !line[1], "%s:%d: bad line", path, lineno);
        char *text = line + (line[1] ? 2 : 1);
        if (line[0] == 'R') {
            snprintf(ref, sizeof ref, "%s", text);
            unescape(ref);
        } else if (line[0] == 'H') {
            unescape(text);
            ck_assert_int_eq(imb_wer_add(&w, ref, text), 0);
        } else if (line[0] == '=') {
            char *end;
            double want_wer = strtod(text, &end), want_cer = strtod(end, NULL);
            ck_assert_msg(imb_wer_value(&w) == want_wer, "%s:%d: wer %.17g, jiwer %.17g", path, lineno,
                          imb_wer_value(&w), want_wer);
            ck_assert_msg(imb_cer_value(&w) == want_cer, "%s:%d: cer %.17g, jiwer %.17g", path, lineno,
                          imb_cer_value(&w), want_cer);
            memset(&w, 0, sizeof w);
            corpora++;
        } else {
            ck_abort_msg("%s:%d: bad line", path, lineno);
        }
    }
    fclose(f);
    ck_assert_int_ge(corpora, 20);
}
END_TEST

int main(void) {
    Suite *s = suite_create("wer");
    TCase *tc = tcase_create("wer");
    tcase_add_test(tc, hand_computed);
    tcase_add_test(tc, corpus_level);
    tcase_add_test(tc, edit_distance);
    tcase_add_test(tc, matches_jiwer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
