/* Dataset -> shard cache: fingerprint the sample list, reuse a valid shard, else rebuild. */
#include "prepare.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* What the shard is built from: every path with its size and mtime (files on disk), or the
 * pixels (images already in memory, e.g. MNIST IDX), the labels and the store size. */
static uint64_t fingerprint(const imb_sample_list *s, int store_size) {
    uint64_t h = fnv(1469598103934665603ull, &store_size, sizeof store_size);
    h = fnv(h, &s->n, sizeof s->n);
    h = fnv(h, &s->nclasses, sizeof s->nclasses);
    for (int i = 0; i < s->n; i++) {
        h = fnv(h, &s->labels[i], sizeof s->labels[i]);
        if (s->paths) {
            struct stat st;
            int64_t meta[2] = { 0, 0 };
            if (!stat(s->paths[i], &st)) { meta[0] = (int64_t)st.st_size; meta[1] = (int64_t)st.st_mtime; }
            h = fnv(h, s->paths[i], strlen(s->paths[i]));
            h = fnv(h, meta, sizeof meta);
        } else {
            const imb_image *im = &s->images[i];
            h = fnv(h, &im->h, sizeof im->h);
            h = fnv(h, im->px, (size_t)im->h * (size_t)im->w * (size_t)im->c);
        }
    }
    return h;
}

typedef struct { const imb_sample_list *s; } source_ctx;

static int get_sample(void *ctx, int i, imb_image *im, int32_t *label, char *err, size_t errn) {
    const imb_sample_list *s = ((source_ctx *)ctx)->s;
    *label = s->labels[i];
    if (s->images) { *im = s->images[i]; return 0; }
    return imb_image_load(s->paths[i], im, err, errn);
}

static void put_sample(void *ctx, int i, imb_image *im) {
    const imb_sample_list *s = ((source_ctx *)ctx)->s;
    (void)i;
    if (!s->images) imb_image_free(im);
}

int imb_prepare_split(const imb_task_def *task, const char *root, const char *split, int store_size, imb_shard *out,
                      FILE *log, char *err, size_t errn) {
    imb_sample_list s;
    memset(&s, 0, sizeof s);
    if (task->read(root, split, &s, err, errn)) return -1;
    char dir[4096], path[4096];
    if (snprintf(dir, sizeof dir, "%s/.imbench", root) >= (int)sizeof dir) {
        snprintf(err, errn, "%s: path too long", root);
        imb_samples_free(&s);
        return -1;
    }
    if (mkdir(dir, 0755) && access(dir, W_OK)) {
        snprintf(err, errn, "%s: cannot create the shard cache folder", dir);
        imb_samples_free(&s);
        return -1;
    }
    if (snprintf(path, sizeof path, "%s/%s-%s-%d.shard", dir, task->name, split, store_size) >= (int)sizeof path) {
        snprintf(err, errn, "%s: path too long", dir);
        imb_samples_free(&s);
        return -1;
    }
    uint64_t fp = fingerprint(&s, store_size);
    char why[512];
    int st = imb_shard_open(path, fp, out, why, sizeof why);
    if (st == IMB_SHARD_OK) {
        imb_samples_free(&s);
        return 0;
    }
    if (log)
        fprintf(log, "prepare: %s %s: %d samples -> %s (%s)\n", task->name, split, s.n, path,
                st == IMB_SHARD_MISSING ? "new" : why);
    source_ctx sc = { &s };
    imb_shard_source src = { .n = s.n, .nclasses = s.nclasses, .fingerprint = fp, .get = get_sample,
                             .put = put_sample, .ctx = &sc, .store_size = store_size, .resize = imb_image_resize };
    int rc = imb_shard_write(path, &src, err, errn);
    imb_samples_free(&s);
    if (rc) return -1;
    if (imb_shard_open(path, fp, out, err, errn) != IMB_SHARD_OK) return -1;
    return 0;
}

int imb_prepare_images(const imb_task_def *task, const char *root, const imb_protocol *p, FILE *log, char *err,
                       size_t errn) {
    const char *splits[2] = { p->data.train_split[0] ? p->data.train_split : task->train_split,
                              p->data.val_split[0] ? p->data.val_split : task->val_split };
    for (int i = 0; i < 2; i++) {
        imb_shard s;
        if (imb_prepare_split(task, root, splits[i], (int)p->data.store_size, &s, log, err, errn)) return -1;
        if (log) fprintf(log, "%s %s: %d samples, %d classes in %s\n", task->name, splits[i], s.n, s.nclasses, s.path);
        imb_shard_close(&s);
    }
    return 0;
}
