/* ir.c — construction, editing and dumping of the graph IR (see ir.h). */
#include "engine/ir/ir.h"

#include <stdlib.h>
#include <string.h>

const char *osp_op_name(osp_op_t op) {
    static const char *names[] = {
#define OSP__OP_NAME(n) #n,
        OSP_OP_MAP(OSP__OP_NAME)
#undef OSP__OP_NAME
    };
    return (unsigned)op < OSP_OP_COUNT ? names[op] : "?";
}

const char *osp_act_name(osp_act_t a) {
    static const char *names[] = {"none",         "relu",      "leaky_relu",
                                  "clip",         "sigmoid",   "hard_sigmoid",
                                  "hard_swish"};
    return (unsigned)a < OSP_ACT_COUNT ? names[a] : "?";
}

const char *osp_dtype_name(osp_dtype_t dt) {
    static const char *names[] = {"undef", "f32", "bf16", "f16", "u8",
                                  "s8",    "s32", "s64",  "bool"};
    return (unsigned)dt < OSP_DT_COUNT ? names[dt] : "?";
}

size_t osp_dtype_size(osp_dtype_t dt) {
    static const size_t sizes[] = {0, 4, 2, 2, 1, 1, 4, 8, 1};
    return (unsigned)dt < OSP_DT_COUNT ? sizes[dt] : 0;
}

size_t osp_tensor_numel(const osp_tensor_t *t) {
    size_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i] < 0 ? 0 : (size_t)t->dims[i];
    return n;
}

size_t osp_value_numel(const osp_value_t *v) {
    if (v->rank < 0)
        return 0;
    size_t n = 1;
    for (int i = 0; i < v->rank; i++) {
        if (v->dims[i] < 0)
            return 0;
        n *= (size_t)v->dims[i];
    }
    return n;
}

osp_graph_t *osp_graph_create(void) { return calloc(1, sizeof(osp_graph_t)); }

static void quant_free(osp_quant_t *q) {
    if (!q)
        return;
    free(q->scale);
    free(q->zero_point);
    free(q);
}

static void value_fini(osp_value_t *v) {
    free(v->name);
    if (!v->data_borrowed)
        free(v->data);
    quant_free(v->quant);
}

static void node_fini(osp_node_t *n) {
    free(n->name);
    free(n->in);
    free(n->out);
}

void osp_graph_destroy(osp_graph_t *g) {
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++)
        value_fini(&g->values[i]);
    for (int i = 0; i < g->n_nodes; i++)
        node_fini(&g->nodes[i]);
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->name);
    free(g->producer);
    free(g);
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int osp_graph_add_value(osp_graph_t *g, const char *name, osp_dtype_t dt,
                        int rank, const int64_t *dims) {
    if (rank > OSP_MAX_RANK)
        return OSP_EUNSUPPORTED;
    osp_value_t *grown_ =
        osp_grow(g->values, &g->cap_values, g->n_values, sizeof *grown_, 64);
    if (!grown_)
        return OSP_ENOMEM;
    g->values = grown_;
    int idx = g->n_values;
    osp_value_t *v = &g->values[idx];
    memset(v, 0, sizeof *v);
    char synth[32];
    if (!name || !*name) {
        snprintf(synth, sizeof synth, "v%d", idx);
        name = synth;
    }
    v->name = dupstr(name);
    if (!v->name)
        return OSP_ENOMEM;
    v->dtype = dt;
    v->rank = rank;
    for (int i = 0; i < rank && dims; i++)
        v->dims[i] = dims[i];
    v->producer = -1;
    g->n_values++;
    return idx;
}

int osp_graph_find_value(const osp_graph_t *g, const char *name) {
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0)
            return i;
    return -1;
}

void osp_graph_set_const(osp_graph_t *g, int v, void *data, size_t bytes) {
    OSP_ASSERT(v >= 0 && v < g->n_values);
    osp_value_t *val = &g->values[v];
    if (!val->data_borrowed)
        free(val->data);
    val->data_borrowed = false;
    val->data = data;
    val->data_bytes = bytes;
    val->producer = -1;
}

int osp_graph_add_node(osp_graph_t *g, osp_op_t op, const char *name,
                       const int *in, int n_in, const int *out, int n_out) {
    osp_node_t *grown_ =
        osp_grow(g->nodes, &g->cap_nodes, g->n_nodes, sizeof *grown_, 64);
    if (!grown_)
        return OSP_ENOMEM;
    g->nodes = grown_;
    int idx = g->n_nodes;
    osp_node_t *n = &g->nodes[idx];
    memset(n, 0, sizeof *n);
    n->op = op;
    char synth[48];
    if (!name || !*name) {
        snprintf(synth, sizeof synth, "%s_%d", osp_op_name(op), idx);
        name = synth;
    }
    n->name = dupstr(name);
    n->in = malloc(sizeof(int) * (size_t)(n_in > 0 ? n_in : 1));
    n->out = malloc(sizeof(int) * (size_t)(n_out > 0 ? n_out : 1));
    if (!n->name || !n->in || !n->out) {
        node_fini(n);
        return OSP_ENOMEM;
    }
    if (n_in)
        memcpy(n->in, in, sizeof(int) * (size_t)n_in);
    if (n_out)
        memcpy(n->out, out, sizeof(int) * (size_t)n_out);
    n->n_in = n_in;
    n->n_out = n_out;
    for (int i = 0; i < n_out; i++)
        if (out[i] >= 0)
            g->values[out[i]].producer = idx;
    g->n_nodes++;
    return idx;
}

static int *dup_ints(const int *a, int n) {
    int *d = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (d && n > 0)
        memcpy(d, a, sizeof(int) * (size_t)n);
    return d;
}

osp_graph_t *osp_graph_clone(const osp_graph_t *g) {
    osp_graph_t *c = osp_graph_create();
    if (!c)
        return NULL;
    c->values = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->values);
    c->nodes = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *c->nodes);
    c->cap_values = g->n_values ? g->n_values : 1;
    c->cap_nodes = g->n_nodes ? g->n_nodes : 1;
    c->inputs = dup_ints(g->inputs, g->n_inputs);
    c->outputs = dup_ints(g->outputs, g->n_outputs);
    c->n_inputs = g->n_inputs;
    c->n_outputs = g->n_outputs;
    c->opset = g->opset;
    c->quantized = g->quantized;
    c->ptq = g->ptq;
    c->name = g->name ? dupstr(g->name) : NULL;
    c->producer = g->producer ? dupstr(g->producer) : NULL;
    if (!c->values || !c->nodes || !c->inputs || !c->outputs)
        goto fail;
    for (int i = 0; i < g->n_values; i++) {
        const osp_value_t *v = &g->values[i];
        osp_value_t *d = &c->values[i];
        *d = *v;
        d->name = NULL;
        d->quant = NULL;
        d->data_borrowed = v->data != NULL;
        c->n_values = i + 1;
        d->name = dupstr(v->name);
        if (!d->name)
            goto fail;
        if (v->quant && osp_graph_set_quant(c, i, v->quant->axis,
                                            v->quant->count, v->quant->scale,
                                            v->quant->zero_point) != 0)
            goto fail;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        osp_node_t *d = &c->nodes[i];
        *d = *n;
        d->name = NULL;
        d->in = d->out = NULL;
        c->n_nodes = i + 1;
        d->name = dupstr(n->name);
        d->in = dup_ints(n->in, n->n_in);
        d->out = dup_ints(n->out, n->n_out);
        if (!d->name || !d->in || !d->out)
            goto fail;
    }
    return c;
fail:
    osp_graph_destroy(c);
    return NULL;
}

void osp_graph_remove_node(osp_graph_t *g, int n) {
    OSP_ASSERT(n >= 0 && n < g->n_nodes);
    g->nodes[n].op = OSP_OP_NONE;
    for (int i = 0; i < g->nodes[n].n_out; i++) {
        int v = g->nodes[n].out[i];
        if (v >= 0 && g->values[v].producer == n)
            g->values[v].producer = -1;
    }
}

int osp_graph_use_count(const osp_graph_t *g, int v) {
    int c = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        for (int j = 0; j < n->n_in; j++)
            c += n->in[j] == v;
    }
    for (int i = 0; i < g->n_outputs; i++)
        c += g->outputs[i] == v;
    return c;
}

void osp_graph_replace_uses(osp_graph_t *g, int from, int to) {
    for (int i = 0; i < g->n_nodes; i++) {
        osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] == from)
                n->in[j] = to;
        for (int j = 0; j < n->n_post; j++)
            if (n->post[j].kind == OSP_POST_SUM && n->post[j].sum_value == from)
                n->post[j].sum_value = to;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == from)
            g->outputs[i] = to;
}

int osp_graph_set_quant(osp_graph_t *g, int v, int axis, int count,
                        const float *scale, const int32_t *zero_point) {
    OSP_ASSERT(v >= 0 && v < g->n_values && count > 0);
    osp_quant_t *q = calloc(1, sizeof *q);
    if (!q)
        return OSP_ENOMEM;
    q->axis = axis;
    q->count = count;
    q->scale = malloc(sizeof(float) * (size_t)count);
    q->zero_point = malloc(sizeof(int32_t) * (size_t)count);
    if (!q->scale || !q->zero_point) {
        quant_free(q);
        return OSP_ENOMEM;
    }
    memcpy(q->scale, scale, sizeof(float) * (size_t)count);
    if (zero_point)
        memcpy(q->zero_point, zero_point, sizeof(int32_t) * (size_t)count);
    else
        memset(q->zero_point, 0, sizeof(int32_t) * (size_t)count);
    quant_free(g->values[v].quant);
    g->values[v].quant = q;
    return 0;
}

int osp_graph_compact(osp_graph_t *g) {
    int rc = OSP_ENOMEM;
    int *vmap = malloc(sizeof(int) * (size_t)(g->n_values ? g->n_values : 1));
    char *used = calloc((size_t)(g->n_values ? g->n_values : 1), 1);
    int *nmap = malloc(sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1));
    if (!vmap || !used || !nmap)
        goto out;
    for (int i = 0; i < g->n_nodes; i++) {
        osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0)
                used[n->in[j]] = 1;
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] >= 0)
                used[n->out[j]] = 1;
    }
    for (int i = 0; i < g->n_inputs; i++)
        used[g->inputs[i]] = 1;
    for (int i = 0; i < g->n_outputs; i++)
        used[g->outputs[i]] = 1;
    /* nodes */
    int nn = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op == OSP_OP_NONE) {
            node_fini(&g->nodes[i]);
            nmap[i] = -1;
            continue;
        }
        nmap[i] = nn;
        if (nn != i)
            g->nodes[nn] = g->nodes[i];
        nn++;
    }
    g->n_nodes = nn;
    /* values */
    int nv = 0;
    for (int i = 0; i < g->n_values; i++) {
        if (!used[i]) {
            value_fini(&g->values[i]);
            vmap[i] = -1;
            continue;
        }
        vmap[i] = nv;
        if (nv != i)
            g->values[nv] = g->values[i];
        osp_value_t *v = &g->values[nv];
        v->producer = v->producer >= 0 ? nmap[v->producer] : -1;
        nv++;
    }
    g->n_values = nv;
    for (int i = 0; i < g->n_nodes; i++) {
        osp_node_t *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++)
            n->in[j] = n->in[j] >= 0 ? vmap[n->in[j]] : -1;
        for (int j = 0; j < n->n_out; j++)
            n->out[j] = n->out[j] >= 0 ? vmap[n->out[j]] : -1;
        for (int j = 0; j < n->n_post; j++)
            if (n->post[j].kind == OSP_POST_SUM)
                n->post[j].sum_value = vmap[n->post[j].sum_value];
    }
    for (int i = 0; i < g->n_inputs; i++)
        g->inputs[i] = vmap[g->inputs[i]];
    for (int i = 0; i < g->n_outputs; i++)
        g->outputs[i] = vmap[g->outputs[i]];
    rc = 0;
out:
    free(vmap);
    free(used);
    free(nmap);
    return rc;
}

static void dump_value(const osp_graph_t *g, int v, FILE *f) {
    if (v < 0) {
        fputs("<none>", f);
        return;
    }
    const osp_value_t *val = &g->values[v];
    fprintf(f, "%%%d:%s", v, osp_dtype_name(val->dtype));
    if (val->rank >= 0) {
        fputc('[', f);
        for (int i = 0; i < val->rank; i++)
            fprintf(f, i ? ",%lld" : "%lld", (long long)val->dims[i]);
        fputc(']', f);
    }
    if (val->data)
        fputs("=const", f);
}

void osp_graph_dump(const osp_graph_t *g, FILE *f) {
    fprintf(f, "graph %s (opset %lld): %d nodes, %d values\n",
            g->name ? g->name : "?", (long long)g->opset, g->n_nodes,
            g->n_values);
    for (int i = 0; i < g->n_inputs; i++) {
        fprintf(f, "  input %s ", g->values[g->inputs[i]].name);
        dump_value(g, g->inputs[i], f);
        fputc('\n', f);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        fprintf(f, "  [%d] %s %s(", i, n->name, osp_op_name(n->op));
        for (int j = 0; j < n->n_in; j++) {
            if (j)
                fputs(", ", f);
            dump_value(g, n->in[j], f);
        }
        fputs(") -> ", f);
        for (int j = 0; j < n->n_out; j++) {
            if (j)
                fputs(", ", f);
            dump_value(g, n->out[j], f);
        }
        for (int j = 0; j < n->n_post; j++) {
            const osp_post_op_t *p = &n->post[j];
            if (p->kind == OSP_POST_SUM)
                fprintf(f, " +sum(%%%d)", p->sum_value);
            else
                fprintf(f, " +%s", osp_act_name(p->act));
        }
        fputc('\n', f);
    }
    for (int i = 0; i < g->n_outputs; i++) {
        fprintf(f, "  output %s ", g->values[g->outputs[i]].name);
        dump_value(g, g->outputs[i], f);
        fputc('\n', f);
    }
}
