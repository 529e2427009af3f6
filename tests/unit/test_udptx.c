/* test_udptx.c - src/rtc/udptx: batched sends over loopback UDP. Every
 * datagram arrives whole, in order, with its own boundaries, whether it went
 * in a GSO run or alone; runs are cut where they must be (a shorter
 * datagram, an oversized one, the segment cap); the context's loop flushes;
 * a closed socket drops and counts. EL_TEST_FILTER=<glob> runs a subset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "rtc/udptx.h"

typedef struct {
    GMainContext *ctx;
    GSocket *tx_sock, *rx_sock;
    struct sockaddr_storage rx_addr;
} rig;

static GSocket *bound_udp(GSocketFamily fam)
{
    GSocket *s = g_socket_new(fam, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
    if (!s)
        return NULL;
    GInetAddress *lo = g_inet_address_new_loopback(fam);
    GSocketAddress *a = g_inet_socket_address_new(lo, 0);
    gboolean ok = g_socket_bind(s, a, FALSE, NULL);
    g_object_unref(a);
    g_object_unref(lo);
    if (!ok) {
        g_object_unref(s);
        return NULL;
    }
    return s;
}

static bool rig_open(rig *r, GSocketFamily fam)
{
    memset(r, 0, sizeof *r);
    r->tx_sock = bound_udp(fam);
    r->rx_sock = bound_udp(fam);
    if (!r->tx_sock || !r->rx_sock)
        return false;
    int big = 8 << 20; /* a whole flush must fit, or loopback drops */
    int fd = g_socket_get_fd(r->rx_sock);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    GSocketAddress *a = g_socket_get_local_address(r->rx_sock, NULL);
    g_socket_address_to_native(a, &r->rx_addr, sizeof r->rx_addr, NULL);
    g_object_unref(a);
    r->ctx = g_main_context_new();
    return true;
}

static void rig_close(rig *r)
{
    if (r->tx_sock)
        g_object_unref(r->tx_sock);
    if (r->rx_sock)
        g_object_unref(r->rx_sock);
    if (r->ctx)
        g_main_context_unref(r->ctx);
}

/* An IPv4 rig and a sender on it, its path set to the receiver. */
static el_udptx *rig_sender(rig *r, bool gso)
{
    assert_true(rig_open(r, G_SOCKET_FAMILY_IPV4));
    el_udptx *tx = el_udptx_new(r->ctx, gso);
    assert_true(el_udptx_set_path(tx, r->tx_sock, (struct sockaddr *)&r->rx_addr));
    return tx;
}

static void fill(uint8_t *buf, size_t len, unsigned seq)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 31u + i * 7u);
}

/* Receives n datagrams and checks each against lens[i] and fill(i). */
static void expect_datagrams(rig *r, const size_t *lens, unsigned n)
{
    int fd = g_socket_get_fd(r->rx_sock);
    static uint8_t got[70000], want[70000];
    for (unsigned i = 0; i < n; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 2000) != 1)
            fail_msg("datagram %u of %u never arrived", i, n);
        ssize_t k = recv(fd, got, sizeof got, 0);
        if (k != (ssize_t)lens[i])
            fail_msg("datagram %u: %zd bytes, sent %zu", i, k, lens[i]);
        fill(want, lens[i], i);
        assert_memory_equal(got, want, lens[i]);
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 50), 0); /* and nothing more */
}

static void queue_all(el_udptx *tx, const size_t *lens, unsigned n)
{
    static uint8_t buf[70000];
    for (unsigned i = 0; i < n; i++) {
        fill(buf, lens[i], i);
        assert_true(el_udptx_send(tx, buf, lens[i]));
    }
}

/* Full-size packets with shorter ones between them (each ends a run), an
 * oversized one (never in a run) and a tail. */
static unsigned mixed_lengths(size_t *lens)
{
    unsigned n = 0;
    for (unsigned i = 0; i < 150; i++)
        lens[n++] = (i % 37 == 36) ? 300 + i : 1197;
    lens[n++] = 4000;
    lens[n++] = 1197;
    lens[n++] = 1;
    lens[n++] = 1452; /* the largest run segment */
    lens[n++] = 1452;
    for (unsigned i = 0; i < 100; i++)
        lens[n++] = 200; /* the 64-segment cap cuts these */
    return n;
}

static void run_mixed(bool gso, GSocketFamily fam)
{
    rig r;
    if (!rig_open(&r, fam)) {
        rig_close(&r);
        skip(); /* no IPv6 loopback here */
    }
    el_udptx *tx = el_udptx_new(r.ctx, gso);
    assert_true(el_udptx_set_path(tx, r.tx_sock, (struct sockaddr *)&r.rx_addr));
    size_t lens[300];
    unsigned n = mixed_lengths(lens);
    queue_all(tx, lens, n);
    el_udptx_flush(tx);
    expect_datagrams(&r, lens, n);
    el_udptx_stats st;
    el_udptx_get_stats(tx, &st);
    assert_int_equal(st.datagrams, n);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.gso, gso && !getenv("ECHOLINK_UDP_GSO"));
    if (gso) {
        /* 150 full ones cut by 4 short ones, the oversized one alone, the
         * small ones cut at 64: far fewer messages than datagrams, all in
         * one sendmmsg (a kernel refusing a run would make it several) */
        assert_true(st.gso_runs >= 5 && st.gso_runs <= 12);
        assert_int_equal(st.syscalls, 1);
    } else {
        assert_int_equal(st.gso_runs, 0);
        assert_int_equal(st.syscalls, 1); /* still one sendmmsg */
    }
    el_udptx_free(tx);
    rig_close(&r);
}

static void test_gso_ipv4(void **state)
{
    (void)state;
    run_mixed(true, G_SOCKET_FAMILY_IPV4);
}

static void test_gso_ipv6(void **state)
{
    (void)state;
    run_mixed(true, G_SOCKET_FAMILY_IPV6);
}

static void test_no_gso(void **state)
{
    (void)state;
    run_mixed(false, G_SOCKET_FAMILY_IPV4);
}

static void test_env_turns_gso_off(void **state)
{
    (void)state;
    setenv("ECHOLINK_UDP_GSO", "0", 1);
    run_mixed(false, G_SOCKET_FAMILY_IPV4); /* asks for GSO, gets none */
    unsetenv("ECHOLINK_UDP_GSO");
}

/* A socket that does not know UDP_SEGMENT (as on kernels before 4.18,
 * which would ignore the control message instead of refusing it) gets no
 * GSO runs; here, a Unix datagram socket stands in for one. A UDP socket
 * given next as the path does not turn GSO back on: the sender stays safe. */
static void test_gso_needs_the_socket_option(void **state)
{
    (void)state;
    rig r;
    el_udptx *tx = rig_sender(&r, true);
    el_udptx_stats st;
    el_udptx_get_stats(tx, &st);
    assert_true(st.gso);
    GSocket *unix_dgram = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM,
                                       G_SOCKET_PROTOCOL_DEFAULT, NULL);
    assert_non_null(unix_dgram);
    assert_true(el_udptx_set_path(tx, unix_dgram, (struct sockaddr *)&r.rx_addr));
    el_udptx_get_stats(tx, &st);
    assert_false(st.gso);
    assert_true(el_udptx_set_path(tx, r.tx_sock, (struct sockaddr *)&r.rx_addr));
    size_t lens[3] = {1197, 1197, 1197};
    queue_all(tx, lens, 3);
    el_udptx_flush(tx);
    expect_datagrams(&r, lens, 3);
    el_udptx_get_stats(tx, &st);
    assert_false(st.gso);
    assert_int_equal(st.gso_runs, 0);
    el_udptx_free(tx);
    g_object_unref(unix_dgram);
    rig_close(&r);
}

/* More than one flush holds: the queue flushes itself when full. */
static void test_full_queue(void **state)
{
    (void)state;
    rig r;
    el_udptx *tx = rig_sender(&r, true);
    static size_t lens[700];
    for (unsigned i = 0; i < 700; i++)
        lens[i] = 1100;
    queue_all(tx, lens, 700);
    el_udptx_stats st;
    el_udptx_get_stats(tx, &st);
    assert_true(st.datagrams >= 256); /* sent before any explicit flush */
    el_udptx_free(tx);                /* flushes the rest */
    expect_datagrams(&r, lens, 700);
    rig_close(&r);
}

/* Queued in one "loop turn", sent when the context iterates again. */
static void test_context_flushes(void **state)
{
    (void)state;
    rig r;
    el_udptx *tx = rig_sender(&r, true);
    size_t lens[3] = {1197, 1197, 20};
    queue_all(tx, lens, 3);
    el_udptx_stats st;
    el_udptx_get_stats(tx, &st);
    assert_int_equal(st.datagrams, 0);
    uint64_t turn = el_udptx_turn(tx);
    g_main_context_iteration(r.ctx, FALSE);
    assert_true(el_udptx_turn(tx) == turn + 1); /* one loop turn, counted */
    el_udptx_get_stats(tx, &st);
    assert_int_equal(st.datagrams, 3);
    expect_datagrams(&r, lens, 3);
    el_udptx_free(tx);
    rig_close(&r);
}

/* A new path first flushes what was queued for the old one. */
static void test_path_change_flushes(void **state)
{
    (void)state;
    rig r;
    el_udptx *tx = rig_sender(&r, true);
    size_t lens[2] = {500, 500};
    queue_all(tx, lens, 2);
    assert_true(el_udptx_set_path(tx, NULL, NULL)); /* cleared */
    expect_datagrams(&r, lens, 2);
    assert_false(el_udptx_has_path(tx));
    uint8_t b = 1;
    assert_false(el_udptx_send(tx, &b, 1));
    el_udptx_free(tx);
    rig_close(&r);
}

static void test_closed_socket_drops(void **state)
{
    (void)state;
    rig r;
    el_udptx *tx = rig_sender(&r, true);
    size_t lens[4] = {100, 100, 100, 100};
    queue_all(tx, lens, 4);
    assert_true(g_socket_close(r.tx_sock, NULL)); /* libnice closed it */
    el_udptx_flush(tx);
    el_udptx_stats st;
    el_udptx_get_stats(tx, &st);
    assert_int_equal(st.datagrams, 0);
    assert_int_equal(st.dropped, 4);
    expect_datagrams(&r, lens, 0);
    el_udptx_free(tx);
    rig_close(&r);
}

static void test_bad_input(void **state)
{
    (void)state;
    rig r;
    assert_true(rig_open(&r, G_SOCKET_FAMILY_IPV4));
    el_udptx *tx = el_udptx_new(r.ctx, true);
    static uint8_t big[EL_UDPTX_MAX_DATAGRAM + 1];
    assert_false(el_udptx_send(tx, big, 10)); /* no path yet */
    struct sockaddr_un_like {
        sa_family_t fam;
        char rest[30];
    } unix_addr = {.fam = AF_UNIX};
    assert_false(el_udptx_set_path(tx, r.tx_sock, (struct sockaddr *)&unix_addr));
    assert_false(el_udptx_has_path(tx));
    assert_true(el_udptx_set_path(tx, r.tx_sock, (struct sockaddr *)&r.rx_addr));
    assert_false(el_udptx_send(tx, big, 0));
    assert_false(el_udptx_send(tx, NULL, 10));
    assert_false(el_udptx_send(tx, big, sizeof big));
    assert_false(el_udptx_send(NULL, big, 10));
    el_udptx_flush(NULL);
    el_udptx_free(NULL);
    el_udptx_stats st;
    el_udptx_get_stats(tx, &st);
    assert_int_equal(st.datagrams + st.dropped, 0);
    el_udptx_free(tx);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gso_ipv4),
        cmocka_unit_test(test_gso_ipv6),
        cmocka_unit_test(test_no_gso),
        cmocka_unit_test(test_env_turns_gso_off),
        cmocka_unit_test(test_gso_needs_the_socket_option),
        cmocka_unit_test(test_full_queue),
        cmocka_unit_test(test_context_flushes),
        cmocka_unit_test(test_path_change_flushes),
        cmocka_unit_test(test_closed_socket_drops),
        cmocka_unit_test(test_bad_input),
    };
    if (getenv("EL_TEST_FILTER"))
        cmocka_set_test_filter(getenv("EL_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
