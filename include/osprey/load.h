/* load.h — osprey's load generator (`osprey load`): a log-linear latency
 * histogram, request-rate profiles, the open-loop arrival schedule, an image
 * corpus turned into ready-to-send HTTP requests, and the run itself (an
 * epoll HTTP/1.1 client with a keep-alive connection pool, open or closed
 * loop) with its per-second time series and summary.
 *
 * Why open loop by default: a client that waits for each answer before
 * sending the next slows down exactly when the server does, hiding the
 * latency users would see ("coordinated omission"). Here requests are due at
 * times fixed in advance by the profile; every latency is measured from the
 * request's INTENDED send time, so time spent waiting for a free connection
 * or for the sender to catch up counts (as wrk2 does). docs/load.md.
 *
 * Threading: a run is one thread (one event loop), which asks for prompt
 * wake-ups (osp_thread_short_slice); the histogram, profile,
 * arrivals and corpus objects are plain data, not thread-safe, and may be
 * used from any one thread at a time. */
#ifndef OSPREY_LOAD_H
#define OSPREY_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "osprey/common.h"

/* ------------------------------------------------------------------------
 * Latency histogram (src/load/hist.c): HdrHistogram-style log-linear
 * buckets over microseconds. Values below 2048 us are exact; above, every
 * power-of-two range is split into 1024 equal buckets, so any recorded
 * value is known to within 1/1024 (3 significant decimal digits).
 * Mergeable: counts simply add. */
typedef struct osp_load_hist_s osp_load_hist_t;

#define OSP_LOAD_HIST_MAX_US (((uint64_t)1 << 36) - 1) /* ~19 h; larger values are
                                                     clamped to it */

/* Creates an empty histogram (about 240 KiB); NULL on out-of-memory.
 * Caller destroys. */
osp_load_hist_t *osp_load_hist_create(void);
void osp_load_hist_destroy(osp_load_hist_t *h);
void osp_load_hist_reset(osp_load_hist_t *h);
/* Records one value in microseconds (clamped to OSP_LOAD_HIST_MAX_US). */
void osp_load_hist_record(osp_load_hist_t *h, uint64_t value_us);
/* Records `count` copies of one value. */
void osp_load_hist_record_n(osp_load_hist_t *h, uint64_t value_us, uint64_t count);
/* Adds every count of src to dst. */
void osp_load_hist_merge(osp_load_hist_t *dst, const osp_load_hist_t *src);
uint64_t osp_load_hist_count(const osp_load_hist_t *h);
/* Exact smallest / largest recorded value (0 when empty). */
uint64_t osp_load_hist_min(const osp_load_hist_t *h);
uint64_t osp_load_hist_max(const osp_load_hist_t *h);
/* Exact mean of the recorded (clamped) values; 0 when empty. */
double osp_load_hist_mean(const osp_load_hist_t *h);
/* The value at percentile pct (0..100): the smallest bucket whose
 * cumulative count reaches ceil(pct/100 * count) (at least 1), reported as
 * the highest value that bucket can hold, but never above the exact max.
 * 0 when empty. */
uint64_t osp_load_hist_percentile(const osp_load_hist_t *h, double pct);
/* The range of values [lo, hi] that share v's bucket (the precision). */
void osp_load_hist_bucket_range(uint64_t value_us, uint64_t *lo, uint64_t *hi);

/* ------------------------------------------------------------------------
 * Rate profiles (src/load/profile.c): a sequence of segments, each lasting
 * duration_s with a rate going linearly from from_rate to to_rate
 * (requests per second; equal = constant). Built from --rate/--duration,
 * --profile steps, --ramp or a trace file. */
typedef struct osp_load_profile_s osp_load_profile_t;

#define OSP_LOAD_PROFILE_MAX_RATE_PER_S 1e7  /* per segment */
#define OSP_LOAD_PROFILE_MAX_DURATION_S (7.0 * 86400) /* the whole profile */
#define OSP_LOAD_PROFILE_MAX_SEGMENTS 1000000
#define OSP_LOAD_PROFILE_MAX_TRACE_BYTES ((size_t)64 << 20)

/* Creates an empty profile; NULL on out-of-memory. Caller destroys. */
osp_load_profile_t *osp_load_profile_create(void);
void osp_load_profile_destroy(osp_load_profile_t *p);
/* Appends a segment. Rates must be finite and in 0..OSP_LOAD_PROFILE_MAX_RATE;
 * the duration positive; the total duration within the limit. */
int osp_load_profile_add(osp_load_profile_t *p, double from_rate_per_s,
                    double to_rate_per_s, double duration_s, osp_err_t *err);
/* Appends constant steps "RATE:DURATION[,RATE:DURATION...]"
 * (e.g. "10:60s,50:60s"). */
int osp_load_profile_parse_steps(osp_load_profile_t *p, const char *spec,
                            osp_err_t *err);
/* Appends a linear ramp "FROM:TO:DURATION" (e.g. "10:200:2m"). */
int osp_load_profile_parse_ramp(osp_load_profile_t *p, const char *spec,
                           osp_err_t *err);
/* Appends a trace. Plain: one 1-second constant segment per line, each
 * line one non-negative number = requests in that second (blank lines are
 * errors: write 0 for an idle second). CSV, when the first line is a
 * header: `t_s,rps` rows (rate rps from t_s until the next row's t_s, the
 * first row at 0, the last row lasting one second), or `osprey load`'s
 * timeseries.csv (one second per row at the rate in its `sent` column).
 * Lines starting with '#' are comments. `name` (file name) is used in
 * messages ("trace.txt:12: ..."). */
int osp_load_profile_parse_trace(osp_load_profile_t *p, const char *text, size_t len,
                            const char *name, osp_err_t *err);
/* Reads a trace file and parses it as above. */
int osp_load_profile_load_trace(osp_load_profile_t *p, const char *path,
                           osp_err_t *err);
int osp_load_profile_segments(const osp_load_profile_t *p);
double osp_load_profile_duration_s(const osp_load_profile_t *p);
/* The rate at time t (0 outside the profile). */
double osp_load_profile_rate_at(const osp_load_profile_t *p, double t_s);
/* Expected number of requests in [0, t): the integral of the rate. */
double osp_load_profile_count(const osp_load_profile_t *p, double t_s);
/* The inverse of osp_load_profile_count: the earliest t with count(t) = n, or
 * INFINITY when n exceeds the profile's total. */
double osp_load_profile_time_of(const osp_load_profile_t *p, double n);

/* Parses a duration: a positive number with an optional unit ms, s, m or h
 * (none = seconds): "60s", "2m", "1.5", "250ms". */
int osp_load_parse_duration_s(const char *s, double *out_s, osp_err_t *err);

/* ------------------------------------------------------------------------
 * Arrivals (src/load/arrivals.c): the intended send times of an open-loop
 * run, generated from a profile by inverting its cumulative count: request
 * k is due at time_of(k + 1/2) (constant spacing) or at time_of(S_k) where
 * S_k is a unit-rate Poisson process (exponential gaps from a seeded PRNG),
 * i.e. a non-homogeneous Poisson process following the profile. */
typedef enum osp_load_arrival_e {
    OSP_LOAD_ARRIVAL_CONSTANT = 0,
    OSP_LOAD_ARRIVAL_POISSON,
    OSP_LOAD_ARRIVAL_COUNT
} osp_load_arrival_t;
/* "constant", "poisson"; never NULL. */
const char *osp_load_arrival_name(osp_load_arrival_t a);
/* Parses a name as above; OSP_EINVAL when unknown. */
int osp_load_arrival_parse(const char *s, osp_load_arrival_t *out);

typedef struct osp_load_arrivals_s osp_load_arrivals_t;
/* Creates a generator over p (which must outlive it); the same seed gives
 * the same times. NULL on out-of-memory. Caller destroys. */
osp_load_arrivals_t *osp_load_arrivals_create(const osp_load_profile_t *p,
                                    osp_load_arrival_t kind, uint64_t seed);
void osp_load_arrivals_destroy(osp_load_arrivals_t *a);
/* Next intended send time in seconds from the start: returns 1 and sets
 * *t_s, or 0 when the profile is exhausted (and for ever after). Times never
 * decrease. */
int osp_load_arrivals_next(osp_load_arrivals_t *a, double *t_s);

/* ------------------------------------------------------------------------
 * Targets and the image corpus (src/load/corpus.c). Each image's complete
 * HTTP request (request line, headers, body) is built once and then sent
 * as is. */
typedef enum osp_load_target_e {
    OSP_LOAD_TARGET_MULTIPART = 0, /* POST /classify or /v1/models/{m}/classify,
                                 multipart/form-data with a "file" part */
    OSP_LOAD_TARGET_RAW,           /* same paths, the image as the body with its
                                 image Content-Type */
    OSP_LOAD_TARGET_V2_JSON,       /* POST /v2/models/{m}/infer, BYTES input of
                                 one base64 image in JSON */
    OSP_LOAD_TARGET_V2_BINARY,     /* same, binary tensor extension: JSON header
                                 + 4-byte length + image bytes */
    OSP_LOAD_TARGET_GET,           /* GET of the URL's own path, no body (for
                                 trivial endpoints: /v2/health/live) */
    OSP_LOAD_TARGET_COUNT
} osp_load_target_t;
/* "multipart", "raw", "v2-json", "v2-binary", "get"; never NULL. */
const char *osp_load_target_name(osp_load_target_t t);
int osp_load_target_parse(const char *s, osp_load_target_t *out);

typedef struct osp_load_corpus_s osp_load_corpus_t;

#define OSP_LOAD_CORPUS_MAX_IMAGES 100000
#define OSP_LOAD_CORPUS_MAX_IMAGE_BYTES ((size_t)64 << 20)
#define OSP_LOAD_CORPUS_MAX_TOTAL_BYTES ((size_t)1 << 30)

typedef struct osp_load_corpus_opts_s {
    const char *images;    /* a directory (its JPEG, PNG, WebP and BMP
                              files by content, sorted by name; hidden and
                              other files skipped) or one file (sent
                              whatever it holds); NULL only for
                              OSP_LOAD_TARGET_GET */
    osp_load_target_t target;
    const char *model;     /* NULL: /classify (V2 targets need a model) */
    const char *host;      /* Host header value ("127.0.0.1:8080") */
    const char *base_path; /* the URL's path: a prefix for the target's path,
                              the whole path for GET ("" or NULL = "/") */
    const char *const *headers; /* extra "Name: value" lines, or NULL */
    int n_headers;
} osp_load_corpus_opts_t;

#define OSP_LOAD_CORPUS_MAX_HEADERS 32

/* Reads the images and builds one request per image. NULL with err set
 * (unreadable or empty directory, too many/too large files, V2 target
 * without a model, out of memory). Caller destroys. */
osp_load_corpus_t *osp_load_corpus_create(const osp_load_corpus_opts_t *o, osp_err_t *err);
void osp_load_corpus_destroy(osp_load_corpus_t *c);
int osp_load_corpus_count(const osp_load_corpus_t *c);
/* Files of the directory skipped because they are not images. */
int osp_load_corpus_skipped(const osp_load_corpus_t *c);
/* Request i's bytes (owned by the corpus) and the image's file name. */
const uint8_t *osp_load_corpus_request(const osp_load_corpus_t *c, int i,
                                  size_t *len);
const char *osp_load_corpus_name(const osp_load_corpus_t *c, int i);

/* ------------------------------------------------------------------------
 * A run (src/load/run.c + client.c + report.c). */
typedef enum osp_load_mode_e {
    OSP_LOAD_OPEN = 0,   /* requests due at the profile's times */
    OSP_LOAD_CLOSED,     /* N users: send, wait for the answer, think, ... */
    OSP_LOAD_MODE_COUNT
} osp_load_mode_t;
const char *osp_load_mode_name(osp_load_mode_t m);

/* Failure classes besides HTTP status codes. */
typedef enum osp_load_fail_e {
    OSP_LOAD_FAIL_CONNECT = 0, /* connect() refused/failed */
    OSP_LOAD_FAIL_TIMEOUT,     /* no complete answer within timeout_ms of the
                                  intended send time */
    OSP_LOAD_FAIL_READ,        /* connection reset/closed before a complete
                                  answer (after one retry on a fresh
                                  connection when a reused one was closed) */
    OSP_LOAD_FAIL_PARSE,       /* malformed HTTP answer */
    OSP_LOAD_FAIL_DROPPED,     /* the client's own backlog was full */
    OSP_LOAD_FAIL_COUNT
} osp_load_fail_t;
/* "connect", "timeout", "read", "parse", "dropped"; never NULL. */
const char *osp_load_fail_name(osp_load_fail_t f);

#define OSP_LOAD_MAX_CONNECTIONS 10000 /* connections or closed-loop users */

typedef struct osp_load_opts_s {
    const char *url;            /* http://host[:port][/path] */
    osp_load_mode_t mode;
    const osp_load_profile_t *profile; /* open loop (must outlive the run) */
    osp_load_arrival_t arrival;
    uint64_t seed;              /* Poisson arrivals and --order random */
    int concurrency;            /* closed loop: users */
    int think_ms;               /* closed loop: pause after each answer */
    double duration_s;          /* closed loop: how long users send */
    osp_load_target_t target;
    const char *model;          /* NULL: the default model (/classify) */
    const char *images;         /* directory or file (not for "get") */
    const char *const *headers; /* extra "Name: value" request headers */
    int n_headers;
    int order_random;           /* 0: round-robin over the images */
    int connections;            /* open loop: pool size (opened lazily) */
    int timeout_ms;             /* per request, from its intended time */
    double warmup_s;            /* requests due in the first warmup_s are
                                   left out of the summary (the onset); the
                                   time series keeps them. 0: none */
    FILE *progress;             /* a live progress line each second, or NULL */
} osp_load_opts_t;
/* Defaults: open loop, constant arrivals, seed 1, 10 users, 0 think time,
 * 10 s, multipart target, 256 connections, 30000 ms timeout, no warm-up,
 * no progress. */
void osp_load_opts_init(osp_load_opts_t *o);

/* One row of the per-second time series (second i = [i, i+1) s after the
 * start). Latencies are of the answers completed in that second. */
typedef struct osp_load_second_s {
    double target;      /* requests the profile schedules in this second
                           (open loop; 0 in closed loop) */
    uint64_t sent;      /* requests written to the wire */
    uint64_t completed; /* HTTP answers received (any status) */
    uint64_t errors;    /* answers >= 400 + failures */
    double p50_ms, p99_ms, max_ms;
    uint64_t inflight;  /* sent, not yet answered, at the second's end */
    uint64_t backlog;   /* due but waiting for a connection, at the end */
} osp_load_second_t;

typedef struct osp_load_summary_s {
    osp_load_mode_t mode;
    osp_load_target_t target;
    double target_rps;    /* open loop: the profile's mean rate; closed: 0 */
    double duration_s;    /* wall time from the start to the last answer */
    uint64_t scheduled;   /* requests that fell due */
    uint64_t sent;        /* requests started: written, or attempted on a
                             connection that failed (retries not counted
                             twice) */
    uint64_t completed;   /* HTTP answers (any status) */
    uint64_t ok;          /* answers with status < 400 */
    uint64_t errors;      /* answers >= 400 + failures */
    uint64_t retries;     /* resent after a reused connection was closed */
    uint64_t unfinished;  /* due or in flight when the run was stopped */
    double client_cpu_s;  /* CPU time this process used during the run */
    double rps;           /* completed / duration_s */
    double ok_rps;        /* ok / duration_s */
    double error_rate;    /* errors / (completed + failures), 0 when none */
    /* Latency of every HTTP answer (any status), from its intended time. */
    double p50_ms, p90_ms, p99_ms, p999_ms, max_ms, mean_ms, min_ms;
    /* The same apart: answers < 400 (ok) and >= 400 (error) — under load
     * shedding, what admitted and refused requests took. 0 when none. */
    double ok_p50_ms, ok_p90_ms, ok_p99_ms, ok_max_ms;
    double error_p50_ms, error_p90_ms, error_p99_ms, error_max_ms;
    double warmup_s;      /* the options' warm-up, left out of all of the
                             above (duration_s starts after it) */
    uint64_t fail[OSP_LOAD_FAIL_COUNT];
    uint64_t status[600]; /* answers by status code (index = code) */
} osp_load_summary_t;

typedef struct osp_load_s osp_load_t;

/* Checks the options, resolves the URL (no connection yet) and builds the
 * requests from the images (osp_load_corpus_create). NULL with err set on bad
 * options, an unresolvable host or unreadable images. Caller destroys. */
osp_load_t *osp_load_create(const osp_load_opts_t *o, osp_err_t *err);
void osp_load_destroy(osp_load_t *l);
/* Runs to the end of the profile (or duration), then waits for answers in
 * flight (bounded by timeout_ms). Call once per osp_load_t. Failed requests are counted, not
 * returned: the return is < 0 only when the run could not start or the
 * event loop itself failed. */
int osp_load_run(osp_load_t *l, osp_err_t *err);
/* Asks a running osp_load_run to stop scheduling and finish; safe to call
 * from a signal handler. */
void osp_load_stop(osp_load_t *l);

/* Results (valid after osp_load_run; owned by l). */
const osp_load_summary_t *osp_load_summary(const osp_load_t *l);
const osp_load_second_t *osp_load_series(const osp_load_t *l, int *n);
const osp_load_hist_t *osp_load_hist(const osp_load_t *l);
/* The run's requests (valid from osp_load_create on; owned by l). */
const osp_load_corpus_t *osp_load_corpus(const osp_load_t *l);

/* Report (src/load/report.c). The summary as one JSON object on one line
 * (malloc'd, caller frees; NULL on out-of-memory): mode, target,
 * target_rps, rps, ok_rps, sent,
 * completed, ok, errors, error_rate, p50_ms, p90_ms, p99_ms, p999_ms,
 * max_ms, mean_ms, ok_p50_ms .. ok_max_ms, error_p50_ms .. error_max_ms,
 * warmup_s, duration_s, errors_by_class {connect, timeout, read, parse,
 * dropped, "4xx", "5xx", and each status >= 400 by its code}. */
char *osp_load_summary_json(const osp_load_t *l);
/* A human-readable summary table. */
void osp_load_print_summary(const osp_load_t *l, FILE *f);
/* Writes DIR/timeseries.csv, DIR/timeseries.json, DIR/summary.json and
 * DIR/latency.csv (the percentile spectrum), creating DIR if needed. */
int osp_load_write_dir(const osp_load_t *l, const char *dir, osp_err_t *err);

#endif
