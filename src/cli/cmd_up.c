/* cmd_up.c — `osprey up`: the whole local stack in one command (what
 * `make run` starts). As children of this same binary: the dispatcher
 * (`osprey dispatch`, --port and --admin-port), the autoscaler in local
 * mode (`osprey autoscale`, which starts MIN…MAX workers of --model and
 * registers them with the dispatcher); and, when installed, Prometheus
 * scraping all of them with the project's rules (deploy/monitoring; the
 * workers, whose ports the autoscaler picks, through a file_sd file this
 * command rewrites from the autoscaler's GET /status) and Alertmanager.
 * With Prometheus the autoscaler reads its metric from Prometheus (so a
 * stopped Prometheus makes it hold, docs/autoscale.md), else from the
 * dispatcher's /metrics.
 *
 * Everything is checked before anything starts (ports, the model, the
 * monitoring files), so a failure is one line, not a stack half up. A
 * state directory ($XDG_RUNTIME_DIR or /tmp, osprey-up.XXXXXX, or
 * --state-dir) holds every child's log, the generated Prometheus config,
 * its data, stack.json (pids, ports, URLs) and admin-token: a random
 * bearer token (mode 0600, new each start) that the dispatcher's admin API
 * requires and the autoscaler sends (docs/adr/0047-admin-token.md), so
 * that another local user cannot repoint the stack's traffic.
 *
 * Stopping (SIGINT, SIGTERM), in order: the dispatcher first — it closes
 * the front door and finishes what is in flight while the workers are
 * still there (stopping the autoscaler first would deregister the workers
 * under requests still arriving); then the autoscaler, which drains and
 * stops its workers; then Prometheus and Alertmanager; then anything left
 * (we are the subreaper). Children run in their own process groups with
 * PR_SET_PDEATHSIG (up_stack.c), so `kill -9` of this process leaves
 * nothing running either. Exit codes: 0 after a clean stop, 1 when
 * something failed to start or died, 2 for usage. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wordexp.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "cli/up_stack.h"
#include "osprey/metrics.h"

#define UP_READY_TIMEOUT_S 180 /* the first worker: a big model loads slowly */
#define UP_POLL_MS 2000        /* the file_sd refresh and the child check */

typedef struct up_cli_s {
    const char *model, *host, *state_dir, *monitoring_dir;
    int min, max;
    int port, admin_port, autoscaler_port, prometheus_port, alertmanager_port;
    bool no_prometheus;
    int scrape_interval_s;
    const char *worker_args, *autoscale_args, *dispatch_args;
    const char *prometheus_bin, *alertmanager_bin;
    const char *example_image;
} up_cli_t;

static int parse_workers(void *base, const char *v) {
    up_cli_t *c = base;
    int mn, mx, end = 0;
    if (sscanf(v, "%d:%d%n", &mn, &mx, &end) != 2 || v[end] || mn < 1 ||
        mx < mn || mx > 256)
        return -1;
    c->min = mn;
    c->max = mx;
    return 0;
}

#define O(f) offsetof(up_cli_t, f)
static const osp_setting_t opts[] = {
    {.name = "model", .kind = OSP_SET_STR, .arg = "PATH", .short_name = 'm', .off = O(model), .help = "the workers' model file (required)"},
    {.name = "workers", .kind = OSP_SET_FN, .arg = "MIN:MAX", .parse = parse_workers, .help = "the autoscaler's bounds (default 1:CPUs)"},
    {.name = "host", .kind = OSP_SET_STR, .arg = "ADDR", .off = O(host), .help = "the dispatcher's bind address (default 127.0.0.1; the rest is always loopback)"},
    {.name = "port", .kind = OSP_SET_INT, .off = O(port), .max = 65535, .help = "the dispatcher: UI, API, /metrics (default 8000; 0 = any free)"},
    {.name = "admin-port", .kind = OSP_SET_INT, .off = O(admin_port), .max = 65535, .help = "the dispatcher's admin API (default 8001; 0 = any free)"},
    {.name = "autoscaler-port", .kind = OSP_SET_INT, .off = O(autoscaler_port), .max = 65535, .help = "the autoscaler's /status and /metrics (default 8002; 0 = any free)"},
    {.name = "prometheus-port", .kind = OSP_SET_INT, .off = O(prometheus_port), .max = 65535, .help = "Prometheus (default 9090; 0 = any free)"},
    {.name = "alertmanager-port", .kind = OSP_SET_INT, .off = O(alertmanager_port), .max = 65535, .help = "Alertmanager (default 9093; 0 = any free)"},
    {.name = "no-prometheus", .kind = OSP_SET_BOOL, .off = O(no_prometheus), .help = "start neither Prometheus nor Alertmanager (the autoscaler reads the dispatcher)"},
    {.name = "scrape-interval-s", .kind = OSP_SET_INT, .off = O(scrape_interval_s), .min = 1, .max = 300, .help = "Prometheus's scrape and rule interval (default 5)"},
    {.name = "state-dir", .kind = OSP_SET_STR, .arg = "DIR", .off = O(state_dir), .help = "logs, Prometheus data, stack.json (default $XDG_RUNTIME_DIR or /tmp: osprey-up.XXXXXX)"},
    {.name = "monitoring-dir", .kind = OSP_SET_STR, .arg = "DIR", .off = O(monitoring_dir), .help = "deploy/monitoring: rules, alertmanager.yml (default: found beside the binary)"},
    {.name = "worker-args", .kind = OSP_SET_STR, .arg = "\"FLAGS\"", .off = O(worker_args), .help = "more osprey serve flags for every worker (after --model)"},
    {.name = "autoscale-args", .kind = OSP_SET_STR, .arg = "\"FLAGS\"", .off = O(autoscale_args), .help = "more osprey autoscale flags (--metric, --period-s, windows, --oversubscribe)"},
    {.name = "dispatch-args", .kind = OSP_SET_STR, .arg = "\"FLAGS\"", .off = O(dispatch_args), .help = "more osprey dispatch flags"},
    {.name = "prometheus-bin", .kind = OSP_SET_STR, .arg = "PATH", .off = O(prometheus_bin), .help = "the Prometheus binary (default: prometheus on PATH)"},
    {.name = "alertmanager-bin", .kind = OSP_SET_STR, .arg = "PATH", .off = O(alertmanager_bin), .help = "the Alertmanager binary (default: prometheus-alertmanager or alertmanager on PATH)"},
    {.name = "example-image", .kind = OSP_SET_STR, .arg = "PATH", .off = O(example_image), .help = "the image in the printed curl example"},
};
#undef O

enum { P_DISPATCHER, P_AUTOSCALER, P_PROMETHEUS, P_ALERTMANAGER, P_COUNT };

typedef struct up_s {
    up_cli_t c;
    char exe[PATH_MAX], state[PATH_MAX], mon[PATH_MAX];
    char token_file[PATH_MAX + 16]; /* STATE/admin-token */
    char prom_bin[PATH_MAX], am_bin[PATH_MAX];
    bool prometheus, alertmanager;
    osp_up_proc_t p[P_COUNT];
    char *workers_sd; /* the last file_sd text written */
} up_t;

/* ---- checks before anything starts --------------------------------- */

/* The first executable `name` on PATH into out; false when none. */
static bool which(const char *name, char *out, size_t cap) {
    if (strchr(name, '/')) {
        snprintf(out, cap, "%s", name);
        return access(out, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(out, cap, "%.*s/%s", (int)n, path, name);
        if (n && access(out, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* deploy/monitoring: --monitoring-dir, else beside the binary (build/osprey
 * → ../deploy/monitoring; an install's ../share/osprey/monitoring). */
static bool find_monitoring(up_t *u) {
    if (u->c.monitoring_dir) {
        snprintf(u->mon, sizeof u->mon, "%s", u->c.monitoring_dir);
        return is_dir(u->mon);
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", u->exe);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    static const char *const rel[] = {"../deploy/monitoring",
                                      "../share/osprey/monitoring",
                                      "deploy/monitoring"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(rel); i++) {
        char cand[PATH_MAX + 64];
        snprintf(cand, sizeof cand, "%s/%s/prometheus/rules", dir, rel[i]);
        if (is_dir(cand) && realpath(cand, u->mon)) {
            *strrchr(u->mon, '/') = 0; /* …/monitoring/prometheus */
            *strrchr(u->mon, '/') = 0; /* …/monitoring */
            return true;
        }
    }
    return false;
}

static int check_port(const char *what, const char *host, int *port,
                      const char *flag) {
    int want = *port;
    if (osp_up_port_check(host, port) == 0)
        return 0;
    fprintf(stderr, "osprey up: %s port %s:%d is in use (or the address is "
                    "not this machine's); choose another with --%s\n",
            what, host, want, flag);
    return -1;
}

/* Every check that can fail, before a process starts: 0, or the exit code. */
static int preflight(up_t *u, const osp_settings_t *st) {
    up_cli_t *c = &u->c;
    if (!c->model)
        return osp_settings_fail(st, "--model is required (the workers' "
                                     "model file)");
    if (access(c->model, R_OK) != 0) {
        fprintf(stderr, "osprey up: model %s: %s\n", c->model, strerror(errno));
        return OSP_CLI_EXIT_FAIL;
    }
    ssize_t n = readlink("/proc/self/exe", u->exe, sizeof u->exe - 1);
    if (n <= 0) {
        fprintf(stderr, "osprey up: cannot find its own binary (/proc/self/exe)\n");
        return OSP_CLI_EXIT_FAIL;
    }
    u->exe[n] = 0;
    if (!c->no_prometheus) {
        u->prometheus = which(c->prometheus_bin ? c->prometheus_bin : "prometheus",
                              u->prom_bin, sizeof u->prom_bin);
        if (!u->prometheus && c->prometheus_bin) {
            fprintf(stderr, "osprey up: --prometheus-bin %s: not an executable\n",
                    c->prometheus_bin);
            return OSP_CLI_EXIT_USAGE;
        }
        if (!u->prometheus)
            fprintf(stderr, "osprey up: note: prometheus is not installed "
                            "(Debian: prometheus); running without it\n");
    }
    if (u->prometheus && !find_monitoring(u)) {
        fprintf(stderr, "osprey up: the monitoring files (deploy/monitoring) "
                        "are not beside %s; give --monitoring-dir DIR or "
                        "--no-prometheus\n", u->exe);
        return OSP_CLI_EXIT_USAGE;
    }
    if (u->prometheus) {
        u->alertmanager =
            c->alertmanager_bin
                ? which(c->alertmanager_bin, u->am_bin, sizeof u->am_bin)
                : which("prometheus-alertmanager", u->am_bin, sizeof u->am_bin) ||
                      which("alertmanager", u->am_bin, sizeof u->am_bin);
        if (!u->alertmanager)
            fprintf(stderr, "osprey up: note: Alertmanager is not installed "
                            "(Debian: prometheus-alertmanager); running "
                            "without it\n");
    }
    if (check_port("the dispatcher's", c->host, &c->port, "port") ||
        check_port("the dispatcher's admin", "127.0.0.1", &c->admin_port, "admin-port") ||
        check_port("the autoscaler's", "127.0.0.1", &c->autoscaler_port, "autoscaler-port") ||
        (u->prometheus &&
         check_port("Prometheus's", "127.0.0.1", &c->prometheus_port, "prometheus-port (or --no-prometheus)")) ||
        (u->alertmanager &&
         check_port("Alertmanager's", "127.0.0.1", &c->alertmanager_port, "alertmanager-port (or --no-prometheus)")))
        return OSP_CLI_EXIT_FAIL;
    int ports[] = {c->port, c->admin_port, c->autoscaler_port,
                   u->prometheus ? c->prometheus_port : -1,
                   u->alertmanager ? c->alertmanager_port : -2};
    for (size_t i = 0; i < OSP_ARRAY_LEN(ports); i++)
        for (size_t j = i + 1; j < OSP_ARRAY_LEN(ports); j++)
            if (ports[i] == ports[j]) {
                fprintf(stderr, "osprey up: port %d is given twice\n", ports[i]);
                return OSP_CLI_EXIT_USAGE;
            }
    return 0;
}

static int make_state_dir(up_t *u) {
    if (u->c.state_dir) {
        if (osp_cli_mkdir_p(u->c.state_dir) || !realpath(u->c.state_dir, u->state)) {
            fprintf(stderr, "osprey up: --state-dir %s: %s\n", u->c.state_dir,
                    strerror(errno));
            return -1;
        }
        return 0;
    }
    const char *base = getenv("XDG_RUNTIME_DIR");
    if (!base || !is_dir(base) || access(base, W_OK))
        base = "/tmp";
    snprintf(u->state, sizeof u->state, "%s/osprey-up.XXXXXX", base);
    if (!mkdtemp(u->state)) {
        fprintf(stderr, "osprey up: cannot create %s: %s\n", u->state,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the generated files ------------------------------------------- */

/* STATE/admin-token: 32 random bytes as hex, mode 0600 from its creation
 * (written beside, then renamed: a reader never sees half of it). */
static int write_admin_token(up_t *u) {
    unsigned char raw[32];
    char hex[2 * sizeof raw + 2], tmp[PATH_MAX + 32];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    strcat(hex, "\n");
    snprintf(u->token_file, sizeof u->token_file, "%s/admin-token", u->state);
    snprintf(tmp, sizeof tmp, "%s.tmp", u->token_file);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t n = strlen(hex);
    bool ok = fchmod(fd, 0600) == 0 && write(fd, hex, n) == (ssize_t)n;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, u->token_file) == 0)
        return 0;
    unlink(tmp);
    return -1;
}

static int write_file(const char *path, const char *text) {
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    /* rename: Prometheus's file watcher never sees half a file */
    if (ok && rename(tmp, path) == 0)
        return 0;
    unlink(tmp);
    return -1;
}

/* The shipped compose config (deploy/monitoring/prometheus/prometheus.yml)
 * with this machine's targets: the same jobs and `component` labels, so
 * the same rules and dashboards apply; the workers by file_sd. */
static int write_prometheus_config(up_t *u) {
    const up_cli_t *c = &u->c;
    char path[PATH_MAX + 64], *text = NULL;
    int s = c->scrape_interval_s;
    char am[128] = "";
    if (u->alertmanager)
        snprintf(am, sizeof am,
                 "alerting:\n  alertmanagers:\n    - static_configs:\n"
                 "        - targets: ['127.0.0.1:%d']\n", c->alertmanager_port);
    int n = asprintf(
        &text,
        "# Generated by osprey up from deploy/monitoring/prometheus/prometheus.yml's\n"
        "# jobs and labels, with this machine's loopback targets.\n"
        "global:\n  scrape_interval: %ds\n  scrape_timeout: %ds\n"
        "  evaluation_interval: %ds\n  external_labels:\n    cluster: local\n"
        "rule_files:\n  - '%s/prometheus/rules/*.yml'\n%s"
        "scrape_configs:\n"
        "  - job_name: osprey-dispatcher\n    static_configs:\n"
        "      - targets: ['127.0.0.1:%d']\n        labels: {component: dispatcher}\n"
        "  - job_name: osprey-worker\n    file_sd_configs:\n"
        "      - files: ['%s/prometheus/workers.json']\n        refresh_interval: %ds\n"
        "  - job_name: osprey-autoscaler\n    static_configs:\n"
        "      - targets: ['127.0.0.1:%d']\n        labels: {component: autoscaler}\n"
        "  - job_name: prometheus\n    static_configs:\n"
        "      - targets: ['127.0.0.1:%d']\n",
        s, s > 1 ? s - 1 : 1, s, u->mon, am, c->admin_port, u->state, s,
        c->autoscaler_port, c->prometheus_port);
    if (n < 0)
        return -1;
    if (u->alertmanager) {
        char *more = NULL;
        if (asprintf(&more, "%s  - job_name: alertmanager\n    static_configs:\n"
                            "      - targets: ['127.0.0.1:%d']\n",
                     text, c->alertmanager_port) < 0) {
            free(text);
            return -1;
        }
        free(text);
        text = more;
    }
    snprintf(path, sizeof path, "%s/prometheus", u->state);
    int rc = osp_cli_mkdir_p(path);
    if (!rc) {
        snprintf(path, sizeof path, "%s/prometheus/prometheus.yml", u->state);
        rc = write_file(path, text);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/prometheus/workers.json", u->state);
        rc = write_file(path, "[]\n");
    }
    free(text);
    return rc;
}

/* Rewrites the workers' file_sd from the autoscaler's GET /status (every
 * worker it lists, whatever its state: a starting one is scraped as down,
 * which is what it is). Unchanged lists are not rewritten. */
static void refresh_workers_sd(up_t *u) {
    char url[128], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/status", u->c.autoscaler_port);
    if (osp_up_get(url, 1000, &body) != 200) {
        free(body);
        return;
    }
    json_t *st = json_loads(body, 0, NULL);
    free(body);
    json_t *targets = json_array();
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(st, "workers"), i, w) {
        const char *a = json_string_value(json_object_get(w, "address"));
        if (a)
            json_array_append_new(targets, json_string(a));
    }
    json_decref(st);
    json_t *sd = json_pack("[{s:o, s:{s:s}}]", "targets", targets, "labels",
                           "component", "worker");
    char *text = json_dumps(sd, JSON_COMPACT);
    json_decref(sd);
    if (text && (!u->workers_sd || strcmp(text, u->workers_sd))) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/prometheus/workers.json", u->state);
        if (write_file(path, text) == 0) {
            free(u->workers_sd);
            u->workers_sd = text;
            text = NULL;
        }
    }
    free(text);
}

/* stack.json: what runs where, for a test or a tool. */
static void write_stack_json(up_t *u) {
    json_t *pids = json_object(), *ports = json_object();
    for (int i = 0; i < P_COUNT; i++)
        if (u->p[i].pid > 0) {
            json_object_set_new(pids, u->p[i].name, json_integer(u->p[i].pid));
        }
    json_object_set_new(pids, "up", json_integer(getpid()));
    json_object_set_new(ports, "dispatcher", json_integer(u->c.port));
    json_object_set_new(ports, "admin", json_integer(u->c.admin_port));
    json_object_set_new(ports, "autoscaler", json_integer(u->c.autoscaler_port));
    if (u->prometheus)
        json_object_set_new(ports, "prometheus", json_integer(u->c.prometheus_port));
    if (u->alertmanager)
        json_object_set_new(ports, "alertmanager", json_integer(u->c.alertmanager_port));
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "state_dir", u->state,
                          "model", u->c.model, "admin_token_file",
                          u->token_file, "pids", pids, "ports", ports);
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/stack.json", u->state);
    if (!text || write_file(path, text))
        fprintf(stderr, "osprey up: cannot write %s\n", path);
    free(text);
}

/* ---- starting ------------------------------------------------------- */

/* One argv: fixed words, then a --*-args string split as a shell would
 * (quotes; no command substitution). */
static int spawn_with(up_t *u, int which_p, char **fixed, int n_fixed,
                      const char *extra) {
    wordexp_t we = {0};
    if (wordexp(extra ? extra : "", &we, WRDE_NOCMD | WRDE_UNDEF)) {
        fprintf(stderr, "osprey up: cannot split '%s' into words\n", extra);
        return -1;
    }
    char **argv = calloc((size_t)n_fixed + we.we_wordc + 1, sizeof *argv);
    int rc = -1;
    if (argv) {
        memcpy(argv, fixed, (size_t)n_fixed * sizeof *argv);
        memcpy(argv + n_fixed, we.we_wordv, we.we_wordc * sizeof *argv);
        rc = osp_up_spawn(&u->p[which_p], argv, u->state);
    }
    free(argv);
    wordfree(&we);
    return rc;
}

/* Waits until url answers 200 or p dies; false on either timeout or death. */
static bool wait_200(up_t *u, osp_up_proc_t *p, const char *url, double timeout_s) {
    double end = osp_now_ns() / 1e9 + timeout_s;
    while (osp_now_ns() / 1e9 < end) {
        if (osp_up_get(url, 1000, NULL) == 200)
            return true;
        osp_up_reap(u->p, P_COUNT);
        if (p->pid == 0)
            return false;
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static int fail_start(up_t *u, osp_up_proc_t *p, const char *what) {
    fprintf(stderr, "osprey up: %s %s (log: %s)\n", p->name,
            p->pid ? what : "exited at start", p->log);
    osp_up_log_tail(p->log, 12);
    return OSP_CLI_EXIT_FAIL;
}

static int start_monitoring(up_t *u) {
    char a1[PATH_MAX + 64], a2[PATH_MAX + 64], a3[64], url[128];
    if (u->alertmanager) {
        osp_up_proc_t *p = &u->p[P_ALERTMANAGER];
        snprintf(a1, sizeof a1, "--config.file=%s/alertmanager/alertmanager.yml", u->mon);
        snprintf(a2, sizeof a2, "--storage.path=%s/alertmanager", u->state);
        snprintf(a3, sizeof a3, "--web.listen-address=127.0.0.1:%d", u->c.alertmanager_port);
        /* no cluster gossip: it would listen on 0.0.0.0:9094 */
        char *argv[] = {u->am_bin, a1, a2, a3, "--cluster.listen-address=", NULL};
        if (osp_up_spawn(p, argv, u->state))
            return OSP_CLI_EXIT_FAIL;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/-/ready", u->c.alertmanager_port);
        if (!wait_200(u, p, url, 60))
            return fail_start(u, p, "not ready within 60 s");
    }
    if (write_prometheus_config(u)) {
        fprintf(stderr, "osprey up: cannot write %s/prometheus: %s\n", u->state,
                strerror(errno));
        return OSP_CLI_EXIT_FAIL;
    }
    osp_up_proc_t *p = &u->p[P_PROMETHEUS];
    snprintf(a1, sizeof a1, "--config.file=%s/prometheus/prometheus.yml", u->state);
    snprintf(a2, sizeof a2, "--storage.tsdb.path=%s/prometheus/data", u->state);
    snprintf(a3, sizeof a3, "--web.listen-address=127.0.0.1:%d", u->c.prometheus_port);
    char *argv[] = {u->prom_bin, a1, a2, a3, NULL};
    if (osp_up_spawn(p, argv, u->state))
        return OSP_CLI_EXIT_FAIL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/-/ready", u->c.prometheus_port);
    if (!wait_200(u, p, url, 60))
        return fail_start(u, p, "not ready within 60 s");
    return 0;
}

static int start_dispatcher(up_t *u) {
    char port[16], admin[16], url[128], as_url[64];
    snprintf(port, sizeof port, "%d", u->c.port);
    snprintf(admin, sizeof admin, "%d", u->c.admin_port);
    /* --autoscaler-url: /ui/status shows the autoscaler's count and its
     * last decision (the dispatcher polls its GET /status). */
    snprintf(as_url, sizeof as_url, "http://127.0.0.1:%d", u->c.autoscaler_port);
    char *fixed[] = {u->exe, "dispatch", "--host", (char *)u->c.host, "--port",
                     port, "--admin-host", "127.0.0.1", "--admin-port", admin,
                     "--admin-token-file", u->token_file,
                     "--autoscaler-url", as_url};
    osp_up_proc_t *p = &u->p[P_DISPATCHER];
    if (spawn_with(u, P_DISPATCHER, fixed, OSP_ARRAY_LEN(fixed), u->c.dispatch_args))
        return OSP_CLI_EXIT_FAIL;
    /* the admin listener's /metrics: it answers without the token */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", u->c.admin_port);
    if (!wait_200(u, p, url, 30))
        return fail_start(u, p, "not answering within 30 s");
    return 0;
}

/* The model path as one word for the autoscaler's --worker-args (which it
 * splits as a shell would): single-quoted, ' as '\''. */
static char *quote_word(const char *s) {
    size_t n = 3;
    for (const char *q = s; *q; q++)
        n += *q == '\'' ? 4 : 1;
    char *out = malloc(n), *o = out;
    if (!out)
        return NULL;
    *o++ = '\'';
    for (const char *q = s; *q; q++) {
        if (*q == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *q;
        }
    }
    *o++ = '\'';
    *o = 0;
    return out;
}

/* Worker deaths so far (the autoscaler's counter; 0 when unreadable). */
static int on_deaths(const osp_metrics_sample_t *s, void *ud) {
    if (osp_metrics_sample_is(s, "osprey_autoscaler_worker_deaths_total"))
        *(double *)ud = s->value;
    return 0;
}

static double worker_deaths(up_t *u) {
    char url[128], *body = NULL;
    double n = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", u->c.autoscaler_port);
    if (osp_up_get(url, 1000, &body) == 200)
        osp_metrics_parse_text(body, strlen(body), on_deaths, &n, NULL);
    free(body);
    return n;
}

static int start_autoscaler(up_t *u) {
    char mn[16], mx[16], port[16], disp[64], prom[64], url[128];
    char *model = quote_word(u->c.model), *wargs = NULL;
    if (!model || asprintf(&wargs, "--model %s %s", model,
                           u->c.worker_args ? u->c.worker_args : "") < 0) {
        free(model);
        return OSP_CLI_EXIT_FAIL;
    }
    free(model);
    snprintf(mn, sizeof mn, "%d", u->c.min);
    snprintf(mx, sizeof mx, "%d", u->c.max);
    snprintf(port, sizeof port, "%d", u->c.autoscaler_port);
    snprintf(disp, sizeof disp, "http://127.0.0.1:%d", u->c.admin_port);
    snprintf(prom, sizeof prom, "http://127.0.0.1:%d", u->c.prometheus_port);
    char *fixed[] = {u->exe, "autoscale", "--dispatcher", disp,
                     "--dispatcher-token-file", u->token_file, "--host",
                     "127.0.0.1", "--port", port, "--min", mn, "--max", mx,
                     "--worker-args", wargs, "--prometheus", prom};
    int n_fixed = (int)OSP_ARRAY_LEN(fixed) - (u->prometheus ? 0 : 2);
    int rc = spawn_with(u, P_AUTOSCALER, fixed, n_fixed, u->c.autoscale_args);
    free(wargs);
    if (rc)
        return OSP_CLI_EXIT_FAIL;
    osp_up_proc_t *p = &u->p[P_AUTOSCALER];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/status", u->c.autoscaler_port);
    if (!wait_200(u, p, url, 30))
        return fail_start(u, p, "not answering within 30 s");
    /* The first worker ready behind the dispatcher; a model that does not
     * load shows as workers dying at start. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/health/ready", u->c.port);
    double end = osp_now_ns() / 1e9 + UP_READY_TIMEOUT_S;
    while (!wait_200(u, p, url, 2)) {
        if (p->pid == 0)
            return fail_start(u, p, "exited");
        if (worker_deaths(u) >= 2)
            return fail_start(u, p, "reports its workers exiting at start "
                                    "(the model?)");
        if (osp_now_ns() / 1e9 > end)
            return fail_start(u, p, "has no ready worker after 180 s");
    }
    refresh_workers_sd(u);
    return 0;
}

/* ---- running and stopping ------------------------------------------ */

static void print_urls(const up_t *u) {
    const up_cli_t *c = &u->c;
    const char *h = strcmp(c->host, "0.0.0.0") && strcmp(c->host, "::") ? c->host : "127.0.0.1";
    bool v6 = strchr(h, ':') != NULL;
    char base[160];
    snprintf(base, sizeof base, "http://%s%s%s:%d", v6 ? "[" : "", h, v6 ? "]" : "", c->port);
    printf("\nosprey up: ready (%d to %d workers of %s)\n", c->min, c->max, c->model);
    printf("  UI             %s/\n", base);
    printf("  status page    %s/ui/status\n", base);
    printf("  API reference  %s/docs\n", base);
    printf("  metrics        %s/metrics\n", base);
    printf("  autoscaler     http://127.0.0.1:%d/status\n", c->autoscaler_port);
    printf("  admin API      http://127.0.0.1:%d/admin/backends (bearer token: %s)\n",
           c->admin_port, u->token_file);
    if (u->prometheus)
        printf("  Prometheus     http://127.0.0.1:%d\n", c->prometheus_port);
    if (u->alertmanager)
        printf("  Alertmanager   http://127.0.0.1:%d\n", c->alertmanager_port);
    printf("  logs, data     %s\n", u->state);
    printf("Try:\n  curl -s -H 'Content-Type: application/octet-stream' --data-binary @%s "
           "'%s/classify?top_k=3'\n", c->example_image ? c->example_image : "IMAGE.jpg",
           base);
    printf("Ctrl-C stops everything (requests in flight finish first).\n");
    fflush(stdout);
}

/* Stops what runs, in the order of the file comment; true when every
 * child stopped on SIGTERM. */
static bool stop_all(up_t *u) {
    bool clean = osp_up_stop(&u->p[P_DISPATCHER], 35);   /* its drain: 30 s */
    clean = osp_up_stop(&u->p[P_AUTOSCALER], 75) && clean; /* workers: 30 + 35 s */
    clean = osp_up_stop(&u->p[P_PROMETHEUS], 20) && clean;
    clean = osp_up_stop(&u->p[P_ALERTMANAGER], 20) && clean;
    osp_up_stop_rest(10);
    return clean;
}

/* Until SIGINT/SIGTERM (0) or the death of the dispatcher or the
 * autoscaler (1). Prometheus or Alertmanager dying is reported and
 * survived: the autoscaler holds without its source. */
static int run(up_t *u) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    for (;;) {
        struct timespec ts = {UP_POLL_MS / 1000, (UP_POLL_MS % 1000) * 1000000L};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            printf("osprey up: %s: stopping (dispatcher, autoscaler and its "
                   "workers, monitoring)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
            fflush(stdout);
            return 0;
        }
        osp_up_proc_t *dead;
        while ((dead = osp_up_reap(u->p, P_COUNT))) {
            fprintf(stderr, "osprey up: %s exited (status %d; log: %s)\n",
                    dead->name, WIFEXITED(dead->status) ? WEXITSTATUS(dead->status)
                                                        : 128 + WTERMSIG(dead->status),
                    dead->log);
            if (dead == &u->p[P_DISPATCHER] || dead == &u->p[P_AUTOSCALER]) {
                osp_up_log_tail(dead->log, 8);
                return 1;
            }
        }
        if (u->prometheus)
            refresh_workers_sd(u);
    }
}

int osp_cli_up(int argc, char **argv) {
    static up_t u; /* big paths; one per process */
    memset(&u, 0, sizeof u);
    up_cli_t *c = &u.c;
    int cpus = osp_cpus_available();
    *c = (up_cli_t){.host = "127.0.0.1", .min = 1, .max = cpus > 0 ? cpus : 1,
                    .port = 8000, .admin_port = 8001, .autoscaler_port = 8002,
                    .prometheus_port = 9090, .alertmanager_port = 9093,
                    .scrape_interval_s = 5};
    static const char *const names[P_COUNT] = {"dispatcher", "autoscaler",
                                               "prometheus", "alertmanager"};
    for (int i = 0; i < P_COUNT; i++)
        u.p[i].name = names[i];
    osp_settings_t st = {
        .cmd = "osprey up", .env_prefix = "OSPREY_UP_", .tab = opts,
        .n = OSP_ARRAY_LEN(opts), .base = c,
        .synopsis = "--model PATH [--workers MIN:MAX] [--port N] "
                    "[--no-prometheus] [options]",
        .about =
            "Starts the whole local stack and keeps it running until Ctrl-C or\n"
            "SIGTERM: the dispatcher (UI, API and /metrics on --port, admin API\n"
            "on --admin-port), the autoscaler in local mode running MIN…MAX\n"
            "workers of --model (`osprey serve`), and, when installed, Prometheus\n"
            "scraping all of them with the project's rules plus Alertmanager\n"
            "(the autoscaler then reads its metric from Prometheus). Every port\n"
            "and the model are checked before anything starts. Logs, the\n"
            "Prometheus data and stack.json go to the state directory. Stopping\n"
            "drains the dispatcher, then the autoscaler drains and stops its\n"
            "workers, then the monitoring stops; nothing is left running, even\n"
            "after `kill -9` of this process. docs/setup.md, \"One machine\".\n"};
    int rc;
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto out;
    if ((rc = preflight(&u, &st)))
        goto out;
    if (make_state_dir(&u)) {
        rc = OSP_CLI_EXIT_FAIL;
        goto out;
    }
    if (write_admin_token(&u)) {
        fprintf(stderr, "osprey up: cannot write %s/admin-token: %s\n", u.state,
                strerror(errno));
        rc = OSP_CLI_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < P_COUNT; i++)
        snprintf(u.p[i].log, sizeof u.p[i].log, "%s/%s.log", u.state, u.p[i].name);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    osp_cli_signals_block();
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    osp_up_subreaper();
    printf("osprey up: starting; logs in %s\n", u.state);
    fflush(stdout);
    if ((u.prometheus && (rc = start_monitoring(&u))) ||
        (rc = start_dispatcher(&u)) || (rc = start_autoscaler(&u))) {
        stop_all(&u);
        goto out;
    }
    write_stack_json(&u);
    print_urls(&u);
    rc = run(&u);
    bool clean = stop_all(&u);
    printf("osprey up: stopped%s\n", clean ? "" : " (something had to be killed)");
    if (rc == 0 && !clean)
        rc = OSP_CLI_EXIT_FAIL;
out:
    free(u.workers_sd);
    osp_settings_free(&st);
    return rc;
}
