/* pass_activation.c — fuses an elementwise activation into the CONV, GEMM or
 * MATMUL that produces its input, as an OSP_POST_ACT post-op: oneDNN applies
 * post-ops while the result is still in registers, saving a full pass over
 * the activation tensor.
 *
 * The producer keeps its inputs and writes the activation's output value
 * directly (so a graph output keeps its name); its old output value becomes
 * unreferenced and is dropped by osp_graph_compact(). */
#include "engine/passes/passes.h"

#include <math.h>

#include "engine/passes/pass_int.h"

/* A Clip bound from input `idx` of node n: absent → dflt (returns 1),
 * constant f32 scalar → *out (returns 1), anything else → 0. */
static int clip_bound(const osp_graph_t *g, const osp_node_t *n, int idx,
                      float dflt, float *out) {
    if (idx >= n->n_in || n->in[idx] < 0) {
        *out = dflt;
        return 1;
    }
    const osp_value_t *v = &g->values[n->in[idx]];
    if (!osp_value_is_const(v) || v->dtype != OSP_DT_F32 || v->quant ||
        v->data_bytes != sizeof(float))
        return 0;
    *out = *(const float *)v->data;
    return 1;
}

/* Maps activation node n to a post-op; returns false if it cannot be one. */
static bool act_post_op(const osp_graph_t *g, const osp_node_t *n,
                        osp_post_op_t *po) {
    po->kind = OSP_POST_ACT;
    po->alpha = po->beta = 0.f;
    po->sum_value = -1;
    switch (n->op) {
    case OSP_OP_RELU:
        po->act = OSP_ACT_RELU;
        return true;
    case OSP_OP_LEAKY_RELU:
        po->act = OSP_ACT_LEAKY_RELU;
        po->alpha = n->p.act.alpha;
        return true;
    case OSP_OP_SIGMOID:
        po->act = OSP_ACT_SIGMOID;
        return true;
    case OSP_OP_HARD_SIGMOID:
        po->act = OSP_ACT_HARD_SIGMOID;
        po->alpha = n->p.act.alpha;
        po->beta = n->p.act.beta;
        return true;
    case OSP_OP_HARD_SWISH:
        po->act = OSP_ACT_HARD_SWISH;
        return true;
    case OSP_OP_CLIP: {
        po->act = OSP_ACT_CLIP;
        bool from_inputs = g->opset >= 11 ||
                           (n->n_in > 1 && n->in[1] >= 0) ||
                           (n->n_in > 2 && n->in[2] >= 0);
        if (!from_inputs) { /* opset < 11 attributes (or TFLite RELU6) */
            po->alpha = n->p.act.alpha;
            po->beta = n->p.act.beta;
            return true;
        }
        return clip_bound(g, n, 1, -INFINITY, &po->alpha) &&
               clip_bound(g, n, 2, INFINITY, &po->beta);
    }
    default:
        return false;
    }
}

int osp__pass_fuse_act_node(osp_graph_t *g, int act, osp_err_t *err) {
    (void)err;
    const osp_node_t *a = &g->nodes[act];
    if (a->n_in < 1 || a->in[0] < 0 || a->n_out != 1 || a->out[0] < 0)
        return 0;
    osp_post_op_t po;
    if (!act_post_op(g, a, &po))
        return 0;
    int x = a->in[0];
    int p = g->values[x].producer;
    if (p < 0 || !osp__pass_fusable_producer(g->nodes[p].op) ||
        g->nodes[p].n_out < 1 || g->nodes[p].out[0] != x ||
        g->nodes[p].n_post >= OSP_MAX_POST_OPS ||
        osp__pass_single_consumer(g, x) != act)
        return 0;
    int y = a->out[0];
    osp_graph_remove_node(g, act);
    osp_node_t *pn = &g->nodes[p];
    pn->post[pn->n_post++] = po;
    pn->out[0] = y;
    g->values[y].producer = p;
    g->values[x].producer = -1;
    if (g->values[y].dtype == OSP_DT_UNDEF)
        g->values[y].dtype = g->values[x].dtype;
    return 1;
}

int osp__pass_fuse_activation(osp_graph_t *g, osp_err_t *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op == OSP_OP_NONE)
            continue;
        int rc = osp__pass_fuse_act_node(g, i, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}
