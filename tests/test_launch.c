/* Data-parallel plumbing that needs no GPU: rank discovery from launcher environments and the
 * file/tcp rendezvous between forked processes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "checkrun.h"
#include "launch.h"

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

int main(void) {
    Suite *s = suite_create("launch");
    TCase *tc = tcase_create("launch");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rank_from_env);
    tcase_add_test(tc, rendezvous_file_and_tcp);
    suite_add_tcase(s, tc);
    return imb_check_run(srunner_create(s));
}
