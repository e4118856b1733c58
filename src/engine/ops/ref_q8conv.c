/* ref_q8conv.c — integer CONV (CONV_2D, DEPTHWISE_CONV_2D, grouped) and GEMM
 * (FULLY_CONNECTED) kernels for quantized tensors with TFLite semantics:
 *
 *   acc[o] = bias[o] + Σ (x − zx)·(w − zw[o])         (int32; padding adds 0)
 *   y[o]   = clamp(zy + MultiplyByQuantizedMultiplier(acc, M[o], s[o]),
 *                  act_min, act_max)
 *
 * where the final rounding shift rounds half up, as TFLite's optimized x86
 * kernels do (q8_math.h: osp__q8_mul_by_multiplier_up; the reference kernels
 * round half away from zero — measured, see docs/engine.md) *
 * with M[o]·2^(s[o]−31) = sx·sw[o]/sy computed from the float scales the
 * way TFLite does (see channel_multipliers). Weights are uint8 asymmetric per tensor (TF1 QAT
 * models) or int8 symmetric per output channel (TF2 PTQ). Inputs and
 * weights are widened once per run to int16 (x − zx, w − zw) in the
 * caller's scratch so the inner loops are one int16×int16→int32 multiply-add
 * over contiguous memory, which compilers vectorise. */
#include <stdlib.h>
#include <string.h>

#include "engine/int8/q8_math.h"
#include "engine/ops/ref_q8.h"

/* Bytes of n elements of size esz rounded up to 64 (keeps each scratch
 * array aligned for vector loads). */
static size_t rbytes(size_t n, size_t esz) {
    return (n * esz + 63) & ~(size_t)63;
}

/* Per-channel (axis `axis`, count == channels) or per-tensor 8-bit weight
 * quantization; NULL if neither. */
static const osp_quant_t *weight_quant(const osp_graph_t *g, int v,
                                       const osp_tensor_t *t, int axis,
                                       int64_t channels) {
    if (v < 0 || !g->values[v].quant || !t->data)
        return NULL;
    if (t->dtype != OSP_DT_U8 && t->dtype != OSP_DT_S8)
        return NULL;
    const osp_quant_t *q = g->values[v].quant;
    if (q->count == 1)
        return q;
    return q->axis == axis && q->count == channels ? q : NULL;
}

/* A usable int32 bias of `count` elements (or absent). */
static bool bias_ok(const osp_node_t *n, const osp_tensor_t *in, int i,
                    int64_t count) {
    if (!osp__has_in(n, i))
        return true;
    return in[i].dtype == OSP_DT_S32 && in[i].data &&
           osp_tensor_numel(&in[i]) == (size_t)count;
}

/* Fixed-point multipliers for every output channel. TFLite computes the
 * per-tensor multiplier of its uint8 kernels and of FULLY_CONNECTED from
 * the product sx·sw rounded to float (GetQuantizedConvolutionMultipler),
 * and the per-channel ones of its int8 conv kernels from double products;
 * the last bit of the multiplier decides ties, so f32_product follows it. */
static void channel_multipliers(const osp_quant_t *xq, const osp_quant_t *wq,
                                const osp_quant_t *yq, int64_t channels,
                                bool f32_product, int32_t *mult, int *shift) {
    for (int64_t o = 0; o < channels; o++) {
        float ws = wq->scale[wq->count == 1 ? 0 : o];
        double prod = f32_product ? (double)(float)(xq->scale[0] * ws)
                                  : (double)xq->scale[0] * (double)ws;
        osp__q8_quantize_multiplier(prod / (double)yq->scale[0], &mult[o],
                                  &shift[o]);
    }
}

/* ---- CONV --------------------------------------------------------------- */

typedef struct q8conv_geom_s {
    int64_t n, c, h, w;    /* input */
    int64_t o, kh, kw;     /* weights [o, c/group, kh, kw] */
    int64_t oh, ow;        /* output */
    int64_t group;
    osp_window_t win;      /* resolved (explicit pads) */
} q8conv_geom_t;

static bool q8conv_geom(const osp_node_t *n, const osp_tensor_t *in,
                       const osp_tensor_t *out, q8conv_geom_t *gm) {
    const osp_tensor_t *x = &in[0], *w = &in[1];
    if (x->rank != 4 || w->rank != 4 || out[0].rank != 4 ||
        n->p.conv.win.n_spatial != 2)
        return false;
    gm->n = x->dims[0];
    gm->c = x->dims[1];
    gm->h = x->dims[2];
    gm->w = x->dims[3];
    gm->o = w->dims[0];
    gm->kh = w->dims[2];
    gm->kw = w->dims[3];
    gm->group = n->p.conv.group > 0 ? n->p.conv.group : 1;
    if (gm->c % gm->group || gm->o % gm->group ||
        w->dims[1] != gm->c / gm->group || out[0].dims[1] != gm->o ||
        out[0].dims[0] != gm->n)
        return false;
    gm->win = n->p.conv.win;
    int64_t ksz[2] = {gm->kh, gm->kw}, isz[2] = {gm->h, gm->w}, osz[2];
    if (osp_window_resolve(&gm->win, isz, ksz, false, osz, NULL) < 0)
        return false;
    gm->oh = osz[0];
    gm->ow = osz[1];
    return out[0].dims[2] == gm->oh && out[0].dims[3] == gm->ow;
}

bool osp__ref_q8conv_covers(const osp_graph_t *g, const osp_node_t *n,
                       const osp_tensor_t *in, const osp_tensor_t *out,
                       size_t *scratch_bytes) {
    if (n->n_in < 2 || n->n_out != 1 || !in[1].data)
        return false;
    const osp_quant_t *xq = osp__q8_tensor(g, n->in[0], &in[0]);
    const osp_quant_t *yq = osp__q8_tensor(g, n->out[0], &out[0]);
    q8conv_geom_t gm;
    if (!xq || !yq || !q8conv_geom(n, in, out, &gm))
        return false;
    if (!weight_quant(g, n->in[1], &in[1], 0, gm.o) ||
        (n->n_in > 2 && !bias_ok(n, in, 2, gm.o)) || n->n_in > 3)
        return false;
    int32_t lo, hi;
    if (!osp__q8_post_range(n, yq, out[0].dtype, &lo, &hi))
        return false;
    *scratch_bytes = rbytes(osp_tensor_numel(&in[0]), 2) +
                     rbytes(osp_tensor_numel(&in[1]), 2) +
                     rbytes((size_t)(gm.oh * gm.ow), 4) +
                     rbytes((size_t)gm.o, 4) * 2;
    return true;
}

/* Valid output range [lo, hi) along one dim for kernel tap k: the outputs
 * whose input coordinate o·stride + k·dil − pad lies inside [0, in). */
static void tap_range(int64_t k, int64_t stride, int64_t dil, int64_t pad,
                      int64_t in, int64_t out, int64_t *lo, int64_t *hi) {
    int64_t off = k * dil - pad; /* input coord = o*stride + off */
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = in - off <= 0 ? 0 : (in - off + stride - 1) / stride;
    if (b > out)
        b = out;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

int osp__ref_q8conv_run(const osp_graph_t *g, const osp_node_t *n,
                   const osp_tensor_t *in, osp_tensor_t *out, void *scratch,
                   osp_err_t *err) {
    q8conv_geom_t gm;
    if (!q8conv_geom(n, in, out, &gm))
        return osp__node_err(err, OSP_ESHAPE, n, "integer conv geometry");
    const osp_quant_t *xq = osp__q8_tensor(g, n->in[0], &in[0]);
    const osp_quant_t *wq = weight_quant(g, n->in[1], &in[1], 0, gm.o);
    const osp_quant_t *yq = osp__q8_tensor(g, n->out[0], &out[0]);
    int32_t qmin, qmax;
    if (!xq || !wq || !yq ||
        !osp__q8_post_range(n, yq, out[0].dtype, &qmin, &qmax))
        return osp__node_err(err, OSP_EINTERNAL, n,
                             "integer conv: quantization changed");
    size_t xn = osp_tensor_numel(&in[0]), wn = osp_tensor_numel(&in[1]);
    uint8_t *sp = scratch;
    int16_t *xs = (int16_t *)sp;
    sp += rbytes(xn, 2);
    int16_t *ws = (int16_t *)sp;
    sp += rbytes(wn, 2);
    int32_t *acc = (int32_t *)sp;
    sp += rbytes((size_t)(gm.oh * gm.ow), 4);
    int32_t *mult = (int32_t *)sp;
    sp += rbytes((size_t)gm.o, 4);
    int *shift = (int *)sp;

    osp__q8_widen(&in[0], 0, xn, xq->zero_point[0], xs);
    size_t per_o = wn / (size_t)gm.o;
    for (int64_t o = 0; o < gm.o; o++)
        osp__q8_widen(&in[1], (size_t)o * per_o, per_o,
                      wq->zero_point[wq->count == 1 ? 0 : o],
                      ws + (size_t)o * per_o);
    channel_multipliers(xq, wq, yq, gm.o, in[0].dtype == OSP_DT_U8, mult,
                        shift);
    const int32_t *bias =
        n->n_in > 2 && osp__has_in(n, 2) ? in[2].data : NULL;
    int32_t zy = yq->zero_point[0];

    const int64_t cg = gm.c / gm.group, og = gm.o / gm.group;
    const int64_t sh = gm.win.stride[0], sw = gm.win.stride[1];
    const int64_t dh = gm.win.dilation[0], dw = gm.win.dilation[1];
    const int64_t ph = gm.win.pad_begin[0], pw = gm.win.pad_begin[1];
    const size_t plane = (size_t)(gm.oh * gm.ow);
    for (int64_t b = 0; b < gm.n; b++) {
        for (int64_t o = 0; o < gm.o; o++) {
            int64_t grp = o / og;
            int32_t b0 = bias ? bias[o] : 0;
            for (size_t i = 0; i < plane; i++)
                acc[i] = b0;
            for (int64_t ci = 0; ci < cg; ci++) {
                int64_t c = grp * cg + ci;
                const int16_t *xp = xs + (size_t)((b * gm.c + c) * gm.h * gm.w);
                const int16_t *wp =
                    ws + (size_t)(((o * cg) + ci) * gm.kh * gm.kw);
                for (int64_t ky = 0; ky < gm.kh; ky++) {
                    int64_t y0, y1;
                    tap_range(ky, sh, dh, ph, gm.h, gm.oh, &y0, &y1);
                    for (int64_t kx = 0; kx < gm.kw; kx++) {
                        int32_t wv = wp[ky * gm.kw + kx];
                        if (wv == 0)
                            continue;
                        int64_t x0, x1;
                        tap_range(kx, sw, dw, pw, gm.w, gm.ow, &x0, &x1);
                        int64_t offx = kx * dw - pw;
                        for (int64_t oy = y0; oy < y1; oy++) {
                            int64_t iy = oy * sh + ky * dh - ph;
                            const int16_t *row = xp + iy * gm.w + offx;
                            int32_t *ar = acc + oy * gm.ow;
                            if (sw == 1) {
                                for (int64_t ox = x0; ox < x1; ox++)
                                    ar[ox] += wv * (int32_t)row[ox];
                            } else {
                                for (int64_t ox = x0; ox < x1; ox++)
                                    ar[ox] += wv * (int32_t)row[ox * sw];
                            }
                        }
                    }
                }
            }
            size_t base = (size_t)((b * gm.o + o) * gm.oh * gm.ow);
            for (size_t i = 0; i < plane; i++) {
                int32_t v = osp__q8_mul_by_multiplier_up(acc[i], mult[o], shift[o]);
                int64_t q = (int64_t)v + zy;
                q = q < qmin ? qmin : q > qmax ? qmax : q;
                osp__q8_store(out[0].dtype, out[0].data, base + i, (int32_t)q);
            }
        }
    }
    return 0;
}

/* ---- GEMM (FULLY_CONNECTED): y[M,N] = A[M,K]·B^T, B given as [N,K] ------- */

bool osp__ref_q8gemm_covers(const osp_graph_t *g, const osp_node_t *n,
                       const osp_tensor_t *in, const osp_tensor_t *out,
                       size_t *scratch_bytes) {
    const osp_gemm_params_t *p = &n->p.gemm;
    if (n->n_in < 2 || n->n_in > 3 || n->n_out != 1 || !in[1].data ||
        p->trans_a || !p->trans_b || p->alpha != 1.f ||
        (osp__has_in(n, 2) && p->beta != 1.f))
        return false;
    if (in[0].rank != 2 || in[1].rank != 2 || out[0].rank != 2 ||
        in[1].dims[1] != in[0].dims[1] || out[0].dims[0] != in[0].dims[0] ||
        out[0].dims[1] != in[1].dims[0])
        return false;
    const osp_quant_t *xq = osp__q8_tensor(g, n->in[0], &in[0]);
    const osp_quant_t *yq = osp__q8_tensor(g, n->out[0], &out[0]);
    int64_t nn = in[1].dims[0];
    if (!xq || !yq || !weight_quant(g, n->in[1], &in[1], 0, nn) ||
        !bias_ok(n, in, 2, nn))
        return false;
    int32_t lo, hi;
    if (!osp__q8_post_range(n, yq, out[0].dtype, &lo, &hi))
        return false;
    *scratch_bytes = rbytes(osp_tensor_numel(&in[0]), 2) +
                     rbytes(osp_tensor_numel(&in[1]), 2) +
                     rbytes((size_t)nn, 4) * 2;
    return true;
}

int osp__ref_q8gemm_run(const osp_graph_t *g, const osp_node_t *n,
                   const osp_tensor_t *in, osp_tensor_t *out, void *scratch,
                   osp_err_t *err) {
    int64_t m = in[0].dims[0], k = in[0].dims[1], nn = in[1].dims[0];
    const osp_quant_t *xq = osp__q8_tensor(g, n->in[0], &in[0]);
    const osp_quant_t *wq = weight_quant(g, n->in[1], &in[1], 0, nn);
    const osp_quant_t *yq = osp__q8_tensor(g, n->out[0], &out[0]);
    int32_t qmin, qmax;
    if (!xq || !wq || !yq ||
        !osp__q8_post_range(n, yq, out[0].dtype, &qmin, &qmax))
        return osp__node_err(err, OSP_EINTERNAL, n,
                             "integer gemm: quantization changed");
    size_t xn = osp_tensor_numel(&in[0]), wn = osp_tensor_numel(&in[1]);
    uint8_t *sp = scratch;
    int16_t *xs = (int16_t *)sp;
    sp += rbytes(xn, 2);
    int16_t *ws = (int16_t *)sp;
    sp += rbytes(wn, 2);
    int32_t *mult = (int32_t *)sp;
    sp += rbytes((size_t)nn, 4);
    int *shift = (int *)sp;
    osp__q8_widen(&in[0], 0, xn, xq->zero_point[0], xs);
    for (int64_t j = 0; j < nn; j++)
        osp__q8_widen(&in[1], (size_t)(j * k), (size_t)k,
                      wq->zero_point[wq->count == 1 ? 0 : j],
                      ws + (size_t)(j * k));
    channel_multipliers(xq, wq, yq, nn, wq->count == 1, mult, shift);
    const int32_t *bias = osp__has_in(n, 2) ? in[2].data : NULL;
    int32_t zy = yq->zero_point[0];
    for (int64_t i = 0; i < m; i++) {
        const int16_t *a = xs + (size_t)(i * k);
        for (int64_t j = 0; j < nn; j++) {
            const int16_t *w = ws + (size_t)(j * k);
            int32_t acc = bias ? bias[j] : 0;
            for (int64_t p = 0; p < k; p++)
                acc += (int32_t)a[p] * (int32_t)w[p];
            int64_t q = (int64_t)osp__q8_mul_by_multiplier_up(acc, mult[j],
                                                            shift[j]) +
                        zy;
            q = q < qmin ? qmin : q > qmax ? qmax : q;
            osp__q8_store(out[0].dtype, out[0].data, (size_t)(i * nn + j),
                          (int32_t)q);
        }
    }
    return 0;
}
