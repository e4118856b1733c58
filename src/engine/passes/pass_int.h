/* pass_int.h — helpers shared by the graph passes (private to
 * src/engine/passes/pass_*.c). The residual-add pass fuses the activation that
 * follows a fused add with the same code the activation pass uses, so that
 * the rules (which ops, which bounds, post-op limits) live in one place. */
#ifndef OSPREY_ENGINE_PASS_INT_H
#define OSPREY_ENGINE_PASS_INT_H

#include "engine/ir/ir.h"

/* Whether op can carry fused post-ops (CONV, GEMM, MATMUL). */
bool osp__pass_fusable_producer(osp_op_t op);

/* Tries to fold activation node `act` into the producer of its input as an
 * OSP_POST_ACT. Returns 1 if fused, 0 if the pattern does not apply (not an
 * activation, producer not fusable, intermediate used elsewhere, post-op list
 * full, non-constant Clip bounds, ...), or a negative code. */
int osp__pass_fuse_act_node(osp_graph_t *g, int act, osp_err_t *err);

/* The node that reads value v, when exactly one live node reads it exactly
 * once and v is not a graph output; -1 otherwise. */
int osp__pass_single_consumer(const osp_graph_t *g, int v);

/* Appends value v to node n's inputs (the in array is reallocated). */
int osp__pass_append_input(osp_graph_t *g, int n, int v, osp_err_t *err);

#endif
