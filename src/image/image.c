/* image.c — the image module's front door: limits, decode dispatch by sniffed
 * format, file loading, and the small helpers every decoder shares (dimension
 * checks before allocation, pixel buffer allocation). */
#include <stdlib.h>
#include <string.h>

#include "image/image_int.h"

_Thread_local osp_arena_t *osp__image_arena;

void *osp__image_mem(size_t bytes) {
    return osp__image_arena ? osp_arena_alloc_aligned(osp__image_arena, bytes, 64)
                            : malloc(bytes);
}

void osp__image_mem_free(void *p) {
    if (!osp__image_arena)
        free(p);
}

int osp_image_decode_arena(const void *buf, size_t len,
                           const osp_image_limits_t *lim, int min_w,
                           int min_h, osp_arena_t *arena, osp_image_t *out,
                           osp_err_t *err) {
    osp_arena_t *saved = osp__image_arena;
    osp__image_arena = arena;
    int rc = osp_image_decode(buf, len, lim, min_w, min_h, out, err);
    osp__image_arena = saved;
    return rc;
}

void osp_image_release(osp_image_t *img) {
    if (!img)
        return;
    osp__image_mem_free(img->rgb);
    memset(img, 0, sizeof *img);
}

void osp_image_limits_default(osp_image_limits_t *l) {
    l->max_bytes = OSP_IMAGE_DEFAULT_MAX_BYTES;
    l->max_pixels = OSP_IMAGE_DEFAULT_MAX_PIXELS;
}

int osp__image_check_dims(const char *what, int64_t w, int64_t h,
                          const osp_image_limits_t *lim, osp_err_t *err) {
    if (w <= 0 || h <= 0)
        return osp_err_set(err, OSP_EFORMAT, "%s: invalid size %lldx%lld",
                           what, (long long)w, (long long)h);
    if (w > OSP_IMAGE_MAX_DIM || h > OSP_IMAGE_MAX_DIM)
        return osp_err_set(err, OSP_ELIMIT,
                           "%s: %lldx%lld pixels exceeds the maximum side of "
                           "%d pixels",
                           what, (long long)w, (long long)h, OSP_IMAGE_MAX_DIM);
    /* Both factors are <= 2^24, so the product cannot overflow. */
    uint64_t px = (uint64_t)w * (uint64_t)h;
    if (lim->max_pixels && px > lim->max_pixels)
        return osp_err_set(err, OSP_ELIMIT,
                           "%s: %lldx%lld pixels exceeds the limit of %llu",
                           what, (long long)w, (long long)h,
                           (unsigned long long)lim->max_pixels);
    if (px > SIZE_MAX / 4)
        return osp_err_set(err, OSP_ELIMIT,
                           "%s: %lldx%lld pixels does not fit in memory", what,
                           (long long)w, (long long)h);
    return 0;
}

int osp__image_alloc(osp_image_t *img, int w, int h, const char *what,
                     osp_err_t *err) {
    size_t n = (size_t)w * (size_t)h * 3;
    img->rgb = osp__image_mem(n);
    if (!img->rgb)
        return osp_err_set(err, OSP_ENOMEM,
                           "%s: cannot allocate %zu bytes for %dx%d pixels",
                           what, n, w, h);
    img->width = w;
    img->height = h;
    return 0;
}

int osp_image_decode(const void *buf, size_t len, const osp_image_limits_t *lim,
                     int min_w, int min_h, osp_image_t *out, osp_err_t *err) {
    if (!out)
        return osp_err_set(err, OSP_EINVAL, "image: no output image");
    memset(out, 0, sizeof *out);
    if (!buf && len)
        return osp_err_set(err, OSP_EINVAL, "image: NULL buffer");
    osp_image_limits_t deflim;
    if (!lim) {
        osp_image_limits_default(&deflim);
        lim = &deflim;
    }
    if (lim->max_bytes && len > lim->max_bytes)
        return osp_err_set(err, OSP_ELIMIT,
                           "image: %zu bytes exceeds the limit of %zu bytes",
                           len, lim->max_bytes);
    if (len == 0)
        return osp_err_set(err, OSP_EUNSUPPORTED, "image: empty input");
    const uint8_t *b = buf;
    int rc;
    switch (osp_image_sniff(buf, len)) {
    case OSP_IMG_JPEG:
        rc = osp__jpeg_decode(b, len, lim, min_w, min_h, out, err);
        break;
    case OSP_IMG_PNG:
        rc = osp__png_decode(b, len, lim, out, err);
        break;
    case OSP_IMG_WEBP:
        rc = osp__webp_decode(b, len, lim, out, err);
        break;
    case OSP_IMG_BMP:
        rc = osp__bmp_decode(b, len, lim, out, err);
        break;
    default: {
        /* Show the first bytes: it is usually obvious what was sent instead
         * (an HTML error page, a GIF, JSON...). */
        char hex[3 * 8 + 1] = {0};
        size_t n = len < 8 ? len : 8;
        for (size_t i = 0; i < n; i++) {
            static const char digits[] = "0123456789abcdef";
            hex[3 * i] = digits[b[i] >> 4];
            hex[3 * i + 1] = digits[b[i] & 15];
            hex[3 * i + 2] = i + 1 < n ? ' ' : '\0';
        }
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "image: unrecognised format (%zu bytes starting "
                           "with %s); supported: JPEG, PNG, WebP, BMP",
                           len, hex);
    }
    }
    if (rc < 0)
        osp_image_release(out);
    return rc;
}

int osp_image_load_file(const char *path, const osp_image_limits_t *lim,
                        int min_w, int min_h, osp_image_t *out,
                        osp_err_t *err) {
    if (!out)
        return osp_err_set(err, OSP_EINVAL, "image: no output image");
    memset(out, 0, sizeof *out);
    osp_image_limits_t deflim;
    if (!lim) {
        osp_image_limits_default(&deflim);
        lim = &deflim;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = osp_read_file(path, lim->max_bytes ? lim->max_bytes : SIZE_MAX,
                           &data, &len, err);
    if (rc < 0)
        return rc; /* osp_read_file names the path already */
    rc = osp_image_decode(data, len, lim, min_w, min_h, out, err);
    free(data);
    if (rc < 0)
        osp_err_prefix(err, "%s", path);
    return rc;
}
