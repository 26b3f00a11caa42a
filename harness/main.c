/* harness: the imbench command line (train, eval, prepare, list, demo). */
#include "backbone.h"
#include "bench.h"
#include "cli.h"
#include "demo.h"
#include "dist.h"
#include "launch.h"
#include "protocol.h"
#include "registry.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *msg) {
    fprintf(stderr, "harness: error: %s\n", msg);
    return 1;
}

static int cmd_list(void) {
    char names[2048];
    printf("tasks:\n");
    imb_task_list(stdout);
    printf("\nbackbones (--backbone PRESET[:key=value,...]):\n");
    imb_backbone_list(stdout);
    imb_protocol_list(names, sizeof names);
    printf("\nprotocols: %s\n\nprotocol keys (override with section.key=value):\n", names);
    imb_protocol_print_keys(stdout);
    return 0;
}

static int cmd_demo(void) {
    imb_demo_cfg cfg = imb_demo_defaults();
    double acc, loss;
    char err[512];
    if (imb_demo_mlp(&cfg, &acc, &loss, stdout, err, sizeof err)) return fail(err);
    printf("\n| task | model | steps | final loss | accuracy |\n|---|---|---|---|---|\n");
    printf("| spirals (embedded) | mlp-%d | %d | %.4f | %.2f%% |\n", cfg.hidden, cfg.steps, loss, 100 * acc);
    return 0;
}

/* --protocol, else with --synth the task's "<task>-synth" protocol when there is one (the recipe
 * sized for its mini dataset, e.g. librispeech-synth), else the task's own */
static const char *protocol_name(const imb_cli *cli, const imb_task_def *task, char *buf, size_t n) {
    if (cli->protocol) return cli->protocol;
    if (!cli->synth) return task->name;
    char names[4096], *save = NULL;
    imb_protocol_list(names, sizeof names);
    snprintf(buf, n, "%s-synth", task->name);
    for (char *tok = strtok_r(names, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!strcmp(tok, buf)) return buf;
    }
    return task->name;
}

/* the task's protocol with the CLI's overrides applied */
static imb_protocol *open_protocol(const imb_cli *cli, const imb_task_def *task, char *err, size_t errn) {
    char synth[128];
    imb_protocol *p = imb_protocol_open(protocol_name(cli, task, synth, sizeof synth), err, errn);
    if (!p) return NULL;
    for (int i = 0; i < cli->nproto; i++)
        if (imb_protocol_override(p, cli->proto_kv[i], err, errn)) goto bad;
    if (cli->seed >= 0) {
        char kv[64];
        snprintf(kv, sizeof kv, "train.seed=%lld", cli->seed);
        if (imb_protocol_override(p, kv, err, errn)) goto bad;
    }
    if (imb_protocol_check(p, err, errn)) goto bad;
    return p;
bad:
    imb_protocol_free(p);
    return NULL;
}

int main(int argc, char **argv) {
    /* OpenMP threads that spin at barriers steal the cores from loader threads and from
     * whatever else runs on a laptop: measured 3.5x slower ViT steps on a loaded 2-core
     * machine. libgomp reads the policy only at start-up, so set it and restart once. */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);   /* on failure, carry on with the default policy */
    }
    imb_cli cli;
    char err[2048];
    int rc = imb_cli_parse(argc, argv, &cli, err, sizeof err);
    if (rc == 1) { imb_cli_help(stdout); return 0; }
    if (rc) return fail(err);
    if (!strcmp(cli.cmd, "list")) return cmd_list();
    if (!strcmp(cli.cmd, "demo")) return cmd_demo();
    if (!strcmp(cli.cmd, "bench")) {
        if (!cli.backbone) return fail("bench needs --backbone (harness list shows them)");
        return imb_bench_run(&cli, stdout, err, sizeof err) ? fail(err) : 0;
    }
    if (cli.nproc) {
        if (strcmp(cli.cmd, "train")) return fail("--nproc is for training (train command)");
        if (getenv("IMB_RANK")) return fail("--nproc inside a launched rank");
        if (cli.nproc > 1 && strcmp(cli.device, "cuda"))
            return fail("--nproc > 1 needs --device cuda (ranks all-reduce over NCCL); CPU runs are one process");
        err[0] = 0;
        rc = imb_launch(cli.nproc, argc, argv, err, sizeof err);
        if (rc && err[0]) fail(err);
        return rc;
    }
    imb_rank_info ri;
    if (imb_rank_from_env(&ri, cli.init, err, sizeof err)) return fail(err);
    cli.rank = ri.rank;
    cli.world = ri.world;
    cli.local_rank = ri.local_rank;
    cli.group = ri.world > 1 || getenv("IMB_WORLD") || cli.init;
    snprintf(cli.init_spec, sizeof cli.init_spec, "%s", ri.init);
    if (cli.world > 1 && strcmp(cli.device, "cuda"))
        return fail("a data-parallel group needs --device cuda (ranks all-reduce over NCCL)");
    if (cli.group && !strcmp(cli.device, "cuda") && imb_dist_select_device(cli.local_rank, err, sizeof err))
        return fail(err);
    if (!cli.task) return fail("--task is required (harness list shows the tasks)");
    const imb_task_def *task = imb_task_find(cli.task);
    if (!task) { imb_task_unknown(cli.task, err, sizeof err); return fail(err); }
    imb_protocol *p = open_protocol(&cli, task, err, sizeof err);
    if (!p) return fail(err);
    if (!strcmp(cli.cmd, "prepare")) {
        rc = cli.data ? task->prepare(task, cli.data, p, stdout, err, sizeof err) : -1;
        if (!cli.data) snprintf(err, sizeof err, "prepare needs --data DIR");
    } else if (!cli.backbone) {
        rc = -1;
        snprintf(err, sizeof err, "--backbone is required (harness list shows them)");
    } else {
        rc = task->run(&cli, task, p, err, sizeof err);
    }
    imb_protocol_free(p);
    return rc ? fail(err) : 0;
}
