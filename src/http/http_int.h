/* http_int.h — private interface between the HTTP server wrapper (server.c),
 * its slow-client deadlines (slow.c) and its memory budget (budget.c). Not installed; nothing outside
 * src/http/ includes it. */
#ifndef OSPREY_HTTP_INT_H
#define OSPREY_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osprey/http.h"

/* The open connections of one server and the deadlines that apply to each
 * (docs/adr/0045-slow-clients.md): a connection's request head must be
 * complete by its deadline, its body must keep a minimum average rate.
 * libmicrohttpd's own timeout is an idle timeout, which every byte resets,
 * so a client sending one byte every few seconds would hold its connection
 * (and a slot of the connection limit) forever; these deadlines are not
 * reset by bytes. All functions are thread-safe (one mutex). */
typedef struct osp__http_slow_s osp__http_slow_t;
typedef struct osp__http_conn_s osp__http_conn_t;

typedef struct osp__http_slow_opts_s {
    int header_timeout_s;    /* head deadline; <= 0: none */
    int idle_timeout_s;      /* keep-alive: the next request line within
                                this (+ header_timeout_s) of the answer */
    double min_body_rate;    /* bytes/s after the grace; <= 0: none */
    osp_series_t *closes[OSP_HTTP_SLOW_COUNT]; /* counted closes (may be
                                                  NULL) */
} osp__http_slow_opts_t;

/* NULL on out-of-memory. */
osp__http_slow_t *osp__http_slow_create(const osp__http_slow_opts_t *o);
/* Stops the sweeper thread (if started) and frees what is left. */
void osp__http_slow_destroy(osp__http_slow_t *t);
/* Whether any deadline is enabled (else nothing needs tracking). */
bool osp__http_slow_enabled(const osp__http_slow_t *t);
/* Starts a thread that sweeps every OSP__HTTP_SLOW_TICK_MS (servers whose
 * connections are served by libmicrohttpd's own threads). 0 or OSP_EIO. */
int osp__http_slow_thread_start(osp__http_slow_t *t);

/* A connection was accepted on socket fd (its head deadline starts now).
 * NULL when out of memory (the connection is then not tracked). */
osp__http_conn_t *osp__http_slow_add(osp__http_slow_t *t, int fd);
/* The connection is closing; c is freed. Must be called before the socket
 * is closed: the sweeper shuts down sockets only of connections still
 * added, under the same lock, so it never reaches a reused descriptor. */
void osp__http_slow_remove(osp__http_slow_t *t, osp__http_conn_t *c);
/* A request line arrived (a keep-alive connection's next request: its head
 * deadline starts now). */
void osp__http_slow_line(osp__http_slow_t *t, osp__http_conn_t *c);
/* The request head is complete: the body (if any) starts now. */
void osp__http_slow_head(osp__http_slow_t *t, osp__http_conn_t *c);
/* n body bytes arrived. false when the body is now below the minimum rate
 * (counted; the caller closes the connection). */
bool osp__http_slow_body(osp__http_slow_t *t, osp__http_conn_t *c,
                         size_t n);
/* The request is being handled or answered: no deadline of ours. */
void osp__http_slow_busy(osp__http_slow_t *t, osp__http_conn_t *c);
/* The answer was sent; the connection waits for the next request. */
void osp__http_slow_idle(osp__http_slow_t *t, osp__http_conn_t *c);
/* Shuts down the sockets of connections past a deadline (libmicrohttpd
 * then reads the end of stream and closes them) when the next sweep is
 * due; returns the ms until the next sweep is due (-1: nothing tracked). */
int64_t osp__http_slow_sweep(osp__http_slow_t *t, uint64_t now_ns);
/* Connections closed for a reason so far. */
uint64_t osp__http_slow_closes(const osp__http_slow_t *t,
                               osp_http_slow_reason_t why);

#define OSP__HTTP_SLOW_TICK_MS 250 /* sweep period: the deadlines' slack */

/* The memory budget (budget.c; public part in osprey/http.h). */
/* Adds n to the bytes in use unless that would pass the limit: true, or
 * false (nothing changed). */
bool osp__http_budget_reserve(osp_http_budget_t *b, uint64_t n);
/* Adds n even past the limit (already allocated). */
void osp__http_budget_charge(osp_http_budget_t *b, uint64_t n);
/* Gives back n bytes reserved or charged before. */
void osp__http_budget_release(osp_http_budget_t *b, uint64_t n);
/* Counts a request refused for want of budget. */
void osp__http_budget_reject(osp_http_budget_t *b);
/* Bytes still free (UINT64_MAX for NULL). */
uint64_t osp__http_budget_room(const osp_http_budget_t *b);

#endif
