/* LibriSpeech folder reader (internal to data/): one subset's utterances, audio paths and transcripts, and their fingerprint. */
#ifndef IMB_LIBRISPEECH_H
#define IMB_LIBRISPEECH_H
#include <stddef.h>
#include <stdint.h>

typedef struct imb_utt_list {
    int n, cap;
    char **ids;     /* "<spk>-<chap>-<utt>" */
    char **paths;   /* the audio file */
    char **texts;   /* transcript as written in trans.txt (upper case) */
    char **where;   /* "<trans.txt path>:<line>", for messages */
} imb_utt_list;

/* Lists <root>/<subset> (or <root>/LibriSpeech/<subset>): speaker folders, their chapter
 * folders (strcmp order), and in each chapter <spk>-<chap>.trans.txt with one
 * "<utt id> <TEXT>" line per utterance and one audio file <utt id>.<ext> per line (files not
 * named <spk>-<chap>-* are ignored). Checks that every line has exactly one audio file, every
 * audio file a line, and every transcript character is in the 29-symbol alphabet, naming the
 * file and line otherwise. *fp folds in every transcript and audio file (path, size, mtime).
 * Returns 0, or -1 with err and an empty list. */
int imb_librispeech_list(const char *root, const char *subset, imb_utt_list *out, uint64_t *fp, char *err,
                         size_t errn);
void imb_utt_list_free(imb_utt_list *l);
#endif
