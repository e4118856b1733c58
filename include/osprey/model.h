/* model.h — what osprey knows about a model besides its graph: the model
 * config (name, preprocessing, precision, batch limit, output kind), the
 * class labels, and the top-k / softmax helpers that turn scores into an
 * answer. The config format is documented in docs/model-config.md.
 *
 * osp_model_open() does not load the engine, so config and labels are
 * testable without model weights. The intended sequence for the CLI and the
 * server is:
 *
 *   osp_model_t *m = osp_model_open(path, labels_or_NULL, config_or_NULL, &err);
 *   osp_engine_t *e = osp_engine_load(path, &opts, &err);   // opts.precision
 *                                          // = osp_model_precision(m), ...
 *   osp_model_bind(m, osp_engine_input(e, 0), osp_engine_output(e, 0), &err);
 *   (or both steps at once: osp_model_load_engine(m, &opts, &err))
 *   ... osp_model_preprocess(m) for the image module, run the engine,
 *   osp_softmax() if osp_model_needs_softmax(m), osp_topk(), osp_model_label().
 *
 * osp_model_bind() checks the config against the model's declared input and
 * output and fills in what the config left open (input size and layout,
 * uint8 inputs, the number of classes, the label offset).
 *
 * Threading: an osp_model_t is immutable after bind; getters may be called
 * from any thread. */
#ifndef OSPREY_MODEL_H
#define OSPREY_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "osprey/common.h"
#include "osprey/engine.h"
#include "osprey/image.h"

/* Largest config and labels files accepted (they are untrusted input). */
#define OSP_MODEL_CONFIG_MAX_BYTES (1u << 20)
#define OSP_MODEL_LABELS_MAX_BYTES (16u << 20)
#define OSP_MODEL_LABELS_MAX_COUNT 1000000
#define OSP_MODEL_NAME_MAX 128 /* bytes, excluding the NUL */

/* Whether the model's output scores still need a softmax. */
typedef enum osp_output_kind_e {
    OSP_OUTPUT_LOGITS = 0,    /* raw scores: apply softmax for probabilities */
    OSP_OUTPUT_PROBABILITIES, /* already a distribution (e.g. TFLite models) */
    OSP_OUTPUT_COUNT
} osp_output_kind_t;
const char *osp_output_kind_name(osp_output_kind_t k); /* "logits", ... */

typedef struct osp_model_s osp_model_t;

/* Opens a model's description. model_path is the model file (it is not read
 * here, only used to find the config, default labels and default name).
 * labels_path (may be NULL) overrides the config's "labels"; config_path
 * (may be NULL) overrides the config search (`<model without extension>
 * .json`, then `config.json` in the model's directory). An explicitly given
 * file that does not exist is an error; a searched-for one is optional.
 * Returns NULL and fills err on failure. The caller owns the model
 * (osp_model_close). */
osp_model_t *osp_model_open(const char *model_path, const char *labels_path,
                            const char *config_path, osp_err_t *err);
void osp_model_close(osp_model_t *m);

/* Checks the config against the engine's declared input 0 and output 0
 * (osp_engine_input(e, 0), osp_engine_output(e, 0)) and completes the
 * defaults that depend on the model; see docs/model-config.md "Inferred from
 * the model". Mismatches (config says 224x224, model wants 128x128; labels
 * file of the wrong length) are OSP_EINVAL errors naming both sides. Call
 * once; a second call is OSP_EINVAL. */
int osp_model_bind(osp_model_t *m, const osp_tensor_t *input,
                   const osp_tensor_t *output, osp_err_t *err);
bool osp_model_bound(const osp_model_t *m);

/* Convenience for the sequence above: loads osp_model_path(m) with
 * osp_engine_load() and binds m to it (unless m is already bound, as when a
 * second inference instance is loaded). Options: opts may be NULL (engine
 * defaults); opts->precision == OSP_PREC_AUTO takes the config's precision
 * and opts->max_batch == 0 the config's max_batch_size, so command-line
 * flags set in opts win over the config. The caller owns the engine
 * (osp_engine_destroy). NULL and err on failure. If the model file does
 * not declare its output shape, one inference on a blank batch-1 image
 * finds the class count (and leaves the batch-1 plan built). Not
 * thread-safe while it binds: load the first instance before sharing m. */
osp_engine_t *osp_model_load_engine(osp_model_t *m,
                                    const osp_engine_opts_t *opts,
                                    osp_err_t *err);

/* ---- serving keys (docs/model-config.md "Serving") ------------------- */
#define OSP_MODEL_MAX_PREFERRED 8  /* preferred_batch_sizes entries */
#define OSP_MODEL_MAX_VERSIONS 64  /* versions a "specific" policy lists */

/* Which versions of a repository model are served (Triton's
 * version_policy). Append-only. */
typedef enum osp_version_policy_e {
    OSP_VERSIONS_LATEST = 0, /* the latest_n highest version numbers */
    OSP_VERSIONS_SPECIFIC,   /* exactly the listed versions */
    OSP_VERSIONS_ALL,        /* every version on disk */
    OSP_VERSIONS_COUNT
} osp_version_policy_t;
const char *osp_version_policy_name(osp_version_policy_t p); /* "latest" */

/* How the server batches and runs one model. Every field has a "not set"
 * value: the server's own settings (flags, environment, server config file)
 * apply then. max_batch_size is osp_model_max_batch(). */
typedef struct osp_model_serving_s {
    int64_t max_queue_delay_us; /* -1 = not set */
    int max_queue_size;         /* 0 = not set */
    int instances;              /* 0 = not set */
    int preferred[OSP_MODEL_MAX_PREFERRED]; /* ascending, unique */
    int n_preferred;            /* 0 = not set */
    bool has_version_policy;    /* the file had "version_policy" */
    osp_version_policy_t policy; /* default LATEST with latest_n 1 */
    int latest_n;
    int64_t versions[OSP_MODEL_MAX_VERSIONS]; /* SPECIFIC, ascending */
    int n_versions;
} osp_model_serving_t;

/* The serving keys of m's config (defaults when it has none). Owned by m. */
const osp_model_serving_t *osp_model_serving(const osp_model_t *m);
/* Reads and fully validates a config file without a model (the model-level
 * DIR/<name>/config.json of a repository, read for its version_policy
 * before any version is opened); fills *out with its serving keys and, if
 * max_batch_out is non-NULL, its max_batch_size (0 = not set). */
int osp_model_config_serving(const char *config_path, osp_model_serving_t *out,
                             int *max_batch_out, osp_err_t *err);

/* Getters. Strings are owned by the model and live until osp_model_close. */
/* int8 on a float model: the directory of calibration images (overrides
 * the config's "calibration.images"; NULL keeps it) and how many to use
 * (0 keeps the config's, default 32). The images are preprocessed as
 * requests are and the model is quantized when its engine loads. */
int osp_model_set_calibration(osp_model_t *m, const char *dir, int count,
                              osp_err_t *err);
const char *osp_model_name(const osp_model_t *m);
const char *osp_model_path(const osp_model_t *m);
const char *osp_model_config_path(const osp_model_t *m); /* NULL: defaults */
const char *osp_model_labels_path(const osp_model_t *m); /* NULL: synthetic */
const osp_preprocess_t *osp_model_preprocess(const osp_model_t *m);
osp_precision_t osp_model_precision(const osp_model_t *m);
int osp_model_max_batch(const osp_model_t *m); /* 0 = not limited by config */
osp_output_kind_t osp_model_output_kind(const osp_model_t *m);
bool osp_model_needs_softmax(const osp_model_t *m);
/* Label line = output index + label offset (see docs/model-config.md). */
int osp_model_label_offset(const osp_model_t *m);
/* Number of classes once bound; before that, the number of label lines
 * (0 with synthetic labels). */
int osp_model_label_count(const osp_model_t *m);
int osp_model_num_classes(const osp_model_t *m); /* 0 until bound */

/* The label of output index i: line (i + label_offset) of the labels file,
 * or "class_<i>" when there is no such (non-empty) line. After bind this is
 * non-NULL for every 0 <= i < num_classes and NULL outside; before bind it
 * is NULL when the labels file has no line for i. Owned by the model. */
const char *osp_model_label(const osp_model_t *m, int output_index);

/* ---- scores ----------------------------------------------------------- */

/* Writes the indices (and, if score_out is non-NULL, the scores) of the k
 * largest of scores[0..n) in descending order; ties keep the lower index
 * first; NaN ranks below every number. Returns the number written
 * (min(k, n)) or OSP_EINVAL for n < 0, k < 0 or NULL arrays. O(n·k). */
int osp_topk(const float *scores, int n, int k, int *idx_out,
             float *score_out);

/* out[i] = exp(in[i] - max) / sum, computed stably (in == out allowed).
 * NaN inputs get probability 0; if all inputs are -inf the result is
 * uniform; +inf inputs share all the mass. n <= 0 does nothing. */
void osp_softmax(const float *in, float *out, int n);

#endif
