/* q8_lut.c — quantized elementwise nodes with 8-bit inputs and output
 * (ADD, MUL, requantizing QUANTIZE, RELU/CLIP, LOGISTIC, HARD_SWISH) as
 * table lookups.
 *
 * Why: an elementwise op on 8-bit inputs has at most 256 (one input) or
 * 65536 (two inputs) distinct argument tuples. Evaluating the reference
 * kernel — the exact TFLite arithmetic of ref_q8arith.c, or the reference
 * fallback for ops without an integer kernel — once over all of them at plan
 * build gives a table that reproduces it bit for bit, and the run is one
 * load per element instead of TFLite's fixed-point sequence (the integer
 * ADD costs ~10 ns per element, the lookup ~1). Being elementwise, the step
 * reads whatever dense layout the producer wrote (NHWC from the int8
 * convolutions), so no reorder is needed around MobileNetV2's residual
 * ADDs. Tables are 64 KiB per binary node, owned by the plan step. */
#include <stdlib.h>
#include <string.h>

#include "engine/ops/kernels.h"
#include "engine/plan/plan_int.h"

static bool is_q8(const osp_value_t *v) {
    return (v->dtype == OSP_DT_U8 || v->dtype == OSP_DT_S8) && v->quant &&
           v->quant->count == 1;
}

/* Elementwise ops whose output depends on each element alone. */
static bool lut_op(osp_op_t op, int n_in) {
    switch (op) {
    case OSP_OP_ADD:
    case OSP_OP_MUL:
    case OSP_OP_SUB:
        return n_in == 2;
    case OSP_OP_QUANTIZE:
    case OSP_OP_RELU:
    case OSP_OP_CLIP:
    case OSP_OP_SIGMOID:
    case OSP_OP_HARD_SWISH:
    case OSP_OP_HARD_SIGMOID:
        return n_in == 1;
    default:
        return false;
    }
}

/* Evaluates node n over every 8-bit argument tuple with the reference
 * kernels; returns the malloc'd table or NULL (err set) on failure. */
static uint8_t *build_table(osp__plan_ctx_t *c, const osp_node_t *n, int n_in) {
    size_t cnt = n_in == 1 ? 256 : 65536;
    uint8_t *a = malloc(cnt), *b = n_in == 2 ? malloc(cnt) : NULL;
    uint8_t *t = malloc(cnt);
    if (!a || !t || (n_in == 2 && !b)) {
        osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cnt; i++) {
        a[i] = (uint8_t)(i >> (n_in == 2 ? 8 : 0));
        if (b)
            b[i] = (uint8_t)i;
    }
    osp_tensor_t in[2], out;
    memset(in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    for (int k = 0; k < n_in; k++) {
        const osp_value_t *v = &c->g->values[n->in[k]];
        in[k].name = v->name;
        in[k].dtype = v->dtype;
        in[k].rank = 1;
        in[k].dims[0] = (int64_t)cnt;
        in[k].data = k ? b : a;
    }
    const osp_value_t *y = &c->g->values[n->out[0]];
    out.name = y->name;
    out.dtype = y->dtype;
    out.rank = 1;
    out.dims[0] = (int64_t)cnt;
    out.data = t;
    if (osp_ref_run_node(c->g, n, in, &out, c->err) < 0)
        goto fail;
    free(a);
    free(b);
    return t;
fail:
    free(a);
    free(b);
    free(t);
    return NULL;
}

int osp__q8_lut(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    /* QUANTIZE/CLIP may carry constant extra inputs in ONNX; TFLite's do
     * not. Only runtime 8-bit tensors of the output's shape qualify. */
    int n_in = n->n_in;
    /* post-ops: only an ADD's fused RELU/CLIP (the reference kernel
     * building the table applies it) */
    if (n->n_out != 1 || (n->n_post && n->op != OSP_OP_ADD) ||
        !lut_op(n->op, n_in) || n->out[0] < 0)
        return OSP_EUNSUPPORTED;
    const osp_value_t *Y = &g->values[n->out[0]];
    if (!is_q8(Y))
        return OSP_EUNSUPPORTED;
    for (int k = 0; k < n_in; k++) {
        if (n->in[k] < 0)
            return OSP_EUNSUPPORTED;
        const osp_value_t *X = &g->values[n->in[k]];
        if (!is_q8(X) || osp_value_is_const(X) || !osp_value_same_dims(X, Y))
            return OSP_EUNSUPPORTED;
    }
    /* The layout: input 0's as its producer wrote it if dense, else plain. */
    dnnl_memory_desc_t md;
    size_t count = osp_value_numel(Y);
    if (osp__value_md(c, n->in[0], &md) < 0 ||
        dnnl_memory_desc_get_size(md) != count) {
        osp_err_clear(c->err);
        if (!osp__md_plain(c, &md, Y->rank, Y->dims, osp__dnnl_dt(Y->dtype)))
            return OSP_EUNSUPPORTED;
    }
    /* Output dtype may differ from the input's (QUANTIZE u8 -> s8): same
     * layout, its own data type. */
    dnnl_memory_desc_t ymd;
    if (!osp__md_retype(c, &ymd, md, osp__dnnl_dt(Y->dtype)))
        return OSP_EUNSUPPORTED;
    uint8_t *lut = build_table(c, n, n_in);
    if (!lut)
        return osp_err_prefix(c->err, "node %s: lookup table", n->name);
    int ib[2];
    for (int k = 0; k < n_in; k++) {
        dnnl_memory_desc_t xmd;
        if (!osp__md_retype(c, &xmd, md, osp__dnnl_dt(g->values[n->in[k]].dtype))) {
            free(lut);
            return OSP_EUNSUPPORTED;
        }
        ib[k] = osp__buf_as(c, n->in[k], &xmd);
        if (ib[k] < 0) {
            free(lut);
            return ib[k];
        }
    }
    int ob = osp__buf_new(c, &ymd, n->out[0]);
    if (ob < 0) {
        free(lut);
        return ob;
    }
    int rc = osp__step_lut(c, ni, n_in, ib, ob, lut, count);
    if (rc < 0)
        return rc;
    osp__bind_value(c, n->out[0], ob);
    return 0;
}

/* TRANSPOSE of plain data as a strided view (no copy): the TFLite importer
 * puts NHWC → NCHW transposes at the graph input, and the int8
 * convolutions want NHWC bytes, i.e. exactly the untransposed input — with
 * a view the transpose, the reorder back and a copy disappear; consumers
 * that need plain NCHW get it from one reorder. Graph outputs keep a real
 * transpose (outputs are read as plain memory). Only in quantized graphs:
 * float graphs keep their transposes as steps (the fp32 planner's
 * business). */
int osp__transpose_view(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (n->n_out != 1 || n->n_in < 1 || n->in[0] < 0 || n->out[0] < 0)
        return OSP_EUNSUPPORTED;
    const osp_value_t *X = &g->values[n->in[0]], *Y = &g->values[n->out[0]];
    int r = X->rank;
    if (!g->quantized || Y->is_output || osp_value_is_const(X) || r < 1 ||
        Y->rank != r ||
        X->dtype != Y->dtype || osp__dnnl_dt(X->dtype) == dnnl_data_type_undef)
        return OSP_EUNSUPPORTED;
    int64_t perm[OSP_MAX_RANK];
    bool seen[OSP_MAX_RANK] = {false};
    if (n->p.axes.has_axes && n->p.axes.n_axes != r)
        return OSP_EUNSUPPORTED;
    for (int i = 0; i < r; i++) {
        int64_t a = n->p.axes.has_axes ? n->p.axes.axes[i] : r - 1 - i;
        a = a < 0 ? a + r : a;
        if (a < 0 || a >= r || seen[a])
            return OSP_EUNSUPPORTED;
        seen[a] = true;
        perm[i] = a;
    }
    /* Only plain input buffers (graph inputs, reference outputs). */
    dnnl_memory_desc_t xmd, plain;
    if (osp__value_md(c, n->in[0], &xmd) < 0 ||
        !osp__md_plain(c, &plain, r, X->dims, osp__dnnl_dt(X->dtype)) ||
        !dnnl_memory_desc_equal(xmd, plain)) {
        osp_err_clear(c->err);
        return OSP_EUNSUPPORTED;
    }
    int64_t yd[OSP_MAX_RANK], ys[OSP_MAX_RANK];
    int64_t istride[OSP_MAX_RANK], s = 1;
    for (int i = r - 1; i >= 0; i--) {
        istride[i] = s;
        s *= X->dims[i];
    }
    for (int i = 0; i < r; i++) {
        yd[i] = X->dims[perm[i]];
        ys[i] = istride[perm[i]];
        if (yd[i] != Y->dims[i])
            return OSP_EUNSUPPORTED;
    }
    dnnl_memory_desc_t ymd;
    if (!osp__md_strides(c, &ymd, r, yd, osp__dnnl_dt(X->dtype), ys))
        return OSP_EUNSUPPORTED;
    int b = osp__buf_plain(c, n->in[0]);
    if (b < 0)
        return b;
    int v = osp__buf_view(c, b, n->out[0], &ymd);
    if (v < 0)
        return v;
    osp__bind_value(c, n->out[0], v);
    return 0;
}
