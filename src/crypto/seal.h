/* seal.h - sealed envelopes: offline messages encrypted to a recipient's
 * static key (docs/PROTOCOL.md §10.3; vectors: tests/vectors/e2ee.json
 * "seal", "seal_negative").
 *
 * Noise_X_25519_AESGCM_SHA256 (-> e, es, s, ss) to the recipient's sk,
 * prologue "echolink-v1-seal" 0x00:
 *
 *   | offset | bytes  | field                                            |
 *   |--------|--------|--------------------------------------------------|
 *   | 0      | 1      | 0x20 (version 1)                                 |
 *   | 1      | 32     | e                                                |
 *   | 33     | 48     | AEAD(s), the sender's sk                         |
 *   | 81     | p + 16 | AEAD(payload)                                    |
 *
 * payload = sender ik (32) ‖ sk_sig (64, over s as in §2) ‖ plaintext
 * (kind ‖ body as in §9.3, at least 1 byte). Envelopes are 194..36864 bytes.
 *
 * el_seal_open results (el_seal_reason() names them):
 *   EL_ERR_INVALID  malformed: shorter than 194, longer than 36864, first
 *                   byte not 0x20 (checked before any crypto), or a DH
 *                   output of all zeros (low-order key)
 *   EL_ERR_CRYPTO   auth: does not decrypt (not for this recipient, altered)
 *   EL_ERR_DENIED   signature: sk_sig does not verify by the payload's ik
 *                   over the decrypted s
 * plus EL_ERR_TOO_LARGE when `cap` cannot hold the plaintext (checked first,
 * from the length), EL_ERR_NOMEM. Dropping an envelope whose sender differs
 * from the server's `from` is the caller's job (compare sender_peer_id). */
#ifndef EL_CRYPTO_SEAL_H
#define EL_CRYPTO_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/identity.h"

#define EL_SEAL_VERSION 0x20
#define EL_SEAL_OVERHEAD 193                 /* envelope bytes beyond the plaintext */
#define EL_SEAL_MIN (EL_SEAL_OVERHEAD + 1)   /* 194: a kind byte, no body */
#define EL_SEAL_MAX 36864                    /* the server's 49152 base64url chars */
#define EL_SEAL_PT_MAX (EL_SEAL_MAX - EL_SEAL_OVERHEAD)

/* Seals pt (1..EL_SEAL_PT_MAX bytes) from `sender` to `recipient` into out
 * (ptlen + 193 bytes). `recipient` must be a bundle from a handshake, an
 * envelope or el_id_bundle_from_b64; its sk_sig is checked again here
 * (EL_ERR_CRYPTO if it does not verify). EL_ERR_INVALID for NULL arguments
 * or an empty pt; EL_ERR_TOO_LARGE for a pt too long or cap too small. */
int el_seal(const el_identity *sender, const el_id_bundle *recipient, const uint8_t *pt, size_t ptlen,
            uint8_t *out, size_t cap, size_t *outlen);

/* Test vectors only: the same with a given ephemeral private key. */
int el_seal_with_ephemeral(const el_identity *sender, const el_id_bundle *recipient, const uint8_t *pt,
                           size_t ptlen, uint8_t *out, size_t cap, size_t *outlen,
                           const uint8_t e_priv[32]);

/* Opens an envelope sealed to `recipient`. On EL_OK the plaintext (len - 193
 * bytes) is in pt, *sender (if not NULL) is the sender's verified bundle and
 * sender_peer_id (if not NULL) its peer ID. On failure (table above) *ptlen
 * is 0, pt holds nothing of the envelope, *sender is zeroed and
 * sender_peer_id is "". */
int el_seal_open(const el_identity *recipient, const uint8_t *env, size_t len,
                 el_id_bundle *sender, char sender_peer_id[33], uint8_t *pt, size_t cap, size_t *ptlen);

/* "malformed", "auth", "signature" for el_seal_open's results, "error"
 * otherwise. */
const char *el_seal_reason(int rc);

#endif
