/* ir.h — osprey's graph IR (private to src/engine).
 *
 * Importers (ONNX, TFLite) build an osp_graph_t; passes rewrite it in place;
 * the planner specialises it to concrete shapes and the executor runs it.
 *
 * Semantics are ONNX-like and NCHW: a conv's input is [N,C,H,W] and weights
 * are [O, I/group, kH, kW]. Importers of NHWC formats insert Transpose nodes
 * and transpose constant weights so that the IR has one meaning.
 *
 * Values (tensors) and nodes live in growable arrays and are referred to by
 * index (int). A value index of -1 means "optional input not given". Nodes are
 * kept in topological order: importers append in order (ONNX and TFLite both
 * require it) and passes only ever remove nodes or rewrite them in place.
 * A removed node has op == OSP_OP_NONE until osp_graph_compact() runs. */
#ifndef OSPREY_ENGINE_IR_H
#define OSPREY_ENGINE_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "osprey/common.h"
#include "osprey/engine.h"

/* ---- ops ------------------------------------------------------------- */

#define OSP_OP_MAP(X)                                                          \
    X(NONE)                                                                    \
    X(CONV)                                                                    \
    X(BATCHNORM)                                                               \
    X(RELU)                                                                    \
    X(LEAKY_RELU)                                                              \
    X(CLIP)                                                                    \
    X(SIGMOID)                                                                 \
    X(HARD_SIGMOID)                                                            \
    X(HARD_SWISH)                                                              \
    X(ADD)                                                                     \
    X(SUB)                                                                     \
    X(MUL)                                                                     \
    X(DIV)                                                                     \
    X(MAXPOOL)                                                                 \
    X(AVGPOOL)                                                                 \
    X(GLOBAL_AVGPOOL)                                                          \
    X(GLOBAL_MAXPOOL)                                                          \
    X(GEMM)                                                                    \
    X(MATMUL)                                                                  \
    X(FLATTEN)                                                                 \
    X(RESHAPE)                                                                 \
    X(SQUEEZE)                                                                 \
    X(UNSQUEEZE)                                                               \
    X(CONCAT)                                                                  \
    X(SOFTMAX)                                                                 \
    X(IDENTITY)                                                                \
    X(SHAPE)                                                                   \
    X(GATHER)                                                                  \
    X(TRANSPOSE)                                                               \
    X(PAD)                                                                     \
    X(REDUCE_MEAN)                                                             \
    X(LRN)                                                                     \
    X(QUANTIZE)                                                                \
    X(DEQUANTIZE)                                                              \
    X(CAST)

typedef enum osp_op_e {
#define OSP__OP_ENUM(n) OSP_OP_##n,
    OSP_OP_MAP(OSP__OP_ENUM)
#undef OSP__OP_ENUM
        OSP_OP_COUNT
} osp_op_t;
const char *osp_op_name(osp_op_t op); /* "CONV", ... */

/* Activation kinds usable standalone and as fused post-ops. */
typedef enum osp_act_e {
    OSP_ACT_NONE = 0,
    OSP_ACT_RELU,       /* max(x, 0) */
    OSP_ACT_LEAKY_RELU, /* x >= 0 ? x : alpha*x */
    OSP_ACT_CLIP,       /* min(max(x, alpha), beta) */
    OSP_ACT_SIGMOID,
    OSP_ACT_HARD_SIGMOID, /* max(0, min(1, alpha*x + beta)) */
    OSP_ACT_HARD_SWISH,   /* x * max(0, min(1, x/6 + 1/2)) */
    OSP_ACT_COUNT
} osp_act_t;
const char *osp_act_name(osp_act_t a);

#define OSP_MAX_SPATIAL 3

typedef enum osp_auto_pad_e {
    OSP_PAD_EXPLICIT = 0, /* NOTSET: use pad_begin/pad_end */
    OSP_PAD_SAME_UPPER,   /* extra padding at the end (TF "SAME") */
    OSP_PAD_SAME_LOWER,
    OSP_PAD_VALID,
} osp_auto_pad_t;

/* Conv and pools share the window description. n_spatial = rank - 2. Values
 * for unused trailing spatial dims are 0. kernel[] of a conv is taken from
 * the weight shape when not given (0). */
typedef struct osp_window_s {
    int n_spatial;
    int64_t kernel[OSP_MAX_SPATIAL];
    int64_t stride[OSP_MAX_SPATIAL];    /* default 1 */
    int64_t dilation[OSP_MAX_SPATIAL];  /* default 1 */
    int64_t pad_begin[OSP_MAX_SPATIAL]; /* default 0 */
    int64_t pad_end[OSP_MAX_SPATIAL];
    osp_auto_pad_t auto_pad;
} osp_window_t;

/* Post-ops fused into CONV/GEMM/MATMUL by passes, applied in order. */
typedef enum osp_post_kind_e {
    OSP_POST_ACT = 1, /* act(x, alpha, beta) */
    OSP_POST_SUM,     /* x + value[sum_value] (same shape; residual add) */
} osp_post_kind_t;

typedef struct osp_post_op_s {
    osp_post_kind_t kind;
    osp_act_t act;
    float alpha, beta;
    int sum_value; /* value index for OSP_POST_SUM; the value is also listed
                      as the node's last input so liveness sees it */
} osp_post_op_t;

#define OSP_MAX_POST_OPS 4

typedef struct osp_conv_params_s {
    osp_window_t win;
    int64_t group;
} osp_conv_params_t;

typedef struct osp_pool_params_s {
    osp_window_t win;
    bool ceil_mode;
    bool count_include_pad; /* AVGPOOL */
} osp_pool_params_t;

typedef struct osp_act_params_s {
    float alpha, beta; /* LEAKY_RELU alpha; CLIP min/max (alpha/beta; -inf/
                          +inf if absent and no min/max input);
                          HARD_SIGMOID alpha/beta */
} osp_act_params_t;

typedef struct osp_gemm_params_s {
    float alpha, beta;
    bool trans_a, trans_b;
} osp_gemm_params_t;

/* FLATTEN, CONCAT, GATHER, SOFTMAX (ONNX opset >= 13 semantics: one axis;
 * `legacy` = opset < 13: flatten to 2D at axis, softmax over the rest). */
typedef struct osp_axis_params_s {
    int64_t axis;
    bool legacy;
} osp_axis_params_t;

/* SQUEEZE, UNSQUEEZE, REDUCE_MEAN, TRANSPOSE (perm in axes), RESHAPE. If
 * has_axes is false the axes come from input 1 (opset >= 13 style) or take
 * the op's default (all axes / reversed perm). */
typedef struct osp_axes_params_s {
    int n_axes;
    int64_t axes[OSP_MAX_RANK];
    bool has_axes;
    bool keepdims;  /* REDUCE_MEAN, default true */
    bool allowzero; /* RESHAPE */
    bool noop_with_empty_axes; /* REDUCE_MEAN opset 18; kept for clarity */
} osp_axes_params_t;

typedef enum osp_pad_mode_e {
    OSP_PADMODE_CONSTANT = 0,
    OSP_PADMODE_REFLECT,
    OSP_PADMODE_EDGE,
} osp_pad_mode_t;

/* PAD: opset < 11 has pads/value as attributes (has_pads); later opsets take
 * them from inputs 1 and 2. pads = [b0, b1, ..., e0, e1, ...]. */
typedef struct osp_pad_params_s {
    osp_pad_mode_t mode;
    bool has_pads;
    int n_pads;
    int64_t pads[2 * OSP_MAX_RANK];
    float value;
} osp_pad_params_t;

typedef struct osp_lrn_params_s {
    int64_t size;
    float alpha, beta, bias;
} osp_lrn_params_t;

typedef struct osp_bn_params_s {
    float epsilon;
} osp_bn_params_t;

/* CAST / QUANTIZE / DEQUANTIZE target type. Quantization parameters live on
 * the values (osp_quant_t) for TFLite, or in inputs 1/2 for ONNX QDQ. */
typedef struct osp_cast_params_s {
    osp_dtype_t to;
    int64_t axis; /* per-axis (de)quantize */
} osp_cast_params_t;

typedef union osp_op_params_u {
    osp_conv_params_t conv;
    osp_pool_params_t pool;
    osp_act_params_t act;
    osp_gemm_params_t gemm;
    osp_axis_params_t axis;
    osp_axes_params_t axes;
    osp_pad_params_t pad;
    osp_lrn_params_t lrn;
    osp_bn_params_t bn;
    osp_cast_params_t cast;
} osp_op_params_t;

/* ---- values ---------------------------------------------------------- */

/* Affine quantization: real = scale * (q - zero_point). Per-tensor when
 * axis < 0 (count == 1), else per-channel along `axis`. */
typedef struct osp_quant_s {
    int axis;
    int count;
    float *scale;        /* count entries, owned by the value */
    int32_t *zero_point; /* count entries, owned by the value */
} osp_quant_t;

typedef struct osp_value_s {
    char *name;        /* owned; unique within the graph */
    osp_dtype_t dtype; /* OSP_DT_UNDEF until known */
    int rank;          /* -1 = unknown until shape inference */
    int64_t dims[OSP_MAX_RANK]; /* -1 = dynamic */
    osp_quant_t *quant;         /* NULL unless quantized; owned */
    void *data;        /* non-NULL for constants; owned (malloc) unless
                          data_borrowed (plans share the load-time weights) */
    size_t data_bytes;
    bool data_borrowed;
    int producer;      /* node index, or -1 for graph inputs and constants */
    bool is_input;     /* graph input (fed at run time) */
    bool is_output;    /* graph output */
} osp_value_t;

/* ---- nodes ----------------------------------------------------------- */

typedef struct osp_node_s {
    osp_op_t op;
    char *name;  /* owned; from the model, or synthesised ("Conv_12") */
    int n_in, n_out;
    int *in;     /* owned array of value indices (-1 = omitted optional) */
    int *out;    /* owned array of value indices */
    osp_op_params_t p;
    int n_post;
    osp_post_op_t post[OSP_MAX_POST_OPS];
} osp_node_t;

/* ---- graph ----------------------------------------------------------- */

typedef struct osp_graph_s {
    osp_value_t *values;
    int n_values, cap_values;
    osp_node_t *nodes;
    int n_nodes, cap_nodes;
    int *inputs;  /* value indices of runtime inputs, in declared order */
    int n_inputs;
    int *outputs; /* value indices of outputs, in declared order */
    int n_outputs;
    char *name;       /* owned; model/graph name */
    char *producer;   /* owned; "pytorch 2.1" etc., for --verbose */
    int64_t opset;    /* ONNX default-domain opset; 0 for other formats */
    bool quantized;   /* importer saw quantized tensors (TFLite/QDQ) */
    bool ptq;         /* quantized by osprey (pass_quantize.c): no external
                         reference to be bit-exact with */
    bool q8_sum;      /* set by the planner: its int8 convs can take a
                         residual SUM post-op, so pass_residual.c may fuse
                         quantized Adds (only in ptq graphs) */
} osp_graph_t;

osp_graph_t *osp_graph_create(void);
void osp_graph_destroy(osp_graph_t *g);

/* Adds a value; name is copied (NULL → synthesised "v<idx>"). Returns the
 * index or a negative OSP_E* code. */
int osp_graph_add_value(osp_graph_t *g, const char *name, osp_dtype_t dt,
                        int rank, const int64_t *dims);
/* Looks a value up by name; -1 if absent. Linear in n_values; importers that
 * need speed keep their own hash. */
int osp_graph_find_value(const osp_graph_t *g, const char *name);
/* Makes value v a constant holding `bytes` of data; takes ownership of data
 * (must come from malloc). */
void osp_graph_set_const(osp_graph_t *g, int v, void *data, size_t bytes);
/* Adds a node with copies of the in/out arrays; sets producer of outputs.
 * Returns the node index or a negative code. Params are zeroed; the caller
 * fills g->nodes[idx].p afterwards. */
int osp_graph_add_node(osp_graph_t *g, osp_op_t op, const char *name,
                       const int *in, int n_in, const int *out, int n_out);
/* Deep-copies the structure of g; constant data is shared (the copy's values
 * are data_borrowed), so the original must outlive the copy. Used by the
 * planner to specialise a graph per input shape. NULL on ENOMEM. */
osp_graph_t *osp_graph_clone(const osp_graph_t *g);
/* Marks node n removed (op = NONE). Does not touch values. */
void osp_graph_remove_node(osp_graph_t *g, int n);
/* Drops removed nodes and values no longer referenced by any node, input or
 * output; renumbers indices. */
int osp_graph_compact(osp_graph_t *g);
/* Number of live nodes that read value v (each occurrence counts), plus one
 * if v is a graph output. */
int osp_graph_use_count(const osp_graph_t *g, int v);
/* Replaces every read of value `from` by `to` in live nodes and outputs. */
void osp_graph_replace_uses(osp_graph_t *g, int from, int to);
/* Sets the quantization of value v (copies arrays). */
int osp_graph_set_quant(osp_graph_t *g, int v, int axis, int count,
                        const float *scale, const int32_t *zero_point);

static inline bool osp_value_is_const(const osp_value_t *v) {
    return v->data != NULL;
}
size_t osp_value_numel(const osp_value_t *v); /* 0 if rank unknown/dynamic */
/* Same rank and dims: of two values, or (osp__ir_same_dims) of any two
 * shapes, e.g. tensors'. */
static inline bool osp__ir_same_dims(int rank_a, const int64_t *a, int rank_b,
                                     const int64_t *b) {
    if (rank_a != rank_b)
        return false;
    for (int i = 0; i < rank_a; i++)
        if (a[i] != b[i])
            return false;
    return true;
}
static inline bool osp_value_same_dims(const osp_value_t *a,
                                       const osp_value_t *b) {
    return osp__ir_same_dims(a->rank, a->dims, b->rank, b->dims);
}

/* Dumps the graph in a readable form (one node per line) to a FILE*. */
void osp_graph_dump(const osp_graph_t *g, FILE *f);

#endif
