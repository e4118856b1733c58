/* cmd_health.c — `osprey health`: GETs a health endpoint and exits 0 when
 * it answers 200. The container image's HEALTHCHECK runs it, so the image
 * needs no curl or shell: the binary it already ships is the probe.
 *
 *   osprey health [--url URL] [--timeout-ms MS]
 *
 * The URL defaults to the worker's readiness endpoint on its default port;
 * a dispatcher, or a worker on another port, sets OSPREY_HEALTH_URL (the
 * settings layer: flag, environment, --config file). Exit codes: 0 ready,
 * 1 not ready or unreachable (the reason on stderr), 2 usage. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "osprey/http.h"

typedef struct health_cli_s {
    const char *url;
    int timeout_ms;
} health_cli_t;

#define O(f) offsetof(health_cli_t, f)
static const osp_setting_t opts[] = {
    {.name = "url", .kind = OSP_SET_STR, .arg = "URL", .off = O(url),
     .help = "endpoint to GET (default http://127.0.0.1:8080/v2/health/ready)"},
    {.name = "timeout-ms", .kind = OSP_SET_INT, .arg = "MS", .off = O(timeout_ms), .min = 1,
     .help = "give up after this long (default 3000)"},
};
#undef O

int osp_cli_health(int argc, char **argv) {
    health_cli_t c = {.url = "http://127.0.0.1:8080/v2/health/ready", .timeout_ms = 3000};
    int rc;
    osp_settings_t st = {
        .cmd = "osprey health", .env_prefix = "OSPREY_HEALTH_", .tab = opts,
        .n = OSP_ARRAY_LEN(opts), .base = &c, .synopsis = "[--url URL] [--timeout-ms MS]",
        .about = "GETs URL and exits 0 when it answers 200: a container HEALTHCHECK\n"
                 "(`osprey serve`'s and `osprey dispatch`'s /v2/health/ready or /live).\n"};
    if (!osp_settings_load(&st, argc, argv, &rc))
        goto out;
    long status = 0;
    osp_err_t err = {0};
    if (osp_http_fetch("GET", c.url, NULL, (long)c.timeout_ms, &status, NULL, NULL,
                       &err)) {
        fprintf(stderr, "osprey health: %s\n", err.msg);
        rc = OSP_CLI_EXIT_FAIL;
    } else if (status != 200) {
        fprintf(stderr, "osprey health: %s: HTTP %ld\n", c.url, status);
        rc = OSP_CLI_EXIT_FAIL;
    } else {
        rc = OSP_CLI_EXIT_OK;
    }
out:
    osp_settings_free(&st);
    return rc;
}
