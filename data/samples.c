/* imb_sample_list life cycle: the builder used by every reader, and imb_samples_free. */
#include "samples.h"
#include <stdlib.h>
#include <string.h>

void imb_samples_begin(imb_sample_builder *b, imb_sample_list *out) {
    memset(out, 0, sizeof *out);
    b->s = out;
    b->cap = 0;
}

void imb_samples_set_classes(imb_sample_builder *b, imb_strlist *names) {
    b->s->nclasses = names->n;
    b->s->class_names = names->s;
    memset(names, 0, sizeof *names);
}

int imb_samples_add(imb_sample_builder *b, const char *path, imb_image *image, int32_t label) {
    imb_sample_list *s = b->s;
    if (s->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 256;
        int32_t *l = realloc(s->labels, sizeof *l * (size_t)cap);
        if (!l) return -1;
        s->labels = l;
        if (path) {
            char **p = realloc(s->paths, sizeof *p * (size_t)cap);
            if (!p) return -1;
            s->paths = p;
        }
        if (image) {
            imb_image *im = realloc(s->images, sizeof *im * (size_t)cap);
            if (!im) return -1;
            s->images = im;
        }
        b->cap = cap;
    }
    /* a list holds paths or images, never a mix (see dataset.h) */
    if ((path != NULL) != (s->paths != NULL) || (image != NULL) != (s->images != NULL)) return -1;
    if (path && !(s->paths[s->n] = imb_strdup(path))) return -1;
    if (image) {
        s->images[s->n] = *image;
        memset(image, 0, sizeof *image);
    }
    s->labels[s->n++] = label;
    return 0;
}

int imb_samples_fail(imb_sample_builder *b) {
    imb_samples_free(b->s);
    return -1;
}

void imb_samples_free(imb_sample_list *s) {
    if (!s) return;
    for (int i = 0; s->paths && i < s->n; i++) free(s->paths[i]);
    for (int i = 0; s->images && i < s->n; i++) imb_image_free(&s->images[i]);
    for (int i = 0; s->class_names && i < s->nclasses; i++) free(s->class_names[i]);
    free(s->paths);
    free(s->images);
    free(s->labels);
    free(s->class_names);
    memset(s, 0, sizeof *s);
}
