/* peer.c - the RTCPeerConnection of libecholink: glues ice -> dtls -> sctp
 * and maps SDP offer/answer onto them (include/echolink/el_peer.h).
 *
 * Layers, each with an input function (data from below) and an output
 * callback (data going down):
 *
 *   el_ice  (libnice)   on_data -> el_dtls_input     el_dtls.send -> el_ice_send
 *   el_dtls (OpenSSL)   on_data -> el_sctp_input     el_sctp.send -> el_dtls_send
 *   el_sctp (usrsctp)   on_message -> channel callbacks
 *
 * Roles: the offerer is ICE-controlling and offers a=setup:actpass; the
 * answerer answers a=setup:active, so it is the DTLS client (what Chromium
 * does too). DTLS packets that arrive before the DTLS object exists (the
 * remote's ClientHello can beat our ICE "connected") are held and fed in
 * once it does. */
#include "echolink/el_peer.h"

#include "base/err.h"
#include "base/log.h"
#include "crypto/cert.h"
#include "rtc/dtls.h"
#include "rtc/ice.h"
#include "rtc/sctp.h"
#include "rtc/sdp.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_MESSAGE (256 * 1024)
#define EARLY_MAX 16
#define SCTP_TICK_MS 10
/* usrsctp's clock needs the 10 ms tick while messages flow (delayed SACKs,
 * retransmissions); once no message has been sent or received for
 * SCTP_IDLE_AFTER_MS, what is left (heartbeats every 2 s, their timeouts,
 * RTO >= 200 ms) does with a 100 ms tick, so an idle connection wakes its
 * process 10 times a second, not 100. */
#define SCTP_IDLE_TICK_MS 100
#define SCTP_IDLE_AFTER_MS 1000
/* Silence that makes the path DISCONNECTED (rtc/ice.h): three heartbeat
 * intervals, so under 15 % loss each way a healthy idle path needs about
 * six datagrams lost in a row to look dead. */
#define PEER_SILENCE_MS (3 * EL_SCTP_HB_INTERVAL_MS)
#define MAX_URLS 8

struct el_channel {
    el_peer *pc;
    el_channel *next;
    int sid; /* -1 until known */
    char *label;
    char *protocol;
    el_channel_init init;
    el_channel_state state;
    el_channel_callbacks cb;
    void *user;
    size_t low_threshold;
};

typedef struct {
    uint8_t *data;
    size_t len;
} held_pkt;

struct el_peer {
    GMainContext *ctx;
    bool counted; /* in live_peers */
    int depth;        /* user callbacks running (USER_CB) */
    bool dying;       /* el_peer_free called from one: no more callbacks */
    GSource *reaper;  /* frees it from the loop, then */
    el_peer_callbacks cb;
    void *user;
    /* configuration, copied */
    char *stun_host, *turn_host, *turn_user, *turn_pass;
    uint16_t stun_port, turn_port;
    int turn_tcp, relay_only;
    char **local_addrs;
    size_t max_message_size;

    el_cert *cert;
    el_dtls_ctx *dtls_ctx; /* made with cert: see prepare_endpoints() */
    uint8_t fingerprint[32];
    el_ice *ice;
    el_dtls *dtls;
    el_sctp *sctp;

    int offerer;           /* 1 offerer, 0 answerer, -1 unknown */
    bool remote_offer;     /* the last remote description was an offer: answer it */
    int dtls_client;       /* -1 until known */
    int have_remote_fp;
    uint8_t remote_fp[32];
    el_sdp *remote;        /* last remote description (heap: ~150 KiB) */
    char remote_ufrag[EL_SDP_UFRAG_MAX + 1];
    size_t remote_max_message;
    uint64_t sess_id, sess_version;
    char mid[EL_SDP_MID_MAX + 1];

    el_peer_state state;
    int ice_connected;
    int sctp_started;      /* el_sctp_connect called (DTLS is up) */
    int sctp_up;
    GSource *dtls_timer;
    int ticking;
    held_pkt early[EARLY_MAX];
    int nearly;
    el_channel *channels; /* open, opening or closing: what find_channel walks */
    el_channel *retired;  /* closed: kept for the user's pointers until el_peer_free */
};

/* ---- helpers ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Calls a user callback, unless el_peer_free was called from an earlier
 * one: then the peer is freed from the loop (el_peer_free), our code around
 * the callbacks still uses it until then, and the user hears nothing more. */
#define USER_CB(pc, fn, ...)                                                     \
    do {                                                                         \
        if (!(pc)->dying && (fn)) {                                              \
            (pc)->depth++;                                                       \
            (fn)(__VA_ARGS__);                                                   \
            (pc)->depth--;                                                       \
        }                                                                        \
    } while (0)

static void set_state(el_peer *pc, el_peer_state st, const char *why)
{
    if (pc->state == st || pc->state == EL_PEER_CLOSED)
        return;
    pc->state = st;
    EL_DEBUG("peer state %s (%s)", el_peer_state_name(st), why ? why : "");
    USER_CB(pc, pc->cb.on_state, pc, st, why, pc->user);
}

const char *el_peer_state_name(el_peer_state st)
{
    static const char *const names[] = {"new", "connecting", "connected", "disconnected",
                                        "failed", "closed"};
    return (unsigned)st < 6 ? names[st] : "?";
}

/* Parses "stun:host:port" / "turn:host:port?transport=tcp" into host/port. */
/* stun:HOST[:PORT], turn:HOST[:PORT][?transport=udp|tcp], turns:HOST[:PORT]
 * (RFC 7064/7065). *tcp: 0 UDP, 1 TCP, 2 TLS (turns:, default port 5349). */
static int parse_ice_url(const char *url, int *is_turn, char **host, uint16_t *port, int *tcp)
{
    const char *p;
    int tls = 0;
    if (!strncmp(url, "stun:", 5)) {
        *is_turn = 0;
        p = url + 5;
    } else if (!strncmp(url, "turn:", 5)) {
        *is_turn = 1;
        p = url + 5;
    } else if (!strncmp(url, "turns:", 6)) {
        *is_turn = 1;
        tls = 1;
        p = url + 6;
    } else {
        return -1;
    }
    const char *q = strchr(p, '?');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    const char *colon = memrchr(p, ':', n);
    *port = tls ? 5349 : 3478;
    size_t hlen = n;
    if (colon) {
        long v = strtol(colon + 1, NULL, 10);
        if (v <= 0 || v > 65535)
            return -1;
        *port = (uint16_t)v;
        hlen = (size_t)(colon - p);
    }
    if (hlen == 0 || hlen > 255)
        return -1;
    *host = strndup(p, hlen);
    *tcp = tls ? 2 : q && strstr(q, "transport=tcp") != NULL;
    return *host ? 0 : -1;
}

/* ---- channels ---- */

/* The live channel on stream `sid`. A closed channel keeps its struct (the
 * pointer stays valid) but not its stream: SCTP reuses the id for the next
 * channel either side opens. */
static el_channel *find_channel(el_peer *pc, int sid)
{
    for (el_channel *ch = pc->channels; ch; ch = ch->next)
        if (ch->sid == sid && ch->state != EL_CHANNEL_CLOSED)
            return ch;
    return NULL;
}

/* Marks ch closed and moves it to the retired list, so that a connection
 * that has carried thousands of file channels does not walk them for every
 * message. */
static void retire(el_peer *pc, el_channel *ch)
{
    ch->state = EL_CHANNEL_CLOSED;
    for (el_channel **p = &pc->channels; *p; p = &(*p)->next) {
        if (*p == ch) {
            *p = ch->next;
            ch->next = pc->retired;
            pc->retired = ch;
            return;
        }
    }
}

/* A channel made before SCTP was up and not handed to it yet. */
static el_channel *first_unopened(el_peer *pc)
{
    for (el_channel *ch = pc->channels; ch; ch = ch->next)
        if (ch->sid < 0 && ch->state == EL_CHANNEL_CONNECTING)
            return ch;
    return NULL;
}

static el_channel *channel_new(el_peer *pc, const char *label, const char *protocol,
                               const el_channel_init *init)
{
    el_channel *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->pc = pc;
    ch->sid = -1;
    ch->label = strdup(label ? label : "");
    ch->protocol = strdup(protocol ? protocol : "");
    if (!ch->label || !ch->protocol) {
        free(ch->label);
        free(ch->protocol);
        free(ch);
        return NULL;
    }
    el_channel_init def = EL_CHANNEL_INIT_DEFAULT;
    ch->init = init ? *init : def;
    ch->init.protocol = NULL;
    ch->state = EL_CHANNEL_CONNECTING;
    ch->next = pc->channels;
    pc->channels = ch;
    return ch;
}

static void ticker_poke(void);

static void open_channel_on_sctp(el_peer *pc, el_channel *ch)
{
    uint16_t sid = 0;
    ticker_poke();
    int rc = el_sctp_open_channel(pc->sctp, ch->label, ch->protocol, ch->init.ordered,
                                  ch->init.max_retransmits, ch->init.max_lifetime_ms,
                                  ch->init.negotiated_id, &sid);
    if (rc != 0) {
        EL_WARN("cannot open channel '%s': %s", ch->label, el_strerror(rc));
        retire(pc, ch);
        USER_CB(pc, ch->cb.on_close, ch, ch->user);
        return;
    }
    ch->sid = sid;
    if (ch->low_threshold)
        el_sctp_set_buffered_low(pc->sctp, sid, ch->low_threshold);
}

/* ---- SCTP ---- */

/* usrsctp keeps one clock per process, so exactly one timer may drive it:
 * a process-wide ticker, attached to the context of the first association
 * and shared (refcounted) by the others. A true singleton, like usrsctp.
 * It runs every SCTP_TICK_MS while messages flow and every
 * SCTP_IDLE_TICK_MS once they have stopped (ticker_poke() on every message
 * sent or received brings the fast tick back at once). */
static GSource *sctp_ticker;
static int sctp_ticker_refs;
static gint64 sctp_last_tick;
static gint64 sctp_last_message; /* monotonic µs of the last message either way */
static bool sctp_ticker_idle;

static gboolean sctp_tick_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    (void)cb, (void)data;
    gint64 now = g_get_monotonic_time();
    gint64 ms = (now - sctp_last_tick) / 1000;
    if (ms > 0) {
        sctp_last_tick += ms * 1000;
        el_sctp_tick((uint32_t)ms);
    }
    sctp_ticker_idle = now - sctp_last_message > (gint64)SCTP_IDLE_AFTER_MS * 1000;
    gint64 next = sctp_ticker_idle ? SCTP_IDLE_TICK_MS : SCTP_TICK_MS;
    g_source_set_ready_time(src, now + next * 1000);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs sctp_tick_funcs = {.dispatch = sctp_tick_dispatch};

static void ticker_poke(void)
{
    sctp_last_message = g_get_monotonic_time();
    if (sctp_ticker && sctp_ticker_idle) {
        sctp_ticker_idle = false;
        g_source_set_ready_time(sctp_ticker, sctp_last_message + SCTP_TICK_MS * 1000);
    }
}

/* usrsctp without threads is one per process, with one clock (the ticker
 * below) and no locks: every el_peer of a process must run on one context.
 * A peer on another context while some live would never be ticked (its
 * associations time out) and could race from another thread. */
static GMainContext *live_ctx; /* borrowed: each live peer holds a reference */
static unsigned live_peers;

static void ticker_ref(GMainContext *ctx)
{
    if (sctp_ticker_refs++ > 0) {
        ticker_poke(); /* a new association: its setup wants the fast tick */
        return;
    }
    sctp_last_tick = sctp_last_message = g_get_monotonic_time();
    sctp_ticker_idle = false;
    sctp_ticker = g_source_new(&sctp_tick_funcs, sizeof(GSource));
    g_source_set_name(sctp_ticker, "el_peer sctp tick");
    g_source_set_ready_time(sctp_ticker, sctp_last_tick + SCTP_TICK_MS * 1000);
    g_source_attach(sctp_ticker, ctx);
}

static void ticker_unref(void)
{
    if (sctp_ticker_refs == 0 || --sctp_ticker_refs > 0)
        return;
    g_source_destroy(sctp_ticker);
    g_source_unref(sctp_ticker);
    sctp_ticker = NULL;
}

static void sctp_send_cb(void *user, const uint8_t *pkt, size_t len)
{
    el_peer *pc = user;
    if (pc->dtls)
        el_dtls_send(pc->dtls, pkt, len);
}

static void sctp_state_cb(void *user, int up, const char *why)
{
    el_peer *pc = user;
    pc->sctp_up = up;
    if (!up) {
        set_state(pc, EL_PEER_FAILED, why ? why : "SCTP association lost");
        return;
    }
    set_state(pc, EL_PEER_CONNECTED, "data channels ready");
    /* each pass gives one channel a stream or retires it; an on_close in
     * between may add or close others, so no list walk is kept across it */
    el_channel *ch;
    while ((ch = first_unopened(pc)) != NULL)
        open_channel_on_sctp(pc, ch);
}

static void sctp_channel_open_cb(void *user, uint16_t sid, const char *label, const char *protocol,
                                 int remote)
{
    el_peer *pc = user;
    el_channel *ch = find_channel(pc, sid);
    if (remote && !ch) {
        el_channel_init init = EL_CHANNEL_INIT_DEFAULT;
        ch = channel_new(pc, label, protocol, &init);
        if (!ch)
            return;
        ch->sid = sid;
        ch->state = EL_CHANNEL_OPEN;
        USER_CB(pc, pc->cb.on_channel, pc, ch, pc->user);
        /* on_channel may have closed it (or the whole peer) already */
        if (ch->state == EL_CHANNEL_OPEN)
            USER_CB(pc, ch->cb.on_open, ch, ch->user);
        return;
    }
    if (!ch || ch->state == EL_CHANNEL_OPEN)
        return;
    ch->state = EL_CHANNEL_OPEN;
    USER_CB(pc, ch->cb.on_open, ch, ch->user);
}

static void sctp_message_cb(void *user, uint16_t sid, int binary, const uint8_t *data, size_t len)
{
    el_peer *pc = user;
    el_channel *ch = find_channel(pc, sid);
    ticker_poke();
    if (ch)
        USER_CB(pc, ch->cb.on_message, ch, binary, data, len, ch->user);
}

static void sctp_closed_cb(void *user, uint16_t sid)
{
    el_peer *pc = user;
    el_channel *ch = find_channel(pc, sid);
    if (!ch || ch->state == EL_CHANNEL_CLOSED)
        return;
    retire(pc, ch);
    USER_CB(pc, ch->cb.on_close, ch, ch->user);
}

static void sctp_low_cb(void *user, uint16_t sid)
{
    el_peer *pc = user;
    el_channel *ch = find_channel(pc, sid);
    if (ch)
        USER_CB(pc, ch->cb.on_buffered_low, ch, ch->user);
}

static const el_sctp_callbacks sctp_cbs = {
    .send = sctp_send_cb,
    .on_state = sctp_state_cb,
    .on_channel_open = sctp_channel_open_cb,
    .on_message = sctp_message_cb,
    .on_channel_closed = sctp_closed_cb,
    .on_buffered_low = sctp_low_cb,
};

/* ---- DTLS ---- */

static void dtls_send_cb(void *user, const uint8_t *dgram, size_t len)
{
    el_peer *pc = user;
    if (pc->ice)
        el_ice_send(pc->ice, dgram, len);
}

/* Gives the SCTP endpoint (made by el_peer_new, see prepare_endpoints) the
 * role and limit the remote description set, or makes it if that failed
 * then. Failure is left to dtls_connected_cb to retry and report. */
static int prepare_sctp(el_peer *pc, char *err, size_t errlen)
{
    if (pc->sctp_started || pc->dtls_client < 0)
        return 0;
    if (pc->sctp) {
        if (el_sctp_set_peer(pc->sctp, pc->dtls_client, pc->remote_max_message) == EL_OK)
            return 0;
        return el_seterr(err, errlen, EL_ERR_INVALID, "the SCTP endpoint is already connecting");
    }
    pc->sctp = el_sctp_new(pc->dtls_client, pc->remote_max_message, &sctp_cbs, pc, err, errlen);
    return pc->sctp ? 0 : -1;
}

static void dtls_connected_cb(void *user)
{
    el_peer *pc = user;
    char err[160];
    if (prepare_sctp(pc, err, sizeof err) != 0) {
        set_state(pc, EL_PEER_FAILED, err);
        return;
    }
    ticker_ref(pc->ctx);
    pc->ticking = 1;
    pc->sctp_started = 1;
    /* the INIT goes out from inside this call, on the same turn as the
     * last DTLS flight */
    el_sctp_connect(pc->sctp);
}

static void dtls_data_cb(void *user, const uint8_t *data, size_t len)
{
    el_peer *pc = user;
    if (pc->sctp)
        el_sctp_input(pc->sctp, data, len);
}

static void dtls_error_cb(void *user, int code, const char *msg)
{
    el_peer *pc = user;
    (void)code;
    set_state(pc, EL_PEER_FAILED, msg);
}

static gboolean dtls_timer_fire(gpointer data)
{
    el_peer *pc = data;
    g_source_unref(pc->dtls_timer);
    pc->dtls_timer = NULL;
    if (pc->dtls)
        el_dtls_handle_timeout(pc->dtls);
    return G_SOURCE_REMOVE;
}

static void dtls_set_timer_cb(void *user, int64_t ms)
{
    el_peer *pc = user;
    if (pc->dtls_timer) {
        g_source_destroy(pc->dtls_timer);
        g_source_unref(pc->dtls_timer);
        pc->dtls_timer = NULL;
    }
    if (ms < 0)
        return;
    pc->dtls_timer = g_timeout_source_new((guint)ms);
    g_source_set_callback(pc->dtls_timer, dtls_timer_fire, pc, NULL);
    g_source_attach(pc->dtls_timer, pc->ctx);
}

static const el_dtls_callbacks dtls_cbs = {
    .send = dtls_send_cb,
    .on_connected = dtls_connected_cb,
    .on_data = dtls_data_cb,
    .on_error = dtls_error_cb,
    .set_timer = dtls_set_timer_cb,
};

/* Creates the DTLS endpoint once our role and the remote fingerprint are
 * known, then feeds it whatever arrived early. */
static int ensure_dtls(el_peer *pc, char *err, size_t errlen)
{
    if (pc->dtls || pc->dtls_client < 0 || !pc->have_remote_fp)
        return 0;
    pc->dtls = el_dtls_new(pc->dtls_ctx, pc->dtls_client, pc->remote_fp, &dtls_cbs, pc, err, errlen);
    if (!pc->dtls)
        return EL_ERR_CRYPTO;
    if (!pc->dtls_client || pc->ice_connected)
        el_dtls_start(pc->dtls);
    for (int i = 0; i < pc->nearly; i++) {
        if (pc->dtls)
            el_dtls_input(pc->dtls, pc->early[i].data, pc->early[i].len);
        free(pc->early[i].data);
    }
    pc->nearly = 0;
    return 0;
}

/* ---- ICE ---- */

static void ice_candidate_cb(void *user, const char *candidate)
{
    el_peer *pc = user;
    USER_CB(pc, pc->cb.on_local_candidate, pc, candidate, pc->mid, pc->user);
}

static void ice_state_cb(void *user, el_ice_state st)
{
    el_peer *pc = user;
    switch (st) {
    case EL_ICE_CHECKING:
        if (pc->state == EL_PEER_NEW)
            set_state(pc, EL_PEER_CONNECTING, "ICE checking");
        break;
    case EL_ICE_CONNECTED:
    case EL_ICE_COMPLETED:
        pc->ice_connected = 1;
        if (pc->dtls && pc->dtls_client && !pc->sctp_started)
            el_dtls_start(pc->dtls);
        if (pc->sctp_up)
            set_state(pc, EL_PEER_CONNECTED, "ICE connected again");
        break;
    case EL_ICE_DISCONNECTED:
        if (pc->sctp_up) /* before that, DTLS and SCTP setup have their own timers */
            set_state(pc, EL_PEER_DISCONNECTED, "nothing heard from the peer");
        break;
    case EL_ICE_FAILED:
        pc->ice_connected = 0;
        set_state(pc, EL_PEER_FAILED, "ICE failed");
        break;
    default:
        break;
    }
}

static void ice_data_cb(void *user, const uint8_t *data, size_t len)
{
    el_peer *pc = user;
    if (!el_dtls_is_dtls_packet(data, len))
        return;
    if (pc->dtls) {
        el_dtls_input(pc->dtls, data, len);
        return;
    }
    if (pc->nearly < EARLY_MAX) {
        held_pkt *h = &pc->early[pc->nearly];
        h->data = malloc(len);
        if (h->data) {
            memcpy(h->data, data, len);
            h->len = len;
            pc->nearly++;
        }
    }
}

static const el_ice_callbacks ice_cbs = {
    .on_candidate = ice_candidate_cb,
    .on_state = ice_state_cb,
    .on_data = ice_data_cb,
};

static int ensure_ice(el_peer *pc, int controlling, char *err, size_t errlen)
{
    if (pc->ice)
        return 0;
    el_ice_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.stun_host = pc->stun_host;
    cfg.stun_port = pc->stun_port;
    cfg.turn_host = pc->turn_host;
    cfg.turn_port = pc->turn_port;
    cfg.turn_user = pc->turn_user;
    cfg.turn_pass = pc->turn_pass;
    cfg.turn_tcp = pc->turn_tcp;
    cfg.local_addrs = (const char *const *)pc->local_addrs;
    cfg.relay_only = pc->relay_only;
    /* SCTP heartbeats keep every association talking: silence, not
     * libnice's consent checks, says the path is gone */
    cfg.silence_ms = PEER_SILENCE_MS;
    pc->ice = el_ice_new(pc->ctx, controlling, &cfg, &ice_cbs, pc, err, errlen);
    if (!pc->ice)
        return EL_ERR_IO;
    int rc = el_ice_gather(pc->ice);
    if (rc != EL_OK) {
        /* not kept: a later offer would go ahead without a candidate */
        el_ice_free(pc->ice);
        pc->ice = NULL;
        return el_seterr(err, errlen, rc, "ICE gathering failed: no usable local address");
    }
    return EL_OK;
}

/* ---- public API ---- */

/* What a connection needs whatever the remote says, made now rather than
 * when the remote description arrives: there it delayed the answer, and the
 * offerer's use of the answer, by ~1.5 ms in bench/rtc.sh (OpenSSL 3 builds
 * an SSL_CTX in ~0.9 ms; the first el_sctp of a process initialises
 * usrsctp). The SCTP endpoint gets its role later (el_sctp_set_peer); if it
 * cannot be made now, prepare_sctp() tries again. */
static int prepare_endpoints(el_peer *pc, char *err, size_t errlen)
{
    char cerr[160];
    pc->dtls_ctx = el_dtls_ctx_new(pc->cert, cerr, sizeof cerr);
    if (!pc->dtls_ctx)
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "DTLS: %s", cerr);
    pc->sctp = el_sctp_new(0, 0, &sctp_cbs, pc, cerr, sizeof cerr);
    if (!pc->sctp)
        EL_DEBUG("SCTP endpoint not made yet (retried with the remote description): %s", cerr);
    return 0;
}

el_peer *el_peer_new(GMainContext *ctx, const el_peer_config *cfg, const el_peer_callbacks *cb,
                     void *user, char *err, size_t errlen)
{
    el_peer *pc = calloc(1, sizeof *pc);
    if (!pc) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pc->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    if (live_peers > 0 && pc->ctx != live_ctx) {
        el_seterr(err, errlen, EL_ERR_STATE,
                  "every el_peer of a process runs on one GMainContext (usrsctp has one "
                  "clock and no locks): free the peers of the other context first");
        goto fail;
    }
    live_ctx = pc->ctx;
    live_peers++;
    pc->counted = true;
    if (cb)
        pc->cb = *cb;
    pc->user = user;
    pc->offerer = -1;
    pc->dtls_client = -1;
    pc->remote_max_message = EL_SCTP_DEFAULT_REMOTE_MAX; /* RFC 8841 until the remote says */
    pc->max_message_size = cfg && cfg->max_message_size ? cfg->max_message_size : DEFAULT_MAX_MESSAGE;
    if (pc->max_message_size > EL_SCTP_MAX_MESSAGE_SIZE) {
        /* our SCTP reassembles at most that much: advertising more would
         * invite messages that close the channel */
        el_seterr(err, errlen, EL_ERR_INVALID, "max_message_size %zu is above the %u bytes we can take",
                  pc->max_message_size, (unsigned)EL_SCTP_MAX_MESSAGE_SIZE);
        goto fail;
    }
    snprintf(pc->mid, sizeof pc->mid, "0");
    if (RAND_bytes((unsigned char *)&pc->sess_id, sizeof pc->sess_id) != 1)
        goto fail;
    pc->sess_id &= 0x7fffffffffffffffull;
    pc->sess_version = 1;
    if (cfg) {
        for (int i = 0; cfg->ice_servers && cfg->ice_servers[i] && i < MAX_URLS; i++) {
            int turn, tcp;
            char *host;
            uint16_t port;
            if (parse_ice_url(cfg->ice_servers[i], &turn, &host, &port, &tcp) < 0) {
                el_seterr(err, errlen, EL_ERR_INVALID, "bad ICE server URL '%s'", cfg->ice_servers[i]);
                goto fail;
            }
            if (turn) {
                free(pc->turn_host);
                pc->turn_host = host;
                pc->turn_port = port;
                pc->turn_tcp = tcp;
            } else {
                free(pc->stun_host);
                pc->stun_host = host;
                pc->stun_port = port;
            }
        }
        if (pc->turn_host && (!cfg->turn_username || !cfg->turn_credential)) {
            el_seterr(err, errlen, EL_ERR_INVALID, "a TURN server needs a username and credential");
            goto fail;
        }
        pc->turn_user = dup_or_null(cfg->turn_username);
        pc->turn_pass = dup_or_null(cfg->turn_credential);
        pc->relay_only = cfg->relay_only;
        if (cfg->local_addresses) {
            size_t n = 0;
            while (cfg->local_addresses[n])
                n++;
            pc->local_addrs = calloc(n + 1, sizeof(char *));
            if (!pc->local_addrs)
                goto fail;
            for (size_t i = 0; i < n; i++)
                pc->local_addrs[i] = strdup(cfg->local_addresses[i]);
        }
    }
    char cerr[128];
    if (el_cert_new(&pc->cert, cerr, sizeof cerr) != 0) {
        el_seterr(err, errlen, EL_ERR_CRYPTO, "certificate: %s", cerr);
        goto fail;
    }
    el_cert_fingerprint(pc->cert, pc->fingerprint);
    if (prepare_endpoints(pc, err, errlen) != 0)
        goto fail;
    return pc;
fail:
    el_peer_free(pc);
    return NULL;
}

static char *write_description(el_peer *pc, const el_sdp *offer, el_sdp_setup setup, char *err,
                               size_t errlen)
{
    char ufrag[64], pwd[256];
    el_ice_local_credentials(pc->ice, ufrag, pwd);
    el_sdp_dc_params p;
    memset(&p, 0, sizeof p);
    p.sess_id = pc->sess_id;
    p.sess_version = ++pc->sess_version;
    p.ice_ufrag = ufrag;
    p.ice_pwd = pwd;
    p.ice_trickle = true;
    el_sdp_fingerprint_sha256(&p.fingerprint, pc->fingerprint);
    p.setup = setup;
    p.mid = offer ? NULL : pc->mid;
    p.max_message_size = pc->max_message_size;
    p.offer = offer;
    char *out = malloc(EL_SDP_MAX_SIZE);
    if (!out) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    int n = el_sdp_write_dc(&p, out, EL_SDP_MAX_SIZE, err, errlen);
    if (n < 0) {
        free(out);
        return NULL;
    }
    char *shrunk = realloc(out, (size_t)n + 1);
    return shrunk ? shrunk : out;
}

char *el_peer_create_offer(el_peer *pc, char *err, size_t errlen)
{
    if (pc->state == EL_PEER_CLOSED) {
        el_seterr(err, errlen, EL_ERR_INVALID, "the peer connection is closed");
        return NULL;
    }
    if (pc->offerer < 0)
        pc->offerer = 1;
    if (ensure_ice(pc, pc->offerer == 1, err, errlen) != 0)
        return NULL;
    pc->remote_offer = false; /* ours is the offer on the table now */
    return write_description(pc, NULL, EL_SDP_SETUP_ACTPASS, err, errlen);
}

char *el_peer_create_answer(el_peer *pc, char *err, size_t errlen)
{
    /* not `offerer`: that is who offered first (and stays ICE-controlling);
     * after it, either side may offer again (an ICE restart) */
    if (!pc->remote || !pc->remote_offer) {
        el_seterr(err, errlen, EL_ERR_INVALID, "no remote offer to answer");
        return NULL;
    }
    el_sdp_setup setup = pc->dtls_client ? EL_SDP_SETUP_ACTIVE : EL_SDP_SETUP_PASSIVE;
    return write_description(pc, pc->remote, setup, err, errlen);
}

static int apply_candidates(el_peer *pc, const el_sdp *sdp)
{
    const el_sdp_media *m = &sdp->media[sdp->dc];
    char line[EL_SDP_CANDIDATE_STR_MAX];
    for (uint16_t i = 0; i < m->cand_count; i++) {
        if (el_sdp_candidate_write(&sdp->candidates[m->cand_first + i], line, sizeof line) > 0)
            el_ice_add_remote_candidate(pc->ice, line);
    }
    if (m->end_of_candidates || sdp->end_of_candidates)
        el_ice_add_remote_candidate(pc->ice, NULL);
    return 0;
}

int el_peer_set_remote_description(el_peer *pc, const char *type, const char *text, char *err,
                                   size_t errlen)
{
    int is_offer;
    if (!type || !text)
        return el_seterr(err, errlen, EL_ERR_INVALID, "type and sdp are required");
    if (!strcmp(type, "offer"))
        is_offer = 1;
    else if (!strcmp(type, "answer"))
        is_offer = 0;
    else
        return el_seterr(err, errlen, EL_ERR_INVALID, "type must be \"offer\" or \"answer\", not \"%s\"", type);
    if (pc->state == EL_PEER_CLOSED)
        return el_seterr(err, errlen, EL_ERR_INVALID, "the peer connection is closed");
    if (!is_offer && pc->offerer != 1)
        return el_seterr(err, errlen, EL_ERR_INVALID, "an answer without our offer");
    if (is_offer && pc->offerer == 1 && !pc->sctp_started)
        return el_seterr(err, errlen, EL_ERR_INVALID, "glare: we have an offer outstanding");

    el_sdp *sdp = malloc(sizeof *sdp);
    if (!sdp)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    int rc = el_sdp_parse(text, strlen(text), sdp, err, errlen);
    if (rc != 0) {
        free(sdp);
        return rc;
    }
    const el_sdp_media *m = &sdp->media[sdp->dc];
    const el_sdp_fingerprint *fp = NULL;
    for (int i = 0; i < m->nfingerprints; i++)
        if (m->fingerprints[i].hash == EL_SDP_HASH_SHA256)
            fp = &m->fingerprints[i];
    if (!fp) {
        free(sdp);
        return el_seterr(err, errlen, EL_ERR_INVALID, "no sha-256 fingerprint");
    }
    if (pc->have_remote_fp && memcmp(pc->remote_fp, fp->digest, 32) != 0) {
        free(sdp);
        return el_seterr(err, errlen, EL_ERR_CRYPTO,
                         "the remote DTLS fingerprint changed on a live connection");
    }
    if (is_offer && pc->offerer < 0)
        pc->offerer = 0;
    if (is_offer)
        snprintf(pc->mid, sizeof pc->mid, "%s", m->mid);
    rc = ensure_ice(pc, pc->offerer == 1, err, errlen);
    if (rc != 0) {
        free(sdp);
        return rc;
    }
    int restart = pc->remote_ufrag[0] && strcmp(pc->remote_ufrag, m->ice_ufrag) != 0;
    if (restart && is_offer)
        el_ice_restart(pc->ice); /* the remote restarted ICE: so do we */
    rc = el_ice_set_remote_credentials(pc->ice, m->ice_ufrag, m->ice_pwd);
    if (rc != 0) {
        free(sdp);
        return el_seterr(err, errlen, rc, "cannot use the remote ICE credentials");
    }
    snprintf(pc->remote_ufrag, sizeof pc->remote_ufrag, "%s", m->ice_ufrag);
    if (m->has_max_message_size)
        pc->remote_max_message = m->max_message_size ? m->max_message_size : SIZE_MAX;
    memcpy(pc->remote_fp, fp->digest, 32);
    pc->have_remote_fp = 1;
    if (pc->dtls_client < 0) {
        if (is_offer) {
            /* remote actpass or passive: we are the client; remote active: server */
            pc->dtls_client = m->setup == EL_SDP_SETUP_ACTIVE ? 0 : 1;
        } else if (m->setup == EL_SDP_SETUP_ACTIVE) {
            pc->dtls_client = 0;
        } else if (m->setup == EL_SDP_SETUP_PASSIVE) {
            pc->dtls_client = 1;
        } else {
            free(sdp);
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "the answer must say a=setup:active or a=setup:passive");
        }
    }
    free(pc->remote);
    pc->remote = sdp;
    pc->remote_offer = is_offer;
    apply_candidates(pc, sdp);
    rc = ensure_dtls(pc, err, errlen);
    if (rc == 0) {
        char serr[160];
        if (prepare_sctp(pc, serr, sizeof serr) != 0)
            EL_DEBUG("SCTP not prepared yet (retried when DTLS is up): %s", serr);
    }
    return rc;
}

int el_peer_add_remote_candidate(el_peer *pc, const char *candidate, char *err, size_t errlen)
{
    if (!pc->ice)
        return el_seterr(err, errlen, EL_ERR_INVALID, "set the remote description first");
    if (candidate && *candidate) {
        el_sdp_candidate c;
        int rc = el_sdp_candidate_parse(candidate, strlen(candidate), &c, err, errlen);
        if (rc != 0)
            return rc;
    }
    return el_ice_add_remote_candidate(pc->ice, candidate && *candidate ? candidate : NULL);
}

int el_peer_restart_ice(el_peer *pc, char *err, size_t errlen)
{
    if (!pc->ice)
        return el_seterr(err, errlen, EL_ERR_INVALID, "no ICE session to restart yet");
    pc->offerer = 1; /* the restart goes out in our next offer */
    return el_ice_restart(pc->ice);
}

el_peer_state el_peer_get_state(const el_peer *pc)
{
    return pc->state;
}

int el_peer_get_fingerprints(const el_peer *pc, uint8_t local[32], uint8_t remote[32])
{
    if (!pc->have_remote_fp)
        return EL_ERR_STATE;
    memcpy(local, pc->fingerprint, 32);
    memcpy(remote, pc->remote_fp, 32);
    return 0;
}

el_channel *el_peer_create_channel(el_peer *pc, const char *label, const el_channel_init *init,
                                   char *err, size_t errlen)
{
    if (!label || strlen(label) > 65535) {
        el_seterr(err, errlen, EL_ERR_INVALID, "a channel needs a label of at most 65535 bytes");
        return NULL;
    }
    if (pc->state == EL_PEER_CLOSED || pc->state == EL_PEER_FAILED) {
        el_seterr(err, errlen, EL_ERR_INVALID, "the peer connection is %s", el_peer_state_name(pc->state));
        return NULL;
    }
    el_channel *ch = channel_new(pc, label, init ? init->protocol : NULL, init);
    if (!ch) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (pc->sctp_up)
        open_channel_on_sctp(pc, ch);
    return ch;
}

void el_peer_close(el_peer *pc)
{
    if (!pc || pc->state == EL_PEER_CLOSED)
        return;
    if (pc->dtls)
        el_dtls_close(pc->dtls);
    set_state(pc, EL_PEER_CLOSED, "closed locally");
    while (pc->channels)
        retire(pc, pc->channels);
}

static void destroy_source(GSource **s)
{
    if (*s) {
        g_source_destroy(*s);
        g_source_unref(*s);
        *s = NULL;
    }
}

static void free_channels(el_channel *ch)
{
    while (ch) {
        el_channel *next = ch->next;
        free(ch->label);
        free(ch->protocol);
        free(ch);
        ch = next;
    }
}

static void free_now(el_peer *pc);

static gboolean reap(gpointer data)
{
    el_peer *pc = data;
    g_source_unref(pc->reaper); /* GLib holds its own while dispatching */
    pc->reaper = NULL;
    free_now(pc);
    return G_SOURCE_REMOVE;
}

void el_peer_free(el_peer *pc)
{
    if (!pc || pc->dying)
        return;
    if (pc->depth > 0) {
        /* from one of its own callbacks: the code that called it (usrsctp's
         * input, libnice's receive loop) still holds the peer */
        pc->dying = true;
        pc->reaper = g_idle_source_new();
        g_source_set_priority(pc->reaper, G_PRIORITY_HIGH);
        g_source_set_callback(pc->reaper, reap, pc, NULL);
        g_source_attach(pc->reaper, pc->ctx);
        return;
    }
    free_now(pc);
}

static void free_now(el_peer *pc)
{
    if (pc->counted && --live_peers == 0)
        live_ctx = NULL;
    destroy_source(&pc->dtls_timer);
    el_sctp_free(pc->sctp);
    if (pc->ticking)
        ticker_unref();
    el_dtls_free(pc->dtls);
    el_dtls_ctx_free(pc->dtls_ctx);
    el_ice_free(pc->ice);
    el_cert_free(pc->cert);
    for (int i = 0; i < pc->nearly; i++)
        free(pc->early[i].data);
    free_channels(pc->channels);
    free_channels(pc->retired);
    if (pc->local_addrs) {
        for (size_t i = 0; pc->local_addrs[i]; i++)
            free(pc->local_addrs[i]);
        free(pc->local_addrs);
    }
    free(pc->remote);
    free(pc->stun_host);
    free(pc->turn_host);
    free(pc->turn_user);
    free(pc->turn_pass);
    if (pc->ctx)
        g_main_context_unref(pc->ctx);
    free(pc);
}

/* ---- channels ---- */

void el_channel_set_callbacks(el_channel *ch, const el_channel_callbacks *cb, void *user)
{
    if (cb)
        ch->cb = *cb;
    else
        memset(&ch->cb, 0, sizeof ch->cb);
    ch->user = user;
}

static int channel_send(el_channel *ch, int binary, const uint8_t *data, size_t len)
{
    if (ch->state != EL_CHANNEL_OPEN || ch->sid < 0 || !ch->pc->sctp)
        return EL_ERR_INVALID;
    ticker_poke();
    return el_sctp_send(ch->pc->sctp, (uint16_t)ch->sid, binary, data, len);
}

int el_channel_send_text(el_channel *ch, const char *text, size_t len)
{
    return channel_send(ch, 0, (const uint8_t *)text, len);
}

int el_channel_send_binary(el_channel *ch, const uint8_t *data, size_t len)
{
    return channel_send(ch, 1, data, len);
}

int el_channel_send_check(const el_channel *ch, size_t len)
{
    if (ch->state != EL_CHANNEL_OPEN || ch->sid < 0 || !ch->pc->sctp)
        return EL_ERR_INVALID;
    int rc = el_sctp_send_check(ch->pc->sctp, (uint16_t)ch->sid, len);
    return rc == EL_ERR_NOT_FOUND ? EL_ERR_INVALID : rc;
}

/* True while ch owns its stream: once closed, its id may already be a new
 * channel's, which must not be read or changed through the old handle. */
static bool owns_stream(const el_channel *ch)
{
    return ch->sid >= 0 && ch->state != EL_CHANNEL_CLOSED && ch->pc->sctp;
}

size_t el_channel_buffered_amount(const el_channel *ch)
{
    if (!owns_stream(ch))
        return 0;
    return el_sctp_buffered(ch->pc->sctp, (uint16_t)ch->sid);
}

void el_channel_set_buffered_low_threshold(el_channel *ch, size_t threshold)
{
    ch->low_threshold = threshold;
    if (owns_stream(ch))
        el_sctp_set_buffered_low(ch->pc->sctp, (uint16_t)ch->sid, threshold);
}

const char *el_channel_label(const el_channel *ch)
{
    return ch->label;
}

const char *el_channel_protocol(const el_channel *ch)
{
    return ch->protocol;
}

int el_channel_id(const el_channel *ch)
{
    return ch->sid;
}

el_channel_state el_channel_get_state(const el_channel *ch)
{
    return ch->state;
}

int el_channel_close(el_channel *ch)
{
    if (ch->state == EL_CHANNEL_CLOSED || ch->state == EL_CHANNEL_CLOSING)
        return 0;
    if (ch->sid < 0 || !ch->pc->sctp) {
        retire(ch->pc, ch);
        return 0;
    }
    ch->state = EL_CHANNEL_CLOSING;
    ticker_poke();
    return el_sctp_close_channel(ch->pc->sctp, (uint16_t)ch->sid);
}
