/* trust.h - trust on first use: the key bundle pinned per peer ID
 * (docs/PROTOCOL.md §10.2), kept in a small SQLite database of the client.
 *
 * A peer's bundle (ik, sk, sk_sig) is pinned the first time a handshake or an
 * envelope from that peer succeeds. The peer ID is the hash of ik, so a bundle
 * whose ik does not hash to the peer ID is never a key change: it is refused
 * as a failed handshake (EL_ERR_CRYPTO). A later bundle that differs from the
 * pin (in practice a new static key sk) is a key change: it is recorded as
 * *pending* next to the old pin, the peer becomes `changed`, and it stays so
 * until the user decides (el_trust_accept_change / el_trust_reject_change).
 * Nothing here ever replaces a pin without that call.
 *
 * State machine (what el_trust_check returns, and the stored state):
 *
 *   (no row) --check--> NEW            pinned; stored as KNOWN
 *   KNOWN    --check same bundle-->  KNOWN
 *   KNOWN    --set_verified------->  VERIFIED (the user compared safety numbers)
 *   VERIFIED --check same bundle-->  VERIFIED
 *   KNOWN / VERIFIED --check other bundle--> CHANGED (old pin kept, new one
 *                                      pending; the verification is lost)
 *   CHANGED  --check any bundle--->  CHANGED (a third bundle replaces the
 *                                      pending one; the pin never moves)
 *   CHANGED  --accept_change------>  KNOWN with the pending bundle pinned
 *   CHANGED  --reject_change------>  KNOWN with the old pin, pending dropped
 *
 * NEW is an event, not a stored state: it is returned by the one check that
 * pins, and el_trust_get then reports KNOWN. A client sends nothing to a peer
 * whose state is CHANGED, and warns the user loudly.
 *
 * Storage: the database file is created with mode 0600, and an existing one
 * whose mode grants anything to group or others is refused (whoever can write
 * it can plant pins). ":memory:" opens a private in-memory store (tests). The
 * schema is versioned with PRAGMA user_version; a newer schema than this
 * build knows is refused, never downgraded. Every function that writes does
 * so in one transaction (BEGIN IMMEDIATE), so several handles or processes
 * may share a file.
 *
 * Conventions: functions return EL_OK or a negative el_err (base/err.h) and,
 * when `err` is not NULL, describe a failure in err/errlen. Strings and
 * bundles are only read during the call. EL_ERR_INVALID: NULL or malformed
 * argument (a peer ID must be 32 characters of [a-z2-7]); EL_ERR_CRYPTO: a
 * bundle whose sk_sig does not verify or whose ik does not hash to the peer
 * ID; EL_ERR_NOT_FOUND: no pin for the peer; EL_ERR_DENIED: the operation
 * does not apply in the peer's state; EL_ERR_DB / EL_ERR_IO: storage. One
 * el_trust is used by one thread at a time. */
#ifndef EL_CLIENT_TRUST_H
#define EL_CLIENT_TRUST_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto/identity.h"

typedef enum {
    EL_TRUST_NEW = 1,      /* pinned just now (returned by el_trust_check only) */
    EL_TRUST_KNOWN = 2,    /* pinned, not verified */
    EL_TRUST_VERIFIED = 3, /* pinned, safety number compared by the user */
    EL_TRUST_CHANGED = 4,  /* a different bundle is pending the user's decision */
} el_trust_state;

typedef struct el_trust el_trust;

/* What is stored for one peer. Plain data. */
typedef struct {
    el_trust_state state;  /* KNOWN, VERIFIED or CHANGED */
    el_id_bundle pinned;   /* the bundle trusted now */
    bool has_pending;      /* true exactly when state is CHANGED */
    el_id_bundle pending;  /* the newest differing bundle (when has_pending) */
} el_trust_entry;

/* Opens (creating if needed) the store at `path`, or ":memory:". On success
 * *out owns a handle for el_trust_close(); on failure *out is NULL. */
int el_trust_open(el_trust **out, const char *path, char *err, size_t errlen);

/* Closes the handle; NULL is a no-op. */
void el_trust_close(el_trust *t);

/* The TOFU decision for a bundle just authenticated by a handshake or an
 * envelope from `peer_id`: pins it when the peer is unknown (NEW), otherwise
 * compares it with the pin as the state machine above says. On success
 * *state is set; on failure nothing is written. */
int el_trust_check(el_trust *t, const char *peer_id, const el_id_bundle *bundle,
                   el_trust_state *state, char *err, size_t errlen);

/* The user accepts the pending key change: the pending bundle becomes the pin
 * and the state KNOWN (not VERIFIED: the user compares safety numbers again).
 * When `expected` is not NULL it must equal the pending bundle (the one the
 * user was shown), else EL_ERR_DENIED and nothing changes: a bundle that
 * arrived in between is never accepted unseen. EL_ERR_DENIED also when no
 * change is pending. */
int el_trust_accept_change(el_trust *t, const char *peer_id, const el_id_bundle *expected,
                           char *err, size_t errlen);

/* The user rejects the pending key change: the old pin stays, the pending
 * bundle is dropped, the state is KNOWN. EL_ERR_DENIED when nothing is
 * pending. The peer will be CHANGED again when it presents the new bundle. */
int el_trust_reject_change(el_trust *t, const char *peer_id, char *err, size_t errlen);

/* Marks a peer VERIFIED after the user compared safety numbers (of the
 * pinned bundle). EL_ERR_DENIED while a key change is pending: decide first. */
int el_trust_set_verified(el_trust *t, const char *peer_id, char *err, size_t errlen);

/* Reads what is stored for `peer_id` into *out (EL_ERR_NOT_FOUND if none). */
int el_trust_get(el_trust *t, const char *peer_id, el_trust_entry *out, char *err,
                 size_t errlen);

/* "new", "known", "verified", "changed", or "?" for another value. */
const char *el_trust_state_name(el_trust_state s);

#endif
