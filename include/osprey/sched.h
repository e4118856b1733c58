/* sched.h — per-model request scheduling: a bounded queue, a dynamic batcher
 * and inference instances on dedicated threads.
 *
 *   HTTP thread: decode + preprocess → osp_sched_run(inputs) ──┐ (blocks)
 *            or osp_sched_submit(inputs, done, ud) ──────────┤ (returns;
 *                                                             │  done(ud) is
 *                                                             ▼  called later)
 *   bounded FIFO queue ──▶ instance thread k: take up to max_batch requests
 *   (waiting at most max_queue_delay_us after the oldest arrived, preferring
 *   the configured batch sizes), copy them into one batch tensor, run its own
 *   engine (an engine is single-threaded), split output 0 by sample, wake the
 *   submitters.
 *
 * Every accepted request gets an answer: its output, OSP_ETIMEDOUT when its
 * deadline passed while it was still queued, or the engine's error. A full
 * queue refuses at once with OSP_EBUSY (the server's 503). Destroying the
 * scheduler drains: queued requests still run.
 *
 * The scheduler borrows the engines (caller keeps ownership and destroys them
 * after osp_sched_destroy). CPU budget (instances × engine threads ≤ CPUs) is
 * the caller's choice; osp_sched_create only runs what it is given. */
#ifndef OSPREY_SCHED_H
#define OSPREY_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osprey/common.h"
#include "osprey/engine.h"

#define OSP_SCHED_MAX_INSTANCES 64
#define OSP_SCHED_MAX_PREFERRED 8

/* Called by an instance thread after every batch (metrics hook): requests
 * in the batch and the engine run time, seconds. */
typedef void (*osp_sched_batch_fn)(int batch, double infer_s, void *ud);

typedef struct osp_sched_opts_s {
    int max_batch;               /* requests per batch; >= 1 (capped by a
                                    fixed batch dimension in the model) */
    int64_t max_queue_delay_us;  /* how long the oldest request may wait for
                                    a batch to fill; 0 = run what is there */
    int max_queue_size;          /* queued requests; beyond → OSP_EBUSY */
    int preferred[OSP_SCHED_MAX_PREFERRED]; /* preferred batch sizes */
    int n_preferred;
    bool wait_for_expected;      /* wait for a batch to fill only while
                                    requests announced by osp_sched_expect
                                    are still to come (else run at once) */
    osp_sched_batch_fn on_batch; /* optional */
    void *on_batch_ud;
} osp_sched_opts_t;
#define OSP_SCHED_DEFAULT_MAX_BATCH 8
#define OSP_SCHED_DEFAULT_DELAY_US 2000
#define OSP_SCHED_DEFAULT_QUEUE 256
void osp_sched_opts_init(osp_sched_opts_t *o);

typedef struct osp_sched_s osp_sched_t;

/* Creates the scheduler over n_instances engines of the same model (one
 * thread each) and starts the threads. Each engine must have one input whose
 * dims other than the first are static, in F32 or U8; the request input is
 * one sample of it (osp_sched_sample_bytes()). NULL + err on failure. */
osp_sched_t *osp_sched_create(osp_engine_t *const *engines, int n_instances,
                              const osp_sched_opts_t *o, osp_err_t *err);
/* Builds every engine's plan for each batch size 1..max_batch (so no request
 * pays for planning). Call before serving; not concurrently with runs. */
int osp_sched_warmup(osp_sched_t *s, osp_err_t *err);
/* Stops accepting work, runs what is queued, joins the threads, frees. */
void osp_sched_destroy(osp_sched_t *s);

size_t osp_sched_sample_bytes(const osp_sched_t *s);
int osp_sched_max_batch(const osp_sched_t *s);
int osp_sched_queue_depth(osp_sched_t *s);

/* The outcome of one request. */
typedef struct osp_sched_result_s {
    int status;          /* 0 or OSP_E* for this request */
    float *scores;       /* output 0 for this sample, converted to float;
                            malloc'd, caller frees (NULL on error) — or,
                            with osp_sched_run_into, the caller's memory */
    int n_scores;
    int batch;           /* size of the batch it ran in */
    double queue_s;      /* submit → its batch started */
    double infer_s;      /* its batch's engine run */
} osp_sched_result_t;

/* Submits n requests (inputs[i]: osp_sched_sample_bytes() bytes each, read
 * until this call returns) and waits until all are answered. deadline_ns is
 * an osp_now_ns() time after which a still-queued request is answered with
 * OSP_ETIMEDOUT (0 = no deadline). All or nothing at admission: if the queue
 * lacks room for all n, returns OSP_EBUSY and nothing runs; likewise after
 * destroy began. Otherwise returns 0 and each results[i] says how request i
 * ended. */
int osp_sched_run(osp_sched_t *s, const void *const *inputs, int n,
                  uint64_t deadline_ns, osp_sched_result_t *results,
                  osp_err_t *err);

/* osp_sched_run writing request i's scores to the caller's memory
 * scores_buf + i * scores_cap (scores_cap floats each; results[i].scores
 * points there, nothing to free) — e.g. a per-request arena. A model
 * output larger than scores_cap floats per sample fails that request with
 * OSP_ELIMIT. */
int osp_sched_run_into(osp_sched_t *s, const void *const *inputs, int n,
                       uint64_t deadline_ns, osp_sched_result_t *results,
                       float *scores_buf, size_t scores_cap, osp_err_t *err);

/* Called once every request of an osp_sched_submit has been answered, from
 * a scheduler thread (an instance thread, or the deadline thread for
 * requests whose deadline passed while queued), never from inside
 * osp_sched_submit, with no scheduler lock held. It must not block long:
 * the instance thread runs the next batch after it returns. */
typedef void (*osp_sched_done_fn)(void *ud);

/* The asynchronous osp_sched_run_into: admits the n requests (same rules:
 * all or nothing; OSP_EBUSY when the queue lacks room or destroy began, and
 * then done is never called) and returns 0 at once. inputs[i], results and
 * scores_buf (scores_cap floats per request, as in osp_sched_run_into) must
 * stay valid until done(ud) has been called. Deadlines are enforced by a
 * scheduler thread: a request still queued at deadline_ns is answered
 * OSP_ETIMEDOUT on time even while every instance is busy. Destroy still
 * runs (and answers) everything admitted. */
int osp_sched_submit(osp_sched_t *s, const void *const *inputs, int n,
                     uint64_t deadline_ns, osp_sched_result_t *results,
                     float *scores_buf, size_t scores_cap,
                     osp_sched_done_fn done, void *ud, osp_err_t *err);

/* Announces n requests that are being received or decoded and will be
 * submitted shortly (n > 0), or takes n announcements back (n < 0: call it
 * just before submitting them, or when they failed). With
 * opts.wait_for_expected an idle instance waits for a batch to fill only
 * while announced requests are outstanding, and runs what is queued at once
 * otherwise. Taking announcements back wakes nobody: the submit that
 * follows wakes the batcher (one that looks in between runs without the
 * request, which then takes the next batch), and after a failure a
 * waiting batcher stops at max_queue_delay_us as it would without
 * announcements. */
void osp_sched_expect(osp_sched_t *s, int n);

#endif
