/* test_tflite_import.c — the TFLite importer and FlatBuffer reader: the
 * ../shared TFLite models import with the expected structure and
 * quantization; truncated and corrupted files fail cleanly (ASan watches). */
#include "engine_testutil.h"
#include "engine/import/flatbuf.h"
#include "engine/ir/ir.h"
#include "engine/import/tflite_import.h"

static int load(const char *name, uint8_t **buf, size_t *len) {
    char path[2048];
    const char *env = getenv("OSPREY_MODELS");
    const char *src = getenv("OSP_SOURCE_DIR");
    if (env && *env)
        snprintf(path, sizeof path, "%s/tflite/%s", env, name);
    else
        snprintf(path, sizeof path, "%s/../shared/models/tflite/%s",
                 src ? src : ".", name);
    osp_err_t err = {0};
    if (osp_read_file(path, 1u << 28, buf, len, &err)) {
        printf("SKIP %s: %s (set OSPREY_MODELS or provide ../shared)\n", name,
               err.msg);
        return -1;
    }
    return 0;
}

static void test_mobilenet_v2_uint8(void **state) {
    (void)state;
    uint8_t *buf;
    size_t len;
    if (load("mobilenet_v2_1.0_224_quant.tflite", &buf, &len))
        skip();
    osp_err_t err = {0};
    osp_graph_t *g = osp_tflite_import(buf, len, &err);
    free(buf);
    if (!g)
        fail_msg("%s", err.msg);
    assert_int_equal(tu_count_op(g, OSP_OP_CONV), 36 + 17);
    assert_int_equal(tu_count_op(g, OSP_OP_ADD), 10);
    assert_int_equal(tu_count_op(g, OSP_OP_AVGPOOL), 1);
    assert_int_equal(tu_count_op(g, OSP_OP_SOFTMAX), 1);
    /* Input: NHWC uint8 with dynamic batch, quantized (1/128, 128). */
    const osp_value_t *in = &g->values[g->inputs[0]];
    assert_int_equal(in->dtype, OSP_DT_U8);
    assert_int_equal(in->rank, 4);
    assert_int_equal(in->dims[0], -1);
    assert_int_equal(in->dims[3], 3);
    assert_non_null(in->quant);
    assert_int_equal(in->quant->zero_point[0], 128);
    assert_true(in->quant->scale[0] == 0.0078125f);
    /* First conv: 32 output channels, 3x3 stride 2, SAME, weights OIHW u8
     * per-tensor; a depthwise conv has group = channels. */
    const osp_node_t *c0 = NULL, *dw = NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_CONV && !c0)
            c0 = n;
        if (n->op == OSP_OP_CONV && n->p.conv.group > 1 && !dw)
            dw = n;
    }
    const osp_value_t *w = &g->values[c0->in[1]];
    assert_int_equal(w->dims[0], 32);
    assert_int_equal(w->dims[1], 3);
    assert_int_equal(w->dims[2], 3);
    assert_int_equal(c0->p.conv.win.stride[0], 2);
    assert_int_equal(c0->p.conv.win.auto_pad, OSP_PAD_SAME_UPPER);
    assert_int_equal(w->quant->axis, -1);
    assert_int_equal(dw->p.conv.group, 32);
    assert_int_equal(g->values[dw->in[1]].dims[1], 1);
    /* The u8 output is dequantized in the graph: float scores out. */
    const osp_value_t *out = &g->values[g->outputs[0]];
    assert_int_equal(out->dtype, OSP_DT_F32);
    assert_int_equal(out->rank, 2);
    assert_int_equal(out->dims[0], -1);
    assert_int_equal(out->dims[1], 1001);
    const osp_node_t *dq = &g->nodes[out->producer];
    assert_int_equal(dq->op, OSP_OP_DEQUANTIZE);
    const osp_value_t *q = &g->values[dq->in[0]];
    assert_int_equal(q->dtype, OSP_DT_U8);
    assert_true(q->quant->scale[0] == 0.00390625f);
    osp_graph_destroy(g);
}

static void test_tf2_ptq_per_channel(void **state) {
    (void)state;
    uint8_t *buf;
    size_t len;
    if (load("tf2_mobilenet_v2_1.0_224_ptq.tflite", &buf, &len))
        skip();
    osp_err_t err = {0};
    osp_graph_t *g = osp_tflite_import(buf, len, &err);
    free(buf);
    if (!g)
        fail_msg("%s", err.msg);
    assert_int_equal(tu_count_op(g, OSP_OP_QUANTIZE), 2);
    assert_int_equal(tu_count_op(g, OSP_OP_REDUCE_MEAN), 1);
    int checked = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op != OSP_OP_CONV)
            continue;
        const osp_value_t *w = &g->values[n->in[1]];
        assert_int_equal(w->dtype, OSP_DT_S8);
        assert_non_null(w->quant);
        /* Per-channel along the output channels, after relayout. */
        assert_int_equal(w->quant->axis, 0);
        assert_int_equal(w->quant->count, w->dims[0]);
        for (int c = 0; c < w->quant->count; c++)
            assert_int_equal(w->quant->zero_point[c], 0);
        checked++;
    }
    assert_int_equal(checked, 53);
    /* MEAN over NHWC axes 1,2 → NCHW axes 2,3. */
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == OSP_OP_REDUCE_MEAN) {
            assert_int_equal(g->nodes[i].p.axes.n_axes, 2);
            assert_int_equal(g->nodes[i].p.axes.axes[0], 2);
            assert_int_equal(g->nodes[i].p.axes.axes[1], 3);
        }
    osp_graph_destroy(g);
}

static void test_damaged_files(void **state) {
    (void)state;
    uint8_t *buf;
    size_t len;
    if (load("mobilenet_v1_0.25_128_quant.tflite", &buf, &len))
        skip();
    osp_err_t err = {0};
    /* ~800 truncations, each in an exact-size heap copy. */
    size_t step = len / 800 + 1;
    for (size_t n = 0; n < len; n += step) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        osp_graph_t *g = osp_tflite_import(cut, n, &err);
        osp_graph_destroy(g);
        free(cut);
    }
    /* Bytes flipped in the FlatBuffer tables (the first few KB and the end
     * hold most offsets); must never crash. */
    uint32_t seed = 12345;
    for (int i = 0; i < 1500; i++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % len;
            if (i & 1)
                pos = len - 1 - pos % 4096;
            else if (i & 2)
                pos %= 4096;
            copy[pos] ^= (uint8_t)(seed >> 24 | 1);
        }
        osp_graph_t *g = osp_tflite_import(copy, len, &err);
        osp_graph_destroy(g);
        free(copy);
    }
    /* Not a TFLite file at all. */
    assert_null(osp_tflite_import("hello world, not a model", 24, &err));
    assert_int_equal(err.code, OSP_EFORMAT);
    free(buf);
}

static void test_flatbuf_bounds(void **state) {
    (void)state;
    /* root offset pointing past the end */
    uint8_t b[16] = {200, 0, 0, 0, 'T', 'F', 'L', '3'};
    osp_fb_t fb = {.buf = b, .len = sizeof b};
    osp_fb_table_t t;
    assert_false(osp_fb_root(&fb, &t));
    assert_true(fb.bad);
    /* a table whose vtable offset points outside the buffer */
    uint8_t c[16] = {8, 0, 0, 0, 'T', 'F', 'L', '3', 0x00, 0x00, 0x00, 0x80};
    osp_fb_t fc = {.buf = c, .len = sizeof c};
    assert_false(osp_fb_root(&fc, &t));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mobilenet_v2_uint8),
        cmocka_unit_test(test_tf2_ptq_per_channel),
        cmocka_unit_test(test_damaged_files),
        cmocka_unit_test(test_flatbuf_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
