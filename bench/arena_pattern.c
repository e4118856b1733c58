/* arena_pattern.c — the serve request's allocation pattern (parts array, a
 * 602 KB float tensor, results, 1000 scores, top-k arrays, a 1 KB
 * response) with malloc/free against the request arena
 * (include/osprey/arena.h), created and destroyed per request or reset
 * between requests. A benchmark, not a test: it prints microseconds per
 * request and asserts nothing (timings on a shared machine).
 *
 * usage: bench_arena_pattern [ROUNDS]   (default 20000) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "osprey/arena.h"
#include "osprey/common.h"

int main(int argc, char **argv) {
    long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    if (argc > 2 || rounds < 1) {
        fprintf(stderr, "usage: bench_arena_pattern [ROUNDS]\n");
        return 2;
    }
    static const size_t sizes[] = {64 * 416, 3 * 224 * 224 * 4, 64, 4000,
                                   20, 20, 1024, 256, 256};
    const int n = (int)OSP_ARRAY_LEN(sizes);
    void *p[16];
    uint64_t t0 = osp_now_ns();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++) {
            p[i] = malloc(sizes[i]);
            ((volatile char *)p[i])[0] = 1;
        }
        for (int i = 0; i < n; i++)
            free(p[i]);
    }
    uint64_t t1 = osp_now_ns();
    for (long r = 0; r < rounds; r++) {
        osp_arena_t *a = osp_arena_create(0);
        for (int i = 0; i < n && a; i++) {
            p[i] = osp_arena_alloc(a, sizes[i]);
            ((volatile char *)p[i])[0] = 1;
        }
        osp_arena_destroy(a);
    }
    uint64_t t2 = osp_now_ns();
    osp_arena_t *a = osp_arena_create(0);
    if (!a)
        return 1;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++) {
            p[i] = osp_arena_alloc(a, sizes[i]);
            ((volatile char *)p[i])[0] = 1;
        }
        osp_arena_reset(a);
    }
    osp_arena_destroy(a);
    uint64_t t3 = osp_now_ns();
    printf("request allocation pattern: malloc/free %.2f us, arena "
           "create/destroy %.2f us, arena reset %.2f us per request\n",
           (double)(t1 - t0) / (double)rounds * 1e-3,
           (double)(t2 - t1) / (double)rounds * 1e-3,
           (double)(t3 - t2) / (double)rounds * 1e-3);
    return 0;
}
