/* q8_int.h — what osprey's own int8 code (src/engine/int8/, the q8_*
 * files; docs/engine.md, "q8: the int8 names") shares with the planner,
 * the oneDNN int8 path and the unit tests: the loops and the exactness
 * bound of the fp32-carrier convolutions (q8_f32conv.c), the exact
 * requantization (TFLite's fixed-point arithmetic on int32 accumulators,
 * one implementation for f32 carriers and for the s32 accumulators of
 * dnnl_q8conv.c), the tiled oneDNN int8 convolution and its per-thread
 * tile pool, and the steps of the depthwise, 1x1 and lookup-table
 * kernels. */
#ifndef OSPREY_ENGINE_Q8_INT_H
#define OSPREY_ENGINE_Q8_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/plan/plan_int.h"

/* fp32 represents every integer of magnitude <= 2^24; a layer is exact when
 * its bound (Σ|terms| of any output) is below this. */
#define OSP_Q8_EXACT_LIMIT ((int64_t)1 << 24)

/* Requantization of one node: the arrays have `channels` entries. */
typedef struct osp__q8_req_s {
    int64_t channels;
    size_t pixels;     /* N·H·W of the output */
    int32_t *bias;     /* int32 bias (0 when absent) */
    int32_t *mult;     /* TFLite fixed-point multiplier per channel */
    int *shift;
    int32_t zy, qmin, qmax;
    bool y_u8;         /* output dtype u8 (else s8) */
    bool acc_s32;      /* the step reads s32 accumulators (else f32) */
    /* The same arithmetic as one multiply-add-shift per element (see
     * osp__q8_req_prepare); NULL until prepared or when a channel needs
     * TFLite's saturating left shift (then the scalar loop runs). */
    int64_t *m64, *off64, *sh64;
    /* The 16-lane AVX-512 form for s32 accumulators (osp__q8_req_create
     * fills it when every channel shifts right by ≥ 1; else NULL): per
     * block of 16 channels, the offsets off64 + zy·2^sh64 of its 8 even
     * then its 8 odd channels, and sh64 − 32 per channel; off_eo, sh32,
     * bias and mult are then padded with zeros to a multiple of 16. */
    int64_t *off_eo;
    int32_t *sh32;
} osp__q8_req_t;

/* dst[i] = x[i] − zx as f32 for n elements of a u8 (is_u8) or s8 array. */
void osp__q8_widen_f32(const void *x, bool is_u8, int32_t zx, size_t n,
                    float *dst);
/* y (NHWC, pixels × channels, u8/s8) from the exact f32 accumulators acc
 * (same layout): clamp(zy + MBQM(lrintf(acc) + bias)). */
void osp__q8_requant_f32(const osp__q8_req_t *r, const float *acc, size_t pixels,
                      void *y);
/* The same from exact int32 accumulators (oneDNN int8 convolutions and
 * matmuls with an s32 destination): clamp(zy + MBQM(acc + bias)). */
void osp__q8_requant_s32(const osp__q8_req_t *r, const int32_t *acc,
                          size_t pixels, void *y);
/* Fills r->m64/off64/sh64 (arrays of r->channels each, caller-provided,
 * 64-byte aligned) when every channel's requantization can be written as
 * (v·m64 + off64) >> sh64 for all |v| <= vmax (the accumulator bound plus
 * |bias|), and sets r->m64 etc.; otherwise leaves them NULL. */
void osp__q8_req_prepare(osp__q8_req_t *r, int64_t vmax, int64_t *m64,
                          int64_t *off64, int64_t *sh64);
/* max over output channels of Σ_k |w − zw| times x_maxabs (= max |x − zx|);
 * w is [channels, per_channel], u8 (w_u8) or s8; zw per tensor (zp_count 1)
 * or per channel. */
int64_t osp__q8_bound(const void *w, bool w_u8, int64_t channels,
                       int64_t per_channel, const int32_t *w_zp, int zp_count,
                       int32_t x_maxabs);

/* The requantization of one node in one malloc'd block (free() it; NULL
 * when out of memory): multipliers formed from sx·sw[o]/sy exactly as
 * ref_q8conv.c forms them (float product when f32_product, else double),
 * bias (NULL = 0), the clamp [qmin, qmax] and output type, and the prepared
 * multiply-add-shift form when |accumulator| <= acc_max allows it. */
osp__q8_req_t *osp__q8_req_create(const osp_quant_t *xq,
                                   const osp_quant_t *wq,
                                   const osp_quant_t *yq, int64_t channels,
                                   bool f32_product, const int32_t *bias,
                                   int32_t qmin, int32_t qmax, bool y_u8,
                                   size_t pixels, int64_t acc_max);
/* Appends the requantization step of node ni: NHWC accumulators in buffer
 * acc_buf (f32 carriers, or s32 when acc_s32) → u8/s8 buffer y_buf, split
 * over the engine's OpenMP threads. Takes req (also on failure). */
int osp__q8_step_requant(osp__plan_ctx_t *c, int ni, int acc_buf, int y_buf,
                          osp__q8_req_t *req, bool acc_s32, const char *impl,
                          const char *note);
/* Appends quantized CONV node ni (s8 weights, zero point 0; geometry cg;
 * source zero point zx) as one step that runs the oneDNN int8 convolution
 * tile by tile (an image × a band of output rows) into per-thread s32
 * buffers kept in cache and requantizes each tile with req into the NHWC
 * output. Takes req only when it returns 0; OSP_EUNSUPPORTED when the node
 * cannot be tiled or tuning.q8_tile is off. bound is only reported. */
int osp__q8_tiled_conv(osp__plan_ctx_t *c, int ni, const osp__plan_conv_geom_t *cg,
                       int32_t zx, osp__q8_req_t *req, int64_t bound);
/* The per-thread tile buffers of one plan, shared by all its tiled int8
 * steps (they run one after another; a plan runs on one thread at a
 * time). get: the pool of plan `plan` (a new reference) with room for n_thr
 * threads × acc / scr bytes, grown if needed; NULL when out of memory.
 * acc: thread tid's acc buffer (64-byte aligned; read it at run time, the
 * pool may have grown after a step was built). */
typedef struct osp__q8_pool_s osp__q8_pool_t;
osp__q8_pool_t *osp__q8_pool_get(const void *plan, int n_thr, size_t acc,
                                size_t scr);
void *osp__q8_pool_acc(const osp__q8_pool_t *pl, int tid);
void osp__q8_pool_release(osp__q8_pool_t *pl);
/* The OpenMP budget of the caller (1 without OpenMP), the calling
 * thread's number in a parallel region (0 outside), the threads for `tiles`
 * tiles of a step built for n_thr, and the tile budget in bytes
 * (e's tuning.q8_tile_kb, default OSP_Q8_TILE_KB_DEFAULT): what every
 * tiled int8 step shares. */
#define OSP_Q8_TILE_KB_DEFAULT 384 /* KiB: a thread's s32 tile stays in L2
                                      (docs/engine.md, "Tiling") */
int osp__q8_threads(void);
int osp__q8_tid(void);
int osp__q8_tile_threads(int n_thr, int tiles);
size_t osp__q8_tile_bytes(const osp_engine_t *e);
/* The attributes of an int8 conv or matmul that only accumulates into
 * s32 (dnnl_q8conv.c): user scratchpad and, when zx != 0, a source zero
 * point — a runtime argument in oneDNN 3: one s32 given at execute as
 * DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC. NULL when oneDNN refuses. The
 * caller creates the pd with it (osp__pd_fast: no reference kernels). */
dnnl_primitive_attr_t osp__q8_s32_attr(int32_t zx);
/* Appends node ni as one step of `run` over its NHWC 8-bit input 0 and
 * output 0 with context ctx (the kernels below). On success the step owns
 * ctx (freed with ctx_free); on failure ctx_free(ctx) has run. */
int osp__q8_nhwc_step(osp__plan_ctx_t *c, int ni, void (*run)(const osp__plan_step_t *),
                      void *ctx, void (*ctx_free)(void *), const char *impl,
                      const char *note);
/* Appends quantized depthwise CONV node ni (s8 weights, zero point 0,
 * depth multiplier 1; geometry cg; source zero point zx) as one step of
 * osprey's own exact AVX-512 kernel (q8_dwconv.c): f32 FMAs over the
 * integer-valued (x − zx) and w, exact under the same 2^24 bound, then the
 * requantization in registers. Takes req only when it returns 0;
 * OSP_EUNSUPPORTED when the kernel does not apply (no AVX-512, no 16-lane
 * requantization form, another shape) or tuning.q8_dw is off. */
int osp__q8_dwconv(osp__plan_ctx_t *c, int ni, const osp__plan_conv_geom_t *cg,
                   int32_t zx, osp__q8_req_t *req, int64_t bound);
/* Appends quantized 1x1 CONV node ni (stride 1, no padding, group 1, s8
 * weights with zero point 0; source zero point zx) as one step of osprey's
 * own exact AVX-512 VNNI kernel (q8_pwconv.c): int32 vpdpbusd sums, then
 * the requantization in registers. Takes req only when it returns 0;
 * OSP_EUNSUPPORTED when the kernel does not apply or tuning.q8_pw is off. */
int osp__q8_pwconv(osp__plan_ctx_t *c, int ni, const osp__plan_conv_geom_t *cg,
                   int32_t zx, osp__q8_req_t *req);
/* The table lookups of the 8-bit elementwise steps (q8_lut.c's tables,
 * run by plan.c's step runner): y[i] = lut[a[i]] (b NULL) or lut[a[i] << 8 | b[i]] for n
 * bytes, split over the engine's OpenMP threads like the loops above. */
void osp__q8_lut_run(const uint8_t *lut, const uint8_t *a, const uint8_t *b,
                     uint8_t *y, size_t n);

#endif
