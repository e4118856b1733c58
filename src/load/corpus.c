/* corpus.c — the load generator's image corpus: reads every image of a
 * directory (or one file) once and builds, per image, the complete HTTP/1.1
 * request for the chosen target — request line, headers, body — so that the
 * hot loop only writes prebuilt bytes (no formatting, base64 or multipart
 * encoding per request: the client must never be the bottleneck).
 *
 * Wire formats are those `osprey serve` accepts (docs/serve.md):
 *   multipart  POST /classify | /v1/models/{m}/classify, one "file" part
 *   raw        same paths, the image bytes with their image media type
 *   v2-json    POST /v2/models/{m}/infer, one BYTES input, base64 data
 *   v2-binary  same, binary tensor extension (Inference-Header-Content-
 *              Length; the element as 4-byte little-endian length + bytes)
 *              and the output asked for as binary, too
 *   get        GET of the URL's path, for trivial endpoints */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "osprey/load.h"

typedef struct item_s {
    char *name;
    uint8_t *req;
    size_t len;
} item_t;

struct osp_load_corpus_s {
    item_t *items;
    int n;
    int skipped;   /* non-image files of the directory */
};

static const char *const target_names[OSP_LOAD_TARGET_COUNT] = {
    "multipart", "raw", "v2-json", "v2-binary", "get"};

const char *osp_load_target_name(osp_load_target_t t) {
    return (unsigned)t < OSP_LOAD_TARGET_COUNT ? target_names[t] : "?";
}

int osp_load_target_parse(const char *s, osp_load_target_t *out) {
    for (int i = 0; s && i < OSP_LOAD_TARGET_COUNT; i++)
        if (!strcmp(s, target_names[i])) {
            *out = (osp_load_target_t)i;
            return 0;
        }
    return OSP_EINVAL;
}

int osp_load_corpus_count(const osp_load_corpus_t *c) { return c->n; }
int osp_load_corpus_skipped(const osp_load_corpus_t *c) { return c->skipped; }

const uint8_t *osp_load_corpus_request(const osp_load_corpus_t *c, int i, size_t *len) {
    *len = c->items[i].len;
    return c->items[i].req;
}

const char *osp_load_corpus_name(const osp_load_corpus_t *c, int i) {
    return c->items[i].name;
}

void osp_load_corpus_destroy(osp_load_corpus_t *c) {
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        free(c->items[i].name);
        free(c->items[i].req);
    }
    free(c->items);
    free(c);
}

/* The image's media type from its first bytes (the server sniffs too, but
 * a truthful Content-Type is what real clients send). */
static const char *media_type(const uint8_t *b, size_t n) {
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return "image/jpeg";
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        return "image/png";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
        return "image/webp";
    if (n >= 2 && b[0] == 'B' && b[1] == 'M')
        return "image/bmp";
    return "application/octet-stream";
}

static size_t b64_encode(const uint8_t *in, size_t n, char *out) {
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

/* A growable byte buffer for building one request. */
typedef struct buf_s {
    uint8_t *p;
    size_t len, cap;
    int oom;
} buf_t;

static void buf_put(buf_t *b, const void *d, size_t n) {
    if (b->oom || !n)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void buf_str(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3)))
static void buf_fmt(buf_t *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1; /* only ever formats short header lines */
        return;
    }
    buf_put(b, tmp, (size_t)n);
}

#define BOUNDARY "osprey-load-7d1f2c9a4b"

/* Builds item's request from the image bytes. */
static int build(item_t *it, const osp_load_corpus_opts_t *o, const char *path,
                 const uint8_t *img, size_t n, osp_err_t *err) {
    buf_t body = {0}, req = {0};
    char extra[96] = "";
    const char *ctype = NULL;
    const char *base = o->base_path && strcmp(o->base_path, "/")
                           ? o->base_path : "";
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    char url[1024];
    int un;
    switch (o->target) {
    case OSP_LOAD_TARGET_MULTIPART:
    case OSP_LOAD_TARGET_RAW:
        if (o->model)
            un = snprintf(url, sizeof url, "%.*s/v1/models/%s/classify",
                          (int)bl, base, o->model);
        else
            un = snprintf(url, sizeof url, "%.*s/classify", (int)bl, base);
        break;
    case OSP_LOAD_TARGET_V2_JSON:
    case OSP_LOAD_TARGET_V2_BINARY:
        un = snprintf(url, sizeof url, "%.*s/v2/models/%s/infer", (int)bl,
                      base, o->model);
        break;
    default:
        un = snprintf(url, sizeof url, "%s", *base ? o->base_path : "/");
        break;
    }
    if (un < 0 || (size_t)un >= sizeof url)
        return osp_err_set(err, OSP_ELIMIT, "request path too long");

    switch (o->target) {
    case OSP_LOAD_TARGET_MULTIPART: {
        if (memmem(img, n, BOUNDARY, strlen(BOUNDARY)))
            return osp_err_set(err, OSP_EINVAL, "%s contains the multipart "
                               "boundary string", path);
        /* File name without the directory, quotes and line breaks. */
        const char *slash = strrchr(path, '/');
        char fname[256];
        snprintf(fname, sizeof fname, "%s", slash ? slash + 1 : path);
        for (char *q = fname; *q; q++)
            if (*q == '"' || *q == '\r' || *q == '\n' || *q == '\\')
                *q = '_';
        buf_fmt(&body, "--" BOUNDARY "\r\nContent-Disposition: form-data; "
                       "name=\"file\"; filename=\"%s\"\r\nContent-Type: %s"
                       "\r\n\r\n", fname, media_type(img, n));
        buf_put(&body, img, n);
        buf_str(&body, "\r\n--" BOUNDARY "--\r\n");
        ctype = "multipart/form-data; boundary=" BOUNDARY;
        break;
    }
    case OSP_LOAD_TARGET_RAW:
        buf_put(&body, img, n);
        ctype = media_type(img, n);
        break;
    case OSP_LOAD_TARGET_V2_JSON: {
        buf_str(&body, "{\"inputs\":[{\"name\":\"image\",\"shape\":[1],"
                       "\"datatype\":\"BYTES\",\"data\":[\"");
        char *b64 = malloc((n + 2) / 3 * 4 + 1);
        if (!b64) {
            body.oom = 1;
            break;
        }
        buf_put(&body, b64, b64_encode(img, n, b64));
        free(b64);
        buf_str(&body, "\"]}]}");
        ctype = "application/json";
        break;
    }
    case OSP_LOAD_TARGET_V2_BINARY: {
        if (n > UINT32_MAX - 4)
            return osp_err_set(err, OSP_ELIMIT, "%s too large", path);
        buf_fmt(&body, "{\"inputs\":[{\"name\":\"image\",\"shape\":[1],"
                       "\"datatype\":\"BYTES\",\"parameters\":"
                       "{\"binary_data_size\":%zu}}],\"parameters\":"
                       "{\"binary_data_output\":true}}", n + 4);
        size_t hl = body.len;
        uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16),
                         (uint8_t)(n >> 24)};
        buf_put(&body, le, 4);
        buf_put(&body, img, n);
        snprintf(extra, sizeof extra,
                 "Inference-Header-Content-Length: %zu\r\n", hl);
        ctype = "application/octet-stream";
        break;
    }
    default:
        break;
    }
    buf_fmt(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: osprey-load/%s\r\n",
            ctype ? "POST" : "GET", url, o->host, OSP_VERSION);
    if (ctype)
        buf_fmt(&req, "Content-Type: %s\r\nContent-Length: %zu\r\n%s", ctype,
                body.len, extra);
    for (int h = 0; h < o->n_headers; h++) {
        buf_str(&req, o->headers[h]);
        buf_str(&req, "\r\n");
    }
    buf_str(&req, "\r\n");
    buf_put(&req, body.p, body.len);
    free(body.p);
    if (req.oom || body.oom) {
        free(req.p);
        return osp_err_set(err, OSP_ENOMEM, "%s: out of memory building the "
                           "request", path);
    }
    it->req = req.p;
    it->len = req.len;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files to load: `path` itself, or the regular, non-hidden files of the
 * directory, sorted. *out is a malloc'd array of malloc'd paths. */
static int list_files(const char *path, char ***out, int *count,
                      int *is_dir, osp_err_t *err) {
    struct stat st;
    char **v = NULL;
    int n = 0, cap = 0;
    if (stat(path, &st) != 0)
        return osp_err_set(err, OSP_ENOENT, "--images %s: %s", path,
                           strerror(errno));
    *is_dir = S_ISDIR(st.st_mode);
    if (!*is_dir) {
        v = malloc(sizeof *v);
        if (!v || !(v[0] = strdup(path))) {
            free(v);
            return osp_err_set(err, OSP_ENOMEM, "out of memory");
        }
        *out = v;
        *count = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d)
        return osp_err_set(err, OSP_EIO, "--images %s: %s", path,
                           strerror(errno));
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *full = NULL;
        if (asprintf(&full, "%s/%s", path, de->d_name) < 0) {
            rc = osp_err_set(err, OSP_ENOMEM, "out of memory");
            break;
        }
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(full);
            continue;
        }
        if (n >= OSP_LOAD_CORPUS_MAX_IMAGES) {
            free(full);
            rc = osp_err_set(err, OSP_ELIMIT, "--images %s: more than %d "
                             "files", path, OSP_LOAD_CORPUS_MAX_IMAGES);
            break;
        }
        char **nv = osp_grow(v, &cap, n, sizeof *v, 64);
        if (!nv) {
            free(full);
            rc = osp_err_set(err, OSP_ENOMEM, "out of memory");
            break;
        }
        v = nv;
        v[n++] = full;
    }
    closedir(d);
    if (!rc && !n)
        rc = osp_err_set(err, OSP_ENOENT, "--images %s: no files in the "
                         "directory", path);
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    *count = n;
    return 0;
}

static int model_name_ok(const char *m) {
    if (!*m || strlen(m) > 200)
        return 0;
    for (const char *p = m; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return 0;
    return 1;
}

osp_load_corpus_t *osp_load_corpus_create(const osp_load_corpus_opts_t *o, osp_err_t *err) {
    char **files = NULL;
    int nfiles = 0;
    osp_load_corpus_t *c = calloc(1, sizeof *c);
    if (!c) {
        osp_err_set(err, OSP_ENOMEM, "out of memory");
        return NULL;
    }
    if ((unsigned)o->target >= OSP_LOAD_TARGET_COUNT) {
        osp_err_set(err, OSP_EINVAL, "unknown target");
        goto fail;
    }
    if (!o->host || !*o->host || strpbrk(o->host, "\r\n ")) {
        osp_err_set(err, OSP_EINVAL, "bad Host '%s'", o->host ? o->host : "");
        goto fail;
    }
    if (o->base_path && (strpbrk(o->base_path, "\r\n ") ||
                         (*o->base_path && o->base_path[0] != '/'))) {
        osp_err_set(err, OSP_EINVAL, "bad URL path '%s'", o->base_path);
        goto fail;
    }
    if (o->n_headers < 0 || o->n_headers > OSP_LOAD_CORPUS_MAX_HEADERS) {
        osp_err_set(err, OSP_EINVAL, "at most %d extra headers",
                    OSP_LOAD_CORPUS_MAX_HEADERS);
        goto fail;
    }
    for (int h = 0; h < o->n_headers; h++) {
        /* "Name: value": a token name, no line breaks (no injection). */
        const char *v = o->headers[h];
        size_t nl = strcspn(v, ":");
        if (!nl || !v[nl] || nl != strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                             "abcdefghijklmnopqrstuvwxyz"
                                             "0123456789!#$%&'*+-.^_`|~") ||
            strpbrk(v, "\r\n") || strlen(v) > 1024) {
            osp_err_set(err, OSP_EINVAL, "--header '%.100s' is not 'Name: "
                        "value' (a token name, one line, at most 1024 bytes)",
                        v);
            goto fail;
        }
    }
    if ((o->target == OSP_LOAD_TARGET_V2_JSON || o->target == OSP_LOAD_TARGET_V2_BINARY) &&
        !o->model) {
        osp_err_set(err, OSP_EINVAL, "target %s needs --model NAME (the V2 "
                    "path is /v2/models/{model}/infer)",
                    osp_load_target_name(o->target));
        goto fail;
    }
    if (o->model && !model_name_ok(o->model)) {
        osp_err_set(err, OSP_EINVAL, "model name '%s' must be 1..200 of "
                    "[A-Za-z0-9._-]", o->model);
        goto fail;
    }
    if (o->target == OSP_LOAD_TARGET_GET) {
        c->items = calloc(1, sizeof *c->items);
        if (!c->items || !(c->items[0].name = strdup("-"))) {
            osp_err_set(err, OSP_ENOMEM, "out of memory");
            goto fail;
        }
        c->n = 1;
        if (build(&c->items[0], o, "-", NULL, 0, err) < 0)
            goto fail;
        return c;
    }
    if (!o->images) {
        osp_err_set(err, OSP_EINVAL, "target %s needs --images DIR_OR_FILE",
                    osp_load_target_name(o->target));
        goto fail;
    }
    int is_dir = 0;
    if (list_files(o->images, &files, &nfiles, &is_dir, err) < 0)
        goto fail;
    c->items = calloc((size_t)nfiles, sizeof *c->items);
    if (!c->items) {
        osp_err_set(err, OSP_ENOMEM, "out of memory");
        goto fail;
    }
    size_t total = 0;
    for (int i = 0; i < nfiles; i++) {
        uint8_t *img = NULL;
        size_t n = 0;
        if (osp_read_file(files[i], OSP_LOAD_CORPUS_MAX_IMAGE_BYTES, &img, &n,
                          err) < 0)
            goto fail;
        /* A directory may hold a README or a labels file: only images
         * (what the server can decode) are used. A file named on its own is
         * always sent, so that error paths can be load-tested too. */
        if (is_dir && !strcmp(media_type(img, n), "application/octet-stream")) {
            free(img);
            c->skipped++;
            continue;
        }
        item_t *it = &c->items[c->n];
        const char *slash = strrchr(files[i], '/');
        it->name = strdup(slash ? slash + 1 : files[i]);
        int rc = it->name ? build(it, o, files[i], img, n, err)
                          : osp_err_set(err, OSP_ENOMEM, "out of memory");
        free(img);
        if (rc < 0) {
            free(it->name);
            goto fail;
        }
        c->n++;
        total += it->len;
        if (total > OSP_LOAD_CORPUS_MAX_TOTAL_BYTES) {
            osp_err_set(err, OSP_ELIMIT, "--images %s: requests exceed %zu "
                        "bytes in all", o->images, OSP_LOAD_CORPUS_MAX_TOTAL_BYTES);
            goto fail;
        }
    }
    if (!c->n) {
        osp_err_set(err, OSP_ENOENT, "--images %s: no JPEG, PNG, WebP or BMP "
                    "files (%d other files)", o->images, c->skipped);
        goto fail;
    }
    for (int i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return c;
fail:
    for (int i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    osp_load_corpus_destroy(c);
    return NULL;
}
