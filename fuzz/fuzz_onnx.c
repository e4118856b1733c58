/* fuzz_onnx.c — libFuzzer target for the ONNX loading path: protobuf
 * decoding, the importer, shape inference, graph passes and planning, all
 * behind osp_engine_load_buffer(). Model files are untrusted input (a user
 * can point `osprey serve` at any file), so whatever the bytes, loading must
 * return a model or a clean error: never crash, hang, leak or read out of
 * bounds.
 *
 * With OSP_FUZZ_RUN=1 in the environment, a model that loads and whose inputs
 * are small and static is also run once on zeros, to reach the executor.
 * Seeds: fuzz/seeds/onnx (made by fuzz/make_seeds.py); how to run campaigns:
 * docs/fuzzing.md. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/engine.h"

#define FUZZ_RUN_MAX_ELEMS 65536 /* per input: keeps each run fast */

static int run_enabled;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *v = getenv("OSP_FUZZ_RUN");
    run_enabled = v && *v && strcmp(v, "0") != 0;
    return 0;
}

/* Runs the model once on zero-filled inputs when every input is static and
 * small. Errors are fine; only crashes and sanitizer reports matter. */
static void try_run(osp_engine_t *e) {
    osp_tensor_t in[4], out[8];
    int n_in = osp_engine_num_inputs(e), n_out = osp_engine_num_outputs(e);
    osp_err_t err = {0};
    if (n_in < 1 || n_in > 4 || n_out < 1 || n_out > 8)
        return;
    memset(in, 0, sizeof(in));
    int ok = 1;
    for (int i = 0; i < n_in && ok; i++) {
        in[i] = *osp_engine_input(e, i);
        in[i].data = NULL;
        size_t n = 1;
        for (int d = 0; d < in[i].rank; d++) {
            if (d == 0 && in[i].dims[0] < 0)
                in[i].dims[0] = 1; /* dynamic batch */
            if (in[i].dims[d] < 0 || (size_t)in[i].dims[d] > FUZZ_RUN_MAX_ELEMS)
                ok = 0;
            else
                n *= (size_t)(in[i].dims[d] ? in[i].dims[d] : 1);
            if (n > FUZZ_RUN_MAX_ELEMS)
                ok = 0;
        }
        size_t bytes = ok ? osp_tensor_numel(&in[i]) * osp_dtype_size(in[i].dtype) : 0;
        in[i].data = ok ? calloc(1, bytes ? bytes : 1) : NULL;
        if (!in[i].data)
            ok = 0;
    }
    if (ok)
        (void)osp_engine_run(e, in, n_in, out, n_out, &err);
    for (int i = 0; i < n_in; i++)
        free(in[i].data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    osp_engine_opts_t opts;
    osp_err_t err = {0};
    osp_engine_opts_init(&opts);
    opts.threads = 1;
    osp_engine_t *e = osp_engine_load_buffer(data, size, "fuzz.onnx", &opts, &err);
    if (!e)
        return 0;
    if (run_enabled)
        try_run(e);
    osp_engine_destroy(e);
    return 0;
}
