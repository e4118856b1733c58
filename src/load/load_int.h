/* load_int.h — private interfaces of the load generator (src/load/): the
 * epoll connection pool (client.c) that run.c drives. Not part of the
 * public API. Responses are read by the http module's parser
 * (osp_http_h1resp_*, include/osprey/http.h). */
#ifndef OSPREY_LOAD_INT_H
#define OSPREY_LOAD_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "osprey/load.h"

/* ---- connection pool (client.c) ---------------------------------------- */
/* What run.c knows about one request; carried through the client. */
typedef struct osp__load_req_s {
    uint64_t intended_ns; /* when it was due (latency is measured from here) */
    uint64_t deadline_ns; /* intended + timeout */
    int idx;              /* corpus request */
    int retries;
    int user;             /* closed loop: the user it belongs to */
} osp__load_req_t;

typedef struct osp__load_result_s {
    int status;            /* HTTP status, or 0 on failure */
    osp_load_fail_t fail;  /* when status == 0 */
    int retryable;         /* failure on a reused connection before any
                              response byte: the server closed it idle */
    int written;           /* the request was fully written */
} osp__load_result_t;

typedef void (*osp__load_client_done_fn)(void *ud,
                                         const osp__load_req_t *req,
                                         const osp__load_result_t *res,
                                         uint64_t now_ns);

typedef struct osp__load_client_s osp__load_client_t;

/* A pool of up to max_conns connections to addr, opened lazily. done() is
 * called exactly once per started request, from _start (connect refused at
 * once), _poll or _expire. NULL with err set on failure. */
osp__load_client_t *osp__load_client_create(const struct sockaddr *addr,
                                            socklen_t addr_len, int max_conns,
                                            osp__load_client_done_fn done,
                                            void *ud, osp_err_t *err);
/* Closes every connection; requests still in flight are not reported. */
void osp__load_client_destroy(osp__load_client_t *c);
/* Whether a request can start now (an idle connection or room for one). */
int osp__load_client_can_start(const osp__load_client_t *c);
/* Starts req with the given bytes (owned by the caller, alive until done()).
 * A retry (req->retries > 0) always goes out on a new connection. Returns
 * 0, or OSP_EBUSY when no connection is free. */
int osp__load_client_start(osp__load_client_t *c, const osp__load_req_t *req,
                           const uint8_t *bytes, size_t len, uint64_t now_ns);
/* Waits up to timeout_ns for socket events and processes them. Returns the
 * number of events or a negative code when epoll itself fails. */
int osp__load_client_poll(osp__load_client_t *c, uint64_t timeout_ns);
/* Fails (timeout) every request whose deadline is before now. */
void osp__load_client_expire(osp__load_client_t *c, uint64_t now_ns);
/* Requests started and not yet done. */
int osp__load_client_busy(const osp__load_client_t *c);

#endif
