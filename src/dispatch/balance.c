/* balance.c — the balancing policies: power-of-two-choices least-outstanding
 * (default; latency-weighted), plain P2C least-outstanding, round-robin
 * and random. Pure functions over the candidates'
 * in-flight counts with an explicit generator state, so that the unit tests
 * are deterministic; the caller (proxy.c) holds d->mu and passes only
 * backends that are ready, serve the model and have a free slot.
 *
 * Why P2C: picking the less loaded of two random backends avoids the herd
 * that "global least-loaded" causes when many requests decide on the same
 * stale counts, yet steers away from a slow backend (its requests pile up,
 * so it loses most comparisons). Weighting the outstanding count by the
 * backend's recent latency makes the comparison "expected wait": equal to
 * least-outstanding between equally fast backends, and it keeps a backend
 * that is slow without queueing (fewer CPUs, a noisy neighbour) from
 * taking a share of requests that then all wait for it.
 * docs/decisions.md ("Dispatcher"). */
#include <math.h>
#include <string.h>

#include "dispatch/dispatch_int.h"

static const char *const balance_names[OSP_BALANCE_COUNT] = {
    "p2c", "rr", "random", "p2c-lor"};

const char *osp_balance_name(osp_balance_t p) {
    return (unsigned)p < OSP_BALANCE_COUNT ? balance_names[p] : "unknown";
}

int osp_balance_parse(const char *s, osp_balance_t *out) {
    for (int i = 0; i < OSP_BALANCE_COUNT; i++)
        if (s && !strcmp(s, balance_names[i])) {
            *out = (osp_balance_t)i;
            return 0;
        }
    return OSP_EINVAL;
}

uint64_t osp__dsp_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) (n small: the modulo bias is below 2^-50). */
static int below(uint64_t *rng, int n) {
    return (int)(osp__dsp_rand(rng) % (uint64_t)n);
}

double osp__dsp_ewma(double ewma_ms, double sample_ms, double dt_ms) {
    if (ewma_ms <= 0 || sample_ms >= ewma_ms)
        return sample_ms;
    double w = exp(-(dt_ms > 0 ? dt_ms : 0) / DSP_EWMA_TAU_MS);
    return ewma_ms * w + sample_ms * (1 - w);
}

double osp__dsp_cost(osp_balance_t p, int inflight, double ewma_ms,
                     double age_shares, double floor_ms) {
    if (p != OSP_BALANCE_P2C)
        return inflight;
    double est = ewma_ms * exp(-(age_shares > 0 ? age_shares : 0) /
                               DSP_EWMA_DECAY_SHARES);
    if (est < floor_ms)
        est = floor_ms;
    return (inflight + 1) * est;
}

int osp__dsp_balance_pick(osp_balance_t p, const double *cost, int n,
                          uint64_t *rng, unsigned *rr) {
    OSP_ASSERT(n >= 1);
    if (n == 1)
        return 0;
    switch (p) {
    case OSP_BALANCE_RR:
        return (int)((*rr)++ % (unsigned)n);
    case OSP_BALANCE_RANDOM:
        return below(rng, n);
    case OSP_BALANCE_P2C:
    case OSP_BALANCE_P2C_LOR:
    default: {
        int a = below(rng, n);
        int b = below(rng, n - 1);
        if (b >= a)
            b++; /* distinct from a, still uniform */
        return cost[b] < cost[a] ? b : a;
    }
    }
}
