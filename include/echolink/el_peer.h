/* el_peer.h - WebRTC data channels in C, shaped like RTCPeerConnection and
 * RTCDataChannel.
 *
 * An el_peer runs on the GMainContext given to el_peer_new (libnice, the
 * DTLS and SCTP timers and every callback below run there; no other thread
 * is used). All the live peers of a process share that context: usrsctp
 * runs without threads, one per process, so el_peer_new refuses another
 * context (EL_ERR_STATE) until the peers of the first are freed. Signaling
 * is the caller's: it moves SDP and trickled candidates to the remote peer
 * and back.
 *
 * Typical offerer:
 *   el_peer *pc = el_peer_new(ctx, &cfg, &cbs, user, err, sizeof err);
 *   el_channel *ch = el_peer_create_channel(pc, "chat", NULL, err, sizeof err);
 *   char *offer = el_peer_create_offer(pc, err, sizeof err);   // send it; free()
 *   ... el_peer_set_remote_description(pc, "answer", sdp, err, sizeof err);
 *   ... el_peer_add_remote_candidate(pc, cand);                  // each trickled one
 *   on_open(ch) -> el_channel_send_text(ch, "hi", 2);
 *
 * Ownership: channels belong to their peer and are freed with it; a channel
 * pointer stays valid until el_peer_free. el_peer_free may be called from
 * one of the peer's own callbacks: no callback follows, and the memory is
 * released from the context's loop right after. Strings passed in are
 * copied; strings passed to callbacks are valid for the call. */
#ifndef ECHOLINK_EL_PEER_H
#define ECHOLINK_EL_PEER_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

typedef struct el_peer el_peer;
typedef struct el_channel el_channel;

typedef enum {
    EL_PEER_NEW = 0,
    EL_PEER_CONNECTING,
    EL_PEER_CONNECTED,
    EL_PEER_DISCONNECTED,
    EL_PEER_FAILED,
    EL_PEER_CLOSED,
} el_peer_state;

typedef enum {
    EL_CHANNEL_CONNECTING = 0,
    EL_CHANNEL_OPEN,
    EL_CHANNEL_CLOSING,
    EL_CHANNEL_CLOSED,
} el_channel_state;

typedef struct {
    /* "stun:host:port", "turn:host:port[?transport=udp|tcp]" and
     * "turns:host:port" (TURN over TLS) URLs; NULL-terminated; one TURN
     * server is used (the last one listed) */
    const char *const *ice_servers;
    const char *turn_username;
    const char *turn_credential;
    /* restrict ICE gathering to these local addresses (tests); NULL-terminated */
    const char *const *local_addresses;
    int relay_only;            /* iceTransportPolicy "relay" */
    size_t max_message_size;   /* what we accept; 0 = 262144, which is also the most */
} el_peer_config;

typedef struct {
    /* a local candidate to trickle ("candidate:..."), or NULL when gathering
     * is complete (send an end-of-candidates); mid is the data section's */
    void (*on_local_candidate)(el_peer *pc, const char *candidate, const char *mid, void *user);
    void (*on_state)(el_peer *pc, el_peer_state state, const char *why, void *user);
    /* a channel the remote opened; set its callbacks here */
    void (*on_channel)(el_peer *pc, el_channel *ch, void *user);
} el_peer_callbacks;

typedef struct {
    int ordered;               /* default 1 */
    int max_retransmits;       /* -1: reliable (default) */
    int max_lifetime_ms;       /* -1: reliable (default) */
    int negotiated_id;         /* -1: announce with DCEP (default); else a pre-agreed stream id */
    const char *protocol;      /* sub-protocol, default "" */
} el_channel_init;

#define EL_CHANNEL_INIT_DEFAULT {1, -1, -1, -1, NULL}

typedef struct {
    void (*on_open)(el_channel *ch, void *user);
    void (*on_message)(el_channel *ch, int binary, const uint8_t *data, size_t len, void *user);
    void (*on_close)(el_channel *ch, void *user);
    void (*on_buffered_low)(el_channel *ch, void *user);
} el_channel_callbacks;

el_peer *el_peer_new(GMainContext *ctx, const el_peer_config *cfg, const el_peer_callbacks *cb,
                     void *user, char *err, size_t errlen);
/* Returns a malloc'd SDP offer (free() it), or NULL with a reason in err. */
char *el_peer_create_offer(el_peer *pc, char *err, size_t errlen);
/* After a remote offer: returns a malloc'd SDP answer, or NULL. */
char *el_peer_create_answer(el_peer *pc, char *err, size_t errlen);
/* type is "offer" or "answer". Errors say what is wrong with the SDP. */
int el_peer_set_remote_description(el_peer *pc, const char *type, const char *sdp, char *err,
                                   size_t errlen);
/* "candidate:..." (with or without "a="); NULL or "" means end-of-candidates. */
int el_peer_add_remote_candidate(el_peer *pc, const char *candidate, char *err, size_t errlen);
/* New ICE credentials; the next el_peer_create_offer carries them. */
int el_peer_restart_ice(el_peer *pc, char *err, size_t errlen);
el_peer_state el_peer_get_state(const el_peer *pc);
/* SHA-256 of our DTLS certificate and of the remote one (the remote's
 * a=fingerprint, which DTLS has checked against the certificate received once
 * any channel is open). The E2EE handshake binds both (PROTOCOL.md §9).
 * Returns 0, or EL_ERR_STATE while the remote description is not set. */
int el_peer_get_fingerprints(const el_peer *pc, uint8_t local[32], uint8_t remote[32]);
const char *el_peer_state_name(el_peer_state st);
el_channel *el_peer_create_channel(el_peer *pc, const char *label, const el_channel_init *init,
                                   char *err, size_t errlen);
void el_peer_close(el_peer *pc);
void el_peer_free(el_peer *pc);

void el_channel_set_callbacks(el_channel *ch, const el_channel_callbacks *cb, void *user);
/* 0, or EL_ERR_INVALID (not open), EL_ERR_TOO_LARGE (over the peer's
 * a=max-message-size: refused, never truncated), EL_ERR_QUOTA (16 MiB wait
 * to leave on this connection already: try again after on_buffered_low),
 * EL_ERR_IO (the connection is gone). Empty messages are fine. */
int el_channel_send_text(el_channel *ch, const char *text, size_t len);
int el_channel_send_binary(el_channel *ch, const uint8_t *data, size_t len);
/* 0 when a message of len bytes would be taken now, else the error a send
 * would give (any of the above but running out of memory). For a caller
 * that must not commit to a message (a frame counter, say) before it knows
 * the message will go. */
int el_channel_send_check(const el_channel *ch, size_t len);
size_t el_channel_buffered_amount(const el_channel *ch);
void el_channel_set_buffered_low_threshold(el_channel *ch, size_t threshold);
const char *el_channel_label(const el_channel *ch);
const char *el_channel_protocol(const el_channel *ch);
int el_channel_id(const el_channel *ch); /* -1 before it has a stream id */
el_channel_state el_channel_get_state(const el_channel *ch);
int el_channel_close(el_channel *ch);

#endif
