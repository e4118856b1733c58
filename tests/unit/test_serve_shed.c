/* test_serve_shed.c — the worker's load-shedding controller (src/serve/
 * shed.c) on synthetic times, so every rule is checked without a clock:
 * off when the target is 0; a burst shorter than the interval is not shed;
 * a delay above the target for an interval starts shedding; while shedding
 * requests are admitted only below drain rate × target; it stops after ten
 * calm intervals once the delay is under the target, not after one, and
 * not because the batcher emptied the queue; an idle queue ends it; the
 * shed demand accumulates; the drain rate is right when images leave in
 * batches (most wait only for the rest of the running batch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "serve/serve_int.h"

#define MS 1000000ull

static bool admit(osp__serve_shed_t *c, int depth, uint64_t t, int *change) {
    double limit;
    return osp__serve_shed_admit(c, depth, t, change, &limit);
}

static void test_off(void **state) {
    (void)state;
    osp__serve_shed_t c;
    osp__serve_shed_init(&c, 0, 100);
    int ch;
    for (uint64_t t = 1; t < 2000; t += 10) {
        assert_int_equal(osp__serve_shed_observe(&c, 5.0, 0.01, 200, t * MS), 0);
        assert_true(admit(&c, 250, t * MS, &ch));
    }
    osp__serve_shed_fini(&c);
}

/* Drives a standing queue: a batch of one image ends every 10 ms with
 * more waiting (100 images/s), each image having waited `delay_s` with 20
 * ahead, from t0 for dur ms; returns the time after. */
static uint64_t standing(osp__serve_shed_t *c, uint64_t t0, uint64_t dur,
                         double delay_s, int *started) {
    uint64_t t;
    for (t = t0; t < t0 + dur; t += 10) {
        osp__serve_shed_batch(c, 1, true, t * MS);
        if (osp__serve_shed_observe(c, delay_s, 0.01, 20, t * MS) > 0)
            (*started)++;
    }
    return t;
}

static void test_burst_then_overload(void **state) {
    (void)state;
    osp__serve_shed_t c;
    osp__serve_shed_init(&c, 100, 100);
    int started = 0, ch;
    /* 80 ms above the target, then one sample under it: a burst. */
    uint64_t t = standing(&c, 1000, 80, 0.2, &started);
    osp__serve_shed_observe(&c, 0.05, 0.01, 2, t * MS);
    assert_int_equal(started, 0);
    assert_true(admit(&c, 100, t * MS, &ch));
    /* Above the target for longer than the interval: shedding. */
    t = standing(&c, t + 10, 150, 0.2, &started);
    assert_int_equal(started, 1);
    bool on;
    double d, rate;
    uint64_t w;
    osp__serve_shed_read(&c, -1, 0, &on, &d, &rate, &w);
    assert_true(on);
    /* One image every 10 ms: 100 images/s (the 20 ms around the burst's
     * end still weighs in the average); × 0.1 s: fewer than 10 admitted. */
    assert_true(rate > 90 && rate < 100);
    assert_false(admit(&c, 10, t * MS, &ch));
    assert_true(admit(&c, 5, t * MS, &ch));
    assert_int_equal(ch, 0);
    /* The refusal counted one admitted latency (0.21 s) of demand. */
    osp__serve_shed_read(&c, -1, 0, &on, &d, &rate, &w);
    assert_true(w > 200 * MS && w < 220 * MS);
    osp__serve_shed_fini(&c);
}

static void test_stop_rules(void **state) {
    (void)state;
    osp__serve_shed_t c;
    osp__serve_shed_init(&c, 100, 100);
    int started = 0, ch;
    uint64_t t = standing(&c, 1000, 200, 0.3, &started);
    assert_int_equal(started, 1);
    assert_false(admit(&c, 50, t * MS, &ch)); /* last refusal at t */
    /* One calm interval with the delay under the target: still shedding
     * (waves of returning clients); an empty queue right after a batch
     * with a fresh sample above the target does not end it either. */
    osp__serve_shed_observe(&c, 0.3, 0.01, 0, (t + 150) * MS);
    assert_true(admit(&c, 0, (t + 150) * MS, &ch));
    assert_int_equal(ch, 0);
    osp__serve_shed_observe(&c, 0.05, 0.01, 1, (t + 200) * MS);
    assert_true(admit(&c, 1, (t + 200) * MS, &ch));
    assert_int_equal(ch, 0);
    /* Ten intervals after the last refusal, delay under the target: off. */
    assert_int_equal(osp__serve_shed_observe(&c, 0.05, 0.01, 1,
                                             (t + 1000) * MS), -1);
    assert_true(admit(&c, 200, (t + 1000) * MS, &ch));
    osp__serve_shed_fini(&c);
}

static void test_idle_ends(void **state) {
    (void)state;
    osp__serve_shed_t c;
    osp__serve_shed_init(&c, 100, 100);
    int started = 0, ch;
    uint64_t t = standing(&c, 1000, 200, 0.3, &started);
    assert_false(admit(&c, 50, t * MS, &ch));
    /* No traffic: the last sample (0.3 s) is stale; the scrape ends it
     * once the queue is empty and ten intervals passed. */
    bool on;
    double d, rate;
    uint64_t w;
    assert_int_equal(osp__serve_shed_read(&c, 3, (t + 2000) * MS, &on, &d,
                                          &rate, &w), 0);
    assert_true(on);
    assert_int_equal(osp__serve_shed_read(&c, 0, (t + 2000) * MS, &on, &d,
                                          &rate, &w), -1);
    assert_false(on);
    osp__serve_shed_fini(&c);
}

/* The drain rate the controller uses now, images/s. */
static double rate_of(osp__serve_shed_t *c) {
    bool on;
    double d, rate;
    uint64_t w;
    osp__serve_shed_read(c, -1, 0, &on, &d, &rate, &w);
    return rate;
}

/* The drain rate within 3% of want images/s; what names the moment. */
static void expect_rate(osp__serve_shed_t *c, double want, const char *what) {
    double rate = rate_of(c);
    if (rate < want * 0.97 || rate > want * 1.03)
        fail_msg("%s: %.1f images/s, want %.0f +- 3%%", what, rate, want);
}

/* n busy batches of 8, one every dt ns from *t on (*t advances). */
static void batches(osp__serve_shed_t *c, int n, uint64_t dt, uint64_t *t) {
    for (int b = 0; b < n; b++) {
        *t += dt;
        osp__serve_shed_batch(c, 8, true, *t);
    }
}

/* A model that runs batches of 8 back to back, 50 ms each (160
 * images/s), fed by closed-loop clients that come back just after a batch
 * started: each image arrives with 0..7 ahead (the queue was just
 * emptied) and waits the rest of the running batch, ~40..50 ms. The
 * estimators before read the rate from such samples — images ahead over
 * their wait, ~71/s whether as a ratio of averages or an average of
 * ratios — where the engine serves 160/s: the rate must come from the
 * batches. An idle gap (a batch that ended with nothing waiting, the next
 * a second later) says nothing about the speed and must not count. */
static void test_rate_batches(void **state) {
    (void)state;
    osp__serve_shed_t c;
    osp__serve_shed_init(&c, 100, 100);
    double ahead_sum = 0, wait_sum = 0, ratio_sum = 0;
    int n = 0, started = 0;
    uint64_t t = 1000 * MS;
    for (int b = 0; b < 200; b++, t += 50 * MS) {
        osp__serve_shed_batch(&c, 8, true, t);
        for (int k = 0; k < 8; k++) { /* arrive t + k/4 ms, start t + 50 */
            double wait_s = 0.05 - (double)k * 0.00025;
            if (osp__serve_shed_observe(&c, wait_s, 0.05, k,
                                        t + 50 * MS) > 0)
                started++;
            ahead_sum += k;
            wait_sum += wait_s;
            ratio_sum += k / wait_s;
            n++;
        }
    }
    /* What the waiting images say (the earlier estimators), far off: */
    assert_true(ahead_sum / wait_sum < 100 && ratio_sum / n < 100);
    expect_rate(&c, 160, "drain rate");
    /* An idle second, then busy again: still the busy rate. */
    osp__serve_shed_batch(&c, 8, false, t);
    osp__serve_shed_batch(&c, 8, true, t + 1000 * MS);
    osp__serve_shed_batch(&c, 8, true, t + 1050 * MS);
    expect_rate(&c, 160, "after an idle gap");
    /* Waits of ~50 ms under the 100 ms target: no shedding. */
    assert_int_equal(started, 0);
    osp__serve_shed_fini(&c);
}

/* The host halves its speed (batches of 8 every 50 ms, then every 100):
 * the drain rate, hence the admission limit, follows within two batches —
 * the images already admitted are all that wait twice as long. When it
 * speeds up again the rate rises only as its ten-batch average does. */
static void test_rate_slowdown(void **state) {
    (void)state;
    osp__serve_shed_t c;
    osp__serve_shed_init(&c, 100, 100);
    uint64_t t = 950 * MS;
    batches(&c, 100, 50 * MS, &t);
    expect_rate(&c, 160, "steady");
    batches(&c, 2, 100 * MS, &t); /* two batches at half speed */
    double rate = rate_of(&c);
    if (rate > 80 * 1.35)
        fail_msg("two slow batches: %.1f images/s, want <= 108 (the slow "
                 "rate is 80)", rate);
    batches(&c, 30, 100 * MS, &t);
    expect_rate(&c, 80, "slow");
    batches(&c, 1, 50 * MS, &t); /* one fast batch again: the limit waits */
    rate = rate_of(&c);
    if (rate > 80 * 1.15)
        fail_msg("one fast batch: %.1f images/s, want <= 92", rate);
    batches(&c, 60, 50 * MS, &t);
    expect_rate(&c, 160, "fast again");
    osp__serve_shed_fini(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_burst_then_overload),
        cmocka_unit_test(test_stop_rules),
        cmocka_unit_test(test_idle_ends),
        cmocka_unit_test(test_rate_batches),
        cmocka_unit_test(test_rate_slowdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
