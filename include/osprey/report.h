/* report.h — `osprey report`: turns a load run into evidence. It reads
 * `osprey load`'s per-second time series (timeseries.csv, with the
 * summary.json and latency.csv beside it) and the system's own metrics over
 * the same minutes — samples recorded from the /metrics pages of the
 * dispatcher, the workers and the autoscaler (osp_report_record_scrape, the
 * JSONL file of `osprey report record`) or a Prometheus's range queries —
 * and writes one self-contained HTML page (inline SVG charts, no script, no
 * external asset) and a Markdown summary: offered vs achieved load,
 * latency percentiles, errors by class, workers desired vs current with
 * the autoscaler's decisions, per-worker CPU, memory and network, queue
 * depth, a table per load level and the correlation between the load and
 * each resource, with the SLO's violations marked. docs/report.md shows an
 * example and explains each chart.
 *
 * The library reads no environment: the CLI (src/cli/cmd_report.c) passes
 * every choice in osp_report_opts_t. Thread safety: one report per thread. */
#ifndef OSPREY_REPORT_H
#define OSPREY_REPORT_H

#include <stdio.h>

#include "osprey/common.h"

#define OSP_REPORT_MAX_LEVELS 64 /* load levels (profile steps) in a table */

typedef struct osp_report_opts_s {
    const char *title;       /* page title; NULL: "osprey load report" */
    const char *source_note; /* one line saying which path produced the run
                                (local, Kubernetes), or NULL */
    double slo_p99_ms;       /* latency SLO: p99 of a second (default 500) */
    double slo_error_ratio;  /* availability SLO: errors / answers (0.01) */
    /* Unix time of the load's second 0; 0: detected (docs/report.md,
     * "Aligning the clocks"). */
    double load_start_unix_s;
    /* Load levels as `osprey load --profile`'s steps ("5:20s,20:20s");
     * NULL: detected from the offered rate's plateaus. */
    const char *levels;
} osp_report_opts_t;

/* Defaults: no title, SLO p99 <= 500 ms and errors <= 1 % (docs/operations.md),
 * clocks and levels detected. */
void osp_report_opts_init(osp_report_opts_t *o);

typedef struct osp_report_s osp_report_t;

/* Creates an empty report (the options are copied, strings too). NULL with
 * err set on out-of-memory or a malformed opts->levels. Caller destroys. */
osp_report_t *osp_report_create(const osp_report_opts_t *o, osp_err_t *err);
void osp_report_destroy(osp_report_t *r);

/* Reads `osprey load`'s time series: path is timeseries.csv or the --out
 * directory holding it; summary.json and latency.csv beside it are read
 * when present (errors by class, the whole run's percentiles).
 * OSP_ENOENT / OSP_EFORMAT with err naming the file and line. */
int osp_report_load_timeseries(osp_report_t *r, const char *path,
                               osp_err_t *err);

/* Reads a JSONL file written by `osprey report record` (one object per
 * scrape: {"t": unix_s, "target": URL, "up": bool, "samples": {...}}).
 * May be called more than once. OSP_EFORMAT naming the line. */
int osp_report_load_samples(osp_report_t *r, const char *path, osp_err_t *err);

/* Fills the report's samples from a Prometheus (base URL, loopback or any
 * host the caller allows) over [from_unix_s, to_unix_s] with step_s
 * resolution, with the same metric names as the recorder. timeout_ms bounds
 * each query. OSP_EIO / OSP_ETIMEDOUT when unreachable, OSP_EFORMAT when
 * the answer is not Prometheus's. */
int osp_report_load_prometheus(osp_report_t *r, const char *url,
                               double from_unix_s, double to_unix_s,
                               double step_s, long timeout_ms, osp_err_t *err);

/* Computes everything the outputs show (levels, per-second resources,
 * correlations, SLO). Call after loading, before writing. OSP_EINVAL when
 * no time series was loaded. */
int osp_report_analyse(osp_report_t *r, osp_err_t *err);

/* Writes the HTML page / the Markdown summary to f. 0 or OSP_EIO. */
int osp_report_write_html(osp_report_t *r, FILE *f, osp_err_t *err);
int osp_report_write_markdown(osp_report_t *r, FILE *f, osp_err_t *err);

/* The number of load levels found by osp_report_analyse. */
int osp_report_levels(const osp_report_t *r);
/* Height in CSS pixels the HTML page needs at its fixed width (for a
 * full-page screenshot). */
int osp_report_html_height_px(const osp_report_t *r);

/* The recorder: GETs each URL's /metrics page (timeout_ms each) and
 * appends one JSON line per URL to f: the time, the URL, whether it
 * answered, and the samples the report uses (summed over their labels, the
 * autoscaler's decisions per direction). A target that does not answer is
 * a line with "up": false and the reason, not an error: workers come and
 * go during a run. 0, or OSP_EIO when f cannot be written. */
int osp_report_record_scrape(const char *const *urls, int n_urls,
                             long timeout_ms, FILE *f, osp_err_t *err);

/* The workers a dispatcher knows: GETs admin_url + "/admin/backends"
 * (with `Authorization: Bearer <admin_token>` unless it is NULL) and
 * writes "http://ADDRESS/metrics" for each backend into urls[0..max)
 * (malloc'd strings; the caller frees each). Returns the count, or
 * OSP_EIO / OSP_EFORMAT with err set. For a recorder following an
 * autoscaler whose workers come and go on ports chosen at start. */
int osp_report_record_discover(const char *admin_url, const char *admin_token,
                               long timeout_ms, char **urls, int max,
                               osp_err_t *err);

#endif
