/* ref_shape_ops.c — reference kernels for data-movement ops: FLATTEN,
 * RESHAPE, SQUEEZE, UNSQUEEZE, IDENTITY (plain copies: the shape was decided
 * by shape inference), CONCAT, SHAPE, GATHER, TRANSPOSE, PAD and CAST.
 *
 * All of them except CAST are dtype-agnostic (they move elements by size),
 * which is what the executor needs when it falls back to them for the
 * integer shape arithmetic of exported PyTorch graphs. */
#include <math.h>
#include <string.h>

#include "engine/ops/ref.h"

static size_t esize(const osp_tensor_t *t) { return osp_dtype_size(t->dtype); }

int osp__ref_copy(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err) {
    size_t cnt = osp_tensor_numel(&in[0]);
    if (cnt != osp_tensor_numel(&out[0]) || in[0].dtype != out[0].dtype)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "output has %zu %s elements, input %zu %s",
                             osp_tensor_numel(&out[0]),
                             osp_dtype_name(out[0].dtype), cnt,
                             osp_dtype_name(in[0].dtype));
    if (cnt && out[0].data != in[0].data)
        memmove(out[0].data, in[0].data, cnt * esize(&in[0]));
    return 0;
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= d[i];
    return p;
}

int osp__ref_concat(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out,
                    osp_err_t *err) {
    const osp_tensor_t *o = &out[0];
    int ax = osp_norm_axis(n->p.axis.axis, o->rank);
    if (ax < 0)
        return osp__node_err(err, OSP_ESHAPE, n, "bad axis");
    size_t es = esize(o);
    int64_t outer = prod(o->dims, 0, ax);
    size_t inner_bytes = (size_t)prod(o->dims, ax + 1, o->rank) * es;
    size_t orow = (size_t)o->dims[ax] * inner_bytes;
    size_t off = 0, total = 0;
    for (int i = 0; i < n->n_in; i++) {
        if (!osp__has_in(n, i))
            continue;
        const osp_tensor_t *t = &in[i];
        if (t->rank != o->rank || t->dtype != o->dtype ||
            (osp_tensor_numel(t) && !t->data))
            return osp__node_err(err, OSP_ESHAPE, n, "input %d mismatch", i);
        for (int d = 0; d < o->rank; d++)
            if (d != ax && t->dims[d] != o->dims[d])
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "input %d dim %d mismatch", i, d);
        total += (size_t)t->dims[ax];
    }
    if (total != (size_t)o->dims[ax])
        return osp__node_err(err, OSP_ESHAPE, n, "concat axis sizes");
    for (int i = 0; i < n->n_in; i++) {
        if (!osp__has_in(n, i))
            continue;
        const osp_tensor_t *t = &in[i];
        size_t row = (size_t)t->dims[ax] * inner_bytes;
        if (row == 0)
            continue;
        for (int64_t k = 0; k < outer; k++)
            memcpy((char *)o->data + (size_t)k * orow + off,
                   (const char *)t->data + (size_t)k * row, row);
        off += row;
    }
    return 0;
}

int osp__ref_shape(const osp_graph_t *g, const osp_node_t *n,
                   const osp_tensor_t *in, osp_tensor_t *out,
                   osp_err_t *err) {
    int s, e;
    osp__shape_range(n, in[0].rank, &s, &e);
    if (out[0].dtype != OSP_DT_S64 || out[0].rank != 1 ||
        out[0].dims[0] != e - s)
        return osp__node_err(err, OSP_ESHAPE, n,
                             "output must be s64[%d]", e - s);
    int64_t *o = out[0].data;
    for (int i = s; i < e; i++)
        o[i - s] = in[0].dims[i];
    return 0;
}

int osp__ref_gather(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out,
                    osp_err_t *err) {
    const osp_tensor_t *x = &in[0], *idx = &in[1];
    if (n->n_in < 2 || (idx->dtype != OSP_DT_S32 && idx->dtype != OSP_DT_S64))
        return osp__node_err(err, OSP_ESHAPE, n, "indices must be s32/s64");
    int ax = osp_norm_axis(n->p.axis.axis, x->rank);
    if (ax < 0 || out[0].dtype != x->dtype)
        return osp__node_err(err, OSP_ESHAPE, n, "bad axis or output dtype");
    size_t ni = osp_tensor_numel(idx);
    if (ni && !idx->data)
        return osp__node_err(err, OSP_EINVAL, n, "indices have no data");
    size_t es = esize(x);
    int64_t outer = prod(x->dims, 0, ax), len = x->dims[ax];
    size_t inner = (size_t)prod(x->dims, ax + 1, x->rank) * es;
    if (osp_tensor_numel(&out[0]) != (size_t)outer * ni * inner / (es ? es : 1))
        return osp__node_err(err, OSP_ESHAPE, n, "output size");
    char *o = out[0].data;
    for (size_t j = 0; j < ni; j++) { /* validate first: no partial output */
        int64_t k = osp_tensor_get_i64(idx, j);
        if (k < -len || k >= len)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "index %lld out of range [-%lld, %lld)",
                                 (long long)k, (long long)len,
                                 (long long)len);
    }
    for (int64_t b = 0; b < outer; b++) {
        const char *src = (const char *)x->data + (size_t)b * (size_t)len * inner;
        for (size_t j = 0; j < ni; j++) {
            int64_t k = osp_tensor_get_i64(idx, j);
            if (k < 0)
                k += len;
            memcpy(o, src + (size_t)k * inner, inner);
            o += inner;
        }
    }
    return 0;
}

/* Copies one element of `es` bytes; the switch keeps the common sizes to a
 * single load/store. */
static inline void copy_elem(char *d, const char *s, size_t es) {
    switch (es) {
    case 4:
        memcpy(d, s, 4);
        break;
    case 1:
        *d = *s;
        break;
    case 8:
        memcpy(d, s, 8);
        break;
    case 2:
        memcpy(d, s, 2);
        break;
    default:
        memcpy(d, s, es);
    }
}

int osp__ref_transpose(const osp_graph_t *g, const osp_node_t *n,
                       const osp_tensor_t *in, osp_tensor_t *out,
                       osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    int r = x->rank;
    int64_t perm[OSP_MAX_RANK];
    if (n->p.axes.has_axes) {
        if (n->p.axes.n_axes != r)
            return osp__node_err(err, OSP_ESHAPE, n, "perm length");
        for (int i = 0; i < r; i++)
            perm[i] = osp_norm_axis(n->p.axes.axes[i], r);
    } else {
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
    }
    if (out[0].dtype != x->dtype || out[0].rank != r)
        return osp__node_err(err, OSP_ESHAPE, n, "output dtype/rank");
    int64_t istride[OSP_MAX_RANK], st[OSP_MAX_RANK], od[OSP_MAX_RANK];
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        istride[i] = s;
        s *= x->dims[i];
    }
    for (int i = 0; i < r; i++) {
        if (perm[i] < 0)
            return osp__node_err(err, OSP_ESHAPE, n, "bad perm");
        st[i] = istride[perm[i]];
        od[i] = x->dims[perm[i]];
        if (od[i] != out[0].dims[i])
            return osp__node_err(err, OSP_ESHAPE, n, "output dim %d", i);
    }
    size_t cnt = osp_tensor_numel(x), es = esize(x);
    if (cnt == 0)
        return 0;
    if (r == 0) {
        memcpy(out[0].data, x->data, es);
        return 0;
    }
    /* Walk the output in order with an index counter; the innermost output
     * dim is a strided read. */
    int64_t idx[OSP_MAX_RANK] = {0};
    const char *src = x->data;
    char *dst = out[0].data;
    int64_t last = od[r - 1], lst = st[r - 1];
    size_t rows = cnt / (size_t)last;
    for (size_t row = 0; row < rows; row++) {
        int64_t base = 0;
        for (int i = 0; i < r - 1; i++)
            base += idx[i] * st[i];
        const char *p = src + (size_t)base * es;
        for (int64_t j = 0; j < last; j++) {
            copy_elem(dst, p + (size_t)(j * lst) * es, es);
            dst += es;
        }
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < od[i])
                break;
            idx[i] = 0;
        }
    }
    return 0;
}

/* Source coordinate for output coordinate o along a dim of size d padded by
 * b at the front; -1 means "padding value" (constant mode). */
static inline int64_t pad_src(int64_t o, int64_t b, int64_t d,
                              osp_pad_mode_t mode) {
    int64_t i = o - b;
    if (i >= 0 && i < d)
        return i;
    if (mode == OSP_PADMODE_CONSTANT)
        return -1;
    if (mode == OSP_PADMODE_EDGE)
        return i < 0 ? 0 : d - 1;
    if (d == 1) /* reflect of a single element repeats it */
        return 0;
    int64_t period = 2 * (d - 1); /* reflect without repeating the edge */
    i %= period;
    if (i < 0)
        i += period;
    return i < d ? i : period - i;
}

int osp__ref_pad(const osp_graph_t *g, const osp_node_t *n,
                 const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    int r = x->rank;
    int64_t pads[2 * OSP_MAX_RANK];
    int k;
    if (n->p.pad.has_pads) {
        k = n->p.pad.n_pads;
        memcpy(pads, n->p.pad.pads, sizeof pads);
    } else {
        k = n->n_in > 1 ? osp_tensor_read_ints(&in[1], pads, 2 * OSP_MAX_RANK)
                        : -1;
    }
    if (k != 2 * r)
        return osp__node_err(err, OSP_ESHAPE, n, "%d pads for rank %d", k, r);
    if (out[0].rank != r)
        return osp__node_err(err, OSP_ESHAPE, n, "output rank");
    for (int i = 0; i < r; i++)
        if (out[0].dims[i] != x->dims[i] + pads[i] + pads[r + i] ||
            out[0].dtype != x->dtype)
            return osp__node_err(err, OSP_ESHAPE, n, "output dim %d", i);
    /* The constant, converted to the element type. */
    size_t es = esize(x);
    char cval[8] = {0};
    double v = n->p.pad.value;
    if (!n->p.pad.has_pads && osp__has_in(n, 2) && in[2].data &&
        osp_tensor_numel(&in[2]) == 1)
        v = osp_tensor_get_f64(&in[2], 0);
    switch (x->dtype) {
    case OSP_DT_F32: {
        float f = (float)v;
        memcpy(cval, &f, 4);
        break;
    }
    case OSP_DT_BF16: {
        uint16_t h = osp__ref_f32_to_bf16((float)v);
        memcpy(cval, &h, 2);
        break;
    }
    case OSP_DT_F16: {
        uint16_t h = osp__ref_f32_to_f16((float)v);
        memcpy(cval, &h, 2);
        break;
    }
    case OSP_DT_S64: {
        int64_t q = (int64_t)v;
        memcpy(cval, &q, 8);
        break;
    }
    case OSP_DT_S32: {
        int32_t q = (int32_t)v;
        memcpy(cval, &q, 4);
        break;
    }
    default:
        cval[0] = (char)(int)v;
        break;
    }
    size_t cnt = osp_tensor_numel(&out[0]);
    if (cnt == 0)
        return 0;
    if (r == 0) {
        memcpy(out[0].data, x->data, es);
        return 0;
    }
    int64_t istride[OSP_MAX_RANK], s = 1;
    for (int i = r - 1; i >= 0; i--) {
        istride[i] = s;
        s *= x->dims[i];
    }
    const int64_t *od = out[0].dims;
    osp_pad_mode_t mode = n->p.pad.mode;
    int64_t idx[OSP_MAX_RANK] = {0};
    char *dst = out[0].data;
    const char *src = x->data;
    int64_t last = od[r - 1], lb = pads[r - 1], ld = x->dims[r - 1];
    size_t rows = cnt / (size_t)last;
    for (size_t row = 0; row < rows; row++) {
        int64_t base = 0;
        bool pad_row = false;
        for (int i = 0; i < r - 1; i++) {
            int64_t si = pad_src(idx[i], pads[i], x->dims[i], mode);
            if (si < 0)
                pad_row = true;
            base += si * istride[i];
        }
        for (int64_t j = 0; j < last; j++) {
            int64_t sj = pad_row ? -1 : pad_src(j, lb, ld, mode);
            copy_elem(dst, sj < 0 ? cval : src + (size_t)(base + sj) * es, es);
            dst += es;
        }
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < od[i])
                break;
            idx[i] = 0;
        }
    }
    return 0;
}

/* Saturating float → integer conversion (ONNX leaves out-of-range casts
 * undefined; C makes them UB, so we clamp). NaN → 0. */
static int64_t f2i(double v, double lo, double hi) {
    if (!(v == v))
        return 0;
    v = trunc(v);
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return (int64_t)v;
}

int osp__ref_cast(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    osp_dtype_t to = out[0].dtype;
    size_t cnt = osp_tensor_numel(x);
    if (cnt != osp_tensor_numel(&out[0]) || to != n->p.cast.to)
        return osp__node_err(err, OSP_ESHAPE, n, "output shape/dtype");
    if (x->dtype <= OSP_DT_UNDEF || x->dtype >= OSP_DT_COUNT)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "input dtype");
    bool from_float = x->dtype == OSP_DT_F32 || x->dtype == OSP_DT_BF16 ||
                      x->dtype == OSP_DT_F16;
    void *o = out[0].data;
    for (size_t i = 0; i < cnt; i++) {
        double f = from_float ? osp_tensor_get_f64(x, i) : 0.0;
        int64_t q = from_float ? 0 : osp_tensor_get_i64(x, i);
        if (!from_float)
            f = (double)q;
        switch (to) {
        case OSP_DT_F32:
            ((float *)o)[i] = (float)f;
            break;
        case OSP_DT_BF16:
            ((uint16_t *)o)[i] = osp__ref_f32_to_bf16((float)f);
            break;
        case OSP_DT_F16:
            ((uint16_t *)o)[i] = osp__ref_f32_to_f16((float)f);
            break;
        case OSP_DT_BOOL:
            ((uint8_t *)o)[i] = from_float ? f != 0.0 : q != 0;
            break;
        case OSP_DT_U8:
            ((uint8_t *)o)[i] =
                (uint8_t)(from_float ? f2i(f, 0, 255) : q); /* wraps */
            break;
        case OSP_DT_S8:
            ((int8_t *)o)[i] =
                (int8_t)(from_float ? f2i(f, -128, 127) : (int8_t)(uint8_t)q);
            break;
        case OSP_DT_S32:
            ((int32_t *)o)[i] = (int32_t)(
                from_float ? f2i(f, -2147483648.0, 2147483647.0)
                           : (int32_t)(uint32_t)(uint64_t)q);
            break;
        case OSP_DT_S64:
            ((int64_t *)o)[i] =
                from_float ? f2i(f, -9223372036854775808.0,
                                 9223372036854774784.0)
                           : q;
            break;
        default:
            return osp__node_err(err, OSP_EUNSUPPORTED, n, "cast to %s",
                                 osp_dtype_name(to));
        }
    }
    return 0;
}
