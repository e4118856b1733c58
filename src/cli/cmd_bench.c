/* cmd_bench.c — `osprey bench`: measures the engine on one model (throughput,
 * per-batch latency percentiles, load time, peak RSS, the precision actually
 * used) and, with --compare-ort, ONNX Runtime on the same model, batch and
 * threads in the same invocation.
 *
 * With --compare-model PATH (e.g. the fp32 ONNX twin of a quantized TFLite
 * model) osprey also runs that model (--compare-precision, default fp32) in
 * the same rounds, and --compare-ort then runs ORT on that model, so one
 * invocation gives int8 vs our fp32 vs ORT fp32 under the same noise.
 *
 * Why interleaved: this runs on shared, noisy machines. With --compare-ort the
 * timed seconds are split into rounds; each round runs osprey for its share,
 * then asks an already-loaded ORT (bench/ort/ort-bench.js in serve mode, a
 * child `node` process idle between commands) to run for the same share. A
 * neighbour's burst then hits both engines alike, and the ratio is fair.
 * Method and results: docs/performance.md.
 *
 * Settings: flags, OSPREY_BENCH_* and a JSON file (--config FILE) through the
 * settings layer (settings.h), plus the engine's knobs (tuning.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "cli/tuning.h"
#include "osprey/common.h"
#include "osprey/engine.h"
#include "osprey/model.h"

/* Defaults (the option rows below say them in --help). */
#define BENCH_DEFAULT_SECONDS 10.0 /* timed seconds per engine */
#define BENCH_DEFAULT_WARMUP 3     /* untimed runs after prepare */
#define BENCH_DEFAULT_ROUNDS 4     /* interleaved slots with --compare-ort */
#define BENCH_ORT_READY_MS 600000  /* ORT load + warm-up limit (ASan, 100 MB) */
#define BENCH_ORT_SLACK_MS 120000  /* extra time allowed per ORT slot */
#define BENCH_LINE_BYTES 65536     /* longest JSON line accepted from node */

typedef struct bench_opts_s {
    const char *model;
    int batch;
    int threads;
    osp_precision_t precision;
    double seconds;
    int warmup;
    int rounds;
    bool json;
    bool compare_ort;
    bool verbose;
    const char *compare_model;       /* second osprey model, or NULL */
    osp_precision_t compare_precision;
    const char *calibration;         /* int8 on float models: images */
    int calibration_count;
    osp_engine_tuning_t tuning;      /* --engine-*, OSPREY_ENGINE_* */
} bench_opts_t;

/* Latency samples in milliseconds; grown between runs, never inside one. */
typedef struct bench_samples_s {
    double *ms;
    size_t n, cap;
} bench_samples_t;

typedef struct bench_stats_s {
    size_t iterations;
    double total_ms, p50_ms, p99_ms, mean_ms, img_per_s;
} bench_stats_t;

/* The ORT child: a `node ort-bench.js --serve` process and its pipes. */
typedef struct ort_peer_s {
    pid_t pid;
    int to_fd, from_fd;
    char buf[BENCH_LINE_BYTES];
    size_t len;      /* bytes buffered */
    size_t consumed; /* bytes of the line last returned, dropped next call */
    double load_ms;
} ort_peer_t;

static int parse_precision(void *base, const char *v) {
    return osp_precision_parse(v, &((bench_opts_t *)base)->precision);
}

static int parse_compare_precision(void *base, const char *v) {
    return osp_precision_parse(v, &((bench_opts_t *)base)->compare_precision);
}

#define O(f) offsetof(bench_opts_t, f)
static const osp_setting_t opts[] = {
    {.name = "model", .short_name = 'm', .kind = OSP_SET_STR, .off = O(model), .arg = "PATH", .help = "model file (.onnx or .tflite; required)"},
    {.name = "batch", .short_name = 'b', .kind = OSP_SET_INT, .off = O(batch), .min = 1, .max = 1 << 16, .help = "images per run: the input's first dim (default 1)"},
    {.name = "threads", .short_name = 't', .kind = OSP_SET_INT, .off = O(threads), .max = 1024, .arg = "T", .help = "inference threads (default 0: the CPUs available)"},
    {.name = "precision", .short_name = 'p', .kind = OSP_SET_FN, .parse = parse_precision, .arg = "fp32|bf16|int8|auto", .help = "default auto"},
    {.name = "seconds", .short_name = 's', .kind = OSP_SET_DOUBLE, .off = O(seconds), .max = 86400, .arg = "S", .help = "timed seconds per engine (default 10)"},
    {.name = "warmup", .short_name = 'w', .kind = OSP_SET_INT, .off = O(warmup), .max = 100000, .help = "untimed runs after the plan is made (default 3)"},
    {.name = "json", .short_name = 'j', .kind = OSP_SET_BOOL, .off = O(json), .help = "print one JSON object"},
    {.name = "compare-ort", .short_name = 'c', .kind = OSP_SET_BOOL, .off = O(compare_ort), .help = "also run ONNX Runtime (node + onnxruntime-node, bench/ort/ort-bench.js) on the same model, batch and threads"},
    {.name = "rounds", .short_name = 'r', .kind = OSP_SET_INT, .off = O(rounds), .min = 1, .max = 1000, .arg = "R", .help = "interleaved rounds with --compare-ort or --compare-model (default 4)"},
    {.name = "compare-model", .short_name = 'M', .kind = OSP_SET_STR, .off = O(compare_model), .arg = "PATH", .help = "a second model run with osprey in the same rounds, and by ORT instead of --model (a quantized TFLite model vs its fp32 ONNX twin)"},
    {.name = "compare-precision", .short_name = 'P', .kind = OSP_SET_FN, .parse = parse_compare_precision, .arg = "fp32|bf16|int8|auto", .help = "--compare-model's precision (default fp32)"},
    {.name = "verbose", .short_name = 'v', .kind = OSP_SET_BOOL, .off = O(verbose), .help = "the engine's plan and choices on stderr"},
    {.name = "calibration", .short_name = 'C', .kind = OSP_SET_STR, .off = O(calibration), .arg = "DIR", .help = "--precision int8 on a float (ONNX) model: quantize at load from these images"},
    {.name = "calibration-count", .short_name = 'N', .kind = OSP_SET_INT, .off = O(calibration_count), .min = 1, .max = 100000, .help = "the first N calibration images in name order (default 32)"},
};
#undef O

static int samples_push(bench_samples_t *s, double ms) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        double *p = realloc(s->ms, cap * sizeof(*p));
        if (!p)
            return OSP_ENOMEM;
        s->ms = p;
        s->cap = cap;
    }
    s->ms[s->n++] = ms;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile: the same definition as ort-bench.js. */
static double percentile(const double *sorted, size_t n, double q) {
    if (n == 0)
        return 0;
    double r = ceil(q * (double)n) - 1;
    size_t i = r < 0 ? 0 : (size_t)r;
    return sorted[i < n ? i : n - 1];
}

static void stats_compute(bench_samples_t *s, int batch, bench_stats_t *st) {
    memset(st, 0, sizeof(*st));
    st->iterations = s->n;
    for (size_t i = 0; i < s->n; i++)
        st->total_ms += s->ms[i];
    qsort(s->ms, s->n, sizeof(double), cmp_double);
    st->p50_ms = percentile(s->ms, s->n, 0.50);
    st->p99_ms = percentile(s->ms, s->n, 0.99);
    st->mean_ms = s->n ? st->total_ms / (double)s->n : 0;
    st->img_per_s =
        st->total_ms > 0 ? (double)batch * (double)s->n * 1000.0 / st->total_ms
                         : 0;
}

/* Peak resident set of this process (not of the node child), in MB. */
static double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is KiB on Linux */
    return 0;
}

/* ---- random inputs --------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static double rng_unit(uint64_t *s) {
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static void fill_random(osp_tensor_t *t, uint64_t *seed) {
    size_t n = osp_tensor_numel(t);
    switch (t->dtype) {
    case OSP_DT_F32: {
        float *p = t->data;
        for (size_t i = 0; i < n; i++) { /* Box-Muller: ~N(0,1) */
            double u = rng_unit(seed), v = rng_unit(seed);
            if (u < 1e-300)
                u = 1e-300;
            p[i] = (float)(sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v));
        }
        break;
    }
    case OSP_DT_U8:
    case OSP_DT_S8: {
        uint8_t *p = t->data;
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)rng_next(seed);
        break;
    }
    default: /* integer index inputs etc.: zeros are always in range */
        memset(t->data, 0, n * osp_dtype_size(t->dtype));
        break;
    }
}

/* numpy/ORT spelling of a dtype, or NULL if ort-bench cannot make one. */
static const char *ort_dtype(osp_dtype_t dt) {
    switch (dt) {
    case OSP_DT_F32: return "float32";
    case OSP_DT_U8: return "uint8";
    case OSP_DT_S8: return "int8";
    case OSP_DT_S32: return "int32";
    case OSP_DT_S64: return "int64";
    default: return NULL;
    }
}

/* "name:dtype:1x3x224x224", as ort-bench.js --input expects. */
static void input_spec(const osp_tensor_t *t, char *buf, size_t cap) {
    const char *dt = ort_dtype(t->dtype);
    int n = snprintf(buf, cap, "%s:%s:", t->name ? t->name : "",
                     dt ? dt : osp_dtype_name(t->dtype));
    for (int d = 0; d < t->rank && n > 0 && (size_t)n < cap; d++)
        n += snprintf(buf + n, cap - (size_t)n, "%s%lld", d ? "x" : "",
                      (long long)t->dims[d]);
}

/* Declared input shapes with the batch substituted into dim 0. */
static int make_inputs(osp_engine_t *e, int batch, osp_tensor_t **out,
                       int *n_out, osp_err_t *err) {
    int n = osp_engine_num_inputs(e);
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    osp_tensor_t *in = calloc((size_t)(n > 0 ? n : 1), sizeof(*in));
    if (!in)
        return osp_err_set(err, OSP_ENOMEM, "allocating %d inputs", n);
    for (int i = 0; i < n; i++) {
        const osp_tensor_t *decl = osp_engine_input(e, i);
        in[i] = *decl;
        in[i].data = NULL;
        for (int d = 0; d < in[i].rank; d++) {
            if (d == 0) {
                in[i].dims[0] = batch;
            } else if (in[i].dims[d] <= 0) {
                osp_err_set(err, OSP_EUNSUPPORTED,
                            "input %d (%s) has dynamic dim %d; osprey bench "
                            "only substitutes the batch (dim 0)",
                            i, decl->name ? decl->name : "?", d);
                goto fail;
            }
        }
        size_t bytes = osp_tensor_numel(&in[i]) * osp_dtype_size(in[i].dtype);
        if (bytes == 0) {
            osp_err_set(err, OSP_EUNSUPPORTED, "input %d (%s) has dtype %s",
                        i, decl->name ? decl->name : "?",
                        osp_dtype_name(in[i].dtype));
            goto fail;
        }
        in[i].data = malloc(bytes);
        if (!in[i].data) {
            osp_err_set(err, OSP_ENOMEM, "allocating input %d (%zu bytes)", i,
                        bytes);
            goto fail;
        }
        fill_random(&in[i], &seed);
    }
    *out = in;
    *n_out = n;
    return 0;
fail:
    for (int i = 0; i < n; i++)
        free(in[i].data);
    free(in);
    return err->code;
}

/* The engine of model path; with --calibration, through the model module,
 * which preprocesses the calibration images as the model's requests would
 * be (int8 on a float model quantizes at load). */
static osp_engine_t *bench_load(const bench_opts_t *o, const char *path,
                                const osp_engine_opts_t *eo, osp_err_t *err) {
    if (!o->calibration)
        return osp_engine_load(path, eo, err);
    osp_model_t *m = osp_model_open(path, NULL, NULL, err);
    if (!m)
        return NULL;
    osp_engine_t *e = NULL;
    if (osp_model_set_calibration(m, o->calibration, o->calibration_count,
                                  err) == 0)
        e = osp_model_load_engine(m, eo, err);
    osp_model_close(m);
    return e;
}

/* ---- the ORT peer ---------------------------------------------------------- */

/* True when a+b (concatenated into out) fits and names a regular file. */
static int is_file2(char *out, size_t cap, const char *a, const char *b) {
    struct stat st;
    int n = snprintf(out, cap, "%s%s", a, b);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return stat(out, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds ort-bench.js: $OSPREY_ORT_DIR, then bench/ort beside or above the
 * binary's directory (build/osprey -> <repo>/bench/ort), then $OSP_SOURCE_DIR,
 * then the current directory. */
static int find_ort_script(char *out, size_t cap, osp_err_t *err) {
    char exe[PATH_MAX];
    const char *env = getenv("OSPREY_ORT_DIR");
    if (env && *env) {
        if (is_file2(out, cap, env, "/ort-bench.js"))
            return 0;
        return osp_err_set(err, OSP_ENOENT,
                           "OSPREY_ORT_DIR=%s has no ort-bench.js", env);
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        static const char *const rel[] = {
            "/../bench/ort/ort-bench.js", "/../../bench/ort/ort-bench.js",
            "/bench/ort/ort-bench.js", "/../share/osprey/bench/ort/ort-bench.js"};
        for (size_t i = 0; i < OSP_ARRAY_LEN(rel); i++)
            if (is_file2(out, cap, exe, rel[i]))
                return 0;
    }
    env = getenv("OSP_SOURCE_DIR");
    if (env && *env) {
        if (is_file2(out, cap, env, "/bench/ort/ort-bench.js"))
            return 0;
    }
    if (is_file2(out, cap, "bench/ort/", "ort-bench.js"))
        return 0;
    return osp_err_set(err, OSP_ENOENT,
                       "cannot find bench/ort/ort-bench.js near %s; set "
                       "OSPREY_ORT_DIR to the directory holding it",
                       n > 0 ? exe : "the osprey binary");
}

/* Reads one '\n'-terminated line from the child within timeout_ms. Returns
 * the line (NUL-terminated, inside p->buf, valid until the next call), or
 * NULL on EOF/timeout/error with err set. */
static char *ort_read_line(ort_peer_t *p, int timeout_ms, osp_err_t *err) {
    if (p->consumed) {
        memmove(p->buf, p->buf + p->consumed, p->len - p->consumed);
        p->len -= p->consumed;
        p->consumed = 0;
    }
    uint64_t deadline = osp_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl) {
            *nl = 0;
            p->consumed = (size_t)(nl - p->buf) + 1;
            return p->buf;
        }
        if (p->len >= sizeof(p->buf) - 1) {
            osp_err_set(err, OSP_ELIMIT, "ort-bench printed a line longer "
                                         "than %d bytes", BENCH_LINE_BYTES);
            return NULL;
        }
        uint64_t now = osp_now_ns();
        if (now >= deadline) {
            osp_err_set(err, OSP_ETIMEDOUT,
                        "ONNX Runtime peer did not answer within %d s",
                        timeout_ms / 1000);
            return NULL;
        }
        struct pollfd pfd = {.fd = p->from_fd, .events = POLLIN};
        int left_ms = (int)((deadline - now) / 1000000ULL) + 1;
        int r = poll(&pfd, 1, left_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            osp_err_set(err, OSP_EIO, "poll on ONNX Runtime peer: %s",
                        strerror(errno));
            return NULL;
        }
        if (r == 0)
            continue;
        ssize_t got = read(p->from_fd, p->buf + p->len,
                           sizeof(p->buf) - 1 - p->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            osp_err_set(err, OSP_EIO, "ONNX Runtime peer exited early");
            return NULL;
        }
        p->len += (size_t)got;
    }
}

/* Reaps the child and turns its exit status into a clear message. */
static void ort_reap(ort_peer_t *p, osp_err_t *err) {
    int status = 0;
    if (p->pid <= 0)
        return;
    if (p->to_fd >= 0) {
        close(p->to_fd);
        p->to_fd = -1;
    }
    uint64_t deadline = osp_now_ns() + 5000000000ULL;
    pid_t r;
    while ((r = waitpid(p->pid, &status, WNOHANG)) == 0 &&
           osp_now_ns() < deadline)
        usleep(10000);
    if (r == 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
    }
    p->pid = -1;
    if (p->from_fd >= 0) {
        close(p->from_fd);
        p->from_fd = -1;
    }
    if (!err || err->code == 0 || !WIFEXITED(status))
        return;
    switch (WEXITSTATUS(status)) {
    case 127:
        osp_err_set(err, OSP_ENOENT,
                    "cannot run node (not installed or not on PATH); install "
                    "nodejs (scripts/install-deps.sh) or set OSPREY_NODE");
        break;
    case 3:
        osp_err_set(err, OSP_ENOENT,
                    "onnxruntime-node is not installed; run "
                    "scripts/setup-venv.sh (npm install --ignore-scripts in "
                    "bench/ort) or set NODE_PATH");
        break;
    case 4:
        osp_err_prefix(err, "ONNX Runtime failed on the model (see its "
                            "message above)");
        break;
    default:
        break;
    }
}

/* Starts `node ort-bench.js --serve ...` and waits until ORT has loaded the
 * model and warmed up. */
static int ort_start(ort_peer_t *p, const bench_opts_t *o, const char *model,
                     const osp_tensor_t *in, int n_in, osp_err_t *err) {
    char script[PATH_MAX], num[3][32];
    char specs[8][512];
    const char *argv[8 + 2 * 8 + 8];
    int to_child[2] = {-1, -1}, from_child[2] = {-1, -1};
    int argc = 0, rc;

    if (n_in > 8)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "--compare-ort supports at most 8 inputs (model "
                           "has %d)", n_in);
    for (int i = 0; i < n_in; i++) {
        if (!ort_dtype(in[i].dtype))
            return osp_err_set(err, OSP_EUNSUPPORTED,
                               "--compare-ort: input %d has dtype %s", i,
                               osp_dtype_name(in[i].dtype));
        input_spec(&in[i], specs[i], sizeof(specs[i]));
    }
    if ((rc = find_ort_script(script, sizeof(script), err)) < 0)
        return rc;
    const char *node = getenv("OSPREY_NODE");
    if (!node || !*node)
        node = "node";
    snprintf(num[0], sizeof(num[0]), "%d", o->batch);
    snprintf(num[1], sizeof(num[1]), "%d", o->threads);
    snprintf(num[2], sizeof(num[2]), "%d", o->warmup);
    argv[argc++] = node;
    argv[argc++] = script;
    argv[argc++] = "--serve";
    argv[argc++] = "--model";
    argv[argc++] = model;
    argv[argc++] = "--batch";
    argv[argc++] = num[0];
    argv[argc++] = "--threads";
    argv[argc++] = num[1];
    argv[argc++] = "--warmup";
    argv[argc++] = num[2];
    for (int i = 0; i < n_in; i++) {
        argv[argc++] = "--input";
        argv[argc++] = specs[i];
    }
    argv[argc] = NULL;

    if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(from_child, O_CLOEXEC) < 0) {
        rc = osp_err_set(err, OSP_EIO, "pipe: %s", strerror(errno));
        goto fail;
    }
    fflush(NULL);
    p->pid = fork();
    if (p->pid < 0) {
        rc = osp_err_set(err, OSP_EIO, "fork: %s", strerror(errno));
        goto fail;
    }
    if (p->pid == 0) {
        dup2(to_child[0], STDIN_FILENO);
        dup2(from_child[1], STDOUT_FILENO);
        execvp(node, (char *const *)argv);
        fprintf(stderr, "osprey bench: cannot run %s: %s\n", node,
                strerror(errno));
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    p->to_fd = to_child[1];
    p->from_fd = from_child[0];
    p->len = 0;
    p->consumed = 0;

    char *line = ort_read_line(p, BENCH_ORT_READY_MS, err);
    if (!line) {
        ort_reap(p, err);
        return err->code;
    }
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr);
    const char *ev = j ? json_string_value(json_object_get(j, "event")) : NULL;
    if (!ev || strcmp(ev, "ready") != 0) {
        json_decref(j);
        osp_err_set(err, OSP_EFORMAT, "unexpected line from ort-bench: %.200s",
                    line);
        ort_reap(p, err);
        return err->code;
    }
    p->load_ms = json_number_value(json_object_get(j, "load_ms"));
    json_decref(j);
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (to_child[i] >= 0)
            close(to_child[i]);
        if (from_child[i] >= 0)
            close(from_child[i]);
    }
    p->pid = -1;
    return rc;
}

static int ort_command(ort_peer_t *p, const char *cmd, int timeout_ms,
                       json_t **reply, osp_err_t *err) {
    size_t len = strlen(cmd), off = 0;
    while (off < len) {
        ssize_t w = write(p->to_fd, cmd + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            osp_err_set(err, OSP_EIO, "ONNX Runtime peer went away: %s",
                        strerror(errno));
            ort_reap(p, err);
            return err->code;
        }
        off += (size_t)w;
    }
    char *line = ort_read_line(p, timeout_ms, err);
    if (!line) {
        ort_reap(p, err);
        return err->code;
    }
    json_error_t jerr;
    *reply = json_loads(line, 0, &jerr);
    if (!*reply)
        return osp_err_set(err, OSP_EFORMAT,
                           "ort-bench printed invalid JSON (%s): %.200s",
                           jerr.text, line);
    return 0;
}

/* ---- osprey's own timed runs ---------------------------------------------- */

static int run_slot(osp_engine_t *e, const osp_tensor_t *in, int n_in,
                    osp_tensor_t *out, int n_out, double seconds,
                    bench_samples_t *s, osp_err_t *err) {
    uint64_t end = osp_now_ns() + (uint64_t)(seconds * 1e9);
    do { /* at least one run per slot */
        uint64_t t0 = osp_now_ns();
        int rc = osp_engine_run(e, in, n_in, out, n_out, err);
        uint64_t t1 = osp_now_ns();
        if (rc < 0)
            return rc;
        if ((rc = samples_push(s, (double)(t1 - t0) / 1e6)) < 0)
            return osp_err_set(err, rc, "recording latency samples");
    } while (osp_now_ns() < end);
    return 0;
}

static double jnum(json_t *o, const char *k) {
    return json_number_value(json_object_get(o, k));
}

/* ---- the command: parse → prepare → rounds → report ---------------------- */

/* One engine under test (--model, or --compare-model) with its inputs,
 * outputs and latency samples. */
typedef struct bench_side_s {
    const char *path;
    osp_engine_t *e;
    osp_tensor_t *in, *out;
    int n_in, n_out;
    bench_samples_t samples;
    bench_stats_t st;
    double load_ms, prepare_ms;
} bench_side_t;

typedef struct bench_s {
    bench_opts_t o;
    bench_side_t ours, cmp; /* cmp.e NULL without --compare-model */
    ort_peer_t *ort;        /* --compare-ort */
    json_t *ort_sum;        /* ORT's summary after the rounds */
} bench_t;

/* Loads path at precision, makes its inputs and plan, and warms it up.
 * Messages name --compare-model for the second side. 0 or < 0. */
static int side_prepare(bench_t *b, bench_side_t *sd, const char *path,
                        osp_precision_t precision) {
    const char *what = sd == &b->cmp ? "--compare-model " : "";
    osp_err_t err = {0};
    osp_engine_opts_t eo;
    osp_engine_opts_init(&eo);
    eo.threads = b->o.threads;
    eo.precision = precision;
    eo.verbose = b->o.verbose;
    eo.tuning = b->o.tuning;
    sd->path = path;
    uint64_t t0 = osp_now_ns();
    sd->e = bench_load(&b->o, path, &eo, &err);
    sd->load_ms = (double)(osp_now_ns() - t0) / 1e6;
    if (!sd->e || make_inputs(sd->e, b->o.batch, &sd->in, &sd->n_in, &err) < 0)
        goto fail;
    sd->n_out = osp_engine_num_outputs(sd->e);
    sd->out = calloc((size_t)(sd->n_out > 0 ? sd->n_out : 1), sizeof *sd->out);
    if (!sd->out) {
        osp_err_set(&err, OSP_ENOMEM, "out of memory");
        goto fail;
    }
    t0 = osp_now_ns();
    if (osp_engine_prepare(sd->e, b->o.batch, &err) < 0) {
        osp_err_prefix(&err, "preparing batch %d", b->o.batch);
        goto fail;
    }
    sd->prepare_ms = (double)(osp_now_ns() - t0) / 1e6;
    for (int i = 0; i < b->o.warmup; i++)
        if (osp_engine_run(sd->e, sd->in, sd->n_in, sd->out, sd->n_out,
                           &err) < 0) {
            osp_err_prefix(&err, "run");
            goto fail;
        }
    return 0;
fail:
    fprintf(stderr, "osprey bench: %s%s: %s\n", what, path, err.msg);
    return -1;
}

static void side_free(bench_side_t *sd) {
    for (int i = 0; i < sd->n_in; i++)
        free(sd->in[i].data);
    free(sd->in);
    free(sd->out);
    free(sd->samples.ms);
    if (sd->e)
        osp_engine_destroy(sd->e);
}

/* Starts the ORT peer on the compare model if any, else on --model. */
static int ort_begin(bench_t *b) {
    osp_err_t err = {0};
    const bench_side_t *sd = b->cmp.e ? &b->cmp : &b->ours;
    if (!(b->ort = calloc(1, sizeof *b->ort))) {
        fprintf(stderr, "osprey bench: out of memory\n");
        return -1;
    }
    b->ort->to_fd = b->ort->from_fd = -1;
    b->ort->pid = -1;
    if (ort_start(b->ort, &b->o, sd->path, sd->in, sd->n_in, &err) < 0) {
        fprintf(stderr, "osprey bench: --compare-ort: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* The timed seconds, split into interleaved rounds; then ORT's summary. */
static int bench_rounds(bench_t *b) {
    osp_err_t err = {0};
    double slot_s = b->o.seconds / b->o.rounds;
    bench_side_t *sides[] = {&b->ours, b->cmp.e ? &b->cmp : NULL};
    for (int r = 0; r < b->o.rounds; r++) {
        for (size_t k = 0; k < OSP_ARRAY_LEN(sides); k++)
            if (sides[k] && run_slot(sides[k]->e, sides[k]->in, sides[k]->n_in,
                                     sides[k]->out, sides[k]->n_out, slot_s,
                                     &sides[k]->samples, &err) < 0) {
                fprintf(stderr, "osprey bench: %srun: %s\n",
                        k ? "--compare-model " : "", err.msg);
                return -1;
            }
        if (!b->ort)
            continue;
        char cmd[64];
        json_t *reply = NULL;
        snprintf(cmd, sizeof(cmd), "run %.3f\n", slot_s);
        if (ort_command(b->ort, cmd, (int)(slot_s * 1000) + BENCH_ORT_SLACK_MS,
                        &reply, &err) < 0) {
            fprintf(stderr, "osprey bench: --compare-ort: %s\n", err.msg);
            return -1;
        }
        json_decref(reply);
    }
    if (b->ort && ort_command(b->ort, "done\n", BENCH_ORT_SLACK_MS,
                              &b->ort_sum, &err) < 0) {
        fprintf(stderr, "osprey bench: --compare-ort: %s\n", err.msg);
        return -1;
    }
    stats_compute(&b->ours.samples, b->o.batch, &b->ours.st);
    if (b->cmp.e)
        stats_compute(&b->cmp.samples, b->o.batch, &b->cmp.st);
    return 0;
}

/* Which path a quantized model's nodes took (describe's "int8 path:"),
 * or "". */
static void int8_path(osp_engine_t *e, char *out, size_t cap) {
    const char *desc = osp_engine_describe(e);
    const char *qp = desc ? strstr(desc, "int8 path: ") : NULL;
    out[0] = 0;
    if (qp) {
        qp += strlen("int8 path: ");
        snprintf(out, cap, "%.*s", (int)strcspn(qp, "\n"), qp);
    }
}

/* The ORT members of the JSON report. */
static void json_ort(const bench_t *b, json_t *res) {
    const bench_stats_t *st = &b->ours.st;
    double oi = jnum(b->ort_sum, "img_per_s");
    json_object_set_new(res, "rounds", json_integer(b->o.rounds));
    json_object_set_new(res, "order", json_string("interleaved"));
    json_object_set_new(res, "ort_img_per_s", json_real(oi));
    json_object_set_new(res, "ort_p50_ms", json_real(jnum(b->ort_sum, "p50_ms")));
    json_object_set_new(res, "ort_p99_ms", json_real(jnum(b->ort_sum, "p99_ms")));
    json_object_set_new(res, "ort_load_ms", json_real(b->ort->load_ms));
    json_object_set_new(res, "ort_rss_mb", json_real(jnum(b->ort_sum, "rss_mb")));
    json_object_set_new(res, "ort_iterations",
                        json_integer((json_int_t)jnum(b->ort_sum, "iterations")));
    json_t *ver = json_object_get(b->ort_sum, "ort_version");
    if (json_is_string(ver))
        json_object_set(res, "ort_version", ver);
    json_object_set_new(res, "ratio_vs_ort",
                        oi > 0 ? json_real(st->img_per_s / oi) : json_null());
}

/* The report as one JSON object (keys: docs/performance.md). */
static json_t *bench_json(const bench_t *b, const char *q8path, double rss_mb) {
    const bench_opts_t *o = &b->o;
    const bench_stats_t *st = &b->ours.st, *cst = &b->cmp.st;
    osp_engine_t *e = b->ours.e;
    json_t *res = json_object();
    json_object_set_new(res, "model", json_string(o->model));
    json_object_set_new(res, "batch", json_integer(o->batch));
    json_object_set_new(res, "threads", json_integer(osp_engine_threads(e)));
    json_object_set_new(res, "precision", json_string(osp_precision_name(osp_engine_precision(e))));
    json_object_set_new(res, "requested_precision",
                        json_string(osp_precision_name(o->precision)));
    /* the instruction sets the run used, under the ceiling (--max-isa) */
    json_object_set_new(res, "isa", json_string(osp_isa_name(osp_engine_isa(e))));
    json_object_set_new(res, "max_isa", json_string(osp_isa_name(o->tuning.max_isa)));
    json_object_set_new(res, "cpu_isa", json_string(osp_isa_name(osp_cpu_isa())));
    json_object_set_new(res, "img_per_s", json_real(st->img_per_s));
    json_object_set_new(res, "p50_ms", json_real(st->p50_ms));
    json_object_set_new(res, "p99_ms", json_real(st->p99_ms));
    json_object_set_new(res, "mean_ms", json_real(st->mean_ms));
    json_object_set_new(res, "load_ms", json_real(b->ours.load_ms));
    json_object_set_new(res, "choices", json_string(osp_engine_choices(e)));
    json_object_set_new(res, "prepare_ms", json_real(b->ours.prepare_ms));
    json_object_set_new(res, "rss_mb", json_real(rss_mb));
    json_object_set_new(res, "iterations", json_integer((json_int_t)st->iterations));
    json_object_set_new(res, "seconds", json_real(st->total_ms / 1000.0));
    json_object_set_new(res, "warmup", json_integer(o->warmup));
    json_t *ins = json_array();
    for (int i = 0; i < b->ours.n_in; i++) {
        char spec[512];
        input_spec(&b->ours.in[i], spec, sizeof(spec));
        json_array_append_new(ins, json_string(spec));
    }
    json_object_set_new(res, "inputs", ins);
    if (q8path[0])
        json_object_set_new(res, "int8_path", json_string(q8path));
    if (b->cmp.e) {
        json_object_set_new(res, "compare_model", json_string(o->compare_model));
        json_object_set_new(res, "compare_precision",
                            json_string(osp_precision_name(osp_engine_precision(b->cmp.e))));
        json_object_set_new(res, "compare_img_per_s", json_real(cst->img_per_s));
        json_object_set_new(res, "compare_p50_ms", json_real(cst->p50_ms));
        json_object_set_new(res, "ratio_vs_compare",
                            cst->img_per_s > 0 ? json_real(st->img_per_s / cst->img_per_s)
                                               : json_null());
        if (!b->ort_sum)
            json_object_set_new(res, "rounds", json_integer(o->rounds));
    }
    if (b->ort_sum)
        json_ort(b, res);
    return res;
}

/* The report as text lines. */
static void bench_print(const bench_t *b, const char *q8path, double rss_mb) {
    const bench_opts_t *o = &b->o;
    const bench_stats_t *st = &b->ours.st, *cst = &b->cmp.st;
    osp_engine_t *e = b->ours.e;
    printf("model       %s\n", o->model);
    printf("precision   %s (requested %s)\n",
           osp_precision_name(osp_engine_precision(e)),
           osp_precision_name(o->precision));
    printf("batch       %d   threads %d\n", o->batch, osp_engine_threads(e));
    printf("isa         %s   (ceiling %s; this CPU %s)\n",
           osp_isa_name(osp_engine_isa(e)),
           o->tuning.max_isa ? osp_isa_name(o->tuning.max_isa) : "none",
           osp_isa_name(osp_cpu_isa()));
    printf("load        %.1f ms   (plan for batch %d: %.1f ms)\n",
           b->ours.load_ms, o->batch, b->ours.prepare_ms);
    printf("throughput  %.1f img/s   (%zu runs, %.1f s timed)\n",
           st->img_per_s, st->iterations, st->total_ms / 1000.0);
    printf("latency     p50 %.2f ms   p99 %.2f ms   per batch of %d\n",
           st->p50_ms, st->p99_ms, o->batch);
    printf("peak RSS    %.1f MB\n", rss_mb);
    if (q8path[0])
        printf("int8 path   %s\n", q8path);
    if (*osp_engine_choices(e))
        printf("choices     %s\n", osp_engine_choices(e));
    if (b->cmp.e) {
        printf("compare     %s (osprey %s): %.1f img/s   p50 %.2f ms\n",
               o->compare_model,
               osp_precision_name(osp_engine_precision(b->cmp.e)),
               cst->img_per_s, cst->p50_ms);
        if (cst->img_per_s > 0)
            printf("ratio       %.2fx the compare model's throughput (%d "
                   "interleaved rounds)\n",
                   st->img_per_s / cst->img_per_s, o->rounds);
    }
    if (b->ort_sum) {
        double oi = jnum(b->ort_sum, "img_per_s");
        printf("ORT         %.1f img/s   p50 %.2f ms   p99 %.2f ms   load "
               "%.1f ms   peak RSS %.1f MB (node process%s)\n",
               oi, jnum(b->ort_sum, "p50_ms"), jnum(b->ort_sum, "p99_ms"),
               b->ort->load_ms, jnum(b->ort_sum, "rss_mb"),
               b->cmp.e ? "; on the compare model" : "");
        if (oi > 0)
            printf("ratio       %.2fx ORT throughput (%d interleaved rounds)\n",
                   st->img_per_s / oi, o->rounds);
    }
}

static int bench_report(const bench_t *b) {
    char q8path[256];
    int8_path(b->ours.e, q8path, sizeof q8path);
    double rss_mb = peak_rss_mb();
    if (!b->o.json) {
        bench_print(b, q8path, rss_mb);
        return 0;
    }
    json_t *res = bench_json(b, q8path, rss_mb);
    char *s = res ? json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                       JSON_REAL_PRECISION(6))
                  : NULL;
    json_decref(res);
    if (!s) {
        fprintf(stderr, "osprey bench: out of memory\n");
        return -1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

int osp_cli_bench(int argc, char **argv) {
    bench_t b = {.o = {.batch = 1,
                       .precision = OSP_PREC_AUTO,
                       .seconds = BENCH_DEFAULT_SECONDS,
                       .warmup = BENCH_DEFAULT_WARMUP,
                       .rounds = BENCH_DEFAULT_ROUNDS,
                       .compare_precision = OSP_PREC_FP32}};
    osp_cli_tuning_defaults(&b.o.tuning);
    osp_setting_t tab[OSP_ARRAY_LEN(opts) + OSP_CLI_TUNING_MAX];
    osp_settings_t st = {
        .cmd = "osprey bench", .env_prefix = "OSPREY_BENCH_", .tab = tab,
        .n = osp_cli_tuning_table(opts, OSP_ARRAY_LEN(opts),
                                  offsetof(bench_opts_t, tuning), tab),
        .base = &b.o,
        .synopsis = "--model PATH [--batch N] [--threads T] [--json]\n"
                    "                    [--compare-ort [--rounds R]] "
                    "[--compare-model PATH] [options]",
        .about = "Runs the model on random input of its declared input shape "
                 "(first dim =\nbatch) and prints images/s, p50/p99 latency "
                 "per batch, load time, peak\nRSS and the precision used; "
                 "quantized models print which int8 path ran.\n"
                 "--compare-ort and --compare-model run interleaved with "
                 "osprey in R rounds,\nso that a noisy neighbour hits both "
                 "alike.\n",
        .notes = "Also read: OSPREY_ORT_DIR (the directory holding "
                 "ort-bench.js) and OSPREY_NODE (the node binary)."};
    int rc;
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto out;
    if (!b.o.model) {
        rc = osp_settings_fail(&st, "--model is required");
        goto out;
    }
    if (b.o.threads == 0)
        b.o.threads = osp_cpus_available();
    if (!b.o.compare_ort && !b.o.compare_model)
        b.o.rounds = 1;
    /* A dead ORT child must give an error, not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (b.o.verbose)
        fprintf(stderr, "osprey bench: OpenMP waiting: %s\n",
                osp_cli_omp_waiting());
    rc = OSP_CLI_EXIT_FAIL;
    if (side_prepare(&b, &b.ours, b.o.model, b.o.precision) < 0 ||
        (b.o.compare_model && side_prepare(&b, &b.cmp, b.o.compare_model,
                                           b.o.compare_precision) < 0) ||
        (b.o.compare_ort && ort_begin(&b) < 0) || bench_rounds(&b) < 0 ||
        bench_report(&b) < 0)
        goto done;
    rc = OSP_CLI_EXIT_OK;
done:
    if (b.ort) {
        ort_reap(b.ort, NULL);
        free(b.ort);
    }
    json_decref(b.ort_sum);
    side_free(&b.cmp);
    side_free(&b.ours);
out:
    osp_settings_free(&st);
    return rc;
}
