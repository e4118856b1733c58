/* ref_eltwise.c — reference kernels for element-wise ops: the activations
 * (RELU, LEAKY_RELU, CLIP, SIGMOID, HARD_SIGMOID, HARD_SWISH; f32) and the
 * numpy-broadcasting binary ops ADD/SUB/MUL/DIV on f32, s32 and s64 (the
 * integer forms carry the shape arithmetic of exported PyTorch graphs).
 *
 * Broadcasting walks the output row by row (all dims but the last), with
 * per-operand strides of 0 on broadcast dims, so the inner loop is a plain
 * strided loop without per-element index math. */
#include <math.h>
#include <string.h>

#include "engine/ops/ref.h"

/* Clip on integer tensors (opset >= 12): bounds from inputs 1/2, defaulting
 * to the type's range. */
static int clip_int(const osp_node_t *n, const osp_tensor_t *in,
                    osp_tensor_t *out, osp_err_t *err) {
    const osp_tensor_t *x = &in[0];
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    for (int i = 1; i <= 2; i++) {
        if (!osp__has_in(n, i))
            continue;
        if (!in[i].data || osp_tensor_numel(&in[i]) != 1 ||
            in[i].dtype != x->dtype)
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "min/max input %d must be a %s scalar", i,
                                 osp_dtype_name(x->dtype));
        if (i == 1)
            lo = osp_tensor_get_i64(&in[i], 0);
        else
            hi = osp_tensor_get_i64(&in[i], 0);
    }
    size_t cnt = osp_tensor_numel(x);
    for (size_t i = 0; i < cnt; i++) {
        int64_t v = osp_tensor_get_i64(x, i);
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        switch (x->dtype) {
        case OSP_DT_U8:
            ((uint8_t *)out[0].data)[i] = (uint8_t)v;
            break;
        case OSP_DT_S8:
            ((int8_t *)out[0].data)[i] = (int8_t)v;
            break;
        case OSP_DT_S32:
            ((int32_t *)out[0].data)[i] = (int32_t)v;
            break;
        default:
            ((int64_t *)out[0].data)[i] = v;
            break;
        }
    }
    return 0;
}

int osp__ref_act(const osp_graph_t *g, const osp_node_t *n,
                 const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err) {
    osp_dtype_t idt = in[0].dtype;
    if (n->op == OSP_OP_CLIP && idt == out[0].dtype &&
        (idt == OSP_DT_U8 || idt == OSP_DT_S8 || idt == OSP_DT_S32 ||
         idt == OSP_DT_S64))
        return clip_int(n, in, out, err);
    if (in[0].dtype != OSP_DT_F32 || out[0].dtype != OSP_DT_F32)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "dtype %s (f32 only)",
                             osp_dtype_name(in[0].dtype));
    size_t cnt = osp_tensor_numel(&in[0]);
    if (cnt != osp_tensor_numel(&out[0]))
        return osp__node_err(err, OSP_ESHAPE, n, "output size");
    float alpha = n->p.act.alpha, beta = n->p.act.beta;
    osp_act_t a;
    switch (n->op) {
    case OSP_OP_RELU:
        a = OSP_ACT_RELU;
        break;
    case OSP_OP_LEAKY_RELU:
        a = OSP_ACT_LEAKY_RELU;
        break;
    case OSP_OP_CLIP:
        a = OSP_ACT_CLIP;
        /* opset >= 11: bounds come from optional inputs 1/2 */
        for (int i = 1; i <= 2; i++) {
            if (!osp__has_in(n, i))
                continue;
            if (!in[i].data || osp_tensor_numel(&in[i]) != 1)
                return osp__node_err(err, OSP_ESHAPE, n,
                                     "min/max input %d must be a scalar with "
                                     "data",
                                     i);
            float v = (float)osp_tensor_get_f64(&in[i], 0);
            if (i == 1)
                alpha = v;
            else
                beta = v;
        }
        break;
    case OSP_OP_SIGMOID:
        a = OSP_ACT_SIGMOID;
        break;
    case OSP_OP_HARD_SIGMOID:
        a = OSP_ACT_HARD_SIGMOID;
        break;
    case OSP_OP_HARD_SWISH:
        a = OSP_ACT_HARD_SWISH;
        break;
    default:
        return osp__node_err(err, OSP_EINTERNAL, n, "not an activation");
    }
    if (out[0].data != in[0].data && cnt)
        memcpy(out[0].data, in[0].data, cnt * sizeof(float));
    osp_ref_act_f32(a, alpha, beta, out[0].data, cnt);
    return 0;
}

/* Integer division as ONNX Runtime does it (C truncation), with the two UB
 * cases turned into defined results: x/0 is reported by the caller, and
 * MIN/-1 wraps. */
static inline int64_t div_s64(int64_t a, int64_t b) {
    if (b == -1)
        return (int64_t)(0 - (uint64_t)a);
    return a / b;
}

#define BIN_LOOP(T, EXPR)                                                      \
    do {                                                                       \
        const T *pa = (const T *)a->data + oa;                                 \
        const T *pb = (const T *)b->data + ob;                                 \
        T *po = (T *)o->data + oo;                                             \
        if (sa == 1 && sb == 1) {                                              \
            for (int64_t j = 0; j < last; j++) {                               \
                T x = pa[j], y = pb[j];                                        \
                po[j] = (EXPR);                                                \
            }                                                                  \
        } else if (sa == 1 && sb == 0) {                                       \
            T y = pb[0];                                                       \
            for (int64_t j = 0; j < last; j++) {                               \
                T x = pa[j];                                                   \
                po[j] = (EXPR);                                                \
            }                                                                  \
        } else {                                                               \
            for (int64_t j = 0; j < last; j++) {                               \
                T x = pa[j * sa], y = pb[j * sb];                              \
                po[j] = (EXPR);                                                \
            }                                                                  \
        }                                                                      \
    } while (0)

/* Wrapping integer arithmetic (ONNX does not define overflow; C makes
 * signed overflow UB, so compute in unsigned). */
#define WRAP_ADD(T, U, x, y) ((T)((U)(x) + (U)(y)))
#define WRAP_SUB(T, U, x, y) ((T)((U)(x) - (U)(y)))
#define WRAP_MUL(T, U, x, y) ((T)((U)(x) * (U)(y)))

int osp__ref_binary(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out,
                    osp_err_t *err) {
    const osp_tensor_t *a = &in[0], *b = &in[1];
    osp_tensor_t *o = &out[0];
    if (n->n_in < 2 || !b->data)
        return osp__node_err(err, OSP_EINVAL, n, "input 1 has no data");
    osp_dtype_t dt = a->dtype;
    if (b->dtype != dt || o->dtype != dt)
        return osp__node_err(err, OSP_ESHAPE, n, "dtypes %s/%s -> %s",
                             osp_dtype_name(a->dtype),
                             osp_dtype_name(b->dtype),
                             osp_dtype_name(o->dtype));
    if (dt != OSP_DT_F32 && dt != OSP_DT_S32 && dt != OSP_DT_S64 &&
        dt != OSP_DT_U8 && dt != OSP_DT_S8)
        return osp__node_err(err, OSP_EUNSUPPORTED, n,
                             "dtype %s (f32, s32, s64, u8, s8 supported)",
                             osp_dtype_name(dt));
    int64_t od[OSP_MAX_RANK];
    int r;
    if (osp_broadcast_shapes(a->dims, a->rank, b->dims, b->rank, od, &r) < 0 ||
        r != o->rank)
        return osp__node_err(err, OSP_ESHAPE, n, "shapes do not broadcast");
    for (int i = 0; i < r; i++)
        if (od[i] != o->dims[i])
            return osp__node_err(err, OSP_ESHAPE, n, "output dim %d", i);
    size_t cnt = osp_tensor_numel(o);
    if (cnt == 0)
        return 0;
    /* integer division by zero is bad input, not UB */
    if (n->op == OSP_OP_DIV && dt != OSP_DT_F32) {
        size_t nb = osp_tensor_numel(b);
        for (size_t i = 0; i < nb; i++)
            if (osp_tensor_get_i64(b, i) == 0)
                return osp__node_err(err, OSP_EINVAL, n,
                                     "integer division by zero");
    }
    /* Per-operand strides over the output dims (0 where broadcast). */
    int64_t stA[OSP_MAX_RANK + 1], stB[OSP_MAX_RANK + 1];
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        int k = i - (r - a->rank);
        int64_t d = k >= 0 ? a->dims[k] : 1;
        stA[i] = d == 1 ? 0 : s;
        s *= d;
    }
    s = 1;
    for (int i = r - 1; i >= 0; i--) {
        int k = i - (r - b->rank);
        int64_t d = k >= 0 ? b->dims[k] : 1;
        stB[i] = d == 1 ? 0 : s;
        s *= d;
    }
    int64_t last = r ? o->dims[r - 1] : 1;
    int64_t sa = r ? stA[r - 1] : 0, sb = r ? stB[r - 1] : 0;
    size_t rows = cnt / (size_t)last;
    int64_t idx[OSP_MAX_RANK] = {0};
    /* Swap so that the "scalar operand" fast path applies to either side
     * for commutative ops. */
    if (sa == 0 && sb == 1 && (n->op == OSP_OP_ADD || n->op == OSP_OP_MUL)) {
        const osp_tensor_t *t = a;
        a = b;
        b = t;
        for (int i = 0; i < r; i++) {
            int64_t u = stA[i];
            stA[i] = stB[i];
            stB[i] = u;
        }
        sa = 1;
        sb = 0;
    }
    for (size_t row = 0; row < rows; row++) {
        int64_t oa = 0, ob = 0, oo = (int64_t)row * last;
        for (int i = 0; i < r - 1; i++) {
            oa += idx[i] * stA[i];
            ob += idx[i] * stB[i];
        }
        switch (dt) {
        case OSP_DT_F32:
            switch (n->op) {
            case OSP_OP_ADD:
                BIN_LOOP(float, x + y);
                break;
            case OSP_OP_SUB:
                BIN_LOOP(float, x - y);
                break;
            case OSP_OP_MUL:
                BIN_LOOP(float, x * y);
                break;
            default:
                BIN_LOOP(float, x / y);
                break;
            }
            break;
        case OSP_DT_S32:
            switch (n->op) {
            case OSP_OP_ADD:
                BIN_LOOP(int32_t, WRAP_ADD(int32_t, uint32_t, x, y));
                break;
            case OSP_OP_SUB:
                BIN_LOOP(int32_t, WRAP_SUB(int32_t, uint32_t, x, y));
                break;
            case OSP_OP_MUL:
                BIN_LOOP(int32_t, WRAP_MUL(int32_t, uint32_t, x, y));
                break;
            default:
                BIN_LOOP(int32_t, (int32_t)div_s64(x, y));
                break;
            }
            break;
        case OSP_DT_U8: /* modular, as ONNX Runtime */
            switch (n->op) {
            case OSP_OP_ADD:
                BIN_LOOP(uint8_t, (uint8_t)(x + y));
                break;
            case OSP_OP_SUB:
                BIN_LOOP(uint8_t, (uint8_t)(x - y));
                break;
            case OSP_OP_MUL:
                BIN_LOOP(uint8_t, (uint8_t)(x * y));
                break;
            default:
                BIN_LOOP(uint8_t, (uint8_t)(x / y));
                break;
            }
            break;
        case OSP_DT_S8:
            switch (n->op) {
            case OSP_OP_ADD:
                BIN_LOOP(int8_t, (int8_t)(uint8_t)(x + y));
                break;
            case OSP_OP_SUB:
                BIN_LOOP(int8_t, (int8_t)(uint8_t)(x - y));
                break;
            case OSP_OP_MUL:
                BIN_LOOP(int8_t, (int8_t)(uint8_t)(x * y));
                break;
            default:
                BIN_LOOP(int8_t, (int8_t)(uint8_t)div_s64(x, y));
                break;
            }
            break;
        default:
            switch (n->op) {
            case OSP_OP_ADD:
                BIN_LOOP(int64_t, WRAP_ADD(int64_t, uint64_t, x, y));
                break;
            case OSP_OP_SUB:
                BIN_LOOP(int64_t, WRAP_SUB(int64_t, uint64_t, x, y));
                break;
            case OSP_OP_MUL:
                BIN_LOOP(int64_t, WRAP_MUL(int64_t, uint64_t, x, y));
                break;
            default:
                BIN_LOOP(int64_t, div_s64(x, y));
                break;
            }
            break;
        }
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < o->dims[i])
                break;
            idx[i] = 0;
        }
    }
    return 0;
}
