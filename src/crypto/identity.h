/* identity.h - user identity keys, key bundles, peer IDs and login
 * signatures (docs/PROTOCOL.md §2; vectors in tests/vectors/identity.json).
 *
 * A user owns two key pairs:
 *   ik  Ed25519 identity key: signs the bundle and every login challenge;
 *   sk  X25519 static key: the target of E2EE sealing (used by later modules).
 *
 * Key bundle (what the server and other peers see), all base64url unpadded:
 *
 *   | field  | bytes | content                                              |
 *   |--------|-------|------------------------------------------------------|
 *   | ik     | 32    | Ed25519 public key                                   |
 *   | sk     | 32    | X25519 public key                                    |
 *   | sk_sig | 64    | Ed25519(ik) over "echolink-v1-static-key" 0x00 ‖ sk  |
 *
 * Peer ID = base32-lower-nopad(SHA-256("echolink-v1-peer-id" 0x00 ‖ ik)[0..20))
 *           = 32 characters [a-z2-7].
 * Login signature = Ed25519(ik) over "echolink-v1-login" 0x00 ‖ nonce(32) ‖ sid
 *           where sid is the Socket.IO socket id (printable ASCII).
 *
 * Verification is stricter than a bare RFC 8032 check, identically in C and
 * in web/lib/identity.js: S must be < L, and small-order points are refused
 * both as ik and as the R half of a signature (see identity.c for why).
 *
 * Errors: EL_ERR_INVALID for malformed input (the server answers
 * `bad_request`), EL_ERR_CRYPTO for a signature that does not verify or a
 * backend failure (`bad_signature`). Nothing here keeps global state; an
 * el_identity is immutable after creation and may be used from several
 * threads at once. */
#ifndef EL_CRYPTO_IDENTITY_H
#define EL_CRYPTO_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

/* the public part: el_identity, generate/load/save/peer ID/free */
#include <echolink/el_identity.h>

#define EL_ID_KEY_LEN 32    /* Ed25519 / X25519 public or private key, bytes */
#define EL_ID_SIG_LEN 64    /* Ed25519 signature, bytes */
#define EL_ID_NONCE_LEN 32  /* login challenge nonce, bytes */
#define EL_PEER_ID_LEN 32   /* peer ID, characters (without NUL) */
#define EL_ID_SID_MAX 128   /* longest sid accepted in a login signature */

/* base64url text forms: _LEN is the exact length without NUL (EL_B64URL_LEN
 * of the byte length), _SIZE the buffer size including the NUL. */
#define EL_ID_KEY_B64_LEN 43
#define EL_ID_KEY_B64_SIZE (EL_ID_KEY_B64_LEN + 1)
#define EL_ID_SIG_B64_LEN 86
#define EL_ID_SIG_B64_SIZE (EL_ID_SIG_B64_LEN + 1)
#define EL_ID_NONCE_B64_LEN 43
#define EL_ID_NONCE_B64_SIZE (EL_ID_NONCE_B64_LEN + 1)

/* A public key bundle. Plain data: copy it freely. A bundle produced by
 * el_id_bundle_from_b64() or el_identity_bundle() has a verified sk_sig; one
 * filled in by hand must go through el_id_bundle_verify() before it is
 * trusted. */
typedef struct {
    uint8_t ik[EL_ID_KEY_LEN];
    uint8_t sk[EL_ID_KEY_LEN];
    uint8_t sk_sig[EL_ID_SIG_LEN];
} el_id_bundle;

/* Decodes the three bundle fields (NUL-terminated, canonical unpadded
 * base64url of exactly 32/32/64 bytes) and verifies sk_sig. Returns EL_OK;
 * EL_ERR_INVALID when a field is NULL or malformed; EL_ERR_CRYPTO when sk_sig
 * does not verify. On failure `err` names the field and *out is zeroed. */
int el_id_bundle_from_b64(el_id_bundle *out, const char *ik, const char *sk,
                          const char *sk_sig, char *err, size_t errlen);

/* Writes the bundle's three base64url strings (NUL-terminated). Returns
 * EL_OK, or EL_ERR_INVALID when an argument is NULL. */
int el_id_bundle_to_b64(const el_id_bundle *b, char ik[EL_ID_KEY_B64_SIZE],
                        char sk[EL_ID_KEY_B64_SIZE],
                        char sk_sig[EL_ID_SIG_B64_SIZE]);

/* Verifies b->sk_sig over b->sk with b->ik: EL_OK or EL_ERR_CRYPTO. */
int el_id_bundle_verify(const el_id_bundle *b);

/* Computes the peer ID of `ik` into `out` (32 characters + NUL). Returns
 * EL_OK; EL_ERR_INVALID for a NULL argument; EL_ERR_CRYPTO if the hash backend
 * fails. On failure `out` (if not NULL) is the empty string, which is never a
 * valid peer ID. */
int el_id_peer_id(const uint8_t ik[EL_ID_KEY_LEN], char out[EL_PEER_ID_LEN + 1]);

/* Syntax check only: 1 when `s` is exactly 32 characters of [a-z2-7], else 0
 * (also for NULL). Whether an ik hashes to it is el_id_peer_id's job. */
int el_id_valid_peer_id(const char *s);

/* Verifies a login signature made by b->ik over `nonce` and `sid` (a
 * NUL-terminated string). Returns EL_OK, or EL_ERR_CRYPTO for anything that is
 * not a valid signature (including a NULL argument or a sid that is empty,
 * longer than EL_ID_SID_MAX or not printable ASCII). `b` is trusted to be
 * verified already; this checks only the login signature. */
int el_id_verify_login(const el_id_bundle *b, const uint8_t nonce[EL_ID_NONCE_LEN],
                       const char *sid, const uint8_t sig[EL_ID_SIG_LEN]);

/* Same, with the signature as it arrives on the wire (base64url text).
 * Returns EL_ERR_INVALID when `sig_b64` is NULL or not canonical base64url of
 * 64 bytes (`bad_request`), otherwise as el_id_verify_login. */
int el_id_verify_login_b64(const el_id_bundle *b, const uint8_t nonce[EL_ID_NONCE_LEN],
                           const char *sid, const char *sig_b64);

/* A private identity (el_identity, declared in the public el_identity.h):
 * both key pairs plus the derived bundle and peer ID. The secret keys live
 * in OpenSSL key objects, which clear them when freed. */

/* Builds an identity from a 32-byte Ed25519 seed and a 32-byte X25519 private
 * key (used as given; X25519 clamps at use). The inputs are only read during
 * the call; the caller cleanses its own copies. On success *out owns a new
 * identity for el_identity_free(). Returns EL_OK, EL_ERR_INVALID (NULL
 * argument), EL_ERR_NOMEM or EL_ERR_CRYPTO; on failure *out is NULL. */
int el_identity_new(el_identity **out, const uint8_t ik_seed[EL_ID_KEY_LEN],
                    const uint8_t sk_private[EL_ID_KEY_LEN], char *err, size_t errlen);

/* el_identity_generate (from RAND_bytes; same results as el_identity_new),
 * el_identity_free and el_identity_peer_id are public: el_identity.h.
 * el_identity_load and el_identity_save are the key file of crypto/backup.h
 * (el_backup_load_file / el_backup_save_file) under public names; their
 * codes are backup.h's. */

/* The public bundle (sk_sig already made and checked). The returned pointer
 * belongs to `id` and is valid until el_identity_free. */
const el_id_bundle *el_identity_bundle(const el_identity *id);

/* Signs a login challenge (see el_id_verify_login for sid rules). Returns
 * EL_OK, EL_ERR_INVALID for a NULL argument or an unacceptable sid, or
 * EL_ERR_CRYPTO when signing fails. */
int el_identity_sign_login(const el_identity *id, const uint8_t nonce[EL_ID_NONCE_LEN],
                           const char *sid, uint8_t sig[EL_ID_SIG_LEN]);
/* Same, writing the signature as base64url text for the `login` event. */
int el_identity_sign_login_b64(const el_identity *id, const uint8_t nonce[EL_ID_NONCE_LEN],
                               const char *sid, char sig_b64[EL_ID_SIG_B64_SIZE]);

/* Verifies an Ed25519 signature by `ik` over any message with the same
 * strictness as the bundle and login checks (S < L, no small-order key or
 * R). EL_OK or EL_ERR_CRYPTO (also for NULL arguments). */
int el_id_verify(const uint8_t ik[EL_ID_KEY_LEN], const uint8_t *msg, size_t len,
                 const uint8_t sig[EL_ID_SIG_LEN]);

/* Signs any message with the identity key (callers domain-separate their
 * messages with a "echolink-v1-..." label). EL_OK, EL_ERR_INVALID for NULL
 * arguments, EL_ERR_CRYPTO when signing fails. */
int el_identity_sign(const el_identity *id, const uint8_t *msg, size_t len,
                     uint8_t sig[EL_ID_SIG_LEN]);

/* Copy out secret key material (for E2EE key agreement and for saving the
 * identity). The caller owns the copy and must OPENSSL_cleanse it after use.
 * Return EL_OK, or EL_ERR_INVALID / EL_ERR_CRYPTO with `out` zeroed. */
int el_identity_sk_private(const el_identity *id, uint8_t out[EL_ID_KEY_LEN]);
int el_identity_ik_seed(const el_identity *id, uint8_t out[EL_ID_KEY_LEN]);

#endif
