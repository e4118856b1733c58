/* fuzz_image.c — libFuzzer entry point for the image module: decodes the
 * input with small limits (so the fuzzer explores parsers, not allocators),
 * using the first byte to vary the DCT-scaling hint, then runs every resize
 * mode and output format over the result. Any crash, leak, hang or sanitizer
 * report is a bug; error returns are expected. Built by the fuzz
 * infrastructure (`make fuzz`). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "osprey/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    /* Byte 0 picks the hint and preprocessing; the rest is the image. */
    uint8_t sel = data[0];
    osp_image_limits_t lim = {.max_bytes = 1 << 20, .max_pixels = 1 << 20};
    int hint = (sel & 7) * 8; /* 0, 8, ..., 56 pixels */
    osp_image_t img;
    osp_err_t err;
    if (osp_image_decode(data + 1, size - 1, &lim, hint, hint, &img, &err) != 0)
        return 0;
    osp_preprocess_t p;
    osp_preprocess_default(&p);
    p.mode = (osp_resize_mode_t)((sel >> 3) % OSP_RESIZE_MODE_COUNT);
    p.out_w = 7 + (sel >> 5);
    p.out_h = 5 + (sel >> 6);
    p.resize_short = 16; /* >= the largest out_w (14) */
    p.central_fraction = 0.5f;
    p.layout = (sel & 0x10) ? OSP_LAYOUT_NHWC : OSP_LAYOUT_NCHW;
    p.dtype = (sel & 0x20) ? OSP_DT_U8 : OSP_DT_F32;
    void *out = malloc(osp_preprocess_bytes(&p));
    if (out && osp_image_preprocess(&img, &p, out, &err) != 0)
        abort(); /* a decoded image and valid parameters must preprocess */
    free(out);
    osp_image_release(&img);
    return 0;
}
