/* policy.c — the autoscaler's decision: the Kubernetes HPA's algorithm
 * (autoscaling/v2, pkg/controller/podautoscaler in Kubernetes: the replica
 * calculator's tolerance and unready-pod rules, then the behavior's
 * stabilization windows and rate policies) with a KPA-style panic mode on
 * top (Knative's autoscaler: a short window that, when it sees more than
 * threshold × what the ready replicas can take, scales at once and forbids
 * scale-down until the load has stayed below the threshold for a stable
 * window).
 *
 * Why re-implement the HPA rather than approximate it: users copy an HPA's
 * `behavior` block into --config and must get the same counts, and the
 * simulator compares osprey's policy with the stock HPA by running this same
 * code with panic off. The order of the steps and the rounding (ceil for
 * scale-up percentages, truncation for scale-down ones) are the HPA's.
 *
 * Time is whatever the caller passes (seconds, monotonic): the control loop
 * passes a clock, the simulator simulated time, the tests literal numbers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/autoscale.h"

typedef struct sample_s {
    double t;
    double v[OSP_AUTOSCALE_MAX_METRICS];
} sample_t;

typedef struct stamped_s {
    double t;
    int n;              /* a recommendation, or a replica change (> 0) */
} stamped_t;

/* A small time-ordered log: append at the end, drop from the front. */
typedef struct tlog_s {
    stamped_t *e;
    int n, cap;
} tlog_t;

struct osp_autoscale_s {
    osp_autoscale_opts_t o;
    sample_t *s;                /* samples, oldest first */
    int ns, scap;
    double last_valid_t[OSP_AUTOSCALE_MAX_METRICS];
    tlog_t recs;                /* unstabilized recommendations */
    tlog_t ups, downs;          /* scale events (replicas added / removed) */
    double last_eval_t;         /* < 0: never */
    bool in_panic;
    double last_over_t;
    int max_panic;              /* the panic's count never goes down */
};

/* ---- option tables -------------------------------------------------- */

static const char *const rate_names[] = {"Pods", "Percent"};
static const char *const select_names[] = {"Max", "Min", "Disabled"};
static const char *const metric_names[] = {"concurrency", "rps",
                                           "latency-p95", "queue", "query"};
static const double metric_targets[] = {4, 10, 500, 2, 1};
static const char *const policy_names[] = {"osprey", "hpa", "threshold"};

static int name_find(const char *const *names, int n, const char *s) {
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

#define NAME_FNS(fn, type, names, count)                                       \
    const char *osp_autoscale_##fn##_name(type v) {                            \
        return (unsigned)v < (count) ? names[v] : "?";                         \
    }                                                                          \
    int osp_autoscale_##fn##_parse(const char *s, type *out) {                 \
        int i = name_find(names, (count), s);                                  \
        if (i < 0)                                                             \
            return OSP_EINVAL;                                                 \
        *out = (type)i;                                                        \
        return 0;                                                              \
    }
NAME_FNS(rate_type, osp_autoscale_rate_type_t, rate_names,
         OSP_AUTOSCALE_RATE_TYPE_COUNT)
NAME_FNS(select, osp_autoscale_select_t, select_names,
         OSP_AUTOSCALE_SELECT_COUNT)
NAME_FNS(metric, osp_autoscale_metric_t, metric_names,
         OSP_AUTOSCALE_METRIC_COUNT)
NAME_FNS(policy, osp_autoscale_policy_t, policy_names,
         OSP_AUTOSCALE_POLICY_COUNT)
#undef NAME_FNS

double osp_autoscale_metric_default_target(osp_autoscale_metric_t m) {
    return (unsigned)m < OSP_AUTOSCALE_METRIC_COUNT ? metric_targets[m] : 1;
}

bool osp_autoscale_metric_is_total(osp_autoscale_metric_t m) {
    return m != OSP_AUTOSCALE_METRIC_LATENCY_P95;
}

void osp_autoscale_opts_init_hpa(osp_autoscale_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->min_replicas = 1;
    o->max_replicas = 10;
    o->tolerance = 0.1;
    o->period_s = 15;
    o->stale_s = 0; /* 2 periods, resolved by osp_autoscale_create */
    /* The HPA's defaults (k8s.io/api autoscaling/v2 HPAScalingRules). */
    o->up.stabilization_s = 0;
    o->up.select = OSP_AUTOSCALE_SELECT_MAX;
    o->up.n_policies = 2;
    o->up.policies[0] = (osp_autoscale_rate_t){OSP_AUTOSCALE_RATE_PODS, 4, 15};
    o->up.policies[1] =
        (osp_autoscale_rate_t){OSP_AUTOSCALE_RATE_PERCENT, 100, 15};
    o->down.stabilization_s = 300;
    o->down.select = OSP_AUTOSCALE_SELECT_MAX;
    o->down.n_policies = 1;
    o->down.policies[0] =
        (osp_autoscale_rate_t){OSP_AUTOSCALE_RATE_PERCENT, 100, 15};
    o->panic = false;
    o->stable_window_s = 60;
    o->panic_window_s = 6;
    o->panic_threshold = 2.0;
    o->n_targets = 1;
    o->targets[0] = (osp_autoscale_target_t){
        OSP_AUTOSCALE_METRIC_CONCURRENCY,
        metric_targets[OSP_AUTOSCALE_METRIC_CONCURRENCY]};
}

void osp_autoscale_opts_init(osp_autoscale_opts_t *o) {
    osp_autoscale_opts_init_hpa(o);
    o->panic = true;
}

static int check_rules(const osp_autoscale_rules_t *r, const char *dir,
                       osp_err_t *err) {
    if (r->stabilization_s < 0 || r->stabilization_s > 3600)
        return osp_err_set(err, OSP_EINVAL,
                           "behavior.%s.stabilizationWindowSeconds: %d is not "
                           "in 0..3600", dir, r->stabilization_s);
    if ((unsigned)r->select >= OSP_AUTOSCALE_SELECT_COUNT)
        return osp_err_set(err, OSP_EINVAL, "behavior.%s.selectPolicy: bad",
                           dir);
    if (r->n_policies < 0 || r->n_policies > OSP_AUTOSCALE_MAX_POLICIES ||
        (r->n_policies == 0 && r->select != OSP_AUTOSCALE_SELECT_DISABLED))
        return osp_err_set(err, OSP_EINVAL,
                           "behavior.%s.policies: need 1..%d policies", dir,
                           OSP_AUTOSCALE_MAX_POLICIES);
    for (int i = 0; i < r->n_policies; i++) {
        const osp_autoscale_rate_t *p = &r->policies[i];
        if ((unsigned)p->type >= OSP_AUTOSCALE_RATE_TYPE_COUNT)
            return osp_err_set(err, OSP_EINVAL,
                               "behavior.%s.policies[%d].type: bad", dir, i);
        if (p->value <= 0)
            return osp_err_set(err, OSP_EINVAL,
                               "behavior.%s.policies[%d].value: %d is not > 0",
                               dir, i, p->value);
        if (p->period_s < 1 || p->period_s > 1800)
            return osp_err_set(err, OSP_EINVAL,
                               "behavior.%s.policies[%d].periodSeconds: %d is "
                               "not in 1..1800", dir, i, p->period_s);
    }
    return 0;
}

int osp_autoscale_opts_check(const osp_autoscale_opts_t *o, osp_err_t *err) {
    if (o->min_replicas < 1)
        return osp_err_set(err, OSP_EINVAL, "minReplicas: %d is not >= 1",
                           o->min_replicas);
    if (o->max_replicas < o->min_replicas)
        return osp_err_set(err, OSP_EINVAL,
                           "maxReplicas: %d is below minReplicas %d",
                           o->max_replicas, o->min_replicas);
    if (!(o->tolerance >= 0 && o->tolerance < 1))
        return osp_err_set(err, OSP_EINVAL, "tolerance: %g is not in [0, 1)",
                           o->tolerance);
    if (!(o->period_s > 0 && o->period_s <= 3600))
        return osp_err_set(err, OSP_EINVAL, "period: %g s is not in (0, 3600]",
                           o->period_s);
    if (!(o->stale_s >= 0))
        return osp_err_set(err, OSP_EINVAL, "stale time: %g s is not >= 0",
                           o->stale_s);
    int rc = check_rules(&o->up, "scaleUp", err);
    if (!rc)
        rc = check_rules(&o->down, "scaleDown", err);
    if (rc)
        return rc;
    if (o->panic && !(o->panic_window_s > 0 && o->stable_window_s > 0 &&
                      o->panic_threshold > 1))
        return osp_err_set(err, OSP_EINVAL,
                           "panic: windows must be > 0 s and the threshold "
                           "> 1 (got %g s, %g s, %g)", o->panic_window_s,
                           o->stable_window_s, o->panic_threshold);
    if (o->n_targets < 1 || o->n_targets > OSP_AUTOSCALE_MAX_METRICS)
        return osp_err_set(err, OSP_EINVAL, "metrics: need 1..%d, got %d",
                           OSP_AUTOSCALE_MAX_METRICS, o->n_targets);
    for (int i = 0; i < o->n_targets; i++) {
        const osp_autoscale_target_t *t = &o->targets[i];
        if ((unsigned)t->metric >= OSP_AUTOSCALE_METRIC_COUNT)
            return osp_err_set(err, OSP_EINVAL, "metrics[%d]: unknown", i);
        if (!(t->target > 0 && isfinite(t->target)))
            return osp_err_set(err, OSP_EINVAL,
                               "metrics[%d] (%s): target %g is not > 0", i,
                               metric_names[t->metric], t->target);
    }
    return 0;
}

/* ---- logs of samples, recommendations and scale events ---------------- */

static int tlog_add(tlog_t *l, double t, int n) {
    stamped_t *e = osp_grow(l->e, &l->cap, l->n, sizeof *e, 16);
    if (!e)
        return OSP_ENOMEM;
    l->e = e;
    l->e[l->n++] = (stamped_t){t, n};
    return 0;
}

/* Drops entries at or before cutoff (they are in time order). */
static void tlog_prune(tlog_t *l, double cutoff) {
    int k = 0;
    while (k < l->n && l->e[k].t <= cutoff)
        k++;
    if (k) {
        memmove(l->e, l->e + k, (size_t)(l->n - k) * sizeof *l->e);
        l->n -= k;
    }
}

/* Replicas changed within the last period_s (the HPA's
 * getReplicasChangePerPeriod: events strictly after now - period). */
static int tlog_sum_since(const tlog_t *l, double cutoff) {
    int sum = 0;
    for (int i = 0; i < l->n; i++)
        if (l->e[i].t > cutoff)
            sum += l->e[i].n;
    return sum;
}

static int max_period(const osp_autoscale_rules_t *r) {
    int m = 0;
    for (int i = 0; i < r->n_policies; i++)
        m = OSP_MAX(m, r->policies[i].period_s);
    return m;
}

static int add_sample(osp_autoscale_t *a, const osp_autoscale_sample_t *s) {
    double keep = OSP_MAX(OSP_MAX(a->o.period_s, a->o.panic_window_s),
                          a->o.stale_s);
    int k = 0;
    while (k < a->ns && a->s[k].t <= s->t_s - keep)
        k++;
    if (k) {
        memmove(a->s, a->s + k, (size_t)(a->ns - k) * sizeof *a->s);
        a->ns -= k;
    }
    sample_t *arr = osp_grow(a->s, &a->scap, a->ns, sizeof *arr, 64);
    if (!arr)
        return OSP_ENOMEM;
    a->s = arr;
    sample_t *x = &a->s[a->ns++];
    x->t = s->t_s;
    for (int i = 0; i < a->o.n_targets; i++) {
        x->v[i] = s->values[i];
        if (isfinite(s->values[i]))
            a->last_valid_t[i] = s->t_s;
    }
    return 0;
}

/* The average of metric i over samples in (now - window, now]; when the
 * window has none, the newest valid sample younger than stale_s; else NaN
 * (missing). */
static double window_avg(const osp_autoscale_t *a, int i, double now,
                         double window) {
    double sum = 0;
    int n = 0;
    for (int k = a->ns - 1; k >= 0 && a->s[k].t > now - window; k--)
        if (isfinite(a->s[k].v[i])) {
            sum += a->s[k].v[i];
            n++;
        }
    if (n)
        return sum / n;
    for (int k = a->ns - 1; k >= 0 && a->s[k].t > now - a->o.stale_s; k--)
        if (isfinite(a->s[k].v[i]))
            return a->s[k].v[i];
    return NAN;
}

/* ---- create / destroy ------------------------------------------------ */

osp_autoscale_t *osp_autoscale_create(const osp_autoscale_opts_t *opts,
                                      osp_err_t *err) {
    if (osp_autoscale_opts_check(opts, err))
        return NULL;
    osp_autoscale_t *a = calloc(1, sizeof *a);
    if (!a) {
        osp_err_set(err, OSP_ENOMEM, "autoscaler: out of memory");
        return NULL;
    }
    a->o = *opts;
    /* 0: two periods, whatever the period (a shortened period shortens
     * how long the last value bridges a gap in the data). */
    if (a->o.stale_s == 0)
        a->o.stale_s = 2 * a->o.period_s;
    a->last_eval_t = -1;
    for (int i = 0; i < OSP_AUTOSCALE_MAX_METRICS; i++)
        a->last_valid_t[i] = -INFINITY;
    return a;
}

void osp_autoscale_destroy(osp_autoscale_t *a) {
    if (!a)
        return;
    free(a->s);
    free(a->recs.e);
    free(a->ups.e);
    free(a->downs.e);
    free(a);
}

const osp_autoscale_opts_t *osp_autoscale_opts(const osp_autoscale_t *a) {
    return &a->o;
}

/* ---- the replica calculator (per metric) ------------------------------ */

/* ceil() that forgives the last bits of a ratio that should be whole
 * (12.0 / 4 must give 3, not 4). */
static int ceil_count(double x) {
    double c = ceil(x - 1e-9);
    return c > 1e6 ? 1000000 : (int)c;
}

/* What one metric alone asks for, as the HPA's replica calculator: no
 * change within the tolerance; on a scale-up, replicas that are not ready
 * count as having no load (capacity is coming: scale only if the load
 * still exceeds the target with them); on a scale-down, they count as at
 * the target (no scale-down because of replicas that cannot report). */
static int metric_proposal(const osp_autoscale_t *a, int i, double v,
                           int current, int ready) {
    const osp_autoscale_target_t *t = &a->o.targets[i];
    double tol = a->o.tolerance;
    if (!isfinite(v) || v < 0)
        return -1;
    if (ready <= 0)
        return current;
    int unready = OSP_MAX(current - ready, 0);
    if (!osp_autoscale_metric_is_total(t->metric)) {
        double ratio = v / t->target;
        if (fabs(ratio - 1) <= tol)
            return current;
        return ceil_count(ratio * ready);
    }
    double ratio = v / (t->target * ready);
    if (fabs(ratio - 1) <= tol)
        return current;
    if (!unready)
        return ceil_count(ratio * ready);
    if (ratio > 1) {
        double r2 = v / (t->target * (ready + unready));
        if (r2 <= 1 + tol)
            return current;
        return ceil_count(v / t->target);
    }
    double r2 = (v + t->target * unready) / (t->target * (ready + unready));
    if (r2 >= 1 - tol)
        return current;
    return ceil_count(v / t->target + unready);
}

/* ---- behavior: stabilization and rate policies ------------------------ */

/* The HPA's stabilizeRecommendationWithBehaviors: the count moves up only
 * to the lowest recommendation of the scale-up window and down only to the
 * highest of the scale-down window; the unstabilized recommendation is
 * recorded for later calls. */
static int stabilize(osp_autoscale_t *a, double now, int current, int desired,
                     char *rule, size_t rule_bytes) {
    double up_cut = now - a->o.up.stabilization_s;
    double down_cut = now - a->o.down.stabilization_s;
    int up = desired, down = desired;
    for (int i = 0; i < a->recs.n; i++) {
        if (a->recs.e[i].t > up_cut)
            up = OSP_MIN(up, a->recs.e[i].n);
        if (a->recs.e[i].t > down_cut)
            down = OSP_MAX(down, a->recs.e[i].n);
    }
    int r = current;
    if (r < up)
        r = up;
    if (r > down)
        r = down;
    tlog_prune(&a->recs, OSP_MIN(up_cut, down_cut));
    tlog_add(&a->recs, now, desired); /* ENOMEM: the window forgets one */
    if (r < desired)
        snprintf(rule, rule_bytes,
                 "scale-up stabilized: lowest recommendation in the last %d s "
                 "is %d", a->o.up.stabilization_s, r);
    else if (r > desired)
        snprintf(rule, rule_bytes,
                 "scale-down stabilized: highest recommendation in the last "
                 "%d s is %d", a->o.down.stabilization_s, r);
    return r;
}

/* The most (scale-up) or least (scale-down) replicas the rate policies
 * allow now: the HPA's calculateScaleUpLimitWithScalingRules and
 * calculateScaleDownLimitWithBehaviors. *which is the policy that set the
 * limit (-1: Disabled). */
static int rate_limit(const osp_autoscale_t *a, double now, int current,
                      bool up_dir, int *which) {
    const osp_autoscale_rules_t *r = up_dir ? &a->o.up : &a->o.down;
    *which = -1;
    if (r->select == OSP_AUTOSCALE_SELECT_DISABLED)
        return current;
    /* For scale-up "Max" picks the highest limit, for scale-down the
     * lowest (the most change either way); "Min" the other way round. */
    bool want_high = up_dir == (r->select == OSP_AUTOSCALE_SELECT_MAX);
    int best = want_high ? INT32_MIN : INT32_MAX;
    for (int i = 0; i < r->n_policies; i++) {
        const osp_autoscale_rate_t *p = &r->policies[i];
        double cut = now - p->period_s;
        int start = current - tlog_sum_since(&a->ups, cut) +
                    tlog_sum_since(&a->downs, cut);
        int lim;
        if (p->type == OSP_AUTOSCALE_RATE_PODS)
            lim = up_dir ? start + p->value : start - p->value;
        else if (up_dir)
            lim = (int)ceil(start * (1 + p->value / 100.0));
        else
            lim = (int)(start * (1 - p->value / 100.0));
        if (want_high ? lim > best : lim < best) {
            best = lim;
            *which = i;
        }
    }
    return best;
}

static void policy_text(const osp_autoscale_rules_t *r, int which, char *buf,
                        size_t n) {
    if (which < 0) {
        snprintf(buf, n, "selectPolicy Disabled");
        return;
    }
    const osp_autoscale_rate_t *p = &r->policies[which];
    snprintf(buf, n, "policy %s %d/%ds", rate_names[p->type], p->value,
             p->period_s);
}

/* The HPA's convertDesiredReplicasWithBehaviorRate: the rate policies and
 * min/max bound the stabilized count. */
static int limit_rate(const osp_autoscale_t *a, double now, int current,
                      int desired, char *rule, size_t rule_bytes) {
    char pol[64];
    int which;
    if (desired > current) {
        int lim = OSP_MAX(rate_limit(a, now, current, true, &which), current);
        int allowed = OSP_MIN(a->o.max_replicas, lim);
        if (desired > allowed) {
            if (lim < a->o.max_replicas) {
                policy_text(&a->o.up, which, pol, sizeof pol);
                snprintf(rule, rule_bytes, "scale-up limited by %s", pol);
            } else {
                snprintf(rule, rule_bytes, "at maxReplicas %d",
                         a->o.max_replicas);
            }
            return allowed;
        }
    } else if (desired < current) {
        int lim = OSP_MIN(rate_limit(a, now, current, false, &which), current);
        int allowed = OSP_MAX(a->o.min_replicas, lim);
        if (desired < allowed) {
            if (lim > a->o.min_replicas) {
                policy_text(&a->o.down, which, pol, sizeof pol);
                snprintf(rule, rule_bytes, "scale-down limited by %s", pol);
            } else {
                snprintf(rule, rule_bytes, "at minReplicas %d",
                         a->o.min_replicas);
            }
            return allowed;
        }
    }
    return desired;
}

/* ---- one full decision ----------------------------------------------- */

/* Fills each metric's view and returns the largest proposal (-1 when every
 * metric is missing). *missing counts missing metrics. */
static int propose(osp_autoscale_t *a, const osp_autoscale_sample_t *s,
                   osp_autoscale_decision_t *d, int *missing, int *arg) {
    int best = -1;
    *missing = 0;
    *arg = -1;
    for (int i = 0; i < a->o.n_targets; i++) {
        osp_autoscale_metric_view_t *m = &d->metrics[i];
        m->desired = metric_proposal(a, i, m->value, s->current, s->ready);
        if (m->desired < 0)
            (*missing)++;
        else if (m->desired > best) {
            best = m->desired;
            *arg = i;
        }
    }
    return best;
}

static void describe_metric(const osp_autoscale_decision_t *d, int i,
                            char *rule, size_t n) {
    const osp_autoscale_metric_view_t *m = &d->metrics[i];
    if (osp_autoscale_metric_is_total(m->metric))
        snprintf(rule, n, "%s %.3g for target %g × %d ready → %d",
                 metric_names[m->metric], m->value, m->target, d->ready,
                 m->desired);
    else
        snprintf(rule, n, "%s %.3g for target %g with %d ready → %d",
                 metric_names[m->metric], m->value, m->target, d->ready,
                 m->desired);
}

/* The HPA's reconcile step: bounds first, then the metrics' proposal (held
 * when every metric is missing, or when one is missing and the rest would
 * scale down), then stabilization and the rate policies. */
static int evaluate(osp_autoscale_t *a, const osp_autoscale_sample_t *s,
                    osp_autoscale_decision_t *d) {
    int cur = s->current;
    size_t rn = sizeof d->rule;
    if (cur > a->o.max_replicas) {
        snprintf(d->rule, rn, "above maxReplicas %d", a->o.max_replicas);
        return a->o.max_replicas;
    }
    if (cur < a->o.min_replicas) {
        snprintf(d->rule, rn, "below minReplicas %d", a->o.min_replicas);
        return a->o.min_replicas;
    }
    int missing, arg;
    int want = propose(a, s, d, &missing, &arg);
    if (want < 0 || (missing && want < cur)) {
        d->held = true;
        for (int i = 0; i < a->o.n_targets; i++)
            if (d->metrics[i].desired < 0) {
                double age = s->t_s - a->last_valid_t[i];
                if (isfinite(age))
                    snprintf(d->rule, rn, "held: no data for %s for %.0f s",
                             metric_names[d->metrics[i].metric], age);
                else
                    snprintf(d->rule, rn, "held: no data for %s yet",
                             metric_names[d->metrics[i].metric]);
                break;
            }
        return cur;
    }
    describe_metric(d, arg, d->rule, rn);
    int r = stabilize(a, s->t_s, cur, want, d->rule, rn);
    return limit_rate(a, s->t_s, cur, r, d->rule, rn);
}

/* ---- panic ----------------------------------------------------------- */

/* Updates the panic state from the panic-window averages; returns the
 * count panic asks for (0 when not in panic). */
static int panic_check(osp_autoscale_t *a, const osp_autoscale_sample_t *s,
                       osp_autoscale_decision_t *d) {
    if (!a->o.panic)
        return 0;
    int ready = OSP_MAX(s->ready, 1);
    int cur = OSP_MAX(s->current, 1);
    bool starting = s->ready < s->current;
    int want = 0, over = -1;
    double over_ratio = 0;
    for (int i = 0; i < a->o.n_targets; i++) {
        const osp_autoscale_metric_view_t *m = &d->metrics[i];
        if (!isfinite(m->panic_value))
            continue;
        bool total = osp_autoscale_metric_is_total(m->metric);
        double ratio = total ? m->panic_value / (m->target * ready)
                             : m->panic_value / m->target;
        if (ratio > a->o.panic_threshold && ratio > over_ratio) {
            over = i;
            over_ratio = ratio;
        }
        /* What this metric asks for, counting every replica asked for
         * (ready or starting) as capacity, beyond twice the tolerance: a
         * 6 s average is noisy (at 32 requests/s a Poisson window is ±7%
         * at one sigma), and a replica added on noise stays for the whole
         * scale-down window; the period decisions refine with the usual
         * tolerance. A backlog (in-flight,
         * queued, latency: all but a rate) grows by itself until starting
         * replicas are ready, so it asks for more only when none is
         * starting. */
        double r_cur = total ? m->panic_value / (m->target * cur) : ratio;
        if (r_cur <= 1 + 2 * a->o.tolerance ||
            (starting && m->metric != OSP_AUTOSCALE_METRIC_RPS))
            continue;
        /* Sized to the edge of the band (value up to target × (1 + 2 ×
         * tolerance) per replica), not its middle: panic gets close at
         * once, and the period decisions, on less noisy averages, add the
         * rest if the load stays — a replica panic adds on noise would
         * stay for the whole scale-down window. */
        double edge = 1 + 2 * a->o.tolerance;
        want = OSP_MAX(want, total ? ceil_count(m->panic_value /
                                                (m->target * edge))
                                   : ceil_count(ratio * ready / edge));
    }
    if (over >= 0) {
        if (!a->in_panic) {
            a->in_panic = true;
            a->max_panic = s->current;
        }
        a->last_over_t = s->t_s;
        const osp_autoscale_metric_view_t *m = &d->metrics[over];
        snprintf(d->rule, sizeof d->rule,
                 "panic: %s %.3g over the last %g s > %g × target %g × %d "
                 "ready", metric_names[m->metric], m->panic_value,
                 a->o.panic_window_s, a->o.panic_threshold, m->target, ready);
    } else if (a->in_panic &&
               s->t_s - a->last_over_t >= a->o.stable_window_s) {
        a->in_panic = false;
    }
    if (!a->in_panic)
        return 0;
    a->max_panic = OSP_MIN(OSP_MAX(a->max_panic, want), a->o.max_replicas);
    return a->max_panic;
}

/* ---- the step -------------------------------------------------------- */

void osp_autoscale_step(osp_autoscale_t *a, const osp_autoscale_sample_t *s,
                        osp_autoscale_decision_t *d) {
    memset(d, 0, sizeof *d);
    d->t_s = s->t_s;
    d->current = s->current;
    d->ready = s->ready;
    d->desired = s->current;
    d->n_metrics = a->o.n_targets;
    add_sample(a, s); /* ENOMEM: this sample is not averaged in */
    for (int i = 0; i < a->o.n_targets; i++) {
        osp_autoscale_metric_view_t *m = &d->metrics[i];
        m->metric = a->o.targets[i].metric;
        m->target = a->o.targets[i].target;
        m->value = window_avg(a, i, s->t_s, a->o.period_s);
        m->panic_value = window_avg(a, i, s->t_s, a->o.panic_window_s);
        m->desired = -1;
    }
    int panic_want = panic_check(a, s, d);
    char panic_rule[sizeof d->rule];
    memcpy(panic_rule, d->rule, sizeof panic_rule);
    d->rule[0] = 0;
    int want = s->current;
    if (a->last_eval_t < 0 || s->t_s - a->last_eval_t >= a->o.period_s - 1e-9) {
        a->last_eval_t = s->t_s;
        d->evaluated = true;
        want = evaluate(a, s, d);
    } else {
        snprintf(d->rule, sizeof d->rule, "next decision in %.0f s",
                 a->o.period_s - (s->t_s - a->last_eval_t));
    }
    if (a->in_panic) {
        /* No scale-down while in panic; at least what the panic asks. */
        int p = OSP_MAX(panic_want, s->current);
        if (p > want) {
            want = p;
            d->evaluated = true;
            d->held = false;
            memcpy(d->rule, panic_rule, sizeof d->rule);
            if (!panic_rule[0])
                snprintf(d->rule, sizeof d->rule,
                         "panic: holding %d until %g s without overload", p,
                         a->o.stable_window_s);
        }
    }
    d->panic = a->in_panic;
    d->desired = want;
    if (want != s->current) {
        tlog_t *l = want > s->current ? &a->ups : &a->downs;
        double keep = OSP_MAX(max_period(&a->o.up), max_period(&a->o.down));
        tlog_prune(&a->ups, s->t_s - keep);
        tlog_prune(&a->downs, s->t_s - keep);
        tlog_add(l, s->t_s, abs(want - s->current));
    }
}
