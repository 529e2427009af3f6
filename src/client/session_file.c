/* session_file.c - file transfers of a session (PROTOCOL.md §11 FILE_*):
 *
 *   sender                               receiver
 *   FILE_META (outbox) ----------------->  stored, offered (accepted at once
 *                                          with auto-accept)
 *            <----------------------------  FILE_ACCEPT {offset} (sent on every
 *                                          ready connection while unfinished)
 *   a new f: channel, 0x02 chunks from
 *   offset, read from disk only while the
 *   channel holds < XOUT_HIGH bytes ----->  written at their offset, hashed
 *            <----------------------------  FILE_COMPLETE (outbox) after the
 *                                          SHA-256 matched
 *
 * Resuming needs nothing special: after any break (a lost connection, a
 * restart of either side) the receiver's FILE_ACCEPT names the first byte it
 * does not have, read from its .part file. */
#include "client/session_int.h"

#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XOUT_HIGH (1u << 20)        /* file bytes queued on a channel at most */
#define XOUT_LOW (256u << 10)       /* ... refilled below this */
#define PROGRESS_STEP (4u << 20)    /* a progress event every 4 MiB */

static int64_t now_ms(void)
{
    return (int64_t)el_msg_now_ms();
}

/* ---- transfer objects --------------------------------------------------------- */

void sess_xout_free(void *data)
{
    sess_xout *x = data;
    if (x->ch && el_channel_get_state(x->ch) == EL_CHANNEL_OPEN)
        el_channel_close(x->ch);
    el_xfer_src_free(x->src);
    free(x->buf);
    free(x);
}

void sess_xin_free(void *data)
{
    sess_xin *x = data;
    el_xfer_sink_free(x->sink);
    free(x);
}

/* The sum of file bytes queued on channels: what files cost in memory now. */
static void update_gauge(el_session *s)
{
    size_t total = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->xouts);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        sess_xout *x = v;
        if (x->ch && x->open)
            total += el_channel_buffered_amount(x->ch);
    }
    s->stats.file_buffered = total;
    if (total > s->stats.file_buffered_max)
        s->stats.file_buffered_max = total;
}

static void emit_progress(el_session *s, const char *conv, const char *file_id, int out,
                          uint64_t bytes, uint64_t size)
{
    sess_emit(s, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "event", "file_progress", "conv",
                           conv, "file_id", file_id, "direction", out ? "out" : "in", "bytes",
                           (json_int_t)bytes, "size", (json_int_t)size));
}

static void emit_failed(el_session *s, const char *conv, const char *file_id, int out,
                        const char *error)
{
    sess_emit(s, json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "file_failed", "conv", conv,
                           "file_id", file_id, "direction", out ? "out" : "in", "error", error));
}

/* A copy of the history row of a transfer. */
typedef struct {
    int found;
    char conv[2 + EL_MSG_ID_SIZE + 1];
    char peer[EL_PEER_ID_LEN + 1];
    int outgoing;
    char name[EL_XFER_NAME_MAX + 1];
    char path[PATH_MAX];
    char sha256[EL_XFER_HEX_SIZE];
    uint64_t size, offset;
    el_hist_file_state state;
} file_row;

static int copy_file(const el_hist_file *f, void *user)
{
    file_row *r = user;
    r->found = 1;
    snprintf(r->conv, sizeof r->conv, "%s", f->conv);
    snprintf(r->peer, sizeof r->peer, "%s", f->peer);
    r->outgoing = f->outgoing;
    snprintf(r->name, sizeof r->name, "%s", f->name);
    snprintf(r->path, sizeof r->path, "%s", f->path ? f->path : "");
    snprintf(r->sha256, sizeof r->sha256, "%s", f->sha256);
    r->size = f->size;
    r->offset = f->offset;
    r->state = f->state;
    return 0;
}

static int get_file(el_session *s, const char *file_id, file_row *r)
{
    memset(r, 0, sizeof *r);
    el_hist_file_get(s->hist, file_id, copy_file, r, NULL, 0);
    return r->found;
}

static int is_final(el_hist_file_state st)
{
    return st == EL_HIST_COMPLETE || st == EL_HIST_CANCELLED || st == EL_HIST_FAILED;
}

/* ---- sending -------------------------------------------------------------------- */

static void pump(el_session *s, sess_xout *x)
{
    char err[200];
    while (x->open && x->offset < x->size &&
           el_channel_buffered_amount(x->ch) < XOUT_HIGH) {
        size_t n = 0;
        if (el_xfer_src_read(x->src, x->offset, x->buf + EL_CHUNK_HDR, EL_XFER_CHUNK, &n, err,
                             sizeof err) != 0 || n == 0) {
            char fid[EL_MSG_ID_SIZE]; /* x goes with the cancel */
            snprintf(fid, sizeof fid, "%s", x->file_id);
            sess_error(s, "cannot read %s: %s", fid, n == 0 ? "the file shrank" : err);
            el_session_cancel_file(s, fid, "the file changed while it was being sent", NULL, 0);
            return;
        }
        el_msg_chunk_header(x->buf, x->fid, x->offset);
        int rc = el_link_send(x->peer->link, x->ch, x->buf, EL_CHUNK_HDR + n);
        if (rc == EL_ERR_QUOTA)
            break; /* the association's queue is full: on_buffered_low resumes */
        if (rc != 0) {
            char fid[EL_MSG_ID_SIZE];
            snprintf(fid, sizeof fid, "%s", x->file_id);
            el_session_cancel_file(s, fid, el_strerror(rc), NULL, 0);
            return;
        }
        x->offset += n;
        s->stats.file_bytes_out += n;
        if (x->offset - x->last_progress >= PROGRESS_STEP || x->offset == x->size) {
            x->last_progress = x->offset;
            emit_progress(s, x->conv, x->file_id, 1, x->offset, x->size);
        }
    }
    update_gauge(s);
}

static sess_xout *xout_by_channel(el_session *s, el_channel *ch)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->xouts);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (((sess_xout *)v)->ch == ch)
            return v;
    return NULL;
}

/* The receiver asked for the bytes from `offset` on. */
static void on_accept(el_session *s, sess_peer *p, const el_msg *m)
{
    const char *fid = m->u.file_accept.file_id;
    file_row r;
    if (!get_file(s, fid, &r) || !r.outgoing || strcmp(r.peer, p->peer_id) != 0 ||
        is_final(r.state) || m->u.file_accept.offset > r.size) {
        EL_WARN("session: FILE_ACCEPT for %.8s from %.8s ignored (unknown, finished or not "
                "theirs)", fid, p->peer_id);
        return;
    }
    g_hash_table_remove(s->xouts, fid); /* a resume replaces a running stream */
    char err[200] = "out of memory";
    sess_xout *x = calloc(1, sizeof *x);
    if (!x || !(x->buf = malloc(EL_CHUNK_HDR + EL_XFER_CHUNK)) ||
        el_xfer_src_open(r.path, &x->src, err, sizeof err) != 0) {
        if (x)
            sess_xout_free(x);
        sess_error(s, "cannot send %s: %s", r.name, x ? err : "out of memory");
        el_session_cancel_file(s, fid, "the sender cannot read the file", NULL, 0);
        return;
    }
    snprintf(x->file_id, sizeof x->file_id, "%s", fid);
    el_hex_decode(fid, EL_MSG_ID_HEX, x->fid, sizeof x->fid);
    snprintf(x->conv, sizeof x->conv, "%s", r.conv);
    x->peer = p;
    x->size = r.size;
    x->offset = x->last_progress = m->u.file_accept.offset;
    if (el_xfer_src_size(x->src) != r.size) {
        sess_xout_free(x);
        el_session_cancel_file(s, fid, "the file changed since it was offered", NULL, 0);
        return;
    }
    g_hash_table_insert(s->xouts, x->file_id, x);
    el_hist_file_set_state(s->hist, fid, EL_HIST_ACTIVE, NULL, NULL, now_ms(), NULL, 0);
    if (x->offset == x->size)
        return; /* nothing left: the receiver completes on its side */
    x->ch = el_link_open_channel(p->link, err, sizeof err);
    if (!x->ch)
        EL_WARN("session: no channel for %.8s yet: %s", fid, err);
    else
        el_channel_set_buffered_low_threshold(x->ch, XOUT_LOW);
}

static void on_complete(el_session *s, sess_peer *p, const el_msg *m)
{
    const char *fid = m->u.file_complete.file_id;
    file_row r;
    if (!get_file(s, fid, &r) || !r.outgoing || strcmp(r.peer, p->peer_id) != 0)
        return;
    g_hash_table_remove(s->xouts, fid);
    update_gauge(s);
    if (el_hist_file_set_state(s->hist, fid, EL_HIST_COMPLETE, NULL, NULL, now_ms(), NULL, 0) != 0)
        return;
    el_hist_file_set_offset(s->hist, fid, r.size, now_ms(), NULL, 0);
    sess_emit(s, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event", "file_complete", "conv",
                           r.conv, "file_id", fid, "direction", "out", "path", r.path, "sha256",
                           m->u.file_complete.sha256));
}

/* ---- receiving ------------------------------------------------------------------ */

static void send_accept(el_session *s, sess_xin *x)
{
    el_msg m;
    el_msg_init(&m, EL_MSG_T_FILE_ACCEPT);
    snprintf(m.u.file_accept.file_id, sizeof m.u.file_accept.file_id, "%s", x->file_id);
    m.u.file_accept.offset = el_xfer_sink_offset(x->sink);
    x->accepted_at = m.u.file_accept.offset;
    uint8_t *pt = NULL;
    size_t len = 0;
    if (sess_build(&m, &pt, &len, NULL, 0) == 0)
        sess_send_now(s, x->peer, pt, len); /* not READY: sent again on the next ready */
    free(pt);
}

static void queue_to(el_session *s, const char *peer, el_msg *m)
{
    uint8_t *pt = NULL;
    size_t len = 0;
    char err[160];
    int rc = sess_build(m, &pt, &len, err, sizeof err);
    if (rc == 0)
        rc = sess_queue(s, peer, m, pt, len, err, sizeof err);
    if (rc != 0)
        sess_error(s, "cannot queue a %s: %s", el_msg_type_name(m->type), err);
    free(pt);
}

static void finish(el_session *s, sess_xin *x)
{
    char err[200], fid[EL_MSG_ID_SIZE], conv[sizeof x->conv], peer[EL_PEER_ID_LEN + 1];
    char *path = NULL;
    snprintf(fid, sizeof fid, "%s", x->file_id);
    snprintf(conv, sizeof conv, "%s", x->conv);
    snprintf(peer, sizeof peer, "%s", x->peer->peer_id);
    file_row r;
    get_file(s, fid, &r);
    int rc = el_xfer_sink_finish(x->sink, &path, err, sizeof err);
    if (rc != 0 && rc != EL_ERR_CRYPTO) {
        /* our disk, not the data (a rename, an fsync): the bytes stay and
         * the next connection's FILE_ACCEPT tries again */
        sess_error(s, "cannot finish %s: %s", fid, err);
        g_hash_table_remove(s->xins, fid);
        return;
    }
    g_hash_table_remove(s->xins, fid);
    el_msg m;
    if (rc != 0) {
        el_hist_file_set_state(s->hist, fid, EL_HIST_FAILED, err, NULL, now_ms(), NULL, 0);
        el_msg_init(&m, EL_MSG_T_FILE_CANCEL);
        snprintf(m.u.file_cancel.file_id, sizeof m.u.file_cancel.file_id, "%s", fid);
        m.u.file_cancel.has_reason = 1;
        m.u.file_cancel.reason = el_msg_cstr("SHA-256 mismatch");
        queue_to(s, peer, &m);
        emit_failed(s, conv, fid, 0, err);
        return;
    }
    el_hist_file_set_offset(s->hist, fid, r.size, now_ms(), NULL, 0);
    el_hist_file_set_state(s->hist, fid, EL_HIST_COMPLETE, NULL, path, now_ms(), NULL, 0);
    el_msg_init(&m, EL_MSG_T_FILE_COMPLETE);
    snprintf(m.u.file_complete.file_id, sizeof m.u.file_complete.file_id, "%s", fid);
    snprintf(m.u.file_complete.sha256, sizeof m.u.file_complete.sha256, "%s", r.sha256);
    queue_to(s, peer, &m);
    sess_emit(s, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event", "file_complete", "conv",
                           conv, "file_id", fid, "direction", "in", "path", path, "sha256",
                           r.sha256));
    free(path);
}

/* Opens (or finds) the sink of an accepted incoming transfer. */
static sess_xin *open_xin(el_session *s, sess_peer *p, const char *fid, file_row *r, char *err,
                          size_t errlen)
{
    sess_xin *x = g_hash_table_lookup(s->xins, fid);
    if (x)
        return x;
    x = calloc(1, sizeof *x);
    if (!x) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (el_xfer_sink_open(s->download_dir, fid, r->name, r->size, r->sha256, &x->sink, err,
                          errlen) != 0) {
        free(x);
        return NULL;
    }
    snprintf(x->file_id, sizeof x->file_id, "%s", fid);
    snprintf(x->conv, sizeof x->conv, "%s", r->conv);
    x->peer = p;
    x->last_progress = x->last_saved = el_xfer_sink_offset(x->sink);
    g_hash_table_insert(s->xins, x->file_id, x);
    return x;
}

static int accept_file(el_session *s, sess_peer *p, const char *fid, char *err, size_t errlen)
{
    file_row r;
    if (!get_file(s, fid, &r) || r.outgoing)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "no incoming file %s", fid);
    if (is_final(r.state))
        return el_seterr(err, errlen, EL_ERR_STATE, "file %s is already %s", fid,
                         el_hist_file_state_name(r.state));
    sess_xin *x = open_xin(s, p, fid, &r, err, errlen);
    if (!x)
        return EL_ERR_IO;
    if (r.state == EL_HIST_OFFERED)
        el_hist_file_set_state(s->hist, fid, EL_HIST_ACCEPTED, NULL,
                               el_xfer_sink_part_path(x->sink), now_ms(), NULL, 0);
    if (el_xfer_sink_complete(x->sink)) {
        finish(s, x);
        return EL_OK;
    }
    if (el_link_get_state(p->link) == EL_LINK_READY)
        send_accept(s, x);
    else
        sess_flush(s, p); /* connects; the accept goes out when ready */
    return EL_OK;
}

static int on_meta(el_session *s, sess_peer *p, const el_msg *m, const char *conv)
{
    const char *fid = m->u.file_meta.file_id;
    file_row r;
    if (get_file(s, fid, &r)) {
        EL_WARN("session: FILE_META for a known file %.8s ignored", fid);
        return 0;
    }
    char *name = g_strndup(m->u.file_meta.name.p, m->u.file_meta.name.len);
    char *mime = g_strndup(m->u.file_meta.mime.p, m->u.file_meta.mime.len);
    el_hist_msg row = {.conv = conv, .id = m->id, .author = p->peer_id,
                       .kind = m->u.file_meta.voice ? EL_HIST_VOICE : EL_HIST_FILE,
                       .text = name, .file_id = fid, .ts = (int64_t)m->ts,
                       .received_at = now_ms()};
    el_hist_file f = {.file_id = fid, .conv = conv, .peer = p->peer_id, .msg_id = m->id,
                      .name = name, .size = m->u.file_meta.size, .mime = mime,
                      .sha256 = m->u.file_meta.sha256,
                      .voice_ms = m->u.file_meta.voice ? m->u.file_meta.duration_ms : 0,
                      .state = EL_HIST_OFFERED, .updated_at = now_ms()};
    char err[200];
    int rc = el_hist_msg_add(s->hist, &row, NULL, 0, err, sizeof err);
    if (rc >= 0)
        rc = el_hist_file_put(s->hist, &f, err, sizeof err);
    if (rc < 0) {
        sess_error(s, "cannot record the file %s from %.8s: %s", name, p->peer_id, err);
    } else {
        json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:I}", "event",
                               "file_offer", "conv", conv, "id", m->id, "file_id", fid, "from",
                               p->peer_id, "name", name, "size", (json_int_t)m->u.file_meta.size,
                               "mime", mime, "sha256", m->u.file_meta.sha256, "ts",
                               (json_int_t)m->ts);
        if (m->u.file_meta.voice)
            json_object_set_new(ev, "voice_ms", json_integer(m->u.file_meta.duration_ms));
        sess_emit(s, ev);
        if (s->auto_accept && (!s->max_auto_accept || m->u.file_meta.size <= s->max_auto_accept) &&
            accept_file(s, p, fid, err, sizeof err) != 0)
            sess_error(s, "cannot accept %s: %s", name, err);
    }
    g_free(name);
    g_free(mime);
    return rc < 0 ? rc : 0;
}

static void on_cancel(el_session *s, sess_peer *p, const el_msg *m)
{
    const char *fid = m->u.file_cancel.file_id;
    file_row r;
    if (!get_file(s, fid, &r) || strcmp(r.peer, p->peer_id) != 0 || is_final(r.state))
        return;
    char reason[300];
    snprintf(reason, sizeof reason, "cancelled by the peer%s%.*s",
             m->u.file_cancel.has_reason ? ": " : "",
             m->u.file_cancel.has_reason ? (int)m->u.file_cancel.reason.len : 0,
             m->u.file_cancel.has_reason ? m->u.file_cancel.reason.p : "");
    sess_xin *x = g_hash_table_lookup(s->xins, fid);
    if (x)
        el_xfer_sink_discard(x->sink, NULL, 0);
    else if (!r.outgoing)
        el_xfer_part_remove(s->download_dir, fid, NULL, 0);
    g_hash_table_remove(s->xins, fid);
    g_hash_table_remove(s->xouts, fid);
    update_gauge(s);
    el_hist_file_set_state(s->hist, fid, EL_HIST_CANCELLED, reason, NULL, now_ms(), NULL, 0);
    emit_failed(s, r.conv, fid, r.outgoing, reason);
}

int sess_file_on_msg(el_session *s, sess_peer *p, const el_msg *m, const char *conv)
{
    switch (m->type) {
    case EL_MSG_T_FILE_META:
        if (m->has_group) {
            EL_WARN("session: group files are not supported; FILE_META dropped");
            return 0;
        }
        return on_meta(s, p, m, conv);
    case EL_MSG_T_FILE_ACCEPT: on_accept(s, p, m); break;
    case EL_MSG_T_FILE_COMPLETE: on_complete(s, p, m); break;
    case EL_MSG_T_FILE_CANCEL: on_cancel(s, p, m); break;
    default: break;
    }
    return 0;
}

/* Our disk refused a chunk (full, quota, read-only, I/O error). Waiting
 * would stall the sender for ever, since chunks at later offsets are
 * ignored; so the transfer ends at once: the part file is removed (which
 * gives the space back), the row is FAILED with the reason, the sender gets
 * FILE_CANCEL with it, and the user a file_failed event. A new send of the
 * same file is a new transfer (docs/PROTOCOL.md section 12.3). */
static void fail_in_disk(el_session *s, sess_xin *x, const char *why)
{
    char fid[EL_MSG_ID_SIZE], conv[sizeof x->conv], peer[EL_PEER_ID_LEN + 1], reason[256];
    snprintf(fid, sizeof fid, "%s", x->file_id);
    snprintf(conv, sizeof conv, "%s", x->conv);
    snprintf(peer, sizeof peer, "%s", x->peer->peer_id);
    const char *what = strstr(why, "No space left") ? "the receiver's disk is full"
                       : strstr(why, "quota")        ? "the receiver's disk quota is exceeded"
                                                     : "the receiver cannot write the file";
    snprintf(reason, sizeof reason, "%s", what);
    char derr[200];
    if (el_xfer_sink_discard(x->sink, derr, sizeof derr) != 0)
        EL_WARN("session: cannot remove the part of %.8s: %s", fid, derr);
    g_hash_table_remove(s->xins, fid);
    update_gauge(s);
    char shown[512];
    snprintf(shown, sizeof shown, "%s (%s); the partial file was removed", what, why);
    el_hist_file_set_state(s->hist, fid, EL_HIST_FAILED, shown, NULL, now_ms(), NULL, 0);
    el_msg m;
    el_msg_init(&m, EL_MSG_T_FILE_CANCEL);
    snprintf(m.u.file_cancel.file_id, sizeof m.u.file_cancel.file_id, "%s", fid);
    m.u.file_cancel.has_reason = 1;
    m.u.file_cancel.reason = el_msg_cstr(reason);
    queue_to(s, peer, &m);
    EL_WARN("session: incoming file %.8s failed: %s", fid, shown);
    emit_failed(s, conv, fid, 0, shown);
}

void sess_file_on_chunk(el_session *s, sess_peer *p, el_channel *ch, const el_msg_chunk *c)
{
    char fid[EL_MSG_ID_SIZE];
    el_hex_encode(c->file_id, EL_CHUNK_ID_LEN, fid, sizeof fid);
    sess_xin *x = g_hash_table_lookup(s->xins, fid);
    if (!x || x->peer != p) {
        EL_DEBUG("session: chunk for an unknown transfer %.8s dropped", fid);
        return;
    }
    char err[200];
    int rc = el_xfer_sink_write(x->sink, c->offset, c->data, c->len, err, sizeof err);
    if (rc == EL_ERR_IO || rc == EL_ERR_DENIED) {
        fail_in_disk(s, x, err); /* x is gone */
        return;
    }
    if (rc != 0) {
        EL_DEBUG("session: chunk of %.8s dropped: %s", fid, err); /* stale after a resume */
        return;
    }
    s->stats.file_bytes_in += c->len;
    x->ch = ch;
    uint64_t off = el_xfer_sink_offset(x->sink), size = el_xfer_sink_size(x->sink);
    if (off - x->last_progress >= PROGRESS_STEP || off == size) {
        x->last_progress = off;
        emit_progress(s, x->conv, fid, 0, off, size);
    }
    if (off - x->last_saved >= 8 * PROGRESS_STEP) {
        x->last_saved = off;
        el_hist_file_set_offset(s->hist, fid, off, now_ms(), NULL, 0);
        el_hist_file_set_state(s->hist, fid, EL_HIST_ACTIVE, NULL, NULL, now_ms(), NULL, 0);
    }
    if (el_xfer_sink_complete(x->sink))
        finish(s, x);
}

/* ---- connection events ----------------------------------------------------------- */

typedef struct {
    GPtrArray *ids;
    int count_only;
    int n;
} unfinished;

static int collect_unfinished(const el_hist_file *f, void *user)
{
    unfinished *u = user;
    int wanted = f->outgoing ? f->state == EL_HIST_ACTIVE : f->state != EL_HIST_OFFERED;
    if (!wanted)
        return 0;
    u->n++;
    if (u->ids && !f->outgoing)
        g_ptr_array_add(u->ids, g_strdup(f->file_id));
    return u->count_only ? 1 : 0;
}

int sess_file_unfinished(el_session *s, sess_peer *p)
{
    unfinished u = {NULL, 1, 0};
    el_hist_file_list_unfinished(s->hist, p->peer_id, collect_unfinished, &u, NULL, 0);
    return u.n > 0;
}

void sess_file_on_ready(el_session *s, sess_peer *p)
{
    unfinished u = {g_ptr_array_new_with_free_func(g_free), 0, 0};
    el_hist_file_list_unfinished(s->hist, p->peer_id, collect_unfinished, &u, NULL, 0);
    for (guint i = 0; i < u.ids->len; i++) {
        char err[200];
        if (accept_file(s, p, g_ptr_array_index(u.ids, i), err, sizeof err) != 0)
            sess_error(s, "cannot resume a file: %s", err);
    }
    g_ptr_array_free(u.ids, TRUE);
}

void sess_file_on_down(el_session *s, sess_peer *p)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->xouts);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (((sess_xout *)v)->peer == p) {
            ((sess_xout *)v)->ch = NULL; /* gone with the connection */
            g_hash_table_iter_remove(&it);
        }
    update_gauge(s);
}

void sess_file_on_channel_open(el_session *s, sess_peer *p, el_channel *ch)
{
    (void)p;
    sess_xout *x = xout_by_channel(s, ch);
    if (!x)
        return; /* the remote's channels carry chunks to us: nothing to do */
    x->open = 1;
    pump(s, x);
}

void sess_file_on_channel_close(el_session *s, sess_peer *p, el_channel *ch)
{
    sess_xout *x = xout_by_channel(s, ch);
    if (x) {
        x->ch = NULL;
        x->open = 0;
        update_gauge(s);
        return;
    }
    /* a channel bringing us a file closed while the connection lives on:
     * ask again from the bytes we have (the sender opens a new channel).
     * Only the transfer that came on it, and only if it moved since our
     * last FILE_ACCEPT: the sender closes a stream it replaces, and that
     * close must not ask again. */
    if (el_link_get_state(p->link) != EL_LINK_READY)
        return;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->xins);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        sess_xin *in = v;
        if (in->peer == p && in->ch == ch && el_xfer_sink_offset(in->sink) != in->accepted_at)
            send_accept(s, in);
    }
}

void sess_file_on_low(el_session *s, sess_peer *p, el_channel *ch)
{
    (void)p;
    sess_xout *x = xout_by_channel(s, ch);
    if (x)
        pump(s, x);
}

/* ---- public ------------------------------------------------------------------------ */

/* ---- offering a file: hashed on a thread of its own ----------------------
 *
 * Hashing reads the whole file (about 1 s per GiB): on the session's thread
 * it would stall every connection, so el_session_send_file opens and checks
 * the file, then a thread hashes it while the session goes on; the offer is
 * recorded and queued when the hash is back (file_failed if it fails). */

struct sess_hash_job {
    el_session *s;
    GThread *thread;
    gint abort;                   /* atomic: the session is going away */
    GSource *done;                /* attached by the thread when it ends */
    el_xfer_src *src;
    char fid[EL_MSG_ID_SIZE];
    char conv[2 + EL_MSG_ID_SIZE + 1];
    char peer[EL_PEER_ID_LEN + 1];
    char name[EL_XFER_NAME_MAX + 1];
    char *path;                   /* absolute */
    const char *mime;             /* static */
    uint32_t voice_ms;
    char sha[EL_XFER_HEX_SIZE];
    int rc;
    char err[256];
};

static int hash_abort(uint64_t done, uint64_t total, void *user)
{
    (void)done;
    (void)total;
    return g_atomic_int_get(&((sess_hash_job *)user)->abort);
}

static void job_free(sess_hash_job *j)
{
    el_xfer_src_free(j->src);
    free(j->path);
    free(j);
}

/* Records the offer (history row, transfer, outbox) and sends it. */
static int offer_file(el_session *s, sess_hash_job *j, char *err, size_t errlen)
{
    el_msg m;
    el_msg_init(&m, EL_MSG_T_FILE_META);
    snprintf(m.u.file_meta.file_id, sizeof m.u.file_meta.file_id, "%s", j->fid);
    m.u.file_meta.name = el_msg_cstr(j->name);
    m.u.file_meta.size = el_xfer_src_size(j->src);
    m.u.file_meta.mime = el_msg_cstr(j->mime);
    snprintf(m.u.file_meta.sha256, sizeof m.u.file_meta.sha256, "%s", j->sha);
    snprintf(m.u.file_meta.channel, sizeof m.u.file_meta.channel, "f:%s", j->fid);
    m.u.file_meta.voice = j->voice_ms > 0;
    m.u.file_meta.duration_ms = j->voice_ms;
    uint8_t *pt = NULL;
    size_t len = 0;
    int rc = sess_build(&m, &pt, &len, err, errlen);
    if (rc == 0) {
        const char *to[] = {j->peer, NULL};
        el_hist_msg row = {.conv = j->conv, .id = m.id, .author = s->self, .outgoing = true,
                           .kind = j->voice_ms ? EL_HIST_VOICE : EL_HIST_FILE, .text = j->name,
                           .file_id = j->fid, .ts = (int64_t)m.ts, .received_at = (int64_t)m.ts};
        el_hist_file f = {.file_id = j->fid, .conv = j->conv, .peer = j->peer, .outgoing = true,
                          .msg_id = m.id, .name = j->name, .path = j->path,
                          .size = m.u.file_meta.size, .mime = j->mime, .sha256 = j->sha,
                          .voice_ms = j->voice_ms, .state = EL_HIST_OFFERED,
                          .updated_at = (int64_t)m.ts};
        rc = sess_tx_begin(s, err, errlen);
        if (rc == 0) {
            rc = el_hist_msg_add(s->hist, &row, to, 1, err, errlen);
            if (rc >= 0)
                rc = el_hist_file_put(s->hist, &f, err, errlen);
            if (rc >= 0)
                rc = el_hist_outbox_add(s->hist, j->peer, m.id, pt, len, (int64_t)m.ts, NULL,
                                        err, errlen);
            int erc = sess_tx_end(s, rc >= 0, err, errlen);
            if (rc >= 0)
                rc = erc;
        }
    }
    free(pt);
    if (rc != 0)
        return rc;
    s->stats.sent++;
    sess_peer *p = sess_peer_get(s, j->peer);
    if (p)
        sess_flush(s, p);
    return EL_OK;
}

static gboolean job_done(gpointer data)
{
    sess_hash_job *j = data;
    el_session *s = j->s;
    g_thread_join(j->thread);
    g_source_unref(j->done);
    g_ptr_array_remove_fast(s->hash_jobs, j);
    char err[256];
    int rc = j->rc != 0 ? j->rc : offer_file(s, j, err, sizeof err);
    if (rc != 0)
        emit_failed(s, j->conv, j->fid, 1, j->rc != 0 ? j->err : err);
    job_free(j);
    return G_SOURCE_REMOVE;
}

static gpointer job_thread(gpointer data)
{
    sess_hash_job *j = data;
    j->rc = el_xfer_src_sha256_progress(j->src, j->sha, hash_abort, j, j->err, sizeof j->err);
    GSource *src = g_idle_source_new();
    g_source_set_callback(src, job_done, j, NULL);
    j->done = src; /* read by the session thread only after joining us */
    g_source_attach(src, j->s->ctx);
    return NULL;
}

void sess_file_jobs_free(el_session *s)
{
    for (guint i = 0; s->hash_jobs && i < s->hash_jobs->len; i++) {
        sess_hash_job *j = g_ptr_array_index(s->hash_jobs, i);
        g_atomic_int_set(&j->abort, 1);
        g_thread_join(j->thread);
        if (j->done) {
            g_source_destroy(j->done);
            g_source_unref(j->done);
        }
        job_free(j);
    }
    if (s->hash_jobs)
        g_ptr_array_free(s->hash_jobs, TRUE);
    s->hash_jobs = NULL;
}

int el_session_send_file(el_session *s, const char *conv, const char *path, uint32_t voice_ms,
                         char out_file_id[33], char *err, size_t errlen)
{
    char norm[2 + EL_MSG_ID_SIZE + 1], peer[EL_MSG_ID_SIZE];
    int group = 0;
    int rc = sess_parse_conv(conv, norm, &group, peer, err, errlen);
    if (rc != 0)
        return rc;
    if (group)
        return el_seterr(err, errlen, EL_ERR_INVALID, "files go to one peer at a time for now");
    if (voice_ms > EL_MSG_DURATION_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "a voice message is at most 24 h long");
    sess_hash_job *j = calloc(1, sizeof *j);
    if (!j)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    j->s = s;
    rc = el_xfer_src_open(path, &j->src, err, errlen);
    if (rc == 0) {
        j->mime = el_xfer_guess_mime(el_xfer_src_name(j->src));
        if (voice_ms && strncmp(j->mime, "audio/", 6) != 0)
            rc = el_seterr(err, errlen, EL_ERR_INVALID, "a voice message must be an audio file "
                                                        "(.ogg, .opus, .mp3, .wav, .m4a)");
    }
    if (rc == 0 && !(j->path = realpath(path, NULL)))
        rc = el_seterr(err, errlen, EL_ERR_IO, "cannot resolve %s", path);
    if (rc != 0) {
        job_free(j);
        return rc;
    }
    el_msg_new_id(j->fid);
    snprintf(j->conv, sizeof j->conv, "%s", norm);
    snprintf(j->peer, sizeof j->peer, "%s", peer);
    snprintf(j->name, sizeof j->name, "%s", el_xfer_src_name(j->src));
    j->voice_ms = voice_ms;
    GError *gerr = NULL;
    j->thread = g_thread_try_new("el-hash", job_thread, j, &gerr);
    if (!j->thread) {
        rc = el_seterr(err, errlen, EL_ERR_NOMEM, "cannot start a thread: %s", gerr->message);
        g_error_free(gerr);
        job_free(j);
        return rc;
    }
    g_ptr_array_add(s->hash_jobs, j);
    if (out_file_id)
        snprintf(out_file_id, 33, "%s", j->fid);
    return EL_OK;
}

int el_session_accept_file(el_session *s, const char *file_id, char *err, size_t errlen)
{
    file_row r;
    if (!file_id || !get_file(s, file_id, &r) || r.outgoing)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "no incoming file %s",
                         file_id ? file_id : "");
    sess_peer *p = sess_peer_get(s, r.peer);
    if (!p)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    return accept_file(s, p, file_id, err, errlen);
}

int el_session_cancel_file(el_session *s, const char *file_id_arg, const char *reason, char *err,
                           size_t errlen)
{
    /* a copy: the caller's string may belong to a transfer freed below */
    char file_id[EL_MSG_ID_SIZE] = "";
    if (file_id_arg)
        snprintf(file_id, sizeof file_id, "%s", file_id_arg);
    file_row r;
    if (!file_id_arg || !get_file(s, file_id, &r))
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "no file %s", file_id);
    if (is_final(r.state))
        return el_seterr(err, errlen, EL_ERR_STATE, "file %s is already %s", file_id,
                         el_hist_file_state_name(r.state));
    sess_xin *x = g_hash_table_lookup(s->xins, file_id);
    if (x)
        el_xfer_sink_discard(x->sink, NULL, 0);
    else if (!r.outgoing)
        el_xfer_part_remove(s->download_dir, file_id, NULL, 0);
    g_hash_table_remove(s->xins, file_id);
    g_hash_table_remove(s->xouts, file_id);
    update_gauge(s);
    char why[300];
    snprintf(why, sizeof why, "cancelled%s%s", reason ? ": " : "", reason ? reason : "");
    el_hist_file_set_state(s->hist, file_id, EL_HIST_CANCELLED, why, NULL, now_ms(), NULL, 0);
    el_msg m;
    el_msg_init(&m, EL_MSG_T_FILE_CANCEL);
    snprintf(m.u.file_cancel.file_id, sizeof m.u.file_cancel.file_id, "%s", file_id);
    if (reason) {
        m.u.file_cancel.has_reason = 1;
        m.u.file_cancel.reason = el_msg_cstr(reason);
    }
    queue_to(s, r.peer, &m);
    emit_failed(s, r.conv, file_id, r.outgoing, why);
    return EL_OK;
}
