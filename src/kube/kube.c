/* kube.c — the Kubernetes API client (include/osprey/kube.h): one libcurl
 * handle per client, configured afresh for each request from the config
 * (server verification, client certificate, bearer token), so a request
 * never inherits a previous one's options. The token file is stat'ed per
 * request and re-read when its inode, size or mtime changed: kubelet
 * rotates projected tokens by swapping a symlink, which changes the inode.
 * Everything the API sends is untrusted: bodies are capped, stream lines
 * too. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/kube_int.h"

#define KUBE_MAX_BODY ((size_t)64 << 20) /* one answer (a LIST) */
#define KUBE_MAX_LINE ((size_t)16 << 20) /* one WATCH event */
#define KUBE_MAX_TOKEN ((size_t)1 << 16) /* a token file */
#define KUBE_CONNECT_TIMEOUT_MS 5000L
#define KUBE_DEFAULT_TIMEOUT_MS 30000L

struct osp_kube_s {
    osp_kube_config_t c;   /* our own copy */
    CURL *h;
    /* The bearer token last read from c.token_path, and what its file
     * looked like then (re-read when that changes). */
    char *file_token;
    struct stat token_st;
    bool token_read;
};

/* One request's transfer state, seen by the curl callbacks. */
typedef struct xfer_s {
    osp_kube_t *k;
    const osp_kube_req_t *rq;
    osp_kube_resp_t *out;
    size_t cap;           /* of out->body */
    bool too_big;
    char *line;           /* streaming: the line being assembled */
    size_t line_len, line_cap;
    bool bad_line;        /* the current line is over the cap: dropped */
} xfer_t;

osp_kube_t *osp_kube_create(const osp_kube_config_t *c, osp_err_t *err) {
    if (!c->server || !*c->server) {
        osp_err_set(err, OSP_EINVAL, "kubernetes: no API server URL");
        return NULL;
    }
    osp_kube_t *k = calloc(1, sizeof *k);
    if (!k || osp__kube_config_copy(&k->c, c) < 0 ||
        !(k->h = curl_easy_init())) {
        if (k)
            osp_kube_config_fini(&k->c);
        free(k);
        osp_err_set(err, OSP_ENOMEM, "kubernetes: out of memory");
        return NULL;
    }
    size_t n = strlen(k->c.server);
    while (n && k->c.server[n - 1] == '/')
        k->c.server[--n] = 0;
    return k;
}

void osp_kube_destroy(osp_kube_t *k) {
    if (!k)
        return;
    if (k->h)
        curl_easy_cleanup(k->h);
    osp_kube_config_fini(&k->c);
    free(k->file_token);
    free(k);
}

/* The token to send now: the inline one, else the file's (re-read when the
 * file changed); NULL when there is none or the file cannot be read. */
static const char *current_token(osp_kube_t *k) {
    if (k->c.token)
        return k->c.token;
    if (!k->c.token_path)
        return NULL;
    struct stat st;
    if (stat(k->c.token_path, &st) < 0) {
        free(k->file_token);
        k->file_token = NULL;
        k->token_read = false;
        return NULL;
    }
    if (k->token_read && st.st_ino == k->token_st.st_ino &&
        st.st_dev == k->token_st.st_dev && st.st_size == k->token_st.st_size &&
        st.st_mtim.tv_sec == k->token_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == k->token_st.st_mtim.tv_nsec)
        return k->file_token;
    uint8_t *tok = NULL;
    size_t tl = 0;
    free(k->file_token);
    k->file_token = NULL;
    k->token_read = false;
    if (osp_read_file(k->c.token_path, KUBE_MAX_TOKEN, &tok, &tl, NULL) < 0)
        return NULL;
    while (tl && (tok[tl - 1] == '\n' || tok[tl - 1] == '\r' ||
                  tok[tl - 1] == ' '))
        tl--;
    k->file_token = strndup((const char *)tok, tl);
    free(tok);
    k->token_st = st;
    k->token_read = k->file_token != NULL;
    return k->file_token;
}

static void set_blob(CURL *h, CURLoption opt, const char *pem, size_t len) {
    struct curl_blob b = {.data = (void *)pem, .len = len,
                          .flags = CURL_BLOB_COPY};
    curl_easy_setopt(h, opt, &b);
}

/* Server verification and client certificate. */
static void setup_tls(osp_kube_t *k) {
    CURL *h = k->h;
    const osp_kube_config_t *c = &k->c;
    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (c->ca_pem) {
        set_blob(h, CURLOPT_CAINFO_BLOB, c->ca_pem, c->ca_pem_len);
    } else if (c->ca_path && !access(c->ca_path, R_OK)) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_path);
    }
    if (c->cert_pem)
        set_blob(h, CURLOPT_SSLCERT_BLOB, c->cert_pem, c->cert_pem_len);
    else if (c->cert_path)
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_path);
    if (c->key_pem)
        set_blob(h, CURLOPT_SSLKEY_BLOB, c->key_pem, c->key_pem_len);
    else if (c->key_path)
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_path);
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c,
                       curl_off_t e) {
    (void)a, (void)b, (void)c, (void)e;
    xfer_t *x = ud;
    return x->rq->cancelled && x->rq->cancelled(x->rq->ud) ? 1 : 0;
}

static bool streaming(xfer_t *x) {
    long status = 0;
    curl_easy_getinfo(x->k->h, CURLINFO_RESPONSE_CODE, &status);
    return x->rq->on_line && status >= 200 && status < 300;
}

/* Streaming: cuts data into lines for on_line. false = stop the stream. */
static bool feed_lines(xfer_t *x, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            bool stop = !x->bad_line &&
                        x->rq->on_line(x->rq->ud, x->line ? x->line : "",
                                       x->line_len) != 0;
            x->line_len = 0;
            x->bad_line = false;
            if (stop) {
                x->out->stopped = true;
                return false;
            }
            continue;
        }
        if (x->bad_line)
            continue;
        if (x->line_len + 2 > x->line_cap) {
            size_t cap = x->line_cap ? x->line_cap * 2 : 65536;
            char *nl = cap <= KUBE_MAX_LINE ? realloc(x->line, cap) : NULL;
            if (!nl) {
                x->bad_line = true; /* oversized: drop this line */
                continue;
            }
            x->line = nl;
            x->line_cap = cap;
        }
        x->line[x->line_len++] = p[i];
    }
    return true;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
    xfer_t *x = ud;
    size_t total = sz * n;
    if (streaming(x))
        return feed_lines(x, p, total) ? total : 0;
    osp_kube_resp_t *r = x->out;
    if (r->len + total + 1 > KUBE_MAX_BODY) {
        x->too_big = true;
        return 0;
    }
    if (r->len + total + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 16384;
        while (cap < r->len + total + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return 0;
        r->body = nb;
        x->cap = cap;
    }
    memcpy(r->body + r->len, p, total);
    r->len += total;
    r->body[r->len] = 0;
    return total;
}

/* Headers of this request; NULL on ENOMEM. */
static struct curl_slist *headers(osp_kube_t *k, const osp_kube_req_t *rq) {
    struct curl_slist *hs = curl_slist_append(NULL, "Accept: application/json");
    const char *tok = current_token(k);
    if (hs && tok) {
        size_t n = strlen(tok) + 32;
        char *line = malloc(n);
        if (line) {
            snprintf(line, n, "Authorization: Bearer %s", tok);
            hs = curl_slist_append(hs, line);
            free(line);
        }
    }
    if (hs && rq->body && rq->content_type) {
        char line[256];
        snprintf(line, sizeof line, "Content-Type: %s", rq->content_type);
        hs = curl_slist_append(hs, line);
    }
    return hs;
}

/* Configures k->h for rq (after a reset: nothing left from the last one). */
static int setup(osp_kube_t *k, const osp_kube_req_t *rq, xfer_t *x,
                 struct curl_slist *hs, osp_err_t *err) {
    CURL *h = k->h;
    size_t n = strlen(k->c.server) + strlen(rq->path) + 1;
    char *url = malloc(n);
    if (!url)
        return osp_err_set(err, OSP_ENOMEM, "kubernetes: out of memory");
    snprintf(url, n, "%s%s", k->c.server, rq->path);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url); /* curl copies it */
    free(url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, KUBE_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     rq->timeout_ms > 0 ? rq->timeout_ms
                                        : KUBE_DEFAULT_TIMEOUT_MS);
    setup_tls(k);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    const char *m = rq->method ? rq->method : "GET";
    if (strcmp(m, "GET"))
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    if (rq->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)rq->body_len);
    }
    return 0;
}

int osp_kube_request(osp_kube_t *k, const osp_kube_req_t *rq,
                     osp_kube_resp_t *out, osp_err_t *err) {
    memset(out, 0, sizeof *out);
    xfer_t x = {.k = k, .rq = rq, .out = out};
    struct curl_slist *hs = headers(k, rq);
    if (!hs)
        return osp_err_set(err, OSP_ENOMEM, "kubernetes: out of memory");
    int rc = setup(k, rq, &x, hs, err);
    CURLcode cc = rc < 0 ? CURLE_OK : curl_easy_perform(k->h);
    if (rc == 0)
        curl_easy_getinfo(k->h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_setopt(k->h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hs);
    free(x.line);
    if (rc < 0 || cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && out->stopped))
        return rc;
    if (x.too_big)
        rc = osp_err_set(err, OSP_ELIMIT, "answer over %zu bytes",
                         KUBE_MAX_BODY);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        rc = osp_err_set(err, OSP_ETIMEDOUT, "%s", curl_easy_strerror(cc));
    else if (cc == CURLE_ABORTED_BY_CALLBACK)
        rc = osp_err_set(err, OSP_EBUSY, "%s", curl_easy_strerror(cc));
    else
        rc = osp_err_set(err, OSP_EIO, "%s", curl_easy_strerror(cc));
    osp_kube_resp_free(out);
    return rc;
}

void osp_kube_resp_free(osp_kube_resp_t *r) {
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

const char *osp_kube_status_message(const osp_kube_resp_t *r, char *buf,
                                    size_t cap) {
    buf[0] = 0;
    if (!r->body || !r->len)
        return buf;
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    const char *m = json_string_value(json_object_get(j, "message"));
    snprintf(buf, cap, "%.*s", m ? (int)(cap - 1) : 200,
             m ? m : r->body);
    json_decref(j);
    return buf;
}
