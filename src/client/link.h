/* link.h - the connection to one remote peer: an el_peer with its E2EE
 * session (el_secure), negotiated through the signaling server, kept alive
 * and rebuilt when it breaks.
 *
 * Signaling payloads (PROTOCOL.md §5 relays them as they are; §12 of
 * PROTOCOL.md describes them):
 *
 *   offer          {"to", "cid", "sdp", "restart"?: true}
 *   answer         {"to", "cid", "sdp"}
 *   ice_candidate  {"to", "cid", "candidate": string | null (end), "mid"}
 *
 * `cid` (16 hex) names one el_peer: answers and candidates for another cid
 * are stale and ignored. An offer with the current cid renegotiates (ICE
 * restart); an offer with a new cid replaces the connection (the remote
 * restarted, or both sides offered at once).
 *
 * Glare (both sides offer at once): the side whose peer ID sorts first is
 * "polite": it drops its own offer and answers the remote's; the other side
 * ignores the remote's offer and waits for the answer to its own.
 *
 * Recovery (DESIGN.md "Reliability"): when ICE reports DISCONNECTED for
 * EL_LINK_RESTART_AFTER_MS, the side that made the current offer restarts
 * ICE (a new offer with the same cid and fresh ICE credentials; DTLS, SCTP
 * and the E2EE session survive). A connection that is not (back to)
 * connected within EL_LINK_RECOVER_MS, or that FAILED, or whose handshake
 * failed, is torn down (on_down), and a new one is negotiated after a
 * backoff of min(30 s, 500 ms * 2^n) * [0.7, 1.3] (n = failures since the
 * last ready connection) as long as want() says there is work for it.
 *
 * Everything runs on the GMainContext given to el_link_new; not thread-safe.
 * Callbacks may call any el_link function except el_link_free. */
#ifndef EL_CLIENT_LINK_H
#define EL_CLIENT_LINK_H

#include <glib.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "client/secure.h"
#include "client/trust.h"
#include "crypto/identity.h"
#include "echolink/el_peer.h"

#define EL_LINK_RESTART_AFTER_MS 2000
#define EL_LINK_RECOVER_MS 12000
#define EL_LINK_CONNECT_TIMEOUT_MS 20000
#define EL_LINK_BACKOFF_MIN_MS 500
#define EL_LINK_BACKOFF_MAX_MS 30000

typedef struct el_link el_link;

typedef enum {
    EL_LINK_IDLE = 0,   /* no connection */
    EL_LINK_CONNECTING, /* offer/answer, ICE, DTLS or the handshake in progress */
    EL_LINK_READY,      /* E2EE session up: messages flow */
    EL_LINK_HELD,       /* handshake done, the peer's key changed: waiting for the user */
} el_link_state;

typedef struct {
    /* Sends a signaling event ("offer", "answer", "ice_candidate") whose
     * argument already has "to". Returns 0 or an EL_ERR_* (the link then
     * treats the attempt as failed). */
    int (*signal)(el_link *l, const char *event, json_t *arg, void *user);
    /* 1 when there is work that needs a connection (pending messages,
     * unfinished files) and the peer is reachable: consulted before every
     * retry. */
    int (*want)(el_link *l, void *user);
    void (*on_state)(el_link *l, el_link_state st, const char *why, void *user);
    /* the remote's key differs from the pinned one (el_secure's
     * on_key_changed); el_link_accept_key_change() releases the hold */
    void (*on_key_changed)(el_link *l, const el_id_bundle *pinned, const el_id_bundle *presented,
                           void *user);
    /* a decrypted plaintext on `chat` or a file channel */
    void (*on_plaintext)(el_link *l, el_channel *ch, const uint8_t *pt, size_t len, void *user);
    void (*on_channel_open)(el_link *l, el_channel *ch, void *user);
    void (*on_channel_close)(el_link *l, el_channel *ch, void *user);
    void (*on_buffered_low)(el_link *l, el_channel *ch, void *user);
} el_link_callbacks;

typedef struct {
    const el_peer_config *peer;  /* read at every new connection (ICE servers change) */
    el_trust *trust;             /* may be NULL */
    unsigned handshake_timeout_ms; /* 0 = el_secure's default */
} el_link_config;

/* `self` and `cfg->peer` / `cfg->trust` are borrowed and must outlive the
 * link. Nothing happens until el_link_connect or el_link_on_signal. */
el_link *el_link_new(GMainContext *ctx, const el_identity *self, const char *peer_id,
                     const el_link_config *cfg, const el_link_callbacks *cb, void *user);

/* There is work for this peer: negotiate now if idle and no backoff delay
 * is pending (otherwise the pending retry will do). */
void el_link_connect(el_link *l);

/* Drops the connection (on_down is not called) and forgets the backoff:
 * the peer went offline, or the user blocked it. */
void el_link_reset(el_link *l, const char *why);

/* An "offer", "answer" or "ice_candidate" from this peer (the server wrote
 * "from"). Bad or stale input is logged and ignored. */
void el_link_on_signal(el_link *l, const char *event, json_t *arg);

el_link_state el_link_get_state(const el_link *l);
const char *el_link_state_name(el_link_state st);
const char *el_link_peer_id(const el_link *l);

/* The chat channel, once READY (else NULL). */
el_channel *el_link_chat(const el_link *l);
/* Encrypts and sends on `ch` (NULL = chat). EL_ERR_STATE when not READY. */
int el_link_send(el_link *l, el_channel *ch, const uint8_t *pt, size_t len);
/* A new file channel (READY only); on_channel_open fires when keyed. */
el_channel *el_link_open_channel(el_link *l, char *err, size_t errlen);
int el_link_accept_key_change(el_link *l, char *err, size_t errlen);
/* the remote's verified bundle while READY or HELD, else NULL */
const el_id_bundle *el_link_remote_bundle(const el_link *l);

typedef struct {
    unsigned connects;  /* connections negotiated (offers made or answered) */
    unsigned readies;   /* E2EE sessions that became ready */
    unsigned restarts;  /* ICE restarts made */
    unsigned failures;  /* connections torn down */
} el_link_stats;
void el_link_get_stats(const el_link *l, el_link_stats *out);

/* Frees the link and its connection. Not from inside one of its callbacks. */
void el_link_free(el_link *l);

#endif
