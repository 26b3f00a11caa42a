/* Runs Check suites the same way in every test program: exit status from the failure count. */
#ifndef IMB_CHECKRUN_H
#define IMB_CHECKRUN_H
#include <check.h>
#include <stdlib.h>

/* Runs sr (fork mode as set on it), frees it, returns EXIT_SUCCESS only when nothing failed. */
static inline int imb_check_run(SRunner *sr) {
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
#endif
