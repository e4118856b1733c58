/* test_tune.c — the engine's measured choices (src/engine/tune.c): the
 * first candidate within 3% of the fastest is kept, the decision is cached
 * per model and machine, the cache is read back, a corrupt cache is ignored and rewritten, and
 * options that fix a choice are obeyed without measuring. The batch split
 * (lanes against the whole batch) is timed exactly where lanes.c allows
 * lanes but for heavy steps, with batch_split auto; its decision is cached
 * and followed, and a line of the cache written before it is not misread.
 * Which candidate wins depends on the CPU; the tests assert the mechanism,
 * not a winner. */
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

/* x[N,64,24,24] -> 3x3 conv to `o` channels (o = 64: 42 MFLOP per image,
 * above lanes.c's 30 per node: heavy steps, each image on its own). mixing:
 * the conv's output reshaped to one row of N*o*24*24, which mixes images
 * (o = 128 keeps the two nodes' average heavy). */
static osp_graph_t *heavy_graph(int64_t o, bool mixing) {
    osp_graph_t *g = osp_graph_create();
    assert_non_null(g);
    int x = tu_input(g, "x", 4, D(-1, 64, 24, 24));
    int y = tu_conv(g, x, 64, o, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 5, NULL);
    if (mixing) {
        int shape = tu_const_i64(g, 1, D(2), D(1, -1));
        y = tu_node(g, OSP_OP_RESHAPE, I(y, shape), 2, NULL);
    }
    tu_output(g, y);
    return g;
}

/* An engine on 2 threads with batch_split `split`, prepared for `batch`;
 * plain: layout any without Winograd, nothing else measured. */
static osp_engine_t *engine2(osp_graph_t *g, osp_tune_t split, int batch,
                             const char *dir, bool plain) {
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 2;
    o.precision = OSP_PREC_FP32; /* auto may be bf16: the same everywhere */
    o.tuning.batch_split = split;
    if (plain) {
        o.tuning.conv_layout = OSP_CONV_LAYOUT_ANY;
        o.tuning.winograd = OSP_TUNE_OFF;
    }
    o.tuning.cache_dir = dir;
    osp_err_t err = {0};
    osp_engine_t *e = osp__engine_from_graph(g, &o, &err);
    assert_non_null(e);
    e->model_hash = HASH;
    assert_int_equal(osp_engine_prepare(e, batch, &err), 0);
    return e;
}

/* The time after the candidate whose name ends in `suffix` ("+lanes ")
 * in the note, or -1 when there is none. */
static double ms_of(const char *note, const char *suffix) {
    const char *p = strstr(note, suffix);
    double ms = -1;
    if (p && sscanf(p + strlen(suffix), "%lf ms", &ms) != 1)
        ms = -1;
    return ms;
}

static bool has_split_candidates(const char *note) {
    return strstr(note, "+lanes") || strstr(note, "+whole");
}

/* Runs a random batch of 2 through e; returns whether it split. The
 * first output goes to y (n floats) when y is not NULL. */
static bool run2(osp_engine_t *e, float *y, size_t n) {
    osp_tensor_t x = tu_tensor(4, D(2, 64, 24, 24), 77), out;
    osp_err_t err = {0};
    if (osp_engine_run(e, &x, 1, &out, 1, &err) < 0)
        fail_msg("run: %s", err.msg);
    if (y) {
        assert_int_equal(osp_tensor_numel(&out), n);
        memcpy(y, out.data, n * sizeof *y);
    }
    free(x.data);
    return strstr(osp_engine_describe(e), "split into") != NULL;
}

/* The entry of the line for batch `batch` in the cache text, its choice
 * replaced by `choice` (key<TAB>choice<TAB>note); the key is edited too
 * when `kernels` is not NULL ("kernels=2"). Returns the new file text. */
static char *edit_line(const char *text, int batch, const char *choice,
                       const char *kernels) {
    char want[32];
    snprintf(want, sizeof want, " batch=%d ", batch);
    const char *p = strstr(text, want);
    assert_non_null(p);
    while (p > text && p[-1] != '\n')
        p--;
    const char *t1 = strchr(p, '\t');
    assert_non_null(t1);
    char key[512];
    snprintf(key, sizeof key, "%.*s", (int)(t1 - p), p);
    if (kernels) {
        char *k = strstr(key, "kernels=3");
        assert_non_null(k);
        memcpy(k, kernels, strlen("kernels=3"));
    }
    char *out = malloc(1024);
    assert_non_null(out);
    snprintf(out, 1024, "%s\t%s\tedited by the test\n", key, choice);
    return out;
}

/* Heavy steps, each image on its own, batch_split auto: the conv choice,
 * then the whole batch against lanes with it; the whole batch is kept
 * unless lanes are more than 3% faster, the engine follows the choice
 * and the cache holds it with both times. An uneven batch (3 on 2
 * threads) is not timed: the imbalance rule stays. */
static void test_split_measured(void **state) {
    fx_t *f = *state;
    osp_engine_t *e = engine2(heavy_graph(64, false), OSP_TUNE_AUTO, 2, f->dir, false);
    const char *note = osp_engine_choices(e);
    print_message("%s\n", note);
    double whole = ms_of(note, "+whole "), lanes = ms_of(note, "+lanes ");
    assert_true(whole > 0 && lanes > 0);
    assert_non_null(strstr(note, "measured at batch 2, 2 threads"));
    bool want_lanes = whole > lanes * 1.03;
    char chosen[48];
    assert_int_equal(sscanf(note, "conv layout %47[a-z0-9+-]:", chosen), 1);
    const char *suffix = strrchr(chosen, '+');
    assert_string_equal(suffix, want_lanes ? "+lanes" : "+whole");
    assert_int_equal(e->lanes_measured, want_lanes);
    assert_int_equal(run2(e, NULL, 0), want_lanes);
    if (want_lanes)
        assert_non_null(strstr(osp_engine_describe(e), "measured faster"));
    char *text = slurp(f->file);
    assert_non_null(text);
    assert_non_null(strstr(text, " kernels=3 "));
    char tab[64];
    snprintf(tab, sizeof tab, "\t%s\t", chosen);
    assert_non_null(strstr(text, tab));
    assert_non_null(strstr(text, "+whole "));
    assert_non_null(strstr(text, "+lanes "));
    free(text);
    osp_engine_destroy(e);

    e = engine2(heavy_graph(64, false), OSP_TUNE_AUTO, 2, f->dir, false);
    assert_non_null(strstr(osp_engine_choices(e), "cached in"));
    assert_int_equal(e->lanes_measured, want_lanes);
    osp_engine_destroy(e);

    e = engine2(heavy_graph(64, false), OSP_TUNE_AUTO, 3, f->dir, false);
    assert_false(has_split_candidates(osp_engine_choices(e)));
    osp_engine_destroy(e);
}

/* The cached split decision is what decides, and a lanes run gives the
 * whole batch's results; a line without a split decision (written before
 * the split was a choice, kernels=2, or edited) is not taken for one: the
 * engine measures again and keeps the other lines. */
static void test_split_cache(void **state) {
    fx_t *f = *state;
    osp_engine_destroy(engine2(heavy_graph(64, false), OSP_TUNE_AUTO, 2, f->dir, false));
    char *text = slurp(f->file);
    assert_non_null(text);
    size_t n = 2 * 64 * 24 * 24;
    float *whole = malloc(n * sizeof *whole), *split = malloc(n * sizeof *split);
    assert_true(whole && split);
    osp_engine_t *e = engine2(heavy_graph(64, false), OSP_TUNE_OFF, 2, NULL, true);
    assert_false(run2(e, whole, n));
    osp_engine_destroy(e);

    for (int lanes = 1; lanes >= 0; lanes--) {
        char *line = edit_line(text, 2, lanes ? "any+lanes" : "any+whole", NULL);
        spill(f->file, line);
        free(line);
        e = engine2(heavy_graph(64, false), OSP_TUNE_AUTO, 2, f->dir, false);
        const char *note = osp_engine_choices(e);
        assert_non_null(strstr(note, lanes ? "conv layout any+lanes: cached"
                                           : "conv layout any+whole: cached"));
        assert_non_null(strstr(note, "edited by the test"));
        assert_false(e->conv_blocked);
        assert_int_equal(e->lanes_measured, lanes);
        assert_int_equal(run2(e, split, n), lanes);
        assert_true(tu_rel_diff(split, whole, n) <= 1e-5);
        osp_engine_destroy(e);
    }

    for (int old = 1; old >= 0; old--) {
        char *line = edit_line(text, 2, "any", old ? "kernels=2" : NULL);
        spill(f->file, line);
        e = engine2(heavy_graph(64, false), OSP_TUNE_AUTO, 2, f->dir, false);
        char *note = strdup(osp_engine_choices(e));
        assert_null(strstr(note, "cached in"));
        assert_non_null(strstr(note, "measured at batch 2"));
        assert_true(ms_of(note, "+whole ") > 0 && ms_of(note, "+lanes ") > 0);
        osp_engine_destroy(e);
        char *now = slurp(f->file);
        /* the old generation's line stays; a same-key line is replaced */
        if (old)
            assert_non_null(strstr(now, line));
        else
            if (strstr(now, "edited by the test"))
                fail_msg("kept:\n%s\nnote: %s", now, note);
        assert_non_null(strstr(now, " kernels=3 "));
        free(now);
        free(note);
        free(line);
    }
    free(text);
    free(whole);
    free(split);
}

/* batch_split on and off are the options' choice: nothing timed. */
static void test_split_fixed(void **state) {
    fx_t *f = *state;
    for (int on = 0; on < 2; on++) {
        osp_engine_t *e = engine2(heavy_graph(64, false),
                                  on ? OSP_TUNE_ON : OSP_TUNE_OFF, 2, f->dir, false);
        assert_false(has_split_candidates(osp_engine_choices(e)));
        assert_false(e->lanes_measured);
        assert_int_equal(run2(e, NULL, 0), on);
        if (on)
            assert_non_null(strstr(osp_engine_describe(e), "tuning batch_split on"));
        osp_engine_destroy(e);
    }
}

/* Not timed where the correctness rules refuse lanes (a Reshape that mixes
 * the images) or the cheap rule already splits (light steps). */
static void test_split_not_offered(void **state) {
    fx_t *f = *state;
    osp_engine_t *e = engine2(heavy_graph(128, true), OSP_TUNE_AUTO, 2, f->dir, false);
    assert_false(has_split_candidates(osp_engine_choices(e)));
    assert_false(e->lanes_measured);
    osp_engine_destroy(e);

    e = engine2(conv_graph(), OSP_TUNE_AUTO, 2, f->dir, false);
    assert_false(has_split_candidates(osp_engine_choices(e)));
    assert_false(e->lanes_measured);
    osp_tensor_t x = tu_tensor(4, D(2, 16, 40, 40), 3), out;
    osp_err_t err = {0};
    assert_int_equal(osp_engine_run(e, &x, 1, &out, 1, &err), 0);
    assert_non_null(strstr(osp_engine_describe(e), "split into 2 lanes"));
    assert_non_null(strstr(osp_engine_describe(e), "light steps"));
    free(x.data);
    osp_engine_destroy(e);
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
        cmocka_unit_test_setup_teardown(test_split_measured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_not_offered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
