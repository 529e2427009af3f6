/* server_int.h - what the files of src/server share; never included from
 * outside src/server.
 *
 * Layers inside the server, bottom up:
 *   server.c   lws context on libuv, the protocol callback, signals
 *   http.c     static files, /healthz, /metrics
 *   rawws.c    plain-TCP connections as lws accepts them ("raw"): WebSocket
 *              upgrades of the engine's paths handled here, the rest
 *              handed to lws's HTTP server
 *   engine.c   Engine.IO sessions (el_conn) over long-polling and WebSocket
 *   socket.c   Socket.IO namespaces, events, acks over an el_conn
 *   handlers.c EchoLink events; relay.c the offer/answer/ice hot path;
 *   presence.c who sees whom; conform.c the protocol suites' echo handlers
 *
 * Everything runs on one thread (the lws/libuv loop), so nothing locks. */
#ifndef EL_SERVER_INT_H
#define EL_SERVER_INT_H

#include <libwebsockets.h>
#include <uv.h>
#include <stdint.h>

#include "base/err.h"
#include "base/map.h"
#include "proto/eio.h"
#include "proto/ws.h"
#include "server/request.h"
#include "server/cluster.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/timers.h"
#include "store/store.h"

#define EL_SID_LEN 20
#define EL_PEER_ID_CHARS 32
#define EL_WS_MAX_MESSAGE (1024 * 1024)
#define EL_CONN_MAX_QUEUE (8 * 1024 * 1024) /* a reader this far behind is dropped */
/* Relayed bytes a target may have waiting in its send queue. Senders are
 * rate-limited per connection, but several of them together can outrun a
 * slow reader; past EL_CONN_MAX_QUEUE the target itself would be dropped
 * ("send queue overflow"), so others' traffic could disconnect it. Relays
 * beyond this are refused instead (relay.c: rate_limited to the sender; a
 * relay from another node: dropped, and the sender told, cluster.c). */
#define EL_RELAY_TARGET_BACKLOG (1024 * 1024)

typedef struct el_conn el_conn;
typedef struct el_client el_client;
typedef struct el_binpend el_binpend;
typedef struct el_sniff el_sniff;

/* One queued outgoing Engine.IO packet, stored after LWS_PRE bytes of
 * headroom so lws_write() can frame it in place. Text packets hold the type
 * digit and data ("4..."); binary packets hold the raw message bytes. */
typedef struct el_pkt {
    struct el_pkt *next;
    size_t len;
    int binary;
    unsigned char buf[];
} el_pkt;

typedef enum { EL_TR_POLLING = 0, EL_TR_WS = 1 } el_transport;

/* EchoLink state of a connection CONNECTed to "/" (handlers.c, relay.c). */
struct el_client {
    int logged_in;
    int kicked;
    char peer_id[EL_PEER_ID_CHARS + 1];
    uint8_t nonce[32];
    /* the last relay target found allowed, valid while relations_epoch
     * has not moved: offer, answer and a burst of candidates go to one peer */
    char relay_ok_to[EL_PEER_ID_CHARS + 1];
    uint32_t relay_ok_epoch;
    /* ids of the envelopes pushed in this session and not acknowledged yet
     * (each key is its own malloc'ed value); NULL when none (handlers.c) */
    el_map *env_sent;
};

/* Per-wsi user data, allocated by lws for each HTTP or WebSocket connection.
 * A keep-alive HTTP connection reuses it for the next request. */
typedef struct {
    el_ws_rx wsrx;       /* raw: WebSocket frames being read (rawws.c) */
    el_conn *conn;       /* the session this wsi serves, or NULL */
    uint8_t kind;        /* what the current HTTP request is (engine.c) */
    uint8_t close_now;   /* WS: close at the next writeable callback */
    char final_pkt;      /* held poll of a closed session: answer this packet */
    uint8_t before_probe;/* GET that came during an upgrade, before "3probe" */
    char *body;          /* POST body being received */
    size_t body_len, body_cap;
    char *rx;            /* WebSocket message being reassembled */
    size_t rx_len, rx_cap;
    int rx_binary;
    uint8_t raw;         /* we speak this connection's WebSocket ourselves (rawws.c) */
    uint8_t raw_state;   /* raw: EL_RAW_HEAD, EL_RAW_WS, then EL_RAW_CLOSING */
    struct el_sniff *sniff; /* raw, EL_RAW_HEAD: the watch for the request head */
} el_pss;

struct el_conn {
    el_server *srv;
    char sid[EL_SID_LEN + 1];
    char sio_id[EL_SID_LEN + 1];
    uint8_t transport;
    uint8_t upgrading;
    uint8_t awaiting_pong;
    uint8_t closed;
    uint8_t engine_only;  /* raw Engine.IO echo (conformance, /engine.io/) */
    uint8_t guard_done;
    uint8_t probe_reply;  /* answer "3probe" on the probing WebSocket */
    uint8_t write_requested; /* a writeable callback is already asked for */
    uint8_t probe_answered;  /* "3probe" went out on the probing WebSocket */
    uint8_t dirty;        /* on srv->dirty: the queue is flushed at the end of this loop turn */
    uint32_t nsps;        /* connected Socket.IO namespaces, bit per namespace */
    struct lws *ws;       /* WebSocket transport (open or probing) */
    struct lws *poll;     /* held GET long-poll */
    el_pkt *q_head, *q_tail;
    size_t q_bytes;
    el_conn *dirty_next;  /* srv->dirty list link */
    int64_t pong_deadline_us;
    el_tnode n_ping;      /* next ping, or the pong deadline */
    el_tnode n_guard;     /* connect / login / kick deadline, pacing; then the deferred free */
    int32_t bucket;       /* rate limit tokens, in thousandths */
    int64_t bucket_us;
    uint16_t rejected;
    int64_t reject_window_us;
    struct el_ipcount *ipc;
    el_binpend *binpend;  /* BINARY_EVENT awaiting its attachments */
    el_client *client;    /* EchoLink state, once CONNECTed to "/": &client_state, or NULL */
    el_client client_state; /* inline: one allocation per session, not two */
};

/* What one source address holds: `count` Engine.IO sessions (engine.c,
 * capped by --max-conns-per-ip) and `tcp` accepted TCP connections of any
 * kind (server.c, counted from the accept on, capped by its tcp_cap()).
 * An entry lives in srv->ips while either count is non-zero. */
typedef struct el_ipcount {
    char ip[48];
    int count;
    int tcp;
} el_ipcount;

struct el_server {
    const el_server_config *cfg;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct lws_vhost *http_vhost; /* without TLS: where rawws.c hands HTTP requests */
    el_store *store;
    el_cluster *cluster; /* --redis: the other nodes (cluster.h), or NULL */
    el_map *conns;     /* Engine.IO sid -> el_conn */
    el_map *peers;     /* peer_id -> el_conn of a logged-in client */
    el_map *ips;       /* address -> el_ipcount */
    struct el_idquota *idq; /* new identities per address (--max-new-ids-per-ip) */
    el_map *zombies;   /* closed sessions awaiting their deferred free */
    int nconns;
    int tcp_ceiling;   /* most TCP connections one address may hold: a quarter of lws's table */
    int port;
    int stopping;
    el_metrics metrics;
    uint32_t relations_epoch; /* bumped whenever contacts, blocks or groups change */
    char web_root[4096];
    uv_loop_t loop;
    void *foreign[1];
    int loop_live;
    uv_signal_t sig_term, sig_int, sig_hup;
    el_server_reload_fn reload;
    void *reload_user;
    uv_timer_t stop_timer, purge_timer;
    el_timers timers;
    /* WebSocket sessions with packets queued during this loop turn. Their
     * queues are written directly, all packets of one session in one send,
     * from a check handle (after the turn's I/O callbacks) and a prepare
     * handle (before the loop blocks): no POLLOUT round trip per packet. */
    el_conn *dirty;
    uv_check_t flush_check;
    uv_prepare_t flush_prepare;
    el_tlist t_ping, t_pong, t_connect, t_login, t_grace, t_pace, t_free;
    int handles_live;
};

/* --- server.c --- */
void el_random_id(char *out, size_t chars); /* [A-Za-z0-9_-]{chars} + NUL */
int64_t el_now_us(void);
int64_t el_now_ms(void);
/* The count of address `ip`, created at zero when it has none; NULL when
 * out of memory. */
el_ipcount *el_ipcount_get(el_server *srv, const char *ip);
/* Removes and frees an address entry once neither count holds it; callers
 * decrement first. */
void el_ipcount_drop(el_server *srv, el_ipcount *ipc);

/* --- http.c --- */
int el_http_serve(struct lws *wsi, el_server *srv, const char *path);
/* Writes a complete response (with the security headers every response
 * carries); close_conn adds "connection: close". Returns what the lws
 * callback should return. */
int el_http_reply(struct lws *wsi, int status, const char *ctype, const char *body, size_t len,
                  int close_conn);

/* --- engine.c: Engine.IO --- */
int el_engine_http(struct lws *wsi, el_pss *pss, const char *path);
int el_engine_http_body(struct lws *wsi, el_pss *pss, const void *in, size_t len);
int el_engine_http_body_done(struct lws *wsi, el_pss *pss);
int el_engine_http_writeable(struct lws *wsi, el_pss *pss);
void el_engine_http_closed(struct lws *wsi, el_pss *pss);
int el_engine_ws_filter(struct lws *wsi);
int el_engine_ws_established(struct lws *wsi, el_pss *pss);
/* rawws.c: the "el-raw" protocol's callback */
enum { EL_RAW_HEAD = 0, EL_RAW_WS = 1, EL_RAW_CLOSING = 2 };
int el_rawws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
/* After our close frame on a raw WebSocket: read and drop until the client
 * closes (or 2 s), instead of a close that the kernel would turn into a
 * reset while the client still sends. */
void el_rawws_close_after_drain(struct lws *wsi, el_pss *pss);
/* server.c: a connection's count against its address (tcp_cap) */
int el_server_tcp_open(el_server *srv, struct lws *wsi);
void el_server_tcp_closed(el_server *srv, struct lws *wsi);
/* A WebSocket whose handshake is done, with its query: a new session, or
 * the probe of a polling one. engine_only: /engine.io/ (--conformance). */
int el_engine_ws_open(struct lws *wsi, el_pss *pss, const el_req_query *q, int engine_only);
/* One frame whose payload has LWS_PRE bytes of headroom before it, framed
 * by lws or, on a raw connection, by us (in the headroom). */
int el_engine_ws_write_frame(struct lws *wsi, unsigned char *payload, size_t len, el_ws_op op);
/* A whole message read on a raw connection; -1 when the session closed. */
int el_engine_ws_message(el_pss *pss, const char *m, size_t len, int binary);
int el_engine_ws_receive(struct lws *wsi, el_pss *pss, const void *in, size_t len);
int el_engine_ws_writeable(struct lws *wsi, el_pss *pss);
void el_engine_ws_closed(struct lws *wsi, el_pss *pss);

/* Queues a text packet: type digit + data. A packet that would overflow the
 * session's queue closes the session instead. Returns 0, or -1 when the
 * session is (now) closed. */
int el_conn_send(el_conn *c, el_eio_type type, const char *data, size_t len);
/* Queues a text packet built by the caller: `pkt` holds "<type><data>" at
 * pkt->buf + LWS_PRE; ownership passes to the session. */
int el_conn_send_pkt(el_conn *c, el_pkt *pkt);
int el_conn_send_binary(el_conn *c, const void *data, size_t len);
/* Allocates a packet with room for len bytes after LWS_PRE. */
el_pkt *el_pkt_new(size_t len);
/* Closes the session: notifies the upper layer, ends its transports (a held
 * poll gets `final_pkt`), removes it from every map and frees it once the
 * current callback returns. Safe to call twice. */
void el_conn_close(el_conn *c, const char *why, char final_pkt);
typedef enum { EL_GUARD_NONE, EL_GUARD_LOGIN, EL_GUARD_GRACE } el_guard;
/* (Re)arms the session's deadline: the login timeout, the grace period of a
 * kicked client, or none. */
void el_conn_arm_guard(el_conn *c, el_guard which);
void el_server_close_all(el_server *srv);
/* Frees closed sessions whose deferred free never ran (teardown only). */
void el_engine_free_zombies(el_server *srv);
/* Writes the queues of the sessions on srv->dirty (see el_server). */
void el_engine_flush(el_server *srv);

/* --- socket.c: Socket.IO --- */
void el_socket_open(el_conn *c);
/* A message packet from the client; returns -1 if the session closed. */
int el_socket_message(el_conn *c, const char *data, size_t len, int binary);
void el_socket_closed(el_conn *c);
/* Emits event `name` with one JSON argument (raw text) on namespace "/". */
int el_socket_emit(el_conn *c, const char *name, const char *json, size_t len);
/* Answers ack id with one JSON argument (raw text). */
int el_socket_ack(el_conn *c, const char *nsp, int64_t id, const char *json, size_t len);
/* Sends DISCONNECT for "/" (the client will not reconnect by itself). */
int el_socket_disconnect(el_conn *c);
/* Leaves every namespace; called at shutdown before the transports close. */

/* --- handlers.c: EchoLink --- */
int el_handlers_connect(el_conn *c);
/* One event on "/": data is the whole JSON array; id is the ack id or -1. */
int el_handlers_event(el_conn *c, const char *data, size_t len, int64_t id);
void el_handlers_closed(el_conn *c);
/* The connect/login deadline fired on a connected session. */
void el_handlers_guard(el_conn *c);
/* Ends a session politely: session_closed {reason}, DISCONNECT, and a close
 * if the client lingers; later events are ignored. */
void el_handlers_kick(el_conn *c, const char *reason);
/* Pushes stored envelope `id` of c's peer to c (another node stored it). */
void el_handlers_push_envelope(el_conn *c, const char *id);
int el_handlers_reply_error(el_conn *c, int64_t id, const char *event, el_reject r,
                            const char *message);
/* The message of an EL_REJ_INTERNAL answer to a store failure (the store has
 * logged the cause). */
#define EL_DB_FAILED "the server's database failed"

/* --- conform.c --- */
int el_conform_connect(el_conn *c, const char *nsp, const char *auth, size_t auth_len);
int el_conform_event(el_conn *c, const char *nsp, const char *data, size_t len, int64_t id,
                     int binary_type, unsigned attachments, el_pkt *bins);

#endif
