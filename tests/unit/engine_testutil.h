/* engine_testutil.h — helpers for the executor tests (test_engine*.c):
 * build small IR graphs by hand, evaluate them node by node with the
 * reference kernels (the semantic ground truth), and run them through
 * osp__engine_from_graph/osp_engine_run for comparison. */
#ifndef OSP_TEST_ENGINE_TESTUTIL_H
#define OSP_TEST_ENGINE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "engine/ir/ir.h"
#include "engine/ops/kernels.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define I(...) ((const int[]){__VA_ARGS__})

/* A test program's own options: `--max-isa X` (CTest's *_avx2 variants)
 * sets the process's ISA ceiling before any engine exists, so every engine
 * of the test, built with default options, runs under it (the ceiling is
 * process-wide: cpu.c). Exits 2 on anything else. Call first in main. */
static inline void tu_args(int argc, char **argv) {
    osp_isa_t isa = OSP_ISA_AUTO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--max-isa") && i + 1 < argc &&
            osp_isa_parse(argv[i + 1], &isa) == 0) {
            i++;
            continue;
        }
        fprintf(stderr, "%s: usage: %s [--max-isa ISA]\n", argv[0], argv[0]);
        exit(2);
    }
    osp_err_t err = {0};
    if (osp__cpu_isa_apply(isa, &err) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        exit(1);
    }
    const osp__cpu_caps_t *k = osp__cpu_caps();
    printf("ISA %s (ceiling %s; this CPU: %s)\n", osp_isa_name(k->isa),
           osp_isa_name(k->ceiling), osp_isa_name(k->cpu));
}

/* Deterministic pseudo-random floats in [-1, 1). */
static inline float tu_rand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 23) - 1.0f;
}

static inline size_t tu_numel(int rank, const int64_t *dims) {
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    return n;
}

/* A constant f32 tensor filled with scale * random. */
static inline int tu_const(osp_graph_t *g, const char *name, int rank,
                           const int64_t *dims, float scale, uint32_t seed) {
    int v = osp_graph_add_value(g, name, OSP_DT_F32, rank, dims);
    assert_true(v >= 0);
    size_t n = tu_numel(rank, dims);
    float *d = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = scale * tu_rand(&seed);
    osp_graph_set_const(g, v, d, n * sizeof(float));
    return v;
}

static inline int tu_const_i64(osp_graph_t *g, int rank, const int64_t *dims,
                               const int64_t *data) {
    int v = osp_graph_add_value(g, NULL, OSP_DT_S64, rank, dims);
    assert_true(v >= 0);
    size_t n = tu_numel(rank, dims);
    int64_t *d = malloc(sizeof(int64_t) * (n ? n : 1));
    memcpy(d, data, sizeof(int64_t) * n);
    osp_graph_set_const(g, v, d, n * sizeof(int64_t));
    return v;
}

/* A value of dtype dt quantized per tensor (scale, zero point zp). */
static inline int tu_value_q(osp_graph_t *g, const char *name, osp_dtype_t dt,
                             int rank, const int64_t *dims, float scale,
                             int32_t zp) {
    int v = osp_graph_add_value(g, name, dt, rank, dims);
    assert_true(v >= 0);
    assert_int_equal(osp_graph_set_quant(g, v, -1, 1, &scale, &zp), 0);
    return v;
}

/* A graph input; dims may contain -1 (dynamic batch). */
static inline int tu_input(osp_graph_t *g, const char *name, int rank,
                           const int64_t *dims) {
    int v = osp_graph_add_value(g, name, OSP_DT_F32, rank, dims);
    assert_true(v >= 0);
    g->values[v].is_input = true;
    int *ni = realloc(g->inputs, sizeof(int) * (size_t)(g->n_inputs + 1));
    assert_non_null(ni);
    g->inputs = ni;
    g->inputs[g->n_inputs++] = v;
    return v;
}

static inline void tu_output(osp_graph_t *g, int v) {
    g->values[v].is_output = true;
    int *no = realloc(g->outputs, sizeof(int) * (size_t)(g->n_outputs + 1));
    assert_non_null(no);
    g->outputs = no;
    g->outputs[g->n_outputs++] = v;
}

/* Adds a node with one fresh output value (shape left to inference). */
static inline int tu_node(osp_graph_t *g, osp_op_t op, const int *in, int n_in,
                          int *node_out) {
    int y = osp_graph_add_value(g, NULL, OSP_DT_UNDEF, -1, NULL);
    assert_true(y >= 0);
    int n = osp_graph_add_node(g, op, NULL, in, n_in, &y, 1);
    assert_true(n >= 0);
    if (node_out)
        *node_out = n;
    return y;
}

static inline osp_window_t tu_win2(int64_t k, int64_t s, int64_t d,
                                   int64_t pt, int64_t pl, int64_t pb,
                                   int64_t pr) {
    osp_window_t w;
    memset(&w, 0, sizeof w);
    w.n_spatial = 2;
    w.kernel[0] = w.kernel[1] = k;
    w.stride[0] = w.stride[1] = s;
    w.dilation[0] = w.dilation[1] = d;
    w.pad_begin[0] = pt;
    w.pad_begin[1] = pl;
    w.pad_end[0] = pb;
    w.pad_end[1] = pr;
    return w;
}

/* Conv with constant weights [O, C/group, k, k] and optional bias. */
static inline int tu_conv(osp_graph_t *g, int x, int64_t c, int64_t o,
                          int64_t k, int64_t group, osp_window_t w,
                          bool bias, uint32_t seed, int *node) {
    float scale = 1.0f / sqrtf((float)(c / group * k * k));
    int wt = tu_const(g, NULL, 4, D(o, c / group, k, k), scale, seed);
    int in[3] = {x, wt, -1};
    int n_in = 2;
    if (bias)
        in[n_in++] = tu_const(g, NULL, 1, D(o), 0.1f, seed + 1);
    int ni;
    int y = tu_node(g, OSP_OP_CONV, in, n_in, &ni);
    w.kernel[0] = w.kernel[1] = 0; /* from the weights */
    g->nodes[ni].p.conv.win = w;
    g->nodes[ni].p.conv.group = group;
    if (node)
        *node = ni;
    return y;
}

/* Evaluates graph g (not modified) on inputs with the reference kernels,
 * node by node. Returns malloc'd output buffers (caller frees each and the
 * array) and fills out tensors' shapes. */
static inline float **tu_ref_eval(const osp_graph_t *g0,
                                  const osp_tensor_t *inputs,
                                  osp_tensor_t *outs) {
    osp_graph_t *g = osp_graph_clone(g0);
    assert_non_null(g);
    for (int i = 0; i < g->n_inputs; i++) {
        osp_value_t *v = &g->values[g->inputs[i]];
        for (int d = 0; d < v->rank; d++)
            v->dims[d] = inputs[i].dims[d];
    }
    osp_err_t err = {0};
    if (osp_infer_shapes(g, &err) < 0)
        fail_msg("ref infer: %s", err.msg);
    void **data = calloc((size_t)g->n_values, sizeof(void *));
    assert_non_null(data);
    for (int i = 0; i < g->n_inputs; i++) {
        size_t bytes = osp_tensor_numel(&inputs[i]) * sizeof(float);
        data[g->inputs[i]] = malloc(bytes);
        memcpy(data[g->inputs[i]], inputs[i].data, bytes);
    }
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const osp_node_t *n = &g->nodes[ni];
        if (n->op == OSP_OP_NONE)
            continue;
        osp_tensor_t ti[16], to[4];
        memset(ti, 0, sizeof ti);
        memset(to, 0, sizeof to);
        for (int i = 0; i < n->n_in; i++) {
            if (n->in[i] < 0)
                continue;
            const osp_value_t *v = &g->values[n->in[i]];
            ti[i].dtype = v->dtype;
            ti[i].rank = v->rank;
            memcpy(ti[i].dims, v->dims, sizeof ti[i].dims);
            ti[i].data = v->data ? v->data : data[n->in[i]];
            ti[i].name = v->name;
        }
        for (int i = 0; i < n->n_out; i++) {
            const osp_value_t *v = &g->values[n->out[i]];
            to[i].dtype = v->dtype;
            to[i].rank = v->rank;
            memcpy(to[i].dims, v->dims, sizeof to[i].dims);
            size_t bytes = osp_value_numel(v) * osp_dtype_size(v->dtype);
            data[n->out[i]] = calloc(1, bytes ? bytes : 1);
            to[i].data = data[n->out[i]];
        }
        if (osp_ref_run_node(g, n, ti, to, &err) < 0)
            fail_msg("ref run %s: %s", n->name, err.msg);
    }
    float **res = calloc((size_t)g->n_outputs, sizeof(float *));
    for (int i = 0; i < g->n_outputs; i++) {
        const osp_value_t *v = &g->values[g->outputs[i]];
        size_t bytes = osp_value_numel(v) * sizeof(float);
        res[i] = malloc(bytes ? bytes : 1);
        memcpy(res[i], v->data ? v->data : data[g->outputs[i]], bytes);
        memset(&outs[i], 0, sizeof outs[i]);
        outs[i].dtype = v->dtype;
        outs[i].rank = v->rank;
        memcpy(outs[i].dims, v->dims, sizeof outs[i].dims);
        outs[i].data = res[i];
    }
    for (int i = 0; i < g->n_values; i++)
        free(data[i]);
    free(data);
    osp_graph_destroy(g);
    return res;
}

/* Random f32 input tensor (caller frees data). */
static inline osp_tensor_t tu_tensor(int rank, const int64_t *dims,
                                     uint32_t seed) {
    osp_tensor_t t;
    memset(&t, 0, sizeof t);
    t.dtype = OSP_DT_F32;
    t.rank = rank;
    memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
    size_t n = tu_numel(rank, dims);
    float *d = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        d[i] = tu_rand(&seed);
    t.data = d;
    return t;
}

/* max |a-b| relative to max |b|. */
static inline double tu_rel_diff(const float *a, const float *b, size_t n) {
    double md = 0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md))
            md = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > mb)
            mb = fabs((double)b[i]);
    }
    return md / mb;
}

static inline double tu_cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / (sqrt(aa * bb) + 1e-30);
}

/* Runs g (ownership taken) through the engine in `prec` on the inputs and
 * compares each output with the reference evaluation: max|diff| <= tol *
 * max|ref| (fp32), or cosine >= min_cos (bf16). Returns the engine's
 * describe text in *desc if non-NULL (caller frees). */
static inline void tu_check(osp_graph_t *g, const osp_tensor_t *inputs,
                            osp_precision_t prec, double tol, double min_cos,
                            char **desc) {
    osp_tensor_t refs[8];
    int n_out = g->n_outputs;
    assert_true(n_out <= 8);
    float **ref = tu_ref_eval(g, inputs, refs);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.precision = prec;
    osp_err_t err = {0};
    osp_engine_t *e = osp__engine_from_graph(g, &o, &err);
    if (!e)
        fail_msg("engine: %s", err.msg);
    osp_tensor_t outs[8];
    /* Twice: the second run reuses the plan and must give the same. */
    for (int rep = 0; rep < 2; rep++) {
        if (osp_engine_run(e, inputs, e->g->n_inputs, outs, n_out, &err) < 0)
            fail_msg("run: %s\n%s", err.msg, osp_engine_describe(e));
        for (int i = 0; i < n_out; i++) {
            assert_int_equal(outs[i].dtype, OSP_DT_F32);
            assert_int_equal(outs[i].rank, refs[i].rank);
            for (int d = 0; d < refs[i].rank; d++)
                assert_int_equal(outs[i].dims[d], refs[i].dims[d]);
            size_t n = osp_tensor_numel(&refs[i]);
            if (prec == OSP_PREC_FP32) {
                double r = tu_rel_diff(outs[i].data, ref[i], n);
                if (!(r <= tol))
                    fail_msg("output %d: rel diff %g > %g\n%s", i, r, tol,
                             osp_engine_describe(e));
            } else {
                double c = tu_cosine(outs[i].data, ref[i], n);
                if (!(c >= min_cos))
                    fail_msg("output %d: cosine %g < %g\n%s", i, c, min_cos,
                             osp_engine_describe(e));
            }
        }
    }
    if (getenv("OSP_TEST_VERBOSE"))
        fputs(osp_engine_describe(e), stderr);
    if (desc) {
        const char *d = osp_engine_describe(e);
        *desc = strdup(d);
    }
    for (int i = 0; i < n_out; i++)
        free(ref[i]);
    free(ref);
    osp_engine_destroy(e);
}

#endif
