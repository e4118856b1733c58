/* pass_dead.c — removes nodes whose results nobody reads, then compacts the
 * graph (dropping removed nodes and unreferenced values, renumbering).
 *
 * Use counts are computed once and decremented as nodes go; nodes are in
 * topological order, so one sweep from the end removes whole dead chains
 * (a consumer is always visited before its producer). */
#include "engine/passes/passes.h"

#include <stdlib.h>

#include "engine/passes/pass_int.h"

int osp__pass_dead_nodes(osp_graph_t *g, osp_err_t *err) {
    int *uses = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof(int));
    if (!uses)
        return osp_err_set(err, OSP_ENOMEM, "dead-node pass: %d values",
                           g->n_values);
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0)
                uses[n->in[j]]++;
    }
    for (int i = 0; i < g->n_outputs; i++)
        uses[g->outputs[i]]++;
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].is_output)
            uses[i]++;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        bool live = false;
        for (int j = 0; j < n->n_out && !live; j++)
            live = n->out[j] >= 0 && uses[n->out[j]] > 0;
        if (live)
            continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0)
                uses[n->in[j]]--;
        osp_graph_remove_node(g, i);
    }
    free(uses);
    int rc = osp_graph_compact(g);
    if (rc < 0)
        return osp_err_set(err, rc, "compacting graph %s",
                           g->name ? g->name : "?");
    return 0;
}
