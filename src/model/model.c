/* model.c — osp_model_t: finds and reads a model's config and labels, keeps
 * the defaults that make the stock ImageNet classifiers work without any
 * config, and reconciles all of it with the model's declared input and
 * output (osp_model_bind). The config format and every default are
 * documented in docs/model-config.md; keep the two in step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model_int.h"

/* torchvision / ONNX-zoo ImageNet normalisation of RGB in [0, 1]. */
static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f};
static const float IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};
#define OSP__DEFAULT_SIZE 224        /* pixels, width and height */
#define OSP__DEFAULT_RESIZE_SHORT 256 /* pixels; 256/224 is torchvision's */
#define OSP__DEFAULT_FRACTION 0.875f /* = 224/256, TF-slim's central crop */

const char *osp_output_kind_name(osp_output_kind_t k) {
    static const char *names[] = {"logits", "probabilities"};
    return (unsigned)k < OSP_OUTPUT_COUNT ? names[k] : "?";
}

static bool is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Basename without its last extension: "a/resnet50.onnx" → "resnet50". */
static char *stem_of(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return strndup(base, n);
}

/* The model name when the config gives none: the file's stem, with
 * characters that are not allowed in names replaced by '_'. */
static char *default_name(const char *path) {
    char *s = stem_of(path);
    if (!s)
        return NULL;
    if (strlen(s) > OSP_MODEL_NAME_MAX)
        s[OSP_MODEL_NAME_MAX] = '\0';
    for (char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' ||
                  ((c == '.' || c == '-') && p != s);
        if (!ok)
            *p = '_';
    }
    if (!*s) {
        free(s);
        return strdup("model");
    }
    return s;
}

static void set_defaults(osp_model_t *m) {
    osp_preprocess_t *p = &m->pre;
    memset(p, 0, sizeof *p);
    p->mode = OSP_RESIZE_SHORT_CROP;
    p->resize_short = OSP__DEFAULT_RESIZE_SHORT;
    p->central_fraction = OSP__DEFAULT_FRACTION;
    p->out_w = p->out_h = OSP__DEFAULT_SIZE;
    p->layout = OSP_LAYOUT_NCHW;
    p->dtype = OSP_DT_F32;
    m->precision = OSP_PREC_AUTO;
    m->max_batch = 0;
    m->output_kind = OSP_OUTPUT_LOGITS;
    m->label_offset = 0;
    osp__model_serving_defaults(&m->serving);
    osp__model_derive_defaults(m);
}

void osp__model_derive_defaults(osp_model_t *m) {
    osp_preprocess_t *p = &m->pre;
    bool u8 = p->dtype == OSP_DT_U8;
    if (!(m->set & OSP__SET_MODE))
        p->mode = u8 ? OSP_RESIZE_EXACT : OSP_RESIZE_SHORT_CROP;
    if (!(m->set & OSP__SET_RESIZE_SHORT)) {
        /* Keep torchvision's 256:224 ratio for other input sizes. */
        int side = OSP_MAX(p->out_w, p->out_h);
        p->resize_short = (int)lround((double)side * OSP__DEFAULT_RESIZE_SHORT /
                                      OSP__DEFAULT_SIZE);
    }
    if (!(m->set & OSP__SET_SCALE))
        p->scale = u8 ? 1.f : 1.f / 255.f;
    for (int c = 0; c < 3; c++) {
        if (!(m->set & OSP__SET_MEAN))
            p->mean[c] = u8 ? 0.f : IMAGENET_MEAN[c];
        if (!(m->set & OSP__SET_STD))
            p->std[c] = u8 ? 1.f : IMAGENET_STD[c];
    }
}

/* Cross-field checks, once the sizes are final (at open and at bind). */
static int check_preprocess(const osp_model_t *m, osp_err_t *err) {
    const osp_preprocess_t *p = &m->pre;
    if (p->mode == OSP_RESIZE_SHORT_CROP &&
        (p->resize_short < p->out_w || p->resize_short < p->out_h))
        return osp_err_set(err, OSP_EINVAL,
                           "model %s: preprocess.resize_short %d is smaller "
                           "than the %dx%d input it is cropped to (config: "
                           "%s)",
                           m->name, p->resize_short, p->out_w, p->out_h,
                           m->config_path ? m->config_path : "none");
    /* The image module's own rules (size limits, ...) apply as well. */
    int rc = osp_preprocess_validate(p, err);
    if (rc)
        return osp_err_prefix(err, "model %s (config: %s)", m->name,
                              m->config_path ? m->config_path : "none");
    return 0;
}

static int load_config(osp_model_t *m, const char *path, char **labels,
                       osp_err_t *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = osp_read_file(path, OSP_MODEL_CONFIG_MAX_BYTES, &buf, &len, err);
    if (rc)
        return osp_err_prefix(err, "model config");
    rc = osp__model_config_parse(m, path, (const char *)buf, len, labels, err);
    free(buf);
    if (rc)
        return rc;
    m->config_path = strdup(path);
    return m->config_path ? 0 : osp_err_set(err, OSP_ENOMEM, "%s", path);
}

/* The config file to use when none is given: `<model stem>.json` beside the
 * model, then `config.json` in the model's directory. NULL if neither. */
static char *find_config(const char *model_path) {
    char *dir = osp__dir_of(model_path), *stem = stem_of(model_path);
    char *found = NULL, *cand = NULL;
    if (!dir || !stem)
        goto out;
    if (asprintf(&cand, "%s/%s.json", dir, stem) < 0) {
        cand = NULL;
        goto out;
    }
    /* A model path that itself ends in .json is not its own config. */
    if (strcmp(cand, model_path) != 0 && is_regular_file(cand)) {
        found = cand;
        cand = NULL;
        goto out;
    }
    free(cand);
    if (asprintf(&cand, "%s/config.json", dir) < 0) {
        cand = NULL;
        goto out;
    }
    if (is_regular_file(cand)) {
        found = cand;
        cand = NULL;
    }
out:
    free(cand);
    free(dir);
    free(stem);
    return found;
}

/* Labels used when neither the caller nor the config names a file; see
 * docs/model-config.md "Labels". Only kept at bind time if the file's length
 * fits the model's class count. NULL if none exists. */
static char *find_labels(const char *model_path) {
    char *dir = osp__dir_of(model_path);
    if (!dir)
        return NULL;
    const char *models = getenv("OSPREY_MODELS");
    bool env = models && *models;
    /* base directory, file; see the docs for why these. */
    const char *cands[][2] = {
        {dir, "labels.txt"},
        {dir, "imagenet_labels.txt"},
        {dir, "tflite/imagenet_labels.txt"},
        {dir, "../tflite/imagenet_labels.txt"},
        {env ? models : NULL, "imagenet_labels.txt"},
        {env ? models : NULL, "tflite/imagenet_labels.txt"},
    };
    char *found = NULL;
    for (size_t i = 0; i < OSP_ARRAY_LEN(cands) && !found; i++) {
        char *p = NULL;
        if (!cands[i][0] || asprintf(&p, "%s/%s", cands[i][0], cands[i][1]) < 0)
            continue;
        if (is_regular_file(p))
            found = p;
        else
            free(p);
    }
    free(dir);
    return found;
}

osp_model_t *osp_model_open(const char *model_path, const char *labels_path,
                            const char *config_path, osp_err_t *err) {
    char *cfg_labels = NULL, *found_cfg = NULL;
    if (!model_path || !*model_path) {
        osp_err_set(err, OSP_EINVAL, "model path is empty");
        return NULL;
    }
    osp_model_t *m = calloc(1, sizeof *m);
    if (!m) {
        osp_err_set(err, OSP_ENOMEM, "%s", model_path);
        return NULL;
    }
    set_defaults(m);
    m->path = strdup(model_path);
    if (!m->path)
        goto nomem;

    if (config_path) {
        if (load_config(m, config_path, &cfg_labels, err))
            goto fail;
    } else if ((found_cfg = find_config(model_path)) != NULL) {
        if (load_config(m, found_cfg, &cfg_labels, err))
            goto fail;
    }
    if (!m->name && !(m->name = default_name(model_path)))
        goto nomem;

    const char *lp = labels_path ? labels_path : cfg_labels;
    if (lp) {
        if (!(m->labels_path = strdup(lp)))
            goto nomem;
    } else if ((m->labels_path = find_labels(model_path)) != NULL) {
        m->labels_searched = true;
    }
    if (m->labels_path &&
        osp__labels_load(m->labels_path, &m->labels, err) != 0) {
        if (cfg_labels && !labels_path)
            osp_err_prefix(err, "%s: key 'labels'", m->config_path);
        goto fail;
    }
    osp__model_derive_defaults(m);
    if (check_preprocess(m, err))
        goto fail;
    free(cfg_labels);
    free(found_cfg);
    return m;
nomem:
    osp_err_set(err, OSP_ENOMEM, "opening model %s", model_path);
fail:
    free(cfg_labels);
    free(found_cfg);
    osp_model_close(m);
    return NULL;
}

void osp_model_close(osp_model_t *m) {
    if (!m)
        return;
    free(m->path);
    free(m->config_path);
    free(m->labels_path);
    free(m->name);
    free(m->calib_dir);
    osp__labels_fini(&m->labels);
    free(m->table);
    free(m->synth);
    free(m);
}

static void dims_str(const osp_tensor_t *t, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->rank && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, i ? ",%lld" : "%lld",
                              (long long)t->dims[i]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

/* Fits a configured (or default) image size to a declared dimension. */
static int fit_dim(osp_model_t *m, const char *what, unsigned flag,
                   int64_t dim, int *val, const char *in_name,
                   const char *in_dims, osp_err_t *err) {
    if (dim <= 0)
        return 0; /* dynamic: the config (or the default) decides */
    if ((m->set & flag) && *val != dim)
        return osp_err_set(err, OSP_EINVAL,
                           "model %s: config preprocess.%s is %d but input "
                           "'%s' %s needs %lld",
                           m->name, what, *val, in_name, in_dims,
                           (long long)dim);
    if (dim > 16384)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "model %s: input '%s' %s: %s %lld is too large",
                           m->name, in_name, in_dims, what, (long long)dim);
    *val = (int)dim;
    return 0;
}

static int bind_input(osp_model_t *m, const osp_tensor_t *in,
                      osp_err_t *err) {
    char ds[160];
    dims_str(in, ds, sizeof ds);
    const char *nm = in->name ? in->name : "0";
    if (in->rank != 4)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "model %s: input '%s' %s is not an image batch "
                           "([N,3,H,W] or [N,H,W,3])",
                           m->name, nm, ds);
    osp_preprocess_t *p = &m->pre;
    if (m->set & OSP__SET_LAYOUT) {
        int64_t ch = in->dims[p->layout == OSP_LAYOUT_NCHW ? 1 : 3];
        if (ch > 0 && ch != 3)
            return osp_err_set(err, OSP_EINVAL,
                               "model %s: config preprocess.layout is \"%s\" "
                               "but input '%s' %s does not have 3 channels "
                               "there",
                               m->name,
                               p->layout == OSP_LAYOUT_NCHW ? "nchw" : "nhwc",
                               nm, ds);
    } else if (in->dims[1] == 3) {
        p->layout = OSP_LAYOUT_NCHW;
    } else if (in->dims[3] == 3) {
        p->layout = OSP_LAYOUT_NHWC;
    } else {
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "model %s: cannot tell the layout of input '%s' %s "
                           "(no dimension of 3 channels); set "
                           "preprocess.layout in the model config",
                           m->name, nm, ds);
    }
    bool nchw = p->layout == OSP_LAYOUT_NCHW;
    int rc = fit_dim(m, "height", OSP__SET_HEIGHT, in->dims[nchw ? 2 : 1],
                     &p->out_h, nm, ds, err);
    if (rc)
        return rc;
    rc = fit_dim(m, "width", OSP__SET_WIDTH, in->dims[nchw ? 3 : 2], &p->out_w,
                 nm, ds, err);
    if (rc)
        return rc;
    if (in->dtype != OSP_DT_F32 && in->dtype != OSP_DT_U8)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "model %s: input '%s' has type %s; images can feed "
                           "f32 or u8 inputs",
                           m->name, nm, osp_dtype_name(in->dtype));
    if ((m->set & OSP__SET_DTYPE) && p->dtype != in->dtype)
        return osp_err_set(err, OSP_EINVAL,
                           "model %s: config preprocess.dtype is %s but input "
                           "'%s' is %s",
                           m->name, osp_dtype_name(p->dtype), nm,
                           osp_dtype_name(in->dtype));
    p->dtype = in->dtype;
    int64_t batch = in->dims[0];
    if (batch > 0) {
        if ((m->set & OSP__SET_MAX_BATCH) && m->max_batch > batch)
            return osp_err_set(err, OSP_EINVAL,
                               "model %s: config max_batch_size %d exceeds "
                               "the fixed batch %lld of input '%s'",
                               m->name, m->max_batch, (long long)batch, nm);
        if (!(m->set & OSP__SET_MAX_BATCH))
            m->max_batch = batch > 65536 ? 65536 : (int)batch;
    }
    osp__model_derive_defaults(m);
    return check_preprocess(m, err);
}

static int bind_output(osp_model_t *m, const osp_tensor_t *out,
                       osp_err_t *err) {
    char ds[160];
    dims_str(out, ds, sizeof ds);
    const char *nm = out->name ? out->name : "0";
    int64_t classes = 1;
    int first = out->rank == 1 ? 0 : 1; /* [N, C, (1, 1)] or [C] */
    if (out->rank < 1)
        classes = -1;
    for (int i = first; i < out->rank && classes > 0; i++) {
        classes = out->dims[i] > 0 ? classes * out->dims[i] : -1;
        if (classes > OSP_MODEL_LABELS_MAX_COUNT)
            return osp_err_set(err, OSP_ELIMIT,
                               "model %s: output '%s' %s has more than %d "
                               "classes",
                               m->name, nm, ds, OSP_MODEL_LABELS_MAX_COUNT);
    }
    if (classes <= 0)
        return osp_err_set(err, OSP_EUNSUPPORTED,
                           "model %s: cannot tell the number of classes from "
                           "output '%s' %s",
                           m->name, nm, ds);
    m->n_classes = (int)classes;
    if (!(m->set & OSP__SET_OUTPUT) &&
        (out->dtype == OSP_DT_U8 || out->dtype == OSP_DT_S8))
        m->output_kind = OSP_OUTPUT_PROBABILITIES; /* quantized softmax */
    return 0;
}

/* Picks the label offset and builds the output-index → label table. */
static int bind_labels(osp_model_t *m, osp_err_t *err) {
    int n = m->n_classes, count = m->labels.count;
    if (count > 0 && !(m->set & OSP__SET_LABEL_OFFSET)) {
        if (count == n) {
            m->label_offset = 0;
        } else if (count == n + 1) {
            m->label_offset = 1; /* "background" first, as in TF models */
        } else if (m->labels_searched) {
            osp__labels_fini(&m->labels); /* not this model's labels */
            free(m->labels_path);
            m->labels_path = NULL;
            m->labels_searched = false;
        } else {
            return osp_err_set(err, OSP_EINVAL,
                               "model %s: labels file %s has %d labels but "
                               "the model has %d classes; set label_offset in "
                               "the model config if this is intended",
                               m->name, m->labels_path, count, n);
        }
    }
    size_t n_synth = 0;
    for (int i = 0; i < n; i++) {
        long long j = (long long)i + m->label_offset;
        if (j < 0 || j >= m->labels.count || !m->labels.lines[j][0])
            n_synth++;
    }
    m->table = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    m->synth = malloc(n_synth * 16 + 1);
    if (!m->table || !m->synth)
        return osp_err_set(err, OSP_ENOMEM, "model %s: label table", m->name);
    char *s = m->synth;
    for (int i = 0; i < n; i++) {
        long long j = (long long)i + m->label_offset;
        if (j < 0 || j >= m->labels.count || !m->labels.lines[j][0]) {
            int w = snprintf(s, 16, "class_%d", i);
            m->table[i] = s;
            s += w + 1;
        } else {
            m->table[i] = m->labels.lines[j];
        }
    }
    return 0;
}

int osp_model_bind(osp_model_t *m, const osp_tensor_t *input,
                   const osp_tensor_t *output, osp_err_t *err) {
    if (!m || !input || !output)
        return osp_err_set(err, OSP_EINVAL, "osp_model_bind: NULL argument");
    if (m->bound)
        return osp_err_set(err, OSP_EINVAL, "model %s is already bound",
                           m->name);
    /* Work on a copy so that a failed bind leaves m as it was. */
    osp_model_t tmp = *m;
    int rc = bind_input(&tmp, input, err);
    if (!rc)
        rc = bind_output(&tmp, output, err);
    if (rc)
        return rc;
    m->pre = tmp.pre;
    m->max_batch = tmp.max_batch;
    m->output_kind = tmp.output_kind;
    m->n_classes = tmp.n_classes;
    rc = bind_labels(m, err);
    if (rc) {
        free(m->table);
        free(m->synth);
        m->table = NULL;
        m->synth = NULL;
        m->n_classes = 0;
        return rc;
    }
    m->bound = true;
    return 0;
}

/* The engine's output 0 as a bind description. When the model file does
 * not declare the output's shape, one inference on a blank batch-1 image
 * (of the input size bind would choose) reveals it; this also builds the
 * batch-1 plan, which the first request would need anyway. */
static int output_desc(osp_model_t *m, osp_engine_t *e, osp_tensor_t *desc,
                       osp_err_t *err) {
    *desc = *osp_engine_output(e, 0);
    if (desc->rank > 0)
        return 0;
    const osp_tensor_t *in = osp_engine_input(e, 0);
    osp_model_t tmp = *m;
    int rc = bind_input(&tmp, in, err);
    if (rc)
        return rc;
    bool nchw = tmp.pre.layout == OSP_LAYOUT_NCHW;
    osp_tensor_t x = *in;
    x.dims[0] = 1;
    x.dims[nchw ? 1 : 3] = 3;
    x.dims[nchw ? 2 : 1] = tmp.pre.out_h;
    x.dims[nchw ? 3 : 2] = tmp.pre.out_w;
    x.data = calloc(osp_tensor_numel(&x), osp_dtype_size(x.dtype));
    int n_out = osp_engine_num_outputs(e);
    osp_tensor_t *outs = calloc((size_t)n_out, sizeof *outs);
    if (!x.data || !outs) {
        rc = osp_err_set(err, OSP_ENOMEM, "model %s: probe run", m->name);
        goto out;
    }
    rc = osp_engine_run(e, &x, 1, outs, n_out, err);
    if (rc) {
        osp_err_prefix(err, "model %s: finding the output shape", m->name);
        goto out;
    }
    *desc = outs[0];
    desc->data = NULL;
    desc->name = osp_engine_output(e, 0)->name; /* engine-owned, stable */
    if (desc->rank > 1)
        desc->dims[0] = -1; /* the batch */
out:
    free(x.data);
    free(outs);
    return rc;
}

/* Whether the file is a TFLite flatbuffer ("TFL3" at bytes 4..7): those
 * carry their own quantization; float models need calibration for int8. */
static bool is_tflite(const char *path) {
    FILE *f = fopen(path, "rb");
    char b[8] = {0};
    bool yes = f && fread(b, 1, 8, f) == 8 && !memcmp(b + 4, "TFL3", 4);
    if (f)
        fclose(f);
    return yes;
}

osp_engine_t *osp_model_load_engine(osp_model_t *m,
                                    const osp_engine_opts_t *opts,
                                    osp_err_t *err) {
    osp_engine_opts_t o;
    if (opts)
        o = *opts;
    else
        osp_engine_opts_init(&o);
    if (o.precision == OSP_PREC_AUTO)
        o.precision = m->precision;
    if (o.max_batch == 0)
        o.max_batch = m->max_batch;
    /* int8 on a float model: quantized at load from calibration images,
     * preprocessed as requests are — which needs the model bound first
     * (its input size), so an unbound model is loaded once in fp32. */
    osp_tensor_t *calib = NULL;
    int n_calib = 0;
    if (o.precision == OSP_PREC_INT8 && !o.calib && m->calib_dir &&
        !is_tflite(m->path)) {
        if (!m->bound) {
            osp_engine_opts_t fo = o;
            fo.precision = OSP_PREC_FP32;
            osp_engine_t *fe = osp_model_load_engine(m, &fo, err);
            if (!fe)
                return NULL;
            osp_engine_destroy(fe);
        }
        if (osp__calibration_load(m, &calib, &n_calib, err))
            return NULL;
        o.calib = calib;
        o.n_calib = n_calib;
    }
    osp_engine_t *e = osp_engine_load(m->path, &o, err);
    osp__calibration_free(calib, n_calib);
    if (!e)
        return NULL;
    if (m->bound)
        return e;
    if (osp_engine_num_inputs(e) < 1 || osp_engine_num_outputs(e) < 1) {
        osp_err_set(err, OSP_EUNSUPPORTED,
                    "model %s: %s has no inputs or no outputs", m->name,
                    m->path);
        goto fail;
    }
    osp_tensor_t out;
    if (output_desc(m, e, &out, err) != 0 ||
        osp_model_bind(m, osp_engine_input(e, 0), &out, err) != 0)
        goto fail;
    /* A model that ends in Softmax (TFLite classifiers, dequantized to
     * float by the engine) already outputs probabilities. */
    if (!(m->set & OSP__SET_OUTPUT) && osp_engine_output_is_probabilities(e, 0))
        m->output_kind = OSP_OUTPUT_PROBABILITIES;
    return e;
fail:
    osp_engine_destroy(e);
    return NULL;
}

int osp_model_set_calibration(osp_model_t *m, const char *dir, int count,
                               osp_err_t *err) {
    char *d = NULL;
    if (dir && !(d = strdup(dir)))
        return osp_err_set(err, OSP_ENOMEM, "model %s: out of memory", m->name);
    if (count < 0)
        count = 0;
    if (dir || count) {
        if (dir) {
            free(m->calib_dir);
            m->calib_dir = d;
        }
        if (count)
            m->calib_count = count;
    }
    return 0;
}

bool osp_model_bound(const osp_model_t *m) { return m->bound; }
const char *osp_model_name(const osp_model_t *m) { return m->name; }
const char *osp_model_path(const osp_model_t *m) { return m->path; }
const char *osp_model_config_path(const osp_model_t *m) {
    return m->config_path;
}
const char *osp_model_labels_path(const osp_model_t *m) {
    return m->labels_path;
}
const osp_preprocess_t *osp_model_preprocess(const osp_model_t *m) {
    return &m->pre;
}
osp_precision_t osp_model_precision(const osp_model_t *m) {
    return m->precision;
}
int osp_model_max_batch(const osp_model_t *m) { return m->max_batch; }
const osp_model_serving_t *osp_model_serving(const osp_model_t *m) {
    return &m->serving;
}
osp_output_kind_t osp_model_output_kind(const osp_model_t *m) {
    return m->output_kind;
}
bool osp_model_needs_softmax(const osp_model_t *m) {
    return m->output_kind == OSP_OUTPUT_LOGITS;
}
int osp_model_label_offset(const osp_model_t *m) { return m->label_offset; }
int osp_model_label_count(const osp_model_t *m) {
    return m->bound ? m->n_classes : m->labels.count;
}
int osp_model_num_classes(const osp_model_t *m) {
    return m->bound ? m->n_classes : 0;
}

const char *osp_model_label(const osp_model_t *m, int i) {
    if (m->bound)
        return i >= 0 && i < m->n_classes ? m->table[i] : NULL;
    long long j = (long long)i + m->label_offset;
    if (i < 0 || j < 0 || j >= m->labels.count || !m->labels.lines[j][0])
        return NULL;
    return m->labels.lines[j];
}
