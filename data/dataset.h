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
/* ImageNet layout: <root>/<split>/<wnid>/<name>.{JPEG,jpg,jpeg,png} (extension case-insensitive,
 * other files skipped); a flat <root>/val/ with LOC_val_solution.csv (ImageId,PredictionString)
 * or a "<file> <label>" val label file is also accepted. Class order: sorted folder names of
 * the train split.
 * Details: classes = strcmp-sorted folders of <root>/train; without a train folder, the wnids
 * of <root>/LOC_synset_mapping.txt (sorted); without either, the split's own folders. A split
 * with class folders must have exactly the train classes (an unknown or a missing folder is an
 * error) and no empty class folder. A flat split (images, no folders) takes its labels from
 * the first of LOC_<split>_solution.csv, <split>.txt, <split>_labels.txt found in <root>, then
 * in the split folder. The CSV gives the wnid as the first token of PredictionString; the
 * text files hold "<file name> <label>" lines, label = 0-based index into the sorted classes
 * (Caffe's val.txt) or a wnid. Images are matched by name without extension; an image with
 * no label or a label with no image is an error. (ILSVRC2012_validation_ground_truth.txt is
 * not accepted: its 1-based ILSVRC ids need meta.mat to map to wnids.)
 * Samples: class by class, files in strcmp order (flat split: file order). */
int imb_read_imagenet(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
/* Food-101: <root>/meta/{train,test}.txt ("class/id" lines), meta/classes.txt, images/<class>/<id>.jpg
 * Labels follow the line order of classes.txt; split "val" reads test.txt (Food-101 has no
 * val split). Every listed image must exist. */
int imb_read_food101(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
/* Food-11: <root>/{training,validation,evaluation}/<cls>_<id>.jpg, 11 classes
 * (split train/val/test are aliases); any other entry in the folder is an error. */
int imb_read_food11(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
/* MNIST IDX: <root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte; split train or val/test
 * (= t10k). The "train-images.idx3-ubyte" spelling is accepted too. Images are decoded into
 * out->images (1 channel, any rows x cols from the header), out->paths is NULL. */
int imb_read_mnist_idx(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn);
#endif
