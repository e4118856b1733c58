/* passes.h — graph rewrites on the IR (private to src/engine).
 *
 * Each pass returns 0 or a negative OSP_E* code and leaves removed nodes as
 * OSP_OP_NONE; osp__pass_dead_nodes() finally compacts the graph. A pass
 * never changes what the graph computes (up to float rounding for folds).
 * Fusions only happen when the intermediate value has exactly one use and
 * is not a graph output. */
#ifndef OSPREY_ENGINE_PASSES_H
#define OSPREY_ENGINE_PASSES_H

#include "engine/ir/ir.h"

/* Identity and Dropout (inference mode) become aliases of their input. */
int osp__pass_remove_identity(osp_graph_t *g, osp_err_t *err);
/* Conv followed by BatchNormalization (constant scale/bias/mean/var): the
 * BN is folded into the conv's weights and bias (creating a bias if absent).
 * A standalone BN stays (the executor runs it). */
int osp__pass_fold_batchnorm(osp_graph_t *g, osp_err_t *err);
/* CONV/GEMM/MATMUL followed by Relu, LeakyRelu, Clip (constant bounds),
 * Sigmoid, HardSigmoid, HardSwish → a post-op on the producer. */
int osp__pass_fuse_activation(osp_graph_t *g, osp_err_t *err);
/* Add(conv_out, other) where both have identical shapes (needs shapes:
 * run after osp_infer_shapes) → conv post-op SUM(other), then any
 * following activation is fused as well. `other` is appended to the conv's
 * inputs. */
int osp__pass_fuse_residual_add(osp_graph_t *g, osp_err_t *err);
/* Removes nodes none of whose outputs is used, then compacts the graph. */
int osp__pass_dead_nodes(osp_graph_t *g, osp_err_t *err);

/* A quantized (TFLite) graph rewritten to run in float: constants
 * dequantized, activations f32, requantizations removed, a DEQUANTIZE after
 * each quantized graph input (inputs keep their dtype). Clears
 * g->quantized. For --precision fp32|bf16 on quantized models
 * (pass_dequant.c). */
int osp__pass_dequantize(osp_graph_t *g, osp_err_t *err);

/* A value's range observed on calibration inputs (engine.c). */
typedef struct osp__pass_qrange_s {
    float lo, hi;
    bool seen;
} osp__pass_qrange_t;
/* Post-training int8 quantization of a float graph from the ranges r[v] of
 * its n_r values (pass_quantize.c): per-channel int8 weights, per-tensor
 * int8 activations, QUANTIZE/DEQUANTIZE at the boundaries of the nodes
 * that stay float. Sets g->quantized and g->ptq. OSP_EUNSUPPORTED when no
 * node can be quantized. */
int osp__pass_quantize(osp_graph_t *g, const osp__pass_qrange_t *r, int n_r,
                      osp_err_t *err);

/* The load-time pipeline (shape-agnostic): identity, batchnorm, activation,
 * dead nodes. */
int osp__passes_load(osp_graph_t *g, osp_err_t *err);
/* The plan-time pipeline (after shape inference and constant folding):
 * residual add fusion, dead nodes. */
int osp__passes_plan(osp_graph_t *g, osp_err_t *err);

#endif
