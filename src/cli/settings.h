/* settings.h — one table of a command's settings, filled from command-line
 * flags, PREFIX* environment variables and a JSON config file.
 *
 * Long-running commands (serve, dispatch, later autoscale) take the same
 * three sources with the same precedence — flags win over the environment,
 * which wins over the file, which wins over the defaults already in the
 * struct — so the table and the parsing live here once and cannot drift
 * apart between commands. A setting is named once ("max-batch"); the
 * environment spells it PREFIX + "MAX_BATCH", the file "max-batch" or
 * "max_batch".
 *
 * List settings (e.g. dispatch's repeatable --backend) accumulate within one
 * source and a higher source replaces a lower one's list: a JSON array in the
 * file, a comma-separated environment variable, repeated flags. */
#ifndef OSPREY_CLI_SETTINGS_H
#define OSPREY_CLI_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    OSP_SET_STR,    /* const char * (points into argv, env or kept copies) */
    OSP_SET_INT,    /* int in [min, 1e9] */
    OSP_SET_I64,    /* int64_t >= min */
    OSP_SET_SIZE,   /* size_t, no sign */
    OSP_SET_U64,    /* uint64_t, no sign */
    OSP_SET_DOUBLE, /* double >= 0 */
    OSP_SET_FN,     /* parsed by the entry's own function */
    OSP_SET_FIELD,  /* parsed by parse_field into the field at off */
} osp_set_kind_t;

typedef struct osp_setting_s {
    const char *name;  /* flag without "--" */
    osp_set_kind_t kind;
    size_t off;        /* offset of the field in the command's struct */
    const char *help;
    long long min;     /* OSP_SET_INT / OSP_SET_I64: lowest value (0 if unset) */
    /* OSP_SET_FN: stores v (which outlives the command) into base; < 0 when
     * v is not acceptable. */
    int (*parse)(void *base, const char *v);
    /* A list setting: reset empties it when a higher source first sets it. */
    void (*reset)(void *base);
    /* OSP_SET_FIELD: stores v into the field (base + off); < 0 when v is not
     * acceptable. One function serves every field of a type. */
    int (*parse_field)(void *field, const char *v);
    /* An older environment name still read when PREFIX + NAME is unset
     * (e.g. OSP_ENGINE_WINOGRAD for OSPREY_ENGINE_WINOGRAD); NULL = none. */
    const char *env_alias;
} osp_setting_t;

typedef struct osp_settings_s {
    const char *cmd;        /* "osprey serve": prefix of every message */
    const char *env_prefix; /* "OSPREY_" */
    const osp_setting_t *tab;
    size_t n;
    void *base;             /* the struct the offsets point into */
    void (*usage)(FILE *f); /* printed for --help and usage errors */
    /* private: strings copied from the file and environment */
    char **keep;
    size_t n_keep, cap_keep;
} osp_settings_t;

/* Fills s->base from the config file (--config FILE or PREFIX + "CONFIG"),
 * the environment, then argv[1..]. Returns 0 when the command should run,
 * 1 when --help was printed (exit 0), -1 after printing a message for a
 * usage or configuration error (exit 2). The table must have a "config"
 * entry of kind OSP_SET_STR. */
int osp_settings_load(osp_settings_t *s, int argc, char **argv);
/* For commands that parse their own argv (getopt_long): applies the
 * environment alone (PREFIX + NAME, then env_alias), resp. one value to one
 * entry of s->tab (not a list); `from` names the source in messages
 * ("command line"). 0, or -1 after printing a message. */
int osp_settings_load_env(osp_settings_t *s);
int osp_settings_set(osp_settings_t *s, const osp_setting_t *op, const char *v,
                     const char *from);
/* The "  --name   help" lines of the table, and --help's. */
void osp_settings_print(const osp_settings_t *s, FILE *f);
/* The same lines for rows alone (no --help line). */
void osp_settings_print_rows(const osp_setting_t *tab, size_t n, FILE *f);
/* Frees the kept strings; call after the command no longer uses them. */
void osp_settings_free(osp_settings_t *s);

#endif
