/* settings.h — the settings layer of every `osprey` command: one table of a
 * command's settings, filled from command-line flags, environment variables
 * and a JSON config file, and the command's --help generated from it.
 *
 * Every command (bench, classify, load, serve, dispatch; the autoscaler and
 * `osprey up` to come) takes the same three sources with the same
 * precedence — flags win over the environment, which wins over the file,
 * which wins over the defaults already in the struct — so the table, the
 * parsing and the help format live here once and cannot drift apart
 * between commands. A setting is named once ("max-batch"); the environment
 * spells it PREFIX + "MAX_BATCH" (the prefix is the command's: OSPREY_ for
 * serve, OSPREY_DISPATCH_, OSPREY_BENCH_, OSPREY_CLASSIFY_, OSPREY_LOAD_;
 * the engine's knobs are OSPREY_* in every command), the file "max-batch"
 * or "max_batch". The file is --config FILE or PREFIX + "CONFIG" (classify:
 * --settings, since its --config names the model's config).
 *
 * A JSON object in the file is handed to an OSP_SET_FN row as its JSON
 * text, as a flag's value would be (the autoscaler's `behavior`).
 *
 * List settings (e.g. dispatch's repeatable --backend) accumulate within one
 * source and a higher source replaces a lower one's list: a JSON array in the
 * file, a comma-separated environment variable, repeated flags. */
#ifndef OSPREY_CLI_SETTINGS_H
#define OSPREY_CLI_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    OSP_SET_STR,    /* const char * (points into argv, env or kept copies) */
    OSP_SET_INT,    /* int in [min, max] (max 0: 1e9) */
    OSP_SET_I64,    /* int64_t in [min, max] (max 0: none) */
    OSP_SET_SIZE,   /* size_t, no sign */
    OSP_SET_U64,    /* uint64_t, no sign */
    OSP_SET_DOUBLE, /* finite double in [min, max] (max 0: none) */
    OSP_SET_BOOL,   /* bool: a flag without a value ("--json"); a value
                       1|0|true|false|on|off|yes|no (--json=false, the
                       environment, JSON true/false in the file) */
    OSP_SET_FN,     /* parsed by the entry's own function */
    OSP_SET_FIELD,  /* parsed by parse_field into the field at off */
} osp_set_kind_t;

typedef struct osp_setting_s {
    const char *name;  /* flag without "--" */
    osp_set_kind_t kind;
    size_t off;        /* offset of the field in the command's struct */
    const char *help;
    /* The value's name in --help ("PATH", "fp32|bf16|int8|auto"); NULL: N
     * for integers, X for doubles, VALUE otherwise (none for OSP_SET_BOOL).
     * A name with '|' is also quoted in the message for a bad value. */
    const char *arg;
    char short_name;   /* a one-letter alias ("-m PATH", "-j"), or 0 */
    /* OSP_SET_INT / I64 / DOUBLE: lowest value (0 if unset) and highest
     * (0: none; OSP_SET_INT 1e9). */
    long long min, max;
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
    /* This row's environment prefix instead of the command's (the engine's
     * knobs are OSPREY_ENGINE_* in every command); NULL = the command's. */
    const char *env_prefix;
    /* --help: a heading printed before this row, which starts a group of
     * its own after the command's options (the engine's knobs). */
    const char *section;
} osp_setting_t;

typedef struct osp_settings_s {
    const char *cmd;        /* "osprey serve": prefix of every message */
    const char *env_prefix; /* "OSPREY_" */
    const osp_setting_t *tab;
    size_t n;
    void *base;             /* the struct the offsets point into */
    /* --help's own text around the generated lists */
    const char *synopsis;   /* after "usage: <cmd> " */
    const char *about;      /* what the command does; lines end in '\n' */
    const char *notes;      /* a paragraph after the sources', or NULL */
    const char *exit_notes; /* codes beyond 0/1/2 (", 3 ..."), or NULL */
    const char *config_flag; /* the config file's flag; NULL = "config" */
    /* Non-option arguments (classify's images) are collected into args
     * when this names them in messages ("image"); NULL: they are errors.
     * "--" ends the options. */
    const char *args_name;
    const char **args;      /* out: the non-option arguments, into argv */
    int n_args;
    /* private: strings copied from the file and environment */
    char **keep;
    size_t n_keep, cap_keep;
} osp_settings_t;

/* Fills s->base from the config file, the environment, then argv[1..].
 * Returns true when the command should run; false after printing --help
 * (*exit_code 0) or a usage or configuration error (*exit_code 2). */
bool osp_settings_load(osp_settings_t *s, int argc, char **argv,
                       int *exit_code);
/* Applies one value to one entry of s->tab (not a list), as the flag
 * source; for tools that parse their own argv (getopt_long). `from` names
 * the source in messages ("command line"). 0, or -1 after a message. */
int osp_settings_set(osp_settings_t *s, const osp_setting_t *op, const char *v,
                     const char *from);
/* Prints "cmd: <message>" and the pointer to --help to stderr for a usage
 * error found after loading (a missing --model, flags that do not go
 * together); returns the usage exit code (2). */
int osp_settings_fail(const osp_settings_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A bearer-token file option (--dispatcher-token-file and the like): reads
 * path's token into out (cap > OSP_HTTP_BEARER_MAX) by the rules of
 * osp_http_bearer_read_file; out is "" when path is NULL. 0, or the usage
 * exit code after osp_settings_fail named --flag and the reason. */
int osp_settings_token_file(const osp_settings_t *s, const char *flag,
                            const char *path, char *out, size_t cap);
/* The generated --help: usage line, about, options, the sources and
 * their precedence, notes, exit codes. */
void osp_settings_usage(const osp_settings_t *s, FILE *f);
/* The "  --name ARG   help" lines of rows alone, in --help's format. */
void osp_settings_print_rows(const osp_setting_t *tab, size_t n, FILE *f);
/* Frees the kept strings and args; call after the command no longer uses
 * them. */
void osp_settings_free(osp_settings_t *s);

/* Raises the process's soft descriptor limit (RLIMIT_NOFILE) to its hard
 * limit — servers that hold thousands of connections need it, and only
 * the CLI changes process-wide limits — and returns the soft limit now in
 * force (1024 if it cannot be read), for osp_http_auto_max_connections. */
long osp_settings_raise_nofile(void);

/* The default --max-inflight-bytes (docs/adr/0049-memory-budget.md): a
 * quarter of the memory this process may use — its cgroup's memory limit
 * (v2 memory.max, v1 memory.limit_in_bytes), else physical RAM —
 * osp_http_auto_budget. Writes where the number came from into why (for
 * the start log line), e.g. "cgroup v2 memory.max 2147483648 / 4". */
uint64_t osp_settings_auto_inflight_bytes(char *why, size_t cap);

#endif
