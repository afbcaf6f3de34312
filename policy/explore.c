#include "policy/explore.h"

#include "base/record.h"
#include "policy/softmax.h"

/* Greedy: (1 - eps) over the top scores (ties share), eps / n floor. */
static void greedy(const double *s, uint32_t n, double eps, float *out)
{
    double best = s[0];
    for (uint32_t c = 1; c < n; c++) {
        best = s[c] > best ? s[c] : best;
    }
    uint32_t n_top = 0;
    for (uint32_t c = 0; c < n; c++) {
        n_top += s[c] == best;
    }
    double floor = eps / (double)n;
    double top = (1.0 - eps) / (double)n_top;
    for (uint32_t c = 0; c < n; c++) {
        out[c] = (float)(floor + (s[c] == best ? top : 0.0));
    }
}

static void greedy_pmf(double *s, const double *width, uint32_t n, const pol_head_config *cfg,
                       float *out_pmf)
{
    (void)width; /* not needed */
    greedy(s, n, cfg->epsilon, out_pmf);
}

/* (1 - eps) softmax(s) + eps / n; normalised in one expression (policy/softmax.h). */
static void softmax_pmf(double *s, const double *width, uint32_t n, const pol_head_config *cfg,
                        float *out_pmf)
{
    double q[BASE_CAND_MAX];
    double eps = cfg->epsilon;
    (void)width; /* not needed */
    double z = pol_softmax_exp(s, n, q);
    for (uint32_t c = 0; c < n; c++) {
        out_pmf[c] = (float)((1.0 - eps) * q[c] / z + eps / (double)n);
    }
}

/* Inverse gap weighting (Abe and Long 1999; Foster and Rakhlin 2020), ties share. */
static void igw_pmf(double *s, const double *width, uint32_t n, const pol_head_config *cfg,
                    float *out_pmf)
{
    double p[BASE_CAND_MAX];
    double gamma = cfg->gamma, eps = cfg->epsilon;
    (void)width; /* not needed */
    double best = s[0];
    for (uint32_t c = 1; c < n; c++) {
        best = s[c] > best ? s[c] : best;
    }
    uint32_t n_top = 0;
    double rest = 0.0;
    for (uint32_t c = 0; c < n; c++) {
        if (s[c] == best) {
            n_top++;
            p[c] = 0.0;
        } else {
            p[c] = 1.0 / ((double)n + gamma * (best - s[c]));
            rest += p[c];
        }
    }
    double top = (1.0 - rest) / (double)n_top;
    for (uint32_t c = 0; c < n; c++) {
        double v = s[c] == best ? top : p[c];
        out_pmf[c] = (float)((1.0 - eps) * v + eps / (double)n);
    }
}

/* UCB (LinUCB, Li et al. 2010): greedy on mean + alpha * width, so the pmf stays exact. */
static void ucb_pmf(double *s, const double *width, uint32_t n, const pol_head_config *cfg,
                    float *out_pmf)
{
    for (uint32_t c = 0; c < n; c++) {
        s[c] += cfg->ucb_alpha * width[c];
    }
    greedy(s, n, cfg->epsilon, out_pmf);
}

static const pol_explorer_ops explorers[] = {
    [POL_EXPLORE_AUTO] = {.name = "auto"},
    [POL_EXPLORE_GREEDY] = {.name = "greedy", .pmf = greedy_pmf},
    [POL_EXPLORE_SOFTMAX] = {.name = "softmax", .needs_logits = true, .pmf = softmax_pmf},
    [POL_EXPLORE_IGW] = {.name = "igw", .pmf = igw_pmf},
    [POL_EXPLORE_UCB] = {.name = "ucb", .needs_width = true, .pmf = ucb_pmf},
};

const pol_explorer_ops *pol_explorer_ops_of(pol_explorer x)
{
    return (unsigned)x < sizeof(explorers) / sizeof(explorers[0]) ? &explorers[x] : NULL;
}
