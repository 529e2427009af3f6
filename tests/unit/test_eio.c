/* test_eio.c - src/proto/eio: Engine.IO v4 packets, polling payloads
 * (records separated by 0x1e, "b" + base64 binary records) and the open
 * packet's JSON (checked by parsing it with jansson). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "test.h"

#include "base/enc.h"
#include "proto/eio.h"

/* Parses from an exact-size heap copy so ASan catches over-reads. */
static int parse_exact(const char *s, size_t n, el_eio_packet *p, char **copy)
{
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    memcpy(*copy, s, n);
    return el_eio_parse(*copy, n, p);
}

static void test_parse_types(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        el_eio_type type;
        const char *data;
    } ok[] = {
        {"0{\"sid\":\"x\"}", EL_EIO_OPEN, "{\"sid\":\"x\"}"},
        {"1", EL_EIO_CLOSE, ""},
        {"2", EL_EIO_PING, ""},
        {"2probe", EL_EIO_PING, "probe"},
        {"3probe", EL_EIO_PONG, "probe"},
        {"4hello", EL_EIO_MESSAGE, "hello"},
        {"4", EL_EIO_MESSAGE, ""},
        {"42[\"a\"]", EL_EIO_MESSAGE, "2[\"a\"]"},
        {"5", EL_EIO_UPGRADE, ""},
        {"6", EL_EIO_NOOP, ""},
        {"4\x1e", EL_EIO_MESSAGE, "\x1e"}, /* one packet: no record splitting here */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        el_eio_packet p;
        char *copy;
        memset(&p, 0xff, sizeof p);
        assert_int_equal(parse_exact(ok[i].in, strlen(ok[i].in), &p, &copy), 0);
        assert_int_equal(p.type, ok[i].type);
        assert_int_equal(p.binary, 0);
        assert_ptr_equal(p.data, copy + 1);
        EL_ASSERT_SPAN(p.data, p.len, ok[i].data);
        free(copy);
    }
}

static void test_parse_binary_record(void **state)
{
    (void)state;
    el_eio_packet p;
    char *copy;
    assert_int_equal(parse_exact("bAQID", 5, &p, &copy), 0);
    assert_int_equal(p.type, EL_EIO_MESSAGE);
    assert_int_equal(p.binary, 1);
    EL_ASSERT_SPAN(p.data, p.len, "AQID");
    uint8_t bytes[8];
    assert_int_equal(el_b64_decode(p.data, p.len, bytes, sizeof bytes), 3);
    assert_int_equal(bytes[0], 1);
    assert_int_equal(bytes[1], 2);
    assert_int_equal(bytes[2], 3);
    free(copy);

    /* "b" alone: an empty binary message */
    assert_int_equal(parse_exact("b", 1, &p, &copy), 0);
    assert_int_equal(p.binary, 1);
    assert_int_equal(p.len, 0);
    free(copy);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {"7", "9", "x", "/", " 4", "B", "\x1e", "-1", "a4"};
    el_eio_packet p;
    char *copy;
    assert_int_equal(el_eio_parse("", 0, &p), -1);
    assert_int_equal(el_eio_parse("4", 0, &p), -1); /* len wins over contents */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = parse_exact(bad[i], strlen(bad[i]), &p, &copy);
        free(copy);
        if (r != -1)
            fail_msg("el_eio_parse accepted \"%s\"", bad[i]);
    }
    assert_int_equal(parse_exact("\0" "4", 2, &p, &copy), -1);
    free(copy);
    assert_int_equal(parse_exact("\xb4", 1, &p, &copy), -1);
    free(copy);
}

/* ---- polling payloads ---------------------------------------------------- */

typedef struct {
    int rc;             /* what payload_next returned */
    el_eio_type type;
    int binary;
    const char *data;
} step;

/* Runs the iterator over body (exact heap copy) and compares each call with
 * the expected steps; after the last step, the iterator must keep returning
 * 0 or stop. A NULL data means "don't care" (for rc != 1). */
static void run_payload(const char *body, size_t len, const step *want, size_t nwant)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, body, len);
    size_t pos = 0, prev = 0;
    for (size_t i = 0; i < nwant; i++) {
        el_eio_packet p;
        memset(&p, 0, sizeof p);
        int rc = el_eio_payload_next(copy, len, &pos, &p);
        if (rc != want[i].rc)
            fail_msg("body \"%.*s\" step %zu: rc %d, want %d", (int)len, body, i, rc, want[i].rc);
        if (i > 0 && rc != 0)
            assert_true(pos > prev); /* progress on every non-final call */
        prev = pos;
        if (rc == 1) {
            assert_int_equal(p.type, want[i].type);
            assert_int_equal(p.binary, want[i].binary);
            assert_true(p.data >= copy && p.data + p.len <= copy + len);
            EL_ASSERT_SPAN(p.data, p.len, want[i].data);
        }
        if (rc == -1)
            break;
    }
    free(copy);
}

static void test_payload_single_and_multi(void **state)
{
    (void)state;
    {
        const step w[] = {{1, EL_EIO_MESSAGE, 0, "hello"}, {0, 0, 0, NULL}, {0, 0, 0, NULL}};
        run_payload("4hello", 6, w, 3);
    }
    {
        static const char body[] = "4hello\x1e" "2\x1e" "40/chat,\x1e" "6";
        const step w[] = {{1, EL_EIO_MESSAGE, 0, "hello"},
                          {1, EL_EIO_PING, 0, ""},
                          {1, EL_EIO_MESSAGE, 0, "0/chat,"},
                          {1, EL_EIO_NOOP, 0, ""},
                          {0, 0, 0, NULL},
                          {0, 0, 0, NULL}};
        run_payload(body, sizeof body - 1, w, 6);
    }
    {
        /* text and binary records mixed, as socket.io-client sends them */
        static const char body[] = "451-[\"up\",{\"_placeholder\":true,\"num\":0}]\x1e" "bAQIDBA==";
        const step w[] = {{1, EL_EIO_MESSAGE, 0, "51-[\"up\",{\"_placeholder\":true,\"num\":0}]"},
                          {1, EL_EIO_MESSAGE, 1, "AQIDBA=="},
                          {0, 0, 0, NULL}};
        run_payload(body, sizeof body - 1, w, 3);
    }
    {
        /* record data may contain anything but the separator, even NUL */
        static const char body[] = "4a\0b\x1e" "4\xff";
        char one[] = "a\0b";
        el_eio_packet p;
        size_t pos = 0;
        assert_int_equal(el_eio_payload_next(body, sizeof body - 1, &pos, &p), 1);
        assert_int_equal(p.len, 3);
        assert_memory_equal(p.data, one, 3);
        assert_int_equal(el_eio_payload_next(body, sizeof body - 1, &pos, &p), 1);
        assert_int_equal(p.len, 1);
        assert_int_equal((unsigned char)p.data[0], 0xff);
        assert_int_equal(el_eio_payload_next(body, sizeof body - 1, &pos, &p), 0);
    }
}

static void test_payload_malformed(void **state)
{
    (void)state;
    {
        /* empty body: an error once, then the end */
        const step w[] = {{-1, 0, 0, NULL}};
        run_payload("", 0, w, 1);
        size_t pos = 0;
        el_eio_packet p;
        assert_int_equal(el_eio_payload_next("", 0, &pos, &p), -1);
        assert_int_equal(el_eio_payload_next("", 0, &pos, &p), 0);
    }
    {
        const step w[] = {{-1, 0, 0, NULL}};
        run_payload("\x1e", 1, w, 1); /* two empty records */
    }
    {
        const step w[] = {{-1, 0, 0, NULL}};
        run_payload("\x1e" "4a", 3, w, 1); /* leading empty record */
    }
    {
        const step w[] = {{-1, 0, 0, NULL}};
        run_payload("4a\x1e", 3, w, 1); /* trailing separator */
    }
    {
        const step w[] = {{1, EL_EIO_MESSAGE, 0, "a"}, {-1, 0, 0, NULL}};
        run_payload("4a\x1e\x1e" "4b", 6, w, 2); /* empty record in the middle */
    }
    {
        const step w[] = {{1, EL_EIO_MESSAGE, 0, "a"}, {-1, 0, 0, NULL}};
        run_payload("4a\x1e" "9", 4, w, 2); /* unknown type in a later record */
    }
    {
        const step w[] = {{-1, 0, 0, NULL}};
        run_payload("hello", 5, w, 1);
    }
}

/* The iterator never loops forever and never reads out of bounds, whatever
 * the body: every call either ends (0/-1) or advances pos. */
static void test_payload_iterator_terminates(void **state)
{
    (void)state;
    static const char alphabet[] = {'4', '\x1e', 'b', 'x', '2'};
    char body[6];
    for (size_t len = 0; len <= 5; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= sizeof alphabet;
        for (size_t k = 0; k < total; k++) {
            size_t v = k;
            for (size_t i = 0; i < len; i++) {
                body[i] = alphabet[v % sizeof alphabet];
                v /= sizeof alphabet;
            }
            char *copy = malloc(len ? len : 1);
            assert_non_null(copy);
            memcpy(copy, body, len);
            size_t pos = 0;
            int calls = 0, rc, packets = 0;
            el_eio_packet p;
            size_t joined = 0; /* total record bytes + separators */
            while ((rc = el_eio_payload_next(copy, len, &pos, &p)) == 1) {
                assert_true(p.data >= copy + 1 && p.data + p.len <= copy + len);
                joined += p.len + 1 + (packets ? 1 : 0);
                packets++;
                assert_true(++calls <= (int)len + 1);
            }
            /* A fully accepted body is exactly its records joined by 0x1e. */
            if (rc == 0)
                assert_int_equal(joined, len);
            free(copy);
        }
    }
}

/* ---- open packet ---------------------------------------------------------- */

static void test_open_json(void **state)
{
    (void)state;
    char out[256];
    int n = el_eio_open_json(out, sizeof out, "AbC-123_x", 1, 25000, 20000, 1000000);
    const char *want = "{\"sid\":\"AbC-123_x\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
                       "\"pingTimeout\":20000,\"maxPayload\":1000000}";
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(out, want);

    json_error_t jerr;
    json_t *doc = json_loadb(out, (size_t)n, 0, &jerr);
    if (!doc)
        fail_msg("open JSON does not parse: %s", jerr.text);
    assert_string_equal(json_string_value(json_object_get(doc, "sid")), "AbC-123_x");
    json_t *up = json_object_get(doc, "upgrades");
    assert_true(json_is_array(up));
    assert_int_equal(json_array_size(up), 1);
    assert_string_equal(json_string_value(json_array_get(up, 0)), "websocket");
    assert_int_equal(json_integer_value(json_object_get(doc, "pingInterval")), 25000);
    assert_int_equal(json_integer_value(json_object_get(doc, "pingTimeout")), 20000);
    assert_int_equal(json_integer_value(json_object_get(doc, "maxPayload")), 1000000);
    assert_int_equal(json_object_size(doc), 5);
    json_decref(doc);

    /* no upgrade (already on WebSocket): an empty list, large values */
    n = el_eio_open_json(out, sizeof out, "s", 0, 300, 200, 4294967295ul);
    assert_true(n > 0);
    doc = json_loadb(out, (size_t)n, 0, &jerr);
    assert_non_null(doc);
    up = json_object_get(doc, "upgrades");
    assert_true(json_is_array(up));
    assert_int_equal(json_array_size(up), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "pingInterval")), 300);
    assert_int_equal(json_integer_value(json_object_get(doc, "maxPayload")), 4294967295ll);
    json_decref(doc);
}

static void test_open_json_buffer_size(void **state)
{
    (void)state;
    char big[256];
    int n = el_eio_open_json(big, sizeof big, "sid1", 1, 1, 2, 3);
    assert_true(n > 0);
    char *exact = malloc((size_t)n + 1);
    assert_non_null(exact);
    assert_int_equal(el_eio_open_json(exact, (size_t)n + 1, "sid1", 1, 1, 2, 3), n);
    assert_string_equal(exact, big);
    assert_int_equal(el_eio_open_json(exact, (size_t)n, "sid1", 1, 1, 2, 3), -1);
    assert_int_equal(el_eio_open_json(exact, 1, "sid1", 1, 1, 2, 3), -1);
    free(exact);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_types),
        cmocka_unit_test(test_parse_binary_record),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_payload_single_and_multi),
        cmocka_unit_test(test_payload_malformed),
        cmocka_unit_test(test_payload_iterator_terminates),
        cmocka_unit_test(test_open_json),
        cmocka_unit_test(test_open_json_buffer_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
