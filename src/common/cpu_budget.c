/* cpu_budget.c — how many CPUs this process may keep busy: the affinity mask
 * and the CFS bandwidth quota of its cgroup, in cgroup v1 and v2
 * (include/osprey/common.h; docs/serve.md, "CPU budget"); and, found the
 * same way, the memory limit of its cgroup (memory.max, v1
 * memory.limit_in_bytes), which sizes the default memory budget for
 * requests (docs/adr/0049-memory-budget.md).
 *
 * Reading /sys/fs/cgroup/cpu.max alone (as before) only works for a process
 * in the root cgroup of a pure v2 host, where there is never a quota. In a
 * nested v2 cgroup, on a cgroup v1 host (many Kubernetes nodes) or in the
 * hybrid layout (v1 controllers plus an empty cgroup2 at
 * /sys/fs/cgroup/unified) the quota was missed, and a worker limited to one
 * CPU started two engine threads that the quota then throttled.
 *
 * So: the process's cgroup path per hierarchy comes from /proc/self/cgroup;
 * where that hierarchy is mounted, and which of its cgroups the mount shows
 * as its root (a container without a cgroup namespace sees its own cgroup
 * mounted at /sys/fs/cgroup/cpu), from /proc/self/mountinfo. From the
 * process's cgroup directory we walk up to the mount point and keep the
 * most restrictive quota, because CFS bandwidth is hierarchical in both
 * versions: a cgroup never gets more than an ancestor's quota. The quota is
 * rounded down, as Go's automaxprocs does: with 1.5 CPUs a second busy
 * thread only gets throttled. Files we cannot read or parse are skipped —
 * a wrong guess of "no quota" costs some throttling, a refusal to start
 * would cost the service.
 *
 * Also here, as the other scheduler-facing code: osp_thread_short_slice,
 * a latency-critical thread's request for prompt wake-ups. */
#include "common/common_int.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest cgroup path or mount point we handle (PATH_MAX); longer lines in
 * /proc/self/cgroup or mountinfo are skipped. */
#define CPUB_PATH_BYTES 4096
/* A quota file holds one or two numbers; anything longer is malformed. */
#define CPUB_VALUE_BYTES 64
/* Fields of one mountinfo line we look at: 6 fixed, the optional ones,
 * "-", fstype, source, super options. */
#define CPUB_MAX_FIELDS 32
/* sched_getaffinity masks tried, in CPUs: the first covers nearly every
 * machine; bigger ones only after EINVAL (more CPUs than the mask). */
#define CPUB_MASK_MAX_CPUS (1 << 16)

/* One hierarchy to look in: v1's `cpu` controller or the v2 unified tree. */
typedef struct cpub_tree_s {
    int version;                   /* 1 or 2 */
    const char *ctrl;              /* v1: the controller ("cpu", "memory") */
    bool found;                    /* the process is in this hierarchy */
    char path[CPUB_PATH_BYTES];    /* its cgroup, from /proc/self/cgroup */
} cpub_tree_t;

/* True when the comma-separated list holds word as a whole element
 * ("cpu,cpuacct" holds "cpu"; "cpuacct" and "cpuset" do not). */
static bool list_has(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, word, n))
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* mountinfo escapes space, tab, newline and backslash in paths as \ooo. */
static void unescape_octal(char *s) {
    char *w = s;
    for (const char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
            r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* A cgroup path we can join under a mount point: absolute and without ".."
 * (which /proc/self/cgroup shows for a cgroup outside our namespace). */
static bool path_ok(const char *p) {
    if (p[0] != '/')
        return false;
    for (const char *c = p; (c = strstr(c, "/..")); c += 3)
        if (c[3] == '/' || c[3] == '\0')
            return false;
    return true;
}

/* Lines "hierarchy-id:controllers:path": v1's is the one whose controller
 * list holds v1->ctrl (e.g. "cpu", alone or as "cpu,cpuacct"), v2's is
 * "0::path". */
static void read_proc_cgroup(const char *file, cpub_tree_t *v1,
                             cpub_tree_t *v2) {
    FILE *f = fopen(file, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = *c2 = '\0';
        const char *id = line, *ctrl = c1 + 1, *path = c2 + 1;
        cpub_tree_t *t = NULL;
        if (!strcmp(id, "0") && !*ctrl)
            t = v2;
        else if (list_has(ctrl, v1->ctrl))
            t = v1;
        if (!t || t->found || !path_ok(path) ||
            strlen(path) >= sizeof t->path)
            continue;
        strcpy(t->path, path);
        t->found = true;
    }
    free(line);
    fclose(f);
}

/* Finds the mount of tree t in mountinfo that shows the process's cgroup
 * and writes root + mount point + the cgroup's path below the mount's root
 * into dir, and the length of root + mount point (where the walk up stops)
 * into *top. Returns false when no mount fits. */
static bool find_dir(const char *mountinfo, const char *root,
                     const cpub_tree_t *t, char *dir, size_t dir_cap,
                     size_t *top) {
    FILE *f = fopen(mountinfo, "r");
    if (!f)
        return false;
    bool ok = false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!ok && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *fld[CPUB_MAX_FIELDS], *save = NULL;
        int nf = 0, dash = -1;
        for (char *tok = strtok_r(line, " ", &save);
             tok && nf < CPUB_MAX_FIELDS; tok = strtok_r(NULL, " ", &save)) {
            if (dash < 0 && nf >= 6 && !strcmp(tok, "-"))
                dash = nf;
            fld[nf++] = tok;
        }
        if (dash < 0 || nf < dash + 4)
            continue;
        const char *fstype = fld[dash + 1], *super = fld[dash + 3];
        if (t->version == 1 ? strcmp(fstype, "cgroup") || !list_has(super, t->ctrl)
                            : strcmp(fstype, "cgroup2"))
            continue;
        char *mroot = fld[3], *mpoint = fld[4];
        unescape_octal(mroot);
        unescape_octal(mpoint);
        /* The part of the process's cgroup path below the mount's root. */
        const char *rel;
        size_t rl = strlen(mroot);
        if (!strcmp(mroot, "/"))
            rel = t->path;
        else if (!strncmp(t->path, mroot, rl) &&
                 (t->path[rl] == '/' || t->path[rl] == '\0'))
            rel = t->path + rl;
        else
            continue; /* a mount of another part of the tree */
        if (!strcmp(rel, "/"))
            rel = "";
        int w = snprintf(dir, dir_cap, "%s%s", root, mpoint);
        if (w < 0 || (size_t)w >= dir_cap)
            continue;
        /* Without its trailing '/', so that "/" + "/x" is not "//x": a
         * mount at "/" (cgroup2 in some containers) becomes "", and its
         * files "" + "/cpu.max". */
        while (w > 0 && dir[w - 1] == '/')
            dir[--w] = '\0';
        *top = (size_t)w;
        int w2 = snprintf(dir + w, dir_cap - (size_t)w, "%s", rel);
        ok = w2 >= 0 && (size_t)w2 < dir_cap - (size_t)w;
    }
    free(line);
    fclose(f);
    return ok;
}

/* Reads dir/name (a few bytes) into buf; false when missing, unreadable,
 * empty or too long. */
static bool read_value(const char *dir, const char *name, char *buf,
                       size_t cap) {
    char path[CPUB_PATH_BYTES + 32];
    int w = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= sizeof path)
        return false;
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (n == 0 || more)
        return false;
    buf[n] = '\0';
    return true;
}

/* Parses a whole token as a decimal int64; false for anything else. */
static bool parse_i64(const char *s, int64_t *out) {
    if (!*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = (int64_t)v;
    return true;
}

/* Splits buf (a file's text) into at most two whitespace-separated tokens;
 * returns their count, or 3 for "more than two". */
static int tokens2(char *buf, char **a, char **b) {
    char *save = NULL;
    *a = strtok_r(buf, " \t\n", &save);
    *b = *a ? strtok_r(NULL, " \t\n", &save) : NULL;
    if (!*a)
        return 0;
    if (!*b)
        return 1;
    return strtok_r(NULL, " \t\n", &save) ? 3 : 2;
}

/* The quota in one cgroup directory: true with *quota, *period > 0, false
 * when unlimited ("max", -1) or unreadable or malformed. */
static bool read_quota(int version, const char *dir, int64_t *quota,
                       int64_t *period) {
    char qb[CPUB_VALUE_BYTES], pb[CPUB_VALUE_BYTES];
    char *a, *b;
    if (version == 1) {
        /* cpu.cfs_quota_us: -1 = unlimited; cpu.cfs_period_us. */
        if (!read_value(dir, "cpu.cfs_quota_us", qb, sizeof qb) ||
            tokens2(qb, &a, &b) != 1 || !parse_i64(a, quota) || *quota <= 0)
            return false;
        if (!read_value(dir, "cpu.cfs_period_us", pb, sizeof pb) ||
            tokens2(pb, &a, &b) != 1 || !parse_i64(a, period))
            return false;
    } else {
        /* cpu.max: "$MAX $PERIOD", $MAX "max" = unlimited. */
        if (!read_value(dir, "cpu.max", qb, sizeof qb) ||
            tokens2(qb, &a, &b) != 2 || !strcmp(a, "max") ||
            !parse_i64(a, quota) || !parse_i64(b, period) || *quota <= 0)
            return false;
    }
    return *period > 0;
}

/* Calls visit(dir, ud) for the process's cgroup directory of tree t and
 * each ancestor up to the mount point (limits are hierarchical in both
 * cgroup versions: a cgroup never gets more than an ancestor allows). */
static void walk_up(const char *mountinfo, const char *root,
                    const cpub_tree_t *t,
                    void (*visit)(const cpub_tree_t *t, const char *dir,
                                  void *ud),
                    void *ud) {
    char dir[CPUB_PATH_BYTES];
    size_t top;
    if (!t->found || !find_dir(mountinfo, root, t, dir, sizeof dir, &top))
        return;
    for (;;) {
        visit(t, dir, ud);
        size_t len = strlen(dir);
        if (len <= top)
            break;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < top)
            break;
        *slash = '\0';
    }
}

/* Keeps, in out, the most restrictive quota seen so far (also across the
 * two versions). */
static void visit_quota(const cpub_tree_t *t, const char *dir, void *ud) {
    osp_cpu_budget_t *out = ud;
    int64_t q, p;
    /* q/p < best_q/best_p, cross-multiplied: exact in 128 bits for any two
     * positive int64 pairs (periods differ between cgroups). */
    if (read_quota(t->version, dir, &q, &p) &&
        (!out->cgroup_version ||
         (__int128)q * out->period_us < (__int128)out->quota_us * p)) {
        out->cgroup_version = t->version;
        out->quota_us = q;
        out->period_us = p;
        int64_t c = q / p;
        out->quota_cpus = c < 1 ? 1 : c > INT_MAX ? INT_MAX : (int)c;
        snprintf(out->cgroup_dir, sizeof out->cgroup_dir, "%s", dir);
    }
}

void osp__cpu_budget_probe(const char *proc_cgroup, const char *mountinfo,
                           const char *root, int affinity_cpus,
                           osp_cpu_budget_t *out) {
    memset(out, 0, sizeof *out);
    out->affinity_cpus = affinity_cpus < 1 ? 1 : affinity_cpus;
    cpub_tree_t v1 = {.version = 1, .ctrl = "cpu"}, v2 = {.version = 2};
    read_proc_cgroup(proc_cgroup, &v1, &v2);
    walk_up(mountinfo, root, &v1, visit_quota, out);
    walk_up(mountinfo, root, &v2, visit_quota, out);
    out->cpus = out->affinity_cpus;
    if (out->cgroup_version && out->quota_cpus < out->cpus)
        out->cpus = out->quota_cpus;
}

/* The memory limit in one cgroup directory: true with *bytes > 0, false
 * when unlimited ("max"; v1's "no limit" is PAGE_COUNTER_MAX pages, about
 * 2^63) or unreadable or malformed. */
static bool read_mem_limit(int version, const char *dir, int64_t *bytes) {
    char vb[CPUB_VALUE_BYTES];
    char *a, *b;
    if (!read_value(dir, version == 1 ? "memory.limit_in_bytes"
                                      : "memory.max", vb, sizeof vb) ||
        tokens2(vb, &a, &b) != 1 || !strcmp(a, "max") ||
        !parse_i64(a, bytes) || *bytes <= 0)
        return false;
    return *bytes < ((int64_t)1 << 62);
}

static void visit_mem(const cpub_tree_t *t, const char *dir, void *ud) {
    osp_mem_limit_t *out = ud;
    int64_t v;
    if (read_mem_limit(t->version, dir, &v) &&
        (!out->cgroup_version || v < out->cgroup_bytes)) {
        out->cgroup_version = t->version;
        out->cgroup_bytes = v;
        snprintf(out->cgroup_dir, sizeof out->cgroup_dir, "%s", dir);
    }
}

void osp__mem_limit_probe(const char *proc_cgroup, const char *mountinfo,
                          const char *root, int64_t physical_bytes,
                          osp_mem_limit_t *out) {
    memset(out, 0, sizeof *out);
    out->physical_bytes = physical_bytes;
    cpub_tree_t v1 = {.version = 1, .ctrl = "memory"}, v2 = {.version = 2};
    read_proc_cgroup(proc_cgroup, &v1, &v2);
    walk_up(mountinfo, root, &v1, visit_mem, out);
    walk_up(mountinfo, root, &v2, visit_mem, out);
    out->bytes = physical_bytes;
    if (out->cgroup_version && (out->bytes <= 0 || out->cgroup_bytes < out->bytes))
        out->bytes = out->cgroup_bytes;
}

void osp_mem_limit(osp_mem_limit_t *out) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    int64_t phys = pages > 0 && psz > 0 ? (int64_t)pages * psz : 0;
    osp__mem_limit_probe("/proc/self/cgroup", "/proc/self/mountinfo", "",
                         phys, out);
}

/* CPUs in the affinity mask; masks beyond 1024 CPUs need a bigger set. */
static int affinity_count(void) {
    for (int n = CPU_SETSIZE; n <= CPUB_MASK_MAX_CPUS; n *= 2) {
        cpu_set_t *set = CPU_ALLOC((size_t)n);
        if (!set)
            return 1;
        size_t sz = CPU_ALLOC_SIZE((size_t)n);
        int rc = sched_getaffinity(0, sz, set);
        int c = rc == 0 ? CPU_COUNT_S(sz, set) : 0;
        CPU_FREE(set);
        if (rc == 0)
            return c > 0 ? c : 1;
        if (errno != EINVAL)
            break;
    }
    return 1;
}

void osp_cpu_budget(osp_cpu_budget_t *out) {
    osp__cpu_budget_probe("/proc/self/cgroup", "/proc/self/mountinfo", "",
                          affinity_count(), out);
}

int osp_cpus_available(void) {
    osp_cpu_budget_t b;
    osp_cpu_budget(&b);
    return b.cpus;
}

const char *osp_cpu_budget_source(const osp_cpu_budget_t *b, char *buf,
                                  size_t cap) {
    if (!cap)
        return buf;
    const char *what = b->cgroup_version == 1 ? "cgroup v1 cpu quota"
                                              : "cgroup v2 cpu.max quota";
    if (!b->cgroup_version)
        snprintf(buf, cap, "affinity (no cgroup cpu quota)");
    else if (b->quota_cpus < b->affinity_cpus)
        snprintf(buf, cap, "%s %" PRId64 "/%" PRId64, what, b->quota_us,
                 b->period_us);
    else
        snprintf(buf, cap, "affinity (the %s %" PRId64 "/%" PRId64
                           " allows %d)", what, b->quota_us, b->period_us,
                 b->quota_cpus);
    return buf;
}

/* struct sched_attr of sched_setattr(2) (glibc has no wrapper before 2.41);
 * the first version of it, which every kernel with the call accepts. */
typedef struct {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
} osp__sched_attr_t;

/* The shortest slice EEVDF takes (it clamps to 0.1..100 ms). */
#define SHORT_SLICE_NS 100000ull

int osp_thread_short_slice(void) {
#if defined(SYS_sched_getattr) && defined(SYS_sched_setattr)
    osp__sched_attr_t a;
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0) != 0)
        return OSP_EUNSUPPORTED;
    if (a.sched_policy != SCHED_OTHER)
        return 0; /* batch, idle, real-time: chosen by someone on purpose */
    a.size = sizeof a;
    a.sched_flags = 0;
    a.sched_runtime = SHORT_SLICE_NS; /* the nice value stays as read */
    return syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 0 : OSP_EUNSUPPORTED;
#else
    return OSP_EUNSUPPORTED;
#endif
}
