/* dnnl_misc.c — the layout-preserving oneDNN primitives: standalone
 * activations (eltwise), elementwise binary ops with broadcasting, softmax,
 * concat, batch normalization and LRN.
 *
 * These read their main source in the producer's layout (blocked or plain)
 * and write the same layout, so they never force a reorder inside the conv
 * chain. Shapes oneDNN cannot express (numpy broadcasting of the first
 * operand, legacy multi-axis softmax, ...) go to the reference kernels. */
#include <string.h>

#include "engine/plan/plan_int.h"

static int finish(osp__plan_ctx_t *c, int ni, dnnl_primitive_desc_t pd, int n_args,
                  int *kinds, int *bufs, int y, const char *note) {
    int rc = osp__step_dnnl(c, ni, pd, n_args, kinds, bufs, note);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n_args; i++)
        if (kinds[i] == DNNL_ARG_DST)
            osp__bind_value(c, y, bufs[i]);
    return 0;
}

/* ---- eltwise --------------------------------------------------------- */

int osp__dnnl_eltwise(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    if (n->n_out != 1 || n->in[0] < 0 || n->out[0] < 0 || n->n_post)
        return OSP_EUNSUPPORTED;
    /* CLIP with min/max given as inputs (opset >= 11) is folded into
     * alpha/beta by the importer when constant; otherwise: reference. */
    for (int i = 1; i < n->n_in; i++)
        if (n->in[i] >= 0)
            return OSP_EUNSUPPORTED;
    dnnl_alg_kind_t alg;
    float alpha = 0.f, beta = 0.f;
    switch (n->op) {
    case OSP_OP_RELU: alg = dnnl_eltwise_relu; break;
    case OSP_OP_LEAKY_RELU: alg = dnnl_eltwise_relu; alpha = n->p.act.alpha; break;
    case OSP_OP_CLIP:
        alg = dnnl_eltwise_clip;
        alpha = n->p.act.alpha;
        beta = n->p.act.beta;
        break;
    case OSP_OP_SIGMOID: alg = dnnl_eltwise_logistic; break;
    case OSP_OP_HARD_SWISH: /* oneDNN 3: x·min(max(αx + β, 0), 1) */
        alg = dnnl_eltwise_hardswish;
        alpha = 1.f / 6.f;
        beta = 0.5f;
        break;
    default: return OSP_EUNSUPPORTED;
    }
    int x = n->in[0], y = n->out[0];
    dnnl_memory_desc_t smd;
    int rc = osp__value_md(c, x, &smd);
    if (rc < 0)
        return rc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr;
    if ((rc = osp__attr_post(c, NULL, &attr, NULL, 0)) < 0)
        return rc;
    rc = osp__pd_done(dnnl_eltwise_forward_primitive_desc_create(
                          &pd, c->e->dnnl_eng, dnnl_forward_inference, alg,
                          smd, smd, alpha, beta, attr),
                      attr, &pd);
    if (rc < 0)
        return rc;
    int sb = osp__buf_as(c, x, &smd);
    int db = sb < 0 ? sb : osp__buf_new(c, &smd, y);
    if (db < 0) {
        dnnl_primitive_desc_destroy(pd);
        return db;
    }
    int kinds[2] = {DNNL_ARG_SRC, DNNL_ARG_DST}, bufs[2] = {sb, db};
    return finish(c, ni, pd, 2, kinds, bufs, y, NULL);
}

/* ---- binary ---------------------------------------------------------- */

int osp__dnnl_binary(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (n->n_in != 2 || n->n_out != 1 || n->in[0] < 0 || n->in[1] < 0 ||
        n->out[0] < 0)
        return OSP_EUNSUPPORTED;
    int a = n->in[0], b = n->in[1], y = n->out[0];
    const osp_value_t *Y = &g->values[y];
    bool commutative = n->op == OSP_OP_ADD || n->op == OSP_OP_MUL;
    /* oneDNN broadcasts only the second source. */
    if (!osp_value_same_dims(&g->values[a], Y) ||
        osp_value_is_const(&g->values[a])) {
        if (!commutative || !osp_value_same_dims(&g->values[b], Y) ||
            osp_value_is_const(&g->values[b]))
            return OSP_EUNSUPPORTED;
        int t = a;
        a = b;
        b = t;
    }
    const osp_value_t *B = &g->values[b];
    int r = Y->rank;
    if (r < 1 || B->rank > r)
        return OSP_EUNSUPPORTED;
    int64_t bd[OSP_MAX_RANK];
    int k = r - B->rank;
    for (int i = 0; i < r; i++) {
        bd[i] = i < k ? 1 : B->dims[i - k];
        if (bd[i] != 1 && bd[i] != Y->dims[i])
            return OSP_EUNSUPPORTED;
    }
    dnnl_alg_kind_t alg = n->op == OSP_OP_ADD   ? dnnl_binary_add
                          : n->op == OSP_OP_SUB ? dnnl_binary_sub
                          : n->op == OSP_OP_MUL ? dnnl_binary_mul
                                                : dnnl_binary_div;
    dnnl_memory_desc_t smd, s1md, s1src;
    int rc = osp__value_md(c, a, &smd);
    if (rc < 0)
        return rc;
    bool full = osp_value_same_dims(B, Y);
    if (full) {
        s1md = smd; /* same layout as source 0: the fast path */
    } else {
        osp__md_plain(c, &s1md, r, bd, osp__md_dt(smd));
    }
    dnnl_primitive_desc_t pd = NULL;
    char note[96] = "";
    dnnl_primitive_attr_t attr;
    if ((rc = osp__attr_post(c, n, &attr, note, sizeof note)) < 0)
        return rc;
    rc = osp__pd_done(dnnl_binary_primitive_desc_create(
                          &pd, c->e->dnnl_eng, alg, smd, s1md, smd, attr),
                      attr, &pd);
    if (rc < 0)
        return rc;
    int kinds[3] = {DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST}, bufs[3];
    rc = osp__buf_as(c, a, &smd);
    if (rc < 0)
        goto fail;
    bufs[0] = rc;
    if (full) {
        rc = osp__buf_as(c, b, &s1md);
    } else if (osp_value_is_const(B)) {
        osp__md_plain(c, &s1src, r, bd, osp__dnnl_dt(B->dtype));
        rc = osp__const_as(c, b, &s1src, &s1md);
    } else {
        /* Broadcast operand: plain data viewed with the padded rank, then
         * converted to source 0's dtype if needed. */
        rc = osp__buf_plain(c, b);
        osp__md_plain(c, &s1src, r, bd, osp__dnnl_dt(B->dtype));
        if (rc >= 0)
            rc = osp__buf_view(c, rc, -1, &s1src);
        if (rc >= 0 && !dnnl_memory_desc_equal(s1src, s1md)) {
            int nb = osp__buf_new(c, &s1md, -1);
            if (nb >= 0)
                rc = osp__step_reorder(c, rc, nb, B->name) < 0 ? -1 : nb;
            else
                rc = nb;
        }
    }
    if (rc < 0)
        goto fail;
    bufs[1] = rc;
    rc = osp__buf_new(c, &smd, y);
    if (rc < 0)
        goto fail;
    bufs[2] = rc;
    return finish(c, ni, pd, 3, kinds, bufs, y, note);
fail:
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- softmax ---------------------------------------------------------- */

int osp__dnnl_softmax(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (n->n_out != 1 || n->in[0] < 0 || n->out[0] < 0)
        return OSP_EUNSUPPORTED;
    int x = n->in[0], y = n->out[0];
    const osp_value_t *X = &g->values[x];
    int r = X->rank;
    int64_t axis = n->p.axis.axis < 0 ? n->p.axis.axis + r : n->p.axis.axis;
    if (r < 1 || axis < 0 || axis >= r)
        return OSP_EUNSUPPORTED;
    if (n->p.axis.legacy) {
        /* Legacy softmax normalises over all dims from axis on; that is a
         * one-axis softmax only when at most one of them is not 1. */
        int big = -1;
        for (int i = (int)axis; i < r; i++)
            if (X->dims[i] != 1) {
                if (big >= 0)
                    return OSP_EUNSUPPORTED;
                big = i;
            }
        axis = big >= 0 ? big : axis;
    }
    dnnl_memory_desc_t md;
    osp__md_plain(c, &md, r, X->dims, dnnl_f32);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr;
    int rc = osp__attr_post(c, NULL, &attr, NULL, 0);
    if (rc < 0)
        return rc;
    rc = osp__pd_done(dnnl_softmax_forward_primitive_desc_create(
                          &pd, c->e->dnnl_eng, dnnl_forward_inference,
                          dnnl_softmax_accurate, md, md, (int)axis, attr),
                      attr, &pd);
    if (rc < 0)
        return rc;
    int sb = osp__buf_as(c, x, &md);
    int db = sb < 0 ? sb : osp__buf_new(c, &md, y);
    if (db < 0) {
        dnnl_primitive_desc_destroy(pd);
        return db;
    }
    int kinds[2] = {DNNL_ARG_SRC, DNNL_ARG_DST}, bufs[2] = {sb, db};
    return finish(c, ni, pd, 2, kinds, bufs, y, NULL);
}

/* ---- concat ----------------------------------------------------------- */

/* Dense layouts in which a concat is rows of memcpy: plain (any axis);
 * channel-blocked by 16 (AVX-512) or 8 (AVX2) with whole blocks per input,
 * and channels-last, along the channel axis. */
typedef enum {
    ROWS_PLAIN,
    ROWS_BLOCKED16,
    ROWS_BLOCKED8,
    ROWS_LAST,
    ROWS_COUNT
} rows_kind_t;

/* The md of rank-r dims in layout kind k; false when it cannot hold them. */
static bool rows_md(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, rows_kind_t k, int r,
                    const int64_t *dims, dnnl_data_type_t dt) {
    static const dnnl_format_tag_t tags[ROWS_COUNT][3] = {
        [ROWS_BLOCKED16] = {dnnl_aBc16b, dnnl_aBcd16b, dnnl_aBcde16b},
        [ROWS_BLOCKED8] = {dnnl_aBc8b, dnnl_aBcd8b, dnnl_aBcde8b},
        [ROWS_LAST] = {dnnl_acb, dnnl_acdb, dnnl_acdeb}};
    if (k == ROWS_PLAIN)
        return osp__md_plain(c, md, r, dims, dt);
    if (r < 3 || r > 5 || (k == ROWS_BLOCKED16 && dims[1] % 16) ||
        (k == ROWS_BLOCKED8 && dims[1] % 8))
        return false;
    return osp__md_tag(c, md, r, dims, dt, tags[k][r - 3]);
}

/* Concat as rows of memcpy in input 0's layout, or with to_plain in plain
 * layout (see osp__dnnl_concat); OSP_EUNSUPPORTED when input 0's layout is
 * none of the kinds. */
static int concat_rows(osp__plan_ctx_t *c, int ni, const dnnl_memory_desc_t *mds,
                       dnnl_data_type_t dt, int64_t axis, bool to_plain) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    const osp_value_t *Y = &g->values[n->out[0]];
    int r = Y->rank;
    size_t esz = osp_dtype_size(osp__osp_dt(dt));
    if (!esz)
        return OSP_EUNSUPPORTED;
    rows_kind_t kind = ROWS_PLAIN;
    dnnl_memory_desc_t want;
    bool found = to_plain;
    for (int k = ROWS_PLAIN; k < ROWS_COUNT && !found; k++) {
        if (k != ROWS_PLAIN && axis != 1)
            break;
        found = rows_md(c, &want, (rows_kind_t)k, r, g->values[n->in[0]].dims, dt) &&
                dnnl_memory_desc_equal(want, mds[0]);
        if (found)
            kind = (rows_kind_t)k;
    }
    if (!found)
        return OSP_EUNSUPPORTED;
    /* Rows: the dims before the axis, or for channels-last every dim but
     * the channels. */
    size_t outer = 1;
    for (int d = 0; d < r; d++)
        if (kind == ROWS_LAST ? d != 1 : d < axis)
            outer *= (size_t)Y->dims[d];
    dnnl_memory_desc_t mdi[OSP_STEP_MAX_ARGS];
    size_t inner[OSP_STEP_MAX_ARGS];
    for (int i = 0; i < n->n_in; i++) {
        const osp_value_t *V = &g->values[n->in[i]];
        /* to_plain also converts constants and other dtypes */
        if (!to_plain && (osp_value_is_const(V) || c->p->vbuf[n->in[i]] < 0 ||
                          osp__md_dt(mds[i]) != dt))
            return OSP_EUNSUPPORTED;
        if (!rows_md(c, &mdi[i], kind, r, V->dims, dt))
            return OSP_EUNSUPPORTED;
        inner[i] = osp_value_numel(V) / outer * esz;
    }
    dnnl_memory_desc_t dmd;
    if (!rows_md(c, &dmd, kind, r, Y->dims, dt))
        return OSP_EUNSUPPORTED;
    /* From here on the node is committed to the memcpy concat. */
    int bufs[OSP_STEP_MAX_ARGS];
    for (int i = 0; i < n->n_in; i++) {
        bufs[i] = !to_plain && dnnl_memory_desc_equal(mdi[i], mds[i])
                      ? c->p->vbuf[n->in[i]]
                      : osp__buf_as(c, n->in[i], &mdi[i]);
        if (bufs[i] < 0)
            return bufs[i];
    }
    int db = osp__buf_new(c, &dmd, n->out[0]);
    if (db < 0)
        return db;
    int rc = osp__step_concat(c, ni, n->n_in, bufs, db, outer, inner);
    if (rc < 0)
        return rc;
    osp__bind_value(c, n->out[0], db);
    return 0;
}

int osp__dnnl_concat(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (n->n_out != 1 || n->out[0] < 0 || n->n_in < 1 ||
        n->n_in > OSP_STEP_MAX_ARGS - 1)
        return OSP_EUNSUPPORTED;
    int y = n->out[0];
    const osp_value_t *Y = &g->values[y];
    int r = Y->rank;
    int64_t axis = n->p.axis.axis < 0 ? n->p.axis.axis + r : n->p.axis.axis;
    if (r < 1 || axis < 0 || axis >= r)
        return OSP_EUNSUPPORTED;
    dnnl_memory_desc_t mds[OSP_STEP_MAX_ARGS], dmd;
    dnnl_data_type_t dt = dnnl_data_type_undef;
    for (int i = 0; i < n->n_in; i++) {
        if (n->in[i] < 0 || g->values[n->in[i]].rank != r)
            return OSP_EUNSUPPORTED;
        int rc = osp__value_md(c, n->in[i], &mds[i]);
        if (rc < 0)
            return rc;
        if (i == 0)
            dt = osp__md_dt(mds[0]);
    }
    /* One dense layout for every input — plain, channel-blocked with whole
     * blocks per input, or channels-last, the last two along the channel
     * axis — makes a concat rows of memcpy, about 3x faster than oneDNN
     * 2.6's generic concat (measured with 16-channel blocks). The layout is
     * input 0's; inputs in another one (convs of one concat may choose
     * differently, e.g. Winograd's blocked output next to NHWC) are
     * reordered to it first. */
    int rc = concat_rows(c, ni, mds, dt, axis, false);
    if (rc != OSP_EUNSUPPORTED)
        return rc;
    /* Mixed dtypes (bf16 conv output next to an f32 constant): bring every
     * source to the first one's dtype. Blocked layouts keep their strides. */
    for (int i = 0; i < n->n_in; i++)
        if (!osp__md_retype(c, &mds[i], mds[i], dt))
            return OSP_EUNSUPPORTED;
    osp__md_any(c, &dmd, r, Y->dims, dt);
    dnnl_primitive_attr_t attr = osp__attr_new();
    if (!attr)
        return OSP_ENOMEM;
    dnnl_primitive_desc_t pd = NULL;
    rc = osp__pd_done(dnnl_concat_primitive_desc_create(
                          &pd, c->e->dnnl_eng, dmd, n->n_in, (int)axis,
                          (const_dnnl_memory_desc_t *)mds, attr),
                      attr, &pd);
    if (rc < 0)
        return rc;
    /* oneDNN's reference concat is slow and allocates on every run (e.g.
     * 12 + 12 channels in AVX2's 8-channel blocks): bring the inputs to
     * plain layout and dtype instead, and memcpy. */
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    if (impl && strstr(impl, "ref")) {
        rc = concat_rows(c, ni, mds, dt, axis, true);
        if (rc != OSP_EUNSUPPORTED) {
            dnnl_primitive_desc_destroy(pd);
            return rc;
        }
    }
    dmd = osp__md_query(c, pd, dnnl_query_dst_md);
    int kinds[OSP_STEP_MAX_ARGS], bufs[OSP_STEP_MAX_ARGS];
    rc = 0;
    for (int i = 0; i < n->n_in; i++) {
        rc = osp__buf_as(c, n->in[i], &mds[i]);
        if (rc < 0)
            goto fail;
        kinds[i] = DNNL_ARG_MULTIPLE_SRC + i;
        bufs[i] = rc;
    }
    rc = osp__buf_new(c, &dmd, y);
    if (rc < 0)
        goto fail;
    kinds[n->n_in] = DNNL_ARG_DST;
    bufs[n->n_in] = rc;
    return finish(c, ni, pd, n->n_in + 1, kinds, bufs, y, NULL);
fail:
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* ---- batch normalization ---------------------------------------------- */

int osp__dnnl_batchnorm(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (n->n_in != 5 || n->n_out < 1 || n->out[0] < 0 || n->n_post)
        return OSP_EUNSUPPORTED;
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i] >= 0)
            return OSP_EUNSUPPORTED; /* training outputs */
    int x = n->in[0], y = n->out[0];
    const osp_value_t *X = &g->values[x];
    if (X->rank < 2)
        return OSP_EUNSUPPORTED;
    int64_t C = X->dims[1];
    for (int i = 1; i < 5; i++)
        if (n->in[i] < 0 || !osp_value_is_const(&g->values[n->in[i]]) ||
            osp_value_numel(&g->values[n->in[i]]) != (size_t)C)
            return OSP_EUNSUPPORTED;
    dnnl_memory_desc_t smd, cmd;
    int rc = osp__value_md(c, x, &smd);
    if (rc < 0)
        return rc;
    osp__md_plain(c, &cmd, 1, &C, dnnl_f32);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr;
    if ((rc = osp__attr_post(c, NULL, &attr, NULL, 0)) < 0)
        return rc;
    rc = osp__pd_done(dnnl_batch_normalization_forward_primitive_desc_create(
                          &pd, c->e->dnnl_eng, dnnl_forward_inference, smd,
                          smd, n->p.bn.epsilon,
                          dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift,
                          attr),
                      attr, &pd);
    if (rc < 0)
        return rc;
    /* ONNX order: X, scale, B, mean, var. */
    int kinds[6] = {DNNL_ARG_SRC,  DNNL_ARG_SCALE,    DNNL_ARG_SHIFT,
                    DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DST};
    int bufs[6];
    rc = osp__buf_as(c, x, &smd);
    for (int i = 1; i < 5 && rc >= 0; i++) {
        bufs[i - 1] = rc;
        rc = osp__const_as(c, n->in[i], &cmd, &cmd);
    }
    if (rc >= 0) {
        bufs[4] = rc;
        rc = osp__buf_new(c, &smd, y);
    }
    if (rc < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    bufs[5] = rc;
    return finish(c, ni, pd, 6, kinds, bufs, y, NULL);
}

/* ---- LRN --------------------------------------------------------------- */

int osp__dnnl_lrn(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    if (n->n_in != 1 || n->n_out != 1 || n->in[0] < 0 || n->out[0] < 0 ||
        n->n_post)
        return OSP_EUNSUPPORTED;
    int x = n->in[0], y = n->out[0];
    const osp_lrn_params_t *lp = &n->p.lrn;
    /* oneDNN's across-channel window is centred, which matches ONNX only
     * for odd sizes. */
    if (lp->size < 1 || lp->size % 2 == 0 || c->g->values[x].rank != 4)
        return OSP_EUNSUPPORTED;
    dnnl_memory_desc_t smd;
    int rc = osp__value_md(c, x, &smd);
    if (rc < 0)
        return rc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr;
    if ((rc = osp__attr_post(c, NULL, &attr, NULL, 0)) < 0)
        return rc;
    rc = osp__pd_done(dnnl_lrn_forward_primitive_desc_create(
                          &pd, c->e->dnnl_eng, dnnl_forward_inference,
                          dnnl_lrn_across_channels, smd, smd, lp->size,
                          lp->alpha, lp->beta, lp->bias, attr),
                      attr, &pd);
    if (rc < 0)
        return rc;
    int sb = osp__buf_as(c, x, &smd);
    int db = sb < 0 ? sb : osp__buf_new(c, &smd, y);
    if (db < 0) {
        dnnl_primitive_desc_destroy(pd);
        return db;
    }
    int kinds[2] = {DNNL_ARG_SRC, DNNL_ARG_DST}, bufs[2] = {sb, db};
    return finish(c, ni, pd, 2, kinds, bufs, y, NULL);
}
