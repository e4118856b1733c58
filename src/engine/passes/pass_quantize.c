/* pass_quantize.c — post-training int8 quantization of a float graph: the
 * load-time rewrite behind `--precision int8` on float (ONNX) models.
 *
 * Why: CNNs served on CPUs without AMX run int8 on VNNI at up to twice the
 * multiply rate of bf16 and four times fp32; users of ONNX Runtime, OpenVINO
 * or TensorRT quantize their float models with a calibration set. osprey
 * already runs quantized graphs in TFLite's integer semantics (dnnl_q8conv.c,
 * q8_*.c, the reference kernels); this pass turns a float graph into one,
 * from value ranges observed on calibration inputs (engine.c,
 * osp__calibrate), so every int8 kernel and test of the TFLite path serves
 * ONNX models too.
 *
 * The scheme is the common static one (ONNX Runtime's and TFLite's
 * post-training defaults):
 *   - weights of CONV and GEMM: int8, symmetric, per output channel
 *     (scale = max|w| / 127, zero point 0), biases int32 at scale sx·sw;
 *   - activations: 8-bit, per tensor, from the observed [min, max]
 *     widened to include 0 (scale = (max − min) / 255): u8 with zero
 *     point 0 where min is 0 (ReLU outputs), else s8, asymmetric;
 *   - MAXPOOL, FLATTEN and RESHAPE keep their input's quantization (they
 *     only move values), GLOBAL_AVGPOOL becomes a quantized REDUCE_MEAN
 *     over H and W (the same arithmetic TFLite's MEAN uses);
 *   - CONV's fused RELU/CLIP stays as its clamp, ADD / RELU / CLIP become
 *     requantizing table lookups at plan time.
 * Any other node stays float: a QUANTIZE is put in front of every quantized
 * node reading a float value (the graph input first) and a DEQUANTIZE after
 * every quantized value that a float node or a graph output reads, so the
 * graph keeps its float interface and unsupported ops run unchanged.
 * Nodes are re-emitted in topological order with the conversions in place.
 *
 * The result is marked g->ptq: there is no external reference to be
 * bit-exact with, so its convolutions use oneDNN's fused (float)
 * requantization, the fastest path (dnnl_q8conv.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/passes/passes.h"

static bool is_f32_const(const osp_graph_t *g, int v, int rank) {
    return v >= 0 && v < g->n_values && osp_value_is_const(&g->values[v]) &&
           g->values[v].dtype == OSP_DT_F32 && g->values[v].rank == rank &&
           osp_value_numel(&g->values[v]) > 0;
}

static bool has_range(const osp__pass_qrange_t *r, int v) {
    return v >= 0 && r[v].seen && isfinite(r[v].lo) && isfinite(r[v].hi);
}

/* The activation post-ops int8 kernels clamp with (or none). */
static bool act_posts_ok(const osp_node_t *n) {
    for (int i = 0; i < n->n_post; i++) {
        const osp_post_op_t *p = &n->post[i];
        if (p->kind != OSP_POST_ACT ||
            (p->act != OSP_ACT_RELU && p->act != OSP_ACT_CLIP))
            return false;
    }
    return true;
}

/* Whether node n runs quantized. */
static bool quantizable(const osp_graph_t *g, const osp_node_t *n,
                        const osp__pass_qrange_t *r) {
    if (n->n_out != 1 || n->out[0] < 0)
        return false;
    int x = n->n_in > 0 ? n->in[0] : -1, y = n->out[0];
    switch (n->op) {
    case OSP_OP_CONV:
        return n->n_in >= 2 && n->n_in <= 3 && has_range(r, x) &&
               has_range(r, y) && is_f32_const(g, n->in[1], 4) &&
               (n->n_in < 3 || n->in[2] < 0 || is_f32_const(g, n->in[2], 1)) &&
               act_posts_ok(n);
    case OSP_OP_GEMM:
        return n->n_in >= 2 && n->n_in <= 3 && has_range(r, x) &&
               has_range(r, y) && is_f32_const(g, n->in[1], 2) &&
               (n->n_in < 3 || n->in[2] < 0 || is_f32_const(g, n->in[2], 1)) &&
               !n->p.gemm.trans_a && n->p.gemm.alpha == 1.f &&
               n->p.gemm.beta == 1.f && act_posts_ok(n);
    case OSP_OP_ADD:
        return n->n_in == 2 && act_posts_ok(n) && has_range(r, x) &&
               has_range(r, n->in[1]) && has_range(r, y) &&
               !osp_value_is_const(&g->values[x]) &&
               !osp_value_is_const(&g->values[n->in[1]]);
    case OSP_OP_RELU:
    case OSP_OP_CLIP:
        return n->n_in >= 1 && has_range(r, x) && has_range(r, y);
    case OSP_OP_MAXPOOL:
    case OSP_OP_FLATTEN:
    case OSP_OP_GLOBAL_AVGPOOL:
        return n->n_in == 1 && has_range(r, x) && has_range(r, y);
    case OSP_OP_RESHAPE:
        return n->n_in == 2 && has_range(r, x) && has_range(r, y) &&
               n->in[1] >= 0 && osp_value_is_const(&g->values[n->in[1]]);
    default:
        return false;
    }
}

/* Per-tensor 8-bit parameters covering [lo, hi] ∪ {0}: a value never seen
 * below 0 (a ReLU's, a ReLU6's output) takes u8 with zero point 0, any
 * other s8 with the zero point that spans its range. Both are the same 256
 * levels over the same range — u8 q is s8 q + 128 — but oneDNN 3 runs its
 * fast (brgemm) int8 convolutions only without zero points: with s8 and
 * zero point -128 on every ReLU output ResNet50's convolutions took its
 * older kernels, 15-60% slower on AMX (docs/adr/0054). */
static void act_params(float lo, float hi, float *scale, int32_t *zp,
                       osp_dtype_t *dt) {
    lo = lo < 0.f ? lo : 0.f;
    hi = hi > 0.f ? hi : 0.f;
    if (hi - lo < 1e-6f)
        hi = lo + 1e-6f;
    *scale = (hi - lo) / 255.f;
    if (lo == 0.f) {
        *zp = 0;
        *dt = OSP_DT_U8;
        return;
    }
    double z = -128.0 - (double)lo / (double)*scale;
    z = z < -128.0 ? -128.0 : z > 127.0 ? 127.0 : z;
    *zp = (int32_t)lround(z);
    *dt = OSP_DT_S8;
}

typedef struct qctx_s {
    osp_graph_t *g;
    const osp__pass_qrange_t *r;
    osp_err_t *err;
    int *qv;       /* per original value: its int8 twin, or -1 */
    int n_orig;    /* values before the pass */
} qctx_t;

/* "<name>/q8", the name of a value's int8 version (malloc'd or NULL). */
static char *q8_name(const char *base) {
    size_t nl = strlen(base);
    char *name = malloc(nl + 4);
    if (name) {
        memcpy(name, base, nl);
        memcpy(name + nl, "/q8", 4);
    }
    return name;
}

/* The 8-bit twin (dtype dt) of float value v with quantization (scale, zp). */
static int new_twin(qctx_t *c, int v, osp_dtype_t dt, float scale, int32_t zp) {
    osp_graph_t *g = c->g;
    char *name = q8_name(g->values[v].name);
    if (!name)
        return osp_err_set(c->err, OSP_ENOMEM, "quantize: out of memory");
    int rank = g->values[v].rank;
    int64_t dims[OSP_MAX_RANK];
    memcpy(dims, g->values[v].dims, sizeof dims);
    int t = osp_graph_add_value(g, name, dt, rank, rank >= 0 ? dims : NULL);
    free(name);
    if (t < 0)
        return osp_err_set(c->err, t, "quantize: out of memory");
    if (osp_graph_set_quant(g, t, -1, 1, &scale, &zp) < 0)
        return osp_err_set(c->err, OSP_ENOMEM, "quantize: out of memory");
    c->qv[v] = t;
    return t;
}

static int twin_from_range(qctx_t *c, int v) {
    float s;
    int32_t z;
    osp_dtype_t dt;
    act_params(c->r[v].lo, c->r[v].hi, &s, &z, &dt);
    return new_twin(c, v, dt, s, z);
}

/* A constant of dtype dt holding data (malloc'd, taken also on failure),
 * quantized along axis 0 with the O scales s and zero points 0. */
static int add_qconst(qctx_t *c, const char *name, osp_dtype_t dt, int rank,
                      const int64_t *dims, void *data, size_t bytes,
                      const float *s, int64_t O) {
    int32_t *z = calloc((size_t)O, sizeof(int32_t));
    int t = z ? osp_graph_add_value(c->g, name, dt, rank, dims) : OSP_ENOMEM;
    if (t < 0 || osp_graph_set_quant(c->g, t, 0, (int)O, s, z) < 0) {
        free(z);
        free(data);
        return osp_err_set(c->err, OSP_ENOMEM, "quantize: out of memory");
    }
    free(z);
    osp_graph_set_const(c->g, t, data, bytes);
    return t;
}

/* int8 per-output-channel weights from f32 constant w ([O, ...], or [K, N]
 * for a GEMM without trans_b, transposed here to [N, K]); *sw gets the
 * scales (malloc'd). Returns the new constant's index. */
static int quant_weights(qctx_t *c, int w, bool transpose, float **sw) {
    osp_graph_t *g = c->g;
    const osp_value_t *W = &g->values[w];
    const float *src = W->data;
    int64_t O = transpose ? W->dims[1] : W->dims[0];
    size_t n = osp_value_numel(W), per = n / (size_t)O;
    int64_t dims[OSP_MAX_RANK];
    memcpy(dims, W->dims, sizeof dims);
    if (transpose) {
        dims[0] = W->dims[1];
        dims[1] = W->dims[0];
    }
    int8_t *q = malloc(n);
    float *s = malloc(sizeof(float) * (size_t)O);
    char *name = q8_name(W->name);
    if (!q || !s || !name) {
        free(q), free(s), free(name);
        return osp_err_set(c->err, OSP_ENOMEM, "quantize: out of memory");
    }
    for (int64_t o = 0; o < O; o++) {
        float m = 0.f;
        for (size_t k = 0; k < per; k++) {
            float v = transpose ? src[k * (size_t)O + (size_t)o]
                                : src[(size_t)o * per + k];
            m = fabsf(v) > m ? fabsf(v) : m;
        }
        s[o] = m > 0.f ? m / 127.f : 1.f;
        for (size_t k = 0; k < per; k++) {
            float v = transpose ? src[k * (size_t)O + (size_t)o]
                                : src[(size_t)o * per + k];
            long t = lroundf(v / s[o]);
            q[(size_t)o * per + k] = (int8_t)(t < -127 ? -127 : t > 127 ? 127 : t);
        }
    }
    int t = add_qconst(c, name, OSP_DT_S8, W->rank, dims, q, n, s, O);
    free(name);
    if (t < 0)
        free(s);
    else
        *sw = s;
    return t;
}

/* int32 bias at scale sx·sw[o] into *out (absent bias: *out = -1). */
static int quant_bias(qctx_t *c, int b, int64_t O, float sx, const float *sw,
                      int *out) {
    *out = -1;
    if (b < 0)
        return 0;
    osp_graph_t *g = c->g;
    const float *src = g->values[b].data;
    int32_t *q = malloc(sizeof(int32_t) * (size_t)O);
    float *s = malloc(sizeof(float) * (size_t)O);
    if (!q || !s) {
        free(q), free(s);
        return osp_err_set(c->err, OSP_ENOMEM, "quantize: out of memory");
    }
    for (int64_t o = 0; o < O; o++) {
        s[o] = sx * sw[o];
        double t = round((double)src[o] / (double)s[o]);
        q[o] = (int32_t)(t < -2147483647.0 ? -2147483647.0
                         : t > 2147483647.0 ? 2147483647.0 : t);
    }
    int64_t d[1] = {O};
    int t = add_qconst(c, NULL, OSP_DT_S32, 1, d, q, sizeof(int32_t) * (size_t)O,
                       s, O);
    free(s);
    if (t < 0)
        return t;
    *out = t;
    return 0;
}

/* Appends a QUANTIZE (to_q) or DEQUANTIZE node from value a to value b;
 * returns its index. */
static int convert_node(qctx_t *c, int a, int b, bool to_q) {
    int ni = osp_graph_add_node(c->g, to_q ? OSP_OP_QUANTIZE : OSP_OP_DEQUANTIZE,
                                NULL, &a, 1, &b, 1);
    if (ni < 0)
        return osp_err_set(c->err, ni, "quantize: out of memory");
    c->g->nodes[ni].p.cast.to = to_q ? c->g->values[b].dtype : OSP_DT_F32;
    c->g->nodes[ni].p.cast.axis = 1;
    return ni;
}

/* Rewrites quantizable node ni in place (inputs already int8 twins). */
static int rewrite_node(qctx_t *c, int ni) {
    osp_graph_t *g = c->g;
    osp_node_t *n = &g->nodes[ni];
    int y = n->out[0];
    int x = n->in[0];
    const osp_quant_t *xq = g->values[x].quant;
    int yq;
    if (n->op == OSP_OP_MAXPOOL || n->op == OSP_OP_FLATTEN ||
        n->op == OSP_OP_RESHAPE)
        yq = new_twin(c, y, g->values[x].dtype, xq->scale[0], xq->zero_point[0]);
    else
        yq = twin_from_range(c, y);
    if (yq < 0)
        return yq;
    n = &g->nodes[ni]; /* adding values never moves nodes, but be safe */
    if (n->op == OSP_OP_CONV || n->op == OSP_OP_GEMM) {
        bool tr = n->op == OSP_OP_GEMM && !n->p.gemm.trans_b;
        float *sw = NULL;
        int w = quant_weights(c, n->in[1], tr, &sw);
        if (w < 0)
            return w;
        n = &g->nodes[ni];
        int64_t O = g->values[w].dims[0];
        int b;
        int rc = quant_bias(c, n->n_in > 2 ? n->in[2] : -1, O,
                            g->values[n->in[0]].quant->scale[0], sw, &b);
        free(sw);
        if (rc < 0)
            return rc;
        n = &g->nodes[ni];
        n->in[1] = w;
        if (n->n_in > 2)
            n->in[2] = b;
        if (n->op == OSP_OP_GEMM)
            n->p.gemm.trans_b = true;
    }
    if (n->op == OSP_OP_GLOBAL_AVGPOOL) {
        /* the same mean, in the form the quantized kernels implement */
        n->op = OSP_OP_REDUCE_MEAN;
        memset(&n->p, 0, sizeof n->p);
        n->p.axes.has_axes = true;
        n->p.axes.n_axes = 2;
        n->p.axes.axes[0] = 2;
        n->p.axes.axes[1] = 3;
        n->p.axes.keepdims = true;
    }
    n->out[0] = yq;
    g->values[yq].producer = ni;
    return 0;
}

/* ADD → RELU/CLIP(0, c) with the add's result used only there: the
 * activation becomes the ADD's clamp (one table instead of two). Done on
 * the float graph, so the fused ADD takes the activation's output and its
 * observed range — and only where the fused ADD will run quantized: the
 * float ADD kernel has no post-ops. */
static void fuse_add_act(osp_graph_t *g, const osp__pass_qrange_t *r) {
    for (int i = 0; i < g->n_nodes; i++) {
        osp_node_t *a = &g->nodes[i];
        if (a->op != OSP_OP_RELU && a->op != OSP_OP_CLIP)
            continue;
        if (a->n_in < 1 || a->in[0] < 0 || a->n_out != 1)
            continue;
        int p = g->values[a->in[0]].producer;
        if (p < 0 || g->nodes[p].op != OSP_OP_ADD || g->nodes[p].n_post ||
            osp_graph_use_count(g, a->in[0]) != 1)
            continue;
        float lo = 0.f, hi = INFINITY;
        if (a->op == OSP_OP_CLIP) {
            if (a->n_in > 1) /* bounds as inputs: fused at load when const */
                continue;
            lo = a->p.act.alpha;
            hi = a->p.act.beta;
        }
        int y = a->out[0];
        osp_node_t fused = g->nodes[p];
        fused.post[0] = (osp_post_op_t){OSP_POST_ACT,
                                        a->op == OSP_OP_RELU ? OSP_ACT_RELU
                                                             : OSP_ACT_CLIP,
                                        lo, hi, 0};
        fused.n_post = 1;
        fused.out = &y;
        if (!quantizable(g, &fused, r))
            continue;
        osp_node_t *add = &g->nodes[p];
        add->post[0] = fused.post[0];
        add->n_post = 1;
        add->out[0] = y;
        g->values[y].producer = p;
        osp_graph_remove_node(g, i);
    }
}

int osp__pass_quantize(osp_graph_t *g, const osp__pass_qrange_t *r, int n_r,
                      osp_err_t *err) {
    if (g->quantized)
        return osp_err_set(err, OSP_EINVAL, "quantize: the graph is quantized already");
    if (n_r != g->n_values)
        return osp_err_set(err, OSP_EINVAL, "quantize: %d ranges for %d values",
                           n_r, g->n_values);
    fuse_add_act(g, r);
    const int n0 = g->n_nodes, v0 = g->n_values;
    qctx_t c = {g, r, err, NULL, v0};
    bool *q = calloc((size_t)(n0 ? n0 : 1), sizeof(bool));
    bool *float_use = calloc((size_t)v0, sizeof(bool)); /* read as float */
    c.qv = malloc(sizeof(int) * (size_t)v0);
    /* new node order: before[i] conversions, node i, after[i] conversions */
    int *order = malloc(sizeof(int) * (size_t)(3 * n0 + v0 + g->n_outputs + 1));
    int n_order = 0, n_q = 0;
    int rc = 0;
    if (!q || !float_use || !c.qv || !order) {
        rc = osp_err_set(err, OSP_ENOMEM, "quantize: out of memory");
        goto out;
    }
    for (int v = 0; v < v0; v++)
        c.qv[v] = -1;
    for (int i = 0; i < n0; i++)
        if (g->nodes[i].op != OSP_OP_NONE)
            n_q += q[i] = quantizable(g, &g->nodes[i], r);
    if (n_q == 0) {
        rc = osp_err_set(err, OSP_EUNSUPPORTED,
                         "quantize: no node of this model can run in int8 "
                         "(int8 covers Conv, Gemm, Add, Relu, Clip, MaxPool, "
                         "GlobalAveragePool, Flatten, Reshape)");
        goto out;
    }
    for (int i = 0; i < n0; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE || q[i])
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                float_use[n->in[k]] = true;
    }
    for (int k = 0; k < g->n_outputs; k++)
        float_use[g->outputs[k]] = true;

    for (int i = 0; i < n0; i++) {
        if (g->nodes[i].op == OSP_OP_NONE)
            continue;
        if (!q[i]) {
            order[n_order++] = i;
            continue;
        }
        /* activation inputs: int8 twins, made by a QUANTIZE for float ones */
        int n_act = g->nodes[i].op == OSP_OP_ADD ? 2 : 1;
        for (int k = 0; k < n_act; k++) {
            int v = g->nodes[i].in[k];
            if (c.qv[v] < 0) {
                int t = twin_from_range(&c, v);
                int cn = t < 0 ? t : convert_node(&c, v, t, true);
                if (cn < 0) {
                    rc = cn;
                    goto out;
                }
                g->values[t].producer = cn;
                order[n_order++] = cn;
            }
            g->nodes[i].in[k] = c.qv[v];
        }
        int y = g->nodes[i].out[0]; /* the float value */
        if ((rc = rewrite_node(&c, i)) < 0)
            goto out;
        order[n_order++] = i;
        /* kept where float nodes or the outputs read it */
        g->values[y].producer = -1;
        if (float_use[y]) {
            int cn = convert_node(&c, g->nodes[i].out[0], y, false);
            if (cn < 0) {
                rc = cn;
                goto out;
            }
            g->values[y].producer = cn;
            order[n_order++] = cn;
        }
    }
    /* Re-emit the nodes in topological order (appended conversions moved
     * next to their nodes); removed nodes are left out. */
    osp_node_t *nodes = malloc(sizeof(osp_node_t) * (size_t)(g->cap_nodes));
    if (!nodes) {
        rc = osp_err_set(err, OSP_ENOMEM, "quantize: out of memory");
        goto out;
    }
    bool *kept = calloc((size_t)g->n_nodes, sizeof(bool));
    if (!kept) {
        free(nodes);
        rc = osp_err_set(err, OSP_ENOMEM, "quantize: out of memory");
        goto out;
    }
    for (int k = 0; k < n_order; k++) {
        nodes[k] = g->nodes[order[k]];
        kept[order[k]] = true;
    }
    for (int i = 0; i < g->n_nodes; i++) /* removed nodes: free their arrays */
        if (!kept[i]) {
            free(g->nodes[i].name);
            free(g->nodes[i].in);
            free(g->nodes[i].out);
        }
    free(kept);
    free(g->nodes);
    g->nodes = nodes;
    g->n_nodes = n_order;
    for (int v = 0; v < g->n_values; v++)
        g->values[v].producer = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_out; k++)
            if (g->nodes[i].out[k] >= 0)
                g->values[g->nodes[i].out[k]].producer = i;
    g->quantized = true;
    g->ptq = true;
    rc = osp_graph_compact(g);
    if (rc < 0)
        osp_err_set(err, rc, "quantize: out of memory");
out:
    free(q);
    free(float_use);
    free(c.qv);
    free(order);
    return rc < 0 ? rc : 0;
}
