/* test_kube.c — the Kubernetes client (include/osprey/kube.h) and the
 * autoscaler's Kubernetes actuator (osp_autoscale_k8s_create):
 *   - kubeconfig reading: current and named contexts, paths relative to the
 *     file, *-data decoded, token and tokenFile, a JSON kubeconfig, and the
 *     errors (no such context, a missing cluster, exec users, no server);
 *   - the in-cluster URL from KUBERNETES_SERVICE_HOST/_PORT values;
 *   - the actuator's requests and its handling of answers, against a
 *     scripted stand-in API server on 127.0.0.1 (a thread here; each
 *     request gets the next scripted answer, and is recorded): observe
 *     reads spec.replicas and status.readyReplicas; scale sends a merge
 *     patch with the observed resourceVersion; 409 with the same count is
 *     retried once, 409 with a changed count is not fought (OSP_EBUSY); 403
 *     names the RBAC rule; 5xx and timeouts are errors; a rotated token
 *     file is sent from the next request on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "osprey/autoscale.h"
#include "osprey/kube.h"

/* ---- a scripted API server ------------------------------------------------ */

#define MAX_STEPS 8

typedef struct answer_s {
    int status;        /* 0: hold the connection without answering */
    const char *body;
} answer_t;

typedef struct seen_s {
    char method[16], path[256], auth[256], ctype[64], body[512];
} seen_t;

typedef struct stub_s {
    int fd, port;
    pthread_t th;
    answer_t script[MAX_STEPS];
    int n_script;
    seen_t seen[MAX_STEPS];
    int n_seen;
    volatile int stop;
} stub_t;

/* The value of header name (lowercase match) in the request head. */
static void header(const char *head, const char *name, char *out, size_t cap) {
    out[0] = 0;
    for (const char *p = head; (p = strchr(p, '\n')) != NULL;) {
        p++;
        if (!strncasecmp(p, name, strlen(name)) && p[strlen(name)] == ':') {
            const char *v = p + strlen(name) + 1, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(e ? e - v : 0), v);
            return;
        }
    }
}

static void serve_one(stub_t *s, int c) {
    char buf[8192];
    size_t n = 0;
    char *end = NULL;
    while (n < sizeof buf - 1 && !end) {
        ssize_t r = read(c, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            return;
        n += (size_t)r;
        buf[n] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end || s->n_seen >= MAX_STEPS)
        return;
    seen_t *q = &s->seen[s->n_seen];
    sscanf(buf, "%15s %255s", q->method, q->path);
    header(buf, "authorization", q->auth, sizeof q->auth);
    header(buf, "content-type", q->ctype, sizeof q->ctype);
    char cl[32];
    header(buf, "content-length", cl, sizeof cl);
    size_t want = (size_t)atol(cl), have = n - (size_t)(end + 4 - buf);
    while (have < want && n < sizeof buf - 1) {
        ssize_t r = read(c, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        have += (size_t)r;
    }
    buf[n] = 0;
    snprintf(q->body, sizeof q->body, "%s", end + 4);
    answer_t a = s->n_seen < s->n_script ? s->script[s->n_seen]
                                         : (answer_t){500, "{}"};
    s->n_seen++;
    if (!a.status) { /* hold until the client gives up */
        while (!s->stop && read(c, buf, sizeof buf) > 0)
            ;
        return;
    }
    char out[4096];
    int len = snprintf(out, sizeof out,
                       "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       a.status, strlen(a.body), a.body);
    (void)!write(c, out, (size_t)len);
}

static void *stub_main(void *arg) {
    stub_t *s = arg;
    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        serve_one(s, c);
        close(c);
    }
    return NULL;
}

static void stub_start(stub_t *s) {
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    socklen_t sl = sizeof sa;
    getsockname(s->fd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, stub_main, s), 0);
}

static void stub_stop(stub_t *s) {
    s->stop = 1;
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->th, NULL);
}

/* ---- helpers ------------------------------------------------------------------ */

static char tmpdir[64];

static void write_file(const char *name, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **st) {
    (void)st;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/osp_test_kube.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **st) {
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* An actuator for NS/web at the stub, with the token in file "token". */
static osp_autoscale_actuator_t *actuator(stub_t *s, long timeout_ms) {
    char url[64], tok[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s->port);
    snprintf(tok, sizeof tok, "%s/token", tmpdir);
    osp_kube_config_t c;
    osp_err_t err = {0};
    assert_int_equal(osp_kube_config_in_cluster(&c, url, tok, "/nonexistent",
                                                &err), 0);
    osp_autoscale_k8s_opts_t o = {.deployment = "ml/web", .kube = &c,
                                  .timeout_ms = timeout_ms};
    osp_autoscale_actuator_t *a = osp_autoscale_k8s_create(&o, &err);
    osp_kube_config_fini(&c);
    assert_non_null(a);
    return a;
}

#define SCALE(n, rv)                                                           \
    "{\"kind\":\"Scale\",\"apiVersion\":\"autoscaling/v1\",\"metadata\":"      \
    "{\"name\":\"web\",\"namespace\":\"ml\",\"resourceVersion\":\"" rv "\"},"   \
    "\"spec\":{\"replicas\":" #n "},\"status\":{\"replicas\":" #n "}}"
#define DEPLOY_READY(r)                                                        \
    "{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},"                \
    "\"status\":{\"replicas\":3,\"readyReplicas\":" #r "}}"
#define SCALE_PATH "/apis/apps/v1/namespaces/ml/deployments/web/scale"

/* ---- kubeconfig ---------------------------------------------------------------- */

static const char *kubeconfig_yaml =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: dev\n"
    "clusters:\n"
    "- name: c1\n"
    "  cluster:\n"
    "    server: https://127.0.0.1:6443/\n"
    "    certificate-authority: certs/ca.crt\n"
    "- name: c2\n"
    "  cluster:\n"
    "    server: https://10.0.0.1\n"
    "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n"
    "    insecure-skip-tls-verify: false\n"
    "users:\n"
    "- name: u1\n"
    "  user:\n"
    "    client-certificate: /abs/admin.crt\n"
    "    client-key: admin.key\n"
    "- name: u2\n"
    "  user:\n"
    "    token: abc.def\n"
    "    client-key-data: a2V5\n"
    "- name: u3\n"
    "  user:\n"
    "    exec: {command: aws}\n"
    "contexts:\n"
    "- name: dev\n"
    "  context: {cluster: c1, user: u1, namespace: ml}\n"
    "- name: prod\n"
    "  context: {cluster: c2, user: u2}\n"
    "- name: cloud\n"
    "  context: {cluster: c2, user: u3}\n"
    "- name: broken\n"
    "  context: {cluster: nope, user: u1}\n";

static void test_kubeconfig(void **st) {
    (void)st;
    write_file("config", kubeconfig_yaml);
    char path[256];
    snprintf(path, sizeof path, "%s/config", tmpdir);
    osp_kube_config_t c;
    osp_err_t err = {0};
    assert_int_equal(osp_kube_config_from_kubeconfig(&c, path, NULL, &err), 0);
    assert_string_equal(c.server, "https://127.0.0.1:6443");
    assert_string_equal(c.namespace_, "ml");
    char want[300];
    snprintf(want, sizeof want, "%s/certs/ca.crt", tmpdir);
    assert_string_equal(c.ca_path, want);
    assert_string_equal(c.cert_path, "/abs/admin.crt");
    snprintf(want, sizeof want, "%s/admin.key", tmpdir);
    assert_string_equal(c.key_path, want);
    assert_null(c.token);
    assert_null(c.ca_pem);
    osp_kube_config_fini(&c);

    assert_int_equal(osp_kube_config_from_kubeconfig(&c, path, "prod", &err), 0);
    assert_string_equal(c.server, "https://10.0.0.1");
    assert_string_equal(c.token, "abc.def");
    assert_int_equal(c.ca_pem_len, 27);
    assert_string_equal(c.ca_pem, "-----BEGIN CERTIFICATE-----");
    assert_int_equal(c.key_pem_len, 3);
    assert_string_equal(c.key_pem, "key");
    assert_false(c.insecure);
    assert_null(c.ca_path);
    osp_kube_config_fini(&c);

    assert_int_equal(osp_kube_config_from_kubeconfig(&c, path, "staging", &err),
                     OSP_ENOENT);
    assert_non_null(strstr(err.msg, "no context 'staging'"));
    assert_int_equal(osp_kube_config_from_kubeconfig(&c, path, "broken", &err),
                     OSP_ENOENT);
    assert_non_null(strstr(err.msg, "cluster 'nope'"));
    assert_int_equal(osp_kube_config_from_kubeconfig(&c, path, "cloud", &err),
                     OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "exec"));
    assert_null(c.server); /* nothing is left behind on failure */
}

static void test_kubeconfig_json_and_errors(void **st) {
    (void)st;
    write_file("config.json",
               "{\"kind\":\"Config\",\"current-context\":\"x\","
               "\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":"
               "\"http://127.0.0.1:1\",\"insecure-skip-tls-verify\":true}}],"
               "\"users\":[{\"name\":\"u\",\"user\":{\"tokenFile\":\"t\"}}],"
               "\"contexts\":[{\"name\":\"x\",\"context\":{\"cluster\":\"c\","
               "\"user\":\"u\"}}]}");
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    osp_kube_config_t c;
    osp_err_t err = {0};
    assert_int_equal(osp_kube_config_from_kubeconfig(&c, path, NULL, &err), 0);
    assert_true(c.insecure);
    char want[300];
    snprintf(want, sizeof want, "%s/t", tmpdir);
    assert_string_equal(c.token_path, want);
    osp_kube_config_fini(&c);

    write_file("noserver", "current-context: x\nclusters: [{name: c, "
               "cluster: {}}]\ncontexts: [{name: x, context: {cluster: c}}]\n");
    snprintf(path, sizeof path, "%s/noserver", tmpdir);
    assert_int_equal(osp_kube_config_from_kubeconfig(&c, path, NULL, &err),
                     OSP_EFORMAT);
    assert_non_null(strstr(err.msg, "no server"));
    write_file("bad64", "current-context: x\nclusters: [{name: c, cluster: "
               "{server: s, certificate-authority-data: '%%%'}}]\n"
               "contexts: [{name: x, context: {cluster: c}}]\n");
    snprintf(path, sizeof path, "%s/bad64", tmpdir);
    assert_int_equal(osp_kube_config_from_kubeconfig(&c, path, NULL, &err),
                     OSP_EFORMAT);
    assert_non_null(strstr(err.msg, "not base64"));
    snprintf(path, sizeof path, "%s/missing", tmpdir);
    assert_true(osp_kube_config_from_kubeconfig(&c, path, NULL, &err) < 0);
}

static void test_in_cluster_url(void **st) {
    (void)st;
    char buf[128];
    osp_err_t err = {0};
    assert_int_equal(osp_kube_in_cluster_url("10.96.0.1", "443", buf,
                                             sizeof buf, &err), 0);
    assert_string_equal(buf, "https://10.96.0.1:443");
    assert_int_equal(osp_kube_in_cluster_url("fd00::1", NULL, buf, sizeof buf,
                                             &err), 0);
    assert_string_equal(buf, "https://[fd00::1]:443");
    assert_int_equal(osp_kube_in_cluster_url("", "443", buf, sizeof buf, &err),
                     OSP_EINVAL);
    assert_int_equal(osp_kube_in_cluster_url(NULL, NULL, buf, sizeof buf, &err),
                     OSP_EINVAL);
}

/* ---- the actuator ----------------------------------------------------------- */

static void test_observe_and_scale(void **st) {
    (void)st;
    write_file("token", "tok-1\n");
    stub_t s = {.script = {{200, SCALE(3, "41")}, {200, DEPLOY_READY(2)},
                           {200, SCALE(5, "42")},
                           {200, "{\"kind\":\"Deployment\",\"status\":{}}"}},
                .n_script = 4};
    stub_start(&s);
    osp_autoscale_actuator_t *a = actuator(&s, 0);
    assert_string_equal(a->name, "kubernetes");
    int cur = -1, ready = -1;
    osp_err_t err = {0};
    assert_int_equal(a->observe(a, &cur, &ready, &err), 0);
    assert_int_equal(cur, 3);
    assert_int_equal(ready, 2);
    assert_string_equal(s.seen[0].method, "GET");
    assert_string_equal(s.seen[0].path, SCALE_PATH);
    assert_string_equal(s.seen[0].auth, "Bearer tok-1");
    assert_string_equal(s.seen[1].path,
                        "/apis/apps/v1/namespaces/ml/deployments/web");
    /* The token rotates: the next request sends the new one. */
    write_file("token", "tok-2-longer\n");
    assert_int_equal(a->scale(a, 5, &err), 0);
    assert_string_equal(s.seen[2].method, "PATCH");
    assert_string_equal(s.seen[2].path, SCALE_PATH);
    assert_string_equal(s.seen[2].ctype, "application/merge-patch+json");
    assert_string_equal(s.seen[2].auth, "Bearer tok-2-longer");
    assert_string_equal(s.seen[2].body,
                        "{\"metadata\":{\"resourceVersion\":\"41\"},"
                        "\"spec\":{\"replicas\":5}}");
    char *js = a->status_json(a);
    assert_non_null(strstr(js, "\"deployment\":\"ml/web\""));
    free(js);
    a->destroy(a);
    stub_stop(&s);
}

static void test_conflict(void **st) {
    (void)st;
    write_file("token", "t");
    /* 409 while only the version moved: re-read, retry once, done. */
    stub_t s = {.script = {{200, SCALE(3, "41")}, {200, DEPLOY_READY(3)},
                           {409, "{\"kind\":\"Status\",\"code\":409}"},
                           {200, SCALE(3, "43")}, {200, SCALE(4, "44")}},
                .n_script = 5};
    stub_start(&s);
    osp_autoscale_actuator_t *a = actuator(&s, 0);
    int cur, ready;
    osp_err_t err = {0};
    assert_int_equal(a->observe(a, &cur, &ready, &err), 0);
    assert_int_equal(a->scale(a, 4, &err), 0);
    assert_int_equal(s.n_seen, 5);
    assert_non_null(strstr(s.seen[4].body, "\"resourceVersion\":\"43\""));
    a->destroy(a);
    stub_stop(&s);

    /* 409 because someone else scaled: not fought. */
    stub_t s2 = {.script = {{200, SCALE(3, "41")}, {200, DEPLOY_READY(3)},
                            {409, "{\"kind\":\"Status\",\"code\":409}"},
                            {200, SCALE(7, "45")}},
                 .n_script = 4};
    stub_start(&s2);
    a = actuator(&s2, 0);
    assert_int_equal(a->observe(a, &cur, &ready, &err), 0);
    assert_int_equal(a->scale(a, 4, &err), OSP_EBUSY);
    assert_non_null(strstr(err.msg, "scaled to 7 by someone else"));
    assert_int_equal(s2.n_seen, 4); /* no second PATCH */
    a->destroy(a);
    stub_stop(&s2);
}

static void test_errors(void **st) {
    (void)st;
    write_file("token", "t");
    stub_t s = {.script = {
                    {403, "{\"kind\":\"Status\",\"message\":\"deployments.apps"
                          " \\\"web\\\" is forbidden\",\"code\":403}"},
                    {503, "{\"kind\":\"Status\",\"message\":\"etcd down\"}"},
                    {404, "{\"kind\":\"Status\",\"code\":404}"},
                    {200, "not json"},
                    {0, NULL}},
                .n_script = 5};
    stub_start(&s);
    osp_autoscale_actuator_t *a = actuator(&s, 500);
    osp_err_t err = {0};
    int cur, ready;
    /* scale without an observe reads the scale first: the GET is refused */
    assert_int_equal(a->scale(a, 2, &err), OSP_EINVAL);
    assert_non_null(strstr(err.msg, "forbidden: GET deployments/scale ml/web"));
    assert_non_null(strstr(err.msg, "resources: [deployments/scale], verbs: "
                                    "[get], resourceNames: [web]"));
    assert_non_null(strstr(err.msg, "in namespace ml"));
    assert_non_null(strstr(err.msg, "is forbidden")); /* the API's words */
    assert_int_equal(a->observe(a, &cur, &ready, &err), OSP_EIO);
    assert_non_null(strstr(err.msg, "HTTP 503 (etcd down)"));
    assert_int_equal(a->observe(a, &cur, &ready, &err), OSP_EINVAL);
    assert_non_null(strstr(err.msg, "not found"));
    assert_int_equal(a->observe(a, &cur, &ready, &err), OSP_EFORMAT);
    assert_int_equal(a->observe(a, &cur, &ready, &err), OSP_ETIMEDOUT);
    assert_non_null(strstr(err.msg, "kubernetes: GET deployments/scale ml/web"));
    a->destroy(a);
    stub_stop(&s);

    /* Nobody listening: a clean error naming the server. */
    osp_kube_config_t c;
    assert_int_equal(osp_kube_config_in_cluster(&c, "http://127.0.0.1:1", NULL,
                                                NULL, &err), 0);
    osp_autoscale_k8s_opts_t o = {.deployment = "ml/web", .kube = &c};
    a = osp_autoscale_k8s_create(&o, &err);
    assert_non_null(a);
    assert_int_equal(a->observe(a, &cur, &ready, &err), OSP_EIO);
    assert_non_null(strstr(err.msg, "at http://127.0.0.1:1"));
    a->destroy(a);
    /* Bad targets are refused before anything is asked. */
    const char *bad[] = {"web", "ml/", "/web", "ML/web", "ml/web/x", "m.l/web"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        o.deployment = bad[i];
        assert_null(osp_autoscale_k8s_create(&o, &err));
        assert_int_equal(err.code, OSP_EINVAL);
    }
    osp_kube_config_fini(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeconfig),
        cmocka_unit_test(test_kubeconfig_json_and_errors),
        cmocka_unit_test(test_in_cluster_url),
        cmocka_unit_test(test_observe_and_scale),
        cmocka_unit_test(test_conflict),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
