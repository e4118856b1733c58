/* http.h — osprey's HTTP server wrapper (over libmicrohttpd), route matching
 * with path parameters, request-body limits, a multipart/form-data parser and
 * JSON response helpers (jansson).
 *
 * Two threading modes (osp_http_mode_t; docs/decisions.md "HTTP threading"):
 * OSP_HTTP_THREADS, one thread per connection, where a handler may block (the
 * dispatcher's handlers wait in libcurl) — that blocks only its connection;
 * and OSP_HTTP_EPOLL, a few threads each running an epoll loop over many
 * connections, where a handler must not block: it answers later by
 * suspending the request (osp_http_req_suspend) and having any thread call
 * osp_http_req_resume when the answer is ready. Suspend/resume works in both
 * modes (in THREADS mode the connection's thread simply waits).
 *
 * Request model (streaming routes, osp_http_route_stream, aside: their
 * large bodies reach the handler in chunks, see there): a handler runs
 * once per request after the whole body has
 * been received, and answers with exactly one osp_http_respond* call — in
 * the handler or in a resume function it set with osp_http_req_suspend. Bodies larger than max_body_bytes are refused with 413 and
 * never stored: at once, before the body is sent, when the client asked for
 * "100 Continue" or declared a body more than 8 MiB over the limit;
 * otherwise the excess is read and dropped and the 413 follows it (a client
 * that sends everything before reading would see a reset, not our answer,
 * if we closed on it). The connection is closed after an early 413.
 *
 * Every response carries X-Request-Id: the client's (when it is 1..128
 * printable characters) or a generated one. Errors are JSON
 * {"error": "..."} with the given status.
 *
 * The client side has one piece here: the incremental HTTP/1.1 response
 * parser (osp_http_h1resp_*) that the dispatcher's event loop and the load
 * generator both read their servers' answers with. */
#ifndef OSPREY_HTTP_H
#define OSPREY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "osprey/arena.h"
#include "osprey/common.h"
#include "osprey/metrics.h"

typedef struct osp_http_server_s osp_http_server_t;
typedef struct osp_http_req_s osp_http_req_t;
typedef struct osp_http_budget_s osp_http_budget_t;

/* How connections map to threads. Append-only. */
typedef enum osp_http_mode_e {
    OSP_HTTP_THREADS = 0, /* one thread per connection; handlers may block */
    OSP_HTTP_EPOLL,       /* epoll loops on a small pool; handlers suspend */
    OSP_HTTP_EXTERNAL,    /* no thread of its own: the caller's event loop
                             polls osp_http_server_fd() and calls
                             osp_http_server_run(); handlers suspend */
    OSP_HTTP_MODE_COUNT
} osp_http_mode_t;
/* "threads", "epoll", "external". */
const char *osp_http_mode_name(osp_http_mode_t m);
/* Parses "threads" or "epoll" (EXTERNAL is for embedding in an event loop,
 * not a user's choice); 0 or OSP_EINVAL. */
int osp_http_mode_parse(const char *s, osp_http_mode_t *out);

/* Does the comma-separated header value v[0..n) (not NUL-terminated) hold
 * the token tok, case-insensitively? E.g. "close" in "Keep-Alive, close". */
bool osp_http_list_has(const char *v, size_t n, const char *tok);

/* Why a slow client's connection was cut. Append-only. */
typedef enum osp_http_slow_reason_e {
    OSP_HTTP_SLOW_HEADER = 0, /* head not complete by its deadline */
    OSP_HTTP_SLOW_BODY,       /* body below the minimum rate */
    OSP_HTTP_SLOW_COUNT
} osp_http_slow_reason_t;
/* "header", "body". */
const char *osp_http_slow_reason_name(osp_http_slow_reason_t why);

typedef struct osp_http_opts_s {
    const char *host;        /* bind address (IPv4 or IPv6 literal); NULL =
                                all IPv4 interfaces */
    int port;                /* 0 = an ephemeral port (see _port()) */
    int max_connections;     /* concurrent connections (THREADS: = threads) */
    size_t max_body_bytes;   /* larger bodies get 413 */
    int conn_timeout_s;      /* idle / slow-client timeout per connection */
    osp_http_mode_t mode;    /* default OSP_HTTP_THREADS */
    int pool_threads;        /* EPOLL: event-loop threads; 0 = the default
                                (osp_http_default_pool_threads) */
    bool short_slice;        /* EPOLL: each event-loop thread asks for
                                prompt wake-ups (osp_thread_short_slice) —
                                for a process whose other threads keep
                                the CPUs busy (the worker's engines) */
    /* Slow clients (docs/adr/0045-slow-clients.md; not reset by bytes, unlike
     * conn_timeout_s): a request head (line + headers) must be complete
     * within header_timeout_s of the accept (a keep-alive connection's next
     * request: of its first line, and at most conn_timeout_s +
     * header_timeout_s after the previous answer), else the connection is
     * closed without an answer; a body must arrive at min_body_rate
     * bytes/s on average after a grace of header_timeout_s, else 408 (or,
     * when the client sends nothing more, a close). <= 0: off. */
    int header_timeout_s;
    double min_body_rate;    /* bytes/s */
    /* Counted closes, by reason (series of osp_http_slow_metric's family;
     * NULL: not exported). */
    osp_series_t *slow_closes[OSP_HTTP_SLOW_COUNT];
    /* The memory budget for request bodies (and whatever handlers reserve
     * with osp_http_req_reserve), shared by every server of the process;
     * NULL: none. Not owned: it must outlive the server. A body larger
     * than the whole budget gets 413, as one over max_body_bytes. */
    osp_http_budget_t *budget;
} osp_http_opts_t;
#define OSP_HTTP_DEFAULT_MAX_CONNECTIONS 256
#define OSP_HTTP_DEFAULT_MAX_BODY_BYTES ((size_t)32 << 20) /* 32 MiB */
#define OSP_HTTP_DEFAULT_CONN_TIMEOUT_S 30
#define OSP_HTTP_DEFAULT_HEADER_TIMEOUT_S 10 /* HAProxy's and nginx's
                                                 defaults are 5..60 s */
#define OSP_HTTP_DEFAULT_MIN_BODY_RATE 1024.0 /* bytes/s: a 1 MB image has
                                                  ~17 min; Apache's is 500 */
/* Fills o with the defaults above (mode THREADS, all interfaces, port 0). */
void osp_http_opts_init(osp_http_opts_t *o);

/* Registers osprey_http_slow_client_closes_total{reason} in m and stores
 * its series (owned by m) in out[OSP_HTTP_SLOW_COUNT], for
 * osp_http_opts_t.slow_closes. 0, or osp_metrics_add's error. */
int osp_http_slow_metric(osp_metrics_t *m, osp_series_t **out,
                         osp_err_t *err);

/* The default connection limit of an event-driven server (EPOLL,
 * EXTERNAL) from the process's descriptor limit (RLIMIT_NOFILE, soft, as
 * the caller raised it): what is left after OSP_HTTP_RESERVED_FDS (listening
 * and epoll sockets, model and log files, DNS, the Kubernetes watch),
 * divided by the descriptors one client connection may hold (1 for a
 * worker; 2 for a proxy, its client's and a backend's), within
 * [OSP_HTTP_DEFAULT_MAX_CONNECTIONS, OSP_HTTP_MAX_AUTO_CONNECTIONS]. */
int osp_http_auto_max_connections(long nofile, int fds_per_conn);
#define OSP_HTTP_RESERVED_FDS 256
#define OSP_HTTP_MAX_AUTO_CONNECTIONS 16384 /* each costs libmicrohttpd's
                                               32 KiB pool at most */
/* EPOLL mode's default pool: one event-loop thread per available CPU
 * (handlers decode images, CPU-bound work; osp_cpus_available), at most
 * 16. */
int osp_http_default_pool_threads(void);

/* ---- the memory budget (docs/adr/0049-memory-budget.md) -------------
 * Bytes that requests in progress hold — bodies, and what handlers
 * reserve (decoded images, input tensors) — against one process-wide
 * limit. A request reserves its declared Content-Length before its body is
 * read (a chunked body: as its buffer grows); when that does not fit the
 * request is answered 503 + Retry-After: 1 + {"error": "..."} without
 * storing the body — before the client sends it when it asked for
 * "100 Continue" or declared more than 8 MiB (then the connection is
 * closed), else after reading and dropping it, as for 413 above. What a
 * request reserved is released when it ends, whatever the ending (answer
 * sent, error, client gone, timeout). Thread-safe. */
/* limit_bytes > 0; NULL when out of memory or limit_bytes is 0. */
osp_http_budget_t *osp_http_budget_create(uint64_t limit_bytes);
/* NULL is fine. Only after every server using it has been destroyed. */
void osp_http_budget_destroy(osp_http_budget_t *b);
/* Registers osprey_http_inflight_bytes, osprey_http_inflight_bytes_limit
 * (gauges) and osprey_http_budget_rejections_total (counter) in m (which
 * must outlive b's use). 0, or osp_metrics_add's error. */
int osp_http_budget_metric(osp_http_budget_t *b, osp_metrics_t *m,
                           osp_err_t *err);
uint64_t osp_http_budget_limit(const osp_http_budget_t *b);
uint64_t osp_http_budget_used(const osp_http_budget_t *b);
uint64_t osp_http_budget_rejections(const osp_http_budget_t *b);
/* The default budget: a quarter of limit_bytes (the cgroup memory limit,
 * else physical RAM, osp_mem_limit), at least OSP_HTTP_MIN_AUTO_BUDGET:
 * the rest is for the model, the engine's buffers, libmicrohttpd's
 * per-connection pools and the allocator's slack. 0 → OSP_HTTP_MIN_AUTO_BUDGET. */
uint64_t osp_http_auto_budget(int64_t limit_bytes);
#define OSP_HTTP_MIN_AUTO_BUDGET ((uint64_t)64 << 20)

/* A handler. It must call one osp_http_respond* function before returning;
 * if it does not, the wrapper answers 500. */
typedef void (*osp_http_handler_fn)(osp_http_req_t *req, void *ud);
/* Called after every response is queued (access log, request metrics):
 * status and the time since the request line was read, seconds. */
typedef void (*osp_http_done_fn)(osp_http_req_t *req, int status,
                                 double seconds, void *ud);

/* Creates a server (not yet listening). NULL + err on failure. The caller
 * destroys it. */
osp_http_server_t *osp_http_server_create(const osp_http_opts_t *o,
                                          osp_err_t *err);
/* Adds a route before start. method: "GET", "POST", ...; pattern: a path
 * whose segments are literals or {name} parameters, e.g.
 * "/v2/models/{model}/versions/{version}/infer". Routes are tried in the order
 * added; a path that matches some route but not its method gets 405, no match
 * at all 404. Returns 0 or OSP_EINVAL/OSP_ELIMIT/OSP_ENOMEM. */
int osp_http_route(osp_http_server_t *s, const char *method,
                   const char *pattern, osp_http_handler_fn fn, void *ud);
/* As osp_http_route, for a handler that takes large bodies as they arrive
 * (EPOLL and EXTERNAL modes; docs/adr/0050-dispatch-body-streaming.md): a
 * request that declares a Content-Length of at least min_stream_bytes (and
 * within max_body_bytes) runs fn as soon as its head is complete, before
 * any body byte, and reserves none of the memory budget for its body (the
 * handler reserves what it holds). Other requests (smaller, or chunked
 * without a length) are buffered and handled as by osp_http_route.
 * osp_http_req_streaming tells the handler which case it has; a streaming
 * handler either answers at once or calls osp_http_req_stream and
 * osp_http_req_suspend. */
int osp_http_route_stream(osp_http_server_t *s, const char *method,
                          const char *pattern, osp_http_handler_fn fn,
                          void *ud, size_t min_stream_bytes);
void osp_http_on_done(osp_http_server_t *s, osp_http_done_fn fn, void *ud);
/* Binds and starts serving. 0 or OSP_EIO with the reason. */
int osp_http_server_start(osp_http_server_t *s, osp_err_t *err);
/* The bound port (useful with port 0); 0 before start. */
int osp_http_server_port(const osp_http_server_t *s);
/* Stops accepting new connections (existing ones are served until they
 * close). Used by the drain on SIGTERM. */
void osp_http_server_quiesce(osp_http_server_t *s);
/* Requests in flight: handlers running right now plus suspended requests
 * not answered yet. A drain waits for 0; destroy then also lets answers
 * already queued be written before it closes connections. */
int osp_http_server_inflight(const osp_http_server_t *s);
/* EXTERNAL mode (a caller-driven loop; all calls on the server from that
 * loop's thread, except _resume): the descriptor to wait on for input
 * (readable = work to do; an epoll fd, usable inside another epoll set),
 * or -1 in other modes / before start. Several EXTERNAL servers may listen
 * on the same port (SO_REUSEPORT; the kernel spreads connections). */
int osp_http_server_fd(const osp_http_server_t *s);
/* EXTERNAL mode: does every pending piece of work without blocking
 * (accepts, reads, handlers, resumed requests, writes) and returns how long
 * the caller may wait before the next call even without input, ms (-1 = no
 * limit). OSP_EINVAL in other modes. */
int64_t osp_http_server_run(osp_http_server_t *s);
/* Connections closed so far because of why (the same counts as the
 * slow_closes series). */
uint64_t osp_http_server_slow_closes(const osp_http_server_t *s,
                                     osp_http_slow_reason_t why);
/* Stops the server (closing connections) and frees it. NULL is fine. */
void osp_http_server_destroy(osp_http_server_t *s);

/* ---- request accessors (valid during the handler / done callback) ---- */
const char *osp_http_req_method(const osp_http_req_t *r);
const char *osp_http_req_path(const osp_http_req_t *r);
/* The route pattern that matched ("" when none), for low-cardinality labels. */
const char *osp_http_req_route(const osp_http_req_t *r);
/* Path parameter by name ({model} → "model"), URL-decoded; NULL if absent. */
const char *osp_http_req_param(const osp_http_req_t *r, const char *name);
/* Query argument (URL-decoded); NULL if absent. */
const char *osp_http_req_query(const osp_http_req_t *r, const char *key);
/* The query string re-encoded ("?a=1&b=x%20y", "" when there is none) into
 * buf. Returns its length, or OSP_ELIMIT when it does not fit in cap. (Used
 * by the dispatcher to forward a request unchanged.) */
int osp_http_req_query_string(const osp_http_req_t *r, char *buf, size_t cap);
/* Request header (case-insensitive); NULL if absent. */
const char *osp_http_req_header(const osp_http_req_t *r, const char *name);
/* The body (NUL-terminated for convenience; len excludes the NUL). */
const uint8_t *osp_http_req_body(const osp_http_req_t *r, size_t *len);
/* Body bytes of the queued response (0 before one is queued): for the
 * osprey_http_sent_bytes_total counters, read in the done callback. */
size_t osp_http_req_response_bytes(const osp_http_req_t *r);
/* The request id (client's or generated). Never NULL. */
const char *osp_http_req_id(const osp_http_req_t *r);
/* The client's address as "ip:port" ("[ip]:port" for IPv6; "unknown"
 * when the socket does not say) into buf: for logs that name a caller.
 * Returns its length, or OSP_ELIMIT when it does not fit in cap. */
int osp_http_req_peer(const osp_http_req_t *r, char *buf, size_t cap);
/* Seconds since the request started (first byte of the request line). */
double osp_http_req_elapsed_s(const osp_http_req_t *r);
/* Status of the queued response; 0 before one is queued. */
int osp_http_req_status(const osp_http_req_t *r);
/* The request's arena (include/osprey/arena.h): memory that lives until the
 * response has been sent, then is freed at once (STYLE rule 7). Never
 * NULL. Use it only from the thread running the request's handler or
 * resume function (never concurrently; another thread may write into
 * memory already allocated from it while the request is suspended). */
osp_arena_t *osp_http_req_arena(osp_http_req_t *r);
/* Reserves n bytes of the server's memory budget for this request, before
 * allocating them (e.g. a tensor), until the request ends. 0, or OSP_EBUSY
 * when the budget cannot hold them now (answer with
 * osp_http_respond_over_budget). Always 0 without a budget. */
int osp_http_req_reserve(osp_http_req_t *r, uint64_t n);
/* Charges n bytes already allocated (e.g. a decoded image whose size was
 * known only by decoding it), even past the limit, until the request ends:
 * later reservations see them. */
void osp_http_req_charge(osp_http_req_t *r, uint64_t n);
/* Bytes the budget can still reserve now (UINT64_MAX without a budget):
 * e.g. to refuse, before decoding, an image whose pixels cannot fit. */
uint64_t osp_http_req_budget_room(const osp_http_req_t *r);
/* A per-request user slot (e.g. the served model's name for the done hook). */
void osp_http_req_set_user(osp_http_req_t *r, void *user);
void *osp_http_req_user(const osp_http_req_t *r);

/* ---- answering later ------------------------------------------------- */
/* Called on an HTTP thread once a suspended request has been resumed. It
 * answers (osp_http_respond*) or suspends again, like a handler. */
typedef void (*osp_http_resume_fn)(osp_http_req_t *req, void *ud);
/* From a handler or resume function that has not answered: the request
 * stays open without an answer; once osp_http_req_resume(req) has been
 * called, fn(req, ud) runs on an HTTP thread. In EPOLL mode the connection
 * is suspended (its thread serves other connections meanwhile); in THREADS
 * mode the connection's thread waits. The request (its arena included)
 * lives until it is answered. While suspended, whichever thread owns the
 * request's work may answer it (osp_http_respond*, add_header): the
 * answer is held and sent when the request is resumed, after fn — which
 * then finds osp_http_req_status set and must not answer again. 0, or
 * OSP_EINVAL when already answered or already suspended. */
int osp_http_req_suspend(osp_http_req_t *r, osp_http_resume_fn fn, void *ud);
/* Resumes a suspended request: callable from any thread, exactly once per
 * osp_http_req_suspend, also before the suspending handler has returned.
 * The caller must not touch r (nor its arena) after this call. */
void osp_http_req_resume(osp_http_req_t *r);

/* ---- streamed request bodies (osp_http_route_stream) ----------------- */
typedef enum osp_http_body_ev_e {
    OSP_HTTP_BODY_DATA = 0, /* data[0..len): the next body bytes */
    OSP_HTTP_BODY_END,      /* the whole body has been delivered */
    OSP_HTTP_BODY_ABORT,    /* the client went away before the answer: r is
                               freed when the function returns; drop every
                               reference to it and do not resume it */
} osp_http_body_ev_t;
/* Receives a streamed body, on the thread serving the connection. For
 * DATA it returns how many bytes it took (0..len): fewer pauses the
 * upload (the connection is not read — TCP pushes back on the client)
 * until osp_http_req_body_resume, and the rest is offered again then.
 * The return value of END and ABORT is ignored. No call follows END or
 * ABORT, nor any call once the request has been resumed (an answer
 * before the whole body: the rest is read and dropped). */
typedef size_t (*osp_http_body_fn)(osp_http_req_t *r, osp_http_body_ev_t ev,
                                   const uint8_t *data, size_t len,
                                   void *ud);
/* Whether r's body is streamed (its handler runs before the body); then
 * *declared (may be NULL) is its Content-Length. */
bool osp_http_req_streaming(const osp_http_req_t *r, size_t *declared);
/* From a streaming handler: body bytes go to fn from now on. 0, or
 * OSP_EINVAL when r is not streaming or already answered. */
int osp_http_req_stream(osp_http_req_t *r, osp_http_body_fn fn, void *ud);
/* Reads a paused upload again (nothing when it is not paused). From the
 * thread serving the connection (EXTERNAL: the owner's loop, which must
 * then run osp_http_server_run). */
void osp_http_req_body_resume(osp_http_req_t *r);

/* ---- responses (exactly one per request) ------------------------------ */
/* Adds a response header (before responding); copies both. At most 8. */
int osp_http_add_header(osp_http_req_t *r, const char *name,
                        const char *value);
/* Sends body (copied) with the given status and Content-Type. */
int osp_http_respond(osp_http_req_t *r, int status, const char *content_type,
                     const void *body, size_t len);
/* Sends a malloc'd body and takes ownership (freed after sending). */
int osp_http_respond_owned(osp_http_req_t *r, int status,
                           const char *content_type, void *body, size_t len);
/* Sends body without copying it: body must live in the request's arena
 * (osp_http_req_arena), which outlives the sending. */
int osp_http_respond_arena(osp_http_req_t *r, int status,
                           const char *content_type, const void *body,
                           size_t len);
/* Sends json (reference stolen, also on failure) as application/json. */
int osp_http_respond_json(osp_http_req_t *r, int status, json_t *json);
/* Answers 503 + Retry-After: 1 + {"error": "server memory budget ...
 * retry later or elsewhere"}: the budget could not hold the request.
 * Counted in osprey_http_budget_rejections_total. */
int osp_http_respond_over_budget(osp_http_req_t *r);
/* Sends {"error": "<message>"} with the status. */
int osp_http_respond_error(osp_http_req_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps an OSP_E* code to an HTTP status: ELIMIT 413, EFORMAT/EINVAL 400,
 * EUNSUPPORTED 415, ENOENT 404, EBUSY 503, ETIMEDOUT 504, else 500. */
int osp_http_status_for(int osp_code);
/* Reason phrase ("Not Found"); never NULL. */
const char *osp_http_reason(int status);

/* Parses the body as JSON (an object or array at top level). NULL + err
 * (OSP_EFORMAT with line/column) on failure. Caller owns the result. */
json_t *osp_http_req_json(const osp_http_req_t *r, osp_err_t *err);

/* ---- HTTP/1.1 response parser (h1resp.c) ------------------------------ */
/* Reads one answer from bytes as a socket delivers them: status line,
 * headers, a body delimited by Content-Length, chunked encoding or the
 * connection's close; 1xx interim answers are skipped, 204/304 have no
 * body. Every byte is untrusted: heads, lines and kept bodies are bounded,
 * numbers are strict, and anything malformed or truncated is an error. */
#define OSP_HTTP_H1RESP_MAX_LINE 256 /* a chunk-size line, bytes with its
                                        line ending */

typedef struct osp_http_h1resp_opts_s {
    /* true: collect the body into one malloc'd buffer (a proxy hands it on,
     * so it must be exactly what the server meant: a transfer coding other
     * than chunked is OSP_EUNSUPPORTED, and a connection whose framing was
     * ambiguous, Content-Length beside chunked, is not reused). false:
     * count the body's bytes and drop them (only the framing matters: the
     * body runs to the close unless chunked is the last coding). */
    bool keep_body;
    size_t max_head_bytes; /* status line + headers, interim heads and
                              trailers included (> 0) */
    size_t max_body_bytes; /* a kept body; 0 = no limit */
} osp_http_h1resp_opts_t;

typedef struct osp_http_h1resp_s {
    /* read-only: the answer */
    int status;               /* final status, once the head is in */
    bool keep_alive;          /* the connection may carry another request */
    bool too_big;             /* the error was the body limit */
    const char *err;          /* static text of the first error, or NULL */
    uint64_t body_bytes;      /* body bytes (chunk framing excluded) */
    uint8_t *body;            /* keep_body: NUL-terminated; see _take_body */
    char content_type[128];   /* forwarded headers, truncated, "" if absent */
    char ihcl[32];            /* Inference-Header-Content-Length */
    char retry_after[32];
    /* private */
    osp_http_h1resp_opts_t opts;
    int state, minor;
    bool seen_status, have_len, chunked, te_other, conn_close,
        conn_keep_alive;
    uint64_t content_length, remaining;
    size_t head_bytes;        /* head and trailer bytes consumed */
    size_t body_cap;
    char *carry;              /* a line split across feeds (malloc'd) */
    size_t carry_len, carry_cap;
} osp_http_h1resp_t;

/* Prepares p for a new answer, keeping the buffers it still owns for reuse
 * (zero-initialise p before the first call). */
void osp_http_h1resp_init(osp_http_h1resp_t *p,
                          const osp_http_h1resp_opts_t *opts);
/* Frees p's buffers; p may be initialised again. */
void osp_http_h1resp_fini(osp_http_h1resp_t *p);
/* Feeds buf[0..n); *used says how many bytes were consumed. Returns 1 when
 * the final answer is complete (bytes after it are not consumed), 0 when
 * more is needed (every byte was consumed: a partial line is held by p),
 * < 0 on error: OSP_EFORMAT (malformed), OSP_ELIMIT (head or kept body over
 * its limit; too_big says which), OSP_EUNSUPPORTED (a coding a kept body
 * cannot use), OSP_ENOMEM; p->err says what. After an error, OSP_EFORMAT. */
int osp_http_h1resp_feed(osp_http_h1resp_t *p, const uint8_t *buf, size_t n,
                         size_t *used);
/* The peer closed: 1 when that completes the answer (a body delimited by
 * the close), else 0 (truncated; p->err set). */
int osp_http_h1resp_eof(osp_http_h1resp_t *p);
/* Whether any byte of an answer has been consumed. */
bool osp_http_h1resp_started(const osp_http_h1resp_t *p);
/* Hands the kept body to the caller, who owns and frees it (malloc'd,
 * NUL-terminated, never NULL unless out of memory); *len its length. */
uint8_t *osp_http_h1resp_take_body(osp_http_h1resp_t *p, size_t *len);

/* ---- multipart/form-data (RFC 7578) ----------------------------------- */
#define OSP_MULTIPART_MAX_PARTS 64        /* parts per body */
#define OSP_MULTIPART_MAX_HEADER_BYTES 8192 /* one part's header block */
#define OSP_MULTIPART_MAX_BOUNDARY 70     /* RFC 2046 */

typedef struct osp_multipart_part_s {
    char name[128];         /* Content-Disposition name ("" if none) */
    char filename[256];     /* filename ("" if none) */
    char content_type[128]; /* the part's Content-Type ("" if none) */
    const uint8_t *data;    /* points into the body; not owned */
    size_t len;
} osp_multipart_part_t;

/* Extracts the boundary parameter from a multipart/form-data Content-Type
 * (quoted or not) into buf (NUL-terminated). 0, or OSP_EFORMAT when the type
 * is not multipart/form-data or has no valid boundary. */
int osp_multipart_boundary(const char *content_type, char *buf, size_t cap);
/* Splits body into at most max_parts parts (parts caller-owned array; data
 * pointers into body). *n_parts receives the count. Malformed input
 * (missing boundary, missing final delimiter, bad part headers, too many
 * parts, an oversized header block) → OSP_EFORMAT or OSP_ELIMIT with a message
 * giving the byte offset; never reads outside [body, body + len). */
int osp_multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                        osp_multipart_part_t *parts, int max_parts,
                        int *n_parts, osp_err_t *err);

/* One HTTP request (libcurl; fetch.c): method, URL, an optional JSON body;
 * the status and the answer's body (malloc'd, NUL-terminated, at most
 * 8 MiB; caller frees; body may be NULL to drop it). 0, or
 * OSP_EIO/OSP_ETIMEDOUT when no answer came (err names the URL). */
int osp_http_fetch(const char *method, const char *url, const char *json_body,
                   long timeout_ms, long *status, char **body,
                   size_t *body_len, osp_err_t *err);
/* The same with `Authorization: Bearer <bearer>` (bearer NULL: none, as
 * osp_http_fetch): what a client of the dispatcher's admin API sends. */
int osp_http_fetch_bearer(const char *method, const char *url,
                          const char *bearer, const char *json_body,
                          long timeout_ms, long *status, char **body,
                          size_t *body_len, osp_err_t *err);

/* ---- bearer tokens (bearer.c) ----------------------------------------- */
/* A shared-secret bearer token (RFC 6750) guards an API that must not be
 * open to whoever reaches its port (the dispatcher's admin API; docs/adr/
 * 0047-admin-token.md). The token lives in a file, never on a command line
 * (visible in ps) or in the environment (inherited by every child). */
#define OSP_HTTP_BEARER_MIN 16  /* characters: a guessable token is none */
#define OSP_HTTP_BEARER_MAX 512 /* characters, the terminating NUL excluded */

/* Reads a token file into out (cap > OSP_HTTP_BEARER_MAX): its first line,
 * surrounding spaces, tabs and CR trimmed. Refused, with err naming the
 * file and the reason (OSP_EINVAL, or OSP_EIO when it cannot be read): a
 * file that others may access (any of the mode's "other" bits, as ssh and
 * PostgreSQL refuse private key files; group bits are allowed, for a
 * Kubernetes Secret mounted with fsGroup), a token shorter than
 * OSP_HTTP_BEARER_MIN or longer than OSP_HTTP_BEARER_MAX, or one with a
 * character outside visible ASCII (it travels in a header). 0 on success. */
int osp_http_bearer_read_file(const char *path, char *out, size_t cap,
                              osp_err_t *err);
/* How a request's credentials compare with the expected token. */
typedef enum osp_http_auth_e {
    OSP_HTTP_AUTH_OK = 0,   /* Authorization: Bearer <the token> */
    OSP_HTTP_AUTH_MISSING,  /* no Authorization header, or not Bearer */
    OSP_HTTP_AUTH_WRONG,    /* Bearer with another token */
    OSP_HTTP_AUTH_COUNT
} osp_http_auth_t;
/* "ok", "missing", "wrong"; never NULL. */
const char *osp_http_auth_name(osp_http_auth_t a);
/* Checks r's Authorization header against token in constant time (the
 * comparison takes as long whatever the bytes and lengths: SHA-256 of both,
 * compared with CRYPTO_memcmp), so that timing reveals nothing of the
 * token. The scheme name is case-insensitive (RFC 9110 §11.1). */
osp_http_auth_t osp_http_req_bearer_check(const osp_http_req_t *r,
                                          const char *token);
/* Answers 401 with `WWW-Authenticate: Bearer realm="<realm>"` (plus
 * error="invalid_token" for a wrong one, RFC 6750 §3) and the JSON error
 * body {"error": "..."}. */
int osp_http_respond_unauthorized(osp_http_req_t *r, const char *realm,
                                  osp_http_auth_t why);

#endif
