/* pass_residual.c — fuses a residual Add into the conv that produces one of
 * its operands: Add(conv(x), r) becomes conv(x) with post-op SUM(r), which
 * oneDNN performs by accumulating into the destination instead of running a
 * separate elementwise kernel. The activation after the Add (ResNet's Relu)
 * is then fused too.
 *
 * Needs concrete shapes (run after osp_infer_shapes): the sum post-op has no
 * broadcasting, so r must have exactly the conv output's dims and dtype (or,
 * quantized, another 8-bit type).
 * Topological order must survive the rewrite: the conv now reads r, so r
 * must be available before the conv runs (a graph input, a constant, or
 * produced by an earlier node). When both operands are convs the later one
 * is chosen, so that the other is already computed.
 *
 * Quantized values are left alone in imported quantized models (TFLite):
 * each operand and the sum carry their own scale and zero point, and their
 * exact TFLite arithmetic is the table the ADD becomes. In graphs osprey
 * quantized itself the fusion happens when the planner says its int8 convs
 * can take it (g->q8_sum: oneDNN int8 with VNNI and the float
 * requantization; no other int8 conv kernel has a SUM): the conv then takes
 * the summand with its scale and zero point (oneDNN's sum post-op,
 * dnnl_q8conv.c), and the ADD's fused activation moves along. */
#include "engine/passes/passes.h"

#include <stdbool.h>
#include <string.h>

#include "engine/passes/pass_int.h"

/* 8-bit and quantized per tensor (the int8 SUM post-op's operands). */
static bool q8_per_tensor(const osp_value_t *v) {
    return v->quant && v->quant->count == 1 &&
           (v->dtype == OSP_DT_S8 || v->dtype == OSP_DT_U8);
}

static bool same_concrete_shape(const osp_value_t *a, const osp_value_t *b,
                                bool quant_ok) {
    if (!quant_ok && (a->quant || b->quant))
        return false;
    if (quant_ok && (!q8_per_tensor(a) || !q8_per_tensor(b)))
        return false;
    /* quantized: u8 and s8 mix (oneDNN's SUM reads the summand as its own
     * type); float: one dtype */
    if (a->dtype == OSP_DT_UNDEF || (!quant_ok && a->dtype != b->dtype) ||
        a->rank < 0 || a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] < 0 || a->dims[i] != b->dims[i])
            return false;
    return true;
}

static bool has_sum(const osp_node_t *n) {
    for (int i = 0; i < n->n_post; i++)
        if (n->post[i].kind == OSP_POST_SUM)
            return true;
    return false;
}

/* Whether Add node `add` can fuse into the producer of operand `conv_v`
 * with `other` as the summand. */
static bool can_fuse(const osp_graph_t *g, int add, int conv_v, int other) {
    int c = g->values[conv_v].producer;
    if (c < 0 || c >= add || conv_v == other)
        return false;
    const osp_node_t *cn = &g->nodes[c];
    if (cn->op != OSP_OP_CONV || cn->n_out != 1 || cn->out[0] != conv_v ||
        cn->n_post >= OSP_MAX_POST_OPS || has_sum(cn))
        return false;
    if (osp__pass_single_consumer(g, conv_v) != add)
        return false;
    if (g->values[other].producer >= c) /* not computed before the conv */
        return false;
    const osp_value_t *out = &g->values[g->nodes[add].out[0]];
    /* Quantized: only in graphs osprey quantized itself, whose int8 convs
     * take the SUM with the summand's scale and zero point (dnnl_q8conv.c),
     * and only when no activation runs between the conv and the add. */
    bool q = g->q8_sum && out->quant;
    if (out->quant && (!q || cn->n_post))
        return false;
    if (!q && g->nodes[add].n_post)
        return false;
    return same_concrete_shape(&g->values[conv_v], &g->values[other], q) &&
           (out->rank < 0 || same_concrete_shape(&g->values[conv_v], out, q));
}

/* Returns 1 if fused, 0 if not applicable, <0 on error. */
static int fuse_one(osp_graph_t *g, int add, osp_err_t *err) {
    const osp_node_t *a = &g->nodes[add];
    if (a->n_in != 2 || a->n_out != 1 || a->in[0] < 0 || a->in[1] < 0 ||
        a->out[0] < 0)
        return 0;
    int v0 = a->in[0], v1 = a->in[1];
    /* Prefer the operand produced later; fall back to the other one. */
    int first = v0, second = v1;
    if (g->values[v1].producer > g->values[v0].producer) {
        first = v1;
        second = v0;
    }
    int conv_v, other;
    if (can_fuse(g, add, first, second)) {
        conv_v = first;
        other = second;
    } else if (can_fuse(g, add, second, first)) {
        conv_v = second;
        other = first;
    } else {
        return 0;
    }
    int c = g->values[conv_v].producer;
    int y = a->out[0];
    /* the add's own fused activations (osprey-quantized graphs) follow */
    int n_apost = a->n_post;
    osp_post_op_t apost[OSP_MAX_POST_OPS];
    memcpy(apost, a->post, sizeof apost);
    if (g->nodes[c].n_post + 1 + n_apost > OSP_MAX_POST_OPS)
        return 0;
    /* Keep the bias slot (input 2) meaning "bias": a conv without one gets
     * an explicit "absent" so the summand lands after it. */
    int rc = 0;
    if (g->nodes[c].n_in == 2)
        rc = osp__pass_append_input(g, c, -1, err);
    if (rc == 0)
        rc = osp__pass_append_input(g, c, other, err);
    if (rc < 0)
        return rc;
    osp_graph_remove_node(g, add);
    osp_node_t *cn = &g->nodes[c];
    cn->post[cn->n_post].kind = OSP_POST_SUM;
    cn->post[cn->n_post].act = OSP_ACT_NONE;
    cn->post[cn->n_post].alpha = cn->post[cn->n_post].beta = 0.f;
    cn->post[cn->n_post].sum_value = other;
    cn->n_post++;
    for (int k = 0; k < n_apost; k++)
        cn->post[cn->n_post++] = apost[k];
    /* The conv writes the Add's output value, so a graph output keeps its
     * name; the conv's old output is dropped by compaction. */
    cn->out[0] = y;
    g->values[y].producer = c;
    g->values[conv_v].producer = -1;

    /* Fuse the activation that reads the sum, if there is exactly one. */
    int consumer = osp__pass_single_consumer(g, y);
    if (consumer >= 0) {
        rc = osp__pass_fuse_act_node(g, consumer, err);
        if (rc < 0)
            return rc;
    }
    return 1;
}

int osp__pass_fuse_residual_add(osp_graph_t *g, osp_err_t *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != OSP_OP_ADD)
            continue;
        int rc = fuse_one(g, i, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}
