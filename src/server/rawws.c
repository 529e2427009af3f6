/* rawws.c - plain-TCP connections as lws accepts them (its "raw" role):
 * the WebSocket upgrades of the Engine.IO paths are answered and spoken
 * here, everything else is handed to lws's HTTP server.
 *
 * Why: lws's WebSocket role keeps a receive buffer of rx_buffer_size plus
 * ~220 bytes of state per connection for the connection's whole life, and
 * reads at most rx_buffer_size bytes per recv(). A small buffer made a 1 KB
 * event cost several reads; a large one made every idle connection cost
 * more (docs/PERFORMANCE.md). A raw connection reads into lws's one shared
 * buffer instead, so an idle WebSocket costs no receive buffer at all and a
 * read takes whatever the socket holds. With TLS (--tls-cert) lws keeps
 * doing everything: the bytes are only readable after its TLS layer.
 *
 * The sequence on a connection:
 *   1. RAW_ADOPT: counted against its address (server.c); lws's reads are
 *      turned off and the request head is watched for with MSG_PEEK (see
 *      "sniffing" below); it must be complete within RAW_HEAD_TIMEOUT_S.
 *   2. A clean upgrade of /socket.io/ (or /engine.io/ with --conformance)
 *      whose query the engine accepts is ours: its head is consumed, 101,
 *      reads back on, then frames (proto/ws.h). Anything else, well-formed
 *      or not, goes to lws's HTTP server unread, on a dup() of the socket
 *      (the "http" vhost, which does not listen), so lws answers it exactly
 *      as it did before; the raw wsi then closes, and lws closes a raw
 *      socket without shutdown(), which leaves the dup's connection intact.
 *   3. Frames: whole messages go to the engine (el_engine_ws_message),
 *      pings are answered, a close is echoed. Writes are the engine's
 *      (el_engine_ws_write_frame frames them for a raw wsi). */
#include "server/server_int.h"

#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAW_HEAD_TIMEOUT_S 10 /* from the accept to the end of the request head */

/* on_frame's reasons to stop reading */
#define STOP_CLOSED 1 /* the session closed: close frame 1000 */
#define STOP_PEER 2   /* the client sent a close: echo its code */
#define STOP_FAIL 3   /* a write failed: just drop the connection */

static int send_close(struct lws *wsi, uint16_t code, const char *why)
{
    uint8_t frame[2 + 125 + 2];
    size_t n = el_ws_close_frame(frame, sizeof frame, code, why);
    return lws_write(wsi, frame, n, LWS_WRITE_RAW) < 0 ? -1 : 0;
}

typedef struct {
    struct lws *wsi;
    el_pss *pss;
    uint16_t peer_code; /* STOP_PEER: the code to echo */
} frame_ctx;

static int on_frame(void *user, el_ws_op op, uint8_t *data, size_t len)
{
    frame_ctx *fc = user;
    switch (op) {
    case EL_WS_TEXT:
    case EL_WS_BINARY:
        return el_engine_ws_message(fc->pss, (const char *)data, len, op == EL_WS_BINARY) < 0
                   ? STOP_CLOSED
                   : 0;
    case EL_WS_PING: {
        uint8_t pong[LWS_PRE + 125];
        memcpy(pong + LWS_PRE, data, len); /* a control payload is <= 125 bytes */
        return el_engine_ws_write_frame(fc->wsi, pong + LWS_PRE, len, EL_WS_PONG) < 0 ? STOP_FAIL : 0;
    }
    case EL_WS_CLOSE:
        fc->peer_code = len >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 1000;
        return STOP_PEER;
    default: /* PONG: nothing to do (we never ping at the WebSocket level) */
        return 0;
    }
}

/* After a close frame of ours (rawws.c's, or the engine's: engine.c): the client may still be sending (the rest
 * of an oversized message). Closing now would make the kernel answer with
 * a reset, which can destroy our close frame before the client reads it;
 * so what comes is read and dropped until the client closes, or for
 * CLOSE_DRAIN_S at most. */
#define CLOSE_DRAIN_S 2

void el_rawws_close_after_drain(struct lws *wsi, el_pss *pss)
{
    pss->raw_state = EL_RAW_CLOSING;
    el_ws_rx_reset(&pss->wsrx); /* nothing more is decoded */
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, CLOSE_DRAIN_S);
    if (!lws_partial_buffered(wsi))
        shutdown(lws_get_socket_fd(wsi), SHUT_WR); /* our side is done: tell the client */
}

/* Frames read on an open raw WebSocket. Returns -1 to close the connection
 * now. */
static int feed(struct lws *wsi, el_pss *pss, uint8_t *data, size_t len)
{
    frame_ctx fc = {wsi, pss, 0};
    const char *why = NULL;
    int r = el_ws_rx_feed(&pss->wsrx, data, len, EL_WS_MAX_MESSAGE, on_frame, &fc, &why);
    if (r == 0)
        return 0;
    el_conn *c = pss->conn;
    switch (r) {
    case STOP_PEER:
        /* the closing handshake is complete, and the server closes the
         * TCP connection first (RFC 6455 §7.1.1): our side is shut once
         * the reply is out. 1005/1006/1015 are never sent: 1000 then */
        if (send_close(wsi, fc.peer_code == 1005 || fc.peer_code == 1006 || fc.peer_code == 1015 ? 1000 : fc.peer_code, NULL) < 0)
            return -1;
        break;
    case STOP_FAIL:
        return -1;
    case STOP_CLOSED:
        if (send_close(wsi, 1000, NULL) < 0)
            return -1;
        break;
    default: /* a close code from the decoder */
        if (c && !c->closed) {
            c->srv->metrics.rejected[r == 1009 ? EL_REJ_TOO_LARGE : EL_REJ_PROTOCOL]++;
            el_conn_close(c, why ? why : "WebSocket protocol error", '1');
        }
        if (send_close(wsi, (uint16_t)r, why) < 0)
            return -1;
        break;
    }
    el_rawws_close_after_drain(wsi, pss);
    return 0;
}

/* ---- the request head ---- */

static int path_is(const char *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && !memcmp(p, prefix, k);
}

/* The engine's WebSocket paths, as el_engine_ws_filter sees them. */
static int engine_path(const el_server *srv, const el_ws_head *h, int *engine_only)
{
    *engine_only = 0;
    if (path_is(h->path, h->path_len, "/socket.io/") ||
        (h->path_len == 10 && !memcmp(h->path, "/socket.io", 10)))
        return 1;
    if (srv->cfg->conformance && path_is(h->path, h->path_len, "/engine.io")) {
        *engine_only = 1;
        return 1;
    }
    return 0;
}

/* The query as el_req_query_arg takes it. 0 when anything would need
 * decoding (lws %-decodes arguments): then lws gets the request. */
static int parse_query(const char *s, size_t n, el_req_query *q)
{
    el_req_query_init(q);
    while (n) {
        const char *amp = memchr(s, '&', n);
        size_t k = amp ? (size_t)(amp - s) : n;
        char arg[128];
        if (k >= sizeof arg || memchr(s, '%', k) || memchr(s, '+', k))
            return 0;
        memcpy(arg, s, k);
        arg[k] = '\0';
        el_req_query_arg(q, arg);
        s += k;
        n -= k;
        if (amp) {
            s++;
            n--;
        }
    }
    return 1;
}

typedef enum { HEAD_WAIT, HEAD_OURS, HEAD_LWS } head_verdict;

typedef struct {
    size_t len;      /* bytes of the head, CRLFCRLF included */
    int engine_only;
    el_req_query q;
    char accept[29];
} head_ours;

static head_verdict judge(const el_server *srv, const char *buf, size_t len, head_ours *out)
{
    el_ws_head h;
    int r = el_ws_head_line(buf, len, &h);
    if (r == 0)
        return len >= EL_WS_HEAD_MAX ? HEAD_LWS : HEAD_WAIT;
    if (r < 0 || !h.is_get || !engine_path(srv, &h, &out->engine_only))
        return HEAD_LWS;
    int n = el_ws_head_parse(buf, len, &h);
    if (n == 0)
        return len >= EL_WS_HEAD_MAX ? HEAD_LWS : HEAD_WAIT;
    if (n < 0 || !h.upgrade_websocket || !h.connection_upgrade || h.version != 13)
        return HEAD_LWS;
    if (!parse_query(h.query ? h.query : "", h.query_len, &out->q) || !el_req_query_ws_ok(&out->q))
        return HEAD_LWS;
    if (el_ws_accept_key(h.key, h.key_len, out->accept) < 0)
        return HEAD_LWS;
    out->len = (size_t)n;
    return HEAD_OURS;
}

/* ---- sniffing: the head is read with MSG_PEEK, on a dup of the socket ----
 *
 * lws must not read the head itself: whatever it reads is consumed, and
 * lws 4.1 cannot be handed a POST's head and body back (with
 * lws_adopt_socket_vhost_readbuf, a request body found in the pre-read
 * bytes is taken from their start, head included). So the raw wsi's reads
 * are off (rx flow control) while a libuv poll on a dup of its socket
 * watches for the head, and MSG_PEEK looks at it without consuming it.
 * SO_RCVLOWAT keeps an incomplete head from waking the loop again until
 * more bytes came. Then either the head alone is consumed (ours: the
 * frames that follow are read by lws into its shared buffer), or nothing
 * is, and lws's HTTP server reads the request from the socket itself. */
struct el_sniff {
    uv_poll_t poll;
    int fd;          /* the dup the poll watches; closed with the handle */
    int lowat;       /* SO_RCVLOWAT we set, 0 if none */
    int seen;        /* bytes the last peek returned */
    struct lws *wsi; /* the raw wsi, reads off */
};

static void sniff_closed(uv_handle_t *h)
{
    el_sniff *sn = h->data;
    close(sn->fd); /* only now: libuv forgets the fd in uv_close */
    free(sn);
}

/* Ends the watch (the raw wsi's reads stay off). */
static void sniff_end(el_pss *pss)
{
    el_sniff *sn = pss->sniff;
    if (!sn)
        return;
    pss->sniff = NULL;
    if (sn->lowat) {
        int one = 1;
        setsockopt(sn->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    }
    uv_poll_stop(&sn->poll);
    uv_close((uv_handle_t *)&sn->poll, sniff_closed);
}

/* Closes the raw wsi from outside its callbacks. lws_set_timeout's
 * LWS_TO_KILL_ASYNC would wait for lws's next timer tick (up to the head
 * timeout), so the close comes from a writeable callback instead. */
static void raw_kill(struct lws *wsi, el_pss *pss)
{
    pss->close_now = 1;
    lws_callback_on_writable(wsi);
}

/* Not ours: lws's HTTP server gets the connection, unread. */
static void hand_to_lws(el_server *srv, struct lws *wsi, el_pss *pss)
{
    int fd = dup(lws_get_socket_fd(wsi));
    if (fd < 0) {
        EL_WARN("cannot hand a connection to the HTTP server: dup: %s", strerror(errno));
    } else {
        /* the HTTP wsi counts itself (NEW_CLIENT_INSTANTIATED): give this
         * connection's count back first, or the two would hold two slots */
        el_server_tcp_closed(srv, wsi);
        /* on failure lws closes fd, except when it could not even allocate
         * the wsi: that leak on out-of-memory beats a double close */
        lws_adopt_socket_vhost(srv->http_vhost, fd);
    }
    /* a raw socket is closed without shutdown(): the dup's connection lives */
    raw_kill(wsi, pss);
}

static int accept_upgrade(el_server *srv, struct lws *wsi, el_pss *pss, const head_ours *ho)
{
    unsigned char resp[LWS_PRE + 160];
    int n = snprintf((char *)resp + LWS_PRE, sizeof resp - LWS_PRE,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     ho->accept);
    if (lws_write(wsi, resp + LWS_PRE, (size_t)n, LWS_WRITE_RAW) < 0)
        return -1;
    pss->raw = 1;
    pss->raw_state = EL_RAW_WS;
    srv->metrics.ws_upgrades_own++;
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0); /* Engine.IO pings from now on */
    if (el_engine_ws_open(wsi, pss, &ho->q, ho->engine_only) < 0)
        return -1;
    lws_rx_flow_control(wsi, 1); /* frames: lws reads them, into its shared buffer */
    return 0;
}

/* A head that grows a byte at a time would be judged again from its start
 * at every byte: once its request line is complete, only the arrival of
 * its end (CRLFCRLF in the new bytes) is worth a new judgement. */
static int head_may_be_done(const char *buf, size_t n, size_t seen)
{
    if (!seen || !memchr(buf, '\n', seen) || n >= EL_WS_HEAD_MAX)
        return 1;
    size_t from = seen > 3 ? seen - 3 : 0;
    return memmem(buf + from, n - from, "\r\n\r\n", 4) != NULL;
}

static void sniff_cb(uv_poll_t *h, int status, int events)
{
    el_sniff *sn = h->data;
    struct lws *wsi = sn->wsi;
    el_pss *pss = lws_wsi_user(wsi);
    el_server *srv = lws_context_user(lws_get_context(wsi));
    char buf[EL_WS_HEAD_MAX];
    ssize_t n = status < 0 ? -1 : recv(sn->fd, buf, sizeof buf, MSG_PEEK);
    if (n < 0 && status == 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) { /* closed before a whole head, or failed */
        sniff_end(pss);
        raw_kill(wsi, pss);
        return;
    }
    if (n <= sn->seen) {
        /* readable, yet nothing new to peek: urgent data (a peek stops at
         * the urgent mark) or memory pressure. Waiting would spin; lws's
         * HTTP server reads the connection the ordinary way. */
        sniff_end(pss);
        hand_to_lws(srv, wsi, pss);
        return;
    }
    size_t seen = (size_t)sn->seen;
    sn->seen = (int)n;
    head_ours ho;
    head_verdict v = head_may_be_done(buf, (size_t)n, seen) ? judge(srv, buf, (size_t)n, &ho) : HEAD_WAIT;
    if (v == HEAD_WAIT && (events & UV_DISCONNECT)) {
        /* half a head, and the client has stopped sending: it stays
         * readable (end of file), so waiting would spin */
        sniff_end(pss);
        raw_kill(wsi, pss);
        return;
    }
    if (v == HEAD_WAIT) {
        /* wake up again only when more than this has come */
        int lowat = (int)n + 1;
        if (setsockopt(sn->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) == 0) {
            sn->lowat = lowat;
            return;
        }
        v = HEAD_LWS;
    }
    int fd = sn->fd;
    if (v == HEAD_OURS) {
        ssize_t got = recv(fd, buf, ho.len, 0); /* the head only: it is all there */
        sniff_end(pss);
        if (got != (ssize_t)ho.len || accept_upgrade(srv, wsi, pss, &ho) < 0)
            raw_kill(wsi, pss);
        return;
    }
    sniff_end(pss);
    hand_to_lws(srv, wsi, pss);
}

static int sniff_start(el_server *srv, struct lws *wsi, el_pss *pss)
{
    el_sniff *sn = calloc(1, sizeof *sn);
    if (!sn)
        return -1;
    sn->wsi = wsi;
    sn->fd = dup(lws_get_socket_fd(wsi));
    if (sn->fd < 0 || uv_poll_init(&srv->loop, &sn->poll, sn->fd) != 0) {
        EL_WARN("refused a connection: cannot watch it: %s", sn->fd < 0 ? strerror(errno) : "uv_poll_init");
        if (sn->fd >= 0)
            close(sn->fd);
        free(sn);
        return -1;
    }
    sn->poll.data = sn;
    pss->sniff = sn;
    if (uv_poll_start(&sn->poll, UV_READABLE | UV_DISCONNECT, sniff_cb) != 0) {
        sniff_end(pss);
        return -1;
    }
    lws_rx_flow_control(wsi, 0); /* lws reads nothing until we know */
    return 0;
}

int el_rawws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    el_pss *pss = user;
    struct lws_context *ctx = lws_get_context(wsi);
    el_server *srv = ctx ? lws_context_user(ctx) : NULL;
    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        if (!pss || el_server_tcp_open(srv, wsi) < 0 || sniff_start(srv, wsi, pss) < 0)
            return -1;
        lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, RAW_HEAD_TIMEOUT_S);
        return 0;
    case LWS_CALLBACK_RAW_RX:
        /* reads are on only once the head was ours */
        if (pss && pss->raw_state == EL_RAW_CLOSING)
            return 0; /* dropped: see close_after_drain */
        return pss && pss->raw_state == EL_RAW_WS ? feed(wsi, pss, in, len) : -1;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (pss && pss->raw_state == EL_RAW_HEAD)
            return pss->close_now ? -1 : 0; /* raw_kill */
        return pss && pss->raw_state == EL_RAW_WS ? el_engine_ws_writeable(wsi, pss) : 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (!pss)
            return 0;
        sniff_end(pss);
        el_ws_rx_reset(&pss->wsrx);
        if (pss->raw_state != EL_RAW_HEAD)
            el_engine_ws_closed(wsi, pss);
        return 0;
    default: /* WSI_DESTROY goes to protocols[0], server.c, for every wsi */
        return 0;
    }
}
