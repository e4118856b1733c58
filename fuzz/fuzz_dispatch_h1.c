/* fuzz_dispatch_h1.c — libFuzzer entry point for the dispatcher's HTTP/1.1
 * answer parser (src/dispatch/h1.c), which reads whatever a backend sends.
 * Byte 0 picks the read size the input is fed in (1..256 bytes, as a
 * socket might deliver it), byte 1 a body limit (0 = the default, else
 * 1..255 bytes, to reach the limit paths); unconsumed bytes are passed
 * again with more appended, as the event loop does; a complete answer
 * restarts the parser on the remaining bytes (a reused connection); the
 * end of the input is the peer's close. Any crash, hang, leak or sanitizer
 * report is a bug; errors are expected. Built by `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    size_t step = (size_t)data[0] + 1, max_body = data[1];
    data += 2;
    size -= 2;
    uint8_t *buf = malloc(size + 1);
    if (!buf)
        return 0;
    dsp_h1_t p;
    memset(&p, 0, sizeof p);
    osp__dsp_h1_init(&p, max_body);
    size_t have = 0, off = 0;
    for (;;) {
        size_t k = size - off < step ? size - off : step;
        memcpy(buf + have, data + off, k);
        have += k;
        off += k;
        size_t used = 0;
        int rc = osp__dsp_h1_feed(&p, buf, have, &used);
        if (used > have)
            __builtin_trap();
        memmove(buf, buf + used, have - used);
        have -= used;
        if (rc < 0)
            break;
        if (rc == 1) {
            if (p.status < 200 || p.status > 999)
                __builtin_trap();
            size_t len;
            free(osp__dsp_h1_take_body(&p, &len));
            osp__dsp_h1_init(&p, max_body);
            if (!have && off == size)
                break;
            continue;
        }
        if (off == size) {
            (void)osp__dsp_h1_eof(&p);
            break;
        }
    }
    (void)osp__dsp_h1_started(&p);
    osp__dsp_h1_fini(&p);
    free(buf);
    return 0;
}
