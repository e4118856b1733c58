/* osp_run_model.c — test helper: loads a model with osp_engine_load, feeds it
 * input tensors read from .npy files (or raw little-endian files with the
 * dtype and shape given on the command line), runs it once and writes every
 * output as OUTDIR/output_<i>.npy.
 *
 * It exists so that script tests (tests/integration/onnx_vs_ort.*) can
 * compare osprey with an oracle such as ONNX Runtime on identical bytes,
 * without the oracle needing to link against osprey.
 *
 *   osp_run_model --model PATH [--precision fp32|bf16|int8|auto] [--threads N]
 *                 [--verbose] --input FILE.npy | --input FILE:DTYPE:D0xD1x...
 *                 [--input ...] [--out-dir DIR] [--engine-KNOB VALUE ...]
 *
 * The --engine-* tuning flags are osprey's own (src/cli/tuning.c); unlike
 * the osprey commands this tool reads no OSPREY_ENGINE_* environment, so
 * a test's path is decided by its command line alone.
 *
 * DTYPE for raw inputs: f32, u8, s8, s32, s64. Prints one line per output
 * and a final "precision=<used>" line on stdout. Exit 0 on success, 1 on any
 * error (message on stderr), 2 on bad usage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/tuning.h"
#include "osprey/common.h"
#include "osprey/engine.h"

#define RUN_MAX_INPUTS 16
#define RUN_MAX_FILE_BYTES ((size_t)2 << 30) /* refuse inputs over 2 GiB */

/* numpy descr <-> osprey dtype. Only little-endian / byte-sized types. */
static const struct {
    const char *descr;
    const char *shortname;
    osp_dtype_t dt;
} dtype_map[] = {
    {"<f4", "f32", OSP_DT_F32}, {"|u1", "u8", OSP_DT_U8},
    {"|i1", "s8", OSP_DT_S8},   {"<i4", "s32", OSP_DT_S32},
    {"<i8", "s64", OSP_DT_S64}, {"|b1", "bool", OSP_DT_BOOL},
    {"<f2", "f16", OSP_DT_F16},
};

static int dtype_from_short(const char *s, osp_dtype_t *dt) {
    for (size_t i = 0; i < OSP_ARRAY_LEN(dtype_map); i++)
        if (!strcmp(s, dtype_map[i].shortname)) {
            *dt = dtype_map[i].dt;
            return 0;
        }
    return OSP_EINVAL;
}

/* Parses "1x3x224x224" into t->dims/rank. */
static int parse_dims(const char *s, osp_tensor_t *t) {
    t->rank = 0;
    while (*s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || v < 0 || t->rank >= OSP_MAX_RANK)
            return OSP_EINVAL;
        t->dims[t->rank++] = v;
        if (*end == 'x')
            end++;
        else if (*end)
            return OSP_EINVAL;
        s = end;
    }
    return 0;
}

/* Parses a .npy v1/v2/v3 header: descr, fortran_order=False, shape. */
static int npy_parse(const uint8_t *buf, size_t len, osp_tensor_t *t,
                     size_t *data_off, const char *path, osp_err_t *err) {
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return osp_err_set(err, OSP_EFORMAT, "%s: not a .npy file", path);
    int major = buf[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hoff = 10;
    } else if ((major == 2 || major == 3) && len >= 12) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
        hoff = 12;
    } else {
        return osp_err_set(err, OSP_EFORMAT, "%s: .npy version %d unsupported",
                           path, major);
    }
    if (hlen > 65536 || hoff + hlen > len)
        return osp_err_set(err, OSP_EFORMAT, "%s: truncated .npy header", path);
    char hdr[65537];
    memcpy(hdr, buf + hoff, hlen);
    hdr[hlen] = 0;

    const char *d = strstr(hdr, "'descr'");
    const char *f = strstr(hdr, "'fortran_order'");
    const char *s = strstr(hdr, "'shape'");
    if (!d || !f || !s)
        return osp_err_set(err, OSP_EFORMAT, "%s: .npy header lacks descr/"
                                             "fortran_order/shape", path);
    d = strchr(d + 7, '\'');
    if (!d)
        return osp_err_set(err, OSP_EFORMAT, "%s: bad descr", path);
    t->dtype = OSP_DT_UNDEF;
    for (size_t i = 0; i < OSP_ARRAY_LEN(dtype_map); i++) {
        size_t n = strlen(dtype_map[i].descr);
        if (!strncmp(d + 1, dtype_map[i].descr, n) && d[1 + n] == '\'')
            t->dtype = dtype_map[i].dt;
    }
    if (t->dtype == OSP_DT_UNDEF)
        return osp_err_set(err, OSP_EUNSUPPORTED, "%s: numpy dtype %.8s not "
                           "supported (want <f4 |u1 |i1 <i4 <i8 |b1 <f2)",
                           path, d + 1);
    if (!strstr(f, "False"))
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "%s: fortran_order arrays not supported", path);
    s = strchr(s, '(');
    if (!s)
        return osp_err_set(err, OSP_EFORMAT, "%s: bad shape", path);
    s++;
    t->rank = 0;
    for (;;) {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || v < 0 || t->rank >= OSP_MAX_RANK)
            return osp_err_set(err, OSP_EFORMAT, "%s: bad shape", path);
        t->dims[t->rank++] = v;
        s = end;
    }
    *data_off = hoff + hlen;
    return 0;
}

/* Loads one --input argument into t (t->data is malloc'd; caller frees). */
static int load_input(const char *arg, osp_tensor_t *t, osp_err_t *err) {
    char path[4096];
    const char *spec = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, off = 0;
    int rc;

    memset(t, 0, sizeof(*t));
    /* FILE:DTYPE:DIMS — split at the last two colons, if DIMS looks right. */
    const char *c2 = strrchr(arg, ':');
    if (c2 && c2 != arg && strspn(c2 + 1, "0123456789x") == strlen(c2 + 1) &&
        c2[1]) {
        const char *c1 = c2 - 1;
        while (c1 > arg && *c1 != ':')
            c1--;
        if (*c1 == ':')
            spec = c1;
    }
    size_t plen = spec ? (size_t)(spec - arg) : strlen(arg);
    if (plen >= sizeof(path))
        return osp_err_set(err, OSP_EINVAL, "input path too long");
    memcpy(path, arg, plen);
    path[plen] = 0;

    if ((rc = osp_read_file(path, RUN_MAX_FILE_BYTES, &buf, &len, err)) < 0)
        return rc;
    if (spec) {
        char dt[16];
        const char *c2b = strchr(spec + 1, ':');
        size_t dlen = (size_t)(c2b - spec - 1);
        if (dlen >= sizeof(dt)) {
            rc = osp_err_set(err, OSP_EINVAL, "%s: bad dtype in '%s'", path, arg);
            goto fail;
        }
        memcpy(dt, spec + 1, dlen);
        dt[dlen] = 0;
        if (dtype_from_short(dt, &t->dtype) < 0 || parse_dims(c2b + 1, t) < 0) {
            rc = osp_err_set(err, OSP_EINVAL, "bad raw input spec '%s' (want "
                             "FILE:f32|u8|s8|s32|s64:D0xD1x...)", arg);
            goto fail;
        }
    } else if ((rc = npy_parse(buf, len, t, &off, path, err)) < 0) {
        goto fail;
    }
    size_t need = osp_tensor_numel(t) * osp_dtype_size(t->dtype);
    if (len - off != need) {
        rc = osp_err_set(err, OSP_ESHAPE, "%s: %zu data bytes, shape/dtype "
                         "need %zu", path, len - off, need);
        goto fail;
    }
    t->data = malloc(need ? need : 1);
    if (!t->data) {
        rc = osp_err_set(err, OSP_ENOMEM, "%s: %zu bytes", path, need);
        goto fail;
    }
    memcpy(t->data, buf + off, need);
    free(buf);
    return 0;
fail:
    free(buf);
    return rc;
}

static float bf16_to_f32(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* Writes t as .npy v1.0. bf16 (which numpy lacks) is widened to <f4. */
static int npy_write(const char *path, const osp_tensor_t *t, osp_err_t *err) {
    const char *descr = NULL;
    size_t n = osp_tensor_numel(t);
    osp_dtype_t dt = t->dtype == OSP_DT_BF16 ? OSP_DT_F32 : t->dtype;
    for (size_t i = 0; i < OSP_ARRAY_LEN(dtype_map); i++)
        if (dtype_map[i].dt == dt)
            descr = dtype_map[i].descr;
    if (!descr)
        return osp_err_set(err, OSP_EUNSUPPORTED, "%s: cannot write dtype %s",
                           path, osp_dtype_name(t->dtype));
    char hdr[512];
    int h = snprintf(hdr, sizeof(hdr),
                     "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    for (int d = 0; d < t->rank; d++)
        h += snprintf(hdr + h, sizeof(hdr) - (size_t)h, "%lld, ",
                      (long long)t->dims[d]);
    if (t->rank == 1)
        h -= 1; /* "(N,)" */
    else if (t->rank > 1)
        h -= 2;
    h += snprintf(hdr + h, sizeof(hdr) - (size_t)h, "), }");
    /* Pad with spaces so that 10 + header length is a multiple of 64. */
    size_t total = 10 + (size_t)h + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(hdr + h, ' ', pad);
    h += (int)pad;
    hdr[h++] = '\n';

    FILE *f = fopen(path, "wb");
    if (!f)
        return osp_err_set(err, OSP_EIO, "%s: %s", path, strerror(errno));
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                       (uint8_t)(h & 0xff), (uint8_t)(h >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)h, f) == (size_t)h;
    if (ok && t->dtype == OSP_DT_BF16) {
        const uint16_t *src = t->data;
        for (size_t i = 0; i < n && ok; i++) {
            float v = bf16_to_f32(src[i]);
            ok = fwrite(&v, sizeof(v), 1, f) == 1;
        }
    } else if (ok) {
        size_t bytes = n * osp_dtype_size(t->dtype);
        ok = fwrite(t->data, 1, bytes, f) == bytes;
    }
    if (fclose(f) != 0)
        ok = 0;
    if (!ok)
        return osp_err_set(err, OSP_EIO, "%s: write failed", path);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: osp_run_model --model PATH [--precision P] [--threads N] "
               "[--verbose]\n"
               "                     --input FILE.npy|FILE:DTYPE:D0xD1... "
               "[--input ...] [--out-dir DIR]\n");
    osp_cli_tuning_usage(f);
}

/* The command line. */
typedef struct args_s {
    const char *model, *out_dir;
    const char *input_args[RUN_MAX_INPUTS];
    int n_in;
    osp_engine_opts_t eo;
} args_t;

/* Fills a from argv; returns -1 to go on, else the exit code (0 after
 * --help, 2 on bad usage, with the message printed). */
static int parse_args(int argc, char **argv, args_t *a) {
    static const struct option own[] = {
        {"model", required_argument, 0, 'm'},
        {"precision", required_argument, 0, 'p'},
        {"threads", required_argument, 0, 't'},
        {"input", required_argument, 0, 'i'},
        {"out-dir", required_argument, 0, 'o'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}};
    struct option longopts[OSP_ARRAY_LEN(own) + OSP_CLI_TUNING_MAX + 1];
    osp_cli_tuning_longopts(own, OSP_ARRAY_LEN(own), longopts);
    int c;
    memset(a, 0, sizeof *a);
    a->out_dir = ".";
    osp_engine_opts_init(&a->eo);
    while ((c = getopt_long(argc, argv, "m:p:t:i:o:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'p':
            if (osp_precision_parse(optarg, &a->eo.precision) < 0) {
                fprintf(stderr, "osp_run_model: bad --precision '%s'\n", optarg);
                return 2;
            }
            break;
        case 't': a->eo.threads = atoi(optarg); break;
        case 'i':
            if (a->n_in == RUN_MAX_INPUTS) {
                fprintf(stderr, "osp_run_model: at most %d inputs\n", RUN_MAX_INPUTS);
                return 2;
            }
            a->input_args[a->n_in++] = optarg;
            break;
        case 'o': a->out_dir = optarg; break;
        case 'v': a->eo.verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default:
            if (osp_cli_tuning_flag("osp_run_model", c, optarg, &a->eo.tuning) == 0)
                break;
            usage(stderr);
            return 2;
        }
    }
    if (!a->model || a->n_in == 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* Writes every output as OUT_DIR/output_<i>.npy and prints its line.
 * Returns 0 or 1 (message printed). */
static int write_outputs(const osp_tensor_t *out, int n_out,
                         const char *out_dir) {
    osp_err_t err = {0};
    for (int i = 0; i < n_out; i++) {
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/output_%d.npy", out_dir, i);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            fprintf(stderr, "osp_run_model: --out-dir too long\n");
            return 1;
        }
        if (npy_write(path, &out[i], &err) < 0) {
            fprintf(stderr, "osp_run_model: %s\n", err.msg);
            return 1;
        }
        printf("output %d %s %s [", i, out[i].name ? out[i].name : "?",
               osp_dtype_name(out[i].dtype));
        for (int d = 0; d < out[i].rank; d++)
            printf("%s%lld", d ? "," : "", (long long)out[i].dims[d]);
        printf("] -> %s\n", path);
    }
    return 0;
}

/* Loads the inputs and the model, runs it once and writes the outputs.
 * Returns the exit code: 0, or 1 (message printed). */
static int run_model(const args_t *a) {
    int n_in = a->n_in, ret = 1;
    osp_err_t err = {0};
    osp_engine_t *e = NULL;
    osp_tensor_t in[RUN_MAX_INPUTS];
    osp_tensor_t *out = NULL;
    int n_out = 0;

    memset(in, 0, sizeof(in));
    for (int i = 0; i < n_in; i++)
        if (load_input(a->input_args[i], &in[i], &err) < 0) {
            fprintf(stderr, "osp_run_model: %s\n", err.msg);
            goto done;
        }

    e = osp_engine_load(a->model, &a->eo, &err);
    if (!e) {
        fprintf(stderr, "osp_run_model: %s\n", err.msg);
        goto done;
    }
    if (osp_engine_num_inputs(e) != n_in) {
        fprintf(stderr, "osp_run_model: %s declares %d inputs, %d given\n",
                a->model, osp_engine_num_inputs(e), n_in);
        goto done;
    }
    n_out = osp_engine_num_outputs(e);
    out = calloc((size_t)(n_out > 0 ? n_out : 1), sizeof(*out));
    if (!out) {
        fprintf(stderr, "osp_run_model: out of memory\n");
        goto done;
    }
    if (osp_engine_run(e, in, n_in, out, n_out, &err) < 0) {
        fprintf(stderr, "osp_run_model: run: %s\n", err.msg);
        goto done;
    }
    if (write_outputs(out, n_out, a->out_dir))
        goto done;
    printf("precision=%s\n", osp_precision_name(osp_engine_precision(e)));
    ret = 0;
done:
    for (int i = 0; i < n_in; i++)
        free(in[i].data);
    free(out);
    if (e)
        osp_engine_destroy(e);
    return ret;
}

int main(int argc, char **argv) {
    args_t a;
    int rc = parse_args(argc, argv, &a);
    return rc >= 0 ? rc : run_model(&a);
}
