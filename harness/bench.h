/* harness bench: efficiency of a backbone in the image-classification model (the paper's
 * Table 3 layout): latency, throughput, train-step throughput, memory, params, FLOPs. */
#ifndef IMB_BENCH_H
#define IMB_BENCH_H
#include <stdio.h>
#include "cli.h"

/* Runs every resolution of cli->bench_res at cli->bench_batch and prints one table row per
 * resolution to out. Returns 0, or -1 with err set. */
int imb_bench_run(const imb_cli *cli, FILE *out, char *err, size_t errn);
#endif
