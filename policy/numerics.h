#ifndef POLICY_NUMERICS_H
#define POLICY_NUMERICS_H

/*
 * Process-wide numeric set-up, called once by every program's main() before
 * any other thread starts: GSL's default error handler aborts the process;
 * it is turned off, so GSL failures come back as status codes that callers
 * translate.
 */

void pol_numerics_init(void);

#endif
