/* Command-line parsing for the harness program. */
#ifndef IMB_CLI_H
#define IMB_CLI_H
#include <stdio.h>

#define IMB_CLI_MAX_KV 64

typedef struct imb_cli {
    const char *cmd;          /* train (default), list, prepare, eval, demo */
    const char *task, *backbone, *data, *protocol, *checkpoint, *device, *precision, *out_dir;
    int synth, resume, deterministic, threads;
    long long stop_after;     /* testing: stop after this many steps as if killed (0: never) */
    long long seed;           /* -1: the protocol's */
    int nproto, nbackbone;    /* "section.key=value" protocol overrides; "key=value" backbone options */
    const char *proto_kv[IMB_CLI_MAX_KV], *backbone_kv[IMB_CLI_MAX_KV];
    /* data parallel: --nproc N launches N ranks on this host; --init the rendezvous of ranks
     * started elsewhere. rank/world/group are filled by main from the environment (group = 1
     * when this process belongs to a launched group, even of one rank). */
    int nproc;
    const char *init;
    int rank, world, local_rank, group;
    char init_spec[512];
    /* bench */
    int bench_res[8], bench_nres, bench_batch, bench_reps, bench_warmup, bench_patch;
} imb_cli;

/* 0 ok, 1 help printed, -1 error (message in err) */
int imb_cli_parse(int argc, char **argv, imb_cli *cli, char *err, size_t errn);
void imb_cli_help(FILE *f);
/* The backbone config of --backbone with the key=value backbone options applied. */
struct imb_backbone_cfg;
int imb_cli_backbone(const imb_cli *cli, struct imb_backbone_cfg *cfg, char *err, size_t errn);
#endif
