/* test_cpu_budget.c — the CPU budget probe (src/common/cpu_budget.c) on fake
 * /proc/self/cgroup, /proc/self/mountinfo and cgroup files written into a
 * temporary directory: cgroup v1 with a quota, unlimited, the combined
 * `cpu,cpuacct` controller, a restrictive ancestor; v2 nested with a
 * restrictive ancestor and "max"; the hybrid layout (v1 cpu + an empty
 * unified cgroup2); fractional quotas rounded down but never below 1;
 * malformed files ignored (the affinity count wins); a container whose
 * mount shows its own cgroup as the root. Each case states the exact budget
 * expected. Last, the real probe on this machine stays within affinity.
 * The memory limit probe (osp__mem_limit_probe, same file) on the same
 * kind of fakes: v1 with a restrictive ancestor, v1's "unlimited" value,
 * v2 nested with "max", malformed files, a limit above physical RAM; and
 * the default budget derived from it (osp_http_auto_budget). */
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/common_int.h"
#include "osprey/http.h"

/* The mountinfo of a cgroup v1 host like this one (Debian, Docker's
 * layout): separate cpu and cpuacct hierarchies, cpuset before them, and an
 * empty cgroup2 at /sys/fs/cgroup/unified. */
#define MI_TMPFS "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n"
#define MI_V1_CPUSET                                                           \
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup "          \
    "rw,cpuset\n"
#define MI_V1_CPUACCT                                                          \
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup "         \
    "rw,cpuacct\n"
#define MI_V1_CPU                                                              \
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup "    \
    "rw,cpu\n"
#define MI_UNIFIED                                                             \
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
#define MI_V2                                                                  \
    "30 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:4 - cgroup2 "   \
    "cgroup2 rw,nsdelegate,memory_recursiveprot\n"

static char root[256];

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    (void)state;
    snprintf(root, sizeof root, "/tmp/osp_cpu_budget.XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes root/rel (making its directories) with the given text. */
static void put(const char *rel, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Runs the probe on root/proc_cgroup and root/mountinfo. */
static void probe(int affinity, osp_cpu_budget_t *b) {
    char pc[512], mi[512];
    snprintf(pc, sizeof pc, "%s/proc_cgroup", root);
    snprintf(mi, sizeof mi, "%s/mountinfo", root);
    osp__cpu_budget_probe(pc, mi, root, affinity, b);
}

/* b->cgroup_dir relative to root, for comparisons. */
static const char *rel_dir(const osp_cpu_budget_t *b) {
    size_t n = strlen(root);
    assert_int_equal(strncmp(b->cgroup_dir, root, n), 0);
    return b->cgroup_dir + n;
}

static void v1_cpu(const char *cg, const char *quota, const char *period) {
    char rel[512];
    snprintf(rel, sizeof rel, "sys/fs/cgroup/cpu%s/cpu.cfs_quota_us", cg);
    put(rel, quota);
    snprintf(rel, sizeof rel, "sys/fs/cgroup/cpu%s/cpu.cfs_period_us", cg);
    put(rel, period);
}

static void source_is(const osp_cpu_budget_t *b, const char *want) {
    char buf[256];
    assert_string_equal(osp_cpu_budget_source(b, buf, sizeof buf), want);
}

static void test_v1_quota(void **state) {
    (void)state;
    put("proc_cgroup", "9:name=systemd:/\n4:memory:/x\n3:cpuset:/\n"
                       "2:cpuacct:/\n1:cpu:/osp\n0::/\n");
    put("mountinfo", MI_TMPFS MI_V1_CPU MI_V1_CPUACCT MI_V1_CPUSET);
    v1_cpu("", "-1\n", "100000\n");
    v1_cpu("/osp", "100000\n", "100000\n");
    osp_cpu_budget_t b;
    probe(2, &b);
    assert_int_equal(b.cpus, 1);
    assert_int_equal(b.affinity_cpus, 2);
    assert_int_equal(b.cgroup_version, 1);
    assert_int_equal(b.quota_cpus, 1);
    assert_int_equal(b.quota_us, 100000);
    assert_int_equal(b.period_us, 100000);
    assert_string_equal(rel_dir(&b), "/sys/fs/cgroup/cpu/osp");
    source_is(&b, "cgroup v1 cpu quota 100000/100000");
    /* The same with a 2.5-CPU quota on 8 CPUs: rounded down to 2. */
    v1_cpu("/osp", "250000\n", "100000\n");
    probe(8, &b);
    assert_int_equal(b.cpus, 2);
    assert_int_equal(b.quota_cpus, 2);
    source_is(&b, "cgroup v1 cpu quota 250000/100000");
}

static void test_v1_unlimited(void **state) {
    (void)state;
    put("proc_cgroup", "2:cpuacct:/\n1:cpu:/osp\n0::/\n");
    put("mountinfo", MI_TMPFS MI_V1_CPU MI_V1_CPUACCT);
    v1_cpu("", "-1\n", "100000\n");
    v1_cpu("/osp", "-1\n", "100000\n");
    osp_cpu_budget_t b;
    probe(4, &b);
    assert_int_equal(b.cpus, 4);
    assert_int_equal(b.cgroup_version, 0);
    assert_int_equal(b.quota_cpus, 0);
    assert_string_equal(b.cgroup_dir, "");
    source_is(&b, "affinity (no cgroup cpu quota)");
}

/* Kubernetes nodes with cgroup v1 mount cpu and cpuacct together; the
 * hierarchies named cpuacct and cpuset hold decoy quota files that must
 * not be taken for the cpu controller's. */
static void test_v1_combined(void **state) {
    (void)state;
    put("proc_cgroup", "5:cpuset:/kubepods/a\n4:cpuacct:/decoy\n"
                       "3:cpu,cpuacct:/kubepods/pod1/ctr\n0::/\n");
    put("mountinfo",
        MI_TMPFS MI_V1_CPUSET MI_V1_CPUACCT
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup "
        "rw,cpu,cpuacct\n");
    put("sys/fs/cgroup/cpuacct/decoy/cpu.cfs_quota_us", "50000\n");
    put("sys/fs/cgroup/cpuacct/decoy/cpu.cfs_period_us", "100000\n");
    put("sys/fs/cgroup/cpuset/kubepods/a/cpu.cfs_quota_us", "50000\n");
    put("sys/fs/cgroup/cpuset/kubepods/a/cpu.cfs_period_us", "100000\n");
    put("sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/ctr/cpu.cfs_quota_us",
        "300000\n");
    put("sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/ctr/cpu.cfs_period_us",
        "100000\n");
    osp_cpu_budget_t b;
    probe(8, &b);
    assert_int_equal(b.cpus, 3);
    assert_int_equal(b.cgroup_version, 1);
    assert_string_equal(rel_dir(&b),
                        "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/ctr");
}

/* CFS bandwidth is hierarchical: a pod's quota limits its container even
 * when the container's own quota is unlimited or larger. */
static void test_v1_ancestor(void **state) {
    (void)state;
    put("proc_cgroup", "1:cpu:/pod/ctr\n");
    put("mountinfo", MI_TMPFS MI_V1_CPU);
    v1_cpu("", "-1\n", "100000\n");
    v1_cpu("/pod", "200000\n", "100000\n");
    v1_cpu("/pod/ctr", "-1\n", "100000\n");
    osp_cpu_budget_t b;
    probe(8, &b);
    assert_int_equal(b.cpus, 2);
    assert_string_equal(rel_dir(&b), "/sys/fs/cgroup/cpu/pod");
    v1_cpu("/pod/ctr", "600000\n", "100000\n");
    probe(8, &b);
    assert_int_equal(b.cpus, 2);
    /* A child more restrictive than its parent wins in turn; a different
     * period is compared as a fraction (150000/200000 = 0.75 CPU -> 1). */
    v1_cpu("/pod/ctr", "150000\n", "200000\n");
    probe(8, &b);
    assert_int_equal(b.cpus, 1);
    assert_int_equal(b.quota_us, 150000);
    assert_int_equal(b.period_us, 200000);
    assert_string_equal(rel_dir(&b), "/sys/fs/cgroup/cpu/pod/ctr");
}

static void test_v2_nested(void **state) {
    (void)state;
    put("proc_cgroup", "0::/a/b/c\n");
    put("mountinfo", MI_V2);
    /* The root cgroup has no cpu.max; a is the tightest. */
    put("sys/fs/cgroup/a/cpu.max", "300000 100000\n");
    put("sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
    put("sys/fs/cgroup/a/b/c/cpu.max", "400000 100000\n");
    osp_cpu_budget_t b;
    probe(16, &b);
    assert_int_equal(b.cpus, 3);
    assert_int_equal(b.cgroup_version, 2);
    assert_int_equal(b.quota_cpus, 3);
    assert_string_equal(rel_dir(&b), "/sys/fs/cgroup/a");
    source_is(&b, "cgroup v2 cpu.max quota 300000/100000");
    /* Fewer CPUs in the mask than the quota allows: the mask decides. */
    probe(2, &b);
    assert_int_equal(b.cpus, 2);
    assert_int_equal(b.quota_cpus, 3);
    source_is(&b, "affinity (the cgroup v2 cpu.max quota 300000/100000 "
                  "allows 3)");
}

static void test_v2_max(void **state) {
    (void)state;
    put("proc_cgroup", "0::/system.slice/osprey.service\n");
    put("mountinfo", MI_V2);
    put("sys/fs/cgroup/system.slice/cpu.max", "max 100000\n");
    put("sys/fs/cgroup/system.slice/osprey.service/cpu.max", "max 100000\n");
    osp_cpu_budget_t b;
    probe(6, &b);
    assert_int_equal(b.cpus, 6);
    assert_int_equal(b.cgroup_version, 0);
}

/* This machine's layout: the quota is in v1's cpu hierarchy; the unified
 * cgroup2 has no cpu controller (and so no cpu.max). */
static void test_hybrid(void **state) {
    (void)state;
    put("proc_cgroup", "4:memory:/m\n2:cpuacct:/\n1:cpu:/osp-test\n0::/\n");
    put("mountinfo", MI_TMPFS MI_V1_CPU MI_V1_CPUACCT MI_UNIFIED);
    put("sys/fs/cgroup/unified/cgroup.controllers", "\n");
    v1_cpu("", "-1\n", "100000\n");
    v1_cpu("/osp-test", "100000\n", "100000\n");
    osp_cpu_budget_t b;
    probe(2, &b);
    assert_int_equal(b.cpus, 1);
    assert_int_equal(b.cgroup_version, 1);
    /* Were both versions to hold a quota, the tighter one counts. */
    put("sys/fs/cgroup/unified/cpu.max", "50000 100000\n");
    v1_cpu("/osp-test", "300000\n", "100000\n");
    probe(4, &b);
    assert_int_equal(b.cpus, 1);
    assert_int_equal(b.cgroup_version, 2);
    assert_int_equal(b.quota_us, 50000);
}

static void test_fractional(void **state) {
    (void)state;
    static const struct {
        const char *cpu_max;
        int cpus;
    } cases[] = {
        {"150000 100000\n", 1},  /* 1.5 -> 1 */
        {"50000 100000\n", 1},   /* 0.5 -> 1, never 0 */
        {"1000 100000\n", 1},    /* 0.01 -> 1 */
        {"250000 100000\n", 2},  /* 2.5 -> 2 */
        {"199999 100000\n", 1},  /* just below 2 */
        {"200000 100000\n", 2},
        {"350000 50000\n", 7},   /* other period */
        {"100000000 100000\n", 12}, /* 1000 CPUs: the mask's 12 win */
    };
    put("proc_cgroup", "0::/w\n");
    put("mountinfo", MI_V2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put("sys/fs/cgroup/w/cpu.max", cases[i].cpu_max);
        osp_cpu_budget_t b;
        probe(12, &b);
        if (b.cpus != cases[i].cpus)
            fail_msg("cpu.max %s: %d CPUs, want %d", cases[i].cpu_max,
                     b.cpus, cases[i].cpus);
    }
}

/* Malformed files never produce a quota and never fail the probe. */
static void test_malformed(void **state) {
    (void)state;
    static const char *const cpu_max[] = {
        "abc 100000\n", "100000\n", "100000 0\n", "100000 -5\n",
        "0 100000\n", "-100000 100000\n", "100000 100000 7\n", "",
        "1e5 100000\n", "100000x 100000\n", "99999999999999999999 100000\n",
        "\n\n", "max\n",
    };
    put("proc_cgroup", "0::/w\n");
    put("mountinfo", MI_V2);
    osp_cpu_budget_t b;
    for (size_t i = 0; i < sizeof cpu_max / sizeof cpu_max[0]; i++) {
        put("sys/fs/cgroup/w/cpu.max", cpu_max[i]);
        probe(3, &b);
        if (b.cpus != 3 || b.cgroup_version)
            fail_msg("cpu.max '%s': %d CPUs (v%d), want the affinity 3",
                     cpu_max[i], b.cpus, b.cgroup_version);
    }
    /* An oversized file is refused, not truncated into a valid number. */
    char big[200];
    memset(big, ' ', sizeof big);
    memcpy(big, "50000 100000", 12);
    big[sizeof big - 1] = '\0';
    put("sys/fs/cgroup/w/cpu.max", big);
    probe(3, &b);
    assert_int_equal(b.cpus, 3);

    static const char *const v1[][2] = {
        {"abc\n", "100000\n"}, {"100000\n", "0\n"}, {"100000\n", "x\n"},
        {"0\n", "100000\n"}, {"-2\n", "100000\n"}, {"50000 1\n", "100000\n"},
        {"50000\n", ""},
    };
    put("proc_cgroup", "1:cpu:/osp\n");
    put("mountinfo", MI_TMPFS MI_V1_CPU);
    for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++) {
        v1_cpu("/osp", v1[i][0], v1[i][1]);
        probe(3, &b);
        if (b.cpus != 3 || b.cgroup_version)
            fail_msg("cfs quota '%s' period '%s': %d CPUs, want 3", v1[i][0],
                     v1[i][1], b.cpus);
    }

    /* A good quota, but /proc/self/cgroup or mountinfo is garbage, absent,
     * or points elsewhere: no quota found, no crash. */
    v1_cpu("/osp", "100000\n", "100000\n");
    probe(3, &b);
    assert_int_equal(b.cpus, 1); /* the files themselves are fine */
    static const char *const pc[] = {
        "", "garbage\n", "1:cpu\n", "1:cpuacct:/osp\n", "1:cpu:osp\n",
        "1:cpu:/../osp\n", "1:cpu:/nonexistent\n", ":::\n",
    };
    for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++) {
        put("proc_cgroup", pc[i]);
        probe(3, &b);
        if (b.cpus != 3)
            fail_msg("/proc/self/cgroup '%s': %d CPUs, want 3", pc[i], b.cpus);
    }
    put("proc_cgroup", "1:cpu:/osp\n");
    static const char *const mi[] = {
        "", "garbage\n", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup\n",
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpuacct\n",
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup2 cgroup2 rw\n",
        "32 31 0:29 /other /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
        "32 31 0:29 /os /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
        "- - - - - - - - -\n",
    };
    for (size_t i = 0; i < sizeof mi / sizeof mi[0]; i++) {
        put("mountinfo", mi[i]);
        probe(3, &b);
        if (b.cpus != 3)
            fail_msg("mountinfo '%s': %d CPUs, want 3", mi[i], b.cpus);
    }
    /* Missing files altogether. */
    osp__cpu_budget_probe("/nonexistent/cgroup", "/nonexistent/mountinfo",
                          root, 5, &b);
    assert_int_equal(b.cpus, 5);
    /* An affinity count below 1 (sched_getaffinity failed) is taken as 1. */
    osp__cpu_budget_probe("/nonexistent/cgroup", "/nonexistent/mountinfo",
                          root, 0, &b);
    assert_int_equal(b.cpus, 1);
    assert_int_equal(b.affinity_cpus, 1);
}

/* In a container without a cgroup namespace, /proc/self/cgroup shows the
 * full path but the mount shows only the container's cgroup, at the mount
 * point itself (mountinfo's root field); with a namespace both say "/".
 * Only the part of the tree the mount shows can be walked. */
static void test_container(void **state) {
    (void)state;
    put("proc_cgroup", "12:cpu,cpuacct:/kubepods/burstable/pod7/abc\n0::/\n");
    put("mountinfo",
        "1200 1199 0:29 /kubepods/burstable/pod7/abc /sys/fs/cgroup/cpu,cpuacct "
        "ro,nosuid,nodev,noexec,relatime master:11 - cgroup cgroup "
        "rw,cpu,cpuacct\n");
    put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "150000\n");
    put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    osp_cpu_budget_t b;
    probe(4, &b);
    assert_int_equal(b.cpus, 1);
    assert_string_equal(rel_dir(&b), "/sys/fs/cgroup/cpu,cpuacct");
    /* A process in a child of the container's cgroup: walked up to the
     * mount point, no further. */
    put("proc_cgroup", "12:cpu,cpuacct:/kubepods/burstable/pod7/abc/sub\n");
    put("sys/fs/cgroup/cpu,cpuacct/sub/cpu.cfs_quota_us", "-1\n");
    put("sys/fs/cgroup/cpu,cpuacct/sub/cpu.cfs_period_us", "100000\n");
    put("sys/fs/cgroup/cpu.cfs_quota_us", "50000\n"); /* above the mount */
    put("sys/fs/cgroup/cpu.cfs_period_us", "100000\n");
    probe(4, &b);
    assert_int_equal(b.cpus, 1);
    assert_int_equal(b.quota_us, 150000);
    /* ...and its own quota is found below the mount point, not under the
     * full host path (which does not exist in the container). */
    put("sys/fs/cgroup/cpu,cpuacct/sub/cpu.cfs_quota_us", "50000\n");
    probe(4, &b);
    assert_int_equal(b.quota_us, 50000);
    assert_string_equal(rel_dir(&b), "/sys/fs/cgroup/cpu,cpuacct/sub");
    /* cgroup v2 with a namespace: "0::/" and cgroup2 at /sys/fs/cgroup. */
    put("proc_cgroup", "0::/\n");
    put("mountinfo", "500 499 0:30 / /sys/fs/cgroup ro,nosuid - cgroup2 "
                     "cgroup rw\n");
    put("sys/fs/cgroup/cpu.max", "250000 100000\n");
    probe(4, &b);
    assert_int_equal(b.cpus, 2);
    assert_int_equal(b.cgroup_version, 2);
    assert_string_equal(rel_dir(&b), "/sys/fs/cgroup");
    /* A mount point with a space, escaped as \040 in mountinfo. */
    put("proc_cgroup", "0::/x\n");
    put("mountinfo", "500 499 0:30 / /cg\\040root rw - cgroup2 cgroup2 rw\n");
    put("cg root/x/cpu.max", "100000 100000\n");
    probe(4, &b);
    assert_int_equal(b.cpus, 1);
    assert_string_equal(rel_dir(&b), "/cg root/x");
}

/* The real probe: within the affinity mask, at least 1, and what
 * osp_cpus_available returns. */
static void test_real(void **state) {
    (void)state;
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    osp_cpu_budget_t b;
    osp_cpu_budget(&b);
    char buf[256];
    printf("this process: %d CPUs, %s%s%s\n", b.cpus,
           osp_cpu_budget_source(&b, buf, sizeof buf),
           b.cgroup_dir[0] ? " at " : "", b.cgroup_dir);
    assert_int_equal(b.affinity_cpus, CPU_COUNT(&set));
    assert_true(b.cpus >= 1 && b.cpus <= b.affinity_cpus);
    assert_int_equal(osp_cpus_available(), b.cpus);
}

#define MI_V1_MEMORY                                                           \
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup "         \
    "rw,memory\n"

static void mem_probe(int64_t phys, osp_mem_limit_t *m) {
    char pc[512], mi[512];
    snprintf(pc, sizeof pc, "%s/proc_cgroup", root);
    snprintf(mi, sizeof mi, "%s/mountinfo", root);
    osp__mem_limit_probe(pc, mi, root, phys, m);
}

#define GIB ((int64_t)1 << 30)

/* v1: the smaller of the cgroup's and an ancestor's limit; the cpu
 * hierarchy is not looked at. */
static void test_mem_v1_ancestor(void **state) {
    (void)state;
    put("mountinfo", MI_TMPFS MI_V1_CPU MI_V1_MEMORY MI_UNIFIED);
    put("proc_cgroup", "4:memory:/pod/c1\n1:cpu:/\n0::/\n");
    put("sys/fs/cgroup/memory/pod/c1/memory.limit_in_bytes", "4294967296\n");
    put("sys/fs/cgroup/memory/pod/memory.limit_in_bytes", "2147483648\n");
    put("sys/fs/cgroup/memory/memory.limit_in_bytes",
        "9223372036854771712\n");
    osp_mem_limit_t m;
    mem_probe(16 * GIB, &m);
    assert_int_equal(m.cgroup_version, 1);
    assert_int_equal(m.cgroup_bytes, 2 * GIB);
    assert_int_equal(m.bytes, 2 * GIB);
    assert_string_equal(m.cgroup_dir + strlen(root),
                        "/sys/fs/cgroup/memory/pod");
    assert_int_equal(osp_http_auto_budget(m.bytes), (uint64_t)GIB / 2);
}

/* v1's "no limit" (PAGE_COUNTER_MAX pages): physical RAM. */
static void test_mem_v1_unlimited(void **state) {
    (void)state;
    put("mountinfo", MI_TMPFS MI_V1_MEMORY);
    put("proc_cgroup", "4:memory:/a\n");
    put("sys/fs/cgroup/memory/a/memory.limit_in_bytes",
        "9223372036854771712\n");
    osp_mem_limit_t m;
    mem_probe(8 * GIB, &m);
    assert_int_equal(m.cgroup_version, 0);
    assert_int_equal(m.bytes, 8 * GIB);
    assert_int_equal(osp_http_auto_budget(m.bytes), (uint64_t)2 * GIB);
}

/* v2 nested: "max" in the leaf, a limit above it; one above physical RAM
 * does not raise the budget past RAM. */
static void test_mem_v2(void **state) {
    (void)state;
    put("mountinfo", MI_V2);
    put("proc_cgroup", "0::/kubepods/pod1/c1\n");
    put("sys/fs/cgroup/kubepods/pod1/c1/memory.max", "max\n");
    put("sys/fs/cgroup/kubepods/pod1/memory.max", "536870912\n");
    osp_mem_limit_t m;
    mem_probe(16 * GIB, &m);
    assert_int_equal(m.cgroup_version, 2);
    assert_int_equal(m.bytes, 512 << 20);
    assert_int_equal(osp_http_auto_budget(m.bytes), (uint64_t)128 << 20);
    mem_probe(GIB / 4, &m); /* RAM below the limit: RAM */
    assert_int_equal(m.bytes, GIB / 4);
    /* a quarter of 256 MiB is the 64 MiB floor; below, the floor */
    assert_int_equal(osp_http_auto_budget(m.bytes), OSP_HTTP_MIN_AUTO_BUDGET);
    assert_int_equal(osp_http_auto_budget(100 << 20), OSP_HTTP_MIN_AUTO_BUDGET);
    assert_int_equal(osp_http_auto_budget(0), OSP_HTTP_MIN_AUTO_BUDGET);
}

/* Malformed or missing files count as no limit. */
static void test_mem_malformed(void **state) {
    (void)state;
    put("mountinfo", MI_V2);
    put("proc_cgroup", "0::/a/b\n");
    put("sys/fs/cgroup/a/b/memory.max", "lots\n");
    put("sys/fs/cgroup/a/memory.max", "1 2\n");
    put("sys/fs/cgroup/memory.max", "-5\n");
    osp_mem_limit_t m;
    mem_probe(4 * GIB, &m);
    assert_int_equal(m.cgroup_version, 0);
    assert_int_equal(m.bytes, 4 * GIB);
}

static void test_mem_real(void **state) {
    (void)state;
    osp_mem_limit_t m;
    osp_mem_limit(&m);
    printf("this process: memory %lld bytes (physical %lld, cgroup v%d "
           "%lld%s%s)\n", (long long)m.bytes, (long long)m.physical_bytes,
           m.cgroup_version, (long long)m.cgroup_bytes,
           m.cgroup_dir[0] ? " at " : "", m.cgroup_dir);
    assert_true(m.physical_bytes > 0);
    assert_true(m.bytes > 0 && m.bytes <= m.physical_bytes);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v1_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_unlimited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_combined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_ancestor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hybrid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fractional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container, setup, teardown),
        cmocka_unit_test(test_real),
        cmocka_unit_test_setup_teardown(test_mem_v1_ancestor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mem_v1_unlimited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mem_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mem_malformed, setup, teardown),
        cmocka_unit_test(test_mem_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
