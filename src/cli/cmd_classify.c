/* cmd_classify.c — `osprey classify`: classify image files with a model from
 * the command line, printing top-k labels as text or one JSON object per
 * image. Images are decoded and preprocessed per the model's config and run
 * through the engine in batches; an image that cannot be read gets an error
 * line (the others are still classified) and the exit code is 1. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/tuning.h"
#include "osprey/engine.h"
#include "osprey/image.h"
#include "osprey/model.h"

#define CLASSIFY_DEFAULT_BATCH 8

static void usage(FILE *f) {
    fprintf(f,
            "usage: osprey classify --model PATH [--labels PATH] [--config PATH]\n"
            "                       [--top-k K] [--precision fp32|bf16|int8|auto]\n"
            "                       [--threads N] [--batch N] [--json] [--verbose]\n"
            "                       [--calibration DIR [--calibration-count N]]\n"
            "                       IMAGE...\n"
            "\n"
            "Classifies each IMAGE (JPEG, PNG, WebP, BMP) and prints the top K\n"
            "labels. --json prints one object per line:\n"
            "  {\"image\": \"...\", \"predictions\": [{\"index\": 286, \"label\": \"...\",\n"
            "   \"score\": 0.81}, ...]}\n"
            "An image that cannot be classified gets {\"image\": ..., \"error\": ...}\n"
            "and the exit code is 1.\n"
            "--precision int8 on a float (ONNX) model quantizes it at load from\n"
            "calibration images (--calibration DIR, default the first 32 in name\n"
            "order, or \"calibration\" in the model config; docs/engine.md).\n");
    osp_cli_tuning_usage(f);
}

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

int osp_cli_classify(int argc, char **argv) {
    const char *model_path = NULL, *labels = NULL, *config = NULL;
    const char *precision = NULL, *calibration = NULL;
    int threads = 0, batch = 0, verbose = 0, rc = 2, calib_count = 0;
    classify_t c = {.top_k = 5};
    osp_engine_opts_t opts;
    osp_engine_opts_init(&opts);
    static const struct option own[] = {
        {"model", required_argument, NULL, 'm'},
        {"labels", required_argument, NULL, 'l'},
        {"config", required_argument, NULL, 'c'},
        {"top-k", required_argument, NULL, 'k'},
        {"precision", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"batch", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},
        {"calibration", required_argument, NULL, 'C'},
        {"calibration-count", required_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'}};
    struct option longopts[OSP_ARRAY_LEN(own) + OSP_CLI_TUNING_MAX + 1];
    osp_cli_tuning_longopts(own, OSP_ARRAY_LEN(own), longopts);
    /* the environment first: flags win */
    osp_cli_tuning_defaults(&opts.tuning);
    if (osp_cli_tuning_env("osprey classify", &opts.tuning) < 0)
        return 2;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "m:l:c:k:p:t:b:jvC:N:h", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 'm': model_path = optarg; break;
        case 'l': labels = optarg; break;
        case 'c': config = optarg; break;
        case 'k': c.top_k = atoi(optarg); break;
        case 'p': precision = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'j': c.json = true; break;
        case 'v': verbose = 1; break;
        case 'C': calibration = optarg; break;
        case 'N': calib_count = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: {
            int tr = osp_cli_tuning_flag("osprey classify", opt, optarg,
                                         &opts.tuning);
            if (tr == 0)
                break;
            if (tr > 0)
                usage(stderr);
            return 2;
        }
        }
    }
    if (!model_path || optind >= argc) {
        fprintf(stderr, "osprey classify: %s\n",
                !model_path ? "--model is required" : "no images given");
        usage(stderr);
        return 2;
    }
    if (c.top_k < 1 || threads < 0 || batch < 0 || calib_count < 0) {
        fprintf(stderr, "osprey classify: --top-k must be >= 1, --threads, "
                        "--batch and --calibration-count >= 0\n");
        return 2;
    }
    osp_err_t err = {0};
    opts.threads = threads;
    opts.verbose = verbose;
    c.model = osp_model_open(model_path, labels, config, &err);
    if (!c.model) {
        fprintf(stderr, "osprey classify: %s\n", err.msg);
        return 1;
    }
    if ((calibration || calib_count) &&
        osp_model_set_calibration(c.model, calibration, calib_count, &err) < 0) {
        fprintf(stderr, "osprey classify: %s\n", err.msg);
        goto done;
    }
    /* AUTO lets the model's config choose (osp_model_load_engine). */
    if (precision && osp_precision_parse(precision, &opts.precision) != 0) {
        fprintf(stderr, "osprey classify: unknown precision '%s' (fp32, bf16, "
                        "int8, auto)\n", precision);
        goto done;
    }
    rc = 1;
    c.engine = osp_model_load_engine(c.model, &opts, &err);
    if (!c.engine) {
        fprintf(stderr, "osprey classify: %s\n", err.msg);
        goto done;
    }
    if (verbose)
        fprintf(stderr, "model %s: precision %s, %d threads; OpenMP waiting: "
                "%s\n", osp_model_name(c.model),
                osp_precision_name(osp_engine_precision(c.engine)),
                osp_engine_threads(c.engine), osp_cli_omp_waiting());
    c.pp = osp_model_preprocess(c.model);
    c.image_bytes = osp_preprocess_bytes(c.pp);
    if (batch == 0)
        batch = CLASSIFY_DEFAULT_BATCH;
    if (osp_model_max_batch(c.model) > 0 && batch > osp_model_max_batch(c.model))
        batch = osp_model_max_batch(c.model);

    int n_images = argc - optind;
    uint8_t *input = malloc(c.image_bytes * (size_t)batch);
    entry_t *entries = calloc((size_t)n_images, sizeof *entries);
    if (!input || !entries) {
        free(input);
        free(entries);
        fprintf(stderr, "osprey classify: out of memory\n");
        goto done;
    }
    osp_image_limits_t lim;
    osp_image_limits_default(&lim);
    int min_w, min_h;
    osp_preprocess_decode_hint(c.pp, &min_w, &min_h);
    int n = 0, good = 0;
    for (int i = optind; i < argc; i++) {
        osp_image_t img = {0};
        entry_t *en = &entries[n++];
        en->image = argv[i];
        if (osp_image_load_file(argv[i], &lim, min_w, min_h, &img, &err) ||
            osp_image_preprocess(&img, c.pp,
                                 input + c.image_bytes * (size_t)good, &err))
            en->error = strdup(err.msg[0] ? err.msg : "cannot read image");
        else
            good++;
        osp_image_release(&img);
        if (good == batch) {
            flush(&c, entries, n, good, input);
            n = good = 0;
        }
    }
    if (n)
        flush(&c, entries, n, good, input);
    /* (--verbose: the engine prints its plans itself; its choices are made
     * at the first batch) */
    if (verbose && *osp_engine_choices(c.engine))
        fprintf(stderr, "choices: %s\n", osp_engine_choices(c.engine));
    free(entries);
    free(input);
    rc = c.failures ? 1 : 0;
done:
    osp_engine_destroy(c.engine);
    osp_model_close(c.model);
    return rc;
}
