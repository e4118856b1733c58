/* memplan.h — activation memory planning (private to src/engine).
 *
 * Given buffers with sizes and lifetimes (inclusive step intervals), assigns
 * offsets in one arena so that buffers alive at the same time never overlap.
 * Greedy: largest buffers first, each into the best-fitting gap among the
 * already placed buffers whose lifetimes intersect its own. */
#ifndef OSPREY_ENGINE_MEMPLAN_H
#define OSPREY_ENGINE_MEMPLAN_H

#include <stddef.h>

typedef struct osp__memplan_item_s {
    size_t size_bytes; /* in */
    int first, last;   /* in: inclusive lifetime in steps */
    size_t offset;     /* out: byte offset in the arena (aligned) */
} osp__memplan_item_t;

/* Places n items; *total_bytes receives the arena size. align must be a
 * power of two. Returns 0 or OSP_ENOMEM / OSP_EINVAL. */
int osp__memplan_place(osp__memplan_item_t *items, int n, size_t align,
                size_t *total_bytes);

#endif
