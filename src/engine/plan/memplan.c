/* memplan.c — packs activation buffers into one arena by liveness (see
 * memplan.h). Plans are built once per input shape, so a simple O(n^2)
 * greedy is fast enough (a ResNet has a few hundred buffers) and, with
 * largest-first ordering, lands close to the peak of simultaneously live
 * bytes. */
#include "engine/plan/memplan.h"

#include <stdlib.h>

#include "osprey/common.h"

typedef struct span_s {
    size_t begin, end; /* [begin, end) bytes */
} span_t;

static int cmp_order(const void *a, const void *b, void *ctx) {
    const osp__memplan_item_t *it = ctx;
    int ia = *(const int *)a, ib = *(const int *)b;
    if (it[ia].size_bytes != it[ib].size_bytes)
        return it[ia].size_bytes > it[ib].size_bytes ? -1 : 1;
    if (it[ia].first != it[ib].first)
        return it[ia].first < it[ib].first ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

static int cmp_span(const void *a, const void *b) {
    const span_t *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

int osp__memplan_place(osp__memplan_item_t *items, int n, size_t align,
                size_t *total_bytes) {
    *total_bytes = 0;
    if (n <= 0)
        return 0;
    if (align == 0 || (align & (align - 1)))
        return OSP_EINVAL;
    int rc = OSP_ENOMEM;
    int *order = malloc(sizeof(int) * (size_t)n);
    char *placed = calloc((size_t)n, 1);
    span_t *busy = malloc(sizeof(span_t) * (size_t)n);
    if (!order || !placed || !busy)
        goto out;
    for (int i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, (size_t)n, sizeof(int), cmp_order, items);
    size_t total = 0;
    for (int k = 0; k < n; k++) {
        osp__memplan_item_t *it = &items[order[k]];
        size_t size = (it->size_bytes + align - 1) & ~(align - 1);
        if (size == 0) {
            it->offset = 0;
            placed[order[k]] = 1;
            continue;
        }
        int nb = 0;
        for (int j = 0; j < n; j++) {
            const osp__memplan_item_t *o = &items[j];
            if (!placed[j] || o->size_bytes == 0 || o->last < it->first ||
                o->first > it->last)
                continue;
            busy[nb].begin = o->offset;
            busy[nb].end = o->offset + ((o->size_bytes + align - 1) & ~(align - 1));
            nb++;
        }
        qsort(busy, (size_t)nb, sizeof *busy, cmp_span);
        /* Best fit among the gaps; else after the last busy span. */
        size_t best = (size_t)-1, best_gap = (size_t)-1, cur = 0;
        for (int j = 0; j < nb; j++) {
            if (busy[j].begin > cur && busy[j].begin - cur >= size &&
                busy[j].begin - cur < best_gap) {
                best_gap = busy[j].begin - cur;
                best = cur;
            }
            if (busy[j].end > cur)
                cur = busy[j].end;
        }
        it->offset = best != (size_t)-1 ? best : cur;
        placed[order[k]] = 1;
        if (it->offset + size > total)
            total = it->offset + size;
    }
    *total_bytes = total;
    rc = 0;
out:
    free(order);
    free(placed);
    free(busy);
    return rc;
}
