/* render.c — the report itself: puts the load's seconds and the recorded
 * samples on one time line (seconds since the load started), derives the
 * per-second series every chart and table uses, splits the run into load
 * levels, and writes the HTML page and the Markdown summary from them.
 * The analysis runs once (osp_report_analyse); both writers only format,
 * so the page and the summary cannot disagree. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_int.h"

#define MIB (1024.0 * 1024.0)

void osp_report_opts_init(osp_report_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->slo_p99_ms = 500;
    o->slo_error_ratio = 0.01;
}

osp_report_t *osp_report_create(const osp_report_opts_t *o, osp_err_t *err) {
    osp_report_t *r = calloc(1, sizeof *r);
    if (!r)
        goto oom;
    r->o = *o;
    if ((o->title && !(r->title = strdup(o->title))) ||
        (o->source_note && !(r->source_note = strdup(o->source_note))) ||
        (o->levels && !(r->levels_spec = strdup(o->levels))))
        goto oom;
    r->o.title = r->title ? r->title : "osprey load report";
    r->o.source_note = r->source_note;
    r->o.levels = r->levels_spec;
    if (r->levels_spec) { /* a bad spec is a usage error now, not after loading */
        osp__report_level_t lv[OSP_REPORT_MAX_LEVELS];
        int n;
        if (osp__report_parse_levels(r->levels_spec, 1 << 30, lv,
                                     OSP_REPORT_MAX_LEVELS, &n, err) < 0) {
            osp_report_destroy(r);
            return NULL;
        }
    }
    return r;
oom:
    osp_report_destroy(r);
    osp_err_set(err, OSP_ENOMEM, "out of memory");
    return NULL;
}

static void free_lines(osp__report_line_t *l, int n) {
    for (int i = 0; i < n; i++)
        free(l[i].y);
}

void osp_report_destroy(osp_report_t *r) {
    if (!r)
        return;
    for (int i = 0; i < r->ntg; i++) {
        for (int k = 0; k < r->tg[i].nm; k++)
            free(r->tg[i].m[k].p);
        free(r->tg[i].m);
    }
    free(r->tg);
    free(r->rows);
    double *arrs[] = {r->offered, r->achieved, r->errs, r->p50, r->p99,
                      r->pmax, r->err_ratio, r->desired, r->current,
                      r->cpu_total, r->rss_total, r->net_total, r->wq, r->dq,
                      r->workers_up};
    for (size_t i = 0; i < OSP_ARRAY_LEN(arrs); i++)
        free(arrs[i]);
    free(r->violation);
    free_lines(r->cpu, r->n_workers);
    free_lines(r->rss, r->n_workers);
    free_lines(r->net, r->n_workers);
    free(r->title);
    free(r->source_note);
    free(r->levels_spec);
    free(r);
}

int osp_report_levels(const osp_report_t *r) { return r->n_levels; }

/* ---- resampling --------------------------------------------------------- */

static const osp__report_mseries_t *find(const osp__report_target_t *t,
                                         const char *key) {
    for (int i = 0; t && i < t->nm; i++)
        if (!strcmp(t->m[i].key, key))
            return &t->m[i];
    return NULL;
}

/* The value at t by linear interpolation; NaN outside the samples (a
 * worker not started yet, or gone), with half a second of slack at each
 * end so a 1 s recorder covers the seconds it saw. adj > 0: a counter's
 * resets undone (each drop adds the value before it); adj < 0: the last
 * sample at or before t (replica counts are steps, not slopes). */
#define HOLD (-1)
static double value_at(const osp__report_mseries_t *m, double t, int adj) {
    if (!m || !m->n || t < m->p[0].t - 0.5 || t > m->p[m->n - 1].t + 0.5)
        return NAN;
    if (adj < 0) { /* a count (replicas): the last value, never a blend */
        int i = 0;
        while (i + 1 < m->n && m->p[i + 1].t <= t)
            i++;
        return m->p[i].v;
    }
    double off = 0, prev_off = 0;
    for (int i = 0; i < m->n; i++) {
        if (adj && i && m->p[i].v < m->p[i - 1].v)
            off += m->p[i - 1].v;
        if (m->p[i].t >= t) {
            if (i == 0)
                return m->p[0].v;
            double t0 = m->p[i - 1].t, t1 = m->p[i].t;
            double v0 = m->p[i - 1].v + prev_off, v1 = m->p[i].v + off;
            return t1 > t0 ? v0 + (v1 - v0) * (t - t0) / (t1 - t0) : v1;
        }
        prev_off = off;
    }
    return m->p[m->n - 1].v + off;
}

/* A counter's mean rate per second over [a, b]; NaN when not covered. */
static double rate_over(const osp__report_mseries_t *m, double a, double b) {
    double va = value_at(m, a, 1), vb = value_at(m, b, 1);
    return isfinite(va) && isfinite(vb) && b > a ? fmax(0, (vb - va) / (b - a)) : NAN;
}

static double nan_add(double acc, double v) {
    return !isfinite(v) ? acc : isfinite(acc) ? acc + v : v;
}

/* Start of the load on the samples' clock: the last sample before the
 * dispatcher's (or else the workers') request counter first moved, plus
 * half the gap to the next. */
static double detect_start(const osp_report_t *r) {
    const char *keys[] = {"osprey_dispatch_requests_total", "osprey_requests_total"};
    double best = INFINITY, earliest = INFINITY;
    for (size_t k = 0; k < OSP_ARRAY_LEN(keys); k++) {
        for (int i = 0; i < r->ntg; i++) {
            const osp__report_mseries_t *m = find(&r->tg[i], keys[k]);
            for (int j = 1; m && j < m->n; j++)
                if (m->p[j].v > m->p[0].v) {
                    best = fmin(best, (m->p[j - 1].t + m->p[j].t) / 2);
                    break;
                }
        }
        if (isfinite(best))
            return best;
    }
    for (int i = 0; i < r->ntg; i++)
        for (int k = 0; k < r->tg[i].nm; k++)
            if (r->tg[i].m[k].n)
                earliest = fmin(earliest, r->tg[i].m[k].p[0].t);
    return isfinite(earliest) ? earliest : 0;
}

/* "127.0.0.1:8081" from "http://127.0.0.1:8081/metrics". */
static void short_name(char *buf, size_t n, const char *url) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    snprintf(buf, n, "%.*s", (int)(n - 1), p);
    char *s = strchr(buf, '/');
    if (s)
        *s = 0;
}

static double *nans(int n) {
    double *y = malloc(sizeof *y * (size_t)(n ? n : 1));
    for (int i = 0; y && i < n; i++)
        y[i] = NAN;
    return y;
}

static int per_second(osp_report_t *r) {
    int n = r->n_rows;
    double **arrs[] = {&r->offered, &r->achieved, &r->errs, &r->p50, &r->p99,
                       &r->pmax, &r->err_ratio, &r->desired, &r->current,
                       &r->cpu_total, &r->rss_total, &r->net_total, &r->wq,
                       &r->dq, &r->workers_up};
    for (size_t i = 0; i < OSP_ARRAY_LEN(arrs); i++)
        if (!(*arrs[i] = nans(n)))
            return OSP_ENOMEM;
    if (!(r->violation = calloc((size_t)(n ? n : 1), sizeof *r->violation)))
        return OSP_ENOMEM;
    for (int i = 0; i < n; i++) {
        const osp__report_row_t *w = &r->rows[i];
        r->offered[i] = w->target;
        r->achieved[i] = w->completed;
        r->errs[i] = w->errors;
        if (w->completed > 0) {
            r->p50[i] = w->p50_ms;
            r->p99[i] = w->p99_ms;
            r->pmax[i] = w->max_ms;
        }
        /* errors counts 4xx/5xx answers (inside completed) and failures
         * (outside): errors / max(completed, errors) is exact for the
         * first and stays within 0..1 for the second. */
        double d = fmax(w->completed, w->errors);
        r->err_ratio[i] = d > 0 ? w->errors / d : 0;
        r->violation[i] = (w->completed > 0 && w->p99_ms > r->o.slo_p99_ms) ||
                          r->err_ratio[i] > r->o.slo_error_ratio;
        r->n_violations += r->violation[i];
    }

    /* the samples, on the load's clock */
    const osp__report_target_t *as = NULL, *disp = NULL;
    for (int k = 0; k < r->ntg; k++) {
        const osp__report_target_t *t = &r->tg[k];
        if (t->role == OSP__REPORT_AUTOSCALER && !as)
            as = t;
        if (t->role == OSP__REPORT_DISPATCHER && !disp)
            disp = t;
        if (t->role != OSP__REPORT_WORKER || r->n_workers == OSP__REPORT_MAX_LINES)
            continue;
        int w = r->n_workers++;
        char nm[96];
        short_name(nm, sizeof nm, t->name);
        osp__report_line_t *ls[] = {&r->cpu[w], &r->rss[w], &r->net[w]};
        for (int j = 0; j < 3; j++) {
            snprintf(ls[j]->name, sizeof ls[j]->name, "%.90s", nm);
            if (!(ls[j]->y = nans(n)))
                return OSP_ENOMEM;
        }
        const osp__report_mseries_t *cpu = find(t, "process_cpu_seconds_total"),
                                    *rss = find(t, "process_resident_memory_bytes"),
                                    *rx = find(t, "osprey_http_received_bytes_total"),
                                    *tx = find(t, "osprey_http_sent_bytes_total"),
                                    *q = find(t, "osprey_queue_depth"),
                                    *up = find(t, "up");
        for (int i = 0; i < n; i++) {
            double a = r->start_unix_s + i, b = a + 1, mid = a + 0.5;
            double u = up ? value_at(up, mid, 0) : NAN;
            bool alive = up ? u >= 0.5 : isfinite(value_at(cpu, mid, 0));
            if (!alive)
                continue; /* a worker that did not answer has no sample */
            r->cpu[w].y[i] = rate_over(cpu, a, b);
            r->rss[w].y[i] = value_at(rss, mid, 0) / MIB;
            r->net[w].y[i] = (rate_over(rx, a, b) + rate_over(tx, a, b)) / 1e3;
            r->cpu_total[i] = nan_add(r->cpu_total[i], r->cpu[w].y[i]);
            r->rss_total[i] = nan_add(r->rss_total[i], r->rss[w].y[i]);
            r->net_total[i] = nan_add(r->net_total[i], r->net[w].y[i]);
            r->wq[i] = nan_add(r->wq[i], value_at(q, mid, 0));
            r->workers_up[i] = nan_add(r->workers_up[i], 1);
        }
    }
    const osp__report_mseries_t *des = find(as, "osprey_autoscaler_desired_replicas"),
                                *cur = find(as, "osprey_autoscaler_current_replicas"),
                                *dup = find(as, "osprey_autoscaler_decisions_total{direction=up}"),
                                *ddown = find(as, "osprey_autoscaler_decisions_total{direction=down}"),
                                *dq = find(disp, "osprey_dispatch_queue_depth");
    for (int i = 0; i < n; i++) {
        double a = r->start_unix_s + i, mid = a + 0.5;
        r->desired[i] = value_at(des, mid, HOLD);
        /* without an autoscaler's gauge, the workers that answered */
        r->current[i] = cur ? value_at(cur, mid, HOLD) : r->workers_up[i];
        r->dq[i] = value_at(dq, mid, 0);
    }
    /* A decision is marked in the second of the first sample that counted
     * it (not spread between samples as a rate would be). */
    const osp__report_mseries_t *dm[2] = {dup, ddown};
    for (int d = 0; d < 2; d++)
        for (int j = 1; dm[d] && j < dm[d]->n; j++) {
            const osp__report_pt_t *p = dm[d]->p;
            int s = (int)floor(p[j].t - r->start_unix_s);
            if (p[j].v != p[j - 1].v && s >= 0 && s < n &&
                r->n_dec < (int)OSP_ARRAY_LEN(r->dec_s)) {
                r->dec_s[r->n_dec] = s;
                r->dec_dir[r->n_dec++] = d ? -1 : 1;
            }
        }
    return 0;
}

int osp_report_analyse(osp_report_t *r, osp_err_t *err) {
    if (!r->n_rows)
        return osp_err_set(err, OSP_EINVAL, "no load time series (--timeseries)");
    if (r->analysed)
        return 0;
    r->start_unix_s = r->o.load_start_unix_s > 0 ? r->o.load_start_unix_s
                                                  : detect_start(r);
    int rc = per_second(r);
    if (rc < 0)
        return osp_err_set(err, rc, "out of memory");
    if (r->levels_spec) {
        rc = osp__report_parse_levels(r->levels_spec, r->n_rows, r->lv,
                                      OSP_REPORT_MAX_LEVELS, &r->n_levels, err);
        if (rc < 0)
            return rc;
    } else {
        bool open = false;
        for (int i = 0; i < r->n_rows; i++)
            open |= r->offered[i] > 0;
        /* closed loop: no offered rate, the plateaus of what was achieved */
        r->n_levels = osp__report_detect_levels(open ? r->offered : r->achieved,
                                                r->n_rows, r->lv,
                                                OSP_REPORT_MAX_LEVELS);
    }
    r->analysed = true;
    return 0;
}

/* ---- the numbers both pages show ---------------------------------------- */

typedef struct level_row_s {
    double span_s, offered, achieved, err_ratio, p50, p99, p99_max, workers,
        cpu, cpu_per_worker, rss_per_worker, rps_per_worker, net;
    bool slo_ok;
} level_row_t;

static double sum_range(const double *v, int a, int b) {
    double s = 0;
    for (int i = a; i < b; i++)
        if (isfinite(v[i]))
            s += v[i];
    return s;
}

static void level_row(const osp_report_t *r, const osp__report_level_t *l,
                      level_row_t *o) {
    int a = l->start, n = l->end - l->start;
    double *tmp = malloc(sizeof *tmp * (size_t)(n > 0 ? n : 1));
    o->span_s = n;
    o->offered = osp__report_mean(r->offered + a, n);
    o->achieved = osp__report_mean(r->achieved + a, n);
    double ans = sum_range(r->achieved, a, l->end), errs = sum_range(r->errs, a, l->end);
    o->err_ratio = fmax(ans, errs) > 0 ? errs / fmax(ans, errs) : 0;
    o->p50 = osp__report_quantile(r->p50 + a, n, 0.5);
    o->p99 = osp__report_quantile(r->p99 + a, n, 0.5);
    o->p99_max = osp__report_quantile(r->p99 + a, n, 1.0);
    o->workers = osp__report_mean(r->current + a, n);
    o->cpu = osp__report_mean(r->cpu_total + a, n);
    for (int i = 0; tmp && i < n; i++)
        tmp[i] = r->current[a + i] > 0 ? r->rss_total[a + i] / r->current[a + i] : NAN;
    o->rss_per_worker = tmp ? osp__report_mean(tmp, n) : NAN;
    for (int i = 0; tmp && i < n; i++)
        tmp[i] = r->current[a + i] > 0 ? r->achieved[a + i] / r->current[a + i] : NAN;
    o->rps_per_worker = tmp ? osp__report_mean(tmp, n) : NAN;
    for (int i = 0; tmp && i < n; i++)
        tmp[i] = r->current[a + i] > 0 ? r->cpu_total[a + i] / r->current[a + i] : NAN;
    o->cpu_per_worker = tmp ? osp__report_mean(tmp, n) : NAN;
    o->net = osp__report_mean(r->net_total + a, n);
    o->slo_ok = !(o->p99 > r->o.slo_p99_ms) && o->err_ratio <= r->o.slo_error_ratio;
    free(tmp);
}

typedef struct corr_s {
    const char *name;
    const double *y;
} corr_t;

/* The resources correlated with the load (answers per second). */
static int correlations(const osp_report_t *r, corr_t *c) {
    int n = 0;
    c[n++] = (corr_t){"worker CPU, all workers (cores)", r->cpu_total};
    c[n++] = (corr_t){"worker memory RSS, all workers (MiB)", r->rss_total};
    c[n++] = (corr_t){"worker network, all workers (kB/s)", r->net_total};
    c[n++] = (corr_t){"workers running", r->current};
    c[n++] = (corr_t){"worker queue depth", r->wq};
    c[n++] = (corr_t){"dispatcher queue depth", r->dq};
    c[n++] = (corr_t){"p99 latency (ms)", r->p99};
    return n;
}

/* A number for a table cell: "–" when there is none. */
static const char *num(char *buf, size_t n, double v, int dec) {
    if (!isfinite(v))
        snprintf(buf, n, "–");
    else
        snprintf(buf, n, "%.*f", dec, v);
    return buf;
}

static double total(const double *v, int n) { return sum_range(v, 0, n); }

typedef struct overview_s {
    double offered, achieved, errors, err_ratio, p50, p95, p99, max_ms,
        duration_s;
    int max_workers, min_workers, ups, downs;
} overview_t;

static void overview(const osp_report_t *r, overview_t *o) {
    int n = r->n_rows;
    o->duration_s = r->have_summary && isfinite(r->sum_duration_s) ? r->sum_duration_s : n;
    double prof_s = n;
    while (prof_s > 0 && !(r->offered[(int)prof_s - 1] > 0))
        prof_s--;
    o->offered = prof_s > 0 ? total(r->offered, n) / prof_s : NAN;
    o->achieved = total(r->achieved, n) / fmax(o->duration_s, 1);
    o->errors = total(r->errs, n);
    double ans = total(r->achieved, n);
    o->err_ratio = fmax(ans, o->errors) > 0 ? o->errors / fmax(ans, o->errors) : 0;
    o->p50 = r->have_summary ? r->sum_p50_ms : osp__report_quantile(r->p50, n, 0.5);
    o->p95 = r->have_summary ? r->sum_p95_ms : NAN;
    o->p99 = r->have_summary ? r->sum_p99_ms : osp__report_quantile(r->p99, n, 0.5);
    o->max_ms = r->have_summary ? r->sum_max_ms : osp__report_quantile(r->pmax, n, 1);
    o->min_workers = 1 << 30;
    o->max_workers = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(r->current[i])) {
            o->min_workers = OSP_MIN(o->min_workers, (int)lround(r->current[i]));
            o->max_workers = OSP_MAX(o->max_workers, (int)lround(r->current[i]));
        }
    if (o->min_workers > o->max_workers)
        o->min_workers = o->max_workers = 0;
    o->ups = o->downs = 0;
    for (int k = 0; k < r->n_dec; k++)
        r->dec_dir[k] > 0 ? o->ups++ : o->downs++;
}

/* ---- HTML --------------------------------------------------------------- */

static const char css[] =
    "body{font:14px/1.45 'DejaVu Sans',Arial,sans-serif;color:#1a1a1a;"
    "background:#fff;margin:24px auto;width:980px}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:26px 0 8px;"
    "border-bottom:1px solid #ccc;padding-bottom:3px}"
    "p.meta{color:#444;margin:2px 0}"
    "table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #bbb;"
    "padding:3px 8px;text-align:right}th{background:#eef1f5}"
    "#levels{font-size:12px}#levels th,#levels td{padding:3px 5px}"
    "td.l,th.l{text-align:left}tr.bad td{background:#fde3e3}"
    ".ok{color:#1b5e20;font-weight:bold}.bad{color:#b71c1c;font-weight:bold}"
    "svg.chart{display:block;margin:10px 0;font:12px 'DejaVu Sans',Arial,sans-serif}"
    "svg .bg{fill:#fff}svg .title{font-size:15px;font-weight:bold;fill:#111}"
    "svg text{fill:#222}svg .label{font-size:12px;fill:#333}"
    "svg .grid{stroke:#e3e3e3}svg .tick,svg .axisline{stroke:#444}"
    "svg polyline{stroke-width:2}svg .violation{fill:#f8caca;opacity:.6}"
    "svg .level{stroke:#777;stroke-dasharray:2 3}svg .levellabel{font-size:11px;fill:#555}"
    "svg .slo{stroke:#b71c1c;stroke-dasharray:6 4;stroke-width:1.5}"
    "svg .slolabel{fill:#b71c1c;font-size:11px}"
    "svg line.up{stroke:#2e7d32;stroke-dasharray:3 2}svg text.up{fill:#2e7d32}"
    "svg line.down{stroke:#e65100;stroke-dasharray:3 2}svg text.down{fill:#e65100}"
    "svg .nodata{fill:#888;font-size:14px}";

static void h_esc(FILE *f, const char *s) { osp__report_xml_escape(f, s); }

static void chart(FILE *f, const osp_report_t *r, const char *title,
                  const char *unit, const osp__report_line_t *lines, int nl,
                  bool step, double hline, const char *hl, bool bands,
                  bool marks, bool underlay) {
    osp__report_chart_t c = {.title = title, .y_label = unit, .lines = lines,
                             .n_lines = nl, .n = r->n_rows, .step = step,
                             .from_zero = true, .integer = step,
                             .underlay = underlay, .hline = hline,
                             .hline_label = hl,
                             .bands = bands ? r->violation : NULL,
                             .levels = r->lv, .n_levels = r->n_levels,
                             .mark_s = marks ? r->dec_s : NULL,
                             .mark_dir = marks ? r->dec_dir : NULL,
                             .n_marks = marks ? r->n_dec : 0};
    osp__report_svg_chart(f, &c);
}

static void charts(FILE *f, const osp_report_t *r) {
    char slo[64];
    snprintf(slo, sizeof slo, "SLO p99 \u2264 %g ms", r->o.slo_p99_ms);
    osp__report_line_t l[4] = {{"offered (req/s)", r->offered},
                               {"answered (req/s)", r->achieved},
                               {"errors (/s)", r->errs}};
    chart(f, r, "Offered vs achieved load", "requests per second (req/s)", l, 3,
          false, NAN, NULL, false, false, true);
    /* max under the others: with few requests a second it is the p99 */
    osp__report_line_t lat[3] = {{"max", r->pmax}, {"p99", r->p99}, {"p50", r->p50}};
    chart(f, r, "Latency per second (shaded: seconds outside the SLO)",
          "latency (ms)", lat, 3, false, r->o.slo_p99_ms, slo, true, false,
          true);
    osp__report_line_t wk[2] = {{"desired", r->desired}, {"current", r->current}};
    chart(f, r, "Workers: desired vs current (\u25b2 scale-out, \u25bc scale-in)",
          "workers", wk, 2, true, NAN, NULL, false, true, true);
    chart(f, r, "CPU per worker", "CPU (cores)", r->cpu, r->n_workers, false,
          NAN, NULL, false, true, false);
    chart(f, r, "Memory per worker (resident set)", "RSS (MiB)", r->rss,
          r->n_workers, false, NAN, NULL, false, true, false);
    chart(f, r, "Network per worker (HTTP bodies received + sent)",
          "network (kB/s)", r->net, r->n_workers, false, NAN, NULL, false, true,
          false);
    osp__report_line_t q[3] = {{"workers' queues (images)", r->wq},
                               {"dispatcher queue (requests)", r->dq},
                               {"client backlog (requests)", NULL}};
    double *backlog = nans(r->n_rows);
    for (int i = 0; backlog && i < r->n_rows; i++)
        backlog[i] = r->rows[i].queued;
    q[2].y = backlog;
    chart(f, r, "Queue depth", "queued (count)", q, backlog ? 3 : 2, false, NAN,
          NULL, false, false, false);
    free(backlog);
}

static void level_table_html(FILE *f, const osp_report_t *r) {
    char b[14][32];
    fprintf(f, "<table id=\"levels\"><tr><th>level</th><th>seconds</th>"
               "<th>offered<br>req/s</th><th>answered<br>req/s</th><th>errors</th>"
               "<th>p50<br>ms</th><th>p99<br>ms</th><th>worst<br>p99 ms</th><th>workers</th>"
               "<th>CPU<br>cores</th><th>CPU per<br>worker</th><th>RSS per<br>worker MiB</th>"
               "<th>req/s per<br>worker</th><th>network<br>kB/s</th><th>SLO</th></tr>\n");
    for (int k = 0; k < r->n_levels; k++) {
        level_row_t o;
        level_row(r, &r->lv[k], &o);
        fprintf(f, "<tr%s><td class=\"l\">L%d</td><td>%d–%d</td><td>%s</td>"
                   "<td>%s</td><td>%s %%</td><td>%s</td><td>%s</td><td>%s</td>"
                   "<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                   "<td>%s</td><td class=\"%s\">%s</td></tr>\n",
                o.slo_ok ? "" : " class=\"bad\"", k + 1, r->lv[k].start,
                r->lv[k].end, num(b[0], 32, o.offered, 1),
                num(b[1], 32, o.achieved, 1), num(b[2], 32, o.err_ratio * 100, 2),
                num(b[3], 32, o.p50, 1), num(b[4], 32, o.p99, 1),
                num(b[5], 32, o.p99_max, 1), num(b[6], 32, o.workers, 1),
                num(b[7], 32, o.cpu, 2), num(b[8], 32, o.cpu_per_worker, 2),
                num(b[9], 32, o.rss_per_worker, 1),
                num(b[10], 32, o.rps_per_worker, 1), num(b[11], 32, o.net, 1),
                o.slo_ok ? "ok" : "bad", o.slo_ok ? "met" : "missed");
    }
    fprintf(f, "</table>\n");
}

static const char *strength(double r) {
    double a = fabs(r);
    return !isfinite(r) ? "no data / constant" : a >= 0.8 ? "strong" : a >= 0.5 ? "moderate"
                                                     : a >= 0.3 ? "weak" : "none";
}

int osp_report_write_html(osp_report_t *r, FILE *f, osp_err_t *err) {
    if (!r->analysed)
        return osp_err_set(err, OSP_EINVAL, "osp_report_analyse first");
    overview_t o;
    overview(r, &o);
    char b[8][32];
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<title>");
    h_esc(f, r->o.title);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", css);
    h_esc(f, r->o.title);
    fprintf(f, "</h1>\n<p class=\"meta\">load time series: ");
    h_esc(f, r->ts_path);
    fprintf(f, " (%d s); samples from %d process%s (%d worker%s)</p>\n",
            r->n_rows, r->ntg, r->ntg == 1 ? "" : "es", r->n_workers,
            r->n_workers == 1 ? "" : "s");
    if (r->o.source_note) {
        fprintf(f, "<p class=\"meta\">");
        h_esc(f, r->o.source_note);
        fprintf(f, "</p>\n");
    }
    fprintf(f, "<p class=\"meta\">SLO: p99 \u2264 %g ms per second and error ratio "
               "\u2264 %g %%: <span class=\"%s\">%d of %d seconds outside it</span></p>\n",
            r->o.slo_p99_ms, r->o.slo_error_ratio * 100,
            r->n_violations ? "bad" : "ok", r->n_violations, r->n_rows);

    fprintf(f, "<h2>Summary</h2>\n<table id=\"summary\">\n");
    fprintf(f, "<tr><th class=\"l\">offered (profile mean)</th><td>%s req/s</td></tr>\n"
               "<tr><th class=\"l\">answered (run mean)</th><td>%s req/s</td></tr>\n"
               "<tr><th class=\"l\">latency p50 / p95 / p99 / max</th>"
               "<td>%s / %s / %s / %s ms</td></tr>\n",
            num(b[0], 32, o.offered, 1), num(b[1], 32, o.achieved, 1),
            num(b[2], 32, o.p50, 1), num(b[3], 32, o.p95, 1),
            num(b[4], 32, o.p99, 1), num(b[5], 32, o.max_ms, 1));
    fprintf(f, "<tr%s><th class=\"l\">errors</th><td>%.0f (%s %%)</td></tr>\n",
            o.err_ratio > r->o.slo_error_ratio ? " class=\"bad\"" : "", o.errors,
            num(b[0], 32, o.err_ratio * 100, 2));
    fprintf(f, "<tr><th class=\"l\">errors by class</th><td>");
    h_esc(f, r->errors_by_class[0] ? r->errors_by_class : "none");
    fprintf(f, "</td></tr>\n<tr><th class=\"l\">workers (min – max)</th>"
               "<td>%d – %d</td></tr>\n<tr><th class=\"l\">autoscaler decisions</th>"
               "<td>%d up, %d down</td></tr>\n</table>\n",
            o.min_workers, o.max_workers, o.ups, o.downs);

    fprintf(f, "<h2>Charts</h2>\n<p class=\"meta\">Dotted lines: load levels "
               "L1…L%d. Time in seconds since the load started.</p>\n",
            r->n_levels);
    charts(f, r);

    fprintf(f, "<h2>Per load level</h2>\n<p class=\"meta\">Means over each level; "
               "p50 and p99 are the median of the level's per-second values.</p>\n");
    level_table_html(f, r);

    fprintf(f, "<h2>Load vs resources</h2>\n<p class=\"meta\">Pearson r between "
               "the answered requests per second and each series, over every "
               "second with both.</p>\n<table id=\"correlation\"><tr><th class=\"l\">"
               "series</th><th>r</th><th class=\"l\">correlation</th></tr>\n");
    corr_t c[8];
    int nc = correlations(r, c);
    for (int k = 0; k < nc; k++) {
        double v = osp__report_pearson(r->achieved, c[k].y, r->n_rows);
        fprintf(f, "<tr><td class=\"l\">%s</td><td>%s</td><td class=\"l\">%s</td></tr>\n",
                c[k].name, num(b[0], 32, v, 2), strength(v));
    }
    fprintf(f, "</table>\n<h2>Processes</h2>\n<table id=\"processes\"><tr>"
               "<th class=\"l\">process</th><th class=\"l\">role</th><th>samples</th></tr>\n");
    for (int i = 0; i < r->ntg; i++) {
        const osp__report_mseries_t *m = find(&r->tg[i], "process_cpu_seconds_total");
        fprintf(f, "<tr><td class=\"l\">");
        h_esc(f, r->tg[i].name);
        fprintf(f, "</td><td class=\"l\">");
        h_esc(f, osp__report_target_role(&r->tg[i]));
        fprintf(f, "</td><td>%d</td></tr>\n", m ? m->n : 0);
    }
    fprintf(f, "</table>\n<p class=\"meta\">Second 0 of the load is %.3f on the "
               "samples' clock (Unix time%s).</p>\n</body>\n</html>\n",
            r->start_unix_s, r->o.load_start_unix_s > 0 ? ", given"
                                                        : ", from the first request counted");
    return ferror(f) ? osp_err_set(err, OSP_EIO, "write failed") : 0;
}

int osp_report_html_height_px(const osp_report_t *r) {
    /* header ~150, summary ~260, 7 charts, two tables, processes, footer */
    return 100 + 260 + 7 * (OSP__REPORT_CHART_H + 20) + 60 +
           120 + 31 * (r->n_levels + 2) + 110 + 29 * 8 + 70 +
           29 * (r->ntg + 1) - 120;
}

/* ---- Markdown ----------------------------------------------------------- */

int osp_report_write_markdown(osp_report_t *r, FILE *f, osp_err_t *err) {
    if (!r->analysed)
        return osp_err_set(err, OSP_EINVAL, "osp_report_analyse first");
    overview_t o;
    overview(r, &o);
    char b[14][32];
    fprintf(f, "# %s\n\n", r->o.title);
    if (r->o.source_note)
        fprintf(f, "%s\n\n", r->o.source_note);
    fprintf(f, "Load time series: `%s` (%d s); samples from %d process%s "
               "(%d worker%s).\n\n", r->ts_path, r->n_rows, r->ntg,
            r->ntg == 1 ? "" : "es", r->n_workers, r->n_workers == 1 ? "" : "s");
    fprintf(f, "| | |\n|---|---|\n"
               "| offered (profile mean) | %s req/s |\n"
               "| answered (run mean) | %s req/s |\n"
               "| latency p50 / p95 / p99 / max | %s / %s / %s / %s ms |\n"
               "| errors | %.0f (%s %%) |\n| errors by class | %s |\n"
               "| workers (min – max) | %d – %d |\n"
               "| autoscaler decisions | %d up, %d down |\n\n",
            num(b[0], 32, o.offered, 1), num(b[1], 32, o.achieved, 1),
            num(b[2], 32, o.p50, 1), num(b[3], 32, o.p95, 1),
            num(b[4], 32, o.p99, 1), num(b[5], 32, o.max_ms, 1), o.errors,
            num(b[6], 32, o.err_ratio * 100, 2),
            r->errors_by_class[0] ? r->errors_by_class : "none", o.min_workers,
            o.max_workers, o.ups, o.downs);
    fprintf(f, "**SLO** (p99 ≤ %g ms per second, error ratio ≤ %g %%): %s — "
               "%d of %d seconds outside it.\n\n",
            r->o.slo_p99_ms, r->o.slo_error_ratio * 100,
            r->n_violations ? "**violated**" : "met", r->n_violations, r->n_rows);
    fprintf(f, "## Per load level\n\n| level | seconds | offered req/s | answered "
               "req/s | error ratio | p50 ms | p99 ms | worst p99 ms | workers | "
               "CPU cores | CPU/worker | RSS/worker MiB | req/s per worker | "
               "network kB/s | SLO |\n|---|---|---|---|---|---|---|---|---|---|"
               "---|---|---|---|---|\n");
    for (int k = 0; k < r->n_levels; k++) {
        level_row_t l;
        level_row(r, &r->lv[k], &l);
        fprintf(f, "| L%d | %d–%d | %s | %s | %s %% | %s | %s | %s | %s | %s | "
                   "%s | %s | %s | %s | %s |\n",
                k + 1, r->lv[k].start, r->lv[k].end, num(b[0], 32, l.offered, 1),
                num(b[1], 32, l.achieved, 1), num(b[2], 32, l.err_ratio * 100, 2),
                num(b[3], 32, l.p50, 1), num(b[4], 32, l.p99, 1),
                num(b[5], 32, l.p99_max, 1), num(b[6], 32, l.workers, 1),
                num(b[7], 32, l.cpu, 2), num(b[8], 32, l.cpu_per_worker, 2),
                num(b[9], 32, l.rss_per_worker, 1),
                num(b[10], 32, l.rps_per_worker, 1), num(b[11], 32, l.net, 1),
                l.slo_ok ? "met" : "**missed**");
    }
    fprintf(f, "\n## Load vs resources (Pearson r with answered req/s)\n\n"
               "| series | r | correlation |\n|---|---|---|\n");
    corr_t c[8];
    int nc = correlations(r, c);
    for (int k = 0; k < nc; k++) {
        double v = osp__report_pearson(r->achieved, c[k].y, r->n_rows);
        fprintf(f, "| %s | %s | %s |\n", c[k].name, num(b[0], 32, v, 2), strength(v));
    }
    return ferror(f) ? osp_err_set(err, OSP_EIO, "write failed") : 0;
}
