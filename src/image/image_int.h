/* image_int.h — private interface between the files of the image module:
 * one decoder per format (jpeg.c, png.c, webp.c, bmp.c), EXIF parsing and
 * orientation (exif.c), the resampler (resize.c) and shared helpers
 * (image.c). Public API and contracts: include/osprey/image.h. */
#ifndef OSPREY_IMAGE_INT_H
#define OSPREY_IMAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "osprey/image.h"

/* Each decoder: buf/len already checked against max_bytes and sniffed as its
 * format; lim is non-NULL; out is zeroed. On failure out stays zeroed. */
int osp__jpeg_decode(const uint8_t *buf, size_t len,
                     const osp_image_limits_t *lim, int min_w, int min_h,
                     osp_image_t *out, osp_err_t *err);
int osp__png_decode(const uint8_t *buf, size_t len,
                    const osp_image_limits_t *lim, osp_image_t *out,
                    osp_err_t *err);
int osp__webp_decode(const uint8_t *buf, size_t len,
                     const osp_image_limits_t *lim, osp_image_t *out,
                     osp_err_t *err);
int osp__bmp_decode(const uint8_t *buf, size_t len,
                    const osp_image_limits_t *lim, osp_image_t *out,
                    osp_err_t *err);

/* Scratch and pixel memory of the image module: from the arena of the
 * osp_image_*_arena call running on this thread, else malloc/free. The
 * thread-local is set only for the duration of such a call. */
extern _Thread_local osp_arena_t *osp__image_arena;
void *osp__image_mem(size_t bytes);   /* 64-byte aligned from an arena */
void osp__image_mem_free(void *p);    /* no-op for arena memory */

/* Checks header dimensions (w, h as read, possibly bogus) against the hard
 * cap and lim->max_pixels; `what` names the format in the message. */
int osp__image_check_dims(const char *what, int64_t w, int64_t h,
                          const osp_image_limits_t *lim, osp_err_t *err);
/* Allocates img->rgb for w x h RGB8 (dims already checked) and sets the
 * dimensions. */
int osp__image_alloc(osp_image_t *img, int w, int h, const char *what,
                     osp_err_t *err);

/* Reads the EXIF orientation (1..8) from a TIFF structure (the APP1 payload
 * after "Exif\0\0"). Returns 1 (upright) when absent, malformed or out of
 * range: a bad tag must not fail the decode. */
int osp__exif_orientation(const uint8_t *tiff, size_t len);
/* Rewrites img so that it is upright for the given EXIF orientation (1..8;
 * 5..8 swap width and height). Allocates a new buffer unless orientation is
 * 1; on failure img is unchanged. */
int osp__image_orient(osp_image_t *img, int orientation, osp_err_t *err);

/* The separable resampler (resize.c). Takes the rectangle (sx, sy, sw, sh)
 * of src (RGB8, src_w x src_h, stride src_w * 3), resizes it as a whole to
 * rw x rh with PIL's antialiased bilinear filter (edges clamp to the
 * rectangle, i.e. crop-then-resize), and writes the window (ox, oy, ow, oh)
 * of that resized image to dst (RGB8, stride ow * 3). All rectangles must be
 * inside their images (checked: OSP_EINVAL). */
typedef struct osp__resample_s {
    const uint8_t *src;
    int src_w, src_h;
    int sx, sy, sw, sh; /* source rectangle, pixels */
    int rw, rh;         /* size the rectangle is resized to, pixels */
    int ox, oy, ow, oh; /* output window inside rw x rh, pixels */
} osp__resample_t;
int osp__resample_rgb8(const osp__resample_t *r, uint8_t *dst, osp_err_t *err);

#endif
