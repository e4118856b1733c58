/* engine.h — the public interface of osprey's CPU inference engine.
 *
 * A model file (ONNX or TFLite, told apart by its bytes) is imported into a
 * graph IR, rewritten by passes, and executed on oneDNN and osprey's own
 * int8 kernels. Plans (primitives + activation arena) are
 * built once per input shape (in practice: per batch size) and cached, so
 * osp_engine_run() does no allocation after the first call for a shape.
 *
 * Threading: one osp_engine_t may be run from one thread at a time; use one
 * engine per inference instance. Design notes: docs/engine.md. */
#ifndef OSPREY_ENGINE_H
#define OSPREY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osprey/common.h"

typedef enum osp_dtype_e {
    OSP_DT_UNDEF = 0,
    OSP_DT_F32,
    OSP_DT_BF16,
    OSP_DT_F16,
    OSP_DT_U8,
    OSP_DT_S8,
    OSP_DT_S32,
    OSP_DT_S64,
    OSP_DT_BOOL,
    OSP_DT_COUNT
} osp_dtype_t;
const char *osp_dtype_name(osp_dtype_t dt);
size_t osp_dtype_size(osp_dtype_t dt); /* bytes per element, 0 for UNDEF */

/* The engine's option enums below are each made from one X-macro list,
 * X(NAME, "name"), in order: the enum's OSP_<PREFIX>_NAME constants here
 * and the table behind its _name() and _parse() (engine.c), as
 * OSP_ERRNO_MAP makes the error codes. Append only. */
#define OSP_PRECISION_MAP(X)                                                   \
    X(AUTO, "auto") /* bf16 where the CPU has native bf16, else fp32; int8     \
                       for quantized models */                                 \
    X(FP32, "fp32")                                                            \
    X(BF16, "bf16")                                                            \
    X(INT8, "int8")
typedef enum osp_precision_e {
#define OSP__PREC_ENUM(n, s) OSP_PREC_##n,
    OSP_PRECISION_MAP(OSP__PREC_ENUM)
#undef OSP__PREC_ENUM
    OSP_PREC_COUNT
} osp_precision_t;
const char *osp_precision_name(osp_precision_t p);
/* Parses "fp32" | "bf16" | "int8" | "auto"; returns OSP_EINVAL otherwise. */
int osp_precision_parse(const char *s, osp_precision_t *out);

#define OSP_MAX_RANK 8

/* A dense, row-major tensor passed in or out of the engine. `data` is owned by
 * whoever filled the struct (the caller for inputs; the engine for outputs,
 * valid until the next run or destroy). */
typedef struct osp_tensor_s {
    const char *name; /* may be NULL for positional inputs */
    osp_dtype_t dtype;
    int rank;
    int64_t dims[OSP_MAX_RANK];
    void *data;
} osp_tensor_t;
size_t osp_tensor_numel(const osp_tensor_t *t);

/* ---- tuning: the engine's own choices, as the caller's options ----------
 *
 * Every choice the engine can make by itself (conv layout, which kernels,
 * how threads are placed, ...) has a knob here. Zero (osp_engine_opts_init,
 * memset) lets the engine decide: that is the default osprey is tested and
 * measured with. The library reads no environment: a program fills these
 * from its own flags (osprey: --engine-*, OSPREY_ENGINE_*; the table of
 * knobs is in docs/engine.md, "Tuning knobs"). */

/* A switch. AUTO: the engine decides (see each knob for what it does
 * today); OFF: never; ON: wherever it applies, whatever the engine would
 * have decided. */
#define OSP_TUNE_MAP(X)                                                        \
    X(AUTO, "auto")                                                            \
    X(OFF, "off")                                                              \
    X(ON, "on")
typedef enum osp_tune_e {
#define OSP__TUNE_ENUM(n, s) OSP_TUNE_##n,
    OSP_TUNE_MAP(OSP__TUNE_ENUM)
#undef OSP__TUNE_ENUM
    OSP_TUNE_COUNT
} osp_tune_t;
const char *osp_tune_name(osp_tune_t t); /* "auto" | "off" | "on" */
/* Parses "auto" | "off" | "on" (also "0" = off, "1" = on); OSP_EINVAL
 * otherwise. */
int osp_tune_parse(const char *s, osp_tune_t *out);

/* Activation layout of convolutions. */
#define OSP_CONV_LAYOUT_MAP(X)                                                 \
    X(AUTO, "auto")       /* measured at load (docs/engine.md) */              \
    X(BLOCKED, "blocked") /* channel-blocked nChw16c where channels allow */   \
    X(ANY, "any")         /* oneDNN's own pick (format_tag_any) */
typedef enum osp_conv_layout_e {
#define OSP__CONV_LAYOUT_ENUM(n, s) OSP_CONV_LAYOUT_##n,
    OSP_CONV_LAYOUT_MAP(OSP__CONV_LAYOUT_ENUM)
#undef OSP__CONV_LAYOUT_ENUM
    OSP_CONV_LAYOUT_COUNT
} osp_conv_layout_t;
const char *osp_conv_layout_name(osp_conv_layout_t l); /* "auto" | "blocked" | "any" */
int osp_conv_layout_parse(const char *s, osp_conv_layout_t *out);

/* Who requantizes the s32 sums of oneDNN int8 convolutions and gemms. */
#define OSP_REQUANT_MAP(X)                                                     \
    X(AUTO, "auto")     /* EXACT for imported quantized models, ONEDNN for     \
                           models osprey quantized itself (no external         \
                           reference to be exact with) */                      \
    X(EXACT, "exact")   /* osprey's fixed-point requantization: TFLite's       \
                           arithmetic, bit for bit */                          \
    X(ONEDNN, "onednn") /* oneDNN's fused float requantization: faster, up     \
                           to a few steps off TFLite */
typedef enum osp_requant_e {
#define OSP__REQUANT_ENUM(n, s) OSP_REQUANT_##n,
    OSP_REQUANT_MAP(OSP__REQUANT_ENUM)
#undef OSP__REQUANT_ENUM
    OSP_REQUANT_COUNT
} osp_requant_t;
const char *osp_requant_name(osp_requant_t r); /* "auto" | "exact" | "onednn" */
int osp_requant_parse(const char *s, osp_requant_t *out);

/* x86-64 instruction-set rungs, each containing the ones above it. As a
 * ceiling (tuning.max_isa) it caps both oneDNN's kernels and osprey's own
 * (which fall back to their portable code) and every choice made from the
 * CPU's features (e.g. precision AUTO is fp32 below AVX512_BF16), so one
 * machine can run what a smaller one would. */
#define OSP_ISA_MAP(X)                                                         \
    X(AUTO, "auto")               /* as a ceiling: none, the CPU's best */     \
    X(SSE41, "sse41")             /* oneDNN's baseline, below AVX2 */          \
    X(AVX2, "avx2")               /* AVX2 + FMA (most laptops, Zen 1-3,        \
                                     Haswell on) */                            \
    X(AVX512, "avx512")           /* + AVX-512 F/CD/BW/DQ/VL (oneDNN's         \
                                     avx512_core) */                           \
    X(AVX512_VNNI, "avx512_vnni") /* + VNNI int8 dot products (Cascade/Ice     \
                                     Lake) */                                  \
    X(AVX512_BF16, "avx512_bf16") /* + bf16 dot products (Cooper Lake, Zen 4)  \
                                   */                                          \
    X(AMX, "amx")                 /* + AMX tiles, int8 and bf16 (Sapphire      \
                                     Rapids) */
typedef enum osp_isa_e {
#define OSP__ISA_ENUM(n, s) OSP_ISA_##n,
    OSP_ISA_MAP(OSP__ISA_ENUM)
#undef OSP__ISA_ENUM
    OSP_ISA_COUNT
} osp_isa_t;
/* "auto", "sse41", "avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx" */
const char *osp_isa_name(osp_isa_t isa);
int osp_isa_parse(const char *s, osp_isa_t *out); /* OSP_EINVAL if unknown */
/* The CPU's own rung (CPUID, with the OS saving the registers' state),
 * whatever the ceiling. */
osp_isa_t osp_cpu_isa(void);

#define OSP_TUNING_Q8_TILE_KB_MAX (1 << 20) /* 1 GiB: far above any L2 */

typedef struct osp_engine_tuning_s {
    osp_conv_layout_t conv_layout; /* AUTO: measured on this machine before
                                      the first plan (docs/engine.md,
                                      "Measured choices") */
    osp_tune_t winograd;     /* fp32 3x3 stride-1 convs of >= 16 channels
                                run as osprey's Winograd convolution (on
                                AVX-512); AUTO: measured with the layout */
    osp_tune_t int8_dnnl;    /* quantized convs and gemms may run on oneDNN
                                int8; AUTO = yes where it is exact */
    osp_tune_t q8_dw;        /* osprey's own int8 depthwise kernel; AUTO = yes */
    osp_tune_t q8_pw;        /* osprey's own int8 1x1 kernel; AUTO = yes */
    osp_tune_t q8_tile;      /* oneDNN int8 convs run tile by tile into
                                cache-sized s32 buffers; AUTO = yes */
    int q8_tile_kb;          /* s32 budget of one tile, KiB; 0 = 384;
                                at most OSP_TUNING_Q8_TILE_KB_MAX */
    osp_tune_t fcq;          /* exact fp32-carrier convs for quantized
                                models; AUTO = yes where the bound holds */
    osp_requant_t int8_requant;
    osp_tune_t batch_split;  /* batches shared by one-thread lanes; AUTO:
                                when the graph is light enough and the
                                batch divides evenly; ON: whenever the
                                graph computes images independently */
    osp_tune_t bind;         /* OpenMP team bound to distinct CPUs; AUTO: a
                                run that starts from idleness; ON: every
                                run; both only when the team covers the
                                allowed CPUs exactly */
    bool profile;            /* time every step; the plans with their
                                timings go to stderr at osp_engine_destroy */
    osp_isa_t max_isa;       /* ISA ceiling; AUTO: none. Process-wide, as
                                oneDNN's (dnnl_set_max_cpu_isa works once,
                                before its first primitive): the first
                                engine of a process sets it, a later engine
                                asking for a ceiling that gives a different
                                rung is refused (OSP_EINVAL), and one with
                                AUTO runs under it */
    /* Directory of the measured-choices cache (engine-choices.tsv, made
     * when missing); NULL: measure at every load. Borrowed until the first
     * plan is built. */
    const char *cache_dir;
} osp_engine_tuning_t;

typedef struct osp_engine_opts_s {
    int threads;               /* 0 = osp_cpus_available() */
    osp_precision_t precision; /* OSP_PREC_AUTO by default */
    int verbose;               /* print precision and oneDNN kernels to stderr */
    int max_batch;             /* 0 = unlimited */
    /* precision int8 on a float model: calibration inputs for input 0,
     * preprocessed as requests are (each any batch), from which the value
     * ranges of the post-training quantization are taken. Borrowed, and
     * only read while osp_engine_load* runs. */
    const osp_tensor_t *calib;
    int n_calib;
    osp_engine_tuning_t tuning; /* all AUTO by default */
} osp_engine_opts_t;
void osp_engine_opts_init(osp_engine_opts_t *o);

typedef struct osp_engine_s osp_engine_t;

/* Loads a model file (.onnx or .tflite; format sniffed from content). Returns NULL and
 * fills err on failure. The caller owns the engine (osp_engine_destroy). */
osp_engine_t *osp_engine_load(const char *path, const osp_engine_opts_t *opts,
                              osp_err_t *err);
/* Same, from a memory buffer (copied as needed; buffer may be freed after). */
osp_engine_t *osp_engine_load_buffer(const void *buf, size_t len,
                                     const char *name,
                                     const osp_engine_opts_t *opts,
                                     osp_err_t *err);
void osp_engine_destroy(osp_engine_t *e);

/* Graph inputs/outputs as declared by the model: dims of -1 are dynamic
 * (usually the batch). Pointers owned by the engine. */
int osp_engine_num_inputs(const osp_engine_t *e);
int osp_engine_num_outputs(const osp_engine_t *e);
const osp_tensor_t *osp_engine_input(const osp_engine_t *e, int i);
const osp_tensor_t *osp_engine_output(const osp_engine_t *e, int i);

/* True when output i is already a probability distribution: it comes from
 * a Softmax (possibly through Dequantize/Reshape/Flatten/Identity), so a
 * caller must not apply another softmax. */
bool osp_engine_output_is_probabilities(const osp_engine_t *e, int i);

/* Precision actually used (after resolving AUTO against the CPU). */
osp_precision_t osp_engine_precision(const osp_engine_t *e);
/* The rung e's kernels (osprey's and oneDNN's) may use: the CPU's, capped
 * by the process's ceiling (tuning.max_isa) and by oneDNN's own setting
 * (ONEDNN_MAX_CPU_ISA, which oneDNN reads itself). */
osp_isa_t osp_engine_isa(const osp_engine_t *e);
int osp_engine_threads(const osp_engine_t *e);

/* Runs the model. `inputs` must match the declared inputs in order (names are
 * not consulted); dtype must match; dynamic dims take the given values.
 * On success, outputs[0..n_outputs) describe engine-owned buffers valid until
 * the next run/destroy. A new input shape builds (and caches) a new plan. */
int osp_engine_run(osp_engine_t *e, const osp_tensor_t *inputs, int n_inputs,
                   osp_tensor_t *outputs, int n_outputs, osp_err_t *err);

/* Builds the plan for a given batch size (first dim of input 0) ahead of time
 * so the first request does not pay for it. */
int osp_engine_prepare(osp_engine_t *e, int batch, osp_err_t *err);

/* What the engine chose for this machine and why, one line, e.g. "conv
 * layout any: measured at batch 8, 2 threads, the first within 3% of the
 * fastest (blocked 380.1 ms, any 47.7 ms)" or "... cached in DIR/engine-
 * choices.tsv (...)"; "" before the first plan is built (choices are made
 * then) and for graphs with nothing to choose. Owned by the engine. */
const char *osp_engine_choices(const osp_engine_t *e);

/* Human-readable description of the last-built plan: precision, kernels
 * (oneDNN implementation names), fused ops. Owned by the engine. */
const char *osp_engine_describe(const osp_engine_t *e);

#endif
