/* multipart.c — a bounded multipart/form-data parser (RFC 7578 / RFC 2046)
 * for the classify endpoint's `file` parts.
 *
 * Why our own: libmicrohttpd's post processor streams parts through callbacks
 * and copies data; we already hold the whole (size-limited) body, so parts are
 * just slices of it. Every scan is bounded by the body length and every
 * header field by a fixed buffer, so hostile input can produce an error but
 * never an out-of-bounds read. */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "osprey/http.h"

/* Finds needle in [hay, hay + n); NULL when absent. */
static const uint8_t *find(const uint8_t *hay, size_t n, const void *needle,
                           size_t nl) {
    if (nl == 0 || n < nl)
        return NULL;
    return memmem(hay, n, needle, nl);
}

int osp_multipart_boundary(const char *ct, char *buf, size_t cap) {
    static const char type[] = "multipart/form-data";
    if (!ct || !buf || cap == 0)
        return OSP_EFORMAT;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, type, sizeof type - 1) != 0)
        return OSP_EFORMAT;
    const char *p = ct + sizeof type - 1;
    while (*p) {
        /* next parameter */
        const char *semi = strchr(p, ';');
        if (!semi)
            break;
        p = semi + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9) != 0)
            continue;
        p += 9;
        size_t n = 0;
        if (*p == '"') {
            p++;
            while (p[n] && p[n] != '"')
                n++;
            if (p[n] != '"')
                return OSP_EFORMAT;
        } else {
            while (p[n] && p[n] != ';' && p[n] != ' ' && p[n] != '\t')
                n++;
        }
        if (n == 0 || n > OSP_MULTIPART_MAX_BOUNDARY || n + 1 > cap)
            return OSP_EFORMAT;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
                return OSP_EFORMAT;
        memcpy(buf, p, n);
        buf[n] = 0;
        return 0;
    }
    return OSP_EFORMAT;
}

/* Copies [s, s+n) trimmed into dst (cap bytes); false when it does not fit. */
static bool copy_trim(char *dst, size_t cap, const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n + 1 > cap)
        return false;
    memcpy(dst, s, n);
    dst[n] = 0;
    return true;
}

/* Parses `form-data; name="x"; filename="y"` (value in [v, v + n)). */
static int parse_disposition(const char *v, size_t n, osp_multipart_part_t *pt,
                             osp_err_t *err, size_t off) {
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (n - i < 9 || strncasecmp(v + i, "form-data", 9) != 0)
        return osp_err_set(err, OSP_EFORMAT,
                           "multipart: Content-Disposition is not form-data "
                           "(offset %zu)", off);
    i += 9;
    while (i < n) {
        while (i < n && (v[i] == ';' || v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t ks = i;
        while (i < n && v[i] != '=' && v[i] != ';')
            i++;
        size_t kl = i - ks;
        while (kl && (v[ks + kl - 1] == ' ' || v[ks + kl - 1] == '\t'))
            kl--;
        if (i >= n || v[i] != '=')
            continue; /* a bare token: ignore */
        i++;
        char val[256];
        size_t vl = 0;
        bool too_long = false;
        if (i < n && v[i] == '"') {
            i++;
            bool closed = false;
            while (i < n) {
                char c = v[i++];
                if (c == '\\' && i < n)
                    c = v[i++];
                else if (c == '"') {
                    closed = true;
                    break;
                }
                if (vl + 1 < sizeof val)
                    val[vl++] = c;
                else
                    too_long = true;
            }
            if (!closed)
                return osp_err_set(err, OSP_EFORMAT,
                                   "multipart: unterminated quoted parameter "
                                   "in Content-Disposition (offset %zu)", off);
        } else {
            while (i < n && v[i] != ';') {
                if (vl + 1 < sizeof val)
                    val[vl++] = v[i];
                else
                    too_long = true;
                i++;
            }
            while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
                vl--;
        }
        val[vl] = 0;
        if (kl == 4 && !strncasecmp(v + ks, "name", 4)) {
            if (too_long || vl + 1 > sizeof pt->name)
                return osp_err_set(err, OSP_ELIMIT,
                                   "multipart: field name longer than %zu "
                                   "bytes (offset %zu)", sizeof pt->name - 1,
                                   off);
            memcpy(pt->name, val, vl + 1);
        } else if (kl == 8 && !strncasecmp(v + ks, "filename", 8)) {
            /* A long filename is informational only: keep its start. */
            size_t c = OSP_MIN(vl, sizeof pt->filename - 1);
            memcpy(pt->filename, val, c);
            pt->filename[c] = 0;
        }
    }
    return 0;
}

/* Parses the header block [h, h + n) (lines separated by CRLF). */
static int parse_headers(const char *h, size_t n, osp_multipart_part_t *pt,
                         size_t off, osp_err_t *err) {
    size_t i = 0;
    while (i < n) {
        const char *eol = memmem(h + i, n - i, "\r\n", 2);
        size_t ll = eol ? (size_t)(eol - (h + i)) : n - i;
        const char *line = h + i;
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line)
            return osp_err_set(err, OSP_EFORMAT,
                               "multipart: malformed part header at offset %zu",
                               off + i);
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 1;
        size_t vl = ll - nl - 1;
        if (nl == 19 && !strncasecmp(line, "Content-Disposition", 19)) {
            int rc = parse_disposition(v, vl, pt, err, off + i);
            if (rc < 0)
                return rc;
        } else if (nl == 12 && !strncasecmp(line, "Content-Type", 12)) {
            if (!copy_trim(pt->content_type, sizeof pt->content_type, v, vl))
                pt->content_type[0] = 0; /* absurdly long: treat as absent */
        }
        i += ll + 2;
    }
    return 0;
}

int osp_multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                        osp_multipart_part_t *parts, int max_parts,
                        int *n_parts, osp_err_t *err) {
    *n_parts = 0;
    size_t bl = boundary ? strlen(boundary) : 0;
    if (bl == 0 || bl > OSP_MULTIPART_MAX_BOUNDARY)
        return osp_err_set(err, OSP_EFORMAT, "multipart: bad boundary");
    if (!body)
        len = 0;
    /* needle = CRLF "--" boundary; the delimiter proper is needle + 2. */
    char needle[OSP_MULTIPART_MAX_BOUNDARY + 4];
    memcpy(needle, "\r\n--", 4);
    memcpy(needle + 4, boundary, bl);
    const size_t nl = bl + 4, dl = bl + 2;
    size_t pos;
    if (len >= dl && !memcmp(body, needle + 2, dl)) {
        pos = dl;
    } else {
        const uint8_t *p = find(body, len, needle, nl);
        if (!p)
            return osp_err_set(err, OSP_EFORMAT,
                               "multipart: boundary not found in body");
        pos = (size_t)(p - body) + nl; /* skip the preamble */
    }
    for (;;) {
        if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-')
            return 0; /* close delimiter; the epilogue is ignored */
        while (pos < len && (body[pos] == ' ' || body[pos] == '\t'))
            pos++;
        if (len - pos < 2 || body[pos] != '\r' || body[pos + 1] != '\n')
            return osp_err_set(err, OSP_EFORMAT,
                               "multipart: expected CRLF after boundary at "
                               "offset %zu", pos);
        pos += 2;
        if (*n_parts >= max_parts)
            return osp_err_set(err, OSP_ELIMIT,
                               "multipart: more than %d parts", max_parts);
        osp_multipart_part_t *pt = &parts[*n_parts];
        memset(pt, 0, sizeof *pt);
        size_t hstart = pos;
        if (len - pos >= 2 && body[pos] == '\r' && body[pos + 1] == '\n') {
            pos += 2; /* no headers */
        } else {
            size_t window = OSP_MIN(len - pos, (size_t)OSP_MULTIPART_MAX_HEADER_BYTES + 4);
            const uint8_t *e = find(body + pos, window, "\r\n\r\n", 4);
            if (!e) {
                if (len - pos > OSP_MULTIPART_MAX_HEADER_BYTES)
                    return osp_err_set(err, OSP_ELIMIT,
                                       "multipart: part header block at offset "
                                       "%zu longer than %d bytes", hstart,
                                       OSP_MULTIPART_MAX_HEADER_BYTES);
                return osp_err_set(err, OSP_EFORMAT,
                                   "multipart: unterminated part headers at "
                                   "offset %zu", hstart);
            }
            int rc = parse_headers((const char *)body + pos,
                                   (size_t)(e - (body + pos)), pt, pos, err);
            if (rc < 0)
                return rc;
            pos = (size_t)(e - body) + 4;
        }
        const uint8_t *end = find(body + pos, len - pos, needle, nl);
        if (!end)
            return osp_err_set(err, OSP_EFORMAT,
                               "multipart: part %d at offset %zu has no "
                               "closing boundary", *n_parts, hstart);
        pt->data = body + pos;
        pt->len = (size_t)(end - (body + pos));
        (*n_parts)++;
        pos = (size_t)(end - body) + nl;
    }
}
