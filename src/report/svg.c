/* svg.c — one chart as inline SVG: a title, a y axis with its unit and
 * 1-2-5 ticks, a time axis in seconds since the load's start, a legend,
 * and the run's context drawn behind the lines (load levels, the SLO
 * threshold, seconds that broke it, the autoscaler's decisions). Dark
 * lines on a light background, fonts the page sets once; no script, so
 * the page reads the same in a browser, a screenshot or a mail client. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/report_int.h"

#define ML 78  /* left margin: y tick labels and the axis label */
#define MR 24
#define MT 56  /* title and legend */
#define MB 46  /* x tick labels and the axis label */

static const char *const palette[] = {
    "#1f5fa8", "#c62828", "#2e7d32", "#e65100", "#6a1b9a",
    "#5d4037", "#ad1457", "#00838f", "#455a64", "#827717",
};

void osp__report_xml_escape(FILE *f, const char *s) {
    for (; s && *s; s++)
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
}

/* A tick label with as many decimals as the step needs. */
static void fmt_tick(char *buf, size_t n, double v, double step) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < step * 1e-6)
        v = 0; /* no "-0" */
    snprintf(buf, n, "%.*f", dec, v);
}

typedef struct geom_s {
    double x0, x1, y0, y1; /* plot area in px: x0 left, y0 bottom */
    osp__report_axis_t xa, ya;
} geom_t;

static double px(const geom_t *g, double x) {
    return g->x0 + (x - g->xa.lo) / (g->xa.hi - g->xa.lo) * (g->x1 - g->x0);
}
static double py(const geom_t *g, double y) {
    return g->y0 - (y - g->ya.lo) / (g->ya.hi - g->ya.lo) * (g->y0 - g->y1);
}

static void axes(FILE *f, const osp__report_chart_t *c, const geom_t *g) {
    char lab[32];
    /* y: grid lines and labels */
    fprintf(f, "<g class=\"axis y\">\n");
    for (int i = 0; i < g->ya.n_ticks; i++) {
        double v = g->ya.lo + i * g->ya.step, y = py(g, v);
        fmt_tick(lab, sizeof lab, v, g->ya.step);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                   "class=\"grid\"/><text x=\"%.1f\" y=\"%.1f\" "
                   "text-anchor=\"end\">%s</text>\n",
                g->x0, y, g->x1, y, g->x0 - 6, y + 4, lab);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
               "class=\"axisline\"/>\n", g->x0, g->y0, g->x0, g->y1);
    fprintf(f, "<text class=\"label\" transform=\"translate(16 %.1f) "
               "rotate(-90)\" text-anchor=\"middle\">",
            (g->y0 + g->y1) / 2);
    osp__report_xml_escape(f, c->y_label);
    fprintf(f, "</text>\n</g>\n");
    /* x: seconds since the start */
    fprintf(f, "<g class=\"axis x\">\n");
    for (int i = 0; i < g->xa.n_ticks; i++) {
        double v = g->xa.lo + i * g->xa.step, x = px(g, v);
        fmt_tick(lab, sizeof lab, v, g->xa.step);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                   "class=\"tick\"/><text x=\"%.1f\" y=\"%.1f\" "
                   "text-anchor=\"middle\">%s</text>\n",
                x, g->y0, x, g->y0 + 5, x, g->y0 + 19, lab);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
               "class=\"axisline\"/>\n", g->x0, g->y0, g->x1, g->y0);
    fprintf(f, "<text class=\"label\" x=\"%.1f\" y=\"%d\" "
               "text-anchor=\"middle\">time since the load started (s)</text>\n"
               "</g>\n", (g->x0 + g->x1) / 2, OSP__REPORT_CHART_H - 6);
}

/* Behind the lines: SLO bands, level boundaries, decisions. */
static void context(FILE *f, const osp__report_chart_t *c, const geom_t *g) {
    for (int i = 0; c->bands && i < c->n; i++) {
        if (!c->bands[i])
            continue;
        int j = i;
        while (j < c->n && c->bands[j])
            j++;
        fprintf(f, "<rect class=\"violation\" x=\"%.1f\" y=\"%.1f\" "
                   "width=\"%.1f\" height=\"%.1f\"/>\n",
                px(g, i), g->y1, px(g, j) - px(g, i), g->y0 - g->y1);
        i = j;
    }
    for (int k = 0; k < c->n_levels; k++) {
        double x = px(g, c->levels[k].start);
        fprintf(f, "<line class=\"level\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                   "y2=\"%.1f\"/><text class=\"levellabel\" x=\"%.1f\" "
                   "y=\"%.1f\">L%d</text>\n",
                x, g->y0, x, g->y1, x + 3, g->y1 + 11, k + 1);
    }
    for (int k = 0; k < c->n_marks; k++) {
        double x = px(g, c->mark_s[k] + 0.5);
        bool up = c->mark_dir[k] > 0;
        fprintf(f, "<line class=\"%s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                   "y2=\"%.1f\"/><text class=\"%s\" x=\"%.1f\" y=\"%.1f\" "
                   "text-anchor=\"middle\">%s</text>\n",
                up ? "up" : "down", x, g->y0, x, g->y1 + 14,
                up ? "up" : "down", x, g->y1 + 12,
                up ? "\u25b2" : "\u25bc");
    }
    if (isfinite(c->hline) && c->hline >= g->ya.lo && c->hline <= g->ya.hi) {
        double y = py(g, c->hline);
        fprintf(f, "<line class=\"slo\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                   "y2=\"%.1f\"/><text class=\"slolabel\" x=\"%.1f\" "
                   "y=\"%.1f\" text-anchor=\"end\">",
                g->x0, y, g->x1, y, g->x1 - 4, y - 4);
        osp__report_xml_escape(f, c->hline_label);
        fprintf(f, "</text>\n");
    }
}

static void line(FILE *f, const osp__report_chart_t *c, const geom_t *g,
                 const double *y, const char *color, bool under) {
    bool open = false;
    for (int i = 0; i <= c->n; i++) {
        bool ok = i < c->n && isfinite(y[i]);
        if (ok && !open) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\"%s points=\"", color,
                    under ? " style=\"stroke-width:6;stroke-opacity:.35\"" : "");
            open = true;
        }
        if (!ok && open) {
            fprintf(f, "\"/>\n");
            open = false;
        }
        if (!ok)
            continue;
        double v = fmin(fmax(y[i], g->ya.lo), g->ya.hi);
        if (c->step)
            fprintf(f, "%.1f,%.1f %.1f,%.1f ", px(g, i), py(g, v), px(g, i + 1),
                    py(g, v));
        else
            fprintf(f, "%.1f,%.1f ", px(g, i + 0.5), py(g, v));
    }
}

static void legend(FILE *f, const osp__report_chart_t *c) {
    double x = ML;
    for (int k = 0; k < c->n_lines; k++) {
        const char *color = palette[k % OSP_ARRAY_LEN(palette)];
        bool under = c->underlay && k == 0 && c->n_lines > 1;
        fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"14\" height=\"%d\" "
                   "fill=\"%s\"%s/><text x=\"%.1f\" y=\"36\">",
                x, under ? 29 : 30, under ? 6 : 4, color,
                under ? " fill-opacity=\"0.35\"" : "", x + 18);
        osp__report_xml_escape(f, c->lines[k].name);
        fprintf(f, "</text>\n");
        /* ~6.6 px per character at the page's 12 px font */
        x += 30 + 6.6 * (double)strlen(c->lines[k].name);
    }
}

void osp__report_svg_chart(FILE *f, const osp__report_chart_t *c) {
    geom_t g = {.x0 = ML, .x1 = OSP__REPORT_CHART_W - MR,
                .y0 = OSP__REPORT_CHART_H - MB, .y1 = MT};
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < c->n_lines; k++)
        for (int i = 0; i < c->n; i++)
            if (isfinite(c->lines[k].y[i])) {
                lo = fmin(lo, c->lines[k].y[i]);
                hi = fmax(hi, c->lines[k].y[i]);
            }
    /* The threshold is drawn when the data come near it; far above them,
     * stretching the axis would flatten the lines into the floor, so it is
     * only named. */
    bool hline_far = isfinite(c->hline) && isfinite(hi) && hi < 0.4 * c->hline;
    if (isfinite(c->hline) && isfinite(hi) && !hline_far)
        hi = fmax(hi, c->hline * 1.05);
    osp__report_axis(lo, hi, 7, c->from_zero, &g.ya);
    if (c->integer && g.ya.step < 1) { /* no half workers */
        g.ya.lo = floor(g.ya.lo);
        g.ya.hi = ceil(g.ya.hi);
        g.ya.step = 1;
        g.ya.n_ticks = (int)lround(g.ya.hi - g.ya.lo) + 1;
    }
    osp__report_axis(0, c->n > 0 ? c->n : 1, 13, true, &g.xa);
    g.xa.hi = c->n > 0 ? c->n : 1; /* the time axis ends with the run */

    fprintf(f, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
               "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
               "aria-label=\"",
            OSP__REPORT_CHART_W, OSP__REPORT_CHART_H, OSP__REPORT_CHART_W,
            OSP__REPORT_CHART_H);
    osp__report_xml_escape(f, c->title);
    fprintf(f, "\">\n<title>");
    osp__report_xml_escape(f, c->title);
    fprintf(f, "</title>\n<rect class=\"bg\" width=\"%d\" height=\"%d\"/>\n"
               "<text class=\"title\" x=\"%d\" y=\"18\">",
            OSP__REPORT_CHART_W, OSP__REPORT_CHART_H, ML);
    osp__report_xml_escape(f, c->title);
    fprintf(f, "</text>\n");
    legend(f, c);
    if (hline_far) {
        fprintf(f, "<text class=\"slolabel\" x=\"%d\" y=\"36\" "
                   "text-anchor=\"end\">", OSP__REPORT_CHART_W - MR);
        osp__report_xml_escape(f, c->hline_label);
        fprintf(f, " (above this range)</text>\n");
    }
    context(f, c, &g);
    axes(f, c, &g);
    fprintf(f, "<g class=\"lines\">\n");
    for (int k = 0; k < c->n_lines; k++)
        line(f, c, &g, c->lines[k].y, palette[k % OSP_ARRAY_LEN(palette)],
             c->underlay && k == 0 && c->n_lines > 1);
    fprintf(f, "</g>\n");
    if (!c->n_lines || !isfinite(lo))
        fprintf(f, "<text class=\"nodata\" x=\"%.1f\" y=\"%.1f\" "
                   "text-anchor=\"middle\">no data recorded</text>\n",
                (g.x0 + g.x1) / 2, (g.y0 + g.y1) / 2);
    fprintf(f, "</svg>\n");
}
