/* test_ref_conv.c — unit tests of the reference kernels for CONV (groups, depthwise, dilations, asymmetric/auto pads, 1-D/2-D/3-D, fused post-ops).
 * Expected values come from onnxruntime via oracle/ref_oracle.py (cases in
 * oracle/ref_cases_conv.py, generated into oracle/test_ref_conv_cases.inc); each case builds a
 * one-node IR graph with constant inputs, infers and folds it. */
#include "ref_testutil.h"

#include "oracle/test_ref_conv_cases.inc"

int main(void) {
    const struct CMUnitTest tests[] = {REF_CASES};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
