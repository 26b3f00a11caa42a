/* The task table. */
#include "registry.h"
#include "prepare.h"
#include "text.h"
#include "train.h"
#include "train_textcls.h"
#include "train_ctc.h"
#include <string.h>
#include <sys/stat.h>

/* MNIST comes as the original IDX files or in ImageNet class-folder layout: pick by content */
static int read_mnist(const char *root, const char *split, imb_sample_list *out, char *err, size_t errn) {
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", root);
    if (!stat(p, &st)) return imb_read_mnist_idx(root, split, out, err, errn);
    return imb_read_imagenet(root, split, out, err, errn);
}

static const imb_task_def tasks[] = {
    { "imagenet", "imagecls", "ImageNet class folders (+ flat val with label file)", imb_read_imagenet, "train", "val", "imagenet", imb_run_imagecls, imb_prepare_images, NULL },
    { "food101", "imagecls", "Food-101 (meta/train.txt, test.txt, classes.txt)", imb_read_food101, "train", "test", "food101", imb_run_imagecls, imb_prepare_images, NULL },
    { "food11", "imagecls", "Food-11 (<cls>_<id>.jpg in training/validation)", imb_read_food11, "train", "val", "food11", imb_run_imagecls, imb_prepare_images, NULL },
    { "mnist", "imagecls", "MNIST, IDX files or ImageNet class-folder layout", read_mnist, "train", "val", "mnist-idx", imb_run_imagecls, imb_prepare_images, NULL },
    { "agnews", "textcls", "AG-News CSV (train.csv, test.csv, classes.txt)", NULL, "train", "test", "agnews", imb_run_textcls, imb_prepare_text, &imb_text_agnews },
    { "imdb", "textcls", "aclImdb folders ({train,test}/{neg,pos}/<id>_<rating>.txt)", NULL, "train", "test", "imdb", imb_run_textcls, imb_prepare_text, &imb_text_imdb },
    { "librispeech", "ctc", "LibriSpeech FLAC + trans.txt; 80-bin log-mel, CTC over 29 characters, WER per eval set", NULL,
      "train-clean-100+train-clean-360+train-other-500", "dev-clean,dev-other,test-clean,test-other", "librispeech",
      imb_run_ctc, imb_prepare_ctc, NULL },
};

const imb_task_def *imb_task_find(const char *name) {
    for (size_t i = 0; name && i < sizeof tasks / sizeof *tasks; i++)
        if (!strcmp(tasks[i].name, name)) return &tasks[i];
    return NULL;
}

void imb_task_unknown(const char *name, char *err, size_t errn) {
    int k = snprintf(err, errn, "unknown task '%s'; valid:", name ? name : "(none)");
    for (size_t i = 0; i < sizeof tasks / sizeof *tasks && k > 0 && (size_t)k < errn; i++)
        k += snprintf(err + k, errn - (size_t)k, " %s", tasks[i].name);
}

void imb_task_list(FILE *f) {
    for (size_t i = 0; i < sizeof tasks / sizeof *tasks; i++)
        fprintf(f, "  %-10s %-9s %s\n", tasks[i].name, tasks[i].kind, tasks[i].about);
}
