/* h1.c — the event path's HTTP/1.1 response parser: an incremental,
 * bounded reader of one worker answer (status line, the headers the proxy
 * forwards, a body delimited by Content-Length, chunked encoding or the
 * connection's close), collecting the body into one malloc'd buffer that
 * becomes the client's answer without another copy.
 *
 * Why our own and not libcurl's: the event loop (loop.c) owns the sockets;
 * parsing is the only part of an HTTP client it needs, and it must reject
 * anything malformed, oversized or truncated with an error rather than
 * guess, since the bytes come from the network. The caller keeps unconsumed
 * bytes and passes them again with more appended (a line is consumed only
 * once it is complete), so the parser holds no copy of partial lines. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dispatch/dispatch_int.h"

enum {
    H1_HEAD = 0,     /* status line and headers */
    H1_BODY_LEN,     /* remaining = body bytes still to come */
    H1_CHUNK_SIZE,   /* a chunk-size line */
    H1_CHUNK_DATA,   /* remaining = chunk bytes still to come */
    H1_CHUNK_CRLF,   /* the CRLF after a chunk's data */
    H1_TRAILERS,     /* trailer lines up to the empty one */
    H1_BODY_EOF,     /* body until the connection closes */
    H1_DONE,
    H1_ERROR,
};

void osp__dsp_h1_init(dsp_h1_t *p, size_t max_body) {
    uint8_t *body = p->body;
    size_t cap = p->cap;
    memset(p, 0, sizeof *p);
    /* The buffer of a previous answer is kept for reuse (a new connection
     * user takes it with _take_body). */
    p->body = body;
    p->cap = cap;
    p->max_body = max_body ? max_body : DSP_MAX_RESPONSE_BYTES;
}

void osp__dsp_h1_fini(dsp_h1_t *p) {
    free(p->body);
    p->body = NULL;
    p->cap = p->len = 0;
}

uint8_t *osp__dsp_h1_take_body(dsp_h1_t *p, size_t *len) {
    uint8_t *b = p->body;
    *len = p->len;
    if (!b)
        b = malloc(1);
    p->body = NULL;
    p->cap = p->len = 0;
    return b;
}

static int fail(dsp_h1_t *p, int code, const char *why) {
    p->state = H1_ERROR;
    p->err = why;
    return code;
}

/* The body would pass max_body: the same answer from any backend. */
static int too_big(dsp_h1_t *p) {
    p->too_big = true;
    return fail(p, OSP_ELIMIT, "response body over the limit");
}

/* The next line of buf[0..n): its length without the line ending in *ll,
 * the bytes it spans including the ending returned; 0 when incomplete. */
static size_t next_line(const uint8_t *buf, size_t n, size_t *ll) {
    const uint8_t *nl = memchr(buf, '\n', n);
    if (!nl)
        return 0;
    size_t l = (size_t)(nl - buf);
    *ll = l > 0 && buf[l - 1] == '\r' ? l - 1 : l;
    return l + 1;
}

static bool token_eq(const char *a, size_t n, const char *lit) {
    return strlen(lit) == n && !strncasecmp(a, lit, n);
}

/* Copies the value (already trimmed) into dst, truncated to cap - 1. */
static void copy_val(char *dst, size_t cap, const char *v, size_t n) {
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static int parse_status(dsp_h1_t *p, const char *l, size_t n) {
    /* "HTTP/1.x SSS[ reason]" */
    if (n < 12 || memcmp(l, "HTTP/1.", 7) || (l[7] != '0' && l[7] != '1') ||
        l[8] != ' ')
        return fail(p, OSP_EFORMAT, "bad status line");
    for (int i = 9; i < 12; i++)
        if (l[i] < '0' || l[i] > '9')
            return fail(p, OSP_EFORMAT, "bad status code");
    if (n > 12 && l[12] != ' ')
        return fail(p, OSP_EFORMAT, "bad status line");
    p->minor = l[7] - '0';
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (p->status < 100)
        return fail(p, OSP_EFORMAT, "bad status code");
    return 0;
}

static int parse_header(dsp_h1_t *p, const char *l, size_t n) {
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
    size_t vl = (size_t)(e - v);
    if (token_eq(l, nl, "Content-Length")) {
        if (vl == 0 || vl > 19)
            return fail(p, OSP_EFORMAT, "bad Content-Length");
        uint64_t x = 0;
        for (size_t i = 0; i < vl; i++) {
            if (v[i] < '0' || v[i] > '9')
                return fail(p, OSP_EFORMAT, "bad Content-Length");
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        if (p->have_len && x != p->content_length)
            return fail(p, OSP_EFORMAT, "conflicting Content-Length");
        p->have_len = true;
        p->content_length = x;
    } else if (token_eq(l, nl, "Transfer-Encoding")) {
        /* We send no TE header, so the only coding a server may use is
         * chunked (RFC 9112 §6.1); anything else we cannot frame. */
        if (!token_eq(v, vl, "chunked"))
            return fail(p, OSP_EUNSUPPORTED, "unsupported Transfer-Encoding");
        p->chunked = true;
    } else if (token_eq(l, nl, "Connection")) {
        if (osp_http_list_has(v, vl, "close"))
            p->conn_close = true;
        if (osp_http_list_has(v, vl, "keep-alive"))
            p->conn_keep_alive = true;
    } else if (token_eq(l, nl, "Content-Type")) {
        copy_val(p->content_type, sizeof p->content_type, v, vl);
    } else if (token_eq(l, nl, "Inference-Header-Content-Length")) {
        copy_val(p->ihcl, sizeof p->ihcl, v, vl);
    } else if (token_eq(l, nl, "Retry-After")) {
        copy_val(p->retry_after, sizeof p->retry_after, v, vl);
    }
    return 0;
}

/* After the empty line ending the head: how the body is delimited. */
static int end_head(dsp_h1_t *p) {
    if (p->status < 200) {
        /* An interim answer (100 Continue, 103 Early Hints): the real one
         * follows on the same connection. 101 would switch protocols,
         * which we never ask for. */
        if (p->status == 101)
            return fail(p, OSP_EFORMAT, "unexpected 101 Switching Protocols");
        int minor = p->minor;
        size_t max = p->max_body;
        uint8_t *body = p->body;
        size_t cap = p->cap, head = p->head_bytes;
        memset(p, 0, sizeof *p);
        p->body = body;
        p->cap = cap;
        p->max_body = max;
        p->minor = minor;
        p->head_bytes = head; /* interim heads count against the limit */
        return 0;
    }
    p->keep_alive = p->minor >= 1 ? !p->conn_close
                                  : p->conn_keep_alive && !p->conn_close;
    if (p->status == 204 || p->status == 304) {
        p->state = H1_DONE;
        return 1;
    }
    if (p->chunked) {
        p->state = H1_CHUNK_SIZE;
        /* Content-Length alongside chunked is ignored (RFC 9112 §6.3),
         * but such a server is not trusted with another request. */
        if (p->have_len)
            p->keep_alive = false;
        return 0;
    }
    if (p->have_len) {
        if (p->content_length > p->max_body)
            return too_big(p);
        p->remaining = p->content_length;
        p->state = H1_BODY_LEN;
        if (!p->remaining) {
            p->state = H1_DONE;
            return 1;
        }
        return 0;
    }
    p->keep_alive = false;
    p->state = H1_BODY_EOF;
    return 0;
}

/* Appends body bytes under the limit. */
static int body_add(dsp_h1_t *p, const uint8_t *b, size_t n) {
    if (n > p->max_body - p->len)
        return too_big(p);
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 1024;
        while (cap < p->len + n + 1)
            cap *= 2;
        uint8_t *nb = realloc(p->body, cap);
        if (!nb)
            return fail(p, OSP_ENOMEM, "out of memory");
        p->body = nb;
        p->cap = cap;
    }
    memcpy(p->body + p->len, b, n);
    p->len += n;
    p->body[p->len] = 0;
    return 0;
}

int osp__dsp_h1_feed(dsp_h1_t *p, const uint8_t *buf, size_t n, size_t *used) {
    size_t off = 0;
    int rc = 0;
    *used = 0;
    if (p->state == H1_ERROR)
        return OSP_EFORMAT;
    while (off < n && rc == 0) {
        const uint8_t *b = buf + off;
        size_t left = n - off, ll = 0, span;
        switch (p->state) {
        case H1_HEAD:
            span = next_line(b, left, &ll);
            if (!span) {
                if (p->head_bytes + left > DSP_H1_MAX_HEAD)
                    return fail(p, OSP_ELIMIT, "response head too large");
                goto need_more;
            }
            p->head_bytes += span;
            if (p->head_bytes > DSP_H1_MAX_HEAD)
                return fail(p, OSP_ELIMIT, "response head too large");
            off += span;
            if (!p->seen_status) {
                if ((rc = parse_status(p, (const char *)b, ll)) < 0)
                    return rc;
                p->seen_status = true;
            } else if (ll == 0) {
                rc = end_head(p);
            } else {
                rc = parse_header(p, (const char *)b, ll);
            }
            if (rc < 0)
                return rc;
            break;
        case H1_BODY_LEN:
        case H1_CHUNK_DATA: {
            size_t k = left < p->remaining ? left : (size_t)p->remaining;
            if ((rc = body_add(p, b, k)) < 0)
                return rc;
            off += k;
            p->remaining -= k;
            if (!p->remaining) {
                if (p->state == H1_BODY_LEN) {
                    p->state = H1_DONE;
                    rc = 1;
                } else {
                    p->state = H1_CHUNK_CRLF;
                }
            }
            break;
        }
        case H1_CHUNK_SIZE: {
            span = next_line(b, left, &ll);
            if (!span) {
                if (left > DSP_H1_MAX_LINE)
                    return fail(p, OSP_EFORMAT, "chunk-size line too long");
                goto need_more;
            }
            if (ll > DSP_H1_MAX_LINE)
                return fail(p, OSP_EFORMAT, "chunk-size line too long");
            uint64_t x = 0;
            size_t i = 0;
            for (; i < ll; i++) {
                int c = b[i], v = c >= '0' && c <= '9'   ? c - '0'
                                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                         : -1;
                if (v < 0)
                    break;
                if (x >> 60)
                    return fail(p, OSP_EFORMAT, "chunk size overflows");
                x = x * 16 + (uint64_t)v;
            }
            /* Digits, then nothing or a chunk extension (";..."). */
            if (i == 0 || (i < ll && b[i] != ';' && b[i] != ' ' &&
                           b[i] != '\t'))
                return fail(p, OSP_EFORMAT, "bad chunk size");
            if (x > p->max_body - p->len)
                return too_big(p);
            off += span;
            p->remaining = x;
            p->state = x ? H1_CHUNK_DATA : H1_TRAILERS;
            break;
        }
        case H1_CHUNK_CRLF:
            span = next_line(b, left, &ll);
            if (!span) {
                if (left >= 2)
                    return fail(p, OSP_EFORMAT, "no CRLF after chunk data");
                goto need_more;
            }
            if (ll != 0)
                return fail(p, OSP_EFORMAT, "no CRLF after chunk data");
            off += span;
            p->state = H1_CHUNK_SIZE;
            break;
        case H1_TRAILERS:
            span = next_line(b, left, &ll);
            if (!span) {
                if (p->head_bytes + left > DSP_H1_MAX_HEAD)
                    return fail(p, OSP_ELIMIT, "trailers too large");
                goto need_more;
            }
            p->head_bytes += span;
            if (p->head_bytes > DSP_H1_MAX_HEAD)
                return fail(p, OSP_ELIMIT, "trailers too large");
            off += span;
            if (ll == 0) {
                p->state = H1_DONE;
                rc = 1;
            }
            break;
        case H1_BODY_EOF:
            if ((rc = body_add(p, b, left)) < 0)
                return rc;
            off += left;
            break;
        default: /* H1_DONE: bytes after the answer are not ours */
            rc = 1;
            break;
        }
    }
    if (rc == 0 && p->state == H1_DONE)
        rc = 1;
need_more:
    *used = off;
    return rc;
}

int osp__dsp_h1_eof(dsp_h1_t *p) {
    if (p->state == H1_BODY_EOF) {
        p->state = H1_DONE;
        return 1;
    }
    if (p->state == H1_DONE)
        return 1;
    if (p->state != H1_ERROR)
        fail(p, OSP_EFORMAT, p->head_bytes || p->seen_status
                                 ? "connection closed mid-response"
                                 : "connection closed before a response");
    return 0;
}

bool osp__dsp_h1_started(const dsp_h1_t *p) {
    return p->head_bytes > 0 || p->seen_status;
}
