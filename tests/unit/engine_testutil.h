/* engine_testutil.h — helpers for the engine's unit tests (test_engine*.c,
 * test_lanes.c, the int8 tests test_dnnl_qconv.c, test_qconv_f32.c,
 * test_quantize.c and others): build small IR graphs by hand (float and
 * quantized nodes), evaluate them node by node with the reference kernels
 * (the semantic ground truth), and run them through
 * osp_engine_from_graph/osp_engine_run for comparison. One copy of each
 * helper, so that the tests build and run graphs the same way. */
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
    const osp_cpu_caps_t *k = osp__cpu_caps();
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

/* Makes value v the graph's next input. */
static inline void tu_mark_input(osp_graph_t *g, int v) {
    g->values[v].is_input = true;
    int *ni = realloc(g->inputs, sizeof(int) * (size_t)(g->n_inputs + 1));
    assert_non_null(ni);
    g->inputs = ni;
    g->inputs[g->n_inputs++] = v;
}

/* A graph input; dims may contain -1 (dynamic batch). */
static inline int tu_input(osp_graph_t *g, const char *name, int rank,
                           const int64_t *dims) {
    int v = osp_graph_add_value(g, name, OSP_DT_F32, rank, dims);
    assert_true(v >= 0);
    tu_mark_input(g, v);
    return v;
}

/* A graph input of dtype dt quantized per tensor (scale, zero point zp). */
static inline int tu_input_q(osp_graph_t *g, const char *name, osp_dtype_t dt,
                             int rank, const int64_t *dims, float scale,
                             int32_t zp) {
    int v = tu_value_q(g, name, dt, rank, dims, scale, zp);
    tu_mark_input(g, v);
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

/* How many nodes of g are `op`. */
static inline int tu_count_op(const osp_graph_t *g, osp_op_t op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += g->nodes[i].op == op;
    return n;
}

/* The rest of a quantized CONV or GEMM node once its input and weights
 * exist: the weights' scales (one per output channel, or one per tensor)
 * with zero point zw, an s32 bias, the output value (dtype ydt, quantized
 * per tensor) made the graph's output, and a RELU6 clamp if asked. */
typedef struct tu_qnode_s {
    int64_t o;        /* output channels */
    bool per_channel; /* weight scales per output channel (axis 0) */
    int32_t zw;       /* the weights' zero point */
    osp_dtype_t ydt;  /* output: S8 or U8 */
    float sy;         /* output scale */
    int32_t zy;       /* output zero point */
    bool relu6;       /* fused clamp to [0, 6] */
} tu_qnode_t;

/* Adds node `op` (CONV or GEMM) on input x and constant weights w, as
 * described by p; scales 0.004 + 0.003·(r + 1) and biases 3000·r draw r
 * from *seed, in that order. Returns the node's index (the caller sets its
 * conv or gemm parameters). */
static inline int tu_qnode(osp_graph_t *g, osp_op_t op, int x, int w,
                           const tu_qnode_t *p, uint32_t *seed) {
    int nch = p->per_channel ? (int)p->o : 1;
    float *ws = malloc(sizeof(float) * (size_t)nch);
    int32_t *wz = malloc(sizeof(int32_t) * (size_t)nch);
    assert_true(ws && wz);
    for (int i = 0; i < nch; i++) {
        ws[i] = 0.004f + 0.003f * (tu_rand(seed) + 1.f);
        wz[i] = p->zw;
    }
    assert_int_equal(osp_graph_set_quant(g, w, p->per_channel ? 0 : -1, nch,
                                         ws, wz), 0);
    free(ws);
    free(wz);
    int b = osp_graph_add_value(g, "b", OSP_DT_S32, 1, D(p->o));
    int32_t *bd = malloc(sizeof(int32_t) * (size_t)p->o);
    assert_non_null(bd);
    for (int64_t i = 0; i < p->o; i++)
        bd[i] = (int32_t)(tu_rand(seed) * 3000.f);
    osp_graph_set_const(g, b, bd, sizeof(int32_t) * (size_t)p->o);
    int y = tu_value_q(g, "y", p->ydt, -1, NULL, p->sy, p->zy);
    int in[3] = {x, w, b};
    int ni = osp_graph_add_node(g, op, "q", in, 3, &y, 1);
    assert_true(ni >= 0);
    if (p->relu6) {
        g->nodes[ni].n_post = 1;
        g->nodes[ni].post[0] =
            (osp_post_op_t){OSP_POST_ACT, OSP_ACT_CLIP, 0.f, 6.f, 0};
    }
    tu_output(g, y);
    return ni;
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

/* n random bytes, each (r + 1)·127.9 truncated: a quantized input of
 * either signedness (caller frees). */
static inline uint8_t *tu_bytes(size_t n, uint32_t seed) {
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(int)((tu_rand(&seed) + 1.f) * 127.9f);
    return b;
}

/* Max |difference| in quantization steps between two 8-bit outputs of
 * dtype dt (S8 or U8); *ndiff counts the elements that differ. */
static inline int tu_q_steps(osp_dtype_t dt, const uint8_t *a,
                             const uint8_t *b, size_t n, size_t *ndiff) {
    int maxd = 0;
    *ndiff = 0;
    for (size_t i = 0; i < n; i++) {
        int u = dt == OSP_DT_S8 ? (int8_t)a[i] : a[i];
        int v = dt == OSP_DT_S8 ? (int8_t)b[i] : b[i];
        int d = abs(u - v);
        maxd = d > maxd ? d : maxd;
        *ndiff += d != 0;
    }
    return maxd;
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

/* oneDNN's int8 convolutions (and osprey's own int8 kernels, which run on
 * their path) are taken only where they are exact: VNNI (dnnl_qconv.c), as
 * the engine sees the CPU under the ceiling. */
static inline bool tu_vnni(void) { return osp__cpu_caps()->avx512_vnni; }

/* osp_engine_from_graph (g's ownership taken); fails the test with the
 * engine's message when it cannot be built. */
static inline osp_engine_t *tu_engine(osp_graph_t *g,
                                      const osp_engine_opts_t *o) {
    osp_err_t err = {0};
    osp_engine_t *e = osp_engine_from_graph(g, o, &err);
    if (!e)
        fail_msg("engine: %s", err.msg);
    return e;
}

/* Runs g (ownership taken) once on 2 threads with `tuning`, on one input
 * of dtype xdt, rank dims and bytes x; returns the first output's bytes
 * (malloc'd, *ny of them) and the plan description in *desc (malloc'd).
 * `name` labels a failure. */
static inline uint8_t *tu_run_bytes(osp_graph_t *g,
                                    const osp_engine_tuning_t *tuning,
                                    osp_dtype_t xdt, int rank,
                                    const int64_t *dims, const void *x,
                                    const char *name, size_t *ny,
                                    char **desc) {
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 2;
    o.tuning = *tuning;
    osp_engine_t *e = tu_engine(g, &o);
    osp_tensor_t in = {.dtype = xdt, .rank = rank, .data = (void *)x};
    memcpy(in.dims, dims, sizeof(int64_t) * (size_t)rank);
    osp_tensor_t out;
    osp_err_t err = {0};
    int rc = osp_engine_run(e, &in, 1, &out, 1, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", name, err.msg);
    assert_int_equal(rc, 0);
    *ny = osp_tensor_numel(&out) * osp_dtype_size(out.dtype);
    uint8_t *r = malloc(*ny ? *ny : 1);
    assert_non_null(r);
    memcpy(r, out.data, *ny);
    *desc = strdup(osp_engine_describe(e));
    osp_engine_destroy(e);
    return r;
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
    osp_engine_t *e = osp_engine_from_graph(g, &o, &err);
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
