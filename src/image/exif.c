/* exif.c — EXIF orientation: reads tag 0x0112 from the TIFF structure in a
 * JPEG's APP1 segment, and rotates/mirrors a decoded image upright.
 *
 * Phones store photos in sensor orientation and record the rotation in EXIF;
 * classifying the sideways pixels costs accuracy, so decode applies it. Only
 * IFD0 is read; everything is bounds-checked, and a malformed EXIF block
 * means "upright" rather than a failed decode (browsers do the same). */
#include <stdlib.h>
#include <string.h>

#include "image/image_int.h"

static uint32_t rd16(const uint8_t *p, int big) {
    return big ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t rd32(const uint8_t *p, int big) {
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                     (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[1] << 8 | p[0];
}

int osp__exif_orientation(const uint8_t *tiff, size_t len) {
    enum { TAG_ORIENTATION = 0x0112, TYPE_SHORT = 3, ENTRY_BYTES = 12 };
    if (!tiff || len < 8)
        return 1;
    int big;
    if (tiff[0] == 'I' && tiff[1] == 'I')
        big = 0;
    else if (tiff[0] == 'M' && tiff[1] == 'M')
        big = 1;
    else
        return 1;
    if (rd16(tiff + 2, big) != 42)
        return 1;
    uint64_t ifd = rd32(tiff + 4, big);
    if (ifd + 2 > len)
        return 1;
    uint32_t count = rd16(tiff + ifd, big);
    uint64_t entries = ifd + 2;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = entries + (uint64_t)i * ENTRY_BYTES;
        if (e + ENTRY_BYTES > len)
            return 1;
        if (rd16(tiff + e, big) != TAG_ORIENTATION)
            continue;
        /* A SHORT with count 1 sits in the first two bytes of the value. */
        if (rd16(tiff + e + 2, big) != TYPE_SHORT ||
            rd32(tiff + e + 4, big) < 1)
            return 1;
        uint32_t v = rd16(tiff + e + 8, big);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

int osp__image_orient(osp_image_t *img, int orientation, osp_err_t *err) {
    if (orientation <= 1 || orientation > 8)
        return 0;
    const ptrdiff_t w = img->width, h = img->height;
    const int swap = orientation >= 5;
    uint8_t *dst = osp__image_mem((size_t)w * (size_t)h * 3);
    if (!dst)
        return osp_err_set(err, OSP_ENOMEM,
                           "image: cannot allocate %dx%d pixels to apply EXIF "
                           "orientation %d",
                           img->width, img->height, orientation);
    /* Where source pixel (x, y) lands, in destination pixel units: start +
     * x * step_x + y * step_y. The destination is w x h, or h x w when the
     * orientation transposes (5..8). */
    ptrdiff_t start, step_x, step_y;
    switch (orientation) {
    case 2: /* mirrored left-right */
        start = w - 1, step_x = -1, step_y = w;
        break;
    case 3: /* rotated 180 */
        start = (h - 1) * w + w - 1, step_x = -1, step_y = -w;
        break;
    case 4: /* mirrored top-bottom */
        start = (h - 1) * w, step_x = 1, step_y = -w;
        break;
    case 5: /* transposed: dst (y, x) */
        start = 0, step_x = h, step_y = 1;
        break;
    case 6: /* needs 90 degrees clockwise: dst (h-1-y, x) */
        start = h - 1, step_x = h, step_y = -1;
        break;
    case 7: /* transversed: dst (h-1-y, w-1-x) */
        start = (w - 1) * h + h - 1, step_x = -h, step_y = -1;
        break;
    default: /* 8, needs 90 degrees counter-clockwise: dst (y, w-1-x) */
        start = (w - 1) * h, step_x = -h, step_y = 1;
        break;
    }
    const uint8_t *src = img->rgb;
    /* Indices rather than moving pointers: a pointer stepped past the start
     * of the buffer would be undefined even if never dereferenced. */
    for (ptrdiff_t y = 0; y < h; y++) {
        ptrdiff_t di = start + y * step_y;
        const uint8_t *s = src + y * w * 3;
        for (ptrdiff_t x = 0; x < w; x++, s += 3, di += step_x) {
            uint8_t *d = dst + di * 3;
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
    osp__image_mem_free(img->rgb);
    img->rgb = dst;
    if (swap) {
        img->width = (int)h;
        img->height = (int)w;
    }
    return 0;
}
