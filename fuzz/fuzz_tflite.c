/* fuzz_tflite.c — libFuzzer target for the TFLite loading path: the
 * FlatBuffer reader, the importer (NHWC→NCHW translation, weight relayout,
 * quantization parameters) and the load-time passes. A model file is
 * untrusted input, so whatever the bytes, import must return a graph or a
 * clean error: never crash, hang, leak or read out of bounds.
 *
 * The input's bytes 4..7 are forced to the "TFL3" identifier so that every
 * input exercises the TFLite reader rather than failing the sniff. Seeds:
 * the ../shared TFLite models, added by tests/integration/fuzz_smoke.sh at
 * run time (never committed); docs/fuzzing.md has how to run campaigns. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/passes/passes.h"
#include "engine/import/tflite_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 8 || size > (64u << 20))
        return 0;
    uint8_t *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    memcpy(buf + 4, "TFL3", 4);
    osp_err_t err = {0};
    osp_graph_t *g = osp_tflite_import(buf, size, &err);
    if (g)
        osp__passes_load(g, &err);
    osp_graph_destroy(g);
    free(buf);
    return 0;
}
