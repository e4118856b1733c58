/* ref_quant.c — reference kernels for QUANTIZE and DEQUANTIZE with ONNX
 * QuantizeLinear / DequantizeLinear semantics (opsets 10–17):
 *   quantize:   q = saturate(round_half_even(x / scale) + zero_point)
 *   dequantize: x = (q - zero_point) * scale
 * per tensor, or per axis (p.cast.axis) when scale has more than one element.
 * Scale and zero point come from inputs 1/2 (ONNX QDQ); when input 1 is
 * absent they come from the osp_quant_t of the quantized value (TFLite): the
 * output of a QUANTIZE, the input of a DEQUANTIZE. */
#include <math.h>
#include <string.h>

#include "engine/ops/ref.h"

/* Resolved quantisation parameters for one node. */
typedef struct qparams_s {
    size_t count;     /* 1 = per tensor */
    int axis;         /* when count > 1 */
    const osp_tensor_t *scale_t, *zp_t; /* from inputs, or NULL */
    const osp_quant_t *q;               /* from the value, or NULL */
} qparams_t;

static float q_scale(const qparams_t *p, size_t c) {
    return p->scale_t ? (float)osp_tensor_get_f64(p->scale_t, c)
                      : p->q->scale[c];
}

static int32_t q_zp(const qparams_t *p, size_t c) {
    if (p->scale_t)
        return p->zp_t ? (int32_t)osp_tensor_get_i64(p->zp_t, c) : 0;
    return p->q->zero_point ? p->q->zero_point[c] : 0;
}

static int resolve(const osp_graph_t *g, const osp_node_t *n,
                   const osp_tensor_t *in, const osp_tensor_t *x,
                   qparams_t *p, osp_err_t *err) {
    memset(p, 0, sizeof *p);
    if (osp__has_in(n, 1)) {
        p->scale_t = &in[1];
        if (in[1].dtype != OSP_DT_F32 || !in[1].data || in[1].rank > 1)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "scale must be f32 scalar/1-D with data");
        p->count = osp_tensor_numel(&in[1]);
        if (osp__has_in(n, 2)) {
            p->zp_t = &in[2];
            if (!in[2].data || osp_tensor_numel(&in[2]) != p->count)
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "zero point must match scale (%zu)",
                                     p->count);
        }
    } else {
        int v = n->op == OSP_OP_QUANTIZE ? n->out[0] : n->in[0];
        p->q = v >= 0 ? g->values[v].quant : NULL;
        if (!p->q)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "no scale input and no quantization on '%s'",
                                 v >= 0 ? g->values[v].name : "?");
        p->count = (size_t)p->q->count;
    }
    if (p->count == 0)
        return osp__node_err(err, OSP_ESHAPE, n, "empty scale");
    if (p->count > 1) {
        int64_t ax = p->scale_t ? n->p.cast.axis : p->q->axis;
        p->axis = osp_norm_axis(ax, x->rank);
        if (p->axis < 0 || (size_t)x->dims[p->axis] != p->count)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "%zu scales for axis %lld of rank-%d input",
                                 p->count, (long long)ax, x->rank);
    }
    return 0;
}

/* inner = product of dims after the axis, so channel = (i / inner) % count */
static size_t inner_of(const osp_tensor_t *x, const qparams_t *p) {
    size_t inner = 1;
    if (p->count > 1)
        for (int i = p->axis + 1; i < x->rank; i++)
            inner *= (size_t)x->dims[i];
    return inner;
}

int osp__ref_quantize(const osp_graph_t *g, const osp_node_t *n,
                      const osp_tensor_t *in, osp_tensor_t *out,
                      osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    osp_dtype_t dt = out[0].dtype;
    if (x->dtype != OSP_DT_F32 || (dt != OSP_DT_U8 && dt != OSP_DT_S8))
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "%s -> %s",
                             osp_dtype_name(x->dtype), osp_dtype_name(dt));
    qparams_t p;
    int rc = resolve(g, n, in, x, &p, err);
    if (rc < 0)
        return rc;
    size_t cnt = osp_tensor_numel(x), inner = inner_of(x, &p);
    float lo = dt == OSP_DT_U8 ? 0.0f : -128.0f;
    float hi = dt == OSP_DT_U8 ? 255.0f : 127.0f;
    const float *xp = x->data;
    for (size_t i = 0; i < cnt;) {
        size_t c = p.count > 1 ? (i / inner) % p.count : 0;
        float s = q_scale(&p, c);
        float zp = (float)q_zp(&p, c);
        size_t end = p.count > 1 ? i + inner : cnt;
        for (; i < end; i++) {
            float v = nearbyintf(xp[i] / s) + zp; /* ties to even */
            v = v < lo ? lo : v > hi ? hi : v;
            if (v != v)
                v = zp < lo ? lo : zp > hi ? hi : zp; /* NaN input */
            if (dt == OSP_DT_U8)
                ((uint8_t *)out[0].data)[i] = (uint8_t)v;
            else
                ((int8_t *)out[0].data)[i] = (int8_t)v;
        }
    }
    return 0;
}

int osp__ref_dequantize(const osp_graph_t *g, const osp_node_t *n,
                        const osp_tensor_t *in, osp_tensor_t *out,
                        osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    if ((x->dtype != OSP_DT_U8 && x->dtype != OSP_DT_S8 &&
         x->dtype != OSP_DT_S32) ||
        out[0].dtype != OSP_DT_F32)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "%s -> %s",
                             osp_dtype_name(x->dtype),
                             osp_dtype_name(out[0].dtype));
    qparams_t p;
    int rc = resolve(g, n, in, x, &p, err);
    if (rc < 0)
        return rc;
    size_t cnt = osp_tensor_numel(x), inner = inner_of(x, &p);
    float *y = out[0].data;
    for (size_t i = 0; i < cnt;) {
        size_t c = p.count > 1 ? (i / inner) % p.count : 0;
        float s = q_scale(&p, c);
        int32_t zp = q_zp(&p, c);
        size_t end = p.count > 1 ? i + inner : cnt;
        for (; i < end; i++)
            y[i] = (float)(osp_tensor_get_i64(x, i) - zp) * s;
    }
    return 0;
}
