/* sched.c — bounded request queue, dynamic batcher and inference instance
 * threads for one model (interface and semantics: include/osprey/sched.h).
 *
 * Design: every instance thread is its own batcher. An idle instance waits
 * for the queue to hold a request, then for it to fill up to max_batch or for
 * the oldest request's max_queue_delay_us to pass, whichever comes first, and
 * takes the batch. A busy instance leaves the queue to the others, so while
 * all instances run the queue grows and the next free one takes a full batch
 * at once — batching adapts to load with no separate batcher thread and no
 * extra hand-off. One mutex guards the queue (operations are O(1) pointer
 * moves; the engine runs outside it).
 *
 * Submitters block on a condition variable of their own call until each of
 * their requests is answered; a submitter whose deadline passes removes its
 * still-queued requests itself (answer: OSP_ETIMEDOUT) so a request never
 * waits in the queue longer than its deadline even when every instance is
 * busy with a long batch.
 *
 * Asynchronous submitters (osp_sched_submit) do not wait: their call record
 * is heap-allocated with its items, and whoever answers the last of its
 * requests (an instance thread, or the deadline thread) calls its done
 * function after dropping the lock, then frees the record. The deadline
 * thread sleeps until the earliest deadline of a queued asynchronous
 * request and answers the expired ones OSP_ETIMEDOUT — the job the blocking
 * submitters do for themselves. */
#include "osprey/sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct call_s {
    pthread_cond_t cv;  /* blocking calls only */
    int remaining;  /* requests of this call not yet answered */
    osp_sched_done_fn done; /* asynchronous calls: non-NULL */
    void *done_ud;
    struct call_s *fin_next; /* on a list of finished asynchronous calls */
} call_t;

typedef enum { ITEM_QUEUED = 0, ITEM_RUNNING, ITEM_DONE } item_state_t;

typedef struct item_s {
    struct item_s *prev, *next; /* queue links while ITEM_QUEUED */
    const void *input;
    uint64_t enq_ns, deadline_ns;
    osp_sched_result_t *res;
    float *dst;           /* caller's score memory (NULL: malloc) */
    size_t dst_cap;       /* floats at dst */
    call_t *call;
    item_state_t state;
} item_t;

typedef struct instance_s {
    osp_sched_t *s;
    osp_engine_t *e;
    uint8_t *batch_buf;  /* max_batch samples, reused for every batch */
    item_t **items;      /* the batch being run */
    pthread_t thread;
    bool started;
} instance_t;

struct osp_sched_s {
    osp_sched_opts_t o;
    int n_inst;
    instance_t inst[OSP_SCHED_MAX_INSTANCES];
    osp_tensor_t in_decl;   /* declared input 0 (dims[0] may be -1) */
    int fixed_batch;        /* > 0 when the model's batch dim is static */
    size_t sample_bytes;
    pthread_mutex_t mu;
    pthread_cond_t not_empty; /* queue gained items, or stopping */
    item_t *head, *tail;
    int depth;
    int expected;             /* announced, not yet submitted (osp_sched_expect) */
    bool stopping;
    int callers;              /* threads inside osp_sched_run */
    pthread_cond_t no_callers; /* callers dropped to 0 (destroy waits) */
    pthread_t reaper;         /* deadline thread for asynchronous calls */
    bool reaper_started, reaper_stop;
    pthread_cond_t reap_cv;   /* an earlier deadline arrived, or stop */
    uint64_t reap_at;         /* when the reaper wakes next; 0 = no timer */
};

void osp_sched_opts_init(osp_sched_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->max_batch = OSP_SCHED_DEFAULT_MAX_BATCH;
    o->max_queue_delay_us = OSP_SCHED_DEFAULT_DELAY_US;
    o->max_queue_size = OSP_SCHED_DEFAULT_QUEUE;
}

static void abs_time(uint64_t mono_ns, struct timespec *ts) {
    ts->tv_sec = (time_t)(mono_ns / 1000000000ull);
    ts->tv_nsec = (long)(mono_ns % 1000000000ull);
}

static void q_remove(osp_sched_t *s, item_t *it) {
    if (it->prev)
        it->prev->next = it->next;
    else
        s->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        s->tail = it->prev;
    it->prev = it->next = NULL;
    s->depth--;
}

/* Answers one request; caller holds s->mu. An asynchronous call whose
 * last request this was goes onto *fin: the caller runs fin_run() after
 * dropping the lock. */
static void item_done(item_t *it, int status, call_t **fin) {
    it->res->status = status;
    it->state = ITEM_DONE;
    call_t *c = it->call;
    if (--c->remaining > 0)
        return;
    if (c->done) {
        OSP_ASSERT(fin);
        c->fin_next = *fin;
        *fin = c;
    } else {
        pthread_cond_signal(&c->cv);
    }
}

/* Calls the done functions of finished asynchronous calls (no lock held)
 * and frees their records (items included: one allocation). */
static void fin_run(call_t *fin) {
    while (fin) {
        call_t *next = fin->fin_next;
        osp_sched_done_fn fn = fin->done;
        void *ud = fin->done_ud;
        free(fin);
        fn(ud);
        fin = next;
    }
}

/* Converts output element i of tensor t to float. */
static float out_elem(const osp_tensor_t *t, size_t i) {
    switch (t->dtype) {
    case OSP_DT_F32: return ((const float *)t->data)[i];
    case OSP_DT_U8: return ((const uint8_t *)t->data)[i];
    case OSP_DT_S8: return ((const int8_t *)t->data)[i];
    case OSP_DT_S32: return (float)((const int32_t *)t->data)[i];
    case OSP_DT_S64: return (float)((const int64_t *)t->data)[i];
    case OSP_DT_BF16: {
        uint32_t u = (uint32_t)((const uint16_t *)t->data)[i] << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    default: return 0.0f;
    }
}

/* Picks how many of the `avail` queued requests to take. */
static int batch_size(const osp_sched_t *s, int avail) {
    int n = OSP_MIN(avail, s->o.max_batch);
    int best = 0;
    for (int i = 0; i < s->o.n_preferred; i++)
        if (s->o.preferred[i] <= n && s->o.preferred[i] > best)
            best = s->o.preferred[i];
    return best > 0 ? best : n;
}

static void run_batch(instance_t *in, int n) {
    osp_sched_t *s = in->s;
    int run_n = s->fixed_batch > 0 ? s->fixed_batch : n;
    for (int i = 0; i < n; i++)
        memcpy(in->batch_buf + (size_t)i * s->sample_bytes, in->items[i]->input,
               s->sample_bytes);
    if (run_n > n) /* padding rows of a fixed-batch model */
        memset(in->batch_buf + (size_t)n * s->sample_bytes, 0,
               (size_t)(run_n - n) * s->sample_bytes);
    osp_tensor_t x = s->in_decl;
    x.dims[0] = run_n;
    x.data = in->batch_buf;
    int n_out = osp_engine_num_outputs(in->e);
    osp_tensor_t outs[8];
    memset(outs, 0, sizeof outs);
    osp_err_t err = {0};
    uint64_t t0 = osp_now_ns();
    int rc = osp_engine_run(in->e, &x, 1, outs, OSP_MIN(n_out, 8), &err);
    uint64_t t1 = osp_now_ns();
    double infer_s = (double)(t1 - t0) * 1e-9;
    size_t per = 0;
    if (rc == 0) {
        size_t total = osp_tensor_numel(&outs[0]);
        if (outs[0].rank < 1 || outs[0].dims[0] != run_n || total % (size_t)run_n)
            rc = OSP_EINTERNAL; /* output not batch-major: cannot split */
        else
            per = total / (size_t)run_n;
    }
    for (int i = 0; i < n; i++) {
        osp_sched_result_t *r = in->items[i]->res;
        r->batch = n;
        r->queue_s = (double)(t0 - in->items[i]->enq_ns) * 1e-9;
        r->infer_s = infer_s;
        if (rc == 0) {
            item_t *it = in->items[i];
            if (it->dst && per > it->dst_cap)
                continue; /* answered OSP_ELIMIT below */
            r->scores = it->dst ? it->dst
                                : malloc(sizeof(float) * (per ? per : 1));
            if (!r->scores) {
                r->status = OSP_ENOMEM;
                continue;
            }
            for (size_t k = 0; k < per; k++)
                r->scores[k] = out_elem(&outs[0], (size_t)i * per + k);
            r->n_scores = (int)per;
        }
    }
    if (s->o.on_batch)
        s->o.on_batch(n, infer_s, s->o.on_batch_ud);
    call_t *fin = NULL;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < n; i++) {
        item_t *it = in->items[i];
        int st = rc ? rc : 0;
        if (!rc && !it->res->scores)
            st = it->dst ? OSP_ELIMIT : OSP_ENOMEM;
        item_done(it, st, &fin);
    }
    pthread_mutex_unlock(&s->mu);
    fin_run(fin);
}

static void *instance_main(void *arg) {
    instance_t *in = arg;
    osp_sched_t *s = in->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->not_empty, &s->mu);
        if (!s->head)
            break; /* stopping and drained */
        /* Let the batch fill, at most until the oldest request's delay;
         * with wait_for_expected only while more requests are on their way
         * (an idle engine with nothing coming has nothing to wait for). */
        uint64_t until = s->head->enq_ns +
                         (uint64_t)s->o.max_queue_delay_us * 1000ull;
        while (s->head && s->depth < s->o.max_batch && !s->stopping &&
               (!s->o.wait_for_expected || s->expected > 0) &&
               osp_now_ns() < until) {
            struct timespec ts;
            abs_time(until, &ts);
            pthread_cond_timedwait(&s->not_empty, &s->mu, &ts);
        }
        if (!s->head)
            continue; /* another instance took them */
        int want = batch_size(s, s->depth);
        int n = 0;
        uint64_t now = osp_now_ns();
        call_t *fin = NULL;
        while (n < want && s->head) {
            item_t *it = s->head;
            q_remove(s, it);
            if (it->deadline_ns && now >= it->deadline_ns) {
                item_done(it, OSP_ETIMEDOUT, &fin);
                continue;
            }
            it->state = ITEM_RUNNING;
            in->items[n++] = it;
        }
        if (s->head) /* more left: let another idle instance look */
            pthread_cond_signal(&s->not_empty);
        if (fin) {
            pthread_mutex_unlock(&s->mu);
            fin_run(fin);
            pthread_mutex_lock(&s->mu);
        }
        if (n == 0)
            continue;
        pthread_mutex_unlock(&s->mu);
        run_batch(in, n);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The deadline thread: answers queued asynchronous requests whose deadline
 * passed (blocking submitters watch their own). */
static void *reaper_main(void *arg) {
    osp_sched_t *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->reaper_stop) {
        uint64_t now = osp_now_ns(), next = 0;
        call_t *fin = NULL;
        for (item_t *it = s->head, *nx; it; it = nx) {
            nx = it->next;
            if (!it->deadline_ns || !it->call->done)
                continue;
            if (now >= it->deadline_ns) {
                q_remove(s, it);
                item_done(it, OSP_ETIMEDOUT, &fin);
            } else if (!next || it->deadline_ns < next) {
                next = it->deadline_ns;
            }
        }
        if (fin) {
            pthread_mutex_unlock(&s->mu);
            fin_run(fin);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        s->reap_at = next;
        if (next) {
            struct timespec ts;
            abs_time(next, &ts);
            pthread_cond_timedwait(&s->reap_cv, &s->mu, &ts);
        } else {
            pthread_cond_wait(&s->reap_cv, &s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

osp_sched_t *osp_sched_create(osp_engine_t *const *engines, int n_instances,
                              const osp_sched_opts_t *o, osp_err_t *err) {
    if (!engines || n_instances < 1 || n_instances > OSP_SCHED_MAX_INSTANCES) {
        osp_err_set(err, OSP_EINVAL, "sched: %d instances (1..%d)",
                    n_instances, OSP_SCHED_MAX_INSTANCES);
        return NULL;
    }
    osp_sched_t *s = calloc(1, sizeof *s);
    if (!s) {
        osp_err_set(err, OSP_ENOMEM, "sched: out of memory");
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->not_empty, &ca);
    pthread_cond_init(&s->reap_cv, &ca);
    pthread_cond_init(&s->no_callers, NULL);
    pthread_condattr_destroy(&ca);
    if (o)
        s->o = *o;
    else
        osp_sched_opts_init(&s->o);
    if (s->o.max_batch < 1 || s->o.max_queue_size < 1 ||
        s->o.max_queue_delay_us < 0 || s->o.n_preferred < 0 ||
        s->o.n_preferred > OSP_SCHED_MAX_PREFERRED) {
        osp_err_set(err, OSP_EINVAL,
                    "sched: max_batch %d, max_queue_size %d, delay %lld us, "
                    "%d preferred sizes: out of range", s->o.max_batch,
                    s->o.max_queue_size, (long long)s->o.max_queue_delay_us,
                    s->o.n_preferred);
        goto fail;
    }
    const osp_engine_t *e0 = engines[0];
    if (osp_engine_num_inputs(e0) != 1) {
        osp_err_set(err, OSP_EUNSUPPORTED,
                    "sched: the model has %d inputs; only single-input models "
                    "can be batched", osp_engine_num_inputs(e0));
        goto fail;
    }
    s->in_decl = *osp_engine_input(e0, 0);
    s->in_decl.data = NULL;
    const osp_tensor_t *d = &s->in_decl;
    if (d->rank < 1 || (d->dtype != OSP_DT_F32 && d->dtype != OSP_DT_U8)) {
        osp_err_set(err, OSP_EUNSUPPORTED,
                    "sched: input '%s' is %s of rank %d; need F32 or U8 with a "
                    "batch dimension", d->name ? d->name : "?",
                    osp_dtype_name(d->dtype), d->rank);
        goto fail;
    }
    s->sample_bytes = osp_dtype_size(d->dtype);
    for (int k = 1; k < d->rank; k++) {
        if (d->dims[k] <= 0) {
            osp_err_set(err, OSP_EUNSUPPORTED,
                        "sched: input '%s' dim %d is dynamic; only the batch "
                        "may be", d->name ? d->name : "?", k);
            goto fail;
        }
        s->sample_bytes *= (size_t)d->dims[k];
    }
    if (d->dims[0] > 0) {
        s->fixed_batch = (int)d->dims[0];
        s->o.max_batch = s->fixed_batch;
    }
    for (int i = 0; i < s->o.n_preferred; i++)
        if (s->o.preferred[i] < 1 || s->o.preferred[i] > s->o.max_batch) {
            osp_err_set(err, OSP_EINVAL,
                        "sched: preferred batch size %d outside 1..%d",
                        s->o.preferred[i], s->o.max_batch);
            goto fail;
        }
    for (int i = 0; i < n_instances; i++) {
        instance_t *in = &s->inst[i];
        in->s = s;
        in->e = engines[i];
        if (osp_engine_num_inputs(in->e) != 1 ||
            osp_engine_input(in->e, 0)->dtype != d->dtype) {
            osp_err_set(err, OSP_EINVAL, "sched: instance %d is a different "
                        "model", i);
            goto fail;
        }
        in->batch_buf = malloc(s->sample_bytes * (size_t)s->o.max_batch);
        in->items = calloc((size_t)s->o.max_batch, sizeof(item_t *));
        if (!in->batch_buf || !in->items) {
            osp_err_set(err, OSP_ENOMEM, "sched: out of memory");
            goto fail;
        }
        s->n_inst = i + 1;
    }
    for (int i = 0; i < n_instances; i++) {
        if (pthread_create(&s->inst[i].thread, NULL, instance_main,
                           &s->inst[i])) {
            osp_err_set(err, OSP_EINTERNAL, "sched: cannot start thread %d", i);
            goto fail;
        }
        s->inst[i].started = true;
    }
    if (pthread_create(&s->reaper, NULL, reaper_main, s)) {
        osp_err_set(err, OSP_EINTERNAL, "sched: cannot start the deadline "
                    "thread");
        goto fail;
    }
    s->reaper_started = true;
    return s;
fail:
    osp_sched_destroy(s);
    return NULL;
}

int osp_sched_warmup(osp_sched_t *s, osp_err_t *err) {
    for (int i = 0; i < s->n_inst; i++) {
        if (s->fixed_batch) {
            int rc = osp_engine_prepare(s->inst[i].e, s->fixed_batch, err);
            if (rc < 0)
                return rc;
            continue;
        }
        for (int b = 1; b <= s->o.max_batch; b++) {
            int rc = osp_engine_prepare(s->inst[i].e, b, err);
            if (rc < 0)
                return osp_err_prefix(err, "warm-up instance %d batch %d: ",
                                      i, b);
        }
    }
    return 0;
}

void osp_sched_destroy(osp_sched_t *s) {
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->not_empty);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_inst; i++) {
        if (s->inst[i].started)
            pthread_join(s->inst[i].thread, NULL);
        free(s->inst[i].batch_buf);
        free(s->inst[i].items);
    }
    /* The instances answered everything queued; the deadline thread has
     * nothing left to watch. */
    pthread_mutex_lock(&s->mu);
    s->reaper_stop = true;
    pthread_cond_broadcast(&s->reap_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->reaper_started)
        pthread_join(s->reaper, NULL);
    /* Every queued request has been answered; wait until the submitters
     * have woken up and left osp_sched_run before freeing the mutex. */
    pthread_mutex_lock(&s->mu);
    while (s->callers > 0)
        pthread_cond_wait(&s->no_callers, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&s->no_callers);
    pthread_cond_destroy(&s->reap_cv);
    pthread_cond_destroy(&s->not_empty);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

size_t osp_sched_sample_bytes(const osp_sched_t *s) { return s->sample_bytes; }
int osp_sched_max_batch(const osp_sched_t *s) { return s->o.max_batch; }

int osp_sched_queue_depth(osp_sched_t *s) {
    pthread_mutex_lock(&s->mu);
    int d = s->depth;
    pthread_mutex_unlock(&s->mu);
    return d;
}

#define SCHED_STACK_ITEMS 16 /* calls up to this size keep items on the stack */

/* Under s->mu: admits call's n items (queue bound, shutdown) and appends
 * them to the queue, or returns OSP_EBUSY (err set) with nothing queued.
 * One admission rule for blocking calls and submissions. */
static int enqueue_locked(osp_sched_t *s, call_t *call, item_t *items, int n,
                          const void *const *inputs, uint64_t deadline_ns,
                          osp_sched_result_t *results, float *scores_buf,
                          size_t scores_cap, osp_err_t *err) {
    if (s->stopping)
        return osp_err_set(err, OSP_EBUSY, "shutting down");
    if (s->depth + n > s->o.max_queue_size)
        return osp_err_set(err, OSP_EBUSY, "queue full (%d queued, limit %d)",
                           s->depth, s->o.max_queue_size);
    uint64_t now = osp_now_ns();
    for (int i = 0; i < n; i++) {
        item_t *it = &items[i];
        it->input = inputs[i];
        it->enq_ns = now;
        it->deadline_ns = deadline_ns;
        it->res = &results[i];
        if (scores_buf) {
            it->dst = scores_buf + (size_t)i * scores_cap;
            it->dst_cap = scores_cap;
        }
        it->call = call;
        it->prev = s->tail;
        if (s->tail)
            s->tail->next = it;
        else
            s->head = it;
        s->tail = it;
        s->depth++;
    }
    pthread_cond_broadcast(&s->not_empty);
    return 0;
}

static int run_impl(osp_sched_t *s, const void *const *inputs, int n,
                    uint64_t deadline_ns, osp_sched_result_t *results,
                    float *scores_buf, size_t scores_cap, osp_err_t *err) {
    if (n < 1 || n > 1024)
        return osp_err_set(err, OSP_EINVAL, "sched: %d requests in one call",
                           n);
    item_t stack_items[SCHED_STACK_ITEMS];
    item_t *items = n <= SCHED_STACK_ITEMS ? stack_items
                                           : malloc((size_t)n * sizeof *items);
    if (!items)
        return osp_err_set(err, OSP_ENOMEM, "sched: out of memory");
    memset(items, 0, (size_t)n * sizeof *items);
    call_t call;
    memset(&call, 0, sizeof call); /* done == NULL: a blocking call */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&call.cv, &ca);
    pthread_condattr_destroy(&ca);
    call.remaining = n;
    memset(results, 0, sizeof *results * (size_t)n);
    pthread_mutex_lock(&s->mu);
    int rc = enqueue_locked(s, &call, items, n, inputs, deadline_ns, results,
                            scores_buf, scores_cap, err);
    if (rc < 0) {
        pthread_mutex_unlock(&s->mu);
        pthread_cond_destroy(&call.cv);
        if (items != stack_items)
            free(items);
        return rc;
    }
    s->callers++;
    bool expired = false;
    while (call.remaining > 0) {
        if (deadline_ns && !expired) {
            if (osp_now_ns() >= deadline_ns) {
                expired = true;
                for (int i = 0; i < n; i++)
                    if (items[i].state == ITEM_QUEUED) {
                        q_remove(s, &items[i]);
                        item_done(&items[i], OSP_ETIMEDOUT, NULL);
                    }
                continue;
            }
            struct timespec ts;
            abs_time(deadline_ns, &ts);
            pthread_cond_timedwait(&call.cv, &s->mu, &ts);
        } else {
            pthread_cond_wait(&call.cv, &s->mu);
        }
    }
    if (--s->callers == 0)
        pthread_cond_broadcast(&s->no_callers);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&call.cv);
    if (items != stack_items)
        free(items);
    return 0;
}

int osp_sched_run(osp_sched_t *s, const void *const *inputs, int n,
                  uint64_t deadline_ns, osp_sched_result_t *results,
                  osp_err_t *err) {
    return run_impl(s, inputs, n, deadline_ns, results, NULL, 0, err);
}

int osp_sched_run_into(osp_sched_t *s, const void *const *inputs, int n,
                       uint64_t deadline_ns, osp_sched_result_t *results,
                       float *scores_buf, size_t scores_cap, osp_err_t *err) {
    if (!scores_buf || scores_cap == 0)
        return osp_err_set(err, OSP_EINVAL, "sched: no score buffer");
    return run_impl(s, inputs, n, deadline_ns, results, scores_buf,
                    scores_cap, err);
}

void osp_sched_expect(osp_sched_t *s, int n) {
    pthread_mutex_lock(&s->mu);
    s->expected += n;
    if (s->expected < 0)
        s->expected = 0; /* a caller's imbalance must not stall batching */
    pthread_mutex_unlock(&s->mu);
}

int osp_sched_submit(osp_sched_t *s, const void *const *inputs, int n,
                     uint64_t deadline_ns, osp_sched_result_t *results,
                     float *scores_buf, size_t scores_cap,
                     osp_sched_done_fn done, void *ud, osp_err_t *err) {
    if (n < 1 || n > 1024 || !done || !scores_buf || scores_cap == 0)
        return osp_err_set(err, OSP_EINVAL, "sched: submit of %d requests "
                           "needs a done function and a score buffer", n);
    /* One record: the call, then its n items; freed by fin_run. */
    call_t *call = calloc(1, sizeof *call + (size_t)n * sizeof(item_t));
    if (!call)
        return osp_err_set(err, OSP_ENOMEM, "sched: out of memory");
    item_t *items = (item_t *)(void *)(call + 1);
    call->remaining = n;
    call->done = done;
    call->done_ud = ud;
    memset(results, 0, sizeof *results * (size_t)n);
    pthread_mutex_lock(&s->mu);
    int rc = enqueue_locked(s, call, items, n, inputs, deadline_ns, results,
                            scores_buf, scores_cap, err);
    if (rc < 0) {
        pthread_mutex_unlock(&s->mu);
        free(call);
        return rc;
    }
    if (deadline_ns && (!s->reap_at || deadline_ns < s->reap_at)) {
        s->reap_at = deadline_ns;
        pthread_cond_signal(&s->reap_cv);
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}
