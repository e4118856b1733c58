/* test_tune.c — the engine's measured choices (src/engine/tune.c): the
 * first candidate within 3% of the fastest is kept, the decision is cached
 * per model and machine, the cache is read back, a corrupt cache is ignored and rewritten, and
 * options that fix a choice are obeyed without measuring. Which candidate
 * wins depends on the CPU; the tests assert the mechanism, not a winner. */
#include "engine_testutil.h"

#include <sys/stat.h>
#include <unistd.h>

#define HASH 0x0123456789abcdefull

/* x[N,16,12,12] -> 3x3 s1 conv (Winograd-eligible) -> relu-free 1x1 conv. */
static osp_graph_t *conv_graph(void) {
    osp_graph_t *g = osp_graph_create();
    assert_non_null(g);
    int x = tu_input(g, "x", 4, D(-1, 16, 40, 40));
    int a = tu_conv(g, x, 16, 32, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 7, NULL);
    int y = tu_conv(g, a, 32, 16, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true, 9, NULL);
    tu_output(g, y);
    return g;
}

static osp_engine_t *engine(osp_graph_t *g, osp_precision_t prec,
                            osp_conv_layout_t lay, const char *dir) {
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 1;
    o.precision = prec;
    o.tuning.conv_layout = lay;
    o.tuning.cache_dir = dir;
    osp_err_t err = {0};
    osp_engine_t *e = osp__engine_from_graph(g, &o, &err);
    assert_non_null(e);
    e->model_hash = HASH; /* as osp_engine_load would from the file bytes */
    assert_int_equal(osp_engine_prepare(e, 2, &err), 0);
    return e;
}

static char *slurp(const char *path) {
    uint8_t *buf = NULL;
    size_t len = 0;
    osp_err_t err = {0};
    if (osp_read_file(path, 1 << 20, &buf, &len, &err) < 0)
        return NULL;
    char *s = realloc(buf, len + 1);
    assert_non_null(s);
    s[len] = 0;
    return s;
}

static void spill(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

typedef struct fx_s {
    char dir[64], file[128];
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/osp-tune-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    /* a subdirectory: the engine creates missing directories */
    strcat(f->dir, "/cache");
    snprintf(f->file, sizeof f->file, "%s/engine-choices.tsv", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    unlink(f->file);
    rmdir(f->dir);
    *strrchr(f->dir, '/') = 0;
    rmdir(f->dir);
    free(f);
    return 0;
}

/* "name 12.3 ms" times in the note, in preference order: the chosen one
 * is the first within 3% of the least. */
static void assert_fastest_chosen(const char *note, const char *chosen) {
    const char *p = strchr(note, '(');
    assert_non_null(p);
    double best = 1e300, ms[8];
    char name[8][32];
    int n = 0, used = 0;
    p++;
    while (n < 8 && sscanf(p, " %31[a-z0-9+-] %lf ms%n", name[n], &ms[n], &used) == 2) {
        if (ms[n] < best)
            best = ms[n];
        n++;
        p += used;
        if (*p == ',')
            p++;
    }
    assert_true(n >= 2);
    int first = -1;
    for (int i = 0; i < n && first < 0; i++)
        if (ms[i] <= best * 1.03)
            first = i;
    assert_string_equal(name[first], chosen);
}

/* Below AVX-512 (no blocked layout, no Winograd: osprey's own needs
 * AVX-512, oneDNN 3 has none) the fp32 conv graph has one candidate:
 * nothing is measured and nothing cached. Checks that and destroys e when
 * so; the cache tests then have nothing to test. */
static bool only_candidate(osp_engine_t *e, const fx_t *f) {
    if (osp__cpu_caps()->avx512 || osp__f32_wino_ok())
        return false;
    assert_non_null(strstr(osp_engine_choices(e),
                           "conv layout any: the only candidate on this CPU"));
    osp_engine_destroy(e);
    assert_int_equal(access(f->file, F_OK), -1);
    return true;
}

/* fp32 with a 3x3 stride-1 conv: the candidates (layouts, and osprey's
 * Winograd on AVX-512) are timed, the first
 * within 3% of the fastest is kept and written to the cache; a second
 * engine reads it back. */
static void test_measure_then_cache(void **state) {
    fx_t *f = *state;
    osp_engine_t *e = engine(conv_graph(), OSP_PREC_FP32, OSP_CONV_LAYOUT_AUTO, f->dir);
    const char *note = osp_engine_choices(e);
    /* blocked is a candidate only with AVX-512 (its kernels need it) */
    bool avx512 = osp__cpu_caps()->avx512, has_wino = osp__f32_wino_ok();
#if defined(__x86_64__) && defined(__GNUC__)
    /* osprey's Winograd is there exactly where AVX-512 is */
    assert_int_equal(has_wino, avx512);
#endif
    if (only_candidate(e, f))
        return;
    assert_non_null(strstr(note, "measured at batch 2, 1 threads"));
    const char *cands = avx512 ? (has_wino ? "blocked+winograd\0blocked\0any+winograd\0any\0"
                                       : "blocked\0any\0")
                               : "any+winograd\0any\0";
    if (!avx512)
        assert_null(strstr(note, "blocked"));
    if (!has_wino)
        assert_null(strstr(note, "winograd"));
    for (const char *c = cands; *c; c += strlen(c) + 1) {
        char want[40];
        snprintf(want, sizeof want, "%s ", c);
        assert_non_null(strstr(note, want));
    }
    char chosen[32];
    assert_int_equal(sscanf(note, "conv layout %31[a-z+]:", chosen), 1);
    assert_fastest_chosen(note, chosen);
    assert_int_equal(e->conv_blocked, strncmp(chosen, "blocked", 7) == 0);
    assert_int_equal(e->conv_winograd, strstr(chosen, "winograd") != NULL);

    char *text = slurp(f->file);
    assert_non_null(text);
    assert_non_null(strstr(text, "model=0123456789abcdef batch=2 precision=fp32 threads=1 "));
    char tab[40];
    snprintf(tab, sizeof tab, "\t%s\t", chosen);
    assert_non_null(strstr(text, tab));
    free(text);
    bool blocked = e->conv_blocked, wino = e->conv_winograd;
    osp_engine_destroy(e);

    e = engine(conv_graph(), OSP_PREC_FP32, OSP_CONV_LAYOUT_AUTO, f->dir);
    assert_non_null(strstr(osp_engine_choices(e), "cached in"));
    assert_int_equal(e->conv_blocked, blocked);
    assert_int_equal(e->conv_winograd, wino);
    osp_engine_destroy(e);
}

/* The cache is what decides: an entry edited to another candidate is
 * followed without measuring. */
static void test_cache_is_followed(void **state) {
    fx_t *f = *state;
    osp_engine_t *e = engine(conv_graph(), OSP_PREC_FP32, OSP_CONV_LAYOUT_AUTO, f->dir);
    if (only_candidate(e, f))
        return;
    osp_engine_destroy(e);
    char *text = slurp(f->file);
    assert_non_null(text);
    /* the entry's line: key \t choice \t evidence */
    char *line = strstr(text, "model=");
    char *t1 = strchr(line, '\t'), *t2 = strchr(t1 + 1, '\t');
    *t1 = 0;
    char edited[2048];
    snprintf(edited, sizeof edited, "%s\tany\tedited by the test\n", line);
    spill(f->file, edited);
    (void)t2;
    free(text);

    e = engine(conv_graph(), OSP_PREC_FP32, OSP_CONV_LAYOUT_AUTO, f->dir);
    assert_non_null(strstr(osp_engine_choices(e), "conv layout any: cached"));
    assert_non_null(strstr(osp_engine_choices(e), "edited by the test"));
    assert_false(e->conv_blocked);
    assert_false(e->conv_winograd);
    osp_engine_destroy(e);

    /* another precision is another key: measured, and both lines kept */
    e = engine(conv_graph(), OSP_PREC_BF16, OSP_CONV_LAYOUT_AUTO, f->dir);
    /* no Winograd candidates outside fp32 */
    assert_null(strstr(osp_engine_choices(e), "winograd"));
    if (osp__cpu_caps()->avx512) {
        assert_non_null(strstr(osp_engine_choices(e), "measured at batch 2"));
        text = slurp(f->file);
        assert_non_null(strstr(text, "edited by the test"));
        assert_non_null(strstr(text, "precision=bf16"));
        free(text);
    } else { /* one layout left: nothing to measure or cache */
        assert_non_null(strstr(osp_engine_choices(e),
                               "conv layout any: the only candidate on this CPU"));
    }
    osp_engine_destroy(e);
}

/* A file that is not ours is ignored with a warning, then rewritten. */
static void test_corrupt_cache(void **state) {
    fx_t *f = *state;
    assert_int_equal(mkdir(f->dir, 0755), 0);
    spill(f->file, "model=0123456789abcdef batch=2\tsideways\n\x01garbage\n");
    osp_engine_t *e = engine(conv_graph(), OSP_PREC_FP32, OSP_CONV_LAYOUT_AUTO, f->dir);
    if (!osp__cpu_caps()->avx512 && !osp__f32_wino_ok()) {
        /* one candidate: the cache is not read, the bad file stays */
        assert_null(strstr(osp_engine_choices(e), "warning"));
        osp_engine_destroy(e);
        return;
    }
    const char *note = osp_engine_choices(e);
    assert_non_null(strstr(note, "warning: ignoring the choices cache"));
    assert_non_null(strstr(note, "line 1 "));
    assert_non_null(strstr(note, "measured at batch 2"));
    osp_engine_destroy(e);
    char *text = slurp(f->file);
    assert_null(strstr(text, "garbage"));
    assert_null(strstr(text, "sideways"));
    assert_non_null(strstr(text, "model=0123456789abcdef batch=2 precision=fp32"));
    free(text);
}

/* A layout fixed by the options is used as is, and nothing is cached;
 * Winograd is still measured (it is not fixed) in fp32 where the engine
 * has it (AVX-512), else the fixed layout is the only candidate. */
static void test_options_win(void **state) {
    fx_t *f = *state;
    osp_engine_t *e = engine(conv_graph(), OSP_PREC_BF16, OSP_CONV_LAYOUT_ANY, f->dir);
    assert_false(e->conv_blocked);
    assert_non_null(strstr(osp_engine_choices(e), "conv layout any: set by the options"));
    osp_engine_destroy(e);
    assert_int_equal(access(f->file, F_OK), -1);

    e = engine(conv_graph(), OSP_PREC_FP32, OSP_CONV_LAYOUT_BLOCKED, f->dir);
    assert_true(e->conv_blocked);
    const char *note = osp_engine_choices(e);
    if (osp__f32_wino_ok())
        assert_non_null(strstr(note, "blocked+winograd "));
    else
        assert_non_null(strstr(note, "conv layout blocked: set by the options"));
    assert_null(strstr(note, "any "));
    osp_engine_destroy(e);
}

/* No convolution: nothing to choose, nothing measured. */
static void test_no_conv(void **state) {
    fx_t *f = *state;
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 2, D(-1, 8));
    int y = tu_node(g, OSP_OP_RELU, I(x), 1, NULL);
    tu_output(g, y);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.tuning.cache_dir = f->dir;
    osp_err_t err = {0};
    osp_engine_t *e = osp__engine_from_graph(g, &o, &err);
    assert_non_null(e);
    e->model_hash = HASH;
    assert_int_equal(osp_engine_prepare(e, 2, &err), 0);
    assert_string_equal(osp_engine_choices(e), "");
    osp_engine_destroy(e);
    assert_int_equal(access(f->file, F_OK), -1);
}

/* A quantized model: the own int8 kernels are a candidate switch, and the
 * engine keeps the chosen one (q8 kernels off when oneDNN's won). Needs the
 * Coral TF2 MobileNetV2 ($OSPREY_MODELS or ../shared/models). */
static void test_int8_candidates(void **state) {
    (void)state;
    const char *env = getenv("OSPREY_MODELS"), *src = getenv("OSP_SOURCE_DIR");
    char path[2][1200];
    snprintf(path[0], sizeof path[0], "%.1000s/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite",
             env ? env : "");
    snprintf(path[1], sizeof path[1],
             "%.1000s/../shared/models/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite",
             src ? src : ".");
    const char *model = !access(path[0], R_OK) ? path[0]
                        : !access(path[1], R_OK) ? path[1] : NULL;
    if (!model) {
        print_message("skipping: tf2_mobilenet_v2_1.0_224_ptq.tflite not in "
                      "$OSPREY_MODELS/tflite or ../shared/models/tflite\n");
        skip();
    }
    const char *own_cand = osp__cpu_caps()->avx512 ? "blocked+own-int8 " : "any+own-int8 ";
    for (int fixed = 0; fixed < 2; fixed++) {
        osp_engine_opts_t o;
        osp_engine_opts_init(&o);
        o.threads = 1;
        if (fixed)
            o.tuning.q8_pw = OSP_TUNE_OFF;
        osp_err_t err = {0};
        osp_engine_t *e = osp_engine_load(model, &o, &err);
        assert_non_null(e);
        assert_int_equal(osp_engine_prepare(e, 1, &err), 0);
        const char *note = osp_engine_choices(e);
        char chosen[48];
        assert_int_equal(sscanf(note, "conv layout %47[a-z0-9+-]:", chosen), 1);
        if (fixed) {
            /* a switch the options set is not measured: one of the two */
            assert_null(strstr(note, "+onednn-int8"));
            if (osp__cpu_caps()->avx512)
                assert_non_null(strstr(note, own_cand));
            else /* nothing left to measure */
                assert_non_null(strstr(note, "conv layout any+own-int8: set by "
                                             "the options (blocked needs AVX-512)"));
        } else {
            assert_non_null(strstr(note, own_cand));
            assert_non_null(strstr(note, "any+onednn-int8 "));
            bool own = strstr(chosen, "+own-int8") != NULL;
            assert_int_equal(e->opts.tuning.q8_dw == OSP_TUNE_OFF, !own);
            assert_int_equal(e->opts.tuning.q8_pw == OSP_TUNE_OFF, !own);
        }
        osp_engine_destroy(e);
    }
}

int main(int argc, char **argv) {
    tu_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_measure_then_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_is_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_win, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_conv, setup, teardown),
        cmocka_unit_test(test_int8_candidates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
