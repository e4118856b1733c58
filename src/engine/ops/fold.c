/* fold.c — constant folding: evaluates nodes whose inputs are all constants
 * (and SHAPE nodes whose input has concrete dims) with the reference kernels,
 * stores the results as constant data on their outputs and removes the
 * nodes (see kernels.h).
 *
 * Shapes are inferred as the walk goes (nodes are in topological order), so
 * a chain such as PyTorch's Shape→Gather→Unsqueeze→Concat→Reshape folds in
 * one pass and the Reshape downstream sees a constant target. Inference
 * failures of nodes that cannot be folded anyway (e.g. dynamic batch at load
 * time) are not errors here; osp_infer_shapes is the strict check. */
#include <stdlib.h>
#include <string.h>

#include "engine/ops/ref.h"

static bool foldable(const osp_graph_t *g, const osp_node_t *n) {
    if (n->op == OSP_OP_NONE || n->n_out < 1)
        return false;
    for (int j = 0; j < n->n_out; j++) {
        int v = n->out[j];
        if (v >= 0 && (g->values[v].is_output || g->values[v].is_input))
            return false; /* keep declared outputs produced by a node */
    }
    for (int j = 0; j < g->n_outputs; j++)
        for (int k = 0; k < n->n_out; k++)
            if (g->outputs[j] == n->out[k])
                return false;
    if (n->op == OSP_OP_SHAPE) { /* needs dims, not data */
        const osp_value_t *x = &g->values[n->in[0]];
        if (x->rank < 0)
            return false;
        for (int d = 0; d < x->rank; d++)
            if (x->dims[d] < 0)
                return false;
        return true;
    }
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j] >= 0 && !g->values[n->in[j]].data)
            return false;
    return true;
}

/* Evaluates node i and turns its outputs into constants. Returns 1 when
 * folded, 0 when skipped (too big), or an error. */
static int fold_node(osp_graph_t *g, int i, size_t max_bytes,
                     osp_err_t *err) {
    osp_node_t *n = &g->nodes[i];
    osp_tensor_t in[16], out[8];
    void *bufs[8] = {NULL};
    size_t sizes[8] = {0};
    if (n->n_in > 16 || n->n_out > 8)
        return 0;
    for (int j = 0; j < n->n_out; j++) {
        int v = n->out[j];
        memset(&out[j], 0, sizeof out[j]);
        if (v < 0)
            continue;
        const osp_value_t *val = &g->values[v];
        if (val->rank < 0)
            return 0;
        for (int d = 0; d < val->rank; d++)
            if (val->dims[d] < 0)
                return 0;
        sizes[j] = osp_value_numel(val) * osp_dtype_size(val->dtype);
        if (max_bytes && sizes[j] > max_bytes)
            return 0;
    }
    int rc = OSP_ENOMEM;
    for (int j = 0; j < n->n_out; j++) {
        if (n->out[j] < 0)
            continue;
        bufs[j] = malloc(sizes[j] ? sizes[j] : 1);
        if (!bufs[j])
            goto fail;
        out[j] = osp_value_tensor(&g->values[n->out[j]]);
        out[j].data = bufs[j];
    }
    for (int j = 0; j < n->n_in; j++) {
        if (n->in[j] < 0)
            memset(&in[j], 0, sizeof in[j]);
        else
            in[j] = osp_value_tensor(&g->values[n->in[j]]);
    }
    rc = osp_ref_run_node(g, n, in, out, err);
    if (rc < 0)
        goto fail;
    for (int j = 0; j < n->n_out; j++)
        if (n->out[j] >= 0) {
            osp_graph_set_const(g, n->out[j], bufs[j], sizes[j]);
            bufs[j] = NULL;
        }
    osp_graph_remove_node(g, i);
    return 1;
fail:
    for (int j = 0; j < n->n_out; j++)
        free(bufs[j]);
    return rc;
}

int osp_fold_constants(osp_graph_t *g, size_t max_bytes, osp_err_t *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op == OSP_OP_NONE)
            continue;
        bool can = foldable(g, &g->nodes[i]);
        osp_err_t local;
        int rc = osp_infer_node(g, i, can ? err : &local);
        if (!can)
            continue; /* inference errors here are osp_infer_shapes' job */
        if (rc < 0)
            return rc;
        rc = fold_node(g, i, max_bytes, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}
