/* timer.c — a one-thread timer that resumes suspended HTTP requests at a
 * given time. It exists for --debug-delay-ms: the delayed answer must not
 * hold an HTTP thread (in epoll mode there are only a few), so the request
 * stays suspended and this thread resumes it when its delay is over.
 * Entries live in the requests' arenas (a request lives while suspended);
 * the list is sorted by due time — a handful of entries at a time, so a
 * sorted list beats a heap for simplicity. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "serve/serve_int.h"

struct osp__serve_timer_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* an earlier entry, or stop */
    osp__serve_tnode_t *head;    /* sorted by due_ns */
    bool stop;
    pthread_t thread;
};

static void *timer_main(void *arg) {
    osp__serve_timer_t *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (!t->head) {
            if (t->stop)
                break;
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        uint64_t now = osp_now_ns();
        osp__serve_tnode_t *n = t->head;
        if (n->due_ns <= now) {
            t->head = n->next;
            osp_http_req_t *r = n->r;
            pthread_mutex_unlock(&t->mu);
            osp_http_req_resume(r); /* n (in r's arena) is not touched again */
            pthread_mutex_lock(&t->mu);
            continue;
        }
        struct timespec ts = {(time_t)(n->due_ns / 1000000000ull),
                              (long)(n->due_ns % 1000000000ull)};
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

osp__serve_timer_t *osp__serve_timer_create(void) {
    osp__serve_timer_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&t->thread, NULL, timer_main, t)) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    return t;
}

void osp__serve_timer_add(osp__serve_timer_t *t, osp__serve_tnode_t *n,
                          uint64_t due_ns, osp_http_req_t *r) {
    n->due_ns = due_ns;
    n->r = r;
    pthread_mutex_lock(&t->mu);
    osp__serve_tnode_t **p = &t->head;
    while (*p && (*p)->due_ns <= due_ns)
        p = &(*p)->next;
    n->next = *p;
    *p = n;
    if (t->head == n)
        pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void osp__serve_timer_destroy(osp__serve_timer_t *t) {
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true; /* the thread still resumes what is pending first */
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
