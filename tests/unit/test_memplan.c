/* test_memplan.c — activation memory planning (src/engine/plan/memplan.c): no two
 * buffers whose lifetimes intersect may share bytes, offsets are aligned,
 * the arena never exceeds the sum of the sizes and, for simple chains,
 * reaches the peak of simultaneously live bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "engine/plan/memplan.h"
#include "osprey/common.h"

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

static void check_plan(osp__memplan_item_t *it, int n, size_t align,
                       size_t total) {
    size_t sum = 0;
    for (int i = 0; i < n; i++) {
        sum += round_up(it[i].size_bytes, align);
        assert_int_equal(it[i].offset % align, 0);
        assert_true(it[i].offset + it[i].size_bytes <= total ||
                    it[i].size_bytes == 0);
        for (int j = i + 1; j < n; j++) {
            if (!it[i].size_bytes || !it[j].size_bytes)
                continue;
            bool live = !(it[i].last < it[j].first || it[j].last < it[i].first);
            bool overlap = it[i].offset < it[j].offset + it[j].size_bytes &&
                           it[j].offset < it[i].offset + it[i].size_bytes;
            if (live && overlap)
                fail_msg("items %d [%d,%d]@%zu+%zu and %d [%d,%d]@%zu+%zu overlap",
                         i, it[i].first, it[i].last, it[i].offset,
                         it[i].size_bytes, j, it[j].first, it[j].last,
                         it[j].offset, it[j].size_bytes);
        }
    }
    assert_true(total <= sum);
}

static void test_random(void **state) {
    (void)state;
    uint32_t s = 12345;
    for (int round = 0; round < 200; round++) {
        int n = 1 + round % 60;
        osp__memplan_item_t it[64];
        for (int i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            int first = (int)(s >> 20) % 40;
            s = s * 1664525u + 1013904223u;
            int len = (int)(s >> 24) % 10;
            s = s * 1664525u + 1013904223u;
            it[i].size_bytes = (s >> 12) % 5000 + (round % 7 == 0 ? 0 : 1);
            it[i].first = first;
            it[i].last = first + len;
            it[i].offset = (size_t)-1;
        }
        size_t total = 0;
        assert_int_equal(osp__memplan_place(it, n, 64, &total), 0);
        check_plan(it, n, 64, total);
    }
}

/* A chain a→b→c→d where each buffer dies after the next is written needs
 * only two buffers' worth of memory. */
static void test_chain_reuse(void **state) {
    (void)state;
    osp__memplan_item_t it[6];
    for (int i = 0; i < 6; i++)
        it[i] = (osp__memplan_item_t){1024, i, i + 1, 0};
    size_t total = 0;
    assert_int_equal(osp__memplan_place(it, 6, 64, &total), 0);
    check_plan(it, 6, 64, total);
    assert_int_equal(total, 2048);
}

static void test_edge_cases(void **state) {
    (void)state;
    size_t total = 99;
    assert_int_equal(osp__memplan_place(NULL, 0, 64, &total), 0);
    assert_int_equal(total, 0);
    osp__memplan_item_t it[2] = {{100, 0, 0, 0}, {100, 0, 0, 0}};
    assert_int_equal(osp__memplan_place(it, 2, 3, &total), OSP_EINVAL);
    assert_int_equal(osp__memplan_place(it, 2, 16, &total), 0);
    assert_int_equal(total, 224); /* two live at once, 112 each */
    check_plan(it, 2, 16, total);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_chain_reuse),
        cmocka_unit_test(test_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
