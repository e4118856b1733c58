/* test_model.c — unit tests of the model module (include/osprey/model.h):
 * config discovery and parsing (valid configs and every error path, with
 * the file/key/line named in the message), label files (CRLF, BOM, blank
 * lines, bad UTF-8, offsets), binding to a model's declared input/output,
 * and the top-k / softmax helpers on known vectors. Files are written to a
 * fresh temporary directory per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osprey/model.h"

/* ---- temp files ------------------------------------------------------- */

typedef struct tmp_s {
    char dir[64];
    char path[8][256]; /* files to remove */
    int n;
} tmp_t;

static int setup(void **state) {
    tmp_t *t = calloc(1, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/osp_model_XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state) {
    tmp_t *t = *state;
    for (int i = 0; i < t->n; i++)
        unlink(t->path[i]);
    rmdir(t->dir);
    free(t);
    return 0;
}

/* Writes dir/name and returns its path (owned by t). */
static const char *put(tmp_t *t, const char *name, const char *text) {
    assert_true(t->n < 8);
    char full[256];
    snprintf(full, sizeof full, "%s/%s", t->dir, name);
    char *p = t->path[t->n++];
    memcpy(p, full, sizeof full);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

static const char *model_path(tmp_t *t, const char *name) {
    static char p[256];
    snprintf(p, sizeof p, "%s/%s", t->dir, name);
    return p; /* the model file itself is never read */
}

static osp_tensor_t tensor(osp_dtype_t dt, int rank, const int64_t *dims) {
    osp_tensor_t x = {.name = "t", .dtype = dt, .rank = rank};
    memcpy(x.dims, dims, sizeof(int64_t) * (size_t)rank);
    return x;
}

static int bind_imagenet(osp_model_t *m, int classes, osp_err_t *err) {
    osp_tensor_t in = tensor(OSP_DT_F32, 4, (int64_t[]){-1, 3, 224, 224});
    osp_tensor_t out = tensor(OSP_DT_F32, 2, (int64_t[]){-1, classes});
    return osp_model_bind(m, &in, &out, err);
}

/* Opens expecting failure; returns err for message checks. */
static osp_err_t open_fails(const char *model, const char *labels,
                            const char *config) {
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(model, labels, config, &err);
    assert_null(m);
    assert_true(err.code < 0);
    return err;
}

static void assert_contains(const char *hay, const char *needle) {
    if (!strstr(hay, needle))
        fail_msg("'%s' does not contain '%s'", hay, needle);
}

/* ---- top-k and softmax ------------------------------------------------ */

static void test_topk(void **state) {
    (void)state;
    const float s[6] = {0.1f, 0.5f, 0.3f, 0.5f, -1.f, 0.3f};
    int idx[6];
    float sc[6];
    assert_int_equal(osp_topk(s, 6, 3, idx, sc), 3);
    assert_int_equal(idx[0], 1); /* tie 0.5: lower index first */
    assert_int_equal(idx[1], 3);
    assert_int_equal(idx[2], 2);
    assert_float_equal(sc[2], 0.3f, 0);
    assert_int_equal(osp_topk(s, 6, 10, idx, NULL), 6); /* k > n */
    const int full[6] = {1, 3, 2, 5, 0, 4};
    assert_memory_equal(idx, full, sizeof full);
    assert_int_equal(osp_topk(s, 6, 0, idx, sc), 0);
    assert_int_equal(osp_topk(s, 0, 3, idx, sc), 0);
    assert_int_equal(osp_topk(s, -1, 3, idx, sc), OSP_EINVAL);
    assert_int_equal(osp_topk(NULL, 6, 3, idx, sc), OSP_EINVAL);
    const float nan_s[4] = {NAN, -5.f, NAN, 2.f};
    assert_int_equal(osp_topk(nan_s, 4, 4, idx, NULL), 4);
    assert_int_equal(idx[0], 3);
    assert_int_equal(idx[1], 1);
    assert_int_equal(idx[2], 0);
    assert_int_equal(idx[3], 2);
    /* all equal: index order */
    const float eq[5] = {1, 1, 1, 1, 1};
    assert_int_equal(osp_topk(eq, 5, 3, idx, NULL), 3);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);
    assert_int_equal(idx[2], 2);
}

static void test_softmax(void **state) {
    (void)state;
    float x[3] = {1.f, 2.f, 3.f}, y[3];
    osp_softmax(x, y, 3);
    assert_float_equal(y[0], 0.09003057f, 1e-6);
    assert_float_equal(y[1], 0.24472847f, 1e-6);
    assert_float_equal(y[2], 0.66524096f, 1e-6);
    /* large logits: no overflow; in place */
    float big[2] = {1000.f, 1001.f};
    osp_softmax(big, big, 2);
    assert_float_equal(big[0], 0.26894142f, 1e-6);
    assert_float_equal(big[1], 0.73105858f, 1e-6);
    float neg[3] = {-INFINITY, -INFINITY, -INFINITY};
    osp_softmax(neg, neg, 3);
    assert_float_equal(neg[1], 1.f / 3, 1e-7);
    float mixed[3] = {NAN, 0.f, 0.f};
    osp_softmax(mixed, mixed, 3);
    assert_float_equal(mixed[0], 0.f, 0);
    assert_float_equal(mixed[1], 0.5f, 1e-7);
    float inf[3] = {INFINITY, 1.f, INFINITY};
    osp_softmax(inf, inf, 3);
    assert_float_equal(inf[0], 0.5f, 0);
    assert_float_equal(inf[1], 0.f, 0);
    osp_softmax(NULL, NULL, 0); /* no-op */
}

/* ---- defaults and valid configs -------------------------------------- */

static void test_defaults(void **state) {
    tmp_t *t = *state;
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(model_path(t, "resnet50.onnx"), NULL,
                                    NULL, &err);
    assert_non_null(m);
    assert_string_equal(osp_model_name(m), "resnet50");
    assert_null(osp_model_config_path(m));
    assert_null(osp_model_labels_path(m));
    const osp_preprocess_t *p = osp_model_preprocess(m);
    assert_int_equal(p->mode, OSP_RESIZE_SHORT_CROP);
    assert_int_equal(p->resize_short, 256);
    assert_int_equal(p->out_w, 224);
    assert_int_equal(p->out_h, 224);
    assert_int_equal(p->layout, OSP_LAYOUT_NCHW);
    assert_int_equal(p->dtype, OSP_DT_F32);
    assert_float_equal(p->scale, 1.f / 255, 1e-9);
    assert_float_equal(p->mean[0], 0.485f, 0);
    assert_float_equal(p->std[2], 0.225f, 0);
    /* the same as the image module's ImageNet defaults */
    osp_preprocess_t d;
    osp_preprocess_default(&d);
    assert_int_equal(p->mode, d.mode);
    assert_int_equal(p->resize_short, d.resize_short);
    assert_int_equal(p->out_w, d.out_w);
    assert_int_equal(p->layout, d.layout);
    assert_int_equal(p->dtype, d.dtype);
    assert_float_equal(p->scale, d.scale, 1e-9);
    for (int c = 0; c < 3; c++) {
        assert_float_equal(p->mean[c], d.mean[c], 1e-7);
        assert_float_equal(p->std[c], d.std[c], 1e-7);
    }
    assert_int_equal(osp_model_precision(m), OSP_PREC_AUTO);
    assert_int_equal(osp_model_max_batch(m), 0);
    assert_true(osp_model_needs_softmax(m));
    assert_null(osp_model_label(m, 0));
    assert_int_equal(osp_model_num_classes(m), 0);
    assert_int_equal(bind_imagenet(m, 1000, &err), 0);
    assert_true(osp_model_bound(m));
    assert_int_equal(osp_model_num_classes(m), 1000);
    assert_int_equal(osp_model_label_count(m), 1000);
    assert_string_equal(osp_model_label(m, 0), "class_0");
    assert_string_equal(osp_model_label(m, 999), "class_999");
    assert_null(osp_model_label(m, 1000));
    assert_null(osp_model_label(m, -1));
    assert_int_equal(osp_model_max_batch(m), 0); /* dynamic batch */
    assert_int_equal(bind_imagenet(m, 1000, &err), OSP_EINVAL);
    osp_model_close(m);
}

static void test_full_config(void **state) {
    tmp_t *t = *state;
    put(t, "names.txt", "zero\none\ntwo\nthree\n");
    const char *cfg = put(t, "net.json",
        "{\"name\": \"my-net_v2.1\", \"labels\": \"names.txt\",\n"
        " \"label_offset\": 1,\n"
        " \"preprocess\": {\"resize\": \"central_fraction\",\n"
        "   \"central_fraction\": 0.75, \"width\": 160, \"height\": 128,\n"
        "   \"layout\": \"nhwc\", \"dtype\": \"float32\", \"scale\": 0.5,\n"
        "   \"mean\": [1, 2, 3], \"std\": [0.5, 0.25, 2]},\n"
        " \"precision\": \"bf16\", \"max_batch_size\": 16,\n"
        " \"output\": \"probabilities\"}\n");
    osp_err_t err = {0};
    /* found by the <stem>.json rule */
    osp_model_t *m = osp_model_open(model_path(t, "net.onnx"), NULL, NULL,
                                    &err);
    assert_non_null(m);
    assert_string_equal(osp_model_config_path(m), cfg);
    assert_string_equal(osp_model_name(m), "my-net_v2.1");
    const osp_preprocess_t *p = osp_model_preprocess(m);
    assert_int_equal(p->mode, OSP_RESIZE_CENTRAL_FRACTION);
    assert_float_equal(p->central_fraction, 0.75f, 0);
    assert_int_equal(p->out_w, 160);
    assert_int_equal(p->out_h, 128);
    assert_int_equal(p->layout, OSP_LAYOUT_NHWC);
    assert_float_equal(p->scale, 0.5f, 0);
    assert_float_equal(p->mean[2], 3.f, 0);
    assert_float_equal(p->std[1], 0.25f, 0);
    assert_int_equal(osp_model_precision(m), OSP_PREC_BF16);
    assert_int_equal(osp_model_max_batch(m), 16);
    assert_false(osp_model_needs_softmax(m));
    assert_int_equal(osp_model_label_offset(m), 1);
    assert_string_equal(osp_model_label(m, 0), "one");
    assert_string_equal(osp_model_label(m, 2), "three");
    assert_null(osp_model_label(m, 3));
    /* bind: [N,128,160,3] matches; 4 classes, explicit offset 1 */
    osp_tensor_t in = tensor(OSP_DT_F32, 4, (int64_t[]){-1, 128, 160, 3});
    osp_tensor_t out = tensor(OSP_DT_F32, 2, (int64_t[]){-1, 4});
    assert_int_equal(osp_model_bind(m, &in, &out, &err), 0);
    assert_string_equal(osp_model_label(m, 0), "one");
    assert_string_equal(osp_model_label(m, 3), "class_3");
    osp_model_close(m);
}

/* config.json in the directory is the fallback; <stem>.json wins. */
static void test_config_discovery(void **state) {
    tmp_t *t = *state;
    put(t, "config.json", "{\"name\": \"dir-config\"}");
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(model_path(t, "a.onnx"), NULL, NULL, &err);
    assert_non_null(m);
    assert_string_equal(osp_model_name(m), "dir-config");
    osp_model_close(m);
    put(t, "a.json", "{\"name\": \"stem-config\"}");
    m = osp_model_open(model_path(t, "a.onnx"), NULL, NULL, &err);
    assert_non_null(m);
    assert_string_equal(osp_model_name(m), "stem-config");
    osp_model_close(m);
    /* an explicit config path overrides both */
    const char *other = put(t, "other.cfg", "{\"name\": \"explicit\"}");
    m = osp_model_open(model_path(t, "a.onnx"), NULL, other, &err);
    assert_non_null(m);
    assert_string_equal(osp_model_name(m), "explicit");
    osp_model_close(m);
}

/* Mode-specific keys imply their mode; uint8 implies exact + raw values. */
static void test_implied_modes(void **state) {
    tmp_t *t = *state;
    const char *c1 = put(t, "c1.json", "{\"preprocess\": {\"resize_short\": 300}}");
    const char *c2 =
        put(t, "c2.json", "{\"preprocess\": {\"central_fraction\": 0.9}}");
    const char *c3 = put(t, "c3.json", "{\"preprocess\": {\"dtype\": \"uint8\"}}");
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(model_path(t, "x.onnx"), NULL, c1, &err);
    assert_non_null(m);
    assert_int_equal(osp_model_preprocess(m)->mode, OSP_RESIZE_SHORT_CROP);
    assert_int_equal(osp_model_preprocess(m)->resize_short, 300);
    osp_model_close(m);
    m = osp_model_open(model_path(t, "x.onnx"), NULL, c2, &err);
    assert_non_null(m);
    assert_int_equal(osp_model_preprocess(m)->mode,
                     OSP_RESIZE_CENTRAL_FRACTION);
    osp_model_close(m);
    m = osp_model_open(model_path(t, "x.onnx"), NULL, c3, &err);
    assert_non_null(m);
    const osp_preprocess_t *p = osp_model_preprocess(m);
    assert_int_equal(p->mode, OSP_RESIZE_EXACT);
    assert_int_equal(p->dtype, OSP_DT_U8);
    assert_float_equal(p->scale, 1.f, 0);
    assert_float_equal(p->mean[0], 0.f, 0);
    assert_float_equal(p->std[0], 1.f, 0);
    osp_model_close(m);
}

/* ---- config errors ---------------------------------------------------- */

static void test_config_errors(void **state) {
    tmp_t *t = *state;
    const char *mp = model_path(t, "m.onnx");
    static const struct {
        const char *json, *expect[2];
    } cases[] = {
        {"{\n  \"name\": \"x\",\n  oops\n}", {"bad.json:3:", "invalid JSON"}},
        {"[1, 2]", {"bad.json", "top level must be a JSON object"}},
        {"{\"nmae\": \"x\"}", {"bad.json", "unknown key 'nmae'"}},
        {"{\"preprocess\": {\"widht\": 3}}",
         {"bad.json", "unknown key 'preprocess.widht'"}},
        {"{\"preprocess\": {\"width\": \"224\"}}",
         {"key 'preprocess.width'", "not a string"}},
        {"{\"preprocess\": {\"width\": 0}}",
         {"key 'preprocess.width'", "1..16384"}},
        {"{\"preprocess\": {\"mean\": [1, 2]}}",
         {"key 'preprocess.mean'", "3 numbers"}},
        {"{\"preprocess\": {\"std\": [1, 0, 1]}}",
         {"key 'preprocess.std'", "positive"}},
        {"{\"preprocess\": {\"central_fraction\": 1.5}}",
         {"preprocess.central_fraction", "(0, 1]"}},
        {"{\"preprocess\": {\"resize\": \"short_crop\", "
         "\"central_fraction\": 0.5}}",
         {"central_fraction", "needs"}},
        {"{\"preprocess\": {\"layout\": \"chw\"}}",
         {"key 'preprocess.layout'", "\"chw\""}},
        {"{\"preprocess\": 3}", {"key 'preprocess'", "an object"}},
        {"{\"precision\": \"fp64\"}", {"key 'precision'", "\"fp32\""}},
        {"{\"max_batch_size\": 2.5}", {"key 'max_batch_size'", "a number"}},
        {"{\"output\": true}", {"key 'output'", "a boolean"}},
        {"{\"name\": \"a/b\"}", {"key 'name'", "[A-Za-z0-9._-]"}},
        {"{\"name\": \"a\", \"name\": \"b\"}", {"bad.json:1:", "duplicate"}},
        {"{\"labels\": 7}", {"key 'labels'", "a string"}},
        {"{\"label_offset\": \"1\"}", {"key 'label_offset'", "integer"}},
        {"{\"max_queue_delay_us\": -1}", {"max_queue_delay_us", "0..60000000"}},
        {"{\"max_queue_size\": 0}", {"max_queue_size", "1..1000000"}},
        {"{\"instances\": 17}", {"key 'instances'", "1..16"}},
        {"{\"preferred_batch_sizes\": 4}", {"preferred_batch_sizes", "an array"}},
        {"{\"preferred_batch_sizes\": [4, 4]}", {"preferred_batch_sizes", "distinct"}},
        {"{\"max_batch_size\": 4, \"preferred_batch_sizes\": [2, 8]}",
         {"preferred_batch_sizes has 8", "max_batch_size 4"}},
        {"{\"version_policy\": {\"newest\": {}}}", {"key 'version_policy'", "latest"}},
        {"{\"version_policy\": {\"latest\": {\"num_versions\": 0}}}",
         {"version_policy.latest.num_versions", "1..64"}},
        {"{\"version_policy\": {\"latest\": {\"n\": 1}}}",
         {"unknown key 'version_policy.latest.n'", "bad.json"}},
        {"{\"version_policy\": {\"specific\": {\"versions\": [1, 0]}}}",
         {"version_policy.specific.versions", ">= 1"}},
        {"{\"version_policy\": {\"specific\": {}}}", {"specific", "needs 'versions'"}},
        {"{\"version_policy\": {\"all\": {\"x\": 1}}}", {"version_policy.all", "empty"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *cfg = put(t, "bad.json", cases[i].json);
        osp_err_t err = open_fails(mp, NULL, cfg);
        for (int k = 0; k < 2; k++)
            assert_contains(err.msg, cases[i].expect[k]);
        t->n--; /* rewritten next round */
    }
    /* an explicit config that does not exist */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope.json", t->dir);
    osp_err_t err = open_fails(mp, NULL, missing);
    assert_int_equal(err.code, OSP_ENOENT);
    assert_contains(err.msg, "nope.json");
    /* a config whose labels file does not exist */
    const char *cfg = put(t, "m.json", "{\"labels\": \"gone.txt\"}");
    (void)cfg;
    err = open_fails(mp, NULL, NULL);
    assert_int_equal(err.code, OSP_ENOENT);
    assert_contains(err.msg, "m.json: key 'labels'");
    assert_contains(err.msg, "gone.txt");
    /* an explicit labels file that does not exist */
    err = open_fails(model_path(t, "n.onnx"), missing, NULL);
    assert_int_equal(err.code, OSP_ENOENT);
    assert_contains(err.msg, "labels file");
}

/* Serving keys: defaults, a full set, and the config-only reader used for a
 * repository's model-level config.json. */
static void test_serving_keys(void **state) {
    tmp_t *t = *state;
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(model_path(t, "a.onnx"), NULL, NULL, &err);
    assert_non_null(m);
    const osp_model_serving_t *sv = osp_model_serving(m);
    assert_int_equal(sv->max_queue_delay_us, -1);
    assert_int_equal(sv->max_queue_size, 0);
    assert_int_equal(sv->instances, 0);
    assert_int_equal(sv->n_preferred, 0);
    assert_false(sv->has_version_policy);
    assert_int_equal(sv->policy, OSP_VERSIONS_LATEST);
    assert_int_equal(sv->latest_n, 1);
    osp_model_close(m);
    const char *cfg = put(t, "b.json",
                          "{\"max_batch_size\": 16, \"max_queue_delay_us\": 500,"
                          " \"max_queue_size\": 32, \"instances\": 2,"
                          " \"preferred_batch_sizes\": [8, 4],"
                          " \"version_policy\": {\"specific\": {\"versions\": [3, 1]}}}");
    m = osp_model_open(model_path(t, "b.onnx"), NULL, NULL, &err);
    assert_non_null(m);
    sv = osp_model_serving(m);
    assert_int_equal(osp_model_max_batch(m), 16);
    assert_int_equal(sv->max_queue_delay_us, 500);
    assert_int_equal(sv->max_queue_size, 32);
    assert_int_equal(sv->instances, 2);
    assert_int_equal(sv->n_preferred, 2);
    assert_int_equal(sv->preferred[0], 4);
    assert_int_equal(sv->preferred[1], 8);
    assert_true(sv->has_version_policy);
    assert_int_equal(sv->policy, OSP_VERSIONS_SPECIFIC);
    assert_int_equal(sv->n_versions, 2);
    assert_int_equal(sv->versions[0], 1);
    assert_int_equal(sv->versions[1], 3);
    osp_model_close(m);
    osp_model_serving_t out;
    int mb = -1;
    assert_int_equal(osp_model_config_serving(cfg, &out, &mb, &err), 0);
    assert_int_equal(mb, 16);
    assert_int_equal(out.instances, 2);
    assert_int_equal(out.policy, OSP_VERSIONS_SPECIFIC);
    cfg = put(t, "c.json", "{\"version_policy\": {\"latest\": {\"num_versions\": 2}}}");
    assert_int_equal(osp_model_config_serving(cfg, &out, NULL, &err), 0);
    assert_int_equal(out.policy, OSP_VERSIONS_LATEST);
    assert_int_equal(out.latest_n, 2);
    assert_string_equal(osp_version_policy_name(out.policy), "latest");
    cfg = put(t, "d.json", "{\"version_policy\": {\"all\": {}}, \"typo\": 1}");
    assert_int_equal(osp_model_config_serving(cfg, &out, NULL, &err), OSP_EINVAL);
    assert_contains(err.msg, "unknown key 'typo'");
}

/* ---- labels ----------------------------------------------------------- */

static void test_labels_format(void **state) {
    tmp_t *t = *state;
    const char *lp = put(t, "l.txt",
                         "\xEF\xBB\xBF" "cat \r\ndog\t\r\n\n"
                         "caf\xC3\xA9\nlast\n\n\n");
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(model_path(t, "m.onnx"), lp, NULL, &err);
    assert_non_null(m);
    assert_int_equal(osp_model_label_count(m), 5); /* trailing blanks dropped */
    assert_string_equal(osp_model_label(m, 0), "cat");
    assert_string_equal(osp_model_label(m, 1), "dog");
    assert_null(osp_model_label(m, 2)); /* empty line */
    assert_string_equal(osp_model_label(m, 3), "caf\xC3\xA9");
    assert_int_equal(bind_imagenet(m, 5, &err), 0);
    assert_int_equal(osp_model_label_offset(m), 0);
    assert_string_equal(osp_model_label(m, 2), "class_2");
    assert_string_equal(osp_model_label(m, 4), "last");
    osp_model_close(m);
    /* last line without a newline */
    lp = put(t, "l2.txt", "a\nbb");
    m = osp_model_open(model_path(t, "m.onnx"), lp, NULL, &err);
    assert_non_null(m);
    assert_string_equal(osp_model_label(m, 1), "bb");
    osp_model_close(m);
    /* invalid UTF-8 and control characters name the line */
    lp = put(t, "l3.txt", "ok\nalso ok\nbad \xC3\x28 byte\n");
    err = open_fails(model_path(t, "m.onnx"), lp, NULL);
    assert_int_equal(err.code, OSP_EFORMAT);
    assert_contains(err.msg, "line 3");
    lp = put(t, "l4.txt", "bell\x07\n");
    err = open_fails(model_path(t, "m.onnx"), lp, NULL);
    assert_contains(err.msg, "line 1");
}

static void test_label_offsets(void **state) {
    tmp_t *t = *state;
    /* background-first file (n+1 lines) → offset 1 */
    const char *lp = put(t, "bg.txt", "background\nzero\none\ntwo\n");
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(model_path(t, "m.onnx"), lp, NULL, &err);
    assert_non_null(m);
    assert_int_equal(bind_imagenet(m, 3, &err), 0);
    assert_int_equal(osp_model_label_offset(m), 1);
    assert_string_equal(osp_model_label(m, 0), "zero");
    assert_string_equal(osp_model_label(m, 2), "two");
    osp_model_close(m);
    /* same file with an n+1-output model → offset 0 */
    m = osp_model_open(model_path(t, "m.onnx"), lp, NULL, &err);
    assert_int_equal(bind_imagenet(m, 4, &err), 0);
    assert_int_equal(osp_model_label_offset(m), 0);
    assert_string_equal(osp_model_label(m, 0), "background");
    osp_model_close(m);
    /* a length that fits neither is an error for a given file */
    m = osp_model_open(model_path(t, "m.onnx"), lp, NULL, &err);
    assert_int_equal(bind_imagenet(m, 10, &err), OSP_EINVAL);
    assert_contains(err.msg, "4 labels");
    assert_contains(err.msg, "10 classes");
    assert_false(osp_model_bound(m));
    osp_model_close(m);
    /* ... unless label_offset is set: then missing lines are synthetic */
    const char *cfg = put(t, "m.json", "{\"label_offset\": -1}");
    (void)cfg;
    m = osp_model_open(model_path(t, "m.onnx"), lp, NULL, &err);
    assert_non_null(m);
    assert_int_equal(bind_imagenet(m, 10, &err), 0);
    assert_string_equal(osp_model_label(m, 0), "class_0");
    assert_string_equal(osp_model_label(m, 1), "background");
    assert_string_equal(osp_model_label(m, 4), "two");
    assert_string_equal(osp_model_label(m, 5), "class_5");
    osp_model_close(m);
}

/* imagenet_labels.txt beside the model is picked up when it fits. */
static void test_searched_labels(void **state) {
    tmp_t *t = *state;
    char *text = malloc(1001 * 16);
    size_t o = (size_t)sprintf(text, "background\n");
    for (int i = 0; i < 1000; i++)
        o += (size_t)sprintf(text + o, "label%d\n", i);
    put(t, "imagenet_labels.txt", text);
    free(text);
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open(model_path(t, "m.onnx"), NULL, NULL, &err);
    assert_non_null(m);
    assert_non_null(osp_model_labels_path(m));
    assert_int_equal(bind_imagenet(m, 1000, &err), 0);
    assert_int_equal(osp_model_label_offset(m), 1);
    assert_string_equal(osp_model_label(m, 0), "label0");
    assert_string_equal(osp_model_label(m, 999), "label999");
    osp_model_close(m);
    /* a 10-class model ignores it and uses synthetic labels */
    m = osp_model_open(model_path(t, "m.onnx"), NULL, NULL, &err);
    assert_int_equal(bind_imagenet(m, 10, &err), 0);
    assert_null(osp_model_labels_path(m));
    assert_string_equal(osp_model_label(m, 3), "class_3");
    osp_model_close(m);
}

/* $OSPREY_MODELS as the test started; unset afterwards so that the label
 * search in the other tests only sees the temporary directory. */
static char *g_models_env;

/* The real 1001-line ImageNet file, when the shared models are present. */
static void test_shared_imagenet_labels(void **state) {
    (void)state;
    const char *src = getenv("OSP_SOURCE_DIR");
    const char *env = g_models_env;
    char path[512];
    if (env && *env)
        snprintf(path, sizeof path, "%s/tflite/imagenet_labels.txt", env);
    else
        snprintf(path, sizeof path, "%s/../shared/models/tflite/"
                 "imagenet_labels.txt", src ? src : ".");
    if (access(path, R_OK) != 0) {
        skip(); /* shared models not available on this machine */
        return;
    }
    osp_err_t err = {0};
    osp_model_t *m = osp_model_open("resnet50.onnx", path, NULL, &err);
    assert_non_null(m);
    assert_int_equal(osp_model_label_count(m), 1001);
    assert_int_equal(bind_imagenet(m, 1000, &err), 0);
    assert_string_equal(osp_model_label(m, 0), "tench, Tinca tinca");
    assert_string_equal(osp_model_label(m, 999),
                        "toilet tissue, toilet paper, bathroom tissue");
    osp_model_close(m);
    /* found without being named: <models>/onnx/x.onnx → ../tflite/ */
    char mp[512];
    snprintf(mp, sizeof mp, "%.*s/onnx/resnet50.onnx",
             (int)(strlen(path) - strlen("/tflite/imagenet_labels.txt")),
             path);
    m = osp_model_open(mp, NULL, NULL, &err);
    assert_non_null(m);
    assert_non_null(osp_model_labels_path(m));
    assert_int_equal(bind_imagenet(m, 1000, &err), 0);
    assert_int_equal(osp_model_label_offset(m), 1);
    assert_string_equal(osp_model_label(m, 1), "goldfish, Carassius auratus");
    osp_model_close(m);
    /* and beside a 1001-output TFLite model, offset 0 */
    snprintf(mp, sizeof mp, "%.*s/tflite/mobilenet_v2_1.0_224_quant.tflite",
             (int)(strlen(path) - strlen("/tflite/imagenet_labels.txt")),
             path);
    m = osp_model_open(mp, NULL, NULL, &err);
    assert_non_null(m);
    osp_tensor_t in = tensor(OSP_DT_U8, 4, (int64_t[]){1, 224, 224, 3});
    osp_tensor_t out = tensor(OSP_DT_U8, 2, (int64_t[]){1, 1001});
    assert_int_equal(osp_model_bind(m, &in, &out, &err), 0);
    assert_int_equal(osp_model_label_offset(m), 0);
    assert_string_equal(osp_model_label(m, 0), "background");
    osp_model_close(m);
}

/* ---- binding to the model's declared input/output -------------------- */

static void test_bind_infers(void **state) {
    tmp_t *t = *state;
    osp_err_t err = {0};
    /* TFLite-style: uint8 NHWC [1,128,128,3] → 1001 u8 probabilities */
    osp_model_t *m = osp_model_open(model_path(t, "mobilenet_v1_0.25_128_quant"
                                                  ".tflite"),
                                    NULL, NULL, &err);
    assert_non_null(m);
    assert_string_equal(osp_model_name(m), "mobilenet_v1_0.25_128_quant");
    osp_tensor_t in = tensor(OSP_DT_U8, 4, (int64_t[]){1, 128, 128, 3});
    osp_tensor_t out = tensor(OSP_DT_U8, 2, (int64_t[]){1, 1001});
    assert_int_equal(osp_model_bind(m, &in, &out, &err), 0);
    const osp_preprocess_t *p = osp_model_preprocess(m);
    assert_int_equal(p->layout, OSP_LAYOUT_NHWC);
    assert_int_equal(p->dtype, OSP_DT_U8);
    assert_int_equal(p->mode, OSP_RESIZE_EXACT);
    assert_int_equal(p->out_w, 128);
    assert_int_equal(p->out_h, 128);
    assert_float_equal(p->scale, 1.f, 0);
    assert_float_equal(p->mean[1], 0.f, 0);
    assert_float_equal(p->std[1], 1.f, 0);
    assert_int_equal(osp_model_max_batch(m), 1);
    assert_false(osp_model_needs_softmax(m));
    assert_int_equal(osp_model_num_classes(m), 1001);
    osp_model_close(m);

    /* float NCHW 299x299 keeps torchvision's ratio for resize_short */
    m = osp_model_open(model_path(t, "inception.onnx"), NULL, NULL, &err);
    in = tensor(OSP_DT_F32, 4, (int64_t[]){-1, 3, 299, 299});
    out = tensor(OSP_DT_F32, 4, (int64_t[]){-1, 1000, 1, 1});
    assert_int_equal(osp_model_bind(m, &in, &out, &err), 0);
    assert_int_equal(osp_model_preprocess(m)->resize_short, 342);
    assert_int_equal(osp_model_num_classes(m), 1000);
    assert_true(osp_model_needs_softmax(m));
    osp_model_close(m);
}

static void test_bind_errors(void **state) {
    tmp_t *t = *state;
    osp_err_t err = {0};
    const char *cfg = put(t, "c.json", "{\"preprocess\": {\"width\": 224, "
                                       "\"dtype\": \"float32\"}, "
                                       "\"max_batch_size\": 8}");
    osp_model_t *m = osp_model_open(model_path(t, "m.onnx"), NULL, cfg, &err);
    assert_non_null(m);
    osp_tensor_t out = tensor(OSP_DT_F32, 2, (int64_t[]){-1, 10});
    /* config width 224 vs model 128 */
    osp_tensor_t in = tensor(OSP_DT_F32, 4, (int64_t[]){-1, 3, 128, 128});
    assert_int_equal(osp_model_bind(m, &in, &out, &err), OSP_EINVAL);
    assert_contains(err.msg, "preprocess.width is 224");
    assert_contains(err.msg, "128");
    /* a failed bind leaves the model untouched */
    assert_int_equal(osp_model_preprocess(m)->out_h, 224);
    /* config float32 vs model uint8 */
    in = tensor(OSP_DT_U8, 4, (int64_t[]){-1, 224, 224, 3});
    assert_int_equal(osp_model_bind(m, &in, &out, &err), OSP_EINVAL);
    assert_contains(err.msg, "preprocess.dtype");
    /* config batch 8 vs fixed batch 1 */
    in = tensor(OSP_DT_F32, 4, (int64_t[]){1, 3, 224, 224});
    assert_int_equal(osp_model_bind(m, &in, &out, &err), OSP_EINVAL);
    assert_contains(err.msg, "max_batch_size 8");
    /* not an image input */
    in = tensor(OSP_DT_F32, 3, (int64_t[]){-1, 3, 224});
    assert_int_equal(osp_model_bind(m, &in, &out, &err), OSP_EUNSUPPORTED);
    assert_contains(err.msg, "not an image batch");
    /* no 3-channel dimension */
    in = tensor(OSP_DT_F32, 4, (int64_t[]){-1, 1, 224, 224});
    assert_int_equal(osp_model_bind(m, &in, &out, &err), OSP_EUNSUPPORTED);
    assert_contains(err.msg, "preprocess.layout");
    /* unknown class count */
    in = tensor(OSP_DT_F32, 4, (int64_t[]){-1, 3, 224, 224});
    osp_tensor_t dyn = tensor(OSP_DT_F32, 2, (int64_t[]){-1, -1});
    assert_int_equal(osp_model_bind(m, &in, &dyn, &err), OSP_EUNSUPPORTED);
    assert_contains(err.msg, "number of classes");
    /* resize_short below the crop size */
    const char *c2 = put(t, "c2.json", "{\"preprocess\": {\"resize_short\": 100}}");
    osp_err_t e2 = open_fails(model_path(t, "m.onnx"), NULL, c2);
    assert_contains(e2.msg, "resize_short 100");
    assert_contains(e2.msg, "c2.json");
    const char *c3 = put(t, "c3.json", "{\"preprocess\": {\"resize_short\": 230}}");
    osp_model_t *m3 = osp_model_open(model_path(t, "m.onnx"), NULL, c3, &err);
    assert_non_null(m3);
    osp_tensor_t big = tensor(OSP_DT_F32, 4, (int64_t[]){-1, 3, 299, 299});
    assert_int_equal(osp_model_bind(m3, &big, &out, &err), OSP_EINVAL);
    assert_contains(err.msg, "resize_short 230");
    osp_model_close(m3);
    /* finally a good one */
    assert_int_equal(osp_model_bind(m, &in, &out, &err), 0);
    assert_int_equal(osp_model_max_batch(m), 8);
    osp_model_close(m);
}

int main(void) {
    const char *env = getenv("OSPREY_MODELS");
    g_models_env = env ? strdup(env) : NULL;
    unsetenv("OSPREY_MODELS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_implied_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serving_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_searched_labels, setup, teardown),
        cmocka_unit_test(test_shared_imagenet_labels),
        cmocka_unit_test_setup_teardown(test_bind_infers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_errors, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_models_env);
    return rc;
}
