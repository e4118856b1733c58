/* dnnl_q8conv.c — quantized CONV (CONV_2D, DEPTHWISE_CONV_2D) and GEMM
 * (FULLY_CONNECTED) nodes as oneDNN int8 primitives.
 *
 * Two requantizations (docs/engine.md, "int8 on oneDNN"):
 *   - exact (the default): oneDNN computes only the int32 accumulator
 *     Σ (x − zx)·w into an s32 NHWC destination (the source zero point is
 *     an integer compensation; no bias, scales or post-ops inside oneDNN),
 *     then q8_f32conv.c's fixed-point requantization (+ bias in int32,
 *     TFLite's multiplier and shift, + zy, the clamp) writes the u8/s8
 *     output. Convolutions run as one step tile by tile (an image × a band
 *     of output rows, the s32 tile kept in L2: osp__q8_tiled_conv); the
 *     matmul and convs that cannot be tiled as two steps over the batch
 *     (oneDNN, then osprey:q8-requant). oneDNN's jit kernels still pass the
 *     accumulator through f32 in their epilogue (convert, scale 1, convert
 *     back), so each node is admitted only when 255·Σ|w| < 2^24 for every
 *     output channel: every raw sum, compensation and final accumulator is
 *     then an integer below 2^24, exact in f32 whatever the kernel's order.
 *     Bit-identical to the integer reference kernels.
 *   - oneDNN float (tuning.int8_requant ONEDNN): the requantization
 *     inside oneDNN as described below — faster, up to ~13 steps off.
 *
 * TFLite's quantized conv is acc = bias + Σ (x − zx)(w − zw), then
 * y = clamp(zy + requant(acc)). oneDNN 2.6 expresses that directly when the
 * weights are s8 with zero point 0 (TF2 post-training quantization: int8
 * symmetric per output channel): u8/s8 source with a source zero point
 * (padding then contributes 0, as in TFLite), s8 weights, s32 bias added to
 * the accumulator, per-channel output scales sx·sw/sy, a destination zero
 * point, and the fused RELU/RELU6 clamp as an eltwise clip in the scaled
 * domain before the zero point. The one thing oneDNN does differently is the
 * requantization rounding: it multiplies by the float scale and rounds
 * half-to-even, where TFLite uses a Q31 fixed-point multiplier with two
 * round-half-up steps — measured and documented in docs/engine.md
 * ("int8 on oneDNN").
 *
 * Not expressible, so these nodes stay on the exact integer reference
 * kernels (ref_q8conv.c), which --verbose and `osprey bench` report: weights
 * with a non-zero zero point (uint8 TF1 models; oneDNN 2.6 convolutions have
 * no weight zero points, and shifting them to s8 leaves a data-dependent
 * term, see docs/decisions.md), per-channel activations, residual SUM
 * post-ops on quantized nodes (none are produced), and CPUs without AVX512
 * VNNI, where oneDNN's s8-source kernels pre-scale weights by 1/2 (inexact).
 * Convs among these now try the exact fp32-carrier path (q8_f32conv.c) before
 * the reference kernel; so do exact-mode nodes whose bound fails.
 * tuning.int8_dnnl off turns the whole path off. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan/plan_int.h"
#include "engine/int8/q8_int.h"
#include "engine/int8/q8_math.h"
#include "engine/ops/ref_q8.h"

/* Per-tensor 8-bit quantization of an activation value (or NULL). */
static const osp_quant_t *act_quant(const osp_graph_t *g, int v) {
    if (v < 0)
        return NULL;
    osp_tensor_t t = {.dtype = g->values[v].dtype};
    return osp__q8_tensor(g, v, &t);
}

/* s8 weights with zero point 0, per tensor or per output channel (count
 * == channels along axis 0). */
static const osp_quant_t *s8_weights(const osp_graph_t *g, int v,
                                     int64_t channels) {
    if (v < 0 || !osp_value_is_const(&g->values[v]) ||
        g->values[v].dtype != OSP_DT_S8 || !g->values[v].quant)
        return NULL;
    const osp_quant_t *q = g->values[v].quant;
    if (q->count != 1 && (q->axis != 0 || q->count != channels))
        return NULL;
    for (int i = 0; i < q->count; i++)
        if (q->zero_point[i] != 0 || !(q->scale[i] > 0))
            return NULL;
    return q;
}

static bool bias_s32(const osp_graph_t *g, int v, int64_t count) {
    if (v < 0)
        return true;
    const osp_value_t *b = &g->values[v];
    return osp_value_is_const(b) && b->dtype == OSP_DT_S32 &&
           osp_value_numel(b) == (size_t)count;
}

/* TFLite's requantization of an int32 accumulator, MBQM(acc, M, shift),
 * with real = M·2^(shift−31), k = max(−shift, 0):
 *   h = round_half_up(acc · real · 2^k)        (rounding doubling high mul)
 *   r = round_half_up(h / 2^k)                 (rounding right shift)
 * Rounding twice differs from rounding acc·real once on ~2^-(k+1) of the
 * outputs (0.1% per layer measured; through MobileNetV2 that reached 20
 * steps at the output). But with round_half_up(z) = floor(z + 1/2) and
 * floor(floor(z)/n) = floor(z/n) for integers n > 0:
 *   r = floor((floor(x + 1/2) + 2^(k−1)) / 2^k)          (x = acc·real·2^k)
 *     = floor((x + 1/2 + 2^(k−1)) / 2^k)
 *     = round_half_up(acc·real + 2^-(k+1)),
 * a single rounding after a per-channel offset of half a shift step. oneDNN
 * computes (acc + bias)·scale, then post-ops, then + zy and rounds to
 * nearest: with scale = real and an f32 bias of bias + 2^-(k+1)/real the
 * product is acc·real + 2^-(k+1), and "nearest" equals TFLite's half-up
 * except on exact ties, which need acc·M ≡ 2^30 (mod 2^31) — not reachable
 * with |acc| < 2^24 unless M has ≥ 7 trailing zero bits. What stays inexact
 * is fp32 itself: real (31-bit M) and the sums/products are rounded to
 * 24-bit significands, an error of ~2^-24 relative to |acc·real + bias|,
 * which flips an output when the exact value lies that close to a rounding
 * boundary (measured ~1e-5 of a layer's outputs; docs/engine.md, "int8 on
 * oneDNN"). No extra post-op is needed, so the kernels keep their speed. */
typedef struct qreq_s {
    float scale;  /* real = M · 2^(shift − 31) */
    float bias;   /* bias + 2^-(k+1) / real, in accumulator units */
} qreq_t;

/* The requantization of every output channel, with the multiplier formed
 * from sx·sw[o]/sy as TFLite forms it (float product for its uint8 conv
 * kernels and FULLY_CONNECTED, double for the per-channel int8 conv kernels;
 * ref_q8conv.c channel_multipliers). bias may be NULL. */
static void out_requant(const osp_quant_t *xq, const osp_quant_t *wq,
                        const osp_quant_t *yq, int64_t channels,
                        bool f32_product, const int32_t *bias, qreq_t *rq) {
    for (int64_t o = 0; o < channels; o++) {
        float ws = wq->scale[wq->count == 1 ? 0 : o];
        double prod = f32_product ? (double)(float)(xq->scale[0] * ws)
                                  : (double)xq->scale[0] * (double)ws;
        int32_t m;
        int shift;
        osp__q8_quantize_multiplier(prod / (double)yq->scale[0], &m, &shift);
        int k = shift > 0 ? 0 : -shift;
        double real = ldexp((double)m, shift - 31);
        rq[o].scale = (float)real;
        double b = bias ? (double)bias[o] : 0.0;
        rq[o].bias = real > 0 ? (float)(b + ldexp(1.0, -(k + 1)) / real)
                              : (float)b;
    }
}

/* Attribute: per-channel weight scales, source and destination zero
 * points (all three runtime arguments in oneDNN 3, given at execute by
 * q_consts) and the fused clamp [qmin, qmax] as a clip in the scaled domain
 * (before zy is added, which is where oneDNN adds the destination zero
 * point). oneDNN 3 has no output scales: the per-channel multiplier real
 * is the weights' scale (the source's is left at 1), which oneDNN applies
 * to the int32 accumulator as 2.6's output scale did; wmask selects the
 * weights' output-channel dims (conv: 1 << 0, grouped conv: both group
 * dims, matmul [K, N]: 1 << 1).
 * In graphs osprey quantized itself zy is 0 here: the output's zero point
 * rides on the f32 bias instead (q_zps), because oneDNN 3.2 runs its
 * fast (brgemm) int8 convolutions only without zero points — with one on
 * the destination it takes its older kernels, 15-60% slower on AMX. Adding
 * an integer before the post-ops is the same sum; what differs is which
 * kernel rounds, so imported (TFLite) models keep the attribute and the
 * rounding their float path was measured with (docs/adr/0054). */
typedef struct qsum_s { /* a residual SUM post-op (osprey-quantized) */
    bool on;
    float scale;   /* s_residual / s_y */
    int32_t zp;    /* the residual's zero point */
    dnnl_data_type_t dt;
} qsum_t;

/* Where an op's zero points go (q_zps): oneDNN's source and destination
 * attributes, or the f32 bias. */
typedef struct qzp_s {
    int32_t zx, zy; /* oneDNN's attributes; 0: none */
    int32_t zb;     /* added to the f32 bias: the destination's */
} qzp_t;

static dnnl_primitive_attr_t q_attr(int wmask, const qzp_t *z, int32_t qmin,
                                    int32_t qmax, osp_dtype_t ydt,
                                    const qsum_t *sum, char *note,
                                    size_t note_len) {
    const int32_t zx = z->zx, zy = z->zy;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_attr_t a = osp__attr_new();
    bool ok = a && dnnl_primitive_attr_set_scales_mask(a, DNNL_ARG_WEIGHTS,
                                                       wmask) == dnnl_success;
    if (ok && zx)
        ok = dnnl_primitive_attr_set_zero_points_mask(a, DNNL_ARG_SRC, 0) ==
             dnnl_success;
    if (ok && zy)
        ok = dnnl_primitive_attr_set_zero_points_mask(a, DNNL_ARG_DST, 0) ==
             dnnl_success;
    int32_t tmin, tmax;
    osp__q8_type_range(ydt, &tmin, &tmax);
    bool clip = qmin > tmin || qmax < tmax;
    if (ok && (clip || (sum && sum->on))) {
        /* the residual (minus its zero point, times s_r/s_y) joins the
         * scaled result before the clamp and before zy */
        ok = dnnl_post_ops_create(&po) == dnnl_success &&
             (!sum || !sum->on ||
              dnnl_post_ops_append_sum(po, sum->scale, sum->zp, sum->dt) ==
                  dnnl_success) &&
             (!clip ||
              dnnl_post_ops_append_eltwise(po, dnnl_eltwise_clip,
                                           (float)(qmin - zy),
                                           (float)(qmax - zy)) == dnnl_success) &&
             dnnl_primitive_attr_set_post_ops(a, po) == dnnl_success;
        if (ok && note)
            snprintf(note, note_len, "%s%s", sum && sum->on ? "+sum" : "",
                     clip ? "+clip" : "");
    }
    dnnl_post_ops_destroy(po);
    if (!ok) {
        dnnl_primitive_attr_destroy(a);
        return NULL;
    }
    return a;
}

/* A constant buffer of n values (copied) of dtype dt, plain 1-D: the
 * runtime scales and zero points of the int8 primitives. */
static int const_vec(osp__plan_ctx_t *c, const void *src, int64_t n,
                     dnnl_data_type_t dt) {
    dnnl_memory_desc_t md;
    if (!osp__md_plain(c, &md, 1, &n, dt))
        return osp_err_set(c->err, OSP_EINTERNAL, "plan: scale md");
    size_t bytes = dnnl_memory_desc_get_size(md);
    void *data = malloc(bytes);
    if (!data)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    memcpy(data, src, bytes);
    return osp__const_raw(c, data, &md); /* takes data */
}

/* The constant arguments of a float-requantized int8 op, appended to
 * kinds/bufs: the f32 bias (layout b_md) — bias·real + z->zb, since oneDNN
 * 3 adds the bias after the scales where 2.6 added it to the accumulator
 * before them (acc·real + bias·real = (acc + bias)·real up to f32
 * rounding), and zb is the destination zero point when it rides there
 * (q_zps) — then q_attr's runtime arguments: the weights' scales (real per
 * channel) and the attribute zero points that are not 0. */
static int q_consts(osp__plan_ctx_t *c, const qreq_t *rq, int64_t channels,
                    const qzp_t *z, const dnnl_memory_desc_t *b_md, int *kinds,
                    int *bufs, int *na) {
    float *v = malloc(sizeof(float) * (size_t)channels);
    if (!v)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    for (int64_t o = 0; o < channels; o++)
        v[o] = (float)((double)rq[o].bias * (double)rq[o].scale + z->zb);
    int b = osp__const_raw(c, v, b_md); /* takes v */
    if (b < 0)
        return b;
    kinds[*na] = DNNL_ARG_BIAS, bufs[(*na)++] = b;
    if (!(v = malloc(sizeof(float) * (size_t)channels)))
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    for (int64_t o = 0; o < channels; o++)
        v[o] = rq[o].scale;
    b = const_vec(c, v, channels, dnnl_f32);
    free(v);
    if (b < 0)
        return b;
    kinds[*na] = DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, bufs[(*na)++] = b;
    const int32_t zp[2] = {z->zx, z->zy};
    const int arg[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    for (int i = 0; i < 2; i++) {
        if (!zp[i])
            continue;
        if ((b = const_vec(c, &zp[i], 1, dnnl_s32)) < 0)
            return b;
        kinds[*na] = DNNL_ARG_ATTR_ZERO_POINTS | arg[i], bufs[(*na)++] = b;
    }
    return 0;
}

/* Exact (TFLite's arithmetic) unless asked otherwise; graphs osprey
 * quantized itself have no external reference to be exact with and take
 * oneDNN's fused float requantization, the fastest (pass_quantize.c). */
static bool exact_requant(const osp_engine_t *e, const osp_graph_t *g) {
    switch (e->opts.tuning.int8_requant) {
    case OSP_REQUANT_EXACT: return true;
    case OSP_REQUANT_ONEDNN: return false;
    default: return !g->ptq;
    }
}

/* An op's zero points zx (source), zy (destination) on the float path:
 * in graphs osprey quantized itself the destination's rides on the f32
 * bias rather than as oneDNN's attribute (q_attr; fold_zx may move the
 * source's there too). */
static qzp_t q_zps(const osp_graph_t *g, int32_t zx, int32_t zy) {
    return g->ptq ? (qzp_t){zx, 0, zy} : (qzp_t){zx, zy, 0};
}

/* The exact path's admission bound for s8 weights [channels, per_channel]
 * with zero point 0: 255·max_o Σ|w| (see the top of the file). */
static int64_t s32_bound(const osp_value_t *W, int64_t channels) {
    int64_t per = (int64_t)osp_value_numel(W) / channels;
    const int32_t zero = 0;
    return osp__q8_bound(W->data, false, channels, per, &zero, 1, 255);
}

dnnl_primitive_attr_t osp__q8_s32_attr(int32_t zx) {
    dnnl_primitive_attr_t attr = osp__attr_new();
    if (attr && zx &&
        dnnl_primitive_attr_set_zero_points_mask(attr, DNNL_ARG_SRC, 0) !=
            dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

/* Appends the oneDNN step (pd consumed) reading value x (as src_md) and the
 * constant weights w (given in w_src, reordered once into the primitive's
 * layout) and writing s32 accumulators, then the exact requantization into
 * a fresh buffer of layout y_md bound to value y; req is consumed. */
static int s32_steps(osp__plan_ctx_t *c, int ni, dnnl_primitive_desc_t pd, int x,
                     const dnnl_memory_desc_t *src_md, int w,
                     const dnnl_memory_desc_t *w_src, int y,
                     const dnnl_memory_desc_t *y_md, osp__q8_req_t *req,
                     int64_t bound, int32_t zx) {
    dnnl_memory_desc_t wmd = osp__md_query(c, pd, dnnl_query_weights_md);
    dnnl_memory_desc_t amd = osp__md_query(c, pd, dnnl_query_dst_md);
    int kinds[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST,
                    DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC}, bufs[4];
    bufs[0] = osp__buf_as(c, x, src_md);
    bufs[1] = bufs[0] < 0 ? bufs[0] : osp__const_as(c, w, w_src, &wmd);
    bufs[2] = bufs[1] < 0 ? bufs[1] : osp__buf_new(c, &amd, -1);
    bufs[3] = bufs[2] < 0 || !zx ? bufs[2] : const_vec(c, &zx, 1, dnnl_s32);
    int yb = bufs[3] < 0 ? bufs[3] : osp__buf_new(c, y_md, y);
    if (yb < 0) {
        dnnl_primitive_desc_destroy(pd);
        free(req);
        return yb;
    }
    int ab = bufs[2];
    char note[96];
    snprintf(note, sizeof note, "s32 accumulators, 255*sum|w| %lld < 2^24",
             (long long)bound);
    int rc = osp__step_dnnl(c, ni, pd, zx ? 4 : 3, kinds, bufs, note);
    if (rc < 0) {
        free(req);
        return rc;
    }
    snprintf(note, sizeof note, "exact fixed-point requant [%d,%d]",
             (int)req->qmin, (int)req->qmax);
    rc = osp__q8_step_requant(c, ni, ab, yb, req, true, "osprey:q8-requant",
                               note);
    if (rc < 0)
        return rc;
    osp__bind_value(c, y, yb);
    return 0;
}

/* The exact conv: NHWC u8/s8 source, s8 weights, NHWC s32 accumulators. */
static int q8conv_s32(osp__plan_ctx_t *c, int ni, const osp__plan_conv_geom_t *cg,
                     const osp_quant_t *xq, const osp_quant_t *wq,
                     const osp_quant_t *yq, int32_t qmin, int32_t qmax) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    int x = n->in[0], w = n->in[1], bias = n->n_in > 2 ? n->in[2] : -1;
    int y = n->out[0];
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    int64_t O = W->dims[0];
    int64_t bound = s32_bound(W, O);
    osp__q8_req_t *req = osp__q8_req_create(
        xq, wq, yq, O, X->dtype == OSP_DT_U8,
        bias >= 0 ? (const int32_t *)g->values[bias].data : NULL, qmin, qmax,
        Y->dtype == OSP_DT_U8, (size_t)(Y->dims[0] * Y->dims[2] * Y->dims[3]),
        bound);
    if (!req)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    /* 1x1 and depthwise: osprey's own kernels, requantizing in registers
     * (q8_pwconv.c: int32 sums, no bound; q8_dwconv.c: under the bound).
     * Else, under the bound (oneDNN's f32 epilogue, above), one step per
     * node, tile by tile with the requantization, when it can be tiled
     * (q8_f32conv.c); else two steps over the whole batch — the only case
     * that needs a whole-batch primitive, so it is created only here. */
    int rc = osp__q8_pwconv(c, ni, cg, xq->zero_point[0], req);
    if (rc == OSP_EUNSUPPORTED && bound >= OSP_Q8_EXACT_LIMIT) {
        free(req);
        return OSP_EUNSUPPORTED;
    }
    if (rc == OSP_EUNSUPPORTED)
        rc = osp__q8_dwconv(c, ni, cg, xq->zero_point[0], req, bound);
    if (rc == OSP_EUNSUPPORTED)
        rc = osp__q8_tiled_conv(c, ni, cg, xq->zero_point[0], req, bound);
    if (rc != OSP_EUNSUPPORTED) {
        if (rc < 0)
            free(req);
        return rc;
    }
    dnnl_memory_desc_t src_md, w_any, w_plain, acc_md, y_md;
    osp__md_tag(c, &src_md, 4, X->dims, osp__dnnl_dt(X->dtype), dnnl_acdb);
    osp__md_tag(c, &acc_md, 4, Y->dims, dnnl_s32, dnnl_acdb);
    osp__md_tag(c, &y_md, 4, Y->dims, osp__dnnl_dt(Y->dtype), dnnl_acdb);
    osp__md_any(c, &w_any, cg->wr, cg->wd, dnnl_s8);
    osp__md_plain(c, &w_plain, cg->wr, cg->wd, dnnl_s8);
    int32_t zx = xq->zero_point[0];
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = osp__q8_s32_attr(zx);
    if (!attr || (rc = osp__pd_fast(dnnl_convolution_forward_primitive_desc_create(
                                        &pd, c->e->dnnl_eng, dnnl_forward_inference,
                                        dnnl_convolution_direct, src_md, w_any,
                                        NULL, acc_md, cg->strides, cg->dil,
                                        cg->pl, cg->pr, attr),
                                    attr, &pd)) < 0) {
        free(req);
        return OSP_EUNSUPPORTED;
    }
    /* Committed from here on (pd and req are consumed). */
    return s32_steps(c, ni, pd, x, &src_md, w, &w_plain, y, &y_md, req,
                     bound, zx);
}

/* oneDNN's s8-source kernels without VNNI halve the weights (vpmaddubsw
 * saturation workaround), which is not exact for odd weights. (The
 * capabilities are capped by what oneDNN may dispatch to.) */
static bool int8_exact_cpu(void) { return osp__cpu_caps()->avx512_vnni; }

/* What q8conv_try learns about its node before it builds anything. */
typedef struct q8conv_node_s {
    bool has_sum;
    int x, w, bias, sum, y;
    const osp_value_t *X, *W, *Y;
    const osp_quant_t *xq, *wq, *yq;
    int64_t G, O;
    int32_t qmin, qmax;
    qsum_t qs;
    qzp_t z;       /* where the zero points go (q_zps, fold_zx) */
} q8conv_node_t;

/* Fills k when node ni is a quantized 2-D CONV with s8 weights (and, when
 * fused, a residual SUM this engine can take); else OSP_EUNSUPPORTED. */
static int q8conv_check(osp__plan_ctx_t *c, int ni, q8conv_node_t *k) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    /* a residual SUM first in the post-ops (pass_residual.c, osprey-
     * quantized graphs only): inputs x, w, bias slot, summand */
    bool has_sum = n->n_post > 0 && n->post[0].kind == OSP_POST_SUM;
    if (n->n_in < 2 || n->n_in > (has_sum ? 4 : 3) || n->n_out != 1 ||
        (has_sum && (n->n_in != 4 || n->in[3] != n->post[0].sum_value)))
        return OSP_EUNSUPPORTED;
    int x = n->in[0], w = n->in[1], bias = n->n_in > 2 ? n->in[2] : -1;
    int sum = has_sum ? n->in[3] : -1;
    int y = n->out[0];
    const osp_quant_t *xq = act_quant(g, x), *yq = act_quant(g, y);
    if (!xq || !yq || w < 0)
        return OSP_EUNSUPPORTED;
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    if (X->rank != 4 || W->rank != 4 || Y->rank != 4 ||
        n->p.conv.win.n_spatial != 2)
        return OSP_EUNSUPPORTED;
    int64_t G = n->p.conv.group > 0 ? n->p.conv.group : 1;
    int64_t O = W->dims[0], IG = W->dims[1];
    if (O % G || IG * G != X->dims[1] || Y->dims[1] != O)
        return OSP_EUNSUPPORTED;
    const osp_quant_t *wq = s8_weights(g, w, O);
    if (!wq || !bias_s32(g, bias, O))
        return OSP_EUNSUPPORTED;
    int32_t qmin, qmax;
    qsum_t qs = {0};
    if (has_sum) {
        /* the clamp of the activations after the SUM */
        osp_node_t acts = *n;
        acts.n_post = n->n_post - 1;
        memmove(acts.post, n->post + 1, sizeof(osp_post_op_t) * (size_t)acts.n_post);
        const osp_quant_t *sq = act_quant(g, sum);
        /* the summand may be s8 under a u8 output: same size, oneDNN
         * reads it as its own type (osp__sum_dst) */
        osp_dtype_t sdt = g->values[sum].dtype;
        if (!osp__q8_sum_ok(c->e, g) || !sq ||
            (sdt != OSP_DT_U8 && sdt != OSP_DT_S8) ||
            !osp__q8_post_range(&acts, yq, Y->dtype, &qmin, &qmax))
            return OSP_EUNSUPPORTED;
        qs = (qsum_t){true, sq->scale[0] / yq->scale[0], sq->zero_point[0],
                      osp__dnnl_dt(sdt)};
    } else if (!osp__q8_post_range(n, yq, Y->dtype, &qmin, &qmax)) {
        return OSP_EUNSUPPORTED;
    }
    *k = (q8conv_node_t){.has_sum = has_sum, .x = x, .w = w, .bias = bias,
                         .sum = sum, .y = y, .X = X, .W = W, .Y = Y,
                         .xq = xq, .wq = wq, .yq = yq, .G = G, .O = O,
                         .qmin = qmin, .qmax = qmax, .qs = qs,
                         .z = q_zps(g, xq->zero_point[0], yq->zero_point[0])};
    return 0;
}

/* Appends the oneDNN int8 convolution pd (consumed) with its constant
 * arguments (q_consts: bias, scales and zero points from rq) and binds y;
 * the weights are reordered from w_plain. */
static int q8conv_steps(osp__plan_ctx_t *c, int ni, const q8conv_node_t *k,
                        dnnl_primitive_desc_t pd, const qreq_t *rq,
                        const dnnl_memory_desc_t *b_md,
                        const dnnl_memory_desc_t *w_plain, char *note,
                        size_t note_len) {
    dnnl_memory_desc_t smd = osp__md_query(c, pd, dnnl_query_src_md);
    dnnl_memory_desc_t wmd = osp__md_query(c, pd, dnnl_query_weights_md);
    dnnl_memory_desc_t dmd = osp__md_query(c, pd, dnnl_query_dst_md);
    int kinds[7], bufs[7], na = 0;
    int b = q_consts(c, rq, k->O, &k->z, b_md, kinds, bufs, &na);
    if (b < 0)
        goto fail;
    b = osp__buf_as(c, k->x, &smd);
    if (b < 0)
        goto fail;
    kinds[na] = DNNL_ARG_SRC, bufs[na++] = b;
    b = osp__const_as(c, k->w, w_plain, &wmd);
    if (b < 0)
        goto fail;
    kinds[na] = DNNL_ARG_WEIGHTS, bufs[na++] = b;
    b = k->has_sum ? osp__sum_dst(c, ni, k->sum, &dmd, k->y, note, note_len)
                   : osp__buf_new(c, &dmd, k->y);
    if (b < 0)
        goto fail;
    int db = b;
    kinds[na] = DNNL_ARG_DST, bufs[na++] = db;
    int rc = osp__step_dnnl(c, ni, pd, na, kinds, bufs, note);
    if (rc < 0)
        return rc;
    osp__bind_value(c, k->y, db);
    return 0;
fail:
    dnnl_primitive_desc_destroy(pd);
    return b;
}

/* The source zero point into the bias, where the graph takes the output's
 * there too (q_zps) and the conv reads no padding: every output then
 * sums over real inputs only, Σ w·(x − zx) = Σ w·x − zx·Σ w, a constant
 * per output channel — and oneDNN 3.2 runs its brgemm kernels only without
 * zero points (q_attr). With padding oneDNN's compensation differs at the
 * borders (a pad is zx, a real zero), so those keep the attribute. */
static void fold_zx(q8conv_node_t *k, const osp__plan_conv_geom_t *cg,
                    qreq_t *rq) {
    if (!k->z.zx || !k->z.zb)
        return;
    for (int i = 0; i < 2; i++)
        if (cg->pl[i] || cg->pr[i])
            return;
    const int8_t *w = k->W->data;
    size_t per = osp_value_numel(k->W) / (size_t)k->O;
    for (int64_t o = 0; o < k->O; o++) {
        int64_t sw = 0;
        for (size_t j = 0; j < per; j++)
            sw += w[(size_t)o * per + j];
        rq[o].bias = (float)((double)rq[o].bias - (double)k->z.zx * (double)sw);
    }
    k->z.zx = 0;
}

static int q8conv_try(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    q8conv_node_t k;
    int rc = q8conv_check(c, ni, &k);
    if (rc < 0)
        return rc;
    const osp_value_t *X = k.X, *W = k.W, *Y = k.Y;
    int64_t O = k.O;

    osp__plan_conv_geom_t cg;
    rc = osp__conv_geom(c, n, X, W, Y, k.G, &cg);
    if (rc < 0)
        return rc;
    if (exact_requant(c->e, c->g))
        return q8conv_s32(c, ni, &cg, k.xq, k.wq, k.yq, k.qmin, k.qmax);
    dnnl_data_type_t xdt = osp__dnnl_dt(X->dtype), ydt = osp__dnnl_dt(Y->dtype);
    dnnl_memory_desc_t src_any, w_any, dst_any, b_md, w_plain;
    osp__md_any(c, &src_any, 4, X->dims, xdt);
    osp__md_any(c, &w_any, cg.wr, cg.wd, dnnl_s8);
    osp__md_any(c, &dst_any, 4, Y->dims, ydt);
    /* with a SUM the destination starts as the residual: its layout, in
     * the destination's own type (osp__sum_dst) */
    if (k.has_sum) {
        dnnl_memory_desc_t smd;
        if ((rc = osp__value_md(c, k.sum, &smd)) < 0)
            return rc;
        if (!osp__md_retype(c, &dst_any, smd, ydt))
            return OSP_EUNSUPPORTED;
    }
    osp__md_plain(c, &w_plain, cg.wr, cg.wd, dnnl_s8);
    int64_t od[1] = {O};
    osp__md_plain(c, &b_md, 1, od, dnnl_f32);

    qreq_t *rq = malloc(sizeof(qreq_t) * (size_t)O);
    if (!rq)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    out_requant(k.xq, k.wq, k.yq, O, X->dtype == OSP_DT_U8,
                k.bias >= 0 ? g->values[k.bias].data : NULL, rq);
    fold_zx(&k, &cg, rq);
    char note[96] = "";
    dnnl_primitive_desc_t pd = NULL;
    int wmask = k.G > 1 ? (1 << 0) | (1 << 1) : 1 << 0;
    dnnl_primitive_attr_t attr =
        q_attr(wmask, &k.z, k.qmin, k.qmax, Y->dtype, &k.qs, note, sizeof note);
    if (!attr ||
        osp__pd_fast(dnnl_convolution_forward_primitive_desc_create(
                         &pd, c->e->dnnl_eng, dnnl_forward_inference,
                         dnnl_convolution_direct, src_any, w_any, b_md,
                         dst_any, cg.strides, cg.dil, cg.pl, cg.pr, attr),
                     attr, &pd) < 0) {
        free(rq);
        return OSP_EUNSUPPORTED;
    }
    /* Committed to oneDNN from here on. */
    rc = q8conv_steps(c, ni, &k, pd, rq, &b_md, &w_plain, note, sizeof note);
    free(rq);
    return rc;
}

bool osp__q8_sum_ok(const osp_engine_t *e, const osp_graph_t *g) {
    return g->ptq && e->int8_dnnl && int8_exact_cpu() && !exact_requant(e, g);
}

int osp__dnnl_q8conv(osp__plan_ctx_t *c, int ni) {
    if (!c->e->int8_dnnl || !int8_exact_cpu())
        return OSP_EUNSUPPORTED;
    return q8conv_try(c, ni);
}

/* The exact FULLY_CONNECTED: matmul [M, K] × [K, N] (weights read through
 * strides) into plain s32 [M, N] accumulators. */
static int q8gemm_s32(osp__plan_ctx_t *c, int ni, const osp_quant_t *xq,
                     const osp_quant_t *wq, const osp_quant_t *yq,
                     int32_t qmin, int32_t qmax) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    int x = n->in[0], w = n->in[1], bias = n->n_in > 2 ? n->in[2] : -1;
    int y = n->out[0];
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    int64_t M = X->dims[0], K = X->dims[1], N = W->dims[0];
    int64_t bound = s32_bound(W, N);
    if (bound >= OSP_Q8_EXACT_LIMIT)
        return OSP_EUNSUPPORTED;
    dnnl_memory_desc_t src_md, w_any, w_src, acc_md, y_md;
    int64_t sd[2] = {M, K}, wdims[2] = {K, N}, wstr[2] = {1, K}, dd[2] = {M, N};
    osp__md_tag(c, &src_md, 2, sd, osp__dnnl_dt(X->dtype), dnnl_ab);
    osp__md_any(c, &w_any, 2, wdims, dnnl_s8);
    osp__md_strides(c, &w_src, 2, wdims, dnnl_s8, wstr);
    osp__md_tag(c, &acc_md, 2, dd, dnnl_s32, dnnl_ab);
    osp__md_tag(c, &y_md, 2, dd, osp__dnnl_dt(Y->dtype), dnnl_ab);
    int32_t zx = xq->zero_point[0];
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = osp__q8_s32_attr(zx);
    if (!attr || osp__pd_fast(dnnl_matmul_primitive_desc_create(
                                  &pd, c->e->dnnl_eng, src_md, w_any, NULL,
                                  acc_md, attr),
                              attr, &pd) < 0)
        return OSP_EUNSUPPORTED;
    osp__q8_req_t *req = osp__q8_req_create(
        xq, wq, yq, N, wq->count == 1,
        bias >= 0 ? (const int32_t *)g->values[bias].data : NULL, qmin, qmax,
        Y->dtype == OSP_DT_U8, (size_t)M, bound);
    if (!req) {
        dnnl_primitive_desc_destroy(pd);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }
    return s32_steps(c, ni, pd, x, &src_md, w, &w_src, y, &y_md, req, bound,
                     zx);
}

/* FULLY_CONNECTED (GEMM with B = W^T given as [N, K]) as an int8 matmul:
 * weights read as [K, N] through strides, s32 bias as [1, N]. */
static int q8gemm_try(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    const osp_gemm_params_t *gp = &n->p.gemm;
    if (n->n_in < 2 || n->n_in > 3 || n->n_out != 1 || n->n_post ||
        gp->trans_a || !gp->trans_b || gp->alpha != 1.f)
        return OSP_EUNSUPPORTED;
    int x = n->in[0], w = n->in[1], bias = n->n_in > 2 ? n->in[2] : -1;
    int y = n->out[0];
    if (bias >= 0 && gp->beta != 1.f)
        return OSP_EUNSUPPORTED;
    const osp_quant_t *xq = act_quant(g, x), *yq = act_quant(g, y);
    if (!xq || !yq || w < 0)
        return OSP_EUNSUPPORTED;
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    if (X->rank != 2 || W->rank != 2 || Y->rank != 2 ||
        W->dims[1] != X->dims[1] || Y->dims[0] != X->dims[0] ||
        Y->dims[1] != W->dims[0])
        return OSP_EUNSUPPORTED;
    int64_t M = X->dims[0], K = X->dims[1], N = W->dims[0];
    const osp_quant_t *wq = s8_weights(g, w, N);
    if (!wq || !bias_s32(g, bias, N))
        return OSP_EUNSUPPORTED;
    int32_t qmin, qmax;
    if (!osp__q8_post_range(n, yq, Y->dtype, &qmin, &qmax))
        return OSP_EUNSUPPORTED;
    if (exact_requant(c->e, c->g))
        return q8gemm_s32(c, ni, xq, wq, yq, qmin, qmax);
    dnnl_memory_desc_t src_md, w_any, w_src, dst_md, b_md;
    int64_t sd[2] = {M, K}, wdims[2] = {K, N}, wstr[2] = {1, K}, dd[2] = {M, N},
            bd[2] = {1, N};
    osp__md_tag(c, &src_md, 2, sd, osp__dnnl_dt(X->dtype), dnnl_ab);
    osp__md_any(c, &w_any, 2, wdims, dnnl_s8);
    osp__md_strides(c, &w_src, 2, wdims, dnnl_s8, wstr);
    osp__md_tag(c, &dst_md, 2, dd, osp__dnnl_dt(Y->dtype), dnnl_ab);
    osp__md_tag(c, &b_md, 2, bd, dnnl_f32, dnnl_ab);
    qreq_t *rq = malloc(sizeof(qreq_t) * (size_t)N);
    if (!rq)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    out_requant(xq, wq, yq, N, wq->count == 1,
                bias >= 0 ? g->values[bias].data : NULL, rq);
    const qzp_t z = q_zps(g, xq->zero_point[0], yq->zero_point[0]);
    char note[96] = "";
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr =
        q_attr(1 << 1, &z, qmin, qmax, Y->dtype, NULL, note, sizeof note);
    if (!attr || osp__pd_fast(dnnl_matmul_primitive_desc_create(
                                  &pd, c->e->dnnl_eng, src_md, w_any, b_md,
                                  dst_md, attr),
                              attr, &pd) < 0) {
        free(rq);
        return OSP_EUNSUPPORTED;
    }
    dnnl_memory_desc_t wmd = osp__md_query(c, pd, dnnl_query_weights_md);
    int kinds[7], bufs[7], na = 0;
    int b = q_consts(c, rq, N, &z, &b_md, kinds, bufs, &na);
    free(rq);
    if (b < 0)
        goto fail;
    b = osp__buf_as(c, x, &src_md);
    if (b < 0)
        goto fail;
    kinds[na] = DNNL_ARG_SRC, bufs[na++] = b;
    b = osp__const_as(c, w, &w_src, &wmd);
    if (b < 0)
        goto fail;
    kinds[na] = DNNL_ARG_WEIGHTS, bufs[na++] = b;
    b = osp__buf_new(c, &dst_md, y);
    if (b < 0)
        goto fail;
    int db = b;
    kinds[na] = DNNL_ARG_DST, bufs[na++] = db;
    int rc = osp__step_dnnl(c, ni, pd, na, kinds, bufs, note);
    if (rc < 0)
        return rc;
    osp__bind_value(c, y, db);
    return 0;
fail:
    dnnl_primitive_desc_destroy(pd);
    return b;
}

int osp__dnnl_q8gemm(osp__plan_ctx_t *c, int ni) {
    if (!c->e->int8_dnnl || !int8_exact_cpu())
        return OSP_EUNSUPPORTED;
    return q8gemm_try(c, ni);
}

/* Which path the quantized nodes of a plan took: oneDNN int8 primitives
 * (convs / gemms; "exact requant" counts those requantized by osprey, the
 * rest by oneDNN in float), fp32-carrier convs, lookup tables or the exact
 * integer reference kernels. Empty for plans without quantized nodes. */
void osp__q8_path_summary(const osp_engine_t *e, const osp__plan_t *p,
                            char *buf, size_t len) {
    if (e->dequantized) {
        snprintf(buf, len,
                 "int8 path: none (quantized model dequantized at load, runs "
                 "in %s)",
                 osp_precision_name(e->prec));
        return;
    }
    int n_conv = 0, n_gemm = 0, n_ref = 0, n_lut = 0, n_fcq = 0, n_q8rq = 0;
    int n_dw = 0, n_pw = 0;
    const osp_graph_t *g = p->g;
    buf[0] = '\0';
    for (int i = 0; i < p->n_steps; i++) {
        const osp__plan_step_t *s = &p->steps[i];
        if (s->node < 0)
            continue;
        const osp_node_t *n = &g->nodes[s->node];
        bool quant = false;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0 && g->values[n->out[k]].quant)
                quant = true;
        if (!quant)
            continue;
        if (s->kind == OSP_STEP_FN && !strcmp(s->impl, "osprey:fcq-requant"))
            n_fcq++; /* q8_f32conv.c: one per node */
        else if (s->kind == OSP_STEP_FN &&
                 !strcmp(s->impl, "osprey:q8-requant"))
            n_q8rq++; /* exact requant after a oneDNN int8 step */
        else if (s->kind == OSP_STEP_FN &&
                 !strncmp(s->impl, "osprey:q8-dw", 12))
            n_dw++; /* q8_dwconv.c: accumulate and requantize, one step */
        else if (s->kind == OSP_STEP_FN &&
                 !strncmp(s->impl, "osprey:q8-1x1", 13))
            n_pw++; /* q8_pwconv.c: the same for 1x1 convolutions */
        else if (s->kind == OSP_STEP_FN &&
                 !strncmp(s->impl, "osprey:q8-tiled", 15)) {
            n_conv++; /* oneDNN int8 conv and exact requant in one step */
            n_q8rq++;
        }
        else if (s->kind == OSP_STEP_FN ||
                 (s->kind == OSP_STEP_DNNL && !strncmp(s->note, "fp32-carrier", 12)))
            continue;
        else if (s->kind == OSP_STEP_DNNL && n->op == OSP_OP_CONV)
            n_conv++;
        else if (s->kind == OSP_STEP_DNNL &&
                 (n->op == OSP_OP_GEMM || n->op == OSP_OP_MATMUL))
            n_gemm++;
        else if (s->kind == OSP_STEP_DNNL)
            continue; /* 8-bit max pooling: data movement, exact */
        else if (s->kind == OSP_STEP_REF)
            n_ref++;
        else if (s->kind == OSP_STEP_LUT)
            n_lut++;
    }
    if (n_conv + n_gemm + n_dw + n_pw + n_ref + n_lut + n_fcq)
        snprintf(buf, len,
                 "int8 path: oneDNN int8 %d ops (%d conv, %d gemm; exact "
                 "requant %d), osprey int8 %d ops (%d depthwise, %d 1x1), "
                 "exact fp32-carrier %d ops, exact lookup tables %d ops, "
                 "exact reference %d ops",
                 n_conv + n_gemm, n_conv, n_gemm, n_q8rq, n_dw + n_pw, n_dw,
                 n_pw, n_fcq, n_lut, n_ref);
}
