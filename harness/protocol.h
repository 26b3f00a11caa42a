/* Protocols: a task's fixed training recipe, read from harness/protocols/<name>.ini.
 *
 * Every key a protocol may hold is in one static table (imb_protocol_key), with its
 * type, default, range and help text; the loaded values live in typed fields of
 * imb_protocol (p->train.lr, p->data.input_size, ...), which start at the table's
 * defaults, so the fields are the typed getters. Files and overrides are checked
 * against the table: unknown sections or keys, numbers that do not parse, values out
 * of range are errors with the file, line and key.
 *
 * The protocol hash is FNV-1a 64 over the canonical text of the effective recipe:
 * one "section.key=value\n" line per key of [train], [data] and [model] that has a
 * value (given, or defaulted), sorted by key name, except execution settings that
 * cannot change results (data.loader_threads, train.ckpt_interval), with numbers in their shortest
 * round-trip form, whole numbers without exponent (so "1e-3" and "0.001" hash alike,
 * and so do a key left out and the same key given at its default). [protocol] (name, description, pinned) labels the
 * recipe and is not hashed. Printed as 16 lowercase hex digits. */
#ifndef IMB_PROTOCOL_H
#define IMB_PROTOCOL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IMB_PROTOCOL_MAX_KEYS 64   /* capacity of the per-key flag arrays (table size is checked) */
#define IMB_PROTOCOL_MAX_LIST 8    /* values in a float list (mean, std) */
#define IMB_PROTOCOL_HASH_LEN 17   /* 16 hex digits + NUL */

typedef enum {
    IMB_PT_INT,      /* int64_t */
    IMB_PT_FLOAT,    /* double */
    IMB_PT_STR,      /* char[], optionally one of a fixed set of choices */
    IMB_PT_FLOATS,   /* imb_floats: comma-separated numbers */
    IMB_PT_KEYS      /* char[]: comma-separated "section.key" names (protocol.pinned) */
} imb_ptype;

typedef struct imb_floats { int n; double v[IMB_PROTOCOL_MAX_LIST]; } imb_floats;

typedef struct imb_pkey {
    const char *section, *key;
    imb_ptype type;
    const char *def;        /* default as it would be written in the file; NULL: none */
    double lo, hi;          /* inclusive range of numbers (each element of a list) */
    const char *choices;    /* strings: "a|b|c" allowed values; NULL: any */
    const char *exclusive;  /* "section.key" of an alternative (epochs vs steps); NULL: none */
    const char *help;
    size_t offset, size;    /* of the field in imb_protocol */
    int unhashed;           /* an execution setting (threads), not part of the recipe */
} imb_pkey;

typedef struct imb_protocol {
    struct {
        char optimizer[16], schedule[16];
        double lr, min_lr, weight_decay, beta1, beta2, eps;
        int64_t warmup_steps;  double warmup_epochs;   /* one of the two */
        int64_t epochs, steps;                          /* one of the two */
        int64_t batch;
        double label_smoothing, clip_grad;
        int64_t seed, eval_interval, ckpt_interval;
    } train;
    struct {
        char train_split[128], val_split[128]; /* "": the task's own split names */
        int64_t input_size, channels;
        double crop_pct;
        int64_t augment;
        imb_floats mean, std;
        int64_t patch_size, loader_threads;
        int64_t store_size;                    /* shard cache shorter-side cap; 0: original sizes */
        int64_t synth_train, synth_val;        /* sizes of the generated dataset (--synth) */
        int64_t max_len, vocab_size;           /* text tasks; 0 when unset */
        int64_t bucket;                        /* speech: length-bucketing runs of bucket x batch utterances */
        int64_t specaug_freq_masks, specaug_freq_width, specaug_time_masks;   /* speech: SpecAugment */
        double specaug_time_ratio;
    } data;
    struct {
        char preset[64];
        double drop_path, dropout;
    } model;
    struct {                  /* CTC speech tasks; no defaults (unset keys are not hashed, so other
                               * tasks' protocols keep their hashes): the task fills them in */
        int64_t stem_channels, causal, beam_width, zero_infinity;
        char decode[16];
    } ctc;
    char name[64];            /* [protocol] name; defaults to the file's base name */
    char description[256];
    char pinned[512];         /* canonical comma-separated list */

    char path[1024];          /* the file it came from ("" when built from a string) */
    unsigned char set[IMB_PROTOCOL_MAX_KEYS];     /* by table index: given in the file or overridden */
    unsigned char is_pinned[IMB_PROTOCOL_MAX_KEYS];
    int off_protocol;         /* 1 once an override changed a pinned key */
    char **overrides;         /* "section.key=value" (canonical value), one per key, in order given */
    int n_overrides;
} imb_protocol;

/* The key table. */
int imb_protocol_nkeys(void);
const imb_pkey *imb_protocol_key(int i);
/* "train.lr" -> its entry, or NULL. */
const imb_pkey *imb_protocol_key_find(const char *full_key);
/* Every key with type, default and help, grouped by section (for --help and list). */
void imb_protocol_print_keys(FILE *f);

/* A protocol at the table's defaults (no length set, so imb_protocol_check fails until
 * train.epochs or train.steps is given). NULL when out of memory. */
imb_protocol *imb_protocol_new(void);
void imb_protocol_free(imb_protocol *p);
/* Loads and checks an INI file. NULL on failure with "<path>:<line>: <what>" in err. */
imb_protocol *imb_protocol_load(const char *path, char *err, size_t errn);
/* Same from text in memory; label names it in messages. */
imb_protocol *imb_protocol_load_string(const char *text, const char *label, char *err, size_t errn);
/* name_or_path: a path (contains '/' or ends in ".ini") is loaded as is; a bare name
 * is looked up as <dir>/<name>.ini in $IMB_PROTOCOL_DIR, the source tree's
 * harness/protocols and the installed $(pkgdatadir)/protocols, in that order. An
 * unknown name lists the protocols found. */
imb_protocol *imb_protocol_open(const char *name_or_path, char *err, size_t errn);
/* Names of the protocols in the search path (sorted, without ".ini"), into out as a
 * comma-separated list; returns how many. */
int imb_protocol_list(char *out, size_t n);

/* Applies "section.key=value" (or "key=value" when the key name is unique across
 * sections). The value is checked as in a file; the override is recorded (a later
 * override of the same key replaces the earlier record); off_protocol is set when the
 * value differs from the protocol's and the key, or the alternative it replaces
 * (train.steps for train.epochs), is pinned. [protocol] keys cannot be overridden.
 * Returns 0, or -1 with err set (an unknown key lists the valid keys of its section)
 * and p unchanged. Call imb_protocol_check after the last override. */
int imb_protocol_override(imb_protocol *p, const char *assignment, char *err, size_t errn);
/* Checks relations between keys (a run length is set, mean/std have one value per
 * channel, min_lr <= lr). 0 or -1 with err. A warmup longer than the run is allowed. */
int imb_protocol_check(const imb_protocol *p, char *err, size_t errn);

/* 1 when the key was given in the file or by an override; 0 when defaulted or unknown. */
int imb_protocol_is_set(const imb_protocol *p, const char *full_key);
/* Canonical text of one key's value ("0.001", "0.1307,0.3081"); -1 for an unknown key
 * or a key without a value. */
int imb_protocol_get(const imb_protocol *p, const char *full_key, char *buf, size_t n);
/* The canonical text that is hashed (see the top of this file); snprintf-style return. */
size_t imb_protocol_canonical(const imb_protocol *p, char *buf, size_t n);
void imb_protocol_hash(const imb_protocol *p, char out[IMB_PROTOCOL_HASH_LEN]);
/* The effective protocol as an INI file (every key with a value), loadable again. */
int imb_protocol_write(const imb_protocol *p, FILE *f);

/* Run length in optimizer steps: train.steps, or train.epochs * steps_per_epoch. */
int64_t imb_protocol_total_steps(const imb_protocol *p, int64_t steps_per_epoch);
/* Warmup in steps: train.warmup_steps, or round(train.warmup_epochs * steps_per_epoch). */
int64_t imb_protocol_warmup_steps(const imb_protocol *p, int64_t steps_per_epoch);
#endif
