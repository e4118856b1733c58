/* calibrate.c — the value ranges behind post-training int8 quantization.
 *
 * Runs the float graph, exactly as loaded (after the load-time passes, so
 * a Conv's fused Relu is already part of its output), on the caller's
 * calibration inputs and records each value's [min, max]. The graph is
 * cloned with every value produced by a node made a graph output, so the
 * fp32 planner keeps each one in its own buffer and hands it back (the
 * plan-time residual fusion skips graph outputs, so the Add results are
 * observed too). Constants are shared with the original graph. The ranges
 * feed pass_quantize.c. Plain min/max: it is what ONNX Runtime's and
 * TFLite's post-training calibrators default to, and on the 100 ImageNet
 * samples it kept the trained MobileNetV2s' top-1 within a point
 * (docs/engine.md, "int8 for float models"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"

static void observe(osp__pass_qrange_t *r, const osp_tensor_t *t) {
    if (t->dtype != OSP_DT_F32 || !t->data)
        return;
    const float *f = t->data;
    size_t n = osp_tensor_numel(t);
    float lo = r->seen ? r->lo : INFINITY, hi = r->seen ? r->hi : -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(f[i]))
            continue;
        lo = f[i] < lo ? f[i] : lo;
        hi = f[i] > hi ? f[i] : hi;
    }
    if (lo <= hi) {
        r->lo = lo;
        r->hi = hi;
        r->seen = true;
    }
}

int osp__calibrate(const osp_graph_t *g, const osp_engine_opts_t *opts,
                   osp__pass_qrange_t *r, osp_err_t *err) {
    if (!opts->calib || opts->n_calib < 1)
        return osp_err_set(err, OSP_EINVAL,
                           "int8 on a float model needs calibration inputs: "
                           "a few images preprocessed as requests (osprey: "
                           "--calibration DIR, or \"calibration\" in the model "
                           "config)");
    if (g->n_inputs != 1)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "int8 calibration: models with %d inputs are not "
                           "supported (one image input)",
                           g->n_inputs);
    memset(r, 0, sizeof *r * (size_t)g->n_values);
    osp_graph_t *cg = osp_graph_clone(g);
    int *outs = cg ? malloc(sizeof(int) * (size_t)cg->n_values) : NULL;
    if (!outs) {
        osp_graph_destroy(cg);
        return osp_err_set(err, OSP_ENOMEM, "int8 calibration: out of memory");
    }
    int n_out = 0;
    for (int i = 0; i < cg->n_nodes; i++) {
        const osp_node_t *n = &cg->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        for (int k = 0; k < n->n_out; k++) {
            int v = n->out[k];
            if (v >= 0 && !osp_value_is_const(&cg->values[v])) {
                cg->values[v].is_output = true;
                outs[n_out++] = v;
            }
        }
    }
    free(cg->outputs);
    cg->outputs = outs;
    cg->n_outputs = n_out;
    osp_engine_opts_t fo;
    osp_engine_opts_init(&fo);
    fo.threads = opts->threads;
    fo.precision = OSP_PREC_FP32;
    fo.tuning = opts->tuning; /* the caller's tuning applies to this run too */
    osp_engine_t *ce = osp__engine_from_graph(cg, &fo, err); /* takes cg */
    if (!ce) {
        osp_err_prefix(err, "int8 calibration");
        return err->code;
    }
    /* A one-off pass over a few images: timing layouts (tune.c) would cost
     * more than it saves; the ranges do not depend on the layout. */
    ce->tuned = true;
    osp_tensor_t *res = calloc((size_t)n_out, sizeof *res);
    if (!res) {
        osp_engine_destroy(ce);
        return osp_err_set(err, OSP_ENOMEM, "int8 calibration: out of memory");
    }
    int rc = 0;
    int in = g->inputs[0];
    for (int i = 0; i < opts->n_calib && rc == 0; i++) {
        observe(&r[in], &opts->calib[i]);
        rc = osp_engine_run(ce, &opts->calib[i], 1, res, n_out, err);
        if (rc < 0) {
            osp_err_prefix(err, "int8 calibration input %d", i);
            break;
        }
        for (int k = 0; k < n_out; k++)
            observe(&r[ce->g->outputs[k]], &res[k]);
    }
    free(res);
    osp_engine_destroy(ce);
    return rc;
}
