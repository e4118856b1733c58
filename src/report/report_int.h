/* report_int.h — the report module's private structures and helpers:
 * statistics (stats.c), inputs (input.c, record.c), SVG charts (svg.c) and
 * the pages (render.c). The unit tests include it to check the statistics
 * and the charts on hand-computed data. */
#ifndef OSPREY_REPORT_INT_H
#define OSPREY_REPORT_INT_H

#include <stdbool.h>
#include <stdio.h>

#include "osprey/report.h"

/* ---- statistics (stats.c) --------------------------------------------- */

/* The q-quantile (0..1) of v[0..n) with linear interpolation between the
 * order statistics (Hyndman–Fan type 7, numpy's default); NaNs ignored.
 * NaN when no value. v is not modified. */
double osp__report_quantile(const double *v, int n, double q);
/* Mean of the finite values; NaN when none. */
double osp__report_mean(const double *v, int n);
/* Pearson's r over the pairs where both are finite; NaN when fewer than 3
 * pairs or either side is constant. */
double osp__report_pearson(const double *x, const double *y, int n);

/* Axis ticks: a 1-2-5 step (…, 0.1, 0.2, 0.5, 1, 2, 5, 10, …) giving at
 * most max_ticks ticks over [lo, hi], the first multiple of it at or
 * above lo; *count ticks. The axis range is widened to the ticks by the
 * caller (osp__report_axis). */
double osp__report_tick_step(double lo, double hi, int max_ticks);
typedef struct osp__report_axis_s {
    double lo, hi, step; /* lo and hi are multiples of step */
    int n_ticks;
} osp__report_axis_t;
/* An axis covering [lo, hi] with ≤ max_ticks 1-2-5 ticks; a flat or empty
 * range becomes [v - 1, v + 1] (or [0, 1]). */
void osp__report_axis(double lo, double hi, int max_ticks, bool from_zero,
                      osp__report_axis_t *a);

/* A load level: seconds [start, end) of the load's time series. */
typedef struct osp__report_level_s {
    int start, end;
    double offered_rps; /* mean offered rate over the level */
} osp__report_level_t;
/* Plateaus of the offered rate per second (NaN-free, n values): a level
 * changes where the rate (median of 5 s) leaves the running level's mean
 * by more than max(1 req/s, 20 %); levels shorter than 3 s join the one
 * before; seconds after the last offered request (the drain) are in no
 * level. Returns the count (≤ max). */
int osp__report_detect_levels(const double *offered, int n,
                              osp__report_level_t *lv, int max);
/* Levels from `osprey load --profile` steps ("5:20s,20:20s"): each step
 * one level, clipped to [0, n); the drain after the last is in none. OSP_EINVAL with err on a bad spec. */
int osp__report_parse_levels(const char *spec, int n, osp__report_level_t *lv,
                             int max, int *count, osp_err_t *err);

/* ---- samples (input.c, record.c) -------------------------------------- */

typedef struct osp__report_pt_s {
    double t, v; /* unix seconds, value */
} osp__report_pt_t;

/* One metric of one target over time. */
typedef struct osp__report_mseries_s {
    char key[96]; /* metric name, or name{label=value} for split ones */
    osp__report_pt_t *p;
    int n, cap;
} osp__report_mseries_t;

typedef enum osp__report_role_e {
    OSP__REPORT_UNKNOWN = 0,
    OSP__REPORT_WORKER,
    OSP__REPORT_DISPATCHER,
    OSP__REPORT_AUTOSCALER,
    OSP__REPORT_ROLE_COUNT
} osp__report_role_t;
const char *osp__report_role_name(osp__report_role_t r);

typedef struct osp__report_target_s {
    char name[256]; /* the scraped URL, or Prometheus's pod or instance label */
    char job[64];   /* Prometheus's job label ("" from the recorder): names
                       the processes that are not osprey's */
    osp__report_role_t role;
    osp__report_mseries_t *m;
    int nm, capm;
} osp__report_target_t;

/* The metrics the recorder keeps and the Prometheus path asks for. A row's
 * `split` label (or NULL) keeps one series per value of that label; the
 * others are summed over their labels. */
typedef struct osp__report_metric_s {
    const char *name;
    const char *split;
} osp__report_metric_t;
extern const osp__report_metric_t osp__report_metrics[];
extern const int osp__report_n_metrics;

/* Adds one sample (t unix s) of key to target name; creates both. */
int osp__report_add_sample(osp_report_t *r, const char *target,
                           const char *key, double t, double v);
/* Records the job label of an existing target. */
void osp__report_set_job(osp_report_t *r, const char *target, const char *job);
/* The role as the processes table shows it: osprey's role, else the job. */
const char *osp__report_target_role(const osp__report_target_t *t);


/* ---- the report ------------------------------------------------------- */

/* One row of osprey load's timeseries.csv. */
typedef struct osp__report_row_s {
    double target, sent, completed, errors, p50_ms, p99_ms, max_ms, inflight,
        queued;
} osp__report_row_t;

/* A per-second series of the run (index = second since the load's start;
 * NaN = no data that second), named for a legend. */
typedef struct osp__report_line_s {
    char name[96];
    double *y;
} osp__report_line_t;

#define OSP__REPORT_MAX_LINES 32 /* lines in one chart (workers beyond: "other") */

struct osp_report_s {
    osp_report_opts_t o;
    char *title, *source_note, *levels_spec; /* owned copies of o's strings */
    char ts_path[512];
    /* the load */
    osp__report_row_t *rows;
    int n_rows;
    bool have_summary;
    double sum_p50_ms, sum_p95_ms, sum_p99_ms, sum_max_ms; /* whole run */
    double sum_completed, sum_errors, sum_duration_s, sum_target_rps;
    char errors_by_class[1024]; /* "class count" pairs, ", "-separated */
    /* the samples */
    osp__report_target_t *tg;
    int ntg, captg;
    /* analysis (osp_report_analyse) */
    bool analysed;
    double start_unix_s;
    osp__report_level_t lv[OSP_REPORT_MAX_LEVELS];
    int n_levels;
    /* per-second derived series (n_rows each; NaN = none) */
    double *offered, *achieved, *errs, *p50, *p99, *pmax, *err_ratio;
    double *desired, *current, *cpu_total, *rss_total, *net_total, *wq, *dq;
    double *workers_up; /* workers that answered a scrape that second */
    bool *violation;
    int n_violations;
    /* per worker */
    osp__report_line_t cpu[OSP__REPORT_MAX_LINES], rss[OSP__REPORT_MAX_LINES],
        net[OSP__REPORT_MAX_LINES];
    int n_workers;
    /* the autoscaler's decisions: second and direction (+1 up, -1 down) */
    int dec_s[256], dec_dir[256];
    int n_dec;
};

/* ---- SVG (svg.c) ------------------------------------------------------ */

typedef struct osp__report_chart_s {
    const char *title;
    const char *y_label;        /* with its unit: "latency (ms)" */
    const osp__report_line_t *lines;
    int n_lines;
    int n;                      /* x: seconds 0..n */
    bool step;                  /* draw as steps (replica counts) */
    bool from_zero;             /* y axis starts at 0 */
    bool integer;               /* counts: ticks at whole numbers */
    bool underlay;              /* line 0 wide and pale under the others */
    double hline;               /* a threshold (the SLO) drawn dashed, or NaN */
    const char *hline_label;
    const bool *bands;          /* seconds to shade (SLO violations), or NULL */
    const osp__report_level_t *levels; /* boundaries drawn dotted, labelled */
    int n_levels;
    const int *mark_s, *mark_dir;      /* decisions: ▲ up, ▼ down */
    int n_marks;
} osp__report_chart_t;

#define OSP__REPORT_CHART_W 960 /* px: one chart per row of the page */
#define OSP__REPORT_CHART_H 300

/* Writes one <svg> chart (title, axes with units, 1-2-5 ticks, legend). */
void osp__report_svg_chart(FILE *f, const osp__report_chart_t *c);
/* Writes s with &, <, >, " escaped. */
void osp__report_xml_escape(FILE *f, const char *s);

#endif
