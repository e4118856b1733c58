/* onnx_conformance.c — runs the ONNX backend node tests (Debian's
 * libonnx-testdata: DIR/test_* /model.onnx + test_data_set_* /{input,output}_*.pb)
 * through osprey's engine and compares outputs.
 *
 * A test whose model does not load with OSP_EUNSUPPORTED is a skip, listed
 * with its reason (an op, attribute or dtype we do not take); any other
 * outcome that is not a match is a failure. Exit status is non-zero when
 * anything failed or when fewer than --min-pass tests passed (so a regression
 * that makes everything "unsupported" cannot pass silently).
 *
 * usage: onnx_conformance [--data DIR] [--filter SUBSTR] [--min-pass N]
 *                         [--rtol R] [--atol A] [--quiet-skips] */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/import/onnx_import.h"
#include "osprey/engine.h"

#define MAX_IO 16

static double g_rtol = 1e-3, g_atol = 1e-5;

/* dir + "/" + name into out; paths that do not fit are reported, not cut. */
static int join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of entries in dir starting with prefix. Caller frees. */
static int list_dir(const char *dir, const char *prefix, char ***out) {
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d)
        return 0;
    int n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, sizeof(char *) * (size_t)cap);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, (size_t)n, sizeof(char *), cmp_names);
    *out = names;
    return n;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static int load_pb(const char *path, osp_tensor_t *t, osp_err_t *err) {
    uint8_t *buf;
    size_t len;
    int rc = osp_read_file(path, 1u << 30, &buf, &len, err);
    if (rc)
        return rc;
    rc = osp_onnx_parse_tensor(buf, len, t, NULL, err);
    free(buf);
    return rc;
}

static double elem(const osp_tensor_t *t, size_t i) {
    switch (t->dtype) {
    case OSP_DT_F32: return ((const float *)t->data)[i];
    case OSP_DT_U8: return ((const uint8_t *)t->data)[i];
    case OSP_DT_S8: return ((const int8_t *)t->data)[i];
    case OSP_DT_S32: return ((const int32_t *)t->data)[i];
    case OSP_DT_S64: return (double)((const int64_t *)t->data)[i];
    case OSP_DT_BOOL: return ((const uint8_t *)t->data)[i];
    default: return NAN;
    }
}

/* Compares an engine output with the expected tensor; fills why. */
static int compare(const osp_tensor_t *got, const osp_tensor_t *want,
                   char *why, size_t cap) {
    if (got->dtype != want->dtype) {
        snprintf(why, cap, "dtype %s, expected %s", osp_dtype_name(got->dtype),
                 osp_dtype_name(want->dtype));
        return -1;
    }
    int same = got->rank == want->rank;
    for (int i = 0; same && i < got->rank; i++)
        same = got->dims[i] == want->dims[i];
    if (!same) {
        char a[128] = "", b[128] = "";
        for (int i = 0; i < got->rank; i++)
            snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld",
                     i ? "," : "", (long long)got->dims[i]);
        for (int i = 0; i < want->rank; i++)
            snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld",
                     i ? "," : "", (long long)want->dims[i]);
        snprintf(why, cap, "shape [%s], expected [%s]", a, b);
        return -1;
    }
    size_t n = osp_tensor_numel(want);
    bool exact = want->dtype != OSP_DT_F32;
    for (size_t i = 0; i < n; i++) {
        double g = elem(got, i), w = elem(want, i);
        if (isnan(w) && isnan(g))
            continue;
        if (isinf(w) && g == w)
            continue;
        double tol = exact ? 0 : g_atol + g_rtol * fabs(w);
        if (!(fabs(g - w) <= tol)) {
            snprintf(why, cap, "element %zu is %.9g, expected %.9g", i, g, w);
            return -1;
        }
    }
    return 0;
}

typedef enum { R_PASS, R_FAIL, R_SKIP } result_t;

static result_t run_test(const char *dir, char *why, size_t cap) {
    char path[4096];
    osp_err_t err = {0};
    osp_engine_opts_t opts;
    osp_engine_opts_init(&opts);
    opts.threads = 1;
    opts.precision = OSP_PREC_FP32;
    join(path, sizeof path, dir, "model.onnx");
    osp_engine_t *e = osp_engine_load(path, &opts, &err);
    if (!e) {
        snprintf(why, cap, "%s", err.msg);
        return err.code == OSP_EUNSUPPORTED ? R_SKIP : R_FAIL;
    }
    result_t res = R_PASS;
    char **sets;
    int n_sets = list_dir(dir, "test_data_set_", &sets);
    if (n_sets == 0) {
        snprintf(why, cap, "no test_data_set_* directories");
        res = R_FAIL;
    }
    for (int s = 0; s < n_sets && res == R_PASS; s++) {
        char set_dir[4096];
        join(set_dir, sizeof set_dir, dir, sets[s]);
        char **ins, **outs;
        int n_in = list_dir(set_dir, "input_", &ins);
        int n_out = list_dir(set_dir, "output_", &outs);
        osp_tensor_t in[MAX_IO] = {0}, want[MAX_IO] = {0}, got[MAX_IO] = {0};
        if (n_in > MAX_IO || n_out > MAX_IO ||
            n_in != osp_engine_num_inputs(e) ||
            n_out != osp_engine_num_outputs(e)) {
            snprintf(why, cap,
                     "%s: %d inputs/%d outputs in data, model declares %d/%d",
                     sets[s], n_in, n_out, osp_engine_num_inputs(e),
                     osp_engine_num_outputs(e));
            res = R_FAIL;
        }
        for (int i = 0; res == R_PASS && i < n_in; i++) {
            join(path, sizeof path, set_dir, ins[i]);
            if (load_pb(path, &in[i], &err)) {
                /* Inputs of a dtype we do not support: the model loaded only
                 * because its declared input types were checked loosely. */
                snprintf(why, cap, "%s: %s", ins[i], err.msg);
                res = err.code == OSP_EUNSUPPORTED ? R_SKIP : R_FAIL;
            }
        }
        for (int i = 0; res == R_PASS && i < n_out; i++) {
            join(path, sizeof path, set_dir, outs[i]);
            if (load_pb(path, &want[i], &err)) {
                snprintf(why, cap, "%s: %s", outs[i], err.msg);
                res = err.code == OSP_EUNSUPPORTED ? R_SKIP : R_FAIL;
            }
        }
        if (res == R_PASS) {
            int rc = osp_engine_run(e, in, n_in, got, n_out, &err);
            if (rc) {
                snprintf(why, cap, "%s: run: %s", sets[s], err.msg);
                res = rc == OSP_EUNSUPPORTED ? R_SKIP : R_FAIL;
            }
        }
        for (int i = 0; res == R_PASS && i < n_out; i++) {
            char w[512];
            if (compare(&got[i], &want[i], w, sizeof w)) {
                snprintf(why, cap, "%s output %d: %s", sets[s], i, w);
                res = R_FAIL;
            }
        }
        for (int i = 0; i < MAX_IO; i++) {
            free(in[i].data);
            free(want[i].data);
        }
        free_list(ins, n_in);
        free_list(outs, n_out);
    }
    free_list(sets, n_sets);
    osp_engine_destroy(e);
    return res;
}

int main(int argc, char **argv) {
    const char *data = "/usr/share/libonnx-testdata/data/node";
    const char *filter = NULL;
    int min_pass = 0, quiet_skips = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
        else if (!strcmp(argv[i], "--min-pass") && i + 1 < argc)
            min_pass = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rtol") && i + 1 < argc)
            g_rtol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--atol") && i + 1 < argc)
            g_atol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quiet-skips"))
            quiet_skips = 1;
        else {
            fprintf(stderr, "usage: %s [--data DIR] [--filter SUBSTR] "
                            "[--min-pass N] [--rtol R] [--atol A] "
                            "[--quiet-skips]\n", argv[0]);
            return 2;
        }
    }
    char **tests;
    int n = list_dir(data, "test_", &tests);
    if (n == 0) {
        fprintf(stderr, "no tests found in %s\n", data);
        return 2;
    }
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        if (filter && !strstr(tests[i], filter))
            continue;
        char dir[4096], why[1024] = "";
        join(dir, sizeof dir, data, tests[i]);
        result_t r = run_test(dir, why, sizeof why);
        if (r == R_PASS) {
            passed++;
            printf("PASS %s\n", tests[i]);
        } else if (r == R_FAIL) {
            failed++;
            printf("FAIL %s: %s\n", tests[i], why);
        } else {
            skipped++;
            if (!quiet_skips)
                printf("SKIP %s: %s\n", tests[i], why);
        }
        fflush(stdout);
    }
    printf("\nconformance: %d passed, %d failed, %d skipped\n", passed,
           failed, skipped);
    if (passed < min_pass) {
        printf("only %d tests passed; at least %d must (a regression made "
               "supported tests skip?)\n",
               passed, min_pass);
        return 1;
    }
    free_list(tests, n);
    return failed ? 1 : 0;
}
