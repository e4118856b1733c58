/* autoscale_int.h — private to src/autoscale: what the simulator and the
 * configuration reader share with the policy. */
#ifndef OSPREY_AUTOSCALE_INT_H
#define OSPREY_AUTOSCALE_INT_H

#include "osprey/autoscale.h"

#endif
