/* ref_testutil.h — helpers for the shape-inference, folding and reference-
 * kernel unit tests (test_shape*.c, test_ref_*.c): build a one-node graph
 * whose inputs are constants, infer + fold it (which runs the reference
 * kernel), and compare the folded output with expected values.
 *
 * Inputs made by one_in_f32() follow a deterministic pattern that the
 * expected values were computed from (with onnxruntime as the oracle):
 *   x[i] = (((i*7 + seed*5 + 3) % 13) - 6) * 0.25 */
#ifndef OSP_TEST_REF_TESTUTIL_H
#define OSP_TEST_REF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ir/ir.h"
#include "engine/ops/kernels.h"
#include "engine/ops/ref.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})

typedef struct one_s {
    osp_graph_t *g;
    int in[16];
    int n_in;
    int node;
    int out[4];
} one_t;

static inline float pat(size_t i, int seed) {
    return (float)((int)((i * 7 + (size_t)seed * 5 + 3) % 13) - 6) * 0.25f;
}

static inline one_t one_new(void) {
    one_t o;
    memset(&o, 0, sizeof o);
    o.g = osp_graph_create();
    assert_non_null(o.g);
    o.node = -1;
    return o;
}

static inline int one_const(one_t *o, osp_dtype_t dt, int rank,
                            const int64_t *dims, const void *data) {
    int v = osp_graph_add_value(o->g, NULL, dt, rank, dims);
    assert_true(v >= 0);
    size_t bytes = osp_value_numel(&o->g->values[v]) * osp_dtype_size(dt);
    void *d = malloc(bytes ? bytes : 1);
    assert_non_null(d);
    if (bytes)
        memcpy(d, data, bytes);
    osp_graph_set_const(o->g, v, d, bytes);
    o->in[o->n_in++] = v;
    return v;
}

/* f32 input with the pattern above. */
static inline int one_in_f32(one_t *o, int rank, const int64_t *dims,
                             int seed) {
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    float *d = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        d[i] = pat(i, seed);
    int v = one_const(o, OSP_DT_F32, rank, dims, d);
    free(d);
    return v;
}

static inline int one_in_i64(one_t *o, int rank, const int64_t *dims,
                             const int64_t *data) {
    return one_const(o, OSP_DT_S64, rank, dims, data);
}

static inline void one_absent(one_t *o) { o->in[o->n_in++] = -1; }

/* Adds the node (outputs of unknown shape); the caller then sets params. */
static inline osp_node_t *one_node(one_t *o, osp_op_t op) {
    o->out[0] = osp_graph_add_value(o->g, "y", OSP_DT_UNDEF, -1, NULL);
    o->node = osp_graph_add_node(o->g, op, "n0", o->in, o->n_in, o->out, 1);
    assert_true(o->node >= 0);
    return &o->g->nodes[o->node];
}

/* Infers, folds; returns the folded output value (asserts success). */
static inline const osp_value_t *one_run(one_t *o) {
    osp_err_t err = {0};
    int rc = osp_infer_shapes(o->g, &err);
    if (rc < 0)
        fail_msg("infer: %s", err.msg);
    rc = osp_fold_constants(o->g, 0, &err);
    if (rc < 0)
        fail_msg("fold: %s", err.msg);
    assert_int_equal(o->g->nodes[o->node].op, OSP_OP_NONE);
    const osp_value_t *y = &o->g->values[o->out[0]];
    assert_non_null(y->data);
    return y;
}

/* Expects the run to fail with `code` and a message containing `frag`. */
static inline void one_fail(one_t *o, int code, const char *frag) {
    osp_err_t err = {0};
    int rc = osp_infer_shapes(o->g, &err);
    if (rc == 0)
        rc = osp_fold_constants(o->g, 0, &err);
    if (rc != code || !strstr(err.msg, frag))
        fail_msg("expected %d '%s', got %d '%s'", code, frag, rc, err.msg);
    osp_graph_destroy(o->g);
}

static inline void check_shape(const osp_value_t *y, int rank,
                               const int64_t *dims) {
    assert_int_equal(y->rank, rank);
    for (int i = 0; i < rank; i++)
        if (y->dims[i] != dims[i])
            fail_msg("dim %d: got %lld want %lld", i, (long long)y->dims[i],
                     (long long)dims[i]);
}

/* Runs, checks shape and f32 values (abs/rel tolerance), destroys. */
static inline void one_check_f32(one_t *o, int rank, const int64_t *dims,
                                 const float *want, float tol) {
    const osp_value_t *y = one_run(o);
    check_shape(y, rank, dims);
    assert_int_equal(y->dtype, OSP_DT_F32);
    const float *got = y->data;
    size_t n = osp_value_numel(y);
    for (size_t i = 0; i < n; i++) {
        float t = tol * (1.0f + fabsf(want[i]));
        if (!(fabsf(got[i] - want[i]) <= t) &&
            !(isnan(want[i]) && isnan(got[i])))
            fail_msg("element %zu: got %.7g want %.7g", i, got[i], want[i]);
    }
    osp_graph_destroy(o->g);
}

static inline void one_check_i64(one_t *o, int rank, const int64_t *dims,
                                 const int64_t *want) {
    const osp_value_t *y = one_run(o);
    check_shape(y, rank, dims);
    assert_int_equal(y->dtype, OSP_DT_S64);
    const int64_t *got = y->data;
    for (size_t i = 0; i < osp_value_numel(y); i++)
        if (got[i] != want[i])
            fail_msg("element %zu: got %lld want %lld", i, (long long)got[i],
                     (long long)want[i]);
    osp_graph_destroy(o->g);
}

/* Runs, checks shape, dtype and exact bytes (integer outputs). */
static inline void one_check_raw(one_t *o, osp_dtype_t dt, int rank,
                                 const int64_t *dims, const void *want) {
    const osp_value_t *y = one_run(o);
    check_shape(y, rank, dims);
    assert_int_equal(y->dtype, dt);
    size_t es = osp_dtype_size(dt);
    for (size_t i = 0; i < osp_value_numel(y); i++)
        if (memcmp((const char *)y->data + i * es,
                   (const char *)want + i * es, es) != 0) {
            int64_t g = 0, w = 0;
            osp_tensor_t t = osp_value_tensor(y);
            g = osp_tensor_get_i64(&t, i);
            t.data = (void *)want;
            w = osp_tensor_get_i64(&t, i);
            fail_msg("element %zu: got %lld want %lld", i, (long long)g,
                     (long long)w);
        }
    osp_graph_destroy(o->g);
}

/* Interprets a whole graph with the reference kernels: every node's
 * outputs become constants in turn (inputs must already carry data). */
static inline int ref_interpret(osp_graph_t *g, osp_err_t *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        osp_node_t *nd = &g->nodes[i];
        if (nd->op == OSP_OP_NONE)
            continue;
        int rc = osp_infer_node(g, i, err);
        if (rc < 0)
            return rc;
        osp_tensor_t in[16], out[4];
        if (nd->n_in > 16 || nd->n_out > 4)
            return osp_err_set(err, OSP_EUNSUPPORTED, "node arity");
        for (int j = 0; j < nd->n_in; j++) {
            memset(&in[j], 0, sizeof in[j]);
            if (nd->in[j] >= 0)
                in[j] = osp_value_tensor(&g->values[nd->in[j]]);
        }
        for (int j = 0; j < nd->n_out; j++) {
            memset(&out[j], 0, sizeof out[j]);
            if (nd->out[j] < 0)
                continue;
            osp_value_t *v = &g->values[nd->out[j]];
            size_t b = osp_value_numel(v) * osp_dtype_size(v->dtype);
            out[j] = osp_value_tensor(v);
            out[j].data = calloc(1, b ? b : 1);
            if (!out[j].data)
                return OSP_ENOMEM;
            osp_graph_set_const(g, nd->out[j], out[j].data, b);
        }
        rc = osp_ref_run_node(g, nd, in, out, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

#endif
