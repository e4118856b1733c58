/* bmp.c — our own Windows BMP reader (no library: the format is simple, and
 * a small reader we own is easier to make bounds-safe than a dependency).
 *
 * Supported: BITMAPCOREHEADER (12 bytes), BITMAPINFOHEADER (40) and its
 * V2/V3/V4/V5 extensions (52, 56, 108, 124); 1/4/8-bit palettized, 16-bit
 * (5-5-5 or bit fields), 24-bit, 32-bit (BGRX or bit fields, alpha dropped);
 * bottom-up and top-down (negative height) rows padded to 4 bytes. Refused
 * with OSP_EUNSUPPORTED: RLE4/RLE8, embedded JPEG/PNG, OS/2 2.x headers,
 * non-contiguous bit masks. Every offset is checked against the buffer
 * length in 64-bit arithmetic before use. */
#include <string.h>

#include "image/image_int.h"

enum {
    BI_RGB = 0,
    BI_RLE8 = 1,
    BI_RLE4 = 2,
    BI_BITFIELDS = 3,
    BI_JPEG = 4,
    BI_PNG = 5,
    BI_ALPHABITFIELDS = 6,
};

#define FILE_HEADER_BYTES 14

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* One colour channel of a bit-field pixel. */
typedef struct chan_s {
    uint32_t mask;
    int shift, bits;
} chan_t;

/* Returns 0, or -1 when the mask's set bits are not contiguous. */
static int chan_init(chan_t *c, uint32_t mask) {
    c->mask = mask;
    c->shift = 0;
    c->bits = 0;
    if (!mask)
        return 0;
    while (!((mask >> c->shift) & 1))
        c->shift++;
    uint32_t v = mask >> c->shift;
    while (c->bits < 32 && ((v >> c->bits) & 1))
        c->bits++;
    if (c->bits < 32 && (v >> c->bits) != 0)
        return -1;
    return 0;
}

/* Scales a channel to 8 bits: wider fields keep their top 8 bits, narrower
 * ones map max → 255 with truncation (PIL's 5/6-bit expansion). */
static inline uint8_t chan_get(const chan_t *c, uint32_t px) {
    if (!c->mask)
        return 0;
    uint32_t v = (px & c->mask) >> c->shift;
    if (c->bits >= 8)
        return (uint8_t)(v >> (c->bits - 8));
    uint32_t max = (1u << c->bits) - 1;
    return (uint8_t)(v * 255 / max);
}

int osp__bmp_decode(const uint8_t *b, size_t len, const osp_image_limits_t *lim,
                    osp_image_t *out, osp_err_t *err) {
    if (len < FILE_HEADER_BYTES + 4)
        return osp_err_set(err, OSP_EFORMAT,
                           "BMP: truncated: %zu bytes is shorter than the "
                           "file header",
                           len);
    uint64_t off_bits = le32(b + 10);
    uint32_t dib = le32(b + 14);
    int64_t w, h;
    uint32_t bpp, comp, clr_used = 0, pal_entry_bytes;
    uint32_t masks[4] = {0, 0, 0, 0}; /* R, G, B, A */
    int have_masks = 0;
    uint64_t after_header = FILE_HEADER_BYTES + (uint64_t)dib;
    if (dib == 12) {
        if (len < after_header)
            return osp_err_set(err, OSP_EFORMAT, "BMP: truncated core header");
        w = le16(b + 18);
        h = le16(b + 20);
        bpp = le16(b + 24);
        comp = BI_RGB;
        pal_entry_bytes = 3;
    } else if (dib == 40 || dib == 52 || dib == 56 || dib == 108 ||
               dib == 124) {
        if (len < after_header)
            return osp_err_set(err, OSP_EFORMAT,
                               "BMP: truncated %u-byte info header (file has "
                               "%zu bytes)",
                               dib, len);
        w = (int32_t)le32(b + 18);
        h = (int32_t)le32(b + 22);
        bpp = le16(b + 28);
        comp = le32(b + 30);
        clr_used = le32(b + 46);
        pal_entry_bytes = 4;
        if (dib >= 52) { /* V2 and later hold the masks in the header */
            for (int i = 0; i < (dib >= 56 ? 4 : 3); i++)
                masks[i] = le32(b + 54 + 4 * i);
            have_masks = 1;
        }
    } else {
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "BMP: %u-byte DIB header (OS/2 2.x or unknown) is "
                           "not supported",
                           dib);
    }
    int top_down = h < 0;
    if (top_down)
        h = -h; /* h came from an int32, so -INT32_MIN fits in int64 */
    int rc = osp__image_check_dims("BMP", w, h, lim, err);
    if (rc < 0)
        return rc;

    if (comp == BI_RLE4 || comp == BI_RLE8)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "BMP: RLE%d compression is not supported",
                           comp == BI_RLE4 ? 4 : 8);
    if (comp == BI_JPEG || comp == BI_PNG)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "BMP: embedded %s data is not supported",
                           comp == BI_JPEG ? "JPEG" : "PNG");
    if (comp != BI_RGB && comp != BI_BITFIELDS && comp != BI_ALPHABITFIELDS)
        return osp_err_set(err, OSP_EFORMAT, "BMP: unknown compression %u",
                           comp);

    uint64_t pal_off = after_header;
    if (comp == BI_BITFIELDS || comp == BI_ALPHABITFIELDS) {
        if (bpp != 16 && bpp != 32)
            return osp_err_set(err, OSP_EFORMAT,
                               "BMP: bit fields with %u bits per pixel", bpp);
        if (!have_masks) { /* 40-byte header: masks follow it */
            int n = comp == BI_ALPHABITFIELDS ? 4 : 3;
            if (after_header + 4u * n > len)
                return osp_err_set(err, OSP_EFORMAT,
                                   "BMP: truncated bit masks");
            for (int i = 0; i < n; i++)
                masks[i] = le32(b + after_header + 4 * i);
            pal_off += 4u * n;
        }
    } else if (bpp == 16) {
        masks[0] = 0x7C00, masks[1] = 0x03E0, masks[2] = 0x001F;
    } else if (bpp == 32) {
        masks[0] = 0xFF0000, masks[1] = 0xFF00, masks[2] = 0xFF;
    } else if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24) {
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "BMP: %u bits per pixel is not supported", bpp);
    }
    chan_t ch[3];
    for (int i = 0; i < 3; i++)
        if (chan_init(&ch[i], masks[i]) < 0)
            return osp_err_set(err, OSP_EUNSUPPORTED,
                               "BMP: non-contiguous bit mask 0x%08x", masks[i]);

    /* Palette: entries beyond what the file provides stay black, so a bad
     * index can never read outside the table. */
    uint8_t pal[256][3];
    memset(pal, 0, sizeof pal);
    if (bpp <= 8) {
        uint32_t n = clr_used ? clr_used : 1u << bpp;
        if (n > (1u << bpp))
            n = 1u << bpp;
        if (pal_off + (uint64_t)n * pal_entry_bytes > len)
            return osp_err_set(err, OSP_EFORMAT,
                               "BMP: truncated palette (%u entries at offset "
                               "%llu, file has %zu bytes)",
                               n, (unsigned long long)pal_off, len);
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *e = b + pal_off + (uint64_t)i * pal_entry_bytes;
            pal[i][0] = e[2], pal[i][1] = e[1], pal[i][2] = e[0];
        }
    }

    uint64_t row_bits = (uint64_t)w * bpp;
    uint64_t stride = (row_bits + 31) / 32 * 4;
    uint64_t row_bytes = (row_bits + 7) / 8;
    if (off_bits < FILE_HEADER_BYTES + 12 || off_bits > len)
        return osp_err_set(err, OSP_EFORMAT,
                           "BMP: pixel data offset %llu outside the %zu-byte "
                           "file",
                           (unsigned long long)off_bits, len);
    /* The last row's padding is often missing; its pixels must be there. */
    uint64_t need = off_bits + stride * (uint64_t)(h - 1) + row_bytes;
    if (need > len)
        return osp_err_set(err, OSP_EFORMAT,
                           "BMP: truncated: %lldx%lld at %u bits needs %llu "
                           "bytes, file has %zu",
                           (long long)w, (long long)h, bpp,
                           (unsigned long long)need, len);

    if ((rc = osp__image_alloc(out, (int)w, (int)h, "BMP", err)) < 0)
        return rc;
    const int iw = (int)w, ih = (int)h;
    const int std32 = bpp == 32 && masks[0] == 0xFF0000 && masks[1] == 0xFF00 &&
                      masks[2] == 0xFF;
    for (int y = 0; y < ih; y++) {
        const uint8_t *s =
            b + off_bits + stride * (uint64_t)(top_down ? y : ih - 1 - y);
        uint8_t *d = out->rgb + (size_t)y * (size_t)iw * 3;
        switch (bpp) {
        case 24:
            for (int x = 0; x < iw; x++, s += 3, d += 3)
                d[0] = s[2], d[1] = s[1], d[2] = s[0];
            break;
        case 32:
            if (std32) {
                for (int x = 0; x < iw; x++, s += 4, d += 3)
                    d[0] = s[2], d[1] = s[1], d[2] = s[0];
                break;
            }
            for (int x = 0; x < iw; x++, s += 4, d += 3) {
                uint32_t px = le32(s);
                d[0] = chan_get(&ch[0], px);
                d[1] = chan_get(&ch[1], px);
                d[2] = chan_get(&ch[2], px);
            }
            break;
        case 16:
            for (int x = 0; x < iw; x++, s += 2, d += 3) {
                uint32_t px = le16(s);
                d[0] = chan_get(&ch[0], px);
                d[1] = chan_get(&ch[1], px);
                d[2] = chan_get(&ch[2], px);
            }
            break;
        default: /* 1, 4, 8: palette indices, most significant bits first */
            for (int x = 0; x < iw; x++, d += 3) {
                unsigned idx;
                if (bpp == 8)
                    idx = s[x];
                else if (bpp == 4)
                    idx = (s[x >> 1] >> ((x & 1) ? 0 : 4)) & 15;
                else
                    idx = (s[x >> 3] >> (7 - (x & 7))) & 1;
                d[0] = pal[idx][0], d[1] = pal[idx][1], d[2] = pal[idx][2];
            }
            break;
        }
    }
    return 0;
}
