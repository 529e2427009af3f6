/* el_identity.h - a user's identity for logging in to an echolinkd: two key
 * pairs (Ed25519 to sign, X25519 for end-to-end encryption) and the peer ID
 * derived from them, the address other users send signaling to.
 *
 *   el_identity *me = NULL;
 *   if (el_identity_generate(&me, err, sizeof err) != 0) ...   // fresh keys
 *   printf("I am %s\n", el_identity_peer_id(me));
 *   el_identity_save(me, "me.key", NULL, 0, err, sizeof err);   // keep them
 *   ... el_signal_new(ctx, me, ...);                            // el_signal.h
 *   el_identity_free(me);
 *
 * The key file is the C client's (`echolink init` writes one): a small JSON
 * object, unencrypted or encrypted under a passphrase (scrypt + AES-256-GCM),
 * written with mode 0600 and refused on load when group or others may read
 * it (docs/PROTOCOL.md §10.4).
 *
 * Errors: functions returning int return 0 on success and a negative code on
 * failure, with a sentence in `err` (errlen bytes, may be NULL/0).
 *
 * Lifetime and threads: an el_identity is immutable once made and may be
 * shared by several threads and several el_signal clients; it must outlive
 * every el_signal it was given to. Secret keys are cleared when it is freed.
 * No global state. */
#ifndef ECHOLINK_EL_IDENTITY_H
#define ECHOLINK_EL_IDENTITY_H

#include <stddef.h>

typedef struct el_identity el_identity;

/* Flag of el_identity_save: replace an existing file (atomically). */
#define EL_IDENTITY_REPLACE 1u

/* Creates a fresh identity from the system's random generator. On success
 * *out owns it (el_identity_free); on failure *out is NULL. */
int el_identity_generate(el_identity **out, char *err, size_t errlen);

/* Loads a key file. `passphrase` may be NULL for an unencrypted file (an
 * encrypted one then fails and err says a passphrase is needed). Fails when
 * the file does not exist, is readable by group or others, is malformed, or
 * the passphrase is wrong. On success *out owns the identity; else NULL. */
int el_identity_load(const char *path, const char *passphrase, el_identity **out, char *err,
                     size_t errlen);

/* Writes `id` to `path` (mode 0600, through a temporary file and a rename,
 * so a crash leaves the old file or the new one), encrypted under
 * `passphrase` unless it is NULL. An existing file is an error unless
 * `flags` has EL_IDENTITY_REPLACE: an identity is never lost by accident. */
int el_identity_save(const el_identity *id, const char *path, const char *passphrase,
                     unsigned flags, char *err, size_t errlen);

/* The peer ID: 32 characters [a-z2-7], owned by `id`, valid until
 * el_identity_free. */
const char *el_identity_peer_id(const el_identity *id);

/* Frees the identity and clears its secrets; NULL is a no-op. */
void el_identity_free(el_identity *id);

#endif
