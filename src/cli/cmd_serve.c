/* cmd_serve.c — `osprey serve`: runs the worker (src/serve/) until SIGTERM or
 * SIGINT, then drains and exits 0.
 *
 * Settings come from, highest first: command-line flags, OSPREY_* environment
 * variables (OSPREY_MAX_BATCH for --max-batch), a JSON config file (--config
 * FILE or OSPREY_CONFIG; keys are the flag names, with '-' or '_'), then
 * defaults. One table below drives all three, so they cannot drift apart.
 * Exit codes: 0 after a clean drain, 1 when the server fails (model, port,
 * drain timeout), 2 for usage and configuration errors. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pthread.h>

#include "cli/cli.h"
#include "osprey/serve.h"

typedef enum { OPT_STR, OPT_INT, OPT_I64, OPT_SIZE, OPT_U64, OPT_DOUBLE,
               OPT_PREC } opt_kind_t;

typedef struct serve_cli_s {
    osp_serve_opts_t o;
    const char *config;
    double drain_timeout_s;
} serve_cli_t;

typedef struct opt_s {
    const char *name; /* flag without "--" */
    opt_kind_t kind;
    size_t off;       /* offset in serve_cli_t */
    const char *help;
} opt_t;

#define O(f) offsetof(serve_cli_t, f)
static const opt_t opts[] = {
    {"model", OPT_STR, O(o.model_path), "model file (.onnx) served as the default model"},
    {"labels", OPT_STR, O(o.labels_path), "labels file (one per line) overriding the model config"},
    {"model-config", OPT_STR, O(o.model_config), "model config JSON (default: beside the model)"},
    {"model-repository", OPT_STR, O(o.model_repository), "serve DIR/<name>/<version>/model.{onnx,tflite} (versions per config.json version_policy; default the latest)"},
    {"host", OPT_STR, O(o.host), "bind address (default 0.0.0.0)"},
    {"port", OPT_INT, O(o.port), "TCP port (default 8080; 0 = any free port, logged)"},
    {"threads", OPT_INT, O(o.threads), "CPUs for inference (default: all available, cgroup aware)"},
    {"instances", OPT_INT, O(o.instances), "engine instances per model version (default 1)"},
    {"precision", OPT_PREC, O(o.precision), "fp32|bf16|int8|auto (default: the model config's)"},
    {"max-body-bytes", OPT_SIZE, O(o.max_body_bytes), "larger request bodies get 413 (default 32 MiB)"},
    {"max-pixels", OPT_U64, O(o.max_pixels), "larger images get 413 (default 50000000)"},
    {"max-batch", OPT_INT, O(o.max_batch), "largest batch (default 8; a fixed model batch caps it)"},
    {"max-queue-delay-us", OPT_I64, O(o.max_queue_delay_us), "how long a batch may wait to fill (default 2000)"},
    {"preferred-batch-sizes", OPT_STR, O(o.preferred_batch_sizes), "e.g. 4,8: batch sizes preferred when more is queued"},
    {"max-queue-size", OPT_INT, O(o.max_queue_size), "queued images per model before 503 (default 256)"},
    {"request-timeout-ms", OPT_I64, O(o.default_timeout_ms), "deadline without X-Request-Timeout-Ms (default 30000)"},
    {"conn-timeout-s", OPT_INT, O(o.conn_timeout_s), "idle/slow connection timeout (default 30)"},
    {"max-connections", OPT_INT, O(o.max_connections), "open connections at most (default 2048 in epoll mode, 256 in threads mode)"},
    {"http-mode", OPT_STR, O(o.http_mode), "epoll (default: a few event-loop threads, requests suspended while inferring) | threads (one thread per connection)"},
    {"http-threads", OPT_INT, O(o.http_threads), "epoll mode's HTTP threads, which also decode images (default: one per CPU, 2..16)"},
    {"debug-delay-ms", OPT_I64, O(o.debug_delay_ms), "test/debug: each inference request sleeps N ms before answering (default 0 = off)"},
    {"drain-timeout", OPT_DOUBLE, O(drain_timeout_s), "seconds to finish in-flight work on SIGTERM (default 30)"},
    {"config", OPT_STR, O(config), "JSON file with any of these settings"},
};
#undef O

static void usage(FILE *f) {
    fprintf(f, "usage: osprey serve --model PATH | --model-repository DIR "
               "[options]\n\n"
               "Serves image classification over HTTP: POST /classify,\n"
               "POST /v1/models/{model}/classify, the KServe V2 API under /v2,\n"
               "GET /metrics. Stops on SIGTERM/SIGINT after draining.\n\noptions:\n");
    for (size_t i = 0; i < OSP_ARRAY_LEN(opts); i++)
        fprintf(f, "  --%-20s %s\n", opts[i].name, opts[i].help);
    fprintf(f, "  --%-20s %s\n", "help", "this text");
    fprintf(f, "\nEvery option may also be set as OSPREY_<NAME> in the environment\n"
               "(OSPREY_MAX_BATCH=16) or as a key of the --config JSON file\n"
               "({\"max_batch\": 16}); flags win over the environment, which wins\n"
               "over the file. A model's own config.json keys (max_batch_size,\n"
               "max_queue_delay_us, max_queue_size, instances,\n"
               "preferred_batch_sizes) win over these server-wide defaults for\n"
               "that model (docs/model-config.md).\n");
}

/* Strings from the config file must outlive the server. */
static char *keep[64];
static int n_keep;

static int set_opt(serve_cli_t *c, const opt_t *op, const char *v,
                   const char *from) {
    char *p = (char *)c + op->off;
    char *end = NULL;
    errno = 0;
    switch (op->kind) {
    case OPT_STR:
        *(const char **)p = v;
        return 0;
    case OPT_PREC:
        if (osp_precision_parse(v, (osp_precision_t *)p) < 0)
            goto bad;
        return 0;
    case OPT_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < 0 || x > 1000000000)
            goto bad;
        *(int *)p = (int)x;
        return 0;
    }
    case OPT_I64: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < 0)
            goto bad;
        *(int64_t *)p = x;
        return 0;
    }
    case OPT_SIZE:
    case OPT_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-')
            goto bad;
        if (op->kind == OPT_SIZE)
            *(size_t *)p = (size_t)x;
        else
            *(uint64_t *)p = x;
        return 0;
    }
    case OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !(x >= 0))
            goto bad;
        *(double *)p = x;
        return 0;
    }
    }
bad:
    fprintf(stderr, "osprey serve: %s: bad value '%s' for %s\n", from, v,
            op->name);
    return -1;
}

static const opt_t *find_opt(const char *name, size_t len) {
    for (size_t i = 0; i < OSP_ARRAY_LEN(opts); i++) {
        const char *n = opts[i].name;
        if (strlen(n) != len)
            continue;
        size_t k = 0;
        while (k < len && (name[k] == n[k] || (name[k] == '_' && n[k] == '-')))
            k++;
        if (k == len)
            return &opts[i];
    }
    return NULL;
}

static int load_config_file(serve_cli_t *c, const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "osprey serve: %s:%d:%d: %s\n", path, je.line,
                je.column, j ? "the top level must be an object" : je.text);
        json_decref(j);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        const opt_t *op = find_opt(key, strlen(key));
        if (!op || !strcmp(op->name, "config")) {
            fprintf(stderr, "osprey serve: %s: unknown key '%s'\n", path, key);
            json_decref(j);
            return -1;
        }
        char num[64];
        const char *s;
        if (json_is_string(v))
            s = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)),
                s = num;
        else if (json_is_real(v))
            snprintf(num, sizeof num, "%.17g", json_real_value(v)), s = num;
        else {
            fprintf(stderr, "osprey serve: %s: '%s' must be a string or a "
                            "number\n", path, key);
            json_decref(j);
            return -1;
        }
        if (n_keep >= (int)OSP_ARRAY_LEN(keep) ||
            !(keep[n_keep] = strdup(s))) {
            json_decref(j);
            return -1;
        }
        if (set_opt(c, op, keep[n_keep++], path) < 0) {
            json_decref(j);
            return -1;
        }
    }
    json_decref(j);
    return 0;
}

static int load_env(serve_cli_t *c) {
    for (size_t i = 0; i < OSP_ARRAY_LEN(opts); i++) {
        char name[64] = "OSPREY_";
        size_t n = strlen(name);
        for (const char *p = opts[i].name; *p && n + 1 < sizeof name; p++)
            name[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z'
                                                     ? *p - 'a' + 'A' : *p);
        name[n] = 0;
        const char *v = getenv(name);
        if (v && !strcmp(opts[i].name, "config"))
            continue; /* already used */
        if (v && set_opt(c, &opts[i], v, name) < 0)
            return -1;
    }
    return 0;
}

int osp_cli_serve(int argc, char **argv) {
    serve_cli_t c;
    memset(&c, 0, sizeof c);
    osp_serve_opts_init(&c.o);
    c.drain_timeout_s = 30;
    int rc = 1;
    /* Pass 1: --help and --config; the file is applied first. */
    const char *config = getenv("OSPREY_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    /* Configuration mistakes exit 2 like usage errors; 1 means the server
     * itself failed (model, port). */
    if ((config && load_config_file(&c, config) < 0) || load_env(&c) < 0) {
        rc = 2;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "osprey serve: unexpected argument '%s'\n", a);
            usage(stderr);
            rc = 2;
            goto out;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const opt_t *op = find_opt(a, nl);
        if (!op) {
            fprintf(stderr, "osprey serve: unknown option '%s'\n", argv[i]);
            usage(stderr);
            rc = 2;
            goto out;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(stderr, "osprey serve: %s needs a value\n", argv[i]);
            rc = 2;
            goto out;
        }
        if (set_opt(&c, op, v, "command line") < 0) {
            rc = 2;
            goto out;
        }
    }
    if (!c.o.model_path && !c.o.model_repository) {
        fprintf(stderr, "osprey serve: --model PATH or --model-repository DIR "
                        "is required\n");
        usage(stderr);
        rc = 2;
        goto out;
    }
    /* Signals are taken synchronously by this thread; every thread started
     * from here on inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    osp_err_t err = {0};
    osp_serve_t *s = osp_serve_create(&c.o, &err);
    if (!s) {
        fprintf(stderr, "osprey serve: %s\n", err.msg);
        goto out;
    }
    if (osp_serve_load(s, &err) < 0) {
        osp_serve_log(s, "error", "model load failed",
                      json_pack("{s:s}", "error", err.msg));
        osp_serve_destroy(s);
        goto out;
    }
    int sig = 0;
    sigwait(&set, &sig);
    osp_serve_log(s, "info", "signal",
                  json_pack("{s:s}", "signal", sig == SIGTERM ? "SIGTERM"
                                                              : "SIGINT"));
    if (osp_serve_drain(s, c.drain_timeout_s) < 0) {
        /* Not everything finished in time: exit without waiting for it. */
        fflush(NULL);
        _Exit(1);
    }
    osp_serve_destroy(s);
    rc = 0;
out:
    for (int i = 0; i < n_keep; i++)
        free(keep[i]);
    n_keep = 0;
    return rc;
}
