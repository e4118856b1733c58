/* image.h — the public interface of osprey's image module: everything between
 * the encoded bytes of a request and a model's input tensor.
 *
 *   bytes ──sniff──▶ decode (JPEG/PNG/WebP/BMP, EXIF orientation, limits)
 *         ──▶ osp_image_t (RGB8) ──preprocess──▶ resize + crop + normalise
 *         ──▶ one image's tensor (NCHW/NHWC, F32/U8) in caller memory
 *
 * Every input is untrusted: sizes are checked against caller limits before any
 * pixel buffer is allocated, all offsets are bounds-checked, and failures are
 * error codes with a message that says what and where. All functions are
 * thread-safe (no shared state) — serve runs them on its HTTP threads.
 *
 * The resampler reproduces PIL's Image.resize(BILINEAR) (antialiased, fixed
 * point, 8-bit intermediate), so tensors match torchvision's PIL pipeline.
 * Design notes, fidelity and timing: docs/image.md. */
#ifndef OSPREY_IMAGE_H
#define OSPREY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "osprey/arena.h"
#include "osprey/common.h"
#include "osprey/engine.h" /* osp_dtype_t */

/* A decoded image: RGB8 interleaved, row-major HWC (stride = width * 3).
 * `rgb` is malloc'd and owned by the caller; osp_image_release() frees it and
 * zeroes the struct (safe on a zeroed struct and to call twice). */
typedef struct osp_image_s {
    int width, height;
    uint8_t *rgb;
} osp_image_t;
void osp_image_release(osp_image_t *img);

/* Decode limits; 0 means "no limit" for that field. */
typedef struct osp_image_limits_s {
    size_t max_bytes;    /* encoded size in bytes */
    uint64_t max_pixels; /* width * height as declared by the file header */
} osp_image_limits_t;
#define OSP_IMAGE_DEFAULT_MAX_BYTES ((size_t)32 << 20) /* 32 MiB request body */
#define OSP_IMAGE_DEFAULT_MAX_PIXELS 50000000ull /* 50 MP = 150 MB of RGB8 */
/* Fills l with the defaults above. */
void osp_image_limits_default(osp_image_limits_t *l);

/* Largest width or height any decoder accepts, limits or not, so that
 * width * height * 4 never overflows and dimensions fit in an int. */
#define OSP_IMAGE_MAX_DIM (1 << 24)

typedef enum osp_image_format_e {
    OSP_IMG_UNKNOWN = 0,
    OSP_IMG_JPEG,
    OSP_IMG_PNG,
    OSP_IMG_WEBP,
    OSP_IMG_BMP,
    OSP_IMG_FORMAT_COUNT
} osp_image_format_t;
/* Guesses the format from the magic bytes (looks at most at 18 bytes). */
osp_image_format_t osp_image_sniff(const void *buf, size_t len);
/* "jpeg", "png", "webp", "bmp", "unknown"; never NULL, static storage. */
const char *osp_image_format_name(osp_image_format_t fmt);

/* Decodes any supported format to RGB8 into *out (zeroed first; on failure it
 * stays zeroed and nothing needs releasing).
 *
 * lim: NULL means osp_image_limits_default(). len > max_bytes → OSP_ELIMIT;
 *   header width*height > max_pixels → OSP_ELIMIT, checked before the pixel
 *   buffer is allocated.
 * min_w, min_h: the decoder may decode at a reduced size (JPEG DCT scaling by
 *   1/2, 1/4, 1/8) as long as the result, after orientation, is still at least
 *   min_w x min_h. 0, 0 = full size. Other formats always decode at full size.
 * EXIF orientation in JPEG APP1 (all 8 values) is applied, so the result is
 *   upright. Grayscale, CMYK/YCCK JPEG, palette/gray/16-bit PNG, 16/32-bit and
 *   palettized BMP all become RGB8; an alpha channel is dropped (not
 *   composited), so transparent pixels show their stored colour.
 * Errors: not an image / unknown or unsupported variant → OSP_EUNSUPPORTED;
 *   truncated or corrupt → OSP_EFORMAT; OSP_ENOMEM; OSP_EINVAL for bad
 *   arguments. The message names the format and the problem. */
int osp_image_decode(const void *buf, size_t len, const osp_image_limits_t *lim,
                     int min_w, int min_h, osp_image_t *out, osp_err_t *err);
/* osp_image_decode with the pixels (and the decoder's scratch) allocated
 * from `arena` — a server's per-request arena (include/osprey/arena.h) —
 * instead of malloc: out->rgb lives until the arena is reset or destroyed
 * and must NOT be passed to osp_image_release (just drop the struct). */
int osp_image_decode_arena(const void *buf, size_t len,
                           const osp_image_limits_t *lim, int min_w,
                           int min_h, osp_arena_t *arena, osp_image_t *out,
                           osp_err_t *err);
/* Same for a file (read whole, refused early when larger than max_bytes);
 * messages are prefixed with the path. */
int osp_image_load_file(const char *path, const osp_image_limits_t *lim,
                        int min_w, int min_h, osp_image_t *out, osp_err_t *err);

typedef enum osp_resize_mode_e {
    /* Resize the short side to resize_short keeping the aspect ratio (long
     * side = trunc(resize_short * long / short)), then centre-crop out_w x
     * out_h (offsets rounded half to even) — torchvision Resize(256) +
     * CenterCrop(224). Requires resize_short >= out_w and >= out_h. */
    OSP_RESIZE_SHORT_CROP = 0,
    /* Resize straight to out_w x out_h; the aspect ratio is not kept. */
    OSP_RESIZE_EXACT,
    /* Crop the central `central_fraction` of each side (TF inception style,
     * e.g. 0.875: offset = trunc((n - n * f) / 2)), then resize to out_w x
     * out_h. */
    OSP_RESIZE_CENTRAL_FRACTION,
    OSP_RESIZE_MODE_COUNT
} osp_resize_mode_t;
/* "short_crop", "exact", "central_fraction"; never NULL. */
const char *osp_resize_mode_name(osp_resize_mode_t m);
/* Parses the names above; OSP_EINVAL otherwise. */
int osp_resize_mode_parse(const char *s, osp_resize_mode_t *out);

typedef enum osp_layout_e {
    OSP_LAYOUT_NCHW = 0, /* planar: all R, then all G, then all B */
    OSP_LAYOUT_NHWC,     /* interleaved RGBRGB... */
    OSP_LAYOUT_COUNT
} osp_layout_t;
/* "nchw", "nhwc"; never NULL. */
const char *osp_layout_name(osp_layout_t l);
int osp_layout_parse(const char *s, osp_layout_t *out);

typedef struct osp_preprocess_s {
    osp_resize_mode_t mode;
    int resize_short;       /* SHORT_CROP: target of the short side, pixels */
    float central_fraction; /* CENTRAL_FRACTION: in (0, 1] */
    int out_w, out_h;       /* tensor width and height, pixels */
    osp_layout_t layout;
    /* OSP_DT_F32: out = (v * scale - mean[c]) / std[c], computed in float
     * for v in 0..255; OSP_DT_U8: the raw RGB bytes. */
    osp_dtype_t dtype;
    float scale, mean[3], std[3];
} osp_preprocess_t;
/* ImageNet/torchvision defaults: SHORT_CROP 256 → 224x224, NCHW, F32,
 * scale 1/255, mean .485 .456 .406, std .229 .224 .225. */
void osp_preprocess_default(osp_preprocess_t *p);
/* Checks a configuration: OSP_EINVAL / OSP_EUNSUPPORTED with a message. */
int osp_preprocess_validate(const osp_preprocess_t *p, osp_err_t *err);
/* Bytes of one image's tensor: out_w * out_h * 3 * dtype size; 0 when p is
 * invalid. */
size_t osp_preprocess_bytes(const osp_preprocess_t *p);

/* Writes one image's tensor (out_w * out_h * 3 elements in p->layout and
 * p->dtype) into out, which the caller owns and sizes with
 * osp_preprocess_bytes(). The resize is PIL's antialiased bilinear (the filter
 * widens when downscaling; upscaling works too), done separably in 22-bit
 * fixed point with an 8-bit intermediate between the passes, exactly like
 * PIL — so U8 output equals PIL's resize + crop bit for bit, and F32 output
 * equals torchvision's ToTensor + Normalize up to float rounding. Allocates
 * scratch memory per call (filter weights + one pass), never per pixel. */
int osp_image_preprocess(const osp_image_t *img, const osp_preprocess_t *p,
                         void *out, osp_err_t *err);
/* osp_image_preprocess with its scratch (the resized RGB image, filter
 * weights) from `arena` instead of malloc. */
int osp_image_preprocess_arena(const osp_image_t *img,
                               const osp_preprocess_t *p, void *out,
                               osp_arena_t *arena, osp_err_t *err);

/* The min_w/min_h to pass to osp_image_decode for this preprocessing, so
 * that DCT scaling never drops below the resolution the resize needs
 * (SHORT_CROP: both sides >= resize_short; EXACT: >= out_w x out_h;
 * CENTRAL_FRACTION: >= ceil(out / fraction)) times OSP_PREPROCESS_DCT_MARGIN.
 * 0, 0 for an invalid p. */
void osp_preprocess_decode_hint(const osp_preprocess_t *p, int *min_w,
                                int *min_h);
/* Why a margin: a JPEG scaled-IDCT downsample is sharper than PIL's
 * antialiased bilinear. Decoding to >= 2x the needed size leaves the final
 * reduction to our PIL-exact resampler, keeping tensors within ~0.35 mean
 * |diff| (0..255 scale) of the full-decode result instead of up to ~3.3 when
 * decoding right down to the target, for ~0.8 ms more on a 1080p photo
 * (measurements in docs/image.md). */
#define OSP_PREPROCESS_DCT_MARGIN 2

#endif
