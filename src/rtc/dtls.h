/* dtls.h - DTLS 1.2 over datagrams for the WebRTC data channel
 * (RFC 8827 §6.5, RFC 8261): the layer between ICE (below) and SCTP (above).
 *
 *   ice --datagrams--> el_dtls_input()  --on_data()--> sctp
 *   ice <--cb.send()-- (records)        <--el_dtls_send()-- sctp
 *
 * Transport-agnostic and single-threaded: the caller's loop feeds received
 * datagrams in with el_dtls_input(), gets datagrams to transmit through
 * cb.send, and runs the retransmission timer it is asked for through
 * cb.set_timer. Nothing here blocks, starts threads or keeps global state;
 * one el_dtls is used by one thread.
 *
 * Protocol choices:
 *   | item             | value                                                  |
 *   |------------------|--------------------------------------------------------|
 *   | version          | DTLS 1.2 (min and, with OpenSSL 3.0, max); a DTLS 1.3  |
 *   |                  | ClientHello (Chromium) is answered with 1.2            |
 *   | ciphers          | ECDHE-ECDSA/RSA with AES-128/256-GCM or ChaCha20-      |
 *   |                  | Poly1305 (AEAD only); groups X25519, P-256, P-384      |
 *   | certificates     | both sides present one (the server requests it); any   |
 *   |                  | certificate is accepted during the handshake, then its |
 *   |                  | SHA-256 must equal the peer's a=fingerprint            |
 *   | link MTU         | EL_DTLS_MTU (1200) bytes per handshake datagram,       |
 *   |                  | never probed (SSL_OP_NO_QUERY_MTU)                     |
 *   | datagrams        | one cb.send per datagram: OpenSSL packs whole records  |
 *   |                  | of a flight into datagrams of at most EL_DTLS_MTU and  |
 *   |                  | writes each with one BIO_write (our BIO; a memory BIO  |
 *   |                  | would merge them); a received datagram may hold        |
 *   |                  | several records                                        |
 *   | retransmission   | first after 100 ms, doubling up to 6.4 s; the          |
 *   |                  | handshake fails (EL_ERR_IO) at the 13th timeout (51 s) |
 *   | renegotiation,   | refused; no session cache, no tickets, no HelloVerify  |
 *   | resumption       | cookies (ICE has already checked the path)             |
 *
 * Message size. One el_dtls_send() is one record and one datagram, so a
 * message is at most EL_DTLS_MAX_SEND (16384, the TLS plaintext limit) bytes,
 * and empty messages cannot be sent (SSL_write of 0 bytes sends no record;
 * SCTP never emits an empty packet, and an empty WebRTC message travels as a
 * one-byte PPID 56/57 payload). A datagram larger than the path MTU relies
 * on IP fragmentation: the SCTP layer should keep its packets at or below
 * el_dtls_data_mtu() (1200 minus the record overhead) and use larger sends
 * only where fragmentation is known to work.
 *
 * Roles. client = 1 is the DTLS client, the side whose SDP says
 * a=setup:active; it sends the ClientHello. The server (a=setup:passive)
 * answers. A server accepts a ClientHello even before el_dtls_start(), because
 * the peer may start DTLS before our ICE agent reports READY.
 *
 * Fingerprint. The peer's certificate is checked against remote_fp AFTER the
 * handshake (constant-time compare). If the fingerprint is not known yet (the
 * SDP answer may come after the first DTLS packets), the session waits in
 * EL_DTLS_VERIFYING: on_connected fires only once
 * el_dtls_set_remote_fingerprint() has supplied a matching value. Application
 * data arriving meanwhile is held (up to EL_DTLS_HOLD_MAX bytes, the rest is
 * dropped, which SCTP retransmits) and delivered after on_connected.
 *
 * Callbacks. All run on the caller's thread, synchronously from inside
 * el_dtls_start/input/send/handle_timeout/close/set_remote_fingerprint:
 *   send        one datagram for the network; the pointer is valid only during
 *               the call. It is called from inside OpenSSL: it must not call
 *               any el_dtls_* function on this session (such calls fail with
 *               EL_ERR_DENIED).
 *   on_connected  handshake finished AND fingerprint verified; at most once.
 *   on_data     one decrypted record (an SCTP packet); valid during the call.
 *               May call el_dtls_send() (SCTP answers synchronously).
 *   on_error    the session has ended: at most once, and after it no other
 *               callback fires. Codes:
 *                 EL_ERR_CRYPTO  fingerprint mismatch ("DTLS fingerprint
 *                                mismatch: expected AA:.. got BB:.."), peer
 *                                without certificate, handshake failure or a
 *                                fatal alert (OpenSSL's reason in msg)
 *                 EL_ERR_IO      the peer closed the session (close_notify;
 *                                msg contains "close_notify"), or the handshake
 *                                timed out after all retransmissions
 *               A local el_dtls_close() does not call on_error.
 *   set_timer   call el_dtls_handle_timeout() after ms milliseconds; -1
 *               cancels. Each call replaces the previous timer.
 * Only send is required; the others may be NULL.
 *
 * Lifetime. NEVER call el_dtls_free() from inside one of this session's
 * callbacks; close it there and free it later from the loop. (As a safety
 * net, a free from inside a callback is deferred until the outermost el_dtls_*
 * call returns, and no callback fires after it; the object must not be used
 * again by the caller.) */
#ifndef EL_RTC_DTLS_H
#define EL_RTC_DTLS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/cert.h"

#define EL_DTLS_MTU 1200          /* largest handshake datagram, bytes */
#define EL_DTLS_MAX_SEND 16384    /* largest el_dtls_send(), bytes (2^14) */
#define EL_DTLS_MAX_DATAGRAM 65535 /* larger input datagrams are refused */
#define EL_DTLS_HOLD_MAX 65536    /* app data held while awaiting the fingerprint */
#define EL_DTLS_TIMER_INITIAL_MS 100
#define EL_DTLS_TIMER_MAX_MS 6400

typedef struct el_dtls el_dtls;

typedef enum {
    EL_DTLS_NEW = 0,     /* created, nothing sent or received */
    EL_DTLS_HANDSHAKING, /* handshake in progress */
    EL_DTLS_VERIFYING,   /* handshake done, waiting for the remote fingerprint */
    EL_DTLS_CONNECTED,   /* verified: application data flows */
    EL_DTLS_CLOSED,      /* closed by either side (close_notify) */
    EL_DTLS_FAILED,      /* ended by an error (on_error was called) */
} el_dtls_state;

typedef struct {
    void (*send)(void *user, const uint8_t *dgram, size_t len);
    void (*on_connected)(void *user);
    void (*on_data)(void *user, const uint8_t *data, size_t len);
    void (*on_error)(void *user, int code, const char *msg);
    void (*set_timer)(void *user, int64_t ms);
} el_dtls_callbacks;

typedef struct el_dtls_ctx el_dtls_ctx;

/* The OpenSSL context of one certificate: protocol, ciphers, groups,
 * verification, the certificate and its key. Making one costs about 0.5 ms
 * (OpenSSL 3 fetches every algorithm it names), so el_peer makes it with
 * its certificate, ahead of negotiation, rather than when the remote
 * description arrives. `cert` is used only during the call. Returns NULL
 * with the reason in err (NULL cert, OpenSSL failure). */
el_dtls_ctx *el_dtls_ctx_new(const el_cert *cert, char *err, size_t errlen);

/* NULL is a no-op. Sessions made from it keep what they need. */
void el_dtls_ctx_free(el_dtls_ctx *ctx);

/* Creates a session on `ctx` (only used during the call). `client` is 1 for
 * the DTLS client (a=setup:active), 0 for the server. `remote_fp` is the
 * peer's a=fingerprint (SHA-256), copied, or NULL when not known yet. `cb`
 * is copied; `user` is passed to every callback. Nothing is sent and no
 * callback fires. Returns the session, or NULL with the reason in err (NULL
 * ctx/cb/cb->send, OpenSSL failure). */
el_dtls *el_dtls_new(const el_dtls_ctx *ctx, int client, const uint8_t remote_fp[EL_CERT_FP_LEN],
                     const el_dtls_callbacks *cb, void *user, char *err, size_t errlen);

/* Frees the session without sending anything (call el_dtls_close() first for
 * a polite close). NULL is a no-op. Never from inside its own callbacks (see
 * Lifetime above). No callback fires, not even set_timer(-1): the caller
 * drops its timer itself. */
void el_dtls_free(el_dtls *d);

/* Starts the handshake: a client sends its ClientHello and arms the timer, a
 * server just becomes ready. Calling it again is a no-op. Returns EL_OK, a
 * fatal code (after on_error), or EL_ERR_INVALID when the session has ended /
 * EL_ERR_DENIED for a call from inside cb.send. */
int el_dtls_start(el_dtls *d);

/* Feeds one datagram from the network (demultiplex with
 * el_dtls_is_dtls_packet first). The datagram is only read during the call.
 * Implies el_dtls_start(). Returns:
 *   EL_OK            processed (records OpenSSL discards, e.g. with a bad MAC
 *                    or an old epoch, are dropped silently as DTLS requires)
 *   EL_ERR_INVALID   dropped, session unchanged: NULL/empty, not DTLS (RFC
 *                    7983), record framing does not fit the datagram, or the
 *                    session has already ended
 *   EL_ERR_TOO_LARGE dropped: longer than EL_DTLS_MAX_DATAGRAM
 *   EL_ERR_DENIED    called from inside cb.send
 *   EL_ERR_CRYPTO/IO the datagram ended the session; on_error has been called */
int el_dtls_input(el_dtls *d, const uint8_t *dgram, size_t len);

/* Encrypts one message (1..EL_DTLS_MAX_SEND bytes) into one record and sends
 * it. Returns EL_OK; EL_ERR_INVALID when not EL_DTLS_CONNECTED or len is 0 or
 * data NULL; EL_ERR_TOO_LARGE beyond EL_DTLS_MAX_SEND; EL_ERR_DENIED from
 * inside cb.send; EL_ERR_CRYPTO if OpenSSL fails (the session then ends with
 * on_error). */
int el_dtls_send(el_dtls *d, const uint8_t *data, size_t len);

/* Runs the retransmission timer. Harmless when called early or with no
 * timer pending (the timer is re-armed for the remaining time). Returns EL_OK,
 * EL_ERR_IO after on_error when retransmissions are exhausted, EL_ERR_INVALID
 * when the session has ended, EL_ERR_DENIED from inside cb.send. */
int el_dtls_handle_timeout(el_dtls *d);

/* Milliseconds until el_dtls_handle_timeout() is due (rounded up), or -1 when
 * no timer runs; for callers that poll instead of using cb.set_timer. */
int64_t el_dtls_timeout_ms(const el_dtls *d);

/* Sends close_notify (once the handshake is complete: OpenSSL cannot send it
 * mid-handshake, and the peer then times out), cancels the timer and ends the
 * session as EL_DTLS_CLOSED without calling on_error. Idempotent; allowed from
 * inside on_connected/on_data/on_error (not from inside send, where it does
 * nothing). NULL is a no-op. */
void el_dtls_close(el_dtls *d);

/* Sets the remote fingerprint when it was not known at el_dtls_new(), or
 * replaces it while the handshake is unverified. In EL_DTLS_VERIFYING the
 * check runs now, so on_connected or on_error may fire from inside this call.
 * Returns EL_OK, or the error code reported through on_error on a mismatch,
 * EL_ERR_INVALID for a NULL argument, an ended session, or a fingerprint
 * different from the one already verified; EL_ERR_DENIED inside cb.send. */
int el_dtls_set_remote_fingerprint(el_dtls *d, const uint8_t fp[EL_CERT_FP_LEN]);

/* The SHA-256 fingerprint of the certificate the peer presented, once the
 * handshake is done (EL_DTLS_VERIFYING and later, if it got that far).
 * Returns EL_OK or EL_ERR_NOT_FOUND/EL_ERR_INVALID (out zeroed). Useful to
 * bind the DTLS session into the end-to-end handshake. */
int el_dtls_peer_fingerprint(const el_dtls *d, uint8_t out[EL_CERT_FP_LEN]);

el_dtls_state el_dtls_get_state(const el_dtls *d);
const char *el_dtls_state_name(el_dtls_state s);

/* Largest el_dtls_send() whose datagram fits EL_DTLS_MTU with the negotiated
 * cipher (e.g. 1163 for AES-GCM), or 0 before the handshake is done. */
size_t el_dtls_data_mtu(const el_dtls *d);

/* Negotiated protocol and cipher names for logs ("DTLSv1.2",
 * "ECDHE-ECDSA-AES128-GCM-SHA256"); "" before the handshake is done. The
 * strings are static. */
const char *el_dtls_version_name(const el_dtls *d);
const char *el_dtls_cipher_name(const el_dtls *d);

/* RFC 7983 demultiplexing: 1 when the first byte is 20..63 (a DTLS record),
 * 0 otherwise (STUN is 0..3, RTP/RTCP 128..191) or for an empty packet. */
int el_dtls_is_dtls_packet(const uint8_t *p, size_t len);

#endif
