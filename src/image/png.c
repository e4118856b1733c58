/* png.c — PNG decoding with libspng.
 *
 * spng converts every colour type and bit depth (gray, palette, 16-bit,
 * with or without alpha) straight to RGB8; alpha and tRNS are dropped, gamma
 * is ignored (as PIL does). The header size is checked against the caller's
 * pixel limit before anything is allocated, and spng's own chunk and cache
 * limits bound what ancillary chunks (text, ICC profiles) may cost. */
#include <spng.h>
#include <string.h>

#include "image/image_int.h"

/* Largest single chunk we accept, bytes; IDAT data is split across chunks
 * by every encoder, so this only bounds ancillary chunks in practice. */
#define PNG_MAX_CHUNK_BYTES ((size_t)64 << 20)
/* Memory spng may spend on stored ancillary chunks (text, iCCP, EXIF). */
#define PNG_MAX_CACHE_BYTES ((size_t)8 << 20)

/* True when the chunk sequence is complete through IEND. spng stops reading
 * once the image data is inflated, so a file cut inside the last IDAT's CRC
 * or before IEND would otherwise decode "successfully"; like PIL we call it
 * truncated. Walks chunk headers only (CRCs are spng's job). */
static int png_complete(const uint8_t *b, size_t len) {
    size_t p = 8; /* after the signature */
    while (len - p >= 12) {
        uint32_t n = (uint32_t)b[p] << 24 | (uint32_t)b[p + 1] << 16 |
                     (uint32_t)b[p + 2] << 8 | b[p + 3];
        if (n > 0x7FFFFFFFu || n > len - p - 12)
            return 0;
        if (memcmp(b + p + 4, "IEND", 4) == 0)
            return 1;
        p += 12 + (size_t)n;
    }
    return 0;
}

int osp__png_decode(const uint8_t *buf, size_t len,
                    const osp_image_limits_t *lim, osp_image_t *out,
                    osp_err_t *err) {
    int rc = 0, e;
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx)
        return osp_err_set(err, OSP_ENOMEM, "PNG: cannot create decoder");
    /* A bad CRC on pixel data is corruption; on an ancillary chunk, skip
     * the chunk. */
    spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_DISCARD);
    spng_set_image_limits(ctx, OSP_IMAGE_MAX_DIM, OSP_IMAGE_MAX_DIM);
    spng_set_chunk_limits(ctx, PNG_MAX_CHUNK_BYTES, PNG_MAX_CACHE_BYTES);
    if ((e = spng_set_png_buffer(ctx, buf, len)) != 0) {
        rc = osp_err_set(err, OSP_EINTERNAL, "PNG: %s", spng_strerror(e));
        goto fail;
    }
    struct spng_ihdr ihdr;
    if ((e = spng_get_ihdr(ctx, &ihdr)) != 0) {
        rc = osp_err_set(err, e == SPNG_EUSER_WIDTH || e == SPNG_EUSER_HEIGHT
                                  ? OSP_ELIMIT
                                  : OSP_EFORMAT,
                         "PNG: bad header: %s", spng_strerror(e));
        goto fail;
    }
    if ((rc = osp__image_check_dims("PNG", ihdr.width, ihdr.height, lim,
                                    err)) < 0)
        goto fail;
    size_t need = 0;
    if ((e = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &need)) != 0 ||
        need != (size_t)ihdr.width * ihdr.height * 3) {
        rc = osp_err_set(err, OSP_EFORMAT, "PNG: %ux%u: unexpected size: %s",
                         ihdr.width, ihdr.height, spng_strerror(e));
        goto fail;
    }
    if (!png_complete(buf, len)) {
        rc = osp_err_set(err, OSP_EFORMAT,
                         "PNG: truncated: chunks end before IEND in %zu bytes",
                         len);
        goto fail;
    }
    if ((rc = osp__image_alloc(out, (int)ihdr.width, (int)ihdr.height, "PNG",
                               err)) < 0)
        goto fail;
    if ((e = spng_decode_image(ctx, out->rgb, need, SPNG_FMT_RGB8, 0)) != 0) {
        rc = osp_err_set(err, e == SPNG_EMEM ? OSP_ENOMEM : OSP_EFORMAT,
                         "PNG: %ux%u image: %s", ihdr.width, ihdr.height,
                         spng_strerror(e));
        goto fail;
    }
    spng_ctx_free(ctx);
    return 0;
fail:
    osp_image_release(out);
    spng_ctx_free(ctx);
    return rc;
}
