/* test_ice.c - src/rtc/ice: two libnice agents on one GMainContext, talking
 * over real UDP sockets inside the network namespaces that
 * tests/harness/netns.sh creates (run: tests/harness/netns.sh run test_ice;
 * without EL_NETNS_ADDR the program exits 77 = skipped).
 *
 * Credentials and trickled candidates (with end-of-candidates) travel through
 * in-memory queues, relayed between loop iterations, the way a signaling
 * channel would carry them.
 *
 * Link-down test. Two agents on one address talk over the namespace's local
 * route, never over the veth, so cutting the veth would prove nothing; and
 * libnice pins host sockets to the interface owning their address
 * (IP_UNICAST_IF), so the second agent cannot use 10.77.n.2 from this
 * namespace either. The second agent therefore gathers *inside the peer
 * namespace*: this thread setns()es into $EL_NETNS_PEER, lets el_ice create
 * its sockets there (libnice creates every socket in el_ice_gather and none
 * later without TURN/ICE-TCP), and setns()es back. A socket stays in the
 * namespace it was created in, so agent B lives in the peer namespace while
 * both agents still share this process, this thread and this GMainContext:
 * no child process, no pipe protocol, and "ip link set $EL_NETNS_LINK down"
 * really cuts the only path between them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "test.h"

#include "base/err.h"
#include "base/log.h"
#include "rtc/ice.h"
#include "rtc/sdp.h"

#define CONNECT_TIMEOUT_MS 15000
#define DATA_TIMEOUT_MS 5000
#define FAIL_BOUND_MS 15000 /* link down -> FAILED must happen within this */
#define CONSENT_HOLD_MS 12000 /* longer than libnice's 10 s consent timeout */

typedef struct {
    const char *name;
    el_ice *ice;
    GQueue outbox;             /* g_strdup'ed candidates; "" = end-of-candidates */
    int ncandidates, neoc;     /* seen through on_candidate */
    char last_candidate[EL_SDP_CANDIDATE_STR_MAX];
    el_ice_state state;
    el_ice_state history[64];
    int nhistory;
    GPtrArray *rx;             /* GBytes* received */
    bool free_in_callback;     /* el_ice_free() from the next callback */
    int callbacks_after_free;
    el_ice *nest_sender;       /* on_data: send it datagrams, run a nested loop */
    bool nesting;              /* ... which is running */
    int nested_calls;          /* on_data calls made inside it */
    bool nested_clobbered;     /* on_data's bytes changed under it during the nested loop */
    bool answer;               /* on_data: send a 1-byte answer, note what left */
    uint64_t answered_sent[8]; /* tx datagrams sent, seen from each answering on_data */
    int nanswered;
} peer;

typedef struct {
    GMainContext *ctx;
    peer a, b;
    bool relay;                /* forward outboxes between loop iterations */
    unsigned silence_ms;       /* el_ice_config.silence_ms of agents made next */
} world;

static const char *netns_addr(void)
{
    return getenv("EL_NETNS_ADDR");
}

/* Log capture: el_ice's notes at debug level go into `captured` too. */
static GString *captured;
static el_log_level saved_level;

static void capture_sink(el_log_level level, const char *file, int line, const char *msg,
                         void *user)
{
    (void)user;
    if (captured) {
        g_string_append(captured, msg);
        g_string_append_c(captured, '\n');
    }
    if (level <= saved_level)
        fprintf(stderr, "%s:%d %s\n", file, line, msg);
}

static void log_capture_begin(void)
{
    if (captured)
        g_string_free(captured, TRUE);
    captured = g_string_new(NULL);
    saved_level = el_log_threshold;
    el_log_set_sink(capture_sink, NULL);
    el_log_set_level(EL_LOG_DEBUG);
}

static void log_capture_end(void)
{
    el_log_set_level(saved_level);
    el_log_set_sink(NULL, NULL);
}

/* ---- callbacks -------------------------------------------------------------- */

static void on_candidate(void *user, const char *cand)
{
    peer *p = user;
    if (!p->ice) {
        p->callbacks_after_free++;
        return;
    }
    g_queue_push_tail(&p->outbox, g_strdup(cand ? cand : ""));
    if (cand) {
        p->ncandidates++;
        g_strlcpy(p->last_candidate, cand, sizeof p->last_candidate);
    } else {
        p->neoc++;
    }
    if (p->free_in_callback) {
        el_ice_free(p->ice);
        p->ice = NULL;
    }
}

static void on_state(void *user, el_ice_state st)
{
    peer *p = user;
    if (!p->ice) {
        p->callbacks_after_free++;
        return;
    }
    fprintf(stderr, "[%s] state %s\n", p->name, el_ice_state_name(st));
    p->state = st;
    if (p->nhistory < (int)G_N_ELEMENTS(p->history))
        p->history[p->nhistory++] = st;
    if (p->free_in_callback) {
        el_ice_free(p->ice);
        p->ice = NULL;
    }
}

static void on_data(void *user, const uint8_t *data, size_t len)
{
    peer *p = user;
    if (!p->ice) {
        p->callbacks_after_free++;
        return;
    }
    g_ptr_array_add(p->rx, g_bytes_new(data, len));
    if (p->nesting)
        p->nested_calls++;
    if (p->answer && p->nanswered < (int)G_N_ELEMENTS(p->answered_sent)) {
        el_udptx_stats st;
        el_ice_get_tx_stats(p->ice, &st);
        p->answered_sent[p->nanswered++] = st.datagrams;
        uint8_t a = 0xa5;
        assert_int_equal(el_ice_send(p->ice, &a, 1), EL_OK);
    }
    if (p->nest_sender) {
        /* an application that runs a nested loop from a callback (a modal
         * dialog): datagrams arriving meanwhile must wait for it */
        el_ice *from = p->nest_sender;
        GBytes *mine = g_bytes_new(data, len);
        p->nest_sender = NULL;
        p->nesting = true;
        for (uint8_t i = 2; i <= 6; i++)
            assert_int_equal(el_ice_send(from, &i, 1), EL_OK);
        for (int i = 0; i < 200; i++) {
            while (g_main_context_iteration(g_main_context_get_thread_default(), FALSE))
                ;
            g_usleep(1000);
        }
        p->nesting = false;
        /* the datagrams that came meanwhile must not have landed in the
         * buffer this call was given (libnice reads into one buffer) */
        p->nested_clobbered = memcmp(data, g_bytes_get_data(mine, NULL), len) != 0;
        g_bytes_unref(mine);
    }
    if (p->free_in_callback) {
        el_ice_free(p->ice);
        p->ice = NULL;
    }
}

static const el_ice_callbacks callbacks = {on_candidate, on_state, on_data};

/* ---- world ------------------------------------------------------------------ */

static void peer_init(peer *p, const char *name)
{
    memset(p, 0, sizeof *p);
    p->name = name;
    g_queue_init(&p->outbox);
    p->rx = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
}

static void peer_clear(peer *p)
{
    el_ice_free(p->ice);
    p->ice = NULL;
    g_queue_clear_full(&p->outbox, g_free);
    g_ptr_array_unref(p->rx);
}

static void world_init(world *w)
{
    memset(w, 0, sizeof *w);
    w->ctx = g_main_context_new();
    g_main_context_push_thread_default(w->ctx);
    peer_init(&w->a, "A");
    peer_init(&w->b, "B");
}

static void drain(GMainContext *ctx)
{
    for (int i = 0; i < 100 && g_main_context_iteration(ctx, FALSE); i++)
        ;
}

static void world_clear(world *w)
{
    peer_clear(&w->a);
    peer_clear(&w->b);
    drain(w->ctx);
    g_main_context_pop_thread_default(w->ctx);
    g_main_context_unref(w->ctx);
}

static el_ice *make_agent(world *w, peer *p, int controlling, const char *addr)
{
    const char *addrs[] = {addr, NULL};
    el_ice_config cfg = {.local_addrs = addrs, .silence_ms = w->silence_ms};
    char err[256] = "";
    el_ice *ice = el_ice_new(w->ctx, controlling, &cfg, &callbacks, p, err, sizeof err);
    if (!ice)
        fail_msg("el_ice_new: %s", err);
    p->ice = ice;
    return ice;
}

static void relay(peer *from, peer *to)
{
    char *s;
    while ((s = g_queue_pop_head(&from->outbox)) != NULL) {
        int rc = to->ice ? el_ice_add_remote_candidate(to->ice, s[0] ? s : NULL) : EL_OK;
        if (rc != EL_OK)
            fail_msg("add_remote_candidate(%s): %d", s, rc);
        g_free(s);
    }
}

static void exchange_credentials(peer *x, peer *y)
{
    char u[64], p[256];
    el_ice_local_credentials(x->ice, u, p);
    assert_int_equal(el_ice_set_remote_credentials(y->ice, u, p), EL_OK);
    el_ice_local_credentials(y->ice, u, p);
    assert_int_equal(el_ice_set_remote_credentials(x->ice, u, p), EL_OK);
}

static gboolean flag_cb(gpointer data)
{
    *(bool *)data = true;
    return G_SOURCE_REMOVE;
}

typedef bool (*pred_fn)(world *w, void *arg);

/* Iterates the context (relaying signaling when w->relay) until pred holds
 * or timeout_ms pass. Returns whether pred held. */
static bool spin_until(world *w, pred_fn pred, void *arg, int timeout_ms)
{
    bool timed_out = false, ok = false;
    GSource *t = g_timeout_source_new((guint)timeout_ms);
    g_source_set_callback(t, flag_cb, &timed_out, NULL);
    g_source_attach(t, w->ctx);
    for (;;) {
        if (w->relay) {
            relay(&w->a, &w->b);
            relay(&w->b, &w->a);
        }
        if (pred && pred(w, arg)) {
            ok = true;
            break;
        }
        if (timed_out)
            break;
        g_main_context_iteration(w->ctx, TRUE);
    }
    g_source_destroy(t);
    g_source_unref(t);
    return ok;
}

static void spin_for(world *w, int ms)
{
    spin_until(w, NULL, NULL, ms);
}

/* Loop turns in `ms` with nothing to do: an idle agent must not tick (libnice
 * runs its Ta timer, every 5 ms, for its idle-timeout after the last check
 * unless el_ice shortens that; see IDLE_TIMEOUT_READY_MS). */
static int idle_wakeups(world *w, int ms)
{
    bool done = false;
    int n = 0;
    GSource *t = g_timeout_source_new((guint)ms);
    g_source_set_callback(t, flag_cb, &done, NULL);
    g_source_attach(t, w->ctx);
    while (!done) {
        g_main_context_iteration(w->ctx, TRUE);
        n++;
    }
    g_source_destroy(t);
    g_source_unref(t);
    return n;
}

static bool usable(el_ice_state st)
{
    return st == EL_ICE_CONNECTED || st == EL_ICE_COMPLETED;
}

static bool both_usable(world *w, void *arg)
{
    (void)arg;
    return usable(w->a.state) && usable(w->b.state);
}

static bool both_completed(world *w, void *arg)
{
    (void)arg;
    return w->a.state == EL_ICE_COMPLETED && w->b.state == EL_ICE_COMPLETED;
}

/* arg: int[2], the end-of-candidates counts A and B must reach */
static bool both_eoc(world *w, void *arg)
{
    const int *want = arg;
    return w->a.neoc >= want[0] && w->b.neoc >= want[1];
}

static bool a_failed(world *w, void *arg)
{
    (void)arg;
    return w->a.state == EL_ICE_FAILED || w->a.state == EL_ICE_DISCONNECTED;
}

static bool b_failed(world *w, void *arg)
{
    (void)arg;
    return w->b.state == EL_ICE_FAILED || w->b.state == EL_ICE_DISCONNECTED;
}

/* arg: int[2], history lengths of A and B; true once both have reported
 * COMPLETED after those entries (a newly nominated pair) */
static bool both_new_completed(world *w, void *arg)
{
    const int *from = arg;
    const peer *ps[2] = {&w->a, &w->b};
    for (int k = 0; k < 2; k++) {
        bool seen = false;
        for (int i = from[k]; i < ps[k]->nhistory; i++)
            seen = seen || ps[k]->history[i] == EL_ICE_COMPLETED;
        if (!seen || ps[k]->state != EL_ICE_COMPLETED)
            return false;
    }
    return true;
}

typedef struct {
    peer *p;
    guint n;
} rx_wait;

static bool got_n(world *w, void *arg)
{
    (void)w;
    rx_wait *r = arg;
    return r->p->rx->len >= r->n;
}

/* ---- data ------------------------------------------------------------------- */

static const size_t sizes[] = {1, 2, 64, 500, 1200, 1472, 4000, 9000};

/* Datagram seq of a round: tag, seq, then a pattern of both. */
static uint8_t *make_datagram(char tag, unsigned round, unsigned seq, size_t len)
{
    uint8_t *d = g_malloc(len);
    for (size_t i = 0; i < len; i++)
        d[i] = (uint8_t)(tag * 7 + round * 13 + seq * 31 + i * 5);
    d[0] = (uint8_t)tag;
    if (len > 1)
        d[1] = (uint8_t)seq;
    return d;
}

/* Sends every size from `from` and checks that `to` receives each intact. */
static void check_datagrams(world *w, peer *from, peer *to, char tag, unsigned round)
{
    g_ptr_array_set_size(to->rx, 0);
    for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
        uint8_t *d = make_datagram(tag, round, i, sizes[i]);
        int rc = el_ice_send(from->ice, d, sizes[i]);
        g_free(d);
        if (rc != EL_OK)
            fail_msg("[%s] el_ice_send(%zu bytes) round %u: %d", from->name, sizes[i], round, rc);
    }
    rx_wait r = {to, G_N_ELEMENTS(sizes)};
    if (!spin_until(w, got_n, &r, DATA_TIMEOUT_MS))
        fail_msg("[%s] received %u of %zu datagrams (round %u)", to->name, to->rx->len,
                 G_N_ELEMENTS(sizes), round);
    bool seen[G_N_ELEMENTS(sizes)] = {false};
    for (guint k = 0; k < to->rx->len; k++) {
        gsize len;
        const uint8_t *got = g_bytes_get_data(g_ptr_array_index(to->rx, k), &len);
        unsigned seq = 0;
        while (seq < G_N_ELEMENTS(sizes) && sizes[seq] != len)
            seq++;
        if (seq == G_N_ELEMENTS(sizes))
            fail_msg("[%s] unexpected datagram of %zu bytes", to->name, (size_t)len);
        uint8_t *want = make_datagram(tag, round, seq, len);
        bool same = memcmp(got, want, len) == 0;
        g_free(want);
        if (!same)
            fail_msg("[%s] datagram %u (%zu bytes) corrupted", to->name, seq, (size_t)len);
        assert_false(seen[seq]);
        seen[seq] = true;
    }
    g_ptr_array_set_size(to->rx, 0);
}

/* A burst of full-size datagrams (a bulk transfer's SCTP packets) arrives
 * whole and in order, and left `from` in a few batched sends (udptx.h). */
/* Queues n datagrams of len bytes (pattern `tag`) on `from` in one go,
 * after emptying what `to` has received. */
static void send_burst(peer *from, peer *to, char tag, unsigned n, size_t len)
{
    g_ptr_array_set_size(to->rx, 0);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *d = make_datagram(tag, 9, i, len);
        assert_int_equal(el_ice_send(from->ice, d, len), EL_OK);
        g_free(d);
    }
}

/* Fails unless `to` holds exactly the burst send_burst() queued, in order. */
static void check_burst_received(const peer *to, char tag, unsigned n, size_t len)
{
    for (unsigned i = 0; i < n; i++) {
        gsize got_len;
        const uint8_t *got = g_bytes_get_data(g_ptr_array_index(to->rx, i), &got_len);
        uint8_t *want = make_datagram(tag, 9, i, len);
        bool same = got_len == len && memcmp(got, want, len) == 0;
        g_free(want);
        if (!same)
            fail_msg("[%s] burst datagram %u: %zu bytes or content differ", to->name, i,
                     (size_t)got_len);
    }
}

static void check_burst(world *w, peer *from, peer *to)
{
    enum { N = 120, LEN = 1197 };
    el_udptx_stats before, after;
    el_ice_get_tx_stats(from->ice, &before);
    send_burst(from, to, 'u', N, LEN);
    rx_wait r = {to, N};
    if (!spin_until(w, got_n, &r, DATA_TIMEOUT_MS))
        fail_msg("[%s] burst: received %u of %d datagrams", to->name, to->rx->len, N);
    check_burst_received(to, 'u', N, LEN);
    g_ptr_array_set_size(to->rx, 0);
    el_ice_get_tx_stats(from->ice, &after);
    assert_true(after.datagrams - before.datagrams >= N);
    assert_true(after.gso_runs > before.gso_runs);
    /* 120 datagrams from one loop turn: one sendmmsg, plus any the
     * agent's own traffic (consent checks go through libnice) */
    if (after.syscalls - before.syscalls > 3)
        fail_msg("[%s] burst took %" G_GUINT64_FORMAT " sends", from->name,
                 after.syscalls - before.syscalls);
}

static void check_both_ways(world *w, unsigned round)
{
    check_datagrams(w, &w->a, &w->b, 'a', round);
    check_datagrams(w, &w->b, &w->a, 'b', round);
}

/* Checks a trickled local candidate: Chromium's shape, our address, our ufrag. */
static void check_candidate_text(const peer *p, const char *addr)
{
    char u[64], pw[256];
    el_ice_local_credentials(p->ice, u, pw);
    const char *c = p->last_candidate;
    assert_true(strncmp(c, "candidate:", 10) == 0);
    assert_non_null(strstr(c, " 1 udp "));
    assert_non_null(strstr(c, " typ host"));
    assert_non_null(strstr(c, addr));
    char want[80];
    snprintf(want, sizeof want, " ufrag %s", u);
    if (!strstr(c, want))
        fail_msg("candidate '%s' lacks '%s'", c, want);
    el_sdp_candidate parsed;
    char err[128];
    assert_int_equal(el_sdp_candidate_parse(c, strlen(c), &parsed, err, sizeof err), EL_OK);
    assert_string_equal(parsed.address, addr);
    assert_int_equal(parsed.type, EL_SDP_CAND_HOST);
}

/* Both agents restart (A as the offerer, B as the answerer JSEP asks to
 * restart too), credentials and re-announced candidates are exchanged, and
 * the agents settle on the new generation. */
static void restart_both(world *w, const char *addr_a, const char *addr_b)
{
    int eoc_a = w->a.neoc, eoc_b = w->b.neoc;
    int hist[2] = {w->a.nhistory, w->b.nhistory};
    char old_u[64], pw[256];
    el_ice_local_credentials(w->a.ice, old_u, pw);
    assert_int_equal(el_ice_restart(w->a.ice), EL_OK);
    char new_u[64];
    el_ice_local_credentials(w->a.ice, new_u, pw);
    assert_string_not_equal(old_u, new_u);
    assert_int_equal(el_ice_restart(w->b.ice), EL_OK);
    exchange_credentials(&w->a, &w->b);
    int want[2] = {eoc_a + 1, eoc_b + 1};
    w->relay = true;
    if (!spin_until(w, both_eoc, want, CONNECT_TIMEOUT_MS))
        fail_msg("restart: candidates not re-announced (eoc A %d B %d)", w->a.neoc, w->b.neoc);
    check_candidate_text(&w->a, addr_a);
    check_candidate_text(&w->b, addr_b);
    if (!spin_until(w, both_new_completed, hist, CONNECT_TIMEOUT_MS))
        fail_msg("restart did not complete: A %s, B %s", el_ice_state_name(w->a.state),
                 el_ice_state_name(w->b.state));
}

/* ---- tests: API checks (no traffic) ---------------------------------------- */

static void test_api_checks(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    char err[256] = "";
    const char *bad[] = {"not-an-ip", NULL};
    el_ice_config cfg = {.local_addrs = bad};
    assert_null(el_ice_new(w.ctx, 1, &cfg, &callbacks, &w.a, err, sizeof err));
    assert_non_null(strstr(err, "not-an-ip"));
    el_ice_config relay_only = {.relay_only = 1};
    assert_null(el_ice_new(w.ctx, 1, &relay_only, &callbacks, &w.a, err, sizeof err));
    assert_non_null(strstr(err, "relay_only"));
    el_ice_config turn_noauth = {.turn_host = netns_addr()};
    assert_null(el_ice_new(w.ctx, 1, &turn_noauth, &callbacks, &w.a, err, sizeof err));
    assert_null(el_ice_new(NULL, 1, NULL, &callbacks, &w.a, err, sizeof err));
    el_ice_free(NULL);

    el_ice *ice = make_agent(&w, &w.a, 1, netns_addr());
    assert_int_equal(el_ice_get_state(ice), EL_ICE_NEW);
    char u[64], p[256];
    el_ice_local_credentials(ice, u, p);
    assert_true(strlen(u) >= 4);
    assert_true(strlen(p) >= 22);

    /* credentials: RFC 8839 lengths and ice-chars */
    assert_int_equal(el_ice_set_remote_credentials(ice, "abc", "0123456789012345678901"),
                     EL_ERR_INVALID);
    assert_int_equal(el_ice_set_remote_credentials(ice, "abcd", "short"), EL_ERR_INVALID);
    assert_int_equal(el_ice_set_remote_credentials(ice, "ab d", "0123456789012345678901"),
                     EL_ERR_INVALID);
    assert_int_equal(el_ice_set_remote_credentials(ice, "abcd", "01234567890123456789\r\n"),
                     EL_ERR_INVALID);
    assert_int_equal(el_ice_set_remote_credentials(ice, NULL, NULL), EL_ERR_INVALID);

    /* candidates: garbage refused; mDNS, TCP, other components ignored */
    assert_int_equal(el_ice_add_remote_candidate(ice, "candidate:garbage"), EL_ERR_INVALID);
    assert_int_equal(el_ice_add_remote_candidate(ice, "hello"), EL_ERR_INVALID);
    assert_int_equal(
        el_ice_add_remote_candidate(
            ice, "candidate:1 1 udp 2113937151 0b9f8cb2-6c36-4fb0-92a5-d3d5e1f4a9e1.local "
                 "54321 typ host generation 0 ufrag abcd network-cost 999"),
        EL_OK);
    char c[160];
    snprintf(c, sizeof c, "candidate:2 1 tcp 1518280447 %s 9 typ host tcptype active",
             netns_addr());
    assert_int_equal(el_ice_add_remote_candidate(ice, c), EL_OK);
    snprintf(c, sizeof c, "candidate:3 2 udp 2113937150 %s 4000 typ host", netns_addr());
    assert_int_equal(el_ice_add_remote_candidate(ice, c), EL_OK);
    /* held before credentials, up to the limit */
    int rc = EL_OK;
    for (int i = 0; i < EL_ICE_MAX_PENDING + 1 && rc == EL_OK; i++) {
        snprintf(c, sizeof c, "a=candidate:%d 1 udp 2113937151 %s %d typ host\r\n", i,
                 netns_addr(), 1000 + i);
        rc = el_ice_add_remote_candidate(ice, c);
        if (i < EL_ICE_MAX_PENDING)
            assert_int_equal(rc, EL_OK);
    }
    assert_int_equal(rc, EL_ERR_QUOTA);
    assert_int_equal(el_ice_add_remote_candidate(ice, NULL), EL_OK);
    assert_int_equal(el_ice_add_remote_candidate(ice, ""), EL_OK);

    /* gathering on an address this namespace does not have fails cleanly */
    const char *peer_addr = getenv("EL_NETNS_PEER_ADDR");
    if (peer_addr) {
        el_ice *other = make_agent(&w, &w.b, 0, peer_addr);
        assert_int_equal(el_ice_gather(other), EL_ERR_IO);
        spin_for(&w, 100);
        assert_int_equal(w.b.ncandidates, 0);
    }

    uint8_t byte = 1;
    assert_int_equal(el_ice_send(ice, &byte, 1), EL_ERR_IO); /* no pair yet */
    assert_int_equal(el_ice_send(ice, &byte, 0), EL_ERR_INVALID);
    assert_int_equal(el_ice_send(ice, NULL, 1), EL_ERR_INVALID);
    world_clear(&w);
}

/* ---- tests: one namespace --------------------------------------------------- */

/* el_ice_free() from inside a callback: nothing fires afterwards, no leak,
 * no use after free (ASan). */
static void test_free_in_callback(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    el_ice *a = make_agent(&w, &w.a, 1, netns_addr());
    w.a.free_in_callback = true;
    assert_int_equal(el_ice_gather(a), EL_OK);
    assert_int_equal(w.a.ncandidates, 0); /* never inside an el_ice_* call */
    spin_for(&w, 500);
    assert_null(w.a.ice);
    assert_int_equal(w.a.ncandidates, 1);
    assert_int_equal(w.a.callbacks_after_free, 0);
    world_clear(&w);
}

static void connect_pair(world *w)
{
    assert_int_equal(el_ice_gather(w->a.ice), EL_OK);
    assert_int_equal(el_ice_gather(w->b.ice), EL_OK);
    assert_int_equal(el_ice_gather(w->a.ice), EL_OK); /* second call: no-op */
    /* A's candidates reach B before B knows A's credentials: held, then applied */
    int one[2] = {1, 1};
    if (!spin_until(w, both_eoc, one, CONNECT_TIMEOUT_MS))
        fail_msg("gathering did not finish");
    relay(&w->a, &w->b);
    exchange_credentials(&w->a, &w->b);
    w->relay = true;
    if (!spin_until(w, both_usable, NULL, CONNECT_TIMEOUT_MS))
        fail_msg("not connected: A %s, B %s", el_ice_state_name(w->a.state),
                 el_ice_state_name(w->b.state));
}

static void test_connect_restart(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    const char *addr = netns_addr();
    make_agent(&w, &w.a, 1, addr);
    make_agent(&w, &w.b, 0, addr);
    connect_pair(&w);
    check_candidate_text(&w.a, addr);
    check_candidate_text(&w.b, addr);
    char first_ufrag[64], pw[256];
    el_ice_local_credentials(w.a.ice, first_ufrag, pw);
    assert_int_equal(w.a.history[0], EL_ICE_CHECKING);
    check_both_ways(&w, 1);
    check_burst(&w, &w.a, &w.b);
    check_burst(&w, &w.b, &w.a);
    /* checks end with a nominated pair on both sides */
    if (!spin_until(&w, both_completed, NULL, CONNECT_TIMEOUT_MS))
        fail_msg("not completed: A %s, B %s", el_ice_state_name(w.a.state),
                 el_ice_state_name(w.b.state));
    /* completed agents go quiet: no 5 ms ticks for the next 5 s */
    w.relay = false;
    spin_for(&w, 150);
    int turns = idle_wakeups(&w, 500);
    if (turns > 25)
        fail_msg("two completed agents woke the loop %d times in 500 ms", turns);
    w.relay = true;

    /* Restart on A: until B learns the new credentials, the selected pair
     * keeps carrying data both ways and the state does not regress. */
    w.relay = false;
    int eoc_a = w.a.neoc;
    assert_int_equal(el_ice_restart(w.a.ice), EL_OK);
    spin_for(&w, 200);
    assert_true(usable(w.a.state));
    assert_int_equal(w.a.neoc, eoc_a + 1); /* candidates re-announced, then end */
    check_candidate_text(&w.a, addr);      /* ... with the new ufrag */
    check_both_ways(&w, 2);

    /* B answers the restart (JSEP: restart too), both sides exchange the new
     * credentials and candidates; the old ones are dropped by generation. */
    int eoc_b = w.b.neoc;
    int hist[2] = {w.a.nhistory, w.b.nhistory};
    assert_int_equal(el_ice_restart(w.b.ice), EL_OK);
    exchange_credentials(&w.a, &w.b);
    w.relay = true;
    int want[2] = {w.a.neoc, eoc_b + 1};
    assert_true(spin_until(&w, both_eoc, want, CONNECT_TIMEOUT_MS));
    check_candidate_text(&w.b, addr);
    /* the new generation's checks nominate a pair: a fresh COMPLETED, and
     * the state never left CONNECTED/COMPLETED meanwhile */
    if (!spin_until(&w, both_new_completed, hist, CONNECT_TIMEOUT_MS))
        fail_msg("restart did not complete: A %s, B %s", el_ice_state_name(w.a.state),
                 el_ice_state_name(w.b.state));
    for (int i = hist[0]; i < w.a.nhistory; i++)
        assert_true(usable(w.a.history[i]));
    for (int i = hist[1]; i < w.b.nhistory; i++)
        assert_true(usable(w.b.history[i]));
    check_both_ways(&w, 3);

    /* B drops a late candidate of A's first generation and holds one of an
     * unknown (future) generation; neither is used */
    w.relay = false;
    char c[256];
    snprintf(c, sizeof c, "candidate:9 1 udp 1 %s 9 typ host ufrag %s", addr, first_ufrag);
    log_capture_begin();
    assert_int_equal(el_ice_add_remote_candidate(w.b.ice, c), EL_OK);
    snprintf(c, sizeof c, "candidate:9 1 udp 1 %s 9 typ host ufrag zzzz", addr);
    assert_int_equal(el_ice_add_remote_candidate(w.b.ice, c), EL_OK);
    log_capture_end();
    assert_non_null(strstr(captured->str, "old generation"));
    assert_non_null(strstr(captured->str, "holding"));
    check_both_ways(&w, 4);

    /* Three datagrams that arrive in one loop turn: the answer to the first
     * leaves as soon as it is processed (the second's on_data sees it
     * sent), the others' wait for the end of the turn, together */
    g_ptr_array_set_size(w.b.rx, 0);
    g_ptr_array_set_size(w.a.rx, 0);
    w.b.answer = true;
    for (uint8_t i = 1; i <= 3; i++)
        assert_int_equal(el_ice_send(w.a.ice, &i, 1), EL_OK);
    rx_wait three = {&w.a, 3};
    if (!spin_until(&w, got_n, &three, DATA_TIMEOUT_MS))
        fail_msg("answers: A received %u of 3", w.a.rx->len);
    w.b.answer = false;
    assert_int_equal(w.b.nanswered, 3);
    assert_int_equal(w.b.answered_sent[1], w.b.answered_sent[0] + 1);
    assert_int_equal(w.b.answered_sent[2], w.b.answered_sent[1]);
    g_ptr_array_set_size(w.a.rx, 0);

    /* B runs a nested loop inside on_data while A sends: nothing is
     * delivered inside it, and everything after it, in order */
    g_ptr_array_set_size(w.b.rx, 0);
    w.b.nest_sender = w.a.ice;
    uint8_t one = 1;
    assert_int_equal(el_ice_send(w.a.ice, &one, 1), EL_OK);
    rx_wait six = {&w.b, 6};
    if (!spin_until(&w, got_n, &six, DATA_TIMEOUT_MS))
        fail_msg("nested loop: B received %u of 6", w.b.rx->len);
    assert_int_equal(w.b.nested_calls, 0);
    assert_false(w.b.nested_clobbered);
    for (guint k = 0; k < 6; k++) {
        gsize len;
        const uint8_t *got = g_bytes_get_data(g_ptr_array_index(w.b.rx, k), &len);
        assert_int_equal(len, 1);
        assert_int_equal(got[0], k + 1);
    }
    g_ptr_array_set_size(w.b.rx, 0);

    /* B frees itself from inside on_data; later datagrams reach nobody */
    w.b.free_in_callback = true;
    uint8_t d[3] = {1, 2, 3};
    assert_int_equal(el_ice_send(w.a.ice, d, sizeof d), EL_OK);
    assert_int_equal(el_ice_send(w.a.ice, d, sizeof d), EL_OK);
    spin_for(&w, 300);
    assert_null(w.b.ice);
    assert_int_equal(w.b.rx->len, 1);
    assert_int_equal(w.b.callbacks_after_free, 0);
    world_clear(&w);
}

/* ---- tests: two namespaces, link down ---------------------------------------- */

/* Creates B's agent and its sockets inside the peer namespace. */
static void make_agent_in_peer_ns(world *w, peer *p, int controlling)
{
    const char *ns = getenv("EL_NETNS_PEER");
    const char *addr = getenv("EL_NETNS_PEER_ADDR");
    if (!ns || !addr)
        fail_msg("EL_NETNS_PEER / EL_NETNS_PEER_ADDR not set (run through netns.sh)");
    char path[256];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    int here = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int there = open(path, O_RDONLY | O_CLOEXEC);
    if (here < 0 || there < 0)
        fail_msg("open netns: %s", strerror(errno));
    if (setns(there, CLONE_NEWNET) != 0)
        fail_msg("setns(%s): %s", ns, strerror(errno));
    make_agent(w, p, controlling, addr);
    int rc = el_ice_gather(p->ice);
    int back = setns(here, CLONE_NEWNET);
    close(here);
    close(there);
    if (back != 0)
        fail_msg("setns back: %s", strerror(errno)); /* cannot continue safely */
    assert_int_equal(rc, EL_OK);
}

static int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cmd(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    fprintf(stderr, "$ %s -> %d\n", cmd, rc);
    return rc;
}

/* A connected pair across the veth: A here, B in the peer namespace;
 * *link and *peer_addr name what cuts and restores the path. */
static void pair_across_link(world *w, unsigned silence_ms, const char **link,
                             const char **peer_addr)
{
    *link = getenv("EL_NETNS_LINK");
    *peer_addr = getenv("EL_NETNS_PEER_ADDR");
    if (!*link || !*peer_addr)
        fail_msg("EL_NETNS_LINK / EL_NETNS_PEER_ADDR not set (run through netns.sh)");
    world_init(w);
    w->silence_ms = silence_ms;
    make_agent(w, &w->a, 1, netns_addr());
    make_agent_in_peer_ns(w, &w->b, 0);
    connect_pair(w);
}

/* The veth up again (the kernel dropped the default route with it). */
static int link_up(const char *link, const char *peer_addr)
{
    int rc = run_cmd("ip link set %s up", link);
    run_cmd("ip route replace default via %s dev %s", peer_addr, link);
    return rc;
}

/* The kernel refuses a UDP GSO message whose segments exceed the path MTU
 * (EINVAL; a device without checksum offload gets EIO): the sender turns
 * GSO off and sends the same datagrams one by one (here fragmented by IP),
 * none lost. A veth MTU of 1,200 below our 1,197-byte DTLS datagrams plus
 * their headers makes that happen. */
static void test_gso_refused(void **state)
{
    (void)state;
    const char *link, *peer_addr;
    const char *peer_ns = getenv("EL_NETNS_PEER"), *peer_link = getenv("EL_NETNS_PEER_LINK");
    if (!peer_ns || !peer_link)
        fail_msg("EL_NETNS_PEER / EL_NETNS_PEER_LINK not set (run through netns.sh)");
    world w;
    pair_across_link(&w, 0, &link, &peer_addr);
    int mtu_a = run_cmd("ip link set dev %s mtu 1200", link);
    int mtu_b = run_cmd("ip -n %s link set dev %s mtu 1200", peer_ns, peer_link);
    enum { N = 60, LEN = 1197 };
    el_udptx_stats before, after;
    el_ice_get_tx_stats(w.a.ice, &before);
    send_burst(&w.a, &w.b, 'g', N, LEN);
    rx_wait r = {&w.b, N};
    bool arrived = spin_until(&w, got_n, &r, DATA_TIMEOUT_MS);
    el_ice_get_tx_stats(w.a.ice, &after);
    /* the MTUs back before any assertion can end the test */
    run_cmd("ip link set dev %s mtu 1500", link);
    run_cmd("ip -n %s link set dev %s mtu 1500", peer_ns, peer_link);
    assert_int_equal(mtu_a, 0);
    assert_int_equal(mtu_b, 0);
    if (!arrived)
        fail_msg("GSO refused: B received %u of %d (sent %" G_GUINT64_FORMAT
                 " in %" G_GUINT64_FORMAT " sends, %" G_GUINT64_FORMAT " runs, %" G_GUINT64_FORMAT
                 " dropped)",
                 w.b.rx->len, N, after.datagrams - before.datagrams,
                 after.syscalls - before.syscalls, after.gso_runs - before.gso_runs,
                 after.dropped - before.dropped);
    check_burst_received(&w.b, 'g', N, LEN);
    assert_int_equal(after.dropped, before.dropped);
    assert_int_equal(after.gso_runs, before.gso_runs); /* none went as a run */
    assert_true(after.syscalls - before.syscalls >= N); /* one by one */
    check_both_ways(&w, 1); /* and the pair keeps working */
    world_clear(&w);
}

static void test_link_down(void **state)
{
    (void)state;
    const char *link, *peer_addr;
    world w;
    pair_across_link(&w, 0, &link, &peer_addr);
    check_candidate_text(&w.b, peer_addr);
    check_both_ways(&w, 1);

    /* consent freshness keeps a healthy pair alive past its 10 s timeout */
    int hist_a = w.a.nhistory, hist_b = w.b.nhistory;
    spin_for(&w, CONSENT_HOLD_MS);
    assert_int_equal(w.a.nhistory, hist_a);
    assert_int_equal(w.b.nhistory, hist_b);
    assert_true(both_usable(&w, NULL));
    check_both_ways(&w, 2);

    gint64 t0 = g_get_monotonic_time();
    assert_int_equal(run_cmd("ip link set %s down", link), 0);
    bool failed = spin_until(&w, a_failed, NULL, FAIL_BOUND_MS);
    gint64 ms = (g_get_monotonic_time() - t0) / 1000;
    fprintf(stderr, "A: %s %lld ms after link down\n", el_ice_state_name(w.a.state),
            (long long)ms);
    if (!failed) {
        link_up(link, peer_addr);
        fail_msg("A still %s %lld ms after link down", el_ice_state_name(w.a.state),
                 (long long)ms);
    }
    assert_true(spin_until(&w, b_failed, NULL, 3000)); /* B lost consent as well */
    fprintf(stderr, "B: %s %lld ms after link down\n", el_ice_state_name(w.b.state),
            (long long)((g_get_monotonic_time() - t0) / 1000));
    /* without the peer's consent nothing more may leave (RFC 7675): not
     * through libnice, and not through the batched path past it either */
    el_udptx_stats before, after;
    el_ice_get_tx_stats(w.a.ice, &before);
    uint8_t byte = 1;
    assert_int_not_equal(el_ice_send(w.a.ice, &byte, 1), EL_OK);
    spin_for(&w, 50);
    el_ice_get_tx_stats(w.a.ice, &after);
    assert_int_equal(after.datagrams + after.dropped, before.datagrams + before.dropped);

    /* link up, then an ICE restart on both sides brings the pair back */
    assert_int_equal(link_up(link, peer_addr), 0);
    w.relay = false;
    restart_both(&w, netns_addr(), peer_addr);
    check_both_ways(&w, 3);
    world_clear(&w);
}

/* ---- tests: liveness by silence (cfg.silence_ms) ------------------------------- */

#define SILENCE_MS 1500
#define TICK_MS 250 /* the callers' own traffic, as el_peer's SCTP heartbeats */

typedef struct {
    peer *p;
    bool on;
    unsigned sent;
} ticker;

static gboolean tick_cb(gpointer data)
{
    ticker *t = data;
    uint8_t byte = 't';
    if (t->on && t->p->ice && el_ice_send(t->p->ice, &byte, 1) == EL_OK)
        t->sent++;
    return G_SOURCE_CONTINUE;
}

static GSource *ticker_start(world *w, ticker *t)
{
    GSource *src = g_timeout_source_new(TICK_MS);
    g_source_set_callback(src, tick_cb, t, NULL);
    g_source_attach(src, w->ctx);
    return src;
}

static bool a_disconnected(world *w, void *arg)
{
    (void)arg;
    return w->a.state == EL_ICE_DISCONNECTED;
}

static bool both_disconnected(world *w, void *arg)
{
    (void)arg;
    return w->a.state == EL_ICE_DISCONNECTED && w->b.state == EL_ICE_DISCONNECTED;
}

static int count_in(const peer *p, int from, el_ice_state st)
{
    int n = 0;
    for (int i = from; i < p->nhistory; i++)
        n += p->history[i] == st;
    return n;
}

/* With silence_ms the agents judge the path by what they hear: traffic
 * keeps them connected (libnice's consent checks are off), silence is
 * DISCONNECTED, the next datagram brings them back with no restart; a real
 * link outage is both. */
static void test_silence(void **state)
{
    (void)state;
    const char *link, *peer_addr;
    world w;
    pair_across_link(&w, SILENCE_MS, &link, &peer_addr);
    ticker ta = {&w.a, true, 0}, tb = {&w.b, true, 0};
    GSource *sa = ticker_start(&w, &ta), *sb = ticker_start(&w, &tb);

    /* talking: never disconnected */
    int ha = w.a.nhistory, hb = w.b.nhistory;
    spin_for(&w, 3 * SILENCE_MS);
    assert_int_equal(count_in(&w.a, ha, EL_ICE_DISCONNECTED), 0);
    assert_int_equal(count_in(&w.b, hb, EL_ICE_DISCONNECTED), 0);
    assert_true(both_usable(&w, NULL));

    /* B goes quiet: A hears nothing and says so; B still hears A */
    tb.on = false;
    gint64 t0 = g_get_monotonic_time();
    if (!spin_until(&w, a_disconnected, NULL, SILENCE_MS + 2000))
        fail_msg("A still %s after B fell silent", el_ice_state_name(w.a.state));
    gint64 ms = (g_get_monotonic_time() - t0) / 1000;
    fprintf(stderr, "A disconnected %lld ms after B's last tick\n", (long long)ms);
    assert_true(ms >= SILENCE_MS - TICK_MS);
    assert_true(usable(w.b.state));

    /* one datagram from B: A is back, with no restart */
    uint8_t byte = 'b';
    g_ptr_array_set_size(w.a.rx, 0);
    assert_int_equal(el_ice_send(w.b.ice, &byte, 1), EL_OK);
    rx_wait r = {&w.a, 1};
    assert_true(spin_until(&w, got_n, &r, DATA_TIMEOUT_MS));
    spin_for(&w, 50);
    assert_true(usable(w.a.state));
    tb.on = true;

    /* the link goes down: both disconnected; up again: both back on the
     * same pair, no restart (the tickers never stopped) */
    ha = w.a.nhistory;
    hb = w.b.nhistory;
    assert_int_equal(run_cmd("ip link set %s down", link), 0);
    bool down = spin_until(&w, both_disconnected, NULL, SILENCE_MS + 3000);
    assert_int_equal(link_up(link, peer_addr), 0);
    if (!down)
        fail_msg("link down: A %s, B %s", el_ice_state_name(w.a.state),
                 el_ice_state_name(w.b.state));
    if (!spin_until(&w, both_usable, NULL, 10000))
        fail_msg("link up: A %s, B %s", el_ice_state_name(w.a.state),
                 el_ice_state_name(w.b.state));
    assert_int_equal(count_in(&w.a, ha, EL_ICE_FAILED), 0);
    assert_int_equal(count_in(&w.b, hb, EL_ICE_FAILED), 0);
    g_source_destroy(sa);
    g_source_unref(sa);
    g_source_destroy(sb);
    g_source_unref(sb);
    check_both_ways(&w, 1);
    world_clear(&w);
}

/* ---- tests: TURN (coturn inside the namespace) --------------------------------- */

#define TURN_PORT 3478
#define TURN_USER "eltest"
#define TURN_PASS "eltest-secret"

static GPid turn_pid;

static bool tcp_port_open(const char *addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, addr, &sa.sin_addr);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Starts coturn on EL_NETNS_ADDR (inside this namespace: no traffic leaves
 * it); skips the test when coturn is not installed. */
static int turn_setup(void **state)
{
    (void)state;
    char *exe = g_find_program_in_path("turnserver");
    if (!exe) {
        turn_pid = 0;
        return 0;
    }
    char listen[64], relay[64], user[64];
    snprintf(listen, sizeof listen, "--listening-ip=%s", netns_addr());
    snprintf(relay, sizeof relay, "--relay-ip=%s", netns_addr());
    snprintf(user, sizeof user, "--user=%s:%s", TURN_USER, TURN_PASS);
    char *argv[] = {exe,        "-n",       listen,           relay,          "--listening-port=3478",
                    "--lt-cred-mech", user, "--realm=el.test", "--no-tls",     "--no-dtls",
                    "--no-cli", "--min-port=49152", "--max-port=49200", "--pidfile=/dev/null",
                    "--log-file=stdout", "--simple-log", NULL};
    GError *gerr = NULL;
    GSpawnFlags fl = G_SPAWN_DO_NOT_REAP_CHILD;
    if (!getenv("EL_TEST_VERBOSE"))
        fl |= G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL;
    bool ok = g_spawn_async(NULL, argv, NULL, fl, NULL, NULL, &turn_pid, &gerr);
    g_free(exe);
    if (!ok) {
        fprintf(stderr, "cannot start turnserver: %s\n", gerr->message);
        g_error_free(gerr);
        return -1;
    }
    for (int i = 0; i < 100 && !tcp_port_open(netns_addr(), TURN_PORT); i++)
        g_usleep(50 * 1000);
    return tcp_port_open(netns_addr(), TURN_PORT) ? 0 : -1;
}

static int turn_teardown(void **state)
{
    (void)state;
    if (turn_pid > 0) {
        kill(turn_pid, SIGTERM);
        int st;
        for (int i = 0; i < 40 && waitpid(turn_pid, &st, WNOHANG) == 0; i++)
            g_usleep(50 * 1000);
        kill(turn_pid, SIGKILL);
        waitpid(turn_pid, &st, 0);
        g_spawn_close_pid(turn_pid);
        turn_pid = 0;
    }
    return 0;
}

/* A relays everything through TURN (relay_only); B is host-only. */
static void run_turn(int tcp)
{
    if (turn_pid <= 0)
        skip();
    world w;
    world_init(&w);
    const char *addr = netns_addr();
    const char *addrs[] = {addr, NULL};
    el_ice_config cfg = {.turn_host = addr,
                         .turn_port = TURN_PORT,
                         .turn_user = TURN_USER,
                         .turn_pass = TURN_PASS,
                         .turn_tcp = tcp,
                         .relay_only = 1,
                         .local_addrs = addrs};
    char err[256] = "";
    w.a.ice = el_ice_new(w.ctx, 1, &cfg, &callbacks, &w.a, err, sizeof err);
    if (!w.a.ice)
        fail_msg("el_ice_new: %s", err);
    make_agent(&w, &w.b, 0, addr);
    /* every candidate A signals is a relayed one with its related address */
    GQueue seen = G_QUEUE_INIT;
    assert_int_equal(el_ice_gather(w.a.ice), EL_OK);
    int one[2] = {1, 0};
    assert_true(spin_until(&w, both_eoc, one, CONNECT_TIMEOUT_MS));
    assert_true(w.a.ncandidates >= 1);
    for (GList *l = w.a.outbox.head; l; l = l->next) {
        const char *c = l->data;
        if (!c[0])
            continue;
        if (!strstr(c, " typ relay raddr ") || !strstr(c, " udp "))
            fail_msg("not a relayed candidate: %s", c);
        g_queue_push_tail(&seen, (gpointer)c);
    }
    assert_int_equal(g_queue_get_length(&seen), w.a.ncandidates);
    g_queue_clear(&seen);
    connect_pair(&w);
    check_both_ways(&w, 1);
    /* A's relayed pair goes through libnice (TURN framing, over UDP or
     * TCP); B's host socket sends plain UDP to A's relayed address, batched */
    el_udptx_stats sa, sb;
    el_ice_get_tx_stats(w.a.ice, &sa);
    el_ice_get_tx_stats(w.b.ice, &sb);
    assert_int_equal(sa.datagrams, 0);
    assert_true(sb.datagrams >= G_N_ELEMENTS(sizes));
    /* free with a live allocation: libnice releases it on ctx */
    el_ice_free(w.a.ice);
    w.a.ice = NULL;
    spin_for(&w, 300);
    world_clear(&w);
}

static void test_turn_udp(void **state)
{
    (void)state;
    run_turn(0);
}

static void test_turn_tcp(void **state)
{
    (void)state;
    run_turn(1);
}

int main(void)
{
    if (!netns_addr() || !*netns_addr()) {
        fprintf(stderr, "test_ice: skipped: EL_NETNS_ADDR not set "
                        "(run it as tests/harness/netns.sh run test_ice)\n");
        return 77;
    }
    el_log_level lvl;
    if (getenv("EL_LOG_LEVEL") && el_log_parse_level(getenv("EL_LOG_LEVEL"), &lvl) == 0)
        el_log_set_level(lvl);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_checks),
        cmocka_unit_test(test_free_in_callback),
        cmocka_unit_test(test_connect_restart),
        cmocka_unit_test(test_link_down),
        cmocka_unit_test(test_silence),
        cmocka_unit_test_setup_teardown(test_turn_udp, turn_setup, turn_teardown),
        cmocka_unit_test_setup_teardown(test_turn_tcp, turn_setup, turn_teardown),
        cmocka_unit_test(test_gso_refused),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (captured)
        g_string_free(captured, TRUE);
    return failed;
}
