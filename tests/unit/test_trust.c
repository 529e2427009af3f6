/* test_trust.c - src/client/trust: the TOFU state machine of PROTOCOL.md
 * §10.2 (pin on first use, key change never accepted silently, the user's
 * decisions), persistence across close/reopen of a file database, the file's
 * mode and the schema version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "base/err.h"
#include "client/trust.h"
#include "crypto/identity.h"

/* ---- helpers ---------------------------------------------------------- */

/* A peer with a fixed identity key (seed byte `who`) and static key
 * (`version`): same `who`, other `version` = the same peer after a key
 * change (same ik, so same peer ID, new sk and sk_sig). */
typedef struct {
    el_id_bundle b;
    char peer_id[EL_PEER_ID_LEN + 1];
} peer;

static peer make_peer(uint8_t who, uint8_t version)
{
    uint8_t seed[EL_ID_KEY_LEN], skp[EL_ID_KEY_LEN];
    el_identity *id = NULL;
    char err[256] = "";
    memset(seed, who, sizeof seed);
    memset(skp, (uint8_t)(who ^ 0x5a ^ version), sizeof skp);
    skp[0] = version;
    if (el_identity_new(&id, seed, skp, err, sizeof err) != EL_OK)
        fail_msg("el_identity_new: %s", err);
    peer p;
    p.b = *el_identity_bundle(id);
    memcpy(p.peer_id, el_identity_peer_id(id), sizeof p.peer_id);
    el_identity_free(id);
    return p;
}

static el_trust *open_mem(void)
{
    el_trust *t = NULL;
    char err[256] = "";
    if (el_trust_open(&t, ":memory:", err, sizeof err) != EL_OK)
        fail_msg("el_trust_open: %s", err);
    return t;
}

static el_trust_state check(el_trust *t, const peer *p)
{
    el_trust_state s = 0;
    char err[256] = "";
    int rc = el_trust_check(t, p->peer_id, &p->b, &s, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("el_trust_check: %d %s", rc, err);
    return s;
}

static el_trust_entry get(el_trust *t, const peer *p)
{
    el_trust_entry e;
    char err[256] = "";
    int rc = el_trust_get(t, p->peer_id, &e, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("el_trust_get: %d %s", rc, err);
    return e;
}

static void assert_bundle(const el_id_bundle *got, const el_id_bundle *want)
{
    assert_memory_equal(got, want, sizeof *want);
}

static void assert_pinned(el_trust *t, const peer *p, const el_id_bundle *want)
{
    el_trust_entry e = get(t, p);
    assert_bundle(&e.pinned, want);
}

static void assert_pending(el_trust *t, const peer *p, const el_id_bundle *want)
{
    el_trust_entry e = get(t, p);
    assert_true(e.has_pending);
    assert_bundle(&e.pending, want);
}

/* p's entry is CHANGED: `pinned` still pinned, `pending` awaiting a decision. */
static void assert_changed(el_trust *t, const peer *p, const el_id_bundle *pinned,
                           const el_id_bundle *pending)
{
    el_trust_entry e = get(t, p);
    assert_int_equal(e.state, EL_TRUST_CHANGED);
    assert_bundle(&e.pinned, pinned);
    assert_true(e.has_pending);
    assert_bundle(&e.pending, pending);
}

/* ---- state machine ---------------------------------------------------- */

static void test_first_use(void **state)
{
    (void)state;
    el_trust *t = open_mem();
    peer a = make_peer(1, 0), b = make_peer(2, 0);
    char err[256] = "";
    el_trust_entry e;

    assert_int_equal(el_trust_get(t, a.peer_id, &e, err, sizeof err), EL_ERR_NOT_FOUND);
    assert_int_equal(check(t, &a), EL_TRUST_NEW);
    e = get(t, &a);
    assert_int_equal(e.state, EL_TRUST_KNOWN); /* NEW is an event, KNOWN is stored */
    assert_bundle(&e.pinned, &a.b);
    assert_false(e.has_pending);
    assert_int_equal(check(t, &a), EL_TRUST_KNOWN);
    assert_int_equal(check(t, &a), EL_TRUST_KNOWN);

    /* Peers are independent. */
    assert_int_equal(check(t, &b), EL_TRUST_NEW);
    assert_int_equal(check(t, &a), EL_TRUST_KNOWN);

    /* Verification sticks while the bundle stays the same. */
    assert_int_equal(el_trust_set_verified(t, a.peer_id, err, sizeof err), EL_OK);
    assert_int_equal(check(t, &a), EL_TRUST_VERIFIED);
    assert_int_equal(get(t, &a).state, EL_TRUST_VERIFIED);
    assert_int_equal(el_trust_set_verified(t, a.peer_id, err, sizeof err), EL_OK);
    assert_int_equal(get(t, &b).state, EL_TRUST_KNOWN);

    assert_string_equal(el_trust_state_name(EL_TRUST_NEW), "new");
    assert_string_equal(el_trust_state_name(EL_TRUST_KNOWN), "known");
    assert_string_equal(el_trust_state_name(EL_TRUST_VERIFIED), "verified");
    assert_string_equal(el_trust_state_name(EL_TRUST_CHANGED), "changed");
    el_trust_close(t);
}

static void test_key_change_accept(void **state)
{
    (void)state;
    el_trust *t = open_mem();
    peer old = make_peer(3, 0), neu = make_peer(3, 1), third = make_peer(3, 2);
    char err[256] = "";
    assert_string_equal(old.peer_id, neu.peer_id);
    assert_memory_not_equal(old.b.sk, neu.b.sk, EL_ID_KEY_LEN);

    assert_int_equal(check(t, &old), EL_TRUST_NEW);
    assert_int_equal(el_trust_set_verified(t, old.peer_id, err, sizeof err), EL_OK);

    /* A new sk: changed, the old pin kept, the new bundle pending, and the
     * verification gone. */
    assert_int_equal(check(t, &neu), EL_TRUST_CHANGED);
    assert_changed(t, &old, &old.b, &neu.b);

    /* Still changed whatever arrives: the new one again, or the old one. */
    assert_int_equal(check(t, &neu), EL_TRUST_CHANGED);
    assert_int_equal(check(t, &old), EL_TRUST_CHANGED);
    assert_pinned(t, &old, &old.b);

    /* No verifying around a pending decision. */
    assert_int_equal(el_trust_set_verified(t, old.peer_id, err, sizeof err), EL_ERR_DENIED);
    assert_non_null(strstr(err, "pending"));

    /* A third bundle replaces the pending one; accepting what the user saw
     * (neu) is then refused and changes nothing. */
    assert_int_equal(check(t, &third), EL_TRUST_CHANGED);
    assert_pending(t, &old, &third.b);
    assert_int_equal(el_trust_accept_change(t, old.peer_id, &neu.b, err, sizeof err),
                     EL_ERR_DENIED);
    assert_changed(t, &old, &old.b, &third.b);

    /* The user accepts the pending bundle: pinned, KNOWN (not verified). */
    assert_int_equal(el_trust_accept_change(t, old.peer_id, &third.b, err, sizeof err), EL_OK);
    el_trust_entry e = get(t, &old);
    assert_int_equal(e.state, EL_TRUST_KNOWN);
    assert_bundle(&e.pinned, &third.b);
    assert_false(e.has_pending);
    assert_int_equal(check(t, &third), EL_TRUST_KNOWN);

    /* Now the old bundle is the stranger. */
    assert_int_equal(check(t, &old), EL_TRUST_CHANGED);
    assert_int_equal(el_trust_accept_change(t, old.peer_id, NULL, err, sizeof err), EL_OK);
    assert_pinned(t, &old, &old.b);
    assert_int_equal(check(t, &old), EL_TRUST_KNOWN);

    /* Nothing pending: accept and reject are refused. */
    assert_int_equal(el_trust_accept_change(t, old.peer_id, NULL, err, sizeof err),
                     EL_ERR_DENIED);
    assert_non_null(strstr(err, "no key change pending"));
    assert_int_equal(el_trust_reject_change(t, old.peer_id, err, sizeof err), EL_ERR_DENIED);
    el_trust_close(t);
}

static void test_key_change_reject(void **state)
{
    (void)state;
    el_trust *t = open_mem();
    peer old = make_peer(4, 0), neu = make_peer(4, 1);
    char err[256] = "";
    assert_int_equal(check(t, &old), EL_TRUST_NEW);
    assert_int_equal(el_trust_set_verified(t, old.peer_id, err, sizeof err), EL_OK);
    assert_int_equal(check(t, &neu), EL_TRUST_CHANGED);
    assert_int_equal(el_trust_reject_change(t, old.peer_id, err, sizeof err), EL_OK);
    el_trust_entry e = get(t, &old);
    assert_int_equal(e.state, EL_TRUST_KNOWN); /* the change cost the verification */
    assert_bundle(&e.pinned, &old.b);
    assert_false(e.has_pending);
    assert_int_equal(check(t, &old), EL_TRUST_KNOWN);
    /* Rejected is not forgotten: the new key is a change again. */
    assert_int_equal(check(t, &neu), EL_TRUST_CHANGED);
    assert_pinned(t, &old, &old.b);
    el_trust_close(t);
}

/* Bundles that are not this peer's are refused, and nothing is stored. */
static void test_refusals(void **state)
{
    (void)state;
    el_trust *t = open_mem();
    peer a = make_peer(5, 0), b = make_peer(6, 0);
    el_trust_state s = 0;
    el_trust_entry e;
    char err[256] = "";

    /* b's bundle presented as a: an ik mismatch is a failed handshake. */
    assert_int_equal(el_trust_check(t, a.peer_id, &b.b, &s, err, sizeof err), EL_ERR_CRYPTO);
    assert_non_null(strstr(err, "not a key change"));
    assert_int_equal(el_trust_get(t, a.peer_id, &e, err, sizeof err), EL_ERR_NOT_FOUND);

    /* A forged sk_sig, first use and after pinning. */
    el_id_bundle forged = a.b;
    forged.sk[0] ^= 1;
    assert_int_equal(el_trust_check(t, a.peer_id, &forged, &s, err, sizeof err), EL_ERR_CRYPTO);
    assert_int_equal(el_trust_get(t, a.peer_id, &e, err, sizeof err), EL_ERR_NOT_FOUND);
    assert_int_equal(check(t, &a), EL_TRUST_NEW);
    assert_int_equal(el_trust_check(t, a.peer_id, &forged, &s, err, sizeof err), EL_ERR_CRYPTO);
    assert_int_equal(el_trust_check(t, a.peer_id, &b.b, &s, err, sizeof err), EL_ERR_CRYPTO);
    e = get(t, &a);
    assert_int_equal(e.state, EL_TRUST_KNOWN);
    assert_false(e.has_pending);

    /* Malformed peer IDs and NULLs. */
    static const char *const bad_ids[] = {"", "abc", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                                          "abcdefghijklmnopqrstuvwxyz2345678",
                                          "abcdefghijklmnopqrstuvwxyz234561"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        assert_int_equal(el_trust_check(t, bad_ids[i], &a.b, &s, err, sizeof err),
                         EL_ERR_INVALID);
        assert_int_equal(el_trust_get(t, bad_ids[i], &e, err, sizeof err), EL_ERR_INVALID);
        assert_int_equal(el_trust_set_verified(t, bad_ids[i], err, sizeof err), EL_ERR_INVALID);
    }
    assert_int_equal(el_trust_check(t, NULL, &a.b, &s, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_trust_check(t, a.peer_id, NULL, &s, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_trust_check(t, a.peer_id, &a.b, NULL, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_trust_check(NULL, a.peer_id, &a.b, &s, err, sizeof err), EL_ERR_INVALID);

    /* Decisions about an unknown peer. */
    assert_int_equal(el_trust_set_verified(t, b.peer_id, err, sizeof err), EL_ERR_NOT_FOUND);
    assert_int_equal(el_trust_accept_change(t, b.peer_id, NULL, err, sizeof err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_trust_reject_change(t, b.peer_id, err, sizeof err), EL_ERR_NOT_FOUND);
    el_trust_close(t);
    el_trust_close(NULL);
}

/* ---- files ------------------------------------------------------------ */

typedef struct {
    char dir[64];
    char path[128];
} tmpdir;

static void tmp_make(tmpdir *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/el_trust_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/trust.db", t->dir);
}

static void tmp_remove(tmpdir *t)
{
    char extra[160];
    snprintf(extra, sizeof extra, "%s-journal", t->path);
    unlink(extra);
    unlink(t->path);
    assert_int_equal(rmdir(t->dir), 0);
}

static el_trust *open_file(const char *path)
{
    el_trust *t = NULL;
    char err[256] = "";
    if (el_trust_open(&t, path, err, sizeof err) != EL_OK)
        fail_msg("el_trust_open(%s): %s", path, err);
    return t;
}

static void test_persistence(void **state)
{
    (void)state;
    tmpdir d;
    tmp_make(&d);
    peer a = make_peer(7, 0), a2 = make_peer(7, 1), b = make_peer(8, 0), c = make_peer(9, 0);
    char err[256] = "";

    mode_t old = umask(0); /* the store must not rely on the caller's umask */
    el_trust *t = open_file(d.path);
    umask(old);
    struct stat st;
    assert_int_equal(stat(d.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(check(t, &a), EL_TRUST_NEW);
    assert_int_equal(check(t, &b), EL_TRUST_NEW);
    assert_int_equal(check(t, &c), EL_TRUST_NEW);
    assert_int_equal(el_trust_set_verified(t, b.peer_id, err, sizeof err), EL_OK);
    assert_int_equal(el_trust_set_verified(t, a.peer_id, err, sizeof err), EL_OK);
    assert_int_equal(check(t, &a2), EL_TRUST_CHANGED);
    el_trust_close(t);

    /* Everything survives, including the pending change. */
    t = open_file(d.path);
    assert_int_equal(check(t, &b), EL_TRUST_VERIFIED);
    assert_int_equal(check(t, &c), EL_TRUST_KNOWN);
    assert_changed(t, &a, &a.b, &a2.b);
    assert_int_equal(check(t, &a), EL_TRUST_CHANGED);

    /* A second handle on the same file sees writes of the first. */
    el_trust *t2 = open_file(d.path);
    assert_int_equal(el_trust_accept_change(t, a.peer_id, &a2.b, err, sizeof err), EL_OK);
    el_trust_entry e = get(t2, &a);
    assert_int_equal(e.state, EL_TRUST_KNOWN);
    assert_bundle(&e.pinned, &a2.b);
    el_trust_close(t2);
    el_trust_close(t);

    t = open_file(d.path);
    assert_int_equal(check(t, &a2), EL_TRUST_KNOWN);
    el_trust_close(t);

    /* The schema is versioned. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st2 = NULL;
    assert_int_equal(sqlite3_open(d.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st2, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st2), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st2, 0), 1);
    sqlite3_finalize(st2);
    /* The database refuses rows that break the invariants. */
    assert_int_not_equal(sqlite3_exec(db, "UPDATE pins SET state = 'changed'", NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "UPDATE pins SET sk = x'00'", NULL, NULL, NULL),
                         SQLITE_OK);
    /* A newer schema than this build knows is refused. */
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    el_trust *t3 = (el_trust *)1;
    assert_int_equal(el_trust_open(&t3, d.path, err, sizeof err), EL_ERR_DB);
    assert_null(t3);
    assert_non_null(strstr(err, "schema version 99"));
    tmp_remove(&d);
}

static void test_file_mode(void **state)
{
    (void)state;
    tmpdir d;
    tmp_make(&d);
    char err[256] = "";
    el_trust *t = open_file(d.path);
    el_trust_close(t);

    assert_int_equal(chmod(d.path, 0644), 0);
    t = (el_trust *)1;
    assert_int_equal(el_trust_open(&t, d.path, err, sizeof err), EL_ERR_DENIED);
    assert_null(t);
    assert_non_null(strstr(err, "(mode 0644); chmod 600 it"));
    assert_int_equal(chmod(d.path, 0660), 0);
    assert_int_equal(el_trust_open(&t, d.path, err, sizeof err), EL_ERR_DENIED);
    assert_int_equal(chmod(d.path, 0600), 0);
    t = open_file(d.path);
    el_trust_close(t);

    /* Not a database, not a file, no path. */
    FILE *f = fopen(d.path, "w");
    assert_non_null(f);
    fputs("this is not an SQLite database, just some text that is long enough......", f);
    fclose(f);
    assert_int_equal(el_trust_open(&t, d.path, err, sizeof err), EL_ERR_DB);
    assert_null(t);
    assert_int_equal(el_trust_open(&t, d.dir, err, sizeof err), EL_ERR_IO);
    assert_int_equal(el_trust_open(&t, "", err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_trust_open(&t, NULL, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_trust_open(NULL, ":memory:", err, sizeof err), EL_ERR_INVALID);
    tmp_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use),
        cmocka_unit_test(test_key_change_accept),
        cmocka_unit_test(test_key_change_reject),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_file_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
