/* test_sctp.c - src/rtc/sctp: two associations in one process, wired back
 * to back. Each side's send callback only appends the packet to the other
 * side's inbox (optionally losing every n-th); the test pumps the inboxes
 * (el_sctp_input) and advances usrsctp's timers with el_sctp_tick on
 * virtual time when nothing moves. Side a is the DTLS client (even stream
 * ids), b the server (odd).
 *
 * Covered: association up (simultaneous open); DCEP open from either side
 * (label/protocol, parity, ACK; ordered until the ACK, then the U bit, read
 * from usrsctp's counters); 1,200 + 300 ordered messages of random sizes
 * 0..64 KiB (fixed seed) plus several of exactly 256 KiB, both directions,
 * byte for byte; a message above the peer's max-message-size refused with
 * EL_ERR_TOO_LARGE and nothing sent; an over-long incoming message closing
 * its channel; unordered + max_retransmits 0 and timed channels; eight
 * channels interleaved; bufferedAmount rising on a burst and
 * on_buffered_low after pumping; close from either side, and from both at
 * once; negotiated ids (also beyond the initial 1024 streams); sending
 * before connect; a lossy link (reliable intact, unreliable whole-or-none);
 * refused OPEN (parity) and data on an unused stream; association loss
 * (peer silent; peer freed, i.e. ABORT); el_sctp_free from inside a
 * callback; every packet within EL_SCTP_MTU. EL_TEST_FILTER=<glob> runs a
 * subset, EL_TEST_DEBUG=1 turns on debug logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <usrsctp.h> /* usrsctp_get_stat: check what went on the wire */

#include "test.h"

#include "base/err.h"
#include "base/log.h"
#include "rtc/crc32c.h"
#include "rtc/sctp.h"

/* ---- deterministic data ------------------------------------------------------ */

static uint64_t rng_next(uint64_t *st)
{
    uint64_t x = *st; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Fills buf with the bytes of message number idx of stream `tag`. */
static void fill(uint8_t *buf, size_t len, uint32_t tag, uint32_t idx)
{
    uint64_t st = ((uint64_t)tag << 32 | idx) * 0x9E3779B97F4A7C15ULL + 1;
    size_t i = 0;
    while (i + 8 <= len) {
        uint64_t v = rng_next(&st);
        memcpy(buf + i, &v, 8);
        i += 8;
    }
    uint64_t v = rng_next(&st);
    memcpy(buf + i, &v, len - i);
}

/* ---- packet queues and peers ------------------------------------------------- */

typedef struct pkt {
    struct pkt *next;
    size_t len;
    uint8_t data[];
} pkt;

typedef struct {
    pkt *head, *tail;
    size_t n;
} pktq;

typedef struct {
    uint16_t sid;
    char label[64];
    char protocol[64];
    int remote;
} open_ev;

typedef struct {
    uint16_t sid;
    int binary;
    size_t len;
    uint8_t *data;
} rx_msg;

/* Checks an ordered stream of generated messages on one sid. */
typedef struct {
    bool on;
    uint16_t sid;
    uint32_t tag;
    uint64_t rng;    /* same seed as the sender: predicts each length */
    uint32_t count;  /* messages checked */
    uint32_t total;  /* how many the sender will send */
    const size_t *big_at; /* indexes that are 256 KiB messages (sorted), may be NULL */
    size_t nbig;
    uint64_t bytes;
    uint8_t *scratch;
} verifier;

typedef struct peer {
    const char *name;
    el_sctp *s;
    struct peer *other;
    pktq inbox;
    size_t max_pkt;
    int up, down;
    open_ev opens[32];
    int nopens;
    uint16_t closed[32];
    int nclosed;
    int low_events;
    rx_msg msgs[512];
    int nmsgs;
    verifier ver;
    int free_self_on_message; /* el_sctp_free from inside on_message */
    unsigned drop_every;      /* lose every n-th packet this side sends (0: none) */
    unsigned sent_pkts;
} peer;

static void q_push(pktq *q, const uint8_t *data, size_t len)
{
    pkt *k = malloc(sizeof *k + len);
    assert_non_null(k);
    k->next = NULL;
    k->len = len;
    memcpy(k->data, data, len);
    if (q->tail)
        q->tail->next = k;
    else
        q->head = k;
    q->tail = k;
    q->n++;
}

static pkt *q_pop(pktq *q)
{
    pkt *k = q->head;
    if (k) {
        q->head = k->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
    }
    return k;
}

static void q_clear(pktq *q)
{
    pkt *k;
    while ((k = q_pop(q)))
        free(k);
}

/* usrsctp no longer verifies incoming checksums (sctp.c): check here that
 * every packet we put on the wire carries the one it would have computed. */
static void check_crc(const uint8_t *p, size_t len)
{
    assert_true(len >= 12);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, p, len);
    memset(copy + 8, 0, 4);
    uint32_t want = usrsctp_crc32c(copy, len); /* as usrsctp stores it */
    free(copy);
    assert_memory_equal(p + 8, &want, 4);
}

static void cb_send(void *user, const uint8_t *p, size_t len)
{
    peer *me = user;
    check_crc(p, len);
    if (len > me->max_pkt)
        me->max_pkt = len;
    if (me->drop_every && ++me->sent_pkts % me->drop_every == 0)
        return; /* lost on the wire */
    q_push(&me->other->inbox, p, len); /* never delivered from in here */
}

static void cb_state(void *user, int up, const char *why)
{
    peer *me = user;
    if (up)
        me->up++;
    else
        me->down++;
}

static void cb_open(void *user, uint16_t sid, const char *label, const char *protocol, int remote)
{
    peer *me = user;
    assert_true(me->nopens < (int)(sizeof me->opens / sizeof me->opens[0]));
    open_ev *e = &me->opens[me->nopens++];
    e->sid = sid;
    snprintf(e->label, sizeof e->label, "%s", label);
    snprintf(e->protocol, sizeof e->protocol, "%s", protocol);
    e->remote = remote;
}

static size_t expected_len(verifier *v, uint32_t idx)
{
    size_t len = (size_t)(rng_next(&v->rng) % 65537); /* always advance: lockstep with sender */
    for (size_t i = 0; i < v->nbig; i++)
        if (v->big_at[i] == idx)
            return EL_SCTP_MAX_MESSAGE_SIZE;
    return len;
}

static void cb_message(void *user, uint16_t sid, int binary, const uint8_t *data, size_t len)
{
    peer *me = user;
    verifier *v = &me->ver;
    if (v->on && sid == v->sid) {
        assert_true(v->count < v->total);
        size_t want = expected_len(v, v->count);
        if (len != want)
            fail_msg("%s: message %u on %u: %zu bytes, want %zu", me->name, v->count, sid, len,
                     want);
        assert_int_equal(binary, (int)(v->count & 1));
        fill(v->scratch, len, v->tag, v->count);
        if (len && memcmp(data, v->scratch, len) != 0)
            fail_msg("%s: message %u on %u differs", me->name, v->count, sid);
        v->count++;
        v->bytes += len;
    } else {
        assert_true(me->nmsgs < (int)(sizeof me->msgs / sizeof me->msgs[0]));
        rx_msg *m = &me->msgs[me->nmsgs++];
        m->sid = sid;
        m->binary = binary;
        m->len = len;
        m->data = malloc(len ? len : 1);
        assert_non_null(m->data);
        if (len)
            memcpy(m->data, data, len);
    }
    if (me->free_self_on_message) {
        el_sctp_free(me->s); /* deferred: we are inside its callback */
        me->s = NULL;
        me->free_self_on_message = 0;
    }
}

static void cb_closed(void *user, uint16_t sid)
{
    peer *me = user;
    assert_true(me->nclosed < (int)(sizeof me->closed / sizeof me->closed[0]));
    me->closed[me->nclosed++] = sid;
}

static void cb_low(void *user, uint16_t sid)
{
    peer *me = user;
    me->low_events++;
}

static const el_sctp_callbacks callbacks = {
    .send = cb_send,
    .on_state = cb_state,
    .on_channel_open = cb_open,
    .on_message = cb_message,
    .on_channel_closed = cb_closed,
    .on_buffered_low = cb_low,
};

typedef struct {
    peer a, b;
} pair;

static void peer_clear_msgs(peer *p)
{
    for (int i = 0; i < p->nmsgs; i++)
        free(p->msgs[i].data);
    p->nmsgs = 0;
}

/* a: DTLS client; b: server. a_remote_max is what a may send to b. */
static pair *pair_new(size_t a_remote_max, size_t b_remote_max)
{
    pair *pr = calloc(1, sizeof *pr);
    assert_non_null(pr);
    char err[256] = "";
    pr->a.name = "a";
    pr->b.name = "b";
    pr->a.other = &pr->b;
    pr->b.other = &pr->a;
    /* made the way el_peer makes them, before the role and the limits are
     * known (the wrong ones here), then told (el_sctp_set_peer): every test
     * below relies on the role (stream ids) and the limits taking effect */
    pr->a.s = el_sctp_new(0, 0, &callbacks, &pr->a, err, sizeof err);
    if (!pr->a.s)
        fail_msg("el_sctp_new: %s", err);
    pr->b.s = el_sctp_new(1, 0, &callbacks, &pr->b, err, sizeof err);
    if (!pr->b.s)
        fail_msg("el_sctp_new: %s", err);
    assert_int_equal(el_sctp_set_peer(pr->a.s, 1, a_remote_max), EL_OK);
    assert_int_equal(el_sctp_set_peer(pr->b.s, 0, b_remote_max), EL_OK);
    return pr;
}

static void pair_free(pair *pr)
{
    el_sctp_free(pr->a.s);
    el_sctp_free(pr->b.s);
    q_clear(&pr->a.inbox);
    q_clear(&pr->b.inbox);
    peer_clear_msgs(&pr->a);
    peer_clear_msgs(&pr->b);
    free(pr->a.ver.scratch);
    free(pr->b.ver.scratch);
    assert_true(pr->a.max_pkt <= EL_SCTP_MTU);
    assert_true(pr->b.max_pkt <= EL_SCTP_MTU);
    free(pr);
    el_sctp_tick(10); /* lets a refused usrsctp_finish retry; a no-op otherwise */
}

/* Delivers the packets in p's inbox at entry (new ones wait for the next round). */
static bool deliver(peer *p)
{
    size_t n = p->inbox.n;
    bool any = n > 0;
    while (n--) {
        pkt *k = q_pop(&p->inbox);
        if (p->s)
            assert_int_equal(el_sctp_input(p->s, k->data, k->len), EL_OK);
        free(k);
    }
    return any;
}

static bool pump_round(pair *pr)
{
    bool moved = deliver(&pr->a);
    moved = deliver(&pr->b) || moved;
    if (!moved)
        el_sctp_tick(10);
    return moved;
}

/* Pumps until done(pr) or max_idle_ms of virtual time with no packet moving. */
static bool pump_until(pair *pr, bool (*done)(pair *), int max_idle_ms)
{
    int idle = 0;
    for (;;) {
        if (done && done(pr))
            return true;
        if (pump_round(pr))
            idle = 0;
        else if ((idle += 10) > max_idle_ms)
            return done ? done(pr) : true;
    }
}

static bool both_up(pair *pr)
{
    return pr->a.up && pr->b.up;
}

static pair *pair_up(size_t a_remote_max, size_t b_remote_max)
{
    pair *pr = pair_new(a_remote_max, b_remote_max);
    assert_int_equal(el_sctp_connect(pr->a.s), EL_OK);
    assert_int_equal(el_sctp_connect(pr->b.s), EL_OK);
    assert_true(pump_until(pr, both_up, 5000));
    return pr;
}

/* The latest open event of sid (ids are reused after a close). */
static int find_open(const peer *p, uint16_t sid)
{
    for (int i = p->nopens - 1; i >= 0; i--)
        if (p->opens[i].sid == sid)
            return i;
    return -1;
}

static bool has_closed(const peer *p, uint16_t sid)
{
    for (int i = 0; i < p->nclosed; i++)
        if (p->closed[i] == sid)
            return true;
    return false;
}

/* Opens a DCEP channel from `from` and pumps until both sides report it. */
static uint16_t open_dcep(pair *pr, peer *from, const char *label, const char *protocol,
                          int ordered, int rtx, int ttl)
{
    uint16_t sid = 0xffff;
    int n_from = from->nopens, n_other = from->other->nopens; /* only new events count */
    assert_int_equal(el_sctp_open_channel(from->s, label, protocol, ordered, rtx, ttl, -1, &sid),
                     EL_OK);
    int i = 0, j = 0;
    for (int round = 0; round < 100000; round++) {
        i = find_open(from, sid);
        j = find_open(from->other, sid);
        if (i >= n_from && j >= n_other)
            break;
        pump_round(pr);
    }
    assert_true(i >= n_from && j >= n_other);
    assert_int_equal(from->opens[i].remote, 0);
    assert_int_equal(from->other->opens[j].remote, 1);
    assert_string_equal(from->other->opens[j].label, label);
    assert_string_equal(from->other->opens[j].protocol, protocol ? protocol : "");
    return sid;
}

static bool quiet(pair *pr)
{
    return false; /* pump until idle */
}

/* ---- tests ------------------------------------------------------------------- */

static void test_association_up(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    assert_int_equal(pr->a.up, 1);
    assert_int_equal(pr->b.up, 1);
    assert_int_equal(pr->a.down + pr->b.down, 0);
    assert_int_equal(el_sctp_connect(pr->a.s), EL_ERR_INVALID); /* only once */
    assert_int_equal(el_sctp_set_peer(pr->a.s, 0, 1024), EL_ERR_INVALID); /* too late */
    assert_int_equal(el_sctp_set_peer(NULL, 0, 1024), EL_ERR_INVALID);
    assert_int_equal(el_sctp_send(pr->a.s, 0, 1, (const uint8_t *)"x", 1), EL_ERR_NOT_FOUND);
    pump_until(pr, quiet, 200);
    pair_free(pr);
}

static void test_dcep_open_both_sides(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t s0 = open_dcep(pr, &pr->a, "chat", "echolink/1", 1, -1, -1);
    uint16_t s1 = open_dcep(pr, &pr->b, "fr\xc3\xa5n-b", NULL, 1, -1, -1);
    uint16_t s2 = open_dcep(pr, &pr->a, "", "", 1, -1, -1);
    uint16_t s3 = open_dcep(pr, &pr->b, "files", "f", 1, -1, -1);
    assert_int_equal(s0, 0); /* client: even, lowest first */
    assert_int_equal(s1, 1); /* server: odd */
    assert_int_equal(s2, 2);
    assert_int_equal(s3, 3);

    assert_int_equal(el_sctp_send(pr->a.s, s1, 0, (const uint8_t *)"hello b", 7), EL_OK);
    assert_int_equal(el_sctp_send(pr->b.s, s0, 1, (const uint8_t *)"\x00\x01\x02", 3), EL_OK);
    assert_int_equal(el_sctp_send(pr->b.s, s0, 0, NULL, 0), EL_OK); /* empty text: PPID 56 */
    assert_int_equal(el_sctp_send(pr->a.s, s2, 1, NULL, 0), EL_OK); /* empty binary: PPID 57 */
    pump_until(pr, quiet, 300);
    assert_int_equal(pr->b.nmsgs, 2);
    assert_int_equal(pr->b.msgs[0].sid, s1);
    assert_int_equal(pr->b.msgs[0].binary, 0);
    EL_ASSERT_SPAN(pr->b.msgs[0].data, pr->b.msgs[0].len, "hello b");
    assert_int_equal(pr->b.msgs[1].sid, s2);
    assert_int_equal(pr->b.msgs[1].binary, 1);
    assert_int_equal(pr->b.msgs[1].len, 0);
    assert_int_equal(pr->a.nmsgs, 2);
    assert_int_equal(pr->a.msgs[0].binary, 1);
    assert_int_equal(pr->a.msgs[0].len, 3);
    assert_memory_equal(pr->a.msgs[0].data, "\x00\x01\x02", 3);
    assert_int_equal(pr->a.msgs[1].binary, 0);
    assert_int_equal(pr->a.msgs[1].len, 0);
    /* both invalid reliability settings at once */
    assert_int_equal(el_sctp_open_channel(pr->a.s, "x", "", 1, 3, 100, -1, NULL), EL_ERR_INVALID);
    assert_int_equal(el_sctp_open_channel(pr->a.s, "\xff", "", 1, -1, -1, -1, NULL),
                     EL_ERR_INVALID); /* label not UTF-8 */
    pair_free(pr);
}

static const size_t big_a[] = {100, 400, 777, 1199};
static const size_t big_b[] = {5, 250};

static void start_stream(peer *sender, uint16_t sid, uint32_t tag, uint32_t total,
                         const size_t *big, size_t nbig, uint64_t seed, uint64_t *rng)
{
    verifier *v = &sender->other->ver;
    memset(v, 0, sizeof *v);
    v->on = true;
    v->sid = sid;
    v->tag = tag;
    v->rng = seed;
    v->total = total;
    v->big_at = big;
    v->nbig = nbig;
    v->scratch = malloc(EL_SCTP_MAX_MESSAGE_SIZE);
    assert_non_null(v->scratch);
    *rng = seed;
}

static bool streams_done(pair *pr)
{
    return pr->a.ver.count == pr->a.ver.total && pr->b.ver.count == pr->b.ver.total;
}

static void test_bulk_ordered(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t sid = open_dcep(pr, &pr->a, "bulk", "", 1, -1, -1);
    const uint32_t na = 1200, nb = 300;
    uint64_t rng_a, rng_b;
    start_stream(&pr->a, sid, 0xA, na, big_a, 4, 42, &rng_a);
    start_stream(&pr->b, sid, 0xB, nb, big_b, 2, 4242, &rng_b);
    uint8_t *buf = malloc(EL_SCTP_MAX_MESSAGE_SIZE);
    assert_non_null(buf);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint32_t ia = 0, ib = 0;
    uint64_t sent = 0;
    size_t max_buffered = 0;
    while (ia < na || ib < nb) {
        /* keep about 1 MiB waiting above usrsctp per side */
        if (ia < na && el_sctp_buffered(pr->a.s, sid) < 1024 * 1024) {
            size_t len = (size_t)(rng_next(&rng_a) % 65537);
            for (size_t k = 0; k < 4; k++)
                if (big_a[k] == ia)
                    len = EL_SCTP_MAX_MESSAGE_SIZE;
            fill(buf, len, 0xA, ia);
            assert_int_equal(el_sctp_send(pr->a.s, sid, (int)(ia & 1), buf, len), EL_OK);
            sent += len;
            ia++;
        } else if (ib < nb && el_sctp_buffered(pr->b.s, sid) < 1024 * 1024) {
            size_t len = (size_t)(rng_next(&rng_b) % 65537);
            for (size_t k = 0; k < 2; k++)
                if (big_b[k] == ib)
                    len = EL_SCTP_MAX_MESSAGE_SIZE;
            fill(buf, len, 0xB, ib);
            assert_int_equal(el_sctp_send(pr->b.s, sid, (int)(ib & 1), buf, len), EL_OK);
            sent += len;
            ib++;
        } else {
            size_t ba = el_sctp_buffered(pr->a.s, sid);
            if (ba > max_buffered)
                max_buffered = ba;
            pump_round(pr);
        }
    }
    assert_true(pump_until(pr, streams_done, 3000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal(pr->b.ver.count, na);
    assert_int_equal(pr->a.ver.count, nb);
    assert_int_equal(pr->a.nmsgs + pr->b.nmsgs, 0);
    assert_true(max_buffered > 0); /* flow control above usrsctp was exercised */
    assert_int_equal(el_sctp_buffered(pr->a.s, sid), 0);
    printf("  bulk: %u+%u messages, %.1f MB in %.2f s (%.1f MB/s), largest packet %zu\n", na, nb,
           (double)sent / 1e6, secs, (double)sent / 1e6 / secs,
           pr->a.max_pkt > pr->b.max_pkt ? pr->a.max_pkt : pr->b.max_pkt);
    free(buf);
    pair_free(pr);
}

static void test_too_large_refused(void **state)
{
    /* a may send 256 KiB to b; b may send only 64 KiB to a */
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_DEFAULT_REMOTE_MAX);
    uint16_t sid = open_dcep(pr, &pr->a, "big", "", 1, -1, -1);
    pump_until(pr, quiet, 300);
    size_t before = pr->a.inbox.n + pr->b.inbox.n;
    assert_int_equal(before, 0);
    uint8_t *buf = calloc(1, EL_SCTP_MAX_MESSAGE_SIZE + 1);
    assert_non_null(buf);
    assert_int_equal(el_sctp_send(pr->a.s, sid, 1, buf, EL_SCTP_MAX_MESSAGE_SIZE + 1),
                     EL_ERR_TOO_LARGE);
    assert_int_equal(el_sctp_send(pr->b.s, sid, 1, buf, EL_SCTP_DEFAULT_REMOTE_MAX + 1),
                     EL_ERR_TOO_LARGE);
    assert_int_equal(el_sctp_buffered(pr->a.s, sid), 0);
    assert_int_equal(el_sctp_buffered(pr->b.s, sid), 0);
    assert_int_equal(pr->a.inbox.n + pr->b.inbox.n, 0); /* nothing went out */
    pump_until(pr, quiet, 300);
    assert_int_equal(pr->a.nmsgs + pr->b.nmsgs, 0);
    /* exactly at the limits is fine */
    assert_int_equal(el_sctp_send(pr->a.s, sid, 1, buf, EL_SCTP_MAX_MESSAGE_SIZE), EL_OK);
    assert_int_equal(el_sctp_send(pr->b.s, sid, 1, buf, EL_SCTP_DEFAULT_REMOTE_MAX), EL_OK);
    pump_until(pr, quiet, 300);
    assert_int_equal(pr->b.nmsgs, 1);
    assert_int_equal(pr->b.msgs[0].len, EL_SCTP_MAX_MESSAGE_SIZE);
    assert_int_equal(pr->a.nmsgs, 1);
    assert_int_equal(pr->a.msgs[0].len, EL_SCTP_DEFAULT_REMOTE_MAX);
    free(buf);
    pair_free(pr);
}

static bool closed_0_both(pair *pr)
{
    return has_closed(&pr->a, 0) && has_closed(&pr->b, 0);
}

static void test_oversize_incoming_closes_channel(void **state)
{
    /* b believes a takes anything (max-message-size 0); a enforces 256 KiB */
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, 0);
    uint16_t sid = open_dcep(pr, &pr->a, "victim", "", 1, -1, -1);
    uint8_t *buf = calloc(1, EL_SCTP_MAX_MESSAGE_SIZE + 1);
    assert_non_null(buf);
    assert_int_equal(el_sctp_send(pr->b.s, sid, 1, buf, EL_SCTP_MAX_MESSAGE_SIZE + 1), EL_OK);
    assert_true(pump_until(pr, closed_0_both, 3000));
    assert_int_equal(pr->a.nmsgs, 0); /* dropped, never truncated */
    /* the association survives: a new channel works (and reuses id 0) */
    uint16_t again = open_dcep(pr, &pr->a, "next", "", 1, -1, -1);
    assert_int_equal(again, 0);
    assert_int_equal(el_sctp_send(pr->b.s, again, 0, (const uint8_t *)"ok", 2), EL_OK);
    pump_until(pr, quiet, 300);
    assert_int_equal(pr->a.nmsgs, 1);
    EL_ASSERT_SPAN(pr->a.msgs[0].data, pr->a.msgs[0].len, "ok");
    free(buf);
    pair_free(pr);
}

static uint32_t unordered_sends(void)
{
    struct sctpstat st;
    usrsctp_get_stat(&st);
    return st.sctps_sends_with_unord;
}

static void test_unordered_unreliable(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t u = open_dcep(pr, &pr->a, "unreliable", "", 0, 0, -1);
    uint16_t t = open_dcep(pr, &pr->b, "timed", "", 1, -1, 1000);
    uint32_t unord0 = unordered_sends();
    uint8_t buf[3000];
    enum { N = 200 };
    for (uint32_t i = 0; i < N; i++) {
        size_t len = 4 + (i * 37) % (sizeof buf - 4);
        fill(buf, len, 7, i);
        memcpy(buf, &i, 4);
        assert_int_equal(el_sctp_send(pr->a.s, u, 1, buf, len), EL_OK);
    }
    for (uint32_t i = 0; i < 20; i++)
        assert_int_equal(el_sctp_send(pr->b.s, t, 0, (const uint8_t *)"timed", 5), EL_OK);
    assert_int_equal(el_sctp_send(pr->b.s, u, 0, (const uint8_t *)"reply", 5), EL_OK);
    pump_until(pr, quiet, 500);
    assert_int_equal(unordered_sends() - unord0, N + 1); /* after the ACK: U bit set */
    /* no loss in process: every message arrives once, intact (order not promised) */
    assert_int_equal(pr->b.nmsgs, N);
    bool seen[N] = {false};
    for (int k = 0; k < pr->b.nmsgs; k++) {
        uint32_t i;
        assert_int_equal(pr->b.msgs[k].sid, u);
        assert_true(pr->b.msgs[k].len >= 4);
        memcpy(&i, pr->b.msgs[k].data, 4);
        assert_true(i < N && !seen[i]);
        seen[i] = true;
        size_t len = 4 + (i * 37) % (sizeof buf - 4);
        assert_int_equal(pr->b.msgs[k].len, len);
        fill(buf, len, 7, i);
        assert_memory_equal(pr->b.msgs[k].data + 4, buf + 4, len - 4);
    }
    assert_int_equal(pr->a.nmsgs, 21);
    int timed = 0, reply = 0;
    for (int k = 0; k < pr->a.nmsgs; k++) {
        if (pr->a.msgs[k].sid == t)
            timed++;
        else if (pr->a.msgs[k].sid == u)
            reply++;
    }
    assert_int_equal(timed, 20);
    assert_int_equal(reply, 1);
    pair_free(pr);
}

static void test_eight_channels_interleaved(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t sids[8];
    char label[16];
    /* all eight opened before any packet moves: 4 per side */
    for (int i = 0; i < 8; i++) {
        peer *p = i & 1 ? &pr->b : &pr->a;
        snprintf(label, sizeof label, "ch%d", i);
        assert_int_equal(el_sctp_open_channel(p->s, label, "multi", 1, -1, -1, -1, &sids[i]),
                         EL_OK);
        assert_int_equal(sids[i] & 1, i & 1);
    }
    pump_until(pr, quiet, 300);
    assert_int_equal(pr->a.nopens, 8);
    assert_int_equal(pr->b.nopens, 8);
    for (int i = 0; i < 8; i++) {
        peer *owner = i & 1 ? &pr->b : &pr->a;
        int j = find_open(owner->other, sids[i]);
        assert_true(j >= 0);
        snprintf(label, sizeof label, "ch%d", i);
        assert_string_equal(owner->other->opens[j].label, label);
        assert_int_equal(owner->other->opens[j].remote, 1);
    }
    /* in every round, a message on every channel from both sides */
    enum { ROUNDS = 30 };
    uint8_t buf[9000];
    for (uint32_t r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < 8; i++) {
            for (int side = 0; side < 2; side++) {
                peer *p = side ? &pr->b : &pr->a;
                size_t len = 8 + (r * 131 + (uint32_t)i * 977) % (sizeof buf - 8);
                uint32_t hdr[2] = {(uint32_t)i, r};
                fill(buf, len, 100 + (uint32_t)i, r);
                memcpy(buf, hdr, 8);
                assert_int_equal(el_sctp_send(p->s, sids[i], 1, buf, len), EL_OK);
            }
        }
        if (r % 3 == 0)
            pump_round(pr);
    }
    pump_until(pr, quiet, 500);
    for (int side = 0; side < 2; side++) {
        peer *p = side ? &pr->b : &pr->a;
        assert_int_equal(p->nmsgs, 8 * ROUNDS);
        uint32_t next[8] = {0};
        for (int k = 0; k < p->nmsgs; k++) {
            uint32_t hdr[2];
            memcpy(hdr, p->msgs[k].data, 8);
            assert_true(hdr[0] < 8);
            assert_int_equal(p->msgs[k].sid, sids[hdr[0]]);
            assert_int_equal(hdr[1], next[hdr[0]]); /* in order per channel */
            next[hdr[0]]++;
            size_t len = 8 + (hdr[1] * 131 + hdr[0] * 977) % (sizeof buf - 8);
            assert_int_equal(p->msgs[k].len, len);
            fill(buf, len, 100 + hdr[0], hdr[1]);
            assert_memory_equal(p->msgs[k].data + 8, buf + 8, len - 8);
        }
    }
    pair_free(pr);
}

static size_t g_burst_total;

static bool burst_done(pair *pr)
{
    size_t got = 0;
    for (int k = 0; k < pr->b.nmsgs; k++)
        got += pr->b.msgs[k].len;
    return got == g_burst_total && el_sctp_buffered(pr->a.s, 0) == 0;
}

static void test_buffered_amount(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t sid = open_dcep(pr, &pr->a, "burst", "", 1, -1, -1);
    assert_int_equal(sid, 0);
    pump_until(pr, quiet, 300);
    const size_t thr = 256 * 1024;
    el_sctp_set_buffered_low(pr->a.s, sid, thr);
    uint8_t *buf = malloc(64 * 1024);
    assert_non_null(buf);
    enum { N = 64 }; /* 4 MiB: more than usrsctp's send buffer */
    g_burst_total = 0;
    for (uint32_t i = 0; i < N; i++) {
        fill(buf, 64 * 1024, 9, i);
        assert_int_equal(el_sctp_send(pr->a.s, sid, 1, buf, 64 * 1024), EL_OK);
        g_burst_total += 64 * 1024;
    }
    size_t buffered = el_sctp_buffered(pr->a.s, sid);
    assert_true(buffered > thr);
    assert_true(buffered <= g_burst_total);
    assert_int_equal(el_sctp_buffered(pr->a.s, 1), 0); /* no such channel */
    assert_int_equal(pr->a.low_events, 0);
    assert_true(pump_until(pr, burst_done, 3000));
    assert_int_equal(pr->a.low_events, 1); /* crossed the threshold once */
    assert_int_equal(pr->b.nmsgs, N);
    for (uint32_t i = 0; i < N; i++) {
        fill(buf, 64 * 1024, 9, i);
        assert_int_equal(pr->b.msgs[i].len, 64 * 1024);
        assert_memory_equal(pr->b.msgs[i].data, buf, 64 * 1024);
    }
    free(buf);
    pair_free(pr);
}

static bool closes_done(pair *pr)
{
    return has_closed(&pr->a, 0) && has_closed(&pr->b, 0) && has_closed(&pr->a, 1) &&
           has_closed(&pr->b, 1) && has_closed(&pr->a, 2) && has_closed(&pr->b, 2);
}

static void test_close_either_side(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t s0 = open_dcep(pr, &pr->a, "a0", "", 1, -1, -1);
    uint16_t s1 = open_dcep(pr, &pr->b, "b1", "", 1, -1, -1);
    uint16_t s2 = open_dcep(pr, &pr->a, "a2", "", 1, -1, -1);
    /* messages queued before a close still arrive, then the close */
    for (int i = 0; i < 5; i++)
        assert_int_equal(el_sctp_send(pr->a.s, s0, 0, (const uint8_t *)"last words", 10), EL_OK);
    assert_int_equal(el_sctp_close_channel(pr->a.s, s0), EL_OK);   /* a closes its own */
    assert_int_equal(el_sctp_close_channel(pr->a.s, s0), EL_OK);   /* twice is fine */
    assert_int_equal(el_sctp_send(pr->a.s, s0, 0, (const uint8_t *)"x", 1), EL_ERR_INVALID);
    assert_int_equal(el_sctp_close_channel(pr->b.s, s2), EL_OK);   /* b closes a's */
    assert_int_equal(el_sctp_close_channel(pr->a.s, s1), EL_OK);   /* a closes b's */
    assert_true(pump_until(pr, closes_done, 3000));
    assert_int_equal(pr->a.nclosed, 3);
    assert_int_equal(pr->b.nclosed, 3);
    assert_int_equal(pr->b.nmsgs, 5);
    assert_int_equal(el_sctp_send(pr->a.s, s0, 0, (const uint8_t *)"x", 1), EL_ERR_NOT_FOUND);
    assert_int_equal(el_sctp_send(pr->b.s, s1, 0, (const uint8_t *)"x", 1), EL_ERR_NOT_FOUND);
    assert_int_equal(el_sctp_close_channel(pr->a.s, 77), EL_ERR_NOT_FOUND);
    /* ids are free again; the reused stream works from a clean state */
    uint16_t again = open_dcep(pr, &pr->a, "again", "", 1, -1, -1);
    assert_int_equal(again, 0);
    assert_int_equal(el_sctp_send(pr->a.s, again, 0, (const uint8_t *)"fresh", 5), EL_OK);
    assert_int_equal(el_sctp_send(pr->b.s, again, 0, (const uint8_t *)"back", 4), EL_OK);
    pump_until(pr, quiet, 300);
    assert_int_equal(pr->b.nmsgs, 6);
    EL_ASSERT_SPAN(pr->b.msgs[5].data, pr->b.msgs[5].len, "fresh");
    assert_int_equal(pr->a.nmsgs, 1);
    EL_ASSERT_SPAN(pr->a.msgs[0].data, pr->a.msgs[0].len, "back");
    assert_int_equal(pr->a.down + pr->b.down, 0);
    pair_free(pr);
}

static bool neg_closed(pair *pr)
{
    return has_closed(&pr->a, 2000) && has_closed(&pr->b, 2000);
}

static void test_negotiated(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t sa = 0, sb = 0, fa = 0, fb = 0;
    assert_int_equal(el_sctp_open_channel(pr->a.s, "neg", "p", 1, -1, -1, 5, &sa), EL_OK);
    assert_int_equal(el_sctp_open_channel(pr->b.s, "neg", "p", 1, -1, -1, 5, &sb), EL_OK);
    assert_int_equal(sa, 5);
    assert_int_equal(sb, 5);
    assert_int_equal(el_sctp_open_channel(pr->a.s, "dup", "", 1, -1, -1, 5, NULL), EL_ERR_EXISTS);
    /* beyond the 1024 streams of the INIT: both sides add streams */
    assert_int_equal(el_sctp_open_channel(pr->a.s, "far", "", 1, -1, -1, 2000, &fa), EL_OK);
    assert_int_equal(el_sctp_open_channel(pr->b.s, "far", "", 1, -1, -1, 2000, &fb), EL_OK);
    pump_until(pr, quiet, 300);
    assert_int_equal(pr->a.nopens, 2);
    assert_int_equal(pr->b.nopens, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pr->a.opens[i].remote, 0); /* nobody saw a DCEP OPEN */
        assert_int_equal(pr->b.opens[i].remote, 0);
    }
    assert_string_equal(pr->a.opens[find_open(&pr->a, 5)].label, "neg");
    assert_int_equal(el_sctp_send(pr->a.s, 5, 0, (const uint8_t *)"to b", 4), EL_OK);
    assert_int_equal(el_sctp_send(pr->b.s, 5, 0, (const uint8_t *)"to a", 4), EL_OK);
    assert_int_equal(el_sctp_send(pr->a.s, 2000, 1, (const uint8_t *)"far b", 5), EL_OK);
    assert_int_equal(el_sctp_send(pr->b.s, 2000, 1, (const uint8_t *)"far a", 5), EL_OK);
    pump_until(pr, quiet, 500);
    assert_int_equal(pr->a.nmsgs, 2);
    assert_int_equal(pr->b.nmsgs, 2);
    for (int k = 0; k < 2; k++) {
        const rx_msg *m = &pr->b.msgs[k];
        if (m->sid == 5)
            EL_ASSERT_SPAN(m->data, m->len, "to b");
        else if (m->sid == 2000)
            EL_ASSERT_SPAN(m->data, m->len, "far b");
        else
            fail_msg("message on unexpected stream %u", m->sid);
    }
    assert_int_equal(el_sctp_close_channel(pr->b.s, 2000), EL_OK);
    assert_true(pump_until(pr, neg_closed, 3000));
    pair_free(pr);
}

static bool first_msg_b(pair *pr)
{
    return pr->b.nmsgs >= 3;
}

static void test_open_and_send_before_connect(void **state)
{
    pair *pr = pair_new(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint32_t unord0 = unordered_sends();
    uint16_t sid = 0xffff;
    /* an unordered channel: until the ACK its messages must go ordered */
    assert_int_equal(el_sctp_open_channel(pr->a.s, "early", "", 0, -1, -1, -1, &sid), EL_OK);
    assert_int_equal(sid, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(el_sctp_send(pr->a.s, sid, 0, (const uint8_t *)"early", 5), EL_OK);
    assert_int_equal(el_sctp_buffered(pr->a.s, sid), 15);
    assert_int_equal(pr->b.inbox.n, 0); /* nothing before connect */
    assert_int_equal(el_sctp_input(pr->a.s, (const uint8_t *)"x", 1), EL_ERR_INVALID);
    assert_int_equal(el_sctp_connect(pr->a.s), EL_OK);
    assert_int_equal(el_sctp_connect(pr->b.s), EL_OK);
    assert_true(pump_until(pr, first_msg_b, 3000));
    assert_int_equal(el_sctp_buffered(pr->a.s, sid), 0);
    assert_int_equal(pr->b.opens[0].remote, 1);
    assert_string_equal(pr->b.opens[0].label, "early");
    for (int i = 0; i < 3; i++)
        EL_ASSERT_SPAN(pr->b.msgs[i].data, pr->b.msgs[i].len, "early");
    assert_int_equal(unordered_sends(), unord0); /* all three before the ACK */
    pump_until(pr, quiet, 300);
    assert_int_equal(el_sctp_send(pr->a.s, sid, 0, (const uint8_t *)"late", 4), EL_OK);
    assert_int_equal(unordered_sends(), unord0 + 1); /* acknowledged now */
    pair_free(pr);
}

static void test_free_inside_callback(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t sid = open_dcep(pr, &pr->a, "bye", "", 1, -1, -1);
    pr->b.free_self_on_message = 1;
    for (int i = 0; i < 4; i++) /* b frees itself on the first; the rest find nobody */
        assert_int_equal(el_sctp_send(pr->a.s, sid, 0, (const uint8_t *)"m", 1), EL_OK);
    pump_until(pr, quiet, 300);
    assert_null(pr->b.s);
    assert_int_equal(pr->b.nmsgs, 1);
    pair_free(pr);
}

static bool lossy_done(pair *pr)
{
    return pr->b.ver.count == pr->b.ver.total;
}

/* mostly a few packets; every 10th up to 200 KiB */
static size_t lossy_len(uint32_t i)
{
    return 8 + (i * 7919u) % (i % 10 == 0 ? 200u * 1024 : 3000u);
}

static void test_lossy_link(void **state)
{
    /* every 13th packet from a and every 17th from b is lost: the reliable
     * channel still delivers everything in order and intact (retransmission,
     * reassembly of large messages); the max_retransmits=0 channel loses
     * messages, but what arrives is whole (abandoned fragments never leak
     * into the next message) */
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t rel = open_dcep(pr, &pr->a, "reliable", "", 1, -1, -1);
    uint16_t pr0 = open_dcep(pr, &pr->a, "lossy", "", 0, 0, -1);
    pr->a.drop_every = 13;
    pr->b.drop_every = 17;
    enum { N = 150 };
    uint64_t rng;
    start_stream(&pr->a, rel, 0xC, N, big_b, 2, 777, &rng);
    uint8_t *buf = malloc(EL_SCTP_MAX_MESSAGE_SIZE);
    assert_non_null(buf);
    for (uint32_t i = 0; i < N; i++) {
        size_t len = (size_t)(rng_next(&rng) % 65537);
        if (i == big_b[0] || i == big_b[1])
            len = EL_SCTP_MAX_MESSAGE_SIZE;
        fill(buf, len, 0xC, i);
        assert_int_equal(el_sctp_send(pr->a.s, rel, (int)(i & 1), buf, len), EL_OK);
        size_t plen = lossy_len(i);
        uint32_t hdr[2] = {i, (uint32_t)plen};
        fill(buf, plen, 0xD, i);
        memcpy(buf, hdr, 8);
        assert_int_equal(el_sctp_send(pr->a.s, pr0, 1, buf, plen), EL_OK);
        while (el_sctp_buffered(pr->a.s, rel) + el_sctp_buffered(pr->a.s, pr0) > 2u << 20)
            pump_round(pr);
    }
    assert_true(pump_until(pr, lossy_done, 120000));
    int got = 0;
    for (int k = 0; k < pr->b.nmsgs; k++) {
        const rx_msg *m = &pr->b.msgs[k];
        assert_int_equal(m->sid, pr0);
        uint32_t hdr[2];
        assert_true(m->len >= 8);
        memcpy(hdr, m->data, 8);
        assert_int_equal(m->len, hdr[1]);
        assert_int_equal(m->len, lossy_len(hdr[0]));
        fill(buf, m->len, 0xD, hdr[0]);
        assert_memory_equal(m->data + 8, buf + 8, m->len - 8);
        got++;
    }
    assert_true(got < N); /* some were abandoned */
    printf("  lossy: reliable %u/%u intact, max_retransmits=0: %d/%d arrived\n", pr->b.ver.count,
           (unsigned)N, got, (int)N);
    free(buf);
    pair_free(pr);
}

static bool a_closed_0(pair *pr)
{
    return has_closed(&pr->a, 0);
}

static bool a_closed_7(pair *pr)
{
    return has_closed(&pr->a, 7);
}

static void test_refusals(void **state)
{
    /* both sides think they are the DTLS client: a's OPEN on even id 0 breaks
     * b's parity rule, so b resets the stream without an ACK */
    char err[128];
    pair *pr = calloc(1, sizeof *pr);
    assert_non_null(pr);
    pr->a.name = "a";
    pr->b.name = "b";
    pr->a.other = &pr->b;
    pr->b.other = &pr->a;
    pr->a.s = el_sctp_new(1, EL_SCTP_MAX_MESSAGE_SIZE, &callbacks, &pr->a, err, sizeof err);
    pr->b.s = el_sctp_new(1, EL_SCTP_MAX_MESSAGE_SIZE, &callbacks, &pr->b, err, sizeof err);
    assert_non_null(pr->a.s);
    assert_non_null(pr->b.s);
    assert_int_equal(el_sctp_connect(pr->a.s), EL_OK);
    assert_int_equal(el_sctp_connect(pr->b.s), EL_OK);
    assert_true(pump_until(pr, both_up, 3000));
    uint16_t sid = 0xffff;
    assert_int_equal(el_sctp_open_channel(pr->a.s, "wrong", "", 1, -1, -1, -1, &sid), EL_OK);
    assert_int_equal(sid, 0);
    assert_int_equal(el_sctp_send(pr->a.s, sid, 0, (const uint8_t *)"lost", 4), EL_OK);
    assert_true(pump_until(pr, a_closed_0, 3000));
    assert_int_equal(pr->a.nopens, 0); /* never ACKed */
    assert_int_equal(pr->b.nopens, 0);
    assert_int_equal(pr->b.nclosed, 0); /* b never knew the channel */
    assert_int_equal(pr->b.nmsgs, 0);
    pair_free(pr);

    /* user data on a stream b has no channel for (a "negotiated" id b never
     * opened): b resets it, a sees the channel close */
    pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    assert_int_equal(el_sctp_open_channel(pr->a.s, "one-sided", "", 1, -1, -1, 7, NULL), EL_OK);
    assert_int_equal(el_sctp_send(pr->a.s, 7, 0, (const uint8_t *)"hello?", 6), EL_OK);
    assert_true(pump_until(pr, a_closed_7, 3000));
    assert_int_equal(pr->a.nopens, 1); /* a's negotiated channel did open locally */
    assert_int_equal(pr->b.nopens + pr->b.nclosed + pr->b.nmsgs, 0);
    pair_free(pr);
}

static bool both_closed_0(pair *pr)
{
    return has_closed(&pr->a, 0) && has_closed(&pr->b, 0);
}

static void test_simultaneous_close(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t sid = open_dcep(pr, &pr->a, "both", "", 1, -1, -1);
    assert_int_equal(el_sctp_close_channel(pr->a.s, sid), EL_OK);
    assert_int_equal(el_sctp_close_channel(pr->b.s, sid), EL_OK);
    assert_true(pump_until(pr, both_closed_0, 3000));
    pump_until(pr, quiet, 300);
    assert_int_equal(pr->a.nclosed, 1);
    assert_int_equal(pr->b.nclosed, 1);
    pair_free(pr);
}

static bool a_closed_0_only(pair *pr)
{
    return has_closed(&pr->a, 0);
}

static void test_reuse_right_after_close(void **state)
{
    /* a closes stream 0 and reuses it the moment its own side is done,
     * before b has finished its side: b must see the old channel close and
     * then the new one open on the same id */
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t sid = open_dcep(pr, &pr->a, "old", "", 1, -1, -1);
    assert_int_equal(el_sctp_close_channel(pr->a.s, sid), EL_OK);
    while (!a_closed_0_only(pr)) { /* a's packets wait in b's inbox meanwhile */
        if (!deliver(&pr->a) && !deliver(&pr->b))
            el_sctp_tick(10);
        else if (!a_closed_0_only(pr))
            deliver(&pr->b);
    }
    assert_false(has_closed(&pr->b, 0));
    uint16_t again = 0xffff;
    assert_int_equal(el_sctp_open_channel(pr->a.s, "new", "", 1, -1, -1, -1, &again), EL_OK);
    assert_int_equal(again, 0);
    assert_int_equal(el_sctp_send(pr->a.s, again, 0, (const uint8_t *)"hi", 2), EL_OK);
    pump_until(pr, quiet, 300);
    assert_true(has_closed(&pr->b, 0));
    int j = find_open(&pr->b, 0);
    assert_true(j >= 1);
    assert_string_equal(pr->b.opens[j].label, "new");
    assert_int_equal(pr->b.nmsgs, 1);
    EL_ASSERT_SPAN(pr->b.msgs[0].data, pr->b.msgs[0].len, "hi");
    assert_int_equal(pr->a.nclosed, 1); /* the new channel stays open */
    assert_int_equal(pr->b.nclosed, 1);
    pair_free(pr);
}

static bool b_down(pair *pr)
{
    return pr->b.down > 0;
}

static void test_free_aborts_peer(void **state)
{
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t s0 = open_dcep(pr, &pr->a, "x", "", 1, -1, -1);
    uint16_t s1 = open_dcep(pr, &pr->b, "y", "", 1, -1, -1);
    int a_closed = pr->a.nclosed;
    el_sctp_free(pr->a.s); /* its ABORT lands in b's inbox */
    pr->a.s = NULL;
    assert_int_equal(pr->b.inbox.n, 1);
    assert_int_equal(pr->a.nclosed, a_closed); /* no callbacks for a any more */
    assert_true(pump_until(pr, b_down, 1000));
    assert_true(has_closed(&pr->b, s0));
    assert_true(has_closed(&pr->b, s1));
    assert_int_equal(pr->b.down, 1);
    pair_free(pr);
}

static void test_peer_vanishes(void **state)
{
    /* a disappears without a word (its packets stop); b's data is never
     * acknowledged and, after its retransmissions (virtual time: heartbeats
     * would need real time to pass), the association fails: b's channels are
     * reported closed, then the association down */
    pair *pr = pair_up(EL_SCTP_MAX_MESSAGE_SIZE, EL_SCTP_MAX_MESSAGE_SIZE);
    uint16_t sid = open_dcep(pr, &pr->a, "doomed", "", 1, -1, -1);
    el_sctp_free(pr->a.s);
    pr->a.s = NULL;
    assert_int_equal(el_sctp_send(pr->b.s, sid, 0, (const uint8_t *)"anyone?", 7), EL_OK);
    for (int i = 0; i < 20000 && !b_down(pr); i++) {
        q_clear(&pr->a.inbox);
        q_clear(&pr->b.inbox);
        el_sctp_tick(100);
    }
    assert_int_equal(pr->b.down, 1);
    assert_true(has_closed(&pr->b, sid));
    assert_int_equal(el_sctp_send(pr->b.s, sid, 0, (const uint8_t *)"x", 1), EL_ERR_NOT_FOUND);
    assert_int_equal(el_sctp_open_channel(pr->b.s, "late", "", 1, -1, -1, -1, NULL), EL_ERR_IO);
    pair_free(pr);
}

/* The hardware CRC32c against the standard check value and usrsctp's
 * table-driven one, on every alignment and on lengths around the 8-byte
 * steps. */
static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(el_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(el_crc32c("", 0), 0);
    uint8_t buf[1300];
    fill(buf, sizeof buf, 7, 1);
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len + off <= sizeof buf; len += len < 40 ? 1 : 97) {
            uint32_t u = usrsctp_crc32c(buf + off, len);
            uint8_t b[4];
            memcpy(b, &u, 4);
            uint32_t want = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
            assert_int_equal(el_crc32c(buf + off, len), want);
        }
    }
    uint8_t pkt[200];
    fill(pkt, sizeof pkt, 9, 1);
    el_crc32c_sctp_set(pkt, sizeof pkt);
    check_crc(pkt, sizeof pkt);
    uint8_t tiny[11] = {0};
    el_crc32c_sctp_set(tiny, sizeof tiny); /* too short: untouched */
    for (size_t i = 0; i < sizeof tiny; i++)
        assert_int_equal(tiny[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_association_up),
        cmocka_unit_test(test_dcep_open_both_sides),
        cmocka_unit_test(test_bulk_ordered),
        cmocka_unit_test(test_too_large_refused),
        cmocka_unit_test(test_oversize_incoming_closes_channel),
        cmocka_unit_test(test_unordered_unreliable),
        cmocka_unit_test(test_eight_channels_interleaved),
        cmocka_unit_test(test_buffered_amount),
        cmocka_unit_test(test_close_either_side),
        cmocka_unit_test(test_negotiated),
        cmocka_unit_test(test_open_and_send_before_connect),
        cmocka_unit_test(test_free_inside_callback),
        cmocka_unit_test(test_lossy_link),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_simultaneous_close),
        cmocka_unit_test(test_reuse_right_after_close),
        cmocka_unit_test(test_peer_vanishes),
        cmocka_unit_test(test_free_aborts_peer),
    };
    if (getenv("EL_TEST_FILTER"))
        cmocka_set_test_filter(getenv("EL_TEST_FILTER"));
    if (getenv("EL_TEST_DEBUG"))
        el_log_set_level(EL_LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
