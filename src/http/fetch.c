/* fetch.c — one plain HTTP request with libcurl (osp_http_fetch): what the
 * autoscaler asks of the dispatcher's admin API (with its bearer token:
 * osp_http_fetch_bearer), the workers and
 * Prometheus, what `osprey up`, `osprey report` and `osprey health` ask of
 * the stack. Small bodies, short timeouts, one handle per call: its callers
 * make a few requests a second, and a slow peer must cost one call, never
 * hang its loop. (The dispatcher's proxying keeps its own pooled handles:
 * src/dispatch/upstream.c.) */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/http.h"

#define FETCH_MAX_BYTES ((size_t)8 << 20) /* a /metrics page, an answer */

typedef struct buf_s {
    char *p;
    size_t n, cap;
    bool over;
} buf_t;

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
    buf_t *b = ud;
    size_t len = sz * n;
    if (b->n + len + 1 > FETCH_MAX_BYTES) {
        b->over = true;
        return 0;
    }
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, len);
    b->n += len;
    b->p[b->n] = 0;
    return len;
}

int osp_http_fetch(const char *method, const char *url, const char *json_body,
                   long timeout_ms, long *status, char **body,
                   size_t *body_len, osp_err_t *err) {
    return osp_http_fetch_bearer(method, url, NULL, json_body, timeout_ms,
                                 status, body, body_len, err);
}

int osp_http_fetch_bearer(const char *method, const char *url,
                          const char *bearer, const char *json_body,
                          long timeout_ms, long *status, char **body,
                          size_t *body_len, osp_err_t *err) {
    CURL *h = curl_easy_init();
    if (!h)
        return osp_err_set(err, OSP_ENOMEM, "%s: out of memory", url);
    buf_t b = {0};
    struct curl_slist *hs = NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (bearer) {
        /* The header, not CURLOPT_XOAUTH2_BEARER: libcurl sends that one
         * only when asked to authenticate (CURLAUTH_BEARER) */
        char *line = NULL;
        if (asprintf(&line, "Authorization: Bearer %s", bearer) < 0) {
            curl_easy_cleanup(h);
            return osp_err_set(err, OSP_ENOMEM, "%s: out of memory", url);
        }
        hs = curl_slist_append(hs, line); /* copies */
        free(line);
    }
    if (json_body) {
        hs = curl_slist_append(hs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
    } else if (!strcmp(method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (hs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    CURLcode cc = curl_easy_perform(h);
    int rc = 0;
    if (cc != CURLE_OK) {
        rc = osp_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? OSP_ETIMEDOUT
                                                             : OSP_EIO,
                         "%s %s: %s", method, url,
                         b.over ? "answer too large" : curl_easy_strerror(cc));
        free(b.p);
        b.p = NULL;
        b.n = 0;
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    }
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
    if (body) {
        *body = b.p;
        if (body_len)
            *body_len = b.n;
    } else {
        free(b.p);
    }
    return rc;
}
