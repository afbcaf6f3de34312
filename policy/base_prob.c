#include "policy/base_prob.h"

#include <math.h>
#include <string.h>

#include "base/record.h"
#include "policy/softmax.h"

/*
 * One decision's candidates reach pol_base_probs() several times on the same
 * thread (the serving head, every portfolio member's score, every learner),
 * with the same logits and temperature: the last answer is kept per thread
 * and reused when the inputs match to the bit. Same inputs, same bits out,
 * so the memo changes no result. Only short candidate lists are kept.
 */
#define MEMO_MAX 64

static _Thread_local struct {
    uint32_t n; /* 0: empty */
    double temperature;
    float logit[MEMO_MAX];
    double out[MEMO_MAX];
} memo;

static base_err base_probs(const float *base_logit, uint32_t n, double temperature, double *out)
{
    for (uint32_t c = 0; c < n; c++) {
        if (!isfinite(base_logit[c])) {
            return BASE_ENUMERIC;
        }
        out[c] = (double)base_logit[c] / temperature;
    }
    /* Normalised here, not by pol_softmax(): q / z - 1/n is one expression. */
    double z = pol_softmax_exp(out, n, out);
    for (uint32_t c = 0; c < n; c++) {
        out[c] = out[c] / z - 1.0 / (double)n;
    }
    return BASE_OK;
}

base_err pol_base_probs(const float *base_logit, uint32_t n, double temperature, double *out)
{
    if (n > MEMO_MAX) {
        return base_probs(base_logit, n, temperature, out);
    }
    if (memo.n == n && memcmp(&memo.temperature, &temperature, sizeof(double)) == 0 &&
        memcmp(memo.logit, base_logit, n * sizeof(float)) == 0) {
        memcpy(out, memo.out, n * sizeof(double));
        return BASE_OK;
    }
    base_err e = base_probs(base_logit, n, temperature, out);
    if (e == BASE_OK && n > 0) {
        memo.n = n;
        memo.temperature = temperature;
        memcpy(memo.logit, base_logit, n * sizeof(float));
        memcpy(memo.out, out, n * sizeof(double));
    }
    return e;
}

base_err pol_base_softmax(const float *base_logit, uint32_t n, double temperature, float *out)
{
    double q[BASE_CAND_MAX];
    if (n > BASE_CAND_MAX) {
        return BASE_EINVAL;
    }
    base_err e = pol_base_probs(base_logit, n, temperature, q);
    if (e != BASE_OK) {
        return e;
    }
    for (uint32_t c = 0; c < n; c++) {
        out[c] = (float)(q[c] + 1.0 / (double)n);
    }
    return BASE_OK;
}
