/* cmd_report.c — `osprey report`: the evidence of a load run (src/report/,
 * docs/report.md).
 *
 *   osprey report --timeseries DIR|FILE [--samples FILE | --prometheus URL
 *                 --from T --to T] [--out DIR] [--png DIR [--status-url URL]]
 *   osprey report record --scrape URL... [--discover ADMIN_URL] [--interval S]
 *                        [--duration S] --out FILE
 *   osprey report snapshot --url URL --out FILE.png [--window WxH]
 *
 * `record` keeps the dispatcher's, the workers' and the autoscaler's
 * samples without a Prometheus; `snapshot` saves a page (the dispatcher's
 * /ui/status) as PNG with headless Chromium, so that a scenario can call it
 * at each load level. Settings: flags, OSPREY_REPORT_*, --config FILE, as
 * every command. Exit codes: 0 done, 1 an input missing or unreadable, a
 * source unreachable or Chromium failing, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "osprey/http.h"
#include "osprey/report.h"

#define REPORT_MAX_SCRAPE 64 /* --scrape URLs */

/* ---- headless Chromium -------------------------------------------------- */

/* Loopback or a local file only: a report never makes the browser fetch
 * anything from the network. */
static bool loopback_url(const char *u) {
    static const char *const ok[] = {"http://127.0.0.1:", "http://127.0.0.1/",
                                     "http://localhost:", "http://localhost/",
                                     "http://[::1]:", "http://[::1]/"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(ok); i++)
        if (!strncmp(u, ok[i], strlen(ok[i])))
            return true;
    return false;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Screenshots target (a loopback URL or a file path) into png at w×h CSS
 * px, giving the page's scripts budget_ms of virtual time; Chromium is
 * killed after timeout_ms. 0, or -1 after a message on stderr. */
static int chromium_shot(const char *cmd, const char *target, const char *png,
                         int w, int h, int budget_ms, int timeout_ms) {
    char url[4200], shot[4200], win[64], budget[64], profile[] = "/tmp/osprey-chromium-XXXXXX",
                                                     udd[64];
    if (loopback_url(target)) {
        snprintf(url, sizeof url, "%s", target);
    } else if (strstr(target, "://")) {
        fprintf(stderr, "%s: %s: only loopback URLs (127.0.0.1, localhost, [::1]) "
                        "are captured\n", cmd, target);
        return -1;
    } else {
        char abs[4096];
        if (!realpath(target, abs)) {
            fprintf(stderr, "%s: %s: %s\n", cmd, target, strerror(errno));
            return -1;
        }
        snprintf(url, sizeof url, "file://%s", abs);
    }
    if (!mkdtemp(profile)) {
        fprintf(stderr, "%s: mkdtemp: %s\n", cmd, strerror(errno));
        return -1;
    }
    snprintf(shot, sizeof shot, "--screenshot=%s", png);
    snprintf(win, sizeof win, "--window-size=%d,%d", w, h);
    snprintf(budget, sizeof budget, "--virtual-time-budget=%d", budget_ms);
    snprintf(udd, sizeof udd, "--user-data-dir=%s", profile);
    const char *argv[32];
    int n = 0;
    argv[n++] = "chromium";
    argv[n++] = "--headless=new";
    /* Chromium refuses to start as root with its sandbox on (the
     * containers and CI machines this runs in are root): the pages it
     * opens are our own report and our own loopback server. */
    if (geteuid() == 0)
        argv[n++] = "--no-sandbox";
    argv[n++] = "--disable-gpu";
    argv[n++] = "--hide-scrollbars";
    argv[n++] = "--no-first-run";
    argv[n++] = "--disable-background-networking";
    argv[n++] = "--disable-component-update";
    argv[n++] = "--disable-sync";
    argv[n++] = "--disable-default-apps";
    argv[n++] = "--disable-breakpad";
    /* Any host but loopback resolves to nothing. */
    argv[n++] = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, "
                "EXCLUDE 127.0.0.1";
    argv[n++] = udd;
    argv[n++] = win;
    argv[n++] = budget;
    argv[n++] = shot;
    argv[n++] = url;
    argv[n] = NULL;
    unlink(png);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", cmd, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Its own process group: on a timeout the zygote, renderer and GPU
         * processes go with it (kill of the group below). */
        setpgid(0, 0);
        int dn = open("/dev/null", O_RDWR);
        if (dn >= 0) {
            dup2(dn, 0);
            dup2(dn, 1);
            dup2(dn, 2);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0, rc = -1;
    double end = now_s() + timeout_ms / 1e3;
    for (;;) {
        pid_t p = waitpid(pid, &st, WNOHANG);
        if (p == pid)
            break;
        if (now_s() > end) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            fprintf(stderr, "%s: chromium took longer than %d ms for %s\n", cmd,
                    timeout_ms, target);
            goto out;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    struct stat sb;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        fprintf(stderr, "%s: chromium not found (Debian: apt-get install chromium)\n", cmd);
    else if (stat(png, &sb) != 0 || sb.st_size == 0)
        fprintf(stderr, "%s: chromium wrote no %s (exit status %d)\n", cmd, png,
                WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    else
        rc = 0;
out:;
    /* the throwaway profile: rm -r through a child, no shell */
    pid_t rm = fork();
    if (rm == 0) {
        execlp("rm", "rm", "-rf", profile, (char *)NULL);
        _exit(127);
    }
    if (rm > 0)
        waitpid(rm, NULL, 0);
    return rc;
}

static int parse_window(const char *s, int *w, int *h) {
    char *e;
    long a = strtol(s, &e, 10);
    if (*e != 'x')
        return -1;
    long b = strtol(e + 1, &e, 10);
    if (*e || a < 100 || b < 100 || a > 8000 || b > 30000)
        return -1;
    *w = (int)a;
    *h = (int)b;
    return 0;
}

/* ---- osprey report snapshot --------------------------------------------- */

typedef struct snap_cli_s {
    const char *url, *out, *window;
    int wait_ms, timeout_ms;
} snap_cli_t;

#define O(f) offsetof(snap_cli_t, f)
static const osp_setting_t snap_opts[] = {
    {.name = "url", .kind = OSP_SET_STR, .arg = "URL", .off = O(url),
     .help = "the page (loopback only), e.g. http://127.0.0.1:8000/ui/status"},
    {.name = "out", .kind = OSP_SET_STR, .arg = "FILE.png", .off = O(out), .help = "the PNG to write"},
    {.name = "window", .kind = OSP_SET_STR, .arg = "WxH", .off = O(window),
     .help = "viewport in CSS px (default 1280x900)"},
    {.name = "wait-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(wait_ms), .min = 0,
     .help = "time the page's scripts get before the capture (default 3000)"},
    {.name = "timeout-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(timeout_ms), .min = 1000,
     .help = "kill Chromium after this long (default 60000)"},
};
#undef O

static int snapshot(int argc, char **argv) {
    snap_cli_t c = {.window = "1280x900", .wait_ms = 3000, .timeout_ms = 60000};
    int rc, w, h;
    osp_settings_t st = {
        .cmd = "osprey report snapshot", .env_prefix = "OSPREY_REPORT_",
        .tab = snap_opts, .n = OSP_ARRAY_LEN(snap_opts), .base = &c,
        .synopsis = "--url URL --out FILE.png [--window WxH] [--wait-ms MS]",
        .about = "Saves a page of a running stack (the dispatcher's /ui/status) as PNG with\n"
                 "headless Chromium: the dashboard snapshot of one load level.\n"};
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto out;
    if (!c.url || !c.out)
        rc = osp_settings_fail(&st, "--url and --out are required");
    else if (parse_window(c.window, &w, &h) < 0)
        rc = osp_settings_fail(&st, "--window %s: not WxH (e.g. 1280x900)", c.window);
    else if (!loopback_url(c.url))
        rc = osp_settings_fail(&st, "--url %s: only loopback URLs are captured", c.url);
    else
        rc = chromium_shot(st.cmd, c.url, c.out, w, h, c.wait_ms, c.timeout_ms) < 0
                 ? OSP_CLI_EXIT_FAIL : OSP_CLI_EXIT_OK;
out:
    osp_settings_free(&st);
    return rc;
}

/* ---- osprey report record ----------------------------------------------- */

typedef struct rec_cli_s {
    const char *scrape[REPORT_MAX_SCRAPE];
    int n_scrape;
    const char *out, *discover, *discover_token_file;
    char discover_token[OSP_HTTP_BEARER_MAX + 1];
    double interval_s, duration_s;
    int timeout_ms;
} rec_cli_t;

static int add_scrape(void *base, const char *v) {
    rec_cli_t *c = base;
    if (c->n_scrape >= REPORT_MAX_SCRAPE || strncmp(v, "http", 4))
        return -1;
    c->scrape[c->n_scrape++] = v;
    return 0;
}
static void reset_scrape(void *base) { ((rec_cli_t *)base)->n_scrape = 0; }

#define O(f) offsetof(rec_cli_t, f)
static const osp_setting_t rec_opts[] = {
    {.name = "scrape", .kind = OSP_SET_FN, .arg = "URL", .off = 0,
     .help = "a /metrics page (repeatable; the dispatcher, each worker, the autoscaler)",
     .parse = add_scrape, .reset = reset_scrape},
    {.name = "discover", .kind = OSP_SET_STR, .arg = "URL", .off = O(discover),
     .help = "a dispatcher's admin API: also scrape each of its backends, as they come and go"},
    {.name = "discover-token-file", .kind = OSP_SET_STR, .arg = "FILE", .off = O(discover_token_file),
     .help = "the bearer token of the --discover admin API (the dispatcher's --admin-token-file)"},
    {.name = "out", .kind = OSP_SET_STR, .arg = "FILE", .off = O(out),
     .help = "JSONL file to append to (- for stdout)"},
    {.name = "interval", .kind = OSP_SET_DOUBLE, .arg = "S", .off = O(interval_s), .min = 0,
     .help = "seconds between scrapes (default 1)"},
    {.name = "duration", .kind = OSP_SET_DOUBLE, .arg = "S", .off = O(duration_s), .min = 0,
     .help = "stop after this many seconds (default 0: at SIGINT or SIGTERM)"},
    {.name = "timeout-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(timeout_ms), .min = 1,
     .help = "per scrape (default 800)"},
};
#undef O

static int record(int argc, char **argv) {
    rec_cli_t c = {.interval_s = 1, .timeout_ms = 800};
    int rc;
    FILE *f = NULL;
    osp_settings_t st = {
        .cmd = "osprey report record", .env_prefix = "OSPREY_REPORT_",
        .tab = rec_opts, .n = OSP_ARRAY_LEN(rec_opts), .base = &c,
        .synopsis = "--scrape URL... [--discover ADMIN_URL] --out FILE [--interval S]\n"
                    "       [--duration S]",
        .about = "Scrapes /metrics pages every --interval and appends the samples `osprey\n"
                 "report` uses as JSON lines: a run's evidence without a Prometheus. A page\n"
                 "that does not answer is recorded as down (workers come and go).\n"};
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto out;
    if ((!c.n_scrape && !c.discover) || !c.out) {
        rc = osp_settings_fail(&st, "--scrape (or --discover) and --out are required");
        goto out;
    }
    if ((rc = osp_settings_token_file(&st, "discover-token-file",
                                      c.discover_token_file, c.discover_token,
                                      sizeof c.discover_token)))
        goto out;
    if (!(c.interval_s >= 0.05)) {
        rc = osp_settings_fail(&st, "--interval %g: at least 0.05 s", c.interval_s);
        goto out;
    }
    f = strcmp(c.out, "-") ? fopen(c.out, "a") : stdout;
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", st.cmd, c.out, strerror(errno));
        rc = OSP_CLI_EXIT_FAIL;
        goto out;
    }
    /* The stop signals wait in sigtimedwait, which is also the sleep. */
    osp_cli_signals_block();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    double t0 = now_s();
    rc = OSP_CLI_EXIT_OK;
    bool discover_warned = false;
    for (long k = 1;; k++) {
        osp_err_t err = {0};
        const char *urls[2 * REPORT_MAX_SCRAPE];
        char *found[REPORT_MAX_SCRAPE];
        int n = 0, nf = 0;
        for (int i = 0; i < c.n_scrape; i++)
            urls[n++] = c.scrape[i];
        /* a dispatcher that does not answer this tick: its workers are
         * missed once, the explicit pages still recorded */
        if (c.discover) {
            nf = osp_report_record_discover(
                c.discover, c.discover_token[0] ? c.discover_token : NULL,
                c.timeout_ms, found, REPORT_MAX_SCRAPE, &err);
            if (nf < 0 && !discover_warned) { /* once: it repeats each tick */
                fprintf(stderr, "%s: --discover: %s\n", st.cmd, err.msg);
                discover_warned = true;
            }
        }
        for (int i = 0; i < nf; i++)
            urls[n++] = found[i];
        int src = osp_report_record_scrape(urls, n, c.timeout_ms, f, &err);
        for (int i = 0; i < nf; i++)
            free(found[i]);
        if (src < 0) {
            fprintf(stderr, "%s: %s\n", st.cmd, err.msg);
            rc = OSP_CLI_EXIT_FAIL;
            break;
        }
        double next = t0 + k * c.interval_s;
        if (c.duration_s > 0 && next > t0 + c.duration_s)
            break;
        double wait = next - now_s();
        if (wait <= 0)
            continue; /* the scrape took longer than the interval */
        struct timespec ts = {(time_t)wait, (long)((wait - floor(wait)) * 1e9)};
        if (sigtimedwait(&set, NULL, &ts) > 0)
            break;
    }
out:
    if (f && f != stdout)
        fclose(f);
    osp_settings_free(&st);
    return rc;
}

/* ---- osprey report ------------------------------------------------------ */

typedef struct report_cli_s {
    osp_report_opts_t o;
    const char *timeseries, *samples, *prometheus, *out, *png, *status_url;
    double from, to, step_s;
    int timeout_ms;
} report_cli_t;

#define O(f) offsetof(report_cli_t, f)
static const osp_setting_t opts[] = {
    {.name = "timeseries", .kind = OSP_SET_STR, .arg = "DIR|FILE", .off = O(timeseries),
     .help = "osprey load's --out directory or its timeseries.csv (required)"},
    {.name = "samples", .kind = OSP_SET_STR, .arg = "FILE", .off = O(samples),
     .help = "the JSONL file of `osprey report record`"},
    {.name = "prometheus", .kind = OSP_SET_STR, .arg = "URL", .off = O(prometheus),
     .help = "a Prometheus to ask instead (range queries over --from..--to)"},
    {.name = "from", .kind = OSP_SET_DOUBLE, .arg = "UNIX_S", .off = O(from),
     .help = "start of the Prometheus range (Unix seconds)"},
    {.name = "to", .kind = OSP_SET_DOUBLE, .arg = "UNIX_S", .off = O(to),
     .help = "end of the Prometheus range (Unix seconds)"},
    {.name = "step", .kind = OSP_SET_DOUBLE, .arg = "S", .off = O(step_s), .min = 0,
     .help = "Prometheus resolution (default 1)"},
    {.name = "timeout-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(timeout_ms), .min = 1,
     .help = "per Prometheus query; Chromium gets 60 s (default 10000)"},
    {.name = "out", .kind = OSP_SET_STR, .arg = "DIR", .off = O(out),
     .help = "where report.html and report.md go (default report)"},
    {.name = "title", .kind = OSP_SET_STR, .arg = "TEXT", .off = O(o.title),
     .help = "the page's title"},
    {.name = "source-note", .kind = OSP_SET_STR, .arg = "TEXT", .off = O(o.source_note),
     .help = "a line saying what produced the run (local stack, Kubernetes, ...)"},
    {.name = "levels", .kind = OSP_SET_STR, .arg = "R:D,...", .off = O(o.levels),
     .help = "the load profile's steps (default: detected from the offered rate)"},
    {.name = "load-start", .kind = OSP_SET_DOUBLE, .arg = "UNIX_S", .off = O(o.load_start_unix_s),
     .help = "Unix time of the load's second 0 (default: the first request counted)"},
    {.name = "slo-p99-ms", .kind = OSP_SET_DOUBLE, .arg = "MS", .off = O(o.slo_p99_ms), .min = 0,
     .help = "latency SLO, p99 of each second (default 500)"},
    {.name = "slo-error-ratio", .kind = OSP_SET_DOUBLE, .arg = "X", .off = O(o.slo_error_ratio),
     .min = 0, .max = 1, .help = "availability SLO, errors per answer (default 0.01)"},
    {.name = "png", .kind = OSP_SET_STR, .arg = "DIR", .off = O(png),
     .help = "also render report.png (and status.png) there with headless Chromium"},
    {.name = "status-url", .kind = OSP_SET_STR, .arg = "URL", .off = O(status_url),
     .help = "with --png: the dispatcher's /ui/status page to capture too (loopback)"},
};
#undef O

static FILE *open_out(const char *cmd, const char *dir, const char *name,
                      char *path, size_t n) {
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "%s: %s: %s\n", cmd, path, strerror(errno));
    return f;
}

static int write_pages(const char *cmd, osp_report_t *r, const char *dir,
                       char *html, size_t n) {
    char md[4200];
    osp_err_t err = {0};
    FILE *f = open_out(cmd, dir, "report.html", html, n);
    if (!f)
        return -1;
    int rc = osp_report_write_html(r, f, &err);
    if (fclose(f) != 0 && rc == 0)
        rc = osp_err_set(&err, OSP_EIO, "%s: write failed", html);
    if (rc == 0 && !(f = open_out(cmd, dir, "report.md", md, sizeof md)))
        return -1;
    if (rc == 0) {
        rc = osp_report_write_markdown(r, f, &err);
        if (fclose(f) != 0 && rc == 0)
            rc = osp_err_set(&err, OSP_EIO, "%s: write failed", md);
    }
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
    return rc < 0 ? -1 : 0;
}

int osp_cli_report(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "record"))
        return record(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "snapshot"))
        return snapshot(argc - 1, argv + 1);
    report_cli_t c = {.out = "report", .step_s = 1, .timeout_ms = 10000};
    osp_report_opts_init(&c.o);
    int rc;
    osp_report_t *r = NULL;
    osp_err_t err = {0};
    osp_settings_t st = {
        .cmd = "osprey report", .env_prefix = "OSPREY_REPORT_", .tab = opts,
        .n = OSP_ARRAY_LEN(opts), .base = &c,
        .synopsis = "--timeseries DIR [--samples FILE | --prometheus URL --from T --to T]\n"
                    "       [--out DIR] [--png DIR [--status-url URL]]\n"
                    "       osprey report record --scrape URL... --out FILE\n"
                    "       osprey report snapshot --url URL --out FILE.png",
        .about = "Writes report.html (self-contained: inline SVG charts) and report.md from\n"
                 "an `osprey load` run and the system's samples over it: offered vs achieved\n"
                 "load, latency, errors, workers desired vs current with the autoscaler's\n"
                 "decisions, per-worker CPU, memory and network, queue depth, a table per\n"
                 "load level, the load/resource correlation and the SLO (docs/report.md).\n"};
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto out;
    if (!c.timeseries) {
        rc = osp_settings_fail(&st, "--timeseries is required");
        goto out;
    }
    if (c.samples && c.prometheus) {
        rc = osp_settings_fail(&st, "--samples and --prometheus do not go together");
        goto out;
    }
    if (c.prometheus && !(c.from > 0 && c.to > c.from)) {
        rc = osp_settings_fail(&st, "--prometheus needs --from and --to (Unix seconds, "
                                    "from < to)");
        goto out;
    }
    if (c.status_url && (!c.png || !loopback_url(c.status_url))) {
        rc = osp_settings_fail(&st, "--status-url needs --png and a loopback URL");
        goto out;
    }
    if (!(r = osp_report_create(&c.o, &err))) {
        rc = osp_cli_start_failed(st.cmd, &err);
        goto out;
    }
    rc = OSP_CLI_EXIT_FAIL;
    if (osp_report_load_timeseries(r, c.timeseries, &err) < 0 ||
        (c.samples && osp_report_load_samples(r, c.samples, &err) < 0) ||
        (c.prometheus &&
         osp_report_load_prometheus(r, c.prometheus, c.from, c.to, c.step_s,
                                    c.timeout_ms, &err) < 0) ||
        osp_report_analyse(r, &err) < 0) {
        fprintf(stderr, "%s: %s\n", st.cmd, err.msg);
        goto out;
    }
    char html[4200], png[4200];
    if (osp_cli_mkdir_p(c.out) < 0) {
        fprintf(stderr, "%s: --out %s: %s\n", st.cmd, c.out, strerror(errno));
        goto out;
    }
    if (write_pages(st.cmd, r, c.out, html, sizeof html) < 0)
        goto out;
    printf("%s\n%s/report.md\n", html, c.out);
    if (c.png) {
        if (osp_cli_mkdir_p(c.png) < 0) {
            fprintf(stderr, "%s: --png %s: %s\n", st.cmd, c.png, strerror(errno));
            goto out;
        }
        snprintf(png, sizeof png, "%s/report.png", c.png);
        if (chromium_shot(st.cmd, html, png, 1040, osp_report_html_height_px(r),
                          500, 60000) < 0)
            goto out;
        printf("%s\n", png);
        if (c.status_url) {
            snprintf(png, sizeof png, "%s/status.png", c.png);
            if (chromium_shot(st.cmd, c.status_url, png, 1280, 900, 3000, 60000) < 0)
                goto out;
            printf("%s\n", png);
        }
    }
    rc = OSP_CLI_EXIT_OK;
out:
    osp_report_destroy(r);
    osp_settings_free(&st);
    return rc;
}
