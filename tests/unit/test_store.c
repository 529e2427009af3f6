/* test_store.c - el_store against every backend URL (src/store/store_sqlite.c
 * and src/store/store_pg.c), plus the specifics of each.
 *
 * The generic tests run once per URL in EL_TEST_STORE_URL (one URL, or
 * several separated by white space); the default is
 * "sqlite::memory: sqlite:@tmp", where "sqlite:@tmp" stands for a file in a
 * fresh mkdtemp directory under /tmp that is removed at the end. Against
 * PostgreSQL, tests/harness/postgres.sh starts a private server and sets it:
 *   tests/harness/postgres.sh run ./test_store
 * Such a database may be shared between tests and runs, so every test makes
 * its own peer IDs and ids (random per run) and never assumes an empty
 * database. Only the few checks that must see an empty table (purge counts)
 * use a time range no other test touches.
 *
 * The SQLite-only tests (URL errors, files that cannot be opened, schema
 * versions, pragmas) run once, with files in the same temporary directory.
 * The PostgreSQL-only tests (schema versions, a failed migration) run once
 * for the first postgres:// URL; the failed migration needs
 * EL_PG_ADMIN_URL (set by postgres.sh) to create a database of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"
#include "store/store.h"

#include <ftw.h>
#include <libpq-fe.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

/* Times are injected: the store never reads the clock. */
#define T0 INT64_C(1700000000000)
/* Far future, for the purge test: no other test puts envelopes this late. */
#define T_PURGE INT64_C(4102444800000)

static char tmpdir[PATH_MAX];

/* ---- Helpers ------------------------------------------------------------ */

/* Warnings logged by the store mean a database fault: the generic tests must
 * produce none. */
static int log_warnings;
static char log_last[512];

static void log_capture(el_log_level level, const char *file, int line, const char *msg,
                        void *user)
{
    (void)file;
    (void)line;
    (void)user;
    if (level <= EL_LOG_WARN) {
        log_warnings++;
        snprintf(log_last, sizeof log_last, "%s", msg);
    }
}

static void check_contains(const char *hay, const char *needle, const char *file,
                           int line)
{
    if (!hay || !strstr(hay, needle)) {
        print_error("%s:%d: \"%s\" does not contain \"%s\"\n", file, line,
                    hay ? hay : "(null)", needle);
        fail();
    }
}
#define assert_contains(hay, needle) check_contains((hay), (needle), __FILE__, __LINE__)

static uint8_t run_tag[8];
static uint32_t id_counter;

/* A peer ID unique to this run: base32 of (run tag, counter), 32 characters
 * of [a-z2-7] like real ones. */
static void new_peer(char out[EL_STORE_PEER_ID_LEN + 1])
{
    uint8_t raw[20] = {0};
    uint32_t n = ++id_counter;
    memcpy(raw, run_tag, sizeof run_tag);
    raw[8] = (uint8_t)(n >> 24);
    raw[9] = (uint8_t)(n >> 16);
    raw[10] = (uint8_t)(n >> 8);
    raw[11] = (uint8_t)n;
    assert_int_equal(el_base32_encode(raw, sizeof raw, out, EL_STORE_PEER_ID_LEN + 1),
                     EL_STORE_PEER_ID_LEN);
}

/* A group or envelope id unique to this run. */
static void new_id(char out[EL_STORE_ID_MAX + 1], const char *prefix)
{
    char tag[2 * sizeof run_tag + 1];
    el_hex_encode(run_tag, sizeof run_tag, tag, sizeof tag);
    snprintf(out, EL_STORE_ID_MAX + 1, "%s-%s-%u", prefix, tag, (unsigned)++id_counter);
}

typedef struct {
    const char *url;
    el_store *st;
    char err[512];
} fixture;

/* Creates a user with a fresh peer ID. */
static void mkuser(fixture *f, char peer[EL_STORE_PEER_ID_LEN + 1])
{
    new_peer(peer);
    assert_int_equal(el_store_user_login(f->st, peer, "ik_KEY-0", "sk_KEY-0", "sig_SIG-0",
                                         NULL, T0, f->err, sizeof f->err),
                     1);
}

static bool url_is_ephemeral(const char *url)
{
    return strcmp(url, "sqlite::memory:") == 0;
}

/* Collects what a list delivers. */
#define MAX_ITEMS 16
typedef struct {
    char items[MAX_ITEMS][EL_STORE_ID_MAX + 1];
    int64_t times[MAX_ITEMS];
    int n;
    int stop_after; /* stop after this many rows (0: never) ... */
    int stop_with;  /* ... returning this */
} collect;

static int collect_add(collect *c, const char *s, int64_t t)
{
    assert_true(c->n < MAX_ITEMS);
    snprintf(c->items[c->n], sizeof c->items[0], "%s", s);
    c->times[c->n] = t;
    c->n++;
    return (c->stop_after && c->n >= c->stop_after) ? c->stop_with : 0;
}

static int collect_peer(const char *peer, void *user)
{
    return collect_add(user, peer, 0);
}

static int collect_member(const char *peer, int64_t joined_at, void *user)
{
    return collect_add(user, peer, joined_at);
}

static int collect_group(const el_store_group *g, void *user)
{
    return collect_add(user, g->group_id, g->created_at);
}

static bool has_item(const collect *c, const char *s)
{
    for (int i = 0; i < c->n; i++) {
        if (strcmp(c->items[i], s) == 0)
            return true;
    }
    return false;
}

/* ---- Fixture ------------------------------------------------------------ */

static int fx_setup(void **state)
{
    const char *url = *state;
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->url = url;
    f->st = el_store_open(url, f->err, sizeof f->err);
    if (!f->st) {
        print_error("cannot open %s: %s\n", url, f->err);
        free(f);
        return -1;
    }
    log_warnings = 0;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fixture *f = *state;
    el_store_free(f->st);
    free(f);
    if (log_warnings) {
        print_error("the store logged %d warning(s), last: %s\n", log_warnings, log_last);
        return -1;
    }
    return 0;
}

/* ---- Generic tests: basics and users ------------------------------------ */

static void t_basics(void **state)
{
    fixture *f = *state;
    assert_int_equal(el_store_ping(f->st), EL_OK);
    if (strncmp(f->url, "sqlite:", 7) == 0)
        assert_string_equal(el_store_backend_name(f->st), "sqlite");
    if (strncmp(f->url, "postgres", 8) == 0)
        assert_string_equal(el_store_backend_name(f->st), "postgres");
    assert_true(el_store_schema_version(f->st, NULL, 0) >= 1);

    /* err may be NULL everywhere. */
    char p[EL_STORE_PEER_ID_LEN + 1];
    new_peer(p);
    assert_int_equal(el_store_user_exists(f->st, p, NULL, 0), 0);
    assert_int_equal(el_store_user_exists(f->st, "nope", NULL, 0), EL_ERR_INVALID);
    assert_int_equal(el_store_user_get(f->st, p, &(el_store_user){0}, NULL, 0, NULL, 0),
                     EL_ERR_NOT_FOUND);
}

static void t_user_login_get(void **state)
{
    fixture *f = *state;
    char p[EL_STORE_PEER_ID_LEN + 1];
    new_peer(p);
    el_store_user u;

    assert_int_equal(el_store_user_exists(f->st, p, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_user_login(f->st, p, "IK1", "SK1", "SIG1", "Alice", T0, f->err,
                                         sizeof f->err),
                     1);
    assert_int_equal(el_store_user_exists(f->st, p, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_user_get(f->st, p, &u, NULL, 0, f->err, sizeof f->err), EL_OK);
    assert_string_equal(u.peer_id, p);
    assert_string_equal(u.ik, "IK1");
    assert_string_equal(u.sk, "SK1");
    assert_string_equal(u.sk_sig, "SIG1");
    assert_true(u.has_name);
    assert_string_equal(u.name, "Alice");
    assert_false(u.has_avatar);
    assert_int_equal(u.avatar_len, 0);
    assert_int_equal(u.created_at, T0);
    assert_int_equal(u.last_seen, T0);

    /* A later login stores the latest bundle; NULL name keeps the name. */
    assert_int_equal(el_store_user_login(f->st, p, "IK1", "SK2", "SIG2", NULL, T0 + 10, f->err,
                                         sizeof f->err),
                     0);
    assert_int_equal(el_store_user_get(f->st, p, &u, NULL, 0, f->err, sizeof f->err), EL_OK);
    assert_string_equal(u.sk, "SK2");
    assert_string_equal(u.sk_sig, "SIG2");
    assert_string_equal(u.name, "Alice");
    assert_int_equal(u.created_at, T0);
    assert_int_equal(u.last_seen, T0 + 10);

    /* A given name replaces it. */
    assert_int_equal(el_store_user_login(f->st, p, "IK1", "SK2", "SIG2", "Bob", T0 + 11,
                                         f->err, sizeof f->err),
                     0);
    assert_int_equal(el_store_user_get(f->st, p, &u, NULL, 0, f->err, sizeof f->err), EL_OK);
    assert_string_equal(u.name, "Bob");

    /* A new user without a name has none. */
    char q[EL_STORE_PEER_ID_LEN + 1];
    mkuser(f, q);
    assert_int_equal(el_store_user_get(f->st, q, &u, NULL, 0, f->err, sizeof f->err), EL_OK);
    assert_false(u.has_name);
    assert_string_equal(u.name, "");

    /* touch */
    assert_int_equal(el_store_user_touch(f->st, p, T0 + 20, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_store_user_get(f->st, p, &u, NULL, 0, f->err, sizeof f->err), EL_OK);
    assert_int_equal(u.last_seen, T0 + 20);

    /* Unknown peers. */
    char r[EL_STORE_PEER_ID_LEN + 1];
    new_peer(r);
    assert_int_equal(el_store_user_get(f->st, r, &u, NULL, 0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_contains(f->err, "unknown peer");
    assert_int_equal(el_store_user_touch(f->st, r, T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_user_exists(f->st, r, f->err, sizeof f->err), 0);
}

static void t_user_profile(void **state)
{
    fixture *f = *state;
    char p[EL_STORE_PEER_ID_LEN + 1];
    mkuser(f, p);
    el_store_user u;
    static char avatar[EL_STORE_AVATAR_MAX + 2];
    const char *data_url = "data:image/png;base64,iVBORw0KGgo=";

    assert_int_equal(el_store_user_set_profile(f->st, p, EL_STORE_PROFILE_NAME, "Zoë",
                                               "ignored", f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_user_get(f->st, p, &u, avatar, sizeof avatar, f->err,
                                       sizeof f->err),
                     EL_OK);
    assert_string_equal(u.name, "Zoë");
    assert_false(u.has_avatar); /* the avatar was not selected */
    assert_string_equal(avatar, "");

    assert_int_equal(el_store_user_set_profile(f->st, p, EL_STORE_PROFILE_AVATAR, NULL,
                                               data_url, f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_user_get(f->st, p, &u, avatar, sizeof avatar, f->err,
                                       sizeof f->err),
                     EL_OK);
    assert_string_equal(u.name, "Zoë"); /* kept */
    assert_true(u.has_avatar);
    assert_int_equal(u.avatar_len, strlen(data_url));
    assert_string_equal(avatar, data_url);

    /* The avatar buffer must fit; *out is still filled. */
    char small[8];
    memset(&u, 0, sizeof u);
    assert_int_equal(el_store_user_get(f->st, p, &u, small, sizeof small, f->err,
                                       sizeof f->err),
                     EL_ERR_TOO_LARGE);
    assert_int_equal(u.avatar_len, strlen(data_url));
    assert_string_equal(u.peer_id, p);

    /* Limits: name 64 bytes, avatar 32 KiB. */
    char name[EL_STORE_NAME_MAX + 2];
    memset(name, 'n', EL_STORE_NAME_MAX);
    name[EL_STORE_NAME_MAX] = '\0';
    assert_int_equal(el_store_user_set_profile(f->st, p, EL_STORE_PROFILE_NAME, name, NULL,
                                               f->err, sizeof f->err),
                     EL_OK);
    strcat(name, "n");
    assert_int_equal(el_store_user_set_profile(f->st, p, EL_STORE_PROFILE_NAME, name, NULL,
                                               f->err, sizeof f->err),
                     EL_ERR_TOO_LARGE);
    assert_contains(f->err, "name");
    memset(avatar, 'a', EL_STORE_AVATAR_MAX);
    avatar[EL_STORE_AVATAR_MAX] = '\0';
    assert_int_equal(el_store_user_set_profile(f->st, p, EL_STORE_PROFILE_AVATAR, NULL,
                                               avatar, f->err, sizeof f->err),
                     EL_OK);
    avatar[EL_STORE_AVATAR_MAX] = 'a';
    avatar[EL_STORE_AVATAR_MAX + 1] = '\0';
    assert_int_equal(el_store_user_set_profile(f->st, p, EL_STORE_PROFILE_AVATAR, NULL,
                                               avatar, f->err, sizeof f->err),
                     EL_ERR_TOO_LARGE);
    assert_int_equal(el_store_user_get(f->st, p, &u, avatar, sizeof avatar, f->err,
                                       sizeof f->err),
                     EL_OK);
    assert_int_equal(u.avatar_len, EL_STORE_AVATAR_MAX); /* the rejected one left no trace */
    assert_int_equal(strlen(avatar), EL_STORE_AVATAR_MAX);

    /* Invalid UTF-8: overlong, surrogate, truncated, stray continuation. */
    static const char *const bad_utf8[] = {"\xc0\xaf", "\xed\xa0\x80", "ab\xe2\x82",
                                           "\x80", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++)
        assert_int_equal(el_store_user_set_profile(f->st, p, EL_STORE_PROFILE_NAME,
                                                   bad_utf8[i], NULL, f->err, sizeof f->err),
                         EL_ERR_INVALID);
    /* 4-byte UTF-8 is fine. */
    assert_int_equal(el_store_user_set_profile(f->st, p, EL_STORE_PROFILE_NAME,
                                               "\xf0\x9f\x98\x80 ok", NULL, f->err,
                                               sizeof f->err),
                     EL_OK);

    /* "" is a name; NULL erases it. */
    assert_int_equal(el_store_user_set_profile(f->st, p, EL_STORE_PROFILE_NAME, "", NULL,
                                               f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_user_get(f->st, p, &u, NULL, 0, f->err, sizeof f->err), EL_OK);
    assert_true(u.has_name);
    assert_string_equal(u.name, "");

    /* delete_profile erases both, keeps the keys. */
    assert_int_equal(el_store_user_delete_profile(f->st, p, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_store_user_get(f->st, p, &u, avatar, sizeof avatar, f->err,
                                       sizeof f->err),
                     EL_OK);
    assert_false(u.has_name);
    assert_false(u.has_avatar);
    assert_int_equal(u.avatar_len, 0);
    assert_string_equal(avatar, "");
    assert_string_equal(u.ik, "ik_KEY-0");

    /* No fields is a no-op; unknown field bits and unknown peers fail. */
    assert_int_equal(el_store_user_set_profile(f->st, p, 0, NULL, NULL, f->err,
                                               sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_user_set_profile(f->st, p, 4, NULL, NULL, f->err,
                                               sizeof f->err),
                     EL_ERR_INVALID);
    char r[EL_STORE_PEER_ID_LEN + 1];
    new_peer(r);
    assert_int_equal(el_store_user_set_profile(f->st, r, EL_STORE_PROFILE_NAME, "x", NULL,
                                               f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_user_delete_profile(f->st, r, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
}

static void t_user_validation(void **state)
{
    fixture *f = *state;
    char good[EL_STORE_PEER_ID_LEN + 1];
    new_peer(good);
    char buf[EL_STORE_PEER_ID_LEN + 2];

    static const char *const bad_peers[] = {
        "",
        "abcdefghijklmnopqrstuvwxyz23456",   /* 31 */
        "abcdefghijklmnopqrstuvwxyz2345677", /* 33 */
        "Abcdefghijklmnopqrstuvwxyz234567",  /* upper case */
        "abcdefghijklmnopqrstuvwxyz234561",  /* '1' is not base32 */
        "abcdefghijklmnopqrstuvwxyz234568",
        "abcdefghijklmnopqrstuvwxyz23456 ",
    };
    for (size_t i = 0; i < sizeof bad_peers / sizeof bad_peers[0]; i++) {
        assert_int_equal(el_store_user_login(f->st, bad_peers[i], "a", "b", "c", NULL, T0,
                                             f->err, sizeof f->err),
                         EL_ERR_INVALID);
        assert_contains(f->err, "peer_id");
    }
    assert_int_equal(el_store_user_login(f->st, NULL, "a", "b", "c", NULL, T0, f->err,
                                         sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_user_exists(f->st, NULL, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    snprintf(buf, sizeof buf, "%s", good);
    buf[5] = '\xc3'; /* not ASCII */
    assert_int_equal(el_store_user_exists(f->st, buf, f->err, sizeof f->err),
                     EL_ERR_INVALID);

    /* Keys: base64url only, 1..EL_STORE_KEY_MAX characters. */
    static const char *const bad_keys[] = {"", "a+b", "ab==", "a b", "a/b", "ключ"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        assert_int_equal(el_store_user_login(f->st, good, "a", bad_keys[i], "c", NULL, T0,
                                             f->err, sizeof f->err),
                         EL_ERR_INVALID);
        assert_contains(f->err, "sk");
    }
    assert_int_equal(el_store_user_login(f->st, good, NULL, "b", "c", NULL, T0, f->err,
                                         sizeof f->err),
                     EL_ERR_INVALID);
    char key[EL_STORE_KEY_MAX + 2];
    memset(key, 'K', EL_STORE_KEY_MAX + 1);
    key[EL_STORE_KEY_MAX + 1] = '\0';
    assert_int_equal(el_store_user_login(f->st, good, key, "b", "c", NULL, T0, f->err,
                                         sizeof f->err),
                     EL_ERR_INVALID);
    key[EL_STORE_KEY_MAX] = '\0';
    assert_int_equal(el_store_user_login(f->st, good, key, "b", "c", NULL, T0, f->err,
                                         sizeof f->err),
                     1);
    el_store_user u;
    assert_int_equal(el_store_user_get(f->st, good, &u, NULL, 0, f->err, sizeof f->err),
                     EL_OK);
    assert_string_equal(u.ik, key);
    assert_int_equal(el_store_user_get(f->st, good, NULL, NULL, 0, f->err, sizeof f->err),
                     EL_ERR_INVALID);

    /* Name limit at login. */
    char name[EL_STORE_NAME_MAX + 2];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_int_equal(el_store_user_login(f->st, good, "a", "b", "c", name, T0, f->err,
                                         sizeof f->err),
                     EL_ERR_TOO_LARGE);
}

/* ---- Contacts, requests, blocks ----------------------------------------- */

static void t_contacts(void **state)
{
    fixture *f = *state;
    char a[33], b[33], c[33], x[33];
    mkuser(f, a);
    mkuser(f, b);
    mkuser(f, c);
    new_peer(x); /* never logged in */

    assert_int_equal(el_store_contact_is(f->st, a, b, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_contact_add(f->st, a, b, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_contact_add(f->st, a, b, T0, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_contact_add(f->st, b, a, T0, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_contact_add(f->st, c, a, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_contact_is(f->st, a, b, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_contact_is(f->st, b, a, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_contact_is(f->st, b, c, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_contact_is(f->st, a, a, f->err, sizeof f->err), 0);

    collect l = {0};
    assert_int_equal(el_store_contact_list(f->st, a, collect_peer, &l, f->err, sizeof f->err),
                     2);
    assert_true(has_item(&l, b) && has_item(&l, c));
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_contact_list(f->st, b, collect_peer, &l, f->err, sizeof f->err),
                     1);
    assert_string_equal(l.items[0], a);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_contact_list(f->st, x, collect_peer, &l, f->err, sizeof f->err),
                     0);
    assert_int_equal(l.n, 0);

    /* Errors. */
    assert_int_equal(el_store_contact_add(f->st, a, a, T0, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_contact_add(f->st, a, x, T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_contains(f->err, "contact_add");
    assert_int_equal(el_store_contact_add(f->st, x, a, T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_contact_add(f->st, a, "bogus", T0, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_contact_list(f->st, a, NULL, NULL, f->err, sizeof f->err),
                     EL_ERR_INVALID);

    /* Removal from either side. */
    assert_int_equal(el_store_contact_remove(f->st, b, a, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_store_contact_is(f->st, a, b, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_contact_remove(f->st, a, b, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_contact_remove(f->st, a, a, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_contact_remove(f->st, a, x, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_contact_is(f->st, a, c, f->err, sizeof f->err), 1);
}

static int return_minus_two(const char *peer, void *user)
{
    (void)peer;
    (*(int *)user)++;
    return -2;
}

static void t_list_callback_control(void **state)
{
    fixture *f = *state;
    char a[33], p[4][33];
    mkuser(f, a);
    for (int i = 0; i < 4; i++) {
        mkuser(f, p[i]);
        assert_int_equal(el_store_contact_add(f->st, a, p[i], T0, f->err, sizeof f->err), 1);
    }
    /* A positive return stops after that row; the count includes it. */
    collect l = {.stop_after = 2, .stop_with = 1};
    assert_int_equal(el_store_contact_list(f->st, a, collect_peer, &l, f->err, sizeof f->err),
                     2);
    assert_int_equal(l.n, 2);
    /* A negative return stops and is passed back. */
    int calls = 0;
    assert_int_equal(el_store_contact_list(f->st, a, return_minus_two, &calls, f->err,
                                           sizeof f->err),
                     -2);
    assert_int_equal(calls, 1);
    /* The store is usable afterwards (the cursor was released). */
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_contact_list(f->st, a, collect_peer, &l, f->err, sizeof f->err),
                     4);
    assert_int_equal(el_store_contact_add(f->st, p[0], p[1], T0, f->err, sizeof f->err), 1);
}

static int collect_request(const el_store_request *r, void *user)
{
    collect *c = user;
    /* Keep "from to message" so one string checks all three. */
    char line[EL_STORE_ID_MAX + 1];
    snprintf(line, sizeof line, "%.8s>%.8s:%.20s", r->from, r->to, r->message);
    return collect_add(c, line, r->at);
}

static void t_requests(void **state)
{
    fixture *f = *state;
    char a[33], b[33], c[33], x[33];
    char line[EL_STORE_ID_MAX + 1];
    mkuser(f, a);
    mkuser(f, b);
    mkuser(f, c);
    new_peer(x);

    assert_int_equal(el_store_request_add(f->st, a, b, "hi", T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_exists(f->st, a, b, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_exists(f->st, b, a, f->err, sizeof f->err), 0);
    /* Asking again updates the pending request. */
    assert_int_equal(el_store_request_add(f->st, a, b, "hello again", T0 + 5, f->err,
                                          sizeof f->err),
                     0);
    assert_int_equal(el_store_request_add(f->st, c, b, NULL, T0 + 1, f->err, sizeof f->err),
                     1);

    collect l = {0};
    assert_int_equal(el_store_request_list_incoming(f->st, b, collect_request, &l, f->err,
                                                    sizeof f->err),
                     2);
    /* Oldest first: c's (T0+1) before a's updated one (T0+5). */
    snprintf(line, sizeof line, "%.8s>%.8s:", c, b);
    assert_string_equal(l.items[0], line);
    assert_int_equal(l.times[0], T0 + 1);
    snprintf(line, sizeof line, "%.8s>%.8s:hello again", a, b);
    assert_string_equal(l.items[1], line);
    assert_int_equal(l.times[1], T0 + 5);

    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_request_list_outgoing(f->st, a, collect_request, &l, f->err,
                                                    sizeof f->err),
                     1);
    assert_string_equal(l.items[0], line);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_request_list_incoming(f->st, a, collect_request, &l, f->err,
                                                    sizeof f->err),
                     0);
    assert_int_equal(el_store_request_list_outgoing(f->st, b, collect_request, &l, f->err,
                                                    sizeof f->err),
                     0);

    /* Message limit and encoding. */
    char msg[EL_STORE_REQUEST_MSG_MAX + 2];
    memset(msg, 'm', EL_STORE_REQUEST_MSG_MAX);
    msg[EL_STORE_REQUEST_MSG_MAX] = '\0';
    assert_int_equal(el_store_request_add(f->st, a, c, msg, T0, f->err, sizeof f->err), 1);
    strcat(msg, "m");
    assert_int_equal(el_store_request_add(f->st, a, c, msg, T0, f->err, sizeof f->err),
                     EL_ERR_TOO_LARGE);
    assert_int_equal(el_store_request_add(f->st, a, c, "\xff", T0, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_request_list_outgoing(f->st, a, collect_request, &l, f->err,
                                                    sizeof f->err),
                     2);

    /* Errors. */
    assert_int_equal(el_store_request_add(f->st, a, a, "me", T0, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_request_add(f->st, a, x, "who", T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_request_add(f->st, x, a, "who", T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);

    assert_int_equal(el_store_request_remove(f->st, a, b, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_store_request_exists(f->st, a, b, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_request_remove(f->st, a, b, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_contains(f->err, "no such request");
    assert_int_equal(el_store_request_remove(f->st, x, a, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
}

static void t_request_accept(void **state)
{
    fixture *f = *state;
    char a[33], b[33], c[33], d[33];
    mkuser(f, a);
    mkuser(f, b);
    mkuser(f, c);
    mkuser(f, d);

    /* Crossing requests: accepting one clears both. */
    assert_int_equal(el_store_request_add(f->st, a, b, "ab", T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_add(f->st, b, a, "ba", T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_accept(f->st, a, b, T0 + 1, f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_contact_is(f->st, a, b, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_exists(f->st, a, b, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_request_exists(f->st, b, a, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_request_accept(f->st, a, b, T0 + 2, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_contact_is(f->st, a, b, f->err, sizeof f->err), 1);

    /* Nothing pending: nothing changes. */
    assert_int_equal(el_store_request_accept(f->st, c, d, T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_contains(f->err, "no such request");
    assert_int_equal(el_store_contact_is(f->st, c, d, f->err, sizeof f->err), 0);
    /* Direction matters. */
    assert_int_equal(el_store_request_add(f->st, c, d, NULL, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_accept(f->st, d, c, T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_request_exists(f->st, c, d, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_accept(f->st, c, c, T0, f->err, sizeof f->err),
                     EL_ERR_INVALID);
}

static void t_blocks(void **state)
{
    fixture *f = *state;
    char a[33], b[33], c[33], x[33];
    mkuser(f, a);
    mkuser(f, b);
    mkuser(f, c);
    new_peer(x);

    assert_int_equal(el_store_contact_add(f->st, a, b, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_contact_add(f->st, a, c, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_add(f->st, a, b, NULL, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_add(f->st, b, a, NULL, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_add(f->st, c, b, NULL, T0, f->err, sizeof f->err), 1);

    assert_int_equal(el_store_block_is(f->st, a, b, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_block_add(f->st, a, b, T0 + 1, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_block_is(f->st, a, b, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_block_is(f->st, b, a, f->err, sizeof f->err), 0);
    /* Blocking ends the contact and both pending requests, nothing else. */
    assert_int_equal(el_store_contact_is(f->st, a, b, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_request_exists(f->st, a, b, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_request_exists(f->st, b, a, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_contact_is(f->st, a, c, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_exists(f->st, c, b, f->err, sizeof f->err), 1);

    assert_int_equal(el_store_block_add(f->st, a, b, T0 + 2, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_block_add(f->st, a, c, T0 + 3, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_block_add(f->st, b, a, T0 + 3, f->err, sizeof f->err), 1);

    collect l = {0};
    assert_int_equal(el_store_block_list(f->st, a, collect_peer, &l, f->err, sizeof f->err),
                     2);
    assert_string_equal(l.items[0], b); /* oldest block first */
    assert_string_equal(l.items[1], c);

    assert_int_equal(el_store_block_add(f->st, a, a, T0, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_block_add(f->st, a, x, T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_block_remove(f->st, a, b, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_store_block_is(f->st, a, b, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_block_is(f->st, b, a, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_block_remove(f->st, a, b, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_block_remove(f->st, a, x, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_block_list(f->st, x, collect_peer, &l, f->err, sizeof f->err),
                     0);
}

/* ---- Groups ------------------------------------------------------------- */

static void t_groups(void **state)
{
    fixture *f = *state;
    char admin[33], m1[33], m2[33], m3[33], out[33], x[33];
    char g1[EL_STORE_ID_MAX + 1], g2[EL_STORE_ID_MAX + 1], g3[EL_STORE_ID_MAX + 1];
    mkuser(f, admin);
    mkuser(f, m1);
    mkuser(f, m2);
    mkuser(f, m3);
    mkuser(f, out);
    new_peer(x);
    new_id(g1, "g");
    new_id(g2, "g");
    new_id(g3, "g");
    el_store_group g;

    /* The admin joins automatically; duplicates are harmless. */
    const char *members[] = {m1, m2, m1, admin};
    assert_int_equal(el_store_group_create(f->st, g1, "Ω team", admin, members, 4, T0, f->err,
                                           sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_group_get(f->st, g1, &g, f->err, sizeof f->err), EL_OK);
    assert_string_equal(g.group_id, g1);
    assert_string_equal(g.name, "Ω team");
    assert_string_equal(g.admin, admin);
    assert_int_equal(g.created_at, T0);

    collect l = {0};
    assert_int_equal(el_store_group_list_members(f->st, g1, collect_member, &l, f->err,
                                                 sizeof f->err),
                     3);
    assert_true(has_item(&l, admin) && has_item(&l, m1) && has_item(&l, m2));
    /* Same joining time: ordered by peer ID. */
    assert_true(strcmp(l.items[0], l.items[1]) < 0 && strcmp(l.items[1], l.items[2]) < 0);
    assert_int_equal(l.times[0], T0);
    assert_int_equal(el_store_group_is_member(f->st, g1, m1, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_group_is_member(f->st, g1, out, f->err, sizeof f->err), 0);

    /* Create errors, all or nothing. */
    assert_int_equal(el_store_group_create(f->st, g1, "again", admin, NULL, 0, T0, f->err,
                                           sizeof f->err),
                     EL_ERR_EXISTS);
    const char *with_stranger[] = {m1, x};
    assert_int_equal(el_store_group_create(f->st, g2, "n", admin, with_stranger, 2, T0,
                                           f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_contains(f->err, x);
    assert_int_equal(el_store_group_get(f->st, g2, &g, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_group_list_members(f->st, g2, collect_member, &l, f->err,
                                                 sizeof f->err),
                     0);
    assert_int_equal(el_store_group_create(f->st, g2, "n", x, NULL, 0, T0, f->err,
                                           sizeof f->err),
                     EL_ERR_NOT_FOUND);
    char longname[EL_STORE_GROUP_NAME_MAX + 2];
    memset(longname, 'g', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(el_store_group_create(f->st, g2, longname, admin, NULL, 0, T0, f->err,
                                           sizeof f->err),
                     EL_ERR_TOO_LARGE);
    assert_int_equal(el_store_group_create(f->st, g2, NULL, admin, NULL, 0, T0, f->err,
                                           sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_group_create(f->st, "bad id", "n", admin, NULL, 0, T0, f->err,
                                           sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_group_create(f->st, g2, "n", admin, NULL, 1, T0, f->err,
                                           sizeof f->err),
                     EL_ERR_INVALID);
    const char *bad_member[] = {"short"};
    assert_int_equal(el_store_group_create(f->st, g2, "n", admin, bad_member, 1, T0, f->err,
                                           sizeof f->err),
                     EL_ERR_INVALID);

    /* Members. */
    assert_int_equal(el_store_group_member_add(f->st, g1, m3, T0 + 10, f->err, sizeof f->err),
                     1);
    assert_int_equal(el_store_group_member_add(f->st, g1, m3, T0 + 11, f->err, sizeof f->err),
                     0);
    assert_int_equal(el_store_group_member_add(f->st, g1, x, T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_group_member_add(f->st, g2, m3, T0, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_group_list_members(f->st, g1, collect_member, &l, f->err,
                                                 sizeof f->err),
                     4);
    assert_string_equal(l.items[3], m3); /* joined last */
    assert_int_equal(l.times[3], T0 + 10);

    /* Groups of a peer, oldest first. */
    assert_int_equal(el_store_group_create(f->st, g3, "second", m3, NULL, 0, T0 + 5, f->err,
                                           sizeof f->err),
                     EL_OK);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_group_list_for_peer(f->st, m3, collect_group, &l, f->err,
                                                  sizeof f->err),
                     2);
    assert_string_equal(l.items[0], g1);
    assert_string_equal(l.items[1], g3);
    assert_int_equal(l.times[1], T0 + 5);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_group_list_for_peer(f->st, out, collect_group, &l, f->err,
                                                  sizeof f->err),
                     0);

    /* Name and admin. */
    assert_int_equal(el_store_group_set_name(f->st, g1, "renamed", f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_group_set_name(f->st, g2, "x", f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_group_set_name(f->st, g1, longname, f->err, sizeof f->err),
                     EL_ERR_TOO_LARGE);
    assert_int_equal(el_store_group_set_admin(f->st, g1, out, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_contains(f->err, "not a member");
    assert_int_equal(el_store_group_set_admin(f->st, g2, m1, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_contains(f->err, "no such group");
    assert_int_equal(el_store_group_set_admin(f->st, g1, m1, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_store_group_get(f->st, g1, &g, f->err, sizeof f->err), EL_OK);
    assert_string_equal(g.name, "renamed");
    assert_string_equal(g.admin, m1);

    /* Leaving: a plain member, then the admin (hand-over to the oldest member,
     * ties by peer ID), then the last one (the group goes). */
    assert_int_equal(el_store_group_member_remove(f->st, g1, out, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_group_member_remove(f->st, g2, m1, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_group_member_remove(f->st, g1, m2, f->err, sizeof f->err),
                     EL_STORE_GROUP_KEPT);
    assert_int_equal(el_store_group_member_remove(f->st, g1, m1, f->err, sizeof f->err),
                     EL_STORE_GROUP_ADMIN_CHANGED);
    assert_int_equal(el_store_group_get(f->st, g1, &g, f->err, sizeof f->err), EL_OK);
    assert_string_equal(g.admin, admin); /* joined at T0, m3 at T0 + 10 */
    assert_int_equal(el_store_group_member_remove(f->st, g1, admin, f->err, sizeof f->err),
                     EL_STORE_GROUP_ADMIN_CHANGED);
    assert_int_equal(el_store_group_get(f->st, g1, &g, f->err, sizeof f->err), EL_OK);
    assert_string_equal(g.admin, m3);
    assert_int_equal(el_store_group_member_remove(f->st, g1, m3, f->err, sizeof f->err),
                     EL_STORE_GROUP_DELETED);
    assert_int_equal(el_store_group_get(f->st, g1, &g, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_group_is_member(f->st, g1, m3, f->err, sizeof f->err), 0);

    /* Explicit delete takes the memberships with it. */
    assert_int_equal(el_store_group_member_add(f->st, g3, m1, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_group_delete(f->st, g3, f->err, sizeof f->err), EL_OK);
    assert_int_equal(el_store_group_delete(f->st, g3, f->err, sizeof f->err),
                     EL_ERR_NOT_FOUND);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_group_list_for_peer(f->st, m1, collect_group, &l, f->err,
                                                  sizeof f->err),
                     0);
    /* The id is free again. */
    assert_int_equal(el_store_group_create(f->st, g3, "reborn", m1, NULL, 0, T0, f->err,
                                           sizeof f->err),
                     EL_OK);
}

static void t_group_admin_tiebreak(void **state)
{
    fixture *f = *state;
    char a[33], b[33], c[33], gid[EL_STORE_ID_MAX + 1];
    mkuser(f, a);
    mkuser(f, b);
    mkuser(f, c);
    new_id(gid, "g");
    const char *m[] = {b, c};
    assert_int_equal(el_store_group_create(f->st, gid, "tie", a, m, 2, T0, f->err,
                                           sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_group_member_remove(f->st, gid, a, f->err, sizeof f->err),
                     EL_STORE_GROUP_ADMIN_CHANGED);
    el_store_group g;
    assert_int_equal(el_store_group_get(f->st, gid, &g, f->err, sizeof f->err), EL_OK);
    assert_string_equal(g.admin, strcmp(b, c) < 0 ? b : c);
}

static void t_co_members(void **state)
{
    fixture *f = *state;
    char a[33], b[33], c[33], d[33];
    char g1[EL_STORE_ID_MAX + 1], g2[EL_STORE_ID_MAX + 1];
    mkuser(f, a);
    mkuser(f, b);
    mkuser(f, c);
    mkuser(f, d);
    new_id(g1, "g");
    new_id(g2, "g");
    const char *m1[] = {b};
    const char *m2[] = {b, c};
    assert_int_equal(el_store_group_create(f->st, g1, "one", a, m1, 1, T0, f->err,
                                           sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_group_create(f->st, g2, "two", a, m2, 2, T0, f->err,
                                           sizeof f->err),
                     EL_OK);

    assert_int_equal(el_store_group_is_co_member(f->st, a, b, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_group_is_co_member(f->st, c, a, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_group_is_co_member(f->st, b, c, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_group_is_co_member(f->st, a, d, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_group_is_co_member(f->st, d, d, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_group_is_co_member(f->st, a, a, f->err, sizeof f->err), 1);

    /* b is in both groups with a but is listed once; a itself is not listed. */
    collect l = {0};
    assert_int_equal(el_store_group_list_co_members(f->st, a, collect_peer, &l, f->err,
                                                    sizeof f->err),
                     2);
    assert_true(has_item(&l, b) && has_item(&l, c));
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_group_list_co_members(f->st, c, collect_peer, &l, f->err,
                                                    sizeof f->err),
                     2);
    assert_true(has_item(&l, a) && has_item(&l, b));
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_group_list_co_members(f->st, d, collect_peer, &l, f->err,
                                                    sizeof f->err),
                     0);

    assert_int_equal(el_store_group_member_remove(f->st, g2, c, f->err, sizeof f->err),
                     EL_STORE_GROUP_KEPT);
    assert_int_equal(el_store_group_is_co_member(f->st, a, c, f->err, sizeof f->err), 0);
}

/* ---- Envelopes ---------------------------------------------------------- */

static int collect_envelope(const el_store_envelope *e, void *user)
{
    collect *c = user;
    assert_int_equal(strlen(e->blob), e->blob_len);
    char line[EL_STORE_ID_MAX + 1];
    snprintf(line, sizeof line, "%s", e->id);
    return collect_add(c, line, e->expires_at);
}

static void t_envelopes(void **state)
{
    fixture *f = *state;
    char to[33], from[33], other[33], x[33];
    char e1[EL_STORE_ID_MAX + 1], e2[EL_STORE_ID_MAX + 1], e3[EL_STORE_ID_MAX + 1];
    char e4[EL_STORE_ID_MAX + 1];
    mkuser(f, to);
    mkuser(f, from);
    mkuser(f, other);
    new_peer(x);
    new_id(e1, "e");
    new_id(e2, "e");
    new_id(e3, "e");
    new_id(e4, "e");

    assert_int_equal(el_store_envelope_put(f->st, e1, to, from, "blob-1", T0, T0 + 1000, 10,
                                           f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_envelope_put(f->st, e2, to, from, "blob-2", T0 + 1, T0 + 10000,
                                           10, f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_envelope_put(f->st, e3, to, other, "blob-3", T0 + 2,
                                           T0 + 100000, 0, f->err, sizeof f->err),
                     EL_OK);

    /* Expired means expires_at <= now. */
    assert_int_equal(el_store_envelope_count(f->st, to, T0 + 999, f->err, sizeof f->err), 3);
    assert_int_equal(el_store_envelope_count(f->st, to, T0 + 1000, f->err, sizeof f->err), 2);
    assert_int_equal(el_store_envelope_count(f->st, to, T0 + 100000, f->err, sizeof f->err),
                     0);
    assert_int_equal(el_store_envelope_count(f->st, from, T0, f->err, sizeof f->err), 0);

    /* Listing: insertion order, expired skipped, limit honoured. */
    collect l = {0};
    assert_int_equal(el_store_envelope_list(f->st, to, T0 + 5, 0, collect_envelope, &l,
                                            f->err, sizeof f->err),
                     3);
    assert_string_equal(l.items[0], e1);
    assert_string_equal(l.items[1], e2);
    assert_string_equal(l.items[2], e3);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_envelope_list(f->st, to, T0 + 1000, 0, collect_envelope, &l,
                                            f->err, sizeof f->err),
                     2);
    assert_string_equal(l.items[0], e2);
    assert_int_equal(l.times[0], T0 + 10000);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_envelope_list(f->st, to, T0 + 5, 2, collect_envelope, &l,
                                            f->err, sizeof f->err),
                     2);
    assert_string_equal(l.items[1], e2);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_envelope_list(f->st, from, T0, 0, collect_envelope, &l, f->err,
                                            sizeof f->err),
                     0);

    /* Errors. */
    assert_int_equal(el_store_envelope_put(f->st, e1, other, from, "dup", T0, T0 + 1, 0,
                                           f->err, sizeof f->err),
                     EL_ERR_EXISTS);
    assert_contains(f->err, e1);
    assert_int_equal(el_store_envelope_put(f->st, e4, x, from, "b", T0, T0 + 1, 0, f->err,
                                           sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_envelope_put(f->st, e4, to, x, "b", T0, T0 + 1, 0, f->err,
                                           sizeof f->err),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_store_envelope_put(f->st, e4, to, from, "b", T0, T0, 0, f->err,
                                           sizeof f->err),
                     EL_ERR_INVALID);
    assert_contains(f->err, "expires_at");
    assert_int_equal(el_store_envelope_put(f->st, "has space", to, from, "b", T0, T0 + 1, 0,
                                           f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_envelope_put(f->st, e4, to, from, NULL, T0, T0 + 1, 0, f->err,
                                           sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_envelope_put(f->st, e4, to, from, "\xc3(", T0, T0 + 1, 0,
                                           f->err, sizeof f->err),
                     EL_ERR_INVALID);
    char *big = malloc(EL_STORE_BLOB_MAX + 2);
    assert_non_null(big);
    memset(big, 'B', EL_STORE_BLOB_MAX + 1);
    big[EL_STORE_BLOB_MAX + 1] = '\0';
    assert_int_equal(el_store_envelope_put(f->st, e4, to, from, big, T0, T0 + 1, 0, f->err,
                                           sizeof f->err),
                     EL_ERR_TOO_LARGE);
    big[EL_STORE_BLOB_MAX] = '\0'; /* exactly 64 KiB is fine */
    assert_int_equal(el_store_envelope_put(f->st, e4, other, from, big, T0, T0 + 1, 0,
                                           f->err, sizeof f->err),
                     EL_OK);
    free(big);
    memset(&l, 0, sizeof l);
    assert_int_equal(el_store_envelope_list(f->st, other, T0, 0, collect_envelope, &l, f->err,
                                            sizeof f->err),
                     1);

    /* Deleting: only the recipient's own; unknown and repeated ids count 0. */
    char unknown[EL_STORE_ID_MAX + 1];
    new_id(unknown, "e");
    const char *ack[] = {e2, e4, unknown, e2, e1};
    assert_int_equal(el_store_envelope_delete(f->st, to, ack, 5, f->err, sizeof f->err), 2);
    assert_int_equal(el_store_envelope_count(f->st, to, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_envelope_count(f->st, other, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_envelope_delete(f->st, to, ack, 5, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_envelope_delete(f->st, to, NULL, 0, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_envelope_delete(f->st, to, NULL, 1, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    const char *bad_ack[] = {e3, "no/slash"};
    assert_int_equal(el_store_envelope_delete(f->st, to, bad_ack, 2, f->err, sizeof f->err),
                     EL_ERR_INVALID);
    assert_int_equal(el_store_envelope_count(f->st, to, T0, f->err, sizeof f->err), 1);
}

static void t_envelope_quota(void **state)
{
    fixture *f = *state;
    char to[33], from[33];
    char ids[5][EL_STORE_ID_MAX + 1];
    mkuser(f, to);
    mkuser(f, from);
    for (int i = 0; i < 5; i++)
        new_id(ids[i], "q");

    assert_int_equal(el_store_envelope_put(f->st, ids[0], to, from, "a", T0, T0 + 100, 2,
                                           f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_envelope_put(f->st, ids[1], to, from, "b", T0, T0 + 10000, 2,
                                           f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_envelope_put(f->st, ids[2], to, from, "c", T0 + 99, T0 + 10000,
                                           2, f->err, sizeof f->err),
                     EL_ERR_QUOTA);
    assert_contains(f->err, "2");
    assert_int_equal(el_store_envelope_count(f->st, to, T0, f->err, sizeof f->err), 2);
    /* Once the first one has expired it no longer counts (not yet purged). */
    assert_int_equal(el_store_envelope_put(f->st, ids[2], to, from, "c", T0 + 100, T0 + 10000,
                                           2, f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_envelope_put(f->st, ids[3], to, from, "d", T0 + 100, T0 + 10000,
                                           2, f->err, sizeof f->err),
                     EL_ERR_QUOTA);
    /* A larger quota, or none at all. */
    assert_int_equal(el_store_envelope_put(f->st, ids[3], to, from, "d", T0 + 100, T0 + 10000,
                                           3, f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_envelope_put(f->st, ids[4], to, from, "e", T0 + 100, T0 + 10000,
                                           0, f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_envelope_count(f->st, to, T0 + 100, f->err, sizeof f->err), 4);
    /* The quota is per recipient. */
    char id[EL_STORE_ID_MAX + 1];
    new_id(id, "q");
    assert_int_equal(el_store_envelope_put(f->st, id, from, to, "x", T0 + 100, T0 + 10000, 1,
                                           f->err, sizeof f->err),
                     EL_OK);
}

static void t_envelope_purge(void **state)
{
    fixture *f = *state;
    char to[33], from[33];
    char ids[3][EL_STORE_ID_MAX + 1];
    mkuser(f, to);
    mkuser(f, from);
    /* Clear whatever earlier tests left in a shared database. */
    assert_true(el_store_envelope_purge(f->st, T_PURGE, f->err, sizeof f->err) >= 0);
    for (int i = 0; i < 3; i++) {
        new_id(ids[i], "p");
        assert_int_equal(el_store_envelope_put(f->st, ids[i], to, from, "p", T_PURGE,
                                               T_PURGE + 10 * (i + 1), 0, f->err,
                                               sizeof f->err),
                         EL_OK);
    }
    assert_int_equal(el_store_envelope_purge(f->st, T_PURGE + 9, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_envelope_purge(f->st, T_PURGE + 20, f->err, sizeof f->err), 2);
    assert_int_equal(el_store_envelope_count(f->st, to, T_PURGE, f->err, sizeof f->err), 1);
    collect l = {0};
    assert_int_equal(el_store_envelope_list(f->st, to, T_PURGE, 0, collect_envelope, &l,
                                            f->err, sizeof f->err),
                     1);
    assert_string_equal(l.items[0], ids[2]);
    assert_int_equal(el_store_envelope_purge(f->st, T_PURGE + 20, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_envelope_purge(f->st, T_PURGE + 30, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_envelope_count(f->st, to, T_PURGE, f->err, sizeof f->err), 0);
}

/* ---- Callbacks that call back into the store ---------------------------- */

typedef struct {
    fixture *f;
    const char *self;
    int rows;
    int nested_rows;
} reenter;

static int reenter_cb(const char *peer, void *user)
{
    reenter *r = user;
    fixture *f = r->f;
    char err[256];
    r->rows++;
    /* Writes are refused while the list runs ... */
    assert_int_equal(el_store_contact_add(f->st, r->self, peer, T0, err, sizeof err),
                     EL_ERR_DENIED);
    assert_contains(err, "callback");
    assert_int_equal(el_store_user_touch(f->st, peer, T0, err, sizeof err), EL_ERR_DENIED);
    assert_int_equal(el_store_envelope_purge(f->st, T0, err, sizeof err), EL_ERR_DENIED);
    /* ... reads work, including the same list for another peer. */
    el_store_user u;
    assert_int_equal(el_store_user_get(f->st, peer, &u, NULL, 0, err, sizeof err), EL_OK);
    assert_string_equal(u.peer_id, peer);
    collect l = {0};
    int n = el_store_contact_list(f->st, peer, collect_peer, &l, err, sizeof err);
    assert_true(n >= 1);
    assert_true(has_item(&l, r->self));
    r->nested_rows += n;
    return 0;
}

static void t_callback_reentry(void **state)
{
    fixture *f = *state;
    char a[33], p[3][33];
    mkuser(f, a);
    for (int i = 0; i < 3; i++) {
        mkuser(f, p[i]);
        assert_int_equal(el_store_contact_add(f->st, a, p[i], T0, f->err, sizeof f->err), 1);
    }
    assert_int_equal(el_store_contact_add(f->st, p[0], p[1], T0, f->err, sizeof f->err), 1);
    reenter r = {f, a, 0, 0};
    assert_int_equal(el_store_contact_list(f->st, a, reenter_cb, &r, f->err, sizeof f->err),
                     3);
    assert_int_equal(r.rows, 3);
    assert_int_equal(r.nested_rows, 2 + 2 + 1); /* p0: a,p1  p1: a,p0  p2: a */
    /* Writes work again once the list is over. */
    assert_int_equal(el_store_contact_add(f->st, p[1], p[2], T0, f->err, sizeof f->err), 1);
}

/* ---- Persistence (file-backed URLs only) -------------------------------- */

static void t_reopen_keeps_data(void **state)
{
    fixture *f = *state;
    if (url_is_ephemeral(f->url))
        skip();
    char a[33], b[33], gid[EL_STORE_ID_MAX + 1], eid[EL_STORE_ID_MAX + 1];
    mkuser(f, a);
    mkuser(f, b);
    new_id(gid, "g");
    new_id(eid, "e");
    assert_int_equal(el_store_user_set_profile(f->st, a, EL_STORE_PROFILE_NAME, "Persisted",
                                               NULL, f->err, sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_contact_add(f->st, a, b, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_block_add(f->st, b, a, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_request_add(f->st, a, b, "again", T0, f->err, sizeof f->err),
                     1);
    assert_int_equal(el_store_group_create(f->st, gid, "kept", a, NULL, 0, T0, f->err,
                                           sizeof f->err),
                     EL_OK);
    assert_int_equal(el_store_envelope_put(f->st, eid, b, a, "sealed", T0, T0 + 1000, 0,
                                           f->err, sizeof f->err),
                     EL_OK);
    int version = el_store_schema_version(f->st, f->err, sizeof f->err);

    el_store_free(f->st);
    f->st = el_store_open(f->url, f->err, sizeof f->err);
    assert_non_null(f->st);

    assert_int_equal(el_store_schema_version(f->st, f->err, sizeof f->err), version);
    el_store_user u;
    assert_int_equal(el_store_user_get(f->st, a, &u, NULL, 0, f->err, sizeof f->err), EL_OK);
    assert_string_equal(u.name, "Persisted");
    assert_int_equal(el_store_block_is(f->st, b, a, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_contact_is(f->st, a, b, f->err, sizeof f->err), 0);
    assert_int_equal(el_store_request_exists(f->st, a, b, f->err, sizeof f->err), 1);
    el_store_group g;
    assert_int_equal(el_store_group_get(f->st, gid, &g, f->err, sizeof f->err), EL_OK);
    assert_string_equal(g.name, "kept");
    assert_int_equal(el_store_envelope_count(f->st, b, T0, f->err, sizeof f->err), 1);
}

typedef struct {
    el_store *other;
    const char *peer;
    int rc;
} other_writer;

static int write_other_cb(const char *peer, void *user)
{
    other_writer *w = user;
    char err[256];
    (void)peer;
    w->rc = el_store_user_touch(w->other, w->peer, T0 + 7, err, sizeof err);
    return 0;
}

static void t_two_handles(void **state)
{
    fixture *f = *state;
    if (url_is_ephemeral(f->url))
        skip();
    el_store *other = el_store_open(f->url, f->err, sizeof f->err);
    assert_non_null(other);
    char a[33], b[33];
    mkuser(f, a);
    new_peer(b);
    /* A write on one handle is visible to the other at once. */
    assert_int_equal(el_store_user_exists(other, a, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_user_login(other, b, "k", "k", "k", NULL, T0, f->err,
                                         sizeof f->err),
                     1);
    assert_int_equal(el_store_contact_add(f->st, a, b, T0, f->err, sizeof f->err), 1);
    assert_int_equal(el_store_contact_is(other, b, a, f->err, sizeof f->err), 1);
    /* A list in progress on one handle (an open read transaction) does not
     * block writes through the other (WAL), and the guard is per handle. */
    other_writer w = {other, b, 0};
    assert_int_equal(el_store_contact_list(f->st, a, write_other_cb, &w, f->err,
                                           sizeof f->err),
                     1);
    assert_int_equal(w.rc, EL_OK);
    el_store_user u;
    assert_int_equal(el_store_user_get(f->st, b, &u, NULL, 0, f->err, sizeof f->err), EL_OK);
    assert_int_equal(u.last_seen, T0 + 7);
    assert_int_equal(el_store_ping(other), EL_OK);
    el_store_free(other);
}

/* Several processes, each with its own handle, write at once: the quota
 * holds exactly and a new user is created exactly once (every function is
 * atomic against other processes, store.h). Children report through their
 * exit code: created * 10 + accepted puts, or >= 100 for a failure. */
#define N_PROCS 4
#define PUTS_PER_PROC 6
#define QUOTA 5

static int concurrent_child(const char *url, int n, const char *tag, const char *to,
                            const char *from, const char *fresh)
{
    char err[512], id[EL_STORE_ID_MAX + 1];
    el_store *st = el_store_open(url, err, sizeof err);
    if (!st)
        return 100;
    int created = el_store_user_login(st, fresh, "k", "k", "k", NULL, T0, err, sizeof err);
    int accepted = 0, rc = created < 0 ? 101 : 0;
    for (int k = 0; rc == 0 && k < PUTS_PER_PROC; k++) {
        snprintf(id, sizeof id, "%s-%d-%d", tag, n, k);
        int put = el_store_envelope_put(st, id, to, from, "x", T0, T0 + 1000000, QUOTA, err,
                                        sizeof err);
        if (put == EL_OK)
            accepted++;
        else if (put != EL_ERR_QUOTA)
            rc = 102;
    }
    if (rc)
        fprintf(stderr, "child %d: %s\n", n, err);
    el_store_free(st);
    return rc ? rc : created * 10 + accepted;
}

static void t_concurrent_writers(void **state)
{
    fixture *f = *state;
    if (url_is_ephemeral(f->url))
        skip();
    char to[33], from[33], fresh[33], tag[EL_STORE_ID_MAX + 1];
    mkuser(f, to);
    mkuser(f, from);
    new_peer(fresh);
    new_id(tag, "c");
    pid_t pids[N_PROCS];
    for (int i = 0; i < N_PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        /* _exit: the child must not close the parent's connection. */
        if (pids[i] == 0)
            _exit(concurrent_child(f->url, i, tag, to, from, fresh));
    }
    int accepted = 0, created = 0;
    for (int i = 0; i < N_PROCS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_true(WEXITSTATUS(status) < 100);
        accepted += WEXITSTATUS(status) % 10;
        created += WEXITSTATUS(status) / 10;
    }
    assert_int_equal(accepted, QUOTA);
    assert_int_equal(created, 1);
    assert_int_equal(el_store_envelope_count(f->st, to, T0, f->err, sizeof f->err), QUOTA);
    assert_int_equal(el_store_user_exists(f->st, fresh, f->err, sizeof f->err), 1);
}

/* Two processes accept the two crossing requests of the same pairs at once
 * (in PostgreSQL the row locks they take can deadlock; the loser runs
 * again): per pair exactly one accept wins, the other finds nothing. */
#define N_PAIRS 40

static int accept_child(const char *url, char (*from)[33], char (*to)[33])
{
    char err[512];
    el_store *st = el_store_open(url, err, sizeof err);
    if (!st)
        return 100;
    int won = 0, rc = 0;
    for (int i = 0; rc == 0 && i < N_PAIRS; i++) {
        int r = el_store_request_accept(st, from[i], to[i], T0, err, sizeof err);
        if (r == EL_OK)
            won++;
        else if (r != EL_ERR_NOT_FOUND)
            rc = 101;
    }
    if (rc)
        fprintf(stderr, "accept child: %s\n", err);
    el_store_free(st);
    return rc ? rc : won;
}

static void t_crossing_accepts(void **state)
{
    fixture *f = *state;
    if (url_is_ephemeral(f->url))
        skip();
    static char a[N_PAIRS][33], b[N_PAIRS][33];
    for (int i = 0; i < N_PAIRS; i++) {
        mkuser(f, a[i]);
        mkuser(f, b[i]);
        assert_int_equal(el_store_request_add(f->st, a[i], b[i], NULL, T0, f->err,
                                              sizeof f->err),
                         1);
        assert_int_equal(el_store_request_add(f->st, b[i], a[i], NULL, T0, f->err,
                                              sizeof f->err),
                         1);
    }
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0)
            _exit(k == 0 ? accept_child(f->url, a, b) : accept_child(f->url, b, a));
    }
    int won = 0;
    for (int k = 0; k < 2; k++) {
        int status = 0;
        assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
        assert_true(WIFEXITED(status));
        assert_true(WEXITSTATUS(status) <= N_PAIRS);
        won += WEXITSTATUS(status);
    }
    assert_int_equal(won, N_PAIRS);
    for (int i = 0; i < N_PAIRS; i++) {
        assert_int_equal(el_store_contact_is(f->st, a[i], b[i], f->err, sizeof f->err), 1);
        assert_int_equal(el_store_request_exists(f->st, a[i], b[i], f->err, sizeof f->err), 0);
        assert_int_equal(el_store_request_exists(f->st, b[i], a[i], f->err, sizeof f->err), 0);
    }
}

/* ---- SQLite specifics ---------------------------------------------------- */

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void s_bad_urls(void **state)
{
    (void)state;
    char err[512];
    static const char *const urls[] = {"", "mysql://localhost/echolink", "mysql:x",
                                       "SQLITE:x.db", "file:x.db", "sqlite", "postgres:x",
                                       "POSTGRES://x/y"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        err[0] = '\0';
        assert_null(el_store_open(urls[i], err, sizeof err));
        assert_contains(err, "sqlite:PATH");
        assert_contains(err, "sqlite::memory:");
        assert_contains(err, "postgres://");
    }
    assert_null(el_store_open("mysql://localhost/echolink", err, sizeof err));
    assert_contains(err, "mysql://localhost/echolink");
    assert_null(el_store_open(NULL, err, sizeof err));
    assert_contains(err, "sqlite:PATH");
    assert_null(el_store_open("sqlite:", err, sizeof err));
    assert_contains(err, "no path");
    assert_null(el_store_open("mysql:x", NULL, 0)); /* err is optional here too */
    /* A tiny buffer is truncated, never overrun. */
    char tiny[8];
    assert_null(el_store_open("x", tiny, sizeof tiny));
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void s_cannot_open(void **state)
{
    (void)state;
    char path[PATH_MAX + 32], url[PATH_MAX + 64], err[1024];
    tmp_path(path, sizeof path, "no/such/dir/x.db");
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_null(el_store_open(url, err, sizeof err));
    assert_contains(err, "cannot open sqlite database");
    assert_contains(err, path);
    assert_contains(err, "No such file or directory");

    /* A directory is not a database file either. */
    snprintf(url, sizeof url, "sqlite:%s", tmpdir);
    assert_null(el_store_open(url, err, sizeof err));
    assert_contains(err, tmpdir);
}

static void s_not_a_database(void **state)
{
    (void)state;
    char path[PATH_MAX + 32], url[PATH_MAX + 64], err[1024];
    tmp_path(path, sizeof path, "garbage.db");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 512; i++)
        fputs("this is not an sqlite file ", fp);
    fclose(fp);
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_null(el_store_open(url, err, sizeof err));
    assert_contains(err, "not a database");
    assert_contains(err, path);
}

/* Raw access for the tests below: the schema version is SQLite's
 * PRAGMA user_version. */
static int raw_exec(const char *path, const char *sql, char *out, size_t n)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && out)
                snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
            rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return rc;
}

static void s_schema_versions(void **state)
{
    (void)state;
    char path[PATH_MAX + 32], url[PATH_MAX + 64], err[1024], val[64];
    tmp_path(path, sizeof path, "versions.db");
    snprintf(url, sizeof url, "sqlite:%s", path);

    el_store *st = el_store_open(url, err, sizeof err);
    assert_non_null(st);
    int version = el_store_schema_version(st, err, sizeof err);
    assert_true(version >= 1);
    /* Settings that outlive the connection. */
    assert_int_equal(raw_exec(path, "PRAGMA journal_mode", val, sizeof val), SQLITE_OK);
    assert_string_equal(val, "wal");
    el_store_free(st);
    assert_int_equal(raw_exec(path, "PRAGMA user_version", val, sizeof val), SQLITE_OK);
    assert_int_equal(atoi(val), version);

    /* Opening again at the current version migrates nothing. */
    st = el_store_open(url, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(el_store_schema_version(st, err, sizeof err), version);
    el_store_free(st);

    /* A database from a newer build is refused and left alone. */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1000);
    assert_int_equal(raw_exec(path, sql, NULL, 0), SQLITE_OK);
    assert_null(el_store_open(url, err, sizeof err));
    assert_contains(err, "newer");
    snprintf(val, sizeof val, "schema version %d", version + 1000);
    assert_contains(err, val);
    assert_contains(err, path);
    assert_int_equal(raw_exec(path, "PRAGMA user_version", val, sizeof val), SQLITE_OK);
    assert_int_equal(atoi(val), version + 1000);
}

static void s_failed_migration(void **state)
{
    (void)state;
    char path[PATH_MAX + 32], url[PATH_MAX + 64], err[1024], val[64];
    /* A database at version 0 that already has a "users" table of its own:
     * the first step fails and must leave nothing behind. */
    tmp_path(path, sizeof path, "clash.db");
    assert_int_equal(raw_exec(path, "CREATE TABLE users (x)", NULL, 0), SQLITE_OK);
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_null(el_store_open(url, err, sizeof err));
    assert_contains(err, "schema version 1");
    assert_contains(err, "users");
    assert_int_equal(raw_exec(path, "PRAGMA user_version", val, sizeof val), SQLITE_OK);
    assert_string_equal(val, "0");
    assert_int_equal(raw_exec(path,
                              "SELECT count(*) FROM sqlite_master WHERE name = 'contacts'",
                              val, sizeof val),
                     SQLITE_OK);
    assert_string_equal(val, "0");
}

static void s_memory_is_private(void **state)
{
    (void)state;
    char err[512];
    el_store *a = el_store_open("sqlite::memory:", err, sizeof err);
    el_store *b = el_store_open("sqlite::memory:", err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    char p[33];
    new_peer(p);
    assert_int_equal(el_store_user_login(a, p, "k", "k", "k", NULL, T0, err, sizeof err), 1);
    assert_int_equal(el_store_user_exists(b, p, err, sizeof err), 0);
    el_store_free(a);
    el_store_free(b);
}

static void s_null_store(void **state)
{
    (void)state;
    char err[128];
    char p[33];
    new_peer(p);
    el_store_free(NULL);
    assert_int_equal(el_store_ping(NULL), EL_ERR_INVALID);
    assert_string_equal(el_store_backend_name(NULL), "none");
    assert_int_equal(el_store_user_exists(NULL, p, err, sizeof err), EL_ERR_INVALID);
    assert_contains(err, "no store");
    assert_int_equal(el_store_envelope_purge(NULL, T0, NULL, 0), EL_ERR_INVALID);
}

/* A postgres URL needs no server to be refused, and never shows a password. */
static void s_pg_unreachable(void **state)
{
    (void)state;
    char err[1024];
    /* Port 1 on loopback: nothing listens, the connect is refused at once. */
    assert_null(el_store_open("postgres://alice:s3cret@127.0.0.1:1/db", err, sizeof err));
    assert_contains(err, "cannot connect to postgres database");
    assert_contains(err, "alice@127.0.0.1:1/db");
    assert_null(strstr(err, "s3cret"));
    assert_null(el_store_open("postgresql://127.0.0.1:1/db?password=s3cret", err,
                              sizeof err));
    assert_contains(err, "127.0.0.1:1/db");
    assert_null(strstr(err, "s3cret"));
    assert_null(el_store_open("postgres://", err, sizeof err));
    assert_contains(err, "postgres://USER@HOST:PORT/DB");
}

/* ---- PostgreSQL specifics ------------------------------------------------ */

/* Runs one SQL command on its own connection; copies the first value of the
 * first row, if any, into out. Returns 0, or -1 after printing the error. */
static int raw_pg(const char *url, const char *sql, char *out, size_t n)
{
    PGconn *c = PQconnectdb(url);
    int rc = -1;
    if (PQstatus(c) != CONNECTION_OK) {
        print_error("connect %s: %s", url, PQerrorMessage(c));
    } else {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            rc = 0;
            if (out)
                snprintf(out, n, "%s",
                         st == PGRES_TUPLES_OK && PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
        } else {
            print_error("%s: %s", sql, PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    PQfinish(c);
    return rc;
}

static void p_schema_versions(void **state)
{
    const char *url = *state;
    char err[1024], val[64], sql[128];
    el_store *st = el_store_open(url, err, sizeof err);
    assert_non_null(st);
    int version = el_store_schema_version(st, err, sizeof err);
    assert_true(version >= 1);
    el_store_free(st);
    assert_int_equal(raw_pg(url, "SELECT version FROM echolink_schema", val, sizeof val), 0);
    assert_int_equal(atoi(val), version);

    /* A database from a newer build is refused and left alone. */
    snprintf(sql, sizeof sql, "UPDATE echolink_schema SET version = %d", version + 1000);
    assert_int_equal(raw_pg(url, sql, NULL, 0), 0);
    assert_null(el_store_open(url, err, sizeof err));
    assert_contains(err, "newer");
    snprintf(val, sizeof val, "schema version %d", version + 1000);
    assert_contains(err, val);
    assert_int_equal(raw_pg(url, "SELECT version FROM echolink_schema", val, sizeof val), 0);
    assert_int_equal(atoi(val), version + 1000);
    snprintf(sql, sizeof sql, "UPDATE echolink_schema SET version = %d", version);
    assert_int_equal(raw_pg(url, sql, NULL, 0), 0);
    st = el_store_open(url, err, sizeof err);
    assert_non_null(st);
    el_store_free(st);
}

/* A fresh database next to the admin one: its URL into url[n]. */
static bool fresh_db(const char *name, char *url, size_t n)
{
    const char *admin = getenv("EL_PG_ADMIN_URL");
    if (!admin || !*admin)
        return false;
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    assert_int_equal(raw_pg(admin, sql, NULL, 0), 0);
    const char *slash = strrchr(admin, '/');
    assert_non_null(slash);
    snprintf(url, n, "%.*s/%s", (int)(slash - admin), admin, name);
    return true;
}

static void drop_db(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE %s", name);
    assert_int_equal(raw_pg(getenv("EL_PG_ADMIN_URL"), sql, NULL, 0), 0);
}

static void p_failed_migration(void **state)
{
    (void)state;
    char name[64], url[512], err[1024], val[64];
    snprintf(name, sizeof name, "el_clash_%u", (unsigned)++id_counter);
    if (!fresh_db(name, url, sizeof url))
        skip();
    /* A database that already has a "users" table of its own: the first
     * step fails and must leave nothing behind, not even the version. */
    assert_int_equal(raw_pg(url, "CREATE TABLE users (x int)", NULL, 0), 0);
    assert_null(el_store_open(url, err, sizeof err));
    assert_contains(err, "schema version 1");
    assert_contains(err, "users");
    assert_int_equal(raw_pg(url,
                            "SELECT count(*) FROM pg_tables WHERE tablename IN"
                            " ('echolink_schema', 'contacts')",
                            val, sizeof val),
                     0);
    assert_string_equal(val, "0");
    drop_db(name);
}

/* Nodes starting together on a new database migrate it once. */
static void p_concurrent_migration(void **state)
{
    (void)state;
    char name[64], url[512], err[512], val[64];
    snprintf(name, sizeof name, "el_race_%u", (unsigned)++id_counter);
    if (!fresh_db(name, url, sizeof url))
        skip();
    pid_t pids[N_PROCS];
    for (int i = 0; i < N_PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            el_store *st = el_store_open(url, err, sizeof err);
            if (!st)
                fprintf(stderr, "child %d: %s\n", i, err);
            int ok = st && el_store_ping(st) == EL_OK;
            el_store_free(st);
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < N_PROCS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(raw_pg(url, "SELECT count(*) || ':' || max(version) FROM echolink_schema",
                            val, sizeof val),
                     0);
    assert_string_equal(val, "1:1");
    drop_db(name);
}

/* A connection the server dropped (restart, failover, an admin) costs one
 * failed call; the next one reconnects and prepares its statements again. */
static void p_reconnect(void **state)
{
    const char *url = *state;
    char err[1024], p[33];
    el_store *st = el_store_open(url, err, sizeof err);
    assert_non_null(st);
    new_peer(p);
    assert_int_equal(el_store_user_login(st, p, "k", "k", "k", NULL, T0, err, sizeof err), 1);
    assert_int_equal(raw_pg(url,
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE application_name = 'echolinkd'",
                            NULL, 0),
                     0);
    int rc = el_store_ping(st);
    if (rc != EL_OK)
        assert_int_equal(rc, EL_ERR_DB);
    assert_int_equal(el_store_ping(st), EL_OK);
    assert_int_equal(el_store_user_exists(st, p, err, sizeof err), 1);
    assert_int_equal(el_store_user_touch(st, p, T0 + 1, err, sizeof err), EL_OK);
    el_store_free(st);
}

/* ---- Runner ------------------------------------------------------------- */

static const struct CMUnitTest generic_tests[] = {
    cmocka_unit_test_setup_teardown(t_basics, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_user_login_get, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_user_profile, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_user_validation, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_contacts, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_list_callback_control, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_requests, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_request_accept, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_blocks, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_groups, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_group_admin_tiebreak, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_co_members, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_envelopes, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_envelope_quota, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_envelope_purge, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_callback_reentry, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_reopen_keeps_data, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_two_handles, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_concurrent_writers, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(t_crossing_accepts, fx_setup, fx_teardown),
};

#define N_GENERIC (sizeof generic_tests / sizeof generic_tests[0])

static const struct CMUnitTest sqlite_tests[] = {
    cmocka_unit_test(s_bad_urls),
    cmocka_unit_test(s_cannot_open),
    cmocka_unit_test(s_not_a_database),
    cmocka_unit_test(s_schema_versions),
    cmocka_unit_test(s_failed_migration),
    cmocka_unit_test(s_memory_is_private),
    cmocka_unit_test(s_null_store),
    cmocka_unit_test(s_pg_unreachable),
};

static const struct CMUnitTest pg_tests[] = {
    cmocka_unit_test(p_schema_versions),
    cmocka_unit_test(p_failed_migration),
    cmocka_unit_test(p_concurrent_migration),
    cmocka_unit_test(p_reconnect),
};

#define N_PG (sizeof pg_tests / sizeof pg_tests[0])

static int run_pg(const char *url)
{
    struct CMUnitTest tests[N_PG];
    memcpy(tests, pg_tests, sizeof tests);
    for (size_t i = 0; i < N_PG; i++)
        tests[i].initial_state = (void *)url;
    return cmocka_run_group_tests_name("store_postgres", tests, NULL, NULL);
}

static int run_generic(const char *url)
{
    struct CMUnitTest tests[N_GENERIC];
    char name[256];
    memcpy(tests, generic_tests, sizeof tests);
    for (size_t i = 0; i < N_GENERIC; i++)
        tests[i].initial_state = (void *)url;
    snprintf(name, sizeof name, "store[%.200s]", url);
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    if (getrandom(run_tag, sizeof run_tag, 0) != (ssize_t)sizeof run_tag) {
        fprintf(stderr, "getrandom failed\n");
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/el_test_store.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    el_log_set_sink(log_capture, NULL);

    char tmp_url[PATH_MAX + 32];
    snprintf(tmp_url, sizeof tmp_url, "sqlite:%s/store.db", tmpdir);
    const char *env = getenv("EL_TEST_STORE_URL");
    char *urls = strdup(env && *env ? env : "sqlite::memory: sqlite:@tmp");
    if (!urls)
        return 1;

    int failed = 0;
    const char *pg_url = NULL;
    char *save = NULL;
    for (char *u = strtok_r(urls, " \t\n", &save); u; u = strtok_r(NULL, " \t\n", &save)) {
        failed += run_generic(strcmp(u, "sqlite:@tmp") == 0 ? tmp_url : u);
        if (!pg_url && strncmp(u, "postgres", 8) == 0)
            pg_url = u;
    }
    failed += cmocka_run_group_tests_name("store_sqlite", sqlite_tests, NULL, NULL);
    if (pg_url)
        failed += run_pg(pg_url);

    free(urls);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
