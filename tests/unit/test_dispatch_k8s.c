/* test_dispatch_k8s.c — EndpointSlice parsing for the dispatcher's
 * Kubernetes discovery: a real-shaped slice (conditions.ready true / false /
 * absent, several addresses per endpoint, named and numbered ports, IPv6),
 * an EndpointSliceList with its resourceVersion, watch events (ADDED,
 * MODIFIED, DELETED, BOOKMARK, ERROR 410 and other ERRORs), and malformed
 * input turned into errors, never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch_int.h"

static const char *slice_json =
    "{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\","
    "\"metadata\":{\"name\":\"osprey-abc12\",\"namespace\":\"ml\","
    "\"resourceVersion\":\"4711\",\"labels\":{\"kubernetes.io/service-name\":"
    "\"osprey\"}},\"addressType\":\"IPv4\",\"endpoints\":["
    "{\"addresses\":[\"10.1.0.5\"],\"conditions\":{\"ready\":true,"
    "\"serving\":true,\"terminating\":false},\"nodeName\":\"n1\"},"
    "{\"addresses\":[\"10.1.0.6\"],\"conditions\":{\"ready\":false,"
    "\"serving\":true,\"terminating\":true}},"
    "{\"addresses\":[\"10.1.0.7\",\"10.1.0.8\"],\"conditions\":{}},"
    "{\"addresses\":[\"not an ip!\"]},"
    "{\"conditions\":{\"ready\":true}}],"
    "\"ports\":[{\"name\":\"metrics\",\"port\":9100,\"protocol\":\"TCP\"},"
    "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}";

static void test_slice(void **st) {
    (void)st;
    json_t *j = json_loads(slice_json, 0, NULL);
    assert_non_null(j);
    osp__dsp_k8s_slice_t s;
    osp_err_t err = {0};
    assert_int_equal(osp__dsp_k8s_parse_slice(j, "http", &s, &err), 0);
    assert_string_equal(s.name, "osprey-abc12");
    /* ready true, and ready absent (= ready); not the ready:false one, not
     * the bad address, not the endpoint without addresses. */
    assert_int_equal(s.n_addrs, 2);
    assert_string_equal(s.addrs[0], "10.1.0.5:8080");
    assert_string_equal(s.addrs[1], "10.1.0.7:8080");
    osp__dsp_k8s_slice_fini(&s);
    /* A numeric port is used as given; an unknown name gives no endpoint. */
    assert_int_equal(osp__dsp_k8s_parse_slice(j, "9000", &s, &err), 0);
    assert_int_equal(s.n_addrs, 2);
    assert_string_equal(s.addrs[0], "10.1.0.5:9000");
    osp__dsp_k8s_slice_fini(&s);
    assert_int_equal(osp__dsp_k8s_parse_slice(j, "grpc", &s, &err), 0);
    assert_int_equal(s.n_addrs, 0);
    osp__dsp_k8s_slice_fini(&s);
    json_decref(j);
}

static void test_slice_v6_and_bad(void **st) {
    (void)st;
    json_t *j = json_loads(
        "{\"metadata\":{\"name\":\"s6\"},\"addressType\":\"IPv6\","
        "\"endpoints\":[{\"addresses\":[\"fd00::5\"]}],"
        "\"ports\":[{\"name\":\"http\",\"port\":8080}]}", 0, NULL);
    osp__dsp_k8s_slice_t s;
    osp_err_t err = {0};
    assert_int_equal(osp__dsp_k8s_parse_slice(j, "http", &s, &err), 0);
    assert_int_equal(s.n_addrs, 1);
    assert_string_equal(s.addrs[0], "[fd00::5]:8080");
    osp__dsp_k8s_slice_fini(&s);
    json_decref(j);
    /* endpoints: null is an empty slice (the API sends it). */
    j = json_loads("{\"metadata\":{\"name\":\"e\"},\"endpoints\":null}", 0,
                   NULL);
    assert_int_equal(osp__dsp_k8s_parse_slice(j, "80", &s, &err), 0);
    assert_int_equal(s.n_addrs, 0);
    osp__dsp_k8s_slice_fini(&s);
    json_decref(j);
    const char *bad[] = {"{}", "{\"metadata\":{}}", "[]",
                         "{\"metadata\":{\"name\":\"x\"},\"endpoints\":7}",
                         "{\"metadata\":{\"name\":5}}"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad); i++) {
        j = json_loads(bad[i], 0, NULL);
        assert_non_null(j);
        assert_int_equal(osp__dsp_k8s_parse_slice(j, "80", &s, &err),
                         OSP_EFORMAT);
        osp__dsp_k8s_slice_fini(&s);
        json_decref(j);
    }
    /* A port out of range is no port. */
    j = json_loads("{\"metadata\":{\"name\":\"p\"},\"endpoints\":[{"
                   "\"addresses\":[\"1.2.3.4\"]}],\"ports\":[{\"name\":"
                   "\"http\",\"port\":70000}]}", 0, NULL);
    assert_int_equal(osp__dsp_k8s_parse_slice(j, "http", &s, &err), 0);
    assert_int_equal(s.n_addrs, 0);
    osp__dsp_k8s_slice_fini(&s);
    json_decref(j);
}

static void test_list(void **st) {
    (void)st;
    char body[4096];
    snprintf(body, sizeof body,
             "{\"kind\":\"EndpointSliceList\",\"apiVersion\":"
             "\"discovery.k8s.io/v1\",\"metadata\":{\"resourceVersion\":"
             "\"5000\"},\"items\":[%s,{\"bad\":1}]}", slice_json);
    osp__dsp_k8s_slice_t *s;
    int n;
    char rv[64];
    osp_err_t err = {0};
    assert_int_equal(osp__dsp_k8s_parse_list(body, strlen(body), "http", &s,
                                             &n, rv, sizeof rv, &err), 0);
    assert_int_equal(n, 1); /* the bad item is skipped */
    assert_string_equal(rv, "5000");
    assert_int_equal(s[0].n_addrs, 2);
    osp__dsp_k8s_slice_fini(&s[0]);
    free(s);
    const char *empty = "{\"kind\":\"EndpointSliceList\",\"metadata\":"
                        "{\"resourceVersion\":\"7\"},\"items\":null}";
    assert_int_equal(osp__dsp_k8s_parse_list(empty, strlen(empty), "http",
                                             &s, &n, rv, sizeof rv, &err), 0);
    assert_int_equal(n, 0);
    assert_string_equal(rv, "7");
    free(s);
    assert_int_equal(osp__dsp_k8s_parse_list("nope", 4, "http", &s, &n, rv,
                                             sizeof rv, &err), OSP_EFORMAT);
    assert_int_equal(osp__dsp_k8s_parse_list("{\"items\":{}}", 12, "http", &s,
                                             &n, rv, sizeof rv, &err),
                     OSP_EFORMAT);
}

static void test_events(void **st) {
    (void)st;
    char line[4096];
    osp__dsp_k8s_ev_t kind;
    osp__dsp_k8s_slice_t s;
    char rv[64];
    osp_err_t err = {0};
    const char *types[] = {"ADDED", "MODIFIED", "DELETED"};
    for (int i = 0; i < 3; i++) {
        snprintf(line, sizeof line, "{\"type\":\"%s\",\"object\":%s}",
                 types[i], slice_json);
        rv[0] = 0;
        assert_int_equal(osp__dsp_k8s_parse_event(line, strlen(line), "http",
                                                  &kind, &s, rv, sizeof rv,
                                                  &err), 0);
        assert_int_equal(kind, (osp__dsp_k8s_ev_t)i);
        assert_string_equal(rv, "4711");
        assert_string_equal(s.name, "osprey-abc12");
        assert_int_equal(s.n_addrs, 2);
        osp__dsp_k8s_slice_fini(&s);
    }
    const char *bm = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":"
                     "\"EndpointSlice\",\"metadata\":{\"resourceVersion\":"
                     "\"9001\"}}}";
    assert_int_equal(osp__dsp_k8s_parse_event(bm, strlen(bm), "http", &kind,
                                              &s, rv, sizeof rv, &err), 0);
    assert_int_equal(kind, DSP_K8S_BOOKMARK);
    assert_string_equal(rv, "9001");
    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
                       "\"apiVersion\":\"v1\",\"status\":\"Failure\","
                       "\"message\":\"too old resource version: 1 (5)\","
                       "\"reason\":\"Expired\",\"code\":410}}";
    assert_int_equal(osp__dsp_k8s_parse_event(gone, strlen(gone), "http",
                                              &kind, &s, rv, sizeof rv, &err),
                     0);
    assert_int_equal(kind, DSP_K8S_GONE);
    const char *other = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
                        "\"code\":500}}";
    assert_int_equal(osp__dsp_k8s_parse_event(other, strlen(other), "http",
                                              &kind, &s, rv, sizeof rv, &err),
                     0);
    assert_int_equal(kind, DSP_K8S_ERROR);
    const char *bad[] = {"", "{", "{\"type\":\"ADDED\"}",
                         "{\"type\":\"WHAT\",\"object\":{}}",
                         "{\"type\":7,\"object\":{}}",
                         "{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad); i++) {
        assert_int_equal(osp__dsp_k8s_parse_event(bad[i], strlen(bad[i]),
                                                  "http", &kind, &s, rv,
                                                  sizeof rv, &err),
                         OSP_EFORMAT);
        osp__dsp_k8s_slice_fini(&s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_slice_v6_and_bad),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
