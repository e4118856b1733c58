/* test_quantize.c — post-training int8 quantization of float graphs
 * (calibrate.c, pass_quantize.c) — what `--precision int8` does to ONNX
 * models.
 *
 * A small residual CNN (conv 3x3 + relu, conv 1x1, add, relu, max pool,
 * global average pool, flatten, gemm, softmax) with random weights is
 * calibrated on random inputs, quantized and run in int8; the result must
 * stay close to the same graph in fp32 on inputs it was not calibrated on
 * (int8 rounding: cosine ≥ 0.99, max error ≤ 8% of the largest logit),
 * its structure must be the expected one (int8 weights per channel, a
 * QUANTIZE at the input, the ADD's RELU fused into it, SOFTMAX left in
 * float behind a DEQUANTIZE), and the plan must run the convolutions and
 * the gemm on oneDNN int8, the residual ADD as the 1x1 conv's sum post-op
 * and the max pooling on oneDNN. Lanes on the quantized graph give the
 * whole batch's bytes. Also: no calibration inputs → a clear error; a
 * graph with nothing quantizable → OSP_EUNSUPPORTED. */
#include <math.h>
#include <stdlib.h>

#include "engine_testutil.h"
#include "engine/engine_int.h"
#include "engine/passes/passes.h"

/* x [N,8,12,12] → conv3x3+relu (16) → conv1x1 (16) → add(first conv) →
 * relu → maxpool 2x2 → global avgpool → flatten → gemm (10) → softmax */
static osp_graph_t *build(int *logits_out) {
    osp_graph_t *g = osp_graph_create();
    assert_non_null(g);
    int x = tu_input(g, "x", 4, D(-1, 8, 12, 12));
    int c1n;
    int c1 = tu_conv(g, x, 8, 16, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 11,
                     &c1n);
    int r1 = tu_node(g, OSP_OP_RELU, I(c1), 1, NULL);
    int c2 = tu_conv(g, r1, 16, 16, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true,
                     23, NULL);
    int a = tu_node(g, OSP_OP_ADD, I(c2, r1), 2, NULL);
    int r2 = tu_node(g, OSP_OP_RELU, I(a), 1, NULL);
    int mpn;
    int mp = tu_node(g, OSP_OP_MAXPOOL, I(r2), 1, &mpn);
    g->nodes[mpn].p.pool.win = tu_win2(2, 2, 1, 0, 0, 0, 0);
    int gap = tu_node(g, OSP_OP_GLOBAL_AVGPOOL, I(mp), 1, NULL);
    int fln;
    int fl = tu_node(g, OSP_OP_FLATTEN, I(gap), 1, &fln);
    g->nodes[fln].p.axis.axis = 1;
    int w = tu_const(g, "fc.w", 2, D(10, 16), 0.5f, 37);
    int b = tu_const(g, "fc.b", 1, D(10), 0.1f, 41);
    int gn;
    int logits = tu_node(g, OSP_OP_GEMM, I(fl, w, b), 3, &gn);
    g->nodes[gn].p.gemm = (osp_gemm_params_t){1.f, 1.f, false, true};
    int smn;
    int sm = tu_node(g, OSP_OP_SOFTMAX, I(logits), 1, &smn);
    g->nodes[smn].p.axis.axis = -1;
    tu_output(g, logits);
    tu_output(g, sm);
    *logits_out = logits;
    osp_err_t err = {0};
    assert_int_equal(osp__passes_load(g, &err), 0); /* fuses conv1's relu */
    return g;
}

static void run(osp_engine_t *e, const osp_tensor_t *x, float *logits,
                size_t *n) {
    osp_tensor_t out[2];
    osp_err_t err = {0};
    int rc = osp_engine_run(e, x, 1, out, 2, &err);
    if (rc)
        fail_msg("run: %s", err.msg);
    *n = osp_tensor_numel(&out[0]);
    memcpy(logits, out[0].data, sizeof(float) * *n);
}

/* The describe line of the step(s) of node `name` ("CONV CONV_2:"), or
 * NULL: copied into buf. */
static const char *step_line(const char *d, const char *name, char *buf,
                             size_t cap) {
    const char *p = strstr(d, name);
    if (!p)
        return NULL;
    size_t n = strcspn(p, "\n");
    snprintf(buf, cap, "%.*s", (int)n, p);
    return buf;
}

/* The fixture of the int8-vs-fp32 tests: 6 calibration inputs. */
enum { N_CALIB = 6 };

static int setup_calib(void **state) {
    osp_tensor_t *cal = calloc(N_CALIB, sizeof *cal);
    if (!cal)
        return -1;
    for (int i = 0; i < N_CALIB; i++)
        cal[i] = tu_tensor(4, D(2, 8, 12, 12), 100u + (uint32_t)i);
    *state = cal;
    return 0;
}

static int teardown_calib(void **state) {
    osp_tensor_t *cal = *state;
    for (int i = 0; i < N_CALIB; i++)
        free(cal[i].data);
    free(cal);
    return 0;
}

/* Calibrates g with o's inputs and quantizes it in place. */
static void calibrate_and_quantize(osp_graph_t *g, int logits,
                                   const osp_engine_opts_t *o) {
    osp_err_t err = {0};
    osp__pass_qrange_t *r = calloc((size_t)g->n_values, sizeof *r);
    assert_int_equal(osp__calibrate(g, o, r, &err), 0);
    assert_true(r[g->inputs[0]].seen);
    assert_true(r[logits].seen && r[logits].lo < r[logits].hi);
    assert_int_equal(osp__pass_quantize(g, r, g->n_values, &err), 0);
    free(r);
    assert_true(g->quantized && g->ptq);
}

/* The test graph, calibrated on cal and quantized; *o: its options (2
 * threads, cal) for engines to add a precision to. */
static osp_graph_t *quantized(const osp_tensor_t *cal, osp_engine_opts_t *o) {
    int logits;
    osp_graph_t *g = build(&logits);
    osp_engine_opts_init(o);
    o->threads = 2;
    o->calib = cal;
    o->n_calib = N_CALIB;
    calibrate_and_quantize(g, logits, o);
    return g;
}

/* Whether value v is 8-bit of type dt, per tensor, and (u8) zero point
 * 0: a ReLU output quantized without a zero point. */
static void check_act(const osp_graph_t *g, int v, osp_dtype_t dt) {
    const osp_value_t *V = &g->values[v];
    assert_int_equal(V->dtype, dt);
    assert_non_null(V->quant);
    assert_int_equal(V->quant->count, 1);
    if (dt == OSP_DT_U8)
        assert_int_equal(V->quant->zero_point[0], 0);
}

/* The quantized graph's structure: int8 weights per channel, a QUANTIZE
 * at the input, the ADD's RELU fused into it, SOFTMAX in float behind a
 * DEQUANTIZE; what a ReLU bounds below by 0 u8 with zero point 0 (the
 * first conv, the ADD, the pools), the rest s8. */
static void check_structure(const osp_graph_t *g) {
    assert_int_equal(tu_count_op(g, OSP_OP_QUANTIZE), 1);   /* the input */
    /* one DEQUANTIZE: its float logits are both an output and the
     * softmax input */
    assert_int_equal(tu_count_op(g, OSP_OP_DEQUANTIZE), 1);
    assert_int_equal(tu_count_op(g, OSP_OP_RELU), 0);       /* into ADD */
    assert_int_equal(tu_count_op(g, OSP_OP_GLOBAL_AVGPOOL), 0);
    assert_int_equal(tu_count_op(g, OSP_OP_REDUCE_MEAN), 1);
    assert_int_equal(tu_count_op(g, OSP_OP_SOFTMAX), 1);
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_ADD) {
            assert_int_equal(n->n_post, 1);
            check_act(g, n->out[0], OSP_DT_U8);
        }
        if (n->op == OSP_OP_MAXPOOL || n->op == OSP_OP_REDUCE_MEAN)
            check_act(g, n->out[0], OSP_DT_U8);
        if (n->op == OSP_OP_CONV || n->op == OSP_OP_GEMM) {
            const osp_value_t *W = &g->values[n->in[1]];
            assert_int_equal(W->dtype, OSP_DT_S8);
            assert_non_null(W->quant);
            assert_int_equal(W->quant->count, (int)W->dims[0]);
            assert_int_equal(g->values[n->in[2]].dtype, OSP_DT_S32);
            /* the 3x3 conv's fused RELU: u8; the 1x1 conv and the gemm
             * (logits) are signed */
            check_act(g, n->out[0], n->n_post ? OSP_DT_U8 : OSP_DT_S8);
        }
        if (n->op == OSP_OP_SOFTMAX) /* float island */
            assert_int_equal(g->nodes[g->values[n->in[0]].producer].op,
                             OSP_OP_DEQUANTIZE);
    }
}

/* The int8 engine's logits against the fp32 engine's on inputs the
 * calibration did not see. */
static void compare_with_fp32(osp_engine_t *e8, osp_engine_t *ef) {
    float a[64], b[64];
    size_t na = 0, nb = 0;
    for (int t = 0; t < 3; t++) {
        osp_tensor_t x = tu_tensor(4, D(2, 8, 12, 12), 900u + (uint32_t)t);
        run(e8, &x, a, &na);
        run(ef, &x, b, &nb);
        assert_int_equal(na, nb);
        assert_int_equal(na, 20);
        double cs = tu_cosine(a, b, na), rd = tu_rel_diff(a, b, na);
        printf("int8 vs fp32, unseen input %d: cosine %.5f, max error %.2f%% "
               "of max |logit|\n", t, cs, 100 * rd);
        assert_true(cs >= 0.99);
        assert_true(rd <= 0.08);
        free(x.data);
    }
}

/* The int8 plan: max pooling on oneDNN; with oneDNN int8 (on_dnnl, VNNI)
 * the convolutions and the gemm there and the residual ADD as the 1x1
 * conv's sum post-op, else a step of its own. */
static void check_int8_plan(const char *d, bool on_dnnl) {
    /* the 8-bit max pooling on oneDNN, not the reference kernel */
    const char *mp = strstr(d, "MAXPOOL MAXPOOL_");
    assert_non_null(mp);
    assert_true(strncmp(strchr(mp, ':'), ": ref", 5) != 0);
    if (on_dnnl && tu_vnni()) {
        assert_non_null(strstr(d, "int8 path: oneDNN int8 3 ops (2 conv, 1 gemm"));
        /* the ADD (with its RELU) rides on the 1x1 conv as oneDNN's int8
         * sum post-op, in place: no separate step. Which oneDNN kernel
         * runs it depends on the CPU (brgconv_1x1 with VNNI, an AMX
         * kernel on AMX): not asserted. Its output, after the RELU, is
         * u8; the summand (the first conv's output) u8 too. */
        char line[256];
        assert_non_null(step_line(d, "CONV CONV_2:", line, sizeof line));
        if (!strstr(line, "-> u8:acdb fused +sum"))
            fail_msg("the residual 1x1 conv: %s", line);
        assert_null(strstr(d, " ADD "));
    } else {
        assert_non_null(strstr(d, "int8 path: oneDNN int8 0 ops"));
        assert_null(strstr(d, "+sum"));
        assert_non_null(strstr(d, " ADD "));
    }
}

/* on_dnnl false: tuning int8_dnnl off, the exact fp32-carrier and
 * reference kernels, which have no SUM post-op: the residual ADD must stay
 * a step of its own. cal: the fixture's calibration inputs. */
static void check_close_to_fp32(const osp_tensor_t *cal, bool on_dnnl) {
    osp_engine_opts_t o;
    osp_graph_t *g = quantized(cal, &o);
    /* the fp32 twin: built again (a clone would borrow the float weights
     * the pass replaces and frees) */
    int logits_f;
    osp_graph_t *gf = build(&logits_f);
    osp_engine_opts_t fo = o;
    fo.precision = OSP_PREC_FP32;
    check_structure(g);
    o.precision = OSP_PREC_INT8;
    if (!on_dnnl)
        o.tuning.int8_dnnl = OSP_TUNE_OFF;
    osp_engine_t *e8 = tu_engine(g, &o);
    osp_engine_t *ef = tu_engine(gf, &fo);
    compare_with_fp32(e8, ef);
    check_int8_plan(osp_engine_describe(e8), on_dnnl);
    osp_engine_destroy(e8);
    osp_engine_destroy(ef);
}

static void test_int8_close_to_fp32(void **state) {
    check_close_to_fp32(*state, true);
}

static void test_int8_without_onednn(void **state) {
    check_close_to_fp32(*state, false);
}

/* Lanes (lanes.c) on a quantized graph: batch 9 split over 2 lanes (pairs
 * and a last single image, both lane plan kinds) gives exactly the bytes
 * of the whole batch, with osprey's own int8 kernels off and on. The
 * layout is fixed so that both engines build the same kernels. */
static void test_int8_lanes_bitwise(void **state) {
    const osp_tensor_t *cal = *state;
    osp_tensor_t x = tu_tensor(4, D(9, 8, 12, 12), 4242);
    for (int own = 0; own < 2; own++) {
        float out[2][2][9 * 10];
        for (int split = 0; split < 2; split++) {
            osp_engine_opts_t o;
            osp_graph_t *g = quantized(cal, &o);
            o.precision = OSP_PREC_INT8;
            o.tuning.conv_layout = OSP_CONV_LAYOUT_ANY;
            o.tuning.q8_dw = o.tuning.q8_pw = own ? OSP_TUNE_ON : OSP_TUNE_OFF;
            o.tuning.batch_split = split ? OSP_TUNE_ON : OSP_TUNE_OFF;
            osp_engine_t *e = tu_engine(g, &o);
            osp_tensor_t y[2];
            osp_err_t err = {0};
            if (osp_engine_run(e, &x, 1, y, 2, &err) < 0)
                fail_msg("run: %s", err.msg);
            for (int i = 0; i < 2; i++) {
                assert_int_equal(y[i].dtype, OSP_DT_F32);
                assert_int_equal(osp_tensor_numel(&y[i]), 9 * 10);
                memcpy(out[split][i], y[i].data, sizeof out[split][i]);
            }
            const char *d = osp_engine_describe(e);
            if (split)
                assert_non_null(strstr(d, "batch 9 split into 2 lanes (2 images"));
            else
                assert_null(strstr(d, "split into"));
            osp_engine_destroy(e);
        }
        for (int i = 0; i < 2; i++)
            if (memcmp(out[0][i], out[1][i], sizeof out[0][i]))
                fail_msg("own int8 %d, output %d: lanes differ from the whole "
                         "batch", own, i);
    }
    free(x.data);
}

/* Two ResNet blocks: x → conv a, conv b (no activation: s8) → relu(a + b)
 * (u8) → conv+relu → conv c → relu(c + that u8 value) (u8). The first
 * ADD fuses into conv b with an s8 summand under a u8 output — the
 * destination is a u8 view of the summand's bytes, in place — and the
 * second into conv c with its summand living in that view, in place
 * again. The input's range is skewed ([-0.5, 2.5]: zero point -85), so
 * the first convs' source zero point matters; the plan folds it into their
 * bias (1x1, no padding: fold_zx). The int8 result (oneDNN int8 with the
 * sums, or the reference kernels with separate ADDs) stays close to fp32
 * on unseen inputs. */
static osp_graph_t *build_blocks(int *out) {
    osp_graph_t *g = osp_graph_create();
    assert_non_null(g);
    osp_window_t k1 = tu_win2(1, 1, 1, 0, 0, 0, 0);
    int x = tu_input(g, "x", 4, D(-1, 8, 12, 12));
    int a = tu_conv(g, x, 8, 16, 1, 1, k1, true, 51, NULL);
    int b = tu_conv(g, x, 8, 16, 1, 1, k1, true, 53, NULL);
    int s1 = tu_node(g, OSP_OP_RELU, I(tu_node(g, OSP_OP_ADD, I(a, b), 2, NULL)),
                     1, NULL);
    int d = tu_node(g, OSP_OP_RELU,
                    I(tu_conv(g, s1, 16, 16, 1, 1, k1, true, 55, NULL)), 1, NULL);
    int c = tu_conv(g, d, 16, 16, 1, 1, k1, true, 57, NULL);
    int s2 = tu_node(g, OSP_OP_RELU, I(tu_node(g, OSP_OP_ADD, I(c, s1), 2, NULL)),
                     1, NULL);
    tu_output(g, s2);
    osp_err_t err = {0};
    assert_int_equal(osp__passes_load(g, &err), 0); /* renumbers values */
    *out = g->outputs[0];
    return g;
}

/* A random input in [-0.5, 2.5] (tu_tensor's [-1, 1] stretched). */
static osp_tensor_t skewed(uint32_t seed) {
    osp_tensor_t t = tu_tensor(4, D(2, 8, 12, 12), seed);
    float *f = t.data;
    for (size_t i = 0; i < osp_tensor_numel(&t); i++)
        f[i] = 1.f + 1.5f * f[i];
    return t;
}

static void test_int8_mixed_sum(void **state) {
    (void)state;
    osp_tensor_t cal[N_CALIB];
    for (int i = 0; i < N_CALIB; i++)
        cal[i] = skewed(300u + (uint32_t)i);
    for (int on_dnnl = 0; on_dnnl < 2; on_dnnl++) {
        int y;
        osp_graph_t *g = build_blocks(&y), *gf = build_blocks(&y);
        osp_engine_opts_t o;
        osp_engine_opts_init(&o);
        o.threads = 2;
        o.calib = cal;
        o.n_calib = N_CALIB;
        calibrate_and_quantize(g, y, &o);
        osp_engine_opts_t fo = o;
        fo.precision = OSP_PREC_FP32;
        o.precision = OSP_PREC_INT8;
        if (!on_dnnl)
            o.tuning.int8_dnnl = OSP_TUNE_OFF;
        osp_engine_t *e8 = tu_engine(g, &o), *ef = tu_engine(gf, &fo);
        for (int t = 0; t < 3; t++) {
            osp_tensor_t x = skewed(700u + (uint32_t)t);
            osp_tensor_t o8, of;
            osp_err_t err = {0};
            assert_int_equal(osp_engine_run(e8, &x, 1, &o8, 1, &err), 0);
            assert_int_equal(osp_engine_run(ef, &x, 1, &of, 1, &err), 0);
            size_t n = osp_tensor_numel(&of);
            assert_int_equal(osp_tensor_numel(&o8), n);
            assert_int_equal(n, 2 * 16 * 12 * 12);
            double cs = tu_cosine(o8.data, of.data, n),
                   rd = tu_rel_diff(o8.data, of.data, n);
            printf("mixed sums, oneDNN int8 %d, unseen input %d: cosine %.5f, "
                   "max error %.2f%%\n", on_dnnl, t, cs, 100 * rd);
            assert_true(cs >= 0.99);
            assert_true(rd <= 0.08);
            free(x.data);
        }
        const char *desc = osp_engine_describe(e8); /* planned by the runs */
        if (on_dnnl && tu_vnni()) {
            /* both ADDs ride on their convs, in place, into u8 */
            const char *p = desc;
            int n = 0;
            while ((p = strstr(p, "-> u8:acdb fused +sum (in place)")))
                n++, p++;
            if (n != 2)
                fail_msg("%d in-place u8 sums, want 2:\n%s", n, desc);
            assert_null(strstr(desc, " ADD "));
        }
        osp_engine_destroy(e8);
        osp_engine_destroy(ef);
    }
    for (int i = 0; i < N_CALIB; i++)
        free(cal[i].data);
}

static void test_needs_calibration(void **state) {
    (void)state;
    int logits;
    osp_graph_t *g = build(&logits);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    osp_err_t err = {0};
    osp__pass_qrange_t *r = calloc((size_t)g->n_values, sizeof *r);
    assert_int_equal(osp__calibrate(g, &o, r, &err), OSP_EINVAL);
    printf("no calibration inputs: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "calibration"));
    /* and a float graph cannot be run as int8 without being quantized */
    o.precision = OSP_PREC_INT8;
    assert_null(osp__engine_from_graph(g, &o, &err));
    assert_int_equal(err.code, OSP_EUNSUPPORTED);
    free(r);
}

/* An ADD that stays float (a constant operand) keeps its RELU as a node of
 * its own: the float ADD kernel has no post-ops, so fusing it there would
 * drop the activation. */
static void test_float_add_keeps_relu(void **state) {
    (void)state;
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 2, D(-1, 16));
    int k = tu_const(g, "k", 2, D(1, 16), 1.f, 3);
    int a = tu_node(g, OSP_OP_ADD, I(x, k), 2, NULL);
    int y = tu_node(g, OSP_OP_RELU, I(a), 1, NULL);
    tu_output(g, y);
    osp__pass_qrange_t r[8] = {{0}};
    r[x] = (osp__pass_qrange_t){-2.f, 2.f, true};
    r[a] = (osp__pass_qrange_t){-3.f, 3.f, true};
    r[y] = (osp__pass_qrange_t){0.f, 3.f, true};
    osp_err_t err = {0};
    assert_true(g->n_values <= 8);
    assert_int_equal(osp__pass_quantize(g, r, g->n_values, &err), 0);
    assert_int_equal(tu_count_op(g, OSP_OP_RELU), 1);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == OSP_OP_ADD)
            assert_int_equal(g->nodes[i].n_post, 0);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.precision = OSP_PREC_INT8;
    osp_engine_t *e = tu_engine(g, &o);
    osp_tensor_t in = tu_tensor(2, D(4, 16), 9), out;
    assert_int_equal(osp_engine_run(e, &in, 1, &out, 1, &err), 0);
    const float *f = out.data;
    for (int i = 0; i < 64; i++)
        assert_true(f[i] >= 0.f); /* the RELU ran */
    osp_engine_destroy(e);
    free(in.data);
}

static void test_nothing_quantizable(void **state) {
    (void)state;
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 2, D(-1, 4));
    int y = tu_node(g, OSP_OP_SIGMOID, I(x), 1, NULL);
    tu_output(g, y);
    osp__pass_qrange_t r[2] = {{-1.f, 1.f, true}, {0.f, 1.f, true}};
    osp_err_t err = {0};
    assert_int_equal(osp__pass_quantize(g, r, g->n_values, &err), OSP_EUNSUPPORTED);
    printf("%s\n", err.msg);
    assert_false(g->quantized);
    osp_graph_destroy(g);
}

/* The QUANTIZE step (q8_quantize.c) against the reference's arithmetic,
 * saturate(round_half_even(x / scale) + zp), NaN → zp: exact ties, both
 * saturations, NaN, a length that leaves a scalar tail, u8 and s8. */
static void check_quantize_step(osp_dtype_t dt, float scale, int32_t zp) {
    osp_graph_t *g = osp_graph_create();
    g->quantized = true;
    int x = tu_input(g, "x", 2, D(-1, 1003));
    int y = tu_value_q(g, "y", dt, -1, NULL, scale, zp);
    int ni = osp_graph_add_node(g, OSP_OP_QUANTIZE, "q", &x, 1, &y, 1);
    g->nodes[ni].p.cast.to = dt;
    g->nodes[ni].p.cast.axis = 1;
    tu_output(g, y);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 2;
    osp_engine_t *e = tu_engine(g, &o);
    const int64_t n = 100 * 1003; /* 64K+ elements: the threaded path */
    osp_tensor_t in = tu_tensor(2, D(100, 1003), 5);
    float *xf = in.data;
    for (int64_t i = 0; i < n; i++) {
        if (i % 7 == 0)
            xf[i] = ((float)(i % 41) - 20.f + 0.5f) * scale; /* ties */
        else if (i % 11 == 0)
            xf[i] = (i % 2 ? 1e6f : -1e6f); /* saturation */
        else
            xf[i] *= 90.f * scale;
    }
    xf[13] = NAN;
    osp_tensor_t out;
    osp_err_t err = {0};
    assert_int_equal(osp_engine_run(e, &in, 1, &out, 1, &err), 0);
    float lo = dt == OSP_DT_U8 ? 0.f : -128.f, hi = dt == OSP_DT_U8 ? 255.f : 127.f;
    size_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = nearbyintf(xf[i] / scale) + (float)zp;
        v = v < lo ? lo : v > hi ? hi : v;
        if (v != v)
            v = (float)zp < lo ? lo : (float)zp > hi ? hi : (float)zp;
        int32_t want = (int32_t)v;
        int32_t got = dt == OSP_DT_U8 ? ((uint8_t *)out.data)[i]
                                      : ((int8_t *)out.data)[i];
        bad += got != want;
    }
    assert_int_equal(bad, 0);
    assert_non_null(strstr(osp_engine_describe(e), "osprey:quantize"));
    osp_engine_destroy(e);
    free(in.data);
}

/* The quantized global mean on NHWC bytes (q8_mean.c) against the
 * reference kernel: x → QUANTIZE → MAXPOOL 2x2 (oneDNN, channels-last) →
 * REDUCE_MEAN over H, W (its own scale and zero point) → DEQUANTIZE; the
 * engine's floats must be the reference evaluation's bit for bit, u8 and
 * s8, with channels past one block of 256 and a batch of 3. */
static void check_mean_step(osp_dtype_t dt, int32_t zx, int32_t zy) {
    osp_graph_t *g = osp_graph_create();
    g->quantized = true;
    g->ptq = true;
    int x = tu_input(g, "x", 4, D(-1, 300, 9, 7));
    int q = tu_value_q(g, "q", dt, -1, NULL, 0.05f, zx);
    int qn = osp_graph_add_node(g, OSP_OP_QUANTIZE, "quant", &x, 1, &q, 1);
    g->nodes[qn].p.cast.to = dt;
    g->nodes[qn].p.cast.axis = 1;
    int mp = tu_value_q(g, "mp", dt, -1, NULL, 0.05f, zx);
    int mpn = osp_graph_add_node(g, OSP_OP_MAXPOOL, "pool", &q, 1, &mp, 1);
    g->nodes[mpn].p.pool.win = tu_win2(2, 1, 1, 0, 0, 0, 0);
    int m = tu_value_q(g, "m", dt, -1, NULL, 0.011f, zy);
    int mn = osp_graph_add_node(g, OSP_OP_REDUCE_MEAN, "mean", &mp, 1, &m, 1);
    g->nodes[mn].p.axes = (osp_axes_params_t){.has_axes = true, .n_axes = 2,
                                              .axes = {2, 3}, .keepdims = true};
    int y = osp_graph_add_value(g, "y", OSP_DT_F32, -1, NULL);
    int dn = osp_graph_add_node(g, OSP_OP_DEQUANTIZE, "deq", &m, 1, &y, 1);
    g->nodes[dn].p.cast.to = OSP_DT_F32;
    g->nodes[dn].p.cast.axis = 1;
    tu_output(g, y);
    osp_tensor_t in = tu_tensor(4, D(3, 300, 9, 7), 77);
    float *xf = in.data;
    for (size_t i = 0; i < osp_tensor_numel(&in); i++)
        xf[i] *= 7.f; /* both saturations */
    osp_tensor_t ref;
    float **want = tu_ref_eval(g, &in, &ref);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 2;
    o.precision = OSP_PREC_INT8;
    osp_engine_t *e = tu_engine(g, &o);
    osp_tensor_t out;
    osp_err_t err = {0};
    assert_int_equal(osp_engine_run(e, &in, 1, &out, 1, &err), 0);
    assert_int_equal(osp_tensor_numel(&out), 3 * 300);
    const char *d = osp_engine_describe(e);
    if (!strstr(d, "osprey:q8-mean(nhwc)"))
        fail_msg("the mean did not run on NHWC bytes:\n%s", d);
    if (memcmp(out.data, want[0], sizeof(float) * 3 * 300))
        fail_msg("%s mean differs from the reference", osp_dtype_name(dt));
    osp_engine_destroy(e);
    free(want[0]);
    free(want);
    free(in.data);
}

static void test_mean_step(void **state) {
    (void)state;
    check_mean_step(OSP_DT_U8, 0, 3);
    check_mean_step(OSP_DT_S8, -20, 7);
}

static void test_quantize_step(void **state) {
    (void)state;
    check_quantize_step(OSP_DT_S8, 0.05f, -3);
    check_quantize_step(OSP_DT_U8, 0.125f, 128);
    check_quantize_step(OSP_DT_S8, 0.02f, -128);
}

int main(int argc, char **argv) {
    tu_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_int8_close_to_fp32, setup_calib,
                                        teardown_calib),
        cmocka_unit_test_setup_teardown(test_int8_without_onednn, setup_calib,
                                        teardown_calib),
        cmocka_unit_test_setup_teardown(test_int8_lanes_bitwise, setup_calib,
                                        teardown_calib),
        cmocka_unit_test(test_int8_mixed_sum),
        cmocka_unit_test(test_needs_calibration),
        cmocka_unit_test(test_float_add_keeps_relu),
        cmocka_unit_test(test_nothing_quantizable),
        cmocka_unit_test(test_quantize_step),
        cmocka_unit_test(test_mean_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
