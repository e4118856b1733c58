/* dnnl_ip.c — GEMM nodes as oneDNN inner products and MATMUL nodes as
 * oneDNN matmuls.
 *
 * The classifier head of a CNN is Gemm(A, B^T) + C with a constant B: an
 * inner product whose weights are reordered once. Other Gemm forms (alpha
 * != 1, transposed A, a full-matrix C, runtime B) are rare in image models
 * and go to the reference kernel. In bf16 mode the source and weights are
 * bf16 and the destination stays f32, so logits are fp32. */
#include <string.h>

#include "engine/plan/plan_int.h"

static bool has_sum(const osp_node_t *n) {
    for (int i = 0; i < n->n_post; i++)
        if (n->post[i].kind == OSP_POST_SUM)
            return true;
    return false;
}

static int gemm_try(osp__plan_ctx_t *c, int ni, dnnl_data_type_t dt) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    const osp_gemm_params_t *gp = &n->p.gemm;
    if (n->n_in < 2 || n->n_out != 1 || has_sum(n) || gp->trans_a ||
        gp->alpha != 1.0f)
        return OSP_EUNSUPPORTED;
    int a = n->in[0], b = n->in[1], cc = n->n_in > 2 ? n->in[2] : -1;
    int y = n->out[0];
    if (a < 0 || b < 0 || y < 0 || !osp_value_is_const(&g->values[b]))
        return OSP_EUNSUPPORTED;
    const osp_value_t *A = &g->values[a], *B = &g->values[b], *Y = &g->values[y];
    if (A->rank != 2 || B->rank != 2 || Y->rank != 2)
        return OSP_EUNSUPPORTED;
    int64_t M = A->dims[0], K = A->dims[1], N = Y->dims[1];
    if (gp->trans_b ? (B->dims[0] != N || B->dims[1] != K)
                    : (B->dims[0] != K || B->dims[1] != N))
        return OSP_EUNSUPPORTED;
    if (cc >= 0) {
        const osp_value_t *C = &g->values[cc];
        if (!osp_value_is_const(C) || gp->beta != 1.0f ||
            osp_value_numel(C) != (size_t)N ||
            !(C->rank == 1 || (C->rank == 2 && C->dims[0] == 1)))
            return OSP_EUNSUPPORTED;
    }
    dnnl_memory_desc_t smd, wmd, bmd, dmd, wsrc;
    int64_t sd[2] = {M, K}, wd[2] = {N, K}, dd[2] = {M, N}, bd[1] = {N};
    osp__md_any(c, &smd, 2, sd, dt);
    osp__md_any(c, &wmd, 2, wd, dt);
    osp__md_any(c, &dmd, 2, dd, dnnl_f32);
    osp__md_plain(c, &bmd, 1, bd, dnnl_f32);
    int64_t wdims[2] = {N, K};
    int64_t wstr[2] = {gp->trans_b ? K : 1, gp->trans_b ? 1 : N};
    osp__md_strides(c, &wsrc, 2, wdims, dnnl_f32, wstr);

    char note[96] = "";
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr;
    int rc = osp__attr_post(c, n, &attr, note, sizeof note);
    if (rc < 0)
        return rc;
    rc = osp__pd_done(dnnl_inner_product_forward_primitive_desc_create(
                          &pd, c->e->dnnl_eng, dnnl_forward_inference, smd,
                          wmd, cc >= 0 ? bmd : NULL, dmd, attr),
                      attr, &pd);
    if (rc < 0)
        return rc;
    smd = osp__md_query(c, pd, dnnl_query_src_md);
    wmd = osp__md_query(c, pd, dnnl_query_weights_md);
    dmd = osp__md_query(c, pd, dnnl_query_dst_md);
    int kinds[4], bufs[4], na = 0;
    rc = osp__buf_as(c, a, &smd);
    if (rc < 0)
        goto fail;
    kinds[na] = DNNL_ARG_SRC, bufs[na++] = rc;
    rc = osp__const_as(c, b, &wsrc, &wmd);
    if (rc < 0)
        goto fail;
    kinds[na] = DNNL_ARG_WEIGHTS, bufs[na++] = rc;
    if (cc >= 0) {
        rc = osp__const_as(c, cc, &bmd, &bmd);
        if (rc < 0)
            goto fail;
        kinds[na] = DNNL_ARG_BIAS, bufs[na++] = rc;
    }
    rc = osp__buf_new(c, &dmd, y);
    if (rc < 0)
        goto fail;
    kinds[na] = DNNL_ARG_DST, bufs[na++] = rc;
    int db = rc;
    rc = osp__step_dnnl(c, ni, pd, na, kinds, bufs, note);
    if (rc < 0)
        return rc;
    osp__bind_value(c, y, db);
    return 0;
fail:
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

int osp__dnnl_gemm(osp__plan_ctx_t *c, int ni) {
    int rc = gemm_try(c, ni, c->act_dt);
    if (rc == OSP_EUNSUPPORTED && c->act_dt != dnnl_f32)
        rc = gemm_try(c, ni, dnnl_f32);
    return rc;
}

/* Left-pads dims with ones to rank r. */
static void pad_dims(const osp_value_t *v, int r, int64_t *out) {
    int k = r - v->rank;
    for (int i = 0; i < r; i++)
        out[i] = i < k ? 1 : v->dims[i - k];
}

int osp__dnnl_matmul(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (n->n_in != 2 || n->n_out != 1 || has_sum(n) || n->in[0] < 0 ||
        n->in[1] < 0 || n->out[0] < 0)
        return OSP_EUNSUPPORTED;
    int a = n->in[0], b = n->in[1], y = n->out[0];
    const osp_value_t *A = &g->values[a], *B = &g->values[b], *Y = &g->values[y];
    int r = Y->rank;
    if (A->rank < 2 || B->rank < 2 || r < 2 || r > 6 || A->rank > r ||
        B->rank > r)
        return OSP_EUNSUPPORTED;
    int64_t ad[OSP_MAX_RANK], bd[OSP_MAX_RANK];
    pad_dims(A, r, ad);
    pad_dims(B, r, bd);
    dnnl_memory_desc_t amd, bmd, bany, dmd;
    osp__md_plain(c, &amd, r, ad, dnnl_f32);
    osp__md_plain(c, &bmd, r, bd, dnnl_f32);
    bool b_const = osp_value_is_const(B);
    if (b_const)
        osp__md_any(c, &bany, r, bd, dnnl_f32);
    else
        bany = bmd;
    osp__md_plain(c, &dmd, r, Y->dims, dnnl_f32);
    char note[96] = "";
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr;
    int rc = osp__attr_post(c, n, &attr, note, sizeof note);
    if (rc < 0)
        return rc;
    rc = osp__pd_done(dnnl_matmul_primitive_desc_create(
                          &pd, c->e->dnnl_eng, amd, bany, NULL, dmd, attr),
                      attr, &pd);
    if (rc < 0)
        return rc;
    bany = osp__md_query(c, pd, dnnl_query_weights_md);
    int kinds[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST}, bufs[3];
    rc = osp__buf_plain(c, a);
    if (rc >= 0)
        rc = osp__buf_view(c, rc, -1, &amd);
    if (rc < 0)
        goto fail;
    bufs[0] = rc;
    if (b_const) {
        rc = osp__const_as(c, b, &bmd, &bany);
    } else {
        rc = osp__buf_plain(c, b);
        if (rc >= 0)
            rc = osp__buf_view(c, rc, -1, &bmd);
    }
    if (rc < 0)
        goto fail;
    bufs[1] = rc;
    rc = osp__buf_new(c, &dmd, y);
    if (rc < 0)
        goto fail;
    bufs[2] = rc;
    rc = osp__step_dnnl(c, ni, pd, 3, kinds, bufs, note);
    if (rc < 0)
        return rc;
    osp__bind_value(c, y, bufs[2]);
    return 0;
fail:
    dnnl_primitive_desc_destroy(pd);
    return rc;
}
