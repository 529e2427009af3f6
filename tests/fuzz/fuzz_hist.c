/* fuzz_hist.c - libFuzzer target: the client's history database read back
 * after its rows were written with arbitrary values (src/client/history.h).
 *
 * Each input starts from a fresh copy of an empty, migrated database file
 * (made once per process with el_hist_open). The input is a list of rows
 * written with raw SQLite, bypassing every check of history.c: byte 0 picks
 * the table (messages, recipients, reactions, outbox, files, chat_groups,
 * peers, seen), then each column's value is one of: a dictionary string
 * (the peers, convs and ids the reads below ask for, kinds, states, a
 * genuine signed group state), arbitrary text or blob bytes (NULs
 * included), a 64-bit or a small integer, or NULL. Constraints SQLite
 * enforces (NOT NULL, CHECK) may refuse a row; that is fine.
 *
 * Then every reading API runs over the dictionary keys: msg_get, msg_find,
 * msg_list, conv_list, conv_unread, search, reaction_list, outbox_list,
 * outbox_peers, outbox_count, file_get, file_list_unfinished,
 * file_list_conv, group_get, group_list, peer_get, peer_list,
 * schema_version; and what the session decodes from rows: the group state
 * JSON (json_loadb, el_group_state_from_json, base64url, el_group_verify,
 * as session_group.c's parse_row) and the outbox plaintexts
 * (el_msg_plain_split, el_msg_parse).
 *
 * Invariants: no crash, no leak, no sanitizer report; every call returns a
 * count >= 0 or a documented el_err (with a reason when err is given);
 * documented non-NULL fields (text, conv, id, author, msg_id, name, mime,
 * sha256, state) are never NULL and their strings are terminated; a peer
 * row's name fits its buffer; outbox bytes are non-NULL when len > 0.
 * tests/unit/test_fuzz_corpus.c includes this file with EL_FUZZ_NO_MAIN. */
#ifndef EL_FUZZ_HIST_C
#define EL_FUZZ_HIST_C

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "base/enc.h"
#include "base/err.h"
#include "client/history.h"
#include "crypto/identity.h"
#include "proto/group.h"
#include "proto/msg.h"

#define EL_FUZZ_HIST_ROWS 48 /* rows per input at most */

typedef struct {
    char dir[256];
    char path[320];    /* the database each input gets */
    uint8_t *tmpl;     /* the empty migrated database, as bytes */
    size_t tmpl_len;
    char *group_json;  /* a signed group state as session_group.c stores it */
    int ready;
} el_fuzz_hist_env;

static el_fuzz_hist_env el_fuzz_hist_e; /* one per process */

#define P1 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define P2 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"
#define I1 "0123456789abcdef0123456789abcdef"
#define I2 "fedcba9876543210fedcba9876543210"

static const char *const el_fuzz_hist_dict[] = {
    P1, P2, "p:" P1, "p:" P2, "g:" I1, I1, I2, "chat", "file", "voice", "system",
    "offered", "accepted", "active", "complete", "cancelled", "failed", "", "hello",
    "\x01{\"t\":\"CHAT\",\"id\":\"" I1 "\",\"ts\":1,\"text\":\"hi\"}", "{}", "[]",
    NULL, /* the signed group state, filled at setup */
};
#define EL_FUZZ_HIST_NDICT (sizeof el_fuzz_hist_dict / sizeof el_fuzz_hist_dict[0])

static const char *el_fuzz_hist_word(size_t i)
{
    const char *w = el_fuzz_hist_dict[i % EL_FUZZ_HIST_NDICT];
    return w ? w : el_fuzz_hist_e.group_json;
}

/* The seal identities' bytes are not needed: any fixed key signs. */
static char *el_fuzz_hist_group_json(void)
{
    uint8_t seed[32], skp[32];
    memset(seed, 0x11, sizeof seed);
    memset(skp, 0x22, sizeof skp);
    el_identity *id = NULL;
    if (el_identity_new(&id, seed, skp, NULL, 0) != EL_OK)
        return NULL;
    el_group_state s;
    memset(&s, 0, sizeof s);
    memcpy(s.group_id, I1, sizeof I1);
    s.version = 1;
    s.name_len = 5;
    memcpy(s.name, "group", 6);
    s.n_admins = 1;
    snprintf(s.admins[0], sizeof s.admins[0], "%s", el_identity_peer_id(id));
    s.n_members = 2;
    snprintf(s.members[0], sizeof s.members[0], "%s", el_identity_peer_id(id));
    snprintf(s.members[1], sizeof s.members[1], "%s", P2);
    el_group_signed g;
    char ik[EL_ID_KEY_B64_SIZE], sig[EL_ID_SIG_B64_SIZE];
    char *text = NULL;
    if (el_group_sign(id, &s, &g, NULL, 0) == EL_OK) {
        el_b64url_encode(g.by_ik, sizeof g.by_ik, ik, sizeof ik);
        el_b64url_encode(g.sig, sizeof g.sig, sig, sizeof sig);
        json_t *o = json_pack("{s:o, s:s, s:s, s:s}", "state", el_group_state_to_json(&g.state),
                              "by_ik", ik, "sig", sig, "dir", "in");
        text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
    }
    el_identity_free(id);
    return text;
}

static void el_fuzz_hist_cleanup(void)
{
    char p[400];
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", el_fuzz_hist_e.path, sfx[i]);
        unlink(p);
    }
    rmdir(el_fuzz_hist_e.dir);
    free(el_fuzz_hist_e.tmpl);
    free(el_fuzz_hist_e.group_json);
    memset(&el_fuzz_hist_e, 0, sizeof el_fuzz_hist_e);
}

static int el_fuzz_hist_write_tmpl(void)
{
    FILE *f = fopen(el_fuzz_hist_e.path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(el_fuzz_hist_e.tmpl, 1, el_fuzz_hist_e.tmpl_len, f);
    return fclose(f) != 0 || n != el_fuzz_hist_e.tmpl_len ? -1 : 0;
}

static void el_fuzz_hist_rm_side(void)
{
    char p[400];
    snprintf(p, sizeof p, "%s-wal", el_fuzz_hist_e.path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", el_fuzz_hist_e.path);
    unlink(p);
}

static const char *el_fuzz_hist_setup(void)
{
    if (el_fuzz_hist_e.ready)
        return NULL;
    const char *tmp = getenv("TMPDIR");
    snprintf(el_fuzz_hist_e.dir, sizeof el_fuzz_hist_e.dir, "%s/el-fuzz-hist-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(el_fuzz_hist_e.dir))
        return "hist: mkdtemp failed";
    snprintf(el_fuzz_hist_e.path, sizeof el_fuzz_hist_e.path, "%s/history.db", el_fuzz_hist_e.dir);
    el_fuzz_hist_e.ready = 1;
    atexit(el_fuzz_hist_cleanup);
    el_hist *h = NULL;
    if (el_hist_open(&h, el_fuzz_hist_e.path, NULL, 0) != EL_OK)
        return "hist: cannot create the template database";
    el_hist_close(h);
    el_fuzz_hist_rm_side();
    FILE *f = fopen(el_fuzz_hist_e.path, "rb");
    if (!f)
        return "hist: cannot read the template";
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    el_fuzz_hist_e.tmpl = n > 0 ? malloc((size_t)n) : NULL;
    if (!el_fuzz_hist_e.tmpl || fread(el_fuzz_hist_e.tmpl, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return "hist: cannot read the template";
    }
    fclose(f);
    el_fuzz_hist_e.tmpl_len = (size_t)n;
    el_fuzz_hist_e.group_json = el_fuzz_hist_group_json();
    if (!el_fuzz_hist_e.group_json)
        return "hist: cannot sign the dictionary group state";
    return NULL;
}

/* ---- writing rows ---- */

typedef struct {
    const uint8_t *p;
    size_t n;
} el_fuzz_hist_in;

static unsigned el_fuzz_hist_u8(el_fuzz_hist_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static void el_fuzz_hist_bind(sqlite3_stmt *st, int col, el_fuzz_hist_in *in)
{
    unsigned t = el_fuzz_hist_u8(in) % 6;
    switch (t) {
    case 0:
        sqlite3_bind_text(st, col, el_fuzz_hist_word(el_fuzz_hist_u8(in)), -1, SQLITE_STATIC);
        return;
    case 1:
    case 2: {
        size_t len = el_fuzz_hist_u8(in);
        len = len << 8 | el_fuzz_hist_u8(in);
        if (len > in->n)
            len = in->n;
        if (t == 1)
            sqlite3_bind_text(st, col, (const char *)in->p, (int)len, SQLITE_TRANSIENT);
        else
            sqlite3_bind_blob(st, col, in->p, (int)len, SQLITE_TRANSIENT);
        in->p += len;
        in->n -= len;
        return;
    }
    case 3: {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | el_fuzz_hist_u8(in);
        sqlite3_bind_int64(st, col, (sqlite3_int64)v);
        return;
    }
    case 4:
        sqlite3_bind_int64(st, col, (sqlite3_int64)el_fuzz_hist_u8(in) - 2);
        return;
    default:
        sqlite3_bind_null(st, col);
        return;
    }
}

static const char *const el_fuzz_hist_inserts[] = {
    "INSERT INTO messages (conv, author, id, outgoing, kind, text, reply_to, file_id, ts,"
    " received_at, edited_at, deleted, read_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "INSERT INTO recipients (row_id, peer, delivered_at, read_at) VALUES (?,?,?,?)",
    "INSERT INTO reactions (conv, target, reactor, emoji, at) VALUES (?,?,?,?,?)",
    "INSERT INTO outbox (to_peer, msg_id, body, created_at, enveloped, attempts)"
    " VALUES (?,?,?,?,?,?)",
    "INSERT INTO files (file_id, conv, peer, outgoing, msg_id, name, path, size, mime, sha256,"
    " voice_ms, confirmed, state, error, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "INSERT INTO chat_groups (group_id, version, state, name, has_left) VALUES (?,?,?,?,?)",
    "INSERT INTO peers (peer_id, name, last_seen) VALUES (?,?,?)",
    "INSERT INTO seen (from_peer, id, at) VALUES (?,?,?)",
};
#define EL_FUZZ_HIST_NTABLES (sizeof el_fuzz_hist_inserts / sizeof el_fuzz_hist_inserts[0])

static const char *el_fuzz_hist_fill(const uint8_t *data, size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st[EL_FUZZ_HIST_NTABLES] = {0};
    const char *bad = NULL;
    if (sqlite3_open_v2(el_fuzz_hist_e.path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        bad = "hist: raw open failed";
        goto done;
    }
    for (size_t i = 0; i < EL_FUZZ_HIST_NTABLES; i++)
        if (sqlite3_prepare_v2(db, el_fuzz_hist_inserts[i], -1, &st[i], NULL) != SQLITE_OK) {
            bad = "hist: an insert does not prepare (schema changed?)";
            goto done;
        }
    el_fuzz_hist_in in = {data, size};
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int r = 0; r < EL_FUZZ_HIST_ROWS && in.n; r++) {
        sqlite3_stmt *s = st[el_fuzz_hist_u8(&in) % EL_FUZZ_HIST_NTABLES];
        int ncol = sqlite3_bind_parameter_count(s);
        for (int c = 1; c <= ncol; c++)
            el_fuzz_hist_bind(s, c, &in);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_MISUSE) {
            bad = "hist: raw insert misuse";
            break;
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
done:
    for (size_t i = 0; i < EL_FUZZ_HIST_NTABLES; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(db);
    return bad;
}

/* ---- reading back ---- */

typedef struct {
    const char *bad;
    unsigned rows;
} el_fuzz_hist_ctx;

static int el_fuzz_hist_str(const char *s, size_t max)
{
    return s && strnlen(s, max + 1) <= max;
}

static int el_fuzz_hist_msg_cb(const el_hist_msg *m, void *user)
{
    el_fuzz_hist_ctx *c = user;
    c->rows++;
    if (!el_fuzz_hist_str(m->conv, 1 << 20) || !el_fuzz_hist_str(m->id, 1 << 20) ||
        !el_fuzz_hist_str(m->author, 1 << 20) || !el_fuzz_hist_str(m->text, 1 << 20))
        c->bad = "hist: a message row has a NULL or unterminated string";
    else if (m->reply_to && strnlen(m->reply_to, 1 << 20) > (1 << 20))
        c->bad = "hist: reply_to unterminated";
    else if (m->delivered_n > m->recipients_n || m->read_n > m->recipients_n)
        c->bad = "hist: more delivered or read than recipients";
    else
        (void)el_hist_kind_name(m->kind);
    return 0;
}

static int el_fuzz_hist_conv_cb(const el_hist_conv *cv, void *user)
{
    el_fuzz_hist_ctx *c = user;
    c->rows++;
    if (!el_fuzz_hist_str(cv->conv, 1 << 20))
        c->bad = "hist: a conversation without a name";
    else if (cv->unread > cv->messages)
        c->bad = "hist: more unread than messages";
    return 0;
}

static int el_fuzz_hist_reaction_cb(const char *reactor, const char *emoji, int64_t at, void *user)
{
    (void)at;
    el_fuzz_hist_ctx *c = user;
    c->rows++;
    if (!el_fuzz_hist_str(reactor, 1 << 20) || !el_fuzz_hist_str(emoji, 1 << 20))
        c->bad = "hist: a reaction with a NULL string";
    return 0;
}

static int el_fuzz_hist_outbox_cb(const el_hist_outbox_item *it, void *user)
{
    el_fuzz_hist_ctx *c = user;
    c->rows++;
    if (!el_fuzz_hist_str(it->msg_id, 1 << 20) || (it->len && !it->bytes)) {
        c->bad = "hist: an outbox row without id or bytes";
        return 0;
    }
    /* what the receiving side does with these bytes: the plaintext codec */
    el_msg_plain p;
    if (el_msg_plain_split(it->bytes, it->len, &p, NULL, 0) == EL_OK && p.kind == EL_PT_MESSAGE) {
        el_msg *m = NULL;
        char err[128];
        int rc = el_msg_parse(p.body, p.len, &m, err, sizeof err);
        if ((rc == EL_OK || rc == EL_MSG_UNKNOWN) != (m != NULL))
            c->bad = "hist: el_msg_parse result and message disagree";
        el_msg_free(m);
    }
    return 0;
}

static int el_fuzz_hist_peer_out_cb(const char *peer, unsigned pending, void *user)
{
    el_fuzz_hist_ctx *c = user;
    c->rows++;
    if (!el_fuzz_hist_str(peer, 1 << 20) || pending == 0)
        c->bad = "hist: an outbox peer without name or rows";
    return 0;
}

static int el_fuzz_hist_file_cb(const el_hist_file *f, void *user)
{
    el_fuzz_hist_ctx *c = user;
    c->rows++;
    if (!el_fuzz_hist_str(f->file_id, 1 << 20) || !el_fuzz_hist_str(f->conv, 1 << 20) ||
        !el_fuzz_hist_str(f->peer, 1 << 20) || !el_fuzz_hist_str(f->msg_id, 1 << 20) ||
        !el_fuzz_hist_str(f->name, 1 << 20) || !el_fuzz_hist_str(f->mime, 1 << 20) ||
        !el_fuzz_hist_str(f->sha256, 1 << 20))
        c->bad = "hist: a file row has a NULL or unterminated string";
    else
        (void)el_hist_file_state_name(f->state);
    return 0;
}

/* session_group.c's parse_row, restated with the same library calls */
static int el_fuzz_hist_group_cb(const el_hist_group *g, void *user)
{
    el_fuzz_hist_ctx *c = user;
    c->rows++;
    if (!el_fuzz_hist_str(g->group_id, 1 << 20) || !el_fuzz_hist_str(g->name, 1 << 20) ||
        (g->state_len && !g->state)) {
        c->bad = "hist: a group row without id, name or state";
        return 0;
    }
    json_error_t je;
    json_t *o = g->state ? json_loadb(g->state, g->state_len, 0, &je) : NULL;
    const char *ik = json_string_value(json_object_get(o, "by_ik"));
    const char *sig = json_string_value(json_object_get(o, "sig"));
    el_group_signed gs;
    memset(&gs, 0, sizeof gs);
    if (o && ik && sig && el_group_state_from_json(json_object_get(o, "state"), &gs.state, NULL, 0) == 0 &&
        el_b64url_decode(ik, strlen(ik), gs.by_ik, sizeof gs.by_ik) == EL_ID_KEY_LEN &&
        el_b64url_decode(sig, strlen(sig), gs.sig, sizeof gs.sig) == EL_ID_SIG_LEN) {
        char err[160] = "";
        int rc = el_group_verify(&gs, err, sizeof err);
        if (rc == EL_OK)
            rc = el_group_check(EL_GROUP_OP_CREATE, &gs, err, sizeof err);
        if (rc != EL_OK && !err[0])
            c->bad = "hist: a stored group state fails without a reason";
    }
    json_decref(o);
    return 0;
}

static int el_fuzz_hist_peer_cb(const el_hist_peer *p, void *user)
{
    el_fuzz_hist_ctx *c = user;
    c->rows++;
    if (strnlen(p->peer_id, sizeof p->peer_id) >= sizeof p->peer_id ||
        strnlen(p->name, sizeof p->name) >= sizeof p->name || (!p->has_name && p->name[0]))
        c->bad = "hist: a peer row does not fit its buffers";
    return 0;
}

/* A result: a count (>= 0) or an el_err with a reason. */
static const char *el_fuzz_hist_rc(int rc, const char *err, el_fuzz_hist_ctx *c)
{
    if (c->bad)
        return c->bad;
    if (rc >= 0)
        return NULL;
    if (rc < EL_ERR_STATE)
        return "hist: a result that is no el_err";
    if (!err[0])
        return "hist: an error without a reason";
    return NULL;
}

static const char *el_fuzz_hist_read(el_hist *h)
{
    static const char *const convs[] = {"p:" P1, "p:" P2, "g:" I1};
    static const char *const peers[] = {P1, P2};
    static const char *const ids[] = {I1, I2};
    static const char *const queries[] = {"hello", "a", "\"", "*", "hello world", "NEAR(a b)"};
    el_fuzz_hist_ctx c = {0};
    char err[256];
    const char *bad = NULL;
#define EL_FUZZ_HIST_CALL(expr)                                                                     \
    do {                                                                                            \
        err[0] = '\0';                                                                              \
        int rc_ = (expr);                                                                           \
        bad = el_fuzz_hist_rc(rc_, err, &c);                                                        \
        if (bad)                                                                                    \
            return bad;                                                                             \
    } while (0)
    EL_FUZZ_HIST_CALL(el_hist_schema_version(h, err, sizeof err));
    EL_FUZZ_HIST_CALL(el_hist_conv_list(h, el_fuzz_hist_conv_cb, &c, err, sizeof err));
    EL_FUZZ_HIST_CALL(el_hist_outbox_peers(h, el_fuzz_hist_peer_out_cb, &c, err, sizeof err));
    EL_FUZZ_HIST_CALL(el_hist_group_list(h, el_fuzz_hist_group_cb, &c, err, sizeof err));
    EL_FUZZ_HIST_CALL(el_hist_peer_list(h, el_fuzz_hist_peer_cb, &c, err, sizeof err));
    for (size_t i = 0; i < 3; i++) {
        EL_FUZZ_HIST_CALL(el_hist_msg_list(h, convs[i], 0, 50, el_fuzz_hist_msg_cb, &c, err, sizeof err));
        EL_FUZZ_HIST_CALL(el_hist_msg_list(h, convs[i], 3, 2, el_fuzz_hist_msg_cb, &c, err, sizeof err));
        EL_FUZZ_HIST_CALL(el_hist_conv_unread(h, convs[i], err, sizeof err));
        EL_FUZZ_HIST_CALL(el_hist_file_list_conv(h, convs[i], el_fuzz_hist_file_cb, &c, err, sizeof err));
        for (size_t k = 0; k < 2; k++) {
            EL_FUZZ_HIST_CALL(el_hist_msg_find(h, convs[i], ids[k], el_fuzz_hist_msg_cb, &c, err, sizeof err));
            EL_FUZZ_HIST_CALL(el_hist_reaction_list(h, convs[i], ids[k], el_fuzz_hist_reaction_cb, &c, err, sizeof err));
        }
    }
    for (size_t i = 0; i < 2; i++) {
        EL_FUZZ_HIST_CALL(el_hist_outbox_list(h, peers[i], 0, el_fuzz_hist_outbox_cb, &c, err, sizeof err));
        EL_FUZZ_HIST_CALL(el_hist_outbox_count(h, peers[i], err, sizeof err));
        EL_FUZZ_HIST_CALL(el_hist_file_list_unfinished(h, peers[i], el_fuzz_hist_file_cb, &c, err, sizeof err));
        el_hist_peer p;
        err[0] = '\0';
        int rc = el_hist_peer_get(h, peers[i], &p, err, sizeof err);
        if (rc == EL_OK)
            el_fuzz_hist_peer_cb(&p, &c);
        if ((bad = el_fuzz_hist_rc(rc, err, &c)) != NULL)
            return bad;
        for (size_t k = 0; k < 2; k++) {
            err[0] = '\0';
            rc = el_hist_msg_get(h, peers[i], ids[k], el_fuzz_hist_msg_cb, &c, err, sizeof err);
            if ((bad = el_fuzz_hist_rc(rc, err, &c)) != NULL)
                return bad;
        }
    }
    for (size_t k = 0; k < 2; k++) {
        err[0] = '\0';
        int rc = el_hist_file_get(h, ids[k], el_fuzz_hist_file_cb, &c, err, sizeof err);
        if ((bad = el_fuzz_hist_rc(rc, err, &c)) != NULL)
            return bad;
        err[0] = '\0';
        rc = el_hist_group_get(h, ids[k], el_fuzz_hist_group_cb, &c, err, sizeof err);
        if ((bad = el_fuzz_hist_rc(rc, err, &c)) != NULL)
            return bad;
    }
    for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
        EL_FUZZ_HIST_CALL(el_hist_search(h, queries[q], NULL, 20, el_fuzz_hist_msg_cb, &c, err, sizeof err));
        EL_FUZZ_HIST_CALL(el_hist_search(h, queries[q], convs[q % 3], 20, el_fuzz_hist_msg_cb, &c, err, sizeof err));
    }
#undef EL_FUZZ_HIST_CALL
    return NULL;
}

static const char *el_fuzz_check_hist(const uint8_t *data, size_t size)
{
    const char *bad = el_fuzz_hist_setup();
    if (bad)
        return bad;
    el_fuzz_hist_rm_side();
    if (el_fuzz_hist_write_tmpl() != 0)
        return "hist: cannot write the fresh database";
    bad = el_fuzz_hist_fill(data, size);
    if (bad)
        return bad;
    el_hist *h = NULL;
    char err[256] = "";
    int rc = el_hist_open(&h, el_fuzz_hist_e.path, err, sizeof err);
    if (rc != EL_OK)
        return "hist: the database does not open after raw inserts";
    bad = el_fuzz_hist_read(h);
    el_hist_close(h);
    return bad;
}

#ifndef EL_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_hist(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_hist: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
#endif

#endif
