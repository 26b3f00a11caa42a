/* LibriSpeech folder reader: <subset>/<spk>/<chap>/<spk>-<chap>-<utt>.<ext> + <spk>-<chap>.trans.txt. */
#include "librispeech.h"
#include "fileio.h"
#include "shard.h"
#include "speech.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void imb_utt_list_free(imb_utt_list *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->ids[i]);
        free(l->paths[i]);
        free(l->texts[i]);
        free(l->where[i]);
    }
    free(l->ids);
    free(l->paths);
    free(l->texts);
    free(l->where);
    memset(l, 0, sizeof *l);
}

static int push(imb_utt_list *l, const char *id, const char *path, const char *text, const char *where) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        char **a = realloc(l->ids, sizeof *a * (size_t)cap);
        if (a) l->ids = a;
        char **b = realloc(l->paths, sizeof *b * (size_t)cap);
        if (b) l->paths = b;
        char **c = realloc(l->texts, sizeof *c * (size_t)cap);
        if (c) l->texts = c;
        char **d = realloc(l->where, sizeof *d * (size_t)cap);
        if (d) l->where = d;
        if (!a || !b || !c || !d) return -1;
        l->cap = cap;
    }
    char *s[4] = {imb_strdup(id), imb_strdup(path), imb_strdup(text), imb_strdup(where)};
    if (!s[0] || !s[1] || !s[2] || !s[3]) {
        for (int k = 0; k < 4; k++) free(s[k]);
        return -1;
    }
    l->ids[l->n] = s[0];
    l->paths[l->n] = s[1];
    l->texts[l->n] = s[2];
    l->where[l->n] = s[3];
    l->n++;
    return 0;
}

/* One transcript line: "<id> <TEXT>". */
typedef struct line {
    char *id, *text;
    int lineno, used;
} line;

static int cmp_line(const void *a, const void *b) { return strcmp(((const line *)a)->id, ((const line *)b)->id); }

/* The chapter folder dir of speaker spk, chapter chap. */
static int read_chapter(const char *dir, const char *spk, const char *chap, imb_utt_list *out, uint64_t *fp, char *err,
                        size_t errn) {
    char prefix[512], tname[600];
    snprintf(prefix, sizeof prefix, "%s-%s-", spk, chap);
    snprintf(tname, sizeof tname, "%s-%s.trans.txt", spk, chap);
    char *tpath = imb_path_join(dir, tname);
    if (!tpath) return imb_errf(err, errn, "%s: out of memory", dir);
    imb_strlist files;
    uint8_t *text = NULL;
    size_t tn = 0;
    line *lines = NULL;
    int nl = 0, rc = 0;
    if (imb_dir_list(dir, IMB_LIST_FILES, &files, err, errn) != 0) {
        free(tpath);
        return -1;
    }
    if (imb_strlist_find(&files, tname) < 0) {
        rc = imb_errf(err, errn, "%s: missing transcript file %s", dir, tname);
        goto done;
    }
    if (imb_file_read(tpath, &text, &tn, err, errn) != 0 || imb_fingerprint_file(fp, tpath, err, errn) != 0) {
        rc = -1;
        goto done;
    }
    if (!(lines = calloc(tn / 2 + 1, sizeof *lines))) {
        rc = imb_errf(err, errn, "%s: out of memory", tpath);
        goto done;
    }
    char *cur = (char *)text, *ln;
    int32_t *ids = NULL;
    for (int lineno = 1; rc == 0 && (ln = imb_next_line(&cur)) != NULL; lineno++) {
        char *s = imb_trim(ln);
        if (!*s) continue;
        char *sp = s + strcspn(s, " \t");
        if (*sp) *sp++ = 0;
        char *t = imb_trim(sp);
        if (strncmp(s, prefix, strlen(prefix)) != 0 || !s[strlen(prefix)]) {
            rc = imb_errf(err, errn, "%s:%d: utterance id '%s' does not start with %s", tpath, lineno, s, prefix);
            break;
        }
        if (!*t) {
            rc = imb_errf(err, errn, "%s:%d: utterance %s has an empty transcript", tpath, lineno, s);
            break;
        }
        size_t bad = 0;
        int32_t *nids = realloc(ids, sizeof *ids * (strlen(t) + 1));
        if (!nids) {
            rc = imb_errf(err, errn, "%s: out of memory", tpath);
            break;
        }
        ids = nids;
        if (imb_speech_encode(t, ids, &bad) < 0) {
            unsigned char c = (unsigned char)t[bad];
            if (c >= 0x20 && c < 0x7f)
                rc = imb_errf(err, errn, "%s:%d: character '%c' in the transcript of %s is not a letter, apostrophe or "
                              "space", tpath, lineno, c, s);
            else
                rc = imb_errf(err, errn, "%s:%d: byte 0x%02x in the transcript of %s is not a letter, apostrophe or space",
                              tpath, lineno, c, s);
            break;
        }
        lines[nl].id = s;
        lines[nl].text = t;
        lines[nl].lineno = lineno;
        nl++;
    }
    free(ids);
    if (rc) goto done;
    qsort(lines, (size_t)nl, sizeof *lines, cmp_line);
    for (int i = 1; i < nl; i++)
        if (strcmp(lines[i].id, lines[i - 1].id) == 0) {
            rc = imb_errf(err, errn, "%s:%d: utterance %s is listed twice (also line %d)", tpath,
                          lines[i].lineno > lines[i - 1].lineno ? lines[i].lineno : lines[i - 1].lineno, lines[i].id,
                          lines[i].lineno > lines[i - 1].lineno ? lines[i - 1].lineno : lines[i].lineno);
            goto done;
        }
    /* audio files: <id>.<ext>, matched to lines by id; files come strcmp-sorted */
    for (int f = 0; f < files.n && rc == 0; f++) {
        const char *name = files.s[f];
        if (strncmp(name, prefix, strlen(prefix)) != 0 || strcmp(name, tname) == 0) continue;
        const char *dot = strrchr(name, '.');
        char *path = imb_path_join(dir, name);
        if (!path) {
            rc = imb_errf(err, errn, "%s: out of memory", dir);
            break;
        }
        if (!dot || dot == name + strlen(prefix)) {
            rc = imb_errf(err, errn, "%s: audio file name has no extension", path);
            free(path);
            break;
        }
        char id[512];
        snprintf(id, sizeof id, "%.*s", (int)(dot - name), name);
        line key = {.id = id};
        line *hit = nl ? bsearch(&key, lines, (size_t)nl, sizeof *lines, cmp_line) : NULL;
        if (!hit) rc = imb_errf(err, errn, "%s: no transcript line for %s in %s", path, id, tpath);
        else if (hit->used) rc = imb_errf(err, errn, "%s: a second audio file for utterance %s", path, id);
        else {
            char where[4200];
            snprintf(where, sizeof where, "%s:%d", tpath, hit->lineno);
            hit->used = 1;
            if (imb_fingerprint_file(fp, path, err, errn) != 0) rc = -1;
            else if (push(out, id, path, hit->text, where) != 0) rc = imb_errf(err, errn, "%s: out of memory", dir);
        }
        free(path);
    }
    for (int i = 0; i < nl && rc == 0; i++)
        if (!lines[i].used)
            rc = imb_errf(err, errn, "%s:%d: no audio file %s.* for utterance %s in %s", tpath, lines[i].lineno,
                          lines[i].id, lines[i].id, dir);
done:
    free(lines);
    free(text);
    imb_strlist_free(&files);
    free(tpath);
    return rc;
}

int imb_librispeech_list(const char *root, const char *subset, imb_utt_list *out, uint64_t *fp, char *err,
                         size_t errn) {
    memset(out, 0, sizeof *out);
    if (!*subset || strchr(subset, '/') || strcmp(subset, ".") == 0 || strcmp(subset, "..") == 0)
        return imb_errf(err, errn, "%s: bad LibriSpeech subset name '%s'", root, subset);
    char *dir = imb_path_join(root, subset);
    if (dir && !imb_is_dir(dir)) {
        char *alt = imb_path_join(root, "LibriSpeech");
        char *alt2 = alt ? imb_path_join(alt, subset) : NULL;
        free(alt);
        if (alt2 && imb_is_dir(alt2)) {
            free(dir);
            dir = alt2;
        } else {
            free(alt2);
            free(dir);
            return imb_errf(err, errn, "%s: no LibriSpeech subset '%s' (neither %s/%s nor %s/LibriSpeech/%s is a folder)",
                            root, subset, root, subset, root, subset);
        }
    }
    if (!dir) return imb_errf(err, errn, "%s: out of memory", root);
    imb_strlist spks;
    int rc = imb_dir_list(dir, IMB_LIST_DIRS, &spks, err, errn);
    for (int s = 0; rc == 0 && s < spks.n; s++) {
        char *sdir = imb_path_join(dir, spks.s[s]);
        imb_strlist chaps = {0};
        if (!sdir) rc = imb_errf(err, errn, "%s: out of memory", dir);
        else rc = imb_dir_list(sdir, IMB_LIST_DIRS, &chaps, err, errn);
        if (rc == 0 && chaps.n == 0) rc = imb_errf(err, errn, "%s: speaker folder without chapter folders", sdir);
        for (int c = 0; rc == 0 && c < chaps.n; c++) {
            char *cdir = imb_path_join(sdir, chaps.s[c]);
            rc = cdir ? read_chapter(cdir, spks.s[s], chaps.s[c], out, fp, err, errn)
                      : imb_errf(err, errn, "%s: out of memory", sdir);
            free(cdir);
        }
        imb_strlist_free(&chaps);
        free(sdir);
    }
    if (rc == 0 && out->n == 0) rc = imb_errf(err, errn, "%s: no utterances (expected <speaker>/<chapter>/ folders)", dir);
    imb_strlist_free(&spks);
    free(dir);
    if (rc) imb_utt_list_free(out);
    return rc;
}
