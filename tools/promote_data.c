/*
 * rlfeed promote's data: the registry, the two snapshots and their heads,
 * the joined window, and the evaluation (tools/promote_impl.h).
 */
#include "tools/promote_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "storage/streamid.h"

static const char *const skip_names[PROMOTE_SKIP_N] = {
    "unknown", "spec_version", "shape", "bad_pmf", "in_sample", "older",
};

const char *promote_skip_name(promote_skip k)
{
    return (unsigned)k < PROMOTE_SKIP_N ? skip_names[k] : "unknown";
}

const char *promote_verdict_name(ev_verdict v)
{
    switch (v) {
    case EV_PROMOTE:
        return "promote";
    case EV_HOLD:
        return "hold";
    case EV_NOT_FIT:
        return "not_fit";
    }
    return "unknown";
}

void promote_not_fit(promote_run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(r->reason, sizeof(r->reason), fmt, ap); /* cut: one line for a person */
    va_end(ap);
    r->decided = true;
    r->verdict = EV_NOT_FIT;
}

/* Load snapshot @v of the policy into *out; an error (printed) if absent or unreadable. */
static base_err load_snapshot(promote_run *r, sto_store *s, uint64_t v, const char *role,
                              base_snapshot **out)
{
    bool found = false;
    base_err e = sto_store_model_get(s, r->o.c.policy, v, out, &found);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed promote: cannot read %s snapshot %llu: %s\n", role,
                (unsigned long long)v, base_strerror(e));
    } else if (!found) {
        fprintf(stderr, "rlfeed promote: %s snapshot %llu does not exist\n", role,
                (unsigned long long)v);
        e = BASE_EINVAL;
    }
    return e;
}

base_err promote_load(promote_run *r, sto_store *s)
{
    const char *p = r->o.c.policy;
    pol_head_config cand_cfg, prod_cfg;
    sto_entry *newest = NULL;
    bool found = false;

    base_err e = sto_registry_get(s, p, &r->reg);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed promote: cannot read the registry of %s: %s\n", p,
                base_strerror(e));
        return e;
    }
    r->production = r->reg.production;
    r->candidate = r->o.have_candidate ? r->o.candidate : r->reg.online;
    if (r->candidate == 0) {
        /* A policy whose online head has not checkpointed yet: not enough data, not an error. */
        promote_not_fit(r, "no candidate yet: the registry of %s names no online snapshot", p);
        return BASE_OK;
    }
    if (r->candidate == r->production) {
        (void)snprintf(r->reason, sizeof(r->reason), "already production");
        r->decided = true;
        r->verdict = EV_HOLD;
        return BASE_OK;
    }
    e = load_snapshot(r, s, r->candidate, "candidate", &r->cand_snap);
    if (e == BASE_OK && r->production != 0) {
        e = load_snapshot(r, s, r->production, "production", &r->prod_snap);
    }
    /* The action list in force: the newest checkpoint's (the daemon's list when it took it). */
    char in_force[sizeof(r->cand_snap->actions_hash)] = "";
    if (e == BASE_OK && r->reg.online != 0 && r->reg.online != r->candidate) {
        base_snapshot *online = NULL;
        bool have = false;
        base_err oe = sto_store_model_get(s, p, r->reg.online, &online, &have);
        if (oe == BASE_OK && have) {
            memcpy(in_force, online->actions_hash, sizeof(in_force));
        } else {
            /* Not a reason to refuse: it only cannot be checked (as for older snapshots). */
            fprintf(stderr,
                    "rlfeed promote: the newest checkpoint (online %llu) %s: the candidate's "
                    "action list is not checked against it\n",
                    (unsigned long long)r->reg.online,
                    oe != BASE_OK ? base_strerror(oe) : "does not exist");
        }
        base_snapshot_free(online);
    } else if (e == BASE_OK) {
        memcpy(in_force, r->cand_snap->actions_hash, sizeof(in_force));
    }
    if (e == BASE_OK) {
        e = sto_store_read_newest(s, STO_JOINED, p, &newest, &found);
        if (e != BASE_OK) {
            char words[256];
            fprintf(stderr, "rlfeed promote: cannot read the joined stream: %s\n",
                    sto_store_strerror(s, e, words, sizeof(words)));
        }
    }
    if (e != BASE_OK) {
        return e;
    }
    if (found) {
        const base_joined *j = newest->rec;
        (void)snprintf(r->spec_in_force, sizeof(r->spec_in_force), "%s", j->spec_version);
        (void)snprintf(r->to_id, sizeof(r->to_id), "%s", newest->id);
        sto_entries_free(STO_JOINED, newest, 1);
    }

    const base_snapshot *c = r->cand_snap, *q = r->prod_snap;
    if (pol_head_config_from_snapshot(c, &cand_cfg) != BASE_OK) {
        promote_not_fit(r,
                        "candidate snapshot %llu records no head settings (written before "
                        "they were recorded): it cannot be rebuilt",
                        (unsigned long long)r->candidate);
    } else if (q != NULL && pol_head_config_from_snapshot(q, &prod_cfg) != BASE_OK) {
        promote_not_fit(r,
                        "production snapshot %llu records no head settings: it cannot be "
                        "rebuilt; roll back or promote by hand",
                        (unsigned long long)r->production);
    } else if (q != NULL && !base_snapshot_same_shape(q, c)) {
        promote_not_fit(r,
                        "shape mismatch: candidate dim %u, %u actions, action_dim %u; production "
                        "dim %u, %u actions, action_dim %u",
                        c->dim, c->n_actions, c->settings.action_dim, q->dim, q->n_actions,
                        q->settings.action_dim);
    } else if (q != NULL && base_actions_differ(q->actions_hash, c->actions_hash)) {
        promote_not_fit(r,
                        "action list mismatch: candidate and production were learned for "
                        "different action names or orders (%s, %s)",
                        c->actions_hash, q->actions_hash);
    } else if (base_actions_differ(in_force, c->actions_hash)) {
        promote_not_fit(r,
                        "action list mismatch: candidate %llu was learned for other action names "
                        "or another order (%s) than the newest checkpoint, %llu (%s)",
                        (unsigned long long)r->candidate, c->actions_hash,
                        (unsigned long long)r->reg.online, in_force);
    } else if (q != NULL && strcmp(q->base_version, c->base_version) != 0) {
        promote_not_fit(r,
                        "base model mismatch: candidate trained against '%s', production "
                        "against '%s'",
                        c->base_version, q->base_version);
    } else if (!found) {
        promote_not_fit(r, "no joined examples: the reward spec in force is unknown");
    } else if (strcmp(c->spec_version, r->spec_in_force) != 0) {
        promote_not_fit(r, "candidate learned under reward spec '%s', the spec in force is '%s'",
                        c->spec_version, r->spec_in_force);
    }
    if (r->decided) {
        return BASE_OK;
    }
    e = pol_head_from_snapshot(c, &r->cand_head);
    if (e == BASE_OK) {
        e = q != NULL ? pol_head_from_snapshot(q, &r->prod_head)
                      : pol_head_new(&cand_cfg, &r->prod_head); /* the base model */
    }
    if (e != BASE_OK) {
        promote_not_fit(r, "cannot rebuild the %s head: %s",
                        r->cand_head == NULL ? "candidate" : "production", base_strerror(e));
    }
    return BASE_OK;
}

static void example_fini(promote_example *x)
{
    base_joined_free(x->j);
    base_free(x->target);
    x->j = NULL;
    x->target = NULL;
}

/* A logged pmf the estimators can divide by: entries in [0, 1], sum 1, chosen > 0. */
static bool logged_pmf_ok(const base_decision *d)
{
    double sum = 0.0;
    for (uint32_t i = 0; i < d->n_cand; i++) {
        float p = d->pmf[i];
        if (!(p >= 0.0f && p <= 1.0f)) {
            return false;
        }
        sum += p;
    }
    return fabs(sum - 1.0) <= PROMOTE_PMF_TOL && d->chosen < d->n_cand && d->pmf[d->chosen] > 0.0f;
}

/* Classify and score one joined example; takes @j. BASE_ENOMEM is the only error. */
static base_err consider(promote_run *r, const char *id, base_joined *j)
{
    const base_decision *d = j->decision;
    float *target = NULL;
    promote_skip skip = PROMOTE_SKIP_N;
    bool in_sample = r->cand_snap->last_joined_id[0] != '\0' &&
                     sto_sid_cmp_text(id, r->cand_snap->last_joined_id) <= 0;

    if (j->unknown) {
        skip = PROMOTE_SKIP_UNKNOWN;
    } else if (strcmp(j->spec_version, r->spec_in_force) != 0) {
        skip = PROMOTE_SKIP_SPEC;
    } else if (r->o.holdout && in_sample) {
        skip = PROMOTE_SKIP_IN_SAMPLE;
    } else if (d->dim != r->cand_snap->dim ||
               base_actions_differ(d->actions_hash, r->cand_snap->actions_hash)) {
        skip = PROMOTE_SKIP_SHAPE; /* another length, or indexes naming another action list */
    } else if (!logged_pmf_ok(d)) {
        skip = PROMOTE_SKIP_PMF;
    } else {
        target = base_alloc_array(2 * (size_t)d->n_cand, sizeof(float));
        if (target == NULL) {
            base_joined_free(j);
            return BASE_ENOMEM;
        }
        if (pol_head_pmf(r->cand_head, d->embedding, d->n_cand, d->action, d->base_logit, target) !=
                BASE_OK ||
            pol_head_pmf(r->prod_head, d->embedding, d->n_cand, d->action, d->base_logit,
                         target + d->n_cand) != BASE_OK) {
            skip = PROMOTE_SKIP_SHAPE; /* an action out of range, or a non-finite input */
        }
    }
    if (skip != PROMOTE_SKIP_N) {
        r->skipped[skip]++;
        base_free(target);
        base_joined_free(j);
        return BASE_OK;
    }
    /* The ring keeps the newest max_samples: a full ring drops its oldest. */
    size_t slot;
    if (r->n_ex == r->ex_cap) {
        slot = r->ex_head;
        r->n_in_sample -= r->ex[slot].in_sample;
        example_fini(&r->ex[slot]);
        r->ex_head = (r->ex_head + 1) % r->ex_cap;
        r->skipped[PROMOTE_SKIP_OLDER]++;
    } else {
        slot = (r->ex_head + r->n_ex) % r->ex_cap;
        r->n_ex++;
    }
    promote_example *x = &r->ex[slot];
    x->j = j;
    x->target = target;
    x->fold_key = base_hash64(d->event_id, strlen(d->event_id), 0);
    x->in_sample = in_sample;
    r->n_in_sample += in_sample;
    return BASE_OK;
}

static void reverse(promote_example *a, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        promote_example t = a[i];
        a[i] = a[n - 1 - i];
        a[n - 1 - i] = t;
    }
}

/*
 * Rotate the ring so that the oldest kept example is ex[0] (three
 * reversals: O(n), no memory). The head moves only once the ring is full.
 */
static void linearize(promote_run *r)
{
    size_t h = r->ex_head;
    if (h != 0) {
        reverse(r->ex, h);
        reverse(r->ex + h, r->ex_cap - h);
        reverse(r->ex, r->ex_cap);
        r->ex_head = 0;
    }
}

base_err promote_read(promote_run *r, sto_store *s)
{
    char after[BASE_STREAM_ID_MAX + 1];
    sto_entry *ents = NULL;
    size_t got = 0;
    bool done = false;
    base_err e = BASE_OK;
    int64_t start_ms = r->started_ms - r->o.window_ms;

    r->ex_cap = r->o.max_samples;
    r->ex = base_alloc_zero(r->ex_cap, sizeof(*r->ex));
    if (r->ex == NULL) {
        fprintf(stderr, "rlfeed promote: out of memory for %zu examples\n", r->ex_cap);
        return BASE_ENOMEM;
    }
    (void)snprintf(r->from_id, sizeof(r->from_id), "%lld-0",
                   (long long)(start_ms > 0 ? start_ms : 0)); /* fits */
    (void)snprintf(after, sizeof(after), "%s", r->from_id);
    while (!done && e == BASE_OK) {
        e = sto_store_read(s, STO_JOINED, r->o.c.policy, after, PROMOTE_READ_BATCH, &ents, &got);
        if (e != BASE_OK) {
            char words[256];
            fprintf(stderr, "rlfeed promote: cannot read the joined stream after %s: %s\n", after,
                    sto_store_strerror(s, e, words, sizeof(words)));
            break;
        }
        done = got < PROMOTE_READ_BATCH;
        for (size_t i = 0; i < got && e == BASE_OK; i++) {
            if (sto_sid_cmp_text(ents[i].id, r->to_id) > 0) {
                done = true; /* newer than the newest at the start: tomorrow's window */
                break;
            }
            r->n_read++;
            base_joined *j = ents[i].rec;
            ents[i].rec = NULL;
            e = consider(r, ents[i].id, j);
            (void)snprintf(after, sizeof(after), "%s", ents[i].id); /* <= 48 bytes */
        }
        sto_entries_free(STO_JOINED, ents, got);
        ents = NULL;
        got = 0;
    }
    if (e == BASE_ENOMEM) {
        fprintf(stderr, "rlfeed promote: out of memory reading the window\n");
    }
    linearize(r);
    return e;
}

base_err promote_evaluate(promote_run *r)
{
    char err[256] = "";
    ev_sample *smp = NULL;
    base_err e = BASE_OK;

    if (r->n_ex < r->o.min_samples || r->n_ex == 0) {
        promote_not_fit(r, "%zu usable examples in the window, fewer than --min-samples %zu",
                        r->n_ex, r->o.min_samples);
        return BASE_OK;
    }
    smp = base_alloc_zero(r->n_ex, sizeof(*smp));
    if (smp == NULL) {
        fprintf(stderr, "rlfeed promote: out of memory for %zu samples\n", r->n_ex);
        return BASE_ENOMEM;
    }
    for (size_t i = 0; i < r->n_ex; i++) {
        const promote_example *x = &r->ex[i];
        const base_decision *d = x->j->decision;
        smp[i].n_cand = d->n_cand;
        smp[i].chosen = d->chosen;
        smp[i].logged = d->pmf;
        smp[i].target[0] = x->target;
        smp[i].target[1] = x->target + d->n_cand;
        smp[i].action = d->action;
        smp[i].base_logit = d->base_logit;
        smp[i].x = d->dim > 0 ? d->embedding : NULL;
        smp[i].reward = x->j->reward;
        smp[i].fold_key = x->fold_key;
    }
    r->eval_cfg.dim = r->cand_snap->dim;
    r->eval_cfg.n_actions = r->cand_snap->n_actions;
    e = ev_evaluate(&r->eval_cfg, smp, r->n_ex, &r->report, err, sizeof(err));
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed promote: the evaluation failed: %s: %s\n", base_strerror(e), err);
        goto done;
    }
    r->evaluated = true;
    r->verdict = ev_gate(&r->gate, &r->report, r->reason, sizeof(r->reason));
    r->decided = true;
done:
    base_free(smp);
    return e;
}

void promote_run_fini(promote_run *r)
{
    for (size_t i = 0; r->ex != NULL && i < r->ex_cap; i++) {
        example_fini(&r->ex[i]);
    }
    base_free(r->ex);
    pol_head_free(r->cand_head);
    pol_head_free(r->prod_head);
    base_snapshot_free(r->cand_snap);
    base_snapshot_free(r->prod_snap);
    memset(r, 0, sizeof(*r));
}
