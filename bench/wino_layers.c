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
 * usage: bench_wino_layers [--batch N] [--threads T] [--runs K]
 *                          [--max-isa ISA] [--only I]
 * (--only runs the I-th shape alone, e.g. under perf.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv) {
    int batch = 8, threads = 1, runs = 5, only = -1;
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
        else if (!strcmp(argv[i], "--max-isa") && osp_isa_parse(argv[i + 1], &isa) == 0)
            ;
        else {
            fprintf(stderr, "usage: %s [--batch N] [--threads T] [--runs K] "
                            "[--max-isa ISA] [--only I]\n", argv[0]);
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
