/* test_ref_quant.c — unit tests of the reference kernels for QUANTIZE/DEQUANTIZE (per tensor/axis, u8/s8, ties to even).
 * Expected values come from onnxruntime via oracle/ref_oracle.py (cases in
 * oracle/ref_cases_quant.py, generated into oracle/test_ref_quant_cases.inc); each case builds a
 * one-node IR graph with constant inputs, infers and folds it. */
#include "ref_testutil.h"

#include "oracle/test_ref_quant_cases.inc"

/* TFLite style: no scale input; the quantized value carries osp_quant_t
 * (per-channel on axis 0 here). */
static void test_quant_on_value(void **state) {
    (void)state;
    one_t o = one_new();
    one_const(&o, OSP_DT_F32, 2, D(2, 3),
              (float[]){-1.0f, 0.25f, 0.75f, 100.f, -0.5f, 0.3f});
    one_node(&o, OSP_OP_QUANTIZE);
    o.g->values[o.out[0]].dtype = OSP_DT_S8; /* the importer's choice */
    assert_int_equal(osp_graph_set_quant(o.g, o.out[0], 0, 2,
                                         (float[]){0.5f, 0.1f},
                                         (int32_t[]){1, -3}),
                     0);
    /* -1/.5+1=-1, .5+1→0 (tie to even)+1=1, 1.5→2+1=3; 1000-3 sat 127,
     * -5-3=-8, 3-3=0 */
    one_check_raw(&o, OSP_DT_S8, 2, D(2, 3),
                  (int8_t[]){-1, 1, 3, 127, -8, 0});

    o = one_new();
    int q = one_const(&o, OSP_DT_U8, 1, D(4), (uint8_t[]){0, 10, 128, 255});
    assert_int_equal(osp_graph_set_quant(o.g, q, -1, 1, (float[]){0.5f},
                                         (int32_t[]){10}),
                     0);
    one_node(&o, OSP_OP_DEQUANTIZE);
    one_check_f32(&o, 1, D(4), (float[]){-5.f, 0.f, 59.f, 122.5f}, 0);
}

static void test_quant_errors(void **state) {
    (void)state;
    one_t o = one_new();
    one_in_f32(&o, 1, D(4), 1);
    one_node(&o, OSP_OP_QUANTIZE);
    one_fail(&o, OSP_ESHAPE, "no scale input and no quantization");
    o = one_new();
    one_in_f32(&o, 2, D(2, 3), 1);
    one_const(&o, OSP_DT_F32, 1, D(2), (float[]){1.f, 2.f});
    osp_node_t *n = one_node(&o, OSP_OP_QUANTIZE);
    n->p.cast.axis = 1;
    one_fail(&o, OSP_ESHAPE, "per-axis scale of 2 elements");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        REF_CASES
        cmocka_unit_test(test_quant_on_value),
        cmocka_unit_test(test_quant_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
