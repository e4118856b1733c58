/* topk.c — turning a score vector into an answer: numerically stable
 * softmax and a top-k selection with a deterministic order (ties keep the
 * lower class index first, so equal scores give the same answer on every
 * worker). */
#include <math.h>

#include "osprey/model.h"

/* a ranks strictly above b: larger, and any number beats NaN. */
static bool above(float a, float b) {
    if (isnan(a))
        return false;
    if (isnan(b))
        return true;
    return a > b;
}

int osp_topk(const float *scores, int n, int k, int *idx_out,
             float *score_out) {
    if (n < 0 || k < 0 || (n > 0 && k > 0 && (!scores || !idx_out)))
        return OSP_EINVAL;
    if (k > n)
        k = n;
    if (k == 0)
        return 0;
    int filled = 0;
    /* Insertion into a sorted prefix: O(n·k), fine for k ≤ a few dozen, and
     * stable because an element only moves ahead of strictly smaller ones. */
    for (int i = 0; i < n; i++) {
        float s = scores[i];
        if (filled == k && !above(s, scores[idx_out[k - 1]]))
            continue;
        int pos = filled < k ? filled : k - 1;
        while (pos > 0 && above(s, scores[idx_out[pos - 1]])) {
            idx_out[pos] = idx_out[pos - 1];
            pos--;
        }
        idx_out[pos] = i;
        if (filled < k)
            filled++;
    }
    if (score_out)
        for (int i = 0; i < filled; i++)
            score_out[i] = scores[idx_out[i]];
    return filled;
}

void osp_softmax(const float *in, float *out, int n) {
    if (n <= 0)
        return;
    float mx = -INFINITY;
    int n_num = 0, n_posinf = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(in[i]))
            continue;
        n_num++;
        n_posinf += isinf(in[i]) && in[i] > 0;
        if (in[i] > mx)
            mx = in[i];
    }
    if (n_posinf > 0 || n_num == 0 || mx == -INFINITY) {
        /* Degenerate: +inf entries share the mass; all -inf → uniform over
         * the numbers; all NaN → zeros. */
        for (int i = 0; i < n; i++) {
            float x = in[i];
            if (isnan(x))
                out[i] = 0.f;
            else if (n_posinf > 0)
                out[i] = (isinf(x) && x > 0) ? 1.f / (float)n_posinf : 0.f;
            else
                out[i] = 1.f / (float)n_num;
        }
        return;
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        float e = isnan(in[i]) ? 0.f : expf(in[i] - mx);
        out[i] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum); /* sum >= 1: the max contributes exp(0) */
    for (int i = 0; i < n; i++)
        out[i] *= inv;
}
