/* test_ws.c - src/proto/ws: the request head of a WebSocket upgrade, the
 * accept key, client frames in (every split of a stream gives the same
 * messages; every protocol error and its code) and server frames out.
 * EL_TEST_FILTER=<glob> runs a subset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test.h"

#include "proto/ws.h"

/* ---- building client frames --------------------------------------------- */

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 §5.7's */

/* Length encodings: LEN_MIN the shortest, else forced. */
enum { LEN_MIN, LEN_16, LEN_64 };

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

/* A client frame: b0 (FIN/RSV/opcode as given), masked with KEY unless
 * unmasked, payload d[0..n). */
static void frame_x(bytes *b, uint8_t b0, const void *d, size_t n, int enc, int unmasked)
{
    uint8_t h[14];
    size_t o = 2;
    h[0] = b0;
    uint8_t m = unmasked ? 0 : 0x80;
    if (enc == LEN_MIN && n < 126) {
        h[1] = (uint8_t)(m | n);
    } else if (enc != LEN_64 && n <= 0xffff) {
        h[1] = m | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        o = 4;
    } else {
        h[1] = m | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        o = 10;
    }
    if (!unmasked) {
        memcpy(h + o, KEY, 4);
        o += 4;
    }
    put(b, h, o);
    size_t at = b->len;
    put(b, d, n);
    if (!unmasked)
        for (size_t i = 0; i < n; i++)
            b->p[at + i] ^= KEY[i & 3];
}

static void frame(bytes *b, int fin, el_ws_op op, const void *d, size_t n)
{
    frame_x(b, (uint8_t)((fin ? 0x80 : 0) | op), d, n, LEN_MIN, 0);
}

static void frame_s(bytes *b, int fin, el_ws_op op, const char *s)
{
    frame(b, fin, op, s, strlen(s));
}

/* ---- recording what the decoder delivers -------------------------------- */

typedef struct {
    el_ws_op op;
    uint8_t *data;
    size_t len;
    int zero_copy; /* data pointed into the fed bytes */
} event;

typedef struct {
    event ev[64];
    int n;
    int stop_at;   /* return stop_rc from the stop_at'th event (1-based), 0: never */
    int stop_rc;
    const uint8_t *fed; /* the bytes of the current feed */
    size_t fed_len;
} recorder;

static int on_frame(void *user, el_ws_op op, uint8_t *data, size_t len)
{
    recorder *r = user;
    assert_non_null(data);
    assert_true(r->n < 64);
    event *e = &r->ev[r->n++];
    e->op = op;
    e->len = len;
    e->data = malloc(len ? len : 1);
    assert_non_null(e->data);
    if (len)
        memcpy(e->data, data, len);
    e->zero_copy = data >= r->fed && data + len <= r->fed + r->fed_len;
    if (len) /* data is writable: scribbling must be harmless */
        data[0] ^= 0xff;
    return r->stop_at && r->n == r->stop_at ? r->stop_rc : 0;
}

static void rec_free(recorder *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->ev[i].data);
    r->n = 0;
}

/* Feeds s[0..n) in chunks of `chunk` bytes (0: whole), each from an
 * exact-size heap copy so that ASan sees any over-read. Stops at the first
 * non-zero result and returns it; rx is reset afterwards unless keep. */
static int feed_chunks(el_ws_rx *rx, const uint8_t *s, size_t n, size_t chunk, size_t max,
                       recorder *r, const char **why)
{
    if (!chunk)
        chunk = n ? n : 1;
    size_t pos = 0;
    int rc = 0;
    *why = NULL;
    do {
        size_t k = n - pos < chunk ? n - pos : chunk;
        uint8_t *c = malloc(k ? k : 1);
        assert_non_null(c);
        memcpy(c, s + pos, k);
        r->fed = c;
        r->fed_len = k;
        rc = el_ws_rx_feed(rx, c, k, max, on_frame, r, why);
        free(c);
        r->fed = NULL;
        pos += k;
    } while (rc == 0 && pos < n);
    return rc;
}

static void assert_same_events(const recorder *a, const recorder *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        assert_int_equal(a->ev[i].op, b->ev[i].op);
        assert_int_equal(a->ev[i].len, b->ev[i].len);
        if (a->ev[i].len)
            assert_memory_equal(a->ev[i].data, b->ev[i].data, a->ev[i].len);
    }
}

static void assert_event(const recorder *r, int i, el_ws_op op, const void *d, size_t n)
{
    assert_true(i < r->n);
    assert_int_equal(r->ev[i].op, op);
    assert_int_equal(r->ev[i].len, n);
    if (n)
        assert_memory_equal(r->ev[i].data, d, n);
}

#define MAX (1u << 20)

/* ---- frames in ----------------------------------------------------------- */

static void test_rx_size(void **state)
{
    (void)state;
    /* the cost of every idle raw WebSocket in echolinkd */
    assert_true(sizeof(el_ws_rx) <= 48);
    printf("sizeof(el_ws_rx) = %zu\n", sizeof(el_ws_rx));
}

/* Whole frames in one feed: delivered from the fed bytes, no allocation. */
static void test_several_frames_one_feed(void **state)
{
    (void)state;
    bytes b = {0};
    frame_s(&b, 1, EL_WS_TEXT, "42[\"a\",1]");
    frame_s(&b, 1, EL_WS_BINARY, "\x01\x02\x03");
    frame_s(&b, 1, EL_WS_PING, "hi");
    char big[1024];
    memset(big, 'x', sizeof big);
    frame(&b, 1, EL_WS_TEXT, big, sizeof big);
    el_ws_rx rx;
    memset(&rx, 0, sizeof rx);
    recorder r = {0};
    const char *why;
    assert_int_equal(feed_chunks(&rx, b.p, b.len, 0, MAX, &r, &why), 0);
    assert_null(why);
    assert_int_equal(r.n, 4);
    assert_event(&r, 0, EL_WS_TEXT, "42[\"a\",1]", 9);
    assert_event(&r, 1, EL_WS_BINARY, "\x01\x02\x03", 3);
    assert_event(&r, 2, EL_WS_PING, "hi", 2);
    assert_event(&r, 3, EL_WS_TEXT, big, sizeof big);
    for (int i = 0; i < r.n; i++)
        assert_true(r.ev[i].zero_copy);
    assert_null(rx.buf);
    assert_int_equal(rx.left, 0);
    assert_int_equal(rx.hdr_len, 0);
    rec_free(&r);
    el_ws_rx_reset(&rx);
    free(b.p);
}

static void test_fragmented_with_ping(void **state)
{
    (void)state;
    bytes b = {0};
    frame_s(&b, 0, EL_WS_TEXT, "Hel");
    frame_s(&b, 1, EL_WS_PING, "p");
    frame_s(&b, 0, EL_WS_CONT, "lo ");
    frame_s(&b, 1, EL_WS_PONG, "");
    frame_s(&b, 0, EL_WS_CONT, "");
    frame_s(&b, 1, EL_WS_CONT, "world");
    frame(&b, 0, EL_WS_BINARY, "\x00", 1);
    frame(&b, 1, EL_WS_CONT, "\x01", 1);
    el_ws_rx rx;
    memset(&rx, 0, sizeof rx);
    recorder r = {0};
    const char *why;
    assert_int_equal(feed_chunks(&rx, b.p, b.len, 0, MAX, &r, &why), 0);
    assert_int_equal(r.n, 4);
    assert_event(&r, 0, EL_WS_PING, "p", 1);
    assert_true(r.ev[0].zero_copy); /* a whole control frame: straight from data */
    assert_event(&r, 1, EL_WS_PONG, "", 0);
    assert_event(&r, 2, EL_WS_TEXT, "Hello world", 11);
    assert_false(r.ev[2].zero_copy);
    assert_event(&r, 3, EL_WS_BINARY, "\x00\x01", 2);
    assert_null(rx.buf); /* let go once delivered */
    assert_int_equal(rx.msg_op, 0);
    rec_free(&r);
    el_ws_rx_reset(&rx);
    free(b.p);
}

/* The stream every split must decode alike: all length forms, empty
 * frames, fragments with control frames between them. */
static void build_mixed(bytes *b, size_t big)
{
    static char pay[70000];
    for (size_t i = 0; i < sizeof pay; i++)
        pay[i] = (char)(i * 7 + 3);
    frame_s(b, 1, EL_WS_TEXT, "hello");
    frame(b, 1, EL_WS_BINARY, pay, 125);
    frame(b, 1, EL_WS_TEXT, pay, 126);
    frame_s(b, 1, EL_WS_TEXT, "");
    frame_s(b, 1, EL_WS_BINARY, "");
    frame(b, 0, EL_WS_TEXT, pay, 200);
    frame(b, 1, EL_WS_PING, pay, 125);
    frame(b, 0, EL_WS_CONT, pay + 200, 3);
    frame_s(b, 1, EL_WS_PONG, "");
    frame(b, 1, EL_WS_CONT, pay + 203, 130);
    frame_x(b, 0x80 | EL_WS_TEXT, "abc", 3, LEN_16, 0); /* non-minimal: accepted */
    frame_x(b, 0x80 | EL_WS_BINARY, "defgh", 5, LEN_64, 0);
    frame(b, 1, EL_WS_TEXT, pay, 1000);
    if (big)
        frame(b, 1, EL_WS_BINARY, pay, big);
    uint8_t close[] = {0x03, 0xe8, 'b', 'y', 'e'};
    frame(b, 1, EL_WS_CLOSE, close, sizeof close);
}

static void check_splits(const bytes *b, size_t max_chunk, size_t step)
{
    el_ws_rx rx;
    memset(&rx, 0, sizeof rx);
    recorder whole = {0};
    const char *why;
    assert_int_equal(feed_chunks(&rx, b->p, b->len, 0, MAX, &whole, &why), 0);
    assert_null(rx.buf);
    el_ws_rx_reset(&rx);
    for (size_t chunk = 1; chunk <= max_chunk; chunk += chunk < 64 ? 1 : step) {
        recorder r = {0};
        assert_int_equal(feed_chunks(&rx, b->p, b->len, chunk, MAX, &r, &why), 0);
        assert_same_events(&whole, &r);
        assert_null(rx.buf); /* nothing held between messages */
        assert_int_equal(rx.left, 0);
        assert_int_equal(rx.hdr_len, 0);
        rec_free(&r);
        el_ws_rx_reset(&rx);
    }
    rec_free(&whole);
}

static void test_split_every_chunk_size(void **state)
{
    (void)state;
    bytes b = {0};
    build_mixed(&b, 0);
    check_splits(&b, b.len, 1); /* chunks of 1, 2, 3, ... len bytes */
    free(b.p);
}

/* Every single cut point, fed as two pieces. */
static void test_split_every_boundary(void **state)
{
    (void)state;
    bytes b = {0};
    build_mixed(&b, 0);
    el_ws_rx rx;
    memset(&rx, 0, sizeof rx);
    recorder whole = {0};
    const char *why;
    assert_int_equal(feed_chunks(&rx, b.p, b.len, 0, MAX, &whole, &why), 0);
    assert_int_equal(whole.n, 12);
    el_ws_rx_reset(&rx);
    for (size_t cut = 0; cut <= b.len; cut++) {
        recorder r = {0};
        uint8_t *c = malloc(b.len);
        assert_non_null(c);
        memcpy(c, b.p, b.len);
        r.fed = c;
        r.fed_len = b.len;
        assert_int_equal(el_ws_rx_feed(&rx, c, cut, MAX, on_frame, &r, &why), 0);
        assert_int_equal(el_ws_rx_feed(&rx, c + cut, b.len - cut, MAX, on_frame, &r, &why), 0);
        assert_same_events(&whole, &r);
        assert_null(rx.buf);
        rec_free(&r);
        free(c);
        el_ws_rx_reset(&rx);
    }
    rec_free(&whole);
    free(b.p);
}

/* 7-, 16- and 64-bit lengths at their edges, whole and split. */
static void test_lengths(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    static uint8_t pay[70000];
    for (size_t i = 0; i < sizeof pay; i++)
        pay[i] = (uint8_t)(i ^ (i >> 8));
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        bytes b = {0};
        frame(&b, 1, EL_WS_BINARY, pay, lens[i]);
        size_t hl = lens[i] < 126 ? 6 : lens[i] <= 0xffff ? 8 : 14;
        assert_int_equal(b.len, hl + lens[i]);
        static const size_t chunks[] = {0, 1, 7, 1000, 65536};
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            if (chunks[c] == 1 && lens[i] > 1000)
                continue; /* slow under ASan and nothing new */
            el_ws_rx rx;
            memset(&rx, 0, sizeof rx);
            recorder r = {0};
            const char *why;
            assert_int_equal(feed_chunks(&rx, b.p, b.len, chunks[c], MAX, &r, &why), 0);
            assert_int_equal(r.n, 1);
            assert_event(&r, 0, EL_WS_BINARY, pay, lens[i]);
            assert_int_equal(r.ev[0].zero_copy, chunks[c] == 0 || chunks[c] >= b.len || lens[i] == 0);
            rec_free(&r);
            el_ws_rx_reset(&rx);
        }
        free(b.p);
    }
    /* the big stream under a few split sizes */
    bytes b = {0};
    build_mixed(&b, 70000);
    check_splits(&b, 4096, 997);
    free(b.p);
}

static void test_empty_frames(void **state)
{
    (void)state;
    bytes b = {0};
    frame_s(&b, 1, EL_WS_TEXT, "");
    frame_s(&b, 1, EL_WS_BINARY, "");
    frame_s(&b, 0, EL_WS_TEXT, "");
    frame_s(&b, 1, EL_WS_CONT, "");
    frame_s(&b, 1, EL_WS_CLOSE, "");
    for (size_t chunk = 0; chunk < 4; chunk++) {
        el_ws_rx rx;
        memset(&rx, 0, sizeof rx);
        recorder r = {0};
        const char *why;
        assert_int_equal(feed_chunks(&rx, b.p, b.len, chunk, MAX, &r, &why), 0);
        assert_int_equal(r.n, 4);
        assert_event(&r, 0, EL_WS_TEXT, "", 0);
        assert_event(&r, 1, EL_WS_BINARY, "", 0);
        assert_event(&r, 2, EL_WS_TEXT, "", 0);
        assert_event(&r, 3, EL_WS_CLOSE, "", 0);
        assert_null(rx.buf);
        rec_free(&r);
        el_ws_rx_reset(&rx);
    }
    free(b.p);
}

/* Feeds b whole and byte by byte: the same code and number of events. */
static void expect_code(const char *what, const bytes *b, size_t max, int code, int events)
{
    for (size_t chunk = 0; chunk < 2; chunk++) {
        el_ws_rx rx;
        memset(&rx, 0, sizeof rx);
        recorder r = {0};
        const char *why = NULL;
        int rc = feed_chunks(&rx, b->p, b->len, chunk, max, &r, &why);
        if (rc != code)
            fail_msg("%s, chunk %zu: got %d (%s), want %d", what, chunk, rc, why ? why : "-", code);
        if (code >= 1000 && !why)
            fail_msg("%s: no reason", what);
        if (r.n != events)
            fail_msg("%s, chunk %zu: %d events, want %d", what, chunk, r.n, events);
        rec_free(&r);
        el_ws_rx_reset(&rx);
    }
}

static void test_max_message(void **state)
{
    (void)state;
    static uint8_t pay[2000];
    memset(pay, 'm', sizeof pay);
    bytes b = {0};
    frame(&b, 1, EL_WS_TEXT, pay, 1000);
    expect_code(__func__, &b, 1000, 0, 1);
    expect_code(__func__, &b, 999, 1009, 0);
    expect_code(__func__, &b, 0, 1009, 0);
    b.len = 8; /* the header alone is enough to refuse */
    expect_code(__func__, &b, 999, 1009, 0);
    free(b.p);

    /* fragments count together; control frames do not count */
    b = (bytes){0};
    frame(&b, 0, EL_WS_TEXT, pay, 400);
    frame(&b, 1, EL_WS_PING, pay, 125);
    frame(&b, 0, EL_WS_CONT, pay, 500);
    frame(&b, 1, EL_WS_CONT, pay, 100);
    expect_code(__func__, &b, 1000, 0, 2);
    expect_code(__func__, &b, 999, 1009, 1);
    free(b.p);

    /* control frames up to 125 bytes, whatever the limit */
    b = (bytes){0};
    frame(&b, 1, EL_WS_PING, pay, 125);
    frame(&b, 1, EL_WS_TEXT, pay, 10);
    expect_code(__func__, &b, 10, 0, 2);
    expect_code(__func__, &b, 9, 1009, 1);
    free(b.p);

    /* 64-bit length over the limit: refused, nothing allocated */
    b = (bytes){0};
    uint8_t h[] = {0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4};
    put(&b, h, sizeof h);
    expect_code(__func__, &b, MAX, 1009, 0);
    free(b.p);
}

static void test_protocol_errors(void **state)
{
    (void)state;
    static uint8_t pay[200];
    static const struct {
        const char *name;
        uint8_t b0;
        size_t len;
        int unmasked;
        int prefix; /* 1: a TEXT fin=0 "a" first (a message in progress) */
    } bad[] = {
        {"unmasked", 0x81, 3, 1, 0},
        {"unmasked empty", 0x81, 0, 1, 0},
        {"RSV1", 0xc1, 3, 0, 0},
        {"RSV2", 0xa1, 3, 0, 0},
        {"RSV3", 0x91, 3, 0, 0},
        {"opcode 3", 0x83, 1, 0, 0},
        {"opcode 7", 0x87, 1, 0, 0},
        {"opcode 11", 0x8b, 1, 0, 0},
        {"opcode 15", 0x8f, 1, 0, 0},
        {"ping 126", 0x89, 126, 0, 0},
        {"close 200", 0x88, 200, 0, 0},
        {"fragmented ping", 0x09, 1, 0, 0},
        {"fragmented close", 0x08, 2, 0, 0},
        {"cont alone", 0x80, 3, 0, 0},
        {"cont alone, not fin", 0x00, 3, 0, 0},
        {"text in message", 0x81, 3, 0, 1},
        {"binary in message", 0x82, 3, 0, 1},
        {"text not fin in message", 0x01, 3, 0, 1},
        {"close of 1 byte", 0x88, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bytes b = {0};
        if (bad[i].prefix)
            frame_s(&b, 0, EL_WS_TEXT, "a");
        frame_x(&b, bad[i].b0, pay, bad[i].len, LEN_MIN, bad[i].unmasked);
        frame_s(&b, 1, EL_WS_TEXT, "never");
        expect_code(bad[i].name, &b, MAX, 1002, 0);
        free(b.p);
    }
    /* the top bit of a 64-bit length */
    bytes b = {0};
    uint8_t h[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 'x'};
    put(&b, h, sizeof h);
    expect_code(__func__, &b, MAX, 1002, 0);
    free(b.p);

    /* found from the first two bytes: a peer stopping there is not waited for */
    el_ws_rx rx;
    memset(&rx, 0, sizeof rx);
    recorder r = {0};
    const char *why;
    uint8_t two[] = {0x81, 0x05};
    assert_int_equal(el_ws_rx_feed(&rx, two, 1, MAX, on_frame, &r, &why), 0);
    assert_int_equal(el_ws_rx_feed(&rx, two + 1, 1, MAX, on_frame, &r, &why), 1002);
    assert_string_equal(why, "unmasked client frame");
    el_ws_rx_reset(&rx);
}

static void test_close_codes(void **state)
{
    (void)state;
    static const unsigned ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1014, 3000, 4999};
    static const unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0] + sizeof bad / sizeof bad[0]; i++) {
        int good = i < sizeof ok / sizeof ok[0];
        unsigned code = good ? ok[i] : bad[i - sizeof ok / sizeof ok[0]];
        uint8_t p[] = {(uint8_t)(code >> 8), (uint8_t)code, 'r'};
        bytes b = {0};
        frame(&b, 1, EL_WS_CLOSE, p, i & 1 ? 3 : 2);
        expect_code(__func__, &b, MAX, good ? 0 : 1002, good ? 1 : 0);
        free(b.p);
    }
}

static void test_callback_stop(void **state)
{
    (void)state;
    bytes b = {0};
    frame_s(&b, 1, EL_WS_TEXT, "one");
    frame_s(&b, 0, EL_WS_TEXT, "tw");
    frame_s(&b, 1, EL_WS_CONT, "o");
    frame_s(&b, 1, EL_WS_TEXT, "three");
    for (int stop = 1; stop <= 3; stop++) {
        for (size_t chunk = 0; chunk < 3; chunk++) {
            el_ws_rx rx;
            memset(&rx, 0, sizeof rx);
            recorder r = {0};
            r.stop_at = stop;
            r.stop_rc = 42 + stop;
            const char *why;
            assert_int_equal(feed_chunks(&rx, b.p, b.len, chunk, MAX, &r, &why), 42 + stop);
            assert_int_equal(r.n, stop); /* nothing after the stop */
            rec_free(&r);
            el_ws_rx_reset(&rx); /* frees whatever was held (ASan's leak check) */
        }
    }
    free(b.p);
}

/* A reset in the middle of a message frees it and starts afresh. */
static void test_reset_mid_message(void **state)
{
    (void)state;
    bytes b = {0};
    frame_s(&b, 0, EL_WS_TEXT, "part");
    frame_s(&b, 1, EL_WS_CONT, "wxyz"); /* fed up to its first payload byte */
    el_ws_rx rx;
    memset(&rx, 0, sizeof rx);
    recorder r = {0};
    const char *why;
    assert_int_equal(feed_chunks(&rx, b.p, b.len - 3, 0, MAX, &r, &why), 0);
    assert_non_null(rx.buf);
    assert_int_equal(r.n, 0);
    el_ws_rx_reset(&rx);
    assert_null(rx.buf);
    bytes c = {0};
    frame_s(&c, 1, EL_WS_TEXT, "fresh");
    assert_int_equal(feed_chunks(&rx, c.p, c.len, 0, MAX, &r, &why), 0);
    assert_event(&r, 0, EL_WS_TEXT, "fresh", 5);
    rec_free(&r);
    el_ws_rx_reset(&rx);
    el_ws_rx_reset(&rx); /* twice is harmless */
    free(b.p);
    free(c.p);
}

/* ---- frames out ---------------------------------------------------------- */

static void test_frame_header(void **state)
{
    (void)state;
    uint8_t h[10];
    assert_int_equal(el_ws_frame_header(h, EL_WS_TEXT, 0), 2);
    assert_memory_equal(h, "\x81\x00", 2);
    assert_int_equal(el_ws_frame_header(h, EL_WS_BINARY, 125), 2);
    assert_memory_equal(h, "\x82\x7d", 2);
    assert_int_equal(el_ws_frame_header(h, EL_WS_TEXT, 126), 4);
    assert_memory_equal(h, "\x81\x7e\x00\x7e", 4);
    assert_int_equal(el_ws_frame_header(h, EL_WS_TEXT, 65535), 4);
    assert_memory_equal(h, "\x81\x7e\xff\xff", 4);
    assert_int_equal(el_ws_frame_header(h, EL_WS_TEXT, 65536), 10);
    assert_memory_equal(h, "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    assert_int_equal(el_ws_frame_header(h, EL_WS_PONG, 0x0102030405060708ull), 10);
    assert_memory_equal(h, "\x8a\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);
    assert_int_equal(el_ws_frame_header(h, EL_WS_CLOSE, 2), 2);
    assert_memory_equal(h, "\x88\x02", 2);
}

static void test_close_frame(void **state)
{
    (void)state;
    uint8_t f[2 + 125 + 2];
    size_t n = el_ws_close_frame(f, sizeof f, 1000, NULL);
    assert_int_equal(n, 4);
    assert_memory_equal(f, "\x88\x02\x03\xe8", 4);
    n = el_ws_close_frame(f, sizeof f, 1009, "too big");
    assert_int_equal(n, 11);
    assert_memory_equal(f, "\x88\x09\x03\xf1too big", 11);
    n = el_ws_close_frame(f, sizeof f, 0, "ignored");
    assert_int_equal(n, 2);
    assert_memory_equal(f, "\x88\x00", 2);

    char lng[300];
    memset(lng, 'r', sizeof lng - 1);
    lng[sizeof lng - 1] = '\0';
    n = el_ws_close_frame(f, sizeof f, 1002, lng);
    assert_int_equal(n, 2 + 125);
    assert_int_equal(f[1], 125);
    assert_memory_equal(f + 4, lng, 123);

    /* a 2-byte character across the cut is left out whole */
    memset(lng, 'r', sizeof lng);
    lng[122] = (char)0xc3;
    lng[123] = (char)0xa9;
    lng[124] = '\0';
    n = el_ws_close_frame(f, sizeof f, 1002, lng);
    assert_int_equal(n, 4 + 122);
    assert_int_equal(f[1], 124);
    /* a 3-byte one cut after its first continuation byte */
    lng[121] = (char)0xe2;
    lng[122] = (char)0x82;
    lng[123] = (char)0xac;
    n = el_ws_close_frame(f, sizeof f, 1002, lng);
    assert_int_equal(n, 4 + 121);

    /* outlen limits the reason too; too small for the code: 0 */
    uint8_t small[8];
    n = el_ws_close_frame(small, sizeof small, 1001, "going away");
    assert_int_equal(n, 8);
    assert_memory_equal(small, "\x88\x06\x03\xe9goin", 8);
    assert_int_equal(el_ws_close_frame(small, 3, 1001, NULL), 0);
    assert_int_equal(el_ws_close_frame(small, 1, 0, NULL), 0);

    /* what we write, our decoder reads (once masked, as a client would) */
    n = el_ws_close_frame(f, sizeof f, 4000, "bye");
    bytes b = {0};
    frame(&b, 1, EL_WS_CLOSE, f + 2, n - 2);
    el_ws_rx rx;
    memset(&rx, 0, sizeof rx);
    recorder r = {0};
    const char *why;
    assert_int_equal(feed_chunks(&rx, b.p, b.len, 0, MAX, &r, &why), 0);
    assert_event(&r, 0, EL_WS_CLOSE, "\x0f\xa0" "bye", 5);
    rec_free(&r);
    el_ws_rx_reset(&rx);
    free(b.p);
}

/* ---- accept key ---------------------------------------------------------- */

static void test_accept_key(void **state)
{
    (void)state;
    char out[29];
    static const char k[] = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(el_ws_accept_key(k, sizeof k - 1, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 §1.3 */
    assert_int_equal(el_ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out), 0);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk="); /* RFC 6455 §1.2 */

    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 */
        "dGhlIHNhbXBsZSBub25jZQ",    /* unpadded */
        "dGhlIHNhbXBsZSBub25jZR==",  /* non-canonical last bits */
        "dGhlIHNhbXBsZSBub25jZ*==",  /* not base64 */
        "dGhlIHNhbXBsZSBub25jZQA=",  /* 17 bytes */
        "dGhlIHNhbXBsZSBub25jZUFB",  /* 18 bytes */
        "dGhlIHNhbXBsZSBub25j====",
        "dGhlIHNhbXBsZSBub25jZQ= ", /* untrimmed */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 'z', sizeof out);
        assert_int_equal(el_ws_accept_key(bad[i], strlen(bad[i]), out), -1);
        assert_string_equal(out, "");
    }
    assert_int_equal(el_ws_accept_key(NULL, 0, out), -1);
    assert_int_equal(el_ws_accept_key(k, sizeof k - 2, out), -1);
}

/* ---- request head -------------------------------------------------------- */

/* Parses from an exact-size heap copy; the copy is returned for pointer checks. */
static int head_exact(const char *s, size_t n, el_ws_head *h, char **copy)
{
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    memcpy(*copy, s, n);
    return el_ws_head_parse(*copy, n, h);
}

static const char SIO[] =
    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: websocket\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Host: 127.0.0.1:3000\r\n"
    "\r\n";

static void test_head_socketio(void **state)
{
    (void)state;
    el_ws_head h;
    char *c;
    /* with the client's first frame already behind the head */
    char buf[sizeof SIO + 8];
    memcpy(buf, SIO, sizeof SIO - 1);
    memcpy(buf + sizeof SIO - 1, "\x81\x81XXXX", 7);
    int n = head_exact(buf, sizeof SIO - 1 + 7, &h, &c);
    assert_int_equal(n, sizeof SIO - 1);
    assert_true(h.is_get);
    EL_ASSERT_SPAN(h.path, h.path_len, "/socket.io/");
    EL_ASSERT_SPAN(h.query, h.query_len, "EIO=4&transport=websocket");
    EL_ASSERT_SPAN(h.key, h.key_len, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_true(h.path >= c && h.key >= c && h.key + h.key_len <= c + n);
    assert_int_equal(h.version, 13);
    assert_true(h.upgrade_websocket);
    assert_true(h.connection_upgrade);
    char acc[29];
    assert_int_equal(el_ws_accept_key(h.key, h.key_len, acc), 0);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    free(c);

    /* every proper prefix wants more */
    for (size_t k = 0; k < sizeof SIO - 1; k++) {
        assert_int_equal(head_exact(SIO, k, &h, &c), 0);
        int l = el_ws_head_line(c, k, &h);
        assert_int_equal(l, k >= 52 ? 1 : 0);
        free(c);
    }
    assert_int_equal(el_ws_head_line(SIO, sizeof SIO - 1, &h), 1);
    EL_ASSERT_SPAN(h.path, h.path_len, "/socket.io/");
    assert_true(h.is_get);
    assert_int_equal(h.key_len, 0);
}

static void test_head_chromium(void **state)
{
    (void)state;
    static const char req[] =
        "GET /socket.io/?EIO=4&transport=websocket&sid=abc HTTP/1.1\r\n"
        "Host: localhost:3000\r\n"
        "Connection: keep-alive, Upgrade\r\n"
        "Pragma: no-cache\r\n"
        "Cache-Control: no-cache\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
        "Upgrade: websocket\r\n"
        "Origin: http://localhost:3000\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
        "Cookie: a=b; c=\xc3\xa9\r\n" /* obs-text */
        "Sec-WebSocket-Key: \t x3JJHMbDL1EzLkh9GBhXDw== \t\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        "\r\n";
    el_ws_head h;
    char *c;
    assert_int_equal(head_exact(req, sizeof req - 1, &h, &c), sizeof req - 1);
    EL_ASSERT_SPAN(h.path, h.path_len, "/socket.io/");
    EL_ASSERT_SPAN(h.query, h.query_len, "EIO=4&transport=websocket&sid=abc");
    EL_ASSERT_SPAN(h.key, h.key_len, "x3JJHMbDL1EzLkh9GBhXDw==");
    assert_int_equal(h.version, 13);
    assert_true(h.upgrade_websocket && h.connection_upgrade && h.is_get);
    free(c);
}

/* What each variant of a minimal head yields. */
static void test_head_fields(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        int upgrade, connection, version, is_get;
        const char *key; /* NULL: none */
        const char *path, *query;
    } t[] = {
        {"GET / HTTP/1.1\r\nuPgRaDe: WebSocket\r\nCONNECTION: UPGRADE\r\nsec-websocket-version: 13\r\n"
         "SEC-WEBSOCKET-KEY: k\r\n\r\n", 1, 1, 13, 1, "k", "/", NULL},
        {"GET /a? HTTP/1.0\r\nUpgrade: h2c, websocket\r\nConnection: close ,, upgrade\r\n\r\n",
         1, 1, 0, 1, NULL, "/a", ""},
        {"POST /x?y?z HTTP/1.1\r\nUpgrade: websocketx\r\nConnection: upgraded\r\n\r\n",
         0, 0, 0, 0, NULL, "/x", "y?z"},
        {"get / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nUpgrade:websocket\r\n\r\n",
         1, 1, 0, 0, NULL, "/", NULL},
        {"GET * HTTP/1.9\r\nSec-WebSocket-Key: a\r\nSec-WebSocket-Key: a\r\n\r\n", 0, 0, 0, 1, NULL, "*", NULL},
        {"GET / HTTP/1.1\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n\r\n", 0, 0, 0, 1, NULL, "/", NULL},
        {"GET / HTTP/1.1\r\nSec-WebSocket-Version: 13x\r\n\r\n", 0, 0, 0, 1, NULL, "/", NULL},
        {"GET / HTTP/1.1\r\nSec-WebSocket-Version: 1300\r\n\r\n", 0, 0, 0, 1, NULL, "/", NULL},
        {"GET / HTTP/1.1\r\nSec-WebSocket-Version: 8 \r\nSec-WebSocket-Key:\r\n\r\n", 0, 0, 8, 1, "", "/", NULL},
        {"GET http://h/p?q HTTP/1.1\r\nX-Empty:\r\n\r\n", 0, 0, 0, 1, NULL, "http://h/p", "q"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        el_ws_head h;
        char *c;
        size_t n = strlen(t[i].req);
        assert_int_equal(head_exact(t[i].req, n, &h, &c), n);
        assert_int_equal(h.upgrade_websocket, t[i].upgrade);
        assert_int_equal(h.connection_upgrade, t[i].connection);
        assert_int_equal(h.version, t[i].version);
        assert_int_equal(h.is_get, t[i].is_get);
        if (t[i].key) {
            assert_non_null(h.key);
            EL_ASSERT_SPAN(h.key, h.key_len, t[i].key);
        } else {
            assert_null(h.key);
            assert_int_equal(h.key_len, 0);
        }
        EL_ASSERT_SPAN(h.path, h.path_len, t[i].path);
        if (t[i].query)
            EL_ASSERT_SPAN(h.query, h.query_len, t[i].query);
        else
            assert_null(h.query);
        free(c);
    }
}

static void test_head_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\x16\x03\x01\x02\x00\x01", /* a TLS hello: refused at once */
        " GET / HTTP/1.1\r\n\r\n",
        "\r\nGET / HTTP/1.1\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET / HTTP/1.x\r\n\r\n",
        "GET / HTTP/1.1\n\n",           /* bare LF: refused (see ws.h) */
        "GET / HTTP/1.1\r\nHost: a\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\n",
        "GET / HTTP/1.1\rX",
        "GET /\x01 HTTP/1.1\r\n\r\n",
        "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",   /* space before the colon */
        "GET / HTTP/1.1\r\n: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nHost\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\x00" "b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n",
        "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n",
        "G\xc3T / HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        el_ws_head h;
        char *c;
        size_t n = i == 18 ? 29 : strlen(bad[i]);
        if (head_exact(bad[i], n, &h, &c) != -1)
            fail_msg("malformed head %zu accepted", i);
        free(c);
    }
    /* request line errors show in el_ws_head_line too */
    el_ws_head h;
    assert_int_equal(el_ws_head_line("GET / HTTP/1.1\r\n", 16, &h), 1);
    assert_int_equal(el_ws_head_line("GET / HTTP/1.1\r", 15, &h), 0);
    assert_int_equal(el_ws_head_line("GET / HTTP/3", 12, &h), -1);
    assert_int_equal(el_ws_head_line("\x16\x03", 2, &h), -1);
    assert_int_equal(el_ws_head_line("", 0, &h), 0);
    assert_int_equal(el_ws_head_parse("", 0, &h), 0);
}

/* EL_WS_HEAD_MAX: a head of exactly that size is taken, one byte more is not. */
static void test_head_max(void **state)
{
    (void)state;
    static const char line[] = "GET / HTTP/1.1\r\nX: ";
    char *buf = malloc(EL_WS_HEAD_MAX + 100);
    assert_non_null(buf);
    size_t fill = EL_WS_HEAD_MAX - (sizeof line - 1) - 4;
    memcpy(buf, line, sizeof line - 1);
    memset(buf + sizeof line - 1, 'v', fill);
    memcpy(buf + sizeof line - 1 + fill, "\r\n\r\n", 4);
    el_ws_head h;
    assert_int_equal(el_ws_head_parse(buf, EL_WS_HEAD_MAX, &h), EL_WS_HEAD_MAX);
    assert_int_equal(el_ws_head_parse(buf, EL_WS_HEAD_MAX + 100, &h), EL_WS_HEAD_MAX);
    assert_int_equal(el_ws_head_parse(buf, EL_WS_HEAD_MAX - 1, &h), 0);
    /* one more byte of value: the end lies past the limit */
    memset(buf + sizeof line - 1, 'v', fill + 1);
    memcpy(buf + sizeof line - 1 + fill + 1, "\r\n\r\n", 4);
    assert_int_equal(el_ws_head_parse(buf, EL_WS_HEAD_MAX - 1, &h), 0);
    assert_int_equal(el_ws_head_parse(buf, EL_WS_HEAD_MAX, &h), -1);
    assert_int_equal(el_ws_head_parse(buf, EL_WS_HEAD_MAX + 1, &h), -1);
    /* a request line that never ends */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', EL_WS_HEAD_MAX + 95);
    assert_int_equal(el_ws_head_line(buf, EL_WS_HEAD_MAX - 1, &h), 0);
    assert_int_equal(el_ws_head_line(buf, EL_WS_HEAD_MAX, &h), -1);
    assert_int_equal(el_ws_head_parse(buf, EL_WS_HEAD_MAX + 100, &h), -1);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rx_size),
        cmocka_unit_test(test_several_frames_one_feed),
        cmocka_unit_test(test_fragmented_with_ping),
        cmocka_unit_test(test_split_every_chunk_size),
        cmocka_unit_test(test_split_every_boundary),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_empty_frames),
        cmocka_unit_test(test_max_message),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_reset_mid_message),
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_close_frame),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_head_socketio),
        cmocka_unit_test(test_head_chromium),
        cmocka_unit_test(test_head_fields),
        cmocka_unit_test(test_head_malformed),
        cmocka_unit_test(test_head_max),
    };
    if (getenv("EL_TEST_FILTER"))
        cmocka_set_test_filter(getenv("EL_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
