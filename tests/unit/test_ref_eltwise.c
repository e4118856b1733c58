/* test_ref_eltwise.c — unit tests of the reference kernels for activations and broadcasting ADD/SUB/MUL/DIV (f32, s32, s64).
 * Expected values come from onnxruntime via oracle/ref_oracle.py (cases in
 * oracle/ref_cases_eltwise.py, generated into oracle/test_ref_eltwise_cases.inc); each case builds a
 * one-node IR graph with constant inputs, infers and folds it. */
#include "ref_testutil.h"

#include "oracle/test_ref_eltwise_cases.inc"

static void test_int_div_by_zero(void **state) {
    (void)state;
    one_t o = one_new();
    one_const(&o, OSP_DT_S64, 1, D(2), (int64_t[]){4, 5});
    one_const(&o, OSP_DT_S64, 1, D(2), (int64_t[]){2, 0});
    one_node(&o, OSP_OP_DIV);
    one_fail(&o, OSP_EINVAL, "node 'n0' (DIV): integer division by zero");
}

/* The executor's path: caller-provided buffers, no graph constants. */
static void test_run_node_direct(void **state) {
    (void)state;
    osp_graph_t *g = osp_graph_create();
    int a = osp_graph_add_value(g, "a", OSP_DT_F32, 2, D(2, 2));
    int b = osp_graph_add_value(g, "b", OSP_DT_F32, 1, D(2));
    int y = osp_graph_add_value(g, "y", OSP_DT_F32, 2, D(2, 2));
    int ni = osp_graph_add_node(g, OSP_OP_SUB, "sub", (int[]){a, b}, 2, &y, 1);
    float av[4] = {1, 2, 3, 4}, bv[2] = {10, 20}, yv[4];
    osp_tensor_t in[2] = {osp_value_tensor(&g->values[a]),
                          osp_value_tensor(&g->values[b])};
    in[0].data = av;
    in[1].data = bv;
    osp_tensor_t out = osp_value_tensor(&g->values[y]);
    out.data = yv;
    osp_err_t err = {0};
    assert_int_equal(osp_ref_run_node(g, &g->nodes[ni], in, &out, &err), 0);
    assert_true(yv[0] == -9 && yv[1] == -18 && yv[2] == -7 && yv[3] == -16);
    assert_true(osp_ref_supports(g, &g->nodes[ni]));
    g->values[a].dtype = g->values[b].dtype = OSP_DT_F16;
    assert_false(osp_ref_supports(g, &g->nodes[ni]));
    /* a missing input buffer is an error, not a crash */
    in[0].data = NULL;
    assert_int_equal(osp_ref_run_node(g, &g->nodes[ni], in, &out, &err),
                     OSP_EINVAL);
    osp_graph_destroy(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        REF_CASES
        cmocka_unit_test(test_int_div_by_zero),
        cmocka_unit_test(test_run_node_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
