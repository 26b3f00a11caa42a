/* Rank discovery, the file/tcp rendezvous and the --nproc launcher (POSIX processes and sockets). */
#include "launch.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void nap(void) { nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL); }

static int env_int(const char *name, int lo, int *out, int *found, char *err, size_t errn) {
    const char *v = getenv(name);
    *found = v != NULL;
    if (!v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > 1 << 20) {
        snprintf(err, errn, "environment %s=%s: expected an integer >= %d", name, v, lo);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int imb_rank_from_env(imb_rank_info *r, const char *init, char *err, size_t errn) {
    static const char *const sets[][3] = {
        { "IMB_RANK", "IMB_WORLD", "IMB_LOCAL_RANK" },
        { "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK" },
        { "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID" },
        { "RANK", "WORLD_SIZE", "LOCAL_RANK" },
    };
    memset(r, 0, sizeof *r);
    r->world = 1;
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        int fr, fw, fl;
        if (env_int(sets[s][0], 0, &r->rank, &fr, err, errn) || env_int(sets[s][1], 1, &r->world, &fw, err, errn) ||
            env_int(sets[s][2], 0, &r->local_rank, &fl, err, errn))
            return -1;
        if (!fr && !fw) continue;
        if (!fr || !fw) {
            snprintf(err, errn, "environment: %s and %s must be set together", sets[s][0], sets[s][1]);
            return -1;
        }
        if (r->rank >= r->world) {
            snprintf(err, errn, "environment %s=%d is not below %s=%d", sets[s][0], r->rank, sets[s][1], r->world);
            return -1;
        }
        if (!fl) r->local_rank = r->rank;
        break;
    }
    const char *spec = init ? init : getenv("IMB_INIT");
    if (spec && strlen(spec) >= sizeof r->init) { snprintf(err, errn, "--init: spec too long"); return -1; }
    if (spec) snprintf(r->init, sizeof r->init, "%s", spec);
    if (r->init[0] && strncmp(r->init, "file:", 5) && strncmp(r->init, "tcp:", 4)) {
        snprintf(err, errn, "--init %s: expected file:PATH or tcp:HOST:PORT", r->init);
        return -1;
    }
    if (r->world > 1 && !r->init[0]) {
        snprintf(err, errn, "%d ranks need a rendezvous: --init file:PATH or --init tcp:HOST:PORT (or IMB_INIT)",
                 r->world);
        return -1;
    }
    return 0;
}

static int rdv_file(const char *path, int rank, void *bytes, size_t n, double timeout_s, char *err, size_t errn) {
    if (rank == 0) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
        FILE *f = fopen(tmp, "wb");
        if (!f || fwrite(bytes, 1, n, f) != n || fflush(f) || fsync(fileno(f))) {
            snprintf(err, errn, "rendezvous file:%s: cannot write %s: %s", path, tmp, strerror(errno));
            if (f) fclose(f);
            unlink(tmp);
            return -1;
        }
        fclose(f);
        if (rename(tmp, path)) {
            snprintf(err, errn, "rendezvous file:%s: %s", path, strerror(errno));
            unlink(tmp);
            return -1;
        }
        return 0;
    }
    double t0 = now();
    for (;;) {
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t got = fread(bytes, 1, n, f);
            fclose(f);
            if (got == n) return 0;
            snprintf(err, errn, "rendezvous file:%s: %zu bytes, expected %zu", path, got, n);
            return -1;
        }
        if (now() - t0 > timeout_s) {
            snprintf(err, errn, "rendezvous file:%s: rank 0 did not publish within %.0f s", path, timeout_s);
            return -1;
        }
        nap();
    }
}

static int full_io(int fd, void *buf, size_t n, int out) {
    char *p = buf;
    while (n) {
        ssize_t k = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int rdv_tcp(const char *hostport, int rank, int world, void *bytes, size_t n, double timeout_s, char *err,
                   size_t errn) {
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof host || !colon[1]) {
        snprintf(err, errn, "--init tcp:%s: expected tcp:HOST:PORT", hostport);
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    struct addrinfo hints = { 0 }, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = rank == 0 ? AI_PASSIVE : 0;
    int g = getaddrinfo(rank == 0 ? NULL : host, colon + 1, &hints, &ai);
    if (g) { snprintf(err, errn, "rendezvous tcp:%s: %s", hostport, gai_strerror(g)); return -1; }
    int rc = -1;
    double t0 = now();
    if (rank == 0) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol), one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, world)) {
            snprintf(err, errn, "rendezvous tcp:%s: cannot listen: %s", hostport, strerror(errno));
        } else {
            rc = 0;
            for (int k = 1; k < world && !rc; k++) {
                int c = accept(fd, NULL, NULL);
                if (c < 0 || full_io(c, bytes, n, 1)) {
                    snprintf(err, errn, "rendezvous tcp:%s: sending to rank connection %d: %s", hostport, k,
                             strerror(errno));
                    rc = -1;
                }
                if (c >= 0) close(c);
            }
        }
        if (fd >= 0) close(fd);
    } else {
        for (;;) {
            int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
            if (fd >= 0 && !connect(fd, ai->ai_addr, ai->ai_addrlen)) {
                rc = full_io(fd, bytes, n, 0);
                if (rc) snprintf(err, errn, "rendezvous tcp:%s: connection closed before %zu bytes", hostport, n);
                close(fd);
                break;
            }
            if (fd >= 0) close(fd);
            if (now() - t0 > timeout_s) {
                snprintf(err, errn, "rendezvous tcp:%s: rank 0 not reachable within %.0f s", hostport, timeout_s);
                break;
            }
            nap();
        }
    }
    freeaddrinfo(ai);
    return rc;
}

int imb_rendezvous(const char *spec, int rank, int world, void *bytes, size_t n, double timeout_s, char *err,
                   size_t errn) {
    if (world <= 1) return 0;
    if (!strncmp(spec, "file:", 5)) return rdv_file(spec + 5, rank, bytes, n, timeout_s, err, errn);
    if (!strncmp(spec, "tcp:", 4)) return rdv_tcp(spec + 4, rank, world, bytes, n, timeout_s, err, errn);
    snprintf(err, errn, "--init %s: expected file:PATH or tcp:HOST:PORT", spec);
    return -1;
}

int imb_launch(int nproc, int argc, char **argv, char *err, size_t errn) {
    char dir[] = "/tmp/imbench-rdv-XXXXXX", init[600], num[3][16];
    if (!mkdtemp(dir)) { snprintf(err, errn, "--nproc: cannot create a rendezvous folder: %s", strerror(errno)); return 1; }
    snprintf(init, sizeof init, "file:%s/nccl-id", dir);
    /* argv without "--nproc N" */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    pid_t *pids = calloc((size_t)nproc, sizeof *pids);
    if (!args || !pids) { free(args); free(pids); snprintf(err, errn, "--nproc: out of memory"); return 1; }
    int k = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--nproc")) { i++; continue; }
        args[k++] = argv[i];
    }
    int rc = 0, started = 0;
    for (int r = 0; r < nproc; r++) {
        pid_t p = fork();
        if (p < 0) { snprintf(err, errn, "--nproc: fork: %s", strerror(errno)); rc = 1; break; }
        if (p == 0) {
            snprintf(num[0], sizeof num[0], "%d", r);
            snprintf(num[1], sizeof num[1], "%d", nproc);
            setenv("IMB_RANK", num[0], 1);
            setenv("IMB_LOCAL_RANK", num[0], 1);
            setenv("IMB_WORLD", num[1], 1);
            setenv("IMB_INIT", init, 1);
            setenv("NCCL_NVLS_ENABLE", "0", 1);
            execv("/proc/self/exe", args);
            fprintf(stderr, "harness: error: --nproc: exec: %s\n", strerror(errno));
            _exit(127);
        }
        pids[started++] = p;
    }
    /* wait for all; the first failure terminates the rest (a rank alone would hang in NCCL) */
    for (int left = started; left > 0; left--) {
        int st;
        pid_t p = wait(&st);
        if (p < 0) break;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        if (code && !rc) {
            rc = code;
            for (int i = 0; i < started; i++)
                if (pids[i] != p) kill(pids[i], SIGTERM);
        }
    }
    char idf[700];
    snprintf(idf, sizeof idf, "%s/nccl-id", dir);
    unlink(idf);
    rmdir(dir);
    free(args);
    free(pids);
    return rc;
}
