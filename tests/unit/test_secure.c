/* test_secure.c - src/client/secure (the E2EE session of one connection)
 * over a fake el_peer pair instead of ICE, DTLS and SCTP.
 *
 * The fakes below define the el_peer_* / el_channel_* functions secure.c
 * calls (so this program links no el_rtc). Both sides share one queue: a
 * channel announcement or a message goes to its tail, and nothing arrives
 * until the test delivers it, in order (pump) or out of order (deliver_nth),
 * since SCTP orders a channel only against itself. A channel can also be
 * made "full" so that its sends are refused with EL_ERR_QUOTA.
 *
 * Cases: handshake and messages both ways on chat and a file channel; a
 * refused send spends no frame counter; a key change holds chat and file
 * frames until accepted; a file frame that overtakes HS3 is kept for the
 * responder. Identities: tests/vectors/identity.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <jansson.h>

#include "test.h"
#include "vectors.h"

#include "base/err.h"
#include "client/secure.h"
#include "client/trust.h"
#include "crypto/identity.h"
#include "echolink/el_peer.h"

/* ---- the fake el_peer pair --------------------------------------------- */

typedef enum { EV_OPEN, EV_DATA } wire_kind;

/* One thing in flight: the remote end of a new channel (EV_OPEN, what a
 * DCEP OPEN does) or a binary message for `dst`. */
typedef struct {
    wire_kind kind;
    el_channel *dst;
    size_t len;
    uint8_t data[];
} wire_ev;

struct el_peer {
    GQueue *wire;       /* shared by both sides; owned by the test's pair */
    el_peer *remote;
    uint8_t fp[32];     /* "our DTLS certificate": bound into the handshake */
    el_secure *sec;     /* the session the application hands remote channels to */
    GPtrArray *chans;   /* channels belong to their peer (el_peer.h) */
};

struct el_channel {
    el_peer *pc;
    el_channel *twin;   /* the same channel at the other end */
    char label[64];
    el_channel_state state;
    el_channel_callbacks cb;
    void *user;
    int full;           /* the send queue is full: sends get EL_ERR_QUOTA */
};

static void fake_peer_init(el_peer *pc, GQueue *wire, el_peer *remote, uint8_t fp_byte)
{
    memset(pc, 0, sizeof *pc);
    pc->wire = wire;
    pc->remote = remote;
    memset(pc->fp, fp_byte, sizeof pc->fp);
    pc->chans = g_ptr_array_new_with_free_func(free);
}

static void fake_peer_clear(el_peer *pc)
{
    g_ptr_array_free(pc->chans, TRUE);
}

static el_channel *fake_channel_new(el_peer *pc, const char *label)
{
    el_channel *ch = calloc(1, sizeof *ch);
    assert_non_null(ch);
    ch->pc = pc;
    snprintf(ch->label, sizeof ch->label, "%s", label);
    ch->state = EL_CHANNEL_CONNECTING;
    g_ptr_array_add(pc->chans, ch);
    return ch;
}

static void wire_push(GQueue *wire, wire_kind kind, el_channel *dst, const uint8_t *data,
                      size_t len)
{
    wire_ev *ev = malloc(sizeof *ev + len);
    assert_non_null(ev);
    ev->kind = kind;
    ev->dst = dst;
    ev->len = len;
    if (len)
        memcpy(ev->data, data, len);
    g_queue_push_tail(wire, ev);
}

/* As rtc/peer.c does on a remote DCEP OPEN: the channel is open, the
 * application gets it (and hands it to its session, as link.c does), then
 * on_open fires, which el_secure must take as a repeat. */
static void fake_announce(el_channel *ch)
{
    ch->state = EL_CHANNEL_OPEN;
    assert_int_equal(el_secure_add_channel(ch->pc->sec, ch), EL_OK);
    if (ch->cb.on_open)
        ch->cb.on_open(ch, ch->user);
}

static void wire_deliver(wire_ev *ev)
{
    el_channel *ch = ev->dst;
    if (ev->kind == EV_OPEN)
        fake_announce(ch);
    else if (ch->state == EL_CHANNEL_OPEN && ch->cb.on_message)
        ch->cb.on_message(ch, 1, ev->data, ev->len, ch->user);
    free(ev);
}

int el_peer_get_fingerprints(const el_peer *pc, uint8_t local[32], uint8_t remote[32])
{
    memcpy(local, pc->fp, 32);
    memcpy(remote, pc->remote->fp, 32);
    return EL_OK;
}

/* Open at once on our side (there is no association to wait for); the
 * remote learns of it through the queue, in order with what we send. */
el_channel *el_peer_create_channel(el_peer *pc, const char *label, const el_channel_init *init,
                                   char *err, size_t errlen)
{
    el_channel *ch = fake_channel_new(pc, label);
    el_channel *twin = fake_channel_new(pc->remote, label);
    ch->twin = twin;
    twin->twin = ch;
    ch->state = EL_CHANNEL_OPEN;
    wire_push(pc->wire, EV_OPEN, twin, NULL, 0);
    return ch;
}

void el_channel_set_callbacks(el_channel *ch, const el_channel_callbacks *cb, void *user)
{
    if (cb)
        ch->cb = *cb;
    else
        memset(&ch->cb, 0, sizeof ch->cb);
    ch->user = user;
}

el_channel_state el_channel_get_state(const el_channel *ch)
{
    return ch->state;
}

const char *el_channel_label(const el_channel *ch)
{
    return ch->label;
}

/* Only recorded: the cases check that no channel gets closed. */
int el_channel_close(el_channel *ch)
{
    ch->state = EL_CHANNEL_CLOSED;
    return EL_OK;
}

int el_channel_send_check(const el_channel *ch, size_t len)
{
    if (ch->state != EL_CHANNEL_OPEN)
        return EL_ERR_INVALID;
    return ch->full ? EL_ERR_QUOTA : EL_OK;
}

/* Refuses exactly what el_channel_send_check refuses, like the real one. */
int el_channel_send_binary(el_channel *ch, const uint8_t *data, size_t len)
{
    int rc = el_channel_send_check(ch, len);
    if (rc != EL_OK)
        return rc;
    wire_push(ch->pc->wire, EV_DATA, ch->twin, data, len);
    return EL_OK;
}

/* The queue has room again: what el_peer reports with on_buffered_low. */
static void fake_drain(el_channel *ch)
{
    ch->full = 0;
    if (ch->cb.on_buffered_low)
        ch->cb.on_buffered_low(ch, ch->user);
}

/* ---- the application on each side -------------------------------------- */

typedef struct {
    int ready, failed, key_changed, opened, low;
    GString *log; /* "chat:<text>\n" or "file:<text>\n" per plaintext, in order */
} app;

static void app_ready(el_secure *s, void *user)
{
    ((app *)user)->ready++;
}

static void app_failed(el_secure *s, el_hs_fail why, const char *error, void *user)
{
    ((app *)user)->failed++;
    g_string_append_printf(((app *)user)->log, "failed:%s\n", error);
}

static void app_channel_open(el_secure *s, el_channel *ch, void *user)
{
    ((app *)user)->opened++;
}

static void app_plaintext(el_secure *s, el_channel *ch, const uint8_t *pt, size_t len, void *user)
{
    const char *kind = strcmp(el_channel_label(ch), "chat") == 0 ? "chat" : "file";
    g_string_append_printf(((app *)user)->log, "%s:%.*s\n", kind, (int)len, (const char *)pt);
}

static void app_channel_close(el_secure *s, el_channel *ch, void *user)
{
}

static void app_buffered_low(el_secure *s, el_channel *ch, void *user)
{
    ((app *)user)->low++;
}

static void app_key_changed(el_secure *s, const el_id_bundle *pinned,
                            const el_id_bundle *presented, void *user)
{
    ((app *)user)->key_changed++;
}

static const el_secure_callbacks app_cbs = {
    app_ready,        app_failed,       app_channel_open, app_plaintext,
    app_channel_close, app_buffered_low, app_key_changed,
};

/* ---- a connection: two sessions over the fake pair --------------------- */

typedef struct {
    GMainContext *ctx; /* never iterated, so the handshake timer never fires */
    GQueue wire;
    el_peer pa, pb;    /* pa initiates: it made the offer and `chat` */
    app aa, ab;
    el_secure *a, *b;
    el_channel *chat_a, *chat_b;
} pair;

static el_secure *session_new(pair *p, el_peer *pc, app *ap, const el_identity *self,
                              const el_identity *remote, int initiator)
{
    char err[256] = "";
    ap->log = g_string_new("");
    el_secure *s = el_secure_new(p->ctx, pc, self, el_identity_peer_id(remote), initiator,
                                 &app_cbs, ap, err, sizeof err);
    if (!s)
        fail_msg("el_secure_new: %s", err);
    pc->sec = s;
    return s;
}

/* Both sessions, and `chat` handed to the initiator, which queues HS1 (after
 * the chat's announcement). Nothing is delivered yet. `trust_a` may be NULL. */
static void pair_start(pair *p, const el_identity *id_a, const el_identity *id_b,
                       el_trust *trust_a)
{
    char err[256] = "";
    memset(p, 0, sizeof *p);
    p->ctx = g_main_context_new();
    g_queue_init(&p->wire);
    fake_peer_init(&p->pa, &p->wire, &p->pb, 0xa1);
    fake_peer_init(&p->pb, &p->wire, &p->pa, 0xb2);
    p->a = session_new(p, &p->pa, &p->aa, id_a, id_b, 1);
    p->b = session_new(p, &p->pb, &p->ab, id_b, id_a, 0);
    if (trust_a)
        el_secure_set_trust(p->a, trust_a);
    p->chat_a = el_peer_create_channel(&p->pa, "chat", NULL, err, sizeof err);
    p->chat_b = p->chat_a->twin;
    assert_int_equal(el_secure_add_channel(p->a, p->chat_a), EL_OK);
}

static void pair_stop(pair *p)
{
    el_secure_free(p->a);
    el_secure_free(p->b);
    wire_ev *ev;
    while ((ev = g_queue_pop_head(&p->wire)) != NULL)
        free(ev);
    fake_peer_clear(&p->pa);
    fake_peer_clear(&p->pb);
    g_string_free(p->aa.log, TRUE);
    g_string_free(p->ab.log, TRUE);
    g_main_context_unref(p->ctx);
}

/* Delivers everything in flight, in order, including what it provokes. */
static void pump(pair *p)
{
    wire_ev *ev;
    while ((ev = g_queue_pop_head(&p->wire)) != NULL)
        wire_deliver(ev);
}

/* Delivers the n-th thing in flight (0 = the oldest) ahead of the others. */
static void deliver_nth(pair *p, guint n)
{
    wire_ev *ev = g_queue_pop_nth(&p->wire, n);
    assert_non_null(ev);
    wire_deliver(ev);
}

static void pair_handshake(pair *p)
{
    pump(p);
    assert_int_equal(p->aa.ready, 1);
    assert_int_equal(p->ab.ready, 1);
    assert_int_equal(p->aa.failed + p->ab.failed, 0);
}

static int send_str(el_secure *s, el_channel *ch, const char *text)
{
    return el_secure_send(s, ch, (const uint8_t *)text, strlen(text));
}

static void send_ok(el_secure *s, el_channel *ch, const char *text)
{
    assert_int_equal(send_str(s, ch, text), EL_OK);
}

/* Nothing refused: every counter of el_secure_stats is 0. */
static void assert_clean(const el_secure *s)
{
    el_secure_stats st;
    el_secure_get_stats(s, &st);
    assert_int_equal(st.early, 0);
    assert_int_equal(st.bad_label, 0);
    assert_int_equal(st.text, 0);
    assert_int_equal(st.frames.truncated, 0);
    assert_int_equal(st.frames.replay, 0);
    assert_int_equal(st.frames.reorder, 0);
    assert_int_equal(st.frames.auth, 0);
}

/* ---- identities (identity.json) ---------------------------------------- */

typedef struct {
    el_identity *alice, *bob;
    el_identity *bob_rekeyed; /* bob's ik, another sk: same peer ID, new bundle */
} ids;

static int ids_setup(void **state)
{
    ids *t = calloc(1, sizeof *t);
    assert_non_null(t);
    json_t *doc = el_vec_load("identity.json");
    json_t *vs = el_vec_cases(doc, "vectors", 3);
    t->alice = el_vec_identity_of(json_array_get(vs, 0));
    t->bob = el_vec_identity_of(json_array_get(vs, 1));
    uint8_t seed[EL_ID_KEY_LEN], skp[EL_ID_KEY_LEN], unused[EL_ID_KEY_LEN];
    char err[256] = "";
    el_vec_private_keys(json_array_get(vs, 1), seed, unused);
    el_vec_private_keys(json_array_get(vs, 2), unused, skp);
    if (el_identity_new(&t->bob_rekeyed, seed, skp, err, sizeof err) != EL_OK)
        fail_msg("el_identity_new: %s", err);
    assert_string_equal(el_identity_peer_id(t->bob_rekeyed), el_identity_peer_id(t->bob));
    json_decref(doc);
    *state = t;
    return 0;
}

static int ids_teardown(void **state)
{
    ids *t = *state;
    el_identity_free(t->alice);
    el_identity_free(t->bob);
    el_identity_free(t->bob_rekeyed);
    free(t);
    return 0;
}

/* ---- a trust store in a temporary file --------------------------------- */

typedef struct {
    char dir[64];
    char path[128];
    el_trust *t;
} trust_file;

static void trust_file_open(trust_file *f)
{
    char err[256] = "";
    snprintf(f->dir, sizeof f->dir, "/tmp/el_secure_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/trust.db", f->dir);
    if (el_trust_open(&f->t, f->path, err, sizeof err) != EL_OK)
        fail_msg("el_trust_open(%s): %s", f->path, err);
}

static void trust_file_remove(trust_file *f)
{
    char extra[160];
    el_trust_close(f->t);
    snprintf(extra, sizeof extra, "%s-journal", f->path);
    unlink(extra);
    unlink(f->path);
    assert_int_equal(rmdir(f->dir), 0);
}

/* A first contact with `id` in the past: its bundle is the pin. */
static void trust_pin(el_trust *t, const el_identity *id)
{
    el_trust_state st = 0;
    char err[256] = "";
    if (el_trust_check(t, el_identity_peer_id(id), el_identity_bundle(id), &st, err,
                       sizeof err) != EL_OK)
        fail_msg("el_trust_check: %s", err);
    assert_int_equal(st, EL_TRUST_NEW);
}

/* ---- cases ------------------------------------------------------------- */

static void test_basic(void **state)
{
    ids *t = *state;
    char err[256] = "";
    pair p;
    pair_start(&p, t->alice, t->bob, NULL);
    pair_handshake(&p);
    assert_string_equal(el_secure_remote_peer_id(p.a), el_identity_peer_id(t->bob));
    assert_string_equal(el_secure_remote_peer_id(p.b), el_identity_peer_id(t->alice));
    assert_memory_equal(el_secure_remote_bundle(p.a), el_identity_bundle(t->bob),
                        sizeof(el_id_bundle));

    send_ok(p.a, p.chat_a, "hello bob");
    send_ok(p.b, p.chat_b, "hello alice");
    pump(&p);

    el_channel *f = el_secure_open_channel(p.a, err, sizeof err);
    if (!f)
        fail_msg("el_secure_open_channel: %s", err);
    send_ok(p.a, f, "chunk to bob");
    pump(&p);
    send_ok(p.b, f->twin, "chunk to alice");
    pump(&p);

    assert_string_equal(p.aa.log->str, "chat:hello alice\nfile:chunk to alice\n");
    assert_string_equal(p.ab.log->str, "chat:hello bob\nfile:chunk to bob\n");
    assert_int_equal(p.aa.opened, 1);
    assert_int_equal(p.ab.opened, 1);
    assert_clean(p.a);
    assert_clean(p.b);
    pair_stop(&p);
}

/* A full queue is the usual refusal, and the caller retries after
 * on_buffered_low: the refused frame must not have spent its counter, or
 * the receiver (which takes only the next counter) drops all that follows.
 * On a file channel, where file transfers meet it. */
static void test_quota_refusal_keeps_counter(void **state)
{
    ids *t = *state;
    char err[256] = "";
    pair p;
    pair_start(&p, t->alice, t->bob, NULL);
    pair_handshake(&p);
    el_channel *f = el_secure_open_channel(p.a, err, sizeof err);
    if (!f)
        fail_msg("el_secure_open_channel: %s", err);
    send_ok(p.a, f, "chunk 0");

    f->full = 1;
    assert_int_equal(send_str(p.a, f, "chunk 1"), EL_ERR_QUOTA);
    fake_drain(f);
    assert_int_equal(p.aa.low, 1);
    send_ok(p.a, f, "chunk 1");
    send_ok(p.a, f, "chunk 2");
    pump(&p);

    assert_string_equal(p.ab.log->str, "file:chunk 0\nfile:chunk 1\nfile:chunk 2\n");
    assert_int_equal(el_channel_get_state(f), EL_CHANNEL_OPEN);
    assert_clean(p.b);
    pair_stop(&p);
}

/* §10.2: bob comes back with a new static key; alice's pin is the old one.
 * While the user decides, what bob sends (chat, and a file channel he opens
 * meanwhile) is opened, to keep the counters in step, but kept; the accept
 * delivers it in order, and the file channel goes on working. */
static void test_key_change_holds_then_delivers(void **state)
{
    ids *t = *state;
    char err[256] = "";
    trust_file tf;
    trust_file_open(&tf);
    trust_pin(tf.t, t->bob);
    pair p;
    pair_start(&p, t->alice, t->bob_rekeyed, tf.t);
    pump(&p);
    assert_int_equal(p.aa.key_changed, 1);
    assert_int_equal(p.aa.ready, 0);
    assert_int_equal(el_secure_trust_state(p.a), EL_TRUST_CHANGED);
    assert_int_equal(p.ab.ready, 1); /* bob has no pin: he cannot know */

    send_ok(p.b, p.chat_b, "while held");
    el_channel *f = el_secure_open_channel(p.b, err, sizeof err);
    if (!f)
        fail_msg("el_secure_open_channel: %s", err);
    send_ok(p.b, f, "chunk 0");
    pump(&p);
    assert_string_equal(p.aa.log->str, "");
    assert_int_equal(p.aa.opened, 0);

    if (el_secure_accept_key_change(p.a, err, sizeof err) != EL_OK)
        fail_msg("el_secure_accept_key_change: %s", err);
    assert_int_equal(p.aa.ready, 1);
    assert_int_equal(p.aa.opened, 1);
    assert_string_equal(p.aa.log->str, "chat:while held\nfile:chunk 0\n");

    send_ok(p.b, f, "chunk 1");
    send_ok(p.a, p.chat_a, "accepted");
    pump(&p);
    assert_string_equal(p.aa.log->str, "chat:while held\nfile:chunk 0\nfile:chunk 1\n");
    assert_string_equal(p.ab.log->str, "chat:accepted\n");
    assert_int_equal(el_channel_get_state(f->twin), EL_CHANNEL_OPEN);
    assert_clean(p.a);
    assert_int_equal(p.aa.failed + p.ab.failed, 0);
    pair_stop(&p);
    trust_file_remove(&tf);
}

/* The initiator is ready once it has sent HS3, and may open a file channel
 * and send at once; SCTP does not order that channel against chat, so its
 * announcement and first frame can reach the responder before HS3. */
static void test_file_frame_overtakes_hs3(void **state)
{
    ids *t = *state;
    char err[256] = "";
    pair p;
    pair_start(&p, t->alice, t->bob, NULL);
    deliver_nth(&p, 0); /* chat announced to bob */
    deliver_nth(&p, 0); /* HS1: bob answers HS2 */
    deliver_nth(&p, 0); /* HS2: alice answers HS3 and is ready */
    assert_int_equal(p.aa.ready, 1);
    assert_int_equal(p.ab.ready, 0);
    assert_int_equal(g_queue_get_length(&p.wire), 1); /* HS3 */

    el_channel *f = el_secure_open_channel(p.a, err, sizeof err);
    if (!f)
        fail_msg("el_secure_open_channel: %s", err);
    send_ok(p.a, f, "chunk 0");
    deliver_nth(&p, 1); /* f announced, ahead of HS3 */
    deliver_nth(&p, 1); /* chunk 0, ahead of HS3 */
    assert_int_equal(p.ab.ready, 0);
    assert_string_equal(p.ab.log->str, "");

    pump(&p); /* HS3 */
    assert_int_equal(p.ab.ready, 1);
    send_ok(p.a, f, "chunk 1");
    pump(&p);
    assert_string_equal(p.ab.log->str, "file:chunk 0\nfile:chunk 1\n");
    assert_int_equal(p.ab.opened, 1);
    assert_clean(p.b);
    pair_stop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_quota_refusal_keeps_counter),
        cmocka_unit_test(test_key_change_holds_then_delivers),
        cmocka_unit_test(test_file_frame_overtakes_hs3),
    };
    return cmocka_run_group_tests(tests, ids_setup, ids_teardown);
}
