/* test_ref_norm.c — unit tests of the reference kernels for BATCHNORM, LRN, SOFTMAX (legacy and opset 13) and REDUCE_MEAN.
 * Expected values come from onnxruntime via oracle/ref_oracle.py (cases in
 * oracle/ref_cases_norm.py, generated into oracle/test_ref_norm_cases.inc); each case builds a
 * one-node IR graph with constant inputs, infers and folds it. */
#include "ref_testutil.h"

#include "oracle/test_ref_norm_cases.inc"

int main(void) {
    const struct CMUnitTest tests[] = {REF_CASES};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
