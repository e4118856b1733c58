/* autoscale_loop.c — `osprey autoscale` (without `simulate`): the control
 * loop's command line. It reads the settings, builds the actuator (local
 * workers: `osprey serve` children of this binary; or a Kubernetes
 * Deployment's scale subresource), starts the loop
 * (src/autoscale/loop.c), waits for SIGTERM or SIGINT, and stops: the loop
 * ends, the workers are deregistered and drained, nothing is left running.
 *
 * The CPU budget: workers × --worker-threads stays within the CPUs this
 * process may use (cgroup quota and affinity, osp_cpu_budget) unless
 * --oversubscribe says otherwise — two workers fighting for one core are
 * slower than one. */
#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wordexp.h>

#include "cli/autoscale_cli.h"
#include "cli/cli.h"
#include "osprey/http.h"
#include "osprey/kube.h"
#include "osprey/log.h"

typedef struct loop_cli_s {
    osp_cli_policy_t pol;       /* first: the policy rows' offsets */
    const char *dispatcher, *prometheus, *query;
    const char *dispatcher_token_file;
    char dispatcher_token[OSP_HTTP_BEARER_MAX + 1]; /* read from the file */
    int rate_window_s;
    bool local;
    const char *worker_args, *worker_host;
    int worker_threads;
    bool oversubscribe;
    const char *k8s_deployment, *kubeconfig, *kube_context;
    const char *k8s_api, *k8s_token, *k8s_ca;
    const char *host;
    int port;
    double tick_s;
    bool dry_run, json_log;
} loop_cli_t;

#define O(f) offsetof(loop_cli_t, f)
static const osp_setting_t loop_rows[] = {
    {.name = "dispatcher", .kind = OSP_SET_STR, .off = O(dispatcher), .arg = "URL", .help = "the dispatcher's admin API, e.g. http://127.0.0.1:8001 (its /metrics too; required)"},
    {.name = "dispatcher-token-file", .kind = OSP_SET_STR, .off = O(dispatcher_token_file), .arg = "FILE", .help = "the bearer token of the dispatcher's admin API (its --admin-token-file), sent with every request to --dispatcher"},
    {.name = "prometheus", .kind = OSP_SET_STR, .off = O(prometheus), .arg = "URL", .help = "read the metrics from Prometheus's query API (default: read the dispatcher's /metrics directly)"},
    {.name = "query", .kind = OSP_SET_STR, .off = O(query), .arg = "PROMQL", .help = "scale on this PromQL (a total over the replicas) with --target: needs --prometheus"},
    {.name = "rate-window-s", .kind = OSP_SET_INT, .off = O(rate_window_s), .min = 1, .max = 3600, .help = "rate() window of the built-in PromQL (default 30)"},
    {.name = "local", .kind = OSP_SET_BOOL, .off = O(local), .help = "run the workers here, as osprey serve children (the default)"},
    {.name = "worker-args", .kind = OSP_SET_STR, .off = O(worker_args), .arg = "\"FLAGS\"", .help = "the workers' osprey serve flags, e.g. \"--model m.tflite\""},
    {.name = "worker-threads", .kind = OSP_SET_INT, .off = O(worker_threads), .min = 1, .help = "each worker's CPUs (serve --threads; default 1)"},
    {.name = "worker-host", .kind = OSP_SET_STR, .off = O(worker_host), .arg = "ADDR", .help = "the workers' IPv4 address (default 127.0.0.1)"},
    {.name = "oversubscribe", .kind = OSP_SET_BOOL, .off = O(oversubscribe), .help = "allow more worker threads than CPUs (default: --max is capped)"},
    {.name = "k8s-deployment", .kind = OSP_SET_STR, .off = O(k8s_deployment), .arg = "NS/NAME", .help = "scale this Deployment (its scale subresource) instead of local workers"},
    {.name = "kubeconfig", .kind = OSP_SET_STR, .off = O(kubeconfig), .arg = "FILE", .help = "reach the API server as this kubeconfig says (default: in-cluster)"},
    {.name = "kube-context", .kind = OSP_SET_STR, .off = O(kube_context), .arg = "NAME", .help = "the kubeconfig's context (default: its current-context)"},
    {.name = "k8s-api", .kind = OSP_SET_STR, .off = O(k8s_api), .arg = "URL", .help = "in-cluster: the API server (default from KUBERNETES_SERVICE_HOST)"},
    {.name = "k8s-token", .kind = OSP_SET_STR, .off = O(k8s_token), .arg = "PATH", .help = "in-cluster: the token file (default: the service account's)"},
    {.name = "k8s-ca", .kind = OSP_SET_STR, .off = O(k8s_ca), .arg = "PATH", .help = "in-cluster: the CA bundle (default: the service account's)"},
    {.name = "host", .kind = OSP_SET_STR, .off = O(host), .arg = "ADDR", .help = "its /metrics and GET /status listen here (default 127.0.0.1)"},
    {.name = "port", .kind = OSP_SET_INT, .off = O(port), .min = -1, .max = 65535, .help = "their port (default 8002; 0: any free, logged; -1: none)"},
    {.name = "tick-s", .kind = OSP_SET_DOUBLE, .off = O(tick_s), .max = 60, .help = "how often it reads and checks for panic (default 1)"},
    {.name = "dry-run", .kind = OSP_SET_BOOL, .off = O(dry_run), .help = "decide and log, never act (local: observe the dispatcher's backends, start no worker)"},
    {.name = "json-log", .kind = OSP_SET_BOOL, .off = O(json_log), .help = "decisions as JSON lines (default: one text line each)"},
};
#undef O

/* --worker-args as words (quotes as a shell's; no command substitution). */
static int split_args(const char *s, wordexp_t *we) {
    if (!s)
        s = "";
    return wordexp(s, we, WRDE_NOCMD | WRDE_UNDEF) ? -1 : 0;
}

/* At most as many workers as CPUs allow (see the file comment). */
static void cap_max(loop_cli_t *o) {
    int cpus = osp_cpus_available();
    int fit = OSP_MAX(1, cpus / o->worker_threads);
    if (o->oversubscribe || o->pol.o.max_replicas <= fit)
        return;
    char was[16], now[16], c[16];
    snprintf(was, sizeof was, "%d", o->pol.o.max_replicas);
    snprintf(now, sizeof now, "%d", fit);
    snprintf(c, sizeof c, "%d", cpus);
    osp_log_write(NULL, NULL, "warn",
                  "autoscale: --max capped to the CPUs (--oversubscribe to "
                  "keep it)", "max", was, "capped_to", now, "cpus", c, NULL);
    o->pol.o.max_replicas = fit;
    if (o->pol.o.min_replicas > fit)
        o->pol.o.min_replicas = fit;
}

/* The Kubernetes actuator: the API server from --kubeconfig, or the pod's
 * own (--k8s-api, else KUBERNETES_SERVICE_HOST: the CLI reads the
 * environment, the library does not). */
static osp_autoscale_actuator_t *make_k8s(const loop_cli_t *o, osp_err_t *err) {
    osp_kube_config_t kc = {0};
    char url[512];
    int rc;
    if (o->kubeconfig) {
        rc = osp_kube_config_from_kubeconfig(&kc, o->kubeconfig,
                                             o->kube_context, err);
    } else {
        rc = o->k8s_api ? 0
                        : osp_kube_in_cluster_url(
                              getenv("KUBERNETES_SERVICE_HOST"),
                              getenv("KUBERNETES_SERVICE_PORT"), url,
                              sizeof url, err);
        if (rc)
            osp_err_prefix(err, "--k8s-deployment outside a cluster needs "
                                "--kubeconfig or --k8s-api: ");
        else
            rc = osp_kube_config_in_cluster(&kc, o->k8s_api ? o->k8s_api : url,
                                            o->k8s_token, o->k8s_ca, err);
    }
    osp_autoscale_actuator_t *a = NULL;
    if (!rc) {
        osp_autoscale_k8s_opts_t ko = {.deployment = o->k8s_deployment,
                                       .kube = &kc};
        a = osp_autoscale_k8s_create(&ko, err);
    }
    osp_kube_config_fini(&kc);
    return a;
}

static osp_autoscale_actuator_t *make_local(const loop_cli_t *o,
                                            const char *const *wargs,
                                            int n_wargs, osp_err_t *err) {
    static char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        osp_err_set(err, OSP_EIO, "cannot find its own binary");
        return NULL;
    }
    exe[n] = 0;
    osp_autoscale_local_opts_t lo = {
        .exe = exe, .dispatcher = o->dispatcher,
        .dispatcher_token = o->dispatcher_token[0] ? o->dispatcher_token : NULL,
        .host = o->worker_host,
        .worker_threads = o->worker_threads, .args = wargs,
        .n_args = n_wargs, .observe_only = o->dry_run};
    return osp_autoscale_local_create(&lo, err);
}

static int run(loop_cli_t *o, const char *const *wargs, int n_wargs) {
    osp_err_t err = {0};
    /* libcurl's global state, before any thread (its documented rule). */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    osp_cli_signals_block(); /* before any thread */
    osp_autoscale_actuator_t *act =
        o->k8s_deployment ? make_k8s(o, &err)
                          : make_local(o, wargs, n_wargs, &err);
    if (!act)
        return osp_cli_start_failed("osprey autoscale", &err);
    osp_autoscale_loop_opts_t lp = {
        .policy = o->pol.o, .actuator = act, .dispatcher = o->dispatcher,
        .dispatcher_token = o->dispatcher_token[0] ? o->dispatcher_token : NULL,
        .prometheus = o->prometheus, .query = o->query,
        .rate_window_s = o->rate_window_s, .tick_s = o->tick_s,
        .dry_run = o->dry_run, .json_log = o->json_log, .host = o->host,
        .port = o->port};
    osp_autoscale_loop_t *l = osp_autoscale_loop_create(&lp, &err);
    if (!l) {
        act->destroy(act);
        return osp_cli_start_failed("osprey autoscale", &err);
    }
    if (osp_autoscale_loop_start(l, &err)) {
        osp_autoscale_loop_destroy(l);
        return osp_cli_start_failed("osprey autoscale", &err);
    }
    char mn[16], mx[16];
    snprintf(mn, sizeof mn, "%d", o->pol.o.min_replicas);
    snprintf(mx, sizeof mx, "%d", o->pol.o.max_replicas);
    osp_log_write(NULL, NULL, "info", "autoscale: started",
                  "actuator", act->name, "source",
                  o->prometheus ? "prometheus" : "dispatcher", "min", mn,
                  "max", mx, NULL);
    const char *sig = osp_cli_signal_wait();
    osp_log_write(NULL, NULL, "info", "autoscale: stopping", "signal", sig,
                  NULL);
    osp_autoscale_loop_drain(l);
    osp_autoscale_loop_destroy(l);
    osp_log_write(NULL, NULL, "info", "autoscale: stopped", NULL);
    return OSP_CLI_EXIT_OK;
}

int osp_cli_autoscale_run(int argc, char **argv) {
    loop_cli_t o = {.rate_window_s = 30, .local = true,
                    .worker_host = "127.0.0.1", .worker_threads = 1,
                    .host = "127.0.0.1", .port = 8002, .tick_s = 1};
    osp_cli_policy_init(&o.pol);
    osp_setting_t tab[OSP_ARRAY_LEN(loop_rows) + OSP_CLI_POLICY_ROWS];
    memcpy(tab, loop_rows, sizeof loop_rows);
    osp_settings_t st = {
        .cmd = "osprey autoscale", .env_prefix = "OSPREY_AUTOSCALE_",
        .tab = tab, .n = osp_cli_policy_rows(tab, OSP_ARRAY_LEN(loop_rows)),
        .base = &o,
        .synopsis = "--dispatcher URL [options]\n"
                    "       osprey autoscale simulate --trace FILE --capacity RPS [options]",
        .about =
            "Changes the number of workers behind the dispatcher with the load:\n"
            "the Kubernetes HPA's algorithm (autoscaling/v2: tolerance, min/max,\n"
            "behavior with stabilization windows and rate policies) plus a panic\n"
            "mode that reacts to a spike within seconds (as Knative's). Every\n"
            "decision is logged with the rule that bounded it. --local (the\n"
            "default) runs the workers here as `osprey serve` children on free\n"
            "loopback ports and registers them with the dispatcher's admin API;\n"
            "scale-down deregisters a worker, waits for its requests, then stops\n"
            "it. --k8s-deployment NS/NAME scales a Deployment through its scale\n"
            "subresource instead (RBAC: get/patch deployments/scale, get\n"
            "deployments). `simulate` runs the policies on a model (its --help).\n"
            "docs/autoscale.md explains the algorithm and every option.\n"};
    wordexp_t we = {0};
    bool have_we = false;
    int rc;
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto done;
    if (!o.dispatcher && (!o.k8s_deployment || !o.prometheus)) {
        rc = osp_settings_fail(&st, "--dispatcher is required (the "
                                    "dispatcher's admin API URL; with "
                                    "--k8s-deployment, or --prometheus)");
        goto done;
    }
    if ((rc = osp_settings_token_file(&st, "dispatcher-token-file",
                                      o.dispatcher_token_file,
                                      o.dispatcher_token,
                                      sizeof o.dispatcher_token)))
        goto done;
    if (o.query && !o.prometheus) {
        rc = osp_settings_fail(&st, "--query needs --prometheus");
        goto done;
    }
    if (o.query && o.pol.o.n_targets == 0) {
        o.pol.o.targets[0] = (osp_autoscale_target_t){
            OSP_AUTOSCALE_METRIC_QUERY, o.pol.target > 0 ? o.pol.target : 1};
        o.pol.o.n_targets = 1;
    }
    if ((rc = osp_cli_policy_finish(&o.pol, &st,
                                    OSP_AUTOSCALE_METRIC_CONCURRENCY)))
        goto done;
    if (split_args(o.worker_args, &we)) {
        rc = osp_settings_fail(&st, "--worker-args: cannot split '%s' into "
                                    "words", o.worker_args);
        goto done;
    }
    have_we = true;
    if (!o.k8s_deployment)
        cap_max(&o); /* a cluster's CPUs are not this machine's */
    rc = run(&o, (const char *const *)we.we_wordv, (int)we.we_wordc);
done:
    if (have_we)
        wordfree(&we);
    osp_settings_free(&st);
    return rc;
}
