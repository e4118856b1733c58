/* jpeg.c — JPEG decoding with libjpeg-turbo's TurboJPEG API.
 *
 * Beyond calling tjDecompress2 this file: walks the marker segments itself to
 * find the EXIF orientation (APP1), the Adobe marker (APP14, which says CMYK
 * is stored inverted) and the end-of-image marker (libjpeg only *warns* about
 * a truncated file and fills the rest grey; we refuse it, as PIL does); picks
 * the smallest DCT scaling factor (1/2, 1/4, 1/8) that keeps the oriented
 * result at least min_w x min_h, which makes decoding a 1080p photo for a
 * 224x224 model several times cheaper; converts CMYK/YCCK to RGB; and limits
 * progressive scans (TJFLAG_LIMITSCANS) against the many-scans DoS. Other
 * libjpeg warnings (e.g. extraneous bytes between markers) are tolerated, as
 * browsers and PIL tolerate them. */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "image/image_int.h"

typedef struct jpeg_markers_s {
    int orientation; /* EXIF 1..8, 1 when absent */
    int adobe;       /* APP14 "Adobe" seen: CMYK samples are inverted */
    int complete;    /* an EOI marker was reached */
} jpeg_markers_t;

/* Walks marker segments from just after SOI. Never fails: anything odd simply
 * ends the walk with complete = 0 (then the decode is refused as truncated)
 * or leaves the defaults. */
static void scan_markers(const uint8_t *b, size_t len, jpeg_markers_t *m) {
    m->orientation = 1;
    m->adobe = 0;
    m->complete = 0;
    int saw_exif = 0;
    size_t p = 2;
    while (p < len) {
        if (b[p] != 0xFF) {
            /* Junk between segments: libjpeg skips to the next 0xFF. */
            const uint8_t *ff = memchr(b + p, 0xFF, len - p);
            if (!ff)
                return;
            p = (size_t)(ff - b);
        }
        while (p < len && b[p] == 0xFF) /* fill bytes */
            p++;
        if (p >= len)
            return;
        uint8_t mk = b[p++];
        if (mk == 0xD9) { /* EOI */
            m->complete = 1;
            return;
        }
        /* Standalone markers carry no length. */
        if (mk == 0x00 || mk == 0x01 || mk == 0xD8 || (mk >= 0xD0 && mk <= 0xD7))
            continue;
        if (len - p < 2)
            return;
        size_t seg = (size_t)b[p] << 8 | b[p + 1];
        if (seg < 2 || seg > len - p)
            return;
        const uint8_t *pl = b + p + 2;
        size_t plen = seg - 2;
        if (mk == 0xE1 && !saw_exif && plen >= 6 &&
            memcmp(pl, "Exif\0\0", 6) == 0) {
            saw_exif = 1; /* the first EXIF block wins, as in PIL */
            m->orientation = osp__exif_orientation(pl + 6, plen - 6);
        } else if (mk == 0xEE && plen >= 5 && memcmp(pl, "Adobe", 5) == 0) {
            m->adobe = 1;
        }
        p += seg;
        if (mk != 0xDA) /* SOS: entropy-coded data follows */
            continue;
        /* The scan ends at a 0xFF that is not a stuffed 0x00, a restart
         * marker or a fill byte. */
        for (;;) {
            const uint8_t *ff = p < len ? memchr(b + p, 0xFF, len - p) : NULL;
            if (!ff)
                return;
            p = (size_t)(ff - b);
            if (p + 1 >= len)
                return;
            uint8_t n = b[p + 1];
            if (n == 0x00 || (n >= 0xD0 && n <= 0xD7))
                p += 2;
            else if (n == 0xFF)
                p += 1;
            else
                break;
        }
    }
}

/* Adobe CMYK (the common case: Photoshop, PIL) stores 255 - ink, so
 * R = C'K'/255 on the stored values; plain CMYK stores ink amounts. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t n_px,
                        int inverted) {
    for (size_t i = 0; i < n_px; i++, cmyk += 4, rgb += 3) {
        unsigned c = cmyk[0], m = cmyk[1], y = cmyk[2], k = cmyk[3];
        if (!inverted) {
            c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
        }
        rgb[0] = (uint8_t)((c * k + 127) / 255);
        rgb[1] = (uint8_t)((m * k + 127) / 255);
        rgb[2] = (uint8_t)((y * k + 127) / 255);
    }
}

/* The largest power-of-two reduction (among the factors TurboJPEG offers)
 * whose output still covers need_w x need_h in stored orientation. */
static tjscalingfactor pick_scale(int w, int h, int need_w, int need_h) {
    tjscalingfactor best = {1, 1};
    if (need_w <= 0 && need_h <= 0)
        return best;
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num != 1 || sf[i].denom > 8 || sf[i].denom <= best.denom)
            continue;
        if (TJSCALED(w, sf[i]) >= need_w && TJSCALED(h, sf[i]) >= need_h)
            best = sf[i];
    }
    return best;
}

int osp__jpeg_decode(const uint8_t *buf, size_t len,
                     const osp_image_limits_t *lim, int min_w, int min_h,
                     osp_image_t *out, osp_err_t *err) {
    int rc = 0;
    uint8_t *cmyk = NULL;
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return osp_err_set(err, OSP_ENOMEM, "JPEG: cannot create decoder");
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp,
                            &cs) != 0 &&
        (tjGetErrorCode(tj) != TJERR_WARNING || w <= 0 || h <= 0)) {
        rc = osp_err_set(err, OSP_EFORMAT, "JPEG: cannot read header: %s",
                         tjGetErrorStr2(tj));
        goto fail;
    }
    if ((rc = osp__image_check_dims("JPEG", w, h, lim, err)) < 0)
        goto fail;
    jpeg_markers_t mk;
    scan_markers(buf, len, &mk);
    if (!mk.complete) {
        rc = osp_err_set(err, OSP_EFORMAT,
                         "JPEG: truncated: no end-of-image marker in %zu "
                         "bytes",
                         len);
        goto fail;
    }
    /* min_w/min_h are for the upright image; 5..8 swap the axes. */
    int swap = mk.orientation >= 5;
    tjscalingfactor sf = pick_scale(w, h, swap ? min_h : min_w,
                                    swap ? min_w : min_h);
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    int is_cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    if ((rc = osp__image_alloc(out, sw, sh, "JPEG", err)) < 0)
        goto fail;
    uint8_t *dst = out->rgb;
    if (is_cmyk) {
        cmyk = osp__image_mem((size_t)sw * (size_t)sh * 4);
        if (!cmyk) {
            rc = osp_err_set(err, OSP_ENOMEM,
                             "JPEG: cannot allocate CMYK buffer for %dx%d",
                             sw, sh);
            goto fail;
        }
        dst = cmyk;
    }
    if (tjDecompress2(tj, buf, (unsigned long)len, dst, sw, 0, sh,
                      is_cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_LIMITSCANS) != 0 &&
        tjGetErrorCode(tj) != TJERR_WARNING) {
        rc = osp_err_set(err, OSP_EFORMAT, "JPEG: %dx%d image: %s", w, h,
                         tjGetErrorStr2(tj));
        goto fail;
    }
    if (is_cmyk)
        cmyk_to_rgb(cmyk, out->rgb, (size_t)sw * (size_t)sh, mk.adobe);
    if ((rc = osp__image_orient(out, mk.orientation, err)) < 0)
        goto fail;
    osp__image_mem_free(cmyk);
    tjDestroy(tj);
    return 0;
fail:
    osp__image_mem_free(cmyk);
    osp_image_release(out);
    tjDestroy(tj);
    return rc;
}
