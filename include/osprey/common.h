/* common.h — error codes, error-message buffers and assertions shared by every
 * osprey module.
 *
 * Every fallible function returns 0 or a negative OSP_E* code (libuv style) and,
 * where the caller passes one, fills an osp_err_t with a human-readable message
 * that names the context (file, node, byte offset...). There is no global error
 * state: long-lived objects keep their own last error. */
#ifndef OSPREY_COMMON_H
#define OSPREY_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* X-macro: name, negative value, default text. Append only. */
#define OSP_ERRNO_MAP(X)                                                       \
    X(OK, 0, "success")                                                        \
    X(ENOMEM, -1, "out of memory")                                             \
    X(EINVAL, -2, "invalid argument")                                          \
    X(EIO, -3, "input/output error")                                           \
    X(ENOENT, -4, "no such file or object")                                    \
    X(EFORMAT, -5, "malformed input")                                          \
    X(EUNSUPPORTED, -6, "unsupported feature")                                 \
    X(ELIMIT, -7, "limit exceeded")                                            \
    X(EINTERNAL, -8, "internal error")                                         \
    X(ESHAPE, -9, "shape mismatch")                                            \
    X(EBUSY, -10, "resource busy")                                             \
    X(ETIMEDOUT, -11, "timed out")

enum {
#define OSP__ERR_ENUM(name, val, text) OSP_##name = (val),
    OSP_ERRNO_MAP(OSP__ERR_ENUM)
#undef OSP__ERR_ENUM
};

/* Returns a static string for an OSP_E* code; never NULL. */
const char *osp_strerror(int code);
/* Returns the symbolic name ("EFORMAT") of a code; never NULL. */
const char *osp_errname(int code);

/* A caller-owned message buffer. Functions that fail write into it. */
#define OSP_ERR_MSG_BYTES 512
typedef struct osp_err_s {
    int code;
    char msg[OSP_ERR_MSG_BYTES];
} osp_err_t;

/* Sets err (if non-NULL) to code and a printf-style message; returns code so
 * callers can write `return osp_err_set(err, OSP_EFORMAT, "...")`. */
int osp_err_set(osp_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes an existing message with more context ("loading x.onnx: ..."). */
int osp_err_prefix(osp_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void osp_err_clear(osp_err_t *err);

/* Broken internal invariants (never bad input) abort with file:line. */
void osp__assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));
#define OSP_ASSERT(e)                                                          \
    ((e) ? (void)0 : osp__assert_fail(#e, __FILE__, __LINE__))

#define OSP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define OSP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define OSP_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Makes room for one more element in a growable array of n elements with
 * capacity *cap: returns arr itself when there is room, else a realloc'd
 * array of twice the capacity (starting at min_cap) with *cap updated, or
 * NULL on ENOMEM (arr and *cap unchanged). Usage:
 *   T *items = osp_grow(v->items, &v->cap, v->n, sizeof *items, 64);
 *   if (!items) return OSP_ENOMEM;
 *   v->items = items; */
void *osp_grow(void *arr, int *cap, int n, size_t elem_bytes, int min_cap);

/* Monotonic clock in nanoseconds. */
uint64_t osp_now_ns(void);

/* Reads a whole file into a malloc'd buffer (caller frees). Files larger than
 * max_bytes are refused with OSP_ELIMIT. */
int osp_read_file(const char *path, size_t max_bytes, uint8_t **out,
                  size_t *out_len, osp_err_t *err);

/* YAML text → compact JSON text (malloc'd; caller frees), NULL with err
 * set. Of several documents, the first whose `kind` is prefer_kind (NULL:
 * none preferred), else the first. src/common/yaml.c explains the typing
 * of scalars. */
char *osp_yaml_to_json(const char *text, size_t len, const char *prefer_kind,
                       osp_err_t *err);

/* Decodes standard or URL-safe base64 (padding optional; no whitespace
 * included) into out, which holds at least len / 4 * 3 + 3 bytes. Returns
 * the decoded length, or -1 when s is not base64. */
long osp_base64_decode(const char *s, size_t len, uint8_t *out);

/* The CPU budget of this process: how many CPUs it may actually keep busy,
 * and what set that number (for the log; docs/serve.md, "CPU budget").
 *
 * cpus = min(affinity, quota) where affinity counts the sched_getaffinity
 * mask (which the kernel already narrows to the cpuset) and quota is the
 * CFS bandwidth limit of the process's own cgroup or of any ancestor, read
 * from cgroup v1 (cpu.cfs_quota_us / cpu.cfs_period_us of the `cpu`
 * controller's hierarchy) and cgroup v2 (cpu.max), found through
 * /proc/self/cgroup and /proc/self/mountinfo, so it also works in a
 * container that sees its cgroup mounted at its own root. A fractional
 * quota is rounded down (1.5 CPUs -> 1: a second thread would only be
 * throttled), never below 1. */
typedef struct osp_cpu_budget_s {
    int cpus;                /* the budget, >= 1 */
    int affinity_cpus;       /* CPUs in the affinity mask, >= 1 */
    /* The most restrictive cgroup CPU quota found (cgroup_version 0: none,
     * i.e. every cgroup on the way is unlimited or unreadable). */
    int cgroup_version;      /* 1 or 2; 0 = no quota */
    int quota_cpus;          /* floor(quota_us / period_us), >= 1; 0 = none */
    int64_t quota_us;        /* cpu.cfs_quota_us or cpu.max's first field */
    int64_t period_us;       /* cpu.cfs_period_us or cpu.max's second field */
    char cgroup_dir[4096];   /* the directory that holds it ("" = none) */
} osp_cpu_budget_t;

/* Probes affinity and the cgroup quotas now. Never fails: a missing,
 * unreadable or malformed cgroup file counts as "no quota there". */
void osp_cpu_budget(osp_cpu_budget_t *out);

/* Writes where the budget came from into buf (always NUL-terminated) and
 * returns buf: "cgroup v1 cpu quota 100000/100000", "cgroup v2 cpu.max
 * quota 150000/100000", "affinity (the cgroup v2 cpu.max quota
 * 400000/100000 allows 4)" or "affinity (no cgroup cpu quota)". */
const char *osp_cpu_budget_source(const osp_cpu_budget_t *b, char *buf,
                                  size_t cap);

/* osp_cpu_budget(...).cpus: CPUs this process may actually use. >= 1. */
int osp_cpus_available(void);

/* Asks the kernel to run the calling thread as soon as it wakes: the
 * shortest time slice the scheduler takes (Linux >= 6.12, EEVDF: a
 * SCHED_OTHER thread's sched_attr.sched_runtime; a waking thread with a
 * shorter slice than the running one preempts it). For a thread that
 * mostly sleeps and must answer fast — an HTTP event loop — beside
 * threads that keep every CPU busy; its share of the CPU does not change.
 * Keeps the thread's nice value; leaves other policies alone. 0 when the
 * kernel took the request (older kernels accept and ignore it), else
 * OSP_EUNSUPPORTED. */
int osp_thread_short_slice(void);

/* The memory this process may use: the most restrictive cgroup memory
 * limit of its own cgroup or any ancestor (v2 memory.max, v1
 * memory.limit_in_bytes of the `memory` hierarchy; found as for
 * osp_cpu_budget), else physical RAM. Sizes the default memory budget for
 * requests (docs/adr/0049-memory-budget.md). */
typedef struct osp_mem_limit_s {
    int64_t bytes;           /* min(cgroup limit, physical RAM); 0 = unknown */
    int64_t physical_bytes;  /* sysconf; 0 = unknown */
    int cgroup_version;      /* 1 or 2; 0 = no cgroup limit found */
    int64_t cgroup_bytes;    /* the limit found (0 = none) */
    char cgroup_dir[4096];   /* the directory that holds it ("" = none) */
} osp_mem_limit_t;
/* Probes now. Never fails: what cannot be read counts as "no limit". */
void osp_mem_limit(osp_mem_limit_t *out);

#endif
