/* test_autoscale.c — the autoscaler's decisions (src/autoscale/policy.c) on
 * recorded metric sequences, each with the exact replica counts the HPA's
 * algorithm gives (worked by hand in the comments), plus the panic mode,
 * the HPA-style JSON configuration and the simulator's determinism. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "osprey/autoscale.h"

/* One step at t with one metric value; returns the decision. */
static osp_autoscale_decision_t step(osp_autoscale_t *a, double t, int current,
                                     int ready, double v) {
    osp_autoscale_sample_t s = {.t_s = t, .current = current, .ready = ready};
    s.values[0] = v;
    osp_autoscale_decision_t d;
    osp_autoscale_step(a, &s, &d);
    return d;
}

static osp_autoscale_t *make(const osp_autoscale_opts_t *o) {
    osp_err_t err = {0};
    osp_autoscale_t *a = osp_autoscale_create(o, &err);
    if (!a)
        fail_msg("create: %s", err.msg);
    return a;
}

/* HPA options with a period of 15 s, so each call below is one decision. */
static osp_autoscale_t *hpa(int min, int max) {
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init_hpa(&o);
    o.min_replicas = min;
    o.max_replicas = max;
    return make(&o);
}

static void test_tolerance_band(void **state) {
    (void)state;
    osp_autoscale_t *a = hpa(1, 10);
    /* 2 ready, target 4 each: 8.7 is a ratio of 1.0875, inside ±0.1. */
    assert_int_equal(step(a, 0, 2, 2, 8.7).desired, 2);
    /* 7.3: 0.9125, inside. */
    assert_int_equal(step(a, 15, 2, 2, 7.3).desired, 2);
    /* 9.0: 1.125, outside: ceil(9 / 4) = 3. */
    osp_autoscale_decision_t d = step(a, 30, 2, 2, 9.0);
    assert_int_equal(d.desired, 3);
    assert_true(d.evaluated);
    assert_int_equal(d.metrics[0].desired, 3);
    osp_autoscale_destroy(a);
}

static void test_scale_up_policies(void **state) {
    (void)state;
    osp_autoscale_t *a = hpa(1, 20);
    /* 1 replica, 40 in flight: wants 10. Default scale-up: Max of
     * {Pods 4: 1 + 4 = 5, Percent 100: ceil(1 × 2) = 2} per 15 s → 5. */
    osp_autoscale_decision_t d = step(a, 0, 1, 1, 40);
    assert_int_equal(d.desired, 5);
    assert_non_null(strstr(d.rule, "scale-up limited by policy Pods 4/15s"));
    /* 5 s later (no decision: period 15 s) nothing changes. */
    d = step(a, 5, 5, 5, 40);
    assert_false(d.evaluated);
    assert_int_equal(d.desired, 5);
    /* At t = 15 the event at t = 0 has left the 15 s period (the HPA counts
     * events strictly after now − period): from 5, Max{9, 10} = 10. */
    d = step(a, 15, 5, 5, 40);
    assert_int_equal(d.desired, 10);
    osp_autoscale_destroy(a);
}

static void test_scale_up_within_period(void **state) {
    (void)state;
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init_hpa(&o);
    o.max_replicas = 50;
    o.period_s = 5; /* decisions every 5 s, policies still per 15 s */
    osp_autoscale_t *a = make(&o);
    assert_int_equal(step(a, 0, 2, 2, 200).desired, 6);  /* Max{2+4, 4} */
    /* t = 5: 4 added within 15 s → period start 2 → still 6. */
    osp_autoscale_decision_t d = step(a, 5, 6, 6, 200);
    assert_int_equal(d.desired, 6);
    /* t = 15: the t = 0 event is out; from 6: Max{10, 12} = 12. */
    assert_int_equal(step(a, 10, 6, 6, 200).desired, 6);
    assert_int_equal(step(a, 15, 6, 6, 200).desired, 12);
    osp_autoscale_destroy(a);
}

static void test_scale_down_stabilization(void **state) {
    (void)state;
    osp_autoscale_t *a = hpa(1, 10);
    assert_int_equal(step(a, 0, 4, 4, 16).desired, 4);
    /* Load drops to 4 (wants 1), but the 300 s window remembers 4. */
    for (int t = 15; t <= 285; t += 15) {
        osp_autoscale_decision_t d = step(a, t, 4, 4, 4);
        assert_int_equal(d.desired, 4);
        assert_non_null(strstr(d.rule, "scale-down stabilized"));
    }
    /* At t = 300 the t = 0 recommendation is out of (0, 300]: the highest
     * is 1; Percent 100 per 15 s allows (int)(4 × 0) = 0 → minReplicas 1. */
    assert_int_equal(step(a, 300, 4, 4, 4).desired, 1);
    osp_autoscale_destroy(a);
}

static void test_scale_down_rate(void **state) {
    (void)state;
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init_hpa(&o);
    o.down.stabilization_s = 0;
    o.down.n_policies = 2;
    o.down.policies[0] =
        (osp_autoscale_rate_t){OSP_AUTOSCALE_RATE_PERCENT, 50, 60};
    o.down.policies[1] = (osp_autoscale_rate_t){OSP_AUTOSCALE_RATE_PODS, 1, 60};
    osp_autoscale_t *a = make(&o);
    /* 9 → wants 1. Max (most change) of {Percent 50: (int)(9 × .5) = 4,
     * Pods 1: 8} → the lower, 4. */
    osp_autoscale_decision_t d = step(a, 0, 9, 9, 4);
    assert_int_equal(d.desired, 4);
    assert_non_null(strstr(d.rule, "scale-down limited by policy Percent 50/60s"));
    /* 15 s later: 5 removed within 60 s → period start 9 again → 4. */
    assert_int_equal(step(a, 15, 4, 4, 4).desired, 4);
    /* selectPolicy Min: the least change: Max{4, 8} = 8. */
    osp_autoscale_destroy(a);
    o.down.select = OSP_AUTOSCALE_SELECT_MIN;
    a = make(&o);
    assert_int_equal(step(a, 0, 9, 9, 4).desired, 8);
    osp_autoscale_destroy(a);
    /* Disabled: never down. */
    o.down.select = OSP_AUTOSCALE_SELECT_DISABLED;
    a = make(&o);
    assert_int_equal(step(a, 0, 9, 9, 4).desired, 9);
    osp_autoscale_destroy(a);
}

static void test_min_max(void **state) {
    (void)state;
    osp_autoscale_t *a = hpa(2, 5);
    osp_autoscale_decision_t d = step(a, 0, 7, 7, 100);
    assert_int_equal(d.desired, 5); /* above max: max, whatever the load */
    assert_non_null(strstr(d.rule, "above maxReplicas 5"));
    assert_int_equal(step(a, 15, 1, 1, 0).desired, 2); /* below min */
    /* 5 ready at 4 each wanting 50: capped at 5. */
    d = step(a, 30, 5, 5, 200);
    assert_int_equal(d.desired, 5);
    osp_autoscale_destroy(a);
}

static void test_hold_on_missing(void **state) {
    (void)state;
    osp_autoscale_t *a = hpa(1, 10);
    osp_autoscale_decision_t d = step(a, 0, 3, 3, NAN);
    assert_int_equal(d.desired, 3);
    assert_true(d.held);
    assert_non_null(strstr(d.rule, "held: no data for concurrency yet"));
    /* Data at 15, then nothing: the sample stays usable for stale_s (30 s)
     * and then the decision holds, never scaling down. */
    assert_int_equal(step(a, 15, 3, 3, 12).desired, 3);
    d = step(a, 60, 3, 3, NAN);
    assert_true(d.held);
    assert_int_equal(d.desired, 3);
    assert_non_null(strstr(d.rule, "no data for concurrency for 45 s"));
    osp_autoscale_destroy(a);
}

static void test_missing_blocks_scale_down(void **state) {
    (void)state;
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init_hpa(&o);
    o.down.stabilization_s = 0;
    o.n_targets = 2;
    o.targets[1] = (osp_autoscale_target_t){OSP_AUTOSCALE_METRIC_RPS, 10};
    osp_autoscale_t *a = make(&o);
    osp_autoscale_sample_t s = {.t_s = 0, .current = 4, .ready = 4};
    s.values[0] = 4;   /* concurrency says 1 */
    s.values[1] = NAN; /* rps missing */
    osp_autoscale_decision_t d;
    osp_autoscale_step(a, &s, &d);
    assert_int_equal(d.desired, 4);
    assert_true(d.held);
    /* ... but a scale-up with one metric missing goes ahead. */
    s.t_s = 15;
    s.values[0] = 40;
    osp_autoscale_step(a, &s, &d);
    assert_int_equal(d.desired, 8); /* Max{4 + 4, 8} = 8, wanted 10 */
    /* Two metrics: the larger wins. concurrency 8 → 2, rps 55 → 6. */
    s.t_s = 30;
    s.current = s.ready = 8;
    s.values[0] = 8;
    s.values[1] = 55;
    osp_autoscale_step(a, &s, &d);
    assert_int_equal(d.desired, 6);
    osp_autoscale_destroy(a);
}

static void test_unready(void **state) {
    (void)state;
    osp_autoscale_t *a = hpa(1, 10);
    /* 4 asked for, 2 ready, 12 in flight (target 4): 1.5 over the ready,
     * but counting the 2 starting ones at zero load 12 / 16 = 0.75: the
     * capacity that is coming is enough → hold 4. */
    assert_int_equal(step(a, 0, 4, 2, 12).desired, 4);
    /* 20 in flight: 20 / 16 = 1.25 → ceil(20 / 4) = 5. */
    assert_int_equal(step(a, 15, 4, 2, 20).desired, 5);
    /* Scale-down with 1 of 5 unready: it counts as at the target:
     * (4 + 4) / 20 = 0.4 → ceil(4 / 4 + 1) = 2 (stabilization holds it at
     * 5 for 300 s, so check the metric's own proposal). */
    osp_autoscale_decision_t d = step(a, 30, 5, 4, 4);
    assert_int_equal(d.metrics[0].desired, 2);
    /* No ready replica: nothing reports, wait. */
    assert_int_equal(step(a, 45, 2, 0, 50).metrics[0].desired, 2);
    osp_autoscale_destroy(a);
}

static void test_latency_metric(void **state) {
    (void)state;
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init_hpa(&o);
    o.targets[0] =
        (osp_autoscale_target_t){OSP_AUTOSCALE_METRIC_LATENCY_P95, 200};
    osp_autoscale_t *a = make(&o);
    /* p95 300 ms for target 200 with 3 ready: ceil(3 × 1.5) = 5. */
    assert_int_equal(step(a, 0, 3, 3, 300).desired, 5);
    osp_autoscale_destroy(a);
}

static void test_panic(void **state) {
    (void)state;
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init(&o);
    o.max_replicas = 20;
    osp_autoscale_t *a = make(&o);
    /* Steady: 2 ready at 8 in flight (target 4 each) → 2. */
    int cur = 2;
    for (int t = 0; t < 20; t++)
        cur = step(a, t, cur, cur, 8).desired;
    assert_int_equal(cur, 2);
    /* t = 20: one sample of 40 in the 6 s window: (5 × 8 + 40) / 6 = 13.3,
     * 1.67 × what 2 ready take: no panic yet. */
    osp_autoscale_decision_t d = step(a, 20, 2, 2, 40);
    assert_false(d.panic);
    assert_int_equal(d.desired, 2);
    /* t = 21: (4 × 8 + 2 × 40) / 6 = 18.67 > 2 × 4 × 2 → panic, at once,
     * no rate policy, to the edge of the tolerance band: ceil(18.67 /
     * (4 × 1.2)) = 4. */
    d = step(a, 21, 2, 2, 40);
    assert_true(d.panic);
    assert_int_equal(d.desired, 4);
    assert_non_null(strstr(d.rule, "panic: concurrency"));
    /* t = 22: 2 of the 4 are starting; in-flight grows by itself until they
     * are ready, so panic does not ask for more yet (and never less). */
    d = step(a, 22, 4, 2, 40);
    assert_true(d.panic);
    assert_int_equal(d.desired, 4);
    /* t = 23, all 4 ready: (2 × 8 + 4 × 40) / 6 = 29.3, 1.83 × what 4 take
     * (beyond twice the tolerance) → ceil(29.3 / 4.8) = 7, still in panic
     * (the last over-threshold sample was at t = 22). */
    d = step(a, 23, 4, 4, 40);
    assert_true(d.panic);
    assert_int_equal(d.desired, 7);
    /* Load drops to 4 from t = 24. Panic lasts until 60 s after t = 22,
     * and no scale-down happens while it lasts. */
    cur = 7;
    for (int t = 24; t < 82; t++) {
        d = step(a, t, cur, cur, 4);
        assert_true(d.panic);
        assert_int_equal(d.desired, 7);
    }
    d = step(a, 82, 7, 7, 4);
    assert_false(d.panic);
    /* Then the HPA's scale-down window decides: at t = 90 the highest
     * recommendation of the last 300 s is t = 30's (its period average
     * (4 × 8 + 4 × 40 + 7 × 4) / 15 = 14.67 → 4). */
    cur = 7;
    for (int t = 83; t < 200; t++) {
        d = step(a, t, cur, cur, 4);
        cur = d.desired;
        assert_int_equal(cur, t < 90 ? 7 : 4);
    }
    osp_autoscale_destroy(a);
}

static void test_panic_off_is_hpa(void **state) {
    (void)state;
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init_hpa(&o);
    osp_autoscale_t *a = make(&o);
    for (int t = 0; t < 14; t++)
        step(a, t, 2, 2, 8);
    osp_autoscale_decision_t d = step(a, 14, 2, 2, 400);
    assert_false(d.panic);
    assert_int_equal(d.desired, 2); /* not a period boundary */
    d = step(a, 15, 2, 2, 400);
    /* The period average (t in (0, 15]: 13 × 8 + 2 × 400) / 15 = 60.3 →
     * wants 16; Max{2 + 4, 4} = 6. */
    assert_int_equal(d.desired, 6);
    osp_autoscale_destroy(a);
}

static void test_external_change_respected(void **state) {
    (void)state;
    osp_autoscale_t *a = hpa(1, 10);
    assert_int_equal(step(a, 0, 3, 3, 12).desired, 3);
    /* Someone scaled to 6 by hand; the load fits 6 within tolerance
     * (22 / 24 = 0.92): 6 stays. */
    assert_int_equal(step(a, 15, 6, 6, 22).desired, 6);
    osp_autoscale_destroy(a);
}

static void test_config_json(void **state) {
    (void)state;
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init(&o);
    osp_err_t err = {0};
    const char *hpa_manifest =
        "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","
        "\"metadata\":{\"name\":\"x\"},\"spec\":{\"scaleTargetRef\":{\"kind\":"
        "\"Deployment\",\"name\":\"w\"},\"minReplicas\":2,\"maxReplicas\":9,"
        "\"metrics\":[{\"type\":\"Pods\"}],"
        "\"behavior\":{\"scaleDown\":{\"stabilizationWindowSeconds\":60,"
        "\"selectPolicy\":\"Min\",\"policies\":[{\"type\":\"Pods\",\"value\":1,"
        "\"periodSeconds\":30},{\"type\":\"Percent\",\"value\":10,"
        "\"periodSeconds\":60}]}}}}";
    assert_int_equal(osp_autoscale_opts_parse_json(&o, hpa_manifest, &err), 0);
    assert_int_equal(o.min_replicas, 2);
    assert_int_equal(o.max_replicas, 9);
    assert_int_equal(o.down.stabilization_s, 60);
    assert_int_equal(o.down.select, OSP_AUTOSCALE_SELECT_MIN);
    assert_int_equal(o.down.n_policies, 2);
    assert_int_equal(o.down.policies[1].type, OSP_AUTOSCALE_RATE_PERCENT);
    assert_int_equal(o.down.policies[1].period_s, 60);
    /* Untouched: scale-up keeps the HPA defaults, the metric its own. */
    assert_int_equal(o.up.n_policies, 2);
    assert_int_equal(o.targets[0].metric, OSP_AUTOSCALE_METRIC_CONCURRENCY);

    const char *own = "{\"metrics\":[{\"name\":\"rps\",\"target\":25},"
                      "{\"name\":\"latency-p95\"}],\"panic\":{\"enabled\":false}}";
    assert_int_equal(osp_autoscale_opts_parse_json(&o, own, &err), 0);
    assert_int_equal(o.n_targets, 2);
    assert_true(o.targets[0].target == 25);
    assert_true(o.targets[1].target == 500);
    assert_false(o.panic);

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"behavior\":{\"scaleUp\":{\"policies\":[{\"type\":\"pods\","
         "\"value\":1,\"periodSeconds\":15}]}}}",
         "behavior.scaleUp.policies[0].type: \"pods\" is not Pods or Percent"},
        {"{\"behavior\":{\"scaleUp\":{\"policies\":[{\"type\":\"Pods\","
         "\"value\":1,\"periodSeconds\":0}]}}}",
         "behavior.scaleUp.policies[0].periodSeconds: 0 is not in 1..1800"},
        {"{\"behavior\":{\"scaleDown\":{\"stabilizationWindowSecond\":5}}}",
         "behavior.scaleDown.stabilizationWindowSecond: unknown field"},
        {"{\"minReplicas\":5,\"maxReplicas\":2}",
         "maxReplicas: 2 is below minReplicas 5"},
        {"{\"metrics\":[{\"name\":\"cpu\"}]}", "metrics[0].name"},
        {"[1]", "not a JSON object"},
        {"{\"minReplicas\":", "line 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        osp_autoscale_opts_init(&o);
        assert_true(osp_autoscale_opts_parse_json(&o, bad[i].json, &err) < 0);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
    }
}

static void test_config_yaml(void **state) {
    (void)state;
    /* A Kubernetes manifest as users keep them: several documents, the HPA
     * second, flow and block styles mixed. */
    static const char yaml[] =
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n---\n"
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
        "metadata:\n  name: w\nspec:\n"
        "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: w}\n"
        "  minReplicas: 2\n  maxReplicas: 8\n  behavior:\n"
        "    scaleDown:\n      stabilizationWindowSeconds: 120\n"
        "      selectPolicy: \"Max\"\n      policies:\n"
        "      - type: Pods\n        value: 1\n        periodSeconds: 60\n";
    char path[] = "/tmp/osp_test_hpa_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, sizeof yaml - 1), (ssize_t)sizeof yaml - 1);
    close(fd);
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init(&o);
    osp_err_t err = {0};
    if (osp_autoscale_opts_load(&o, path, &err))
        fail_msg("load: %s", err.msg);
    assert_int_equal(o.min_replicas, 2);
    assert_int_equal(o.max_replicas, 8);
    assert_int_equal(o.down.stabilization_s, 120);
    assert_int_equal(o.down.n_policies, 1);
    assert_int_equal(o.down.policies[0].type, OSP_AUTOSCALE_RATE_PODS);
    assert_int_equal(o.down.policies[0].period_s, 60);
    /* A quoted number is a string in YAML: the field's type check sees it. */
    FILE *f = fopen(path, "w");
    fputs("spec:\n  minReplicas: \"2\"\n", f);
    fclose(f);
    assert_true(osp_autoscale_opts_load(&o, path, &err) < 0);
    assert_non_null(strstr(err.msg, "minReplicas: not an integer"));
    f = fopen(path, "w");
    fputs("spec:\n  minReplicas: [1\n", f);
    fclose(f);
    assert_true(osp_autoscale_opts_load(&o, path, &err) < 0);
    assert_non_null(strstr(err.msg, "YAML line"));
    unlink(path);
}

static void test_names(void **state) {
    (void)state;
    for (int m = 0; m < OSP_AUTOSCALE_METRIC_COUNT; m++) {
        osp_autoscale_metric_t back;
        assert_int_equal(osp_autoscale_metric_parse(
                             osp_autoscale_metric_name(m), &back), 0);
        assert_int_equal(back, m);
    }
    osp_autoscale_policy_t p;
    assert_int_equal(osp_autoscale_policy_parse("hpa", &p), 0);
    assert_int_equal(p, OSP_AUTOSCALE_POLICY_HPA);
    assert_int_equal(osp_autoscale_policy_parse("HPA", &p), OSP_EINVAL);
}

/* ---- the simulator ---------------------------------------------------- */

static osp_load_profile_t *trace(const char *csv) {
    osp_load_profile_t *p = osp_load_profile_create();
    osp_err_t err = {0};
    if (osp_load_profile_parse_trace(p, csv, strlen(csv), "t", &err))
        fail_msg("trace: %s", err.msg);
    return p;
}

static void test_trace_csv(void **state) {
    (void)state;
    osp_load_profile_t *p = trace("t_s,rps\n0,10\n60,40\n# comment\n90,10\n");
    assert_true(osp_load_profile_duration_s(p) == 91);
    assert_true(osp_load_profile_rate_at(p, 59.5) == 10);
    assert_true(osp_load_profile_rate_at(p, 60.5) == 40);
    assert_true(osp_load_profile_rate_at(p, 90.5) == 10);
    osp_load_profile_destroy(p);
    /* osprey load's timeseries.csv: one second per row, rate = sent. */
    p = trace("second,target,sent,completed\n0,5,4,4\n1,5,6,6\n");
    assert_true(osp_load_profile_duration_s(p) == 2);
    assert_true(osp_load_profile_rate_at(p, 1.5) == 6);
    osp_load_profile_destroy(p);
    osp_load_profile_t *q = osp_load_profile_create();
    osp_err_t err = {0};
    assert_true(osp_load_profile_parse_trace(q, "t_s,rps\n0,1\n0,2\n", 16, "f",
                                        &err) < 0);
    assert_non_null(strstr(err.msg, "f:3: t_s 0 does not follow 0"));
    assert_true(osp_load_profile_parse_trace(q, "a,b\n0,1\n", 8, "f", &err) < 0);
    assert_non_null(strstr(err.msg, "needs the columns t_s,rps"));
    osp_load_profile_destroy(q);
}

static void run_sim(const osp_load_profile_t *p, osp_autoscale_policy_t pol,
                    osp_autoscale_sim_result_t *r) {
    osp_autoscale_sim_opts_t so;
    osp_autoscale_sim_opts_init(&so);
    so.trace = p;
    so.capacity_rps = 10;
    so.startup_s = 5;
    so.slo_ms = 500;
    osp_autoscale_opts_t o;
    osp_autoscale_opts_init(&o);
    o.max_replicas = 20;
    o.targets[0] = (osp_autoscale_target_t){OSP_AUTOSCALE_METRIC_RPS, 8};
    osp_err_t err = {0};
    if (osp_autoscale_simulate(&so, &o, pol, r, &err))
        fail_msg("simulate: %s", err.msg);
}

static void test_sim(void **state) {
    (void)state;
    /* A step ×4 at 60 s: 8 → 32 requests/s, workers of 10/s, target 8/s
     * each (80 %): 1 worker before, 4 after. */
    osp_load_profile_t *p = trace("t_s,rps\n0,8\n60,32\n599,32\n");
    osp_autoscale_sim_result_t a, b, h, t;
    run_sim(p, OSP_AUTOSCALE_POLICY_OSPREY, &a);
    run_sim(p, OSP_AUTOSCALE_POLICY_OSPREY, &b);
    /* Deterministic for a seed. */
    assert_int_equal(a.requests, b.requests);
    assert_int_equal(a.slo_violations, b.slo_violations);
    assert_true(a.replica_seconds == b.replica_seconds);
    /* About 8 × 60 + 32 × 540 requests arrive (Poisson). */
    assert_true(a.requests > 17000 && a.requests < 18000);
    assert_int_equal(a.n_steps, 1);
    assert_true(a.step_t_s[0] == 60);
    /* Both end at 4 workers; osprey's panic gets there sooner (well
     * before the HPA's next 15 s decision plus start-up), so fewer
     * requests miss the SLO, for about the same cost. */
    run_sim(p, OSP_AUTOSCALE_POLICY_HPA, &h);
    assert_int_equal(a.max_replicas, 4);
    assert_int_equal(h.max_replicas, 4);
    assert_true(a.time_to_capacity_s[0] > 5 && a.time_to_capacity_s[0] < 15);
    assert_true(h.time_to_capacity_s[0] > a.time_to_capacity_s[0]);
    assert_true(a.slo_violations < h.slo_violations);
    assert_true(a.replica_seconds <= 1.1 * h.replica_seconds);
    /* The threshold policy steps one replica per period and flaps. */
    run_sim(p, OSP_AUTOSCALE_POLICY_THRESHOLD, &t);
    assert_true(t.direction_changes > a.direction_changes);
    assert_int_equal(a.direction_changes, 0);
    osp_load_profile_destroy(p);
}

/* ---- the embedded source ---------------------------------------------- */

static const char page1[] =
    "# TYPE osprey_dispatch_inflight gauge\n"
    "osprey_dispatch_inflight{backend=\"127.0.0.1:9001\"} 3\n"
    "osprey_dispatch_inflight{backend=\"127.0.0.1:9002\"} 2\n"
    "osprey_dispatch_queue_depth{model=\"m\"} 1\n"
    "osprey_dispatch_requests_total{model=\"m\",code=\"200\"} 100\n"
    "osprey_dispatch_requests_total{model=\"m\",code=\"503\"} 4\n"
    "osprey_dispatch_request_duration_seconds_bucket{le=\"0.1\"} 50\n"
    "osprey_dispatch_request_duration_seconds_bucket{le=\"0.5\"} 90\n"
    "osprey_dispatch_request_duration_seconds_bucket{le=\"+Inf\"} 104\n"
    "osprey_dispatch_request_duration_seconds_count 104\n";
static const char page2[] =
    "osprey_dispatch_inflight{backend=\"127.0.0.1:9001\"} 7\n"
    "osprey_dispatch_requests_total{model=\"m\",code=\"200\"} 296\n"
    "osprey_dispatch_requests_total{model=\"m\",code=\"503\"} 8\n"
    "osprey_dispatch_request_duration_seconds_bucket{le=\"0.1\"} 50\n"
    "osprey_dispatch_request_duration_seconds_bucket{le=\"0.5\"} 250\n"
    "osprey_dispatch_request_duration_seconds_bucket{le=\"+Inf\"} 304\n";

static void test_source_values(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_autoscale_reading_t a, b;
    osp_autoscale_reading_init(&a, 10);
    assert_int_equal(osp_autoscale_read_dispatcher(&a, page1, strlen(page1),
                                                   &err), 0);
    osp_autoscale_reading_init(&b, 14);
    assert_int_equal(osp_autoscale_read_dispatcher(&b, page2, strlen(page2),
                                                   &err), 0);
    /* In flight + queued at the dispatcher: 3 + 2 + 1, then 7. */
    assert_true(osp_autoscale_value(OSP_AUTOSCALE_METRIC_CONCURRENCY, NULL,
                                    &a) == 6);
    assert_true(osp_autoscale_value(OSP_AUTOSCALE_METRIC_CONCURRENCY, &a,
                                    &b) == 7);
    /* (304 - 104) requests in 4 s. */
    assert_true(osp_autoscale_value(OSP_AUTOSCALE_METRIC_RPS, &a, &b) == 50);
    assert_true(isnan(osp_autoscale_value(OSP_AUTOSCALE_METRIC_RPS, NULL, &b)));
    /* The interval's buckets: 0 ≤ 0.1 s, 160 ≤ 0.5 s, 200 in all. Rank
     * 0.95 × 200 = 190 falls in +Inf → the highest finite bound, 500 ms. */
    assert_true(osp_autoscale_value(OSP_AUTOSCALE_METRIC_LATENCY_P95, &a,
                                    &b) == 500);
    /* Interpolation inside a bucket: cum {10, 100, 100}: rank 95 is 85/90
     * of the way from 0.1 to 0.5 → 0.1 + 0.4 × 85 / 90. */
    double le[] = {0.1, 0.5, INFINITY}, cum[] = {10, 100, 100};
    assert_float_equal(osp_autoscale_quantile(0.95, le, cum, 3),
                       0.1 + 0.4 * 85.0 / 90.0, 1e-12);
    double empty[] = {0, 0, 0};
    assert_true(isnan(osp_autoscale_quantile(0.95, le, empty, 3)));
    /* A counter that went down: the dispatcher restarted; Prometheus's
     * increase() counts from 0 → 304 / 4. */
    osp_autoscale_reading_t c = b;
    c.t_s = 18;
    c.requests = 100;
    assert_true(osp_autoscale_value(OSP_AUTOSCALE_METRIC_RPS, &b, &c) == 25);
    /* Workers' queues; none read → missing. */
    assert_true(isnan(osp_autoscale_value(OSP_AUTOSCALE_METRIC_QUEUE, &a, &b)));
    const char *w = "osprey_queue_depth{model=\"m\"} 3\n";
    assert_int_equal(osp_autoscale_read_worker(&b, w, strlen(w), &err), 0);
    assert_int_equal(osp_autoscale_read_worker(&b, w, strlen(w), &err), 0);
    assert_true(osp_autoscale_value(OSP_AUTOSCALE_METRIC_QUEUE, &a, &b) == 6);
    /* No dispatcher page: everything from it is missing. */
    osp_autoscale_reading_t none;
    osp_autoscale_reading_init(&none, 20);
    assert_true(isnan(osp_autoscale_value(OSP_AUTOSCALE_METRIC_CONCURRENCY,
                                          &b, &none)));
    assert_true(osp_autoscale_read_dispatcher(&none, "x{", 2, &err) < 0);
    assert_false(none.dispatcher_ok);
    char q[256];
    assert_string_equal(osp_autoscale_promql(OSP_AUTOSCALE_METRIC_RPS, 30, q,
                                             sizeof q),
                        "sum(rate(osprey_dispatch_requests_total[30s]))");
    assert_null(osp_autoscale_promql(OSP_AUTOSCALE_METRIC_QUERY, 30, q,
                                     sizeof q));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tolerance_band),
        cmocka_unit_test(test_scale_up_policies),
        cmocka_unit_test(test_scale_up_within_period),
        cmocka_unit_test(test_scale_down_stabilization),
        cmocka_unit_test(test_scale_down_rate),
        cmocka_unit_test(test_min_max),
        cmocka_unit_test(test_hold_on_missing),
        cmocka_unit_test(test_missing_blocks_scale_down),
        cmocka_unit_test(test_unready),
        cmocka_unit_test(test_latency_metric),
        cmocka_unit_test(test_panic),
        cmocka_unit_test(test_panic_off_is_hpa),
        cmocka_unit_test(test_external_change_respected),
        cmocka_unit_test(test_config_json),
        cmocka_unit_test(test_config_yaml),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_trace_csv),
        cmocka_unit_test(test_sim),
        cmocka_unit_test(test_source_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
