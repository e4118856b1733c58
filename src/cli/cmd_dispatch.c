/* cmd_dispatch.c — `osprey dispatch`: runs the dispatcher (src/dispatch/)
 * until SIGTERM or SIGINT, then drains and exits 0.
 *
 * Settings come from, highest first: command-line flags, OSPREY_DISPATCH_*
 * environment variables (OSPREY_DISPATCH_POLICY for --policy; backends as a
 * comma-separated OSPREY_DISPATCH_BACKENDS), a JSON config file (--config
 * FILE; keys are the flag names with '-' or '_', "backend" may be an array),
 * then defaults. One table drives all three. Exit codes: 0 after a clean
 * drain, 1 when the dispatcher fails to start, 2 for usage and configuration
 * errors. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pthread.h>

#include "cli/cli.h"
#include "osprey/dispatch.h"
#include "osprey/http.h"

#define DSP_CLI_MAX_BACKENDS 256 /* --backend flags + file + env */

typedef enum { OPT_STR, OPT_INT, OPT_SIZE, OPT_DOUBLE, OPT_POLICY,
               OPT_BACKEND } opt_kind_t;

typedef struct dispatch_cli_s {
    osp_dispatch_opts_t o;
    const char *config;
    const char *backends[DSP_CLI_MAX_BACKENDS];
    int n_backends;
    double drain_timeout_s;
} dispatch_cli_t;

typedef struct opt_s {
    const char *name;
    opt_kind_t kind;
    size_t off;
    const char *help;
} opt_t;

#define O(f) offsetof(dispatch_cli_t, f)
static const opt_t opts[] = {
    {"host", OPT_STR, O(o.host), "bind address (default 0.0.0.0)"},
    {"port", OPT_INT, O(o.port), "TCP port (default 8000; 0 = any free port, logged)"},
    {"backend", OPT_BACKEND, 0, "a worker host:port (repeatable; IPv6 as [addr]:port)"},
    {"dns", OPT_STR, O(o.dns), "NAME:PORT re-resolved for every A/AAAA record (e.g. a headless Service)"},
    {"dns-interval-ms", OPT_INT, O(o.dns_interval_ms), "DNS re-resolve period (default 5000)"},
    {"k8s-service", OPT_STR, O(o.k8s_service), "NS/NAME:PORT: follow the Service's EndpointSlices"},
    {"k8s-api", OPT_STR, O(o.k8s_api), "API server URL (default: in-cluster from KUBERNETES_SERVICE_HOST)"},
    {"k8s-token", OPT_STR, O(o.k8s_token_path), "bearer token file (default: the service-account token)"},
    {"k8s-ca", OPT_STR, O(o.k8s_ca_path), "CA bundle for the API server (default: the service-account CA)"},
    {"policy", OPT_POLICY, O(o.policy), "p2c|p2c-lor|rr|random (default p2c: of two random backends, the one with\n"
     "                         fewer outstanding requests weighted by its recent latency;\n"
     "                         p2c-lor: unweighted)"},
    {"admin-host", OPT_STR, O(o.admin_host), "admin API bind address (default 127.0.0.1)"},
    {"admin-port", OPT_INT, O(o.admin_port), "admin API port (default 8001; 0 = any free port; -1 = off)"},
    {"health-interval-ms", OPT_INT, O(o.health_interval_ms), "active health check period (default 2000)"},
    {"eject-after", OPT_INT, O(o.eject_after), "consecutive failures that eject a backend (default 3)"},
    {"eject-base-ms", OPT_INT, O(o.eject_base_ms), "first ejection time; doubles per repeat (default 2000)"},
    {"eject-max-ms", OPT_INT, O(o.eject_max_ms), "longest ejection (default 60000)"},
    {"max-inflight", OPT_INT, O(o.max_inflight), "requests in flight per backend before queueing (default 64)"},
    {"queue-size", OPT_INT, O(o.queue_size), "waiting requests per model before 503 (default 256)"},
    {"queue-timeout-ms", OPT_INT, O(o.queue_timeout_ms), "longest wait for a free backend (default 5000)"},
    {"request-timeout-ms", OPT_INT, O(o.request_timeout_ms), "deadline without X-Request-Timeout-Ms (default 30000)"},
    {"retry-ratio", OPT_DOUBLE, O(o.retry_ratio), "retry budget, retries per request (default 0.2)"},
    {"max-body-bytes", OPT_SIZE, O(o.max_body_bytes), "larger request bodies get 413 (default 32 MiB)"},
    {"max-connections", OPT_INT, O(o.max_connections), "concurrent client connections (default 256)"},
    {"drain-timeout", OPT_DOUBLE, O(drain_timeout_s), "seconds to finish in-flight requests on SIGTERM (default 30)"},
    {"config", OPT_STR, O(config), "JSON file with any of these settings"},
};
#undef O

static void usage(FILE *f) {
    fprintf(f, "usage: osprey dispatch [--port N] [--backend host:port]... "
               "[--dns NAME:PORT]\n"
               "         [--k8s-service NS/NAME:PORT] [--policy p2c|p2c-lor|rr|random] "
               "[--config FILE] [options]\n\n"
               "Proxies the worker API (/classify, /v1/models/{m}/classify, "
               "/v2/...) to the\nbackends that serve the requested model, "
               "with health checks, ejection,\nretries and an admission "
               "queue. GET /metrics, /v2/health/{live,ready}.\n\noptions:\n");
    for (size_t i = 0; i < OSP_ARRAY_LEN(opts); i++)
        fprintf(f, "  --%-20s %s\n", opts[i].name, opts[i].help);
    fprintf(f, "  --%-20s %s\n", "help", "this text");
    fprintf(f, "\nEvery option may also be set as OSPREY_DISPATCH_<NAME> in "
               "the environment\n(OSPREY_DISPATCH_POLICY=rr; backends: "
               "OSPREY_DISPATCH_BACKEND=a:1,b:2) or\nas a key of the --config "
               "JSON file ({\"policy\": \"rr\", \"backend\": [\"a:1\"]});\n"
               "flags win over the environment, which wins over the file.\n");
}

/* Strings from the config file and environment outlive the dispatcher. */
static char *keep[DSP_CLI_MAX_BACKENDS + 64];
static int n_keep;

static const char *kept(const char *s) {
    if (n_keep >= (int)OSP_ARRAY_LEN(keep))
        return NULL;
    return keep[n_keep] = strdup(s), keep[n_keep] ? keep[n_keep++] : NULL;
}

static int set_opt(dispatch_cli_t *c, const opt_t *op, const char *v,
                   const char *from) {
    char *p = (char *)c + op->off;
    char *end = NULL;
    errno = 0;
    switch (op->kind) {
    case OPT_STR:
        *(const char **)p = v;
        return 0;
    case OPT_POLICY:
        if (osp_balance_parse(v, (osp_balance_t *)p) < 0)
            goto bad;
        return 0;
    case OPT_BACKEND:
        if (c->n_backends >= DSP_CLI_MAX_BACKENDS)
            goto bad;
        c->backends[c->n_backends++] = v;
        return 0;
    case OPT_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < -1 || x > 1000000000)
            goto bad;
        *(int *)p = (int)x;
        return 0;
    }
    case OPT_SIZE: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-')
            goto bad;
        *(size_t *)p = (size_t)x;
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
    fprintf(stderr, "osprey dispatch: %s: bad value '%s' for %s\n", from, v,
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

static int set_json(dispatch_cli_t *c, const opt_t *op, json_t *v,
                    const char *path) {
    char num[64];
    const char *s;
    if (json_is_array(v) && op->kind == OPT_BACKEND) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (set_json(c, op, e, path) < 0)
                return -1;
        }
        return 0;
    }
    if (json_is_string(v))
        s = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)),
            s = num;
    else if (json_is_real(v))
        snprintf(num, sizeof num, "%.17g", json_real_value(v)), s = num;
    else {
        fprintf(stderr, "osprey dispatch: %s: '%s' must be a string or a "
                        "number\n", path, op->name);
        return -1;
    }
    const char *k = kept(s);
    return k ? set_opt(c, op, k, path) : -1;
}

static int load_config_file(dispatch_cli_t *c, const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "osprey dispatch: %s:%d:%d: %s\n", path, je.line,
                je.column, j ? "the top level must be an object" : je.text);
        json_decref(j);
        return -1;
    }
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(j, key, v) {
        const opt_t *op = find_opt(key, strlen(key));
        if (!op || !strcmp(op->name, "config")) {
            fprintf(stderr, "osprey dispatch: %s: unknown key '%s'\n", path,
                    key);
            rc = -1;
            break;
        }
        if ((rc = set_json(c, op, v, path)) < 0)
            break;
    }
    json_decref(j);
    return rc;
}

static int load_env(dispatch_cli_t *c) {
    for (size_t i = 0; i < OSP_ARRAY_LEN(opts); i++) {
        char name[64] = "OSPREY_DISPATCH_";
        size_t n = strlen(name);
        for (const char *p = opts[i].name; *p && n + 1 < sizeof name; p++)
            name[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z'
                                                     ? *p - 'a' + 'A' : *p);
        name[n] = 0;
        const char *v = getenv(name);
        if (!v || !strcmp(opts[i].name, "config"))
            continue;
        if (opts[i].kind == OPT_BACKEND) {
            /* Comma-separated list; the env replaces the file's list. */
            c->n_backends = 0;
            char *copy = strdup(v), *save = NULL;
            if (!copy)
                return -1;
            for (char *t = strtok_r(copy, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                const char *k = kept(t);
                if (!k || set_opt(c, &opts[i], k, name) < 0) {
                    free(copy);
                    return -1;
                }
            }
            free(copy);
            continue;
        }
        if (set_opt(c, &opts[i], v, name) < 0)
            return -1;
    }
    return 0;
}

int osp_cli_dispatch(int argc, char **argv) {
    dispatch_cli_t c;
    memset(&c, 0, sizeof c);
    osp_dispatch_opts_init(&c.o);
    c.drain_timeout_s = 30;
    int rc = 2;
    const char *config = getenv("OSPREY_DISPATCH_CONFIG");
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
    if ((config && load_config_file(&c, config) < 0) || load_env(&c) < 0)
        goto out;
    /* Flags' backends replace the file's and environment's. */
    bool flag_backends = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "osprey dispatch: unexpected argument '%s'\n", a);
            usage(stderr);
            goto out;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const opt_t *op = find_opt(a, nl);
        if (!op) {
            fprintf(stderr, "osprey dispatch: unknown option '%s'\n", argv[i]);
            usage(stderr);
            goto out;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(stderr, "osprey dispatch: %s needs a value\n", argv[i]);
            goto out;
        }
        if (op->kind == OPT_BACKEND && !flag_backends) {
            c.n_backends = 0;
            flag_backends = true;
        }
        if (set_opt(&c, op, v, "command line") < 0)
            goto out;
    }
    c.o.backends = c.backends;
    c.o.n_backends = c.n_backends;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    osp_err_t err = {0};
    osp_dispatch_t *d = osp_dispatch_create(&c.o, &err);
    if (!d) {
        fprintf(stderr, "osprey dispatch: %s\n", err.msg);
        rc = err.code == OSP_EINVAL ? 2 : 1;
        goto out;
    }
    int sig = 0;
    sigwait(&set, &sig);
    osp_dispatch_log(d, "info", "signal",
                     json_pack("{s:s}", "signal",
                               sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    osp_dispatch_destroy(d, c.drain_timeout_s);
    rc = 0;
out:
    for (int i = 0; i < n_keep; i++)
        free(keep[i]);
    n_keep = 0;
    return rc;
}
