#include "reward/credit.h"

#include <math.h>

void rwd_credit_shares(uint32_t rule, double gamma, const rwd_turn *turns, uint32_t n,
                       double *out_shares)
{
    uint32_t last = 0;
    for (uint32_t i = 1; i < n; i++) {
        const rwd_turn *a = &turns[i], *b = &turns[last];
        if (a->turn > b->turn || (a->turn == b->turn && a->seq > b->seq)) {
            last = i;
        }
    }
    uint32_t final_turn = turns[last].turn;
    for (uint32_t i = 0; i < n; i++) {
        switch (rule) {
        case BASE_CREDIT_UNIFORM:
            out_shares[i] = 1.0 / (double)n;
            break;
        case BASE_CREDIT_DISCOUNTED: {
            uint32_t t = turns[i].turn;
            uint32_t back = final_turn > t ? final_turn - t : 0;
            out_shares[i] = pow(gamma, (double)back);
            break;
        }
        default: /* last */
            out_shares[i] = i == last ? 1.0 : 0.0;
            break;
        }
    }
}

/*
 * The sum over signals of each signal's aggregate of the active
 * contributions; *out_any whether any counted, *out_n how many.
 */
static double aggregate(const rwd_spec *spec, const rwd_contrib *c, uint32_t n_contrib,
                        bool *out_any, uint32_t *out_n)
{
    double total = 0.0;
    *out_any = false;
    *out_n = 0;
    for (uint32_t s = 0; s < spec->n_signals; s++) {
        rwd_agg agg = spec->signal[s].agg;
        double acc = 0.0;
        uint32_t n = 0;
        const rwd_contrib *pick = NULL;
        for (uint32_t i = 0; i < n_contrib; i++) {
            const rwd_contrib *k = &c[i];
            if (!k->active || k->signal != s) {
                continue;
            }
            n++;
            switch (agg) {
            case RWD_AGG_SUM:
            case RWD_AGG_MEAN:
                acc += k->value;
                break;
            /*
             * min/max pick by the value as observed, not by the contribution:
             * "escalated" (flag, weight -1, max) reported 1 then 0 was
             * escalated, whatever the sign of its weight. Ties: the earlier.
             */
            case RWD_AGG_MIN:
                if (pick == NULL || k->raw < pick->raw) {
                    pick = k;
                }
                break;
            case RWD_AGG_MAX:
                if (pick == NULL || k->raw > pick->raw) {
                    pick = k;
                }
                break;
            case RWD_AGG_FIRST:
                if (pick == NULL || k->ts_ms < pick->ts_ms ||
                    (k->ts_ms == pick->ts_ms && k->seq < pick->seq)) {
                    pick = k;
                }
                break;
            case RWD_AGG_LAST:
                if (pick == NULL || k->ts_ms > pick->ts_ms ||
                    (k->ts_ms == pick->ts_ms && k->seq > pick->seq)) {
                    pick = k;
                }
                break;
            }
        }
        if (n == 0) {
            continue;
        }
        if (agg == RWD_AGG_MEAN) {
            acc /= (double)n;
        } else if (agg != RWD_AGG_SUM) {
            acc = pick->value;
        }
        total += acc;
        *out_n += n;
        *out_any = true;
    }
    return total;
}

void rwd_contrib_reward(const rwd_spec *spec, const rwd_contrib *c, uint32_t n, rwd_reward *out)
{
    bool any = false;
    double r = aggregate(spec, c, n, &any, &out->n_outcomes);
    out->unknown = false;
    out->defaulted = false;
    if (!any) {
        out->unknown = spec->unknown_when_empty;
        out->defaulted = !out->unknown;
        r = out->unknown ? 0.0 : spec->default_reward;
    } else {
        r = r < spec->clip_min ? spec->clip_min : r;
        r = r > spec->clip_max ? spec->clip_max : r;
    }
    out->reward = r;
}
