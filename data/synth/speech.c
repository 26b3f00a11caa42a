/* Synthetic LibriSpeech tree spoken by the espeak-ng program: FLAC at 16 kHz + trans.txt per chapter. */
#include "audio.h"
#include "fileio.h"
#include "rng.h"
#include "synth/layouts.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sndfile.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Common English words, some with apostrophes; every character is in the CTC alphabet. */
static const char *const words[] = {
    "a", "about", "above", "across", "after", "again", "against", "all", "almost", "along", "also", "always", "am",
    "among", "an", "and", "animal", "another", "answer", "any", "are", "around", "as", "ask", "at", "away", "back",
    "be", "because", "been", "before", "began", "behind", "being", "below", "best", "better", "between", "big",
    "bird", "black", "blue", "boat", "body", "book", "both", "box", "boy", "bring", "brother", "brown", "build",
    "but", "by", "call", "came", "can", "can't", "car", "carry", "cat", "change", "child", "city", "close", "cold",
    "come", "could", "country", "cut", "dark", "day", "did", "didn't", "do", "does", "dog", "don't", "door", "down",
    "draw", "dream", "during", "each", "early", "earth", "eat", "end", "enough", "even", "evening", "ever", "every",
    "eye", "face", "fall", "family", "far", "farm", "fast", "father", "feel", "few", "field", "find", "fire",
    "first", "fish", "five", "food", "for", "forest", "four", "friend", "from", "full", "garden", "gave", "get",
    "girl", "give", "go", "gold", "good", "great", "green", "ground", "grow", "had", "half", "hand", "happy", "hard",
    "has", "have", "he", "head", "hear", "heart", "heavy", "help", "her", "here", "high", "hill", "him", "his",
    "hold", "home", "horse", "hot", "house", "how", "i", "i'm", "idea", "if", "in", "into", "is", "island", "it",
    "it's", "just", "keep", "kind", "king", "knew", "know", "lake", "land", "large", "last", "late", "laugh",
    "learn", "leave", "left", "let's", "letter", "life", "light", "like", "line", "listen", "little", "live",
    "long", "look", "made", "make", "man", "many", "may", "me", "mean", "men", "might", "mile", "mind", "money",
    "moon", "more", "morning", "most", "mother", "mountain", "move", "much", "music", "must", "my", "name", "near",
    "never", "new", "next", "night", "no", "north", "not", "nothing", "now", "number", "ocean", "of", "off",
    "often", "old", "on", "once", "one", "only", "open", "or", "other", "our", "out", "over", "own", "paper",
    "people", "picture", "place", "plant", "play", "please", "point", "queen", "question", "quick", "quiet",
    "rain", "read", "ready", "red", "river", "road", "rock", "room", "round", "run", "said", "same", "saw", "say",
    "school", "sea", "second", "see", "seem", "she", "she's", "ship", "short", "should", "show", "side", "simple",
    "sing", "sister", "sleep", "slow", "small", "snow", "so", "some", "song", "soon", "sound", "south", "speak",
    "spring", "stand", "star", "start", "stay", "still", "stone", "stop", "story", "street", "strong", "summer",
    "sun", "table", "take", "talk", "tell", "ten", "than", "that", "that's", "the", "their", "them", "then",
    "there", "these", "they", "they're", "thing", "think", "this", "those", "though", "three", "through", "time",
    "to", "today", "together", "told", "too", "took", "tree", "true", "try", "turn", "two", "under", "until", "up",
    "us", "use", "very", "voice", "walk", "want", "warm", "was", "watch", "water", "way", "we", "we're", "well",
    "went", "were", "what", "when", "where", "which", "while", "white", "who", "why", "will", "wind", "window",
    "winter", "with", "without", "woman", "won't", "wood", "word", "work", "world", "would", "write", "year",
    "yellow", "yes", "you", "you're", "young", "your"};
enum { NWORDS = sizeof words / sizeof *words, MIN_WORDS = 2, MAX_WORDS = 7, CHAPTERS = 2 };

/* A speaker: an espeak-ng voice with a variant (the "other" subsets use voices that are not in
 * the training set); speed and pitch are drawn per speaker. */
typedef struct voice {
    const char *name, *variant;
} voice;
static const voice clean_voices[] = {{"en-us", "m1"}, {"en-us", "f2"}, {"en-gb", "m3"}, {"en-gb", "f1"},
                                     {"en-us", "m5"}, {"en-gb-x-rp", "f4"}, {"en-us", "m7"}, {"en-029", "m2"}};
static const voice other_voices[] = {{"en-gb-scotland", "m4"}, {"en-us", "f3"}, {"en-gb-x-gbclan", "m6"},
                                     {"en-gb", "f5"}};
enum { NCLEAN = sizeof clean_voices / sizeof *clean_voices, NOTHER = sizeof other_voices / sizeof *other_voices };

typedef struct subset {
    const char *name;
    int other;          /* voices from other_voices */
    int id_base;        /* utterances draw their words from stream id_base + index */
} subset;
static const subset subsets[] = {{"train-clean-100", 0, 0},
                                 {"dev-clean", 0, 1000000},
                                 {"test-clean", 0, 2000000},
                                 {"dev-other", 1, 3000000},
                                 {"test-other", 1, 4000000}};

#define SPEAKER_TAG 0x73706b72ull

/* Writes the sentence of utterance stream `u` into text (lower case) and returns its length. */
static void sentence(uint64_t seed, uint64_t u, char *text, size_t n) {
    int nw = MIN_WORDS + (int)imb_rng_below(seed, u, 0, MAX_WORDS - MIN_WORDS + 1);
    size_t k = 0;
    text[0] = 0;
    for (int w = 0; w < nw; w++) {
        const char *word = words[imb_rng_below(seed, u, 1 + (uint64_t)w, NWORDS)];
        k += (size_t)snprintf(text + k, n - k, "%s%s", w ? " " : "", word);
    }
}

/* ---------------------------------------------------------------- resampling
 * espeak-ng speaks at 22050 Hz. The synth corpus must be byte-identical on every build, with or
 * without FFmpeg, so it resamples with its own polyphase windowed-sinc filter: for an in -> out
 * ratio reduced to up / down, phase p (of up) holds the taps for output samples that fall p / up
 * of the way between two input samples; low-pass at 95% of the output Nyquist frequency, Blackman
 * window over 16 zero crossings each side, taps normalised to unit DC gain. */
enum { ZEROS = 16 };

static long gcd(long a, long b) {
    while (b) {
        long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int resample(const float *x, int64_t n, int in_rate, int out_rate, float **out, int64_t *nout) {
    long g = gcd(in_rate, out_rate), up = out_rate / g, down = in_rate / g;
    int64_t m = n * up / down;
    float *y = malloc(sizeof *y * (size_t)(m > 0 ? m : 1));
    if (!y) return -1;
    if (up == 1 && down == 1) {
        memcpy(y, x, sizeof *y * (size_t)n);
        *out = y;
        *nout = n;
        return 0;
    }
    const double pi = 3.14159265358979323846;
    double fc = 0.5 * (up < down ? (double)up / down : 1.0) * 0.95;   /* cycles per input sample */
    int half = (int)ceil(ZEROS / (2.0 * fc)), taps = 2 * half + 1;
    float *h = malloc(sizeof *h * (size_t)up * (size_t)taps);
    if (!h) {
        free(y);
        return -1;
    }
    for (long p = 0; p < up; p++) {
        double frac = (double)p / up, sum = 0.0;
        for (int t = 0; t < taps; t++) {
            double d = (t - half) - frac;   /* input offset from the output position */
            double s = fabs(d) < 1e-12 ? 2 * fc : sin(2 * pi * fc * d) / (pi * d);
            double wpos = (d + half + 1) / (2.0 * half + 2);   /* (0, 1) across the support */
            double w = wpos <= 0 || wpos >= 1 ? 0 : 0.42 - 0.5 * cos(2 * pi * wpos) + 0.08 * cos(4 * pi * wpos);
            h[p * taps + t] = (float)(s * w);
            sum += s * w;
        }
        for (int t = 0; t < taps; t++) h[p * taps + t] = (float)(h[p * taps + t] / sum);   /* unit DC gain */
    }
    for (int64_t k = 0; k < m; k++) {
        int64_t num = k * down, base = num / up;
        long p = (long)(num % up);
        double acc = 0.0;
        for (int t = 0; t < taps; t++) {
            int64_t i = base + t - half;
            if (i >= 0 && i < n) acc += (double)h[p * taps + t] * x[i];
        }
        y[k] = (float)acc;
    }
    free(h);
    *out = y;
    *nout = m;
    return 0;
}

/* ---------------------------------------------------------------- espeak-ng */

/* Runs espeak-ng (no shell, so the text needs no quoting) to write wav. */
static int speak(const voice *v, int speed, int pitch, const char *text, const char *wav, char *err, size_t errn) {
    char vname[64], sp[16], pt[16];
    snprintf(vname, sizeof vname, "%s+%s", v->name, v->variant);
    snprintf(sp, sizeof sp, "%d", speed);
    snprintf(pt, sizeof pt, "%d", pitch);
    /* -z: no final sentence pause, so utterances end with the speech */
    char *argv[] = {"espeak-ng", "-z", "-v", vname, "-s", sp, "-p", pt, "-w", (char *)wav, "--", (char *)text, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "espeak-ng", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return imb_errf(err, errn, "--synth for librispeech needs espeak-ng (running it failed: %s)", strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return imb_errf(err, errn, "espeak-ng: wait: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return imb_errf(err, errn, "espeak-ng -v %s failed (status %d) on \"%s\"", vname, st, text);
    return 0;
}

/* espeak-ng's WAV -> 16 kHz FLAC at flac. */
static int convert(const char *wav, const char *flac, char *err, size_t errn) {
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(wav, SFM_READ, &info);
    if (!sf) return imb_errf(err, errn, "%s: espeak-ng output unreadable: %s", wav, sf_strerror(NULL));
    int rc = 0;
    float *x = NULL, *y = NULL;
    int64_t ny = 0;
    if (info.channels != 1 || info.frames < 1 || info.frames > 16000 * 600 || info.samplerate < 8000)
        rc = imb_errf(err, errn, "%s: unexpected espeak-ng output: %d channels, %lld samples at %d Hz", wav, info.channels,
                      (long long)info.frames, info.samplerate);
    else if (!(x = malloc(sizeof *x * (size_t)info.frames)))
        rc = imb_errf(err, errn, "%s: out of memory", wav);
    else if (sf_readf_float(sf, x, info.frames) != info.frames)
        rc = imb_errf(err, errn, "%s: short read", wav);
    sf_close(sf);
    if (rc == 0) {
        for (int64_t i = 0; i < info.frames; i++) x[i] *= 32768.0f;
        if (resample(x, info.frames, info.samplerate, IMB_AUDIO_RATE, &y, &ny) != 0)
            rc = imb_errf(err, errn, "%s: out of memory", wav);
    }
    if (rc == 0) rc = imb_audio_write_flac(flac, y, ny, IMB_AUDIO_RATE, err, errn);
    free(x);
    free(y);
    return rc;
}

static int have_espeak(void) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char *p = imb_strdup(path), *save = NULL;
    int found = 0;
    for (char *d = p ? strtok_r(p, ":", &save) : NULL; d && !found; d = strtok_r(NULL, ":", &save)) {
        char *f = imb_path_join(*d ? d : ".", "espeak-ng");
        found = f && access(f, X_OK) == 0;
        free(f);
    }
    free(p);
    return found;
}

/* One subset: n utterances spread over its speakers (round robin) and their CHAPTERS chapters. */
static int write_subset(const char *root, const subset *ss, int n, uint64_t seed, char *err, size_t errn) {
    const voice *vs = ss->other ? other_voices : clean_voices;
    int nv = ss->other ? NOTHER : NCLEAN;
    char dir[4096], path[4200], tmp[4300];
    int rc = 0;
    /* each utterance's name, text and voice are pure functions of (seed, subset, index), so
     * the utterances can be spoken in parallel */
#pragma omp parallel for schedule(dynamic, 1) private(dir, path, tmp)
    for (int j = 0; j < n; j++) {
        int bad;
#pragma omp atomic read
        bad = rc;
        if (bad) continue;
        int s = j % nv, chap = (j / nv) % CHAPTERS, utt = j / (nv * CHAPTERS);
        int spk = (ss->other ? 700 : 100) + s * 7;
        uint64_t sstream = imb_hash64(SPEAKER_TAG + (uint64_t)spk);
        int speed = 150 + (int)imb_rng_below(seed, sstream, 0, 41), pitch = 35 + (int)imb_rng_below(seed, sstream, 1, 31);
        char text[256], e[1024] = "";
        sentence(seed, (uint64_t)(ss->id_base + j), text, sizeof text);
        snprintf(dir, sizeof dir, "%s/LibriSpeech/%s/%d/%d", root, ss->name, spk, spk * 10 + chap);
        snprintf(path, sizeof path, "%s/%d-%d-%04d.flac", dir, spk, spk * 10 + chap, utt);
        snprintf(tmp, sizeof tmp, "%s.espeak.wav", path);
        int r = imb_mkdirs(dir, e, sizeof e);
        if (r == 0) r = speak(&vs[s], speed, pitch, text, tmp, e, sizeof e);
        if (r == 0) r = convert(tmp, path, e, sizeof e);
        unlink(tmp);
        if (r != 0) {
#pragma omp critical(imb_synth_speech_err)
            if (!rc) {
                rc = -1;
                imb_errf(err, errn, "%s", e);
            }
        }
    }
    if (rc) return -1;
    /* transcripts, one file per chapter, utterances in order */
    for (int s = 0; s < nv && rc == 0; s++)
        for (int c = 0; c < CHAPTERS && rc == 0; c++) {
            int spk = (ss->other ? 700 : 100) + s * 7, chap = spk * 10 + c;
            size_t cap = 4096, len = 0;
            char *buf = malloc(cap);
            if (!buf) return imb_errf(err, errn, "%s: out of memory", root);
            buf[0] = 0;
            for (int j = s + nv * c; j < n; j += nv * CHAPTERS) {
                char text[256], line[320];
                sentence(seed, (uint64_t)(ss->id_base + j), text, sizeof text);
                for (char *q = text; *q; q++)
                    if (*q >= 'a' && *q <= 'z') *q = (char)(*q - 'a' + 'A');
                int k = snprintf(line, sizeof line, "%d-%d-%04d %s\n", spk, chap, j / (nv * CHAPTERS), text);
                if (len + (size_t)k + 1 > cap) {
                    char *nb = realloc(buf, cap = 2 * (len + (size_t)k + 1));
                    if (!nb) {
                        free(buf);
                        return imb_errf(err, errn, "%s: out of memory", root);
                    }
                    buf = nb;
                }
                memcpy(buf + len, line, (size_t)k + 1);
                len += (size_t)k;
            }
            if (len > 0) {
                snprintf(path, sizeof path, "%s/LibriSpeech/%s/%d/%d/%d-%d.trans.txt", root, ss->name, spk, chap, spk, chap);
                rc = imb_file_write(path, buf, len, err, errn);
            }
            free(buf);
        }
    return rc;
}

int imb_synth_write_librispeech(const char *root, int ntrain, int nval, uint64_t seed, char *err, size_t errn) {
    if (!have_espeak()) return imb_errf(err, errn, "--synth for librispeech needs espeak-ng (not found on PATH; Debian: "
                                        "apt-get install espeak-ng)");
    if (ntrain < 1 || nval < 1)
        return imb_errf(err, errn, "%s: librispeech synth needs at least 1 train and 1 eval utterance (got %d, %d)", root,
                        ntrain, nval);
    for (size_t k = 0; k < sizeof subsets / sizeof *subsets; k++)
        if (write_subset(root, &subsets[k], k == 0 ? ntrain : nval, seed, err, errn) != 0) return -1;
    return 0;
}
