/* osp_ptq_classify.c — test helper: osprey's post-training int8
 * quantization measured on real trained weights.
 *
 * The only trained ImageNet weights on these machines are TFLite models;
 * the ONNX files have random weights, which say nothing about accuracy. So
 * this takes a quantized TFLite model, turns it into a float model the way
 * `--precision fp32` does (pass_dequant.c), and then quantizes that float
 * model again with osprey's own calibration and pass (calibrate.c,
 * pass_quantize.c) — exactly what `--precision int8` does to an ONNX model.
 * For each image it prints one JSON line with the top-5 class indices of
 * the float model and of its int8 quantization:
 *   {"image": "...", "fp32": [i0, ...], "int8": [i0, ...]}
 * tests/integration/ptq_accuracy.py turns that into ImageNet top-1/top-5.
 *
 *   osp_ptq_classify MODEL.tflite CALIB_DIR CALIB_COUNT IMAGE...
 *
 * Exit 0 on success, 1 on an error (message on stderr), 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "engine/passes/passes.h"
#include "engine/import/tflite_import.h"
#include "model/model_int.h"
#include "osprey/image.h"
#include "osprey/model.h"

static void top5(const osp_tensor_t *t, int *idx) {
    const float *f = t->data;
    int n = (int)osp_tensor_numel(t);
    osp_topk(f, n, 5, idx, NULL);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: osp_ptq_classify MODEL.tflite CALIB_DIR "
                        "CALIB_COUNT IMAGE...\n");
        return 2;
    }
    osp_err_t err = {0};
    int rc = 1;
    osp_engine_t *ef = NULL, *e8 = NULL;
    osp_tensor_t *calib = NULL;
    int n_calib = 0;
    uint8_t *buf = NULL, *x = NULL;
    size_t len = 0;
    osp_model_t *m = osp_model_open(argv[1], NULL, NULL, &err);
    if (!m)
        goto fail;
    osp_engine_opts_t fo;
    osp_engine_opts_init(&fo);
    fo.precision = OSP_PREC_FP32; /* dequantized at load; binds m */
    if (!(ef = osp_model_load_engine(m, &fo, &err)) ||
        osp_model_set_calibration(m, argv[2], atoi(argv[3]), &err) ||
        osp__calibration_load(m, &calib, &n_calib, &err) ||
        osp_read_file(argv[1], (size_t)2 << 30, &buf, &len, &err))
        goto fail;
    /* the same float graph, then osprey's int8 quantization of it */
    osp_graph_t *g = osp_tflite_import(buf, len, &err);
    if (!g || osp__pass_dequantize(g, &err) || osp__passes_load(g, &err)) {
        osp_graph_destroy(g);
        goto fail;
    }
    osp_engine_opts_t qo;
    osp_engine_opts_init(&qo);
    qo.calib = calib;
    qo.n_calib = n_calib;
    osp__pass_qrange_t *r = calloc((size_t)g->n_values, sizeof *r);
    if (!r || osp__calibrate(g, &qo, r, &err) ||
        osp__pass_quantize(g, r, g->n_values, &err)) {
        free(r);
        osp_graph_destroy(g);
        goto fail;
    }
    free(r);
    qo.precision = OSP_PREC_INT8;
    qo.calib = NULL;
    qo.n_calib = 0;
    if (!(e8 = osp__engine_from_graph(g, &qo, &err)))
        goto fail;
    const osp_preprocess_t *pp = osp_model_preprocess(m);
    size_t bytes = osp_preprocess_bytes(pp);
    if (!(x = malloc(bytes))) {
        osp_err_set(&err, OSP_ENOMEM, "out of memory");
        goto fail;
    }
    osp_image_limits_t lim;
    osp_image_limits_default(&lim);
    int min_w, min_h;
    osp_preprocess_decode_hint(pp, &min_w, &min_h);
    for (int i = 4; i < argc; i++) {
        osp_image_t img = {0};
        if (osp_image_load_file(argv[i], &lim, min_w, min_h, &img, &err) ||
            osp_image_preprocess(&img, pp, x, &err)) {
            osp_image_release(&img);
            goto fail;
        }
        osp_image_release(&img);
        osp_tensor_t in = calib[0];
        in.data = x;
        osp_tensor_t of, o8;
        int a[5], b[5];
        if (osp_engine_run(ef, &in, 1, &of, 1, &err) ||
            osp_engine_run(e8, &in, 1, &o8, 1, &err))
            goto fail;
        top5(&of, a);
        top5(&o8, b);
        printf("{\"image\": \"%s\", \"fp32\": [%d, %d, %d, %d, %d], "
               "\"int8\": [%d, %d, %d, %d, %d]}\n",
               argv[i], a[0], a[1], a[2], a[3], a[4], b[0], b[1], b[2], b[3],
               b[4]);
    }
    fprintf(stderr, "%s", osp_engine_describe(e8));
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "osp_ptq_classify: %s\n", err.msg);
    free(x);
    free(buf);
    osp__calibration_free(calib, n_calib);
    osp_engine_destroy(e8);
    osp_engine_destroy(ef);
    osp_model_close(m);
    return rc;
}
