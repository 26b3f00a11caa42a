/* CUDA-vs-CPU parity over the whole op table (fp32 relative error <= 1e-5).
 * Exits 77 (automake SKIP) on a build or machine without a CUDA device. An op whose CUDA
 * kernel is not written yet is listed as "missing" (counted and printed, not a failure: its
 * issue tracks it); any other difference or error fails.
 * The selective-scan cases run again under other plans of the CUDA scan (kernels/scan.h):
 * short chunks, so that the sequences span several chunks with a partial last one, more warps
 * per channel, channel slots that do not divide the group, accumulators and rows in global
 * memory, and the simple kernels. An argument runs only the cases whose name starts with it (for the
 * sanitizers: test_parity scan). */
#include "optest.h"
#include "mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* environment of each extra pass over the scan cases: IMB_SCAN_CFG, IMB_SCAN_KERNEL */
static const char *const scan_passes[][2] = {
    { "nw=1,items=4,rf=3,rb=3", NULL },
    { "nw=2,items=4,rb=2,acc=global,tiles=2", NULL },
    { "nw=4,items=7,rf=1,rb=1,rows=global", NULL },
    { NULL, "simple" },
};

static void set_env(const char *k, const char *v) {
    if (v) setenv(k, v, 1);
    else unsetenv(k);
}

int main(int argc, char **argv) {
    if (!imb_have_cuda()) {
        printf("parity: no CUDA device in this build/machine: SKIP\n");
        return 77;
    }
    const char *only = argc > 1 ? argv[1] : "";
    int fails = 0, missing = 0, passed = 0, n = optest_count();
    const int npass = 1 + (int)(sizeof scan_passes / sizeof *scan_passes);
    for (int pass = 0; pass < npass; pass++) {
        const char *cfg = pass ? scan_passes[pass - 1][0] : NULL, *kern = pass ? scan_passes[pass - 1][1] : NULL;
        set_env("IMB_SCAN_CFG", cfg);
        set_env("IMB_SCAN_KERNEL", kern);
        for (int i = 0; i < n; i++) {
            const op_case *c = optest_case(i);
            if (strncmp(c->name, only, strlen(only)) || (pass && strncmp(c->name, "scan", 4))) continue;
            optest_result r;
            optest_parity(c, 1e-5, &r);
            int miss = strstr(r.msg, "no CUDA kernel for this op yet") != NULL;
            printf("parity  %-28s max_rel %.2e  %s%s%s%s%s\n", c->name, r.max_err,
                   miss ? "missing " : r.msg[0] ? "FAIL " : "ok", r.msg, pass ? "  [" : "",
                   pass ? (cfg ? cfg : kern) : "", pass ? "]" : "");
            missing += miss;
            fails += r.msg[0] && !miss;
            passed += !r.msg[0];
        }
    }
    set_env("IMB_SCAN_CFG", NULL);
    set_env("IMB_SCAN_KERNEL", NULL);
    printf("parity: %d cases without a CUDA kernel yet\n", missing);
    printf("%d passed, %d failed\n", passed, fails);
    return fails ? EXIT_FAILURE : EXIT_SUCCESS;
}
