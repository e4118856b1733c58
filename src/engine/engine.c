/* engine.c — the public engine API (include/osprey/engine.h): the names of
 * its option enums (one table each, from engine.h's X-macro lists), loading
 * and sniffing model files, resolving precision and threads, the plan cache
 * and osp_engine_run. The planner and executor live in plan/ (plan.c builds
 * and runs a plan); see docs/engine.md for the design. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "engine/plan/plan_int.h"
#include "engine/import/onnx_import.h"
#include "engine/import/tflite_import.h"
#include "engine/passes/passes.h"

/* Model files larger than this are refused before reading them: the
 * largest CNN classifiers are a few hundred MB, and protobuf caps ONNX
 * files without external data at 2 GiB anyway. */
#define OSP_MODEL_MAX_BYTES ((size_t)2 << 30)

/* ---- enum names: one table per enum, from its X-macro list (engine.h) -- */

#define OSP__NAME(n, s) s,
static const char *const prec_names[] = {OSP_PRECISION_MAP(OSP__NAME)};
static const char *const tune_names[] = {OSP_TUNE_MAP(OSP__NAME)};
static const char *const layout_names[] = {OSP_CONV_LAYOUT_MAP(OSP__NAME)};
static const char *const requant_names[] = {OSP_REQUANT_MAP(OSP__NAME)};
static const char *const isa_names[] = {OSP_ISA_MAP(OSP__NAME)};
#undef OSP__NAME

/* names[i], or "?" when i is not one of the n values. */
static const char *name_of(const char *const *names, int n, int i) {
    return (unsigned)i < (unsigned)n ? names[i] : "?";
}

/* Index of s in names[0..n), or -1 (also for s NULL). */
static int name_index(const char *const *names, int n, const char *s) {
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

const char *osp_precision_name(osp_precision_t p) {
    return name_of(prec_names, OSP_PREC_COUNT, (int)p);
}

int osp_precision_parse(const char *s, osp_precision_t *out) {
    int i = name_index(prec_names, OSP_PREC_COUNT, s);
    if (i < 0)
        return OSP_EINVAL;
    *out = (osp_precision_t)i;
    return 0;
}

const char *osp_tune_name(osp_tune_t t) {
    return name_of(tune_names, OSP_TUNE_COUNT, (int)t);
}

int osp_tune_parse(const char *s, osp_tune_t *out) {
    int i = name_index(tune_names, OSP_TUNE_COUNT, s);
    /* 0/1: how the switches were spelled as OSP_ENGINE_* variables */
    if (i < 0 && s && (!strcmp(s, "0") || !strcmp(s, "1")))
        i = s[0] == '0' ? OSP_TUNE_OFF : OSP_TUNE_ON;
    if (i < 0)
        return OSP_EINVAL;
    *out = (osp_tune_t)i;
    return 0;
}

const char *osp_conv_layout_name(osp_conv_layout_t l) {
    return name_of(layout_names, OSP_CONV_LAYOUT_COUNT, (int)l);
}

int osp_conv_layout_parse(const char *s, osp_conv_layout_t *out) {
    int i = name_index(layout_names, OSP_CONV_LAYOUT_COUNT, s);
    if (i < 0)
        return OSP_EINVAL;
    *out = (osp_conv_layout_t)i;
    return 0;
}

const char *osp_requant_name(osp_requant_t r) {
    return name_of(requant_names, OSP_REQUANT_COUNT, (int)r);
}

int osp_requant_parse(const char *s, osp_requant_t *out) {
    int i = name_index(requant_names, OSP_REQUANT_COUNT, s);
    if (i < 0)
        return OSP_EINVAL;
    *out = (osp_requant_t)i;
    return 0;
}

const char *osp_isa_name(osp_isa_t isa) {
    return name_of(isa_names, OSP_ISA_COUNT, (int)isa);
}

int osp_isa_parse(const char *s, osp_isa_t *out) {
    int i = name_index(isa_names, OSP_ISA_COUNT, s);
    if (i < 0)
        return OSP_EINVAL;
    *out = (osp_isa_t)i;
    return 0;
}

static bool tuning_valid(const osp_engine_tuning_t *t) {
    const osp_tune_t sw[] = {t->winograd, t->int8_dnnl, t->q8_dw, t->q8_pw,
                             t->q8_tile, t->fcq, t->batch_split, t->bind};
    for (size_t i = 0; i < OSP_ARRAY_LEN(sw); i++)
        if ((unsigned)sw[i] >= OSP_TUNE_COUNT)
            return false;
    return (unsigned)t->conv_layout < OSP_CONV_LAYOUT_COUNT &&
           (unsigned)t->int8_requant < OSP_REQUANT_COUNT &&
           (unsigned)t->max_isa < OSP_ISA_COUNT &&
           t->q8_tile_kb >= 0 && t->q8_tile_kb <= OSP_TUNING_Q8_TILE_KB_MAX;
}

void osp_engine_opts_init(osp_engine_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->precision = OSP_PREC_AUTO;
}

static void fill_tensor(osp_tensor_t *t, const osp_value_t *v) {
    memset(t, 0, sizeof *t);
    t->name = v->name;
    t->dtype = v->dtype;
    t->rank = v->rank < 0 ? 0 : v->rank;
    for (int i = 0; i < t->rank; i++)
        t->dims[i] = v->dims[i];
}

void osp_engine_destroy(osp_engine_t *e) {
    if (!e)
        return;
    osp__lanes_destroy(e->lanes);
    for (int i = 0; i < e->n_plans && e->profile; i++) {
        char *d = osp__plan_describe(e, e->plans[i]);
        if (d)
            fputs(d, stderr);
        free(d);
    }
    for (int i = 0; i < e->n_plans; i++)
        osp__plan_destroy(e->plans[i]);
    free(e->plans);
    for (int i = 0; i < e->n_wcache; i++) {
        free(e->wcache[i].data);
        dnnl_memory_desc_destroy(e->wcache[i].md);
    }
    free(e->wcache);
    free(e->arena);
    free(e->scratch);
    if (e->stream)
        dnnl_stream_destroy(e->stream);
    if (e->dnnl_eng)
        dnnl_engine_destroy(e->dnnl_eng);
    free(e->tune_note);
    if (!e->borrowed) { /* lane and probe engines borrow these */
        free(e->inputs);
        free(e->outputs);
        free(e->param_input);
        osp_graph_destroy(e->g);
    }
    free(e);
}

osp_engine_t *osp__engine_borrow(osp_engine_t *e, int threads, osp_err_t *err) {
    osp_engine_t *b = calloc(1, sizeof *b);
    if (!b) {
        osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
        return NULL;
    }
    b->borrowed = true;
    b->tuned = true; /* it follows e's choices, or the caller sets them */
    b->g = e->g;
    b->opts = e->opts;
    b->opts.threads = threads;
    b->opts.verbose = 0;
    b->prec = e->prec;
    b->threads = threads;
    b->inputs = e->inputs;
    b->outputs = e->outputs;
    b->param_input = e->param_input;
    b->conv_blocked = e->conv_blocked;
    b->conv_winograd = e->conv_winograd;
    b->int8_dnnl = e->int8_dnnl;
    if (dnnl_engine_create(&b->dnnl_eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&b->stream, b->dnnl_eng, dnnl_stream_default_flags) !=
            dnnl_success) {
        osp_engine_destroy(b);
        osp_err_set(err, OSP_EINTERNAL, "engine: cannot create a oneDNN stream");
        return NULL;
    }
    return b;
}

static void *alloc_aligned(size_t bytes) {
    size_t a = 64;
    return aligned_alloc(a, (bytes + a - 1) / a * a + a);
}

int osp__engine_reserve(osp_engine_t *e, size_t arena_bytes,
                        size_t scratch_bytes, osp_err_t *err) {
    if (arena_bytes > e->arena_bytes || !e->arena) {
        uint8_t *a = alloc_aligned(arena_bytes);
        if (!a)
            return osp_err_set(err, OSP_ENOMEM,
                               "engine: cannot allocate a %zu-byte activation "
                               "arena", arena_bytes);
        free(e->arena);
        e->arena = a;
        e->arena_bytes = arena_bytes;
        e->arena_gen++;
    }
    if (scratch_bytes > e->scratch_bytes) {
        void *s = alloc_aligned(scratch_bytes);
        if (!s)
            return osp_err_set(err, OSP_ENOMEM,
                               "engine: cannot allocate a %zu-byte scratchpad",
                               scratch_bytes);
        free(e->scratch);
        e->scratch = s;
        e->scratch_bytes = scratch_bytes;
        e->arena_gen++;
    }
    return 0;
}

/* True when graph input v is an integer tensor read only as a shape
 * parameter (the positions whose values decide output shapes). */
static bool is_shape_param(const osp_graph_t *g, int v) {
    const osp_value_t *val = &g->values[v];
    if (val->dtype != OSP_DT_S64 && val->dtype != OSP_DT_S32)
        return false;
    int uses = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            if (n->in[j] != v)
                continue;
            bool param = j == 1 && (n->op == OSP_OP_RESHAPE ||
                                    n->op == OSP_OP_SQUEEZE ||
                                    n->op == OSP_OP_UNSQUEEZE ||
                                    n->op == OSP_OP_PAD ||
                                    n->op == OSP_OP_REDUCE_MEAN);
            if (!param)
                return false;
            uses++;
        }
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return false;
    return uses > 0;
}

osp_engine_t *osp__engine_from_graph(osp_graph_t *g,
                                    const osp_engine_opts_t *opts,
                                    osp_err_t *err) {
    osp_engine_opts_t def;
    if (!opts) {
        osp_engine_opts_init(&def);
        opts = &def;
    }
    osp_engine_t *e = calloc(1, sizeof *e);
    if (!e) {
        osp_graph_destroy(g);
        osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
        return NULL;
    }
    e->g = g;
    e->opts = *opts;
    const osp_engine_tuning_t *tu = &opts->tuning;
    e->profile = tu->profile;
    e->conv_winograd = tu->winograd != OSP_TUNE_OFF;
    e->int8_dnnl = tu->int8_dnnl != OSP_TUNE_OFF;
    if (!g || g->n_inputs < 1 || g->n_outputs < 1) {
        osp_err_set(err, OSP_EINVAL, "engine: the graph has no inputs or outputs");
        goto fail;
    }
    if ((unsigned)opts->precision >= OSP_PREC_COUNT || opts->threads < 0 ||
        opts->max_batch < 0) {
        osp_err_set(err, OSP_EINVAL, "engine: invalid options");
        goto fail;
    }
    if (!tuning_valid(tu)) {
        osp_err_set(err, OSP_EINVAL, "engine: invalid tuning options (a "
                    "value out of its enum, or q8_tile_kb outside 0..%d)",
                    OSP_TUNING_Q8_TILE_KB_MAX);
        goto fail;
    }
    /* before anything below asks the CPU's capabilities or uses oneDNN */
    if (osp__cpu_isa_apply(tu->max_isa, err) < 0)
        goto fail;
    /* Starting points; where a knob is AUTO the layout, Winograd and the
     * int8 kernels are measured before the first plan (tune.c). Blocked
     * (nChw16c) is a candidate only on AVX-512: its 16-channel blocks are
     * AVX-512's, and below it oneDNN has only reference kernels for them. */
    e->conv_blocked = tu->conv_layout == OSP_CONV_LAYOUT_BLOCKED ||
                      (tu->conv_layout == OSP_CONV_LAYOUT_AUTO &&
                       osp__cpu_caps()->avx512);
    if (g->quantized) {
        /* Quantized models run in their own integer arithmetic (TFLite
         * requantization semantics). fp32/bf16 are served by dequantizing
         * at load (osp_engine_load_buffer, pass_dequant.c), which clears
         * g->quantized; a hand-built quantized graph gets int8. */
        if (opts->precision != OSP_PREC_AUTO &&
            opts->precision != OSP_PREC_INT8) {
            osp_err_set(err, OSP_EUNSUPPORTED,
                        "engine: this is a quantized graph; precision %s "
                        "needs it dequantized at load (osp_engine_load)",
                        osp_precision_name(opts->precision));
            goto fail;
        }
        e->prec = OSP_PREC_INT8;
    } else switch (opts->precision) {
    case OSP_PREC_INT8:
        osp_err_set(err, OSP_EUNSUPPORTED,
                    "engine: int8 precision needs a quantized graph; load a "
                    "float model with calibration inputs (osp_engine_load) "
                    "to have it quantized");
        goto fail;
    case OSP_PREC_AUTO:
        /* bf16 only with native bf16 dot products under the ceiling:
         * without them oneDNN emulates bf16 (AVX-512) or, below AVX-512,
         * runs reference kernels (a classification took 210 s) */
        e->prec = osp__cpu_caps()->bf16 ? OSP_PREC_BF16 : OSP_PREC_FP32;
        break;
    default:
        e->prec = opts->precision;
        break;
    }
    e->threads = opts->threads > 0 ? opts->threads : osp_cpus_available();
    osp__set_threads(e->threads);
    if (dnnl_engine_create(&e->dnnl_eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&e->stream, e->dnnl_eng, dnnl_stream_default_flags) !=
            dnnl_success) {
        osp_err_set(err, OSP_EINTERNAL, "engine: cannot create a oneDNN CPU engine");
        goto fail;
    }
    e->inputs = calloc((size_t)g->n_inputs, sizeof *e->inputs);
    e->outputs = calloc((size_t)g->n_outputs, sizeof *e->outputs);
    if (!e->inputs || !e->outputs) {
        osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
        goto fail;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        const osp_value_t *v = &g->values[g->inputs[i]];
        if (v->rank < 0 || v->rank > OSP_MAX_RANK || v->dtype == OSP_DT_UNDEF) {
            osp_err_set(err, OSP_EUNSUPPORTED,
                        "engine: input %s has an unknown rank or dtype", v->name);
            goto fail;
        }
        fill_tensor(&e->inputs[i], v);
    }
    for (int i = 0; i < g->n_outputs; i++)
        fill_tensor(&e->outputs[i], &g->values[g->outputs[i]]);
    e->param_input = calloc((size_t)g->n_inputs, sizeof(bool));
    if (!e->param_input) {
        osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
        goto fail;
    }
    for (int i = 0; i < g->n_inputs; i++)
        e->param_input[i] = is_shape_param(g, g->inputs[i]);
    return e;
fail:
    osp_engine_destroy(e);
    return NULL;
}

osp_engine_t *osp_engine_load_buffer(const void *buf, size_t len,
                                     const char *name,
                                     const osp_engine_opts_t *opts,
                                     osp_err_t *err) {
    const char *what = name ? name : "model";
    const uint8_t *b = buf;
    if (!buf || len < 8) {
        osp_err_set(err, OSP_EFORMAT, "%s: %zu bytes is too short for a model",
                    what, len);
        return NULL;
    }
    /* FlatBuffers carry a file identifier at bytes 4..7; ONNX protobufs
     * cannot start with "....TFL3" as a valid ModelProto field sequence. */
    osp_graph_t *g = !memcmp(b + 4, "TFL3", 4) ? osp_tflite_import(buf, len, err)
                                               : osp_onnx_import(buf, len, err);
    if (!g) {
        osp_err_prefix(err, "%s", what);
        return NULL;
    }
    /* fp32/bf16 on a quantized model: run it on dequantized weights. */
    bool dequant = g->quantized && opts &&
                   (opts->precision == OSP_PREC_FP32 ||
                    opts->precision == OSP_PREC_BF16);
    if ((dequant && osp__pass_dequantize(g, err) < 0) ||
        osp__passes_load(g, err) < 0) {
        osp_err_prefix(err, "%s", what);
        osp_graph_destroy(g);
        return NULL;
    }
    /* int8 on a float model: post-training quantization from ranges
     * observed on the caller's calibration inputs (calibrate.c,
     * pass_quantize.c). */
    if (!g->quantized && opts && opts->precision == OSP_PREC_INT8) {
        osp__pass_qrange_t *r = malloc(sizeof *r * (size_t)(g->n_values ? g->n_values : 1));
        int rc = r ? osp__calibrate(g, opts, r, err)
                   : osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
        if (rc == 0)
            rc = osp__pass_quantize(g, r, g->n_values, err);
        free(r);
        if (rc < 0) {
            osp_err_prefix(err, "%s", what);
            osp_graph_destroy(g);
            return NULL;
        }
    }
    osp_engine_t *e = osp__engine_from_graph(g, opts, err);
    if (!e) {
        osp_err_prefix(err, "%s", what);
        return NULL;
    }
    e->dequantized = dequant;
    e->model_hash = osp__hash64(buf, len);
    if (e->opts.verbose)
        fprintf(stderr, "osprey engine: %s: %d nodes, precision %s, %d threads\n",
                what, e->g->n_nodes, osp_precision_name(e->prec), e->threads);
    return e;
}

osp_engine_t *osp_engine_load(const char *path, const osp_engine_opts_t *opts,
                              osp_err_t *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (osp_read_file(path, OSP_MODEL_MAX_BYTES, &buf, &len, err) < 0)
        return NULL;
    osp_engine_t *e = osp_engine_load_buffer(buf, len, path, opts, err);
    free(buf);
    return e;
}

int osp_engine_num_inputs(const osp_engine_t *e) { return e->g->n_inputs; }
int osp_engine_num_outputs(const osp_engine_t *e) { return e->g->n_outputs; }

const osp_tensor_t *osp_engine_input(const osp_engine_t *e, int i) {
    return i >= 0 && i < e->g->n_inputs ? &e->inputs[i] : NULL;
}

const osp_tensor_t *osp_engine_output(const osp_engine_t *e, int i) {
    return i >= 0 && i < e->g->n_outputs ? &e->outputs[i] : NULL;
}

bool osp_engine_output_is_probabilities(const osp_engine_t *e, int i) {
    if (!e || i < 0 || i >= e->g->n_outputs)
        return false;
    const osp_graph_t *g = e->g;
    int v = g->outputs[i];
    /* Walk back through ops that do not change the values' meaning. */
    for (int hops = 0; hops < 8 && v >= 0; hops++) {
        int p = g->values[v].producer;
        if (p < 0)
            return false;
        const osp_node_t *n = &g->nodes[p];
        switch (n->op) {
        case OSP_OP_SOFTMAX:
            return true;
        case OSP_OP_DEQUANTIZE: case OSP_OP_QUANTIZE: case OSP_OP_RESHAPE:
        case OSP_OP_FLATTEN: case OSP_OP_IDENTITY: case OSP_OP_SQUEEZE:
        case OSP_OP_TRANSPOSE:
            v = n->in[0];
            break;
        default:
            return false;
        }
    }
    return false;
}

osp_precision_t osp_engine_precision(const osp_engine_t *e) { return e->prec; }
int osp_engine_threads(const osp_engine_t *e) { return e->threads; }
osp_isa_t osp_engine_isa(const osp_engine_t *e) {
    (void)e; /* process-wide today (oneDNN's ceiling is) */
    return osp__cpu_caps()->isa;
}

/* Builds the cache key (dims of every input) from caller tensors, checking
 * them against the declared inputs. */
static int input_key(osp_engine_t *e, const osp_tensor_t *in, int n,
                     int64_t *key, osp_err_t *err) {
    if (n != e->g->n_inputs)
        return osp_err_set(err, OSP_EINVAL, "engine: %d inputs given, model has %d",
                           n, e->g->n_inputs);
    for (int i = 0; i < n; i++) {
        const osp_tensor_t *d = &e->inputs[i];
        if (in[i].dtype != d->dtype)
            return osp_err_set(err, OSP_EINVAL,
                               "engine: input %s: dtype %s, model wants %s",
                               d->name, osp_dtype_name(in[i].dtype),
                               osp_dtype_name(d->dtype));
        if (in[i].rank != d->rank)
            return osp_err_set(err, OSP_ESHAPE,
                               "engine: input %s: rank %d, model wants %d",
                               d->name, in[i].rank, d->rank);
        if (!in[i].data && osp_tensor_numel(&in[i]) > 0)
            return osp_err_set(err, OSP_EINVAL, "engine: input %s: no data",
                               d->name);
        for (int k = 0; k < d->rank; k++) {
            if (in[i].dims[k] == 0)
                return osp_err_set(err, OSP_EUNSUPPORTED,
                                   "engine: input %s: empty tensors (dim %d "
                                   "is 0) are not supported",
                                   d->name, k);
            if (in[i].dims[k] < 0 ||
                (d->dims[k] >= 0 && in[i].dims[k] != d->dims[k]))
                return osp_err_set(err, OSP_ESHAPE,
                                   "engine: input %s: dim %d is %lld, model "
                                   "wants %lld",
                                   d->name, k, (long long)in[i].dims[k],
                                   (long long)d->dims[k]);
            key[i * OSP_KEY_STRIDE + k] = in[i].dims[k];
        }
        if (e->param_input[i]) {
            size_t count = osp_tensor_numel(&in[i]);
            if (count > OSP_KEY_PARAM_MAX)
                return osp_err_set(err, OSP_EUNSUPPORTED,
                                   "engine: input %s: a shape parameter with "
                                   "%zu values (at most %d)",
                                   d->name, count, OSP_KEY_PARAM_MAX);
            int64_t *vals = key + i * OSP_KEY_STRIDE + OSP_MAX_RANK;
            for (size_t k = 0; k < count; k++)
                vals[k] = in[i].dtype == OSP_DT_S32
                              ? ((const int32_t *)in[i].data)[k]
                              : ((const int64_t *)in[i].data)[k];
        }
        if (e->opts.max_batch > 0 && d->rank > 0 &&
            in[i].dims[0] > e->opts.max_batch)
            return osp_err_set(err, OSP_ELIMIT,
                               "engine: input %s: batch %lld exceeds max_batch %d",
                               d->name, (long long)in[i].dims[0],
                               e->opts.max_batch);
    }
    return 0;
}

/* Makes p the engine's current plan (for osp_engine_describe). */
static void set_last(osp_engine_t *e, osp__plan_t *p) {
    /* No allocation here: runs alternate between cached plans. */
    e->last = p;
    e->lanes_describe = NULL;
}

int osp_engine_run(osp_engine_t *e, const osp_tensor_t *inputs, int n_inputs,
                   osp_tensor_t *outputs, int n_outputs, osp_err_t *err) {
    if (!e || (!inputs && n_inputs) || (!outputs && n_outputs))
        return osp_err_set(err, OSP_EINVAL, "engine: invalid arguments");
    if (n_outputs != e->g->n_outputs)
        return osp_err_set(err, OSP_EINVAL,
                           "engine: %d outputs requested, model has %d",
                           n_outputs, e->g->n_outputs);
    int64_t key_small[4 * OSP_KEY_STRIDE];
    int64_t *key = key_small;
    size_t kn = (size_t)e->g->n_inputs * OSP_KEY_STRIDE;
    if (kn > OSP_ARRAY_LEN(key_small)) {
        /* Only models with more than four inputs pay for this. */
        key = calloc(kn, sizeof *key);
        if (!key)
            return osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    } else {
        memset(key, 0, sizeof key_small);
    }
    int rc = input_key(e, inputs, n_inputs, key, err);
    osp__plan_t *p = NULL;
    if (rc == 0 && !e->tuned) /* the machine's choices, before any plan */
        rc = osp__tune(e, key, err);
    if (rc == 0) /* a batch split over threads (lanes.c)? */
        rc = osp__lanes_run(e, key, inputs, outputs, err);
    if (rc <= 0) {
        if (key != key_small)
            free(key);
        return rc;
    }
    rc = osp__plan_get(e, key, &p, err);
    if (key != key_small)
        free(key);
    if (rc < 0)
        return rc;
    set_last(e, p);
    osp__set_threads(e->threads);
    osp__team_bind_t bind;
    uint64_t t0 = osp_now_ns();
    osp__team_bind_begin(e->threads, t0 - e->last_run_end_ns,
                         e->opts.tuning.bind, &bind);
    rc = osp__plan_run(e, p, inputs, outputs, err);
    osp__team_bind_end(&bind);
    e->last_run_end_ns = osp_now_ns();
    return rc;
}

int osp_engine_prepare(osp_engine_t *e, int batch, osp_err_t *err) {
    if (batch < 1)
        return osp_err_set(err, OSP_EINVAL, "engine: batch %d", batch);
    if (e->opts.max_batch > 0 && batch > e->opts.max_batch)
        return osp_err_set(err, OSP_ELIMIT, "engine: batch %d exceeds max_batch %d",
                           batch, e->opts.max_batch);
    for (int i = 0; i < e->g->n_inputs; i++)
        if (e->param_input[i])
            return osp_err_set(err, OSP_EINVAL,
                               "engine: input %s is a shape parameter; plans "
                               "for it are built when its values are known",
                               e->inputs[i].name);
    int64_t *key = calloc((size_t)e->g->n_inputs * OSP_KEY_STRIDE, sizeof *key);
    if (!key)
        return osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    int rc = 0;
    for (int i = 0; i < e->g->n_inputs && rc == 0; i++) {
        const osp_tensor_t *d = &e->inputs[i];
        for (int k = 0; k < d->rank; k++) {
            int64_t v = d->dims[k];
            if (k == 0 && v < 0)
                v = batch;
            if (v < 0) {
                rc = osp_err_set(err, OSP_EINVAL,
                                 "engine: input %s: dim %d is dynamic; only "
                                 "the batch can be prepared ahead",
                                 d->name, k);
                break;
            }
            key[i * OSP_KEY_STRIDE + k] = v;
        }
    }
    osp__plan_t *p = NULL;
    if (rc == 0 && !e->tuned)
        rc = osp__tune(e, key, err);
    if (rc == 0 && (rc = osp__lanes_prepare(e, key, err)) == 1) {
        rc = osp__plan_get(e, key, &p, err);
        if (rc == 0)
            set_last(e, p);
    }
    free(key);
    return rc;
}

const char *osp_engine_describe(const osp_engine_t *e) {
    if (!e)
        return "";
    if (e->lanes_describe)
        return e->lanes_describe;
    if (e->last && e->last->describe)
        return e->last->describe;
    return "no plan built yet (run or prepare the engine first)\n";
}
