/* record.c — the recorder behind `osprey report record`: scrapes /metrics
 * pages (the dispatcher's, the workers', the autoscaler's) and appends what
 * the report needs as JSON lines, so that a run leaves its own evidence
 * without a Prometheus. Only the metrics of osp__report_metrics are kept,
 * each summed over its labels (or split by one label), so a line stays a
 * few hundred bytes however many models and backends a page lists. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osprey/http.h"
#include "osprey/metrics.h"
#include "report/report_int.h"

typedef struct acc_s {
    json_t *samples; /* key → summed value */
} acc_t;

static int on_sample(const osp_metrics_sample_t *s, void *ud) {
    acc_t *a = ud;
    for (int k = 0; k < osp__report_n_metrics; k++) {
        const osp__report_metric_t *m = &osp__report_metrics[k];
        if (!osp_metrics_sample_is(s, m->name) || !isfinite(s->value))
            continue;
        char key[96], lv[48];
        if (m->split) {
            if (!osp_metrics_sample_label(s, m->split, lv, sizeof lv))
                lv[0] = 0;
            snprintf(key, sizeof key, "%s{%s=%s}", m->name, m->split, lv);
        } else {
            snprintf(key, sizeof key, "%s", m->name);
        }
        json_t *old = json_object_get(a->samples, key);
        double v = (old ? json_real_value(old) : 0) + s->value;
        json_object_set_new(a->samples, key, json_real(v));
    }
    return 0;
}

static double unix_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int osp_report_record_scrape(const char *const *urls, int n_urls,
                             long timeout_ms, FILE *f, osp_err_t *err) {
    for (int i = 0; i < n_urls; i++) {
        double t = unix_now_s();
        long status = 0;
        char *body = NULL;
        size_t len = 0;
        osp_err_t e = {0};
        acc_t a = {json_object()};
        json_t *line = json_object();
        if (!a.samples || !line) {
            json_decref(a.samples);
            json_decref(line);
            return osp_err_set(err, OSP_ENOMEM, "out of memory");
        }
        int rc = osp_http_fetch("GET", urls[i], NULL, timeout_ms, &status, &body, &len, &e);
        if (rc == 0 && status != 200)
            rc = osp_err_set(&e, OSP_EIO, "%s: HTTP %ld", urls[i], status);
        if (rc == 0)
            rc = osp_metrics_parse_text(body, len, on_sample, &a, &e);
        free(body);
        json_object_set_new(line, "t", json_real(t));
        json_object_set_new(line, "target", json_string(urls[i]));
        json_object_set_new(line, "up", json_boolean(rc == 0));
        if (rc == 0)
            json_object_set(line, "samples", a.samples);
        else
            json_object_set_new(line, "error", json_string(e.msg));
        json_decref(a.samples);
        char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                          JSON_REAL_PRECISION(15));
        json_decref(line);
        if (!text)
            return osp_err_set(err, OSP_ENOMEM, "out of memory");
        int ok = fprintf(f, "%s\n", text) > 0;
        free(text);
        if (!ok)
            return osp_err_set(err, OSP_EIO, "recorder: write failed");
    }
    return fflush(f) == 0 ? 0 : osp_err_set(err, OSP_EIO, "recorder: write failed");
}

int osp_report_record_discover(const char *admin_url, const char *admin_token,
                               long timeout_ms, char **urls, int max,
                               osp_err_t *err) {
    char url[1024];
    snprintf(url, sizeof url, "%s/admin/backends", admin_url);
    long status = 0;
    char *body = NULL;
    size_t len = 0;
    int rc = osp_http_fetch_bearer("GET", url, admin_token, NULL, timeout_ms,
                                   &status, &body, &len, err);
    if (rc < 0)
        return rc;
    json_error_t je;
    json_t *a = json_loadb(body ? body : "", len, 0, &je);
    free(body);
    if (status != 200 || !json_is_array(a)) {
        json_decref(a);
        return osp_err_set(err, OSP_EFORMAT, "%s: HTTP %ld, not a list of backends",
                           url, status);
    }
    int n = 0;
    size_t i;
    json_t *b;
    json_array_foreach(a, i, b) {
        const char *addr = json_string_value(json_object_get(b, "address"));
        if (!addr || n == max)
            continue;
        char u[300];
        snprintf(u, sizeof u, "http://%.256s/metrics", addr);
        if (!(urls[n] = strdup(u)))
            break;
        n++;
    }
    json_decref(a);
    return n;
}
