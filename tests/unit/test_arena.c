/* test_arena.c — the request arena (include/osprey/arena.h): alignment,
 * small allocations sharing a chunk, large ones getting their own, reset
 * keeping only the first chunk, overflow and bad alignment refused, the
 * image module's arena variants. (The timing comparison with malloc/free is
 * a benchmark: bench/arena_pattern.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "osprey/arena.h"
#include "osprey/common.h"
#include "osprey/image.h"

static void test_basic(void **state) {
    (void)state;
    osp_arena_t *a = osp_arena_create(4096);
    assert_non_null(a);
    assert_int_equal(osp_arena_held_bytes(a), 0); /* lazily allocated */
    char *prev = NULL;
    for (int i = 0; i < 100; i++) {
        char *p = osp_arena_alloc(a, (size_t)(i % 7) + 1);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % OSP_ARENA_ALIGN, 0);
        assert_true(p != prev);
        memset(p, 0xab, (size_t)(i % 7) + 1);
        prev = p;
    }
    size_t held = osp_arena_held_bytes(a);
    assert_true(held >= 4096 && held < 3 * 4096); /* shared chunks */
    void *z = osp_arena_alloc(a, 0);
    assert_non_null(z);
    uint8_t *c = osp_arena_calloc(a, 10, 100);
    assert_non_null(c);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(c[i], 0);
    char *s = osp_arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    void *al = osp_arena_alloc_aligned(a, 100, 256);
    assert_non_null(al);
    assert_int_equal((uintptr_t)al % 256, 0);
    osp_arena_destroy(a);
    osp_arena_destroy(NULL);
}

static void test_large_and_reset(void **state) {
    (void)state;
    osp_arena_t *a = osp_arena_create(4096);
    char *small = osp_arena_alloc(a, 100);
    size_t held1 = osp_arena_held_bytes(a);
    /* Large: its own chunk; the first chunk keeps serving small ones. */
    uint8_t *big = osp_arena_alloc(a, (size_t)3 << 20);
    assert_non_null(big);
    memset(big, 1, (size_t)3 << 20);
    assert_true(osp_arena_held_bytes(a) >= held1 + ((size_t)3 << 20));
    char *small2 = osp_arena_alloc(a, 100);
    assert_true(small2 > small && small2 < small + 4096);
    /* Many small ones grow new chunks. */
    for (int i = 0; i < 1000; i++)
        assert_non_null(osp_arena_alloc(a, 500));
    assert_true(osp_arena_used_bytes(a) >= 1000 * 500 + ((size_t)3 << 20));
    osp_arena_reset(a);
    assert_int_equal(osp_arena_used_bytes(a), 0);
    assert_int_equal(osp_arena_held_bytes(a), held1); /* the first chunk */
    char *again = osp_arena_alloc(a, 100);
    assert_ptr_equal(again, small); /* reused */
    osp_arena_destroy(a);
}

static void test_refusals(void **state) {
    (void)state;
    osp_arena_t *a = osp_arena_create(0);
    assert_null(osp_arena_alloc(a, SIZE_MAX));
    assert_null(osp_arena_alloc(a, SIZE_MAX - 8));
    assert_null(osp_arena_calloc(a, SIZE_MAX / 2, 4));
    assert_null(osp_arena_alloc_aligned(a, 8, 3));
    assert_null(osp_arena_alloc_aligned(a, 8, 8192));
    assert_null(osp_arena_alloc(NULL, 8));
    assert_non_null(osp_arena_alloc(a, 8));
    osp_arena_destroy(a);
}

/* The image module's arena variants give the same pixels and tensor as
 * the malloc ones, with the memory in the arena. */
static void test_image_in_arena(void **state) {
    (void)state;
    const char *src = getenv("OSP_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/images/orient_6.jpg",
             src ? src : ".");
    uint8_t *data = NULL;
    size_t len = 0;
    osp_err_t err = {0};
    if (osp_read_file(path, 1 << 24, &data, &len, &err) < 0) {
        snprintf(path, sizeof path, "../tests/data/images/orient_6.jpg");
        assert_int_equal(osp_read_file(path, 1 << 24, &data, &len, &err), 0);
    }
    osp_image_t ref, img;
    assert_int_equal(osp_image_decode(data, len, NULL, 0, 0, &ref, &err), 0);
    osp_arena_t *a = osp_arena_create(4096);
    assert_int_equal(osp_image_decode_arena(data, len, NULL, 0, 0, a, &img,
                                            &err), 0);
    assert_int_equal(img.width, ref.width);
    assert_int_equal(img.height, ref.height);
    size_t n = (size_t)img.width * (size_t)img.height * 3;
    assert_memory_equal(img.rgb, ref.rgb, n);
    assert_true(osp_arena_used_bytes(a) >= n);
    osp_preprocess_t p;
    memset(&p, 0, sizeof p);
    p.mode = OSP_RESIZE_SHORT_CROP;
    p.resize_short = 20;
    p.out_w = p.out_h = 16;
    p.layout = OSP_LAYOUT_NCHW;
    p.dtype = OSP_DT_F32;
    p.scale = 1.f / 255.f;
    for (int c = 0; c < 3; c++)
        p.mean[c] = 0.5f, p.std[c] = 0.25f;
    float t1[3 * 16 * 16], t2[3 * 16 * 16];
    assert_int_equal(osp_image_preprocess(&ref, &p, t1, &err), 0);
    size_t before = osp_arena_used_bytes(a);
    assert_int_equal(osp_image_preprocess_arena(&img, &p, t2, a, &err), 0);
    assert_true(osp_arena_used_bytes(a) > before); /* scratch came from it */
    assert_memory_equal(t1, t2, sizeof t1);
    /* A bad image in arena mode fails cleanly (nothing to free). */
    assert_true(osp_image_decode_arena(data, len / 3, NULL, 0, 0, a, &img,
                                       &err) < 0);
    osp_image_release(&ref);
    osp_arena_destroy(a);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_large_and_reset),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_image_in_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
