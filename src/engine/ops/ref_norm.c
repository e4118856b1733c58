/* ref_norm.c — reference kernels for normalisations and reductions:
 * BATCHNORM (inference form), LRN (across channels), SOFTMAX (opset >= 13
 * single-axis semantics, and `legacy` opset < 13: coerce to 2-D at axis and
 * normalise each row) and REDUCE_MEAN (axes from params or input 1, keepdims,
 * noop_with_empty_axes). f32 only. */
#include <math.h>
#include <string.h>

#include "engine/ops/ref.h"

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= d[i];
    return p;
}

static int need_f32(const osp_node_t *n, const osp_tensor_t *t, int i,
                    size_t want, osp_err_t *err) {
    if (t->dtype != OSP_DT_F32 || (!t->data && want) ||
        (want != (size_t)-1 && osp_tensor_numel(t) != want))
        return osp__node_err(err, OSP_ESHAPE, n,
                             "input %d must be f32 with %zu elements", i,
                             want);
    return 0;
}

/* The output must be f32 with the input's element count. */
static int out_like(const osp_node_t *n, const osp_tensor_t *x,
                    const osp_tensor_t *y, osp_err_t *err) {
    if (y->dtype != OSP_DT_F32 || osp_tensor_numel(y) != osp_tensor_numel(x))
        return osp__node_err(err, OSP_ESHAPE, n,
                             "output must be f32 with %zu elements",
                             osp_tensor_numel(x));
    return 0;
}

int osp__ref_batchnorm(const osp_graph_t *g, const osp_node_t *n,
                       const osp_tensor_t *in, osp_tensor_t *out,
                       osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    if (n->n_in < 5 || x->rank < 2)
        return osp__node_err(err, OSP_ESHAPE, n, "needs 5 inputs, rank >= 2");
    int rc = need_f32(n, x, 0, (size_t)-1, err);
    int64_t c = x->dims[1];
    for (int i = 1; i <= 4 && rc == 0; i++)
        rc = need_f32(n, &in[i], i, (size_t)c, err);
    if (rc == 0)
        rc = out_like(n, x, &out[0], err);
    if (rc < 0)
        return rc;
    const float *sc = in[1].data, *bi = in[2].data, *mu = in[3].data,
                *var = in[4].data;
    int64_t nb = x->dims[0], sp = prod(x->dims, 2, x->rank);
    const float *xp = x->data;
    float *yp = out[0].data;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            float a = sc[ch] / sqrtf(var[ch] + n->p.bn.epsilon);
            float s = bi[ch] - mu[ch] * a;
            size_t off = (size_t)(b * c + ch) * (size_t)sp;
            for (int64_t i = 0; i < sp; i++)
                yp[off + (size_t)i] = xp[off + (size_t)i] * a + s;
        }
    return 0;
}

int osp__ref_lrn(const osp_graph_t *g, const osp_node_t *n,
                 const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    int rc = need_f32(n, x, 0, (size_t)-1, err);
    if (rc == 0)
        rc = out_like(n, x, &out[0], err);
    if (rc < 0)
        return rc;
    if (x->rank < 3 || n->p.lrn.size < 1)
        return osp__node_err(err, OSP_ESHAPE, n, "rank >= 3 and size >= 1");
    int64_t size = n->p.lrn.size, c = x->dims[1];
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo; /* floor / ceil */
    int64_t nb = x->dims[0], sp = prod(x->dims, 2, x->rank);
    float k = n->p.lrn.alpha / (float)size;
    const float *xp = x->data;
    float *yp = out[0].data;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            float *y = yp + (size_t)(b * c + ch) * (size_t)sp;
            for (int64_t i = 0; i < sp; i++)
                y[i] = 0.0f;
            int64_t c0 = ch - lo < 0 ? 0 : ch - lo;
            int64_t c1 = ch + hi >= c ? c - 1 : ch + hi;
            for (int64_t cc = c0; cc <= c1; cc++) {
                const float *xs = xp + (size_t)(b * c + cc) * (size_t)sp;
                for (int64_t i = 0; i < sp; i++)
                    y[i] += xs[i] * xs[i];
            }
            const float *xc = xp + (size_t)(b * c + ch) * (size_t)sp;
            for (int64_t i = 0; i < sp; i++)
                y[i] = xc[i] /
                       powf(n->p.lrn.bias + k * y[i], n->p.lrn.beta);
        }
    return 0;
}

int osp__ref_softmax(const osp_graph_t *g, const osp_node_t *n,
                     const osp_tensor_t *in, osp_tensor_t *out,
                     osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    int rc = need_f32(n, x, 0, (size_t)-1, err);
    if (rc == 0)
        rc = out_like(n, x, &out[0], err);
    if (rc < 0)
        return rc;
    int r = x->rank;
    int ax = r == 0 ? 0 : osp_norm_axis(n->p.axis.axis, r);
    if (ax < 0)
        return osp__node_err(err, OSP_ESHAPE, n, "axis %lld for rank %d",
                             (long long)n->p.axis.axis, r);
    int64_t outer = prod(x->dims, 0, ax), len, inner;
    if (n->p.axis.legacy) { /* [outer, rest] rows */
        len = prod(x->dims, ax, r);
        inner = 1;
    } else {
        len = r ? x->dims[ax] : 1;
        inner = prod(x->dims, ax + 1, r);
    }
    const float *xp = x->data;
    float *yp = out[0].data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xs = xp + (size_t)(o * len * inner + i);
            float *ys = yp + (size_t)(o * len * inner + i);
            float m = -INFINITY;
            for (int64_t j = 0; j < len; j++)
                m = xs[j * inner] > m ? xs[j * inner] : m;
            double sum = 0.0;
            for (int64_t j = 0; j < len; j++) {
                float e = expf(xs[j * inner] - m);
                ys[j * inner] = e;
                sum += e;
            }
            float inv = (float)(1.0 / sum);
            for (int64_t j = 0; j < len; j++)
                ys[j * inner] *= inv;
        }
    return 0;
}

int osp__ref_reduce_mean(const osp_graph_t *g, const osp_node_t *n,
                         const osp_tensor_t *in, osp_tensor_t *out,
                         osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    int rc = need_f32(n, x, 0, (size_t)-1, err);
    if (rc < 0)
        return rc;
    int r = x->rank;
    int64_t axes[OSP_MAX_RANK];
    int k = osp__node_axes(n, osp__has_in(n, 1) ? &in[1] : NULL, axes);
    if (k < 0)
        return osp__node_err(err, OSP_ESHAPE, n, "axes input has no data");
    size_t cnt = osp_tensor_numel(x);
    if (k == 0 && n->p.axes.noop_with_empty_axes) {
        rc = out_like(n, x, &out[0], err);
        if (rc < 0)
            return rc;
        if (cnt)
            memmove(out[0].data, x->data, cnt * sizeof(float));
        return 0;
    }
    bool red[OSP_MAX_RANK];
    for (int i = 0; i < r; i++)
        red[i] = k == 0;
    for (int i = 0; i < k; i++) {
        int a = osp_norm_axis(axes[i], r);
        if (a < 0)
            return osp__node_err(err, OSP_ESHAPE, n, "axis %lld",
                                 (long long)axes[i]);
        red[a] = true;
    }
    /* Output strides over the input dims (0 on reduced dims). */
    int64_t ost[OSP_MAX_RANK], s = 1, nred = 1;
    for (int i = r - 1; i >= 0; i--) {
        if (red[i]) {
            ost[i] = 0;
            nred *= x->dims[i];
        } else {
            ost[i] = s;
            s *= x->dims[i];
        }
    }
    size_t ocnt = osp_tensor_numel(&out[0]);
    if ((size_t)s != ocnt || out[0].dtype != OSP_DT_F32)
        return osp__node_err(err, OSP_ESHAPE, n, "output size");
    float *y = out[0].data;
    for (size_t i = 0; i < ocnt; i++)
        y[i] = 0.0f;
    if (cnt == 0) { /* mean of nothing: NaN, as numpy */
        for (size_t i = 0; i < ocnt; i++)
            y[i] = NAN;
        return 0;
    }
    const float *xp = x->data;
    int64_t idx[OSP_MAX_RANK] = {0};
    int64_t last = r ? x->dims[r - 1] : 1, lst = r ? ost[r - 1] : 0;
    size_t rows = cnt / (size_t)last;
    for (size_t row = 0; row < rows; row++) {
        int64_t base = 0;
        for (int i = 0; i < r - 1; i++)
            base += idx[i] * ost[i];
        const float *xs = xp + row * (size_t)last;
        if (lst == 0) {
            float acc = 0.0f;
            for (int64_t j = 0; j < last; j++)
                acc += xs[j];
            y[base] += acc;
        } else {
            for (int64_t j = 0; j < last; j++)
                y[base + j] += xs[j];
        }
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < x->dims[i])
                break;
            idx[i] = 0;
        }
    }
    float inv = 1.0f / (float)nred;
    for (size_t i = 0; i < ocnt; i++)
        y[i] *= inv;
    return 0;
}
