/* sim.c — `osprey autoscale simulate`: the autoscaler's policies run against
 * a queueing model of workers driven by a load trace, in simulated time.
 *
 * Why a model and not only live tests: an autoscaling policy is judged over
 * minutes to hours of traffic (a diurnal cycle, a ten-fold spike, a step),
 * several times per change, and side by side with the policies it must beat
 * on the same arrivals. The model runs an hour of traffic in well under a
 * second and is deterministic for a seed, so the benchmark's ratios are
 * exact and repeatable.
 *
 * The model (what it keeps of the real system):
 *   - requests arrive as a non-homogeneous Poisson process following the
 *     trace (the load generator's own arrival code, src/load/arrivals.c);
 *   - the dispatcher sends each to the ready worker with the fewest
 *     outstanding requests (osprey dispatch's least-outstanding balancing)
 *     below max_inflight; when every one is at max_inflight the request
 *     waits in the dispatcher's queue (at most queue_size, at most
 *     queue_timeout_s, else rejected: a 503) for the first free slot; with
 *     no ready worker at all it is rejected at once (as osprey dispatch);
 *   - a worker serves one request at a time, 1/capacity s each, in order;
 *   - a new worker is ready startup_s after it is asked for (process start
 *     and model load); a removed worker takes no new requests and leaves
 *     when its queue is empty (drain), counted as cost until then;
 *   - every tick the policy sees what a control loop would read from the
 *     dispatcher: in-flight + queued requests, the request rate of the last
 *     tick, the p95 latency of the last tick, the queued requests. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/autoscale.h"

enum { W_STARTING, W_READY, W_DRAINING, W_GONE };

typedef struct worker_s {
    int state;
    double born, ready_at, gone_at;
    double free_at;     /* when its server has finished all it was given */
    double *done;       /* completion times of outstanding requests (ring) */
    int head, n, cap;
} worker_t;

typedef struct sim_s {
    const osp_autoscale_sim_opts_t *so;
    const osp_autoscale_opts_t *po;
    osp_autoscale_policy_t policy;
    osp_autoscale_t *as;
    double service_s;
    worker_t *w;
    int nw, wcap;
    double *pending;    /* arrival times held while no worker is ready */
    int p_head, p_n, p_cap;
    osp_load_hist_t *lat, *tick_lat;
    uint64_t tick_arrivals;
    int last_dir;       /* direction of the last scale event */
    double last_threshold_t;
    osp_autoscale_sim_result_t *r;
} sim_t;

void osp_autoscale_sim_opts_init(osp_autoscale_sim_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->capacity_rps = 10;
    o->startup_s = 10;
    o->slo_ms = 1000;
    o->tick_s = 1;
    o->max_inflight = 64;
    o->queue_size = 256;
    o->queue_timeout_s = 5;
    o->seed = 1;
}

/* ---- workers ------------------------------------------------------- */

static int worker_outstanding(worker_t *w, double now) {
    while (w->n && w->done[w->head] <= now) {
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
    return w->n;
}

static int ring_push(double **arr, int *head, int *n, int *cap, double v) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        double *a = malloc((size_t)nc * sizeof *a);
        if (!a)
            return OSP_ENOMEM;
        for (int i = 0; i < *n; i++)
            a[i] = (*arr)[(*head + i) % *cap];
        free(*arr);
        *arr = a;
        *head = 0;
        *cap = nc;
    }
    (*arr)[(*head + *n) % *cap] = v;
    (*n)++;
    return 0;
}

static int add_worker(sim_t *s, double now, bool ready) {
    worker_t *w = osp_grow(s->w, &s->wcap, s->nw, sizeof *w, 16);
    if (!w)
        return OSP_ENOMEM;
    s->w = w;
    w = &s->w[s->nw++];
    memset(w, 0, sizeof *w);
    w->state = ready ? W_READY : W_STARTING;
    w->born = now;
    w->ready_at = ready ? now : now + s->so->startup_s;
    w->free_at = now;
    return 0;
}

/* Serves one request at w: its latency is known at once (FIFO, fixed
 * service time), so it is recorded now. */
static int serve_at(sim_t *s, worker_t *w, double arrived, double now) {
    double start = OSP_MAX(now, w->free_at);
    w->free_at = start + s->service_s;
    int rc = ring_push(&w->done, &w->head, &w->n, &w->cap, w->free_at);
    if (rc)
        return rc;
    double lat_s = w->free_at - arrived;
    uint64_t us = (uint64_t)llround(lat_s * 1e6);
    osp_load_hist_record(s->lat, us);
    osp_load_hist_record(s->tick_lat, us);
    if (lat_s * 1000 > s->so->slo_ms)
        s->r->slo_violations++;
    return 0;
}

/* The ready worker with the fewest outstanding requests below
 * max_inflight, or NULL. *any_ready tells whether one is ready at all. */
static worker_t *pick(sim_t *s, double now, bool *any_ready) {
    worker_t *best = NULL;
    int best_n = 0;
    *any_ready = false;
    for (int i = 0; i < s->nw; i++) {
        worker_t *w = &s->w[i];
        if (w->state != W_READY)
            continue;
        *any_ready = true;
        int n = worker_outstanding(w, now);
        if (n < s->so->max_inflight && (!best || n < best_n)) {
            best = w;
            best_n = n;
        }
    }
    return best;
}

static void reject(sim_t *s) {
    s->r->rejected++;
    s->r->slo_violations++;
}

static double pending_pop(sim_t *s) {
    double arrived = s->pending[s->p_head];
    s->p_head = (s->p_head + 1) % s->p_cap;
    s->p_n--;
    return arrived;
}

/* Serves what waits in the dispatcher's queue, in order, while a slot is
 * free; what waited longer than the queue timeout is rejected. */
static int drain_pending(sim_t *s, double now) {
    while (s->p_n) {
        if (s->pending[s->p_head] + s->so->queue_timeout_s <= now) {
            pending_pop(s);
            reject(s);
            continue;
        }
        bool any;
        worker_t *w = pick(s, now, &any);
        if (!w)
            return 0;
        int rc = serve_at(s, w, pending_pop(s), now);
        if (rc)
            return rc;
    }
    return 0;
}

static int dispatch(sim_t *s, double arrived, double now) {
    bool any;
    worker_t *w = s->p_n ? NULL : pick(s, now, &any);
    if (w)
        return serve_at(s, w, arrived, now);
    if (!s->p_n && !any) {
        reject(s); /* no candidate at all: 503 at once */
        return 0;
    }
    if (s->p_n >= s->so->queue_size) {
        reject(s);
        return 0;
    }
    return ring_push(&s->pending, &s->p_head, &s->p_n, &s->p_cap, arrived);
}

/* Workers whose start-up ends by `now` become ready. */
static void make_ready(sim_t *s, double now) {
    for (int i = 0; i < s->nw; i++)
        if (s->w[i].state == W_STARTING && s->w[i].ready_at <= now)
            s->w[i].state = W_READY;
}

/* When something may leave the dispatcher's queue: the first slot a full
 * ready worker frees, or the head's queue timeout. */
static double next_pending(sim_t *s) {
    if (!s->p_n)
        return INFINITY;
    double t = s->pending[s->p_head] + s->so->queue_timeout_s;
    for (int i = 0; i < s->nw; i++) {
        worker_t *w = &s->w[i];
        if (w->state == W_READY && w->n)
            t = OSP_MIN(t, w->done[w->head]);
    }
    return t;
}

static double next_ready(const sim_t *s) {
    double t = INFINITY;
    for (int i = 0; i < s->nw; i++)
        if (s->w[i].state == W_STARTING)
            t = OSP_MIN(t, s->w[i].ready_at);
    return t;
}

static void counts(sim_t *s, int *current, int *ready) {
    *current = *ready = 0;
    for (int i = 0; i < s->nw; i++) {
        int st = s->w[i].state;
        *current += st == W_STARTING || st == W_READY;
        *ready += st == W_READY;
    }
}

/* ---- acting on a decision ------------------------------------------ */

static void remove_one(sim_t *s, double now) {
    /* A worker still starting costs least to drop; else the ready one with
     * the fewest outstanding requests drains. */
    worker_t *victim = NULL;
    for (int i = s->nw - 1; i >= 0 && !victim; i--)
        if (s->w[i].state == W_STARTING)
            victim = &s->w[i];
    if (victim) {
        victim->state = W_GONE;
        victim->gone_at = now;
        return;
    }
    int best_n = 0;
    for (int i = 0; i < s->nw; i++) {
        worker_t *w = &s->w[i];
        if (w->state != W_READY)
            continue;
        int n = worker_outstanding(w, now);
        if (!victim || n < best_n) {
            victim = w;
            best_n = n;
        }
    }
    if (victim) {
        victim->state = W_DRAINING;
        victim->gone_at = OSP_MAX(now, victim->free_at);
    }
}

static int scale_to(sim_t *s, double now, int current, int desired) {
    if (desired == current)
        return 0;
    int dir = desired > current ? 1 : -1;
    s->r->scale_events++;
    if (s->last_dir && dir != s->last_dir)
        s->r->direction_changes++;
    s->last_dir = dir;
    for (int k = current; k < desired; k++) {
        int rc = add_worker(s, now, false);
        if (rc)
            return rc;
    }
    for (int k = desired; k < current; k++)
        remove_one(s, now);
    s->r->max_replicas = OSP_MAX(s->r->max_replicas, desired);
    return 0;
}

/* The seed project's kind of policy: one replica up or down per period
 * when the value per ready replica crosses fixed thresholds. */
static int threshold_decide(sim_t *s, double now, int current, int ready,
                            double v) {
    const osp_autoscale_opts_t *o = s->po;
    if (now - s->last_threshold_t < o->period_s - 1e-9 || !isfinite(v))
        return current;
    s->last_threshold_t = now;
    const osp_autoscale_target_t *t = &o->targets[0];
    double per = osp_autoscale_metric_is_total(t->metric)
                     ? v / OSP_MAX(ready, 1)
                     : v;
    int want = current;
    if (per > t->target)
        want = current + 1;
    else if (per < 0.5 * t->target)
        want = current - 1;
    return OSP_MAX(o->min_replicas, OSP_MIN(o->max_replicas, want));
}

/* ---- the tick ------------------------------------------------------ */

static double metric_value(sim_t *s, osp_autoscale_metric_t m, double now) {
    double inflight = s->p_n, queued = s->p_n;
    for (int i = 0; i < s->nw; i++) {
        worker_t *w = &s->w[i];
        if (w->state == W_GONE)
            continue;
        int n = worker_outstanding(w, now);
        inflight += n;
        queued += n > 1 ? n - 1 : 0;
    }
    switch (m) {
    case OSP_AUTOSCALE_METRIC_RPS:
        return (double)s->tick_arrivals / s->so->tick_s;
    case OSP_AUTOSCALE_METRIC_LATENCY_P95:
        return osp_load_hist_count(s->tick_lat)
                   ? osp_load_hist_percentile(s->tick_lat, 95) / 1000.0
                   : NAN;
    case OSP_AUTOSCALE_METRIC_QUEUE:
        return queued;
    default:
        return inflight;
    }
}

static int tick(sim_t *s, double now) {
    for (int i = 0; i < s->nw; i++)
        if (s->w[i].state == W_DRAINING && s->w[i].gone_at <= now)
            s->w[i].state = W_GONE;
    osp_autoscale_sample_t smp = {.t_s = now};
    counts(s, &smp.current, &smp.ready);
    for (int i = 0; i < s->po->n_targets; i++)
        smp.values[i] = metric_value(s, s->po->targets[i].metric, now);
    s->tick_arrivals = 0;
    osp_load_hist_reset(s->tick_lat);
    int desired;
    if (s->policy == OSP_AUTOSCALE_POLICY_THRESHOLD) {
        desired = threshold_decide(s, now, smp.current, smp.ready,
                                   smp.values[0]);
    } else {
        osp_autoscale_decision_t d;
        osp_autoscale_step(s->as, &smp, &d);
        desired = d.desired;
    }
    return scale_to(s, now, smp.current, desired);
}

/* ---- steps and time to capacity ------------------------------------- */

/* A step: the offered rate grows by half or more, and by at least one
 * worker's capacity, from one tick to the next. */
static void find_steps(sim_t *s, double dur) {
    osp_autoscale_sim_result_t *r = s->r;
    double dt = s->so->tick_s;
    double prev = osp_load_profile_rate_at(s->so->trace, 0);
    for (double t = dt; t < dur && r->n_steps < OSP_AUTOSCALE_SIM_MAX_STEPS;
         t += dt) {
        double cur = osp_load_profile_rate_at(s->so->trace, t);
        if (cur >= 1.5 * prev && cur - prev >= s->so->capacity_rps) {
            r->step_t_s[r->n_steps] = t;
            r->time_to_capacity_s[r->n_steps] = -1;
            r->n_steps++;
        }
        prev = cur;
    }
}

/* At each tick: the first time after a step (before the next) that the
 * ready workers cover the offered rate. */
static void note_capacity(sim_t *s, double now) {
    osp_autoscale_sim_result_t *r = s->r;
    for (int k = 0; k < r->n_steps; k++) {
        double end = k + 1 < r->n_steps ? r->step_t_s[k + 1] : INFINITY;
        if (now < r->step_t_s[k] || now >= end ||
            r->time_to_capacity_s[k] >= 0)
            continue;
        int current, ready;
        counts(s, &current, &ready);
        if (ready * s->so->capacity_rps >=
            osp_load_profile_rate_at(s->so->trace, now))
            r->time_to_capacity_s[k] = now - r->step_t_s[k];
    }
}

/* ---- the run -------------------------------------------------------- */

static int run(sim_t *s) {
    double dur = osp_load_profile_duration_s(s->so->trace);
    osp_load_arrivals_t *arr =
        osp_load_arrivals_create(s->so->trace, OSP_LOAD_ARRIVAL_POISSON, s->so->seed);
    if (!arr)
        return OSP_ENOMEM;
    find_steps(s, dur);
    int rc = 0;
    for (int i = 0; i < s->po->min_replicas && !rc; i++)
        rc = add_worker(s, 0, true);
    s->r->max_replicas = s->po->min_replicas;
    double next_arrival, next_tick = 0;
    if (!osp_load_arrivals_next(arr, &next_arrival))
        next_arrival = INFINITY;
    while (!rc) {
        double t_ready = next_ready(s), t_pend = next_pending(s);
        double now = OSP_MIN(OSP_MIN(next_arrival, next_tick),
                             OSP_MIN(t_ready, t_pend));
        if (now >= dur)
            break;
        make_ready(s, now);
        rc = drain_pending(s, now);
        if (rc || now == t_ready || now == t_pend)
            continue;
        if (now == next_arrival) {
            s->r->requests++;
            s->tick_arrivals++;
            rc = dispatch(s, next_arrival, now);
            if (!osp_load_arrivals_next(arr, &next_arrival))
                next_arrival = INFINITY;
        } else {
            note_capacity(s, now);
            rc = tick(s, now);
            next_tick += s->so->tick_s;
        }
    }
    osp_load_arrivals_destroy(arr);
    /* Requests still held when the trace ends were never served. */
    s->r->slo_violations += (uint64_t)s->p_n;
    for (int i = 0; i < s->nw; i++) {
        worker_t *w = &s->w[i];
        double end = w->state == W_GONE || w->state == W_DRAINING
                         ? OSP_MIN(w->gone_at, dur)
                         : dur;
        s->r->replica_seconds += OSP_MAX(end - w->born, 0);
    }
    return rc;
}

int osp_autoscale_simulate(const osp_autoscale_sim_opts_t *so,
                           const osp_autoscale_opts_t *policy_opts,
                           osp_autoscale_policy_t policy,
                           osp_autoscale_sim_result_t *out, osp_err_t *err) {
    memset(out, 0, sizeof *out);
    out->policy = policy;
    if (!so->trace || osp_load_profile_duration_s(so->trace) <= 0)
        return osp_err_set(err, OSP_EINVAL, "simulate: the trace is empty");
    if (!(so->capacity_rps > 0) || !(so->tick_s > 0) || so->startup_s < 0 ||
        !(so->slo_ms > 0) || so->max_inflight < 1 || so->queue_size < 0 ||
        !(so->queue_timeout_s >= 0))
        return osp_err_set(err, OSP_EINVAL,
                           "simulate: capacity, tick and SLO must be > 0, "
                           "start-up >= 0, max in-flight >= 1");
    if ((unsigned)policy >= OSP_AUTOSCALE_POLICY_COUNT)
        return osp_err_set(err, OSP_EINVAL, "simulate: unknown policy");
    osp_autoscale_opts_t po = *policy_opts;
    if (policy == OSP_AUTOSCALE_POLICY_HPA)
        po.panic = false;
    sim_t s = {.so = so, .po = &po, .policy = policy, .r = out,
               .service_s = 1.0 / so->capacity_rps, .last_threshold_t = -1e18};
    s.as = osp_autoscale_create(&po, err);
    if (!s.as)
        return err ? err->code : OSP_EINVAL;
    s.lat = osp_load_hist_create();
    s.tick_lat = osp_load_hist_create();
    int rc = s.lat && s.tick_lat ? run(&s) : OSP_ENOMEM;
    if (!rc) {
        out->p50_ms = osp_load_hist_percentile(s.lat, 50) / 1000.0;
        out->p95_ms = osp_load_hist_percentile(s.lat, 95) / 1000.0;
        out->p99_ms = osp_load_hist_percentile(s.lat, 99) / 1000.0;
    } else {
        osp_err_set(err, rc, "simulate: out of memory");
    }
    for (int i = 0; i < s.nw; i++)
        free(s.w[i].done);
    free(s.w);
    free(s.pending);
    osp_load_hist_destroy(s.lat);
    osp_load_hist_destroy(s.tick_lat);
    osp_autoscale_destroy(s.as);
    return rc;
}
