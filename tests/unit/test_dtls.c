/* test_dtls.c - src/rtc/dtls: two sessions in one process joined by an
 * in-memory datagram queue that the test pumps (never recursively).
 *
 * Covers: handshake in both role assignments (also a server that never calls
 * el_dtls_start), DTLS 1.2 + ECDHE-ECDSA-AES128-GCM, handshake datagrams within
 * the 1200-byte MTU; application data both ways from 1 byte to the 16 KiB
 * limit (0 bytes and 16 KiB + 1 refused); sending from inside on_data; wrong
 * fingerprint on either side (EL_ERR_CRYPTO "fingerprint", no on_connected,
 * the peer sees close_notify); a fingerprint supplied after the handshake
 * (data held until verified); lost datagrams (first flights, 20% random loss
 * with fixed seeds) recovered by the 100 ms-first retransmission timer;
 * garbage and truncated datagrams; close_notify; misuse from callbacks (free
 * deferred, recursion refused).
 *
 * Timers: OpenSSL measures DTLS deadlines on the real clock, so the pump
 * sleeps until the earliest deadline reported through set_timer. With the
 * 100 ms initial timer the whole file runs in a few seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test.h"

#include "base/err.h"
#include "crypto/cert.h"
#include "rtc/dtls.h"

/* ---- the in-memory network ------------------------------------------- */

typedef struct pkt {
    struct pkt *next;
    int to;
    size_t len;
    uint8_t data[];
} pkt;

typedef struct net net;

typedef struct {
    net *net;
    int idx;
    el_dtls *d;
    el_cert *cert;
    el_dtls_ctx *ctx;
    uint8_t fp[EL_CERT_FP_LEN];

    int connected;  /* on_connected calls */
    int errors;     /* on_error calls */
    int err_code;
    char err_msg[512];
    int data_count; /* on_data calls */
    int data_before_connected;
    size_t data_bytes;
    uint8_t *last; /* copy of the last message received */
    size_t last_len;
    char order[64]; /* first byte of each message received, in order */

    int64_t deadline; /* absolute ms for el_dtls_handle_timeout, -1 none */
    int64_t last_timer; /* last value given to set_timer */
    int timer_calls;
    int timer_cancels;

    int sent; /* datagrams sent */
    size_t max_dgram;
    size_t last_dgram;

    /* behaviour hooks */
    int echo;                /* send every message back from on_data */
    int echo_rc;
    int free_in_connected;   /* wrongly free the session in on_connected */
    int free_in_data;        /* ... in on_data */
    int close_in_data;       /* close from on_data */
    int recurse_in_send;     /* call el_dtls_* from inside send */
    int recurse_rc[4];
} ep;

struct net {
    ep ep[2];
    pkt *head, *tail;
    uint32_t rng;
    int drop_pct;       /* random loss, both directions */
    int drop_first[2];  /* drop this many first datagrams sent by ep[i] */
    int drop_all[2];    /* drop everything sent by ep[i] */
    int dropped;
    uint8_t first[2][2048]; /* copy of the first datagram sent by ep[i] */
    size_t first_len[2];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static uint32_t rnd(net *n)
{
    uint32_t x = n->rng; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    n->rng = x;
    return x;
}

static void cb_send(void *user, const uint8_t *dgram, size_t len)
{
    ep *e = user;
    net *n = e->net;
    assert_non_null(dgram);
    assert_true(len > 0);
    if (e->sent == 0 && len <= sizeof n->first[0]) {
        memcpy(n->first[e->idx], dgram, len);
        n->first_len[e->idx] = len;
    }
    e->sent++;
    e->last_dgram = len;
    if (len > e->max_dgram)
        e->max_dgram = len;
    if (e->recurse_in_send) {
        e->recurse_in_send = 0;
        uint8_t b = 1;
        e->recurse_rc[0] = el_dtls_send(e->d, &b, 1);
        e->recurse_rc[1] = el_dtls_input(e->d, dgram, len);
        e->recurse_rc[2] = el_dtls_handle_timeout(e->d);
        e->recurse_rc[3] = el_dtls_set_remote_fingerprint(e->d, e->fp);
        el_dtls_close(e->d); /* must do nothing here */
    }
    if (n->drop_all[e->idx] || (n->drop_first[e->idx] > 0 && n->drop_first[e->idx]--) ||
        (n->drop_pct && (int)(rnd(n) % 100) < n->drop_pct)) {
        n->dropped++;
        return;
    }
    pkt *p = malloc(sizeof *p + len);
    assert_non_null(p);
    p->next = NULL;
    p->to = 1 - e->idx;
    p->len = len;
    memcpy(p->data, dgram, len);
    if (n->tail)
        n->tail->next = p;
    else
        n->head = p;
    n->tail = p;
}

static void cb_connected(void *user)
{
    ep *e = user;
    e->connected++;
    if (e->free_in_connected) {
        el_dtls_free(e->d); /* wrong, but must be survivable */
        e->d = NULL;
    }
}

static void cb_data(void *user, const uint8_t *data, size_t len)
{
    ep *e = user;
    assert_non_null(data);
    assert_true(len > 0);
    if (!e->connected)
        e->data_before_connected++;
    if (e->data_count < (int)sizeof e->order - 1)
        e->order[e->data_count] = (char)data[0];
    e->data_count++;
    e->data_bytes += len;
    free(e->last);
    e->last = malloc(len);
    assert_non_null(e->last);
    memcpy(e->last, data, len);
    e->last_len = len;
    if (e->echo)
        e->echo_rc = el_dtls_send(e->d, data, len);
    if (e->close_in_data)
        el_dtls_close(e->d);
    if (e->free_in_data) {
        el_dtls_free(e->d); /* wrong, but must be survivable */
        e->d = NULL;
    }
}

static void cb_error(void *user, int code, const char *msg)
{
    ep *e = user;
    assert_non_null(msg);
    e->errors++;
    e->err_code = code;
    snprintf(e->err_msg, sizeof e->err_msg, "%s", msg);
}

static void cb_timer(void *user, int64_t ms)
{
    ep *e = user;
    e->timer_calls++;
    e->last_timer = ms;
    if (ms < 0) {
        e->timer_cancels++;
        e->deadline = -1;
    } else {
        e->deadline = now_ms() + ms;
    }
}

static const el_dtls_callbacks callbacks = {
    .send = cb_send,
    .on_connected = cb_connected,
    .on_data = cb_data,
    .on_error = cb_error,
    .set_timer = cb_timer,
};

/* Sets up two endpoints with fresh certificates; ep[client_idx] is the DTLS
 * client. Each expects its peer's real fingerprint, unless wrong_fp[i] gives
 * other bytes for ep[i], or late[i] creates ep[i] without one (NULL). */
static net *net_new(int client_idx, const uint8_t *wrong_fp[2], const int late[2])
{
    net *n = calloc(1, sizeof *n);
    assert_non_null(n);
    n->rng = 0x12345678u;
    for (int i = 0; i < 2; i++) {
        ep *e = &n->ep[i];
        e->net = n;
        e->idx = i;
        e->deadline = -1;
        char err[256] = "";
        assert_int_equal(el_cert_new(&e->cert, err, sizeof err), EL_OK);
        assert_int_equal(el_cert_fingerprint(e->cert, e->fp), EL_OK);
        e->ctx = el_dtls_ctx_new(e->cert, err, sizeof err);
        if (!e->ctx)
            fail_msg("el_dtls_ctx_new: %s", err);
    }
    for (int i = 0; i < 2; i++) {
        ep *e = &n->ep[i];
        const uint8_t *remote = n->ep[1 - i].fp;
        if (wrong_fp && wrong_fp[i])
            remote = wrong_fp[i];
        if (late && late[i])
            remote = NULL;
        char err[256] = "";
        e->d = el_dtls_new(e->ctx, i == client_idx, remote, &callbacks, e, err, sizeof err);
        if (!e->d)
            fail_msg("el_dtls_new: %s", err);
        assert_int_equal(el_dtls_get_state(e->d), EL_DTLS_NEW);
    }
    return n;
}

static void net_free(net *n)
{
    while (n->head) {
        pkt *p = n->head;
        n->head = p->next;
        free(p);
    }
    for (int i = 0; i < 2; i++) {
        el_dtls_free(n->ep[i].d);
        el_dtls_ctx_free(n->ep[i].ctx);
        el_cert_free(n->ep[i].cert);
        free(n->ep[i].last);
    }
    free(n);
}

typedef int (*pred)(net *n);

static int both_connected(net *n)
{
    return n->ep[0].connected && n->ep[1].connected;
}

/* Delivers queued datagrams one by one and runs due timers (sleeping until
 * the next deadline) until `done` holds, nothing is left to happen, or
 * budget_ms passes. Returns done(n) (1 when done is NULL). */
static int pump(net *n, pred done, int64_t budget_ms)
{
    int64_t end = now_ms() + budget_ms;
    for (;;) {
        if (done && done(n))
            return 1;
        pkt *p = n->head;
        if (p) {
            n->head = p->next;
            if (!n->head)
                n->tail = NULL;
            ep *e = &n->ep[p->to];
            if (e->d)
                (void)el_dtls_input(e->d, p->data, p->len);
            free(p);
            continue;
        }
        int64_t t = now_ms();
        if (t >= end)
            break;
        int64_t next = -1;
        for (int i = 0; i < 2; i++)
            if (n->ep[i].d && n->ep[i].deadline >= 0 && (next < 0 || n->ep[i].deadline < next))
                next = n->ep[i].deadline;
        if (next < 0)
            break; /* idle: no datagram and no timer */
        if (next > end)
            next = end;
        sleep_ms(next - t);
        for (int i = 0; i < 2; i++) {
            ep *e = &n->ep[i];
            if (e->d && e->deadline >= 0 && e->deadline <= now_ms()) {
                e->deadline = -1;
                (void)el_dtls_handle_timeout(e->d);
            }
        }
    }
    return done ? done(n) : 1;
}

static void start_both(net *n)
{
    assert_int_equal(el_dtls_start(n->ep[0].d), EL_OK);
    assert_int_equal(el_dtls_start(n->ep[1].d), EL_OK);
}

static net *connected_pair(int client_idx)
{
    net *n = net_new(client_idx, NULL, NULL);
    start_both(n);
    assert_true(pump(n, both_connected, 5000));
    return n;
}

/* ---- tests ----------------------------------------------------------- */

static void check_connected(net *n)
{
    for (int i = 0; i < 2; i++) {
        ep *e = &n->ep[i];
        if (e->errors)
            fail_msg("ep%d error %d: %s", i, e->err_code, e->err_msg);
        assert_int_equal(e->connected, 1);
        assert_int_equal(el_dtls_get_state(e->d), EL_DTLS_CONNECTED);
        uint8_t pfp[EL_CERT_FP_LEN];
        assert_int_equal(el_dtls_peer_fingerprint(e->d, pfp), EL_OK);
        assert_memory_equal(pfp, n->ep[1 - i].fp, EL_CERT_FP_LEN);
        assert_string_equal(el_dtls_version_name(e->d), "DTLSv1.2");
        assert_string_equal(el_dtls_cipher_name(e->d), "ECDHE-ECDSA-AES128-GCM-SHA256");
        size_t mtu = el_dtls_data_mtu(e->d);
        assert_int_equal(mtu, EL_DTLS_MTU - 37); /* 13 header + 8 nonce + 16 tag */
        assert_int_equal(el_dtls_timeout_ms(e->d), -1);
        assert_int_equal(e->deadline, -1);
    }
}

static void test_handshake_both_roles(void **state)
{
    (void)state;
    for (int client = 0; client < 2; client++) {
        net *n = net_new(client, NULL, NULL);
        assert_int_equal(el_dtls_timeout_ms(n->ep[0].d), -1);
        start_both(n);
        /* the client has sent its ClientHello and armed the first timer */
        ep *c = &n->ep[client], *s = &n->ep[1 - client];
        assert_int_equal(c->sent, 1);
        assert_int_equal(s->sent, 0);
        assert_true(c->last_timer > 0 && c->last_timer <= EL_DTLS_TIMER_INITIAL_MS);
        assert_int_equal(el_dtls_get_state(c->d), EL_DTLS_HANDSHAKING);
        assert_int_equal(el_dtls_start(c->d), EL_OK); /* again: no-op */
        assert_int_equal(c->sent, 1);
        /* no data before the handshake */
        uint8_t b = 'x';
        assert_int_equal(el_dtls_send(c->d, &b, 1), EL_ERR_INVALID);

        assert_true(pump(n, both_connected, 5000));
        check_connected(n);
        assert_true(n->ep[0].max_dgram <= EL_DTLS_MTU);
        assert_true(n->ep[1].max_dgram <= EL_DTLS_MTU);
        /* nothing left over: idle afterwards, no more callbacks */
        int sent0 = n->ep[0].sent, sent1 = n->ep[1].sent;
        assert_true(pump(n, NULL, 300));
        assert_int_equal(n->ep[0].sent, sent0);
        assert_int_equal(n->ep[1].sent, sent1);
        check_connected(n);
        net_free(n);
    }
}

static void test_server_without_start(void **state)
{
    (void)state;
    net *n = net_new(0, NULL, NULL);
    assert_int_equal(el_dtls_start(n->ep[0].d), EL_OK); /* only the client */
    assert_true(pump(n, both_connected, 5000));
    check_connected(n);
    net_free(n);
}

static void send_and_check(net *n, int from, size_t len, uint8_t seed)
{
    ep *src = &n->ep[from], *dst = &n->ep[1 - from];
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed + i * 7);
    int before = dst->data_count;
    assert_int_equal(el_dtls_send(src->d, buf, len), EL_OK);
    assert_true(pump(n, NULL, 1000));
    assert_int_equal(dst->data_count, before + 1);
    assert_int_equal(dst->last_len, len);
    assert_memory_equal(dst->last, buf, len);
    free(buf);
}

static void test_data_both_ways(void **state)
{
    (void)state;
    for (int client = 0; client < 2; client++) {
        net *n = connected_pair(client);
        size_t mtu = el_dtls_data_mtu(n->ep[0].d);
        const size_t sizes[] = {1, 2, 100, mtu, EL_DTLS_MTU, 4096, EL_DTLS_MAX_SEND};
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            for (int from = 0; from < 2; from++) {
                send_and_check(n, from, sizes[k], (uint8_t)(k * 31 + from));
                size_t dg = n->ep[from].last_dgram;
                assert_int_equal(dg, sizes[k] + 37); /* one record, one datagram */
                if (sizes[k] <= mtu)
                    assert_true(dg <= EL_DTLS_MTU);
            }
        }
        /* 0 bytes cannot be sent; beyond 16 KiB is refused; nothing goes out */
        uint8_t big[EL_DTLS_MAX_SEND + 1];
        memset(big, 0x5a, sizeof big);
        int sent = n->ep[0].sent;
        assert_int_equal(el_dtls_send(n->ep[0].d, big, 0), EL_ERR_INVALID);
        assert_int_equal(el_dtls_send(n->ep[0].d, NULL, 5), EL_ERR_INVALID);
        assert_int_equal(el_dtls_send(n->ep[0].d, big, sizeof big), EL_ERR_TOO_LARGE);
        assert_int_equal(el_dtls_send(NULL, big, 1), EL_ERR_INVALID);
        assert_int_equal(n->ep[0].sent, sent);
        /* many messages in a row keep their order */
        for (int i = 0; i < 20; i++) {
            uint8_t m[3] = {(uint8_t)('a' + i), 1, 2};
            assert_int_equal(el_dtls_send(n->ep[1].d, m, sizeof m), EL_OK);
        }
        int before = n->ep[0].data_count;
        assert_true(pump(n, NULL, 1000));
        assert_int_equal(n->ep[0].data_count, before + 20);
        assert_int_equal(strncmp(n->ep[0].order + before, "abcdefghijklmnopqrst", 20), 0);
        check_connected(n);
        net_free(n);
    }
}

static void test_send_from_on_data(void **state)
{
    (void)state;
    net *n = connected_pair(1);
    n->ep[1].echo = 1;
    const uint8_t msg[] = "ping";
    assert_int_equal(el_dtls_send(n->ep[0].d, msg, sizeof msg), EL_OK);
    assert_true(pump(n, NULL, 1000));
    assert_int_equal(n->ep[1].echo_rc, EL_OK);
    assert_int_equal(n->ep[1].data_count, 1);
    assert_int_equal(n->ep[0].data_count, 1);
    assert_int_equal(n->ep[0].last_len, sizeof msg);
    assert_memory_equal(n->ep[0].last, msg, sizeof msg);
    net_free(n);
}

static int ep0_or_ep1_failed(net *n)
{
    return n->ep[0].errors || n->ep[1].errors;
}

static void test_wrong_fingerprint(void **state)
{
    (void)state;
    el_cert *other = NULL;
    assert_int_equal(el_cert_new(&other, NULL, 0), EL_OK);
    uint8_t bad[EL_CERT_FP_LEN];
    assert_int_equal(el_cert_fingerprint(other, bad), EL_OK);
    char bad_hex[EL_CERT_FP_HEX_SIZE];
    el_cert_fingerprint_hex(bad, bad_hex);

    for (int client = 0; client < 2; client++) {
        for (int wrong = 0; wrong < 2; wrong++) {
            const uint8_t *fps[2] = {NULL, NULL};
            fps[wrong] = bad;
            net *n = net_new(client, fps, NULL);
            start_both(n);
            assert_true(pump(n, ep0_or_ep1_failed, 5000));
            assert_true(pump(n, NULL, 2000)); /* let the close_notify arrive */
            ep *w = &n->ep[wrong], *o = &n->ep[1 - wrong];
            assert_int_equal(w->connected, 0);
            assert_int_equal(w->errors, 1);
            assert_int_equal(w->err_code, EL_ERR_CRYPTO);
            assert_non_null(strstr(w->err_msg, "fingerprint"));
            assert_non_null(strstr(w->err_msg, bad_hex)); /* expected ... */
            char got_hex[EL_CERT_FP_HEX_SIZE];
            el_cert_fingerprint_hex(o->fp, got_hex);
            assert_non_null(strstr(w->err_msg, got_hex)); /* got ... */
            assert_int_equal(el_dtls_get_state(w->d), EL_DTLS_FAILED);
            assert_int_equal(w->data_count, 0);
            /* the other side verified fine, then was told close_notify */
            assert_int_equal(o->connected, 1);
            assert_int_equal(o->errors, 1);
            assert_int_equal(o->err_code, EL_ERR_IO);
            assert_non_null(strstr(o->err_msg, "close_notify"));
            assert_int_equal(el_dtls_get_state(o->d), EL_DTLS_CLOSED);
            /* a failed session refuses everything */
            uint8_t b = 1;
            assert_int_equal(el_dtls_send(w->d, &b, 1), EL_ERR_INVALID);
            assert_int_equal(el_dtls_send(o->d, &b, 1), EL_ERR_INVALID);
            assert_int_equal(el_dtls_start(w->d), EL_ERR_INVALID);
            assert_int_equal(el_dtls_handle_timeout(w->d), EL_ERR_INVALID);
            net_free(n);
        }
    }
    el_cert_free(other);
}

static int client_connected_server_verifying(net *n)
{
    return n->ep[0].connected && el_dtls_get_state(n->ep[1].d) == EL_DTLS_VERIFYING;
}

static void test_late_fingerprint(void **state)
{
    (void)state;
    /* ep0 = client knows the server's fingerprint; ep1 = server does not */
    const int late[2] = {0, 1};
    net *n = net_new(0, NULL, late);
    ep *c = &n->ep[0], *s = &n->ep[1];
    start_both(n);
    assert_true(pump(n, client_connected_server_verifying, 5000));
    assert_true(pump(n, NULL, 500));
    assert_int_equal(s->connected, 0);
    assert_int_equal(s->errors, 0);
    assert_int_equal(el_dtls_get_state(s->d), EL_DTLS_VERIFYING);
    uint8_t pfp[EL_CERT_FP_LEN];
    assert_int_equal(el_dtls_peer_fingerprint(s->d, pfp), EL_OK);
    assert_memory_equal(pfp, c->fp, EL_CERT_FP_LEN);

    /* early data from the client is held, the server may not send yet */
    const uint8_t m1[] = "1-early", m2[] = "2-early";
    assert_int_equal(el_dtls_send(c->d, m1, sizeof m1), EL_OK);
    assert_int_equal(el_dtls_send(c->d, m2, sizeof m2), EL_OK);
    assert_true(pump(n, NULL, 500));
    assert_int_equal(s->data_count, 0);
    assert_int_equal(el_dtls_send(s->d, m1, sizeof m1), EL_ERR_INVALID);

    /* the answer arrives: verified now, then the held data in order */
    assert_int_equal(el_dtls_set_remote_fingerprint(s->d, c->fp), EL_OK);
    assert_int_equal(s->connected, 1);
    assert_int_equal(s->data_count, 2);
    assert_int_equal(s->data_before_connected, 0);
    assert_int_equal(strncmp(s->order, "12", 2), 0);
    assert_int_equal(s->last_len, sizeof m2);
    assert_memory_equal(s->last, m2, sizeof m2);
    check_connected(n);
    /* the same value again is fine; a different one is not */
    assert_int_equal(el_dtls_set_remote_fingerprint(s->d, c->fp), EL_OK);
    assert_int_equal(el_dtls_set_remote_fingerprint(s->d, s->fp), EL_ERR_INVALID);
    assert_int_equal(el_dtls_set_remote_fingerprint(s->d, NULL), EL_ERR_INVALID);
    send_and_check(n, 1, 500, 9);
    net_free(n);

    /* late and wrong: EL_ERR_CRYPTO from the setter and on_error */
    n = net_new(0, NULL, late);
    c = &n->ep[0];
    s = &n->ep[1];
    start_both(n);
    assert_true(pump(n, client_connected_server_verifying, 5000));
    assert_int_equal(el_dtls_send(c->d, m1, sizeof m1), EL_OK);
    assert_true(pump(n, NULL, 500));
    assert_int_equal(el_dtls_set_remote_fingerprint(s->d, s->fp), EL_ERR_CRYPTO);
    assert_int_equal(s->connected, 0);
    assert_int_equal(s->errors, 1);
    assert_int_equal(s->err_code, EL_ERR_CRYPTO);
    assert_non_null(strstr(s->err_msg, "fingerprint mismatch"));
    assert_int_equal(s->data_count, 0); /* held data is discarded */
    assert_true(pump(n, NULL, 500));
    assert_int_equal(c->errors, 1);
    assert_int_equal(c->err_code, EL_ERR_IO);
    net_free(n);

    /* known before the handshake but after el_dtls_new: normal path */
    const int late_both[2] = {1, 1};
    n = net_new(1, NULL, late_both);
    assert_int_equal(el_dtls_set_remote_fingerprint(n->ep[0].d, n->ep[1].fp), EL_OK);
    start_both(n);
    assert_int_equal(el_dtls_set_remote_fingerprint(n->ep[1].d, n->ep[0].fp), EL_OK);
    assert_true(pump(n, both_connected, 5000));
    check_connected(n);
    net_free(n);
}

static void test_drop_first_flights(void **state)
{
    (void)state;
    for (int client = 0; client < 2; client++) {
        /* only the ClientHello is lost: one 100 ms timeout (OpenSSL's default
         * would be 1 s) */
        net *n = net_new(client, NULL, NULL);
        n->drop_first[client] = 1;
        int64_t t0 = now_ms();
        start_both(n);
        assert_true(pump(n, both_connected, 5000));
        int64_t took = now_ms() - t0;
        check_connected(n);
        assert_int_equal(n->dropped, 1);
        assert_int_equal(n->ep[client].sent, 3); /* hello, hello again, 2nd flight */
        assert_true(took >= EL_DTLS_TIMER_INITIAL_MS - 20);
        assert_true(took < 1000); /* OpenSSL's own first timer is 1 s */
        net_free(n);

        /* the ClientHello and the first five server datagrams (its whole
         * first flight and retransmissions of it) are lost */
        n = net_new(client, NULL, NULL);
        n->drop_first[client] = 1;
        n->drop_first[1 - client] = 5;
        t0 = now_ms();
        start_both(n);
        assert_true(pump(n, both_connected, 5000));
        took = now_ms() - t0;
        check_connected(n);
        assert_int_equal(n->dropped, 6);
        assert_true(took >= EL_DTLS_TIMER_INITIAL_MS - 20);
        assert_true(took < 3000); /* OpenSSL's own schedule: 1 + 2 + 4 s */
        net_free(n);
    }
}

static void test_random_loss(void **state)
{
    (void)state;
    /* Seeds picked so that each run loses 3-10 datagrams (about 30 in all) and still finishes
     * in under a second; the budget allows for much worse luck. */
    const uint32_t seeds[] = {2654435761u, 4055616904u, 3724842645u};
    int dropped = 0;
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        for (int client = 0; client < 2; client++) {
            net *n = net_new(client, NULL, NULL);
            n->rng = seeds[k];
            n->drop_pct = 20;
            int64_t t0 = now_ms();
            start_both(n);
            /* The seed fixes the pattern only while no timer fires during
             * processing: on a starved machine OpenSSL retransmits from inside
             * el_dtls_input too, so the pattern (and its luck) changes. 30 s
             * is several full 6.4 s-capped backoffs. */
            if (!pump(n, both_connected, 30000)) {
                char why[512];
                snprintf(why, sizeof why,
                         "seed %u client %d: no handshake after %lld ms (dropped %d, sent %d/%d, "
                         "connected %d/%d, deadlines %lld/%lld, errors %d/%d: %s %s)",
                         seeds[k], client, (long long)(now_ms() - t0), n->dropped, n->ep[0].sent,
                         n->ep[1].sent, n->ep[0].connected, n->ep[1].connected,
                         (long long)n->ep[0].deadline, (long long)n->ep[1].deadline,
                         n->ep[0].errors, n->ep[1].errors, n->ep[0].err_msg, n->ep[1].err_msg);
                net_free(n);
                fail_msg("%s", why);
            }
            dropped += n->dropped;
            /* a retransmitted flight may still be on its way: let it land */
            assert_true(pump(n, NULL, 100));
            check_connected(n);
            n->drop_pct = 0;
            send_and_check(n, 0, 1000, 3);
            send_and_check(n, 1, 1000, 4);
            net_free(n);
        }
    }
    assert_true(dropped >= 12);
}

static void test_retransmission_schedule(void **state)
{
    (void)state;
    net *n = net_new(0, NULL, NULL);
    n->drop_all[0] = 1;
    ep *c = &n->ep[0];
    assert_int_equal(el_dtls_start(c->d), EL_OK);
    assert_int_equal(c->sent, 1);
    assert_true(c->last_timer > 50 && c->last_timer <= 100);

    /* early: nothing is resent, the timer is re-armed for the rest */
    assert_int_equal(el_dtls_handle_timeout(c->d), EL_OK);
    assert_int_equal(c->sent, 1);
    assert_true(c->last_timer >= 0 && c->last_timer <= 100);
    assert_true(el_dtls_timeout_ms(c->d) >= 0);

    const int64_t want[] = {200, 400, 800};
    for (size_t i = 0; i < 3; i++) {
        sleep_ms(el_dtls_timeout_ms(c->d));
        while (c->sent == (int)i + 1) { /* OpenSSL may round a few ms */
            assert_int_equal(el_dtls_handle_timeout(c->d), EL_OK);
            if (c->sent == (int)i + 1)
                sleep_ms(1);
        }
        assert_int_equal(c->sent, (int)i + 2); /* the ClientHello again */
        assert_true(c->last_timer > want[i] - 20 && c->last_timer <= want[i]);
    }
    /* closing during the handshake cancels the timer and sends nothing */
    int cancels = c->timer_cancels;
    el_dtls_close(c->d);
    assert_int_equal(c->timer_cancels, cancels + 1);
    assert_int_equal(c->sent, 4);
    assert_int_equal(el_dtls_get_state(c->d), EL_DTLS_CLOSED);
    assert_int_equal(el_dtls_timeout_ms(c->d), -1);
    assert_int_equal(c->errors, 0);
    net_free(n);
}

static void fill_random(net *n, uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)rnd(n);
}

/* A datagram of one or more records with plausible headers and random
 * bodies (those get past the framing check and into OpenSSL). */
static size_t framed_garbage(net *n, uint8_t *b, size_t cap)
{
    size_t off = 0;
    int records = 1 + (int)(rnd(n) % 3);
    for (int r = 0; r < records; r++) {
        size_t body = rnd(n) % 300;
        if (off + 13 + body > cap)
            break;
        uint8_t *h = b + off;
        h[0] = (uint8_t)(20 + rnd(n) % 4); /* ccs, alert, handshake, app data */
        h[1] = 0xfe;
        h[2] = (rnd(n) & 1) ? 0xfd : 0xff;
        h[3] = 0;
        h[4] = (uint8_t)(rnd(n) % 3); /* epoch 0..2 */
        fill_random(n, h + 5, 6);
        h[11] = (uint8_t)(body >> 8);
        h[12] = (uint8_t)body;
        fill_random(n, h + 13, body);
        if (h[0] == 22 && body >= 12 && (rnd(n) & 1))
            h[13] = 1; /* sometimes a "ClientHello" */
        off += 13 + body;
    }
    return off;
}

static void test_garbage(void **state)
{
    (void)state;
    /* a fresh server: refused before OpenSSL sees anything */
    net *n = net_new(0, NULL, NULL);
    el_dtls *s = n->ep[1].d;
    uint8_t b[2048];
    memset(b, 0, sizeof b);
    const uint8_t not_dtls[] = {0, 1, 3, 19, 64, 127, 128, 191, 255};
    for (size_t i = 0; i < sizeof not_dtls; i++) {
        b[0] = not_dtls[i];
        assert_int_equal(el_dtls_input(s, b, 100), EL_ERR_INVALID);
    }
    assert_int_equal(el_dtls_input(s, NULL, 10), EL_ERR_INVALID);
    assert_int_equal(el_dtls_input(s, b, 0), EL_ERR_INVALID);
    assert_int_equal(el_dtls_input(NULL, b, 10), EL_ERR_INVALID);
    uint8_t *huge = calloc(1, EL_DTLS_MAX_DATAGRAM + 1);
    assert_non_null(huge);
    huge[0] = 22;
    assert_int_equal(el_dtls_input(s, huge, EL_DTLS_MAX_DATAGRAM + 1), EL_ERR_TOO_LARGE);
    free(huge);
    b[0] = 22;
    b[1] = 0xfe;
    assert_int_equal(el_dtls_input(s, b, 5), EL_ERR_INVALID); /* short header */
    b[11] = 0x01;                                              /* length 256 > 100 - 13 */
    assert_int_equal(el_dtls_input(s, b, 100), EL_ERR_INVALID);
    assert_int_equal(el_dtls_get_state(s), EL_DTLS_NEW);
    assert_int_equal(n->ep[1].sent, 0);
    assert_int_equal(n->ep[1].errors, 0);

    /* truncated copies of the real ClientHello are refused; the real one
     * (retransmitted after the first was lost) still completes */
    n->drop_first[0] = 1;
    assert_int_equal(el_dtls_start(n->ep[0].d), EL_OK);
    size_t ch = n->first_len[0];
    assert_true(ch > 13);
    const size_t cuts[] = {ch - 1, ch / 2, 14, 13, 12, 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        assert_int_equal(el_dtls_input(s, n->first[0], cuts[i]), EL_ERR_INVALID);
    assert_int_equal(n->ep[1].errors, 0);
    assert_true(pump(n, both_connected, 5000));
    check_connected(n);

    /* a connected pair shrugs off random datagrams of every kind */
    for (int round = 0; round < 3000; round++) {
        ep *e = &n->ep[round & 1];
        size_t len;
        if (round % 3 == 0) {
            len = 1 + rnd(n) % 1500;
            fill_random(n, b, len);
        } else {
            len = framed_garbage(n, b, sizeof b);
            if (len == 0)
                continue;
        }
        int rc = el_dtls_input(e->d, b, len);
        assert_true(rc == EL_OK || rc == EL_ERR_INVALID);
    }
    assert_true(pump(n, NULL, 500));
    check_connected(n);
    assert_int_equal(n->ep[0].data_count + n->ep[1].data_count, 0);
    send_and_check(n, 0, 333, 1);
    send_and_check(n, 1, 333, 2);
    net_free(n);

    /* a fresh server fed random "handshake" datagrams: errors, no crash */
    int failed = 0;
    for (int run = 0; run < 20; run++) {
        n = net_new(0, NULL, NULL);
        n->rng = 1000u + (uint32_t)run;
        s = n->ep[1].d;
        for (int i = 0; i < 50 && el_dtls_get_state(s) != EL_DTLS_FAILED; i++) {
            size_t len = framed_garbage(n, b, sizeof b);
            if (len)
                (void)el_dtls_input(s, b, len);
        }
        assert_true(n->ep[1].errors <= 1);
        if (n->ep[1].errors) {
            failed++;
            assert_int_equal(n->ep[1].err_code, EL_ERR_CRYPTO);
            assert_int_equal(el_dtls_get_state(s), EL_DTLS_FAILED);
            assert_int_equal(el_dtls_input(s, b, 13), EL_ERR_INVALID);
        }
        assert_int_equal(n->ep[1].connected, 0);
        net_free(n);
    }
    (void)failed; /* OpenSSL drops some garbage silently and rejects the rest */
}

static void test_close_notify(void **state)
{
    (void)state;
    for (int closer = 0; closer < 2; closer++) {
        net *n = connected_pair(0);
        ep *a = &n->ep[closer], *b = &n->ep[1 - closer];
        int sent = a->sent;
        el_dtls_close(a->d);
        assert_int_equal(a->sent, sent + 1); /* the close_notify alert */
        assert_int_equal(el_dtls_get_state(a->d), EL_DTLS_CLOSED);
        el_dtls_close(a->d); /* idempotent */
        assert_int_equal(a->sent, sent + 1);
        assert_true(pump(n, NULL, 500));
        assert_int_equal(a->errors, 0); /* a local close is not an error */
        assert_int_equal(b->errors, 1);
        assert_int_equal(b->err_code, EL_ERR_IO);
        assert_non_null(strstr(b->err_msg, "close_notify"));
        assert_int_equal(el_dtls_get_state(b->d), EL_DTLS_CLOSED);
        uint8_t m = 1;
        assert_int_equal(el_dtls_send(a->d, &m, 1), EL_ERR_INVALID);
        assert_int_equal(el_dtls_send(b->d, &m, 1), EL_ERR_INVALID);
        assert_int_equal(el_dtls_input(a->d, n->first[1], n->first_len[1]), EL_ERR_INVALID);
        el_dtls_close(b->d); /* after on_error: nothing more */
        assert_int_equal(b->errors, 1);
        net_free(n);
    }

    /* close from inside on_data: the rest of the datagram is not delivered */
    net *n = connected_pair(1);
    n->ep[1].close_in_data = 1;
    uint8_t m = 7;
    assert_int_equal(el_dtls_send(n->ep[0].d, &m, 1), EL_OK);
    assert_int_equal(el_dtls_send(n->ep[0].d, &m, 1), EL_OK);
    assert_true(pump(n, NULL, 500));
    assert_int_equal(n->ep[1].data_count, 1);
    assert_int_equal(el_dtls_get_state(n->ep[1].d), EL_DTLS_CLOSED);
    assert_int_equal(n->ep[0].errors, 1);
    assert_int_equal(n->ep[0].err_code, EL_ERR_IO);
    net_free(n);
}

static void test_misuse_from_callbacks(void **state)
{
    (void)state;
    /* free inside on_connected (both sides, over time) */
    net *n = net_new(0, NULL, NULL);
    n->ep[0].free_in_connected = 1;
    n->ep[1].free_in_connected = 1;
    start_both(n);
    assert_true(pump(n, both_connected, 5000));
    assert_null(n->ep[0].d);
    assert_null(n->ep[1].d);
    assert_true(pump(n, NULL, 300));
    net_free(n);

    /* free inside on_data, with more records queued behind */
    n = connected_pair(0);
    n->ep[1].free_in_data = 1;
    uint8_t m = 1;
    for (int i = 0; i < 3; i++)
        assert_int_equal(el_dtls_send(n->ep[0].d, &m, 1), EL_OK);
    assert_true(pump(n, NULL, 500));
    assert_null(n->ep[1].d);
    assert_int_equal(n->ep[1].data_count, 1); /* nothing after the free */
    net_free(n);

    /* recursion from inside send is refused, and close there does nothing */
    n = connected_pair(0);
    n->ep[0].recurse_in_send = 1;
    assert_int_equal(el_dtls_send(n->ep[0].d, &m, 1), EL_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(n->ep[0].recurse_rc[i], EL_ERR_DENIED);
    assert_true(pump(n, NULL, 500));
    assert_int_equal(n->ep[1].data_count, 1);
    check_connected(n);
    net_free(n);
}

static void test_api_misc(void **state)
{
    (void)state;
    el_cert *c = NULL;
    assert_int_equal(el_cert_new(&c, NULL, 0), EL_OK);
    char err[256] = "";
    assert_null(el_dtls_ctx_new(NULL, err, sizeof err));
    assert_true(strlen(err) > 0);
    el_dtls_ctx_free(NULL);
    el_dtls_ctx *ctx = el_dtls_ctx_new(c, err, sizeof err);
    assert_non_null(ctx);
    err[0] = '\0';
    assert_null(el_dtls_new(NULL, 1, NULL, &callbacks, NULL, err, sizeof err));
    assert_true(strlen(err) > 0);
    err[0] = '\0';
    assert_null(el_dtls_new(ctx, 1, NULL, NULL, NULL, err, sizeof err));
    assert_true(strlen(err) > 0);
    el_dtls_callbacks no_send = callbacks;
    no_send.send = NULL;
    assert_null(el_dtls_new(ctx, 1, NULL, &no_send, NULL, err, sizeof err));

    /* only send is required; the certificate and the context may go right
     * after new */
    net n;
    memset(&n, 0, sizeof n);
    n.ep[0].net = &n;
    n.ep[0].deadline = -1;
    el_dtls_callbacks min = {.send = cb_send};
    el_dtls *d = el_dtls_new(ctx, 1, NULL, &min, &n.ep[0], err, sizeof err);
    assert_non_null(d);
    el_dtls_ctx_free(ctx);
    el_cert_free(c);
    n.drop_all[0] = 1;
    assert_int_equal(el_dtls_start(d), EL_OK);
    assert_int_equal(n.ep[0].sent, 1);
    int64_t t = el_dtls_timeout_ms(d);
    assert_true(t > 0 && t <= EL_DTLS_TIMER_INITIAL_MS);
    uint8_t fp[EL_CERT_FP_LEN];
    assert_int_equal(el_dtls_peer_fingerprint(d, fp), EL_ERR_NOT_FOUND);
    assert_int_equal(el_dtls_data_mtu(d), 0);
    assert_string_equal(el_dtls_version_name(d), "");
    assert_string_equal(el_dtls_cipher_name(d), "");
    el_dtls_free(d);
    el_dtls_free(NULL);
    el_dtls_close(NULL);
    assert_int_equal(el_dtls_start(NULL), EL_ERR_INVALID);
    assert_int_equal(el_dtls_handle_timeout(NULL), EL_ERR_INVALID);
    assert_int_equal(el_dtls_timeout_ms(NULL), -1);
    assert_int_equal(el_dtls_peer_fingerprint(NULL, fp), EL_ERR_INVALID);

    /* RFC 7983 demultiplexing */
    uint8_t p[1];
    const struct {
        uint8_t b;
        int want;
    } demux[] = {{0, 0}, {3, 0}, {19, 0}, {20, 1}, {22, 1}, {23, 1},
                 {63, 1}, {64, 0}, {127, 0}, {128, 0}, {191, 0}, {255, 0}};
    for (size_t i = 0; i < sizeof demux / sizeof demux[0]; i++) {
        p[0] = demux[i].b;
        assert_int_equal(el_dtls_is_dtls_packet(p, 1), demux[i].want);
    }
    assert_int_equal(el_dtls_is_dtls_packet(p, 0), 0);
    assert_int_equal(el_dtls_is_dtls_packet(NULL, 1), 0);

    assert_string_equal(el_dtls_state_name(EL_DTLS_VERIFYING), "verifying");
    assert_string_equal(el_dtls_state_name(EL_DTLS_CONNECTED), "connected");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_both_roles),
        cmocka_unit_test(test_server_without_start),
        cmocka_unit_test(test_data_both_ways),
        cmocka_unit_test(test_send_from_on_data),
        cmocka_unit_test(test_wrong_fingerprint),
        cmocka_unit_test(test_late_fingerprint),
        cmocka_unit_test(test_drop_first_flights),
        cmocka_unit_test(test_random_loss),
        cmocka_unit_test(test_retransmission_schedule),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_close_notify),
        cmocka_unit_test(test_misuse_from_callbacks),
        cmocka_unit_test(test_api_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
