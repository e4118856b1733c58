/* model_int.h — the private layout of osp_model_t and the helpers shared by
 * the model module's files (config.c parses the JSON config, labels.c reads
 * label files, model.c ties them together and binds to an engine). */
#ifndef OSPREY_MODEL_INT_H
#define OSPREY_MODEL_INT_H

#include "osprey/model.h"

/* Which fields the config file set explicitly; everything else is a
 * default that osp_model_bind() may still refine from the model. */
enum {
    OSP__SET_MODE = 1u << 0,
    OSP__SET_RESIZE_SHORT = 1u << 1,
    OSP__SET_FRACTION = 1u << 2,
    OSP__SET_WIDTH = 1u << 3,
    OSP__SET_HEIGHT = 1u << 4,
    OSP__SET_LAYOUT = 1u << 5,
    OSP__SET_DTYPE = 1u << 6,
    OSP__SET_SCALE = 1u << 7,
    OSP__SET_MEAN = 1u << 8,
    OSP__SET_STD = 1u << 9,
    OSP__SET_PRECISION = 1u << 10,
    OSP__SET_MAX_BATCH = 1u << 11,
    OSP__SET_OUTPUT = 1u << 12,
    OSP__SET_LABEL_OFFSET = 1u << 13,
};

/* Label lines as read from a file: lines[i] points into buf ("" for an
 * empty line). */
typedef struct osp__labels_s {
    char *buf;
    char **lines;
    int count;
} osp__labels_t;

struct osp_model_s {
    /* from open */
    char *path;        /* model file as given */
    char *config_path; /* NULL when no config file was used */
    char *labels_path; /* NULL: synthetic labels */
    bool labels_searched; /* found by the default search: optional, dropped
                             at bind if its length does not fit the model */
    char *name;
    osp_preprocess_t pre;
    osp_precision_t precision;
    int max_batch; /* 0 = not limited by the config */
    osp_output_kind_t output_kind;
    int label_offset;
    unsigned set; /* OSP__SET_* */
    osp_model_serving_t serving;
    osp__labels_t labels;
    char *calib_dir;  /* int8 on a float model: calibration images (NULL) */
    int calib_count;  /* how many of them (0 = OSP__CALIB_DEFAULT) */
    /* from bind */
    bool bound;
    int n_classes;
    const char **table; /* n_classes entries, into labels.buf or synth */
    char *synth;        /* "class_<i>" strings for unlabelled outputs */
};

/* Calibration images used when none is asked for: more than the 13 with
 * which the trained MobileNetV2s kept their ImageNet top-1 (ptq_accuracy),
 * few enough to load and run in ~2 s for ResNet50. */
#define OSP__CALIB_DEFAULT 32
/* The calibration inputs of m (m->calib_dir, preprocessed per m->pre,
 * batch-1 tensors; free with osp__calibration_free). calibration.c. */
int osp__calibration_load(const osp_model_t *m, osp_tensor_t **out, int *n_out,
                          osp_err_t *err);
void osp__calibration_free(osp_tensor_t *t, int n);

/* Parses a config file's text into m (fields + m->set). The config's
 * "labels" entry, resolved against the config's directory, is returned in
 * *labels_out (malloc'd, NULL if absent). Errors name the file and key. */
int osp__model_config_parse(osp_model_t *m, const char *path,
                            const char *text, size_t len, char **labels_out,
                            osp_err_t *err);

/* The serving defaults (nothing set, latest 1 version). */
void osp__model_serving_defaults(osp_model_serving_t *sv);

/* Reads a labels file: one label per line, index = line number; trailing
 * "\r", spaces and tabs are stripped; a UTF-8 BOM is skipped; trailing empty
 * lines at the end of the file are dropped. Labels must be valid UTF-8
 * without control characters (they end up in JSON responses). */
int osp__labels_load(const char *path, osp__labels_t *out, osp_err_t *err);
void osp__labels_fini(osp__labels_t *l);

/* Applies the defaults that depend on other fields (uint8 input → exact
 * resize and identity normalisation, resize_short from the output size)
 * to every field the config did not set. */
void osp__model_derive_defaults(osp_model_t *m);

/* Directory part of path ("." when there is none, "/" for the root);
 * malloc'd, NULL when out of memory (config.c). */
char *osp__dir_of(const char *path);

#endif
