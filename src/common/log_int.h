/* log_int.h — the library's own log writer with typed fields (numbers,
 * booleans, nested values) built with jansson, for the modules that log
 * more than strings (serve, dispatch). Private to the library: the public
 * API (include/osprey/log.h) takes string fields, so no jansson type is in
 * a public header. The line format is the same: one writer does both. */
#ifndef OSPREY_COMMON_LOG_INT_H
#define OSPREY_COMMON_LOG_INT_H

#include <jansson.h>

#include "osprey/log.h"

/* Writes one line to f (stderr when NULL) holding ts, level, msg and the
 * members of fields (may be NULL; its reference is taken). mu, when not
 * NULL, serialises writers. */
void osp__log_json(FILE *f, pthread_mutex_t *mu, const char *level,
                   const char *msg, json_t *fields);

#endif
