#include "base/err.h"

const char *base_strerror(base_err e)
{
    switch (e) {
    case BASE_OK:
        return "success";
    case BASE_ENOMEM:
        return "out of memory";
    case BASE_EINVAL:
        return "invalid argument";
    case BASE_ELIMIT:
        return "limit exceeded";
    case BASE_EPROTO:
        return "protocol error";
    case BASE_ETIMEDOUT:
        return "timed out";
    case BASE_ECLOSED:
        return "closed";
    case BASE_EIO:
        return "I/O error";
    case BASE_ESTORE:
        return "store error";
    case BASE_ENUMERIC:
        return "numeric error";
    case BASE_EINTERNAL:
        return "internal error";
    }
    return "unknown error";
}
