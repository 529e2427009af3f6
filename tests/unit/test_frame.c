/* test_frame.c - src/crypto/frame (DATA frames, §9.3) against
 * tests/vectors/e2ee.json "frames" and "bad_frames", plus the strict
 * counter, rekey at 65536 done by real sealing, exhaustion, buffer rules,
 * and the fuzz seeds of tests/fuzz/corpus/frame through fuzz_frame.c's
 * invariants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "test.h"
#include "vectors.h"

#include "base/enc.h"
#include "base/err.h"
#include "crypto/frame.h"

#define EL_FUZZ_NO_MAIN
#include "../fuzz/fuzz_frame.c"

/* ---- vectors ---------------------------------------------------------- */

static void test_frames_vectors(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");
    json_t *vs = el_vec_cases(doc, "frames", 8);
    size_t i;
    json_t *v;
    int rekeyed = 0;
    json_array_foreach(vs, i, v) {
        uint8_t k[32];
        size_t ptlen, flen, outlen, backlen;
        el_vec_hex32(el_vec_str(v, "key_hex"), k);
        uint64_t n = el_vec_uint(v, "n");
        uint8_t *pt = el_vec_hex(el_vec_str(v, "plaintext_hex"), &ptlen);
        uint8_t *want = el_vec_hex(el_vec_str(v, "frame_hex"), &flen);
        uint8_t *out = malloc(ptlen + EL_FRAME_OVERHEAD);
        uint8_t *back = malloc(ptlen + 1);
        el_fcipher *tx, *rx;
        assert_int_equal(el_fcipher_new(&tx, k), EL_OK);
        assert_int_equal(el_fcipher_new(&rx, k), EL_OK);
        assert_int_equal(el_fcipher_seek(tx, n), EL_OK);
        assert_int_equal(el_fcipher_seek(rx, n), EL_OK);
        assert_int_equal(el_fcipher_seal(tx, pt, ptlen, out, ptlen + EL_FRAME_OVERHEAD, &outlen), EL_OK);
        assert_int_equal(outlen, flen);
        if (memcmp(out, want, flen) != 0)
            fail_msg("frame n=%llu differs from the vector", (unsigned long long)n);
        assert_int_equal(el_fcipher_counter(tx), n + 1);
        assert_int_equal(el_fcipher_open(rx, want, flen, back, ptlen, &backlen), EL_OK);
        assert_int_equal(backlen, ptlen);
        assert_memory_equal(back, pt, ptlen);
        assert_int_equal(el_fcipher_counter(rx), n + 1);
        /* the same frame again is a replay now */
        assert_int_equal(el_fcipher_open(rx, want, flen, back, ptlen, &backlen), EL_ERR_EXISTS);
        assert_int_equal(el_fcipher_stats_get(rx)->replay, 1);
        if (n >= EL_FRAME_REKEY_EVERY)
            rekeyed++;
        el_fcipher_free(tx);
        el_fcipher_free(rx);
        free(pt);
        free(want);
        free(out);
        free(back);
    }
    assert_true(rekeyed >= 3);
    json_decref(doc);
}

static int reason_code(const char *r)
{
    static const el_vec_code codes[] = {{"truncated", EL_ERR_INVALID},
                                        {"replay", EL_ERR_EXISTS},
                                        {"reorder", EL_ERR_STATE},
                                        {"auth", EL_ERR_CRYPTO}};
    return el_vec_code_of(codes, sizeof codes / sizeof codes[0], r, "reason");
}

static void test_bad_frames_vectors(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");
    json_t *vs = el_vec_cases(doc, "bad_frames", 10);
    size_t i;
    json_t *v;
    int seen[4] = {0};
    json_array_foreach(vs, i, v) {
        uint8_t k[32], out[EL_FRAME_MAX];
        size_t flen, outlen = 99;
        el_vec_hex32(el_vec_str(v, "key_hex"), k);
        uint64_t at = el_vec_uint(v, "expected_n");
        const char *reason = el_vec_str(v, "reason");
        uint8_t *f = el_vec_hex(el_vec_str(v, "frame_hex"), &flen);
        el_fcipher *rx;
        assert_int_equal(el_fcipher_new(&rx, k), EL_OK);
        assert_int_equal(el_fcipher_seek(rx, at), EL_OK);
        int rc = el_fcipher_open(rx, f, flen, out, sizeof out, &outlen);
        if (rc != reason_code(reason))
            fail_msg("%s: got %s (%d), want %s", el_vec_str(v, "name"), el_fcipher_reason(rc), rc, reason);
        assert_string_equal(el_fcipher_reason(rc), reason);
        assert_int_equal(outlen, 0);
        const el_fcipher_stats *st = el_fcipher_stats_get(rx);
        assert_int_equal(st->truncated, rc == EL_ERR_INVALID);
        assert_int_equal(st->replay, rc == EL_ERR_EXISTS);
        assert_int_equal(st->reorder, rc == EL_ERR_STATE);
        assert_int_equal(st->auth, rc == EL_ERR_CRYPTO);
        seen[rc == EL_ERR_INVALID ? 0 : rc == EL_ERR_EXISTS ? 1 : rc == EL_ERR_STATE ? 2 : 3]++;
        /* state unchanged: same counter, same key (the genuine frame opens) */
        assert_int_equal(el_fcipher_counter(rx), at);
        el_fcipher *tx;
        uint8_t g[EL_FRAME_OVERHEAD + 5], p[5];
        size_t gl, pl;
        assert_int_equal(el_fcipher_new(&tx, k), EL_OK);
        assert_int_equal(el_fcipher_seek(tx, at), EL_OK);
        assert_int_equal(el_fcipher_seal(tx, (const uint8_t *)"\x01{}\x00\x01", 5, g, sizeof g, &gl), EL_OK);
        assert_int_equal(el_fcipher_open(rx, g, gl, p, sizeof p, &pl), EL_OK);
        assert_int_equal(pl, 5);
        assert_memory_equal(p, "\x01{}\x00\x01", 5);
        assert_int_equal(el_fuzz_stat_sum(st), 1);
        assert_int_equal(el_fcipher_counter(rx), at + 1);
        el_fcipher_free(tx);
        el_fcipher_free(rx);
        free(f);
    }
    for (int r = 0; r < 4; r++)
        assert_true(seen[r] > 0);
    json_decref(doc);
}

/* ---- behaviour -------------------------------------------------------- */

/* 65536 + a few frames sealed and opened one by one: the rekey at 65536
 * happens on both sides without seek, and frame 65536 equals what a
 * sender seeked there produces. */
static void test_rekey_by_sealing(void **state)
{
    (void)state;
    uint8_t k[32], f[EL_FRAME_OVERHEAD + 8], p[8], f2[sizeof f];
    size_t fl, pl, fl2;
    RAND_bytes(k, sizeof k);
    el_fcipher *tx, *rx, *jump;
    assert_int_equal(el_fcipher_new(&tx, k), EL_OK);
    assert_int_equal(el_fcipher_new(&rx, k), EL_OK);
    assert_int_equal(el_fcipher_new(&jump, k), EL_OK);
    for (uint64_t n = 0; n < EL_FRAME_REKEY_EVERY + 3; n++) {
        uint8_t m[8];
        memcpy(m, &n, sizeof m);
        assert_int_equal(el_fcipher_seal(tx, m, sizeof m, f, sizeof f, &fl), EL_OK);
        if (n == EL_FRAME_REKEY_EVERY) {
            assert_int_equal(el_fcipher_seek(jump, n), EL_OK);
            assert_int_equal(el_fcipher_seal(jump, m, sizeof m, f2, sizeof f2, &fl2), EL_OK);
            assert_memory_equal(f, f2, fl);
        }
        if (el_fcipher_open(rx, f, fl, p, sizeof p, &pl) != EL_OK)
            fail_msg("frame %llu rejected", (unsigned long long)n);
        assert_memory_equal(p, m, sizeof m);
    }
    assert_int_equal(el_fcipher_counter(rx), EL_FRAME_REKEY_EVERY + 3);
    el_fcipher_free(tx);
    el_fcipher_free(rx);
    el_fcipher_free(jump);
}

static void test_limits_and_buffers(void **state)
{
    (void)state;
    uint8_t k[32];
    RAND_bytes(k, sizeof k);
    el_fcipher *tx, *rx;
    assert_int_equal(el_fcipher_new(&tx, k), EL_OK);
    assert_int_equal(el_fcipher_new(&rx, k), EL_OK);
    uint8_t *pt = calloc(1, EL_FRAME_PT_MAX + 1), *f = malloc(EL_FRAME_MAX + 2);
    size_t fl, pl;
    /* the biggest plaintext fits exactly in the biggest frame */
    assert_int_equal(el_fcipher_seal(tx, pt, EL_FRAME_PT_MAX + 1, f, EL_FRAME_MAX + 2, &fl), EL_ERR_TOO_LARGE);
    assert_int_equal(el_fcipher_seal(tx, pt, 10, f, 10 + EL_FRAME_OVERHEAD - 1, &fl), EL_ERR_TOO_LARGE);
    assert_int_equal(el_fcipher_counter(tx), 0);
    assert_int_equal(el_fcipher_seal(tx, pt, EL_FRAME_PT_MAX, f, EL_FRAME_MAX, &fl), EL_OK);
    assert_int_equal(fl, EL_FRAME_MAX);
    /* output too small: not counted, nothing changes, then it opens in place */
    assert_int_equal(el_fcipher_open(rx, f, fl, pt, EL_FRAME_PT_MAX - 1, &pl), EL_ERR_TOO_LARGE);
    assert_int_equal(el_fuzz_stat_sum(el_fcipher_stats_get(rx)), 0);
    assert_int_equal(el_fcipher_open(rx, f, fl, f + EL_FRAME_HEADER, EL_FRAME_PT_MAX, &pl), EL_OK);
    assert_int_equal(pl, EL_FRAME_PT_MAX);
    /* longer than 262144: truncated (malformed) */
    f[0] = EL_FRAME_DATA;
    assert_int_equal(el_fcipher_open(rx, f, EL_FRAME_MAX + 1, pt, EL_FRAME_PT_MAX + 1, &pl), EL_ERR_INVALID);
    assert_int_equal(el_fcipher_stats_get(rx)->truncated, 1);
    /* an empty plaintext is a valid 25-byte frame at this layer */
    assert_int_equal(el_fcipher_seal(tx, NULL, 0, f, EL_FRAME_OVERHEAD, &fl), EL_OK);
    assert_int_equal(fl, EL_FRAME_OVERHEAD);
    assert_int_equal(el_fcipher_open(rx, f, fl, pt, 0, &pl), EL_OK);
    assert_int_equal(pl, 0);
    free(pt);
    free(f);
    el_fcipher_free(tx);
    el_fcipher_free(rx);
}

static void test_seek_and_odd_input(void **state)
{
    (void)state;
    uint8_t k[32], f[64], p[8];
    size_t pl;
    RAND_bytes(k, sizeof k);
    el_fcipher *tx, *rx;
    assert_int_equal(el_fcipher_new(&tx, k), EL_OK);
    assert_int_equal(el_fcipher_seek(tx, 5), EL_OK);
    assert_int_equal(el_fcipher_counter(tx), 5);
    assert_int_equal(el_fcipher_seek(tx, 4), EL_ERR_INVALID); /* never backwards */
    assert_int_equal(el_fcipher_counter(tx), 5);
    el_fcipher_free(tx);

    /* (Counter exhaustion at 2^64-1 cannot be reached in a test: seek
     * would need 2^48 chained REKEYs.) A frame naming n = 2^64-1 is simply
     * ahead of the receiver. */
    assert_int_equal(el_fcipher_new(&rx, k), EL_OK);
    f[0] = EL_FRAME_DATA;
    memset(f + 1, 0xff, 8);
    memset(f + 9, 0, 16);
    assert_int_equal(el_fcipher_open(rx, f, 25, p, sizeof p, &pl), EL_ERR_STATE);
    assert_int_equal(el_fcipher_stats_get(rx)->reorder, 1);
    f[0] = 0x11;
    assert_int_equal(el_fcipher_open(rx, f, 25, p, sizeof p, &pl), EL_ERR_INVALID);
    assert_int_equal(el_fcipher_open(rx, f, 0, p, sizeof p, &pl), EL_ERR_INVALID);
    assert_int_equal(el_fcipher_stats_get(rx)->truncated, 2);
    assert_int_equal(el_fcipher_counter(rx), 0);
    assert_int_equal(el_fcipher_open(NULL, f, 25, p, sizeof p, &pl), EL_ERR_INVALID);
    assert_int_equal(el_fcipher_new(NULL, k), EL_ERR_INVALID);
    assert_int_equal(el_fcipher_new(&tx, NULL), EL_ERR_INVALID);
    assert_null(tx);
    el_fcipher_free(rx);
    el_fcipher_free(NULL);
}

/* The fuzz seeds, through the fuzz target's own invariants. */
static void test_fuzz_corpus(void **state)
{
    (void)state;
    el_vec_run_corpus("frame", el_fuzz_check_frame, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_vectors),
        cmocka_unit_test(test_bad_frames_vectors),
        cmocka_unit_test(test_rekey_by_sealing),
        cmocka_unit_test(test_limits_and_buffers),
        cmocka_unit_test(test_seek_and_odd_input),
        cmocka_unit_test(test_fuzz_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
