/* q8_mean.c — the quantized global average pool (REDUCE_MEAN over H and W)
 * on the channels-last bytes the int8 convolutions write, as a threaded
 * plan step.
 *
 * Why: ResNet50's int8 graph ends in a mean over 7x7 of 2048 channels. The
 * reference kernel reads plain NCHW, so the plan reordered the last conv's
 * NHWC output first; both together took ~0.6 ms of a 26-ms batch of 8 on
 * AMX. Summed channels-last, each pixel adds one contiguous row of channels
 * into int32 accumulators (vectorised), and the sums are requantized with
 * the reference's arithmetic (osp__q8_mean_out, TFLite's MEAN): the bytes
 * are the reference's, integer sums being the same in any order. Only
 * where the reference itself runs TFLite's integer mean (same 8-bit type in
 * and out, per-tensor parameters) and the input is NHWC. */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/ops/ref_q8.h"
#include "engine/plan/plan_int.h"

enum { MEAN_CBLOCK = 256 }; /* channels per task: int32 sums in L1 */

typedef struct q8mean_s {
    int64_t n, c, hw;
    bool u8;
    osp__q8_mean_req_t req;
} q8mean_t;

static void mean_rows(const q8mean_t *k, const void *x, void *y, int64_t img,
                       int64_t c0) {
    int64_t cn = k->c - c0 < MEAN_CBLOCK ? k->c - c0 : MEAN_CBLOCK;
    int32_t acc[MEAN_CBLOCK] = {0};
    size_t row = (size_t)(img * k->hw) * (size_t)k->c + (size_t)c0;
    for (int64_t p = 0; p < k->hw; p++, row += (size_t)k->c) {
        if (k->u8) {
            const uint8_t *s = (const uint8_t *)x + row;
#pragma omp simd
            for (int64_t i = 0; i < cn; i++)
                acc[i] += s[i];
        } else {
            const int8_t *s = (const int8_t *)x + row;
#pragma omp simd
            for (int64_t i = 0; i < cn; i++)
                acc[i] += s[i];
        }
    }
    size_t o = (size_t)(img * k->c + c0);
    for (int64_t i = 0; i < cn; i++)
        osp__q8_store(k->u8 ? OSP_DT_U8 : OSP_DT_S8, y, o + (size_t)i,
                      osp__q8_mean_out(&k->req, acc[i]));
}

static void run_mean(const osp__plan_step_t *s) {
    const q8mean_t *k = s->fn_ctx;
    int64_t nb = (k->c + MEAN_CBLOCK - 1) / MEAN_CBLOCK, tasks = k->n * nb;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    nt = tasks < nt ? (int)tasks : nt;
#endif
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t t = 0; t < tasks; t++)
        mean_rows(k, s->tin[0].data, s->tout[0].data, t / nb,
                   (t % nb) * MEAN_CBLOCK);
}

int osp__q8_mean(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (n->op != OSP_OP_REDUCE_MEAN || n->n_in < 1 || n->n_out != 1 ||
        n->n_post || !n->p.axes.has_axes || n->p.axes.n_axes != 2 ||
        n->in[0] < 0 || n->out[0] < 0)
        return OSP_EUNSUPPORTED;
    const osp_value_t *X = &g->values[n->in[0]], *Y = &g->values[n->out[0]];
    if (X->rank != 4 || osp_value_is_const(X) || X->dtype != Y->dtype ||
        (X->dtype != OSP_DT_U8 && X->dtype != OSP_DT_S8) || !X->quant ||
        !Y->quant || X->quant->count != 1 || Y->quant->count != 1 ||
        !(X->quant->scale[0] > 0.f) || !(Y->quant->scale[0] > 0.f))
        return OSP_EUNSUPPORTED;
    bool hw[4] = {false};
    for (int i = 0; i < 2; i++) {
        int a = osp_norm_axis(n->p.axes.axes[i], 4);
        if (a < 2 || hw[a])
            return OSP_EUNSUPPORTED;
        hw[a] = true;
    }
    const int64_t *d = X->dims;
    int64_t HW = d[2] * d[3];
    if (HW <= 0 || HW >= (1 << 23) || osp_value_numel(Y) != (size_t)(d[0] * d[1]))
        return OSP_EUNSUPPORTED;
    /* only where the producer wrote NHWC: plain input is the reference's */
    dnnl_memory_desc_t have, nhwc, ymd;
    dnnl_data_type_t dt = osp__dnnl_dt(X->dtype);
    if (osp__value_md(c, n->in[0], &have) < 0) {
        osp_err_clear(c->err);
        return OSP_EUNSUPPORTED;
    }
    if (!osp__md_tag(c, &nhwc, 4, d, dt, dnnl_acdb) ||
        !dnnl_memory_desc_equal(have, nhwc) ||
        !osp__md_plain(c, &ymd, Y->rank, Y->dims, dt))
        return OSP_EUNSUPPORTED;
    q8mean_t *k = malloc(sizeof *k);
    if (!k)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    *k = (q8mean_t){d[0], d[1], HW, X->dtype == OSP_DT_U8,
                    osp__q8_mean_req(X->quant, Y->quant, HW, Y->dtype)};
    int xb = osp__buf_as(c, n->in[0], &nhwc);
    int yb = xb < 0 ? xb : osp__buf_new(c, &ymd, n->out[0]);
    if (yb < 0) {
        free(k);
        return yb;
    }
    int si = osp__step_fn(c, ni, 1, &xb, yb, run_mean, k, "osprey:q8-mean(nhwc)",
                          NULL);
    if (si < 0)
        return si; /* k freed by osp__step_fn */
    osp__bind_value(c, n->out[0], yb);
    return 0;
}
