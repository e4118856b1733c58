/* shed.c — queue-delay load shedding for one model's queue: decides, before
 * a request's body is decoded, whether it is admitted or answered 503 at
 * once (docs/adr/0046-queue-delay-shedding.md).
 *
 * Why queue delay and not queue length: the time an image waits is what the
 * client feels, and it does not depend on how fast the model is (a queue of
 * 8 is 20 ms for one model, 2 s for another). Detection is CoDel's
 * (Nichols & Jacobson): a burst that drains within an interval is a good
 * queue; only when every image dequeued for a whole interval waited longer
 * than the target (the interval's minimum is above it) is the queue
 * standing, and the model starts shedding. While it sheds, a request is
 * admitted only while the queue holds less than the target's worth of work
 * (depth < drain rate × target, the rate measured from the same samples by
 * Little's law): the engines never run dry (goodput stays at capacity),
 * admitted images wait about the target, and the excess is refused in
 * microseconds — the "controlled delay" of Facebook's "Fail at scale",
 * applied at admission because a request refused before decoding costs
 * nothing. Shedding stops once ten intervals passed without refusing
 * anyone and the queue delay is back under the target (or the queue is
 * empty and idle).
 *
 * All of it is per model and under one small mutex: a few comparisons per
 * request, no allocation. */
#include <string.h>

#include "serve/serve_int.h"

/* Weight of a new sample in the drain-rate and latency averages: about the
 * last ten requests, enough to ride out one odd batch. */
#define SHED_EWMA_ALPHA 0.1
/* Intervals without a refusal before shedding stops. One is too few:
 * clients told to come back later come back in waves, and the gap between
 * two waves would end shedding only for the next wave to pile up a full
 * interval's queue before detection starts it again (measured: p99 ×4).
 * Staying in the shedding state costs nothing when the demand has fallen:
 * the limit only refuses when the queue holds the target's worth. */
#define SHED_CALM_INTERVALS 10

void osp__serve_shed_init(osp__serve_shed_t *c, int64_t target_ms,
                          int64_t interval_ms) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->target_ns = target_ms > 0 ? (uint64_t)target_ms * 1000000ull : 0;
    c->interval_ns = (uint64_t)(interval_ms > 0 ? interval_ms : 1) * 1000000ull;
}

void osp__serve_shed_fini(osp__serve_shed_t *c) {
    pthread_mutex_destroy(&c->mu);
}

/* Turns shedding off after SHED_CALM_INTERVALS without a refusal, when the queue
 * delay is back under the target — or when the queue is empty and no
 * image left it for an interval (no traffic: the last sample is stale; an
 * empty queue alone says little, the batcher empties it at every batch).
 * Caller holds mu. */
static int maybe_stop_locked(osp__serve_shed_t *c, int depth, uint64_t now) {
    if (!c->shedding ||
        now - c->last_shed_ns < SHED_CALM_INTERVALS * c->interval_ns)
        return 0;
    bool idle = depth == 0 && now - c->last_sample_ns >= c->interval_ns;
    if (!idle && c->delay_s * 1e9 > (double)c->target_ns)
        return 0;
    c->shedding = false;
    c->above_since_ns = 0;
    return -1;
}

/* Images the queue may hold while shedding: the target's worth of work at
 * the measured drain rate, at least one (so the engines keep running). */
static double limit_locked(const osp__serve_shed_t *c) {
    double l = c->rate_per_s * (double)c->target_ns * 1e-9;
    return l >= 1 ? l : 1;
}

bool osp__serve_shed_admit(osp__serve_shed_t *c, int depth, uint64_t now,
                           int *change, double *limit) {
    *change = 0;
    if (!c->target_ns)
        return true;
    pthread_mutex_lock(&c->mu);
    *change = maybe_stop_locked(c, depth, now);
    bool ok = !c->shedding || (double)depth < limit_locked(c);
    *limit = limit_locked(c);
    if (!ok) {
        c->last_shed_ns = now;
        c->shed_wait_ns += (uint64_t)(c->latency_s * 1e9);
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

int osp__serve_shed_observe(osp__serve_shed_t *c, double queue_s,
                            double infer_s, int depth_at_submit,
                            uint64_t now) {
    if (!c->target_ns)
        return 0;
    pthread_mutex_lock(&c->mu);
    c->delay_s = queue_s;
    c->last_sample_ns = now;
    c->latency_s = c->latency_s > 0
                       ? c->latency_s + SHED_EWMA_ALPHA *
                                            (queue_s + infer_s - c->latency_s)
                       : queue_s + infer_s;
    /* Little's law on one image: the depth_at_submit images ahead of it
     * left the queue in queue_s. Tiny waits say nothing about the rate. */
    if (depth_at_submit > 0 && queue_s > 1e-4) {
        double r = depth_at_submit / queue_s;
        c->rate_per_s = c->rate_per_s > 0
                            ? c->rate_per_s + SHED_EWMA_ALPHA *
                                                  (r - c->rate_per_s)
                            : r;
    }
    int change = 0;
    if (queue_s * 1e9 > (double)c->target_ns) {
        if (!c->above_since_ns) {
            c->above_since_ns = now;
        } else if (!c->shedding && now - c->above_since_ns >= c->interval_ns) {
            c->shedding = true;
            c->last_shed_ns = now; /* sheds for at least an interval */
            change = 1;
        }
    } else {
        c->above_since_ns = 0;
        change = maybe_stop_locked(c, depth_at_submit, now);
    }
    pthread_mutex_unlock(&c->mu);
    return change;
}

int osp__serve_shed_read(osp__serve_shed_t *c, int depth, uint64_t now,
                         bool *shedding, double *delay_s, double *rate_per_s,
                         uint64_t *shed_wait_ns) {
    pthread_mutex_lock(&c->mu);
    /* With no traffic nothing else would end it. */
    int change = c->target_ns && depth >= 0 ? maybe_stop_locked(c, depth, now)
                                              : 0;
    *shedding = c->shedding;
    *delay_s = c->delay_s;
    *rate_per_s = c->rate_per_s;
    *shed_wait_ns = c->shed_wait_ns;
    pthread_mutex_unlock(&c->mu);
    return change;
}
