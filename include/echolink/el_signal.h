/* el_signal.h - the signaling client of libecholink: one logged-in session
 * with an echolinkd, which relays offers, answers and ICE candidates between
 * users (docs/PROTOCOL.md §1-§7), so that two el_peer (el_peer.h) can meet.
 *
 * Typical use (examples/chat.c is a complete program):
 *   el_identity *me;  el_identity_generate(&me, err, sizeof err);   // el_identity.h
 *   const char *urls[] = {"ws://server:8080", NULL};
 *   el_signal_config cfg = {0};  cfg.urls = urls;
 *   el_signal_callbacks cb = {on_state, on_login};
 *   el_signal *s = el_signal_new(ctx, me, &cfg, &cb, user, err, sizeof err);
 *   el_signal_on(s, "offer", on_offer, user);        // {"from", ...}
 *   el_signal_start(s);
 *   ... json_t *o = json_pack("{s:s, s:s}", "to", peer_id, "sdp", sdp);
 *   el_signal_emit(s, "offer", o, 0, on_ack, user);  json_decref(o);
 *   ... el_signal_stop(s); el_signal_free(s);
 *
 * The server relays `offer`, `answer` and `ice_candidate` {"to": peer_id,
 * ...} to that peer as {"from": sender, ...}, but only between contacts
 * (`contact_request` / `contact_respond`, PROTOCOL.md §4) unless it runs with
 * --open-presence. Event arguments and acks are jansson values.
 *
 * Transport: Engine.IO v4 over WebSocket only (no long-polling), through
 * libsoup-3.0, then Socket.IO v5 CONNECT on "/":
 *
 *   ws connect /socket.io/?EIO=4&transport=websocket
 *   S: 0{"sid","pingInterval","pingTimeout",...}   C: 40
 *   S: 40{"sid"}                                   (Socket.IO connected)
 *   S: 42["challenge",{"v":1,"nonce","sid"}]       C: 42<id>["login",{ik,sk,sk_sig,sig,name?}]
 *   S: 43<id>[{"ok":true,"peer_id","ice_servers",...}]   -> on_login, LOGGED_IN
 *   S: 2 (ping)                                    C: 3 (pong)
 *
 * States (on_state reports every change):
 *
 *   IDLE --start--> CONNECTING --40{sid}--> CONNECTED --login ok--> LOGGED_IN
 *   CONNECTING/CONNECTED/LOGGED_IN --any failure--> DISCONNECTED (retry_ms > 0)
 *   DISCONNECTED --timer--> CONNECTING (next URL after a failed attempt)
 *   any --el_signal_stop, or session_closed "replaced"--> STOPPED (final)
 *
 * Failures that lead to DISCONNECTED: the WebSocket cannot be opened or
 * closes, no Engine.IO packet within pingInterval + pingTimeout (dead
 * connection), no login within connect_timeout_ms of the attempt's start,
 * a CONNECT_ERROR, a failed login ack, a packet that does not parse, a frame
 * over max_incoming (libsoup closes with 1009), a server DISCONNECT.
 *
 * Reconnection: the delay before attempt n (n = 0 after a login, counting
 * failed attempts since) is min(backoff_max_ms, backoff_min_ms * 2^n), times
 * a random factor in [1 - jitter, 1 + jitter], then clamped to
 * backoff_max_ms. After a session that had logged in, the same URL is tried
 * first; each failed attempt moves to the next URL of the list. A
 * session_closed with reason "replaced" (this identity logged in elsewhere)
 * stops for good, as socket.io-client does; other reasons ("login_timeout",
 * "flood") reconnect with backoff.
 *
 * Events and acks: el_signal_emit() sends one event with one JSON argument.
 * While not LOGGED_IN (and not STOPPED), events are queued, at most
 * max_queue of them (then an error at once), and are sent in order right
 * after the next successful login. An ack callback gets exactly one result:
 * the server's ack, or TIMEOUT (ack_timeout_ms after the emit, queued time
 * included), or DISCONNECTED (the event was sent and the connection died
 * before its ack: whether the server acted on it is unknown), or CANCELLED
 * (el_signal_stop / el_signal_free). Events without a callback are
 * fire-and-forget. If el_signal_emit fails, the callback never fires.
 *
 * Bounds: a WebSocket message over max_incoming makes libsoup close the
 * connection (1009), which then reconnects; incoming JSON deeper than 64 is
 * dropped; an event over max_outgoing is refused by el_signal_emit; at most
 * max_queue events wait for a login and max_inflight acks are pending; the
 * dead-connection deadline taken from the server is capped at 10 minutes.
 *
 * Errors: functions returning int return 0 on success and a negative code
 * on failure (the codes are named below as the library names them inside).
 *
 * Threads and lifetime: everything runs on the GMainContext given to
 * el_signal_new; every function must be called from the thread that
 * iterates it, and that context must be the thread-default context of that
 * thread while el_signal runs (g_main_context_push_thread_default: libsoup
 * creates its sockets' sources on the thread-default context). Callbacks run
 * from that context. Never call el_signal_free from inside one of its
 * callbacks (defer it); every other function may be called from a callback.
 * Strings passed in are copied; strings and JSON values passed to callbacks
 * are borrowed for the call (json_incref to keep a value). Not thread-safe. */
#ifndef ECHOLINK_EL_SIGNAL_H
#define ECHOLINK_EL_SIGNAL_H

#include <glib.h>
#include <jansson.h>
#include <stddef.h>

#include <echolink/el_identity.h>

typedef struct el_signal el_signal;

typedef enum {
    EL_SIGNAL_IDLE = 0,     /* created, el_signal_start not called yet */
    EL_SIGNAL_CONNECTING,   /* WebSocket / Engine.IO handshake in progress */
    EL_SIGNAL_CONNECTED,    /* Socket.IO connected, login in progress */
    EL_SIGNAL_LOGGED_IN,    /* session usable: events flow */
    EL_SIGNAL_DISCONNECTED, /* waiting retry_ms before the next attempt */
    EL_SIGNAL_STOPPED,      /* final: no more attempts */
} el_signal_state;

/* What an ack callback is told. */
typedef enum {
    EL_SIGNAL_ACK_OK = 0,       /* the server answered; `ack` is its object */
    EL_SIGNAL_ACK_TIMEOUT,      /* no ack within the timeout */
    EL_SIGNAL_ACK_DISCONNECTED, /* the connection died with the event sent */
    EL_SIGNAL_ACK_CANCELLED,    /* el_signal_stop or el_signal_free */
} el_signal_ack_status;

typedef struct {
    el_signal_state state;
    /* for DISCONNECTED and STOPPED: why, e.g. "connect failed: Connection
     * refused", "ping timeout", "session_closed: replaced"; else NULL */
    const char *reason;
    const char *url;   /* the server URL of the current or last attempt */
    unsigned retry_ms; /* DISCONNECTED: delay before the next attempt */
    unsigned attempt;  /* failed attempts since the last login (backoff n) */
} el_signal_state_info;

typedef struct {
    void (*on_state)(el_signal *s, const el_signal_state_info *info, void *user);
    /* a successful login: the whole ack object ({"ok":true, "peer_id",
     * "profile", "ice_servers", "ttl"}); queued events are sent right after */
    void (*on_login)(el_signal *s, json_t *ack, void *user);
} el_signal_callbacks;

/* `ack` is the server's ack object when status is EL_SIGNAL_ACK_OK (which
 * may be {"ok":false,"error",...}: check "ok"), else NULL. During
 * el_signal_free (CANCELLED) the callback may only release its own data. */
typedef void (*el_signal_ack_cb)(el_signal *s, el_signal_ack_status status, json_t *ack,
                                 void *user);

/* A server event: its name and its (first) argument, json null when the
 * event carried none. */
typedef void (*el_signal_event_cb)(el_signal *s, const char *event, json_t *arg, void *user);

/* Zero-initialise, set urls, and change what you need: 0 means the default. */
typedef struct {
    /* server URLs tried in turn, NULL-terminated, at least one: ws://, wss://,
     * http:// or https:// (same as ws/wss) host[:port][/path]. The path
     * defaults to /socket.io/ (a path not ending in socket.io/ gets it
     * appended); the query is always EIO=4&transport=websocket. */
    const char *const *urls;
    const char *name;             /* login "name" (≤ 64 bytes) or NULL */
    unsigned backoff_min_ms;      /* 0 = 250 */
    unsigned backoff_max_ms;      /* 0 = 30000 */
    unsigned jitter_pct;          /* 0 = 30; at most 100 (100 counts as 99) */
    unsigned connect_timeout_ms;  /* attempt start to login ack; 0 = 10000 */
    unsigned ack_timeout_ms;      /* default for el_signal_emit; 0 = 10000 */
    size_t max_incoming;          /* largest WebSocket message; 0 = 1 MiB */
    size_t max_outgoing;          /* largest event el_signal_emit sends
                                   * (login excepted); 0 = 65536, the
                                   * server's default --max-event-size */
    unsigned max_queue;           /* events held while not logged in; 0 = 64 */
    unsigned max_inflight;        /* sent events awaiting an ack; 0 = 1024 */
} el_signal_config;

typedef struct {
    unsigned attempts;  /* connection attempts started */
    unsigned logins;    /* successful logins */
    unsigned dropped;   /* incoming packets ignored (unparsable JSON, binary,
                         * ack for an unknown id) */
    unsigned queued;    /* events waiting for a login now */
    unsigned inflight;  /* events sent whose ack is pending now */
} el_signal_stats;

/* Creates a client for identity `id` (borrowed: it must outlive the
 * el_signal). `cfg` and `cb` are copied (cb may be NULL). Nothing happens on
 * the network until el_signal_start. Returns NULL with a reason in err for a
 * NULL argument, no URL, a URL that does not parse or has another scheme,
 * or allocation failure. */
el_signal *el_signal_new(GMainContext *ctx, const el_identity *id, const el_signal_config *cfg,
                         const el_signal_callbacks *cb, void *user, char *err, size_t errlen);

/* Starts the first attempt. 0, or EL_ERR_STATE when not IDLE or when ctx is
 * not the thread-default context of the calling thread (logged). */
int el_signal_start(el_signal *s);

/* Closes the connection for good: pending and queued acks get CANCELLED,
 * on_state reports STOPPED with reason "stopped". No-op when STOPPED. */
void el_signal_stop(el_signal *s);

/* Emits `event` with argument `arg` (borrowed; NULL means {}), with an ack
 * callback (or NULL) that fires once, after at most timeout_ms (0 = the
 * configured ack_timeout_ms). Returns 0 (sent, or queued until the next
 * login); EL_ERR_INVALID (NULL or empty event name, "login", or an argument
 * jansson cannot encode); EL_ERR_TOO_LARGE (over max_outgoing); EL_ERR_QUOTA
 * (queue full, or max_inflight acks pending); EL_ERR_STATE (STOPPED);
 * EL_ERR_NOMEM. */
int el_signal_emit(el_signal *s, const char *event, json_t *arg, unsigned timeout_ms,
                   el_signal_ack_cb cb, void *user);

/* Subscribes to a server event by name (NULL: every event). Several
 * handlers may share a name; they run in subscription order. "challenge" is
 * answered internally and not delivered. Returns a handler id > 0, or 0 for
 * a NULL cb. */
unsigned el_signal_on(el_signal *s, const char *event, el_signal_event_cb cb, void *user);
/* Removes a handler (safe from inside any callback); unknown ids are ignored. */
void el_signal_off(el_signal *s, unsigned handler_id);

el_signal_state el_signal_get_state(const el_signal *s);
/* "idle", "connecting", ...: a static string. */
const char *el_signal_state_name(el_signal_state st);
void el_signal_get_stats(const el_signal *s, el_signal_stats *out);

/* Frees the client: closes the connection, cancels a pending connect and
 * every timer; ack callbacks still pending get CANCELLED; no other callback
 * fires. A cancelled connect finishes on the context later and frees its
 * remains then, so keep iterating the context a little before dropping it.
 * NULL is a no-op. Not from inside a callback of this el_signal. */
void el_signal_free(el_signal *s);

#endif
