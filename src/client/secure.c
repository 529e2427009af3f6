/* secure.c - the E2EE session of one peer connection; see secure.h. */
#include "client/secure.h"

#include "base/err.h"
#include "base/log.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HS_BUF 512                  /* larger than any handshake message */
#define DEFAULT_TIMEOUT_MS 10000    /* §9 */
#define CHAT_LABEL "chat"

#define HELD_MAX_BYTES (4u << 20) /* chat kept while a key change is pending */
#define EARLY_MAX_BYTES (1u << 20) /* file frames that overtook the handshake's end */

typedef struct held_msg {
    struct held_msg *next;
    el_channel *ch; /* chat or a file channel (channels live as long as the peer) */
    size_t len;
    uint8_t data[];
} held_msg;

/* Appends a copy of data for ch to a list whose bytes are capped at max
 * (*bytes counts them); false, nothing kept, past the cap or out of memory. */
static bool msg_append(held_msg **head, held_msg **tail, size_t *bytes, size_t max,
                       el_channel *ch, const uint8_t *data, size_t len)
{
    held_msg *m = *bytes + len <= max ? malloc(sizeof *m + len) : NULL;
    if (!m)
        return false;
    m->next = NULL;
    m->ch = ch;
    m->len = len;
    memcpy(m->data, data, len);
    if (*tail)
        (*tail)->next = m;
    else
        *head = m;
    *tail = m;
    *bytes += len;
    return true;
}

typedef struct sec_chan {
    el_channel *ch;
    el_secure *s;
    el_fcipher *tx, *rx;
    int is_chat;
    int pending;        /* opened before the handshake finished: keyed then */
    struct sec_chan *next;
} sec_chan;

struct el_secure {
    GMainContext *ctx;
    el_peer *pc;
    const el_identity *self;
    char expect[EL_PEER_ID_LEN + 1];
    int initiator;
    el_secure_callbacks cb;
    void *user;

    el_hs *hs;
    int ready, failed;
    el_trust *trust;
    el_trust_state trust_state;
    int held;           /* handshake done, key change pending the user */
    held_msg *held_head, *held_tail;
    size_t held_bytes;
    held_msg *early_head, *early_tail; /* ciphertext, for a channel not keyed yet */
    size_t early_bytes;
    GSource *timer;
    unsigned timeout_ms;
    sec_chan *chans;
    GHashTable *labels; /* every label keyed in this session (§9.2: once) */
    el_secure_stats stats;

    uint8_t *scratch;   /* frame or plaintext buffer, grown on demand */
    size_t scratch_cap;
};

static const el_channel_callbacks chan_cbs;

el_secure *el_secure_new(GMainContext *ctx, el_peer *pc, const el_identity *self,
                         const char *expected_peer_id, int initiator,
                         const el_secure_callbacks *cb, void *user, char *err, size_t errlen)
{
    if (!pc || !self || !cb || !el_id_valid_peer_id(expected_peer_id)) {
        el_seterr(err, errlen, EL_ERR_INVALID, "el_secure_new: bad argument");
        return NULL;
    }
    el_secure *s = calloc(1, sizeof *s);
    if (!s) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->ctx = ctx;
    s->pc = pc;
    s->self = self;
    memcpy(s->expect, expected_peer_id, EL_PEER_ID_LEN + 1);
    s->initiator = initiator ? 1 : 0;
    s->cb = *cb;
    s->user = user;
    s->timeout_ms = DEFAULT_TIMEOUT_MS;
    s->labels = g_hash_table_new_full(g_str_hash, g_str_equal, free, NULL);
    return s;
}

void el_secure_set_timeout(el_secure *s, unsigned ms)
{
    s->timeout_ms = ms;
}

static sec_chan *find_chan(el_secure *s, el_channel *ch)
{
    for (sec_chan *c = s->chans; c; c = c->next)
        if (c->ch == ch)
            return c;
    return NULL;
}

static int ensure_scratch(el_secure *s, size_t n)
{
    if (n <= s->scratch_cap)
        return 0;
    uint8_t *p = realloc(s->scratch, n);
    if (!p)
        return EL_ERR_NOMEM;
    s->scratch = p;
    s->scratch_cap = n;
    return 0;
}

int el_secure_add_channel(el_secure *s, el_channel *ch)
{
    if (!s || !ch)
        return EL_ERR_INVALID;
    if (find_chan(s, ch))
        return 0;
    sec_chan *c = calloc(1, sizeof *c);
    if (!c)
        return EL_ERR_NOMEM;
    c->ch = ch;
    c->s = s;
    c->next = s->chans;
    s->chans = c;
    el_channel_set_callbacks(ch, &chan_cbs, c);
    if (el_channel_get_state(ch) == EL_CHANNEL_OPEN)
        chan_cbs.on_open(ch, c);
    return 0;
}

/* ---- handshake ------------------------------------------------------------ */

static void stop_timer(el_secure *s)
{
    if (s->timer) {
        g_source_destroy(s->timer);
        g_source_unref(s->timer);
        s->timer = NULL;
    }
}

static sec_chan *chat_chan(el_secure *s)
{
    for (sec_chan *c = s->chans; c; c = c->next)
        if (c->is_chat)
            return c;
    return NULL;
}

static void fail(el_secure *s, const uint8_t *abort_msg, size_t abort_len)
{
    if (s->failed)
        return;
    s->failed = 1;
    stop_timer(s);
    sec_chan *chat = chat_chan(s);
    if (abort_len && chat)
        (void)el_channel_send_binary(chat->ch, abort_msg, abort_len);
    el_hs_fail why = s->hs ? el_hs_failure(s->hs) : EL_HS_FAIL_MALFORMED;
    const char *text = s->hs ? el_hs_error(s->hs) : "handshake could not start";
    EL_WARN("e2ee: handshake with %s failed: %s", s->expect, text);
    if (s->cb.on_failed)
        s->cb.on_failed(s, why, text, s->user);
}

/* Derives both ciphers of a channel from the finished handshake; each label
 * only once per session. */
static int key_channel(el_secure *s, sec_chan *c)
{
    const char *label = el_channel_label(c->ch);
    if (!el_hs_valid_label(label) || g_hash_table_contains(s->labels, label)) {
        s->stats.bad_label++;
        EL_WARN("e2ee: closing channel with a bad or reused label");
        return EL_ERR_INVALID;
    }
    int rc = el_hs_channel(s->hs, label, &c->tx, &c->rx);
    if (rc != 0)
        return rc;
    char *dup = strdup(label);
    if (!dup)
        return EL_ERR_NOMEM;
    g_hash_table_add(s->labels, dup);
    return 0;
}

static void take_early(el_secure *s, sec_chan *c);

/* A second "chat", a bad or reused label: closed (§9.2). */
static void open_keyed(el_secure *s, sec_chan *c)
{
    if (!c->rx && key_channel(s, c) != 0) { /* keyed already if it spoke while held */
        el_channel_close(c->ch);
        return;
    }
    if (s->cb.on_channel_open)
        s->cb.on_channel_open(s, c->ch, s->user);
    take_early(s, c);
}

/* §10.2: a changed bundle holds the session until the user decides. */
static int check_trust(el_secure *s)
{
    char err[160];
    el_trust_entry pin;
    if (!s->trust)
        return 0;
    if (el_trust_check(s->trust, s->expect, el_hs_remote_bundle(s->hs), &s->trust_state, err,
                       sizeof err) != 0) {
        EL_ERROR("e2ee: trust store: %s", err);
        return -1;
    }
    if (s->trust_state != EL_TRUST_CHANGED)
        return 0;
    EL_WARN("e2ee: KEY CHANGE: %s presents a different key bundle than the one pinned; "
            "nothing is sent until the user accepts it (compare safety numbers)", s->expect);
    s->held = 1;
    if (s->cb.on_key_changed &&
        el_trust_get(s->trust, s->expect, &pin, err, sizeof err) == 0)
        s->cb.on_key_changed(s, &pin.pinned, el_hs_remote_bundle(s->hs), s->user);
    return 1;
}

static void fail_local(el_secure *s, const char *why)
{
    s->failed = 1;
    s->held = 0;
    if (s->cb.on_failed)
        s->cb.on_failed(s, EL_HS_FAIL_MALFORMED, why, s->user);
}

/* Delivers what arrived on chat while a key change was pending. */
static void free_msgs(held_msg *m)
{
    while (m) {
        held_msg *next = m->next;
        OPENSSL_cleanse(m->data, m->len);
        free(m);
        m = next;
    }
}

static void release_held(el_secure *s)
{
    held_msg *m = s->held_head;
    s->held_head = s->held_tail = NULL;
    s->held_bytes = 0;
    while (m) {
        held_msg *next = m->next;
        if (s->ready && s->cb.on_plaintext && el_channel_get_state(m->ch) != EL_CHANNEL_CLOSED)
            s->cb.on_plaintext(s, m->ch, m->data, m->len, s->user);
        OPENSSL_cleanse(m->data, m->len);
        free(m);
        m = next;
    }
}

/* The handshake is done: key chat (the peer may already be sending), then
 * the trust decision, then the application. Called again by
 * el_secure_accept_key_change. */
static void become_ready(el_secure *s)
{
    stop_timer(s);
    sec_chan *chat = chat_chan(s);
    if (!chat || (!chat->rx && key_channel(s, chat) != 0)) {
        fail_local(s, "cannot key the chat channel");
        return;
    }
    int t = s->held ? 0 : check_trust(s);
    if (t < 0)
        fail_local(s, "trust store error");
    if (t != 0)
        return;
    s->held = 0;
    s->ready = 1;
    EL_INFO("e2ee: session with %s established", el_secure_remote_peer_id(s));
    if (s->cb.on_ready)
        s->cb.on_ready(s, s->user);
    /* channels first, so that what was held on them arrives on open ones */
    for (sec_chan *c = s->chans; c && s->ready; c = c->next)
        if (c->pending) {
            c->pending = 0;
            open_keyed(s, c);
        }
    release_held(s);
}

static gboolean on_timeout(gpointer data)
{
    el_secure *s = data;
    uint8_t out[HS_BUF];
    size_t n = 0;
    g_source_unref(s->timer);
    s->timer = NULL;
    if (s->hs && !s->ready && !s->failed) {
        (void)el_hs_timeout(s->hs, out, sizeof out, &n);
        fail(s, out, n);
    }
    return G_SOURCE_REMOVE;
}

static void start_handshake(el_secure *s, sec_chan *chat)
{
    uint8_t fp_local[32], fp_remote[32];
    if (s->hs || s->failed)
        return;
    if (el_peer_get_fingerprints(s->pc, fp_local, fp_remote) != 0) {
        fail(s, NULL, 0);
        return;
    }
    const uint8_t *fp_i = s->initiator ? fp_local : fp_remote;
    const uint8_t *fp_r = s->initiator ? fp_remote : fp_local;
    if (el_hs_new(&s->hs, s->initiator ? EL_HS_INITIATOR : EL_HS_RESPONDER, s->self, s->expect,
                  fp_i, fp_r) != 0) {
        fail(s, NULL, 0);
        return;
    }
    s->timer = g_timeout_source_new(s->timeout_ms);
    g_source_set_callback(s->timer, on_timeout, s, NULL);
    g_source_attach(s->timer, s->ctx);
    if (s->initiator) {
        uint8_t out[HS_BUF];
        size_t n = 0;
        if (el_hs_start(s->hs, out, sizeof out, &n) != 0) {
            fail(s, NULL, 0);
            return;
        }
        if (el_channel_send_binary(chat->ch, out, n) != 0)
            fail(s, NULL, 0);
    }
}

/* SCTP orders a channel only against itself: the initiator's first file
 * frames can overtake HS3 on chat (a lost packet is enough). They are kept,
 * still sealed, and opened once the channel is keyed (take_early). */
static void keep_early(el_secure *s, sec_chan *c, const uint8_t *data, size_t len)
{
    if (!msg_append(&s->early_head, &s->early_tail, &s->early_bytes, EARLY_MAX_BYTES, c->ch, data,
                    len))
        s->stats.early++;
}

static void handshake_input(el_secure *s, sec_chan *c, const uint8_t *data, size_t len)
{
    uint8_t out[HS_BUF];
    size_t n = 0;
    if (!c->is_chat && s->hs && c->pending) {
        keep_early(s, c, data, len);
        return;
    }
    if (!c->is_chat || !s->hs) {
        s->stats.early++;
        return;
    }
    if (el_hs_recv(s->hs, data, len, out, sizeof out, &n) != 0) {
        fail(s, out, n);
        return;
    }
    if (n && el_channel_send_binary(c->ch, out, n) != 0) {
        fail(s, NULL, 0);
        return;
    }
    if (el_hs_is_done(s->hs))
        become_ready(s);
}

/* The responder checks the initiator only in HS3, after which the initiator
 * already counts itself ready: a refusal then arrives as an ABORT, which
 * el_hs turns into the handshake's failure (and its text). */
static void late_abort(el_secure *s, const uint8_t *data, size_t len)
{
    uint8_t out[HS_BUF];
    size_t n = 0;
    (void)el_hs_recv(s->hs, data, len, out, sizeof out, &n);
    s->ready = 0;
    s->held = 0;
    release_held(s); /* a refused session delivers nothing */
    fail(s, NULL, 0);
}

/* While the user decides on a key change, frames are opened (so the
 * counters stay in step with the sender) and kept, not delivered: on chat,
 * and on a file channel the remote opened meanwhile, which is keyed here
 * for that (it is announced to the application only after the accept). */
static void hold_input(el_secure *s, sec_chan *c, const uint8_t *data, size_t len)
{
    size_t n = 0;
    if (!c->rx) {
        if (!c->pending || key_channel(s, c) != 0) {
            s->stats.early++;
            return;
        }
        take_early(s, c); /* they come first in the channel's order */
    }
    if (ensure_scratch(s, len) != 0 ||
        el_fcipher_open(c->rx, data, len, s->scratch, s->scratch_cap, &n) != 0)
        return;
    if (!msg_append(&s->held_head, &s->held_tail, &s->held_bytes, HELD_MAX_BYTES, c->ch, s->scratch,
                    n)) {
        s->stats.early++;
        EL_WARN("e2ee: dropping a message from %s: key change still pending", s->expect);
    }
}

/* A frame on a keyed channel of a ready session: opened and delivered. */
static void deliver_frame(el_secure *s, sec_chan *c, const uint8_t *data, size_t len)
{
    if (!c->rx) {
        s->stats.early++;
        return;
    }
    if (ensure_scratch(s, len) != 0)
        return;
    size_t n = 0;
    if (el_fcipher_open(c->rx, data, len, s->scratch, s->scratch_cap, &n) != 0)
        return; /* counted by the cipher */
    if (s->cb.on_plaintext)
        s->cb.on_plaintext(s, c->ch, s->scratch, n, s->user);
}

/* The frames kept for c before it was keyed, in order: delivered, or held
 * with the chat while a key change waits for the user. */
static void take_early(el_secure *s, sec_chan *c)
{
    held_msg **pp = &s->early_head, *prev = NULL;
    while (*pp) {
        held_msg *m = *pp;
        if (m->ch != c->ch) {
            prev = m;
            pp = &m->next;
            continue;
        }
        *pp = m->next;
        if (s->early_tail == m)
            s->early_tail = prev;
        s->early_bytes -= m->len;
        m->next = NULL;
        if (s->held)
            hold_input(s, c, m->data, m->len);
        else if (s->ready)
            deliver_frame(s, c, m->data, m->len);
        free_msgs(m);
    }
}

/* ---- channel callbacks ---------------------------------------------------- */

static void sc_open(el_channel *ch, void *user)
{
    sec_chan *c = user;
    el_secure *s = c->s;
    if (c->is_chat || c->pending || c->rx)
        return; /* el_secure_add_channel already saw it open */
    if (!strcmp(el_channel_label(ch), CHAT_LABEL) && !chat_chan(s)) {
        c->is_chat = 1;
        start_handshake(s, c);
        return;
    }
    /* SCTP does not order a file channel's DCEP open against HS3 on chat,
     * so a channel may open just before we are ready: key it then. */
    if (!s->ready) {
        c->pending = !s->failed;
        if (s->failed)
            el_channel_close(ch);
        return;
    }
    open_keyed(s, c);
}

static void sc_message(el_channel *ch, int binary, const uint8_t *data, size_t len, void *user)
{
    sec_chan *c = user;
    el_secure *s = c->s;
    if (s->failed)
        return;
    if (!binary) {
        s->stats.text++;
        return;
    }
    if ((s->ready || s->held) && c->is_chat && len == EL_HS_ABORT_LEN && data[0] == EL_HS_ABORT) {
        late_abort(s, data, len);
        return;
    }
    if (s->held) {
        hold_input(s, c, data, len);
        return;
    }
    if (!s->ready) {
        handshake_input(s, c, data, len);
        return;
    }
    deliver_frame(s, c, data, len);
}

static void sc_close(el_channel *ch, void *user)
{
    sec_chan *c = user;
    if (c->s->cb.on_channel_close)
        c->s->cb.on_channel_close(c->s, ch, c->s->user);
}

static void sc_low(el_channel *ch, void *user)
{
    sec_chan *c = user;
    if (c->s->cb.on_buffered_low)
        c->s->cb.on_buffered_low(c->s, ch, c->s->user);
}

static const el_channel_callbacks chan_cbs = {sc_open, sc_message, sc_close, sc_low};

/* ---- application side ----------------------------------------------------- */

el_channel *el_secure_open_channel(el_secure *s, char *err, size_t errlen)
{
    uint8_t rnd[16];
    char label[2 + 32 + 1] = "f:";
    if (!s->ready || s->failed) {
        el_seterr(err, errlen, EL_ERR_STATE, "the E2EE session is not established");
        return NULL;
    }
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        el_seterr(err, errlen, EL_ERR_CRYPTO, "RAND_bytes failed");
        return NULL;
    }
    for (int i = 0; i < 16; i++)
        snprintf(label + 2 + 2 * i, 3, "%02x", rnd[i]);
    el_channel *ch = el_peer_create_channel(s->pc, label, NULL, err, errlen);
    if (ch && el_secure_add_channel(s, ch) != 0) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        el_channel_close(ch);
        return NULL;
    }
    return ch;
}

int el_secure_send(el_secure *s, el_channel *ch, const uint8_t *pt, size_t len)
{
    sec_chan *c = s ? find_chan(s, ch) : NULL;
    if (!c || !s->ready || s->failed || !c->tx)
        return EL_ERR_STATE;
    if (len > EL_FRAME_MAX - EL_FRAME_OVERHEAD)
        return EL_ERR_TOO_LARGE;
    /* Sealing spends the channel's next frame counter, and the receiver
     * takes only the next one: a frame sealed but not sent would leave a
     * gap that drops every later frame. So the channel must take it first
     * (a full queue is the usual refusal: the caller retries later). */
    int rc = el_channel_send_check(ch, len + EL_FRAME_OVERHEAD);
    if (rc != 0)
        return rc;
    rc = ensure_scratch(s, len + EL_FRAME_OVERHEAD);
    if (rc != 0)
        return rc;
    size_t n = 0;
    rc = el_fcipher_seal(c->tx, pt, len, s->scratch, s->scratch_cap, &n);
    if (rc != 0)
        return rc;
    rc = el_channel_send_binary(ch, s->scratch, n);
    if (rc != 0) {
        /* out of memory, or the connection went: the gap is there, so the
         * channel goes too, visibly, rather than drop what follows */
        EL_WARN("e2ee: a sealed frame could not be sent (%s): closing channel %s",
                el_strerror(rc), el_channel_label(ch));
        el_channel_close(ch);
    }
    return rc;
}

void el_secure_set_trust(el_secure *s, el_trust *trust)
{
    s->trust = trust;
}

el_trust_state el_secure_trust_state(const el_secure *s)
{
    return s->trust_state;
}

int el_secure_accept_key_change(el_secure *s, char *err, size_t errlen)
{
    if (!s || !s->held || s->failed)
        return el_seterr(err, errlen, EL_ERR_STATE, "no key change is pending");
    int rc = el_trust_accept_change(s->trust, s->expect, el_hs_remote_bundle(s->hs), err, errlen);
    if (rc != 0)
        return rc;
    s->trust_state = EL_TRUST_KNOWN;
    become_ready(s);
    return 0;
}

int el_secure_is_ready(const el_secure *s)
{
    return s && s->ready;
}

const el_id_bundle *el_secure_remote_bundle(const el_secure *s)
{
    return s && s->ready ? el_hs_remote_bundle(s->hs) : NULL;
}

const char *el_secure_remote_peer_id(const el_secure *s)
{
    return s && s->ready ? s->expect : NULL;
}

void el_secure_get_stats(const el_secure *s, el_secure_stats *out)
{
    *out = s->stats;
    for (sec_chan *c = s->chans; c; c = c->next) {
        if (!c->rx)
            continue;
        const el_fcipher_stats *f = el_fcipher_stats_get(c->rx);
        out->frames.truncated += f->truncated;
        out->frames.replay += f->replay;
        out->frames.reorder += f->reorder;
        out->frames.auth += f->auth;
    }
}

void el_secure_free(el_secure *s)
{
    if (!s)
        return;
    stop_timer(s);
    s->ready = 0;
    release_held(s); /* not delivered: just freed */
    free_msgs(s->early_head);
    sec_chan *c = s->chans;
    while (c) {
        sec_chan *next = c->next;
        el_channel_set_callbacks(c->ch, NULL, NULL);
        el_fcipher_free(c->tx);
        el_fcipher_free(c->rx);
        free(c);
        c = next;
    }
    el_hs_free(s->hs);
    g_hash_table_destroy(s->labels);
    if (s->scratch)
        OPENSSL_cleanse(s->scratch, s->scratch_cap);
    free(s->scratch);
    free(s);
}
