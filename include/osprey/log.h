/* log.h — structured logs: one JSON object per line, as the long-running
 * commands (serve, dispatch) write them, so log shippers parse every line
 * the same way: {"ts": "2026-11-24T05:01:02.345Z", "level": "info",
 * "msg": "...", ...fields}.
 *
 * One API for every module and command: a line is a level, a message and
 * string fields given as key, value pairs ending with NULL. osp_serve_log and
 * osp_dispatch_log take the same arguments after their object. The library's
 * modules attach numeric fields through a private variant
 * (src/common/log_int.h), so no JSON library type reaches a public header. */
#ifndef OSPREY_LOG_H
#define OSPREY_LOG_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

/* Lets the compiler check that a field list ends with NULL. */
#if defined(__GNUC__)
#define OSP_LOG_FIELDS __attribute__((sentinel))
#else
#define OSP_LOG_FIELDS
#endif

/* Writes one line to f (stderr when NULL) holding ts, level, msg and the
 * fields: osp_log_write(NULL, NULL, "info", "signal", "signal", "SIGTERM",
 * NULL). mu, when not NULL, serialises writers so lines never interleave. */
void osp_log_write(FILE *f, pthread_mutex_t *mu, const char *level,
                   const char *msg, ...) OSP_LOG_FIELDS;
/* The same with the fields (key, value, ..., NULL) as a va_list. */
void osp_log_vwrite(FILE *f, pthread_mutex_t *mu, const char *level,
                    const char *msg, va_list fields);

#endif
