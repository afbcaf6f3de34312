#include "policy/portfolio.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"

/*
 * Members that differ only in explorer settings share one learner (its
 * parameters would be bit-identical): member i serves through learner
 * src[i] with its own explorer settings (pol_head_pmf_views()).
 */
struct pol_portfolio {
    pol_portfolio_config cfg;
    uint32_t n;                           /* members */
    uint32_t n_learners;                  /* distinct learners */
    pol_head *learner[POL_PORTFOLIO_MAX]; /* [n_learners] */
    uint32_t src[POL_PORTFOLIO_MAX];      /* member -> its learner */
    uint32_t origin[POL_PORTFOLIO_MAX];   /* learner -> the member it was built from */
    bool live[POL_PORTFOLIO_MAX];
    uint32_t lead;
    uint64_t switches;
    uint64_t n_seen;   /* joined examples scored */
    bool reward_model; /* member 0's scores are expected rewards */
    bool have_reward;  /* rmin, rmax hold the rewards seen so far */
    double rmin, rmax;
    double decay; /* per-example discount of the sums below */
    double w, w2; /* sum of weights, of squared weights */
    double sv[POL_PORTFOLIO_MAX];
    double frozen[POL_PORTFOLIO_MAX][2]; /* a dropped member's estimate and vs_lead when dropped */
    double svv[POL_PORTFOLIO_MAX][POL_PORTFOLIO_MAX];
    /* Derived from the sums above after every change (shares()), never saved. */
    double share[POL_PORTFOLIO_MAX]; /* of the served pmf, per live challenger */
    double share_total;              /* their sum, <= mix */
};

static void shares(pol_portfolio *pf);

static bool config_ok(const pol_portfolio_config *c)
{
    bool ok = c->n_members >= 1 && c->n_members <= POL_PORTFOLIO_MAX;
    ok = ok && isfinite(c->z) && c->z >= 0.0 && isfinite(c->z_drop) && c->z_drop >= 0.0;
    ok = ok && isfinite(c->half_life) && c->half_life >= 0.0;
    ok = ok && isfinite(c->mix) && c->mix >= 0.0 && c->mix <= 1.0;
    for (uint32_t i = 1; ok && i < c->n_members; i++) {
        ok = c->member[i].dim == c->member[0].dim &&
             c->member[i].n_actions == c->member[0].n_actions;
    }
    return ok;
}

base_err pol_portfolio_new(const pol_portfolio_config *cfg, pol_portfolio **out)
{
    if (!config_ok(cfg)) {
        return BASE_EINVAL;
    }
    pol_portfolio *pf = base_alloc_zero(1, sizeof(*pf));
    if (pf == NULL) {
        return BASE_ENOMEM;
    }
    pf->cfg = *cfg;
    for (uint32_t i = 0; i < cfg->n_members; i++) {
        uint32_t k = 0;
        while (k < pf->n_learners &&
               !pol_head_same_learner(&cfg->member[i], &cfg->member[pf->origin[k]])) {
            k++;
        }
        base_err e = BASE_OK;
        if (k == pf->n_learners) {
            e = pol_head_new(&cfg->member[i], &pf->learner[k]);
            pf->origin[k] = i;
            pf->n_learners += e == BASE_OK;
        } else if (!pol_head_view_ok(pf->learner[k], &cfg->member[i])) {
            e = BASE_EINVAL;
        }
        if (e != BASE_OK) {
            pol_portfolio_free(pf);
            return e;
        }
        pf->src[i] = k;
        pf->live[i] = true;
        pf->n++;
    }
    pol_learner l0 = pol_head_get_config(pf->learner[0])->learner;
    pf->reward_model = l0 == POL_LEARNER_RIDGE || l0 == POL_LEARNER_IWR;
    pf->decay = cfg->half_life > 0.0 ? exp2(-1.0 / cfg->half_life) : 1.0;
    shares(pf);
    *out = pf;
    return BASE_OK;
}

void pol_portfolio_free(pol_portfolio *pf)
{
    if (pf == NULL) {
        return;
    }
    for (uint32_t i = 0; i < pf->n_learners; i++) {
        pol_head_free(pf->learner[i]);
    }
    base_free(pf);
}

/* Member @i's pmf: its explorer settings over its learner. */
static base_err member_pmf(const pol_portfolio *pf, uint32_t i, const float *x, uint32_t n_cand,
                           const uint32_t *action, const float *base_logit, float *out_pmf)
{
    return pol_head_pmf_views(pf->learner[pf->src[i]], 1, &pf->cfg.member[i], x, n_cand, action,
                              base_logit, out_pmf, NULL);
}

/*
 * The pmfs of the members in the bit set @want into pmf[i * n_cand], one
 * scores call per learner (its members are views of it); with @score,
 * learner 0's scores too (a member of learner 0 must then be wanted).
 */
static base_err member_pmfs(const pol_portfolio *pf, uint32_t want, const float *x, uint32_t n_cand,
                            const uint32_t *action, const float *base_logit, float *pmf,
                            float *score)
{
    pol_head_config views[POL_PORTFOLIO_MAX];
    uint32_t idx[POL_PORTFOLIO_MAX];
    float out[POL_PORTFOLIO_MAX * BASE_CAND_MAX];
    for (uint32_t k = 0; k < pf->n_learners; k++) {
        uint32_t nv = 0;
        for (uint32_t i = 0; i < pf->n; i++) {
            if ((want >> i & 1u) != 0 && pf->src[i] == k) {
                views[nv] = pf->cfg.member[i];
                idx[nv++] = i;
            }
        }
        if (nv == 0) {
            continue;
        }
        base_err e = pol_head_pmf_views(pf->learner[k], nv, views, x, n_cand, action, base_logit,
                                        out, k == 0 ? score : NULL);
        if (e != BASE_OK) {
            return e;
        }
        for (uint32_t v = 0; v < nv; v++) {
            memcpy(pmf + (size_t)idx[v] * n_cand, out + (size_t)v * n_cand,
                   (size_t)n_cand * sizeof(float));
        }
    }
    return BASE_OK;
}

base_err pol_portfolio_member_pmf(const pol_portfolio *pf, uint32_t i, const float *x,
                                  uint32_t n_cand, const uint32_t *action, const float *base_logit,
                                  float *out_pmf)
{
    return i < pf->n ? member_pmf(pf, i, x, n_cand, action, base_logit, out_pmf) : BASE_EINVAL;
}

/*
 * The served pmf from the leader's @lead: (1 - S) lead + sum_i share_i pi_i
 * over the live challengers (S their total share), in double, then rounded
 * once.
 */
static base_err mixed(const pol_portfolio *pf, const float *lead, const float *x, uint32_t n_cand,
                      const uint32_t *action, const float *base_logit, float *out_pmf)
{
    float other[POL_PORTFOLIO_MAX * BASE_CAND_MAX];
    double acc[BASE_CAND_MAX];
    uint32_t want = 0;
    for (uint32_t i = 0; i < pf->n; i++) {
        want |= pf->share[i] > 0.0 ? 1u << i : 0u;
    }
    base_err e = member_pmfs(pf, want, x, n_cand, action, base_logit, other, NULL);
    if (e != BASE_OK) {
        return e;
    }
    for (uint32_t c = 0; c < n_cand; c++) {
        acc[c] = (1.0 - pf->share_total) * (double)lead[c];
    }
    for (uint32_t i = 0; i < pf->n; i++) {
        if ((want >> i & 1u) == 0) {
            continue;
        }
        const float *pi = other + (size_t)i * n_cand;
        for (uint32_t c = 0; c < n_cand; c++) {
            acc[c] += pf->share[i] * (double)pi[c];
        }
    }
    for (uint32_t c = 0; c < n_cand; c++) {
        out_pmf[c] = (float)acc[c];
    }
    return BASE_OK;
}

base_err pol_portfolio_pmf(const pol_portfolio *pf, const float *x, uint32_t n_cand,
                           const uint32_t *action, const float *base_logit, float *out_pmf)
{
    if (pf->share_total <= 0.0) {
        return member_pmf(pf, pf->lead, x, n_cand, action, base_logit, out_pmf);
    }
    float lead[BASE_CAND_MAX];
    base_err e = member_pmf(pf, pf->lead, x, n_cand, action, base_logit, lead);
    return e == BASE_OK ? mixed(pf, lead, x, n_cand, action, base_logit, out_pmf) : e;
}

/* Discounted mean and standard error of v_i - v_j. */
static void paired(const pol_portfolio *pf, uint32_t i, uint32_t j, double *mean, double *se)
{
    if (pf->w <= 0.0) {
        *mean = 0.0;
        *se = INFINITY;
        return;
    }
    double m = (pf->sv[i] - pf->sv[j]) / pf->w;
    double m2 = (pf->svv[i][i] + pf->svv[j][j] - 2.0 * pf->svv[i][j]) / pf->w;
    double var = m2 - m * m;
    var = var > 0.0 ? var : 0.0;
    *mean = m;
    *se = sqrt(var * pf->w2) / pf->w; /* var / n_eff, n_eff = w^2 / w2 */
}

static void select_leader(pol_portfolio *pf)
{
    if (pf->n_seen < pf->cfg.min_examples) {
        return;
    }
    uint32_t best = pf->lead;
    double best_lb = 0.0;
    for (uint32_t i = 0; i < pf->n; i++) {
        if (!pf->live[i] || i == pf->lead) {
            continue;
        }
        double m = 0.0, se = 0.0;
        paired(pf, i, pf->lead, &m, &se);
        if (i != 0 && pf->n_seen >= pf->cfg.drop_after && m + pf->cfg.z_drop * se < 0.0) {
            pf->live[i] = false; /* clearly behind: stop learning it */
            pf->frozen[i][0] = pf->sv[i] / pf->w;
            pf->frozen[i][1] = m;
            continue;
        }
        double lb = m - pf->cfg.z * se;
        if (lb > best_lb) {
            best_lb = lb;
            best = i;
        }
    }
    if (best != pf->lead) {
        pf->lead = best;
        pf->switches++;
    }
}

/*
 * Each live challenger's share of the served pmf. g_i = Phi(mean / se) of
 * its paired difference against the leader is how plausible it is that it
 * serves better (1/2 before there is evidence); the challengers together
 * get mix * max_i g_i, split in proportion to g_i. A challenger that looks
 * as good as the leader is served often enough to be confirmed or refuted
 * quickly, one that is plainly behind costs next to nothing, and one that
 * is z_drop standard errors behind (member 0, the reward model, which is
 * never dropped) gets nothing: once every challenger is, the leader serves
 * alone.
 */
static void shares(pol_portfolio *pf)
{
    double g[POL_PORTFOLIO_MAX] = {0}, sum = 0.0, top = 0.0;
    pf->share_total = 0.0;
    memset(pf->share, 0, sizeof(pf->share));
    if (pf->cfg.mix <= 0.0) {
        return;
    }
    for (uint32_t i = 0; i < pf->n; i++) {
        if (!pf->live[i] || i == pf->lead) {
            continue;
        }
        double m = 0.0, se = 0.0;
        paired(pf, i, pf->lead, &m, &se);
        if (pf->n_seen < pf->cfg.min_examples || !isfinite(se)) {
            g[i] = 0.5;
        } else if (m + pf->cfg.z_drop * se < 0.0) {
            g[i] = 0.0; /* as far behind as a dropped member (member 0 never is) */
        } else if (se > 0.0) {
            g[i] = 0.5 * erfc(-m / (se * 1.4142135623730951));
        } else {
            g[i] = m > 0.0 ? 1.0 : (m < 0.0 ? 0.0 : 0.5);
        }
        sum += g[i];
        top = g[i] > top ? g[i] : top;
    }
    if (sum <= 0.0) {
        return;
    }
    pf->share_total = pf->cfg.mix * top;
    for (uint32_t i = 0; i < pf->n; i++) {
        pf->share[i] = pf->share_total * g[i] / sum;
    }
}

/* Whether learner @k serves any live member. */
static bool learner_live(const pol_portfolio *pf, uint32_t k)
{
    for (uint32_t i = 0; i < pf->n; i++) {
        if (pf->live[i] && pf->src[i] == k) {
            return true;
        }
    }
    return false;
}

base_err pol_portfolio_score(const pol_portfolio *pf, const base_decision *d, double reward,
                             pol_portfolio_scores *out)
{
    float pmf[POL_PORTFOLIO_MAX * BASE_CAND_MAX], score[BASE_CAND_MAX];
    double rhat[BASE_CAND_MAX];
    uint32_t n = d->n_cand;

    memset(out, 0, sizeof(*out));
    if (d->chosen >= n || n > BASE_CAND_MAX) {
        return BASE_EINVAL;
    }
    double p = (double)d->pmf[d->chosen];
    if (!isfinite(p) || !isfinite(reward)) {
        return BASE_ENUMERIC;
    }
    if (!(p > 0.0 && p <= 1.0)) {
        return BASE_EINVAL;
    }
    out->n_seen = pf->n_seen;
    if (pol_portfolio_live(pf) == 1) {
        return BASE_OK; /* nothing left to select */
    }
    /* Member 0 is always live, so learner 0 computes its scores: the reward model. */
    uint32_t live = 0;
    for (uint32_t i = 0; i < pf->n; i++) {
        live |= pf->live[i] ? 1u << i : 0u;
    }
    base_err e = member_pmfs(pf, live, d->embedding, n, d->action, d->base_logit, pmf, score);
    if (e != BASE_OK) {
        return e;
    }
    for (uint32_t c = 0; c < n; c++) {
        double r = 0.0;
        if (pf->reward_model && pf->have_reward) {
            r = (double)score[c];
            r = r < pf->rmin ? pf->rmin : (r > pf->rmax ? pf->rmax : r);
        }
        rhat[c] = r;
    }
    for (uint32_t i = 0; i < pf->n; i++) {
        if (!pf->live[i]) {
            continue;
        }
        const float *pi = pmf + (size_t)i * n;
        double dm = 0.0;
        for (uint32_t c = 0; c < n; c++) {
            dm += (double)pi[c] * rhat[c];
        }
        out->v[i] = dm + (double)pi[d->chosen] / p * (reward - rhat[d->chosen]);
    }
    out->scored = true;
    return BASE_OK;
}

base_err pol_portfolio_apply(pol_portfolio *pf, const base_decision *d, double reward,
                             const pol_portfolio_scores *sc)
{
    base_err e = BASE_OK;
    if (sc->n_seen != pf->n_seen) {
        return BASE_EINVAL; /* scored against another state */
    }
    if (!sc->scored) {
        /* One live member: nothing left to select, the leader's learner alone. */
        if (pol_portfolio_live(pf) != 1) {
            return BASE_EINVAL;
        }
        e = pol_head_learn(pf->learner[pf->src[pf->lead]], d, reward);
        pf->n_seen += e == BASE_OK;
        return e;
    }
    const double *v = sc->v;
    /* Learn: learner 0 first; a failure leaves the later ones untouched. */
    for (uint32_t k = 0; k < pf->n_learners; k++) {
        if (learner_live(pf, k)) {
            e = pol_head_learn(pf->learner[k], d, reward);
            if (e != BASE_OK) {
                return e;
            }
        }
    }
    double k = pf->decay;
    pf->w = k * pf->w + 1.0;
    pf->w2 = k * k * pf->w2 + 1.0;
    for (uint32_t i = 0; i < pf->n; i++) {
        if (!pf->live[i]) {
            continue;
        }
        pf->sv[i] = k * pf->sv[i] + v[i];
        for (uint32_t j = 0; j < pf->n; j++) {
            if (pf->live[j]) {
                pf->svv[i][j] = k * pf->svv[i][j] + v[i] * v[j];
            }
        }
    }
    pf->n_seen++;
    if (!pf->have_reward) {
        pf->rmin = pf->rmax = reward;
        pf->have_reward = true;
    } else {
        pf->rmin = reward < pf->rmin ? reward : pf->rmin;
        pf->rmax = reward > pf->rmax ? reward : pf->rmax;
    }
    select_leader(pf);
    shares(pf);
    return BASE_OK;
}

base_err pol_portfolio_learn(pol_portfolio *pf, const base_decision *d, double reward)
{
    pol_portfolio_scores sc;
    base_err e = pol_portfolio_score(pf, d, reward, &sc);
    return e == BASE_OK ? pol_portfolio_apply(pf, d, reward, &sc) : e;
}

/*
 * The selector's numbers, in this order: lead, switches, n_seen,
 * have_reward, rmin, rmax, w, w2, n, then live[n], sv[n], svv[n][n],
 * frozen[n][2]. Counts are below 2^53, so doubles hold them exactly.
 */
static uint32_t selector_save(const pol_portfolio *pf, double *out)
{
    uint32_t k = 0, n = pf->n;
    out[k++] = pf->lead;
    out[k++] = (double)pf->switches;
    out[k++] = (double)pf->n_seen;
    out[k++] = pf->have_reward;
    out[k++] = pf->rmin;
    out[k++] = pf->rmax;
    out[k++] = pf->w;
    out[k++] = pf->w2;
    out[k++] = n;
    for (uint32_t i = 0; i < n; i++) {
        out[k++] = pf->live[i];
    }
    for (uint32_t i = 0; i < n; i++) {
        out[k++] = pf->sv[i];
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++) {
            out[k++] = pf->svv[i][j];
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        out[k++] = pf->frozen[i][0];
        out[k++] = pf->frozen[i][1];
    }
    return k;
}

static bool is_count(double v, double max)
{
    return v >= 0.0 && v <= max && v == floor(v);
}

/* The inverse of selector_save(); false (and @pf untouched) if @in does not fit @pf. */
static bool selector_load(pol_portfolio *pf, const double *in, uint32_t len)
{
    uint32_t n = pf->n;
    if (len != 9 + n * (4 + n) || in[8] != n || !is_count(in[0], n - 1) ||
        !is_count(in[1], 9007199254740992.0) || !is_count(in[2], 9007199254740992.0) ||
        !(in[3] == 0.0 || in[3] == 1.0) || !(in[6] >= 0.0 && in[6] < INFINITY) ||
        !(in[7] >= 0.0 && in[7] < INFINITY)) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!(in[9 + i] == 0.0 || in[9 + i] == 1.0)) {
            return false;
        }
    }
    if (in[9] != 1.0 || in[9 + (uint32_t)in[0]] != 1.0) {
        return false; /* member 0 and the leader are always live */
    }
    uint32_t k = 0;
    pf->lead = (uint32_t)in[k++];
    pf->switches = (uint64_t)in[k++];
    pf->n_seen = (uint64_t)in[k++];
    pf->have_reward = in[k++] != 0.0;
    pf->rmin = in[k++];
    pf->rmax = in[k++];
    pf->w = in[k++];
    pf->w2 = in[k++];
    k++;
    for (uint32_t i = 0; i < n; i++) {
        pf->live[i] = in[k++] != 0.0;
    }
    for (uint32_t i = 0; i < n; i++) {
        pf->sv[i] = in[k++];
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++) {
            pf->svv[i][j] = in[k++];
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        pf->frozen[i][0] = in[k++];
        pf->frozen[i][1] = in[k++];
    }
    return true;
}

uint32_t pol_portfolio_size(const pol_portfolio *pf)
{
    return pf->n;
}

uint32_t pol_portfolio_leader(const pol_portfolio *pf)
{
    return pf->lead;
}

uint32_t pol_portfolio_live(const pol_portfolio *pf)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < pf->n; i++) {
        c += pf->live[i];
    }
    return c;
}

uint64_t pol_portfolio_switches(const pol_portfolio *pf)
{
    return pf->switches;
}

const pol_head *pol_portfolio_member(const pol_portfolio *pf, uint32_t i)
{
    return i < pf->n ? pf->learner[pf->src[i]] : NULL;
}

bool pol_portfolio_member_info(const pol_portfolio *pf, uint32_t i, pol_member_info *out)
{
    if (i >= pf->n) {
        return false;
    }
    memset(out, 0, sizeof(*out));
    const pol_head *h = pf->learner[pf->src[i]];
    pol_head_config c0 = *pol_head_get_config(h), view;
    /* The member's explorer settings, resolved as its learner resolves them. */
    view = pf->cfg.member[i];
    c0.explorer = view.explorer == POL_EXPLORE_AUTO ? c0.explorer : view.explorer;
    c0.epsilon = view.epsilon < 0.0 ? c0.epsilon : view.epsilon;
    c0.gamma = view.gamma;
    c0.ucb_alpha = view.ucb_alpha;
    const pol_head_config *c = &c0;
    out->live = pf->live[i];
    out->serving = i == pf->lead;
    out->estimate = pf->w > 0.0 ? pf->sv[i] / pf->w : 0.0;
    paired(pf, i, pf->lead, &out->vs_lead, &out->se);
    if (i == pf->lead || pf->w <= 0.0) {
        out->vs_lead = 0.0;
        out->se = 0.0; /* the leader itself, or nothing scored yet */
    } else if (!pf->live[i]) {
        out->estimate = pf->frozen[i][0];
        out->vs_lead = pf->frozen[i][1];
        out->se = 0.0;
    }
    out->share = i == pf->lead ? 1.0 - pf->share_total : pf->share[i];
    out->n = pol_head_n_updates(h);
    char l[48];
    const char *x = pol_explorer_name(c->explorer);
    const pol_head_config *lc = pol_head_get_config(h); /* the map as resolved */
    if (lc->features == POL_FEATURES_LINEAR) {
        snprintf(l, sizeof(l), "%s", pol_learner_name(c->learner));
    } else if (lc->features == POL_FEATURES_QUAD) {
        snprintf(l, sizeof(l), "%s+quad", pol_learner_name(c->learner));
    } else {
        snprintf(l, sizeof(l), "%s+%s%ux%g", pol_learner_name(c->learner),
                 pol_features_name(lc->features), lc->rff_dim, lc->bandwidth);
    }
    double param = c->explorer == POL_EXPLORE_UCB   ? c->ucb_alpha
                   : c->explorer == POL_EXPLORE_IGW ? c->gamma
                                                    : c->epsilon;
    snprintf(out->name, sizeof(out->name), "%s/%s:%g", l, x, param);
    return true;
}

uint64_t pol_portfolio_n_updates(const pol_portfolio *pf)
{
    return pf->n_seen;
}

void pol_portfolio_set_version(pol_portfolio *pf, uint64_t n)
{
    pf->n_seen = n;
}

uint64_t pol_portfolio_checksum(const pol_portfolio *pf)
{
    if (pf->n == 1) {
        return pol_head_checksum(pf->learner[0]); /* a portfolio of one is its head */
    }
    uint64_t h = BASE_FNV_OFFSET;
    for (uint32_t k = 0; k < pf->n_learners; k++) {
        uint64_t c = pol_head_checksum(pf->learner[k]);
        h = base_fnv1a64(&c, sizeof(c), h);
    }
    double sel[BASE_PF_SEL_MAX];
    uint32_t n = selector_save(pf, sel);
    return base_fnv1a64(sel, (size_t)n * sizeof(double), h);
}

base_err pol_portfolio_explain(const pol_portfolio *pf, const float *x, uint32_t n_cand,
                               const uint32_t *action, const float *base_logit,
                               const pol_breakdown *out)
{
    base_err e = pol_head_explain_view(pf->learner[pf->src[pf->lead]], &pf->cfg.member[pf->lead], x,
                                       n_cand, action, base_logit, out);
    if (e != BASE_OK || pf->share_total <= 0.0) {
        return e;
    }
    /*
     * Mixed: what the leader serves without exploring, (1 - S) (pi_lead - explore_lead),
     * is the exploitation; the rest of each candidate's probability is exploration.
     */
    float lead[BASE_CAND_MAX];
    memcpy(lead, out->pmf, (size_t)n_cand * sizeof(float));
    e = mixed(pf, lead, x, n_cand, action, base_logit, out->pmf);
    if (e != BASE_OK) {
        return e;
    }
    for (uint32_t c = 0; c < n_cand; c++) {
        double exploit = (1.0 - pf->share_total) * ((double)lead[c] - (double)out->explore[c]);
        double ex = (double)out->pmf[c] - exploit;
        out->explore[c] = (float)(ex > 0.0 ? ex : 0.0);
    }
    return BASE_OK;
}

void pol_portfolio_describe(const pol_portfolio *pf, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < pf->n && used < size; i++) {
        pol_member_info mi;
        (void)pol_portfolio_member_info(pf, i, &mi);
        int k = snprintf(out + used, size - used, "%s%s", i > 0 ? "," : "", mi.name);
        used += k > 0 ? (size_t)k : 0;
    }
}

base_err pol_portfolio_snapshot(const pol_portfolio *pf, base_snapshot **out)
{
    base_snapshot *m = NULL;
    base_err e =
        pol_head_snapshot_view(pf->learner[pf->src[pf->lead]], &pf->cfg.member[pf->lead], &m);
    if (e != BASE_OK) {
        return e;
    }
    m->n_updates = pf->n_seen;
    if (pf->n == 1) {
        *out = m;
        return BASE_OK;
    }
    m->pf_learner = base_alloc_zero(pf->n_learners, sizeof(*m->pf_learner));
    m->pf_sel = base_alloc_zero(BASE_PF_SEL_MAX, sizeof(double));
    if (m->pf_learner == NULL || m->pf_sel == NULL) {
        base_snapshot_free(m);
        return BASE_ENOMEM;
    }
    for (uint32_t k = 0; k < pf->n_learners; k++) {
        e = pol_head_snapshot(pf->learner[k], &m->pf_learner[k]);
        if (e != BASE_OK) {
            base_snapshot_free(m); /* frees the learners taken so far */
            return e;
        }
        m->pf_n_learners = k + 1;
    }
    m->pf_n_sel = selector_save(pf, m->pf_sel);
    pol_portfolio_describe(pf, m->pf_members, sizeof(m->pf_members));
    *out = m;
    return BASE_OK;
}

base_err pol_portfolio_restore(pol_portfolio *pf, const base_snapshot *m)
{
    char members[BASE_PF_MEMBERS_MAX + 1];
    pol_portfolio_describe(pf, members, sizeof(members));
    bool whole =
        pf->n > 1 && m->pf_n_learners == pf->n_learners && strcmp(m->pf_members, members) == 0;
    pol_portfolio *fresh = NULL;
    base_err e = pol_portfolio_new(&pf->cfg, &fresh);
    if (e != BASE_OK) {
        return e;
    }
    if (whole) {
        for (uint32_t k = 0; k < fresh->n_learners && e == BASE_OK; k++) {
            /*
             * A learner's record holds its parameters; its settings are its member's, which
             * the same member names guarantee (they name learner, features and explorer),
             * but for the seed: the policy's, recorded once, checked by the restore.
             */
            base_snapshot l = *m->pf_learner[k];
            pol_head_settings(fresh->learner[k], &l.settings);
            l.settings.seed = m->settings.seed;
            e = pol_head_restore(fresh->learner[k], &l);
        }
        if (e == BASE_OK && !selector_load(fresh, m->pf_sel, m->pf_n_sel)) {
            e = BASE_EINVAL;
        }
    } else {
        /* Another portfolio, or a single head: it continues as member 0. */
        e = pol_head_restore(fresh->learner[0], m);
        if (e != BASE_OK && m->pf_n_learners > 0) {
            e = pol_head_restore(fresh->learner[0], m->pf_learner[0]);
        }
        fresh->n_seen = m->n_updates;
    }
    if (e != BASE_OK) {
        pol_portfolio_free(fresh);
        return e;
    }
    shares(fresh);
    /* Swap the state in; pf keeps its own address. */
    pol_portfolio tmp = *pf;
    *pf = *fresh;
    *fresh = tmp;
    pol_portfolio_free(fresh);
    return BASE_OK;
}
