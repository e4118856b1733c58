/* shed.c — queue-delay load shedding for one model's queue: decides, before
 * a request's body is decoded, whether it is admitted or answered 503 at
 * once (docs/adr/0046-queue-delay-shedding.md).
 *
 * Why queue delay and not queue length: the time an image waits is what the
 * client feels, and it does not depend on how fast the model is (a queue of
 * 8 is 20 ms for one model, 2 s for another). An image's wait runs from its
 * admission to the start of its batch: waiting for a decode thread and
 * being decoded count, as the queue does (a decode-bound worker's backlog
 * is in the decode pool). Detection is CoDel's (Nichols & Jacobson): a
 * burst that drains within an interval is a good queue; only when every
 * image for a whole interval waited longer than the target (the interval's
 * minimum is above it) is the queue standing, and the model starts
 * shedding. While it sheds, a request is admitted only while the images
 * admitted and not yet running are fewer than the target's worth of work
 * (drain rate × target, the rate the engines serve images at while busy,
 * measured from the batches): the engines never run dry (goodput stays at
 * capacity),
 * admitted images wait about the target, and the excess is refused in
 * microseconds — the "controlled delay" of Facebook's "Fail at scale",
 * applied at admission because a request refused before decoding costs
 * nothing. Shedding stops once ten intervals passed without refusing
 * anyone and the delay is back under the target (or nothing waits and
 * the model is idle).
 *
 * All of it is per model and under one small mutex: a few comparisons per
 * request, no allocation. */
#include <string.h>

#include "serve/serve_int.h"

/* Weight of a new sample in the drain-rate and latency averages: about the
 * last ten requests, enough to ride out one odd batch. */
#define SHED_EWMA_ALPHA 0.1
/* Weight of a new batch in the drain-rate averages: about the last ten
 * batches (half a second for ResNet50 on 2 CPUs). */
#define SHED_RATE_ALPHA 0.1
/* ... and in the fast pair, about the last two: the rate used is the lower
 * of the two, so a slowdown lowers the admission limit within a batch or
 * two while a speedup raises it only as the slow average follows (a host
 * whose speed halves for seconds: measured, the images admitted under the
 * old rate waited 290-380 ms for ~1 s, against 100-260 at either speed). */
#define SHED_RATE_FAST_ALPHA 0.5
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

int osp__serve_shed_observe(osp__serve_shed_t *c, double wait_s,
                            double infer_s, int ahead, uint64_t now) {
    if (!c->target_ns)
        return 0;
    pthread_mutex_lock(&c->mu);
    c->delay_s = wait_s;
    c->last_sample_ns = now;
    c->latency_s = c->latency_s > 0
                       ? c->latency_s + SHED_EWMA_ALPHA *
                                            (wait_s + infer_s - c->latency_s)
                       : wait_s + infer_s;
    int change = 0;
    if (wait_s * 1e9 > (double)c->target_ns) {
        if (!c->above_since_ns) {
            c->above_since_ns = now;
        } else if (!c->shedding && now - c->above_since_ns >= c->interval_ns) {
            c->shedding = true;
            c->last_shed_ns = now; /* sheds for at least an interval */
            change = 1;
        }
    } else {
        c->above_since_ns = 0;
        change = maybe_stop_locked(c, ahead, now);
    }
    pthread_mutex_unlock(&c->mu);
    return change;
}

/* The drain rate is what the engines serve while they are busy: images
 * per batch over the time between batch ends, counted only when the
 * engines had more work queued at the previous end (an engine that waited
 * for work says nothing about its speed). Before, it came from the
 * waiting images (Little's law: images ahead / their wait), per image and
 * then on averages; both erred with batches and closed-loop clients. An
 * image with k ahead may wait only for the end of the running batch: the
 * per-image k / wait swung between 0.6x and 2x the real rate (ResNet50:
 * 83..249 images/s for ~130). And clients that come back right after
 * their batch's answers arrive when the queue has just been emptied: they
 * see fewer images ahead than it holds on average, and the ratio of the
 * averages settled at ~62 images/s for 108 — a limit of 6 images, batches
 * of 6 instead of 8, the goodput 25 % down. */
void osp__serve_shed_batch(osp__serve_shed_t *c, int n, bool more,
                           uint64_t now) {
    if (!c->target_ns)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->busy && c->last_batch_ns && now > c->last_batch_ns) {
        double dt = (double)(now - c->last_batch_ns) * 1e-9;
        c->batch_avg += SHED_RATE_ALPHA * (n - c->batch_avg);
        c->gap_avg_s += SHED_RATE_ALPHA * (dt - c->gap_avg_s);
        c->batch_fast += SHED_RATE_FAST_ALPHA * (n - c->batch_fast);
        c->gap_fast_s += SHED_RATE_FAST_ALPHA * (dt - c->gap_fast_s);
        double slow = c->batch_avg / c->gap_avg_s;
        double fast = c->batch_fast / c->gap_fast_s;
        c->rate_per_s = fast < slow ? fast : slow;
    }
    c->last_batch_ns = now;
    c->busy = more;
    pthread_mutex_unlock(&c->mu);
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
