/* pass_batchnorm.c — folds BatchNormalization into the preceding conv.
 *
 * For output channel o with s = gamma[o] / sqrt(var[o] + eps):
 *   w'[o, ...] = w[o, ...] * s
 *   b'[o]      = (b[o] - mean[o]) * s + beta[o]     (b = 0 without a bias)
 * Only when the conv output feeds nothing but the BN, every BN parameter and
 * the weights (and bias, if any) are constant f32, and the conv has no
 * post-ops yet. The folded weights and bias are new constant values: the
 * originals may be shared by other nodes or borrowed from a model buffer
 * (data_borrowed), so they are never written in place. Unused originals are
 * dropped by osp_graph_compact(). */
#include "engine/passes/passes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/passes/pass_int.h"

/* A constant f32 value with exactly `count` elements of data, else NULL. */
static const float *const_f32(const osp_graph_t *g, int v, size_t count) {
    if (v < 0)
        return NULL;
    const osp_value_t *val = &g->values[v];
    if (!osp_value_is_const(val) || val->dtype != OSP_DT_F32 || val->quant ||
        val->data_bytes != count * sizeof(float))
        return NULL;
    return val->data;
}

/* Adds a new constant f32 value named "<base><suffix>" (made unique). */
static int add_const(osp_graph_t *g, const char *base, const char *suffix,
                     int rank, const int64_t *dims, float *data, size_t bytes,
                     osp_err_t *err) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    for (int k = 1; osp_graph_find_value(g, name) >= 0; k++)
        snprintf(name, sizeof name, "%s%s%d", base, suffix, k);
    int v = osp_graph_add_value(g, name, OSP_DT_F32, rank, dims);
    if (v < 0) {
        free(data);
        return osp_err_set(err, v, "folding batchnorm into %s: adding %s",
                           base, name);
    }
    osp_graph_set_const(g, v, data, bytes);
    return v;
}

/* Returns 1 if BN node `bn` was folded, 0 if not applicable, <0 on error. */
static int fold_one(osp_graph_t *g, int bn, osp_err_t *err) {
    const osp_node_t *b = &g->nodes[bn];
    if (b->n_in < 5 || b->in[0] < 0 || b->n_out < 1 || b->out[0] < 0)
        return 0;
    for (int i = 1; i < b->n_out; i++) /* training-mode extra outputs */
        if (b->out[i] >= 0 && osp_graph_use_count(g, b->out[i]) > 0)
            return 0;
    int x = b->in[0];
    int c = g->values[x].producer;
    if (c < 0 || g->nodes[c].op != OSP_OP_CONV || g->nodes[c].n_post > 0 ||
        g->nodes[c].out[0] != x || osp__pass_single_consumer(g, x) != bn)
        return 0;
    const osp_node_t *conv = &g->nodes[c];
    if (conv->n_in < 2 || conv->in[1] < 0)
        return 0;
    const osp_value_t *wv = &g->values[conv->in[1]];
    if (wv->rank < 1 || wv->dims[0] <= 0)
        return 0;
    size_t oc = (size_t)wv->dims[0];
    size_t wn = osp_value_numel(wv);
    if (wn == 0 || wn % oc != 0)
        return 0;
    const float *w = const_f32(g, conv->in[1], wn);
    int bias_v = conv->n_in >= 3 ? conv->in[2] : -1;
    const float *bias = bias_v >= 0 ? const_f32(g, bias_v, oc) : NULL;
    const float *gamma = const_f32(g, b->in[1], oc);
    const float *beta = const_f32(g, b->in[2], oc);
    const float *mean = const_f32(g, b->in[3], oc);
    const float *var = const_f32(g, b->in[4], oc);
    if (!w || (bias_v >= 0 && !bias) || !gamma || !beta || !mean || !var)
        return 0;
    float eps = b->p.bn.epsilon;

    float *nw = malloc(wn * sizeof(float));
    float *nb = malloc(oc * sizeof(float));
    if (!nw || !nb) {
        free(nw);
        free(nb);
        return osp_err_set(err, OSP_ENOMEM, "folding %s into %s", b->name,
                           conv->name);
    }
    size_t per = wn / oc;
    for (size_t o = 0; o < oc; o++) {
        /* double keeps the fold as exact as the f32 inputs allow */
        double s = (double)gamma[o] / sqrt((double)var[o] + (double)eps);
        for (size_t k = 0; k < per; k++)
            nw[o * per + k] = (float)((double)w[o * per + k] * s);
        double b0 = bias ? (double)bias[o] : 0.0;
        nb[o] = (float)((b0 - (double)mean[o]) * s + (double)beta[o]);
    }

    /* Adding values may move g->values; only indices are used from here. */
    int64_t wdims[OSP_MAX_RANK];
    int wrank = wv->rank;
    memcpy(wdims, wv->dims, sizeof wdims);
    char base[200];
    snprintf(base, sizeof base, "%s", g->nodes[c].name);
    int nwv = add_const(g, base, "_w_bnfold", wrank, wdims, nw,
                        wn * sizeof(float), err);
    if (nwv < 0) {
        free(nb);
        return nwv;
    }
    int64_t bdims[1] = {(int64_t)oc};
    int nbv = add_const(g, base, "_b_bnfold", 1, bdims, nb, oc * sizeof(float),
                        err);
    if (nbv < 0)
        return nbv;

    osp_node_t *cn = &g->nodes[c];
    cn->in[1] = nwv;
    if (cn->n_in >= 3) {
        cn->in[2] = nbv;
    } else {
        int rc = osp__pass_append_input(g, c, nbv, err);
        if (rc < 0)
            return rc;
        cn = &g->nodes[c];
    }
    int y = g->nodes[bn].out[0];
    osp_graph_remove_node(g, bn);
    cn->out[0] = y;
    g->values[y].producer = c;
    g->values[x].producer = -1;
    if (g->values[y].dtype == OSP_DT_UNDEF)
        g->values[y].dtype = g->values[x].dtype;
    return 1;
}

int osp__pass_fold_batchnorm(osp_graph_t *g, osp_err_t *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != OSP_OP_BATCHNORM)
            continue;
        int rc = fold_one(g, i, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}
