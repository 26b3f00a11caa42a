/* The embedded demo: a small MLP trained with the tape + AdamW + cosine schedule on a
 * generated two-spirals problem (no dataset needed). */
#ifndef IMB_DEMO_H
#define IMB_DEMO_H
#include <stdint.h>
#include <stdio.h>

typedef struct imb_demo_cfg {
    int steps, batch, hidden;
    float lr, weight_decay;
    uint64_t seed;
} imb_demo_cfg;

imb_demo_cfg imb_demo_defaults(void);
/* Trains, then measures accuracy on 2000 fresh points. Progress lines go to log (may be
 * NULL). Returns 0, or -1 with err set. */
int imb_demo_mlp(const imb_demo_cfg *cfg, double *accuracy, double *final_loss, FILE *log, char *err, size_t errn);
#endif
