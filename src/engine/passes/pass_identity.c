/* pass_identity.c — removes Identity nodes (the ONNX importer also maps
 * inference-mode Dropout to IDENTITY) by making readers use the input value.
 *
 * Graph output names are a contract with clients (and with
 * osp_engine_output()), so when the Identity's output is a graph output we
 * rename in the other direction: the producer of the input writes the
 * output value directly. That is impossible when the input has no producer
 * (a graph input or a constant) or is itself a graph output — then the
 * Identity stays and the executor copies. */
#include "engine/passes/passes.h"

#include "engine/passes/pass_int.h"

static bool is_graph_output(const osp_graph_t *g, int v) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return true;
    return g->values[v].is_output;
}

/* Extra outputs (Dropout's mask) must be unused for the node to go away. */
static bool extra_outputs_unused(const osp_graph_t *g, const osp_node_t *n) {
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i] >= 0 && osp_graph_use_count(g, n->out[i]) > 0)
            return false;
    return true;
}

int osp__pass_remove_identity(osp_graph_t *g, osp_err_t *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        osp_node_t *n = &g->nodes[i];
        if (n->op != OSP_OP_IDENTITY || n->n_in < 1 || n->n_out < 1 ||
            n->in[0] < 0 || n->out[0] < 0 || n->in[0] == n->out[0])
            continue;
        if (!extra_outputs_unused(g, n))
            continue;
        int x = n->in[0], y = n->out[0];
        if (!is_graph_output(g, y)) {
            /* Common case: readers of y read x instead. */
            osp_graph_remove_node(g, i);
            osp_graph_replace_uses(g, y, x);
            continue;
        }
        int p = g->values[x].producer;
        if (p < 0 || is_graph_output(g, x))
            continue; /* keep: see the file comment */
        /* y is a graph output: the producer of x writes y instead, and
         * every other reader of x reads y (same contents). */
        osp_graph_remove_node(g, i);
        osp_graph_replace_uses(g, x, y);
        osp_node_t *pn = &g->nodes[p];
        for (int j = 0; j < pn->n_out; j++)
            if (pn->out[j] == x)
                pn->out[j] = y;
        osp_value_t *vy = &g->values[y], *vx = &g->values[x];
        vy->producer = p;
        vx->producer = -1;
        if (vy->rank < 0 && vx->rank >= 0) {
            vy->rank = vx->rank;
            for (int d = 0; d < vx->rank; d++)
                vy->dims[d] = vx->dims[d];
        }
        if (vy->dtype == OSP_DT_UNDEF)
            vy->dtype = vx->dtype;
        if (vx->quant && !vy->quant) {
            int rc = osp_graph_set_quant(g, y, vx->quant->axis,
                                         vx->quant->count, vx->quant->scale,
                                         vx->quant->zero_point);
            if (rc < 0)
                return osp_err_set(err, rc, "node %s: copying quantization",
                                   g->nodes[i].name);
        }
    }
    return 0;
}
