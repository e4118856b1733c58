/* proxy.c — the proxied worker API: model routing, admission, balancing,
 * the upstream attempt and retries.
 *
 * Per request:
 *   1. deadline = now + X-Request-Timeout-Ms (else --request-timeout-ms);
 *   2. choose a backend (under d->mu): candidates are ready backends that
 *      serve the model and were not tried yet; those below --max-inflight
 *      go to the policy; when every candidate is full the request waits in
 *      the model's admission queue (bounded; until a slot frees, the
 *      queue timeout or the deadline) — full or timed out → 503 +
 *      Retry-After; no candidate at all → 503 at once (404 when every
 *      backend's index is known and none serves the model);
 *   3. forward (same method, path, query, body; Content-Type, V2 header
 *      length, X-Request-Id, remaining deadline as X-Request-Timeout-Ms);
 *   4. a connect error, reset or empty answer, or a 503 from the worker is
 *      retried on another backend while attempts, the retry budget
 *      (tokens: +retry_ratio per request, −1 per retry) and the deadline
 *      allow; anything else (including 4xx and other 5xx) goes back to the
 *      client as the worker sent it.
 * Classification and inference are idempotent, so a retry is safe even when
 * the first attempt may have reached the worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch/dispatch_int.h"

static void abs_time(struct timespec *ts, uint64_t deadline_ns) {
    /* Convert a monotonic deadline into a CLOCK_REALTIME timespec. */
    int64_t left = (int64_t)(deadline_ns - osp_now_ns());
    if (left < 0)
        left = 0;
    clock_gettime(CLOCK_REALTIME, ts);
    int64_t ns = ts->tv_nsec + left;
    ts->tv_sec += (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

osp__dsp_pick_t osp__dsp_pick_locked(osp_dispatch_t *d, const char *model,
                                     osp__dsp_backend_t *const *tried,
                                     int n_tried, osp__dsp_backend_t **out,
                                     uint64_t *start_ns) {
    osp__dsp_backend_t *cand[OSP_DISPATCH_MAX_BACKENDS];
    double load[OSP_DISPATCH_MAX_BACKENDS];
    uint64_t now = osp_now_ns();
    if (d->stop)
        return DSP_PICK_STOP;
    int n_any = 0, n_free = 0;
    bool all_known = d->n_b > 0;
    /* A backend without a latency sample yet is assumed average:
     * assuming it fast would send it a burst before its first answer
     * shows what it is. */
    double sum_ewma = 0;
    int n_ewma = 0;
    for (int i = 0; i < d->n_b; i++)
        if (d->b[i]->ewma_ms > 0 && d->b[i]->state == DSP_READY) {
            sum_ewma += d->b[i]->ewma_ms;
            n_ewma++;
        }
    double floor_ms = n_ewma ? sum_ewma / n_ewma : DSP_EWMA_FLOOR_MS;
    int n_ready = 0;
    for (int i = 0; i < d->n_b; i++)
        n_ready += d->b[i]->state == DSP_READY;
    if (n_ready < 1)
        n_ready = 1;
    bool anywhere = false;
    for (int i = 0; i < d->n_b; i++) {
        osp__dsp_backend_t *b = d->b[i];
        all_known = all_known && b->models_known;
        if (!osp__dsp_backend_serves(b, model))
            continue;
        anywhere = true;
        if (b->state != DSP_READY)
            continue;
        bool was_tried = false;
        for (int k = 0; k < n_tried && !was_tried; k++)
            was_tried = tried[k] == b;
        if (was_tried)
            continue;
        n_any++;
        if (b->inflight < d->o.max_inflight) {
            /* Requests outstanding longer than the estimate say the
             * backend is slower than it was: their mean age is a
             * lower bound on what the next one will take. */
            double est = b->ewma_ms,
                   age = (double)(d->picks - b->ewma_pick) / n_ready;
            if (b->inflight > 0) {
                double mean_age = (double)now * 1e-6 -
                                  b->start_sum_ms / b->inflight;
                if (mean_age > est) {
                    est = mean_age;
                    age = 0;
                }
            }
            cand[n_free] = b;
            load[n_free++] = osp__dsp_cost(
                d->o.policy, b->inflight, est, age,
                est > 0 ? DSP_EWMA_FLOOR_MS : floor_ms);
        }
    }
    /* Backends that just answered 503 go last: the others first. */
    int n_calm = 0;
    for (int k = 0; k < n_free; k++)
        n_calm += cand[k]->overloaded_until_ns <= now;
    if (n_calm > 0 && n_calm < n_free) {
        int j = 0;
        for (int k = 0; k < n_free; k++)
            if (cand[k]->overloaded_until_ns <= now) {
                cand[j] = cand[k];
                load[j++] = load[k];
            }
        n_free = n_calm;
    }
    if (n_free > 0) {
        int k = osp__dsp_balance_pick(d->o.policy, load, n_free, &d->rng,
                                      &d->rr);
        osp__dsp_backend_t *b = cand[k];
        b->inflight++;
        b->sent++;
        d->picks++;
        *start_ns = now;
        b->start_sum_ms += (double)now * 1e-6;
        osp_series_set(b->s_inflight, b->inflight);
        osp__dsp_backend_ref(b);
        *out = b;
        return DSP_PICK_OK;
    }
    if (n_any == 0)
        return model && all_known && !anywhere ? DSP_PICK_UNKNOWN
                                               : DSP_PICK_NONE;
    return DSP_PICK_BUSY; /* every candidate is at its limit */
}

/* Chooses a backend for model (NULL = the default model), skipping tried[],
 * waiting in q's admission queue while every candidate is full. On
 * DSP_PICK_OK *out holds a reference and one in-flight slot. */
static osp__dsp_pick_t pick(osp_dispatch_t *d, osp__dsp_model_t *q,
                            const char *model,
                            osp__dsp_backend_t *const *tried, int n_tried,
                            uint64_t wait_until_ns, osp__dsp_backend_t **out,
                            uint64_t *start_ns) {
    bool queued = false;
    osp__dsp_pick_t res;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        res = osp__dsp_pick_locked(d, model, tried, n_tried, out, start_ns);
        if (res != DSP_PICK_BUSY)
            break;
        /* Every candidate is at its limit: wait in the model's queue. */
        if (!queued) {
            if (q->waiting >= d->o.queue_size) {
                res = DSP_PICK_FULL;
                break;
            }
            osp__dsp_queue_locked(d, q, 1);
            queued = true;
        }
        if (osp_now_ns() >= wait_until_ns) {
            res = DSP_PICK_TIMEOUT;
            break;
        }
        struct timespec ts;
        abs_time(&ts, wait_until_ns);
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    }
    if (queued)
        osp__dsp_queue_locked(d, q, -1);
    pthread_mutex_unlock(&d->mu);
    return res;
}

void osp__dsp_queue_locked(osp_dispatch_t *d, osp__dsp_model_t *q, int delta) {
    q->waiting += delta;
    d->waiting += delta;
    osp_series_set(q->s_depth, q->waiting);
}

void osp__dsp_wake_locked(osp_dispatch_t *d) {
    pthread_cond_broadcast(&d->cv);
    if (d->waiting > 0)
        osp__dsp_loops_kick(d);
}

/* Gives back the in-flight slot and records the attempt's outcome (> 0
 * success, 0 failure, < 0 neither) and latency (started at start_ns). */
void osp__dsp_release(osp_dispatch_t *d, osp__dsp_backend_t *b, int outcome,
                      uint64_t start_ns) {
    uint64_t now = osp_now_ns();
    pthread_mutex_lock(&d->mu);
    if (outcome > 0) {
        b->ewma_ms = osp__dsp_ewma(b->ewma_ms, (double)(now - start_ns) * 1e-6,
                                   (double)(now - b->ewma_ns) * 1e-6);
        b->ewma_ns = now;
        b->ewma_pick = d->picks;
    }
    if (outcome == DSP_OUTCOME_OVERLOADED)
        b->overloaded_until_ns = now + DSP_OVERLOAD_BACKOFF_MS * 1000000ull;
    b->inflight--;
    b->start_sum_ms = b->inflight ? b->start_sum_ms - (double)start_ns * 1e-6
                                  : 0; /* no drift from rounding */
    osp_series_set(b->s_inflight, b->inflight);
    if (outcome >= 0)
        osp__dsp_backend_result_locked(d, b, outcome > 0);
    if (d->waiting > 0)
        osp__dsp_wake_locked(d);
    pthread_mutex_unlock(&d->mu);
    osp__dsp_backend_unref(b);
}

/* Takes one retry token if the budget has one. */
bool osp__dsp_retry_allowed(osp_dispatch_t *d) {
    pthread_mutex_lock(&d->mu);
    bool ok = d->retry_tokens >= 1.0;
    if (ok)
        d->retry_tokens -= 1.0;
    pthread_mutex_unlock(&d->mu);
    return ok;
}

/* Appends the URL-encoded query string ("?a=b&c=d") of req to url. */
static int append_query(const osp_http_req_t *req, char *url, size_t cap) {
    size_t n = strlen(url);
    int q = osp_http_req_query_string(req, url + n, cap - n);
    return q < 0 ? q : 0;
}

static int respond_upstream(osp_http_req_t *req, osp__dsp_resp_t *r) {
    if (r->ihcl[0])
        osp_http_add_header(req, "Inference-Header-Content-Length", r->ihcl);
    if (r->retry_after[0])
        osp_http_add_header(req, "Retry-After", r->retry_after);
    uint8_t *body = r->body;
    size_t len = r->len;
    r->body = NULL;
    r->len = r->cap = 0;
    if (!body) {
        body = malloc(1);
        if (!body)
            return osp_http_respond_error(req, 500, "out of memory");
    }
    return osp_http_respond_owned(req, (int)r->status,
                                  r->content_type[0] ? r->content_type : NULL,
                                  body, len);
}

int osp__dsp_proxy_begin(osp_dispatch_t *d, osp_http_req_t *req,
                         osp__dsp_call_t *c) {
    c->model = osp_http_req_param(req, "model");
    c->start = osp_now_ns();
    int64_t timeout_ms = d->o.request_timeout_ms;
    const char *th = osp_http_req_header(req, "X-Request-Timeout-Ms");
    if (th) {
        char *end;
        long long v = strtoll(th, &end, 10);
        if (end == th || *end || v <= 0) {
            osp_http_respond_error(req, 400, "bad X-Request-Timeout-Ms '%s'",
                                   th);
            return 1;
        }
        if (v < timeout_ms)
            timeout_ms = v;
    }
    c->deadline = c->start + (uint64_t)timeout_ms * 1000000u;
    int64_t qt = d->o.queue_timeout_ms < timeout_ms ? d->o.queue_timeout_ms
                                                    : timeout_ms;
    c->wait_until = c->start + (uint64_t)qt * 1000000u;

    pthread_mutex_lock(&d->mu);
    c->q = osp__dsp_model_locked(d, c->model, false);
    bool all_known = d->n_b > 0;
    for (int i = 0; i < d->n_b; i++)
        all_known = all_known && d->b[i]->models_known;
    d->retry_tokens += d->o.retry_ratio;
    if (d->retry_tokens > DSP_RETRY_TOKENS_MAX)
        d->retry_tokens = DSP_RETRY_TOKENS_MAX;
    pthread_mutex_unlock(&d->mu);
    if (!c->q) {
        /* No backend has listed this model (yet). */
        osp_http_req_set_user(req, &d->unknown_model);
        if (all_known) {
            osp_http_respond_error(req, 404,
                                   "model '%s' is not served by any backend",
                                   c->model);
            return 1;
        }
        osp_http_add_header(req, "Retry-After", "1");
        osp_http_respond_error(req, 503, "no ready backend for '%s'",
                               c->model);
        return 1;
    }
    osp_http_req_set_user(req, c->q);

    /* Path + query, shared by every attempt. */
    snprintf(c->path, sizeof c->path, "%s", osp_http_req_path(req));
    if (append_query(req, c->path, sizeof c->path) < 0) {
        osp_http_respond_error(req, 414, "query string too long");
        return 1;
    }
    return 0;
}

void osp__dsp_proxy_refuse(osp_http_req_t *req, osp__dsp_pick_t p,
                           const osp__dsp_call_t *c) {
    switch (p) {
    case DSP_PICK_UNKNOWN:
        osp_http_respond_error(req, 404,
                               "model '%s' is not served by any backend",
                               c->model);
        return;
    case DSP_PICK_FULL:
    case DSP_PICK_TIMEOUT:
        osp_http_add_header(req, "Retry-After", "1");
        osp_http_respond_error(req, 503, "all backends for '%s' are busy (%s)",
                               c->q->name,
                               p == DSP_PICK_FULL ? "queue full"
                                                  : "queue timeout");
        return;
    default:
        osp_http_add_header(req, "Retry-After", "1");
        osp_http_respond_error(req, 503, "no ready backend for '%s'",
                               c->q->name);
    }
}

/* The request headers forwarded to a backend. The list lives in the
 * caller's storage (struct curl_slist is public and libcurl only reads
 * it): no malloc/strdup per header line on the hot path. */
typedef struct fwd_headers_s {
    struct curl_slist hn[6];
    char lines[5][512];
} fwd_headers_t;

static struct curl_slist *fwd_headers(osp_http_req_t *req, int64_t left_ms,
                                      fwd_headers_t *f) {
    static const char *const fwd[] = {
        "Content-Type", "Inference-Header-Content-Length", "Accept"};
    int nh = 0;
    for (size_t i = 0; i < OSP_ARRAY_LEN(fwd); i++) {
        const char *v = osp_http_req_header(req, fwd[i]);
        if (v && strlen(v) < 400) {
            snprintf(f->lines[nh], sizeof f->lines[nh], "%s: %s", fwd[i], v);
            f->hn[nh].data = f->lines[nh];
            nh++;
        }
    }
    snprintf(f->lines[nh], sizeof f->lines[nh], "X-Request-Id: %s",
             osp_http_req_id(req));
    f->hn[nh].data = f->lines[nh];
    nh++;
    snprintf(f->lines[nh], sizeof f->lines[nh], "X-Request-Timeout-Ms: %lld",
             (long long)(left_ms > 0 ? left_ms : 1));
    f->hn[nh].data = f->lines[nh];
    nh++;
    f->hn[nh++].data = (char *)"Expect:"; /* no 100-continue round trip */
    for (int i = 0; i < nh; i++)
        f->hn[i].next = i + 1 < nh ? &f->hn[i + 1] : NULL;
    return f->hn;
}

/* One attempt of the blocking path on b (picked at t0): the transfer into
 * r, then how it counts for b's health. Returns the curl code; *retriable
 * says whether another backend may be tried. */
static CURLcode attempt(osp_dispatch_t *d, osp_http_req_t *req,
                        const osp__dsp_call_t *call, osp__dsp_backend_t *b,
                        uint64_t t0, osp__dsp_resp_t *r, bool *retriable) {
    uint64_t deadline = call->deadline;
    int64_t left_ms = (int64_t)(deadline - osp_now_ns()) / 1000000;
    if ((int64_t)(deadline - osp_now_ns()) <= 0)
        left_ms = 0;
    char url[DSP_ADDR_MAX + 2100];
    snprintf(url, sizeof url, "%s%s", b->url, call->path);
    fwd_headers_t fh;
    struct curl_slist *hs = fwd_headers(req, left_ms, &fh);
    size_t body_len;
    const uint8_t *body = osp_http_req_body(req, &body_len);
    CURL *h = osp__dsp_upstream_get(b);
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    if (h && hs && left_ms > 0)
        cc = osp__dsp_upstream_do(h, osp_http_req_method(req), url, hs, body,
                                  body_len, (long)left_ms,
                                  DSP_CONNECT_TIMEOUT_MS, r);
    else if (left_ms <= 0)
        cc = CURLE_OPERATION_TIMEDOUT;
    bool counts_failure;
    if (cc == CURLE_OK) {
        *retriable = r->status == 503;
        /* 503 is overload or draining (health handles draining); 504 is
         * the request's own deadline: neither says the backend is
         * broken. */
        counts_failure = r->status >= 500 && r->status != 503 &&
                         r->status != 504;
    } else {
        *retriable = cc == CURLE_COULDNT_CONNECT || cc == CURLE_SEND_ERROR ||
                     cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING ||
                     cc == CURLE_PARTIAL_FILE ||
                     (cc == CURLE_OPERATION_TIMEDOUT &&
                      osp_now_ns() < deadline); /* connect timeout */
        counts_failure = cc != CURLE_WRITE_ERROR &&
                         cc != CURLE_OUT_OF_MEMORY &&
                         !(cc == CURLE_OPERATION_TIMEDOUT &&
                           osp_now_ns() >= deadline);
        /* A handle whose transfer failed may hold a broken connection: do
         * not pool it. */
        curl_easy_cleanup(h);
        h = NULL;
    }
    osp__dsp_upstream_put(b, h);
    osp__dsp_release(d, b, counts_failure ? 0
                  : cc != CURLE_OK ? -1
                  : r->status == 503 ? DSP_OUTCOME_OVERLOADED : 1, t0);
    return cc;
}

/* Every attempt failed: the last 503 as the worker sent it, 504 past the
 * deadline, else 503 naming the last backend. */
static void respond_failed(osp_http_req_t *req, osp__dsp_resp_t *r,
                           uint64_t deadline, const char *backend,
                           const char *why) {
    if (r->status == 503 && r->body) {
        if (!r->retry_after[0])
            osp_http_add_header(req, "Retry-After", "1");
        respond_upstream(req, r);
    } else if (osp_now_ns() >= deadline) {
        osp_http_respond_error(req, 504, "deadline passed (last backend %s: "
                               "%s)", backend, why ? why : "-");
    } else {
        /* 503 rather than 502: the client may retry later, as with "no
         * ready backend", which is what this usually is. */
        osp_http_add_header(req, "Retry-After", "1");
        osp_http_respond_error(req, 503, "backend %s failed: %s", backend,
                               why ? why : "-");
    }
}

void osp__dsp_h_proxy(osp_http_req_t *req, void *ud) {
    osp_dispatch_t *d = ud;
    osp__dsp_call_t call;
    if (osp__dsp_proxy_begin(d, req, &call))
        return;
    osp__dsp_backend_t *tried[DSP_MAX_ATTEMPTS];
    int n_tried = 0;
    osp__dsp_resp_t r = {0};
    const char *fail_why = NULL;
    char fail_backend[DSP_ADDR_MAX] = "";
    for (int att = 0; att < DSP_MAX_ATTEMPTS; att++) {
        osp__dsp_backend_t *b = NULL;
        uint64_t t0 = 0;
        osp__dsp_pick_t p = pick(d, call.q, call.model, tried, n_tried,
                                 call.wait_until, &b, &t0);
        if (p != DSP_PICK_OK) {
            if (att > 0)
                break; /* answer with the last attempt's failure */
            osp__dsp_resp_free(&r);
            osp__dsp_proxy_refuse(req, p, &call);
            return;
        }
        tried[n_tried++] = b;
        /* (Named before the attempt releases b.) */
        snprintf(fail_backend, sizeof fail_backend, "%s", b->addr);
        bool retriable;
        CURLcode cc = attempt(d, req, &call, b, t0, &r, &retriable);
        if (cc == CURLE_OK && !retriable) {
            osp_http_add_header(req, "X-Osprey-Backend", fail_backend);
            respond_upstream(req, &r);
            osp__dsp_resp_free(&r);
            return;
        }
        fail_why = cc == CURLE_OK ? "503" : curl_easy_strerror(cc);
        if (!retriable || att + 1 >= DSP_MAX_ATTEMPTS ||
            osp_now_ns() >= call.deadline || !osp__dsp_retry_allowed(d))
            break;
        osp_series_inc(d->s_retries);
    }
    respond_failed(req, &r, call.deadline, fail_backend, fail_why);
    osp__dsp_resp_free(&r);
}

int osp__dsp_proxy_routes(osp_http_server_t *s, osp_http_handler_fn fn,
                          void *ud, size_t stream_min) {
    static const char *const post_routes[] = {
        "/classify",
        "/v1/models/{model}/classify",
        "/v1/models/{model}/versions/{version}/classify",
        "/v2/models/{model}/infer",
        "/v2/models/{model}/versions/{version}/infer",
    };
    static const char *const get_routes[] = {
        "/v2/models/{model}",
        "/v2/models/{model}/ready",
        "/v2/models/{model}/versions/{version}",
        "/v2/models/{model}/versions/{version}/ready",
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(post_routes); i++)
        if ((stream_min ? osp_http_route_stream(s, "POST", post_routes[i], fn,
                                                ud, stream_min)
                        : osp_http_route(s, "POST", post_routes[i], fn, ud)) <
            0)
            return OSP_EINTERNAL;
    for (size_t i = 0; i < OSP_ARRAY_LEN(get_routes); i++)
        if (osp_http_route(s, "GET", get_routes[i], fn, ud) < 0)
            return OSP_EINTERNAL;
    return 0;
}
