/* Image-classification datasets as lists of samples, read from their real on-disk layouts. */
#ifndef IMB_DATASET_H
#define IMB_DATASET_H
#include <stddef.h>
#include <stdint.h>
#include "image.h"

typedef struct imb_sample_list {
    int n;
    char **paths;          /* n file paths (NULL when images are in memory, e.g. MNIST IDX) */
    imb_image *images;     /* n decoded images, or NULL when read from paths */
    int32_t *labels;       /* n labels in [0, nclasses) */
    int nclasses;
    char **class_names;    /* nclasses names, index = label (sorted as torchvision/timm sort them) */
} imb_sample_list;

void imb_samples_free(imb_sample_list *s);

/* split: "train", "val" (Food-11: "training"/"validation"/"evaluation" also accepted as
 * train/val/test; Food-101: "train"/"test"). Every reader fails with "<path>: <what>" on a
 * missing folder or file, an empty split, a bad label file or header. */
/* ImageNet layout: <root>/<split>/<wnid>/<image>.{JPEG,jpg,jpeg,png}; a flat <root>/val/ with
 * LOC_val_solution.csv (ImageId,PredictionString) or a "<file> <label>" val label file is
 * also accepted. Class order: sorted folder names of the train split. */
int imb_read_imagenet(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
/* Food-101: <root>/meta/{train,test}.txt ("class/id" lines), meta/classes.txt, images/<class>/<id>.jpg */
int imb_read_food101(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
/* Food-11: <root>/{training,validation,evaluation}/<cls>_<id>.jpg, 11 classes */
int imb_read_food11(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
/* MNIST IDX: <root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte; split train or val/test */
int imb_read_mnist_idx(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
#endif
