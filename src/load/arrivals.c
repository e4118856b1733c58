/* arrivals.c — the open-loop send schedule: intended send times following a
 * rate profile, either evenly spaced or as a Poisson process.
 *
 * Both come from one idea (time rescaling): if N(t) is the profile's
 * expected count by time t, then sending request k at N^-1(x_k) makes the
 * sends follow the profile for any increasing sequence x_k with unit
 * density. x_k = k + 1/2 gives constant spacing (and exactly round(N) sends
 * in each stretch where N grows by a whole number); x_k = sum of k+1 unit
 * exponential gaps gives a non-homogeneous Poisson process with rate equal
 * to the profile's. The schedule is thus a pure function of (profile, kind,
 * seed): the unit tests check it without a clock, and two runs with the
 * same seed send at the same times. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/load.h"

struct osp_load_arrivals_s {
    const osp_load_profile_t *p;
    osp_load_arrival_t kind;
    uint64_t rng;      /* splitmix64 state */
    uint64_t k;        /* requests generated so far */
    double x;          /* Poisson: cumulative unit-rate time */
    double last_t;
    int done;
};

static const char *const arrival_names[OSP_LOAD_ARRIVAL_COUNT] = {"constant",
                                                             "poisson"};

const char *osp_load_arrival_name(osp_load_arrival_t a) {
    return (unsigned)a < OSP_LOAD_ARRIVAL_COUNT ? arrival_names[a] : "?";
}

int osp_load_arrival_parse(const char *s, osp_load_arrival_t *out) {
    for (int i = 0; s && i < OSP_LOAD_ARRIVAL_COUNT; i++)
        if (!strcmp(s, arrival_names[i])) {
            *out = (osp_load_arrival_t)i;
            return 0;
        }
    return OSP_EINVAL;
}

/* splitmix64: tiny, fast, good enough for arrival jitter, and identical on
 * every platform (unlike rand()). */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

osp_load_arrivals_t *osp_load_arrivals_create(const osp_load_profile_t *p,
                                    osp_load_arrival_t kind, uint64_t seed) {
    osp_load_arrivals_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->p = p;
    a->kind = kind;
    a->rng = seed;
    return a;
}

void osp_load_arrivals_destroy(osp_load_arrivals_t *a) { free(a); }

int osp_load_arrivals_next(osp_load_arrivals_t *a, double *t_s) {
    if (a->done)
        return 0;
    double x;
    if (a->kind == OSP_LOAD_ARRIVAL_POISSON) {
        /* Exponential gap by inversion; u in (0, 1] so log(u) is finite. */
        double u = ((double)(next_u64(&a->rng) >> 11) + 1.0) * 0x1p-53;
        a->x += -log(u);
        x = a->x;
    } else {
        x = (double)a->k + 0.5;
    }
    double t = osp_load_profile_time_of(a->p, x);
    if (!isfinite(t) || t >= osp_load_profile_duration_s(a->p)) {
        a->done = 1;
        return 0;
    }
    if (t < a->last_t) /* rounding in the inverse; keep times monotonic */
        t = a->last_t;
    a->last_t = t;
    a->k++;
    *t_s = t;
    return 1;
}
