/* End to end through the tape: the demo MLP must learn two spirals to >= 99%. */
#include "demo.h"
#include "checkrun.h"
#include <stdlib.h>

START_TEST(mlp_learns_spirals) {
    imb_demo_cfg cfg = imb_demo_defaults();
    double acc, loss;
    char err[512] = "";
    ck_assert_msg(imb_demo_mlp(&cfg, &acc, &loss, stdout, err, sizeof err) == 0, "%s", err);
    printf("mlp two-spirals: accuracy %.4f, final loss %.4f\n", acc, loss);
    ck_assert_msg(acc >= 0.99, "accuracy %.4f < 0.99", acc);
}
END_TEST

int main(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("mlp");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, mlp_learns_spirals);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    return imb_check_run(sr);
}
