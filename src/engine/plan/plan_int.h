/* plan_int.h — the compiled form of a plan: buffers, steps and the compile
 * context shared by the planner (plan/plan*.c), the per-op oneDNN
 * translators (dnnl/) and osprey's own int8 steps (int8/).
 *
 * A plan is a list of steps over buffers. A buffer is one physical tensor:
 * an activation in the arena (placed by memplan.c from its liveness), a view
 * of another buffer (Reshape/Flatten of plain data), or a constant (weights,
 * possibly reordered once into a oneDNN layout). An IR value has a primary
 * buffer (as its producer wrote it) and, when consumers need it in another
 * layout or dtype, converted copies made by reorder steps; the compile
 * context caches those so each conversion happens once. */
#ifndef OSPREY_ENGINE_PLAN_INT_H
#define OSPREY_ENGINE_PLAN_INT_H

#include "engine/engine_int.h"

#define OSP_STEP_MAX_ARGS 12 /* src, weights, bias, dst, sum, concat srcs... */
#define OSP_ALIGN_BYTES 64 /* cache line / AVX-512 vector */

typedef struct osp__plan_buf_s {
    bool has_md;            /* false for dtypes oneDNN lacks (s64, bool) */
    dnnl_memory_desc_t md;  /* physical layout when has_md */
    osp_dtype_t dtype;      /* physical element type */
    int rank;               /* logical shape, for reference kernels */
    int64_t dims[OSP_MAX_RANK];
    size_t bytes;
    int def, last;          /* first writing / last reading step; -1 = input */
    int alias_of;           /* view of that buffer (same bytes), or -1 */
    bool is_const;
    const void *cdata;      /* constant data (not owned) */
    bool is_output;         /* must survive to the end of the run */
    int owner;              /* IR value whose primary storage this is, or -1 */
    size_t offset;          /* arena offset (after memplan) */
    void *ptr;              /* resolved address */
    dnnl_memory_t mem;      /* created at finalize for oneDNN users */
} osp__plan_buf_t;

typedef enum osp__plan_step_kind_e {
    OSP_STEP_DNNL = 1, /* a oneDNN primitive */
    OSP_STEP_REF,      /* osp_ref_run_node */
    OSP_STEP_CONCAT,   /* memcpy concatenation of same-layout buffers */
    OSP_STEP_LUT,      /* 8-bit elementwise op by table lookup (q8_lut.c) */
    OSP_STEP_FN,       /* a plan-made loop over tin/tout (q8_f32conv.c) */
} osp__plan_step_kind_t;

typedef struct osp__plan_step_s {
    osp__plan_step_kind_t kind;
    int node;                /* plan-graph node, -1 for inserted reorders */
    dnnl_primitive_t prim;
    int n_args;
    int arg_kind[OSP_STEP_MAX_ARGS]; /* DNNL_ARG_* */
    int arg_buf[OSP_STEP_MAX_ARGS];
    dnnl_exec_arg_t exec[OSP_STEP_MAX_ARGS + 1]; /* + scratchpad */
    int n_exec;
    dnnl_memory_t scratch_mem;
    /* reference steps */
    int n_in, n_out;
    int *in_buf, *out_buf;   /* -1 = omitted optional input */
    osp_tensor_t *tin, *tout;
    size_t copy_outer;       /* CONCAT: repetitions of the per-input rows */
    size_t *copy_inner;      /* CONCAT: bytes per row of each input */
    uint8_t *lut;            /* LUT: 256 (one input) or 65536 (two inputs,
                                index in0 << 8 | in1) output bytes; owned */
    size_t lut_count;        /* LUT: elements (bytes) per buffer */
    void (*fn)(const struct osp__plan_step_s *s); /* FN: the loop */
    void *fn_ctx;            /* FN: its constants (malloc'd block; owned) */
    void (*fn_free)(void *ctx); /* FN: frees fn_ctx when it holds more than
                                   one block (NULL = free()) */
    char impl[96];           /* oneDNN implementation name or "ref" */
    char note[96];           /* fusions, conversions */
} osp__plan_step_t;

typedef struct osp__plan_conv_cache_s {
    int value;
    int buf;
} osp__plan_conv_cache_t;

struct osp__plan_s {
    int64_t *key;            /* input dims, n_inputs × OSP_MAX_RANK */
    osp_graph_t *g;          /* specialised graph (borrows weights) */
    osp__plan_buf_t *bufs;
    int n_bufs, cap_bufs;
    osp__plan_step_t *steps;
    int n_steps, cap_steps;
    int *in_buf, *out_buf;   /* per graph input / output */
    size_t arena_bytes;      /* this plan's need in the engine's arena */
    size_t sum_bytes;        /* what the arena would be without reuse */
    size_t scratch_bytes;    /* largest oneDNN scratchpad of its steps */
    unsigned arena_gen;      /* engine arena generation bound to */
    /* compile state */
    int *vbuf;               /* value → primary buffer (-1 = none yet) */
    int *uses_left;          /* remaining reads of each value */
    osp__plan_conv_cache_t *conv;  /* converted copies */
    int n_conv, cap_conv;
    double build_ms;
    char *describe;          /* osp__plan_describe at build (owned) */
    double *step_ms;         /* profiling: accumulated ms per step */
    int n_runs;
    dnnl_memory_desc_t *mds; /* every md the compile made (osp__md_keep) */
    int n_mds, cap_mds;
};

/* The context a per-op translator works in. */
typedef struct osp__plan_ctx_s {
    osp_engine_t *e;
    osp__plan_t *p;
    osp_graph_t *g;
    dnnl_data_type_t act_dt; /* dtype of the conv chain: f32 or bf16 */
    osp_err_t *err;
} osp__plan_ctx_t;

/* ---- helpers (plan_md.c, plan_buffers.c, plan_compile.c) --------------- */

dnnl_data_type_t osp__dnnl_dt(osp_dtype_t dt); /* dnnl_data_type_undef if none */
osp_dtype_t osp__osp_dt(dnnl_data_type_t dt);
const char *osp__dnnl_status(dnnl_status_t s);
/* Memory descriptors (oneDNN 3 handles) made by these helpers are kept by
 * the plan under compile and destroyed with it (osp__md_release): callers
 * never destroy them, and may store them in buffers. On failure *md is
 * NULL (a primitive descriptor made with it then fails). */
dnnl_memory_desc_t osp__md_keep(osp__plan_ctx_t *c, dnnl_memory_desc_t md);
void osp__md_release(osp__plan_t *p);
/* Plain row-major md for dims (rank 0 becomes {1}). Returns false when the
 * dtype has no oneDNN equivalent. */
bool osp__md_plain(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, int rank,
                   const int64_t *dims, dnnl_data_type_t dt);
/* Same dims/dtype, with format_tag_any. */
void osp__md_any(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, int rank,
                 const int64_t *dims, dnnl_data_type_t dt);
bool osp__md_tag(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, int rank,
                 const int64_t *dims, dnnl_data_type_t dt, dnnl_format_tag_t tag);
bool osp__md_strides(osp__plan_ctx_t *c, dnnl_memory_desc_t *md, int rank,
                     const int64_t *dims, dnnl_data_type_t dt,
                     const int64_t *strides);
/* A kept copy of pd's md `what` (dnnl_query_src_md, ...), or NULL. */
dnnl_memory_desc_t osp__md_query(osp__plan_ctx_t *c, const_dnnl_primitive_desc_t pd,
                                 dnnl_query_t what);
/* md with data type dt, same layout (md itself when it has dt already). */
bool osp__md_retype(osp__plan_ctx_t *c, dnnl_memory_desc_t *out,
                    const_dnnl_memory_desc_t md, dnnl_data_type_t dt);
/* Readers of an md (any handle, kept or not). */
dnnl_data_type_t osp__md_dt(const_dnnl_memory_desc_t md);
int osp__md_ndims(const_dnnl_memory_desc_t md);
const int64_t *osp__md_dims(const_dnnl_memory_desc_t md);

/* Physical md of value v as currently stored (its primary buffer, or the
 * constant's plain layout). Fails for values without an md. */
int osp__value_md(osp__plan_ctx_t *c, int v, dnnl_memory_desc_t *md);
/* Buffer holding value v in exactly layout md, inserting a reorder step (or,
 * for constants, reordering once at build time) when needed. */
int osp__buf_as(osp__plan_ctx_t *c, int v, const dnnl_memory_desc_t *md);
/* Buffer holding constant v in layout md, reading its bytes as src_md (NULL
 * = plain in the IR dtype); reordered once, shared via the weight cache. */
int osp__const_as(osp__plan_ctx_t *c, int v, const dnnl_memory_desc_t *src_md,
                  const dnnl_memory_desc_t *md);
/* A constant buffer over plan-made data (malloc'd; ownership passes to the
 * engine's weight cache, also on failure), e.g. per-channel post-op
 * operands. */
int osp__const_raw(osp__plan_ctx_t *c, void *data, const dnnl_memory_desc_t *md);
/* A constant buffer in layout md (zeroed, then filled by make(dst, ctx),
 * which returns 0 or an error) computed from constant data src, e.g.
 * osprey's Winograd weights: made once per engine and shared through the
 * weight cache under (src, md), like reordered weights. */
int osp__const_derived(osp__plan_ctx_t *c, const void *src, const dnnl_memory_desc_t *md,
                       int (*make)(void *dst, const void *ctx), const void *ctx);
/* A fresh activation buffer with layout md, owned by value v (or -1). */
int osp__buf_new(osp__plan_ctx_t *c, const dnnl_memory_desc_t *md, int v);
/* Appends a oneDNN step created from pd (the pd is consumed). args: pairs of
 * DNNL_ARG_* and buffer ids. The step's outputs must be listed as DNNL_ARG_DST
 * (written); every other argument is read. Returns the step index. */
int osp__step_dnnl(osp__plan_ctx_t *c, int node, dnnl_primitive_desc_t pd,
                   int n_args, const int *arg_kind, const int *arg_buf,
                   const char *note);
/* Plain row-major buffer of value v in its IR dtype. */
int osp__buf_plain(osp__plan_ctx_t *c, int v);
/* A view of buffer b (plain data) with the shape of value v, or with md when
 * md is non-NULL. */
int osp__buf_view(osp__plan_ctx_t *c, int b, int v, const dnnl_memory_desc_t *md);
/* Appends a reorder step from buffer src to buffer dst. */
int osp__step_reorder(osp__plan_ctx_t *c, int src, int dst, const char *note);
/* Appends a concat-by-memcpy step: out = for each of `outer` rows, the
 * inputs' rows of inner[i] bytes back to back. Takes ownership of nothing. */
int osp__step_concat(osp__plan_ctx_t *c, int node, int n_in, const int *in_buf,
                     int out_buf, size_t outer, const size_t *inner);
/* Appends a table-lookup step: out[i] = lut[in0[i]] (n_in 1) or
 * lut[in0[i] << 8 | in1[i]] (n_in 2) over `count` bytes. Takes ownership of
 * lut (also on failure). */
int osp__step_lut(osp__plan_ctx_t *c, int node, int n_in, const int *in_buf,
                  int out_buf, uint8_t *lut, size_t count);
/* Appends a plan-made loop step: fn(step) reads s->tin[i].data (in_buf)
 * and writes s->tout[0].data (out_buf); ctx is its constant state (one
 * malloc'd block, owned by the step, also on failure); impl names it. */
int osp__step_fn(osp__plan_ctx_t *c, int node, int n_in, const int *in_buf,
                 int out_buf, void (*fn)(const osp__plan_step_t *s), void *ctx,
                 const char *impl, const char *note);
/* The destination buffer of node ni's conv with a SUM post-op reading
 * value sum, in layout dmd, bound to value y: sum's own buffer when it dies
 * here (" (in place)" appended to note), else a fresh one with a copy step
 * before. dnnl_conv.c; also used by the int8 convs (dnnl_q8conv.c). */
int osp__sum_dst(osp__plan_ctx_t *c, int ni, int sum, const dnnl_memory_desc_t *dmd,
                 int y, char *note, size_t note_len);
/* Makes buffer b the primary storage of value v. */
void osp__bind_value(osp__plan_ctx_t *c, int v, int b);
/* Appends node n's post-ops to note ("+relu +sum", a space before when
 * note is not empty), as the plan describes its steps. */
void osp__post_note(const osp_node_t *n, char *note, size_t note_len);
/* Builds a post-op list for node n (activation and SUM); sum_scale 1. */
int osp__post_ops(osp__plan_ctx_t *c, const osp_node_t *n, dnnl_primitive_attr_t attr,
                  char *note, size_t note_len);
/* A primitive attr with user-managed scratchpad. */
dnnl_primitive_attr_t osp__attr_new(void);
/* *attr = such an attr with node n's post-ops (n may be NULL: none), the
 * fusions appended to note; OSP_EUNSUPPORTED when oneDNN cannot fuse them. */
int osp__attr_post(osp__plan_ctx_t *c, const osp_node_t *n,
                   dnnl_primitive_attr_t *attr, char *note, size_t note_len);
/* oneDNN 3 creates a primitive descriptor in one call
 * (dnnl_<prim>_primitive_desc_create(pd, ..., attr)); these take that
 * call's status, destroy attr whatever happens, and return 0 with *pd, or
 * OSP_EUNSUPPORTED with *pd NULL. _fast also refuses oneDNN's reference
 * implementations, which are far slower than our own exact paths. */
int osp__pd_done(dnnl_status_t st, dnnl_primitive_attr_t attr,
                 dnnl_primitive_desc_t *pd);
int osp__pd_fast(dnnl_status_t st, dnnl_primitive_attr_t attr,
                 dnnl_primitive_desc_t *pd);

/* ---- the planner's own stages (plan_*.c) ------------------------------ */

/* A plain row-major activation buffer for value v (plan_buffers.c). */
int osp__plan_buf_new_plain(osp__plan_ctx_t *c, int v);
/* Appends an empty step of kind for node (-1 = inserted); returns its
 * index (plan_buffers.c). */
int osp__plan_step_add(osp__plan_ctx_t *c, osp__plan_step_kind_t kind, int node);
/* Records that step reads (b < 0: nothing) / writes buffer b: the
 * lifetimes finalize packs (plan_buffers.c). */
void osp__plan_buf_read(osp__plan_t *p, int b, int step);
void osp__plan_buf_write(osp__plan_t *p, int b, int step);
/* Appends the steps of node ni (plan_compile.c). */
int osp__plan_compile_node(osp__plan_ctx_t *c, int ni);
/* Liveness → arena → memory objects (plan_finalize.c); osp__plan_bind
 * points p at the engine's current arena and scratchpad. */
int osp__plan_finalize(osp__plan_ctx_t *c);
void osp__plan_bind(osp_engine_t *e, osp__plan_t *p);

/* ---- per-op translators (dnnl/, int8/) ---------------------------------
 * Each returns 0 when it appended the node's step(s), OSP_EUNSUPPORTED
 * (without side effects) when oneDNN cannot express the node as given, so
 * the planner falls back to the reference kernel, or another error. */
int osp__dnnl_conv(osp__plan_ctx_t *c, int n);
int osp__dnnl_pool(osp__plan_ctx_t *c, int n);
int osp__dnnl_gemm(osp__plan_ctx_t *c, int n);
int osp__dnnl_matmul(osp__plan_ctx_t *c, int n);
int osp__dnnl_eltwise(osp__plan_ctx_t *c, int n);
int osp__dnnl_binary(osp__plan_ctx_t *c, int n);
int osp__dnnl_softmax(osp__plan_ctx_t *c, int n);
int osp__dnnl_concat(osp__plan_ctx_t *c, int n);
int osp__dnnl_batchnorm(osp__plan_ctx_t *c, int n);
int osp__dnnl_lrn(osp__plan_ctx_t *c, int n);
/* fp32 CONV node n (3x3, stride 1, dilation 1, one group) as osprey's own
 * Winograd F(4x4, 3x3) step on nChw16c activations (f32/f32_wino.c);
 * OSP_EUNSUPPORTED, without side effects, when the node is another conv
 * or the CPU (under the ISA ceiling) has no AVX-512. */
int osp__f32_wino_conv(osp__plan_ctx_t *c, int n);
/* Quantized CONV / GEMM as oneDNN int8 primitives (dnnl_q8conv.c). */
int osp__dnnl_q8conv(osp__plan_ctx_t *c, int n);
int osp__dnnl_q8gemm(osp__plan_ctx_t *c, int n);
/* Quantized CONV accumulated exactly by a oneDNN f32 convolution over
 * integer-valued carriers, when a per-layer bound proves it exact, then
 * requantized with TFLite's fixed-point arithmetic (q8_f32conv.c). */
int osp__q8_f32conv(osp__plan_ctx_t *c, int n);
/* Quantized elementwise node (ADD, MUL, QUANTIZE, activations) with 8-bit
 * inputs and output as a lookup table computed by the reference kernel at
 * build (q8_lut.c); any dense layout its producer wrote. */
int osp__q8_lut(osp__plan_ctx_t *c, int n);
/* Whether graph g's int8 convs can take a residual SUM post-op on this
 * engine (osprey-quantized, oneDNN int8 with VNNI, float requantization);
 * sets what pass_residual.c may fuse (dnnl_q8conv.c). */
bool osp__q8_sum_ok(const osp_engine_t *e, const osp_graph_t *g);
/* QUANTIZE f32 → u8/s8 (per-tensor) as a vectorized, threaded step with
 * the reference kernel's exact arithmetic (q8_quantize.c). */
int osp__q8_quantize(osp__plan_ctx_t *c, int n);
/* Quantized REDUCE_MEAN over H and W of an NHWC input (the int8 convs'
 * layout) as a threaded step, the reference's arithmetic (q8_mean.c). */
int osp__q8_mean(osp__plan_ctx_t *c, int n);
/* TRANSPOSE of plain data as a strided view, no copy (q8_lut.c). */
int osp__transpose_view(osp__plan_ctx_t *c, int n);
/* "int8 path: oneDNN int8 N ops (...), exact reference M ops" for plans
 * with quantized nodes, "int8 path: none (...)" for dequantized models,
 * else "" (dnnl_q8conv.c). */
void osp__q8_path_summary(const osp_engine_t *e, const osp__plan_t *p,
                            char *buf, size_t len);

/* Resolves a conv/pool window (auto_pad, defaults; osp_window_resolve, the
 * reference's single source of truth) against concrete spatial dims, giving
 * oneDNN's left pad, the right pad that makes oneDNN's output size formula
 * produce exactly out_sp (ceil-mode pools), and the declared right pad. */
typedef struct osp__plan_conv_geom_s {
    dnnl_dims_t strides, dil, pl, pr;
    int64_t wd[OSP_MAX_RANK + 1];
    int wr;
} osp__plan_conv_geom_t;
int osp__conv_geom(osp__plan_ctx_t *c, const osp_node_t *n, const osp_value_t *X,
                   const osp_value_t *W, const osp_value_t *Y, int64_t G,
                   osp__plan_conv_geom_t *cg);
int osp__window_pads(osp__plan_ctx_t *c, const osp_node_t *n,
                     const osp_window_t *win, const int64_t *in_sp,
                     const int64_t *out_sp, const int64_t *kernel,
                     bool ceil_mode, int64_t *pl, int64_t *pr,
                     int64_t *given_pr);

#endif
