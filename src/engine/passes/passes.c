/* passes.c — the load-time and plan-time pass pipelines (see passes.h) and
 * small graph-query helpers shared by the individual passes (pass_int.h).
 * Each pass lives in its own pass_*.c file; this file only decides order:
 * identity removal first (so that Conv→Identity→BN still folds), then BN
 * folding (which must see the bare conv, before any post-op is attached),
 * then activation fusion, then dead-node removal and compaction. */
#include "engine/passes/passes.h"

#include <stdlib.h>

#include "engine/passes/pass_int.h"

bool osp__pass_fusable_producer(osp_op_t op) {
    return op == OSP_OP_CONV || op == OSP_OP_GEMM || op == OSP_OP_MATMUL;
}

int osp__pass_single_consumer(const osp_graph_t *g, int v) {
    if (v < 0 || g->values[v].is_output)
        return -1;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return -1;
    int found = -1, uses = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        for (int j = 0; j < n->n_in; j++) {
            if (n->in[j] == v) {
                uses++;
                found = i;
            }
        }
    }
    return uses == 1 ? found : -1;
}

int osp__pass_append_input(osp_graph_t *g, int n, int v, osp_err_t *err) {
    osp_node_t *node = &g->nodes[n];
    int *in = realloc(node->in, sizeof(int) * (size_t)(node->n_in + 1));
    if (!in)
        return osp_err_set(err, OSP_ENOMEM, "node %s: cannot grow inputs",
                           node->name);
    node->in = in;
    node->in[node->n_in++] = v;
    return 0;
}

int osp__passes_load(osp_graph_t *g, osp_err_t *err) {
    int rc;
    if ((rc = osp__pass_remove_identity(g, err)) < 0 ||
        (rc = osp__pass_fold_batchnorm(g, err)) < 0 ||
        (rc = osp__pass_fuse_activation(g, err)) < 0 ||
        (rc = osp__pass_dead_nodes(g, err)) < 0)
        return rc;
    return 0;
}

int osp__passes_plan(osp_graph_t *g, osp_err_t *err) {
    int rc;
    if ((rc = osp__pass_fuse_residual_add(g, err)) < 0 ||
        (rc = osp__pass_dead_nodes(g, err)) < 0)
        return rc;
    return 0;
}
