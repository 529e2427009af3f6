/* test_json.c - src/proto/json: the strict RFC 8259 validator (grammar,
 * numbers, literals, escapes, control characters, UTF-8 per RFC 3629,
 * nesting depth, trailing garbage) and the jsmn navigation helpers.
 *
 * The validity tables are cross-checked against jansson, an independent
 * parser, so a wrong table entry fails too. */
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

#include "proto/json.h"

typedef struct {
    const char *s;
    size_t len;
} lit;
#define L(x) {x, sizeof(x) - 1}

/* Validates an exact-size heap copy (ASan catches over-reads). */
static int validate_exact(const char *s, size_t n, int max_depth, char *err, size_t errlen)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    int rc = el_json_validate(copy, n, max_depth, err, errlen);
    free(copy);
    return rc;
}

static int jansson_accepts(const char *s, size_t n)
{
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    json_decref(v);
    return v != NULL;
}

/* ---- validator: accepted ------------------------------------------------- */

static const lit valid_docs[] = {
    /* numbers */
    L("0"), L("-0"), L("1"), L("-1"), L("123"), L("1.5"), L("-1.5e10"), L("1e5"), L("1E+5"),
    L("1e-5"), L("0.0"), L("0e0"), L("1.0E-0"), L("-0.000001"), L("9007199254740993"),
    L("1e308"),
    /* literals */
    L("true"), L("false"), L("null"),
    /* strings and escapes */
    L("\"\""), L("\"abc\""), L("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""),
    L("\"\\u0041\\u00e9\\uD83D\\uDE00\\uffff\\uFFFF\""), L("\"\\u0000\""),
    L("\"'single' quotes\""), L("\"\x7f\""),
    /* UTF-8 at every length and at the edges of the valid ranges */
    L("\"\xc2\x80\""),         /* U+0080 */
    L("\"\xc3\xa9\""),         /* é */
    L("\"\xdf\xbf\""),         /* U+07FF */
    L("\"\xe0\xa0\x80\""),     /* U+0800 */
    L("\"\xe2\x82\xac\""),     /* € */
    L("\"\xed\x9f\xbf\""),     /* U+D7FF, just below the surrogates */
    L("\"\xee\x80\x80\""),     /* U+E000, just above */
    L("\"\xef\xbf\xbf\""),     /* U+FFFF */
    L("\"\xf0\x90\x80\x80\""), /* U+10000 */
    L("\"\xf0\x9f\x98\x80\""), /* 😀 */
    L("\"\xf4\x8f\xbf\xbf\""), /* U+10FFFF */
    /* containers and whitespace */
    L("[]"), L("{}"), L("[ ]"), L("{ }"), L(" \t\r\n[1, 2 ,3]\n"), L("[[],[[]],{}]"),
    L("{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}"), L("{\"\":0}"),
    L("{\"a\":1,\"a\":2}"), L("{ \"a\" : [ 1 , { } ] }"), L("[\"\xc3\xa9\",{\"\xe2\x82\xac\":1}]"),
    L("  \"x\"  "), L("[-0,0.5,1e1,-1E-1]"),
};

static void test_validate_accepts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_docs / sizeof valid_docs[0]; i++) {
        char err[128] = "";
        int rc = validate_exact(valid_docs[i].s, valid_docs[i].len, 16, err, sizeof err);
        if (rc != 0)
            fail_msg("valid #%zu \"%.*s\" rejected: %s", i, (int)valid_docs[i].len,
                     valid_docs[i].s, err);
        if (!jansson_accepts(valid_docs[i].s, valid_docs[i].len))
            fail_msg("table error: jansson rejects valid #%zu", i);
    }
}

/* Lone surrogate escapes are grammatical JSON (RFC 8259 §8.2 allows them and
 * JSON.parse accepts them); jansson refuses them. */
static void test_validate_lone_surrogate_escapes(void **state)
{
    (void)state;
    static const lit docs[] = {L("\"\\uD800\""), L("\"\\uDC00\""), L("\"\\uDBFF x\""),
                               L("\"\\uDE00\\uD83D\"")};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        assert_int_equal(validate_exact(docs[i].s, docs[i].len, 4, NULL, 0), 0);
        assert_false(jansson_accepts(docs[i].s, docs[i].len));
    }
}

/* ---- validator: rejected ------------------------------------------------- */

static const struct {
    lit doc;
    const char *why; /* substring of the error, or NULL for any */
} invalid_docs[] = {
    /* empty */
    {L(""), "end"}, {L(" "), "end"}, {L("\n\t"), "end"},
    /* numbers */
    {L("01"), "trailing"}, {L("-01"), "trailing"}, {L("00"), "trailing"}, {L("1."), "number"},
    {L("-"), "number"}, {L("1e"), "number"}, {L("1e+"), "number"}, {L("1E-"), "number"},
    {L(".5"), NULL}, {L("+1"), NULL}, {L("0x10"), "trailing"}, {L("1.e5"), "number"},
    {L("- 1"), "number"}, {L("-a"), "number"}, {L("Infinity"), NULL}, {L("-Infinity"), "number"},
    {L("NaN"), NULL}, {L("1_000"), "trailing"}, {L("1.5.5"), "trailing"}, {L("[1.]"), "number"},
    {L("[-]"), "number"}, {L("{\"a\":01}"), NULL},
    /* literals */
    {L("tru"), NULL}, {L("True"), NULL}, {L("nul"), NULL}, {L("nulll"), "trailing"},
    {L("falsey"), "trailing"}, {L("t"), NULL}, {L("[nul]"), NULL}, {L("undefined"), NULL},
    /* strings */
    {L("\"abc"), "unterminated"}, {L("\""), "unterminated"}, {L("\"\\\""), "unterminated"},
    {L("\"\\"), "unterminated"}, {L("\"\\x\""), "escape"}, {L("\"\\'\""), "escape"},
    {L("\"\\a\""), "escape"}, {L("\"\\0\""), "escape"}, {L("\"\\U0041\""), "escape"},
    {L("\"\\u12\""), "\\u"}, {L("\"\\u12G4\""), "\\u"}, {L("\"\\u\""), "\\u"},
    {L("\"\\u004\""), "\\u"}, {L("\"\\u"), "\\u"}, {L("\"\\u 041\""), "\\u"},
    {L("\"a\tb\""), "control"}, {L("\"\n\""), "control"}, {L("\"\x01\""), "control"},
    {L("\"\x1f\""), "control"}, {L("\"a\0b\""), "control"}, {L("'a'"), NULL},
    /* UTF-8 */
    {L("\"\xc0\x80\""), "UTF-8"},         /* overlong NUL */
    {L("\"\xc1\xbf\""), "UTF-8"},         /* overlong U+007F */
    {L("\"\xe0\x80\x80\""), "UTF-8"},     /* overlong 3-byte */
    {L("\"\xe0\x9f\xbf\""), "UTF-8"},     /* overlong U+07FF */
    {L("\"\xf0\x80\x80\x80\""), "UTF-8"}, /* overlong 4-byte */
    {L("\"\xf0\x8f\xbf\xbf\""), "UTF-8"}, /* overlong U+FFFF */
    {L("\"\xed\xa0\x80\""), "UTF-8"},     /* U+D800 encoded */
    {L("\"\xed\xbf\xbf\""), "UTF-8"},     /* U+DFFF encoded */
    {L("\"\xed\xa0\xbd\xed\xb8\x80\""), "UTF-8"}, /* CESU-8 surrogate pair */
    {L("\"\xf4\x90\x80\x80\""), "UTF-8"}, /* U+110000 */
    {L("\"\xf5\x80\x80\x80\""), "UTF-8"},
    {L("\"\xf7\xbf\xbf\xbf\""), "UTF-8"},
    {L("\"\xf8\x88\x80\x80\x80\""), "UTF-8"}, /* 5-byte form */
    {L("\"\xfe\""), "UTF-8"}, {L("\"\xff\""), "UTF-8"},
    {L("\"\x80\""), "UTF-8"}, {L("\"\xbf\""), "UTF-8"}, /* lone continuation bytes */
    {L("\"\xe2\x82\""), "UTF-8"},         /* truncated before the quote */
    {L("\"\xc3\""), "UTF-8"},
    {L("\"\xf0\x9f\x98\""), "UTF-8"},
    {L("\"\xc3\x28\""), "UTF-8"},         /* bad continuation */
    {L("\"\xe2\x28\xa1\""), "UTF-8"},
    {L("\"\xf0\x9f\x28\x80\""), "UTF-8"},
    {L("\"\xe2"), "UTF-8"},               /* truncated at the end of input */
    {L("\"\xf0\x9f\x98"), "UTF-8"},
    {L("\xc3\xa9"), NULL},                /* bare UTF-8 outside a string */
    {L("{\"\xc0\xae\":1}"), "UTF-8"},     /* in a key */
    /* structure */
    {L("["), "end"}, {L("]"), NULL}, {L("{"), NULL}, {L("}"), NULL}, {L("[1"), "end"},
    {L("{\"a\":1"), "end"}, {L("[1,]"), NULL}, {L("[,1]"), NULL}, {L("[1 2]"), "','"},
    {L("[1,,2]"), NULL}, {L("{\"a\"}"), "':'"}, {L("{\"a\":}"), NULL}, {L("{\"a\":1,}"), "key"},
    {L("{a:1}"), "key"}, {L("{1:1}"), "key"}, {L("{,}"), "key"}, {L("[}"), NULL},
    {L("{]"), "key"}, {L("{\"a\":1]"), NULL}, {L("[1]]"), "trailing"}, {L("[1] [2]"), "trailing"},
    {L("1 2"), "trailing"}, {L("{}x"), "trailing"}, {L("[]\0"), "trailing"},
    {L("\"a\"\"b\""), "trailing"}, {L("[\"a\":1]"), NULL}, {L("{\"a\",1}"), "':'"},
    {L("{\"a\"::1}"), NULL}, {L("{\"a\" 1}"), "':'"}, {L("[\0]"), NULL},
    /* only JSON's four whitespace characters */
    {L("\f1"), NULL}, {L("[1\v]"), NULL}, {L("\xc2\xa0" "1"), NULL}, {L("1\0"), "trailing"},
    {L("\xef\xbb\xbf" "1"), NULL}, /* a BOM is not JSON text */
};

static void test_validate_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid_docs / sizeof invalid_docs[0]; i++) {
        const lit *d = &invalid_docs[i].doc;
        char err[128] = "";
        int rc = validate_exact(d->s, d->len, 16, err, sizeof err);
        if (rc != -1)
            fail_msg("invalid #%zu \"%.*s\" accepted", i, (int)d->len, d->s);
        if (!err[0])
            fail_msg("invalid #%zu: no reason given", i);
        if (invalid_docs[i].why && !strstr(err, invalid_docs[i].why))
            fail_msg("invalid #%zu \"%.*s\": error \"%s\" does not mention \"%s\"", i,
                     (int)d->len, d->s, err, invalid_docs[i].why);
        /* jansson stops at a NUL after a top-level number ("1\0" loads as
         * 1), so documents with a NUL byte are not cross-checked */
        if (!memchr(d->s, '\0', d->len) && jansson_accepts(d->s, d->len))
            fail_msg("table error: jansson accepts invalid #%zu", i);
        /* NULL err is allowed */
        assert_int_equal(validate_exact(d->s, d->len, 16, NULL, 0), -1);
    }
}

/* Every byte prefix of every valid document that is not itself valid is
 * rejected without reading past the end (exact-size copies under ASan). */
static void test_validate_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_docs / sizeof valid_docs[0]; i++) {
        for (size_t k = 0; k < valid_docs[i].len; k++) {
            int rc = validate_exact(valid_docs[i].s, k, 16, NULL, 0);
            int want = jansson_accepts(valid_docs[i].s, k) ? 0 : -1;
            if (rc != want)
                fail_msg("prefix %zu of valid #%zu \"%.*s\": rc %d, jansson says %d", k, i,
                         (int)k, valid_docs[i].s, rc, want);
        }
    }
}

/* Every byte value at every position inside a string: accepted iff
 * jansson (which also enforces RFC 3629) accepts it. */
static void test_validate_bytes_in_strings(void **state)
{
    (void)state;
    char doc[8];
    for (int a = 0; a < 256; a++) {
        for (int b = 0; b < 256; b++) {
            size_t n = 0;
            doc[n++] = '"';
            doc[n++] = (char)a;
            doc[n++] = (char)b;
            doc[n++] = '"';
            int rc = validate_exact(doc, n, 4, NULL, 0);
            int want = jansson_accepts(doc, n) ? 0 : -1;
            if (rc != want)
                fail_msg("\"\\x%02x\\x%02x\": rc %d, jansson says %d", a, b, rc, want);
        }
    }
    /* all three-byte sequences starting with E0..EF followed by every
     * second byte and a fixed valid/invalid third byte */
    for (int a = 0xe0; a <= 0xf4; a++) {
        for (int b = 0x70; b < 0xd0; b++) {
            for (int c = 0x70; c < 0xd0; c += 0x0f) {
                size_t n = 0;
                doc[n++] = '"';
                doc[n++] = (char)a;
                doc[n++] = (char)b;
                doc[n++] = (char)c;
                if (a >= 0xf0)
                    doc[n++] = (char)0x80;
                doc[n++] = '"';
                int rc = validate_exact(doc, n, 4, NULL, 0);
                int want = jansson_accepts(doc, n) ? 0 : -1;
                if (rc != want)
                    fail_msg("%02x %02x %02x: rc %d, jansson says %d", a, b, c, rc, want);
            }
        }
    }
}

/* Strings are scanned 8 bytes at a time while they hold plain ASCII: every
 * byte value, alone or as the start of a two-byte escape or sequence, at
 * every offset of a 24-byte string (so at every lane of the 8-byte words,
 * and in the bytewise tail), judged as jansson judges it. */
static void test_validate_bytes_at_every_offset(void **state)
{
    (void)state;
    char doc[32];
    for (int off = 0; off < 24; off++) {
        for (int a = 0; a < 256; a++) {
            for (int second = 0; second < 3; second++) {
                static const char follow[3] = {'x', 'n', (char)0xa9};
                doc[0] = '"';
                memset(doc + 1, 'a', 24);
                doc[1 + off] = (char)a;
                if (off + 1 < 24)
                    doc[2 + off] = follow[second];
                doc[25] = '"';
                int rc = validate_exact(doc, 26, 4, NULL, 0);
                int want = jansson_accepts(doc, 26) ? 0 : -1;
                if (rc != want)
                    fail_msg("byte 0x%02x then 0x%02x at offset %d: rc %d, jansson says %d", a,
                             (unsigned char)follow[second], off, rc, want);
            }
        }
    }
}

/* ---- nesting ------------------------------------------------------------ */

static char *nested(size_t depth, const char *open, const char *inner, const char *close)
{
    size_t lo = strlen(open), li = strlen(inner), lc = strlen(close);
    char *s = malloc(depth * (lo + lc) + li + 1);
    assert_non_null(s);
    char *p = s;
    for (size_t i = 0; i < depth; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, inner, li);
    p += li;
    for (size_t i = 0; i < depth; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

static void test_depth(void **state)
{
    (void)state;
    char err[128] = "";
    assert_int_equal(el_json_validate("[[[]]]", 6, 3, err, sizeof err), 0);
    assert_int_equal(el_json_validate("[[[]]]", 6, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "nested deeper than 2"));
    assert_int_equal(el_json_validate("{\"a\":{\"b\":{}}}", 14, 3, NULL, 0), 0);
    assert_int_equal(el_json_validate("{\"a\":{\"b\":{}}}", 14, 2, NULL, 0), -1);
    assert_int_equal(el_json_validate("[{\"a\":[1]}]", 11, 3, NULL, 0), 0);
    assert_int_equal(el_json_validate("[{\"a\":[1]}]", 11, 2, NULL, 0), -1);
    /* siblings do not add depth */
    assert_int_equal(el_json_validate("[[1],[2],{\"a\":[3]}]", 19, 3, NULL, 0), 0);
    assert_int_equal(el_json_validate("[[],[],[],[]]", 13, 2, NULL, 0), 0);
    /* depth 0 admits scalars only */
    assert_int_equal(el_json_validate("1", 1, 0, NULL, 0), 0);
    assert_int_equal(el_json_validate("\"[\"", 3, 0, NULL, 0), 0);
    assert_int_equal(el_json_validate("[]", 2, 0, NULL, 0), -1);
    assert_int_equal(el_json_validate("{}", 2, 0, NULL, 0), -1);

    for (size_t d = 30; d <= 34; d++) {
        char *a = nested(d, "[", "1", "]");
        char *o = nested(d, "{\"k\":", "null", "}");
        int want = d <= 32 ? 0 : -1;
        assert_int_equal(el_json_validate(a, strlen(a), 32, NULL, 0), want);
        assert_int_equal(el_json_validate(o, strlen(o), 32, NULL, 0), want);
        free(a);
        free(o);
    }
}

/* The validator keeps its container stack in a fixed 128-entry array: deeper
 * documents are refused whatever max_depth says, and hostile nesting cannot
 * exhaust the C stack (the validator is iterative). */
static void test_depth_hard_limit(void **state)
{
    (void)state;
    char *a = nested(128, "[", "", "]");
    assert_int_equal(el_json_validate(a, strlen(a), 128, NULL, 0), 0);
    assert_int_equal(el_json_validate(a, strlen(a), 1000, NULL, 0), 0);
    free(a);
    a = nested(129, "[", "", "]");
    assert_int_equal(el_json_validate(a, strlen(a), 128, NULL, 0), -1);
    assert_int_equal(el_json_validate(a, strlen(a), 1000, NULL, 0), -1);
    free(a);
    a = nested(200000, "[", "", "]");
    assert_int_equal(el_json_validate(a, strlen(a), 1000, NULL, 0), -1);
    free(a);
    a = nested(200000, "{\"a\":", "1", "}");
    assert_int_equal(el_json_validate(a, strlen(a), 1000, NULL, 0), -1);
    free(a);
}

/* ---- scan and navigation ----------------------------------------------- */

/* Independent subtree size from jsmn's size fields: a value token plus its
 * children, recursively (an object's children are its keys, each of size 1
 * with its value after it). */
static int subtree(const el_json *j, int i)
{
    int k = i + 1;
    for (int c = 0; c < j->tok[i].size; c++)
        k += subtree(j, k);
    return k - i;
}

/* Checks el_json_next for the value at i and everything inside it: a value's
 * next is past its subtree; an object key's next is its value. */
static void check_next(const el_json *j, int i)
{
    int want = i + subtree(j, i);
    if (el_json_next(j, i) != want)
        fail_msg("el_json_next(%d) = %d, want %d", i, el_json_next(j, i), want);
    int k = i + 1;
    for (int c = 0; c < j->tok[i].size; c++) {
        if (j->tok[i].type == JSMN_OBJECT) {
            assert_int_equal(el_json_next(j, k), k + 1);
            check_next(j, k + 1);
        } else {
            check_next(j, k);
        }
        k += subtree(j, k);
    }
}

static const char nav_doc[] =
    " {\"type\":\"offer\",\"to\":\"abc\","
    "\"data\":{\"sdp\":\"v=0\",\"list\":[1,[2,3],{\"x\":null},\"\"],\"to\":\"inner\"},"
    "\"n\":-1.5e3,\"esc\":\"a\\\"b\",\"t\\u0079pe\":\"escaped\",\"t\":true,\"e\":{},\"z\":[]} ";

static void scan_nav(el_json *j, jsmntok_t *tok, int maxtok)
{
    char err[128] = "";
    int rc = el_json_scan(j, nav_doc, sizeof nav_doc - 1, tok, maxtok, 8, err, sizeof err);
    if (rc != 0)
        fail_msg("scan failed (%d): %s", rc, err);
}

static void test_scan_and_next(void **state)
{
    (void)state;
    jsmntok_t tok[64];
    el_json j;
    scan_nav(&j, tok, 64);
    assert_ptr_equal(j.js, nav_doc);
    assert_int_equal(j.len, sizeof nav_doc - 1);
    assert_ptr_equal(j.tok, tok);
    assert_int_equal(j.tok[0].type, JSMN_OBJECT);
    assert_int_equal(j.tok[0].size, 9);
    assert_int_equal(subtree(&j, 0), j.n);
    check_next(&j, 0);
    assert_int_equal(el_json_next(&j, 0), j.n);
    size_t s, e;
    el_json_span(&j, 0, &s, &e);
    assert_int_equal(s, 1);
    assert_int_equal(e, sizeof nav_doc - 2); /* the whitespace is outside */
}

static void test_get(void **state)
{
    (void)state;
    jsmntok_t tok[64];
    el_json j;
    scan_nav(&j, tok, 64);
    size_t s, e;

    int v = el_json_get(&j, 0, "type");
    assert_true(el_json_str_is(&j, v, "offer"));
    assert_false(el_json_str_is(&j, v, "offe"));
    assert_false(el_json_str_is(&j, v, "offers"));
    assert_false(el_json_str_is(&j, v, "type"));

    /* the outer "to", not the one inside "data" */
    v = el_json_get(&j, 0, "to");
    assert_true(el_json_str_is(&j, v, "abc"));
    int data = el_json_get(&j, 0, "data");
    assert_int_equal(j.tok[data].type, JSMN_OBJECT);
    assert_true(el_json_str_is(&j, el_json_get(&j, data, "to"), "inner"));
    assert_true(el_json_str_is(&j, el_json_get(&j, data, "sdp"), "v=0"));

    v = el_json_get(&j, 0, "n");
    assert_int_equal(j.tok[v].type, JSMN_PRIMITIVE);
    el_json_span(&j, v, &s, &e);
    EL_ASSERT_SPAN(nav_doc + s, e - s, "-1.5e3");
    assert_false(el_json_str_is(&j, v, "-1.5e3")); /* not a string */

    v = el_json_get(&j, 0, "esc");
    el_json_span(&j, v, &s, &e);
    EL_ASSERT_SPAN(nav_doc + s, e - s, "\"a\\\"b\""); /* quotes included */

    v = el_json_get(&j, 0, "t");
    el_json_span(&j, v, &s, &e);
    EL_ASSERT_SPAN(nav_doc + s, e - s, "true");

    v = el_json_get(&j, 0, "e");
    assert_int_equal(j.tok[v].type, JSMN_OBJECT);
    assert_int_equal(j.tok[v].size, 0);
    el_json_span(&j, v, &s, &e);
    EL_ASSERT_SPAN(nav_doc + s, e - s, "{}");
    assert_int_equal(el_json_get(&j, v, "anything"), -1);

    v = el_json_get(&j, 0, "z"); /* last member */
    assert_int_equal(j.tok[v].type, JSMN_ARRAY);
    assert_int_equal(v, j.n - 1);

    /* keys written with escapes never match (documented) */
    {
        jsmntok_t t2[4];
        el_json j2;
        assert_int_equal(el_json_scan(&j2, "{\"t\\u0079pe\":1}", 15, t2, 4, 2, NULL, 0), 0);
        assert_int_equal(el_json_get(&j2, 0, "type"), -1);
    }

    assert_int_equal(el_json_get(&j, 0, "missing"), -1);
    assert_int_equal(el_json_get(&j, 0, ""), -1);
    assert_int_equal(el_json_get(&j, 0, "sdp"), -1); /* only direct members */
    assert_int_equal(el_json_get(&j, 0, "offer"), -1); /* values are not keys */
    /* not an object, or out of range */
    assert_int_equal(el_json_get(&j, el_json_get(&j, 0, "z"), "x"), -1);
    assert_int_equal(el_json_get(&j, 1, "type"), -1);
    assert_int_equal(el_json_get(&j, -1, "type"), -1);
    assert_int_equal(el_json_get(&j, j.n, "type"), -1);
    assert_false(el_json_str_is(&j, -1, "x"));
    assert_false(el_json_str_is(&j, j.n, "x"));
}

static void test_at(void **state)
{
    (void)state;
    jsmntok_t tok[64];
    el_json j;
    scan_nav(&j, tok, 64);
    int data = el_json_get(&j, 0, "data");
    int list = el_json_get(&j, data, "list");
    assert_int_equal(j.tok[list].type, JSMN_ARRAY);
    assert_int_equal(j.tok[list].size, 4);
    size_t s, e;

    int v = el_json_at(&j, list, 0);
    el_json_span(&j, v, &s, &e);
    EL_ASSERT_SPAN(nav_doc + s, e - s, "1");
    v = el_json_at(&j, list, 1);
    el_json_span(&j, v, &s, &e);
    EL_ASSERT_SPAN(nav_doc + s, e - s, "[2,3]");
    el_json_span(&j, el_json_at(&j, v, 1), &s, &e);
    EL_ASSERT_SPAN(nav_doc + s, e - s, "3");
    v = el_json_at(&j, list, 2);
    assert_int_equal(j.tok[v].type, JSMN_OBJECT);
    el_json_span(&j, el_json_get(&j, v, "x"), &s, &e);
    EL_ASSERT_SPAN(nav_doc + s, e - s, "null");
    v = el_json_at(&j, list, 3);
    assert_true(el_json_str_is(&j, v, ""));
    el_json_span(&j, v, &s, &e);
    EL_ASSERT_SPAN(nav_doc + s, e - s, "\"\"");

    assert_int_equal(el_json_at(&j, list, 4), -1);
    assert_int_equal(el_json_at(&j, el_json_get(&j, 0, "z"), 0), -1); /* empty array */
    assert_int_equal(el_json_at(&j, 0, 0), -1);                       /* an object */
    assert_int_equal(el_json_at(&j, -1, 0), -1);
    assert_int_equal(el_json_at(&j, j.n, 0), -1);
}

/* "Element idx of the array at arr, or -1": a negative index names no
 * element. Regression: el_json_at used to check only idx >= size and so
 * returned arr + 1 (the first element, or a token outside an empty array)
 * for idx < 0. */
static void test_at_negative_index(void **state)
{
    (void)state;
    jsmntok_t tok[8];
    el_json j;
    assert_int_equal(el_json_scan(&j, "[[],7]", 6, tok, 8, 4, NULL, 0), 0);
    assert_int_equal(el_json_at(&j, 0, -1), -1);
    assert_int_equal(el_json_at(&j, 1, -1), -1); /* the empty inner array */
    assert_int_equal(el_json_at(&j, 0, -1000), -1);
}

/* An array at top level, the form Socket.IO events take. */
static void test_event_shape(void **state)
{
    (void)state;
    static const char ev[] = "[\"offer\",{\"to\":\"p\",\"sdp\":{\"type\":\"offer\"}},[1,2],3]";
    jsmntok_t tok[32];
    el_json j;
    assert_int_equal(el_json_scan(&j, ev, sizeof ev - 1, tok, 32, 4, NULL, 0), 0);
    assert_true(el_json_str_is(&j, el_json_at(&j, 0, 0), "offer"));
    int arg = el_json_at(&j, 0, 1);
    assert_true(el_json_str_is(&j, el_json_get(&j, arg, "to"), "p"));
    size_t s, e;
    el_json_span(&j, el_json_at(&j, 0, 3), &s, &e);
    EL_ASSERT_SPAN(ev + s, e - s, "3");
    el_json_span(&j, el_json_at(&j, 0, 2), &s, &e);
    EL_ASSERT_SPAN(ev + s, e - s, "[1,2]");
    assert_int_equal(el_json_next(&j, 0), j.n);
}

static void test_scan_token_limit(void **state)
{
    (void)state;
    jsmntok_t tok[8];
    el_json j;
    char err[128] = "";
    /* [1,2,3] is 4 tokens */
    assert_int_equal(el_json_scan(&j, "[1,2,3]", 7, tok, 4, 4, err, sizeof err), 0);
    assert_int_equal(j.n, 4);
    assert_int_equal(el_json_scan(&j, "[1,2,3]", 7, tok, 3, 4, err, sizeof err), -2);
    assert_true(err[0] != '\0');
    /* {"a":"b"} is 3 tokens */
    assert_int_equal(el_json_scan(&j, "{\"a\":\"b\"}", 9, tok, 3, 4, NULL, 0), 0);
    assert_int_equal(el_json_scan(&j, "{\"a\":\"b\"}", 9, tok, 2, 4, NULL, 0), -2);
    assert_int_equal(el_json_scan(&j, "[]", 2, tok, 1, 4, NULL, 0), 0);
    /* invalid wins over too large; depth is enforced by scan too */
    err[0] = '\0';
    assert_int_equal(el_json_scan(&j, "[1,2,3,]", 8, tok, 2, 4, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_int_equal(el_json_scan(&j, "[[[1]]]", 7, tok, 8, 2, NULL, 0), -1);
    assert_int_equal(el_json_scan(&j, "\"\xc0\x80\"", 4, tok, 8, 2, NULL, 0), -1);
}

/* A lone JSON scalar is valid JSON text (RFC 8259 §2), and el_json_validate
 * accepts it, so el_json_scan must too. Regression: in JSMN_STRICT mode jsmn
 * returns JSMN_ERROR_PART for a primitive that ends the input, so
 * el_json_scan("1") used to return -1 "unparsable JSON" (with a trailing
 * space it succeeded). */
/* el_json_scan tokenizes while it validates; its tokens must be jsmn's
 * (strict mode), token for token: types, spans, sizes (an object counts its
 * keys, a key has size 1, an array counts its elements). */
static void test_scan_matches_jsmn(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "[]",
        "{}",
        " [ 1 , -2.5e+3 , true , false , null , \"s\" ] ",
        "{\"a\":1,\"b\":{\"c\":[1,{\"d\":\"e\"},[]],\"f\":{}},\"g\":[[[]]]}",
        "[\"offer\",{\"to\":\"abc\",\"sdp\":\"v=0\\r\\n\\u00e9\\\"x\\\"\"}]",
        "{\"k\\\"q\":\"\\u20ac\",\"\":\"\",\"n\":0}",
        "[{\"a\":[]},{\"b\":{}},{},[],\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]",
        "{\"x\":[1,2,3],\"y\":{\"z\":[{\"w\":null}]}}\n",
    };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        const char *js = docs[d];
        size_t len = strlen(js);
        jsmntok_t ours[64], ref[64];
        el_json j;
        char err[128] = "";
        if (el_json_scan(&j, js, len, ours, 64, 16, err, sizeof err) != 0)
            fail_msg("doc %zu: %s", d, err);
        jsmn_parser p;
        jsmn_init(&p);
        int n = jsmn_parse(&p, js, len, ref, 64);
        if (n != j.n)
            fail_msg("doc %zu: %d tokens, jsmn %d", d, j.n, n);
        for (int i = 0; i < n; i++)
            if (ours[i].type != ref[i].type || ours[i].start != ref[i].start ||
                ours[i].end != ref[i].end || ours[i].size != ref[i].size)
                fail_msg("doc %zu token %d: %d %d..%d size %d, jsmn %d %d..%d size %d", d, i,
                         ours[i].type, ours[i].start, ours[i].end, ours[i].size, ref[i].type,
                         ref[i].start, ref[i].end, ref[i].size);
    }
}

static void test_scan_top_level_scalars(void **state)
{
    (void)state;
    static const char *const docs[] = {"\"s\"", "1", "-0", "1.5e3", "true", "false", "null"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        jsmntok_t tok[2];
        el_json j;
        char err[128] = "";
        size_t n = strlen(docs[i]);
        assert_int_equal(el_json_validate(docs[i], n, 4, NULL, 0), 0);
        int rc = el_json_scan(&j, docs[i], n, tok, 2, 4, err, sizeof err);
        if (rc != 0)
            fail_msg("el_json_scan(\"%s\") = %d (%s), validate accepts it", docs[i], rc, err);
        assert_int_equal(j.n, 1);
        size_t s, e;
        el_json_span(&j, 0, &s, &e);
        assert_int_equal(s, 0);
        assert_int_equal(e, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_accepts),
        cmocka_unit_test(test_validate_lone_surrogate_escapes),
        cmocka_unit_test(test_validate_rejects),
        cmocka_unit_test(test_validate_prefixes),
        cmocka_unit_test(test_validate_bytes_in_strings),
        cmocka_unit_test(test_validate_bytes_at_every_offset),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_depth_hard_limit),
        cmocka_unit_test(test_scan_and_next),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_at),
        cmocka_unit_test(test_at_negative_index),
        cmocka_unit_test(test_event_shape),
        cmocka_unit_test(test_scan_token_limit),
        cmocka_unit_test(test_scan_top_level_scalars),
        cmocka_unit_test(test_scan_matches_jsmn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
