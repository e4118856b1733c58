/* test_ref_shape_ops.c — unit tests of the reference kernels for data movement: FLATTEN, RESHAPE, SQUEEZE, UNSQUEEZE, CONCAT, GATHER, TRANSPOSE, PAD, CAST, IDENTITY.
 * Expected values come from onnxruntime via oracle/ref_oracle.py (cases in
 * oracle/ref_cases_shape_ops.py, generated into oracle/test_ref_shape_ops_cases.inc); each case builds a
 * one-node IR graph with constant inputs, infers and folds it. */
#include "ref_testutil.h"

#include "oracle/test_ref_shape_ops_cases.inc"

int main(void) {
    const struct CMUnitTest tests[] = {REF_CASES};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
