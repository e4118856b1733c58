/* discover_dns.c — DNS discovery: `--dns NAME:PORT` is re-resolved every
 * --dns-interval-ms with getaddrinfo (every A and AAAA record, e.g. a
 * Kubernetes headless Service), and the backend set for this source is made
 * exactly the addresses returned. A failed lookup keeps the previous set
 * (a DNS hiccup must not empty the pool). */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dispatch/dispatch_int.h"

#define DNS_MAX_ADDRS 256 /* addresses taken from one lookup */

static void resolve_once(osp_dispatch_t *d, const char *name,
                         const char *port) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(name, port, &hints, &res);
    if (rc) {
        osp__dsp_log(d, "warn", "dns lookup failed",
                         json_pack("{s:s,s:s}", "name", name, "error",
                                   gai_strerror(rc)));
        return;
    }
    char *addrs[DNS_MAX_ADDRS];
    int n = 0;
    for (struct addrinfo *ai = res; ai && n < DNS_MAX_ADDRS; ai = ai->ai_next) {
        char host[INET6_ADDRSTRLEN], buf[DSP_ADDR_MAX];
        if (ai->ai_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr,
                      host, sizeof host);
        else if (ai->ai_family == AF_INET6)
            inet_ntop(AF_INET6,
                      &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, host,
                      sizeof host);
        else
            continue;
        snprintf(buf, sizeof buf, ai->ai_family == AF_INET6 ? "[%s]:%s"
                                                            : "%s:%s",
                 host, port);
        bool dup = false;
        for (int k = 0; k < n && !dup; k++)
            dup = !strcmp(addrs[k], buf);
        if (!dup && (addrs[n] = strdup(buf)))
            n++;
    }
    freeaddrinfo(res);
    osp__dsp_backend_sync(d, DSP_SRC_DNS, addrs, n);
    for (int k = 0; k < n; k++)
        free(addrs[k]);
}

static void *dns_main(void *arg) {
    osp_dispatch_t *d = arg;
    char name[256], port[16];
    const char *colon = strrchr(d->o.dns, ':');
    size_t nl = (size_t)(colon - d->o.dns);
    memcpy(name, d->o.dns, nl);
    name[nl] = 0;
    snprintf(port, sizeof port, "%s", colon + 1);
    while (!atomic_load(&d->stop_flag)) {
        resolve_once(d, name, port);
        /* Sleep in short steps so that shutdown is prompt. */
        for (int t = 0; t < d->o.dns_interval_ms &&
                        !atomic_load(&d->stop_flag); t += 50)
            usleep(50000);
    }
    return NULL;
}

int osp__dsp_discover_dns_start(osp_dispatch_t *d, osp_err_t *err) {
    const char *colon = strrchr(d->o.dns, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == d->o.dns || (size_t)(colon - d->o.dns) >= 256 ||
        !end || *end || port < 1 || port > 65535)
        return osp_err_set(err, OSP_EINVAL, "dispatch: --dns '%s': want "
                           "NAME:PORT", d->o.dns);
    if (pthread_create(&d->dns_th, NULL, dns_main, d))
        return osp_err_set(err, OSP_EIO, "dispatch: cannot start DNS thread");
    d->dns_started = true;
    return 0;
}
