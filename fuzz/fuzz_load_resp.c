/* fuzz_load_resp.c — libFuzzer entry point for the load generator's HTTP/1.1
 * response parser (src/load/resp.c), which reads bytes from whatever server
 * `osprey load` is pointed at. Byte 0 picks the read size the input is fed
 * in (1..256 bytes, as a socket might deliver it); a complete response
 * restarts the parser on the remaining bytes, like a reused connection.
 * Any crash, hang or sanitizer report is a bug; errors are expected. Built
 * by the fuzz infrastructure (`make fuzz`). */
#include <stddef.h>
#include <stdint.h>

#include "load/load_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static osp__resp_t r;
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    data++;
    size--;
    osp__resp_init(&r);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        size_t used = 0;
        osp_err_t err;
        int rc = osp__resp_feed(&r, data + off, n, &used, &err);
        if (used > n)
            __builtin_trap();
        off += used;
        if (rc < 0)
            return 0;
        if (rc == 1) {
            osp__resp_init(&r);
            continue;
        }
        if (used != n) /* "need more" must consume everything */
            __builtin_trap();
    }
    (void)osp__resp_eof(&r);
    (void)osp__resp_started(&r);
    return 0;
}
