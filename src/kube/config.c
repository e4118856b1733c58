/* config.c — how to reach the API server (osp_kube_config_t): from the
 * in-cluster values the CLI passes, or from a kubeconfig file. A kubeconfig
 * is read as kubectl reads it: the context (named, else current-context)
 * names a cluster and a user; their fields map onto the config through one
 * table (FIELDS), paths relative to the kubeconfig's directory, *-data
 * fields base64-decoded into inline PEM (curl takes them as blobs). */
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_int.h"

#define KUBECONFIG_MAX_BYTES ((size_t)4 << 20)

/* The owned strings of a config, and its inline PEM (pointer + length). */
static const size_t STR_FIELDS[] = {
    offsetof(osp_kube_config_t, server),
    offsetof(osp_kube_config_t, namespace_),
    offsetof(osp_kube_config_t, ca_path),
    offsetof(osp_kube_config_t, token),
    offsetof(osp_kube_config_t, token_path),
    offsetof(osp_kube_config_t, cert_path),
    offsetof(osp_kube_config_t, key_path),
};
static const struct {
    size_t ptr, len;
} PEM_FIELDS[] = {
    {offsetof(osp_kube_config_t, ca_pem), offsetof(osp_kube_config_t, ca_pem_len)},
    {offsetof(osp_kube_config_t, cert_pem), offsetof(osp_kube_config_t, cert_pem_len)},
    {offsetof(osp_kube_config_t, key_pem), offsetof(osp_kube_config_t, key_pem_len)},
};
#define STR_AT(c, off) (*(char **)((char *)(c) + (off)))
#define LEN_AT(c, off) (*(size_t *)((char *)(c) + (off)))

static char *dup_mem(const char *p, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

void osp_kube_config_fini(osp_kube_config_t *c) {
    for (size_t i = 0; i < OSP_ARRAY_LEN(STR_FIELDS); i++)
        free(STR_AT(c, STR_FIELDS[i]));
    for (size_t i = 0; i < OSP_ARRAY_LEN(PEM_FIELDS); i++)
        free(STR_AT(c, PEM_FIELDS[i].ptr));
    memset(c, 0, sizeof *c);
}

int osp__kube_config_copy(osp_kube_config_t *dst,
                          const osp_kube_config_t *src) {
    *dst = *src; /* scalars; every pointer is replaced below */
    bool ok = true;
    for (size_t i = 0; i < OSP_ARRAY_LEN(STR_FIELDS); i++) {
        const char *s = STR_AT(src, STR_FIELDS[i]);
        if ((STR_AT(dst, STR_FIELDS[i]) = s ? strdup(s) : NULL) == NULL && s)
            ok = false;
    }
    for (size_t i = 0; i < OSP_ARRAY_LEN(PEM_FIELDS); i++) {
        const char *s = STR_AT(src, PEM_FIELDS[i].ptr);
        size_t n = LEN_AT(src, PEM_FIELDS[i].len);
        if ((STR_AT(dst, PEM_FIELDS[i].ptr) = s ? dup_mem(s, n) : NULL) ==
                NULL && s)
            ok = false;
    }
    if (!ok) {
        osp_kube_config_fini(dst);
        return OSP_ENOMEM;
    }
    return 0;
}

int osp_kube_in_cluster_url(const char *host, const char *port, char *buf,
                            size_t cap, osp_err_t *err) {
    if (!host || !*host)
        return osp_err_set(err, OSP_EINVAL, "KUBERNETES_SERVICE_HOST is not "
                           "set (not in a pod)");
    int n = snprintf(buf, cap, strchr(host, ':') ? "https://[%s]:%s"
                                                 : "https://%s:%s",
                     host, port && *port ? port : "443");
    if (n < 0 || (size_t)n >= cap)
        return osp_err_set(err, OSP_ELIMIT, "API server URL too long");
    return 0;
}

int osp_kube_config_in_cluster(osp_kube_config_t *c, const char *api_url,
                               const char *token_path, const char *ca_path,
                               osp_err_t *err) {
    memset(c, 0, sizeof *c);
    if (!api_url || !*api_url)
        return osp_err_set(err, OSP_EINVAL, "kubernetes: no API server URL");
    c->server = strdup(api_url);
    c->token_path = strdup(token_path ? token_path : OSP_KUBE_SA_DIR "/token");
    c->ca_path = strdup(ca_path ? ca_path : OSP_KUBE_SA_DIR "/ca.crt");
    if (!c->server || !c->token_path || !c->ca_path) {
        osp_kube_config_fini(c);
        return osp_err_set(err, OSP_ENOMEM, "kubernetes: out of memory");
    }
    size_t n = strlen(c->server);
    while (n && c->server[n - 1] == '/')
        c->server[--n] = 0;
    return 0;
}

/* ---- kubeconfig ---------------------------------------------------------- */

typedef enum { F_TEXT, F_PATH, F_BASE64, F_BOOL } field_kind_t;

/* Where each cluster / user field of a kubeconfig goes. */
static const struct {
    const char *section; /* "cluster" or "user" */
    const char *key;
    field_kind_t kind;
    size_t off, len_off; /* len_off: F_BASE64's length field */
} FIELDS[] = {
    {"cluster", "server", F_TEXT, offsetof(osp_kube_config_t, server), 0},
    {"cluster", "certificate-authority", F_PATH,
     offsetof(osp_kube_config_t, ca_path), 0},
    {"cluster", "certificate-authority-data", F_BASE64,
     offsetof(osp_kube_config_t, ca_pem), offsetof(osp_kube_config_t, ca_pem_len)},
    {"cluster", "insecure-skip-tls-verify", F_BOOL,
     offsetof(osp_kube_config_t, insecure), 0},
    {"user", "token", F_TEXT, offsetof(osp_kube_config_t, token), 0},
    {"user", "tokenFile", F_PATH, offsetof(osp_kube_config_t, token_path), 0},
    {"user", "client-certificate", F_PATH,
     offsetof(osp_kube_config_t, cert_path), 0},
    {"user", "client-certificate-data", F_BASE64,
     offsetof(osp_kube_config_t, cert_pem),
     offsetof(osp_kube_config_t, cert_pem_len)},
    {"user", "client-key", F_PATH, offsetof(osp_kube_config_t, key_path), 0},
    {"user", "client-key-data", F_BASE64,
     offsetof(osp_kube_config_t, key_pem),
     offsetof(osp_kube_config_t, key_pem_len)},
};

/* The `inner` object of the entry called name in the list j[list]
 * (contexts[].context, clusters[].cluster, users[].user). */
static json_t *named(json_t *j, const char *list, const char *name,
                     const char *inner) {
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(j, list), i, e) {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && name && !strcmp(n, name))
            return json_is_object(json_object_get(e, inner))
                       ? json_object_get(e, inner)
                       : NULL;
    }
    return NULL;
}

/* A path as written, or joined to dir when relative. */
static char *resolve(const char *dir, const char *p) {
    if (p[0] == '/' || !dir[0])
        return strdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, p);
    return s;
}

static int set_field(osp_kube_config_t *c, size_t f, json_t *v,
                     const char *dir, const char *path, osp_err_t *err) {
    if (FIELDS[f].kind == F_BOOL) {
        if (!json_is_boolean(v))
            return osp_err_set(err, OSP_EFORMAT, "%s: %s.%s is not a boolean",
                               path, FIELDS[f].section, FIELDS[f].key);
        *(bool *)((char *)c + FIELDS[f].off) = json_is_true(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s)
        return osp_err_set(err, OSP_EFORMAT, "%s: %s.%s is not a string", path,
                           FIELDS[f].section, FIELDS[f].key);
    char *val = NULL;
    if (FIELDS[f].kind == F_TEXT) {
        val = strdup(s);
    } else if (FIELDS[f].kind == F_PATH) {
        val = resolve(dir, s);
    } else {
        size_t n = strlen(s);
        val = malloc(n / 4 * 3 + 4);
        long m = val ? osp_base64_decode(s, n, (uint8_t *)val) : 0;
        if (m < 0) {
            free(val);
            return osp_err_set(err, OSP_EFORMAT, "%s: %s.%s is not base64",
                               path, FIELDS[f].section, FIELDS[f].key);
        }
        if (val) {
            val[m] = 0;
            LEN_AT(c, FIELDS[f].len_off) = (size_t)m;
        }
    }
    if (!val)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    free(STR_AT(c, FIELDS[f].off));
    STR_AT(c, FIELDS[f].off) = val;
    return 0;
}

/* Fills c from the resolved cluster and user objects. */
static int fill(osp_kube_config_t *c, json_t *cluster, json_t *user,
                const char *dir, const char *path, osp_err_t *err) {
    for (size_t f = 0; f < OSP_ARRAY_LEN(FIELDS); f++) {
        json_t *v = json_object_get(
            !strcmp(FIELDS[f].section, "cluster") ? cluster : user,
            FIELDS[f].key);
        int rc = v && !json_is_null(v) ? set_field(c, f, v, dir, path, err) : 0;
        if (rc < 0)
            return rc;
    }
    if (!c->server || !*c->server)
        return osp_err_set(err, OSP_EFORMAT, "%s: the cluster has no server",
                           path);
    bool has_cred = c->token || c->token_path || c->cert_path || c->cert_pem;
    if (!has_cred && (json_object_get(user, "exec") ||
                      json_object_get(user, "auth-provider")))
        return osp_err_set(err, OSP_EUNSUPPORTED, "%s: the user authenticates "
                           "with exec or auth-provider, which is not "
                           "supported: use a token, tokenFile or client "
                           "certificate", path);
    return 0;
}

/* The kubeconfig's JSON (YAML converted); NULL with err set. */
static json_t *load(const char *path, osp_err_t *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (osp_read_file(path, KUBECONFIG_MAX_BYTES, &buf, &len, err) < 0)
        return NULL;
    char *text = osp_yaml_to_json((const char *)buf, len, "Config", err);
    free(buf);
    if (!text) {
        osp_err_prefix(err, "%s", path);
        return NULL;
    }
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(j)) {
        json_decref(j);
        osp_err_set(err, OSP_EFORMAT, "%s: not a kubeconfig", path);
        return NULL;
    }
    return j;
}

int osp_kube_config_from_kubeconfig(osp_kube_config_t *c, const char *path,
                                    const char *context, osp_err_t *err) {
    memset(c, 0, sizeof *c);
    json_t *j = load(path, err);
    if (!j)
        return err ? err->code : OSP_EFORMAT;
    int rc = 0;
    const char *ctx_name =
        context ? context
                : json_string_value(json_object_get(j, "current-context"));
    json_t *ctx = named(j, "contexts", ctx_name, "context");
    if (!ctx) {
        rc = osp_err_set(err, OSP_ENOENT, "%s: no context '%s'", path,
                         ctx_name ? ctx_name : "(current-context not set)");
        goto out;
    }
    const char *cl = json_string_value(json_object_get(ctx, "cluster"));
    const char *us = json_string_value(json_object_get(ctx, "user"));
    json_t *cluster = named(j, "clusters", cl, "cluster");
    json_t *user = named(j, "users", us, "user");
    if (!cluster || (us && !user)) {
        rc = osp_err_set(err, OSP_ENOENT, "%s: context '%s' names %s '%s', "
                         "which is not there", path, ctx_name,
                         cluster ? "user" : "cluster", cluster ? us : cl);
        goto out;
    }
    const char *ns = json_string_value(json_object_get(ctx, "namespace"));
    if (ns && !(c->namespace_ = strdup(ns))) {
        rc = osp_err_set(err, OSP_ENOMEM, "out of memory");
        goto out;
    }
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 0, path);
    if (slash == path)
        snprintf(dir, sizeof dir, "/");
    rc = fill(c, cluster, user, dir, path, err);
    if (rc == 0) {
        size_t n = strlen(c->server);
        while (n && c->server[n - 1] == '/')
            c->server[--n] = 0;
    }
out:
    json_decref(j);
    if (rc < 0)
        osp_kube_config_fini(c);
    return rc;
}
