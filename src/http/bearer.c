/* bearer.c — shared-secret bearer tokens (RFC 6750) for an HTTP API that
 * must not be open to whoever reaches its port: reading the token file
 * (with the checks a secret's file deserves), checking a request's
 * Authorization header in constant time, and the 401 answer. The
 * dispatcher's admin API is the user (src/dispatch/admin.c); its clients
 * send the token with osp_http_fetch_bearer (fetch.c). docs/adr/
 * 0047-admin-token.md explains the choices. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "osprey/http.h"

#define BEARER_FILE_MAX ((size_t)1 << 16) /* a token file, bytes */

int osp_http_bearer_read_file(const char *path, char *out, size_t cap,
                              osp_err_t *err) {
    if (cap <= OSP_HTTP_BEARER_MAX)
        return osp_err_set(err, OSP_EINVAL, "token buffer too small");
    struct stat st;
    if (stat(path, &st) < 0)
        return osp_err_set(err, OSP_EIO, "token file %s: %s", path,
                           strerror(errno));
    if (!S_ISREG(st.st_mode))
        return osp_err_set(err, OSP_EINVAL, "token file %s: not a regular "
                           "file", path);
    /* Others may read (or replace) it: the secret is not one. */
    if (st.st_mode & S_IRWXO)
        return osp_err_set(err, OSP_EINVAL,
                           "token file %s: mode %04o lets others access "
                           "it; chmod o-rwx (e.g. 0600)",
                           path, (unsigned)(st.st_mode & 07777));
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = osp_read_file(path, BEARER_FILE_MAX, &text, &len, err);
    if (rc < 0)
        return rc;
    size_t b = 0, e = 0;
    while (e < len && text[e] != '\n')
        e++;
    while (b < e && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r'))
        b++;
    while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t' ||
                     text[e - 1] == '\r'))
        e--;
    size_t n = e - b;
    rc = 0;
    if (n < OSP_HTTP_BEARER_MIN || n > OSP_HTTP_BEARER_MAX)
        rc = osp_err_set(err, OSP_EINVAL, "token file %s: the token (its "
                         "first line) has %zu characters; want %d..%d",
                         path, n, OSP_HTTP_BEARER_MIN, OSP_HTTP_BEARER_MAX);
    for (size_t i = b; !rc && i < e; i++)
        if (text[i] <= ' ' || text[i] > '~')
            rc = osp_err_set(err, OSP_EINVAL, "token file %s: character %zu "
                             "of the token is not visible ASCII", path,
                             i - b + 1);
    if (!rc) {
        memcpy(out, text + b, n);
        out[n] = 0;
    }
    /* The file's bytes held the secret too. */
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

const char *osp_http_auth_name(osp_http_auth_t a) {
    static const char *const names[] = {"ok", "missing", "wrong"};
    return (unsigned)a < OSP_HTTP_AUTH_COUNT ? names[a] : "unknown";
}

/* Constant time in the contents and the lengths: compare the digests. */
static bool same_secret(const char *a, size_t an, const char *b, size_t bn) {
    unsigned char da[EVP_MAX_MD_SIZE], db[EVP_MAX_MD_SIZE];
    unsigned la = 0, lb = 0;
    if (!EVP_Digest(a, an, da, &la, EVP_sha256(), NULL) ||
        !EVP_Digest(b, bn, db, &lb, EVP_sha256(), NULL) || la != lb)
        return false;
    return CRYPTO_memcmp(da, db, la) == 0;
}

osp_http_auth_t osp_http_req_bearer_check(const osp_http_req_t *r,
                                          const char *token) {
    const char *h = osp_http_req_header(r, "Authorization");
    if (!h)
        return OSP_HTTP_AUTH_MISSING;
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) || (h[6] != ' ' && h[6] != '\t'))
        return OSP_HTTP_AUTH_MISSING;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    return same_secret(h, n, token, strlen(token)) ? OSP_HTTP_AUTH_OK
                                                   : OSP_HTTP_AUTH_WRONG;
}

int osp_http_respond_unauthorized(osp_http_req_t *r, const char *realm,
                                  osp_http_auth_t why) {
    char v[160];
    snprintf(v, sizeof v, "Bearer realm=\"%s\"%s", realm,
             why == OSP_HTTP_AUTH_WRONG ? ", error=\"invalid_token\"" : "");
    osp_http_add_header(r, "WWW-Authenticate", v);
    return osp_http_respond_error(
        r, 401, "%s", why == OSP_HTTP_AUTH_WRONG
                          ? "invalid bearer token"
                          : "this API needs Authorization: Bearer <token>");
}
