/* test_onnx_import.c — the ONNX importer: models built in memory with the
 * generated protobuf-c types, serialized, and imported; attribute and op
 * errors; every truncation of a valid model fails cleanly; and (when the
 * weights are available) the ../shared ONNX models import with the expected
 * structure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ir/ir.h"
#include "engine/import/onnx_import.h"
#include "onnx.pb-c.h"

/* --- a tiny model builder ------------------------------------------------ */

typedef struct {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    Onnx__NodeProto nodes[4];
    Onnx__NodeProto *node_ptrs[4];
    Onnx__AttributeProto attrs[8];
    Onnx__AttributeProto *attr_ptrs[4][4];
    Onnx__TensorProto inits[2];
    Onnx__TensorProto *init_ptrs[2];
    Onnx__ValueInfoProto vin, vout;
    Onnx__ValueInfoProto *vin_ptrs[1], *vout_ptrs[1];
    Onnx__TypeProto tin, tout;
    Onnx__TypeProto__Tensor ttin, ttout;
    Onnx__TensorShapeProto sin;
    Onnx__TensorShapeProto__Dimension dims[4];
    Onnx__TensorShapeProto__Dimension *dim_ptrs[4];
    float weights[2 * 3 * 3 * 3];
    int64_t wdims[4];
    char *conv_in[2], *conv_out[1], *relu_in[1], *relu_out[1];
    int64_t ints_k[2], ints_p[4];
} builder_t;

/* input x[N,3,8,8] → Conv(W[2,3,3,3], pads 1) → Relu → y */
static void build(builder_t *b, int64_t opset) {
    memset(b, 0, sizeof *b);
    onnx__model_proto__init(&b->m);
    onnx__graph_proto__init(&b->g);
    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = opset;
    b->opsets[0] = &b->opset;
    b->m.n_opset_import = 1;
    b->m.opset_import = b->opsets;
    b->m.has_ir_version = 1;
    b->m.ir_version = 8;
    b->m.producer_name = "test";
    b->m.graph = &b->g;
    b->g.name = "tiny";

    /* input */
    onnx__value_info_proto__init(&b->vin);
    onnx__type_proto__init(&b->tin);
    onnx__type_proto__tensor__init(&b->ttin);
    onnx__tensor_shape_proto__init(&b->sin);
    int64_t shape[4] = {0, 3, 8, 8};
    for (int i = 0; i < 4; i++) {
        onnx__tensor_shape_proto__dimension__init(&b->dims[i]);
        if (i == 0) {
            b->dims[i].value_case =
                ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            b->dims[i].dim_param = "N";
        } else {
            b->dims[i].value_case =
                ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            b->dims[i].dim_value = shape[i];
        }
        b->dim_ptrs[i] = &b->dims[i];
    }
    b->sin.n_dim = 4;
    b->sin.dim = b->dim_ptrs;
    b->ttin.has_elem_type = 1;
    b->ttin.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    b->ttin.shape = &b->sin;
    b->tin.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    b->tin.tensor_type = &b->ttin;
    b->vin.name = "x";
    b->vin.type = &b->tin;
    b->vin_ptrs[0] = &b->vin;
    b->g.n_input = 1;
    b->g.input = b->vin_ptrs;

    /* output (no shape) */
    onnx__value_info_proto__init(&b->vout);
    onnx__type_proto__init(&b->tout);
    onnx__type_proto__tensor__init(&b->ttout);
    b->ttout.has_elem_type = 1;
    b->ttout.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    b->tout.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    b->tout.tensor_type = &b->ttout;
    b->vout.name = "y";
    b->vout.type = &b->tout;
    b->vout_ptrs[0] = &b->vout;
    b->g.n_output = 1;
    b->g.output = b->vout_ptrs;

    /* initializer W as float_data */
    onnx__tensor_proto__init(&b->inits[0]);
    for (int i = 0; i < 54; i++)
        b->weights[i] = (float)i * 0.01f;
    b->wdims[0] = 2;
    b->wdims[1] = 3;
    b->wdims[2] = 3;
    b->wdims[3] = 3;
    b->inits[0].name = "W";
    b->inits[0].has_data_type = 1;
    b->inits[0].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    b->inits[0].n_dims = 4;
    b->inits[0].dims = b->wdims;
    b->inits[0].n_float_data = 54;
    b->inits[0].float_data = b->weights;
    b->init_ptrs[0] = &b->inits[0];
    b->g.n_initializer = 1;
    b->g.initializer = b->init_ptrs;

    /* Conv(kernel_shape [3,3], pads [1,1,1,1]) */
    Onnx__AttributeProto *k = &b->attrs[0], *p = &b->attrs[1];
    onnx__attribute_proto__init(k);
    onnx__attribute_proto__init(p);
    b->ints_k[0] = b->ints_k[1] = 3;
    for (int i = 0; i < 4; i++)
        b->ints_p[i] = 1;
    k->name = "kernel_shape";
    k->has_type = 1;
    k->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    k->n_ints = 2;
    k->ints = b->ints_k;
    p->name = "pads";
    p->has_type = 1;
    p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    p->n_ints = 4;
    p->ints = b->ints_p;
    b->attr_ptrs[0][0] = k;
    b->attr_ptrs[0][1] = p;

    Onnx__NodeProto *conv = &b->nodes[0], *relu = &b->nodes[1];
    onnx__node_proto__init(conv);
    onnx__node_proto__init(relu);
    b->conv_in[0] = "x";
    b->conv_in[1] = "W";
    b->conv_out[0] = "c";
    conv->op_type = "Conv";
    conv->name = "conv1";
    conv->n_input = 2;
    conv->input = b->conv_in;
    conv->n_output = 1;
    conv->output = b->conv_out;
    conv->n_attribute = 2;
    conv->attribute = b->attr_ptrs[0];
    b->relu_in[0] = "c";
    b->relu_out[0] = "y";
    relu->op_type = "Relu";
    relu->name = "relu1";
    relu->n_input = 1;
    relu->input = b->relu_in;
    relu->n_output = 1;
    relu->output = b->relu_out;
    b->node_ptrs[0] = conv;
    b->node_ptrs[1] = relu;
    b->g.n_node = 2;
    b->g.node = b->node_ptrs;
}

static uint8_t *pack(builder_t *b, size_t *len) {
    *len = onnx__model_proto__get_packed_size(&b->m);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    onnx__model_proto__pack(&b->m, buf);
    return buf;
}

static osp_graph_t *import(builder_t *b, osp_err_t *err) {
    size_t len;
    uint8_t *buf = pack(b, &len);
    osp_graph_t *g = osp_onnx_import(buf, len, err);
    free(buf);
    return g;
}

/* --- tests --------------------------------------------------------------- */

static void test_conv_relu(void **state) {
    (void)state;
    builder_t b;
    build(&b, 13);
    osp_err_t err = {0};
    osp_graph_t *g = import(&b, &err);
    assert_non_null(g);
    assert_int_equal(g->opset, 13);
    assert_int_equal(g->n_inputs, 1);
    const osp_value_t *x = &g->values[g->inputs[0]];
    assert_string_equal(x->name, "x");
    assert_int_equal(x->rank, 4);
    assert_int_equal(x->dims[0], -1); /* symbolic batch */
    assert_int_equal(x->dims[3], 8);
    assert_int_equal(g->n_nodes, 2);
    const osp_node_t *c = &g->nodes[0];
    assert_int_equal(c->op, OSP_OP_CONV);
    assert_string_equal(c->name, "conv1");
    assert_int_equal(c->p.conv.group, 1);
    assert_int_equal(c->p.conv.win.n_spatial, 2);
    assert_int_equal(c->p.conv.win.kernel[1], 3);
    assert_int_equal(c->p.conv.win.pad_end[1], 1);
    assert_int_equal(c->p.conv.win.stride[0], 1);
    const osp_value_t *w = &g->values[c->in[1]];
    assert_true(osp_value_is_const(w));
    assert_int_equal(w->data_bytes, 54 * sizeof(float));
    assert_true(((float *)w->data)[53] == 0.53f);
    assert_int_equal(g->nodes[1].op, OSP_OP_RELU);
    assert_int_equal(g->n_outputs, 1);
    assert_string_equal(g->values[g->outputs[0]].name, "y");
    assert_int_equal(g->values[g->outputs[0]].producer, 1);
    osp_graph_destroy(g);
}

static void test_errors_name_node(void **state) {
    (void)state;
    builder_t b;
    osp_err_t err = {0};

    build(&b, 13);
    b.nodes[1].op_type = "Einsum";
    assert_null(import(&b, &err));
    assert_int_equal(err.code, OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "relu1"));
    assert_non_null(strstr(err.msg, "Einsum"));

    build(&b, 13);
    b.attrs[1].name = "padz"; /* unknown attribute */
    assert_null(import(&b, &err));
    assert_int_equal(err.code, OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "padz"));
    assert_non_null(strstr(err.msg, "conv1"));

    build(&b, 13);
    b.attrs[1].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT; /* wrong */
    assert_null(import(&b, &err));
    assert_int_equal(err.code, OSP_EFORMAT);

    build(&b, 13);
    b.inits[0].n_float_data = 53; /* one value short of the shape */
    assert_null(import(&b, &err));
    assert_int_equal(err.code, OSP_EFORMAT);
    assert_non_null(strstr(err.msg, "W"));

    build(&b, 13);
    b.relu_in[0] = "nope"; /* use before definition */
    assert_null(import(&b, &err));
    assert_non_null(strstr(err.msg, "nope"));

    build(&b, 6);
    assert_null(import(&b, &err));
    assert_int_equal(err.code, OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "opset 6"));

    /* An empty string attribute (auto_pad "") means NOTSET. */
    build(&b, 13);
    Onnx__AttributeProto *ap = &b.attrs[2];
    onnx__attribute_proto__init(ap);
    ap->name = "auto_pad";
    ap->has_type = 1;
    ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    ap->has_s = 1;
    ap->s.len = 0;
    ap->s.data = NULL;
    b.attr_ptrs[0][2] = ap;
    b.nodes[0].n_attribute = 3;
    osp_graph_t *g = import(&b, &err);
    assert_non_null(g);
    assert_int_equal(g->nodes[0].p.conv.win.auto_pad, OSP_PAD_EXPLICIT);
    osp_graph_destroy(g);

    build(&b, 13);
    b.vout.name = "zzz";
    assert_null(import(&b, &err));
    assert_non_null(strstr(err.msg, "zzz"));
}

static void test_truncations_never_crash(void **state) {
    (void)state;
    builder_t b;
    build(&b, 13);
    size_t len;
    uint8_t *buf = pack(&b, &len);
    int ok = 0;
    for (size_t n = 0; n < len; n++) {
        osp_err_t err = {0};
        /* A fresh heap copy of exactly n bytes so ASan sees any overread. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        osp_graph_t *g = osp_onnx_import(cut, n, &err);
        if (g)
            ok++;
        else
            assert_true(err.code < 0 && err.msg[0]);
        osp_graph_destroy(g);
        free(cut);
    }
    /* A prefix can only be valid if it ends on a field boundary and still
     * has graph, inputs, nodes and outputs — practically never. */
    assert_true(ok <= 2);
    /* Garbage is refused too. */
    osp_err_t err = {0};
    assert_null(osp_onnx_import("\xff\xff\xff\xff garbage", 12, &err));
    free(buf);
}

static void test_parse_tensor(void **state) {
    (void)state;
    Onnx__TensorProto t;
    onnx__tensor_proto__init(&t);
    int64_t dims[2] = {2, 2};
    int64_t vals[4] = {1, -2, 3, INT64_MAX};
    t.name = "idx";
    t.has_data_type = 1;
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t.n_dims = 2;
    t.dims = dims;
    t.has_raw_data = 1;
    t.raw_data.len = sizeof vals;
    t.raw_data.data = (uint8_t *)vals;
    uint8_t buf[256];
    size_t len = onnx__tensor_proto__pack(&t, buf);
    osp_tensor_t out;
    char *name = NULL;
    osp_err_t err = {0};
    assert_int_equal(osp_onnx_parse_tensor(buf, len, &out, &name, &err), 0);
    assert_string_equal(name, "idx");
    assert_int_equal(out.dtype, OSP_DT_S64);
    assert_int_equal(out.rank, 2);
    assert_int_equal(((int64_t *)out.data)[1], -2);
    assert_int_equal(((int64_t *)out.data)[3], INT64_MAX);
    free(out.data);
    free(name);
    /* raw_data of the wrong size */
    t.raw_data.len = 24;
    len = onnx__tensor_proto__pack(&t, buf);
    assert_int_equal(osp_onnx_parse_tensor(buf, len, &out, NULL, &err),
                     OSP_EFORMAT);
    /* Dims claiming 2^31 floats (8 GiB) with 32 bytes of data: refused
     * before anything is allocated (ASan would abort on the allocation). */
    int64_t huge[2] = {1 << 16, 1 << 15};
    t.dims = huge;
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t.raw_data.len = 32;
    len = onnx__tensor_proto__pack(&t, buf);
    assert_int_equal(osp_onnx_parse_tensor(buf, len, &out, NULL, &err),
                     OSP_EFORMAT);
    t.has_raw_data = 0; /* and with too few float_data values */
    len = onnx__tensor_proto__pack(&t, buf);
    assert_int_equal(osp_onnx_parse_tensor(buf, len, &out, NULL, &err),
                     OSP_EFORMAT);
    t.has_raw_data = 1;
    t.dims = dims;
    /* double is not a dtype we take */
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    t.raw_data.len = 32;
    len = onnx__tensor_proto__pack(&t, buf);
    assert_int_equal(osp_onnx_parse_tensor(buf, len, &out, NULL, &err),
                     OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "DOUBLE"));
}

/* ../shared models: structure as exported by PyTorch. */
static const char *models_dir(char *buf, size_t cap) {
    const char *env = getenv("OSPREY_MODELS");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return buf;
    }
    const char *src = getenv("OSP_SOURCE_DIR");
    snprintf(buf, cap, "%s/../shared/models", src ? src : ".");
    return buf;
}

static void test_shared_models(void **state) {
    (void)state;
    char dir[1024], path[1200];
    models_dir(dir, sizeof dir);
    static const struct {
        const char *file;
        int convs;
    } models[] = {{"resnet50.onnx", 53},
                  {"mobilenet_v2.onnx", 52},
                  {"squeezenet1_1.onnx", 26}};
    for (size_t i = 0; i < OSP_ARRAY_LEN(models); i++) {
        snprintf(path, sizeof path, "%s/onnx/%s", dir, models[i].file);
        uint8_t *buf;
        size_t len;
        osp_err_t err = {0};
        if (osp_read_file(path, 1u << 30, &buf, &len, &err) != 0) {
            printf("SKIP %s: %s (set OSPREY_MODELS or provide ../shared)\n",
                   models[i].file, err.msg);
            continue;
        }
        osp_graph_t *g = osp_onnx_import(buf, len, &err);
        free(buf);
        if (!g)
            fail_msg("%s: %s", models[i].file, err.msg);
        int convs = 0;
        for (int n = 0; n < g->n_nodes; n++)
            convs += g->nodes[n].op == OSP_OP_CONV;
        assert_int_equal(convs, models[i].convs);
        assert_int_equal(g->n_inputs, 1);
        assert_string_equal(g->values[g->inputs[0]].name, "input");
        assert_int_equal(g->values[g->inputs[0]].dims[1], 3);
        const osp_value_t *out = &g->values[g->outputs[0]];
        assert_string_equal(out->name, "logits");
        /* declared output shape: [N, 1000] with a symbolic batch */
        assert_int_equal(out->rank, 2);
        assert_int_equal(out->dims[0], -1);
        assert_int_equal(out->dims[1], 1000);
        osp_graph_destroy(g);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_relu),
        cmocka_unit_test(test_errors_name_node),
        cmocka_unit_test(test_truncations_never_crash),
        cmocka_unit_test(test_parse_tensor),
        cmocka_unit_test(test_shared_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
