/* cmd_autoscale.c — `osprey autoscale`: the autoscaler's command line.
 *
 *   osprey autoscale --dispatcher URL [options]   the control loop
 *   osprey autoscale simulate --trace FILE ...    the policies on a model
 *
 * Both take the same policy options (min/max, metrics and targets, the
 * HPA's behavior, the panic windows) from one table, through the settings
 * layer: flags, OSPREY_AUTOSCALE_* and a JSON --config file, whose
 * `behavior` key takes an HPA's behavior block as it is. --hpa FILE reads
 * a whole HorizontalPodAutoscaler manifest (JSON or YAML) for
 * minReplicas, maxReplicas and behavior. The decisions themselves are in
 * src/autoscale (osprey/autoscale.h); docs/autoscale.md explains them. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/autoscale_cli.h"
#include "cli/cli.h"
#include "cli/settings.h"

/* ---- the policy options (shared by the loop and simulate) --------------- */

static int parse_metric(void *base, const char *v) {
    osp_cli_policy_t *p = base;
    if (p->o.n_targets == OSP_AUTOSCALE_MAX_METRICS)
        return -1;
    char name[32];
    const char *eq = strchr(v, '=');
    size_t n = eq ? (size_t)(eq - v) : strlen(v);
    if (n >= sizeof name)
        return -1;
    memcpy(name, v, n);
    name[n] = 0;
    osp_autoscale_target_t *t = &p->o.targets[p->o.n_targets];
    if (osp_autoscale_metric_parse(name, &t->metric) ||
        t->metric == OSP_AUTOSCALE_METRIC_QUERY)
        return -1;
    t->target = osp_autoscale_metric_default_target(t->metric);
    if (eq) {
        char *end;
        t->target = strtod(eq + 1, &end);
        if (*end || !(t->target > 0) || !isfinite(t->target))
            return -1;
    }
    p->o.n_targets++;
    return 0;
}

static void reset_metrics(void *base) { ((osp_cli_policy_t *)base)->o.n_targets = 0; }

static int parse_behavior(void *base, const char *v) {
    osp_cli_policy_t *p = base;
    size_t n = strlen(v) + 16;
    char *doc = malloc(n);
    if (!doc)
        return -1;
    snprintf(doc, n, "{\"behavior\":%s}", v);
    osp_err_t err = {0};
    int rc = osp_autoscale_opts_parse_json(&p->o, doc, &err);
    free(doc);
    if (rc)
        fprintf(stderr, "osprey autoscale: --behavior: %s\n", err.msg);
    return rc ? -1 : 0;
}

static int parse_hpa(void *base, const char *path) {
    osp_cli_policy_t *p = base;
    osp_err_t err = {0};
    if (osp_autoscale_opts_load(&p->o, path, &err)) {
        fprintf(stderr, "osprey autoscale: --hpa %s: %s\n", path, err.msg);
        return -1;
    }
    return 0;
}

static int parse_windows(void *field, const char *v) {
    /* seconds, 0..3600 (the HPA's bounds) */
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < 0 || x > 3600)
        return -1;
    *(int *)field = (int)x;
    return 0;
}

#define O(f) offsetof(osp_cli_policy_t, f)
static const osp_setting_t policy_rows[] = {
    {.name = "min", .kind = OSP_SET_INT, .off = O(o.min_replicas), .min = 1, .help = "fewest replicas (default 1)", .section = "Policy (as the HPA's spec; docs/autoscale.md)"},
    {.name = "max", .kind = OSP_SET_INT, .off = O(o.max_replicas), .min = 1, .help = "most replicas (default 10)"},
    {.name = "metric", .kind = OSP_SET_FN, .arg = "NAME[=TARGET]", .parse = parse_metric, .reset = reset_metrics, .help = "concurrency (default; target 4 per replica), rps (10), latency-p95 (ms, 500) or queue (2); repeatable: the largest count wins"},
    {.name = "target", .kind = OSP_SET_DOUBLE, .off = O(target), .help = "the target of the one --metric (or of --query)"},
    {.name = "period-s", .kind = OSP_SET_DOUBLE, .off = O(o.period_s), .min = 0, .max = 3600, .help = "seconds between full decisions (default 15, the HPA's sync period)"},
    {.name = "tolerance", .kind = OSP_SET_DOUBLE, .off = O(o.tolerance), .max = 1, .help = "no change while value/target is within 1 ± this (default 0.1)"},
    {.name = "scale-up-window-s", .kind = OSP_SET_FIELD, .parse_field = parse_windows, .off = O(o.up.stabilization_s), .arg = "S", .help = "scale-up stabilization window (default 0)"},
    {.name = "scale-down-window-s", .kind = OSP_SET_FIELD, .parse_field = parse_windows, .off = O(o.down.stabilization_s), .arg = "S", .help = "scale-down stabilization window (default 300)"},
    {.name = "behavior", .kind = OSP_SET_FN, .arg = "JSON", .parse = parse_behavior, .help = "an HPA behavior block (scaleUp/scaleDown: stabilizationWindowSeconds, selectPolicy, policies); in --config as an object"},
    {.name = "hpa", .kind = OSP_SET_FN, .arg = "FILE", .parse = parse_hpa, .help = "a HorizontalPodAutoscaler manifest (JSON or YAML): minReplicas, maxReplicas, behavior"},
    {.name = "panic", .kind = OSP_SET_BOOL, .off = O(o.panic), .help = "the panic mode (default on; --panic=false: the stock HPA)"},
    {.name = "stable-window-s", .kind = OSP_SET_DOUBLE, .off = O(o.stable_window_s), .min = 0, .max = 3600, .help = "panic ends this long after the last overload (default 60)"},
    {.name = "panic-window-s", .kind = OSP_SET_DOUBLE, .off = O(o.panic_window_s), .min = 0, .max = 600, .help = "the panic value's averaging window (default 6)"},
    {.name = "panic-threshold", .kind = OSP_SET_DOUBLE, .off = O(o.panic_threshold), .min = 1, .max = 100, .help = "panic above this × what the ready replicas take (default 2.0)"},
};
#undef O

_Static_assert(OSP_ARRAY_LEN(policy_rows) == OSP_CLI_POLICY_ROWS,
               "autoscale_cli.h's row count");

size_t osp_cli_policy_rows(osp_setting_t *tab, size_t at) {
    memcpy(tab + at, policy_rows, sizeof policy_rows);
    return at + OSP_ARRAY_LEN(policy_rows);
}

void osp_cli_policy_init(osp_cli_policy_t *p) {
    memset(p, 0, sizeof *p);
    osp_autoscale_opts_init(&p->o);
    p->o.n_targets = 0; /* --metric rows fill it; finish() sets the default */
}

int osp_cli_policy_finish(osp_cli_policy_t *p, const osp_settings_t *st,
                          osp_autoscale_metric_t default_metric) {
    if (p->o.n_targets == 0) {
        p->o.n_targets = 1;
        p->o.targets[0] = (osp_autoscale_target_t){
            default_metric, osp_autoscale_metric_default_target(default_metric)};
    }
    if (p->target > 0) {
        if (p->o.n_targets != 1)
            return osp_settings_fail(st, "--target goes with one --metric "
                                         "(write --metric NAME=TARGET for several)");
        p->o.targets[0].target = p->target;
    }
    osp_err_t err = {0};
    if (osp_autoscale_opts_check(&p->o, &err))
        return osp_settings_fail(st, "%s", err.msg);
    return OSP_CLI_EXIT_OK;
}

/* ---- simulate ------------------------------------------------------------ */

typedef struct sim_cli_s {
    osp_cli_policy_t pol;       /* first: the policy rows' offsets */
    const char *trace;
    double capacity, startup_s, slo_ms, tick_s;
    int max_inflight, queue_size;
    double queue_timeout_s;
    uint64_t seed;
    const char *policy;
    bool json;
} sim_cli_t;

#define O(f) offsetof(sim_cli_t, f)
static const osp_setting_t sim_rows[] = {
    {.name = "trace", .kind = OSP_SET_STR, .off = O(trace), .arg = "FILE", .help = "offered load: CSV t_s,rps (bench/traces/), osprey load's timeseries.csv, or one number per second (required)"},
    {.name = "capacity", .kind = OSP_SET_DOUBLE, .off = O(capacity), .arg = "RPS", .help = "requests per second one worker serves (required)"},
    {.name = "startup-s", .kind = OSP_SET_DOUBLE, .off = O(startup_s), .max = 3600, .help = "seconds from asking for a worker to its being ready (default 10)"},
    {.name = "slo-ms", .kind = OSP_SET_DOUBLE, .off = O(slo_ms), .max = 1e7, .help = "a request slower than this misses the SLO (default 1000)"},
    {.name = "tick-s", .kind = OSP_SET_DOUBLE, .off = O(tick_s), .max = 60, .help = "the control loop's tick (default 1)"},
    {.name = "max-inflight", .kind = OSP_SET_INT, .off = O(max_inflight), .min = 1, .help = "requests in flight per worker; more wait at the dispatcher (default 64, as osprey dispatch)"},
    {.name = "queue-size", .kind = OSP_SET_INT, .off = O(queue_size), .help = "the dispatcher's queue; beyond it a 503 (default 256)"},
    {.name = "queue-timeout-s", .kind = OSP_SET_DOUBLE, .off = O(queue_timeout_s), .max = 3600, .help = "longest wait in that queue, then a 503 (default 5)"},
    {.name = "seed", .kind = OSP_SET_U64, .off = O(seed), .help = "arrivals' random seed (default 1)"},
    {.name = "policy", .kind = OSP_SET_STR, .off = O(policy), .arg = "osprey|hpa|threshold|all", .help = "which policies run (default all)"},
    {.name = "json", .kind = OSP_SET_BOOL, .off = O(json), .help = "one JSON object per policy"},
};
#undef O

static void print_json(const osp_autoscale_sim_result_t *r) {
    json_t *ttc = json_array();
    for (int k = 0; k < r->n_steps; k++)
        json_array_append_new(ttc, r->time_to_capacity_s[k] < 0
                                       ? json_null()
                                       : json_real(r->time_to_capacity_s[k]));
    json_t *o = json_pack(
        "{s:s, s:I, s:I, s:I, s:f, s:i, s:i, s:i, s:o, s:f, s:f, s:f}",
        "policy", osp_autoscale_policy_name(r->policy), "requests",
        (json_int_t)r->requests, "slo_violations",
        (json_int_t)r->slo_violations, "rejected", (json_int_t)r->rejected,
        "replica_seconds", round(r->replica_seconds * 10) / 10,
        "scale_events", r->scale_events, "direction_changes",
        r->direction_changes, "max_replicas", r->max_replicas,
        "time_to_capacity_s", ttc, "p50_ms", r->p50_ms, "p95_ms", r->p95_ms,
        "p99_ms", r->p99_ms);
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

static void print_text(const osp_autoscale_sim_result_t *r, bool header) {
    if (header)
        printf("%-10s %9s %9s %8s %10s %7s %7s %5s %8s  %s\n", "policy",
               "requests", "over-SLO", "rejected", "replica-s", "events",
               "flips", "max", "p99 ms", "time to capacity (s)");
    printf("%-10s %9llu %9llu %8llu %10.0f %7d %7d %5d %8.0f ",
           osp_autoscale_policy_name(r->policy),
           (unsigned long long)r->requests,
           (unsigned long long)r->slo_violations,
           (unsigned long long)r->rejected, r->replica_seconds,
           r->scale_events, r->direction_changes, r->max_replicas, r->p99_ms);
    for (int k = 0; k < r->n_steps; k++) {
        if (r->time_to_capacity_s[k] < 0)
            printf(" never");
        else
            printf(" %.0f", r->time_to_capacity_s[k]);
    }
    printf("\n");
}

static int simulate(int argc, char **argv) {
    sim_cli_t o = {.startup_s = 10, .slo_ms = 1000, .tick_s = 1,
                   .max_inflight = 64, .queue_size = 256,
                   .queue_timeout_s = 5, .seed = 1, .policy = "all"};
    osp_cli_policy_init(&o.pol);
    osp_setting_t tab[OSP_ARRAY_LEN(sim_rows) + OSP_ARRAY_LEN(policy_rows)];
    memcpy(tab, sim_rows, sizeof sim_rows);
    osp_settings_t st = {
        .cmd = "osprey autoscale simulate", .env_prefix = "OSPREY_AUTOSCALE_",
        .tab = tab, .n = osp_cli_policy_rows(tab, OSP_ARRAY_LEN(sim_rows)),
        .base = &o,
        .synopsis = "--trace FILE --capacity RPS [options]",
        .about =
            "Runs the autoscaling policies on a queueing model of workers driven\n"
            "by a load trace, faster than real time and deterministic for a seed:\n"
            "osprey's (the HPA's algorithm with the panic mode), the stock HPA\n"
            "(the same code, panic off, 15 s decisions) and a threshold policy\n"
            "(one replica up or down per period when the value per replica is\n"
            "above the target or below half of it). Per policy: requests over\n"
            "the SLO or rejected, replica-seconds (cost), scale events, direction\n"
            "changes, time from each step in the trace to enough capacity.\n"
            "The model's workers serve one request at a time, so the default\n"
            "metric here is rps with a target of 80% of --capacity.\n"};
    osp_load_profile_t *trace = NULL;
    int rc;
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto done;
    if (!o.trace || !(o.capacity > 0)) {
        rc = osp_settings_fail(&st, "--trace and --capacity are required");
        goto done;
    }
    if (o.pol.o.n_targets == 0 && !(o.pol.target > 0))
        o.pol.target = 0.8 * o.capacity;
    if ((rc = osp_cli_policy_finish(&o.pol, &st, OSP_AUTOSCALE_METRIC_RPS)))
        goto done;
    osp_autoscale_policy_t only = OSP_AUTOSCALE_POLICY_COUNT;
    if (strcmp(o.policy, "all") && osp_autoscale_policy_parse(o.policy, &only)) {
        rc = osp_settings_fail(&st, "--policy: '%s' is not osprey, hpa, "
                                    "threshold or all", o.policy);
        goto done;
    }
    osp_err_t err = {0};
    trace = osp_load_profile_create();
    if (!trace || osp_load_profile_load_trace(trace, o.trace, &err)) {
        fprintf(stderr, "osprey autoscale simulate: %s\n",
                trace ? err.msg : "out of memory");
        rc = OSP_CLI_EXIT_FAIL;
        goto done;
    }
    osp_autoscale_sim_opts_t so;
    osp_autoscale_sim_opts_init(&so);
    so.trace = trace;
    so.capacity_rps = o.capacity;
    so.startup_s = o.startup_s;
    so.slo_ms = o.slo_ms;
    so.tick_s = o.tick_s;
    so.max_inflight = o.max_inflight;
    so.queue_size = o.queue_size;
    so.queue_timeout_s = o.queue_timeout_s;
    so.seed = o.seed;
    for (int p = 0; p < OSP_AUTOSCALE_POLICY_COUNT; p++) {
        if (only != OSP_AUTOSCALE_POLICY_COUNT && p != (int)only)
            continue;
        osp_autoscale_sim_result_t r;
        if (osp_autoscale_simulate(&so, &o.pol.o, p, &r, &err)) {
            fprintf(stderr, "osprey autoscale simulate: %s\n", err.msg);
            rc = OSP_CLI_EXIT_FAIL;
            goto done;
        }
        if (o.json)
            print_json(&r);
        else
            print_text(&r, p == 0 || (int)only == p);
    }
    rc = OSP_CLI_EXIT_OK;
done:
    osp_load_profile_destroy(trace);
    osp_settings_free(&st);
    return rc;
}

int osp_cli_autoscale(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "simulate"))
        return simulate(argc - 1, argv + 1);
    return osp_cli_autoscale_run(argc, argv);
}
