/* engine.c - Engine.IO v4 sessions over HTTP long-polling and WebSocket.
 *
 * A session (el_conn) is keyed by its sid, not by a wsi: a polling client's
 * GET and POST arrive on different TCP connections, and an upgrade moves the
 * session to a WebSocket. The upper layer is socket.c (Socket.IO) or, for the
 * /engine.io/ conformance path, a raw echo. */
#include "server/server_int.h"
#include "server/request.h"

#include "base/enc.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>

enum {
    KIND_NONE = 0,
    KIND_POLL_GET,   /* held long-poll */
    KIND_POLL_POST,  /* receiving a body */
    KIND_DONE,       /* answered, waiting for lws to finish */
};

static void ping_fire(el_tnode *n);
static void guard_fire(el_tnode *n);

el_pkt *el_pkt_new(size_t len)
{
    el_pkt *p = malloc(sizeof *p + LWS_PRE + len + 1);
    if (!p)
        return NULL;
    p->next = NULL;
    p->len = len;
    p->binary = 0;
    return p;
}

static void queue_free(el_conn *c)
{
    el_pkt *p = c->q_head;
    while (p) {
        el_pkt *next = p->next;
        free(p);
        p = next;
    }
    c->q_head = c->q_tail = NULL;
    c->q_bytes = 0;
}

/* ---- query strings ---- */

static void read_query(struct lws *wsi, el_req_query *q)
{
    el_req_query_init(q);
    char frag[128];
    for (int n = 0; n < 32; n++) {
        int len = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, n);
        if (len < 0)
            break;
        el_req_query_arg(q, frag);
    }
}

static int reply_error(struct lws *wsi, int code, const char *msg)
{
    char body[128];
    int n = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, msg);
    return el_http_reply(wsi, code == 4 ? 403 : 400, "application/json", body, (size_t)n, 0);
}

/* ---- sessions ---- */

static el_conn *find_live(el_server *srv, const char *sid)
{
    el_conn *c = el_map_get(srv->conns, sid);
    if (!c || c->closed)
        return NULL;
    /* The pong deadline may have passed without its timer having run yet:
     * a request arriving after the deadline must see the session gone. */
    if (c->awaiting_pong && el_now_us() >= c->pong_deadline_us) {
        el_conn_close(c, "ping timeout", '1');
        return NULL;
    }
    return c;
}

static int admit(el_server *srv, struct lws *wsi, el_ipcount **out)
{
    *out = NULL;
    if (srv->stopping || srv->nconns >= srv->cfg->max_conns)
        return -1;
    char ip[48];
    lws_get_peer_simple(wsi, ip, sizeof ip);
    el_ipcount *ipc = el_ipcount_get(srv, ip);
    if (!ipc)
        return -1;
    if (srv->cfg->max_conns_per_ip && ipc->count >= srv->cfg->max_conns_per_ip)
        return -1;
    *out = ipc;
    return 0;
}

static el_conn *conn_new(el_server *srv, el_ipcount *ipc, int engine_only)
{
    el_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    do {
        el_random_id(c->sid, EL_SID_LEN);
    } while (el_map_get(srv->conns, c->sid));
    if (el_map_put(srv->conns, c->sid, c) < 0) {
        free(c);
        return NULL;
    }
    c->engine_only = (uint8_t)engine_only;
    c->bucket = srv->cfg->burst * 1000;
    c->bucket_us = el_now_us();
    c->ipc = ipc;
    ipc->count++;
    srv->nconns++;
    srv->metrics.connections_total++;
    srv->metrics.connections_open++;
    el_tnode_arm(&srv->timers, &srv->t_ping, &c->n_ping, ping_fire);
    if (!engine_only)
        el_tnode_arm(&srv->timers, &srv->t_connect, &c->n_guard, guard_fire);
    return c;
}

static void free_fire(el_tnode *n)
{
    el_conn *c = lws_container_of(n, el_conn, n_guard);
    if (c->dirty)
        el_engine_flush(c->srv); /* unlinks c (closed: nothing written) */
    el_map_del(c->srv->zombies, c->sid);
    free(c);
}

static void free_zombie(const char *key, void *value, void *user)
{
    (void)key;
    (void)user;
    free(value);
}

void el_engine_free_zombies(el_server *srv)
{
    if (!srv->zombies)
        return;
    srv->dirty = NULL; /* may link zombies */
    el_map_each(srv->zombies, free_zombie, NULL);
    el_map_free(srv->zombies);
    srv->zombies = NULL;
}

static void detach_ws(el_conn *c)
{
    if (!c->ws)
        return;
    el_pss *pss = lws_wsi_user(c->ws);
    if (pss) {
        pss->conn = NULL;
        pss->close_now = 1;
    }
    lws_callback_on_writable(c->ws);
    c->ws = NULL;
    c->srv->metrics.websocket_open--;
}

static void detach_poll(el_conn *c, char final_pkt)
{
    if (!c->poll)
        return;
    el_pss *pss = lws_wsi_user(c->poll);
    if (pss) {
        pss->conn = NULL;
        pss->final_pkt = final_pkt ? final_pkt : '1';
    }
    lws_callback_on_writable(c->poll);
    c->poll = NULL;
}

void el_conn_close(el_conn *c, const char *why, char final_pkt)
{
    if (c->closed)
        return;
    c->closed = 1;
    el_server *srv = c->srv;
    EL_DEBUG("session %s closed: %s", c->sid, why);
    if (!c->engine_only)
        el_socket_closed(c);
    el_map_del(srv->conns, c->sid);
    detach_ws(c);
    detach_poll(c, final_pkt);
    queue_free(c);
    if (c->ipc) {
        c->ipc->count--;
        el_ipcount_drop(srv, c->ipc);
        c->ipc = NULL;
    }
    srv->nconns--;
    srv->metrics.connections_open--;
    el_tnode_cancel(&c->n_ping);
    el_tnode_cancel(&c->n_guard);
    /* Callers up the stack may still hold c: free it from the loop (or at
     * teardown, if the loop stops first). */
    if (el_map_put(srv->zombies, c->sid, c) < 0)
        return; /* leaked rather than freed under a caller's feet */
    el_tnode_arm(&srv->timers, &srv->t_free, &c->n_guard, free_fire);
}

typedef struct {
    el_conn **items;
    size_t n;
} conn_list;

static void collect(const char *key, void *value, void *user)
{
    (void)key;
    conn_list *l = user;
    l->items[l->n++] = value;
}

void el_server_close_all(el_server *srv)
{
    /* collect first: closing removes entries from the map being walked */
    conn_list l = {calloc(el_map_count(srv->conns) + 1, sizeof(el_conn *)), 0};
    if (!l.items)
        return;
    el_map_each(srv->conns, collect, &l);
    for (size_t i = 0; i < l.n; i++)
        el_conn_close(l.items[i], "server shutting down", '1');
    free(l.items);
}

/* ---- timers ---- */

static void ping_fire(el_tnode *n)
{
    el_conn *c = lws_container_of(n, el_conn, n_ping);
    if (c->closed)
        return;
    if (c->awaiting_pong) {
        el_conn_close(c, "ping timeout", '1');
        return;
    }
    if (el_conn_send(c, EL_EIO_PING, NULL, 0) < 0)
        return;
    c->awaiting_pong = 1;
    c->pong_deadline_us = el_now_us() + (int64_t)c->srv->cfg->ping_timeout_ms * 1000;
    el_tnode_arm(&c->srv->timers, &c->srv->t_pong, &c->n_ping, ping_fire);
}

static void got_pong(el_conn *c)
{
    if (!c->awaiting_pong)
        return;
    c->awaiting_pong = 0;
    el_tnode_arm(&c->srv->timers, &c->srv->t_ping, &c->n_ping, ping_fire);
}

static void guard_fire(el_tnode *n)
{
    el_conn *c = lws_container_of(n, el_conn, n_guard);
    if (c->closed || c->guard_done)
        return;
    if (c->nsps == 0) {
        el_conn_close(c, "no Socket.IO CONNECT in time", '1');
        return;
    }
    el_handlers_guard(c); /* connected: the login deadline */
}

void el_conn_arm_guard(el_conn *c, el_guard which)
{
    if (c->closed)
        return;
    el_server *srv = c->srv;
    switch (which) {
    case EL_GUARD_NONE:
        el_tnode_cancel(&c->n_guard);
        break;
    case EL_GUARD_LOGIN:
        el_tnode_arm(&srv->timers, &srv->t_login, &c->n_guard, guard_fire);
        break;
    case EL_GUARD_GRACE:
        el_tnode_arm(&srv->timers, &srv->t_grace, &c->n_guard, guard_fire);
        break;
    }
}

/* The protocol suites read each WebSocket message with a one-shot listener
 * that is re-armed a tick later, so two frames arriving in one TCP segment
 * lose the second. In --conformance mode only, consecutive frames are
 * therefore spaced a few milliseconds apart; n_guard is free for this once
 * the CONNECT deadline is done. Real clients never need it. */
static void pace_fire(el_tnode *n)
{
    el_conn *c = lws_container_of(n, el_conn, n_guard);
    if (!c->closed && c->ws)
        lws_callback_on_writable(c->ws);
}

/* ---- sending ---- */

/* In --conformance mode only: see pace_fire. */
static int paced(const el_conn *c)
{
    return c->srv->cfg->conformance && (c->guard_done || c->engine_only);
}

static void kick(el_conn *c)
{
    if (c->transport == EL_TR_WS && c->ws) {
        if (c->write_requested)
            return; /* the writeable callback will drain the queue */
        if (paced(c)) {
            c->write_requested = 1;
            lws_callback_on_writable(c->ws);
            return;
        }
        /* Written at the end of this loop turn (el_engine_flush), together
         * with anything else queued for c meanwhile. Asking lws for a
         * writeable callback instead would cost an epoll_ctl round trip per
         * packet in libuv and a send() per frame. */
        if (!c->dirty) {
            c->dirty = 1;
            c->dirty_next = c->srv->dirty;
            c->srv->dirty = c;
        }
    }
    else if (c->transport == EL_TR_POLLING && c->poll)
        lws_callback_on_writable(c->poll);
}

/* Writes one WebSocket frame whose payload has LWS_PRE bytes of headroom
 * before it: lws frames it, or, on a connection whose WebSocket we speak
 * ourselves (pss->raw, rawws.c), the header goes into the headroom and the
 * bytes go out as they are. Returns lws_write()'s result. */
int el_engine_ws_write_frame(struct lws *wsi, unsigned char *payload, size_t len, el_ws_op op)
{
    const el_pss *pss = lws_wsi_user(wsi);
    if (!pss || !pss->raw) {
        enum lws_write_protocol wp = op == EL_WS_BINARY ? LWS_WRITE_BINARY
                                     : op == EL_WS_CLOSE ? (enum lws_write_protocol)4 /* LWS_WRITE_CLOSE */
                                                         : LWS_WRITE_TEXT;
        return lws_write(wsi, payload, len, wp);
    }
    uint8_t h[10];
    size_t hl = el_ws_frame_header(h, op, len);
    memcpy(payload - hl, h, hl); /* LWS_PRE >= 10 */
    return lws_write(wsi, payload - hl, len + hl, LWS_WRITE_RAW);
}

/* Writes c's queue to its WebSocket while lws has nothing of its own
 * buffered: one frame as is, or several frames framed here and handed to
 * lws_write() as raw bytes (LWS_WRITE_HTTP goes straight to
 * lws_issue_raw() on a WebSocket wsi), so they leave in one send(). lws
 * keeps whatever the socket did not take and sends it before anything else
 * (its own control frames included); then a writeable callback resumes
 * here. Legal outside the writeable callback on lws 4.1 for a plain ws
 * connection (no extensions, no h2): lws_issue_raw() appends to a pending
 * remainder instead of writing past it. Returns -1 when the socket failed. */
static int ws_flush(el_conn *c)
{
    static unsigned char scratch[LWS_PRE + 65536];
    struct lws *wsi = c->ws;
    while (c->q_head) {
        if (lws_partial_buffered(wsi)) {
            c->write_requested = 1;
            lws_callback_on_writable(wsi);
            return 0;
        }
        el_pkt *p = c->q_head;
        int n;
        if (!p->next || p->len + p->next->len + 20 > sizeof scratch - LWS_PRE) {
            c->q_head = p->next;
            c->q_bytes -= p->len;
            n = el_engine_ws_write_frame(wsi, p->buf + LWS_PRE, p->len, p->binary ? EL_WS_BINARY : EL_WS_TEXT);
            free(p);
        } else {
            unsigned char *o = scratch + LWS_PRE, *end = scratch + sizeof scratch;
            while ((p = c->q_head) && (size_t)(end - o) >= p->len + 10) {
                size_t len = p->len;
                o += el_ws_frame_header(o, p->binary ? EL_WS_BINARY : EL_WS_TEXT, len);
                memcpy(o, p->buf + LWS_PRE, len);
                o += len;
                c->q_head = p->next;
                c->q_bytes -= len;
                free(p);
            }
            /* LWS_WRITE_HTTP on a ws wsi and LWS_WRITE_RAW on a raw one
             * both go straight to lws_issue_raw() */
            const el_pss *pss = lws_wsi_user(wsi);
            n = lws_write(wsi, scratch + LWS_PRE, (size_t)(o - (scratch + LWS_PRE)),
                          pss && pss->raw ? LWS_WRITE_RAW : LWS_WRITE_HTTP);
        }
        if (!c->q_head)
            c->q_tail = NULL;
        if (n < 0)
            return -1;
    }
    return 0;
}

void el_engine_flush(el_server *srv)
{
    el_conn *c;
    while ((c = srv->dirty)) {
        srv->dirty = c->dirty_next;
        c->dirty_next = NULL;
        c->dirty = 0;
        if (c->closed || !c->ws || c->transport != EL_TR_WS || c->write_requested)
            continue;
        if (paced(c)) {
            kick(c);
            continue;
        }
        if (ws_flush(c) < 0) {
            struct lws *wsi = c->ws;
            el_conn_close(c, "WebSocket write failed", 0);
            lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        }
    }
}

int el_conn_send_pkt(el_conn *c, el_pkt *p)
{
    if (c->closed) {
        free(p);
        return -1;
    }
    if (c->q_bytes + p->len > EL_CONN_MAX_QUEUE) {
        free(p);
        el_conn_close(c, "send queue overflow", '1');
        return -1;
    }
    p->next = NULL;
    if (c->q_tail)
        c->q_tail->next = p;
    else
        c->q_head = p;
    c->q_tail = p;
    c->q_bytes += p->len;
    kick(c);
    return 0;
}

int el_conn_send(el_conn *c, el_eio_type type, const char *data, size_t len)
{
    el_pkt *p = el_pkt_new(len + 1);
    if (!p) {
        el_conn_close(c, "out of memory", '1');
        return -1;
    }
    p->buf[LWS_PRE] = (unsigned char)('0' + type);
    if (len)
        memcpy(p->buf + LWS_PRE + 1, data, len);
    return el_conn_send_pkt(c, p);
}

int el_conn_send_binary(el_conn *c, const void *data, size_t len)
{
    el_pkt *p = el_pkt_new(len);
    if (!p) {
        el_conn_close(c, "out of memory", '1');
        return -1;
    }
    p->binary = 1;
    if (len)
        memcpy(p->buf + LWS_PRE, data, len);
    return el_conn_send_pkt(c, p);
}

/* ---- receiving ---- */

/* One Engine.IO packet from the client, on whichever transport. Returns -1
 * when the session closed. */
static int on_packet(el_conn *c, const el_eio_packet *pk, const void *bin, size_t binlen)
{
    switch (pk->type) {
    case EL_EIO_PONG:
        got_pong(c);
        return 0;
    case EL_EIO_CLOSE:
        el_conn_close(c, "client closed", '6');
        return -1;
    case EL_EIO_MESSAGE:
        if (c->engine_only) {
            if (bin)
                return el_conn_send_binary(c, bin, binlen);
            return el_conn_send(c, EL_EIO_MESSAGE, pk->data, pk->len);
        }
        if (bin)
            return el_socket_message(c, bin, binlen, 1);
        return el_socket_message(c, pk->data, pk->len, 0);
    case EL_EIO_NOOP:
        return 0;
    default: /* open, ping (wrong direction), upgrade outside a probe */
        c->srv->metrics.rejected[EL_REJ_PROTOCOL]++;
        el_conn_close(c, "unexpected Engine.IO packet", '1');
        return -1;
    }
}

/* ---- HTTP long-polling ---- */

static int method_of(struct lws *wsi)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
        return 'G';
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
        return 'P';
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI))
        return 'O';
    return '?';
}

static int handshake_polling(struct lws *wsi, el_pss *pss, int engine_only)
{
    el_server *srv = lws_context_user(lws_get_context(wsi));
    el_ipcount *ipc;
    if (admit(srv, wsi, &ipc) < 0) {
        srv->metrics.rejected[EL_REJ_CONN_LIMIT]++;
        static const char busy[] = "{\"code\":3,\"message\":\"Too many connections\"}";
        return el_http_reply(wsi, 503, "application/json", busy, sizeof busy - 1, 0);
    }
    el_conn *c = conn_new(srv, ipc, engine_only);
    if (!c)
        return el_http_reply(wsi, 500, "text/plain", "out of memory", 13, 0);
    c->transport = EL_TR_POLLING;
    char open[256];
    open[0] = '0';
    int n = el_eio_open_json(open + 1, sizeof open - 1, c->sid, 1, (unsigned)srv->cfg->ping_interval_ms,
                             (unsigned)srv->cfg->ping_timeout_ms,
                             (unsigned long)srv->cfg->max_payload);
    pss->kind = KIND_DONE;
    if (!engine_only)
        el_socket_open(c);
    return el_http_reply(wsi, 200, "text/plain; charset=UTF-8", open, (size_t)n + 1, 0);
}

int el_engine_http(struct lws *wsi, el_pss *pss, const char *path)
{
    el_server *srv = lws_context_user(lws_get_context(wsi));
    int engine_only = strncmp(path, "/engine.io", 10) == 0;
    el_req_query q;
    read_query(wsi, &q);
    pss->kind = KIND_NONE;
    pss->final_pkt = 0;

    int method = method_of(wsi);
    if (method == 'O')
        return el_http_reply(wsi, 204, "text/plain", "", 0, 0);
    el_req_q_verdict v = el_req_query_poll(&q, method == 'G');
    if (v == EL_REQ_Q_TRANSPORT_UNKNOWN)
        return reply_error(wsi, 0, "Transport unknown");
    el_conn *c = NULL;
    if (v == EL_REQ_Q_SESSION) {
        c = find_live(srv, q.sid);
        if (!c)
            return reply_error(wsi, 1, "Session ID unknown");
        if (strcmp(q.transport, "polling") || (c->transport != EL_TR_POLLING && !c->upgrading) ||
            (c->engine_only != engine_only))
            return reply_error(wsi, 3, "Bad request");
    } else {
        if (v == EL_REQ_Q_BAD_METHOD)
            return reply_error(wsi, 2, "Bad handshake method");
        if (v == EL_REQ_Q_BAD_VERSION)
            return reply_error(wsi, 5, "Unsupported protocol version");
        if (v == EL_REQ_Q_BAD_REQUEST)
            return reply_error(wsi, 3, "Bad request");
        return handshake_polling(wsi, pss, engine_only);
    }

    if (method == 'G') {
        if (c->poll) {
            /* Two polls at once: the client is broken; end the session. */
            el_conn_close(c, "overlapping polls", '1');
            return reply_error(wsi, 3, "Bad request");
        }
        c->poll = wsi;
        pss->conn = c;
        pss->kind = KIND_POLL_GET;
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0); /* held up to pingInterval */
        /* A GET racing a probe that is not answered yet waits for it: the
         * client may already have sent "5" on the WebSocket, and then this
         * GET must fail, not get a noop. */
        pss->before_probe = c->upgrading && !c->probe_answered;
        if (c->q_head || (c->upgrading && !pss->before_probe))
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (method == 'P') {
        pss->conn = c;
        pss->kind = KIND_POLL_POST;
        free(pss->body);
        pss->body = NULL;
        pss->body_len = 0;
        pss->body_cap = 0;
        long clen = -1;
        char num[32];
        if (lws_hdr_copy(wsi, num, sizeof num, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
            clen = atol(num);
        if (clen > srv->cfg->max_payload) {
            pss->conn = NULL;
            pss->kind = KIND_DONE;
            el_conn_close(c, "payload too large", '1');
            return el_http_reply(wsi, 413, "text/plain", "payload too large", 17,
                                 1);
        }
        if (clen == 0)
            return el_engine_http_body_done(wsi, pss);
        return 0;
    }
    return reply_error(wsi, 3, "Bad request");
}

int el_engine_http_body(struct lws *wsi, el_pss *pss, const void *in, size_t len)
{
    if (pss->kind != KIND_POLL_POST)
        return 0;
    el_conn *c = pss->conn;
    el_server *srv = lws_context_user(lws_get_context(wsi));
    if (pss->body_len + len > (size_t)srv->cfg->max_payload) {
        free(pss->body);
        pss->body = NULL;
        pss->body_len = pss->body_cap = 0;
        pss->conn = NULL;
        pss->kind = KIND_DONE;
        if (c)
            el_conn_close(c, "payload too large", '1');
        return el_http_reply(wsi, 413, "text/plain", "payload too large", 17,
                             1);
    }
    if (pss->body_len + len + 1 > pss->body_cap) {
        size_t cap = pss->body_cap ? pss->body_cap * 2 : 4096;
        while (cap < pss->body_len + len + 1)
            cap *= 2;
        char *nb = realloc(pss->body, cap);
        if (!nb)
            return -1;
        pss->body = nb;
        pss->body_cap = cap;
    }
    memcpy(pss->body + pss->body_len, in, len);
    pss->body_len += len;
    return 0;
}

int el_engine_http_body_done(struct lws *wsi, el_pss *pss)
{
    if (pss->kind != KIND_POLL_POST)
        return 0;
    el_conn *c = pss->conn;
    char *body = pss->body;
    size_t blen = pss->body_len;
    pss->body = NULL;
    pss->body_len = 0;
    pss->body_cap = 0;
    pss->conn = NULL;
    pss->kind = KIND_DONE;
    if (!c || c->closed) {
        free(body);
        return reply_error(wsi, 1, "Session ID unknown");
    }
    size_t pos = 0;
    el_eio_packet pk;
    int r, bad = 0;
    while ((r = el_eio_payload_next(body ? body : "", blen, &pos, &pk)) != 0) {
        if (r < 0) {
            bad = 1;
            break;
        }
        uint8_t bin[4096], *dyn = NULL, *bp = NULL;
        ssize_t bl = 0;
        if (pk.binary) {
            size_t cap = pk.len / 4 * 3 + 3;
            bp = cap <= sizeof bin ? bin : (dyn = malloc(cap));
            bl = bp ? el_b64_decode(pk.data, pk.len, bp, cap) : -1;
            if (bl < 0) {
                free(dyn);
                bad = 1;
                break;
            }
        }
        on_packet(c, &pk, bp, (size_t)bl);
        free(dyn);
        if (c->closed)
            break;
    }
    free(body);
    if (bad && !c->closed) {
        c->srv->metrics.rejected[EL_REJ_PROTOCOL]++;
        el_conn_close(c, "malformed polling payload", '1');
        return reply_error(wsi, 3, "Bad request");
    }
    return el_http_reply(wsi, 200, "text/html", "ok", 2, 0);
}

/* Answers a held poll with everything queued (or the final packet of a
 * closed session, or a noop that releases the poll during an upgrade). */
int el_engine_http_writeable(struct lws *wsi, el_pss *pss)
{
    if (pss->kind != KIND_POLL_GET)
        return 0;
    el_conn *c = pss->conn;
    if (!c) {
        char pkt = pss->final_pkt ? pss->final_pkt : '1';
        pss->kind = KIND_DONE;
        return el_http_reply(wsi, 200, "text/plain; charset=UTF-8", &pkt, 1, 0);
    }
    if (pss->before_probe && c->transport == EL_TR_WS) {
        c->poll = NULL;
        pss->conn = NULL;
        pss->kind = KIND_DONE;
        return reply_error(wsi, 3, "Bad request"); /* the upgrade won the race */
    }
    if (pss->before_probe && c->upgrading && !c->probe_answered)
        return 0;
    if (c->upgrading || c->transport == EL_TR_WS) {
        c->poll = NULL;
        pss->conn = NULL;
        pss->kind = KIND_DONE;
        return el_http_reply(wsi, 200, "text/plain; charset=UTF-8", "6", 1, 0);
    }
    if (!c->q_head)
        return 0;
    size_t total = 0;
    for (el_pkt *p = c->q_head; p; p = p->next)
        total += (p->binary ? 1 + EL_B64_LEN(p->len) : p->len) + 1;
    char *body = malloc(total + 1);
    if (!body)
        return -1;
    size_t o = 0;
    for (el_pkt *p = c->q_head; p; p = p->next) {
        if (o)
            body[o++] = EL_EIO_RS;
        if (p->binary) {
            body[o++] = 'b';
            o += (size_t)el_b64_encode(p->buf + LWS_PRE, p->len, body + o, total + 1 - o);
        } else {
            memcpy(body + o, p->buf + LWS_PRE, p->len);
            o += p->len;
        }
    }
    queue_free(c);
    c->poll = NULL;
    pss->conn = NULL;
    pss->kind = KIND_DONE;
    int rc = el_http_reply(wsi, 200, "text/plain; charset=UTF-8", body, o, 0);
    free(body);
    return rc;
}

void el_engine_http_closed(struct lws *wsi, el_pss *pss)
{
    free(pss->body);
    pss->body = NULL;
    el_conn *c = pss->conn;
    pss->conn = NULL;
    if (c && c->poll == wsi) {
        /* The client dropped its poll: like the reference server, treat the
         * transport as gone. */
        c->poll = NULL;
        if (c->transport == EL_TR_POLLING && !c->upgrading)
            el_conn_close(c, "poll connection lost", 0);
    }
}

/* ---- WebSocket ---- */

int el_engine_ws_filter(struct lws *wsi)
{
    char uri[128];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0)
        return -1;
    el_server *srv = lws_context_user(lws_get_context(wsi));
    int ok_path = !strncmp(uri, "/socket.io/", 11) || !strcmp(uri, "/socket.io") ||
                  (srv->cfg->conformance && !strncmp(uri, "/engine.io", 10));
    if (!ok_path)
        return -1;
    el_req_query q;
    read_query(wsi, &q);
    return el_req_query_ws_ok(&q) ? 0 : -1;
}

int el_engine_ws_established(struct lws *wsi, el_pss *pss)
{
    char uri[128];
    lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    el_req_query q;
    read_query(wsi, &q);
    memset(pss, 0, sizeof *pss);
    el_server *srv = lws_context_user(lws_get_context(wsi));
    srv->metrics.ws_upgrades_lws++;
    return el_engine_ws_open(wsi, pss, &q, !strncmp(uri, "/engine.io", 10));
}

int el_engine_ws_open(struct lws *wsi, el_pss *pss, const el_req_query *q, int engine_only)
{
    el_server *srv = lws_context_user(lws_get_context(wsi));
    if (q->has_sid) {
        el_conn *c = find_live(srv, q->sid);
        if (!c || c->ws || c->transport != EL_TR_POLLING || c->engine_only != engine_only) {
            /* accepted, then closed: see notes on ws clients without an
             * error listener */
            pss->close_now = 1;
            lws_callback_on_writable(wsi);
            return 0;
        }
        c->ws = wsi;
        c->upgrading = 1;
        pss->conn = c;
        srv->metrics.websocket_open++;
        if (c->poll)
            lws_callback_on_writable(c->poll); /* release it with a noop */
        return 0;
    }
    el_ipcount *ipc;
    if (admit(srv, wsi, &ipc) < 0) {
        srv->metrics.rejected[EL_REJ_CONN_LIMIT]++;
        pss->close_now = 1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    el_conn *c = conn_new(srv, ipc, engine_only);
    if (!c)
        return -1;
    c->transport = EL_TR_WS;
    c->ws = wsi;
    pss->conn = c;
    srv->metrics.websocket_open++;
    char open[256];
    int n = el_eio_open_json(open, sizeof open, c->sid, 0, (unsigned)srv->cfg->ping_interval_ms,
                             (unsigned)srv->cfg->ping_timeout_ms,
                             (unsigned long)srv->cfg->max_payload);
    if (el_conn_send(c, EL_EIO_OPEN, open, (size_t)n) < 0)
        return -1;
    if (!engine_only)
        el_socket_open(c);
    return 0;
}

/* A complete WebSocket message on a probing (upgrading) session. */
static int on_probe_message(el_conn *c, const char *m, size_t len)
{
    if (len == 6 && !memcmp(m, "2probe", 6)) {
        c->probe_reply = 1;
        lws_callback_on_writable(c->ws);
        return 0;
    }
    if (len == 1 && m[0] == '5') {
        c->upgrading = 0;
        c->transport = EL_TR_WS;
        if (c->poll)
            lws_callback_on_writable(c->poll);
        kick(c);
        return 0;
    }
    c->srv->metrics.rejected[EL_REJ_PROTOCOL]++;
    el_conn_close(c, "bad packet during upgrade", '1');
    return -1;
}

static int on_ws_message(el_conn *c, const char *m, size_t len, int binary)
{
    if (c->upgrading)
        return on_probe_message(c, m, len);
    if (binary) {
        el_eio_packet pk = {EL_EIO_MESSAGE, 1, NULL, 0};
        return on_packet(c, &pk, m, len);
    }
    el_eio_packet pk;
    if (el_eio_parse(m, len, &pk) < 0 || pk.binary) {
        c->srv->metrics.rejected[EL_REJ_PROTOCOL]++;
        el_conn_close(c, "malformed Engine.IO packet", '1');
        return -1;
    }
    return on_packet(c, &pk, NULL, 0);
}

int el_engine_ws_message(el_pss *pss, const char *m, size_t len, int binary)
{
    el_conn *c = pss->conn;
    if (!c || c->closed)
        return 0;
    on_ws_message(c, m, len, binary);
    return c->closed ? -1 : 0;
}

int el_engine_ws_receive(struct lws *wsi, el_pss *pss, const void *in, size_t len)
{
    el_conn *c = pss->conn;
    if (!c || c->closed)
        return 0;
    int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    if (first && final && !pss->rx) {
        on_ws_message(c, in, len, lws_frame_is_binary(wsi));
        if (c->closed) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        return 0;
    }
    if (first) {
        free(pss->rx);
        pss->rx = NULL;
        pss->rx_len = 0;
        pss->rx_cap = 0;
        pss->rx_binary = lws_frame_is_binary(wsi);
    }
    if (pss->rx_len + len > EL_WS_MAX_MESSAGE) {
        c->srv->metrics.rejected[EL_REJ_TOO_LARGE]++;
        el_conn_close(c, "WebSocket message too large", '1');
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return -1;
    }
    if (pss->rx_len + len + 1 > pss->rx_cap) {
        /* grow geometrically: fragments are small (rx_buffer_size), so
         * growing by each one would copy a long message quadratically */
        size_t cap = pss->rx_cap ? pss->rx_cap * 2 : 4096;
        while (cap < pss->rx_len + len + 1)
            cap *= 2;
        char *nb = realloc(pss->rx, cap);
        if (!nb)
            return -1;
        pss->rx = nb;
        pss->rx_cap = cap;
    }
    memcpy(pss->rx + pss->rx_len, in, len);
    pss->rx_len += len;
    if (!final)
        return 0;
    char *msg = pss->rx;
    size_t mlen = pss->rx_len;
    pss->rx = NULL;
    pss->rx_len = 0;
    pss->rx_cap = 0;
    on_ws_message(c, msg, mlen, pss->rx_binary);
    free(msg);
    if (c->closed) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    return 0;
}

int el_engine_ws_writeable(struct lws *wsi, el_pss *pss)
{
    if (pss->close_now) {
        /* A writeable callback that returns -1 makes lws drop the TCP
         * connection without a close frame, whatever lws_close_reason()
         * said; so the frame (1001 Going Away) is written here first. The
         * opcode is lws's internal LWS_WRITE_CLOSE (4), which lws_write()
         * frames like any other. */
        unsigned char frame[LWS_PRE + 2];
        frame[LWS_PRE] = (unsigned char)(LWS_CLOSE_STATUS_GOINGAWAY >> 8);
        frame[LWS_PRE + 1] = (unsigned char)(LWS_CLOSE_STATUS_GOINGAWAY & 0xff);
        el_engine_ws_write_frame(wsi, frame + LWS_PRE, 2, EL_WS_CLOSE);
        if (pss->raw) {
            el_rawws_close_after_drain(wsi, pss);
            return 0;
        }
        return -1;
    }
    el_conn *c = pss->conn;
    if (!c || c->closed)
        return 0;
    c->write_requested = 0; /* whatever this callback does, a new request is needed */
    /* While probing, only the probe answer travels on the WebSocket; the
     * queue still belongs to the polling transport until "5" arrives. */
    if (c->probe_reply) {
        c->probe_reply = 0;
        unsigned char buf[LWS_PRE + 8];
        memcpy(buf + LWS_PRE, "3probe", 6);
        if (el_engine_ws_write_frame(wsi, buf + LWS_PRE, 6, EL_WS_TEXT) < 0)
            return -1;
        c->probe_answered = 1;
        if (c->poll)
            lws_callback_on_writable(c->poll); /* a GET held for the probe: noop */
        if (c->transport == EL_TR_WS && c->q_head)
            kick(c);
        return 0;
    }
    if (c->transport != EL_TR_WS)
        return 0;
    if (!paced(c))
        return ws_flush(c);
    /* --conformance: one frame per pace interval */
    if (c->q_head) {
        el_pkt *p = c->q_head;
        c->q_head = p->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->q_bytes -= p->len;
        int n = el_engine_ws_write_frame(wsi, p->buf + LWS_PRE, p->len, p->binary ? EL_WS_BINARY : EL_WS_TEXT);
        free(p);
        if (n < 0)
            return -1;
    }
    if (c->q_head)
        el_tnode_arm(&c->srv->timers, &c->srv->t_pace, &c->n_guard, pace_fire);
    return 0;
}

void el_engine_ws_closed(struct lws *wsi, el_pss *pss)
{
    free(pss->rx);
    pss->rx = NULL;
    el_conn *c = pss->conn;
    pss->conn = NULL;
    if (!c || c->ws != wsi)
        return;
    c->ws = NULL;
    c->srv->metrics.websocket_open--;
    if (c->upgrading) {
        c->upgrading = 0; /* the probe failed; polling goes on */
        return;
    }
    el_conn_close(c, "WebSocket closed", 0);
}
