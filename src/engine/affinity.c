/* affinity.c — keeps a run's OpenMP team on distinct CPUs when the run
 * starts from idleness.
 *
 * Why: once the engine has been idle for longer than libgomp's spin (~1 ms
 * with the GOMP_SPINCOUNT main.c sets), its OpenMP worker sleeps in a
 * futex. The next run's wake-up lets Linux place the worker on the CPU of
 * the thread that woke it, the engine thread's own; from there the two
 * threads alternate on one CPU for the whole run (each is "cache hot", so
 * the idle CPU pulls neither) and a 2-thread run takes the 1-thread time.
 * Seen with `perf sched timehist` on `osprey serve`, ResNet50 bf16, 100 ms
 * between requests: every slice of both threads on CPU 1, CPU 0 idle,
 * inference 38 ms against 21.6 ms back to back (docs/decisions.md,
 * "Binding the engine's OpenMP team after idleness").
 *
 * What: a run that starts more than OSP_BIND_IDLE_NS after the engine's
 * previous run ended binds OpenMP thread i of the calling thread's team to
 * the i-th CPU of the caller's allowed set, and puts every mask back after
 * the run. Back-to-back runs (a loaded server) stay unbound: there the
 * workers never sleep, and binding measured slightly worse (the HTTP
 * threads' decoding then always lands on a team thread's CPU: 4-client p99
 * 78-86 ms bound vs 68-74 ms unbound, same throughput). Only when the team
 * is exactly as large as the allowed set, so binding can never crowd two
 * busy threads onto a CPU that unbound scheduling would have spread
 * (several engine instances or processes: each team covers every allowed
 * CPU once). The caller's mask is restored, so threads it creates later
 * (lanes, a child process) inherit the mask it had, not one CPU.
 *
 * The engine option tuning.bind (osprey --engine-bind) off turns it off,
 * on binds every run (for measurement). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/engine_int.h"

#define BIND_MAX_CPUS 256
/* A gap longer than libgomp's spin (GOMP_SPINCOUNT=100000, ~1 ms) means the
 * workers are asleep. */
#define OSP_BIND_IDLE_NS 10000000ull

_Static_assert(sizeof(cpu_set_t) <= sizeof(((osp__team_bind_t *)0)->saved),
               "osp__team_bind_t.saved holds a cpu_set_t");

static int bind_self(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return sched_setaffinity(0, sizeof s, &s);
}

int osp__team_bind_begin(int threads, uint64_t idle_ns, osp_tune_t mode,
                         osp__team_bind_t *b) {
    b->active = 0;
    b->threads = threads;
#ifdef _OPENMP
    if (threads < 2 || mode == OSP_TUNE_OFF ||
        (mode == OSP_TUNE_AUTO && idle_ns < OSP_BIND_IDLE_NS))
        return 0;
    cpu_set_t cur;
    if (sched_getaffinity(0, sizeof cur, &cur) != 0 ||
        CPU_COUNT(&cur) != threads)
        return 0;
    if (threads > BIND_MAX_CPUS)
        return 0;
    int cpus[BIND_MAX_CPUS], n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < threads; c++)
        if (CPU_ISSET(c, &cur))
            cpus[n++] = c;
    /* This region is also what wakes the workers: each binds itself before
     * the first real one. */
#pragma omp parallel num_threads(threads)
    {
        int i = omp_get_thread_num();
        if (i > 0)
            bind_self(cpus[i]);
    }
    bind_self(cpus[0]);
    memcpy(b->saved, &cur, sizeof cur);
    b->active = 1;
    return 1;
#else
    (void)threads;
    (void)idle_ns;
    (void)mode;
    return 0;
#endif
}

void osp__team_bind_end(osp__team_bind_t *b) {
#ifdef _OPENMP
    if (!b->active)
        return;
    const cpu_set_t *saved = (const cpu_set_t *)b->saved;
#pragma omp parallel num_threads(b->threads)
    sched_setaffinity(0, sizeof *saved, saved);
    b->active = 0;
#else
    (void)b; /* without OpenMP nothing is ever bound */
#endif
}
