/* plan_describe.c — the human-readable form of a compiled plan (--verbose,
 * `osprey bench`): one line per step with its implementation, layouts and
 * fusions, and the string builder engine notes are written with. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan/plan_int.h"
#include "engine/int8/q8_int.h"

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

static const char *md_tag(const_dnnl_memory_desc_t md, char *buf, size_t len) {
    /* A short layout name: dims order by stride plus inner blocks. */
    dnnl_format_kind_t fk = dnnl_format_kind_undef;
    int nd = 0, nblks = 0;
    const dnnl_dims_t *strides = NULL, *blks = NULL, *idxs = NULL;
    dnnl_memory_desc_query(md, dnnl_query_format_kind, &fk);
    dnnl_memory_desc_query(md, dnnl_query_ndims_s32, &nd);
    if (fk != dnnl_blocked ||
        dnnl_memory_desc_query(md, dnnl_query_strides, &strides) != dnnl_success ||
        !strides) {
        snprintf(buf, len, "?");
        return buf;
    }
    dnnl_memory_desc_query(md, dnnl_query_inner_nblks_s32, &nblks);
    dnnl_memory_desc_query(md, dnnl_query_inner_blks, &blks);
    dnnl_memory_desc_query(md, dnnl_query_inner_idxs, &idxs);
    int order[DNNL_MAX_NDIMS];
    for (int i = 0; i < nd; i++)
        order[i] = i;
    for (int i = 0; i < nd; i++)
        for (int j = i + 1; j < nd; j++)
            if ((*strides)[order[j]] > (*strides)[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    size_t n = 0;
    for (int i = 0; i < nd && n + 1 < len; i++)
        buf[n++] = (char)('a' + order[i]);
    for (int i = 0; i < nblks && blks && idxs && n + 8 < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%lld%c",
                              (long long)(*blks)[i],
                              (int)('a' + (*idxs)[i]));
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
                     md_tag(p->bufs[ob].md, layout, sizeof layout));
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
