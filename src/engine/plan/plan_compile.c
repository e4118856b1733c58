/* plan_compile.c — compiles one node of the specialised graph into steps:
 * an exact 8-bit table, a oneDNN primitive (dnnl/), osprey's own int8
 * kernels (int8/), a view for reshape-like ops, or, when none of those
 * applies, a reference-kernel step over plain buffers; and the plan-made
 * step kinds (memcpy concatenation, lookup table, loop) those use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan/plan_int.h"

/* ---- compile --------------------------------------------------------- */

static bool node_is_float(const osp_graph_t *g, const osp_node_t *n) {
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] >= 0 && g->values[n->in[i]].dtype != OSP_DT_F32)
            return false;
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i] >= 0 && g->values[n->out[i]].dtype != OSP_DT_F32)
            return false;
    return true;
}

static int compile_ref(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    int *ib = calloc((size_t)(n->n_in ? n->n_in : 1), sizeof(int));
    int *ob = calloc((size_t)(n->n_out ? n->n_out : 1), sizeof(int));
    osp_tensor_t *ti = calloc((size_t)(n->n_in ? n->n_in : 1), sizeof *ti);
    osp_tensor_t *to = calloc((size_t)(n->n_out ? n->n_out : 1), sizeof *to);
    int rc = OSP_ENOMEM;
    if (!ib || !ob || !ti || !to) {
        osp_err_set(c->err, rc, "plan: out of memory");
        goto fail;
    }
    for (int i = 0; i < n->n_in; i++) {
        ib[i] = -1;
        if (n->in[i] < 0)
            continue;
        rc = osp__buf_plain(c, n->in[i]);
        if (rc < 0)
            goto fail;
        ib[i] = rc;
    }
    for (int i = 0; i < n->n_out; i++) {
        ob[i] = -1;
        if (n->out[i] < 0)
            continue;
        rc = osp__plan_buf_new_plain(c, n->out[i]);
        if (rc < 0)
            goto fail;
        ob[i] = rc;
        osp__bind_value(c, n->out[i], rc);
    }
    rc = osp__plan_step_add(c, OSP_STEP_REF, ni);
    if (rc < 0)
        goto fail;
    osp__plan_step_t *s = &c->p->steps[rc];
    snprintf(s->impl, sizeof s->impl, "ref");
    osp__post_note(n, s->note, sizeof s->note);
    s->n_in = n->n_in;
    s->n_out = n->n_out;
    s->in_buf = ib;
    s->out_buf = ob;
    s->tin = ti;
    s->tout = to;
    for (int i = 0; i < n->n_in; i++)
        osp__plan_buf_read(c->p, ib[i], rc);
    for (int i = 0; i < n->n_out; i++)
        if (ob[i] >= 0)
            osp__plan_buf_write(c->p, ob[i], rc);
    return 0;
fail:
    free(ib);
    free(ob);
    free(ti);
    free(to);
    return rc;
}

/* Appends a step of kind reading buffers in_buf[0..n_in) and writing
 * out_buf (one output), with its tensor views; the caller fills the rest of
 * the step. Returns its index, or an error. */
static int step_n_to_1(osp__plan_ctx_t *c, osp__plan_step_kind_t kind, int node,
                       int n_in, const int *in_buf, int out_buf) {
    size_t k = (size_t)(n_in > 0 ? n_in : 1);
    int *ib = malloc(sizeof(int) * k);
    int *ob = malloc(sizeof(int));
    osp_tensor_t *ti = calloc(k, sizeof *ti);
    osp_tensor_t *to = calloc(1, sizeof *to);
    int si = ib && ob && ti && to
                 ? osp__plan_step_add(c, kind, node)
                 : osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    if (si < 0) {
        free(ib);
        free(ob);
        free(ti);
        free(to);
        return si;
    }
    osp__plan_step_t *s = &c->p->steps[si];
    if (n_in > 0)
        memcpy(ib, in_buf, sizeof(int) * (size_t)n_in);
    ob[0] = out_buf;
    s->n_in = n_in;
    s->n_out = 1;
    s->in_buf = ib;
    s->out_buf = ob;
    s->tin = ti;
    s->tout = to;
    for (int i = 0; i < n_in; i++)
        osp__plan_buf_read(c->p, ib[i], si);
    osp__plan_buf_write(c->p, out_buf, si);
    return si;
}

int osp__step_concat(osp__plan_ctx_t *c, int node, int n_in, const int *in_buf,
                     int out_buf, size_t outer, const size_t *inner) {
    size_t *in_b = malloc(sizeof(size_t) * (size_t)n_in);
    if (!in_b)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    int si = step_n_to_1(c, OSP_STEP_CONCAT, node, n_in, in_buf, out_buf);
    if (si < 0) {
        free(in_b);
        return si;
    }
    osp__plan_step_t *s = &c->p->steps[si];
    memcpy(in_b, inner, sizeof(size_t) * (size_t)n_in);
    s->copy_outer = outer;
    s->copy_inner = in_b;
    snprintf(s->impl, sizeof s->impl, "osprey:memcpy");
    return si;
}

int osp__step_lut(osp__plan_ctx_t *c, int node, int n_in, const int *in_buf,
                  int out_buf, uint8_t *lut, size_t count) {
    if (n_in < 1 || n_in > 2) {
        free(lut);
        return osp_err_set(c->err, OSP_EINTERNAL,
                           "plan: a lookup table takes 1 or 2 inputs, not %d",
                           n_in);
    }
    int si = step_n_to_1(c, OSP_STEP_LUT, node, n_in, in_buf, out_buf);
    if (si < 0) {
        free(lut);
        return si;
    }
    osp__plan_step_t *s = &c->p->steps[si];
    s->lut = lut;
    s->lut_count = count;
    snprintf(s->impl, sizeof s->impl, "osprey:lut%d", n_in == 1 ? 256 : 65536);
    return si;
}

int osp__step_fn(osp__plan_ctx_t *c, int node, int n_in, const int *in_buf,
                 int out_buf, void (*fn)(const osp__plan_step_t *s), void *ctx,
                 const char *impl, const char *note) {
    int si = step_n_to_1(c, OSP_STEP_FN, node, n_in, in_buf, out_buf);
    if (si < 0) {
        free(ctx);
        return si;
    }
    osp__plan_step_t *s = &c->p->steps[si];
    s->fn = fn;
    s->fn_ctx = ctx;
    snprintf(s->impl, sizeof s->impl, "%s", impl);
    snprintf(s->note, sizeof s->note, "%s", note ? note : "");
    return si;
}

/* Reshape-like ops on plain data are views: no copy, no step. */
static int compile_view(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    int x = n->in[0], y = n->out[0];
    if (n->n_out != 1 || y < 0 || x < 0 ||
        osp_value_numel(&c->g->values[x]) != osp_value_numel(&c->g->values[y]) ||
        c->g->values[x].dtype != c->g->values[y].dtype)
        return OSP_EUNSUPPORTED;
    int b = osp__buf_plain(c, x);
    if (b < 0)
        return b;
    int v = osp__buf_view(c, b, y, NULL);
    if (v < 0)
        return v;
    osp__bind_value(c, y, v);
    return 0;
}

/* Node n reads and writes 8-bit values with one and the same per-tensor
 * quantization. */
static bool q8_same_quant(const osp_graph_t *g, const osp_node_t *n) {
    if (n->n_in < 1 || n->n_out != 1 || n->in[0] < 0 || n->out[0] < 0)
        return false;
    const osp_value_t *x = &g->values[n->in[0]], *y = &g->values[n->out[0]];
    return x->quant && y->quant && x->dtype == y->dtype &&
           (x->dtype == OSP_DT_S8 || x->dtype == OSP_DT_U8) &&
           x->quant->count == 1 && y->quant->count == 1 &&
           x->quant->scale[0] == y->quant->scale[0] &&
           x->quant->zero_point[0] == y->quant->zero_point[0] &&
           x->quant->scale[0] > 0.f;
}

int osp__plan_compile_node(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    int rc = OSP_EUNSUPPORTED;
    bool fl = node_is_float(c->g, n);
    if (!fl) /* exact 8-bit elementwise ops as tables (q8_lut.c) */
        rc = osp__q8_lut(c, ni);
    if (rc == OSP_EUNSUPPORTED) switch (n->op) {
    case OSP_OP_CONV:
        rc = fl ? osp__dnnl_conv(c, ni) : osp__dnnl_q8conv(c, ni);
        if (!fl && rc == OSP_EUNSUPPORTED) /* exact, e.g. uint8 weights */
            rc = osp__q8_f32conv(c, ni);
        break;
    case OSP_OP_MAXPOOL:
        /* 8-bit max pooling with the input's quantization on its output is
         * exact on the raw bytes: the affine map is increasing */
        if (fl || (n->n_post == 0 && q8_same_quant(c->g, n)))
            rc = osp__dnnl_pool(c, ni);
        break;
    case OSP_OP_AVGPOOL:
    case OSP_OP_GLOBAL_AVGPOOL:
    case OSP_OP_GLOBAL_MAXPOOL: if (fl) rc = osp__dnnl_pool(c, ni); break;
    case OSP_OP_GEMM:
        rc = fl ? osp__dnnl_gemm(c, ni) : osp__dnnl_q8gemm(c, ni);
        break;
    case OSP_OP_MATMUL: if (fl) rc = osp__dnnl_matmul(c, ni); break;
    case OSP_OP_RELU:
    case OSP_OP_LEAKY_RELU:
    case OSP_OP_CLIP:
    case OSP_OP_SIGMOID:
    case OSP_OP_HARD_SWISH: if (fl) rc = osp__dnnl_eltwise(c, ni); break;
    case OSP_OP_ADD:
    case OSP_OP_SUB:
    case OSP_OP_MUL:
    case OSP_OP_DIV: if (fl) rc = osp__dnnl_binary(c, ni); break;
    case OSP_OP_SOFTMAX: if (fl) rc = osp__dnnl_softmax(c, ni); break;
    case OSP_OP_CONCAT: if (fl) rc = osp__dnnl_concat(c, ni); break;
    case OSP_OP_BATCHNORM: if (fl) rc = osp__dnnl_batchnorm(c, ni); break;
    case OSP_OP_LRN: if (fl) rc = osp__dnnl_lrn(c, ni); break;
    case OSP_OP_FLATTEN:
    case OSP_OP_RESHAPE:
    case OSP_OP_SQUEEZE:
    case OSP_OP_UNSQUEEZE:
    case OSP_OP_IDENTITY: rc = compile_view(c, ni); break;
    case OSP_OP_TRANSPOSE: rc = osp__transpose_view(c, ni); break;
    case OSP_OP_QUANTIZE: rc = osp__q8_quantize(c, ni); break;
    case OSP_OP_REDUCE_MEAN: if (!fl) rc = osp__q8_mean(c, ni); break;
    default: break;
    }
    if (rc == OSP_EUNSUPPORTED) {
        osp_err_clear(c->err);
        rc = compile_ref(c, ni);
    }
    if (rc < 0 && c->err && c->err->code == 0)
        osp_err_set(c->err, rc, "node %s (%s): %s", n->name,
                    osp_op_name(n->op), osp_strerror(rc));
    return rc < 0 ? rc : 0;
}
