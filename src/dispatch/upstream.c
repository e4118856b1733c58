/* upstream.c — HTTP requests to backends over libcurl easy handles. Each
 * backend keeps a stack of idle handles; a handle keeps its keep-alive
 * connection between requests, so a steady load reuses connections instead
 * of paying a TCP handshake per request (the pool is the connection pool).
 *
 * Used by the blocking path (`--io blocking`: the front is
 * thread-per-connection and its handlers block anyway, so a blocking call
 * adds no thread hand-off) and by the health checks on their own thread.
 * The default event path (loop.c) has its own non-blocking client; why, and
 * the measurements, in docs/decisions.md ("Dispatcher: event path"). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dispatch/dispatch_int.h"

CURL *osp__dsp_upstream_get(osp__dsp_backend_t *b) {
    CURL *h = NULL;
    pthread_mutex_lock(&b->pool_mu);
    if (b->n_idle > 0)
        h = b->idle[--b->n_idle];
    pthread_mutex_unlock(&b->pool_mu);
    if (!h && (h = curl_easy_init()))
        osp__dsp_upstream_init(h);
    return h;
}

void osp__dsp_upstream_init(CURL *h) {
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    /* Backends are reached directly: an explicit empty proxy stops libcurl
     * from reading http_proxy/no_proxy from the environment on every
     * transfer (and a proxy set for other tools from being used). */
    curl_easy_setopt(h, CURLOPT_PROXY, "");
}

void osp__dsp_upstream_put(osp__dsp_backend_t *b, CURL *h) {
    if (!h)
        return;
    /* The header list and body pointed at the finished request's memory. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    pthread_mutex_lock(&b->pool_mu);
    if (b->n_idle < DSP_POOL_MAX) {
        b->idle[b->n_idle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&b->pool_mu);
    if (h)
        curl_easy_cleanup(h);
}

void osp__dsp_resp_free(osp__dsp_resp_t *r) {
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    osp__dsp_resp_t *r = ud;
    size_t k = sz * n;
    if (k > r->max - r->len)
        return 0; /* over the cap: abort the transfer */
    if (r->len + k + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + k + 1)
            cap *= 2;
        uint8_t *nb = realloc(r->body, cap);
        if (!nb)
            return 0;
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = 0;
    return k;
}

/* Copies a header's value (trimmed) into dst when its name matches. */
static void take_header(const char *line, size_t n, const char *name,
                        char *dst, size_t cap) {
    size_t nl = strlen(name);
    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl))
        return;
    const char *v = line + nl + 1;
    const char *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
        e--;
    size_t vl = (size_t)(e - v);
    if (vl >= cap)
        vl = cap - 1;
    memcpy(dst, v, vl);
    dst[vl] = 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
    osp__dsp_resp_t *r = ud;
    size_t k = sz * n;
    take_header(p, k, "Content-Type", r->content_type,
                sizeof r->content_type);
    take_header(p, k, "Inference-Header-Content-Length", r->ihcl,
                sizeof r->ihcl);
    take_header(p, k, "Retry-After", r->retry_after, sizeof r->retry_after);
    return k;
}

CURLcode osp__dsp_upstream_do(CURL *h, const char *method, const char *url,
                              struct curl_slist *headers, const void *body,
                              size_t len, long timeout_ms,
                              long connect_timeout_ms, osp__dsp_resp_t *resp) {
    /* Every per-request option is set on every call (no curl_easy_reset:
     * it re-initialises a few KB of settings per request, measurable on
     * the proxy's hot path); the constant ones were set by _init. */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     connect_timeout_ms < timeout_ms || timeout_ms <= 0
                         ? connect_timeout_ms
                         : timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        if (strcmp(method, "POST"))
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(body ? len : 0));
    }
    return osp__dsp_upstream_perform(h, resp);
}

CURLcode osp__dsp_upstream_perform(CURL *h, osp__dsp_resp_t *resp) {
    resp->status = 0;
    resp->len = 0;
    resp->content_type[0] = resp->ihcl[0] = resp->retry_after[0] = 0;
    if (!resp->max)
        resp->max = DSP_MAX_RESPONSE_BYTES;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    return cc;
}
