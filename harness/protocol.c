/* Protocols: the key table, INI loading (inih), overrides, checks and the canonical hash. */
#include "protocol.h"
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define F(m) .offset = offsetof(imb_protocol, m), .size = sizeof(((imb_protocol *)0)->m)
#define INF HUGE_VAL

static const imb_pkey keys[] = {
    { "train", "optimizer", IMB_PT_STR, "adamw", 0, 0, "adamw", NULL,
      "optimizer (AdamW with decoupled weight decay)", F(train.optimizer) },
    { "train", "schedule", IMB_PT_STR, "cosine", 0, 0, "cosine|constant", NULL,
      "learning-rate schedule after warmup", F(train.schedule) },
    { "train", "lr", IMB_PT_FLOAT, "0.001", 0, 10, NULL, NULL, "peak learning rate", F(train.lr) },
    { "train", "min_lr", IMB_PT_FLOAT, "0", 0, 10, NULL, NULL, "learning rate at the end of the cosine", F(train.min_lr) },
    { "train", "weight_decay", IMB_PT_FLOAT, "0", 0, 10, NULL, NULL,
      "decoupled weight decay (parameters declared with decay only)", F(train.weight_decay) },
    { "train", "beta1", IMB_PT_FLOAT, "0.9", 0, 1, NULL, NULL, "AdamW beta1", F(train.beta1) },
    { "train", "beta2", IMB_PT_FLOAT, "0.999", 0, 1, NULL, NULL, "AdamW beta2", F(train.beta2) },
    { "train", "eps", IMB_PT_FLOAT, "1e-08", 0, 1, NULL, NULL, "AdamW epsilon", F(train.eps) },
    { "train", "warmup_steps", IMB_PT_INT, "0", 0, INF, NULL, "train.warmup_epochs",
      "linear warmup length in steps", F(train.warmup_steps) },
    { "train", "warmup_epochs", IMB_PT_FLOAT, NULL, 0, INF, NULL, "train.warmup_steps",
      "linear warmup length in epochs (instead of warmup_steps)", F(train.warmup_epochs) },
    { "train", "epochs", IMB_PT_INT, NULL, 1, INF, NULL, "train.steps", "run length in epochs", F(train.epochs) },
    { "train", "steps", IMB_PT_INT, NULL, 1, INF, NULL, "train.epochs",
      "run length in optimizer steps (instead of epochs)", F(train.steps) },
    { "train", "batch", IMB_PT_INT, "128", 1, INF, NULL, NULL, "global batch size (samples per step)", F(train.batch) },
    { "train", "label_smoothing", IMB_PT_FLOAT, "0", 0, 1, NULL, NULL, "label smoothing of the cross-entropy",
      F(train.label_smoothing) },
    { "train", "clip_grad", IMB_PT_FLOAT, "0", 0, INF, NULL, NULL, "global gradient-norm clip; 0: off", F(train.clip_grad) },
    { "train", "seed", IMB_PT_INT, "0", 0, INF, NULL, NULL, "seed of initialisation, data order and augmentation",
      F(train.seed) },
    { "train", "eval_interval", IMB_PT_INT, "0", 0, INF, NULL, NULL,
      "steps between evaluations; 0: at the end of every epoch", F(train.eval_interval) },
    { "train", "ckpt_interval", IMB_PT_INT, "0", 0, INF, NULL, NULL,
      "steps between checkpoints; 0: every epoch (not hashed: resuming is exact)", F(train.ckpt_interval), .unhashed = 1 },

    { "data", "train_split", IMB_PT_STR, "", 0, 0, NULL, NULL, "split trained on (speech: subsets joined by +); empty: the task's",
      F(data.train_split) },
    { "data", "val_split", IMB_PT_STR, "", 0, 0, NULL, NULL,
      "split evaluated on (speech: comma-separated sets, each reported); empty: the task's", F(data.val_split) },
    { "data", "input_size", IMB_PT_INT, "224", 1, 65536, NULL, NULL, "square input resolution in pixels",
      F(data.input_size) },
    { "data", "channels", IMB_PT_INT, "3", 1, IMB_PROTOCOL_MAX_LIST, NULL, NULL, "input channels", F(data.channels) },
    { "data", "crop_pct", IMB_PT_FLOAT, "0.875", 0.01, 1, NULL, NULL, "eval centre crop: resize to input_size / crop_pct",
      F(data.crop_pct) },
    { "data", "augment", IMB_PT_INT, "0", 0, 9, NULL, NULL, "training augmentation level; 0: none", F(data.augment) },
    { "data", "mean", IMB_PT_FLOATS, "0.485,0.456,0.406", -1e6, 1e6, NULL, NULL,
      "per-channel normalisation mean (pixels in [0, 1])", F(data.mean) },
    { "data", "std", IMB_PT_FLOATS, "0.229,0.224,0.225", 1e-9, 1e6, NULL, NULL, "per-channel normalisation std",
      F(data.std) },
    { "data", "patch_size", IMB_PT_INT, "16", 1, 65536, NULL, NULL, "patch-embedding stride of the backbone stem",
      F(data.patch_size) },
    { "data", "loader_threads", IMB_PT_INT, "2", 0, 256, NULL, NULL, "decode/augment threads; 0: inline (not hashed)",
      F(data.loader_threads), .unhashed = 1 },
    { "data", "store_size", IMB_PT_INT, "0", 0, 65536, NULL, NULL,
      "shorter-side cap of images in the prepared shard cache; 0: original sizes", F(data.store_size) },
    { "data", "synth_train", IMB_PT_INT, "512", 1, 10000000, NULL, NULL, "training images of the generated dataset (--synth)",
      F(data.synth_train) },
    { "data", "synth_val", IMB_PT_INT, "128", 1, 10000000, NULL, NULL, "validation images of the generated dataset (--synth)",
      F(data.synth_val) },
    /* text keys have no table default, so image recipes hash as before; unset, text tasks use
     * the documented values */
    { "data", "max_len", IMB_PT_INT, NULL, 1, 65536, NULL, NULL,
      "text: tokens kept per sample, the first ones (unset: 512)", F(data.max_len) },
    { "data", "vocab_size", IMB_PT_INT, NULL, 257, 1048576, NULL, NULL,
      "text: BPE vocabulary learned on the training split; 257 = bytes only (unset: 8192)", F(data.vocab_size) },
    { "data", "bucket", IMB_PT_INT, "50", 0, 1000000, NULL, NULL,
      "speech, text: sort runs of bucket x batch shuffled samples by length into batches (less padding); 0: off",
      F(data.bucket) },
    { "data", "specaug_freq_masks", IMB_PT_INT, "2", 0, 16, NULL, NULL,
      "speech, augment >= 1: SpecAugment frequency masks per utterance", F(data.specaug_freq_masks) },
    { "data", "specaug_freq_width", IMB_PT_INT, "27", 0, 80, NULL, NULL,
      "speech: widest frequency mask in mel bins (each drawn from 0..width)", F(data.specaug_freq_width) },
    { "data", "specaug_time_masks", IMB_PT_INT, "2", 0, 64, NULL, NULL, "speech: SpecAugment time masks per utterance",
      F(data.specaug_time_masks) },
    { "data", "specaug_time_ratio", IMB_PT_FLOAT, "0.05", 0, 1, NULL, NULL,
      "speech: widest time mask as a fraction of the utterance's frames", F(data.specaug_time_ratio) },

    { "model", "preset", IMB_PT_STR, "", 0, 0, NULL, NULL, "default backbone preset when the command line names none",
      F(model.preset) },
    { "model", "drop_path", IMB_PT_FLOAT, "0", 0, 1, NULL, NULL, "stochastic depth rate", F(model.drop_path) },
    { "model", "dropout", IMB_PT_FLOAT, "0", 0, 1, NULL, NULL, "dropout rate", F(model.dropout) },

    { "ctc", "stem_channels", IMB_PT_INT, NULL, 1, 4096, NULL, NULL,
      "channels of the speech stem's two 3x3 stride-2 convs (unset: 256)", F(ctc.stem_channels) },
    { "ctc", "causal", IMB_PT_INT, NULL, 0, 1, NULL, NULL, "1: causal (streaming) backbone, 0: bidirectional (unset: 0)",
      F(ctc.causal) },
    { "ctc", "decode", IMB_PT_STR, NULL, 0, 0, "greedy|beam", NULL,
      "evaluation decoder: best path or prefix beam search (unset: beam)", F(ctc.decode) },
    { "ctc", "beam_width", IMB_PT_INT, NULL, 1, 4096, NULL, NULL, "prefix beam search width (unset: 10)", F(ctc.beam_width) },
    { "ctc", "zero_infinity", IMB_PT_INT, NULL, 0, 1, NULL, NULL,
      "1: infinite CTC losses (transcript too long for the audio) count 0 and are reported (unset: 1)",
      F(ctc.zero_infinity) },

    { "protocol", "name", IMB_PT_STR, "", 0, 0, NULL, NULL, "protocol name (default: the file's base name)", F(name) },
    { "protocol", "description", IMB_PT_STR, "", 0, 0, NULL, NULL, "one line about the recipe", F(description) },
    { "protocol", "pinned", IMB_PT_KEYS, "", 0, 0, NULL, NULL,
      "keys an on-protocol run may not change (comma-separated section.key)", F(pinned) },
};
#define NKEYS ((int)(sizeof keys / sizeof *keys))
_Static_assert(sizeof keys / sizeof *keys <= IMB_PROTOCOL_MAX_KEYS, "raise IMB_PROTOCOL_MAX_KEYS");

static const char *const sections[] = { "train", "data", "model", "ctc", "protocol" };
#define NSECTIONS 5

int imb_protocol_nkeys(void) { return NKEYS; }
const imb_pkey *imb_protocol_key(int i) { return i >= 0 && i < NKEYS ? &keys[i] : NULL; }

static int find_key(const char *section, const char *key) {
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section) && !strcmp(keys[i].key, key)) return i;
    return -1;
}

/* "train.lr" -> index; the split is at the first dot (keys have none). */
static int find_full(const char *full) {
    const char *dot = full ? strchr(full, '.') : NULL;
    if (!dot || (size_t)(dot - full) >= 16) return -1;
    char sec[16];
    memcpy(sec, full, (size_t)(dot - full));
    sec[dot - full] = 0;
    return find_key(sec, dot + 1);
}

const imb_pkey *imb_protocol_key_find(const char *full_key) {
    int i = find_full(full_key);
    return i < 0 ? NULL : &keys[i];
}

static int section_known(const char *s) {
    for (int i = 0; i < NSECTIONS; i++)
        if (!strcmp(sections[i], s)) return 1;
    return 0;
}

static int partner_of(int ki) { return keys[ki].exclusive ? find_full(keys[ki].exclusive) : -1; }

/* Appends to a bounded message; truncation is harmless (messages only). */
static void cat(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cat(char *buf, size_t n, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 1 >= n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, n - len, fmt, ap);
    va_end(ap);
}

static void list_section_keys(const char *section, char *buf, size_t n) {
    int first = 1;
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section)) {
            cat(buf, n, "%s%s", first ? "" : ", ", keys[i].key);
            first = 0;
        }
}

/* Shortest text that reads back to the same double, so equal values print alike;
 * whole numbers without an exponent ("10", not "1e+01"). */
static void fmt_double(double v, char *buf, size_t n) {
    if (v == floor(v) && fabs(v) < 1e15) { snprintf(buf, n, "%.0f", v); return; }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void fmt_range(const imb_pkey *k, char *buf, size_t n) {
    char lo[32], hi[32];
    fmt_double(k->lo, lo, sizeof lo);
    if (isinf(k->hi)) snprintf(buf, n, "[%s, inf)", lo);
    else { fmt_double(k->hi, hi, sizeof hi); snprintf(buf, n, "[%s, %s]", lo, hi); }
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static int in_range(const imb_pkey *k, double v, char *why, size_t whyn) {
    if (v >= k->lo && v <= k->hi) return 0;
    char r[80], t[32];
    fmt_range(k, r, sizeof r);
    fmt_double(v, t, sizeof t);
    snprintf(why, whyn, "%s is out of range %s", t, r);
    return -1;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    return s;
}

/* Parses val for key ki and stores it into p; p is untouched on failure. */
static int set_value(imb_protocol *p, int ki, const char *val, char *why, size_t whyn) {
    const imb_pkey *k = &keys[ki];
    char *field = (char *)p + k->offset;
    switch (k->type) {
    case IMB_PT_INT: {
        int64_t v;
        double d;
        if (parse_int(val, &v)) {
            if (!parse_double(val, &d)) snprintf(why, whyn, "'%s' is not an integer", val);
            else snprintf(why, whyn, "'%s' is not a number", val);
            return -1;
        }
        if (in_range(k, (double)v, why, whyn)) return -1;
        memcpy(field, &v, sizeof v);
        return 0;
    }
    case IMB_PT_FLOAT: {
        double v;
        if (parse_double(val, &v)) { snprintf(why, whyn, "'%s' is not a number", val); return -1; }
        if (in_range(k, v, why, whyn)) return -1;
        memcpy(field, &v, sizeof v);
        return 0;
    }
    case IMB_PT_STR: {
        if (strlen(val) >= k->size) {
            snprintf(why, whyn, "value longer than %zu characters", k->size - 1);
            return -1;
        }
        if (k->choices) {
            int ok = 0;
            size_t len = strlen(val);
            for (const char *c = k->choices; *c;) {
                const char *bar = strchr(c, '|');
                size_t cl = bar ? (size_t)(bar - c) : strlen(c);
                if (cl == len && !strncmp(c, val, cl)) ok = 1;
                c += cl + (bar != NULL);
            }
            if (!ok) {
                snprintf(why, whyn, "'%s' is not one of: ", val);
                for (const char *c = k->choices; *c; c++)
                    if (*c == '|') cat(why, whyn, ", ");
                    else cat(why, whyn, "%c", *c);
                return -1;
            }
        }
        memcpy(field, val, strlen(val) + 1);
        return 0;
    }
    case IMB_PT_FLOATS: {
        imb_floats fl = { 0, { 0 } };
        char buf[512];
        if (strlen(val) >= sizeof buf) { snprintf(why, whyn, "list too long"); return -1; }
        strcpy(buf, val);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            tok = trim(tok);
            if (fl.n == IMB_PROTOCOL_MAX_LIST) {
                snprintf(why, whyn, "more than %d values", IMB_PROTOCOL_MAX_LIST);
                return -1;
            }
            if (parse_double(tok, &fl.v[fl.n])) { snprintf(why, whyn, "'%s' is not a number", tok); return -1; }
            if (in_range(k, fl.v[fl.n], why, whyn)) return -1;
            fl.n++;
        }
        if (!fl.n) { snprintf(why, whyn, "empty list"); return -1; }
        memcpy(field, &fl, sizeof fl);
        return 0;
    }
    case IMB_PT_KEYS: {
        char buf[512], canon[512] = "";
        unsigned char mask[IMB_PROTOCOL_MAX_KEYS] = { 0 };
        if (strlen(val) >= sizeof buf) { snprintf(why, whyn, "list too long"); return -1; }
        strcpy(buf, val);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            tok = trim(tok);
            if (!*tok) continue;
            int i = find_full(tok);
            if (i < 0 || !strcmp(keys[i].section, "protocol")) {
                snprintf(why, whyn, "'%s' is not a key of [train], [data] or [model]", tok);
                return -1;
            }
            if (!mask[i]) cat(canon, sizeof canon, "%s%s", *canon ? "," : "", tok);
            mask[i] = 1;
        }
        if (strlen(canon) >= k->size) { snprintf(why, whyn, "list too long"); return -1; }
        memcpy(field, canon, strlen(canon) + 1);
        memcpy(p->is_pinned, mask, sizeof mask);
        return 0;
    }
    }
    return -1;
}

static void fmt_value(const imb_protocol *p, int ki, char *buf, size_t n) {
    const imb_pkey *k = &keys[ki];
    const char *field = (const char *)p + k->offset;
    buf[0] = 0;
    switch (k->type) {
    case IMB_PT_INT: {
        int64_t v;
        memcpy(&v, field, sizeof v);
        snprintf(buf, n, "%lld", (long long)v);
        break;
    }
    case IMB_PT_FLOAT: {
        double v;
        memcpy(&v, field, sizeof v);
        fmt_double(v, buf, n);
        break;
    }
    case IMB_PT_STR: case IMB_PT_KEYS: snprintf(buf, n, "%s", field); break;
    case IMB_PT_FLOATS: {
        const imb_floats *fl = (const imb_floats *)(const void *)field;
        for (int i = 0; i < fl->n; i++) {
            char t[32];
            fmt_double(fl->v[i], t, sizeof t);
            cat(buf, n, "%s%s", i ? "," : "", t);
        }
        break;
    }
    }
}

/* Given, or defaulted while its alternative is not given. */
static int has_value(const imb_protocol *p, int ki) {
    if (p->set[ki]) return 1;
    int q = partner_of(ki);
    return keys[ki].def && !(q >= 0 && p->set[q]);
}

imb_protocol *imb_protocol_new(void) {
    imb_protocol *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    char why[256];
    for (int i = 0; i < NKEYS; i++)
        if (keys[i].def && set_value(p, i, keys[i].def, why, sizeof why)) {
            /* a bad default is a bug in the table; the test suite loads defaults */
            free(p);
            return NULL;
        }
    return p;
}

void imb_protocol_free(imb_protocol *p) {
    if (!p) return;
    for (int i = 0; i < p->n_overrides; i++) free(p->overrides[i]);
    free(p->overrides);
    free(p);
}

/* ---- loading ---- */

typedef struct load_state {
    imb_protocol *p;
    const char *text;
    size_t pos, len;
    int line;           /* lines handed to inih so far = the line being parsed */
    int too_long;       /* line number of an over-long line */
    int max_chars;      /* longest line inih accepts */
    int err_line;
    char err[600];
} load_state;

/* Feeds inih one line at a time so the handler knows the line number (inih's own
 * counter is not passed to handlers in this build), and refuses over-long lines that
 * inih would otherwise split silently. */
static char *mem_reader(char *str, int num, void *stream) {
    load_state *st = stream;
    if (st->pos >= st->len || st->too_long) return NULL;
    const char *s = st->text + st->pos;
    const char *nl = memchr(s, '\n', st->len - st->pos);
    size_t l = nl ? (size_t)(nl - s) + 1 : st->len - st->pos;
    st->line++;
    st->max_chars = num - 2;   /* room for the newline and the NUL */
    if (l + 1 > (size_t)num) { st->too_long = st->line; return NULL; }
    memcpy(str, s, l);
    str[l] = 0;
    st->pos += l;
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
    load_state *st = user;
    imb_protocol *p = st->p;
    if (st->err[0]) return 1;   /* keep the first error only */
    char why[400] = "";
    int ki;
    if (!*section) {
        snprintf(st->err, sizeof st->err, "key '%s' outside any [section]", name);
        goto fail;
    }
    if (!section_known(section)) {
        snprintf(st->err, sizeof st->err, "unknown section [%s]; valid sections: train, data, model, ctc, protocol", section);
        goto fail;
    }
    ki = find_key(section, name);
    if (ki < 0) {
        snprintf(st->err, sizeof st->err, "unknown key '%s' in [%s]; valid keys: ", name, section);
        list_section_keys(section, st->err, sizeof st->err);
        goto fail;
    }
    if (p->set[ki]) {
        snprintf(st->err, sizeof st->err, "%s.%s given twice", section, name);
        goto fail;
    }
    int q = partner_of(ki);
    if (q >= 0 && p->set[q]) {
        snprintf(st->err, sizeof st->err, "%s.%s and %s are alternatives; give one", section, name, keys[ki].exclusive);
        goto fail;
    }
    if (set_value(p, ki, value, why, sizeof why)) {
        snprintf(st->err, sizeof st->err, "%s.%s: %s", section, name, why);
        goto fail;
    }
    p->set[ki] = 1;
    return 1;
fail:
    st->err_line = st->line;
    return 0;
}

static void line_text(const char *text, size_t len, int line, char *buf, size_t n) {
    size_t pos = 0;
    for (int l = 1; l < line && pos < len; l++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        pos = nl ? (size_t)(nl - text) + 1 : len;
    }
    size_t e = pos;
    while (e < len && text[e] != '\n' && text[e] != '\r') e++;
    size_t l = e - pos < n - 1 ? e - pos : n - 1;
    memcpy(buf, text + pos, l);
    buf[l] = 0;
    if (l > 60) strcpy(buf + 57, "...");
}

static void base_name(const char *label, char *out, size_t n) {
    const char *b = strrchr(label, '/');
    b = b ? b + 1 : label;
    size_t l = strlen(b);
    if (l > 4 && !strcmp(b + l - 4, ".ini")) l -= 4;
    if (l >= n) l = n - 1;
    memcpy(out, b, l);
    out[l] = 0;
}

static imb_protocol *load_text(const char *text, size_t len, const char *label, char *err, size_t errn) {
    imb_protocol *p = imb_protocol_new();
    if (!p) { snprintf(err, errn, "%s: out of memory", label); return NULL; }
    load_state st = { .p = p, .text = text, .len = len };
    int rc = ini_parse_stream(mem_reader, &st, handler, &st);
    if (rc > 0 && (!st.too_long || rc < st.too_long)) {
        if (st.err_line == rc) snprintf(err, errn, "%s:%d: %s", label, rc, st.err);
        else {
            char t[64];
            line_text(text, len, rc, t, sizeof t);
            snprintf(err, errn, "%s:%d: syntax error in '%s' (expected [section] or key = value)", label, rc, t);
        }
        goto fail;
    }
    if (st.too_long) {
        snprintf(err, errn, "%s:%d: line longer than %d characters", label, st.too_long, st.max_chars);
        goto fail;
    }
    if (rc) { snprintf(err, errn, "%s: parse failed (%d)", label, rc); goto fail; }
    if (!p->set[find_key("protocol", "name")]) base_name(label, p->name, sizeof p->name);
    char why[400];
    if (imb_protocol_check(p, why, sizeof why)) { snprintf(err, errn, "%s: %s", label, why); goto fail; }
    return p;
fail:
    imb_protocol_free(p);
    return NULL;
}

imb_protocol *imb_protocol_load_string(const char *text, const char *label, char *err, size_t errn) {
    return load_text(text, strlen(text), label ? label : "<string>", err, errn);
}

imb_protocol *imb_protocol_load(const char *path, char *err, size_t errn) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errn, "%s: %s", path, strerror(errno)); return NULL; }
    /* protocols are a few hundred bytes; the cap keeps a wrong path (a dataset) harmless */
    char *buf = malloc(1 << 20);
    size_t len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    int bad = !buf || ferror(f) || len == (1 << 20) - 1;
    fclose(f);
    if (bad) {
        snprintf(err, errn, "%s: %s", path, !buf ? "out of memory" : len ? "larger than 1 MiB, not a protocol" : "read error");
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    imb_protocol *p = load_text(buf, len, path, err, errn);
    free(buf);
    if (p) snprintf(p->path, sizeof p->path, "%s", path);
    return p;
}

/* ---- search path ---- */

static int search_dirs(const char **dirs) {
    int n = 0;
    const char *env = getenv("IMB_PROTOCOL_DIR");
    if (env && *env) dirs[n++] = env;
#ifdef IMB_PROTOCOL_SRCDIR
    dirs[n++] = IMB_PROTOCOL_SRCDIR;
#endif
#ifdef IMB_PROTOCOL_DATADIR
    dirs[n++] = IMB_PROTOCOL_DATADIR;
#endif
    return n;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int imb_protocol_list(char *out, size_t n) {
    const char *dirs[3];
    int nd = search_dirs(dirs), count = 0, cap = 0;
    char **names = NULL;
    if (n) out[0] = 0;
    for (int d = 0; d < nd; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) continue;
        for (struct dirent *e; (e = readdir(dir));) {
            size_t l = strlen(e->d_name);
            if (l <= 4 || strcmp(e->d_name + l - 4, ".ini")) continue;
            int dup = 0;
            for (int i = 0; i < count; i++)
                if (strlen(names[i]) == l - 4 && !strncmp(names[i], e->d_name, l - 4)) dup = 1;
            if (dup) continue;
            if (count == cap) {
                int nc = cap ? 2 * cap : 16;
                char **nn = realloc(names, sizeof *nn * (size_t)nc);
                if (!nn) break;
                names = nn;
                cap = nc;
            }
            if (!(names[count] = strndup(e->d_name, l - 4))) break;
            count++;
        }
        closedir(dir);
    }
    if (count) qsort(names, (size_t)count, sizeof *names, cmp_str);
    for (int i = 0; i < count; i++) {
        if (n) cat(out, n, "%s%s", i ? ", " : "", names[i]);
        free(names[i]);
    }
    free(names);
    return count;
}

imb_protocol *imb_protocol_open(const char *name, char *err, size_t errn) {
    size_t l = strlen(name);
    if (strchr(name, '/') || (l > 4 && !strcmp(name + l - 4, ".ini"))) return imb_protocol_load(name, err, errn);
    const char *dirs[3];
    int nd = search_dirs(dirs);
    for (int d = 0; d < nd; d++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.ini", dirs[d], name);
        FILE *f = fopen(path, "rb");
        if (f) { fclose(f); return imb_protocol_load(path, err, errn); }
    }
    char avail[400];
    int k = imb_protocol_list(avail, sizeof avail);
    snprintf(err, errn, "unknown protocol '%s'; available: %s", name, k ? avail : "none found (set IMB_PROTOCOL_DIR)");
    return NULL;
}

/* ---- overrides and checks ---- */

static void record_override(imb_protocol *p, char *rec, int ki, int drop_ki) {
    char pre[64], dpre[64] = "";
    snprintf(pre, sizeof pre, "%s.%s=", keys[ki].section, keys[ki].key);
    if (drop_ki >= 0) snprintf(dpre, sizeof dpre, "%s.%s=", keys[drop_ki].section, keys[drop_ki].key);
    int w = 0, placed = 0;
    for (int i = 0; i < p->n_overrides; i++) {
        char *o = p->overrides[i];
        if (!strncmp(o, pre, strlen(pre))) {
            free(o);
            if (!placed) { p->overrides[w++] = rec; placed = 1; }
        } else if (*dpre && !strncmp(o, dpre, strlen(dpre))) {
            free(o);   /* its value no longer applies */
        } else p->overrides[w++] = o;
    }
    if (!placed) p->overrides[w++] = rec;
    p->n_overrides = w;
}

int imb_protocol_override(imb_protocol *p, const char *assignment, char *err, size_t errn) {
    char buf[600];
    if (strlen(assignment) >= sizeof buf) { snprintf(err, errn, "override too long"); return -1; }
    strcpy(buf, assignment);
    char *eq = strchr(buf, '=');
    if (!eq) { snprintf(err, errn, "override '%s': expected section.key=value", assignment); return -1; }
    *eq = 0;
    char *key = trim(buf), *val = trim(eq + 1);
    int ki = -1;
    char *dot = strchr(key, '.');
    if (dot) {
        *dot = 0;
        if (!strcmp(key, "protocol")) {
            snprintf(err, errn, "override '%s': [protocol] keys cannot be overridden", assignment);
            return -1;
        }
        if (!section_known(key)) {
            snprintf(err, errn, "override '%s': unknown section '%s'; valid sections: train, data, model, ctc", assignment, key);
            return -1;
        }
        ki = find_key(key, dot + 1);
        if (ki < 0) {
            snprintf(err, errn, "override '%s': unknown key '%s' in [%s]; valid keys: ", assignment, dot + 1, key);
            list_section_keys(key, err, errn);
            return -1;
        }
    } else {
        int hits = 0;
        for (int i = 0; i < NKEYS; i++)
            if (strcmp(keys[i].section, "protocol") && !strcmp(keys[i].key, key)) { ki = i; hits++; }
        if (hits != 1) {
            snprintf(err, errn, "override '%s': %s key '%s'; valid keys: ", assignment, hits ? "ambiguous" : "unknown", key);
            for (int i = 0, first = 1; i < NKEYS; i++)
                if (strcmp(keys[i].section, "protocol")) {
                    cat(err, errn, "%s%s.%s", first ? "" : ", ", keys[i].section, keys[i].key);
                    first = 0;
                }
            return -1;
        }
    }
    const imb_pkey *k = &keys[ki];
    imb_protocol tmp = *p;
    char why[400], before[600] = "", after[600];
    int had = has_value(p, ki);
    if (had) fmt_value(p, ki, before, sizeof before);
    if (set_value(&tmp, ki, val, why, sizeof why)) {
        snprintf(err, errn, "override '%s': %s.%s: %s", assignment, k->section, k->key, why);
        return -1;
    }
    fmt_value(&tmp, ki, after, sizeof after);
    int q = partner_of(ki), replaced = q >= 0 && p->set[q];
    if (replaced) {
        tmp.set[q] = 0;
        memset((char *)&tmp + keys[q].offset, 0, keys[q].size);
    }
    tmp.set[ki] = 1;
    size_t rl = strlen(k->section) + strlen(k->key) + strlen(after) + 3;
    char *rec = malloc(rl);
    char **grown = realloc(p->overrides, sizeof *grown * (size_t)(p->n_overrides + 1));
    if (!rec || !grown) {
        free(rec);
        if (grown) p->overrides = grown;
        snprintf(err, errn, "override '%s': out of memory", assignment);
        return -1;
    }
    snprintf(rec, rl, "%s.%s=%s", k->section, k->key, after);
    int changed = !had || strcmp(before, after) || replaced;
    if (changed && (p->is_pinned[ki] || (replaced && p->is_pinned[q]))) tmp.off_protocol = 1;
    tmp.overrides = grown;
    *p = tmp;
    record_override(p, rec, ki, replaced ? q : -1);
    return 0;
}

int imb_protocol_check(const imb_protocol *p, char *err, size_t errn) {
    int ep = find_key("train", "epochs"), st = find_key("train", "steps");
    if (!p->set[ep] && !p->set[st]) { snprintf(err, errn, "set train.epochs or train.steps"); return -1; }
    if (p->data.mean.n != p->data.channels || p->data.std.n != p->data.channels) {
        snprintf(err, errn, "data.mean and data.std need one value per channel (data.channels = %lld; mean has %d, std %d)",
                 (long long)p->data.channels, p->data.mean.n, p->data.std.n);
        return -1;
    }
    if (p->train.min_lr > p->train.lr) { snprintf(err, errn, "train.min_lr is above train.lr"); return -1; }
    /* warmup longer than the run is allowed (a short smoke run of a long recipe): the
     * schedule then simply never reaches its peak */
    return 0;
}

/* ---- queries, hash, output ---- */

int imb_protocol_is_set(const imb_protocol *p, const char *full_key) {
    int i = find_full(full_key);
    return i >= 0 && p->set[i];
}

int imb_protocol_get(const imb_protocol *p, const char *full_key, char *buf, size_t n) {
    int i = find_full(full_key);
    if (i < 0 || !has_value(p, i)) return -1;
    fmt_value(p, i, buf, n);
    return 0;
}

static int cmp_full(const void *a, const void *b) {
    const imb_pkey *x = &keys[*(const int *)a], *y = &keys[*(const int *)b];
    char fx[64], fy[64];
    snprintf(fx, sizeof fx, "%s.%s", x->section, x->key);
    snprintf(fy, sizeof fy, "%s.%s", y->section, y->key);
    return strcmp(fx, fy);
}

size_t imb_protocol_canonical(const imb_protocol *p, char *buf, size_t n) {
    int idx[NKEYS], m = 0;
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].section, "protocol") && !keys[i].unhashed && has_value(p, i)) idx[m++] = i;
    qsort(idx, (size_t)m, sizeof *idx, cmp_full);
    size_t total = 0;
    if (n) buf[0] = 0;
    for (int j = 0; j < m; j++) {
        char v[600], line[700];
        fmt_value(p, idx[j], v, sizeof v);
        int l = snprintf(line, sizeof line, "%s.%s=%s\n", keys[idx[j]].section, keys[idx[j]].key, v);
        if (n) cat(buf, n, "%s", line);
        total += (size_t)l;
    }
    return total;
}

void imb_protocol_hash(const imb_protocol *p, char out[IMB_PROTOCOL_HASH_LEN]) {
    size_t need = imb_protocol_canonical(p, NULL, 0) + 1;
    char *text = malloc(need);
    uint64_t h = 1469598103934665603ull;
    if (text) {
        imb_protocol_canonical(p, text, need);
        for (const unsigned char *s = (const unsigned char *)text; *s; s++) h = (h ^ *s) * 1099511628211ull;
        free(text);
    } else {
        h = 0;   /* only when out of memory; "0000..." cannot collide with a real FNV value in practice */
    }
    snprintf(out, IMB_PROTOCOL_HASH_LEN, "%016llx", (unsigned long long)h);
}

int imb_protocol_write(const imb_protocol *p, FILE *f) {
    for (int s = 0; s < NSECTIONS; s++) {
        fprintf(f, "%s[%s]\n", s ? "\n" : "", sections[s]);
        for (int i = 0; i < NKEYS; i++) {
            if (strcmp(keys[i].section, sections[s]) || !has_value(p, i)) continue;
            char v[600];
            fmt_value(p, i, v, sizeof v);
            if (!*v && keys[i].type != IMB_PT_STR) continue;
            fprintf(f, "%s = %s\n", keys[i].key, v);
        }
    }
    return ferror(f) ? -1 : 0;
}

void imb_protocol_print_keys(FILE *f) {
    static const char *tn[] = { "int", "float", "string", "floats", "keys" };
    for (int s = 0; s < NSECTIONS; s++) {
        fprintf(f, "[%s]\n", sections[s]);
        for (int i = 0; i < NKEYS; i++) {
            const imb_pkey *k = &keys[i];
            if (strcmp(k->section, sections[s])) continue;
            char full[64], extra[160] = "";
            snprintf(full, sizeof full, "%s.%s", k->section, k->key);
            if (k->choices) snprintf(extra, sizeof extra, " (%s)", k->choices);
            else if (k->type == IMB_PT_INT || k->type == IMB_PT_FLOAT || k->type == IMB_PT_FLOATS) {
                char r[80];
                fmt_range(k, r, sizeof r);
                snprintf(extra, sizeof extra, " %s", r);
            }
            if (k->exclusive) cat(extra, sizeof extra, "; or %s", k->exclusive);
            fprintf(f, "  %-22s %-6s %-18s %s%s\n", full, tn[k->type], !k->def ? "-" : *k->def ? k->def : "\"\"",
                    k->help, extra);
        }
    }
}

int64_t imb_protocol_total_steps(const imb_protocol *p, int64_t steps_per_epoch) {
    if (p->set[find_key("train", "steps")]) return p->train.steps;
    return p->train.epochs * steps_per_epoch;
}

int64_t imb_protocol_warmup_steps(const imb_protocol *p, int64_t steps_per_epoch) {
    if (p->set[find_key("train", "warmup_epochs")]) return (int64_t)llround(p->train.warmup_epochs * (double)steps_per_epoch);
    return p->train.warmup_steps;
}
