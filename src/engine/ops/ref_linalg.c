/* ref_linalg.c — reference kernels for GEMM (alpha, beta, transA/transB,
 * C broadcast unidirectionally to [M, N]) and MATMUL (numpy semantics:
 * batched with broadcast batch dims, 1-D operands promoted and the added dim
 * removed). f32; fused post-ops are applied by ref.c.
 *
 * One accumulate kernel serves both: it picks a loop order by operand layout
 * (row-major B → i-k-j axpy rows; transposed B → dot products with split
 * accumulators), which is what makes the fallback usable on a real
 * classifier head. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3") /* see ref_conv.c */
#endif

#include <string.h>

#include "engine/ops/ref.h"

/* See ref.h. Loop order by layout: row-major B → axpy rows (four Y rows per
 * B row); transposed B → dot products; otherwise the plain triple loop. */
void osp__ref_sgemm_acc(int64_t m, int64_t nn, int64_t k, float alpha,
                        const float *a, int64_t ars, int64_t acs,
                        const float *b, int64_t brs, int64_t bcs, float *y,
                        int64_t ldy) {
    if (bcs == 1) {
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) { /* each B row feeds four Y rows */
            float *y0 = y + i * ldy, *y1 = y0 + ldy, *y2 = y1 + ldy,
                  *y3 = y2 + ldy;
            for (int64_t p = 0; p < k; p++) {
                float a0 = alpha * a[i * ars + p * acs];
                float a1 = alpha * a[(i + 1) * ars + p * acs];
                float a2 = alpha * a[(i + 2) * ars + p * acs];
                float a3 = alpha * a[(i + 3) * ars + p * acs];
                const float *br = b + p * brs;
                for (int64_t j = 0; j < nn; j++) {
                    float bv = br[j];
                    y0[j] += a0 * bv;
                    y1[j] += a1 * bv;
                    y2[j] += a2 * bv;
                    y3[j] += a3 * bv;
                }
            }
        }
        for (; i < m; i++) {
            float *yr = y + i * ldy;
            for (int64_t p = 0; p < k; p++) {
                float av = alpha * a[i * ars + p * acs];
                const float *br = b + p * brs;
                for (int64_t j = 0; j < nn; j++)
                    yr[j] += av * br[j];
            }
        }
    } else if (brs == 1 && acs == 1) {
        for (int64_t i = 0; i < m; i++) {
            const float *ar = a + i * ars;
            for (int64_t j = 0; j < nn; j++) {
                const float *bc = b + j * bcs;
                float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                int64_t p = 0;
                for (; p + 8 <= k; p += 8)
                    for (int q = 0; q < 8; q++)
                        s[q] += ar[p + q] * bc[p + q];
                float t = ((s[0] + s[1]) + (s[2] + s[3])) +
                          ((s[4] + s[5]) + (s[6] + s[7]));
                for (; p < k; p++)
                    t += ar[p] * bc[p];
                y[i * ldy + j] += alpha * t;
            }
        }
    } else {
        for (int64_t i = 0; i < m; i++)
            for (int64_t p = 0; p < k; p++) {
                float av = alpha * a[i * ars + p * acs];
                for (int64_t j = 0; j < nn; j++)
                    y[i * ldy + j] += av * b[p * brs + j * bcs];
            }
    }
}

static int need_f32(const osp_node_t *n, const osp_tensor_t *in, int cnt,
                    const osp_tensor_t *y, osp_err_t *err) {
    for (int i = 0; i < cnt; i++) {
        if (!osp__has_in(n, i))
            continue;
        if (in[i].dtype != OSP_DT_F32 ||
            (!in[i].data && osp_tensor_numel(&in[i])))
            return osp__node_err(err, OSP_EUNSUPPORTED, n,
                                 "input %d: %s without data or not f32", i,
                                 osp_dtype_name(in[i].dtype));
    }
    if (y->dtype != OSP_DT_F32)
        return osp__node_err(err, OSP_EUNSUPPORTED, n, "output not f32");
    return 0;
}

int osp__ref_gemm(const osp_graph_t *g, const osp_node_t *n,
                  const osp_tensor_t *in, osp_tensor_t *out, osp_err_t *err) {
    osp_tensor_t *y = &out[0];
    if (n->n_in < 2)
        return osp__node_err(err, OSP_EINVAL, n, "needs A and B");
    int rc = need_f32(n, in, n->n_in < 3 ? n->n_in : 3, y, err);
    if (rc < 0)
        return rc;
    const osp_tensor_t *a = &in[0], *b = &in[1];
    const osp_tensor_t *c = osp__has_in(n, 2) ? &in[2] : NULL;
    const osp_gemm_params_t *p = &n->p.gemm;
    if (a->rank != 2 || b->rank != 2 || y->rank != 2)
        return osp__node_err(err, OSP_ESHAPE, n, "A, B and Y must be 2-D");
    int64_t m = p->trans_a ? a->dims[1] : a->dims[0];
    int64_t k = p->trans_a ? a->dims[0] : a->dims[1];
    int64_t nn = p->trans_b ? b->dims[0] : b->dims[1];
    int64_t kb = p->trans_b ? b->dims[1] : b->dims[0];
    if (k != kb || y->dims[0] != m || y->dims[1] != nn)
        return osp__node_err(err, OSP_ESHAPE, n, "A/B/Y dims disagree");
    float *yp = y->data;
    /* Y = beta * C (broadcast) */
    int64_t csm = 0, csn = 0;
    if (c) {
        if (c->rank > 2)
            return osp__node_err(err, OSP_ESHAPE, n, "C rank %d", c->rank);
        int64_t cm = c->rank == 2 ? c->dims[0] : 1;
        int64_t cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        if ((cm != 1 && cm != m) || (cn != 1 && cn != nn))
            return osp__node_err(err, OSP_ESHAPE, n,
                                 "C [%lld, %lld] does not broadcast to "
                                 "[%lld, %lld]",
                                 (long long)cm, (long long)cn, (long long)m,
                                 (long long)nn);
        csm = cm == 1 ? 0 : cn;
        csn = cn == 1 ? 0 : 1;
        const float *cp = c->data;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nn; j++)
                yp[i * nn + j] = p->beta * cp[i * csm + j * csn];
    } else {
        memset(yp, 0, sizeof(float) * (size_t)(m * nn));
    }
    int64_t ars = p->trans_a ? 1 : a->dims[1], acs = p->trans_a ? a->dims[1] : 1;
    int64_t brs = p->trans_b ? 1 : b->dims[1], bcs = p->trans_b ? b->dims[1] : 1;
    osp__ref_sgemm_acc(m, nn, k, p->alpha, a->data, ars, acs, b->data, brs,
                       bcs, yp, nn);
    return 0;
}

int osp__ref_matmul(const osp_graph_t *g, const osp_node_t *n,
                    const osp_tensor_t *in, osp_tensor_t *out,
                    osp_err_t *err) {
    osp_tensor_t *y = &out[0];
    if (n->n_in < 2)
        return osp__node_err(err, OSP_EINVAL, n, "needs A and B");
    int rc = need_f32(n, in, 2, y, err);
    if (rc < 0)
        return rc;
    const osp_tensor_t *a = &in[0], *b = &in[1];
    if (a->rank < 1 || b->rank < 1)
        return osp__node_err(err, OSP_ESHAPE, n, "scalar operand");
    int64_t ad[OSP_MAX_RANK], bd[OSP_MAX_RANK];
    int ra = a->rank, rb = b->rank;
    memcpy(ad, a->dims, sizeof ad);
    memcpy(bd, b->dims, sizeof bd);
    if (ra == 1) {
        ad[1] = ad[0];
        ad[0] = 1;
        ra = 2;
    }
    if (rb == 1) {
        bd[1] = 1;
        rb = 2;
    }
    int64_t m = ad[ra - 2], k = ad[ra - 1], nn = bd[rb - 1];
    if (bd[rb - 2] != k)
        return osp__node_err(err, OSP_ESHAPE, n, "inner dims %lld vs %lld",
                             (long long)k, (long long)bd[rb - 2]);
    int64_t bdims[OSP_MAX_RANK];
    int r;
    if (osp_broadcast_shapes(ad, ra - 2, bd, rb - 2, bdims, &r) < 0)
        return osp__node_err(err, OSP_ESHAPE, n, "batch dims");
    /* strides of A/B matrices per broadcast batch dim (0 if broadcast) */
    int64_t sa[OSP_MAX_RANK], sb[OSP_MAX_RANK], s = m * k;
    for (int i = r - 1; i >= 0; i--) {
        int j = i - (r - (ra - 2));
        int64_t d = j >= 0 ? ad[j] : 1;
        sa[i] = d == 1 ? 0 : s;
        s *= d;
    }
    s = k * nn;
    for (int i = r - 1; i >= 0; i--) {
        int j = i - (r - (rb - 2));
        int64_t d = j >= 0 ? bd[j] : 1;
        sb[i] = d == 1 ? 0 : s;
        s *= d;
    }
    size_t batches = 1;
    for (int i = 0; i < r; i++)
        batches *= (size_t)bdims[i];
    if (osp_tensor_numel(y) != batches * (size_t)(m * nn))
        return osp__node_err(err, OSP_ESHAPE, n, "output size");
    float *yp = y->data;
    memset(yp, 0, sizeof(float) * osp_tensor_numel(y));
    int64_t idx[OSP_MAX_RANK] = {0};
    for (size_t bi = 0; bi < batches; bi++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < r; i++) {
            oa += idx[i] * sa[i];
            ob += idx[i] * sb[i];
        }
        osp__ref_sgemm_acc(m, nn, k, 1.0f, (const float *)a->data + oa, k, 1,
               (const float *)b->data + ob, nn, 1,
               yp + bi * (size_t)(m * nn), nn);
        for (int i = r - 1; i >= 0; i--) {
            if (++idx[i] < bdims[i])
                break;
            idx[i] = 0;
        }
    }
    return 0;
}
