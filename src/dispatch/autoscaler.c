/* autoscaler.c — with --autoscaler-url, a background thread fetches the
 * autoscaler's GET /status (docs/autoscale.md: current, desired, panic,
 * last_decision, workers) every second, so that the status page can show
 * workers desired vs current and the last decision with its reason. The
 * page never waits for the autoscaler: it gets the last answer (and its
 * age) or the last error. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch/dispatch_int.h"

#define AS_PERIOD_MS 1000
#define AS_TIMEOUT_MS 1000
#define AS_MAX_BYTES (1u << 20)

static void store(osp_dispatch_t *d, json_t *status, const char *error) {
    pthread_mutex_lock(&d->as_mu);
    if (status) {
        json_decref(d->as_status);
        d->as_status = status;
        d->as_ok_ns = osp_now_ns();
        d->as_error[0] = 0;
    } else {
        snprintf(d->as_error, sizeof d->as_error, "%s", error);
    }
    pthread_mutex_unlock(&d->as_mu);
}

static void poll_once(osp_dispatch_t *d, CURL *h, const char *url) {
    osp__dsp_resp_t r = {.max = AS_MAX_BYTES};
    CURLcode cc = osp__dsp_upstream_do(h, "GET", url, NULL, NULL, 0,
                                       AS_TIMEOUT_MS, AS_TIMEOUT_MS, &r);
    char why[256];
    json_t *j = NULL;
    if (cc != CURLE_OK) {
        snprintf(why, sizeof why, "%s", curl_easy_strerror(cc));
    } else if (r.status != 200) {
        snprintf(why, sizeof why, "HTTP %ld", r.status);
    } else {
        json_error_t je;
        j = json_loadb((const char *)r.body, r.len, 0, &je);
        if (!json_is_object(j)) {
            json_decref(j);
            j = NULL;
            snprintf(why, sizeof why, "not a JSON object");
        }
    }
    store(d, j, why);
    osp__dsp_resp_free(&r);
}

static void *as_main(void *arg) {
    osp_dispatch_t *d = arg;
    char url[1024];
    size_t n = strlen(d->o.autoscaler_url);
    /* The base URL or the /status URL itself. */
    snprintf(url, sizeof url, "%s%s", d->o.autoscaler_url,
             n >= 7 && !strcmp(d->o.autoscaler_url + n - 7, "/status")
                 ? ""
                 : d->o.autoscaler_url[n - 1] == '/' ? "status" : "/status");
    CURL *h = curl_easy_init();
    if (h)
        osp__dsp_upstream_init(h);
    while (h && !atomic_load(&d->stop_flag)) {
        poll_once(d, h, url);
        for (int t = 0; t < AS_PERIOD_MS / 50 && !atomic_load(&d->stop_flag);
             t++)
            usleep(50 * 1000);
    }
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

int osp__dsp_autoscaler_start(osp_dispatch_t *d, osp_err_t *err) {
    if (!d->o.autoscaler_url || !*d->o.autoscaler_url)
        return 0;
    if (pthread_create(&d->as_th, NULL, as_main, d) != 0) {
        osp_err_set(err, OSP_EIO, "dispatch: cannot start the autoscaler "
                                  "poller");
        return OSP_EIO;
    }
    d->as_started = true;
    return 0;
}

json_t *osp__dsp_autoscaler_json(osp_dispatch_t *d) {
    if (!d->o.autoscaler_url || !*d->o.autoscaler_url)
        return NULL;
    pthread_mutex_lock(&d->as_mu);
    json_t *st = d->as_status ? json_deep_copy(d->as_status) : json_null();
    double age = d->as_ok_ns ? (double)(osp_now_ns() - d->as_ok_ns) * 1e-9
                             : -1;
    json_t *j = json_pack("{s:s,s:b,s:s?,s:f,s:o}", "url", d->o.autoscaler_url,
                          "ok", d->as_status && !d->as_error[0], "error",
                          d->as_error[0] ? d->as_error : NULL, "age_s", age,
                          "status", st);
    pthread_mutex_unlock(&d->as_mu);
    return j;
}
