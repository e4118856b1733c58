/* ref.c — the reference-kernel front door: osp_ref_run_node() dispatch,
 * osp_ref_supports(), fused post-ops, activation functions and the scalar
 * dtype helpers shared by all ref_*.c files (see kernels.h and ref.h).
 *
 * The per-op kernels live in ref_<concept>.c; this file only validates what
 * every op needs (present data, sane arity) and routes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops/ref.h"
#include "engine/ops/ref_q8.h"

/* ---- scalar conversions ------------------------------------------------- */

float osp__ref_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t osp__ref_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float osp__ref_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    int exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ffu;
    float f;
    if (exp == 0) { /* zero / subnormal */
        f = ldexpf((float)man, -24);
    } else if (exp == 31) {
        f = man ? NAN : INFINITY;
    } else {
        f = ldexpf((float)(man | 0x400u), exp - 25);
    }
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u |= sign;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t osp__ref_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    float a = fabsf(f);
    if (isnan(f))
        return (uint16_t)(sign | 0x7e00u);
    if (a >= 65520.0f) /* rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 6.103515625e-05f) { /* subnormal: units of 2^-24 */
        float q = nearbyintf(a * 16777216.0f);
        return (uint16_t)(sign | (uint16_t)q);
    }
    int e;
    float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    float q = nearbyintf(m * 2048.0f); /* 11 significant bits */
    if (q >= 2048.0f) {
        q /= 2.0f;
        e++;
    }
    int exp = e - 1 + 15;
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    return (uint16_t)(sign | (uint16_t)(exp << 10) |
                      ((uint16_t)q & 0x3ffu));
}

int64_t osp_tensor_get_i64(const osp_tensor_t *t, size_t i) {
    switch (t->dtype) {
    case OSP_DT_S64:
        return ((const int64_t *)t->data)[i];
    case OSP_DT_S32:
        return ((const int32_t *)t->data)[i];
    case OSP_DT_U8:
    case OSP_DT_BOOL:
        return ((const uint8_t *)t->data)[i];
    case OSP_DT_S8:
        return ((const int8_t *)t->data)[i];
    default: {
        double d = osp_tensor_get_f64(t, i);
        if (!(d > -9.2e18 && d < 9.2e18))
            return d > 0 ? INT64_MAX : d < 0 ? INT64_MIN : 0;
        return (int64_t)d;
    }
    }
}

double osp_tensor_get_f64(const osp_tensor_t *t, size_t i) {
    switch (t->dtype) {
    case OSP_DT_F32:
        return ((const float *)t->data)[i];
    case OSP_DT_BF16:
        return osp__ref_bf16_to_f32(((const uint16_t *)t->data)[i]);
    case OSP_DT_F16:
        return osp__ref_f16_to_f32(((const uint16_t *)t->data)[i]);
    case OSP_DT_UNDEF:
    case OSP_DT_COUNT:
        return 0;
    default:
        return (double)osp_tensor_get_i64(t, i);
    }
}

int osp_tensor_read_ints(const osp_tensor_t *t, int64_t *out, int max) {
    if (!t->data || t->rank > 1)
        return -1;
    if (t->dtype != OSP_DT_S64 && t->dtype != OSP_DT_S32 &&
        t->dtype != OSP_DT_S8 && t->dtype != OSP_DT_U8)
        return -1;
    size_t n = osp_tensor_numel(t);
    if (n > (size_t)max)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = osp_tensor_get_i64(t, i);
    return (int)n;
}

/* ---- activations and post-ops ------------------------------------------ */

void osp_ref_act_f32(osp_act_t a, float alpha, float beta, float *x,
                     size_t n) {
    switch (a) {
    case OSP_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case OSP_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
        break;
    case OSP_ACT_CLIP:
        /* NaN stays NaN (comparisons are false), like fminf/fmaxf would not */
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            v = v < alpha ? alpha : v;
            x[i] = v > beta ? beta : v;
        }
        break;
    case OSP_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            /* split on sign so exp never overflows */
            if (v >= 0.0f)
                x[i] = 1.0f / (1.0f + expf(-v));
            else {
                float e = expf(v);
                x[i] = e / (1.0f + e);
            }
        }
        break;
    case OSP_ACT_HARD_SIGMOID:
        for (size_t i = 0; i < n; i++) {
            float v = alpha * x[i] + beta;
            x[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
        break;
    case OSP_ACT_HARD_SWISH:
        for (size_t i = 0; i < n; i++) {
            float v = x[i] / 6.0f + 0.5f;
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            x[i] = x[i] * v;
        }
        break;
    default:
        break;
    }
}

int osp__ref_post_ops(const osp_node_t *n, const osp_tensor_t *in,
                      osp_tensor_t *out, osp_err_t *err) {
    if (n->n_post == 0)
        return 0;
    if (out[0].dtype != OSP_DT_F32)
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "post-ops on %s output",
                             osp_dtype_name(out[0].dtype));
    float *y = out[0].data;
    size_t cnt = osp_tensor_numel(&out[0]);
    for (int k = 0; k < n->n_post; k++) {
        const osp_post_op_t *p = &n->post[k];
        if (p->kind == OSP_POST_ACT) {
            if (p->act <= OSP_ACT_NONE || p->act >= OSP_ACT_COUNT)
                return osp__node_err(err, OSP_EUNSUPPORTED, n,
                                     "post-op activation %d", (int)p->act);
            osp_ref_act_f32(p->act, p->alpha, p->beta, y, cnt);
        } else if (p->kind == OSP_POST_SUM) {
            int j = n->n_in - 1; /* the summand is normally the last input */
            while (j >= 0 && n->in[j] != p->sum_value)
                j--;
            if (j < 0)
                return osp__node_err(err, OSP_EINTERNAL, n,
                                     "sum post-op value %d is not an input",
                                     p->sum_value);
            const osp_tensor_t *s = &in[j];
            if (s->dtype != OSP_DT_F32 || !s->data ||
                osp_tensor_numel(s) != cnt)
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "sum post-op operand must be f32 with "
                                     "%zu elements",
                                     cnt);
            const float *sv = s->data;
            for (size_t i = 0; i < cnt; i++)
                y[i] += sv[i];
        } else {
            return osp__node_err(err, OSP_EUNSUPPORTED, n, "post-op kind %d",
                                 (int)p->kind);
        }
    }
    return 0;
}

/* ---- dispatch ----------------------------------------------------------- */

static osp__ref_fn ref_fn(osp_op_t op) {
    switch (op) {
    case OSP_OP_CONV:
        return osp__ref_conv;
    case OSP_OP_BATCHNORM:
        return osp__ref_batchnorm;
    case OSP_OP_RELU:
    case OSP_OP_LEAKY_RELU:
    case OSP_OP_CLIP:
    case OSP_OP_SIGMOID:
    case OSP_OP_HARD_SIGMOID:
    case OSP_OP_HARD_SWISH:
        return osp__ref_act;
    case OSP_OP_ADD:
    case OSP_OP_SUB:
    case OSP_OP_MUL:
    case OSP_OP_DIV:
        return osp__ref_binary;
    case OSP_OP_MAXPOOL:
    case OSP_OP_AVGPOOL:
        return osp__ref_pool;
    case OSP_OP_GLOBAL_AVGPOOL:
    case OSP_OP_GLOBAL_MAXPOOL:
        return osp__ref_global_pool;
    case OSP_OP_GEMM:
        return osp__ref_gemm;
    case OSP_OP_MATMUL:
        return osp__ref_matmul;
    case OSP_OP_FLATTEN:
    case OSP_OP_RESHAPE:
    case OSP_OP_SQUEEZE:
    case OSP_OP_UNSQUEEZE:
    case OSP_OP_IDENTITY:
        return osp__ref_copy;
    case OSP_OP_CONCAT:
        return osp__ref_concat;
    case OSP_OP_SOFTMAX:
        return osp__ref_softmax;
    case OSP_OP_SHAPE:
        return osp__ref_shape;
    case OSP_OP_GATHER:
        return osp__ref_gather;
    case OSP_OP_TRANSPOSE:
        return osp__ref_transpose;
    case OSP_OP_PAD:
        return osp__ref_pad;
    case OSP_OP_REDUCE_MEAN:
        return osp__ref_reduce_mean;
    case OSP_OP_LRN:
        return osp__ref_lrn;
    case OSP_OP_QUANTIZE:
        return osp__ref_quantize;
    case OSP_OP_DEQUANTIZE:
        return osp__ref_dequantize;
    case OSP_OP_CAST:
        return osp__ref_cast;
    default:
        return NULL;
    }
}

/* Whether tensor t of node value v is an affine-quantized integer tensor
 * (TFLite style: osp_quant_t on the value). */
static const osp_quant_t *quant_of(const osp_graph_t *g, int v,
                                   const osp_tensor_t *t) {
    if (v < 0 || !g->values[v].quant)
        return NULL;
    if (t->dtype != OSP_DT_U8 && t->dtype != OSP_DT_S8 &&
        t->dtype != OSP_DT_S32)
        return NULL;
    return g->values[v].quant;
}

/* Channel stride for per-axis quantization of t, or 0 for per-tensor;
 * -1 if the quantization does not fit the tensor. */
static int64_t quant_inner(const osp_quant_t *q, const osp_tensor_t *t) {
    if (q->count == 1)
        return 0;
    if (q->axis < 0 || q->axis >= t->rank || t->dims[q->axis] != q->count)
        return -1;
    int64_t inner = 1;
    for (int i = q->axis + 1; i < t->rank; i++)
        inner *= t->dims[i];
    return inner;
}

/* Float elements of scratch, rounded up to 16 (64 bytes) per tensor. */
static size_t round16(size_t cnt) { return (cnt + 15) & ~(size_t)15; }

/* Bytes of float temporaries run_quantized needs. */
static size_t quant_scratch(const osp_graph_t *g, const osp_node_t *n,
                            const osp_tensor_t *in, const osp_tensor_t *out) {
    size_t floats = 0;
    if (n->op != OSP_OP_DEQUANTIZE)
        for (int j = 0; j < n->n_in; j++)
            if (quant_of(g, n->in[j], &in[j]))
                floats += round16(osp_tensor_numel(&in[j]));
    if (n->op != OSP_OP_QUANTIZE)
        for (int j = 0; j < n->n_out; j++)
            if (quant_of(g, n->out[j], &out[j]))
                floats += round16(osp_tensor_numel(&out[j]));
    return floats * sizeof(float);
}

/* The quantized (TFLite) form of a float op: dequantize the quantized
 * inputs, run the float kernel (and post-ops), requantize the quantized
 * outputs with round-half-to-even and saturation. This is the textbook
 * definition, used as the oracle and fallback; TFLite's fixed-point
 * requantization may differ by one step on some elements. The float
 * temporaries come from `scratch` (quant_scratch() bytes, float-aligned). */
static int run_quantized(const osp_graph_t *g, const osp_node_t *n,
                         osp__ref_fn fn, const osp_tensor_t *in,
                         osp_tensor_t *out, float *scratch, osp_err_t *err) {
    enum { MAX_IO = 16 };
    if (n->n_in > MAX_IO || n->n_out > MAX_IO)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "too many inputs");
    osp_tensor_t fin[MAX_IO], fout[MAX_IO];
    float *tmp[2 * MAX_IO] = {NULL};
    float *next = scratch;
    int rc = 0;
    bool deq_in = n->op != OSP_OP_DEQUANTIZE, req_out = n->op != OSP_OP_QUANTIZE;
    for (int j = 0; j < n->n_in && rc == 0; j++) {
        fin[j] = in[j];
        const osp_quant_t *q = deq_in ? quant_of(g, n->in[j], &in[j]) : NULL;
        if (!q)
            continue;
        int64_t inner = quant_inner(q, &in[j]);
        size_t cnt = osp_tensor_numel(&in[j]);
        if (inner < 0) {
            rc = osp__node_err(err, OSP_ESHAPE, n,
                               "input %d quantization (%d scales, axis %d) "
                               "does not fit its shape",
                               j, q->count, q->axis);
            break;
        }
        tmp[j] = next;
        next += round16(cnt);
        for (size_t i = 0; i < cnt; i++) {
            size_t c = inner ? (i / (size_t)inner) % (size_t)q->count : 0;
            tmp[j][i] = q->scale[c] *
                        (float)(osp_tensor_get_i64(&in[j], i) -
                                q->zero_point[c]);
        }
        fin[j].dtype = OSP_DT_F32;
        fin[j].data = tmp[j];
    }
    for (int j = 0; j < n->n_out && rc == 0; j++) {
        fout[j] = out[j];
        const osp_quant_t *q = req_out ? quant_of(g, n->out[j], &out[j]) : NULL;
        if (!q)
            continue;
        tmp[MAX_IO + j] = next;
        next += round16(osp_tensor_numel(&out[j]));
        fout[j].dtype = OSP_DT_F32;
        fout[j].data = tmp[MAX_IO + j];
    }
    /* An integer output without quantization cannot take a float result
     * (integer-only ops with quantized inputs are not defined here). */
    for (int j = 0; j < n->n_out && rc == 0 && req_out; j++)
        if (n->out[j] >= 0 && !tmp[MAX_IO + j] && out[j].dtype != OSP_DT_F32)
            rc = osp__node_err(err, OSP_EUNSUPPORTED, n,
                               "quantized inputs but output %d is %s "
                               "without quantization",
                               j, osp_dtype_name(out[j].dtype));
    if (rc == 0)
        rc = fn(g, n, fin, fout, err);
    if (rc == 0 && n->n_post > 0)
        rc = osp__ref_post_ops(n, fin, fout, err);
    for (int j = 0; j < n->n_out && rc == 0; j++) {
        const float *y = tmp[MAX_IO + j];
        if (!y)
            continue;
        const osp_quant_t *q = g->values[n->out[j]].quant;
        int64_t inner = quant_inner(q, &out[j]);
        if (inner < 0) {
            rc = osp__node_err(err, OSP_ESHAPE, n,
                               "output quantization does not fit its shape");
            break;
        }
        double lo = out[j].dtype == OSP_DT_U8   ? 0
                    : out[j].dtype == OSP_DT_S8 ? -128
                                                : -2147483648.0;
        double hi = out[j].dtype == OSP_DT_U8   ? 255
                    : out[j].dtype == OSP_DT_S8 ? 127
                                                : 2147483647.0;
        size_t cnt = osp_tensor_numel(&out[j]);
        for (size_t i = 0; i < cnt; i++) {
            size_t c = inner ? (i / (size_t)inner) % (size_t)q->count : 0;
            double v = nearbyint((double)y[i] / q->scale[c]) + q->zero_point[c];
            v = v < lo ? lo : v > hi ? hi : v;
            if (v != v)
                v = q->zero_point[c];
            if (out[j].dtype == OSP_DT_U8)
                ((uint8_t *)out[j].data)[i] = (uint8_t)v;
            else if (out[j].dtype == OSP_DT_S8)
                ((int8_t *)out[j].data)[i] = (int8_t)v;
            else
                ((int32_t *)out[j].data)[i] = (int32_t)v;
        }
    }
    return rc;
}

/* Whether node n has quantized integer tensors that the float kernels
 * must see dequantized. */
static bool is_quantized(const osp_graph_t *g, const osp_node_t *n,
                         const osp_tensor_t *in, const osp_tensor_t *out) {
    if (n->op == OSP_OP_SHAPE || n->op == OSP_OP_CAST ||
        n->op == OSP_OP_DEQUANTIZE)
        return false;
    for (int j = 0; j < n->n_in; j++)
        if (quant_of(g, n->in[j], &in[j]))
            return true;
    if (n->op == OSP_OP_QUANTIZE)
        return false;
    for (int j = 0; j < n->n_out; j++)
        if (quant_of(g, n->out[j], &out[j]))
            return true;
    return false;
}

size_t osp_ref_scratch_bytes(const osp_graph_t *g, const osp_node_t *n,
                             const osp_tensor_t *in, const osp_tensor_t *out) {
    if (n->n_in > 16 || n->n_out > 16 || !is_quantized(g, n, in, out))
        return 0;
    size_t qint = 0;
    if (osp__ref_q8_covers(g, n, in, out, &qint)) /* exact integer kernel */
        return qint;
    return quant_scratch(g, n, in, out);
}

int osp_ref_run_node_ws(const osp_graph_t *g, const osp_node_t *n,
                        const osp_tensor_t *in, osp_tensor_t *out,
                        void *scratch, size_t scratch_bytes, osp_err_t *err) {
    osp__ref_fn fn = ref_fn(n->op);
    if (!fn)
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "no reference kernel for this op");
    if (n->n_out < 1 || !out[0].data)
        return osp__node_err(err, OSP_EINVAL, n, "no output buffer");
    int prc = osp__check_params(n, err);
    if (prc < 0)
        return prc;
    /* SHAPE reads only the dims of its input, never the data. */
    if (n->n_in < 1 || (n->op != OSP_OP_SHAPE && !in[0].data &&
                        osp_tensor_numel(&in[0]) != 0))
        return osp__node_err(err, OSP_EINVAL, n, "input 0 has no data");
    for (int i = 0; i < n->n_in; i++)
        if (in[i].rank < 0 || in[i].rank > OSP_MAX_RANK)
            return osp__node_err(err, OSP_EINVAL, n, "input %d rank %d", i,
                                 in[i].rank);
    if (is_quantized(g, n, in, out)) {
        size_t need = 0;
        /* TFLite's integer arithmetic where ref_q*.c models it exactly;
         * the float round trip below for everything else */
        if (osp__ref_q8_covers(g, n, in, out, &need))
            return osp__ref_q8_run(g, n, in, out, scratch, scratch_bytes, err);
        need = quant_scratch(g, n, in, out);
        if (need > 0 && (!scratch || scratch_bytes < need ||
                         ((uintptr_t)scratch % sizeof(float)) != 0))
            return osp__node_err(err, OSP_EINVAL, n,
                                 "needs %zu bytes of float-aligned scratch, "
                                 "got %zu",
                                 need, scratch ? scratch_bytes : 0);
        return run_quantized(g, n, fn, in, out, scratch, err);
    }
    int rc = fn(g, n, in, out, err);
    if (rc < 0)
        return rc;
    if (n->n_post > 0)
        rc = osp__ref_post_ops(n, in, out, err);
    return rc;
}

int osp_ref_run_node(const osp_graph_t *g, const osp_node_t *n,
                     const osp_tensor_t *in, osp_tensor_t *out,
                     osp_err_t *err) {
    size_t need = osp_ref_scratch_bytes(g, n, in, out);
    if (need == 0)
        return osp_ref_run_node_ws(g, n, in, out, NULL, 0, err);
    void *scratch = malloc(need);
    if (!scratch)
        return osp__node_err(err, OSP_ENOMEM, n, "%zu bytes of scratch", need);
    int rc = osp_ref_run_node_ws(g, n, in, out, scratch, need, err);
    free(scratch);
    return rc;
}

/* Input i is absent, f32, or a quantized integer (run dequantized). */
static bool float_in(const osp_graph_t *g, const osp_node_t *n, int i) {
    if (!osp__has_in(n, i))
        return true;
    const osp_value_t *v = &g->values[n->in[i]];
    osp_dtype_t dt = v->dtype;
    return dt == OSP_DT_UNDEF || dt == OSP_DT_F32 ||
           (v->quant && (dt == OSP_DT_U8 || dt == OSP_DT_S8 ||
                         dt == OSP_DT_S32));
}

bool osp_ref_supports(const osp_graph_t *g, const osp_node_t *n) {
    if (!ref_fn(n->op) || osp__check_params(n, NULL) < 0)
        return false;
    if (n->n_post > 0 && n->op != OSP_OP_CONV && n->op != OSP_OP_GEMM &&
        n->op != OSP_OP_MATMUL)
        return false;
    for (int k = 0; k < n->n_post; k++) {
        const osp_post_op_t *p = &n->post[k];
        if (p->kind != OSP_POST_ACT && p->kind != OSP_POST_SUM)
            return false;
        if (p->kind == OSP_POST_ACT &&
            (p->act <= OSP_ACT_NONE || p->act >= OSP_ACT_COUNT))
            return false;
    }
    osp_dtype_t dt = osp__has_in(n, 0) ? g->values[n->in[0]].dtype
                                       : OSP_DT_UNDEF;
    switch (n->op) {
    case OSP_OP_CONV:
    case OSP_OP_GEMM:
    case OSP_OP_MATMUL:
    case OSP_OP_BATCHNORM:
        for (int i = 0; i < n->n_in; i++)
            if (!float_in(g, n, i))
                return false;
        return true;
    case OSP_OP_CLIP:
        return float_in(g, n, 0) || dt == OSP_DT_U8 || dt == OSP_DT_S8 ||
               dt == OSP_DT_S32 || dt == OSP_DT_S64;
    case OSP_OP_MAXPOOL:
        return float_in(g, n, 0) || dt == OSP_DT_U8 || dt == OSP_DT_S8;
    case OSP_OP_RELU:
    case OSP_OP_LEAKY_RELU:
    case OSP_OP_SIGMOID:
    case OSP_OP_HARD_SIGMOID:
    case OSP_OP_HARD_SWISH:
    case OSP_OP_AVGPOOL:
    case OSP_OP_GLOBAL_AVGPOOL:
    case OSP_OP_GLOBAL_MAXPOOL:
    case OSP_OP_SOFTMAX:
    case OSP_OP_REDUCE_MEAN:
    case OSP_OP_LRN:
        return float_in(g, n, 0);
    case OSP_OP_ADD:
    case OSP_OP_SUB:
    case OSP_OP_MUL:
    case OSP_OP_DIV:
        return dt == OSP_DT_UNDEF || dt == OSP_DT_F32 || dt == OSP_DT_S32 ||
               dt == OSP_DT_S64 || dt == OSP_DT_U8 || dt == OSP_DT_S8;
    case OSP_OP_PAD:
        return n->p.pad.mode <= OSP_PADMODE_EDGE && !osp__has_in(n, 3);
    case OSP_OP_QUANTIZE:
        return float_in(g, n, 0);
    case OSP_OP_DEQUANTIZE:
        return dt == OSP_DT_UNDEF || dt == OSP_DT_U8 || dt == OSP_DT_S8 ||
               dt == OSP_DT_S32;
    case OSP_OP_CAST:
        return n->p.cast.to > OSP_DT_UNDEF && n->p.cast.to < OSP_DT_COUNT;
    default: /* data movement: any dtype */
        return true;
    }
}
