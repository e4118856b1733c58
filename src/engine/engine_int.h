/* engine_int.h — private structures of the engine (the engine object, its
 * plan cache and weight cache, lanes, CPU capabilities) shared by the files
 * at the top of src/engine and by plan/, dnnl/ and int8/.
 *
 * Layering: engine.c owns the public API and the load-time graph; plan/
 * specialises that graph for concrete input shapes and compiles it into a
 * list of steps (oneDNN primitives, osprey's int8 kernels or reference
 * kernels) over one activation arena; dnnl/ translates single IR ops into
 * oneDNN primitive descriptors. Design notes: docs/engine.md ("Code map"). */
#ifndef OSPREY_ENGINE_ENGINE_INT_H
#define OSPREY_ENGINE_ENGINE_INT_H

#include <oneapi/dnnl/dnnl.h>

#include "engine/ir/ir.h"
#include "engine/passes/passes.h"
#include "osprey/engine.h"

typedef struct osp__plan_s osp__plan_t;
typedef struct osp__lanes_s osp__lanes_t; /* batch-parallel lanes (lanes.c) */

/* A constant reordered into a oneDNN layout (weights into the blocked
 * format a convolution wants, bf16 copies, ...). Kept on the engine so that
 * plans for different batch sizes share them. */
typedef struct osp__wcache_entry_s {
    const void *src;        /* the load-time constant's data (identity key) */
    dnnl_memory_desc_t md;  /* target layout (owned: a clone) */
    void *data;             /* owned, 64-byte aligned */
    size_t bytes;
} osp__wcache_entry_t;

struct osp_engine_s {
    osp_graph_t *g;            /* load-time graph; owns the weights */
    osp_engine_opts_t opts;
    osp_precision_t prec;      /* resolved: FP32 or BF16 */
    int threads;
    dnnl_engine_t dnnl_eng;
    dnnl_stream_t stream;
    osp_tensor_t *inputs;      /* declared inputs (names point into g) */
    osp_tensor_t *outputs;     /* declared outputs */
    osp__plan_t **plans;        /* cache, one per input shape */
    int n_plans;
    osp__plan_t *last;          /* most recently built or run */
    uint8_t *arena;            /* activations of whichever plan runs */
    size_t arena_bytes;
    void *scratch;             /* oneDNN scratchpad, shared likewise */
    size_t scratch_bytes;
    unsigned arena_gen;        /* bumped when arena/scratch move */
    osp__wcache_entry_t *wcache;
    int n_wcache, cap_wcache;
    bool conv_blocked;         /* convs use nChw16c activations, not "any" */
    bool conv_winograd;        /* fp32 3x3 s1 convs try Winograd first */
    bool dequantized;          /* a quantized model running in fp32/bf16 on
                                  dequantized weights (pass_dequant.c) */
    bool int8_dnnl;            /* quantized convs/gemms may use oneDNN int8
                                  (opts.tuning.int8_dnnl off turns it off) */
    bool profile;              /* opts.tuning.profile: time every step and
                                  print the plans with timings at destroy */
    bool *param_input;         /* per input: a shape parameter (see below) */
    /* Batch-parallel lanes (lanes.c). A lane engine has wowner set: it
     * borrows g, inputs, outputs and param_input from wowner and puts its
     * reordered weights in wowner's weight cache. */
    struct osp_engine_s *wowner;
    osp__lanes_t *lanes;        /* created on the first batch; NULL before */
    const char *lanes_describe; /* describe text of the last split batch */
    uint64_t last_run_end_ns;  /* osp_now_ns() when the last run ended (affinity.c) */
    /* Measured choices (tune.c): made once, before the first plan. */
    bool tuned;
    char *tune_note;           /* osp_engine_choices(); owned */
    uint64_t model_hash;       /* of the model file's bytes; 0: not cached */
    /* g, inputs, outputs and param_input belong to another engine (lane
     * and probe engines) */
    bool borrowed;
};

/* Plan keys. A plan is specialised to its inputs' dims; inputs that only
 * ever feed shape parameters (Reshape's shape, Squeeze/Unsqueeze axes, Pad's
 * pads, ReduceMean axes) are specialised to their *values* too, since the
 * output shapes depend on them. Per input the key holds OSP_KEY_STRIDE
 * int64s: the dims, then up to OSP_KEY_PARAM_MAX values (zeros otherwise). */
#define OSP_KEY_PARAM_MAX 16
#define OSP_KEY_STRIDE (OSP_MAX_RANK + OSP_KEY_PARAM_MAX)

/* Builds an engine around an already imported graph (takes ownership of g,
 * also on failure). Runs no load-time passes: tests hand it exact graphs;
 * osp_engine_load runs osp__passes_load before calling it. */
osp_engine_t *osp__engine_from_graph(osp_graph_t *g,
                                    const osp_engine_opts_t *opts,
                                    osp_err_t *err);

/* An engine that runs e's graph (g, inputs, outputs, param_input borrowed
 * from e, which must outlive it) with threads threads, e's options and
 * choices, and plans, weight cache, arena and oneDNN stream of its own:
 * lane engines (lanes.c) and the measuring probes (tune.c). NULL and err
 * set on failure. */
osp_engine_t *osp__engine_borrow(osp_engine_t *e, int threads, osp_err_t *err);

/* Grows the engine's shared activation arena and scratchpad to at least
 * these sizes (at plan build only; contents are not preserved). */
int osp__engine_reserve(osp_engine_t *e, size_t arena_bytes,
                        size_t scratch_bytes, osp_err_t *err);

/* ---- planner (plan/) -------------------------------------------------- */

/* Constant folding (plans and lane plans) refuses to materialise outputs
 * larger than this: a fold that big would be an Expand/Tile of
 * activations-sized data. */
#define OSP_FOLD_MAX_BYTES (64u << 20)

/* Builds (or finds in the cache) the plan for this key (n_inputs ×
 * OSP_KEY_STRIDE, see above). */
int osp__plan_get(osp_engine_t *e, const int64_t *dims, osp__plan_t **out,
                  osp_err_t *err);
/* Runs a plan: copies inputs in, executes every step, points outputs at the
 * plan's arena. */
int osp__plan_run(osp_engine_t *e, osp__plan_t *p, const osp_tensor_t *inputs,
                  osp_tensor_t *outputs, osp_err_t *err);
void osp__plan_destroy(osp__plan_t *p);
/* Appends the plan's description (one line per step) to a malloc'd string. */
char *osp__plan_describe(const osp_engine_t *e, const osp__plan_t *p);

/* ---- lanes (lanes.c) ---------------------------------------------------
 * Runs a batch as one single-threaded sub-batch per thread when the graph
 * computes images independently (see lanes.c for when and why). */
osp__lanes_t *osp__lanes_create(osp_engine_t *e); /* NULL on ENOMEM */
void osp__lanes_destroy(osp__lanes_t *ls);
/* Builds the lane plans for key. 0: this key runs split; 1: it does not
 * (build the whole-batch plan as usual); < 0: error. */
int osp__lanes_prepare(osp_engine_t *e, const int64_t *key, osp_err_t *err);
/* Runs the inputs split over the lanes; outputs point at buffers owned by
 * the engine (valid until the next run). Returns 1 without running when
 * this key does not split. */
int osp__lanes_run(osp_engine_t *e, const int64_t *key,
                   const osp_tensor_t *inputs, osp_tensor_t *outputs,
                   osp_err_t *err);

/* A growing string for describe texts and notes (plan_describe.c): append with
 * osp__sb_printf; s is malloc'd (NULL until the first append, and left as
 * it was when out of memory), owned by whoever keeps it. */
typedef struct osp__sbuf_s {
    char *s;
    size_t len, cap;
} osp__sbuf_t;
void osp__sb_printf(osp__sbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- measured choices (tune.c) ----------------------------------------
 * Before the first plan for key is built: fixes e's conv layout and
 * Winograd use, from the options, the cache or by timing the candidates.
 * Only fails on ENOMEM; a candidate that cannot run is skipped. */
int osp__tune(osp_engine_t *e, const int64_t *key, osp_err_t *err);
/* Whether the engine has an fp32 Winograd convolution on this CPU:
 * osprey's own (f32/f32_wino.c; oneDNN 3 has none on x64) needs AVX-512
 * under the ISA ceiling. The tuner measures the Winograd candidates only
 * when it answers yes. */
bool osp__f32_wino_ok(void);
/* A fast 64-bit hash of a buffer (the model bytes, for cache keys). */
uint64_t osp__hash64(const void *buf, size_t len);

/* ---- CPU features (cpu.c) --------------------------------------------- */

/* True when the CPU executes bf16 dot products natively (AVX512_BF16 or
 * AMX-BF16) and the OS saves AVX-512 state. */
/* The ranges r[v] (g->n_values entries) of graph g's values on the
 * calibration inputs of opts (calibrate.c). */
int osp__calibrate(const osp_graph_t *g, const osp_engine_opts_t *opts,
                   osp__pass_qrange_t *r, osp_err_t *err);

/* ---- CPU features (cpu.c) --------------------------------------------- */

/* What the engine's choices may assume of the CPU: its features (CPUID,
 * with the OS saving the registers), capped by the process's ISA ceiling
 * and by what oneDNN may dispatch to. Every CPU-dependent choice asks this,
 * never CPUID or __builtin_cpu_supports. */
typedef struct osp__cpu_caps_s {
    bool avx2;        /* AVX2 + FMA */
    bool avx512;      /* AVX-512 F, CD, BW, DQ, VL (oneDNN's avx512_core) */
    bool avx512_vnni; /* vpdpbusd: exact int8 dot products */
    bool avx512_bf16; /* vdpbf16ps */
    bool amx;         /* AMX tiles with int8 and bf16 */
    bool bf16;        /* native bf16 dot products: avx512_bf16 or amx */
    osp_isa_t isa;    /* the rung these make */
    osp_isa_t ceiling; /* the ceiling in effect; AUTO = none */
    osp_isa_t cpu;    /* the CPU's own rung, uncapped */
} osp__cpu_caps_t;
/* The process's capabilities (immutable once returned). Fixes the ceiling
 * at "none" when no engine has set one yet. */
const osp__cpu_caps_t *osp__cpu_caps(void);
/* Sets the process's ISA ceiling (first call; oneDNN's too), or checks
 * that a later ceiling gives the rung in effect (AUTO always does).
 * OSP_EINVAL with a message otherwise. */
int osp__cpu_isa_apply(osp_isa_t ceiling, osp_err_t *err);
/* "GenuineIntel-806f8": vendor and CPUID signature, the key of caches of
 * measured choices (tune.c). */
void osp__cpu_signature(char *buf, size_t cap);
/* Applies the thread count to the threading runtime oneDNN was built with
 * (OpenMP for Debian's libdnnl). Affects the calling thread. */
void osp__set_threads(int n);
/* The calling thread's OpenMP thread budget (omp_get_max_threads), or -1
 * when the runtime is not OpenMP. */
int osp__get_threads(void);

/* ---- the run's OpenMP team on distinct CPUs (affinity.c) ---------------- */

typedef struct osp__team_bind_s {
    int active, threads;
    unsigned char saved[128]; /* the caller's cpu_set_t, restored at end */
} osp__team_bind_t;
/* For a run starting idle_ns after the engine's previous one ended: binds
 * OpenMP thread i of the calling thread's team of `threads` to the i-th
 * allowed CPU when the run starts from idleness (mode AUTO; ON: any run;
 * OFF: never) and the team covers exactly the allowed CPUs. Returns 1 when
 * bound, 0 otherwise; either way osp__team_bind_end after the run puts
 * every mask back. */
int osp__team_bind_begin(int threads, uint64_t idle_ns, osp_tune_t mode,
                         osp__team_bind_t *b);
void osp__team_bind_end(osp__team_bind_t *b);

#endif
