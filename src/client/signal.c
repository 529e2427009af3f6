/* signal.c - the signaling client (see signal.h for the protocol, the state
 * machine and the rules callers rely on).
 *
 * Shape: one el_signal owns at most one sig_conn (the current attempt). A
 * sig_conn is handed to libsoup as the async callback's data and to the
 * WebSocket's signal handlers; when el_signal lets go of a connect that is
 * still pending it clears conn->s and cancels, and the completion callback
 * frees the remains (a foreign library never gets a pointer we free under
 * it). Every user callback may re-enter (emit, stop, on/off), so code that
 * calls out re-checks the state afterwards through s->seq, a counter bumped
 * on every state change. */
#include "client/signal.h"

#include <libsoup/soup.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"
#include "proto/eio.h"
#include "proto/json.h"
#include "proto/sio.h"

#define DEF_BACKOFF_MIN_MS 250u
#define DEF_BACKOFF_MAX_MS 30000u
#define DEF_JITTER_PCT 30u
#define DEF_CONNECT_TIMEOUT_MS 10000u
#define DEF_ACK_TIMEOUT_MS 10000u
#define DEF_MAX_INCOMING (1024u * 1024u) /* the server's own WebSocket limit (§7) */
#define DEF_MAX_OUTGOING 65536u          /* the server's default --max-event-size */
#define DEF_MAX_QUEUE 64u
#define DEF_MAX_INFLIGHT 1024u
/* "42" + the longest ack id; the event must fit max_outgoing with it */
#define EVENT_HEADER_MAX 22u
/* Server events nest a few levels (peer objects in arrays); the server
 * itself refuses input deeper than 32 (§1.1), so this is generous. */
#define IN_JSON_DEPTH 64
/* Engine.IO timers from the open packet are clamped to this, so a hostile
 * server cannot make the dead-connection check meaningless or overflow. */
#define PING_MAX_MS (10u * 60u * 1000u)

typedef struct sig_conn sig_conn;

struct sig_conn {
    el_signal *s; /* NULL once el_signal let go of a pending connect */
    GCancellable *cancel;
    SoupWebsocketConnection *ws;
    int pending; /* soup_session_websocket_connect_async not finished */
    char error[128]; /* libsoup's last "error" on ws, for the close reason */
};

typedef struct {
    unsigned id;
    char *event; /* NULL: every event */
    el_signal_event_cb cb;
    void *user;
    int removed;
} sig_handler;

typedef struct sig_op {
    el_signal *s;
    char *body; /* ["event",arg] as compact JSON (jansson malloc) */
    size_t body_len;
    el_signal_ack_cb cb;
    void *user;
    int64_t id;    /* ack id once sent with a callback */
    GSource *timer;
} sig_op;

struct el_signal {
    GMainContext *ctx;
    const el_identity *id;
    el_signal_callbacks cb;
    void *user;

    char **urls;      /* as given, for reports */
    char **soup_urls; /* http(s)://host:port/path/socket.io/?EIO=4&transport=websocket */
    size_t n_urls, url_idx;
    char *name;
    unsigned backoff_min, backoff_max, jitter_pct, connect_timeout, ack_timeout;
    unsigned max_queue, max_inflight;
    size_t max_in, max_out;

    SoupSession *session;
    GRand *rand;

    el_signal_state state;
    unsigned seq;      /* bumped on every state change (re-entrancy check) */
    unsigned failures; /* failed attempts since the last login */
    unsigned retry_ms;
    int no_reconnect;  /* session_closed "replaced" seen */
    int rotate;        /* the last attempt failed: the next one uses the next URL */
    char closed_reason[64];
    sig_conn *conn;
    int eio_open;      /* Engine.IO open packet received on conn */
    unsigned ping_deadline_ms;

    GSource *retry_timer, *handshake_timer, *ping_timer;
    GQueue queue;    /* sig_op not sent yet (waiting for a login) */
    GQueue inflight; /* sig_op sent, ack pending */
    int64_t next_ack_id;
    sig_op *login_op;

    GArray *handlers; /* sig_handler */
    unsigned next_handler_id;
    int dispatching;

    el_signal_stats stats;
};

static void conn_lost(el_signal *s, const char *reason);
static void attempt_start(el_signal *s);

/* ---- small helpers ---------------------------------------------------- */

const char *el_signal_state_name(el_signal_state st)
{
    switch (st) {
    case EL_SIGNAL_IDLE: return "idle";
    case EL_SIGNAL_CONNECTING: return "connecting";
    case EL_SIGNAL_CONNECTED: return "connected";
    case EL_SIGNAL_LOGGED_IN: return "logged_in";
    case EL_SIGNAL_DISCONNECTED: return "disconnected";
    case EL_SIGNAL_STOPPED: return "stopped";
    }
    return "?";
}

static GSource *timer_start(el_signal *s, unsigned ms, GSourceFunc fn, void *data)
{
    GSource *src = g_timeout_source_new(ms);
    g_source_set_callback(src, fn, data, NULL);
    g_source_attach(src, s->ctx);
    return src;
}

static void timer_clear(GSource **t)
{
    if (*t) {
        g_source_destroy(*t);
        g_source_unref(*t);
        *t = NULL;
    }
}

/* Changes the state and tells the caller. Returns 1 when nothing changed the
 * state again from inside on_state, i.e. the caller may go on. */
static int set_state(el_signal *s, el_signal_state st, const char *reason)
{
    s->state = st;
    unsigned seq = ++s->seq;
    EL_DEBUG("signal: %s%s%s", el_signal_state_name(st), reason ? ": " : "", reason ? reason : "");
    if (s->cb.on_state) {
        el_signal_state_info info = {
            .state = st,
            .reason = reason,
            .url = s->urls[s->url_idx],
            .retry_ms = st == EL_SIGNAL_DISCONNECTED ? s->retry_ms : 0,
            .attempt = s->failures,
        };
        s->cb.on_state(s, &info, s->user);
    }
    return s->seq == seq;
}

/* ---- operations (events with or without an ack) ------------------------ */

static void op_free(sig_op *op)
{
    if (!op)
        return;
    timer_clear(&op->timer);
    free(op->body);
    g_free(op);
}

/* Calls the op's callback once and frees it; the op is in no queue. */
static void op_finish(sig_op *op, el_signal_ack_status st, json_t *ack)
{
    timer_clear(&op->timer);
    el_signal_ack_cb cb = op->cb;
    void *user = op->user;
    el_signal *s = op->s;
    op_free(op);
    if (cb)
        cb(s, st, ack, user);
}

/* Fails every op of `q` with `st`. The queue is emptied first, so callbacks
 * that emit again add to a fresh queue and are not failed here. */
static void ops_fail(GQueue *q, el_signal_ack_status st)
{
    GQueue mine = *q;
    g_queue_init(q);
    sig_op *op;
    while ((op = g_queue_pop_head(&mine)))
        op_finish(op, st, NULL);
}

static gboolean op_timeout(gpointer data)
{
    sig_op *op = data;
    el_signal *s = op->s;
    if (!g_queue_remove(&s->queue, op))
        g_queue_remove(&s->inflight, op);
    /* the source is being destroyed by returning REMOVE: drop our ref only */
    g_source_unref(op->timer);
    op->timer = NULL;
    op_finish(op, EL_SIGNAL_ACK_TIMEOUT, NULL);
    return G_SOURCE_REMOVE;
}

/* Builds ["event",arg]; EL_ERR_INVALID when jansson refuses the name (not
 * UTF-8) or the argument (e.g. NaN), EL_ERR_TOO_LARGE over `limit`. */
static int op_new(el_signal *s, const char *event, json_t *arg, size_t limit, sig_op **out)
{
    *out = NULL;
    json_t *name = json_string(event);
    if (!name)
        return EL_ERR_INVALID;
    json_t *arr = json_array();
    if (!arr) {
        json_decref(name);
        return EL_ERR_NOMEM;
    }
    int bad = json_array_append_new(arr, name);
    bad |= arg ? json_array_append(arr, arg) : json_array_append_new(arr, json_object());
    char *body = bad ? NULL : json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!body)
        return EL_ERR_INVALID;
    size_t len = strlen(body);
    if (len + EVENT_HEADER_MAX > limit) {
        free(body);
        return EL_ERR_TOO_LARGE;
    }
    sig_op *op = g_new0(sig_op, 1);
    op->s = s;
    op->body = body;
    op->body_len = len;
    op->id = EL_SIO_NO_ID;
    *out = op;
    return EL_OK;
}

static int ws_open(const el_signal *s)
{
    return s->conn && s->conn->ws &&
           soup_websocket_connection_get_state(s->conn->ws) == SOUP_WEBSOCKET_STATE_OPEN;
}

/* Sends one text frame; a connection that is already closing drops it (its
 * "closed" signal follows and fails what waits for an ack). */
static void send_text(el_signal *s, const char *text)
{
    if (ws_open(s))
        soup_websocket_connection_send_text(s->conn->ws, text);
}

/* Sends the op now. With a callback it waits in `inflight` for its ack,
 * otherwise it is done. */
static void op_send(el_signal *s, sig_op *op)
{
    if (op->cb)
        op->id = s->next_ack_id++;
    char hdr[32];
    int n = el_sio_header(hdr, sizeof hdr, EL_SIO_EVENT, NULL, op->cb ? op->id : EL_SIO_NO_ID);
    GString *pkt = g_string_sized_new(op->body_len + sizeof hdr + 1);
    g_string_append_c(pkt, '0' + EL_EIO_MESSAGE);
    g_string_append_len(pkt, hdr, n > 0 ? n : 0);
    g_string_append_len(pkt, op->body, (gssize)op->body_len);
    send_text(s, pkt->str);
    g_string_free(pkt, TRUE);
    if (op->cb)
        g_queue_push_tail(&s->inflight, op);
    else
        op_free(op);
}

/* Sends what was queued while not logged in, in order, as long as the
 * session stays logged in (a callback may drop it). */
static void queue_flush(el_signal *s)
{
    sig_op *op;
    while (s->state == EL_SIGNAL_LOGGED_IN && (op = g_queue_pop_head(&s->queue)))
        op_send(s, op);
}

int el_signal_emit(el_signal *s, const char *event, json_t *arg, unsigned timeout_ms,
                   el_signal_ack_cb cb, void *user)
{
    if (!s || !event || !*event || strcmp(event, "login") == 0)
        return EL_ERR_INVALID;
    if (s->state == EL_SIGNAL_STOPPED)
        return EL_ERR_STATE;
    int now = s->state == EL_SIGNAL_LOGGED_IN;
    if (!now && s->queue.length >= s->max_queue)
        return EL_ERR_QUOTA;
    if (cb && s->inflight.length + s->queue.length >= s->max_inflight)
        return EL_ERR_QUOTA;
    sig_op *op;
    int rc = op_new(s, event, arg, s->max_out, &op);
    if (rc)
        return rc;
    op->cb = cb;
    op->user = user;
    if (cb)
        op->timer = timer_start(s, timeout_ms ? timeout_ms : s->ack_timeout, op_timeout, op);
    if (now)
        op_send(s, op);
    else
        g_queue_push_tail(&s->queue, op);
    return EL_OK;
}

/* ---- event subscriptions ---------------------------------------------- */

unsigned el_signal_on(el_signal *s, const char *event, el_signal_event_cb cb, void *user)
{
    if (!s || !cb)
        return 0;
    sig_handler h = {
        .id = ++s->next_handler_id,
        .event = event ? g_strdup(event) : NULL,
        .cb = cb,
        .user = user,
    };
    g_array_append_val(s->handlers, h);
    return h.id;
}

static void handlers_compact(el_signal *s)
{
    for (guint i = s->handlers->len; i-- > 0;) {
        sig_handler *h = &g_array_index(s->handlers, sig_handler, i);
        if (h->removed) {
            g_free(h->event);
            g_array_remove_index(s->handlers, i);
        }
    }
}

void el_signal_off(el_signal *s, unsigned handler_id)
{
    if (!s)
        return;
    for (guint i = 0; i < s->handlers->len; i++) {
        sig_handler *h = &g_array_index(s->handlers, sig_handler, i);
        if (h->id == handler_id)
            h->removed = 1;
    }
    /* while dispatching, indexes must stay put; compact afterwards */
    if (!s->dispatching)
        handlers_compact(s);
}

static void dispatch(el_signal *s, const char *event, json_t *arg)
{
    s->dispatching++;
    guint n = s->handlers->len; /* handlers added now wait for the next event */
    for (guint i = 0; i < n; i++) {
        /* re-read each time: a callback may have grown (moved) the array */
        sig_handler h = g_array_index(s->handlers, sig_handler, i);
        if (h.removed || (h.event && strcmp(h.event, event) != 0))
            continue;
        h.cb(s, event, arg, h.user);
    }
    if (--s->dispatching == 0)
        handlers_compact(s);
}

/* ---- connection life --------------------------------------------------- */

static gboolean idle_done(gpointer data)
{
    (void)data;
    return G_SOURCE_REMOVE;
}

/* We may be inside one of the WebSocket's own signal emissions ("message",
 * "closed"), and libsoup goes on using the object after our handler
 * returns: so the last unref happens from an idle source on ctx (or when
 * ctx is destroyed), never right here. */
static void ws_unref_later(GMainContext *ctx, SoupWebsocketConnection *ws)
{
    GSource *src = g_idle_source_new();
    g_source_set_callback(src, idle_done, ws, g_object_unref);
    g_source_attach(src, ctx);
    g_source_unref(src);
}

static void conn_free(sig_conn *c, GMainContext *ctx)
{
    if (c->ws) {
        g_signal_handlers_disconnect_by_data(c->ws, c);
        if (soup_websocket_connection_get_state(c->ws) == SOUP_WEBSOCKET_STATE_OPEN)
            soup_websocket_connection_close(c->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
        ws_unref_later(ctx, c->ws);
    }
    g_clear_object(&c->cancel);
    g_free(c);
}

/* Lets go of the current connection. A pending connect is cancelled and its
 * completion callback frees it (possibly right inside g_cancellable_cancel,
 * so nothing touches c after that call). */
static void conn_drop(el_signal *s)
{
    sig_conn *c = s->conn;
    s->conn = NULL;
    s->eio_open = 0;
    timer_clear(&s->handshake_timer);
    timer_clear(&s->ping_timer);
    if (s->login_op) {
        /* its ack can no longer come; it has no callback of the caller's */
        g_queue_remove(&s->inflight, s->login_op);
        op_free(s->login_op);
        s->login_op = NULL;
    }
    if (!c)
        return;
    if (c->pending) {
        c->s = NULL;
        g_cancellable_cancel(c->cancel);
    } else {
        conn_free(c, s->ctx);
    }
}

static unsigned backoff_delay(el_signal *s)
{
    unsigned shift = s->failures < 20 ? s->failures : 20;
    double base = (double)s->backoff_min * (double)(1u << shift);
    if (base > s->backoff_max)
        base = s->backoff_max;
    double j = s->jitter_pct / 100.0;
    double d = base * (1.0 + j * (2.0 * g_rand_double(s->rand) - 1.0));
    if (d > s->backoff_max)
        d = s->backoff_max;
    return d < 1.0 ? 1u : (unsigned)d;
}

static gboolean retry_fire(gpointer data)
{
    el_signal *s = data;
    g_source_unref(s->retry_timer);
    s->retry_timer = NULL;
    if (s->rotate)
        s->url_idx = (s->url_idx + 1) % s->n_urls;
    s->rotate = 0;
    attempt_start(s);
    return G_SOURCE_REMOVE;
}

/* The current connection failed or ended: fail the acks that can no longer
 * come, then either schedule the next attempt or stop for good. */
static void conn_lost(el_signal *s, const char *reason)
{
    if (s->state == EL_SIGNAL_STOPPED || s->state == EL_SIGNAL_DISCONNECTED)
        return;
    int was_logged_in = s->state == EL_SIGNAL_LOGGED_IN;
    char why[256];
    snprintf(why, sizeof why, "%s", reason);
    EL_INFO("signal: %s lost: %s", s->urls[s->url_idx], why);
    conn_drop(s);
    el_signal_state next = s->no_reconnect ? EL_SIGNAL_STOPPED : EL_SIGNAL_DISCONNECTED;
    if (next == EL_SIGNAL_DISCONNECTED) {
        /* this server did not work out: the next attempt tries the next
         * one (rotated when it starts, so reports name the failed URL) */
        s->rotate = !was_logged_in;
        s->retry_ms = backoff_delay(s);
        s->failures++;
        s->retry_timer = timer_start(s, s->retry_ms, retry_fire, s);
    }
    /* state first, so acks failed below that emit again get queued */
    s->state = next;
    unsigned seq = ++s->seq;
    ops_fail(&s->inflight, EL_SIGNAL_ACK_DISCONNECTED);
    if (next == EL_SIGNAL_STOPPED)
        ops_fail(&s->queue, EL_SIGNAL_ACK_CANCELLED);
    if (s->seq == seq) /* no callback moved us on (e.g. el_signal_stop) */
        set_state(s, next, why);
}

static gboolean handshake_timeout(gpointer data)
{
    el_signal *s = data;
    g_source_unref(s->handshake_timer);
    s->handshake_timer = NULL;
    conn_lost(s, "connect timeout");
    return G_SOURCE_REMOVE;
}

static gboolean ping_timeout(gpointer data)
{
    el_signal *s = data;
    g_source_unref(s->ping_timer);
    s->ping_timer = NULL;
    conn_lost(s, "ping timeout");
    return G_SOURCE_REMOVE;
}

/* Any packet from the server proves the connection alive; the server pings
 * every pingInterval, so silence beyond pingInterval + pingTimeout means it
 * is dead (as engine.io-client decides). */
static void ping_rearm(el_signal *s)
{
    if (!s->eio_open)
        return;
    timer_clear(&s->ping_timer);
    s->ping_timer = timer_start(s, s->ping_deadline_ms, ping_timeout, s);
}

/* ---- login ------------------------------------------------------------- */

static void login_ack(el_signal *s, el_signal_ack_status st, json_t *ack, void *user)
{
    (void)user;
    if (st != EL_SIGNAL_ACK_OK)
        return; /* the connection went away; conn_lost handles it */
    if (!json_is_true(json_object_get(ack, "ok"))) {
        char why[160];
        const char *code = json_string_value(json_object_get(ack, "error"));
        const char *msg = json_string_value(json_object_get(ack, "message"));
        snprintf(why, sizeof why, "login refused: %s%s%s", code ? code : "?", msg ? ": " : "",
                 msg ? msg : "");
        conn_lost(s, why);
        return;
    }
    timer_clear(&s->handshake_timer);
    s->failures = 0;
    s->stats.logins++;
    if (!set_state(s, EL_SIGNAL_LOGGED_IN, NULL))
        return;
    unsigned seq = s->seq;
    if (s->cb.on_login)
        s->cb.on_login(s, ack, s->user);
    if (s->seq == seq)
        queue_flush(s);
}

/* challenge {"v":1,"nonce","sid"} -> login {ik,sk,sk_sig,sig,name?} (§3). */
static void handle_challenge(el_signal *s, json_t *arg)
{
    if (s->state != EL_SIGNAL_CONNECTED || s->login_op) {
        s->stats.dropped++;
        return;
    }
    const char *nonce_b64 = json_string_value(json_object_get(arg, "nonce"));
    const char *sid = json_string_value(json_object_get(arg, "sid"));
    json_t *v = json_object_get(arg, "v");
    uint8_t nonce[EL_ID_NONCE_LEN];
    if (!json_is_integer(v) || json_integer_value(v) != 1 || !nonce_b64 || !sid ||
        strlen(nonce_b64) != EL_ID_NONCE_B64_LEN ||
        el_b64url_decode(nonce_b64, EL_ID_NONCE_B64_LEN, nonce, sizeof nonce) != EL_ID_NONCE_LEN) {
        conn_lost(s, "malformed challenge");
        return;
    }
    char ik[EL_ID_KEY_B64_SIZE], sk[EL_ID_KEY_B64_SIZE], sk_sig[EL_ID_SIG_B64_SIZE];
    char sig[EL_ID_SIG_B64_SIZE];
    int rc = el_id_bundle_to_b64(el_identity_bundle(s->id), ik, sk, sk_sig);
    if (!rc)
        rc = el_identity_sign_login_b64(s->id, nonce, sid, sig);
    if (rc) {
        char why[96];
        snprintf(why, sizeof why, "cannot sign the login: %s", el_strerror(rc));
        conn_lost(s, why);
        return;
    }
    json_t *login = json_pack("{s:s, s:s, s:s, s:s}", "ik", ik, "sk", sk, "sk_sig", sk_sig,
                              "sig", sig);
    if (login && s->name)
        json_object_set_new(login, "name", json_string(s->name));
    sig_op *op = NULL;
    /* our own event of bounded size (keys, signature, a name ≤ 64 bytes):
     * a small max_outgoing must not make logging in impossible */
    rc = login ? op_new(s, "login", login, SIZE_MAX, &op) : EL_ERR_NOMEM;
    json_decref(login);
    if (rc) {
        conn_lost(s, "cannot build the login event");
        return;
    }
    op->cb = login_ack;
    s->login_op = op;
    op_send(s, op);
}

/* ---- incoming packets -------------------------------------------------- */

/* Engine.IO open: {"sid","upgrades","pingInterval","pingTimeout","maxPayload"}. */
static void handle_open(el_signal *s, const char *data, size_t len)
{
    json_t *o = s->eio_open ? NULL : json_loadb(data, len, 0, NULL);
    json_t *pi = json_object_get(o, "pingInterval"), *pt = json_object_get(o, "pingTimeout");
    if (!json_is_integer(pi) || !json_is_integer(pt) || json_integer_value(pi) <= 0 ||
        json_integer_value(pt) <= 0) {
        json_decref(o);
        conn_lost(s, "bad Engine.IO open packet");
        return;
    }
    json_int_t sum = json_integer_value(pi) + json_integer_value(pt);
    s->ping_deadline_ms = sum > PING_MAX_MS ? PING_MAX_MS : (unsigned)sum;
    json_decref(o);
    s->eio_open = 1;
    ping_rearm(s);
    char hdr[16];
    hdr[0] = '0' + EL_EIO_MESSAGE;
    if (el_sio_header(hdr + 1, sizeof hdr - 1, EL_SIO_CONNECT, NULL, EL_SIO_NO_ID) < 0) {
        conn_lost(s, "internal: Socket.IO header");
        return;
    }
    send_text(s, hdr);
}

static void handle_ack(el_signal *s, const el_sio_packet *p)
{
    sig_op *op = NULL;
    for (GList *l = s->inflight.head; l; l = l->next) {
        sig_op *o = l->data;
        if (o->id == p->id) {
            op = o;
            g_queue_delete_link(&s->inflight, l);
            break;
        }
    }
    if (!op) { /* timed out already, or never ours */
        s->stats.dropped++;
        return;
    }
    if (op == s->login_op)
        s->login_op = NULL;
    json_t *arr = NULL;
    if (el_json_validate(p->data, p->data_len, IN_JSON_DEPTH, NULL, 0) == 0)
        arr = json_loadb(p->data, p->data_len, 0, NULL);
    if (!json_is_array(arr)) {
        json_decref(arr);
        op_finish(op, EL_SIGNAL_ACK_DISCONNECTED, NULL);
        conn_lost(s, "malformed ack");
        return;
    }
    json_t *ack = json_array_size(arr) > 0 ? json_array_get(arr, 0) : json_null();
    op_finish(op, EL_SIGNAL_ACK_OK, ack);
    json_decref(arr);
}

static void handle_event(el_signal *s, const el_sio_packet *p)
{
    json_t *arr = NULL;
    if (el_json_validate(p->data, p->data_len, IN_JSON_DEPTH, NULL, 0) == 0)
        arr = json_loadb(p->data, p->data_len, 0, NULL);
    const char *name = json_string_value(json_array_get(arr, 0));
    if (!json_is_array(arr) || !name) {
        s->stats.dropped++;
        json_decref(arr);
        return;
    }
    json_t *arg = json_array_size(arr) > 1 ? json_array_get(arr, 1) : json_null();
    if (strcmp(name, "challenge") == 0) {
        handle_challenge(s, arg);
    } else {
        if (strcmp(name, "session_closed") == 0) {
            const char *r = json_string_value(json_object_get(arg, "reason"));
            snprintf(s->closed_reason, sizeof s->closed_reason, "%s", r ? r : "unknown");
            /* same identity logged in elsewhere: reconnecting would only
             * kick that session out in turn */
            if (r && strcmp(r, "replaced") == 0)
                s->no_reconnect = 1;
        }
        dispatch(s, name, arg);
    }
    json_decref(arr);
}

static void handle_sio(el_signal *s, const char *data, size_t len)
{
    el_sio_packet p;
    char err[128];
    if (el_sio_parse(data, len, &p, err, sizeof err) != 0) {
        char why[192];
        snprintf(why, sizeof why, "bad Socket.IO packet: %s", err);
        conn_lost(s, why);
        return;
    }
    if (!el_sio_nsp_is(&p, "/")) {
        s->stats.dropped++;
        return;
    }
    switch (p.type) {
    case EL_SIO_CONNECT:
        if (s->state != EL_SIGNAL_CONNECTING) {
            s->stats.dropped++;
            return;
        }
        set_state(s, EL_SIGNAL_CONNECTED, NULL);
        return;
    case EL_SIO_CONNECT_ERROR:
        conn_lost(s, "Socket.IO CONNECT refused");
        return;
    case EL_SIO_DISCONNECT: {
        char why[96];
        if (s->closed_reason[0])
            snprintf(why, sizeof why, "session_closed: %s", s->closed_reason);
        else
            snprintf(why, sizeof why, "server disconnect");
        conn_lost(s, why);
        return;
    }
    case EL_SIO_EVENT:
        handle_event(s, &p);
        return;
    case EL_SIO_ACK:
        handle_ack(s, &p);
        return;
    case EL_SIO_BINARY_EVENT:
    case EL_SIO_BINARY_ACK:
        s->stats.dropped++; /* EchoLink never sends binary (§1) */
        return;
    }
}

static void on_ws_message(SoupWebsocketConnection *ws, gint type, GBytes *msg, gpointer data)
{
    (void)ws;
    sig_conn *c = data;
    el_signal *s = c->s;
    if (!s)
        return;
    gsize len = 0;
    const char *text = g_bytes_get_data(msg, &len);
    el_eio_packet p;
    if (type != SOUP_WEBSOCKET_DATA_TEXT || !text || el_eio_parse(text, len, &p) != 0 || p.binary) {
        /* binary frames would be attachments, which EchoLink never uses */
        s->stats.dropped++;
        return;
    }
    ping_rearm(s);
    switch (p.type) {
    case EL_EIO_OPEN:
        handle_open(s, p.data, p.len);
        break;
    case EL_EIO_PING:
        send_text(s, "3");
        break;
    case EL_EIO_CLOSE:
        conn_lost(s, "Engine.IO close");
        break;
    case EL_EIO_MESSAGE:
        if (!s->eio_open) {
            conn_lost(s, "message before the Engine.IO open packet");
            break;
        }
        handle_sio(s, p.data, p.len);
        break;
    default:
        break; /* pong, noop, upgrade: nothing to do over WebSocket only */
    }
}

static void on_ws_closed(SoupWebsocketConnection *ws, gpointer data)
{
    sig_conn *c = data;
    el_signal *s = c->s;
    if (!s)
        return;
    char why[192];
    snprintf(why, sizeof why, "WebSocket closed (code %u)%s%s",
             (unsigned)soup_websocket_connection_get_close_code(ws), c->error[0] ? ": " : "",
             c->error);
    conn_lost(s, why);
}

static void on_ws_error(SoupWebsocketConnection *ws, GError *e, gpointer data)
{
    (void)ws;
    sig_conn *c = data;
    snprintf(c->error, sizeof c->error, "%s", e ? e->message : "error");
    EL_DEBUG("signal: WebSocket error: %s", c->error);
}

static void on_ws_connected(GObject *src, GAsyncResult *res, gpointer data)
{
    sig_conn *c = data;
    GError *e = NULL;
    SoupWebsocketConnection *ws = soup_session_websocket_connect_finish(SOUP_SESSION(src), res, &e);
    c->pending = 0;
    el_signal *s = c->s;
    if (!s) { /* abandoned: el_signal moved on or was freed */
        if (ws)
            g_object_unref(ws); /* never connected to our handlers */
        g_clear_error(&e);
        conn_free(c, NULL);
        return;
    }
    if (!ws) {
        char why[224];
        snprintf(why, sizeof why, "connect failed: %s", e ? e->message : "?");
        g_clear_error(&e);
        conn_lost(s, why);
        return;
    }
    c->ws = ws;
    soup_websocket_connection_set_max_incoming_payload_size(ws, s->max_in);
    soup_websocket_connection_set_keepalive_interval(ws, 0); /* Engine.IO pings instead */
    g_signal_connect(ws, "message", G_CALLBACK(on_ws_message), c);
    g_signal_connect(ws, "closed", G_CALLBACK(on_ws_closed), c);
    g_signal_connect(ws, "error", G_CALLBACK(on_ws_error), c);
}

static void attempt_start(el_signal *s)
{
    s->no_reconnect = 0;
    s->closed_reason[0] = '\0';
    s->stats.attempts++;
    if (!set_state(s, EL_SIGNAL_CONNECTING, NULL))
        return;
    SoupMessage *msg = soup_message_new(SOUP_METHOD_GET, s->soup_urls[s->url_idx]);
    if (!msg) { /* el_signal_new checked every URL; still, never crash on it */
        conn_lost(s, "URL refused by libsoup");
        return;
    }
    sig_conn *c = g_new0(sig_conn, 1);
    c->s = s;
    c->cancel = g_cancellable_new();
    c->pending = 1;
    s->conn = c;
    s->handshake_timer = timer_start(s, s->connect_timeout, handshake_timeout, s);
    /* libsoup completes on the thread-default context of the caller */
    g_main_context_push_thread_default(s->ctx);
    soup_session_websocket_connect_async(s->session, msg, NULL, NULL, G_PRIORITY_DEFAULT, c->cancel,
                                         on_ws_connected, c);
    g_main_context_pop_thread_default(s->ctx);
    g_object_unref(msg);
}

/* ---- construction ------------------------------------------------------ */

/* "ws://h:p/x" -> "http://h:p/x/socket.io/?EIO=4&transport=websocket". */
static char *soup_url_of(const char *url, char *err, size_t errlen)
{
    GError *e = NULL;
    GUri *u = g_uri_parse(url, G_URI_FLAGS_NONE, &e);
    if (!u) {
        el_seterr(err, errlen, EL_ERR_INVALID, "bad server URL \"%s\": %s", url, e->message);
        g_error_free(e);
        return NULL;
    }
    const char *scheme = g_uri_get_scheme(u);
    const char *http = NULL;
    if (g_ascii_strcasecmp(scheme, "ws") == 0 || g_ascii_strcasecmp(scheme, "http") == 0)
        http = "http";
    else if (g_ascii_strcasecmp(scheme, "wss") == 0 || g_ascii_strcasecmp(scheme, "https") == 0)
        http = "https";
    const char *host = g_uri_get_host(u);
    if (!http || !host || !*host) {
        el_seterr(err, errlen, EL_ERR_INVALID, "bad server URL \"%s\": want ws://, wss://, "
                  "http:// or https:// and a host", url);
        g_uri_unref(u);
        return NULL;
    }
    const char *path = g_uri_get_path(u);
    char *p;
    if (!*path || strcmp(path, "/") == 0)
        p = g_strdup("/socket.io/");
    else if (g_str_has_suffix(path, "/socket.io/"))
        p = g_strdup(path);
    else
        p = g_strconcat(path, g_str_has_suffix(path, "/") ? "" : "/", "socket.io/", NULL);
    GUri *o = g_uri_build(G_URI_FLAGS_NONE, http, NULL, host, g_uri_get_port(u), p,
                          "EIO=4&transport=websocket", NULL);
    char *out = g_uri_to_string(o);
    g_uri_unref(o);
    g_uri_unref(u);
    g_free(p);
    return out;
}

el_signal *el_signal_new(GMainContext *ctx, const el_identity *id, const el_signal_config *cfg,
                         const el_signal_callbacks *cb, void *user, char *err, size_t errlen)
{
    if (!ctx || !id || !cfg || !cfg->urls || !cfg->urls[0]) {
        el_seterr(err, errlen, EL_ERR_INVALID, "el_signal_new: need a context, an identity "
                  "and at least one URL");
        return NULL;
    }
    if (cfg->name && strlen(cfg->name) > 64) {
        el_seterr(err, errlen, EL_ERR_INVALID, "el_signal_new: name longer than 64 bytes");
        return NULL;
    }
    el_signal *s = g_new0(el_signal, 1);
    s->ctx = g_main_context_ref(ctx);
    s->id = id;
    if (cb)
        s->cb = *cb;
    s->user = user;
    s->backoff_min = cfg->backoff_min_ms ? cfg->backoff_min_ms : DEF_BACKOFF_MIN_MS;
    s->backoff_max = cfg->backoff_max_ms ? cfg->backoff_max_ms : DEF_BACKOFF_MAX_MS;
    if (s->backoff_max < s->backoff_min)
        s->backoff_max = s->backoff_min;
    s->jitter_pct = cfg->jitter_pct ? (cfg->jitter_pct < 100 ? cfg->jitter_pct : 99) : DEF_JITTER_PCT;
    s->connect_timeout = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEF_CONNECT_TIMEOUT_MS;
    s->ack_timeout = cfg->ack_timeout_ms ? cfg->ack_timeout_ms : DEF_ACK_TIMEOUT_MS;
    s->max_in = cfg->max_incoming ? cfg->max_incoming : DEF_MAX_INCOMING;
    s->max_out = cfg->max_outgoing ? cfg->max_outgoing : DEF_MAX_OUTGOING;
    s->max_queue = cfg->max_queue ? cfg->max_queue : DEF_MAX_QUEUE;
    s->max_inflight = cfg->max_inflight ? cfg->max_inflight : DEF_MAX_INFLIGHT;
    s->name = cfg->name ? g_strdup(cfg->name) : NULL;
    g_queue_init(&s->queue);
    g_queue_init(&s->inflight);
    s->handlers = g_array_new(FALSE, FALSE, sizeof(sig_handler));
    s->rand = g_rand_new();
    s->next_ack_id = 0;

    while (cfg->urls[s->n_urls])
        s->n_urls++;
    s->urls = g_new0(char *, s->n_urls + 1);
    s->soup_urls = g_new0(char *, s->n_urls + 1);
    for (size_t i = 0; i < s->n_urls; i++) {
        s->urls[i] = g_strdup(cfg->urls[i]);
        s->soup_urls[i] = soup_url_of(cfg->urls[i], err, errlen);
        if (!s->soup_urls[i])
            goto fail;
    }
    /* the session binds to the thread-default context at creation */
    g_main_context_push_thread_default(ctx);
    s->session = soup_session_new();
    g_main_context_pop_thread_default(ctx);
    if (!s->session) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "el_signal_new: no SoupSession");
        goto fail;
    }
    return s;
fail:
    el_signal_free(s);
    return NULL;
}

/* True when ctx is what libsoup will take as the thread-default context. */
static int ctx_is_thread_default(GMainContext *ctx)
{
    GMainContext *td = g_main_context_get_thread_default();
    return td ? td == ctx : ctx == g_main_context_default();
}

int el_signal_start(el_signal *s)
{
    if (!s || s->state != EL_SIGNAL_IDLE)
        return EL_ERR_STATE;
    if (!ctx_is_thread_default(s->ctx)) {
        /* libsoup's internal steps would land on another context and the
         * connection would hang silently: refuse loudly instead */
        EL_ERROR("el_signal_start: the el_signal's context is not the thread-default "
                 "context (g_main_context_push_thread_default)");
        return EL_ERR_STATE;
    }
    attempt_start(s);
    return EL_OK;
}

void el_signal_stop(el_signal *s)
{
    if (!s || s->state == EL_SIGNAL_STOPPED)
        return;
    conn_drop(s);
    timer_clear(&s->retry_timer);
    s->state = EL_SIGNAL_STOPPED;
    unsigned seq = ++s->seq;
    ops_fail(&s->inflight, EL_SIGNAL_ACK_CANCELLED);
    ops_fail(&s->queue, EL_SIGNAL_ACK_CANCELLED);
    if (s->seq == seq)
        set_state(s, EL_SIGNAL_STOPPED, "stopped");
}

el_signal_state el_signal_get_state(const el_signal *s)
{
    return s ? s->state : EL_SIGNAL_STOPPED;
}

void el_signal_get_stats(const el_signal *s, el_signal_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    *out = s->stats;
    out->queued = s->queue.length;
    out->inflight = s->inflight.length - (s->login_op ? 1u : 0u);
}

void el_signal_free(el_signal *s)
{
    if (!s)
        return;
    conn_drop(s);
    timer_clear(&s->retry_timer);
    /* no state report from here on, and emits from the callbacks fail */
    s->state = EL_SIGNAL_STOPPED;
    s->cb.on_state = NULL;
    s->cb.on_login = NULL;
    ops_fail(&s->inflight, EL_SIGNAL_ACK_CANCELLED);
    ops_fail(&s->queue, EL_SIGNAL_ACK_CANCELLED);
    if (s->handlers) {
        for (guint i = 0; i < s->handlers->len; i++)
            g_free(g_array_index(s->handlers, sig_handler, i).event);
        g_array_free(s->handlers, TRUE);
    }
    if (s->session) {
        g_main_context_push_thread_default(s->ctx);
        g_object_unref(s->session);
        g_main_context_pop_thread_default(s->ctx);
    }
    if (s->rand)
        g_rand_free(s->rand);
    g_strfreev(s->urls);
    if (s->soup_urls) {
        for (size_t i = 0; i < s->n_urls; i++)
            g_free(s->soup_urls[i]);
        g_free(s->soup_urls);
    }
    g_free(s->name);
    g_main_context_unref(s->ctx);
    g_free(s);
}
