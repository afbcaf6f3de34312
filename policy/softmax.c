#include "policy/softmax.h"

#include <math.h>

double pol_softmax_exp(const double *s, uint32_t n, double *out_q)
{
    /* Starting at -inf is the same as starting at s[0] for finite scores. */
    double m = -INFINITY;
    for (uint32_t c = 0; c < n; c++) {
        m = s[c] > m ? s[c] : m;
    }
    double z = 0.0;
    for (uint32_t c = 0; c < n; c++) {
        out_q[c] = exp(s[c] - m);
        z += out_q[c];
    }
    return z;
}

void pol_softmax(const double *s, uint32_t n, double *out)
{
    double z = pol_softmax_exp(s, n, out);
    for (uint32_t c = 0; c < n; c++) {
        out[c] /= z;
    }
}
