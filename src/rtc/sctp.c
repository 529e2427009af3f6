/* sctp.c - see sctp.h.
 *
 * Structure. Process-wide: the usrsctp refcount and the id -> el_sctp table
 * that conn_output and the upcall use. Per association: one non-blocking
 * AF_CONN one-to-one socket, a two-level sid -> channel table plus a list of
 * all channels, per-stream reassembly buffers, and per-channel send queues.
 *
 * Control flow. usrsctp never calls our code except conn_output (packets
 * out: straight to cb.send) and the upcall (which only marks the
 * association pending). Everything else happens in process(), run by
 * el_sctp_input and el_sctp_tick after usrsctp has returned: drain() reads
 * every message and notification with usrsctp_recvv, service() announces
 * negotiated channels, adds streams, moves queued messages into usrsctp,
 * resets closing streams and finalises closed channels. User callbacks run
 * only there, so they may re-enter the API; API calls made from them only
 * change state (and mark the association pending), and channel objects are
 * freed only by process() itself. s->depth counts our frames on the stack
 * so that el_sctp_free from a callback is deferred to the outermost exit. */
#include "rtc/sctp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <usrsctp.h>

#include "base/err.h"
#include "base/log.h"
#include "rtc/crc32c.h"
#include "rtc/dcep.h"

#define RECV_CHUNK (64 * 1024) /* usrsctp_recvv buffer; longer messages come in pieces */
#define PAGE_BITS 8
#define PAGE_SIZE (1u << PAGE_BITS)
#define PAGES (65536u / PAGE_SIZE)

/* ---- data structures --------------------------------------------------------- */

typedef struct el_sctp_msg {
    struct el_sctp_msg *next;
    uint32_t ppid;
    bool control;   /* DCEP: always ordered and reliable, not in bufferedAmount */
    size_t len;     /* bytes on the wire (1 for an empty message) */
    size_t counted; /* bytes counted in bufferedAmount */
    uint8_t data[];
} el_sctp_msg;

typedef enum { CHAN_CONNECTING, CHAN_OPEN, CHAN_CLOSING } chan_state;

typedef struct el_sctp_chan {
    struct el_sctp_chan *next; /* s->chans */
    uint16_t sid;
    chan_state state;
    el_dcep_channel_type type;
    uint32_t reliability;
    char *label, *protocol;  /* NUL-terminated copies ("" for hidden channels) */
    bool local;              /* we opened it */
    bool negotiated;         /* no DCEP */
    bool visible;            /* the user knows the sid: report its close */
    bool need_announce;      /* negotiated: report open once the association is up */
    bool peer_heard;         /* ACK/OPEN/data received: unordered sends allowed */
    bool reset_wanted;       /* closing: reset our outgoing stream once the queue drained */
    bool out_reset_sent, out_reset_done, in_reset_done;
    el_sctp_msg *qhead, *qtail;
    size_t buffered; /* user bytes in the queue */
    size_t low;      /* on_buffered_low threshold */
} el_sctp_chan;

typedef struct el_sctp_partial { /* a message arriving in pieces */
    struct el_sctp_partial *next;
    uint16_t sid;
    uint32_t ppid;
    bool discard; /* over EL_SCTP_MAX_MESSAGE_SIZE: drop until MSG_EOR */
    uint8_t *buf;
    size_t len, cap;
} el_sctp_partial;

struct el_sctp {
    uint32_t id;
    bool dtls_client;
    size_t remote_max;
    el_sctp_callbacks cb;
    void *user;
    struct socket *sock;
    sctp_assoc_t assoc_id;
    bool connected;    /* el_sctp_connect called */
    bool up;           /* SCTP_COMM_UP seen */
    bool dead;         /* association gone; only el_sctp_free is left */
    bool pending;      /* process() has work */
    bool add_pending;  /* an SCTP_ADD_STREAMS request is outstanding */
    bool notif_skip;   /* skipping the rest of a notification longer than RECV_CHUNK */
    int oom_sid;       /* >= 0: dropping the rest of a message we had no memory for */
    bool free_pending; /* el_sctp_free called with our frames on the stack */
    bool destroying;   /* in destroy(): only the final ABORT may still go out */
    int depth;
    uint16_t in_streams, out_streams;
    size_t queued; /* bytes in all channel queues */
    unsigned nchans;           /* channels in the table (EL_SCTP_MAX_CHANNELS) */
    unsigned refused_over_cap; /* DCEP OPENs refused by the cap, for the log */
    int rr_last;   /* stream flush() served last: the next round starts after it */
    el_sctp_chan **pages[PAGES];
    el_sctp_chan *chans;
    el_sctp_partial *partials;
    uint8_t *rbuf;
};

/* ---- process-wide state: usrsctp refcount and the id table ------------------- */

typedef struct {
    uint32_t id;
    el_sctp *s;
} reg_entry;

static struct {
    reg_entry *v;
    size_t n, cap;
    unsigned refs;  /* el_sctp objects alive */
    bool inited;    /* usrsctp initialised and not yet finished */
    bool in_timers; /* inside usrsctp_handle_timers */
    uint32_t next_id;
} g_sctp;

static void *id_addr(uint32_t id)
{
    return (void *)(uintptr_t)id;
}

static el_sctp *reg_find(uint32_t id)
{
    for (size_t i = 0; i < g_sctp.n; i++)
        if (g_sctp.v[i].id == id)
            return g_sctp.v[i].s;
    return NULL;
}

static int reg_add(el_sctp *s)
{
    if (g_sctp.n == g_sctp.cap) {
        size_t cap = g_sctp.cap ? g_sctp.cap * 2 : 8;
        reg_entry *v = realloc(g_sctp.v, cap * sizeof *v);
        if (!v)
            return EL_ERR_NOMEM;
        g_sctp.v = v;
        g_sctp.cap = cap;
    }
    do { /* never 0 (NULL as an address), never one in use */
        g_sctp.next_id++;
    } while (g_sctp.next_id == 0 || reg_find(g_sctp.next_id));
    s->id = g_sctp.next_id;
    g_sctp.v[g_sctp.n].id = s->id;
    g_sctp.v[g_sctp.n].s = s;
    g_sctp.n++;
    return EL_OK;
}

static void reg_remove(uint32_t id)
{
    for (size_t i = 0; i < g_sctp.n; i++) {
        if (g_sctp.v[i].id == id) {
            memmove(&g_sctp.v[i], &g_sctp.v[i + 1], (g_sctp.n - i - 1) * sizeof g_sctp.v[0]);
            g_sctp.n--;
            return;
        }
    }
}

/* usrsctp -> transport. Runs inside usrsctp: hand the packet on, nothing
 * else. After el_sctp_free only the ABORT of usrsctp_close goes out.
 * usrsctp leaves the checksum to us (lib_ref): set it, since the peer's
 * stack may verify it. */
static int conn_output(void *addr, void *buf, size_t len, uint8_t tos, uint8_t set_df)
{
    (void)tos;
    (void)set_df;
    el_sctp *s = reg_find((uint32_t)(uintptr_t)addr);
    if (!s || (s->free_pending && !s->destroying))
        return 0;
    el_crc32c_sctp_set(buf, len);
    s->cb.send(s->user, buf, len);
    return 0;
}

/* Socket readable/writable/error. Runs inside usrsctp: only note it. */
static void on_upcall(struct socket *sock, void *arg, int flags)
{
    (void)sock;
    (void)flags;
    el_sctp *s = reg_find((uint32_t)(uintptr_t)arg);
    if (s)
        s->pending = true;
}

static void lib_ref(void)
{
    if (!g_sctp.inited) {
        usrsctp_init_nothreads(0, conn_output, NULL);
        usrsctp_sysctl_set_sctp_ecn_enable(0); /* DTLS over UDP carries no ECN marks */
        /* Every packet reaches usrsctp inside a DTLS record whose AEAD tag
         * was checked, so its CRC32c proves nothing more (the reasoning of
         * RFC 9653): "offload" makes usrsctp skip verifying it, which was
         * ~8 % of a bulk transfer's CPU. Outgoing checksums are still set,
         * in conn_output, with the CPU's CRC instruction (crc32c.h). */
        usrsctp_enable_crc32c_offload();
        g_sctp.inited = true;
    }
    g_sctp.refs++;
}

/* Shuts usrsctp down once no el_sctp is left. usrsctp_finish refuses while
 * a closed socket is still being torn down (its final free can wait for a
 * timer); with no association left, running the timers ahead is harmless. */
static void lib_try_finish(void)
{
    if (!g_sctp.inited || g_sctp.refs || g_sctp.in_timers)
        return;
    for (int i = 0; i < 300; i++) {
        if (usrsctp_finish() == 0) {
            g_sctp.inited = false;
            free(g_sctp.v);
            g_sctp.v = NULL;
            g_sctp.n = g_sctp.cap = 0;
            return;
        }
        usrsctp_handle_timers(10);
    }
    EL_DEBUG("sctp: usrsctp_finish still refused; retrying on the next tick");
}

/* ---- channels ---------------------------------------------------------------- */

static el_sctp_chan *chan_get(const el_sctp *s, uint16_t sid)
{
    el_sctp_chan **page = s->pages[sid >> PAGE_BITS];
    return page ? page[sid & (PAGE_SIZE - 1)] : NULL;
}

static char *dup_span(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        if (n)
            memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

static void msg_free_all(el_sctp *s, el_sctp_chan *c)
{
    while (c->qhead) {
        el_sctp_msg *m = c->qhead;
        c->qhead = m->next;
        s->queued -= m->len;
        free(m);
    }
    c->qtail = NULL;
    c->buffered = 0;
}

static void chan_destroy(el_sctp *s, el_sctp_chan *c)
{
    msg_free_all(s, c);
    free(c->label);
    free(c->protocol);
    free(c);
}

/* New channel on a free sid, linked into the table and at the head of the
 * list (so that a list walk in progress does not see it). */
static el_sctp_chan *chan_new(el_sctp *s, uint16_t sid, const void *label, size_t label_len,
                              const void *protocol, size_t protocol_len)
{
    el_sctp_chan ***page = &s->pages[sid >> PAGE_BITS];
    if (!*page) {
        *page = calloc(PAGE_SIZE, sizeof **page);
        if (!*page)
            return NULL;
    }
    el_sctp_chan *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->label = dup_span(label, label_len);
    c->protocol = dup_span(protocol, protocol_len);
    if (!c->label || !c->protocol) {
        chan_destroy(s, c);
        return NULL;
    }
    c->sid = sid;
    (*page)[sid & (PAGE_SIZE - 1)] = c;
    c->next = s->chans;
    s->chans = c;
    s->nchans++;
    return c;
}

static void chan_unlink(el_sctp *s, el_sctp_chan *c)
{
    s->nchans--;
    s->pages[c->sid >> PAGE_BITS][c->sid & (PAGE_SIZE - 1)] = NULL;
    for (el_sctp_chan **pp = &s->chans; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
}

static void partial_drop(el_sctp *s, uint16_t sid)
{
    for (el_sctp_partial **pp = &s->partials; *pp; pp = &(*pp)->next) {
        if ((*pp)->sid == sid) {
            el_sctp_partial *p = *pp;
            *pp = p->next;
            free(p->buf);
            free(p);
            return;
        }
    }
}

/* Removes c and reports the close if the user knows the channel. */
static void chan_finalize(el_sctp *s, el_sctp_chan *c)
{
    uint16_t sid = c->sid;
    bool report = c->visible;
    chan_unlink(s, c);
    partial_drop(s, sid);
    chan_destroy(s, c);
    EL_DEBUG("sctp %u: stream %u closed", s->id, sid);
    if (report && !s->free_pending && s->cb.on_channel_closed)
        s->cb.on_channel_closed(s->user, sid);
}

static void chan_close(el_sctp *s, el_sctp_chan *c)
{
    if (!c->reset_wanted) {
        c->reset_wanted = true;
        c->state = CHAN_CLOSING;
    }
    s->pending = true;
}

/* Resets a stream the peer misused and for which we have no channel
 * (RFC 8832 §6: refuse by closing, never ACK). */
static void refuse_stream(el_sctp *s, uint16_t sid)
{
    el_sctp_chan *c = chan_get(s, sid);
    if (!c)
        c = chan_new(s, sid, "", 0, "", 0);
    if (c)
        chan_close(s, c);
}

static void announce_open(el_sctp *s, el_sctp_chan *c, int remote)
{
    c->state = CHAN_OPEN;
    c->need_announce = false;
    c->visible = true;
    EL_DEBUG("sctp %u: channel %u '%s' open (%s)", s->id, c->sid, c->label,
             remote ? "remote" : "local");
    if (!s->free_pending && s->cb.on_channel_open)
        s->cb.on_channel_open(s->user, c->sid, c->label, c->protocol, remote);
}

/* ---- sending ----------------------------------------------------------------- */

static bool stream_ready(const el_sctp *s, const el_sctp_chan *c)
{
    return s->up && !s->dead && c->sid < s->out_streams;
}

/* One message into usrsctp: 1 taken, 0 no room now (EWOULDBLOCK), or a
 * negative el_err. */
static int try_sendv(el_sctp *s, const el_sctp_chan *c, uint32_t ppid, bool control,
                     const uint8_t *data, size_t len)
{
    struct sctp_sendv_spa spa;
    memset(&spa, 0, sizeof spa);
    spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
    spa.sendv_sndinfo.snd_sid = c->sid;
    spa.sendv_sndinfo.snd_ppid = htonl(ppid);
    spa.sendv_sndinfo.snd_assoc_id = s->assoc_id;
    if (!control) {
        /* RFC 8832 §6: ordered until the peer has said anything on the stream */
        if (!el_dcep_is_ordered(c->type) && c->peer_heard)
            spa.sendv_sndinfo.snd_flags |= SCTP_UNORDERED;
        switch (c->type & ~EL_DCEP_UNORDERED_BIT) {
        case EL_DCEP_PARTIAL_RELIABLE_REXMIT:
            spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
            spa.sendv_prinfo.pr_policy = SCTP_PR_SCTP_RTX;
            spa.sendv_prinfo.pr_value = c->reliability;
            break;
        case EL_DCEP_PARTIAL_RELIABLE_TIMED:
            spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
            spa.sendv_prinfo.pr_policy = SCTP_PR_SCTP_TTL;
            spa.sendv_prinfo.pr_value = c->reliability;
            break;
        default:
            break;
        }
    }
    ssize_t n = usrsctp_sendv(s->sock, data, len, NULL, 0, &spa, (socklen_t)sizeof spa,
                              SCTP_SENDV_SPA, 0);
    if (n >= 0) {
        if ((size_t)n != len) /* cannot happen without SCTP_EXPLICIT_EOR */
            EL_ERROR("sctp %u: usrsctp took %zd of %zu bytes on stream %u", s->id, n, len, c->sid);
        return 1;
    }
    if (errno == EWOULDBLOCK || errno == EAGAIN)
        return 0;
    EL_WARN("sctp %u: send on stream %u: %s", s->id, c->sid, strerror(errno));
    return EL_ERR_IO;
}

/* Sends now when nothing waits before it on the channel, else queues. */
static int submit(el_sctp *s, el_sctp_chan *c, uint32_t ppid, bool control, const uint8_t *data,
                  size_t len, size_t counted)
{
    if (!c->qhead && stream_ready(s, c)) {
        int r = try_sendv(s, c, ppid, control, data, len);
        if (r != 0)
            return r < 0 ? r : EL_OK;
    }
    if (s->queued + len > EL_SCTP_MAX_QUEUED)
        return EL_ERR_QUOTA;
    el_sctp_msg *m = malloc(sizeof *m + len);
    if (!m)
        return EL_ERR_NOMEM;
    m->next = NULL;
    m->ppid = ppid;
    m->control = control;
    m->len = len;
    m->counted = counted;
    memcpy(m->data, data, len);
    if (c->qtail)
        c->qtail->next = m;
    else
        c->qhead = m;
    c->qtail = m;
    c->buffered += counted;
    s->queued += len;
    return EL_OK;
}

/* Moves queued messages into usrsctp, one per channel per round, until
 * usrsctp is full or every queue is empty. Each round starts after the
 * stream served last, so that when usrsctp has room for only one message
 * at a time (a bulk transfer keeps it full) the channels take turns: a chat
 * message no longer waits for a file channel's whole queue. */
static void flush(el_sctp *s)
{
    bool progress = true;
    while (progress && s->up && !s->dead && !s->free_pending) {
        progress = false;
        size_t n = 0;
        for (el_sctp_chan *c = s->chans; c; c = c->next)
            n++;
        el_sctp_chan *last = chan_get(s, (uint16_t)s->rr_last);
        el_sctp_chan *c = last && last->next ? last->next : s->chans;
        for (size_t i = 0; i < n && c; i++) {
            el_sctp_chan *next = c->next ? c->next : s->chans;
            el_sctp_msg *m = c->qhead;
            if (!m || !stream_ready(s, c)) {
                c = next;
                continue;
            }
            int r = try_sendv(s, c, m->ppid, m->control, m->data, m->len);
            if (r == 0)
                return;
            s->rr_last = c->sid;
            if (r < 0)
                EL_WARN("sctp %u: dropped a %zu-byte message on stream %u", s->id, m->len, c->sid);
            c->qhead = m->next;
            if (!c->qhead)
                c->qtail = NULL;
            s->queued -= m->len;
            size_t before = c->buffered;
            c->buffered -= m->counted;
            bool user = !m->control;
            free(m);
            progress = true;
            if (user && before > c->low && c->buffered <= c->low && s->cb.on_buffered_low) {
                s->cb.on_buffered_low(s->user, c->sid);
                if (s->free_pending || s->dead)
                    return;
            }
            c = next;
        }
    }
}

/* ---- streams: adding and resetting ------------------------------------------- */

/* A stream the peer opened (by OPEN or data) stays open on its side until
 * our outgoing reset of the same id tells it to reset its own (RFC 8831
 * §6.7): closing or refusing it needs our outgoing stream of that id. */
static bool peer_stream_open(const el_sctp_chan *c)
{
    return !c->local && !c->out_reset_sent && !c->in_reset_done;
}

/* Channels on streams the peer refused to add can never send: drop their
 * queues and close them. */
static void fail_missing_streams(el_sctp *s)
{
    for (el_sctp_chan *c = s->chans; c; c = c->next) {
        if (c->sid >= s->out_streams && (c->qhead || !c->reset_wanted)) {
            msg_free_all(s, c);
            chan_close(s, c);
        }
        if (c->sid >= s->out_streams && c->reset_wanted && peer_stream_open(c)) {
            /* no stream to reset with: give up on telling the peer */
            c->out_reset_sent = c->out_reset_done = c->in_reset_done = true;
        }
    }
}

/* Asks for more outgoing streams when a channel waits for one. */
static void ensure_streams(el_sctp *s)
{
    if (!s->up || s->dead || s->add_pending)
        return;
    uint32_t need = 0;
    for (el_sctp_chan *c = s->chans; c; c = c->next)
        if ((c->qhead || (c->reset_wanted && peer_stream_open(c))) && c->sid >= s->out_streams &&
            c->sid + 1u > need)
            need = c->sid + 1u;
    if (!need)
        return;
    uint32_t want = (need + 15u) & ~15u;
    if (want > 65535)
        want = 65535;
    struct sctp_add_streams sas;
    memset(&sas, 0, sizeof sas);
    sas.sas_assoc_id = s->assoc_id;
    sas.sas_outstrms = (uint16_t)(want - s->out_streams);
    int r = usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_ADD_STREAMS, &sas,
                               (socklen_t)sizeof sas);
    if (r == 0) {
        s->add_pending = true;
        EL_DEBUG("sctp %u: asking for %u outgoing streams", s->id, want);
    } else if (errno != EALREADY && errno != EBUSY) {
        EL_WARN("sctp %u: cannot add streams: %s", s->id, strerror(errno));
        fail_missing_streams(s);
    } /* else a reset is outstanding: the next event or tick retries */
}

/* Finalises the channels reset in both directions. Runs after every
 * notification too, so that a stream id the peer reuses at once (its new
 * OPEN may share a packet with the end of the reset) finds the id free. */
static void finalize_closed(el_sctp *s)
{
    for (el_sctp_chan *c = s->chans, *next; c; c = next) {
        next = c->next;
        if (c->reset_wanted && c->out_reset_done && c->in_reset_done) {
            chan_finalize(s, c);
            if (s->free_pending)
                return;
        }
    }
}

/* Issues outgoing resets for closing channels whose queue has drained, and
 * finalises channels closed in both directions. */
static void resets(el_sctp *s)
{
    if (s->dead)
        return;
    uint16_t list[64];
    size_t n = 0;
    for (el_sctp_chan *c = s->chans, *next; c; c = next) {
        next = c->next;
        if (!c->reset_wanted)
            continue;
        if (!s->up) { /* nothing went out on the stream: nothing to reset */
            chan_finalize(s, c);
            continue;
        }
        if (!c->out_reset_sent && !c->qhead) {
            if (c->sid >= s->out_streams) {
                /* no such outgoing stream yet: if the peer's side is open,
                 * ensure_streams asks for one and we reset then (else the
                 * peer's channel would never close and ours never leave
                 * the table); if not, nothing went out to reset */
                if (!peer_stream_open(c))
                    c->out_reset_sent = c->out_reset_done = true;
            } else if (n < sizeof list / sizeof list[0]) {
                list[n++] = c->sid;
            }
        }
        if (c->sid >= s->in_streams)
            c->in_reset_done = true;
    }
    if (n) {
        struct sctp_reset_streams *srs = malloc(sizeof *srs + n * sizeof(uint16_t));
        if (srs) {
            srs->srs_assoc_id = s->assoc_id;
            srs->srs_flags = SCTP_STREAM_RESET_OUTGOING;
            srs->srs_number_streams = (uint16_t)n;
            memcpy(srs->srs_stream_list, list, n * sizeof(uint16_t));
            int r = usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, srs,
                                       (socklen_t)(sizeof *srs + n * sizeof(uint16_t)));
            int e = errno;
            free(srs);
            for (size_t i = 0; i < n; i++) {
                el_sctp_chan *c = chan_get(s, list[i]);
                c->out_reset_sent = true;
                if (r != 0) { /* e.g. the peer has no RE-CONFIG: close locally */
                    EL_WARN("sctp %u: reset of stream %u failed: %s", s->id, list[i], strerror(e));
                    c->out_reset_done = c->in_reset_done = true;
                }
            }
        }
    }
    finalize_closed(s);
}

/* ---- receiving --------------------------------------------------------------- */

static void assoc_down(el_sctp *s, const char *why)
{
    if (s->dead)
        return;
    s->dead = true;
    s->up = false;
    EL_INFO("sctp %u: association down: %s", s->id, why);
    while (s->chans)
        chan_finalize(s, s->chans);
    while (s->partials)
        partial_drop(s, s->partials->sid);
    if (!s->free_pending && s->cb.on_state)
        s->cb.on_state(s->user, 0, why);
}

static void handle_dcep(el_sctp *s, uint16_t sid, const uint8_t *data, size_t len)
{
    el_sctp_chan *c = chan_get(s, sid);
    el_dcep_msg m;
    char err[160];
    if (el_dcep_parse(data, len, &m, err, sizeof err) != EL_OK) {
        EL_WARN("sctp %u: bad DCEP message on stream %u: %s", s->id, sid, err);
        if (c)
            chan_close(s, c);
        else
            refuse_stream(s, sid);
        return;
    }
    if (m.type == EL_DCEP_MSG_ACK) {
        if (!c || !c->local || c->negotiated) {
            EL_WARN("sctp %u: unexpected DCEP ACK on stream %u", s->id, sid);
            return;
        }
        c->peer_heard = true;
        if (c->state == CHAN_CONNECTING)
            announce_open(s, c, 0);
        return;
    }
    /* OPEN: RFC 8832 §6, an unused stream of the peer's parity */
    if (c) {
        EL_WARN("sctp %u: DCEP OPEN on stream %u already in use", s->id, sid);
        chan_close(s, c);
        return;
    }
    if (el_dcep_stream_is_ours(sid, s->dtls_client)) {
        EL_WARN("sctp %u: DCEP OPEN on stream %u breaks the even/odd rule", s->id, sid);
        refuse_stream(s, sid);
        return;
    }
    if (s->nchans >= EL_SCTP_MAX_CHANNELS) {
        /* three warnings, then three per thousand: a flood of OPENs must
         * not become a flood of log lines */
        if (s->refused_over_cap++ % 1000 < 3)
            EL_WARN("sctp %u: DCEP OPEN on stream %u refused: %u channels open (limit %d), "
                    "%u refused so far",
                    s->id, sid, s->nchans, EL_SCTP_MAX_CHANNELS, s->refused_over_cap);
        refuse_stream(s, sid);
        return;
    }
    c = chan_new(s, sid, m.open.label, m.open.label_len, m.open.protocol, m.open.protocol_len);
    if (!c) {
        EL_ERROR("sctp %u: out of memory for channel %u", s->id, sid);
        refuse_stream(s, sid);
        return;
    }
    c->type = m.open.channel_type;
    c->reliability = m.open.reliability;
    c->peer_heard = true;
    static const uint8_t ack[1] = {EL_DCEP_MSG_ACK};
    if (submit(s, c, EL_PPID_DCEP, true, ack, sizeof ack, 0) != EL_OK) {
        EL_WARN("sctp %u: cannot ACK channel %u", s->id, sid);
        chan_close(s, c);
        return;
    }
    announce_open(s, c, 1);
}

/* One complete message. */
static void deliver(el_sctp *s, uint16_t sid, uint32_t ppid, const uint8_t *data, size_t len)
{
    if (ppid == EL_PPID_DCEP) {
        handle_dcep(s, sid, data, len);
        return;
    }
    bool binary, empty;
    if (!el_dcep_ppid_is_data(ppid, &binary, &empty)) {
        EL_WARN("sctp %u: dropped a message with PPID %u on stream %u", s->id, ppid, sid);
        return;
    }
    el_sctp_chan *c = chan_get(s, sid);
    if (!c) { /* RFC 8832 §6: user data on an unused stream is an error */
        EL_WARN("sctp %u: data on unused stream %u", s->id, sid);
        refuse_stream(s, sid);
        return;
    }
    if (!c->visible)
        return; /* a stream we are refusing */
    c->peer_heard = true;
    if (c->local && c->state == CHAN_CONNECTING) { /* data before the ACK implies it */
        announce_open(s, c, 0);
        if (s->free_pending)
            return;
    }
    if (s->cb.on_message)
        s->cb.on_message(s->user, sid, binary, data, empty ? 0 : len);
}

static void handle_data(el_sctp *s, uint16_t sid, uint32_t ppid, const uint8_t *data, size_t n,
                        bool eor)
{
    if (s->oom_sid == (int)sid) {
        if (eor)
            s->oom_sid = -1;
        return;
    }
    el_sctp_partial *p = s->partials;
    while (p && p->sid != sid)
        p = p->next;
    if (!p && eor) {
        deliver(s, sid, ppid, data, n);
        return;
    }
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p) {
            EL_ERROR("sctp %u: out of memory reassembling on stream %u", s->id, sid);
            s->oom_sid = sid; /* drop the rest of this message */
            return;
        }
        p->sid = sid;
        p->ppid = ppid;
        p->next = s->partials;
        s->partials = p;
    }
    if (!p->discard) {
        if (p->len + n > EL_SCTP_MAX_MESSAGE_SIZE) {
            p->discard = true;
            free(p->buf);
            p->buf = NULL;
            p->len = p->cap = 0;
        } else if (p->len + n > p->cap) {
            size_t cap = p->cap ? p->cap : RECV_CHUNK;
            while (cap < p->len + n)
                cap *= 2;
            if (cap > EL_SCTP_MAX_MESSAGE_SIZE)
                cap = EL_SCTP_MAX_MESSAGE_SIZE;
            uint8_t *b = realloc(p->buf, cap);
            if (!b) {
                EL_ERROR("sctp %u: out of memory reassembling on stream %u", s->id, sid);
                p->discard = true;
                free(p->buf);
                p->buf = NULL;
                p->len = p->cap = 0;
            } else {
                p->buf = b;
                p->cap = cap;
            }
        }
        if (!p->discard) {
            memcpy(p->buf + p->len, data, n);
            p->len += n;
        }
    }
    if (!eor)
        return;
    /* complete: unlink first, the callbacks may do anything */
    for (el_sctp_partial **pp = &s->partials; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (p->discard) {
        EL_WARN("sctp %u: message on stream %u exceeds %d bytes; closing the channel", s->id,
                sid, EL_SCTP_MAX_MESSAGE_SIZE);
        el_sctp_chan *c = chan_get(s, sid);
        if (c)
            chan_close(s, c);
        else
            refuse_stream(s, sid);
    } else {
        deliver(s, sid, p->ppid, p->buf, p->len);
    }
    free(p->buf);
    free(p);
}

/* One stream of an SCTP_STREAM_RESET_EVENT. Frees nothing. */
static void reset_one(el_sctp *s, uint16_t sid, uint16_t flags)
{
    el_sctp_chan *c = chan_get(s, sid);
    if (flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED)) {
        if (c && c->out_reset_sent) {
            EL_WARN("sctp %u: peer refused the reset of stream %u", s->id, sid);
            c->out_reset_done = c->in_reset_done = true;
        }
        return;
    }
    if (flags & SCTP_STREAM_RESET_INCOMING_SSN) {
        partial_drop(s, sid);
        if (s->oom_sid == (int)sid)
            s->oom_sid = -1;
        if (!c && s->up && !s->dead) {
            /* the peer closed a channel whose OPEN never reached us (its
             * stack drops a queued OPEN when the channel closes at once):
             * it still waits for our reset of the same id, so answer as
             * for any channel; invisible, so nothing is reported */
            c = chan_new(s, sid, "", 0, "", 0);
        }
        if (c) {
            c->in_reset_done = true;
            chan_close(s, c); /* RFC 8831 §6.7: answer with our own reset */
        }
    }
    if ((flags & SCTP_STREAM_RESET_OUTGOING_SSN) && c && c->out_reset_sent)
        c->out_reset_done = true;
}

static void on_stream_reset(el_sctp *s, const struct sctp_stream_reset_event *ev, size_t n)
{
    size_t total = ev->strreset_length < n ? ev->strreset_length : n;
    size_t count = total > sizeof *ev ? (total - sizeof *ev) / sizeof(uint16_t) : 0;
    if (count == 0) { /* all streams */
        for (el_sctp_chan *c = s->chans; c; c = c->next)
            reset_one(s, c->sid, ev->strreset_flags);
    } else {
        for (size_t i = 0; i < count; i++)
            reset_one(s, ev->strreset_stream_list[i], ev->strreset_flags);
    }
    s->pending = true;
}

static void on_notification(el_sctp *s, const uint8_t *buf, size_t n)
{
    const union sctp_notification *nt = (const union sctp_notification *)(const void *)buf;
    if (n < sizeof nt->sn_header)
        return;
    switch (nt->sn_header.sn_type) {
    case SCTP_ASSOC_CHANGE: {
        if (n < sizeof nt->sn_assoc_change)
            return;
        const struct sctp_assoc_change *ac = &nt->sn_assoc_change;
        switch (ac->sac_state) {
        case SCTP_COMM_UP:
        case SCTP_RESTART:
            if (ac->sac_state == SCTP_RESTART)
                EL_WARN("sctp %u: peer restarted the association", s->id);
            s->assoc_id = ac->sac_assoc_id;
            s->in_streams = ac->sac_inbound_streams;
            s->out_streams = ac->sac_outbound_streams;
            if (!s->up && !s->dead) {
                s->up = true;
                EL_DEBUG("sctp %u: up, streams in=%u out=%u", s->id, s->in_streams, s->out_streams);
                if (s->cb.on_state)
                    s->cb.on_state(s->user, 1, "up");
            }
            break;
        case SCTP_COMM_LOST:
            assoc_down(s, "association lost");
            break;
        case SCTP_SHUTDOWN_COMP:
            assoc_down(s, "association shut down");
            break;
        case SCTP_CANT_STR_ASSOC:
            assoc_down(s, "cannot start the association");
            break;
        default:
            break;
        }
        break;
    }
    case SCTP_STREAM_RESET_EVENT:
        if (n >= sizeof nt->sn_strreset_event)
            on_stream_reset(s, &nt->sn_strreset_event, n);
        break;
    case SCTP_STREAM_CHANGE_EVENT: {
        if (n < sizeof nt->sn_strchange_event)
            return;
        const struct sctp_stream_change_event *sc = &nt->sn_strchange_event;
        s->add_pending = false;
        s->in_streams = sc->strchange_instrms;
        s->out_streams = sc->strchange_outstrms;
        EL_DEBUG("sctp %u: streams in=%u out=%u%s", s->id, s->in_streams, s->out_streams,
                 (sc->strchange_flags & (SCTP_STREAM_CHANGE_DENIED | SCTP_STREAM_CHANGE_FAILED))
                     ? " (our request failed)" : "");
        if (sc->strchange_flags & (SCTP_STREAM_CHANGE_DENIED | SCTP_STREAM_CHANGE_FAILED))
            fail_missing_streams(s);
        s->pending = true;
        break;
    }
    case SCTP_PARTIAL_DELIVERY_EVENT:
        if (n >= sizeof nt->sn_pdapi_event &&
            nt->sn_pdapi_event.pdapi_indication == SCTP_PARTIAL_DELIVERY_ABORTED) {
            partial_drop(s, (uint16_t)nt->sn_pdapi_event.pdapi_stream);
            if (s->oom_sid == (int)nt->sn_pdapi_event.pdapi_stream)
                s->oom_sid = -1;
        }
        break;
    case SCTP_SEND_FAILED_EVENT:
        if (n >= sizeof nt->sn_send_failed_event)
            EL_DEBUG("sctp %u: message on stream %u abandoned (%s)", s->id,
                     nt->sn_send_failed_event.ssfe_info.snd_sid,
                     (nt->sn_send_failed_event.ssfe_flags & SCTP_DATA_SENT) ? "sent" : "unsent");
        break;
    case SCTP_SENDER_DRY_EVENT:
        s->pending = true; /* flush() follows in service() */
        break;
    default:
        break;
    }
}

/* Reads everything usrsctp has for us. */
static void drain(el_sctp *s)
{
    while (s->connected && !s->dead && !s->free_pending) {
        struct sctp_rcvinfo rcv;
        struct sockaddr_conn from;
        socklen_t fromlen = (socklen_t)sizeof from;
        socklen_t infolen = (socklen_t)sizeof rcv;
        unsigned int infotype = 0;
        int flags = 0;
        memset(&rcv, 0, sizeof rcv);
        ssize_t n = usrsctp_recvv(s->sock, s->rbuf, RECV_CHUNK, (struct sockaddr *)&from, &fromlen,
                                  &rcv, &infolen, &infotype, &flags);
        if (n < 0) {
            if (errno == EWOULDBLOCK || errno == EAGAIN || (errno == ENOTCONN && !s->up))
                return;
            assoc_down(s, strerror(errno));
            return;
        }
        if (n == 0) {
            assoc_down(s, "closed by the peer");
            return;
        }
        bool eor = (flags & MSG_EOR) != 0;
        if (flags & MSG_NOTIFICATION) {
            if (!s->notif_skip) {
                on_notification(s, s->rbuf, (size_t)n);
                finalize_closed(s);
            }
            s->notif_skip = !eor; /* skip the rest of an over-long one */
            continue;
        }
        if (infotype != SCTP_RECVV_RCVINFO) {
            EL_WARN("sctp %u: message without receive info dropped", s->id);
            continue;
        }
        handle_data(s, rcv.rcv_sid, ntohl(rcv.rcv_ppid), s->rbuf, (size_t)n, eor);
    }
}

static void service(el_sctp *s)
{
    if (s->up && !s->dead) {
        for (el_sctp_chan *c = s->chans, *next; c; c = next) {
            next = c->next;
            if (c->need_announce && !c->reset_wanted) {
                announce_open(s, c, 0);
                if (s->free_pending)
                    return;
            }
        }
        ensure_streams(s);
        flush(s);
        if (s->free_pending)
            return;
    }
    resets(s);
}

static void destroy(el_sctp *s);

/* The outermost frame runs the work; inner ones only leave it pending. */
static void process(el_sctp *s)
{
    if (s->depth != 1)
        return;
    int rounds = 0;
    while (s->pending && !s->free_pending && rounds++ < 1000) {
        s->pending = false;
        drain(s);
        if (!s->free_pending)
            service(s);
    }
}

static void enter(el_sctp *s)
{
    s->depth++;
}

static void leave(el_sctp *s)
{
    if (--s->depth == 0 && s->free_pending)
        destroy(s);
}

/* ---- public API -------------------------------------------------------------- */

static struct sockaddr_conn conn_addr(const el_sctp *s)
{
    struct sockaddr_conn sc;
    memset(&sc, 0, sizeof sc);
    sc.sconn_family = AF_CONN;
    sc.sconn_port = htons(EL_SCTP_PORT);
    sc.sconn_addr = id_addr(s->id);
    return sc;
}

static int set_sctp_opt(struct socket *so, int opt, const char *name, const void *v, size_t len,
                        char *err, size_t errlen)
{
    if (usrsctp_setsockopt(so, IPPROTO_SCTP, opt, v, (socklen_t)len) < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "usrsctp %s: %s", name, strerror(errno));
    return EL_OK;
}

static int configure(el_sctp *s, char *err, size_t errlen)
{
    struct socket *so = s->sock;
    if (usrsctp_set_non_blocking(so, 1) < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "usrsctp non-blocking: %s", strerror(errno));
    if (usrsctp_set_upcall(so, on_upcall, id_addr(s->id)) < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "usrsctp upcall: %s", strerror(errno));
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close = ABORT, no lingering state */
    if (usrsctp_setsockopt(so, SOL_SOCKET, SO_LINGER, &lg, (socklen_t)sizeof lg) < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "usrsctp SO_LINGER: %s", strerror(errno));
    static const struct {
        int level, opt, value;
        const char *name;
    } ints[] = {
        {SOL_SOCKET, SO_SNDBUF, EL_SCTP_SNDBUF, "SO_SNDBUF"},
        {SOL_SOCKET, SO_RCVBUF, EL_SCTP_RCVBUF, "SO_RCVBUF"},
        {IPPROTO_SCTP, SCTP_NODELAY, 1, "SCTP_NODELAY"},
        {IPPROTO_SCTP, SCTP_RECVRCVINFO, 1, "SCTP_RECVRCVINFO"},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int v = ints[i].value;
        if (usrsctp_setsockopt(so, ints[i].level, ints[i].opt, &v, (socklen_t)sizeof v) < 0)
            return el_seterr(err, errlen, EL_ERR_IO, "usrsctp %s: %s", ints[i].name,
                             strerror(errno));
    }
    struct sctp_assoc_value av;
    memset(&av, 0, sizeof av);
    av.assoc_id = SCTP_FUTURE_ASSOC;
    av.assoc_value = SCTP_ENABLE_RESET_STREAM_REQ | SCTP_ENABLE_CHANGE_ASSOC_REQ;
    if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &av,
                           (socklen_t)sizeof av) < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "usrsctp SCTP_ENABLE_STREAM_RESET: %s",
                         strerror(errno));
    static const uint16_t events[] = {SCTP_ASSOC_CHANGE,     SCTP_STREAM_RESET_EVENT,
                                      SCTP_SENDER_DRY_EVENT, SCTP_STREAM_CHANGE_EVENT,
                                      SCTP_SEND_FAILED_EVENT, SCTP_PARTIAL_DELIVERY_EVENT};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        struct sctp_event ev;
        memset(&ev, 0, sizeof ev);
        ev.se_assoc_id = SCTP_FUTURE_ASSOC;
        ev.se_type = events[i];
        ev.se_on = 1;
        if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_EVENT, &ev, (socklen_t)sizeof ev) < 0)
            return el_seterr(err, errlen, EL_ERR_IO, "usrsctp SCTP_EVENT %u: %s", events[i],
                             strerror(errno));
    }
    /* timers, retransmission limit and SACK delay: see sctp.h */
    struct sctp_rtoinfo rto = {.srto_assoc_id = SCTP_FUTURE_ASSOC,
                               .srto_initial = EL_SCTP_RTO_INITIAL_MS,
                               .srto_max = EL_SCTP_RTO_MAX_MS,
                               .srto_min = EL_SCTP_RTO_MIN_MS};
    struct sctp_assocparams ap = {.sasoc_assoc_id = SCTP_FUTURE_ASSOC,
                                  .sasoc_asocmaxrxt = EL_SCTP_MAX_RETRANSMITS};
    struct sctp_sack_info sack = {.sack_assoc_id = SCTP_FUTURE_ASSOC,
                                  .sack_delay = EL_SCTP_SACK_DELAY_MS,
                                  .sack_freq = 2}; /* RFC 4960 6.2: every second packet */
    int rc;
    if ((rc = set_sctp_opt(so, SCTP_RTOINFO, "SCTP_RTOINFO", &rto, sizeof rto, err, errlen)) ||
        (rc = set_sctp_opt(so, SCTP_ASSOCINFO, "SCTP_ASSOCINFO", &ap, sizeof ap, err, errlen)) ||
        (rc = set_sctp_opt(so, SCTP_DELAYED_SACK, "SCTP_DELAYED_SACK", &sack, sizeof sack, err,
                           errlen)))
        return rc;
    struct sctp_initmsg im;
    memset(&im, 0, sizeof im);
    im.sinit_num_ostreams = EL_SCTP_STREAMS;
    /* the INIT's own timer, capped like the others */
    im.sinit_max_init_timeo = EL_SCTP_RTO_MAX_MS;
    /* usrsctp allocates min(peer's OS, this) incoming streams; the high cap
     * matches WebRTC peers (65535) and lets an el_sctp peer add streams */
    im.sinit_max_instreams = 65535;
    if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_INITMSG, &im, (socklen_t)sizeof im) < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "usrsctp SCTP_INITMSG: %s", strerror(errno));
    struct sockaddr_conn sc = conn_addr(s);
    if (usrsctp_bind(so, (struct sockaddr *)&sc, (socklen_t)sizeof sc) < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "usrsctp bind: %s", strerror(errno));
    return EL_OK;
}

static void set_peer(el_sctp *s, int dtls_client, size_t remote_max_message_size)
{
    s->dtls_client = dtls_client != 0;
    s->remote_max = remote_max_message_size == 0 || remote_max_message_size > EL_SCTP_SNDBUF
                        ? EL_SCTP_SNDBUF : remote_max_message_size;
}

int el_sctp_set_peer(el_sctp *s, int dtls_client, size_t remote_max_message_size)
{
    if (!s || s->connected)
        return EL_ERR_INVALID;
    set_peer(s, dtls_client, remote_max_message_size);
    return EL_OK;
}

el_sctp *el_sctp_new(int dtls_client, size_t remote_max_message_size, const el_sctp_callbacks *cb,
                     void *user, char *err, size_t errlen)
{
    if (!cb || !cb->send) {
        el_seterr(err, errlen, EL_ERR_INVALID, "el_sctp_new: a send callback is required");
        return NULL;
    }
    el_sctp *s = calloc(1, sizeof *s);
    if (s)
        s->rbuf = malloc(RECV_CHUNK);
    if (!s || !s->rbuf) {
        free(s);
        el_seterr(err, errlen, EL_ERR_NOMEM, "el_sctp_new: out of memory");
        return NULL;
    }
    s->oom_sid = -1;
    set_peer(s, dtls_client, remote_max_message_size);
    s->cb = *cb;
    s->user = user;
    lib_ref();
    if (reg_add(s) != EL_OK) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "el_sctp_new: out of memory");
        destroy(s);
        return NULL;
    }
    usrsctp_register_address(id_addr(s->id));
    s->sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
    if (!s->sock) {
        el_seterr(err, errlen, EL_ERR_IO, "usrsctp_socket: %s", strerror(errno));
        destroy(s);
        return NULL;
    }
    if (configure(s, err, errlen) != EL_OK) {
        destroy(s);
        return NULL;
    }
    return s;
}

int el_sctp_connect(el_sctp *s)
{
    if (s->connected)
        return EL_ERR_INVALID;
    if (s->dead)
        return EL_ERR_IO;
    struct sockaddr_conn sc = conn_addr(s);
    s->connected = true;
    enter(s);
    int rc = EL_OK;
    if (usrsctp_connect(s->sock, (struct sockaddr *)&sc, (socklen_t)sizeof sc) < 0 &&
        errno != EINPROGRESS) {
        EL_WARN("sctp %u: connect: %s", s->id, strerror(errno));
        rc = EL_ERR_IO;
    } else {
        /* fixed path MTU (set after connect: it needs the peer address) */
        struct sctp_paddrparams pp;
        memset(&pp, 0, sizeof pp);
        memcpy(&pp.spp_address, &sc, sizeof sc);
        pp.spp_flags = SPP_PMTUD_DISABLE | SPP_HB_ENABLE;
        pp.spp_hbinterval = EL_SCTP_HB_INTERVAL_MS;
        pp.spp_pathmaxrxt = EL_SCTP_MAX_RETRANSMITS;
        /* for AF_CONN usrsctp counts the path MTU after the common header */
        pp.spp_pathmtu = EL_SCTP_MTU - (uint32_t)sizeof(struct sctp_common_header);
        if (usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp,
                               (socklen_t)sizeof pp) < 0)
            EL_WARN("sctp %u: SCTP_PEER_ADDR_PARAMS: %s", s->id, strerror(errno));
    }
    s->pending = true;
    leave(s);
    return rc;
}

int el_sctp_input(el_sctp *s, const uint8_t *pkt, size_t len)
{
    if (!s->connected || !pkt || !len)
        return EL_ERR_INVALID;
    enter(s);
    if (!s->dead && !s->free_pending)
        usrsctp_conninput(id_addr(s->id), pkt, len, 0);
    s->pending = true;
    process(s);
    leave(s);
    return EL_OK;
}

int el_sctp_open_channel(el_sctp *s, const char *label, const char *protocol, int ordered,
                         int max_retransmits, int max_lifetime_ms, int negotiated_id,
                         uint16_t *sid_out)
{
    if (s->dead)
        return EL_ERR_IO;
    if (!label)
        label = "";
    if (!protocol)
        protocol = "";
    size_t llen = strlen(label), plen = strlen(protocol);
    if (llen > 65535 || plen > 65535 || (max_retransmits >= 0 && max_lifetime_ms >= 0) ||
        negotiated_id > EL_DCEP_MAX_STREAM_ID)
        return EL_ERR_INVALID;
    el_dcep_channel_type type = max_retransmits >= 0   ? EL_DCEP_PARTIAL_RELIABLE_REXMIT
                                : max_lifetime_ms >= 0 ? EL_DCEP_PARTIAL_RELIABLE_TIMED
                                                       : EL_DCEP_RELIABLE;
    if (!ordered)
        type = (el_dcep_channel_type)(type | EL_DCEP_UNORDERED_BIT);
    uint32_t rel = max_retransmits >= 0 ? (uint32_t)max_retransmits
                   : max_lifetime_ms >= 0 ? (uint32_t)max_lifetime_ms : 0;

    el_dcep_msg open;
    memset(&open, 0, sizeof open);
    open.type = EL_DCEP_MSG_OPEN;
    open.open.channel_type = type;
    open.open.priority = EL_DCEP_PRIORITY_NORMAL;
    open.open.reliability = rel;
    open.open.label = (const uint8_t *)label;
    open.open.label_len = (uint16_t)llen;
    open.open.protocol = (const uint8_t *)protocol;
    open.open.protocol_len = (uint16_t)plen;
    size_t olen = el_dcep_size(&open);
    uint8_t *obuf = malloc(olen);
    if (!obuf)
        return EL_ERR_NOMEM;
    int w = el_dcep_write(&open, obuf, olen); /* also checks UTF-8 */
    if (w < 0) {
        free(obuf);
        return w;
    }

    uint32_t sid;
    if (negotiated_id >= 0) {
        sid = (uint32_t)negotiated_id;
        if (chan_get(s, (uint16_t)sid)) {
            free(obuf);
            return EL_ERR_EXISTS;
        }
    } else {
        for (sid = el_dcep_first_stream_id(s->dtls_client); sid <= EL_DCEP_MAX_STREAM_ID; sid += 2)
            if (!chan_get(s, (uint16_t)sid))
                break;
        if (sid > EL_DCEP_MAX_STREAM_ID) {
            free(obuf);
            return EL_ERR_QUOTA;
        }
    }
    el_sctp_chan *c = chan_new(s, (uint16_t)sid, label, llen, protocol, plen);
    if (!c) {
        free(obuf);
        return EL_ERR_NOMEM;
    }
    c->type = type;
    c->reliability = rel;
    c->local = true;
    c->visible = true;
    c->state = CHAN_CONNECTING;
    EL_DEBUG("sctp %u: opening channel %u '%s'%s", s->id, sid, label,
             negotiated_id >= 0 ? " (negotiated)" : "");
    int rc = EL_OK;
    if (negotiated_id >= 0) {
        c->negotiated = true;
        c->peer_heard = true;
        c->need_announce = true;
        s->pending = true;
    } else {
        enter(s);
        rc = submit(s, c, EL_PPID_DCEP, true, obuf, (size_t)w, 0);
        if (rc != EL_OK) {
            chan_unlink(s, c);
            chan_destroy(s, c);
        }
        leave(s);
    }
    free(obuf);
    if (rc == EL_OK && sid_out)
        *sid_out = (uint16_t)sid;
    return rc;
}

int el_sctp_send_check(const el_sctp *s, uint16_t sid, size_t len)
{
    const el_sctp_chan *c = chan_get(s, sid);
    if (!c || !c->visible)
        return EL_ERR_NOT_FOUND;
    if (c->reset_wanted)
        return EL_ERR_INVALID;
    if (s->dead)
        return EL_ERR_IO;
    if (len > s->remote_max)
        return EL_ERR_TOO_LARGE;
    if (s->queued + (len ? len : 1) > EL_SCTP_MAX_QUEUED)
        return EL_ERR_QUOTA;
    return EL_OK;
}

int el_sctp_send(el_sctp *s, uint16_t sid, int binary, const uint8_t *data, size_t len)
{
    el_sctp_chan *c = chan_get(s, sid);
    if (!c || !c->visible)
        return EL_ERR_NOT_FOUND;
    if (c->reset_wanted || (len && !data))
        return EL_ERR_INVALID;
    if (s->dead)
        return EL_ERR_IO;
    if (len > s->remote_max)
        return EL_ERR_TOO_LARGE;
    static const uint8_t zero[1] = {0}; /* RFC 8831 §6.6: an empty message is one byte */
    enter(s);
    int rc = submit(s, c, el_dcep_ppid_for(binary != 0, len), false, len ? data : zero,
                    len ? len : 1, len);
    leave(s);
    return rc;
}

size_t el_sctp_buffered(const el_sctp *s, uint16_t sid)
{
    const el_sctp_chan *c = chan_get(s, sid);
    return c ? c->buffered : 0;
}

void el_sctp_set_buffered_low(el_sctp *s, uint16_t sid, size_t threshold)
{
    el_sctp_chan *c = chan_get(s, sid);
    if (c)
        c->low = threshold;
}

int el_sctp_close_channel(el_sctp *s, uint16_t sid)
{
    el_sctp_chan *c = chan_get(s, sid);
    if (!c || !c->visible)
        return EL_ERR_NOT_FOUND;
    chan_close(s, c);
    return EL_OK;
}

static void destroy(el_sctp *s)
{
    s->free_pending = s->destroying = true;
    if (s->sock) /* SO_LINGER 0: sends an ABORT if the association exists */
        usrsctp_close(s->sock);
    if (s->id) {
        reg_remove(s->id); /* from here on conn_output and the upcall find nothing */
        usrsctp_deregister_address(id_addr(s->id));
    }
    while (s->chans) {
        el_sctp_chan *c = s->chans;
        s->chans = c->next;
        chan_destroy(s, c);
    }
    while (s->partials)
        partial_drop(s, s->partials->sid);
    for (size_t i = 0; i < PAGES; i++)
        free(s->pages[i]);
    free(s->rbuf);
    free(s);
    g_sctp.refs--;
    lib_try_finish();
}

void el_sctp_free(el_sctp *s)
{
    if (!s)
        return;
    if (s->depth > 0 || g_sctp.in_timers) {
        s->free_pending = true; /* destroyed by the outermost leave() or the tick */
        return;
    }
    destroy(s);
}

void el_sctp_tick(uint32_t elapsed_ms)
{
    if (!g_sctp.inited)
        return;
    if (!g_sctp.in_timers) {
        g_sctp.in_timers = true;
        usrsctp_handle_timers(elapsed_ms);
        g_sctp.in_timers = false;
    }
    /* service every association; ids, because callbacks may free any of them */
    size_t n = g_sctp.n;
    uint32_t small[32];
    uint32_t *ids = n <= 32 ? small : malloc(n * sizeof *ids);
    if (ids) {
        for (size_t i = 0; i < n; i++)
            ids[i] = g_sctp.v[i].id;
        for (size_t i = 0; i < n; i++) {
            el_sctp *s = reg_find(ids[i]);
            if (!s)
                continue;
            enter(s);
            s->pending = true;
            process(s);
            leave(s);
        }
        if (ids != small)
            free(ids);
    }
    if (!g_sctp.refs)
        lib_try_finish();
}
