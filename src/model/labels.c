/* labels.c — reads class-label files (one label per line, index = line
 * number). Label files come from users and model zoos and are untrusted:
 * size and line count are bounded, Windows line endings and a UTF-8 BOM are
 * tolerated, and text that could not be put into a JSON response (invalid
 * UTF-8, control characters) is rejected with the line number. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void osp__labels_fini(osp__labels_t *l) {
    free(l->buf);
    free(l->lines);
    memset(l, 0, sizeof *l);
}

int osp__labels_load(const char *path, osp__labels_t *out, osp_err_t *err) {
    uint8_t *raw = NULL;
    size_t len = 0;
    char **lines = NULL;
    memset(out, 0, sizeof *out);
    int rc = osp_read_file(path, OSP_MODEL_LABELS_MAX_BYTES, &raw, &len, err);
    if (rc)
        return osp_err_prefix(err, "labels file");
    /* One spare byte so that a last line without '\n' can be terminated. */
    uint8_t *grown = realloc(raw, len + 1);
    if (!grown) {
        rc = osp_err_set(err, OSP_ENOMEM, "labels file %s", path);
        goto fail;
    }
    raw = grown;
    raw[len] = '\0';
    size_t start = 0;
    if (len >= 3 && raw[0] == 0xEF && raw[1] == 0xBB && raw[2] == 0xBF)
        start = 3;
    /* Count lines to size the index; the file is bounded so this is too. */
    size_t n_lines = 0;
    for (size_t i = start; i < len; i++)
        n_lines += raw[i] == '\n';
    if (len > start && raw[len - 1] != '\n')
        n_lines++;
    if (n_lines > OSP_MODEL_LABELS_MAX_COUNT) {
        rc = osp_err_set(err, OSP_ELIMIT,
                         "labels file %s: %zu lines exceeds the limit of %d",
                         path, n_lines, OSP_MODEL_LABELS_MAX_COUNT);
        goto fail;
    }
    lines = malloc(sizeof(char *) * (n_lines ? n_lines : 1));
    if (!lines) {
        rc = osp_err_set(err, OSP_ENOMEM, "labels file %s", path);
        goto fail;
    }
    int count = 0;
    size_t i = start;
    while (i < len) {
        size_t b = i;
        while (i < len && raw[i] != '\n') {
            size_t u = utf8_len(raw + i, len - i);
            bool ctrl = u == 1 && ((raw[i] < 0x20 && raw[i] != '\r' &&
                                    raw[i] != '\t') ||
                                   raw[i] == 0x7F);
            if (u == 0 || ctrl) {
                rc = osp_err_set(err, OSP_EFORMAT,
                                 "labels file %s: line %d: invalid UTF-8 or "
                                 "control character at byte offset %zu",
                                 path, count + 1, i);
                goto fail;
            }
            i += u;
        }
        size_t e = i; /* raw[i] is '\n' or the spare NUL */
        while (e > b && (raw[e - 1] == '\r' || raw[e - 1] == ' ' ||
                         raw[e - 1] == '\t'))
            e--;
        raw[e] = '\0';
        lines[count++] = (char *)raw + b;
        i++; /* past the '\n' */
    }
    while (count > 0 && lines[count - 1][0] == '\0')
        count--; /* trailing blank lines are not classes */
    out->buf = (char *)raw;
    out->lines = lines;
    out->count = count;
    return 0;
fail:
    free(raw);
    free(lines);
    return rc;
}
