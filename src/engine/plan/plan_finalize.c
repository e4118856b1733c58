/* plan_finalize.c — the last stage of a plan build: buffer lifetimes go to
 * memplan.c, which packs them into one activation arena; every oneDNN
 * memory object and reference tensor is created and bound up front, so a
 * run allocates nothing. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan/memplan.h"
#include "engine/plan/plan_int.h"

/* ---- finalize: liveness → arena → memory objects ------------------------ */

/* Points every buffer, memory object and reference tensor of p at the
 * engine's current arena and scratchpad. All plans of an engine share one
 * arena (an engine runs one plan at a time), sized for the largest; when a
 * new plan grows it, older plans are re-bound on their next run. */
void osp__plan_bind(osp_engine_t *e, osp__plan_t *p) {
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

int osp__plan_finalize(osp__plan_ctx_t *c) {
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
    /* Shapes of the reference steps' tensors now; addresses in osp__plan_bind. */
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
                dnnl_memory_create(&b->mem, b->md, c->e->dnnl_eng,
                                   DNNL_MEMORY_NONE) != dnnl_success)
                goto oom;
            s->exec[s->n_exec++] = (dnnl_exec_arg_t){s->arg_kind[i], b->mem};
        }
        if (s->scratch_mem)
            s->exec[s->n_exec++] =
                (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch_mem};
    }
    osp__plan_bind(c->e, p);
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
