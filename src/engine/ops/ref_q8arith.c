/* ref_q8arith.c — integer kernels for quantized ADD, AVERAGE_POOL_2D, MEAN,
 * requantizing QUANTIZE and standalone RELU/CLIP with TFLite semantics, the
 * 8-bit helpers shared with ref_q8conv.c, and the dispatcher that decides
 * which quantized nodes run in integers (ref_q8.h).
 *
 * The formulas follow TFLite's published reference semantics:
 *   ADD:     both inputs are shifted left by 20 bits, scaled to a common
 *            scale 2·max(s1, s2) with their own fixed-point multipliers
 *            (high multiply, then a flooring shift as LiteRT's x86 kernel
 *            does), summed, and rescaled to the output;
 *   AVGPOOL: sum of the valid window pixels, (sum ± count/2) / count with C
 *            truncation (uint8: +count/2; int8: away from zero), clamped;
 *            input and output quantization must be equal (TFLite's rule);
 *   MEAN:    raw sum over the reduced elements times the multiplier of
 *            sx/(count·sy), plus zy − round(zx·sx/sy) (TFLite's optimized
 *            spatial mean, scales in float);
 *   QUANTIZE (int → int): zy + MultiplyByQuantizedMultiplier(x − zx, sx/sy).
 * Data-movement ops on quantized tensors with identical input and output
 * quantization run the plain integer kernel (no dequantize round trip). */
#include <string.h>

#include "engine/int8/q8_math.h"
#include "engine/ops/ref_q8.h"

/* ---- helpers ------------------------------------------------------------ */

const osp_quant_t *osp__q8_tensor(const osp_graph_t *g, int v,
                                  const osp_tensor_t *t) {
    if (v < 0 || !g->values[v].quant || g->values[v].quant->count != 1)
        return NULL;
    if (t->dtype != OSP_DT_U8 && t->dtype != OSP_DT_S8)
        return NULL;
    if (!g->values[v].quant->zero_point || !(g->values[v].quant->scale[0] > 0))
        return NULL;
    return g->values[v].quant;
}

void osp__q8_type_range(osp_dtype_t dt, int32_t *tmin, int32_t *tmax) {
    *tmin = dt == OSP_DT_U8 ? 0 : -128;
    *tmax = dt == OSP_DT_U8 ? 255 : 127;
}

bool osp__q8_post_range(const osp_node_t *n, const osp_quant_t *oq,
                        osp_dtype_t dt, int32_t *qmin, int32_t *qmax) {
    int32_t tmin, tmax;
    osp__q8_type_range(dt, &tmin, &tmax);
    *qmin = tmin;
    *qmax = tmax;
    for (int k = 0; k < n->n_post; k++) {
        const osp_post_op_t *p = &n->post[k];
        if (p->kind != OSP_POST_ACT)
            return false;
        float lo, hi;
        if (p->act == OSP_ACT_RELU) {
            lo = 0.f;
            hi = INFINITY;
        } else if (p->act == OSP_ACT_CLIP) {
            lo = p->alpha;
            hi = p->beta;
        } else {
            return false;
        }
        int32_t a, b;
        osp__q8_act_range(lo, hi, oq->scale[0], oq->zero_point[0], tmin, tmax,
                        &a, &b);
        /* successive clamps intersect */
        *qmin = a > *qmin ? a : *qmin;
        *qmax = b < *qmax ? b : *qmax;
    }
    if (*qmin > *qmax)
        *qmin = *qmax;
    return true;
}

void osp__q8_widen(const osp_tensor_t *t, size_t i0, size_t n, int32_t zp,
                   int16_t *dst) {
    if (t->dtype == OSP_DT_U8) {
        const uint8_t *s = (const uint8_t *)t->data + i0;
        for (size_t i = 0; i < n; i++)
            dst[i] = (int16_t)((int32_t)s[i] - zp);
    } else {
        const int8_t *s = (const int8_t *)t->data + i0;
        for (size_t i = 0; i < n; i++)
            dst[i] = (int16_t)((int32_t)s[i] - zp);
    }
}

static inline int32_t load8(osp_dtype_t dt, const void *p, size_t i) {
    return dt == OSP_DT_U8 ? (int32_t)((const uint8_t *)p)[i]
                           : (int32_t)((const int8_t *)p)[i];
}

static inline int32_t clamp32(int64_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

static bool same_quant(const osp_quant_t *a, const osp_quant_t *b) {
    return a && b && a->scale[0] == b->scale[0] &&
           a->zero_point[0] == b->zero_point[0];
}

static bool same_dims(const osp_tensor_t *a, const osp_tensor_t *b) {
    return osp__ir_same_dims(a->rank, a->dims, b->rank, b->dims);
}

/* Output 0 and input 0 both 8-bit per-tensor quantized with equal dtype. */
static bool io_q8(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, const osp_tensor_t *out,
                  const osp_quant_t **xq, const osp_quant_t **yq) {
    if (n->n_in < 1 || n->n_out != 1)
        return false;
    *xq = osp__q8_tensor(g, n->in[0], &in[0]);
    *yq = osp__q8_tensor(g, n->out[0], &out[0]);
    return *xq && *yq && in[0].dtype == out[0].dtype;
}

/* ---- ADD ---------------------------------------------------------------- */

enum { ADD_LEFT_SHIFT = 20 }; /* TFLite's headroom for 8-bit inputs */

/* An ADD input scaled to the common scale: the high multiply, then a
 * plain arithmetic right shift (floor) — what LiteRT's optimized x86 ADD
 * computes (measured: the reference kernel's rounding shift differs on
 * rare ties, and those ties reach the logits). The output stage rounds as
 * the reference does. */
static inline int32_t add_scale_input(int32_t x, int32_t mult, int shift) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t xs = (int64_t)x * ((int64_t)1 << left);
    xs = xs > INT32_MAX ? INT32_MAX : xs < INT32_MIN ? INT32_MIN : xs;
    int32_t h = osp__q8_srdhm((int32_t)xs, mult);
    return right > 0 ? (int32_t)((int64_t)h >> (right > 31 ? 31 : right))
                     : h;
}

static bool qadd_covers(const osp_graph_t *g, const osp_node_t *n,
                        const osp_tensor_t *in, const osp_tensor_t *out) {
    int32_t lo, hi; /* a fused RELU/CLIP (osprey's quantized float models) */
    if (n->n_in != 2 || n->n_out != 1)
        return false;
    /* each operand and the output in its own 8-bit type (TFLite's are
     * all one type; osprey's quantized float models mix u8 and s8) */
    const osp_quant_t *aq = osp__q8_tensor(g, n->in[0], &in[0]);
    const osp_quant_t *bq = osp__q8_tensor(g, n->in[1], &in[1]);
    const osp_quant_t *yq = osp__q8_tensor(g, n->out[0], &out[0]);
    if (!aq || !yq || !osp__q8_post_range(n, yq, out[0].dtype, &lo, &hi))
        return false;
    return bq && in[1].data &&
           same_dims(&in[0], &out[0]) && same_dims(&in[1], &out[0]);
}

static int qadd_run(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out) {
    const osp_quant_t *aq = g->values[n->in[0]].quant;
    const osp_quant_t *bq = g->values[n->in[1]].quant;
    const osp_quant_t *yq = g->values[n->out[0]].quant;
    double sa = aq->scale[0], sb = bq->scale[0], sy = yq->scale[0];
    double twice_max = 2.0 * (sa > sb ? sa : sb);
    int32_t ma, mb, my;
    int ea, eb, ey;
    osp__q8_quantize_multiplier(sa / twice_max, &ma, &ea);
    osp__q8_quantize_multiplier(sb / twice_max, &mb, &eb);
    osp__q8_quantize_multiplier(twice_max / ((double)(1 << ADD_LEFT_SHIFT) * sy),
                              &my, &ey);
    int32_t za = aq->zero_point[0], zb = bq->zero_point[0];
    int32_t zy = yq->zero_point[0];
    int32_t tmin, tmax;
    if (!osp__q8_post_range(n, yq, out[0].dtype, &tmin, &tmax))
        return OSP_EUNSUPPORTED; /* qadd_covers checked it */
    osp_dtype_t dta = in[0].dtype, dtb = in[1].dtype;
    size_t cnt = osp_tensor_numel(&out[0]);
    for (size_t i = 0; i < cnt; i++) {
        int32_t a = (load8(dta, in[0].data, i) - za) * (1 << ADD_LEFT_SHIFT);
        int32_t b = (load8(dtb, in[1].data, i) - zb) * (1 << ADD_LEFT_SHIFT);
        int32_t s = add_scale_input(a, ma, ea) + add_scale_input(b, mb, eb);
        int64_t y = (int64_t)osp__q8_mul_by_multiplier(s, my, ey) + zy;
        osp__q8_store(out[0].dtype, out[0].data, i, clamp32(y, tmin, tmax));
    }
    return 0;
}

/* ---- AVERAGE_POOL_2D ------------------------------------------------------ */

static bool qavg_covers(const osp_graph_t *g, const osp_node_t *n,
                        const osp_tensor_t *in, const osp_tensor_t *out) {
    const osp_quant_t *xq, *yq;
    const osp_pool_params_t *p = &n->p.pool;
    if (n->n_post || !io_q8(g, n, in, out, &xq, &yq) || !same_quant(xq, yq) ||
        p->ceil_mode || p->count_include_pad || p->win.n_spatial != 2 ||
        in[0].rank != 4 || out[0].rank != 4)
        return false;
    osp_window_t w = p->win;
    int64_t osz[2];
    if (osp_window_resolve(&w, &in[0].dims[2], NULL, false, osz, NULL) < 0)
        return false;
    return out[0].dims[0] == in[0].dims[0] &&
           out[0].dims[1] == in[0].dims[1] && out[0].dims[2] == osz[0] &&
           out[0].dims[3] == osz[1];
}

/* TFLite's integer average: uint8 rounds half up, int8 half away from 0. */
static inline int32_t avg_round(int32_t sum, int32_t cnt, bool is_signed) {
    if (!is_signed || sum >= 0)
        return (sum + cnt / 2) / cnt;
    return (sum - cnt / 2) / cnt;
}

static int qavg_run(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out,
                    osp_err_t *err) {
    (void)g;
    osp_window_t w = n->p.pool.win;
    int64_t osz[2];
    int rc = osp_window_resolve(&w, &in[0].dims[2], NULL, false, osz, err);
    if (rc < 0)
        return rc;
    int64_t nb = in[0].dims[0], c = in[0].dims[1], h = in[0].dims[2],
            wd = in[0].dims[3];
    osp_dtype_t dt = in[0].dtype;
    bool sgn = dt == OSP_DT_S8;
    size_t k = 0;
    for (int64_t pl = 0; pl < nb * c; pl++) {
        size_t base = (size_t)(pl * h * wd);
        for (int64_t oy = 0; oy < osz[0]; oy++) {
            int64_t y0 = oy * w.stride[0] - w.pad_begin[0];
            int64_t y1 = y0 + w.kernel[0];
            y0 = y0 < 0 ? 0 : y0;
            y1 = y1 > h ? h : y1;
            for (int64_t ox = 0; ox < osz[1]; ox++, k++) {
                int64_t x0 = ox * w.stride[1] - w.pad_begin[1];
                int64_t x1 = x0 + w.kernel[1];
                x0 = x0 < 0 ? 0 : x0;
                x1 = x1 > wd ? wd : x1;
                int32_t sum = 0, cnt = 0;
                for (int64_t y = y0; y < y1; y++)
                    for (int64_t x = x0; x < x1; x++, cnt++)
                        sum += load8(dt, in[0].data,
                                     base + (size_t)(y * wd + x));
                int32_t v = cnt ? avg_round(sum, cnt, sgn) : 0;
                osp__q8_store(dt, out[0].data, k, v);
            }
        }
    }
    return 0;
}

/* ---- MEAN (REDUCE_MEAN over trailing contiguous axes) ------------------- */

/* The reduced axes must be a trailing block of the input (NCHW spatial axes
 * {2,3} for TFLite's spatial mean); returns the block's first axis or -1. */
static int mean_block(const osp_node_t *n, const osp_tensor_t *x) {
    int64_t axes[OSP_MAX_RANK];
    int na = osp__node_axes(n, NULL, axes);
    if (na <= 0 || na > x->rank)
        return -1;
    bool red[OSP_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        int a = osp_norm_axis(axes[i], x->rank);
        if (a < 0 || red[a])
            return -1;
        red[a] = true;
    }
    int first = x->rank - na;
    for (int i = first; i < x->rank; i++)
        if (!red[i])
            return -1;
    return first;
}

static bool qmean_covers(const osp_graph_t *g, const osp_node_t *n,
                         const osp_tensor_t *in, const osp_tensor_t *out) {
    const osp_quant_t *xq, *yq;
    if (n->n_post || !n->p.axes.has_axes || !io_q8(g, n, in, out, &xq, &yq))
        return false;
    int first = mean_block(n, &in[0]);
    if (first < 0)
        return false;
    int64_t inner = 1;
    for (int i = first; i < in[0].rank; i++)
        inner *= in[0].dims[i];
    return inner > 0 && inner < (1 << 23) &&
           osp_tensor_numel(&out[0]) * (size_t)inner ==
               osp_tensor_numel(&in[0]);
}

/* TFLite's optimized spatial mean: the raw sum times the multiplier of
 * sx / (count · sy), plus a bias zy − round(zx · sx / sy); both computed
 * in float as TFLite does, the rounding of the bias half away from zero,
 * the multiply's final shift half up. */
osp__q8_mean_req_t osp__q8_mean_req(const osp_quant_t *xq, const osp_quant_t *yq,
                                    int64_t count, osp_dtype_t ydt) {
    osp__q8_mean_req_t r;
    float sx = xq->scale[0], sy = yq->scale[0];
    float real = sx / ((float)count * sy);
    osp__q8_quantize_multiplier((double)real, &r.mult, &r.shift);
    float t = (float)xq->zero_point[0] * sx / sy;
    t = t > 0 ? t + 0.5f : t - 0.5f;
    r.bias = (int64_t)yq->zero_point[0] - (int64_t)t;
    osp__q8_type_range(ydt, &r.tmin, &r.tmax);
    return r;
}

int32_t osp__q8_mean_out(const osp__q8_mean_req_t *r, int32_t sum) {
    int64_t y = (int64_t)osp__q8_mul_by_multiplier_up(sum, r->mult, r->shift) +
                r->bias;
    return clamp32(y, r->tmin, r->tmax);
}

static int qmean_run(const osp_graph_t *g, const osp_node_t *n,
                     const osp_tensor_t *in, osp_tensor_t *out) {
    const osp_quant_t *xq = g->values[n->in[0]].quant;
    const osp_quant_t *yq = g->values[n->out[0]].quant;
    int first = mean_block(n, &in[0]);
    int64_t inner = 1;
    for (int i = first; i < in[0].rank; i++)
        inner *= in[0].dims[i];
    osp__q8_mean_req_t req = osp__q8_mean_req(xq, yq, inner, out[0].dtype);
    osp_dtype_t dt = in[0].dtype;
    size_t outer = osp_tensor_numel(&out[0]);
    for (size_t o = 0; o < outer; o++) {
        int32_t acc = 0;
        size_t base = o * (size_t)inner;
        /* Typed loops that vectorise: this mean is a model's global pool
         * (ResNet50: 2048 channels x 49 pixels per image), ~2% of a batch
         * when summed one load8() at a time. Integer sums: the same result
         * in any order. */
        if (dt == OSP_DT_U8) {
            const uint8_t *p = (const uint8_t *)in[0].data + base;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < inner; i++)
                acc += p[i];
        } else {
            const int8_t *p = (const int8_t *)in[0].data + base;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < inner; i++)
                acc += p[i];
        }
        osp__q8_store(out[0].dtype, out[0].data, o, osp__q8_mean_out(&req, acc));
    }
    return 0;
}

/* ---- QUANTIZE int8/uint8 → int8/uint8 (requantize) ---------------------- */

static bool qrequant_covers(const osp_graph_t *g, const osp_node_t *n,
                            const osp_tensor_t *in, const osp_tensor_t *out) {
    if (n->n_in != 1 || n->n_out != 1)
        return false;
    return osp__q8_tensor(g, n->in[0], &in[0]) &&
           osp__q8_tensor(g, n->out[0], &out[0]);
}

static int qrequant_run(const osp_graph_t *g, const osp_node_t *n,
                        const osp_tensor_t *in, osp_tensor_t *out) {
    const osp_quant_t *xq = g->values[n->in[0]].quant;
    const osp_quant_t *yq = g->values[n->out[0]].quant;
    int32_t mult;
    int shift;
    osp__q8_quantize_multiplier((double)xq->scale[0] / (double)yq->scale[0],
                              &mult, &shift);
    int32_t zx = xq->zero_point[0], zy = yq->zero_point[0];
    int32_t tmin, tmax;
    osp__q8_type_range(out[0].dtype, &tmin, &tmax);
    size_t cnt = osp_tensor_numel(&in[0]);
    for (size_t i = 0; i < cnt; i++) {
        int32_t x = load8(in[0].dtype, in[0].data, i) - zx;
        int64_t y = (int64_t)osp__q8_mul_by_multiplier(x, mult, shift) + zy;
        osp__q8_store(out[0].dtype, out[0].data, i, clamp32(y, tmin, tmax));
    }
    return 0;
}

/* ---- RELU / CLIP on a quantized tensor (same quantization in and out) --- */

static bool qclamp_range(const osp_graph_t *g, const osp_node_t *n,
                         const osp_tensor_t *in, const osp_tensor_t *out,
                         int32_t *lo, int32_t *hi) {
    const osp_quant_t *xq, *yq;
    if (n->n_post || !io_q8(g, n, in, out, &xq, &yq) || !same_quant(xq, yq))
        return false;
    float a = 0.f, b = INFINITY;
    if (n->op == OSP_OP_CLIP) {
        if (osp__has_in(n, 1) || osp__has_in(n, 2))
            return false; /* bounds as inputs: not TFLite's form */
        a = n->p.act.alpha;
        b = n->p.act.beta;
    }
    int32_t tmin, tmax;
    osp__q8_type_range(out[0].dtype, &tmin, &tmax);
    osp__q8_act_range(a, b, yq->scale[0], yq->zero_point[0], tmin, tmax, lo, hi);
    if (*lo > *hi)
        *lo = *hi;
    return true;
}

static int qclamp_run(const osp_graph_t *g, const osp_node_t *n,
                      const osp_tensor_t *in, osp_tensor_t *out,
                      osp_err_t *err) {
    int32_t lo, hi;
    if (!qclamp_range(g, n, in, out, &lo, &hi))
        return osp__node_err(err, OSP_EINTERNAL, n, "integer clamp");
    size_t cnt = osp_tensor_numel(&in[0]);
    for (size_t i = 0; i < cnt; i++)
        osp__q8_store(out[0].dtype, out[0].data, i,
                      clamp32(load8(in[0].dtype, in[0].data, i), lo, hi));
    return 0;
}

/* ---- dispatch ----------------------------------------------------------- */

/* Data movement (and max pooling) is exact on the integers themselves when
 * input and output share their quantization. */
static bool qmove_covers(const osp_graph_t *g, const osp_node_t *n,
                         const osp_tensor_t *in, const osp_tensor_t *out) {
    const osp_quant_t *xq, *yq;
    return n->n_post == 0 && io_q8(g, n, in, out, &xq, &yq) &&
           same_quant(xq, yq);
}

bool osp__ref_q8_covers(const osp_graph_t *g, const osp_node_t *n,
                      const osp_tensor_t *in, const osp_tensor_t *out,
                      size_t *scratch_bytes) {
    *scratch_bytes = 0;
    if (n->n_out < 1 || n->out[0] < 0)
        return false;
    switch (n->op) {
    case OSP_OP_CONV:
        return osp__ref_q8conv_covers(g, n, in, out, scratch_bytes);
    case OSP_OP_GEMM:
        return osp__ref_q8gemm_covers(g, n, in, out, scratch_bytes);
    case OSP_OP_ADD:
        return qadd_covers(g, n, in, out);
    case OSP_OP_AVGPOOL:
        return qavg_covers(g, n, in, out);
    case OSP_OP_REDUCE_MEAN:
        return qmean_covers(g, n, in, out);
    case OSP_OP_QUANTIZE:
        return qrequant_covers(g, n, in, out);
    case OSP_OP_RELU:
    case OSP_OP_CLIP: {
        int32_t lo, hi;
        return qclamp_range(g, n, in, out, &lo, &hi);
    }
    case OSP_OP_FLATTEN:
    case OSP_OP_RESHAPE:
    case OSP_OP_SQUEEZE:
    case OSP_OP_UNSQUEEZE:
    case OSP_OP_IDENTITY:
    case OSP_OP_TRANSPOSE:
    case OSP_OP_MAXPOOL:
        return qmove_covers(g, n, in, out);
    default:
        return false;
    }
}

int osp__ref_q8_run(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, void *scratch,
                  size_t scratch_bytes, osp_err_t *err) {
    size_t need = 0;
    if (!osp__ref_q8_covers(g, n, in, out, &need))
        return osp__node_err(err, OSP_EINTERNAL, n,
                             "not an integer-kernel node");
    if (need > 0 && (!scratch || scratch_bytes < need ||
                     ((uintptr_t)scratch % 4) != 0))
        return osp__node_err(err, OSP_EINVAL, n,
                             "needs %zu bytes of aligned scratch, got %zu",
                             need, scratch ? scratch_bytes : 0);
    switch (n->op) {
    case OSP_OP_CONV:
        return osp__ref_q8conv_run(g, n, in, out, scratch, err);
    case OSP_OP_GEMM:
        return osp__ref_q8gemm_run(g, n, in, out, scratch, err);
    case OSP_OP_ADD:
        return qadd_run(g, n, in, out);
    case OSP_OP_AVGPOOL:
        return qavg_run(g, n, in, out, err);
    case OSP_OP_REDUCE_MEAN:
        return qmean_run(g, n, in, out);
    case OSP_OP_QUANTIZE:
        return qrequant_run(g, n, in, out);
    case OSP_OP_RELU:
    case OSP_OP_CLIP:
        return qclamp_run(g, n, in, out, err);
    case OSP_OP_TRANSPOSE:
        return osp__ref_transpose(g, n, in, out, err);
    case OSP_OP_MAXPOOL:
        return osp__ref_pool(g, n, in, out, err);
    default:
        return osp__ref_copy(g, n, in, out, err);
    }
}
