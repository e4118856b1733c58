/* load_int.h — private interfaces of the load generator (src/load/): the
 * incremental HTTP/1.1 response parser (resp.c) and the epoll connection
 * pool (client.c) that run.c drives. Not part of the public API; unit tests
 * include it to test the parser directly. */
#ifndef OSPREY_LOAD_INT_H
#define OSPREY_LOAD_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "osprey/load.h"

/* ---- response parser (resp.c) ------------------------------------------ */
#define OSP__RESP_MAX_HEADER 8192 /* status line + headers, bytes (the
                                     usual server limit; per connection) */
#define OSP__RESP_MAX_LINE 256     /* a chunk-size or trailer line */

typedef struct osp__resp_s {
    int state;          /* private: where in the message we are */
    int status;         /* the final status code, once the header is in */
    int keep_alive;     /* the connection may carry another request */
    uint64_t remaining; /* body bytes (or chunk bytes) still to come */
    uint64_t body_bytes;/* body bytes seen (chunk framing excluded) */
    size_t hdr_len;
    size_t line_len;
    char line[OSP__RESP_MAX_LINE];
    char hdr[OSP__RESP_MAX_HEADER];
} osp__resp_t;

/* Prepares r for a new response. */
void osp__resp_init(osp__resp_t *r);
/* Feeds bytes; *used says how many were consumed. Returns 1 when a complete
 * final (non-1xx) response has been read (bytes after it are not consumed),
 * 0 when more is needed, OSP_EFORMAT on a malformed response (message in
 * err when non-NULL). */
int osp__resp_feed(osp__resp_t *r, const uint8_t *p, size_t n, size_t *used,
                   osp_err_t *err);
/* The peer closed the connection: 1 when that ends the response (a body
 * delimited by the close), else 0 (the response is incomplete). */
int osp__resp_eof(const osp__resp_t *r);
/* Whether any byte of a response has been seen. */
int osp__resp_started(const osp__resp_t *r);

/* ---- connection pool (client.c) ---------------------------------------- */
/* What run.c knows about one request; carried through the client. */
typedef struct osp__req_s {
    uint64_t intended_ns; /* when it was due (latency is measured from here) */
    uint64_t deadline_ns; /* intended + timeout */
    int idx;              /* corpus request */
    int retries;
    int user;             /* closed loop: the user it belongs to */
} osp__req_t;

typedef struct osp__result_s {
    int status;            /* HTTP status, or 0 on failure */
    osp_load_fail_t fail;  /* when status == 0 */
    int retryable;         /* failure on a reused connection before any
                              response byte: the server closed it idle */
    int written;           /* the request was fully written */
} osp__result_t;

typedef void (*osp__client_done_fn)(void *ud, const osp__req_t *req,
                                    const osp__result_t *res, uint64_t now_ns);

typedef struct osp__client_s osp__client_t;

/* A pool of up to max_conns connections to addr, opened lazily. done() is
 * called exactly once per started request, from _start (connect refused at
 * once), _poll or _expire. NULL with err set on failure. */
osp__client_t *osp__client_create(const struct sockaddr *addr,
                                  socklen_t addr_len, int max_conns,
                                  osp__client_done_fn done, void *ud,
                                  osp_err_t *err);
/* Closes every connection; requests still in flight are not reported. */
void osp__client_destroy(osp__client_t *c);
/* Whether a request can start now (an idle connection or room for one). */
int osp__client_can_start(const osp__client_t *c);
/* Starts req with the given bytes (owned by the caller, alive until done()).
 * A retry (req->retries > 0) always goes out on a new connection. Returns
 * 0, or OSP_EBUSY when no connection is free. */
int osp__client_start(osp__client_t *c, const osp__req_t *req,
                      const uint8_t *bytes, size_t len, uint64_t now_ns);
/* Waits up to timeout_ns for socket events and processes them. Returns the
 * number of events or a negative code when epoll itself fails. */
int osp__client_poll(osp__client_t *c, uint64_t timeout_ns);
/* Fails (timeout) every request whose deadline is before now. */
void osp__client_expire(osp__client_t *c, uint64_t now_ns);
/* Requests started and not yet done. */
int osp__client_busy(const osp__client_t *c);

#endif
