/* The espeak-ng LibriSpeech mini corpus: layout, 16 kHz FLAC, transcripts, determinism, readable
 * by the speech reader. Exits 77 (SKIP) when espeak-ng is not installed. */
#include "audio.h"
#include "checkrun.h"
#include "datatest.h"
#include "fbank.h"
#include "speech.h"
#include "synth.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *corpus(int ntrain, int nval, uint64_t seed) {
    char *root = dt_tmpdir(), err[1024] = "";
    ck_assert_msg(imb_synth_write("librispeech", root, ntrain, nval, seed, err, sizeof err) == 0, "%s", err);
    return root;
}

START_TEST(corpus_is_a_readable_librispeech_tree) {
    char *root = corpus(20, 3, 7), p[PATHN], err[2048] = "";
    static const char *const subsets[] = {"train-clean-100", "dev-clean", "test-clean", "dev-other", "test-other"};
    char train_spk[64] = "";
    for (int k = 0; k < 5; k++) {
        imb_speech_set *s = NULL;
        ck_assert_msg(imb_speech_open(root, subsets[k], 2, NULL, &s, err, sizeof err) == 0, "%s", err);
        int n = imb_speech_count(s);
        ck_assert_int_eq(n, k == 0 ? 20 : 3);
        for (int i = 0; i < n; i++) {
            int32_t ids[512];
            char text[512];
            int nt = imb_speech_targets(s, i, ids);
            ck_assert(nt > 0);
            imb_speech_decode(ids, nt, text, sizeof text);
            int words = 1;
            for (char *q = text; *q; q++) words += *q == ' ';
            ck_assert_msg(words >= 2 && words <= 7, "%s: \"%s\"", imb_speech_id(s, i), text);
            /* speech, not silence: at least ~0.1 s per word, under 1 s per word */
            int f = imb_speech_frames(s, i);
            ck_assert_msg(f >= 10 * words && f <= 100 * words, "%s: %d frames for \"%s\"", imb_speech_id(s, i), f, text);
            const char *id = imb_speech_id(s, i);
            char spk[16];
            snprintf(spk, sizeof spk, "%.*s", (int)strcspn(id, "-"), id);
            if (k == 0 && !strstr(train_spk, spk)) {
                strcat(train_spk, spk);
                strcat(train_spk, ",");
            }
            if (k >= 3) ck_assert_msg(!strstr(train_spk, spk), "other speaker %s also in training", spk);
        }
        imb_speech_close(s);
    }
    /* the files are 16 kHz mono FLAC */
    imb_audio a;
    ck_assert_msg(imb_audio_read(dt_path(p, "%s/LibriSpeech/train-clean-100/100/1000/100-1000-0000.flac", root), &a, err,
                                 sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.src_rate, 16000);
    ck_assert_int_eq(a.channels, 1);
    imb_audio_free(&a);
    dt_rm_tree(root);
    free(root);
}
END_TEST

START_TEST(corpus_is_deterministic) {
    char *a = corpus(6, 1, 3), *b = corpus(6, 1, 3), *c = corpus(6, 1, 4), p[PATHN], q[PATHN];
    const char *files[] = {"train-clean-100/100/1000/100-1000.trans.txt", "train-clean-100/107/1070/107-1070-0000.flac",
                           "test-other/700/7000/700-7000.trans.txt"};
    for (int i = 0; i < 3; i++) {
        size_t na, nb;
        uint8_t *x = dt_read(dt_path(p, "%s/LibriSpeech/%s", a, files[i]), &na);
        uint8_t *y = dt_read(dt_path(q, "%s/LibriSpeech/%s", b, files[i]), &nb);
        ck_assert_msg(na == nb && memcmp(x, y, na) == 0, "%s differs between two runs", files[i]);
        free(x);
        free(y);
    }
    size_t na, nc;
    uint8_t *x = dt_read(dt_path(p, "%s/LibriSpeech/%s", a, files[0]), &na);
    uint8_t *y = dt_read(dt_path(q, "%s/LibriSpeech/%s", c, files[0]), &nc);
    ck_assert(na != nc || memcmp(x, y, na) != 0);   /* another seed, other sentences */
    free(x);
    free(y);
    dt_rm_tree(a);
    dt_rm_tree(b);
    dt_rm_tree(c);
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(without_espeak_a_clear_error) {
    char *root = dt_tmpdir(), err[1024] = "";
    setenv("PATH", root, 1);   /* a folder without espeak-ng */
    ck_assert_int_eq(imb_synth_write("librispeech", root, 4, 1, 1, err, sizeof err), -1);
    dt_err_has(err, "--synth for librispeech needs espeak-ng", NULL);
    dt_rm_tree(root);
    free(root);
}
END_TEST

int main(void) {
    if (system("espeak-ng --version >/dev/null 2>&1") != 0) {
        printf("espeak-ng not installed: skipped\n");
        return 77;
    }
    Suite *s = suite_create("speech synth");
    TCase *tc = tcase_create("espeak-ng corpus");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, corpus_is_a_readable_librispeech_tree);
    tcase_add_test(tc, corpus_is_deterministic);
    tcase_add_test(tc, without_espeak_a_clear_error);
    suite_add_tcase(s, tc);
    return imb_check_run(srunner_create(s));
}
