/* ref_q8.h — exact integer kernels for quantized (TFLite-style) nodes
 * (private to src/engine; ref_q8conv.c, ref_q8arith.c).
 *
 * The generic quantized fallback in ref.c dequantizes, runs the float kernel
 * and requantizes; that is the textbook meaning but not TFLite's arithmetic,
 * and over a 50-layer network the differences grow to many quantization
 * steps. These kernels reproduce TFLite's integer semantics instead: int32
 * accumulation of (x − zx)(w − zw), int32 bias, fixed-point requantization
 * (q8_math.h), activation clamps in the quantized domain, and TFLite's own
 * rounding rules for ADD, AVERAGE_POOL_2D, MEAN and requantizing QUANTIZE.
 * docs/engine.md "Quantized models" lists what is exact and what is not.
 *
 * ref.c asks osp__ref_q8_covers() first; nodes it does not cover (other ops,
 * float outputs, mixed quantization they do not model) keep the float
 * fallback. */
#ifndef OSPREY_ENGINE_REF_Q8_H
#define OSPREY_ENGINE_REF_Q8_H

#include "engine/ops/ref.h"

/* Whether node n (with these concrete tensors) runs on an integer kernel;
 * if so *scratch_bytes receives the 4-byte-aligned scratch it needs. */
bool osp__ref_q8_covers(const osp_graph_t *g, const osp_node_t *n,
                      const osp_tensor_t *in, const osp_tensor_t *out,
                      size_t *scratch_bytes);
/* Runs a covered node; scratch has at least the bytes covers() reported. */
int osp__ref_q8_run(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, void *scratch,
                  size_t scratch_bytes, osp_err_t *err);

/* ---- shared by ref_q8conv.c and ref_q8arith.c ----------------------------- */

/* Per-tensor quantization of value v if it is an 8-bit quantized tensor of
 * that dtype, else NULL. */
const osp_quant_t *osp__q8_tensor(const osp_graph_t *g, int v,
                                  const osp_tensor_t *t);
/* [tmin, tmax] of an 8-bit dtype. */
void osp__q8_type_range(osp_dtype_t dt, int32_t *tmin, int32_t *tmax);
/* Clamp range of node n's output 0 (quantization oq, dtype dt) after its
 * fused RELU/CLIP post-ops; false if a post-op is not such a clamp. */
bool osp__q8_post_range(const osp_node_t *n, const osp_quant_t *oq,
                        osp_dtype_t dt, int32_t *qmin, int32_t *qmax);
/* Stores v (already clamped into the dtype's range) at index i. */
static inline void osp__q8_store(osp_dtype_t dt, void *p, size_t i,
                                 int32_t v) {
    if (dt == OSP_DT_U8)
        ((uint8_t *)p)[i] = (uint8_t)v;
    else
        ((int8_t *)p)[i] = (int8_t)v;
}
/* TFLite's quantized MEAN of `count` values, from their int32 sum: the
 * reference's (ref_q8arith.c) and the NHWC plan step's (q8_mean.c). */
typedef struct osp__q8_mean_req_s {
    int32_t mult, tmin, tmax;
    int shift;
    int64_t bias;
} osp__q8_mean_req_t;
osp__q8_mean_req_t osp__q8_mean_req(const osp_quant_t *xq, const osp_quant_t *yq,
                                    int64_t count, osp_dtype_t ydt);
int32_t osp__q8_mean_out(const osp__q8_mean_req_t *r, int32_t sum);
/* x[i] − zp into int16 for n elements of an 8-bit tensor. */
void osp__q8_widen(const osp_tensor_t *t, size_t i0, size_t n, int32_t zp,
                   int16_t *dst);

/* CONV (any group, 2-D) and GEMM (FULLY_CONNECTED) — ref_q8conv.c. */
bool osp__ref_q8conv_covers(const osp_graph_t *g, const osp_node_t *n,
                       const osp_tensor_t *in, const osp_tensor_t *out,
                       size_t *scratch_bytes);
int osp__ref_q8conv_run(const osp_graph_t *g, const osp_node_t *n,
                   const osp_tensor_t *in, osp_tensor_t *out, void *scratch,
                   osp_err_t *err);
bool osp__ref_q8gemm_covers(const osp_graph_t *g, const osp_node_t *n,
                       const osp_tensor_t *in, const osp_tensor_t *out,
                       size_t *scratch_bytes);
int osp__ref_q8gemm_run(const osp_graph_t *g, const osp_node_t *n,
                   const osp_tensor_t *in, osp_tensor_t *out, void *scratch,
                   osp_err_t *err);

#endif
