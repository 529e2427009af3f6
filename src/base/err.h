/* err.h - the one error enum of EchoLink's libraries.
 *
 * Functions return EL_OK (0) or a negative el_err; detail text, when there is
 * any, goes into a caller-supplied buffer (char *err, size_t errlen). */
#ifndef EL_ERR_H
#define EL_ERR_H

#include <stddef.h>

typedef enum {
    EL_OK = 0,
    EL_ERR_NOMEM = -1,      /* allocation failed */
    EL_ERR_INVALID = -2,    /* malformed input or argument */
    EL_ERR_NOT_FOUND = -3,  /* no such object */
    EL_ERR_EXISTS = -4,     /* object already exists */
    EL_ERR_QUOTA = -5,      /* a configured limit was reached */
    EL_ERR_IO = -6,         /* file or socket error */
    EL_ERR_CRYPTO = -7,     /* signature/key check failed or crypto backend error */
    EL_ERR_DB = -8,         /* database error */
    EL_ERR_TOO_LARGE = -9,  /* input exceeds a size limit */
    EL_ERR_DENIED = -10,    /* not permitted */
    EL_ERR_STATE = -11,     /* not allowed in the object's current state */
} el_err;

const char *el_strerror(int err);

/* Formats into err/errlen when err is not NULL; always returns `code`, so that
 * callers can write `return el_seterr(err, errlen, EL_ERR_INVALID, "...")`. */
int el_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
