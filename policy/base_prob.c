#include "policy/base_prob.h"

#include <math.h>

base_err pol_base_probs(const float *base_logit, uint32_t n, double temperature, double *out)
{
    double mx = -INFINITY;
    for (uint32_t c = 0; c < n; c++) {
        if (!isfinite(base_logit[c])) {
            return BASE_ENUMERIC;
        }
        out[c] = (double)base_logit[c] / temperature;
        mx = out[c] > mx ? out[c] : mx;
    }
    double z = 0.0;
    for (uint32_t c = 0; c < n; c++) {
        out[c] = exp(out[c] - mx);
        z += out[c];
    }
    for (uint32_t c = 0; c < n; c++) {
        out[c] = out[c] / z - 1.0 / (double)n;
    }
    return BASE_OK;
}
