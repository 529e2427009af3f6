/* secure.h - the E2EE session of one peer connection (PROTOCOL.md §9).
 *
 * An el_secure sits between an el_peer and the application. The application
 * hands it every data channel of the connection (the `chat` channel it
 * created or received, and file channels the remote opens); el_secure takes
 * over their callbacks, runs the Noise XX handshake on `chat` with both DTLS
 * fingerprints bound in, and afterwards encrypts what the application sends
 * and decrypts what arrives, one cipher pair per channel (src/crypto/e2ee,
 * src/crypto/frame). Until the handshake is complete nothing else is sent
 * or delivered; if it fails, an ABORT is sent, on_failed reports why, and
 * nothing is ever sent on this connection again (closing the el_peer is the
 * caller's job: it must not be freed inside a callback).
 *
 * Plaintexts are the kind-prefixed bodies of §9.3 (0x01 JSON message, 0x02
 * file chunk); el_secure does not look inside them.
 *
 * Everything runs on the GMainContext of the el_peer; not thread-safe. */
#ifndef EL_CLIENT_SECURE_H
#define EL_CLIENT_SECURE_H

#include "crypto/e2ee.h"
#include "crypto/frame.h"
#include "crypto/identity.h"
#include "client/trust.h"
#include "echolink/el_peer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct el_secure el_secure;

typedef struct {
    /* the handshake succeeded: `chat` is usable, file channels may open */
    void (*on_ready)(el_secure *s, void *user);
    /* the handshake failed (or the peer aborted); `error` is for humans,
     * e.g. "identity/channel binding mismatch" */
    void (*on_failed)(el_secure *s, el_hs_fail why, const char *error, void *user);
    /* a file channel (ours or the remote's) is open and keyed */
    void (*on_channel_open)(el_secure *s, el_channel *ch, void *user);
    /* one decrypted plaintext (kind byte + body) */
    void (*on_plaintext)(el_secure *s, el_channel *ch, const uint8_t *pt, size_t len, void *user);
    void (*on_channel_close)(el_secure *s, el_channel *ch, void *user);
    void (*on_buffered_low)(el_secure *s, el_channel *ch, void *user);
    /* with a trust store: the peer's bundle differs from the pinned one
     * (§10.2). The session is held (nothing is sent or delivered) until
     * el_secure_accept_key_change(); the old pin stays until then. */
    void (*on_key_changed)(el_secure *s, const el_id_bundle *pinned, const el_id_bundle *presented,
                           void *user);
} el_secure_callbacks;

/* Counters of what was refused (each also logged once per kind). */
typedef struct {
    el_fcipher_stats frames;   /* rejected frames, summed over channels */
    uint64_t bad_label;        /* channels closed for a bad or reused label */
    uint64_t early;            /* messages before the handshake finished */
    uint64_t text;             /* text (non-binary) messages: never valid */
} el_secure_stats;

/* `self` is borrowed and must outlive the session. `expected_peer_id` is the
 * peer this connection was made for (the signaling `from`/`to`).
 * `initiator` is 1 for the side that created the SDP offer. Returns NULL
 * with `err` filled on bad arguments or allocation failure. */
el_secure *el_secure_new(GMainContext *ctx, el_peer *pc, const el_identity *self,
                         const char *expected_peer_id, int initiator,
                         const el_secure_callbacks *cb, void *user, char *err, size_t errlen);

/* Hands a channel of this connection to the session (call it right after
 * creating `chat`, and from el_peer's on_channel for remote channels). The
 * channel's callbacks now belong to el_secure. Returns 0 or EL_ERR_*. */
int el_secure_add_channel(el_secure *s, el_channel *ch);

/* Opens a new file channel with a fresh `f:<32 hex>` label (only once
 * ready). on_channel_open fires when it is usable. */
el_channel *el_secure_open_channel(el_secure *s, char *err, size_t errlen);

/* Encrypts `pt` (kind byte + body) into one frame on `ch`. Returns 0;
 * EL_ERR_STATE before the handshake is done, after a failure or on an
 * unkeyed channel; EL_ERR_TOO_LARGE over the frame limit; or el_channel's
 * send error. */
int el_secure_send(el_secure *s, el_channel *ch, const uint8_t *pt, size_t len);

int el_secure_is_ready(const el_secure *s);
/* after on_ready: the remote's verified bundle and peer ID */
const el_id_bundle *el_secure_remote_bundle(const el_secure *s);
const char *el_secure_remote_peer_id(const el_secure *s);
/* Trust on first use (§10.2): after each handshake the remote bundle is
 * checked against `trust` (borrowed; set it before the chat opens). New and
 * known peers go on to on_ready; a changed key goes to on_key_changed. */
void el_secure_set_trust(el_secure *s, el_trust *trust);
/* The user accepted the new key: it is pinned and the session becomes
 * ready. EL_ERR_STATE when no key change is pending. */
int el_secure_accept_key_change(el_secure *s, char *err, size_t errlen);
/* The trust state found for this session's peer (EL_TRUST_NEW on first use). */
el_trust_state el_secure_trust_state(const el_secure *s);

/* The handshake timeout in ms (default 10000, §9); before the chat opens. */
void el_secure_set_timeout(el_secure *s, unsigned ms);
void el_secure_get_stats(const el_secure *s, el_secure_stats *out);

/* Frees the session and its ciphers; the channels stay with their peer
 * (their callbacks are cleared). NULL is a no-op. Not from a callback. */
void el_secure_free(el_secure *s);

#endif
