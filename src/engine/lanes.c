/* lanes.c — batch-parallel execution ("lanes"): with T threads and a batch
 * of B images, T lanes share the batch one or two images at a time, each
 * running its own single-threaded plan for that many images, instead of
 * one plan whose every oneDNN primitive splits its work over T OpenMP
 * threads.
 *
 * Why: MobileNetV2 and SqueezeNet are ~55 small primitives per run. Split
 * inside each primitive, every step ends in an OpenMP barrier (a futex
 * wake-up with OMP_WAIT_POLICY=passive) and the small late layers divide
 * unevenly over the threads. Images of a batch are independent, so lanes
 * need one hand-off per run. Images are handed out in small chunks (2
 * images once every lane gets at least two chunks, else 1) from a shared
 * counter rather than as fixed halves: on a CPU shared with other
 * processes a preempted lane then simply takes fewer, where a fixed half
 * would leave the other lane idle at the end (measured: fixed halves lost
 * to intra-op threading under load). One-thread CPU time per image at
 * batch 2 is as low as at batch 8 for the small CNNs (docs/engine.md).
 *
 * How: each lane is a lane engine (an osp_engine_t with threads = 1 that
 * borrows the parent's graph, declared tensors and weight cache, and owns
 * its plans, arena, scratchpad and oneDNN stream). Lane 0 runs on the
 * caller's thread, lanes 1..T-1 on worker threads the engine starts on the
 * first split batch and joins at destroy. Plans are built with the OpenMP
 * budget set to 1 (kernels size their work split at creation) and every
 * worker sets its own budget to 1, so no lane starts a parallel region.
 * Each lane copies its images' output rows into one contiguous buffer per
 * output, so callers see the same tensors as without lanes.
 *
 * When: only if the graph provably computes each image independently — at
 * batch B every runtime value has B rows along dim 0 and every node is an op
 * known to work row by row with its axis away from 0 (checked on a clone
 * specialised to B: infer shapes, fold constants). Otherwise, for batches
 * that would split unevenly by more than OSP_LANES_MAX_IMBALANCE, for
 * shape-parameter inputs, graphs of heavy steps
 * (OSP_LANES_MAX_MFLOP_PER_NODE) and with opts.tuning.batch_split off, the
 * engine runs the whole batch as before. batch_split on drops the two cost
 * rules (imbalance, heavy steps), never the correctness ones. No
 * allocation happens in a split run. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops/kernels.h"
#include "engine/plan/plan_int.h"

/* Largest accepted ratio of the most images a lane takes, ceil(B/T), to
 * the ideal B/T: a split loses to intra-op threading when lanes are much
 * more uneven than this (intra-op threading measured ~15% less efficient
 * here); on 2 threads batches 3 and 5 run whole. */
#define OSP_LANES_MAX_IMBALANCE 1.15
#define OSP_LANES_MAX 64        /* threads beyond this share lanes */
#define OSP_LANES_CHUNK 2       /* images per lane step for batches >= 4T */
/* Lanes only for graphs whose nodes average fewer FLOPs per image than
 * this. Lanes remove a barrier per step but run 1-2 image plans, which read
 * every weight once per chunk; a big step (ResNet50 averages ~92 MFLOP per
 * node per image, ~1 ms on one core) hides its barrier well, and there
 * batch-1 lanes measured 8% more CPU per batch than the batch-8 plan.
 * MobileNetV2 (~9) and SqueezeNet 1.1 (~17) gain from lanes. */
#define OSP_LANES_MAX_MFLOP_PER_NODE 30.0

typedef struct osp_lane_s {
    osp_engine_t *eng;          /* lane engine (threads = 1) */
    pthread_t tid;
    bool started;
    unsigned seen;              /* last run generation the worker served */
    osp_err_t err;              /* this run's failure, if rc < 0 */
    int rc;
} osp_lane_t;

/* One plan key the lanes have seen, split or not. */
typedef struct osp_lkey_s {
    int64_t *key;               /* n_inputs × OSP_KEY_STRIDE */
    bool split;
    int n_lanes;
    int64_t batch;              /* B */
    double mflop_per_node;      /* per image, of the graph at batch B */
    int64_t chunk;              /* images a lane takes at a time */
    /* per lane: [0] the chunk-sized plan, [1] a batch-1 plan for the last
     * image when chunk does not divide B (else NULL); owned by the lanes */
    osp__plan_t *plan[2][OSP_LANES_MAX];
    osp_tensor_t *tin[2];       /* n_lanes × n_inputs, per plan kind */
    osp_tensor_t *tout[2];      /* n_lanes × n_outputs */
    size_t *in_row, *out_row;   /* bytes per image of each input / output */
    void **out;                 /* per output: B rows, 64-byte aligned */
    char *describe;             /* owned */
} osp_lkey_t;

struct osp__lanes_s {
    osp_engine_t *e;
    osp_tune_t mode;            /* opts.tuning.batch_split */
    int n_lanes;                /* lane engines created so far */
    osp_lane_t lane[OSP_LANES_MAX];
    osp_lkey_t *keys;
    int n_keys, cap_keys;
    /* worker handshake */
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned gen;               /* bumped per split run */
    /* the current run, set by the caller before it bumps gen */
    osp_lkey_t *cur;
    const osp_tensor_t *cur_in;
    atomic_int next;            /* next image to take */
    bool warm;                  /* warm-up: every lane runs image 0 once */
    int active;                 /* lanes taking part in the current run */
    int pending;                /* workers not finished with this run */
    bool quit;
    bool sync_ok;               /* mu/start/done initialised */
};

/* ---- batch independence ------------------------------------------------ */

static int64_t norm_axis(int64_t a, int rank) { return a < 0 ? a + rank : a; }

/* Whether node n of g (specialised to batch B) computes each row of dim 0
 * from the same row of its inputs only. */
static bool node_rowwise(const osp_graph_t *g, const osp_node_t *n, int64_t B) {
    for (int j = 0; j < n->n_out; j++) {
        if (n->out[j] < 0)
            continue;
        const osp_value_t *v = &g->values[n->out[j]];
        if (osp_value_is_const(v) || v->rank < 1 || v->dims[0] != B)
            return false;
    }
    int n_rt = 0; /* runtime inputs */
    for (int j = 0; j < n->n_in; j++) {
        if (n->in[j] < 0)
            continue;
        const osp_value_t *v = &g->values[n->in[j]];
        if (osp_value_is_const(v))
            continue;
        if (v->rank < 1 || v->dims[0] != B)
            return false;
        n_rt++;
    }
    const osp_value_t *x = n->n_in > 0 && n->in[0] >= 0 ? &g->values[n->in[0]]
                                                        : NULL;
    if (!x || osp_value_is_const(x))
        return false;
    int r = x->rank;
    switch (n->op) {
    case OSP_OP_CONV: case OSP_OP_BATCHNORM: case OSP_OP_MAXPOOL:
    case OSP_OP_AVGPOOL: case OSP_OP_GLOBAL_AVGPOOL: case OSP_OP_GLOBAL_MAXPOOL:
    case OSP_OP_LRN: case OSP_OP_RELU: case OSP_OP_LEAKY_RELU: case OSP_OP_CLIP:
    case OSP_OP_SIGMOID: case OSP_OP_HARD_SIGMOID: case OSP_OP_HARD_SWISH:
    case OSP_OP_CAST: case OSP_OP_QUANTIZE: case OSP_OP_DEQUANTIZE: {
        /* Only the data input is per image, plus a conv's residual SUM
         * operand (its B rows were checked above); the rest are
         * parameters. */
        int n_sum = 0;
        for (int i = 0; i < n->n_post; i++)
            n_sum += n->post[i].kind == OSP_POST_SUM;
        return n_rt == 1 + (n->op == OSP_OP_CONV ? n_sum : 0);
    }
    case OSP_OP_RESHAPE: case OSP_OP_SQUEEZE: case OSP_OP_UNSQUEEZE:
    case OSP_OP_IDENTITY:
        /* Row-major reshapes that keep B rows keep each row's elements. */
        return n_rt == 1;
    case OSP_OP_FLATTEN:
        return n_rt == 1 && norm_axis(n->p.axis.axis, r) >= 1;
    case OSP_OP_SOFTMAX:
        return n_rt == 1 && norm_axis(n->p.axis.axis, r) >= 1;
    case OSP_OP_CONCAT:
        /* A constant block with B rows would be per-image data. */
        return n_rt == n->n_in && norm_axis(n->p.axis.axis, r) >= 1;
    case OSP_OP_TRANSPOSE:
        return n_rt == 1 && n->p.axes.has_axes && n->p.axes.n_axes == r &&
               n->p.axes.axes[0] == 0;
    case OSP_OP_REDUCE_MEAN:
        if (n_rt != 1 || !n->p.axes.has_axes || n->p.axes.n_axes < 1)
            return false;
        for (int i = 0; i < n->p.axes.n_axes; i++)
            if (norm_axis(n->p.axes.axes[i], r) == 0)
                return false;
        return true;
    case OSP_OP_PAD:
        return n_rt == 1 && n->p.pad.has_pads && n->p.pad.n_pads == 2 * r &&
               n->p.pad.pads[0] == 0 && n->p.pad.pads[r] == 0;
    case OSP_OP_ADD: case OSP_OP_SUB: case OSP_OP_MUL: case OSP_OP_DIV: {
        /* Broadcast constants must not vary along dim 0 of the output. */
        const osp_value_t *y = &g->values[n->out[0]];
        for (int j = 0; j < n->n_in; j++) {
            const osp_value_t *v = &g->values[n->in[j]];
            if (osp_value_is_const(v) && v->rank == y->rank && v->dims[0] != 1)
                return false;
        }
        return n->n_in == 2;
    }
    case OSP_OP_GEMM: {
        if (n_rt != 1 || n->p.gemm.trans_a || r != 2)
            return false;
        if (n->n_in > 2 && n->in[2] >= 0) {
            const osp_value_t *cv = &g->values[n->in[2]];
            if (cv->rank >= 2 && cv->dims[0] != 1)
                return false;
        }
        return true;
    }
    case OSP_OP_MATMUL: {
        const osp_value_t *w = n->n_in > 1 && n->in[1] >= 0 ? &g->values[n->in[1]]
                                                            : NULL;
        return n_rt == 1 && r >= 2 && w && osp_value_is_const(w) && w->rank <= 2;
    }
    default:
        return false;
    }
}

/* Multiply-add FLOPs (2 per MAC) of a conv, Gemm or MatMul node for the
 * whole batch; 0 for other ops. */
static double node_flop(const osp_graph_t *g, const osp_node_t *n) {
    if (n->n_in < 2 || n->in[1] < 0 || n->n_out < 1 || n->out[0] < 0)
        return 0;
    const osp_value_t *w = &g->values[n->in[1]], *y = &g->values[n->out[0]];
    if (n->op == OSP_OP_CONV && w->rank >= 3) {
        double k = 1; /* MACs per output element: (C/group) x kernel */
        for (int d = 1; d < w->rank; d++)
            k *= (double)w->dims[d];
        return 2.0 * k * (double)osp_value_numel(y);
    }
    if ((n->op == OSP_OP_GEMM || n->op == OSP_OP_MATMUL) && n->in[0] >= 0) {
        const osp_value_t *x = &g->values[n->in[0]];
        if (x->rank < 1)
            return 0;
        double kdim = (double)x->dims[x->rank - 1];
        if (n->op == OSP_OP_GEMM && n->p.gemm.trans_a)
            kdim = (double)x->dims[0];
        return 2.0 * kdim * (double)osp_value_numel(y);
    }
    return 0;
}

/* Whether the load-time graph, specialised to the dims in key (batch B =
 * dim 0 of every input), computes each image independently. */
static bool graph_rowwise(const osp_engine_t *e, const int64_t *key, int64_t B,
                          bool any_cost, double *mflop_per_node) {
    const osp_graph_t *lg = e->g;
    for (int i = 0; i < lg->n_inputs; i++) {
        const osp_value_t *v = &lg->values[lg->inputs[i]];
        /* A declared fixed batch means the graph may rely on it. */
        if (e->param_input[i] || v->rank < 1 || v->dims[0] >= 0 ||
            key[i * OSP_KEY_STRIDE] != B)
            return false;
    }
    osp_graph_t *g = osp_graph_clone(lg);
    if (!g)
        return false;
    bool ok = true;
    for (int i = 0; i < g->n_inputs; i++) {
        osp_value_t *v = &g->values[g->inputs[i]];
        for (int d = 0; d < v->rank; d++)
            v->dims[d] = key[i * OSP_KEY_STRIDE + d];
    }
    osp_err_t err = {0};
    if (osp_infer_shapes(g, &err) < 0 ||
        osp_fold_constants(g, OSP_FOLD_MAX_BYTES, &err) < 0)
        ok = false;
    double flop = 0;
    int nodes = 0;
    for (int i = 0; ok && i < g->n_nodes; i++)
        if (g->nodes[i].op != OSP_OP_NONE) {
            ok = node_rowwise(g, &g->nodes[i], B);
            flop += node_flop(g, &g->nodes[i]);
            nodes++;
        }
    if (ok && nodes > 0) {
        *mflop_per_node = flop / 1e6 / (double)B / nodes;
        ok = any_cost || *mflop_per_node < OSP_LANES_MAX_MFLOP_PER_NODE;
    }
    for (int i = 0; ok && i < g->n_outputs; i++) {
        const osp_value_t *v = &g->values[g->outputs[i]];
        ok = !osp_value_is_const(v) && v->rank >= 1 && v->dims[0] == B;
    }
    osp_graph_destroy(g);
    return ok;
}

/* ---- lane engines and workers ------------------------------------------ */

/* A one-thread engine on e's graph; its reordered weights go to e's cache. */
static osp_engine_t *lane_engine(osp_engine_t *e, osp_err_t *err) {
    osp_engine_t *l = osp__engine_borrow(e, 1, err);
    if (l)
        l->wowner = e;
    return l;
}

/* Lane idx's share of the current run: takes chunks of images from the
 * shared counter until none are left, runs each through its plan for that
 * many images and copies the output rows into place. In warm-up mode it
 * runs each of its plans once on image 0 instead. */
static void lane_run(osp__lanes_t *ls, int idx) {
    osp_lane_t *ln = &ls->lane[idx];
    osp_lkey_t *k = ls->cur;
    const osp_graph_t *g = ls->e->g;
    int ni = g->n_inputs, no = g->n_outputs;
    ln->rc = 0;
    for (int warm_kind = 0;; warm_kind++) {
        int64_t first;
        int kind;
        if (ls->warm) {
            if (warm_kind > 1 || !k->plan[warm_kind][idx])
                break;
            first = 0;
            kind = warm_kind;
        } else {
            int c = atomic_fetch_add_explicit(&ls->next, 1, memory_order_relaxed);
            first = (int64_t)c * k->chunk;
            if (first >= k->batch)
                break;
            kind = first + k->chunk > k->batch;
        }
        int64_t rows = kind ? 1 : k->chunk;
        osp_tensor_t *tin = &k->tin[kind][idx * ni];
        osp_tensor_t *tout = &k->tout[kind][idx * no];
        for (int i = 0; i < ni; i++)
            tin[i].data =
                (uint8_t *)ls->cur_in[i].data + (size_t)first * k->in_row[i];
        ln->rc = osp__plan_run(ln->eng, k->plan[kind][idx], tin, tout, &ln->err);
        if (ln->rc < 0) {
            /* Stop every lane: the run has failed. */
            atomic_store_explicit(&ls->next, (int)k->batch, memory_order_relaxed);
            return;
        }
        for (int i = 0; i < no; i++)
            memcpy((uint8_t *)k->out[i] + (size_t)first * k->out_row[i],
                   tout[i].data, (size_t)rows * k->out_row[i]);
    }
}

/* Runs the current job (ls->cur, ls->cur_in) on all of its lanes: lane 0
 * here, the others on their workers. */
static int lanes_exec(osp__lanes_t *ls, osp_lkey_t *k,
                      const osp_tensor_t *inputs, bool warm, osp_err_t *err) {
    pthread_mutex_lock(&ls->mu);
    ls->cur = k;
    ls->cur_in = inputs;
    ls->warm = warm;
    atomic_store_explicit(&ls->next, 0, memory_order_relaxed);
    ls->active = k->n_lanes;
    ls->pending = k->n_lanes - 1;
    ls->gen++;
    pthread_cond_broadcast(&ls->start);
    pthread_mutex_unlock(&ls->mu);
    osp__set_threads(1);
    lane_run(ls, 0);
    pthread_mutex_lock(&ls->mu);
    while (ls->pending > 0)
        pthread_cond_wait(&ls->done, &ls->mu);
    pthread_mutex_unlock(&ls->mu);
    for (int l = 0; l < k->n_lanes; l++)
        if (ls->lane[l].rc < 0)
            return osp_err_set(err, ls->lane[l].rc, "lane %d: %s", l,
                               ls->lane[l].err.msg);
    return 0;
}

typedef struct worker_arg_s {
    osp__lanes_t *ls;
    int idx;
} worker_arg_t;

static void *worker(void *arg) {
    osp__lanes_t *ls = ((worker_arg_t *)arg)->ls;
    int idx = ((worker_arg_t *)arg)->idx;
    free(arg);
    osp_lane_t *ln = &ls->lane[idx];
    (void)ln;
    /* This thread's own OpenMP budget: oneDNN sizes parallel_nd by it. */
    osp__set_threads(1);
    pthread_mutex_lock(&ls->mu);
    for (;;) {
        while (!ls->quit && ls->gen == ln->seen)
            pthread_cond_wait(&ls->start, &ls->mu);
        if (ls->quit)
            break;
        ln->seen = ls->gen;
        bool mine = idx < ls->active;
        pthread_mutex_unlock(&ls->mu);
        if (mine)
            lane_run(ls, idx);
        pthread_mutex_lock(&ls->mu);
        if (mine && --ls->pending == 0)
            pthread_cond_signal(&ls->done);
    }
    pthread_mutex_unlock(&ls->mu);
    return NULL;
}

/* Makes sure lanes 0..n-1 exist with their workers running. */
static int lanes_grow(osp__lanes_t *ls, int n, osp_err_t *err) {
    if (!ls->sync_ok) {
        if (pthread_mutex_init(&ls->mu, NULL) != 0)
            return osp_err_set(err, OSP_ENOMEM, "engine: lanes: mutex");
        if (pthread_cond_init(&ls->start, NULL) != 0) {
            pthread_mutex_destroy(&ls->mu);
            return osp_err_set(err, OSP_ENOMEM, "engine: lanes: condvar");
        }
        if (pthread_cond_init(&ls->done, NULL) != 0) {
            pthread_cond_destroy(&ls->start);
            pthread_mutex_destroy(&ls->mu);
            return osp_err_set(err, OSP_ENOMEM, "engine: lanes: condvar");
        }
        ls->sync_ok = true;
    }
    while (ls->n_lanes < n) {
        osp_lane_t *ln = &ls->lane[ls->n_lanes];
        ln->eng = lane_engine(ls->e, err);
        if (!ln->eng)
            return err ? err->code : OSP_ENOMEM;
        if (ls->n_lanes > 0) {
            worker_arg_t *a = malloc(sizeof *a);
            if (!a)
                return osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
            a->ls = ls;
            a->idx = ls->n_lanes;
            /* Set before the thread starts: a run may bump gen before the
             * worker first takes the lock, and must not be missed. Only
             * this (the caller's) thread writes gen. */
            ln->seen = ls->gen;
            if (pthread_create(&ln->tid, NULL, worker, a) != 0) {
                free(a);
                osp_engine_destroy(ln->eng);
                ln->eng = NULL;
                return osp_err_set(err, OSP_ENOMEM,
                                   "engine: cannot start a lane thread");
            }
            ln->started = true;
        }
        ls->n_lanes++;
    }
    return 0;
}

/* ---- keys -------------------------------------------------------------- */

static void lkey_fini(osp_lkey_t *k, int n_out) {
    free(k->key);
    for (int j = 0; j < 2; j++) {
        free(k->tin[j]);
        free(k->tout[j]);
    }
    free(k->in_row);
    free(k->out_row);
    if (k->out)
        for (int i = 0; i < n_out; i++)
            free(k->out[i]);
    free(k->out);
    free(k->describe);
}

/* Builds the lanes' plans of a split key (chunk-sized, plus batch 1 for an
 * odd last image), the per-lane tensors and the whole-batch outputs. */
static int lkey_build(osp__lanes_t *ls, osp_lkey_t *k, osp_err_t *err) {
    osp_engine_t *e = ls->e;
    const osp_graph_t *g = e->g;
    int ni = g->n_inputs, no = g->n_outputs;
    size_t kn = (size_t)ni * OSP_KEY_STRIDE;
    int64_t *sub = malloc(kn * sizeof *sub);
    bool ok = sub != NULL;
    for (int j = 0; j < 2; j++) {
        k->tin[j] = calloc((size_t)k->n_lanes * (size_t)ni, sizeof *k->tin[j]);
        k->tout[j] = calloc((size_t)k->n_lanes * (size_t)no, sizeof *k->tout[j]);
        ok = ok && k->tin[j] && k->tout[j];
    }
    k->in_row = calloc((size_t)ni, sizeof *k->in_row);
    k->out_row = calloc((size_t)no, sizeof *k->out_row);
    k->out = calloc((size_t)no, sizeof *k->out);
    if (!ok || !k->in_row || !k->out_row || !k->out) {
        free(sub);
        return osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    }
    int rc = lanes_grow(ls, k->n_lanes, err);
    for (int j = 0; rc == 0 && j < 2; j++) {
        int64_t rows = j ? 1 : k->chunk;
        if (j && k->batch % k->chunk == 0)
            break;
        memcpy(sub, k->key, kn * sizeof *sub);
        for (int i = 0; i < ni; i++)
            sub[i * OSP_KEY_STRIDE] = rows;
        /* osp__plan_get sets the lane's OpenMP budget (1) before building. */
        for (int l = 0; rc == 0 && l < k->n_lanes; l++)
            rc = osp__plan_get(ls->lane[l].eng, sub, &k->plan[j][l], err);
        if (rc < 0)
            break;
        const osp_graph_t *pg = k->plan[j][0]->g;
        for (int i = 0; i < ni; i++) {
            const osp_value_t *v = &pg->values[pg->inputs[i]];
            k->in_row[i] = osp_value_numel(v) / (size_t)rows *
                           osp_dtype_size(v->dtype);
            for (int l = 0; l < k->n_lanes; l++) {
                osp_tensor_t *t = &k->tin[j][l * ni + i];
                *t = e->inputs[i];
                t->rank = v->rank;
                memcpy(t->dims, v->dims, sizeof(int64_t) * (size_t)v->rank);
            }
        }
        for (int i = 0; i < no; i++) {
            const osp_value_t *v = &pg->values[pg->outputs[i]];
            k->out_row[i] = osp_value_numel(v) / (size_t)rows *
                            osp_dtype_size(v->dtype);
        }
    }
    free(sub);
    if (rc < 0)
        return rc;
    for (int i = 0; i < no; i++) {
        size_t bytes = k->out_row[i] * (size_t)k->batch;
        k->out[i] = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
        if (!k->out[i])
            return osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    }
    /* Warm-up: every lane runs each of its plans once on zero images on
     * its own thread now, so that per-thread first-use setup (oneDNN,
     * OpenMP) and the arenas' page faults happen here and not in a later
     * run, whichever lane that run's images happen to go to. */
    osp_tensor_t *zin = calloc((size_t)ni, sizeof *zin);
    rc = zin ? 0 : osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    for (int i = 0; rc == 0 && i < ni; i++) {
        zin[i] = k->tin[0][i];
        size_t zb = k->in_row[i] * (size_t)k->chunk;
        if (!(zin[i].data = calloc(1, zb ? zb : 1)))
            rc = osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    }
    if (rc == 0)
        rc = lanes_exec(ls, k, zin, true, err);
    for (int i = 0; zin && i < ni; i++)
        free(zin[i].data);
    free(zin);
    return rc;
}

static char *lkey_describe(const osp__lanes_t *ls, const osp_lkey_t *k) {
    const char *inner = k->plan[0][0]->describe ? k->plan[0][0]->describe : "";
    size_t cap = strlen(inner) + 512;
    char *s = malloc(cap);
    if (s)
        snprintf(s, cap,
                 "batch %lld split into %d lanes (%lld image%s at a time), one "
                 "thread each, %d threads in all (%.1f MFLOP per node per "
                 "image; tuning batch_split off: intra-op threads); lane "
                 "0's batch-%lld plan:\n%s",
                 (long long)k->batch, k->n_lanes, (long long)k->chunk,
                 k->chunk > 1 ? "s" : "", ls->e->threads, k->mflop_per_node,
                 (long long)k->chunk, inner);
    return s;
}

/* Finds or creates the entry for key; decides whether it splits. */
static int lkey_get(osp__lanes_t *ls, const int64_t *key, osp_lkey_t **out,
                    osp_err_t *err) {
    osp_engine_t *e = ls->e;
    size_t kn = (size_t)e->g->n_inputs * OSP_KEY_STRIDE;
    for (int i = 0; i < ls->n_keys; i++)
        if (!memcmp(ls->keys[i].key, key, kn * sizeof *key)) {
            *out = &ls->keys[i];
            return 0;
        }
    osp_lkey_t *grown = osp_grow(ls->keys, &ls->cap_keys, ls->n_keys,
                                 sizeof *grown, 8);
    if (!grown)
        return osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    ls->keys = grown;
    osp_lkey_t *k = &ls->keys[ls->n_keys];
    memset(k, 0, sizeof *k);
    k->key = malloc(kn * sizeof *key);
    if (!k->key)
        return osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    memcpy(k->key, key, kn * sizeof *key);
    ls->n_keys++;
    *out = k;

    int64_t B = e->g->n_inputs > 0 ? key[0] : 0;
    int T = e->threads < OSP_LANES_MAX ? e->threads : OSP_LANES_MAX;
    if (T > B)
        T = (int)B;
    if (ls->mode == OSP_TUNE_OFF || T < 2)
        return 0;
    bool forced = ls->mode == OSP_TUNE_ON;
    int64_t big = (B + T - 1) / T;
    if (!forced && (double)big * T > OSP_LANES_MAX_IMBALANCE * (double)B)
        return 0;
    double mflop = 0;
    bool rowwise = graph_rowwise(e, key, B, forced, &mflop);
    if (!rowwise)
        return 0;
    k->n_lanes = T;
    k->batch = B;
    /* Two images at a time when each lane still gets at least two chunks:
     * one-thread CPU time per image of MobileNetV2 is 5% lower at batch 2
     * than at batch 1 (weights, e.g. the 5 MB classifier, are read once
     * per chunk), while single images balance small batches better. */
    k->chunk = B >= 4 * (int64_t)T ? OSP_LANES_CHUNK : 1;
    k->mflop_per_node = mflop;
    osp_err_t lerr = {0};
    int rc = lkey_build(ls, k, &lerr);
    if (rc == OSP_ENOMEM)
        return osp_err_set(err, rc, "%s", lerr.msg);
    if (rc < 0) {
        /* A lane plan the graph cannot be specialised to (e.g. a fixed
         * Reshape): run this batch whole, as without lanes. */
        k->n_lanes = 0;
        return 0;
    }
    k->split = true;
    k->describe = lkey_describe(ls, k);
    if (e->opts.verbose && k->describe)
        fputs(k->describe, stderr);
    return 0;
}

/* ---- API (engine_int.h) ------------------------------------------------- */

osp__lanes_t *osp__lanes_create(osp_engine_t *e) {
    osp__lanes_t *ls = calloc(1, sizeof *ls);
    if (!ls)
        return NULL;
    ls->e = e;
    ls->mode = e->opts.tuning.batch_split;
    return ls;
}

void osp__lanes_destroy(osp__lanes_t *ls) {
    if (!ls)
        return;
    if (ls->sync_ok) {
        pthread_mutex_lock(&ls->mu);
        ls->quit = true;
        pthread_cond_broadcast(&ls->start);
        pthread_mutex_unlock(&ls->mu);
    }
    for (int l = 0; l < ls->n_lanes; l++)
        if (ls->lane[l].started)
            pthread_join(ls->lane[l].tid, NULL);
    for (int i = 0; i < ls->n_keys; i++)
        lkey_fini(&ls->keys[i], ls->e->g->n_outputs);
    free(ls->keys);
    for (int l = 0; l < ls->n_lanes; l++)
        osp_engine_destroy(ls->lane[l].eng);
    if (ls->sync_ok) {
        pthread_cond_destroy(&ls->start);
        pthread_cond_destroy(&ls->done);
        pthread_mutex_destroy(&ls->mu);
    }
    free(ls);
}

int osp__lanes_prepare(osp_engine_t *e, const int64_t *key, osp_err_t *err) {
    if (!e->lanes && !(e->lanes = osp__lanes_create(e)))
        return osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    osp_lkey_t *k = NULL;
    int rc = lkey_get(e->lanes, key, &k, err);
    if (rc < 0)
        return rc;
    if (!k->split)
        return 1;
    e->lanes_describe = k->describe;
    return 0;
}

int osp__lanes_run(osp_engine_t *e, const int64_t *key,
                   const osp_tensor_t *inputs, osp_tensor_t *outputs,
                   osp_err_t *err) {
    int rc = osp__lanes_prepare(e, key, err);
    if (rc != 0)
        return rc;
    osp__lanes_t *ls = e->lanes;
    osp_lkey_t *k = NULL;
    lkey_get(ls, key, &k, err); /* found: no allocation, cannot fail */
    for (int i = 0; i < e->g->n_inputs; i++)
        if (osp_tensor_numel(&inputs[i]) * osp_dtype_size(inputs[i].dtype) !=
            k->in_row[i] * (size_t)k->batch)
            return osp_err_set(err, OSP_EINTERNAL,
                               "engine: lanes: input %d size mismatch", i);
    if ((rc = lanes_exec(ls, k, inputs, false, err)) < 0)
        return rc;
    const osp_graph_t *pg = k->plan[0][0]->g;
    for (int i = 0; i < e->g->n_outputs; i++) {
        const osp_value_t *v = &pg->values[pg->outputs[i]];
        osp_tensor_t *t = &outputs[i];
        memset(t, 0, sizeof *t);
        t->name = v->name;
        t->dtype = v->dtype;
        t->rank = v->rank;
        memcpy(t->dims, v->dims, sizeof(int64_t) * (size_t)v->rank);
        t->dims[0] = k->batch;
        t->data = k->out[i];
    }
    return 0;
}
