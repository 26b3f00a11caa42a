/* Data-parallel plumbing that needs no GPU: rank discovery from launcher environments and the
 * file/tcp rendezvous between forked processes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "backbone.h"
#include "checkrun.h"
#include "imagecls.h"
#include "launch.h"
#include "loss.h"

static void clear_env(void) {
    const char *v[] = { "IMB_RANK", "IMB_WORLD", "IMB_LOCAL_RANK", "IMB_INIT", "OMPI_COMM_WORLD_RANK",
                        "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS",
                        "SLURM_LOCALID", "RANK", "WORLD_SIZE", "LOCAL_RANK" };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) unsetenv(v[i]);
}

START_TEST(rank_from_env) {
    imb_rank_info r;
    char err[512] = "";
    clear_env();
    ck_assert_int_eq(imb_rank_from_env(&r, NULL, err, sizeof err), 0);
    ck_assert(r.rank == 0 && r.world == 1 && r.init[0] == 0);
    /* srun: local id taken; needs an init spec */
    setenv("SLURM_PROCID", "3", 1);
    setenv("SLURM_NTASKS", "8", 1);
    setenv("SLURM_LOCALID", "1", 1);
    ck_assert_int_eq(imb_rank_from_env(&r, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "rendezvous"), "%s", err);
    ck_assert_int_eq(imb_rank_from_env(&r, "tcp:node0:29500", err, sizeof err), 0);
    ck_assert(r.rank == 3 && r.world == 8 && r.local_rank == 1 && !strcmp(r.init, "tcp:node0:29500"));
    /* ours win over the others */
    setenv("IMB_RANK", "1", 1);
    setenv("IMB_WORLD", "2", 1);
    setenv("IMB_INIT", "file:/tmp/x", 1);
    ck_assert_int_eq(imb_rank_from_env(&r, NULL, err, sizeof err), 0);
    ck_assert(r.rank == 1 && r.world == 2 && r.local_rank == 1 && !strcmp(r.init, "file:/tmp/x"));
    /* bad values name the variable */
    setenv("IMB_RANK", "2", 1);
    ck_assert_int_eq(imb_rank_from_env(&r, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "IMB_RANK"), "%s", err);
    setenv("IMB_RANK", "x", 1);
    ck_assert_int_eq(imb_rank_from_env(&r, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "IMB_RANK=x"), "%s", err);
    setenv("IMB_RANK", "0", 1);
    ck_assert_int_eq(imb_rank_from_env(&r, "udp:x", err, sizeof err), -1);
    unsetenv("IMB_WORLD");
    ck_assert_int_eq(imb_rank_from_env(&r, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "together"), "%s", err);
    clear_env();
}
END_TEST

/* world processes rendezvous through spec; every non-zero rank must receive rank 0's bytes */
static void group(const char *spec, int world) {
    pid_t pid[8];
    for (int r = 0; r < world; r++) {
        pid[r] = fork();
        ck_assert(pid[r] >= 0);
        if (pid[r] == 0) {
            unsigned char b[128];
            for (int i = 0; i < 128; i++) b[i] = r == 0 ? (unsigned char)(i * 7 + 1) : 0;
            char err[512];
            /* the receivers start first for tcp, so they must retry until rank 0 listens */
            if (r == 0) usleep(200 * 1000);
            if (imb_rendezvous(spec, r, world, b, sizeof b, 20, err, sizeof err)) {
                fprintf(stderr, "rank %d: %s\n", r, err);
                _exit(2);
            }
            for (int i = 0; i < 128; i++)
                if (b[i] != (unsigned char)(i * 7 + 1)) _exit(3);
            _exit(0);
        }
    }
    for (int r = 0; r < world; r++) {
        int st;
        ck_assert(waitpid(pid[r], &st, 0) == pid[r]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s rank %d: status %d", spec, r, st);
    }
}

START_TEST(rendezvous_file_and_tcp) {
    char dir[] = "/tmp/imb-rdv-test-XXXXXX", spec[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(spec, sizeof spec, "file:%s/id", dir);
    group(spec, 3);
    snprintf(spec, sizeof spec, "%s/id", dir);
    unlink(spec);
    rmdir(dir);
    snprintf(spec, sizeof spec, "tcp:127.0.0.1:%d", 20000 + (int)(getpid() % 20000));
    group(spec, 4);
    /* nobody publishes: a clear timeout */
    unsigned char b[16];
    char err[512] = "";
    ck_assert_int_eq(imb_rendezvous("file:/nonexistent-dir/id", 1, 2, b, sizeof b, 0.2, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "did not publish"), "%s", err);
    ck_assert_int_eq(imb_rendezvous("tcp:nohostport", 1, 2, b, sizeof b, 0.2, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "HOST:PORT"), "%s", err);
}
END_TEST

/* Gradient readiness: a bucket reported ready during the backward must already hold its final
 * gradients (nothing later writes into it), for every mixer's nano preset, and every bucket
 * is reported exactly once. Otherwise an all-reduce overlapped with the backward would send
 * partial gradients. */
typedef struct { float *snap; int *seen; size_t floats; const float *grad; } ready_log;

static void on_ready(imb_ctx *ctx, size_t lo, size_t hi, void *user) {
    (void)ctx;
    ready_log *r = user;
    memcpy(r->snap + lo, r->grad + lo, sizeof(float) * (hi - lo));
    r->seen[lo / r->floats]++;
}

START_TEST(grad_buckets_ready_means_final) {
    for (int m = 0; imb_mixers[m]; m++) {
        char spec[64], err[512] = "";
        snprintf(spec, sizeof spec, "%s-nano", imb_mixers[m]->name);
        imb_backbone_cfg cfg;
        ck_assert_msg(!imb_backbone_parse(spec, &cfg, err, sizeof err), "%s", err);
        imb_ctx *ctx = imb_ctx_new(IMB_CPU, 3, err, sizeof err);
        ck_assert_ptr_nonnull(ctx);
        imb_imagecls *model = imb_imagecls_create(ctx, &cfg, 1, 32, 4, 5);
        ck_assert_msg(model && !imb_params_alloc(ctx), "%s: %s", spec, imb_error(ctx));
        ready_log r = { calloc(ctx->params.total, sizeof(float)), NULL, 997, ctx->params.grad };
        ck_assert(!imb_grad_buckets_set(ctx, r.floats, on_ready, &r));
        r.seen = calloc((size_t)ctx->gb.n, sizeof(int));
        for (int step = 0; step < 2; step++) {
            memset(r.seen, 0, sizeof(int) * (size_t)ctx->gb.n);
            imb_params_zero_grad(ctx);
            imb_step_begin(ctx, 1);
            float x[2 * 32 * 32];
            int32_t y[2] = { 1, 3 };
            for (int i = 0; i < 2 * 32 * 32; i++) x[i] = (float)((i * 37 + step) % 101) / 50.0f - 1.0f;
            imb_tensor *logits = imb_imagecls_forward(ctx, model, imb_input(ctx, IMB_F32, 4, IMB_SHAPE(2, 1, 32, 32), x));
            imb_tensor *l = imb_cross_entropy(ctx, logits, imb_input(ctx, IMB_I32, 1, IMB_SHAPE(2), y), 0.0f);
            ck_assert_msg(!imb_backward(ctx, l), "%s: %s", spec, imb_error(ctx));
            for (int b = 0; b < ctx->gb.n; b++) ck_assert_msg(r.seen[b] == 1, "%s: bucket %d reported %d times", spec, b, r.seen[b]);
            for (size_t i = 0; i < ctx->params.total; i++)
                ck_assert_msg(r.snap[i] == ctx->params.grad[i], "%s: gradient %zu changed after its bucket was ready", spec, i);
        }
        free(r.snap);
        free(r.seen);
        imb_imagecls_free(model);
        imb_ctx_free(ctx);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("launch");
    TCase *tc = tcase_create("launch");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rank_from_env);
    tcase_add_test(tc, rendezvous_file_and_tcp);
    tcase_add_test(tc, grad_buckets_ready_means_final);
    suite_add_tcase(s, tc);
    return imb_check_run(srunner_create(s));
}
