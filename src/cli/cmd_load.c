/* cmd_load.c — `osprey load`: drives an HTTP endpoint (osprey serve, the
 * dispatcher, a baseline) with an open-loop rate profile or closed-loop
 * users, then prints a summary (table, or one JSON object with --json) and
 * optionally writes the time series (--out DIR). docs/load.md.
 *
 * Settings: flags, OSPREY_LOAD_* and a JSON file (--config FILE) through the
 * settings layer (settings.h). Exit codes (a contract with bench/ scripts;
 * cli.h): 0 after a run, 1 when the run could not start (unresolvable host,
 * unreadable images, --out not writable), 2 for usage errors (unknown flag,
 * bad value, bad profile), 3 when the error rate exceeded --max-error-rate. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "osprey/load.h"

/* The command line, as the settings layer fills it. */
typedef struct load_cli_s {
    osp_load_opts_t o;
    const char *mode, *duration, *profile, *ramp, *trace, *out, *warmup;
    double rate_per_s;  /* < 0: not given */
    int seed;
    int concurrency;    /* 0: not given (then o's default) */
    int think_ms;       /* < 0: not given */
    bool json, quiet;
    double max_error_rate;
    const char *headers[OSP_LOAD_CORPUS_MAX_HEADERS];
    int n_headers;
} load_cli_t;

static int parse_arrival(void *f, const char *v) {
    return osp_load_arrival_parse(v, (osp_load_arrival_t *)f);
}

static int parse_target(void *f, const char *v) {
    return osp_load_target_parse(v, (osp_load_target_t *)f);
}

static int parse_order(void *base, const char *v) {
    if (strcmp(v, "rr") && strcmp(v, "random"))
        return OSP_EINVAL;
    ((load_cli_t *)base)->o.order_random = !strcmp(v, "random");
    return 0;
}

static int add_header(void *base, const char *v) {
    load_cli_t *c = base;
    if (c->n_headers == OSP_LOAD_CORPUS_MAX_HEADERS)
        return OSP_ELIMIT;
    c->headers[c->n_headers++] = v;
    return 0;
}

static void reset_headers(void *base) { ((load_cli_t *)base)->n_headers = 0; }

#define O(f) offsetof(load_cli_t, f)
static const osp_setting_t opts[] = {
    {.name = "url", .kind = OSP_SET_STR, .off = O(o.url), .arg = "URL", .help = "server base URL, e.g. http://127.0.0.1:8080 (required); with --target get, the full URL to GET"},
    {.name = "mode", .kind = OSP_SET_STR, .off = O(mode), .arg = "open|closed", .help = "open: requests at the profile's times (default); closed: --concurrency users back to back"},
    {.name = "rate", .kind = OSP_SET_DOUBLE, .off = O(rate_per_s), .max = (long long)OSP_LOAD_PROFILE_MAX_RATE_PER_S, .arg = "R", .help = "open loop: constant R requests/s (with --duration)"},
    {.name = "duration", .kind = OSP_SET_STR, .off = O(duration), .arg = "D", .help = "length of --rate or of a closed-loop run: 30s, 2m, 1.5 (seconds; default 10s)"},
    {.name = "profile", .kind = OSP_SET_STR, .off = O(profile), .arg = "R:D,...", .help = "open loop: steps, e.g. 10:60s,50:60s,100:60s"},
    {.name = "ramp", .kind = OSP_SET_STR, .off = O(ramp), .arg = "FROM:TO:D", .help = "open loop: rate from FROM to TO linearly over D"},
    {.name = "trace", .kind = OSP_SET_STR, .off = O(trace), .arg = "FILE", .help = "open loop: one number per line = requests in that second ('#' comments)"},
    {.name = "arrival", .kind = OSP_SET_FIELD, .off = O(o.arrival), .parse_field = parse_arrival, .arg = "constant|poisson", .help = "open loop: even spacing (default) or Poisson arrivals"},
    {.name = "seed", .kind = OSP_SET_INT, .off = O(seed), .max = 2147483647, .help = "seed for Poisson arrivals and --order random (default 1)"},
    {.name = "concurrency", .kind = OSP_SET_INT, .off = O(concurrency), .min = 1, .max = OSP_LOAD_MAX_CONNECTIONS, .help = "closed loop: users (default 10)"},
    {.name = "think-ms", .kind = OSP_SET_INT, .off = O(think_ms), .max = 3600000, .arg = "MS", .help = "closed loop: pause after each answer (default 0)"},
    {.name = "target", .kind = OSP_SET_FIELD, .off = O(o.target), .parse_field = parse_target, .arg = "T", .help = "multipart (default) | raw | v2-json | v2-binary | get"},
    {.name = "model", .kind = OSP_SET_STR, .off = O(o.model), .arg = "NAME", .help = "model name: /v1/models/NAME/classify, /v2/models/NAME/infer (needed for v2 targets)"},
    {.name = "images", .kind = OSP_SET_STR, .off = O(o.images), .arg = "DIR|FILE", .help = "image corpus: every file of DIR, or one file"},
    {.name = "order", .kind = OSP_SET_FN, .parse = parse_order, .arg = "rr|random", .help = "image order: round-robin (default) or random"},
    {.name = "header", .kind = OSP_SET_FN, .parse = add_header, .reset = reset_headers, .arg = "'NAME: VALUE'", .help = "an extra request header (repeatable, at most 32; e.g. 'X-Request-Timeout-Ms: 500')"},
    {.name = "connections", .kind = OSP_SET_INT, .off = O(o.connections), .min = 1, .max = OSP_LOAD_MAX_CONNECTIONS, .help = "open loop: keep-alive connection pool size (default 256, opened as needed; closed loop: one connection per user)"},
    {.name = "timeout-ms", .kind = OSP_SET_INT, .off = O(o.timeout_ms), .min = 1, .max = 86400000, .arg = "MS", .help = "per request, from its intended send time (default 30000)"},
    {.name = "warmup", .kind = OSP_SET_STR, .off = O(warmup), .arg = "D", .help = "leave requests due in the first D out of the summary (the onset; the time series keeps them): 3s, 500ms"},
    {.name = "out", .kind = OSP_SET_STR, .off = O(out), .arg = "DIR", .help = "write timeseries.csv/json, summary.json, latency.csv"},
    {.name = "json", .kind = OSP_SET_BOOL, .off = O(json), .help = "print the summary as one JSON object on stdout"},
    {.name = "max-error-rate", .kind = OSP_SET_DOUBLE, .off = O(max_error_rate), .max = 1, .arg = "F", .help = "exit 3 when errors/requests exceeds F (0..1; default 1 = never)"},
    {.name = "quiet", .kind = OSP_SET_BOOL, .off = O(quiet), .help = "no live progress line (shown only on a terminal)"},
};
#undef O

/* mkdir -p (cli.h); also `osprey models fetch`'s directories. */
int osp_cli_mkdir_p(const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(path, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static osp_load_t *running;

static void on_signal(int sig) {
    (void)sig;
    if (running)
        osp_load_stop(running);
}

/* The open-loop profile from --rate (with --duration), --profile, --ramp
 * or --trace; an exit code. */
static int make_profile(const load_cli_t *c, const osp_settings_t *st,
                        double dur_s, osp_load_profile_t **out) {
    osp_err_t err = {0};
    osp_load_profile_t *prof = osp_load_profile_create();
    if (!prof) {
        fprintf(stderr, "osprey load: out of memory\n");
        return OSP_CLI_EXIT_FAIL;
    }
    int pr;
    if (c->rate_per_s >= 0)
        pr = osp_load_profile_add(prof, c->rate_per_s, c->rate_per_s, dur_s,
                                  &err);
    else if (c->profile)
        pr = osp_load_profile_parse_steps(prof, c->profile, &err);
    else if (c->ramp)
        pr = osp_load_profile_parse_ramp(prof, c->ramp, &err);
    else
        pr = osp_load_profile_load_trace(prof, c->trace, &err);
    if (pr < 0) {
        osp_load_profile_destroy(prof);
        return osp_settings_fail(st, "%s", err.msg);
    }
    *out = prof;
    return OSP_CLI_EXIT_OK;
}

/* Checks the flags that go together and completes c->o (the profile of an
 * open loop into *prof); an exit code. */
static int validate(load_cli_t *c, const osp_settings_t *st,
                    osp_load_profile_t **prof) {
    osp_err_t err = {0};
    if (!c->o.url)
        return osp_settings_fail(st, "--url is required");
    if (c->mode && strcmp(c->mode, "open") && strcmp(c->mode, "closed"))
        return osp_settings_fail(st, "--mode must be open or closed, not "
                                     "'%s'", c->mode);
    c->o.mode = c->mode && !strcmp(c->mode, "closed") ? OSP_LOAD_CLOSED
                                                      : OSP_LOAD_OPEN;
    double dur_s = 10;
    if (c->duration && osp_load_parse_duration_s(c->duration, &dur_s, &err) < 0)
        return osp_settings_fail(st, "--duration: %s", err.msg);
    if (c->warmup &&
        osp_load_parse_duration_s(c->warmup, &c->o.warmup_s, &err) < 0)
        return osp_settings_fail(st, "--warmup: %s", err.msg);
    int sources = (c->rate_per_s >= 0) + !!c->profile + !!c->ramp + !!c->trace;
    if (c->o.mode == OSP_LOAD_CLOSED) {
        if (sources)
            return osp_settings_fail(st, "--rate, --profile, --ramp and "
                                         "--trace are for --mode open");
        c->o.duration_s = dur_s;
        if (c->concurrency)
            c->o.concurrency = c->concurrency;
        if (c->think_ms >= 0)
            c->o.think_ms = c->think_ms;
        if (c->o.warmup_s >= dur_s)
            return osp_settings_fail(st, "--warmup must be shorter than "
                                         "--duration");
        return OSP_CLI_EXIT_OK;
    }
    if (c->concurrency || c->think_ms >= 0)
        return osp_settings_fail(st, "--concurrency and --think-ms are for "
                                     "--mode closed (open loop: "
                                     "--connections)");
    if (sources != 1)
        return osp_settings_fail(st, "open loop needs exactly one of --rate R "
                                     "(with --duration), --profile, --ramp, "
                                     "--trace");
    if (c->duration && c->rate_per_s < 0)
        return osp_settings_fail(st, "--duration goes with --rate (the "
                                     "profile, ramp or trace sets its own "
                                     "length)");
    int rc = make_profile(c, st, dur_s, prof);
    c->o.profile = *prof;
    if (rc == OSP_CLI_EXIT_OK &&
        c->o.warmup_s >= osp_load_profile_duration_s(*prof))
        return osp_settings_fail(st, "--warmup must be shorter than the "
                                     "profile");
    return rc;
}

/* mkdir -p dir, then a probe file in it: fail before the run, not after
 * it, when --out is unusable. */
static int check_out_dir(const char *out) {
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/.osprey-load-probe", out);
    FILE *pf = NULL;
    if ((osp_cli_mkdir_p(out) < 0) || !(pf = fopen(probe, "w"))) {
        fprintf(stderr, "osprey load: --out %s: %s\n", out, strerror(errno));
        return OSP_CLI_EXIT_FAIL;
    }
    fclose(pf);
    unlink(probe);
    return OSP_CLI_EXIT_OK;
}

/* Runs l (SIGINT/SIGTERM end the run early, with a summary); 0 or < 0. */
static int run(osp_load_t *l, osp_err_t *err) {
    running = l;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = osp_load_run(l, err);
    running = NULL;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    return rc;
}

/* The summary (stdout; with --json the JSON there and the table on
 * stderr), the --out files, and the exit code. */
static int report(const load_cli_t *c, const osp_load_t *l) {
    osp_err_t err = {0};
    if (c->json) {
        char *s = osp_load_summary_json(l);
        if (!s) {
            fprintf(stderr, "osprey load: out of memory\n");
            return OSP_CLI_EXIT_FAIL;
        }
        printf("%s\n", s);
        free(s);
        fflush(stdout);
        osp_load_print_summary(l, stderr);
    } else {
        osp_load_print_summary(l, stdout);
    }
    if (c->out && osp_load_write_dir(l, c->out, &err) < 0) {
        fprintf(stderr, "osprey load: %s\n", err.msg);
        return OSP_CLI_EXIT_FAIL;
    }
    double rate = osp_load_summary(l)->error_rate;
    if (rate > c->max_error_rate) {
        fprintf(stderr, "osprey load: error rate %.4f exceeds "
                        "--max-error-rate %g\n", rate, c->max_error_rate);
        return OSP_CLI_EXIT_ERRORS;
    }
    return OSP_CLI_EXIT_OK;
}

int osp_cli_load(int argc, char **argv) {
    load_cli_t c = {.rate_per_s = -1, .seed = 1, .think_ms = -1,
                    .max_error_rate = 1.0};
    osp_load_opts_init(&c.o);
    osp_settings_t st = {
        .cmd = "osprey load", .env_prefix = "OSPREY_LOAD_", .tab = opts,
        .n = OSP_ARRAY_LEN(opts), .base = &c,
        .synopsis = "--url URL [options]",
        .about = "Load generator: sends requests at a rate profile (open loop, "
                 "latency\nfrom each request's intended send time: no "
                 "coordinated omission) or as\nN closed-loop users; reports "
                 "throughput, p50/p90/p99/p99.9/max latency\nand errors by "
                 "class. See docs/load.md.\n",
        .exit_notes = ", 3 error rate above --max-error-rate"};
    osp_load_profile_t *prof = NULL;
    osp_load_t *l = NULL;
    osp_err_t err = {0};
    int rc;
    if (!osp_settings_load(&st, argc, argv, &rc) ||
        (rc = validate(&c, &st, &prof)) != OSP_CLI_EXIT_OK)
        goto done;
    c.o.seed = (uint64_t)c.seed;
    c.o.headers = c.headers;
    c.o.n_headers = c.n_headers;
    c.o.progress = !c.quiet && isatty(STDERR_FILENO) ? stderr : NULL;
    if (!(l = osp_load_create(&c.o, &err))) {
        rc = osp_cli_start_failed("osprey load", &err);
        goto done;
    }
    if (osp_load_corpus_skipped(osp_load_corpus(l)))
        fprintf(stderr, "osprey load: --images %s: skipped %d files that are "
                        "not JPEG, PNG, WebP or BMP\n", c.o.images,
                osp_load_corpus_skipped(osp_load_corpus(l)));
    if (c.out && (rc = check_out_dir(c.out)) != OSP_CLI_EXIT_OK)
        goto done;
    if (run(l, &err) < 0) {
        fprintf(stderr, "osprey load: %s\n", err.msg);
        rc = OSP_CLI_EXIT_FAIL;
        goto done;
    }
    rc = report(&c, l);
done:
    osp_load_destroy(l);
    osp_load_profile_destroy(prof);
    osp_settings_free(&st);
    return rc;
}
