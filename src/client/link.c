/* link.c - one remote peer's connection: negotiation, glare, ICE restart,
 * teardown and backoff (see link.h for the rules). */
#include "client/link.h"

#include "base/err.h"
#include "base/log.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CID_HEX 16
#define GLARE_FRESH_US (5 * G_USEC_PER_SEC) /* our offer still counts in a glare */

/* One el_peer and its E2EE session. A connection that is torn down is
 * marked dead and freed from an idle callback: el_peer and el_secure must
 * never be freed inside their own callbacks, and a dead connection's late
 * callbacks are ignored. */
typedef struct conn {
    el_link *l;
    el_peer *pc;
    el_secure *sec;
    el_channel *chat;
    char cid[CID_HEX + 1];
    int offerer;          /* we made the first offer for this cid */
    int awaiting_answer;  /* an offer of ours is unanswered */
    int dead;
    gint64 started;       /* monotonic us */
    GSource *restart;     /* DISCONNECTED for a while: restart ICE */
    GSource *deadline;    /* connect timeout, then recovery deadline */
} conn;

struct el_link {
    GMainContext *ctx;
    const el_identity *self;
    char peer_id[EL_PEER_ID_LEN + 1];
    int polite;
    el_link_config cfg;
    el_link_callbacks cb;
    void *user;
    conn *cur;
    el_link_state state;
    GPtrArray *graveyard; /* dead connections waiting to be freed */
    GSource *reap;
    GSource *retry;
    unsigned fails;       /* failures since the last ready connection */
    el_link_stats stats;
};

static void teardown(el_link *l, const char *why);

static GSource *add_timeout(el_link *l, unsigned ms, GSourceFunc fn, void *data)
{
    GSource *src = g_timeout_source_new(ms);
    g_source_set_callback(src, fn, data, NULL);
    g_source_attach(src, l->ctx);
    return src;
}

static void drop_source(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

static void set_state(el_link *l, el_link_state st, const char *why)
{
    if (l->state == st)
        return;
    l->state = st;
    EL_INFO("link %.8s: %s%s%s", l->peer_id, el_link_state_name(st), why ? " - " : "", why ? why : "");
    if (l->cb.on_state)
        l->cb.on_state(l, st, why, l->user);
}

static int emit_signal(el_link *l, const char *event, json_t *arg)
{
    json_object_set_new(arg, "to", json_string(l->peer_id));
    int rc = l->cb.signal ? l->cb.signal(l, event, arg, l->user) : EL_ERR_STATE;
    json_decref(arg);
    if (rc != 0)
        EL_WARN("link %.8s: cannot send %s: %s", l->peer_id, event, el_strerror(rc));
    return rc;
}

/* ---- dead connections -------------------------------------------------- */

static void conn_free(conn *c)
{
    drop_source(&c->restart);
    drop_source(&c->deadline);
    el_secure_free(c->sec);
    el_peer_free(c->pc);
    free(c);
}

static gboolean reap_cb(gpointer data)
{
    el_link *l = data;
    g_source_unref(l->reap);
    l->reap = NULL;
    while (l->graveyard->len > 0)
        conn_free(g_ptr_array_steal_index(l->graveyard, l->graveyard->len - 1));
    return G_SOURCE_REMOVE;
}

/* Detaches the current connection; it is closed now and freed soon. */
static void bury(el_link *l)
{
    conn *c = l->cur;
    if (!c)
        return;
    l->cur = NULL;
    c->dead = 1;
    drop_source(&c->restart);
    drop_source(&c->deadline);
    el_peer_close(c->pc);
    g_ptr_array_add(l->graveyard, c);
    if (!l->reap) {
        l->reap = g_idle_source_new();
        g_source_set_callback(l->reap, reap_cb, l, NULL);
        g_source_attach(l->reap, l->ctx);
    }
}

/* ---- retries ------------------------------------------------------------ */

static unsigned backoff_ms(unsigned n)
{
    unsigned ms = EL_LINK_BACKOFF_MIN_MS;
    while (n-- > 0 && ms < EL_LINK_BACKOFF_MAX_MS)
        ms *= 2;
    if (ms > EL_LINK_BACKOFF_MAX_MS)
        ms = EL_LINK_BACKOFF_MAX_MS;
    uint16_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = 32768;
    return (unsigned)((double)ms * (0.7 + 0.6 * (double)r / 65535.0));
}

static void start_conn(el_link *l, const char *remote_cid);

static gboolean retry_cb(gpointer data)
{
    el_link *l = data;
    g_source_unref(l->retry);
    l->retry = NULL;
    if (!l->cur && l->cb.want && l->cb.want(l, l->user))
        start_conn(l, NULL);
    return G_SOURCE_REMOVE;
}

static void schedule_retry(el_link *l)
{
    if (l->retry)
        return;
    unsigned ms = backoff_ms(l->fails > 0 ? l->fails - 1 : 0);
    EL_DEBUG("link %.8s: next attempt in %u ms", l->peer_id, ms);
    l->retry = add_timeout(l, ms, retry_cb, l);
}

static void teardown(el_link *l, const char *why)
{
    if (!l->cur)
        return;
    bury(l);
    l->fails++;
    l->stats.failures++;
    /* the retry is scheduled before on_state runs, so an el_link_connect
     * from that callback waits for its backoff instead of starting (and
     * perhaps failing) a new connection inside this one's teardown */
    schedule_retry(l);
    set_state(l, EL_LINK_IDLE, why);
}

/* ---- el_peer callbacks -------------------------------------------------- */

static void pc_candidate(el_peer *pc, const char *cand, const char *mid, void *user)
{
    conn *c = user;
    (void)pc;
    if (c->dead)
        return;
    json_t *arg = json_pack("{s:s, s:s?, s:s?}", "cid", c->cid, "mid", mid, "candidate", cand);
    if (!cand)
        json_object_set_new(arg, "candidate", json_null());
    emit_signal(c->l, "ice_candidate", arg);
}

static gboolean restart_cb(gpointer data)
{
    conn *c = data;
    el_link *l = c->l;
    g_source_unref(c->restart);
    c->restart = NULL;
    el_peer_state st = el_peer_get_state(c->pc);
    if (c->dead || (st != EL_PEER_DISCONNECTED && st != EL_PEER_FAILED))
        return G_SOURCE_REMOVE;
    /* an answer can be lost with the network: try again until the deadline */
    c->restart = add_timeout(l, 2 * EL_LINK_RESTART_AFTER_MS, restart_cb, c);
    char err[160];
    char *sdp = NULL;
    if (el_peer_restart_ice(c->pc, err, sizeof err) == 0)
        sdp = el_peer_create_offer(c->pc, err, sizeof err);
    if (!sdp) {
        EL_WARN("link %.8s: ICE restart failed: %s", l->peer_id, err);
        return G_SOURCE_REMOVE;
    }
    l->stats.restarts++;
    c->awaiting_answer = 1;
    emit_signal(l, "offer", json_pack("{s:s, s:s, s:b}", "cid", c->cid, "sdp", sdp, "restart", 1));
    free(sdp);
    return G_SOURCE_REMOVE;
}

static gboolean deadline_cb(gpointer data)
{
    conn *c = data;
    g_source_unref(c->deadline);
    c->deadline = NULL;
    if (!c->dead)
        teardown(c->l, c->l->state == EL_LINK_CONNECTING && !el_secure_is_ready(c->sec)
                           ? "timed out connecting"
                           : "connection lost");
    return G_SOURCE_REMOVE;
}

static void pc_state(el_peer *pc, el_peer_state st, const char *why, void *user)
{
    conn *c = user;
    el_link *l = c->l;
    (void)pc;
    if (c->dead)
        return;
    switch (st) {
    case EL_PEER_CONNECTED:
        drop_source(&c->restart);
        if (el_secure_is_ready(c->sec))
            drop_source(&c->deadline);
        break;
    case EL_PEER_DISCONNECTED:
        if (c->offerer && !c->restart)
            c->restart = add_timeout(l, EL_LINK_RESTART_AFTER_MS, restart_cb, c);
        if (!c->deadline)
            c->deadline = add_timeout(l, EL_LINK_RECOVER_MS, deadline_cb, c);
        break;
    case EL_PEER_FAILED:
        /* ICE gave up on every pair (after a restart's checks failed, or
         * libnice's 50 s keepalive timeout). A connection that was
         * up keeps DTLS, SCTP and the E2EE session: an ICE restart repairs
         * it, as in DISCONNECTED, but at once. */
        if (el_secure_is_ready(c->sec) && c->deadline == NULL) {
            if (c->offerer)
                c->restart = add_timeout(l, 0, restart_cb, c);
            c->deadline = add_timeout(l, EL_LINK_RECOVER_MS, deadline_cb, c);
            break;
        }
        if (el_secure_is_ready(c->sec))
            break; /* already recovering: the deadline decides */
        /* never connected */
        /* fall through */
    case EL_PEER_CLOSED: {
        char msg[200];
        snprintf(msg, sizeof msg, "connection %s%s%s", el_peer_state_name(st), why ? ": " : "",
                 why ? why : "");
        teardown(l, msg);
        break;
    }
    default:
        break;
    }
}

static void pc_channel(el_peer *pc, el_channel *ch, void *user)
{
    conn *c = user;
    (void)pc;
    if (c->dead)
        return;
    if (!c->chat && !strcmp(el_channel_label(ch), "chat"))
        c->chat = ch;
    if (el_secure_add_channel(c->sec, ch) != 0)
        el_channel_close(ch);
}

static const el_peer_callbacks pc_cbs = {pc_candidate, pc_state, pc_channel};

/* ---- el_secure callbacks ------------------------------------------------ */

static void sec_ready(el_secure *s, void *user)
{
    conn *c = user;
    el_link *l = c->l;
    (void)s;
    if (c->dead)
        return;
    if (el_peer_get_state(c->pc) == EL_PEER_CONNECTED)
        drop_source(&c->deadline);
    l->fails = 0;
    l->stats.readies++;
    set_state(l, EL_LINK_READY, NULL);
}

static void sec_failed(el_secure *s, el_hs_fail why, const char *error, void *user)
{
    conn *c = user;
    (void)s;
    (void)why;
    if (c->dead)
        return;
    char msg[200];
    snprintf(msg, sizeof msg, "E2EE handshake failed: %s", error);
    teardown(c->l, msg);
}

static void sec_channel_open(el_secure *s, el_channel *ch, void *user)
{
    conn *c = user;
    (void)s;
    if (!c->dead && c->l->cb.on_channel_open)
        c->l->cb.on_channel_open(c->l, ch, c->l->user);
}

static void sec_plaintext(el_secure *s, el_channel *ch, const uint8_t *pt, size_t len, void *user)
{
    conn *c = user;
    (void)s;
    if (!c->dead && c->l->cb.on_plaintext)
        c->l->cb.on_plaintext(c->l, ch, pt, len, c->l->user);
}

static void sec_channel_close(el_secure *s, el_channel *ch, void *user)
{
    conn *c = user;
    (void)s;
    if (c->dead)
        return;
    if (ch == c->chat) {
        teardown(c->l, "the chat channel closed");
        return;
    }
    if (c->l->cb.on_channel_close)
        c->l->cb.on_channel_close(c->l, ch, c->l->user);
}

static void sec_buffered_low(el_secure *s, el_channel *ch, void *user)
{
    conn *c = user;
    (void)s;
    if (!c->dead && c->l->cb.on_buffered_low)
        c->l->cb.on_buffered_low(c->l, ch, c->l->user);
}

static void sec_key_changed(el_secure *s, const el_id_bundle *pinned, const el_id_bundle *presented,
                            void *user)
{
    conn *c = user;
    (void)s;
    if (c->dead)
        return;
    drop_source(&c->deadline); /* the user decides; no timeout */
    set_state(c->l, EL_LINK_HELD, "the peer's key changed");
    if (c->l->cb.on_key_changed)
        c->l->cb.on_key_changed(c->l, pinned, presented, c->l->user);
}

static const el_secure_callbacks sec_cbs = {
    sec_ready,         sec_failed,       sec_channel_open, sec_plaintext,
    sec_channel_close, sec_buffered_low, sec_key_changed,
};

/* ---- negotiation -------------------------------------------------------- */

static conn *conn_new(el_link *l, const char *cid, int offerer)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->l = l;
    c->offerer = offerer;
    c->started = g_get_monotonic_time();
    if (cid) {
        snprintf(c->cid, sizeof c->cid, "%s", cid);
    } else {
        uint8_t rnd[CID_HEX / 2];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            free(c);
            return NULL;
        }
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(c->cid + 2 * i, 3, "%02x", rnd[i]);
    }
    char err[200];
    c->pc = el_peer_new(l->ctx, l->cfg.peer, &pc_cbs, c, err, sizeof err);
    if (c->pc)
        c->sec = el_secure_new(l->ctx, c->pc, l->self, l->peer_id, offerer, &sec_cbs, c, err,
                               sizeof err);
    if (!c->sec) {
        EL_WARN("link %.8s: cannot create a connection: %s", l->peer_id, err);
        el_peer_free(c->pc);
        free(c);
        return NULL;
    }
    if (l->cfg.trust)
        el_secure_set_trust(c->sec, l->cfg.trust);
    if (l->cfg.handshake_timeout_ms)
        el_secure_set_timeout(c->sec, l->cfg.handshake_timeout_ms);
    return c;
}

static void begin(el_link *l, conn *c)
{
    l->cur = c;
    l->stats.connects++;
    drop_source(&l->retry);
    c->deadline = add_timeout(l, EL_LINK_CONNECT_TIMEOUT_MS, deadline_cb, c);
    set_state(l, EL_LINK_CONNECTING, NULL);
}

/* Starts a connection as the offerer. */
static void start_conn(el_link *l, const char *unused)
{
    (void)unused;
    conn *c = conn_new(l, NULL, 1);
    if (!c) {
        l->fails++;
        schedule_retry(l);
        return;
    }
    char err[200];
    char *sdp = NULL;
    c->chat = el_peer_create_channel(c->pc, "chat", NULL, err, sizeof err);
    if (c->chat && el_secure_add_channel(c->sec, c->chat) == 0)
        sdp = el_peer_create_offer(c->pc, err, sizeof err);
    begin(l, c);
    if (!sdp) {
        EL_WARN("link %.8s: cannot make an offer: %s", l->peer_id, err);
        teardown(l, "cannot make an offer");
        return;
    }
    c->awaiting_answer = 1;
    int rc = emit_signal(l, "offer", json_pack("{s:s, s:s}", "cid", c->cid, "sdp", sdp));
    free(sdp);
    if (rc != 0)
        teardown(l, "cannot send the offer");
}

/* Applies a remote offer to `c` and sends our answer. */
static int answer(el_link *l, conn *c, const char *sdp)
{
    char err[200];
    if (el_peer_set_remote_description(c->pc, "offer", sdp, err, sizeof err) != 0) {
        EL_WARN("link %.8s: refusing an offer: %s", l->peer_id, err);
        return EL_ERR_INVALID;
    }
    char *ans = el_peer_create_answer(c->pc, err, sizeof err);
    if (!ans) {
        EL_WARN("link %.8s: cannot answer: %s", l->peer_id, err);
        return EL_ERR_INVALID;
    }
    int rc = emit_signal(l, "answer", json_pack("{s:s, s:s}", "cid", c->cid, "sdp", ans));
    free(ans);
    return rc;
}

static void on_offer(el_link *l, const char *cid, const char *sdp)
{
    conn *c = l->cur;
    if (c && !strcmp(c->cid, cid)) { /* the remote restarts ICE */
        if (answer(l, c, sdp) != 0)
            teardown(l, "bad renegotiation offer");
        return;
    }
    if (c && c->awaiting_answer && !l->polite &&
        g_get_monotonic_time() - c->started < GLARE_FRESH_US) {
        EL_DEBUG("link %.8s: glare: keeping our offer", l->peer_id);
        return;
    }
    if (c) {
        /* glare (we are polite) or the remote started over: the old
         * connection and its channels are gone, so say so first */
        bury(l);
        set_state(l, EL_LINK_IDLE, "replaced by the peer's new connection");
    }
    c = conn_new(l, cid, 0);
    if (!c) {
        l->fails++;
        schedule_retry(l);
        return;
    }
    begin(l, c);
    if (answer(l, c, sdp) != 0)
        teardown(l, "cannot answer the offer");
}

static void on_answer(el_link *l, const char *cid, const char *sdp)
{
    conn *c = l->cur;
    if (!c || strcmp(c->cid, cid) != 0 || !c->awaiting_answer) {
        EL_DEBUG("link %.8s: ignoring a stale answer", l->peer_id);
        return;
    }
    char err[200];
    c->awaiting_answer = 0;
    if (el_peer_set_remote_description(c->pc, "answer", sdp, err, sizeof err) != 0) {
        EL_WARN("link %.8s: bad answer: %s", l->peer_id, err);
        teardown(l, "bad answer");
    }
}

static void on_candidate(el_link *l, const char *cid, json_t *cand)
{
    conn *c = l->cur;
    if (!c || strcmp(c->cid, cid) != 0)
        return;
    if (!json_is_string(cand) && !json_is_null(cand))
        return;
    char err[200];
    if (el_peer_add_remote_candidate(c->pc, json_string_value(cand), err, sizeof err) != 0)
        EL_DEBUG("link %.8s: candidate ignored: %s", l->peer_id, err);
}

static int valid_cid(const char *s)
{
    if (!s || strlen(s) != CID_HEX)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

void el_link_on_signal(el_link *l, const char *event, json_t *arg)
{
    const char *cid = json_string_value(json_object_get(arg, "cid"));
    const char *sdp = json_string_value(json_object_get(arg, "sdp"));
    if (!valid_cid(cid)) {
        EL_WARN("link %.8s: %s without a valid cid ignored", l->peer_id, event);
        return;
    }
    if (!strcmp(event, "offer") && sdp)
        on_offer(l, cid, sdp);
    else if (!strcmp(event, "answer") && sdp)
        on_answer(l, cid, sdp);
    else if (!strcmp(event, "ice_candidate"))
        on_candidate(l, cid, json_object_get(arg, "candidate"));
    else
        EL_WARN("link %.8s: malformed %s ignored", l->peer_id, event);
}

/* ---- public -------------------------------------------------------------- */

el_link *el_link_new(GMainContext *ctx, const el_identity *self, const char *peer_id,
                     const el_link_config *cfg, const el_link_callbacks *cb, void *user)
{
    if (!self || !el_id_valid_peer_id(peer_id) || !cfg || !cb)
        return NULL;
    el_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->ctx = ctx ? ctx : g_main_context_default();
    l->self = self;
    snprintf(l->peer_id, sizeof l->peer_id, "%s", peer_id);
    l->polite = strcmp(el_identity_peer_id(self), peer_id) < 0;
    l->cfg = *cfg;
    l->cb = *cb;
    l->user = user;
    l->graveyard = g_ptr_array_new();
    return l;
}

void el_link_connect(el_link *l)
{
    if (l->cur || l->retry)
        return;
    start_conn(l, NULL);
}

void el_link_reset(el_link *l, const char *why)
{
    drop_source(&l->retry);
    l->fails = 0;
    if (l->cur) {
        bury(l);
        set_state(l, EL_LINK_IDLE, why);
    }
}

el_link_state el_link_get_state(const el_link *l)
{
    return l->state;
}

const char *el_link_state_name(el_link_state st)
{
    switch (st) {
    case EL_LINK_IDLE: return "idle";
    case EL_LINK_CONNECTING: return "connecting";
    case EL_LINK_READY: return "ready";
    case EL_LINK_HELD: return "held";
    }
    return "?";
}

const char *el_link_peer_id(const el_link *l)
{
    return l->peer_id;
}

el_channel *el_link_chat(const el_link *l)
{
    return l->state == EL_LINK_READY && l->cur ? l->cur->chat : NULL;
}

int el_link_send(el_link *l, el_channel *ch, const uint8_t *pt, size_t len)
{
    if (l->state != EL_LINK_READY || !l->cur)
        return EL_ERR_STATE;
    return el_secure_send(l->cur->sec, ch ? ch : l->cur->chat, pt, len);
}

el_channel *el_link_open_channel(el_link *l, char *err, size_t errlen)
{
    if (l->state != EL_LINK_READY || !l->cur) {
        el_seterr(err, errlen, EL_ERR_STATE, "no secure connection to %.8s", l->peer_id);
        return NULL;
    }
    return el_secure_open_channel(l->cur->sec, err, errlen);
}

int el_link_accept_key_change(el_link *l, char *err, size_t errlen)
{
    if (!l->cur)
        return el_seterr(err, errlen, EL_ERR_STATE, "no connection to %.8s", l->peer_id);
    return el_secure_accept_key_change(l->cur->sec, err, errlen);
}

const el_id_bundle *el_link_remote_bundle(const el_link *l)
{
    if (!l->cur || (l->state != EL_LINK_READY && l->state != EL_LINK_HELD))
        return NULL;
    return el_secure_remote_bundle(l->cur->sec);
}

void el_link_get_stats(const el_link *l, el_link_stats *out)
{
    *out = l->stats;
}

void el_link_free(el_link *l)
{
    if (!l)
        return;
    drop_source(&l->retry);
    bury(l);
    drop_source(&l->reap);
    while (l->graveyard->len > 0)
        conn_free(g_ptr_array_steal_index(l->graveyard, l->graveyard->len - 1));
    g_ptr_array_free(l->graveyard, TRUE);
    free(l);
}
