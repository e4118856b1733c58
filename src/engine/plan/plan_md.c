/* plan_md.c — the oneDNN vocabulary the planner and the per-op translators
 * (dnnl/, int8/) share: dtype and memory-descriptor helpers, primitive
 * descriptors with user-managed scratchpads and fused post-ops, and the
 * resolution of conv/pool windows into oneDNN's padding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan/plan_int.h"
#include "engine/ops/ref.h"

/* ---- dtype and md helpers -------------------------------------------- */

dnnl_data_type_t osp__dnnl_dt(osp_dtype_t dt) {
    switch (dt) {
    case OSP_DT_F32: return dnnl_f32;
    case OSP_DT_BF16: return dnnl_bf16;
    case OSP_DT_F16: return dnnl_f16;
    case OSP_DT_U8: return dnnl_u8;
    case OSP_DT_S8: return dnnl_s8;
    case OSP_DT_S32: return dnnl_s32;
    default: return dnnl_data_type_undef;
    }
}

osp_dtype_t osp__osp_dt(dnnl_data_type_t dt) {
    switch (dt) {
    case dnnl_f32: return OSP_DT_F32;
    case dnnl_bf16: return OSP_DT_BF16;
    case dnnl_f16: return OSP_DT_F16;
    case dnnl_u8: return OSP_DT_U8;
    case dnnl_s8: return OSP_DT_S8;
    case dnnl_s32: return OSP_DT_S32;
    default: return OSP_DT_UNDEF;
    }
}

const char *osp__dnnl_status(dnnl_status_t s) {
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown oneDNN status";
    }
}

/* oneDNN 3's memory descriptors are handles. Every one the planner makes
 * is kept by the plan being compiled (osp__md_keep) and destroyed with it,
 * so that translators can pass them around and store them in buffers as
 * oneDNN 2's value descriptors were, with no ownership to track on each
 * error path. A plan makes a few per step; each is ~1 KB. */
dnnl_memory_desc_t osp__md_keep(osp__plan_ctx_t *c, dnnl_memory_desc_t md) {
    osp__plan_t *p = c->p;
    if (!md)
        return NULL;
    if (p->n_mds == p->cap_mds) {
        int cap = p->cap_mds ? 2 * p->cap_mds : 64;
        dnnl_memory_desc_t *m = realloc(p->mds, sizeof *m * (size_t)cap);
        if (!m) {
            dnnl_memory_desc_destroy(md);
            return NULL;
        }
        p->mds = m;
        p->cap_mds = cap;
    }
    p->mds[p->n_mds++] = md;
    return md;
}

void osp__md_release(osp__plan_t *p) {
    for (int i = 0; i < p->n_mds; i++)
        dnnl_memory_desc_destroy(p->mds[i]);
    free(p->mds);
    p->mds = NULL;
    p->n_mds = p->cap_mds = 0;
}

/* Creates and keeps an md with format tag `tag`, or with `strides` when
 * they are given. */
static bool md_make(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, int rank,
                    const int64_t *dims, dnnl_data_type_t dt,
                    dnnl_format_tag_t tag, const int64_t *strides) {
    dnnl_dims_t d, s;
    for (int i = 0; i < rank; i++)
        d[i] = dims[i], s[i] = strides ? strides[i] : 0;
    dnnl_memory_desc_t m = NULL;
    dnnl_status_t st =
        dt == dnnl_data_type_undef ? dnnl_invalid_arguments
        : strides ? dnnl_memory_desc_create_with_strides(&m, rank, d, dt, s)
                  : dnnl_memory_desc_create_with_tag(&m, rank, d, dt, tag);
    *md = osp__md_keep(c, st == dnnl_success ? m : NULL);
    return *md != NULL;
}

bool osp__md_strides(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, int rank,
                     const int64_t *dims, dnnl_data_type_t dt,
                     const int64_t *strides) {
    return md_make(c, md, rank, dims, dt, dnnl_format_tag_undef, strides);
}

bool osp__md_tag(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, int rank,
                 const int64_t *dims, dnnl_data_type_t dt,
                 dnnl_format_tag_t tag) {
    return md_make(c, md, rank, dims, dt, tag, NULL);
}

bool osp__md_plain(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, int rank,
                   const int64_t *dims, dnnl_data_type_t dt) {
    int64_t d[OSP_MAX_RANK + 1], s[OSP_MAX_RANK + 1];
    int r = rank > 0 ? rank : 1;
    if (rank > 0)
        for (int i = 0; i < rank; i++)
            d[i] = dims[i];
    else
        d[0] = 1;
    int64_t st = 1;
    for (int i = r - 1; i >= 0; i--) {
        s[i] = st;
        st *= d[i] > 0 ? d[i] : 1;
    }
    return osp__md_strides(c, md, r, d, dt, s);
}

void osp__md_any(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, int rank,
                 const int64_t *dims, dnnl_data_type_t dt) {
    osp__md_tag(c, md, rank, dims, dt, dnnl_format_tag_any);
}

dnnl_memory_desc_t osp__md_query(osp__plan_ctx_t *c, const_dnnl_primitive_desc_t pd,
                                 dnnl_query_t what) {
    const_dnnl_memory_desc_t q = dnnl_primitive_desc_query_md(pd, what, 0);
    dnnl_memory_desc_t m = NULL;
    if (!q || dnnl_memory_desc_clone(&m, q) != dnnl_success)
        return NULL;
    return osp__md_keep(c, m);
}

dnnl_data_type_t osp__md_dt(const_dnnl_memory_desc_t md) {
    dnnl_data_type_t dt = dnnl_data_type_undef;
    if (md)
        dnnl_memory_desc_query(md, dnnl_query_data_type, &dt);
    return dt;
}

int osp__md_ndims(const_dnnl_memory_desc_t md) {
    int nd = 0;
    if (md)
        dnnl_memory_desc_query(md, dnnl_query_ndims_s32, &nd);
    return nd;
}

const int64_t *osp__md_dims(const_dnnl_memory_desc_t md) {
    const dnnl_dims_t *d = NULL;
    if (md)
        dnnl_memory_desc_query(md, dnnl_query_dims, &d);
    return d ? *d : NULL;
}

/* oneDNN 3 has no setter for a descriptor's data type. A plain (strided)
 * layout is rebuilt from its strides; a blocked one is found among the
 * format tags (the first whose descriptor equals md's) and rebuilt with
 * that tag. Rare (mixed-dtype concats, QUANTIZE lookup tables), at build
 * time only. */
bool osp__md_retype(osp__plan_ctx_t *c, dnnl_memory_desc_t *out,
                    const_dnnl_memory_desc_t md, dnnl_data_type_t dt) {
    dnnl_data_type_t have = osp__md_dt(md);
    if (have == dt) {
        *out = (dnnl_memory_desc_t)md;
        return true;
    }
    int nd = osp__md_ndims(md), nblks = 0;
    dnnl_format_kind_t fk = dnnl_format_kind_undef;
    dnnl_memory_desc_query(md, dnnl_query_format_kind, &fk);
    dnnl_memory_desc_query(md, dnnl_query_inner_nblks_s32, &nblks);
    const int64_t *dims = osp__md_dims(md);
    if (fk != dnnl_blocked || !dims)
        return false;
    if (nblks == 0) {
        const dnnl_dims_t *st = NULL;
        dnnl_memory_desc_query(md, dnnl_query_strides, &st);
        return st && osp__md_strides(c, out, nd, dims, dt, *st);
    }
    dnnl_dims_t d;
    for (int i = 0; i < nd; i++)
        d[i] = dims[i];
    for (int t = dnnl_format_tag_any + 1; t < dnnl_format_tag_last; t++) {
        dnnl_memory_desc_t m = NULL;
        if (dnnl_memory_desc_create_with_tag(&m, nd, d, have,
                                             (dnnl_format_tag_t)t) != dnnl_success)
            continue;
        bool same = dnnl_memory_desc_equal(m, md);
        dnnl_memory_desc_destroy(m);
        if (same)
            return osp__md_tag(c, out, nd, dims, dt, (dnnl_format_tag_t)t);
    }
    return false;
}

dnnl_primitive_attr_t osp__attr_new(void) {
    dnnl_primitive_attr_t a = NULL;
    if (dnnl_primitive_attr_create(&a) != dnnl_success)
        return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user);
    return a;
}

int osp__pd_done(dnnl_status_t st, dnnl_primitive_attr_t attr,
                 dnnl_primitive_desc_t *pd) {
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
        return OSP_EUNSUPPORTED;
    }
    return 0;
}

int osp__pd_fast(dnnl_status_t st, dnnl_primitive_attr_t attr,
                 dnnl_primitive_desc_t *pd) {
    if (osp__pd_done(st, attr, pd) < 0)
        return OSP_EUNSUPPORTED;
    const char *impl = NULL;
    dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl);
    if (!impl || strstr(impl, "ref")) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
        return OSP_EUNSUPPORTED;
    }
    return 0;
}

/* ---- post-ops ---------------------------------------------------------- */

int osp__attr_post(osp__plan_ctx_t *c, const osp_node_t *n,
                   dnnl_primitive_attr_t *attr, char *note, size_t note_len) {
    *attr = osp__attr_new();
    if (!*attr)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: attributes");
    int rc = n ? osp__post_ops(c, n, *attr, note, note_len) : 0;
    if (rc < 0) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
    }
    return rc;
}

void osp__post_note(const osp_node_t *n, char *note, size_t note_len) {
    size_t used = strlen(note);
    for (int i = 0; i < n->n_post && used + 2 < note_len; i++) {
        const osp_post_op_t *q = &n->post[i];
        int w = snprintf(note + used, note_len - used, "%s+%s", used ? " " : "",
                         q->kind == OSP_POST_SUM ? "sum" : osp_act_name(q->act));
        if (w > 0)
            used += (size_t)w < note_len - used ? (size_t)w : note_len - used - 1;
    }
}

int osp__post_ops(osp__plan_ctx_t *c, const osp_node_t *n, dnnl_primitive_attr_t attr,
                  char *note, size_t note_len) {
    if (n->n_post == 0)
        return 0;
    dnnl_post_ops_t po = NULL;
    if (dnnl_post_ops_create(&po) != dnnl_success)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: post-ops");
    int rc = 0;
    for (int i = 0; i < n->n_post && rc == 0; i++) {
        const osp_post_op_t *q = &n->post[i];
        dnnl_status_t st = dnnl_success;
        if (q->kind == OSP_POST_SUM) {
            st = dnnl_post_ops_append_sum(po, 1.0f, 0, dnnl_data_type_undef);
        } else {
            switch (q->act) {
            case OSP_ACT_RELU:
                st = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_relu, 0.f, 0.f);
                break;
            case OSP_ACT_LEAKY_RELU:
                st = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_relu, q->alpha, 0.f);
                break;
            case OSP_ACT_CLIP:
                st = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_clip, q->alpha, q->beta);
                break;
            case OSP_ACT_SIGMOID:
                st = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_logistic, 0.f, 0.f);
                break;
            case OSP_ACT_HARD_SIGMOID:
                st = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_linear, q->alpha, q->beta);
                if (st == dnnl_success)
                    st = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_clip, 0.f, 1.f);
                break;
            case OSP_ACT_HARD_SWISH:
                /* v3's hardswish is x·min(max(αx+β, 0), 1): ONNX's α 1/6, β 1/2 */
                st = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_hardswish,
                                                  1.f / 6.f, 0.5f);
                break;
            default:
                rc = OSP_EUNSUPPORTED;
                break;
            }
        }
        if (rc == 0 && st != dnnl_success)
            rc = OSP_EUNSUPPORTED;
    }
    if (note)
        osp__post_note(n, note, note_len);
    if (rc == 0 && dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success)
        rc = OSP_EUNSUPPORTED;
    dnnl_post_ops_destroy(po);
    return rc;
}

/* ---- windows ----------------------------------------------------------- */

int osp__window_pads(osp__plan_ctx_t *c, const osp_node_t *n,
                     const osp_window_t *win, const int64_t *in_sp,
                     const int64_t *out_sp, const int64_t *kernel,
                     bool ceil_mode, int64_t *pl, int64_t *pr,
                     int64_t *given_pr) {
    osp_window_t w = *win;
    int64_t out[OSP_MAX_SPATIAL];
    int rc = osp_window_resolve(&w, in_sp, kernel, ceil_mode, out, c->err);
    if (rc < 0)
        return osp_err_prefix(c->err, "node %s", n->name);
    for (int i = 0; i < w.n_spatial; i++) {
        int64_t ext = (w.kernel[i] - 1) * w.dilation[i] + 1;
        pl[i] = w.pad_begin[i];
        given_pr[i] = w.pad_end[i];
        /* oneDNN wants out == (in + pl + pr - ext) / s + 1 exactly; ceil-mode
         * pools need a larger right pad, floor-mode windows may leave some
         * of the declared right pad unused. */
        pr[i] = (out_sp[i] - 1) * w.stride[i] + ext - in_sp[i] - pl[i];
    }
    return 0;
}

/* A convolution's geometry as oneDNN takes it: strides, dilations counted
 * from 0, left/right pads, and the weights' dims ([G, O/G, I/G, k...] when
 * grouped). One place for the fp32/bf16, int8 and fp32-carrier convs. */
int osp__conv_geom(osp__plan_ctx_t *c, const osp_node_t *n, const osp_value_t *X,
                   const osp_value_t *W, const osp_value_t *Y, int64_t G,
                   osp__plan_conv_geom_t *cg) {
    int r = X->rank, nsp = r - 2;
    int64_t kern[OSP_MAX_SPATIAL] = {0}, lpl[OSP_MAX_SPATIAL],
        lpr[OSP_MAX_SPATIAL], gpr[OSP_MAX_SPATIAL];
    for (int i = 0; i < nsp; i++)
        kern[i] = W->dims[2 + i];
    int rc = osp__window_pads(c, n, &n->p.conv.win, X->dims + 2, Y->dims + 2,
                              kern, false, lpl, lpr, gpr);
    if (rc < 0)
        return rc;
    for (int i = 0; i < nsp; i++) {
        int64_t s = n->p.conv.win.stride[i], d = n->p.conv.win.dilation[i];
        cg->strides[i] = s > 0 ? s : 1;
        cg->dil[i] = (d > 0 ? d : 1) - 1;
        cg->pl[i] = lpl[i];
        cg->pr[i] = lpr[i];
    }
    if (G > 1) {
        cg->wd[0] = G;
        cg->wd[1] = W->dims[0] / G;
        for (int i = 1; i < r; i++)
            cg->wd[i + 1] = W->dims[i];
        cg->wr = r + 1;
    } else {
        memcpy(cg->wd, W->dims, sizeof(int64_t) * (size_t)r);
        cg->wr = r;
    }
    return 0;
}
