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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "osprey/dispatch.h"
#include "osprey/http.h"
#include "osprey/kube.h"

#define DSP_CLI_MAX_BACKENDS 256 /* --backend flags + file + env */

typedef struct dispatch_cli_s {
    osp_dispatch_opts_t o;
    const char *config;
    const char *backends[DSP_CLI_MAX_BACKENDS];
    int n_backends;
    double drain_timeout_s;
    char k8s_api[512];         /* the in-cluster URL, when o.k8s_api is it */
} dispatch_cli_t;

static int parse_policy(void *base, const char *v) {
    return osp_balance_parse(v, &((dispatch_cli_t *)base)->o.policy);
}

static int parse_io(void *base, const char *v) {
    return osp_dispatch_io_parse(v, &((dispatch_cli_t *)base)->o.io);
}

static int add_backend(void *base, const char *v) {
    dispatch_cli_t *c = base;
    if (c->n_backends >= DSP_CLI_MAX_BACKENDS)
        return -1;
    c->backends[c->n_backends++] = v;
    return 0;
}

static void reset_backends(void *base) { ((dispatch_cli_t *)base)->n_backends = 0; }

#define O(f) offsetof(dispatch_cli_t, f)
static const osp_setting_t opts[] = {
    {.name = "host", .kind = OSP_SET_STR, .arg = "ADDR", .off = O(o.host), .help = "bind address (default 0.0.0.0)"},
    {.name = "port", .kind = OSP_SET_INT, .off = O(o.port), .help = "TCP port (default 8000; 0 = any free port, logged)"},
    {.name = "backend", .kind = OSP_SET_FN, .arg = "HOST:PORT", .off = 0, .help = "a worker host:port (repeatable; IPv6 as [addr]:port)",
     .parse = add_backend, .reset = reset_backends},
    {.name = "dns", .kind = OSP_SET_STR, .arg = "NAME:PORT", .off = O(o.dns), .help = "NAME:PORT re-resolved for every A/AAAA record (e.g. a headless Service)"},
    {.name = "dns-interval-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(o.dns_interval_ms), .help = "DNS re-resolve period (default 5000)"},
    {.name = "k8s-service", .kind = OSP_SET_STR, .arg = "NS/NAME:PORT", .off = O(o.k8s_service), .help = "NS/NAME:PORT: follow the Service's EndpointSlices"},
    {.name = "k8s-api", .kind = OSP_SET_STR, .arg = "URL", .off = O(o.k8s_api), .help = "API server URL (default: in-cluster from KUBERNETES_SERVICE_HOST)"},
    {.name = "k8s-token", .kind = OSP_SET_STR, .arg = "PATH", .off = O(o.k8s_token_path), .help = "bearer token file (default: the service-account token)"},
    {.name = "k8s-ca", .kind = OSP_SET_STR, .arg = "PATH", .off = O(o.k8s_ca_path), .help = "CA bundle for the API server (default: the service-account CA)"},
    {.name = "policy", .kind = OSP_SET_FN, .arg = "p2c|p2c-lor|rr|random", .off = 0, .help = "p2c|p2c-lor|rr|random (default p2c: of two random backends, the one with "
     "fewer outstanding requests weighted by its recent latency; "
     "p2c-lor: unweighted)", .parse = parse_policy},
    {.name = "admin-host", .kind = OSP_SET_STR, .arg = "ADDR", .off = O(o.admin_host), .help = "admin API bind address (default 127.0.0.1; any other than loopback needs --admin-token-file)"},
    {.name = "admin-port", .kind = OSP_SET_INT, .off = O(o.admin_port), .help = "admin API port (default 8001; 0 = any free port; -1 = off)", .min = -1},
    {.name = "admin-token-file", .kind = OSP_SET_STR, .arg = "FILE", .off = O(o.admin_token_file), .help = "the admin API's bearer token: its first line, 16..512 visible characters; the file must not be accessible to others (chmod 600). Then every admin request needs Authorization: Bearer TOKEN (else 401)"},
    {.name = "health-interval-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(o.health_interval_ms), .help = "active health check period (default 2000)"},
    {.name = "eject-after", .kind = OSP_SET_INT, .off = O(o.eject_after), .help = "consecutive failures that eject a backend (default 3)"},
    {.name = "eject-base-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(o.eject_base_ms), .help = "first ejection time; doubles per repeat (default 2000)"},
    {.name = "eject-max-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(o.eject_max_ms), .help = "longest ejection (default 60000)"},
    {.name = "max-inflight", .kind = OSP_SET_INT, .off = O(o.max_inflight), .help = "requests in flight per backend before queueing (default 64)"},
    {.name = "queue-size", .kind = OSP_SET_INT, .off = O(o.queue_size), .help = "waiting requests per model before 503 (default 256)"},
    {.name = "queue-timeout-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(o.queue_timeout_ms), .help = "longest wait for a free backend (default 5000)"},
    {.name = "request-timeout-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(o.request_timeout_ms), .help = "deadline without X-Request-Timeout-Ms (default 30000)"},
    {.name = "retry-ratio", .kind = OSP_SET_DOUBLE, .off = O(o.retry_ratio), .help = "retry budget, retries per request (default 0.2)"},
    {.name = "max-inflight-bytes", .kind = OSP_SET_U64, .arg = "BYTES", .off = O(o.max_inflight_bytes), .help = "memory budget for the request bodies of requests in progress, all loops together; a request that does not fit gets 503 + Retry-After (default: a quarter of the cgroup memory limit, else of physical RAM; at least 64 MiB)"},
    {.name = "max-body-bytes", .kind = OSP_SET_SIZE, .off = O(o.max_body_bytes), .help = "larger request bodies get 413 (default 32 MiB)"},
    {.name = "max-connections", .kind = OSP_SET_INT, .off = O(o.max_connections), .help = "concurrent client connections (default with --io event: from the descriptor limit, (RLIMIT_NOFILE - 256) / 2, 256..16384; blocking 256)"},
    {.name = "conn-timeout-s", .kind = OSP_SET_INT, .arg = "S", .off = O(o.conn_timeout_s), .help = "a client connection silent for S seconds is closed (default 30)"},
    {.name = "header-timeout-s", .kind = OSP_SET_INT, .arg = "S", .off = O(o.header_timeout_s), .min = -1, .help = "a request head (line and headers) must be complete within S seconds, else the connection is closed (default 10; -1 = off)"},
    {.name = "min-body-rate", .kind = OSP_SET_DOUBLE, .arg = "BYTES/S", .off = O(o.min_body_rate), .min = -1, .help = "a request body slower than this on average, after a grace of --header-timeout-s, is cut (default 1024; -1 = off)"},
    {.name = "io", .kind = OSP_SET_FN, .arg = "event|blocking", .off = 0, .help = "event|blocking (default event: --loops event-loop threads carry client "
     "and backend sockets; blocking: a thread per client connection)", .parse = parse_io},
    {.name = "loops", .kind = OSP_SET_INT, .off = O(o.loops), .help = "event-loop threads with --io event (default: available CPUs)"},
    {.name = "autoscaler-url", .kind = OSP_SET_STR, .arg = "URL", .off = O(o.autoscaler_url), .help = "the autoscaler's base URL: its GET /status (desired, current, last decision) feeds the status page /ui/status"},
    {.name = "drain-timeout", .kind = OSP_SET_DOUBLE, .arg = "S", .off = O(drain_timeout_s), .help = "seconds to finish in-flight requests on SIGTERM (default 30)"},
};
#undef O

/* The API server of --k8s-service without --k8s-api: the one a pod is told
 * about in KUBERNETES_SERVICE_HOST/_PORT (read here: the library reads no
 * environment). Left unset outside a pod, which the dispatcher reports. */
static void k8s_api_from_env(dispatch_cli_t *c) {
    if (!c->o.k8s_service || c->o.k8s_api)
        return;
    if (osp_kube_in_cluster_url(getenv("KUBERNETES_SERVICE_HOST"),
                                getenv("KUBERNETES_SERVICE_PORT"), c->k8s_api,
                                sizeof c->k8s_api, NULL) == 0)
        c->o.k8s_api = c->k8s_api;
}

int osp_cli_dispatch(int argc, char **argv) {
    dispatch_cli_t c;
    memset(&c, 0, sizeof c);
    osp_dispatch_opts_init(&c.o);
    c.o.max_connections = 0; /* unless set: from the descriptor limit */
    c.drain_timeout_s = 30;
    int rc;
    osp_settings_t st = {
        .cmd = "osprey dispatch", .env_prefix = "OSPREY_DISPATCH_",
        .tab = opts, .n = OSP_ARRAY_LEN(opts), .base = &c,
        .synopsis = "[--port N] [--backend HOST:PORT]... [--dns NAME:PORT]\n"
                    "                       [--k8s-service NS/NAME:PORT] "
                    "[--policy POLICY] [options]",
        .about = "Proxies the worker API (/classify, /v1/models/{m}/classify, "
                 "/v2/...) to the\nbackends that serve the requested model, "
                 "with health checks, ejection,\nretries and an admission "
                 "queue. GET /metrics, /v2/health/{live,ready}. Stops on\n"
                 "SIGTERM/SIGINT after draining (exit 1 when requests are "
                 "still in flight\nafter --drain-timeout).\n"};
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto out;
    c.o.backends = c.backends;
    c.o.n_backends = c.n_backends;
    /* Each client connection may hold a backend connection too: two
     * descriptors per connection (docs/dispatch.md "Limits and slow
     * clients"). */
    long nofile = osp_settings_raise_nofile();
    if (c.o.max_connections <= 0)
        c.o.max_connections = c.o.io == OSP_DISPATCH_IO_EVENT
                                  ? osp_http_auto_max_connections(nofile, 2)
                                  : OSP_HTTP_DEFAULT_MAX_CONNECTIONS;
    k8s_api_from_env(&c);
    char budget_why[128] = "--max-inflight-bytes";
    if (!c.o.max_inflight_bytes)
        c.o.max_inflight_bytes =
            osp_settings_auto_inflight_bytes(budget_why, sizeof budget_why);
    osp_cli_signals_block();
    osp_err_t err = {0};
    osp_dispatch_t *d = osp_dispatch_create(&c.o, &err);
    if (!d) {
        rc = osp_cli_start_failed("osprey dispatch", &err);
        goto out;
    }
    char budget_s[32];
    snprintf(budget_s, sizeof budget_s, "%llu",
             (unsigned long long)c.o.max_inflight_bytes);
    osp_dispatch_log(d, "info", "memory budget", "max_inflight_bytes",
                     budget_s, "source", budget_why, NULL);
    osp_dispatch_log(d, "info", "signal", "signal", osp_cli_signal_wait(),
                     NULL);
    rc = osp_cli_drained(osp_dispatch_drain(d, c.drain_timeout_s));
    osp_dispatch_destroy(d);
out:
    osp_settings_free(&st);
    return rc;
}
