/* session.h - a logged-in EchoLink user: the session layer of libecholink.
 *
 * An el_session joins the signaling client (signal.h), one el_link per
 * remote peer (link.h: WebRTC data channels with the E2EE session of
 * PROTOCOL.md §9), the local database (history.h) and the file transfers
 * (xfer.h) into a messenger:
 *
 * - Every message the user sends is written to the outbox (history.db)
 *   before anything goes on the wire, and stays there until the recipient's
 *   DELIVERY_RECEIPT. When a secure connection to the recipient becomes
 *   ready, its whole outbox is sent in order; receivers de-duplicate by
 *   (author, id) and receipt duplicates again, so the user sees each
 *   message exactly once, in order. A recipient that is offline gets a
 *   sealed copy (PROTOCOL.md §10.3) through the server's offline queue.
 * - Connections are made on demand (something to send, or the remote
 *   offers) and rebuilt by el_link with ICE restart, then renegotiation,
 *   with backoff. An open connection keeps working while the signaling
 *   server is away; el_signal logs in again by itself.
 * - Files travel on channels of their own, 64 KiB chunks read from disk
 *   only when the channel's buffer has room, written at their offset on the
 *   other side, SHA-256 verified, resumed from the receiver's offset after
 *   any break (FILE_ACCEPT carries it).
 * - Groups: the admin-signed state of §11.1, messages fanned out by the
 *   sender, one copy per member.
 *
 * Events: the session reports everything as one JSON object per event,
 * {"event": NAME, ...}; `echolink listen --json` prints them as they are,
 * the terminal UI reads them. Names and members:
 *
 *   signal          state ("connecting"|"connected"|"online"|"offline"|"stopped"), reason?, retry_ms?
 *   login           peer_id, name
 *   presence        peer_id, online (bool), name?
 *   contact_request from, name?, message?
 *   contact_added   peer_id, name?          contact_refused / contact_removed: peer_id
 *   link            peer_id, state ("idle"|"connecting"|"ready"|"held"), reason?
 *   key_changed     peer_id, safety (the new safety number)
 *   message         conv, id, from, ts, text, reply_to?, group?, offline (bool: came as an envelope)
 *   status          id, peer, status ("sent"|"delivered"|"read"), via ("link"|"envelope", for sent)
 *   typing          conv, from, typing (bool)
 *   reaction        conv, target, from, emoji, remove (bool)
 *   edit            conv, target, from, text
 *   delete          conv, target, from
 *   file_offer      conv, file_id, from, name, size, mime, voice_ms?
 *   file_progress   conv, file_id, direction ("in"|"out"), bytes, size
 *   file_complete   conv, file_id, direction, path, sha256
 *   file_failed     conv, file_id, direction, error   (cancelled too: error "cancelled: ...")
 *   group           group_id, name, version, admins, members, by (peer id), change?
 *   error           message
 *
 * conv is "p:<peer_id>" for a direct conversation, "g:<group_id>" for a
 * group (as in history.h).
 *
 * Threads: everything runs on the GMainContext given to el_session_new,
 * which must be the thread-default context of the thread iterating it
 * (libsoup). Not thread-safe. */
#ifndef EL_CLIENT_SESSION_H
#define EL_CLIENT_SESSION_H

#include <glib.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/identity.h"

typedef struct el_session el_session;
struct el_hist;

typedef void (*el_session_event_cb)(el_session *s, json_t *event, void *user);

typedef struct {
    const char *const *server_urls; /* NULL-terminated, at least one */
    const char *name;               /* display name sent at login, or NULL */
    const char *history_path;       /* history.db */
    const char *trust_path;         /* trust.db */
    const char *download_dir;       /* received files land here */
    /* restrict ICE gathering to these local addresses (tests), or NULL */
    const char *const *local_addresses;
    int auto_accept_files;          /* 1: accept every offered file at once */
    uint64_t max_auto_accept;       /* largest file accepted unasked; 0 = no limit */
} el_session_config;

/* Creates the session of identity `id` (borrowed: it must outlive the
 * session) and opens its databases. Nothing happens on the network before
 * el_session_start. NULL with the reason in err on failure. */
el_session *el_session_new(GMainContext *ctx, const el_identity *id, const el_session_config *cfg,
                           el_session_event_cb cb, void *user, char *err, size_t errlen);
int el_session_start(el_session *s, char *err, size_t errlen);
void el_session_free(el_session *s);

const char *el_session_peer_id(const el_session *s);
struct el_hist *el_session_history(el_session *s);
int el_session_is_online(const el_session *s);

/* ---- Messages ----------------------------------------------------------
 * `conv` is "p:<peer_id>" or "g:<group_id>" (a bare peer ID is accepted as
 * "p:"). Functions that create a message write its id (32 hex) into out_id
 * when not NULL. They return EL_OK once the message is safely in the
 * outbox, whether or not it could be sent yet. */
int el_session_send_text(el_session *s, const char *conv, const char *text, const char *reply_to,
                         char out_id[33], char *err, size_t errlen);
int el_session_send_typing(el_session *s, const char *conv, int typing);
int el_session_react(el_session *s, const char *conv, const char *target, const char *emoji,
                     int remove, char *err, size_t errlen);
int el_session_edit(el_session *s, const char *conv, const char *target, const char *text,
                    char *err, size_t errlen);
int el_session_delete(el_session *s, const char *conv, const char *target, char *err,
                      size_t errlen);
/* Marks every unread incoming message of conv read and sends READ_RECEIPTs.
 * Returns the number marked. */
int el_session_mark_read(el_session *s, const char *conv, char *err, size_t errlen);

/* ---- Files ------------------------------------------------------------- */
/* Offers a file (voice_ms > 0: a voice message, mime must be audio/...).
 * The file is hashed first (blocking: about 1 s per GiB). */
int el_session_send_file(el_session *s, const char *conv, const char *path, uint32_t voice_ms,
                         char out_file_id[33], char *err, size_t errlen);
int el_session_accept_file(el_session *s, const char *file_id, char *err, size_t errlen);
int el_session_cancel_file(el_session *s, const char *file_id, const char *reason, char *err,
                           size_t errlen);

/* ---- Contacts (server side, PROTOCOL.md §4) ----------------------------- */
/* op: "contact_request", "contact_respond", "contact_remove", "block",
 * "unblock", "get_contacts", "profile_update", "profile_get", "group_list"
 * with its JSON argument (borrowed); the ack object goes to cb, or
 * {"ok":false,"error":"timeout"|"disconnected"|"cancelled"} (cancelled:
 * el_session_free came first; cb then runs inside el_session_free). */
typedef void (*el_session_reply_cb)(el_session *s, json_t *reply, void *user);
int el_session_server_call(el_session *s, const char *op, json_t *arg, el_session_reply_cb cb,
                           void *user, char *err, size_t errlen);

/* ---- Groups (§11.1) ------------------------------------------------------ */
/* Creates a group with us as its admin and `members` (peer IDs, contacts)
 * through the server's directory, then signs and sends GROUP_CREATED. The
 * group id arrives in the "group" event; cb (may be NULL) gets the server's
 * ack. */
int el_session_group_create(el_session *s, const char *name, const char *const *members,
                            size_t n, el_session_reply_cb cb, void *user, char *err,
                            size_t errlen);
/* Admin changes: add/remove one member, rename, hand admin over (the new
 * admin replaces us). Signed GROUP_UPDATE to every old and new member. */
int el_session_group_add(el_session *s, const char *group_id, const char *peer_id, char *err,
                         size_t errlen);
int el_session_group_remove(el_session *s, const char *group_id, const char *peer_id, char *err,
                            size_t errlen);
int el_session_group_rename(el_session *s, const char *group_id, const char *name, char *err,
                            size_t errlen);
int el_session_group_set_admin(el_session *s, const char *group_id, const char *peer_id,
                               char *err, size_t errlen);
int el_session_group_leave(el_session *s, const char *group_id, char *err, size_t errlen);

/* ---- Trust --------------------------------------------------------------- */
/* The safety number with a peer (formatted, 60 digits in groups of 5) from
 * the pinned key; EL_ERR_NOT_FOUND before the first connection. */
int el_session_safety_number(el_session *s, const char *peer_id, char *out, size_t outlen,
                             char *err, size_t errlen);
int el_session_set_verified(el_session *s, const char *peer_id, char *err, size_t errlen);
int el_session_accept_key_change(el_session *s, const char *peer_id, char *err, size_t errlen);

/* ---- Introspection ------------------------------------------------------ */

/* How much work still needs this process: outbox rows neither delivered nor
 * in the server's offline queue, receipts owed, files being sent or
 * received. A one-shot `echolink send` waits for 0 before it exits. */
int el_session_unsettled(el_session *s);

typedef struct {
    uint64_t sent, received, duplicates, dropped;  /* messages */
    uint64_t envelopes_sent, envelopes_received;
    uint64_t file_bytes_out, file_bytes_in;
    size_t file_buffered;     /* file bytes queued on data channels (read
                               * from disk, not yet on the wire); received
                               * chunks are written at once: the memory
                               * files use now */
    size_t file_buffered_max; /* its highest value so far */
    unsigned links_ready;
} el_session_stats;
void el_session_get_stats(const el_session *s, el_session_stats *out);
/* The stats as a JSON object (for `echolink` and tests). */
json_t *el_session_stats_json(const el_session *s);

#endif
