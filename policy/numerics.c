#include "policy/numerics.h"

#include <gsl/gsl_errno.h>

/* Declared by OpenBLAS's cblas.h; declared here to avoid its macro-heavy header. */
void openblas_set_num_threads(int num_threads);

void pol_numerics_init(void)
{
    gsl_set_error_handler_off();
    openblas_set_num_threads(1);
}
