/* ref_pool.c — reference kernels for MAXPOOL, AVGPOOL (1-D/2-D/3-D,
 * strides, dilations, explicit or auto_pad padding, ceil_mode,
 * count_include_pad) and GLOBAL_AVGPOOL / GLOBAL_MAXPOOL. f32, NCHW.
 *
 * 1-D and 2-D windows are handled as 3-D ones with leading size-1 dims, so
 * there is one loop nest. AveragePool's divisor follows ONNX Runtime: with
 * count_include_pad it counts taps inside input + declared pads (not the
 * ceil_mode overhang), without it only taps inside the input. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "engine/ops/ref.h"

/* A window lifted to 3 spatial dims (index 0 = D, 1 = H, 2 = W). */
typedef struct win3_s {
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} win3_t;

/* Taps k in [0, K) with 0 <= st + k*d < in are [*lo, *hi); computed, not
 * searched, so a hostile kernel size costs nothing. */
static void tap_range(int64_t st, int64_t d, int64_t in, int64_t K,
                      int64_t *lo, int64_t *hi) {
    int64_t l = st >= 0 ? 0 : (-st + d - 1) / d;
    int64_t h = in - st <= 0 ? 0 : (in - 1 - st) / d + 1;
    *lo = l < K ? l : K;
    *hi = h < K ? h : K;
    if (*hi < *lo)
        *hi = *lo;
}

static int lift3(const osp_node_t *n, const osp_window_t *w0,
                 const osp_tensor_t *x, const int64_t *kernel, bool ceil_mode,
                 const osp_tensor_t *y, win3_t *w3, osp_err_t *err) {
    osp_window_t w = *w0;
    int ns = x->rank - 2;
    if (ns < 1 || ns > OSP_MAX_SPATIAL)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "input rank %d",
                             x->rank);
    w.n_spatial = ns;
    int64_t out[OSP_MAX_SPATIAL];
    int rc = osp_window_resolve(&w, x->dims + 2, kernel, ceil_mode, out, err);
    if (rc < 0)
        return osp_err_prefix(err, "node '%s' (%s)", n->name,
                              osp_op_name(n->op)),
               rc;
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - ns); /* spatial index, < 0 for the lifted dims */
        w3->in[i] = j < 0 ? 1 : x->dims[2 + j];
        w3->out[i] = j < 0 ? 1 : out[j];
        w3->k[i] = j < 0 ? 1 : w.kernel[j];
        w3->s[i] = j < 0 ? 1 : w.stride[j];
        w3->d[i] = j < 0 ? 1 : w.dilation[j];
        w3->pb[i] = j < 0 ? 0 : w.pad_begin[j];
        w3->pe[i] = j < 0 ? 0 : w.pad_end[j];
        if (j >= 0 && y->dims[2 + j] != out[j])
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "output spatial dim %d is %lld, expected "
                                 "%lld",
                                 j, (long long)y->dims[2 + j],
                                 (long long)out[j]);
    }
    return 0;
}

/* MaxPool on u8/s8 (opset 12; appears between QDQ pairs): same windows,
 * elements read as integers. Not a hot path. */
static void maxpool_int(const win3_t *w, const osp_tensor_t *x,
                        osp_tensor_t *y) {
    int64_t planes = x->dims[0] * x->dims[1];
    int64_t isz = w->in[0] * w->in[1] * w->in[2];
    int64_t osz = w->out[0] * w->out[1] * w->out[2];
    for (int64_t p = 0; p < planes; p++)
        for (int64_t o = 0; o < osz; o++) {
            int64_t od = o / (w->out[1] * w->out[2]);
            int64_t oh = o / w->out[2] % w->out[1], ow = o % w->out[2];
            int64_t best = INT64_MIN;
            int64_t st[3] = {od * w->s[0] - w->pb[0], oh * w->s[1] - w->pb[1],
                             ow * w->s[2] - w->pb[2]};
            int64_t lo[3], hi[3];
            for (int i = 0; i < 3; i++)
                tap_range(st[i], w->d[i], w->in[i], w->k[i], &lo[i], &hi[i]);
            for (int64_t kd = lo[0]; kd < hi[0]; kd++)
                for (int64_t kh = lo[1]; kh < hi[1]; kh++)
                    for (int64_t kw = lo[2]; kw < hi[2]; kw++) {
                        int64_t id = st[0] + kd * w->d[0];
                        int64_t ih = st[1] + kh * w->d[1];
                        int64_t iw = st[2] + kw * w->d[2];
                        int64_t v = osp_tensor_get_i64(
                            x, (size_t)(p * isz +
                                        (id * w->in[1] + ih) * w->in[2] + iw));
                        best = v > best ? v : best;
                    }
            if (best == INT64_MIN) /* window entirely in padding */
                best = x->dtype == OSP_DT_U8 ? 0 : -128;
            size_t at = (size_t)(p * osz + o);
            if (x->dtype == OSP_DT_U8)
                ((uint8_t *)y->data)[at] = (uint8_t)best;
            else
                ((int8_t *)y->data)[at] = (int8_t)best;
        }
}

int osp__ref_pool(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    if (n->op == OSP_OP_MAXPOOL && x->dtype == out[0].dtype &&
        (x->dtype == OSP_DT_U8 || x->dtype == OSP_DT_S8)) {
        win3_t w;
        int rc = lift3(n, &n->p.pool.win, x, NULL, n->p.pool.ceil_mode,
                       &out[0], &w, err);
        if (rc < 0)
            return rc;
        maxpool_int(&w, x, &out[0]);
        return 0;
    }
    if (x->dtype != OSP_DT_F32 || out[0].dtype != OSP_DT_F32)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "dtype %s (f32 only)",
                             osp_dtype_name(x->dtype));
    win3_t w;
    int rc = lift3(n, &n->p.pool.win, x, NULL, n->p.pool.ceil_mode, &out[0],
                   &w, err);
    if (rc < 0)
        return rc;
    bool is_max = n->op == OSP_OP_MAXPOOL;
    bool incl = n->p.pool.count_include_pad;
    int64_t planes = x->dims[0] * x->dims[1];
    size_t isz = (size_t)(w.in[0] * w.in[1] * w.in[2]);
    size_t osz = (size_t)(w.out[0] * w.out[1] * w.out[2]);
    for (int64_t p = 0; p < planes; p++) {
        const float *xs = (const float *)x->data + (size_t)p * isz;
        float *ys = (float *)out[0].data + (size_t)p * osz;
        for (int64_t od = 0; od < w.out[0]; od++)
            for (int64_t oh = 0; oh < w.out[1]; oh++)
                for (int64_t ow = 0; ow < w.out[2]; ow++) {
                    int64_t s0 = od * w.s[0] - w.pb[0];
                    int64_t s1 = oh * w.s[1] - w.pb[1];
                    int64_t s2 = ow * w.s[2] - w.pb[2];
                    float acc = is_max ? -FLT_MAX : 0.0f;
                    int64_t st[3] = {s0, s1, s2}, lo[3], hi[3];
                    /* doubles: hostile kernel sizes must not overflow */
                    double cnt = 1, cnt_pad = 1;
                    for (int i = 0; i < 3; i++) {
                        tap_range(st[i], w.d[i], w.in[i], w.k[i], &lo[i],
                                  &hi[i]);
                        cnt *= (double)(hi[i] - lo[i]);
                        /* taps inside input + declared end padding */
                        int64_t lim = w.in[i] + w.pe[i] - st[i];
                        int64_t cp = lim <= 0 ? 0 : (lim - 1) / w.d[i] + 1;
                        cnt_pad *= (double)(cp < w.k[i] ? cp : w.k[i]);
                    }
                    for (int64_t kd = lo[0]; kd < hi[0]; kd++) {
                        int64_t id = s0 + kd * w.d[0];
                        for (int64_t kh = lo[1]; kh < hi[1]; kh++) {
                            int64_t ih = s1 + kh * w.d[1];
                            const float *row =
                                xs + (size_t)((id * w.in[1] + ih) * w.in[2]);
                            for (int64_t kw = lo[2]; kw < hi[2]; kw++) {
                                float v = row[s2 + kw * w.d[2]];
                                if (is_max)
                                    acc = v > acc || isnan(v) ? v : acc;
                                else
                                    acc += v;
                            }
                        }
                    }
                    if (!is_max) {
                        double div = incl ? cnt_pad : cnt;
                        acc = div > 0 ? (float)(acc / div) : 0.0f;
                    }
                    ys[(od * w.out[1] + oh) * w.out[2] + ow] = acc;
                }
    }
    return 0;
}

int osp__ref_global_pool(const osp_graph_t *g, const osp_node_t *n,
                         const osp_tensor_t *in, osp_tensor_t *out,
                         osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    if (x->dtype != OSP_DT_F32 || x->rank < 2)
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "dtype %s rank %d (f32, rank >= 2)",
                             osp_dtype_name(x->dtype), x->rank);
    int64_t planes = x->dims[0] * x->dims[1], sp = 1;
    for (int i = 2; i < x->rank; i++)
        sp *= x->dims[i];
    if (osp_tensor_numel(&out[0]) != (size_t)planes ||
        out[0].dtype != OSP_DT_F32)
        return osp__node_err(err, OSP_ESHAPE, n, "output size/dtype");
    const float *xp = x->data;
    float *y = out[0].data;
    bool is_max = n->op == OSP_OP_GLOBAL_MAXPOOL;
    for (int64_t p = 0; p < planes; p++) {
        const float *xs = xp + (size_t)(p * sp);
        if (is_max) {
            float m = -FLT_MAX;
            for (int64_t i = 0; i < sp; i++)
                m = xs[i] > m || isnan(xs[i]) ? xs[i] : m;
            y[p] = m;
        } else {
            double s = 0.0;
            for (int64_t i = 0; i < sp; i++)
                s += xs[i];
            y[p] = sp ? (float)(s / (double)sp) : NAN;
        }
    }
    return 0;
}
