/* Command-line parsing: subcommand, --flags, and key=value overrides. */
#include "cli.h"
#include "backbone.h"
#include "ctx.h"
#include <stdlib.h>
#include <string.h>

void imb_cli_help(FILE *f) {
    fprintf(f,
"usage: harness [COMMAND] --task T --backbone B[:key=value,...] [options] [key=value ...]\n"
"\n"
"commands:\n"
"  train (default)   train T with backbone B under T's fixed protocol, evaluate, append a run record\n"
"  eval              evaluate a checkpoint (--checkpoint F, default <out>/<task>-<preset>.safetensors)\n"
"                    on the val split; give the --task and --backbone it was trained with\n"
"  prepare           decode the dataset once into packed shards under <data>/.imbench/\n"
"  list              list tasks, backbones with presets and options, and protocol keys\n"
"  demo              train the embedded two-spirals MLP (no dataset needed)\n"
"  bench             efficiency of --backbone in the image-classification model on random input:\n"
"                    latency, inference and train-step throughput, memory, params, GFLOPs\n"
"                    (--res 224,384,512 --batch 64 --reps 20 --warmup 5 --device D; --patch P: stem stride,\n"
"                    default 16 for single-stage backbones as timm's ViTs, 4 for hierarchical ones)\n"
"\n"
"options:\n"
"  --task T          task name (harness list shows them)\n"
"  --backbone B      backbone preset, e.g. vit-nano, vit-s:cls_token=0\n"
"  --data DIR        dataset root in the task's real on-disk layout\n"
"  --synth           generate the task's mini synthetic dataset (under --out) and use it, with\n"
"                    the task's <task>-synth protocol when there is one\n"
"  --protocol P      protocol name or .ini path (default: the task's own, harness/protocols/T.ini)\n"
"  --out DIR         where checkpoints, records and synth data go (default: runs/)\n"
"  --checkpoint F    checkpoint to write (train) or read (eval); default <out>/<task>-<backbone>.safetensors\n"
"  --resume          continue the run from --checkpoint bit-identically\n"
"  --device D        cpu (default) or cuda\n"
"  --precision P     fp32 (default, pedantic fp32 GEMMs) or tf32 (cuda: fp32 storage, GEMMs on TF32\n"
"                    tensor cores); bf16 is not implemented yet\n"
"  --no-graph        run every CUDA training step eagerly (default: step 2 is captured as a CUDA\n"
"                    graph and replayed; for debugging)\n"
"  --seed N          override the protocol's seed (recorded; marks the run off-protocol if pinned)\n"
"  --threads N       loader threads (default: the protocol's)\n"
"  --deterministic   no atomics in reductions\n"
"  --nproc N         data-parallel training on N GPUs of this host (one process each, NCCL);\n"
"                    the protocol's batch is the global batch, split over the ranks\n"
"  --init SPEC       rendezvous of ranks started by an external launcher (mpirun, srun):\n"
"                    file:PATH (shared file system) or tcp:HOST:PORT (rank 0's address)\n"
"  --stop-after N    stop after step N as if the run were killed (for resume tests)\n"
"  -h, --help        this text\n"
"\n"
"key=value arguments: 'section.key=value' overrides a protocol key (e.g. train.lr=1e-3; a pinned\n"
"key marks the run off-protocol in its record); 'key=value' without a dot is a backbone option\n"
"(the same as --backbone B:key=value).\n");
}

int imb_cli_backbone(const imb_cli *cli, imb_backbone_cfg *cfg, char *err, size_t errn) {
    if (imb_backbone_parse(cli->backbone, cfg, err, errn)) return -1;
    for (int i = 0; i < cli->nbackbone; i++) {
        char kv[256], *eq;
        snprintf(kv, sizeof kv, "%s", cli->backbone_kv[i]);
        eq = strchr(kv, '=');
        *eq = 0;
        if (imb_backbone_set(cfg, kv, eq + 1, err, errn)) return -1;
    }
    return 0;
}

static int need_value(int argc, char **argv, int *i, const char **dst, char *err, size_t errn) {
    if (*i + 1 >= argc) {
        snprintf(err, errn, "%s needs a value", argv[*i]);
        return -1;
    }
    *dst = argv[++*i];
    return 0;
}

int imb_cli_parse(int argc, char **argv, imb_cli *cli, char *err, size_t errn) {
    static const char *const cmds[] = { "train", "eval", "prepare", "list", "demo", "bench", NULL };
    memset(cli, 0, sizeof *cli);
    cli->cmd = "train";
    cli->device = "cpu";
    cli->precision = "fp32";
    cli->out_dir = "runs";
    cli->seed = -1;
    cli->world = 1;
    cli->bench_res[0] = 224;
    cli->bench_nres = 1;
    cli->bench_batch = 64;
    cli->bench_reps = 20;
    cli->bench_warmup = 5;
    cli->bench_patch = 0;   /* per backbone: see bench.c */
    int i = 1;
    if (argc > 1 && argv[1][0] != '-' && !strchr(argv[1], '=')) {
        for (int k = 0; cmds[k]; k++)
            if (!strcmp(argv[1], cmds[k])) cli->cmd = cmds[k];
        if (strcmp(cli->cmd, argv[1])) {
            snprintf(err, errn, "unknown command '%s'; valid: train eval prepare list demo bench", argv[1]);
            return -1;
        }
        i = 2;
    }
    for (; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (!strcmp(a, "--task")) { if (need_value(argc, argv, &i, &cli->task, err, errn)) return -1; }
        else if (!strcmp(a, "--backbone")) { if (need_value(argc, argv, &i, &cli->backbone, err, errn)) return -1; }
        else if (!strcmp(a, "--data")) { if (need_value(argc, argv, &i, &cli->data, err, errn)) return -1; }
        else if (!strcmp(a, "--protocol")) { if (need_value(argc, argv, &i, &cli->protocol, err, errn)) return -1; }
        else if (!strcmp(a, "--checkpoint")) { if (need_value(argc, argv, &i, &cli->checkpoint, err, errn)) return -1; }
        else if (!strcmp(a, "--device")) { if (need_value(argc, argv, &i, &cli->device, err, errn)) return -1; }
        else if (!strcmp(a, "--precision")) { if (need_value(argc, argv, &i, &cli->precision, err, errn)) return -1; }
        else if (!strcmp(a, "--out")) { if (need_value(argc, argv, &i, &cli->out_dir, err, errn)) return -1; }
        else if (!strcmp(a, "--init")) { if (need_value(argc, argv, &i, &cli->init, err, errn)) return -1; }
        else if (!strcmp(a, "--nproc")) {
            if (need_value(argc, argv, &i, &v, err, errn)) return -1;
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 1024) { snprintf(err, errn, "--nproc %s: expected a rank count in [1, 1024]", v); return -1; }
            cli->nproc = (int)n;
        }
        else if (!strcmp(a, "--stop-after")) {
            if (need_value(argc, argv, &i, &v, err, errn)) return -1;
            char *end;
            cli->stop_after = strtoll(v, &end, 10);
            if (!*v || *end || cli->stop_after < 1) { snprintf(err, errn, "--stop-after %s: expected a step count >= 1", v); return -1; }
        }
        else if (!strcmp(a, "--res")) {
            if (need_value(argc, argv, &i, &v, err, errn)) return -1;
            cli->bench_nres = 0;
            for (const char *p = v; *p;) {
                char *end;
                long r = strtol(p, &end, 10);
                if (end == p || r < 1 || r > 8192 || cli->bench_nres == 8 || (*end && *end != ',')) {
                    snprintf(err, errn, "--res %s: expected up to 8 comma-separated sizes, e.g. 224,384,512", v);
                    return -1;
                }
                cli->bench_res[cli->bench_nres++] = (int)r;
                p = *end ? end + 1 : end;
            }
        }
        else if (!strcmp(a, "--batch") || !strcmp(a, "--reps") || !strcmp(a, "--warmup") || !strcmp(a, "--patch")) {
            if (need_value(argc, argv, &i, &v, err, errn)) return -1;
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < (a[2] == 'w' ? 0 : 1) || n > 100000) {
                snprintf(err, errn, "%s %s: expected a positive integer", a, v);
                return -1;
            }
            int *dst = a[2] == 'b' ? &cli->bench_batch : a[2] == 'r' ? &cli->bench_reps
                     : a[2] == 'w' ? &cli->bench_warmup : &cli->bench_patch;
            *dst = (int)n;
        }
        else if (!strcmp(a, "--seed") || !strcmp(a, "--threads")) {
            if (need_value(argc, argv, &i, &v, err, errn)) return -1;
            char *end;
            long long n = strtoll(v, &end, 10);
            if (!*v || *end || n < 0 || (a[2] == 't' && (n < 1 || n > 256))) {
                snprintf(err, errn, "%s %s: expected a non-negative integer%s", a, v, a[2] == 't' ? " in [1, 256]" : "");
                return -1;
            }
            if (a[2] == 's') cli->seed = n;
            else cli->threads = (int)n;
        }
        else if (!strcmp(a, "--synth")) cli->synth = 1;
        else if (!strcmp(a, "--resume")) cli->resume = 1;
        else if (!strcmp(a, "--deterministic")) cli->deterministic = 1;
        else if (!strcmp(a, "--no-graph")) cli->no_graph = 1;
        else if (a[0] != '-' && strchr(a, '=') && a[0] != '=') {
            const char *eq = strchr(a, '='), *dot = strchr(a, '.');
            int proto = dot && dot < eq;
            int *n = proto ? &cli->nproto : &cli->nbackbone;
            if (*n == IMB_CLI_MAX_KV) { snprintf(err, errn, "too many key=value arguments"); return -1; }
            (proto ? cli->proto_kv : cli->backbone_kv)[(*n)++] = a;
        } else {
            snprintf(err, errn, "unknown argument '%s' (see --help)", a);
            return -1;
        }
    }
    if (strcmp(cli->device, "cpu") && strcmp(cli->device, "cuda")) {
        snprintf(err, errn, "--device %s: valid: cpu cuda", cli->device);
        return -1;
    }
    if (strcmp(cli->precision, "fp32") && strcmp(cli->precision, "tf32") && strcmp(cli->precision, "bf16")) {
        snprintf(err, errn, "--precision %s: valid: fp32 tf32 bf16", cli->precision);
        return -1;
    }
    if (!strcmp(cli->precision, "bf16")) {
        snprintf(err, errn, "--precision bf16: not implemented yet (bf16 activations and GEMMs are a later issue); "
                            "use fp32, or tf32 on cuda");
        return -1;
    }
    if (!strcmp(cli->precision, "tf32") && strcmp(cli->device, "cuda")) {
        snprintf(err, errn, "--precision tf32: tf32 is a CUDA precision (TF32 tensor-core GEMMs); add --device cuda "
                            "or use fp32");
        return -1;
    }
    return 0;
}

int imb_cli_precision(const imb_cli *cli, imb_ctx *ctx, char *err, size_t errn) {
    int tf32 = !strcmp(cli->precision, "tf32");
    if (!tf32 && strcmp(cli->precision, "fp32")) {
        snprintf(err, errn, "--precision %s: only fp32 and tf32 exist", cli->precision);
        return -1;
    }
    if (tf32 && ctx->device != IMB_CUDA) {
        snprintf(err, errn, "--precision tf32: tf32 is a CUDA precision (the context is on %s)", imb_device_name(ctx->device));
        return -1;
    }
    ctx->precision = tf32 ? IMB_PREC_TF32 : IMB_PREC_FP32;
    return 0;
}
