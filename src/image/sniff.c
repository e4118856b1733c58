/* sniff.c — recognises an image format from its first bytes, so decode can
 * dispatch on content rather than trusting a file name or Content-Type. */
#include <string.h>

#include "image/image_int.h"

osp_image_format_t osp_image_sniff(const void *buf, size_t len) {
    const uint8_t *b = buf;
    if (!b)
        return OSP_IMG_UNKNOWN;
    /* SOI followed by the first marker's 0xFF. */
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return OSP_IMG_JPEG;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A,
                                       '\n'};
    if (len >= 8 && memcmp(b, png_sig, 8) == 0)
        return OSP_IMG_PNG;
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return OSP_IMG_WEBP;
    /* "BM" alone is weak (it is also the start of plain text), so when the
     * DIB header size is present it must be one we know. */
    if (len >= 2 && b[0] == 'B' && b[1] == 'M') {
        if (len < 18)
            return OSP_IMG_BMP;
        uint32_t dib = (uint32_t)b[14] | (uint32_t)b[15] << 8 |
                       (uint32_t)b[16] << 16 | (uint32_t)b[17] << 24;
        switch (dib) {
        case 12: case 16: case 40: case 52: case 56: case 64: case 108:
        case 124:
            return OSP_IMG_BMP;
        default:
            return OSP_IMG_UNKNOWN;
        }
    }
    return OSP_IMG_UNKNOWN;
}

const char *osp_image_format_name(osp_image_format_t fmt) {
    switch (fmt) {
    case OSP_IMG_JPEG: return "jpeg";
    case OSP_IMG_PNG: return "png";
    case OSP_IMG_WEBP: return "webp";
    case OSP_IMG_BMP: return "bmp";
    case OSP_IMG_UNKNOWN:
    case OSP_IMG_FORMAT_COUNT: break;
    }
    return "unknown";
}
