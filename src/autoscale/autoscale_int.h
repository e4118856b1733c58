/* autoscale_int.h — private to src/autoscale: what the simulator and the
 * configuration reader share with the policy. */
#ifndef OSPREY_AUTOSCALE_INT_H
#define OSPREY_AUTOSCALE_INT_H

#include "osprey/autoscale.h"

/* YAML text → JSON text (malloc'd; caller frees), NULL with err set.
 * yaml.c explains the typing of scalars. */
char *osp__autoscale_yaml_to_json(const char *text, size_t len,
                                  osp_err_t *err);

#endif
