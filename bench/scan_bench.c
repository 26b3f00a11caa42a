/* Selective-scan benchmark and reference dump for the GPU machine (built by make when CUDA is configured).
 *
 *   scan_bench check DIR   runs the check shapes (small batch) through the CUDA scan, fast and simple
 *                          kernels, forward and backward, and writes inputs, outputs and gradients to
 *                          DIR/<case>/ (raw little-endian float32 + meta.json) for bench/scan_ref.py;
 *                          prints fast-vs-simple differences and whether two backwards agree bit for bit
 *   scan_bench time        times forward and backward at the benchmark shapes (CUDA events, 5 warm-up
 *                          runs, median of 25) next to the device-to-device copy bandwidth of this run
 *                          and an instruction estimate, and prints a table
 *   scan_bench sweep       times the benchmark shapes again under other plans (IMB_SCAN_CFG: channels
 *                          per block, warps per channel, items, global dB/dC accumulators), for tuning
 *   scan_bench once        one forward and one backward per benchmark shape (for a profiler: ncu)
 *   scan_bench             check and time, into ./scan_check
 * Exit status 0 unless a CUDA call fails or fast and simple disagree beyond 1e-5. */
#include "config.h"
#include "rng.h"
#include "scan.h"
#include <cuda_runtime_api.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "scan_bench: %s failed: %s (%s:%d)\n", #call, cudaGetErrorString(e_), __FILE__, __LINE__); \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

typedef struct {
    const char *name;
    int64_t Bt, Dm, L, N, G;
    int dirs;
    int64_t H, W;
    int K, D, bias, z, mask;
} cfg;

#ifdef SCAN_BENCH_TABLES   /* a test build brings its own (small) shapes */
SCAN_BENCH_TABLES
#else
/* VMamba (v05_noz: 4 directions, a parameter set per direction, no gate) and Mamba (1 direction, gate) */
static const cfg timing[] = {
    { "vmamba 14x14 N16", 64, 768, 196, 16, 1, 4, 14, 14, 4, 1, 1, 0, 0 },
    { "vmamba 56x56 N1", 64, 384, 3136, 1, 1, 4, 56, 56, 4, 1, 1, 0, 0 },
    { "mamba L196 N16 z", 64, 768, 196, 16, 1, 1, 196, 1, 1, 1, 1, 1, 0 },
    { "mamba L3136 N1 z", 64, 384, 3136, 1, 1, 1, 3136, 1, 1, 1, 1, 1, 0 },
    { "bidir L196 N64 z", 64, 768, 196, 64, 1, 2, 196, 1, 1, 1, 1, 1, 0 },
};

static const cfg checks[] = {
    { "vmamba_14x14_n16", 2, 768, 196, 16, 1, 4, 14, 14, 4, 1, 1, 0, 0 },
    { "vmamba_56x56_n1", 2, 384, 3136, 1, 1, 4, 56, 56, 4, 1, 1, 0, 0 },
    { "mamba_l500_n16_z_mask", 2, 256, 500, 16, 1, 1, 500, 1, 1, 1, 1, 1, 1 },
    { "bidir_k2_g2_n64_z", 2, 64, 196, 64, 2, 2, 196, 1, 2, 1, 1, 1, 0 },
    { "cross_k1_28x28_n4_z_mask", 2, 96, 784, 4, 1, 4, 28, 28, 1, 1, 0, 1, 1 },
};
#endif

enum { U, DELTA, A, B, C, D, BIAS, Z, MASK, DY, NIN };
enum { Y, DU, DDELTA, DA, DB, DC, DD, DBIAS, DZ, NOUT };
static const char *in_names[NIN] = { "u", "delta", "A", "B", "C", "D", "bias", "z", "mask", "dy" };
static const char *out_names[NOUT] = { "y", "du", "ddelta", "dA", "dB", "dC", "dD", "dbias", "dz" };

static int check_mode;   /* check mode runs the simple kernels too: their scratch is allocated */

typedef struct {
    cfg c;
    imb_scan_geom g;
    size_t nin[NIN], nout[NOUT];
    float *in[NIN], *out[NOUT];   /* device; NULL where the case has no such tensor */
    float *fws, *bws;
    size_t nfws, nbws;
} run;

static float *dev_alloc(size_t n) {
    float *p = NULL;
    if (n) CK(cudaMalloc((void **)&p, sizeof(float) * n));
    return p;
}

static void alloc_ws(run *r);

static void setup(run *r, const cfg *c) {
    memset(r, 0, sizeof *r);
    r->c = *c;
    imb_scan_geom g = { c->Bt, c->Dm, c->N, c->G, c->L, c->H, c->W, c->dirs, c->K };
    r->g = g;
    const size_t nu = c->Bt * c->Dm * c->L, nk = c->K * c->Dm, nb = c->Bt * c->K * c->G * c->N * c->L;
    const size_t nin[NIN] = { nu, c->Bt * nk * c->L, nk * c->N, nb, nb, c->D ? nk : 0, c->bias ? nk : 0,
                              c->z ? nu : 0, c->mask ? c->Bt * c->L : 0, nu };
    memcpy(r->nin, nin, sizeof nin);
    const size_t nout[NOUT] = { nu, nu, nin[DELTA], nin[A], nb, nb, nin[D], nin[BIAS], nin[Z] };
    memcpy(r->nout, nout, sizeof nout);
    size_t most = 0;
    for (int i = 0; i < NIN; i++) most = nin[i] > most ? nin[i] : most;
    float *h = (float *)malloc(sizeof *h * most);
    if (!h) {
        fprintf(stderr, "scan_bench: out of host memory\n");
        exit(2);
    }
    for (int i = 0; i < NIN; i++) {
        if (!nin[i]) continue;
#pragma omp parallel for   /* hundreds of millions of draws at the timing shapes */
        for (size_t j = 0; j < nin[i]; j++) {
            const float x = imb_rng_normal(2024, (uint64_t)i, (uint64_t)j);
            switch (i) {
            case A: h[j] = -expf(0.5f * x); break;   /* negative, as Mamba's -exp(A_log) */
            case BIAS: h[j] = 0.5f * x; break;
            case MASK: {   /* the last sample's final tenth is padding */
                const int64_t b = (int64_t)j / c->L, t = (int64_t)j % c->L;
                h[j] = b == c->Bt - 1 && t >= c->L - c->L / 10 ? 0.0f : 1.0f;
                break;
            }
            default: h[j] = x;
            }
        }
        r->in[i] = dev_alloc(nin[i]);
        CK(cudaMemcpy(r->in[i], h, sizeof(float) * nin[i], cudaMemcpyHostToDevice));
    }
    free(h);
    for (int i = 0; i < NOUT; i++) r->out[i] = dev_alloc(nout[i]);
    alloc_ws(r);
}

/* workspaces for the plan the environment selects now */
static void alloc_ws(run *r) {
    const cfg *c = &r->c;
    cudaFree(r->fws);
    cudaFree(r->bws);
    r->nfws = imb_scan_fwd_ws_cuda(&r->g);
    /* the backward's scratch for whichever kernel runs (check mode runs both) */
    const char *kern = getenv("IMB_SCAN_KERNEL");
    char *saved = kern ? strdup(kern) : NULL;
    setenv("IMB_SCAN_KERNEL", "simple", 1);
    const size_t simple = imb_scan_bwd_ws_cuda(&r->g, c->z);
    unsetenv("IMB_SCAN_KERNEL");
    r->nbws = imb_scan_bwd_ws_cuda(&r->g, c->z);
    if (simple > r->nbws && (saved || check_mode)) r->nbws = simple;
    if (saved) setenv("IMB_SCAN_KERNEL", saved, 1);
    free(saved);
    r->fws = dev_alloc(r->nfws + 1);
    r->bws = dev_alloc(r->nbws + 1);
}

static void teardown(run *r) {
    for (int i = 0; i < NIN; i++) cudaFree(r->in[i]);
    for (int i = 0; i < NOUT; i++) cudaFree(r->out[i]);
    cudaFree(r->fws);
    cudaFree(r->bws);
}

static void fwd(run *r, cudaStream_t st) {
    if (imb_selective_scan_fwd_cuda(st, &r->g, r->out[Y], r->fws, 1, r->in[U], r->in[DELTA], r->in[A], r->in[B],
                                    r->in[C], r->in[D], r->in[BIAS], r->in[Z], r->in[MASK])) {
        fprintf(stderr, "scan_bench: %s: %s\n", r->c.name, imb_scan_cuda_error());
        exit(2);
    }
}

static void bwd(run *r, cudaStream_t st) {
    float **o = r->out;
    if (imb_selective_scan_bwd_cuda(st, &r->g, o[DU], o[DDELTA], o[DA], o[DB], o[DC], o[DD], o[DBIAS], o[DZ], r->bws,
                                    r->fws, r->in[DY], r->in[U], r->in[DELTA], r->in[A], r->in[B], r->in[C], r->in[D],
                                    r->in[BIAS], r->in[Z], r->in[MASK])) {
        fprintf(stderr, "scan_bench: %s: %s\n", r->c.name, imb_scan_cuda_error());
        exit(2);
    }
}

static void zero_grads(run *r) {
    for (int i = DU; i < NOUT; i++)
        if (r->out[i]) CK(cudaMemset(r->out[i], 0, sizeof(float) * r->nout[i]));
}

static float *to_host(const float *d, size_t n) {
    float *h = (float *)malloc(sizeof *h * (n ? n : 1));
    if (n) CK(cudaMemcpy(h, d, sizeof *h * n, cudaMemcpyDeviceToHost));
    return h;
}

static void write_file(const char *dir, const char *name, const char *suffix, const float *h, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s%s.f32", dir, name, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(h, sizeof *h, n, f) != n || fclose(f)) {
        fprintf(stderr, "scan_bench: cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

/* max |a - b| / max |b| (tests/optest.c's definition) */
static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / (den + 1e-30);
}

/* fast forward + backward, then the simple kernels; files for scan_ref.py */
static int check_case(const cfg *c, const char *root, cudaStream_t st) {
    char dir[1024], plan[768];
    snprintf(dir, sizeof dir, "%s/%s", root, c->name);
    if (mkdir(dir, 0755) && errno != EEXIST) {
        fprintf(stderr, "scan_bench: cannot create %s: %s\n", dir, strerror(errno));
        exit(2);
    }
    run r;
    setup(&r, c);
    float *fast[NOUT] = { 0 }, *again = NULL;
    unsetenv("IMB_SCAN_KERNEL");
    printf("check %-26s %s\n", c->name, imb_scan_cuda_plan(&r.g, c->z, plan, sizeof plan));
    zero_grads(&r);
    fwd(&r, st);
    bwd(&r, st);
    CK(cudaStreamSynchronize(st));
    for (int i = 0; i < NOUT; i++) {
        fast[i] = to_host(r.out[i], r.nout[i]);
        if (r.nout[i]) write_file(dir, out_names[i], "", fast[i], r.nout[i]);
    }
    /* determinism: a second backward from zeroed gradients must give the same bits */
    zero_grads(&r);
    bwd(&r, st);
    CK(cudaStreamSynchronize(st));
    int same = 1;
    for (int i = DU; i < NOUT; i++) {
        again = to_host(r.out[i], r.nout[i]);
        same &= !r.nout[i] || !memcmp(again, fast[i], sizeof(float) * r.nout[i]);
        free(again);
    }
    for (int i = 0; i < NIN; i++)
        if (r.nin[i]) {
            float *h = to_host(r.in[i], r.nin[i]);
            write_file(dir, in_names[i], "", h, r.nin[i]);
            free(h);
        }
    setenv("IMB_SCAN_KERNEL", "simple", 1);
    zero_grads(&r);
    fwd(&r, st);
    bwd(&r, st);
    CK(cudaStreamSynchronize(st));
    unsetenv("IMB_SCAN_KERNEL");
    double worst = 0;
    printf("      fast vs simple:");
    for (int i = 0; i < NOUT; i++) {
        if (!r.nout[i]) continue;
        float *h = to_host(r.out[i], r.nout[i]);
        write_file(dir, out_names[i], "_simple", h, r.nout[i]);
        const double e = rel(fast[i], h, r.nout[i]);
        worst = fmax(worst, e);
        printf(" %s %.1e", out_names[i], e);
        free(h);
    }
    printf("\n      max %.2e (bound 1e-5), backward bit-identical on a second run: %s\n", worst, same ? "yes" : "NO");
    char path[1100];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "scan_bench: cannot write %s\n", path);
        exit(2);
    }
    fprintf(f, "{\"name\": \"%s\", \"Bt\": %lld, \"Dm\": %lld, \"L\": %lld, \"N\": %lld, \"G\": %lld, \"dirs\": %d, "
               "\"H\": %lld, \"W\": %lld, \"K\": %d, \"has\": {",
            c->name, (long long)c->Bt, (long long)c->Dm, (long long)c->L, (long long)c->N, (long long)c->G, c->dirs,
            (long long)c->H, (long long)c->W, c->K);
    for (int i = 0; i < NIN; i++) fprintf(f, "%s\"%s\": %s", i ? ", " : "", in_names[i], r.nin[i] ? "true" : "false");
    fprintf(f, "}, \"plan\": \"%s\"}\n", plan);
    fclose(f);
    for (int i = 0; i < NOUT; i++) free(fast[i]);
    teardown(&r);
    return worst <= 1e-5 && same ? 0 : 1;
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

#define REPS 25
#define WARMUP 5

/* median milliseconds of REPS runs of what (0 forward, 1 backward, 2 copy of n bytes) */
static float time_ms(int what, run *r, void *dst, const void *src, size_t n, cudaStream_t st) {
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float t[REPS];
    for (int i = 0; i < WARMUP + REPS; i++) {
        CK(cudaEventRecord(e0, st));
        if (what == 0) fwd(r, st);
        else if (what == 1) bwd(r, st);
        else CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, st));
        CK(cudaEventRecord(e1, st));
        CK(cudaEventSynchronize(e1));
        if (i >= WARMUP) CK(cudaEventElapsedTime(&t[i - WARMUP], e0, e1));
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    qsort(t, REPS, sizeof *t, cmp_float);
    return t[REPS / 2];
}

static void time_all(cudaStream_t st) {
    int dev = 0, sms = 0, khz = 0;
    struct cudaDeviceProp prop;
    CK(cudaGetDevice(&dev));
    CK(cudaGetDeviceProperties(&prop, dev));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    CK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
    /* device-to-device copy of 1 GiB: each byte is read once and written once */
    const size_t cb = (size_t)1 << 30;
    void *s1, *s2;
    CK(cudaMalloc(&s1, cb));
    CK(cudaMalloc(&s2, cb));
    CK(cudaMemset(s1, 1, cb));
    const float tc = time_ms(2, NULL, s2, s1, cb, st);
    const double bw = 2.0 * (double)cb / (tc * 1e-3);
    cudaFree(s1);
    cudaFree(s2);
    const double ghz = khz * 1e-6;
    printf("\n%s, %d SMs, %.2f GHz peak clock; copy bandwidth %.0f GB/s (1 GiB D2D, read + write)\n", prop.name, sms,
           ghz, bw * 1e-9);
    printf("instruction estimate: per (batch, channel, step, state, direction) one exp (MUFU, 16/clk/SM) and four\n"
           "fp32 ops (dt*A, dt*u*B, h = a h + b, y += C h; 128/clk/SM), at the peak clock\n\n");
    printf("| shape (B, D, L, N) | dirs K z | fwd ms | fwd MB | fwd GB/s | %% copy | inst. est. ms | fwd / est | bwd ms "
           "| bwd / fwd | bwd MB | bwd GB/s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof timing / sizeof *timing; i++) {
        const cfg *c = &timing[i];
        run r;
        setup(&r, c);
        char plan[768];
        fprintf(stderr, "time  %-20s %s\n", c->name, imb_scan_cuda_plan(&r.g, c->z, plan, sizeof plan));
        const float tf = time_ms(0, &r, NULL, NULL, 0, st), tb = time_ms(1, &r, NULL, NULL, 0, st);
        /* bytes each pass must move: its inputs once, its outputs once (gradients are added: read and written),
         * the forward's saved chunk states; parameters [K*Dm, N] and the dB/dC partials not counted */
        double fb = 4.0 * (double)(r.nin[U] + r.nin[DELTA] + r.nin[B] + r.nin[C] + r.nin[Z] + r.nin[MASK] + r.nout[Y]);
        double st_bytes = 0;
        {
            /* states: the part of the forward workspace before the simple kernel's [Bt*Dm, N] */
            const double s = (double)r.nfws - (double)(c->Bt * c->Dm * c->N);
            st_bytes = 4.0 * (s > 0 ? s : 0);
        }
        fb += st_bytes;
        const double bb = 4.0 * (double)(r.nin[U] + r.nin[DELTA] + r.nin[B] + r.nin[C] + r.nin[Z] + r.nin[MASK] +
                                         r.nin[DY]) + st_bytes +
                          8.0 * (double)(r.nout[DU] + r.nout[DDELTA] + r.nout[DB] + r.nout[DC] + r.nout[DZ]);
        const double E = (double)(c->Bt * c->Dm * c->L * c->N * c->dirs);
        const double est = fmax(E / (sms * 16.0 * ghz * 1e9), 4.0 * E / (sms * 128.0 * ghz * 1e9)) * 1e3;
        printf("| (%lld, %lld, %lld, %lld) | %d %d %s | %.3f | %.0f | %.0f | %.0f%% | %.3f | %.2f | %.3f | %.2f | %.0f | "
               "%.0f |\n",
               (long long)c->Bt, (long long)c->Dm, (long long)c->L, (long long)c->N, c->dirs, c->K, c->z ? "y" : "n",
               tf, fb * 1e-6, fb / (tf * 1e-3) * 1e-9, 100.0 * fb / (tf * 1e-3) / bw, est, tf / est, tb, tb / tf,
               bb * 1e-6, bb / (tb * 1e-3) * 1e-9);
        fflush(stdout);
        teardown(&r);
    }
}

/* plans tried by sweep mode (those a shape cannot use are clamped by the planner) */
static const char *const sweep_cfgs[] = {
    "", "acc=global", "rf=4,rb=4", "rf=2,rb=2", "rb=4,acc=global", "nw=2", "nw=4", "nw=8", "items=4", "items=8",
    "nw=4,rf=2,rb=2", "nw=2,rf=4,rb=4", "nw=8,items=8", "atomics=1", "atomics=1,acc=global",
};

static void sweep(cudaStream_t st) {
    printf("| shape | IMB_SCAN_CFG | fwd ms | bwd ms | plan |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof timing / sizeof *timing; i++) {
        const cfg *c = &timing[i];
        run r;
        setup(&r, c);
        for (size_t k = 0; k < sizeof sweep_cfgs / sizeof *sweep_cfgs; k++) {
            setenv("IMB_SCAN_CFG", sweep_cfgs[k], 1);
            alloc_ws(&r);
            char plan[768];
            imb_scan_cuda_plan(&r.g, c->z, plan, sizeof plan);
            const float tf = time_ms(0, &r, NULL, NULL, 0, st), tb = time_ms(1, &r, NULL, NULL, 0, st);
            printf("| %s | %s | %.3f | %.3f | %s |\n", c->name, sweep_cfgs[k][0] ? sweep_cfgs[k] : "(default)", tf, tb,
                   plan);
            fflush(stdout);
        }
        teardown(&r);
    }
    unsetenv("IMB_SCAN_CFG");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "all", *root = argc > 2 ? argv[2] : "scan_check";
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        printf("scan_bench: no CUDA device\n");
        return 77;
    }
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    int bad = 0;
    if (!strcmp(mode, "check") || !strcmp(mode, "all")) {
        if (mkdir(root, 0755) && errno != EEXIST) {
            fprintf(stderr, "scan_bench: cannot create %s: %s\n", root, strerror(errno));
            return 2;
        }
        check_mode = 1;
        for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) bad += check_case(&checks[i], root, st);
        check_mode = 0;
        printf("check: %d of %zu cases with fast/simple differences above 1e-5 or a non-deterministic backward\n",
               bad, sizeof checks / sizeof *checks);
    }
    if (!strcmp(mode, "time") || !strcmp(mode, "all")) time_all(st);
    if (!strcmp(mode, "sweep")) sweep(st);
    if (!strcmp(mode, "once"))
        for (size_t i = 0; i < sizeof timing / sizeof *timing; i++) {
            run r;
            setup(&r, &timing[i]);
            fwd(&r, st);
            bwd(&r, st);
            CK(cudaStreamSynchronize(st));
            teardown(&r);
        }
    cudaStreamDestroy(st);
    return bad ? 1 : 0;
}
