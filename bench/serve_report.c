#include "bench/serve_report.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/alloc.h"

/* Which number of a bench_result a median is taken of. */
enum field { F_PER_S, F_P50, F_P99, F_P999 };

static double field_of(const bench_result *r, enum field f)
{
    switch (f) {
    case F_PER_S:
        return r->per_s;
    case F_P50:
        return r->p50_ms;
    case F_P99:
        return r->p99_ms;
    case F_P999:
        return r->p999_ms;
    }
    return 0.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of field @f over @s's runs (the mean of the middle two for an even count). */
static double median(const bench_side *s, enum field f)
{
    double v[BENCH_RUNS_MAX];
    if (s->n_runs == 0) {
        return 0.0;
    }
    for (uint32_t i = 0; i < s->n_runs; i++) {
        v[i] = field_of(&s->run[i], f);
    }
    qsort(v, s->n_runs, sizeof(v[0]), cmp_double);
    uint32_t h = s->n_runs / 2;
    return s->n_runs % 2 == 1 ? v[h] : (v[h - 1] + v[h]) / 2.0;
}

double bench_side_median_rate(const bench_side *s)
{
    return median(s, F_PER_S);
}

static uint64_t errors_of(const bench_side *s)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->n_runs; i++) {
        n += s->run[i].errors;
    }
    return n;
}

static double ratio(double a, double b)
{
    return b > 0.0 ? a / b : 0.0;
}

const char *bench_kind_name(bench_kind k)
{
    static const char *const names[BENCH_KINDS] = {"decide", "pair", "push", "half"};
    return k < BENCH_KINDS ? names[k] : "?";
}

void bench_meta_load(char *out, size_t len)
{
    FILE *fp = fopen("/proc/loadavg", "r");
    char line[128] = "";
    if (fp == NULL || fgets(line, sizeof(line), fp) == NULL) {
        snprintf(out, len, "?");
    } else {
        double a = 0, b = 0, c = 0;
        if (sscanf(line, "%lf %lf %lf", &a, &b, &c) == 3) {
            snprintf(out, len, "%.2f %.2f %.2f", a, b, c);
        } else {
            snprintf(out, len, "?");
        }
    }
    if (fp != NULL) {
        fclose(fp);
    }
}

void bench_meta_probe(bench_meta *m)
{
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) == NULL ||
        strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(m->date, sizeof(m->date), "?");
    }
    snprintf(m->cpu, sizeof(m->cpu), "?");
    FILE *fp = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            colon += colon[1] == ' ' ? 2 : 1;
            snprintf(m->cpu, sizeof(m->cpu), "%.*s", (int)strcspn(colon, "\n"), colon);
            break;
        }
    }
    if (fp != NULL) {
        fclose(fp);
    }
    m->cpus = sysconf(_SC_NPROCESSORS_ONLN);
    bench_meta_load(m->load_start, sizeof(m->load_start));
}

void bench_report_table(FILE *f, const bench_point *pts, size_t n_pts, const bench_sizes *sizes,
                        size_t n_sizes)
{
    fprintf(f, "\nmessage and record sizes (bytes; K = 16 candidates):\n");
    fprintf(f, "%5s %10s %9s %9s %10s %9s\n", "dim", "decide", "reply", "feedback", "decision",
            "outcome");
    for (size_t i = 0; i < n_sizes; i++) {
        const bench_sizes *s = &sizes[i];
        fprintf(f, "%5u %10zu %9zu %9zu %10zu %9zu\n", s->dim, s->decide_request, s->decide_reply,
                s->feedback_request, s->decision_record, s->outcome_record);
    }
    fprintf(f, "\nmedians over the runs; /s = operations per second (pair = decide + acknowledged "
               "feedback);\nlatency ms p50/p99/p999; ratio = rlfeedd / ceiling\n");
    fprintf(f, "%-6s %-3s %4s %3s %-8s | %9s %9s %6s | %-22s | %-22s | %s\n", "kind", "tr", "dim",
            "N", "fsync", "rlfeedd/s", "ceiling/s", "ratio", "rlfeedd p50/p99/p999",
            "ceiling p50/p99/p999", "notes");
    for (size_t i = 0; i < n_pts; i++) {
        const bench_point *p = &pts[i];
        double rl = median(&p->rl, F_PER_S), ce = median(&p->ceil, F_PER_S);
        char rl_lat[48], ce_lat[48], notes[160] = "";
        snprintf(rl_lat, sizeof(rl_lat), "%.3f/%.3f/%.3f", median(&p->rl, F_P50),
                 median(&p->rl, F_P99), median(&p->rl, F_P999));
        snprintf(ce_lat, sizeof(ce_lat), "%.3f/%.3f/%.3f", median(&p->ceil, F_P50),
                 median(&p->ceil, F_P99), median(&p->ceil, F_P999));
        size_t at = 0;
        uint64_t rl_err = errors_of(&p->rl), ce_err = errors_of(&p->ceil);
        if (p->kind == BENCH_PUSH) {
            int w =
                snprintf(notes, sizeof(notes), "counted %llu/%llu sent, sink %llu/%llu",
                         (unsigned long long)p->counted, (unsigned long long)p->sent,
                         (unsigned long long)p->ceil_received, (unsigned long long)p->ceil_sent);
            at = w > 0 && (size_t)w < sizeof(notes) ? (size_t)w : 0;
        }
        if (p->kind == BENCH_HALF) {
            int w = snprintf(notes, sizeof(notes), "paced at %.0f/s", p->rate_per_s);
            at = w > 0 && (size_t)w < sizeof(notes) ? (size_t)w : 0;
        }
        if (p->kind == BENCH_PAIR && p->ceil_tx.n_runs > 0) {
            double tx = median(&p->ceil_tx, F_PER_S);
            int w = snprintf(notes, sizeof(notes), "in transactions %.0f/s, ratio %.3f", tx,
                             ratio(rl, tx));
            at = w > 0 && (size_t)w < sizeof(notes) ? (size_t)w : 0;
            ce_err += errors_of(&p->ceil_tx);
        }
        if (rl_err > 0 || ce_err > 0) {
            snprintf(notes + at, sizeof(notes) - at, "%serrors %llu/%llu", at > 0 ? "; " : "",
                     (unsigned long long)rl_err, (unsigned long long)ce_err);
        }
        fprintf(f, "%-6s %-3s %4u %3u %-8s | %9.0f %9.0f %6.3f | %-22s | %-22s | %s\n",
                bench_kind_name(p->kind), p->transport, p->dim, p->inflight,
                p->kind == BENCH_PAIR ? p->fsync : "-", rl, ce, ratio(rl, ce), rl_lat, ce_lat,
                notes);
    }
    fflush(f);
}

/* Set @key of @o to @v (stolen, also on failure); false if either is NULL or the set failed. */
static bool put(json_t *o, const char *key, json_t *v)
{
    if (o == NULL) {
        json_decref(v);
        return false;
    }
    return v != NULL && json_object_set_new(o, key, v) == 0;
}

static json_t *result_json(const bench_result *r)
{
    json_t *o = json_object();
    bool ok = put(o, "per_s", json_real(r->per_s)) &&
              put(o, "done", json_integer((json_int_t)r->done)) &&
              put(o, "p50_ms", json_real(r->p50_ms)) && put(o, "p99_ms", json_real(r->p99_ms)) &&
              put(o, "p999_ms", json_real(r->p999_ms)) &&
              put(o, "errors", json_integer((json_int_t)r->errors));
    if (ok && r->sent > 0) {
        ok = put(o, "sent", json_integer((json_int_t)r->sent));
    }
    if (ok && r->first_error[0] != '\0') {
        ok = put(o, "first_error", json_string(r->first_error));
    }
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static json_t *side_json(const bench_side *s)
{
    json_t *o = json_object(), *runs = json_array();
    bool ok = put(o, "runs", runs) && put(o, "per_s", json_real(median(s, F_PER_S))) &&
              put(o, "p50_ms", json_real(median(s, F_P50))) &&
              put(o, "p99_ms", json_real(median(s, F_P99))) &&
              put(o, "p999_ms", json_real(median(s, F_P999))) &&
              put(o, "errors", json_integer((json_int_t)errors_of(s)));
    for (uint32_t i = 0; ok && i < s->n_runs; i++) {
        ok = json_array_append_new(runs, result_json(&s->run[i])) == 0;
    }
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static json_t *point_json(const bench_point *p)
{
    json_t *o = json_object(), *r = json_object();
    bool ok =
        put(o, "ratio", r) && put(o, "kind", json_string(bench_kind_name(p->kind))) &&
        put(o, "transport", json_string(p->transport)) && put(o, "dim", json_integer(p->dim)) &&
        put(o, "inflight", json_integer(p->inflight)) &&
        put(o, "appendfsync", json_string(p->fsync)) && put(o, "rlfeedd", side_json(&p->rl)) &&
        put(o, "ceiling", side_json(&p->ceil)) &&
        put(r, "per_s", json_real(ratio(median(&p->rl, F_PER_S), median(&p->ceil, F_PER_S)))) &&
        put(r, "p50", json_real(ratio(median(&p->rl, F_P50), median(&p->ceil, F_P50)))) &&
        put(r, "p99", json_real(ratio(median(&p->rl, F_P99), median(&p->ceil, F_P99)))) &&
        put(r, "p999", json_real(ratio(median(&p->rl, F_P999), median(&p->ceil, F_P999))));
    if (ok && p->kind == BENCH_HALF) {
        ok = put(o, "rate_per_s", json_real(p->rate_per_s));
    }
    if (ok && p->kind == BENCH_PAIR && p->ceil_tx.n_runs > 0) {
        ok = put(o, "ceiling_tx", side_json(&p->ceil_tx)) &&
             put(r, "per_s_tx",
                 json_real(ratio(median(&p->rl, F_PER_S), median(&p->ceil_tx, F_PER_S))));
    }
    if (ok && p->kind == BENCH_PUSH) {
        json_t *q = json_object();
        ok = put(o, "push", q) && put(q, "sent", json_integer((json_int_t)p->sent)) &&
             put(q, "counted", json_integer((json_int_t)p->counted)) &&
             put(q, "matched", json_integer((json_int_t)p->matched)) &&
             put(q, "dropped", json_integer((json_int_t)(p->sent - p->counted))) &&
             put(q, "ceiling_sent", json_integer((json_int_t)p->ceil_sent)) &&
             put(q, "ceiling_received", json_integer((json_int_t)p->ceil_received));
        /* What "counted" was made of: each join status and refusal code seen, by name. */
        json_t *bs = json_object(), *rf = json_object();
        bool have_bs = put(ok ? q : NULL, "by_status", bs); /* put() takes v either way */
        bool have_rf = put(ok ? q : NULL, "refused", rf);
        ok = ok && have_bs && have_rf;
        for (int s = 0; ok && s < PROTO_ST_COUNT; s++) {
            if (p->by_status[s] > 0) {
                ok = put(bs, proto_status_name((proto_status)s),
                         json_integer((json_int_t)p->by_status[s]));
            }
        }
        for (int code = 0; ok && code < PROTO_E_COUNT; code++) {
            if (p->refused[code] > 0) {
                ok = put(rf, proto_errcode_name((proto_errcode)code),
                         json_integer((json_int_t)p->refused[code]));
            }
        }
    }
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static json_t *sizes_json(const bench_sizes *s)
{
    json_t *o = json_object();
    bool ok = put(o, "dim", json_integer(s->dim)) &&
              put(o, "decide_request", json_integer((json_int_t)s->decide_request)) &&
              put(o, "decide_reply", json_integer((json_int_t)s->decide_reply)) &&
              put(o, "feedback_request", json_integer((json_int_t)s->feedback_request)) &&
              put(o, "decision_record", json_integer((json_int_t)s->decision_record)) &&
              put(o, "outcome_record", json_integer((json_int_t)s->outcome_record));
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

base_err bench_report_json(FILE *f, const bench_meta *m, const bench_point *pts, size_t n_pts,
                           const bench_sizes *sizes, size_t n_sizes)
{
    json_t *o = json_object(), *mach = json_object(), *ps = json_array(), *ss = json_array();
    /* The containers go into @o first: from then on @o owns them and they are borrowed. */
    bool ok = put(o, "machine", mach) && put(o, "sizes", ss) && put(o, "points", ps) &&
              put(mach, "cpu", json_string(m->cpu)) && put(mach, "cpus", json_integer(m->cpus)) &&
              put(mach, "load_start", json_string(m->load_start)) &&
              put(mach, "load_end", json_string(m->load_end));
    ok = ok && put(o, "bench", json_string("serve")) && put(o, "date", json_string(m->date));
    ok = ok && put(o, "seconds", json_integer((json_int_t)m->seconds)) &&
         put(o, "warmup_ms", json_integer((json_int_t)m->warmup_ms)) &&
         put(o, "runs", json_integer(m->runs)) && put(o, "contexts", json_integer(m->contexts)) &&
         put(o, "k", json_integer(m->k));
    for (size_t i = 0; ok && i < n_sizes; i++) {
        ok = json_array_append_new(ss, sizes_json(&sizes[i])) == 0;
    }
    for (size_t i = 0; ok && i < n_pts; i++) {
        ok = json_array_append_new(ps, point_json(&pts[i])) == 0;
    }
    char *text =
        ok ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    base_err e = text == NULL ? BASE_ENOMEM : BASE_OK;
    if (text != NULL && (fprintf(f, "%s\n", text) < 0 || fflush(f) != 0)) {
        e = BASE_EIO;
    }
    base_free(text); /* jansson allocates with base_alloc (tools/cli.c) */
    json_decref(o);
    return e;
}
