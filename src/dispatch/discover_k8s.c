/* discover_k8s.c — Kubernetes EndpointSlice discovery (in progress). */
#include "dispatch/dispatch_int.h"

int osp__dsp_discover_k8s_start(osp_dispatch_t *d, osp_err_t *err) {
    (void)d;
    return osp_err_set(err, OSP_EUNSUPPORTED,
                       "dispatch: --k8s-service is not implemented yet");
}
