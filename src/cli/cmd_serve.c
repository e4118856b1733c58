/* cmd_serve.c — `osprey serve`: runs the worker (src/serve/) until SIGTERM or
 * SIGINT, then drains and exits 0.
 *
 * Settings come from, highest first: command-line flags, OSPREY_* environment
 * variables (OSPREY_MAX_BATCH for --max-batch), a JSON config file (--config
 * FILE or OSPREY_CONFIG; keys are the flag names, with '-' or '_'), then
 * defaults (settings.h). Exit codes (cli.h): 0 after a clean drain, 1 when
 * the server fails (model, port, drain timeout), 2 for usage and
 * configuration errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "cli/tuning.h"
#include "osprey/http.h"
#include "osprey/serve.h"

typedef struct serve_cli_s {
    osp_serve_opts_t o;
    double drain_timeout_s;
} serve_cli_t;

static int parse_precision(void *base, const char *v) {
    return osp_precision_parse(v, &((serve_cli_t *)base)->o.precision);
}

#define O(f) offsetof(serve_cli_t, f)
static const osp_setting_t opts[] = {
    {.name = "model", .kind = OSP_SET_STR, .arg = "PATH", .off = O(o.model_path), .help = "model file (.onnx or .tflite) served as the default model"},
    {.name = "labels", .kind = OSP_SET_STR, .arg = "PATH", .off = O(o.labels_path), .help = "labels file (one per line) overriding the model config"},
    {.name = "model-config", .kind = OSP_SET_STR, .arg = "PATH", .off = O(o.model_config), .help = "model config JSON (default: beside the model)"},
    {.name = "model-repository", .kind = OSP_SET_STR, .arg = "DIR", .off = O(o.model_repository), .help = "serve DIR/<name>/<version>/model.{onnx,tflite} (versions per config.json version_policy; default the latest)"},
    {.name = "host", .kind = OSP_SET_STR, .arg = "ADDR", .off = O(o.host), .help = "bind address (default 0.0.0.0)"},
    {.name = "port", .kind = OSP_SET_INT, .off = O(o.port), .help = "TCP port (default 8080; 0 = any free port, logged)"},
    {.name = "threads", .kind = OSP_SET_INT, .off = O(o.threads), .help = "CPUs for inference (default: all available, cgroup aware)"},
    {.name = "instances", .kind = OSP_SET_INT, .off = O(o.instances), .help = "engine instances per model version (default 1)"},
    {.name = "precision", .kind = OSP_SET_FN, .arg = "fp32|bf16|int8|auto", .off = 0, .help = "fp32|bf16|int8|auto (default: the model config's)", .parse = parse_precision},
    {.name = "calibration", .kind = OSP_SET_STR, .arg = "DIR", .off = O(o.calibration), .help = "int8 on a float --model: directory of calibration images, preprocessed as requests (docs/engine.md)"},
    {.name = "calibration-count", .kind = OSP_SET_INT, .off = O(o.calibration_count), .help = "calibration images to use (default 32)"},
    {.name = "max-body-bytes", .kind = OSP_SET_SIZE, .off = O(o.max_body_bytes), .help = "larger request bodies get 413 (default 32 MiB)"},
    {.name = "max-inflight-bytes", .kind = OSP_SET_U64, .arg = "BYTES", .off = O(o.max_inflight_bytes), .help = "memory budget for request bodies, decoded images and tensors in progress; a request that does not fit gets 503 + Retry-After (default: a quarter of the cgroup memory limit, else of physical RAM; at least 64 MiB)"},
    {.name = "max-pixels", .kind = OSP_SET_U64, .off = O(o.max_pixels), .help = "larger images get 413 (default 50000000)"},
    {.name = "max-batch", .kind = OSP_SET_INT, .off = O(o.max_batch), .help = "largest batch (default 8; a fixed model batch caps it)"},
    {.name = "max-queue-delay-us", .kind = OSP_SET_I64, .arg = "US", .off = O(o.max_queue_delay_us), .help = "how long a batch may wait to fill (default 2000)"},
    {.name = "batch-wait", .kind = OSP_SET_STR, .arg = "incoming|delay", .off = O(o.batch_wait), .help = "incoming (default: wait to fill a batch only while more requests are being decoded) | delay (always wait up to the queue delay)"},
    {.name = "preferred-batch-sizes", .kind = OSP_SET_STR, .arg = "LIST", .off = O(o.preferred_batch_sizes), .help = "e.g. 4,8: batch sizes preferred when more is queued"},
    {.name = "max-queue-size", .kind = OSP_SET_INT, .off = O(o.max_queue_size), .help = "queued images per model before 503 (default 256)"},
    {.name = "queue-delay-target-ms", .kind = OSP_SET_I64, .arg = "MS", .off = O(o.queue_delay_target_ms), .help = "load shedding: when images wait longer than this in a model's queue for a whole interval, new requests get 503 + Retry-After at once (default 100, a fifth of the 500 ms p99 SLO; 0 = off)"},
    {.name = "queue-delay-interval-ms", .kind = OSP_SET_I64, .arg = "MS", .off = O(o.queue_delay_interval_ms), .help = "load shedding: how long the queue delay must stay above the target before shedding, and stay calm before it stops (default 100)"},
    {.name = "request-timeout-ms", .kind = OSP_SET_I64, .arg = "MS", .off = O(o.default_timeout_ms), .help = "deadline without X-Request-Timeout-Ms (default 30000)"},
    {.name = "conn-timeout-s", .kind = OSP_SET_INT, .arg = "S", .off = O(o.conn_timeout_s), .help = "idle/slow connection timeout (default 30)"},
    {.name = "max-connections", .kind = OSP_SET_INT, .off = O(o.max_connections), .help = "open connections at most (default in epoll mode: from the descriptor limit, (RLIMIT_NOFILE - 256), 256..16384; threads mode 256)"},
    {.name = "header-timeout-s", .kind = OSP_SET_INT, .arg = "S", .off = O(o.header_timeout_s), .min = -1, .help = "a request head (line and headers) must be complete within S seconds, else the connection is closed (default 10; -1 = off)"},
    {.name = "min-body-rate", .kind = OSP_SET_DOUBLE, .arg = "BYTES/S", .off = O(o.min_body_rate), .min = -1, .help = "a request body slower than this on average, after a grace of --header-timeout-s, is cut (default 1024; -1 = off)"},
    {.name = "http-mode", .kind = OSP_SET_STR, .arg = "epoll|threads", .off = O(o.http_mode), .help = "epoll (default: a few event-loop threads, requests suspended while inferring) | threads (one thread per connection)"},
    {.name = "http-threads", .kind = OSP_SET_INT, .off = O(o.http_threads), .help = "epoll mode's HTTP event-loop threads (default: one per CPU, 1..16)"},
    {.name = "decode-threads", .kind = OSP_SET_INT, .off = O(o.decode_threads), .max = 16, .help = "threads that decode and preprocess admitted images, off the event loops (default: one per CPU, 1..16)"},
    {.name = "debug-delay-ms", .kind = OSP_SET_I64, .arg = "MS", .off = O(o.debug_delay_ms), .help = "test/debug: each inference request sleeps N ms before answering (default 0 = off)"},
    {.name = "debug-batch-delay-ms", .kind = OSP_SET_I64, .arg = "MS", .off = O(o.debug_batch_delay_ms), .help = "test/debug: each engine instance waits N ms after every batch (a slower model; default 0 = off)"},
    {.name = "drain-timeout", .kind = OSP_SET_DOUBLE, .arg = "S", .off = O(drain_timeout_s), .help = "seconds to finish in-flight work on SIGTERM (default 30)"},
};
#undef O

int osp_cli_serve(int argc, char **argv) {
    serve_cli_t c;
    memset(&c, 0, sizeof c);
    osp_serve_opts_init(&c.o);
    osp_cli_tuning_defaults(&c.o.tuning);
    c.drain_timeout_s = 30;
    int rc;
    /* serve's own settings, then the engine's tuning knobs (tuning.c) */
    osp_setting_t tab[OSP_ARRAY_LEN(opts) + OSP_CLI_TUNING_MAX];
    osp_settings_t st = {
        .cmd = "osprey serve", .env_prefix = "OSPREY_", .tab = tab,
        .n = osp_cli_tuning_table(opts, OSP_ARRAY_LEN(opts),
                                  offsetof(serve_cli_t, o.tuning), tab),
        .base = &c,
        .synopsis = "--model PATH | --model-repository DIR [options]",
        .about = "Serves image classification over HTTP: POST /classify,\n"
                 "POST /v1/models/{model}/classify, the KServe V2 API under /v2,\n"
                 "GET /metrics. Stops on SIGTERM/SIGINT after draining (exit 1 when\n"
                 "requests are still in flight after --drain-timeout).\n",
        .notes = "A model's own config.json keys (max_batch_size, "
                 "max_queue_delay_us, max_queue_size, instances, "
                 "preferred_batch_sizes) win over these server-wide defaults "
                 "for that model (docs/model-config.md)."};
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto out;
    if (!c.o.model_path && !c.o.model_repository) {
        rc = osp_settings_fail(&st, "--model PATH or --model-repository DIR "
                                    "is required");
        goto out;
    }
    /* Slow or idle clients each hold a descriptor: size the epoll front's
     * limit from the (raised) descriptor limit, one per connection. */
    long nofile = osp_settings_raise_nofile();
    if (c.o.max_connections <= 0 &&
        !(c.o.http_mode && !strcmp(c.o.http_mode, "threads")))
        c.o.max_connections = osp_http_auto_max_connections(nofile, 1);
    char budget_why[128] = "--max-inflight-bytes";
    if (!c.o.max_inflight_bytes)
        c.o.max_inflight_bytes =
            osp_settings_auto_inflight_bytes(budget_why, sizeof budget_why);
    osp_cli_signals_block();
    osp_err_t err = {0};
    osp_serve_t *s = osp_serve_create(&c.o, &err);
    if (!s) {
        rc = osp_cli_start_failed("osprey serve", &err);
        goto out;
    }
    char budget_s[32];
    snprintf(budget_s, sizeof budget_s, "%llu",
             (unsigned long long)c.o.max_inflight_bytes);
    osp_serve_log(s, "info", "memory budget", "max_inflight_bytes", budget_s,
                  "source", budget_why, NULL);
    if (osp_serve_load(s, &err) < 0) {
        osp_serve_log(s, "error", "model load failed", "error", err.msg, NULL);
        osp_serve_destroy(s);
        rc = OSP_CLI_EXIT_FAIL;
        goto out;
    }
    osp_serve_log(s, "info", "signal", "signal", osp_cli_signal_wait(), NULL);
    rc = osp_cli_drained(osp_serve_drain(s, c.drain_timeout_s));
    osp_serve_destroy(s);
out:
    osp_settings_free(&st);
    return rc;
}
