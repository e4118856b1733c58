/* test_ref_linalg.c — unit tests of the reference kernels for GEMM (alpha/beta, transposes, broadcast C) and batched MATMUL.
 * Expected values come from onnxruntime via oracle/ref_oracle.py (cases in
 * oracle/ref_cases_linalg.py, generated into oracle/test_ref_linalg_cases.inc); each case builds a
 * one-node IR graph with constant inputs, infers and folds it. */
#include "ref_testutil.h"

#include "oracle/test_ref_linalg_cases.inc"

int main(void) {
    const struct CMUnitTest tests[] = {REF_CASES};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
