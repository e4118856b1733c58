/* tflite_import.c — TFLite FlatBuffer model → osprey graph IR.
 *
 * The IR means NCHW (ir.h), TFLite means NHWC. Every 4-D activation is
 * therefore carried in the IR in NCHW order: a TRANSPOSE follows the NHWC
 * graph input, constant weights are transposed here (OHWI → OIHW; depthwise
 * [1,H,W,C·m] → [C·m,1,H,W]), and axis arguments (CONCATENATION, MEAN, PAD)
 * are renumbered. Ops whose meaning depends on the memory order of a 4-D
 * tensor (RESHAPE, FULLY_CONNECTED's implicit flatten) get a TRANSPOSE back to
 * NHWC in front of them; the planner folds or fuses those cheap ops.
 *
 * Quantization parameters (scale, zero point, per-channel axis) are copied
 * onto the IR values; weight axes are renumbered with the data. A fused
 * activation becomes a separate RELU/CLIP node that the activation-fusion
 * pass folds back into its producer; in the quantized domain the clamp is
 * applied to the requantized output, as TFLite does.
 *
 * Operators are imported through one table, tfl_ops[] (as ggml's op
 * tables): a row {TFL_CONV_2D, "CONV_2D", inputs required, IR op, imp_conv}
 * per supported builtin. import_operator finds the row by builtin code,
 * checks what every operator shares (tensor indices in range, one output
 * written once, the row's required inputs present) and calls the row's
 * function with the checked operator (tfl_op_t). To add an op: its code in
 * the TFL_ enum, an imp_<op> function, and a row in tfl_ops[].
 *
 * The file is untrusted: the FlatBuffer reader bounds-checks every access,
 * and every tensor/buffer/opcode index is checked here. */
#include "engine/import/tflite_import.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/import/flatbuf.h"

/* Schema field numbers (tflite/schema.fbs). */
enum { MODEL_VERSION = 0, MODEL_OPCODES = 1, MODEL_SUBGRAPHS = 2,
       MODEL_DESCRIPTION = 3, MODEL_BUFFERS = 4 };
enum { OPCODE_DEPRECATED_BUILTIN = 0, OPCODE_CUSTOM = 1, OPCODE_VERSION = 2,
       OPCODE_BUILTIN = 3 };
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3,
       SG_NAME = 4 };
enum { T_SHAPE = 0, T_TYPE = 1, T_BUFFER = 2, T_NAME = 3, T_QUANT = 4,
       T_IS_VARIABLE = 5, T_SPARSITY = 6, T_SHAPE_SIGNATURE = 7 };
enum { Q_MIN = 0, Q_MAX = 1, Q_SCALE = 2, Q_ZERO_POINT = 3,
       Q_DETAILS_TYPE = 4, Q_DETAILS = 5, Q_DIM = 6 };
enum { OP_OPCODE = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPTIONS_TYPE = 3,
       OP_OPTIONS = 4 };
enum { BUF_DATA = 0, BUF_OFFSET = 1, BUF_SIZE = 2 };

/* BuiltinOperator codes we import (one row each in tfl_ops[]). */
enum {
    TFL_ADD = 0, TFL_AVERAGE_POOL_2D = 1, TFL_CONCATENATION = 2,
    TFL_CONV_2D = 3, TFL_DEPTHWISE_CONV_2D = 4, TFL_DEQUANTIZE = 6,
    TFL_FULLY_CONNECTED = 9, TFL_LOGISTIC = 14, TFL_MAX_POOL_2D = 17,
    TFL_MUL = 18, TFL_RELU = 19, TFL_RELU_N1_TO_1 = 20, TFL_RELU6 = 21,
    TFL_RESHAPE = 22, TFL_SOFTMAX = 25, TFL_PAD = 34, TFL_MEAN = 40,
    TFL_SUB = 41, TFL_DIV = 42, TFL_QUANTIZE = 114, TFL_HARD_SWISH = 117,
};

/* TensorType */
enum { TT_FLOAT32 = 0, TT_FLOAT16 = 1, TT_INT32 = 2, TT_UINT8 = 3,
       TT_INT64 = 4, TT_BOOL = 6, TT_INT8 = 9 };

/* ActivationFunctionType */
enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU_N1_TO_1 = 2, ACT_RELU6 = 3 };

/* Padding */
enum { PAD_SAME = 0, PAD_VALID = 1 };

/* NHWC axis → NCHW axis, for 4-D tensors. */
static const int nhwc_to_nchw[4] = {0, 2, 3, 1};

typedef struct tfl_tensor_s {
    int value;      /* IR value holding this tensor (NCHW if 4-D) */
    int value_nhwc; /* cached NHWC view of a 4-D activation, -1 if none */
    int rank;       /* TFLite rank */
    int64_t shape[OSP_MAX_RANK]; /* TFLite (NHWC) shape */
} tfl_tensor_t;

typedef struct imp_s {
    osp_fb_t fb;
    osp_graph_t *g;
    osp_err_t *err;
    osp_fb_vec_t buffers;
    osp_fb_vec_t opcodes;
    /* The first subgraph: its tensors, its inputs and outputs (tensor
     * indices) and its operators. */
    osp_fb_vec_t tensors_vec;
    osp_fb_vec_t sg_inputs;
    osp_fb_vec_t sg_outputs;
    osp_fb_vec_t sg_ops;
    tfl_tensor_t *t;
    uint32_t n_tensors;
    char what[128]; /* for messages and node names: "op12_CONV_2D" */
} imp_t;

static int bad_file(imp_t *im, const char *where) {
    return osp_err_set(im->err, OSP_EFORMAT,
                       "malformed TFLite file (%s: offset or length out of "
                       "bounds)",
                       where);
}

static int dtype_from_tfl(int8_t t, osp_dtype_t *out) {
    switch (t) {
    case TT_FLOAT32: *out = OSP_DT_F32; return 0;
    case TT_FLOAT16: *out = OSP_DT_F16; return 0;
    case TT_INT32: *out = OSP_DT_S32; return 0;
    case TT_UINT8: *out = OSP_DT_U8; return 0;
    case TT_INT64: *out = OSP_DT_S64; return 0;
    case TT_BOOL: *out = OSP_DT_BOOL; return 0;
    case TT_INT8: *out = OSP_DT_S8; return 0;
    default: return OSP_EUNSUPPORTED;
    }
}

/* Buffer bytes of tensor table tt (NULL/0 for activations). */
static int tensor_bytes(imp_t *im, const osp_fb_table_t *tt,
                        const uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    uint32_t b = osp_fb_u32(&im->fb, tt, T_BUFFER, 0);
    if (b == 0)
        return 0; /* buffer 0 is the empty sentinel */
    if (b >= im->buffers.count)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "tensor refers to buffer %u of %u", b,
                           im->buffers.count);
    osp_fb_table_t bt = osp_fb_vec_table(&im->fb, &im->buffers, b);
    osp_fb_vec_t v = osp_fb_vector(&im->fb, &bt, BUF_DATA, 1);
    if (v.count) {
        *data = osp_fb_vec_bytes(&im->fb, &v);
        *len = v.count;
        return im->fb.bad ? bad_file(im, "buffer") : 0;
    }
    /* Large models keep buffers after the FlatBuffer: offset/size. */
    uint64_t off = 0, size = 0;
    if (osp_fb_has(&im->fb, &bt, BUF_OFFSET)) {
        uint32_t lo = osp_fb_u32(&im->fb, &bt, BUF_OFFSET, 0);
        /* 64-bit fields: read as two halves via the i32 accessor is not
         * possible; such files are > 2 GiB in practice. */
        off = lo;
        size = osp_fb_u32(&im->fb, &bt, BUF_SIZE, 0);
        if (off > 1 && (off + size > im->fb.len || off + size < off))
            return osp_err_set(im->err, OSP_EFORMAT,
                               "buffer %u lies outside the file", b);
        if (off > 1) {
            *data = im->fb.buf + off;
            *len = (size_t)size;
        }
    }
    return 0;
}

static int copy_quant(imp_t *im, const osp_fb_table_t *tt, int v,
                      const int *axis_map) {
    osp_fb_table_t q = osp_fb_table(&im->fb, tt, T_QUANT);
    if (!q.pos)
        return 0;
    osp_fb_vec_t sc = osp_fb_vector(&im->fb, &q, Q_SCALE, 4);
    osp_fb_vec_t zp = osp_fb_vector(&im->fb, &q, Q_ZERO_POINT, 8);
    if (im->fb.bad)
        return bad_file(im, "quantization");
    if (sc.count == 0)
        return 0; /* float tensor with only min/max recorded */
    if (osp_fb_u8(&im->fb, &q, Q_DETAILS_TYPE, 0) != 0)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "tensor %d: custom quantization details are not "
                           "supported",
                           v);
    if (zp.count != sc.count && zp.count != 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "tensor %d: %u scales but %u zero points", v,
                           sc.count, zp.count);
    if (sc.count > (1u << 20))
        return osp_err_set(im->err, OSP_ELIMIT, "tensor %d: too many scales",
                           v);
    float *s = malloc(sizeof(float) * sc.count);
    int32_t *z = malloc(sizeof(int32_t) * sc.count);
    int rc = 0;
    if (!s || !z) {
        rc = osp_err_set(im->err, OSP_ENOMEM, "quantization");
        goto out;
    }
    for (uint32_t i = 0; i < sc.count; i++) {
        s[i] = osp_fb_vec_f32(&im->fb, &sc, i);
        int64_t zi = zp.count ? osp_fb_vec_i64(&im->fb, &zp, i) : 0;
        if (!(s[i] > 0.f) || !isfinite(s[i]) || zi < -32768 || zi > 65535) {
            rc = osp_err_set(im->err, OSP_EFORMAT,
                             "tensor %d: invalid scale %g or zero point %lld",
                             v, (double)s[i], (long long)zi);
            goto out;
        }
        z[i] = (int32_t)zi;
    }
    int axis = -1;
    if (sc.count > 1) {
        int32_t d = osp_fb_i32(&im->fb, &q, Q_DIM, 0);
        const osp_value_t *val = &im->g->values[v];
        if (d < 0 || d >= val->rank)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "tensor %d: quantized_dimension %d out of range",
                               v, d);
        axis = axis_map && val->rank == 4 ? axis_map[d] : d;
        if (val->dims[axis] != (int64_t)sc.count) {
            rc = osp_err_set(im->err, OSP_EFORMAT,
                             "tensor %d: %u scales for a dimension of %lld", v,
                             sc.count, (long long)val->dims[axis]);
            goto out;
        }
    }
    rc = osp_graph_set_quant(im->g, v, axis, (int)sc.count, s, z);
    if (rc)
        osp_err_set(im->err, rc, "quantization");
    im->g->quantized = true;
out:
    free(s);
    free(z);
    return rc;
}

/* Transposes a 4-D constant with the given permutation (out dim i = in dim
 * perm[i]) into a new malloc'd buffer. */
static void *transpose4(const uint8_t *src, const int64_t *in_dims,
                        const int *perm, size_t esz) {
    int64_t od[4], is[4], os[4];
    for (int i = 0; i < 4; i++)
        od[i] = in_dims[perm[i]];
    is[3] = 1;
    for (int i = 2; i >= 0; i--)
        is[i] = is[i + 1] * in_dims[i + 1];
    for (int i = 0; i < 4; i++)
        os[i] = is[perm[i]]; /* input stride of output dim i */
    size_t n = (size_t)(od[0] * od[1] * od[2] * od[3]);
    size_t bytes = n * esz;
    uint8_t *dst = malloc(bytes ? bytes : 1);
    if (!dst)
        return NULL;
    size_t k = 0;
    for (int64_t a = 0; a < od[0]; a++)
        for (int64_t b = 0; b < od[1]; b++)
            for (int64_t c = 0; c < od[2]; c++)
                for (int64_t d = 0; d < od[3]; d++, k++)
                    memcpy(dst + k * esz,
                           src + (size_t)(a * os[0] + b * os[1] + c * os[2] +
                                          d * os[3]) * esz,
                           esz);
    return dst;
}

/* How a constant 4-D tensor is laid out for the IR. */
typedef enum { LAYOUT_ACT, LAYOUT_CONV_W, LAYOUT_DW_W } wlayout_t;

static const int perm_act[4] = {0, 3, 1, 2};  /* NHWC → NCHW */
static const int perm_conv[4] = {0, 3, 1, 2}; /* OHWI → OIHW */
static const int perm_dw[4] = {3, 0, 1, 2};   /* 1HWC → C1HW */
/* TFLite axis → IR axis after each permutation (inverse of perm). */
static const int axis_act[4] = {0, 2, 3, 1};
static const int axis_dw[4] = {1, 2, 3, 0};

/* Creates the IR value of TFLite tensor i (constants with their data). */
static int make_tensor(imp_t *im, uint32_t i) {
    osp_fb_t *fb = &im->fb;
    osp_fb_table_t tt = osp_fb_vec_table(fb, &im->tensors_vec, i);
    tfl_tensor_t *t = &im->t[i];
    t->value_nhwc = -1;
    osp_fb_vec_t shape = osp_fb_vector(fb, &tt, T_SHAPE, 4);
    int8_t type = osp_fb_i8(fb, &tt, T_TYPE, 0);
    uint32_t nlen;
    const char *name = osp_fb_string(fb, &tt, T_NAME, &nlen);
    if (fb->bad || !tt.pos)
        return bad_file(im, "tensor");
    if (osp_fb_table(fb, &tt, T_SPARSITY).pos)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "tensor %u: sparse tensors are not supported", i);
    if (shape.count > OSP_MAX_RANK)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "tensor %u: rank %u exceeds %d", i, shape.count,
                           OSP_MAX_RANK);
    osp_dtype_t dt;
    if (dtype_from_tfl(type, &dt))
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "tensor %u: tensor type %d is not supported", i,
                           type);
    t->rank = (int)shape.count;
    uint64_t numel = 1;
    for (uint32_t d = 0; d < shape.count; d++) {
        int32_t x = osp_fb_vec_i32(fb, &shape, d);
        if (x < 0 && !(d == 0 && x == -1))
            return osp_err_set(im->err, OSP_EFORMAT,
                               "tensor %u: invalid dimension %d", i, x);
        t->shape[d] = x;
        numel *= (uint64_t)(x < 0 ? 1 : x);
        if (numel > (1ull << 31))
            return osp_err_set(im->err, OSP_ELIMIT, "tensor %u: too large", i);
    }
    char nbuf[256];
    snprintf(nbuf, sizeof nbuf, "%.*s", name ? (int)OSP_MIN(nlen, 200) : 0,
             name ? name : "");
    if (!nbuf[0] || osp_graph_find_value(im->g, nbuf) >= 0)
        snprintf(nbuf + strlen(nbuf), sizeof nbuf - strlen(nbuf), "#%u", i);

    const uint8_t *data;
    size_t len;
    int rc = tensor_bytes(im, &tt, &data, &len);
    if (rc)
        return rc;
    size_t esz = osp_dtype_size(dt);
    if (data && len != numel * esz)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "tensor %u ('%s'): buffer has %zu bytes, shape and "
                           "type need %llu",
                           i, nbuf, len, (unsigned long long)(numel * esz));
    /* IR dims: 4-D activations in NCHW; constants keep TFLite's layout until
     * an op says how to use them (conv_weights()). */
    int64_t dims[OSP_MAX_RANK];
    for (int d = 0; d < t->rank; d++)
        dims[d] = t->shape[d];
    if (!data && t->rank == 4)
        for (int d = 0; d < 4; d++)
            dims[d] = t->shape[perm_act[d]];
    int v = osp_graph_add_value(im->g, nbuf, dt, data ? t->rank : -1, dims);
    if (v < 0)
        return osp_err_set(im->err, v, "tensor %u", i);
    t->value = v;
    if (data) {
        void *copy = malloc(len ? len : 1);
        if (!copy)
            return osp_err_set(im->err, OSP_ENOMEM, "tensor %u", i);
        memcpy(copy, data, len);
        osp_graph_set_const(im->g, v, copy, len);
    }
    /* Quantization of activations is remapped with the NCHW axis order;
     * constants keep TFLite's axis until conv_weights() permutes them. */
    return copy_quant(im, &tt, v, data ? NULL : axis_act);
}

/* Re-lays a constant weight tensor for the IR: OHWI → OIHW (conv) or
 * 1HWC → C1HW (depthwise). A buffer used by several ops is shared by value,
 * so each distinct use gets its own IR value. */
static int conv_weights(imp_t *im, uint32_t ti, wlayout_t layout, int *out) {
    tfl_tensor_t *t = &im->t[ti];
    osp_value_t *src = &im->g->values[t->value];
    if (!src->data || t->rank != 4)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: weights must be a constant 4-D tensor",
                           im->what);
    const int *perm = layout == LAYOUT_DW_W ? perm_dw : perm_conv;
    const int *amap = layout == LAYOUT_DW_W ? axis_dw : axis_act;
    void *d = transpose4(src->data, t->shape, perm, osp_dtype_size(src->dtype));
    if (!d)
        return osp_err_set(im->err, OSP_ENOMEM, "%s", im->what);
    int64_t dims[4];
    for (int i = 0; i < 4; i++)
        dims[i] = t->shape[perm[i]];
    char name[300];
    snprintf(name, sizeof name, "%.200s/%s", src->name,
             layout == LAYOUT_DW_W ? "c1hw" : "oihw");
    int v = osp_graph_find_value(im->g, name);
    if (v >= 0) { /* same weights, same layout: reuse */
        free(d);
        *out = v;
        return 0;
    }
    size_t bytes = src->data_bytes;
    osp_dtype_t dt = src->dtype;
    v = osp_graph_add_value(im->g, name, dt, 4, dims);
    if (v < 0) {
        free(d);
        return osp_err_set(im->err, v, "%s", im->what);
    }
    osp_graph_set_const(im->g, v, d, bytes);
    src = &im->g->values[t->value]; /* values may have moved */
    if (src->quant) {
        const osp_quant_t *q = src->quant;
        int axis = q->axis >= 0 ? amap[q->axis] : -1;
        int rc = osp_graph_set_quant(im->g, v, axis, q->count, q->scale,
                                     q->zero_point);
        if (rc)
            return osp_err_set(im->err, rc, "%s", im->what);
    }
    *out = v;
    return 0;
}

static int add_node(imp_t *im, osp_op_t op, const char *suffix, const int *in,
                    int n_in, int out, osp_node_t **node) {
    char name[160];
    snprintf(name, sizeof name, "%s%s", im->what, suffix);
    int n = osp_graph_add_node(im->g, op, name, in, n_in, &out, 1);
    if (n < 0)
        return osp_err_set(im->err, n, "%s", im->what);
    *node = &im->g->nodes[n];
    return 0;
}

/* An intermediate value like `like` (same dtype and quantization). */
static int new_value_like(imp_t *im, int like, const char *suffix) {
    char name[300];
    snprintf(name, sizeof name, "%.200s%s", im->g->values[like].name, suffix);
    int v = osp_graph_add_value(im->g, name, im->g->values[like].dtype, -1,
                                NULL);
    if (v < 0)
        return osp_err_set(im->err, v, "%s", im->what);
    const osp_quant_t *q = im->g->values[like].quant;
    if (q) {
        int rc = osp_graph_set_quant(im->g, v, q->axis, q->count, q->scale,
                                     q->zero_point);
        if (rc)
            return osp_err_set(im->err, rc, "%s", im->what);
    }
    return v;
}

static int add_transpose(imp_t *im, int in, int out, const int *perm) {
    osp_node_t *n;
    int rc = add_node(im, OSP_OP_TRANSPOSE, "/transpose", &in, 1, out, &n);
    if (rc)
        return rc;
    n->p.axes.has_axes = true;
    n->p.axes.n_axes = 4;
    for (int i = 0; i < 4; i++)
        n->p.axes.axes[i] = perm[i];
    return 0;
}

/* The NHWC view of a 4-D activation (inserting a TRANSPOSE once). */
static int nhwc_view(imp_t *im, uint32_t ti, int *out) {
    tfl_tensor_t *t = &im->t[ti];
    if (t->rank != 4 || osp_value_is_const(&im->g->values[t->value])) {
        *out = t->value;
        return 0;
    }
    if (t->value_nhwc < 0) {
        int v = new_value_like(im, t->value, "/nhwc");
        if (v < 0)
            return v;
        static const int to_nhwc[4] = {0, 2, 3, 1};
        int rc = add_transpose(im, t->value, v, to_nhwc);
        if (rc)
            return rc;
        t->value_nhwc = v;
    }
    *out = t->value_nhwc;
    return 0;
}

/* Fused activation → a separate node after `v`; returns the final value in
 * *out, which is the TFLite output tensor's value. */
static int fused_act(imp_t *im, int8_t act, int produced, int final) {
    if (act == ACT_NONE)
        return 0;
    osp_node_t *n;
    osp_op_t op = act == ACT_RELU ? OSP_OP_RELU : OSP_OP_CLIP;
    if (act != ACT_RELU && act != ACT_RELU6 && act != ACT_RELU_N1_TO_1)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: fused activation %d is not supported",
                           im->what, act);
    int rc = add_node(im, op, "/act", &produced, 1, final, &n);
    if (rc)
        return rc;
    if (act == ACT_RELU6) {
        n->p.act.alpha = 0.f;
        n->p.act.beta = 6.f;
    } else if (act == ACT_RELU_N1_TO_1) {
        n->p.act.alpha = -1.f;
        n->p.act.beta = 1.f;
    }
    return 0;
}

/* The value an op writes before its fused activation. */
static int pre_act_value(imp_t *im, int8_t act, int out) {
    return act == ACT_NONE ? out : new_value_like(im, out, "/preact");
}

static int set_window(imp_t *im, osp_window_t *w, int8_t padding, int32_t sh,
                      int32_t sw, int32_t dh, int32_t dw, int32_t kh,
                      int32_t kw) {
    if (sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 || kh < 0 || kw < 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: invalid stride/dilation/filter size",
                           im->what);
    if (padding != PAD_SAME && padding != PAD_VALID)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: padding type %d is not supported", im->what,
                           padding);
    memset(w, 0, sizeof *w);
    w->n_spatial = 2;
    w->kernel[0] = kh;
    w->kernel[1] = kw;
    w->stride[0] = sh;
    w->stride[1] = sw;
    w->dilation[0] = dh;
    w->dilation[1] = dw;
    /* TF's SAME puts the odd padding pixel at the end = ONNX SAME_UPPER. */
    w->auto_pad = padding == PAD_SAME ? OSP_PAD_SAME_UPPER : OSP_PAD_VALID;
    return 0;
}

/* A constant int32 tensor's values (for axes/shapes/paddings). */
static int const_ints(imp_t *im, uint32_t ti, int64_t *out, int max, int *n) {
    const osp_value_t *v = &im->g->values[im->t[ti].value];
    if (!v->data || (v->dtype != OSP_DT_S32 && v->dtype != OSP_DT_S64))
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: expects a constant integer tensor", im->what);
    size_t cnt = v->data_bytes / osp_dtype_size(v->dtype);
    if (cnt > (size_t)max)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: too many values in a constant (%zu)", im->what,
                           cnt);
    for (size_t i = 0; i < cnt; i++)
        out[i] = v->dtype == OSP_DT_S32 ? ((const int32_t *)v->data)[i]
                                        : ((const int64_t *)v->data)[i];
    *n = (int)cnt;
    return 0;
}

static int const_s64(imp_t *im, const char *suffix, const int64_t *vals,
                     int n) {
    int64_t *d = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!d)
        return osp_err_set(im->err, OSP_ENOMEM, "%s", im->what);
    memcpy(d, vals, sizeof(int64_t) * (size_t)n);
    char name[200];
    snprintf(name, sizeof name, "%s%s", im->what, suffix);
    int64_t dims[1] = {n};
    int v = osp_graph_add_value(im->g, name, OSP_DT_S64, 1, dims);
    if (v < 0) {
        free(d);
        return osp_err_set(im->err, v, "%s", im->what);
    }
    osp_graph_set_const(im->g, v, d, sizeof(int64_t) * (size_t)n);
    return v;
}

#define TRY(x)                                                                 \
    do {                                                                       \
        int rc_ = (x);                                                         \
        if (rc_)                                                               \
            return rc_;                                                        \
    } while (0)

/* ---- per-operator importers --------------------------------------------
 *
 * One function per TFLite builtin (or family sharing its options layout),
 * called through tfl_ops[] below once import_operator has checked what every
 * operator shares: the opcode, tensor indices in range, one output written
 * once, the row's required inputs present. */

/* One operator being imported. */
typedef struct tfl_op_s {
    int32_t code;       /* TFLite BuiltinOperator */
    osp_op_t ir_op;     /* the IR op of its table row */
    osp_fb_table_t opt; /* builtin options (pos 0 when absent: defaults) */
    int32_t in[8];      /* input tensor indices, -1 = optional input absent */
    uint32_t n_in;
    int out;            /* IR value of the output tensor */
    int x;              /* IR value of input 0, -1 if absent */
} tfl_op_t;

/* IR value of optional input i (the bias), -1 when absent. */
static int opt_input(const imp_t *im, const tfl_op_t *op, uint32_t i) {
    return op->n_in > i && op->in[i] >= 0 ? im->t[op->in[i]].value : -1;
}

/* CONV_2D, DEPTHWISE_CONV_2D (its options add depth_multiplier at 3). */
static int imp_conv(imp_t *im, const tfl_op_t *op) {
    osp_fb_t *fb = &im->fb;
    const osp_fb_table_t *opt = &op->opt;
    bool dw = op->code == TFL_DEPTHWISE_CONV_2D;
    int8_t padding = osp_fb_i8(fb, opt, 0, 0);
    int32_t sw = osp_fb_i32(fb, opt, 1, 1), sh = osp_fb_i32(fb, opt, 2, 1);
    int32_t mult = dw ? osp_fb_i32(fb, opt, 3, 1) : 1;
    int8_t act = osp_fb_i8(fb, opt, dw ? 4 : 3, 0);
    int32_t dwf = osp_fb_i32(fb, opt, dw ? 5 : 4, 1);
    int32_t dhf = osp_fb_i32(fb, opt, dw ? 6 : 5, 1);
    tfl_tensor_t *wt = &im->t[op->in[1]];
    if (im->t[op->in[0]].rank != 4 || wt->rank != 4)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: input and filter must be 4-D", im->what);
    int w = -1;
    TRY(conv_weights(im, (uint32_t)op->in[1],
                     dw ? LAYOUT_DW_W : LAYOUT_CONV_W, &w));
    int ci[3] = {op->x, w, opt_input(im, op, 2)};
    int pre = pre_act_value(im, act, op->out);
    if (pre < 0)
        return pre;
    osp_node_t *n;
    TRY(add_node(im, op->ir_op, "", ci, ci[2] >= 0 ? 3 : 2, pre, &n));
    TRY(set_window(im, &n->p.conv.win, padding, sh, sw, dhf, dwf,
                   (int32_t)wt->shape[1], (int32_t)wt->shape[2]));
    if (dw) {
        int64_t cin = im->t[op->in[0]].shape[3];
        if (mult <= 0 || cin <= 0 || wt->shape[3] != cin * mult)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "%s: filter has %lld channels, input %lld "
                               "× depth multiplier %d",
                               im->what, (long long)wt->shape[3],
                               (long long)cin, mult);
        n->p.conv.group = cin;
    } else {
        n->p.conv.group = 1;
    }
    return fused_act(im, act, pre, op->out);
}

/* AVERAGE_POOL_2D, MAX_POOL_2D. */
static int imp_pool(imp_t *im, const tfl_op_t *op) {
    osp_fb_t *fb = &im->fb;
    const osp_fb_table_t *opt = &op->opt;
    int8_t padding = osp_fb_i8(fb, opt, 0, 0);
    int32_t sw = osp_fb_i32(fb, opt, 1, 1), sh = osp_fb_i32(fb, opt, 2, 1);
    int32_t fw = osp_fb_i32(fb, opt, 3, 0), fh = osp_fb_i32(fb, opt, 4, 0);
    int8_t act = osp_fb_i8(fb, opt, 5, 0);
    if (fw <= 0 || fh <= 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: filter size must be > 0", im->what);
    int pre = pre_act_value(im, act, op->out);
    if (pre < 0)
        return pre;
    osp_node_t *n;
    TRY(add_node(im, op->ir_op, "", &op->x, 1, pre, &n));
    TRY(set_window(im, &n->p.pool.win, padding, sh, sw, 1, 1, fh, fw));
    /* TFLite averages over the valid (unpadded) pixels only. */
    n->p.pool.count_include_pad = false;
    return fused_act(im, act, pre, op->out);
}

/* FULLY_CONNECTED: FLATTEN of the NHWC view, then GEMM with [out, in]
 * weights. */
static int imp_fully_connected(imp_t *im, const tfl_op_t *op) {
    osp_fb_t *fb = &im->fb;
    int8_t act = osp_fb_i8(fb, &op->opt, 0, 0);
    if (osp_fb_i8(fb, &op->opt, 1, 0) != 0)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: shuffled weights format", im->what);
    if (osp_fb_u8(fb, &op->opt, 2, 0))
        return osp_err_set(im->err, OSP_EUNSUPPORTED, "%s: keep_num_dims",
                           im->what);
    int src;
    TRY(nhwc_view(im, (uint32_t)op->in[0], &src));
    int flat = new_value_like(im, op->x, "/flat");
    if (flat < 0)
        return flat;
    osp_node_t *n;
    TRY(add_node(im, OSP_OP_FLATTEN, "/flatten", &src, 1, flat, &n));
    n->p.axis.axis = 1;
    int gi[3] = {flat, im->t[op->in[1]].value, opt_input(im, op, 2)};
    int pre = pre_act_value(im, act, op->out);
    if (pre < 0)
        return pre;
    TRY(add_node(im, OSP_OP_GEMM, "", gi, gi[2] >= 0 ? 3 : 2, pre, &n));
    n->p.gemm.alpha = 1.f;
    n->p.gemm.beta = 1.f;
    n->p.gemm.trans_b = true; /* TFLite weights are [out, in] */
    return fused_act(im, act, pre, op->out);
}

/* NHWC broadcasting of a per-channel constant [C] against a 4-D tensor
 * becomes [C,1,1] in NCHW; a constant 4-D operand is transposed to NCHW. */
static int binary_operand_nchw(imp_t *im, int32_t ti, int32_t other) {
    osp_value_t *cv = &im->g->values[im->t[ti].value];
    if (im->t[other].rank == 4 && im->t[ti].rank != 4) {
        if (!(osp_value_is_const(cv) && im->t[ti].rank <= 1))
            return osp_err_set(im->err, OSP_EUNSUPPORTED,
                               "%s: broadcasting a rank-%d tensor against "
                               "NHWC is not supported",
                               im->what, im->t[ti].rank);
        if (im->t[ti].rank == 1) {
            cv->rank = 3;
            cv->dims[1] = cv->dims[2] = 1;
        }
    } else if (im->t[ti].rank == 4 && osp_value_is_const(cv)) {
        void *d = transpose4(cv->data, im->t[ti].shape, perm_act,
                             osp_dtype_size(cv->dtype));
        if (!d)
            return osp_err_set(im->err, OSP_ENOMEM, "%s", im->what);
        for (int i = 0; i < 4; i++)
            cv->dims[i] = im->t[ti].shape[perm_act[i]];
        osp_graph_set_const(im->g, im->t[ti].value, d, cv->data_bytes);
    }
    return 0;
}

/* ADD, SUB, MUL, DIV. */
static int imp_binary(imp_t *im, const tfl_op_t *op) {
    int8_t act = osp_fb_i8(&im->fb, &op->opt, 0, 0);
    int bi[2] = {op->x, im->t[op->in[1]].value};
    for (int k = 0; k < 2; k++)
        TRY(binary_operand_nchw(im, op->in[k], op->in[1 - k]));
    int pre = pre_act_value(im, act, op->out);
    if (pre < 0)
        return pre;
    osp_node_t *n;
    TRY(add_node(im, op->ir_op, "", bi, 2, pre, &n));
    return fused_act(im, act, pre, op->out);
}

static int imp_concatenation(imp_t *im, const tfl_op_t *op) {
    int32_t axis = osp_fb_i32(&im->fb, &op->opt, 0, 0);
    int8_t act = osp_fb_i8(&im->fb, &op->opt, 1, 0);
    int r = im->t[op->in[0]].rank;
    if (axis < -r || axis >= r)
        return osp_err_set(im->err, OSP_EFORMAT, "%s: axis %d out of range",
                           im->what, axis);
    if (axis < 0)
        axis += r;
    int vals[8];
    for (uint32_t i = 0; i < op->n_in; i++) {
        if (op->in[i] < 0 || im->t[op->in[i]].rank != r)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "%s: inputs must have equal rank", im->what);
        vals[i] = im->t[op->in[i]].value;
    }
    int pre = pre_act_value(im, act, op->out);
    if (pre < 0)
        return pre;
    osp_node_t *n;
    TRY(add_node(im, OSP_OP_CONCAT, "", vals, (int)op->n_in, pre, &n));
    n->p.axis.axis = r == 4 ? nhwc_to_nchw[axis] : axis;
    return fused_act(im, act, pre, op->out);
}

/* RESHAPE's target: the constant second input, else the options' new_shape. */
static int reshape_target(imp_t *im, const tfl_op_t *op, int64_t *shape,
                          int *ns) {
    osp_fb_t *fb = &im->fb;
    *ns = -1;
    if (op->n_in > 1 && op->in[1] >= 0 &&
        osp_value_is_const(&im->g->values[im->t[op->in[1]].value]))
        return const_ints(im, (uint32_t)op->in[1], shape, OSP_MAX_RANK, ns);
    osp_fb_vec_t ns_vec = osp_fb_vector(fb, &op->opt, 0, 4);
    if (fb->bad || ns_vec.count > OSP_MAX_RANK)
        return bad_file(im, "reshape options");
    *ns = (int)ns_vec.count;
    for (int i = 0; i < *ns; i++)
        shape[i] = osp_fb_vec_i32(fb, &ns_vec, (uint32_t)i);
    return 0;
}

static int imp_reshape(imp_t *im, const tfl_op_t *op) {
    int64_t shape[OSP_MAX_RANK];
    int ns;
    TRY(reshape_target(im, op, shape, &ns));
    if (ns <= 0)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: needs a constant target shape", im->what);
    /* Keep the batch dynamic: a leading 1 that matches the input's batch
     * becomes 0 (= copy the input's first dimension). */
    const tfl_tensor_t *x = &im->t[op->in[0]];
    if (shape[0] == 1 && x->rank >= 1 && x->shape[0] == 1)
        shape[0] = 0;
    int src;
    TRY(nhwc_view(im, (uint32_t)op->in[0], &src));
    int sv = const_s64(im, "/shape", shape, ns);
    if (sv < 0)
        return sv;
    int ri[2] = {src, sv};
    osp_node_t *n;
    if (ns != 4)
        return add_node(im, OSP_OP_RESHAPE, "", ri, 2, op->out, &n);
    int nhwc = new_value_like(im, op->out, "/nhwc");
    if (nhwc < 0)
        return nhwc;
    TRY(add_node(im, OSP_OP_RESHAPE, "", ri, 2, nhwc, &n));
    return add_transpose(im, nhwc, op->out, perm_act);
}

static int imp_softmax(imp_t *im, const tfl_op_t *op) {
    float beta = osp_fb_f32(&im->fb, &op->opt, 0, 1.f);
    if (beta != 1.f)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: beta %g is not supported (only 1)", im->what,
                           (double)beta);
    int src;
    TRY(nhwc_view(im, (uint32_t)op->in[0], &src));
    if (im->t[op->in[0]].rank == 4)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: softmax over a 4-D tensor", im->what);
    osp_node_t *n;
    TRY(add_node(im, OSP_OP_SOFTMAX, "", &src, 1, op->out, &n));
    n->p.axis.axis = -1;
    return 0;
}

static int imp_mean(imp_t *im, const tfl_op_t *op) {
    int64_t axes[OSP_MAX_RANK];
    int na;
    TRY(const_ints(im, (uint32_t)op->in[1], axes, OSP_MAX_RANK, &na));
    bool keep = osp_fb_u8(&im->fb, &op->opt, 0, 0) != 0;
    int r = im->t[op->in[0]].rank;
    bool reduced[4] = {false, false, false, false};
    for (int i = 0; i < na; i++) {
        if (axes[i] < -r || axes[i] >= r)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "%s: axis %lld out of range", im->what,
                               (long long)axes[i]);
        if (axes[i] < 0)
            axes[i] += r;
        if (r == 4) {
            reduced[axes[i]] = true;
            axes[i] = nhwc_to_nchw[axes[i]];
        }
    }
    /* Without keep_dims, the remaining dims must come out in the same
     * order in NHWC and NCHW: true unless C survives with H or W. */
    if (r == 4 && !keep && !reduced[3] && !(reduced[1] && reduced[2]))
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: this MEAN without keep_dims would change "
                           "dimension order",
                           im->what);
    osp_node_t *n;
    TRY(add_node(im, OSP_OP_REDUCE_MEAN, "", &op->x, 1, op->out, &n));
    n->p.axes.has_axes = true;
    n->p.axes.n_axes = na;
    memcpy(n->p.axes.axes, axes, sizeof(int64_t) * (size_t)na);
    n->p.axes.keepdims = keep;
    return 0;
}

static int imp_pad(imp_t *im, const tfl_op_t *op) {
    int64_t pads[2 * OSP_MAX_RANK];
    int np;
    TRY(const_ints(im, (uint32_t)op->in[1], pads, 2 * OSP_MAX_RANK, &np));
    int r = im->t[op->in[0]].rank;
    if (np != 2 * r)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: paddings must be [%d, 2]", im->what, r);
    osp_node_t *n;
    TRY(add_node(im, OSP_OP_PAD, "", &op->x, 1, op->out, &n));
    n->p.pad.mode = OSP_PADMODE_CONSTANT;
    n->p.pad.has_pads = true;
    n->p.pad.n_pads = np;
    /* TFLite: [[b0,e0],[b1,e1],...]; IR: [b..., e...] in NCHW order.
     * Constant padding is 0.0 in real terms (the zero point if quantized). */
    for (int d = 0; d < r; d++) {
        int id = r == 4 ? nhwc_to_nchw[d] : d;
        n->p.pad.pads[id] = pads[2 * d];
        n->p.pad.pads[r + id] = pads[2 * d + 1];
    }
    return 0;
}

/* QUANTIZE, DEQUANTIZE: the target type is the output tensor's. */
static int imp_quant(imp_t *im, const tfl_op_t *op) {
    osp_node_t *n;
    TRY(add_node(im, op->ir_op, "", &op->x, 1, op->out, &n));
    n->p.cast.to = im->g->values[op->out].dtype;
    n->p.cast.axis = 1;
    return 0;
}

/* LOGISTIC, HARD_SWISH, RELU, RELU6, RELU_N1_TO_1 (the last two as CLIP). */
static int imp_activation(imp_t *im, const tfl_op_t *op) {
    osp_node_t *n;
    TRY(add_node(im, op->ir_op, "", &op->x, 1, op->out, &n));
    if (op->code == TFL_RELU6)
        n->p.act.beta = 6.f;
    if (op->code == TFL_RELU_N1_TO_1) {
        n->p.act.alpha = -1.f;
        n->p.act.beta = 1.f;
    }
    return 0;
}

/* The supported TFLite builtins, by code. n_in: inputs that must be present
 * (import_operator checks them); ir_op: what the row's function emits. To
 * add an op: its code in the enum above, a function taking the checked
 * tfl_op_t, and a row here. */
typedef struct tfl_op_row_s {
    int32_t code;
    const char *name; /* as in schema.fbs, for messages and node names */
    uint8_t n_in;
    osp_op_t ir_op;
    int (*fn)(imp_t *im, const tfl_op_t *op);
} tfl_op_row_t;

static const tfl_op_row_t tfl_ops[] = {
    {TFL_ADD, "ADD", 2, OSP_OP_ADD, imp_binary},
    {TFL_AVERAGE_POOL_2D, "AVERAGE_POOL_2D", 1, OSP_OP_AVGPOOL, imp_pool},
    {TFL_CONCATENATION, "CONCATENATION", 1, OSP_OP_CONCAT, imp_concatenation},
    {TFL_CONV_2D, "CONV_2D", 2, OSP_OP_CONV, imp_conv},
    {TFL_DEPTHWISE_CONV_2D, "DEPTHWISE_CONV_2D", 2, OSP_OP_CONV, imp_conv},
    {TFL_DEQUANTIZE, "DEQUANTIZE", 1, OSP_OP_DEQUANTIZE, imp_quant},
    {TFL_FULLY_CONNECTED, "FULLY_CONNECTED", 2, OSP_OP_GEMM,
     imp_fully_connected},
    {TFL_LOGISTIC, "LOGISTIC", 1, OSP_OP_SIGMOID, imp_activation},
    {TFL_MAX_POOL_2D, "MAX_POOL_2D", 1, OSP_OP_MAXPOOL, imp_pool},
    {TFL_MUL, "MUL", 2, OSP_OP_MUL, imp_binary},
    {TFL_RELU, "RELU", 1, OSP_OP_RELU, imp_activation},
    {TFL_RELU_N1_TO_1, "RELU_N1_TO_1", 1, OSP_OP_CLIP, imp_activation},
    {TFL_RELU6, "RELU6", 1, OSP_OP_CLIP, imp_activation},
    {TFL_RESHAPE, "RESHAPE", 1, OSP_OP_RESHAPE, imp_reshape},
    {TFL_SOFTMAX, "SOFTMAX", 1, OSP_OP_SOFTMAX, imp_softmax},
    {TFL_PAD, "PAD", 2, OSP_OP_PAD, imp_pad},
    {TFL_MEAN, "MEAN", 2, OSP_OP_REDUCE_MEAN, imp_mean},
    {TFL_SUB, "SUB", 2, OSP_OP_SUB, imp_binary},
    {TFL_DIV, "DIV", 2, OSP_OP_DIV, imp_binary},
    {TFL_QUANTIZE, "QUANTIZE", 1, OSP_OP_QUANTIZE, imp_quant},
    {TFL_HARD_SWISH, "HARD_SWISH", 1, OSP_OP_HARD_SWISH, imp_activation},
};

static const tfl_op_row_t *find_op(int32_t code) {
    for (size_t i = 0; i < OSP_ARRAY_LEN(tfl_ops); i++)
        if (tfl_ops[i].code == code)
            return &tfl_ops[i];
    return NULL;
}

/* The builtin code of opcode entry oc and its table row; an error naming a
 * custom or unsupported operator when there is no row. */
static int operator_row(imp_t *im, uint32_t oc, uint32_t idx, int32_t *code,
                        const tfl_op_row_t **row) {
    osp_fb_t *fb = &im->fb;
    if (oc >= im->opcodes.count)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "operator %u: opcode index %u of %u", idx, oc,
                           im->opcodes.count);
    osp_fb_table_t ct = osp_fb_vec_table(fb, &im->opcodes, oc);
    *code = osp_fb_i8(fb, &ct, OPCODE_DEPRECATED_BUILTIN, 0);
    int32_t code2 = osp_fb_i32(fb, &ct, OPCODE_BUILTIN, 0);
    if (code2 > *code)
        *code = code2;
    *row = find_op(*code);
    if (*row)
        return 0;
    uint32_t clen;
    const char *custom = osp_fb_string(fb, &ct, OPCODE_CUSTOM, &clen);
    if (custom && clen)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "operator %u: custom operator '%.*s' is not "
                           "supported",
                           idx, (int)OSP_MIN(clen, 64), custom);
    return osp_err_set(im->err, OSP_EUNSUPPORTED,
                       "operator %u: builtin operator %d is not supported",
                       idx, *code);
}

/* Reads the tensor indices of an operator into op, checking each is in
 * range, that the single output is written once and that the row's
 * required inputs are present. */
static int operator_tensors(imp_t *im, const osp_fb_vec_t *ins,
                            const osp_fb_vec_t *outs, uint32_t need_in,
                            tfl_op_t *op) {
    osp_fb_t *fb = &im->fb;
    if (ins->count > 8 || outs->count != 1)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: %u inputs / %u outputs not supported",
                           im->what, ins->count, outs->count);
    op->n_in = ins->count;
    for (uint32_t i = 0; i < ins->count; i++) {
        op->in[i] = osp_fb_vec_i32(fb, ins, i);
        if (op->in[i] < -1 || op->in[i] >= (int32_t)im->n_tensors)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "%s: input tensor index %d out of range",
                               im->what, op->in[i]);
    }
    int32_t out0 = osp_fb_vec_i32(fb, outs, 0);
    if (out0 < 0 || out0 >= (int32_t)im->n_tensors)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: output tensor index %d out of range", im->what,
                           out0);
    const osp_value_t *ov = &im->g->values[im->t[out0].value];
    if (osp_value_is_const(ov) || ov->producer >= 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: output tensor %d is written twice", im->what,
                           out0);
    if (ins->count < need_in)
        return osp_err_set(im->err, OSP_EFORMAT, "%s: missing inputs",
                           im->what);
    for (uint32_t i = 0; i < need_in; i++)
        if (op->in[i] < 0)
            return osp_err_set(im->err, OSP_EFORMAT, "%s: input %u missing",
                               im->what, i);
    op->out = im->t[out0].value;
    op->x = op->in[0] >= 0 ? im->t[op->in[0]].value : -1;
    return 0;
}

/* Operator idx: looks its builtin up in tfl_ops[], checks its tensors and
 * calls the row's function. */
static int import_operator(imp_t *im, osp_fb_table_t *ot, uint32_t idx) {
    osp_fb_t *fb = &im->fb;
    uint32_t oc = osp_fb_u32(fb, ot, OP_OPCODE, 0);
    osp_fb_vec_t ins = osp_fb_vector(fb, ot, OP_INPUTS, 4);
    osp_fb_vec_t outs = osp_fb_vector(fb, ot, OP_OUTPUTS, 4);
    tfl_op_t op = {.opt = osp_fb_table(fb, ot, OP_OPTIONS)};
    if (fb->bad)
        return bad_file(im, "operator");
    const tfl_op_row_t *row;
    TRY(operator_row(im, oc, idx, &op.code, &row));
    snprintf(im->what, sizeof im->what, "op%u_%s", idx, row->name);
    op.ir_op = row->ir_op;
    TRY(operator_tensors(im, &ins, &outs, row->n_in, &op));
    return row->fn(im, &op);
}

/* ---- the model: header → tensors → inputs → operators → outputs -------- */

/* Checks the identifier, root table and schema version, and finds the
 * first subgraph's vectors. */
static int read_model(imp_t *im) {
    osp_fb_t *fb = &im->fb;
    osp_fb_table_t model;
    char id[5];
    if (!osp_fb_identifier(fb, id) || strcmp(id, "TFL3"))
        return osp_err_set(im->err, OSP_EFORMAT,
                           "not a TFLite model (no TFL3 identifier)");
    if (!osp_fb_root(fb, &model))
        return osp_err_set(im->err, OSP_EFORMAT,
                           "malformed TFLite file (root table)");
    uint32_t version = osp_fb_u32(fb, &model, MODEL_VERSION, 0);
    if (version != 3)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "TFLite schema version %u (need 3)", version);
    im->opcodes = osp_fb_vector(fb, &model, MODEL_OPCODES, 4);
    im->buffers = osp_fb_vector(fb, &model, MODEL_BUFFERS, 4);
    osp_fb_vec_t subgraphs = osp_fb_vector(fb, &model, MODEL_SUBGRAPHS, 4);
    if (fb->bad || subgraphs.count == 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "malformed TFLite file (no subgraphs)");
    osp_fb_table_t sg = osp_fb_vec_table(fb, &subgraphs, 0);
    im->tensors_vec = osp_fb_vector(fb, &sg, SG_TENSORS, 4);
    im->sg_inputs = osp_fb_vector(fb, &sg, SG_INPUTS, 4);
    im->sg_outputs = osp_fb_vector(fb, &sg, SG_OUTPUTS, 4);
    im->sg_ops = osp_fb_vector(fb, &sg, SG_OPERATORS, 4);
    if (fb->bad || !sg.pos)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "malformed TFLite file (subgraph)");
    return 0;
}

/* Creates the graph and one IR value per TFLite tensor. */
static int import_tensors(imp_t *im) {
    im->n_tensors = im->tensors_vec.count;
    im->g = osp_graph_create();
    im->t = calloc(im->n_tensors ? im->n_tensors : 1, sizeof *im->t);
    if (!im->g || !im->t)
        return osp_err_set(im->err, OSP_ENOMEM, "TFLite import");
    im->g->name = strdup("tflite");
    im->g->producer = strdup("tflite");
    for (uint32_t i = 0; i < im->n_tensors; i++)
        TRY(make_tensor(im, i));
    return 0;
}

/* Tensor index i of the subgraph's inputs or outputs (kind), in range. */
static int io_tensor(imp_t *im, const osp_fb_vec_t *vec, uint32_t i,
                     const char *kind, int32_t *ti) {
    *ti = osp_fb_vec_i32(&im->fb, vec, i);
    if (*ti < 0 || (uint32_t)*ti >= im->n_tensors)
        return osp_err_set(im->err, OSP_EFORMAT, "%s tensor %d out of range",
                           kind, *ti);
    return 0;
}

/* A 4-D input: the declared value keeps the model's name and NHWC layout
 * (dims), the tensor's value becomes "<name>/nchw" behind a TRANSPOSE. */
static int nhwc_input(imp_t *im, int v, const int64_t *dims) {
    osp_value_t *val = &im->g->values[v];
    char name[300];
    snprintf(name, sizeof name, "%s", val->name);
    size_t nl = strlen(val->name);
    char *renamed = realloc(val->name, nl + 6);
    if (!renamed)
        return osp_err_set(im->err, OSP_ENOMEM, "TFLite import");
    memcpy(renamed + nl, "/nchw", 6);
    val->name = renamed;
    int in_v = osp_graph_add_value(im->g, name, val->dtype, 4, dims);
    if (in_v < 0)
        return osp_err_set(im->err, in_v, "input");
    const osp_quant_t *q = im->g->values[v].quant;
    if (q)
        TRY(osp_graph_set_quant(im->g, in_v, q->axis, q->count, q->scale,
                                q->zero_point));
    TRY(add_transpose(im, in_v, v, perm_act));
    im->g->values[in_v].is_input = true;
    im->g->inputs[im->g->n_inputs++] = in_v;
    return 0;
}

/* Graph input i: the NHWC input as declared, batch made dynamic, then (if
 * 4-D) a TRANSPOSE into the NCHW value the rest of the graph reads. */
static int import_input(imp_t *im, uint32_t i) {
    int32_t ti;
    TRY(io_tensor(im, &im->sg_inputs, i, "input", &ti));
    tfl_tensor_t *t = &im->t[ti];
    int v = t->value;
    osp_value_t *val = &im->g->values[v];
    if (osp_value_is_const(val))
        return osp_err_set(im->err, OSP_EFORMAT, "input tensor %d is constant",
                           ti);
    int64_t dims[OSP_MAX_RANK];
    for (int d = 0; d < t->rank; d++)
        dims[d] = t->shape[d];
    if (t->rank >= 1)
        dims[0] = -1;
    snprintf(im->what, sizeof im->what, "input%u", i);
    if (t->rank == 4)
        return nhwc_input(im, v, dims);
    val->rank = t->rank;
    memcpy(val->dims, dims, sizeof(int64_t) * (size_t)t->rank);
    val->is_input = true;
    im->g->inputs[im->g->n_inputs++] = v;
    return 0;
}

static int import_inputs(imp_t *im) {
    osp_graph_t *g = im->g;
    g->inputs = calloc(im->sg_inputs.count ? im->sg_inputs.count : 1, sizeof(int));
    g->outputs = calloc(im->sg_outputs.count ? im->sg_outputs.count : 1, sizeof(int));
    if (!g->inputs || !g->outputs)
        return osp_err_set(im->err, OSP_ENOMEM, "TFLite import");
    if (im->sg_inputs.count == 0 || im->sg_outputs.count == 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "TFLite model has no inputs or outputs");
    for (uint32_t i = 0; i < im->sg_inputs.count; i++)
        TRY(import_input(im, i));
    return 0;
}

static int import_operators(imp_t *im) {
    for (uint32_t i = 0; i < im->sg_ops.count; i++) {
        osp_fb_table_t ot = osp_fb_vec_table(&im->fb, &im->sg_ops, i);
        if (im->fb.bad || !ot.pos)
            return bad_file(im, "operators");
        TRY(import_operator(im, &ot, i));
    }
    return 0;
}

/* A quantized output is dequantized inside the graph: callers get float
 * scores (scale·(q − zero point)), like every other model, and the output
 * keeps the model's tensor name. *v becomes the float value. */
static int dequantize_output(imp_t *im, uint32_t i, int *v) {
    size_t nl = strlen(im->g->values[*v].name);
    char *qname = malloc(nl + 3);
    if (!qname)
        return osp_err_set(im->err, OSP_ENOMEM, "TFLite import");
    memcpy(qname, im->g->values[*v].name, nl);
    memcpy(qname + nl, "/q", 3);
    char *orig = im->g->values[*v].name;
    im->g->values[*v].name = qname;
    int f = osp_graph_add_value(im->g, orig, OSP_DT_F32, -1, NULL);
    free(orig);
    if (f < 0)
        return osp_err_set(im->err, f, "TFLite import");
    snprintf(im->what, sizeof im->what, "output%u", i);
    osp_node_t *dq;
    TRY(add_node(im, OSP_OP_DEQUANTIZE, "/dequantize", v, 1, f, &dq));
    dq->p.cast.to = OSP_DT_F32;
    dq->p.cast.axis = 1;
    *v = f;
    return 0;
}

static int import_output(imp_t *im, uint32_t i) {
    int32_t ti;
    TRY(io_tensor(im, &im->sg_outputs, i, "output", &ti));
    tfl_tensor_t *t = &im->t[ti];
    int v = t->value;
    if (t->rank == 4)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "4-D graph outputs are not supported yet");
    if (im->g->values[v].producer < 0 && !im->g->values[v].is_input)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "output tensor %d is not produced by any operator",
                           ti);
    if (im->g->values[v].quant && im->g->values[v].dtype != OSP_DT_F32)
        TRY(dequantize_output(im, i, &v));
    /* Declared shape with the batch left dynamic, for callers. */
    osp_value_t *ov = &im->g->values[v];
    if (ov->rank < 0) {
        ov->rank = t->rank;
        for (int d = 0; d < t->rank; d++)
            ov->dims[d] = d == 0 ? -1 : t->shape[d];
    }
    ov->is_output = true;
    im->g->outputs[im->g->n_outputs++] = v;
    return 0;
}

static int import_outputs(imp_t *im) {
    for (uint32_t i = 0; i < im->sg_outputs.count; i++)
        TRY(import_output(im, i));
    return 0;
}

osp_graph_t *osp_tflite_import(const void *buf, size_t len, osp_err_t *err) {
    imp_t im = {.fb = {.buf = buf, .len = len}, .err = err};
    int rc = read_model(&im);
    if (!rc)
        rc = import_tensors(&im);
    if (!rc)
        rc = import_inputs(&im);
    if (!rc)
        rc = import_operators(&im);
    if (!rc)
        rc = import_outputs(&im);
    if (!rc && im.fb.bad)
        rc = bad_file(&im, "model");
    free(im.t);
    if (rc) {
        osp_graph_destroy(im.g);
        return NULL;
    }
    return im.g;
}
