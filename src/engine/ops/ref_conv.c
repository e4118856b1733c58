/* ref_conv.c — reference kernel for CONV: 1-D/2-D/3-D, groups (incl.
 * depthwise), strides, dilations, explicit asymmetric or auto_pad padding,
 * optional bias, and fused post-ops (applied by ref.c). f32, NCHW data,
 * weights [O, C/group, k...].
 *
 * This is the executor's fallback and the oracle for full-size images, so it
 * is a direct convolution ordered for the cache rather than the naive
 * 7-deep nest: for each output plane we accumulate, per (input channel, tap),
 * a scaled copy of an input row segment into the output rows. The inner loop
 * is a contiguous axpy (strided read when stride > 1) whose valid range is
 * computed once per tap, so there is no bounds test per element. 1x1
 * stride-1 unpadded convs (most of a ResNet's FLOPs) are one matrix product
 * per group instead, which also keeps 7x7 planes fast. */
#if defined(__GNUC__) && !defined(__clang__)
/* -O2 in GCC 12 only vectorizes loops without an epilogue; this file's inner
 * loops are the hot path of the reference oracle. */
#pragma GCC optimize("O3")
#endif

#include <string.h>

#include "engine/ops/ref.h"

typedef struct conv3_s {
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
} conv3_t;

/* ow range [lo, hi) for which iw = ow*s + off lies in [0, in). */
static void valid_range(int64_t off, int64_t s, int64_t in, int64_t out,
                        int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = in - 1 - off < 0 ? 0 : (in - 1 - off) / s + 1;
    if (h > out)
        h = out;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* Accumulates w * x(plane) into y(plane) for one kernel tap. */
static void conv_tap(const conv3_t *c, const float *xs, float *ys, float w,
                     int64_t kd, int64_t kh, int64_t kw) {
    int64_t offw = kw * c->d[2] - c->pb[2], lo, hi;
    valid_range(offw, c->s[2], c->in[2], c->out[2], &lo, &hi);
    if (lo >= hi)
        return;
    int64_t sw = c->s[2];
    for (int64_t od = 0; od < c->out[0]; od++) {
        int64_t id = od * c->s[0] + kd * c->d[0] - c->pb[0];
        if (id < 0 || id >= c->in[0])
            continue;
        for (int64_t oh = 0; oh < c->out[1]; oh++) {
            int64_t ih = oh * c->s[1] + kh * c->d[1] - c->pb[1];
            if (ih < 0 || ih >= c->in[1])
                continue;
            const float *xr = xs + (id * c->in[1] + ih) * c->in[2];
            float *yr = ys + (od * c->out[1] + oh) * c->out[2];
            if (sw == 1) {
                const float *xo = xr + (lo + offw); /* in bounds: lo valid */
                float *yo = yr + lo;
                for (int64_t j = 0; j < hi - lo; j++)
                    yo[j] += w * xo[j];
            } else {
                for (int64_t ow = lo; ow < hi; ow++)
                    yr[ow] += w * xr[ow * sw + offw];
            }
        }
    }
}

/* Stack budget (floats) for the unrolled input patches of small planes. */
#define COL_FLOATS 8192

/* Unrolls input channels [ic0, ic0 + icb) of one group into
 * col[(icl*ksz + tap) * osz + o] (zero where the tap falls in padding). */
static void im2col(const conv3_t *c, const float *xg, size_t isz, int64_t ic0,
                   int64_t icb, float *col) {
    float *dst = col;
    for (int64_t icl = 0; icl < icb; icl++) {
        const float *xs = xg + (size_t)(ic0 + icl) * isz;
        for (int64_t kd = 0; kd < c->k[0]; kd++)
            for (int64_t kh = 0; kh < c->k[1]; kh++)
                for (int64_t kw = 0; kw < c->k[2]; kw++) {
                    for (int64_t od = 0; od < c->out[0]; od++) {
                        int64_t id = od * c->s[0] + kd * c->d[0] - c->pb[0];
                        for (int64_t oh = 0; oh < c->out[1]; oh++) {
                            int64_t ih =
                                oh * c->s[1] + kh * c->d[1] - c->pb[1];
                            bool row_ok = id >= 0 && id < c->in[0] &&
                                          ih >= 0 && ih < c->in[1];
                            const float *xr =
                                row_ok ? xs + (id * c->in[1] + ih) * c->in[2]
                                       : NULL;
                            for (int64_t ow = 0; ow < c->out[2]; ow++) {
                                int64_t iw =
                                    ow * c->s[2] + kw * c->d[2] - c->pb[2];
                                *dst++ = row_ok && iw >= 0 && iw < c->in[2]
                                             ? xr[iw]
                                             : 0.0f;
                            }
                        }
                    }
                }
    }
}

int osp__ref_conv(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err) {
    const osp_tensor_t *x = &in[0], *wt = &in[1];
    const osp_tensor_t *b = osp__has_in(n, 2) ? &in[2] : NULL;
    osp_tensor_t *y = &out[0];
    if (n->n_in < 2 || !wt->data)
        return osp__node_err(err, OSP_EINVAL, n, "weight has no data");
    if (x->dtype != OSP_DT_F32 || wt->dtype != OSP_DT_F32 ||
        y->dtype != OSP_DT_F32 || (b && b->dtype != OSP_DT_F32))
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "f32 only");
    int ns = x->rank - 2;
    if (ns < 1 || ns > OSP_MAX_SPATIAL || wt->rank != x->rank ||
        y->rank != x->rank)
        return osp__node_err(err, OSP_ESHAPE, n, "ranks %d/%d/%d", x->rank,
                             wt->rank, y->rank);
    int64_t group = n->p.conv.group ? n->p.conv.group : 1;
    int64_t nb = x->dims[0], cin = x->dims[1], cout = wt->dims[0];
    int64_t cpg = wt->dims[1]; /* input channels per group */
    if (group < 1 || cout % group || cin % group || cin / group != cpg ||
        y->dims[0] != nb || y->dims[1] != cout)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "channels: input %lld, weight [%lld, %lld], "
                             "group %lld",
                             (long long)cin, (long long)cout, (long long)cpg,
                             (long long)group);
    if (b && (!b->data || osp_tensor_numel(b) != (size_t)cout))
        return osp__node_err(err, OSP_ESHAPE, n, "bias size");
    osp_window_t w = n->p.conv.win;
    w.n_spatial = ns;
    int64_t os[OSP_MAX_SPATIAL];
    int rc = osp_window_resolve(&w, x->dims + 2, wt->dims + 2, false, os, err);
    if (rc < 0)
        return osp_err_prefix(err, "node '%s' (CONV)", n->name), rc;
    conv3_t c;
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - ns);
        c.in[i] = j < 0 ? 1 : x->dims[2 + j];
        c.out[i] = j < 0 ? 1 : os[j];
        c.k[i] = j < 0 ? 1 : w.kernel[j];
        c.s[i] = j < 0 ? 1 : w.stride[j];
        c.d[i] = j < 0 ? 1 : w.dilation[j];
        c.pb[i] = j < 0 ? 0 : w.pad_begin[j];
        if (j >= 0 && y->dims[2 + j] != os[j])
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "output spatial dim %d is %lld, expected "
                                 "%lld",
                                 j, (long long)y->dims[2 + j],
                                 (long long)os[j]);
    }
    size_t isz = (size_t)(c.in[0] * c.in[1] * c.in[2]);
    size_t osz = (size_t)(c.out[0] * c.out[1] * c.out[2]);
    size_t ksz = (size_t)(c.k[0] * c.k[1] * c.k[2]);
    int64_t opg = cout / group;
    const float *xp = x->data, *wp = wt->data;
    const float *bp = b ? b->data : NULL;
    float *yp = y->data;
    bool pointwise = ksz == 1 && c.pb[0] == 0 && c.pb[1] == 0 &&
                     c.pb[2] == 0 && c.s[0] == 1 && c.s[1] == 1 &&
                     c.s[2] == 1 && isz == osz;
    /* Small planes (late ResNet stages): the direct loops would run rows of
     * 7 or 14; unrolling a few input channels at a time into a stack buffer
     * turns the conv into matrix products over whole planes instead. */
    bool small = !pointwise && opg >= 4 && ksz * osz <= COL_FLOATS;
    int64_t icb = small ? (int64_t)(COL_FLOATS / (ksz * osz)) : 0;
    float col[COL_FLOATS]; /* 32 KiB of stack */
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t oc = 0; oc < cout;) {
            int64_t gi = oc / opg;
            const float *xg = xp + (size_t)(bi * cin + gi * cpg) * isz;
            if (pointwise) { /* 1x1: one matrix product per group */
                int64_t m = opg - oc % opg;
                float *y0 = yp + (size_t)(bi * cout + oc) * osz;
                for (int64_t q = 0; q < m; q++)
                    for (size_t i = 0; i < osz; i++)
                        y0[(size_t)q * osz + i] = bp ? bp[oc + q] : 0.0f;
                osp__ref_sgemm_acc(m, (int64_t)osz, cpg, 1.0f,
                                   wp + (size_t)oc * (size_t)cpg, cpg, 1, xg,
                                   (int64_t)isz, 1, y0, (int64_t)osz);
                oc += m;
                continue;
            }
            if (small) {
                int64_t m = opg - oc % opg;
                float *y0 = yp + (size_t)(bi * cout + oc) * osz;
                for (int64_t q = 0; q < m; q++)
                    for (size_t i = 0; i < osz; i++)
                        y0[(size_t)q * osz + i] = bp ? bp[oc + q] : 0.0f;
                for (int64_t ic0 = 0; ic0 < cpg; ic0 += icb) {
                    int64_t nb_ic = cpg - ic0 < icb ? cpg - ic0 : icb;
                    im2col(&c, xg, isz, ic0, nb_ic, col);
                    osp__ref_sgemm_acc(
                        m, (int64_t)osz, nb_ic * (int64_t)ksz, 1.0f,
                        wp + ((size_t)oc * (size_t)cpg + (size_t)ic0) * ksz,
                        cpg * (int64_t)ksz, 1, col, (int64_t)osz, 1, y0,
                        (int64_t)osz);
                }
                oc += m;
                continue;
            }
            float *ys = yp + (size_t)(bi * cout + oc) * osz;
            float bias = bp ? bp[oc] : 0.0f;
            for (size_t i = 0; i < osz; i++)
                ys[i] = bias;
            for (int64_t ic = 0; ic < cpg; ic++) {
                const float *xs = xg + (size_t)ic * isz;
                const float *ws = wp + ((size_t)oc * (size_t)cpg +
                                        (size_t)ic) * ksz;
                for (int64_t kd = 0; kd < c.k[0]; kd++)
                    for (int64_t kh = 0; kh < c.k[1]; kh++)
                        for (int64_t kw = 0; kw < c.k[2]; kw++)
                            conv_tap(&c, xs, ys,
                                     ws[(kd * c.k[1] + kh) * c.k[2] + kw], kd,
                                     kh, kw);
            }
            oc++;
        }
    return 0;
}
