/* wino_layers.c — times osprey's fp32 Winograd convolution (f32/f32_wino.c)
 * against oneDNN's direct convolution on the 3x3 stride-1 layer shapes of
 * ResNet50 and SqueezeNet 1.1, each as a one-conv graph (fused ReLU,
 * nChw16c activations) run through the engine, so that both sides are the
 * steps the planner would make. Per shape it prints the conv step's time
 * (the engine's per-step profile: thread CPU time with one thread, wall
 * time with more; the least of the runs) and the effective GFLOP/s of a
 * direct convolution's work, and the sums weighted by how often each shape
 * occurs in its model.
 *
 * With --matmul 1 it also times the design's alternative for the 36
 * products, one oneDNN matmul with a batch dimension of 36 over the
 * batch's tiles, products alone (docs/adr/0051-own-winograd.md).
 *
 * usage: bench_wino_layers [--batch N] [--threads T] [--runs K]
 *                          [--max-isa ISA] [--only I] [--matmul 1]
 * (--only runs the I-th shape alone, e.g. under perf.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/plan/plan_int.h"

typedef struct {
    const char *model;
    int c, k, hw, count; /* channels in/out, input size, occurrences */
} shape_t;

static const shape_t shapes[] = {
    {"resnet50", 64, 64, 56, 3},    {"resnet50", 128, 128, 28, 3},
    {"resnet50", 256, 256, 14, 5},  {"resnet50", 512, 512, 7, 2},
    {"squeezenet", 16, 64, 55, 2},  {"squeezenet", 32, 128, 27, 2},
    {"squeezenet", 48, 192, 13, 2}, {"squeezenet", 64, 256, 13, 2},
};

static float urand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 23) - 1.0f;
}

static float *randf(size_t n, uint32_t seed) {
    float *d = malloc(sizeof(float) * n);
    if (!d)
        exit(1);
    for (size_t i = 0; i < n; i++)
        d[i] = urand(&seed);
    return d;
}

/* x[-1, c, hw, hw] → conv 3x3 pad 1 + bias + ReLU. */
static osp_graph_t *graph(const shape_t *s) {
    osp_graph_t *g = osp_graph_create();
    int64_t xd[4] = {-1, s->c, s->hw, s->hw}, wd[4] = {s->k, s->c, 3, 3},
            bd[1] = {s->k};
    int x = osp_graph_add_value(g, "x", OSP_DT_F32, 4, xd);
    g->values[x].is_input = true;
    g->inputs = malloc(sizeof(int));
    g->inputs[g->n_inputs++] = x;
    int w = osp_graph_add_value(g, "w", OSP_DT_F32, 4, wd);
    size_t wn = (size_t)s->k * (size_t)s->c * 9;
    float *wdat = randf(wn, 7);
    for (size_t i = 0; i < wn; i++)
        wdat[i] *= 0.1f;
    osp_graph_set_const(g, w, wdat, sizeof(float) * wn);
    int b = osp_graph_add_value(g, "b", OSP_DT_F32, 1, bd);
    osp_graph_set_const(g, b, randf((size_t)s->k, 8), sizeof(float) * (size_t)s->k);
    int y = osp_graph_add_value(g, "y", OSP_DT_UNDEF, -1, NULL);
    int in[3] = {x, w, b};
    int ni = osp_graph_add_node(g, OSP_OP_CONV, "conv", in, 3, &y, 1);
    osp_node_t *n = &g->nodes[ni];
    memset(&n->p.conv, 0, sizeof n->p.conv);
    n->p.conv.win.n_spatial = 2;
    for (int i = 0; i < 2; i++) {
        n->p.conv.win.stride[i] = n->p.conv.win.dilation[i] = 1;
        n->p.conv.win.pad_begin[i] = n->p.conv.win.pad_end[i] = 1;
    }
    n->p.conv.group = 1;
    n->n_post = 1;
    n->post[0] = (osp_post_op_t){OSP_POST_ACT, OSP_ACT_RELU, 0.f, 0.f, 0};
    g->values[y].is_output = true;
    g->outputs = malloc(sizeof(int));
    g->outputs[g->n_outputs++] = y;
    return g;
}

static osp_engine_t *engine(const shape_t *s, bool wino, int threads) {
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = threads;
    o.precision = OSP_PREC_FP32;
    o.tuning.conv_layout = OSP_CONV_LAYOUT_BLOCKED;
    o.tuning.winograd = wino ? OSP_TUNE_ON : OSP_TUNE_OFF;
    o.tuning.batch_split = OSP_TUNE_OFF;
    o.tuning.profile = true;
    osp_err_t err = {0};
    osp_engine_t *e = osp__engine_from_graph(graph(s), &o, &err);
    if (!e) {
        fprintf(stderr, "engine: %s\n", err.msg);
        exit(1);
    }
    return e;
}

/* One run of e; the conv step's time in ms, its impl and note in impl. */
static double run_conv(osp_engine_t *e, const osp_tensor_t *x, char *impl,
                       size_t cap) {
    osp_tensor_t out;
    osp_err_t err = {0};
    if (osp_engine_run(e, x, 1, &out, 1, &err) < 0) {
        fprintf(stderr, "run: %s\n", err.msg);
        exit(1);
    }
    osp__plan_t *p = e->last;
    double ms = 0;
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].node >= 0) {
            ms = p->step_ms[i];
            p->step_ms[i] = 0;
            snprintf(impl, cap, "%s %s", p->steps[i].impl, p->steps[i].note);
        }
    return ms;
}

/* The least time of each side's conv step over `runs` alternating runs
 * (after one warm-up each), in ms: t[0] direct (skipped when !direct),
 * t[1] Winograd. */
static void time_conv(const shape_t *s, bool direct, int batch, int threads,
                      int runs, double t[2], char *impl, size_t cap) {
    osp_engine_t *e[2] = {direct ? engine(s, false, threads) : NULL,
                          engine(s, true, threads)};
    osp_tensor_t x = {.dtype = OSP_DT_F32, .rank = 4,
                      .dims = {batch, s->c, s->hw, s->hw}};
    x.data = randf((size_t)batch * (size_t)s->c * (size_t)(s->hw * s->hw), 9);
    char other[200];
    t[0] = t[1] = 1e300;
    for (int r = 0; r <= runs; r++)
        for (int i = 0; i < 2; i++) {
            if (!e[i])
                continue;
            double ms = run_conv(e[i], &x, i ? impl : other, i ? cap : sizeof other);
            if (r > 0 && ms < t[i]) /* run 0 warms up */
                t[i] = ms;
        }
    free(x.data);
    for (int i = 0; i < 2; i++)
        if (e[i]) {
            e[i]->profile = false; /* no plan dump at destroy */
            osp_engine_destroy(e[i]);
        }
}

/* The alternative to osprey's product kernel: the 36 products of the
 * whole batch as one oneDNN matmul with a batch dimension of 36 (V [36,
 * tiles, c] plain, U in oneDNN's weight layout, M [36, tiles, k] plain), as
 * the planner would create it once. Its least time over `runs` runs, in ms,
 * products only (the transforms would come on top); its impl in impl. */
static double time_matmul(const shape_t *s, int batch, int threads, int runs,
                          char *impl, size_t cap) {
    int64_t th = (s->hw + 3) / 4, tiles = (int64_t)batch * th * th;
    int64_t cp = (s->c + 15) / 16 * 16, kp = (s->k + 15) / 16 * 16;
    dnnl_dims_t vd = {36, tiles, cp}, ud = {36, cp, kp}, md = {36, tiles, kp};
    dnnl_memory_desc_t vmd = NULL, uany = NULL, uplain = NULL, mmd = NULL;
    dnnl_engine_t eng = NULL;
    dnnl_stream_t st = NULL;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t prim = NULL, reorder = NULL;
    osp__set_threads(threads);
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&st, eng, dnnl_stream_default_flags) != dnnl_success ||
        dnnl_memory_desc_create_with_tag(&vmd, 3, vd, dnnl_f32, dnnl_abc) != dnnl_success ||
        dnnl_memory_desc_create_with_tag(&uany, 3, ud, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_create_with_tag(&uplain, 3, ud, dnnl_f32, dnnl_abc) != dnnl_success ||
        dnnl_memory_desc_create_with_tag(&mmd, 3, md, dnnl_f32, dnnl_abc) != dnnl_success ||
        dnnl_matmul_primitive_desc_create(&pd, eng, vmd, uany, NULL, mmd, NULL) != dnnl_success ||
        dnnl_primitive_create(&prim, pd) != dnnl_success) {
        fprintf(stderr, "oneDNN matmul: not created\n");
        exit(1);
    }
    const char *name = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    snprintf(impl, cap, "%s", name ? name : "?");
    const_dnnl_memory_desc_t uwant = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    float *v = randf((size_t)(36 * tiles * cp), 1), *up = randf((size_t)(36 * cp * kp), 2);
    void *uw = malloc(dnnl_memory_desc_get_size(uwant));
    float *m = malloc(sizeof(float) * (size_t)(36 * tiles * kp));
    dnnl_memory_t vm, um, uwm, mm;
    dnnl_memory_create(&vm, vmd, eng, v);
    dnnl_memory_create(&um, uplain, eng, up);
    dnnl_memory_create(&uwm, uwant, eng, uw);
    dnnl_memory_create(&mm, mmd, eng, m);
    /* U into oneDNN's layout once, as the planner reorders weights */
    dnnl_reorder_primitive_desc_create(&rpd, uplain, eng, uwant, eng, NULL);
    dnnl_primitive_create(&reorder, rpd);
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, uwm}};
    dnnl_primitive_execute(reorder, st, 2, ra);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, vm}, {DNNL_ARG_WEIGHTS, uwm}, {DNNL_ARG_DST, mm}};
    double best = 1e300;
    for (int r = 0; r <= runs; r++) {
        struct timespec t0, t1;
        clockid_t clk = threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
        clock_gettime(clk, &t0);
        dnnl_primitive_execute(prim, st, 3, args);
        dnnl_stream_wait(st);
        clock_gettime(clk, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (r > 0 && ms < best)
            best = ms;
    }
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(vm);
    dnnl_memory_destroy(um);
    dnnl_memory_destroy(uwm);
    dnnl_memory_destroy(mm);
    dnnl_memory_desc_destroy(vmd);
    dnnl_memory_desc_destroy(uany);
    dnnl_memory_desc_destroy(uplain);
    dnnl_memory_desc_destroy(mmd);
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    free(v);
    free(up);
    free(uw);
    free(m);
    return best;
}

int main(int argc, char **argv) {
    int batch = 8, threads = 1, runs = 5, only = -1, matmul = 0;
    osp_isa_t isa = OSP_ISA_AUTO;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only"))
            only = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--matmul"))
            matmul = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-isa") && osp_isa_parse(argv[i + 1], &isa) == 0)
            ;
        else {
            fprintf(stderr, "usage: %s [--batch N] [--threads T] [--runs K] "
                            "[--max-isa ISA] [--only I] [--matmul 1]\n", argv[0]);
            return 2;
        }
    }
    osp_err_t err = {0};
    if (osp__cpu_isa_apply(isa, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("batch %d, threads %d, ISA %s; ms per conv step (least of %d alternating runs)\n",
           batch, threads, osp_isa_name(osp__cpu_caps()->isa), runs);
    printf("%-10s %5s %5s %4s %3s | %9s %7s | %9s %7s | %6s\n", "model", "c", "k",
           "hw", "n", "direct ms", "GFLOP/s", "wino ms", "GFLOP/s", "ratio");
    double sum_d[2] = {0, 0}, sum_w[2] = {0, 0};
    for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); i++) {
        if (only >= 0 && i != only)
            continue;
        const shape_t *s = &shapes[i];
        char iw[200];
        double gf = 2.0 * batch * s->hw * s->hw * (double)s->c * s->k * 9 / 1e9, t[2];
        time_conv(s, only < 0, batch, threads, runs, t, iw, sizeof iw);
        double d = only >= 0 ? 0 : t[0], w = t[1];
        printf("%-10s %5d %5d %4d %3d | %9.3f %7.1f | %9.3f %7.1f | %5.2fx  %s\n",
               s->model, s->c, s->k, s->hw, s->count, d, gf / d * 1e3, w,
               gf / w * 1e3, d / w, strstr(iw, "wino") ? strchr(iw, ' ') + 1 : "(no winograd)");
        if (matmul) {
            char im[96];
            double mm = time_matmul(s, batch, threads, runs, im, sizeof im);
            printf("%-10s %28s   oneDNN matmul, the 36 products alone: %.3f ms (%s)\n",
                   "", "", mm, im);
        }
        int m = strcmp(s->model, "resnet50") != 0;
        sum_d[m] += d * s->count;
        sum_w[m] += w * s->count;
    }
    if (only < 0)
        for (int m = 0; m < 2; m++)
            printf("%s 3x3 s1 total: direct %.2f ms, winograd %.2f ms (%.2fx)\n",
                   m ? "squeezenet" : "resnet50", sum_d[m], sum_w[m],
                   sum_d[m] / sum_w[m]);
    return 0;
}
