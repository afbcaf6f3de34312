#ifndef TOOLS_PROMOTE_IMPL_H
#define TOOLS_PROMOTE_IMPL_H

/*
 * The insides of `rlfeed promote` (tools/promote.h), shared by its files:
 * promote.c (options, the run, the registry change), promote_data.c
 * (snapshots, heads, the joined window, the evaluation) and
 * promote_report.c (the report as a table, JSON and SVG).
 *
 * A run: promote_load() -> promote_read() -> promote_evaluate() ->
 * promote_gate(), each only if the one before left the run fit; then the
 * report and the registry change; promote_run_fini() frees everything.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "base/record.h"
#include "eval/ope.h"
#include "policy/head.h"
#include "storage/store.h"
#include "tools/regcmd.h"

#define PROMOTE_REASON_MAX 512
#define PROMOTE_DEFAULT_WINDOW_MS (24LL * 3600 * 1000)
#define PROMOTE_DEFAULT_MAX_SAMPLES 100000u
#define PROMOTE_MAX_SAMPLES_CAP 10000000u /* --max-samples at most */
#define PROMOTE_READ_BATCH 1000u          /* joined entries per XRANGE */
#define PROMOTE_PMF_TOL 1e-3              /* |sum of a logged pmf - 1| allowed */

typedef struct promote_opts {
    regcmd_common c;
    const char *window_text; /* as given, for the report */
    int64_t window_ms;
    ev_estimator estimator;
    double confidence;
    double margin;
    size_t min_samples;
    size_t max_samples;
    uint64_t seed;
    bool have_candidate;
    uint64_t candidate;
    bool dry_run;
    bool holdout;
    const char *plot_path; /* NULL: no plot */
} promote_opts;

/* Why a joined example of the window was not used. */
typedef enum promote_skip {
    PROMOTE_SKIP_UNKNOWN = 0, /* reward "unknown": no outcome, nothing to learn or evaluate */
    PROMOTE_SKIP_SPEC,        /* joined under another reward spec than the one in force */
    PROMOTE_SKIP_SHAPE,       /* dim or actions do not fit the heads, or not scorable */
    PROMOTE_SKIP_PMF,         /* logged pmf invalid or zero at the chosen candidate */
    PROMOTE_SKIP_IN_SAMPLE,   /* --holdout: at or before the candidate's last_joined_id */
    PROMOTE_SKIP_OLDER,       /* usable, but older than the newest --max-samples */
    PROMOTE_SKIP_N,
} promote_skip;

const char *promote_skip_name(promote_skip k);

/* One example kept for evaluation. */
typedef struct promote_example {
    base_joined *j;    /* owned */
    float *target;     /* [2 * n_cand] owned: the candidate's pmf, then production's */
    uint64_t fold_key; /* base_hash64 of the event id */
    bool in_sample;    /* at or before the candidate's last_joined_id: it learned from it */
} promote_example;

typedef struct promote_run {
    promote_opts o;
    int64_t started_ms;
    sto_registry reg;
    uint64_t candidate;       /* the candidate's version */
    uint64_t production;      /* the production version evaluated against (0: base model) */
    base_snapshot *cand_snap; /* owned */
    base_snapshot *prod_snap; /* owned; NULL for the base model */
    pol_head *cand_head;      /* owned */
    pol_head *prod_head;      /* owned */
    char spec_in_force[BASE_NAME_MAX + 1];
    char from_id[BASE_STREAM_ID_MAX + 1]; /* the window starts after this id */
    char to_id[BASE_STREAM_ID_MAX + 1];   /* and ends at this one (the newest at the start) */
    size_t n_read;                        /* joined entries read in the window */
    size_t skipped[PROMOTE_SKIP_N];
    promote_example *ex; /* [n_ex] oldest first (a ring while reading) */
    size_t n_ex;
    size_t ex_cap;
    size_t ex_head; /* ring start while reading; 0 after promote_read() */
    size_t n_in_sample;
    bool evaluated; /* report below is valid */
    ev_report report;
    ev_config eval_cfg;
    ev_gate_config gate;
    bool decided; /* verdict below is valid */
    ev_verdict verdict;
    char reason[PROMOTE_REASON_MAX];
} promote_run;

/* Decide NOT_FIT with the reason printf'd. */
void promote_not_fit(promote_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Registry, snapshots, the spec in force, the heads, and the fitness checks
 * that need no data. Return: BASE_OK (the run may now be decided NOT_FIT,
 * or hold r->reason "already production" with r->decided and EV_HOLD);
 * an error after printing why.
 */
base_err promote_load(promote_run *r, sto_store *s);

/* Read and filter the window. Return: BASE_OK; an error after printing why. */
base_err promote_read(promote_run *r, sto_store *s);

/* ev_evaluate() over the kept examples, then the gate. Return: BASE_OK; an error (printed). */
base_err promote_evaluate(promote_run *r);

void promote_run_fini(promote_run *r);

const char *promote_verdict_name(ev_verdict v);

/* The whole report as a new JSON object; NULL if out of memory. */
json_t *promote_report_json(const promote_run *r);
/* The report for a person. */
void promote_print_table(const promote_run *r, FILE *f);
/* The estimates and their intervals as SVG at @path. Return: false after printing why. */
bool promote_write_svg(const promote_run *r, const char *path);

#endif
