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

/* What the headers say about the pixels. */
typedef struct bmp_hdr_s {
    int64_t w, h;             /* h > 0; top_down says the row order */
    int top_down;
    uint32_t bpp, comp, clr_used, pal_entry_bytes;
    uint32_t masks[4];        /* R, G, B, A */
    int have_masks;           /* the DIB header held them (V2 and later) */
    uint64_t off_bits;        /* pixel data offset */
    uint64_t pal_off;         /* palette (or 40-byte header's masks) offset */
} bmp_hdr_t;

/* The file and DIB headers: size, depth, compression (refusing what is not
 * supported) and the dimensions against the limits. */
static int parse_header(const uint8_t *b, size_t len,
                        const osp_image_limits_t *lim, bmp_hdr_t *hd,
                        osp_err_t *err) {
    if (len < FILE_HEADER_BYTES + 4)
        return osp_err_set(err, OSP_EFORMAT,
                           "BMP: truncated: %zu bytes is shorter than the "
                           "file header",
                           len);
    memset(hd, 0, sizeof *hd);
    hd->off_bits = le32(b + 10);
    uint32_t dib = le32(b + 14);
    hd->pal_off = FILE_HEADER_BYTES + (uint64_t)dib;
    if (dib == 12) {
        if (len < hd->pal_off)
            return osp_err_set(err, OSP_EFORMAT, "BMP: truncated core header");
        hd->w = le16(b + 18);
        hd->h = le16(b + 20);
        hd->bpp = le16(b + 24);
        hd->comp = BI_RGB;
        hd->pal_entry_bytes = 3;
    } else if (dib == 40 || dib == 52 || dib == 56 || dib == 108 ||
               dib == 124) {
        if (len < hd->pal_off)
            return osp_err_set(err, OSP_EFORMAT,
                               "BMP: truncated %u-byte info header (file has "
                               "%zu bytes)",
                               dib, len);
        hd->w = (int32_t)le32(b + 18);
        hd->h = (int32_t)le32(b + 22);
        hd->bpp = le16(b + 28);
        hd->comp = le32(b + 30);
        hd->clr_used = le32(b + 46);
        hd->pal_entry_bytes = 4;
        if (dib >= 52) { /* V2 and later hold the masks in the header */
            for (int i = 0; i < (dib >= 56 ? 4 : 3); i++)
                hd->masks[i] = le32(b + 54 + 4 * i);
            hd->have_masks = 1;
        }
    } else {
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "BMP: %u-byte DIB header (OS/2 2.x or unknown) is "
                           "not supported",
                           dib);
    }
    hd->top_down = hd->h < 0;
    if (hd->top_down)
        hd->h = -hd->h; /* h came from an int32: -INT32_MIN fits in int64 */
    int rc = osp__image_check_dims("BMP", hd->w, hd->h, lim, err);
    if (rc < 0)
        return rc;
    uint32_t comp = hd->comp;
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
    return 0;
}

/* The channel masks of 16- and 32-bit pixels (bit fields, or the defaults)
 * into ch[3]; refuses the depths this reader does not handle. */
static int parse_masks(const uint8_t *b, size_t len, bmp_hdr_t *hd,
                       chan_t ch[3], osp_err_t *err) {
    uint32_t bpp = hd->bpp, *masks = hd->masks;
    if (hd->comp == BI_BITFIELDS || hd->comp == BI_ALPHABITFIELDS) {
        if (bpp != 16 && bpp != 32)
            return osp_err_set(err, OSP_EFORMAT,
                               "BMP: bit fields with %u bits per pixel", bpp);
        if (!hd->have_masks) { /* 40-byte header: masks follow it */
            int n = hd->comp == BI_ALPHABITFIELDS ? 4 : 3;
            if (hd->pal_off + 4u * n > len)
                return osp_err_set(err, OSP_EFORMAT,
                                   "BMP: truncated bit masks");
            for (int i = 0; i < n; i++)
                masks[i] = le32(b + hd->pal_off + 4 * i);
            hd->pal_off += 4u * n;
        }
    } else if (bpp == 16) {
        masks[0] = 0x7C00, masks[1] = 0x03E0, masks[2] = 0x001F;
    } else if (bpp == 32) {
        masks[0] = 0xFF0000, masks[1] = 0xFF00, masks[2] = 0xFF;
    } else if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24) {
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "BMP: %u bits per pixel is not supported", bpp);
    }
    for (int i = 0; i < 3; i++)
        if (chan_init(&ch[i], masks[i]) < 0)
            return osp_err_set(err, OSP_EUNSUPPORTED,
                               "BMP: non-contiguous bit mask 0x%08x", masks[i]);
    return 0;
}

/* The palette of 1/4/8-bit images: entries beyond what the file provides
 * stay black, so a bad index can never read outside the table. */
static int read_palette(const uint8_t *b, size_t len, const bmp_hdr_t *hd,
                        uint8_t pal[256][3], osp_err_t *err) {
    memset(pal, 0, 256 * 3);
    if (hd->bpp > 8)
        return 0;
    uint32_t n = hd->clr_used ? hd->clr_used : 1u << hd->bpp;
    if (n > (1u << hd->bpp))
        n = 1u << hd->bpp;
    if (hd->pal_off + (uint64_t)n * hd->pal_entry_bytes > len)
        return osp_err_set(err, OSP_EFORMAT,
                           "BMP: truncated palette (%u entries at offset "
                           "%llu, file has %zu bytes)",
                           n, (unsigned long long)hd->pal_off, len);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = b + hd->pal_off + (uint64_t)i * hd->pal_entry_bytes;
        pal[i][0] = e[2], pal[i][1] = e[1], pal[i][2] = e[0];
    }
    return 0;
}

/* The row stride; checks that every row's pixels lie inside the file. */
static int check_pixels(size_t len, const bmp_hdr_t *hd, uint64_t *stride,
                        osp_err_t *err) {
    uint64_t row_bits = (uint64_t)hd->w * hd->bpp;
    uint64_t row_bytes = (row_bits + 7) / 8;
    *stride = (row_bits + 31) / 32 * 4;
    if (hd->off_bits < FILE_HEADER_BYTES + 12 || hd->off_bits > len)
        return osp_err_set(err, OSP_EFORMAT,
                           "BMP: pixel data offset %llu outside the %zu-byte "
                           "file",
                           (unsigned long long)hd->off_bits, len);
    /* The last row's padding is often missing; its pixels must be there. */
    uint64_t need = hd->off_bits + *stride * (uint64_t)(hd->h - 1) + row_bytes;
    if (need > len)
        return osp_err_set(err, OSP_EFORMAT,
                           "BMP: truncated: %lldx%lld at %u bits needs %llu "
                           "bytes, file has %zu",
                           (long long)hd->w, (long long)hd->h, hd->bpp,
                           (unsigned long long)need, len);
    return 0;
}

/* One row of w pixels from s into RGB at d. */
static void decode_row(const bmp_hdr_t *hd, const chan_t ch[3],
                       const uint8_t pal[256][3], const uint8_t *s,
                       uint8_t *d, int w) {
    const uint32_t bpp = hd->bpp;
    const uint32_t *m = hd->masks;
    switch (bpp) {
    case 24:
        for (int x = 0; x < w; x++, s += 3, d += 3)
            d[0] = s[2], d[1] = s[1], d[2] = s[0];
        break;
    case 32:
        if (m[0] == 0xFF0000 && m[1] == 0xFF00 && m[2] == 0xFF) {
            for (int x = 0; x < w; x++, s += 4, d += 3)
                d[0] = s[2], d[1] = s[1], d[2] = s[0];
            break;
        }
        /* other masks: bit fields, as 16-bit pixels */
        /* fall through */
    case 16:
        for (int x = 0; x < w; x++, s += bpp / 8, d += 3) {
            uint32_t px = bpp == 32 ? le32(s) : le16(s);
            d[0] = chan_get(&ch[0], px);
            d[1] = chan_get(&ch[1], px);
            d[2] = chan_get(&ch[2], px);
        }
        break;
    default: /* 1, 4, 8: palette indices, most significant bits first */
        for (int x = 0; x < w; x++, d += 3) {
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

int osp__bmp_decode(const uint8_t *b, size_t len, const osp_image_limits_t *lim,
                    osp_image_t *out, osp_err_t *err) {
    bmp_hdr_t hd;
    chan_t ch[3];
    uint8_t pal[256][3];
    uint64_t stride;
    int rc;
    if ((rc = parse_header(b, len, lim, &hd, err)) < 0 ||
        (rc = parse_masks(b, len, &hd, ch, err)) < 0 ||
        (rc = read_palette(b, len, &hd, pal, err)) < 0 ||
        (rc = check_pixels(len, &hd, &stride, err)) < 0)
        return rc;
    const int iw = (int)hd.w, ih = (int)hd.h;
    if ((rc = osp__image_alloc(out, iw, ih, "BMP", err)) < 0)
        return rc;
    for (int y = 0; y < ih; y++)
        decode_row(&hd, ch, pal,
                   b + hd.off_bits +
                       stride * (uint64_t)(hd.top_down ? y : ih - 1 - y),
                   out->rgb + (size_t)y * (size_t)iw * 3, iw);
    return 0;
}
