/* log.h — structured logs: one JSON object per line, as the long-running
 * commands (serve, dispatch) write them, so log shippers parse every line
 * the same way: {"ts": "2026-11-24T05:01:02.345Z", "level": "info",
 * "msg": "...", ...fields}. */
#ifndef OSPREY_LOG_H
#define OSPREY_LOG_H

#include <pthread.h>
#include <stdio.h>

#include <jansson.h>

/* Writes one line to f (stderr when NULL) holding ts, level, msg and the
 * members of fields (may be NULL; its reference is taken). mu, when not
 * NULL, serialises writers so lines never interleave. */
void osp_log_json(FILE *f, pthread_mutex_t *mu, const char *level,
                  const char *msg, json_t *fields);

#endif
