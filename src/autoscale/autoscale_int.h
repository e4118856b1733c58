/* autoscale_int.h — private to src/autoscale: what the simulator and the
 * configuration reader share with the policy. */
#ifndef OSPREY_AUTOSCALE_INT_H
#define OSPREY_AUTOSCALE_INT_H

#include "osprey/autoscale.h"

/* One HTTP request (fetch.c): method, URL, an optional JSON body; the
 * status and the answer's body (malloc'd, NUL-terminated; caller frees;
 * body may be NULL to drop it). 0, or OSP_EIO/OSP_ETIMEDOUT when no answer
 * came (err names the URL). */
int osp__autoscale_fetch(const char *method, const char *url,
                         const char *json_body, long timeout_ms, long *status,
                         char **body, size_t *body_len, osp_err_t *err);

#endif
