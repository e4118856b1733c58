/* dnnl_conv.c — CONV nodes as oneDNN convolutions.
 *
 * Source, weights and destination are created with format_tag_any so oneDNN
 * picks its fastest (blocked) layouts; the weights are reordered once at plan
 * build, the source is reordered only if its producer wrote another layout,
 * and the destination stays blocked for the next primitive. Fused post-ops
 * (activations, residual SUM) ride along as oneDNN post-ops. In bf16 mode
 * source, weights and destination are bf16, the bias stays f32. */
#include <string.h>

#include "engine/plan/plan_int.h"

/* Number of post-op SUM operands appended as trailing inputs. */
static int n_sum_inputs(const osp_node_t *n) {
    int k = 0;
    for (int i = 0; i < n->n_post; i++)
        k += n->post[i].kind == OSP_POST_SUM;
    return k;
}

/* Can the conv write into the SUM operand's buffer (it dies here)? */
static int sum_inplace_buf(osp__plan_ctx_t *c, int s, const dnnl_memory_desc_t *dst) {
    osp__plan_t *p = c->p;
    if (osp_value_is_const(&c->g->values[s]) || c->g->values[s].is_output)
        return -1;
    int b = p->vbuf[s];
    if (b < 0 || p->uses_left[s] != 1)
        return -1;
    const osp__plan_buf_t *pb = &p->bufs[b];
    if (pb->owner != s || pb->def < 0 || pb->is_const || !pb->has_md ||
        !dnnl_memory_desc_equal(pb->md, *dst))
        return -1;
    /* s may live in a view: an earlier in-place SUM that changed the
     * type (osp__sum_dst). Its bytes are s's alone when the value the
     * underlying buffer was made for is dead too. */
    int root = pb->alias_of >= 0 ? pb->alias_of : b;
    const osp__plan_buf_t *rb = &p->bufs[root];
    if (root != b && (rb->is_const || rb->def < 0 || rb->owner < 0 ||
                      (rb->owner != s && p->uses_left[rb->owner] != 0)))
        return -1;
    /* Another view may still read these bytes later. */
    for (int i = 0; i < p->n_bufs; i++)
        if (i != b && p->bufs[i].alias_of == root)
            return -1;
    return b;
}

int osp__sum_dst(osp__plan_ctx_t *c, int ni, int sum, const dnnl_memory_desc_t *dmd,
                 int y, char *note, size_t note_len) {
    /* oneDNN's SUM reads the destination's bytes as the summand's data
     * type, which may differ from the destination's (an s8 residual under
     * a u8 ReLU output, pass_quantize.c): the summand sits in the
     * destination's layout and its own type, and the destination is a
     * view of those bytes. */
    dnnl_memory_desc_t smd = *dmd;
    dnnl_data_type_t sdt = osp__dnnl_dt(c->g->values[sum].dtype),
                     ddt = osp__md_dt(*dmd);
    /* (float values keep f32 in the graph whatever their buffers hold) */
    bool retyped = sdt != ddt && (sdt == dnnl_u8 || sdt == dnnl_s8) &&
                   (ddt == dnnl_u8 || ddt == dnnl_s8);
    if (retyped && !osp__md_retype(c, &smd, *dmd, sdt))
        return osp_err_set(c->err, OSP_EINTERNAL, "node %s: residual of type %s",
                           c->g->nodes[ni].name,
                           osp_dtype_name(c->g->values[sum].dtype));
    int db = sum_inplace_buf(c, sum, &smd);
    if (db >= 0) {
        strncat(note, " (in place)", note_len - strlen(note) - 1);
        return retyped ? osp__buf_view(c, db, y, dmd) : db;
    }
    /* Copy the residual into a fresh destination first. */
    int src = osp__buf_as(c, sum, &smd);
    if (src < 0)
        return src;
    db = osp__buf_new(c, &smd, y);
    if (db < 0)
        return db;
    dnnl_primitive_desc_t rpd = NULL;
    if (dnnl_reorder_primitive_desc_create(&rpd, smd, c->e->dnnl_eng, smd,
                                           c->e->dnnl_eng, NULL) != dnnl_success)
        return osp_err_set(c->err, OSP_EINTERNAL, "node %s: residual copy",
                           c->g->nodes[ni].name);
    int rk[2] = {DNNL_ARG_FROM, DNNL_ARG_TO}, rb[2] = {src, db};
    int rc = osp__step_dnnl(c, -1, rpd, 2, rk, rb, "residual copy");
    if (rc < 0)
        return rc;
    return retyped ? osp__buf_view(c, db, y, dmd) : db;
}

static int conv_try(osp__plan_ctx_t *c, int ni, dnnl_data_type_t dt, bool blocked) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    int n_sum = n_sum_inputs(n);
    if (n_sum > 1 || n->n_out != 1)
        return OSP_EUNSUPPORTED;
    int n_real = n->n_in - n_sum;
    int x = n->in[0], w = n_real > 1 ? n->in[1] : -1;
    int bias = n_real > 2 ? n->in[2] : -1;
    int sum = n_sum ? n->in[n->n_in - 1] : -1;
    int y = n->out[0];
    if (x < 0 || w < 0 || y < 0 || !osp_value_is_const(&g->values[w]) ||
        (bias >= 0 && !osp_value_is_const(&g->values[bias])))
        return OSP_EUNSUPPORTED;
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    int r = X->rank, nsp = r - 2;
    if (r < 3 || r > 5 || W->rank != r || Y->rank != r ||
        n->p.conv.win.n_spatial != nsp)
        return OSP_EUNSUPPORTED;
    int64_t G = n->p.conv.group > 0 ? n->p.conv.group : 1;
    int64_t O = W->dims[0], IG = W->dims[1];
    if (O % G || IG * G != X->dims[1] || Y->dims[1] != O)
        return OSP_EUNSUPPORTED;

    osp__plan_conv_geom_t cg;
    int rc0 = osp__conv_geom(c, n, X, W, Y, G, &cg);
    if (rc0 < 0)
        return rc0;
    /* Weights as oneDNN sees them: [G, O/G, I/G, k...] when grouped. */
    dnnl_memory_desc_t src_any, w_any, dst_any, b_md, w_plain;
    osp__md_any(c, &src_any, r, X->dims, dt);
    osp__md_any(c, &w_any, cg.wr, cg.wd, dt);
    osp__md_any(c, &dst_any, r, Y->dims, dt);
    if (blocked) {
        /* Channel-blocked activations (nChw16c): oneDNN's jit 1x1 kernels
         * beat brgconv on NHWC here; see docs/engine.md. */
        static const dnnl_format_tag_t blk[] = {dnnl_aBc16b, dnnl_aBcd16b,
                                                dnnl_aBcde16b};
        if (X->dims[1] % 16 == 0)
            osp__md_tag(c, &src_any, r, X->dims, dt, blk[r - 3]);
        if (O % 16 == 0)
            osp__md_tag(c, &dst_any, r, Y->dims, dt, blk[r - 3]);
    }
    osp__md_plain(c, &w_plain, cg.wr, cg.wd, dnnl_f32);
    int64_t od[1] = {O};
    osp__md_plain(c, &b_md, 1, od, dnnl_f32);
    if (bias >= 0 && osp_value_numel(&g->values[bias]) != (size_t)O)
        return OSP_EUNSUPPORTED;

    char note[96] = "";
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr;
    int rc = osp__attr_post(c, n, &attr, note, sizeof note);
    if (rc < 0)
        return rc;
    rc = osp__pd_done(dnnl_convolution_forward_primitive_desc_create(
                          &pd, c->e->dnnl_eng, dnnl_forward_inference,
                          dnnl_convolution_direct,
                          src_any, w_any, bias >= 0 ? b_md : NULL, dst_any,
                          cg.strides, cg.dil, cg.pl, cg.pr, attr),
                      attr, &pd);
    if (rc < 0)
        return rc;

    /* From here on the node is committed to oneDNN. */
    dnnl_memory_desc_t smd = osp__md_query(c, pd, dnnl_query_src_md);
    dnnl_memory_desc_t wmd = osp__md_query(c, pd, dnnl_query_weights_md);
    dnnl_memory_desc_t dmd = osp__md_query(c, pd, dnnl_query_dst_md);
    int kinds[5], bufs[5], na = 0;
    int sb = osp__buf_as(c, x, &smd);
    if (sb < 0)
        goto fail_sb;
    kinds[na] = DNNL_ARG_SRC, bufs[na++] = sb;
    /* buf_as would read the weights as 4-D; give the grouped view. */
    int wb = osp__const_as(c, w, &w_plain, &wmd);
    if (wb < 0) {
        sb = wb;
        goto fail_sb;
    }
    kinds[na] = DNNL_ARG_WEIGHTS, bufs[na++] = wb;
    if (bias >= 0) {
        int bb = osp__buf_as(c, bias, &b_md);
        if (bb < 0) {
            sb = bb;
            goto fail_sb;
        }
        kinds[na] = DNNL_ARG_BIAS, bufs[na++] = bb;
    }
    int db = sum >= 0 ? osp__sum_dst(c, ni, sum, &dmd, y, note, sizeof note)
                      : osp__buf_new(c, &dmd, y);
    if (db < 0) {
        sb = db;
        goto fail_sb;
    }
    kinds[na] = DNNL_ARG_DST, bufs[na++] = db;
    rc = osp__step_dnnl(c, ni, pd, na, kinds, bufs, note);
    if (rc < 0)
        return rc;
    osp__bind_value(c, y, db);
    return 0;
fail_sb:
    dnnl_primitive_desc_destroy(pd);
    return sb;
}

/* fp32 3x3 stride-1 convolutions may run as osprey's own Winograd
 * F(4x4, 3x3) (f32/f32_wino.c) when the engine's measured choice says so
 * (tune.c): oneDNN 3 has no Winograd convolution on x64. */
static bool winograd_eligible(const osp__plan_ctx_t *c, const osp_node_t *n) {
    const osp_graph_t *g = c->g;
    if (!c->e->conv_winograd || n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0)
        return false;
    const osp_value_t *X = &g->values[n->in[0]], *W = &g->values[n->in[1]];
    const osp_window_t *w = &n->p.conv.win;
    if (X->rank != 4 || W->rank != 4 || n->p.conv.group > 1 ||
        W->dims[2] != 3 || W->dims[3] != 3)
        return false;
    for (int i = 0; i < 2; i++)
        if (w->stride[i] > 1 || w->dilation[i] > 1)
            return false;
    return true;
}

int osp__dnnl_conv(osp__plan_ctx_t *c, int ni) {
    /* Preferred dtype and layout first; then oneDNN's own layout choice;
     * then fp32 (a bf16 conv oneDNN cannot do on this CPU). */
    bool blk = c->e->conv_blocked;
    int rc = OSP_EUNSUPPORTED;
    if (c->act_dt == dnnl_f32 && winograd_eligible(c, &c->g->nodes[ni]))
        rc = osp__f32_wino_conv(c, ni);
    if (rc == OSP_EUNSUPPORTED)
        rc = conv_try(c, ni, c->act_dt, blk);
    if (rc == OSP_EUNSUPPORTED && blk)
        rc = conv_try(c, ni, c->act_dt, false);
    if (rc == OSP_EUNSUPPORTED && c->act_dt != dnnl_f32) {
        rc = conv_try(c, ni, dnnl_f32, blk);
        if (rc == OSP_EUNSUPPORTED && blk)
            rc = conv_try(c, ni, dnnl_f32, false);
    }
    return rc;
}
