/* Building an imb_sample_list step by step (internal to the dataset readers). */
#ifndef IMB_SAMPLES_H
#define IMB_SAMPLES_H
#include "dataset.h"
#include "fileio.h"

typedef struct imb_sample_builder {
    imb_sample_list *s;
    int cap;
} imb_sample_builder;

/* Zeroes *out and starts a builder on it. */
void imb_samples_begin(imb_sample_builder *b, imb_sample_list *out);
/* Takes ownership of the class names (the list is emptied). */
void imb_samples_set_classes(imb_sample_builder *b, imb_strlist *names);
/* Appends one sample: path is copied (NULL allowed), image is moved in (NULL allowed). */
int imb_samples_add(imb_sample_builder *b, const char *path, imb_image *image, int32_t label);
/* Frees everything on error; returns -1 so readers can `return imb_samples_fail(...)`. */
int imb_samples_fail(imb_sample_builder *b);
#endif
