/* test_image_decode.c — decoder tests: every supported format decodes known
 * pixels (fixtures from tests/data/images/make_fixtures.py), EXIF orientation
 * gives the same upright pixels for all 8 tags, DCT scaling honours the size
 * hint after orientation, and bad input (truncated, garbage, oversized,
 * randomly corrupted) gives the documented error — never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "image/image_int.h"
#include "test_image_util.h"

/* Must match make_fixtures.py. */
static const uint8_t PIX4x3[12][3] = {
    {255, 0, 0},    {0, 255, 0},     {0, 0, 255},     {255, 255, 0},
    {0, 255, 255},  {255, 0, 255},   {10, 20, 30},    {40, 50, 60},
    {70, 80, 90},   {100, 110, 120}, {130, 140, 150}, {250, 251, 252},
};
static const uint8_t BLOCKS[6][3] = {{200, 30, 30},  {30, 200, 30},
                                     {30, 30, 200},  {220, 220, 40},
                                     {40, 220, 220}, {220, 40, 220}};

static int decode_fixture(const char *name, int min_w, int min_h,
                          osp_image_t *img, osp_err_t *err) {
    size_t len;
    uint8_t *data = timg_read(name, &len);
    int rc = osp_image_decode(data, len, NULL, min_w, min_h, img, err);
    free(data);
    return rc;
}

/* Decodes a 4x3 fixture and checks every pixel against PIX4x3 passed
 * through `map` (quantisation for 16-bit BMP, gray for L images). */
typedef void (*pix_map_fn)(const uint8_t in[3], uint8_t out[3]);

static void expect_4x3(const char *name, pix_map_fn map, int tol) {
    osp_image_t img;
    osp_err_t err = {0};
    int rc = decode_fixture(name, 0, 0, &img, &err);
    if (rc != 0)
        fail_msg("%s: %s", name, err.msg);
    assert_int_equal(img.width, 4);
    assert_int_equal(img.height, 3);
    for (int i = 0; i < 12; i++) {
        uint8_t want[3] = {PIX4x3[i][0], PIX4x3[i][1], PIX4x3[i][2]};
        if (map)
            map(PIX4x3[i], want);
        for (int c = 0; c < 3; c++) {
            int got = img.rgb[3 * i + c];
            if (abs(got - want[c]) > tol)
                fail_msg("%s: pixel %d channel %d: got %d want %d (tol %d)",
                         name, i, c, got, want[c], tol);
        }
    }
    osp_image_release(&img);
    assert_null(img.rgb);
    assert_int_equal(img.width, 0);
}

static void map_565(const uint8_t in[3], uint8_t out[3]) {
    out[0] = (uint8_t)((in[0] >> 3) * 255 / 31);
    out[1] = (uint8_t)((in[1] >> 2) * 255 / 63);
    out[2] = (uint8_t)((in[2] >> 3) * 255 / 31);
}
static void map_555(const uint8_t in[3], uint8_t out[3]) {
    for (int c = 0; c < 3; c++)
        out[c] = (uint8_t)((in[c] >> 3) * 255 / 31);
}
static void map_gray_g(const uint8_t in[3], uint8_t out[3]) {
    out[0] = out[1] = out[2] = in[1];
}

/* Checks the centre of each 16x16 block of the 48x32 BLOCKS image, scaled
 * down by `div` (DCT scaling), within tol. `gray` compares with the PIL
 * luma of each block instead. */
static void expect_blocks(const char *what, const osp_image_t *img, int div,
                          int tol, int gray) {
    assert_int_equal(img->width, 48 / div);
    assert_int_equal(img->height, 32 / div);
    int bs = 16 / div;
    for (int b = 0; b < 6; b++) {
        int x = (b % 3) * bs + bs / 2, y = (b / 3) * bs + bs / 2;
        const uint8_t *px = img->rgb + ((size_t)y * img->width + x) * 3;
        for (int c = 0; c < 3; c++) {
            int want = BLOCKS[b][c];
            if (gray) /* ITU-R 601 luma, as PIL's convert("L") */
                want = (BLOCKS[b][0] * 299 + BLOCKS[b][1] * 587 +
                        BLOCKS[b][2] * 114 + 500) / 1000;
            if (abs(px[c] - want) > tol)
                fail_msg("%s: block %d channel %d at (%d,%d): got %d want %d "
                         "(tol %d)",
                         what, b, c, x, y, px[c], want, tol);
        }
    }
}

static void test_sniff(void **state) {
    (void)state;
    static const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xE0};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    static const uint8_t webp[] = "RIFF\x10\0\0\0WEBPVP8L";
    static const uint8_t bmp_short[] = "BM";
    uint8_t bmp[18] = {'B', 'M'};
    bmp[14] = 40;
    assert_int_equal(osp_image_sniff(jpg, sizeof jpg), OSP_IMG_JPEG);
    assert_int_equal(osp_image_sniff(jpg, 2), OSP_IMG_UNKNOWN);
    assert_int_equal(osp_image_sniff(png, sizeof png), OSP_IMG_PNG);
    assert_int_equal(osp_image_sniff(png, 7), OSP_IMG_UNKNOWN);
    assert_int_equal(osp_image_sniff(webp, 12), OSP_IMG_WEBP);
    assert_int_equal(osp_image_sniff(webp, 11), OSP_IMG_UNKNOWN);
    assert_int_equal(osp_image_sniff(bmp_short, 2), OSP_IMG_BMP);
    assert_int_equal(osp_image_sniff(bmp, sizeof bmp), OSP_IMG_BMP);
    bmp[14] = 41; /* not a DIB header size: "BM" text, not a bitmap */
    assert_int_equal(osp_image_sniff(bmp, sizeof bmp), OSP_IMG_UNKNOWN);
    assert_int_equal(osp_image_sniff("GIF89a", 6), OSP_IMG_UNKNOWN);
    assert_int_equal(osp_image_sniff(NULL, 10), OSP_IMG_UNKNOWN);
    assert_string_equal(osp_image_format_name(OSP_IMG_JPEG), "jpeg");
    assert_string_equal(osp_image_format_name(OSP_IMG_PNG), "png");
    assert_string_equal(osp_image_format_name(OSP_IMG_WEBP), "webp");
    assert_string_equal(osp_image_format_name(OSP_IMG_BMP), "bmp");
    assert_string_equal(osp_image_format_name(OSP_IMG_FORMAT_COUNT), "unknown");
}

static void test_png(void **state) {
    (void)state;
    expect_4x3("rgb4x3.png", NULL, 0);
    expect_4x3("rgb4x3_adam7.png", NULL, 0);
    expect_4x3("pal4x3.png", NULL, 0);  /* palette + tRNS: alpha dropped */
    expect_4x3("rgba4x3.png", NULL, 0); /* colours kept, alpha dropped */
    expect_4x3("rgb16_4x3.png", NULL, 0); /* 16-bit: high byte */
    expect_4x3("gray4x3.png", map_gray_g, 0);
    expect_4x3("la4x3.png", map_gray_g, 0);
    expect_4x3("gray16_4x3.png", map_gray_g, 0);
}

static void test_bmp(void **state) {
    (void)state;
    expect_4x3("rgb4x3_24_bu.bmp", NULL, 0);
    expect_4x3("rgb4x3_24_td.bmp", NULL, 0);
    expect_4x3("rgb4x3_24_core.bmp", NULL, 0);
    expect_4x3("rgb4x3_32_bu.bmp", NULL, 0);
    expect_4x3("rgb4x3_32_td.bmp", NULL, 0);
    expect_4x3("rgb4x3_32_bf_v5.bmp", NULL, 0);
    expect_4x3("rgb4x3_32_bf_td.bmp", NULL, 0);
    expect_4x3("rgb4x3_8_pal.bmp", NULL, 0);
    expect_4x3("rgb4x3_4_pal.bmp", NULL, 0);
    expect_4x3("rgb4x3_16_565.bmp", map_565, 0);
    expect_4x3("rgb4x3_16_555.bmp", map_555, 0);

    /* 1-bit checkerboard of PIX4x3[0] (index 0) and PIX4x3[11] (index 1):
     * row 0 is 1010, row 1 0101, row 2 1010. */
    osp_image_t img;
    osp_err_t err = {0};
    assert_int_equal(decode_fixture("check4x3_1.bmp", 0, 0, &img, &err), 0);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++) {
            int idx = ((x + y) % 2 == 0) ? 11 : 0;
            assert_memory_equal(img.rgb + (y * 4 + x) * 3, PIX4x3[idx], 3);
        }
    osp_image_release(&img);

    assert_int_equal(decode_fixture("rle8.bmp", 0, 0, &img, &err),
                     OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "RLE8"));
    assert_null(img.rgb);
}

static void test_webp(void **state) {
    (void)state;
    expect_4x3("rgb4x3_lossless.webp", NULL, 0);
    expect_4x3("rgba4x3_lossless.webp", NULL, 0);
    osp_image_t img;
    osp_err_t err = {0};
    assert_int_equal(decode_fixture("blocks_lossy.webp", 0, 0, &img, &err), 0);
    expect_blocks("blocks_lossy.webp", &img, 1, 12, 0);
    osp_image_release(&img);
    assert_int_equal(decode_fixture("anim4x3.webp", 0, 0, &img, &err),
                     OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "animated"));
    assert_null(img.rgb);
}

static void test_jpeg(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int tol, gray;
    } cases[] = {
        {"blocks.jpg", 6, 0},
        {"blocks_420.jpg", 16, 0},
        {"blocks_progressive.jpg", 6, 0},
        {"blocks_gray.jpg", 3, 1},
        {"blocks_cmyk.jpg", 8, 0},
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(cases); i++) {
        osp_image_t img;
        osp_err_t err = {0};
        if (decode_fixture(cases[i].name, 0, 0, &img, &err) != 0)
            fail_msg("%s: %s", cases[i].name, err.msg);
        expect_blocks(cases[i].name, &img, 1, cases[i].tol, cases[i].gray);
        osp_image_release(&img);
    }
}

/* CMYK and YCCK with black ink (both Adobe-inverted on disk): RGB =
 * (255 - ink) * (255 - K) / 255. Must match make_fixtures.py CMYK_K. */
static void test_jpeg_cmyk_black(void **state) {
    (void)state;
    static const int ink[6][4] = {{0, 0, 0, 128},    {200, 0, 0, 50},
                                  {0, 200, 0, 100},  {0, 0, 200, 150},
                                  {60, 120, 180, 30}, {10, 20, 30, 220}};
    /* cmyk_k.jpg: CMYK written by PIL; ycck_k.jpg: YCCK by TurboJPEG. */
    static const char *names[] = {"cmyk_k.jpg", "ycck_k.jpg"};
    for (size_t f = 0; f < OSP_ARRAY_LEN(names); f++) {
        osp_image_t img;
        osp_err_t err = {0};
        if (decode_fixture(names[f], 0, 0, &img, &err) != 0)
            fail_msg("%s: %s", names[f], err.msg);
        assert_int_equal(img.width, 48);
        assert_int_equal(img.height, 32);
        for (int b = 0; b < 6; b++) {
            int x = (b % 3) * 16 + 8, y = (b / 3) * 16 + 8;
            const uint8_t *px = img.rgb + ((size_t)y * 48 + x) * 3;
            for (int c = 0; c < 3; c++) {
                int want = (255 - ink[b][c]) * (255 - ink[b][3]) / 255;
                if (abs(px[c] - want) > 8)
                    fail_msg("%s block %d channel %d: got %d want %d",
                             names[f], b, c, px[c], want);
            }
        }
        osp_image_release(&img);
    }
}

static void test_exif_orientation(void **state) {
    (void)state;
    for (int o = 1; o <= 8; o++) {
        char name[32];
        snprintf(name, sizeof name, "orient_%d.jpg", o);
        osp_image_t img;
        osp_err_t err = {0};
        if (decode_fixture(name, 0, 0, &img, &err) != 0)
            fail_msg("%s: %s", name, err.msg);
        expect_blocks(name, &img, 1, 6, 0);
        osp_image_release(&img);
    }
}

/* Builds a minimal TIFF block with one orientation entry. */
static size_t make_tiff(uint8_t *t, int big, int value, uint16_t type) {
    memset(t, 0, 32);
    memcpy(t, big ? "MM\0*" : "II*\0", 4);
#define P16(p, v) (big ? ((p)[0] = (uint8_t)((v) >> 8), (p)[1] = (uint8_t)(v)) \
                       : ((p)[0] = (uint8_t)(v), (p)[1] = (uint8_t)((v) >> 8)))
    uint8_t *ifd_off = t + 4;
    if (big)
        ifd_off[3] = 8;
    else
        ifd_off[0] = 8;
    P16(t + 8, 1);          /* one entry */
    P16(t + 10, 0x0112);    /* orientation */
    P16(t + 12, type);      /* SHORT */
    if (big)
        t[17] = 1;          /* count 1 */
    else
        t[14] = 1;
    P16(t + 18, value);
#undef P16
    return 26;
}

static void test_exif_parser(void **state) {
    (void)state;
    uint8_t t[32];
    for (int big = 0; big <= 1; big++) {
        for (int v = 1; v <= 8; v++) {
            size_t n = make_tiff(t, big, v, 3);
            assert_int_equal(osp__exif_orientation(t, n), v);
            /* Every truncation of the entry (which ends at byte 22) falls
             * back to upright, never reads past. */
            for (size_t k = 0; k < 22; k++)
                assert_int_equal(osp__exif_orientation(t, k), 1);
        }
        size_t n = make_tiff(t, big, 9, 3); /* out of range */
        assert_int_equal(osp__exif_orientation(t, n), 1);
        n = make_tiff(t, big, 6, 4); /* LONG, not SHORT */
        assert_int_equal(osp__exif_orientation(t, n), 1);
    }
    /* IFD offset pointing far outside. */
    size_t n = make_tiff(t, 0, 6, 3);
    t[4] = 0xF0, t[5] = 0xFF, t[6] = 0xFF, t[7] = 0xFF;
    assert_int_equal(osp__exif_orientation(t, n), 1);
    /* Entry count larger than the data. */
    n = make_tiff(t, 0, 6, 3);
    t[8] = 0xFF, t[9] = 0xFF;
    t[10] = 0; /* first entry no longer the orientation tag */
    assert_int_equal(osp__exif_orientation(t, n), 1);
    assert_int_equal(osp__exif_orientation(NULL, 0), 1);
    memcpy(t, "XX*\0", 4);
    assert_int_equal(osp__exif_orientation(t, 26), 1);
}

static void test_orient_transform(void **state) {
    (void)state;
    /* A 3x2 image with pixel value = index; every orientation of it must
     * match the transform that PIL's exif_transpose performs. Expected
     * upright layouts (row-major indices) for stored
     *   0 1 2
     *   3 4 5                                                          */
    static const int want[9][6] = {
        {0}, {0, 1, 2, 3, 4, 5}, {2, 1, 0, 5, 4, 3}, {5, 4, 3, 2, 1, 0},
        {3, 4, 5, 0, 1, 2},
        {0, 3, 1, 4, 2, 5}, /* 5 transpose: 2 wide, 3 tall */
        {3, 0, 4, 1, 5, 2}, /* 6 rotate 90 clockwise */
        {5, 2, 4, 1, 3, 0}, /* 7 transverse */
        {2, 5, 1, 4, 0, 3}, /* 8 rotate 90 counter-clockwise */
    };
    for (int o = 1; o <= 8; o++) {
        osp_image_t img = {3, 2, malloc(18)};
        assert_non_null(img.rgb);
        for (int i = 0; i < 6; i++)
            img.rgb[3 * i] = img.rgb[3 * i + 1] = img.rgb[3 * i + 2] =
                (uint8_t)i;
        assert_int_equal(osp__image_orient(&img, o, NULL), 0);
        assert_int_equal(img.width, o >= 5 ? 2 : 3);
        assert_int_equal(img.height, o >= 5 ? 3 : 2);
        for (int i = 0; i < 6; i++)
            if (img.rgb[3 * i] != want[o][i] || img.rgb[3 * i + 2] != want[o][i])
                fail_msg("orientation %d: index %d: got %d want %d", o, i,
                         img.rgb[3 * i], want[o][i]);
        osp_image_release(&img);
    }
}

static void test_dct_scaling_hint(void **state) {
    (void)state;
    osp_image_t img;
    osp_err_t err = {0};
    /* Upright 48x32; 1/2 gives 24x16 >= 20x12, 1/4 (12x8) does not. */
    assert_int_equal(decode_fixture("orient_1.jpg", 20, 12, &img, &err), 0);
    expect_blocks("orient_1 hint 20x12", &img, 2, 8, 0);
    osp_image_release(&img);
    /* Stored 32x48 with orientation 6: the hint applies to the upright
     * image, so this must also give 24x16 (ignoring orientation, the stored
     * width 32/2 = 16 < 20 would force full size). */
    assert_int_equal(decode_fixture("orient_6.jpg", 20, 12, &img, &err), 0);
    expect_blocks("orient_6 hint 20x12", &img, 2, 8, 0);
    osp_image_release(&img);
    assert_int_equal(decode_fixture("orient_8.jpg", 12, 8, &img, &err), 0);
    expect_blocks("orient_8 hint 12x8", &img, 4, 10, 0);
    osp_image_release(&img);
    /* One pixel more than a reduction allows: full size. */
    assert_int_equal(decode_fixture("orient_6.jpg", 25, 1, &img, &err), 0);
    expect_blocks("orient_6 hint 25x1", &img, 1, 6, 0);
    osp_image_release(&img);
    /* Scaling never applies to other formats. */
    assert_int_equal(decode_fixture("blocks_lossy.webp", 1, 1, &img, &err), 0);
    assert_int_equal(img.width, 48);
    osp_image_release(&img);
}

static void test_dct_scaling_photo(void **state) {
    (void)state;
    const char *path = timg_photo("cat_1080p.jpg");
    if (!path) {
        fprintf(stderr, "skipping: cat_1080p.jpg not found (set "
                        "OSPREY_IMAGES)\n");
        skip();
    }
    osp_image_t full, img;
    osp_err_t err = {0};
    if (osp_image_load_file(path, NULL, 0, 0, &full, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(full.width, 1920);
    assert_int_equal(full.height, 1080);
    static const int hints[][2] = {{256, 256}, {512, 512}, {224, 224},
                                   {900, 10}, {10, 500}};
    for (size_t i = 0; i < OSP_ARRAY_LEN(hints); i++) {
        int hw = hints[i][0], hh = hints[i][1];
        if (osp_image_load_file(path, NULL, hw, hh, &img, &err) != 0)
            fail_msg("%s", err.msg);
        if (img.width < hw || img.height < hh || img.width >= full.width)
            fail_msg("hint %dx%d: decoded %dx%d", hw, hh, img.width,
                     img.height);
        /* It is the smallest power-of-two reduction that fits. */
        int div = full.width / img.width;
        assert_int_equal(full.width, img.width * div);
        if (div < 8)
            assert_true(full.width / (2 * div) < hw ||
                        (full.height + 2 * div - 1) / (2 * div) < hh);
        osp_image_release(&img);
    }
    osp_image_release(&full);
}

/* Every prefix of a valid file fails cleanly: OSP_EFORMAT once the magic is
 * there, OSP_EUNSUPPORTED before. BMPs may lack only the last row's
 * padding, so the fixtures used here have unpadded rows. */
static void test_truncated(void **state) {
    (void)state;
    static const char *names[] = {
        "rgb4x3.png",        "rgb4x3_adam7.png",     "pal4x3.png",
        "rgb16_4x3.png",     "rgb4x3_24_bu.bmp",     "rgb4x3_32_bf_v5.bmp",
        "rgb4x3_8_pal.bmp",  "rgb4x3_16_565.bmp",    "rgb4x3_lossless.webp",
        "blocks_lossy.webp", "blocks.jpg",           "blocks_progressive.jpg",
        "blocks_cmyk.jpg",   "orient_6.jpg",
    };
    for (size_t f = 0; f < OSP_ARRAY_LEN(names); f++) {
        size_t len;
        uint8_t *data = timg_read(names[f], &len);
        for (size_t n = 0; n < len; n++) {
            /* A fresh exact-size copy, so ASan catches any over-read. */
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, data, n);
            osp_image_t img;
            osp_err_t err = {0};
            int rc = osp_image_decode(cut, n, NULL, 0, 0, &img, &err);
            int want = osp_image_sniff(cut, n) == OSP_IMG_UNKNOWN
                           ? OSP_EUNSUPPORTED
                           : OSP_EFORMAT;
            if (rc != want)
                fail_msg("%s cut to %zu of %zu bytes: got %s (%s), want %s",
                         names[f], n, len, osp_errname(rc), err.msg,
                         osp_errname(want));
            assert_null(img.rgb);
            assert_true(err.msg[0] != '\0');
            free(cut);
        }
        free(data);
    }
}

static void test_garbage(void **state) {
    (void)state;
    osp_image_t img;
    osp_err_t err = {0};
    const char *html = "<html><body>502 Bad Gateway</body></html>";
    assert_int_equal(osp_image_decode(html, strlen(html), NULL, 0, 0, &img, &err),
                     OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "3c 68 74 6d")); /* shows the bytes */
    assert_int_equal(osp_image_decode(html, 0, NULL, 0, 0, &img, &err),
                     OSP_EUNSUPPORTED);
    assert_int_equal(osp_image_decode(NULL, 5, NULL, 0, 0, &img, &err),
                     OSP_EINVAL);
    uint32_t s = 12345;
    uint8_t buf[512];
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)round * 2;
        for (size_t i = 0; i < n; i++) {
            s = s * 1103515245u + 12345u;
            buf[i] = (uint8_t)(s >> 16);
        }
        if (osp_image_sniff(buf, n) != OSP_IMG_UNKNOWN)
            continue;
        assert_int_equal(osp_image_decode(buf, n, NULL, 0, 0, &img, &err),
                         OSP_EUNSUPPORTED);
    }
}

/* 54-byte BMP whose header claims w x h at 24 bits and no pixel data. */
static void make_bmp_header(uint8_t *b, int32_t w, int32_t h) {
    memset(b, 0, 54);
    b[0] = 'B', b[1] = 'M';
    b[10] = 54;
    b[14] = 40;
    memcpy(b + 18, &w, 4); /* little-endian host */
    memcpy(b + 22, &h, 4);
    b[26] = 1;
    b[28] = 24;
}

static void test_limits(void **state) {
    (void)state;
    osp_image_t img;
    osp_err_t err = {0};
    uint8_t hdr[54];
    /* Under ASan a 30 GB allocation would abort the test: passing proves
     * the check happens before allocation. */
    make_bmp_header(hdr, 100000, 100000);
    assert_int_equal(osp_image_decode(hdr, sizeof hdr, NULL, 0, 0, &img, &err),
                     OSP_ELIMIT);
    assert_string_equal(err.msg,
                        "BMP: 100000x100000 pixels exceeds the limit of "
                        "50000000");
    make_bmp_header(hdr, 100000, -100000); /* top-down */
    assert_int_equal(osp_image_decode(hdr, sizeof hdr, NULL, 0, 0, &img, &err),
                     OSP_ELIMIT);
    make_bmp_header(hdr, 1 << 30, 1); /* past the hard side cap */
    osp_image_limits_t none = {0, 0};
    assert_int_equal(osp_image_decode(hdr, sizeof hdr, &none, 0, 0, &img, &err),
                     OSP_ELIMIT);
    make_bmp_header(hdr, 4, 0);
    assert_int_equal(osp_image_decode(hdr, sizeof hdr, NULL, 0, 0, &img, &err),
                     OSP_EFORMAT);
    make_bmp_header(hdr, 4, INT32_MIN);
    assert_int_equal(osp_image_decode(hdr, sizeof hdr, &none, 0, 0, &img, &err),
                     OSP_ELIMIT);

    assert_int_equal(decode_fixture("huge_100000.png", 0, 0, &img, &err),
                     OSP_ELIMIT);
    assert_non_null(strstr(err.msg, "PNG: 100000x100000 pixels exceeds"));

    /* Exactly at the pixel limit passes, one below fails — every format. */
    static const char *names[] = {"rgb4x3.png", "rgb4x3_24_bu.bmp",
                                  "rgb4x3_lossless.webp", "blocks.jpg"};
    for (size_t f = 0; f < OSP_ARRAY_LEN(names); f++) {
        size_t len;
        uint8_t *data = timg_read(names[f], &len);
        uint64_t px = strstr(names[f], "blocks") ? 48 * 32 : 12;
        osp_image_limits_t lim = {0, px};
        assert_int_equal(osp_image_decode(data, len, &lim, 0, 0, &img, &err), 0);
        osp_image_release(&img);
        lim.max_pixels = px - 1;
        assert_int_equal(osp_image_decode(data, len, &lim, 0, 0, &img, &err),
                         OSP_ELIMIT);
        assert_null(img.rgb);
        /* Byte limit: len passes, len - 1 fails before anything is read. */
        lim = (osp_image_limits_t){len, 0};
        assert_int_equal(osp_image_decode(data, len, &lim, 0, 0, &img, &err), 0);
        osp_image_release(&img);
        lim.max_bytes = len - 1;
        assert_int_equal(osp_image_decode(data, len, &lim, 0, 0, &img, &err),
                         OSP_ELIMIT);
        assert_non_null(strstr(err.msg, "exceeds the limit"));
        free(data);
    }

    osp_image_limits_t d;
    osp_image_limits_default(&d);
    assert_int_equal(d.max_bytes, 32u << 20);
    assert_int_equal(d.max_pixels, 50000000u);
}

static void test_load_file(void **state) {
    (void)state;
    osp_image_t img;
    osp_err_t err = {0};
    assert_int_equal(osp_image_load_file(timg_fixture("rgb4x3.png"), NULL, 0, 0,
                                         &img, &err),
                     0);
    assert_memory_equal(img.rgb, PIX4x3, sizeof PIX4x3);
    osp_image_release(&img);
    osp_image_release(&img); /* idempotent */
    assert_int_equal(osp_image_load_file(timg_fixture("nope.png"), NULL, 0, 0,
                                         &img, &err),
                     OSP_ENOENT);
    osp_image_limits_t lim = {50, 0};
    assert_int_equal(osp_image_load_file(timg_fixture("rgb4x3.png"), &lim, 0, 0,
                                         &img, &err),
                     OSP_ELIMIT);
    /* Decoder errors carry the path. */
    assert_int_equal(osp_image_load_file(timg_fixture("rle8.bmp"), NULL, 0, 0,
                                         &img, &err),
                     OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "rle8.bmp: BMP: RLE8"));
}

/* Random byte corruption of every fixture: any result is fine as long as
 * nothing crashes or leaks (ASan/UBSan build) and success means a sane
 * image. */
static void test_corruption(void **state) {
    (void)state;
    static const char *names[] = {
        "rgb4x3.png",       "rgb4x3_adam7.png",   "pal4x3.png",
        "gray16_4x3.png",   "rgb4x3_24_core.bmp", "rgb4x3_32_bf_v5.bmp",
        "rgb4x3_32_bf_td.bmp", "rgb4x3_4_pal.bmp", "check4x3_1.bmp",
        "rgb4x3_16_555.bmp", "rgb4x3_lossless.webp", "blocks_lossy.webp",
        "blocks.jpg",       "blocks_progressive.jpg", "blocks_cmyk.jpg",
        "blocks_gray.jpg",  "orient_5.jpg",
    };
    uint32_t s = 777;
    osp_image_limits_t lim = {1 << 20, 1 << 20};
    for (size_t f = 0; f < OSP_ARRAY_LEN(names); f++) {
        size_t len;
        uint8_t *data = timg_read(names[f], &len);
        uint8_t *mut = malloc(len);
        for (int round = 0; round < 300; round++) {
            memcpy(mut, data, len);
            int flips = 1 + round % 4;
            for (int k = 0; k < flips; k++) {
                s = s * 1103515245u + 12345u;
                size_t at = (s >> 8) % len;
                s = s * 1103515245u + 12345u;
                mut[at] = (round & 1) ? (uint8_t)(s >> 16) : mut[at] ^ (uint8_t)(1u << (s >> 29));
            }
            osp_image_t img;
            osp_err_t err = {0};
            int rc = osp_image_decode(mut, len, &lim, (int)(s % 7), (int)(s % 5),
                                      &img, &err);
            if (rc == 0) {
                assert_true(img.width > 0 && img.height > 0);
                assert_true((uint64_t)img.width * img.height <= lim.max_pixels);
                osp_image_release(&img);
            } else {
                assert_null(img.rgb);
                assert_true(rc == OSP_EFORMAT || rc == OSP_EUNSUPPORTED ||
                            rc == OSP_ELIMIT);
            }
        }
        free(mut);
        free(data);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_png),
        cmocka_unit_test(test_bmp),
        cmocka_unit_test(test_webp),
        cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_jpeg_cmyk_black),
        cmocka_unit_test(test_exif_orientation),
        cmocka_unit_test(test_exif_parser),
        cmocka_unit_test(test_orient_transform),
        cmocka_unit_test(test_dct_scaling_hint),
        cmocka_unit_test(test_dct_scaling_photo),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
