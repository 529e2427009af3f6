/* history.c - the client's local database (see history.h).
 *
 * All SQL lives here: the migration steps and one statement per operation,
 * prepared on first use and cached for the life of the handle.
 *
 * Connection settings, and why:
 *   journal_mode=WAL     `echolink history` can read while `echolink chat`
 *                        writes, and a commit is one append
 *   synchronous=NORMAL   a commit survives a crash of the process (kill -9),
 *                        which is what the outbox promises; only a power loss
 *                        can drop the last commits. FULL fsyncs every commit,
 *                        and on ext4 (data=ordered) that fsync also writes
 *                        out every dirty page of the file system: with a file
 *                        download in progress a chat message took seconds
 *   foreign_keys=ON      recipients die with their message
 *   secure_delete=FAST   a deleted message's text does not linger in free
 *                        pages when that costs no extra I/O
 *   busy_timeout         another process holding the lock makes us wait
 *
 * Writes that touch several rows run in BEGIN IMMEDIATE (the write lock is
 * taken up front, so a busy wait happens at BEGIN, never as a failed lock
 * upgrade halfway). Inside a caller's el_hist_begin they run in a SAVEPOINT
 * instead, so a failed call undoes only itself. */
#include "client/history.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/utf8.h"
#include "crypto/identity.h"
#include "proto/json.h"

#define BUSY_TIMEOUT_MS 5000
#define UINT53_MAX 9007199254740991LL

/* ---- Schema ------------------------------------------------------------- */

/* Migration step i takes PRAGMA user_version i to i + 1. Steps are only ever
 * appended; a released step is never edited. */
static const char *const migrations[] = {
    /* row_id is the rowid: the stable scrollback cursor and the FTS key. */
    "CREATE TABLE messages ("
    " row_id INTEGER PRIMARY KEY,"
    " conv TEXT NOT NULL,"
    " author TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),"
    " kind TEXT NOT NULL CHECK (kind IN ('chat', 'file', 'voice', 'system')),"
    " text TEXT NOT NULL,"
    " reply_to TEXT,"
    " file_id TEXT,"
    " ts INTEGER NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " edited_at INTEGER NOT NULL DEFAULT 0,"
    " deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),"
    " read_at INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (author, id),"
    " CHECK (deleted = 0 OR text = ''));"
    "CREATE INDEX messages_by_conv ON messages (conv, ts, received_at, row_id);"
    "CREATE INDEX messages_by_id ON messages (id);"
    "CREATE INDEX messages_unread ON messages (conv) WHERE outgoing = 0 AND read_at = 0;"
    "CREATE TABLE recipients ("
    " row_id INTEGER NOT NULL REFERENCES messages (row_id) ON DELETE CASCADE,"
    " peer TEXT NOT NULL,"
    " delivered_at INTEGER NOT NULL DEFAULT 0,"
    " read_at INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (row_id, peer),"
    " CHECK (read_at = 0 OR delivered_at > 0)) WITHOUT ROWID;"
    "CREATE INDEX recipients_by_peer ON recipients (peer);"
    /* External content: the text is stored once, in messages; the triggers
     * keep the index in step with every insert, edit and delete. */
    "CREATE VIRTUAL TABLE messages_fts USING fts5 (text, content = 'messages',"
    " content_rowid = 'row_id', tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TRIGGER messages_fts_ins AFTER INSERT ON messages BEGIN"
    " INSERT INTO messages_fts (rowid, text) VALUES (new.row_id, new.text); END;"
    "CREATE TRIGGER messages_fts_del AFTER DELETE ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, text)"
    " VALUES ('delete', old.row_id, old.text); END;"
    "CREATE TRIGGER messages_fts_upd AFTER UPDATE OF text ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, text)"
    " VALUES ('delete', old.row_id, old.text);"
    " INSERT INTO messages_fts (rowid, text) VALUES (new.row_id, new.text); END;"
    "CREATE TABLE reactions ("
    " conv TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " reactor TEXT NOT NULL,"
    " emoji TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY (conv, target, reactor, emoji)) WITHOUT ROWID;"
    "CREATE TABLE seen ("
    " from_peer TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY (from_peer, id)) WITHOUT ROWID;"
    "CREATE INDEX seen_by_at ON seen (at);"
    /* AUTOINCREMENT: a seq is never reused, even after the newest row is
     * acknowledged, so a stale seq can never name another message. */
    "CREATE TABLE outbox ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " to_peer TEXT NOT NULL,"
    " msg_id TEXT NOT NULL,"
    " body BLOB NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " enveloped INTEGER NOT NULL DEFAULT 0 CHECK (enveloped IN (0, 1)),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (to_peer, msg_id));"
    "CREATE TABLE files ("
    " file_id TEXT PRIMARY KEY NOT NULL,"
    " conv TEXT NOT NULL,"
    " peer TEXT NOT NULL,"
    " outgoing INTEGER NOT NULL CHECK (outgoing IN (0, 1)),"
    " msg_id TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " path TEXT,"
    " size INTEGER NOT NULL,"
    " mime TEXT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " voice_ms INTEGER NOT NULL,"
    " confirmed INTEGER NOT NULL CHECK (confirmed <= size),"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('offered', 'accepted', 'active', 'complete', 'cancelled', 'failed')),"
    " error TEXT,"
    " updated_at INTEGER NOT NULL);"
    "CREATE INDEX files_by_peer ON files (peer);"
    "CREATE INDEX files_by_conv ON files (conv);"
    "CREATE TABLE chat_groups ("
    " group_id TEXT PRIMARY KEY NOT NULL,"
    " version INTEGER NOT NULL CHECK (version >= 1),"
    " state TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " has_left INTEGER NOT NULL DEFAULT 0 CHECK (has_left IN (0, 1)));"
    "CREATE TABLE peers ("
    " peer_id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT,"
    " last_seen INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;",
    /* 1 -> 2: display order is the order of arrival on this device (row_id),
     * not the author's clock: a sender whose clock jumps back a day must not
     * put its next messages above its earlier ones (docs/RELIABILITY.md). */
    ("DROP INDEX messages_by_conv;"
     "CREATE INDEX messages_by_conv_row ON messages (conv, row_id);"), /* one step: () for clang */
    /* 2 -> 3: a flush reads only the rows after those the connection has
     * carried; with (to_peer, msg_id) alone it read a peer's whole backlog
     * per message sent, quadratic in the backlog. */
    "CREATE INDEX outbox_by_peer_seq ON outbox (to_peer, seq);",
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- Statements --------------------------------------------------------- */

/* The columns every message callback gets, in the order msg_row reads. */
#define MSG_COLS                                                                       \
    "m.row_id, m.conv, m.id, m.author, m.outgoing, m.kind, m.text, m.reply_to,"        \
    " m.file_id, m.ts, m.received_at, m.edited_at, m.deleted, m.read_at,"              \
    " (SELECT count(*) FROM recipients r WHERE r.row_id = m.row_id),"                  \
    " (SELECT count(*) FROM recipients r WHERE r.row_id = m.row_id"                    \
    "  AND r.delivered_at > 0),"                                                       \
    " (SELECT count(*) FROM recipients r WHERE r.row_id = m.row_id AND r.read_at > 0)"

#define FILE_COLS                                                                      \
    "file_id, conv, peer, outgoing, msg_id, name, path, size, mime, sha256, voice_ms," \
    " confirmed, state, error, updated_at"

/* Our outgoing messages with this id (the receipts name only the id). */
#define OUR_MSG "(SELECT row_id FROM messages WHERE id = ?2 AND outgoing = 1)"

#define STMT_LIST(X)                                                                   \
    X(BEGIN, "BEGIN IMMEDIATE")                                                        \
    X(COMMIT, "COMMIT")                                                                \
    X(ROLLBACK, "ROLLBACK")                                                            \
    X(SAVEPOINT, "SAVEPOINT el_hist_op")                                               \
    X(RELEASE, "RELEASE el_hist_op")                                                   \
    X(ROLLBACK_TO, "ROLLBACK TO el_hist_op")                                           \
    X(VERSION, "PRAGMA user_version")                                                  \
    X(MSG_INSERT, "INSERT INTO messages (conv, author, id, outgoing, kind, text,"      \
                  " reply_to, file_id, ts, received_at)"                               \
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"                  \
                  " ON CONFLICT (author, id) DO NOTHING")                              \
    X(RCPT_ADD, "INSERT INTO recipients (row_id, peer) VALUES (?1, ?2)"                \
                " ON CONFLICT (row_id, peer) DO NOTHING")                              \
    X(MSG_LOOKUP, "SELECT row_id, outgoing, deleted, edited_at, conv FROM messages"    \
                  " WHERE author = ?1 AND id = ?2")                                    \
    X(MSG_ID_EXISTS, "SELECT 1 FROM messages WHERE id = ?1 LIMIT 1")                   \
    X(MSG_GET, "SELECT " MSG_COLS " FROM messages m WHERE m.author = ?1 AND m.id = ?2") \
    X(MSG_FIND, "SELECT " MSG_COLS " FROM messages m WHERE m.conv = ?1 AND m.id = ?2"  \
                " ORDER BY m.row_id LIMIT 1")                                          \
    /* an unknown cursor lists nothing, as a cursor past the start would */          \
    X(MSG_LIST, "SELECT * FROM (SELECT " MSG_COLS " FROM messages m WHERE m.conv = ?1" \
                " AND (?2 = 0 OR (m.row_id < ?2 AND"                                  \
                " EXISTS (SELECT 1 FROM messages WHERE row_id = ?2)))"                 \
                " ORDER BY m.row_id DESC LIMIT ?3)"                                    \
                " ORDER BY 1")                                                         \
    X(DELIVERED, "UPDATE recipients SET delivered_at = ?3 WHERE peer = ?1"             \
                 " AND delivered_at = 0 AND row_id IN " OUR_MSG)                       \
    X(READ_BY, "UPDATE recipients SET read_at = ?3, delivered_at = CASE"               \
               " WHEN delivered_at = 0 THEN ?3 ELSE delivered_at END"                  \
               " WHERE peer = ?1 AND read_at = 0 AND row_id IN " OUR_MSG)              \
    X(MSG_EDIT, "UPDATE messages SET text = ?2, edited_at = ?3 WHERE row_id = ?1")     \
    X(MSG_DELETE, "UPDATE messages SET text = '', deleted = 1 WHERE row_id = ?1")      \
    /* every unread one: "received before now" would leave a message unread \
     * for a day after the clock jumped back a day */                               \
    X(MARK_READ, "UPDATE messages SET read_at = ?2 WHERE conv = ?1 AND outgoing = 0"   \
                 " AND read_at = 0"                                                    \
                 " RETURNING author, id, kind, deleted")                               \
    X(UNREAD, "SELECT count(*) FROM messages WHERE conv = ?1 AND outgoing = 0"         \
              " AND read_at = 0 AND deleted = 0 AND kind <> 'system'")                 \
    /* ts is a bare column next to max(): it comes from the latest row. The    \
     * most recent conversation is the one with the latest arrival. */               \
    X(CONV_LIST, "SELECT conv, ts, max(row_id), count(*), sum(outgoing = 0"            \
                 " AND read_at = 0 AND deleted = 0 AND kind <> 'system')"              \
                 " FROM messages GROUP BY conv ORDER BY 3 DESC, conv")                 \
    X(SEARCH, "SELECT " MSG_COLS " FROM messages_fts"                                  \
              " JOIN messages m ON m.row_id = messages_fts.rowid"                      \
              " WHERE messages_fts MATCH ?1 AND (?2 IS NULL OR m.conv = ?2)"           \
              " AND m.deleted = 0"                                                     \
              " ORDER BY m.row_id DESC LIMIT ?3")                                      \
    X(REACT_ADD, "INSERT INTO reactions (conv, target, reactor, emoji, at)"            \
                 " VALUES (?1, ?2, ?3, ?4, ?5)"                                        \
                 " ON CONFLICT (conv, target, reactor, emoji) DO NOTHING")             \
    X(REACT_REMOVE, "DELETE FROM reactions WHERE conv = ?1 AND target = ?2"            \
                    " AND reactor = ?3 AND emoji = ?4")                                \
    X(REACT_DROP, "DELETE FROM reactions WHERE conv = ?1 AND target = ?2")             \
    X(REACT_LIST, "SELECT reactor, emoji, at FROM reactions WHERE conv = ?1"           \
                  " AND target = ?2 ORDER BY at, reactor, emoji")                      \
    X(SEEN_ADD, "INSERT INTO seen (from_peer, id, at) VALUES (?1, ?2, ?3)"             \
                " ON CONFLICT (from_peer, id) DO NOTHING")                             \
    X(SEEN_PRUNE, "DELETE FROM seen WHERE at < ?1")                                    \
    X(OB_ADD, "INSERT INTO outbox (to_peer, msg_id, body, created_at)"                 \
              " VALUES (?1, ?2, ?3, ?4)")                                              \
    X(OB_LIST, "SELECT seq, msg_id, body, created_at, enveloped, attempts FROM outbox" \
               " WHERE to_peer = ?1 AND seq > ?2 ORDER BY seq")                        \
    X(OB_ACK, "DELETE FROM outbox WHERE to_peer = ?1 AND msg_id = ?2")                 \
    X(OB_ENVELOPED, "UPDATE outbox SET enveloped = 1 WHERE seq = ?1")                  \
    X(OB_ATTEMPT, "UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?1")          \
    X(OB_PEERS, "SELECT to_peer, count(*) FROM outbox GROUP BY to_peer"                \
                " ORDER BY min(seq)")                                                  \
    X(OB_COUNT, "SELECT count(*) FROM outbox WHERE to_peer = ?1")                      \
    X(FILE_PUT, "INSERT INTO files (" FILE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7," \
                " ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT (file_id) DO UPDATE" \
                " SET conv = ?2, peer = ?3, outgoing = ?4, msg_id = ?5, name = ?6,"    \
                " path = ?7, size = ?8, mime = ?9, sha256 = ?10, voice_ms = ?11,"      \
                " confirmed = ?12, state = ?13, error = ?14, updated_at = ?15")        \
    X(FILE_GET, "SELECT " FILE_COLS " FROM files WHERE file_id = ?1")                  \
    X(FILE_STATE, "SELECT state, size FROM files WHERE file_id = ?1")                  \
    X(FILE_SET_OFFSET, "UPDATE files SET confirmed = ?2, updated_at = ?3"              \
                       " WHERE file_id = ?1")                                          \
    X(FILE_SET_STATE, "UPDATE files SET state = ?2, error = ?3, path = COALESCE(?4, path)," \
                      " updated_at = ?5 WHERE file_id = ?1")                           \
    X(FILE_LIST_PEER, "SELECT " FILE_COLS " FROM files WHERE peer = ?1 AND state IN"   \
                      " ('offered', 'accepted', 'active') ORDER BY rowid")             \
    X(FILE_LIST_CONV, "SELECT " FILE_COLS " FROM files WHERE conv = ?1 ORDER BY rowid") \
    X(GROUP_PUT, "INSERT INTO chat_groups (group_id, version, state, name)"            \
                 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (group_id) DO UPDATE"           \
                 " SET version = ?2, state = ?3, name = ?4"                            \
                 " WHERE ?2 > chat_groups.version")                                    \
    X(GROUP_GET, "SELECT group_id, version, state, name, has_left FROM chat_groups"    \
                 " WHERE group_id = ?1")                                               \
    X(GROUP_LIST, "SELECT group_id, version, state, name, has_left FROM chat_groups"   \
                  " ORDER BY name, group_id")                                          \
    X(GROUP_SET_LEFT, "UPDATE chat_groups SET has_left = ?2 WHERE group_id = ?1")      \
    X(PEER_PUT, "INSERT INTO peers (peer_id, name, last_seen) VALUES (?1, ?2, ?3)"     \
                " ON CONFLICT (peer_id) DO UPDATE SET name = COALESCE(?2, name),"      \
                " last_seen = max(last_seen, ?3)")                                     \
    X(PEER_GET, "SELECT peer_id, name, last_seen FROM peers WHERE peer_id = ?1")       \
    X(PEER_LIST, "SELECT peer_id, name, last_seen FROM peers ORDER BY peer_id")

#define STMT_ENUM(id, sql) S_##id,
#define STMT_SQL(id, sql) [S_##id] = sql,
enum stmt_id { STMT_LIST(STMT_ENUM) S__COUNT };
static const char *const stmt_sql[S__COUNT] = {STMT_LIST(STMT_SQL)};

struct el_hist {
    sqlite3 *db;
    sqlite3_stmt *stmts[S__COUNT];
    /* A cached statement is busy while a list walks it; a read issued from
     * that list's callback gets a one-off copy instead of resetting it. */
    bool busy[S__COUNT];
    int in_callback; /* > 0 while a user callback runs: writes are refused */
};

static const char *const kind_names[] = {
    [EL_HIST_CHAT] = "chat", [EL_HIST_FILE] = "file",
    [EL_HIST_VOICE] = "voice", [EL_HIST_SYSTEM] = "system",
};
static const char *const file_state_names[] = {
    [EL_HIST_OFFERED] = "offered", [EL_HIST_ACCEPTED] = "accepted",
    [EL_HIST_ACTIVE] = "active", [EL_HIST_COMPLETE] = "complete",
    [EL_HIST_CANCELLED] = "cancelled", [EL_HIST_FAILED] = "failed",
};

#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))
#define N_FILE_STATES ((int)(sizeof file_state_names / sizeof file_state_names[0]))

const char *el_hist_kind_name(el_hist_kind k)
{
    return (int)k > 0 && (int)k < N_KINDS ? kind_names[k] : "?";
}

const char *el_hist_file_state_name(el_hist_file_state s)
{
    return (int)s > 0 && (int)s < N_FILE_STATES ? file_state_names[s] : "?";
}

/* Name -> enum value (> 0), or 0 for a name not in the table. */
static int name_index(const char *const *names, int n, const unsigned char *name)
{
    for (int i = 1; name && i < n; i++)
        if (strcmp(names[i], (const char *)name) == 0)
            return i;
    return 0;
}

/* ---- Call context and errors -------------------------------------------- */

/* Every public call carries one of these: its name for messages, the
 * caller's error buffer, and a sticky result. Argument checks run in a row
 * and after the first failure the later ones do nothing, so a function lists
 * its checks and tests c.rc once (SQLite's sticky-error idiom). */
typedef struct {
    const char *what;
    char *err;
    size_t errlen;
    int rc;
} ctx;

#define CTX(name) {(name), err, errlen, EL_OK}

static int fail(ctx *c, int code, const char *field, const char *why)
{
    c->rc = el_seterr(c->err, c->errlen, code, "%s: %s %s", c->what, field, why);
    return c->rc;
}

/* Constraint failures are outcomes the API documents; anything else is a
 * database fault and is logged. */
static int db_error(el_hist *h, ctx *c, int rc)
{
    const char *msg = h->db ? sqlite3_errmsg(h->db) : sqlite3_errstr(rc);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return el_seterr(c->err, c->errlen, EL_ERR_EXISTS, "%s: already exists", c->what);
    if (rc == SQLITE_CONSTRAINT_CHECK)
        return el_seterr(c->err, c->errlen, EL_ERR_INVALID, "%s: %s", c->what, msg);
    EL_WARN("history: %s: %s (sqlite error %d)", c->what, msg, rc);
    return el_seterr(c->err, c->errlen, EL_ERR_DB, "%s: %s", c->what, msg);
}

static int corrupt(ctx *c, const char *field)
{
    EL_WARN("history: %s: stored %s is not valid", c->what, field);
    return el_seterr(c->err, c->errlen, EL_ERR_DB,
                     "%s: stored %s is not valid (database edited?)", c->what, field);
}

/* ---- Queries ------------------------------------------------------------ */

/* A statement parameter: text (NULL binds SQL NULL), blob or integer. Passed
 * as arrays built with P(...), which keeps binding type-checked. */
typedef struct {
    enum { PT_TEXT, PT_BLOB, PT_INT } type;
    const void *ptr;
    size_t len;
    int64_t num;
} param;

#define T(x) ((param){.type = PT_TEXT, .ptr = (x)})
#define B(x, n) ((param){.type = PT_BLOB, .ptr = (x), .len = (n)})
#define I(x) ((param){.type = PT_INT, .num = (int64_t)(x)})
#define P(...) sizeof((const param[]){__VA_ARGS__}) / sizeof(param), (const param[]){__VA_ARGS__}
#define NO_PARAMS 0, NULL

typedef struct {
    sqlite3_stmt *s;
    enum stmt_id id;
    bool owned; /* a one-off copy: finalize, don't return to the cache */
} qcur;

static int bind_all(sqlite3_stmt *stmt, size_t n, const param *p)
{
    for (size_t i = 0; i < n; i++) {
        int col = (int)i + 1, rc;
        if (p[i].type == PT_INT)
            rc = sqlite3_bind_int64(stmt, col, p[i].num);
        else if (!p[i].ptr)
            rc = sqlite3_bind_null(stmt, col);
        else if (p[i].type == PT_BLOB)
            rc = sqlite3_bind_blob64(stmt, col, p[i].ptr, p[i].len, SQLITE_STATIC);
        else
            rc = sqlite3_bind_text(stmt, col, p[i].ptr, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* Gets statement `id` (cached, or a one-off copy when the cached one is busy)
 * and binds params. On failure q->s is NULL and nothing needs closing. */
static int q_open(el_hist *h, ctx *c, enum stmt_id id, qcur *q, size_t n, const param *p)
{
    q->s = NULL;
    q->id = id;
    q->owned = h->busy[id];
    sqlite3_stmt *stmt = q->owned ? NULL : h->stmts[id];
    if (!stmt) {
        unsigned flags = q->owned ? 0 : SQLITE_PREPARE_PERSISTENT;
        int rc = sqlite3_prepare_v3(h->db, stmt_sql[id], -1, flags, &stmt, NULL);
        if (rc != SQLITE_OK)
            return db_error(h, c, rc);
        if (!q->owned)
            h->stmts[id] = stmt;
    }
    int rc = bind_all(stmt, n, p);
    if (rc != SQLITE_OK) {
        rc = db_error(h, c, rc);
        if (q->owned)
            sqlite3_finalize(stmt);
        else
            sqlite3_clear_bindings(stmt);
        return rc;
    }
    if (!q->owned)
        h->busy[id] = true;
    q->s = stmt;
    return EL_OK;
}

static void q_close(el_hist *h, qcur *q)
{
    if (!q->s)
        return;
    if (q->owned) {
        sqlite3_finalize(q->s);
    } else {
        /* Reset ends a SELECT's read; clearing drops pointers to the
         * caller's strings. */
        sqlite3_reset(q->s);
        sqlite3_clear_bindings(q->s);
        h->busy[q->id] = false;
    }
    q->s = NULL;
}

/* One step: 1 = a row, 0 = done, < 0 = el_err. */
static int q_step(el_hist *h, ctx *c, qcur *q)
{
    int rc = sqlite3_step(q->s);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_error(h, c, rc);
}

/* Runs a statement that returns no rows; returns the number of rows changed. */
static int run(el_hist *h, ctx *c, enum stmt_id id, size_t n, const param *p)
{
    qcur q;
    int rc = q_open(h, c, id, &q, n, p);
    if (rc)
        return rc;
    rc = q_step(h, c, &q);
    if (rc >= 0)
        rc = sqlite3_changes(h->db);
    q_close(h, &q);
    return rc;
}

/* Runs a query whose first column is a count: returns it (0 without a row). */
static int count_of(el_hist *h, ctx *c, enum stmt_id id, size_t n, const param *p)
{
    qcur q;
    int rc = c->rc ? c->rc : q_open(h, c, id, &q, n, p);
    if (rc)
        return rc;
    rc = q_step(h, c, &q);
    if (rc == 1) {
        int64_t v = sqlite3_column_int64(q.s, 0);
        rc = v > INT_MAX ? INT_MAX : (int)v;
    }
    q_close(h, &q);
    return rc;
}

static const char *col_text(sqlite3_stmt *s, int col)
{
    return (const char *)sqlite3_column_text(s, col);
}

static unsigned col_count(sqlite3_stmt *s, int col)
{
    int64_t v = sqlite3_column_int64(s, col);
    return v < 0 ? 0 : v > UINT_MAX ? UINT_MAX : (unsigned)v;
}

/* The caller's callback and its user pointer; a row function knows which
 * member is set. */
typedef struct {
    union {
        el_hist_msg_cb msg;
        el_hist_conv_cb conv;
        el_hist_reaction_cb reaction;
        el_hist_outbox_cb outbox;
        el_hist_outbox_peer_cb outbox_peer;
        el_hist_file_cb file;
        el_hist_group_cb group;
        el_hist_peer_cb peer;
    } cb;
    void *user;
} sink;

/* Turns the current row into the caller's type and calls its callback;
 * returns what the callback returned, or < 0 when the row is unusable. */
typedef int (*row_fn)(sqlite3_stmt *s, const sink *k, ctx *c);

/* The shared list loop (see "Callbacks" in history.h); does nothing when a
 * check already failed. */
static int list_rows(el_hist *h, ctx *c, enum stmt_id id, row_fn row, const sink *k,
                     size_t n, const param *p)
{
    qcur q;
    int rc = c->rc ? c->rc : q_open(h, c, id, &q, n, p);
    if (rc)
        return rc;
    int count = 0;
    for (;;) {
        rc = q_step(h, c, &q);
        if (rc <= 0) {
            rc = rc < 0 ? rc : count;
            break;
        }
        h->in_callback++;
        int r = row(q.s, k, c);
        h->in_callback--;
        if (r < 0) {
            rc = r;
            break;
        }
        count++;
        if (r > 0) {
            rc = count;
            break;
        }
    }
    q_close(h, &q);
    return rc;
}

/* A list that must yield exactly one row: EL_OK, EL_ERR_NOT_FOUND or < 0. */
static int get_one(ctx *c, int listed, const char *thing)
{
    if (listed == 0)
        return fail(c, EL_ERR_NOT_FOUND, thing, "does not exist");
    return listed < 0 ? listed : EL_OK;
}

/* ---- Transactions ------------------------------------------------------- */

static void need_writable(ctx *c, el_hist *h)
{
    if (!c->rc && h->in_callback)
        fail(c, EL_ERR_STATE, "write", "refused inside a history callback");
}

/* One write statement after the checks; returns the rows changed. */
static int write1(el_hist *h, ctx *c, enum stmt_id id, size_t n, const param *p)
{
    need_writable(c, h);
    return c->rc ? c->rc : run(h, c, id, n, p);
}

/* Starts one call's transaction after its checks: BEGIN IMMEDIATE, or a
 * savepoint inside the caller's el_hist_begin. *outer tells tx_end which. */
static int tx_begin(el_hist *h, ctx *c, bool *outer)
{
    need_writable(c, h);
    if (c->rc)
        return c->rc;
    *outer = sqlite3_get_autocommit(h->db) != 0;
    int rc = run(h, c, *outer ? S_BEGIN : S_SAVEPOINT, NO_PARAMS);
    return rc < 0 ? rc : EL_OK;
}

static void tx_undo(el_hist *h, bool outer)
{
    ctx quiet = {"rollback", NULL, 0, EL_OK};
    /* Some errors (I/O, disk full) already rolled the whole thing back. */
    if (sqlite3_get_autocommit(h->db))
        return;
    if (outer) {
        (void)run(h, &quiet, S_ROLLBACK, NO_PARAMS);
    } else {
        (void)run(h, &quiet, S_ROLLBACK_TO, NO_PARAMS);
        (void)run(h, &quiet, S_RELEASE, NO_PARAMS);
    }
}

/* Commits when ok >= 0 and returns ok; otherwise (or when the commit fails)
 * undoes and returns the error. The idiom: `return tx_end(h, c, outer, rc)`. */
static int tx_end(el_hist *h, ctx *c, bool outer, int ok)
{
    if (ok >= 0) {
        int rc = run(h, c, outer ? S_COMMIT : S_RELEASE, NO_PARAMS);
        if (rc >= 0)
            return ok;
        ok = rc;
    }
    tx_undo(h, outer);
    return ok;
}

int el_hist_begin(el_hist *h, char *err, size_t errlen)
{
    ctx c = CTX("begin");
    if (!h)
        return fail(&c, EL_ERR_INVALID, "handle", "is NULL");
    need_writable(&c, h);
    if (!c.rc && !sqlite3_get_autocommit(h->db))
        fail(&c, EL_ERR_STATE, "transaction", "is already open");
    int rc = c.rc ? c.rc : run(h, &c, S_BEGIN, NO_PARAMS);
    return rc < 0 ? rc : EL_OK;
}

int el_hist_commit(el_hist *h, char *err, size_t errlen)
{
    ctx c = CTX("commit");
    if (!h)
        return fail(&c, EL_ERR_INVALID, "handle", "is NULL");
    need_writable(&c, h);
    if (!c.rc && sqlite3_get_autocommit(h->db))
        fail(&c, EL_ERR_STATE, "transaction", "is not open");
    return c.rc ? c.rc : tx_end(h, &c, true, EL_OK);
}

void el_hist_rollback(el_hist *h)
{
    if (h && !h->in_callback)
        tx_undo(h, true);
}

/* ---- Argument checks (sticky: see ctx) ----------------------------------- */

static bool is_id(const char *s)
{
    return s && strnlen(s, EL_HIST_ID_LEN + 1) == EL_HIST_ID_LEN &&
           el_is_lower_hex(s, EL_HIST_ID_LEN);
}

/* A non-NULL pointer argument (handle, callback, struct). */
static void need_arg(ctx *c, bool present, const char *field)
{
    if (!c->rc && !present)
        fail(c, EL_ERR_INVALID, field, "is NULL");
}

static void need_id(ctx *c, const char *field, const char *s)
{
    if (!c->rc && !is_id(s))
        fail(c, EL_ERR_INVALID, field, "is not an id (32 lowercase hex digits)");
}

static void need_opt_id(ctx *c, const char *field, const char *s)
{
    if (s)
        need_id(c, field, s);
}

static void need_peer(ctx *c, const char *field, const char *s)
{
    if (!c->rc && !el_id_valid_peer_id(s))
        fail(c, EL_ERR_INVALID, field, "is not a peer id (32 characters of a-z2-7)");
}

static void need_conv(ctx *c, const char *s)
{
    bool ok = s && s[0] && s[1] == ':' &&
              ((s[0] == 'p' && el_id_valid_peer_id(s + 2)) || (s[0] == 'g' && is_id(s + 2)));
    if (!c->rc && !ok)
        fail(c, EL_ERR_INVALID, "conv", "is not \"p:<peer id>\" or \"g:<group id>\"");
}

/* UTF-8 text of min..max bytes; NULL counts as "" (so it passes when min is 0). */
static void need_text(ctx *c, const char *field, const char *s, size_t min, size_t max)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    if (c->rc)
        return;
    if (n > max)
        fail(c, EL_ERR_TOO_LARGE, field, "is over its size limit");
    else if (n < min)
        fail(c, EL_ERR_INVALID, field, "is empty");
    else if (!el_utf8_valid(s ? s : "", n))
        fail(c, EL_ERR_INVALID, field, "is not valid UTF-8");
}

/* A time, or another non-negative integer (> 0 when `positive`). */
static void need_time(ctx *c, const char *field, int64_t t, bool positive)
{
    if (!c->rc && (t < 0 || (positive && t == 0)))
        fail(c, EL_ERR_INVALID, field, positive ? "must be > 0" : "must be >= 0");
}

static void need_limit(ctx *c, unsigned limit)
{
    if (!c->rc && (limit < 1 || limit > INT_MAX))
        fail(c, EL_ERR_INVALID, "limit", "must be 1..INT_MAX");
}

/* ---- Open / close ------------------------------------------------------- */

/* Creates the file with mode 0600 before SQLite sees it (SQLite would use
 * 0644 minus umask) and refuses an existing one open to others: it holds
 * every message in the clear. SQLite gives the -wal and -shm files the
 * database file's mode, so they are private too. */
static int prepare_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "cannot open history \"%s\": %s", path,
                         strerror(errno));
    struct stat st;
    int rc = EL_OK;
    if (fstat(fd, &st) != 0)
        rc = el_seterr(err, errlen, EL_ERR_IO, "cannot stat history \"%s\": %s", path,
                       strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = el_seterr(err, errlen, EL_ERR_INVALID, "history \"%s\" is not a regular file",
                       path);
    else if (st.st_mode & 077)
        rc = el_seterr(err, errlen, EL_ERR_DENIED,
                       "history \"%s\" is accessible by others (mode %04o); chmod 600 it",
                       path, (unsigned)st.st_mode & 07777);
    close(fd);
    return rc;
}

static int exec(el_hist *h, ctx *c, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(h->db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return EL_OK;
    const char *why = msg ? msg : sqlite3_errmsg(h->db);
    EL_WARN("history: %s: %s (sqlite error %d)", c->what, why, rc);
    el_seterr(c->err, c->errlen, EL_ERR_DB, "history: %s: %s", c->what, why);
    sqlite3_free(msg);
    return EL_ERR_DB;
}

static int read_version(el_hist *h, ctx *c, const char *path)
{
    int v = count_of(h, c, S_VERSION, NO_PARAMS);
    if (v > SCHEMA_VERSION)
        return el_seterr(c->err, c->errlen, EL_ERR_DB,
                         "history \"%s\" has schema version %d, newer than %d that this "
                         "build knows; refusing to open it",
                         path, v, SCHEMA_VERSION);
    return v;
}

/* One transaction per step; the version is re-read under the write lock in
 * case another process migrated first. */
static int migrate(el_hist *h, ctx *c, const char *path)
{
    for (;;) {
        int rc = exec(h, c, "BEGIN IMMEDIATE");
        int version = rc ? rc : read_version(h, c, path);
        if (version == SCHEMA_VERSION)
            return exec(h, c, "COMMIT");
        rc = version < 0 ? version : exec(h, c, migrations[version]);
        if (rc == EL_OK) {
            char bump[48];
            snprintf(bump, sizeof bump, "PRAGMA user_version = %d", version + 1);
            rc = exec(h, c, bump);
        }
        if (rc == EL_OK)
            rc = exec(h, c, "COMMIT");
        if (rc) {
            tx_undo(h, true);
            return rc;
        }
        EL_INFO("history \"%s\": schema migrated to version %d", path, version + 1);
    }
}

/* WAL cannot be set inside a transaction, and an in-memory database keeps
 * its "memory" journal. A file that stays in another mode is worth a warning
 * only: the database works, with readers blocking the writer. */
static int configure(el_hist *h, ctx *c, bool memory)
{
    sqlite3_extended_result_codes(h->db, 1);
    sqlite3_busy_timeout(h->db, BUSY_TIMEOUT_MS);
    int rc = exec(h, c, "PRAGMA foreign_keys = ON; PRAGMA secure_delete = FAST;"
                        " PRAGMA synchronous = NORMAL;");
    if (rc || memory)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(h->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    const char *mode = rc == SQLITE_ROW ? col_text(st, 0) : NULL;
    if (rc == SQLITE_ROW && (!mode || strcmp(mode, "wal") != 0))
        EL_WARN("history: journal mode is %s, not wal", mode ? mode : "?");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? EL_OK : db_error(h, c, rc);
}

/* What the user is told about a damaged file; the file is never touched. */
static int damaged(char *err, size_t errlen, const char *path, const char *why)
{
    EL_ERROR("history \"%s\" is damaged: %s", path, why);
    return el_seterr(err, errlen, EL_ERR_DB,
                     "history \"%s\" is damaged (%s); it was left as it is. Restore it from "
                     "a copy, or move it aside (with its -wal and -shm files) to start with an "
                     "empty history",
                     path, why);
}

/* A damaged file must stop the open before anything is written to it: SQLite
 * would otherwise report the damage only when a query reaches the bad page,
 * maybe after new messages were stored (and receipted) over it, or the
 * client would start as if the history were empty. quick_check reads every
 * page once (O(size), milliseconds for a typical history) without the
 * index-content checks of integrity_check. */
static int check_intact(el_hist *h, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    char why[256];
    if (rc == SQLITE_ROW) {
        const char *r = col_text(st, 0);
        snprintf(why, sizeof why, "%s", r ? r : "?");
    } else {
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(h->db));
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW && !strcmp(why, "ok"))
        return EL_OK;
    int prim = rc & 0xff;
    if (rc == SQLITE_ROW || prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB)
        return damaged(err, errlen, path, why);
    return el_seterr(err, errlen, prim == SQLITE_IOERR ? EL_ERR_IO : EL_ERR_DB,
                     "cannot read history \"%s\": %s", path, why);
}

int el_hist_open(el_hist **out, const char *path, char *err, size_t errlen)
{
    ctx c = CTX("open");
    need_arg(&c, out != NULL, "out");
    need_arg(&c, path && *path, "path");
    if (c.rc)
        return c.rc;
    *out = NULL;
    bool memory = strcmp(path, ":memory:") == 0;
    int rc = memory ? EL_OK : prepare_file(path, err, errlen);
    if (rc)
        return rc;
    el_hist *h = calloc(1, sizeof *h);
    if (!h)
        return fail(&c, EL_ERR_NOMEM, "handle", "cannot be allocated");
    /* No SQLITE_OPEN_URI: a file name is a file name, never options. The
     * file exists by now, so no SQLITE_OPEN_CREATE either. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (memory ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &h->db, flags, NULL) != SQLITE_OK) {
        rc = el_seterr(err, errlen, EL_ERR_IO, "cannot open history \"%s\": %s", path,
                       h->db ? sqlite3_errmsg(h->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(h->db, 1);
    rc = memory ? EL_OK : check_intact(h, path, err, errlen);
    /* Refuse a newer schema before configure() writes anything to it. */
    if (rc >= 0)
        rc = read_version(h, &c, path);
    if (rc >= 0)
        rc = configure(h, &c, memory);
    if (rc >= 0)
        rc = migrate(h, &c, path);
    if (rc < 0)
        goto fail;
    *out = h;
    return EL_OK;
fail:
    el_hist_close(h);
    return rc;
}

void el_hist_close(el_hist *h)
{
    if (!h)
        return;
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(h->stmts[i]);
    /* close_v2: a failed open may leave a half-made handle. Closing rolls
     * back a transaction still open. */
    sqlite3_close_v2(h->db);
    free(h);
}

int el_hist_schema_version(el_hist *h, char *err, size_t errlen)
{
    ctx c = CTX("schema_version");
    need_arg(&c, h != NULL, "handle");
    return count_of(h, &c, S_VERSION, NO_PARAMS);
}

/* ---- Messages ----------------------------------------------------------- */

static el_hist_status status_of(const el_hist_msg *m)
{
    if (!m->outgoing)
        return EL_HIST_INCOMING;
    if (m->recipients_n && m->read_n == m->recipients_n)
        return EL_HIST_READ;
    if (m->recipients_n && m->delivered_n == m->recipients_n)
        return EL_HIST_DELIVERED;
    return EL_HIST_PENDING;
}

static int msg_row(sqlite3_stmt *s, const sink *k, ctx *c)
{
    el_hist_msg m = {
        .row = sqlite3_column_int64(s, 0),
        .conv = col_text(s, 1),
        .id = col_text(s, 2),
        .author = col_text(s, 3),
        .outgoing = sqlite3_column_int(s, 4) != 0,
        .kind = (el_hist_kind)name_index(kind_names, N_KINDS, sqlite3_column_text(s, 5)),
        .text = col_text(s, 6),
        .reply_to = col_text(s, 7),
        .file_id = col_text(s, 8),
        .ts = sqlite3_column_int64(s, 9),
        .received_at = sqlite3_column_int64(s, 10),
        .edited_at = sqlite3_column_int64(s, 11),
        .deleted = sqlite3_column_int(s, 12) != 0,
        .read_at = sqlite3_column_int64(s, 13),
        .recipients_n = col_count(s, 14),
        .delivered_n = col_count(s, 15),
        .read_n = col_count(s, 16),
    };
    if (!m.kind || !m.conv || !m.id || !m.author)
        return corrupt(c, "message");
    if (!m.text)
        m.text = "";
    m.status = status_of(&m);
    return k->cb.msg(&m, k->user);
}

static void need_peers(ctx *c, const char *const *peers, size_t n)
{
    need_arg(c, peers || n == 0, "recipient list");
    for (size_t i = 0; i < n && !c->rc; i++)
        need_peer(c, "recipient", peers[i]);
}

static void need_msg(ctx *c, const el_hist_msg *m)
{
    need_arg(c, m != NULL, "message");
    if (c->rc)
        return;
    if (m->kind < EL_HIST_CHAT || m->kind > EL_HIST_SYSTEM)
        fail(c, EL_ERR_INVALID, "kind", "is unknown");
    need_conv(c, m->conv);
    need_id(c, "id", m->id);
    need_peer(c, "author", m->author);
    need_text(c, "text", m->text, m->kind == EL_HIST_CHAT ? 1 : 0, EL_HIST_TEXT_MAX);
    need_opt_id(c, "reply_to", m->reply_to);
    need_opt_id(c, "file_id", m->file_id);
    need_time(c, "ts", m->ts, false);
    need_time(c, "received_at", m->received_at, false);
}

/* Records recipients of message row `row`; returns how many were new. */
static int add_recipients(el_hist *h, ctx *c, int64_t row, const char *const *peers, size_t n)
{
    int added = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = run(h, c, S_RCPT_ADD, P(I(row), T(peers[i])));
        if (rc < 0)
            return rc;
        added += rc;
    }
    return added;
}

int el_hist_msg_add(el_hist *h, const el_hist_msg *m, const char *const *recipients,
                    size_t n_recipients, char *err, size_t errlen)
{
    ctx c = CTX("msg_add");
    bool outer;
    need_arg(&c, h != NULL, "handle");
    need_msg(&c, m);
    need_peers(&c, recipients, n_recipients);
    if (!c.rc && n_recipients && !m->outgoing)
        fail(&c, EL_ERR_INVALID, "recipients", "are only for outgoing messages");
    int rc = tx_begin(h, &c, &outer);
    if (rc)
        return rc;
    rc = run(h, &c, S_MSG_INSERT,
             P(T(m->conv), T(m->author), T(m->id), I(m->outgoing), T(kind_names[m->kind]),
               T(m->text ? m->text : ""), T(m->reply_to), T(m->file_id), I(m->ts),
               I(m->received_at)));
    if (rc == 1) {
        int r = add_recipients(h, &c, sqlite3_last_insert_rowid(h->db), recipients,
                               n_recipients);
        rc = r < 0 ? r : 1;
    }
    return tx_end(h, &c, outer, rc);
}

/* What edit, delete and add_recipients need to know about (author, id). */
typedef struct {
    int64_t row;
    bool outgoing, deleted;
    int64_t edited_at;
    char conv[2 + EL_HIST_ID_LEN + 1];
} msg_info;

static int lookup_row(el_hist *h, ctx *c, const char *author, const char *id, msg_info *out)
{
    qcur q;
    int rc = q_open(h, c, S_MSG_LOOKUP, &q, P(T(author), T(id)));
    if (rc)
        return rc;
    rc = q_step(h, c, &q);
    if (rc == 1) {
        const char *conv = col_text(q.s, 4);
        out->row = sqlite3_column_int64(q.s, 0);
        out->outgoing = sqlite3_column_int(q.s, 1) != 0;
        out->deleted = sqlite3_column_int(q.s, 2) != 0;
        out->edited_at = sqlite3_column_int64(q.s, 3);
        if (!conv || strlen(conv) >= sizeof out->conv)
            rc = corrupt(c, "conv");
        else
            memcpy(out->conv, conv, strlen(conv) + 1);
    }
    q_close(h, &q);
    return rc;
}

/* Finds (author, id): EL_OK, or when absent EL_ERR_DENIED if `deny_other` and
 * a message with this id by someone else exists, else EL_ERR_NOT_FOUND. */
static int lookup(el_hist *h, ctx *c, const char *author, const char *id, bool deny_other,
                  msg_info *out)
{
    int rc = lookup_row(h, c, author, id, out);
    if (rc != 0)
        return rc < 0 ? rc : EL_OK;
    rc = deny_other ? count_of(h, c, S_MSG_ID_EXISTS, P(T(id))) : 0;
    if (rc < 0)
        return rc;
    if (rc > 0)
        return fail(c, EL_ERR_DENIED, "message", "was written by someone else");
    return fail(c, EL_ERR_NOT_FOUND, "message", "does not exist");
}

int el_hist_msg_add_recipients(el_hist *h, const char *author, const char *id,
                               const char *const *peers, size_t n_peers, char *err,
                               size_t errlen)
{
    ctx c = CTX("msg_add_recipients");
    bool outer;
    msg_info mi;
    need_arg(&c, h != NULL, "handle");
    need_peer(&c, "author", author);
    need_id(&c, "id", id);
    need_peers(&c, peers, n_peers);
    int rc = tx_begin(h, &c, &outer);
    if (rc)
        return rc;
    rc = lookup(h, &c, author, id, false, &mi);
    if (!rc && !mi.outgoing)
        rc = fail(&c, EL_ERR_STATE, "message", "is not outgoing");
    if (!rc)
        rc = add_recipients(h, &c, mi.row, peers, n_peers);
    return tx_end(h, &c, outer, rc);
}

int el_hist_msg_get(el_hist *h, const char *author, const char *id, el_hist_msg_cb cb,
                    void *user, char *err, size_t errlen)
{
    ctx c = CTX("msg_get");
    need_arg(&c, h && cb, "handle or callback");
    need_peer(&c, "author", author);
    need_id(&c, "id", id);
    sink k = {.cb.msg = cb, .user = user};
    return get_one(&c, list_rows(h, &c, S_MSG_GET, msg_row, &k, P(T(author), T(id))),
                   "message");
}

int el_hist_msg_find(el_hist *h, const char *conv, const char *id, el_hist_msg_cb cb,
                     void *user, char *err, size_t errlen)
{
    ctx c = CTX("msg_find");
    need_arg(&c, h && cb, "handle or callback");
    need_conv(&c, conv);
    need_id(&c, "id", id);
    sink k = {.cb.msg = cb, .user = user};
    return get_one(&c, list_rows(h, &c, S_MSG_FIND, msg_row, &k, P(T(conv), T(id))),
                   "message");
}

int el_hist_msg_list(el_hist *h, const char *conv, int64_t before_row, unsigned limit,
                     el_hist_msg_cb cb, void *user, char *err, size_t errlen)
{
    ctx c = CTX("msg_list");
    need_arg(&c, h && cb, "handle or callback");
    need_conv(&c, conv);
    need_time(&c, "before_row", before_row, false);
    need_limit(&c, limit);
    sink k = {.cb.msg = cb, .user = user};
    return list_rows(h, &c, S_MSG_LIST, msg_row, &k, P(T(conv), I(before_row), I(limit)));
}

static int receipt(el_hist *h, ctx *c, enum stmt_id stmt, const char *peer, const char *id,
                   int64_t at)
{
    need_arg(c, h != NULL, "handle");
    need_peer(c, "peer", peer);
    need_id(c, "id", id);
    need_time(c, "at", at, true);
    int rc = write1(h, c, stmt, P(T(peer), T(id), I(at)));
    return rc > 1 ? 1 : rc;
}

int el_hist_msg_delivered(el_hist *h, const char *peer, const char *id, int64_t at,
                          char *err, size_t errlen)
{
    ctx c = CTX("msg_delivered");
    return receipt(h, &c, S_DELIVERED, peer, id, at);
}

int el_hist_msg_read_by(el_hist *h, const char *peer, const char *id, int64_t at, char *err,
                        size_t errlen)
{
    ctx c = CTX("msg_read_by");
    return receipt(h, &c, S_READ_BY, peer, id, at);
}

int el_hist_msg_edit(el_hist *h, const char *author, const char *id, const char *text,
                     int64_t edited_at, char *err, size_t errlen)
{
    ctx c = CTX("msg_edit");
    bool outer;
    msg_info mi;
    need_arg(&c, h != NULL, "handle");
    need_peer(&c, "author", author);
    need_id(&c, "id", id);
    need_text(&c, "text", text, 1, EL_HIST_TEXT_MAX);
    need_time(&c, "edited_at", edited_at, true);
    int rc = tx_begin(h, &c, &outer);
    if (rc)
        return rc;
    rc = lookup(h, &c, author, id, true, &mi);
    if (!rc && mi.deleted)
        rc = fail(&c, EL_ERR_STATE, "message", "is deleted");
    /* Edits may arrive out of order (a re-send overtaking an envelope): the
     * one with the latest edited_at wins, the others are stale (0). */
    if (!rc && mi.edited_at <= edited_at)
        rc = run(h, &c, S_MSG_EDIT, P(I(mi.row), T(text), I(edited_at)));
    return tx_end(h, &c, outer, rc);
}

int el_hist_msg_delete(el_hist *h, const char *author, const char *id, char *err,
                       size_t errlen)
{
    ctx c = CTX("msg_delete");
    bool outer;
    msg_info mi;
    need_arg(&c, h != NULL, "handle");
    need_peer(&c, "author", author);
    need_id(&c, "id", id);
    int rc = tx_begin(h, &c, &outer);
    if (rc)
        return rc;
    rc = lookup(h, &c, author, id, true, &mi);
    if (!rc && !mi.deleted) {
        rc = run(h, &c, S_MSG_DELETE, P(I(mi.row)));
        if (rc >= 0)
            rc = run(h, &c, S_REACT_DROP, P(T(mi.conv), T(id)));
        if (rc >= 0)
            rc = 1;
    }
    return tx_end(h, &c, outer, rc);
}

/* Steps MARK_READ's RETURNING rows into the callback. All changes are made
 * by the first step (SQLite buffers RETURNING rows). */
static int mark_read_rows(el_hist *h, ctx *c, qcur *q, el_hist_read_cb cb, void *user)
{
    int count = 0;
    for (;;) {
        int rc = q_step(h, c, q);
        if (rc <= 0)
            return rc < 0 ? rc : count;
        const char *author = col_text(q->s, 0), *id = col_text(q->s, 1);
        const char *kind = col_text(q->s, 2);
        if (!author || !id || !kind)
            return corrupt(c, "message");
        if (sqlite3_column_int(q->s, 3) || strcmp(kind, "system") == 0)
            continue;
        count++;
        h->in_callback++;
        rc = cb ? cb(author, id, user) : 0;
        h->in_callback--;
        if (rc < 0)
            return rc;
    }
}

int el_hist_conv_mark_read(el_hist *h, const char *conv, int64_t now, el_hist_read_cb cb,
                           void *user, char *err, size_t errlen)
{
    ctx c = CTX("conv_mark_read");
    bool outer;
    qcur q;
    need_arg(&c, h != NULL, "handle");
    need_conv(&c, conv);
    need_time(&c, "now", now, true);
    int rc = tx_begin(h, &c, &outer);
    if (rc)
        return rc;
    rc = q_open(h, &c, S_MARK_READ, &q, P(T(conv), I(now)));
    if (!rc) {
        rc = mark_read_rows(h, &c, &q, cb, user);
        q_close(h, &q);
    }
    return tx_end(h, &c, outer, rc);
}

int el_hist_conv_unread(el_hist *h, const char *conv, char *err, size_t errlen)
{
    ctx c = CTX("conv_unread");
    need_arg(&c, h != NULL, "handle");
    need_conv(&c, conv);
    return count_of(h, &c, S_UNREAD, P(T(conv)));
}

static int conv_row(sqlite3_stmt *s, const sink *k, ctx *c)
{
    el_hist_conv cv = {
        .conv = col_text(s, 0),
        .last_ts = sqlite3_column_int64(s, 1),
        .last_row = sqlite3_column_int64(s, 2),
        .messages = col_count(s, 3),
        .unread = col_count(s, 4),
    };
    return cv.conv ? k->cb.conv(&cv, k->user) : corrupt(c, "conv");
}

int el_hist_conv_list(el_hist *h, el_hist_conv_cb cb, void *user, char *err, size_t errlen)
{
    ctx c = CTX("conv_list");
    need_arg(&c, h && cb, "handle or callback");
    sink k = {.cb.conv = cb, .user = user};
    return list_rows(h, &c, S_CONV_LIST, conv_row, &k, NO_PARAMS);
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Turns what the user typed into an FTS5 query that can never be a syntax
 * error: each word becomes a quoted prefix term ("word"*, quotes doubled),
 * and FTS5 ANDs terms. NULL on no memory; "" when there is no word. */
static char *fts_query(const char *q)
{
    size_t n = strlen(q), o = 0;
    char *out = malloc(6 * n + 8); /* a char doubles at most; a word adds 4 */
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        while (i < n && is_space(q[i]))
            i++;
        if (i == n)
            break;
        if (o)
            out[o++] = ' ';
        out[o++] = '"';
        for (; i < n && !is_space(q[i]); i++) {
            if (q[i] == '"')
                out[o++] = '"';
            out[o++] = q[i];
        }
        out[o++] = '"';
        out[o++] = '*';
    }
    out[o] = '\0';
    return out;
}

int el_hist_search(el_hist *h, const char *query, const char *conv, unsigned limit,
                   el_hist_msg_cb cb, void *user, char *err, size_t errlen)
{
    ctx c = CTX("search");
    need_arg(&c, h && cb, "handle or callback");
    need_text(&c, "query", query, 1, EL_HIST_QUERY_MAX);
    if (conv)
        need_conv(&c, conv);
    need_limit(&c, limit);
    char *fq = c.rc ? NULL : fts_query(query);
    if (!c.rc && !fq)
        fail(&c, EL_ERR_NOMEM, "query", "cannot be allocated");
    if (!c.rc && !*fq)
        fail(&c, EL_ERR_INVALID, "query", "has no word");
    sink k = {.cb.msg = cb, .user = user};
    int rc = list_rows(h, &c, S_SEARCH, msg_row, &k, P(T(fq), T(conv), I(limit)));
    free(fq);
    return rc;
}

/* ---- Reactions ---------------------------------------------------------- */

static void need_reaction(ctx *c, el_hist *h, const char *conv, const char *target,
                          const char *reactor, const char *emoji)
{
    need_arg(c, h != NULL, "handle");
    need_conv(c, conv);
    need_id(c, "target", target);
    need_peer(c, "reactor", reactor);
    need_text(c, "emoji", emoji, 1, EL_HIST_EMOJI_MAX);
}

int el_hist_reaction_add(el_hist *h, const char *conv, const char *target,
                         const char *reactor, const char *emoji, int64_t at, char *err,
                         size_t errlen)
{
    ctx c = CTX("reaction_add");
    need_reaction(&c, h, conv, target, reactor, emoji);
    need_time(&c, "at", at, false);
    return write1(h, &c, S_REACT_ADD, P(T(conv), T(target), T(reactor), T(emoji), I(at)));
}

int el_hist_reaction_remove(el_hist *h, const char *conv, const char *target,
                            const char *reactor, const char *emoji, char *err, size_t errlen)
{
    ctx c = CTX("reaction_remove");
    need_reaction(&c, h, conv, target, reactor, emoji);
    return write1(h, &c, S_REACT_REMOVE, P(T(conv), T(target), T(reactor), T(emoji)));
}

static int reaction_row(sqlite3_stmt *s, const sink *k, ctx *c)
{
    const char *reactor = col_text(s, 0), *emoji = col_text(s, 1);
    if (!reactor || !emoji)
        return corrupt(c, "reaction");
    return k->cb.reaction(reactor, emoji, sqlite3_column_int64(s, 2), k->user);
}

int el_hist_reaction_list(el_hist *h, const char *conv, const char *target,
                          el_hist_reaction_cb cb, void *user, char *err, size_t errlen)
{
    ctx c = CTX("reaction_list");
    need_arg(&c, h && cb, "handle or callback");
    need_conv(&c, conv);
    need_id(&c, "target", target);
    sink k = {.cb.reaction = cb, .user = user};
    return list_rows(h, &c, S_REACT_LIST, reaction_row, &k, P(T(conv), T(target)));
}

/* ---- Seen --------------------------------------------------------------- */

int el_hist_seen(el_hist *h, const char *from, const char *id, int64_t now, char *err,
                 size_t errlen)
{
    ctx c = CTX("seen");
    need_arg(&c, h != NULL, "handle");
    need_peer(&c, "from", from);
    need_id(&c, "id", id);
    need_time(&c, "now", now, false);
    return write1(h, &c, S_SEEN_ADD, P(T(from), T(id), I(now)));
}

int el_hist_prune_seen(el_hist *h, int64_t before_ms, char *err, size_t errlen)
{
    ctx c = CTX("prune_seen");
    need_arg(&c, h != NULL, "handle");
    need_time(&c, "before_ms", before_ms, false);
    return write1(h, &c, S_SEEN_PRUNE, P(I(before_ms)));
}

/* ---- Outbox ------------------------------------------------------------- */

int el_hist_outbox_add(el_hist *h, const char *to, const char *msg_id, const uint8_t *bytes,
                       size_t len, int64_t created_at, int64_t *seq, char *err,
                       size_t errlen)
{
    ctx c = CTX("outbox_add");
    need_arg(&c, h != NULL, "handle");
    need_peer(&c, "to", to);
    need_id(&c, "msg_id", msg_id);
    need_arg(&c, bytes && len, "bytes");
    if (!c.rc && len > EL_HIST_OUTBOX_MAX)
        fail(&c, EL_ERR_TOO_LARGE, "bytes", "are over EL_HIST_OUTBOX_MAX");
    need_time(&c, "created_at", created_at, false);
    int rc = write1(h, &c, S_OB_ADD, P(T(to), T(msg_id), B(bytes, len), I(created_at)));
    if (rc >= 0 && seq)
        *seq = sqlite3_last_insert_rowid(h->db);
    return rc < 0 ? rc : EL_OK;
}

static int outbox_row(sqlite3_stmt *s, const sink *k, ctx *c)
{
    el_hist_outbox_item it = {
        .seq = sqlite3_column_int64(s, 0),
        .msg_id = col_text(s, 1),
        .bytes = sqlite3_column_blob(s, 2),
        .len = (size_t)sqlite3_column_bytes(s, 2),
        .created_at = sqlite3_column_int64(s, 3),
        .enveloped = sqlite3_column_int(s, 4) != 0,
        .attempts = col_count(s, 5),
    };
    if (!it.msg_id || !it.bytes || !it.len)
        return corrupt(c, "outbox row");
    return k->cb.outbox(&it, k->user);
}

int el_hist_outbox_list(el_hist *h, const char *to, int64_t after, el_hist_outbox_cb cb,
                        void *user, char *err, size_t errlen)
{
    ctx c = CTX("outbox_list");
    need_arg(&c, h && cb, "handle or callback");
    need_peer(&c, "to", to);
    need_arg(&c, after >= 0, "after (a seq, or 0)");
    sink k = {.cb.outbox = cb, .user = user};
    return list_rows(h, &c, S_OB_LIST, outbox_row, &k, P(T(to), I(after)));
}

int el_hist_outbox_ack(el_hist *h, const char *to, const char *msg_id, char *err,
                       size_t errlen)
{
    ctx c = CTX("outbox_ack");
    need_arg(&c, h != NULL, "handle");
    need_peer(&c, "to", to);
    need_id(&c, "msg_id", msg_id);
    int rc = write1(h, &c, S_OB_ACK, P(T(to), T(msg_id)));
    return rc > 1 ? 1 : rc;
}

static int outbox_update(el_hist *h, ctx *c, enum stmt_id stmt, int64_t seq)
{
    need_arg(c, h != NULL, "handle");
    need_time(c, "seq", seq, true);
    int rc = write1(h, c, stmt, P(I(seq)));
    if (rc == 0)
        return fail(c, EL_ERR_NOT_FOUND, "outbox row", "does not exist");
    return rc < 0 ? rc : EL_OK;
}

int el_hist_outbox_mark_enveloped(el_hist *h, int64_t seq, char *err, size_t errlen)
{
    ctx c = CTX("outbox_mark_enveloped");
    return outbox_update(h, &c, S_OB_ENVELOPED, seq);
}

int el_hist_outbox_attempt(el_hist *h, int64_t seq, char *err, size_t errlen)
{
    ctx c = CTX("outbox_attempt");
    return outbox_update(h, &c, S_OB_ATTEMPT, seq);
}

static int outbox_peer_row(sqlite3_stmt *s, const sink *k, ctx *c)
{
    const char *peer = col_text(s, 0);
    return peer ? k->cb.outbox_peer(peer, col_count(s, 1), k->user) : corrupt(c, "peer");
}

int el_hist_outbox_peers(el_hist *h, el_hist_outbox_peer_cb cb, void *user, char *err,
                         size_t errlen)
{
    ctx c = CTX("outbox_peers");
    need_arg(&c, h && cb, "handle or callback");
    sink k = {.cb.outbox_peer = cb, .user = user};
    return list_rows(h, &c, S_OB_PEERS, outbox_peer_row, &k, NO_PARAMS);
}

int el_hist_outbox_count(el_hist *h, const char *to, char *err, size_t errlen)
{
    ctx c = CTX("outbox_count");
    need_arg(&c, h != NULL, "handle");
    need_peer(&c, "to", to);
    return count_of(h, &c, S_OB_COUNT, P(T(to)));
}

/* ---- File transfers ----------------------------------------------------- */

static bool is_final(el_hist_file_state s)
{
    return s >= EL_HIST_COMPLETE;
}

static void need_state(ctx *c, el_hist_file_state s)
{
    if (!c->rc && (s < EL_HIST_OFFERED || s > EL_HIST_FAILED))
        fail(c, EL_ERR_INVALID, "state", "is unknown");
}

/* §11 FILE_META: no path separators or control characters in a name. */
static void need_file_name(ctx *c, const char *name)
{
    need_text(c, "name", name, 1, EL_HIST_FILE_NAME_MAX);
    for (const char *p = name; !c->rc && *p; p++)
        if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
            fail(c, EL_ERR_INVALID, "name", "has a path separator or control character");
}

/* A path may be any bytes (it is the file system's); NULL is "none". */
static void need_path(ctx *c, const char *path)
{
    if (!c->rc && path && !path[0])
        fail(c, EL_ERR_INVALID, "path", "is empty");
    if (!c->rc && path && strnlen(path, EL_HIST_PATH_MAX + 1) > EL_HIST_PATH_MAX)
        fail(c, EL_ERR_TOO_LARGE, "path", "is over EL_HIST_PATH_MAX");
}

static void need_file(ctx *c, const el_hist_file *f)
{
    need_arg(c, f != NULL, "transfer");
    if (c->rc)
        return;
    need_id(c, "file_id", f->file_id);
    need_conv(c, f->conv);
    need_peer(c, "peer", f->peer);
    need_id(c, "msg_id", f->msg_id);
    need_file_name(c, f->name);
    need_path(c, f->path);
    need_text(c, "mime", f->mime, 1, EL_HIST_MIME_MAX);
    if (!c->rc && !(f->sha256 && strnlen(f->sha256, 65) == 64 && el_is_lower_hex(f->sha256, 64)))
        fail(c, EL_ERR_INVALID, "sha256", "is not 64 lowercase hex digits");
    need_text(c, "error", f->error, 0, EL_HIST_ERROR_MAX);
    if (!c->rc && f->size > (uint64_t)UINT53_MAX)
        fail(c, EL_ERR_TOO_LARGE, "size", "is over 2^53 - 1");
    if (!c->rc && f->offset > f->size)
        fail(c, EL_ERR_TOO_LARGE, "offset", "is beyond the size");
    need_state(c, f->state);
    need_time(c, "updated_at", f->updated_at, false);
}

int el_hist_file_put(el_hist *h, const el_hist_file *f, char *err, size_t errlen)
{
    ctx c = CTX("file_put");
    need_arg(&c, h != NULL, "handle");
    need_file(&c, f);
    int rc = c.rc ? c.rc
                  : write1(h, &c, S_FILE_PUT,
                           P(T(f->file_id), T(f->conv), T(f->peer), I(f->outgoing),
                             T(f->msg_id), T(f->name), T(f->path), I(f->size), T(f->mime),
                             T(f->sha256), I(f->voice_ms), I(f->offset),
                             T(file_state_names[f->state]), T(f->error), I(f->updated_at)));
    return rc < 0 ? rc : EL_OK;
}

static int file_row(sqlite3_stmt *s, const sink *k, ctx *c)
{
    el_hist_file f = {
        .file_id = col_text(s, 0),
        .conv = col_text(s, 1),
        .peer = col_text(s, 2),
        .outgoing = sqlite3_column_int(s, 3) != 0,
        .msg_id = col_text(s, 4),
        .name = col_text(s, 5),
        .path = col_text(s, 6),
        .size = (uint64_t)sqlite3_column_int64(s, 7),
        .mime = col_text(s, 8),
        .sha256 = col_text(s, 9),
        .voice_ms = (uint32_t)sqlite3_column_int64(s, 10),
        .offset = (uint64_t)sqlite3_column_int64(s, 11),
        .state = (el_hist_file_state)name_index(file_state_names, N_FILE_STATES,
                                                sqlite3_column_text(s, 12)),
        .error = col_text(s, 13),
        .updated_at = sqlite3_column_int64(s, 14),
    };
    if (!f.file_id || !f.conv || !f.peer || !f.msg_id || !f.name || !f.mime || !f.sha256 ||
        !f.state)
        return corrupt(c, "transfer");
    return k->cb.file(&f, k->user);
}

int el_hist_file_get(el_hist *h, const char *file_id, el_hist_file_cb cb, void *user,
                     char *err, size_t errlen)
{
    ctx c = CTX("file_get");
    need_arg(&c, h && cb, "handle or callback");
    need_id(&c, "file_id", file_id);
    sink k = {.cb.file = cb, .user = user};
    return get_one(&c, list_rows(h, &c, S_FILE_GET, file_row, &k, P(T(file_id))), "transfer");
}

/* Reads a transfer's state and size, for the rules of the setters. */
static int file_state(el_hist *h, ctx *c, const char *file_id, el_hist_file_state *state,
                      uint64_t *size)
{
    qcur q;
    int rc = q_open(h, c, S_FILE_STATE, &q, P(T(file_id)));
    if (rc)
        return rc;
    rc = q_step(h, c, &q);
    if (rc == 1) {
        *state = (el_hist_file_state)name_index(file_state_names, N_FILE_STATES,
                                                sqlite3_column_text(q.s, 0));
        *size = (uint64_t)sqlite3_column_int64(q.s, 1);
        rc = *state ? EL_OK : corrupt(c, "transfer state");
    } else if (rc == 0) {
        rc = fail(c, EL_ERR_NOT_FOUND, "transfer", "does not exist");
    }
    q_close(h, &q);
    return rc;
}

int el_hist_file_set_offset(el_hist *h, const char *file_id, uint64_t offset, int64_t now,
                            char *err, size_t errlen)
{
    ctx c = CTX("file_set_offset");
    bool outer;
    el_hist_file_state state;
    uint64_t size;
    need_arg(&c, h != NULL, "handle");
    need_id(&c, "file_id", file_id);
    need_time(&c, "now", now, false);
    int rc = tx_begin(h, &c, &outer);
    if (rc)
        return rc;
    rc = file_state(h, &c, file_id, &state, &size);
    if (!rc && offset > size)
        rc = fail(&c, EL_ERR_TOO_LARGE, "offset", "is beyond the size");
    if (!rc && is_final(state))
        rc = fail(&c, EL_ERR_STATE, "transfer", "is finished");
    if (!rc)
        rc = run(h, &c, S_FILE_SET_OFFSET, P(T(file_id), I(offset), I(now)));
    return tx_end(h, &c, outer, rc < 0 ? rc : EL_OK);
}

int el_hist_file_set_state(el_hist *h, const char *file_id, el_hist_file_state state,
                           const char *error, const char *path, int64_t now, char *err,
                           size_t errlen)
{
    ctx c = CTX("file_set_state");
    bool outer;
    el_hist_file_state cur;
    uint64_t size;
    need_arg(&c, h != NULL, "handle");
    need_id(&c, "file_id", file_id);
    need_state(&c, state);
    need_text(&c, "error", error, 0, EL_HIST_ERROR_MAX);
    need_path(&c, path);
    need_time(&c, "now", now, false);
    int rc = tx_begin(h, &c, &outer);
    if (rc)
        return rc;
    rc = file_state(h, &c, file_id, &cur, &size);
    if (!rc && is_final(cur) && cur != state)
        rc = fail(&c, EL_ERR_STATE, "transfer", "is finished");
    if (!rc && !is_final(cur)) /* the same final state again: nothing to do */
        rc = run(h, &c, S_FILE_SET_STATE,
                 P(T(file_id), T(file_state_names[state]), T(error), T(path), I(now)));
    return tx_end(h, &c, outer, rc < 0 ? rc : EL_OK);
}

int el_hist_file_list_unfinished(el_hist *h, const char *peer, el_hist_file_cb cb,
                                 void *user, char *err, size_t errlen)
{
    ctx c = CTX("file_list_unfinished");
    need_arg(&c, h && cb, "handle or callback");
    need_peer(&c, "peer", peer);
    sink k = {.cb.file = cb, .user = user};
    return list_rows(h, &c, S_FILE_LIST_PEER, file_row, &k, P(T(peer)));
}

int el_hist_file_list_conv(el_hist *h, const char *conv, el_hist_file_cb cb, void *user,
                           char *err, size_t errlen)
{
    ctx c = CTX("file_list_conv");
    need_arg(&c, h && cb, "handle or callback");
    need_conv(&c, conv);
    sink k = {.cb.file = cb, .user = user};
    return list_rows(h, &c, S_FILE_LIST_CONV, file_row, &k, P(T(conv)));
}

/* ---- Groups ------------------------------------------------------------- */

int el_hist_group_put(el_hist *h, const char *group_id, int64_t version, const char *state,
                      const char *name, char *err, size_t errlen)
{
    ctx c = CTX("group_put");
    need_arg(&c, h != NULL, "handle");
    need_id(&c, "group_id", group_id);
    if (!c.rc && (version < 1 || version > UINT53_MAX))
        fail(&c, EL_ERR_INVALID, "version", "must be 1..2^53-1");
    need_text(&c, "state", state, 1, EL_HIST_GROUP_STATE_MAX);
    if (!c.rc && el_json_validate(state, strlen(state), 8, NULL, 0) != 0)
        fail(&c, EL_ERR_INVALID, "state", "is not JSON");
    need_text(&c, "name", name, 1, EL_HIST_GROUP_NAME_MAX);
    return write1(h, &c, S_GROUP_PUT, P(T(group_id), I(version), T(state), T(name)));
}

static int group_row(sqlite3_stmt *s, const sink *k, ctx *c)
{
    el_hist_group g = {
        .group_id = col_text(s, 0),
        .version = sqlite3_column_int64(s, 1),
        .state = col_text(s, 2),
        .state_len = (size_t)sqlite3_column_bytes(s, 2),
        .name = col_text(s, 3),
        .left = sqlite3_column_int(s, 4) != 0,
    };
    if (!g.group_id || !g.state || !g.name)
        return corrupt(c, "group");
    return k->cb.group(&g, k->user);
}

int el_hist_group_get(el_hist *h, const char *group_id, el_hist_group_cb cb, void *user,
                      char *err, size_t errlen)
{
    ctx c = CTX("group_get");
    need_arg(&c, h && cb, "handle or callback");
    need_id(&c, "group_id", group_id);
    sink k = {.cb.group = cb, .user = user};
    return get_one(&c, list_rows(h, &c, S_GROUP_GET, group_row, &k, P(T(group_id))), "group");
}

int el_hist_group_list(el_hist *h, el_hist_group_cb cb, void *user, char *err, size_t errlen)
{
    ctx c = CTX("group_list");
    need_arg(&c, h && cb, "handle or callback");
    sink k = {.cb.group = cb, .user = user};
    return list_rows(h, &c, S_GROUP_LIST, group_row, &k, NO_PARAMS);
}

int el_hist_group_set_left(el_hist *h, const char *group_id, bool left, char *err,
                           size_t errlen)
{
    ctx c = CTX("group_set_left");
    need_arg(&c, h != NULL, "handle");
    need_id(&c, "group_id", group_id);
    int rc = write1(h, &c, S_GROUP_SET_LEFT, P(T(group_id), I(left)));
    if (rc == 0)
        return fail(&c, EL_ERR_NOT_FOUND, "group", "does not exist");
    return rc < 0 ? rc : EL_OK;
}

/* ---- Peers -------------------------------------------------------------- */

int el_hist_peer_put(el_hist *h, const char *peer_id, const char *name, int64_t last_seen,
                     char *err, size_t errlen)
{
    ctx c = CTX("peer_put");
    need_arg(&c, h != NULL, "handle");
    need_peer(&c, "peer_id", peer_id);
    need_text(&c, "name", name, 0, EL_HIST_PEER_NAME_MAX);
    need_time(&c, "last_seen", last_seen, false);
    int rc = write1(h, &c, S_PEER_PUT, P(T(peer_id), T(name), I(last_seen)));
    return rc < 0 ? rc : EL_OK;
}

static int peer_row(sqlite3_stmt *s, const sink *k, ctx *c)
{
    const char *id = col_text(s, 0), *name = col_text(s, 1);
    el_hist_peer p = {.has_name = name != NULL, .last_seen = sqlite3_column_int64(s, 2)};
    if (!id || strlen(id) != EL_HIST_PEER_LEN || (name && strlen(name) > EL_HIST_PEER_NAME_MAX))
        return corrupt(c, "peer");
    memcpy(p.peer_id, id, EL_HIST_PEER_LEN + 1);
    if (name)
        memcpy(p.name, name, strlen(name) + 1);
    return k->cb.peer(&p, k->user);
}

/* peer_get's callback: copies the row into the caller's struct. */
static int peer_copy(const el_hist_peer *p, void *user)
{
    *(el_hist_peer *)user = *p;
    return 0;
}

int el_hist_peer_get(el_hist *h, const char *peer_id, el_hist_peer *out, char *err,
                     size_t errlen)
{
    ctx c = CTX("peer_get");
    need_arg(&c, h && out, "handle or output");
    need_peer(&c, "peer_id", peer_id);
    sink k = {.cb.peer = peer_copy, .user = out};
    return get_one(&c, list_rows(h, &c, S_PEER_GET, peer_row, &k, P(T(peer_id))), "peer");
}

int el_hist_peer_list(el_hist *h, el_hist_peer_cb cb, void *user, char *err, size_t errlen)
{
    ctx c = CTX("peer_list");
    need_arg(&c, h && cb, "handle or callback");
    sink k = {.cb.peer = cb, .user = user};
    return list_rows(h, &c, S_PEER_LIST, peer_row, &k, NO_PARAMS);
}
