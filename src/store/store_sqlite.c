/* store_sqlite.c - the SQLite backend of el_store (see store.h, store_int.h).
 *
 * All SQL of this backend lives in this file: the migration steps and one
 * statement per operation, prepared on first use and cached for the life of
 * the handle. The SQL sticks to what PostgreSQL also accepts (numbered
 * parameters, ON CONFLICT ... DO NOTHING, plain types), so that the libpq
 * backend can mirror it with the same schema and the same migration numbers.
 *
 * Connection settings, and why:
 *   journal_mode=WAL     readers (health checks, a second process) never wait
 *                        for the writer, and commits are one append
 *   synchronous=NORMAL   with WAL this is still crash-safe for the database;
 *                        a power loss can only drop the last commits
 *   foreign_keys=ON      SQLite's default is OFF; references to unknown users
 *                        and groups must fail as they do in PostgreSQL
 *   busy_timeout         a second process holding the write lock makes us
 *                        wait up to BUSY_TIMEOUT_MS instead of failing at once
 *   secure_delete=FAST   erased profiles and acknowledged envelopes do not
 *                        linger in free pages when that costs no extra I/O
 * Writes that span several statements run in BEGIN IMMEDIATE transactions:
 * taking the write lock up front means a busy wait happens at BEGIN, never as
 * an unrecoverable lock upgrade in the middle. */
#include "store/store_int.h"

#include "base/err.h"
#include "base/log.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000

/* ---- Schema ------------------------------------------------------------- */

/* Migration step i takes the database from PRAGMA user_version i to i + 1.
 * Steps are only ever appended; a released step is never edited. */
static const struct migration {
    const char *what;
    const char *sql;
} migrations[] = {
    {"initial schema",
     "CREATE TABLE users ("
     " peer_id TEXT PRIMARY KEY NOT NULL,"
     " ik TEXT NOT NULL,"
     " sk TEXT NOT NULL,"
     " sk_sig TEXT NOT NULL,"
     " name TEXT,"
     " avatar TEXT,"
     " created_at INTEGER NOT NULL,"
     " last_seen INTEGER NOT NULL);"
     /* One row per pair, smaller peer ID first: symmetry cannot drift. */
     "CREATE TABLE contacts ("
     " peer_a TEXT NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " peer_b TEXT NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " created_at INTEGER NOT NULL,"
     " PRIMARY KEY (peer_a, peer_b),"
     " CHECK (peer_a < peer_b));"
     "CREATE INDEX contacts_by_b ON contacts (peer_b);"
     "CREATE TABLE contact_requests ("
     " from_peer TEXT NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " to_peer TEXT NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " message TEXT NOT NULL,"
     " created_at INTEGER NOT NULL,"
     " PRIMARY KEY (from_peer, to_peer),"
     " CHECK (from_peer <> to_peer));"
     "CREATE INDEX contact_requests_by_to ON contact_requests (to_peer);"
     "CREATE TABLE blocks ("
     " blocker TEXT NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " blocked TEXT NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " created_at INTEGER NOT NULL,"
     " PRIMARY KEY (blocker, blocked),"
     " CHECK (blocker <> blocked));"
     /* "groups" is a keyword in newer SQL dialects; avoid quoting games. */
     "CREATE TABLE chat_groups ("
     " group_id TEXT PRIMARY KEY NOT NULL,"
     " name TEXT NOT NULL,"
     " admin TEXT NOT NULL REFERENCES users (peer_id),"
     " created_at INTEGER NOT NULL);"
     "CREATE TABLE group_members ("
     " group_id TEXT NOT NULL REFERENCES chat_groups (group_id) ON DELETE CASCADE,"
     " peer_id TEXT NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " joined_at INTEGER NOT NULL,"
     " PRIMARY KEY (group_id, peer_id));"
     "CREATE INDEX group_members_by_peer ON group_members (peer_id);"
     /* seq (the rowid; BIGSERIAL in PostgreSQL) gives the insertion order the
      * recipient must see; id is the caller's handle for acknowledgements. */
     "CREATE TABLE envelopes ("
     " seq INTEGER PRIMARY KEY,"
     " id TEXT NOT NULL UNIQUE,"
     " to_peer TEXT NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " from_peer TEXT NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " blob TEXT NOT NULL,"
     " created_at INTEGER NOT NULL,"
     " expires_at INTEGER NOT NULL);"
     "CREATE INDEX envelopes_by_to ON envelopes (to_peer, seq);"
     "CREATE INDEX envelopes_by_expiry ON envelopes (expires_at);"},
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- Statements --------------------------------------------------------- */

#define STMT_LIST(X)                                                                    \
    X(BEGIN, "BEGIN IMMEDIATE")                                                         \
    X(COMMIT, "COMMIT")                                                                 \
    X(ROLLBACK, "ROLLBACK")                                                             \
    X(PING, "SELECT 1")                                                                 \
    X(VERSION, "PRAGMA user_version")                                                   \
    X(USER_UPDATE_LOGIN, "UPDATE users SET ik = ?2, sk = ?3, sk_sig = ?4,"              \
                         " name = COALESCE(?5, name), last_seen = ?6 WHERE peer_id = ?1") \
    X(USER_INSERT, "INSERT INTO users (peer_id, ik, sk, sk_sig, name, avatar,"          \
                   " created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?6)") \
    X(USER_GET, "SELECT peer_id, ik, sk, sk_sig, name, avatar, created_at, last_seen"   \
                " FROM users WHERE peer_id = ?1")                                       \
    X(USER_SET_PROFILE, "UPDATE users SET"                                              \
                        " name = CASE WHEN ?2 <> 0 THEN ?3 ELSE name END,"              \
                        " avatar = CASE WHEN ?4 <> 0 THEN ?5 ELSE avatar END"           \
                        " WHERE peer_id = ?1")                                          \
    X(USER_TOUCH, "UPDATE users SET last_seen = ?2 WHERE peer_id = ?1")                 \
    X(USER_EXISTS, "SELECT 1 FROM users WHERE peer_id = ?1")                            \
    X(CONTACT_ADD, "INSERT INTO contacts (peer_a, peer_b, created_at) VALUES (?1, ?2, ?3)" \
                   " ON CONFLICT (peer_a, peer_b) DO NOTHING")                          \
    X(CONTACT_REMOVE, "DELETE FROM contacts WHERE peer_a = ?1 AND peer_b = ?2")         \
    X(CONTACT_IS, "SELECT 1 FROM contacts WHERE peer_a = ?1 AND peer_b = ?2")           \
    X(CONTACT_LIST, "SELECT peer_b FROM contacts WHERE peer_a = ?1"                     \
                    " UNION ALL SELECT peer_a FROM contacts WHERE peer_b = ?1"          \
                    " ORDER BY 1")                                                      \
    X(REQ_UPDATE, "UPDATE contact_requests SET message = ?3, created_at = ?4"           \
                  " WHERE from_peer = ?1 AND to_peer = ?2")                             \
    X(REQ_INSERT, "INSERT INTO contact_requests (from_peer, to_peer, message, created_at)" \
                  " VALUES (?1, ?2, ?3, ?4)")                                           \
    X(REQ_REMOVE, "DELETE FROM contact_requests WHERE from_peer = ?1 AND to_peer = ?2") \
    X(REQ_EXISTS, "SELECT 1 FROM contact_requests WHERE from_peer = ?1 AND to_peer = ?2") \
    X(REQ_LIST_IN, "SELECT from_peer, to_peer, message, created_at FROM contact_requests" \
                   " WHERE to_peer = ?1 ORDER BY created_at, from_peer")                \
    X(REQ_LIST_OUT, "SELECT from_peer, to_peer, message, created_at FROM contact_requests" \
                    " WHERE from_peer = ?1 ORDER BY created_at, to_peer")               \
    X(BLOCK_ADD, "INSERT INTO blocks (blocker, blocked, created_at) VALUES (?1, ?2, ?3)" \
                 " ON CONFLICT (blocker, blocked) DO NOTHING")                          \
    X(BLOCK_REMOVE, "DELETE FROM blocks WHERE blocker = ?1 AND blocked = ?2")           \
    X(BLOCK_IS, "SELECT 1 FROM blocks WHERE blocker = ?1 AND blocked = ?2")             \
    X(BLOCK_LIST, "SELECT blocked FROM blocks WHERE blocker = ?1"                       \
                  " ORDER BY created_at, blocked")                                      \
    X(GROUP_INSERT, "INSERT INTO chat_groups (group_id, name, admin, created_at)"       \
                    " VALUES (?1, ?2, ?3, ?4)")                                         \
    X(GROUP_GET, "SELECT group_id, name, admin, created_at FROM chat_groups"            \
                 " WHERE group_id = ?1")                                                \
    X(GROUP_EXISTS, "SELECT 1 FROM chat_groups WHERE group_id = ?1")                    \
    X(GROUP_DELETE, "DELETE FROM chat_groups WHERE group_id = ?1")                      \
    X(GROUP_SET_NAME, "UPDATE chat_groups SET name = ?2 WHERE group_id = ?1")           \
    X(GROUP_SET_ADMIN, "UPDATE chat_groups SET admin = ?2 WHERE group_id = ?1 AND EXISTS" \
                       " (SELECT 1 FROM group_members WHERE group_id = ?1 AND peer_id = ?2)") \
    X(GROUP_HAND_OVER, "UPDATE chat_groups SET admin = ?2 WHERE group_id = ?1"          \
                       " AND admin = ?3")                                               \
    X(GROUP_LIST_FOR, "SELECT g.group_id, g.name, g.admin, g.created_at"                \
                      " FROM chat_groups g JOIN group_members m ON m.group_id = g.group_id" \
                      " WHERE m.peer_id = ?1 ORDER BY g.created_at, g.group_id")        \
    X(MEMBER_ADD, "INSERT INTO group_members (group_id, peer_id, joined_at)"            \
                  " VALUES (?1, ?2, ?3) ON CONFLICT (group_id, peer_id) DO NOTHING")    \
    X(MEMBER_REMOVE, "DELETE FROM group_members WHERE group_id = ?1 AND peer_id = ?2")  \
    X(MEMBER_IS, "SELECT 1 FROM group_members WHERE group_id = ?1 AND peer_id = ?2")    \
    X(MEMBER_OLDEST, "SELECT peer_id FROM group_members WHERE group_id = ?1"            \
                     " ORDER BY joined_at, peer_id LIMIT 1")                            \
    X(MEMBER_LIST, "SELECT peer_id, joined_at FROM group_members WHERE group_id = ?1"   \
                   " ORDER BY joined_at, peer_id")                                      \
    X(CO_MEMBER_IS, "SELECT 1 FROM group_members a JOIN group_members b"                \
                    " ON b.group_id = a.group_id"                                       \
                    " WHERE a.peer_id = ?1 AND b.peer_id = ?2 LIMIT 1")                 \
    X(CO_MEMBER_LIST, "SELECT DISTINCT b.peer_id FROM group_members a"                  \
                      " JOIN group_members b ON b.group_id = a.group_id"                \
                      " WHERE a.peer_id = ?1 AND b.peer_id <> ?1 ORDER BY b.peer_id")   \
    X(ENV_COUNT, "SELECT COUNT(*) FROM envelopes WHERE to_peer = ?1 AND expires_at > ?2") \
    X(ENV_INSERT, "INSERT INTO envelopes (id, to_peer, from_peer, blob, created_at,"    \
                  " expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                       \
    X(ENV_LIST, "SELECT id, to_peer, from_peer, blob, created_at, expires_at"           \
                " FROM envelopes WHERE to_peer = ?1 AND expires_at > ?2"                \
                " ORDER BY seq LIMIT ?3")                                               \
    X(ENV_DELETE, "DELETE FROM envelopes WHERE to_peer = ?1 AND id = ?2")               \
    X(ENV_PURGE, "DELETE FROM envelopes WHERE expires_at <= ?1")

#define STMT_ENUM(id, sql) S_##id,
#define STMT_SQL(id, sql) [S_##id] = sql,
enum stmt_id { STMT_LIST(STMT_ENUM) S__COUNT };
static const char *const stmt_sql[S__COUNT] = {STMT_LIST(STMT_SQL)};

typedef struct sq_store {
    el_store base; /* first: el_store * and sq_store * convert both ways */
    sqlite3 *db;
    sqlite3_stmt *stmts[S__COUNT];
    /* A cached statement is busy while a list walks it. A read issued from
     * that list's callback which needs the same statement gets a one-off copy
     * instead of resetting the outer cursor. */
    bool busy[S__COUNT];
} sq_store;

static sq_store *sq(el_store *st)
{
    return (sq_store *)st;
}

/* ---- Error mapping ------------------------------------------------------ */

/* Turns an SQLite result code into our error. Constraint failures are the
 * expected outcomes the API documents; anything else is a database fault and
 * is logged. */
static int db_error(sq_store *s, const char *what, int rc, char *err, size_t errlen)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return el_seterr(err, errlen, EL_ERR_EXISTS, "%s: already exists", what);
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND,
                         "%s: a referenced peer or group does not exist", what);
    case SQLITE_CONSTRAINT_CHECK:
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s", what,
                         sqlite3_errmsg(s->db));
    default:
        break;
    }
    const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    EL_WARN("store: %s: %s (sqlite error %d)", what, msg, rc);
    return el_seterr(err, errlen, EL_ERR_DB, "%s: %s", what, msg);
}

static int corrupt(const char *what, char *err, size_t errlen)
{
    EL_WARN("store: %s: a stored value exceeds its limit", what);
    return el_seterr(err, errlen, EL_ERR_DB,
                     "%s: a stored value exceeds its limit (database edited by hand?)", what);
}

/* ---- Queries ------------------------------------------------------------ */

/* A statement parameter: text (NULL binds SQL NULL) or a 64-bit integer.
 * Passed as arrays built with P(...), which keeps binding type-checked. */
typedef struct {
    const char *text;
    size_t len;       /* used when text is set and len != 0; else strlen */
    int64_t num;
    bool is_num;
} param;

#define T(x) ((param){.text = (x)})
#define TN(x, n) ((param){.text = (x), .len = (n)})
#define I(x) ((param){.num = (int64_t)(x), .is_num = true})
#define P(...) sizeof((const param[]){__VA_ARGS__}) / sizeof(param), (const param[]){__VA_ARGS__}

typedef struct {
    sqlite3_stmt *s;
    enum stmt_id id;
    bool owned; /* a one-off copy: finalize, don't return to the cache */
} query;

/* Gets statement `id` (cached, or a one-off copy when the cached one is busy)
 * and binds params. On failure q->s is NULL and nothing needs closing. */
static int q_open(sq_store *s, enum stmt_id id, query *q, const char *what, char *err,
                  size_t errlen, size_t n, const param *p)
{
    q->s = NULL;
    q->id = id;
    q->owned = s->busy[id];
    sqlite3_stmt *stmt = q->owned ? NULL : s->stmts[id];
    if (!stmt) {
        unsigned flags = q->owned ? 0 : SQLITE_PREPARE_PERSISTENT;
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, flags, &stmt, NULL);
        if (rc != SQLITE_OK)
            return db_error(s, what, rc, err, errlen);
        if (!q->owned)
            s->stmts[id] = stmt;
    }
    for (size_t i = 0; i < n; i++) {
        int col = (int)i + 1;
        int rc;
        if (p[i].is_num)
            rc = sqlite3_bind_int64(stmt, col, p[i].num);
        else if (!p[i].text)
            rc = sqlite3_bind_null(stmt, col);
        else
            rc = sqlite3_bind_text(stmt, col, p[i].text,
                                   p[i].len ? (int)p[i].len : -1, SQLITE_STATIC);
        if (rc != SQLITE_OK) {
            rc = db_error(s, what, rc, err, errlen);
            if (q->owned)
                sqlite3_finalize(stmt);
            else
                sqlite3_clear_bindings(stmt);
            return rc;
        }
    }
    if (!q->owned)
        s->busy[id] = true;
    q->s = stmt;
    return EL_OK;
}

static void q_close(sq_store *s, query *q)
{
    if (!q->s)
        return;
    if (q->owned) {
        sqlite3_finalize(q->s);
    } else {
        /* Reset ends the read transaction of a SELECT; clearing the
         * bindings drops our pointers to the caller's strings. */
        sqlite3_reset(q->s);
        sqlite3_clear_bindings(q->s);
        s->busy[q->id] = false;
    }
    q->s = NULL;
}

/* One step: 1 = a row, 0 = done, < 0 = el_err. */
static int q_step(sq_store *s, query *q, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(q->s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return db_error(s, what, rc, err, errlen);
}

/* Runs a statement that returns no rows; returns the number of rows changed. */
static int run(sq_store *s, enum stmt_id id, const char *what, char *err, size_t errlen,
               size_t n, const param *p)
{
    query q;
    int rc = q_open(s, id, &q, what, err, errlen, n, p);
    if (rc)
        return rc;
    rc = q_step(s, &q, what, err, errlen);
    if (rc >= 0)
        rc = sqlite3_changes(s->db);
    q_close(s, &q);
    return rc;
}

/* Runs a query and reports whether it produced a row: 1, 0 or < 0. */
static int has_row(sq_store *s, enum stmt_id id, const char *what, char *err,
                   size_t errlen, size_t n, const param *p)
{
    query q;
    int rc = q_open(s, id, &q, what, err, errlen, n, p);
    if (rc)
        return rc;
    rc = q_step(s, &q, what, err, errlen);
    q_close(s, &q);
    return rc;
}

/* Copies text column `col` into buf[cap]; false when it does not fit. NULL
 * reads as "". */
static bool col_copy(sqlite3_stmt *stmt, int col, char *buf, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    size_t n = (size_t)sqlite3_column_bytes(stmt, col);
    if (!t)
        n = 0;
    if (n >= cap)
        return false;
    if (n)
        memcpy(buf, t, n);
    buf[n] = '\0';
    return true;
}

/* Turns the current row into the caller's type and calls its callback;
 * returns what the callback returned (or < 0 when the row is unusable). */
typedef int (*row_fn)(sqlite3_stmt *stmt, void *ctx, const char *what, char *err,
                      size_t errlen);

/* The shared list loop: see the list conventions in store.h. */
static int list_rows(sq_store *s, enum stmt_id id, const char *what, char *err,
                     size_t errlen, row_fn row, void *ctx, size_t n, const param *p)
{
    query q;
    int rc = q_open(s, id, &q, what, err, errlen, n, p);
    if (rc)
        return rc;
    int count = 0;
    for (;;) {
        rc = q_step(s, &q, what, err, errlen);
        if (rc <= 0) {
            if (rc == 0)
                rc = count;
            break;
        }
        int r = row(q.s, ctx, what, err, errlen);
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
    q_close(s, &q);
    return rc;
}

/* ---- Transactions ------------------------------------------------------- */

static int tx_begin(sq_store *s, const char *what, char *err, size_t errlen)
{
    int rc = run(s, S_BEGIN, what, err, errlen, 0, NULL);
    return rc < 0 ? rc : EL_OK;
}

static void tx_rollback(sq_store *s)
{
    /* Some errors (I/O, disk full, out of memory) already rolled back. */
    if (!sqlite3_get_autocommit(s->db))
        (void)run(s, S_ROLLBACK, "rollback", NULL, 0, 0, NULL);
}

/* Commits; on failure rolls back and returns the error. Callers then return
 * `ok` when it is >= 0, so the idiom is `return tx_end(s, rc, ...)`. */
static int tx_end(sq_store *s, int ok, const char *what, char *err, size_t errlen)
{
    if (ok < 0) {
        tx_rollback(s);
        return ok;
    }
    int rc = run(s, S_COMMIT, what, err, errlen, 0, NULL);
    if (rc < 0) {
        tx_rollback(s);
        return rc;
    }
    return ok;
}

/* ---- Lifetime ----------------------------------------------------------- */

static void sq_close(el_store *st)
{
    sq_store *s = sq(st);
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    /* close_v2 because a failed open may leave a half-made handle behind. */
    sqlite3_close_v2(s->db);
    free(s);
}

static int sq_ping(el_store *st)
{
    sq_store *s = sq(st);
    char err[256];
    int rc = has_row(s, S_PING, "ping", err, sizeof err, 0, NULL);
    if (rc == 1)
        return EL_OK;
    if (rc == 0)
        EL_WARN("store: ping: no row");
    return EL_ERR_DB;
}

static int sq_schema_version(el_store *st, char *err, size_t errlen)
{
    sq_store *s = sq(st);
    query q;
    int rc = q_open(s, S_VERSION, &q, "schema_version", err, errlen, 0, NULL);
    if (rc)
        return rc;
    rc = q_step(s, &q, "schema_version", err, errlen);
    if (rc == 1)
        rc = sqlite3_column_int(q.s, 0);
    else if (rc == 0)
        rc = el_seterr(err, errlen, EL_ERR_DB, "schema_version: no row");
    q_close(s, &q);
    return rc;
}

/* ---- Users -------------------------------------------------------------- */

static int sq_user_login(el_store *st, const char *peer_id, const char *ik, const char *sk,
                         const char *sk_sig, const char *name, int64_t now_ms, char *err,
                         size_t errlen)
{
    static const char what[] = "user_login";
    sq_store *s = sq(st);
    int rc = tx_begin(s, what, err, errlen);
    if (rc)
        return rc;
    rc = run(s, S_USER_UPDATE_LOGIN, what, err, errlen,
             P(T(peer_id), T(ik), T(sk), T(sk_sig), T(name), I(now_ms)));
    if (rc == 0) {
        rc = run(s, S_USER_INSERT, what, err, errlen,
                 P(T(peer_id), T(ik), T(sk), T(sk_sig), T(name), I(now_ms)));
        if (rc >= 0)
            rc = 1; /* created */
    } else if (rc > 0) {
        rc = 0; /* existed */
    }
    return tx_end(s, rc, what, err, errlen);
}

static int sq_user_get(el_store *st, const char *peer_id, el_store_user *out, char *avatar,
                       size_t avatar_cap, char *err, size_t errlen)
{
    static const char what[] = "user_get";
    sq_store *s = sq(st);
    query q;
    int rc = q_open(s, S_USER_GET, &q, what, err, errlen, P(T(peer_id)));
    if (rc)
        return rc;
    rc = q_step(s, &q, what, err, errlen);
    if (rc <= 0) {
        if (rc == 0)
            rc = el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: unknown peer", what);
        goto out;
    }
    memset(out, 0, sizeof *out);
    if (!col_copy(q.s, 0, out->peer_id, sizeof out->peer_id) ||
        !col_copy(q.s, 1, out->ik, sizeof out->ik) ||
        !col_copy(q.s, 2, out->sk, sizeof out->sk) ||
        !col_copy(q.s, 3, out->sk_sig, sizeof out->sk_sig) ||
        !col_copy(q.s, 4, out->name, sizeof out->name)) {
        rc = corrupt(what, err, errlen);
        goto out;
    }
    out->has_name = sqlite3_column_type(q.s, 4) != SQLITE_NULL;
    out->created_at = sqlite3_column_int64(q.s, 6);
    out->last_seen = sqlite3_column_int64(q.s, 7);
    rc = EL_OK;
    if (sqlite3_column_type(q.s, 5) != SQLITE_NULL) {
        const unsigned char *a = sqlite3_column_text(q.s, 5);
        out->has_avatar = true;
        out->avatar_len = a ? (size_t)sqlite3_column_bytes(q.s, 5) : 0;
        if (avatar && avatar_cap > out->avatar_len) {
            if (out->avatar_len)
                memcpy(avatar, a, out->avatar_len);
            avatar[out->avatar_len] = '\0';
        } else if (avatar) {
            rc = el_seterr(err, errlen, EL_ERR_TOO_LARGE,
                           "%s: the avatar (%zu bytes) does not fit into %zu bytes", what,
                           out->avatar_len, avatar_cap);
        }
    } else if (avatar && avatar_cap) {
        avatar[0] = '\0';
    } else if (avatar) {
        rc = el_seterr(err, errlen, EL_ERR_TOO_LARGE, "%s: avatar buffer is empty", what);
    }
out:
    q_close(s, &q);
    return rc;
}

static int sq_user_set_profile(el_store *st, const char *peer_id, unsigned fields,
                               const char *name, const char *avatar, char *err,
                               size_t errlen)
{
    static const char what[] = "user_set_profile";
    int rc = run(sq(st), S_USER_SET_PROFILE, what, err, errlen,
                 P(T(peer_id), I((fields & EL_STORE_PROFILE_NAME) != 0), T(name),
                   I((fields & EL_STORE_PROFILE_AVATAR) != 0), T(avatar)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: unknown peer", what);
    return rc < 0 ? rc : EL_OK;
}

static int sq_user_touch(el_store *st, const char *peer_id, int64_t now_ms, char *err,
                         size_t errlen)
{
    static const char what[] = "user_touch";
    int rc = run(sq(st), S_USER_TOUCH, what, err, errlen, P(T(peer_id), I(now_ms)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: unknown peer", what);
    return rc < 0 ? rc : EL_OK;
}

static int sq_user_exists(el_store *st, const char *peer_id, char *err, size_t errlen)
{
    return has_row(sq(st), S_USER_EXISTS, "user_exists", err, errlen, P(T(peer_id)));
}

/* ---- Contacts ----------------------------------------------------------- */


static int sq_contact_add(el_store *st, const char *a, const char *b, int64_t now_ms,
                          char *err, size_t errlen)
{
    el_store_pair_order(&a, &b);
    return run(sq(st), S_CONTACT_ADD, "contact_add", err, errlen, P(T(a), T(b), I(now_ms)));
}

static int sq_contact_remove(el_store *st, const char *a, const char *b, char *err,
                             size_t errlen)
{
    static const char what[] = "contact_remove";
    el_store_pair_order(&a, &b);
    int rc = run(sq(st), S_CONTACT_REMOVE, what, err, errlen, P(T(a), T(b)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: not contacts", what);
    return rc < 0 ? rc : EL_OK;
}

static int sq_contact_is(el_store *st, const char *a, const char *b, char *err,
                         size_t errlen)
{
    el_store_pair_order(&a, &b);
    return has_row(sq(st), S_CONTACT_IS, "contact_is", err, errlen, P(T(a), T(b)));
}

struct peer_ctx {
    el_store_peer_cb cb;
    void *user;
};

static int row_peer(sqlite3_stmt *stmt, void *ctx, const char *what, char *err,
                    size_t errlen)
{
    struct peer_ctx *c = ctx;
    char peer[EL_STORE_PEER_ID_LEN + 1];
    if (!col_copy(stmt, 0, peer, sizeof peer))
        return corrupt(what, err, errlen);
    return c->cb(peer, c->user);
}

static int sq_contact_list(el_store *st, const char *peer, el_store_peer_cb cb, void *user,
                           char *err, size_t errlen)
{
    struct peer_ctx c = {cb, user};
    return list_rows(sq(st), S_CONTACT_LIST, "contact_list", err, errlen, row_peer, &c,
                     P(T(peer)));
}

/* ---- Contact requests --------------------------------------------------- */

static int sq_request_add(el_store *st, const char *from, const char *to,
                          const char *message, int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "request_add";
    sq_store *s = sq(st);
    int rc = tx_begin(s, what, err, errlen);
    if (rc)
        return rc;
    rc = run(s, S_REQ_UPDATE, what, err, errlen, P(T(from), T(to), T(message), I(now_ms)));
    if (rc == 0) {
        rc = run(s, S_REQ_INSERT, what, err, errlen,
                 P(T(from), T(to), T(message), I(now_ms)));
        if (rc >= 0)
            rc = 1;
    } else if (rc > 0) {
        rc = 0;
    }
    return tx_end(s, rc, what, err, errlen);
}

static int sq_request_remove(el_store *st, const char *from, const char *to, char *err,
                             size_t errlen)
{
    static const char what[] = "request_remove";
    int rc = run(sq(st), S_REQ_REMOVE, what, err, errlen, P(T(from), T(to)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such request", what);
    return rc < 0 ? rc : EL_OK;
}

static int sq_request_exists(el_store *st, const char *from, const char *to, char *err,
                             size_t errlen)
{
    return has_row(sq(st), S_REQ_EXISTS, "request_exists", err, errlen, P(T(from), T(to)));
}

static int sq_request_accept(el_store *st, const char *from, const char *to,
                             int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "request_accept";
    sq_store *s = sq(st);
    int rc = tx_begin(s, what, err, errlen);
    if (rc)
        return rc;
    rc = run(s, S_REQ_REMOVE, what, err, errlen, P(T(from), T(to)));
    if (rc == 0)
        rc = el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such request", what);
    if (rc > 0)
        rc = run(s, S_REQ_REMOVE, what, err, errlen, P(T(to), T(from)));
    if (rc >= 0) {
        const char *a = from, *b = to;
        el_store_pair_order(&a, &b);
        rc = run(s, S_CONTACT_ADD, what, err, errlen, P(T(a), T(b), I(now_ms)));
    }
    return tx_end(s, rc < 0 ? rc : EL_OK, what, err, errlen);
}

struct request_ctx {
    el_store_request_cb cb;
    void *user;
};

static int row_request(sqlite3_stmt *stmt, void *ctx, const char *what, char *err,
                       size_t errlen)
{
    struct request_ctx *c = ctx;
    el_store_request r;
    if (!col_copy(stmt, 0, r.from, sizeof r.from) || !col_copy(stmt, 1, r.to, sizeof r.to) ||
        !col_copy(stmt, 2, r.message, sizeof r.message))
        return corrupt(what, err, errlen);
    r.at = sqlite3_column_int64(stmt, 3);
    return c->cb(&r, c->user);
}

static int sq_request_list(el_store *st, const char *peer, bool incoming,
                           el_store_request_cb cb, void *user, char *err, size_t errlen)
{
    struct request_ctx c = {cb, user};
    return list_rows(sq(st), incoming ? S_REQ_LIST_IN : S_REQ_LIST_OUT,
                     incoming ? "request_list_incoming" : "request_list_outgoing", err,
                     errlen, row_request, &c, P(T(peer)));
}

/* ---- Blocks ------------------------------------------------------------- */

static int sq_block_add(el_store *st, const char *blocker, const char *blocked,
                        int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "block_add";
    sq_store *s = sq(st);
    int rc = tx_begin(s, what, err, errlen);
    if (rc)
        return rc;
    int added = run(s, S_BLOCK_ADD, what, err, errlen,
                    P(T(blocker), T(blocked), I(now_ms)));
    rc = added;
    if (rc >= 0) {
        const char *a = blocker, *b = blocked;
        el_store_pair_order(&a, &b);
        rc = run(s, S_CONTACT_REMOVE, what, err, errlen, P(T(a), T(b)));
    }
    if (rc >= 0)
        rc = run(s, S_REQ_REMOVE, what, err, errlen, P(T(blocker), T(blocked)));
    if (rc >= 0)
        rc = run(s, S_REQ_REMOVE, what, err, errlen, P(T(blocked), T(blocker)));
    return tx_end(s, rc < 0 ? rc : added, what, err, errlen);
}

static int sq_block_remove(el_store *st, const char *blocker, const char *blocked,
                           char *err, size_t errlen)
{
    static const char what[] = "block_remove";
    int rc = run(sq(st), S_BLOCK_REMOVE, what, err, errlen, P(T(blocker), T(blocked)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: not blocked", what);
    return rc < 0 ? rc : EL_OK;
}

static int sq_block_is(el_store *st, const char *blocker, const char *blocked, char *err,
                       size_t errlen)
{
    return has_row(sq(st), S_BLOCK_IS, "block_is", err, errlen,
                   P(T(blocker), T(blocked)));
}

static int sq_block_list(el_store *st, const char *blocker, el_store_peer_cb cb,
                         void *user, char *err, size_t errlen)
{
    struct peer_ctx c = {cb, user};
    return list_rows(sq(st), S_BLOCK_LIST, "block_list", err, errlen, row_peer, &c,
                     P(T(blocker)));
}

/* ---- Groups ------------------------------------------------------------- */

static int sq_group_create(el_store *st, const char *group_id, const char *name,
                           const char *admin, const char *const *members,
                           size_t n_members, int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "group_create";
    sq_store *s = sq(st);
    int rc = tx_begin(s, what, err, errlen);
    if (rc)
        return rc;
    rc = run(s, S_GROUP_INSERT, what, err, errlen,
             P(T(group_id), T(name), T(admin), I(now_ms)));
    if (rc == EL_ERR_NOT_FOUND)
        rc = el_seterr(err, errlen, rc, "%s: admin %s is not a known user", what, admin);
    if (rc >= 0)
        rc = run(s, S_MEMBER_ADD, what, err, errlen, P(T(group_id), T(admin), I(now_ms)));
    for (size_t i = 0; rc >= 0 && i < n_members; i++) {
        rc = run(s, S_MEMBER_ADD, what, err, errlen,
                 P(T(group_id), T(members[i]), I(now_ms)));
        if (rc == EL_ERR_NOT_FOUND)
            rc = el_seterr(err, errlen, rc, "%s: member %s is not a known user", what,
                           members[i]);
    }
    return tx_end(s, rc < 0 ? rc : EL_OK, what, err, errlen);
}

static int row_group(sqlite3_stmt *stmt, el_store_group *g)
{
    if (!col_copy(stmt, 0, g->group_id, sizeof g->group_id) ||
        !col_copy(stmt, 1, g->name, sizeof g->name) ||
        !col_copy(stmt, 2, g->admin, sizeof g->admin))
        return -1;
    g->created_at = sqlite3_column_int64(stmt, 3);
    return 0;
}

static int sq_group_get(el_store *st, const char *group_id, el_store_group *out, char *err,
                        size_t errlen)
{
    static const char what[] = "group_get";
    sq_store *s = sq(st);
    query q;
    int rc = q_open(s, S_GROUP_GET, &q, what, err, errlen, P(T(group_id)));
    if (rc)
        return rc;
    rc = q_step(s, &q, what, err, errlen);
    if (rc == 0)
        rc = el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such group", what);
    else if (rc == 1)
        rc = row_group(q.s, out) ? corrupt(what, err, errlen) : EL_OK;
    q_close(s, &q);
    return rc;
}

static int sq_group_delete(el_store *st, const char *group_id, char *err, size_t errlen)
{
    static const char what[] = "group_delete";
    /* group_members rows go with it (ON DELETE CASCADE). */
    int rc = run(sq(st), S_GROUP_DELETE, what, err, errlen, P(T(group_id)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such group", what);
    return rc < 0 ? rc : EL_OK;
}

static int sq_group_set_name(el_store *st, const char *group_id, const char *name,
                             char *err, size_t errlen)
{
    static const char what[] = "group_set_name";
    int rc = run(sq(st), S_GROUP_SET_NAME, what, err, errlen, P(T(group_id), T(name)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such group", what);
    return rc < 0 ? rc : EL_OK;
}

static int sq_group_set_admin(el_store *st, const char *group_id, const char *admin,
                              char *err, size_t errlen)
{
    static const char what[] = "group_set_admin";
    sq_store *s = sq(st);
    int rc = run(s, S_GROUP_SET_ADMIN, what, err, errlen, P(T(group_id), T(admin)));
    if (rc != 0)
        return rc < 0 ? rc : EL_OK;
    /* Nothing changed: say why. */
    rc = has_row(s, S_GROUP_EXISTS, what, err, errlen, P(T(group_id)));
    if (rc < 0)
        return rc;
    return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: %s", what,
                     rc ? "the new admin is not a member" : "no such group");
}

static int sq_group_member_add(el_store *st, const char *group_id, const char *peer,
                               int64_t now_ms, char *err, size_t errlen)
{
    return run(sq(st), S_MEMBER_ADD, "group_member_add", err, errlen,
               P(T(group_id), T(peer), I(now_ms)));
}

static int sq_group_member_remove(el_store *st, const char *group_id, const char *peer,
                                  char *err, size_t errlen)
{
    static const char what[] = "group_member_remove";
    sq_store *s = sq(st);
    int rc = tx_begin(s, what, err, errlen);
    if (rc)
        return rc;
    rc = run(s, S_MEMBER_REMOVE, what, err, errlen, P(T(group_id), T(peer)));
    if (rc == 0)
        rc = el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: not a member", what);
    if (rc < 0)
        return tx_end(s, rc, what, err, errlen);

    char oldest[EL_STORE_PEER_ID_LEN + 1];
    query q;
    rc = q_open(s, S_MEMBER_OLDEST, &q, what, err, errlen, P(T(group_id)));
    if (rc)
        return tx_end(s, rc, what, err, errlen);
    rc = q_step(s, &q, what, err, errlen);
    if (rc == 1 && !col_copy(q.s, 0, oldest, sizeof oldest))
        rc = corrupt(what, err, errlen);
    q_close(s, &q);

    if (rc == 0) {
        /* Nobody is left: the directory entry goes too. */
        rc = run(s, S_GROUP_DELETE, what, err, errlen, P(T(group_id)));
        if (rc >= 0)
            rc = EL_STORE_GROUP_DELETED;
    } else if (rc == 1) {
        /* Only changes a row when the leaver was the admin. */
        rc = run(s, S_GROUP_HAND_OVER, what, err, errlen,
                 P(T(group_id), T(oldest), T(peer)));
        if (rc >= 0)
            rc = rc ? EL_STORE_GROUP_ADMIN_CHANGED : EL_STORE_GROUP_KEPT;
    }
    return tx_end(s, rc, what, err, errlen);
}

static int sq_group_is_member(el_store *st, const char *group_id, const char *peer,
                              char *err, size_t errlen)
{
    return has_row(sq(st), S_MEMBER_IS, "group_is_member", err, errlen,
                   P(T(group_id), T(peer)));
}

struct group_ctx {
    el_store_group_cb cb;
    void *user;
};

static int row_group_cb(sqlite3_stmt *stmt, void *ctx, const char *what, char *err,
                        size_t errlen)
{
    struct group_ctx *c = ctx;
    el_store_group g;
    if (row_group(stmt, &g))
        return corrupt(what, err, errlen);
    return c->cb(&g, c->user);
}

static int sq_group_list_for_peer(el_store *st, const char *peer, el_store_group_cb cb,
                                  void *user, char *err, size_t errlen)
{
    struct group_ctx c = {cb, user};
    return list_rows(sq(st), S_GROUP_LIST_FOR, "group_list_for_peer", err, errlen,
                     row_group_cb, &c, P(T(peer)));
}

struct member_ctx {
    el_store_member_cb cb;
    void *user;
};

static int row_member(sqlite3_stmt *stmt, void *ctx, const char *what, char *err,
                      size_t errlen)
{
    struct member_ctx *c = ctx;
    char peer[EL_STORE_PEER_ID_LEN + 1];
    if (!col_copy(stmt, 0, peer, sizeof peer))
        return corrupt(what, err, errlen);
    return c->cb(peer, sqlite3_column_int64(stmt, 1), c->user);
}

static int sq_group_list_members(el_store *st, const char *group_id,
                                 el_store_member_cb cb, void *user, char *err,
                                 size_t errlen)
{
    struct member_ctx c = {cb, user};
    return list_rows(sq(st), S_MEMBER_LIST, "group_list_members", err, errlen, row_member,
                     &c, P(T(group_id)));
}

static int sq_group_is_co_member(el_store *st, const char *a, const char *b, char *err,
                                 size_t errlen)
{
    return has_row(sq(st), S_CO_MEMBER_IS, "group_is_co_member", err, errlen,
                   P(T(a), T(b)));
}

static int sq_group_list_co_members(el_store *st, const char *peer, el_store_peer_cb cb,
                                    void *user, char *err, size_t errlen)
{
    struct peer_ctx c = {cb, user};
    return list_rows(sq(st), S_CO_MEMBER_LIST, "group_list_co_members", err, errlen,
                     row_peer, &c, P(T(peer)));
}

/* ---- Envelopes ---------------------------------------------------------- */

static int count_envelopes(sq_store *s, const char *to, int64_t now_ms, const char *what,
                           char *err, size_t errlen)
{
    query q;
    int rc = q_open(s, S_ENV_COUNT, &q, what, err, errlen, P(T(to), I(now_ms)));
    if (rc)
        return rc;
    rc = q_step(s, &q, what, err, errlen);
    if (rc == 1) {
        sqlite3_int64 n = sqlite3_column_int64(q.s, 0);
        rc = n > INT_MAX ? INT_MAX : (int)n;
    } else if (rc == 0) {
        rc = el_seterr(err, errlen, EL_ERR_DB, "%s: COUNT returned no row", what);
    }
    q_close(s, &q);
    return rc;
}

static int sq_envelope_put(el_store *st, const char *id, const char *to, const char *from,
                           const char *blob, size_t blob_len, int64_t created_at,
                           int64_t expires_at, unsigned max_count, char *err,
                           size_t errlen)
{
    static const char what[] = "envelope_put";
    sq_store *s = sq(st);
    /* Count and insert under one write lock, so two servers sharing the file
     * cannot both slip in under the quota. */
    int rc = tx_begin(s, what, err, errlen);
    if (rc)
        return rc;
    if (max_count) {
        rc = count_envelopes(s, to, created_at, what, err, errlen);
        if (rc >= 0 && (unsigned)rc >= max_count)
            rc = el_seterr(err, errlen, EL_ERR_QUOTA,
                           "%s: the recipient already has %u queued envelopes", what,
                           max_count);
    }
    if (rc >= 0)
        rc = run(s, S_ENV_INSERT, what, err, errlen,
                 P(T(id), T(to), T(from), TN(blob, blob_len), I(created_at),
                   I(expires_at)));
    if (rc == EL_ERR_EXISTS)
        rc = el_seterr(err, errlen, rc, "%s: envelope id %s is taken", what, id);
    return tx_end(s, rc < 0 ? rc : EL_OK, what, err, errlen);
}

struct envelope_ctx {
    el_store_envelope_cb cb;
    void *user;
};

static int row_envelope(sqlite3_stmt *stmt, void *ctx, const char *what, char *err,
                        size_t errlen)
{
    struct envelope_ctx *c = ctx;
    el_store_envelope e;
    if (!col_copy(stmt, 0, e.id, sizeof e.id) || !col_copy(stmt, 1, e.to, sizeof e.to) ||
        !col_copy(stmt, 2, e.from, sizeof e.from))
        return corrupt(what, err, errlen);
    /* The blob is handed out in place: no copy of up to 64 KiB per row. */
    const unsigned char *b = sqlite3_column_text(stmt, 3);
    e.blob = b ? (const char *)b : "";
    e.blob_len = b ? (size_t)sqlite3_column_bytes(stmt, 3) : 0;
    e.created_at = sqlite3_column_int64(stmt, 4);
    e.expires_at = sqlite3_column_int64(stmt, 5);
    return c->cb(&e, c->user);
}

static int sq_envelope_list(el_store *st, const char *to, int64_t now_ms, unsigned limit,
                            el_store_envelope_cb cb, void *user, char *err, size_t errlen)
{
    struct envelope_ctx c = {cb, user};
    /* LIMIT -1 is SQLite's "no limit". */
    return list_rows(sq(st), S_ENV_LIST, "envelope_list", err, errlen, row_envelope, &c,
                     P(T(to), I(now_ms), I(limit ? (int64_t)limit : -1)));
}

static int sq_envelope_delete(el_store *st, const char *to, const char *const *ids,
                              size_t n_ids, char *err, size_t errlen)
{
    static const char what[] = "envelope_delete";
    sq_store *s = sq(st);
    int rc = tx_begin(s, what, err, errlen);
    if (rc)
        return rc;
    int deleted = 0;
    for (size_t i = 0; i < n_ids; i++) {
        rc = run(s, S_ENV_DELETE, what, err, errlen, P(T(to), T(ids[i])));
        if (rc < 0)
            break;
        if (deleted < INT_MAX)
            deleted += rc;
    }
    return tx_end(s, rc < 0 ? rc : deleted, what, err, errlen);
}

static int sq_envelope_purge(el_store *st, int64_t now_ms, char *err, size_t errlen)
{
    return run(sq(st), S_ENV_PURGE, "envelope_purge", err, errlen, P(I(now_ms)));
}

static int sq_envelope_count(el_store *st, const char *to, int64_t now_ms, char *err,
                             size_t errlen)
{
    return count_envelopes(sq(st), to, now_ms, "envelope_count", err, errlen);
}

/* ---- Opening and migrations --------------------------------------------- */

static const el_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .ping = sq_ping,
    .schema_version = sq_schema_version,
    .user_login = sq_user_login,
    .user_get = sq_user_get,
    .user_set_profile = sq_user_set_profile,
    .user_touch = sq_user_touch,
    .user_exists = sq_user_exists,
    .contact_add = sq_contact_add,
    .contact_remove = sq_contact_remove,
    .contact_is = sq_contact_is,
    .contact_list = sq_contact_list,
    .request_add = sq_request_add,
    .request_remove = sq_request_remove,
    .request_exists = sq_request_exists,
    .request_accept = sq_request_accept,
    .request_list = sq_request_list,
    .block_add = sq_block_add,
    .block_remove = sq_block_remove,
    .block_is = sq_block_is,
    .block_list = sq_block_list,
    .group_create = sq_group_create,
    .group_get = sq_group_get,
    .group_delete = sq_group_delete,
    .group_set_name = sq_group_set_name,
    .group_set_admin = sq_group_set_admin,
    .group_member_add = sq_group_member_add,
    .group_member_remove = sq_group_member_remove,
    .group_is_member = sq_group_is_member,
    .group_list_for_peer = sq_group_list_for_peer,
    .group_list_members = sq_group_list_members,
    .group_is_co_member = sq_group_is_co_member,
    .group_list_co_members = sq_group_list_co_members,
    .envelope_put = sq_envelope_put,
    .envelope_list = sq_envelope_list,
    .envelope_delete = sq_envelope_delete,
    .envelope_purge = sq_envelope_purge,
    .envelope_count = sq_envelope_count,
};

/* Runs a one-off statement (setup only) and copies the first column of its
 * first row, if any, into out[cap]. Returns an SQLite result code. */
static int setup_query(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if (out && cap)
        out[0] = '\0';
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        if (out && cap && !col_copy(stmt, 0, out, cap))
            out[0] = '\0';
        while (rc == SQLITE_ROW)
            rc = sqlite3_step(stmt);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int setup_fail(sq_store *s, const char *path, int rc, char *err, size_t errlen)
{
    return el_seterr(err, errlen, EL_ERR_DB, "cannot use sqlite database \"%s\": %s", path,
                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static int configure(sq_store *s, const char *path, char *err, size_t errlen)
{
    char val[32];
    /* The first statement that reads the file: "file is not a database"
     * surfaces here. */
    int rc = setup_query(s->db, "PRAGMA journal_mode = WAL", val, sizeof val);
    if (rc != SQLITE_OK)
        return setup_fail(s, path, rc, err, errlen);
    if (strcmp(val, "wal") != 0 && strcmp(path, ":memory:") != 0)
        EL_WARN("store: %s: journal_mode is %s, not wal (readers will wait for writers)",
                path, val);
    static const char *const pragmas[] = {
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        "PRAGMA secure_delete = FAST",
        /* 512 KiB instead of SQLite's 2 MB default: the hot rows (blocks,
         * contacts, the b-tree interior pages) fit, and at 10k logged-in
         * users the default cache alone was ~0.2 KB per connection of RSS.
         * The OS page cache still holds the file. */
        "PRAGMA cache_size = -512",
    };
    for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++) {
        rc = setup_query(s->db, pragmas[i], NULL, 0);
        if (rc != SQLITE_OK)
            return setup_fail(s, path, rc, err, errlen);
    }
    /* A library built without foreign keys would silently accept dangling
     * references; refuse rather than store inconsistent data. */
    rc = setup_query(s->db, "PRAGMA foreign_keys", val, sizeof val);
    if (rc != SQLITE_OK)
        return setup_fail(s, path, rc, err, errlen);
    if (strcmp(val, "1") != 0)
        return el_seterr(err, errlen, EL_ERR_DB,
                         "sqlite library has no foreign key support; cannot use \"%s\"",
                         path);
    return EL_OK;
}

static int read_version(sq_store *s, const char *path, int *version, char *err,
                        size_t errlen)
{
    char val[32];
    int rc = setup_query(s->db, "PRAGMA user_version", val, sizeof val);
    if (rc != SQLITE_OK)
        return setup_fail(s, path, rc, err, errlen);
    *version = atoi(val);
    return EL_OK;
}

static int too_new(const char *path, int version, char *err, size_t errlen)
{
    return el_seterr(err, errlen, EL_ERR_DB,
                     "sqlite database \"%s\" has schema version %d, newer than version %d "
                     "that this build knows; refusing to open it (upgrade echolinkd)",
                     path, version, SCHEMA_VERSION);
}

/* Brings the schema from its PRAGMA user_version to SCHEMA_VERSION, one
 * transaction per step, so a failed step leaves the previous version intact. */
static int migrate(sq_store *s, const char *path, char *err, size_t errlen)
{
    int version = 0;
    int rc = read_version(s, path, &version, err, errlen);
    if (rc)
        return rc;
    if (version > SCHEMA_VERSION)
        return too_new(path, version, err, errlen);
    while (version < SCHEMA_VERSION) {
        char *msg = NULL;
        rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            el_seterr(err, errlen, EL_ERR_DB, "cannot migrate \"%s\": %s", path,
                      msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            return EL_ERR_DB;
        }
        /* Another process may have migrated while we waited for the lock. */
        rc = read_version(s, path, &version, err, errlen);
        if (rc == EL_OK && version > SCHEMA_VERSION)
            rc = too_new(path, version, err, errlen);
        if (rc) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        if (version == SCHEMA_VERSION) {
            sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
            break;
        }
        const struct migration *m = &migrations[version];
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", version + 1);
        rc = sqlite3_exec(s->db, m->sql, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, bump, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            el_seterr(err, errlen, EL_ERR_DB,
                      "migrating \"%s\" to schema version %d (%s) failed: %s", path,
                      version + 1, m->what, msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            if (!sqlite3_get_autocommit(s->db))
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return EL_ERR_DB;
        }
        version++;
        EL_INFO("store: %s migrated to schema version %d (%s)", path, version, m->what);
    }
    return EL_OK;
}

el_store *el_store_sqlite_open(const char *spec, char *err, size_t errlen)
{
    if (!spec || !*spec) {
        el_seterr(err, errlen, EL_ERR_INVALID,
                  "sqlite URL has no path; use \"sqlite:PATH\" or \"sqlite::memory:\"");
        return NULL;
    }
    /* "sqlite::memory:" arrives here as ":memory:", SQLite's own name for a
     * private in-memory database. Paths are taken literally (no URI
     * parameters), so a file name cannot switch settings behind our back. */
    const char *path = spec;
    sq_store *s = calloc(1, sizeof *s);
    if (!s) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        int sys = s->db ? sqlite3_system_errno(s->db) : 0;
        el_seterr(err, errlen, EL_ERR_IO, "cannot open sqlite database \"%s\": %s%s%s%s",
                  path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc),
                  sys ? " (" : "", sys ? strerror(sys) : "", sys ? ")" : "");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (configure(s, path, err, errlen) || migrate(s, path, err, errlen))
        goto fail;
    EL_INFO("store: opened sqlite database %s (schema version %d)", path, SCHEMA_VERSION);
    return &s->base;
fail:
    sq_close(&s->base);
    return NULL;
}
