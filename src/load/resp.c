/* resp.c — an incremental HTTP/1.1 response parser for the load generator:
 * status line and headers (copied into a bounded buffer until the blank
 * line), then the body, which is counted and discarded: Content-Length,
 * chunked (with extensions and trailers), or delimited by the connection's
 * close. 1xx interim responses are skipped; 204/304 have no body.
 *
 * Why our own: the client reads responses from many connections in one
 * thread at thousands per second; the parser must work on whatever bytes a
 * read() returned, never copy the body, and treat the server's bytes as
 * untrusted (bounded header size, strict numbers, no overflow). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "load/load_int.h"
#include "osprey/http.h"

enum {
    ST_HEADER = 0,  /* accumulating the header block */
    ST_BODY_LEN,    /* Content-Length bytes remaining */
    ST_BODY_EOF,    /* until the connection closes */
    ST_CHUNK_SIZE,  /* reading a chunk-size line */
    ST_CHUNK_DATA,  /* chunk bytes remaining */
    ST_CHUNK_CRLF,  /* the CRLF after chunk data */
    ST_TRAILER,     /* trailer lines until an empty one */
    ST_DONE,
};

void osp__resp_init(osp__resp_t *r) {
    r->state = ST_HEADER;
    r->status = 0;
    r->keep_alive = 0;
    r->remaining = 0;
    r->body_bytes = 0;
    r->hdr_len = 0;
    r->line_len = 0;
}

int osp__resp_started(const osp__resp_t *r) {
    return r->state != ST_HEADER || r->hdr_len > 0;
}

int osp__resp_eof(const osp__resp_t *r) {
    return r->state == ST_BODY_EOF || r->state == ST_DONE;
}

/* Strict unsigned decimal (Content-Length): digits only, no overflow. */
static int parse_u64(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;
    if (!n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]) || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Parses the complete header block hdr[0..len) (ending in CRLF CRLF) and
 * sets the body state. Returns 1 when the response is final, 0 for a 1xx,
 * or OSP_EFORMAT. */
static int parse_header(osp__resp_t *r, size_t len, osp_err_t *err) {
    const char *h = r->hdr;
    const char *end = h + len;
    const char *eol = memchr(h, '\n', len);
    size_t sl = (size_t)(eol - h);
    if (sl && h[sl - 1] == '\r')
        sl--;
    /* "HTTP/1.x SSS[ reason]" */
    if (sl < 12 || memcmp(h, "HTTP/1.", 7) || (h[7] != '0' && h[7] != '1') ||
        h[8] != ' ' || !isdigit((unsigned char)h[9]) ||
        !isdigit((unsigned char)h[10]) || !isdigit((unsigned char)h[11]) ||
        (sl > 12 && h[12] != ' '))
        return osp_err_set(err, OSP_EFORMAT, "bad status line '%.*s'",
                           (int)OSP_MIN(sl, (size_t)60), h);
    int http11 = h[7] == '1';
    int status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    if (status < 100 || status > 599)
        return osp_err_set(err, OSP_EFORMAT, "bad status %d", status);
    int has_len = 0, chunked = 0, te = 0, conn_close = 0, conn_keep = 0;
    uint64_t clen = 0;
    for (const char *p = eol + 1; p < end;) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        size_t ll = (size_t)(le - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        if (!ll)
            break; /* the blank line */
        const char *colon = memchr(p, ':', ll);
        if (!colon || colon == p || p[0] == ' ' || p[0] == '\t')
            return osp_err_set(err, OSP_EFORMAT, "bad header line '%.*s'",
                               (int)OSP_MIN(ll, (size_t)60), p);
        size_t nl = (size_t)(colon - p);
        const char *v = colon + 1;
        const char *ve = p + ll;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vl = (size_t)(ve - v);
        if (nl == 14 && !strncasecmp(p, "Content-Length", 14)) {
            uint64_t x;
            if (parse_u64(v, vl, &x) < 0 || (has_len && x != clen))
                return osp_err_set(err, OSP_EFORMAT, "bad Content-Length "
                                   "'%.*s'", (int)OSP_MIN(vl, (size_t)40), v);
            has_len = 1;
            clen = x;
        } else if (nl == 17 && !strncasecmp(p, "Transfer-Encoding", 17)) {
            te = 1;
            /* chunked must be the last coding to frame the body. */
            size_t s = vl;
            while (s && v[s - 1] != ',')
                s--;
            chunked = osp_http_list_has(v + s, vl - s, "chunked");
        } else if (nl == 10 && !strncasecmp(p, "Connection", 10)) {
            conn_close |= osp_http_list_has(v, vl, "close");
            conn_keep |= osp_http_list_has(v, vl, "keep-alive");
        }
        p = le + 1;
    }
    if (status < 200)
        return 0; /* interim: the final response follows */
    r->status = status;
    r->keep_alive = http11 ? !conn_close : conn_keep && !conn_close;
    if (status == 204 || status == 304) {
        r->state = ST_DONE;
    } else if (te) {
        /* Transfer-Encoding wins over Content-Length (RFC 9112 6.3). */
        if (chunked) {
            r->state = ST_CHUNK_SIZE;
        } else {
            r->state = ST_BODY_EOF;
            r->keep_alive = 0;
        }
    } else if (has_len) {
        r->remaining = clen;
        r->state = clen ? ST_BODY_LEN : ST_DONE;
    } else {
        r->state = ST_BODY_EOF;
        r->keep_alive = 0;
    }
    return 1;
}

/* Accumulates a line into r->line; returns 1 when complete (without the
 * line break), 0 when more is needed, <0 when too long. */
static int take_line(osp__resp_t *r, const uint8_t *p, size_t n, size_t *i) {
    while (*i < n) {
        uint8_t c = p[(*i)++];
        if (c == '\n') {
            if (r->line_len && r->line[r->line_len - 1] == '\r')
                r->line_len--;
            return 1;
        }
        if (r->line_len >= OSP__RESP_MAX_LINE - 1)
            return -1;
        r->line[r->line_len++] = (char)c;
    }
    return 0;
}

int osp__resp_feed(osp__resp_t *r, const uint8_t *p, size_t n, size_t *used,
                   osp_err_t *err) {
    size_t i = 0;
    int rc = 0;
    while (i < n && r->state != ST_DONE) {
        switch (r->state) {
        case ST_HEADER: {
            /* Copy up to the end of the header block; look for CRLFCRLF (or
             * bare LFLF) only in the new bytes plus 3 bytes of overlap. */
            size_t start = r->hdr_len > 3 ? r->hdr_len - 3 : 0;
            size_t take = OSP_MIN(n - i, sizeof r->hdr - r->hdr_len);
            memcpy(r->hdr + r->hdr_len, p + i, take);
            size_t total = r->hdr_len + take;
            size_t endpos = 0;
            for (size_t k = start; k < total; k++) {
                if (r->hdr[k] != '\n')
                    continue;
                if ((k >= 1 && r->hdr[k - 1] == '\n') ||
                    (k >= 2 && r->hdr[k - 1] == '\r' && r->hdr[k - 2] == '\n')) {
                    endpos = k + 1;
                    break;
                }
            }
            if (!endpos) {
                if (total >= sizeof r->hdr) {
                    rc = osp_err_set(err, OSP_EFORMAT, "response header "
                                     "larger than %d bytes",
                                     OSP__RESP_MAX_HEADER);
                    goto out;
                }
                r->hdr_len = total;
                i += take;
                break;
            }
            i += endpos - r->hdr_len;
            int fin = parse_header(r, endpos, err);
            if (fin < 0) {
                rc = fin;
                goto out;
            }
            if (!fin) /* 1xx: start over with the next response */
                osp__resp_init(r);
            else
                r->hdr_len = endpos;
            break;
        }
        case ST_BODY_LEN:
        case ST_CHUNK_DATA: {
            size_t take = (size_t)OSP_MIN((uint64_t)(n - i), r->remaining);
            i += take;
            r->remaining -= take;
            r->body_bytes += take;
            if (!r->remaining)
                r->state = r->state == ST_BODY_LEN ? ST_DONE : ST_CHUNK_CRLF;
            break;
        }
        case ST_BODY_EOF:
            r->body_bytes += n - i;
            i = n;
            break;
        case ST_CHUNK_CRLF:
        case ST_CHUNK_SIZE:
        case ST_TRAILER: {
            int got = take_line(r, p, n, &i);
            if (got < 0) {
                rc = osp_err_set(err, OSP_EFORMAT, "chunk line longer than "
                                 "%d bytes", OSP__RESP_MAX_LINE);
                goto out;
            }
            if (!got)
                break;
            size_t ll = r->line_len;
            r->line_len = 0;
            if (r->state == ST_CHUNK_CRLF) {
                if (ll) {
                    rc = osp_err_set(err, OSP_EFORMAT, "chunk data not "
                                     "followed by CRLF");
                    goto out;
                }
                r->state = ST_CHUNK_SIZE;
            } else if (r->state == ST_TRAILER) {
                if (!ll)
                    r->state = ST_DONE;
            } else {
                /* hex size, optional ";extensions" */
                uint64_t v = 0;
                size_t k = 0;
                for (; k < ll && isxdigit((unsigned char)r->line[k]); k++) {
                    if (v >> 60) {
                        rc = osp_err_set(err, OSP_EFORMAT, "chunk size "
                                         "overflows");
                        goto out;
                    }
                    char c = r->line[k];
                    v = v * 16 + (uint64_t)(isdigit((unsigned char)c)
                                                ? c - '0'
                                                : (tolower(c) - 'a' + 10));
                }
                size_t k2 = k;
                while (k2 < ll && (r->line[k2] == ' ' || r->line[k2] == '\t'))
                    k2++;
                if (!k || (k2 < ll && r->line[k2] != ';')) {
                    rc = osp_err_set(err, OSP_EFORMAT, "bad chunk size "
                                     "line '%.*s'", (int)OSP_MIN(ll, (size_t)40),
                                     r->line);
                    goto out;
                }
                if (v) {
                    r->remaining = v;
                    r->state = ST_CHUNK_DATA;
                } else {
                    r->state = ST_TRAILER;
                }
            }
            break;
        }
        default:
            OSP_ASSERT(0);
        }
    }
    rc = r->state == ST_DONE ? 1 : 0;
out:
    *used = i;
    return rc;
}
