/* store_pg.c - the PostgreSQL backend of el_store (see store.h, store_int.h,
 * store_pg.h), over libpq.
 *
 * It mirrors store_sqlite.c: the same tables, the same migration numbers, the
 * same statements (numbered parameters) and the same results and error texts,
 * so that one test suite runs against both. Where the two engines differ:
 *
 * - Atomicity against other processes. SQLite runs every write transaction
 *   under one database-wide lock (BEGIN IMMEDIATE); PostgreSQL runs them
 *   concurrently at READ COMMITTED. Read-then-write steps therefore either
 *   became one statement (INSERT ... ON CONFLICT DO NOTHING decides "new or
 *   existing" race-free), or lock the row they depend on first:
 *     envelope_put            the recipient's users row (quota count + insert)
 *     group member add/remove,
 *     group_set_admin         the chat_groups row (membership and admin change
 *                             together; "the admin is a member" holds)
 *   A transaction PostgreSQL aborts as a deadlock victim or on a
 *   serialization failure is run again from the start (TX_TRIES times).
 * - Order. Peer IDs and ids are TEXT COLLATE "C": byte order, as SQLite's
 *   BINARY and the strcmp() that orders contact pairs. A database default
 *   collation such as en_US would sort "B" next to "b" and break both.
 * - Schema version. PostgreSQL has no PRAGMA user_version; the table
 *   echolink_schema holds it (one row). Migrations run under a transaction-
 *   scoped advisory lock, so nodes starting together migrate once.
 * - Lists. PQexecPrepared returns the whole result, so a callback may run
 *   other queries on the same connection freely (SQLite needed statement
 *   copies for that). The price is that a list is held in memory at once;
 *   the big one, envelope_list, is bounded by its limit and the quota.
 * - Connection loss. The call that finds the connection broken fails with
 *   EL_ERR_DB (a transaction cut off midway changes nothing); the next call
 *   resets the connection and prepares its statements again, so a node
 *   survives a PostgreSQL restart or failover without being restarted.
 *   Nothing is re-sent blindly: a lost reply may belong to a committed write.
 *   A reset waits at most CONNECT_TIMEOUT_S for an unreachable server.
 *
 * Every statement is prepared once per connection, on first use, and run
 * with text parameters; results come back as text. */
#include "store/store_pg.h"
#include "store/store_int.h"

#include "base/err.h"
#include "base/log.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TX_TRIES 5                  /* runs of a transaction PostgreSQL aborted */
#define CONNECT_TIMEOUT_S "10"      /* libpq's default is to wait forever */
#define LOCK_TIMEOUT "5s"           /* like SQLite's busy_timeout */
#define SCHEMA_LOCK_KEY INT64_C(0x656c6b5363686d61) /* advisory lock: "elkSchma" */
#define MAX_PARAMS 8

/* ---- Schema ------------------------------------------------------------- */

/* Migration step i takes echolink_schema.version from i to i + 1: the same
 * numbering as store_sqlite.c. Steps are only ever appended. */
static const struct migration {
    const char *what;
    const char *sql;
} migrations[] = {
    {"initial schema",
     "CREATE TABLE users ("
     " peer_id TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,"
     " ik TEXT NOT NULL,"
     " sk TEXT NOT NULL,"
     " sk_sig TEXT NOT NULL,"
     " name TEXT,"
     " avatar TEXT,"
     " created_at BIGINT NOT NULL,"
     " last_seen BIGINT NOT NULL);"
     /* One row per pair, smaller peer ID first: symmetry cannot drift. */
     "CREATE TABLE contacts ("
     " peer_a TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " peer_b TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " created_at BIGINT NOT NULL,"
     " PRIMARY KEY (peer_a, peer_b),"
     " CHECK (peer_a < peer_b));"
     "CREATE INDEX contacts_by_b ON contacts (peer_b);"
     "CREATE TABLE contact_requests ("
     " from_peer TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " to_peer TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " message TEXT NOT NULL,"
     " created_at BIGINT NOT NULL,"
     " PRIMARY KEY (from_peer, to_peer),"
     " CHECK (from_peer <> to_peer));"
     "CREATE INDEX contact_requests_by_to ON contact_requests (to_peer);"
     "CREATE TABLE blocks ("
     " blocker TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " blocked TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " created_at BIGINT NOT NULL,"
     " PRIMARY KEY (blocker, blocked),"
     " CHECK (blocker <> blocked));"
     "CREATE TABLE chat_groups ("
     " group_id TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,"
     " name TEXT NOT NULL,"
     " admin TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id),"
     " created_at BIGINT NOT NULL);"
     "CREATE TABLE group_members ("
     " group_id TEXT COLLATE \"C\" NOT NULL"
     "  REFERENCES chat_groups (group_id) ON DELETE CASCADE,"
     " peer_id TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " joined_at BIGINT NOT NULL,"
     " PRIMARY KEY (group_id, peer_id));"
     "CREATE INDEX group_members_by_peer ON group_members (peer_id);"
     /* seq gives the insertion order the recipient must see (SQLite's
      * rowid); id is the caller's handle for acknowledgements. */
     "CREATE TABLE envelopes ("
     " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
     " id TEXT COLLATE \"C\" NOT NULL UNIQUE,"
     " to_peer TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " from_peer TEXT COLLATE \"C\" NOT NULL REFERENCES users (peer_id) ON DELETE CASCADE,"
     " blob TEXT NOT NULL,"
     " created_at BIGINT NOT NULL,"
     " expires_at BIGINT NOT NULL);"
     "CREATE INDEX envelopes_by_to ON envelopes (to_peer, seq);"
     "CREATE INDEX envelopes_by_expiry ON envelopes (expires_at);"},
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- Statements --------------------------------------------------------- */

#define STMT_LIST(X)                                                                    \
    X(BEGIN, "BEGIN")                                                                   \
    X(COMMIT, "COMMIT")                                                                 \
    X(ROLLBACK, "ROLLBACK")                                                             \
    X(PING, "SELECT 1")                                                                 \
    X(VERSION, "SELECT version FROM echolink_schema")                                   \
    X(USER_INSERT, "INSERT INTO users (peer_id, ik, sk, sk_sig, name, avatar,"          \
                   " created_at, last_seen) VALUES ($1, $2, $3, $4, $5, NULL, $6, $6)"  \
                   " ON CONFLICT (peer_id) DO NOTHING")                                 \
    X(USER_UPDATE_LOGIN, "UPDATE users SET ik = $2, sk = $3, sk_sig = $4,"              \
                         " name = COALESCE($5, name), last_seen = $6 WHERE peer_id = $1") \
    X(USER_GET, "SELECT peer_id, ik, sk, sk_sig, name, avatar, created_at, last_seen"   \
                " FROM users WHERE peer_id = $1")                                       \
    X(USER_SET_PROFILE, "UPDATE users SET"                                              \
                        " name = CASE WHEN $2::int <> 0 THEN $3::text ELSE name END,"   \
                        " avatar = CASE WHEN $4::int <> 0 THEN $5::text ELSE avatar END" \
                        " WHERE peer_id = $1")                                          \
    X(USER_TOUCH, "UPDATE users SET last_seen = $2 WHERE peer_id = $1")                 \
    X(USER_EXISTS, "SELECT 1 FROM users WHERE peer_id = $1")                            \
    X(USER_LOCK, "SELECT 1 FROM users WHERE peer_id = $1 FOR NO KEY UPDATE")            \
    X(CONTACT_ADD, "INSERT INTO contacts (peer_a, peer_b, created_at) VALUES ($1, $2, $3)" \
                   " ON CONFLICT (peer_a, peer_b) DO NOTHING")                          \
    X(CONTACT_REMOVE, "DELETE FROM contacts WHERE peer_a = $1 AND peer_b = $2")         \
    X(CONTACT_IS, "SELECT 1 FROM contacts WHERE peer_a = $1 AND peer_b = $2")           \
    X(CONTACT_LIST, "SELECT peer_b FROM contacts WHERE peer_a = $1"                     \
                    " UNION ALL SELECT peer_a FROM contacts WHERE peer_b = $1"          \
                    " ORDER BY 1")                                                      \
    X(REQ_INSERT, "INSERT INTO contact_requests (from_peer, to_peer, message, created_at)" \
                  " VALUES ($1, $2, $3, $4) ON CONFLICT (from_peer, to_peer) DO NOTHING") \
    X(REQ_UPDATE, "UPDATE contact_requests SET message = $3, created_at = $4"           \
                  " WHERE from_peer = $1 AND to_peer = $2")                             \
    X(REQ_REMOVE, "DELETE FROM contact_requests WHERE from_peer = $1 AND to_peer = $2") \
    X(REQ_EXISTS, "SELECT 1 FROM contact_requests WHERE from_peer = $1 AND to_peer = $2") \
    X(REQ_LIST_IN, "SELECT from_peer, to_peer, message, created_at FROM contact_requests" \
                   " WHERE to_peer = $1 ORDER BY created_at, from_peer")                \
    X(REQ_LIST_OUT, "SELECT from_peer, to_peer, message, created_at FROM contact_requests" \
                    " WHERE from_peer = $1 ORDER BY created_at, to_peer")               \
    X(BLOCK_ADD, "INSERT INTO blocks (blocker, blocked, created_at) VALUES ($1, $2, $3)" \
                 " ON CONFLICT (blocker, blocked) DO NOTHING")                          \
    X(BLOCK_REMOVE, "DELETE FROM blocks WHERE blocker = $1 AND blocked = $2")           \
    X(BLOCK_IS, "SELECT 1 FROM blocks WHERE blocker = $1 AND blocked = $2")             \
    X(BLOCK_LIST, "SELECT blocked FROM blocks WHERE blocker = $1"                       \
                  " ORDER BY created_at, blocked")                                      \
    X(GROUP_INSERT, "INSERT INTO chat_groups (group_id, name, admin, created_at)"       \
                    " VALUES ($1, $2, $3, $4)")                                         \
    X(GROUP_GET, "SELECT group_id, name, admin, created_at FROM chat_groups"            \
                 " WHERE group_id = $1")                                                \
    X(GROUP_LOCK, "SELECT 1 FROM chat_groups WHERE group_id = $1 FOR NO KEY UPDATE")    \
    X(GROUP_DELETE, "DELETE FROM chat_groups WHERE group_id = $1")                      \
    X(GROUP_SET_NAME, "UPDATE chat_groups SET name = $2 WHERE group_id = $1")           \
    X(GROUP_SET_ADMIN, "UPDATE chat_groups SET admin = $2 WHERE group_id = $1 AND EXISTS" \
                       " (SELECT 1 FROM group_members WHERE group_id = $1 AND peer_id = $2)") \
    X(GROUP_HAND_OVER, "UPDATE chat_groups SET admin = $2 WHERE group_id = $1"          \
                       " AND admin = $3")                                               \
    X(GROUP_LIST_FOR, "SELECT g.group_id, g.name, g.admin, g.created_at"                \
                      " FROM chat_groups g JOIN group_members m ON m.group_id = g.group_id" \
                      " WHERE m.peer_id = $1 ORDER BY g.created_at, g.group_id")        \
    X(MEMBER_ADD, "INSERT INTO group_members (group_id, peer_id, joined_at)"            \
                  " VALUES ($1, $2, $3) ON CONFLICT (group_id, peer_id) DO NOTHING")    \
    X(MEMBER_REMOVE, "DELETE FROM group_members WHERE group_id = $1 AND peer_id = $2")  \
    X(MEMBER_IS, "SELECT 1 FROM group_members WHERE group_id = $1 AND peer_id = $2")    \
    X(MEMBER_OLDEST, "SELECT peer_id FROM group_members WHERE group_id = $1"            \
                     " ORDER BY joined_at, peer_id LIMIT 1")                            \
    X(MEMBER_LIST, "SELECT peer_id, joined_at FROM group_members WHERE group_id = $1"   \
                   " ORDER BY joined_at, peer_id")                                      \
    X(CO_MEMBER_IS, "SELECT 1 FROM group_members a JOIN group_members b"                \
                    " ON b.group_id = a.group_id"                                       \
                    " WHERE a.peer_id = $1 AND b.peer_id = $2 LIMIT 1")                 \
    X(CO_MEMBER_LIST, "SELECT DISTINCT b.peer_id FROM group_members a"                  \
                      " JOIN group_members b ON b.group_id = a.group_id"                \
                      " WHERE a.peer_id = $1 AND b.peer_id <> $1 ORDER BY b.peer_id")   \
    X(ENV_COUNT, "SELECT COUNT(*) FROM envelopes WHERE to_peer = $1 AND expires_at > $2") \
    X(ENV_INSERT, "INSERT INTO envelopes (id, to_peer, from_peer, blob, created_at,"    \
                  " expires_at) VALUES ($1, $2, $3, $4, $5, $6)")                       \
    X(ENV_LIST, "SELECT id, to_peer, from_peer, blob, created_at, expires_at"           \
                " FROM envelopes WHERE to_peer = $1 AND expires_at > $2"                \
                " ORDER BY seq LIMIT $3")                                               \
    X(ENV_DELETE, "DELETE FROM envelopes WHERE to_peer = $1 AND id = $2")               \
    X(ENV_PURGE, "DELETE FROM envelopes WHERE expires_at <= $1")

#define STMT_ENUM(id, sql) S_##id,
#define STMT_SQL(id, sql) [S_##id] = sql,
#define STMT_NAME(id, sql) [S_##id] = "el_" #id,
enum stmt_id { STMT_LIST(STMT_ENUM) S__COUNT };
static const char *const stmt_sql[S__COUNT] = {STMT_LIST(STMT_SQL)};
/* Server-side names; "el_" keeps them apart from anything else a pooled
 * session might have prepared. */
static const char *const stmt_name[S__COUNT] = {STMT_LIST(STMT_NAME)};

typedef struct pg_store {
    el_store base; /* first: el_store * and pg_store * convert both ways */
    PGconn *conn;
    char label[192];          /* host:port/db for messages; never a password */
    bool prepared[S__COUNT];  /* per connection: cleared when it is reset */
    bool in_tx;               /* between BEGIN and COMMIT/ROLLBACK */
    bool retry;               /* the transaction hit a deadlock / serialization failure */
} pg_store;

static pg_store *pg(el_store *st)
{
    return (pg_store *)st;
}

/* ---- Error mapping ------------------------------------------------------ */

/* Copies libpq's message without its trailing newline. */
static const char *pg_message(pg_store *s, const PGresult *res, char *buf, size_t cap)
{
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !*msg)
        msg = s->conn ? PQerrorMessage(s->conn) : "no connection";
    snprintf(buf, cap, "%s", msg && *msg ? msg : "unknown error");
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* Turns a failed result into our error. Constraint violations are the
 * expected outcomes the API documents; a deadlock or serialization failure
 * inside a transaction marks it for another run (and is logged only when the
 * runs are used up); anything else is a database fault and is logged. */
static int db_error(pg_store *s, const char *what, const PGresult *res, char *err,
                    size_t errlen)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char msg[512];
    pg_message(s, res, msg, sizeof msg);
    if (state && strcmp(state, "23505") == 0)
        return el_seterr(err, errlen, EL_ERR_EXISTS, "%s: already exists", what);
    if (state && strcmp(state, "23503") == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND,
                         "%s: a referenced peer or group does not exist", what);
    if (state && strcmp(state, "23514") == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s", what, msg);
    if (state && s->in_tx && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)) {
        s->retry = true;
        return el_seterr(err, errlen, EL_ERR_DB, "%s: %s", what, msg);
    }
    EL_WARN("store: %s: %s (postgres sqlstate %s)", what, msg, state ? state : "none");
    return el_seterr(err, errlen, EL_ERR_DB, "%s: %s", what, msg);
}

static int corrupt(const char *what, char *err, size_t errlen)
{
    EL_WARN("store: %s: a stored value exceeds its limit", what);
    return el_seterr(err, errlen, EL_ERR_DB,
                     "%s: a stored value exceeds its limit (database edited by hand?)", what);
}

/* ---- Connection --------------------------------------------------------- */

/* libpq prints NOTICEs to stderr by default; a library must not. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    EL_DEBUG("store: postgres: %s", message);
}

/* Settings of one session; run after connecting and after every reset. */
static int session_setup(pg_store *s, char *err, size_t errlen)
{
    const char *enc = PQparameterStatus(s->conn, "server_encoding");
    if (!enc || strcmp(enc, "UTF8") != 0)
        return el_seterr(err, errlen, EL_ERR_DB,
                         "postgres database %s has encoding %s; echolinkd needs UTF8",
                         s->label, enc ? enc : "(unknown)");
    /* Wait for a row lock at most this long, as SQLite's busy timeout does,
     * instead of hanging a node behind a stuck transaction. */
    PGresult *res = PQexec(s->conn, "SET lock_timeout = '" LOCK_TIMEOUT "'");
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? EL_OK : EL_ERR_DB;
    if (rc) {
        char msg[512];
        el_seterr(err, errlen, rc, "postgres database %s: %s", s->label,
                  pg_message(s, res, msg, sizeof msg));
    }
    PQclear(res);
    return rc;
}

/* A connection found broken outside a transaction (the server restarted, a
 * proxy dropped it) is reset once; its prepared statements are gone. */
static int conn_check(pg_store *s, const char *what, char *err, size_t errlen)
{
    if (s->in_tx || PQstatus(s->conn) == CONNECTION_OK)
        return EL_OK;
    EL_WARN("store: %s: connection to %s lost; reconnecting", what, s->label);
    PQreset(s->conn);
    memset(s->prepared, 0, sizeof s->prepared);
    if (PQstatus(s->conn) != CONNECTION_OK)
        return db_error(s, what, NULL, err, errlen);
    return session_setup(s, err, errlen);
}

/* ---- Queries ------------------------------------------------------------ */

/* A statement parameter: text (NULL binds SQL NULL) or a 64-bit integer.
 * Passed as arrays built with P(...), which keeps binding type-checked. */
typedef struct {
    const char *text;
    int64_t num;
    bool is_num;
} param;

#define T(x) ((param){.text = (x)})
#define I(x) ((param){.num = (int64_t)(x), .is_num = true})
#define P(...) sizeof((const param[]){__VA_ARGS__}) / sizeof(param), (const param[]){__VA_ARGS__}

static int prepare(pg_store *s, enum stmt_id id, const char *what, char *err,
                   size_t errlen)
{
    if (s->prepared[id])
        return EL_OK;
    PGresult *res = PQprepare(s->conn, stmt_name[id], stmt_sql[id], 0, NULL);
    int rc = EL_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = db_error(s, what, res, err, errlen);
    else
        s->prepared[id] = true;
    PQclear(res);
    return rc;
}

/* Runs statement `id` with params; on success *out is its result (PQclear
 * it), on failure *out is NULL. */
static int q_exec(pg_store *s, enum stmt_id id, PGresult **out, const char *what,
                  char *err, size_t errlen, size_t n, const param *p)
{
    *out = NULL;
    if (n > MAX_PARAMS)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: too many parameters", what);
    int rc = conn_check(s, what, err, errlen);
    if (rc == EL_OK)
        rc = prepare(s, id, what, err, errlen);
    if (rc)
        return rc;
    const char *values[MAX_PARAMS];
    char nums[MAX_PARAMS][24];
    for (size_t i = 0; i < n; i++) {
        if (p[i].is_num) {
            snprintf(nums[i], sizeof nums[i], "%" PRId64, p[i].num);
            values[i] = nums[i];
        } else {
            values[i] = p[i].text;
        }
    }
    PGresult *res = PQexecPrepared(s->conn, stmt_name[id], (int)n, values, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        *out = res;
        return EL_OK;
    }
    rc = db_error(s, what, res, err, errlen);
    PQclear(res);
    return rc;
}

/* Runs a statement that returns no rows; returns the number of rows changed. */
static int run(pg_store *s, enum stmt_id id, const char *what, char *err, size_t errlen,
               size_t n, const param *p)
{
    PGresult *res;
    int rc = q_exec(s, id, &res, what, err, errlen, n, p);
    if (rc)
        return rc;
    long changed = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return changed > INT_MAX ? INT_MAX : (int)changed;
}

/* Runs a query and reports whether it produced a row: 1, 0 or < 0. */
static int has_row(pg_store *s, enum stmt_id id, const char *what, char *err,
                   size_t errlen, size_t n, const param *p)
{
    PGresult *res;
    int rc = q_exec(s, id, &res, what, err, errlen, n, p);
    if (rc)
        return rc;
    rc = PQntuples(res) > 0;
    PQclear(res);
    return rc;
}

/* Copies text column `col` of `row` into buf[cap]; false when it does not
 * fit. NULL reads as "". */
static bool col_copy(const PGresult *res, int row, int col, char *buf, size_t cap)
{
    size_t n = (size_t)PQgetlength(res, row, col);
    if (n >= cap)
        return false;
    if (n)
        memcpy(buf, PQgetvalue(res, row, col), n);
    buf[n] = '\0';
    return true;
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Turns row `row` into the caller's type and calls its callback; returns what
 * the callback returned (or < 0 when the row is unusable). */
typedef int (*row_fn)(const PGresult *res, int row, void *ctx, const char *what,
                      char *err, size_t errlen);

/* The shared list loop: see the list conventions in store.h. */
static int list_rows(pg_store *s, enum stmt_id id, const char *what, char *err,
                     size_t errlen, row_fn fn, void *ctx, size_t n, const param *p)
{
    PGresult *res;
    int rc = q_exec(s, id, &res, what, err, errlen, n, p);
    if (rc)
        return rc;
    int rows = PQntuples(res);
    int count = 0;
    for (int i = 0; i < rows; i++) {
        int r = fn(res, i, ctx, what, err, errlen);
        if (r < 0) {
            count = r;
            break;
        }
        count++;
        if (r > 0)
            break;
    }
    PQclear(res);
    return count;
}

/* ---- Transactions ------------------------------------------------------- */

static int tx_begin(pg_store *s, const char *what, char *err, size_t errlen)
{
    int rc = run(s, S_BEGIN, what, err, errlen, 0, NULL);
    if (rc < 0)
        return rc;
    s->in_tx = true;
    return EL_OK;
}

static void tx_rollback(pg_store *s)
{
    /* A lost connection has rolled back already. */
    if (PQstatus(s->conn) == CONNECTION_OK &&
        PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        (void)run(s, S_ROLLBACK, "rollback", NULL, 0, 0, NULL);
}

/* Commits; on failure rolls back and returns the error. Returns `ok` when it
 * is >= 0 and the commit worked. */
static int tx_end(pg_store *s, int ok, const char *what, char *err, size_t errlen)
{
    int rc = ok;
    if (ok >= 0) {
        int c = run(s, S_COMMIT, what, err, errlen, 0, NULL);
        if (c < 0)
            rc = c;
    }
    if (rc < 0)
        tx_rollback(s);
    s->in_tx = false;
    return rc;
}

/* Runs `body` (an expression giving a result >= 0 or an el_err, evaluated
 * anew on each run) inside a transaction and returns the result from the
 * enclosing function. A run PostgreSQL aborted as a deadlock victim or on a
 * serialization failure changed nothing, so it is simply run again. The
 * bodies lock rows in a fixed order (requests of a pair in the pair's stored
 * order, then the contact row) so this is a safety net, not the plan. */
#define TX_RUN(s, what, err, errlen, body)                                       \
    do {                                                                         \
        for (int try_ = 1;; try_++) {                                            \
            (s)->retry = false;                                                  \
            int rc_ = tx_begin((s), (what), (err), (errlen));                    \
            if (rc_ == EL_OK)                                                    \
                rc_ = tx_end((s), (body), (what), (err), (errlen));              \
            if (!(s)->retry)                                                     \
                return rc_;                                                      \
            if (try_ >= TX_TRIES) {                                              \
                EL_WARN("store: %s: aborted by PostgreSQL %d times; giving up",  \
                        (what), try_);                                           \
                return rc_;                                                      \
            }                                                                    \
        }                                                                        \
    } while (0)

/* ---- Lifetime ----------------------------------------------------------- */

static void pg_close(el_store *st)
{
    pg_store *s = pg(st);
    PQfinish(s->conn); /* NULL is fine */
    free(s);
}

static int pg_ping(el_store *st)
{
    char err[256];
    int rc = has_row(pg(st), S_PING, "ping", err, sizeof err, 0, NULL);
    if (rc == 1)
        return EL_OK;
    if (rc == 0)
        EL_WARN("store: ping: no row");
    return EL_ERR_DB;
}

static int pg_schema_version(el_store *st, char *err, size_t errlen)
{
    PGresult *res;
    int rc = q_exec(pg(st), S_VERSION, &res, "schema_version", err, errlen, 0, NULL);
    if (rc)
        return rc;
    if (PQntuples(res) == 1)
        rc = (int)col_i64(res, 0, 0);
    else
        rc = el_seterr(err, errlen, EL_ERR_DB, "schema_version: no row");
    PQclear(res);
    return rc;
}

/* ---- Users -------------------------------------------------------------- */

static int login_body(pg_store *s, const char *peer_id, const char *ik, const char *sk,
                      const char *sk_sig, const char *name, int64_t now_ms,
                      const char *what, char *err, size_t errlen)
{
    /* The insert either creates the row or, for a known peer (also one
     * created by a concurrent login a moment ago), does nothing. */
    int rc = run(s, S_USER_INSERT, what, err, errlen,
                 P(T(peer_id), T(ik), T(sk), T(sk_sig), T(name), I(now_ms)));
    if (rc != 0)
        return rc < 0 ? rc : 1; /* created */
    rc = run(s, S_USER_UPDATE_LOGIN, what, err, errlen,
             P(T(peer_id), T(ik), T(sk), T(sk_sig), T(name), I(now_ms)));
    return rc < 0 ? rc : 0; /* existed */
}

static int pg_user_login(el_store *st, const char *peer_id, const char *ik, const char *sk,
                         const char *sk_sig, const char *name, int64_t now_ms, char *err,
                         size_t errlen)
{
    static const char what[] = "user_login";
    pg_store *s = pg(st);
    TX_RUN(s, what, err, errlen,
           login_body(s, peer_id, ik, sk, sk_sig, name, now_ms, what, err, errlen));
}

/* The avatar column of a user row into the caller's buffer (user_get). */
static int copy_avatar(const PGresult *res, el_store_user *out, char *avatar,
                       size_t avatar_cap, const char *what, char *err, size_t errlen)
{
    if (PQgetisnull(res, 0, 5)) {
        if (avatar && avatar_cap)
            avatar[0] = '\0';
        else if (avatar)
            return el_seterr(err, errlen, EL_ERR_TOO_LARGE, "%s: avatar buffer is empty",
                             what);
        return EL_OK;
    }
    out->has_avatar = true;
    out->avatar_len = (size_t)PQgetlength(res, 0, 5);
    if (!avatar)
        return EL_OK;
    if (avatar_cap <= out->avatar_len)
        return el_seterr(err, errlen, EL_ERR_TOO_LARGE,
                         "%s: the avatar (%zu bytes) does not fit into %zu bytes", what,
                         out->avatar_len, avatar_cap);
    memcpy(avatar, PQgetvalue(res, 0, 5), out->avatar_len);
    avatar[out->avatar_len] = '\0';
    return EL_OK;
}

static int pg_user_get(el_store *st, const char *peer_id, el_store_user *out, char *avatar,
                       size_t avatar_cap, char *err, size_t errlen)
{
    static const char what[] = "user_get";
    PGresult *res;
    int rc = q_exec(pg(st), S_USER_GET, &res, what, err, errlen, P(T(peer_id)));
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        rc = el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: unknown peer", what);
        goto out;
    }
    memset(out, 0, sizeof *out);
    if (!col_copy(res, 0, 0, out->peer_id, sizeof out->peer_id) ||
        !col_copy(res, 0, 1, out->ik, sizeof out->ik) ||
        !col_copy(res, 0, 2, out->sk, sizeof out->sk) ||
        !col_copy(res, 0, 3, out->sk_sig, sizeof out->sk_sig) ||
        !col_copy(res, 0, 4, out->name, sizeof out->name)) {
        rc = corrupt(what, err, errlen);
        goto out;
    }
    out->has_name = !PQgetisnull(res, 0, 4);
    out->created_at = col_i64(res, 0, 6);
    out->last_seen = col_i64(res, 0, 7);
    rc = copy_avatar(res, out, avatar, avatar_cap, what, err, errlen);
out:
    PQclear(res);
    return rc;
}

static int pg_user_set_profile(el_store *st, const char *peer_id, unsigned fields,
                               const char *name, const char *avatar, char *err,
                               size_t errlen)
{
    static const char what[] = "user_set_profile";
    int rc = run(pg(st), S_USER_SET_PROFILE, what, err, errlen,
                 P(T(peer_id), I((fields & EL_STORE_PROFILE_NAME) != 0), T(name),
                   I((fields & EL_STORE_PROFILE_AVATAR) != 0), T(avatar)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: unknown peer", what);
    return rc < 0 ? rc : EL_OK;
}

static int pg_user_touch(el_store *st, const char *peer_id, int64_t now_ms, char *err,
                         size_t errlen)
{
    static const char what[] = "user_touch";
    int rc = run(pg(st), S_USER_TOUCH, what, err, errlen, P(T(peer_id), I(now_ms)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: unknown peer", what);
    return rc < 0 ? rc : EL_OK;
}

static int pg_user_exists(el_store *st, const char *peer_id, char *err, size_t errlen)
{
    return has_row(pg(st), S_USER_EXISTS, "user_exists", err, errlen, P(T(peer_id)));
}

/* ---- Contacts ----------------------------------------------------------- */


static int pg_contact_add(el_store *st, const char *a, const char *b, int64_t now_ms,
                          char *err, size_t errlen)
{
    el_store_pair_order(&a, &b);
    return run(pg(st), S_CONTACT_ADD, "contact_add", err, errlen, P(T(a), T(b), I(now_ms)));
}

static int pg_contact_remove(el_store *st, const char *a, const char *b, char *err,
                             size_t errlen)
{
    static const char what[] = "contact_remove";
    el_store_pair_order(&a, &b);
    int rc = run(pg(st), S_CONTACT_REMOVE, what, err, errlen, P(T(a), T(b)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: not contacts", what);
    return rc < 0 ? rc : EL_OK;
}

static int pg_contact_is(el_store *st, const char *a, const char *b, char *err,
                         size_t errlen)
{
    el_store_pair_order(&a, &b);
    return has_row(pg(st), S_CONTACT_IS, "contact_is", err, errlen, P(T(a), T(b)));
}

struct peer_ctx {
    el_store_peer_cb cb;
    void *user;
};

static int row_peer(const PGresult *res, int row, void *ctx, const char *what, char *err,
                    size_t errlen)
{
    struct peer_ctx *c = ctx;
    char peer[EL_STORE_PEER_ID_LEN + 1];
    if (!col_copy(res, row, 0, peer, sizeof peer))
        return corrupt(what, err, errlen);
    return c->cb(peer, c->user);
}

static int pg_contact_list(el_store *st, const char *peer, el_store_peer_cb cb, void *user,
                           char *err, size_t errlen)
{
    struct peer_ctx c = {cb, user};
    return list_rows(pg(st), S_CONTACT_LIST, "contact_list", err, errlen, row_peer, &c,
                     P(T(peer)));
}

/* ---- Contact requests --------------------------------------------------- */

static int request_add_body(pg_store *s, const char *from, const char *to,
                            const char *message, int64_t now_ms, const char *what,
                            char *err, size_t errlen)
{
    int rc = run(s, S_REQ_INSERT, what, err, errlen,
                 P(T(from), T(to), T(message), I(now_ms)));
    if (rc != 0)
        return rc < 0 ? rc : 1; /* new */
    rc = run(s, S_REQ_UPDATE, what, err, errlen, P(T(from), T(to), T(message), I(now_ms)));
    return rc < 0 ? rc : 0; /* asked again */
}

static int pg_request_add(el_store *st, const char *from, const char *to,
                          const char *message, int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "request_add";
    pg_store *s = pg(st);
    TX_RUN(s, what, err, errlen,
           request_add_body(s, from, to, message, now_ms, what, err, errlen));
}

static int pg_request_remove(el_store *st, const char *from, const char *to, char *err,
                             size_t errlen)
{
    static const char what[] = "request_remove";
    int rc = run(pg(st), S_REQ_REMOVE, what, err, errlen, P(T(from), T(to)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such request", what);
    return rc < 0 ? rc : EL_OK;
}

static int pg_request_exists(el_store *st, const char *from, const char *to, char *err,
                             size_t errlen)
{
    return has_row(pg(st), S_REQ_EXISTS, "request_exists", err, errlen, P(T(from), T(to)));
}

/* Deletes the requests a -> b and b -> a, in the pair's stored order (the
 * smaller peer ID's request first) whichever side asks: two transactions on
 * the same pair then lock its rows in one order and cannot deadlock. Returns
 * how many of them went out from `from`'s side (0 or 1), or an el_err. */
static int remove_requests(pg_store *s, const char *from, const char *to,
                           const char *what, char *err, size_t errlen)
{
    const char *a = from, *b = to;
    el_store_pair_order(&a, &b);
    int first = run(s, S_REQ_REMOVE, what, err, errlen, P(T(a), T(b)));
    if (first < 0)
        return first;
    int second = run(s, S_REQ_REMOVE, what, err, errlen, P(T(b), T(a)));
    if (second < 0)
        return second;
    return a == from ? first : second;
}

static int request_accept_body(pg_store *s, const char *from, const char *to,
                               int64_t now_ms, const char *what, char *err, size_t errlen)
{
    /* The DELETE locks the request: of two concurrent accepts the second
     * finds it gone and (rolled back) changes nothing. */
    int rc = remove_requests(s, from, to, what, err, errlen);
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such request", what);
    if (rc > 0) {
        const char *a = from, *b = to;
        el_store_pair_order(&a, &b);
        rc = run(s, S_CONTACT_ADD, what, err, errlen, P(T(a), T(b), I(now_ms)));
    }
    return rc < 0 ? rc : EL_OK;
}

static int pg_request_accept(el_store *st, const char *from, const char *to,
                             int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "request_accept";
    pg_store *s = pg(st);
    TX_RUN(s, what, err, errlen, request_accept_body(s, from, to, now_ms, what, err, errlen));
}

struct request_ctx {
    el_store_request_cb cb;
    void *user;
};

static int row_request(const PGresult *res, int row, void *ctx, const char *what,
                       char *err, size_t errlen)
{
    struct request_ctx *c = ctx;
    el_store_request r;
    if (!col_copy(res, row, 0, r.from, sizeof r.from) ||
        !col_copy(res, row, 1, r.to, sizeof r.to) ||
        !col_copy(res, row, 2, r.message, sizeof r.message))
        return corrupt(what, err, errlen);
    r.at = col_i64(res, row, 3);
    return c->cb(&r, c->user);
}

static int pg_request_list(el_store *st, const char *peer, bool incoming,
                           el_store_request_cb cb, void *user, char *err, size_t errlen)
{
    struct request_ctx c = {cb, user};
    return list_rows(pg(st), incoming ? S_REQ_LIST_IN : S_REQ_LIST_OUT,
                     incoming ? "request_list_incoming" : "request_list_outgoing", err,
                     errlen, row_request, &c, P(T(peer)));
}

/* ---- Blocks ------------------------------------------------------------- */

static int block_add_body(pg_store *s, const char *blocker, const char *blocked,
                          int64_t now_ms, const char *what, char *err, size_t errlen)
{
    int added = run(s, S_BLOCK_ADD, what, err, errlen, P(T(blocker), T(blocked), I(now_ms)));
    int rc = added;
    /* Requests before the contact row: the order request_accept locks them
     * in, so the two cannot deadlock. */
    if (rc >= 0)
        rc = remove_requests(s, blocker, blocked, what, err, errlen);
    if (rc >= 0) {
        const char *a = blocker, *b = blocked;
        el_store_pair_order(&a, &b);
        rc = run(s, S_CONTACT_REMOVE, what, err, errlen, P(T(a), T(b)));
    }
    return rc < 0 ? rc : added;
}

static int pg_block_add(el_store *st, const char *blocker, const char *blocked,
                        int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "block_add";
    pg_store *s = pg(st);
    TX_RUN(s, what, err, errlen, block_add_body(s, blocker, blocked, now_ms, what, err, errlen));
}

static int pg_block_remove(el_store *st, const char *blocker, const char *blocked,
                           char *err, size_t errlen)
{
    static const char what[] = "block_remove";
    int rc = run(pg(st), S_BLOCK_REMOVE, what, err, errlen, P(T(blocker), T(blocked)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: not blocked", what);
    return rc < 0 ? rc : EL_OK;
}

static int pg_block_is(el_store *st, const char *blocker, const char *blocked, char *err,
                       size_t errlen)
{
    return has_row(pg(st), S_BLOCK_IS, "block_is", err, errlen, P(T(blocker), T(blocked)));
}

static int pg_block_list(el_store *st, const char *blocker, el_store_peer_cb cb,
                         void *user, char *err, size_t errlen)
{
    struct peer_ctx c = {cb, user};
    return list_rows(pg(st), S_BLOCK_LIST, "block_list", err, errlen, row_peer, &c,
                     P(T(blocker)));
}

/* ---- Groups ------------------------------------------------------------- */

static int group_create_body(pg_store *s, const char *group_id, const char *name,
                             const char *admin, const char *const *members,
                             size_t n_members, int64_t now_ms, const char *what, char *err,
                             size_t errlen)
{
    int rc = run(s, S_GROUP_INSERT, what, err, errlen,
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
    return rc < 0 ? rc : EL_OK;
}

static int pg_group_create(el_store *st, const char *group_id, const char *name,
                           const char *admin, const char *const *members,
                           size_t n_members, int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "group_create";
    pg_store *s = pg(st);
    TX_RUN(s, what, err, errlen,
           group_create_body(s, group_id, name, admin, members, n_members, now_ms, what,
                             err, errlen));
}

static int row_group(const PGresult *res, int row, el_store_group *g)
{
    if (!col_copy(res, row, 0, g->group_id, sizeof g->group_id) ||
        !col_copy(res, row, 1, g->name, sizeof g->name) ||
        !col_copy(res, row, 2, g->admin, sizeof g->admin))
        return -1;
    g->created_at = col_i64(res, row, 3);
    return 0;
}

static int pg_group_get(el_store *st, const char *group_id, el_store_group *out, char *err,
                        size_t errlen)
{
    static const char what[] = "group_get";
    PGresult *res;
    int rc = q_exec(pg(st), S_GROUP_GET, &res, what, err, errlen, P(T(group_id)));
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such group", what);
    else
        rc = row_group(res, 0, out) ? corrupt(what, err, errlen) : EL_OK;
    PQclear(res);
    return rc;
}

static int pg_group_delete(el_store *st, const char *group_id, char *err, size_t errlen)
{
    static const char what[] = "group_delete";
    /* group_members rows go with it (ON DELETE CASCADE). */
    int rc = run(pg(st), S_GROUP_DELETE, what, err, errlen, P(T(group_id)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such group", what);
    return rc < 0 ? rc : EL_OK;
}

static int pg_group_set_name(el_store *st, const char *group_id, const char *name,
                             char *err, size_t errlen)
{
    static const char what[] = "group_set_name";
    int rc = run(pg(st), S_GROUP_SET_NAME, what, err, errlen, P(T(group_id), T(name)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such group", what);
    return rc < 0 ? rc : EL_OK;
}

static int set_admin_body(pg_store *s, const char *group_id, const char *admin,
                          const char *what, char *err, size_t errlen)
{
    /* Locked first: a member leaving meanwhile cannot become the admin. */
    int rc = has_row(s, S_GROUP_LOCK, what, err, errlen, P(T(group_id)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such group", what);
    if (rc > 0)
        rc = run(s, S_GROUP_SET_ADMIN, what, err, errlen, P(T(group_id), T(admin)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: the new admin is not a member",
                         what);
    return rc < 0 ? rc : EL_OK;
}

static int pg_group_set_admin(el_store *st, const char *group_id, const char *admin,
                              char *err, size_t errlen)
{
    static const char what[] = "group_set_admin";
    pg_store *s = pg(st);
    TX_RUN(s, what, err, errlen, set_admin_body(s, group_id, admin, what, err, errlen));
}

static int member_add_body(pg_store *s, const char *group_id, const char *peer,
                           int64_t now_ms, const char *what, char *err, size_t errlen)
{
    /* Locked first: a last member leaving meanwhile deletes the group either
     * before this join (which then fails) or after it (and sees it). */
    int rc = has_row(s, S_GROUP_LOCK, what, err, errlen, P(T(group_id)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND,
                         "%s: a referenced peer or group does not exist", what);
    if (rc < 0)
        return rc;
    return run(s, S_MEMBER_ADD, what, err, errlen, P(T(group_id), T(peer), I(now_ms)));
}

static int pg_group_member_add(el_store *st, const char *group_id, const char *peer,
                               int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "group_member_add";
    pg_store *s = pg(st);
    TX_RUN(s, what, err, errlen, member_add_body(s, group_id, peer, now_ms, what, err, errlen));
}

/* Who is admin after `peer` left: deletes an empty group or hands the admin
 * role to the oldest member; returns EL_STORE_GROUP_*. */
static int after_leave(pg_store *s, const char *group_id, const char *peer,
                       const char *what, char *err, size_t errlen)
{
    char oldest[EL_STORE_PEER_ID_LEN + 1];
    PGresult *res;
    int rc = q_exec(s, S_MEMBER_OLDEST, &res, what, err, errlen, P(T(group_id)));
    if (rc)
        return rc;
    int found = PQntuples(res) > 0;
    if (found && !col_copy(res, 0, 0, oldest, sizeof oldest))
        rc = corrupt(what, err, errlen);
    PQclear(res);
    if (rc)
        return rc;
    if (!found) {
        /* Nobody is left: the directory entry goes too. */
        rc = run(s, S_GROUP_DELETE, what, err, errlen, P(T(group_id)));
        return rc < 0 ? rc : EL_STORE_GROUP_DELETED;
    }
    /* Only changes a row when the leaver was the admin. */
    rc = run(s, S_GROUP_HAND_OVER, what, err, errlen, P(T(group_id), T(oldest), T(peer)));
    if (rc < 0)
        return rc;
    return rc ? EL_STORE_GROUP_ADMIN_CHANGED : EL_STORE_GROUP_KEPT;
}

static int member_remove_body(pg_store *s, const char *group_id, const char *peer,
                              const char *what, char *err, size_t errlen)
{
    int rc = has_row(s, S_GROUP_LOCK, what, err, errlen, P(T(group_id)));
    if (rc > 0)
        rc = run(s, S_MEMBER_REMOVE, what, err, errlen, P(T(group_id), T(peer)));
    if (rc == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: not a member", what);
    if (rc < 0)
        return rc;
    return after_leave(s, group_id, peer, what, err, errlen);
}

static int pg_group_member_remove(el_store *st, const char *group_id, const char *peer,
                                  char *err, size_t errlen)
{
    static const char what[] = "group_member_remove";
    pg_store *s = pg(st);
    TX_RUN(s, what, err, errlen, member_remove_body(s, group_id, peer, what, err, errlen));
}

static int pg_group_is_member(el_store *st, const char *group_id, const char *peer,
                              char *err, size_t errlen)
{
    return has_row(pg(st), S_MEMBER_IS, "group_is_member", err, errlen,
                   P(T(group_id), T(peer)));
}

struct group_ctx {
    el_store_group_cb cb;
    void *user;
};

static int row_group_cb(const PGresult *res, int row, void *ctx, const char *what,
                        char *err, size_t errlen)
{
    struct group_ctx *c = ctx;
    el_store_group g;
    if (row_group(res, row, &g))
        return corrupt(what, err, errlen);
    return c->cb(&g, c->user);
}

static int pg_group_list_for_peer(el_store *st, const char *peer, el_store_group_cb cb,
                                  void *user, char *err, size_t errlen)
{
    struct group_ctx c = {cb, user};
    return list_rows(pg(st), S_GROUP_LIST_FOR, "group_list_for_peer", err, errlen,
                     row_group_cb, &c, P(T(peer)));
}

struct member_ctx {
    el_store_member_cb cb;
    void *user;
};

static int row_member(const PGresult *res, int row, void *ctx, const char *what,
                      char *err, size_t errlen)
{
    struct member_ctx *c = ctx;
    char peer[EL_STORE_PEER_ID_LEN + 1];
    if (!col_copy(res, row, 0, peer, sizeof peer))
        return corrupt(what, err, errlen);
    return c->cb(peer, col_i64(res, row, 1), c->user);
}

static int pg_group_list_members(el_store *st, const char *group_id,
                                 el_store_member_cb cb, void *user, char *err,
                                 size_t errlen)
{
    struct member_ctx c = {cb, user};
    return list_rows(pg(st), S_MEMBER_LIST, "group_list_members", err, errlen, row_member,
                     &c, P(T(group_id)));
}

static int pg_group_is_co_member(el_store *st, const char *a, const char *b, char *err,
                                 size_t errlen)
{
    return has_row(pg(st), S_CO_MEMBER_IS, "group_is_co_member", err, errlen,
                   P(T(a), T(b)));
}

static int pg_group_list_co_members(el_store *st, const char *peer, el_store_peer_cb cb,
                                    void *user, char *err, size_t errlen)
{
    struct peer_ctx c = {cb, user};
    return list_rows(pg(st), S_CO_MEMBER_LIST, "group_list_co_members", err, errlen,
                     row_peer, &c, P(T(peer)));
}

/* ---- Envelopes ---------------------------------------------------------- */

static int count_envelopes(pg_store *s, const char *to, int64_t now_ms, const char *what,
                           char *err, size_t errlen)
{
    PGresult *res;
    int rc = q_exec(s, S_ENV_COUNT, &res, what, err, errlen, P(T(to), I(now_ms)));
    if (rc)
        return rc;
    if (PQntuples(res) == 1) {
        int64_t n = col_i64(res, 0, 0);
        rc = n > INT_MAX ? INT_MAX : (int)n;
    } else {
        rc = el_seterr(err, errlen, EL_ERR_DB, "%s: COUNT returned no row", what);
    }
    PQclear(res);
    return rc;
}

static int envelope_put_body(pg_store *s, const char *id, const char *to, const char *from,
                             const char *blob, int64_t created_at, int64_t expires_at,
                             unsigned max_count, const char *what, char *err,
                             size_t errlen)
{
    int rc = EL_OK;
    if (max_count) {
        /* Count and insert with the recipient's row locked, so that two
         * nodes cannot both slip in under the quota. An unknown recipient
         * has no row; the insert below then reports it. */
        rc = has_row(s, S_USER_LOCK, what, err, errlen, P(T(to)));
        if (rc >= 0)
            rc = count_envelopes(s, to, created_at, what, err, errlen);
        if (rc >= 0 && (unsigned)rc >= max_count)
            rc = el_seterr(err, errlen, EL_ERR_QUOTA,
                           "%s: the recipient already has %u queued envelopes", what,
                           max_count);
    }
    if (rc >= 0)
        rc = run(s, S_ENV_INSERT, what, err, errlen,
                 P(T(id), T(to), T(from), T(blob), I(created_at), I(expires_at)));
    if (rc == EL_ERR_EXISTS)
        rc = el_seterr(err, errlen, rc, "%s: envelope id %s is taken", what, id);
    return rc < 0 ? rc : EL_OK;
}

static int pg_envelope_put(el_store *st, const char *id, const char *to, const char *from,
                           const char *blob, size_t blob_len, int64_t created_at,
                           int64_t expires_at, unsigned max_count, char *err,
                           size_t errlen)
{
    static const char what[] = "envelope_put";
    pg_store *s = pg(st);
    (void)blob_len; /* text parameters end at the NUL store.c checked for */
    TX_RUN(s, what, err, errlen,
           envelope_put_body(s, id, to, from, blob, created_at, expires_at, max_count, what,
                             err, errlen));
}

struct envelope_ctx {
    el_store_envelope_cb cb;
    void *user;
};

static int row_envelope(const PGresult *res, int row, void *ctx, const char *what,
                        char *err, size_t errlen)
{
    struct envelope_ctx *c = ctx;
    el_store_envelope e;
    if (!col_copy(res, row, 0, e.id, sizeof e.id) ||
        !col_copy(res, row, 1, e.to, sizeof e.to) ||
        !col_copy(res, row, 2, e.from, sizeof e.from))
        return corrupt(what, err, errlen);
    /* The blob is handed out in place (libpq NUL-terminates every value). */
    e.blob = PQgetvalue(res, row, 3);
    e.blob_len = (size_t)PQgetlength(res, row, 3);
    e.created_at = col_i64(res, row, 4);
    e.expires_at = col_i64(res, row, 5);
    return c->cb(&e, c->user);
}

static int pg_envelope_list(el_store *st, const char *to, int64_t now_ms, unsigned limit,
                            el_store_envelope_cb cb, void *user, char *err, size_t errlen)
{
    struct envelope_ctx c = {cb, user};
    /* LIMIT NULL is PostgreSQL's "no limit". */
    param lim = limit ? I(limit) : T(NULL);
    return list_rows(pg(st), S_ENV_LIST, "envelope_list", err, errlen, row_envelope, &c,
                     P(T(to), I(now_ms), lim));
}

static int envelope_delete_body(pg_store *s, const char *to, const char *const *ids,
                                size_t n_ids, const char *what, char *err, size_t errlen)
{
    int deleted = 0;
    for (size_t i = 0; i < n_ids; i++) {
        int rc = run(s, S_ENV_DELETE, what, err, errlen, P(T(to), T(ids[i])));
        if (rc < 0)
            return rc;
        if (deleted < INT_MAX)
            deleted += rc;
    }
    return deleted;
}

static int pg_envelope_delete(el_store *st, const char *to, const char *const *ids,
                              size_t n_ids, char *err, size_t errlen)
{
    static const char what[] = "envelope_delete";
    pg_store *s = pg(st);
    TX_RUN(s, what, err, errlen, envelope_delete_body(s, to, ids, n_ids, what, err, errlen));
}

static int pg_envelope_purge(el_store *st, int64_t now_ms, char *err, size_t errlen)
{
    return run(pg(st), S_ENV_PURGE, "envelope_purge", err, errlen, P(I(now_ms)));
}

static int pg_envelope_count(el_store *st, const char *to, int64_t now_ms, char *err,
                             size_t errlen)
{
    return count_envelopes(pg(st), to, now_ms, "envelope_count", err, errlen);
}

/* ---- Opening and migrations --------------------------------------------- */

static const el_store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .ping = pg_ping,
    .schema_version = pg_schema_version,
    .user_login = pg_user_login,
    .user_get = pg_user_get,
    .user_set_profile = pg_user_set_profile,
    .user_touch = pg_user_touch,
    .user_exists = pg_user_exists,
    .contact_add = pg_contact_add,
    .contact_remove = pg_contact_remove,
    .contact_is = pg_contact_is,
    .contact_list = pg_contact_list,
    .request_add = pg_request_add,
    .request_remove = pg_request_remove,
    .request_exists = pg_request_exists,
    .request_accept = pg_request_accept,
    .request_list = pg_request_list,
    .block_add = pg_block_add,
    .block_remove = pg_block_remove,
    .block_is = pg_block_is,
    .block_list = pg_block_list,
    .group_create = pg_group_create,
    .group_get = pg_group_get,
    .group_delete = pg_group_delete,
    .group_set_name = pg_group_set_name,
    .group_set_admin = pg_group_set_admin,
    .group_member_add = pg_group_member_add,
    .group_member_remove = pg_group_member_remove,
    .group_is_member = pg_group_is_member,
    .group_list_for_peer = pg_group_list_for_peer,
    .group_list_members = pg_group_list_members,
    .group_is_co_member = pg_group_is_co_member,
    .group_list_co_members = pg_group_list_co_members,
    .envelope_put = pg_envelope_put,
    .envelope_list = pg_envelope_list,
    .envelope_delete = pg_envelope_delete,
    .envelope_purge = pg_envelope_purge,
    .envelope_count = pg_envelope_count,
};

/* Runs setup SQL (one or several statements, no parameters). When `version`
 * is not NULL the result's first value is parsed into it. */
static int setup_exec(pg_store *s, const char *sql, int *version, char *msg, size_t cap)
{
    PGresult *res = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = EL_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pg_message(s, res, msg, cap);
        rc = EL_ERR_DB;
    } else if (version) {
        *version = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
    }
    PQclear(res);
    return rc;
}

static int too_new(pg_store *s, int version, char *err, size_t errlen)
{
    return el_seterr(err, errlen, EL_ERR_DB,
                     "postgres database %s has schema version %d, newer than version %d "
                     "that this build knows; refusing to open it (upgrade echolinkd)",
                     s->label, version, SCHEMA_VERSION);
}

/* One transaction under the schema lock: creates the version table on a new
 * database, reads the version and applies the next step if one is due.
 * *version is the version afterwards. */
static int migrate_step(pg_store *s, int *version, char *err, size_t errlen)
{
    char msg[512] = "";
    char sql[160];
    /* A migration by another node may take longer than the row-lock timeout
     * of normal operation; wait for it, but not forever. */
    snprintf(sql, sizeof sql,
             "BEGIN; SET LOCAL lock_timeout = '60s'; SELECT pg_advisory_xact_lock(%" PRId64 ")",
             SCHEMA_LOCK_KEY);
    int rc = setup_exec(s, sql, NULL, msg, sizeof msg);
    if (rc == EL_OK)
        rc = setup_exec(s,
                        "CREATE TABLE IF NOT EXISTS echolink_schema (version INTEGER NOT NULL);"
                        "INSERT INTO echolink_schema (version) SELECT 0"
                        " WHERE NOT EXISTS (SELECT 1 FROM echolink_schema)",
                        NULL, msg, sizeof msg);
    /* Another node may have migrated while we waited for the lock. */
    if (rc == EL_OK)
        rc = setup_exec(s, "SELECT version FROM echolink_schema", version, msg, sizeof msg);
    if (rc) {
        setup_exec(s, "ROLLBACK", NULL, NULL, 0);
        return el_seterr(err, errlen, rc, "cannot migrate postgres database %s: %s",
                         s->label, msg);
    }
    if (*version >= SCHEMA_VERSION) {
        setup_exec(s, "ROLLBACK", NULL, NULL, 0);
        return *version > SCHEMA_VERSION ? too_new(s, *version, err, errlen) : EL_OK;
    }
    const struct migration *m = &migrations[*version];
    snprintf(sql, sizeof sql, "UPDATE echolink_schema SET version = %d", *version + 1);
    rc = setup_exec(s, m->sql, NULL, msg, sizeof msg);
    if (rc == EL_OK)
        rc = setup_exec(s, sql, NULL, msg, sizeof msg);
    if (rc == EL_OK)
        rc = setup_exec(s, "COMMIT", NULL, msg, sizeof msg);
    if (rc) {
        setup_exec(s, "ROLLBACK", NULL, NULL, 0);
        return el_seterr(err, errlen, rc,
                         "migrating postgres database %s to schema version %d (%s) failed: %s",
                         s->label, *version + 1, m->what, msg);
    }
    (*version)++;
    EL_INFO("store: %s migrated to schema version %d (%s)", s->label, *version, m->what);
    return EL_OK;
}

/* Brings the schema to SCHEMA_VERSION, one transaction per step (DDL is
 * transactional in PostgreSQL: a failed step leaves the previous version
 * intact). A database already at the current version takes no lock. */
static int migrate(pg_store *s, char *err, size_t errlen)
{
    char msg[512];
    int version = 0;
    /* 42P01 (no such table) on a new database reads as version 0. */
    if (setup_exec(s, "SELECT version FROM echolink_schema", &version, msg, sizeof msg))
        version = 0;
    if (version == SCHEMA_VERSION)
        return EL_OK;
    if (version > SCHEMA_VERSION)
        return too_new(s, version, err, errlen);
    for (int steps = 0; steps <= SCHEMA_VERSION; steps++) {
        int rc = migrate_step(s, &version, err, errlen);
        if (rc || version == SCHEMA_VERSION)
            return rc;
    }
    return el_seterr(err, errlen, EL_ERR_DB, "postgres database %s: migration did not end",
                     s->label);
}

/* "user:password@host" -> "user@host", and no query part: for messages
 * before the connection exists (it may be a bad URL). */
static void redact(const char *spec, char *out, size_t cap)
{
    snprintf(out, cap, "%s", spec);
    out[strcspn(out, "?")] = '\0';
    char *at = strrchr(out, '@');
    char *colon = strchr(out, ':');
    if (at && colon && colon < at)
        memmove(colon, at, strlen(at) + 1);
}

static void set_label(pg_store *s)
{
    const char *host = PQhost(s->conn);
    const char *port = PQport(s->conn);
    const char *db = PQdb(s->conn);
    snprintf(s->label, sizeof s->label, "%s%s%s/%s", host ? host : "",
             port && *port ? ":" : "", port ? port : "", db ? db : "");
}

static int connect_db(pg_store *s, const char *spec, char *err, size_t errlen)
{
    static const char scheme[] = "postgresql://";
    size_t n = sizeof scheme + strlen(spec);
    char *url = malloc(n);
    if (!url)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    snprintf(url, n, "%s%s", scheme, spec);
    /* Our defaults come before the URL, which may override them; the client
     * encoding comes after it: every string we hand over is UTF-8. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname",
                                "client_encoding", NULL};
    const char *const vals[] = {CONNECT_TIMEOUT_S, "echolinkd", url, "UTF8", NULL};
    s->conn = PQconnectdbParams(keys, vals, 1);
    free(url);
    if (!s->conn)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    PQsetNoticeProcessor(s->conn, notice_to_log, NULL);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char where[192], msg[512];
        redact(spec, where, sizeof where);
        return el_seterr(err, errlen, EL_ERR_IO,
                         "cannot connect to postgres database \"postgres://%s\": %s", where,
                         pg_message(s, NULL, msg, sizeof msg));
    }
    set_label(s);
    return session_setup(s, err, errlen);
}

el_store *el_store_pg_open(const char *spec, char *err, size_t errlen)
{
    if (!spec || !*spec) {
        el_seterr(err, errlen, EL_ERR_INVALID,
                  "postgres URL names no server; use \"postgres://USER@HOST:PORT/DB\"");
        return NULL;
    }
    pg_store *s = calloc(1, sizeof *s);
    if (!s) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->base.ops = &pg_ops;
    if (connect_db(s, spec, err, errlen) || migrate(s, err, errlen))
        goto fail;
    EL_INFO("store: opened postgres database %s (schema version %d)", s->label,
            SCHEMA_VERSION);
    return &s->base;
fail:
    pg_close(&s->base);
    return NULL;
}
