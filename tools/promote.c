/* rlfeed promote: options, the run, and the registry change (tools/promote.h). */
#include "tools/promote.h"
#include "tools/promote_impl.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

/* The options that take a value, in the order parse_value() handles them. */
static const char *const value_opts[] = {
    "--window",      "--estimator", "--confidence", "--margin", "--min-samples",
    "--max-samples", "--candidate", "--seed",       "--plot",
};

/* Option @k of value_opts with value @v into @r. Return: false if @v is not valid. */
static bool parse_value(promote_run *r, size_t k, const char *v)
{
    promote_opts *o = &r->o;
    uint64_t u = 0;
    bool ok = false;

    switch (k) {
    case 0:
        ok = regcmd_parse_duration(v, &o->window_ms);
        o->window_text = v;
        break;
    case 1:
        ok = ev_estimator_from_name(v, &r->gate.estimator);
        break;
    case 2:
        ok = regcmd_parse_double(v, &o->confidence) && o->confidence > 0.0 && o->confidence < 1.0;
        break;
    case 3:
        ok = regcmd_parse_double(v, &r->gate.margin);
        break;
    case 4:
    case 5:
        ok = regcmd_parse_u64(v, &u) && u >= 1 && u <= PROMOTE_MAX_SAMPLES_CAP;
        *(k == 4 ? &o->min_samples : &o->max_samples) = (size_t)u;
        break;
    case 6:
        ok = regcmd_parse_u64(v, &o->candidate) && o->candidate > 0;
        o->have_candidate = true;
        break;
    case 7:
        ok = regcmd_parse_u64(v, &o->seed);
        break;
    default:
        ok = v[0] != '\0';
        o->plot_path = v;
        break;
    }
    return ok;
}

/* Parse the arguments into r->o, r->gate and r->eval_cfg. Return: false after printing why. */
static bool parse_args(promote_run *r, int argc, char **argv)
{
    promote_opts *o = &r->o;

    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        int rc = regcmd_take_common(&o->c, argc, argv, &i);
        size_t k = 0;
        if (rc == 0 && strcmp(argv[i], "--dry-run") == 0) {
            o->dry_run = true;
            rc = 1;
        } else if (rc == 0 && strcmp(argv[i], "--holdout") == 0) {
            o->holdout = true;
            rc = 1;
        }
        for (; rc == 0 && k < sizeof(value_opts) / sizeof(value_opts[0]); k++) {
            rc = regcmd_opt(o->c.cmd, argc, argv, &i, value_opts[k], &v);
            if (rc == 1 && !parse_value(r, k, v)) {
                fprintf(stderr, "rlfeed promote: bad %s '%s'\n", value_opts[k], v);
                rc = -1;
            }
        }
        if (rc == 0) {
            fprintf(stderr, "rlfeed promote: unknown argument '%s'\n", argv[i]);
        }
        if (rc != 1) {
            return false;
        }
    }
    if (o->min_samples > o->max_samples) {
        fprintf(stderr,
                "rlfeed promote: --min-samples %zu above --max-samples %zu can never be met\n",
                o->min_samples, o->max_samples);
        return false;
    }
    r->gate.min_samples = o->min_samples;
    r->eval_cfg.confidence = o->confidence;
    r->eval_cfg.seed = o->seed;
    return regcmd_finish_common(&o->c);
}

static int exit_code(ev_verdict v)
{
    return v == EV_PROMOTE ? REGCMD_EXIT_OK : v == EV_HOLD ? REGCMD_EXIT_HOLD : REGCMD_EXIT_NOT_FIT;
}

/*
 * Record the decision: PROMOTE moves production from the version evaluated
 * against to the candidate; HOLD and NOT_FIT append the audit entry alone.
 * Return: the exit status.
 */
static int commit(promote_run *r, sto_store *s, const char *report, char *out_id)
{
    char from[24], to[24];
    bool move = r->verdict == EV_PROMOTE;
    (void)snprintf(from, sizeof(from), "%llu", (unsigned long long)r->production); /* fits */
    (void)snprintf(to, sizeof(to), "%llu", (unsigned long long)r->candidate);      /* fits */
    sto_field fields[] = {
        {"action", "promote"},
        {"who", r->o.c.who},
        {"verdict", promote_verdict_name(r->verdict)},
        {"estimator", ev_estimator_name(r->gate.estimator)},
        {"reason", r->reason},
        {"report", report},
        {"from", from},
        {"to", to},
    };
    /* A refusal names production too: it is recorded only if production is still that. */
    sto_change ch = {.move = move,
                     .check = true,
                     .expect = r->production,
                     .to = r->candidate,
                     .fields = fields,
                     .n_fields = move ? 6 : 8}; /* a move's from/to are the script's */
    sto_change_result res;
    uint64_t now = 0;
    base_err e = sto_registry_change(s, r->o.c.policy, &ch, &res, &now, out_id);
    if (e != BASE_OK) {
        char words[256];
        fprintf(stderr, "rlfeed promote: the registry change failed: %s%s\n",
                sto_store_strerror(s, e, words, sizeof(words)),
                e == BASE_EIO ? " (it may or may not have happened: rlfeed history tells)" : "");
        return REGCMD_EXIT_ERROR;
    }
    if (res == STO_CONFLICT) {
        fprintf(stderr,
                "rlfeed promote: production moved during evaluation (%llu, now %llu): nothing "
                "recorded; rerun\n",
                (unsigned long long)r->production, (unsigned long long)now);
        return REGCMD_EXIT_ERROR;
    }
    if (res == STO_MISSING) {
        fprintf(stderr, "rlfeed promote: candidate snapshot %llu disappeared: rerun\n",
                (unsigned long long)r->candidate);
        return REGCMD_EXIT_ERROR;
    }
    return exit_code(r->verdict);
}

int rlfeed_promote_main(int argc, char **argv)
{
    promote_run r;
    sto_store *s = NULL;
    json_t *report = NULL;
    char *report_text = NULL;
    char audit_id[BASE_STREAM_ID_MAX + 1] = "";
    int status = REGCMD_EXIT_ERROR;

    memset(&r, 0, sizeof(r));
    r.o.c.cmd = "promote";
    ev_gate_config_default(&r.gate);
    ev_config_default(&r.eval_cfg);
    r.o.window_text = "24h";
    r.o.window_ms = PROMOTE_DEFAULT_WINDOW_MS;
    r.o.confidence = r.eval_cfg.confidence;
    r.o.seed = r.eval_cfg.seed;
    r.o.min_samples = r.gate.min_samples;
    r.o.max_samples = PROMOTE_DEFAULT_MAX_SAMPLES;
    if (!parse_args(&r, argc, argv)) {
        goto done;
    }
    s = regcmd_open_policy(&r.o.c);
    if (s == NULL) {
        goto done;
    }
    r.started_ms = regcmd_now_ms();
    if (promote_load(&r, s) != BASE_OK) {
        goto done;
    }
    bool already = r.decided && r.verdict == EV_HOLD;
    if (!r.decided && promote_read(&r, s) != BASE_OK) {
        goto done;
    }
    if (!r.decided && promote_evaluate(&r) != BASE_OK) {
        goto done;
    }
    report = promote_report_json(&r);
    report_text = report != NULL ? json_dumps(report, JSON_COMPACT) : NULL;
    if (report_text == NULL) {
        fprintf(stderr, "rlfeed promote: out of memory for the report\n");
        goto done;
    }
    /* The plot first: a plot that cannot be written fails the run before anything is recorded. */
    if (r.o.plot_path != NULL && !r.evaluated) {
        fprintf(stderr, "rlfeed promote: no plot: nothing was estimated (%s)\n", r.reason);
    } else if (r.o.plot_path != NULL && !promote_write_svg(&r, r.o.plot_path)) {
        goto done;
    }
    if (already || r.o.dry_run) {
        status = exit_code(r.verdict); /* nothing to record */
    } else {
        status = commit(&r, s, report_text, audit_id);
    }
    if (status == REGCMD_EXIT_ERROR) {
        /* Nothing recorded (or, after an I/O error, unknown: stderr says to read the history):
         * no report that reads as a decision. */
        goto done;
    }
    if (r.o.c.json) {
        json_object_set_new(report, "audit_id",
                            audit_id[0] != '\0' ? json_string(audit_id) : json_null());
        char *text = json_dumps(report, JSON_COMPACT);
        printf("%s\n", text != NULL ? text : report_text);
        base_free(text);
    } else {
        promote_print_table(&r, stdout);
        if (audit_id[0] != '\0') {
            printf("audit entry %s\n", audit_id);
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "rlfeed promote: cannot write the report to stdout\n");
    }
done:
    base_free(report_text); /* jansson allocates through base_alloc (set in main) */
    json_decref(report);
    sto_store_close(s);
    promote_run_fini(&r);
    return status;
}
