/* Transcript text <-> the 29 CTC symbol ids (blank, space, a-z, apostrophe). */
#include "speech.h"
#include <string.h>

int imb_speech_symbol(int c) {
    if (c == ' ') return IMB_SPEECH_SPACE;
    if (c == '\'') return IMB_SPEECH_APOSTROPHE;
    if (c >= 'a' && c <= 'z') return 2 + (c - 'a');
    if (c >= 'A' && c <= 'Z') return 2 + (c - 'A');
    return -1;
}

int imb_speech_char(int id) {
    if (id == IMB_SPEECH_SPACE) return ' ';
    if (id == IMB_SPEECH_APOSTROPHE) return '\'';
    if (id >= 2 && id < 28) return 'a' + (id - 2);
    return 0;
}

int imb_speech_encode(const char *text, int32_t *ids, size_t *bad) {
    int n = 0, pending = 0;   /* a space waits until a symbol follows, so none trails */
    for (size_t i = 0; text[i]; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t') {
            pending = n > 0;
            continue;
        }
        int s = imb_speech_symbol(c);
        if (s < 0) {
            if (bad) *bad = i;
            return -1;
        }
        if (pending) ids[n++] = IMB_SPEECH_SPACE;
        pending = 0;
        ids[n++] = s;
    }
    return n;
}

size_t imb_speech_decode(const int32_t *ids, int n, char *text, size_t textn) {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        int c = imb_speech_char(ids[i]);
        if (!c) continue;
        if (k + 1 < textn) text[k] = (char)c;
        k++;
    }
    if (textn) text[k < textn ? k : textn - 1] = 0;
    return k;
}
