/* CUDA-vs-CPU parity over the whole op table (fp32 relative error <= 1e-5).
 * Exits 77 (automake SKIP) on a build or machine without a CUDA device. */
#include "optest.h"
#include "mem.h"
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    if (!imb_have_cuda()) {
        printf("parity: no CUDA device in this build/machine: SKIP\n");
        return 77;
    }
    int fails = 0, n = 0;
    for (; n < optest_count(); n++) {
            const op_case *c = optest_case(n);
            optest_result r;
            optest_parity(c, 1e-5, &r);
            printf("parity  %-28s max_rel %.2e  %s%s\n", c->name, r.max_err, r.msg[0] ? "FAIL " : "ok", r.msg);
            fails += r.msg[0] != 0;
        }
    printf("%d passed, %d failed\n", n - fails, fails);
    return fails ? EXIT_FAILURE : EXIT_SUCCESS;
}
