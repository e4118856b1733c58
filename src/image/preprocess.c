/* preprocess.c — turns a decoded RGB8 image into one image's model input:
 * geometry (short-side resize + centre crop, exact resize, or TF-style
 * central fraction), the resampler (resize.c), then layout (NCHW/NHWC) and
 * dtype (F32 normalised through a 3x256 lookup table, or raw U8).
 *
 * The geometry follows torchvision and TF to the integer: torchvision's
 * Resize(int) makes the long side trunc(short_target * long / short) and
 * CenterCrop rounds its offset half to even (Python's round); TF's
 * central_crop truncates (n - n * f) / 2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image/image_int.h"

/* Largest tensor side and resize target we accept, pixels: far above any
 * vision model, small enough that every product below fits easily. */
#define PREPROCESS_MAX_SIDE 16384
/* Largest intermediate (resized, before crop) side, pixels: extreme aspect
 * ratios beyond this are refused rather than overflowing an int. */
#define PREPROCESS_MAX_RESIZED (1 << 28)

static const char *const mode_names[OSP_RESIZE_MODE_COUNT] = {
    "short_crop", "exact", "central_fraction"};
static const char *const layout_names[OSP_LAYOUT_COUNT] = {"nchw", "nhwc"};

const char *osp_resize_mode_name(osp_resize_mode_t m) {
    return (unsigned)m < OSP_RESIZE_MODE_COUNT ? mode_names[m] : "unknown";
}

int osp_resize_mode_parse(const char *s, osp_resize_mode_t *out) {
    for (int i = 0; s && i < OSP_RESIZE_MODE_COUNT; i++)
        if (!strcasecmp(s, mode_names[i])) {
            *out = (osp_resize_mode_t)i;
            return 0;
        }
    return OSP_EINVAL;
}

const char *osp_layout_name(osp_layout_t l) {
    return (unsigned)l < OSP_LAYOUT_COUNT ? layout_names[l] : "unknown";
}

int osp_layout_parse(const char *s, osp_layout_t *out) {
    for (int i = 0; s && i < OSP_LAYOUT_COUNT; i++)
        if (!strcasecmp(s, layout_names[i])) {
            *out = (osp_layout_t)i;
            return 0;
        }
    return OSP_EINVAL;
}

void osp_preprocess_default(osp_preprocess_t *p) {
    memset(p, 0, sizeof *p);
    p->mode = OSP_RESIZE_SHORT_CROP;
    p->resize_short = 256;
    p->central_fraction = 0.875f;
    p->out_w = 224;
    p->out_h = 224;
    p->layout = OSP_LAYOUT_NCHW;
    p->dtype = OSP_DT_F32;
    p->scale = 1.0f / 255.0f;
    p->mean[0] = 0.485f, p->mean[1] = 0.456f, p->mean[2] = 0.406f;
    p->std[0] = 0.229f, p->std[1] = 0.224f, p->std[2] = 0.225f;
}

int osp_preprocess_validate(const osp_preprocess_t *p, osp_err_t *err) {
    if (!p)
        return osp_err_set(err, OSP_EINVAL, "preprocess: no parameters");
    if ((unsigned)p->mode >= OSP_RESIZE_MODE_COUNT)
        return osp_err_set(err, OSP_EINVAL, "preprocess: unknown resize mode %d",
                           (int)p->mode);
    if ((unsigned)p->layout >= OSP_LAYOUT_COUNT)
        return osp_err_set(err, OSP_EINVAL, "preprocess: unknown layout %d",
                           (int)p->layout);
    if (p->dtype != OSP_DT_F32 && p->dtype != OSP_DT_U8)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "preprocess: output dtype %s is not supported "
                           "(f32 or u8)",
                           osp_dtype_name(p->dtype));
    if (p->out_w < 1 || p->out_h < 1 || p->out_w > PREPROCESS_MAX_SIDE ||
        p->out_h > PREPROCESS_MAX_SIDE)
        return osp_err_set(err, OSP_EINVAL,
                           "preprocess: output size %dx%d outside 1..%d",
                           p->out_w, p->out_h, PREPROCESS_MAX_SIDE);
    if (p->mode == OSP_RESIZE_SHORT_CROP &&
        (p->resize_short < OSP_MAX(p->out_w, p->out_h) ||
         p->resize_short > PREPROCESS_MAX_SIDE))
        return osp_err_set(err, OSP_EINVAL,
                           "preprocess: resize_short %d must be in %d..%d "
                           "to centre-crop %dx%d",
                           p->resize_short, OSP_MAX(p->out_w, p->out_h),
                           PREPROCESS_MAX_SIDE, p->out_w, p->out_h);
    if (p->mode == OSP_RESIZE_CENTRAL_FRACTION &&
        !(p->central_fraction > 0.0f && p->central_fraction <= 1.0f))
        return osp_err_set(err, OSP_EINVAL,
                           "preprocess: central_fraction %g outside (0, 1]",
                           (double)p->central_fraction);
    if (p->dtype == OSP_DT_F32) {
        if (!isfinite(p->scale))
            return osp_err_set(err, OSP_EINVAL, "preprocess: scale is not finite");
        for (int c = 0; c < 3; c++)
            if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || p->std[c] == 0.0f)
                return osp_err_set(err, OSP_EINVAL,
                                   "preprocess: channel %d: mean %g / std %g "
                                   "(std must be finite and non-zero)",
                                   c, (double)p->mean[c], (double)p->std[c]);
    }
    return 0;
}

size_t osp_preprocess_bytes(const osp_preprocess_t *p) {
    if (osp_preprocess_validate(p, NULL) < 0)
        return 0;
    return (size_t)p->out_w * (size_t)p->out_h * 3 * osp_dtype_size(p->dtype);
}

void osp_preprocess_decode_hint(const osp_preprocess_t *p, int *min_w,
                                int *min_h) {
    *min_w = *min_h = 0;
    if (osp_preprocess_validate(p, NULL) < 0)
        return;
    int need_w = 0, need_h = 0;
    switch (p->mode) {
    case OSP_RESIZE_SHORT_CROP:
        /* Either side may turn out to be the short one. */
        need_w = need_h = p->resize_short;
        break;
    case OSP_RESIZE_EXACT:
        need_w = p->out_w;
        need_h = p->out_h;
        break;
    case OSP_RESIZE_CENTRAL_FRACTION:
        need_w = (int)ceil(p->out_w / (double)p->central_fraction);
        need_h = (int)ceil(p->out_h / (double)p->central_fraction);
        break;
    default:
        break;
    }
    *min_w = need_w * OSP_PREPROCESS_DCT_MARGIN;
    *min_h = need_h * OSP_PREPROCESS_DCT_MARGIN;
}

/* Python's round() of d / 2 for an integer d >= 0: halves go to even. */
static int half_round_even(int d) {
    int k = d / 2;
    if (d % 2 == 0)
        return k;
    return k % 2 == 0 ? k : k + 1;
}

/* Fills the resampler geometry for p and an image of w x h. */
static int geometry(const osp_preprocess_t *p, int w, int h,
                    osp__resample_t *r, osp_err_t *err) {
    r->sx = r->sy = 0;
    r->sw = w;
    r->sh = h;
    r->ox = r->oy = 0;
    r->ow = p->out_w;
    r->oh = p->out_h;
    r->rw = p->out_w;
    r->rh = p->out_h;
    switch (p->mode) {
    case OSP_RESIZE_SHORT_CROP: {
        int shrt = OSP_MIN(w, h), lng = OSP_MAX(w, h);
        double nl = (double)p->resize_short * lng / shrt;
        if (nl > PREPROCESS_MAX_RESIZED)
            return osp_err_set(err, OSP_EUNSUPPORTED,
                               "preprocess: %dx%d image: aspect ratio too "
                               "extreme to resize the short side to %d",
                               w, h, p->resize_short);
        int new_long = (int)nl;
        if (w <= h) {
            r->rw = p->resize_short;
            r->rh = new_long;
        } else {
            r->rw = new_long;
            r->rh = p->resize_short;
        }
        r->ox = half_round_even(r->rw - p->out_w);
        r->oy = half_round_even(r->rh - p->out_h);
        break;
    }
    case OSP_RESIZE_EXACT:
        break;
    case OSP_RESIZE_CENTRAL_FRACTION: {
        double f = p->central_fraction;
        r->sx = (int)((w - w * f) / 2);
        r->sy = (int)((h - h * f) / 2);
        r->sw = w - 2 * r->sx;
        r->sh = h - 2 * r->sy;
        break;
    }
    default:
        return osp_err_set(err, OSP_EINVAL, "preprocess: bad mode");
    }
    return 0;
}

int osp_image_preprocess(const osp_image_t *img, const osp_preprocess_t *p,
                         void *out, osp_err_t *err) {
    int rc = osp_preprocess_validate(p, err);
    if (rc < 0)
        return rc;
    if (!img || !img->rgb || img->width < 1 || img->height < 1 || !out)
        return osp_err_set(err, OSP_EINVAL, "preprocess: empty image or output");
    osp__resample_t r = {.src = img->rgb, .src_w = img->width,
                         .src_h = img->height};
    if ((rc = geometry(p, img->width, img->height, &r, err)) < 0)
        return rc;
    const size_t hw = (size_t)p->out_w * (size_t)p->out_h;
    /* Interleaved U8 is the resampler's own format: write in place. */
    if (p->dtype == OSP_DT_U8 && p->layout == OSP_LAYOUT_NHWC)
        return osp__resample_rgb8(&r, out, err);
    uint8_t *rgb = osp__image_mem(hw * 3);
    if (!rgb)
        return osp_err_set(err, OSP_ENOMEM,
                           "preprocess: cannot allocate %zu bytes", hw * 3);
    if ((rc = osp__resample_rgb8(&r, rgb, err)) < 0)
        goto out;
    if (p->dtype == OSP_DT_U8) { /* planar bytes */
        uint8_t *o = out;
        for (size_t i = 0; i < hw; i++) {
            o[i] = rgb[3 * i];
            o[hw + i] = rgb[3 * i + 1];
            o[2 * hw + i] = rgb[3 * i + 2];
        }
        goto out;
    }
    /* F32: every output is one of 3 x 256 values; compute them once with
     * exactly the documented float expression. */
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            lut[c][v] = ((float)v * p->scale - p->mean[c]) / p->std[c];
    float *o = out;
    if (p->layout == OSP_LAYOUT_NHWC) {
        for (size_t i = 0; i < hw; i++) {
            o[3 * i] = lut[0][rgb[3 * i]];
            o[3 * i + 1] = lut[1][rgb[3 * i + 1]];
            o[3 * i + 2] = lut[2][rgb[3 * i + 2]];
        }
    } else {
        for (size_t i = 0; i < hw; i++) {
            o[i] = lut[0][rgb[3 * i]];
            o[hw + i] = lut[1][rgb[3 * i + 1]];
            o[2 * hw + i] = lut[2][rgb[3 * i + 2]];
        }
    }
out:
    osp__image_mem_free(rgb);
    return rc;
}

int osp_image_preprocess_arena(const osp_image_t *img,
                               const osp_preprocess_t *p, void *out,
                               osp_arena_t *arena, osp_err_t *err) {
    osp_arena_t *saved = osp__image_arena;
    osp__image_arena = arena;
    int rc = osp_image_preprocess(img, p, out, err);
    osp__image_arena = saved;
    return rc;
}
