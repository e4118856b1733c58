/* token.c — HTTP header-value helpers: the list rule (RFC 9110 §5.6.1:
 * comma-separated, optional whitespace, empty elements allowed,
 * case-insensitive tokens), by which `Connection: keep-alive, close` and
 * `Transfer-Encoding: gzip, chunked` are read. The response parser
 * (h1resp.c) uses it; it is public so that any other reader of such
 * headers reads them the same way. */
#include <string.h>
#include <strings.h>

#include "osprey/http.h"

bool osp_http_list_has(const char *v, size_t n, const char *tok) {
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && tl > 0 && !strncasecmp(v + s, tok, tl))
            return true;
    }
    return false;
}
