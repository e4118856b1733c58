/* plan_buffers.c — a plan's buffers and how values reach them: fresh
 * activation buffers, views, constants reordered once into a oneDNN layout
 * (shared through the engine's weight cache), converted copies cached per
 * value, and the oneDNN and reorder steps that read and write them, each
 * recording the buffer lifetimes finalize (plan_finalize.c) packs. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan/plan_int.h"

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
    b->dtype = osp__osp_dt(osp__md_dt(*md));
    b->bytes = dnnl_memory_desc_get_size(*md);
    buf_shape(b, osp__md_ndims(*md), osp__md_dims(*md));
    b->owner = v;
    return id;
}

/* A plain buffer for value v in its IR dtype (reference-kernel outputs). */
int osp__plan_buf_new_plain(osp__plan_ctx_t *c, int v) {
    const osp_value_t *val = &c->g->values[v];
    dnnl_memory_desc_t md;
    int id;
    if (osp__md_plain(c, &md, val->rank, val->dims, osp__dnnl_dt(val->dtype))) {
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
            dnnl_memory_desc_equal(c->p->bufs[cc->buf].md, *md))
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
        b->dtype = osp__osp_dt(osp__md_dt(*md));
        b->bytes = dnnl_memory_desc_get_size(*md);
    } else {
        b->dtype = val->dtype;
        b->bytes = val->data_bytes;
    }
    /* without a value (derived constants), the md's logical shape */
    if (val)
        buf_shape(b, val->rank, val->dims);
    else
        buf_shape(b, osp__md_ndims(*md), osp__md_dims(*md));
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
            dnnl_memory_desc_equal(e->wcache[i].md, *md)) {
            *out = e->wcache[i].data;
            return 0;
        }
    osp__wcache_entry_t *grown_ =
        osp_grow(e->wcache, &e->cap_wcache, e->n_wcache, sizeof *grown_, 64);
    if (!grown_)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    e->wcache = grown_;
    size_t bytes = dnnl_memory_desc_get_size(*md);
    size_t alloc = (bytes + OSP_ALIGN_BYTES) / OSP_ALIGN_BYTES * OSP_ALIGN_BYTES;
    void *dst = aligned_alloc(OSP_ALIGN_BYTES, alloc);
    if (!dst)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory for weights");
    /* Blocked layouts pad channels; the padding must be zero. */
    memset(dst, 0, bytes);
    dnnl_memory_t ms = NULL, md_ = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_status_t st = dnnl_memory_create(&ms, *src_md, e->dnnl_eng, (void *)data);
    if (st == dnnl_success)
        st = dnnl_memory_create(&md_, *md, e->dnnl_eng, dst);
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(&pd, *src_md, e->dnnl_eng, *md,
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
    /* The cache outlives the plan: its own copy of the md. */
    dnnl_memory_desc_t keep = NULL;
    if (dnnl_memory_desc_clone(&keep, *md) != dnnl_success) {
        free(dst);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }
    e->wcache[e->n_wcache++] = (osp__wcache_entry_t){data, keep, dst, bytes};
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
        if (!osp__md_plain(c, &plain, val->rank, val->dims,
                           osp__dnnl_dt(val->dtype)))
            return osp_err_set(c->err, OSP_EUNSUPPORTED,
                               "constant %s: dtype %s unsupported by oneDNN",
                               val->name, osp_dtype_name(val->dtype));
        src_md = &plain;
    }
    if (dnnl_memory_desc_get_size(*src_md) > val->data_bytes)
        return osp_err_set(c->err, OSP_EFORMAT,
                           "constant %s: %zu bytes of data, layout needs %zu",
                           val->name, val->data_bytes,
                           dnnl_memory_desc_get_size(*src_md));
    const void *data = val->data;
    if (!dnnl_memory_desc_equal(*src_md, *md)) {
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
    size_t bytes = dnnl_memory_desc_get_size(*md);
    dnnl_memory_desc_t keep = NULL;
    if (dnnl_memory_desc_clone(&keep, *md) != dnnl_success) {
        free(data);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }
    e->wcache[e->n_wcache++] = (osp__wcache_entry_t){data, keep, data, bytes};
    return const_buf(c, data, md, NULL);
}

/* A constant computed from constant data by the planner itself (osprey's
 * Winograd weights): made once per engine, shared like reordered weights
 * (lane engines use their owner's cache), keyed by the source data and
 * md, which no oneDNN reorder of the same data produces. */
int osp__const_derived(osp__plan_ctx_t *c, const void *src, const dnnl_memory_desc_t *md,
                       int (*make)(void *dst, const void *ctx), const void *ctx) {
    osp_engine_t *e = c->e->wowner ? c->e->wowner : c->e;
    void *data = NULL;
    size_t bytes = dnnl_memory_desc_get_size(*md);
    for (int i = 0; i < e->n_wcache && !data; i++)
        if (e->wcache[i].src == src && dnnl_memory_desc_equal(e->wcache[i].md, *md))
            data = e->wcache[i].data;
    if (!data) {
        osp__wcache_entry_t *grown_ =
            osp_grow(e->wcache, &e->cap_wcache, e->n_wcache, sizeof *grown_, 64);
        if (!grown_)
            return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
        e->wcache = grown_;
        size_t alloc = (bytes + OSP_ALIGN_BYTES) / OSP_ALIGN_BYTES * OSP_ALIGN_BYTES;
        dnnl_memory_desc_t keep = NULL;
        if (!(data = aligned_alloc(OSP_ALIGN_BYTES, alloc)) ||
            dnnl_memory_desc_clone(&keep, *md) != dnnl_success) {
            free(data);
            return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory for weights");
        }
        memset(data, 0, bytes);
        int rc = make(data, ctx);
        if (rc < 0) {
            free(data);
            dnnl_memory_desc_destroy(keep);
            return rc;
        }
        e->wcache[e->n_wcache++] = (osp__wcache_entry_t){src, keep, data, bytes};
    }
    return const_buf(c, data, md, NULL);
}

/* ---- value access -------------------------------------------------------- */

int osp__value_md(osp__plan_ctx_t *c, int v, dnnl_memory_desc_t *md) {
    const osp_value_t *val = &c->g->values[v];
    if (osp_value_is_const(val) || c->p->vbuf[v] < 0) {
        if (!osp_value_is_const(val))
            return osp_err_set(c->err, OSP_EINTERNAL,
                               "plan: value %s used before it is produced",
                               val->name);
        if (!osp__md_plain(c, md, val->rank, val->dims, osp__dnnl_dt(val->dtype)))
            return OSP_EUNSUPPORTED;
        return 0;
    }
    const osp__plan_buf_t *b = &c->p->bufs[c->p->vbuf[v]];
    if (!b->has_md)
        return OSP_EUNSUPPORTED;
    *md = b->md;
    return 0;
}

int osp__plan_step_add(osp__plan_ctx_t *c, osp__plan_step_kind_t kind, int node) {
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

void osp__plan_buf_read(osp__plan_t *p, int b, int step) {
    if (b >= 0 && p->bufs[b].last < step)
        p->bufs[b].last = step;
}

void osp__plan_buf_write(osp__plan_t *p, int b, int step) {
    if (p->bufs[b].def > step)
        p->bufs[b].def = step;
    osp__plan_buf_read(p, b, step);
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
    const_dnnl_memory_desc_t smd =
        dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    int si = osp__plan_step_add(c, OSP_STEP_DNNL, node);
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
            osp__plan_buf_write(c->p, arg_buf[i], si);
        else
            osp__plan_buf_read(c->p, arg_buf[i], si);
    }
    return si;
}

/* Appends a reorder step copying buffer src into buffer dst (layouts and
 * dtypes may differ). */
int osp__step_reorder(osp__plan_ctx_t *c, int src, int dst, const char *note) {
    dnnl_primitive_desc_t pd = NULL;
    const osp__plan_buf_t *bs = &c->p->bufs[src], *bd = &c->p->bufs[dst];
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(
        &pd, bs->md, c->e->dnnl_eng, bd->md, c->e->dnnl_eng, NULL);
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
    if (dnnl_memory_desc_equal(c->p->bufs[b].md, *md))
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
            if (osp__md_plain(c, &md, val->rank, val->dims,
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
    if (!osp__md_plain(c, &md, val->rank, val->dims, osp__dnnl_dt(val->dtype)))
        return osp_err_set(c->err, OSP_EINTERNAL, "plan: value %s: bad md",
                           val->name);
    return osp__buf_as(c, v, &md);
}

/* A view: buffer b's bytes seen with another shape (plain data only). */
int osp__buf_view(osp__plan_ctx_t *c, int b, int v, const dnnl_memory_desc_t *md) {
    int root = c->p->bufs[b].alias_of >= 0 ? c->p->bufs[b].alias_of : b;
    int id = md ? osp__buf_new(c, md, -1) : osp__plan_buf_new_plain(c, v);
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
