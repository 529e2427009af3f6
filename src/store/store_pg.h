/* store_pg.h - constructor of the PostgreSQL backend of el_store (libpq).
 * Private to src/store: store.c picks it for "postgres://" and
 * "postgresql://" URLs (see store.h for the conventions it implements). */
#ifndef EL_STORE_PG_H
#define EL_STORE_PG_H

#include "store/store.h"

/* `spec` is the URL with its "postgres://" or "postgresql://" prefix
 * removed, e.g. "user@host:5432/db?sslmode=require": any libpq URI. It is not
 * kept. Returns a handle whose base.ops is set, or NULL with err filled (a
 * password in the URL never appears in err or in the log). */
el_store *el_store_pg_open(const char *spec, char *err, size_t errlen);

#endif
