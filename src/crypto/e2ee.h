/* e2ee.h - the EchoLink session handshake on the `chat` channel and the
 * channel keys derived from it (docs/PROTOCOL.md §9, §9.1, §9.2; vectors in
 * tests/vectors/e2ee.json "handshake", "handshake_negative",
 * "handshake_negative_responder").
 *
 * Noise_XX_25519_AESGCM_SHA256 with the users' X25519 keys `sk` as Noise
 * static keys, bound to the connection by the prologue
 * "echolink-v1-noise" 0x00 ‖ fp_I ‖ fp_R (SHA-256 of each side's DTLS
 * certificate). HS2 and HS3 carry a 160-byte identity payload
 * ik ‖ sk_sig ‖ hs_sig, hs_sig = Ed25519(ik) over "echolink-v1-handshake"
 * 0x00 ‖ h, h being the handshake hash the payload is encrypted under.
 *
 *   | type | name  | direction | after the type byte              | bytes |
 *   |------|-------|-----------|----------------------------------|-------|
 *   | 0x01 | HS1   | I -> R    | e (32)                           | 33    |
 *   | 0x02 | HS2   | R -> I    | e ‖ AEAD(s) (48) ‖ AEAD(payload) | 257   |
 *   | 0x03 | HS3   | I -> R    | AEAD(s) (48) ‖ AEAD(payload)     | 225   |
 *   | 0x04 | ABORT | either    | reason u8                        | 2     |
 *
 * Use (one el_hs per connection, driven by its owner thread):
 *   initiator: el_hs_start -> send HS1;
 *   both: for each message received on `chat` while !el_hs_is_done (and,
 *   for any 2-byte message starting 0x04, also after): el_hs_recv; send
 *   what it puts in `out` (*outlen > 0), be it a reply or an ABORT; on a
 *   non-zero result close the connection after sending.
 *   The caller's 10 s timer: el_hs_timeout, send the ABORT.
 *   Once done: el_hs_channel(label) for each data channel.
 * The initiator is done when it has produced HS3; if the responder then
 * rejects HS3 it sends ABORT, which el_hs_recv turns into a failure (the
 * keys are wiped, el_hs_is_done becomes 0).
 *
 * Results: EL_OK; on the call that fails the handshake, EL_ERR_CRYPTO
 * (binding, identity, signature), EL_ERR_INVALID (malformed), EL_ERR_STATE
 * (unexpected message) or EL_ERR_DENIED (the peer aborted) - el_hs_failure()
 * says which precisely. A failed handshake is final: every later call
 * returns EL_ERR_STATE and sends nothing. Argument errors (NULL, `cap` below
 * EL_HS_MSG_MAX) return EL_ERR_INVALID / EL_ERR_TOO_LARGE and change
 * nothing. */
#ifndef EL_CRYPTO_E2EE_H
#define EL_CRYPTO_E2EE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/frame.h"
#include "crypto/identity.h"

#define EL_HS1 0x01
#define EL_HS2 0x02
#define EL_HS3 0x03
#define EL_HS_ABORT 0x04
#define EL_HS1_LEN 33
#define EL_HS2_LEN 257
#define EL_HS3_LEN 225
#define EL_HS_ABORT_LEN 2
#define EL_HS_MSG_MAX EL_HS2_LEN  /* an `out` of this size holds any reply */
#define EL_HS_PAYLOAD_LEN 160
#define EL_HS_TIMEOUT_MS 10000
#define EL_HS_LABEL_MAX 34        /* "f:" + 32 hex */

typedef enum { EL_HS_INITIATOR, EL_HS_RESPONDER } el_hs_role;

/* 1..6 are also the ABORT reason bytes. */
typedef enum {
    EL_HS_FAIL_NONE = 0,
    EL_HS_FAIL_BINDING = 1,    /* identity/channel binding mismatch: a Noise ciphertext did not decrypt */
    EL_HS_FAIL_IDENTITY = 2,   /* identity mismatch: peer_id(ik) is not the expected peer */
    EL_HS_FAIL_SIGNATURE = 3,  /* bad signature: sk_sig or hs_sig */
    EL_HS_FAIL_MALFORMED = 4,  /* an all-zero DH (low-order key), or an internal failure */
    EL_HS_FAIL_TIMEOUT = 5,
    EL_HS_FAIL_UNEXPECTED = 6, /* wrong type, length or time */
    EL_HS_FAIL_ABORTED = 7     /* the peer sent ABORT (el_hs_peer_reason says why) */
} el_hs_fail;

typedef struct el_hs el_hs;

/* A handshake for one connection. `self` is borrowed: it signs hs_sig when
 * our payload is written, so it must outlive the handshake.
 * `expected_peer_id` is the peer the connection was made for (signaling
 * from/to); fp_initiator/fp_responder the two 32-byte DTLS certificate
 * fingerprints as this side sees them. EL_OK, EL_ERR_INVALID (NULL, a
 * malformed peer ID), EL_ERR_NOMEM, EL_ERR_CRYPTO; *out NULL on failure. */
int el_hs_new(el_hs **out, el_hs_role role, const el_identity *self, const char *expected_peer_id,
              const uint8_t fp_initiator[32], const uint8_t fp_responder[32]);

/* Test vectors only: our ephemeral private key. Before start/recv, else
 * EL_ERR_STATE. */
int el_hs_set_ephemeral(el_hs *hs, const uint8_t priv[32]);

/* Initiator: writes HS1 (33 bytes) into out. EL_ERR_STATE for a responder
 * or a second call; EL_ERR_TOO_LARGE when cap < 33. */
int el_hs_start(el_hs *hs, uint8_t *out, size_t cap, size_t *outlen);

/* One message received on `chat` during the handshake (see the top of the
 * file). cap must be at least EL_HS_MSG_MAX. On EL_OK, *outlen is the size of
 * the reply to send (HS2 or HS3), or 0. On failure *outlen is 2 and out
 * holds the ABORT to send, unless the input was itself an ABORT (then 0).
 * After done, only an ABORT is acted upon; anything else returns
 * EL_ERR_STATE and changes nothing (frames are not the handshake's). */
int el_hs_recv(el_hs *hs, const uint8_t *msg, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* The caller's handshake timer fired: fails with TIMEOUT and writes the
 * ABORT (2 bytes) to send; EL_OK. EL_ERR_STATE (nothing written) when the
 * handshake is already done or failed. */
int el_hs_timeout(el_hs *hs, uint8_t *out, size_t cap, size_t *outlen);

/* 1 after the last handshake message was sent (initiator) or received
 * (responder) successfully, and no ABORT arrived since. */
int el_hs_is_done(const el_hs *hs);
el_hs_role el_hs_role_of(const el_hs *hs);
el_hs_fail el_hs_failure(const el_hs *hs);
/* The reason byte of a received ABORT (any value 0..255), or -1. */
int el_hs_peer_reason(const el_hs *hs);
/* Human text of the failure ("" if none), e.g. "identity/channel binding
 * mismatch" or "peer aborted: identity mismatch". Owned by hs. */
const char *el_hs_error(const el_hs *hs);

/* After done (NULL otherwise): the peer's verified bundle (ik, its Noise
 * static key sk, sk_sig) and the final handshake hash h (32 bytes). Owned by
 * hs, valid until el_hs_free or a later failure. */
const el_id_bundle *el_hs_remote_bundle(const el_hs *hs);
const uint8_t *el_hs_hash(const el_hs *hs);

/* The two frame ciphers of a channel (§9.2): *tx seals what we send, *rx
 * opens what we receive; key(dir, label) = HKDF-SHA256(salt = h, ikm = k_dir,
 * info = "echolink-v1-channel" 0x00 ‖ label, 32). The caller owns both (free
 * with el_fcipher_free). EL_ERR_STATE before done, EL_ERR_INVALID for an
 * invalid label. The rule "each label at most once per session" is the
 * caller's (hs is not modified here): derive a label's ciphers once. */
int el_hs_channel(const el_hs *hs, const char *label, el_fcipher **tx, el_fcipher **rx);

/* 1 for "chat" or "f:" followed by 32 lowercase hex digits, else 0. */
int el_hs_valid_label(const char *label);

/* Frees and clears every secret; NULL is a no-op. */
void el_hs_free(el_hs *hs);

#endif
