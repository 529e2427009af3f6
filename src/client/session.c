/* session.c - the session layer: signaling, presence, one link per peer,
 * the outbox and its delivery (data channel or sealed envelope), and the
 * messages that are not files or groups (see session.h). */
#include "client/session_int.h"

#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/safety.h"
#include "crypto/seal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENVELOPE_PT_MAX (36864 - 194 + 1) /* §10.3: what fits a sealed envelope */
#define ENVELOPE_TTL_S (7 * 24 * 3600)

/* ---- small helpers ---------------------------------------------------------- */

static void deliver(el_session *s, json_t *ev)
{
    if (s->cb)
        s->cb(s, ev, s->user);
    json_decref(ev);
}

/* Inside a transaction an event waits for the commit: a message shown to
 * the user and then rolled back (SQLITE_FULL at COMMIT) would be shown a
 * second time when the sender sends it again. */
void sess_emit(el_session *s, json_t *ev)
{
    if (!ev)
        return;
    if (s->tx_depth > 0 && s->tx_events)
        g_ptr_array_add(s->tx_events, ev);
    else
        deliver(s, ev);
}

/* Emits (committed) or drops (rolled back) what the transaction queued. */
static void tx_events_done(el_session *s, int committed)
{
    if (!s->tx_events || s->tx_events->len == 0)
        return;
    GPtrArray *evs = s->tx_events;
    s->tx_events = g_ptr_array_new(); /* a callback may open a transaction */
    for (guint i = 0; i < evs->len; i++) {
        if (committed)
            deliver(s, g_ptr_array_index(evs, i));
        else
            json_decref(g_ptr_array_index(evs, i));
    }
    g_ptr_array_free(evs, TRUE);
}

void sess_error(el_session *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    EL_WARN("session: %s", msg);
    /* at once, even inside a transaction that will roll back: it says why */
    json_t *ev = json_pack("{s:s, s:s}", "event", "error", "message", msg);
    if (ev)
        deliver(s, ev);
}

static int64_t now_ms(void)
{
    return (int64_t)el_msg_now_ms();
}

static char *msg_str(el_msg_str v)
{
    return g_strndup(v.p ? v.p : "", v.len);
}

int sess_parse_conv(const char *conv, char out[2 + EL_MSG_ID_SIZE + 1], int *is_group,
                    char id[EL_MSG_ID_SIZE], char *err, size_t errlen)
{
    if (!conv)
        return el_seterr(err, errlen, EL_ERR_INVALID, "no conversation given");
    const char *rest = conv;
    int group = 0;
    if (!strncmp(conv, "p:", 2)) {
        rest = conv + 2;
    } else if (!strncmp(conv, "g:", 2)) {
        rest = conv + 2;
        group = 1;
    }
    if (group ? !el_is_lower_hex(rest, strlen(rest)) || strlen(rest) != EL_MSG_ID_HEX
              : !el_id_valid_peer_id(rest))
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "\"%s\" is not a conversation (a peer ID, p:<peer ID> or g:<group id>)",
                         conv);
    snprintf(out, 2 + EL_MSG_ID_SIZE + 1, "%s%s", group ? "g:" : "p:", rest);
    snprintf(id, EL_MSG_ID_SIZE, "%s", rest);
    if (is_group)
        *is_group = group;
    return EL_OK;
}

/* The recipients of a conversation: the peer, or the other group members. */
static char **conv_recipients(el_session *s, const char *conv, char *err, size_t errlen)
{
    char norm[2 + EL_MSG_ID_SIZE + 1], id[EL_MSG_ID_SIZE];
    int group = 0;
    if (sess_parse_conv(conv, norm, &group, id, err, errlen) != 0)
        return NULL;
    if (!group) {
        if (!strcmp(id, s->self)) {
            el_seterr(err, errlen, EL_ERR_INVALID, "that is your own peer ID");
            return NULL;
        }
        char **v = g_new0(char *, 2);
        v[0] = g_strdup(id);
        return v;
    }
    char **v = sess_group_recipients(s, id);
    if (!v)
        el_seterr(err, errlen, EL_ERR_NOT_FOUND, "you are not a member of group %s", id);
    return v;
}

int sess_build(el_msg *m, uint8_t **pt, size_t *len, char *err, size_t errlen)
{
    if (!m->id[0] && el_msg_new_id(m->id) != 0)
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "no randomness for a message id");
    if (!m->ts)
        m->ts = (uint64_t)now_ms();
    return el_msg_encode(m, pt, len, err, errlen);
}

int sess_tx_begin(el_session *s, char *err, size_t errlen)
{
    if (s->tx_depth++ > 0)
        return EL_OK;
    s->tx_failed = 0;
    int rc = el_hist_begin(s->hist, err, errlen);
    if (rc != 0)
        s->tx_depth = 0;
    return rc;
}

int sess_tx_end(el_session *s, int ok, char *err, size_t errlen)
{
    if (!ok)
        s->tx_failed = 1;
    if (s->tx_depth == 0 || --s->tx_depth > 0)
        return ok ? EL_OK : EL_ERR_DB;
    if (s->tx_failed) {
        el_hist_rollback(s->hist);
        tx_events_done(s, 0);
        return el_seterr(err, errlen, EL_ERR_DB, "%s", err && *err ? err : "rolled back");
    }
    int rc = el_hist_commit(s->hist, err, errlen);
    tx_events_done(s, rc == EL_OK);
    return rc;
}

/* ---- peers ------------------------------------------------------------------ */

static void drop_src(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

static void peer_free(void *data)
{
    sess_peer *p = data;
    drop_src(&p->retransmit);
    el_link_free(p->link);
    if (p->receipt_timer) {
        g_source_destroy(p->receipt_timer);
        g_source_unref(p->receipt_timer);
    }
    g_ptr_array_free(p->receipts, TRUE);
    free(p->name);
    free(p);
}

static const el_link_callbacks link_cbs;

sess_peer *sess_peer_get(el_session *s, const char *peer_id)
{
    sess_peer *p = g_hash_table_lookup(s->peers, peer_id);
    if (p)
        return p;
    if (!el_id_valid_peer_id(peer_id) || !strcmp(peer_id, s->self))
        return NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->s = s;
    snprintf(p->peer_id, sizeof p->peer_id, "%s", peer_id);
    p->receipts = g_ptr_array_new_with_free_func(free);
    p->link = el_link_new(s->ctx, s->id, peer_id, &s->lcfg, &link_cbs, p);
    if (!p->link) {
        g_ptr_array_free(p->receipts, TRUE);
        free(p);
        return NULL;
    }
    g_hash_table_insert(s->peers, p->peer_id, p);
    return p;
}

int sess_has_work(el_session *s, sess_peer *p)
{
    return p->receipts->len > 0 || el_hist_outbox_count(s->hist, p->peer_id, NULL, 0) > 0 ||
           sess_file_unfinished(s, p);
}

/* ---- the outbox ---------------------------------------------------------------- */

typedef struct {
    int64_t seq;
    char msg_id[EL_MSG_ID_SIZE];
    uint8_t *bytes;
    size_t len;
    int enveloped;
} obrow;

static void row_free(void *data)
{
    obrow *r = data;
    free(r->bytes);
    free(r);
}

static int row_copy(const el_hist_outbox_item *it, void *user)
{
    GPtrArray *rows = user;
    obrow *r = calloc(1, sizeof *r);
    if (!r || !(r->bytes = malloc(it->len))) {
        free(r);
        return EL_ERR_NOMEM;
    }
    r->seq = it->seq;
    snprintf(r->msg_id, sizeof r->msg_id, "%s", it->msg_id);
    memcpy(r->bytes, it->bytes, it->len);
    r->len = it->len;
    r->enveloped = it->enveloped;
    g_ptr_array_add(rows, r);
    return 0;
}

/* `to`'s outbox rows after seq `after`, copied (history callbacks may not
 * write, and sending may). */
static GPtrArray *outbox_load(el_session *s, const char *to, int64_t after)
{
    GPtrArray *rows = g_ptr_array_new_with_free_func(row_free);
    char err[160];
    if (el_hist_outbox_list(s->hist, to, after, row_copy, rows, err, sizeof err) < 0)
        sess_error(s, "cannot read the outbox: %s", err);
    return rows;
}

/* via: "link" or "envelope" for "sent", NULL for receipts */
static void emit_status(el_session *s, const char *peer, const char *id, const char *status,
                        const char *via)
{
    sess_emit(s, json_pack("{s:s, s:s, s:s, s:s, s:s?}", "event", "status", "id", id, "peer", peer,
                           "status", status, "via", via));
}

/* Sends the rows the current connection has not carried yet, in order. */
static void flush_link(el_session *s, sess_peer *p)
{
    GPtrArray *rows = outbox_load(s, p->peer_id, p->flushed_seq);
    for (guint i = 0; i < rows->len; i++) {
        obrow *r = g_ptr_array_index(rows, i);
        int rc = el_link_send(p->link, NULL, r->bytes, r->len);
        if (rc != 0) {
            EL_WARN("session: sending to %.8s failed: %s (kept in the outbox)", p->peer_id,
                    el_strerror(rc));
            break;
        }
        p->flushed_seq = r->seq;
        el_hist_outbox_attempt(s->hist, r->seq, NULL, 0);
        emit_status(s, p->peer_id, r->msg_id, "sent", "link");
    }
    g_ptr_array_free(rows, TRUE);
}

/* The bundle a sealed envelope to `p` is sealed to: the pinned one, else
 * the one the server announced (trust on first use starts at the first
 * connection; see docs/PROTOCOL.md §12). */
static const el_id_bundle *seal_bundle(el_session *s, sess_peer *p, el_trust_entry *e)
{
    int rc = s->trust ? el_trust_get(s->trust, p->peer_id, e, NULL, 0) : EL_ERR_NOT_FOUND;
    if (rc == 0) {
        if (e->state == EL_TRUST_CHANGED)
            return NULL; /* the user decides first */
        return &e->pinned;
    }
    if (rc != EL_ERR_NOT_FOUND)
        return NULL; /* the trust store failed: never fall back to an unpinned key */
    return p->has_bundle ? &p->bundle : NULL;
}

typedef struct {
    el_session *s;
    int64_t seq;
    char peer[EL_PEER_ID_LEN + 1];
    char msg_id[EL_MSG_ID_SIZE];
} env_ctx;

/* The server's answer to one envelope: only an "ok" marks the row as in the
 * offline queue; otherwise it is sealed again at the next flush. */
static void envelope_acked(el_signal *sig, el_signal_ack_status st, json_t *ack, void *user)
{
    env_ctx *c = user;
    (void)sig;
    if (st != EL_SIGNAL_ACK_CANCELLED)
        g_hash_table_remove(c->s->enveloping, &c->seq);
    if (st == EL_SIGNAL_ACK_OK && json_is_true(json_object_get(ack, "ok"))) {
        el_hist_outbox_mark_enveloped(c->s->hist, c->seq, NULL, 0);
        c->s->stats.envelopes_sent++;
        emit_status(c->s, c->peer, c->msg_id, "sent", "envelope");
    } else if (st != EL_SIGNAL_ACK_CANCELLED) {
        const char *e = st == EL_SIGNAL_ACK_OK ? json_string_value(json_object_get(ack, "error"))
                        : st == EL_SIGNAL_ACK_TIMEOUT ? "no answer"
                                                      : "disconnected";
        EL_WARN("session: envelope to %.8s not queued by the server: %s (kept in the outbox)",
                c->peer, e ? e : "?");
    }
    free(c);
}

static int send_envelope(el_session *s, sess_peer *p, const el_id_bundle *to,
                         const uint8_t *pt, size_t len, el_signal_ack_cb cb, void *user)
{
    size_t cap = len + 256, n = 0;
    uint8_t *env = malloc(cap);
    char *b64 = malloc(cap * 2);
    int rc = env && b64 ? el_seal(s->id, to, pt, len, env, cap, &n) : EL_ERR_NOMEM;
    if (rc == 0) {
        ssize_t k = el_b64url_encode(env, n, b64, cap * 2);
        json_t *arg = json_pack("{s:s, s:s%, s:i}", "to", p->peer_id, "envelope", b64,
                                (size_t)(k > 0 ? k : 0), "ttl", ENVELOPE_TTL_S);
        rc = k > 0 ? el_signal_emit(s->sig, "envelope_send", arg, 0, cb, user) : EL_ERR_INVALID;
        json_decref(arg);
    }
    free(env);
    free(b64);
    return rc;
}

/* Seals every row not yet in the server's offline queue. */
static void flush_envelopes(el_session *s, sess_peer *p)
{
    el_trust_entry e;
    const el_id_bundle *to = seal_bundle(s, p, &e);
    if (!to)
        return;
    GPtrArray *rows = outbox_load(s, p->peer_id, 0);
    for (guint i = 0; i < rows->len; i++) {
        obrow *r = g_ptr_array_index(rows, i);
        if (r->enveloped || r->len > ENVELOPE_PT_MAX ||
            g_hash_table_contains(s->enveloping, &r->seq))
            continue; /* queued already, in flight, or too big to seal (waits for a link) */
        env_ctx *c = calloc(1, sizeof *c);
        if (!c)
            break;
        *c = (env_ctx){s, r->seq, "", ""};
        snprintf(c->peer, sizeof c->peer, "%s", p->peer_id);
        snprintf(c->msg_id, sizeof c->msg_id, "%s", r->msg_id);
        int rc = send_envelope(s, p, to, r->bytes, r->len, envelope_acked, c);
        if (rc != 0) {
            free(c);
            EL_WARN("session: cannot send an envelope to %.8s: %s", p->peer_id, el_strerror(rc));
            break;
        }
        int64_t *key = g_new(int64_t, 1);
        *key = r->seq;
        g_hash_table_add(s->enveloping, key); /* no second copy before the ack */
    }
    g_ptr_array_free(rows, TRUE);
}

static void send_receipts(el_session *s, sess_peer *p);

void sess_flush(el_session *s, sess_peer *p)
{
    if (el_link_get_state(p->link) == EL_LINK_READY) {
        flush_link(s, p);
        send_receipts(s, p);
        return;
    }
    if (!s->logged_in)
        return; /* the next login flushes */
    if (p->online && !p->link_failed) {
        if (sess_has_work(s, p))
            el_link_connect(p->link);
    } else {
        if (p->online && sess_has_work(s, p))
            el_link_connect(p->link); /* the retry waits for its backoff */
        flush_envelopes(s, p);
        send_receipts(s, p);
    }
}

int sess_queue(el_session *s, const char *to, const el_msg *m, const uint8_t *pt, size_t len,
               char *err, size_t errlen)
{
    int rc = el_hist_outbox_add(s->hist, to, m->id, pt, len, now_ms(), NULL, err, errlen);
    if (rc != 0)
        return rc;
    sess_peer *p = sess_peer_get(s, to);
    if (p)
        sess_flush(s, p);
    return EL_OK;
}

int sess_send_now(el_session *s, sess_peer *p, const uint8_t *pt, size_t len)
{
    (void)s;
    return el_link_send(p->link, NULL, pt, len);
}

/* Encodes m once and queues it to every recipient. */
static int queue_all(el_session *s, char **to, el_msg *m, char *err, size_t errlen)
{
    uint8_t *pt = NULL;
    size_t len = 0;
    int rc = sess_build(m, &pt, &len, err, errlen);
    for (size_t i = 0; rc == 0 && to[i]; i++)
        rc = sess_queue(s, to[i], m, pt, len, err, errlen);
    free(pt);
    if (rc == 0)
        s->stats.sent++;
    return rc;
}

/* ---- receipts --------------------------------------------------------------------- */

static void send_receipts(el_session *s, sess_peer *p)
{
    if (p->receipts->len == 0)
        return;
    int ready = el_link_get_state(p->link) == EL_LINK_READY;
    el_trust_entry e;
    const el_id_bundle *to = ready ? NULL : seal_bundle(s, p, &e);
    if (!ready && ((p->online && !p->link_failed) || !to || !s->logged_in))
        return; /* sent when the connection is ready */
    while (p->receipts->len > 0) {
        el_msg m;
        el_msg_init(&m, EL_MSG_T_DELIVERY_RECEIPT);
        size_t n = 0;
        for (; n < p->receipts->len && n < EL_MSG_MAX_IDS; n++)
            snprintf(m.u.receipt.ids[n], EL_MSG_ID_SIZE, "%s",
                     (char *)g_ptr_array_index(p->receipts, n));
        m.u.receipt.n = n;
        uint8_t *pt = NULL;
        size_t len = 0;
        char err[160];
        int rc = sess_build(&m, &pt, &len, err, sizeof err);
        if (rc == 0)
            rc = ready ? el_link_send(p->link, NULL, pt, len)
                       : send_envelope(s, p, to, pt, len, NULL, NULL);
        free(pt);
        if (rc != 0) {
            EL_WARN("session: receipts to %.8s not sent: %s", p->peer_id, el_strerror(rc));
            return;
        }
        g_ptr_array_remove_range(p->receipts, 0, (guint)n);
    }
}

static gboolean receipt_timer_cb(gpointer data)
{
    sess_peer *p = data;
    g_source_unref(p->receipt_timer);
    p->receipt_timer = NULL;
    sess_flush(p->s, p);
    return G_SOURCE_REMOVE;
}

static void owe_receipt(el_session *s, sess_peer *p, const char *id)
{
    if (p->receipts->len >= 4096)
        return; /* the sender re-sends; it will be receipted then */
    g_ptr_array_add(p->receipts, strdup(id));
    if (!p->receipt_timer) {
        /* the first receipt of a burst goes at once; those that follow
         * within the window travel together when it closes */
        p->receipt_timer = g_timeout_source_new(SESS_RECEIPT_DELAY_MS);
        g_source_set_callback(p->receipt_timer, receipt_timer_cb, p, NULL);
        g_source_attach(p->receipt_timer, s->ctx);
        sess_flush(s, p);
    }
}

/* ---- receiving ------------------------------------------------------------------------ */

static void conv_of(const el_msg *m, const char *from, char out[2 + EL_MSG_ID_SIZE + 1])
{
    if (m->has_group)
        snprintf(out, 2 + EL_MSG_ID_SIZE + 1, "g:%s", m->group);
    else
        snprintf(out, 2 + EL_MSG_ID_SIZE + 1, "p:%s", from);
}

static int on_chat(el_session *s, sess_peer *p, const el_msg *m, const char *conv, int offline)
{
    char *text = msg_str(m->u.chat.text);
    el_hist_msg row = {
        .conv = conv, .id = m->id, .author = p->peer_id, .kind = EL_HIST_CHAT, .text = text,
        .reply_to = m->u.chat.has_reply_to ? m->u.chat.reply_to : NULL, .ts = (int64_t)m->ts,
        .received_at = now_ms(),
    };
    char err[160];
    int rc = el_hist_msg_add(s->hist, &row, NULL, 0, err, sizeof err);
    if (rc == 1) {
        s->stats.received++;
        json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:b}", "event", "message", "conv",
                               conv, "id", m->id, "from", p->peer_id, "ts", (json_int_t)m->ts,
                               "text", text, "offline", offline);
        if (m->u.chat.has_reply_to)
            json_object_set_new(ev, "reply_to", json_string(m->u.chat.reply_to));
        if (m->has_group)
            json_object_set_new(ev, "group", json_string(m->group));
        sess_emit(s, ev);
    } else if (rc < 0) {
        sess_error(s, "cannot store a message from %.8s: %s", p->peer_id, err);
    }
    g_free(text);
    return rc < 0 ? rc : 0;
}

static void on_receipt(el_session *s, sess_peer *p, const el_msg *m, int read)
{
    /* one commit for the whole receipt */
    int tx = sess_tx_begin(s, NULL, 0) == 0;
    GPtrArray *advanced = g_ptr_array_new();
    for (size_t i = 0; i < m->u.receipt.n; i++) {
        const char *id = m->u.receipt.ids[i];
        if (!read)
            el_hist_outbox_ack(s->hist, p->peer_id, id, NULL, 0);
        int rc = read ? el_hist_msg_read_by(s->hist, p->peer_id, id, now_ms(), NULL, 0)
                      : el_hist_msg_delivered(s->hist, p->peer_id, id, now_ms(), NULL, 0);
        if (rc == 1)
            g_ptr_array_add(advanced, (gpointer)id);
    }
    if (tx && sess_tx_end(s, 1, NULL, 0) != 0)
        g_ptr_array_set_size(advanced, 0); /* rolled back: the sender asks again */
    for (guint i = 0; i < advanced->len; i++)
        emit_status(s, p->peer_id, g_ptr_array_index(advanced, i), read ? "read" : "delivered", NULL);
    g_ptr_array_free(advanced, TRUE);
}

static int on_reaction(el_session *s, sess_peer *p, const el_msg *m, const char *conv)
{
    char *emoji = msg_str(m->u.reaction.emoji);
    int remove = m->u.reaction.has_remove && m->u.reaction.remove;
    int rc = remove ? el_hist_reaction_remove(s->hist, conv, m->u.reaction.target, p->peer_id,
                                              emoji, NULL, 0)
                    : el_hist_reaction_add(s->hist, conv, m->u.reaction.target, p->peer_id,
                                           emoji, now_ms(), NULL, 0);
    if (rc >= 0)
        sess_emit(s, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "event", "reaction", "conv", conv,
                               "target", m->u.reaction.target, "from", p->peer_id, "emoji", emoji,
                               "remove", remove));
    g_free(emoji);
    return rc == EL_ERR_DB || rc == EL_ERR_IO ? rc : 0;
}

static int copy_conv(const el_hist_msg *row, void *user)
{
    snprintf(user, 2 + EL_MSG_ID_SIZE + 1, "%s", row->conv);
    return 0;
}

static int on_edit(el_session *s, sess_peer *p, const el_msg *m, const char *conv, int del)
{
    char err[160] = "";
    /* the edit must come through the target's own conversation: a direct
     * one for a direct message, the group (from a current member, checked
     * by group_ok) for a group message */
    char target_conv[2 + EL_MSG_ID_SIZE + 1] = "";
    el_hist_msg_get(s->hist, p->peer_id, m->u.edit.target, copy_conv, target_conv, NULL, 0);
    if (target_conv[0] && strcmp(target_conv, conv) != 0) {
        EL_WARN("session: %s from %.8s for a message of another conversation refused",
                del ? "delete" : "edit", p->peer_id);
        return 0;
    }
    char *text = del ? NULL : msg_str(m->u.edit.text);
    int rc = del ? el_hist_msg_delete(s->hist, p->peer_id, m->u.edit.target, err, sizeof err)
                 : el_hist_msg_edit(s->hist, p->peer_id, m->u.edit.target, text, (int64_t)m->ts,
                                    err, sizeof err);
    if (rc == 1) {
        json_t *ev = json_pack("{s:s, s:s, s:s, s:s}", "event", del ? "delete" : "edit", "conv",
                               conv, "target", m->u.edit.target, "from", p->peer_id);
        if (!del)
            json_object_set_new(ev, "text", json_string(text));
        sess_emit(s, ev);
    } else if (rc < 0) {
        EL_WARN("session: %s from %.8s not applied: %s", del ? "delete" : "edit", p->peer_id, err);
    }
    g_free(text);
    return rc == EL_ERR_DB || rc == EL_ERR_IO ? rc : 0; /* refusals are final, receipted */
}

static int group_ok(el_session *s, sess_peer *p, const el_msg *m)
{
    if (!m->has_group || m->type == EL_MSG_T_GROUP_CREATED || m->type == EL_MSG_T_GROUP_UPDATE)
        return 1;
    if (sess_group_is_member(s, m->group, p->peer_id))
        return 1;
    EL_WARN("session: dropping a %s for group %.8s from %.8s, not a member",
            el_msg_type_name(m->type), m->group, p->peer_id);
    s->stats.dropped++;
    if (m->type != EL_MSG_T_TYPING_STATUS && m->type != EL_MSG_T_DELIVERY_RECEIPT)
        owe_receipt(s, p, m->id); /* refused for good: the sender need not try again */
    return 0;
}

static void handle_msg(el_session *s, sess_peer *p, const el_msg *m, int offline)
{
    char conv[2 + EL_MSG_ID_SIZE + 1];
    conv_of(m, p->peer_id, conv);
    if (!group_ok(s, p, m))
        return;
    if (m->type == EL_MSG_T_TYPING_STATUS) {
        sess_emit(s, json_pack("{s:s, s:s, s:s, s:b}", "event", "typing", "conv", conv, "from",
                               p->peer_id, "typing", m->u.typing.typing));
        return;
    }
    if (m->type == EL_MSG_T_DELIVERY_RECEIPT) {
        on_receipt(s, p, m, 0);
        return;
    }
    /* "seen" and the message's effect commit together: a message is either
     * applied and receipted, or neither (and the sender sends it again) */
    char err[160] = "";
    int rc = 0;
    int began = sess_tx_begin(s, err, sizeof err) == 0;
    int fresh = began ? el_hist_seen(s->hist, p->peer_id, m->id, now_ms(), err, sizeof err)
                      : EL_ERR_DB;
    if (fresh > 0) {
        switch (m->type) {
        case EL_MSG_T_CHAT: rc = on_chat(s, p, m, conv, offline); break;
        case EL_MSG_T_REACTION: rc = on_reaction(s, p, m, conv); break;
        case EL_MSG_T_READ_RECEIPT: on_receipt(s, p, m, 1); break;
        case EL_MSG_T_EDIT_MESSAGE: rc = on_edit(s, p, m, conv, 0); break;
        case EL_MSG_T_DELETE_MESSAGE: rc = on_edit(s, p, m, conv, 1); break;
        case EL_MSG_T_FILE_META:
        case EL_MSG_T_FILE_ACCEPT:
        case EL_MSG_T_FILE_CANCEL:
        case EL_MSG_T_FILE_COMPLETE: rc = sess_file_on_msg(s, p, m, conv); break;
        case EL_MSG_T_GROUP_CREATED:
        case EL_MSG_T_GROUP_UPDATE:
        case EL_MSG_T_GROUP_LEAVE: rc = sess_group_on_msg(s, p, m); break;
        default: break;
        }
    }
    if (began) {
        int ok = fresh >= 0 && rc >= 0 && rc != SESS_LATER;
        int erc = sess_tx_end(s, ok, err, sizeof err);
        if (ok && erc != 0)
            rc = erc;
    }
    if (rc == SESS_LATER)
        return; /* forgotten, not receipted: the sender sends it again */
    if (fresh < 0 || rc < 0) {
        sess_error(s, "cannot store a %s from %.8s: %s", el_msg_type_name(m->type), p->peer_id,
                   err);
        return; /* no receipt: the sender will send it again */
    }
    if (fresh == 0)
        s->stats.duplicates++;
    owe_receipt(s, p, m->id);
}

static void handle_plain(el_session *s, sess_peer *p, el_channel *ch, const uint8_t *pt, size_t len,
                         int offline)
{
    el_msg *m = NULL;
    el_msg_chunk chunk;
    int kind = el_msg_receive(pt, len, p->peer_id, &s->mstats, &m, &chunk);
    if (kind == EL_PT_MESSAGE) {
        handle_msg(s, p, m, offline);
        el_msg_free(m);
    } else if (kind == EL_PT_CHUNK && !offline) {
        sess_file_on_chunk(s, p, ch, &chunk);
    } else if (kind == 0) {
        s->stats.dropped++;
    }
}

/* ---- link callbacks ----------------------------------------------------------------- */

static void signal_acked(el_signal *sig, el_signal_ack_status st, json_t *ack, void *user)
{
    (void)sig;
    (void)user;
    if (st == EL_SIGNAL_ACK_OK && !json_is_true(json_object_get(ack, "ok")))
        EL_INFO("session: the server did not relay: %s",
                json_string_value(json_object_get(ack, "error")));
}

static int link_signal(el_link *l, const char *event, json_t *arg, void *user)
{
    sess_peer *p = user;
    (void)l;
    return el_signal_emit(p->s->sig, event, arg, 0, signal_acked, NULL);
}

static int link_want(el_link *l, void *user)
{
    sess_peer *p = user;
    (void)l;
    return p->s->logged_in && p->online && sess_has_work(p->s, p);
}

/* A reliable channel loses nothing, but a receiver may drop a message
 * without a receipt (it could not store it, or it cannot apply it yet, e.g.
 * a group update ahead of the one before it): what is still in the outbox
 * goes again, in order, now and then while the connection lasts. */
static gboolean retransmit_cb(gpointer data)
{
    sess_peer *p = data;
    if (el_link_get_state(p->link) != EL_LINK_READY) {
        g_source_unref(p->retransmit);
        p->retransmit = NULL;
        return G_SOURCE_REMOVE;
    }
    if (el_hist_outbox_count(p->s->hist, p->peer_id, NULL, 0) > 0) {
        p->flushed_seq = 0;
        flush_link(p->s, p);
    }
    return G_SOURCE_CONTINUE;
}

static void link_state(el_link *l, el_link_state st, const char *why, void *user)
{
    sess_peer *p = user;
    el_session *s = p->s;
    json_t *ev = json_pack("{s:s, s:s, s:s}", "event", "link", "peer_id", p->peer_id, "state",
                           el_link_state_name(st));
    if (why)
        json_object_set_new(ev, "reason", json_string(why));
    sess_emit(s, ev);
    if (st == EL_LINK_READY) {
        s->stats.links_ready++;
        p->link_failed = 0;
        p->flushed_seq = 0;
        if (!p->retransmit) {
            p->retransmit = g_timeout_source_new(SESS_RETRANSMIT_MS);
            g_source_set_callback(p->retransmit, retransmit_cb, p, NULL);
            g_source_attach(p->retransmit, s->ctx);
        }
        sess_flush(s, p);
        sess_file_on_ready(s, p);
    } else if (st == EL_LINK_IDLE) {
        sess_file_on_down(s, p);
        /* a connection that failed (not one replaced or reset) sends what
         * waits through the offline queue meanwhile */
        if (why && strncmp(why, "replaced", 8) != 0)
            p->link_failed = 1;
        if (!p->online || p->link_failed)
            sess_flush(s, p);
    }
}

static void link_key_changed(el_link *l, const el_id_bundle *pinned, const el_id_bundle *presented,
                             void *user)
{
    sess_peer *p = user;
    (void)l;
    (void)pinned;
    char num[EL_SAFETY_SIZE], fmt[EL_SAFETY_FMT_SIZE] = "";
    if (el_safety_number(el_identity_bundle(p->s->id)->ik, presented->ik, num) == 0)
        el_safety_format(num, fmt);
    sess_emit(p->s, json_pack("{s:s, s:s, s:s}", "event", "key_changed", "peer_id", p->peer_id,
                              "safety", fmt));
}

static void link_plaintext(el_link *l, el_channel *ch, const uint8_t *pt, size_t len, void *user)
{
    (void)l;
    sess_peer *p = user;
    handle_plain(p->s, p, ch, pt, len, 0);
}

static void link_channel_open(el_link *l, el_channel *ch, void *user)
{
    (void)l;
    sess_peer *p = user;
    sess_file_on_channel_open(p->s, p, ch);
}

static void link_channel_close(el_link *l, el_channel *ch, void *user)
{
    (void)l;
    sess_peer *p = user;
    sess_file_on_channel_close(p->s, p, ch);
}

static void link_low(el_link *l, el_channel *ch, void *user)
{
    (void)l;
    sess_peer *p = user;
    sess_file_on_low(p->s, p, ch);
}

static const el_link_callbacks link_cbs = {
    link_signal,  link_want,         link_state,         link_key_changed,
    link_plaintext, link_channel_open, link_channel_close, link_low,
};

/* ---- signaling events ------------------------------------------------------------------ */

/* Takes in a peer object (§4): presence, name, announced bundle. */
static sess_peer *peer_update(el_session *s, json_t *o, int online)
{
    const char *pid = json_string_value(json_object_get(o, "peer_id"));
    sess_peer *p = pid ? sess_peer_get(s, pid) : NULL;
    if (!p)
        return NULL;
    const char *name = json_string_value(json_object_get(o, "name"));
    if (name) {
        free(p->name);
        p->name = strdup(name);
    }
    el_id_bundle b;
    char derived[EL_PEER_ID_LEN + 1];
    const char *ik = json_string_value(json_object_get(o, "ik"));
    const char *sk = json_string_value(json_object_get(o, "sk"));
    const char *sig = json_string_value(json_object_get(o, "sk_sig"));
    if (ik && sk && sig && el_id_bundle_from_b64(&b, ik, sk, sig, NULL, 0) == 0 &&
        el_id_peer_id(b.ik, derived) == 0 && !strcmp(derived, p->peer_id)) {
        p->bundle = b;
        p->has_bundle = 1;
    }
    if (online >= 0)
        p->online = online;
    el_hist_peer_put(s->hist, p->peer_id, name, online > 0 ? now_ms() : 0, NULL, 0);
    return p;
}

static void emit_presence(el_session *s, sess_peer *p)
{
    sess_emit(s, json_pack("{s:s, s:s, s:b, s:s?}", "event", "presence", "peer_id", p->peer_id,
                           "online", p->online, "name", p->name));
}

static int flush_outbox_peer(const char *peer, unsigned pending, void *user)
{
    (void)pending;
    GPtrArray *list = user;
    g_ptr_array_add(list, strdup(peer));
    return 0;
}

/* After a login: every peer with work gets it delivered one way or another. */
static void flush_all(el_session *s)
{
    GPtrArray *list = g_ptr_array_new_with_free_func(free);
    el_hist_outbox_peers(s->hist, flush_outbox_peer, list, NULL, 0);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->peers);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_ptr_array_add(list, strdup(k));
    for (guint i = 0; i < list->len; i++) {
        sess_peer *p = sess_peer_get(s, g_ptr_array_index(list, i));
        if (p)
            sess_flush(s, p);
    }
    g_ptr_array_free(list, TRUE);
}

static void ev_online_users(el_signal *sig, const char *event, json_t *arg, void *user)
{
    el_session *s = user;
    (void)sig;
    (void)event;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->peers);
    while (g_hash_table_iter_next(&it, &k, &v))
        ((sess_peer *)v)->online = 0;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(arg, "users"), i, o) {
        sess_peer *p = peer_update(s, o, 1);
        if (p)
            emit_presence(s, p);
    }
    flush_all(s);
}

static void ev_presence(el_signal *sig, const char *event, json_t *arg, void *user)
{
    el_session *s = user;
    (void)sig;
    int online = !strcmp(event, "user_connected");
    sess_peer *p = peer_update(s, arg, online);
    if (!p)
        return;
    emit_presence(s, p);
    if (online || el_link_get_state(p->link) != EL_LINK_READY)
        sess_flush(s, p);
}

static void ev_relay(el_signal *sig, const char *event, json_t *arg, void *user)
{
    el_session *s = user;
    (void)sig;
    const char *from = json_string_value(json_object_get(arg, "from"));
    sess_peer *p = from ? sess_peer_get(s, from) : NULL;
    if (!p) {
        EL_WARN("session: %s from an invalid peer ignored", event);
        return;
    }
    p->online = 1; /* it just spoke through the server */
    el_link_on_signal(p->link, event, arg);
}

static const char *str_or(json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "";
}

static void ev_contact(el_signal *sig, const char *event, json_t *arg, void *user)
{
    el_session *s = user;
    (void)sig;
    json_t *ev = json_deep_copy(arg);
    if (!json_is_object(ev))
        ev = json_object();
    if (!strcmp(event, "contact_request")) {
        json_t *from = json_object_get(arg, "from");
        peer_update(s, from, -1);
        json_object_set_new(ev, "from", json_incref(json_object_get(from, "peer_id")));
        json_object_set_new(ev, "name", json_incref(json_object_get(from, "name")));
    } else if (!strcmp(event, "contact_added")) {
        peer_update(s, arg, json_is_true(json_object_get(arg, "online")));
    } else if (!strcmp(event, "contact_removed")) {
        sess_peer *p = g_hash_table_lookup(s->peers, str_or(json_object_get(arg, "peer_id")));
        if (p)
            el_link_reset(p->link, "no longer a contact");
    }
    json_object_set_new(ev, "event", json_string(event));
    sess_emit(s, ev);
}

static void ev_envelope(el_signal *sig, const char *event, json_t *arg, void *user)
{
    el_session *s = user;
    (void)event;
    const char *id = json_string_value(json_object_get(arg, "id"));
    const char *from = json_string_value(json_object_get(arg, "from"));
    const char *b64 = json_string_value(json_object_get(arg, "envelope"));
    size_t blen = b64 ? strlen(b64) : 0;
    uint8_t *env = malloc(blen + 1), *pt = malloc(blen + 1);
    ssize_t n = env && b64 ? el_b64url_decode(b64, blen, env, blen + 1) : -1;
    el_id_bundle sender;
    char spid[EL_PEER_ID_LEN + 1] = "";
    size_t ptlen = 0;
    int rc = n > 0 && pt ? el_seal_open(s->id, env, (size_t)n, &sender, spid, pt, blen + 1, &ptlen)
                         : EL_ERR_INVALID;
    sess_peer *p = rc == 0 && from && !strcmp(spid, from) ? sess_peer_get(s, spid) : NULL;
    el_trust_state ts = EL_TRUST_KNOWN;
    if (p && s->trust && el_trust_check(s->trust, p->peer_id, &sender, &ts, NULL, 0) != 0)
        ts = EL_TRUST_CHANGED;
    if (!p) {
        s->stats.dropped++;
        EL_WARN("session: dropping envelope %s: %s", id ? id : "?",
                rc != 0 ? el_seal_reason(rc) : "the sender is not who the server says");
    } else if (ts == EL_TRUST_CHANGED) {
        sess_error(s, "an offline message from %.8s is held: its key changed (verify, then accept)",
                   p->peer_id);
        id = NULL; /* stays on the server until the user decides */
    } else {
        s->stats.envelopes_received++;
        handle_plain(s, p, NULL, pt, ptlen, 1);
    }
    free(env);
    free(pt);
    if (id) {
        json_t *ack = json_pack("{s:[s]}", "ids", id);
        el_signal_emit(sig, "envelope_ack", ack, 0, NULL, NULL);
        json_decref(ack);
    }
}

static void ev_closed(el_signal *sig, const char *event, json_t *arg, void *user)
{
    el_session *s = user;
    (void)sig;
    (void)event;
    sess_error(s, "the server closed the session: %s",
               json_string_value(json_object_get(arg, "reason")));
}

static void set_ice_servers(el_session *s, json_t *list)
{
    g_strfreev(s->ice_urls);
    free(s->turn_user);
    free(s->turn_cred);
    s->turn_user = s->turn_cred = NULL;
    GPtrArray *urls = g_ptr_array_new();
    size_t i, j;
    json_t *srv, *u;
    json_array_foreach(list, i, srv) {
        json_t *us = json_object_get(srv, "urls");
        const char *user = json_string_value(json_object_get(srv, "username"));
        const char *cred = json_string_value(json_object_get(srv, "credential"));
        if (user && cred && !s->turn_user) {
            s->turn_user = strdup(user);
            s->turn_cred = strdup(cred);
        }
        if (json_is_string(us))
            g_ptr_array_add(urls, g_strdup(json_string_value(us)));
        json_array_foreach(us, j, u)
            if (json_is_string(u))
                g_ptr_array_add(urls, g_strdup(json_string_value(u)));
    }
    g_ptr_array_add(urls, NULL);
    s->ice_urls = (char **)g_ptr_array_free(urls, FALSE);
    s->pcfg.ice_servers = (const char *const *)s->ice_urls;
    s->pcfg.turn_username = s->turn_user;
    s->pcfg.turn_credential = s->turn_cred;
}

static void sig_login(el_signal *sig, json_t *ack, void *user)
{
    el_session *s = user;
    (void)sig;
    set_ice_servers(s, json_object_get(ack, "ice_servers"));
    s->logged_in = 1;
    const char *name = json_string_value(json_object_get(json_object_get(ack, "profile"), "name"));
    sess_emit(s, json_pack("{s:s, s:s, s:s?}", "event", "login", "peer_id", s->self, "name", name));
}

static const char *signal_state_word(el_signal_state st)
{
    switch (st) {
    case EL_SIGNAL_LOGGED_IN: return "online";
    case EL_SIGNAL_DISCONNECTED: return "offline";
    case EL_SIGNAL_STOPPED: return "stopped";
    case EL_SIGNAL_CONNECTED: return "connected";
    default: return "connecting";
    }
}

static void sig_state(el_signal *sig, const el_signal_state_info *info, void *user)
{
    el_session *s = user;
    (void)sig;
    if (info->state != EL_SIGNAL_LOGGED_IN)
        s->logged_in = 0;
    json_t *ev = json_pack("{s:s, s:s, s:s?}", "event", "signal", "state",
                           signal_state_word(info->state), "reason", info->reason);
    if (info->state == EL_SIGNAL_DISCONNECTED)
        json_object_set_new(ev, "retry_ms", json_integer(info->retry_ms));
    sess_emit(s, ev);
}

/* ---- lifetime ------------------------------------------------------------------------- */

static char **strv_copy(const char *const *v)
{
    return v ? g_strdupv((char **)v) : NULL;
}

static int open_stores(el_session *s, const el_session_config *cfg, char *err, size_t errlen)
{
    int rc = el_hist_open(&s->hist, cfg->history_path, err, errlen);
    if (rc == 0 && cfg->trust_path)
        rc = el_trust_open(&s->trust, cfg->trust_path, err, errlen);
    return rc;
}

el_session *el_session_new(GMainContext *ctx, const el_identity *id, const el_session_config *cfg,
                           el_session_event_cb cb, void *user, char *err, size_t errlen)
{
    if (!id || !cfg || !cfg->server_urls || !cfg->server_urls[0] || !cfg->history_path ||
        !cfg->download_dir) {
        el_seterr(err, errlen, EL_ERR_INVALID, "a session needs an identity, server URLs, a "
                                               "history path and a download directory");
        return NULL;
    }
    el_session *s = calloc(1, sizeof *s);
    if (!s) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->ctx = ctx ? ctx : g_main_context_default();
    s->id = id;
    snprintf(s->self, sizeof s->self, "%s", el_identity_peer_id(id));
    s->cb = cb;
    s->user = user;
    s->urls = strv_copy(cfg->server_urls);
    s->name = cfg->name ? strdup(cfg->name) : NULL;
    s->download_dir = strdup(cfg->download_dir);
    s->local_addrs = strv_copy(cfg->local_addresses);
    s->auto_accept = cfg->auto_accept_files;
    s->max_auto_accept = cfg->max_auto_accept;
    s->pcfg.local_addresses = (const char *const *)s->local_addrs;
    s->lcfg.peer = &s->pcfg;
    s->peers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, peer_free);
    s->xouts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, sess_xout_free);
    s->xins = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, sess_xin_free);
    s->hash_jobs = g_ptr_array_new();
    s->tx_events = g_ptr_array_new();
    s->enveloping = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    if (open_stores(s, cfg, err, errlen) != 0) {
        el_session_free(s);
        return NULL;
    }
    s->lcfg.trust = s->trust;
    /* ids older than a month cannot come back: the outboxes that held them
     * were acked long ago */
    el_hist_prune_seen(s->hist, now_ms() - 30LL * 24 * 3600 * 1000, NULL, 0);
    el_signal_config scfg = {.urls = (const char *const *)s->urls, .name = s->name};
    el_signal_callbacks scb = {sig_state, sig_login};
    s->sig = el_signal_new(s->ctx, id, &scfg, &scb, s, err, errlen);
    if (!s->sig) {
        el_session_free(s);
        return NULL;
    }
    el_signal_on(s->sig, "online_users", ev_online_users, s);
    el_signal_on(s->sig, "user_connected", ev_presence, s);
    el_signal_on(s->sig, "user_disconnected", ev_presence, s);
    el_signal_on(s->sig, "offer", ev_relay, s);
    el_signal_on(s->sig, "answer", ev_relay, s);
    el_signal_on(s->sig, "ice_candidate", ev_relay, s);
    el_signal_on(s->sig, "envelope", ev_envelope, s);
    el_signal_on(s->sig, "session_closed", ev_closed, s);
    static const char *const contact_events[] = {"contact_request", "contact_added",
                                                 "contact_refused", "contact_removed"};
    for (size_t i = 0; i < G_N_ELEMENTS(contact_events); i++)
        el_signal_on(s->sig, contact_events[i], ev_contact, s);
    return s;
}

int el_session_start(el_session *s, char *err, size_t errlen)
{
    int rc = el_signal_start(s->sig);
    if (rc != 0)
        return el_seterr(err, errlen, rc, "cannot start the signaling client (is the context "
                                          "the thread-default one?)");
    return EL_OK;
}

void el_session_free(el_session *s)
{
    if (!s)
        return;
    sess_file_jobs_free(s);
    if (s->tx_events) {
        for (guint i = 0; i < s->tx_events->len; i++)
            json_decref(g_ptr_array_index(s->tx_events, i));
        g_ptr_array_free(s->tx_events, TRUE);
    }
    if (s->xouts)
        g_hash_table_destroy(s->xouts);
    if (s->xins)
        g_hash_table_destroy(s->xins);
    if (s->peers)
        g_hash_table_destroy(s->peers);
    el_signal_free(s->sig);
    if (s->enveloping)
        g_hash_table_destroy(s->enveloping);
    el_trust_close(s->trust);
    el_hist_close(s->hist);
    g_strfreev(s->urls);
    g_strfreev(s->local_addrs);
    g_strfreev(s->ice_urls);
    free(s->turn_user);
    free(s->turn_cred);
    free(s->name);
    free(s->download_dir);
    free(s);
}

const char *el_session_peer_id(const el_session *s)
{
    return s->self;
}

struct el_hist *el_session_history(el_session *s)
{
    return s->hist;
}

int el_session_is_online(const el_session *s)
{
    return s->logged_in;
}

/* ---- sending messages ------------------------------------------------------------------ */

/* Fills the group member of m for a group conversation. */
static char **prepare(el_session *s, const char *conv, el_msg *m, char norm[2 + EL_MSG_ID_SIZE + 1],
                      char *err, size_t errlen)
{
    char id[EL_MSG_ID_SIZE];
    int group = 0;
    if (sess_parse_conv(conv, norm, &group, id, err, errlen) != 0)
        return NULL;
    if (group) {
        m->has_group = 1;
        snprintf(m->group, sizeof m->group, "%s", id);
    }
    return conv_recipients(s, norm, err, errlen);
}

int el_session_send_text(el_session *s, const char *conv, const char *text, const char *reply_to,
                         char out_id[33], char *err, size_t errlen)
{
    el_msg m;
    el_msg_init(&m, EL_MSG_T_CHAT);
    char norm[2 + EL_MSG_ID_SIZE + 1];
    char **to = prepare(s, conv, &m, norm, err, errlen);
    if (!to)
        return EL_ERR_INVALID;
    m.u.chat.text = el_msg_cstr(text ? text : "");
    if (reply_to) {
        m.u.chat.has_reply_to = 1;
        snprintf(m.u.chat.reply_to, sizeof m.u.chat.reply_to, "%s", reply_to);
    }
    uint8_t *pt = NULL;
    size_t len = 0;
    int rc = sess_build(&m, &pt, &len, err, errlen);
    if (rc == 0) {
        el_hist_msg row = {.conv = norm, .id = m.id, .author = s->self, .outgoing = true,
                           .kind = EL_HIST_CHAT, .text = text, .reply_to = reply_to,
                           .ts = (int64_t)m.ts, .received_at = (int64_t)m.ts};
        rc = sess_tx_begin(s, err, errlen);
        if (rc == 0) {
            rc = el_hist_msg_add(s->hist, &row, (const char *const *)to, g_strv_length(to), err,
                                 errlen);
            for (size_t i = 0; rc >= 0 && to[i]; i++)
                rc = el_hist_outbox_add(s->hist, to[i], m.id, pt, len, (int64_t)m.ts, NULL, err,
                                        errlen);
            int erc = sess_tx_end(s, rc >= 0, err, errlen);
            if (rc >= 0)
                rc = erc;
        }
    }
    free(pt);
    if (rc == 0) {
        s->stats.sent++;
        if (out_id)
            snprintf(out_id, 33, "%s", m.id);
        for (size_t i = 0; to[i]; i++) {
            sess_peer *p = sess_peer_get(s, to[i]);
            if (p)
                sess_flush(s, p);
        }
    }
    g_strfreev(to);
    return rc;
}

int el_session_send_typing(el_session *s, const char *conv, int typing)
{
    el_msg m;
    el_msg_init(&m, EL_MSG_T_TYPING_STATUS);
    m.u.typing.typing = typing ? 1 : 0;
    char norm[2 + EL_MSG_ID_SIZE + 1];
    char **to = prepare(s, conv, &m, norm, NULL, 0);
    if (!to)
        return EL_ERR_INVALID;
    uint8_t *pt = NULL;
    size_t len = 0;
    int rc = sess_build(&m, &pt, &len, NULL, 0);
    for (size_t i = 0; rc == 0 && to[i]; i++) {
        sess_peer *p = sess_peer_get(s, to[i]);
        if (p && el_link_get_state(p->link) == EL_LINK_READY)
            el_link_send(p->link, NULL, pt, len); /* best effort: never stored */
    }
    free(pt);
    g_strfreev(to);
    return rc;
}

int el_session_react(el_session *s, const char *conv, const char *target, const char *emoji,
                     int remove, char *err, size_t errlen)
{
    el_msg m;
    el_msg_init(&m, EL_MSG_T_REACTION);
    char norm[2 + EL_MSG_ID_SIZE + 1];
    char **to = prepare(s, conv, &m, norm, err, errlen);
    if (!to)
        return EL_ERR_INVALID;
    snprintf(m.u.reaction.target, sizeof m.u.reaction.target, "%s", target ? target : "");
    m.u.reaction.emoji = el_msg_cstr(emoji ? emoji : "");
    m.u.reaction.has_remove = remove ? 1 : 0;
    m.u.reaction.remove = remove ? 1 : 0;
    int rc = queue_all(s, to, &m, err, errlen);
    if (rc == 0)
        rc = remove ? el_hist_reaction_remove(s->hist, norm, target, s->self, emoji, err, errlen)
                    : el_hist_reaction_add(s->hist, norm, target, s->self, emoji, now_ms(), err,
                                           errlen);
    g_strfreev(to);
    return rc < 0 ? rc : EL_OK;
}

static int edit_or_delete(el_session *s, const char *conv, const char *target, const char *text,
                          char *err, size_t errlen)
{
    el_msg m;
    el_msg_init(&m, text ? EL_MSG_T_EDIT_MESSAGE : EL_MSG_T_DELETE_MESSAGE);
    char norm[2 + EL_MSG_ID_SIZE + 1];
    char **to = prepare(s, conv, &m, norm, err, errlen);
    if (!to)
        return EL_ERR_INVALID;
    snprintf(m.u.edit.target, sizeof m.u.edit.target, "%s", target ? target : "");
    if (text)
        m.u.edit.text = el_msg_cstr(text);
    m.ts = (uint64_t)now_ms();
    /* applied here first: only our own messages pass the author rule */
    int rc = text ? el_hist_msg_edit(s->hist, s->self, m.u.edit.target, text, (int64_t)m.ts, err,
                                     errlen)
                  : el_hist_msg_delete(s->hist, s->self, m.u.edit.target, err, errlen);
    if (rc >= 0)
        rc = queue_all(s, to, &m, err, errlen);
    g_strfreev(to);
    return rc < 0 ? rc : EL_OK;
}

int el_session_edit(el_session *s, const char *conv, const char *target, const char *text,
                    char *err, size_t errlen)
{
    if (!text)
        return el_seterr(err, errlen, EL_ERR_INVALID, "an edit needs the new text");
    return edit_or_delete(s, conv, target, text, err, errlen);
}

int el_session_delete(el_session *s, const char *conv, const char *target, char *err,
                      size_t errlen)
{
    return edit_or_delete(s, conv, target, NULL, err, errlen);
}

typedef struct {
    GHashTable *by_author; /* author -> GPtrArray of ids */
} read_set;

static int collect_read(const char *author, const char *id, void *user)
{
    read_set *rs = user;
    GPtrArray *ids = g_hash_table_lookup(rs->by_author, author);
    if (!ids) {
        ids = g_ptr_array_new_with_free_func(g_free);
        g_hash_table_insert(rs->by_author, g_strdup(author), ids);
    }
    g_ptr_array_add(ids, g_strdup(id));
    return 0;
}

static void send_read_receipts(el_session *s, const char *author, GPtrArray *ids)
{
    for (guint i = 0; i < ids->len; i += EL_MSG_MAX_IDS) {
        el_msg m;
        el_msg_init(&m, EL_MSG_T_READ_RECEIPT);
        for (guint j = i; j < ids->len && m.u.receipt.n < EL_MSG_MAX_IDS; j++)
            snprintf(m.u.receipt.ids[m.u.receipt.n++], EL_MSG_ID_SIZE, "%s",
                     (char *)g_ptr_array_index(ids, j));
        char *to[] = {(char *)author, NULL};
        char err[160];
        if (queue_all(s, to, &m, err, sizeof err) != 0)
            sess_error(s, "cannot queue a read receipt: %s", err);
    }
}

int el_session_mark_read(el_session *s, const char *conv, char *err, size_t errlen)
{
    char norm[2 + EL_MSG_ID_SIZE + 1], id[EL_MSG_ID_SIZE];
    int rc = sess_parse_conv(conv, norm, NULL, id, err, errlen);
    if (rc != 0)
        return rc;
    read_set rs = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify)g_ptr_array_unref)};
    rc = el_hist_conv_mark_read(s->hist, norm, now_ms(), collect_read, &rs, err, errlen);
    if (rc > 0) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, rs.by_author);
        while (g_hash_table_iter_next(&it, &k, &v))
            send_read_receipts(s, k, v);
    }
    g_hash_table_destroy(rs.by_author);
    return rc;
}

/* ---- server calls ------------------------------------------------------------------------ */

typedef struct {
    el_session *s;
    el_session_reply_cb cb;
    void *user;
    char block[EL_PEER_ID_LEN + 1]; /* a block: cut that peer's link once it is done */
} call_ctx;

static void call_acked(el_signal *sig, el_signal_ack_status st, json_t *ack, void *user)
{
    call_ctx *c = user;
    (void)sig;
    if (c->block[0] && st == EL_SIGNAL_ACK_OK && json_is_true(json_object_get(ack, "ok"))) {
        sess_peer *p = g_hash_table_lookup(c->s->peers, c->block);
        if (p)
            el_link_reset(p->link, "blocked");
    }
    if (c->cb && st == EL_SIGNAL_ACK_OK) {
        c->cb(c->s, ack, c->user);
    } else if (c->cb) {
        /* exactly one reply, also when the session goes away first */
        json_t *r = json_pack("{s:b, s:s}", "ok", 0, "error",
                              st == EL_SIGNAL_ACK_TIMEOUT     ? "timeout"
                              : st == EL_SIGNAL_ACK_CANCELLED ? "cancelled"
                                                              : "disconnected");
        c->cb(c->s, r, c->user);
        json_decref(r);
    }
    free(c);
}

int el_session_server_call(el_session *s, const char *op, json_t *arg, el_session_reply_cb cb,
                           void *user, char *err, size_t errlen)
{
    call_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    *c = (call_ctx){s, cb, user, ""};
    if (!strcmp(op, "block"))
        snprintf(c->block, sizeof c->block, "%s", str_or(json_object_get(arg, "peer_id")));
    int rc = el_signal_emit(s->sig, op, arg, 0, call_acked, c);
    if (rc != 0) {
        free(c);
        return el_seterr(err, errlen, rc, "cannot send %s to the server: %s", op, el_strerror(rc));
    }
    return EL_OK;
}

/* ---- trust --------------------------------------------------------------------------------- */

int el_session_safety_number(el_session *s, const char *peer_id, char *out, size_t outlen,
                             char *err, size_t errlen)
{
    el_trust_entry e;
    if (!s->trust || el_trust_get(s->trust, peer_id, &e, NULL, 0) != 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND,
                         "no key known for %s yet: connect to it once", peer_id);
    char num[EL_SAFETY_SIZE], fmt[EL_SAFETY_FMT_SIZE];
    int rc = el_safety_number(el_identity_bundle(s->id)->ik, e.pinned.ik, num);
    if (rc == 0)
        rc = el_safety_format(num, fmt);
    if (rc != 0)
        return el_seterr(err, errlen, rc, "cannot compute the safety number");
    snprintf(out, outlen, "%s", fmt);
    return EL_OK;
}

int el_session_set_verified(el_session *s, const char *peer_id, char *err, size_t errlen)
{
    if (!s->trust)
        return el_seterr(err, errlen, EL_ERR_STATE, "no trust store");
    return el_trust_set_verified(s->trust, peer_id, err, errlen);
}

int el_session_accept_key_change(el_session *s, const char *peer_id, char *err, size_t errlen)
{
    sess_peer *p = g_hash_table_lookup(s->peers, peer_id ? peer_id : "");
    if (p && el_link_get_state(p->link) == EL_LINK_HELD)
        return el_link_accept_key_change(p->link, err, errlen);
    el_trust_entry e;
    if (!s->trust || el_trust_get(s->trust, peer_id, &e, err, errlen) != 0 || !e.has_pending)
        return el_seterr(err, errlen, EL_ERR_STATE, "no key change is pending for %s", peer_id);
    return el_trust_accept_change(s->trust, peer_id, &e.pending, err, errlen);
}

/* ---- settling ------------------------------------------------------------------------ */

static int count_unsent(const el_hist_outbox_item *it, void *user)
{
    if (!it->enveloped)
        (*(int *)user)++;
    return 0;
}

static int count_peer(const char *peer, unsigned pending, void *user)
{
    (void)pending;
    g_ptr_array_add(user, g_strdup(peer));
    return 0;
}

int el_session_unsettled(el_session *s)
{
    int n = 0;
    GPtrArray *peers = g_ptr_array_new_with_free_func(g_free);
    el_hist_outbox_peers(s->hist, count_peer, peers, NULL, 0);
    for (guint i = 0; i < peers->len; i++)
        el_hist_outbox_list(s->hist, g_ptr_array_index(peers, i), 0, count_unsent, &n, NULL, 0);
    g_ptr_array_free(peers, TRUE);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->peers);
    while (g_hash_table_iter_next(&it, &k, &v))
        n += (int)((sess_peer *)v)->receipts->len;
    g_hash_table_iter_init(&it, s->peers);
    while (g_hash_table_iter_next(&it, &k, &v))
        n += sess_file_unfinished(s, v); /* accepted, not complete: resumes later */
    return n + (int)g_hash_table_size(s->enveloping) + (int)g_hash_table_size(s->xouts) +
           (int)g_hash_table_size(s->xins) + (int)s->hash_jobs->len;
}

/* ---- stats ------------------------------------------------------------------------------------ */

void el_session_get_stats(const el_session *s, el_session_stats *out)
{
    *out = s->stats;
}

json_t *el_session_stats_json(const el_session *s)
{
    const el_session_stats *st = &s->stats;
    el_link_stats sum = {0}, one;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->peers);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        el_link_get_stats(((sess_peer *)v)->link, &one);
        sum.connects += one.connects;
        sum.restarts += one.restarts;
        sum.failures += one.failures;
    }
    json_t *links = json_pack("{s:i, s:i, s:i}", "connects", (int)sum.connects, "ice_restarts",
                              (int)sum.restarts, "failures", (int)sum.failures);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:o}",
                     "sent", (json_int_t)st->sent, "received", (json_int_t)st->received,
                     "duplicates", (json_int_t)st->duplicates, "dropped", (json_int_t)st->dropped,
                     "envelopes_sent", (json_int_t)st->envelopes_sent, "envelopes_received",
                     (json_int_t)st->envelopes_received, "file_bytes_out",
                     (json_int_t)st->file_bytes_out, "file_bytes_in", (json_int_t)st->file_bytes_in,
                     "file_buffered", (json_int_t)st->file_buffered, "file_buffered_max",
                     (json_int_t)st->file_buffered_max, "links_ready", (int)st->links_ready,
                     "msg_syntax", (json_int_t)s->mstats.syntax, "msg_unknown",
                     (json_int_t)s->mstats.unknown, "links", links);
}
