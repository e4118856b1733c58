/* input.c — what the report reads: `osprey load`'s timeseries.csv (and the
 * summary.json and latency.csv of the same run), the recorder's JSONL
 * samples, and a Prometheus's range queries. Both sample sources end in
 * one store (target → metric → (t, v) points), so the analysis has one
 * path whichever recorded the run. Bad input is an error naming the file
 * and line, never a guess: a report drawn from a misread file would be
 * evidence of nothing. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "osprey/http.h"
#include "report/report_int.h"

#define TS_MAX_BYTES ((size_t)64 << 20) /* a day of seconds, many times over */
#define SAMPLES_MAX_BYTES ((size_t)512 << 20)

const osp__report_metric_t osp__report_metrics[] = {
    {"process_cpu_seconds_total", NULL},
    {"process_resident_memory_bytes", NULL},
    {"osprey_http_received_bytes_total", NULL},
    {"osprey_http_sent_bytes_total", NULL},
    {"osprey_requests_total", NULL},
    {"osprey_queue_depth", NULL},
    {"osprey_inflight_requests", NULL},
    {"osprey_dispatch_requests_total", NULL},
    {"osprey_dispatch_queue_depth", NULL},
    {"osprey_dispatch_inflight", NULL},
    {"osprey_dispatch_backends", "state"},
    {"osprey_autoscaler_desired_replicas", NULL},
    {"osprey_autoscaler_current_replicas", NULL},
    {"osprey_autoscaler_decisions_total", "direction"},
};
const int osp__report_n_metrics = (int)OSP_ARRAY_LEN(osp__report_metrics);

const char *osp__report_role_name(osp__report_role_t r) {
    static const char *const names[OSP__REPORT_ROLE_COUNT] = {
        "unknown", "worker", "dispatcher", "autoscaler"};
    return r >= 0 && r < OSP__REPORT_ROLE_COUNT ? names[r] : "unknown";
}

/* A process that exports the autoscaler's metrics is the autoscaler even
 * if it also serves others; then the dispatcher; a worker otherwise. */
static osp__report_role_t role_of_key(const char *key) {
    if (!strncmp(key, "osprey_autoscaler_", 18))
        return OSP__REPORT_AUTOSCALER;
    if (!strncmp(key, "osprey_dispatch_", 16))
        return OSP__REPORT_DISPATCHER;
    if (!strcmp(key, "osprey_requests_total") || !strcmp(key, "osprey_queue_depth"))
        return OSP__REPORT_WORKER;
    return OSP__REPORT_UNKNOWN;
}

void osp__report_set_job(osp_report_t *r, const char *target, const char *job) {
    for (int i = 0; i < r->ntg; i++)
        if (!strcmp(r->tg[i].name, target)) {
            snprintf(r->tg[i].job, sizeof r->tg[i].job, "%s", job);
            return;
        }
}

const char *osp__report_target_role(const osp__report_target_t *t) {
    return t->role == OSP__REPORT_UNKNOWN && t->job[0] ? t->job
                                                       : osp__report_role_name(t->role);
}

int osp__report_add_sample(osp_report_t *r, const char *target,
                           const char *key, double t, double v) {
    osp__report_target_t *tg = NULL;
    for (int i = 0; i < r->ntg && !tg; i++)
        if (!strcmp(r->tg[i].name, target))
            tg = &r->tg[i];
    if (!tg) {
        osp__report_target_t *a = osp_grow(r->tg, &r->captg, r->ntg, sizeof *a, 8);
        if (!a)
            return OSP_ENOMEM;
        r->tg = a;
        tg = &a[r->ntg++];
        memset(tg, 0, sizeof *tg);
        snprintf(tg->name, sizeof tg->name, "%s", target);
    }
    osp__report_role_t role = role_of_key(key);
    if (role > tg->role)
        tg->role = role;
    osp__report_mseries_t *m = NULL;
    for (int i = 0; i < tg->nm && !m; i++)
        if (!strcmp(tg->m[i].key, key))
            m = &tg->m[i];
    if (!m) {
        osp__report_mseries_t *a = osp_grow(tg->m, &tg->capm, tg->nm, sizeof *a, 16);
        if (!a)
            return OSP_ENOMEM;
        tg->m = a;
        m = &a[tg->nm++];
        memset(m, 0, sizeof *m);
        snprintf(m->key, sizeof m->key, "%s", key);
    }
    osp__report_pt_t *p = osp_grow(m->p, &m->cap, m->n, sizeof *p, 64);
    if (!p)
        return OSP_ENOMEM;
    m->p = p;
    p[m->n++] = (osp__report_pt_t){t, v};
    return 0;
}

/* ---- osprey load's files ------------------------------------------------ */

/* The next line of text[*pos..len) as [a, b) without its \r\n; false at the end. */
static bool next_line(const char *text, size_t len, size_t *pos, size_t *a,
                      size_t *b) {
    if (*pos >= len)
        return false;
    const char *e = memchr(text + *pos, '\n', len - *pos);
    *a = *pos;
    *b = e ? (size_t)(e - text) : len;
    *pos = *b + 1;
    while (*b > *a && text[*b - 1] == '\r')
        (*b)--;
    return true;
}

/* Splits line [a, b) at commas into at most max fields (NUL-terminated in
 * place); returns the count. */
static int split_csv(char *text, size_t a, size_t b, char **f, int max) {
    int n = 0;
    text[b] = 0;
    char *p = text + a;
    while (n < max) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

static int parse_num(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end == s || *end || errno == ERANGE || !isfinite(*v) ? -1 : 0;
}

static const char *const ts_cols[] = {"second", "target", "sent", "completed",
                                      "errors", "p50_ms", "p99_ms", "max_ms",
                                      "inflight", "queued"};

static int read_timeseries_csv(osp_report_t *r, const char *path, osp_err_t *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = osp_read_file(path, TS_MAX_BYTES, &buf, &len, err);
    if (rc < 0)
        return rc;
    char *text = (char *)buf;
    size_t pos = 0, a, b;
    int col[OSP_ARRAY_LEN(ts_cols)], line = 1;
    char *f[32];
    if (memchr(text, 0, len) || !next_line(text, len, &pos, &a, &b)) {
        rc = osp_err_set(err, OSP_EFORMAT, "%s: empty or not text", path);
        goto out;
    }
    int nf = split_csv(text, a, b, f, 32);
    for (size_t c = 0; c < OSP_ARRAY_LEN(ts_cols); c++) {
        col[c] = -1;
        for (int k = 0; k < nf; k++)
            if (!strcmp(f[k], ts_cols[c]))
                col[c] = k;
        if (col[c] < 0) {
            rc = osp_err_set(err, OSP_EFORMAT,
                             "%s:1: no column '%s' (not osprey load's "
                             "timeseries.csv)", path, ts_cols[c]);
            goto out;
        }
    }
    int cap = 0;
    while (next_line(text, len, &pos, &a, &b)) {
        line++;
        if (a == b)
            continue;
        int n = split_csv(text, a, b, f, 32);
        double v[OSP_ARRAY_LEN(ts_cols)];
        for (size_t c = 0; c < OSP_ARRAY_LEN(ts_cols); c++)
            if (col[c] >= n || parse_num(f[col[c]], &v[c]) < 0 || v[c] < 0) {
                rc = osp_err_set(err, OSP_EFORMAT,
                                 "%s:%d: column '%s' is not a non-negative "
                                 "number", path, line, ts_cols[c]);
                goto out;
            }
        if ((int)v[0] != r->n_rows) {
            rc = osp_err_set(err, OSP_EFORMAT,
                             "%s:%d: second %g out of order (expected %d)",
                             path, line, v[0], r->n_rows);
            goto out;
        }
        osp__report_row_t *rows = osp_grow(r->rows, &cap, r->n_rows, sizeof *rows, 256);
        if (!rows) {
            rc = osp_err_set(err, OSP_ENOMEM, "out of memory");
            goto out;
        }
        r->rows = rows;
        rows[r->n_rows++] = (osp__report_row_t){v[1], v[2], v[3], v[4], v[5],
                                                v[6], v[7], v[8], v[9]};
    }
    if (!r->n_rows)
        rc = osp_err_set(err, OSP_EFORMAT, "%s: no rows", path);
out:
    free(buf);
    return rc;
}

static double jnum(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* summary.json and latency.csv are optional (an older run, a copied
 * timeseries.csv alone); when present they must parse. */
static int read_summary(osp_report_t *r, const char *dir, osp_err_t *err) {
    char path[600];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return osp_err_set(err, OSP_EFORMAT, "%s:%d: %s", path, je.line, je.text);
    }
    r->have_summary = true;
    r->sum_p50_ms = jnum(o, "p50_ms");
    r->sum_p99_ms = jnum(o, "p99_ms");
    r->sum_max_ms = jnum(o, "max_ms");
    r->sum_completed = jnum(o, "completed");
    r->sum_errors = jnum(o, "errors");
    r->sum_duration_s = jnum(o, "duration_s");
    r->sum_target_rps = jnum(o, "target_rps");
    r->sum_p95_ms = NAN;
    json_t *cls = json_object_get(o, "errors_by_class");
    const char *k;
    json_t *v;
    size_t off = 0;
    r->errors_by_class[0] = 0;
    json_object_foreach(cls, k, v) {
        if (!json_is_integer(v) || !json_integer_value(v) ||
            off >= sizeof r->errors_by_class)
            continue;
        off += (size_t)snprintf(r->errors_by_class + off,
                                sizeof r->errors_by_class - off, "%s%s %lld",
                                off ? ", " : "", k,
                                (long long)json_integer_value(v));
    }
    json_decref(o);

    snprintf(path, sizeof path, "%s/latency.csv", dir);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (stat(path, &st) != 0)
        return 0;
    int rc = osp_read_file(path, 1 << 20, &buf, &len, err);
    if (rc < 0)
        return rc;
    char *text = (char *)buf;
    size_t pos = 0, a, b;
    char *f[4];
    next_line(text, len, &pos, &a, &b); /* header */
    while (next_line(text, len, &pos, &a, &b)) {
        double pct, ms;
        if (split_csv(text, a, b, f, 4) == 2 && !parse_num(f[0], &pct) &&
            !parse_num(f[1], &ms) && pct == 95)
            r->sum_p95_ms = ms;
    }
    free(buf);
    return 0;
}

int osp_report_load_timeseries(osp_report_t *r, const char *path,
                               osp_err_t *err) {
    struct stat st;
    char dir[512];
    if (stat(path, &st) != 0)
        return osp_err_set(err, OSP_ENOENT, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(r->ts_path, sizeof r->ts_path, "%s/timeseries.csv", path);
    } else {
        snprintf(r->ts_path, sizeof r->ts_path, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dir, sizeof dir, ".");
    }
    if (r->n_rows)
        return osp_err_set(err, OSP_EINVAL, "one time series per report");
    int rc = read_timeseries_csv(r, r->ts_path, err);
    if (rc < 0)
        return rc;
    return read_summary(r, dir, err);
}

/* ---- the recorder's samples --------------------------------------------- */

int osp_report_load_samples(osp_report_t *r, const char *path, osp_err_t *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = osp_read_file(path, SAMPLES_MAX_BYTES, &buf, &len, err);
    if (rc < 0)
        return rc;
    char *text = (char *)buf;
    size_t pos = 0, a, b;
    int line = 0, n = 0;
    while (rc == 0 && next_line(text, len, &pos, &a, &b)) {
        line++;
        if (a == b)
            continue;
        json_error_t je;
        json_t *o = json_loadb(text + a, b - a, 0, &je);
        json_t *t = json_object_get(o, "t"), *tg = json_object_get(o, "target");
        json_t *up = json_object_get(o, "up"), *s = json_object_get(o, "samples");
        if (!json_is_object(o) || !json_is_number(t) || !json_is_string(tg) ||
            !json_is_boolean(up) || (json_is_true(up) && !json_is_object(s))) {
            rc = osp_err_set(err, OSP_EFORMAT,
                             "%s:%d: not a recorder line {\"t\", \"target\", "
                             "\"up\", \"samples\"}%s%s", path, line,
                             o ? "" : ": ", o ? "" : je.text);
            json_decref(o);
            break;
        }
        const char *k;
        json_t *v;
        json_object_foreach(s, k, v) {
            if (json_is_number(v) &&
                (rc = osp__report_add_sample(r, json_string_value(tg), k,
                                             json_number_value(t),
                                             json_number_value(v))) < 0) {
                osp_err_set(err, rc, "out of memory");
                break;
            }
        }
        /* "up" itself is a series: workers that answered, per second */
        if (rc == 0)
            rc = osp__report_add_sample(r, json_string_value(tg), "up",
                                        json_number_value(t),
                                        json_is_true(up) ? 1 : 0);
        if (rc < 0 && err && !err->msg[0])
            osp_err_set(err, rc, "out of memory");
        json_decref(o);
        n++;
    }
    free(buf);
    if (rc == 0 && !n)
        rc = osp_err_set(err, OSP_EFORMAT, "%s: no samples", path);
    return rc;
}

/* ---- HTTP and Prometheus ------------------------------------------------ */

/* One range query's answer: its result array (borrowed from *o, which the
 * caller frees), or an error. */
static json_t *prom_range(const char *base, const char *query, double from, double to,
                          double step, long timeout_ms, json_t **o, osp_err_t *err) {
    *o = NULL;
    char *q = curl_easy_escape(NULL, query, 0);
    if (!q) {
        osp_err_set(err, OSP_ENOMEM, "out of memory");
        return NULL;
    }
    char url[2048];
    snprintf(url, sizeof url,
             "%s/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%g",
             base, q, from, to, step);
    curl_free(q);
    long status = 0;
    char *body = NULL;
    size_t len = 0;
    if (osp_http_fetch("GET", url, NULL, timeout_ms, &status, &body, &len, err) < 0) {
        osp_err_prefix(err, "Prometheus");
        return NULL;
    }
    json_error_t je;
    *o = json_loadb(body ? body : "", len, 0, &je);
    free(body);
    json_t *res = json_object_get(json_object_get(*o, "data"), "result");
    const char *st = json_string_value(json_object_get(*o, "status"));
    if (!*o || !st || strcmp(st, "success") || !json_is_array(res)) {
        const char *e = json_string_value(json_object_get(*o, "error"));
        osp_err_set(err, OSP_EFORMAT, "Prometheus %s: HTTP %ld, not a query_range answer%s%s",
                    base, status, e ? ": " : "", e ? e : "");
        json_decref(*o);
        *o = NULL;
        return NULL;
    }
    return res;
}

/* The labels a series is told apart by (see prom_query). */
static const char *const prom_by[] = {"instance", "job", "pod"};

static bool same_series(json_t *a, json_t *b, const char *split) {
    for (size_t k = 0; k <= OSP_ARRAY_LEN(prom_by); k++) {
        const char *l = k < OSP_ARRAY_LEN(prom_by) ? prom_by[k] : split;
        if (!l)
            continue;
        const char *x = json_string_value(json_object_get(a, l)),
                   *y = json_string_value(json_object_get(b, l));
        if ((x || y) && (!x || !y || strcmp(x, y)))
            return false;
    }
    return true;
}

/* One metric over [from, to]: each result series becomes samples of `name`
 * (with {split=value} when split) of the target named by its pod label (a
 * Kubernetes pod: unique where its address may be reused) or else its
 * instance; the job is kept for processes that are not osprey's.
 *
 * A range query evaluates at every step the newest sample in its lookback,
 * so with steps as long as the scrape interval a step can see one sample
 * twice and the next skip one: a counter's rate then alternates between 0
 * and double. So the samples' own times come from a second query,
 * timestamp() of the same series, and a sample seen twice is kept once. */
static int prom_query(osp_report_t *r, const char *base, const osp__report_metric_t *m,
                      double from, double to, double step, long timeout_ms, osp_err_t *err) {
    char by[96], query[320];
    snprintf(by, sizeof by, "instance, job, pod%s%s", m->split ? ", " : "",
             m->split ? m->split : "");
    snprintf(query, sizeof query, "sum by (%s) (%s)", by, m->name);
    json_t *o = NULL, *to_ = NULL;
    json_t *res = prom_range(base, query, from, to, step, timeout_ms, &o, err);
    if (!res)
        return err ? err->code : OSP_EFORMAT;
    snprintf(query, sizeof query, "max by (%s) (timestamp(%s))", by, m->name);
    json_t *tres = prom_range(base, query, from, to, step, timeout_ms, &to_, err);
    if (!tres) {
        json_decref(o);
        return err ? err->code : OSP_EFORMAT;
    }
    int rc = 0;
    size_t i;
    json_t *ser;
    json_array_foreach(res, i, ser) {
        json_t *lab = json_object_get(ser, "metric");
        const char *inst = json_string_value(json_object_get(lab, "instance")),
                   *pod = json_string_value(json_object_get(lab, "pod")),
                   *job = json_string_value(json_object_get(lab, "job"));
        const char *target = pod ? pod : inst ? inst : "prometheus";
        char key[96];
        const char *sv = m->split ? json_string_value(json_object_get(lab, m->split)) : NULL;
        if (m->split)
            snprintf(key, sizeof key, "%s{%s=%s}", m->name, m->split, sv ? sv : "");
        else
            snprintf(key, sizeof key, "%s", m->name);
        json_t *tv = NULL, *ts;
        size_t k;
        json_array_foreach(tres, k, ts)
            if (same_series(lab, json_object_get(ts, "metric"), m->split)) {
                tv = json_object_get(ts, "values");
                break;
            }
        size_t j, jt = 0, nt = json_array_size(tv);
        double last_t = -INFINITY;
        json_t *pt;
        json_array_foreach(json_object_get(ser, "values"), j, pt) {
            double v, step_t = json_number_value(json_array_get(pt, 0)), t = step_t;
            const char *vs = json_string_value(json_array_get(pt, 1));
            if (!vs || parse_num(vs, &v) < 0)
                continue; /* NaN samples: nothing to draw */
            /* the sample's own time, from the point of the same step */
            while (jt < nt && json_number_value(json_array_get(json_array_get(tv, jt), 0)) < step_t)
                jt++;
            json_t *tp = jt < nt ? json_array_get(tv, jt) : NULL;
            double st;
            if (tp && json_number_value(json_array_get(tp, 0)) == step_t &&
                parse_num(json_string_value(json_array_get(tp, 1)), &st) == 0 && st <= step_t)
                t = st;
            if (t <= last_t)
                continue; /* the same scrape, seen by another step */
            last_t = t;
            rc = osp__report_add_sample(r, target, key, t, v);
            if (rc < 0)
                break;
            if (job)
                osp__report_set_job(r, target, job);
        }
        if (rc < 0)
            break;
    }
    json_decref(o);
    json_decref(to_);
    return rc < 0 ? osp_err_set(err, rc, "out of memory") : 0;
}

int osp_report_load_prometheus(osp_report_t *r, const char *url,
                               double from_unix_s, double to_unix_s,
                               double step_s, long timeout_ms, osp_err_t *err) {
    if (!(to_unix_s > from_unix_s) || !(step_s > 0))
        return osp_err_set(err, OSP_EINVAL,
                           "Prometheus: --to must follow --from (%.3f, %.3f)",
                           from_unix_s, to_unix_s);
    int before = r->ntg;
    for (int k = 0; k < osp__report_n_metrics; k++) {
        const osp__report_metric_t *m = &osp__report_metrics[k];
        /* Summed over every label but the target's (and the split one):
         * the same series the recorder keeps from a /metrics page. */
        int rc = prom_query(r, url, m, from_unix_s, to_unix_s, step_s, timeout_ms, err);
        if (rc < 0)
            return rc;
    }
    if (r->ntg == before)
        return osp_err_set(err, OSP_ENOENT,
                           "Prometheus %s: no osprey series between %.0f and "
                           "%.0f", url, from_unix_s, to_unix_s);
    return 0;
}
