/* test_history.c - src/client/history: the client's local database.
 *
 * Messages (uniqueness by (author, id), display order and scrollback,
 * receipts that only move forward and only from recipients, the author rule
 * of edit/delete, read marking and unread counts), FTS search kept in step
 * with edits and deletes, reactions, de-duplication, the outbox across a
 * reopen of the file, file transfers, the group version rule, the peers
 * cache, caller transactions, and the file itself: mode 0600, WAL, a newer
 * schema refused, input rejected without writing, a damaged file (garbage,
 * truncated, a page overwritten) refused with a clear error and left as it
 * was, the migration to arrival order. Display order never follows a clock. */
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
#include "client/history.h"

#define ME "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm"
#define BOB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CAROL "cccccccccccccccccccccccccccccccc"
#define DAVE "dddddddddddddddddddddddddddddddd"
#define GID "00000000000000000000000000000a11"
#define CONV_BOB "p:" BOB
#define CONV_G "g:" GID

/* ---- helpers ---------------------------------------------------------- */

/* The id numbered n: 32 lowercase hex digits (rotating buffers, so a few can
 * be used in one expression). */
static const char *idn(unsigned n)
{
    static char buf[8][EL_HIST_ID_LEN + 1];
    static unsigned next;
    char *b = buf[next++ % 8];
    snprintf(b, EL_HIST_ID_LEN + 1, "%032x", n);
    return b;
}

static el_hist *open_mem(void)
{
    el_hist *h = NULL;
    char err[256] = "";
    if (el_hist_open(&h, ":memory:", err, sizeof err) != EL_OK)
        fail_msg("el_hist_open: %s", err);
    return h;
}

/* A temporary directory holding history.db, removed with everything SQLite
 * put beside it. */
typedef struct {
    char dir[64];
    char path[128];
} tmpdb;

static void tmpdb_make(tmpdb *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/el-hist-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/history.db", t->dir);
}

static void tmpdb_remove(tmpdb *t)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", t->path, suffixes[i]);
        unlink(p);
    }
    assert_int_equal(rmdir(t->dir), 0);
}

static el_hist *open_path(const char *path)
{
    el_hist *h = NULL;
    char err[256] = "";
    if (el_hist_open(&h, path, err, sizeof err) != EL_OK)
        fail_msg("el_hist_open(%s): %s", path, err);
    return h;
}

static el_hist_msg msg(const char *conv, const char *author, bool outgoing, unsigned id,
                       const char *text, int64_t ts, int64_t received_at)
{
    return (el_hist_msg){.conv = conv, .author = author, .outgoing = outgoing, .id = idn(id),
                         .kind = EL_HIST_CHAT, .text = text, .ts = ts,
                         .received_at = received_at};
}

static int add(el_hist *h, el_hist_msg m, const char *const *rcpt, size_t n)
{
    char err[256] = "";
    int rc = el_hist_msg_add(h, &m, rcpt, n, err, sizeof err);
    if (rc < 0)
        fail_msg("el_hist_msg_add: %s", err);
    return rc;
}

/* What the message callbacks saw, copied. */
typedef struct {
    int64_t row, edited_at, read_at;
    char id[EL_HIST_ID_LEN + 1];
    char author[EL_HIST_PEER_LEN + 1];
    char conv[40];
    char text[128];
    bool deleted, outgoing;
    el_hist_kind kind;
    el_hist_status status;
    unsigned recipients_n, delivered_n, read_n;
    bool has_reply;
} seen_msg;

typedef struct {
    seen_msg m[16];
    int n;
    int stop_after; /* return 1 after this many (0: never) */
} msgs;

static int collect(const el_hist_msg *m, void *user)
{
    msgs *out = user;
    assert_true(out->n < 16);
    seen_msg *s = &out->m[out->n++];
    s->row = m->row;
    s->edited_at = m->edited_at;
    s->read_at = m->read_at;
    snprintf(s->id, sizeof s->id, "%s", m->id);
    snprintf(s->author, sizeof s->author, "%s", m->author);
    snprintf(s->conv, sizeof s->conv, "%s", m->conv);
    snprintf(s->text, sizeof s->text, "%s", m->text);
    s->deleted = m->deleted;
    s->outgoing = m->outgoing;
    s->kind = m->kind;
    s->status = m->status;
    s->recipients_n = m->recipients_n;
    s->delivered_n = m->delivered_n;
    s->read_n = m->read_n;
    s->has_reply = m->reply_to != NULL;
    return out->stop_after && out->n >= out->stop_after ? 1 : 0;
}

static seen_msg get(el_hist *h, const char *author, unsigned id)
{
    msgs got = {0};
    char err[256] = "";
    if (el_hist_msg_get(h, author, idn(id), collect, &got, err, sizeof err) != EL_OK)
        fail_msg("el_hist_msg_get: %s", err);
    assert_int_equal(got.n, 1);
    return got.m[0];
}

/* Lists a conversation page into `got` and returns the count. */
static int list(el_hist *h, const char *conv, int64_t before, unsigned limit, msgs *got)
{
    char err[256] = "";
    memset(got, 0, sizeof *got);
    int n = el_hist_msg_list(h, conv, before, limit, collect, got, err, sizeof err);
    if (n < 0)
        fail_msg("el_hist_msg_list: %s", err);
    return n;
}

static int search(el_hist *h, const char *q, const char *conv, msgs *got)
{
    char err[256] = "";
    memset(got, 0, sizeof *got);
    int n = el_hist_search(h, q, conv, 10, collect, got, err, sizeof err);
    if (n < 0)
        fail_msg("el_hist_search(%s): %s", q, err);
    return n;
}

/* ---- the file --------------------------------------------------------- */

static void test_file_mode_wal_version(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    mode_t old = umask(0); /* the mode must not depend on the umask */
    el_hist *h = open_path(t.path);
    umask(old);
    assert_int_equal(el_hist_schema_version(h, NULL, 0), 3);
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 1, "hi", 1, 2), NULL, 0), 1);

    struct stat st;
    assert_int_equal(stat(t.path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", t.path);
    assert_int_equal(stat(wal, &st), 0); /* WAL mode: the write went to the log */
    assert_int_equal(st.st_mode & 07777, 0600);

    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(db);
    el_hist_close(h);
    tmpdb_remove(&t);
}

static void test_file_open_to_others_refused(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    FILE *f = fopen(t.path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(chmod(t.path, 0644), 0);
    el_hist *h = (el_hist *)1;
    char err[256] = "";
    assert_int_equal(el_hist_open(&h, t.path, err, sizeof err), EL_ERR_DENIED);
    assert_null(h);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(el_hist_open(&h, "", err, sizeof err), EL_ERR_INVALID);
    tmpdb_remove(&t);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    el_hist_close(open_path(t.path));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 4", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    el_hist *h = NULL;
    char err[256] = "";
    assert_int_equal(el_hist_open(&h, t.path, err, sizeof err), EL_ERR_DB);
    assert_null(h);
    assert_non_null(strstr(err, "newer"));

    /* untouched: still version 4 */
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 4);
    sqlite3_finalize(q);
    sqlite3_close(db);
    tmpdb_remove(&t);
}

/* ---- messages --------------------------------------------------------- */

static void test_msg_add_duplicate(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    el_hist_msg m = msg(CONV_BOB, BOB, false, 1, "first", 10, 11);
    m.reply_to = idn(99);
    assert_int_equal(add(h, m, NULL, 0), 1);
    m.text = "changed on the way";
    assert_int_equal(add(h, m, NULL, 0), 0); /* duplicate: nothing changes */
    seen_msg s = get(h, BOB, 1);
    assert_string_equal(s.text, "first");
    assert_true(s.has_reply);
    assert_int_equal(s.status, EL_HIST_INCOMING);
    assert_int_equal(s.read_at, 0);

    /* the same id by another author is another message */
    assert_int_equal(add(h, msg(CONV_BOB, ME, true, 1, "mine", 12, 12), NULL, 0), 1);
    msgs got;
    assert_int_equal(list(h, CONV_BOB, 0, 10, &got), 2);

    /* find by (conv, id), whoever wrote it: the earliest in display order */
    memset(&got, 0, sizeof got);
    assert_int_equal(el_hist_msg_find(h, CONV_BOB, idn(1), collect, &got, NULL, 0), EL_OK);
    assert_string_equal(got.m[0].author, BOB);
    assert_int_equal(el_hist_msg_find(h, CONV_G, idn(1), collect, &got, NULL, 0),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_hist_msg_get(h, CAROL, idn(1), collect, &got, NULL, 0),
                     EL_ERR_NOT_FOUND);
    el_hist_close(h);
}

static void test_msg_invalid_input(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    char err[256] = "";
    const char *rcpt[] = {BOB};
    struct {
        el_hist_msg m;
        int want;
    } cases[] = {
        {msg("x:" BOB, BOB, false, 1, "t", 1, 1), EL_ERR_INVALID},
        {msg("p:" BOB "x", BOB, false, 1, "t", 1, 1), EL_ERR_INVALID},
        {msg("g:" ME, BOB, false, 1, "t", 1, 1), EL_ERR_INVALID}, /* not hex */
        {msg(CONV_BOB, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", false, 1, "t", 1, 1), EL_ERR_INVALID},
        {msg(CONV_BOB, BOB, false, 1, "", 1, 1), EL_ERR_INVALID},   /* empty chat */
        {msg(CONV_BOB, BOB, false, 1, NULL, 1, 1), EL_ERR_INVALID},
        {msg(CONV_BOB, BOB, false, 1, "\xc3\x28", 1, 1), EL_ERR_INVALID}, /* bad UTF-8 */
        {msg(CONV_BOB, BOB, false, 1, "\xed\xa0\x80", 1, 1), EL_ERR_INVALID}, /* surrogate */
        {msg(CONV_BOB, BOB, false, 1, "t", -1, 1), EL_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        assert_int_equal(el_hist_msg_add(h, &cases[i].m, NULL, 0, err, sizeof err),
                         cases[i].want);
        assert_true(err[0] != '\0');
    }
    el_hist_msg m = msg(CONV_BOB, BOB, false, 1, "t", 1, 1);
    m.id = "0123456789ABCDEF0123456789abcdef"; /* uppercase */
    assert_int_equal(el_hist_msg_add(h, &m, NULL, 0, NULL, 0), EL_ERR_INVALID);
    m = msg(CONV_BOB, BOB, false, 1, "t", 1, 1);
    m.kind = 0;
    assert_int_equal(el_hist_msg_add(h, &m, NULL, 0, NULL, 0), EL_ERR_INVALID);
    m.kind = EL_HIST_CHAT;
    m.reply_to = "nothex";
    assert_int_equal(el_hist_msg_add(h, &m, NULL, 0, NULL, 0), EL_ERR_INVALID);
    m.reply_to = NULL;
    assert_int_equal(el_hist_msg_add(h, &m, rcpt, 1, NULL, 0), EL_ERR_INVALID); /* incoming */

    char *big = malloc(EL_HIST_TEXT_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', EL_HIST_TEXT_MAX + 1);
    big[EL_HIST_TEXT_MAX + 1] = '\0';
    m.text = big;
    assert_int_equal(el_hist_msg_add(h, &m, NULL, 0, NULL, 0), EL_ERR_TOO_LARGE);
    big[EL_HIST_TEXT_MAX] = '\0'; /* exactly the limit is fine */
    assert_int_equal(el_hist_msg_add(h, &m, NULL, 0, NULL, 0), 1);
    free(big);

    /* a file message may have no text; nothing else was stored */
    m = msg(CONV_BOB, BOB, false, 2, NULL, 2, 2);
    m.kind = EL_HIST_FILE;
    m.file_id = idn(500);
    assert_int_equal(el_hist_msg_add(h, &m, NULL, 0, NULL, 0), 1);
    msgs got;
    assert_int_equal(list(h, CONV_BOB, 0, 10, &got), 2);
    assert_string_equal(got.m[1].text, "");
    assert_int_equal(got.m[1].kind, EL_HIST_FILE);
    assert_int_equal(el_hist_msg_list(h, CONV_BOB, 0, 0, collect, &got, NULL, 0),
                     EL_ERR_INVALID);
    assert_int_equal(el_hist_msg_list(NULL, CONV_BOB, 0, 1, collect, &got, NULL, 0),
                     EL_ERR_INVALID);
    el_hist_close(h);
}

static void test_msg_order_and_scrollback(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    /* display order is arrival order, whatever the clocks said: the author
     * of "c".."e" had its clock jump back a day, then forward two days, and
     * the receiver's went back before "d" */
    const int64_t day = 86400000;
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 1, "a", 5 * day, 5 * day), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, ME, true, 2, "b", 5 * day + 1, 5 * day + 1), NULL, 0),
                     1);
    assert_int_equal(add(h, msg(CONV_G, BOB, false, 6, "other conv", 250, 1), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 3, "c", 4 * day, 5 * day + 2), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, ME, true, 4, "d", 4 * day, 4 * day), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 5, "e", 6 * day, 4 * day + 1), NULL, 0), 1);
    msgs got;
    assert_int_equal(list(h, CONV_BOB, 0, 10, &got), 5);
    const char *want = "abcde";
    for (int i = 0; i < 5; i++)
        assert_int_equal(got.m[i].text[0], want[i]);

    /* pages of two, newest first, each delivered oldest first */
    assert_int_equal(list(h, CONV_BOB, 0, 2, &got), 2);
    assert_string_equal(got.m[0].text, "d");
    assert_string_equal(got.m[1].text, "e");
    assert_int_equal(list(h, CONV_BOB, got.m[0].row, 2, &got), 2);
    assert_string_equal(got.m[0].text, "b");
    assert_string_equal(got.m[1].text, "c");
    assert_int_equal(list(h, CONV_BOB, got.m[0].row, 2, &got), 1);
    assert_string_equal(got.m[0].text, "a");
    assert_int_equal(list(h, CONV_BOB, got.m[0].row, 2, &got), 0);
    assert_int_equal(list(h, CONV_BOB, 999, 2, &got), 0); /* unknown cursor */

    /* a callback can stop the list, or fail it */
    memset(&got, 0, sizeof got);
    got.stop_after = 2;
    assert_int_equal(el_hist_msg_list(h, CONV_BOB, 0, 10, collect, &got, NULL, 0), 2);
    el_hist_close(h);
}

static int fail_cb(const el_hist_msg *m, void *user)
{
    (void)m;
    (void)user;
    return EL_ERR_QUOTA;
}

static void test_receipts_monotonic(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    const char *members[] = {BOB, CAROL};
    assert_int_equal(add(h, msg(CONV_G, ME, true, 1, "to the group", 1, 1), members, 2), 1);
    seen_msg s = get(h, ME, 1);
    assert_int_equal(s.status, EL_HIST_PENDING);
    assert_int_equal(s.recipients_n, 2);
    assert_int_equal(s.delivered_n, 0);

    assert_int_equal(el_hist_msg_delivered(h, BOB, idn(1), 10, NULL, 0), 1);
    assert_int_equal(el_hist_msg_delivered(h, BOB, idn(1), 20, NULL, 0), 0); /* again */
    assert_int_equal(el_hist_msg_delivered(h, DAVE, idn(1), 20, NULL, 0), 0); /* stranger */
    assert_int_equal(el_hist_msg_read_by(h, DAVE, idn(1), 20, NULL, 0), 0);
    assert_int_equal(el_hist_msg_delivered(h, BOB, idn(2), 20, NULL, 0), 0); /* unknown id */
    s = get(h, ME, 1);
    assert_int_equal(s.status, EL_HIST_PENDING);
    assert_int_equal(s.delivered_n, 1);

    /* read implies delivered; a late delivery receipt changes nothing */
    assert_int_equal(el_hist_msg_read_by(h, CAROL, idn(1), 30, NULL, 0), 1);
    assert_int_equal(el_hist_msg_delivered(h, CAROL, idn(1), 40, NULL, 0), 0);
    assert_int_equal(el_hist_msg_read_by(h, CAROL, idn(1), 50, NULL, 0), 0);
    s = get(h, ME, 1);
    assert_int_equal(s.status, EL_HIST_DELIVERED);
    assert_int_equal(s.delivered_n, 2);
    assert_int_equal(s.read_n, 1);
    assert_int_equal(el_hist_msg_read_by(h, BOB, idn(1), 60, NULL, 0), 1);
    assert_int_equal(get(h, ME, 1).status, EL_HIST_READ);

    /* a receipt never applies to an incoming message with that id */
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 3, "hey", 1, 1), NULL, 0), 1);
    assert_int_equal(el_hist_msg_delivered(h, BOB, idn(3), 10, NULL, 0), 0);
    assert_int_equal(el_hist_msg_delivered(h, BOB, idn(1), 0, NULL, 0), EL_ERR_INVALID);

    /* recipients added later (a member joined before the send finished) */
    const char *more[] = {DAVE, BOB};
    assert_int_equal(el_hist_msg_add_recipients(h, ME, idn(1), more, 2, NULL, 0), 1);
    s = get(h, ME, 1);
    assert_int_equal(s.recipients_n, 3);
    assert_int_equal(s.status, EL_HIST_PENDING);
    assert_int_equal(el_hist_msg_add_recipients(h, BOB, idn(3), more, 1, NULL, 0),
                     EL_ERR_STATE);
    assert_int_equal(el_hist_msg_add_recipients(h, ME, idn(9), more, 1, NULL, 0),
                     EL_ERR_NOT_FOUND);
    /* an outgoing message without recipients is pending */
    assert_int_equal(add(h, msg(CONV_BOB, ME, true, 4, "x", 1, 1), NULL, 0), 1);
    assert_int_equal(get(h, ME, 4).status, EL_HIST_PENDING);
    msgs got = {0};
    assert_int_equal(el_hist_msg_get(h, ME, idn(4), fail_cb, &got, NULL, 0), EL_ERR_QUOTA);
    el_hist_close(h);
}

static int count_reactions(const char *reactor, const char *emoji, int64_t at, void *user)
{
    (void)reactor;
    (void)emoji;
    (void)at;
    (*(int *)user)++;
    return 0;
}

static void test_edit_delete_author_rule(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    char err[256] = "";
    assert_int_equal(add(h, msg(CONV_G, BOB, false, 1, "original", 10, 10), NULL, 0), 1);
    assert_int_equal(el_hist_msg_edit(h, CAROL, idn(1), "hijack", 20, err, sizeof err),
                     EL_ERR_DENIED);
    assert_int_equal(el_hist_msg_edit(h, BOB, idn(2), "nothing", 20, NULL, 0),
                     EL_ERR_NOT_FOUND);
    assert_int_equal(el_hist_msg_edit(h, BOB, idn(1), "", 20, NULL, 0), EL_ERR_INVALID);
    assert_int_equal(el_hist_msg_edit(h, BOB, idn(1), "fixed", 0, NULL, 0), EL_ERR_INVALID);
    assert_string_equal(get(h, BOB, 1).text, "original");

    assert_int_equal(el_hist_msg_edit(h, BOB, idn(1), "second", 30, NULL, 0), 1);
    assert_int_equal(el_hist_msg_edit(h, BOB, idn(1), "first", 25, NULL, 0), 0); /* stale */
    seen_msg s = get(h, BOB, 1);
    assert_string_equal(s.text, "second");
    assert_int_equal(s.edited_at, 30);

    int n = 0;
    assert_int_equal(el_hist_reaction_add(h, CONV_G, idn(1), CAROL, "👍", 31, NULL, 0), 1);
    assert_int_equal(el_hist_msg_delete(h, CAROL, idn(1), NULL, 0), EL_ERR_DENIED);
    assert_int_equal(el_hist_msg_delete(h, BOB, idn(7), NULL, 0), EL_ERR_NOT_FOUND);
    assert_int_equal(el_hist_msg_delete(h, BOB, idn(1), NULL, 0), 1);
    assert_int_equal(el_hist_msg_delete(h, BOB, idn(1), NULL, 0), 0); /* already */
    s = get(h, BOB, 1);
    assert_true(s.deleted);
    assert_string_equal(s.text, "");
    assert_int_equal(el_hist_reaction_list(h, CONV_G, idn(1), count_reactions, &n, NULL, 0), 0);
    assert_int_equal(el_hist_msg_edit(h, BOB, idn(1), "back", 40, NULL, 0), EL_ERR_STATE);
    msgs got;
    assert_int_equal(list(h, CONV_G, 0, 10, &got), 1); /* the row stays */
    el_hist_close(h);
}

static void test_search_follows_edits_and_deletes(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    msgs got;
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 1, "Hello world", 10, 10), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_G, CAROL, false, 2, "héllo from the group", 20, 20), NULL,
                         0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, ME, true, 3, "goodbye", 30, 30), NULL, 0), 1);

    /* prefix, case and diacritics ignored; newest first */
    assert_int_equal(search(h, "HEL", NULL, &got), 2);
    assert_string_equal(got.m[0].id, idn(2));
    assert_string_equal(got.m[1].id, idn(1));
    assert_int_equal(search(h, "hello", CONV_BOB, &got), 1);
    assert_int_equal(search(h, "hello group", NULL, &got), 1); /* every word */
    assert_int_equal(search(h, "nothing", NULL, &got), 0);

    assert_int_equal(el_hist_msg_edit(h, BOB, idn(1), "changed words", 40, NULL, 0), 1);
    assert_int_equal(search(h, "hello", NULL, &got), 1);
    assert_string_equal(got.m[0].id, idn(2));
    assert_int_equal(search(h, "changed", NULL, &got), 1);
    assert_int_equal(el_hist_msg_delete(h, CAROL, idn(2), NULL, 0), 1);
    assert_int_equal(search(h, "hello", NULL, &got), 0);
    assert_int_equal(search(h, "group", NULL, &got), 0);

    /* FTS syntax is not interpreted: no error, no match */
    assert_int_equal(search(h, "\"AND OR * NEAR( ^", NULL, &got), 0);
    assert_int_equal(search(h, "good\"bye", NULL, &got), 0);
    assert_int_equal(search(h, "  good  ", NULL, &got), 1);
    assert_int_equal(el_hist_search(h, " \t ", NULL, 10, collect, &got, NULL, 0),
                     EL_ERR_INVALID);
    assert_int_equal(el_hist_search(h, "good", "p:x", 10, collect, &got, NULL, 0),
                     EL_ERR_INVALID);
    el_hist_close(h);
}

typedef struct {
    char ids[8][EL_HIST_ID_LEN + 1];
    int n;
    int fail;
} read_ids;

static int collect_read(const char *author, const char *id, void *user)
{
    read_ids *r = user;
    assert_string_equal(author, BOB);
    snprintf(r->ids[r->n++], EL_HIST_ID_LEN + 1, "%s", id);
    return r->fail;
}

typedef struct {
    char conv[8][40];
    unsigned unread[8];
    int64_t last_ts[8];
    int n;
} convs;

static int collect_conv(const el_hist_conv *c, void *user)
{
    convs *out = user;
    snprintf(out->conv[out->n], sizeof out->conv[0], "%s", c->conv);
    out->unread[out->n] = c->unread;
    out->last_ts[out->n++] = c->last_ts;
    return 0;
}

static void test_mark_read_and_unread(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 1, "one", 10, 100), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 2, "two", 20, 200), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, ME, true, 3, "mine", 30, 300), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 4, "later", 40, 400), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 5, "deleted", 50, 150), NULL, 0), 1);
    assert_int_equal(el_hist_msg_delete(h, BOB, idn(5), NULL, 0), 1);
    el_hist_msg sys = msg(CONV_G, BOB, false, 6, "Bob renamed the group", 60, 60);
    sys.kind = EL_HIST_SYSTEM;
    assert_int_equal(add(h, sys, NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_G, BOB, false, 7, "in group", 5, 70), NULL, 0), 1);
    assert_int_equal(el_hist_conv_unread(h, CONV_BOB, NULL, 0), 3);
    assert_int_equal(el_hist_conv_unread(h, CONV_G, NULL, 0), 1);

    convs cs = {0};
    assert_int_equal(el_hist_conv_list(h, collect_conv, &cs, NULL, 0), 2);
    assert_string_equal(cs.conv[0], CONV_G); /* the latest arrival, though its ts is 5 */
    assert_int_equal(cs.last_ts[0], 5);
    assert_int_equal(cs.unread[0], 1);
    assert_int_equal(cs.unread[1], 3);

    /* a failing callback: nothing is marked */
    read_ids r = {.fail = EL_ERR_QUOTA};
    assert_int_equal(el_hist_conv_mark_read(h, CONV_BOB, 250, collect_read, &r, NULL, 0),
                     EL_ERR_QUOTA);
    assert_int_equal(el_hist_conv_unread(h, CONV_BOB, NULL, 0), 3);

    /* now=250, though "later" arrived at 400 (the clock has jumped back
     * since): all three are read; the deleted one is marked but needs no
     * receipt */
    memset(&r, 0, sizeof r);
    assert_int_equal(el_hist_conv_mark_read(h, CONV_BOB, 250, collect_read, &r, NULL, 0), 3);
    assert_int_equal(r.n, 3);
    bool saw[5] = {false};
    for (int i = 0; i < r.n; i++)
        for (unsigned k = 1; k <= 4; k++)
            if (!strcmp(r.ids[i], idn(k)))
                saw[k] = true;
    assert_true(saw[1] && saw[2] && saw[4] && !saw[3]);
    assert_int_equal(el_hist_conv_unread(h, CONV_BOB, NULL, 0), 0);
    assert_int_equal(get(h, BOB, 1).read_at, 250);
    assert_int_equal(get(h, BOB, 4).read_at, 250);
    memset(&r, 0, sizeof r);
    assert_int_equal(el_hist_conv_mark_read(h, CONV_BOB, 500, collect_read, &r, NULL, 0), 0);
    assert_int_equal(get(h, BOB, 4).read_at, 250); /* never moved again */
    assert_int_equal(el_hist_conv_mark_read(h, CONV_BOB, 0, NULL, NULL, NULL, 0),
                     EL_ERR_INVALID);
    el_hist_close(h);
}

/* ---- reactions and seen ------------------------------------------------ */

typedef struct {
    char who[4][EL_HIST_PEER_LEN + 1];
    char emoji[4][EL_HIST_EMOJI_MAX + 1];
    int n;
} reactions;

static int collect_reaction(const char *reactor, const char *emoji, int64_t at, void *user)
{
    reactions *r = user;
    (void)at;
    snprintf(r->who[r->n], sizeof r->who[0], "%s", reactor);
    snprintf(r->emoji[r->n++], sizeof r->emoji[0], "%s", emoji);
    return 0;
}

static void test_reactions_set(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    char emoji65[66];
    memset(emoji65, 'x', 65);
    emoji65[65] = '\0';
    /* the target need not exist yet */
    assert_int_equal(el_hist_reaction_add(h, CONV_G, idn(1), BOB, "👍", 10, NULL, 0), 1);
    assert_int_equal(el_hist_reaction_add(h, CONV_G, idn(1), BOB, "👍", 11, NULL, 0), 0);
    assert_int_equal(el_hist_reaction_add(h, CONV_G, idn(1), CAROL, "👍", 12, NULL, 0), 1);
    assert_int_equal(el_hist_reaction_add(h, CONV_G, idn(1), BOB, "🎉", 13, NULL, 0), 1);
    assert_int_equal(el_hist_reaction_add(h, CONV_G, idn(1), BOB, "", 13, NULL, 0),
                     EL_ERR_INVALID);
    assert_int_equal(el_hist_reaction_add(h, CONV_G, idn(1), BOB, emoji65, 13, NULL, 0),
                     EL_ERR_TOO_LARGE);
    reactions r = {0};
    assert_int_equal(el_hist_reaction_list(h, CONV_G, idn(1), collect_reaction, &r, NULL, 0), 3);
    assert_string_equal(r.who[0], BOB);
    assert_string_equal(r.emoji[0], "👍");
    assert_string_equal(r.who[1], CAROL);
    assert_string_equal(r.emoji[2], "🎉");
    assert_int_equal(el_hist_reaction_remove(h, CONV_G, idn(1), BOB, "👍", NULL, 0), 1);
    assert_int_equal(el_hist_reaction_remove(h, CONV_G, idn(1), BOB, "👍", NULL, 0), 0);
    memset(&r, 0, sizeof r);
    assert_int_equal(el_hist_reaction_list(h, CONV_G, idn(1), collect_reaction, &r, NULL, 0), 2);
    /* another conversation's target with the same id is another set */
    memset(&r, 0, sizeof r);
    assert_int_equal(el_hist_reaction_list(h, CONV_BOB, idn(1), collect_reaction, &r, NULL, 0),
                     0);
    el_hist_close(h);
}

static void test_seen_and_prune(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    assert_int_equal(el_hist_seen(h, BOB, idn(1), 100, NULL, 0), 1);
    assert_int_equal(el_hist_seen(h, BOB, idn(1), 200, NULL, 0), 0);
    assert_int_equal(el_hist_seen(h, CAROL, idn(1), 300, NULL, 0), 1); /* by sender */
    assert_int_equal(el_hist_seen(h, BOB, idn(2), 400, NULL, 0), 1);
    assert_int_equal(el_hist_seen(h, "bob", idn(2), 400, NULL, 0), EL_ERR_INVALID);
    assert_int_equal(el_hist_prune_seen(h, 300, NULL, 0), 1); /* only the one at 100 */
    assert_int_equal(el_hist_seen(h, CAROL, idn(1), 500, NULL, 0), 0);
    assert_int_equal(el_hist_seen(h, BOB, idn(1), 500, NULL, 0), 1); /* forgotten */
    el_hist_close(h);
}

/* ---- outbox ------------------------------------------------------------ */

typedef struct {
    int64_t seq[8];
    char msg_id[8][EL_HIST_ID_LEN + 1];
    uint8_t first[8];
    size_t len[8];
    bool enveloped[8];
    unsigned attempts[8];
    int n;
} outbox_rows;

static int collect_outbox(const el_hist_outbox_item *it, void *user)
{
    outbox_rows *o = user;
    o->seq[o->n] = it->seq;
    snprintf(o->msg_id[o->n], EL_HIST_ID_LEN + 1, "%s", it->msg_id);
    o->first[o->n] = it->bytes[0];
    o->len[o->n] = it->len;
    o->enveloped[o->n] = it->enveloped;
    o->attempts[o->n++] = it->attempts;
    return 0;
}

typedef struct {
    char peer[4][EL_HIST_PEER_LEN + 1];
    unsigned pending[4];
    int n;
} outbox_peers;

static int collect_peer(const char *peer, unsigned pending, void *user)
{
    outbox_peers *o = user;
    snprintf(o->peer[o->n], EL_HIST_PEER_LEN + 1, "%s", peer);
    o->pending[o->n++] = pending;
    return 0;
}

static void test_outbox_survives_reopen(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    el_hist *h = open_path(t.path);
    uint8_t body[3][4] = {{1, 'a'}, {1, 'b'}, {1, 'c'}};
    int64_t seq[4];
    assert_int_equal(el_hist_outbox_add(h, CAROL, idn(9), body[0], 2, 5, &seq[3], NULL, 0),
                     EL_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(el_hist_outbox_add(h, BOB, idn(i + 1), body[i], 2, 10 + i, &seq[i],
                                            NULL, 0), EL_OK);
    assert_true(seq[3] < seq[0] && seq[0] < seq[1] && seq[1] < seq[2]);
    assert_int_equal(el_hist_outbox_add(h, BOB, idn(1), body[0], 2, 20, NULL, NULL, 0),
                     EL_ERR_EXISTS);
    uint8_t *big = calloc(1, EL_HIST_OUTBOX_MAX + 1);
    assert_non_null(big);
    assert_int_equal(el_hist_outbox_add(h, BOB, idn(7), big, EL_HIST_OUTBOX_MAX + 1, 20, NULL,
                                        NULL, 0), EL_ERR_TOO_LARGE);
    assert_int_equal(el_hist_outbox_add(h, BOB, idn(7), big, 0, 20, NULL, NULL, 0),
                     EL_ERR_INVALID);
    free(big);
    assert_int_equal(el_hist_outbox_mark_enveloped(h, seq[1], NULL, 0), EL_OK);
    assert_int_equal(el_hist_outbox_attempt(h, seq[0], NULL, 0), EL_OK);
    assert_int_equal(el_hist_outbox_attempt(h, seq[0], NULL, 0), EL_OK);
    assert_int_equal(el_hist_outbox_mark_enveloped(h, 999, NULL, 0), EL_ERR_NOT_FOUND);
    el_hist_close(h);

    /* a restart: everything is still there, in order */
    h = open_path(t.path);
    outbox_rows o = {0};
    assert_int_equal(el_hist_outbox_list(h, BOB, 0, collect_outbox, &o, NULL, 0), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o.seq[i], seq[i]);
        assert_string_equal(o.msg_id[i], idn(i + 1));
        assert_int_equal(o.len[i], 2);
        assert_int_equal(o.first[i], 1);
    }
    assert_false(o.enveloped[0]);
    assert_true(o.enveloped[1]);
    assert_int_equal(o.attempts[0], 2);
    assert_int_equal(el_hist_outbox_count(h, BOB, NULL, 0), 3);

    outbox_peers p = {0};
    assert_int_equal(el_hist_outbox_peers(h, collect_peer, &p, NULL, 0), 2);
    assert_string_equal(p.peer[0], CAROL); /* the oldest row first */
    assert_int_equal(p.pending[0], 1);
    assert_int_equal(p.pending[1], 3);

    /* acknowledgements remove only that peer's row */
    assert_int_equal(el_hist_outbox_ack(h, CAROL, idn(2), NULL, 0), 0);
    assert_int_equal(el_hist_outbox_ack(h, BOB, idn(2), NULL, 0), 1);
    assert_int_equal(el_hist_outbox_ack(h, BOB, idn(2), NULL, 0), 0);
    assert_int_equal(el_hist_outbox_ack(h, BOB, idn(3), NULL, 0), 1);
    /* a seq is never reused, even after the newest row went */
    int64_t s4 = 0;
    assert_int_equal(el_hist_outbox_add(h, BOB, idn(4), body[0], 2, 30, &s4, NULL, 0), EL_OK);
    assert_true(s4 > seq[2]);
    el_hist_close(h);

    h = open_path(t.path);
    memset(&o, 0, sizeof o);
    assert_int_equal(el_hist_outbox_list(h, BOB, 0, collect_outbox, &o, NULL, 0), 2);
    assert_string_equal(o.msg_id[0], idn(1));
    assert_string_equal(o.msg_id[1], idn(4));
    /* only the rows after a seq (what a connection has not carried yet) */
    memset(&o, 0, sizeof o);
    assert_int_equal(el_hist_outbox_list(h, BOB, seq[0], collect_outbox, &o, NULL, 0), 1);
    assert_string_equal(o.msg_id[0], idn(4));
    memset(&o, 0, sizeof o);
    assert_int_equal(el_hist_outbox_list(h, BOB, s4, collect_outbox, &o, NULL, 0), 0);
    assert_int_equal(el_hist_outbox_list(h, BOB, -1, collect_outbox, &o, NULL, 0), EL_ERR_INVALID);
    assert_int_equal(el_hist_outbox_ack(h, CAROL, idn(9), NULL, 0), 1);
    memset(&p, 0, sizeof p);
    assert_int_equal(el_hist_outbox_peers(h, collect_peer, &p, NULL, 0), 1);
    el_hist_close(h);
    tmpdb_remove(&t);
}

/* ---- file transfers ---------------------------------------------------- */

typedef struct {
    char file_id[EL_HIST_ID_LEN + 1];
    char path[64];
    char error[64];
    bool has_path, has_error;
    uint64_t offset, size;
    uint32_t voice_ms;
    el_hist_file_state state;
    int n;
} file_seen;

static int collect_file(const el_hist_file *f, void *user)
{
    file_seen *s = user;
    snprintf(s->file_id, sizeof s->file_id, "%s", f->file_id);
    s->has_path = f->path != NULL;
    snprintf(s->path, sizeof s->path, "%s", f->path ? f->path : "");
    s->has_error = f->error != NULL;
    snprintf(s->error, sizeof s->error, "%s", f->error ? f->error : "");
    s->offset = f->offset;
    s->size = f->size;
    s->voice_ms = f->voice_ms;
    s->state = f->state;
    s->n++;
    return 0;
}

static el_hist_file file(unsigned id, const char *peer, el_hist_file_state st)
{
    return (el_hist_file){.file_id = idn(id), .conv = "p:" BOB, .peer = peer,
                          .outgoing = false, .msg_id = idn(id + 1000), .name = "a.txt",
                          .size = 1000, .mime = "text/plain",
                          .sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                          .state = st, .updated_at = 1};
}

static void test_file_transfers(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    char err[256] = "";
    el_hist_file f = file(1, BOB, EL_HIST_OFFERED);
    assert_int_equal(el_hist_file_put(h, &f, err, sizeof err), EL_OK);
    f = file(2, BOB, EL_HIST_ACTIVE);
    f.voice_ms = 1500;
    f.path = "/tmp/.x.part";
    assert_int_equal(el_hist_file_put(h, &f, NULL, 0), EL_OK);
    f = file(3, CAROL, EL_HIST_ACTIVE);
    assert_int_equal(el_hist_file_put(h, &f, NULL, 0), EL_OK);

    file_seen s = {0};
    assert_int_equal(el_hist_file_get(h, idn(2), collect_file, &s, NULL, 0), EL_OK);
    assert_int_equal(s.voice_ms, 1500);
    assert_string_equal(s.path, "/tmp/.x.part");
    assert_false(s.has_error);
    assert_int_equal(el_hist_file_get(h, idn(9), collect_file, &s, NULL, 0), EL_ERR_NOT_FOUND);

    assert_int_equal(el_hist_file_set_offset(h, idn(2), 600, 5, NULL, 0), EL_OK);
    assert_int_equal(el_hist_file_set_offset(h, idn(2), 1001, 5, NULL, 0), EL_ERR_TOO_LARGE);
    assert_int_equal(el_hist_file_set_offset(h, idn(9), 1, 5, NULL, 0), EL_ERR_NOT_FOUND);
    memset(&s, 0, sizeof s);
    assert_int_equal(el_hist_file_list_unfinished(h, BOB, collect_file, &s, NULL, 0), 2);
    assert_string_equal(s.file_id, idn(2)); /* the last one delivered, in put order */
    assert_int_equal(s.offset, 600);

    /* finishing: path set, the error cleared; a final state stays */
    assert_int_equal(el_hist_file_set_state(h, idn(2), EL_HIST_COMPLETE, NULL, "/home/a.txt",
                                            9, NULL, 0), EL_OK);
    memset(&s, 0, sizeof s);
    assert_int_equal(el_hist_file_get(h, idn(2), collect_file, &s, NULL, 0), EL_OK);
    assert_int_equal(s.state, EL_HIST_COMPLETE);
    assert_string_equal(s.path, "/home/a.txt");
    assert_int_equal(el_hist_file_set_state(h, idn(2), EL_HIST_COMPLETE, NULL, NULL, 10, NULL,
                                            0), EL_OK);
    assert_int_equal(el_hist_file_set_state(h, idn(2), EL_HIST_ACTIVE, NULL, NULL, 10, NULL,
                                            0), EL_ERR_STATE);
    assert_int_equal(el_hist_file_set_offset(h, idn(2), 10, 10, NULL, 0), EL_ERR_STATE);
    assert_int_equal(el_hist_file_set_state(h, idn(1), EL_HIST_FAILED, "disk full", NULL, 11,
                                            NULL, 0), EL_OK);
    memset(&s, 0, sizeof s);
    assert_int_equal(el_hist_file_get(h, idn(1), collect_file, &s, NULL, 0), EL_OK);
    assert_string_equal(s.error, "disk full");
    assert_false(s.has_path);
    memset(&s, 0, sizeof s);
    assert_int_equal(el_hist_file_list_unfinished(h, BOB, collect_file, &s, NULL, 0), 0);
    assert_int_equal(el_hist_file_list_conv(h, "p:" BOB, collect_file, &s, NULL, 0), 3);

    /* put replaces the whole row */
    f = file(1, BOB, EL_HIST_ACCEPTED);
    f.offset = 10;
    assert_int_equal(el_hist_file_put(h, &f, NULL, 0), EL_OK);
    memset(&s, 0, sizeof s);
    assert_int_equal(el_hist_file_get(h, idn(1), collect_file, &s, NULL, 0), EL_OK);
    assert_int_equal(s.state, EL_HIST_ACCEPTED);
    assert_false(s.has_error);

    /* invalid input */
    f = file(4, BOB, EL_HIST_OFFERED);
    f.name = "../etc/passwd";
    assert_int_equal(el_hist_file_put(h, &f, NULL, 0), EL_ERR_INVALID);
    f = file(4, BOB, EL_HIST_OFFERED);
    f.sha256 = "abc";
    assert_int_equal(el_hist_file_put(h, &f, NULL, 0), EL_ERR_INVALID);
    f = file(4, BOB, EL_HIST_OFFERED);
    f.offset = 1001;
    assert_int_equal(el_hist_file_put(h, &f, NULL, 0), EL_ERR_TOO_LARGE);
    f = file(4, BOB, 0);
    assert_int_equal(el_hist_file_put(h, &f, NULL, 0), EL_ERR_INVALID);
    assert_int_equal(el_hist_file_get(h, idn(4), collect_file, &s, NULL, 0), EL_ERR_NOT_FOUND);
    el_hist_close(h);
}

/* ---- groups and peers -------------------------------------------------- */

typedef struct {
    int64_t version;
    char state[128];
    char name[64];
    bool left;
    int n;
} group_seen;

static int collect_group(const el_hist_group *g, void *user)
{
    group_seen *s = user;
    assert_int_equal(strlen(g->state), g->state_len);
    s->version = g->version;
    snprintf(s->state, sizeof s->state, "%s", g->state);
    snprintf(s->name, sizeof s->name, "%s", g->name);
    s->left = g->left;
    s->n++;
    return 0;
}

static void test_group_version_rule(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    group_seen g = {0};
    assert_int_equal(el_hist_group_put(h, GID, 1, "{\"v\":1}", "One", NULL, 0), 1);
    assert_int_equal(el_hist_group_put(h, GID, 1, "{\"v\":\"again\"}", "Again", NULL, 0), 0);
    assert_int_equal(el_hist_group_put(h, GID, 3, "{\"v\":3}", "Three", NULL, 0), 1);
    assert_int_equal(el_hist_group_set_left(h, GID, true, NULL, 0), EL_OK);
    assert_int_equal(el_hist_group_put(h, GID, 2, "{\"v\":2}", "Two", NULL, 0), 0);
    assert_int_equal(el_hist_group_get(h, GID, collect_group, &g, NULL, 0), EL_OK);
    assert_int_equal(g.version, 3);
    assert_string_equal(g.state, "{\"v\":3}");
    assert_string_equal(g.name, "Three");
    assert_true(g.left);
    assert_int_equal(el_hist_group_put(h, GID, 4, "{\"v\":4}", "Four", NULL, 0), 1);
    memset(&g, 0, sizeof g);
    assert_int_equal(el_hist_group_get(h, GID, collect_group, &g, NULL, 0), EL_OK);
    assert_true(g.left); /* kept across versions */

    assert_int_equal(el_hist_group_put(h, idn(5), 1, "{not json", "X", NULL, 0), EL_ERR_INVALID);
    assert_int_equal(el_hist_group_put(h, idn(5), 0, "{}", "X", NULL, 0), EL_ERR_INVALID);
    assert_int_equal(el_hist_group_put(h, idn(5), 1, "{}", "", NULL, 0), EL_ERR_INVALID);
    assert_int_equal(el_hist_group_put(h, idn(5), 1, "{}", "Another", NULL, 0), 1);
    memset(&g, 0, sizeof g);
    assert_int_equal(el_hist_group_list(h, collect_group, &g, NULL, 0), 2);
    assert_string_equal(g.name, "Four"); /* by name: Another, Four */
    assert_int_equal(el_hist_group_set_left(h, idn(6), true, NULL, 0), EL_ERR_NOT_FOUND);
    assert_int_equal(el_hist_group_get(h, idn(6), collect_group, &g, NULL, 0), EL_ERR_NOT_FOUND);
    el_hist_close(h);
}

static int count_peers(const el_hist_peer *p, void *user)
{
    (void)p;
    (*(int *)user)++;
    return 0;
}

static void test_peers_cache(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    el_hist_peer p;
    assert_int_equal(el_hist_peer_put(h, BOB, NULL, 0, NULL, 0), EL_OK);
    assert_int_equal(el_hist_peer_get(h, BOB, &p, NULL, 0), EL_OK);
    assert_false(p.has_name);
    assert_string_equal(p.name, "");
    assert_int_equal(el_hist_peer_put(h, BOB, "Bob", 100, NULL, 0), EL_OK);
    assert_int_equal(el_hist_peer_put(h, BOB, NULL, 50, NULL, 0), EL_OK); /* keeps both */
    assert_int_equal(el_hist_peer_get(h, BOB, &p, NULL, 0), EL_OK);
    assert_string_equal(p.peer_id, BOB);
    assert_true(p.has_name);
    assert_string_equal(p.name, "Bob");
    assert_int_equal(p.last_seen, 100);
    assert_int_equal(el_hist_peer_put(h, BOB, "Robert", 200, NULL, 0), EL_OK);
    assert_int_equal(el_hist_peer_get(h, BOB, &p, NULL, 0), EL_OK);
    assert_string_equal(p.name, "Robert");
    assert_int_equal(p.last_seen, 200);
    assert_int_equal(el_hist_peer_get(h, CAROL, &p, NULL, 0), EL_ERR_NOT_FOUND);
    char name65[66];
    memset(name65, 'n', 65);
    name65[65] = '\0';
    assert_int_equal(el_hist_peer_put(h, CAROL, name65, 1, NULL, 0), EL_ERR_TOO_LARGE);
    assert_int_equal(el_hist_peer_put(h, CAROL, "Carol", 1, NULL, 0), EL_OK);
    int n = 0;
    assert_int_equal(el_hist_peer_list(h, count_peers, &n, NULL, 0), 2);
    assert_int_equal(n, 2);
    el_hist_close(h);
}

/* ---- transactions and callbacks ----------------------------------------- */

typedef struct {
    el_hist *h;
    int write_rc, read_rc;
    msgs inner;
} reentry;

static int reenter(const el_hist_msg *m, void *user)
{
    reentry *r = user;
    el_hist_msg copy = msg(CONV_BOB, BOB, false, 50, "from a callback", 1, 1);
    (void)m;
    r->write_rc = el_hist_msg_add(r->h, &copy, NULL, 0, NULL, 0);
    /* the same list statement, nested: must not disturb the outer one */
    r->read_rc = el_hist_msg_list(r->h, CONV_BOB, 0, 10, collect, &r->inner, NULL, 0);
    return 0;
}

static void test_transactions_and_reentry(void **state)
{
    (void)state;
    el_hist *h = open_mem();
    uint8_t pt[] = {1, '{', '}'};

    /* message row + outbox row, rolled back together */
    assert_int_equal(el_hist_begin(h, NULL, 0), EL_OK);
    assert_int_equal(el_hist_begin(h, NULL, 0), EL_ERR_STATE);
    assert_int_equal(add(h, msg(CONV_BOB, ME, true, 1, "one", 1, 1), NULL, 0), 1);
    assert_int_equal(el_hist_outbox_add(h, BOB, idn(1), pt, 3, 1, NULL, NULL, 0), EL_OK);
    el_hist_rollback(h);
    assert_int_equal(el_hist_outbox_count(h, BOB, NULL, 0), 0);
    msgs got;
    assert_int_equal(list(h, CONV_BOB, 0, 10, &got), 0);

    /* a failing call inside undoes only itself */
    assert_int_equal(el_hist_begin(h, NULL, 0), EL_OK);
    assert_int_equal(el_hist_outbox_add(h, BOB, idn(1), pt, 3, 1, NULL, NULL, 0), EL_OK);
    assert_int_equal(el_hist_outbox_add(h, BOB, idn(1), pt, 3, 1, NULL, NULL, 0),
                     EL_ERR_EXISTS);
    assert_int_equal(el_hist_msg_edit(h, BOB, idn(7), "x", 5, NULL, 0), EL_ERR_NOT_FOUND);
    assert_int_equal(add(h, msg(CONV_BOB, ME, true, 1, "one", 1, 1), NULL, 0), 1);
    assert_int_equal(el_hist_commit(h, NULL, 0), EL_OK);
    assert_int_equal(el_hist_commit(h, NULL, 0), EL_ERR_STATE);
    assert_int_equal(el_hist_outbox_count(h, BOB, NULL, 0), 1);
    assert_int_equal(list(h, CONV_BOB, 0, 10, &got), 1);

    /* inside a callback: reads work, writes are refused */
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 2, "two", 2, 2), NULL, 0), 1);
    reentry r = {.h = h};
    assert_int_equal(el_hist_msg_list(h, CONV_BOB, 0, 10, reenter, &r, NULL, 0), 2);
    assert_int_equal(r.write_rc, EL_ERR_STATE);
    assert_int_equal(r.read_rc, 2);
    assert_int_equal(list(h, CONV_BOB, 0, 10, &got), 2);
    el_hist_close(h);
}

/* ---- a damaged file --------------------------------------------------- */

/* A history of n messages with ~400-byte texts (many pages), closed (the
 * WAL is merged back into the file). */
static void make_filled(tmpdb *t, unsigned n)
{
    tmpdb_make(t);
    el_hist *h = open_path(t->path);
    char text[400];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    for (unsigned i = 1; i <= n; i++)
        assert_int_equal(add(h, msg(CONV_BOB, BOB, false, i, text, i, i), NULL, 0), 1);
    el_hist_close(h);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Opening must fail with EL_ERR_DB, an error that names the file and says
 * what to do, and leave every byte of the file as it was. */
static void expect_refused(const tmpdb *t, const char *detail)
{
    size_t before_n = 0, after_n = 0;
    unsigned char *before = read_all(t->path, &before_n);
    el_hist *h = NULL;
    char err[512] = "";
    assert_int_equal(el_hist_open(&h, t->path, err, sizeof err), EL_ERR_DB);
    assert_null(h);
    assert_non_null(strstr(err, t->path));
    assert_non_null(strstr(err, "damaged"));
    assert_non_null(strstr(err, "move it aside"));
    if (detail && !strstr(err, detail))
        fail_msg("error \"%s\" does not say \"%s\"", err, detail);
    unsigned char *after = read_all(t->path, &after_n);
    assert_int_equal(after_n, before_n);
    assert_memory_equal(after, before, before_n);
    free(before);
    free(after);
    /* and again: a second start does not "repair" it into an empty one */
    assert_int_equal(el_hist_open(&h, t->path, err, sizeof err), EL_ERR_DB);
    assert_null(h);
}

static void test_garbage_file_refused(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    FILE *f = fopen(t.path, "wb");
    assert_non_null(f);
    unsigned seed = 12345;
    for (int i = 0; i < 65536; i++)
        fputc((int)((seed = seed * 1103515245u + 12345u) >> 16) & 0xff, f);
    fclose(f);
    assert_int_equal(chmod(t.path, 0600), 0);
    expect_refused(&t, "not a database");
    tmpdb_remove(&t);
}

static void test_truncated_file_refused(void **state)
{
    (void)state;
    tmpdb t;
    make_filled(&t, 300);
    struct stat st;
    assert_int_equal(stat(t.path, &st), 0);
    assert_true(st.st_size > 40 * 4096);
    assert_int_equal(truncate(t.path, st.st_size / 2), 0);
    expect_refused(&t, NULL);
    tmpdb_remove(&t);
}

static void test_overwritten_page_refused(void **state)
{
    (void)state;
    tmpdb t;
    make_filled(&t, 300);
    /* page 20 (of ~60): a leaf of the messages table or of its FTS index */
    FILE *f = fopen(t.path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 19L * 4096, SEEK_SET), 0);
    for (int i = 0; i < 4096; i++)
        fputc(0xa5, f);
    fclose(f);
    expect_refused(&t, NULL);
    tmpdb_remove(&t);
}

/* An intact file of schema 1 (ordered by ts) is migrated to 3 and keeps
 * everything; the new order is arrival order, and the outbox is read by
 * (peer, seq). */
static void test_migration_to_arrival_order(void **state)
{
    (void)state;
    tmpdb t;
    tmpdb_make(&t);
    el_hist *h = open_path(t.path);
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 1, "first", 900, 1), NULL, 0), 1);
    assert_int_equal(add(h, msg(CONV_BOB, BOB, false, 2, "second", 100, 2), NULL, 0), 1);
    const uint8_t body[2] = {1, 2};
    int64_t s1 = 0;
    assert_int_equal(el_hist_outbox_add(h, BOB, idn(7), body, 2, 10, &s1, NULL, 0), EL_OK);
    el_hist_close(h);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP INDEX messages_by_conv_row;"
                                  "DROP INDEX outbox_by_peer_seq;"
                                  "CREATE INDEX messages_by_conv ON messages"
                                  " (conv, ts, received_at, row_id);"
                                  "PRAGMA user_version = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    h = open_path(t.path);
    assert_int_equal(el_hist_schema_version(h, NULL, 0), 3);
    outbox_rows o = {0};
    assert_int_equal(el_hist_outbox_list(h, BOB, 0, collect_outbox, &o, NULL, 0), 1);
    assert_int_equal(o.seq[0], s1);
    msgs got;
    assert_int_equal(list(h, CONV_BOB, 0, 10, &got), 2);
    assert_string_equal(got.m[0].text, "first");
    assert_string_equal(got.m[1].text, "second");
    el_hist_close(h);
    tmpdb_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_mode_wal_version),
        cmocka_unit_test(test_file_open_to_others_refused),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_garbage_file_refused),
        cmocka_unit_test(test_truncated_file_refused),
        cmocka_unit_test(test_overwritten_page_refused),
        cmocka_unit_test(test_migration_to_arrival_order),
        cmocka_unit_test(test_msg_add_duplicate),
        cmocka_unit_test(test_msg_invalid_input),
        cmocka_unit_test(test_msg_order_and_scrollback),
        cmocka_unit_test(test_receipts_monotonic),
        cmocka_unit_test(test_edit_delete_author_rule),
        cmocka_unit_test(test_search_follows_edits_and_deletes),
        cmocka_unit_test(test_mark_read_and_unread),
        cmocka_unit_test(test_reactions_set),
        cmocka_unit_test(test_seen_and_prune),
        cmocka_unit_test(test_outbox_survives_reopen),
        cmocka_unit_test(test_file_transfers),
        cmocka_unit_test(test_group_version_rule),
        cmocka_unit_test(test_peers_cache),
        cmocka_unit_test(test_transactions_and_reentry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
