/* test_seal.c - src/crypto/seal (sealed envelopes, §10.3) against
 * tests/vectors/e2ee.json "seal" and "seal_negative", plus round trips,
 * size limits, every truncation and every single-bit flip of an envelope. */
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

#include "base/enc.h"
#include "base/err.h"
#include "crypto/identity.h"
#include "crypto/seal.h"
#include "vectors.h"

/* ---- vectors ---------------------------------------------------------- */

static void test_seal_vectors(void **state)
{
    json_t *doc = *state;
    json_t *vs = el_vec_cases(doc, "seal", 3);
    size_t i;
    json_t *v;
    json_array_foreach(vs, i, v) {
        el_identity *from = el_vec_identity(doc, el_vec_str(v, "sender"));
        el_identity *to = el_vec_identity(doc, el_vec_str(v, "recipient"));
        size_t ptlen, elen, el, n, e32;
        uint8_t *pt = el_vec_hex(el_vec_str(v, "plaintext_hex"), &ptlen);
        uint8_t *want = el_vec_hex(el_vec_str(v, "envelope_hex"), &elen);
        uint8_t *e = el_vec_hex(el_vec_str(v, "e_priv_hex"), &e32);
        uint8_t env[EL_SEAL_MAX], back[EL_SEAL_MAX];
        assert_int_equal(e32, 32);
        assert_int_equal(el_seal_with_ephemeral(from, el_identity_bundle(to), pt, ptlen, env, sizeof env, &el, e),
                         EL_OK);
        assert_int_equal(el, elen);
        if (memcmp(env, want, el) != 0)
            fail_msg("%s: envelope differs from the vector", el_vec_str(v, "name"));
        el_id_bundle sb;
        char pid[33];
        assert_int_equal(el_seal_open(to, want, elen, &sb, pid, back, sizeof back, &n), EL_OK);
        assert_int_equal(n, ptlen);
        assert_memory_equal(back, pt, ptlen);
        assert_memory_equal(&sb, el_identity_bundle(from), sizeof sb);
        json_t *sender = el_vec_identity_entry(doc, el_vec_str(v, "sender"));
        assert_string_equal(pid, el_vec_str(sender, "peer_id"));
        /* random ephemeral: different bytes, same content */
        assert_int_equal(el_seal(from, el_identity_bundle(to), pt, ptlen, env, sizeof env, &el), EL_OK);
        assert_int_equal(el, elen);
        assert_true(memcmp(env, want, el) != 0);
        assert_int_equal(el_seal_open(to, env, el, NULL, NULL, back, ptlen, &n), EL_OK);
        assert_memory_equal(back, pt, ptlen);
        el_identity_free(from);
        el_identity_free(to);
        free(pt);
        free(want);
        free(e);
    }
}

static int reason_code(const char *r)
{
    static const el_vec_code codes[] = {{"malformed", EL_ERR_INVALID},
                                        {"auth", EL_ERR_CRYPTO},
                                        {"signature", EL_ERR_DENIED}};
    return el_vec_code_of(codes, sizeof codes / sizeof codes[0], r, "reason");
}

static void test_seal_negative_vectors(void **state)
{
    json_t *doc = *state;
    json_t *vs = el_vec_cases(doc, "seal_negative", 8);
    size_t i;
    json_t *v;
    int seen[3] = {0};
    json_array_foreach(vs, i, v) {
        el_identity *to = el_vec_identity(doc, el_vec_str(v, "recipient"));
        size_t elen, n = 7;
        uint8_t *env = el_vec_hex(el_vec_str(v, "envelope_hex"), &elen);
        uint8_t pt[EL_SEAL_MAX];
        el_id_bundle sb;
        char pid[33] = "x";
        memset(pt, 0xaa, sizeof pt);
        int rc = el_seal_open(to, env, elen, &sb, pid, pt, sizeof pt, &n);
        const char *want = el_vec_str(v, "expect");
        if (rc != reason_code(want))
            fail_msg("%s: got %s (%d), want %s", el_vec_str(v, "name"), el_seal_reason(rc), rc, want);
        assert_string_equal(el_seal_reason(rc), want);
        assert_int_equal(n, 0);
        assert_string_equal(pid, "");
        el_id_bundle zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&sb, &zero, sizeof sb);
        /* nothing of the envelope leaked into pt */
        for (size_t k = 0; k < 64; k++)
            assert_int_equal(pt[k], 0xaa);
        seen[rc == EL_ERR_INVALID ? 0 : rc == EL_ERR_CRYPTO ? 1 : 2]++;
        el_identity_free(to);
        free(env);
    }
    for (int k = 0; k < 3; k++)
        assert_true(seen[k] > 0);
}

/* ---- behaviour -------------------------------------------------------- */

static void test_limits(void **state)
{
    json_t *doc = *state;
    el_identity *a = el_vec_identity(doc, "alice"), *b = el_vec_identity(doc, "bob");
    uint8_t *pt = malloc(EL_SEAL_PT_MAX + 1), *env = malloc(EL_SEAL_MAX + 1), *back = malloc(EL_SEAL_PT_MAX);
    size_t el, n;
    RAND_bytes(pt, EL_SEAL_PT_MAX + 1);
    pt[0] = 0x02;
    const el_id_bundle *bb = el_identity_bundle(b);
    assert_int_equal(el_seal(a, bb, pt, 0, env, EL_SEAL_MAX, &el), EL_ERR_INVALID);
    assert_int_equal(el_seal(a, bb, pt, EL_SEAL_PT_MAX + 1, env, EL_SEAL_MAX + 1, &el), EL_ERR_TOO_LARGE);
    assert_int_equal(el_seal(a, bb, pt, 10, env, 10 + EL_SEAL_OVERHEAD - 1, &el), EL_ERR_TOO_LARGE);
    assert_int_equal(el_seal(a, bb, pt, EL_SEAL_PT_MAX, env, EL_SEAL_MAX, &el), EL_OK);
    assert_int_equal(el, EL_SEAL_MAX);
    assert_int_equal(el_seal_open(b, env, el, NULL, NULL, back, EL_SEAL_PT_MAX - 1, &n), EL_ERR_TOO_LARGE);
    assert_int_equal(el_seal_open(b, env, el, NULL, NULL, back, EL_SEAL_PT_MAX, &n), EL_OK);
    assert_int_equal(n, EL_SEAL_PT_MAX);
    assert_memory_equal(back, pt, n);
    /* one byte more than 36864 is malformed before any crypto */
    env[EL_SEAL_MAX] = 0;
    assert_int_equal(el_seal_open(b, env, EL_SEAL_MAX + 1, NULL, NULL, back, EL_SEAL_PT_MAX, &n), EL_ERR_INVALID);
    /* a recipient bundle whose sk_sig does not verify is refused */
    el_id_bundle forged = *bb;
    forged.sk[0] ^= 1;
    assert_int_equal(el_seal(a, &forged, pt, 10, env, EL_SEAL_MAX, &el), EL_ERR_CRYPTO);
    assert_int_equal(el, 0);
    free(pt);
    free(env);
    free(back);
    el_identity_free(a);
    el_identity_free(b);
}

/* Every prefix and every single-bit flip of one envelope is refused with a
 * §10.3 reason; none opens. */
static void test_truncations_and_flips(void **state)
{
    json_t *doc = *state;
    el_identity *a = el_vec_identity(doc, "alice"), *b = el_vec_identity(doc, "bob");
    uint8_t env[EL_SEAL_OVERHEAD + 5], back[16];
    size_t el, n;
    assert_int_equal(el_seal(a, el_identity_bundle(b), (const uint8_t *)"\x01{}ab", 5, env, sizeof env, &el), EL_OK);
    for (size_t len = 0; len < el; len++) {
        int rc = el_seal_open(b, env, len, NULL, NULL, back, sizeof back, &n);
        assert_int_equal(rc, len < EL_SEAL_MIN ? EL_ERR_INVALID : EL_ERR_CRYPTO);
    }
    for (size_t bit = 0; bit < el * 8; bit++) {
        env[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = el_seal_open(b, env, el, NULL, NULL, back, sizeof back, &n);
        env[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (rc == EL_OK)
            fail_msg("bit %zu flipped: still opens", bit);
        assert_true(rc == EL_ERR_INVALID || rc == EL_ERR_CRYPTO);
        if (bit < 8)
            assert_int_equal(rc, EL_ERR_INVALID); /* the version byte */
    }
    assert_int_equal(el_seal_open(b, env, el, NULL, NULL, back, sizeof back, &n), EL_OK);
    el_identity_free(a);
    el_identity_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_vectors),
        cmocka_unit_test(test_seal_negative_vectors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_truncations_and_flips),
    };
    return cmocka_run_group_tests(tests, el_vec_setup_e2ee, el_vec_teardown);
}
