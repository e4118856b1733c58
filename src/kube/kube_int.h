/* kube_int.h — private to src/kube: what the client (kube.c) and the
 * configuration readers (config.c) share. */
#ifndef OSPREY_KUBE_INT_H
#define OSPREY_KUBE_INT_H

#include "osprey/kube.h"

/* Deep copy of src into dst (zeroed first). OSP_ENOMEM (dst left empty). */
int osp__kube_config_copy(osp_kube_config_t *dst, const osp_kube_config_t *src);

#endif
