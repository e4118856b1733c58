/* test_model_engine.c — osp_model_load_engine() against the shared models
 * (skipped when they are absent): an ONNX classifier and a quantized TFLite
 * one get their preprocessing, class count and labels from the model file
 * alone, without any config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osprey/model.h"

static char g_models[512];

static bool find_models(void) {
    const char *env = getenv("OSPREY_MODELS");
    const char *src = getenv("OSP_SOURCE_DIR");
    if (env && *env)
        snprintf(g_models, sizeof g_models, "%s", env);
    else
        snprintf(g_models, sizeof g_models, "%s/../shared/models",
                 src ? src : ".");
    char probe[600];
    snprintf(probe, sizeof probe, "%s/onnx/mobilenet_v2.onnx", g_models);
    return access(probe, R_OK) == 0;
}

static void test_onnx_defaults(void **state) {
    (void)state;
    if (!find_models()) {
        fprintf(stderr, "skipping: no onnx/mobilenet_v2.onnx under "
                        "$OSPREY_MODELS or ../shared/models\n");
        skip();
        return;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/onnx/mobilenet_v2.onnx", g_models);
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(path, NULL, NULL, &err);
    assert_non_null(m);
    osp_engine_opts_t opts;
    osp_engine_opts_init(&opts);
    opts.threads = 1;
    osp_engine_t *e = osp_model_load_engine(m, &opts, &err);
    if (!e)
        fail_msg("%s", err.msg);
    assert_true(osp_model_bound(m));
    const osp_preprocess_t *p = osp_model_preprocess(m);
    assert_int_equal(p->layout, OSP_LAYOUT_NCHW);
    assert_int_equal(p->dtype, OSP_DT_F32);
    assert_int_equal(p->out_w, 224);
    assert_int_equal(p->resize_short, 256);
    assert_int_equal(p->mode, OSP_RESIZE_SHORT_CROP);
    assert_int_equal(osp_model_num_classes(m), 1000);
    assert_true(osp_model_needs_softmax(m));
    assert_string_equal(osp_model_name(m), "mobilenet_v2");
    /* the shared layout has the ImageNet labels in ../tflite */
    assert_string_equal(osp_model_label(m, 0), "tench, Tinca tinca");
    /* a second instance does not bind again */
    osp_engine_t *e2 = osp_model_load_engine(m, &opts, &err);
    assert_non_null(e2);
    osp_engine_destroy(e2);
    osp_engine_destroy(e);
    osp_model_close(m);
}

static void test_tflite_defaults(void **state) {
    (void)state;
    char path[600];
    find_models();
    snprintf(path, sizeof path, "%s/tflite/mobilenet_v1_0.25_128_quant.tflite",
             g_models);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "skipping: %s not found\n", path);
        skip();
        return;
    }
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(path, NULL, NULL, &err);
    assert_non_null(m);
    osp_engine_t *e = osp_model_load_engine(m, NULL, &err);
    if (!e && err.code == OSP_EUNSUPPORTED) {
        fprintf(stderr, "skipping: engine cannot load TFLite yet: %s\n",
                err.msg);
        osp_model_close(m);
        skip();
        return;
    }
    if (!e)
        fail_msg("%s", err.msg);
    const osp_preprocess_t *p = osp_model_preprocess(m);
    assert_int_equal(p->layout, OSP_LAYOUT_NHWC);
    assert_int_equal(p->dtype, OSP_DT_U8);
    assert_int_equal(p->out_w, 128);
    assert_int_equal(p->mode, OSP_RESIZE_EXACT);
    assert_int_equal(osp_model_num_classes(m), 1001);
    assert_string_equal(osp_model_label(m, 0), "background");
    osp_engine_destroy(e);
    osp_model_close(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_defaults),
        cmocka_unit_test(test_tflite_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
