/* onnx_import.c — ONNX ModelProto → osprey graph IR.
 *
 * The protobuf is decoded by protobuf-c code generated at build time from the
 * system's onnx.proto (libonnx-dev); protobuf-c validates the wire format, so
 * a truncated or corrupt file fails in onnx__model_proto__unpack. Everything
 * the decoded message says is still untrusted: tensor sizes are checked
 * against dims, names against the graph, attributes against what each op
 * accepts. Each op lists the attributes it understands; any other attribute,
 * op, domain or opset outside 7..17 is a load-time error naming the node, so
 * a model never runs with semantics we silently ignored.
 *
 * Ops are imported through one table, onnx_ops[] (as ggml's op tables): a
 * row {"Conv", OSP_OP_CONV, imp_conv} per supported op_type. translate()
 * finds the row by op_type and calls its function, which checks the
 * attributes and fills the IR params; import_node then checks inputs and
 * outputs by IR op (its arity table) and adds the node. Constant nodes
 * become constant values, not nodes (import_constant). To add an op: an
 * imp_<op> function, a row in onnx_ops[], and its input count in
 * import_node's arity table unless it takes exactly one input. */
#include "engine/import/onnx_import.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#define OSP_ONNX_OPSET_MIN 7
#define OSP_ONNX_OPSET_MAX 17
/* Refuse tensors with more elements than this (2^31): far beyond any image
 * classifier, and it keeps byte counts comfortably inside size_t. */
#define OSP_ONNX_MAX_NUMEL (1ull << 31)

typedef Onnx__NodeProto node_pb;
typedef Onnx__AttributeProto attr_pb;

/* ---- tensors ----------------------------------------------------------- */

static int dtype_from_onnx(int32_t t, osp_dtype_t *out) {
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: *out = OSP_DT_F32; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: *out = OSP_DT_U8; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: *out = OSP_DT_S8; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: *out = OSP_DT_S32; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: *out = OSP_DT_S64; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: *out = OSP_DT_BOOL; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: *out = OSP_DT_F16; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: *out = OSP_DT_BF16; return 0;
    default: return OSP_EUNSUPPORTED;
    }
}

static const char *onnx_dtype_name(int32_t t) {
    static const char *names[] = {
        "UNDEFINED", "FLOAT",  "UINT8",   "INT8",      "UINT16",    "INT16",
        "INT32",     "INT64",  "STRING",  "BOOL",      "FLOAT16",   "DOUBLE",
        "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    return t >= 0 && (size_t)t < OSP_ARRAY_LEN(names) ? names[t] : "unknown";
}

/* Decodes a TensorProto's payload into a malloc'd dense buffer. When the
 * payload is raw_data, the buffer protobuf-c allocated is taken over instead
 * of copied (the message's pointer is cleared so free_unpacked skips it):
 * this halves peak memory and load time for ResNet50-sized weights. */
static int tensor_decode(Onnx__TensorProto *tp, osp_tensor_t *t,
                         size_t *bytes_out, osp_err_t *err) {
    const char *name = tp->name ? tp->name : "";
    memset(t, 0, sizeof *t);
    if (tp->has_data_location &&
        tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "tensor '%s': external data files are not supported",
                           name);
    if (tp->segment)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "tensor '%s': segmented tensors are not supported",
                           name);
    if (dtype_from_onnx(tp->data_type, &t->dtype) != 0)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "tensor '%s': data type %s is not supported", name,
                           onnx_dtype_name(tp->data_type));
    if (tp->n_dims > OSP_MAX_RANK)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "tensor '%s': rank %zu exceeds %d", name, tp->n_dims,
                           OSP_MAX_RANK);
    uint64_t numel = 1;
    t->rank = (int)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0 || (uint64_t)d > OSP_ONNX_MAX_NUMEL)
            return osp_err_set(err, OSP_EFORMAT,
                               "tensor '%s': invalid dimension %lld", name,
                               (long long)d);
        t->dims[i] = d;
        numel *= (uint64_t)d;
        if (numel > OSP_ONNX_MAX_NUMEL)
            return osp_err_set(err, OSP_ELIMIT,
                               "tensor '%s': too many elements", name);
    }
    size_t esz = osp_dtype_size(t->dtype);
    size_t bytes = (size_t)numel * esz;
    if (tp->has_raw_data && tp->raw_data.len == bytes && bytes > 0) {
        t->data = tp->raw_data.data;
        tp->raw_data.data = NULL;
        tp->raw_data.len = 0;
        *bytes_out = bytes;
        return 0;
    }
    /* The payload must be there before anything is allocated: a few bytes
     * of protobuf can declare a tensor of gigabytes. */
    size_t have = 0;
    if (tp->has_raw_data) {
        if (tp->raw_data.len != bytes)
            return osp_err_set(err, OSP_EFORMAT,
                               "tensor '%s': raw_data has %zu bytes, shape and "
                               "type need %zu",
                               name, tp->raw_data.len, bytes);
    } else {
        switch (t->dtype) {
        case OSP_DT_F32: have = tp->n_float_data; break;
        case OSP_DT_S64: have = tp->n_int64_data; break;
        default: have = tp->n_int32_data; break; /* int32/8, u8, bool, f16 */
        }
        if (have != numel)
            return osp_err_set(err, OSP_EFORMAT,
                               "tensor '%s': has %zu values, shape needs %llu",
                               name, have, (unsigned long long)numel);
    }
    uint8_t *data = malloc(bytes ? bytes : 1);
    if (!data)
        return osp_err_set(err, OSP_ENOMEM, "tensor '%s': %zu bytes", name,
                           bytes);
    if (tp->has_raw_data) {
        if (bytes)
            memcpy(data, tp->raw_data.data, bytes);
    } else {
        for (size_t i = 0; i < numel; i++) {
            switch (t->dtype) {
            case OSP_DT_F32: ((float *)data)[i] = tp->float_data[i]; break;
            case OSP_DT_S64: ((int64_t *)data)[i] = tp->int64_data[i]; break;
            case OSP_DT_S32: ((int32_t *)data)[i] = tp->int32_data[i]; break;
            case OSP_DT_F16:
            case OSP_DT_BF16:
                ((uint16_t *)data)[i] = (uint16_t)tp->int32_data[i];
                break;
            case OSP_DT_U8:
            case OSP_DT_BOOL: data[i] = (uint8_t)tp->int32_data[i]; break;
            case OSP_DT_S8: ((int8_t *)data)[i] = (int8_t)tp->int32_data[i]; break;
            default: OSP_ASSERT(0);
            }
        }
    }
    t->data = data;
    *bytes_out = bytes;
    return 0;
}

int osp_onnx_parse_tensor(const void *buf, size_t len, osp_tensor_t *t,
                          char **name, osp_err_t *err) {
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp)
        return osp_err_set(err, OSP_EFORMAT,
                           "not a valid serialized onnx.TensorProto");
    size_t bytes;
    int rc = tensor_decode(tp, t, &bytes, err);
    if (rc == 0 && name) {
        *name = strdup(tp->name ? tp->name : "");
        if (!*name) {
            free(t->data);
            t->data = NULL;
            rc = osp_err_set(err, OSP_ENOMEM, "tensor name");
        }
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return rc;
}

/* ---- attributes --------------------------------------------------------- */

typedef struct imp_s {
    osp_graph_t *g;
    int64_t opset;
    osp_err_t *err;
    const node_pb *np; /* node being imported, for messages */
    char what[160];    /* "node 'conv1' (Conv)" */
} imp_t;

static const attr_pb *attr_find(const node_pb *np, const char *name) {
    for (size_t i = 0; i < np->n_attribute; i++)
        if (np->attribute[i]->name && !strcmp(np->attribute[i]->name, name))
            return np->attribute[i];
    return NULL;
}

/* Every attribute of the node must be one of `allowed` (NULL-terminated). */
static int attrs_check(imp_t *im, const char *const *allowed) {
    for (size_t i = 0; i < im->np->n_attribute; i++) {
        const attr_pb *a = im->np->attribute[i];
        const char *n = a->name ? a->name : "";
        int ok = 0;
        for (const char *const *p = allowed; *p; p++)
            ok |= !strcmp(*p, n);
        if (!ok)
            return osp_err_set(im->err, OSP_EUNSUPPORTED,
                               "%s: unsupported attribute '%s'", im->what, n);
        if (a->ref_attr_name && *a->ref_attr_name)
            return osp_err_set(im->err, OSP_EUNSUPPORTED,
                               "%s: attribute references are not supported",
                               im->what);
    }
    return 0;
}

static int attr_int(imp_t *im, const char *name, int64_t def, int64_t *out) {
    const attr_pb *a = attr_find(im->np, name);
    *out = def;
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: attribute '%s' must be an int", im->what, name);
    *out = a->i;
    return 0;
}

static int attr_float(imp_t *im, const char *name, float def, float *out) {
    const attr_pb *a = attr_find(im->np, name);
    *out = def;
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: attribute '%s' must be a float", im->what, name);
    *out = a->f;
    return 0;
}

/* An INT attribute used as a flag: any non-zero value is true. */
static int attr_bool(imp_t *im, const char *name, bool def, bool *out) {
    int64_t iv;
    int rc = attr_int(im, name, def, &iv);
    *out = iv != 0;
    return rc;
}

/* Reads an INTS attribute of at most max entries; *n = -1 when absent. */
static int attr_ints(imp_t *im, const char *name, int64_t *out, int max,
                     int *n) {
    const attr_pb *a = attr_find(im->np, name);
    *n = -1;
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: attribute '%s' must be a list of ints",
                           im->what, name);
    if (a->n_ints > (size_t)max)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: attribute '%s' has %zu entries (max %d)",
                           im->what, name, a->n_ints, max);
    for (size_t i = 0; i < a->n_ints; i++)
        out[i] = a->ints[i];
    *n = (int)a->n_ints;
    return 0;
}

/* Reads a STRING attribute into buf; empty when absent. */
static int attr_str(imp_t *im, const char *name, char *buf, size_t cap) {
    const attr_pb *a = attr_find(im->np, name);
    buf[0] = '\0';
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: attribute '%s' must be a string", im->what,
                           name);
    size_t n = a->s.len < cap - 1 ? a->s.len : cap - 1;
    if (n) /* an empty string has no data pointer */
        memcpy(buf, a->s.data, n);
    buf[n] = '\0';
    return 0;
}

static int value_ref(imp_t *im, const char *name, bool create);

/* ---- per-op attribute translation ------------------------------------- */

/* Conv and pools: kernel_shape, strides, dilations, pads, auto_pad. The
 * spatial rank comes from kernel_shape when given (pools require it); for a
 * conv without kernel_shape it is left 0 and taken from the weights later. */
static int read_window(imp_t *im, osp_window_t *w, bool need_kernel) {
    int64_t k[OSP_MAX_SPATIAL], s[OSP_MAX_SPATIAL], d[OSP_MAX_SPATIAL];
    int64_t pads[2 * OSP_MAX_SPATIAL];
    int nk, ns, nd, np;
    int rc;
    if ((rc = attr_ints(im, "kernel_shape", k, OSP_MAX_SPATIAL, &nk)) ||
        (rc = attr_ints(im, "strides", s, OSP_MAX_SPATIAL, &ns)) ||
        (rc = attr_ints(im, "dilations", d, OSP_MAX_SPATIAL, &nd)) ||
        (rc = attr_ints(im, "pads", pads, 2 * OSP_MAX_SPATIAL, &np)))
        return rc;
    if (need_kernel && nk <= 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: attribute 'kernel_shape' is required",
                           im->what);
    int sp = nk > 0 ? nk : ns > 0 ? ns : nd > 0 ? nd : np > 0 ? np / 2 : 0;
    if ((nk >= 0 && nk != sp) || (ns >= 0 && ns != sp) ||
        (nd >= 0 && nd != sp) || (np >= 0 && np != 2 * sp))
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: kernel_shape/strides/dilations/pads disagree on "
                           "the number of spatial dimensions",
                           im->what);
    memset(w, 0, sizeof *w);
    w->n_spatial = sp;
    for (int i = 0; i < sp; i++) {
        w->kernel[i] = nk > 0 ? k[i] : 0;
        w->stride[i] = ns > 0 ? s[i] : 1;
        w->dilation[i] = nd > 0 ? d[i] : 1;
        w->pad_begin[i] = np > 0 ? pads[i] : 0;
        w->pad_end[i] = np > 0 ? pads[sp + i] : 0;
        if ((nk > 0 && w->kernel[i] <= 0) || w->stride[i] <= 0 ||
            w->dilation[i] <= 0 || w->pad_begin[i] < 0 || w->pad_end[i] < 0)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "%s: non-positive kernel/stride/dilation or "
                               "negative pad",
                               im->what);
    }
    char ap[32];
    if ((rc = attr_str(im, "auto_pad", ap, sizeof ap)))
        return rc;
    if (!ap[0] || !strcmp(ap, "NOTSET"))
        w->auto_pad = OSP_PAD_EXPLICIT;
    else if (!strcmp(ap, "SAME_UPPER"))
        w->auto_pad = OSP_PAD_SAME_UPPER;
    else if (!strcmp(ap, "SAME_LOWER"))
        w->auto_pad = OSP_PAD_SAME_LOWER;
    else if (!strcmp(ap, "VALID"))
        w->auto_pad = OSP_PAD_VALID;
    else
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: unsupported auto_pad '%s'", im->what, ap);
    if (w->auto_pad != OSP_PAD_EXPLICIT && np > 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: 'pads' and 'auto_pad' are mutually exclusive",
                           im->what);
    return 0;
}

static int read_axes(imp_t *im, osp_axes_params_t *a, const char *attr) {
    int n;
    int rc = attr_ints(im, attr, a->axes, OSP_MAX_RANK, &n);
    if (rc)
        return rc;
    a->has_axes = n >= 0;
    a->n_axes = n > 0 ? n : 0;
    return 0;
}

#define ALLOW(...)                                                             \
    do {                                                                       \
        static const char *const allowed_[] = {__VA_ARGS__, NULL};             \
        int rc_ = attrs_check(im, allowed_);                                   \
        if (rc_)                                                               \
            return rc_;                                                        \
    } while (0)
#define NO_ATTRS()                                                             \
    do {                                                                       \
        static const char *const allowed_[] = {NULL};                          \
        int rc_ = attrs_check(im, allowed_);                                   \
        if (rc_)                                                               \
            return rc_;                                                        \
    } while (0)
#define TRY(x)                                                                 \
    do {                                                                       \
        int rc_ = (x);                                                         \
        if (rc_)                                                               \
            return rc_;                                                        \
    } while (0)

/* Fails unless output i (if named) is absent: optional outputs we do not
 * produce (MaxPool Indices, BatchNorm running stats, Dropout mask). */
static int no_extra_outputs(imp_t *im, size_t keep) {
    for (size_t i = keep; i < im->np->n_output; i++)
        if (im->np->output[i] && im->np->output[i][0])
            return osp_err_set(im->err, OSP_EUNSUPPORTED,
                               "%s: optional output %zu ('%s') is not supported",
                               im->what, i, im->np->output[i]);
    return 0;
}

/* ---- per-op importers ----------------------------------------------------
 *
 * One function per ONNX op_type (or family sharing its attributes), called
 * through onnx_ops[] below: it checks the node's attributes against the ones
 * it understands and fills the IR params (zeroed before the call). Inputs
 * and outputs are checked afterwards by import_node, by IR op. */

typedef int (*onnx_import_fn)(imp_t *im, osp_op_t op, osp_op_params_t *p);

/* Relu, Sigmoid, HardSwish, Add, Sub, Mul, Div, GlobalAveragePool,
 * GlobalMaxPool, MatMul, Identity: no attributes, no params. */
static int imp_no_attrs(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    NO_ATTRS();
    return 0;
}

static int imp_conv(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("auto_pad", "dilations", "group", "kernel_shape", "pads",
          "strides");
    TRY(read_window(im, &p->conv.win, false));
    TRY(attr_int(im, "group", 1, &p->conv.group));
    if (p->conv.group <= 0)
        return osp_err_set(im->err, OSP_EFORMAT, "%s: group must be > 0",
                           im->what);
    return 0;
}

static int imp_batchnorm(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    int64_t iv;
    ALLOW("epsilon", "momentum", "spatial", "training_mode");
    TRY(attr_float(im, "epsilon", 1e-5f, &p->bn.epsilon));
    TRY(attr_int(im, "spatial", 1, &iv));
    if (iv != 1)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: spatial=0 is not supported", im->what);
    TRY(attr_int(im, "training_mode", 0, &iv));
    if (iv != 0)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: training_mode=1 is not supported (inference "
                           "only)",
                           im->what);
    return no_extra_outputs(im, 1);
}

static int imp_leaky_relu(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("alpha");
    return attr_float(im, "alpha", 0.01f, &p->act.alpha);
}

/* Clip: min/max attributes before opset 11, optional inputs from 11. */
static int imp_clip(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    if (im->opset >= 11) {
        NO_ATTRS();
        p->act.alpha = -INFINITY;
        p->act.beta = INFINITY;
        return 0;
    }
    ALLOW("min", "max");
    TRY(attr_float(im, "min", -INFINITY, &p->act.alpha));
    return attr_float(im, "max", INFINITY, &p->act.beta);
}

static int imp_hard_sigmoid(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("alpha", "beta");
    TRY(attr_float(im, "alpha", 0.2f, &p->act.alpha));
    return attr_float(im, "beta", 0.5f, &p->act.beta);
}

static int imp_maxpool(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    int64_t iv;
    ALLOW("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
          "storage_order", "strides");
    TRY(read_window(im, &p->pool.win, true));
    TRY(attr_bool(im, "ceil_mode", false, &p->pool.ceil_mode));
    TRY(attr_int(im, "storage_order", 0, &iv));
    if (iv != 0)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: storage_order=1 is not supported", im->what);
    return no_extra_outputs(im, 1);
}

static int imp_avgpool(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("auto_pad", "ceil_mode", "count_include_pad", "kernel_shape",
          "pads", "strides");
    TRY(read_window(im, &p->pool.win, true));
    TRY(attr_bool(im, "ceil_mode", false, &p->pool.ceil_mode));
    return attr_bool(im, "count_include_pad", false,
                  &p->pool.count_include_pad);
}

static int imp_gemm(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("alpha", "beta", "transA", "transB");
    TRY(attr_float(im, "alpha", 1.f, &p->gemm.alpha));
    TRY(attr_float(im, "beta", 1.f, &p->gemm.beta));
    TRY(attr_bool(im, "transA", false, &p->gemm.trans_a));
    return attr_bool(im, "transB", false, &p->gemm.trans_b);
}

static int imp_flatten(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("axis");
    return attr_int(im, "axis", 1, &p->axis.axis);
}

static int imp_reshape(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    if (im->opset < 14) {
        NO_ATTRS();
        return 0;
    }
    ALLOW("allowzero");
    return attr_bool(im, "allowzero", false, &p->axes.allowzero);
}

/* Squeeze, Unsqueeze: axes attribute before opset 13, input 1 from 13. */
static int imp_squeeze(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    if (im->opset >= 13) {
        NO_ATTRS();
        return 0;
    }
    ALLOW("axes");
    TRY(read_axes(im, &p->axes, "axes"));
    if (op == OSP_OP_UNSQUEEZE && !p->axes.has_axes)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: attribute 'axes' is required", im->what);
    return 0;
}

static int imp_concat(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("axis");
    if (!attr_find(im->np, "axis"))
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: attribute 'axis' is required", im->what);
    return attr_int(im, "axis", 0, &p->axis.axis);
}

static int imp_softmax(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("axis");
    p->axis.legacy = im->opset < 13;
    return attr_int(im, "axis", p->axis.legacy ? 1 : -1, &p->axis.axis);
}

/* Inference: Dropout is the identity; the ratio (attribute, or input 1 from
 * opset 12) does not matter. training_mode (input 2) must be absent or a
 * constant false. */
static int imp_dropout(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("ratio", "seed", "is_test");
    TRY(no_extra_outputs(im, 1));
    if (im->np->n_input > 2 && im->np->input[2] && im->np->input[2][0]) {
        int tm = value_ref(im, im->np->input[2], false);
        const osp_value_t *v = tm >= 0 ? &im->g->values[tm] : NULL;
        if (!v || !v->data || v->data_bytes < 1 ||
            ((const uint8_t *)v->data)[0] != 0)
            return osp_err_set(im->err, OSP_EUNSUPPORTED,
                               "%s: training_mode must be a constant false "
                               "(inference only)",
                               im->what);
    }
    return 0;
}

/* Shape: opset 15 slicing as axes[0] = start, axes[1] = end (INT64_MAX when
 * absent = to the end). */
static int imp_shape(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("start", "end");
    int64_t start, end;
    TRY(attr_int(im, "start", 0, &start));
    TRY(attr_int(im, "end", INT64_MAX, &end));
    p->axes.has_axes = true;
    p->axes.n_axes = 2;
    p->axes.axes[0] = start;
    p->axes.axes[1] = end;
    return 0;
}

static int imp_gather(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("axis");
    return attr_int(im, "axis", 0, &p->axis.axis);
}

static int imp_transpose(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("perm");
    return read_axes(im, &p->axes, "perm");
}

/* Pad: pads and value are attributes before opset 11, inputs from 11. */
static int imp_pad(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    char mode[32];
    if (im->opset < 11) {
        ALLOW("mode", "pads", "value");
        int n;
        TRY(attr_ints(im, "pads", p->pad.pads, 2 * OSP_MAX_RANK, &n));
        if (n < 0)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "%s: attribute 'pads' is required", im->what);
        p->pad.has_pads = true;
        p->pad.n_pads = n;
        TRY(attr_float(im, "value", 0.f, &p->pad.value));
    } else {
        ALLOW("mode");
    }
    TRY(attr_str(im, "mode", mode, sizeof mode));
    if (!mode[0] || !strcmp(mode, "constant"))
        p->pad.mode = OSP_PADMODE_CONSTANT;
    else if (!strcmp(mode, "reflect"))
        p->pad.mode = OSP_PADMODE_REFLECT;
    else if (!strcmp(mode, "edge"))
        p->pad.mode = OSP_PADMODE_EDGE;
    else
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: unsupported pad mode '%s'", im->what, mode);
    return 0;
}

static int imp_reduce_mean(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("axes", "keepdims");
    TRY(read_axes(im, &p->axes, "axes"));
    return attr_bool(im, "keepdims", true, &p->axes.keepdims);
}

static int imp_lrn(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("alpha", "beta", "bias", "size");
    TRY(attr_float(im, "alpha", 1e-4f, &p->lrn.alpha));
    TRY(attr_float(im, "beta", 0.75f, &p->lrn.beta));
    TRY(attr_float(im, "bias", 1.f, &p->lrn.bias));
    TRY(attr_int(im, "size", 0, &p->lrn.size));
    if (p->lrn.size <= 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: attribute 'size' must be > 0", im->what);
    return 0;
}

static int imp_cast(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    int64_t iv;
    ALLOW("to");
    TRY(attr_int(im, "to", 0, &iv));
    if (iv < INT32_MIN || iv > INT32_MAX ||
        dtype_from_onnx((int32_t)iv, &p->cast.to) != 0)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: cast to %s is not supported", im->what,
                           onnx_dtype_name((int32_t)iv));
    return 0;
}

/* QuantizeLinear, DequantizeLinear. */
static int imp_qdq(imp_t *im, osp_op_t op, osp_op_params_t *p) {
    ALLOW("axis");
    return attr_int(im, "axis", 1, &p->cast.axis);
}

/* The supported ONNX ops (default domain), by op_type. To add an op: a row
 * here naming its IR op and a function that reads its attributes; its input
 * count goes in import_node's arity table when it is not exactly 1. */
static const struct onnx_op_row_s {
    const char *op_type;
    osp_op_t ir_op;
    onnx_import_fn fn;
} onnx_ops[] = {
    {"Conv", OSP_OP_CONV, imp_conv},
    {"BatchNormalization", OSP_OP_BATCHNORM, imp_batchnorm},
    {"Relu", OSP_OP_RELU, imp_no_attrs},
    {"LeakyRelu", OSP_OP_LEAKY_RELU, imp_leaky_relu},
    {"Clip", OSP_OP_CLIP, imp_clip},
    {"Sigmoid", OSP_OP_SIGMOID, imp_no_attrs},
    {"HardSigmoid", OSP_OP_HARD_SIGMOID, imp_hard_sigmoid},
    {"HardSwish", OSP_OP_HARD_SWISH, imp_no_attrs},
    {"Add", OSP_OP_ADD, imp_no_attrs},
    {"Sub", OSP_OP_SUB, imp_no_attrs},
    {"Mul", OSP_OP_MUL, imp_no_attrs},
    {"Div", OSP_OP_DIV, imp_no_attrs},
    {"MaxPool", OSP_OP_MAXPOOL, imp_maxpool},
    {"AveragePool", OSP_OP_AVGPOOL, imp_avgpool},
    {"GlobalAveragePool", OSP_OP_GLOBAL_AVGPOOL, imp_no_attrs},
    {"GlobalMaxPool", OSP_OP_GLOBAL_MAXPOOL, imp_no_attrs},
    {"Gemm", OSP_OP_GEMM, imp_gemm},
    {"MatMul", OSP_OP_MATMUL, imp_no_attrs},
    {"Flatten", OSP_OP_FLATTEN, imp_flatten},
    {"Reshape", OSP_OP_RESHAPE, imp_reshape},
    {"Squeeze", OSP_OP_SQUEEZE, imp_squeeze},
    {"Unsqueeze", OSP_OP_UNSQUEEZE, imp_squeeze},
    {"Concat", OSP_OP_CONCAT, imp_concat},
    {"Softmax", OSP_OP_SOFTMAX, imp_softmax},
    {"Identity", OSP_OP_IDENTITY, imp_no_attrs},
    {"Dropout", OSP_OP_IDENTITY, imp_dropout},
    {"Shape", OSP_OP_SHAPE, imp_shape},
    {"Gather", OSP_OP_GATHER, imp_gather},
    {"Transpose", OSP_OP_TRANSPOSE, imp_transpose},
    {"Pad", OSP_OP_PAD, imp_pad},
    {"ReduceMean", OSP_OP_REDUCE_MEAN, imp_reduce_mean},
    {"LRN", OSP_OP_LRN, imp_lrn},
    {"Cast", OSP_OP_CAST, imp_cast},
    {"QuantizeLinear", OSP_OP_QUANTIZE, imp_qdq},
    {"DequantizeLinear", OSP_OP_DEQUANTIZE, imp_qdq},
};

/* Translates op_type + attributes into an IR op and params. */
static int translate(imp_t *im, osp_op_t *op, osp_op_params_t *p) {
    const char *t = im->np->op_type;
    *op = OSP_OP_NONE;
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < OSP_ARRAY_LEN(onnx_ops); i++)
        if (!strcmp(t, onnx_ops[i].op_type)) {
            *op = onnx_ops[i].ir_op;
            return onnx_ops[i].fn(im, *op, p);
        }
    return osp_err_set(im->err, OSP_EUNSUPPORTED,
                       "%s: unsupported operator '%s'", im->what, t);
}

/* ---- graph ------------------------------------------------------------- */

/* Looks up (or, for a node output, creates) the value called name. */
static int value_ref(imp_t *im, const char *name, bool create) {
    if (!name || !*name)
        return -1; /* omitted optional input */
    int v = osp_graph_find_value(im->g, name);
    if (v >= 0 || !create)
        return v;
    return osp_graph_add_value(im->g, name, OSP_DT_UNDEF, -1, NULL);
}

static int add_const_tensor(imp_t *im, const char *name,
                            Onnx__TensorProto *tp) {
    osp_tensor_t t;
    size_t bytes;
    int rc = tensor_decode(tp, &t, &bytes, im->err);
    if (rc)
        return rc;
    if (osp_graph_find_value(im->g, name) >= 0) {
        free(t.data);
        return osp_err_set(im->err, OSP_EFORMAT,
                           "value '%s' is defined more than once", name);
    }
    int v = osp_graph_add_value(im->g, name, t.dtype, t.rank, t.dims);
    if (v < 0) {
        free(t.data);
        return osp_err_set(im->err, v, "value '%s'", name);
    }
    osp_graph_set_const(im->g, v, t.data, bytes);
    return 0;
}

/* Constant node → constant value (no node in the IR). */
static int import_constant(imp_t *im) {
    static const char *const allowed[] = {"value",       "value_float",
                                          "value_floats", "value_int",
                                          "value_ints",  NULL};
    TRY(attrs_check(im, allowed));
    if (im->np->n_attribute != 1 || im->np->n_output != 1)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: needs exactly one value attribute and output",
                           im->what);
    const attr_pb *a = im->np->attribute[0];
    const char *out = im->np->output[0];
    if (!strcmp(a->name, "value")) {
        if (!a->t)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "%s: 'value' has no tensor", im->what);
        int rc = add_const_tensor(im, out, a->t);
        return rc ? osp_err_prefix(im->err, "%s", im->what) : 0;
    }
    bool is_float = !strncmp(a->name, "value_float", 11);
    bool is_list = a->name[strlen(a->name) - 1] == 's';
    size_t n = is_list ? (is_float ? a->n_floats : a->n_ints) : 1;
    if ((is_float && is_list && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS) ||
        (is_float && !is_list && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) ||
        (!is_float && is_list && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) ||
        (!is_float && !is_list && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT))
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: attribute '%s' has the wrong type", im->what,
                           a->name);
    size_t esz = is_float ? 4 : 8;
    void *data = malloc(n ? n * esz : 1);
    if (!data)
        return osp_err_set(im->err, OSP_ENOMEM, "%s", im->what);
    for (size_t i = 0; i < n; i++) {
        if (is_float)
            ((float *)data)[i] = is_list ? a->floats[i] : a->f;
        else
            ((int64_t *)data)[i] = is_list ? a->ints[i] : a->i;
    }
    int64_t dims[1] = {(int64_t)n};
    int v = osp_graph_add_value(im->g, out, is_float ? OSP_DT_F32 : OSP_DT_S64,
                                is_list ? 1 : 0, dims);
    if (v < 0) {
        free(data);
        return osp_err_set(im->err, v, "%s", im->what);
    }
    osp_graph_set_const(im->g, v, data, n * esz);
    return 0;
}

static int import_node(imp_t *im) {
    const node_pb *np = im->np;
    const char *dom = np->domain ? np->domain : "";
    if (*dom && strcmp(dom, "ai.onnx"))
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: operator domain '%s' is not supported",
                           im->what, dom);
    if (!np->op_type)
        return osp_err_set(im->err, OSP_EFORMAT, "%s: no op_type", im->what);
    if (!strcmp(np->op_type, "Constant"))
        return import_constant(im);

    osp_op_t op;
    osp_op_params_t params;
    TRY(translate(im, &op, &params));

    int in[64], out[8];
    if (np->n_input > OSP_ARRAY_LEN(in) || np->n_output > OSP_ARRAY_LEN(out))
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "%s: too many inputs or outputs", im->what);
    for (size_t i = 0; i < np->n_input; i++) {
        in[i] = value_ref(im, np->input[i], false);
        if (in[i] < 0 && np->input[i] && np->input[i][0])
            return osp_err_set(im->err, OSP_EFORMAT,
                               "%s: input '%s' is not defined before use",
                               im->what, np->input[i]);
    }
    /* Only the outputs we produce (optional extras were checked above). */
    size_t n_out = np->n_output;
    if (op == OSP_OP_MAXPOOL || op == OSP_OP_BATCHNORM ||
        (op == OSP_OP_IDENTITY && !strcmp(np->op_type, "Dropout")))
        n_out = n_out > 1 ? 1 : n_out;
    if (n_out < 1)
        return osp_err_set(im->err, OSP_EFORMAT, "%s: no outputs", im->what);
    for (size_t i = 0; i < n_out; i++) {
        if (!np->output[i] || !np->output[i][0])
            return osp_err_set(im->err, OSP_EFORMAT, "%s: empty output name",
                               im->what);
        if (osp_graph_find_value(im->g, np->output[i]) >= 0)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "%s: output '%s' is defined more than once",
                               im->what, np->output[i]);
        out[i] = value_ref(im, np->output[i], true);
        if (out[i] < 0)
            return osp_err_set(im->err, OSP_ENOMEM, "%s", im->what);
    }
    /* Check the number of inputs each op needs. */
    static const struct {
        osp_op_t op;
        int8_t min, max; /* max -1 = unbounded */
    } arity[] = {
        {OSP_OP_CONV, 2, 3},        {OSP_OP_BATCHNORM, 5, 5},
        {OSP_OP_CLIP, 1, 3},        {OSP_OP_ADD, 2, 2},
        {OSP_OP_SUB, 2, 2},         {OSP_OP_MUL, 2, 2},
        {OSP_OP_DIV, 2, 2},         {OSP_OP_GEMM, 2, 3},
        {OSP_OP_MATMUL, 2, 2},      {OSP_OP_RESHAPE, 2, 2},
        {OSP_OP_SQUEEZE, 1, 2},     {OSP_OP_UNSQUEEZE, 1, 2},
        {OSP_OP_CONCAT, 1, -1},     {OSP_OP_GATHER, 2, 2},
        {OSP_OP_PAD, 1, 3},         {OSP_OP_REDUCE_MEAN, 1, 2},
        {OSP_OP_QUANTIZE, 2, 3},    {OSP_OP_DEQUANTIZE, 2, 3},
        {OSP_OP_IDENTITY, 1, 3}, /* Dropout: data, ratio, training_mode */
    };
    int min = 1, max = 1;
    for (size_t i = 0; i < OSP_ARRAY_LEN(arity); i++)
        if (arity[i].op == op) {
            min = arity[i].min;
            max = arity[i].max < 0 ? (int)np->n_input : arity[i].max;
        }
    if ((int)np->n_input < min || (int)np->n_input > max || in[0] < 0)
        return osp_err_set(im->err, OSP_EFORMAT,
                           "%s: has %zu inputs, expected %d..%d", im->what,
                           np->n_input, min, max);
    if (op == OSP_OP_UNSQUEEZE && !params.axes.has_axes && np->n_input < 2)
        return osp_err_set(im->err, OSP_EFORMAT, "%s: 'axes' input required",
                           im->what);
    if (!strcmp(np->op_type, "Identity") && np->n_input != 1)
        return osp_err_set(im->err, OSP_EFORMAT, "%s: needs exactly 1 input",
                           im->what);
    if (op == OSP_OP_RESHAPE && in[1] < 0)
        return osp_err_set(im->err, OSP_EFORMAT, "%s: 'shape' input required",
                           im->what);
    int n_in = (int)np->n_input;
    if (op == OSP_OP_IDENTITY)
        n_in = 1; /* Dropout's ratio/training_mode are not data */
    int n = osp_graph_add_node(im->g, op, np->name, in, n_in, out,
                               (int)n_out);
    if (n < 0)
        return osp_err_set(im->err, n, "%s", im->what);
    im->g->nodes[n].p = params;
    return 0;
}

/* Declared type of a graph input/output. */
static int value_info(imp_t *im, const Onnx__ValueInfoProto *vi,
                      osp_dtype_t *dt, int *rank, int64_t *dims) {
    const char *name = vi->name ? vi->name : "";
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !tp->tensor_type)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "graph value '%s': only tensor types are supported",
                           name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (dtype_from_onnx(tt->elem_type, dt) != 0)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "graph value '%s': element type %s is not supported",
                           name, onnx_dtype_name(tt->elem_type));
    if (!tt->shape) {
        *rank = -1;
        return 0;
    }
    if (tt->shape->n_dim > OSP_MAX_RANK)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "graph value '%s': rank %zu exceeds %d", name,
                           tt->shape->n_dim, OSP_MAX_RANK);
    *rank = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case ==
                ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value >= 0)
            dims[i] = d->dim_value;
        else
            dims[i] = -1; /* symbolic ("batch") or unknown */
    }
    return 0;
}

static int import_graph(imp_t *im, Onnx__GraphProto *gp) {
    osp_graph_t *g = im->g;
    if (gp->n_sparse_initializer)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "sparse initializers are not supported");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !tp->name[0])
            return osp_err_set(im->err, OSP_EFORMAT,
                               "initializer %zu has no name", i);
        int rc = add_const_tensor(im, tp->name, tp);
        if (rc)
            return osp_err_prefix(im->err, "initializer %zu", i);
    }
    g->inputs = calloc(gp->n_input ? gp->n_input : 1, sizeof(int));
    g->outputs = calloc(gp->n_output ? gp->n_output : 1, sizeof(int));
    if (!g->inputs || !g->outputs)
        return osp_err_set(im->err, OSP_ENOMEM, "graph");
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !vi->name[0])
            return osp_err_set(im->err, OSP_EFORMAT, "graph input %zu has no "
                               "name", i);
        /* Before IR v4, initializers are also listed as inputs: they are
         * constants (overridable inputs are not supported). */
        if (osp_graph_find_value(g, vi->name) >= 0)
            continue;
        osp_dtype_t dt;
        int rank;
        int64_t dims[OSP_MAX_RANK];
        TRY(value_info(im, vi, &dt, &rank, dims));
        if (rank < 0)
            return osp_err_set(im->err, OSP_EUNSUPPORTED,
                               "graph input '%s' has no shape", vi->name);
        int v = osp_graph_add_value(g, vi->name, dt, rank, dims);
        if (v < 0)
            return osp_err_set(im->err, v, "graph input '%s'", vi->name);
        g->values[v].is_input = true;
        g->inputs[g->n_inputs++] = v;
    }
    if (g->n_inputs == 0)
        return osp_err_set(im->err, OSP_EUNSUPPORTED,
                           "graphs without runtime inputs (constant models) "
                           "are not supported");
    for (size_t i = 0; i < gp->n_node; i++) {
        im->np = gp->node[i];
        snprintf(im->what, sizeof im->what, "node %zu '%.64s' (%.48s)", i,
                 im->np->name ? im->np->name : "",
                 im->np->op_type ? im->np->op_type : "?");
        TRY(import_node(im));
    }
    im->np = NULL;
    if (gp->n_output == 0)
        return osp_err_set(im->err, OSP_EFORMAT, "graph has no outputs");
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        int v = vi->name ? osp_graph_find_value(g, vi->name) : -1;
        if (v < 0)
            return osp_err_set(im->err, OSP_EFORMAT,
                               "graph output '%s' is not produced by any node",
                               vi->name ? vi->name : "");
        osp_dtype_t dt;
        int rank;
        int64_t dims[OSP_MAX_RANK];
        TRY(value_info(im, vi, &dt, &rank, dims));
        osp_value_t *val = &g->values[v];
        if (val->dtype == OSP_DT_UNDEF)
            val->dtype = dt;
        /* The declared shape (symbolic dims as -1) describes the output to
         * callers before any plan exists; shape inference replaces it with
         * concrete dims per plan. */
        if (val->rank < 0 && rank >= 0 && !osp_value_is_const(val)) {
            val->rank = rank;
            memcpy(val->dims, dims, sizeof(int64_t) * (size_t)rank);
        }
        val->is_output = true;
        g->outputs[g->n_outputs++] = v;
    }
    return 0;
}

osp_graph_t *osp_onnx_import(const void *buf, size_t len, osp_err_t *err) {
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp) {
        osp_err_set(err, OSP_EFORMAT,
                    "not a valid ONNX model (protobuf decoding failed: the "
                    "file is truncated, corrupt or not ONNX)");
        return NULL;
    }
    imp_t im = {.err = err};
    int rc = 0;
    if (!mp->graph) {
        rc = osp_err_set(err, OSP_EFORMAT, "ONNX model has no graph");
        goto out;
    }
    im.opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        const char *d = o->domain ? o->domain : "";
        if (!*d || !strcmp(d, "ai.onnx"))
            im.opset = o->version;
    }
    if (im.opset < 0 && mp->n_opset_import == 0)
        im.opset = 1; /* IR v2 models without opset_import mean opset 1 */
    if (im.opset < OSP_ONNX_OPSET_MIN || im.opset > OSP_ONNX_OPSET_MAX) {
        rc = osp_err_set(err, OSP_EUNSUPPORTED,
                         "ONNX opset %lld is not supported (supported: %d..%d)",
                         (long long)im.opset, OSP_ONNX_OPSET_MIN,
                         OSP_ONNX_OPSET_MAX);
        goto out;
    }
    im.g = osp_graph_create();
    if (!im.g) {
        rc = osp_err_set(err, OSP_ENOMEM, "graph");
        goto out;
    }
    im.g->opset = im.opset;
    im.g->name = strdup(mp->graph->name ? mp->graph->name : "");
    char prod[128];
    snprintf(prod, sizeof prod, "%.60s %.60s",
             mp->producer_name ? mp->producer_name : "",
             mp->producer_version ? mp->producer_version : "");
    im.g->producer = strdup(prod);
    rc = import_graph(&im, mp->graph);
out:
    onnx__model_proto__free_unpacked(mp, NULL);
    if (rc) {
        osp_graph_destroy(im.g);
        return NULL;
    }
    return im.g;
}
