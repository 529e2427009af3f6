/* noise.h - the Noise Protocol Framework (revision 34) as EchoLink uses it:
 * DH = 25519, cipher = AESGCM, hash = SHA256, patterns XX (the session
 * handshake, docs/PROTOCOL.md §9) and X (sealed envelopes, §10.3). Checked
 * against the published cacophony/snow vectors in tests/vectors/noise.json.
 *
 * Two objects, as in the spec (§5):
 *   el_noise_cipher  a CipherState: an AES-256-GCM key (or none) and a
 *                    64-bit nonce n; nonce bytes = 0x00000000 ‖ u64(n).
 *                    Also used on its own for transport (frame.c).
 *   el_noise         a HandshakeState (with its SymmetricState inside).
 *
 * The handshake can be driven message by message (el_noise_write_message /
 * el_noise_read_message) or in two steps per message, tokens then payload,
 * because EchoLink signs the handshake hash h that is the associated data
 * of the payload's encryption (§9, hs_sig): call el_noise_write_tokens,
 * read el_noise_hash, build the payload, then el_noise_write_payload (and
 * el_noise_read_tokens / el_noise_hash / el_noise_read_payload to receive).
 *
 * Errors: EL_ERR_INVALID for bad arguments, for a DH whose output is all
 * zeros (a low-order public key) and for a received message too short for
 * its tokens; EL_ERR_CRYPTO when an AEAD tag does not
 * verify or the backend fails; EL_ERR_TOO_LARGE when `cap` is too small or
 * a message exceeds 65535 bytes; EL_ERR_STATE for a call out of turn or
 * after a failure (a failed handshake is dead: every later call fails) or a
 * nonce that reached 2^64-1; EL_ERR_NOMEM. Objects are not thread-safe; one
 * owner at a time. Nothing keeps global state. */
#ifndef EL_CRYPTO_NOISE_H
#define EL_CRYPTO_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define EL_NOISE_KEYLEN 32   /* cipher key, DH key and hash length */
#define EL_NOISE_TAGLEN 16
#define EL_NOISE_MSG_MAX 65535

/* ---- CipherState -------------------------------------------------------- */

typedef struct el_noise_cipher el_noise_cipher;

/* A CipherState without a key (encrypt/decrypt copy data through until a
 * key is set). *out is NULL on failure. EL_OK / EL_ERR_NOMEM / EL_ERR_CRYPTO. */
int el_noise_cipher_new(el_noise_cipher **out);
/* InitializeKey(k): sets the key and n = 0. `k` is only read. */
int el_noise_cipher_set_key(el_noise_cipher *c, const uint8_t k[EL_NOISE_KEYLEN]);
int el_noise_cipher_has_key(const el_noise_cipher *c);
void el_noise_cipher_set_nonce(el_noise_cipher *c, uint64_t n);
uint64_t el_noise_cipher_nonce(const el_noise_cipher *c);
/* EncryptWithAd: out = ciphertext ‖ tag (ptlen + 16 bytes; ptlen bytes
 * without a key), then n += 1. `out` may equal `pt` (same start), no other
 * overlap. n = 2^64-1 is refused (EL_ERR_STATE), as Noise reserves it. */
int el_noise_cipher_encrypt(el_noise_cipher *c, const uint8_t *ad, size_t adlen,
                            const uint8_t *pt, size_t ptlen,
                            uint8_t *out, size_t cap, size_t *outlen);
/* DecryptWithAd: on success n += 1. On EL_ERR_CRYPTO (tag wrong) nothing
 * changes and the first ctlen-16 bytes of `out` are zeroed (unauthenticated
 * plaintext never reaches the caller). `out` may equal `ct`. */
int el_noise_cipher_decrypt(el_noise_cipher *c, const uint8_t *ad, size_t adlen,
                            const uint8_t *ct, size_t ctlen,
                            uint8_t *out, size_t cap, size_t *outlen);
/* REKEY: k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes); n
 * is unchanged. No-op without a key. */
int el_noise_cipher_rekey(el_noise_cipher *c);
/* Frees and clears the key; NULL is a no-op. */
void el_noise_cipher_free(el_noise_cipher *c);

/* ---- HandshakeState ----------------------------------------------------- */

typedef enum {
    EL_NOISE_XX, /* -> e; <- e, ee, s, es; -> s, se */
    EL_NOISE_X,  /* <- s (pre-message); -> e, es, s, ss */
} el_noise_pattern;

typedef struct el_noise el_noise;

/* Initialize(): protocol name Noise_<pattern>_25519_AESGCM_SHA256, then
 * MixHash(prologue), then the pre-messages. `s_priv` is our static X25519
 * private key (required: both patterns use it on both sides); `s_pub` its
 * public key if the caller already knows it (it saves a scalar
 * multiplication; it must match s_priv), else NULL; `rs` the responder's
 * static public key, required for the X initiator and ignored otherwise. All inputs are copied or only
 * read during the call; the caller cleanses its own copies. */
int el_noise_new(el_noise **out, el_noise_pattern pattern, int initiator,
                 const uint8_t *prologue, size_t prologue_len,
                 const uint8_t s_priv[EL_NOISE_KEYLEN], const uint8_t s_pub[EL_NOISE_KEYLEN],
                 const uint8_t rs[EL_NOISE_KEYLEN]);

/* Test vectors only: the private key to use for our `e` token instead of a
 * fresh random one. Must be called before that token is written. */
int el_noise_set_ephemeral(el_noise *n, const uint8_t priv[EL_NOISE_KEYLEN]);

/* WriteMessage / ReadMessage in one call. The read payload goes to
 * out/cap (*outlen bytes). */
int el_noise_write_message(el_noise *n, const uint8_t *payload, size_t plen,
                           uint8_t *out, size_t cap, size_t *outlen);
int el_noise_read_message(el_noise *n, const uint8_t *msg, size_t len,
                          uint8_t *out, size_t cap, size_t *outlen);

/* The same in two steps. write_tokens writes the tokens of the next message
 * (e, s, and performs the DHs) into out; write_payload then appends
 * EncryptAndHash(payload) at its own `out` (pass out + the tokens' length).
 * read_tokens consumes the tokens from the front of msg and says how many
 * bytes they took (*used); read_payload decrypts the rest. Each message is
 * exactly one tokens call followed by one payload call. */
int el_noise_write_tokens(el_noise *n, uint8_t *out, size_t cap, size_t *outlen);
int el_noise_write_payload(el_noise *n, const uint8_t *payload, size_t plen,
                           uint8_t *out, size_t cap, size_t *outlen);
int el_noise_read_tokens(el_noise *n, const uint8_t *msg, size_t len, size_t *used);
int el_noise_read_payload(el_noise *n, const uint8_t *msg, size_t len,
                          uint8_t *out, size_t cap, size_t *outlen);

/* The current handshake hash h (32 bytes; after the last message, the final
 * one). Valid until the next call on `n`. */
const uint8_t *el_noise_hash(const el_noise *n);
/* The remote static key once received (or pre-shared), else NULL. */
const uint8_t *el_noise_remote_static(const el_noise *n);
/* 1 when every message of the pattern has been written or read. */
int el_noise_is_complete(const el_noise *n);
/* 1 when the next message is ours to write. */
int el_noise_my_turn(const el_noise *n);
/* Split(): the two transport keys, k1 for initiator->responder and k2 for
 * responder->initiator, as raw bytes (the caller cleanses them). Only after
 * the last message; the chaining key is wiped, h stays readable. */
int el_noise_split(el_noise *n, uint8_t k1[EL_NOISE_KEYLEN], uint8_t k2[EL_NOISE_KEYLEN]);
/* Frees and clears every secret; NULL is a no-op. */
void el_noise_free(el_noise *n);

#endif
