/* tune.c — the engine's machine-dependent choices, measured on the machine.
 *
 * Which activation layout the convolutions should use (channel-blocked
 * nChw16c, or oneDNN's own pick, usually NHWC), whether fp32 3x3 convs try
 * Winograd, and whether quantized models run osprey's own int8 depthwise
 * and 1x1 kernels or oneDNN's int8 depend on the CPU, the precision, the
 * batch and the model: measured
 * here, blocked was 1.1-1.6x faster than oneDNN's pick on a Zen4 (AVX-512,
 * no AMX) and for int8 on a Sapphire Rapids, but it rules out oneDNN's AMX
 * bf16 kernels there, which need NHWC (ResNet50 bf16: 15.6 vs 74 img/s).
 * No constant is right on both, so, as cuDNN's benchmark mode does, the
 * engine times the candidates before it builds its first plan and keeps
 * the fastest (docs/engine.md, "Measured choices").
 *
 * How: each candidate runs on a probe engine — an osp_engine_t that
 * borrows the graph and declared tensors but owns its plans, weight cache
 * and lanes — at the batch the engine will serve (max_batch when set, else
 * the first batch asked for): one warm-up run each, which also builds the
 * plan, then OSP_TUNE_RUNS rounds of one timed run per candidate on zero
 * inputs; each candidate's fastest run counts (the least disturbed on a
 * shared machine), and the first candidate in preference order within
 * OSP_TUNE_MARGIN of the fastest is kept. The probes live together while
 * they are timed: for a moment the engine holds each candidate's plan
 * (ResNet50 fp32: four copies of ~100 MB of reordered weights). The probe is destroyed, so the
 * real plans are built once, with the winner, as before.
 *
 * The decision is cached in <cache_dir>/engine-choices.tsv keyed by the
 * model bytes' hash, batch, precision, threads, CPU (vendor, family,
 * model, stepping), the ISA oneDNN actually uses (so a --max-isa ceiling
 * is a different key), oneDNN's version and the other tuning knobs that
 * shape the plans: a second load of the same
 * model on the same machine does not measure again. A cache file that
 * cannot be parsed is ignored (the note says so) and rewritten. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine_int.h"

#define OSP_TUNE_RUNS 3            /* timed runs per candidate (min counts) */
/* Candidates are listed in preference order (the long-standing default
 * first) and the first within this fraction of the fastest wins, so that
 * noise between near-equal candidates does not flip the choice from one
 * load to the next. */
#define OSP_TUNE_MARGIN 0.03
#define OSP_TUNE_SLOW_MS 1000.0    /* a warm-up this slow: 2 timed runs */
/* Largest batch measured: preferences settle well before it, and a larger
 * batch only makes the measurement slower (it costs in proportion). */
#define OSP_TUNE_MAX_BATCH 16
#define OSP_TUNE_FILE "engine-choices.tsv"
#define OSP_TUNE_FILE_MAX (1u << 20) /* a larger cache file is not read */
#define OSP_TUNE_KEY_BYTES 256
/* The generation of osprey's own candidate kernels, part of the cache key:
 * a choice made among other candidates is measured again (2: osprey's
 * fp32 Winograd, f32/f32_wino.c, where oneDNN 3 has none). */
#define OSP_TUNE_KERNELS 2

typedef struct cand_s {
    bool blocked;   /* nChw16c activations, else oneDNN's pick */
    bool winograd;  /* fp32 3x3 stride-1 convs try Winograd first */
    bool own_int8;  /* quantized graphs: osprey's own int8 depthwise and 1x1
                       kernels where they apply, else oneDNN's int8 */
    bool int8;      /* the graph is quantized: own_int8 is part of the name */
} cand_t;

static const char *cand_name(cand_t c) {
    static const char *names[2][2][3] = {
        {{"any", "any+own-int8", "any+onednn-int8"},
         {"any+winograd", "any+winograd+own-int8", "any+winograd+onednn-int8"}},
        {{"blocked", "blocked+own-int8", "blocked+onednn-int8"},
         {"blocked+winograd", "blocked+winograd+own-int8",
          "blocked+winograd+onednn-int8"}}};
    return names[c.blocked][c.winograd][c.int8 ? (c.own_int8 ? 1 : 2) : 0];
}

static int cand_parse(const char *s, cand_t *c) {
    for (int i = 0; i < 12; i++) {
        cand_t k = {i & 1, (i >> 1) & 1, (i >> 2) % 3 == 1, (i >> 2) > 0};
        if (!strcmp(s, cand_name(k))) {
            *c = k;
            return 0;
        }
    }
    return -1;
}

static void apply(osp_engine_t *e, cand_t c) {
    e->conv_blocked = c.blocked;
    e->conv_winograd = c.winograd;
    if (c.int8) {
        osp_tune_t own = c.own_int8 ? OSP_TUNE_AUTO : OSP_TUNE_OFF;
        e->opts.tuning.q8_dw = e->opts.tuning.q8_dw == OSP_TUNE_AUTO ? own
                                                                   : e->opts.tuning.q8_dw;
        e->opts.tuning.q8_pw = e->opts.tuning.q8_pw == OSP_TUNE_AUTO ? own
                                                                   : e->opts.tuning.q8_pw;
    }
}

/* ---- what there is to choose ------------------------------------------ */

/* Whether the graph has convolutions whose layout the choice affects, and
 * 3x3 stride-1 ones that Winograd could take. */
static void graph_convs(const osp_graph_t *g, bool *any, bool *wino) {
    *any = *wino = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op != OSP_OP_CONV || n->n_in < 2 || n->in[1] < 0)
            continue;
        *any = true;
        const osp_value_t *W = &g->values[n->in[1]];
        const osp_window_t *w = &n->p.conv.win;
        /* the convs f32/f32_wino.c takes (dilation checked there too) */
        if (W->rank == 4 && W->dims[2] == 3 && W->dims[3] == 3 &&
            W->dims[0] >= 16 && W->dims[1] >= 16 && n->p.conv.group <= 1 &&
            w->stride[0] <= 1 && w->stride[1] <= 1 && w->dilation[0] <= 1 &&
            w->dilation[1] <= 1)
            *wino = true;
    }
}

/* ---- the cache key ----------------------------------------------------- */

uint64_t osp__hash64(const void *buf, size_t len) {
    /* FNV-1a over 8-byte words (then the tail): ~0.1 s for a 100 MB model
     * would be too slow byte by byte; collisions only cost a wrong cached
     * layout, never a wrong result. */
    const uint8_t *p = buf;
    uint64_t h = 0xcbf29ce484222325ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void tune_key(const osp_engine_t *e, int64_t batch, char *buf,
                     size_t cap) {
    char cpu[48];
    osp__cpu_signature(cpu, sizeof cpu);
    const dnnl_version_t *v = dnnl_version();
    /* The knobs that shape the plans the candidates are timed with: a
     * choice measured with, say, oneDNN's int8 turned off says nothing
     * about the default paths. */
    const osp_engine_tuning_t *t = &e->opts.tuning;
    const int knobs[] = {t->conv_layout, t->winograd, t->int8_dnnl, t->q8_dw,
                         t->q8_pw, t->q8_tile, t->q8_tile_kb, t->fcq,
                         t->int8_requant, t->batch_split};
    snprintf(buf, cap,
             "model=%016llx batch=%lld precision=%s threads=%d cpu=%s "
             "isa=%x onednn=%d.%d.%d kernels=%d knobs=%08x",
             (unsigned long long)e->model_hash, (long long)batch,
             osp_precision_name(e->prec), e->threads, cpu,
             (unsigned)dnnl_get_effective_cpu_isa(), v->major, v->minor,
             v->patch, OSP_TUNE_KERNELS, (unsigned)osp__hash64(knobs, sizeof knobs));
}

/* ---- the cache file ---------------------------------------------------- */

/* The file's valid lines ("key\tchoice\tevidence"), or NULL with *bad set
 * when it exists but cannot be used. */
static char *cache_read(const char *path, bool *bad, char *why, size_t cap) {
    *bad = false;
    uint8_t *buf = NULL;
    size_t len = 0;
    osp_err_t err = {0};
    if (access(path, F_OK) != 0)
        return NULL;
    if (osp_read_file(path, OSP_TUNE_FILE_MAX, &buf, &len, &err) < 0) {
        *bad = true;
        snprintf(why, cap, "%.120s", err.msg);
        return NULL;
    }
    char *s = realloc(buf, len + 1);
    if (!s) {
        free(buf);
        return NULL;
    }
    s[len] = 0;
    if (memchr(s, 0, len)) {
        *bad = true;
        snprintf(why, cap, "it holds a NUL byte");
        free(s);
        return NULL;
    }
    /* Every non-comment line: three tab-separated fields, a known choice. */
    int line = 0;
    for (char *p = s; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        if (n && *p != '#') {
            char l[1024], *t1, *t2;
            cand_t c;
            if (n >= sizeof l) {
                *bad = true;
            } else {
                memcpy(l, p, n);
                l[n] = 0;
                t1 = strchr(l, '\t');
                t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
                if (t2)
                    *t2 = 0;
                *bad = !t1 || !t2 || strchr(t2 + 1, '\t') ||
                       cand_parse(t1 + 1, &c) < 0;
            }
            if (*bad) {
                snprintf(why, cap, "line %d is not key<TAB>choice<TAB>note",
                         line);
                free(s);
                return NULL;
            }
        }
        p += n + (nl ? 1 : 0);
    }
    return s;
}

/* The choice stored for key in the file's text, or -1. */
static int cache_find(const char *text, const char *key, cand_t *c,
                      char *evidence, size_t cap) {
    size_t kn = strlen(key);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        if (!strncmp(p, key, kn) && p[kn] == '\t') {
            char l[1024];
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            if (n >= sizeof l)
                return -1;
            memcpy(l, p, n);
            l[n] = 0;
            char *t1 = strchr(l, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
            if (!t2)
                return -1;
            *t2 = 0;
            snprintf(evidence, cap, "%s", t2 + 1);
            return cand_parse(t1 + 1, c);
        }
        p = nl ? nl + 1 : NULL;
    }
    return -1;
}

static int mkdir_p(const char *dir) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* Rewrites the file with old's lines for other keys plus this one, through
 * a temporary file and rename, so a concurrent reader never sees half a
 * file (two writers at once may lose one entry: it is measured again). */
static int cache_write(const char *dir, const char *path, const char *old,
                       const char *key, cand_t c, const char *evidence) {
    if (mkdir_p(dir) < 0)
        return -1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    fputs("# osprey engine choices: key<TAB>choice<TAB>measurement "
          "(docs/engine.md; safe to delete)\n", f);
    size_t kn = strlen(key);
    for (const char *p = old; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        bool same = !strncmp(p, key, kn) && p[kn] == '\t';
        if (n && *p != '#' && !same) {
            fwrite(p, 1, n, f);
            fputc('\n', f);
        }
        p = nl ? nl + 1 : NULL;
    }
    fprintf(f, "%s\t%s\t%s\n", key, cand_name(c), evidence);
    if (fclose(f) != 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- measuring --------------------------------------------------------- */

/* An engine that runs e's graph with its own plans, weight cache and lanes
 * (destroying it leaves e untouched). */
static osp_engine_t *probe_create(osp_engine_t *e, cand_t c, osp_err_t *err) {
    osp_engine_t *p = osp__engine_borrow(e, e->threads, err);
    if (p)
        apply(p, c);
    return p;
}

/* Times the candidates at `batch` and returns the fastest in *best, the
 * per-candidate times in evidence. 1 when none could run. */
static int measure(osp_engine_t *e, const int64_t *key, int64_t batch,
                   const cand_t *cands, int n_cands, cand_t *best,
                   char *evidence, size_t cap, osp_err_t *err) {
    const osp_graph_t *g = e->g;
    int n = g->n_inputs;
    osp_tensor_t *in = calloc((size_t)n, sizeof *in);
    osp_tensor_t *out = calloc((size_t)g->n_outputs, sizeof *out);
    int rc = in && out ? 0 : osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        in[i] = e->inputs[i];
        for (int k = 0; k < in[i].rank; k++)
            in[i].dims[k] = key[i * OSP_KEY_STRIDE + k];
        if (in[i].rank > 0 && e->inputs[i].dims[0] < 0)
            in[i].dims[0] = batch;
        size_t bytes = osp_tensor_numel(&in[i]) * osp_dtype_size(in[i].dtype);
        if (!(in[i].data = calloc(1, bytes ? bytes : 1)))
            rc = osp_err_set(err, OSP_ENOMEM, "engine: out of memory");
    }
    /* Every candidate's probe is built and warmed first, then the timed
     * runs go round the candidates, so that a disturbance (another process
     * waking up) hits them alike rather than one of them. */
    osp_engine_t *probe[8] = {0};
    int prc[8];
    double ms[8], fastest = 1e300, warm_max = 0;
    int no = g->n_outputs;
    for (int k = 0; rc == 0 && k < n_cands; k++) {
        osp_err_t perr = {0};
        ms[k] = 1e300;
        probe[k] = probe_create(e, cands[k], &perr);
        uint64_t t0 = osp_now_ns();
        prc[k] = probe[k] ? osp_engine_run(probe[k], in, n, out, no, &perr)
                          : perr.code;
        double warm = (double)(osp_now_ns() - t0) / 1e6;
        if (prc[k] == 0 && warm > warm_max)
            warm_max = warm;
        if (prc[k] == OSP_ENOMEM)
            rc = osp_err_set(err, OSP_ENOMEM, "%s", perr.msg);
        if (prc[k] < 0) { /* a failed candidate frees its memory at once */
            osp_engine_destroy(probe[k]);
            probe[k] = NULL;
        }
    }
    int runs = warm_max > OSP_TUNE_SLOW_MS ? 2 : OSP_TUNE_RUNS;
    for (int r = 0; rc == 0 && r < runs; r++)
        for (int k = 0; k < n_cands; k++) {
            if (prc[k] < 0)
                continue;
            osp_err_t perr = {0};
            uint64_t t0 = osp_now_ns();
            prc[k] = osp_engine_run(probe[k], in, n, out, no, &perr);
            double t = (double)(osp_now_ns() - t0) / 1e6;
            if (prc[k] == 0 && t < ms[k])
                ms[k] = t;
        }
    size_t used = 0;
    evidence[0] = 0;
    for (int k = 0; rc == 0 && k < n_cands; k++) {
        int w = prc[k] < 0
                    ? snprintf(evidence + used, cap - used, "%s%s failed (%s)",
                               used ? ", " : "", cand_name(cands[k]),
                               osp_errname(prc[k]))
                    : snprintf(evidence + used, cap - used, "%s%s %.4g ms",
                               used ? ", " : "", cand_name(cands[k]), ms[k]);
        if (w > 0 && (size_t)w < cap - used)
            used += (size_t)w;
        if (prc[k] < 0)
            ms[k] = 1e300;
        else if (ms[k] < fastest)
            fastest = ms[k];
    }
    for (int k = 0; k < n_cands; k++)
        osp_engine_destroy(probe[k]);
    int pick = -1;
    for (int k = 0; rc == 0 && k < n_cands && pick < 0; k++)
        if (ms[k] < 1e300 && ms[k] <= fastest * (1 + OSP_TUNE_MARGIN))
            pick = k;
    if (pick >= 0)
        *best = cands[pick];
    for (int i = 0; in && i < n; i++)
        free(in[i].data);
    free(in);
    free(out);
    if (rc < 0)
        return rc;
    return pick >= 0 ? 0 : 1;
}

/* ---- API (engine_int.h) ------------------------------------------------- */

/* osp__tune's work; what it chose and why goes to note. */
static int tune(osp_engine_t *e, const int64_t *key, osp__sbuf_t *note,
                osp_err_t *err) {
    const osp_engine_tuning_t *t = &e->opts.tuning;
    bool convs, wino;
    graph_convs(e->g, &convs, &wino);
    if (!convs)
        return 0;
    wino = wino && e->prec == OSP_PREC_FP32 && osp__f32_wino_ok();
    bool int8 = e->g->quantized && e->prec == OSP_PREC_INT8;
    /* below AVX-512 blocked would run on reference kernels: not a
     * candidate (the engine starts from any there) */
    bool fixed_layout = t->conv_layout != OSP_CONV_LAYOUT_AUTO ||
                        !osp__cpu_caps()->avx512;
    bool fixed_wino = !wino || t->winograd != OSP_TUNE_AUTO;
    /* the own kernels are measured as one switch, unless either is set */
    bool fixed_int8 = !int8 || t->q8_dw != OSP_TUNE_AUTO ||
                      t->q8_pw != OSP_TUNE_AUTO;
    cand_t cur = {e->conv_blocked, e->conv_winograd && wino,
                  int8 && (t->q8_dw != OSP_TUNE_OFF || t->q8_pw != OSP_TUNE_OFF),
                  int8};
    if (fixed_layout && fixed_wino && fixed_int8) {
        bool by_options = t->conv_layout != OSP_CONV_LAYOUT_AUTO ||
                          (wino && t->winograd != OSP_TUNE_AUTO) ||
                          (int8 && (t->q8_dw != OSP_TUNE_AUTO ||
                                    t->q8_pw != OSP_TUNE_AUTO));
        bool by_isa = t->conv_layout == OSP_CONV_LAYOUT_AUTO;
        osp__sb_printf(note, "conv layout %s: %s%s", cand_name(cur),
                       by_options ? "set by the options"
                                  : "the only candidate on this CPU",
                       by_isa ? " (blocked needs AVX-512)" : "");
        return 0;
    }
    for (int i = 0; i < e->g->n_inputs; i++)
        if (e->param_input[i]) {
            osp__sb_printf(note, "conv layout %s: default (shape-parameter inputs "
                        "are not measured)", cand_name(cur));
            return 0;
        }
    /* Candidates, in preference order: both layouts unless the options fix
     * one; with and without Winograd where it applies; with and without
     * the own int8 kernels for quantized graphs; each unless fixed. */
    cand_t cands[8];
    int n_cands = 0;
    for (int b = 1; b >= 0; b--) {
        if (fixed_layout && b != cur.blocked)
            continue;
        for (int w = 1; w >= 0; w--) {
            if (fixed_wino && w != cur.winograd)
                continue;
            for (int q = int8; q >= 0; q--) {
                if (fixed_int8 && q != cur.own_int8)
                    continue;
                cands[n_cands++] = (cand_t){b, w, q, int8};
            }
        }
    }
    int64_t batch = e->g->n_inputs > 0 ? key[0] : 1;
    if (e->opts.max_batch > 0 && e->inputs[0].rank > 0 &&
        e->inputs[0].dims[0] < 0)
        batch = e->opts.max_batch;
    if (batch > OSP_TUNE_MAX_BATCH && e->inputs[0].dims[0] < 0)
        batch = OSP_TUNE_MAX_BATCH;

    char k[OSP_TUNE_KEY_BYTES], path[4200] = "", why[160] = "",
         evidence[512] = "";
    tune_key(e, batch, k, sizeof k);
    bool use_cache = t->cache_dir && *t->cache_dir && e->model_hash;
    char *old = NULL;
    if (use_cache) {
        snprintf(path, sizeof path, "%s/%s", t->cache_dir, OSP_TUNE_FILE);
        bool bad = false;
        old = cache_read(path, &bad, why, sizeof why);
        cand_t c;
        if (bad)
            osp__sb_printf(note, "warning: ignoring the choices cache %s (%s); ",
                     path, why);
        else if (old && cache_find(old, k, &c, evidence, sizeof evidence) == 0) {
            bool ok = false;
            for (int i = 0; i < n_cands; i++)
                ok = ok || (cands[i].blocked == c.blocked &&
                            cands[i].winograd == c.winograd &&
                            cands[i].own_int8 == c.own_int8 &&
                            cands[i].int8 == c.int8);
            if (ok) {
                apply(e, c);
                osp__sb_printf(note, "conv layout %s: cached in %s (measured at batch "
                            "%lld: %s)",
                         cand_name(c), path, (long long)batch, evidence);
                free(old);
                return 0;
            }
        }
    }
    cand_t best = cur;
    int rc = measure(e, key, batch, cands, n_cands, &best, evidence,
                     sizeof evidence, err);
    if (rc < 0) {
        free(old);
        return rc;
    }
    apply(e, best);
    if (rc == 1) {
        osp__sb_printf(note, "conv layout %s: default (no candidate ran: %s)",
                 cand_name(best), evidence);
        free(old);
        return 0;
    }
    osp__sb_printf(note, "conv layout %s: measured at batch %lld, %d threads, the "
                "first within %.0f%% of the fastest (%s)",
             cand_name(best), (long long)batch, e->threads,
             OSP_TUNE_MARGIN * 100, evidence);
    if (use_cache && cache_write(t->cache_dir, path, old, k, best, evidence) < 0)
        osp__sb_printf(note, "; warning: cannot write the choices cache %s", path);
    free(old);
    return 0;
}

int osp__tune(osp_engine_t *e, const int64_t *key, osp_err_t *err) {
    if (e->tuned)
        return 0;
    e->tuned = true; /* whatever happens, decide once */
    osp__sbuf_t note = {0};
    int rc = tune(e, key, &note, err);
    free(e->tune_note);
    e->tune_note = note.s;
    return rc;
}

const char *osp_engine_choices(const osp_engine_t *e) {
    return e && e->tune_note ? e->tune_note : "";
}
