/* pass_dequant.c — runs a quantized (TFLite) model in floating point: the
 * load-time rewrite behind `--precision fp32|bf16` on quantized models.
 *
 * Users trade TFLite's exact integer arithmetic for the float path's speed
 * (bf16) or for float accuracy: every quantized constant (weights, int32
 * biases) becomes float data real = scale · (q − zero_point), per tensor or
 * per channel; every quantized activation becomes an f32 value;
 * requantizing QUANTIZE and the output DEQUANTIZE nodes become IDENTITY
 * (removed by the identity pass that runs next); fused RELU/RELU6 clamps
 * already carry real bounds. The graph inputs keep their dtype and meaning
 * (the caller still feeds uint8/int8 image bytes): a DEQUANTIZE node is put
 * in front of each quantized input, and the outputs were float already (the
 * importer dequantizes them). Quantized PAD pads with the zero point, i.e.
 * real 0, which is the float PAD's value. What changes is only rounding: no
 * requantization between layers (docs/engine.md, "fp32/bf16 on quantized
 * models"). */
#include <stdlib.h>
#include <string.h>

#include "engine/passes/pass_int.h"
#include "engine/passes/passes.h"

/* Index of the quantization parameter for flat element i of value v. */
static int q_index(const osp_value_t *v, const osp_quant_t *q, size_t i) {
    if (q->count == 1 || q->axis < 0 || q->axis >= v->rank)
        return 0;
    size_t inner = 1;
    for (int d = q->axis + 1; d < v->rank; d++)
        inner *= (size_t)v->dims[d];
    return (int)((i / inner) % (size_t)v->dims[q->axis]);
}

static int dequant_const(osp_graph_t *g, int vi, osp_err_t *err) {
    osp_value_t *v = &g->values[vi];
    const osp_quant_t *q = v->quant;
    size_t n = osp_value_numel(v);
    if (v->rank < 0 || n * osp_dtype_size(v->dtype) > v->data_bytes)
        return osp_err_set(err, OSP_EFORMAT,
                           "dequantize: constant %s has no usable shape",
                           v->name);
    if (q->count > 1 && (q->axis < 0 || q->axis >= v->rank ||
                         v->dims[q->axis] != q->count))
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "dequantize: constant %s: %d scales along axis %d",
                           v->name, q->count, q->axis);
    float *f = malloc(sizeof(float) * (n ? n : 1));
    if (!f)
        return osp_err_set(err, OSP_ENOMEM, "dequantize: out of memory");
    for (size_t i = 0; i < n; i++) {
        int k = q_index(v, q, i);
        int32_t x;
        switch (v->dtype) {
        case OSP_DT_U8: x = ((const uint8_t *)v->data)[i]; break;
        case OSP_DT_S8: x = ((const int8_t *)v->data)[i]; break;
        default: x = ((const int32_t *)v->data)[i]; break;
        }
        f[i] = (float)(((double)x - q->zero_point[k]) * (double)q->scale[k]);
    }
    if (!v->data_borrowed)
        free(v->data);
    v->data = NULL;
    v->data_borrowed = false;
    v->dtype = OSP_DT_F32;
    osp_graph_set_const(g, vi, f, n * sizeof(float));
    return 0;
}

static void drop_quant(osp_value_t *v) {
    if (!v->quant)
        return;
    free(v->quant->scale);
    free(v->quant->zero_point);
    free(v->quant);
    v->quant = NULL;
}

static bool q_dtype(osp_dtype_t dt) {
    return dt == OSP_DT_U8 || dt == OSP_DT_S8 || dt == OSP_DT_S32;
}

/* Moves the last node to the front (its inputs are graph inputs only), so
 * the node list stays topologically ordered. */
static void move_last_to_front(osp_graph_t *g) {
    int last = g->n_nodes - 1;
    osp_node_t n = g->nodes[last];
    memmove(g->nodes + 1, g->nodes, sizeof(osp_node_t) * (size_t)last);
    g->nodes[0] = n;
    for (int i = 0; i < g->n_values; i++) {
        int p = g->values[i].producer;
        if (p == last)
            g->values[i].producer = 0;
        else if (p >= 0)
            g->values[i].producer = p + 1;
    }
}

int osp__pass_dequantize(osp_graph_t *g, osp_err_t *err) {
    /* Graph inputs first: a float twin that every reader switches to. */
    for (int k = 0; k < g->n_inputs; k++) {
        int in = g->inputs[k];
        osp_value_t *v = &g->values[in];
        if (!v->quant || !q_dtype(v->dtype))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s/dequantized", v->name);
        int f = osp_graph_add_value(g, name, OSP_DT_F32, v->rank, v->dims);
        if (f < 0)
            return osp_err_set(err, f, "dequantize: out of memory");
        osp_graph_replace_uses(g, in, f);
        int ni = osp_graph_add_node(g, OSP_OP_DEQUANTIZE, name, &in, 1, &f, 1);
        if (ni < 0)
            return osp_err_set(err, ni, "dequantize: out of memory");
        g->nodes[ni].p.cast.to = OSP_DT_F32;
        g->nodes[ni].p.cast.axis = 1;
        move_last_to_front(g);
    }
    for (int i = 0; i < g->n_values; i++) {
        osp_value_t *v = &g->values[i];
        if (v->is_input || !v->quant)
            continue;
        if (!q_dtype(v->dtype)) {
            drop_quant(v); /* float values with stale parameters */
            continue;
        }
        if (osp_value_is_const(v)) {
            int rc = dequant_const(g, i, err);
            if (rc < 0)
                return rc;
        } else {
            v->dtype = OSP_DT_F32;
        }
        drop_quant(&g->values[i]);
    }
    /* Requantization is meaningless in float: QUANTIZE f32→f32 and
     * DEQUANTIZE f32→f32 (but not the input's) are identities. */
    for (int ni = 0; ni < g->n_nodes; ni++) {
        osp_node_t *n = &g->nodes[ni];
        if ((n->op != OSP_OP_QUANTIZE && n->op != OSP_OP_DEQUANTIZE) ||
            n->n_in < 1 || n->n_out != 1 || n->in[0] < 0)
            continue;
        if (g->values[n->in[0]].dtype == OSP_DT_F32 &&
            g->values[n->out[0]].dtype == OSP_DT_F32 &&
            (n->n_in == 1 || n->in[1] < 0)) {
            n->op = OSP_OP_IDENTITY;
            n->n_in = 1;
        }
    }
    g->quantized = false;
    return 0;
}
