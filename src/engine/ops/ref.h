/* ref.h — helpers shared by shape inference (shape.c), constant folding
 * (fold.c) and the reference kernels (ref_*.c), and the pieces of them the
 * oneDNN executor reuses: conv/pool window resolution (auto_pad → explicit
 * pads, output sizes), numpy broadcasting of shapes, axis normalisation,
 * scalar dtype conversions and activation functions.
 *
 * Private to src/engine. The contract for the ops themselves is kernels.h;
 * this header only exposes the building blocks so that the executor computes
 * exactly the same sizes and pads as the reference (one source of truth). */
#ifndef OSPREY_ENGINE_REF_H
#define OSPREY_ENGINE_REF_H

#include "engine/ir/ir.h"
#include "engine/ops/kernels.h"

/* ---- windows (CONV, MAXPOOL, AVGPOOL) ---------------------------------- */

/* Resolves a conv/pool window against concrete input spatial sizes, ONNX
 * style, and rewrites *w in place so that it is fully explicit:
 *   - kernel: taken from `kernel` (n_spatial entries; the conv weight's
 *     spatial dims) when non-NULL, else from w->kernel (must be > 0);
 *   - stride/dilation: 0 becomes the default 1;
 *   - auto_pad SAME_UPPER/SAME_LOWER/VALID becomes explicit pad_begin/
 *     pad_end and w->auto_pad = OSP_PAD_EXPLICIT.
 * out_spatial[i] receives the output size: floor((in + pb + pe - dk)/s) + 1
 * where dk = (k-1)*dilation + 1, or with ceil_mode the ceiling, minus one if
 * the last window would start inside the end padding (PyTorch/ORT rule).
 * SAME_* gives ceil(in/s) (pads total = max(0, (out-1)*s + dk - in); UPPER
 * puts the odd one at the end, LOWER at the beginning); VALID gives
 * ceil((in - dk + 1)/s).
 * With ceil_mode the last window may overhang pad_end by
 * osp_window_overhang(); the pads are NOT enlarged for it, because
 * AveragePool's count_include_pad counts only the declared padding (a oneDNN
 * executor that needs pad_end large enough for the output must add the
 * overhang itself and handle the divisor). Errors: OSP_ESHAPE when the kernel
 * is missing/non-positive, pads are negative or the output would be empty;
 * OSP_ELIMIT for sizes/pads/strides beyond 2^40; the message does not name
 * the node (callers prefix it). in_spatial must be concrete (>= 0). */
int osp_window_resolve(osp_window_t *w, const int64_t *in_spatial,
                       const int64_t *kernel, bool ceil_mode,
                       int64_t *out_spatial, osp_err_t *err);
/* Elements by which the last window of an already-resolved window reaches
 * past in + pad_begin + pad_end along spatial dim i (0 unless ceil_mode). */
int64_t osp_window_overhang(const osp_window_t *w, int i, int64_t in,
                            int64_t out);

/* ---- shapes ---------------------------------------------------------- */

/* Numpy (multidirectional) broadcasting of two shapes; -1 (dynamic) dims
 * broadcast against 1 to -1 and against d to d. Returns 0, or -1 when the
 * shapes are incompatible. out has room for OSP_MAX_RANK dims. */
int osp_broadcast_shapes(const int64_t *a, int ra, const int64_t *b, int rb,
                         int64_t *out, int *rout);
/* Maps axis in [-rank, rank) to [0, rank); returns -1 when out of range. */
int osp_norm_axis(int64_t axis, int rank);

/* A tensor view of a value (data NULL unless constant; name = value name). */
osp_tensor_t osp_value_tensor(const osp_value_t *v);

/* ---- scalars ------------------------------------------------------------ */

float osp__ref_bf16_to_f32(uint16_t h);
uint16_t osp__ref_f32_to_bf16(float f); /* round to nearest even, NaN kept */
float osp__ref_f16_to_f32(uint16_t h);
uint16_t osp__ref_f32_to_f16(float f); /* round to nearest even */
/* Element i of a tensor of any numeric dtype, as int64 / double. */
int64_t osp_tensor_get_i64(const osp_tensor_t *t, size_t i);
double osp_tensor_get_f64(const osp_tensor_t *t, size_t i);
/* Reads a small integer tensor (any int dtype, rank <= 1) into out[max].
 * Returns the element count or -1 if it does not fit / is not integer. */
int osp_tensor_read_ints(const osp_tensor_t *t, int64_t *out, int max);

/* Applies activation `a` in place to n floats (alpha/beta as in ir.h). */
void osp_ref_act_f32(osp_act_t a, float alpha, float beta, float *x,
                     size_t n);

/* ---- internal: per-op kernels (ref_*.c), dispatched by ref.c ------------ */

typedef int (*osp__ref_fn)(const osp_graph_t *g, const osp_node_t *n,
                           const osp_tensor_t *in, osp_tensor_t *out,
                           osp_err_t *err);

int osp__ref_conv(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_pool(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_global_pool(const osp_graph_t *g, const osp_node_t *n,
                         const osp_tensor_t *in, osp_tensor_t *out,
                         osp_err_t *err);
int osp__ref_act(const osp_graph_t *g, const osp_node_t *n,
                 const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_binary(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_gemm(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_matmul(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
/* FLATTEN, RESHAPE, SQUEEZE, UNSQUEEZE, IDENTITY: a copy of the data. */
int osp__ref_copy(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_concat(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_shape(const osp_graph_t *g, const osp_node_t *n,
                   const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_gather(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_transpose(const osp_graph_t *g, const osp_node_t *n,
                       const osp_tensor_t *in, osp_tensor_t *out,
                       osp_err_t *err);
int osp__ref_pad(const osp_graph_t *g, const osp_node_t *n,
                 const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_cast(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_batchnorm(const osp_graph_t *g, const osp_node_t *n,
                       const osp_tensor_t *in, osp_tensor_t *out,
                       osp_err_t *err);
int osp__ref_lrn(const osp_graph_t *g, const osp_node_t *n,
                 const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err);
int osp__ref_softmax(const osp_graph_t *g, const osp_node_t *n,
                     const osp_tensor_t *in, osp_tensor_t *out,
                     osp_err_t *err);
int osp__ref_reduce_mean(const osp_graph_t *g, const osp_node_t *n,
                         const osp_tensor_t *in, osp_tensor_t *out,
                         osp_err_t *err);
int osp__ref_quantize(const osp_graph_t *g, const osp_node_t *n,
                      const osp_tensor_t *in, osp_tensor_t *out,
                      osp_err_t *err);
int osp__ref_dequantize(const osp_graph_t *g, const osp_node_t *n,
                        const osp_tensor_t *in, osp_tensor_t *out,
                        osp_err_t *err);

/* y[i*ldy + j] += alpha * sum_p A(i,p) * B(p,j) for i < m, j < nn, p < k,
 * with A(i,p) = a[i*ars + p*acs] and B(p,j) = b[p*brs + j*bcs]
 * (ref_linalg.c; shared with the 1x1 conv path). */
void osp__ref_sgemm_acc(int64_t m, int64_t nn, int64_t k, float alpha,
                        const float *a, int64_t ars, int64_t acs,
                        const float *b, int64_t brs, int64_t bcs, float *y,
                        int64_t ldy);

/* Applies n->post[] to the f32 output out[0] (ref.c). */
int osp__ref_post_ops(const osp_node_t *n, const osp_tensor_t *in,
                      osp_tensor_t *out, osp_err_t *err);
/* Sets err to "node '<name>' (<OP>): <message>" and returns code. */
int osp__node_err(osp_err_t *err, int code, const osp_node_t *n,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Rejects params whose counts would index past their arrays (n_axes,
 * n_pads, n_post): importers validate, but the IR is not trusted here. */
int osp__check_params(const osp_node_t *n, osp_err_t *err);
/* Whether node input i is present (index >= 0 and within n_in). */
static inline bool osp__has_in(const osp_node_t *n, int i) {
    return i < n->n_in && n->in[i] >= 0;
}
/* Resolves the effective axes of SQUEEZE/UNSQUEEZE/REDUCE_MEAN: from the
 * params when has_axes, else from input 1 (tensor t1; NULL/empty = none).
 * Returns count (>= 0), or -1 if input 1 is present but has no data. */
int osp__node_axes(const osp_node_t *n, const osp_tensor_t *t1,
                   int64_t *axes);
/* Effective SHAPE slice [*start, *end) of an input of rank r (opset 15
 * start/end in p.axes.axes[0..1] when has_axes, as the importer sets). */
void osp__shape_range(const osp_node_t *n, int r, int *start, int *end);

#endif
