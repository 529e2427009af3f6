/* frame.h - transport frames (DATA) of one direction of one channel
 * (docs/PROTOCOL.md §9.3; vectors: tests/vectors/e2ee.json "frames",
 * "bad_frames", "rekey").
 *
 *   | offset | bytes | field                            |
 *   |--------|-------|----------------------------------|
 *   | 0      | 1     | 0x10                             |
 *   | 1      | 8     | n, frame counter (u64 BE)        |
 *   | 9      | c     | AES-256-GCM ciphertext           |
 *   | 9+c    | 16    | GCM tag                          |
 *
 * nonce = 0x00000000 ‖ u64(n), associated data = bytes 0..8. The sender's n
 * starts at 0 and grows by one; the receiver accepts only n == its expected
 * counter. Every 65536 frames (before using an n > 0 with n mod 65536 = 0)
 * both sides replace the key with Noise REKEY(k). n never wraps: a channel
 * whose counter reaches 2^64-1 is exhausted (EL_ERR_STATE), close it.
 *
 * An el_fcipher is either the sending or the receiving side (use one for
 * seal, another for open). It owns one AES-GCM context, keyed once per
 * epoch; seal and open allocate nothing. Not thread-safe.
 *
 * el_fcipher_open's result says why a frame was dropped; each reason is
 * counted in the stats and leaves the state (counter, key) unchanged:
 *   EL_ERR_INVALID  truncated: shorter than 25 bytes, longer than 262144,
 *                   or type byte not 0x10
 *   EL_ERR_EXISTS   replay: n below the expected counter
 *   EL_ERR_STATE    reorder: n above the expected counter (also: channel
 *                   exhausted, not counted)
 *   EL_ERR_CRYPTO   auth: the tag does not verify (wrong key or altered)
 * Checked in that order. EL_ERR_TOO_LARGE (not counted, nothing changes)
 * when `cap` cannot hold the plaintext. */
#ifndef EL_CRYPTO_FRAME_H
#define EL_CRYPTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define EL_FRAME_DATA 0x10
#define EL_FRAME_HEADER 9
#define EL_FRAME_OVERHEAD 25        /* header + tag */
#define EL_FRAME_MAX 262144         /* a=max-message-size */
#define EL_FRAME_PT_MAX (EL_FRAME_MAX - EL_FRAME_OVERHEAD)
#define EL_FRAME_REKEY_EVERY 65536

typedef struct {
    uint64_t truncated, replay, reorder, auth;
} el_fcipher_stats;

typedef struct el_fcipher el_fcipher;

/* A cipher at counter 0 with the channel key `key` (§9.2), only read during
 * the call. *out is NULL on failure. EL_OK / EL_ERR_INVALID / EL_ERR_NOMEM /
 * EL_ERR_CRYPTO. */
int el_fcipher_new(el_fcipher **out, const uint8_t key[32]);

/* Seals pt (0..EL_FRAME_PT_MAX bytes; a protocol plaintext is kind ‖ body,
 * so at least 1) as the next frame into out (ptlen + 25 bytes). EL_OK;
 * EL_ERR_TOO_LARGE (pt too long or cap < ptlen + 25); EL_ERR_STATE when the
 * counter is exhausted; EL_ERR_CRYPTO on a backend failure (the frame was
 * not produced and the counter did not move). `out` must not overlap pt. */
int el_fcipher_seal(el_fcipher *c, const uint8_t *pt, size_t ptlen,
                    uint8_t *out, size_t cap, size_t *outlen);

/* Opens the next frame: on EL_OK the plaintext (len - 25 bytes) is in out
 * and the counter advanced. On failure see the table above; *outlen is 0
 * and out holds nothing of the frame. `out` may be exactly frame + 9 (in
 * place), no other overlap. */
int el_fcipher_open(el_fcipher *c, const uint8_t *frame, size_t len,
                    uint8_t *out, size_t cap, size_t *outlen);

/* The short name of a drop reason for an el_fcipher_open result:
 * "truncated", "replay", "reorder", "auth", or "error" for anything else. */
const char *el_fcipher_reason(int rc);

/* Drop counters; the pointer belongs to c. */
const el_fcipher_stats *el_fcipher_stats_get(const el_fcipher *c);

/* The counter the next seal uses / the next open expects. */
uint64_t el_fcipher_counter(const el_fcipher *c);

/* Test vectors only: moves the counter forward to n, applying the rekeys in
 * between (one AES block operation per 65536 frames skipped). EL_ERR_INVALID
 * when n is below the current counter. */
int el_fcipher_seek(el_fcipher *c, uint64_t n);

/* Frees and clears the key; NULL is a no-op. */
void el_fcipher_free(el_fcipher *c);

#endif
