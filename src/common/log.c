/* log.c — one JSON object per log line (see include/osprey/log.h). The line
 * is built whole and written with one fwrite under the caller's lock, so
 * lines from many threads never interleave. String fields (the public API)
 * and jansson fields (the library's modules, log_int.h) go through the same
 * writer. */
#include "common/log_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void osp__log_json(FILE *f, pthread_mutex_t *mu, const char *level,
                   const char *msg, json_t *fields) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    json_t *j = json_pack("{s:s,s:s,s:s}", "ts", when, "level", level, "msg",
                          msg);
    if (j && fields)
        json_object_update(j, fields);
    json_decref(fields);
    char *line = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6))
                   : NULL;
    json_decref(j);
    if (!line)
        return;
    if (!f)
        f = stderr;
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL: written with an explicit length */
    if (mu)
        pthread_mutex_lock(mu);
    fwrite(line, 1, n + 1, f);
    fflush(f);
    if (mu)
        pthread_mutex_unlock(mu);
    free(line);
}

void osp_log_vwrite(FILE *f, pthread_mutex_t *mu, const char *level,
                    const char *msg, va_list fields) {
    json_t *o = json_object();
    const char *key;
    while ((key = va_arg(fields, const char *)) != NULL) {
        const char *v = va_arg(fields, const char *);
        if (o)
            json_object_set_new(o, key, json_string(v ? v : ""));
    }
    osp__log_json(f, mu, level, msg, o);
}

void osp_log_write(FILE *f, pthread_mutex_t *mu, const char *level,
                   const char *msg, ...) {
    va_list ap;
    va_start(ap, msg);
    osp_log_vwrite(f, mu, level, msg, ap);
    va_end(ap);
}
