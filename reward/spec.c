#include "reward/spec.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"

static const char *const kind_names[] = {"event", "number", "flag"};
static const char *const agg_names[] = {"sum", "first", "last", "min", "max", "mean"};
static const char *const credit_names[] = {"none", "last", "uniform", "discounted"};

const char *rwd_kind_name(rwd_kind k)
{
    return (unsigned)k < 3 ? kind_names[k] : "unknown";
}

const char *rwd_agg_name(rwd_agg a)
{
    return (unsigned)a < 6 ? agg_names[a] : "unknown";
}

const char *rwd_credit_name(uint32_t c)
{
    return c < 4 ? credit_names[c] : "unknown";
}

static bool lookup(const char *const *names, unsigned n, const char *s, unsigned *out)
{
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            *out = i;
            return true;
        }
    }
    return false;
}

bool rwd_kind_from_name(const char *s, rwd_kind *out)
{
    unsigned i = 0;
    bool ok = lookup(kind_names, 3, s, &i);
    if (ok) {
        *out = (rwd_kind)i;
    }
    return ok;
}

bool rwd_agg_from_name(const char *s, rwd_agg *out)
{
    unsigned i = 0;
    bool ok = lookup(agg_names, 6, s, &i);
    if (ok) {
        *out = (rwd_agg)i;
    }
    return ok;
}

bool rwd_credit_from_name(const char *s, uint32_t *out)
{
    unsigned i = 0;
    bool ok = lookup(credit_names, 4, s, &i) && i != BASE_CREDIT_NONE;
    if (ok) {
        *out = i;
    }
    return ok;
}

void rwd_spec_default(rwd_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->clip_min = -1.0;
    spec->clip_max = 1.0;
    spec->default_reward = 0.0;
    spec->window_ms = 10 * 60 * 1000;
    spec->backward_window_ms = 0;
    spec->late_memory_ms = -1; /* resolved to window_ms by the join */
    spec->credit = BASE_CREDIT_LAST;
    spec->credit_gamma = 0.9;
    spec->max_outcomes = 16;
    spec->user_rate_per_s = 0.0;
    spec->user_burst = 10.0;
}

void rwd_signal_default(rwd_signal *sig, const char *name, rwd_kind kind)
{
    memset(sig, 0, sizeof(*sig));
    (void)base_strlcpy(sig->name, name, sizeof(sig->name));
    sig->kind = kind;
    sig->weight = 1.0;
    sig->min = 0.0;
    sig->max = 1.0;
    sig->map_min = 0.0;
    sig->map_max = 1.0;
    sig->agg = RWD_AGG_SUM;
}

void rwd_signal_unset_range(rwd_signal *sig)
{
    sig->min = NAN;
    sig->max = NAN;
    sig->map_min = NAN;
    sig->map_max = NAN;
}

void rwd_signal_resolve_range(rwd_signal *sig)
{
    sig->min = isnan(sig->min) ? 0.0 : sig->min;
    sig->max = isnan(sig->max) ? 1.0 : sig->max;
    sig->map_min = isnan(sig->map_min) ? sig->min : sig->map_min;
    sig->map_max = isnan(sig->map_max) ? sig->max : sig->map_max;
}

void rwd_spec_find(const rwd_spec *spec, const char *name, uint32_t *out_index, bool *out_found)
{
    *out_found = false;
    for (uint32_t i = 0; i < spec->n_signals; i++) {
        if (strcmp(spec->signal[i].name, name) == 0) {
            *out_index = i;
            *out_found = true;
            return;
        }
    }
}

base_err rwd_spec_validate(const rwd_spec *s, char *why, size_t whylen)
{
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        return BASE_EINVAL;                                                                        \
    } while (0)
    if (s->n_signals > RWD_MAX_SIGNALS) {
        BAD("more than %d signals", RWD_MAX_SIGNALS);
    }
    for (uint32_t i = 0; i < s->n_signals; i++) {
        const rwd_signal *g = &s->signal[i];
        if (g->name[0] == '\0' || memchr(g->name, '\0', sizeof(g->name)) == NULL) {
            BAD("signal %u has no name", i);
        }
        for (uint32_t k = 0; k < i; k++) {
            if (strcmp(s->signal[k].name, g->name) == 0) {
                BAD("signal %s is defined twice", g->name);
            }
        }
        if ((unsigned)g->kind > RWD_FLAG) {
            BAD("signal %s: unknown kind", g->name);
        }
        if ((unsigned)g->agg > RWD_AGG_MEAN) {
            BAD("signal %s: unknown aggregate", g->name);
        }
        if (!isfinite(g->weight)) {
            BAD("signal %s: weight is not finite", g->name);
        }
        if (g->kind == RWD_NUMBER && !(isfinite(g->min) && isfinite(g->max) && g->min < g->max)) {
            BAD("signal %s: needs finite min < max", g->name);
        }
        if (g->kind == RWD_NUMBER && !(isfinite(g->map_min) && isfinite(g->map_max))) {
            BAD("signal %s: map_min and map_max must be finite", g->name);
        }
    }
    if (!(isfinite(s->clip_min) && isfinite(s->clip_max) && s->clip_min <= s->clip_max)) {
        BAD("clip_min and clip_max must be finite, clip_min <= clip_max");
    }
    if (!isfinite(s->default_reward)) {
        BAD("default_reward is not finite");
    }
    if (s->window_ms <= 0) {
        BAD("window_ms must be > 0");
    }
    if (s->backward_window_ms < 0) {
        BAD("backward_window_ms must be >= 0");
    }
    if (s->late_memory_ms < -1) {
        BAD("late_memory_ms must be >= 0 (or -1: window_ms)");
    }
    if (s->credit < BASE_CREDIT_LAST || s->credit > BASE_CREDIT_DISCOUNTED) {
        BAD("credit must be last, uniform or discounted");
    }
    if (!(s->credit_gamma > 0.0 && s->credit_gamma <= 1.0)) {
        BAD("credit_gamma must be in (0, 1]");
    }
    if (s->max_outcomes < 1 || s->max_outcomes > RWD_MAX_OUTCOMES) {
        BAD("max_outcomes must be in 1..%d", RWD_MAX_OUTCOMES);
    }
    if (!(isfinite(s->user_rate_per_s) && s->user_rate_per_s >= 0.0)) {
        BAD("user_rate_per_s must be finite and >= 0");
    }
    if (!(isfinite(s->user_burst) && s->user_burst >= 1.0)) {
        BAD("user_burst must be finite and >= 1");
    }
    if (memchr(s->version, '\0', sizeof(s->version)) == NULL) {
        BAD("version is not terminated");
    }
#undef BAD
    return BASE_OK;
}

/* Append the canonical text of @s to the running hash. */
static uint64_t hash_text(uint64_t h, const char *text)
{
    return base_hash64(text, strlen(text), h);
}

void rwd_spec_version(const rwd_spec *s, char *out, size_t size)
{
    if (s->version[0] != '\0') {
        (void)base_strlcpy(out, s->version, size);
        return;
    }
    /*
     * Every field that changes a reward, printed with round-trip precision.
     * Signal order matters to nobody but is part of the text: reordering
     * signals in the config changes the version (harmless, conservative).
     */
    char line[512];
    uint64_t h = 0x72776473706563ULL; /* "rwdspec" */
    snprintf(line, sizeof(line),
             "clip %.17g %.17g default %.17g unknown %d window %" PRId64 " back %" PRId64
             " credit %u %.17g",
             s->clip_min, s->clip_max, s->default_reward, (int)s->unknown_when_empty, s->window_ms,
             s->backward_window_ms, s->credit, s->credit_gamma);
    h = hash_text(h, line);
    for (uint32_t i = 0; i < s->n_signals; i++) {
        const rwd_signal *g = &s->signal[i];
        snprintf(line, sizeof(line), "signal %s %d %.17g %.17g %.17g %.17g %.17g %d", g->name,
                 (int)g->kind, g->weight, g->min, g->max, g->map_min, g->map_max, (int)g->agg);
        h = hash_text(h, line);
    }
    snprintf(out, size, "h%016" PRIx64, h);
}

base_err rwd_spec_contribution(const rwd_spec *spec, uint32_t index, double value, double *out)
{
    if (index >= spec->n_signals || !isfinite(value)) {
        return BASE_EINVAL;
    }
    const rwd_signal *g = &spec->signal[index];
    double c = 0.0;
    switch (g->kind) {
    case RWD_EVENT:
        if (value != 1.0) {
            return BASE_EINVAL;
        }
        c = g->weight;
        break;
    case RWD_FLAG:
        if (value != 0.0 && value != 1.0) {
            return BASE_EINVAL;
        }
        c = g->weight * value;
        break;
    case RWD_NUMBER:
        if (value < g->min || value > g->max) {
            return BASE_EINVAL;
        }
        c = g->weight *
            (g->map_min + (value - g->min) * (g->map_max - g->map_min) / (g->max - g->min));
        break;
    }
    if (!isfinite(c)) {
        return BASE_EINVAL;
    }
    *out = c;
    return BASE_OK;
}
