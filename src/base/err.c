/* err.c - see err.h. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *el_strerror(int err)
{
    switch ((el_err)err) {
    case EL_OK: return "ok";
    case EL_ERR_NOMEM: return "out of memory";
    case EL_ERR_INVALID: return "invalid input";
    case EL_ERR_NOT_FOUND: return "not found";
    case EL_ERR_EXISTS: return "already exists";
    case EL_ERR_QUOTA: return "limit reached";
    case EL_ERR_IO: return "I/O error";
    case EL_ERR_CRYPTO: return "cryptographic check failed";
    case EL_ERR_DB: return "database error";
    case EL_ERR_TOO_LARGE: return "too large";
    case EL_ERR_DENIED: return "not permitted";
    case EL_ERR_STATE: return "not allowed in this state";
    }
    return "unknown error";
}

int el_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
