/* test_affinity.c — binding a run's OpenMP team (src/engine/affinity.c):
 * a run that starts from idleness puts OpenMP thread i of the caller's team
 * on the i-th allowed CPU, back-to-back runs and teams that do not cover
 * the allowed CPUs exactly are left alone, and every thread's mask is put
 * back afterwards — also around a real osp_engine_run. The thread masks are
 * read from /proc/self/task/<tid>/status (Cpus_allowed_list). Needs two
 * CPUs (skipped otherwise) and an OpenMP build (skipped otherwise). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine_testutil.h"

#include <dirent.h>
#include <sched.h>
#include <unistd.h>

static int cpu_a = -1, cpu_b = -1;
static cpu_set_t two;

/* The Cpus_allowed_list of every thread of this process, as "a,b" style
 * text (Linux writes "3" for one CPU, "2-3" or "0,5" for two). */
static int thread_masks(char lists[][64], int cap) {
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < cap) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%.255s/status",
                 de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* the thread just ended */
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "Cpus_allowed_list:", 18)) {
                char *v = line + 18;
                while (*v == ' ' || *v == '\t')
                    v++;
                v[strcspn(v, "\n")] = 0;
                snprintf(lists[n++], 64, "%.63s", v);
            }
        fclose(f);
    }
    closedir(d);
    return n;
}

static int count_masks(const char *want) {
    char lists[64][64];
    int n = thread_masks(lists, 64), k = 0;
    for (int i = 0; i < n; i++)
        k += !strcmp(lists[i], want);
    return k;
}

static int threads_total(void) {
    char lists[64][64];
    return thread_masks(lists, 64);
}

static int setup(void **state) {
    (void)state;
    cpu_set_t all;
    if (sched_getaffinity(0, sizeof all, &all) != 0)
        return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) {
            if (cpu_a < 0)
                cpu_a = c;
            else if (cpu_b < 0)
                cpu_b = c;
        }
    if (cpu_b < 0) {
        printf("SKIP: test_affinity needs two CPUs\n");
        exit(77);
    }
    CPU_ZERO(&two);
    CPU_SET(cpu_a, &two);
    CPU_SET(cpu_b, &two);
    /* The process's threads (main and, later, the OpenMP worker created by
     * it) all start from exactly these two. */
    return sched_setaffinity(0, sizeof two, &two);
}

static void assert_caller_mask(const cpu_set_t *want) {
    cpu_set_t cur;
    assert_int_equal(sched_getaffinity(0, sizeof cur, &cur), 0);
    assert_true(CPU_EQUAL(&cur, want));
}

static void test_bind_and_restore(void **state) {
    (void)state;
    char both[64], a[16], b[16];
    if (cpu_b == cpu_a + 1)
        snprintf(both, sizeof both, "%d-%d", cpu_a, cpu_b);
    else
        snprintf(both, sizeof both, "%d,%d", cpu_a, cpu_b);
    snprintf(a, sizeof a, "%d", cpu_a);
    snprintf(b, sizeof b, "%d", cpu_b);

    osp__set_threads(2);
    osp_team_bind_t bind;
    /* After idleness: bound. */
    int rc = osp__team_bind_begin(2, 1000000000ull, OSP_TUNE_AUTO, &bind);
    if (rc == 0) {
        /* Only an OpenMP-less build gets here. */
        printf("SKIP: team binding unavailable (no OpenMP)\n");
        exit(77);
    }
    assert_int_equal(rc, 1);
    cpu_set_t only_a;
    CPU_ZERO(&only_a);
    CPU_SET(cpu_a, &only_a);
    assert_caller_mask(&only_a);
    /* The worker of this thread's team sits on the second CPU. */
    assert_int_equal(count_masks(b), 1);
    osp__team_bind_end(&bind);
    assert_caller_mask(&two);
    assert_int_equal(count_masks(both), threads_total());

    /* Back to back (the workers are still awake): nothing is bound. */
    assert_int_equal(osp__team_bind_begin(2, 100000ull, OSP_TUNE_AUTO, &bind), 0);
    assert_int_equal(count_masks(both), threads_total());
    osp__team_bind_end(&bind);

    /* The switch: off never binds, on binds back-to-back runs too. */
    assert_int_equal(osp__team_bind_begin(2, 1000000000ull, OSP_TUNE_OFF, &bind), 0);
    assert_int_equal(count_masks(both), threads_total());
    osp__team_bind_end(&bind);
    assert_int_equal(osp__team_bind_begin(2, 100000ull, OSP_TUNE_ON, &bind), 1);
    assert_caller_mask(&only_a);
    osp__team_bind_end(&bind);
    assert_caller_mask(&two);

    /* A team that does not cover the allowed CPUs exactly: left alone. */
    assert_int_equal(osp__team_bind_begin(3, 1000000000ull, OSP_TUNE_ON, &bind), 0);
    assert_int_equal(osp__team_bind_begin(1, 1000000000ull, OSP_TUNE_ON, &bind), 0);
    assert_int_equal(count_masks(both), threads_total());
}

/* Around a real run: idle engine, 2 threads, the caller's mask (and every
 * thread's) is the same after the run as before. */
static void test_engine_run_restores(void **state) {
    (void)state;
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 4, D(1, 16, 32, 32));
    int y = tu_conv(g, x, 16, 16, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 7,
                    NULL);
    tu_output(g, y);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 2;
    o.precision = OSP_PREC_FP32;
    osp_engine_t *e = tu_engine(g, &o);
    osp_err_t err = {0};
    osp_tensor_t in = *osp_engine_input(e, 0), out;
    float *data = calloc(16 * 32 * 32, sizeof(float));
    in.data = data;
    for (int i = 0; i < 3; i++) {
        usleep(30 * 1000); /* idle: this run binds */
        assert_int_equal(osp_engine_run(e, &in, 1, &out, 1, &err), 0);
        assert_caller_mask(&two);
        char lists[64][64];
        int n = thread_masks(lists, 64);
        for (int k = 0; k < n; k++)
            if (strchr(lists[k], '-') == NULL && strchr(lists[k], ',') == NULL)
                fail_msg("a thread is left on CPU %s after the run", lists[k]);
    }
    free(data);
    osp_engine_destroy(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_and_restore),
        cmocka_unit_test(test_engine_run_restores),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
