/* h1resp.c — the one HTTP/1.1 response parser (osp_http_h1resp_*): an
 * incremental, bounded reader of one server answer (status line, headers,
 * a body delimited by Content-Length, chunked encoding or the connection's
 * close; 1xx interim answers skipped), fed whatever bytes a read returned.
 *
 * Two clients use it: the dispatcher's event loop (src/dispatch/loop.c),
 * which keeps the body and forwards it, and the load generator
 * (src/load/client.c), which counts the body and drops it. Both are
 * clients of the http module, so the parser is part of its public header
 * (include/osprey/http.h) rather than a private one: modules depend
 * downwards only, and dispatch and load share nothing but http, metrics
 * and cli, never each other's or http's internals.
 *
 * Why our own and not libcurl's: both callers own their sockets in an
 * epoll loop; parsing is the only part of an HTTP client they need, and it
 * must reject anything malformed, oversized or truncated with an error
 * rather than guess, since the bytes come from the network. Complete lines
 * are parsed where they lie in the caller's buffer; only a line split
 * across reads is held (p->carry, bounded by the same limits), so the
 * caller need not keep unconsumed bytes. Each state is one step function
 * in a table (STEPS[]); feed runs the steps over the input. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "osprey/http.h"

enum {
    H1_HEAD = 0,   /* status line and headers */
    H1_BODY_LEN,   /* remaining = body bytes still to come */
    H1_CHUNK_SIZE, /* a chunk-size line */
    H1_CHUNK_DATA, /* remaining = chunk bytes still to come */
    H1_CHUNK_CRLF, /* the CRLF after a chunk's data */
    H1_TRAILERS,   /* trailer lines up to the empty one */
    H1_BODY_EOF,   /* body until the connection closes */
    H1_DONE,
    H1_ERROR,
};

/* Clears the answer state, keeping the buffers p owns and its options;
 * head_bytes too when an interim answer's head still counts. */
static void reset(osp_http_h1resp_t *p, size_t head_bytes) {
    osp_http_h1resp_t keep = *p;
    memset(p, 0, sizeof *p);
    p->opts = keep.opts;
    p->body = keep.body;
    p->body_cap = keep.body_cap;
    p->carry = keep.carry;
    p->carry_cap = keep.carry_cap;
    p->head_bytes = head_bytes;
}

void osp_http_h1resp_init(osp_http_h1resp_t *p,
                          const osp_http_h1resp_opts_t *opts) {
    OSP_ASSERT(opts && opts->max_head_bytes > 0);
    p->opts = *opts;
    reset(p, 0);
}

void osp_http_h1resp_fini(osp_http_h1resp_t *p) {
    free(p->body);
    free(p->carry);
    p->body = NULL;
    p->carry = NULL;
    p->body_cap = p->carry_cap = p->carry_len = 0;
    p->body_bytes = 0;
}

uint8_t *osp_http_h1resp_take_body(osp_http_h1resp_t *p, size_t *len) {
    uint8_t *b = p->body;
    *len = (size_t)p->body_bytes;
    if (!b)
        b = calloc(1, 1);
    p->body = NULL;
    p->body_cap = 0;
    p->body_bytes = 0;
    return b;
}

bool osp_http_h1resp_started(const osp_http_h1resp_t *p) {
    return p->head_bytes > 0 || p->carry_len > 0 || p->seen_status;
}

static int fail(osp_http_h1resp_t *p, int code, const char *why) {
    p->state = H1_ERROR;
    p->err = why;
    return code;
}

/* The kept body would pass its limit: the same answer from any server. */
static int too_big(osp_http_h1resp_t *p) {
    p->too_big = true;
    return fail(p, OSP_ELIMIT, "response body over the limit");
}

static uint64_t body_limit(const osp_http_h1resp_t *p) {
    return p->opts.keep_body && p->opts.max_body_bytes
               ? (uint64_t)p->opts.max_body_bytes
               : UINT64_MAX;
}

/* ---- lines ------------------------------------------------------------ */
typedef struct line_s {
    const char *s; /* without its line ending (LF or CRLF) */
    size_t n;
    size_t total;  /* bytes the whole line spans, ending included */
} line_t;

/* Makes the buffer *buf (*cap bytes, 0 = none yet) hold need bytes,
 * doubling from first. */
static int reserve(osp_http_h1resp_t *p, void **buf, size_t *cap,
                   size_t need, size_t first) {
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    void *nb = realloc(*buf, c);
    if (!nb)
        return fail(p, OSP_ENOMEM, "out of memory");
    *buf = nb;
    *cap = c;
    return 0;
}

/* Appends b[0..n) to the held partial line. */
static int hold(osp_http_h1resp_t *p, const uint8_t *b, size_t n) {
    void *c = p->carry;
    int rc = reserve(p, &c, &p->carry_cap, p->carry_len + n, 256);
    p->carry = c;
    if (rc < 0)
        return rc;
    memcpy(p->carry + p->carry_len, b, n);
    p->carry_len += n;
    return 0;
}

/* The next line: the held partial line joined to b[0..n). Returns 1 with
 * *ln set and *span = the bytes of b it used; 0 when b ends first (b is
 * held, *span = n); OSP_ELIMIT (nothing failed yet: the caller names the
 * limit) when the line spans more than limit bytes; OSP_ENOMEM. */
static int next_line(osp_http_h1resp_t *p, const uint8_t *b, size_t n,
                     size_t limit, line_t *ln, size_t *span) {
    const uint8_t *nl = memchr(b, '\n', n);
    size_t take = nl ? (size_t)(nl - b) + 1 : n;
    if (p->carry_len + take > limit)
        return OSP_ELIMIT;
    *span = take;
    if (!nl || p->carry_len) {
        int rc = hold(p, b, take);
        if (rc < 0 || !nl)
            return rc;
        ln->s = p->carry; /* valid until the next hold */
        ln->total = p->carry_len;
        p->carry_len = 0;
    } else {
        ln->s = (const char *)b;
        ln->total = take;
    }
    ln->n = ln->total - 1;
    if (ln->n > 0 && ln->s[ln->n - 1] == '\r')
        ln->n--;
    return 1;
}

/* ---- the head --------------------------------------------------------- */
static bool token_eq(const char *a, size_t n, const char *lit) {
    return strlen(lit) == n && !strncasecmp(a, lit, n);
}

static int parse_status(osp_http_h1resp_t *p, const char *l, size_t n) {
    /* "HTTP/1.x SSS[ reason]" */
    if (n < 12 || memcmp(l, "HTTP/1.", 7) || (l[7] != '0' && l[7] != '1') ||
        l[8] != ' ' || (n > 12 && l[12] != ' '))
        return fail(p, OSP_EFORMAT, "bad status line");
    for (int i = 9; i < 12; i++)
        if (l[i] < '0' || l[i] > '9')
            return fail(p, OSP_EFORMAT, "bad status code");
    p->minor = l[7] - '0';
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    /* RFC 9110 §15: values outside 100..599 are invalid. */
    if (p->status < 100 || p->status > 599)
        return fail(p, OSP_EFORMAT, "bad status code");
    p->seen_status = true;
    return 0;
}

typedef int (*hdr_fn)(osp_http_h1resp_t *p, const char *v, size_t n,
                      size_t off, size_t cap);

static int hdr_length(osp_http_h1resp_t *p, const char *v, size_t n,
                      size_t off, size_t cap) {
    (void)off, (void)cap;
    if (n == 0 || n > 19) /* 19 digits cannot overflow 64 bits */
        return fail(p, OSP_EFORMAT, "bad Content-Length");
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return fail(p, OSP_EFORMAT, "bad Content-Length");
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (p->have_len && x != p->content_length)
        return fail(p, OSP_EFORMAT, "conflicting Content-Length");
    p->have_len = true;
    p->content_length = x;
    return 0;
}

static int hdr_te(osp_http_h1resp_t *p, const char *v, size_t n, size_t off,
                  size_t cap) {
    (void)off, (void)cap;
    if (p->opts.keep_body) {
        /* We send no TE header, so the only coding a server may use is
         * chunked (RFC 9112 §6.1); a kept body in any other we cannot
         * hand on. */
        if (!token_eq(v, n, "chunked"))
            return fail(p, OSP_EUNSUPPORTED, "unsupported Transfer-Encoding");
        p->chunked = true;
        return 0;
    }
    /* Counting only: chunked frames the body when it is the last coding;
     * otherwise the body runs to the close (RFC 9112 §6.3). */
    size_t s = n;
    while (s && v[s - 1] != ',')
        s--;
    p->chunked = osp_http_list_has(v + s, n - s, "chunked");
    p->te_other = !p->chunked;
    return 0;
}

static int hdr_connection(osp_http_h1resp_t *p, const char *v, size_t n,
                          size_t off, size_t cap) {
    (void)off, (void)cap;
    p->conn_close |= osp_http_list_has(v, n, "close");
    p->conn_keep_alive |= osp_http_list_has(v, n, "keep-alive");
    return 0;
}

/* Copies the value into the field at off (cap bytes), truncated. */
static int hdr_copy(osp_http_h1resp_t *p, const char *v, size_t n,
                    size_t off, size_t cap) {
    char *dst = (char *)p + off;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
    return 0;
}

#define FIELD(f)                                                               \
    offsetof(osp_http_h1resp_t, f), sizeof(((osp_http_h1resp_t *)0)->f)
/* The headers the parser acts on or keeps; others are skipped. */
static const struct {
    const char *name;
    hdr_fn fn;
    size_t off, cap;
} HEADERS[] = {
    {"Content-Length", hdr_length, 0, 0},
    {"Transfer-Encoding", hdr_te, 0, 0},
    {"Connection", hdr_connection, 0, 0},
    {"Content-Type", hdr_copy, FIELD(content_type)},
    {"Inference-Header-Content-Length", hdr_copy, FIELD(ihcl)},
    {"Retry-After", hdr_copy, FIELD(retry_after)},
};
#undef FIELD

static int parse_header(osp_http_h1resp_t *p, const char *l, size_t n) {
    if (l[0] == ' ' || l[0] == '\t')
        return fail(p, OSP_EFORMAT, "folded header line");
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l)
        return fail(p, OSP_EFORMAT, "header line without a name");
    size_t nl = (size_t)(colon - l);
    for (size_t i = 0; i < nl; i++)
        if (l[i] <= ' ' || l[i] >= 0x7f)
            return fail(p, OSP_EFORMAT, "bad header name");
    const char *v = colon + 1, *e = l + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    for (size_t i = 0; i < OSP_ARRAY_LEN(HEADERS); i++)
        if (token_eq(l, nl, HEADERS[i].name))
            return HEADERS[i].fn(p, v, (size_t)(e - v), HEADERS[i].off,
                                 HEADERS[i].cap);
    return 0;
}

/* After the empty line ending the head: how the body is delimited. */
static int end_head(osp_http_h1resp_t *p) {
    if (p->status < 200) {
        /* An interim answer (100 Continue, 103 Early Hints): the real one
         * follows on the same connection; its head counts against the
         * limit. 101 would switch protocols, which we never ask for. */
        if (p->status == 101)
            return fail(p, OSP_EFORMAT, "unexpected 101 Switching Protocols");
        reset(p, p->head_bytes);
        return 0;
    }
    p->keep_alive = p->minor >= 1 ? !p->conn_close
                                  : p->conn_keep_alive && !p->conn_close;
    if (p->status == 204 || p->status == 304) {
        p->state = H1_DONE;
    } else if (p->chunked) {
        p->state = H1_CHUNK_SIZE;
        /* Content-Length alongside chunked is ignored (RFC 9112 §6.3), but
         * a proxy does not trust such a server with another request. */
        if (p->have_len && p->opts.keep_body)
            p->keep_alive = false;
    } else if (p->have_len && !p->te_other) {
        if (p->content_length > body_limit(p))
            return too_big(p);
        p->remaining = p->content_length;
        p->state = p->remaining ? H1_BODY_LEN : H1_DONE;
    } else {
        p->keep_alive = false;
        p->state = H1_BODY_EOF;
    }
    return 0;
}

/* ---- steps: one per state; each consumes *used bytes of b[0..n) ------- */
typedef int (*step_fn)(osp_http_h1resp_t *p, const uint8_t *b, size_t n,
                       size_t *used);

/* A head or trailer line, within what is left of the head limit. */
static int head_line(osp_http_h1resp_t *p, const uint8_t *b, size_t n,
                     line_t *ln, size_t *used, const char *too_large) {
    int rc = next_line(p, b, n, p->opts.max_head_bytes - p->head_bytes, ln,
                       used);
    if (rc == OSP_ELIMIT)
        return fail(p, OSP_ELIMIT, too_large);
    if (rc == 1)
        p->head_bytes += ln->total;
    return rc;
}

static int step_head(osp_http_h1resp_t *p, const uint8_t *b, size_t n,
                     size_t *used) {
    line_t ln;
    int rc = head_line(p, b, n, &ln, used, "response head too large");
    if (rc <= 0)
        return rc;
    if (!p->seen_status)
        return parse_status(p, ln.s, ln.n);
    if (ln.n == 0)
        return end_head(p);
    return parse_header(p, ln.s, ln.n);
}

/* Body bytes: kept under the limit, or counted. */
static int body_add(osp_http_h1resp_t *p, const uint8_t *b, size_t n) {
    if (!p->opts.keep_body) {
        p->body_bytes += n;
        return 0;
    }
    if (n > body_limit(p) - p->body_bytes)
        return too_big(p);
    size_t len = (size_t)p->body_bytes;
    void *body = p->body;
    int rc = reserve(p, &body, &p->body_cap, len + n + 1, 1024);
    p->body = body;
    if (rc < 0)
        return rc;
    memcpy(p->body + len, b, n);
    p->body_bytes += n;
    p->body[len + n] = 0;
    return 0;
}

/* H1_BODY_LEN and H1_CHUNK_DATA: up to `remaining` bytes. */
static int step_data(osp_http_h1resp_t *p, const uint8_t *b, size_t n,
                     size_t *used) {
    size_t k = (size_t)OSP_MIN((uint64_t)n, p->remaining);
    int rc = body_add(p, b, k);
    if (rc < 0)
        return rc;
    *used = k;
    p->remaining -= k;
    if (!p->remaining)
        p->state = p->state == H1_BODY_LEN ? H1_DONE : H1_CHUNK_CRLF;
    return 0;
}

static int step_body_eof(osp_http_h1resp_t *p, const uint8_t *b, size_t n,
                         size_t *used) {
    *used = n;
    return body_add(p, b, n);
}

static int hex_digit(int c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int step_chunk_size(osp_http_h1resp_t *p, const uint8_t *b, size_t n,
                           size_t *used) {
    line_t ln;
    int rc = next_line(p, b, n, OSP_HTTP_H1RESP_MAX_LINE, &ln, used);
    if (rc == OSP_ELIMIT)
        return fail(p, OSP_EFORMAT, "chunk-size line too long");
    if (rc <= 0)
        return rc;
    uint64_t x = 0;
    size_t i = 0;
    for (; i < ln.n && hex_digit((unsigned char)ln.s[i]) >= 0; i++) {
        if (x >> 60)
            return fail(p, OSP_EFORMAT, "chunk size overflows");
        x = x * 16 + (uint64_t)hex_digit((unsigned char)ln.s[i]);
    }
    /* Digits, optional whitespace, then nothing or an extension (";..."). */
    size_t j = i;
    while (j < ln.n && (ln.s[j] == ' ' || ln.s[j] == '\t'))
        j++;
    if (i == 0 || (j < ln.n && ln.s[j] != ';'))
        return fail(p, OSP_EFORMAT, "bad chunk size");
    if (x > body_limit(p) - p->body_bytes)
        return too_big(p);
    p->remaining = x;
    p->state = x ? H1_CHUNK_DATA : H1_TRAILERS;
    return 0;
}

static int step_chunk_crlf(osp_http_h1resp_t *p, const uint8_t *b, size_t n,
                           size_t *used) {
    line_t ln;
    int rc = next_line(p, b, n, 2, &ln, used);
    if (rc == OSP_ELIMIT || (rc == 1 && ln.n != 0))
        return fail(p, OSP_EFORMAT, "no CRLF after chunk data");
    if (rc == 1)
        p->state = H1_CHUNK_SIZE;
    return rc < 0 ? rc : 0;
}

static int step_trailer(osp_http_h1resp_t *p, const uint8_t *b, size_t n,
                        size_t *used) {
    line_t ln;
    int rc = head_line(p, b, n, &ln, used, "trailers too large");
    if (rc == 1 && ln.n == 0) /* trailers are read and dropped */
        p->state = H1_DONE;
    return rc < 0 ? rc : 0;
}

static const step_fn STEPS[] = {
    [H1_HEAD] = step_head,
    [H1_BODY_LEN] = step_data,
    [H1_CHUNK_SIZE] = step_chunk_size,
    [H1_CHUNK_DATA] = step_data,
    [H1_CHUNK_CRLF] = step_chunk_crlf,
    [H1_TRAILERS] = step_trailer,
    [H1_BODY_EOF] = step_body_eof,
};

int osp_http_h1resp_feed(osp_http_h1resp_t *p, const uint8_t *buf, size_t n,
                         size_t *used) {
    size_t off = 0;
    *used = 0;
    if (p->state == H1_ERROR)
        return OSP_EFORMAT;
    /* Bytes after the answer (H1_DONE) are not ours. */
    while (off < n && p->state != H1_DONE) {
        size_t k = 0;
        int rc = STEPS[p->state](p, buf + off, n - off, &k);
        if (rc < 0)
            return rc;
        /* Every step consumes a byte or more of a non-empty input. */
        OSP_ASSERT(k > 0 && k <= n - off);
        off += k;
    }
    *used = off;
    return p->state == H1_DONE;
}

int osp_http_h1resp_eof(osp_http_h1resp_t *p) {
    if (p->state == H1_BODY_EOF)
        p->state = H1_DONE;
    if (p->state == H1_DONE)
        return 1;
    if (p->state != H1_ERROR)
        fail(p, OSP_EFORMAT, osp_http_h1resp_started(p)
                                 ? "connection closed mid-response"
                                 : "connection closed before a response");
    return 0;
}
