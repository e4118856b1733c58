/* test_ref_onnx_node.c — runs the ONNX conformance node tests (Debian's
 * libonnx-testdata: data/node/test_* with model.onnx and
 * test_data_set_0/{input,output}_N.pb) through the importer, shape inference
 * and the reference kernels, and compares with the expected outputs.
 *
 * Models the importer rejects (ops or attributes osprey does not support)
 * are counted as skipped; every model it accepts must give the expected
 * answer, except the few listed in `known` with the reason. The data
 * directory is $OSP_ONNX_NODE_TESTS or /usr/share/libonnx-testdata/data/node;
 * without it the test is skipped (exit 77). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ir/ir.h"
#include "engine/ops/kernels.h"
#include "engine/import/onnx_import.h"
#include "engine/ops/ref.h"

/* Accepted by the importer but expected to differ, with why. */
static const struct {
    const char *name, *why;
} known[] = {
    {NULL, NULL},
};

static const char *known_reason(const char *name) {
    for (size_t i = 0; known[i].name; i++)
        if (!strcmp(known[i].name, name))
            return known[i].why;
    return NULL;
}

static int load_tensor(const char *path, osp_tensor_t *t, osp_err_t *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = osp_read_file(path, 64u << 20, &buf, &len, err);
    if (rc < 0)
        return rc;
    char *name = NULL;
    rc = osp_onnx_parse_tensor(buf, len, t, &name, err);
    free(name);
    free(buf);
    return rc;
}

/* Compares got with want: same dtype and shape, values within the ONNX
 * backend-test tolerance (rtol 1e-3, atol 1e-5 for floats; exact for ints). */
static int compare(const osp_value_t *got, const osp_tensor_t *want,
                   char *msg, size_t msz) {
    if (got->dtype != want->dtype) {
        snprintf(msg, msz, "dtype %s, want %s", osp_dtype_name(got->dtype),
                 osp_dtype_name(want->dtype));
        return -1;
    }
    if (got->rank != want->rank) {
        snprintf(msg, msz, "rank %d, want %d", got->rank, want->rank);
        return -1;
    }
    for (int i = 0; i < got->rank; i++)
        if (got->dims[i] != want->dims[i]) {
            snprintf(msg, msz, "dim %d is %lld, want %lld", i,
                     (long long)got->dims[i], (long long)want->dims[i]);
            return -1;
        }
    osp_tensor_t g = osp_value_tensor(got);
    bool fl = want->dtype == OSP_DT_F32 || want->dtype == OSP_DT_F16 ||
              want->dtype == OSP_DT_BF16;
    for (size_t i = 0; i < osp_tensor_numel(want); i++) {
        if (fl) {
            double a = osp_tensor_get_f64(&g, i), b = osp_tensor_get_f64(want, i);
            if (a != a && b != b)
                continue;
            if (!(fabs(a - b) <= 1e-5 + 1e-3 * fabs(b))) {
                snprintf(msg, msz, "element %zu: %.7g, want %.7g", i, a, b);
                return -1;
            }
        } else if (osp_tensor_get_i64(&g, i) != osp_tensor_get_i64(want, i)) {
            snprintf(msg, msz, "element %zu: %lld, want %lld", i,
                     (long long)osp_tensor_get_i64(&g, i),
                     (long long)osp_tensor_get_i64(want, i));
            return -1;
        }
    }
    return 0;
}

/* Returns 1 pass, 0 skipped, -1 fail (msg says why). */
static int run_one(const char *dir, char *msg, size_t msz) {
    char path[1024];
    osp_err_t err = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    int result = -1;
    osp_graph_t *g = NULL;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (osp_read_file(path, 64u << 20, &buf, &len, &err) < 0) {
        snprintf(msg, msz, "read: %s", err.msg);
        return 0;
    }
    g = osp_onnx_import(buf, len, &err);
    free(buf);
    if (!g) {
        snprintf(msg, msz, "import: %s", err.msg);
        return 0;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op != OSP_OP_NONE &&
            !osp_ref_supports(g, &g->nodes[i])) {
            snprintf(msg, msz, "node %s unsupported", g->nodes[i].name);
            result = 0;
            goto out;
        }
    /* Feed the inputs as constants. */
    for (int i = 0; i < g->n_inputs; i++) {
        osp_tensor_t t;
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, i);
        if (load_tensor(path, &t, &err) < 0) {
            snprintf(msg, msz, "input %d: %s", i, err.msg);
            result = 0;
            goto out;
        }
        osp_value_t *v = &g->values[g->inputs[i]];
        v->dtype = t.dtype;
        v->rank = t.rank;
        memcpy(v->dims, t.dims, sizeof v->dims);
        osp_graph_set_const(g, g->inputs[i], t.data,
                            osp_tensor_numel(&t) * osp_dtype_size(t.dtype));
    }
    /* Interpret node by node. */
    for (int i = 0; i < g->n_nodes; i++) {
        osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        if (osp_infer_node(g, i, &err) < 0) {
            snprintf(msg, msz, "infer: %s", err.msg);
            goto out;
        }
        osp_tensor_t in[16], out[4];
        if (n->n_in > 16 || n->n_out > 4) {
            snprintf(msg, msz, "too many inputs/outputs");
            goto out;
        }
        for (int j = 0; j < n->n_in; j++) {
            memset(&in[j], 0, sizeof in[j]);
            if (n->in[j] >= 0)
                in[j] = osp_value_tensor(&g->values[n->in[j]]);
        }
        for (int j = 0; j < n->n_out; j++) {
            memset(&out[j], 0, sizeof out[j]);
            if (n->out[j] < 0)
                continue;
            osp_value_t *v = &g->values[n->out[j]];
            size_t bytes = osp_value_numel(v) * osp_dtype_size(v->dtype);
            out[j] = osp_value_tensor(v);
            out[j].data = calloc(1, bytes ? bytes : 1);
            osp_graph_set_const(g, n->out[j], out[j].data, bytes);
        }
        if (osp_ref_run_node(g, n, in, out, &err) < 0) {
            snprintf(msg, msz, "run: %s", err.msg);
            goto out;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        osp_tensor_t want;
        snprintf(path, sizeof path, "%s/test_data_set_0/output_%d.pb", dir, i);
        if (load_tensor(path, &want, &err) < 0) {
            snprintf(msg, msz, "output %d: %s", i, err.msg);
            result = 0;
            goto out;
        }
        char why[256];
        int rc = compare(&g->values[g->outputs[i]], &want, why, sizeof why);
        free(want.data);
        if (rc < 0) {
            snprintf(msg, msz, "output %d: %s", i, why);
            goto out;
        }
    }
    result = 1;
out:
    osp_graph_destroy(g);
    return result;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
    const char *root = getenv("OSP_ONNX_NODE_TESTS");
    if (!root)
        root = "/usr/share/libonnx-testdata/data/node";
    DIR *d = opendir(root);
    if (!d) {
        printf("SKIP: no ONNX node tests at %s (install libonnx-testdata or "
               "set OSP_ONNX_NODE_TESTS)\n",
               root);
        return 77;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int pass = 0, skip = 0, fail = 0, expected = 0;
    const char *verbose = getenv("OSP_VERBOSE");
    for (size_t i = 0; i < n; i++) {
        char dir[768], msg[OSP_ERR_MSG_BYTES + 64];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        msg[0] = 0;
        int r = run_one(dir, msg, sizeof msg);
        const char *why = known_reason(names[i]);
        if (r > 0) {
            pass++;
            if (verbose)
                printf("pass %s\n", names[i]);
            if (why)
                printf("UNEXPECTED PASS %s (listed as known: %s)\n", names[i],
                       why);
        } else if (r == 0) {
            skip++;
            if (verbose)
                printf("skip %s: %s\n", names[i], msg);
        } else if (why) {
            expected++;
            printf("known %s: %s (%s)\n", names[i], msg, why);
        } else {
            fail++;
            printf("FAIL %s: %s\n", names[i], msg);
        }
        free(names[i]);
    }
    free(names);
    printf("onnx node tests: %d passed, %d failed, %d known, %d skipped "
           "(not imported/supported)\n",
           pass, fail, expected, skip);
    return fail ? 1 : 0;
}
