/* plan.c — specialises the loaded graph for concrete input shapes and
 * compiles it into steps over one activation arena; runs compiled plans.
 *
 * Build order (docs/engine.md has the why): clone the load-time graph
 * (weights shared), set the input dims, infer shapes, fold constants, run
 * the plan-time passes, then walk the nodes in topological order giving each
 * one a oneDNN primitive (dnnl_*.c) or, when oneDNN cannot express it, a
 * reference-kernel step. Layouts follow the producers: a convolution writes
 * oneDNN's preferred blocked layout and the next primitive reads it as is;
 * reorder steps are inserted only where a consumer needs another layout or
 * dtype (reference kernels and graph outputs want plain row-major data).
 * Finally buffer lifetimes go to memplan.c, which packs them into one arena,
 * and every oneDNN memory object is created up front, so a run allocates
 * nothing. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/ops/kernels.h"
#include "engine/plan/memplan.h"
#include "engine/passes/passes.h"
#include "engine/plan/plan_int.h"
#include "engine/int8/q8_int.h"
#include "engine/ops/ref.h"

/* Constant folding refuses to materialise outputs larger than this: a fold
 * that big would be an Expand/Tile of activations-sized data. */
#define OSP_FOLD_MAX_BYTES (64u << 20)
#define OSP_ALIGN_BYTES 64 /* cache line / AVX-512 vector */

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
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown oneDNN status";
    }
}

bool osp__md_plain(dnnl_memory_desc_t *md, int rank, const int64_t *dims,
                   dnnl_data_type_t dt) {
    if (dt == dnnl_data_type_undef)
        return false;
    dnnl_dims_t d, s;
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
    return dnnl_memory_desc_init_by_strides(md, r, d, dt, s) == dnnl_success;
}

void osp__md_any(dnnl_memory_desc_t *md, int rank, const int64_t *dims,
                 dnnl_data_type_t dt) {
    dnnl_dims_t d;
    for (int i = 0; i < rank; i++)
        d[i] = dims[i];
    dnnl_memory_desc_init_by_tag(md, rank, d, dt, dnnl_format_tag_any);
}

dnnl_primitive_attr_t osp__attr_new(void) {
    dnnl_primitive_attr_t a = NULL;
    if (dnnl_primitive_attr_create(&a) != dnnl_success)
        return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user);
    return a;
}

int osp__pd_create_fast(osp__plan_ctx_t *c, const void *desc,
                        dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd) {
    *pd = NULL;
    dnnl_status_t st =
        dnnl_primitive_desc_create(pd, desc, attr, c->e->dnnl_eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    const char *impl = NULL;
    if (st == dnnl_success)
        dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl);
    if (st != dnnl_success || !impl || strstr(impl, "ref")) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
        return OSP_EUNSUPPORTED;
    }
    return 0;
}

/* ---- buffers ----------------------------------------------------------- */

static int buf_add(osp__plan_ctx_t *c) {
    osp__plan_t *p = c->p;
    osp__plan_buf_t *grown_ =
        osp_grow(p->bufs, &p->cap_bufs, p->n_bufs, sizeof *grown_, 128);
    if (!grown_)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    p->bufs = grown_;
    osp__plan_buf_t *b = &p->bufs[p->n_bufs];
    memset(b, 0, sizeof *b);
    b->def = INT_MAX;
    b->last = -1;
    b->alias_of = -1;
    b->owner = -1;
    return p->n_bufs++;
}

/* Fills the logical shape of a buffer from an md (or from explicit dims). */
static void buf_shape(osp__plan_buf_t *b, int rank, const int64_t *dims) {
    b->rank = rank;
    for (int i = 0; i < rank; i++)
        b->dims[i] = dims[i];
}

int osp__buf_new(osp__plan_ctx_t *c, const dnnl_memory_desc_t *md, int v) {
    int id = buf_add(c);
    if (id < 0)
        return id;
    osp__plan_buf_t *b = &c->p->bufs[id];
    b->has_md = true;
    b->md = *md;
    b->dtype = osp__osp_dt(md->data_type);
    b->bytes = dnnl_memory_desc_get_size(md);
    buf_shape(b, md->ndims, md->dims);
    b->owner = v;
    return id;
}

/* A plain buffer for value v in its IR dtype (reference-kernel outputs). */
static int buf_new_plain(osp__plan_ctx_t *c, int v) {
    const osp_value_t *val = &c->g->values[v];
    dnnl_memory_desc_t md;
    int id;
    if (osp__md_plain(&md, val->rank, val->dims, osp__dnnl_dt(val->dtype))) {
        id = osp__buf_new(c, &md, v);
        if (id < 0)
            return id;
    } else {
        id = buf_add(c);
        if (id < 0)
            return id;
        c->p->bufs[id].dtype = val->dtype;
        c->p->bufs[id].bytes = osp_value_numel(val) * osp_dtype_size(val->dtype);
        c->p->bufs[id].owner = v;
    }
    buf_shape(&c->p->bufs[id], val->rank, val->dims);
    return id;
}

void osp__bind_value(osp__plan_ctx_t *c, int v, int b) {
    c->p->vbuf[v] = b;
    c->p->bufs[b].owner = v;
}

static int conv_find(osp__plan_ctx_t *c, int v, const dnnl_memory_desc_t *md) {
    for (int i = 0; i < c->p->n_conv; i++) {
        const osp__plan_conv_cache_t *cc = &c->p->conv[i];
        if (cc->value == v && c->p->bufs[cc->buf].has_md &&
            dnnl_memory_desc_equal(&c->p->bufs[cc->buf].md, md))
            return cc->buf;
    }
    return -1;
}

static int conv_add(osp__plan_ctx_t *c, int v, int b) {
    osp__plan_t *p = c->p;
    if (p->n_conv == p->cap_conv) {
        int cap = p->cap_conv ? p->cap_conv * 2 : 32;
        osp__plan_conv_cache_t *n = realloc(p->conv, (size_t)cap * sizeof *n);
        if (!n)
            return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
        p->conv = n;
        p->cap_conv = cap;
    }
    p->conv[p->n_conv++] = (osp__plan_conv_cache_t){v, b};
    return 0;
}

/* ---- constants --------------------------------------------------------- */

static int const_buf(osp__plan_ctx_t *c, const void *data, const dnnl_memory_desc_t *md,
                     const osp_value_t *val) {
    int id = buf_add(c);
    if (id < 0)
        return id;
    osp__plan_buf_t *b = &c->p->bufs[id];
    b->is_const = true;
    b->cdata = data;
    if (md) {
        b->has_md = true;
        b->md = *md;
        b->dtype = osp__osp_dt(md->data_type);
        b->bytes = dnnl_memory_desc_get_size(md);
    } else {
        b->dtype = val->dtype;
        b->bytes = val->data_bytes;
    }
    buf_shape(b, val->rank, val->dims);
    return id;
}

/* Reorders constant data (layout src_md) into layout md once, sharing the
 * result through the engine's weight cache. */
static int const_reorder(osp__plan_ctx_t *c, const void *data,
                         const dnnl_memory_desc_t *src_md,
                         const dnnl_memory_desc_t *md, void **out) {
    /* Lane engines (lanes.c) share their owner's cache. */
    osp_engine_t *e = c->e->wowner ? c->e->wowner : c->e;
    for (int i = 0; i < e->n_wcache; i++)
        if (e->wcache[i].src == data &&
            dnnl_memory_desc_equal(&e->wcache[i].md, md)) {
            *out = e->wcache[i].data;
            return 0;
        }
    osp__wcache_entry_t *grown_ =
        osp_grow(e->wcache, &e->cap_wcache, e->n_wcache, sizeof *grown_, 64);
    if (!grown_)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    e->wcache = grown_;
    size_t bytes = dnnl_memory_desc_get_size(md);
    size_t alloc = (bytes + OSP_ALIGN_BYTES) / OSP_ALIGN_BYTES * OSP_ALIGN_BYTES;
    void *dst = aligned_alloc(OSP_ALIGN_BYTES, alloc);
    if (!dst)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory for weights");
    /* Blocked layouts pad channels; the padding must be zero. */
    memset(dst, 0, bytes);
    dnnl_memory_t ms = NULL, md_ = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_status_t st = dnnl_memory_create(&ms, src_md, e->dnnl_eng, (void *)data);
    if (st == dnnl_success)
        st = dnnl_memory_create(&md_, md, e->dnnl_eng, dst);
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(&pd, src_md, e->dnnl_eng, md,
                                                e->dnnl_eng, NULL);
    if (st == dnnl_success)
        st = dnnl_primitive_create(&prim, pd);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md_}};
        st = dnnl_primitive_execute(prim, e->stream, 2, args);
        if (st == dnnl_success)
            st = dnnl_stream_wait(e->stream);
    }
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(ms);
    dnnl_memory_destroy(md_);
    if (st != dnnl_success) {
        free(dst);
        return osp_err_set(c->err, OSP_EINTERNAL,
                           "plan: reordering constant weights: %s",
                           osp__dnnl_status(st));
    }
    e->wcache[e->n_wcache++] = (osp__wcache_entry_t){data, *md, dst, bytes};
    *out = dst;
    return 0;
}

/* Buffer holding constant v in layout md; src_md (NULL = plain in the IR
 * dtype) says how the constant's bytes are to be read, e.g. grouped conv
 * weights viewed as 5-D. */
int osp__const_as(osp__plan_ctx_t *c, int v, const dnnl_memory_desc_t *src_md,
                  const dnnl_memory_desc_t *md) {
    const osp_value_t *val = &c->g->values[v];
    dnnl_memory_desc_t plain;
    if (!src_md) {
        if (!osp__md_plain(&plain, val->rank, val->dims,
                           osp__dnnl_dt(val->dtype)))
            return osp_err_set(c->err, OSP_EUNSUPPORTED,
                               "constant %s: dtype %s unsupported by oneDNN",
                               val->name, osp_dtype_name(val->dtype));
        src_md = &plain;
    }
    if (dnnl_memory_desc_get_size(src_md) > val->data_bytes)
        return osp_err_set(c->err, OSP_EFORMAT,
                           "constant %s: %zu bytes of data, layout needs %zu",
                           val->name, val->data_bytes,
                           dnnl_memory_desc_get_size(src_md));
    const void *data = val->data;
    if (!dnnl_memory_desc_equal(src_md, md)) {
        void *r = NULL;
        int rc = const_reorder(c, val->data, src_md, md, &r);
        if (rc < 0)
            return rc;
        data = r;
    }
    return const_buf(c, data, md, val);
}

int osp__const_raw(osp__plan_ctx_t *c, void *data, const dnnl_memory_desc_t *md) {
    osp_engine_t *e = c->e;
    osp__wcache_entry_t *grown_ =
        osp_grow(e->wcache, &e->cap_wcache, e->n_wcache, sizeof *grown_, 64);
    if (!grown_) {
        free(data);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }
    e->wcache = grown_;
    size_t bytes = dnnl_memory_desc_get_size(md);
    e->wcache[e->n_wcache++] = (osp__wcache_entry_t){data, *md, data, bytes};
    int id = buf_add(c);
    if (id < 0)
        return id;
    osp__plan_buf_t *b = &c->p->bufs[id];
    b->is_const = true;
    b->cdata = data;
    b->has_md = true;
    b->md = *md;
    b->dtype = osp__osp_dt(md->data_type);
    b->bytes = bytes;
    buf_shape(b, md->ndims, md->dims);
    return id;
}

/* ---- value access -------------------------------------------------------- */

int osp__value_md(osp__plan_ctx_t *c, int v, dnnl_memory_desc_t *md) {
    const osp_value_t *val = &c->g->values[v];
    if (osp_value_is_const(val) || c->p->vbuf[v] < 0) {
        if (!osp_value_is_const(val))
            return osp_err_set(c->err, OSP_EINTERNAL,
                               "plan: value %s used before it is produced",
                               val->name);
        if (!osp__md_plain(md, val->rank, val->dims, osp__dnnl_dt(val->dtype)))
            return OSP_EUNSUPPORTED;
        return 0;
    }
    const osp__plan_buf_t *b = &c->p->bufs[c->p->vbuf[v]];
    if (!b->has_md)
        return OSP_EUNSUPPORTED;
    *md = b->md;
    return 0;
}

static int step_add(osp__plan_ctx_t *c, osp__plan_step_kind_t kind, int node) {
    osp__plan_t *p = c->p;
    osp__plan_step_t *grown_ =
        osp_grow(p->steps, &p->cap_steps, p->n_steps, sizeof *grown_, 128);
    if (!grown_)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    p->steps = grown_;
    osp__plan_step_t *s = &p->steps[p->n_steps];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->node = node;
    return p->n_steps++;
}

static void buf_read(osp__plan_t *p, int b, int step) {
    if (b >= 0 && p->bufs[b].last < step)
        p->bufs[b].last = step;
}

static void buf_write(osp__plan_t *p, int b, int step) {
    if (p->bufs[b].def > step)
        p->bufs[b].def = step;
    buf_read(p, b, step);
}

int osp__step_dnnl(osp__plan_ctx_t *c, int node, dnnl_primitive_desc_t pd,
                   int n_args, const int *arg_kind, const int *arg_buf,
                   const char *note) {
    OSP_ASSERT(n_args <= OSP_STEP_MAX_ARGS);
    dnnl_primitive_t prim = NULL;
    dnnl_status_t st = dnnl_primitive_create(&prim, pd);
    if (st != dnnl_success) {
        dnnl_primitive_desc_destroy(pd);
        return osp_err_set(c->err, OSP_EINTERNAL,
                           "node %s: creating oneDNN primitive: %s",
                           node >= 0 ? c->g->nodes[node].name : "reorder",
                           osp__dnnl_status(st));
    }
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    const dnnl_memory_desc_t *smd =
        dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    int si = step_add(c, OSP_STEP_DNNL, node);
    if (si < 0) {
        dnnl_primitive_destroy(prim);
        dnnl_primitive_desc_destroy(pd);
        return si;
    }
    osp__plan_step_t *s = &c->p->steps[si];
    s->prim = prim;
    snprintf(s->impl, sizeof s->impl, "%s", impl ? impl : "?");
    if (note)
        snprintf(s->note, sizeof s->note, "%s", note);
    if (sbytes) {
        /* The scratchpad md is kept in the memory object created at
         * finalize; stash it on the step through a tiny memory now. */
        dnnl_memory_create(&s->scratch_mem, smd, c->e->dnnl_eng,
                           DNNL_MEMORY_NONE);
        if (sbytes > c->p->scratch_bytes)
            c->p->scratch_bytes = sbytes;
    }
    dnnl_primitive_desc_destroy(pd);
    s->n_args = n_args;
    for (int i = 0; i < n_args; i++) {
        s->arg_kind[i] = arg_kind[i];
        s->arg_buf[i] = arg_buf[i];
        if (arg_kind[i] == DNNL_ARG_DST)
            buf_write(c->p, arg_buf[i], si);
        else
            buf_read(c->p, arg_buf[i], si);
    }
    return si;
}

/* Appends a reorder step copying buffer src into buffer dst (layouts and
 * dtypes may differ). */
int osp__step_reorder(osp__plan_ctx_t *c, int src, int dst, const char *note) {
    dnnl_primitive_desc_t pd = NULL;
    const osp__plan_buf_t *bs = &c->p->bufs[src], *bd = &c->p->bufs[dst];
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(
        &pd, &bs->md, c->e->dnnl_eng, &bd->md, c->e->dnnl_eng, NULL);
    if (st != dnnl_success)
        return osp_err_set(c->err, OSP_EINTERNAL, "plan: reorder: %s",
                           osp__dnnl_status(st));
    int kinds[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    int bufs[2] = {src, dst};
    /* DNNL_ARG_TO == DNNL_ARG_DST, so the generic path marks it written. */
    return osp__step_dnnl(c, -1, pd, 2, kinds, bufs, note);
}

int osp__buf_as(osp__plan_ctx_t *c, int v, const dnnl_memory_desc_t *md) {
    const osp_value_t *val = &c->g->values[v];
    if (osp_value_is_const(val))
        return osp__const_as(c, v, NULL, md);
    int b = c->p->vbuf[v];
    if (b < 0)
        return osp_err_set(c->err, OSP_EINTERNAL,
                           "plan: value %s used before it is produced",
                           val->name);
    if (!c->p->bufs[b].has_md)
        return osp_err_set(c->err, OSP_EUNSUPPORTED,
                           "value %s: dtype %s has no oneDNN layout", val->name,
                           osp_dtype_name(val->dtype));
    if (dnnl_memory_desc_equal(&c->p->bufs[b].md, md))
        return b;
    int nb = conv_find(c, v, md);
    if (nb >= 0)
        return nb;
    nb = osp__buf_new(c, md, -1);
    if (nb < 0)
        return nb;
    char note[96];
    snprintf(note, sizeof note, "%s", val->name);
    int rc = osp__step_reorder(c, b, nb, note);
    if (rc < 0)
        return rc;
    rc = conv_add(c, v, nb);
    return rc < 0 ? rc : nb;
}

/* Plain row-major buffer of value v in its IR dtype (what reference kernels,
 * views and graph outputs read). */
int osp__buf_plain(osp__plan_ctx_t *c, int v) {
    const osp_value_t *val = &c->g->values[v];
    if (osp_value_is_const(val)) {
        if (c->p->vbuf[v] >= 0)
            return c->p->vbuf[v];
        int b = const_buf(c, val->data, NULL, val);
        if (b >= 0) {
            dnnl_memory_desc_t md;
            if (osp__md_plain(&md, val->rank, val->dims,
                              osp__dnnl_dt(val->dtype))) {
                c->p->bufs[b].has_md = true;
                c->p->bufs[b].md = md;
            }
            c->p->vbuf[v] = b;
        }
        return b;
    }
    int b = c->p->vbuf[v];
    if (b < 0)
        return osp_err_set(c->err, OSP_EINTERNAL,
                           "plan: value %s used before it is produced",
                           val->name);
    if (!c->p->bufs[b].has_md)
        return b; /* s64/bool: only reference kernels produce these */
    dnnl_memory_desc_t md;
    if (!osp__md_plain(&md, val->rank, val->dims, osp__dnnl_dt(val->dtype)))
        return osp_err_set(c->err, OSP_EINTERNAL, "plan: value %s: bad md",
                           val->name);
    return osp__buf_as(c, v, &md);
}

/* A view: buffer b's bytes seen with another shape (plain data only). */
int osp__buf_view(osp__plan_ctx_t *c, int b, int v, const dnnl_memory_desc_t *md) {
    int root = c->p->bufs[b].alias_of >= 0 ? c->p->bufs[b].alias_of : b;
    int id = md ? osp__buf_new(c, md, -1) : buf_new_plain(c, v);
    if (id < 0)
        return id;
    osp__plan_buf_t *nb = &c->p->bufs[id], *rb = &c->p->bufs[root];
    if (nb->bytes > rb->bytes)
        return osp_err_set(c->err, OSP_EINTERNAL,
                           "plan: view of %s grows the buffer",
                           v >= 0 ? c->g->values[v].name : "?");
    nb->alias_of = root;
    nb->is_const = rb->is_const;
    nb->cdata = rb->cdata;
    return id;
}

/* ---- post-ops ---------------------------------------------------------- */

int osp__pd_create(osp__plan_ctx_t *c, const osp_node_t *n, const void *desc,
                   dnnl_primitive_desc_t *pd, char *note, size_t note_len) {
    dnnl_primitive_attr_t attr = osp__attr_new();
    if (!attr)
        return OSP_ENOMEM;
    int rc = n ? osp__post_ops(c, n, attr, note, note_len) : 0;
    if (rc == 0 && dnnl_primitive_desc_create(pd, desc, attr, c->e->dnnl_eng,
                                              NULL) != dnnl_success)
        rc = OSP_EUNSUPPORTED;
    dnnl_primitive_attr_destroy(attr);
    return rc;
}

int osp__post_ops(osp__plan_ctx_t *c, const osp_node_t *n, dnnl_primitive_attr_t attr,
                  char *note, size_t note_len) {
    if (n->n_post == 0)
        return 0;
    dnnl_post_ops_t po = NULL;
    if (dnnl_post_ops_create(&po) != dnnl_success)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: post-ops");
    int rc = 0;
    size_t used = note ? strlen(note) : 0;
    for (int i = 0; i < n->n_post && rc == 0; i++) {
        const osp_post_op_t *q = &n->post[i];
        dnnl_status_t st = dnnl_success;
        if (q->kind == OSP_POST_SUM) {
            st = dnnl_post_ops_append_sum(po, 1.0f);
        } else {
            switch (q->act) {
            case OSP_ACT_RELU:
                st = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, 0.f, 0.f);
                break;
            case OSP_ACT_LEAKY_RELU:
                st = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, q->alpha, 0.f);
                break;
            case OSP_ACT_CLIP:
                st = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_clip, q->alpha, q->beta);
                break;
            case OSP_ACT_SIGMOID:
                st = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_logistic, 0.f, 0.f);
                break;
            case OSP_ACT_HARD_SIGMOID:
                st = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_linear, q->alpha, q->beta);
                if (st == dnnl_success)
                    st = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_clip, 0.f, 1.f);
                break;
            case OSP_ACT_HARD_SWISH:
                st = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_hardswish, 0.f, 0.f);
                break;
            default:
                rc = OSP_EUNSUPPORTED;
                break;
            }
        }
        if (rc == 0 && st != dnnl_success)
            rc = OSP_EUNSUPPORTED;
        if (note && used + 2 < note_len) {
            int w = snprintf(note + used, note_len - used, "%s+%s",
                             used ? " " : "",
                             q->kind == OSP_POST_SUM ? "sum" : osp_act_name(q->act));
            if (w > 0)
                used += (size_t)w < note_len - used ? (size_t)w : note_len - used - 1;
        }
    }
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

/* ---- compile --------------------------------------------------------- */

static bool node_is_float(const osp_graph_t *g, const osp_node_t *n) {
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] >= 0 && g->values[n->in[i]].dtype != OSP_DT_F32)
            return false;
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i] >= 0 && g->values[n->out[i]].dtype != OSP_DT_F32)
            return false;
    return true;
}

static int compile_ref(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    int *ib = calloc((size_t)(n->n_in ? n->n_in : 1), sizeof(int));
    int *ob = calloc((size_t)(n->n_out ? n->n_out : 1), sizeof(int));
    osp_tensor_t *ti = calloc((size_t)(n->n_in ? n->n_in : 1), sizeof *ti);
    osp_tensor_t *to = calloc((size_t)(n->n_out ? n->n_out : 1), sizeof *to);
    int rc = OSP_ENOMEM;
    if (!ib || !ob || !ti || !to) {
        osp_err_set(c->err, rc, "plan: out of memory");
        goto fail;
    }
    for (int i = 0; i < n->n_in; i++) {
        ib[i] = -1;
        if (n->in[i] < 0)
            continue;
        rc = osp__buf_plain(c, n->in[i]);
        if (rc < 0)
            goto fail;
        ib[i] = rc;
    }
    for (int i = 0; i < n->n_out; i++) {
        ob[i] = -1;
        if (n->out[i] < 0)
            continue;
        rc = buf_new_plain(c, n->out[i]);
        if (rc < 0)
            goto fail;
        ob[i] = rc;
        osp__bind_value(c, n->out[i], rc);
    }
    rc = step_add(c, OSP_STEP_REF, ni);
    if (rc < 0)
        goto fail;
    osp__plan_step_t *s = &c->p->steps[rc];
    snprintf(s->impl, sizeof s->impl, "ref");
    if (n->n_post) {
        size_t used = 0;
        for (int i = 0; i < n->n_post && used + 16 < sizeof s->note; i++)
            used += (size_t)snprintf(s->note + used, sizeof s->note - used,
                                     "%s+%s", used ? " " : "",
                                     n->post[i].kind == OSP_POST_SUM
                                         ? "sum"
                                         : osp_act_name(n->post[i].act));
    }
    s->n_in = n->n_in;
    s->n_out = n->n_out;
    s->in_buf = ib;
    s->out_buf = ob;
    s->tin = ti;
    s->tout = to;
    for (int i = 0; i < n->n_in; i++)
        buf_read(c->p, ib[i], rc);
    for (int i = 0; i < n->n_out; i++)
        if (ob[i] >= 0)
            buf_write(c->p, ob[i], rc);
    return 0;
fail:
    free(ib);
    free(ob);
    free(ti);
    free(to);
    return rc;
}

/* Appends a step of kind reading buffers in_buf[0..n_in) and writing
 * out_buf (one output), with its tensor views; the caller fills the rest of
 * the step. Returns its index, or an error. */
static int step_n_to_1(osp__plan_ctx_t *c, osp__plan_step_kind_t kind, int node,
                       int n_in, const int *in_buf, int out_buf) {
    size_t k = (size_t)(n_in > 0 ? n_in : 1);
    int *ib = malloc(sizeof(int) * k);
    int *ob = malloc(sizeof(int));
    osp_tensor_t *ti = calloc(k, sizeof *ti);
    osp_tensor_t *to = calloc(1, sizeof *to);
    int si = ib && ob && ti && to
                 ? step_add(c, kind, node)
                 : osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    if (si < 0) {
        free(ib);
        free(ob);
        free(ti);
        free(to);
        return si;
    }
    osp__plan_step_t *s = &c->p->steps[si];
    if (n_in > 0)
        memcpy(ib, in_buf, sizeof(int) * (size_t)n_in);
    ob[0] = out_buf;
    s->n_in = n_in;
    s->n_out = 1;
    s->in_buf = ib;
    s->out_buf = ob;
    s->tin = ti;
    s->tout = to;
    for (int i = 0; i < n_in; i++)
        buf_read(c->p, ib[i], si);
    buf_write(c->p, out_buf, si);
    return si;
}

int osp__step_concat(osp__plan_ctx_t *c, int node, int n_in, const int *in_buf,
                     int out_buf, size_t outer, const size_t *inner) {
    size_t *in_b = malloc(sizeof(size_t) * (size_t)n_in);
    if (!in_b)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    int si = step_n_to_1(c, OSP_STEP_CONCAT, node, n_in, in_buf, out_buf);
    if (si < 0) {
        free(in_b);
        return si;
    }
    osp__plan_step_t *s = &c->p->steps[si];
    memcpy(in_b, inner, sizeof(size_t) * (size_t)n_in);
    s->copy_outer = outer;
    s->copy_inner = in_b;
    snprintf(s->impl, sizeof s->impl, "osprey:memcpy");
    return si;
}

int osp__step_lut(osp__plan_ctx_t *c, int node, int n_in, const int *in_buf,
                  int out_buf, uint8_t *lut, size_t count) {
    if (n_in < 1 || n_in > 2) {
        free(lut);
        return osp_err_set(c->err, OSP_EINTERNAL,
                           "plan: a lookup table takes 1 or 2 inputs, not %d",
                           n_in);
    }
    int si = step_n_to_1(c, OSP_STEP_LUT, node, n_in, in_buf, out_buf);
    if (si < 0) {
        free(lut);
        return si;
    }
    osp__plan_step_t *s = &c->p->steps[si];
    s->lut = lut;
    s->lut_count = count;
    snprintf(s->impl, sizeof s->impl, "osprey:lut%d", n_in == 1 ? 256 : 65536);
    return si;
}

int osp__step_fn(osp__plan_ctx_t *c, int node, int n_in, const int *in_buf,
                 int out_buf, void (*fn)(const osp__plan_step_t *s), void *ctx,
                 const char *impl, const char *note) {
    int si = step_n_to_1(c, OSP_STEP_FN, node, n_in, in_buf, out_buf);
    if (si < 0) {
        free(ctx);
        return si;
    }
    osp__plan_step_t *s = &c->p->steps[si];
    s->fn = fn;
    s->fn_ctx = ctx;
    snprintf(s->impl, sizeof s->impl, "%s", impl);
    snprintf(s->note, sizeof s->note, "%s", note ? note : "");
    return si;
}

static void run_lut(const osp__plan_step_t *s) {
    /* split over the engine's OpenMP threads (q8_f32conv.c) */
    osp__q8_lut_run(s->lut, s->tin[0].data,
                    s->n_in == 1 ? NULL : s->tin[1].data, s->tout[0].data,
                    s->lut_count);
}

static void run_concat(const osp__plan_step_t *s) {
    size_t total = 0;
    for (int i = 0; i < s->n_in; i++)
        total += s->copy_inner[i];
    uint8_t *dst = s->tout[0].data;
    for (size_t o = 0; o < s->copy_outer; o++) {
        size_t off = 0;
        for (int i = 0; i < s->n_in; i++) {
            memcpy(dst + o * total + off,
                   (const uint8_t *)s->tin[i].data + o * s->copy_inner[i],
                   s->copy_inner[i]);
            off += s->copy_inner[i];
        }
    }
}

/* Reshape-like ops on plain data are views: no copy, no step. */
static int compile_view(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    int x = n->in[0], y = n->out[0];
    if (n->n_out != 1 || y < 0 || x < 0 ||
        osp_value_numel(&c->g->values[x]) != osp_value_numel(&c->g->values[y]) ||
        c->g->values[x].dtype != c->g->values[y].dtype)
        return OSP_EUNSUPPORTED;
    int b = osp__buf_plain(c, x);
    if (b < 0)
        return b;
    int v = osp__buf_view(c, b, y, NULL);
    if (v < 0)
        return v;
    osp__bind_value(c, y, v);
    return 0;
}

/* Node n reads and writes 8-bit values with one and the same per-tensor
 * quantization. */
static bool q8_same_quant(const osp_graph_t *g, const osp_node_t *n) {
    if (n->n_in < 1 || n->n_out != 1 || n->in[0] < 0 || n->out[0] < 0)
        return false;
    const osp_value_t *x = &g->values[n->in[0]], *y = &g->values[n->out[0]];
    return x->quant && y->quant && x->dtype == y->dtype &&
           (x->dtype == OSP_DT_S8 || x->dtype == OSP_DT_U8) &&
           x->quant->count == 1 && y->quant->count == 1 &&
           x->quant->scale[0] == y->quant->scale[0] &&
           x->quant->zero_point[0] == y->quant->zero_point[0] &&
           x->quant->scale[0] > 0.f;
}

static int compile_node(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    int rc = OSP_EUNSUPPORTED;
    bool fl = node_is_float(c->g, n);
    if (!fl) /* exact 8-bit elementwise ops as tables (q8_lut.c) */
        rc = osp__q8_lut(c, ni);
    if (rc == OSP_EUNSUPPORTED) switch (n->op) {
    case OSP_OP_CONV:
        rc = fl ? osp__dnnl_conv(c, ni) : osp__dnnl_q8conv(c, ni);
        if (!fl && rc == OSP_EUNSUPPORTED) /* exact, e.g. uint8 weights */
            rc = osp__q8_f32conv(c, ni);
        break;
    case OSP_OP_MAXPOOL:
        /* 8-bit max pooling with the input's quantization on its output is
         * exact on the raw bytes: the affine map is increasing */
        if (fl || (n->n_post == 0 && q8_same_quant(c->g, n)))
            rc = osp__dnnl_pool(c, ni);
        break;
    case OSP_OP_AVGPOOL:
    case OSP_OP_GLOBAL_AVGPOOL:
    case OSP_OP_GLOBAL_MAXPOOL: if (fl) rc = osp__dnnl_pool(c, ni); break;
    case OSP_OP_GEMM:
        rc = fl ? osp__dnnl_gemm(c, ni) : osp__dnnl_q8gemm(c, ni);
        break;
    case OSP_OP_MATMUL: if (fl) rc = osp__dnnl_matmul(c, ni); break;
    case OSP_OP_RELU:
    case OSP_OP_LEAKY_RELU:
    case OSP_OP_CLIP:
    case OSP_OP_SIGMOID:
    case OSP_OP_HARD_SWISH: if (fl) rc = osp__dnnl_eltwise(c, ni); break;
    case OSP_OP_ADD:
    case OSP_OP_SUB:
    case OSP_OP_MUL:
    case OSP_OP_DIV: if (fl) rc = osp__dnnl_binary(c, ni); break;
    case OSP_OP_SOFTMAX: if (fl) rc = osp__dnnl_softmax(c, ni); break;
    case OSP_OP_CONCAT: if (fl) rc = osp__dnnl_concat(c, ni); break;
    case OSP_OP_BATCHNORM: if (fl) rc = osp__dnnl_batchnorm(c, ni); break;
    case OSP_OP_LRN: if (fl) rc = osp__dnnl_lrn(c, ni); break;
    case OSP_OP_FLATTEN:
    case OSP_OP_RESHAPE:
    case OSP_OP_SQUEEZE:
    case OSP_OP_UNSQUEEZE:
    case OSP_OP_IDENTITY: rc = compile_view(c, ni); break;
    case OSP_OP_TRANSPOSE: rc = osp__transpose_view(c, ni); break;
    case OSP_OP_QUANTIZE: rc = osp__q8_quantize(c, ni); break;
    default: break;
    }
    if (rc == OSP_EUNSUPPORTED) {
        osp_err_clear(c->err);
        rc = compile_ref(c, ni);
    }
    if (rc < 0 && c->err && c->err->code == 0)
        osp_err_set(c->err, rc, "node %s (%s): %s", n->name,
                    osp_op_name(n->op), osp_strerror(rc));
    return rc < 0 ? rc : 0;
}

/* ---- finalize: liveness → arena → memory objects ------------------------ */

/* Points every buffer, memory object and reference tensor of p at the
 * engine's current arena and scratchpad. All plans of an engine share one
 * arena (an engine runs one plan at a time), sized for the largest; when a
 * new plan grows it, older plans are re-bound on their next run. */
static void plan_bind(osp_engine_t *e, osp__plan_t *p) {
    for (int i = 0; i < p->n_bufs; i++) {
        osp__plan_buf_t *b = &p->bufs[i];
        if (b->is_const)
            b->ptr = (void *)b->cdata;
        else if (b->alias_of < 0)
            b->ptr = e->arena + b->offset;
    }
    for (int i = 0; i < p->n_bufs; i++) {
        osp__plan_buf_t *b = &p->bufs[i];
        if (b->alias_of >= 0)
            b->ptr = p->bufs[b->alias_of].ptr;
        if (b->mem)
            dnnl_memory_set_data_handle(b->mem, b->ptr);
    }
    for (int si = 0; si < p->n_steps; si++) {
        osp__plan_step_t *s = &p->steps[si];
        if (s->scratch_mem)
            dnnl_memory_set_data_handle(s->scratch_mem, e->scratch);
        if (s->kind == OSP_STEP_DNNL)
            continue;
        for (int i = 0; i < s->n_in; i++)
            if (s->in_buf[i] >= 0)
                s->tin[i].data = p->bufs[s->in_buf[i]].ptr;
        for (int i = 0; i < s->n_out; i++)
            if (s->out_buf[i] >= 0)
                s->tout[i].data = p->bufs[s->out_buf[i]].ptr;
    }
    p->arena_gen = e->arena_gen;
}

static int finalize(osp__plan_ctx_t *c) {
    osp__plan_t *p = c->p;
    int rc = OSP_ENOMEM;
    osp__memplan_item_t *items = NULL;
    int *item_buf = NULL;
    /* Views keep their root alive. */
    for (int i = 0; i < p->n_bufs; i++) {
        osp__plan_buf_t *b = &p->bufs[i];
        if (b->alias_of >= 0 && b->last > p->bufs[b->alias_of].last)
            p->bufs[b->alias_of].last = b->last;
    }
    for (int i = 0; i < p->n_bufs; i++) {
        osp__plan_buf_t *b = &p->bufs[i];
        if (b->is_output) {
            int r = b->alias_of >= 0 ? b->alias_of : i;
            p->bufs[r].last = p->n_steps;
        }
    }
    items = calloc((size_t)(p->n_bufs ? p->n_bufs : 1), sizeof *items);
    item_buf = calloc((size_t)(p->n_bufs ? p->n_bufs : 1), sizeof *item_buf);
    if (!items || !item_buf)
        goto oom;
    int ni = 0;
    p->sum_bytes = 0;
    for (int i = 0; i < p->n_bufs; i++) {
        osp__plan_buf_t *b = &p->bufs[i];
        if (b->is_const || b->alias_of >= 0)
            continue;
        int first = b->def == INT_MAX ? b->last : b->def;
        if (first == INT_MAX || b->last < 0)
            first = b->last = b->def = -1; /* never used: keep it harmless */
        items[ni].size_bytes = b->bytes;
        items[ni].first = first + 1; /* inputs are written at "step -1" */
        items[ni].last = (b->last < first ? first : b->last) + 1;
        item_buf[ni] = i;
        p->sum_bytes += b->bytes;
        ni++;
    }
    size_t total = 0;
    rc = osp__memplan_place(items, ni, OSP_ALIGN_BYTES, &total);
    if (rc < 0) {
        osp_err_set(c->err, rc, "plan: memory planning failed");
        goto fail;
    }
    p->arena_bytes = total;
    for (int i = 0; i < ni; i++)
        p->bufs[item_buf[i]].offset = items[i].offset;
    if ((rc = osp__engine_reserve(c->e, p->arena_bytes, p->scratch_bytes,
                                  c->err)) < 0)
        goto fail;
    /* Shapes of the reference steps' tensors now; addresses in plan_bind. */
    for (int si = 0; si < p->n_steps; si++) {
        osp__plan_step_t *s = &p->steps[si];
        if (s->kind == OSP_STEP_REF) {
            const osp_node_t *n = &p->g->nodes[s->node];
            for (int i = 0; i < s->n_in; i++) {
                osp_tensor_t *t = &s->tin[i];
                memset(t, 0, sizeof *t);
                if (s->in_buf[i] < 0)
                    continue;
                const osp_value_t *v = &p->g->values[n->in[i]];
                t->name = v->name;
                t->dtype = v->dtype;
                t->rank = v->rank;
                memcpy(t->dims, v->dims, sizeof t->dims);
            }
            for (int i = 0; i < s->n_out; i++) {
                osp_tensor_t *t = &s->tout[i];
                memset(t, 0, sizeof *t);
                if (s->out_buf[i] < 0)
                    continue;
                const osp_value_t *v = &p->g->values[n->out[i]];
                t->name = v->name;
                t->dtype = v->dtype;
                t->rank = v->rank;
                memcpy(t->dims, v->dims, sizeof t->dims);
            }
            continue;
        }
        s->n_exec = 0;
        for (int i = 0; i < s->n_args; i++) {
            osp__plan_buf_t *b = &p->bufs[s->arg_buf[i]];
            if (!b->mem &&
                dnnl_memory_create(&b->mem, &b->md, c->e->dnnl_eng,
                                   DNNL_MEMORY_NONE) != dnnl_success)
                goto oom;
            s->exec[s->n_exec++] = (dnnl_exec_arg_t){s->arg_kind[i], b->mem};
        }
        if (s->scratch_mem)
            s->exec[s->n_exec++] =
                (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch_mem};
    }
    plan_bind(c->e, p);
    rc = 0;
    goto fail;
oom:
    rc = osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory (arena %zu bytes)",
                     p->arena_bytes);
fail:
    free(items);
    free(item_buf);
    return rc;
}

/* ---- build ------------------------------------------------------------- */

void osp__plan_destroy(osp__plan_t *p) {
    if (!p)
        return;
    for (int i = 0; i < p->n_steps; i++) {
        osp__plan_step_t *s = &p->steps[i];
        dnnl_primitive_destroy(s->prim);
        dnnl_memory_destroy(s->scratch_mem);
        free(s->in_buf);
        free(s->out_buf);
        free(s->tin);
        free(s->tout);
        free(s->copy_inner);
        free(s->lut);
        if (s->fn_free)
            s->fn_free(s->fn_ctx);
        else
            free(s->fn_ctx);
    }
    for (int i = 0; i < p->n_bufs; i++)
        dnnl_memory_destroy(p->bufs[i].mem);
    free(p->steps);
    free(p->bufs);
    free(p->in_buf);
    free(p->out_buf);
    free(p->vbuf);
    free(p->uses_left);
    free(p->conv);
    free(p->key);
    free(p->step_ms);
    free(p->describe);
    osp_graph_destroy(p->g);
    free(p);
}

static int plan_build(osp_engine_t *e, const int64_t *dims, osp__plan_t **out,
                      osp_err_t *err) {
    uint64_t t0 = osp_now_ns();
    osp__plan_t *p = calloc(1, sizeof *p);
    int rc = OSP_ENOMEM;
    if (!p)
        return osp_err_set(err, OSP_ENOMEM, "plan: out of memory");
    const osp_graph_t *lg = e->g;
    size_t key_n = (size_t)(lg->n_inputs ? lg->n_inputs : 1) * OSP_KEY_STRIDE;
    p->key = calloc(key_n, sizeof(int64_t));
    p->g = osp_graph_clone(lg);
    if (!p->key || !p->g)
        goto oom;
    memcpy(p->key, dims, (size_t)lg->n_inputs * OSP_KEY_STRIDE * sizeof(int64_t));
    osp_graph_t *g = p->g;
    for (int i = 0; i < g->n_inputs; i++) {
        osp_value_t *v = &g->values[g->inputs[i]];
        for (int d = 0; d < v->rank; d++)
            v->dims[d] = dims[i * OSP_KEY_STRIDE + d];
    }
    /* Shape-parameter inputs: their readers read a constant with the
     * values of this key instead, so shapes fold at plan time. */
    for (int i = 0; i < g->n_inputs; i++) {
        if (!e->param_input[i])
            continue;
        int iv = g->inputs[i];
        const osp_value_t *v = &g->values[iv];
        size_t n = osp_value_numel(v), esz = osp_dtype_size(v->dtype);
        const int64_t *vals = dims + i * OSP_KEY_STRIDE + OSP_MAX_RANK;
        size_t bytes = n * esz;
        uint8_t *data = malloc(bytes ? bytes : 1);
        if (!data)
            goto oom;
        for (size_t k = 0; k < n; k++) {
            if (v->dtype == OSP_DT_S32)
                ((int32_t *)data)[k] = (int32_t)vals[k];
            else
                ((int64_t *)data)[k] = vals[k];
        }
        char name[160];
        snprintf(name, sizeof name, "%.140s/value", v->name);
        /* add_value may move g->values (and *v): pass copies. */
        int64_t vdims[OSP_MAX_RANK];
        memcpy(vdims, v->dims, sizeof vdims);
        int c = osp_graph_add_value(g, name, v->dtype, v->rank, vdims);
        if (c < 0) {
            free(data);
            goto oom;
        }
        osp_graph_set_const(g, c, data, bytes);
        osp_graph_replace_uses(g, iv, c);
    }
    g->q8_sum = osp__q8_sum_ok(e, g);
    if ((rc = osp_infer_shapes(g, err)) < 0 ||
        (rc = osp_fold_constants(g, OSP_FOLD_MAX_BYTES, err)) < 0 ||
        (rc = osp__passes_plan(g, err)) < 0)
        goto fail;

    p->vbuf = malloc(sizeof(int) * (size_t)(g->n_values ? g->n_values : 1));
    p->uses_left = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof(int));
    p->in_buf = calloc((size_t)(g->n_inputs ? g->n_inputs : 1), sizeof(int));
    p->out_buf = calloc((size_t)(g->n_outputs ? g->n_outputs : 1), sizeof(int));
    if (!p->vbuf || !p->uses_left || !p->in_buf || !p->out_buf)
        goto oom;
    for (int i = 0; i < g->n_values; i++)
        p->vbuf[i] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0)
                p->uses_left[n->in[j]]++;
    }
    for (int i = 0; i < g->n_outputs; i++)
        p->uses_left[g->outputs[i]]++;

    osp__plan_ctx_t c = {e, p, g, e->prec == OSP_PREC_BF16 ? dnnl_bf16 : dnnl_f32,
                    err};
    for (int i = 0; i < g->n_inputs; i++) {
        int b = buf_new_plain(&c, g->inputs[i]);
        if (b < 0) {
            rc = b;
            goto fail;
        }
        p->bufs[b].def = -1;
        p->in_buf[i] = b;
        osp__bind_value(&c, g->inputs[i], b);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] >= 0 && g->values[n->out[j]].rank < 0) {
                rc = osp_err_set(err, OSP_ESHAPE,
                                 "node %s: output shape unknown after inference",
                                 n->name);
                goto fail;
            }
        if ((rc = compile_node(&c, i)) < 0)
            goto fail;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0)
                p->uses_left[n->in[j]]--;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i];
        int b = osp__buf_plain(&c, v);
        if (b < 0) {
            rc = b;
            goto fail;
        }
        p->out_buf[i] = b;
        p->bufs[b].is_output = true;
    }
    if ((rc = finalize(&c)) < 0)
        goto fail;
    if (e->profile && !(p->step_ms = calloc((size_t)p->n_steps + 1, sizeof(double))))
        goto oom;
    p->build_ms = (double)(osp_now_ns() - t0) / 1e6;
    *out = p;
    return 0;
oom:
    rc = osp_err_set(err, OSP_ENOMEM, "plan: out of memory");
fail:
    osp__plan_destroy(p);
    return rc;
}

int osp__plan_get(osp_engine_t *e, const int64_t *dims, osp__plan_t **out,
                  osp_err_t *err) {
    size_t kb = (size_t)e->g->n_inputs * OSP_KEY_STRIDE * sizeof(int64_t);
    for (int i = 0; i < e->n_plans; i++)
        if (memcmp(e->plans[i]->key, dims, kb) == 0) {
            *out = e->plans[i];
            return 0;
        }
    osp__plan_t **np = realloc(e->plans, sizeof *np * (size_t)(e->n_plans + 1));
    if (!np)
        return osp_err_set(err, OSP_ENOMEM, "plan: out of memory");
    e->plans = np;
    osp__set_threads(e->threads);
    osp__plan_t *p = NULL;
    int rc = plan_build(e, dims, &p, err);
    if (rc < 0)
        return rc;
    e->plans[e->n_plans++] = p;
    p->describe = osp__plan_describe(e, p); /* NULL on ENOMEM: tolerated */
    if (e->opts.verbose && p->describe)
        fputs(p->describe, stderr);
    *out = p;
    return 0;
}

/* Profiling clock: with one thread, the thread's CPU time (robust against
 * other processes on shared CPUs); with more, wall time. */
static uint64_t prof_now(const osp_engine_t *e) {
    if (e->threads != 1)
        return osp_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int osp__plan_run(osp_engine_t *e, osp__plan_t *p, const osp_tensor_t *inputs,
                  osp_tensor_t *outputs, osp_err_t *err) {
    const osp_graph_t *g = p->g;
    if (p->arena_gen != e->arena_gen)
        plan_bind(e, p);
    for (int i = 0; i < g->n_inputs; i++) {
        const osp__plan_buf_t *b = &p->bufs[p->in_buf[i]];
        memcpy(b->ptr, inputs[i].data, b->bytes);
    }
    for (int si = 0; si < p->n_steps; si++) {
        const osp__plan_step_t *s = &p->steps[si];
        uint64_t t0 = p->step_ms ? prof_now(e) : 0;
        if (s->kind == OSP_STEP_DNNL) {
            dnnl_status_t st =
                dnnl_primitive_execute(s->prim, e->stream, s->n_exec, s->exec);
            if (st != dnnl_success)
                return osp_err_set(err, OSP_EINTERNAL,
                                   "node %s: oneDNN execution failed: %s",
                                   s->node >= 0 ? g->nodes[s->node].name
                                                : "reorder",
                                   osp__dnnl_status(st));
        } else if (s->kind == OSP_STEP_CONCAT) {
            run_concat(s);
        } else if (s->kind == OSP_STEP_LUT) {
            run_lut(s);
        } else if (s->kind == OSP_STEP_FN) {
            s->fn(s);
        } else {
            int rc = osp_ref_run_node(g, &g->nodes[s->node], s->tin, s->tout,
                                      err);
            if (rc < 0)
                return rc;
        }
        if (p->step_ms)
            p->step_ms[si] += (double)(prof_now(e) - t0) / 1e6;
    }
    dnnl_stream_wait(e->stream);
    if (p->step_ms)
        p->n_runs++;
    for (int i = 0; i < g->n_outputs; i++) {
        const osp_value_t *v = &g->values[g->outputs[i]];
        osp_tensor_t *t = &outputs[i];
        memset(t, 0, sizeof *t);
        t->name = v->name;
        t->dtype = v->dtype;
        t->rank = v->rank;
        memcpy(t->dims, v->dims, sizeof t->dims);
        t->data = p->bufs[p->out_buf[i]].ptr;
    }
    return 0;
}

/* ---- describe ---------------------------------------------------------- */

void osp__sb_printf(osp__sbuf_t *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL,
                          b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *ns = realloc(b->s, cap);
        if (!ns)
            return;
        b->s = ns;
        b->cap = cap;
    }
}

static const char *md_tag(const dnnl_memory_desc_t *md, char *buf, size_t len) {
    /* A short layout name: dims order by stride plus inner blocks. */
    if (md->format_kind != dnnl_blocked) {
        snprintf(buf, len, "?");
        return buf;
    }
    const dnnl_blocking_desc_t *bd = &md->format_desc.blocking;
    int order[DNNL_MAX_NDIMS];
    for (int i = 0; i < md->ndims; i++)
        order[i] = i;
    for (int i = 0; i < md->ndims; i++)
        for (int j = i + 1; j < md->ndims; j++)
            if (bd->strides[order[j]] > bd->strides[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    size_t n = 0;
    for (int i = 0; i < md->ndims && n + 1 < len; i++)
        buf[n++] = (char)('a' + order[i]);
    for (int i = 0; i < bd->inner_nblks && n + 8 < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%lld%c",
                              (long long)bd->inner_blks[i],
                              (int)('a' + bd->inner_idxs[i]));
    buf[n < len ? n : len - 1] = '\0';
    return buf;
}

char *osp__plan_describe(const osp_engine_t *e, const osp__plan_t *p) {
    osp__sbuf_t b = {0};
    const osp_graph_t *g = p->g;
    int n_dnnl = 0, n_ref = 0, n_reorder = 0, n_copy = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const osp__plan_step_t *s = &p->steps[i];
        if (s->kind == OSP_STEP_REF)
            n_ref++;
        else if (s->kind == OSP_STEP_CONCAT || s->kind == OSP_STEP_LUT ||
                 s->kind == OSP_STEP_FN)
            n_copy++;
        else if (s->node < 0)
            n_reorder++;
        else
            n_dnnl++;
    }
    const dnnl_version_t *ver = dnnl_version();
    const osp__cpu_caps_t *cpu = osp__cpu_caps();
    osp__sb_printf(&b, "precision %s, threads %d (OpenMP max threads %d), oneDNN "
                  "%d.%d.%d, conv activations %s\n",
              osp_precision_name(e->prec), e->threads, osp__get_threads(),
              ver->major, ver->minor, ver->patch,
              e->conv_blocked ? "nChw16c" : "oneDNN's choice");
    osp__sb_printf(&b, "ISA %s (ceiling %s; this CPU: %s)\n", osp_isa_name(cpu->isa),
              cpu->ceiling == OSP_ISA_AUTO ? "none" : osp_isa_name(cpu->ceiling),
              osp_isa_name(cpu->cpu));
    if (p->step_ms && p->n_runs) {
        double tot = 0;
        for (int i = 0; i < p->n_steps; i++)
            tot += p->step_ms[i];
        osp__sb_printf(&b, "profile: %d runs, %.3f ms per run in steps\n", p->n_runs,
                  tot / p->n_runs);
    }
    char q8[256];
    osp__q8_path_summary(e, p, q8, sizeof q8);
    if (q8[0])
        osp__sb_printf(&b, "%s\n", q8);
    osp__sb_printf(&b, "plan: inputs");
    for (int i = 0; i < g->n_inputs; i++) {
        const osp_value_t *v = &g->values[g->inputs[i]];
        osp__sb_printf(&b, " %s[", v->name);
        for (int d = 0; d < v->rank; d++)
            osp__sb_printf(&b, d ? ",%lld" : "%lld", (long long)v->dims[d]);
        osp__sb_printf(&b, "]");
    }
    osp__sb_printf(&b, "; %d steps (%d oneDNN, %d reorders, %d memcpy, %d reference); arena "
                  "%.1f MiB (%.1f MiB without reuse; engine arena %.1f MiB "
                  "shared by %d plans); scratchpad %.1f MiB; built in %.1f "
                  "ms\n",
              p->n_steps, n_dnnl, n_reorder, n_copy, n_ref,
              (double)p->arena_bytes / 1048576.0,
              (double)p->sum_bytes / 1048576.0,
              (double)e->arena_bytes / 1048576.0, e->n_plans,
              (double)p->scratch_bytes / 1048576.0, p->build_ms);
    for (int i = 0; i < p->n_steps; i++) {
        const osp__plan_step_t *s = &p->steps[i];
        char tag[48] = "";
        int ob = -1;
        for (int a = 0; a < s->n_args; a++)
            if (s->arg_kind[a] == DNNL_ARG_DST)
                ob = s->arg_buf[a];
        if (s->kind != OSP_STEP_DNNL && s->n_out > 0)
            ob = s->out_buf[0];
        char layout[32];
        if (ob >= 0 && p->bufs[ob].has_md)
            snprintf(tag, sizeof tag, " -> %s:%s",
                     osp_dtype_name(p->bufs[ob].dtype),
                     md_tag(&p->bufs[ob].md, layout, sizeof layout));
        if (p->step_ms && p->n_runs)
            osp__sb_printf(&b, "%8.3f ms", p->step_ms[i] / p->n_runs);
        if (s->node < 0)
            osp__sb_printf(&b, "  %3d reorder %s: %s%s\n", i, s->note, s->impl, tag);
        else
            osp__sb_printf(&b, "  %3d %s %s: %s%s%s%s\n", i,
                      osp_op_name(g->nodes[s->node].op), g->nodes[s->node].name,
                      s->impl, tag, s->note[0] ? " fused " : "", s->note);
    }
    return b.s;
}
