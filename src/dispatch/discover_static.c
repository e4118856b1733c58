/* discover_static.c — static discovery: the `--backend host:port` list
 * (repeatable), added once at start. Such backends never leave the set;
 * health checks and ejection decide whether they get requests. */
#include "dispatch/dispatch_int.h"

int osp__dsp_discover_static(osp_dispatch_t *d, osp_err_t *err) {
    for (int i = 0; i < d->o.n_backends; i++) {
        int rc = osp__dsp_backend_add(d, d->o.backends[i], DSP_SRC_STATIC);
        if (rc < 0)
            return osp_err_set(err, rc, "dispatch: bad backend '%s' (want "
                               "host:port, IPv6 as [addr]:port)",
                               d->o.backends[i]);
    }
    return 0;
}
