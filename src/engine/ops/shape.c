/* shape.c — shape and dtype inference for every IR op (ONNX opsets 7–17
 * semantics), plus the window/broadcast helpers of ref.h that the executor
 * shares so that both agree on output sizes and pads.
 *
 * Inference tolerates dynamic dims (-1) where the op allows it (they simply
 * propagate), so it can also run at load time; ops whose output shape depends
 * on tensor data (Reshape target, Squeeze/Unsqueeze/ReduceMean axes, Pad
 * pads) need that input to be constant. Bad model input is an OSP_ESHAPE /
 * OSP_EUNSUPPORTED error naming the node, never an assert.
 *
 * Per-op inference is a table (as ggml's op tables): infer_fns[], indexed by
 * IR op, holds one infer_<op> function per op or family; infer_op runs the
 * checks every op shares and then the op's row. An IR op added to ir.h gets
 * its row there (without one, loading a model that uses it fails with "no
 * shape inference for this op"). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops/ref.h"

/* ---- small helpers ------------------------------------------------------ */

int osp__node_err(osp_err_t *err, int code, const osp_node_t *n,
                  const char *fmt, ...) {
    char msg[OSP_ERR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return osp_err_set(err, code, "node '%s' (%s): %s", n->name,
                       osp_op_name(n->op), msg);
}

int osp_norm_axis(int64_t axis, int rank) {
    if (axis < -rank || axis >= rank)
        return -1;
    return (int)(axis < 0 ? axis + rank : axis);
}

int osp_broadcast_shapes(const int64_t *a, int ra, const int64_t *b, int rb,
                         int64_t *out, int *rout) {
    int r = ra > rb ? ra : rb;
    if (r > OSP_MAX_RANK)
        return -1;
    for (int i = 0; i < r; i++) {
        int64_t da = i < r - ra ? 1 : a[i - (r - ra)];
        int64_t db = i < r - rb ? 1 : b[i - (r - rb)];
        int64_t d;
        if (da == db)
            d = da;
        else if (da == 1)
            d = db;
        else if (db == 1)
            d = da;
        else if (da < 0)
            d = db; /* dynamic vs concrete d: must be d (or 1) at run time */
        else if (db < 0)
            d = da;
        else
            return -1;
        out[i] = d;
    }
    *rout = r;
    return 0;
}

osp_tensor_t osp_value_tensor(const osp_value_t *v) {
    osp_tensor_t t;
    memset(&t, 0, sizeof t);
    t.name = v->name;
    t.dtype = v->dtype;
    t.rank = v->rank < 0 ? 0 : v->rank;
    for (int i = 0; i < t.rank; i++)
        t.dims[i] = v->dims[i];
    t.data = v->data;
    return t;
}

int osp__node_axes(const osp_node_t *n, const osp_tensor_t *t1,
                   int64_t *axes) {
    if (n->p.axes.has_axes) {
        for (int i = 0; i < n->p.axes.n_axes; i++)
            axes[i] = n->p.axes.axes[i];
        return n->p.axes.n_axes;
    }
    if (!t1 || t1->dtype == OSP_DT_UNDEF)
        return 0;
    if (!t1->data)
        return osp_tensor_numel(t1) == 0 ? 0 : -1;
    return osp_tensor_read_ints(t1, axes, OSP_MAX_RANK);
}

void osp__shape_range(const osp_node_t *n, int r, int *start, int *end) {
    /* The ONNX importer stores opset-15 start/end as axes[0]/axes[1]
     * (has_axes); without them the whole shape is taken. */
    const osp_axes_params_t *a = &n->p.axes;
    int64_t s = a->has_axes && a->n_axes >= 1 ? a->axes[0] : 0;
    int64_t e = a->has_axes && a->n_axes >= 2 ? a->axes[1] : r;
    if (s < 0)
        s += r;
    if (e < 0)
        e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    *start = (int)s;
    *end = (int)(e < s ? s : e);
}

int osp__check_params(const osp_node_t *n, osp_err_t *err) {
    if (n->n_post < 0 || n->n_post > OSP_MAX_POST_OPS)
        return osp__node_err(err, OSP_EFORMAT, n, "%d post-ops", n->n_post);
    switch (n->op) {
    case OSP_OP_SQUEEZE:
    case OSP_OP_UNSQUEEZE:
    case OSP_OP_REDUCE_MEAN:
    case OSP_OP_TRANSPOSE:
    case OSP_OP_RESHAPE:
    case OSP_OP_SHAPE:
        if (n->p.axes.has_axes &&
            (n->p.axes.n_axes < 0 || n->p.axes.n_axes > OSP_MAX_RANK))
            return osp__node_err(err, OSP_EFORMAT, n, "%d axes",
                                 n->p.axes.n_axes);
        break;
    case OSP_OP_PAD:
        if (n->p.pad.has_pads &&
            (n->p.pad.n_pads < 0 || n->p.pad.n_pads > 2 * OSP_MAX_RANK))
            return osp__node_err(err, OSP_EFORMAT, n, "%d pads",
                                 n->p.pad.n_pads);
        break;
    default:
        break;
    }
    return 0;
}

/* ---- windows ------------------------------------------------------------ */

/* Bound on any single size/pad/stride taken from a model, so that sums and
 * products of a few of them cannot overflow int64. */
#define OSP__DIM_LIMIT ((int64_t)1 << 40)

int osp_window_resolve(osp_window_t *w, const int64_t *in_spatial,
                       const int64_t *kernel, bool ceil_mode,
                       int64_t *out_spatial, osp_err_t *err) {
    if (w->n_spatial < 1 || w->n_spatial > OSP_MAX_SPATIAL)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "%d spatial dims (1..%d supported)", w->n_spatial,
                           OSP_MAX_SPATIAL);
    for (int i = 0; i < w->n_spatial; i++) {
        int64_t in = in_spatial[i];
        int64_t k = kernel ? kernel[i] : w->kernel[i];
        if (k <= 0)
            return osp_err_set(err, OSP_ESHAPE,
                               "kernel size %lld in spatial dim %d",
                               (long long)k, i);
        if (kernel && w->kernel[i] > 0 && w->kernel[i] != k)
            return osp_err_set(err, OSP_ESHAPE,
                               "kernel_shape %lld disagrees with weight %lld "
                               "in spatial dim %d",
                               (long long)w->kernel[i], (long long)k, i);
        w->kernel[i] = k;
        if (w->stride[i] == 0)
            w->stride[i] = 1;
        if (w->dilation[i] == 0)
            w->dilation[i] = 1;
        int64_t s = w->stride[i], d = w->dilation[i];
        if (s < 0 || d < 0)
            return osp_err_set(err, OSP_ESHAPE,
                               "negative stride/dilation in spatial dim %d", i);
        if (k > OSP__DIM_LIMIT || s > OSP__DIM_LIMIT || d > OSP__DIM_LIMIT ||
            in > OSP__DIM_LIMIT || w->pad_begin[i] > OSP__DIM_LIMIT ||
            w->pad_end[i] > OSP__DIM_LIMIT ||
            (k > 1 && d > OSP__DIM_LIMIT / (k - 1)))
            return osp_err_set(err, OSP_ELIMIT,
                               "window sizes beyond 2^40 in spatial dim %d", i);
        int64_t dk = (k - 1) * d + 1, out;
        if (in < 0)
            return osp_err_set(err, OSP_ESHAPE,
                               "dynamic input size in spatial dim %d", i);
        switch (w->auto_pad) {
        case OSP_PAD_SAME_UPPER:
        case OSP_PAD_SAME_LOWER: {
            out = (in + s - 1) / s;
            int64_t total = (out - 1) * s + dk - in;
            if (total < 0)
                total = 0;
            if (w->auto_pad == OSP_PAD_SAME_UPPER) {
                w->pad_begin[i] = total / 2;
                w->pad_end[i] = total - total / 2;
            } else {
                w->pad_begin[i] = total - total / 2;
                w->pad_end[i] = total / 2;
            }
            break;
        }
        case OSP_PAD_VALID:
            w->pad_begin[i] = w->pad_end[i] = 0;
            out = in >= dk ? (in - dk) / s + 1 : 0;
            break;
        case OSP_PAD_EXPLICIT: {
            if (w->pad_begin[i] < 0 || w->pad_end[i] < 0)
                return osp_err_set(err, OSP_ESHAPE,
                                   "negative pads in spatial dim %d", i);
            int64_t span = in + w->pad_begin[i] + w->pad_end[i] - dk;
            if (span < 0) {
                out = 0;
                break;
            }
            out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
            /* The last window must start inside the input or the begin
             * padding, not in the end padding (PyTorch / ORT). */
            if (ceil_mode && (out - 1) * s >= in + w->pad_begin[i])
                out--;
            break;
        }
        default:
            return osp_err_set(err, OSP_EUNSUPPORTED, "auto_pad mode %d",
                               (int)w->auto_pad);
        }
        if (out <= 0)
            return osp_err_set(err, OSP_ESHAPE,
                               "window (kernel %lld, dilation %lld) does not "
                               "fit input %lld + pads %lld/%lld in spatial "
                               "dim %d",
                               (long long)k, (long long)d, (long long)in,
                               (long long)w->pad_begin[i],
                               (long long)w->pad_end[i], i);
        out_spatial[i] = out;
    }
    w->auto_pad = OSP_PAD_EXPLICIT;
    return 0;
}

int64_t osp_window_overhang(const osp_window_t *w, int i, int64_t in,
                            int64_t out) {
    int64_t dk = (w->kernel[i] - 1) * w->dilation[i] + 1;
    int64_t need = (out - 1) * w->stride[i] + dk;
    int64_t have = in + w->pad_begin[i] + w->pad_end[i];
    return need > have ? need - have : 0;
}

/* ---- per-op inference --------------------------------------------------- */

/* Input i as a value, or NULL when absent. */
static osp_value_t *in_val(osp_graph_t *g, const osp_node_t *n, int i) {
    return osp__has_in(n, i) ? &g->values[n->in[i]] : NULL;
}

static void set_out(osp_graph_t *g, const osp_node_t *n, int i,
                    osp_dtype_t dt, int rank, const int64_t *dims) {
    if (i >= n->n_out || n->out[i] < 0)
        return;
    osp_value_t *v = &g->values[n->out[i]];
    /* A quantized 8-bit output keeps its own type: its zero point belongs
     * to it, and an op may read s8 and write u8 (a ReLU's output,
     * pass_quantize.c). */
    bool q8 = dt == OSP_DT_U8 || dt == OSP_DT_S8;
    if (!(q8 && v->quant && (v->dtype == OSP_DT_U8 || v->dtype == OSP_DT_S8)))
        v->dtype = dt;
    v->rank = rank;
    for (int k = 0; k < rank; k++)
        v->dims[k] = dims[k];
    for (int k = rank; k < OSP_MAX_RANK; k++)
        v->dims[k] = 0;
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) {
        if (d[i] < 0)
            return -1;
        p *= d[i];
    }
    return p;
}

static int infer_window(osp_graph_t *g, const osp_node_t *n,
                        const osp_value_t *x, osp_window_t w,
                        const int64_t *kernel, bool ceil_mode, int64_t c_out,
                        osp_err_t *err) {
    int ns = x->rank - 2;
    int64_t od[OSP_MAX_RANK];
    od[0] = x->dims[0];
    od[1] = c_out;
    w.n_spatial = ns;
    bool dynamic = false;
    for (int i = 0; i < ns; i++)
        dynamic |= x->dims[2 + i] < 0;
    if (dynamic) {
        for (int i = 0; i < ns; i++)
            od[2 + i] = -1;
    } else {
        int rc = osp_window_resolve(&w, x->dims + 2, kernel, ceil_mode, od + 2,
                                    err);
        if (rc < 0)
            return osp_err_prefix(err, "node '%s' (%s)", n->name,
                                  osp_op_name(n->op)),
                   rc;
    }
    set_out(g, n, 0, x->dtype, x->rank, od);
    return 0;
}

static int infer_conv(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0), *w = in_val(g, n, 1),
                *b = in_val(g, n, 2);
    if (!w)
        return osp__node_err(err, OSP_ESHAPE, n, "missing weight input");
    if (x->rank < 3 || x->rank > 2 + OSP_MAX_SPATIAL)
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "input rank %d (3..5 supported)", x->rank);
    if (w->rank != x->rank)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "weight rank %d != input rank %d", w->rank,
                             x->rank);
    int64_t group = n->p.conv.group ? n->p.conv.group : 1;
    int64_t c = x->dims[1], o = w->dims[0];
    if (group < 1 || group > OSP__DIM_LIMIT || o < 0 || o % group != 0)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "%lld output channels not divisible by group %lld",
                             (long long)o, (long long)group);
    if (c >= 0 && w->dims[1] >= 0 &&
        (c % group != 0 || c / group != w->dims[1]))
        return osp__node_err(err, OSP_ESHAPE, n,
                             "input has %lld channels but weight expects "
                             "%lld x group %lld",
                             (long long)c, (long long)w->dims[1],
                             (long long)group);
    if (b && (b->rank != 1 || (b->dims[0] >= 0 && b->dims[0] != o)))
        return osp__node_err(err, OSP_ESHAPE, n,
                             "bias must be 1-D of %lld elements", (long long)o);
    return infer_window(g, n, x, n->p.conv.win, w->dims + 2, false, o, err);
}

static int infer_pool(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0);
    if (x->rank < 3 || x->rank > 2 + OSP_MAX_SPATIAL)
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "input rank %d (3..5 supported)", x->rank);
    if (n->n_out > 1 && n->out[1] >= 0)
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "the Indices output is not supported");
    if (n->op == OSP_OP_GLOBAL_AVGPOOL || n->op == OSP_OP_GLOBAL_MAXPOOL) {
        int64_t od[OSP_MAX_RANK];
        od[0] = x->dims[0];
        od[1] = x->dims[1];
        for (int i = 2; i < x->rank; i++)
            od[i] = 1;
        set_out(g, n, 0, x->dtype, x->rank, od);
        return 0;
    }
    return infer_window(g, n, x, n->p.pool.win, NULL, n->p.pool.ceil_mode,
                        x->dims[1], err);
}

static int infer_binary(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *a = in_val(g, n, 0), *b = in_val(g, n, 1);
    if (!b)
        return osp__node_err(err, OSP_ESHAPE, n, "needs two inputs");
    /* quantized 8-bit operands may differ in type (u8 + s8: each carries
     * its zero point); the output's type is its own (set_out) */
    bool q8 = a->quant && b->quant &&
              (a->dtype == OSP_DT_U8 || a->dtype == OSP_DT_S8) &&
              (b->dtype == OSP_DT_U8 || b->dtype == OSP_DT_S8);
    if (a->dtype != OSP_DT_UNDEF && b->dtype != OSP_DT_UNDEF &&
        a->dtype != b->dtype && !q8)
        return osp__node_err(err, OSP_ESHAPE, n, "input dtypes differ (%s, %s)",
                             osp_dtype_name(a->dtype),
                             osp_dtype_name(b->dtype));
    int64_t od[OSP_MAX_RANK];
    int r;
    if (osp_broadcast_shapes(a->dims, a->rank, b->dims, b->rank, od, &r) < 0) {
        char sa[128] = "", sb[128] = "";
        for (int i = 0, o = 0; i < a->rank; i++)
            o += snprintf(sa + o, sizeof sa - (size_t)o, i ? ",%lld" : "%lld",
                          (long long)a->dims[i]);
        for (int i = 0, o = 0; i < b->rank; i++)
            o += snprintf(sb + o, sizeof sb - (size_t)o, i ? ",%lld" : "%lld",
                          (long long)b->dims[i]);
        return osp__node_err(err, OSP_ESHAPE, n,
                             "shapes [%s] and [%s] do not broadcast", sa, sb);
    }
    set_out(g, n, 0, a->dtype != OSP_DT_UNDEF ? a->dtype : b->dtype, r, od);
    return 0;
}

static int infer_gemm(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *a = in_val(g, n, 0), *b = in_val(g, n, 1),
                *c = in_val(g, n, 2);
    if (!b)
        return osp__node_err(err, OSP_ESHAPE, n, "missing input B");
    if (a->rank != 2 || b->rank != 2)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "A and B must be 2-D (ranks %d, %d)", a->rank,
                             b->rank);
    const osp_gemm_params_t *p = &n->p.gemm;
    int64_t m = p->trans_a ? a->dims[1] : a->dims[0];
    int64_t ka = p->trans_a ? a->dims[0] : a->dims[1];
    int64_t kb = p->trans_b ? b->dims[1] : b->dims[0];
    int64_t nn = p->trans_b ? b->dims[0] : b->dims[1];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "inner dimensions differ: A gives K=%lld, B "
                             "gives K=%lld",
                             (long long)ka, (long long)kb);
    int64_t od[2] = {m, nn};
    if (c) {
        if (c->rank > 2)
            return osp__node_err(err, OSP_ESHAPE, n, "C has rank %d > 2",
                                 c->rank);
        for (int i = 0; i < c->rank; i++) {
            int64_t dc = c->dims[i], want = od[2 - c->rank + i];
            if (dc != 1 && dc >= 0 && want >= 0 && dc != want)
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "C dim %d (%lld) does not broadcast to "
                                     "%lld",
                                     i, (long long)dc, (long long)want);
        }
    }
    set_out(g, n, 0, a->dtype, 2, od);
    return 0;
}

static int infer_matmul(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *a = in_val(g, n, 0), *b = in_val(g, n, 1);
    if (!b)
        return osp__node_err(err, OSP_ESHAPE, n, "missing input B");
    if (a->rank < 1 || b->rank < 1)
        return osp__node_err(err, OSP_ESHAPE, n, "scalar operand");
    int64_t ad[OSP_MAX_RANK], bd[OSP_MAX_RANK];
    int ra = a->rank, rb = b->rank;
    memcpy(ad, a->dims, sizeof ad);
    memcpy(bd, b->dims, sizeof bd);
    if (ra == 1) { /* [K] -> [1, K], the 1 is dropped afterwards */
        ad[1] = ad[0];
        ad[0] = 1;
        ra = 2;
    }
    if (rb == 1) { /* [K] -> [K, 1] */
        bd[1] = 1;
        rb = 2;
    }
    int64_t ka = ad[ra - 1], kb = bd[rb - 2];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "inner dimensions differ (%lld vs %lld)",
                             (long long)ka, (long long)kb);
    int64_t od[OSP_MAX_RANK];
    int r;
    if (osp_broadcast_shapes(ad, ra - 2, bd, rb - 2, od, &r) < 0 ||
        r + 2 > OSP_MAX_RANK)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "batch dimensions do not broadcast");
    if (a->rank > 1)
        od[r++] = ad[ra - 2];
    if (b->rank > 1)
        od[r++] = bd[rb - 1];
    set_out(g, n, 0, a->dtype, r, od);
    return 0;
}

/* Needs the data of input i (e.g. a Reshape target): error if not constant. */
static int need_const(const osp_node_t *n, const osp_value_t *v, int i,
                      const char *what, osp_err_t *err) {
    if (v->data)
        return 0;
    return osp__node_err(err, OSP_EUNSUPPORTED, n,
                         "%s (input %d '%s') is not a constant and not "
                         "computable from shapes alone",
                         what, i, v->name);
}

static int infer_reshape(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0), *s = in_val(g, n, 1);
    int64_t shape[OSP_MAX_RANK];
    int r;
    if (n->p.axes.has_axes) {
        r = n->p.axes.n_axes;
        memcpy(shape, n->p.axes.axes, sizeof shape);
    } else {
        if (!s)
            return osp__node_err(err, OSP_ESHAPE, n, "missing shape input");
        int rc = need_const(n, s, 1, "target shape", err);
        if (rc < 0)
            return rc;
        osp_tensor_t t = osp_value_tensor(s);
        r = osp_tensor_read_ints(&t, shape, OSP_MAX_RANK);
        if (r < 0)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "target shape must be a 1-D integer tensor "
                                 "of at most %d elements",
                                 OSP_MAX_RANK);
    }
    int64_t od[OSP_MAX_RANK];
    int infer_at = -1;
    int64_t known = 1;
    bool dyn = false;
    for (int i = 0; i < r; i++) {
        int64_t d = shape[i];
        if (d == 0 && !n->p.axes.allowzero) {
            if (i >= x->rank)
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "0 at position %d copies a dim the "
                                     "input (rank %d) lacks",
                                     i, x->rank);
            d = x->dims[i];
        } else if (d == -1) {
            if (infer_at >= 0)
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "more than one -1 in target shape");
            infer_at = i;
            od[i] = -1;
            continue;
        } else if (d < -1) {
            return osp__node_err(err, OSP_ESHAPE, n, "target dim %lld",
                                 (long long)d);
        }
        od[i] = d;
        if (d > OSP__DIM_LIMIT || (d > 0 && known > OSP__DIM_LIMIT / d))
            return osp__node_err(err, OSP_ELIMIT, n,
                                 "target shape too large at position %d", i);
        if (d < 0)
            dyn = true;
        else
            known *= d;
    }
    int64_t total = prod(x->dims, 0, x->rank);
    if (total >= 0 && !dyn) {
        if (infer_at >= 0) {
            if (known == 0 || total % known != 0)
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "cannot reshape %lld elements with -1 "
                                     "(other dims multiply to %lld)",
                                     (long long)total, (long long)known);
            od[infer_at] = total / known;
        } else if (known != total) {
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "cannot reshape %lld elements into %lld",
                                 (long long)total, (long long)known);
        }
    }
    set_out(g, n, 0, x->dtype, r, od);
    return 0;
}

static int sort_unique_axes(const osp_node_t *n, int64_t *axes, int k, int r,
                            osp_err_t *err) {
    for (int i = 0; i < k; i++) {
        int a = osp_norm_axis(axes[i], r);
        if (a < 0)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "axis %lld out of range for rank %d",
                                 (long long)axes[i], r);
        axes[i] = a;
    }
    for (int i = 1; i < k; i++) /* insertion sort: k <= 8 */
        for (int j = i; j > 0 && axes[j - 1] > axes[j]; j--) {
            int64_t t = axes[j];
            axes[j] = axes[j - 1];
            axes[j - 1] = t;
        }
    for (int i = 1; i < k; i++)
        if (axes[i] == axes[i - 1])
            return osp__node_err(err, OSP_ESHAPE, n, "axis %lld repeated",
                                 (long long)axes[i]);
    return 0;
}

/* Reads the axes of SQUEEZE/UNSQUEEZE/REDUCE_MEAN (params or input 1). */
static int node_axes(osp_graph_t *g, const osp_node_t *n, int64_t *axes,
                     osp_err_t *err) {
    osp_value_t *a = n->p.axes.has_axes ? NULL : in_val(g, n, 1);
    if (a) {
        if (a->rank < 0)
            return osp__node_err(err, OSP_ESHAPE, n, "axes of unknown shape");
        int rc = need_const(n, a, 1, "axes", err);
        if (rc < 0 && osp_value_numel(a) != 0)
            return rc;
    }
    osp_tensor_t t;
    if (a)
        t = osp_value_tensor(a);
    int k = osp__node_axes(n, a ? &t : NULL, axes);
    if (k < 0)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "axes must be a 1-D integer tensor of at most "
                             "%d elements",
                             OSP_MAX_RANK);
    return k;
}

static int infer_squeeze(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0);
    int64_t axes[OSP_MAX_RANK];
    int k = node_axes(g, n, axes, err);
    if (k < 0)
        return k;
    int rc = sort_unique_axes(n, axes, k, x->rank, err);
    if (rc < 0)
        return rc;
    bool drop[OSP_MAX_RANK] = {false};
    if (k == 0) {
        for (int i = 0; i < x->rank; i++) {
            if (x->dims[i] < 0)
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "squeeze without axes on dynamic dim %d",
                                     i);
            drop[i] = x->dims[i] == 1;
        }
    }
    for (int i = 0; i < k; i++) {
        if (x->dims[axes[i]] != 1 && x->dims[axes[i]] >= 0)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "cannot squeeze axis %lld of size %lld",
                                 (long long)axes[i],
                                 (long long)x->dims[axes[i]]);
        drop[axes[i]] = true;
    }
    int64_t od[OSP_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            od[r++] = x->dims[i];
    set_out(g, n, 0, x->dtype, r, od);
    return 0;
}

static int infer_unsqueeze(osp_graph_t *g, const osp_node_t *n,
                           osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0);
    int64_t axes[OSP_MAX_RANK];
    int k = node_axes(g, n, axes, err);
    if (k < 0)
        return k;
    if (k == 0)
        return osp__node_err(err, OSP_ESHAPE, n, "no axes given");
    int r = x->rank + k;
    if (r > OSP_MAX_RANK)
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "output rank %d > %d", r, OSP_MAX_RANK);
    int rc = sort_unique_axes(n, axes, k, r, err);
    if (rc < 0)
        return rc;
    int64_t od[OSP_MAX_RANK];
    for (int i = 0, j = 0, s = 0; i < r; i++) {
        if (j < k && axes[j] == i) {
            od[i] = 1;
            j++;
        } else {
            od[i] = x->dims[s++];
        }
    }
    set_out(g, n, 0, x->dtype, r, od);
    return 0;
}

static int infer_concat(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0);
    int ax = osp_norm_axis(n->p.axis.axis, x->rank);
    if (ax < 0)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "axis %lld out of range for rank %d",
                             (long long)n->p.axis.axis, x->rank);
    int64_t od[OSP_MAX_RANK];
    memcpy(od, x->dims, sizeof od);
    for (int i = 1; i < n->n_in; i++) {
        osp_value_t *y = in_val(g, n, i);
        if (!y)
            continue;
        if (y->rank != x->rank || y->dtype != x->dtype)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "input %d has rank %d/%s, input 0 has "
                                 "rank %d/%s",
                                 i, y->rank, osp_dtype_name(y->dtype),
                                 x->rank, osp_dtype_name(x->dtype));
        for (int d = 0; d < x->rank; d++) {
            if (d == ax) {
                od[d] = od[d] < 0 || y->dims[d] < 0 ? -1 : od[d] + y->dims[d];
            } else if (y->dims[d] >= 0 && od[d] >= 0 && y->dims[d] != od[d]) {
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "input %d dim %d is %lld, expected %lld",
                                     i, d, (long long)y->dims[d],
                                     (long long)od[d]);
            }
        }
    }
    set_out(g, n, 0, x->dtype, x->rank, od);
    return 0;
}

static int infer_gather(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0), *idx = in_val(g, n, 1);
    if (!idx || idx->rank < 0)
        return osp__node_err(err, OSP_ESHAPE, n, "missing or unknown indices");
    if (idx->dtype != OSP_DT_S32 && idx->dtype != OSP_DT_S64)
        return osp__node_err(err, OSP_ESHAPE, n, "indices dtype %s",
                             osp_dtype_name(idx->dtype));
    int ax = osp_norm_axis(n->p.axis.axis, x->rank);
    if (ax < 0)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "axis %lld out of range for rank %d",
                             (long long)n->p.axis.axis, x->rank);
    int r = x->rank - 1 + idx->rank;
    if (r > OSP_MAX_RANK)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "output rank %d", r);
    int64_t od[OSP_MAX_RANK];
    int k = 0;
    for (int i = 0; i < ax; i++)
        od[k++] = x->dims[i];
    for (int i = 0; i < idx->rank; i++)
        od[k++] = idx->dims[i];
    for (int i = ax + 1; i < x->rank; i++)
        od[k++] = x->dims[i];
    set_out(g, n, 0, x->dtype, r, od);
    return 0;
}

static int infer_transpose(osp_graph_t *g, const osp_node_t *n,
                           osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0);
    int64_t perm[OSP_MAX_RANK];
    int r = x->rank;
    if (n->p.axes.has_axes) {
        if (n->p.axes.n_axes != r)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "perm has %d entries for rank %d",
                                 n->p.axes.n_axes, r);
        memcpy(perm, n->p.axes.axes, sizeof perm);
    } else {
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
    }
    bool seen[OSP_MAX_RANK] = {false};
    int64_t od[OSP_MAX_RANK];
    for (int i = 0; i < r; i++) {
        int a = osp_norm_axis(perm[i], r);
        if (a < 0 || seen[a])
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "perm is not a permutation of 0..%d", r - 1);
        seen[a] = true;
        od[i] = x->dims[a];
    }
    set_out(g, n, 0, x->dtype, r, od);
    return 0;
}

static int infer_pad(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0);
    int64_t pads[2 * OSP_MAX_RANK];
    int k;
    if (osp__has_in(n, 3))
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "the axes input (opset 18) is not supported");
    if (n->p.pad.has_pads) {
        k = n->p.pad.n_pads;
        memcpy(pads, n->p.pad.pads, sizeof pads);
    } else {
        osp_value_t *p = in_val(g, n, 1);
        if (!p)
            return osp__node_err(err, OSP_ESHAPE, n, "missing pads input");
        int rc = need_const(n, p, 1, "pads", err);
        if (rc < 0)
            return rc;
        osp_tensor_t t = osp_value_tensor(p);
        k = osp_tensor_read_ints(&t, pads, 2 * OSP_MAX_RANK);
    }
    if (k != 2 * x->rank)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "%d pads for rank %d (need %d)", k, x->rank,
                             2 * x->rank);
    if (n->p.pad.mode > OSP_PADMODE_EDGE)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "pad mode %d",
                             (int)n->p.pad.mode);
    int64_t od[OSP_MAX_RANK];
    for (int i = 0; i < 2 * x->rank; i++)
        if (pads[i] > OSP__DIM_LIMIT || pads[i] < -OSP__DIM_LIMIT)
            return osp__node_err(err, OSP_ELIMIT, n, "pad %lld too large",
                                 (long long)pads[i]);
    for (int i = 0; i < x->rank; i++) {
        od[i] = x->dims[i] < 0 ? -1 : x->dims[i] + pads[i] + pads[x->rank + i];
        if (x->dims[i] >= 0 && od[i] < 0)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "negative pads remove more than dim %d (%lld)",
                                 i, (long long)x->dims[i]);
        if (n->p.pad.mode != OSP_PADMODE_CONSTANT && x->dims[i] == 0 &&
            (pads[i] > 0 || pads[x->rank + i] > 0))
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "cannot reflect/edge-pad empty dim %d", i);
    }
    set_out(g, n, 0, x->dtype, x->rank, od);
    return 0;
}

static int infer_reduce(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0);
    int64_t axes[OSP_MAX_RANK];
    int k = node_axes(g, n, axes, err);
    if (k < 0)
        return k;
    int rc = sort_unique_axes(n, axes, k, x->rank, err);
    if (rc < 0)
        return rc;
    bool red[OSP_MAX_RANK] = {false};
    if (k == 0 && n->p.axes.noop_with_empty_axes) {
        set_out(g, n, 0, x->dtype, x->rank, x->dims);
        return 0;
    }
    for (int i = 0; i < x->rank; i++)
        red[i] = k == 0;
    for (int i = 0; i < k; i++)
        red[axes[i]] = true;
    int64_t od[OSP_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!red[i])
            od[r++] = x->dims[i];
        else if (n->p.axes.keepdims)
            od[r++] = 1;
    }
    set_out(g, n, 0, x->dtype, r, od);
    return 0;
}

static int infer_quant(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0), *s = in_val(g, n, 1),
                *z = in_val(g, n, 2);
    osp_dtype_t dt = OSP_DT_F32;
    if (s && s->rank > 1)
        return osp__node_err(err, OSP_ESHAPE, n, "scale must be a scalar or 1-D");
    if (s && s->rank == 1 && s->dims[0] != 1) {
        int ax = osp_norm_axis(n->p.cast.axis, x->rank);
        if (ax < 0 || (x->dims[ax] >= 0 && x->dims[ax] != s->dims[0]))
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "per-axis scale of %lld elements does not "
                                 "match axis %lld",
                                 (long long)s->dims[0],
                                 (long long)n->p.cast.axis);
    }
    if (z && s && z->rank >= 0 && osp_value_numel(z) != osp_value_numel(s))
        return osp__node_err(err, OSP_ESHAPE, n,
                             "zero point and scale sizes differ");
    if (n->op == OSP_OP_QUANTIZE) {
        const osp_value_t *o = &g->values[n->out[0]];
        if (z && z->dtype != OSP_DT_UNDEF)
            dt = z->dtype;
        else if (n->p.cast.to == OSP_DT_U8 || n->p.cast.to == OSP_DT_S8)
            dt = n->p.cast.to;
        else if (o->dtype == OSP_DT_U8 || o->dtype == OSP_DT_S8)
            dt = o->dtype;
        else
            dt = OSP_DT_U8;
        if (dt != OSP_DT_U8 && dt != OSP_DT_S8)
            return osp__node_err(err, OSP_EUNSUPPORTED, n,
                                 "quantizing to %s", osp_dtype_name(dt));
        if (!s && !o->quant)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "no scale input and no quantization on the "
                                 "output value");
    } else if (!s && !x->quant) {
        return osp__node_err(err, OSP_ESHAPE, n,
                             "no scale input and no quantization on the "
                             "input value");
    }
    set_out(g, n, 0, dt, x->rank, x->dims);
    return 0;
}

static int infer_batchnorm(osp_graph_t *g, const osp_node_t *n,
                           osp_err_t *err) {
    osp_value_t *x = in_val(g, n, 0);
    if (x->rank < 2)
        return osp__node_err(err, OSP_ESHAPE, n, "input rank %d < 2",
                             x->rank);
    for (int i = 1; i <= 4; i++) {
        osp_value_t *p = in_val(g, n, i);
        if (!p || p->rank != 1 ||
            (p->dims[0] >= 0 && x->dims[1] >= 0 && p->dims[0] != x->dims[1]))
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "input %d must be 1-D with C=%lld elements",
                                 i, (long long)x->dims[1]);
    }
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i] >= 0)
            return osp__node_err(err, OSP_EUNSUPPORTED, n,
                                 "training-mode outputs");
    set_out(g, n, 0, x->dtype, x->rank, x->dims);
    return 0;
}

/* Element-wise ops: the output has the input's dtype and shape. */
static int infer_same(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    const osp_value_t *x = in_val(g, n, 0);
    set_out(g, n, 0, x->dtype, x->rank, x->dims);
    return 0;
}

static int infer_clip(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    for (int i = 1; i <= 2; i++) {
        osp_value_t *p = in_val(g, n, i);
        if (p && osp_value_numel(p) != 1)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "min/max input %d is not a scalar", i);
    }
    return infer_same(g, n, err);
}

static int infer_softmax(osp_graph_t *g, const osp_node_t *n,
                         osp_err_t *err) {
    const osp_value_t *x = in_val(g, n, 0);
    if (osp_norm_axis(n->p.axis.axis, x->rank) < 0)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "axis %lld out of range for rank %d",
                             (long long)n->p.axis.axis, x->rank);
    return infer_same(g, n, err);
}

static int infer_lrn(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    const osp_value_t *x = in_val(g, n, 0);
    if (x->rank < 3 || n->p.lrn.size < 1)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "needs rank >= 3 and size >= 1");
    return infer_same(g, n, err);
}

static int infer_flatten(osp_graph_t *g, const osp_node_t *n,
                         osp_err_t *err) {
    const osp_value_t *x = in_val(g, n, 0);
    int64_t a = n->p.axis.axis;
    if (a < 0)
        a += x->rank;
    if (a < 0 || a > x->rank)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "axis %lld out of range for rank %d",
                             (long long)n->p.axis.axis, x->rank);
    int64_t od[2] = {prod(x->dims, 0, (int)a), prod(x->dims, (int)a, x->rank)};
    set_out(g, n, 0, x->dtype, 2, od);
    return 0;
}

static int infer_shape(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    int s, e;
    osp__shape_range(n, in_val(g, n, 0)->rank, &s, &e);
    int64_t od[1] = {e - s};
    set_out(g, n, 0, OSP_DT_S64, 1, od);
    return 0;
}

static int infer_cast(osp_graph_t *g, const osp_node_t *n, osp_err_t *err) {
    const osp_value_t *x = in_val(g, n, 0);
    if (n->p.cast.to <= OSP_DT_UNDEF || n->p.cast.to >= OSP_DT_COUNT)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "cast target %d",
                             (int)n->p.cast.to);
    set_out(g, n, 0, n->p.cast.to, x->rank, x->dims);
    return 0;
}

/* Shape inference by op (as ggml's op tables). Every function may assume
 * what infer_op checked: valid params, an output, input 0 present, and every
 * present input of known rank. An op without a row has no inference (a load
 * error): adding an op to the IR means adding its row here. */
typedef int (*infer_fn)(osp_graph_t *g, const osp_node_t *n, osp_err_t *err);
static const infer_fn infer_fns[OSP_OP_COUNT] = {
    [OSP_OP_CONV] = infer_conv,
    [OSP_OP_BATCHNORM] = infer_batchnorm,
    [OSP_OP_RELU] = infer_same,
    [OSP_OP_LEAKY_RELU] = infer_same,
    [OSP_OP_CLIP] = infer_clip,
    [OSP_OP_SIGMOID] = infer_same,
    [OSP_OP_HARD_SIGMOID] = infer_same,
    [OSP_OP_HARD_SWISH] = infer_same,
    [OSP_OP_ADD] = infer_binary,
    [OSP_OP_SUB] = infer_binary,
    [OSP_OP_MUL] = infer_binary,
    [OSP_OP_DIV] = infer_binary,
    [OSP_OP_MAXPOOL] = infer_pool,
    [OSP_OP_AVGPOOL] = infer_pool,
    [OSP_OP_GLOBAL_AVGPOOL] = infer_pool,
    [OSP_OP_GLOBAL_MAXPOOL] = infer_pool,
    [OSP_OP_GEMM] = infer_gemm,
    [OSP_OP_MATMUL] = infer_matmul,
    [OSP_OP_FLATTEN] = infer_flatten,
    [OSP_OP_RESHAPE] = infer_reshape,
    [OSP_OP_SQUEEZE] = infer_squeeze,
    [OSP_OP_UNSQUEEZE] = infer_unsqueeze,
    [OSP_OP_CONCAT] = infer_concat,
    [OSP_OP_SOFTMAX] = infer_softmax,
    [OSP_OP_IDENTITY] = infer_same,
    [OSP_OP_SHAPE] = infer_shape,
    [OSP_OP_GATHER] = infer_gather,
    [OSP_OP_TRANSPOSE] = infer_transpose,
    [OSP_OP_PAD] = infer_pad,
    [OSP_OP_REDUCE_MEAN] = infer_reduce,
    [OSP_OP_LRN] = infer_lrn,
    [OSP_OP_QUANTIZE] = infer_quant,
    [OSP_OP_DEQUANTIZE] = infer_quant,
    [OSP_OP_CAST] = infer_cast,
};

/* The checks every op shares, then the op's row of infer_fns[]. */
static int infer_op(osp_graph_t *g, int ni, osp_err_t *err) {
    const osp_node_t *n = &g->nodes[ni];
    int prc = osp__check_params(n, err);
    if (prc < 0)
        return prc;
    if (n->n_out < 1 || n->out[0] < 0)
        return osp__node_err(err, OSP_EFORMAT, n, "no output");
    if (!osp__has_in(n, 0))
        return osp__node_err(err, OSP_ESHAPE, n, "missing input 0");
    for (int i = 0; i < n->n_in; i++) {
        const osp_value_t *v = in_val(g, n, i);
        if (v && v->rank < 0)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "input %d '%s' has unknown shape", i, v->name);
    }
    infer_fn fn = (unsigned)n->op < OSP_OP_COUNT ? infer_fns[n->op] : NULL;
    if (!fn)
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "no shape inference for this op");
    return fn(g, n, err);
}

/* Largest tensor shape inference accepts (bytes): a hostile model must not
 * make the planner or the folder overflow a size computation. */
#define OSP_MAX_TENSOR_BYTES (1ull << 36)

int osp_infer_node(osp_graph_t *g, int ni, osp_err_t *err) {
    const osp_node_t *n = &g->nodes[ni];
    if (n->op == OSP_OP_NONE)
        return 0;
    int rc = infer_op(g, ni, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n->n_out; i++) {
        if (n->out[i] < 0)
            continue;
        const osp_value_t *v = &g->values[n->out[i]];
        uint64_t bytes = osp_dtype_size(v->dtype);
        for (int d = 0; d < v->rank; d++) {
            int64_t dim = v->dims[d];
            if (dim < -1)
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "output %d dim %d is %lld", i, d,
                                     (long long)dim);
            if (dim < 0)
                continue; /* dynamic */
            if (dim > 0 && bytes > OSP_MAX_TENSOR_BYTES / (uint64_t)dim)
                return osp__node_err(err, OSP_ELIMIT, n,
                                     "output %d would exceed %llu bytes", i,
                                     (unsigned long long)OSP_MAX_TENSOR_BYTES);
            bytes *= (uint64_t)dim;
        }
    }
    return 0;
}

/* Shape arithmetic evaluated on the side by osp_infer_shapes: outputs of
 * at most this many elements whose inputs are all known. */
#define OSP__SHADOW_MAX_ELEMS 64

/* Whether node n computes a small tensor from known data (or, for
 * SHAPE, from concrete dims): the Shape→Gather→Unsqueeze→Concat chains that
 * exported PyTorch graphs use to build Reshape targets. */
static bool shadow_evaluable(const osp_graph_t *g, const osp_node_t *n) {
    if (n->n_out != 1 || n->out[0] < 0 || n->n_post || n->n_in > 16)
        return false;
    const osp_value_t *o = &g->values[n->out[0]];
    /* any dtype: exporters also compute sizes in float (Shape → Cast →
     * Mul → Cast, e.g. for upsampling) */
    if (o->data || o->dtype == OSP_DT_UNDEF || o->rank < 0 ||
        osp_value_numel(o) > OSP__SHADOW_MAX_ELEMS)
        return false;
    for (int d = 0; d < o->rank; d++)
        if (o->dims[d] < 0)
            return false;
    if (n->op == OSP_OP_SHAPE) {
        const osp_value_t *x = &g->values[n->in[0]];
        for (int d = 0; d < x->rank; d++)
            if (x->dims[d] < 0)
                return false;
        return true;
    }
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j] >= 0 && !g->values[n->in[j]].data)
            return false;
    return true;
}

/* Evaluates node n into a malloc'd buffer lent to its output value (marked
 * borrowed so nothing else frees it); *buf receives it for cleanup. */
static int shadow_eval(osp_graph_t *g, const osp_node_t *n, void **buf,
                       osp_err_t *err) {
    osp_value_t *o = &g->values[n->out[0]];
    size_t bytes = osp_value_numel(o) * osp_dtype_size(o->dtype);
    osp_tensor_t in[16], out;
    for (int j = 0; j < n->n_in; j++) {
        memset(&in[j], 0, sizeof in[j]);
        if (n->in[j] >= 0)
            in[j] = osp_value_tensor(&g->values[n->in[j]]);
    }
    out = osp_value_tensor(o);
    out.data = malloc(bytes ? bytes : 1);
    if (!out.data)
        return osp_err_set(err, OSP_ENOMEM, "shape inference: out of memory");
    int rc = osp_ref_run_node(g, n, in, &out, err);
    if (rc < 0) {
        free(out.data);
        return rc;
    }
    *buf = out.data;
    o->data = out.data;
    o->data_bytes = bytes;
    o->data_borrowed = true;
    return 0;
}

int osp_infer_shapes(osp_graph_t *g, osp_err_t *err) {
    for (int i = 0; i < g->n_inputs; i++) {
        const osp_value_t *v = &g->values[g->inputs[i]];
        if (v->rank < 0)
            return osp_err_set(err, OSP_ESHAPE,
                               "graph input '%s' has unknown rank", v->name);
        uint64_t bytes = osp_dtype_size(v->dtype);
        for (int d = 0; d < v->rank; d++) {
            if (v->dims[d] < 0)
                return osp_err_set(err, OSP_ESHAPE,
                                   "graph input '%s' dim %d is dynamic; "
                                   "shape inference needs concrete dims",
                                   v->name, d);
            if (v->dims[d] > 0 &&
                bytes > OSP_MAX_TENSOR_BYTES / (uint64_t)v->dims[d])
                return osp_err_set(err, OSP_ELIMIT,
                                   "graph input '%s' exceeds %llu bytes",
                                   v->name,
                                   (unsigned long long)OSP_MAX_TENSOR_BYTES);
            bytes *= (uint64_t)v->dims[d];
        }
    }
    /* Small integer shape computations are evaluated on the side (their
     * outputs temporarily carry borrowed data) so that a Reshape fed by
     * Shape→Gather→Concat sees its target; the graph is left unchanged. */
    void **shadow = calloc((size_t)(g->n_values ? g->n_values : 1),
                           sizeof *shadow);
    if (!shadow)
        return osp_err_set(err, OSP_ENOMEM, "shape inference: out of memory");
    int rc = 0;
    for (int i = 0; i < g->n_nodes && rc == 0; i++) {
        rc = osp_infer_node(g, i, err);
        const osp_node_t *n = &g->nodes[i];
        if (rc == 0 && n->op != OSP_OP_NONE && shadow_evaluable(g, n))
            rc = shadow_eval(g, n, &shadow[n->out[0]], err);
    }
    for (int v = 0; v < g->n_values; v++) {
        if (!shadow[v])
            continue;
        free(shadow[v]);
        g->values[v].data = NULL;
        g->values[v].data_bytes = 0;
        g->values[v].data_borrowed = false;
    }
    free(shadow);
    return rc;
}
