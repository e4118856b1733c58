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

/* The command line: the preprocessing, the decode size, what to write. */
typedef struct args_s {
    osp_preprocess_t p;
    int full, bench, hint_w, hint_h;
    const char *ppm, *in, *outp;
} args_t;

/* Fills a from argv; returns 0, or 2 (usage printed) on a bad command line. */
static int parse_args(int argc, char **argv, args_t *a) {
    memset(a, 0, sizeof *a);
    osp_preprocess_default(&a->p);
    a->p.layout = OSP_LAYOUT_NHWC;
    a->p.dtype = OSP_DT_U8;
    a->hint_w = a->hint_h = -1;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--full")) {
            a->full = 1;
        } else if (!strcmp(f, "--mode") && v) {
            if (osp_resize_mode_parse(v, &a->p.mode) < 0)
                return usage(), 2;
            i++;
        } else if (!strcmp(f, "--size") && v) {
            if (sscanf(v, "%dx%d", &a->p.out_w, &a->p.out_h) != 2)
                return usage(), 2;
            i++;
        } else if (!strcmp(f, "--short") && v) {
            a->p.resize_short = atoi(v), i++;
        } else if (!strcmp(f, "--fraction") && v) {
            a->p.central_fraction = strtof(v, NULL), i++;
        } else if (!strcmp(f, "--layout") && v) {
            if (osp_layout_parse(v, &a->p.layout) < 0)
                return usage(), 2;
            i++;
        } else if (!strcmp(f, "--dtype") && v) {
            a->p.dtype = !strcmp(v, "f32") ? OSP_DT_F32 : OSP_DT_U8, i++;
        } else if (!strcmp(f, "--hint") && v) {
            if (sscanf(v, "%dx%d", &a->hint_w, &a->hint_h) != 2)
                return usage(), 2;
            i++;
        } else if (!strcmp(f, "--ppm") && v) {
            a->ppm = v, i++;
        } else if (!strcmp(f, "--bench") && v) {
            a->bench = atoi(v), i++;
        } else if (f[0] == '-') {
            return usage(), 2;
        } else if (!a->in) {
            a->in = f;
        } else {
            a->outp = f;
        }
    }
    if (!a->in)
        return usage(), 2;
    return 0;
}

/* --bench: times decode + preprocess of the file's bytes a->bench times and
 * prints the mean and best; img keeps the last decode. Returns 0 or 1. */
static int bench_runs(const args_t *a, int mw, int mh, void *tensor,
                      osp_image_t *img) {
    osp_err_t err = {0};
    uint8_t *data = NULL;
    size_t len = 0;
    if (osp_read_file(a->in, SIZE_MAX, &data, &len, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double best = 1e30, total = 0, best_dec = 1e30;
    for (int r = 0; r < a->bench; r++) {
        uint64_t t0 = osp_now_ns();
        if (osp_image_decode(data, len, NULL, mw, mh, img, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        uint64_t t1 = osp_now_ns();
        if (osp_image_preprocess(img, &a->p, tensor, &err) < 0) {
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
        if (r + 1 < a->bench)
            osp_image_release(img);
    }
    printf("%s: decoded %dx%d (hint %dx%d) -> %dx%d %s %s: mean %.3f ms, "
           "best %.3f ms (decode %.3f ms) over %d runs\n",
           a->in, img->width, img->height, mw, mh, a->p.out_w, a->p.out_h,
           osp_resize_mode_name(a->p.mode), osp_dtype_name(a->p.dtype),
           total / a->bench, best, best_dec, a->bench);
    free(data);
    return 0;
}

/* Decodes and preprocesses the file once. Returns 0 or 1. */
static int convert_once(const args_t *a, int mw, int mh, void *tensor,
                        osp_image_t *img) {
    osp_err_t err = {0};
    if (osp_image_load_file(a->in, NULL, mw, mh, img, &err) < 0 ||
        osp_image_preprocess(img, &a->p, tensor, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    args_t a;
    if (parse_args(argc, argv, &a))
        return 2;
    osp_err_t err = {0};
    if (osp_preprocess_validate(&a.p, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    int mw = 0, mh = 0;
    if (a.hint_w >= 0) {
        mw = a.hint_w;
        mh = a.hint_h;
    } else if (!a.full) {
        osp_preprocess_decode_hint(&a.p, &mw, &mh);
    }
    size_t nbytes = osp_preprocess_bytes(&a.p);
    void *tensor = malloc(nbytes);
    osp_image_t img = {0};
    if (!tensor)
        return 1;
    if ((a.bench > 0 ? bench_runs : convert_once)(&a, mw, mh, tensor, &img))
        return 1;
    int rc = 0;
    if (a.ppm) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "P6\n%d %d\n255\n", img.width, img.height);
        rc |= write_file(a.ppm, img.rgb, (size_t)img.width * img.height * 3, hdr);
    }
    if (a.outp)
        rc |= write_file(a.outp, tensor, nbytes, NULL);
    osp_image_release(&img);
    free(tensor);
    return rc ? 1 : 0;
}
