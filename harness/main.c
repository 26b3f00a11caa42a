/* harness: the imbench command line. */
#include "demo.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: harness            train the embedded demo (two-spirals MLP) and print its metrics\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "harness: error: unknown argument '%s' (try --help)\n", argv[1]);
        return 2;
    }
    imb_demo_cfg cfg = imb_demo_defaults();
    double acc, loss;
    char err[512];
    if (imb_demo_mlp(&cfg, &acc, &loss, stdout, err, sizeof err)) {
        fprintf(stderr, "harness: error: %s\n", err);
        return 1;
    }
    printf("\n| task | model | steps | final loss | accuracy |\n|---|---|---|---|---|\n");
    printf("| spirals (embedded) | mlp-%d | %d | %.4f | %.2f%% |\n", cfg.hidden, cfg.steps, loss, 100 * acc);
    return 0;
}
