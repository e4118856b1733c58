/* cmd_load.c — `osprey load`: drives an HTTP endpoint (osprey serve, the
 * dispatcher, a baseline) with an open-loop rate profile or closed-loop
 * users, then prints a summary (table, or one JSON object with --json) and
 * optionally writes the time series (--out DIR). docs/load.md.
 *
 * Exit codes (a contract with bench/ scripts): 0 after a run, 1 when the run
 * could not start (unresolvable host, unreadable images, --out not
 * writable), 2 for usage errors (unknown flag, bad value, bad profile), 3
 * when the error rate exceeded --max-error-rate. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "osprey/load.h"

static const struct {
    const char *flag, *arg, *help;
} flags[] = {
    {"url", "URL", "server base URL, e.g. http://127.0.0.1:8080 (required); "
                   "with --target get, the full URL to GET"},
    {"mode", "open|closed", "open: requests at the profile's times (default); "
                            "closed: --concurrency users back to back"},
    {"rate", "R", "open loop: constant R requests/s (with --duration)"},
    {"duration", "D", "length of --rate or of a closed-loop run: 30s, 2m, "
                      "1.5 (seconds; default 10s)"},
    {"profile", "R:D,...", "open loop: steps, e.g. 10:60s,50:60s,100:60s"},
    {"ramp", "FROM:TO:D", "open loop: rate from FROM to TO linearly over D"},
    {"trace", "FILE", "open loop: one number per line = requests in that "
                      "second ('#' comments)"},
    {"arrival", "constant|poisson", "open loop: even spacing (default) or "
                                    "Poisson arrivals"},
    {"seed", "N", "seed for Poisson arrivals and --order random (default 1)"},
    {"concurrency", "N", "closed loop: users (default 10)"},
    {"think-ms", "MS", "closed loop: pause after each answer (default 0)"},
    {"target", "T", "multipart (default) | raw | v2-json | v2-binary | get"},
    {"model", "NAME", "model name: /v1/models/NAME/classify, "
                      "/v2/models/NAME/infer (needed for v2 targets)"},
    {"images", "DIR|FILE", "image corpus: every file of DIR, or one file"},
    {"order", "rr|random", "image order: round-robin (default) or random"},
    {"header", "'NAME: VALUE'", "an extra request header (repeatable; e.g. "
                                "'X-Request-Timeout-Ms: 500')"},
    {"connections", "N", "open loop: keep-alive connection pool size "
                         "(default 256, opened as needed; closed loop: one "
                         "connection per user)"},
    {"timeout-ms", "MS", "per request, from its intended send time "
                         "(default 30000)"},
    {"out", "DIR", "write timeseries.csv/json, summary.json, latency.csv"},
    {"json", NULL, "print the summary as one JSON object on stdout"},
    {"max-error-rate", "F", "exit 3 when errors/requests exceeds F "
                            "(0..1; default 1 = never)"},
    {"quiet", NULL, "no live progress line (shown only on a terminal)"},
    {"help", NULL, "this text"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: osprey load --url URL [options]\n\n"
               "Load generator: sends requests at a rate profile (open loop, "
               "latency\nfrom each request's intended send time: no "
               "coordinated omission) or as\nN closed-loop users; reports "
               "throughput, p50/p90/p99/p99.9/max latency\nand errors by "
               "class. See docs/load.md.\n\noptions:\n");
    for (size_t i = 0; i < OSP_ARRAY_LEN(flags); i++) {
        char left[48];
        snprintf(left, sizeof left, "--%s%s%s", flags[i].flag,
                 flags[i].arg ? " " : "", flags[i].arg ? flags[i].arg : "");
        /* Word-wrap the help text at 80 columns, indented under itself. */
        fprintf(f, "  %-26s", left);
        int col = 28;
        if ((int)strlen(left) > 26) {
            fprintf(f, "\n%28s", "");
        }
        const char *h = flags[i].help;
        while (*h) {
            size_t w = strcspn(h, " ");
            if (col + 1 + (int)w > 79 && col > 28) {
                fprintf(f, "\n%28s", "");
                col = 28;
            }
            fprintf(f, " %.*s", (int)w, h);
            col += 1 + (int)w;
            h += w;
            while (*h == ' ')
                h++;
        }
        fputc('\n', f);
    }
    fprintf(f, "\nexit: 0 done, 1 could not start, 2 usage error,\n"
               "      3 error rate above --max-error-rate\n");
}

/* mkdir -p: creates dir and its missing parents. */
static int mkdir_p_ok(const char *dir) {
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

static int parse_int(const char *flag, const char *v, long lo, long hi,
                     int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "osprey load: --%s: '%s' is not an integer in "
                        "%ld..%ld\n", flag, v, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_double(const char *flag, const char *v, double lo, double hi,
                        double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "osprey load: --%s: '%s' is not a number in %g..%g\n",
                flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int osp_cli_load(int argc, char **argv) {
    osp_load_opts_t o;
    osp_load_opts_init(&o);
    const char *rate = NULL, *duration = NULL, *profile = NULL, *ramp = NULL,
               *trace = NULL, *out = NULL, *mode = NULL;
    int json = 0, quiet = 0, seed = 1, have_conc = 0, have_think = 0;
    const char *headers[OSP_LOAD_CORPUS_MAX_HEADERS];
    int n_headers = 0;
    double max_err = 1.0;
    osp_err_t err = {0};
    osp_load_profile_t *prof = NULL;
    osp_load_t *l = NULL;
    int rc = 2;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "osprey load: unexpected argument '%s'\n", a);
            goto usage_fail;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        size_t k = 0;
        for (; k < OSP_ARRAY_LEN(flags); k++)
            if (strlen(flags[k].flag) == nl && !strncmp(flags[k].flag, a, nl))
                break;
        if (k == OSP_ARRAY_LEN(flags)) {
            fprintf(stderr, "osprey load: unknown option '%s'\n", argv[i]);
            goto usage_fail;
        }
        const char *name = flags[k].flag;
        const char *v = NULL;
        if (flags[k].arg) {
            v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                fprintf(stderr, "osprey load: --%s needs a value (%s)\n", name,
                        flags[k].arg);
                goto usage_fail;
            }
        } else if (eq) {
            fprintf(stderr, "osprey load: --%s takes no value\n", name);
            goto usage_fail;
        }
        if (!strcmp(name, "url")) o.url = v;
        else if (!strcmp(name, "mode")) mode = v;
        else if (!strcmp(name, "rate")) rate = v;
        else if (!strcmp(name, "duration")) duration = v;
        else if (!strcmp(name, "profile")) profile = v;
        else if (!strcmp(name, "ramp")) ramp = v;
        else if (!strcmp(name, "trace")) trace = v;
        else if (!strcmp(name, "model")) o.model = v;
        else if (!strcmp(name, "images")) o.images = v;
        else if (!strcmp(name, "out")) out = v;
        else if (!strcmp(name, "json")) json = 1;
        else if (!strcmp(name, "quiet")) quiet = 1;
        else if (!strcmp(name, "header")) {
            if (n_headers == OSP_LOAD_CORPUS_MAX_HEADERS) {
                fprintf(stderr, "osprey load: at most %d --header\n",
                        OSP_LOAD_CORPUS_MAX_HEADERS);
                goto usage_fail;
            }
            headers[n_headers++] = v;
        }
        else if (!strcmp(name, "arrival")) {
            if (osp_load_arrival_parse(v, &o.arrival) < 0) {
                fprintf(stderr, "osprey load: --arrival must be constant or "
                                "poisson, not '%s'\n", v);
                goto usage_fail;
            }
        } else if (!strcmp(name, "target")) {
            if (osp_load_target_parse(v, &o.target) < 0) {
                fprintf(stderr, "osprey load: --target must be multipart, raw, "
                                "v2-json, v2-binary or get, not '%s'\n", v);
                goto usage_fail;
            }
        } else if (!strcmp(name, "order")) {
            if (strcmp(v, "rr") && strcmp(v, "random")) {
                fprintf(stderr, "osprey load: --order must be rr or random, "
                                "not '%s'\n", v);
                goto usage_fail;
            }
            o.order_random = !strcmp(v, "random");
        } else if (!strcmp(name, "seed")) {
            if (parse_int(name, v, 0, 2147483647, &seed) < 0)
                goto usage_fail;
        } else if (!strcmp(name, "concurrency")) {
            if (parse_int(name, v, 1, OSP_LOAD_MAX_CONNECTIONS,
                          &o.concurrency) < 0)
                goto usage_fail;
            have_conc = 1;
        } else if (!strcmp(name, "think-ms")) {
            if (parse_int(name, v, 0, 3600000, &o.think_ms) < 0)
                goto usage_fail;
            have_think = 1;
        } else if (!strcmp(name, "connections")) {
            if (parse_int(name, v, 1, OSP_LOAD_MAX_CONNECTIONS,
                          &o.connections) < 0)
                goto usage_fail;
        } else if (!strcmp(name, "timeout-ms")) {
            if (parse_int(name, v, 1, 86400000, &o.timeout_ms) < 0)
                goto usage_fail;
        } else if (!strcmp(name, "max-error-rate")) {
            if (parse_double(name, v, 0, 1, &max_err) < 0)
                goto usage_fail;
        }
    }
    o.seed = (uint64_t)seed;
    o.headers = headers;
    o.n_headers = n_headers;
    if (!o.url) {
        fprintf(stderr, "osprey load: --url is required\n");
        goto usage_fail;
    }
    if (mode && strcmp(mode, "open") && strcmp(mode, "closed")) {
        fprintf(stderr, "osprey load: --mode must be open or closed, not "
                        "'%s'\n", mode);
        goto usage_fail;
    }
    o.mode = mode && !strcmp(mode, "closed") ? OSP_LOAD_CLOSED : OSP_LOAD_OPEN;
    double dur_s = 10;
    if (duration && osp_load_parse_duration_s(duration, &dur_s, &err) < 0) {
        fprintf(stderr, "osprey load: --duration: %s\n", err.msg);
        goto usage_fail;
    }
    int sources = !!rate + !!profile + !!ramp + !!trace;
    if (o.mode == OSP_LOAD_CLOSED) {
        if (sources) {
            fprintf(stderr, "osprey load: --rate, --profile, --ramp and "
                            "--trace are for --mode open\n");
            goto usage_fail;
        }
        o.duration_s = dur_s;
    } else {
        if (have_conc || have_think) {
            fprintf(stderr, "osprey load: --concurrency and --think-ms are "
                            "for --mode closed (open loop: --connections)\n");
            goto usage_fail;
        }
        if (sources != 1) {
            fprintf(stderr, "osprey load: open loop needs exactly one of "
                            "--rate R (with --duration), --profile, --ramp, "
                            "--trace\n");
            goto usage_fail;
        }
        if (duration && !rate) {
            fprintf(stderr, "osprey load: --duration goes with --rate (the "
                            "profile, ramp or trace sets its own length)\n");
            goto usage_fail;
        }
        prof = osp_load_profile_create();
        if (!prof) {
            fprintf(stderr, "osprey load: out of memory\n");
            rc = 1;
            goto done;
        }
        int pr = 0;
        if (rate) {
            double r;
            if (parse_double("rate", rate, 0, OSP_LOAD_PROFILE_MAX_RATE_PER_S, &r) < 0)
                goto usage_fail;
            pr = osp_load_profile_add(prof, r, r, dur_s, &err);
        } else if (profile) {
            pr = osp_load_profile_parse_steps(prof, profile, &err);
        } else if (ramp) {
            pr = osp_load_profile_parse_ramp(prof, ramp, &err);
        } else {
            pr = osp_load_profile_load_trace(prof, trace, &err);
        }
        if (pr < 0) {
            fprintf(stderr, "osprey load: %s\n", err.msg);
            goto usage_fail;
        }
        o.profile = prof;
    }
    o.progress = !quiet && isatty(STDERR_FILENO) ? stderr : NULL;

    l = osp_load_create(&o, &err);
    if (!l) {
        fprintf(stderr, "osprey load: %s\n", err.msg);
        rc = err.code == OSP_EINVAL || err.code == OSP_EUNSUPPORTED ? 2 : 1;
        goto done;
    }
    if (osp_load_corpus_skipped(osp_load_corpus(l)))
        fprintf(stderr, "osprey load: --images %s: skipped %d files that are "
                        "not JPEG, PNG, WebP or BMP\n", o.images,
                osp_load_corpus_skipped(osp_load_corpus(l)));
    if (out) {
        /* Fail before the run, not after it, when --out is unusable. */
        char probe[4096];
        snprintf(probe, sizeof probe, "%s/.osprey-load-probe", out);
        FILE *pf = NULL;
        if ((mkdir_p_ok(out) < 0) || !(pf = fopen(probe, "w"))) {
            fprintf(stderr, "osprey load: --out %s: %s\n", out,
                    strerror(errno));
            rc = 1;
            goto done;
        }
        fclose(pf);
        unlink(probe);
    }
    running = l;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (osp_load_run(l, &err) < 0) {
        running = NULL;
        fprintf(stderr, "osprey load: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    running = NULL;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (json) {
        char *s = osp_load_summary_json(l);
        if (!s) {
            fprintf(stderr, "osprey load: out of memory\n");
            rc = 1;
            goto done;
        }
        printf("%s\n", s);
        free(s);
        fflush(stdout);
        osp_load_print_summary(l, stderr);
    } else {
        osp_load_print_summary(l, stdout);
    }
    if (out && osp_load_write_dir(l, out, &err) < 0) {
        fprintf(stderr, "osprey load: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    const osp_load_summary_t *s = osp_load_summary(l);
    if (s->error_rate > max_err) {
        fprintf(stderr, "osprey load: error rate %.4f exceeds "
                        "--max-error-rate %g\n", s->error_rate, max_err);
        rc = 3;
    } else {
        rc = 0;
    }
    goto done;
usage_fail:
    fprintf(stderr, "(osprey load --help lists the options)\n");
    rc = 2;
done:
    osp_load_destroy(l);
    osp_load_profile_destroy(prof);
    return rc;
}
