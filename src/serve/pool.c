/* pool.c — the worker's decode threads: an inference request, once
 * admitted on an HTTP event-loop thread, is parsed, decoded and
 * preprocessed here and submitted to its model's scheduler, so that an
 * event loop never spends milliseconds on one request's pixels while the
 * other connections it serves wait — a load-shedding refusal among them
 * (docs/adr/0052-decode-off-the-event-loop.md has the measurements).
 *
 * A plain FIFO under one mutex: jobs live in the requests' arenas (a
 * request lives while suspended), a few operations each. Destroy runs what
 * is queued, then joins. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "serve/serve_int.h"

struct osp__serve_pool_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* a job was posted, or stop */
    osp__serve_job_t *head, *tail;
    bool stop;
    int n_threads;
    pthread_t threads[SERVE_MAX_DECODE_THREADS];
};

static void *pool_main(void *arg) {
    osp__serve_pool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        osp__serve_job_t *j = p->head;
        if (!j) {
            if (p->stop)
                break;
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->fn(j); /* may free j (with its request): not touched again */
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

osp__serve_pool_t *osp__serve_pool_create(int n_threads) {
    if (n_threads < 1 || n_threads > SERVE_MAX_DECODE_THREADS)
        return NULL;
    osp__serve_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (; p->n_threads < n_threads; p->n_threads++)
        if (pthread_create(&p->threads[p->n_threads], NULL, pool_main, p)) {
            osp__serve_pool_destroy(p);
            return NULL;
        }
    return p;
}

void osp__serve_pool_post(osp__serve_pool_t *p, osp__serve_job_t *j) {
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void osp__serve_pool_destroy(osp__serve_pool_t *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true; /* the threads still run what is queued first */
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
