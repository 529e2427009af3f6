/* idquota.h - how many new identities one source address may create.
 *
 * A login with a key the server has never seen creates a user row. Keys are
 * free to make, so without a bound one address could fill the database with
 * identities. Each address (an IPv6 address counts by its /64, which one
 * host usually owns whole) has a token bucket of `per_hour` new identities
 * that refills continuously at per_hour per hour; returning users are never
 * counted. In a cluster each node keeps its own buckets.
 *
 * Memory: one entry per address that created an identity and whose bucket
 * is not full again; el_idquota_purge() drops the full ones. Beyond
 * EL_IDQUOTA_MAX_ADDRS entries a new address is allowed without an entry
 * (fail open, logged): refusing every newcomer because someone holds many
 * addresses would lock everybody out. */
#ifndef EL_SERVER_IDQUOTA_H
#define EL_SERVER_IDQUOTA_H

#include <stddef.h>
#include <stdint.h>

#define EL_IDQUOTA_MAX_ADDRS 65536

typedef struct el_idquota el_idquota;

el_idquota *el_idquota_new(void); /* NULL when out of memory */
void el_idquota_free(el_idquota *q); /* NULL is a no-op */

/* Takes one new identity from addr's bucket. Returns 1 when allowed (also
 * with per_hour <= 0: no limit), 0 when the bucket is empty. *retry_s gets
 * the seconds until the next token when refused (may be NULL). */
int el_idquota_take(el_idquota *q, const char *addr, int per_hour, int64_t now_ms,
                    int *retry_s);

/* Forgets the addresses whose bucket is full again. */
void el_idquota_purge(el_idquota *q, int per_hour, int64_t now_ms);

size_t el_idquota_count(const el_idquota *q);

#endif
