/* safety.h - safety numbers: what two users read to each other to verify
 * that their clients see the same identity keys (docs/PROTOCOL.md §10.1;
 * vectors under "safety" in tests/vectors/e2ee.json).
 *
 * For each party X (its Ed25519 identity key ik_X and its peer ID, 32 ASCII
 * characters derived from ik_X as in §2):
 *
 *   H = SHA-512("echolink-v1-safety" 0x00 ‖ ik_X ‖ peer_id_X)
 *   repeat 5199 times: H = SHA-512(H ‖ ik_X)
 *   half_X = bytes 0..29 of H as six big-endian u40 chunks, each chunk
 *            mod 100000 written as 5 decimal digits           (30 digits)
 *
 * safety number = the two halves in ascending order, concatenated: 60 digits,
 * identical on both sides. Only ik enters (the peer ID is a function of it),
 * so a key change that keeps ik (a new static key sk, §10.2) keeps the number.
 *
 * Strings are NUL-terminated ASCII digits. Nothing here keeps state; every
 * function may be called from any thread. Errors: EL_ERR_INVALID for a NULL or
 * malformed argument, EL_ERR_CRYPTO when the hash backend fails. On failure
 * the output (when not NULL) is the empty string. */
#ifndef EL_CRYPTO_SAFETY_H
#define EL_CRYPTO_SAFETY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/identity.h"

#define EL_SAFETY_HALF_LEN 30  /* digits contributed by one party */
#define EL_SAFETY_LEN 60       /* digits of a safety number (without NUL) */
#define EL_SAFETY_SIZE (EL_SAFETY_LEN + 1)
#define EL_SAFETY_GROUPS 12    /* displayed as 12 groups of 5 digits */
#define EL_SAFETY_GROUP_LEN 5
/* Formatted: 12 groups separated by one space each (71 characters + NUL). */
#define EL_SAFETY_FMT_LEN (EL_SAFETY_LEN + EL_SAFETY_GROUPS - 1)
#define EL_SAFETY_FMT_SIZE (EL_SAFETY_FMT_LEN + 1)

/* One party's 30 digits, from its identity key. */
int el_safety_half(const uint8_t ik[EL_ID_KEY_LEN], char out[EL_SAFETY_HALF_LEN + 1]);

/* The 60-digit safety number of two identity keys; the order of the
 * arguments does not matter. */
int el_safety_number(const uint8_t ik_a[EL_ID_KEY_LEN], const uint8_t ik_b[EL_ID_KEY_LEN],
                     char out[EL_SAFETY_SIZE]);

/* Same, from two key bundles (only their ik fields are used; the bundles are
 * only read during the call). */
int el_safety_number_bundles(const el_id_bundle *a, const el_id_bundle *b,
                             char out[EL_SAFETY_SIZE]);

/* Writes `number` (exactly 60 ASCII digits) as 12 groups of 5 digits
 * separated by single spaces: "12345 67890 ... 34567". Returns EL_OK, or
 * EL_ERR_INVALID when `number` is not 60 digits or an argument is NULL. */
int el_safety_format(const char *number, char out[EL_SAFETY_FMT_SIZE]);

#endif
