/* local.c — the local actuator: the autoscaler runs the workers itself, as
 * `osprey serve` children of the same binary on free loopback ports, and
 * keeps the dispatcher's backend list equal to the ready ones through its
 * admin API. What Kubernetes does for a Deployment, on one machine:
 *
 *   asked for → STARTING (process up, not ready) → READY (answers
 *   /v2/health/ready 200; registered with the dispatcher) → DRAINING
 *   (deregistered: no new requests; its in-flight ones finish) → STOPPING
 *   (SIGTERM: serve drains and exits) → reaped.
 *
 * A worker that dies unasked is deregistered, counted and replaced; one a
 * restarted dispatcher no longer lists is registered again. A dry run
 * (observe_only) starts nothing and reports the dispatcher's backends, so
 * its decisions are about the system that is there. No
 * child outlives the autoscaler: each runs with PR_SET_PDEATHSIG (SIGTERM
 * when the thread that started it ends, even after `kill -9` of the
 * autoscaler) in a process group of its own (so SIGKILL reaches anything it
 * started), and destroy stops them all.
 *
 * All calls come from the control loop's thread (PDEATHSIG is tied to the
 * thread that forks: the loop's thread lives until every child is gone). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "osprey/autoscale.h"
#include "osprey/http.h"
#include "osprey/log.h"
#include "osprey/metrics.h"

#define LOCAL_MAX_WORKERS 256
#define LOCAL_PROBE_MS 500      /* one readiness or admin request */

typedef enum {
    W_STARTING = 0,
    W_READY,
    W_DRAINING,
    W_STOPPING,
    W_STATE_COUNT
} wstate_t;
static const char *const wstate_names[W_STATE_COUNT] = {
    "starting", "ready", "draining", "stopping"};

typedef struct worker_s {
    pid_t pid;
    int port;
    wstate_t state;
    double since_s;             /* when it entered the state */
    bool registered;
} worker_t;

typedef struct local_s {
    osp_autoscale_actuator_t base; /* first: the vtable */
    osp_autoscale_local_opts_t o;
    char **argv;                /* the workers' command line, port slot */
    int argc, port_slot;
    worker_t w[LOCAL_MAX_WORKERS];
    int n;
    int want;                   /* replicas asked for */
    osp_autoscale_local_stats_t stats;
} local_t;

static double now_s(void) { return osp_now_ns() / 1e9; }

/* ---- processes ----------------------------------------------------- */

/* A free loopback port: bind port 0, read it, close. Another process
 * could take it before the worker binds; the worker then fails to start
 * and is replaced on another port. */
static int free_port(const char *host) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    /* Free on the address the worker will bind (an IPv4 literal). */
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        close(fd);
        return -1;
    }
    socklen_t len = sizeof a;
    int port = -1;
    if (!bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int spawn(local_t *l, worker_t *w, osp_err_t *err) {
    int port = free_port(l->o.host);
    if (port <= 0)
        return osp_err_set(err, OSP_EIO, "local: no free port on %s (an "
                           "IPv4 address is needed)", l->o.host);
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    l->argv[l->port_slot] = port_s;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return osp_err_set(err, OSP_EIO, "local: fork: %s", strerror(errno));
    if (pid == 0) {
        /* The child: its own process group, SIGTERM when our thread ends,
         * the signals the CLI blocked unblocked, then serve. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(l->o.exe, l->argv);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with a kill right after */
    *w = (worker_t){.pid = pid, .port = port, .state = W_STARTING,
                    .since_s = now_s()};
    l->stats.started++;
    return 0;
}

static void signal_worker(worker_t *w, int sig) {
    if (w->pid > 0)
        kill(-w->pid, sig);
}

/* ---- the dispatcher's admin API ------------------------------------ */

static int admin(local_t *l, const char *method, const worker_t *w,
                 osp_err_t *err) {
    char url[512], body[128];
    snprintf(url, sizeof url, "%s/admin/backends", l->o.dispatcher);
    snprintf(body, sizeof body, "{\"address\": \"%s:%d\"}", l->o.host,
             w->port);
    long status = 0;
    int rc = osp_http_fetch_bearer(method, url, l->o.dispatcher_token, body,
                                   LOCAL_PROBE_MS * 4, &status, NULL, NULL,
                                   err);
    if (rc)
        return rc;
    /* 409 on a POST: already there; 404 on a DELETE: already gone. */
    if (status / 100 == 2 || (status == 409 && !strcmp(method, "POST")) ||
        (status == 404 && !strcmp(method, "DELETE")))
        return 0;
    return osp_err_set(err, OSP_EIO, "%s %s %s:%d: HTTP %ld", method, url,
                       l->o.host, w->port, status);
}

static bool probe_ready(local_t *l, const worker_t *w) {
    char url[256];
    snprintf(url, sizeof url, "http://%s:%d/v2/health/ready", l->o.host,
             w->port);
    long status = 0;
    return !osp_http_fetch("GET", url, NULL, LOCAL_PROBE_MS, &status,
                                 NULL, NULL, NULL) &&
           status == 200;
}

static int on_inflight(const osp_metrics_sample_t *s, void *ud) {
    if (osp_metrics_sample_is(s, "osprey_inflight_requests") &&
        isfinite(s->value))
        *(double *)ud += s->value;
    return 0;
}

/* Requests the worker is still serving (-1: cannot tell). */
static double inflight(local_t *l, const worker_t *w) {
    char url[256];
    snprintf(url, sizeof url, "http://%s:%d/metrics", l->o.host, w->port);
    long status = 0;
    char *body = NULL;
    size_t len = 0;
    double n = -1;
    if (!osp_http_fetch("GET", url, NULL, LOCAL_PROBE_MS, &status, &body,
                              &len, NULL) &&
        status == 200) {
        n = 0;
        if (osp_metrics_parse_text(body, len, on_inflight, &n, NULL))
            n = -1;
    }
    free(body);
    return n;
}

/* The dispatcher's backend list (GET /admin/backends: an array of
 * {"address", "state", ...}); NULL with err set when it cannot be read.
 * Caller decrefs. */
static json_t *backends(local_t *l, osp_err_t *err) {
    char url[512];
    snprintf(url, sizeof url, "%s/admin/backends", l->o.dispatcher);
    long status = 0;
    char *body = NULL;
    json_t *list = NULL;
    if (!osp_http_fetch_bearer("GET", url, l->o.dispatcher_token, NULL,
                               LOCAL_PROBE_MS * 4, &status, &body, NULL,
                               err)) {
        list = status == 200 ? json_loads(body, 0, NULL) : NULL;
        if (!json_is_array(list)) {
            json_decref(list);
            list = NULL;
            osp_err_set(err, OSP_EIO, "GET %s: HTTP %ld, not a backend list",
                        url, status);
        }
    }
    free(body);
    return list;
}

static bool listed(json_t *list, const char *addr) {
    size_t i;
    json_t *b;
    json_array_foreach(list, i, b) {
        const char *a = json_string_value(json_object_get(b, "address"));
        if (a && !strcmp(a, addr))
            return true;
    }
    return false;
}

/* A dispatcher that restarted has forgotten what the admin API added: a
 * ready worker it no longer lists is registered again (by advance). When
 * the list cannot be read (the dispatcher is down) nothing changes. */
static void resync(local_t *l) {
    json_t *list = backends(l, NULL);
    if (!list)
        return;
    for (int i = 0; i < l->n; i++) {
        worker_t *w = &l->w[i];
        char addr[96];
        snprintf(addr, sizeof addr, "%s:%d", l->o.host, w->port);
        if (w->state == W_READY && w->registered && !listed(list, addr)) {
            w->registered = false;
            osp_log_write(NULL, NULL, "warn", "worker not listed by the "
                          "dispatcher: registering it again", "worker", addr,
                          NULL);
        }
    }
    json_decref(list);
}

/* ---- the workers' states ------------------------------------------- */

static void set_state(worker_t *w, wstate_t s) {
    w->state = s;
    w->since_s = now_s();
}

static void remove_at(local_t *l, int i) {
    l->w[i] = l->w[--l->n];
}

/* Reaps exited children: an unasked death is counted (the count is made
 * up again by reconcile). */
static void reap(local_t *l) {
    for (int i = 0; i < l->n;) {
        int st;
        pid_t r = waitpid(l->w[i].pid, &st, WNOHANG);
        if (r != l->w[i].pid) {
            i++;
            continue;
        }
        worker_t *w = &l->w[i];
        if (w->state != W_STOPPING) {
            l->stats.died++;
            if (w->registered)
                admin(l, "DELETE", w, NULL);
            char addr[96], status[32];
            snprintf(addr, sizeof addr, "%s:%d", l->o.host, w->port);
            if (WIFSIGNALED(st))
                snprintf(status, sizeof status, "signal %d", WTERMSIG(st));
            else
                snprintf(status, sizeof status, "exit %d", WEXITSTATUS(st));
            osp_log_write(NULL, NULL, "warn", "worker exited unasked",
                          "worker", addr, "status", status, NULL);
        }
        remove_at(l, i);
    }
}

static int count(const local_t *l, wstate_t a, wstate_t b) {
    int n = 0;
    for (int i = 0; i < l->n; i++)
        n += l->w[i].state == a || l->w[i].state == b;
    return n;
}

/* Moves each worker along its life (see the file comment). */
static void advance(local_t *l) {
    double t = now_s();
    for (int i = 0; i < l->n; i++) {
        worker_t *w = &l->w[i];
        if (w->state == W_STARTING) {
            if (probe_ready(l, w)) {
                if (!admin(l, "POST", w, NULL)) {
                    w->registered = true;
                    set_state(w, W_READY);
                }
            } else if (t - w->since_s > l->o.ready_timeout_s) {
                l->stats.failed_starts++;
                signal_worker(w, SIGKILL);
                set_state(w, W_STOPPING);
            }
        } else if (w->state == W_READY && !w->registered) {
            w->registered = !admin(l, "POST", w, NULL); /* re-register */
        } else if (w->state == W_DRAINING) {
            double n = inflight(l, w);
            if (n == 0 || t - w->since_s > l->o.drain_timeout_s) {
                signal_worker(w, SIGTERM);
                set_state(w, W_STOPPING);
            }
        } else if (w->state == W_STOPPING &&
                   t - w->since_s > l->o.drain_timeout_s + 5) {
            signal_worker(w, SIGKILL);
        }
    }
}

/* The one to let go first: one still starting (cheapest), else the ready
 * one started last. */
static int pick_victim(const local_t *l) {
    for (int i = l->n - 1; i >= 0; i--)
        if (l->w[i].state == W_STARTING)
            return i;
    for (int i = l->n - 1; i >= 0; i--)
        if (l->w[i].state == W_READY)
            return i;
    return -1;
}

/* Starts or drains workers until the live ones (starting + ready) are
 * what is asked for. */
static int reconcile(local_t *l, osp_err_t *err) {
    int live = count(l, W_STARTING, W_READY);
    while (live < l->want && l->n < LOCAL_MAX_WORKERS) {
        int rc = spawn(l, &l->w[l->n], err);
        if (rc)
            return rc;
        l->n++;
        live++;
    }
    while (live > l->want) {
        int i = pick_victim(l);
        if (i < 0)
            break;
        worker_t *w = &l->w[i];
        if (w->state == W_STARTING) {
            signal_worker(w, SIGTERM);
            set_state(w, W_STOPPING);
        } else {
            /* No new requests first; the in-flight ones finish before the
             * SIGTERM (advance). */
            if (w->registered && !admin(l, "DELETE", w, NULL))
                w->registered = false;
            set_state(w, W_DRAINING);
        }
        live--;
    }
    return 0;
}

/* ---- the actuator's functions --------------------------------------- */

/* observe_only (a dry run): the dispatcher's backends as they are —
 * current = every backend listed, ready = those in state "ready". */
static int observe_dispatcher(local_t *l, int *current, int *ready,
                              osp_err_t *err) {
    json_t *list = backends(l, err);
    if (!list)
        return err ? err->code : OSP_EIO;
    size_t i;
    json_t *b;
    *current = (int)json_array_size(list);
    *ready = 0;
    json_array_foreach(list, i, b) {
        const char *st = json_string_value(json_object_get(b, "state"));
        *ready += st && !strcmp(st, "ready");
    }
    json_decref(list);
    return 0;
}

static int local_observe(osp_autoscale_actuator_t *a, int *current,
                         int *ready, osp_err_t *err) {
    local_t *l = (local_t *)a;
    if (l->o.observe_only)
        return observe_dispatcher(l, current, ready, err);
    reap(l);
    resync(l);
    advance(l);
    int rc = reconcile(l, err);
    *current = count(l, W_STARTING, W_READY);
    *ready = count(l, W_READY, W_READY);
    return rc;
}

static int local_scale(osp_autoscale_actuator_t *a, int n, osp_err_t *err) {
    local_t *l = (local_t *)a;
    if (l->o.observe_only)
        return osp_err_set(err, OSP_EINVAL, "local: observing only (a dry "
                           "run starts no worker)");
    l->want = OSP_MIN(n, LOCAL_MAX_WORKERS);
    return reconcile(l, err);
}

static char *local_status(osp_autoscale_actuator_t *a) {
    local_t *l = (local_t *)a;
    json_t *arr = json_array();
    for (int i = 0; i < l->n; i++) {
        char addr[96];
        snprintf(addr, sizeof addr, "%s:%d", l->o.host, l->w[i].port);
        json_array_append_new(
            arr, json_pack("{s:s, s:i, s:s}", "address", addr, "pid",
                           (int)l->w[i].pid, "state",
                           wstate_names[l->w[i].state]));
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

/* Stops every child: deregister, SIGTERM (serve drains), wait up to the
 * drain timeout, then SIGKILL what is left. */
static void local_destroy(osp_autoscale_actuator_t *a) {
    local_t *l = (local_t *)a;
    if (!l)
        return;
    for (int i = 0; i < l->n; i++) {
        if (l->w[i].registered)
            admin(l, "DELETE", &l->w[i], NULL);
        signal_worker(&l->w[i], SIGTERM);
    }
    double until = now_s() + l->o.drain_timeout_s;
    while (l->n && now_s() < until) {
        for (int i = 0; i < l->n;) {
            if (waitpid(l->w[i].pid, NULL, WNOHANG) == l->w[i].pid)
                remove_at(l, i);
            else
                i++;
        }
        if (l->n)
            usleep(20000);
    }
    for (int i = 0; i < l->n; i++) {
        signal_worker(&l->w[i], SIGKILL);
        waitpid(l->w[i].pid, NULL, 0);
    }
    for (int i = 0; i < l->argc; i++)
        if (i != l->port_slot)
            free(l->argv[i]);
    free(l->argv);
    free(l);
}

const osp_autoscale_local_stats_t *
osp_autoscale_local_stats(const osp_autoscale_actuator_t *a) {
    return a && !strcmp(a->name, "local") ? &((const local_t *)a)->stats
                                          : NULL;
}

/* argv: exe "serve" --host H --port P [--threads N] args... */
static int build_argv(local_t *l, osp_err_t *err) {
    int n = 8 + l->o.n_args; /* exe serve --host H --port P --threads N */
    l->argv = calloc((size_t)n + 1, sizeof *l->argv);
    if (!l->argv)
        return osp_err_set(err, OSP_ENOMEM, "local: out of memory");
    char threads[16];
    snprintf(threads, sizeof threads, "%d", l->o.worker_threads);
    const char *fixed[] = {"osprey", "serve", "--host", l->o.host, "--port"};
    int k = 0;
    for (; k < 5; k++)
        l->argv[k] = strdup(fixed[k]);
    l->port_slot = k++;
    if (l->o.worker_threads > 0) {
        l->argv[k++] = strdup("--threads");
        l->argv[k++] = strdup(threads);
    }
    for (int i = 0; i < l->o.n_args; i++)
        l->argv[k++] = strdup(l->o.args[i]);
    l->argc = k;
    for (int i = 0; i < k; i++)
        if (i != l->port_slot && !l->argv[i])
            return osp_err_set(err, OSP_ENOMEM, "local: out of memory");
    return 0;
}

osp_autoscale_actuator_t *
osp_autoscale_local_create(const osp_autoscale_local_opts_t *o,
                           osp_err_t *err) {
    if (!o->exe || !o->dispatcher || !o->host) {
        osp_err_set(err, OSP_EINVAL, "local: exe, dispatcher and host are "
                                     "required");
        return NULL;
    }
    local_t *l = calloc(1, sizeof *l);
    if (!l) {
        osp_err_set(err, OSP_ENOMEM, "local: out of memory");
        return NULL;
    }
    l->o = *o;
    if (l->o.ready_timeout_s <= 0)
        l->o.ready_timeout_s = 120;
    if (l->o.drain_timeout_s <= 0)
        l->o.drain_timeout_s = 30;
    l->base = (osp_autoscale_actuator_t){
        .name = "local", .observe = local_observe, .scale = local_scale,
        .status_json = local_status, .destroy = local_destroy};
    if (build_argv(l, err)) {
        l->port_slot = -1;
        local_destroy(&l->base);
        return NULL;
    }
    return &l->base;
}
