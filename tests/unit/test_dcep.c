/* test_dcep.c - src/rtc/dcep: DATA_CHANNEL_OPEN/ACK round trips for every
 * channel type, the exact bytes of Chromium's default "chat" OPEN, strict
 * length checks (truncation, lengths beyond the buffer, trailing bytes),
 * unknown types, UTF-8, and the PPID and stream-id helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test.h"

#include "base/err.h"
#include "rtc/dcep.h"

/* Parses from a heap copy of exactly len bytes, so ASan sees any overread.
 * The copy is returned in *keep (the parsed spans point into it). */
static int parse_exact(const uint8_t *buf, size_t len, el_dcep_msg *m, char *err,
                       size_t errlen, uint8_t **keep)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    int rc = el_dcep_parse(copy, len, m, err, errlen);
    if (keep)
        *keep = copy;
    else
        free(copy);
    return rc;
}

static void expect_err(const uint8_t *buf, size_t len, const char *want)
{
    el_dcep_msg m;
    char err[256] = "";
    int rc = parse_exact(buf, len, &m, err, sizeof err, NULL);
    if (rc != EL_ERR_INVALID || !strstr(err, want))
        fail_msg("expected \"%s\", got %d \"%s\"", want, rc, err);
}

static el_dcep_msg open_msg(el_dcep_channel_type type, uint16_t prio, uint32_t rel,
                            const char *label, const char *proto)
{
    el_dcep_msg m;
    memset(&m, 0, sizeof m);
    m.type = EL_DCEP_MSG_OPEN;
    m.open.channel_type = type;
    m.open.priority = prio;
    m.open.reliability = rel;
    m.open.label = (const uint8_t *)label;
    m.open.label_len = (uint16_t)strlen(label);
    m.open.protocol = (const uint8_t *)proto;
    m.open.protocol_len = (uint16_t)strlen(proto);
    return m;
}

static void assert_open_equal(const el_dcep_open *a, const el_dcep_open *b)
{
    assert_int_equal(a->channel_type, b->channel_type);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->reliability, b->reliability);
    assert_int_equal(a->label_len, b->label_len);
    assert_int_equal(a->protocol_len, b->protocol_len);
    if (a->label_len)
        assert_memory_equal(a->label, b->label, a->label_len);
    if (a->protocol_len)
        assert_memory_equal(a->protocol, b->protocol, a->protocol_len);
}

/* What Chromium sends for createDataChannel('chat') (RFC 8832 §5.1 layout;
 * seen in the spike: type 0x00, priority 256, label "chat", no protocol). */
static const uint8_t chat_open[] = {0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x04, 0x00, 0x00, 'c',  'h',  'a',  't'};

static void test_chromium_chat(void **state)
{
    (void)state;
    el_dcep_msg m;
    char err[256] = "";
    uint8_t *keep;
    assert_int_equal(parse_exact(chat_open, sizeof chat_open, &m, err, sizeof err, &keep), EL_OK);
    assert_int_equal(m.type, EL_DCEP_MSG_OPEN);
    assert_int_equal(m.open.channel_type, EL_DCEP_RELIABLE);
    assert_int_equal(m.open.priority, EL_DCEP_PRIORITY_NORMAL);
    assert_int_equal(m.open.reliability, 0);
    assert_int_equal(m.open.label_len, 4);
    assert_memory_equal(m.open.label, "chat", 4);
    assert_ptr_equal(m.open.label, keep + 12); /* borrowed, not copied */
    assert_int_equal(m.open.protocol_len, 0);
    assert_null(m.open.protocol);
    free(keep);

    el_dcep_msg w = open_msg(EL_DCEP_RELIABLE, 256, 0, "chat", "");
    uint8_t out[64];
    assert_int_equal(el_dcep_size(&w), sizeof chat_open);
    assert_int_equal(el_dcep_write(&w, out, sizeof out), (int)sizeof chat_open);
    assert_memory_equal(out, chat_open, sizeof chat_open);
}

static void test_roundtrip_types(void **state)
{
    (void)state;
    static const struct {
        el_dcep_channel_type type;
        uint32_t rel;
        bool ordered, reliable;
    } types[] = {
        {EL_DCEP_RELIABLE, 0, true, true},
        {EL_DCEP_RELIABLE_UNORDERED, 0, false, true},
        {EL_DCEP_PARTIAL_RELIABLE_REXMIT, 3, true, false},
        {EL_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED, 0, false, false},
        {EL_DCEP_PARTIAL_RELIABLE_TIMED, 1500, true, false},
        {EL_DCEP_PARTIAL_RELIABLE_TIMED_UNORDERED, 0xffffffffu, false, false},
    };
    static const char *const labels[][2] = {
        {"chat", ""}, {"", ""}, {"file:1234", "echolink-file/1"}, {"\xe2\x82\xac\xe6\xbc\xa2\xf0\x9f\x98\x80", "x"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        assert_true(el_dcep_channel_type_valid(types[i].type));
        assert_int_equal(el_dcep_is_ordered(types[i].type), types[i].ordered);
        assert_int_equal(el_dcep_is_reliable(types[i].type), types[i].reliable);
        for (size_t j = 0; j < sizeof labels / sizeof labels[0]; j++) {
            uint16_t prio = (uint16_t)(128u << (i % 4));
            el_dcep_msg w = open_msg(types[i].type, prio, types[i].rel, labels[j][0], labels[j][1]);
            uint8_t out[128];
            int n = el_dcep_write(&w, out, sizeof out);
            assert_int_equal(n, 12 + strlen(labels[j][0]) + strlen(labels[j][1]));
            assert_int_equal(out[0], 0x03);
            assert_int_equal(out[1], (uint8_t)types[i].type);
            assert_int_equal(out[2] << 8 | out[3], prio);
            el_dcep_msg r;
            char err[256] = "";
            uint8_t *keep;
            assert_int_equal(parse_exact(out, (size_t)n, &r, err, sizeof err, &keep), EL_OK);
            assert_int_equal(r.type, EL_DCEP_MSG_OPEN);
            assert_open_equal(&r.open, &w.open);
            /* and back to the same bytes */
            uint8_t again[128];
            assert_int_equal(el_dcep_write(&r, again, sizeof again), n);
            assert_memory_equal(again, out, (size_t)n);
            free(keep);
        }
    }
    assert_false(el_dcep_channel_type_valid(0x03));
    assert_false(el_dcep_channel_type_valid(0x83));
    assert_false(el_dcep_channel_type_valid(0x40));
}

/* For the reliable types the reliability parameter is ignored on receipt
 * and written as 0. */
static void test_reliability_ignored(void **state)
{
    (void)state;
    uint8_t buf[sizeof chat_open];
    memcpy(buf, chat_open, sizeof buf);
    buf[4] = 0x12, buf[7] = 0x34;
    el_dcep_msg m;
    char err[256];
    assert_int_equal(parse_exact(buf, sizeof buf, &m, err, sizeof err, NULL), EL_OK);
    assert_int_equal(m.open.reliability, 0);
    buf[1] = EL_DCEP_RELIABLE_UNORDERED;
    assert_int_equal(parse_exact(buf, sizeof buf, &m, err, sizeof err, NULL), EL_OK);
    assert_int_equal(m.open.reliability, 0);
    buf[1] = EL_DCEP_PARTIAL_RELIABLE_TIMED;
    assert_int_equal(parse_exact(buf, sizeof buf, &m, err, sizeof err, NULL), EL_OK);
    assert_int_equal(m.open.reliability, 0x12000034u);

    el_dcep_msg w = open_msg(EL_DCEP_RELIABLE, 256, 77, "chat", "");
    uint8_t out[64];
    assert_int_equal(el_dcep_write(&w, out, sizeof out), (int)sizeof chat_open);
    assert_memory_equal(out, chat_open, sizeof chat_open);
}

static void test_ack(void **state)
{
    (void)state;
    const uint8_t ack[] = {0x02};
    el_dcep_msg m;
    char err[256] = "";
    assert_int_equal(parse_exact(ack, 1, &m, err, sizeof err, NULL), EL_OK);
    assert_int_equal(m.type, EL_DCEP_MSG_ACK);
    uint8_t out[4] = {0xff, 0xff, 0xff, 0xff};
    el_dcep_msg w = {.type = EL_DCEP_MSG_ACK};
    assert_int_equal(el_dcep_size(&w), 1);
    assert_int_equal(el_dcep_write(&w, out, sizeof out), 1);
    assert_int_equal(out[0], 0x02);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(el_dcep_write(&w, out, 0), EL_ERR_TOO_LARGE);
    const uint8_t long_ack[] = {0x02, 0x00};
    expect_err(long_ack, 2, "ACK: 2 bytes, expected 1");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_err(chat_open, 0, "empty DCEP message");
    for (size_t n = 1; n < 12; n++)
        expect_err(chat_open, n, "OPEN: truncated header");
    expect_err(chat_open, 5, "OPEN: truncated header (5 of 12 bytes)");
    for (size_t n = 12; n < sizeof chat_open; n++)
        expect_err(chat_open, n, "OPEN: label length 4 exceeds");
    expect_err(chat_open, 14, "OPEN: label length 4 exceeds the 2 bytes left");

    /* every prefix of a frame with a protocol fails */
    el_dcep_msg w = open_msg(EL_DCEP_PARTIAL_RELIABLE_REXMIT, 512, 5, "files", "proto");
    uint8_t out[64];
    int n = el_dcep_write(&w, out, sizeof out);
    assert_int_equal(n, 22);
    for (int k = 0; k < n; k++) {
        el_dcep_msg m;
        char err[256] = "";
        assert_int_equal(parse_exact(out, (size_t)k, &m, err, sizeof err, NULL), EL_ERR_INVALID);
        assert_true(err[0] != '\0');
    }
    expect_err(out, 20, "OPEN: protocol length 5 exceeds the 3 bytes left");
}

static void test_lengths(void **state)
{
    (void)state;
    uint8_t buf[sizeof chat_open + 1];
    memcpy(buf, chat_open, sizeof chat_open);
    buf[9] = 9; /* label length 9, 4 bytes follow */
    expect_err(buf, sizeof chat_open, "OPEN: label length 9 exceeds the 4 bytes left");
    buf[8] = 0xff, buf[9] = 0xff;
    expect_err(buf, sizeof chat_open, "OPEN: label length 65535 exceeds the 4 bytes left");
    buf[8] = 0, buf[9] = 2, buf[11] = 3; /* label 2 + protocol 3 > 4 */
    expect_err(buf, sizeof chat_open, "OPEN: protocol length 3 exceeds the 2 bytes left");
    buf[9] = 4, buf[11] = 0;
    buf[sizeof chat_open] = 'x';
    expect_err(buf, sizeof buf, "OPEN: 1 trailing bytes");
    buf[9] = 1, buf[11] = 1; /* label "c", protocol "h", 2 left */
    expect_err(buf, sizeof chat_open, "OPEN: 2 trailing bytes");

    /* the largest label fits */
    size_t big = 12 + 65535;
    uint8_t *frame = malloc(big);
    char *label = malloc(65536);
    assert_non_null(frame);
    assert_non_null(label);
    memset(label, 'L', 65535);
    label[65535] = '\0';
    el_dcep_msg w = open_msg(EL_DCEP_RELIABLE, 256, 0, label, "");
    assert_int_equal(el_dcep_write(&w, frame, big), (int)big);
    assert_int_equal(el_dcep_write(&w, frame, big - 1), EL_ERR_TOO_LARGE);
    el_dcep_msg r;
    char err[256] = "";
    assert_int_equal(el_dcep_parse(frame, big, &r, err, sizeof err), EL_OK);
    assert_int_equal(r.open.label_len, 65535);
    free(frame);
    free(label);
}

static void test_unknown(void **state)
{
    (void)state;
    const uint8_t t0[] = {0x00};
    const uint8_t t1[] = {0x01, 0x00, 0x00};
    const uint8_t t4[] = {0x04};
    const uint8_t tff[] = {0xff};
    expect_err(t0, 1, "unknown DCEP message type 0x00");
    expect_err(t1, 3, "unknown DCEP message type 0x01");
    expect_err(t4, 1, "unknown DCEP message type 0x04");
    expect_err(tff, 1, "unknown DCEP message type 0xff");
    uint8_t buf[sizeof chat_open];
    memcpy(buf, chat_open, sizeof buf);
    buf[1] = 0x03;
    expect_err(buf, sizeof buf, "OPEN: unknown channel type 0x03");
    buf[1] = 0x80 | 0x7f;
    expect_err(buf, sizeof buf, "OPEN: unknown channel type 0xff");

    el_dcep_msg w = {.type = 0x05};
    uint8_t out[16];
    assert_int_equal(el_dcep_size(&w), 0);
    assert_int_equal(el_dcep_write(&w, out, sizeof out), EL_ERR_INVALID);
    w = open_msg(EL_DCEP_RELIABLE, 0, 0, "x", "");
    w.open.channel_type = (el_dcep_channel_type)0x42;
    assert_int_equal(el_dcep_write(&w, out, sizeof out), EL_ERR_INVALID);
    w = open_msg(EL_DCEP_RELIABLE, 0, 0, "x", "");
    w.open.label = NULL;
    assert_int_equal(el_dcep_write(&w, out, sizeof out), EL_ERR_INVALID);
}

static void test_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xff",             /* not a lead byte */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf4\x90\x80\x80", /* > U+10FFFF */
        "\xe2\x82",         /* truncated */
        "a\x80",            /* stray continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t frame[32] = {0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
        size_t n = strlen(bad[i]);
        frame[9] = (uint8_t)n;
        memcpy(frame + 12, bad[i], n);
        expect_err(frame, 12 + n, "OPEN: label is not UTF-8");
        frame[9] = 0, frame[11] = (uint8_t)n;
        expect_err(frame, 12 + n, "OPEN: protocol is not UTF-8");
        el_dcep_msg w = open_msg(EL_DCEP_RELIABLE, 0, 0, bad[i], "");
        assert_int_equal(el_dcep_write(&w, frame, sizeof frame), EL_ERR_INVALID);
    }
}

static void test_stream_ids(void **state)
{
    (void)state;
    assert_int_equal(el_dcep_first_stream_id(true), 0);
    assert_int_equal(el_dcep_first_stream_id(false), 1);
    assert_true(el_dcep_stream_is_ours(0, true));
    assert_true(el_dcep_stream_is_ours(2, true));
    assert_false(el_dcep_stream_is_ours(1, true));
    assert_true(el_dcep_stream_is_ours(1, false));
    assert_false(el_dcep_stream_is_ours(0, false));
    assert_true(el_dcep_stream_is_ours(65534, true));
    assert_false(el_dcep_stream_is_ours(65535, false)); /* reserved */
    assert_false(el_dcep_stream_is_ours(65535, true));
    assert_true(el_dcep_stream_is_ours(65533, false));
}

static void test_ppids(void **state)
{
    (void)state;
    assert_int_equal(EL_PPID_DCEP, 50);
    assert_int_equal(EL_PPID_STRING, 51);
    assert_int_equal(EL_PPID_BINARY_PARTIAL, 52);
    assert_int_equal(EL_PPID_BINARY, 53);
    assert_int_equal(EL_PPID_STRING_PARTIAL, 54);
    assert_int_equal(EL_PPID_STRING_EMPTY, 56);
    assert_int_equal(EL_PPID_BINARY_EMPTY, 57);
    assert_int_equal(el_dcep_ppid_for(false, 5), 51);
    assert_int_equal(el_dcep_ppid_for(true, 5), 53);
    assert_int_equal(el_dcep_ppid_for(false, 0), 56);
    assert_int_equal(el_dcep_ppid_for(true, 0), 57);
    bool bin = true, empty = true;
    assert_true(el_dcep_ppid_is_data(51, &bin, &empty));
    assert_false(bin);
    assert_false(empty);
    assert_true(el_dcep_ppid_is_data(53, &bin, &empty));
    assert_true(bin);
    assert_false(empty);
    assert_true(el_dcep_ppid_is_data(56, &bin, &empty));
    assert_false(bin);
    assert_true(empty);
    assert_true(el_dcep_ppid_is_data(57, &bin, &empty));
    assert_true(bin);
    assert_true(empty);
    assert_false(el_dcep_ppid_is_data(50, &bin, &empty));
    assert_false(el_dcep_ppid_is_data(52, &bin, &empty));
    assert_false(el_dcep_ppid_is_data(54, &bin, &empty));
    assert_false(el_dcep_ppid_is_data(0, &bin, &empty));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chromium_chat),
        cmocka_unit_test(test_roundtrip_types),
        cmocka_unit_test(test_reliability_ignored),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_stream_ids),
        cmocka_unit_test(test_ppids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
