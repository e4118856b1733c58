/* kernels.h — shape inference, constant folding and reference kernels for
 * every IR op (private to src/engine).
 *
 * The reference kernels work on dense row-major tensors of any supported
 * dtype. They are the semantic ground truth: the oneDNN executor must agree
 * with them, unit tests compare against them, constant folding runs them, and
 * the executor falls back to them for ops oneDNN does not cover (Shape,
 * Gather, Transpose, Pad, ...). They favour clarity over speed, except where
 * a fallback op sits on a hot path. */
#ifndef OSPREY_ENGINE_KERNELS_H
#define OSPREY_ENGINE_KERNELS_H

#include "engine/ir/ir.h"

/* Infers dtype/rank/dims of node n's outputs from its inputs (which must be
 * known; constant inputs such as a Reshape target are read from value data).
 * Unknown/invalid combinations are an OSP_ESHAPE/OSP_EUNSUPPORTED error that
 * names the node. */
int osp_infer_node(osp_graph_t *g, int n, osp_err_t *err);
/* Runs osp_infer_node over all live nodes in order. Graph inputs must have
 * concrete dims (no -1). Small integer shape computations (Shape→Gather→
 * Unsqueeze→Concat feeding a Reshape) are evaluated on the side so their
 * consumers see the data; the graph itself is not changed (folding them is
 * osp_fold_constants' job). Sizes above 2^36 bytes are OSP_ELIMIT. */
int osp_infer_shapes(osp_graph_t *g, osp_err_t *err);

/* Evaluates every live node whose inputs are all constants (after shape
 * inference), turning its outputs into constants and removing the node.
 * This folds PyTorch's Shape→Gather→Unsqueeze→Concat→Reshape chains once
 * shapes are concrete. Nodes whose output would exceed max_bytes are left
 * alone (0 = no limit). */
int osp_fold_constants(osp_graph_t *g, size_t max_bytes, osp_err_t *err);

/* Runs node n with the reference kernel. in[i] describes node input i
 * (dtype UNDEF and data NULL for an omitted optional input); out[i] has
 * dtype/rank/dims already set (from shape inference) and data pointing at
 * caller-provided storage of the right size. Fused post-ops (n->post) are
 * applied. */
int osp_ref_run_node(const osp_graph_t *g, const osp_node_t *n,
                     const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);

/* Scratch bytes osp_ref_run_node_ws needs for node n with these tensors:
 * 0 for float/integer nodes; quantized (TFLite) nodes need int16/int32
 * work arrays for the exact integer kernels (ref_q8.h) or, on the float
 * fallback, float copies of their quantized inputs/outputs. osp_ref_run_node allocates that itself;
 * an executor that must not allocate during inference sizes it at plan time
 * and calls osp_ref_run_node_ws with its own (float-aligned) buffer. */
size_t osp_ref_scratch_bytes(const osp_graph_t *g, const osp_node_t *n,
                             const osp_tensor_t *in, const osp_tensor_t *out);
int osp_ref_run_node_ws(const osp_graph_t *g, const osp_node_t *n,
                        const osp_tensor_t *in, osp_tensor_t *out,
                        void *scratch, size_t scratch_bytes, osp_err_t *err);

/* Whether the reference kernels support this node (op + attributes + dtypes)
 * — used by importers to reject unsupported models at load time. Integer
 * tensors carrying osp_quant_t (TFLite) count as supported: TFLite's integer
 * arithmetic where ref_q8.h covers the node, else dequantize → float op →
 * requantize (see osp_ref_scratch_bytes). */
bool osp_ref_supports(const osp_graph_t *g, const osp_node_t *n);

#endif
