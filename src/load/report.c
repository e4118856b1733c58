/* report.c — what a load run prints and writes: the one-line JSON summary
 * (`--json`, the contract other tools parse), a human summary table, and
 * the --out directory (per-second time series as CSV and JSON, the summary,
 * and the latency percentile spectrum).
 *
 * Numbers are formatted here and nowhere else so that the table, the JSON
 * and the files always agree. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "osprey/load.h"

/* Milliseconds rounded to microseconds (what the histogram resolves). */
static json_t *ms(double v) { return json_real(round(v * 1e3) / 1e3); }

static json_t *summary_obj(const osp_load_t *l) {
    const osp_load_summary_t *s = osp_load_summary(l);
    json_t *o = json_object();
    json_t *cls = json_object();
    if (!o || !cls) {
        json_decref(o);
        json_decref(cls);
        return NULL;
    }
    json_object_set_new(o, "mode", json_string(osp_load_mode_name(s->mode)));
    json_object_set_new(o, "target", json_string(osp_load_target_name(s->target)));
    json_object_set_new(o, "target_rps",
                        json_real(round(s->target_rps * 100) / 100));
    json_object_set_new(o, "rps", json_real(round(s->rps * 100) / 100));
    json_object_set_new(o, "ok_rps", json_real(round(s->ok_rps * 100) / 100));
    json_object_set_new(o, "scheduled", json_integer((json_int_t)s->scheduled));
    json_object_set_new(o, "sent", json_integer((json_int_t)s->sent));
    json_object_set_new(o, "completed", json_integer((json_int_t)s->completed));
    json_object_set_new(o, "ok", json_integer((json_int_t)s->ok));
    json_object_set_new(o, "errors", json_integer((json_int_t)s->errors));
    json_object_set_new(o, "error_rate",
                        json_real(round(s->error_rate * 1e6) / 1e6));
    json_object_set_new(o, "retries", json_integer((json_int_t)s->retries));
    json_object_set_new(o, "unfinished",
                        json_integer((json_int_t)s->unfinished));
    json_object_set_new(o, "p50_ms", ms(s->p50_ms));
    json_object_set_new(o, "p90_ms", ms(s->p90_ms));
    json_object_set_new(o, "p99_ms", ms(s->p99_ms));
    json_object_set_new(o, "p999_ms", ms(s->p999_ms));
    json_object_set_new(o, "max_ms", ms(s->max_ms));
    json_object_set_new(o, "min_ms", ms(s->min_ms));
    json_object_set_new(o, "mean_ms", ms(s->mean_ms));
    json_object_set_new(o, "ok_p50_ms", ms(s->ok_p50_ms));
    json_object_set_new(o, "ok_p90_ms", ms(s->ok_p90_ms));
    json_object_set_new(o, "ok_p99_ms", ms(s->ok_p99_ms));
    json_object_set_new(o, "ok_max_ms", ms(s->ok_max_ms));
    json_object_set_new(o, "error_p50_ms", ms(s->error_p50_ms));
    json_object_set_new(o, "error_p90_ms", ms(s->error_p90_ms));
    json_object_set_new(o, "error_p99_ms", ms(s->error_p99_ms));
    json_object_set_new(o, "error_max_ms", ms(s->error_max_ms));
    json_object_set_new(o, "warmup_s", json_real(s->warmup_s));
    json_object_set_new(o, "duration_s",
                        json_real(round(s->duration_s * 1e3) / 1e3));
    json_object_set_new(o, "client_cpu_s",
                        json_real(round(s->client_cpu_s * 1e3) / 1e3));
    for (int i = 0; i < OSP_LOAD_FAIL_COUNT; i++)
        json_object_set_new(cls, osp_load_fail_name((osp_load_fail_t)i),
                            json_integer((json_int_t)s->fail[i]));
    uint64_t c4 = 0, c5 = 0;
    for (int code = 400; code < 600; code++) {
        if (!s->status[code])
            continue;
        char k[8];
        snprintf(k, sizeof k, "%d", code);
        json_object_set_new(cls, k, json_integer((json_int_t)s->status[code]));
        if (code < 500)
            c4 += s->status[code];
        else
            c5 += s->status[code];
    }
    json_object_set_new(cls, "4xx", json_integer((json_int_t)c4));
    json_object_set_new(cls, "5xx", json_integer((json_int_t)c5));
    json_object_set_new(o, "errors_by_class", cls);
    json_t *codes = json_object();
    for (int code = 100; code < 600 && codes; code++) {
        if (!s->status[code])
            continue;
        char k[8];
        snprintf(k, sizeof k, "%d", code);
        json_object_set_new(codes, k, json_integer((json_int_t)s->status[code]));
    }
    if (codes)
        json_object_set_new(o, "status_codes", codes);
    return o;
}

char *osp_load_summary_json(const osp_load_t *l) {
    json_t *o = summary_obj(l);
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(o);
    return s;
}

void osp_load_print_summary(const osp_load_t *l, FILE *f) {
    const osp_load_summary_t *s = osp_load_summary(l);
    fprintf(f, "duration    %10.2f s     client CPU %.2f s\n", s->duration_s,
            s->client_cpu_s);
    fprintf(f, "requests    %10llu sent  %llu completed  %llu ok  %llu errors "
               "(%.3f%%)\n", (unsigned long long)s->sent,
            (unsigned long long)s->completed, (unsigned long long)s->ok,
            (unsigned long long)s->errors, s->error_rate * 100);
    if (s->mode == OSP_LOAD_OPEN)
        fprintf(f, "throughput  %10.1f req/s (ok: %.1f req/s; profile mean "
                   "%.1f req/s)\n", s->rps, s->ok_rps, s->target_rps);
    else
        fprintf(f, "throughput  %10.1f req/s (ok: %.1f req/s)\n", s->rps,
                s->ok_rps);
    fprintf(f, "latency ms  %10s %10s %10s %10s %10s %10s %10s\n", "min",
            "mean", "p50", "p90", "p99", "p99.9", "max");
    fprintf(f, "            %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n",
            s->min_ms, s->mean_ms, s->p50_ms, s->p90_ms, s->p99_ms, s->p999_ms,
            s->max_ms);
    /* Both kinds of answer: each on its own (e.g. admitted vs shed). */
    if (s->ok && s->ok < s->completed) {
        fprintf(f, "  < 400     %10s %10s %10.3f %10.3f %10.3f %10s %10.3f\n",
                "", "", s->ok_p50_ms, s->ok_p90_ms, s->ok_p99_ms, "",
                s->ok_max_ms);
        fprintf(f, "  >= 400    %10s %10s %10.3f %10.3f %10.3f %10s %10.3f\n",
                "", "", s->error_p50_ms, s->error_p90_ms, s->error_p99_ms, "",
                s->error_max_ms);
    }
    if (s->warmup_s > 0)
        fprintf(f, "warm-up     %10.2f s left out (requests due in it)\n",
                s->warmup_s);
    int any = 0;
    for (int i = 0; i < OSP_LOAD_FAIL_COUNT; i++)
        if (s->fail[i]) {
            fprintf(f, "%s%s %llu", any ? ", " : "errors      ",
                    osp_load_fail_name((osp_load_fail_t)i),
                    (unsigned long long)s->fail[i]);
            any = 1;
        }
    for (int code = 400; code < 600; code++)
        if (s->status[code]) {
            fprintf(f, "%sHTTP %d: %llu", any ? ", " : "errors      ", code,
                    (unsigned long long)s->status[code]);
            any = 1;
        }
    if (any)
        fputc('\n', f);
    if (s->retries || s->unfinished)
        fprintf(f, "retries     %10llu (reused connection closed by the "
                   "server)   unfinished %llu\n",
                (unsigned long long)s->retries,
                (unsigned long long)s->unfinished);
}

static int write_text(const char *dir, const char *name, const char *text,
                      osp_err_t *err) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return osp_err_set(err, OSP_EINVAL, "--out path too long");
    FILE *f = fopen(path, "w");
    if (!f)
        return osp_err_set(err, OSP_EIO, "%s: %s", path, strerror(errno));
    int ok = fputs(text, f) >= 0;
    ok &= fclose(f) == 0;
    return ok ? 0 : osp_err_set(err, OSP_EIO, "%s: write failed", path);
}

/* A malloc'd string built with open_memstream. */
typedef struct mstr_s {
    char *p;
    size_t n;
    FILE *f;
} mstr_t;

int osp_load_write_dir(const osp_load_t *l, const char *dir, osp_err_t *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return osp_err_set(err, OSP_EIO, "--out %s: %s", dir, strerror(errno));
    int n = 0;
    const osp_load_second_t *ser = osp_load_series(l, &n);
    int rc = 0;
    mstr_t m = {0};
    json_t *arr = NULL;
    char *js = NULL;

    /* timeseries.csv */
    m.f = open_memstream(&m.p, &m.n);
    if (!m.f)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    fprintf(m.f, "second,target,sent,completed,errors,p50_ms,p99_ms,max_ms,"
                 "inflight,queued\n");
    for (int i = 0; i < n; i++)
        fprintf(m.f, "%d,%.3f,%llu,%llu,%llu,%.3f,%.3f,%.3f,%llu,%llu\n", i,
                ser[i].target, (unsigned long long)ser[i].sent,
                (unsigned long long)ser[i].completed,
                (unsigned long long)ser[i].errors, ser[i].p50_ms,
                ser[i].p99_ms, ser[i].max_ms,
                (unsigned long long)ser[i].inflight,
                (unsigned long long)ser[i].backlog);
    fclose(m.f);
    rc = write_text(dir, "timeseries.csv", m.p, err);
    free(m.p);
    if (rc < 0)
        return rc;

    /* timeseries.json: an array of row objects, same fields */
    arr = json_array();
    for (int i = 0; arr && i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:i,s:f,s:I,s:I,s:I,s:o,s:o,s:o,s:I,s:I}",
                           "second", i, "target", ser[i].target, "sent",
                           (json_int_t)ser[i].sent, "completed",
                           (json_int_t)ser[i].completed, "errors",
                           (json_int_t)ser[i].errors, "p50_ms",
                           ms(ser[i].p50_ms), "p99_ms", ms(ser[i].p99_ms),
                           "max_ms", ms(ser[i].max_ms), "inflight",
                           (json_int_t)ser[i].inflight, "queued",
                           (json_int_t)ser[i].backlog));
    js = arr ? json_dumps(arr, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(arr);
    if (!js)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    rc = write_text(dir, "timeseries.json", js, err);
    free(js);
    if (rc < 0)
        return rc;

    /* summary.json */
    json_t *o = summary_obj(l);
    js = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(o);
    if (!js)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    rc = write_text(dir, "summary.json", js, err);
    free(js);
    if (rc < 0)
        return rc;

    /* latency.csv: the percentile spectrum, HdrHistogram-plot style */
    static const double pcts[] = {0, 10, 20, 30, 40, 50, 60, 70, 75, 80,
                                  85, 90, 95, 97.5, 99, 99.5, 99.9, 99.95,
                                  99.99, 100};
    const osp_load_hist_t *h = osp_load_hist(l);
    m.f = open_memstream(&m.p, &m.n);
    if (!m.f)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    fprintf(m.f, "percentile,latency_ms\n");
    for (size_t i = 0; i < OSP_ARRAY_LEN(pcts); i++)
        fprintf(m.f, "%g,%.3f\n", pcts[i],
                (pcts[i] == 0 ? osp_load_hist_min(h)
                              : osp_load_hist_percentile(h, pcts[i])) / 1e3);
    fclose(m.f);
    rc = write_text(dir, "latency.csv", m.p, err);
    free(m.p);
    return rc;
}
