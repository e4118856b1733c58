/* common.c — error codes and messages, assertions, clock and whole-file reads
 * shared by every module (see include/osprey/common.h); the CPU budget probe
 * is in cpu_budget.c. */
#include "osprey/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *osp_strerror(int code) {
    switch (code) {
#define OSP__ERR_TEXT(name, val, text)                                         \
    case (val):                                                                \
        return text;
        OSP_ERRNO_MAP(OSP__ERR_TEXT)
#undef OSP__ERR_TEXT
    }
    return "unknown error";
}

const char *osp_errname(int code) {
    switch (code) {
#define OSP__ERR_NAME(name, val, text)                                         \
    case (val):                                                                \
        return #name;
        OSP_ERRNO_MAP(OSP__ERR_NAME)
#undef OSP__ERR_NAME
    }
    return "EUNKNOWN";
}

int osp_err_set(osp_err_t *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int osp_err_prefix(osp_err_t *err, const char *fmt, ...) {
    if (!err)
        return OSP_EINTERNAL;
    char prefix[OSP_ERR_MSG_BYTES / 2], old[OSP_ERR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation of very long messages is acceptable; keep the head. */
    int n = snprintf(err->msg, sizeof err->msg, "%s: ", prefix);
    if (n > 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, "%.*s",
                 (int)(sizeof err->msg - (size_t)n - 1), old);
    return err->code;
}

void osp_err_clear(osp_err_t *err) {
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

void osp__assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "osprey: internal assertion failed: %s (%s:%d)\n", expr,
            file, line);
    abort();
}

void *osp_grow(void *arr, int *cap, int n, size_t elem_bytes, int min_cap) {
    if (n < *cap)
        return arr;
    if (*cap > INT32_MAX / 2)
        return NULL;
    int c = *cap ? *cap * 2 : min_cap;
    void *p = realloc(arr, (size_t)c * elem_bytes);
    if (p)
        *cap = c;
    return p;
}

uint64_t osp_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int osp_read_file(const char *path, size_t max_bytes, uint8_t **out,
                  size_t *out_len, osp_err_t *err) {
    *out = NULL;
    *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return osp_err_set(err, errno == ENOENT ? OSP_ENOENT : OSP_EIO,
                           "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return osp_err_set(err, OSP_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return osp_err_set(err, OSP_ELIMIT,
                           "%s: %lld bytes exceeds the limit of %zu bytes", path,
                           (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return osp_err_set(err, OSP_ENOMEM, "%s: cannot allocate %zu bytes",
                           path, n);
    }
    if (n && fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return osp_err_set(err, OSP_EIO, "%s: short read", path);
    }
    fclose(f);
    *out = buf;
    *out_len = n;
    return 0;
}
