/* fuzz_http_h1resp.c — libFuzzer entry point for the HTTP/1.1 response
 * parser (src/http/h1resp.c), which reads whatever a worker or a server
 * under load sends. Byte 0 picks the read size the input is fed in
 * (1..256 bytes, as a socket might deliver it), byte 1 a body limit (0 =
 * none, else 1..255 bytes, to reach the limit paths), byte 2's low bit the
 * mode (1 = keep the body, as the dispatcher does; 0 = count it, as the
 * load generator does). Unconsumed bytes are passed again with more
 * appended; "need more" must have consumed everything; a complete answer
 * restarts the parser on the remaining bytes (a reused connection); the end
 * of the input is the peer's close. Any crash, hang, leak or sanitizer
 * report is a bug; errors are expected. Built by `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3)
        return 0;
    size_t step = (size_t)data[0] + 1;
    osp_http_h1resp_opts_t opts = {.keep_body = data[2] & 1,
                                   .max_head_bytes = 16384,
                                   .max_body_bytes = data[1]};
    data += 3;
    size -= 3;
    uint8_t *buf = malloc(size + 1);
    if (!buf)
        return 0;
    osp_http_h1resp_t p;
    memset(&p, 0, sizeof p);
    osp_http_h1resp_init(&p, &opts);
    size_t have = 0, off = 0;
    for (;;) {
        size_t k = size - off < step ? size - off : step;
        memcpy(buf + have, data + off, k);
        have += k;
        off += k;
        size_t used = 0;
        int rc = osp_http_h1resp_feed(&p, buf, have, &used);
        if (used > have || (rc == 0 && used != have))
            __builtin_trap();
        memmove(buf, buf + used, have - used);
        have -= used;
        if (rc < 0)
            break;
        if (rc == 1) {
            if (p.status < 200 || p.status > 599)
                __builtin_trap();
            size_t len;
            free(osp_http_h1resp_take_body(&p, &len));
            osp_http_h1resp_init(&p, &opts);
            if (!have && off == size)
                break;
            continue;
        }
        if (off == size) {
            (void)osp_http_h1resp_eof(&p);
            break;
        }
    }
    (void)osp_http_h1resp_started(&p);
    osp_http_h1resp_fini(&p);
    free(buf);
    return 0;
}
