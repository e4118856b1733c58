/* cpu.c — the CPU's capabilities as every choice in the engine sees them
 * (osp__cpu_caps: CPUID read once, capped by the ISA ceiling), and the
 * thread-count hook into oneDNN's threading runtime.
 *
 * One place for CPU features: precision AUTO, which int8 paths are exact,
 * which of osprey's own kernels run, all ask osp__cpu_caps(), never CPUID
 * or __builtin_cpu_supports directly, so that the ceiling
 * (tuning.max_isa) steers every one of them and oneDNN alike: with oneDNN
 * capped at AVX2 and precision AUTO still choosing bf16 from CPUID, oneDNN
 * fell back to reference kernels and a classification took 210 s.
 *
 * The ceiling is process-wide because oneDNN's is: dnnl_set_max_cpu_isa
 * works once, before oneDNN's first primitive. So the first engine fixes
 * it (osp__cpu_isa_apply) and the capabilities never change afterwards; a
 * later engine that asks for a ceiling giving a different rung is refused
 * with a message saying why. The capabilities are also capped by the ISA
 * oneDNN reports as effective, which covers its own ONEDNN_MAX_CPU_ISA
 * variable (read by oneDNN, not by us).
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
#include <stdio.h>
#include <string.h>

#include "engine/engine_int.h"

/* Feature bits of the rungs (each rung's row lists all it needs). */
enum {
    F_AVX2 = 1u << 0,        /* AVX2 + FMA, OS saves YMM */
    F_AVX512 = 1u << 1,      /* F, CD, BW, DQ, VL; OS saves ZMM and masks */
    F_AVX512_VNNI = 1u << 2,
    F_AVX512_BF16 = 1u << 3,
    F_AMX = 1u << 4,         /* AMX-TILE, -INT8, -BF16; OS saves tile state */
    F_ALL = (1u << 5) - 1,
};

/* The rungs: oneDNN's ceiling for each, the features it allows (names:
 * osp_isa_name, from engine.h's OSP_ISA_MAP). */
static const struct {
    dnnl_cpu_isa_t dnnl;
    unsigned feats;
} rungs[] = {
    [OSP_ISA_AUTO] = {dnnl_cpu_isa_default, F_ALL}, /* oneDNN 3: no cap */
    [OSP_ISA_SSE41] = {dnnl_cpu_isa_sse41, 0},
    [OSP_ISA_AVX2] = {dnnl_cpu_isa_avx2, F_AVX2},
    [OSP_ISA_AVX512] = {dnnl_cpu_isa_avx512_core, F_AVX2 | F_AVX512},
    [OSP_ISA_AVX512_VNNI] = {dnnl_cpu_isa_avx512_core_vnni,
                             F_AVX2 | F_AVX512 | F_AVX512_VNNI},
    [OSP_ISA_AVX512_BF16] = {dnnl_cpu_isa_avx512_core_bf16,
                             F_AVX2 | F_AVX512 | F_AVX512_VNNI | F_AVX512_BF16},
    [OSP_ISA_AMX] = {dnnl_cpu_isa_avx512_core_amx, F_ALL},
};
_Static_assert(OSP_ARRAY_LEN(rungs) == OSP_ISA_COUNT, "a row per ISA rung");

/* The highest rung whose features are all in feats. */
static osp_isa_t rung_of(unsigned feats) {
    osp_isa_t best = OSP_ISA_SSE41;
    for (int i = OSP_ISA_SSE41; i < OSP_ISA_COUNT; i++)
        if ((rungs[i].feats & ~feats) == 0 &&
            __builtin_popcount(rungs[i].feats) >
                __builtin_popcount(rungs[best].feats))
            best = (osp_isa_t)i;
    return best;
}

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* The CPU's features from CPUID, each only when the OS saves the
 * registers it uses (XCR0). */
static unsigned cpuid_feats(void) {
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE */
        return 0;
    bool fma = c & (1u << 12);
    uint64_t xcr0 = xgetbv0();
    bool ymm = (xcr0 & 0x6) == 0x6;        /* SSE, AVX state */
    bool zmm = (xcr0 & 0xe6) == 0xe6;      /* + opmask, ZMM_Hi256, Hi16_ZMM */
    bool tiles = (xcr0 & 0x60000) == 0x60000; /* XTILECFG, XTILEDATA */
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned max_sub = a;
    bool avx2 = b & (1u << 5);
    bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && /* F, DQ */
                  (b & (1u << 28)) && (b & (1u << 30)) && /* CD, BW */
                  (b & (1u << 31));                       /* VL */
    bool vnni = c & (1u << 11);
    bool amx = (d & (1u << 22)) && (d & (1u << 24)) && (d & (1u << 25));
    bool bf16 = false;
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        bf16 = a & (1u << 5);
    }
    if (ymm && avx2 && fma)
        f |= F_AVX2;
    if (f & F_AVX2 && zmm && avx512) {
        f |= F_AVX512;
        f |= vnni ? F_AVX512_VNNI : 0;
        f |= bf16 ? F_AVX512_BF16 : 0;
        f |= amx && tiles ? F_AMX : 0;
    }
    return f;
}

/* The features oneDNN's effective ISA allows (its ISAs are bit sets, each
 * containing its predecessors' bits). */
static unsigned dnnl_feats(dnnl_cpu_isa_t eff) {
    unsigned f = 0;
    for (int i = OSP_ISA_SSE41; i < OSP_ISA_COUNT; i++)
        if (((unsigned)eff & (unsigned)rungs[i].dnnl) == (unsigned)rungs[i].dnnl)
            f |= rungs[i].feats;
    return f;
}

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static unsigned cpu_feats; /* CPUID, read once */

static void cpu_read(void) { cpu_feats = cpuid_feats(); }

osp_isa_t osp_cpu_isa(void) {
    pthread_once(&cpu_once, cpu_read);
    return rung_of(cpu_feats);
}

/* The process's capabilities: fixed by the first osp__cpu_isa_apply (or
 * the first osp__cpu_caps), then read-only. */
static pthread_mutex_t caps_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(const osp__cpu_caps_t *) caps_fixed;
static osp__cpu_caps_t caps;

static void caps_fill(osp__cpu_caps_t *k, unsigned f, osp_isa_t ceiling) {
    memset(k, 0, sizeof *k);
    k->avx2 = f & F_AVX2;
    k->avx512 = f & F_AVX512;
    k->avx512_vnni = f & F_AVX512_VNNI;
    k->avx512_bf16 = f & F_AVX512_BF16;
    k->amx = f & F_AMX;
    k->bf16 = k->avx512_bf16 || k->amx;
    k->isa = rung_of(f);
    k->ceiling = ceiling;
    k->cpu = osp_cpu_isa();
}

int osp__cpu_isa_apply(osp_isa_t ceiling, osp_err_t *err) {
    if ((unsigned)ceiling >= OSP_ISA_COUNT)
        return osp_err_set(err, OSP_EINVAL, "engine: unknown ISA ceiling %d",
                           (int)ceiling);
    pthread_once(&cpu_once, cpu_read);
    int rc = 0;
    pthread_mutex_lock(&caps_mu);
    if (!caps_fixed) {
        if (ceiling != OSP_ISA_AUTO &&
            dnnl_set_max_cpu_isa(rungs[ceiling].dnnl) != dnnl_success) {
            rc = osp_err_set(err, OSP_EINVAL,
                             "engine: cannot set oneDNN's ISA ceiling to %s: "
                             "oneDNN was used in this process before its "
                             "first engine (the ceiling can only be set "
                             "before oneDNN's first primitive)",
                             osp_isa_name(ceiling));
            goto out;
        }
        unsigned f = cpu_feats & rungs[ceiling].feats &
                     dnnl_feats(dnnl_get_effective_cpu_isa());
        caps_fill(&caps, f, ceiling);
        caps_fixed = &caps;
    } else if (ceiling != OSP_ISA_AUTO &&
               rung_of(cpu_feats & rungs[ceiling].feats) != caps.isa) {
        /* Refused when a process of its own would run this engine at
         * another rung; asking again for the rung in effect, or for one
         * above what this CPU has, changes nothing. AUTO runs under
         * whatever is in effect. */
        rc = osp_err_set(err, OSP_EINVAL,
                         "engine: ISA ceiling %s asked for, but this process "
                         "already runs at %s (ceiling %s): oneDNN's ceiling "
                         "is set once per process, by its first engine",
                         osp_isa_name(ceiling), osp_isa_name(caps.isa),
                         caps.ceiling == OSP_ISA_AUTO ? "none"
                                                      : osp_isa_name(caps.ceiling));
    }
out:
    pthread_mutex_unlock(&caps_mu);
    return rc;
}

const osp__cpu_caps_t *osp__cpu_caps(void) {
    const osp__cpu_caps_t *k = caps_fixed;
    if (!k) {
        /* nothing asked for a ceiling before: none */
        int rc = osp__cpu_isa_apply(OSP_ISA_AUTO, NULL);
        OSP_ASSERT(rc == 0);
        k = caps_fixed;
    }
    return k;
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

/* The CPU's identity for caches of measured choices: vendor and the
 * family/model/stepping signature (CPUID leaves 0 and 1). */
void osp__cpu_signature(char *buf, size_t cap) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    char vendor[13] = "unknown";
    if (__get_cpuid(0, &a, &b, &c, &d)) {
        memcpy(vendor, &b, 4);
        memcpy(vendor + 4, &d, 4);
        memcpy(vendor + 8, &c, 4);
        vendor[12] = 0;
    }
    unsigned sig = 0;
    if (__get_cpuid(1, &a, &b, &c, &d))
        sig = a & 0x0fff3fffu; /* stepping, model, family, ext. model/family */
    snprintf(buf, cap, "%s-%05x", vendor, sig);
}
