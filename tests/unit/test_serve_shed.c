/* test_serve_shed.c — the worker's load-shedding controller (src/serve/
 * shed.c) on synthetic times, so every rule is checked without a clock:
 * off when the target is 0; a burst shorter than the interval is not shed;
 * a delay above the target for an interval starts shedding; while shedding
 * requests are admitted only below drain rate × target; it stops after ten
 * calm intervals once the delay is under the target, not after one, and
 * not because the batcher emptied the queue; an idle queue ends it; the
 * shed demand accumulates. */
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

/* Drives a standing queue: samples of `delay_s` every 10 ms with 20 images
 * ahead, from t0 for dur ms; returns the time after. */
static uint64_t standing(osp__serve_shed_t *c, uint64_t t0, uint64_t dur,
                         double delay_s, int *started) {
    uint64_t t;
    for (t = t0; t < t0 + dur; t += 10)
        if (osp__serve_shed_observe(c, delay_s, 0.01, 20, t * MS) > 0)
            (*started)++;
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
    /* 20 images ahead drained in 0.2 s: 100 images/s (the burst's end,
     * 2 in 0.05 s = 40/s, still weighs in the average); × 0.1 s ≈ 9. */
    assert_true(rate > 80 && rate < 100);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_burst_then_overload),
        cmocka_unit_test(test_stop_rules),
        cmocka_unit_test(test_idle_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
