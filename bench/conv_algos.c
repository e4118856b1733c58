/* conv_algos.c — times ResNet50's convolution shapes with the algorithms the
 * executor can choose from, side by side in one run:
 *   direct  oneDNN convolution, fp32, format_tag_any (oneDNN's own layouts)
 *   gemm    dnnl_sgemm on plain NCHW (1x1 stride-1 convs only: W·X per image)
 *   bf16    oneDNN convolution, bf16 src/weights/dst, format_tag_any
 *   int8    oneDNN convolution, u8 src, s8 weights, u8 dst, format_tag_any
 * each with a fused ReLU, and prints GFLOP/s per layer shape and the
 * whole-network sums. The sums are the oneDNN convolution-only ceiling of
 * ResNet50 on this machine ("ceiling" lines, in images/s): the 53 convs
 * alone, each in the layout oneDNN likes best, with no reorders, pooling,
 * residual adds or classifier. osprey's whole-model throughput is reported
 * against it (docs/performance.md).
 *
 * usage: conv_algos [--batch N] [--iters K] [--json]
 * (threads: set OMP_NUM_THREADS; oneDNN here uses OpenMP.) */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int ic, oc, k, s, p, ih, count; /* count = times it occurs in ResNet50 */
} shape_t;

/* torchvision ResNet50 (v1.5: stride on the 3x3), input 224. */
static const shape_t shapes[] = {
    {3, 64, 7, 2, 3, 224, 1},
    {64, 64, 1, 1, 0, 56, 1},    {64, 64, 3, 1, 1, 56, 3},
    {64, 256, 1, 1, 0, 56, 4},   {256, 64, 1, 1, 0, 56, 2},
    {256, 128, 1, 1, 0, 56, 1},  {128, 128, 3, 2, 1, 56, 1},
    {128, 512, 1, 1, 0, 28, 4},  {256, 512, 1, 2, 0, 56, 1},
    {512, 128, 1, 1, 0, 28, 3},  {128, 128, 3, 1, 1, 28, 3},
    {512, 256, 1, 1, 0, 28, 1},  {256, 256, 3, 2, 1, 28, 1},
    {256, 1024, 1, 1, 0, 14, 6}, {512, 1024, 1, 2, 0, 28, 1},
    {1024, 256, 1, 1, 0, 14, 5}, {256, 256, 3, 1, 1, 14, 5},
    {1024, 512, 1, 1, 0, 14, 1}, {512, 512, 3, 2, 1, 14, 1},
    {512, 2048, 1, 1, 0, 7, 3},  {1024, 2048, 1, 2, 0, 14, 1},
    {2048, 512, 1, 1, 0, 7, 2},  {512, 512, 3, 1, 1, 7, 2},
};

#define CHECK(x)                                                               \
    do {                                                                       \
        dnnl_status_t s_ = (x);                                                \
        if (s_ != dnnl_success) {                                              \
            fprintf(stderr, "%s:%d: %s failed (%d)\n", __FILE__, __LINE__,     \
                    #x, (int)s_);                                              \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static dnnl_engine_t eng;
static dnnl_stream_t strm;

static void *filled(size_t bytes) {
    float *p = malloc(bytes);
    for (size_t i = 0; i < bytes / sizeof(float); i++)
        p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
    return p;
}

/* Fastest time (s) of one conv execution via oneDNN (ReLU fused); dt is
 * the source's type (int8: u8 source, s8 weights, u8 destination). */
static double time_direct(const shape_t *s, int n, dnnl_data_type_t dt,
                          int iters, char *impl, size_t impl_len) {
    dnnl_data_type_t wdt = dt == dnnl_u8 ? dnnl_s8 : dt;
    int oh = (s->ih + 2 * s->p - s->k) / s->s + 1;
    dnnl_dims_t src = {n, s->ic, s->ih, s->ih}, wei = {s->oc, s->ic, s->k, s->k},
                dst = {n, s->oc, oh, oh}, strides = {s->s, s->s},
                pad = {s->p, s->p};
    dnnl_memory_desc_t smd, wmd, dmd;
    CHECK(dnnl_memory_desc_create_with_tag(&smd, 4, src, dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_create_with_tag(&wmd, 4, wei, wdt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_create_with_tag(&dmd, 4, dst, dt, dnnl_format_tag_any));
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_post_ops_create(&po));
    CHECK(dnnl_post_ops_append_eltwise(po, dnnl_eltwise_relu, 0.f, 0.f));
    CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_dims_t dil = {0, 0};
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_convolution_forward_primitive_desc_create(
        &pd, eng, dnnl_forward_inference, dnnl_convolution_direct, smd, wmd,
        NULL, dmd, strides, dil, pad, pad, attr));
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    dnnl_memory_desc_destroy(smd);
    dnnl_memory_desc_destroy(wmd);
    dnnl_memory_desc_destroy(dmd);
    const char *name = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    snprintf(impl, impl_len, "%s", name ? name : "?");
    dnnl_primitive_t prim;
    CHECK(dnnl_primitive_create(&prim, pd));
    const_dnnl_memory_desc_t q[3] = {
        dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0)};
    dnnl_memory_t m[3];
    void *bufs[3];
    for (int i = 0; i < 3; i++) {
        bufs[i] = filled(dnnl_memory_desc_get_size(q[i]) + 64);
        CHECK(dnnl_memory_create(&m[i], q[i], eng, bufs[i]));
    }
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, m[0]},
                               {DNNL_ARG_WEIGHTS, m[1]},
                               {DNNL_ARG_DST, m[2]}};
    double best = 1e30;
    for (int it = 0; it < iters + 2; it++) {
        double t0 = now_s();
        CHECK(dnnl_primitive_execute(prim, strm, 3, args));
        CHECK(dnnl_stream_wait(strm));
        double t = now_s() - t0;
        if (it >= 2 && t < best)
            best = t;
    }
    for (int i = 0; i < 3; i++) {
        dnnl_memory_destroy(m[i]);
        free(bufs[i]);
    }
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    return best;
}

/* 1x1 stride-1 conv as one sgemm per image: [oc x ic] · [ic x hw]. */
static double time_gemm(const shape_t *s, int n, int iters) {
    int hw = s->ih * s->ih;
    float *w = filled(sizeof(float) * (size_t)s->oc * s->ic);
    float *x = filled(sizeof(float) * (size_t)n * s->ic * hw);
    float *y = filled(sizeof(float) * (size_t)n * s->oc * hw);
    double best = 1e30;
    for (int it = 0; it < iters + 2; it++) {
        double t0 = now_s();
        for (int b = 0; b < n; b++)
            CHECK(dnnl_sgemm('N', 'N', s->oc, hw, s->ic, 1.f, w, s->ic,
                             x + (size_t)b * s->ic * hw, hw, 0.f,
                             y + (size_t)b * s->oc * hw, hw));
        double t = now_s() - t0;
        if (it >= 2 && t < best)
            best = t;
    }
    free(w);
    free(x);
    free(y);
    return best;
}

int main(int argc, char **argv) {
    int n = 8, iters = 5, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--batch"))
            n = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--iters"))
            iters = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: conv_algos [--batch N] [--iters K] [--json]\n");
            return 2;
        }
    }
    if (n < 1 || iters < 1) {
        fprintf(stderr, "conv_algos: --batch and --iters must be >= 1\n");
        return 2;
    }
    FILE *out = json ? stderr : stdout; /* the table; JSON goes to stdout */
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    fprintf(out, "%-22s %6s | %9s %9s %9s %9s | %s\n", "shape (ic>oc kKsS @H)",
            "count", "direct", "sgemm", "bf16", "int8",
            "GFLOP/s; direct / bf16 / int8 impl");
    double tot[4] = {0, 0, 0, 0}, flops_tot = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape_t *s = &shapes[i];
        int oh = (s->ih + 2 * s->p - s->k) / s->s + 1;
        double flops = 2.0 * n * s->oc * oh * oh * s->ic * s->k * s->k;
        char impl_f[64], impl_b[64], impl_q[64];
        double td = time_direct(s, n, dnnl_f32, iters, impl_f, sizeof impl_f);
        double tg = (s->k == 1 && s->s == 1) ? time_gemm(s, n, iters) : td;
        double tb = time_direct(s, n, dnnl_bf16, iters, impl_b, sizeof impl_b);
        double tq = time_direct(s, n, dnnl_u8, iters, impl_q, sizeof impl_q);
        char label[32];
        snprintf(label, sizeof label, "%d>%d k%ds%d @%d", s->ic, s->oc, s->k,
                 s->s, s->ih);
        fprintf(out, "%-22s %6d | %9.1f %9.1f %9.1f %9.1f | %s / %s / %s\n",
                label, s->count, flops / td * 1e-9, flops / tg * 1e-9,
                flops / tb * 1e-9, flops / tq * 1e-9, impl_f, impl_b, impl_q);
        tot[0] += td * s->count;
        tot[1] += (tg < td ? tg : td) * s->count;
        tot[2] += tb * s->count;
        tot[3] += tq * s->count;
        flops_tot += flops * s->count;
    }
    fprintf(out, "\nall 53 convs, batch %d: direct %.1f ms (%.0f GFLOP/s), best "
            "of direct/sgemm %.1f ms (%.0f GFLOP/s), bf16 %.1f ms (%.0f "
            "GFLOP/s), int8 %.1f ms (%.0f GFLOP/s)\n",
            n, tot[0] * 1e3, flops_tot / tot[0] * 1e-9, tot[1] * 1e3,
            flops_tot / tot[1] * 1e-9, tot[2] * 1e3, flops_tot / tot[2] * 1e-9,
            tot[3] * 1e3, flops_tot / tot[3] * 1e-9);
    const dnnl_version_t *v = dnnl_version();
    double ips[3] = {n / tot[0], n / tot[2], n / tot[3]};
    fprintf(out, "ceiling (convs only, img/s): fp32 %.1f  bf16 %.1f  int8 %.1f "
            "(oneDNN %d.%d.%d)\n", ips[0], ips[1], ips[2], v->major, v->minor,
            v->patch);
    if (json)
        printf("{\"probe\":\"resnet50-convs\",\"batch\":%d,\"onednn\":"
               "\"%d.%d.%d\",\"img_per_s\":{\"fp32\":%.2f,\"bf16\":%.2f,"
               "\"int8\":%.2f}}\n",
               n, v->major, v->minor, v->patch, ips[0], ips[1], ips[2]);
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    return 0;
}
