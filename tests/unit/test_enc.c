/* test_enc.c - src/base/enc: RFC 4648 vectors, exact buffer sizes, and the
 * "one encoding per byte string" rule of the decoders, checked exhaustively
 * for short inputs (a string decodes iff it is the encoding of its result). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test.h"

#include "base/enc.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Decodes from a heap copy of exactly n bytes (no NUL after it), so ASan
 * reports any read past the input. */
typedef ssize_t (*decode_fn)(const char *, size_t, uint8_t *, size_t);
typedef ssize_t (*encode_fn)(const uint8_t *, size_t, char *, size_t);

static ssize_t decode_exact(decode_fn fn, const char *in, size_t n, uint8_t *out, size_t outlen)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, in, n);
    ssize_t r = fn(copy, n, out, outlen);
    free(copy);
    return r;
}

/* Simple deterministic generator so failures reproduce. */
static uint32_t rng_state = 0x12345678u;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* ---- RFC 4648 §10 vectors ---------------------------------------------- */

static const struct {
    const char *plain, *b64, *b64url, *b32, *hex;
} rfc[] = {
    {"", "", "", "", ""},
    {"f", "Zg==", "Zg", "my", "66"},
    {"fo", "Zm8=", "Zm8", "mzxq", "666f"},
    {"foo", "Zm9v", "Zm9v", "mzxw6", "666f6f"},
    {"foob", "Zm9vYg==", "Zm9vYg", "mzxw6yq", "666f6f62"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE", "mzxw6ytb", "666f6f6261"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy", "mzxw6ytboi", "666f6f626172"},
};

static void test_rfc4648_encode(void **state)
{
    (void)state;
    char out[64];
    for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        const uint8_t *in = (const uint8_t *)rfc[i].plain;
        size_t n = strlen(rfc[i].plain);
        assert_int_equal(el_b64_encode(in, n, out, sizeof out), (ssize_t)strlen(rfc[i].b64));
        assert_string_equal(out, rfc[i].b64);
        assert_int_equal(el_b64url_encode(in, n, out, sizeof out), (ssize_t)strlen(rfc[i].b64url));
        assert_string_equal(out, rfc[i].b64url);
        assert_int_equal(el_base32_encode(in, n, out, sizeof out), (ssize_t)strlen(rfc[i].b32));
        assert_string_equal(out, rfc[i].b32);
        assert_int_equal(el_hex_encode(in, n, out, sizeof out), (ssize_t)strlen(rfc[i].hex));
        assert_string_equal(out, rfc[i].hex);
    }
}

static void test_hex_decode(void **state)
{
    (void)state;
    uint8_t out[64];
    for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        size_t n = strlen(rfc[i].plain);
        assert_int_equal(el_hex_decode(rfc[i].hex, strlen(rfc[i].hex), out, sizeof out), (ssize_t)n);
        assert_memory_equal(out, rfc[i].plain, n);
    }
    assert_int_equal(el_hex_decode("0aFf", 4, out, sizeof out), 2);
    assert_int_equal(out[0], 0x0a);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(el_hex_decode("abc", 3, out, sizeof out), -1);  /* odd */
    assert_int_equal(el_hex_decode("0g", 2, out, sizeof out), -1);   /* not hex */
    assert_int_equal(el_hex_decode("0011", 4, out, 1), -1);         /* too small */
    assert_true(el_is_lower_hex("0123456789abcdef", 16));
    assert_true(el_is_lower_hex("", 0));
    assert_false(el_is_lower_hex("0A", 2));
    assert_false(el_is_lower_hex("0g", 2));
    assert_true(el_is_lower_hex("ab\0", 2)); /* only len bytes are looked at */
}

static void test_rfc4648_decode(void **state)
{
    (void)state;
    uint8_t out[64];
    for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        size_t n = strlen(rfc[i].plain);
        memset(out, 0xaa, sizeof out);
        assert_int_equal(decode_exact(el_b64_decode, rfc[i].b64, strlen(rfc[i].b64), out, sizeof out),
                         (ssize_t)n);
        assert_memory_equal(out, rfc[i].plain, n);
        assert_int_equal(out[n], 0xaa); /* nothing written past the result */
        memset(out, 0xaa, sizeof out);
        assert_int_equal(
            decode_exact(el_b64url_decode, rfc[i].b64url, strlen(rfc[i].b64url), out, sizeof out),
            (ssize_t)n);
        assert_memory_equal(out, rfc[i].plain, n);
        assert_int_equal(out[n], 0xaa);
    }
}

/* Bytes that use the two alphabet-specific characters (62 and 63). Values
 * from Python's base64 module. */
static void test_alphabet_specific_chars(void **state)
{
    (void)state;
    static const uint8_t a[] = {0xfb, 0xff}, b[] = {0xfb, 0xef, 0xbe};
    static const uint8_t c[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    char out[32];
    uint8_t dec[16];

    assert_int_equal(el_b64_encode(a, sizeof a, out, sizeof out), 4);
    assert_string_equal(out, "+/8=");
    assert_int_equal(el_b64url_encode(a, sizeof a, out, sizeof out), 3);
    assert_string_equal(out, "-_8");
    assert_int_equal(el_b64_encode(b, sizeof b, out, sizeof out), 4);
    assert_string_equal(out, "++++");
    assert_int_equal(el_b64url_encode(b, sizeof b, out, sizeof out), 4);
    assert_string_equal(out, "----");
    assert_int_equal(el_base32_encode(c, sizeof c, out, sizeof out), 8);
    assert_string_equal(out, "77777777");
    assert_int_equal(el_base32_encode(a, sizeof a, out, sizeof out), 4);
    assert_string_equal(out, "7p7q");
    assert_int_equal(el_b64_encode(c, sizeof c, out, sizeof out), 8);
    assert_string_equal(out, "//////8=");

    assert_int_equal(decode_exact(el_b64_decode, "+/8=", 4, dec, sizeof dec), 2);
    assert_memory_equal(dec, a, 2);
    assert_int_equal(decode_exact(el_b64url_decode, "-_8", 3, dec, sizeof dec), 2);
    assert_memory_equal(dec, a, 2);
    /* Each alphabet's 62/63 are foreign to the other. */
    assert_int_equal(decode_exact(el_b64_decode, "-_8=", 4, dec, sizeof dec), -1);
    assert_int_equal(decode_exact(el_b64url_decode, "+/8", 3, dec, sizeof dec), -1);
    assert_int_equal(decode_exact(el_b64url_decode, "----", 4, dec, sizeof dec), 3);
    assert_memory_equal(dec, b, 3);
    assert_int_equal(decode_exact(el_b64_decode, "++++", 4, dec, sizeof dec), 3);
    assert_memory_equal(dec, b, 3);
}

static void test_length_macros(void **state)
{
    (void)state;
    static const size_t url[] = {0, 2, 3, 4, 6, 7, 8, 10}, std[] = {0, 4, 4, 4, 8, 8, 8, 12},
                        b32[] = {0, 2, 4, 5, 7, 8, 10, 12};
    for (size_t n = 0; n < 8; n++) {
        assert_int_equal(EL_B64URL_LEN(n), url[n]);
        assert_int_equal(EL_B64_LEN(n), std[n]);
        assert_int_equal(EL_BASE32_LEN(n), b32[n]);
    }
    /* 32-byte keys and 64-byte signatures, the sizes identity uses. */
    assert_int_equal(EL_B64URL_LEN(32), 43);
    assert_int_equal(EL_B64URL_LEN(64), 86);
    assert_int_equal(EL_BASE32_LEN(32), 52);
}

/* ---- buffer sizes -------------------------------------------------------- */

static void check_encode_sizes(encode_fn fn, size_t (*need)(size_t))
{
    uint8_t in[40];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t want = need(n);
        /* exact heap buffers: ASan catches a write past outlen */
        char *out = malloc(want + 1);
        assert_non_null(out);
        assert_int_equal(fn(in, n, out, want + 1), (ssize_t)want);
        assert_int_equal(strlen(out), want);
        free(out);
        out = malloc(want ? want : 1);
        assert_non_null(out);
        assert_int_equal(fn(in, n, out, want), -1); /* no room for the NUL */
        free(out);
    }
    assert_int_equal(fn(in, 0, NULL, 0), -1);
}

static size_t need_b64(size_t n) { return EL_B64_LEN(n); }
static size_t need_b64url(size_t n) { return EL_B64URL_LEN(n); }
static size_t need_b32(size_t n) { return EL_BASE32_LEN(n); }
static size_t need_hex(size_t n) { return 2 * n; }

static void test_encode_buffer_sizes(void **state)
{
    (void)state;
    check_encode_sizes(el_b64_encode, need_b64);
    check_encode_sizes(el_b64url_encode, need_b64url);
    check_encode_sizes(el_base32_encode, need_b32);
    check_encode_sizes(el_hex_encode, need_hex);
}

static void test_decode_buffer_sizes(void **state)
{
    (void)state;
    uint8_t in[40];
    char txt[80];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 91 + 3);
    for (size_t n = 1; n <= sizeof in; n++) {
        for (int url = 0; url < 2; url++) {
            ssize_t tl = url ? el_b64url_encode(in, n, txt, sizeof txt)
                             : el_b64_encode(in, n, txt, sizeof txt);
            assert_true(tl > 0);
            decode_fn dec = url ? el_b64url_decode : el_b64_decode;
            uint8_t *out = malloc(n);
            assert_non_null(out);
            assert_int_equal(decode_exact(dec, txt, (size_t)tl, out, n), (ssize_t)n);
            assert_memory_equal(out, in, n);
            assert_int_equal(decode_exact(dec, txt, (size_t)tl, out, n - 1), -1);
            free(out);
        }
    }
    /* the empty string is the encoding of zero bytes, even with no buffer */
    assert_int_equal(el_b64url_decode("", 0, NULL, 0), 0);
    assert_int_equal(el_b64_decode("", 0, NULL, 0), 0);
}

/* ---- rejected inputs ----------------------------------------------------- */

static void test_b64_decode_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg",       /* standard base64 needs its padding */
        "Zg=",      /* length not a multiple of 4 */
        "Zm8",      /* unpadded */
        "Zh==",     /* non-zero trailing bits: non-canonical "f" */
        "Zm9=",     /* non-canonical "fo" */
        "Z===",     /* three pad characters */
        "====",     /* only padding */
        "=Zg=",     /* pad at the front */
        "Zg==Zm8=", /* pad in the middle */
        "Zm9vYmFy====",
        "Zm9v\n",
        " Zm9v",
        "Zm 9v",
        "Zm9v!A==",
        "Zm9vYg-=",  /* base64url character in standard base64 */
        "Zm9vYg_=",
        "Zm9vY",     /* 4k+1 characters */
        "A",
    };
    uint8_t out[32];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ssize_t r = decode_exact(el_b64_decode, bad[i], strlen(bad[i]), out, sizeof out);
        if (r != -1)
            fail_msg("el_b64_decode accepted \"%s\" (returned %zd)", bad[i], r);
    }
    /* an embedded NUL is outside the alphabet */
    assert_int_equal(decode_exact(el_b64_decode, "Zm\0v", 4, out, sizeof out), -1);
    /* a byte with the high bit set */
    assert_int_equal(decode_exact(el_b64_decode, "Zm\xc3v", 4, out, sizeof out), -1);
}

static void test_b64url_decode_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg==",   /* no padding in base64url */
        "Zg=",
        "Zm8=",
        "Zh",     /* non-zero trailing bits */
        "Zm9",
        "Zm9vYh",
        "Z",      /* 4k+1 characters */
        "Zm9vY",
        "Zm9v+",
        "Zm9v/A",
        "Zm9v\n",
        "Zm 9v",
        ".m9v",
    };
    uint8_t out[32];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ssize_t r = decode_exact(el_b64url_decode, bad[i], strlen(bad[i]), out, sizeof out);
        if (r != -1)
            fail_msg("el_b64url_decode accepted \"%s\" (returned %zd)", bad[i], r);
    }
    assert_int_equal(decode_exact(el_b64url_decode, "Zm\0v", 4, out, sizeof out), -1);
    assert_int_equal(decode_exact(el_b64url_decode, "Zm\xffv", 4, out, sizeof out), -1);
}

/* ---- canonical encoding, exhaustively ------------------------------------ */

/* base64url: for every string s of the given length over the alphabet (plus
 * a few foreign characters), decode(s) succeeds iff encode(decode(s)) == s. */
static void check_canonical(size_t len, const char *alphabet)
{
    char s[8], again[16];
    uint8_t out[8];
    size_t na = strlen(alphabet);
    size_t total = 1;
    for (size_t i = 0; i < len; i++)
        total *= na;
    size_t accepted = 0;
    for (size_t k = 0; k < total; k++) {
        size_t v = k;
        for (size_t i = 0; i < len; i++) {
            s[i] = alphabet[v % na];
            v /= na;
        }
        ssize_t r = el_b64url_decode(s, len, out, sizeof out);
        if (r < 0)
            continue;
        accepted++;
        ssize_t e = el_b64url_encode(out, (size_t)r, again, sizeof again);
        if (e != (ssize_t)len || memcmp(again, s, len) != 0)
            fail_msg("decoder accepted non-canonical \"%.*s\" (re-encodes as \"%s\")", (int)len, s,
                     again);
    }
    /* The accepted count must be exactly the number of byte strings whose
     * encoding has this length: 256^bytes, none for 4k+1 characters. */
    size_t want = len % 4 == 1 ? 0 : 1;
    for (size_t i = 0; want && i < (len * 6) / 8; i++)
        want *= 256;
    assert_int_equal(accepted, want);
}

static void test_b64url_canonical_exhaustive(void **state)
{
    (void)state;
    /* 64 letters + characters that must never decode */
    char alpha[80];
    snprintf(alpha, sizeof alpha, "%s+/=. ", b64_url);
    check_canonical(1, alpha); /* nothing of length 1 decodes */
    check_canonical(2, alpha);
    check_canonical(3, alpha);
    check_canonical(4, alpha); /* 69^4 strings, 2^24 of them valid */
}

static void test_b64_canonical_exhaustive(void **state)
{
    (void)state;
    /* All 4-character strings with the last two positions over the
     * alphabet + '=' and the first two fixed (the tail decides validity). */
    char s[5] = "QQ\0\0";
    char tailset[80];
    snprintf(tailset, sizeof tailset, "%s=-_", b64_std);
    size_t nt = strlen(tailset), accepted = 0;
    uint8_t out[4];
    char again[16];
    for (size_t a = 0; a < nt; a++) {
        for (size_t b = 0; b < nt; b++) {
            s[2] = tailset[a];
            s[3] = tailset[b];
            ssize_t r = el_b64_decode(s, 4, out, sizeof out);
            if (r < 0)
                continue;
            accepted++;
            assert_true(el_b64_encode(out, (size_t)r, again, sizeof again) == 4);
            if (memcmp(again, s, 4) != 0)
                fail_msg("el_b64_decode accepted non-canonical \"%s\" (re-encodes as \"%s\")", s,
                         again);
        }
    }
    /* "QQxy": 64*64 three-byte strings; "QQx=": the 16 letters x whose low
     * two bits are zero; "QQ==": exactly one (Q = 010000 leaves no bits). */
    assert_int_equal(accepted, 64 * 64 + 16 + 1);
}

/* ---- round trips and independent references ------------------------------ */

static void test_roundtrip_random(void **state)
{
    (void)state;
    uint8_t in[300], out[300];
    char txt[512];
    for (size_t n = 0; n < sizeof in; n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)rng();
        ssize_t tl = el_b64url_encode(in, n, txt, sizeof txt);
        assert_int_equal(tl, (ssize_t)EL_B64URL_LEN(n));
        for (ssize_t i = 0; i < tl; i++)
            assert_non_null(strchr(b64_url, txt[i]));
        assert_int_equal(el_b64url_decode(txt, (size_t)tl, out, sizeof out), (ssize_t)n);
        assert_memory_equal(in, out, n);

        tl = el_b64_encode(in, n, txt, sizeof txt);
        assert_int_equal(tl, (ssize_t)EL_B64_LEN(n));
        assert_int_equal(el_b64_decode(txt, (size_t)tl, out, sizeof out), (ssize_t)n);
        assert_memory_equal(in, out, n);
    }
}

/* Bit-by-bit base32 and hex, written independently of enc.c. */
static void ref_base32(const uint8_t *in, size_t n, char *out)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
    size_t bits = n * 8, o = 0;
    for (size_t b = 0; b < bits; b += 5) {
        unsigned v = 0;
        for (size_t k = 0; k < 5; k++) {
            size_t bit = b + k;
            unsigned x = bit < bits ? (in[bit / 8] >> (7 - bit % 8)) & 1u : 0u;
            v = v << 1 | x;
        }
        out[o++] = alpha[v];
    }
    out[o] = '\0';
}

static void test_base32_and_hex_reference(void **state)
{
    (void)state;
    uint8_t in[64];
    char got[128], want[128];
    for (int round = 0; round < 400; round++) {
        size_t n = (size_t)round % sizeof in;
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)rng();
        ref_base32(in, n, want);
        assert_int_equal(el_base32_encode(in, n, got, sizeof got), (ssize_t)strlen(want));
        assert_string_equal(got, want);
    }
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        snprintf(want, sizeof want, "%02x", b);
        assert_int_equal(el_hex_encode(&byte, 1, got, sizeof got), 2);
        assert_string_equal(got, want);
    }
}

static void test_b64url_token(void **state)
{
    (void)state;
    assert_true(el_b64url_token("aZ09-_", 6));
    assert_false(el_b64url_token("aZ09-_", 5)); /* longer than max */
    assert_false(el_b64url_token("", 8));
    assert_false(el_b64url_token("a+b", 8));    /* base64, not base64url */
    assert_false(el_b64url_token("a/b", 8));
    assert_false(el_b64url_token("a=", 8));
    assert_false(el_b64url_token("\xc3\xa9", 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_encode),
        cmocka_unit_test(test_rfc4648_decode),
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_alphabet_specific_chars),
        cmocka_unit_test(test_length_macros),
        cmocka_unit_test(test_encode_buffer_sizes),
        cmocka_unit_test(test_decode_buffer_sizes),
        cmocka_unit_test(test_b64_decode_rejects),
        cmocka_unit_test(test_b64url_decode_rejects),
        cmocka_unit_test(test_b64url_canonical_exhaustive),
        cmocka_unit_test(test_b64_canonical_exhaustive),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_base32_and_hex_reference),
        cmocka_unit_test(test_b64url_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
