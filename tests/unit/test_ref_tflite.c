/* test_ref_tflite.c — the reference kernels on quantized TFLite models
 * (uint8 MobileNets from shared/models/tflite): the importer's IR, with
 * osp_quant_t on the values, is interpreted node by node (quantized ops run
 * on the integer kernels of ref_qconv.c / ref_qarith.c) and the logits are
 * compared with LiteRT's builtin TFLite kernels for a deterministic input
 * (oracle/ref_oracle_tflite.py generated oracle/test_ref_tflite_cases.inc): at most one
 * quantization step apart (measured: identical) and the same top-1. Skipped
 * when the models are absent ($OSPREY_MODELS, else
 * $OSP_SOURCE_DIR/../shared/models). */
#include "ref_testutil.h"

#include "engine/import/tflite_import.h"

#include "oracle/test_ref_tflite_cases.inc"

static int ran; /* models found and checked */

static bool model_path(const char *name, char *path, size_t n) {
    const char *env = getenv("OSPREY_MODELS");
    const char *src = getenv("OSP_SOURCE_DIR");
    if (env)
        snprintf(path, n, "%s/tflite/%s.tflite", env, name);
    else
        snprintf(path, n, "%s/../shared/models/tflite/%s.tflite",
                 src ? src : ".", name);
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* The executor's allocation-free entry: scratch sized at plan time. */
static void test_scratch_api(void **state) {
    (void)state;
    osp_graph_t *g = osp_graph_create();
    int a = osp_graph_add_value(g, "a", OSP_DT_U8, 1, D(3));
    int y = osp_graph_add_value(g, "y", OSP_DT_U8, 1, D(3));
    osp_graph_set_quant(g, a, -1, 1, (float[]){0.5f}, (int32_t[]){4});
    osp_graph_set_quant(g, y, -1, 1, (float[]){0.5f}, (int32_t[]){4});
    /* SIGMOID keeps the float fallback (dequantize -> float -> requantize);
     * RELU on equal quantization is an integer kernel needing no scratch */
    int ri = osp_graph_add_node(g, OSP_OP_RELU, "r", &a, 1, &y, 1);
    int ni = osp_graph_add_node(g, OSP_OP_SIGMOID, "s", &a, 1, &y, 1);
    uint8_t av[3] = {0, 4, 9}, yv[3] = {0};
    osp_tensor_t in = osp_value_tensor(&g->values[a]);
    osp_tensor_t out = osp_value_tensor(&g->values[y]);
    in.data = av;
    out.data = yv;
    assert_int_equal(osp_ref_scratch_bytes(g, &g->nodes[ri], &in, &out), 0);
    osp_err_t rerr = {0};
    assert_int_equal(osp_ref_run_node_ws(g, &g->nodes[ri], &in, &out, NULL,
                                         0, &rerr),
                     0);
    /* relu in the real domain clamps at the zero point */
    assert_true(yv[0] == 4 && yv[1] == 4 && yv[2] == 9);
    size_t need = osp_ref_scratch_bytes(g, &g->nodes[ni], &in, &out);
    assert_true(need >= 6 * sizeof(float));
    float scratch[64];
    osp_err_t err = {0};
    assert_int_equal(osp_ref_run_node_ws(g, &g->nodes[ni], &in, &out,
                                         scratch, 4, &err),
                     OSP_EINVAL);
    assert_non_null(strstr(err.msg, "scratch"));
    assert_int_equal(osp_ref_run_node_ws(g, &g->nodes[ni], &in, &out,
                                         scratch, sizeof scratch, &err),
                     0);
    /* sigmoid(-2, 0, 2.5) = 0.12, 0.5, 0.92 -> 4 + round(x / 0.5) */
    assert_true(yv[0] == 4 && yv[1] == 5 && yv[2] == 6);
    /* float nodes need none */
    g->values[a].dtype = g->values[y].dtype = OSP_DT_F32;
    in.dtype = out.dtype = OSP_DT_F32;
    assert_int_equal(osp_ref_scratch_bytes(g, &g->nodes[ni], &in, &out), 0);
    osp_graph_destroy(g);
}

static void test_tflite_quant_models(void **state) {
    (void)state;
    for (size_t k = 0; k < OSP_ARRAY_LEN(tfl_cases); k++) {
        char path[1024];
        if (!model_path(tfl_cases[k].model, path, sizeof path)) {
            printf("skipping %s: %s not found\n", tfl_cases[k].model, path);
            continue;
        }
        osp_err_t err = {0};
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(osp_read_file(path, 1u << 30, &buf, &len, &err), 0);
        osp_graph_t *g = osp_tflite_import(buf, len, &err);
        free(buf);
        if (!g)
            fail_msg("%s: %s", path, err.msg);
        osp_value_t *x = &g->values[g->inputs[0]];
        if (x->dims[0] < 0)
            x->dims[0] = 1;
        size_t n = osp_value_numel(x);
        assert_true(x->dtype == OSP_DT_U8 || x->dtype == OSP_DT_S8);
        uint8_t *d = malloc(n);
        for (size_t i = 0; i < n; i++)
            d[i] = (uint8_t)(((i * 7 + 3) % 256) ^
                             (x->dtype == OSP_DT_S8 ? 0x80 : 0));
        osp_graph_set_const(g, g->inputs[0], d, n);
        for (int i = 0; i < g->n_nodes; i++)
            if (!osp_ref_supports(g, &g->nodes[i]))
                fail_msg("%s: node %s (%s) not supported", path,
                         g->nodes[i].name, osp_op_name(g->nodes[i].op));
        if (ref_interpret(g, &err) < 0)
            fail_msg("%s: %s", path, err.msg);
        /* The importer dequantizes the u8 output for callers; compare the
         * quantized steps in front of that DEQUANTIZE. */
        osp_value_t *y = &g->values[g->outputs[0]];
        for (int i = 0; i < g->n_nodes; i++) /* (producers were reset) */
            if (g->nodes[i].op == OSP_OP_DEQUANTIZE &&
                g->nodes[i].out[0] == g->outputs[0])
                y = &g->values[g->nodes[i].in[0]];
        osp_tensor_t t = osp_value_tensor(y);
        assert_int_equal(osp_value_numel(y), tfl_cases[k].n);
        int64_t maxdiff = 0;
        size_t top_got = 0, top_want = 0;
        for (size_t i = 0; i < tfl_cases[k].n; i++) {
            int64_t got = osp_tensor_get_i64(&t, i);
            int64_t want = tfl_cases[k].want[i];
            int64_t dd = got > want ? got - want : want - got;
            maxdiff = dd > maxdiff ? dd : maxdiff;
            if (got > osp_tensor_get_i64(&t, top_got))
                top_got = i;
            if (want > tfl_cases[k].want[top_want])
                top_want = i;
        }
        printf("%s: max |diff| %lld steps, top-1 %zu (LiteRT %zu)\n",
               tfl_cases[k].model, (long long)maxdiff, top_got, top_want);
        assert_true(maxdiff <= 1);
        assert_int_equal(top_got, top_want);
        osp_graph_destroy(g);
        ran++;
    }
}

/* Quantized ops on hand-built graphs: inputs with different scales, and a
 * constant pad that must produce the zero point. */
static void test_quantized_small(void **state) {
    (void)state;
    one_t o = one_new();
    int a = one_const(&o, OSP_DT_U8, 1, D(2), (uint8_t[]){10, 14});
    int b = one_const(&o, OSP_DT_U8, 1, D(1), (uint8_t[]){3});
    osp_graph_set_quant(o.g, a, -1, 1, (float[]){0.5f}, (int32_t[]){10});
    osp_graph_set_quant(o.g, b, -1, 1, (float[]){1.0f}, NULL);
    one_node(&o, OSP_OP_CONCAT);
    o.g->values[o.out[0]].dtype = OSP_DT_U8;
    osp_graph_set_quant(o.g, o.out[0], -1, 1, (float[]){0.25f}, NULL);
    one_check_raw(&o, OSP_DT_U8, 1, D(3), (uint8_t[]){0, 8, 12});

    o = one_new();
    a = one_const(&o, OSP_DT_U8, 1, D(2), (uint8_t[]){8, 9});
    osp_graph_set_quant(o.g, a, -1, 1, (float[]){1.0f}, (int32_t[]){7});
    one_in_i64(&o, 1, D(2), (int64_t[]){1, 1});
    one_node(&o, OSP_OP_PAD);
    osp_graph_set_quant(o.g, o.out[0], -1, 1, (float[]){1.0f}, (int32_t[]){7});
    one_check_raw(&o, OSP_DT_U8, 1, D(4), (uint8_t[]){7, 8, 9, 7});
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantized_small),
        cmocka_unit_test(test_scratch_api),
        cmocka_unit_test(test_tflite_quant_models),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0 && !ran) {
        printf("SKIP: no quantized TFLite models found (set OSPREY_MODELS)\n");
        return 77;
    }
    return rc;
}
