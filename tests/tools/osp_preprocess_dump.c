/* osp_preprocess_dump.c — test helper: decodes an image file and writes its
 * preprocessed tensor (raw bytes) and/or the decoded pixels (binary PPM), so
 * scripts can compare them with PIL (tests/integration/image_vs_pil.sh). With
 * --bench N it times decode + preprocess instead (docs/image.md numbers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/image.h"

static void usage(void) {
    fprintf(stderr,
            "usage: osp_preprocess_dump [options] IMAGE [TENSOR_OUT]\n"
            "  --mode short_crop|exact|central_fraction   (short_crop)\n"
            "  --size WxH          output size (224x224)\n"
            "  --short N           short side for short_crop (256)\n"
            "  --fraction F        central fraction (0.875)\n"
            "  --layout nchw|nhwc  (nhwc)\n"
            "  --dtype u8|f32      (u8)\n"
            "  --full              decode at full size (default: DCT hint)\n"
            "  --hint WxH          decode size hint instead of the default\n"
            "  --ppm FILE          also write the decoded image as PPM\n"
            "  --bench N           time N decode+preprocess runs\n");
}

static int write_file(const char *path, const void *data, size_t n,
                      const char *header) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    int ok = (!header || fputs(header, f) >= 0) && fwrite(data, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        fprintf(stderr, "%s: write failed\n", path);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    osp_preprocess_t p;
    osp_preprocess_default(&p);
    p.layout = OSP_LAYOUT_NHWC;
    p.dtype = OSP_DT_U8;
    int full = 0, bench = 0, hint_w = -1, hint_h = -1;
    const char *ppm = NULL, *in = NULL, *outp = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--full")) {
            full = 1;
        } else if (!strcmp(a, "--mode") && v) {
            if (osp_resize_mode_parse(v, &p.mode) < 0)
                return usage(), 2;
            i++;
        } else if (!strcmp(a, "--size") && v) {
            if (sscanf(v, "%dx%d", &p.out_w, &p.out_h) != 2)
                return usage(), 2;
            i++;
        } else if (!strcmp(a, "--short") && v) {
            p.resize_short = atoi(v), i++;
        } else if (!strcmp(a, "--fraction") && v) {
            p.central_fraction = strtof(v, NULL), i++;
        } else if (!strcmp(a, "--layout") && v) {
            if (osp_layout_parse(v, &p.layout) < 0)
                return usage(), 2;
            i++;
        } else if (!strcmp(a, "--dtype") && v) {
            p.dtype = !strcmp(v, "f32") ? OSP_DT_F32 : OSP_DT_U8, i++;
        } else if (!strcmp(a, "--hint") && v) {
            if (sscanf(v, "%dx%d", &hint_w, &hint_h) != 2)
                return usage(), 2;
            i++;
        } else if (!strcmp(a, "--ppm") && v) {
            ppm = v, i++;
        } else if (!strcmp(a, "--bench") && v) {
            bench = atoi(v), i++;
        } else if (a[0] == '-') {
            return usage(), 2;
        } else if (!in) {
            in = a;
        } else {
            outp = a;
        }
    }
    if (!in)
        return usage(), 2;
    osp_err_t err = {0};
    if (osp_preprocess_validate(&p, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    int mw = 0, mh = 0;
    if (hint_w >= 0) {
        mw = hint_w;
        mh = hint_h;
    } else if (!full) {
        osp_preprocess_decode_hint(&p, &mw, &mh);
    }
    size_t nbytes = osp_preprocess_bytes(&p);
    void *tensor = malloc(nbytes);
    osp_image_t img = {0};
    if (!tensor)
        return 1;
    if (bench > 0) {
        uint8_t *data = NULL;
        size_t len = 0;
        if (osp_read_file(in, SIZE_MAX, &data, &len, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double best = 1e30, total = 0, best_dec = 1e30;
        for (int r = 0; r < bench; r++) {
            uint64_t t0 = osp_now_ns();
            if (osp_image_decode(data, len, NULL, mw, mh, &img, &err) < 0) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            uint64_t t1 = osp_now_ns();
            if (osp_image_preprocess(&img, &p, tensor, &err) < 0) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            uint64_t t2 = osp_now_ns();
            double ms = (double)(t2 - t0) / 1e6;
            total += ms;
            if (ms < best)
                best = ms;
            if ((double)(t1 - t0) / 1e6 < best_dec)
                best_dec = (double)(t1 - t0) / 1e6;
            if (r + 1 < bench)
                osp_image_release(&img);
        }
        printf("%s: decoded %dx%d (hint %dx%d) -> %dx%d %s %s: mean %.3f ms, "
               "best %.3f ms (decode %.3f ms) over %d runs\n",
               in, img.width, img.height, mw, mh, p.out_w, p.out_h,
               osp_resize_mode_name(p.mode), osp_dtype_name(p.dtype),
               total / bench, best, best_dec, bench);
        free(data);
    } else {
        if (osp_image_load_file(in, NULL, mw, mh, &img, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        if (osp_image_preprocess(&img, &p, tensor, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    }
    int rc = 0;
    if (ppm) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "P6\n%d %d\n255\n", img.width, img.height);
        rc |= write_file(ppm, img.rgb, (size_t)img.width * img.height * 3, hdr);
    }
    if (outp)
        rc |= write_file(outp, tensor, nbytes, NULL);
    osp_image_release(&img);
    free(tensor);
    return rc ? 1 : 0;
}
