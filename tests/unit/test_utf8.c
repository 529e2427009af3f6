/* test_utf8.c - src/base/utf8: strict UTF-8 (RFC 3629), checked against an
 * oracle that shares no code with it: a byte string is valid iff it splits
 * into the shortest encodings of Unicode scalar values. Every string of up to
 * three bytes is compared, plus the four-byte lead bytes with every second
 * byte, and every scalar value's encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test.h"

#include "base/utf8.h"

/* The shortest encoding of cp (any value below 2^21); its length. */
static size_t encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

static bool scalar(uint32_t cp)
{
    return cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

/* The oracle: at each position, some length 1..4 whose payload bits, encoded
 * again, give back exactly those bytes, for a scalar value. */
static bool oracle(const uint8_t *s, size_t n)
{
    static const uint8_t lead_bits[5] = {0, 7, 5, 4, 3};
    size_t i = 0;
    while (i < n) {
        bool ok = false;
        for (size_t len = 1; len <= 4 && !ok && i + len <= n; len++) {
            uint32_t cp = s[i] & ((1u << lead_bits[len]) - 1);
            for (size_t k = 1; k < len; k++)
                cp = cp << 6 | (s[i + k] & 0x3f);
            uint8_t e[4];
            if (scalar(cp) && encode(cp, e) == len && memcmp(e, s + i, len) == 0) {
                i += len;
                ok = true;
            }
        }
        if (!ok)
            return false;
    }
    return true;
}

/* From a heap copy of exactly n bytes, so ASan reports any read past it. */
static bool valid_exact(const uint8_t *s, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, s, n);
    bool v = el_utf8_valid(copy, n);
    free(copy);
    return v;
}

static void test_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
        bool valid;
    } v[] = {
        {"", 0, true},
        {"plain ascii", 11, true},
        {"\0", 1, true}, /* U+0000 is UTF-8; C-string callers refuse it themselves */
        {"\xc2\x80", 2, true},          /* U+0080 */
        {"\xdf\xbf", 2, true},          /* U+07FF */
        {"\xe0\xa0\x80", 3, true},      /* U+0800 */
        {"\xed\x9f\xbf", 3, true},      /* U+D7FF */
        {"\xee\x80\x80", 3, true},      /* U+E000 */
        {"\xef\xbf\xbf", 3, true},      /* U+FFFF */
        {"\xf0\x90\x80\x80", 4, true},  /* U+10000 */
        {"\xf4\x8f\xbf\xbf", 4, true},  /* U+10FFFF */
        {"\xe2\x9c\xa8 ok", 6, true},   /* sparkles */
        {"\x80", 1, false},             /* lone continuation */
        {"\xbf", 1, false},
        {"\xc0\x80", 2, false},         /* overlong U+0000 */
        {"\xc1\xbf", 2, false},         /* overlong U+007F */
        {"\xe0\x9f\xbf", 3, false},     /* overlong U+07FF */
        {"\xf0\x8f\xbf\xbf", 4, false}, /* overlong U+FFFF */
        {"\xed\xa0\x80", 3, false},     /* U+D800, a surrogate */
        {"\xed\xbf\xbf", 3, false},     /* U+DFFF */
        {"\xf4\x90\x80\x80", 4, false}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4, false},
        {"\xff", 1, false},
        {"\xe2\x82", 2, false},         /* cut short at the end */
        {"\xf0\x90\x80", 3, false},
        {"\xc2" "a", 2, false},         /* a continuation that is not one */
        {"a\xe2\x28\xa1", 4, false},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        bool got = valid_exact((const uint8_t *)v[i].s, v[i].n);
        if (got != v[i].valid)
            fail_msg("vector %zu (%zu bytes): got %d, want %d", i, v[i].n, got, v[i].valid);
        assert_int_equal(oracle((const uint8_t *)v[i].s, v[i].n), v[i].valid);
    }
}

static void test_every_string_up_to_three_bytes(void **state)
{
    (void)state;
    uint8_t s[3];
    size_t valid = 0;
    for (uint32_t x = 0; x < (1u << 24); x++) {
        s[0] = (uint8_t)(x >> 16), s[1] = (uint8_t)(x >> 8), s[2] = (uint8_t)x;
        for (size_t n = 1; n <= 3; n++) {
            /* lengths 1 and 2 once each, not 65536 and 256 times */
            if ((n == 1 && (x & 0xffff)) || (n == 2 && (x & 0xff)))
                continue;
            bool want = oracle(s, n);
            if (el_utf8_valid(s, n) != want)
                fail_msg("%02x %02x %02x (%zu bytes): want %d", s[0], s[1], s[2], n, want);
            valid += want;
        }
    }
    /* 128 + (128^2 + 1920) + (128^3 + 2*128*1920 + 61440): a count that a
     * validator agreeing with a broken oracle would be unlikely to hit */
    assert_int_equal(valid, 128 + (16384 + 1920) + (2097152 + 491520 + 61440));
}

static void test_four_byte_leads(void **state)
{
    (void)state;
    static const uint8_t tails[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff};
    uint8_t s[4];
    for (unsigned lead = 0xe0; lead <= 0xff; lead++)
        for (unsigned b1 = 0; b1 < 256; b1++)
            for (size_t t2 = 0; t2 < sizeof tails; t2++)
                for (size_t t3 = 0; t3 < sizeof tails; t3++) {
                    s[0] = (uint8_t)lead, s[1] = (uint8_t)b1, s[2] = tails[t2], s[3] = tails[t3];
                    if (el_utf8_valid(s, 4) != oracle(s, 4))
                        fail_msg("%02x %02x %02x %02x", s[0], s[1], s[2], s[3]);
                }
}

static void test_every_scalar_value(void **state)
{
    (void)state;
    uint8_t e[4];
    for (uint32_t cp = 0; cp < 0x110000 + 0x100; cp++) {
        size_t n = encode(cp, e);
        if (el_utf8_valid(e, n) != scalar(cp))
            fail_msg("U+%04X", cp);
        /* every proper prefix of a multi-byte encoding is cut short */
        for (size_t k = 1; k < n; k++)
            if (valid_exact(e, k))
                fail_msg("U+%04X cut to %zu bytes", cp, k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_every_string_up_to_three_bytes),
        cmocka_unit_test(test_four_byte_leads),
        cmocka_unit_test(test_every_scalar_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
