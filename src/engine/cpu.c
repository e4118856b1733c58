/* cpu.c — CPU feature detection (for OSP_PREC_AUTO) and the thread-count
 * hook into oneDNN's threading runtime.
 *
 * Debian's libdnnl 2.6 is built with DNNL_CPU_THREADING_RUNTIME = OMP (GNU
 * libgomp), so primitives use omp_get_max_threads() threads, both when they
 * are created (some kernels size their work split then) and when they run.
 * We do not link OpenMP ourselves: libgomp is already loaded as a dependency
 * of libdnnl, so omp_set_num_threads is looked up at run time. The setting is
 * per calling thread (an OpenMP ICV of the thread's implicit task), hence
 * osp__set_threads is called before building a plan and before every run. */
#include <cpuid.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine_int.h"

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

bool osp__cpu_has_bf16(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE */
        return false;
    /* XCR0: SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state enabled by the OS. */
    if ((xgetbv0() & 0xe6) != 0xe6)
        return false;
    if (__get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    bool avx512f = b & (1u << 16);
    bool amx_bf16 = d & (1u << 22);
    unsigned max_sub = a;
    bool avx512_bf16 = false;
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        avx512_bf16 = a & (1u << 5);
    }
    return avx512f && (avx512_bf16 || amx_bf16);
}

static void (*omp_set_fn)(int);
static int (*omp_get_fn)(void);
static pthread_once_t omp_once = PTHREAD_ONCE_INIT;

static void omp_lookup(void) {
    *(void **)&omp_set_fn = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    *(void **)&omp_get_fn = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
}

int osp__get_threads(void) {
    pthread_once(&omp_once, omp_lookup);
    return omp_get_fn ? omp_get_fn() : -1;
}

void osp__set_threads(int n) {
    pthread_once(&omp_once, omp_lookup);
    if (omp_set_fn && n > 0)
        omp_set_fn(n);
}
