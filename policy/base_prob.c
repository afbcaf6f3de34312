#include "policy/base_prob.h"

#include <math.h>

#include "base/record.h"
#include "policy/softmax.h"

base_err pol_base_probs(const float *base_logit, uint32_t n, double temperature, double *out)
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
