/* test_ref_pool.c — unit tests of the reference kernels for MAXPOOL/AVGPOOL (ceil_mode, count_include_pad, dilations, auto_pad) and global pools.
 * Expected values come from onnxruntime via oracle/ref_oracle.py (cases in
 * oracle/ref_cases_pool.py, generated into oracle/test_ref_pool_cases.inc); each case builds a
 * one-node IR graph with constant inputs, infers and folds it. */
#include "ref_testutil.h"

#include "oracle/test_ref_pool_cases.inc"

int main(void) {
    const struct CMUnitTest tests[] = {REF_CASES};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
