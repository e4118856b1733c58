/* calibration.c — the images behind `--precision int8` on float models.
 *
 * The engine quantizes a float model from value ranges observed on
 * calibration inputs (src/engine/passes/calibrate.c). Those must be preprocessed
 * exactly as requests will be, so the model module, which owns the
 * preprocessing, turns a directory of images into input tensors: the first
 * `count` files in name order that decode (others are skipped),
 * each as a batch-1 tensor of the model's input layout and dtype. Name
 * order makes the calibration, and so the quantized model, the same on
 * every start. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular-looking entries of dir (not dot files), sorted; malloc'd. */
static int list_dir(const char *dir, char ***out, int *n_out, osp_err_t *err) {
    DIR *d = opendir(dir);
    if (!d)
        return osp_err_set(err, OSP_EIO, "calibration: cannot open directory %s",
                           dir);
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, sizeof *names * (size_t)cap);
            if (!nn) {
                rc = OSP_ENOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = OSP_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return osp_err_set(err, rc, "calibration: out of memory");
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    *n_out = n;
    return 0;
}

void osp__calibration_free(osp_tensor_t *t, int n) {
    for (int i = 0; t && i < n; i++)
        free(t[i].data);
    free(t);
}

int osp__calibration_load(const osp_model_t *m, osp_tensor_t **out, int *n_out,
                          osp_err_t *err) {
    *out = NULL;
    *n_out = 0;
    const osp_preprocess_t *p = &m->pre;
    size_t bytes = osp_preprocess_bytes(p);
    if (!bytes)
        return osp_err_set(err, OSP_EINVAL, "model %s: calibration: invalid "
                           "preprocessing", m->name);
    char **names = NULL;
    int n_names = 0;
    int rc = list_dir(m->calib_dir, &names, &n_names, err);
    if (rc)
        return rc;
    int want = m->calib_count > 0 ? m->calib_count : OSP__CALIB_DEFAULT;
    osp_tensor_t *t = calloc((size_t)want, sizeof *t);
    if (!t) {
        rc = osp_err_set(err, OSP_ENOMEM, "calibration: out of memory");
        goto out;
    }
    osp_image_limits_t lim;
    osp_image_limits_default(&lim);
    int min_w, min_h;
    osp_preprocess_decode_hint(p, &min_w, &min_h);
    int n = 0;
    for (int i = 0; i < n_names && n < want; i++) {
        char *path = NULL;
        if (asprintf(&path, "%s/%s", m->calib_dir, names[i]) < 0) {
            rc = osp_err_set(err, OSP_ENOMEM, "calibration: out of memory");
            goto out;
        }
        osp_image_t img = {0};
        osp_err_t ie = {0};
        void *buf = malloc(bytes);
        if (!buf) {
            free(path);
            rc = osp_err_set(err, OSP_ENOMEM, "calibration: out of memory");
            goto out;
        }
        if (osp_image_load_file(path, &lim, min_w, min_h, &img, &ie) ||
            osp_image_preprocess(&img, p, buf, &ie)) {
            free(buf); /* not an image, or not one we decode */
        } else {
            osp_tensor_t *x = &t[n++];
            x->dtype = p->dtype;
            x->rank = 4;
            x->dims[0] = 1;
            bool nchw = p->layout == OSP_LAYOUT_NCHW;
            x->dims[1] = nchw ? 3 : p->out_h;
            x->dims[2] = nchw ? p->out_h : p->out_w;
            x->dims[3] = nchw ? p->out_w : 3;
            x->data = buf;
        }
        osp_image_release(&img);
        free(path);
    }
    if (n == 0) {
        rc = osp_err_set(err, OSP_EINVAL,
                         "model %s: calibration: no decodable image in %s "
                         "(%d entries)", m->name, m->calib_dir, n_names);
        goto out;
    }
    *out = t;
    *n_out = n;
    t = NULL;
out:
    osp__calibration_free(t, want);
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    return rc;
}
