#include "policy/numerics.h"

#include <gsl/gsl_errno.h>

void pol_numerics_init(void)
{
    gsl_set_error_handler_off();
}
