/* kube.h — the one Kubernetes API client of the project: the dispatcher's
 * EndpointSlice discovery (LIST + WATCH) and the autoscaler's Deployment
 * actuator (GET + PATCH of the scale subresource) both talk to the API
 * server through it.
 *
 * How to reach the API is a config (osp_kube_config_t), filled either from
 * in-cluster values the caller passes (the CLI reads KUBERNETES_SERVICE_HOST
 * and _PORT; this library reads no environment) or from a kubeconfig file
 * (its current context or a named one: server, CA, bearer token, token
 * file, client certificate and key, inline *-data as well as paths). A
 * token file is re-read whenever it changes (kubelet rotates projected
 * service-account tokens), so a long-lived client keeps working.
 *
 * One request function serves both kinds of call: a plain request collects
 * the answer's body; a streaming one (WATCH) hands each line to a callback
 * as it arrives. A client (osp_kube_t) is used by one thread at a time; it
 * keeps its connection between requests. */
#ifndef OSPREY_KUBE_H
#define OSPREY_KUBE_H

#include <stdbool.h>
#include <stddef.h>

#include "osprey/common.h"

/* Where a pod finds its service account's credentials. */
#define OSP_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* How to reach and authenticate to an API server. Every string is owned by
 * the config (malloc'd; osp_kube_config_fini frees them); NULL = unset. */
typedef struct osp_kube_config_s {
    char *server;          /* base URL "https://host:port" (no trailing /) */
    char *namespace_;      /* the context's namespace (kubeconfig), or NULL */
    /* Server verification: a CA file, or inline PEM (kubeconfig's
     * certificate-authority-data, decoded); neither = the system CAs. */
    char *ca_path;
    char *ca_pem;
    size_t ca_pem_len;
    bool insecure;         /* insecure-skip-tls-verify: no verification */
    /* Client authentication: a bearer token (inline or a file re-read when
     * it changes) and/or a client certificate + key (files or inline PEM). */
    char *token;
    char *token_path;
    char *cert_path, *key_path;
    char *cert_pem, *key_pem;
    size_t cert_pem_len, key_pem_len;
} osp_kube_config_t;

/* Frees what c owns and zeroes it. */
void osp_kube_config_fini(osp_kube_config_t *c);

/* Fills c (zeroed first) for a pod or a test: api_url is the server
 * ("https://10.0.0.1:443"), token_path / ca_path default to the service
 * account's (OSP_KUBE_SA_DIR) when NULL. A token file that cannot be read
 * sends no Authorization header; a CA file that cannot be read means the
 * system CAs (as the dispatcher has always done). OSP_EINVAL without a
 * URL, OSP_ENOMEM. */
int osp_kube_config_in_cluster(osp_kube_config_t *c, const char *api_url,
                               const char *token_path, const char *ca_path,
                               osp_err_t *err);

/* The in-cluster API URL from the values of KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT (port NULL or "" = 443; an IPv6 host is
 * bracketed) into buf. OSP_EINVAL when host is NULL or empty (not in a
 * pod), OSP_ELIMIT when buf is too small. */
int osp_kube_in_cluster_url(const char *host, const char *port, char *buf,
                            size_t cap, osp_err_t *err);

/* Fills c (zeroed first) from the kubeconfig at path (YAML or JSON):
 * context NULL = its current-context. Relative file paths in it are taken
 * from the kubeconfig's directory, as kubectl does. Errors name the file
 * and what is missing (OSP_ENOENT no such context/cluster/user, OSP_EFORMAT
 * unreadable, OSP_EUNSUPPORTED an exec or auth-provider user). */
int osp_kube_config_from_kubeconfig(osp_kube_config_t *c, const char *path,
                                    const char *context, osp_err_t *err);

/* ---- the client --------------------------------------------------------- */
typedef struct osp_kube_s osp_kube_t;

/* A client for config c (copied: c may be freed after). NULL with err set
 * on ENOMEM or a config without a server. Caller destroys. */
osp_kube_t *osp_kube_create(const osp_kube_config_t *c, osp_err_t *err);
void osp_kube_destroy(osp_kube_t *k);

typedef struct osp_kube_req_s {
    const char *method;        /* "GET", "PATCH", ...; NULL = GET */
    const char *path;          /* "/apis/...", query included, escaped */
    const char *body;          /* request body or NULL */
    size_t body_len;
    const char *content_type;  /* of the body */
    long timeout_ms;           /* the whole request; 0 = 30 s */
    /* Streaming (WATCH): with on_line set, a 2xx answer's body is not
     * collected but cut into lines (without the \n, lines longer than
     * 16 MiB dropped) handed to on_line; it returns non-zero to end the
     * stream early. */
    int (*on_line)(void *ud, const char *line, size_t len);
    /* Polled while the request waits (about once a second and on data):
     * true aborts it (OSP_EBUSY). NULL = never. */
    bool (*cancelled)(void *ud);
    void *ud;
} osp_kube_req_t;

typedef struct osp_kube_resp_s {
    long status;        /* HTTP status; 0 when none came */
    char *body;         /* NUL-terminated (malloc'd; osp_kube_resp_free) */
    size_t len;
    bool stopped;       /* on_line ended the stream */
} osp_kube_resp_t;

/* Performs one request. 0 when an HTTP answer came (whatever its status:
 * see out->status), else OSP_ETIMEDOUT, OSP_EBUSY (cancelled), OSP_ELIMIT
 * (body over 64 MiB) or OSP_EIO with curl's error text in err. out is
 * always filled (status 0 and no body on failure); free it with
 * osp_kube_resp_free. */
int osp_kube_request(osp_kube_t *k, const osp_kube_req_t *rq,
                     osp_kube_resp_t *out, osp_err_t *err);
void osp_kube_resp_free(osp_kube_resp_t *r);

/* The "message" of a Kubernetes Status body (or the start of the body when
 * it is not one) into buf, for error texts; "" when there is no body. */
const char *osp_kube_status_message(const osp_kube_resp_t *r, char *buf,
                                    size_t cap);

#endif
