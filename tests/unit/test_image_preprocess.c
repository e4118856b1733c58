/* test_image_preprocess.c — resize, crop, layout and normalisation tests:
 * hand-computed filter results, PIL oracle outputs committed as fixtures
 * (tests/data/images/make_fixtures.py: rand37x23_*.rgb), exact F32 values,
 * geometry of each mode, parameter validation and the decode hint. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "image/image_int.h"
#include "test_image_util.h"

static osp_image_t make_image(int w, int h, const uint8_t *rgb) {
    osp_image_t img = {w, h, malloc((size_t)w * h * 3)};
    assert_non_null(img.rgb);
    memcpy(img.rgb, rgb, (size_t)w * h * 3);
    return img;
}

static void u8_params(osp_preprocess_t *p, osp_resize_mode_t mode, int w,
                      int h) {
    osp_preprocess_default(p);
    p->mode = mode;
    p->out_w = w;
    p->out_h = h;
    p->dtype = OSP_DT_U8;
    p->layout = OSP_LAYOUT_NHWC;
}

static void test_defaults(void **state) {
    (void)state;
    osp_preprocess_t p;
    osp_preprocess_default(&p);
    assert_int_equal(p.mode, OSP_RESIZE_SHORT_CROP);
    assert_int_equal(p.resize_short, 256);
    assert_int_equal(p.out_w, 224);
    assert_int_equal(p.out_h, 224);
    assert_int_equal(p.layout, OSP_LAYOUT_NCHW);
    assert_int_equal(p.dtype, OSP_DT_F32);
    assert_true(p.scale == 1.0f / 255.0f);
    assert_true(p.mean[0] == 0.485f && p.mean[1] == 0.456f &&
                p.mean[2] == 0.406f);
    assert_true(p.std[0] == 0.229f && p.std[1] == 0.224f && p.std[2] == 0.225f);
    assert_int_equal(osp_preprocess_bytes(&p), 224 * 224 * 3 * 4);
    p.dtype = OSP_DT_U8;
    assert_int_equal(osp_preprocess_bytes(&p), 224 * 224 * 3);
    assert_int_equal(osp_preprocess_validate(&p, NULL), 0);

    osp_resize_mode_t m;
    assert_int_equal(osp_resize_mode_parse("central_fraction", &m), 0);
    assert_int_equal(m, OSP_RESIZE_CENTRAL_FRACTION);
    assert_int_equal(osp_resize_mode_parse("bogus", &m), OSP_EINVAL);
    assert_string_equal(osp_resize_mode_name(OSP_RESIZE_EXACT), "exact");
    osp_layout_t l;
    assert_int_equal(osp_layout_parse("NHWC", &l), 0);
    assert_int_equal(l, OSP_LAYOUT_NHWC);
    assert_string_equal(osp_layout_name(OSP_LAYOUT_NCHW), "nchw");
}

static void test_validate(void **state) {
    (void)state;
    osp_preprocess_t p;
    osp_err_t err = {0};
    osp_preprocess_default(&p);
    p.resize_short = 200; /* smaller than the 224 crop */
    assert_int_equal(osp_preprocess_validate(&p, &err), OSP_EINVAL);
    assert_non_null(strstr(err.msg, "resize_short 200"));
    assert_int_equal(osp_preprocess_bytes(&p), 0);
    osp_preprocess_default(&p);
    p.out_w = 0;
    assert_int_equal(osp_preprocess_validate(&p, &err), OSP_EINVAL);
    osp_preprocess_default(&p);
    p.dtype = OSP_DT_BF16;
    assert_int_equal(osp_preprocess_validate(&p, &err), OSP_EUNSUPPORTED);
    osp_preprocess_default(&p);
    p.std[1] = 0.0f;
    assert_int_equal(osp_preprocess_validate(&p, &err), OSP_EINVAL);
    osp_preprocess_default(&p);
    p.mode = OSP_RESIZE_CENTRAL_FRACTION;
    p.central_fraction = 0.0f;
    assert_int_equal(osp_preprocess_validate(&p, &err), OSP_EINVAL);
    p.central_fraction = NAN;
    assert_int_equal(osp_preprocess_validate(&p, &err), OSP_EINVAL);
    p.central_fraction = 1.0f;
    assert_int_equal(osp_preprocess_validate(&p, &err), 0);
    p.mode = OSP_RESIZE_MODE_COUNT;
    assert_int_equal(osp_preprocess_validate(&p, &err), OSP_EINVAL);
    osp_preprocess_default(&p);
    p.layout = OSP_LAYOUT_COUNT;
    assert_int_equal(osp_preprocess_validate(&p, &err), OSP_EINVAL);

    /* Bad images are refused, not crashed on. */
    osp_preprocess_default(&p);
    float out[1];
    osp_image_t empty = {0, 0, NULL};
    assert_int_equal(osp_image_preprocess(&empty, &p, out, &err), OSP_EINVAL);
}

static void test_decode_hint(void **state) {
    (void)state;
    osp_preprocess_t p;
    int w, h;
    osp_preprocess_default(&p);
    osp_preprocess_decode_hint(&p, &w, &h);
    assert_int_equal(w, 256 * OSP_PREPROCESS_DCT_MARGIN);
    assert_int_equal(h, 256 * OSP_PREPROCESS_DCT_MARGIN);
    p.mode = OSP_RESIZE_EXACT;
    p.out_w = 300;
    p.out_h = 100;
    osp_preprocess_decode_hint(&p, &w, &h);
    assert_int_equal(w, 300 * OSP_PREPROCESS_DCT_MARGIN);
    assert_int_equal(h, 100 * OSP_PREPROCESS_DCT_MARGIN);
    p.mode = OSP_RESIZE_CENTRAL_FRACTION;
    p.central_fraction = 0.875f;
    p.out_w = p.out_h = 299;
    osp_preprocess_decode_hint(&p, &w, &h);
    assert_int_equal(w, 342 * OSP_PREPROCESS_DCT_MARGIN); /* ceil(299/.875) */
    p.out_w = -1;
    osp_preprocess_decode_hint(&p, &w, &h);
    assert_int_equal(w, 0);
    assert_int_equal(h, 0);
}

/* Values worked out by hand from the triangle filter. */
static void test_resize_by_hand(void **state) {
    (void)state;
    osp_preprocess_t p;
    osp_err_t err = {0};
    uint8_t out[64];

    /* 4x1 → 2x1: support 2, taps (3,3,1)/7 and (1,3,3)/7. */
    static const uint8_t row[12] = {0, 0, 0, 70, 70, 70, 140, 140, 140,
                                    210, 210, 210};
    osp_image_t img = make_image(4, 1, row);
    u8_params(&p, OSP_RESIZE_EXACT, 2, 1);
    assert_int_equal(osp_image_preprocess(&img, &p, out, &err), 0);
    assert_int_equal(out[0], 50);  /* (0*3 + 70*3 + 140) / 7 */
    assert_int_equal(out[3], 160); /* (70 + 140*3 + 210*3) / 7 */
    osp_image_release(&img);

    /* 2x1 → 1x1: the average, rounded half up: (10 + 21) / 2 = 15.5. */
    static const uint8_t two[6] = {10, 100, 0, 21, 101, 255};
    img = make_image(2, 1, two);
    u8_params(&p, OSP_RESIZE_EXACT, 1, 1);
    assert_int_equal(osp_image_preprocess(&img, &p, out, &err), 0);
    assert_int_equal(out[0], 16);
    assert_int_equal(out[1], 101);
    assert_int_equal(out[2], 128);
    osp_image_release(&img);

    /* 1x1 → 3x2 upscale: constant. 2x1 → 4x1 upscale interpolates:
     * centres at 0.25, 0.75 → 10, 10 + 11*0.25; PIL clamps at the edge. */
    static const uint8_t one[3] = {7, 77, 177};
    img = make_image(1, 1, one);
    u8_params(&p, OSP_RESIZE_EXACT, 3, 2);
    assert_int_equal(osp_image_preprocess(&img, &p, out, &err), 0);
    for (int i = 0; i < 6; i++)
        assert_memory_equal(out + 3 * i, one, 3);
    osp_image_release(&img);
    static const uint8_t ramp[6] = {0, 0, 0, 200, 200, 200};
    img = make_image(2, 1, ramp);
    u8_params(&p, OSP_RESIZE_EXACT, 4, 1);
    assert_int_equal(osp_image_preprocess(&img, &p, out, &err), 0);
    /* Output x centres 0.25 .. 1.75 in input units: weights from distance
     * to input centres 0.5 and 1.5, renormalised at the edges. */
    assert_int_equal(out[0], 0);
    assert_int_equal(out[3], 50);
    assert_int_equal(out[6], 150);
    assert_int_equal(out[9], 200);
    osp_image_release(&img);
}

static void test_identity_and_layouts(void **state) {
    (void)state;
    /* 3x2 identity resize keeps pixels exactly; check both layouts. */
    uint8_t px[18];
    for (int i = 0; i < 18; i++)
        px[i] = (uint8_t)(i * 13 + 5);
    osp_image_t img = make_image(3, 2, px);
    osp_preprocess_t p;
    osp_err_t err = {0};
    uint8_t u8[18];
    u8_params(&p, OSP_RESIZE_EXACT, 3, 2);
    assert_int_equal(osp_image_preprocess(&img, &p, u8, &err), 0);
    assert_memory_equal(u8, px, 18);
    p.layout = OSP_LAYOUT_NCHW;
    assert_int_equal(osp_image_preprocess(&img, &p, u8, &err), 0);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 6; i++)
            assert_int_equal(u8[c * 6 + i], px[i * 3 + c]);

    /* F32: exactly ((float)v * scale - mean[c]) / std[c]. */
    float f[18];
    osp_preprocess_default(&p);
    p.mode = OSP_RESIZE_EXACT;
    p.out_w = 3;
    p.out_h = 2;
    assert_int_equal(osp_image_preprocess(&img, &p, f, &err), 0);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 6; i++) {
            float want =
                ((float)px[i * 3 + c] * p.scale - p.mean[c]) / p.std[c];
            if (f[c * 6 + i] != want)
                fail_msg("NCHW c%d i%d: %.9g != %.9g", c, i, f[c * 6 + i],
                         want);
        }
    /* A few absolute values: 0 → -mean/std, 255 → (1 - mean)/std. */
    static const uint8_t ends[6] = {0, 0, 0, 255, 255, 255};
    osp_image_t e = make_image(2, 1, ends);
    p.out_w = 2;
    p.out_h = 1;
    p.layout = OSP_LAYOUT_NHWC;
    assert_int_equal(osp_image_preprocess(&e, &p, f, &err), 0);
    assert_float_equal(f[0], -0.485f / 0.229f, 1e-6);
    assert_float_equal(f[2], -0.406f / 0.225f, 1e-6);
    assert_float_equal(f[3], (1.0f - 0.485f) / 0.229f, 1e-6);
    assert_float_equal(f[5], (1.0f - 0.406f) / 0.225f, 1e-6);
    /* Custom scale/mean/std (e.g. a [-1, 1] model). */
    p.scale = 1.0f / 127.5f;
    for (int c = 0; c < 3; c++)
        p.mean[c] = 1.0f, p.std[c] = 1.0f;
    assert_int_equal(osp_image_preprocess(&e, &p, f, &err), 0);
    assert_true(f[0] == -1.0f && f[1] == -1.0f && f[5] == 1.0f);
    osp_image_release(&e);
    osp_image_release(&img);
}

/* PIL oracle: tests/data/images/rand37x23_<case>.rgb were written by PIL
 * (resize BILINEAR, torchvision-style crop, TF central crop) from
 * rand37x23.png. Our resampler follows PIL's arithmetic, so we expect
 * identity; allow at most 1 (a double-rounding difference on an exotic
 * compiler) in a handful of samples. */
static void check_oracle(const char *case_name, const osp_preprocess_t *p) {
    osp_image_t src;
    osp_err_t err = {0};
    assert_int_equal(osp_image_load_file(timg_fixture("rand37x23.png"), NULL,
                                         0, 0, &src, &err),
                     0);
    char name[128];
    snprintf(name, sizeof name, "rand37x23_%s.rgb", case_name);
    size_t len;
    uint8_t *want = timg_read(name, &len);
    assert_int_equal(len, (size_t)p->out_w * p->out_h * 3);
    uint8_t *got = malloc(len);
    if (osp_image_preprocess(&src, p, got, &err) != 0)
        fail_msg("%s: %s", case_name, err.msg);
    int maxd = 0;
    size_t ndiff = 0;
    for (size_t i = 0; i < len; i++) {
        int d = abs(got[i] - want[i]);
        maxd = d > maxd ? d : maxd;
        ndiff += d != 0;
    }
    if (maxd > 1 || ndiff > len / 100)
        fail_msg("%s: %zu of %zu samples differ from PIL, max %d", case_name,
                 ndiff, len, maxd);
    free(got);
    free(want);
    osp_image_release(&src);
}

static void test_pil_oracle(void **state) {
    (void)state;
    osp_preprocess_t p;
    u8_params(&p, OSP_RESIZE_EXACT, 16, 12);
    check_oracle("exact_16x12", &p);
    u8_params(&p, OSP_RESIZE_EXACT, 50, 40);
    check_oracle("exact_50x40", &p);
    u8_params(&p, OSP_RESIZE_EXACT, 9, 40);
    check_oracle("exact_9x40", &p);
    u8_params(&p, OSP_RESIZE_EXACT, 1, 1);
    check_oracle("exact_1x1", &p);
    /* 37x23 → 32x20, crop offsets round(17/2) = 8 and round(5/2) = 2
     * (half to even, as Python). */
    u8_params(&p, OSP_RESIZE_SHORT_CROP, 15, 15);
    p.resize_short = 20;
    check_oracle("short20_crop15x15", &p);
    /* 37x23 → 48x30, offsets round(31/2) = 16, round(1/2) = 0. */
    u8_params(&p, OSP_RESIZE_SHORT_CROP, 17, 29);
    p.resize_short = 30;
    check_oracle("short30_crop17x29", &p);
    u8_params(&p, OSP_RESIZE_CENTRAL_FRACTION, 16, 16);
    p.central_fraction = 0.875f;
    check_oracle("central0875_16x16", &p);
}

static void test_short_crop_portrait(void **state) {
    (void)state;
    /* Portrait: width is the short side. A vertical ramp image 10x40,
     * short side → 5 (so 5x20), crop 5x4 from row round(16/2) = 8. */
    uint8_t px[10 * 40 * 3];
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 10; x++)
            for (int c = 0; c < 3; c++)
                px[(y * 10 + x) * 3 + c] = (uint8_t)(y * 6);
    osp_image_t img = make_image(10, 40, px);
    osp_preprocess_t p;
    osp_err_t err = {0};
    u8_params(&p, OSP_RESIZE_SHORT_CROP, 5, 4);
    p.resize_short = 5;
    uint8_t out[5 * 4 * 3];
    assert_int_equal(osp_image_preprocess(&img, &p, out, &err), 0);
    /* Output row j is resized row r = 8 + j, centred at input position
     * 2r + 1, i.e. between rows 2r and 2r + 1; the symmetric taps
     * (1, 3, 3, 1) / 8 on the ramp 6y give 6 * (2r + 0.5) = 12r + 3. A wrong
     * crop offset (e.g. from using the wrong axis) shifts this by 12. */
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 15; i++)
            if (out[j * 15 + i] != 12 * (8 + j) + 3)
                fail_msg("row %d sample %d: %d != %d", j, i, out[j * 15 + i],
                         12 * (8 + j) + 3);
    osp_image_release(&img);
}

static void test_extreme_sizes(void **state) {
    (void)state;
    /* A 1x300 strip to 224x224 with SHORT_CROP 256: long side 76800. */
    uint8_t *px = calloc(300 * 3, 1);
    for (int i = 0; i < 300 * 3; i++)
        px[i] = (uint8_t)(i / 3);
    osp_image_t img = make_image(1, 300, px);
    osp_preprocess_t p;
    osp_err_t err = {0};
    osp_preprocess_default(&p);
    size_t n = osp_preprocess_bytes(&p);
    float *out = malloc(n);
    assert_int_equal(osp_image_preprocess(&img, &p, out, &err), 0);
    p.mode = OSP_RESIZE_EXACT;
    assert_int_equal(osp_image_preprocess(&img, &p, out, &err), 0);
    p.mode = OSP_RESIZE_CENTRAL_FRACTION;
    p.central_fraction = 0.01f; /* crop is at least one pixel */
    assert_int_equal(osp_image_preprocess(&img, &p, out, &err), 0);
    free(out);
    free(px);
    osp_image_release(&img);
}

/* The module keeps no shared state: concurrent decode + preprocess from
 * several threads (as serve's HTTP threads do) gives the single-thread
 * result every time. */
typedef struct worker_s {
    const uint8_t *data;
    size_t len;
    const float *want;
    size_t n;
    int mismatches;
} worker_t;

static void *worker(void *arg) {
    worker_t *w = arg;
    osp_preprocess_t p;
    osp_preprocess_default(&p);
    p.resize_short = 24;
    p.out_w = p.out_h = 20;
    float *out = malloc(w->n * sizeof(float));
    for (int i = 0; i < 50 && out; i++) {
        osp_image_t img;
        osp_err_t err;
        if (osp_image_decode(w->data, w->len, NULL, 8, 8, &img, &err) != 0 ||
            osp_image_preprocess(&img, &p, out, &err) != 0 ||
            memcmp(out, w->want, w->n * sizeof(float)) != 0)
            w->mismatches++;
        osp_image_release(&img);
    }
    free(out);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    static const char *names[] = {"orient_6.jpg", "rgb4x3.png",
                                  "blocks_lossy.webp", "rgb4x3_32_bf_v5.bmp"};
    osp_preprocess_t p;
    osp_preprocess_default(&p);
    p.resize_short = 24;
    p.out_w = p.out_h = 20;
    size_t n = osp_preprocess_bytes(&p) / sizeof(float);
    worker_t w[4];
    pthread_t th[4];
    uint8_t *data[4];
    float *want[4];
    for (int i = 0; i < 4; i++) {
        size_t len;
        data[i] = timg_read(names[i], &len);
        want[i] = malloc(n * sizeof(float));
        osp_image_t img;
        osp_err_t err;
        assert_int_equal(osp_image_decode(data[i], len, NULL, 8, 8, &img, &err), 0);
        assert_int_equal(osp_image_preprocess(&img, &p, want[i], &err), 0);
        osp_image_release(&img);
        w[i] = (worker_t){data[i], len, want[i], n, 0};
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].mismatches, 0);
        free(data[i]);
        free(want[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_decode_hint),
        cmocka_unit_test(test_resize_by_hand),
        cmocka_unit_test(test_identity_and_layouts),
        cmocka_unit_test(test_pil_oracle),
        cmocka_unit_test(test_short_crop_portrait),
        cmocka_unit_test(test_extreme_sizes),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
