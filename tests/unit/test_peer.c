/* test_peer.c - two el_peer in one process, one GMainContext, connected
 * over real ICE/DTLS/SCTP inside the test's network namespace (run through
 * tests/harness/netns.sh; exit 77 = skipped without it).
 *
 * Signaling is in memory: offers, answers and trickled candidates are
 * handed over directly (candidates are held until the other side has its
 * remote description, as a signaling server's client would). */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echolink/el_peer.h"
#include "base/err.h"

#define MAX_PENDING 64
#define MAX_CHANS 16

typedef struct side side;

typedef struct {
    side *owner;
    el_channel *ch;
    int opened, closed, low;
    /* verification of received messages */
    uint64_t received, bytes, bad;
    int64_t last_seq;
    int ooo; /* out of order */
} chan_rec;

struct side {
    const char *name;
    el_peer *pc;
    side *other;
    el_peer_state state;
    char why[256];
    int have_remote;
    char *pending[MAX_PENDING];
    int npending;
    int end_pending;
    chan_rec chans[MAX_CHANS];
    int nchans;
    int remote_channels;
    const char *refuse_label; /* on_channel closes the remote channel of this label */
    bool free_on_message;     /* on_message frees the whole peer */
};

static GMainContext *ctx;

static int netns_ok(void)
{
    return getenv("EL_NETNS_ADDR") != NULL;
}

/* ---- deterministic message contents ---- */

static uint32_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

/* Message i: 8-byte sequence number then bytes derived from it. */
static size_t fill(uint8_t *buf, size_t len, uint64_t seq)
{
    for (size_t j = 0; j < len; j++)
        buf[j] = (uint8_t)(j < 8 ? seq >> (8 * j) : (seq * 31 + j * 7) & 0xff);
    return len;
}

static int check(const uint8_t *buf, size_t len, int64_t *seq_out)
{
    if (len < 8) {
        *seq_out = -1;
        return 1;
    }
    uint64_t seq = 0;
    for (int j = 0; j < 8; j++)
        seq |= (uint64_t)buf[j] << (8 * j);
    *seq_out = (int64_t)seq;
    for (size_t j = 8; j < len; j++)
        if (buf[j] != (uint8_t)((seq * 31 + j * 7) & 0xff))
            return 0;
    return 1;
}

/* ---- callbacks ---- */

static chan_rec *rec_of(side *s, el_channel *ch)
{
    for (int i = 0; i < s->nchans; i++)
        if (s->chans[i].ch == ch)
            return &s->chans[i];
    assert_true(s->nchans < MAX_CHANS);
    chan_rec *r = &s->chans[s->nchans++];
    memset(r, 0, sizeof *r);
    r->owner = s;
    r->ch = ch;
    r->last_seq = -1;
    return r;
}

static void ch_open(el_channel *ch, void *user)
{
    rec_of(user, ch)->opened = 1;
}

static void ch_message(el_channel *ch, int binary, const uint8_t *data, size_t len, void *user)
{
    (void)binary;
    chan_rec *r = rec_of(user, ch);
    int64_t seq;
    if (!check(data, len, &seq))
        r->bad++;
    if (seq >= 0) {
        if (seq <= r->last_seq)
            r->ooo++;
        r->last_seq = seq;
    }
    r->received++;
    r->bytes += len;
    side *sd = user;
    if (sd->free_on_message) {
        el_peer_free(sd->pc); /* allowed from a callback: no callback follows */
        sd->pc = NULL;
    }
}

static void ch_close(el_channel *ch, void *user)
{
    rec_of(user, ch)->closed = 1;
}

static void ch_low(el_channel *ch, void *user)
{
    rec_of(user, ch)->low++;
}

static const el_channel_callbacks chan_cbs = {ch_open, ch_message, ch_close, ch_low};

static void on_candidate(el_peer *pc, const char *cand, const char *mid, void *user)
{
    (void)pc;
    (void)mid;
    side *s = user;
    side *o = s->other;
    if (!o->have_remote) {
        if (!cand) {
            o->end_pending = 1;
        } else if (o->npending < MAX_PENDING) {
            o->pending[o->npending++] = strdup(cand);
        }
        return;
    }
    char err[256];
    int rc = el_peer_add_remote_candidate(o->pc, cand, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: add candidate: %s", o->name, err);
}

static void on_state(el_peer *pc, el_peer_state st, const char *why, void *user)
{
    (void)pc;
    side *s = user;
    s->state = st;
    snprintf(s->why, sizeof s->why, "%s", why ? why : "");
}

static void on_channel(el_peer *pc, el_channel *ch, void *user)
{
    (void)pc;
    side *s = user;
    s->remote_channels++;
    rec_of(s, ch);
    el_channel_set_callbacks(ch, &chan_cbs, s);
    if (s->refuse_label && !strcmp(el_channel_label(ch), s->refuse_label))
        assert_int_equal(el_channel_close(ch), 0); /* an application saying no */
}

static const el_peer_callbacks peer_cbs = {on_candidate, on_state, on_channel};

static void flush_pending(side *s)
{
    s->have_remote = 1;
    char err[256];
    for (int i = 0; i < s->npending; i++) {
        if (el_peer_add_remote_candidate(s->pc, s->pending[i], err, sizeof err) != 0)
            fail_msg("%s: add candidate: %s", s->name, err);
        free(s->pending[i]);
    }
    s->npending = 0;
    if (s->end_pending)
        el_peer_add_remote_candidate(s->pc, NULL, err, sizeof err);
    s->end_pending = 0;
}

/* ---- loop helpers ---- */

static gboolean timeout_cb(gpointer data)
{
    *(int *)data = 1;
    return G_SOURCE_REMOVE;
}

typedef int (*cond_fn)(void *arg);

/* Iterates until cond(arg) holds or ms pass; returns cond's final value. */
static int run_until(cond_fn cond, void *arg, int ms)
{
    int expired = 0;
    GSource *t = g_timeout_source_new((guint)ms);
    g_source_set_callback(t, timeout_cb, &expired, NULL);
    g_source_attach(t, ctx);
    while (!cond(arg) && !expired)
        g_main_context_iteration(ctx, TRUE);
    g_source_destroy(t);
    g_source_unref(t);
    return cond(arg);
}

static void spin(int ms)
{
    int expired = 0;
    GSource *t = g_timeout_source_new((guint)ms);
    g_source_set_callback(t, timeout_cb, &expired, NULL);
    g_source_attach(t, ctx);
    while (!expired)
        g_main_context_iteration(ctx, TRUE);
    g_source_unref(t);
}

static int both_connected(void *arg)
{
    side *s = arg;
    return s->state == EL_PEER_CONNECTED && s->other->state == EL_PEER_CONNECTED;
}

static int chan_opened(void *arg)
{
    return ((chan_rec *)arg)->opened;
}

/* ---- setup ---- */

static void side_init(side *s, const char *name, side *other)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->other = other;
}

static el_peer *make_peer(side *s, const char *addr)
{
    const char *addrs[2] = {addr, NULL};
    el_peer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.local_addresses = addrs;
    char err[256];
    el_peer *pc = el_peer_new(ctx, &cfg, &peer_cbs, s, err, sizeof err);
    if (!pc)
        fail_msg("el_peer_new: %s", err);
    s->pc = pc;
    return pc;
}

/* Offer from a, answer from b; b_ns: create b's ICE inside that namespace. */
static void negotiate(side *a, side *b, const char *b_ns, char *tamper_answer)
{
    char err[256];
    char *offer = el_peer_create_offer(a->pc, err, sizeof err);
    if (!offer)
        fail_msg("offer: %s", err);
    int here = -1, there = -1;
    if (b_ns) {
        char path[256];
        snprintf(path, sizeof path, "/run/netns/%s", b_ns);
        here = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        there = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(here >= 0 && there >= 0);
        assert_int_equal(setns(there, CLONE_NEWNET), 0);
    }
    int rc = el_peer_set_remote_description(b->pc, "offer", offer, err, sizeof err);
    if (b_ns) {
        assert_int_equal(setns(here, CLONE_NEWNET), 0);
        close(here);
        close(there);
    }
    if (rc != 0)
        fail_msg("%s set offer: %s", b->name, err);
    free(offer);
    flush_pending(b);
    char *answer = el_peer_create_answer(b->pc, err, sizeof err);
    if (!answer)
        fail_msg("answer: %s", err);
    if (tamper_answer) {
        char *fp = strstr(answer, "a=fingerprint:sha-256 ");
        assert_non_null(fp);
        char *hex = fp + strlen("a=fingerprint:sha-256 ");
        hex[0] = hex[0] == 'A' ? 'B' : 'A';
    }
    rc = el_peer_set_remote_description(a->pc, "answer", answer, err, sizeof err);
    if (rc != 0)
        fail_msg("%s set answer: %s", a->name, err);
    free(answer);
    flush_pending(a);
}

typedef struct {
    side a, b;
} pair;

static int setup_pair(void **state)
{
    if (!netns_ok())
        return 0;
    pair *p = calloc(1, sizeof *p);
    side_init(&p->a, "A", &p->b);
    side_init(&p->b, "B", &p->a);
    ctx = g_main_context_new();
    make_peer(&p->a, getenv("EL_NETNS_ADDR"));
    make_peer(&p->b, getenv("EL_NETNS_ADDR"));
    *state = p;
    return 0;
}

static int teardown_pair(void **state)
{
    pair *p = *state;
    if (!p)
        return 0;
    el_peer_free(p->a.pc);
    el_peer_free(p->b.pc);
    for (int i = 0; i < p->a.npending; i++)
        free(p->a.pending[i]);
    for (int i = 0; i < p->b.npending; i++)
        free(p->b.pending[i]);
    spin(50);
    g_main_context_unref(ctx);
    ctx = NULL;
    free(p);
    return 0;
}

static chan_rec *open_channel(side *s, const char *label, const el_channel_init *init)
{
    char err[256];
    el_channel *ch = el_peer_create_channel(s->pc, label, init, err, sizeof err);
    if (!ch)
        fail_msg("create_channel: %s", err);
    chan_rec *r = rec_of(s, ch);
    el_channel_set_callbacks(ch, &chan_cbs, s);
    return r;
}

static chan_rec *remote_rec(side *s, const char *label)
{
    for (int i = 0; i < s->nchans; i++)
        if (!strcmp(el_channel_label(s->chans[i].ch), label))
            return &s->chans[i];
    return NULL;
}

static int remote_has(void *arg)
{
    void **a = arg;
    return remote_rec(a[0], a[1]) && remote_rec(a[0], a[1])->opened;
}

static chan_rec *wait_remote(side *s, const char *label)
{
    void *arg[2] = {s, (void *)label};
    if (!run_until(remote_has, arg, 10000))
        fail_msg("%s never saw channel '%s' open", s->name, label);
    return remote_rec(s, label);
}

static void connect_pair(pair *p, chan_rec **a_chat, chan_rec **b_chat)
{
    *a_chat = open_channel(&p->a, "chat", NULL);
    negotiate(&p->a, &p->b, NULL, NULL);
    if (!run_until(both_connected, &p->a, 15000))
        fail_msg("not connected: A %s (%s), B %s (%s)", el_peer_state_name(p->a.state), p->a.why,
                 el_peer_state_name(p->b.state), p->b.why);
    assert_true(run_until(chan_opened, *a_chat, 10000));
    *b_chat = wait_remote(&p->b, "chat");
}

/* Sends n messages with sizes from size_fn, keeping bufferedAmount bounded. */
static void send_many(chan_rec *r, uint64_t first_seq, int n, size_t (*size_fn)(uint64_t *rng),
                      uint64_t seed)
{
    uint8_t *buf = malloc(262144);
    uint64_t rng = seed;
    for (int i = 0; i < n; i++) {
        while (el_channel_buffered_amount(r->ch) > 1024 * 1024)
            g_main_context_iteration(ctx, TRUE);
        size_t len = size_fn(&rng);
        fill(buf, len, first_seq + (uint64_t)i);
        int rc = el_channel_send_binary(r->ch, buf, len);
        if (rc != 0)
            fail_msg("send %d of %d (%zu bytes): %s", i, n, len, el_strerror(rc));
    }
    free(buf);
}

static size_t random_size(uint64_t *rng)
{
    return rng_next(rng) % (65536 + 1);
}

typedef struct {
    chan_rec *r;
    uint64_t n;
} count_arg;

static int received_n(void *arg)
{
    count_arg *c = arg;
    return c->r->received >= c->n;
}

/* ---- tests ---- */

static void test_bulk_ordered(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    chan_rec *a, *b;
    connect_pair(p, &a, &b);
    const int n = 10000;
    send_many(a, 0, n, random_size, 42);
    /* a few at the largest size both sides accept */
    uint8_t *big = malloc(262144);
    for (int i = 0; i < 3; i++) {
        fill(big, 262144, (uint64_t)(n + i));
        assert_int_equal(el_channel_send_binary(a->ch, big, 262144), 0);
    }
    /* empty messages, text and binary */
    assert_int_equal(el_channel_send_text(a->ch, "", 0), 0);
    assert_int_equal(el_channel_send_binary(a->ch, big, 0), 0);
    /* over the peer's a=max-message-size: refused, not truncated */
    assert_int_equal(el_channel_send_binary(a->ch, big, 262145), EL_ERR_TOO_LARGE);
    free(big);
    count_arg want = {b, (uint64_t)n + 5};
    if (!run_until(received_n, &want, 120000))
        fail_msg("B received %llu of %d messages", (unsigned long long)b->received, n + 5);
    assert_int_equal(b->bad, 0);
    assert_int_equal(b->ooo, 0);
    assert_int_equal(b->last_seq, n + 2);
}

/* Loop turns in `ms`. */
static int count_turns(int ms)
{
    int expired = 0, n = 0;
    GSource *t = g_timeout_source_new((guint)ms);
    g_source_set_callback(t, timeout_cb, &expired, NULL);
    g_source_attach(t, ctx);
    while (!expired) {
        g_main_context_iteration(ctx, TRUE);
        n++;
    }
    g_source_unref(t);
    return n;
}

/* An idle connection must not wake its process 100 times a second: once
 * no message has moved for a second, usrsctp's clock ticks every 100 ms
 * (SCTP_IDLE_TICK_MS), and the next message brings the 10 ms tick back. */
static void test_idle_wakeups(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    chan_rec *a, *b;
    connect_pair(p, &a, &b);
    uint8_t buf[1024];
    fill(buf, sizeof buf, 0);
    assert_int_equal(el_channel_send_binary(a->ch, buf, sizeof buf), 0);
    count_arg one = {b, 1};
    assert_true(run_until(received_n, &one, 5000));
    spin(1300);
    /* two peers in this context: 2 x 10 ticks, ICE watchdogs, heartbeats */
    int turns = count_turns(1000);
    if (turns > 45)
        fail_msg("an idle pair woke the loop %d times in 1 s", turns);
    /* and a burst after the pause still flows */
    for (int i = 1; i <= 300; i++) {
        fill(buf, sizeof buf, (uint64_t)i);
        assert_int_equal(el_channel_send_binary(a->ch, buf, sizeof buf), 0);
    }
    count_arg all = {b, 301};
    if (!run_until(received_n, &all, 5000))
        fail_msg("after the pause B received %llu of 301", (unsigned long long)b->received);
    assert_int_equal(b->bad, 0);
    assert_int_equal(b->ooo, 0);
}

static void test_unordered_unreliable(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    chan_rec *a, *b;
    connect_pair(p, &a, &b);
    el_channel_init init = EL_CHANNEL_INIT_DEFAULT;
    init.ordered = 0;
    init.max_retransmits = 0;
    chan_rec *u = open_channel(&p->a, "lossy", &init);
    assert_true(run_until(chan_opened, u, 10000));
    chan_rec *ub = wait_remote(&p->b, "lossy");
    uint8_t buf[1000];
    for (int i = 0; i < 200; i++) {
        fill(buf, sizeof buf, (uint64_t)i);
        assert_int_equal(el_channel_send_binary(u->ch, buf, sizeof buf), 0);
    }
    count_arg want = {ub, 200};
    run_until(received_n, &want, 5000);
    /* nothing is lost on a quiet veth, but order is not promised */
    assert_int_equal(ub->received, 200);
    assert_int_equal(ub->bad, 0);
}

static void test_eight_channels_and_close(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    chan_rec *a, *b;
    connect_pair(p, &a, &b);
    chan_rec *mine[8], *theirs[8];
    char label[16];
    for (int i = 0; i < 8; i++) {
        snprintf(label, sizeof label, "ch%d", i);
        mine[i] = open_channel(i % 2 ? &p->b : &p->a, label, NULL); /* opened from both sides */
    }
    for (int i = 0; i < 8; i++) {
        assert_true(run_until(chan_opened, mine[i], 10000));
        snprintf(label, sizeof label, "ch%d", i);
        theirs[i] = wait_remote(i % 2 ? &p->a : &p->b, label);
    }
    uint8_t buf[4096];
    for (int m = 0; m < 100; m++)
        for (int i = 0; i < 8; i++) {
            size_t len = 8 + (size_t)((m * 37 + i * 101) % 4000);
            fill(buf, len, (uint64_t)m);
            assert_int_equal(el_channel_send_binary(mine[i]->ch, buf, len), 0);
        }
    for (int i = 0; i < 8; i++) {
        count_arg want = {theirs[i], 100};
        assert_true(run_until(received_n, &want, 20000));
        assert_int_equal(theirs[i]->bad, 0);
        assert_int_equal(theirs[i]->ooo, 0);
    }
    /* close from either side: both ends see it */
    int old_sid = el_channel_id(mine[0]->ch);
    assert_int_equal(el_channel_close(mine[0]->ch), 0);
    assert_int_equal(el_channel_close(theirs[1]->ch), 0);
    assert_true(run_until(chan_opened, mine[0], 10)); /* still marked opened */
    int closed_ok = 0;
    for (int t = 0; t < 100 && !closed_ok; t++) {
        spin(50);
        closed_ok = mine[0]->closed && theirs[0]->closed && mine[1]->closed && theirs[1]->closed;
    }
    assert_true(closed_ok);
    assert_int_equal(el_channel_send_text(mine[0]->ch, "x", 1), EL_ERR_INVALID);
    /* the other channels still work */
    fill(buf, 64, 1000);
    assert_int_equal(el_channel_send_binary(mine[2]->ch, buf, 64), 0);
    count_arg want = {theirs[2], 101};
    assert_true(run_until(received_n, &want, 5000));
    /* a new channel takes a freed stream id: both ends see the new channel
     * (its own label and struct), not the closed one */
    chan_rec *again = open_channel(&p->a, "again", NULL);
    assert_true(run_until(chan_opened, again, 10000));
    chan_rec *remote = wait_remote(&p->b, "again");
    assert_ptr_not_equal(remote->ch, theirs[0]->ch);
    assert_string_equal(el_channel_label(remote->ch), "again");
    fill(buf, 64, 0);
    assert_int_equal(el_channel_send_binary(again->ch, buf, 64), 0);
    count_arg one = {remote, 1};
    assert_true(run_until(received_n, &one, 5000));
    /* the closed channel is not an alias of the stream's new owner */
    assert_int_equal(el_channel_id(again->ch), old_sid);
    uint8_t *big = calloc(1, 256 * 1024);
    assert_non_null(big);
    for (int i = 0; i < 24; i++)
        assert_int_equal(el_channel_send_binary(again->ch, big, 256 * 1024), 0);
    free(big);
    assert_true(el_channel_buffered_amount(again->ch) > 0);
    assert_int_equal(el_channel_buffered_amount(mine[0]->ch), 0);
    el_channel_set_buffered_low_threshold(mine[0]->ch, 1); /* must not reach "again" */
    int lows = again->low;
    el_channel_set_buffered_low_threshold(again->ch, 0);
    count_arg all = {remote, 1 + 24};
    assert_true(run_until(received_n, &all, 20000));
    assert_int_equal(again->low, lows + 1);
}

/* A channel the application closes in on_channel never opens on that side
 * (no on_open after the close), and the opener sees it close. */
static void test_close_in_on_channel(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    chan_rec *a, *b;
    connect_pair(p, &a, &b);
    p->b.refuse_label = "unwanted";
    chan_rec *mine = open_channel(&p->a, "unwanted", NULL);
    int closed = 0;
    for (int t = 0; t < 100 && !closed; t++) {
        spin(50);
        closed = mine->closed;
    }
    assert_true(closed);
    chan_rec *theirs = remote_rec(&p->b, "unwanted");
    assert_non_null(theirs);
    assert_int_equal(theirs->opened, 0);
    assert_int_equal(el_channel_get_state(theirs->ch), EL_CHANNEL_CLOSED);
    /* the rest of the connection is untouched */
    uint8_t buf[32];
    fill(buf, sizeof buf, 0);
    assert_int_equal(el_channel_send_binary(a->ch, buf, sizeof buf), 0);
    count_arg one = {b, 1};
    assert_true(run_until(received_n, &one, 5000));
}

/* el_peer_free from inside a callback: nothing more is called back, and
 * the peer's memory goes later, from the loop (ASan would see a use after
 * free in the code that called back). */
static void test_free_in_callback(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    chan_rec *a, *b;
    connect_pair(p, &a, &b);
    p->b.free_on_message = true;
    uint8_t buf[64];
    for (int i = 0; i < 5; i++) {
        fill(buf, sizeof buf, (uint64_t)i);
        assert_int_equal(el_channel_send_binary(a->ch, buf, sizeof buf), 0);
    }
    count_arg one = {b, 1};
    assert_true(run_until(received_n, &one, 5000));
    assert_null(p->b.pc);
    spin(500); /* the other four arrive at a freed peer, or not at all */
    assert_int_equal(b->received, 1);
}

/* ICE server URLs: stun:, turn: (UDP or TCP) and turns: (TLS) are taken,
 * anything else is refused with a message naming the URL. No network. */
static void test_ice_server_urls(void **state)
{
    (void)state;
    GMainContext *c = g_main_context_new();
    static const char *const good[] = {"stun:s.example:3478", "turn:t.example",
                                       "turn:t.example:3478?transport=tcp",
                                       "turns:t.example:5349", "turns:t.example"};
    static const char *const bad[] = {"http://x", "turn:", "turn:h:0", "turns:h:99999", "stunx:h"};
    char err[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *urls[] = {good[i], NULL};
        el_peer_config cfg = {.ice_servers = urls, .turn_username = "u", .turn_credential = "p"};
        el_peer *pc = el_peer_new(c, &cfg, &peer_cbs, NULL, err, sizeof err);
        if (!pc)
            fail_msg("%s refused: %s", good[i], err);
        el_peer_free(pc);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *urls[] = {bad[i], NULL};
        el_peer_config cfg = {.ice_servers = urls, .turn_username = "u", .turn_credential = "p"};
        assert_null(el_peer_new(c, &cfg, &peer_cbs, NULL, err, sizeof err));
        assert_non_null(strstr(err, bad[i]));
    }
    /* a=max-message-size is a promise: no more than SCTP can take */
    el_peer_config big = {.max_message_size = 1u << 20};
    assert_null(el_peer_new(c, &big, &peer_cbs, NULL, err, sizeof err));
    assert_non_null(strstr(err, "max_message_size"));
    el_peer_config small = {.max_message_size = 65536};
    el_peer *ok = el_peer_new(c, &small, &peer_cbs, NULL, err, sizeof err);
    assert_non_null(ok);
    el_peer_free(ok);
    /* one context for all the live peers of a process (usrsctp's one
     * clock); another is refused until they are gone */
    GMainContext *other = g_main_context_new();
    el_peer *live = el_peer_new(c, NULL, &peer_cbs, NULL, err, sizeof err);
    assert_non_null(live);
    assert_null(el_peer_new(other, NULL, &peer_cbs, NULL, err, sizeof err));
    assert_non_null(strstr(err, "one GMainContext"));
    el_peer *same = el_peer_new(c, NULL, &peer_cbs, NULL, err, sizeof err);
    assert_non_null(same);
    el_peer_free(live);
    assert_null(el_peer_new(other, NULL, &peer_cbs, NULL, err, sizeof err)); /* `same` lives */
    el_peer_free(same);
    el_peer *moved = el_peer_new(other, NULL, &peer_cbs, NULL, err, sizeof err);
    if (!moved)
        fail_msg("after the last peer of the first context: %s", err);
    el_peer_free(moved);
    g_main_context_unref(other);
    g_main_context_unref(c);
}

static void test_fingerprint_mismatch(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    open_channel(&p->a, "chat", NULL);
    negotiate(&p->a, &p->b, NULL, (char *)"tamper");
    int failed = 0;
    for (int t = 0; t < 200 && !failed; t++) {
        spin(50);
        failed = p->a.state == EL_PEER_FAILED;
    }
    if (!failed)
        fail_msg("A is %s (%s), expected failed", el_peer_state_name(p->a.state), p->a.why);
    assert_non_null(strstr(p->a.why, "fingerprint"));
    assert_int_not_equal(p->b.state, EL_PEER_CONNECTED);
}

static void test_bad_sdp(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    char err[256];
    char *offer = el_peer_create_offer(p->a.pc, err, sizeof err);
    assert_non_null(offer);
    /* garbage */
    assert_int_not_equal(el_peer_set_remote_description(p->b.pc, "offer", "\x01\x02garbage", err, sizeof err), 0);
    assert_true(strlen(err) > 0);
    /* truncated */
    char *half = strndup(offer, strlen(offer) / 3);
    assert_int_not_equal(el_peer_set_remote_description(p->b.pc, "offer", half, err, sizeof err), 0);
    free(half);
    /* huge */
    size_t hn = 300 * 1024;
    char *huge = malloc(hn + 1);
    memset(huge, 'a', hn);
    memcpy(huge, "v=0\r\n", 5);
    huge[hn] = '\0';
    assert_int_not_equal(el_peer_set_remote_description(p->b.pc, "offer", huge, err, sizeof err), 0);
    assert_non_null(strstr(err, "256 KiB"));
    free(huge);
    /* wrong type, answer without offer */
    assert_int_equal(el_peer_set_remote_description(p->b.pc, "pranswer", offer, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_peer_set_remote_description(p->b.pc, "answer", offer, err, sizeof err), EL_ERR_INVALID);
    /* a bad candidate */
    assert_int_equal(el_peer_set_remote_description(p->b.pc, "offer", offer, err, sizeof err), 0);
    assert_int_not_equal(el_peer_add_remote_candidate(p->b.pc, "candidate:garbage", err, sizeof err), 0);
    free(offer);
}

static int run_cmd(const char *cmd)
{
    int rc = system(cmd);
    fprintf(stderr, "$ %s -> %d\n", cmd, rc);
    return rc;
}

static int not_connected(void *arg)
{
    side *s = arg;
    return s->state == EL_PEER_DISCONNECTED || s->state == EL_PEER_FAILED;
}

static void test_link_down_and_ice_restart(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    /* B lives in the peer namespace, behind the veth */
    el_peer_free(p->b.pc);
    make_peer(&p->b, getenv("EL_NETNS_PEER_ADDR"));
    chan_rec *a = open_channel(&p->a, "chat", NULL);
    negotiate(&p->a, &p->b, getenv("EL_NETNS_PEER"), NULL);
    assert_true(run_until(both_connected, &p->a, 15000));
    assert_true(run_until(chan_opened, a, 10000));
    chan_rec *b = wait_remote(&p->b, "chat");
    uint8_t buf[100];
    fill(buf, sizeof buf, 1);
    assert_int_equal(el_channel_send_binary(a->ch, buf, sizeof buf), 0);
    count_arg one = {b, 1};
    assert_true(run_until(received_n, &one, 5000));

    /* an ICE restart on a live connection keeps the channel usable */
    char err[256];
    assert_int_equal(el_peer_restart_ice(p->a.pc, err, sizeof err), 0);
    negotiate(&p->a, &p->b, NULL, NULL);
    spin(1000);
    assert_int_equal(p->a.state, EL_PEER_CONNECTED);
    fill(buf, sizeof buf, 2);
    assert_int_equal(el_channel_send_binary(a->ch, buf, sizeof buf), 0);
    count_arg two = {b, 2};
    assert_true(run_until(received_n, &two, 5000));

    /* the answerer may restart as well: the first offerer answers its offer */
    assert_int_equal(el_peer_restart_ice(p->b.pc, err, sizeof err), 0);
    negotiate(&p->b, &p->a, NULL, NULL);
    spin(1000);
    assert_int_equal(p->a.state, EL_PEER_CONNECTED);
    assert_int_equal(p->b.state, EL_PEER_CONNECTED);
    fill(buf, sizeof buf, 3);
    assert_int_equal(el_channel_send_binary(a->ch, buf, sizeof buf), 0);
    count_arg three = {b, 3};
    assert_true(run_until(received_n, &three, 5000));

    /* link down: the state leaves "connected" within a bounded time */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ip link set %s down", getenv("EL_NETNS_LINK"));
    assert_int_equal(run_cmd(cmd), 0);
    gint64 t0 = g_get_monotonic_time();
    assert_true(run_until(not_connected, &p->a, 20000));
    fprintf(stderr, "A went %s after %.1f s (%s)\n", el_peer_state_name(p->a.state),
            (double)(g_get_monotonic_time() - t0) / 1e6, p->a.why);

    /* link up again + ICE restart: recovered, same channel */
    snprintf(cmd, sizeof cmd, "ip link set %s up && ip route replace default via %s dev %s",
             getenv("EL_NETNS_LINK"), getenv("EL_NETNS_PEER_ADDR"), getenv("EL_NETNS_LINK"));
    assert_int_equal(run_cmd(cmd), 0);
    spin(300);
    assert_int_equal(el_peer_restart_ice(p->a.pc, err, sizeof err), 0);
    negotiate(&p->a, &p->b, NULL, NULL);
    if (!run_until(both_connected, &p->a, 20000))
        fail_msg("not recovered: A %s (%s), B %s (%s)", el_peer_state_name(p->a.state), p->a.why,
                 el_peer_state_name(p->b.state), p->b.why);
    fill(buf, sizeof buf, 4);
    assert_int_equal(el_channel_send_binary(a->ch, buf, sizeof buf), 0);
    count_arg four = {b, 4};
    assert_true(run_until(received_n, &four, 10000));
}

int main(void)
{
    if (!netns_ok()) {
        fprintf(stderr, "test_peer: skipped: run it through tests/harness/netns.sh\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_sdp, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_fingerprint_mismatch, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_eight_channels_and_close, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_unordered_unreliable, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_bulk_ordered, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_idle_wakeups, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_link_down_and_ice_restart, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_close_in_on_channel, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_free_in_callback, setup_pair, teardown_pair),
        cmocka_unit_test(test_ice_server_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
