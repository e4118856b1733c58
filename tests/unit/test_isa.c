/* test_isa.c — the ISA ceiling (tuning.max_isa, src/engine/cpu.c): names;
 * under a ceiling the capabilities, oneDNN's kernels and precision AUTO
 * follow it; the first engine of a process fixes it, a later conflicting
 * one is refused with a message, AUTO runs under what is in effect; a
 * ceiling after oneDNN was already used is refused; oneDNN's own
 * ONEDNN_MAX_CPU_ISA caps the capabilities too.
 *
 * The ceiling lasts a process's life, so every case runs in a child
 * process of its own, forked before this process touches oneDNN or OpenMP
 * (the parent only forks and waits). Children report with CHECK (exit 1)
 * or exit 77 when the CPU cannot show the case. */
#include <sys/wait.h>
#include <unistd.h>

#include "engine_testutil.h"

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #c);                                                       \
            _exit(1);                                                          \
        }                                                                      \
    } while (0)

static void in_child(void (*fn)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        fflush(NULL);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) {
        printf("  (skipped: this CPU cannot show the case)\n");
        return;
    }
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* An engine over a 3x3 conv with 16 channels (AVX-512 layouts apply). */
static osp_engine_t *engine(osp_isa_t ceiling, osp_err_t *err) {
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 4, D(-1, 16, 8, 8));
    int y = tu_conv(g, x, 16, 16, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 3,
                    NULL);
    tu_output(g, y);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 1;
    o.tuning.max_isa = ceiling;
    osp_engine_t *e = osp__engine_from_graph(g, &o, err);
    if (e)
        CHECK(osp_engine_prepare(e, 1, err) == 0);
    return e;
}

static bool cpu_has_avx2(void) {
    osp_isa_t c = osp_cpu_isa();
    return c != OSP_ISA_SSE41 && c != OSP_ISA_AUTO;
}

static void test_names(void **state) {
    (void)state;
    osp_isa_t isa;
    for (int i = 0; i < OSP_ISA_COUNT; i++) {
        assert_int_equal(osp_isa_parse(osp_isa_name((osp_isa_t)i), &isa), 0);
        assert_int_equal(isa, i);
    }
    assert_int_equal(osp_isa_parse("avx512_vnni", &isa), 0);
    assert_int_equal(isa, OSP_ISA_AVX512_VNNI);
    assert_int_equal(osp_isa_parse("AVX2", &isa), OSP_EINVAL);
    assert_int_equal(osp_isa_parse("avx10", &isa), OSP_EINVAL);
    assert_string_equal(osp_isa_name(OSP_ISA_COUNT), "?");
}

/* avx2 first: capabilities, oneDNN's kernels, AUTO precision all capped;
 * AUTO and avx2 again are fine, a higher ceiling is refused. */
static void avx2_first(void) {
    if (!cpu_has_avx2())
        _exit(77);
    osp_err_t err = {0};
    osp_engine_t *e = engine(OSP_ISA_AVX2, &err);
    if (!e)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(e);
    const osp__cpu_caps_t *k = osp__cpu_caps();
    CHECK(k->avx2 && !k->avx512 && !k->avx512_vnni && !k->bf16 && !k->amx);
    CHECK(k->isa == OSP_ISA_AVX2 && k->ceiling == OSP_ISA_AVX2);
    CHECK(osp_engine_isa(e) == OSP_ISA_AVX2);
    CHECK(osp_engine_precision(e) == OSP_PREC_FP32);
    const char *d = osp_engine_describe(e);
    CHECK(strstr(d, "ISA avx2 (ceiling avx2"));
    CHECK(!strstr(d, "avx512")); /* no oneDNN kernel above the ceiling */
    CHECK(!strstr(d, ": ref"));  /* and no reference kernel instead */
    osp_engine_destroy(e);
    e = engine(OSP_ISA_AUTO, &err);
    CHECK(e && osp_engine_isa(e) == OSP_ISA_AVX2);
    osp_engine_destroy(e);
    e = engine(OSP_ISA_AVX2, &err);
    CHECK(e);
    osp_engine_destroy(e);
    if (k->cpu != OSP_ISA_AVX2) {
        e = engine(OSP_ISA_AMX, &err);
        CHECK(!e && err.code == OSP_EINVAL);
        CHECK(strstr(err.msg, "already runs at avx2"));
    }
}

static void test_avx2_first(void **state) {
    (void)state;
    in_child(avx2_first);
}

/* no ceiling first: the CPU's own rung; a lower ceiling is refused then */
static void auto_first(void) {
    osp_err_t err = {0};
    osp_engine_t *e = engine(OSP_ISA_AUTO, &err);
    CHECK(e);
    CHECK(osp_engine_isa(e) == osp_cpu_isa());
    CHECK(osp_engine_precision(e) ==
          (osp__cpu_caps()->bf16 ? OSP_PREC_BF16 : OSP_PREC_FP32));
    osp_engine_destroy(e);
    if (osp_cpu_isa() == OSP_ISA_AVX2 || !cpu_has_avx2())
        _exit(77);
    e = engine(OSP_ISA_AVX2, &err);
    CHECK(!e && strstr(err.msg, "ceiling none"));
}

static void test_auto_first(void **state) {
    (void)state;
    in_child(auto_first);
}

/* oneDNN used before the first engine: its ceiling can no longer be set */
static void onednn_first(void) {
    if (!cpu_has_avx2() || osp_cpu_isa() == OSP_ISA_AVX2)
        _exit(77);
    (void)dnnl_get_effective_cpu_isa();
    osp_err_t err = {0};
    CHECK(!engine(OSP_ISA_AVX2, &err));
    CHECK(strstr(err.msg, "oneDNN was used in this process"));
}

static void test_onednn_first(void **state) {
    (void)state;
    in_child(onednn_first);
}

/* oneDNN capped by its own variable (which oneDNN reads, not osprey): the
 * capabilities follow, so AUTO is fp32 (it once chose bf16 from CPUID and
 * oneDNN ran reference kernels, 210 s for a classification). */
static void onednn_env(void) {
    if (!cpu_has_avx2())
        _exit(77);
    setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
    osp_err_t err = {0};
    osp_engine_t *e = engine(OSP_ISA_AUTO, &err);
    CHECK(e);
    CHECK(osp_engine_isa(e) == OSP_ISA_AVX2);
    CHECK(!osp__cpu_caps()->bf16 && !osp__cpu_caps()->avx512);
    CHECK(osp_engine_precision(e) == OSP_PREC_FP32);
    CHECK(!strstr(osp_engine_describe(e), ": ref"));
    osp_engine_destroy(e);
}

static void test_onednn_env(void **state) {
    (void)state;
    in_child(onednn_env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_avx2_first),
        cmocka_unit_test(test_auto_first),
        cmocka_unit_test(test_onednn_first),
        cmocka_unit_test(test_onednn_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
