/* Harness infrastructure tests: protocols, run records, checkpoints, progress display. */
#include "checkpoint.h"
#include "ctx.h"
#include "mem.h"
#include "progress.h"
#include "protocol.h"
#include "record.h"
#include "checkrun.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef IMB_TEST_SRCDIR
#define IMB_TEST_SRCDIR "."
#endif

#define ASSERT_HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)) != NULL, "'%s' not in: %s", (needle), (hay))

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/imb_test_harness_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (remove(p)) rmdir(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

static imb_protocol *load_str(const char *text, char *err, size_t errn) {
    return imb_protocol_load_string(text, "t.ini", err, errn);
}

/* ------------------------------------------------------------------ protocols */

START_TEST(protocol_shipped_files_load) {
    char err[1024] = "", path[600];
    snprintf(path, sizeof path, "%s/harness/protocols/mnist.ini", IMB_TEST_SRCDIR);
    imb_protocol *p = imb_protocol_load(path, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_str_eq(p->name, "mnist");
    ck_assert_str_eq(p->train.optimizer, "adamw");
    ck_assert_double_eq_tol(p->train.lr, 2e-3, 1e-12);
    ck_assert_int_eq(p->train.batch, 128);
    ck_assert_int_eq(p->data.input_size, 28);
    ck_assert_int_eq(p->data.channels, 1);
    ck_assert_int_eq(p->data.patch_size, 7);
    ck_assert_int_eq(p->data.mean.n, 1);
    ck_assert_double_eq_tol(p->data.mean.v[0], 0.1307, 1e-12);
    ck_assert_double_eq_tol(p->data.std.v[0], 0.3081, 1e-12);
    ck_assert_int_eq(imb_protocol_is_set(p, "train.epochs"), 1);
    ck_assert_int_eq(imb_protocol_is_set(p, "train.steps"), 0);
    ck_assert_int_eq(imb_protocol_total_steps(p, 469), p->train.epochs * 469);
    ck_assert_int_eq(imb_protocol_warmup_steps(p, 469), (int64_t)(p->train.warmup_epochs * 469 + 0.5));   /* warmup in epochs */
    ck_assert_int_eq(p->is_pinned[imb_protocol_key_find("train.lr") - imb_protocol_key(0)], 1);
    ck_assert_int_eq(p->is_pinned[imb_protocol_key_find("train.weight_decay") - imb_protocol_key(0)], 0);
    ck_assert_int_eq(p->off_protocol, 0);
    ck_assert_int_eq(p->n_overrides, 0);
    imb_protocol_free(p);

    /* by name through the search path */
    p = imb_protocol_open("synth", err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_str_eq(p->name, "synth");
    ck_assert_int_eq(imb_protocol_total_steps(p, 1000), p->train.steps);
    /* defaults fill what the file leaves out */
    ck_assert_double_eq_tol(p->train.beta2, 0.999, 1e-12);
    ck_assert_int_eq(p->data.mean.n, 3);
    ck_assert_str_eq(p->data.val_split, "");   /* the task's own split */
    imb_protocol_free(p);

    ck_assert_ptr_null(imb_protocol_open("no-such-protocol", err, sizeof err));
    ASSERT_HAS(err, "unknown protocol 'no-such-protocol'");
    ASSERT_HAS(err, "mnist");
    ASSERT_HAS(err, "synth");
}
END_TEST

START_TEST(protocol_errors_name_line_and_key) {
    char err[1024] = "";
    ck_assert_ptr_null(load_str("[train]\nsteps = 10\nthis line is not ini\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:3: syntax error");
    ASSERT_HAS(err, "this line is not ini");

    ck_assert_ptr_null(load_str("; c\n[train]\nsteps = 10\n[data\nx=1\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:4: syntax error");

    ck_assert_ptr_null(load_str("[train]\nsteps = 10\n\nlrr = 1e-3\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:4: unknown key 'lrr' in [train]; valid keys: ");
    ASSERT_HAS(err, "lr, min_lr");
    ASSERT_HAS(err, "warmup_epochs");

    ck_assert_ptr_null(load_str("[train]\nsteps = 10\nlr = fast\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:3: train.lr: 'fast' is not a number");

    ck_assert_ptr_null(load_str("[train]\nsteps = 10\nbatch = 12.5\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:3: train.batch: '12.5' is not an integer");

    ck_assert_ptr_null(load_str("[data]\nmean = 0.5, x\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:2: data.mean: 'x' is not a number");

    ck_assert_ptr_null(load_str("[train]\nsteps = 0\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:2: train.steps: 0 is out of range [1, inf)");

    ck_assert_ptr_null(load_str("[train]\noptimizer = sgd\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:2: train.optimizer: 'sgd' is not one of: adamw");

    ck_assert_ptr_null(load_str("[training]\nsteps = 10\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:2: unknown section [training]; valid sections: train, data, model, ctc, protocol");

    ck_assert_ptr_null(load_str("steps = 10\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:1: key 'steps' outside any [section]");

    ck_assert_ptr_null(load_str("[train]\nsteps = 10\nsteps = 20\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:3: train.steps given twice");

    ck_assert_ptr_null(load_str("[train]\nepochs = 2\nsteps = 20\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:3: train.steps and train.epochs are alternatives");

    ck_assert_ptr_null(load_str("[protocol]\npinned = train.lr, train.lrr\n[train]\nsteps=1\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini:2: protocol.pinned: 'train.lrr' is not a key");

    ck_assert_ptr_null(load_str("[train]\nlr = 1e-3\n", err, sizeof err));
    ASSERT_HAS(err, "t.ini: set train.epochs or train.steps");

    ck_assert_ptr_null(load_str("[train]\nsteps = 5\n[data]\nchannels = 1\n", err, sizeof err));
    ASSERT_HAS(err, "one value per channel");

    char longline[400];
    snprintf(longline, sizeof longline, "[train]\nsteps = 1\n; %0300d\n", 0);
    ck_assert_ptr_null(load_str(longline, err, sizeof err));
    ASSERT_HAS(err, "t.ini:3: line longer than");

    ck_assert_ptr_null(imb_protocol_load("/nonexistent/x.ini", err, sizeof err));
    ASSERT_HAS(err, "/nonexistent/x.ini: No such file");
}
END_TEST

static const char *base_text =
    "[protocol]\nname = base\npinned = train.lr, train.epochs, data.input_size\n"
    "[train]\nlr = 1e-3\nepochs = 4\nbatch = 32\nweight_decay = 0.05\n"
    "[data]\ninput_size = 28\nchannels = 1\nmean = 0.1307\nstd = 0.3081\n";

START_TEST(protocol_overrides_and_off_protocol) {
    char err[2048] = "";
    imb_protocol *p = load_str(base_text, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);

    /* unpinned key: recorded, still on protocol */
    ck_assert_msg(!imb_protocol_override(p, "train.weight_decay=0.1", err, sizeof err), "%s", err);
    ck_assert_double_eq_tol(p->train.weight_decay, 0.1, 1e-15);
    ck_assert_int_eq(p->off_protocol, 0);
    /* pinned key at its protocol value: not a change */
    ck_assert_msg(!imb_protocol_override(p, "train.lr = 0.001", err, sizeof err), "%s", err);
    ck_assert_int_eq(p->off_protocol, 0);
    /* pinned key changed: off protocol; bare key names resolve when unique */
    ck_assert_msg(!imb_protocol_override(p, "lr=2e-3", err, sizeof err), "%s", err);
    ck_assert_double_eq_tol(p->train.lr, 2e-3, 1e-15);
    ck_assert_int_eq(p->off_protocol, 1);
    ck_assert_int_eq(p->n_overrides, 2);   /* the second lr override replaced the first record */
    ck_assert_str_eq(p->overrides[0], "train.weight_decay=0.1");
    ck_assert_str_eq(p->overrides[1], "train.lr=0.002");
    imb_protocol_free(p);

    /* steps replaces the pinned epochs: off protocol, epochs no longer set */
    p = load_str(base_text, err, sizeof err);
    ck_assert_msg(!imb_protocol_override(p, "train.steps=100", err, sizeof err), "%s", err);
    ck_assert_int_eq(p->off_protocol, 1);
    ck_assert_int_eq(imb_protocol_is_set(p, "train.epochs"), 0);
    ck_assert_int_eq(imb_protocol_total_steps(p, 1000), 100);
    ck_assert_msg(!imb_protocol_check(p, err, sizeof err), "%s", err);
    ck_assert(!imb_protocol_override(p, "train.clip_grad=10", err, sizeof err));
    ck_assert_str_eq(p->overrides[1], "train.clip_grad=10");
    imb_protocol_free(p);

    /* errors: p unchanged, messages list the valid keys */
    p = load_str(base_text, err, sizeof err);
    ck_assert_int_eq(imb_protocol_override(p, "train.lrr=1", err, sizeof err), -1);
    ASSERT_HAS(err, "unknown key 'lrr' in [train]; valid keys: optimizer, schedule, lr, min_lr");
    ASSERT_HAS(err, "eval_interval");
    ck_assert_int_eq(imb_protocol_override(p, "data.size=1", err, sizeof err), -1);
    ASSERT_HAS(err, "valid keys: train_split, val_split, input_size");
    ck_assert_int_eq(imb_protocol_override(p, "nosuchkey=1", err, sizeof err), -1);
    ASSERT_HAS(err, "unknown key 'nosuchkey'; valid keys: train.optimizer");
    ck_assert_int_eq(imb_protocol_override(p, "optim.lr=1", err, sizeof err), -1);
    ASSERT_HAS(err, "unknown section 'optim'");
    ck_assert_int_eq(imb_protocol_override(p, "train.lr=abc", err, sizeof err), -1);
    ASSERT_HAS(err, "'abc' is not a number");
    ck_assert_int_eq(imb_protocol_override(p, "train.lr", err, sizeof err), -1);
    ASSERT_HAS(err, "expected section.key=value");
    ck_assert_int_eq(imb_protocol_override(p, "protocol.pinned=", err, sizeof err), -1);
    ASSERT_HAS(err, "cannot be overridden");
    ck_assert_double_eq_tol(p->train.lr, 1e-3, 1e-15);
    ck_assert_int_eq(p->n_overrides, 0);
    ck_assert_int_eq(p->off_protocol, 0);
    imb_protocol_free(p);
}
END_TEST

START_TEST(protocol_hash) {
    char err[1024] = "", h1[IMB_PROTOCOL_HASH_LEN], h2[IMB_PROTOCOL_HASH_LEN], h3[IMB_PROTOCOL_HASH_LEN];
    imb_protocol *a = load_str(base_text, err, sizeof err), *b = load_str(base_text, err, sizeof err);
    ck_assert_ptr_nonnull(a);
    imb_protocol_hash(a, h1);
    imb_protocol_hash(b, h2);
    ck_assert_int_eq((int)strlen(h1), 16);
    ck_assert_str_eq(h1, h2);
    /* same recipe written differently: other key order, number spelling, a default given explicitly */
    imb_protocol *c = load_str("[data]\nstd=0.30810\nmean=1.307e-1\nchannels=1\ninput_size=28\n"
                               "[train]\nbatch=32\nepochs=4\nweight_decay=5e-2\nlr=0.001\nbeta1=0.9\n"
                               "[protocol]\nname = other-name\n", err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    imb_protocol_hash(c, h3);
    ck_assert_str_eq(h1, h3);

    /* an override changes it; overriding back restores it */
    ck_assert(!imb_protocol_override(b, "train.batch=64", err, sizeof err));
    imb_protocol_hash(b, h2);
    ck_assert_str_ne(h1, h2);
    ck_assert(!imb_protocol_override(b, "train.batch=32", err, sizeof err));
    imb_protocol_hash(b, h2);
    ck_assert_str_eq(h1, h2);
    /* execution settings are not part of the recipe */
    ck_assert(!imb_protocol_override(b, "data.loader_threads=8", err, sizeof err));
    ck_assert(!imb_protocol_override(b, "train.ckpt_interval=50", err, sizeof err));
    imb_protocol_hash(b, h2);
    ck_assert_str_eq(h1, h2);

    /* the canonical text is what is hashed: sorted section.key=value lines */
    char canon[4096];
    imb_protocol_canonical(a, canon, sizeof canon);
    ASSERT_HAS(canon, "data.mean=0.1307\n");
    ASSERT_HAS(canon, "train.lr=0.001\n");
    ck_assert_ptr_null(strstr(canon, "train.steps"));
    ck_assert_ptr_null(strstr(canon, "protocol."));
    ck_assert(strstr(canon, "data.") < strstr(canon, "model.") && strstr(canon, "model.") < strstr(canon, "train."));

    /* written out and loaded again: same recipe */
    FILE *f = tmpfile();
    ck_assert(!imb_protocol_write(a, f));
    rewind(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    imb_protocol *d = load_str(text, err, sizeof err);
    ck_assert_msg(d != NULL, "%s\n%s", err, text);
    imb_protocol_hash(d, h3);
    ck_assert_str_eq(h1, h3);
    ck_assert_str_eq(d->pinned, "train.lr,train.epochs,data.input_size");

    imb_protocol_free(a); imb_protocol_free(b); imb_protocol_free(c); imb_protocol_free(d);
}
END_TEST

START_TEST(protocol_key_listing) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    imb_protocol_print_keys(f);
    fclose(f);
    for (int i = 0; i < imb_protocol_nkeys(); i++) {
        char full[64];
        snprintf(full, sizeof full, "%s.%s", imb_protocol_key(i)->section, imb_protocol_key(i)->key);
        ASSERT_HAS(buf, full);
    }
    free(buf);
    imb_protocol *p = imb_protocol_new();
    ck_assert_ptr_nonnull(p);   /* every default in the table parses */
    imb_protocol_free(p);
}
END_TEST

/* ------------------------------------------------------------------ run records */

START_TEST(record_append_and_read_back) {
    make_tmpdir();
    char path[600], err[1024] = "";
    snprintf(path, sizeof path, "%s/runs.jsonl", tmpdir);

    imb_record r;
    imb_record_init(&r);
    ck_assert(!imb_record_set(&r, "task", "mnist"));
    ck_assert(!imb_record_set(&r, "backbone", "vit"));
    ck_assert(!imb_record_set(&r, "preset", "nano"));
    ck_assert(!imb_record_set(&r, "device", "cpu"));
    ck_assert(!imb_record_set(&r, "precision", "fp32"));
    ck_assert_int_eq(imb_record_set(&r, "no_such_field", "x"), -1);
    ck_assert(!imb_record_option(&r, "mixer", "attention"));
    ck_assert(!imb_record_option_num(&r, "depth", 4));
    ck_assert(!imb_record_metric(&r, "top1", 0.9812));
    ck_assert(!imb_record_metric(&r, "loss", NAN));
    ck_assert(!imb_record_extra_num(&r, "epochs_done", 5));
    ck_assert(!imb_record_extra_str(&r, "host", "ci \"box\"\nline2"));
    ck_assert(!imb_record_extra_json(&r, "sweep", "{\"res\":[224,384]}"));
    ck_assert_int_eq(imb_record_extra_json(&r, "bad", "{oops"), -1);
    ck_assert_int_eq(imb_record_extra_num(&r, "wall_s", 1), -1);
    char err2[512];
    imb_protocol *p = load_str(base_text, err2, sizeof err2);
    ck_assert(!imb_protocol_override(p, "train.lr=0.01", err2, sizeof err2));
    ck_assert(!imb_record_set_protocol(&r, p));
    r.seed = 18446744073709551615ull;   /* above INT64_MAX: stored as a string */
    r.params = 123456;
    r.flops_per_sample = 1.5e9;
    r.samples_per_s = 2048.5;
    r.wall_s = 61.25;
    ck_assert_msg(!imb_record_append(&r, path, err, sizeof err), "%s", err);

    imb_record r2;
    imb_record_init(&r2);
    ck_assert(!imb_record_set(&r2, "task", "synth"));
    ck_assert(!imb_record_set(&r2, "time", "2026-01-02T03:04:05Z"));
    r2.seed = 7;
    ck_assert_msg(!imb_record_append(&r2, path, err, sizeof err), "%s", err);

    imb_record *v;
    int n;
    ck_assert_msg(imb_record_read(path, &v, &n, 1, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(n, 2);
    imb_record *a = &v[0];
    ck_assert_str_eq(a->task, "mnist");
    ck_assert_str_eq(a->backbone, "vit");
    ck_assert_str_eq(a->preset, "nano");
    ck_assert_str_eq(a->device, "cpu");
    ck_assert_str_eq(a->precision, "fp32");
    ck_assert_str_eq(a->protocol, "base");
    char h[IMB_PROTOCOL_HASH_LEN];
    imb_protocol_hash(p, h);
    ck_assert_str_eq(a->protocol_hash, h);
    ck_assert_int_eq(a->off_protocol, 1);
    ck_assert_int_eq(a->n_overrides, 1);
    ck_assert_str_eq(a->overrides[0], "train.lr=0.01");
    ck_assert(a->seed == 18446744073709551615ull);
    ck_assert_int_eq(a->params, 123456);
    ck_assert_double_eq(a->flops_per_sample, 1.5e9);
    ck_assert_double_eq(a->samples_per_s, 2048.5);
    ck_assert_double_eq(a->wall_s, 61.25);
    ck_assert_str_eq(a->commit, imb_git_commit());
    ck_assert_int_eq((int)strlen(a->time), 20);
    ck_assert(a->time[10] == 'T' && a->time[19] == 'Z');
    ck_assert_int_eq(a->options.n, 2);
    ck_assert_str_eq(a->options.v[0].key, "mixer");
    ck_assert_str_eq(a->options.v[0].str, "attention");
    ck_assert_int_eq(a->options.v[1].type, IMB_KV_NUM);
    ck_assert_double_eq(a->options.v[1].num, 4);
    ck_assert_int_eq(a->metrics.n, 2);
    ck_assert_double_eq(a->metrics.v[0].num, 0.9812);
    ck_assert(isnan(a->metrics.v[1].num));
    ck_assert_int_eq(a->extra.n, 3);
    ck_assert_str_eq(a->extra.v[0].key, "epochs_done");
    ck_assert_double_eq(a->extra.v[0].num, 5);
    ck_assert_str_eq(a->extra.v[1].str, "ci \"box\"\nline2");
    ck_assert_int_eq(a->extra.v[2].type, IMB_KV_JSON);
    ck_assert_str_eq(a->extra.v[2].str, "{\"res\":[224,384]}");
    ck_assert_str_eq(v[1].task, "synth");
    ck_assert_str_eq(v[1].time, "2026-01-02T03:04:05Z");
    ck_assert_ptr_null(v[1].backbone);
    ck_assert(v[1].seed == 7);
    imb_records_free(v, n);

    /* exactly two newline-terminated lines */
    FILE *f = fopen(path, "r");
    int lines = 0, c, last = 0;
    while ((c = fgetc(f)) != EOF) { lines += c == '\n'; last = c; }
    fclose(f);
    ck_assert_int_eq(lines, 2);
    ck_assert_int_eq(last, '\n');

    imb_record_free(&r);
    imb_record_free(&r2);
    imb_protocol_free(p);
    rm_tmpdir();
}
END_TEST

START_TEST(record_broken_line_is_reported) {
    make_tmpdir();
    char path[600], err[1024] = "";
    snprintf(path, sizeof path, "%s/runs.jsonl", tmpdir);
    imb_record r;
    imb_record_init(&r);
    imb_record_set(&r, "task", "one");
    ck_assert_msg(!imb_record_append(&r, path, err, sizeof err), "%s", err);
    /* a run killed mid-append: a partial line without newline */
    FILE *f = fopen(path, "a");
    fputs("{\"task\": \"tw", f);
    fclose(f);
    imb_record_set(&r, "task", "three");
    ck_assert_msg(!imb_record_append(&r, path, err, sizeof err), "%s", err);
    imb_record_free(&r);

    imb_record *v;
    int n;
    ck_assert_int_eq(imb_record_read(path, &v, &n, 1, err, sizeof err), -1);
    ck_assert_ptr_null(v);
    char want[700];
    snprintf(want, sizeof want, "%s:2: invalid JSON", path);
    ASSERT_HAS(err, want);

    /* lenient: the broken line is skipped, the appended record survived on its own line */
    ck_assert_int_eq(imb_record_read(path, &v, &n, 0, err, sizeof err), 1);
    ASSERT_HAS(err, want);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(v[0].task, "one");
    ck_assert_str_eq(v[1].task, "three");
    imb_records_free(v, n);

    /* a standard field of the wrong type */
    f = fopen(path, "a");
    fputs("{\"task\": 5}\n", f);
    fclose(f);
    ck_assert_int_eq(imb_record_read(path, &v, &n, 1, err, sizeof err), -1);
    ASSERT_HAS(err, ":2:");   /* still the first broken line */
    ck_assert_int_eq(imb_record_read(path, &v, &n, 0, err, sizeof err), 2);
    imb_records_free(v, n);
    imb_record bad;
    ck_assert_int_eq(imb_record_from_json("{\"task\": 5}", &bad, err, sizeof err), -1);
    ASSERT_HAS(err, "field 'task': expected a string");

    ck_assert_int_eq(imb_record_read("/nonexistent/runs.jsonl", &v, &n, 1, err, sizeof err), -1);
    ASSERT_HAS(err, "No such file");
    rm_tmpdir();
}
END_TEST

/* ------------------------------------------------------------------ checkpoints */

typedef struct { const char *name; int ndim; int64_t shape[2]; } pdecl;
static const pdecl small_model[] = {
    { "blocks.0.attn.qkv.weight", 2, { 4, 6 } },
    { "blocks.0.attn.qkv.bias", 1, { 6 } },
    { "head.weight", 2, { 3, 4 } },
};

static imb_ctx *model_ctx_on(imb_device dev, uint64_t seed, const pdecl *decl, int n) {
    char e[256];
    imb_ctx *c = imb_ctx_new(dev, seed, e, sizeof e);
    ck_assert_msg(c != NULL, "%s", e);
    for (int i = 0; i < n; i++)
        ck_assert_ptr_nonnull(imb_param_new(c, decl[i].name, decl[i].ndim, decl[i].shape, IMB_INIT_NORMAL, 0.02f, 1));
    ck_assert_msg(imb_params_alloc(c) == 0, "%s", imb_error(c));
    return c;
}

static imb_ctx *model_ctx(uint64_t seed, const pdecl *decl, int n) { return model_ctx_on(IMB_CPU, seed, decl, n); }

/* Fills m and v with recognisable values, as if some steps were taken. */
static void fake_optim_state(imb_ctx *c) {
    for (size_t i = 0; i < c->params.total; i++) {
        c->params.m[i] = 0.001f * (float)i;
        c->params.v[i] = 1e-6f * (float)(i + 1);
    }
}

static int same_params(const imb_ctx *a, const imb_ctx *b, int with_optim) {
    for (int i = 0; i < a->params.n; i++) {
        size_t off = a->params.p[i].offset, n = (size_t)imb_numel(a->params.p[i].t);
        if (memcmp(a->params.data + off, b->params.data + off, n * 4)) return 0;
        if (with_optim && (memcmp(a->params.m + off, b->params.m + off, n * 4) || memcmp(a->params.v + off, b->params.v + off, n * 4)))
            return 0;
    }
    return 1;
}

static float *snapshot(const imb_ctx *c) {
    float *s = malloc(3 * c->params.total * sizeof *s);
    memcpy(s, c->params.data, c->params.total * 4);
    memcpy(s + c->params.total, c->params.m, c->params.total * 4);
    memcpy(s + 2 * c->params.total, c->params.v, c->params.total * 4);
    return s;
}

static int unchanged(const imb_ctx *c, const float *s) {
    return !memcmp(s, c->params.data, c->params.total * 4) && !memcmp(s + c->params.total, c->params.m, c->params.total * 4) &&
           !memcmp(s + 2 * c->params.total, c->params.v, c->params.total * 4);
}

START_TEST(checkpoint_round_trip) {
    make_tmpdir();
    char path[600], err[1024] = "";
    snprintf(path, sizeof path, "%s/run.safetensors", tmpdir);
    imb_ctx *a = model_ctx(11, small_model, 3);
    fake_optim_state(a);
    a->step = 1234;
    imb_ckpt_meta m;
    memset(&m, 0, sizeof m);
    m.step = 1000;
    m.adamw_t = 1000;
    m.loader_epoch = 2;
    m.loader_batch = 62;
    snprintf(m.task, sizeof m.task, "mnist");
    snprintf(m.backbone, sizeof m.backbone, "vit");
    snprintf(m.preset, sizeof m.preset, "nano");
    snprintf(m.protocol_hash, sizeof m.protocol_hash, "0123456789abcdef");
    ck_assert_msg(!imb_ckpt_save(a, path, &m, err, sizeof err), "%s", err);
    ck_assert_int_eq(count_dir_entries(tmpdir), 1);   /* no temp file left */

    /* the file: 8-byte length, header padded to 8, data size = 3 x params */
    FILE *f = fopen(path, "rb");
    unsigned char lb[8];
    ck_assert_int_eq((int)fread(lb, 1, 8, f), 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | lb[i];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    ck_assert_int_eq((int)(hl % 8), 0);
    ck_assert_int_eq((long)(size - 8 - (long)hl), 3 * (24 + 6 + 12) * 4);

    imb_ctx *b = model_ctx(99, small_model, 3);
    ck_assert(!same_params(a, b, 0));
    imb_ckpt_meta got;
    ck_assert_msg(!imb_ckpt_load(b, path, &got, 1, err, sizeof err), "%s", err);
    ck_assert(same_params(a, b, 1));
    ck_assert_int_eq(got.step, 1000);
    ck_assert_int_eq(got.adamw_t, 1000);
    ck_assert_int_eq(got.loader_epoch, 2);
    ck_assert_int_eq(got.loader_batch, 62);
    ck_assert(got.seed == 11 && got.ctx_step == 1234);
    ck_assert(b->seed == 11 && b->step == 1234);
    ck_assert_str_eq(got.task, "mnist");
    ck_assert_str_eq(got.backbone, "vit");
    ck_assert_str_eq(got.preset, "nano");
    ck_assert_str_eq(got.protocol_hash, "0123456789abcdef");
    ck_assert_str_eq(got.commit, imb_git_commit());
    ck_assert_int_eq(got.version, IMB_CKPT_VERSION);

    /* weights only: optimizer state and ctx untouched */
    imb_ctx *c = model_ctx(5, small_model, 3);
    ck_assert_msg(!imb_ckpt_load_weights(c, path, err, sizeof err), "%s", err);
    ck_assert(same_params(a, c, 0));
    ck_assert(c->params.m[0] == 0.0f && c->params.m[5] == 0.0f && c->seed == 5);

    /* saving again replaces the file atomically */
    a->params.data[0] = 42.0f;
    ck_assert_msg(!imb_ckpt_save(a, path, &m, err, sizeof err), "%s", err);
    ck_assert_int_eq(count_dir_entries(tmpdir), 1);
    ck_assert_msg(!imb_ckpt_load(b, path, NULL, 1, err, sizeof err), "%s", err);
    ck_assert(b->params.data[0] == 42.0f);

    imb_ctx_free(a); imb_ctx_free(b); imb_ctx_free(c);
    rm_tmpdir();
}
END_TEST

START_TEST(checkpoint_shape_mismatch_leaves_model) {
    make_tmpdir();
    char path[600], err[1024] = "";
    snprintf(path, sizeof path, "%s/run.safetensors", tmpdir);
    imb_ctx *a = model_ctx(1, small_model, 3);
    fake_optim_state(a);
    ck_assert_msg(!imb_ckpt_save(a, path, NULL, err, sizeof err), "%s", err);

    pdecl other[3];
    memcpy(other, small_model, sizeof other);
    other[2].shape[0] = 4;   /* head.weight [4, 4] instead of [3, 4] */
    imb_ctx *b = model_ctx(2, other, 3);
    float *s = snapshot(b);
    uint64_t seed = b->seed, step = b->step;
    ck_assert_int_eq(imb_ckpt_load(b, path, NULL, 1, err, sizeof err), -1);
    ASSERT_HAS(err, path);
    ASSERT_HAS(err, "tensor 'head.weight': shape [3, 4] in the file, [4, 4] in the model");
    ck_assert(unchanged(b, s));
    ck_assert(b->seed == seed && b->step == step);
    free(s);
    imb_ctx_free(b);

    /* a model with a parameter the file lacks */
    pdecl more[4];
    memcpy(more, small_model, sizeof small_model);
    more[3] = (pdecl){ "head.bias", 1, { 3 } };
    b = model_ctx(2, more, 4);
    s = snapshot(b);
    ck_assert_int_eq(imb_ckpt_load(b, path, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "tensor 'head.bias' missing");
    ck_assert(unchanged(b, s));
    free(s);
    imb_ctx_free(b);

    /* a model lacking one of the file's tensors */
    b = model_ctx(2, small_model, 2);
    ck_assert_int_eq(imb_ckpt_load(b, path, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "unexpected tensor 'head.weight'");
    imb_ctx_free(b);
    imb_ctx_free(a);
    rm_tmpdir();
}
END_TEST

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq((int)fwrite(p, 1, n, f), (int)n);
    fclose(f);
}

static void write_with_header(const char *path, const char *header, size_t data_bytes) {
    size_t hl = strlen(header);
    unsigned char *buf = calloc(1, 8 + hl + data_bytes);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    write_bytes(path, buf, 8 + hl + data_bytes);
    free(buf);
}

START_TEST(checkpoint_bad_files_are_errors) {
    make_tmpdir();
    char path[600], bad[600], err[1024] = "";
    snprintf(path, sizeof path, "%s/good.safetensors", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", tmpdir);
    imb_ctx *a = model_ctx(1, small_model, 3);
    ck_assert_msg(!imb_ckpt_save(a, path, NULL, err, sizeof err), "%s", err);
    imb_ctx *b = model_ctx(2, small_model, 3);
    float *s = snapshot(b);

    /* truncated: the data ends early */
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(bad, buf, n - 100);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 1, err, sizeof err), -1);
    ASSERT_HAS(err, bad);
    ASSERT_HAS(err, "run past the end of the data");
    ck_assert(unchanged(b, s));
    /* truncated inside the header, and below the length field */
    write_bytes(bad, buf, 40);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "beyond the end of the file");
    write_bytes(bad, buf, 5);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "truncated: 5 bytes");

    /* garbage header */
    write_with_header(bad, "{this is not json}      ", 0);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "header is not valid JSON");
    write_bytes(bad, "\xff\xff\xff\xff\xff\xff\xff\x7f garbage garbage", 24);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "header length");
    write_with_header(bad, "[1, 2, 3]", 0);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "not start with '{'");

    /* structurally wrong entries */
    write_with_header(bad, "{\"head.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,40]}}", 48);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "tensor 'head.weight': 40 data bytes for F32 [3, 4] (needs 48)");
    write_with_header(bad,
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                      24);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "overlap");
    write_with_header(bad,
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                      16);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "tensors 'a' and 'b' overlap");
    write_with_header(bad, "{\"head.weight\":{\"dtype\":\"F16\",\"shape\":[3,4],\"data_offsets\":[0,24]}}", 24);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "tensor 'blocks.0.attn.qkv.weight' missing");
    imb_ctx *h = model_ctx(2, small_model + 2, 1);
    ck_assert_int_eq(imb_ckpt_load(h, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "tensor 'head.weight': dtype F16, expected F32");
    imb_ctx_free(h);
    write_with_header(bad, "{\"__metadata__\":{\"step\":5}}", 0);
    ck_assert_int_eq(imb_ckpt_load(b, bad, NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "__metadata__ 'step' is not a string");
    ck_assert(unchanged(b, s));

    ck_assert_int_eq(imb_ckpt_load(b, "/nonexistent/x.safetensors", NULL, 0, err, sizeof err), -1);
    ASSERT_HAS(err, "No such file");

    /* a save that fails (the target is a directory) leaves no temp file behind */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/adir", tmpdir);
    ck_assert(!mkdir(dir, 0755));
    int before = count_dir_entries(tmpdir);
    ck_assert_int_eq(imb_ckpt_save(a, dir, NULL, err, sizeof err), -1);
    ASSERT_HAS(err, "rename");
    ck_assert_int_eq(count_dir_entries(tmpdir), before);
    ck_assert_int_eq(imb_ckpt_save(a, "/nonexistent/dir/x.safetensors", NULL, err, sizeof err), -1);
    ASSERT_HAS(err, "/nonexistent/dir/x.safetensors: cannot create a temporary file");

    free(s);
    imb_ctx_free(a); imb_ctx_free(b);
    rm_tmpdir();
}
END_TEST

START_TEST(checkpoint_reads_python_safetensors) {
    char path[600], err[1024] = "";
    snprintf(path, sizeof path, "%s/tests/fixtures/python_small.safetensors", IMB_TEST_SRCDIR);
    imb_ctx *c = model_ctx(3, small_model, 3);
    float *s = snapshot(c);
    ck_assert_msg(!imb_ckpt_load_weights(c, path, err, sizeof err), "%s", err);
    /* fixture values: tensor k holds k + 0.25 * i - 1 (see make_safetensors_fixture.py) */
    for (int k = 0; k < 3; k++) {
        imb_param *p = imb_param_find(c, small_model[k].name);
        for (int64_t i = 0; i < imb_numel(p->t); i++)
            ck_assert_float_eq(c->params.data[p->offset + (size_t)i], (float)k + 0.25f * (float)i - 1.0f);
    }
    /* no imbench metadata: cannot resume from it, and the model stays as loaded */
    memcpy(s, c->params.data, c->params.total * 4);
    ck_assert_int_eq(imb_ckpt_load(c, path, NULL, 1, err, sizeof err), -1);
    ASSERT_HAS(err, "optim.m.");
    ck_assert(unchanged(c, s));
    /* The other direction is checked by hand (tests need no Python):
     * IMB_TEST_CKPT_OUT=/tmp/x.safetensors tests/test_harness, then
     * tests/fixtures/check_imbench_checkpoint.py /tmp/x.safetensors */
    const char *out = getenv("IMB_TEST_CKPT_OUT");
    if (out && *out) {
        for (size_t i = 0; i < c->params.total; i++) { c->params.m[i] = 0.0f; c->params.v[i] = 0.0f; }
        for (int k = 0; k < 3; k++) {
            imb_param *p = imb_param_find(c, small_model[k].name);
            for (int64_t i = 0; i < imb_numel(p->t); i++) {
                c->params.m[p->offset + (size_t)i] = 0.5f * (float)i;
                c->params.v[p->offset + (size_t)i] = 0.125f * (float)i;
            }
        }
        imb_ckpt_meta m;
        memset(&m, 0, sizeof m);
        m.step = m.adamw_t = 50;
        m.loader_epoch = 1;
        m.loader_batch = 3;
        snprintf(m.task, sizeof m.task, "mnist");
        snprintf(m.backbone, sizeof m.backbone, "vit");
        ck_assert_msg(!imb_ckpt_save(c, out, &m, err, sizeof err), "%s", err);
    }
    free(s);
    imb_ctx_free(c);
}
END_TEST

/* Saved on one device, loaded on the other: the file is the same either way. */
START_TEST(checkpoint_across_devices) {
    if (!imb_have_cuda()) { printf("checkpoint_across_devices: no CUDA device, skipped\n"); return; }
    make_tmpdir();
    char p1[600], p2[600], err[1024] = "";
    snprintf(p1, sizeof p1, "%s/cpu.safetensors", tmpdir);
    snprintf(p2, sizeof p2, "%s/gpu.safetensors", tmpdir);
    imb_ctx *a = model_ctx(1, small_model, 3);
    fake_optim_state(a);
    a->step = 9;
    ck_assert_msg(!imb_ckpt_save(a, p1, NULL, err, sizeof err), "%s", err);
    imb_ctx *g = model_ctx_on(IMB_CUDA, 2, small_model, 3);
    size_t bytes = g->params.total * sizeof(float);
    float *before = malloc(bytes), *after = malloc(bytes);
    ck_assert(!imb_mem_copy(IMB_CPU, before, IMB_CUDA, g->params.data, bytes));
    pdecl other[3];
    memcpy(other, small_model, sizeof other);
    other[0].shape[1] = 7;
    imb_ctx *o = model_ctx(3, other, 3);
    ck_assert_msg(!imb_ckpt_save(o, p2, NULL, err, sizeof err), "%s", err);
    ck_assert_int_eq(imb_ckpt_load(g, p2, NULL, 1, err, sizeof err), -1);
    ASSERT_HAS(err, "blocks.0.attn.qkv.weight");
    ck_assert(!imb_mem_copy(IMB_CPU, after, IMB_CUDA, g->params.data, bytes));
    ck_assert(!memcmp(before, after, bytes));
    ck_assert_msg(!imb_ckpt_load(g, p1, NULL, 1, err, sizeof err), "%s", err);
    ck_assert(g->step == 9);
    ck_assert_msg(!imb_ckpt_save(g, p2, NULL, err, sizeof err), "%s", err);
    imb_ctx *b = model_ctx(4, small_model, 3);
    ck_assert_msg(!imb_ckpt_load(b, p2, NULL, 1, err, sizeof err), "%s", err);
    ck_assert(same_params(a, b, 1));
    free(before); free(after);
    imb_ctx_free(a); imb_ctx_free(g); imb_ctx_free(o); imb_ctx_free(b);
    rm_tmpdir();
}
END_TEST

/* ------------------------------------------------------------------ progress */

static char *slurp(FILE *f) {
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *s = calloc(1, (size_t)n + 1);
    ck_assert_int_eq((long)fread(s, 1, (size_t)n, f), n);
    return s;
}

START_TEST(progress_plain_lines) {
    FILE *f = tmpfile();
    imb_progress *p = imb_progress_new(100, f);
    ck_assert_ptr_nonnull(p);
    imb_progress_set_interval(p, 25);
    for (int s = 1; s <= 100; s++) {
        imb_progress_update(p, s, 2.0 / s, 1000.0);
        if (s == 50) imb_progress_note(p, "eval: top1 %.2f", 0.5);
    }
    imb_progress_finish(p);
    char *out = slurp(f);
    fclose(f);
    ck_assert_ptr_null(strchr(out, '\r'));
    ck_assert_ptr_null(strchr(out, '\033'));
    int lines = 0;
    for (char *q = out; (q = strstr(q, "step ")); q++) lines++;
    ck_assert_int_eq(lines, 5);   /* 1, 25, 50, 75, 100 */
    ASSERT_HAS(out, "step 1/100  loss 2.0000  1000.0 samples/s");
    ASSERT_HAS(out, "step 25/100  loss 0.0800");
    ASSERT_HAS(out, "step 100/100  loss 0.0200");
    ASSERT_HAS(out, "ETA ");
    ASSERT_HAS(out, "eval: top1 0.50\n");
    ASSERT_HAS(out, "done: 100/100 steps in ");
    free(out);

    /* the last step is printed by finish when the loop stopped between lines; NaN shows */
    f = tmpfile();
    p = imb_progress_new(100, f);
    imb_progress_set_interval(p, 25);
    for (int s = 1; s <= 30; s++) imb_progress_update(p, s, s == 30 ? NAN : 1.0, 10.0);
    imb_progress_finish(p);
    out = slurp(f);
    fclose(f);
    ASSERT_HAS(out, "step 30/100  loss nan");
    ASSERT_HAS(out, "done: 30/100");
    free(out);
}
END_TEST

START_TEST(progress_tty_bar) {
    FILE *f = tmpfile();
    imb_progress *p = imb_progress_new(10, f);
    imb_progress_set_tty(p, 1);
    for (int s = 1; s <= 10; s++) imb_progress_update(p, s, 0.5, 100.0);
    imb_progress_finish(p);
    char *out = slurp(f);
    fclose(f);
    ck_assert(out[0] == '\r');
    ASSERT_HAS(out, "100% [");
    ASSERT_HAS(out, " 10/10  loss 0.5000  100.0 samples/s  ETA ");
    ASSERT_HAS(out, "\033[K\n");
    ck_assert_ptr_null(strstr(out, "step "));
    free(out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("harness");
    TCase *tp = tcase_create("protocol");
    tcase_add_test(tp, protocol_shipped_files_load);
    tcase_add_test(tp, protocol_errors_name_line_and_key);
    tcase_add_test(tp, protocol_overrides_and_off_protocol);
    tcase_add_test(tp, protocol_hash);
    tcase_add_test(tp, protocol_key_listing);
    suite_add_tcase(s, tp);
    TCase *tr = tcase_create("record");
    tcase_add_test(tr, record_append_and_read_back);
    tcase_add_test(tr, record_broken_line_is_reported);
    suite_add_tcase(s, tr);
    TCase *tc = tcase_create("checkpoint");
    tcase_add_test(tc, checkpoint_round_trip);
    tcase_add_test(tc, checkpoint_shape_mismatch_leaves_model);
    tcase_add_test(tc, checkpoint_bad_files_are_errors);
    tcase_add_test(tc, checkpoint_reads_python_safetensors);
    tcase_add_test(tc, checkpoint_across_devices);
    suite_add_tcase(s, tc);
    TCase *tg = tcase_create("progress");
    tcase_add_test(tg, progress_plain_lines);
    tcase_add_test(tg, progress_tty_bar);
    suite_add_tcase(s, tg);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
