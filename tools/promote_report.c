/*
 * rlfeed promote's report: JSON (stored in the audit entry and printed with
 * --json), a table for a person, and an SVG plot (tools/promote_impl.h).
 * The fields are explained in docs/promotion.md, "What a report means".
 */
#include "tools/promote_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

/* A finite number, or null (an interval of a single sample is unbounded). */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *interval_json(const ev_interval *iv)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "est", num(iv->est), "lo", num(iv->lo), "hi",
                     num(iv->hi), "se", num(iv->se));
}

static json_t *estimates_json(const ev_interval v[EV_N_ESTIMATORS])
{
    json_t *o = json_object();
    for (int k = 0; o != NULL && k < EV_N_ESTIMATORS; k++) {
        json_object_set_new(o, ev_estimator_name((ev_estimator)k), interval_json(&v[k]));
    }
    return o;
}

static json_t *policy_json(const ev_policy_report *p, size_t n)
{
    json_t *o = estimates_json(p->v);
    if (o != NULL) {
        json_object_set_new(o, "ess", num(p->ess));
        json_object_set_new(o, "ess_fraction", num(n > 0 ? p->ess / (double)n : 0.0));
        json_object_set_new(o, "max_weight", num(p->max_weight));
        json_object_set_new(o, "mean_weight", num(p->mean_weight));
        json_object_set_new(o, "unsupported_mass", num(p->unsupported_mass));
    }
    return o;
}

/* What rlfeed promote knows of a snapshot; null for the base model. */
static json_t *snapshot_json(const base_snapshot *m)
{
    if (m == NULL) {
        return json_null();
    }
    return json_pack("{s:I, s:I, s:s, s:I, s:s, s:s, s:s, s:I}", "version", (json_int_t)m->version,
                     "n_updates", (json_int_t)m->n_updates, "learner", m->learner, "n_params",
                     (json_int_t)m->n_params, "last_joined_id", m->last_joined_id, "spec_version",
                     m->spec_version, "base_version", m->base_version, "ts_ms",
                     (json_int_t)m->ts_ms);
}

static const char *interval_name(ev_interval_kind k)
{
    return k == EV_BOOTSTRAP ? "bootstrap-t" : k == EV_NORMAL ? "normal" : "percentile";
}

json_t *promote_report_json(const promote_run *r)
{
    char when[40];
    const promote_opts *o = &r->o;
    regcmd_iso8601(r->started_ms, when, sizeof(when));

    json_t *skipped = json_object();
    for (int k = 0; skipped != NULL && k < PROMOTE_SKIP_N; k++) {
        json_object_set_new(skipped, promote_skip_name((promote_skip)k),
                            json_integer((json_int_t)r->skipped[k]));
    }
    json_t *est = json_null();
    if (r->evaluated) {
        est = json_pack("{s:o, s:o, s:o}", "candidate", policy_json(&r->report.pol[0], r->n_ex),
                        "production", policy_json(&r->report.pol[1], r->n_ex), "difference",
                        estimates_json(r->report.diff));
    }
    json_t *gate = json_pack(
        "{s:s, s:o, s:I, s:o, s:o}", "estimator", ev_estimator_name(r->gate.estimator), "margin",
        num(r->gate.margin), "min_samples", (json_int_t)r->gate.min_samples, "max_unsupported",
        num(r->gate.max_unsupported), "min_ess_fraction", num(r->gate.min_ess_fraction));
    json_t *j = json_pack(
        "{s:s, s:I, s:I, s:o, s:o, s:s, s:I, s:s, s:s, s:s, s:b, s:I, s:I, s:o, s:o, s:I}",
        "policy", o->c.policy, "candidate", (json_int_t)r->candidate, "production",
        (json_int_t)r->production, "candidate_snapshot", snapshot_json(r->cand_snap),
        "production_snapshot", snapshot_json(r->prod_snap), "window", o->window_text, "window_ms",
        (json_int_t)o->window_ms, "from_id", r->from_id, "to_id", r->to_id, "spec_version",
        r->spec_in_force, "holdout", o->holdout, "read", (json_int_t)r->n_read, "n",
        (json_int_t)r->n_ex, "skipped", skipped != NULL ? skipped : json_null(), "in_sample",
        num(r->n_ex > 0 ? (double)r->n_in_sample / (double)r->n_ex : 0.0), "in_sample_n",
        (json_int_t)r->n_in_sample);
    if (j == NULL) {
        json_decref(est);
        json_decref(gate);
        return NULL;
    }
    json_object_set_new(j, "estimates", est);
    json_object_set_new(j, "logged_value",
                        r->evaluated ? num(r->report.logged_value) : json_null());
    json_object_set_new(j, "min_propensity",
                        r->evaluated ? num(r->report.min_propensity) : json_null());
    json_object_set_new(j, "confidence", num(o->confidence));
    json_object_set_new(j, "interval", json_string(interval_name(r->eval_cfg.interval)));
    json_object_set_new(j, "n_boot", json_integer((json_int_t)r->eval_cfg.n_boot));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "gate", gate != NULL ? gate : json_null());
    json_object_set_new(j, "verdict", json_string(promote_verdict_name(r->verdict)));
    json_object_set_new(j, "reason", json_string(r->reason));
    json_object_set_new(j, "who", json_string(o->c.who));
    json_object_set_new(j, "when", json_string(when));
    json_object_set_new(j, "dry_run", json_boolean(o->dry_run));
    return j;
}

/* ---- the table ------------------------------------------------------------- */

static void cell(FILE *f, const ev_interval *iv)
{
    if (isfinite(iv->lo) && isfinite(iv->hi)) {
        fprintf(f, "  %8.4f [%8.4f, %8.4f]", iv->est, iv->lo, iv->hi);
    } else {
        fprintf(f, "  %8.4f [%8s, %8s]", iv->est, "-inf", "inf");
    }
}

void promote_print_table(const promote_run *r, FILE *f)
{
    char a[32], b[32];
    const ev_report *rep = &r->report;

    fprintf(f, "rlfeed promote: policy %s, candidate %s vs production %s\n", r->o.c.policy,
            r->candidate == 0 ? "none" : regcmd_version_text(r->candidate, a, sizeof(a)),
            regcmd_version_text(r->production, b, sizeof(b)));
    if (r->to_id[0] != '\0') {
        fprintf(f, "window %s (%s .. %s), reward spec %s%s\n", r->o.window_text, r->from_id,
                r->to_id, r->spec_in_force, r->o.holdout ? ", holdout" : "");
        fprintf(f, "examples: %zu read, %zu used; skipped:", r->n_read, r->n_ex);
        for (int k = 0; k < PROMOTE_SKIP_N; k++) {
            fprintf(f, " %s %zu", promote_skip_name((promote_skip)k), r->skipped[k]);
        }
        fprintf(f, "\n");
        fprintf(f, "in sample: %.1f%% of used examples (%zu) are ones the candidate learned from\n",
                r->n_ex > 0 ? 100.0 * (double)r->n_in_sample / (double)r->n_ex : 0.0,
                r->n_in_sample);
        if (r->n_in_sample > 0 && r->cand_snap != NULL) {
            fprintf(f,
                    "  its estimate is optimistic, roughly by p/n (p = %u parameters): "
                    "--holdout evaluates only later examples\n",
                    r->cand_snap->n_params);
        }
    }
    if (r->evaluated) {
        fprintf(f, "\n%-9s  %-29s  %-29s  %-29s\n", "", "candidate   est [lo, hi]",
                "production  est [lo, hi]", "difference  est [lo, hi]");
        for (int k = 0; k < EV_N_ESTIMATORS; k++) {
            fprintf(f, "%-9s", ev_estimator_name((ev_estimator)k));
            cell(f, &rep->pol[0].v[k]);
            cell(f, &rep->pol[1].v[k]);
            cell(f, &rep->diff[k]);
            fprintf(f, "%s\n", (ev_estimator)k == r->gate.estimator ? "  <- gate" : "");
        }
        for (int i = 0; i < 2; i++) {
            const ev_policy_report *p = &rep->pol[i];
            fprintf(f,
                    "%-10s ESS %.1f (%.1f%% of n), max weight %.3g, mean weight %.4f, "
                    "unsupported mass %.4f\n",
                    i == 0 ? "candidate" : "production", p->ess, 100.0 * p->ess / (double)rep->n,
                    p->max_weight, p->mean_weight, p->unsupported_mass);
        }
        fprintf(f, "logged value %.4f, min propensity %.4g, %.0f%% %s intervals (%u resamples)\n",
                rep->logged_value, rep->min_propensity, 100.0 * r->o.confidence,
                interval_name(r->eval_cfg.interval), r->eval_cfg.n_boot);
    }
    fprintf(f, "gate: %s, margin %g, min samples %zu, max unsupported %g, min ESS fraction %g\n",
            ev_estimator_name(r->gate.estimator), r->gate.margin, r->gate.min_samples,
            r->gate.max_unsupported, r->gate.min_ess_fraction);
    fprintf(f, "verdict: %s%s\nreason: %s\n", promote_verdict_name(r->verdict),
            r->o.dry_run ? " (dry run: nothing recorded)" : "", r->reason);
}

/* ---- the plot -------------------------------------------------------------- */

#define SVG_W 640
#define SVG_H 360
#define SVG_L 70  /* left margin: the axis labels */
#define SVG_R 150 /* right margin: the legend */
#define SVG_T 50
#define SVG_B 40

/* @s with &, <, >, " escaped, into @out. */
static const char *xml(const char *s, char *out, size_t size)
{
    size_t k = 0;
    for (; *s != '\0' && k + 7 < size; s++) {
        const char *rep = *s == '&'   ? "&amp;"
                          : *s == '<' ? "&lt;"
                          : *s == '>' ? "&gt;"
                          : *s == '"' ? "&quot;"
                                      : NULL;
        if (rep != NULL) {
            size_t n = strlen(rep);
            memcpy(out + k, rep, n);
            k += n;
        } else {
            out[k++] = *s;
        }
    }
    out[k] = '\0';
    return out;
}

static double y_of(double v, double lo, double hi)
{
    return SVG_T + (hi - v) / (hi - lo) * (SVG_H - SVG_T - SVG_B);
}

bool promote_write_svg(const promote_run *r, const char *path)
{
    const char *color[2] = {"#1f6fb4", "#888888"};
    const char *label[2] = {"candidate", "production"};
    char name[4 * BASE_NAME_MAX + 8], a[32], b[32];
    double lo = INFINITY, hi = -INFINITY;

    if (!r->evaluated) {
        fprintf(stderr, "rlfeed promote: no estimates to plot (%s)\n", r->reason);
        return false;
    }
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < EV_N_ESTIMATORS; k++) {
            const ev_interval *iv = &r->report.pol[i].v[k];
            const double v[3] = {iv->est, iv->lo, iv->hi};
            for (int m = 0; m < 3; m++) {
                if (isfinite(v[m])) {
                    lo = v[m] < lo ? v[m] : lo;
                    hi = v[m] > hi ? v[m] : hi;
                }
            }
        }
    }
    if (!(hi > lo)) {
        lo = isfinite(lo) ? lo - 0.5 : 0.0;
        hi = lo + 1.0;
    }
    double pad = 0.08 * (hi - lo);
    lo -= pad;
    hi += pad;
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "rlfeed promote: cannot write %s\n", path);
        return false;
    }
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            SVG_W, SVG_H);
    fprintf(f,
            "<text x=\"%d\" y=\"20\" font-size=\"14\">%s: candidate %s vs production %s</text>\n"
            "<text x=\"%d\" y=\"38\" fill=\"#444\">n %zu, %.0f%% intervals, verdict %s</text>\n",
            SVG_L, xml(r->o.c.policy, name, sizeof(name)),
            regcmd_version_text(r->candidate, a, sizeof(a)),
            regcmd_version_text(r->production, b, sizeof(b)), SVG_L, r->n_ex,
            100.0 * r->o.confidence, promote_verdict_name(r->verdict));
    /* The value axis with five ticks. */
    int x0 = SVG_L, x1 = SVG_W - SVG_R;
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x0, SVG_T, x0,
            SVG_H - SVG_B);
    for (int t = 0; t <= 4; t++) {
        double v = lo + (hi - lo) * t / 4.0;
        double y = y_of(v, lo, hi);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>\n",
                x0, y, x1, y, x0 - 6, y + 4, v);
    }
    /* One group per estimator: the candidate left, production right, lo..hi whiskers. */
    double group = (double)(x1 - x0) / EV_N_ESTIMATORS;
    for (int k = 0; k < EV_N_ESTIMATORS; k++) {
        double cx = x0 + group * (k + 0.5);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\"%s>%s</text>\n", cx,
                SVG_H - SVG_B + 18,
                (ev_estimator)k == r->gate.estimator ? " font-weight=\"bold\"" : "",
                ev_estimator_name((ev_estimator)k));
        for (int i = 0; i < 2; i++) {
            const ev_interval *iv = &r->report.pol[i].v[k];
            double x = cx + (i == 0 ? -14.0 : 14.0);
            double ylo = y_of(isfinite(iv->lo) ? iv->lo : lo, lo, hi);
            double yhi = y_of(isfinite(iv->hi) ? iv->hi : hi, lo, hi);
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"2\"/>\n"
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n"
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n"
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n",
                    x, ylo, x, yhi, color[i], x - 5, ylo, x + 5, ylo, color[i], x - 5, yhi, x + 5,
                    yhi, color[i], x, y_of(iv->est, lo, hi), color[i]);
        }
    }
    for (int i = 0; i < 2; i++) {
        fprintf(f,
                "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/>\n"
                "<text x=\"%d\" y=\"%d\">%s</text>\n",
                x1 + 20, SVG_T + 10 + 20 * i, color[i], x1 + 30, SVG_T + 14 + 20 * i, label[i]);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#444\">logged value %.3f</text>\n", x1 + 20,
            SVG_T + 60, r->report.logged_value);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "rlfeed promote: cannot write %s\n", path);
        return false;
    }
    return true;
}
