/* ice.c - see ice.h. libnice glue: one NiceAgent, one stream, one
 * component; every libnice signal is turned into a queued event delivered
 * from an idle source on the caller's context, so that user callbacks never
 * run inside an el_ice_* call. Allocation goes through GLib (g_new0 etc.),
 * which aborts on OOM like libnice itself. */
#include "rtc/ice.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <nice/agent.h>

#include "base/err.h"
#include "base/log.h"
#include "rtc/fault.h"
#include "rtc/sdp.h"
#include "rtc/udptx.h"

#define COMPONENT 1            /* RTP/data: the only component (rtcp-mux, BUNDLE) */
#define STUN_RTO_MS 500        /* first STUN timeout (RFC 8489 RTO) */
#define STUN_RETRANSMISSIONS 3 /* transmissions per transaction (libnice: 500+1000+500 ms) */
#define OLD_UFRAGS 4           /* remote generations remembered to drop stale candidates */
/* Check pacing Ta. libnice sends no check until its Ta timer first fires
 * (default 20 ms), and each triggered check waits for the next tick too, so
 * on a fast path Ta, not the round trip, sets the time to a selected pair.
 * 5 ms is the lowest RFC 8445 (section 14.2) allows. */
#define ICE_TA_MS 5
/* libnice keeps its Ta timer ticking for "idle-timeout" (5 s) after the
 * last check is done, 200 wakeups a second on the thread that carries the
 * data. Once a pair is nominated (READY) the timeout only delays stopping
 * that timer (a component with a nominated pair is never failed by it), so
 * it is cut to libnice's minimum then, and put back for an ICE restart,
 * whose checks may all fail and whose late trickled candidates the 5 s
 * still wait for. */
#define IDLE_TIMEOUT_MS 5000
#define IDLE_TIMEOUT_READY_MS 50

#define ICE_LOG(lvl, ice, fmt, ...) EL_LOG(lvl, "ice[%08x] " fmt, (ice)->id, ##__VA_ARGS__)

typedef enum { EV_CANDIDATE, EV_END_OF_CANDIDATES, EV_STATE } ev_kind;

typedef struct {
    ev_kind kind;
    el_ice_state state; /* EV_STATE */
    char cand[];        /* EV_CANDIDATE */
} ev;

typedef struct {
    NiceCandidate *cand;
    char ufrag[EL_SDP_UFRAG_MAX + 1]; /* "" = no ufrag extension */
} pending_cand;

struct el_ice {
    GMainContext *ctx;
    NiceAgent *agent;
    guint stream;
    el_ice_callbacks cb;
    void *user;
    uint32_t id;                      /* log prefix */
    el_ice_state state;
    bool gather_started, gather_done, has_turn;

    char local_ufrag[64], local_pwd[256];

    bool have_remote;                 /* remote credentials set */
    char remote_ufrag[EL_SDP_UFRAG_MAX + 1];
    char old_ufrags[OLD_UFRAGS][EL_SDP_UFRAG_MAX + 1];
    unsigned nold;                    /* ring: next slot = nold % OLD_UFRAGS */
    GQueue pending;                   /* of pending_cand*, held remote candidates */
    bool pending_eoc;                 /* end-of-candidates held with them */
    bool remote_eoc;                  /* the remote's end-of-candidates applied */

    GQueue events;                    /* of ev*, waiting for delivery */
    GSource *idle;                    /* delivers events; NULL when none queued */
    GQueue rx;                        /* of rx_pkt*, datagrams not processed yet */
    size_t rx_bytes;
    unsigned rx_budget;               /* datagrams still processed inline */
    GSource *rx_idle;                 /* drains rx; NULL when not scheduled */
    el_fault *fault_tx, *fault_rx;    /* ECHOLINK_NETFAULT stages; NULL normally */
    el_udptx *tx;                     /* batched sends on a plain UDP selected pair */
    uint64_t answered_turn;           /* loop turn whose first datagram was answered */
    gint64 silence_us;                /* cfg.silence_ms; 0: libnice's consent decides */
    gint64 last_rx_us;                /* last datagram delivered (0: none yet) */
    gint64 last_tick_us;              /* the watchdog's previous run */
    GSource *watchdog;                /* silence checks; NULL when silence_us == 0 */
    uint8_t *rxcopy;                  /* the datagram on_data reads (on_recv) */
    size_t rxcopy_cap;
    int depth;                        /* user callbacks in progress */
    bool dead;                        /* el_ice_free called; free at depth 0 */
};

const char *el_ice_state_name(el_ice_state st)
{
    static const char *const names[] = {"new",          "checking", "connected", "completed",
                                        "disconnected", "failed",   "closed"};
    return (unsigned)st < G_N_ELEMENTS(names) ? names[st] : "?";
}

/* ---- event queue ---------------------------------------------------------- */

static gboolean idle_cb(gpointer data);

static void schedule(el_ice *ice)
{
    if (ice->idle || ice->dead)
        return;
    ice->idle = g_idle_source_new();
    g_source_set_priority(ice->idle, G_PRIORITY_DEFAULT);
    g_source_set_callback(ice->idle, idle_cb, ice, NULL);
    g_source_set_name(ice->idle, "el_ice events");
    g_source_attach(ice->idle, ice->ctx);
}

static void push_event(el_ice *ice, ev_kind kind, el_ice_state st, const char *cand)
{
    size_t n = cand ? strlen(cand) + 1 : 1;
    ev *e = g_malloc(sizeof *e + n);
    e->kind = kind;
    e->state = st;
    memcpy(e->cand, cand ? cand : "", n);
    g_queue_push_tail(&ice->events, e);
    schedule(ice);
}

/* Delivers queued events; stops early when a callback frees the agent.
 * Call between enter() and leave(). */
static void deliver(el_ice *ice)
{
    ev *e;
    while (!ice->dead && (e = g_queue_pop_head(&ice->events)) != NULL) {
        switch (e->kind) {
        case EV_CANDIDATE:
            if (ice->cb.on_candidate)
                ice->cb.on_candidate(ice->user, e->cand);
            break;
        case EV_END_OF_CANDIDATES:
            if (ice->cb.on_candidate)
                ice->cb.on_candidate(ice->user, NULL);
            break;
        case EV_STATE:
            if (ice->cb.on_state)
                ice->cb.on_state(ice->user, e->state);
            break;
        }
        g_free(e);
    }
}

static void enter(el_ice *ice)
{
    ice->depth++;
}

static void schedule_rx(el_ice *ice);

/* The last step of freeing, after teardown(). */
static void free_struct(el_ice *ice)
{
    g_free(ice->rxcopy);
    g_free(ice);
}

/* Frees the agent if a callback called el_ice_free(): do not touch ice
 * after leave(). */
static void leave(el_ice *ice)
{
    if (--ice->depth > 0)
        return;
    if (ice->dead)
        free_struct(ice);
    else if (!g_queue_is_empty(&ice->rx))
        schedule_rx(ice); /* datagrams a nested loop queued (recv_datagram) */
}

static gboolean idle_cb(gpointer data)
{
    el_ice *ice = data;
    g_source_unref(ice->idle); /* GLib keeps its own reference while dispatching */
    ice->idle = NULL;
    enter(ice);
    deliver(ice);
    leave(ice);
    return G_SOURCE_REMOVE;
}

/* Drops queued local candidates and end-of-candidates (before a restart
 * re-announces them with the new ufrag); state events stay. */
static void purge_candidate_events(el_ice *ice)
{
    GQueue keep = G_QUEUE_INIT;
    ev *e;
    while ((e = g_queue_pop_head(&ice->events)) != NULL) {
        if (e->kind == EV_STATE)
            g_queue_push_tail(&keep, e);
        else
            g_free(e);
    }
    ice->events = keep;
}

/* ---- state ---------------------------------------------------------------- */

static void set_state(el_ice *ice, el_ice_state st)
{
    if (st == ice->state)
        return;
    ICE_LOG(EL_LOG_INFO, ice, "state %s -> %s", el_ice_state_name(ice->state),
            el_ice_state_name(st));
    ice->state = st;
    push_event(ice, EV_STATE, st, NULL);
}

static el_ice_state map_state(const el_ice *ice, guint nstate)
{
    /* DISCONNECTED is the silence watchdog's: the old pair stays selected */
    bool working = ice->state == EL_ICE_CONNECTED || ice->state == EL_ICE_COMPLETED ||
                   ice->state == EL_ICE_DISCONNECTED;
    switch (nstate) {
    case NICE_COMPONENT_STATE_DISCONNECTED:
    case NICE_COMPONENT_STATE_GATHERING:
        return working ? ice->state : EL_ICE_NEW; /* restart keeps the old pair */
    case NICE_COMPONENT_STATE_CONNECTING:
        return working ? ice->state : EL_ICE_CHECKING;
    case NICE_COMPONENT_STATE_CONNECTED:
        return EL_ICE_CONNECTED;
    case NICE_COMPONENT_STATE_READY:
        return EL_ICE_COMPLETED;
    case NICE_COMPONENT_STATE_FAILED:
        return EL_ICE_FAILED;
    default:
        return ice->state;
    }
}

/* ---- local candidates ------------------------------------------------------ */

static void addr_text(const NiceAddress *a, char *out, el_sdp_addr_kind *kind)
{
    nice_address_to_string(a, out);
    *kind = nice_address_ip_version(a) == 6 ? EL_SDP_ADDR_IP6 : EL_SDP_ADDR_IP4;
}

/* Writes a local candidate as Chromium does; returns false for candidates
 * that are not signaled (peer-reflexive, other components, TCP). */
static bool format_local(const el_ice *ice, const NiceCandidate *nc, char *out, size_t outlen)
{
    if (nc->stream_id != ice->stream || nc->component_id != COMPONENT ||
        nc->transport != NICE_CANDIDATE_TRANSPORT_UDP)
        return false;
    el_sdp_candidate c;
    memset(&c, 0, sizeof c);
    switch (nc->type) {
    case NICE_CANDIDATE_TYPE_HOST:
        c.type = EL_SDP_CAND_HOST;
        break;
    case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE:
        c.type = EL_SDP_CAND_SRFLX;
        break;
    case NICE_CANDIDATE_TYPE_RELAYED:
        c.type = EL_SDP_CAND_RELAY;
        break;
    default: /* peer-reflexive: learned from checks, never signaled (RFC 8445 §7.2.5.3.1) */
        return false;
    }
    g_strlcpy(c.foundation, nc->foundation, sizeof c.foundation);
    c.component = COMPONENT;
    c.transport = EL_SDP_TRANSPORT_UDP;
    c.priority = nc->priority;
    char a[NICE_ADDRESS_STRING_LEN];
    addr_text(&nc->addr, a, &c.addr_kind);
    g_strlcpy(c.address, a, sizeof c.address);
    c.port = (uint16_t)nice_address_get_port(&nc->addr);
    if (c.type != EL_SDP_CAND_HOST && nice_address_is_valid(&nc->base_addr) &&
        !nice_address_equal(&nc->addr, &nc->base_addr)) {
        addr_text(&nc->base_addr, a, &c.raddr_kind);
        g_strlcpy(c.raddr, a, sizeof c.raddr);
        c.has_raddr = c.has_rport = true;
        c.rport = (uint16_t)nice_address_get_port(&nc->base_addr);
    }
    g_strlcpy(c.ufrag, ice->local_ufrag, sizeof c.ufrag);
    int n = el_sdp_candidate_write(&c, out, outlen);
    if (n < 0) {
        ICE_LOG(EL_LOG_WARN, ice, "cannot write local candidate %s:%u (%s)", c.address,
                (unsigned)c.port, el_strerror(n));
        return false;
    }
    return true;
}

static void on_new_candidate(NiceAgent *agent, NiceCandidate *nc, gpointer data)
{
    el_ice *ice = data;
    char s[EL_SDP_CANDIDATE_STR_MAX];
    if (!format_local(ice, nc, s, sizeof s))
        return;
    ICE_LOG(EL_LOG_DEBUG, ice, "local %s", s);
    push_event(ice, EV_CANDIDATE, 0, s);
}

/* With no local candidate at all (a relay-only agent whose TURN allocation
 * was refused, say) libnice has no check list and never fails: once both
 * sides have said end-of-candidates, that is a failure to report. */
static void check_nothing_to_try(el_ice *ice)
{
    if (!ice->gather_done || !ice->remote_eoc || ice->state == EL_ICE_FAILED ||
        ice->state == EL_ICE_CONNECTED || ice->state == EL_ICE_COMPLETED)
        return;
    GSList *l = nice_agent_get_local_candidates(ice->agent, ice->stream, COMPONENT);
    guint n = g_slist_length(l);
    g_slist_free_full(l, (GDestroyNotify)nice_candidate_free);
    if (n > 0)
        return;
    ICE_LOG(EL_LOG_WARN, ice, "no local candidate to try (a refused TURN credential?): failed");
    set_state(ice, EL_ICE_FAILED);
}

static void on_gathering_done(NiceAgent *agent, guint stream, gpointer data)
{
    el_ice *ice = data;
    if (stream != ice->stream)
        return;
    ice->gather_done = true;
    ICE_LOG(EL_LOG_DEBUG, ice, "gathering done");
    push_event(ice, EV_END_OF_CANDIDATES, 0, NULL);
    check_nothing_to_try(ice);
}

static void on_component_state(NiceAgent *agent, guint stream, guint component, guint nstate,
                               gpointer data)
{
    el_ice *ice = data;
    if (stream != ice->stream || component != COMPONENT)
        return;
    ICE_LOG(EL_LOG_DEBUG, ice, "libnice state %s", nice_component_state_to_string(nstate));
    if (nstate == NICE_COMPONENT_STATE_READY)
        g_object_set(agent, "idle-timeout", (guint)IDLE_TIMEOUT_READY_MS, NULL);
    /* libnice fails the component when the remote's consent is gone (timed
     * out, or revoked with a 403) and from then on refuses to send on the
     * pair (RFC 7675). Our batched sends write to its socket directly, so
     * they stop here too; a new selected pair sets the path again. */
    if (nstate == NICE_COMPONENT_STATE_FAILED && el_udptx_has_path(ice->tx)) {
        ICE_LOG(EL_LOG_DEBUG, ice, "failed: batched sends stop");
        el_udptx_set_path(ice->tx, NULL, NULL);
    }
    set_state(ice, map_state(ice, nstate));
}

static void on_selected_pair(NiceAgent *agent, guint stream, guint component,
                             NiceCandidate *lc, NiceCandidate *rc, gpointer data)
{
    el_ice *ice = data;
    if (stream != ice->stream || component != COMPONENT)
        return;
    /* A burst of DTLS records (a file, 1000 chat messages) overflows the
     * kernel's default 208 KiB receive buffer and costs retransmission
     * stalls: give the selected socket room (capped by net.core.rmem_max
     * unless we may force it). */
    GSocket *sock = nice_agent_get_selected_socket(agent, stream, component);
    if (sock) {
        int fd = g_socket_get_fd(sock);
        int size = EL_ICE_RCVBUF;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        /* and room for a batch of sends (udptx.h) on a queuing device */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
    /* Data on a plain UDP pair goes out in batches (udptx.h); a relayed or
     * TCP pair (sock NULL) keeps nice_agent_send(). */
    struct sockaddr_storage to;
    nice_address_copy_to_sockaddr(&rc->addr, (struct sockaddr *)&to);
    if (!el_udptx_set_path(ice->tx, sock, (struct sockaddr *)&to))
        ICE_LOG(EL_LOG_WARN, ice, "selected pair of an unknown address family: unbatched");
    if (sock)
        g_object_unref(sock);
    if (el_log_threshold < EL_LOG_INFO)
        return;
    char la[NICE_ADDRESS_STRING_LEN], ra[NICE_ADDRESS_STRING_LEN];
    nice_address_to_string(&lc->addr, la);
    nice_address_to_string(&rc->addr, ra);
    ICE_LOG(EL_LOG_INFO, ice, "selected pair %s:%u <-> %s:%u", la,
            nice_address_get_port(&lc->addr), ra, nice_address_get_port(&rc->addr));
}

/* Receive fairness. libnice reads its socket in a loop until it is empty,
 * calling on_recv for each datagram within one dispatch. Processing a
 * datagram (DTLS, SCTP) makes us send, which makes the peer answer, so
 * under bulk transfer that loop could run for seconds and starve every
 * other source of the context (a chat message, a control request waited
 * 2-3 s). So at most RX_BURST datagrams are processed inline; the rest wait
 * in ice->rx and are processed RX_BURST at a time from an idle source, in
 * arrival order, between the other sources' dispatches. Beyond RX_MAX_BYTES
 * waiting, datagrams are dropped, as a full socket buffer would (SCTP
 * retransmits). */
#define RX_BURST 64
#define RX_MAX_BYTES (4u << 20)

typedef struct {
    size_t len;
    uint8_t data[];
} rx_pkt;

static void process(el_ice *ice, const uint8_t *buf, size_t len)
{
    enter(ice);
    deliver(ice); /* on_state(CONNECTED) before the first datagram */
    if (!ice->dead && ice->cb.on_data)
        ice->cb.on_data(ice->user, buf, len);
    if (!ice->dead && ice->answered_turn != el_udptx_turn(ice->tx)) {
        /* the first datagram of this turn: its answer leaves now, the
         * rest of a burst's go together (udptx.h "Flush") */
        ice->answered_turn = el_udptx_turn(ice->tx);
        el_udptx_flush(ice->tx);
    }
    leave(ice);
}

static gboolean rx_idle_cb(gpointer data)
{
    el_ice *ice = data;
    rx_pkt *p;
    if (ice->depth > 0) {
        /* a nested main loop inside one of our callbacks: datagrams wait
         * until it returns (leave() schedules us again) */
        g_source_unref(ice->rx_idle);
        ice->rx_idle = NULL;
        return G_SOURCE_REMOVE;
    }
    enter(ice);
    for (unsigned n = 0; n < RX_BURST && !ice->dead && (p = g_queue_pop_head(&ice->rx)); n++) {
        ice->rx_bytes -= p->len;
        process(ice, p->data, p->len);
        g_free(p);
    }
    gboolean more = !ice->dead && !g_queue_is_empty(&ice->rx);
    if (!more && !ice->dead) {
        ice->rx_budget = RX_BURST; /* the burst is over: inline again */
        g_source_unref(ice->rx_idle);
        ice->rx_idle = NULL;
    }
    leave(ice);
    return more ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void schedule_rx(el_ice *ice)
{
    if (ice->rx_idle)
        return;
    ice->rx_idle = g_idle_source_new();
    g_source_set_priority(ice->rx_idle, G_PRIORITY_DEFAULT);
    g_source_set_callback(ice->rx_idle, rx_idle_cb, ice, NULL);
    g_source_set_name(ice->rx_idle, "el_ice receive");
    g_source_attach(ice->rx_idle, ice->ctx);
}

static void heard(el_ice *ice);

/* One datagram from the network (through the receive fault stage, if any). */
static void recv_datagram(el_ice *ice, const uint8_t *buf, size_t len)
{
    if (ice->dead)
        return;
    heard(ice);
    if (g_queue_is_empty(&ice->rx) && ice->rx_budget > 0 && ice->depth == 0) {
        if (--ice->rx_budget == 0)
            schedule_rx(ice); /* resets the budget once this burst is over */
        process(ice, buf, len);
        return;
    }
    if (ice->rx_bytes + len > RX_MAX_BYTES)
        return;
    rx_pkt *p = g_malloc(sizeof *p + len);
    p->len = len;
    memcpy(p->data, buf, len);
    g_queue_push_tail(&ice->rx, p);
    ice->rx_bytes += len;
    schedule_rx(ice);
}

static void fault_rx_out(void *user, const uint8_t *data, size_t len)
{
    recv_datagram(user, data, len);
}

/* GLib 2.74 "blocks" a source while it is dispatched unless it may
 * recurse: it takes the source's descriptors out of the poll set and puts
 * them back, and each change writes the context's wakeup eventfd, so the
 * next poll returns at once for nothing. For libnice's socket source that
 * was two write()s, an empty loop turn and a read() for every datagram
 * that arrived alone (each message of a chat, each ping). Recursion is safe
 * here because a datagram that arrives during a nested loop inside our
 * callbacks is queued, not processed inside the outer one (recv_datagram),
 * and the outer one reads its own copy (on_recv). */
static void allow_recursion(GSource *src)
{
    if (src && !g_source_get_can_recurse(src))
        g_source_set_can_recurse(src, TRUE);
}

static void on_recv(NiceAgent *agent, guint stream, guint component, guint len, gchar *buf,
                    gpointer data)
{
    el_ice *ice = data;
    (void)agent;
    (void)stream;
    (void)component;
    if (ice->dead || len == 0)
        return;
    allow_recursion(g_main_current_source());
    if (ice->fault_rx) {
        el_fault_push(ice->fault_rx, (const uint8_t *)buf, len); /* copies */
    } else if (ice->depth > 0) {
        recv_datagram(ice, (const uint8_t *)buf, len); /* a nested loop: queued, copied */
    } else {
        /* libnice reads every datagram into one buffer of the component,
         * and a main loop nested in on_data (possible now that the source
         * may recurse) would read the next ones into it under on_data's
         * feet: on_data gets a copy that only this path writes */
        if (len > ice->rxcopy_cap) {
            g_free(ice->rxcopy);
            ice->rxcopy = g_malloc(len);
            ice->rxcopy_cap = len;
        }
        memcpy(ice->rxcopy, buf, len);
        recv_datagram(ice, ice->rxcopy, len);
    }
}

/* ---- silence watchdog ------------------------------------------------------ */

/* Why not libnice's consent freshness: 0.1.21 sends one RFC 7675 check every
 * 4-6 s, never retransmitted, and declares the component FAILED 10 s after
 * the last answer. Two checks lost in a row (4 % of windows at 10 % loss
 * each way, 8 % at 15 %) failed a healthy path in the middle of a transfer.
 * With cfg.silence_ms the caller keeps traffic of its own flowing (el_peer:
 * SCTP heartbeats), so every datagram proves the path: silence_ms without
 * one is DISCONNECTED, and the next one brings the state back. libnice's
 * keepalive checks go on, with its 50 s timeout as the last word (FAILED). */
#define WATCHDOG_MS 500

/* The state a heard-again agent returns to. */
static el_ice_state working_state(const el_ice *ice)
{
    guint st = nice_agent_get_component_state(ice->agent, ice->stream, COMPONENT);
    return st == NICE_COMPONENT_STATE_READY ? EL_ICE_COMPLETED : EL_ICE_CONNECTED;
}

static void heard(el_ice *ice)
{
    ice->last_rx_us = g_get_monotonic_time();
    if (ice->state == EL_ICE_DISCONNECTED && ice->agent) {
        ICE_LOG(EL_LOG_INFO, ice, "the peer is heard again");
        set_state(ice, working_state(ice));
    }
}

static gboolean watchdog_cb(gpointer data)
{
    el_ice *ice = data;
    gint64 now = g_get_monotonic_time();
    /* A late tick means this thread stalled, not the path: what the peer
     * sent meanwhile waits in the socket. Count again from now. */
    if (ice->last_rx_us && now - ice->last_tick_us > 4 * WATCHDOG_MS * G_GINT64_CONSTANT(1000))
        ice->last_rx_us = now;
    ice->last_tick_us = now;
    bool working = ice->state == EL_ICE_CONNECTED || ice->state == EL_ICE_COMPLETED;
    if (working && ice->last_rx_us && now - ice->last_rx_us > ice->silence_us) {
        ICE_LOG(EL_LOG_WARN, ice, "nothing heard from the peer for %lld ms: disconnected",
                (long long)((now - ice->last_rx_us) / 1000));
        set_state(ice, EL_ICE_DISCONNECTED);
    }
    return G_SOURCE_CONTINUE;
}

static void start_watchdog(el_ice *ice, unsigned silence_ms)
{
    ice->silence_us = (gint64)silence_ms * 1000;
    ice->last_tick_us = g_get_monotonic_time();
    ice->watchdog = g_timeout_source_new(WATCHDOG_MS);
    g_source_set_callback(ice->watchdog, watchdog_cb, ice, NULL);
    g_source_set_name(ice->watchdog, "el_ice silence");
    g_source_attach(ice->watchdog, ice->ctx);
}

/* ---- remote candidates ---------------------------------------------------- */

static bool is_ice_char(char ch)
{
    return g_ascii_isalnum(ch) || ch == '+' || ch == '/';
}

static bool ice_chars_ok(const char *s, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_ice_char(s[i]))
            return false;
    return true;
}

static bool is_old_ufrag(const el_ice *ice, const char *ufrag)
{
    unsigned n = ice->nold < OLD_UFRAGS ? ice->nold : OLD_UFRAGS;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(ice->old_ufrags[i], ufrag) == 0)
            return true;
    return false;
}

static void apply_candidate(el_ice *ice, NiceCandidate *nc)
{
    GSList one = {nc, NULL};
    int n = nice_agent_set_remote_candidates(ice->agent, ice->stream, COMPONENT, &one);
    if (n < 1)
        ICE_LOG(EL_LOG_DEBUG, ice, "libnice did not add a remote candidate (%d)", n);
}

static void apply_eoc(el_ice *ice)
{
    ICE_LOG(EL_LOG_DEBUG, ice, "remote end-of-candidates");
    nice_agent_peer_candidate_gathering_done(ice->agent, ice->stream);
    ice->remote_eoc = true;
    check_nothing_to_try(ice);
}

static void pending_free(pending_cand *p)
{
    nice_candidate_free(p->cand);
    g_free(p);
}

static void clear_pending(el_ice *ice)
{
    pending_cand *p;
    while ((p = g_queue_pop_head(&ice->pending)) != NULL)
        pending_free(p);
    ice->pending_eoc = false;
}

/* Builds libnice's candidate from a parsed one; NULL (with a note) when it
 * is ignored. */
static NiceCandidate *to_nice(el_ice *ice, const el_sdp_candidate *c)
{
    if (c->component != COMPONENT) {
        ICE_LOG(EL_LOG_DEBUG, ice, "ignoring remote candidate of component %u",
                (unsigned)c->component);
        return NULL;
    }
    if (c->transport != EL_SDP_TRANSPORT_UDP) {
        ICE_LOG(EL_LOG_DEBUG, ice, "ignoring remote TCP candidate %s:%u (ICE-TCP is off)",
                c->address, (unsigned)c->port);
        return NULL;
    }
    if (c->addr_kind == EL_SDP_ADDR_MDNS || c->addr_kind == EL_SDP_ADDR_FQDN) {
        ICE_LOG(EL_LOG_INFO, ice,
                "ignoring remote candidate with host name %s (libnice cannot resolve %s "
                "names; the peer stays reachable through peer-reflexive candidates)",
                c->address, c->addr_kind == EL_SDP_ADDR_MDNS ? "mDNS" : "DNS");
        return NULL;
    }
    if (c->port == 0) {
        ICE_LOG(EL_LOG_DEBUG, ice, "ignoring remote candidate with port 0");
        return NULL;
    }
    NiceCandidateType t;
    switch (c->type) {
    case EL_SDP_CAND_HOST:
        t = NICE_CANDIDATE_TYPE_HOST;
        break;
    case EL_SDP_CAND_SRFLX:
        t = NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE;
        break;
    case EL_SDP_CAND_PRFLX:
        t = NICE_CANDIDATE_TYPE_PEER_REFLEXIVE;
        break;
    default:
        t = NICE_CANDIDATE_TYPE_RELAYED;
        break;
    }
    NiceCandidate *nc = nice_candidate_new(t);
    nc->stream_id = ice->stream;
    nc->component_id = COMPONENT;
    nc->transport = NICE_CANDIDATE_TRANSPORT_UDP;
    nc->priority = c->priority;
    g_strlcpy(nc->foundation, c->foundation, sizeof nc->foundation);
    if (!nice_address_set_from_string(&nc->addr, c->address)) {
        ICE_LOG(EL_LOG_DEBUG, ice, "ignoring remote candidate address %s", c->address);
        nice_candidate_free(nc);
        return NULL;
    }
    nice_address_set_port(&nc->addr, c->port);
    if (c->has_raddr && (c->raddr_kind == EL_SDP_ADDR_IP4 || c->raddr_kind == EL_SDP_ADDR_IP6) &&
        nice_address_set_from_string(&nc->base_addr, c->raddr))
        nice_address_set_port(&nc->base_addr, c->rport);
    return nc;
}

int el_ice_add_remote_candidate(el_ice *ice, const char *candidate)
{
    if (!ice)
        return EL_ERR_INVALID;
    const char *s = candidate ? candidate : "";
    if (strncmp(s, "a=", 2) == 0)
        s += 2;
    size_t len = strlen(s);
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    if (len == 0 || (len == 17 && strncmp(s, "end-of-candidates", 17) == 0)) {
        /* End-of-candidates of the newest generation: held while that
         * generation's credentials (or candidates) are still awaited. */
        if (!ice->have_remote || !g_queue_is_empty(&ice->pending))
            ice->pending_eoc = true;
        else
            apply_eoc(ice);
        return EL_OK;
    }

    el_sdp_candidate c;
    char err[160];
    int rc = el_sdp_candidate_parse(s, len, &c, err, sizeof err);
    if (rc != EL_OK) {
        ICE_LOG(EL_LOG_INFO, ice, "bad remote candidate: %s", err);
        return EL_ERR_INVALID;
    }
    if (c.ufrag[0] && is_old_ufrag(ice, c.ufrag)) {
        ICE_LOG(EL_LOG_DEBUG, ice, "dropping remote candidate of an old generation (%s)",
                c.ufrag);
        return EL_OK;
    }
    NiceCandidate *nc = to_nice(ice, &c);
    if (!nc)
        return EL_OK;
    bool hold = !ice->have_remote || (c.ufrag[0] && strcmp(c.ufrag, ice->remote_ufrag) != 0);
    if (!hold) {
        ICE_LOG(EL_LOG_DEBUG, ice, "remote %.*s", (int)len, s);
        apply_candidate(ice, nc);
        nice_candidate_free(nc);
        return EL_OK;
    }
    if (g_queue_get_length(&ice->pending) >= EL_ICE_MAX_PENDING) {
        nice_candidate_free(nc);
        ICE_LOG(EL_LOG_WARN, ice, "too many remote candidates waiting for credentials");
        return EL_ERR_QUOTA;
    }
    pending_cand *p = g_new0(pending_cand, 1);
    p->cand = nc;
    g_strlcpy(p->ufrag, c.ufrag, sizeof p->ufrag);
    g_queue_push_tail(&ice->pending, p);
    ICE_LOG(EL_LOG_DEBUG, ice, "holding remote %.*s until its credentials arrive", (int)len, s);
    return EL_OK;
}

int el_ice_set_remote_credentials(el_ice *ice, const char *ufrag, const char *pwd)
{
    if (!ice || !ice_chars_ok(ufrag, EL_SDP_UFRAG_MIN, EL_SDP_UFRAG_MAX) ||
        !ice_chars_ok(pwd, EL_SDP_PWD_MIN, EL_SDP_PWD_MAX))
        return EL_ERR_INVALID;
    if (ice->have_remote && strcmp(ice->remote_ufrag, ufrag) != 0) {
        g_strlcpy(ice->old_ufrags[ice->nold % OLD_UFRAGS], ice->remote_ufrag,
                  sizeof ice->old_ufrags[0]);
        ice->nold++;
        ICE_LOG(EL_LOG_INFO, ice, "remote credentials changed (peer restarted ICE)");
    }
    if (!nice_agent_set_remote_credentials(ice->agent, ice->stream, ufrag, pwd))
        return EL_ERR_INVALID;
    g_strlcpy(ice->remote_ufrag, ufrag, sizeof ice->remote_ufrag);
    ice->have_remote = true;

    /* Apply what was held for this generation, drop the rest. */
    pending_cand *p;
    while ((p = g_queue_pop_head(&ice->pending)) != NULL) {
        if (!p->ufrag[0] || strcmp(p->ufrag, ufrag) == 0)
            apply_candidate(ice, p->cand);
        else
            ICE_LOG(EL_LOG_DEBUG, ice, "dropping held candidate of generation %s", p->ufrag);
        pending_free(p);
    }
    if (ice->pending_eoc) {
        ice->pending_eoc = false;
        apply_eoc(ice);
    }
    return EL_OK;
}

/* ---- fault injection (ECHOLINK_NETFAULT, a test hook) ----------------------- */

static void fault_tx_out(void *user, const uint8_t *data, size_t len)
{
    el_ice *ice = user;
    if (!ice->dead && ice->agent)
        (void)nice_agent_send(ice->agent, ice->stream, COMPONENT, (guint)len,
                              (const gchar *)data); /* best effort, like UDP */
}

static void log_fault_stats(const el_ice *ice, const char *dir, const el_fault *f)
{
    el_fault_stats st;
    el_fault_get_stats(f, &st);
    ICE_LOG(EL_LOG_INFO, ice,
            "netfault %s: %" G_GUINT64_FORMAT " datagrams, %" G_GUINT64_FORMAT
            " lost, %" G_GUINT64_FORMAT " duplicated, %" G_GUINT64_FORMAT
            " delayed, %" G_GUINT64_FORMAT " reordered, %" G_GUINT64_FORMAT
            " dropped at the caps, peak %zu held",
            dir, st.pushed, st.lost, st.dup, st.delayed, st.reordered, st.cap_drops,
            st.held_peak);
}

static void free_faults(el_ice *ice)
{
    if (ice->fault_tx)
        log_fault_stats(ice, "send", ice->fault_tx);
    if (ice->fault_rx)
        log_fault_stats(ice, "recv", ice->fault_rx);
    el_fault_free(ice->fault_tx);
    el_fault_free(ice->fault_rx);
    ice->fault_tx = ice->fault_rx = NULL;
}

/* Reads ECHOLINK_NETFAULT: a bad spec fails el_ice_new (a test that asked
 * for faults must not silently run without them); an active one is warned
 * about once per process, so it never goes unnoticed in production. */
static int setup_faults(el_ice *ice, char *err, size_t errlen)
{
    static gsize warned;
    const char *env = getenv("ECHOLINK_NETFAULT");
    if (!env || !*env)
        return EL_OK;
    el_fault_spec spec;
    char why[192];
    if (el_fault_parse(env, &spec, why, sizeof why) != EL_OK)
        return el_seterr(err, errlen, EL_ERR_INVALID, "ice: ECHOLINK_NETFAULT: %s", why);
    if (!el_fault_spec_active(&spec))
        return EL_OK;
    if (g_once_init_enter(&warned)) {
        char s[256];
        el_fault_spec_write(&spec, s, sizeof s);
        EL_WARN("ECHOLINK_NETFAULT is set: WebRTC datagrams are deliberately lost, delayed, "
                "reordered or duplicated (%s); this is a test hook, unset it in production", s);
        g_once_init_leave(&warned, 1);
    }
    if (spec.dir & EL_FAULT_SEND)
        ice->fault_tx = el_fault_new(ice->ctx, &spec, fault_tx_out, ice);
    if (spec.dir & EL_FAULT_RECV) {
        if (spec.seed)
            spec.seed++; /* the two directions must not mirror each other */
        ice->fault_rx = el_fault_new(ice->ctx, &spec, fault_rx_out, ice);
    }
    return EL_OK;
}

/* ---- life cycle ----------------------------------------------------------- */

static void cache_local_credentials(el_ice *ice)
{
    gchar *u = NULL, *p = NULL;
    if (nice_agent_get_local_credentials(ice->agent, ice->stream, &u, &p)) {
        g_strlcpy(ice->local_ufrag, u, sizeof ice->local_ufrag);
        g_strlcpy(ice->local_pwd, p, sizeof ice->local_pwd);
    }
    g_free(u);
    g_free(p);
}

static void drop_source(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

static void teardown(el_ice *ice)
{
    /* first: nothing held may go out (or in) once we start closing; what
     * is batched leaves while libnice's socket is still open */
    free_faults(ice);
    el_udptx_free(ice->tx);
    ice->tx = NULL;
    if (ice->agent) {
        g_signal_handlers_disconnect_by_data(ice->agent, ice);
        if (ice->stream)
            nice_agent_attach_recv(ice->agent, ice->stream, COMPONENT, ice->ctx, NULL, NULL);
        if (ice->has_turn) {
            /* Releases the TURN allocations; the GTask (holding the agent)
             * completes on ctx, so make ctx the thread default for it. */
            g_main_context_push_thread_default(ice->ctx);
            nice_agent_close_async(ice->agent, NULL, NULL);
            g_main_context_pop_thread_default(ice->ctx);
        }
        g_object_unref(ice->agent);
        ice->agent = NULL;
    }
    drop_source(&ice->idle);
    drop_source(&ice->watchdog);
    ev *e;
    while ((e = g_queue_pop_head(&ice->events)) != NULL)
        g_free(e);
    drop_source(&ice->rx_idle);
    rx_pkt *p;
    while ((p = g_queue_pop_head(&ice->rx)) != NULL)
        g_free(p);
    ice->rx_bytes = 0;
    clear_pending(ice);
    if (ice->ctx) {
        g_main_context_unref(ice->ctx);
        ice->ctx = NULL;
    }
}

el_ice *el_ice_new(GMainContext *ctx, int controlling, const el_ice_config *cfg,
                   const el_ice_callbacks *cb, void *user, char *err, size_t errlen)
{
    static const el_ice_config none;
    if (!ctx) {
        el_seterr(err, errlen, EL_ERR_INVALID, "ice: no GMainContext");
        return NULL;
    }
    if (!cfg)
        cfg = &none;
    if (cfg->turn_host && (!cfg->turn_user || !cfg->turn_pass)) {
        el_seterr(err, errlen, EL_ERR_INVALID, "ice: TURN server without username/password");
        return NULL;
    }
    if (cfg->relay_only && !cfg->turn_host) {
        el_seterr(err, errlen, EL_ERR_INVALID, "ice: relay_only needs a TURN server");
        return NULL;
    }
    NiceAddress addrs[EL_ICE_MAX_LOCAL_ADDRS];
    size_t naddrs = 0;
    for (const char *const *a = cfg->local_addrs; a && *a; a++) {
        if (naddrs == EL_ICE_MAX_LOCAL_ADDRS) {
            el_seterr(err, errlen, EL_ERR_QUOTA, "ice: more than %d local addresses",
                      EL_ICE_MAX_LOCAL_ADDRS);
            return NULL;
        }
        nice_address_init(&addrs[naddrs]);
        if (!nice_address_set_from_string(&addrs[naddrs], *a)) {
            el_seterr(err, errlen, EL_ERR_INVALID, "ice: bad local address '%s'", *a);
            return NULL;
        }
        naddrs++;
    }

    el_ice *ice = g_new0(el_ice, 1);
    ice->ctx = g_main_context_ref(ctx);
    ice->tx = el_udptx_new(ctx, true);
    if (cb)
        ice->cb = *cb;
    ice->user = user;
    ice->id = g_random_int();
    ice->state = EL_ICE_NEW;
    g_queue_init(&ice->events);
    g_queue_init(&ice->rx);
    ice->rx_budget = RX_BURST;
    g_queue_init(&ice->pending);
    if (setup_faults(ice, err, errlen) != EL_OK)
        goto fail;

    NiceAgentOption opts = NICE_AGENT_OPTION_ICE_TRICKLE;
    if (!cfg->silence_ms)
        opts |= NICE_AGENT_OPTION_CONSENT_FRESHNESS;
    ice->agent = nice_agent_new_full(ctx, NICE_COMPATIBILITY_RFC5245, opts);
    if (!ice->agent) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "ice: nice_agent_new_full failed");
        goto fail;
    }
    /* full mode is the default (no NICE_AGENT_OPTION_LITE_MODE); "full-mode"
     * is construct-only */
    g_object_set(ice->agent, "controlling-mode", controlling ? TRUE : FALSE,
                 "ice-trickle", TRUE, "ice-udp", TRUE, "ice-tcp", FALSE, "upnp", FALSE,
                 "keepalive-conncheck", TRUE, "stun-max-retransmissions",
                 (guint)STUN_RETRANSMISSIONS, "stun-initial-timeout", (guint)STUN_RTO_MS,
                 "stun-pacing-timer", (guint)ICE_TA_MS, "idle-timeout", (guint)IDLE_TIMEOUT_MS,
                 "force-relay",
                 cfg->relay_only ? TRUE : FALSE, NULL);
    nice_agent_set_software(ice->agent, "EchoLink " EL_VERSION);
    if (cfg->stun_host)
        g_object_set(ice->agent, "stun-server", cfg->stun_host, "stun-server-port",
                     (guint)(cfg->stun_port ? cfg->stun_port : 3478), NULL);
    for (size_t i = 0; i < naddrs; i++) {
        if (!nice_agent_add_local_address(ice->agent, &addrs[i])) {
            el_seterr(err, errlen, EL_ERR_INVALID, "ice: libnice refused local address '%s'",
                      cfg->local_addrs[i]);
            goto fail;
        }
    }
    ice->stream = nice_agent_add_stream(ice->agent, 1);
    if (ice->stream == 0) {
        el_seterr(err, errlen, EL_ERR_IO, "ice: nice_agent_add_stream failed");
        goto fail;
    }
    if (cfg->turn_host) {
        if (!nice_agent_set_relay_info(ice->agent, ice->stream, COMPONENT, cfg->turn_host,
                                       cfg->turn_port ? cfg->turn_port : 3478, cfg->turn_user,
                                       cfg->turn_pass,
                                       cfg->turn_tcp == 2   ? NICE_RELAY_TYPE_TURN_TLS
                                       : cfg->turn_tcp == 1 ? NICE_RELAY_TYPE_TURN_TCP
                                                            : NICE_RELAY_TYPE_TURN_UDP)) {
            el_seterr(err, errlen, EL_ERR_INVALID, "ice: libnice refused TURN server '%s'",
                      cfg->turn_host);
            goto fail;
        }
        ice->has_turn = true;
    }
    g_signal_connect(ice->agent, "new-candidate-full", G_CALLBACK(on_new_candidate), ice);
    g_signal_connect(ice->agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), ice);
    g_signal_connect(ice->agent, "component-state-changed", G_CALLBACK(on_component_state), ice);
    g_signal_connect(ice->agent, "new-selected-pair-full", G_CALLBACK(on_selected_pair), ice);
    if (!nice_agent_attach_recv(ice->agent, ice->stream, COMPONENT, ctx, on_recv, ice)) {
        el_seterr(err, errlen, EL_ERR_IO, "ice: nice_agent_attach_recv failed");
        goto fail;
    }
    cache_local_credentials(ice);
    if (cfg->silence_ms)
        start_watchdog(ice, cfg->silence_ms);
    ICE_LOG(EL_LOG_DEBUG, ice, "new %s agent, %zu local address(es)%s%s",
            controlling ? "controlling" : "controlled", naddrs, cfg->stun_host ? ", STUN" : "",
            cfg->turn_host ? ", TURN" : "");
    return ice;

fail:
    teardown(ice);
    free_struct(ice);
    return NULL;
}

void el_ice_local_credentials(const el_ice *ice, char ufrag[64], char pwd[256])
{
    g_strlcpy(ufrag, ice ? ice->local_ufrag : "", 64);
    g_strlcpy(pwd, ice ? ice->local_pwd : "", 256);
}

int el_ice_gather(el_ice *ice)
{
    if (!ice || ice->dead)
        return EL_ERR_INVALID;
    if (ice->gather_started)
        return EL_OK;
    if (!nice_agent_gather_candidates(ice->agent, ice->stream)) {
        ICE_LOG(EL_LOG_WARN, ice, "gathering failed: no usable local address");
        return EL_ERR_IO;
    }
    ice->gather_started = true;
    return EL_OK;
}

int el_ice_send(el_ice *ice, const uint8_t *data, size_t len)
{
    if (!ice || ice->dead || !data || len == 0 || len > EL_ICE_MAX_DATAGRAM)
        return EL_ERR_INVALID;
    if (ice->fault_tx) {
        if (ice->state == EL_ICE_NEW || ice->state == EL_ICE_CHECKING)
            return EL_ERR_IO; /* no selected pair yet, as below */
        el_fault_push(ice->fault_tx, data, len);
        return EL_OK;
    }
    if (el_udptx_send(ice->tx, data, len))
        return EL_OK; /* batched: leaves at the end of this loop turn */
    gint n = nice_agent_send(ice->agent, ice->stream, COMPONENT, (guint)len,
                             (const gchar *)data);
    return n == (gint)len ? EL_OK : EL_ERR_IO;
}

int el_ice_restart(el_ice *ice)
{
    if (!ice || ice->dead)
        return EL_ERR_INVALID;
    g_object_set(ice->agent, "idle-timeout", (guint)IDLE_TIMEOUT_MS, NULL);
    if (!nice_agent_restart_stream(ice->agent, ice->stream))
        return EL_ERR_IO;
    cache_local_credentials(ice);
    ice->remote_eoc = false; /* the remote gathers again for the new ufrag */
    ICE_LOG(EL_LOG_INFO, ice, "ICE restart, new ufrag %s", ice->local_ufrag);
    /* libnice keeps its sockets and local candidates and gathers nothing
     * new: announce them again with the new ufrag, then end-of-candidates
     * (or let the gathering-done signal do it if gathering is still on). */
    purge_candidate_events(ice);
    if (ice->gather_started) {
        GSList *l = nice_agent_get_local_candidates(ice->agent, ice->stream, COMPONENT);
        for (GSList *i = l; i; i = i->next) {
            char s[EL_SDP_CANDIDATE_STR_MAX];
            if (format_local(ice, i->data, s, sizeof s))
                push_event(ice, EV_CANDIDATE, 0, s);
        }
        g_slist_free_full(l, (GDestroyNotify)nice_candidate_free);
        if (ice->gather_done)
            push_event(ice, EV_END_OF_CANDIDATES, 0, NULL);
    }
    return EL_OK;
}

el_ice_state el_ice_get_state(const el_ice *ice)
{
    return ice ? ice->state : EL_ICE_CLOSED;
}

void el_ice_get_tx_stats(const el_ice *ice, el_udptx_stats *out)
{
    el_udptx_get_stats(ice ? ice->tx : NULL, out);
}

void el_ice_free(el_ice *ice)
{
    if (!ice || ice->dead)
        return;
    ice->dead = true;
    teardown(ice);
    if (ice->depth == 0)
        free_struct(ice);
    /* else: freed by leave() when the outermost callback returns */
}
