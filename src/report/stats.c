/* stats.c — the report's statistics: quantiles, means, Pearson's r, axis
 * ticks in 1-2-5 steps, and the load levels (detected from the offered
 * rate's plateaus, or taken from the load profile's steps). Small pure
 * functions, so that tests/unit/test_report.c checks each on numbers
 * computed by hand. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/load.h"
#include "report/report_int.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double osp__report_quantile(const double *v, int n, double q) {
    double *s = malloc(sizeof *s * (size_t)(n > 0 ? n : 1));
    if (!s)
        return NAN;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            s[m++] = v[i];
    double out = NAN;
    if (m > 0) {
        qsort(s, (size_t)m, sizeof *s, cmp_double);
        q = q < 0 ? 0 : q > 1 ? 1 : q;
        double h = q * (m - 1);
        int lo = (int)floor(h);
        int hi = lo + 1 < m ? lo + 1 : lo;
        out = s[lo] + (h - lo) * (s[hi] - s[lo]);
    }
    free(s);
    return out;
}

double osp__report_mean(const double *v, int n) {
    double sum = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            sum += v[i];
            m++;
        }
    return m ? sum / m : NAN;
}

double osp__report_pearson(const double *x, const double *y, int n) {
    double sx = 0, sy = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) {
            sx += x[i];
            sy += y[i];
            m++;
        }
    if (m < 3)
        return NAN;
    double mx = sx / m, my = sy / m, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) {
            double dx = x[i] - mx, dy = y[i] - my;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
    /* A constant side has no correlation to speak of (0/0). */
    if (sxx <= 0 || syy <= 0)
        return NAN;
    return sxy / sqrt(sxx * syy);
}

double osp__report_tick_step(double lo, double hi, int max_ticks) {
    double span = hi - lo;
    if (!(span > 0) || max_ticks < 2)
        return 1;
    double raw = span / (max_ticks - 1);
    double mag = pow(10, floor(log10(raw)));
    static const double mult[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++) {
        double step = mult[i] * mag;
        /* ticks = the multiples of step inside [lo, hi] */
        double first = ceil(lo / step - 1e-9), last = floor(hi / step + 1e-9);
        if (last - first + 1 <= max_ticks)
            return step;
    }
    return 10 * mag;
}

void osp__report_axis(double lo, double hi, int max_ticks, bool from_zero,
                      osp__report_axis_t *a) {
    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0;
        hi = 1;
    }
    if (from_zero && lo > 0)
        lo = 0;
    if (hi - lo <= 0) {
        if (from_zero && lo == 0)
            hi = 1;
        else {
            lo -= 1;
            hi += 1;
        }
    }
    /* The axis ends on ticks, so the step is chosen for the widened range
     * too: widening can add a tick, and then the next step up is taken. */
    double step = osp__report_tick_step(lo, hi, max_ticks);
    double alo, ahi;
    for (;;) {
        alo = floor(lo / step + 1e-9) * step;
        ahi = ceil(hi / step - 1e-9) * step;
        int nt = (int)lround((ahi - alo) / step) + 1;
        if (nt <= max_ticks)
            break;
        double mag = pow(10, floor(log10(step) + 1e-9));
        double m = step / mag;
        step = (m < 1.5 ? 2 : m < 3.5 ? 5 : 10) * mag;
    }
    a->lo = alo;
    a->hi = ahi;
    a->step = step;
    a->n_ticks = (int)lround((ahi - alo) / step) + 1;
}

/* The median of v[i-2 .. i+2] clipped to [0, n). */
static double median5(const double *v, int n, int i) {
    double w[5];
    int m = 0;
    for (int k = i - 2; k <= i + 2; k++)
        if (k >= 0 && k < n)
            w[m++] = v[k];
    return osp__report_quantile(w, m, 0.5);
}

int osp__report_detect_levels(const double *offered, int n,
                              osp__report_level_t *lv, int max) {
    int end = n;
    while (end > 0 && !(offered[end - 1] > 0))
        end--; /* the drain: nothing offered any more */
    if (end == 0 || max < 1)
        return 0;
    int count = 0, start = 0;
    double sum = 0;
    for (int i = 0; i < end; i++) {
        double s = median5(offered, end, i);
        int len = i - start;
        double mean = len ? sum / len : s;
        double tol = fmax(1.0, 0.2 * mean);
        if (len > 0 && fabs(s - mean) > tol && count + 1 < max) {
            lv[count++] = (osp__report_level_t){start, i, 0};
            start = i;
            sum = 0;
        }
        sum += s;
    }
    lv[count++] = (osp__report_level_t){start, end, 0};
    /* Levels shorter than 3 s are the edges of a step: join the one before
     * (the first joins the one after). */
    for (int k = 0; k < count && count > 1;) {
        if (lv[k].end - lv[k].start >= 3) {
            k++;
            continue;
        }
        if (k > 0)
            lv[k - 1].end = lv[k].end;
        else
            lv[1].start = lv[0].start;
        memmove(&lv[k], &lv[k + 1], sizeof *lv * (size_t)(count - k - 1));
        count--;
    }
    for (int k = 0; k < count; k++)
        lv[k].offered_rps = osp__report_mean(offered + lv[k].start,
                                             lv[k].end - lv[k].start);
    return count;
}

int osp__report_parse_levels(const char *spec, int n, osp__report_level_t *lv,
                             int max, int *count, osp_err_t *err) {
    /* Each step goes through osprey load's own parser (one grammar for
     * profiles), one at a time so that its duration can be read back. */
    char *copy = strdup(spec), *save = NULL;
    if (!copy)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    int rc = 0, k = 0;
    double t = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        osp_load_profile_t *p = osp_load_profile_create();
        if (!p) {
            rc = osp_err_set(err, OSP_ENOMEM, "out of memory");
            break;
        }
        rc = osp_load_profile_parse_steps(p, tok, err);
        double d = osp_load_profile_duration_s(p);
        double rate = osp_load_profile_rate_at(p, 0);
        osp_load_profile_destroy(p);
        if (rc < 0) {
            osp_err_prefix(err, "--levels");
            rc = OSP_EINVAL;
            break;
        }
        if (k == max) {
            rc = osp_err_set(err, OSP_EINVAL, "--levels: more than %d steps",
                             max);
            break;
        }
        int a = (int)lround(t), b = (int)lround(t + d);
        lv[k++] = (osp__report_level_t){OSP_MIN(a, n), OSP_MIN(b, n), rate};
        t += d;
    }
    free(copy);
    if (rc == 0 && k == 0)
        rc = osp_err_set(err, OSP_EINVAL, "--levels: no steps");
    *count = k;
    return rc;
}
