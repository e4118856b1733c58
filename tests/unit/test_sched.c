/* test_sched.c — the scheduler on a tiny hand-built model (global average
 * pool: output[c] = mean of input channel c, so each request's answer is
 * known exactly and a wrong split between batch rows shows): batching happens
 * under concurrent submitters, every accepted request completes with its own
 * answer, a full queue refuses with OSP_EBUSY, a deadline passing in the
 * queue gives OSP_ETIMEDOUT, and destroy drains the queue; the
 * asynchronous osp_sched_submit calls back once per call with the same
 * answers, on time for deadlines, and never for a refused call; with
 * wait_for_expected a batch waits only for announced requests. */
#include "engine_testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "osprey/sched.h"

#define C 3
#define HW 8
#define SAMPLE (C * HW * HW)

static osp_engine_t *make_engine(void) {
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 4, D(-1, C, HW, HW));
    int y = tu_node(g, OSP_OP_GLOBAL_AVGPOOL, I(x), 1, NULL);
    tu_output(g, y);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 1;
    o.precision = OSP_PREC_FP32;
    return tu_engine(g, &o);
}

/* Request `id`: channel c is filled with id * 10 + c. */
static float *make_input(int id) {
    float *x = malloc(sizeof(float) * SAMPLE);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < HW * HW; i++)
            x[c * HW * HW + i] = (float)(id * 10 + c);
    return x;
}

static void check_result(const osp_sched_result_t *r, int id) {
    assert_int_equal(r->status, 0);
    assert_int_equal(r->n_scores, C);
    for (int c = 0; c < C; c++)
        if (fabsf(r->scores[c] - (float)(id * 10 + c)) > 1e-3f)
            fail_msg("request %d channel %d: %g", id, c, (double)r->scores[c]);
}

static atomic_int max_batch_seen, batches_run, sleep_ms_in_batch, in_batch;

static void on_batch(int n, double s, void *ud) {
    (void)s;
    (void)ud;
    int m = atomic_load(&max_batch_seen);
    while (n > m && !atomic_compare_exchange_weak(&max_batch_seen, &m, n)) {
    }
    atomic_fetch_add(&batches_run, 1);
    atomic_store(&in_batch, 1);
    int ms = atomic_load(&sleep_ms_in_batch);
    if (ms)
        usleep((useconds_t)ms * 1000); /* keeps the instance busy */
}

typedef struct {
    osp_sched_t *s;
    int first_id, n_req;
    int ok;
    int busy;
} worker_t;

static void *worker(void *p) {
    worker_t *w = p;
    for (int k = 0; k < w->n_req; k++) {
        int id = w->first_id + k;
        float *x = make_input(id);
        const void *in[1] = {x};
        osp_sched_result_t r;
        osp_err_t err = {0};
        int rc = osp_sched_run(w->s, in, 1, 0, &r, &err);
        if (rc == OSP_EBUSY) {
            w->busy++;
        } else {
            assert_int_equal(rc, 0);
            check_result(&r, id);
            free(r.scores);
            w->ok++;
        }
        free(x);
    }
    return NULL;
}

static void test_batching(void **state) {
    (void)state;
    osp_engine_t *e[2] = {make_engine(), make_engine()};
    osp_sched_opts_t o;
    osp_sched_opts_init(&o);
    o.max_batch = 8;
    o.max_queue_delay_us = 3000;
    o.max_queue_size = 64;
    o.on_batch = on_batch;
    atomic_store(&max_batch_seen, 0);
    atomic_store(&batches_run, 0);
    atomic_store(&sleep_ms_in_batch, 0);
    osp_err_t err = {0};
    osp_sched_t *s = osp_sched_create(e, 2, &o, &err);
    if (!s)
        fail_msg("%s", err.msg);
    assert_int_equal(osp_sched_sample_bytes(s), SAMPLE * sizeof(float));
    assert_int_equal(osp_sched_warmup(s, &err), 0);
    enum { NT = 16, PER = 25 };
    pthread_t th[NT];
    worker_t w[NT];
    for (int i = 0; i < NT; i++) {
        w[i] = (worker_t){s, i * 1000, PER, 0, 0};
        pthread_create(&th[i], NULL, worker, &w[i]);
    }
    int ok = 0;
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        assert_int_equal(w[i].busy, 0); /* queue of 64 >= 16 submitters */
    }
    assert_int_equal(ok, NT * PER);
    assert_true(atomic_load(&max_batch_seen) > 1);
    assert_true(atomic_load(&max_batch_seen) <= 8);
    assert_true(atomic_load(&batches_run) < NT * PER);
    assert_int_equal(osp_sched_queue_depth(s), 0);

    /* Several requests in one call (more than max_batch). */
    float *xs[11];
    const void *in[11];
    for (int i = 0; i < 11; i++)
        in[i] = xs[i] = make_input(500 + i);
    osp_sched_result_t r[11];
    assert_int_equal(osp_sched_run(s, in, 11, 0, r, &err), 0);
    for (int i = 0; i < 11; i++) {
        check_result(&r[i], 500 + i);
        assert_true(r[i].batch >= 1 && r[i].batch <= 8);
        free(r[i].scores);
        free(xs[i]);
    }
    osp_sched_destroy(s);
    osp_engine_destroy(e[0]);
    osp_engine_destroy(e[1]);
}

typedef struct {
    osp_sched_t *s;
    int id;
    uint64_t deadline_ns;
    int rc;
    osp_sched_result_t r;
    atomic_int done; /* set once osp_sched_run returned */
} one_t;

static void *submit_one(void *p) {
    one_t *a = p;
    float *x = make_input(a->id);
    const void *in[1] = {x};
    a->rc = osp_sched_run(a->s, in, 1, a->deadline_ns, &a->r, NULL);
    free(x);
    atomic_store(&a->done, 1);
    return NULL;
}

static void test_queue_full_and_deadline(void **state) {
    (void)state;
    osp_engine_t *e = make_engine();
    osp_sched_opts_t o;
    osp_sched_opts_init(&o);
    o.max_batch = 1;
    o.max_queue_delay_us = 0;
    o.max_queue_size = 2;
    o.on_batch = on_batch;
    /* Long enough that a loaded machine still gets the checks below done
     * while A runs. */
    atomic_store(&sleep_ms_in_batch, 1500);
    atomic_store(&in_batch, 0);
    osp_err_t err = {0};
    osp_sched_t *s = osp_sched_create(&e, 1, &o, &err);
    assert_non_null(s);
    /* A occupies the instance (its batch hook sleeps). */
    one_t a = {.s = s, .id = 1, .rc = -99};
    pthread_t ta, tb, tc;
    pthread_create(&ta, NULL, submit_one, &a);
    for (int k = 0; k < 1000 && !atomic_load(&in_batch); k++)
        usleep(5000);
    assert_true(atomic_load(&in_batch));
    /* B waits without deadline, C with a 300 ms one: both queued. */
    one_t b = {.s = s, .id = 2, .rc = -99};
    one_t c = {.s = s, .id = 3, .rc = -99,
               .deadline_ns = osp_now_ns() + 300000000ull};
    pthread_create(&tb, NULL, submit_one, &b);
    pthread_create(&tc, NULL, submit_one, &c);
    for (int k = 0; k < 100 && osp_sched_queue_depth(s) < 2; k++)
        usleep(2000);
    assert_int_equal(osp_sched_queue_depth(s), 2);
    /* The queue is full: refused at once. */
    float *x = make_input(4);
    const void *in[1] = {x};
    osp_sched_result_t r;
    uint64_t t0 = osp_now_ns();
    assert_int_equal(osp_sched_run(s, in, 1, 0, &r, &err), OSP_EBUSY);
    assert_non_null(strstr(err.msg, "queue full"));
    assert_true(osp_now_ns() - t0 < 100000000ull);
    /* C's deadline passes while A still runs: answered 504-style, early. */
    pthread_join(tc, NULL);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.r.status, OSP_ETIMEDOUT);
    assert_null(c.r.scores);
    assert_true(osp_now_ns() - t0 < 1000000000ull); /* before A finished */
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    check_result(&a.r, 1);
    check_result(&b.r, 2);
    free(a.r.scores);
    free(b.r.scores);
    free(x);
    atomic_store(&sleep_ms_in_batch, 0);
    osp_sched_destroy(s);
    osp_engine_destroy(e);
}

static void test_destroy_drains(void **state) {
    (void)state;
    osp_engine_t *e = make_engine();
    osp_sched_opts_t o;
    osp_sched_opts_init(&o);
    o.max_batch = 2;
    o.max_queue_delay_us = 0;
    o.max_queue_size = 16;
    o.on_batch = on_batch;
    atomic_store(&sleep_ms_in_batch, 50);
    osp_sched_t *s = osp_sched_create(&e, 1, &o, NULL);
    assert_non_null(s);
    one_t a[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        a[i] = (one_t){.s = s, .id = 10 + i, .rc = -99};
        pthread_create(&t[i], NULL, submit_one, &a[i]);
    }
    /* Wait (bounded) until requests are queued behind the running batch. */
    for (int k = 0; k < 500 && osp_sched_queue_depth(s) < 3; k++)
        usleep(10000);
    assert_true(osp_sched_queue_depth(s) >= 3);
    osp_sched_destroy(s); /* queued requests still run */
    /* A thread that had not submitted yet when destroy began is refused
     * (OSP_EBUSY); every accepted request must complete with its answer. */
    int ok = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        if (a[i].rc == OSP_EBUSY)
            continue;
        assert_int_equal(a[i].rc, 0);
        check_result(&a[i].r, 10 + i);
        free(a[i].r.scores);
        ok++;
    }
    assert_true(ok >= 3);
    atomic_store(&sleep_ms_in_batch, 0);
    osp_engine_destroy(e);
}


/* ---- osp_sched_submit ---- */
typedef struct {
    atomic_int done;      /* times the callback ran */
    uint64_t done_ns;
    osp_sched_result_t r[2];
    float scores[2 * C];
} async_t;

static void async_done(void *ud) {
    async_t *a = ud;
    a->done_ns = osp_now_ns();
    atomic_fetch_add(&a->done, 1);
}

static void wait_done(async_t *a) {
    for (int k = 0; k < 1000 && !atomic_load(&a->done); k++)
        usleep(5000);
    assert_int_equal(atomic_load(&a->done), 1);
}

static void test_submit_async(void **state) {
    (void)state;
    osp_engine_t *e = make_engine();
    osp_sched_opts_t o;
    osp_sched_opts_init(&o);
    o.max_batch = 2;
    o.max_queue_delay_us = 0;
    o.max_queue_size = 3;
    o.on_batch = on_batch;
    atomic_store(&sleep_ms_in_batch, 0);
    osp_err_t err = {0};
    osp_sched_t *s = osp_sched_create(&e, 1, &o, &err);
    assert_non_null(s);
    /* Two requests in one call: one callback, both answers. */
    float *x5 = make_input(5), *x6 = make_input(6);
    const void *in2[2] = {x5, x6};
    async_t *a = calloc(1, sizeof *a);
    assert_int_equal(osp_sched_submit(s, in2, 2, 0, a->r, a->scores, C,
                                      async_done, a, &err), 0);
    wait_done(a);
    check_result(&a->r[0], 5);
    check_result(&a->r[1], 6);
    assert_ptr_equal(a->r[1].scores, a->scores + C);
    /* Busy instance: B queued with a 300 ms deadline is answered
     * OSP_ETIMEDOUT by the deadline thread long before the batch ends. */
    atomic_store(&sleep_ms_in_batch, 1500);
    atomic_store(&in_batch, 0);
    async_t *busy = calloc(1, sizeof *busy), *b = calloc(1, sizeof *b),
            *c = calloc(1, sizeof *c), *d = calloc(1, sizeof *d);
    const void *in1[1] = {x5};
    assert_int_equal(osp_sched_submit(s, in1, 1, 0, busy->r, busy->scores, C,
                                      async_done, busy, &err), 0);
    for (int k = 0; k < 1000 && !atomic_load(&in_batch); k++)
        usleep(5000);
    assert_true(atomic_load(&in_batch));
    uint64_t t0 = osp_now_ns();
    assert_int_equal(osp_sched_submit(s, in1, 1, t0 + 300000000ull, b->r,
                                      b->scores, C, async_done, b, &err), 0);
    /* C fills the queue (3 with B); D does not fit: refused, no callback. */
    assert_int_equal(osp_sched_submit(s, in2, 2, 0, c->r, c->scores, C,
                                      async_done, c, &err), 0);
    assert_int_equal(osp_sched_submit(s, in1, 1, 0, d->r, d->scores, C,
                                      async_done, d, &err), OSP_EBUSY);
    assert_non_null(strstr(err.msg, "queue full"));
    wait_done(b);
    assert_int_equal(b->r[0].status, OSP_ETIMEDOUT);
    assert_true(b->done_ns - t0 >= 300000000ull);
    assert_true(b->done_ns - t0 < 1000000000ull); /* before the batch ended */
    atomic_store(&sleep_ms_in_batch, 0);
    /* Destroy drains: C (queued) still runs and calls back. */
    osp_sched_destroy(s);
    assert_int_equal(atomic_load(&busy->done), 1);
    check_result(&busy->r[0], 5);
    assert_int_equal(atomic_load(&c->done), 1);
    check_result(&c->r[0], 5);
    check_result(&c->r[1], 6);
    assert_int_equal(atomic_load(&d->done), 0);
    free(a);
    free(busy);
    free(b);
    free(c);
    free(d);
    free(x5);
    free(x6);
    osp_engine_destroy(e);
}

static void test_bad_opts(void **state) {
    (void)state;
    osp_engine_t *e = make_engine();
    osp_sched_opts_t o;
    osp_sched_opts_init(&o);
    o.n_preferred = 1;
    o.preferred[0] = 99; /* > max_batch */
    osp_err_t err = {0};
    assert_null(osp_sched_create(&e, 1, &o, &err));
    assert_int_equal(err.code, OSP_EINVAL);
    osp_sched_opts_init(&o);
    o.max_queue_size = 0;
    assert_null(osp_sched_create(&e, 1, &o, &err));
    assert_null(osp_sched_create(&e, 0, NULL, &err));
    /* Preferred sizes: with 4 preferred and 6 available, batches of 4. */
    osp_sched_opts_init(&o);
    o.max_batch = 8;
    o.max_queue_delay_us = 20000;
    o.n_preferred = 1;
    o.preferred[0] = 4;
    osp_sched_t *s = osp_sched_create(&e, 1, &o, &err);
    assert_non_null(s);
    float *xs[6];
    const void *in[6];
    for (int i = 0; i < 6; i++)
        in[i] = xs[i] = make_input(i);
    osp_sched_result_t r[6];
    assert_int_equal(osp_sched_run(s, in, 6, 0, r, &err), 0);
    for (int i = 0; i < 6; i++) {
        check_result(&r[i], i);
        assert_true(r[i].batch == 4 || r[i].batch == 2);
        free(r[i].scores);
        free(xs[i]);
    }
    assert_int_equal(r[0].batch, 4);
    osp_sched_destroy(s);
    osp_engine_destroy(e);
}

/* osp_sched_run_into: scores land in the caller's buffer (one slot of cap
 * floats per request); a slot smaller than the output fails with
 * OSP_ELIMIT instead of overflowing. */
static void test_run_into(void **state) {
    (void)state;
    osp_engine_t *e = make_engine();
    osp_sched_opts_t o;
    osp_err_t err = {0};
    osp_sched_opts_init(&o);
    o.max_batch = 4;
    osp_sched_t *s = osp_sched_create(&e, 1, &o, &err);
    assert_non_null(s);
    float *xs[5];
    const void *in[5];
    for (int i = 0; i < 5; i++)
        in[i] = xs[i] = make_input(40 + i);
    float buf[5 * (C + 2)];
    osp_sched_result_t r[5];
    assert_int_equal(osp_sched_run_into(s, in, 5, 0, r, buf, C + 2, &err), 0);
    for (int i = 0; i < 5; i++) {
        check_result(&r[i], 40 + i);
        assert_ptr_equal(r[i].scores, buf + i * (C + 2));
    }
    float small[5 * 2];
    assert_int_equal(osp_sched_run_into(s, in, 5, 0, r, small, 2, &err), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].status, OSP_ELIMIT);
        assert_null(r[i].scores);
    }
    assert_int_equal(osp_sched_run_into(s, in, 5, 0, r, NULL, 3, &err),
                     OSP_EINVAL);
    for (int i = 0; i < 5; i++)
        free(xs[i]);
    osp_sched_destroy(s);
    osp_engine_destroy(e);
}

/* wait_for_expected: an idle instance waits for a batch to fill only while
 * announced requests (osp_sched_expect) are still to come. The delay is
 * long (400 ms) so that "ran at once" and "waited the delay" are far
 * apart. */
static void test_wait_for_expected(void **state) {
    (void)state;
    osp_engine_t *e = make_engine();
    osp_sched_opts_t o;
    osp_err_t err = {0};
    osp_sched_opts_init(&o);
    o.max_batch = 4;
    o.max_queue_delay_us = 400000;
    o.wait_for_expected = true;
    osp_sched_t *s = osp_sched_create(&e, 1, &o, &err);
    assert_non_null(s);

    /* Nothing announced: the lone request runs at once. */
    one_t a = {.s = s, .id = 1};
    submit_one(&a);
    assert_int_equal(a.rc, 0);
    check_result(&a.r, 1);
    assert_int_equal(a.r.batch, 1);
    assert_true(a.r.queue_s < 0.2);

    /* One announced: the first request waits for it and they share a
     * batch. */
    osp_sched_expect(s, 1);
    one_t b = {.s = s, .id = 2}, c = {.s = s, .id = 3};
    pthread_t tb;
    assert_int_equal(pthread_create(&tb, NULL, submit_one, &b), 0);
    usleep(100 * 1000);
    assert_int_equal(atomic_load(&b.done), 0);
    osp_sched_expect(s, -1);
    submit_one(&c);
    pthread_join(tb, NULL);
    assert_int_equal(b.rc, 0);
    check_result(&b.r, 2);
    assert_int_equal(c.rc, 0);
    check_result(&c.r, 3);
    assert_int_equal(b.r.batch, 2);
    assert_int_equal(c.r.batch, 2);
    assert_true(b.r.queue_s >= 0.09 && b.r.queue_s < 0.39);

    /* Announced, then taken back without a submit (its decode failed): the
     * waiting request runs when its delay is over, not before, not never. */
    osp_sched_expect(s, 1);
    one_t d = {.s = s, .id = 4};
    assert_int_equal(pthread_create(&tb, NULL, submit_one, &d), 0);
    usleep(50 * 1000);
    osp_sched_expect(s, -1);
    pthread_join(tb, NULL);
    assert_int_equal(d.rc, 0);
    check_result(&d.r, 4);
    assert_int_equal(d.r.batch, 1);
    assert_true(d.r.queue_s >= 0.39);

    /* More taken back than announced does not leave the count negative
     * (which would stop waiting for a later announcement). */
    osp_sched_expect(s, -3);
    osp_sched_expect(s, 1);
    one_t f = {.s = s, .id = 5}, g = {.s = s, .id = 6};
    assert_int_equal(pthread_create(&tb, NULL, submit_one, &f), 0);
    usleep(100 * 1000);
    assert_int_equal(atomic_load(&f.done), 0);
    osp_sched_expect(s, -1);
    submit_one(&g);
    pthread_join(tb, NULL);
    assert_int_equal(f.rc, 0);
    assert_int_equal(f.r.batch, 2);
    osp_sched_destroy(s);
    /* osp_sched_run's scores are the caller's to free. */
    one_t *done[] = {&a, &b, &c, &d, &f, &g};
    for (size_t k = 0; k < sizeof done / sizeof done[0]; k++)
        free(done[k]->r.scores);

    /* Without wait_for_expected (Triton's rule) a lone request waits the
     * whole delay for company. */
    o.wait_for_expected = false;
    s = osp_sched_create(&e, 1, &o, &err);
    assert_non_null(s);
    one_t h = {.s = s, .id = 7};
    submit_one(&h);
    assert_int_equal(h.rc, 0);
    check_result(&h.r, 7);
    assert_true(h.r.queue_s >= 0.39);
    free(h.r.scores);
    osp_sched_destroy(s);
    osp_engine_destroy(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_into),
        cmocka_unit_test(test_batching),
        cmocka_unit_test(test_queue_full_and_deadline),
        cmocka_unit_test(test_destroy_drains),
        cmocka_unit_test(test_bad_opts),
        cmocka_unit_test(test_submit_async),
        cmocka_unit_test(test_wait_for_expected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
