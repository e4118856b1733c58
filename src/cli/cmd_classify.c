/* cmd_classify.c — `osprey classify`: classify image files with a model from
 * the command line, printing top-k labels as text or one JSON object per
 * image. Images are decoded and preprocessed per the model's config and run
 * through the engine in batches; an image that cannot be read gets an error
 * line (the others are still classified) and the exit code is 1.
 *
 * Settings: flags, OSPREY_CLASSIFY_* and a JSON file (--settings FILE, as
 * --config names the model's config) through the settings layer
 * (settings.h), plus the engine's knobs (tuning.c). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "cli/tuning.h"
#include "osprey/engine.h"
#include "osprey/image.h"
#include "osprey/model.h"

#define CLASSIFY_DEFAULT_BATCH 8

/* The command line, as the settings layer fills it. */
typedef struct classify_cli_s {
    const char *model, *labels, *config, *calibration;
    int top_k, threads, batch, calibration_count;
    bool json, verbose;
    osp_engine_opts_t eo; /* precision and the engine's knobs */
} classify_cli_t;

static int parse_precision(void *base, const char *v) {
    return osp_precision_parse(v, &((classify_cli_t *)base)->eo.precision);
}

#define O(f) offsetof(classify_cli_t, f)
static const osp_setting_t opts[] = {
    {.name = "model", .short_name = 'm', .kind = OSP_SET_STR, .off = O(model), .arg = "PATH", .help = "model file (.onnx or .tflite; required)"},
    {.name = "labels", .short_name = 'l', .kind = OSP_SET_STR, .off = O(labels), .arg = "PATH", .help = "labels file (one per line) overriding the model config"},
    {.name = "config", .short_name = 'c', .kind = OSP_SET_STR, .off = O(config), .arg = "PATH", .help = "the model's config JSON (default: beside the model; docs/model-config.md)"},
    {.name = "top-k", .short_name = 'k', .kind = OSP_SET_INT, .off = O(top_k), .min = 1, .arg = "K", .help = "labels printed per image (default 5)"},
    {.name = "precision", .short_name = 'p', .kind = OSP_SET_FN, .parse = parse_precision, .arg = "fp32|bf16|int8|auto", .help = "default auto: the model config's"},
    {.name = "threads", .short_name = 't', .kind = OSP_SET_INT, .off = O(threads), .help = "CPUs for inference (default 0: all available)"},
    {.name = "batch", .short_name = 'b', .kind = OSP_SET_INT, .off = O(batch), .help = "images per engine run (default 0: 8, capped by the model's batch)"},
    {.name = "json", .short_name = 'j', .kind = OSP_SET_BOOL, .off = O(json), .help = "one JSON object per image"},
    {.name = "verbose", .short_name = 'v', .kind = OSP_SET_BOOL, .off = O(verbose), .help = "the engine's plan, precision and choices on stderr"},
    {.name = "calibration", .short_name = 'C', .kind = OSP_SET_STR, .off = O(calibration), .arg = "DIR", .help = "int8 on a float model: calibration images (default: the model config's \"calibration\")"},
    {.name = "calibration-count", .short_name = 'N', .kind = OSP_SET_INT, .off = O(calibration_count), .help = "calibration images to use (default 0: the config's, else 32)"},
};
#undef O

typedef struct classify_s {
    osp_model_t *model;
    osp_engine_t *engine;
    const osp_preprocess_t *pp;
    size_t image_bytes;
    int top_k;
    bool json;
    int failures;
} classify_t;

static void print_error(classify_t *c, const char *image, const char *msg) {
    c->failures++;
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s}", "image", image, "error", msg);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        fprintf(stderr, "osprey classify: %s: %s\n", image, msg);
    }
}

static void print_result(classify_t *c, const char *image, const float *scores,
                         int n) {
    int k = c->top_k < n ? c->top_k : n;
    int *idx = malloc(sizeof(int) * (size_t)(k > 0 ? k : 1));
    float *sc = malloc(sizeof(float) * (size_t)(k > 0 ? k : 1));
    if (!idx || !sc) {
        free(idx);
        free(sc);
        print_error(c, image, "out of memory");
        return;
    }
    k = osp_topk(scores, n, k, idx, sc);
    if (c->json) {
        json_t *preds = json_array();
        for (int i = 0; i < k; i++)
            json_array_append_new(
                preds, json_pack("{s:i, s:s, s:f}", "index", idx[i], "label",
                                 osp_model_label(c->model, idx[i]), "score",
                                 (double)sc[i]));
        json_t *o = json_pack("{s:s, s:o}", "image", image, "predictions",
                              preds);
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("%s\n", image);
        for (int i = 0; i < k; i++)
            printf("  %2d. %-40s %8.4f  (index %d)\n", i + 1,
                   osp_model_label(c->model, idx[i]), (double)sc[i], idx[i]);
    }
    free(idx);
    free(sc);
}

/* Images since the last flush, in command-line order: either a slot in the
 * batch tensor or an error message, so output keeps the input order. */
typedef struct entry_s {
    const char *image;
    char *error; /* malloc'd, NULL for a good image */
} entry_t;

/* Runs the batch of good images among entries[0..n) (their tensors are
 * consecutive in `input`) and prints every entry in order. */
static void flush(classify_t *c, entry_t *entries, int n, int good,
                  uint8_t *input) {
    osp_tensor_t out = {0};
    osp_err_t err = {0};
    const char *batch_error = NULL;
    int classes = 0;
    if (good > 0) {
        osp_tensor_t in = *osp_engine_input(c->engine, 0);
        in.dims[0] = good;
        in.data = input;
        if (osp_engine_run(c->engine, &in, 1, &out, 1, &err) != 0)
            batch_error = err.msg;
        else if (out.dtype != OSP_DT_F32 || out.rank < 2 ||
                 out.dims[0] != good)
            batch_error = "model output is not [batch, classes] float scores";
        else
            classes = (int)(osp_tensor_numel(&out) / (size_t)good);
    }
    float *row = malloc(sizeof(float) * (size_t)(classes ? classes : 1));
    int slot = 0;
    for (int i = 0; i < n; i++) {
        if (entries[i].error) {
            print_error(c, entries[i].image, entries[i].error);
        } else if (batch_error || !row) {
            print_error(c, entries[i].image,
                        batch_error ? batch_error : "out of memory");
        } else {
            const float *s =
                (const float *)out.data + (size_t)slot * (size_t)classes;
            if (osp_model_needs_softmax(c->model))
                osp_softmax(s, row, classes);
            else
                memcpy(row, s, sizeof(float) * (size_t)classes);
            print_result(c, entries[i].image, row, classes);
        }
        if (!entries[i].error)
            slot++;
        free(entries[i].error);
        entries[i].error = NULL;
    }
    free(row);
    fflush(stdout);
}

/* The model and its engine; an exit code. */
static int open_engine(classify_t *c, const classify_cli_t *o) {
    osp_err_t err = {0};
    c->model = osp_model_open(o->model, o->labels, o->config, &err);
    if (!c->model) {
        fprintf(stderr, "osprey classify: %s\n", err.msg);
        return OSP_CLI_EXIT_FAIL;
    }
    if ((o->calibration || o->calibration_count) &&
        osp_model_set_calibration(c->model, o->calibration,
                                  o->calibration_count, &err) < 0) {
        fprintf(stderr, "osprey classify: %s\n", err.msg);
        return OSP_CLI_EXIT_USAGE;
    }
    /* AUTO lets the model's config choose (osp_model_load_engine). */
    c->engine = osp_model_load_engine(c->model, &o->eo, &err);
    if (!c->engine) {
        fprintf(stderr, "osprey classify: %s\n", err.msg);
        return OSP_CLI_EXIT_FAIL;
    }
    if (o->verbose)
        fprintf(stderr, "model %s: precision %s, %d threads; OpenMP waiting: "
                "%s\n", osp_model_name(c->model),
                osp_precision_name(osp_engine_precision(c->engine)),
                osp_engine_threads(c->engine), osp_cli_omp_waiting());
    c->pp = osp_model_preprocess(c->model);
    c->image_bytes = osp_preprocess_bytes(c->pp);
    return OSP_CLI_EXIT_OK;
}

/* Classifies images[0..n) in batches of `batch`, printing in order. */
static int classify_images(classify_t *c, const char **images, int n_images,
                           int batch) {
    uint8_t *input = malloc(c->image_bytes * (size_t)batch);
    entry_t *entries = calloc((size_t)n_images, sizeof *entries);
    if (!input || !entries) {
        free(input);
        free(entries);
        fprintf(stderr, "osprey classify: out of memory\n");
        return OSP_CLI_EXIT_FAIL;
    }
    osp_image_limits_t lim;
    osp_image_limits_default(&lim);
    int min_w, min_h;
    osp_preprocess_decode_hint(c->pp, &min_w, &min_h);
    osp_err_t err = {0};
    int n = 0, good = 0;
    for (int i = 0; i < n_images; i++) {
        osp_image_t img = {0};
        entry_t *en = &entries[n++];
        en->image = images[i];
        if (osp_image_load_file(images[i], &lim, min_w, min_h, &img, &err) ||
            osp_image_preprocess(&img, c->pp,
                                 input + c->image_bytes * (size_t)good, &err))
            en->error = strdup(err.msg[0] ? err.msg : "cannot read image");
        else
            good++;
        osp_image_release(&img);
        if (good == batch) {
            flush(c, entries, n, good, input);
            n = good = 0;
        }
    }
    if (n)
        flush(c, entries, n, good, input);
    free(entries);
    free(input);
    return c->failures ? OSP_CLI_EXIT_FAIL : OSP_CLI_EXIT_OK;
}

int osp_cli_classify(int argc, char **argv) {
    classify_cli_t o = {.top_k = 5};
    osp_engine_opts_init(&o.eo);
    osp_cli_tuning_defaults(&o.eo.tuning);
    osp_setting_t tab[OSP_ARRAY_LEN(opts) + OSP_CLI_TUNING_MAX];
    osp_settings_t st = {
        .cmd = "osprey classify", .env_prefix = "OSPREY_CLASSIFY_", .tab = tab,
        .n = osp_cli_tuning_table(opts, OSP_ARRAY_LEN(opts),
                                  offsetof(classify_cli_t, eo.tuning), tab),
        .base = &o, .config_flag = "settings", .args_name = "image",
        .synopsis = "--model PATH [options] IMAGE...",
        .about =
            "Classifies each IMAGE (JPEG, PNG, WebP, BMP) and prints the top K\n"
            "labels. --json prints one object per line:\n"
            "  {\"image\": \"...\", \"predictions\": [{\"index\": 286, \"label\": \"...\",\n"
            "   \"score\": 0.81}, ...]}\n"
            "An image that cannot be classified gets {\"image\": ..., \"error\": ...}\n"
            "and the exit code is 1.\n"
            "--precision int8 on a float (ONNX) model quantizes it at load from\n"
            "calibration images (--calibration DIR, default the first 32 in name\n"
            "order, or \"calibration\" in the model config; docs/engine.md).\n",
        .exit_notes = " (1 also when an image could not be classified)"};
    classify_t c = {0};
    int rc;
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto done;
    if (!o.model || st.n_args == 0) {
        rc = osp_settings_fail(&st, "%s", !o.model ? "--model is required"
                                                   : "no images given");
        goto done;
    }
    o.eo.threads = o.threads;
    o.eo.verbose = o.verbose;
    c.top_k = o.top_k;
    c.json = o.json;
    if ((rc = open_engine(&c, &o)) != OSP_CLI_EXIT_OK)
        goto done;
    int batch = o.batch ? o.batch : CLASSIFY_DEFAULT_BATCH;
    if (osp_model_max_batch(c.model) > 0 && batch > osp_model_max_batch(c.model))
        batch = osp_model_max_batch(c.model);
    rc = classify_images(&c, st.args, st.n_args, batch);
    /* (--verbose: the engine prints its plans itself; its choices are made
     * at the first batch) */
    if (o.verbose && *osp_engine_choices(c.engine))
        fprintf(stderr, "choices: %s\n", osp_engine_choices(c.engine));
done:
    osp_engine_destroy(c.engine);
    osp_model_close(c.model);
    osp_settings_free(&st);
    return rc;
}
