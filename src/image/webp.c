/* webp.c — WebP decoding (lossy and lossless, still images) with libwebp.
 * The bitstream features are read first so the pixel limit is enforced
 * before allocation; decoding goes straight into our own malloc'd buffer so
 * the caller frees it like any other image. Animated WebP is refused. */
#include <webp/decode.h>

#include "image/image_int.h"

static const char *vp8_status_text(VP8StatusCode s) {
    switch (s) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated (not enough data)";
    }
    return "unknown status";
}

int osp__webp_decode(const uint8_t *buf, size_t len,
                     const osp_image_limits_t *lim, osp_image_t *out,
                     osp_err_t *err) {
    WebPBitstreamFeatures f;
    VP8StatusCode s = WebPGetFeatures(buf, len, &f);
    if (s != VP8_STATUS_OK)
        return osp_err_set(err,
                           s == VP8_STATUS_OUT_OF_MEMORY ? OSP_ENOMEM
                           : s == VP8_STATUS_UNSUPPORTED_FEATURE
                               ? OSP_EUNSUPPORTED
                               : OSP_EFORMAT,
                           "WebP: cannot read header: %s", vp8_status_text(s));
    if (f.has_animation)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "WebP: animated images are not supported");
    int rc = osp__image_check_dims("WebP", f.width, f.height, lim, err);
    if (rc < 0)
        return rc;
    if ((rc = osp__image_alloc(out, f.width, f.height, "WebP", err)) < 0)
        return rc;
    size_t stride = (size_t)f.width * 3;
    if (!WebPDecodeRGBInto(buf, len, out->rgb, stride * (size_t)f.height,
                           (int)stride)) {
        osp_image_release(out);
        return osp_err_set(err, OSP_EFORMAT,
                           "WebP: %dx%d %s image is corrupt or truncated",
                           f.width, f.height,
                           f.format == 2 ? "lossless" : "lossy");
    }
    return 0;
}
