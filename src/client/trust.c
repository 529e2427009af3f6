/* trust.c - the TOFU store (see trust.h and docs/PROTOCOL.md §10.2).
 *
 * One table, one row per peer: the pinned bundle as raw bytes, the stored
 * state, and the pending bundle's sk and sk_sig while a change is pending (its
 * ik is the pinned ik: both hash to the peer ID). CHECK constraints make the
 * database itself refuse rows that break the state machine's invariants. */
#include "client/trust.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/err.h"

#define BUSY_TIMEOUT_MS 5000
#define SCHEMA_VERSION 1

/* Migration step i takes user_version i to i + 1; steps are only appended. */
static const char *const migrations[SCHEMA_VERSION] = {
    "CREATE TABLE pins ("
    " peer_id TEXT PRIMARY KEY NOT NULL CHECK (length(peer_id) = 32),"
    " ik BLOB NOT NULL CHECK (length(ik) = 32),"
    " sk BLOB NOT NULL CHECK (length(sk) = 32),"
    " sk_sig BLOB NOT NULL CHECK (length(sk_sig) = 64),"
    " state TEXT NOT NULL CHECK (state IN ('known', 'verified', 'changed')),"
    " pending_sk BLOB CHECK (pending_sk IS NULL OR length(pending_sk) = 32),"
    " pending_sk_sig BLOB CHECK (pending_sk_sig IS NULL OR length(pending_sk_sig) = 64),"
    " CHECK ((state = 'changed') = (pending_sk IS NOT NULL)),"
    " CHECK ((pending_sk IS NULL) = (pending_sk_sig IS NULL))"
    ") WITHOUT ROWID;",
};

/* Every statement, prepared once at open. */
#define STATEMENTS(X)                                                                      \
    X(GET, "SELECT ik, sk, sk_sig, state, pending_sk, pending_sk_sig FROM pins"           \
           " WHERE peer_id = ?1")                                                          \
    X(PIN, "INSERT INTO pins (peer_id, ik, sk, sk_sig, state) VALUES (?1, ?2, ?3, ?4, 'known')") \
    X(SET_PENDING, "UPDATE pins SET state = 'changed', pending_sk = ?2, pending_sk_sig = ?3" \
                   " WHERE peer_id = ?1")                                                  \
    X(ACCEPT, "UPDATE pins SET sk = pending_sk, sk_sig = pending_sk_sig, pending_sk = NULL," \
              " pending_sk_sig = NULL, state = 'known' WHERE peer_id = ?1 AND state = 'changed'") \
    X(REJECT, "UPDATE pins SET pending_sk = NULL, pending_sk_sig = NULL, state = 'known'"  \
              " WHERE peer_id = ?1 AND state = 'changed'")                                 \
    X(VERIFY, "UPDATE pins SET state = 'verified' WHERE peer_id = ?1 AND state <> 'changed'") \
    X(BEGIN, "BEGIN IMMEDIATE")                                                            \
    X(COMMIT, "COMMIT")                                                                    \
    X(ROLLBACK, "ROLLBACK")

#define X_ENUM(name, sql) S_##name,
#define X_SQL(name, sql) sql,
enum stmt_id { STATEMENTS(X_ENUM) S_COUNT };
static const char *const stmt_sql[S_COUNT] = {STATEMENTS(X_SQL)};

struct el_trust {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
};

/* ---- small helpers ---------------------------------------------------- */

static int db_fail(el_trust *t, const char *what, char *err, size_t errlen)
{
    return el_seterr(err, errlen, EL_ERR_DB, "trust store: %s: %s", what,
                     sqlite3_errmsg(t->db));
}

/* Runs a statement that returns no row, then resets it for the next use. */
static int run(el_trust *t, enum stmt_id id, const char *what, char *err, size_t errlen)
{
    sqlite3_stmt *st = t->stmt[id];
    int rc = sqlite3_step(st);
    int fail = rc != SQLITE_DONE;
    if (fail)
        db_fail(t, what, err, errlen);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return fail ? EL_ERR_DB : EL_OK;
}

static int begin(el_trust *t, char *err, size_t errlen)
{
    return run(t, S_BEGIN, "begin", err, errlen);
}

/* Ends the transaction: COMMIT when rc is EL_OK, else ROLLBACK (whose own
 * failure cannot make things worse than the error already returned). */
static int end(el_trust *t, int rc, char *err, size_t errlen)
{
    if (rc == EL_OK)
        return run(t, S_COMMIT, "commit", err, errlen);
    if (!sqlite3_get_autocommit(t->db))
        (void)run(t, S_ROLLBACK, "rollback", NULL, 0);
    return rc;
}

static int bind_blob(sqlite3_stmt *st, int i, const uint8_t *p, size_t n)
{
    return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC) == SQLITE_OK ? 0 : -1;
}

static int bind_peer(sqlite3_stmt *st, const char *peer_id)
{
    return sqlite3_bind_text(st, 1, peer_id, EL_PEER_ID_LEN, SQLITE_STATIC) == SQLITE_OK
               ? 0
               : -1;
}

/* Copies a BLOB column that must be exactly n bytes (the schema's CHECKs
 * guarantee it unless the file was tampered with). */
static int column_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t n)
{
    const void *p = sqlite3_column_blob(st, col);
    if (!p || sqlite3_column_bytes(st, col) != (int)n)
        return -1;
    memcpy(out, p, n);
    return 0;
}

static int parse_state(const char *s, el_trust_state *out)
{
    if (s && strcmp(s, "known") == 0)
        *out = EL_TRUST_KNOWN;
    else if (s && strcmp(s, "verified") == 0)
        *out = EL_TRUST_VERIFIED;
    else if (s && strcmp(s, "changed") == 0)
        *out = EL_TRUST_CHANGED;
    else
        return -1;
    return 0;
}

static int peer_ok(const char *peer_id, char *err, size_t errlen)
{
    if (!el_id_valid_peer_id(peer_id))
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "trust store: not a peer ID (32 characters of [a-z2-7])");
    return EL_OK;
}

/* ---- row access ------------------------------------------------------- */

/* Reads the row of peer_id: EL_OK, EL_ERR_NOT_FOUND or EL_ERR_DB. */
static int load(el_trust *t, const char *peer_id, el_trust_entry *e, char *err, size_t errlen)
{
    sqlite3_stmt *st = t->stmt[S_GET];
    int rc = EL_ERR_DB;
    memset(e, 0, sizeof *e);
    if (bind_peer(st, peer_id)) {
        db_fail(t, "bind", err, errlen);
        goto out;
    }
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = el_seterr(err, errlen, EL_ERR_NOT_FOUND, "trust store: no pin for %s", peer_id);
        goto out;
    }
    if (step != SQLITE_ROW) {
        db_fail(t, "read", err, errlen);
        goto out;
    }
    int bad = column_blob(st, 0, e->pinned.ik, EL_ID_KEY_LEN) ||
              column_blob(st, 1, e->pinned.sk, EL_ID_KEY_LEN) ||
              column_blob(st, 2, e->pinned.sk_sig, EL_ID_SIG_LEN) ||
              parse_state((const char *)sqlite3_column_text(st, 3), &e->state);
    if (!bad && e->state == EL_TRUST_CHANGED) {
        e->has_pending = true;
        memcpy(e->pending.ik, e->pinned.ik, EL_ID_KEY_LEN);
        bad = column_blob(st, 4, e->pending.sk, EL_ID_KEY_LEN) ||
              column_blob(st, 5, e->pending.sk_sig, EL_ID_SIG_LEN);
    }
    if (bad) {
        rc = el_seterr(err, errlen, EL_ERR_DB, "trust store: row of %s is corrupt", peer_id);
        goto out;
    }
    rc = EL_OK;
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc)
        memset(e, 0, sizeof *e);
    return rc;
}

static int pin(el_trust *t, const char *peer_id, const el_id_bundle *b, char *err,
               size_t errlen)
{
    sqlite3_stmt *st = t->stmt[S_PIN];
    if (bind_peer(st, peer_id) || bind_blob(st, 2, b->ik, EL_ID_KEY_LEN) ||
        bind_blob(st, 3, b->sk, EL_ID_KEY_LEN) || bind_blob(st, 4, b->sk_sig, EL_ID_SIG_LEN)) {
        sqlite3_clear_bindings(st);
        return db_fail(t, "bind", err, errlen);
    }
    return run(t, S_PIN, "pin", err, errlen);
}

static int set_pending(el_trust *t, const char *peer_id, const el_id_bundle *b, char *err,
                       size_t errlen)
{
    sqlite3_stmt *st = t->stmt[S_SET_PENDING];
    if (bind_peer(st, peer_id) || bind_blob(st, 2, b->sk, EL_ID_KEY_LEN) ||
        bind_blob(st, 3, b->sk_sig, EL_ID_SIG_LEN)) {
        sqlite3_clear_bindings(st);
        return db_fail(t, "bind", err, errlen);
    }
    return run(t, S_SET_PENDING, "record pending key", err, errlen);
}

/* Runs a one-parameter (peer_id) update that must touch exactly one row. */
static int update_one(el_trust *t, enum stmt_id id, const char *peer_id, const char *what,
                      char *err, size_t errlen)
{
    if (bind_peer(t->stmt[id], peer_id))
        return db_fail(t, "bind", err, errlen);
    int rc = run(t, id, what, err, errlen);
    if (rc == EL_OK && sqlite3_changes(t->db) != 1)
        rc = el_seterr(err, errlen, EL_ERR_DB, "trust store: %s of %s changed no row", what,
                       peer_id);
    return rc;
}

/* ---- the decision ----------------------------------------------------- */

/* The bundle must be authentic for this peer ID before it can be pinned or
 * even be called a key change. */
static int bundle_ok(const char *peer_id, const el_id_bundle *b, char *err, size_t errlen)
{
    char pid[EL_PEER_ID_LEN + 1];
    if (el_id_bundle_verify(b) != EL_OK)
        return el_seterr(err, errlen, EL_ERR_CRYPTO,
                         "trust store: sk_sig of %s's bundle does not verify", peer_id);
    int rc = el_id_peer_id(b->ik, pid);
    if (rc)
        return el_seterr(err, errlen, rc, "trust store: cannot hash ik");
    if (strcmp(pid, peer_id) != 0)
        return el_seterr(err, errlen, EL_ERR_CRYPTO,
                         "trust store: ik belongs to %s, not %s (a failed handshake, "
                         "not a key change)", pid, peer_id);
    return EL_OK;
}

static int same(const el_id_bundle *a, const el_id_bundle *b)
{
    return memcmp(a, b, sizeof *a) == 0; /* public data: no need for constant time */
}

/* Inside the transaction: decides and writes. */
static int decide(el_trust *t, const char *peer_id, const el_id_bundle *b,
                  el_trust_state *state, char *err, size_t errlen)
{
    el_trust_entry e;
    int rc = load(t, peer_id, &e, err, errlen);
    if (rc == EL_ERR_NOT_FOUND) {
        rc = pin(t, peer_id, b, err, errlen);
        if (rc == EL_OK)
            *state = EL_TRUST_NEW;
        return rc;
    }
    if (rc)
        return rc;
    if (same(b, &e.pinned) || (e.has_pending && same(b, &e.pending))) {
        /* Nothing new: report the stored state (CHANGED stays CHANGED even
         * for the old bundle: only the user ends a pending change). */
        *state = e.state;
        return EL_OK;
    }
    rc = set_pending(t, peer_id, b, err, errlen);
    if (rc == EL_OK)
        *state = EL_TRUST_CHANGED;
    return rc;
}

int el_trust_check(el_trust *t, const char *peer_id, const el_id_bundle *bundle,
                   el_trust_state *state, char *err, size_t errlen)
{
    if (!t || !bundle || !state)
        return el_seterr(err, errlen, EL_ERR_INVALID, "trust store: NULL argument");
    int rc = peer_ok(peer_id, err, errlen);
    if (rc == EL_OK)
        rc = bundle_ok(peer_id, bundle, err, errlen);
    if (rc)
        return rc;
    rc = begin(t, err, errlen);
    if (rc)
        return rc;
    el_trust_state s = EL_TRUST_CHANGED;
    rc = end(t, decide(t, peer_id, bundle, &s, err, errlen), err, errlen);
    if (rc == EL_OK)
        *state = s;
    return rc;
}

/* ---- the user's decisions --------------------------------------------- */

/* Loads the row inside a transaction and checks the state the operation
 * needs: want_changed 1 = a change must be pending, 0 = must not be. */
static int load_for(el_trust *t, const char *peer_id, int want_changed, el_trust_entry *e,
                    char *err, size_t errlen)
{
    int rc = load(t, peer_id, e, err, errlen);
    if (rc)
        return rc;
    if (want_changed && !e->has_pending)
        return el_seterr(err, errlen, EL_ERR_DENIED, "trust store: no key change pending for %s",
                         peer_id);
    if (!want_changed && e->has_pending)
        return el_seterr(err, errlen, EL_ERR_DENIED,
                         "trust store: a key change is pending for %s; accept or reject it first",
                         peer_id);
    return EL_OK;
}

static int accept_tx(el_trust *t, const char *peer_id, const el_id_bundle *expected, char *err,
                     size_t errlen)
{
    el_trust_entry e;
    int rc = load_for(t, peer_id, 1, &e, err, errlen);
    if (rc)
        return rc;
    if (expected && !same(expected, &e.pending))
        return el_seterr(err, errlen, EL_ERR_DENIED,
                         "trust store: %s's pending key changed again since it was shown; "
                         "not accepting it unseen", peer_id);
    return update_one(t, S_ACCEPT, peer_id, "accept change", err, errlen);
}

/* The start of every decision: the arguments checked, then a transaction
 * begun (which the caller must end() on EL_OK). */
static int begin_decision(el_trust *t, const char *peer_id, char *err, size_t errlen)
{
    if (!t)
        return el_seterr(err, errlen, EL_ERR_INVALID, "trust store: NULL argument");
    int rc = peer_ok(peer_id, err, errlen);
    if (rc == EL_OK)
        rc = begin(t, err, errlen);
    return rc;
}

int el_trust_accept_change(el_trust *t, const char *peer_id, const el_id_bundle *expected,
                           char *err, size_t errlen)
{
    int rc = begin_decision(t, peer_id, err, errlen);
    if (rc)
        return rc;
    return end(t, accept_tx(t, peer_id, expected, err, errlen), err, errlen);
}

/* The shared body of reject and verify: check the state, run one update. */
static int simple_tx(el_trust *t, const char *peer_id, int want_changed, enum stmt_id id,
                     const char *what, char *err, size_t errlen)
{
    el_trust_entry e;
    int rc = begin_decision(t, peer_id, err, errlen);
    if (rc)
        return rc;
    rc = load_for(t, peer_id, want_changed, &e, err, errlen);
    if (rc == EL_OK)
        rc = update_one(t, id, peer_id, what, err, errlen);
    return end(t, rc, err, errlen);
}

int el_trust_reject_change(el_trust *t, const char *peer_id, char *err, size_t errlen)
{
    return simple_tx(t, peer_id, 1, S_REJECT, "reject change", err, errlen);
}

int el_trust_set_verified(el_trust *t, const char *peer_id, char *err, size_t errlen)
{
    return simple_tx(t, peer_id, 0, S_VERIFY, "set verified", err, errlen);
}

int el_trust_get(el_trust *t, const char *peer_id, el_trust_entry *out, char *err,
                 size_t errlen)
{
    if (!t || !out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "trust store: NULL argument");
    int rc = peer_ok(peer_id, err, errlen);
    if (rc)
        return rc;
    return load(t, peer_id, out, err, errlen);
}

const char *el_trust_state_name(el_trust_state s)
{
    switch (s) {
    case EL_TRUST_NEW:
        return "new";
    case EL_TRUST_KNOWN:
        return "known";
    case EL_TRUST_VERIFIED:
        return "verified";
    case EL_TRUST_CHANGED:
        return "changed";
    }
    return "?";
}

/* ---- open / close ----------------------------------------------------- */

/* Creates the file with mode 0600 before SQLite sees it (SQLite would use
 * 0644), and refuses an existing file open to others. SQLite gives its
 * journal the database file's mode, so the journal is private too. */
static int prepare_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "cannot open trust store \"%s\": %s", path,
                         strerror(errno));
    int rc = EL_OK;
    if (fstat(fd, &st) != 0)
        rc = el_seterr(err, errlen, EL_ERR_IO, "cannot stat trust store \"%s\": %s", path,
                       strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = el_seterr(err, errlen, EL_ERR_INVALID, "trust store \"%s\" is not a regular file",
                       path);
    else if (st.st_mode & 077)
        rc = el_seterr(err, errlen, EL_ERR_DENIED,
                       "trust store \"%s\" is accessible by others (mode %04o); chmod 600 it",
                       path, (unsigned)st.st_mode & 07777);
    close(fd);
    return rc;
}

static int exec(el_trust *t, const char *sql, const char *what, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(t->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return EL_OK;
    el_seterr(err, errlen, EL_ERR_DB, "trust store: %s: %s", what,
              msg ? msg : sqlite3_errmsg(t->db));
    sqlite3_free(msg);
    return EL_ERR_DB;
}

static int user_version(el_trust *t, int *version, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(t->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return EL_OK;
    }
    sqlite3_finalize(st);
    return db_fail(t, "read schema version", err, errlen);
}

/* One transaction per step; re-reads the version under the write lock in
 * case another process migrated first. */
static int migrate(el_trust *t, const char *path, char *err, size_t errlen)
{
    for (;;) {
        int version = 0;
        int rc = exec(t, "BEGIN IMMEDIATE", "begin migration", err, errlen);
        if (rc == EL_OK)
            rc = user_version(t, &version, err, errlen);
        if (rc == EL_OK && version > SCHEMA_VERSION)
            rc = el_seterr(err, errlen, EL_ERR_DB,
                           "trust store \"%s\" has schema version %d, newer than %d that this "
                           "build knows; refusing to open it", path, version, SCHEMA_VERSION);
        if (rc == EL_OK && version == SCHEMA_VERSION)
            return exec(t, "COMMIT", "commit", err, errlen);
        if (rc == EL_OK)
            rc = exec(t, migrations[version], "migrate", err, errlen);
        if (rc == EL_OK) {
            char bump[48];
            snprintf(bump, sizeof bump, "PRAGMA user_version = %d", version + 1);
            rc = exec(t, bump, "migrate", err, errlen);
        }
        if (rc == EL_OK)
            rc = exec(t, "COMMIT", "commit migration", err, errlen);
        if (rc) {
            if (!sqlite3_get_autocommit(t->db))
                sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
}

static int prepare_all(el_trust *t, char *err, size_t errlen)
{
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(t->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &t->stmt[i],
                               NULL) != SQLITE_OK)
            return db_fail(t, "prepare", err, errlen);
    }
    return EL_OK;
}

int el_trust_open(el_trust **out, const char *path, char *err, size_t errlen)
{
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "trust store: NULL argument");
    *out = NULL;
    if (!path || !*path)
        return el_seterr(err, errlen, EL_ERR_INVALID, "trust store: no path");
    int memory = strcmp(path, ":memory:") == 0;
    int rc = memory ? EL_OK : prepare_file(path, err, errlen);
    if (rc)
        return rc;
    el_trust *t = calloc(1, sizeof *t);
    if (!t)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    /* No SQLITE_OPEN_URI: a file name is a file name, never a set of
     * options. The file exists by now, so no SQLITE_OPEN_CREATE either. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (memory ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &t->db, flags, NULL) != SQLITE_OK) {
        rc = el_seterr(err, errlen, EL_ERR_IO, "cannot open trust store \"%s\": %s", path,
                       t->db ? sqlite3_errmsg(t->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(t->db, 1);
    sqlite3_busy_timeout(t->db, BUSY_TIMEOUT_MS);
    rc = migrate(t, path, err, errlen);
    if (rc == EL_OK)
        rc = prepare_all(t, err, errlen);
    if (rc)
        goto fail;
    *out = t;
    return EL_OK;
fail:
    el_trust_close(t);
    return rc;
}

void el_trust_close(el_trust *t)
{
    if (!t)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(t->stmt[i]);
    sqlite3_close(t->db); /* every statement is finalized: this cannot be BUSY */
    free(t);
}
