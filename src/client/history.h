/* history.h - the client's local database: one SQLite file per profile
 * (e.g. ~/.local/share/echolink/<profile>/history.db) holding everything a
 * session needs to survive a crash or a restart. The server keeps no history;
 * this file is the only copy (docs/PROTOCOL.md §11, issue 5).
 *
 * What is stored, and why:
 *
 *   messages    what the user sees in a conversation, unique by (author, id):
 *               a message arrives once per path (data channel, envelope,
 *               re-send after a reconnect) and is stored once. Deleting keeps
 *               the row (text cleared, deleted set) so the UI can say so.
 *   recipients  per outgoing message and recipient peer: delivered_at and
 *               read_at from that peer's receipts (one recipient in a direct
 *               chat, every member but us in a group).
 *   search      an FTS5 index over message text, kept in step with inserts,
 *               edits and deletes by triggers.
 *   reactions   a set of (conv, target id, reactor, emoji).
 *   seen        (from, id) of protocol messages that are not rows (receipts,
 *               reactions, edits, file control...), for de-duplication.
 *   outbox      the plaintexts still to be delivered, per recipient, in one
 *               global order (seq). A row leaves only when the recipient's
 *               receipt arrives (el_hist_outbox_ack): "no message is ever
 *               lost" is this table.
 *   files       file transfers in both directions, with the confirmed offset
 *               a resume starts from.
 *   groups      our trusted signed group state (§11.1) per group, applied
 *               only forward (higher version).
 *   peers       names and last-seen times, so the UI works offline.
 *
 * Conversations are named by a string `conv`: "p:<peer_id>" for a direct chat,
 * "g:<group_id>" for a group.
 *
 * Conventions shared by every function below:
 *
 * - Results. A function returns EL_OK (0), a non-negative value documented
 *   with it, or a negative el_err (base/err.h), and then, when `err` is not
 *   NULL, writes a NUL-terminated reason of at most errlen bytes into it.
 *   EL_ERR_INVALID: NULL or malformed argument; EL_ERR_TOO_LARGE: over a limit
 *   below; EL_ERR_NOT_FOUND: no such row; EL_ERR_DENIED: the author rule of
 *   edit/delete; EL_ERR_STATE: the row's state forbids it, or a write was
 *   attempted from inside a callback; EL_ERR_EXISTS: a unique key is taken;
 *   EL_ERR_DB / EL_ERR_IO: storage (also logged with EL_WARN).
 * - Inputs. Strings are NUL-terminated and only borrowed during the call.
 *     id        message, file and group ids: 32 lowercase hex (§11)
 *     peer      exactly 32 characters of [a-z2-7] (§2)
 *     conv      "p:" + peer, or "g:" + id
 *     text      valid UTF-8, limits in bytes as below (embedded NULs cannot
 *               be stored: the string ends at the first one)
 *   Nothing is written when an input is rejected.
 * - Time. Every time is unix milliseconds (>= 0) passed in by the caller; this
 *   module never reads a clock. 0 means "never" in stored times (edited_at,
 *   read_at, delivered_at), so the times that set them must be > 0.
 * - Callbacks. Lists (and the getters of rows holding long text) call a
 *   callback per row. Pointers in what it receives are valid only during that
 *   call; copy what you keep. The callback returns 0 to go on; any other value
 *   stops the iteration, and a negative value is returned as the function's
 *   result (a callback can pass an el_err back). Otherwise a list returns the
 *   number of rows delivered. A callback may call read functions of the same
 *   handle; a write from inside a callback fails with EL_ERR_STATE. If a list
 *   fails before its first row, the callback never fires.
 * - Atomicity. Every function takes effect completely or not at all. To make
 *   several calls one unit (a message row and its outbox rows; a batch of
 *   receipts), wrap them in el_hist_begin / el_hist_commit: inside, a failing
 *   call undoes only itself and the caller decides to commit or roll back.
 * - Durability. synchronous=NORMAL in WAL mode: a committed call survives a
 *   crash of the process; a power loss may drop the last commits (fsync
 *   happens at checkpoints, not at every commit). Still batch hot writes
 *   (receipts of one READ_RECEIPT, file offsets) in one transaction.
 * - Storage. The file is created with mode 0600; an existing file whose mode
 *   grants anything to group or others is refused (EL_ERR_DENIED, "chmod 600
 *   it"). WAL mode, foreign keys on, a 5 s busy timeout. The schema version is
 *   PRAGMA user_version; older files are migrated at open, a newer one is
 *   refused (EL_ERR_DB), never downgraded. ":memory:" opens a private
 *   in-memory database (tests).
 * - Threads. One el_hist is used by one thread at a time.
 */
#ifndef EL_CLIENT_HISTORY_H
#define EL_CLIENT_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EL_HIST_ID_LEN 32              /* message / file / group id, hex digits */
#define EL_HIST_PEER_LEN 32            /* peer id, characters */
#define EL_HIST_TEXT_MAX 32768         /* message text, bytes (§11 CHAT) */
#define EL_HIST_EMOJI_MAX 64           /* reaction, bytes */
#define EL_HIST_OUTBOX_MAX 262144      /* outbox plaintext (kind byte + body) */
#define EL_HIST_FILE_NAME_MAX 255      /* FILE_META name, bytes */
#define EL_HIST_MIME_MAX 127
#define EL_HIST_PATH_MAX 4096
#define EL_HIST_ERROR_MAX 256          /* a transfer's error text, bytes */
#define EL_HIST_GROUP_STATE_MAX 65536  /* signed group state JSON, bytes */
#define EL_HIST_GROUP_NAME_MAX 128
#define EL_HIST_PEER_NAME_MAX 64
#define EL_HIST_QUERY_MAX 1024         /* search query, bytes */

typedef struct el_hist el_hist;

/* ---- Lifetime and transactions ------------------------------------------ */

/* Opens (creating if needed) the database at `path`, whose directory must
 * exist, or ":memory:", and brings its schema up to date. On success *out
 * owns a handle for el_hist_close(); on failure *out is NULL. */
int el_hist_open(el_hist **out, const char *path, char *err, size_t errlen);

/* Closes the handle (rolling back an open transaction). NULL is a no-op. Not
 * from inside a callback of the same handle. */
void el_hist_close(el_hist *h);

/* The schema version of the open database (>= 1), or a negative el_err. */
int el_hist_schema_version(el_hist *h, char *err, size_t errlen);

/* Starts a transaction spanning the following calls (takes the write lock
 * now). EL_ERR_STATE when one is already open. */
int el_hist_begin(el_hist *h, char *err, size_t errlen);
/* Commits it; on failure everything since el_hist_begin is rolled back.
 * EL_ERR_STATE when none is open. */
int el_hist_commit(el_hist *h, char *err, size_t errlen);
/* Rolls it back; a no-op when none is open. */
void el_hist_rollback(el_hist *h);

/* ---- Messages ------------------------------------------------------------ */

typedef enum {
    EL_HIST_CHAT = 1,
    EL_HIST_FILE = 2,   /* the FILE_META of a transfer; file_id set */
    EL_HIST_VOICE = 3,  /* a voice message (a file with a duration) */
    EL_HIST_SYSTEM = 4, /* shown inline: "group renamed", "X left"... */
} el_hist_kind;

/* Delivery state of an outgoing message, aggregated over its recipients. */
typedef enum {
    EL_HIST_INCOMING = 0,  /* not ours: no delivery state */
    EL_HIST_PENDING = 1,   /* some recipient has no delivery receipt yet (or
                              no recipient is recorded) */
    EL_HIST_DELIVERED = 2, /* every recipient confirmed delivery */
    EL_HIST_READ = 3,      /* every recipient read it */
} el_hist_status;

/* One message row. el_hist_msg_add reads conv, id, author, outgoing, kind,
 * text, reply_to, file_id, ts and received_at, and ignores the rest; the
 * callbacks of the getters and lists get every field filled. */
typedef struct el_hist_msg {
    int64_t row;            /* stable row number: the scrollback cursor */
    const char *conv;
    const char *id;
    const char *author;     /* peer id; our own for outgoing messages */
    bool outgoing;
    el_hist_kind kind;
    const char *text;       /* never NULL; "" for a deleted message. On add:
                               1..EL_HIST_TEXT_MAX bytes for CHAT, 0.. for
                               the others (NULL = "") */
    const char *reply_to;   /* id, or NULL */
    const char *file_id;    /* id, or NULL */
    int64_t ts;             /* the sender's timestamp */
    int64_t received_at;    /* our clock when stored */
    int64_t edited_at;      /* 0: never edited */
    bool deleted;
    int64_t read_at;        /* incoming: when we showed it, 0 unread */
    unsigned recipients_n;  /* outgoing: recipients recorded */
    unsigned delivered_n;   /* ... of which confirmed delivery */
    unsigned read_n;        /* ... of which read it (read implies delivered) */
    el_hist_status status;
} el_hist_msg;

typedef int (*el_hist_msg_cb)(const el_hist_msg *m, void *user);

/* Stores a message. For an outgoing one, `recipients` (n_recipients peers,
 * may be NULL when 0) are recorded with it in the same step; an incoming one
 * takes none (EL_ERR_INVALID). Returns 1 when added, 0 when a message with
 * this (author, id) already exists (then nothing changes, recipients
 * included). */
int el_hist_msg_add(el_hist *h, const el_hist_msg *m, const char *const *recipients,
                    size_t n_recipients, char *err, size_t errlen);

/* Adds recipients to our outgoing message (author, id); ones already recorded
 * are skipped. Returns how many were added. EL_ERR_NOT_FOUND without such a
 * message, EL_ERR_STATE when it is not outgoing. */
int el_hist_msg_add_recipients(el_hist *h, const char *author, const char *id,
                               const char *const *peers, size_t n_peers, char *err,
                               size_t errlen);

/* Calls cb once with the message (author, id). EL_OK, EL_ERR_NOT_FOUND (cb not
 * called), or the callback's negative result. */
int el_hist_msg_get(el_hist *h, const char *author, const char *id, el_hist_msg_cb cb,
                    void *user, char *err, size_t errlen);

/* The same for a message known by id within a conversation (a reply's
 * target, a reaction's target), whoever wrote it. */
int el_hist_msg_find(el_hist *h, const char *conv, const char *id, el_hist_msg_cb cb,
                     void *user, char *err, size_t errlen);

/* Scrollback: the newest `limit` (>= 1) messages of `conv` that come before
 * the message `before_row` in display order, or the newest ones when
 * before_row is 0, delivered oldest first. Display order is the order of
 * arrival on this device (row): no clock decides it, so a sender's clock
 * that jumps back cannot move its later messages above its earlier ones
 * (a sender's messages arrive in the order sent, PROTOCOL.md 12.2). For the
 * next page, pass the row of the first message delivered. A before_row that
 * does not exist gives no rows. */
int el_hist_msg_list(el_hist *h, const char *conv, int64_t before_row, unsigned limit,
                     el_hist_msg_cb cb, void *user, char *err, size_t errlen);

/* A delivery / read receipt from `peer` for our outgoing message `id`. Read
 * implies delivered (a read receipt sets delivered_at too when it was unset);
 * times never move: a second receipt of a kind changes nothing. Returns 1
 * when the state advanced, 0 when not: already so, unknown id, or `peer` not a
 * recipient of that message (a receipt from anyone else is ignored). `at` > 0. */
int el_hist_msg_delivered(el_hist *h, const char *peer, const char *id, int64_t at,
                          char *err, size_t errlen);
int el_hist_msg_read_by(el_hist *h, const char *peer, const char *id, int64_t at,
                        char *err, size_t errlen);

/* EDIT_MESSAGE / DELETE_MESSAGE from `author` for its message `id`. Applied
 * only to the row (author, id): when no such row exists, EL_ERR_DENIED if a
 * message with this id by someone else exists, else EL_ERR_NOT_FOUND. A
 * deleted message cannot be edited (EL_ERR_STATE).
 * Edit: text 1..EL_HIST_TEXT_MAX bytes, edited_at > 0. Returns 1 when applied,
 * 0 when stale (an edit with a later edited_at is already stored).
 * Delete: clears the text, sets deleted and drops the message's reactions.
 * Returns 1 when deleted now, 0 when it already was. */
int el_hist_msg_edit(el_hist *h, const char *author, const char *id, const char *text,
                     int64_t edited_at, char *err, size_t errlen);
int el_hist_msg_delete(el_hist *h, const char *author, const char *id, char *err,
                       size_t errlen);

/* Incoming message ids newly marked read, for READ_RECEIPTs (group them by
 * author: one receipt per author, at most 256 ids each). */
typedef int (*el_hist_read_cb)(const char *author, const char *id, void *user);

/* Marks read (read_at = now) every unread incoming message of `conv` (all of
 * them, whatever their received_at: the wall clock may have jumped back
 * since they arrived). cb (may be NULL) gets each newly read one that deserves
 * a receipt (not SYSTEM, not deleted), in no particular order. cb runs before
 * the commit: if it returns a negative value, or the commit fails, nothing is
 * marked and the caller drops what it collected. A positive return does not
 * stop it here (every marked message must reach the caller). Returns how many
 * messages deserved a receipt. */
int el_hist_conv_mark_read(el_hist *h, const char *conv, int64_t now, el_hist_read_cb cb,
                           void *user, char *err, size_t errlen);

/* Unread messages of `conv`: incoming, read_at 0, not deleted, not SYSTEM. */
int el_hist_conv_unread(el_hist *h, const char *conv, char *err, size_t errlen);

typedef struct {
    const char *conv;
    int64_t last_ts;       /* ts of the conversation's latest message (last_row) */
    int64_t last_row;      /* the row of its latest message (a preview) */
    unsigned messages;     /* rows, deleted ones included */
    unsigned unread;       /* as el_hist_conv_unread */
} el_hist_conv;

typedef int (*el_hist_conv_cb)(const el_hist_conv *c, void *user);

/* Every conversation that has a message, most recent (last_row) first. Reads
 * the whole message table: for the contact list, not for a hot path. */
int el_hist_conv_list(el_hist *h, el_hist_conv_cb cb, void *user, char *err,
                      size_t errlen);

/* Full-text search (FTS5, unicode61: case and diacritics ignored). `query` is
 * what the user typed (1..EL_HIST_QUERY_MAX bytes): each whitespace-separated
 * word matches words starting with it, all words must match; FTS syntax is
 * not interpreted. Only `conv` when not NULL. Newest first (display order
 * reversed), at most `limit` (>= 1). Deleted messages never match; edited
 * ones match their current text only. */
int el_hist_search(el_hist *h, const char *query, const char *conv, unsigned limit,
                   el_hist_msg_cb cb, void *user, char *err, size_t errlen);

/* ---- Reactions ----------------------------------------------------------- */

/* Set semantics per (conv, target id, reactor, emoji); emoji 1..64 bytes.
 * The target need not be stored yet (a reaction may overtake its message).
 * add returns 1 added / 0 already there; remove 1 removed / 0 was not there. */
int el_hist_reaction_add(el_hist *h, const char *conv, const char *target,
                         const char *reactor, const char *emoji, int64_t at, char *err,
                         size_t errlen);
int el_hist_reaction_remove(el_hist *h, const char *conv, const char *target,
                            const char *reactor, const char *emoji, char *err,
                            size_t errlen);

typedef int (*el_hist_reaction_cb)(const char *reactor, const char *emoji, int64_t at,
                                   void *user);

/* The reactions to `target` in `conv`, oldest first. */
int el_hist_reaction_list(el_hist *h, const char *conv, const char *target,
                          el_hist_reaction_cb cb, void *user, char *err, size_t errlen);

/* ---- De-duplication of protocol messages that are not rows --------------- */

/* Records (from, id) at `now`: 1 the first time, 0 when already seen. */
int el_hist_seen(el_hist *h, const char *from, const char *id, int64_t now, char *err,
                 size_t errlen);
/* Forgets what was recorded before `before_ms` (e.g. now - 30 days); returns
 * how many were forgotten. */
int el_hist_prune_seen(el_hist *h, int64_t before_ms, char *err, size_t errlen);

/* ---- Outbox -------------------------------------------------------------- */

typedef struct {
    int64_t seq;           /* global order of adding, never reused */
    const char *msg_id;
    const uint8_t *bytes;  /* the plaintext: kind byte + body */
    size_t len;
    int64_t created_at;
    bool enveloped;        /* a sealed copy is in the server's offline queue */
    unsigned attempts;
} el_hist_outbox_item;

typedef int (*el_hist_outbox_cb)(const el_hist_outbox_item *it, void *user);
typedef int (*el_hist_outbox_peer_cb)(const char *peer, unsigned pending, void *user);

/* Queues `bytes` (1..EL_HIST_OUTBOX_MAX) for `to`; *seq (may be NULL)
 * receives its sequence number. EL_ERR_EXISTS when (to, msg_id) is queued. */
int el_hist_outbox_add(el_hist *h, const char *to, const char *msg_id, const uint8_t *bytes,
                       size_t len, int64_t created_at, int64_t *seq, char *err,
                       size_t errlen);
/* `to`'s rows with a seq above `after` (0: all), in seq order. */
int el_hist_outbox_list(el_hist *h, const char *to, int64_t after, el_hist_outbox_cb cb,
                        void *user, char *err, size_t errlen);
/* `to` confirmed msg_id: its row goes. Returns 1 removed, 0 none. */
int el_hist_outbox_ack(el_hist *h, const char *to, const char *msg_id, char *err,
                       size_t errlen);
/* Row `seq` was handed to the offline queue / was sent once more.
 * EL_ERR_NOT_FOUND for an unknown seq. */
int el_hist_outbox_mark_enveloped(el_hist *h, int64_t seq, char *err, size_t errlen);
int el_hist_outbox_attempt(el_hist *h, int64_t seq, char *err, size_t errlen);
/* Peers with pending rows, the one with the oldest row first. */
int el_hist_outbox_peers(el_hist *h, el_hist_outbox_peer_cb cb, void *user, char *err,
                         size_t errlen);
/* Number of `to`'s pending rows. */
int el_hist_outbox_count(el_hist *h, const char *to, char *err, size_t errlen);

/* ---- File transfers ------------------------------------------------------- */

typedef enum {
    EL_HIST_OFFERED = 1,   /* FILE_META sent / received */
    EL_HIST_ACCEPTED = 2,  /* FILE_ACCEPT sent / received */
    EL_HIST_ACTIVE = 3,    /* bytes are flowing */
    EL_HIST_COMPLETE = 4,  /* final states: no further change */
    EL_HIST_CANCELLED = 5,
    EL_HIST_FAILED = 6,
} el_hist_file_state;

typedef struct {
    const char *file_id;
    const char *conv;
    const char *peer;          /* the other side */
    bool outgoing;
    const char *msg_id;        /* the FILE_META message */
    const char *name;          /* 1..255 bytes, no '/', '\\' or control char */
    const char *path;          /* sender: source; receiver: the .part file, then
                                  the final path. NULL: none yet */
    uint64_t size;             /* <= 2^53 - 1 */
    const char *mime;          /* 1..127 bytes */
    const char *sha256;        /* 64 lowercase hex */
    uint32_t voice_ms;         /* 0: not a voice message */
    uint64_t offset;           /* bytes confirmed so far, <= size */
    el_hist_file_state state;
    const char *error;         /* NULL: none; <= EL_HIST_ERROR_MAX bytes */
    int64_t updated_at;
} el_hist_file;

typedef int (*el_hist_file_cb)(const el_hist_file *f, void *user);

/* Inserts the transfer, or replaces every field of the one with its file_id. */
int el_hist_file_put(el_hist *h, const el_hist_file *f, char *err, size_t errlen);
/* Calls cb once with the transfer; EL_ERR_NOT_FOUND (cb not called). */
int el_hist_file_get(el_hist *h, const char *file_id, el_hist_file_cb cb, void *user,
                     char *err, size_t errlen);
/* Records the confirmed offset (<= size, else EL_ERR_TOO_LARGE). */
int el_hist_file_set_offset(el_hist *h, const char *file_id, uint64_t offset, int64_t now,
                            char *err, size_t errlen);
/* Moves the transfer to `state`; `error` is stored as given (NULL clears it),
 * `path` replaces the stored one unless NULL. A transfer in a final state
 * stays there: another state is EL_ERR_STATE (the same one is a no-op). */
int el_hist_file_set_state(el_hist *h, const char *file_id, el_hist_file_state state,
                           const char *error, const char *path, int64_t now, char *err,
                           size_t errlen);
/* `peer`'s transfers that are offered, accepted or active (to resume), and
 * every transfer of `conv`, both in order of first put. */
int el_hist_file_list_unfinished(el_hist *h, const char *peer, el_hist_file_cb cb,
                                 void *user, char *err, size_t errlen);
int el_hist_file_list_conv(el_hist *h, const char *conv, el_hist_file_cb cb, void *user,
                           char *err, size_t errlen);

/* ---- Groups (§11.1) ------------------------------------------------------- */

typedef struct {
    const char *group_id;
    int64_t version;
    const char *state;     /* the signed state JSON, as given to put */
    size_t state_len;
    const char *name;
    bool left;             /* we left or were removed */
} el_hist_group;

typedef int (*el_hist_group_cb)(const el_hist_group *g, void *user);

/* Stores group state `state` (JSON, 1..EL_HIST_GROUP_STATE_MAX bytes) at
 * `version` (1..2^53-1) with its name (1..128 bytes) when the group is new or
 * version is higher than the stored one: returns 1 applied, 0 stale (nothing
 * changes). `left` is kept (false for a new group). */
int el_hist_group_put(el_hist *h, const char *group_id, int64_t version, const char *state,
                      const char *name, char *err, size_t errlen);
/* Calls cb once; EL_ERR_NOT_FOUND (cb not called). */
int el_hist_group_get(el_hist *h, const char *group_id, el_hist_group_cb cb, void *user,
                      char *err, size_t errlen);
/* Every group, by name then group_id. */
int el_hist_group_list(el_hist *h, el_hist_group_cb cb, void *user, char *err,
                       size_t errlen);
/* EL_ERR_NOT_FOUND for an unknown group. */
int el_hist_group_set_left(el_hist *h, const char *group_id, bool left, char *err,
                           size_t errlen);

/* ---- Peers cache ---------------------------------------------------------- */

typedef struct {
    char peer_id[EL_HIST_PEER_LEN + 1];
    bool has_name;
    char name[EL_HIST_PEER_NAME_MAX + 1];  /* "" when !has_name */
    int64_t last_seen;                     /* 0: never */
} el_hist_peer;

typedef int (*el_hist_peer_cb)(const el_hist_peer *p, void *user);

/* Creates or updates `peer_id`: a non-NULL name (<= 64 bytes) replaces the
 * stored one, NULL keeps it; last_seen only moves forward. */
int el_hist_peer_put(el_hist *h, const char *peer_id, const char *name, int64_t last_seen,
                     char *err, size_t errlen);
/* EL_ERR_NOT_FOUND for an unknown peer. */
int el_hist_peer_get(el_hist *h, const char *peer_id, el_hist_peer *out, char *err,
                     size_t errlen);
/* Every cached peer, by peer id. */
int el_hist_peer_list(el_hist *h, el_hist_peer_cb cb, void *user, char *err,
                      size_t errlen);

/* "chat", "file", "voice", "system"; "offered", ... "failed"; "?" otherwise. */
const char *el_hist_kind_name(el_hist_kind k);
const char *el_hist_file_state_name(el_hist_file_state s);

#endif
