/* test_ir.c — unit tests of the graph IR: building, cloning, use counts,
 * replacing uses, removing nodes and compaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ir/ir.h"

/* x -> relu -> a -> relu -> b (output); w is an unused constant. */
static osp_graph_t *chain(void) {
    osp_graph_t *g = osp_graph_create();
    int64_t d[4] = {-1, 3, 4, 4};
    int x = osp_graph_add_value(g, "x", OSP_DT_F32, 4, d);
    int a = osp_graph_add_value(g, "a", OSP_DT_F32, 4, d);
    int b = osp_graph_add_value(g, "b", OSP_DT_F32, 4, d);
    int w = osp_graph_add_value(g, "w", OSP_DT_F32, 1, (int64_t[]){2});
    float *wd = malloc(2 * sizeof(float));
    wd[0] = 1.f;
    wd[1] = 2.f;
    osp_graph_set_const(g, w, wd, 2 * sizeof(float));
    assert_int_equal(osp_graph_add_node(g, OSP_OP_RELU, "r1", &x, 1, &a, 1), 0);
    assert_int_equal(osp_graph_add_node(g, OSP_OP_RELU, NULL, &a, 1, &b, 1), 1);
    g->inputs = malloc(sizeof(int));
    g->inputs[0] = x;
    g->n_inputs = 1;
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = b;
    g->n_outputs = 1;
    return g;
}

static void test_build_and_names(void **state) {
    (void)state;
    osp_graph_t *g = chain();
    assert_int_equal(g->n_values, 4);
    assert_int_equal(g->n_nodes, 2);
    assert_string_equal(g->nodes[1].name, "RELU_1");
    assert_int_equal(osp_graph_find_value(g, "a"), 1);
    assert_int_equal(osp_graph_find_value(g, "nope"), -1);
    assert_int_equal(g->values[1].producer, 0);
    assert_int_equal(g->values[0].producer, -1);
    assert_int_equal(osp_graph_use_count(g, 1), 1);
    assert_int_equal(osp_graph_use_count(g, 2), 1); /* graph output */
    assert_true(osp_value_is_const(&g->values[3]));
    assert_string_equal(osp_op_name(OSP_OP_CONV), "CONV");
    assert_string_equal(osp_op_name(OSP_OP_COUNT), "?");
    osp_graph_destroy(g);
}

static void test_remove_and_compact(void **state) {
    (void)state;
    osp_graph_t *g = chain();
    /* Bypass the first relu: the second reads x directly. */
    osp_graph_replace_uses(g, 1, 0);
    osp_graph_remove_node(g, 0);
    assert_int_equal(osp_graph_use_count(g, 0), 1);
    assert_int_equal(osp_graph_compact(g), 0);
    assert_int_equal(g->n_nodes, 1);
    assert_int_equal(g->n_values, 2); /* x and b; a and w dropped */
    assert_string_equal(g->values[g->nodes[0].in[0]].name, "x");
    assert_string_equal(g->values[g->outputs[0]].name, "b");
    assert_int_equal(g->values[g->outputs[0]].producer, 0);
    osp_graph_destroy(g);
}

static void test_clone_shares_constants(void **state) {
    (void)state;
    osp_graph_t *g = chain();
    float sc = 0.5f;
    int32_t zp = 3;
    assert_int_equal(osp_graph_set_quant(g, 1, -1, 1, &sc, &zp), 0);
    osp_graph_t *c = osp_graph_clone(g);
    assert_non_null(c);
    assert_int_equal(c->n_nodes, 2);
    assert_ptr_equal(c->values[3].data, g->values[3].data);
    assert_true(c->values[3].data_borrowed);
    assert_ptr_not_equal(c->values[1].quant, g->values[1].quant);
    assert_int_equal(c->values[1].quant->zero_point[0], 3);
    c->values[0].dims[0] = 8; /* specialising the copy leaves g alone */
    assert_int_equal(g->values[0].dims[0], -1);
    osp_graph_destroy(c); /* must not free g's constant */
    assert_true(((float *)g->values[3].data)[1] == 2.f);
    osp_graph_destroy(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_names),
        cmocka_unit_test(test_remove_and_compact),
        cmocka_unit_test(test_clone_shares_constants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
