/* common_int.h — private entry points of src/common, for its own files and
 * the unit tests (tests/unit/test_cpu_budget.c). */
#ifndef OSPREY_COMMON_COMMON_INT_H
#define OSPREY_COMMON_COMMON_INT_H

#include "osprey/common.h"

/* osp_cpu_budget with every input made explicit, so that a test can feed
 * fake files: proc_cgroup and mountinfo are read instead of
 * /proc/self/cgroup and /proc/self/mountinfo, root is put before every
 * mount point found in mountinfo ("" on the real system; a temporary
 * directory holding sys/fs/cgroup/... in a test), and affinity_cpus is what
 * sched_getaffinity counted (< 1 is taken as 1). Never fails: what cannot
 * be read or parsed counts as no quota. */
void osp__cpu_budget_probe(const char *proc_cgroup, const char *mountinfo,
                           const char *root, int affinity_cpus,
                           osp_cpu_budget_t *out);
/* osp_mem_limit with the same explicit inputs; physical_bytes is what
 * sysconf reported (0 = unknown). */
void osp__mem_limit_probe(const char *proc_cgroup, const char *mountinfo,
                          const char *root, int64_t physical_bytes,
                          osp_mem_limit_t *out);

#endif
