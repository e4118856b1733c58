/* test_ref_models.c — the reference kernels on whole ONNX classifiers
 * (ResNet50, MobileNetV2, SqueezeNet 1.1 from shared/models/onnx): the
 * imported graph is interpreted node by node, with no passes, and the
 * outputs are compared with onnxruntime's for a deterministic input
 * (oracle/ref_oracle_models.py generated oracle/test_ref_models_cases.inc). Exits 77
 * (skipped) when no model is found ($OSPREY_MODELS, else
 * $OSP_SOURCE_DIR/../shared/models). */
#include "ref_testutil.h"

#include "engine/import/onnx_import.h"

#include "oracle/test_ref_models_cases.inc"

static int ran;

static void test_models_vs_ort(void **state) {
    (void)state;
    for (size_t k = 0; k < OSP_ARRAY_LEN(model_cases); k++) {
        char path[1024];
        const char *env = getenv("OSPREY_MODELS");
        const char *src = getenv("OSP_SOURCE_DIR");
        if (env)
            snprintf(path, sizeof path, "%s/onnx/%s.onnx", env,
                     model_cases[k].model);
        else
            snprintf(path, sizeof path, "%s/../shared/models/onnx/%s.onnx",
                     src ? src : ".", model_cases[k].model);
        osp_err_t err = {0};
        uint8_t *buf = NULL;
        size_t len = 0;
        if (osp_read_file(path, 1u << 30, &buf, &len, &err) < 0) {
            printf("skipping %s: %s\n", model_cases[k].model, err.msg);
            continue;
        }
        osp_graph_t *g = osp_onnx_import(buf, len, &err);
        free(buf);
        if (!g)
            fail_msg("%s: %s", path, err.msg);
        osp_value_t *x = &g->values[g->inputs[0]];
        for (int d = 0; d < x->rank; d++)
            if (x->dims[d] < 0)
                x->dims[d] = 1;
        size_t n = osp_value_numel(x);
        float *d = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            d[i] = (float)((i * 7 + 3) % 256) / 64.f - 2.f;
        osp_graph_set_const(g, g->inputs[0], d, n * sizeof(float));
        uint64_t t0 = osp_now_ns();
        if (ref_interpret(g, &err) < 0)
            fail_msg("%s: %s", path, err.msg);
        double sec = (double)(osp_now_ns() - t0) / 1e9;
        const osp_value_t *y = &g->values[g->outputs[0]];
        assert_int_equal(osp_value_numel(y), model_cases[k].n);
        const float *got = y->data;
        /* tolerance relative to the output's scale: some test models have
         * logits of 1e-9 (random weights) */
        double scale = 0, worst = 0;
        for (size_t i = 0; i < model_cases[k].n; i++)
            scale = fmax(scale, fabs(model_cases[k].want[i]));
        for (size_t i = 0; i < model_cases[k].n; i++) {
            double want = model_cases[k].want[i];
            double e = fabs(got[i] - want) /
                       (1e-4 * scale + 1e-3 * fabs(want) + 1e-30);
            worst = e > worst ? e : worst;
            if (e > 1.0)
                fail_msg("%s element %zu: %.7g, onnxruntime %.7g",
                         model_cases[k].model, i, got[i], want);
        }
        printf("%s: %.2f s, worst error %.3f of tolerance\n",
               model_cases[k].model, sec, worst);
        osp_graph_destroy(g);
        ran++;
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_vs_ort),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0 && !ran) {
        printf("SKIP: no ONNX models found (set OSPREY_MODELS)\n");
        return 77;
    }
    return rc;
}
