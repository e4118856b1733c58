/* test_engine_models.c — the executor on real ONNX models (ResNet50,
 * MobileNetV2, SqueezeNet 1.1), when present: fp32 must match a node-by-node
 * reference-kernel evaluation of the same graph (SqueezeNet, MobileNetV2;
 * ResNet50's reference run would take minutes under ASan), bf16 must keep
 * top-1 and cosine >= 0.999 against fp32, and the rows of a batch must
 * equal single-image runs (plans per batch size agree). Models are looked
 * up in $OSPREY_MODELS, then $OSP_SOURCE_DIR/../shared/models; the test is
 * skipped (exit 77) when none is found. Equivalence with ONNX Runtime is
 * the integration tests' job. */
#include <unistd.h>

#include "engine_testutil.h"

static char g_dir[2048];

static bool find_models(void) {
    const char *env = getenv("OSPREY_MODELS");
    const char *src = getenv("OSP_SOURCE_DIR");
    char cand[2][1024] = {"", ""};
    /* Paths longer than ~1000 bytes are not ours to support. */
    if (env)
        snprintf(cand[0], sizeof cand[0], "%s/onnx", env);
    if (src)
        snprintf(cand[1], sizeof cand[1], "%s/../shared/models/onnx", src);
    for (int i = 0; i < 2; i++) {
        char probe[1100];
        if (strlen(cand[i]) > 1000)
            continue;
        snprintf(probe, sizeof probe, "%.1000s/squeezenet1_1.onnx", cand[i]);
        if (cand[i][0] && access(probe, R_OK) == 0) {
            snprintf(g_dir, sizeof g_dir, "%.1000s", cand[i]);
            return true;
        }
    }
    return false;
}

/* The engine's layout choices (tune.c) differ per CPU; every model is
 * checked in each of them, so that each holds on every machine. */
typedef struct layout_s {
    osp_conv_layout_t layout;
    osp_tune_t winograd;
    const char *name;
} layout_t;
static const layout_t g_layouts[] = {
    {OSP_CONV_LAYOUT_BLOCKED, OSP_TUNE_ON, "blocked+winograd"},
    /* Winograd's blocked outputs meet NHWC ones at concats */
    {OSP_CONV_LAYOUT_ANY, OSP_TUNE_ON, "any+winograd"},
    {OSP_CONV_LAYOUT_ANY, OSP_TUNE_OFF, "any"},
};

static osp_engine_t *load(const char *name, osp_precision_t prec,
                          const layout_t *lay) {
    char path[1200];
    snprintf(path, sizeof path, "%.1000s/%.100s.onnx", g_dir, name);
    if (access(path, R_OK) != 0)
        return NULL;
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.precision = prec;
    o.tuning.conv_layout = lay->layout;
    o.tuning.winograd = lay->winograd;
    osp_err_t err = {0};
    osp_engine_t *e = osp_engine_load(path, &o, &err);
    if (!e)
        fail_msg("%s: %s", path, err.msg);
    return e;
}

static int argmax(const float *x, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return (int)b;
}

static void check_model(const char *name, bool with_ref, const layout_t *lay) {
    if (lay->layout == OSP_CONV_LAYOUT_BLOCKED && !osp__cpu_caps()->avx512) {
        /* nChw16c has only reference kernels below AVX-512, so the engine
         * never chooses it there (tune.c) */
        print_message("%s, conv layout %s: not a candidate below AVX-512\n",
                      name, lay->name);
        return;
    }
    print_message("%s, conv layout %s\n", name, lay->name);
    osp_engine_t *e = load(name, OSP_PREC_FP32, lay);
    if (!e) {
        print_message("skipping %s: not found in %s\n", name, g_dir);
        return;
    }
    osp_err_t err = {0};
    const int B = 2;
    osp_tensor_t x = tu_tensor(4, D(B, 3, 224, 224), 42);
    osp_tensor_t out;
    if (osp_engine_run(e, &x, 1, &out, 1, &err) < 0)
        fail_msg("%s: %s", name, err.msg);
    assert_int_equal(out.rank, 2);
    assert_int_equal(out.dims[0], B);
    size_t per = (size_t)out.dims[1];
    float *f32 = malloc(sizeof(float) * per * B);
    memcpy(f32, out.data, sizeof(float) * per * B);
    assert_null(strstr(osp_engine_describe(e), ": ref"));

    if (with_ref) {
        osp_tensor_t refs[1];
        float **ref = tu_ref_eval(e->g, &x, refs);
        double r = tu_rel_diff(f32, ref[0], per * B);
        print_message("%s fp32 vs reference: max|diff|/max|ref| = %.3g\n", name, r);
        assert_true(r <= 1e-4);
        free(ref[0]);
        free(ref);
    }

    /* Batch rows == single runs. */
    for (int b = 0; b < B; b++) {
        osp_tensor_t x1 = x;
        x1.dims[0] = 1;
        x1.data = (float *)x.data + (size_t)b * 3 * 224 * 224;
        if (osp_engine_run(e, &x1, 1, &out, 1, &err) < 0)
            fail_msg("%s: %s", name, err.msg);
        double r = tu_rel_diff(out.data, f32 + (size_t)b * per, per);
        assert_true(r <= 1e-4);
    }
    osp_engine_destroy(e);

    e = load(name, OSP_PREC_BF16, lay);
    if (osp_engine_run(e, &x, 1, &out, 1, &err) < 0)
        fail_msg("%s bf16: %s", name, err.msg);
    for (int b = 0; b < B; b++) {
        const float *o = (const float *)out.data + (size_t)b * per;
        double c = tu_cosine(o, f32 + (size_t)b * per, per);
        print_message("%s bf16 vs fp32 image %d: cosine %.6f\n", name, b, c);
        assert_true(c >= 0.999);
        assert_int_equal(argmax(o, per), argmax(f32 + (size_t)b * per, per));
    }
    osp_engine_destroy(e);
    free(f32);
    free(x.data);
}

static void test_squeezenet(void **state) {
    (void)state;
    for (size_t i = 0; i < OSP_ARRAY_LEN(g_layouts); i++)
        check_model("squeezenet1_1", true, &g_layouts[i]);
}

static void test_mobilenet(void **state) {
    (void)state;
    for (size_t i = 0; i < OSP_ARRAY_LEN(g_layouts); i++)
        check_model("mobilenet_v2", true, &g_layouts[i]);
}

static void test_resnet50(void **state) {
    (void)state;
    for (size_t i = 0; i < OSP_ARRAY_LEN(g_layouts); i++)
        check_model("resnet50", false, &g_layouts[i]);
}

int main(int argc, char **argv) {
    tu_args(argc, argv);
    if (!find_models()) {
        printf("skipped: no models in $OSPREY_MODELS or "
               "$OSP_SOURCE_DIR/../shared/models\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_squeezenet),
        cmocka_unit_test(test_mobilenet),
        cmocka_unit_test(test_resnet50),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
