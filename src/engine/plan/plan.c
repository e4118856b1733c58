/* plan.c — specialises the loaded graph for concrete input shapes and
 * compiles it into steps over one activation arena (the build driver and
 * the plan cache); runs compiled plans.
 *
 * Build order (docs/engine.md has the why): clone the load-time graph
 * (weights shared), set the input dims, infer shapes, fold constants, run
 * the plan-time passes, then walk the nodes in topological order giving each
 * one a oneDNN primitive (dnnl/) or, when oneDNN cannot express it, a
 * reference-kernel step (plan_compile.c). Layouts follow the producers: a
 * convolution writes oneDNN's preferred blocked layout and the next
 * primitive reads it as is; reorder steps are inserted only where a
 * consumer needs another layout or dtype (reference kernels and graph
 * outputs want plain row-major data; plan_buffers.c). Finally buffer
 * lifetimes go to memplan.c, which packs them into one arena, and every
 * oneDNN memory object is created up front (plan_finalize.c), so a run
 * allocates nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/ops/kernels.h"
#include "engine/passes/passes.h"
#include "engine/plan/plan_int.h"
#include "engine/int8/q8_int.h"

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
    osp__md_release(p); /* after the steps: their contexts may hold mds */
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
        int b = osp__plan_buf_new_plain(&c, g->inputs[i]);
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
        if ((rc = osp__plan_compile_node(&c, i)) < 0)
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
    if ((rc = osp__plan_finalize(&c)) < 0)
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
        osp__plan_bind(e, p);
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
