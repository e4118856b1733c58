/* dnnl_pool.c — MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool
 * as oneDNN pooling (v2, with dilation).
 *
 * Pools read their source in whatever layout the producer wrote (usually
 * the conv chain's blocked layout) and write the same layout. ceil_mode is
 * expressed through a larger right pad; oneDNN's max pooling never selects
 * padding and avg_exclude_padding divides by the valid count, matching ONNX.
 * AveragePool with count_include_pad and ceil_mode would count the extra
 * ceil padding, which ONNX does not, so that combination stays on the
 * reference kernel. */
#include <string.h>

#include "engine/plan/plan_int.h"

int osp__dnnl_pool(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (n->n_in != 1 || n->n_out != 1 || n->in[0] < 0 || n->out[0] < 0)
        return OSP_EUNSUPPORTED; /* MaxPool's Indices output */
    int x = n->in[0], y = n->out[0];
    const osp_value_t *X = &g->values[x], *Y = &g->values[y];
    int r = X->rank, nsp = r - 2;
    if (r < 3 || r > 5 || Y->rank != r)
        return OSP_EUNSUPPORTED;
    bool global = n->op == OSP_OP_GLOBAL_AVGPOOL || n->op == OSP_OP_GLOBAL_MAXPOOL;
    bool is_max = n->op == OSP_OP_MAXPOOL || n->op == OSP_OP_GLOBAL_MAXPOOL;
    dnnl_dims_t strides, kernel, dil, pl, pr;
    if (global) {
        for (int i = 0; i < nsp; i++) {
            strides[i] = 1;
            kernel[i] = X->dims[2 + i];
            dil[i] = pl[i] = pr[i] = 0;
        }
    } else {
        const osp_window_t *w = &n->p.pool.win;
        if (w->n_spatial != nsp)
            return OSP_EUNSUPPORTED;
        int64_t lpl[OSP_MAX_SPATIAL], lpr[OSP_MAX_SPATIAL], gpr[OSP_MAX_SPATIAL];
        int rc0 = osp__window_pads(c, n, w, X->dims + 2, Y->dims + 2, NULL,
                                   n->p.pool.ceil_mode, lpl, lpr, gpr);
        if (rc0 < 0)
            return rc0;
        for (int i = 0; i < nsp; i++) {
            strides[i] = w->stride[i] > 0 ? w->stride[i] : 1;
            kernel[i] = w->kernel[i];
            if (kernel[i] <= 0)
                return OSP_EUNSUPPORTED;
            dil[i] = (w->dilation[i] > 0 ? w->dilation[i] : 1) - 1;
            pl[i] = lpl[i];
            pr[i] = lpr[i];
            /* Padding the window can overhang; an entirely padded window
             * has no ONNX meaning for oneDNN to match. */
            int64_t ext = (kernel[i] - 1) * (dil[i] + 1) + 1;
            if (pl[i] < 0 || pr[i] < 0 || pl[i] >= ext || pr[i] >= ext)
                return OSP_EUNSUPPORTED;
            if (n->op == OSP_OP_AVGPOOL && n->p.pool.count_include_pad &&
                pr[i] > gpr[i])
                return OSP_EUNSUPPORTED;
        }
    }
    dnnl_alg_kind_t alg = is_max ? dnnl_pooling_max
                          : (!global && n->p.pool.count_include_pad)
                              ? dnnl_pooling_avg_include_padding
                              : dnnl_pooling_avg_exclude_padding;
    dnnl_memory_desc_t smd, dmd;
    int rc = osp__value_md(c, x, &smd);
    if (rc < 0)
        return rc;
    /* oneDNN's int8 pooling kernels read channels-last or blocked sources;
     * a plain NCHW one gets its reference kernel, ~100x slower (SqueezeNet's
     * osprey-quantized pools after a Concat, which the quantizer leaves
     * plain: 88 ms of a batch of 8 where the layout change costs 0.3).
     * Such a source is read channels-last: one reorder, into the layout the
     * int8 convs after it want anyway. */
    dnnl_data_type_t sdt = osp__md_dt(smd);
    dnnl_memory_desc_t plain;
    if ((sdt == dnnl_s8 || sdt == dnnl_u8) && r == 4 &&
        osp__md_plain(c, &plain, r, X->dims, sdt) &&
        dnnl_memory_desc_equal(plain, smd) &&
        !osp__md_tag(c, &smd, r, X->dims, sdt, dnnl_acdb))
        return OSP_EUNSUPPORTED;
    osp__md_any(c, &dmd, r, Y->dims, sdt);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr;
    int prc = osp__attr_post(c, NULL, &attr, NULL, 0);
    if (prc < 0)
        return prc;
    prc = osp__pd_done(dnnl_pooling_forward_primitive_desc_create(
                           &pd, c->e->dnnl_eng, dnnl_forward_inference, alg,
                           smd, dmd, strides, kernel, dil, pl, pr, attr),
                       attr, &pd);
    if (prc < 0)
        return prc;
    dmd = osp__md_query(c, pd, dnnl_query_dst_md);
    int sb = osp__buf_as(c, x, &smd);
    int db = sb < 0 ? sb : osp__buf_new(c, &dmd, y);
    if (db < 0) {
        dnnl_primitive_desc_destroy(pd);
        return db;
    }
    int kinds[2] = {DNNL_ARG_SRC, DNNL_ARG_DST}, bufs[2] = {sb, db};
    rc = osp__step_dnnl(c, ni, pd, 2, kinds, bufs, NULL);
    if (rc < 0)
        return rc;
    osp__bind_value(c, y, db);
    return 0;
}
