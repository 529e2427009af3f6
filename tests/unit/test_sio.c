/* test_sio.c - src/proto/sio: Socket.IO v5 framing
 * `<type>[<attachments>-][/nsp,][id][json]`. The codec sees the Socket.IO
 * part only (the Engine.IO '4' is already gone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test.h"

#include "proto/sio.h"

/* Parses from an exact-size heap copy (ASan catches over-reads). */
static int parse_exact(const char *s, size_t n, el_sio_packet *p, char *err, size_t errlen,
                       char **copy)
{
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    memcpy(*copy, s, n);
    return el_sio_parse(*copy, n, p, err, errlen);
}

static const struct {
    const char *in;
    el_sio_type type;
    unsigned attachments;
    const char *nsp;
    int64_t id;
    const char *data; /* "" = no payload */
} valid[] = {
    {"0", EL_SIO_CONNECT, 0, "/", EL_SIO_NO_ID, ""},
    {"0/custom,", EL_SIO_CONNECT, 0, "/custom", EL_SIO_NO_ID, ""},
    {"0/random", EL_SIO_CONNECT, 0, "/random", EL_SIO_NO_ID, ""}, /* no comma: nsp to the end */
    {"0{\"token\":\"abc\"}", EL_SIO_CONNECT, 0, "/", EL_SIO_NO_ID, "{\"token\":\"abc\"}"},
    {"0/admin,{\"token\":\"abc\"}", EL_SIO_CONNECT, 0, "/admin", EL_SIO_NO_ID,
     "{\"token\":\"abc\"}"},
    {"1", EL_SIO_DISCONNECT, 0, "/", EL_SIO_NO_ID, ""},
    {"1/admin,", EL_SIO_DISCONNECT, 0, "/admin", EL_SIO_NO_ID, ""},
    {"2[\"a\"]", EL_SIO_EVENT, 0, "/", EL_SIO_NO_ID, "[\"a\"]"},
    {"2456[\"m\",1]", EL_SIO_EVENT, 0, "/", 456, "[\"m\",1]"},
    {"20[\"zero\"]", EL_SIO_EVENT, 0, "/", 0, "[\"zero\"]"},
    {"2007[1]", EL_SIO_EVENT, 0, "/", 7, "[1]"},
    {"2/chat,[\"a\",{\"b\":1}]", EL_SIO_EVENT, 0, "/chat", EL_SIO_NO_ID, "[\"a\",{\"b\":1}]"},
    {"2/chat,7[\"x\"]", EL_SIO_EVENT, 0, "/chat", 7, "[\"x\"]"},
    {"2999999999999999[1]", EL_SIO_EVENT, 0, "/", 999999999999999LL, "[1]"}, /* 15 digits */
    {"2[", EL_SIO_EVENT, 0, "/", EL_SIO_NO_ID, "["}, /* JSON is the caller's job */
    {"3123[]", EL_SIO_ACK, 0, "/", 123, "[]"},
    {"3/chat,5[\"ok\"]", EL_SIO_ACK, 0, "/chat", 5, "[\"ok\"]"},
    {"52-[\"m\",{\"_placeholder\":true,\"num\":0}]", EL_SIO_BINARY_EVENT, 2, "/", EL_SIO_NO_ID,
     "[\"m\",{\"_placeholder\":true,\"num\":0}]"},
    {"51-/chat,9[\"up\",{\"_placeholder\":true,\"num\":0}]", EL_SIO_BINARY_EVENT, 1, "/chat", 9,
     "[\"up\",{\"_placeholder\":true,\"num\":0}]"},
    {"516-[\"m\"]", EL_SIO_BINARY_EVENT, 16, "/", EL_SIO_NO_ID, "[\"m\"]"},
    {"50-[\"m\"]", EL_SIO_BINARY_EVENT, 0, "/", EL_SIO_NO_ID, "[\"m\"]"},
    {"61-12[{\"_placeholder\":true,\"num\":0}]", EL_SIO_BINARY_ACK, 1, "/", 12,
     "[{\"_placeholder\":true,\"num\":0}]"},
};

static void test_valid_packets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        el_sio_packet p;
        char err[128] = "", *copy;
        memset(&p, 0xee, sizeof p);
        int rc = parse_exact(valid[i].in, strlen(valid[i].in), &p, err, sizeof err, &copy);
        if (rc != 0)
            fail_msg("\"%s\" rejected: %s", valid[i].in, err);
        assert_int_equal(p.type, valid[i].type);
        assert_int_equal(p.attachments, valid[i].attachments);
        EL_ASSERT_SPAN(p.nsp, p.nsp_len, valid[i].nsp);
        assert_true(el_sio_nsp_is(&p, valid[i].nsp));
        if (p.id != valid[i].id)
            fail_msg("\"%s\": id %lld, want %lld", valid[i].in, (long long)p.id,
                     (long long)valid[i].id);
        if (valid[i].data[0]) {
            assert_true(p.data >= copy && p.data + p.data_len == copy + strlen(valid[i].in));
            EL_ASSERT_SPAN(p.data, p.data_len, valid[i].data);
        } else {
            assert_int_equal(p.data_len, 0);
        }
        if (strcmp(valid[i].nsp, "/") != 0)
            assert_true(p.nsp >= copy && p.nsp + p.nsp_len <= copy + strlen(valid[i].in));
        free(copy);
    }
}

static const struct {
    const char *in;
    const char *why; /* a word the error text must contain */
} invalid[] = {
    {"", "empty"},
    {"abc", "type"},     /* "4abc" over Engine.IO */
    {"7", "type"},
    {"9[]", "type"},
    {"/", "type"},
    {"-", "type"},
    {" 2[]", "type"},
    {"2{}", "array"},    /* EVENT data must be an array */
    {"2abc[", "array"},
    {"2", "array"},      /* EVENT without data */
    {"2/chat,", "array"},
    {"2/chat[\"a\"]", "array"}, /* without a comma the namespace runs to the end */
    {"2/a[[1]", "array"},
    {"21", "array"},     /* only an id */
    {"2\"a\"", "array"},
    {"2 [1]", "array"},
    {"1{}", "DISCONNECT"},
    {"1[]", "DISCONNECT"},
    {"1/chat,{}", "DISCONNECT"},
    {"1x", "DISCONNECT"},
    {"3[]", "ACK"},      /* ACK without id */
    {"3/chat,[]", "ACK"},
    {"3", "array"},
    {"312", "array"},
    {"61-[]", "ACK"},
    {"4", "CONNECT_ERROR"}, /* clients never send CONNECT_ERROR */
    {"4{\"message\":\"x\"}", "CONNECT_ERROR"},
    {"4/chat,{\"message\":\"x\"}", "CONNECT_ERROR"},
    {"0[]", "object"},
    {"0\"x\"", "object"},
    {"0/chat,[1]", "object"},
    {"0x", "object"},
    {"5[]", "attachment"},
    {"5-[]", "attachment"},
    {"51[]", "attachment"},
    {"51", "attachment"},
    {"5", "attachment"},
    {"5a-[]", "attachment"},
    {"51000-[]", "attachment"}, /* four digits */
    {"517-[\"m\"]", "attachments"},
    {"5999-[\"m\"]", "attachments"},
    {"6-12[]", "attachment"},
    {"29999999999999999[1]", "id"}, /* 16 digits: at most 15 */
    {"212345678901234567[1]", "id"}, /* 17 digits */
    {"2000000000000000001[1]", "id"}, /* digits, not value, count */
};

static void test_invalid_packets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        el_sio_packet p;
        char err[128] = "", *copy;
        int rc = parse_exact(invalid[i].in, strlen(invalid[i].in), &p, err, sizeof err, &copy);
        free(copy);
        if (rc != -1)
            fail_msg("\"%s\" accepted (rc %d)", invalid[i].in, rc);
        if (!strstr(err, invalid[i].why))
            fail_msg("\"%s\": error \"%s\" does not mention \"%s\"", invalid[i].in, err,
                     invalid[i].why);
    }
    /* err may be NULL, and a tiny err buffer is truncated, not overrun */
    el_sio_packet p;
    assert_int_equal(el_sio_parse("2{}", 3, &p, NULL, 0), -1);
    char *tiny = malloc(4);
    assert_non_null(tiny);
    assert_int_equal(el_sio_parse("2{}", 3, &p, tiny, 4), -1);
    assert_int_equal(strlen(tiny), 3);
    free(tiny);
    /* a NUL or high byte as the type */
    assert_int_equal(el_sio_parse("\0[]", 3, &p, NULL, 0), -1);
    assert_int_equal(el_sio_parse("\xb2[]", 3, &p, NULL, 0), -1);
}

/* Every prefix of a valid packet parses or fails cleanly (no over-read). */
static void test_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        size_t n = strlen(valid[i].in);
        for (size_t k = 0; k <= n; k++) {
            el_sio_packet p;
            char err[64], *copy;
            int rc = parse_exact(valid[i].in, k, &p, err, sizeof err, &copy);
            assert_true(rc == 0 || rc == -1);
            if (rc == 0) {
                assert_true(p.data_len <= k);
                assert_true(p.nsp_len <= k || p.nsp_len == 1);
            }
            free(copy);
        }
    }
}

static void test_nsp_is(void **state)
{
    (void)state;
    el_sio_packet p;
    assert_int_equal(el_sio_parse("2/chat,[1]", 10, &p, NULL, 0), 0);
    assert_true(el_sio_nsp_is(&p, "/chat"));
    assert_false(el_sio_nsp_is(&p, "/"));
    assert_false(el_sio_nsp_is(&p, "/cha"));
    assert_false(el_sio_nsp_is(&p, "/chats"));
    assert_false(el_sio_nsp_is(&p, "/CHAT"));
    assert_int_equal(el_sio_parse("2[1]", 4, &p, NULL, 0), 0);
    assert_true(el_sio_nsp_is(&p, "/"));
    assert_false(el_sio_nsp_is(&p, ""));
    assert_false(el_sio_nsp_is(&p, "/chat"));
}

static void test_header(void **state)
{
    (void)state;
    static const struct {
        el_sio_type type;
        const char *nsp;
        int64_t id;
        const char *want;
    } h[] = {
        {EL_SIO_EVENT, NULL, EL_SIO_NO_ID, "2"},
        {EL_SIO_EVENT, "/", EL_SIO_NO_ID, "2"},
        {EL_SIO_EVENT, "/", 0, "20"},
        {EL_SIO_ACK, NULL, 12, "312"},
        {EL_SIO_ACK, "/chat", 12, "3/chat,12"},
        {EL_SIO_CONNECT, "/admin", EL_SIO_NO_ID, "0/admin,"},
        {EL_SIO_CONNECT_ERROR, NULL, EL_SIO_NO_ID, "4"},
        {EL_SIO_DISCONNECT, "/x", EL_SIO_NO_ID, "1/x,"},
        {EL_SIO_EVENT, NULL, 999999999999999LL, "2999999999999999"},
    };
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        char out[64];
        int n = el_sio_header(out, sizeof out, h[i].type, h[i].nsp, h[i].id);
        assert_int_equal(n, (int)strlen(h[i].want));
        assert_string_equal(out, h[i].want);
        /* exact buffer fits, one byte less does not */
        char *exact = malloc((size_t)n + 1);
        assert_non_null(exact);
        assert_int_equal(el_sio_header(exact, (size_t)n + 1, h[i].type, h[i].nsp, h[i].id), n);
        assert_string_equal(exact, h[i].want);
        assert_int_equal(el_sio_header(exact, (size_t)n, h[i].type, h[i].nsp, h[i].id), -1);
        free(exact);
    }
}

/* header + payload parses back to the same fields */
static void test_header_roundtrip(void **state)
{
    (void)state;
    static const char *const nsps[] = {NULL, "/", "/chat", "/a/b"};
    static const int64_t ids[] = {EL_SIO_NO_ID, 0, 1, 42, 123456789012345LL};
    static const el_sio_type types[] = {EL_SIO_EVENT, EL_SIO_ACK};
    for (size_t t = 0; t < 2; t++)
        for (size_t a = 0; a < 4; a++)
            for (size_t b = 0; b < 5; b++) {
                if (types[t] == EL_SIO_ACK && ids[b] < 0)
                    continue;
                char buf[96];
                int n = el_sio_header(buf, sizeof buf, types[t], nsps[a], ids[b]);
                assert_true(n > 0);
                strcat(buf, "[\"e\",1]");
                el_sio_packet p;
                char err[64] = "";
                if (el_sio_parse(buf, strlen(buf), &p, err, sizeof err) != 0)
                    fail_msg("\"%s\" rejected: %s", buf, err);
                assert_int_equal(p.type, types[t]);
                assert_true(el_sio_nsp_is(&p, nsps[a] ? nsps[a] : "/"));
                assert_int_equal(p.id, ids[b]);
                EL_ASSERT_SPAN(p.data, p.data_len, "[\"e\",1]");
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_packets),
        cmocka_unit_test(test_invalid_packets),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_nsp_is),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_header_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
