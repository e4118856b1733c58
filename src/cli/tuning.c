/* tuning.c — one table of the engine's tuning knobs for every command (see
 * tuning.h for who uses it and how a knob is spelled). The values are
 * parsed by the engine's own *_parse functions, so names cannot drift
 * between the library and its commands. */
#include "cli/tuning.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/common.h"

static int parse_tune(void *f, const char *v) {
    return osp_tune_parse(v, (osp_tune_t *)f);
}

/* "always": OSP_ENGINE_BIND's spelling of on */
static int parse_bind(void *f, const char *v) {
    return parse_tune(f, !strcmp(v, "always") ? "on" : v);
}

static int parse_layout(void *f, const char *v) {
    return osp_conv_layout_parse(v, (osp_conv_layout_t *)f);
}

static int parse_requant(void *f, const char *v) {
    return osp_requant_parse(v, (osp_requant_t *)f);
}

static int parse_bool(void *f, const char *v) {
    osp_tune_t t;
    if (osp_tune_parse(v, &t) < 0 || t == OSP_TUNE_AUTO)
        return OSP_EINVAL;
    *(bool *)f = t == OSP_TUNE_ON;
    return 0;
}

static int parse_isa(void *f, const char *v) {
    return osp_isa_parse(v, (osp_isa_t *)f);
}

static int parse_tile_kb(void *f, const char *v) {
    char *end;
    errno = 0;
    long kb = strtol(v, &end, 10);
    if (errno || end == v || *end || kb < 0 || kb > OSP_TUNING_Q8_TILE_KB_MAX)
        return OSP_EINVAL;
    *(int *)f = (int)kb;
    return 0;
}

/* "off" turns the cache off; anything else is a directory. */
static int parse_cache_dir(void *f, const char *v) {
    *(const char **)f = strcmp(v, "off") ? v : NULL;
    return 0;
}

#define T(field) offsetof(osp_engine_tuning_t, field)
static const osp_setting_t rows[] = {
    {.name = "max-isa", .kind = OSP_SET_FIELD, .arg = "ISA",
     .section = "engine tuning (the defaults are what osprey is tested with; docs/engine.md,\n\"Tuning knobs\"; the older environment spelling OSP_ENGINE_<NAME> is still read):",
     .off = T(max_isa), .parse_field = parse_isa,
     .help = "auto|avx2|avx512|avx512_vnni|avx512_bf16|amx (or sse41): the highest instruction set "
             "oneDNN and osprey's kernels use, and auto precision assumes (default auto: the CPU's)"},
    {.name = "engine-conv-layout", .kind = OSP_SET_FIELD, .off = T(conv_layout), .parse_field = parse_layout, .arg = "MODE", .env_alias = "OSP_ENGINE_CONV_LAYOUT",
     .help = "auto|blocked|any: conv activations channel-blocked (nChw16c) or oneDNN's pick (default auto: measured at load, any below AVX-512)"},
    {.name = "engine-winograd", .kind = OSP_SET_FIELD, .off = T(winograd), .parse_field = parse_tune, .arg = "MODE", .env_alias = "OSP_ENGINE_WINOGRAD",
     .help = "auto|off|on: fp32 3x3 stride-1 convs try Winograd first (default auto: measured at load)"},
    {.name = "engine-int8-dnnl", .kind = OSP_SET_FIELD, .off = T(int8_dnnl), .parse_field = parse_tune, .arg = "MODE", .env_alias = "OSP_ENGINE_INT8_DNNL",
     .help = "auto|off|on: quantized convs and gemms on oneDNN int8 (default auto: where exact)"},
    {.name = "engine-int8-requant", .kind = OSP_SET_FIELD, .off = T(int8_requant), .parse_field = parse_requant, .arg = "MODE", .env_alias = "OSP_ENGINE_INT8_REQUANT",
     .help = "auto|exact|onednn: who requantizes oneDNN int8 sums (default auto: exact for quantized models, oneDNN for osprey-quantized)"},
    {.name = "engine-q8-dw", .kind = OSP_SET_FIELD, .off = T(q8_dw), .parse_field = parse_tune, .arg = "MODE", .env_alias = "OSP_ENGINE_Q8_DW",
     .help = "auto|off|on: osprey's int8 depthwise kernel (default auto: where it applies, measured at load against oneDNN's int8)"},
    {.name = "engine-q8-pw", .kind = OSP_SET_FIELD, .off = T(q8_pw), .parse_field = parse_tune, .arg = "MODE", .env_alias = "OSP_ENGINE_Q8_PW",
     .help = "auto|off|on: osprey's int8 1x1 kernel (default auto: where it applies, measured at load against oneDNN's int8)"},
    {.name = "engine-q8-tile", .kind = OSP_SET_FIELD, .off = T(q8_tile), .parse_field = parse_tune, .arg = "MODE", .env_alias = "OSP_ENGINE_Q8_TILE",
     .help = "auto|off|on: oneDNN int8 convs tile by tile into cache-sized s32 buffers (default auto: yes)"},
    {.name = "engine-q8-tile-kb", .kind = OSP_SET_FIELD, .off = T(q8_tile_kb), .parse_field = parse_tile_kb, .arg = "KIB", .env_alias = "OSP_ENGINE_Q8_TILE_KB",
     .help = "KiB of s32 per int8 tile (default 0: 384)"},
    {.name = "engine-fcq", .kind = OSP_SET_FIELD, .off = T(fcq), .parse_field = parse_tune, .arg = "MODE", .env_alias = "OSP_ENGINE_FCQ",
     .help = "auto|off|on: exact fp32-carrier convs for quantized models (default auto: where the bound holds)"},
    {.name = "engine-batch-split", .kind = OSP_SET_FIELD, .off = T(batch_split), .parse_field = parse_tune, .arg = "MODE", .env_alias = "OSP_ENGINE_BATCH_SPLIT",
     .help = "auto|off|on: a batch shared by one-thread lanes (default auto: light graphs, even splits; on: whenever correct)"},
    {.name = "engine-bind", .kind = OSP_SET_FIELD, .off = T(bind), .parse_field = parse_bind, .arg = "MODE", .env_alias = "OSP_ENGINE_BIND",
     .help = "auto|off|on: bind the OpenMP team to distinct CPUs (default auto: runs that start from idleness; on: every run)"},
    {.name = "engine-profile", .kind = OSP_SET_FIELD, .off = T(profile), .parse_field = parse_bool, .arg = "MODE", .env_alias = "OSP_ENGINE_PROFILE",
     .help = "off|on: time every step; plans with timings go to stderr at exit (default off)"},
    {.name = "cache-dir", .kind = OSP_SET_FIELD, .off = T(cache_dir), .parse_field = parse_cache_dir, .arg = "DIR",
     .help = "DIR|off: where the engine's measured choices are kept (default $XDG_CACHE_HOME/osprey, else ~/.cache/osprey)"},
};
#undef T

size_t osp_cli_tuning_table(const osp_setting_t *own, size_t n_own,
                            size_t base_off, osp_setting_t *out) {
    memcpy(out, own, n_own * sizeof *own);
    for (size_t i = 0; i < OSP_ARRAY_LEN(rows); i++) {
        out[n_own + i] = rows[i];
        out[n_own + i].off += base_off;
        out[n_own + i].env_prefix = "OSPREY_"; /* the same in every command */
    }
    return n_own + OSP_ARRAY_LEN(rows);
}

void osp_cli_tuning_usage(FILE *f) {
    osp_settings_print_rows(rows, OSP_ARRAY_LEN(rows), f);
}

_Static_assert(OSP_ARRAY_LEN(rows) <= OSP_CLI_TUNING_MAX, "OSP_CLI_TUNING_MAX");

void osp_cli_tuning_longopts(const struct option *own, size_t n_own,
                             struct option *out) {
    memcpy(out, own, n_own * sizeof *own);
    for (size_t i = 0; i < OSP_ARRAY_LEN(rows); i++)
        out[n_own + i] = (struct option){rows[i].name, required_argument,
                                         NULL, OSP_CLI_TUNING_OPT + (int)i};
    out[n_own + OSP_ARRAY_LEN(rows)] = (struct option){0};
}

void osp_cli_tuning_defaults(osp_engine_tuning_t *t) {
    static char dir[4096];
    if (!dir[0]) {
        const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
        int n = x && *x   ? snprintf(dir, sizeof dir, "%s/osprey", x)
                : h && *h ? snprintf(dir, sizeof dir, "%s/.cache/osprey", h)
                          : -1;
        if (n < 0 || (size_t)n >= sizeof dir)
            dir[0] = 0;
    }
    t->cache_dir = dir[0] ? dir : NULL;
}

int osp_cli_tuning_flag(const char *cmd, int val, const char *arg,
                        osp_engine_tuning_t *t) {
    size_t i = (size_t)(val - OSP_CLI_TUNING_OPT);
    if (val < OSP_CLI_TUNING_OPT || i >= OSP_ARRAY_LEN(rows))
        return 1;
    osp_settings_t s = {.cmd = cmd, .env_prefix = "OSPREY_", .tab = rows,
                        .n = OSP_ARRAY_LEN(rows), .base = t};
    return osp_settings_set(&s, &rows[i], arg, "command line") < 0 ? -1 : 0;
}
