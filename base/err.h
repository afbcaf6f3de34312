#ifndef BASE_ERR_H
#define BASE_ERR_H

/*
 * Error codes shared by every layer.
 *
 * Every function that can fail more than one way returns a base_err. Foreign
 * errors (nng, hiredis, GSL, errno) are translated once, where they enter the
 * project. "Not found" is an outcome reported through an out-parameter, never
 * an error. Lower layers do not log; service/ logs once, where it handles the
 * error.
 */

typedef enum base_err {
    BASE_OK = 0,    /* success */
    BASE_ENOMEM,    /* an allocation failed */
    BASE_EINVAL,    /* an argument or input is malformed */
    BASE_ELIMIT,    /* a named cap was exceeded (message size, arms, queue) */
    BASE_EPROTO,    /* a peer or record broke the protocol or encoding */
    BASE_ETIMEDOUT, /* a deadline passed */
    BASE_ECLOSED,   /* the object or connection is closed or shutting down */
    BASE_EIO,       /* an OS-level I/O failure or a lost connection */
    BASE_ESTORE,    /* the store answered with an error */
    BASE_ENUMERIC,  /* a numeric failure: NaN, Inf, singular matrix */
    BASE_EINTERNAL, /* an invariant was broken: a bug */
} base_err;

/*
 * base_strerror() - a short, static, human-readable description of @e.
 * Return: never NULL; unknown codes map to "unknown error".
 */
const char *base_strerror(base_err e);

#endif
