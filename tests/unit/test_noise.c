/* test_noise.c - src/crypto/noise against the published Noise vectors for
 * Noise_XX_25519_AESGCM_SHA256 and Noise_X_25519_AESGCM_SHA256
 * (tests/vectors/noise.json: cacophony and snow), plus the CipherState
 * rules (nonce on failure, the reserved nonce, REKEY), out-of-turn calls,
 * and low-order keys. */
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
#include "crypto/noise.h"
#include "vectors.h"

/* ---- published vectors ------------------------------------------------ */

static void run_vector(json_t *v)
{
    const char *name = el_vec_str(v, "protocol_name");
    int xx = strcmp(name, "Noise_XX_25519_AESGCM_SHA256") == 0;
    if (!xx && strcmp(name, "Noise_X_25519_AESGCM_SHA256") != 0)
        fail_msg("unexpected protocol %s", name);
    el_noise_pattern pat = xx ? EL_NOISE_XX : EL_NOISE_X;
    size_t plen_i, plen_r;
    uint8_t *pro_i = el_vec_hex(el_vec_str(v, "init_prologue"), &plen_i);
    uint8_t *pro_r = el_vec_hex(el_vec_str(v, "resp_prologue"), &plen_r);
    uint8_t si[32], sr[32], ei[32], er[32], rs[32];
    el_vec_hex32(el_vec_str(v, "init_static"), si);
    el_vec_hex32(el_vec_str(v, "resp_static"), sr);
    el_vec_hex32(el_vec_str(v, "init_ephemeral"), ei);
    if (!xx)
        el_vec_hex32(el_vec_str(v, "init_remote_static"), rs);

    el_noise *ini = NULL, *res = NULL;
    assert_int_equal(el_noise_new(&ini, pat, 1, pro_i, plen_i, si, NULL, xx ? NULL : rs), EL_OK);
    assert_int_equal(el_noise_new(&res, pat, 0, pro_r, plen_r, sr, xx ? NULL : rs /* known public half */, NULL), EL_OK);
    assert_int_equal(el_noise_set_ephemeral(ini, ei), EL_OK);
    if (el_vec_has(v, "resp_ephemeral")) {
        el_vec_hex32(el_vec_str(v, "resp_ephemeral"), er);
        assert_int_equal(el_noise_set_ephemeral(res, er), EL_OK);
    }

    json_t *msgs = json_object_get(v, "messages");
    size_t nhs = xx ? 3 : 1;
    assert_true(json_array_size(msgs) > nhs);
    el_noise_cipher *c1s = NULL, *c1r = NULL, *c2s = NULL, *c2r = NULL;
    uint8_t buf[1024], back[1024];
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        size_t pl, cl, outlen = 0, backlen = 0;
        uint8_t *payload = el_vec_hex(el_vec_str(m, "payload"), &pl);
        uint8_t *ct = el_vec_hex(el_vec_str(m, "ciphertext"), &cl);
        int from_init = xx ? (i % 2 == 0) : 1;
        if (i < nhs) {
            el_noise *w = from_init ? ini : res, *r = from_init ? res : ini;
            assert_true(el_noise_my_turn(w));
            assert_false(el_noise_my_turn(r));
            assert_int_equal(el_noise_write_message(w, payload, pl, buf, sizeof buf, &outlen), EL_OK);
            assert_int_equal(outlen, cl);
            assert_memory_equal(buf, ct, cl);
            assert_int_equal(el_noise_read_message(r, buf, outlen, back, sizeof back, &backlen), EL_OK);
            assert_int_equal(backlen, pl);
            assert_memory_equal(back, payload, pl);
            if (i == nhs - 1) {
                uint8_t k1[32], k2[32], k1b[32], k2b[32];
                assert_true(el_noise_is_complete(ini) && el_noise_is_complete(res));
                assert_memory_equal(el_noise_hash(ini), el_noise_hash(res), 32);
                if (el_vec_has(v, "handshake_hash"))
                    el_vec_assert_hex(el_noise_hash(ini), 32, el_vec_str(v, "handshake_hash"),
                                      "handshake hash");
                /* each side learned the other's static key */
                assert_non_null(el_noise_remote_static(res));
                assert_int_equal(el_noise_split(ini, k1, k2), EL_OK);
                assert_int_equal(el_noise_split(res, k1b, k2b), EL_OK);
                assert_memory_equal(k1, k1b, 32);
                assert_memory_equal(k2, k2b, 32);
                assert_int_equal(el_noise_split(ini, k1, k2), EL_ERR_STATE); /* once */
                assert_int_equal(el_noise_cipher_new(&c1s), EL_OK);
                assert_int_equal(el_noise_cipher_new(&c1r), EL_OK);
                assert_int_equal(el_noise_cipher_new(&c2s), EL_OK);
                assert_int_equal(el_noise_cipher_new(&c2r), EL_OK);
                assert_int_equal(el_noise_cipher_set_key(c1s, k1), EL_OK);
                assert_int_equal(el_noise_cipher_set_key(c1r, k1), EL_OK);
                assert_int_equal(el_noise_cipher_set_key(c2s, k2), EL_OK);
                assert_int_equal(el_noise_cipher_set_key(c2r, k2), EL_OK);
            }
        } else {
            el_noise_cipher *s = from_init ? c1s : c2s, *r = from_init ? c1r : c2r;
            assert_int_equal(el_noise_cipher_encrypt(s, NULL, 0, payload, pl, buf, sizeof buf, &outlen), EL_OK);
            assert_int_equal(outlen, cl);
            assert_memory_equal(buf, ct, cl);
            assert_int_equal(el_noise_cipher_decrypt(r, NULL, 0, buf, outlen, back, sizeof back, &backlen), EL_OK);
            assert_int_equal(backlen, pl);
            assert_memory_equal(back, payload, pl);
        }
        free(payload);
        free(ct);
    }
    el_noise_cipher_free(c1s);
    el_noise_cipher_free(c1r);
    el_noise_cipher_free(c2s);
    el_noise_cipher_free(c2r);
    el_noise_free(ini);
    el_noise_free(res);
    free(pro_i);
    free(pro_r);
}

static void test_published_vectors(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("noise.json");
    json_t *vs = json_object_get(doc, "vectors");
    size_t i, nxx = 0, nx = 0;
    json_t *v;
    json_array_foreach(vs, i, v) {
        run_vector(v);
        if (strstr(el_vec_str(v, "protocol_name"), "_XX_"))
            nxx++;
        else
            nx++;
    }
    assert_true(nxx >= 2 && nx >= 2);
    json_decref(doc);
}

/* ---- two-step API and the hash the payload is encrypted under ---------- */

static void test_two_step_matches_one_step(void **state)
{
    (void)state;
    uint8_t si[32], sr[32], ei[32], er[32];
    RAND_bytes(si, 32);
    RAND_bytes(sr, 32);
    RAND_bytes(ei, 32);
    RAND_bytes(er, 32);
    el_noise *a1, *a2, *b;
    assert_int_equal(el_noise_new(&a1, EL_NOISE_XX, 1, (const uint8_t *)"p", 1, si, NULL, NULL), EL_OK);
    assert_int_equal(el_noise_new(&a2, EL_NOISE_XX, 1, (const uint8_t *)"p", 1, si, NULL, NULL), EL_OK);
    assert_int_equal(el_noise_new(&b, EL_NOISE_XX, 0, (const uint8_t *)"p", 1, sr, NULL, NULL), EL_OK);
    el_noise_set_ephemeral(a1, ei);
    el_noise_set_ephemeral(a2, ei);
    el_noise_set_ephemeral(b, er);
    uint8_t m1[128], m1b[128], m2[256], pl[64];
    size_t n1, n1b, t, p, n2, pln, used;
    assert_int_equal(el_noise_write_message(a1, (const uint8_t *)"hi", 2, m1, sizeof m1, &n1), EL_OK);
    assert_int_equal(el_noise_write_tokens(a2, m1b, sizeof m1b, &t), EL_OK);
    assert_int_equal(t, 32);
    /* payload before tokens, or tokens twice, are out of turn */
    assert_int_equal(el_noise_write_tokens(a2, m1b, sizeof m1b, &used), EL_ERR_STATE);
    assert_int_equal(el_noise_write_payload(a2, (const uint8_t *)"hi", 2, m1b + t, sizeof m1b - t, &p), EL_OK);
    n1b = t + p;
    assert_int_equal(n1, n1b);
    assert_memory_equal(m1, m1b, n1);
    assert_memory_equal(el_noise_hash(a1), el_noise_hash(a2), 32);

    /* Responder: the h seen between tokens and payload is the AD of the
     * payload encryption on both sides. */
    assert_int_equal(el_noise_read_tokens(b, m1, n1, &used), EL_OK);
    assert_int_equal(used, 32);
    assert_int_equal(el_noise_read_payload(b, m1 + used, n1 - used, pl, sizeof pl, &pln), EL_OK);
    assert_int_equal(pln, 2);
    assert_int_equal(el_noise_write_tokens(b, m2, sizeof m2, &t), EL_OK);
    assert_int_equal(t, 32 + 48);
    uint8_t hb[32];
    memcpy(hb, el_noise_hash(b), 32);
    assert_int_equal(el_noise_write_payload(b, (const uint8_t *)"yo", 2, m2 + t, sizeof m2 - t, &p), EL_OK);
    assert_int_equal(el_noise_read_tokens(a1, m2, t + p, &used), EL_OK);
    assert_int_equal(used, 80);
    assert_memory_equal(el_noise_hash(a1), hb, 32);
    assert_non_null(el_noise_remote_static(a1));
    assert_null(el_noise_remote_static(a2));
    el_noise_free(a1);
    el_noise_free(a2);
    el_noise_free(b);
}

/* ---- failures --------------------------------------------------------- */

static void test_out_of_turn_and_dead_after_failure(void **state)
{
    (void)state;
    uint8_t si[32], sr[32], buf[256], pl[256];
    size_t n, pn;
    RAND_bytes(si, 32);
    RAND_bytes(sr, 32);
    el_noise *a, *b;
    assert_int_equal(el_noise_new(&a, EL_NOISE_XX, 1, NULL, 0, si, NULL, NULL), EL_OK);
    assert_int_equal(el_noise_new(&b, EL_NOISE_XX, 0, NULL, 0, sr, NULL, NULL), EL_OK);
    /* the responder cannot write first, the initiator cannot read first */
    assert_int_equal(el_noise_write_message(b, NULL, 0, buf, sizeof buf, &n), EL_ERR_STATE);
    assert_int_equal(el_noise_read_message(a, buf, 32, pl, sizeof pl, &pn), EL_ERR_STATE);
    /* too small an output buffer is an argument error, not a failure */
    assert_int_equal(el_noise_write_message(a, NULL, 0, buf, 31, &n), EL_ERR_TOO_LARGE);
    assert_int_equal(el_noise_write_message(a, NULL, 0, buf, sizeof buf, &n), EL_OK);
    assert_int_equal(n, 32);
    assert_int_equal(el_noise_read_message(b, buf, n, pl, sizeof pl, &pn), EL_OK);
    assert_int_equal(el_noise_write_message(b, NULL, 0, buf, sizeof buf, &n), EL_OK);
    assert_int_equal(n, 32 + 48 + 16);
    buf[40] ^= 1; /* inside AEAD(s) */
    assert_int_equal(el_noise_read_message(a, buf, n, pl, sizeof pl, &pn), EL_ERR_CRYPTO);
    buf[40] ^= 1;
    /* dead: even the genuine message is refused now */
    assert_int_equal(el_noise_read_message(a, buf, n, pl, sizeof pl, &pn), EL_ERR_STATE);
    assert_int_equal(el_noise_write_message(a, NULL, 0, buf, sizeof buf, &n), EL_ERR_STATE);
    el_noise_free(a);
    el_noise_free(b);
}

/* A low-order public key (here the point of order 8 with u =
 * 0xe0eb7a7c...) makes the DH output zero: EL_ERR_INVALID. */
static void test_low_order_ephemeral(void **state)
{
    (void)state;
    uint8_t sr[32], m1[33], out[256];
    size_t n, pn;
    size_t l;
    uint8_t *lo = el_vec_hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", &l);
    RAND_bytes(sr, 32);
    el_noise *b;
    assert_int_equal(el_noise_new(&b, EL_NOISE_XX, 0, NULL, 0, sr, NULL, NULL), EL_OK);
    memcpy(m1, lo, 32);
    assert_int_equal(el_noise_read_message(b, m1, 32, out, sizeof out, &pn), EL_OK);
    assert_int_equal(el_noise_write_message(b, NULL, 0, out, sizeof out, &n), EL_ERR_INVALID);
    el_noise_free(b);
    /* all-zero key too */
    memset(m1, 0, sizeof m1);
    assert_int_equal(el_noise_new(&b, EL_NOISE_XX, 0, NULL, 0, sr, NULL, NULL), EL_OK);
    assert_int_equal(el_noise_read_message(b, m1, 32, out, sizeof out, &pn), EL_OK);
    assert_int_equal(el_noise_write_message(b, NULL, 0, out, sizeof out, &n), EL_ERR_INVALID);
    el_noise_free(b);
    free(lo);
}

static void test_cipher_rules(void **state)
{
    (void)state;
    uint8_t k[32], ct[64], pt[64];
    size_t n, pn;
    RAND_bytes(k, 32);
    el_noise_cipher *s, *r;
    assert_int_equal(el_noise_cipher_new(&s), EL_OK);
    assert_int_equal(el_noise_cipher_new(&r), EL_OK);
    /* without a key, data passes through unchanged */
    assert_false(el_noise_cipher_has_key(s));
    assert_int_equal(el_noise_cipher_encrypt(s, NULL, 0, (const uint8_t *)"abc", 3, ct, sizeof ct, &n), EL_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(ct, "abc", 3);
    el_noise_cipher_set_key(s, k);
    el_noise_cipher_set_key(r, k);
    assert_int_equal(el_noise_cipher_encrypt(s, (const uint8_t *)"ad", 2, (const uint8_t *)"abc", 3, ct, sizeof ct, &n), EL_OK);
    assert_int_equal(n, 19);
    assert_int_equal(el_noise_cipher_nonce(s), 1);
    /* wrong AD: refused, nonce unchanged, output wiped */
    memset(pt, 0x55, sizeof pt);
    assert_int_equal(el_noise_cipher_decrypt(r, (const uint8_t *)"ae", 2, ct, n, pt, sizeof pt, &pn), EL_ERR_CRYPTO);
    assert_int_equal(el_noise_cipher_nonce(r), 0);
    assert_int_equal(pt[0] | pt[1] | pt[2], 0);
    assert_int_equal(el_noise_cipher_decrypt(r, (const uint8_t *)"ad", 2, ct, n, pt, sizeof pt, &pn), EL_OK);
    assert_int_equal(pn, 3);
    assert_memory_equal(pt, "abc", 3);
    /* in place */
    assert_int_equal(el_noise_cipher_encrypt(s, NULL, 0, (const uint8_t *)"xyz", 3, ct, sizeof ct, &n), EL_OK);
    assert_int_equal(el_noise_cipher_decrypt(r, NULL, 0, ct, n, ct, sizeof ct, &pn), EL_OK);
    assert_memory_equal(ct, "xyz", 3);
    /* the reserved nonce 2^64-1 */
    el_noise_cipher_set_nonce(s, UINT64_MAX);
    assert_int_equal(el_noise_cipher_encrypt(s, NULL, 0, pt, 1, ct, sizeof ct, &n), EL_ERR_STATE);
    el_noise_cipher_set_nonce(s, UINT64_MAX - 1);
    assert_int_equal(el_noise_cipher_encrypt(s, NULL, 0, pt, 1, ct, sizeof ct, &n), EL_OK);
    /* rekey changes the key, keeps the nonce, and both sides agree */
    el_noise_cipher_set_nonce(s, 5);
    el_noise_cipher_set_nonce(r, 5);
    assert_int_equal(el_noise_cipher_rekey(s), EL_OK);
    assert_int_equal(el_noise_cipher_nonce(s), 5);
    assert_int_equal(el_noise_cipher_encrypt(s, NULL, 0, (const uint8_t *)"q", 1, ct, sizeof ct, &n), EL_OK);
    assert_int_equal(el_noise_cipher_decrypt(r, NULL, 0, ct, n, pt, sizeof pt, &pn), EL_ERR_CRYPTO);
    assert_int_equal(el_noise_cipher_rekey(r), EL_OK);
    assert_int_equal(el_noise_cipher_decrypt(r, NULL, 0, ct, n, pt, sizeof pt, &pn), EL_OK);
    assert_int_equal(pt[0], 'q');
    /* shorter than a tag never authenticates */
    assert_int_equal(el_noise_cipher_decrypt(r, NULL, 0, ct, 15, pt, sizeof pt, &pn), EL_ERR_CRYPTO);
    el_noise_cipher_free(s);
    el_noise_cipher_free(r);
    el_noise_cipher_free(NULL);
    el_noise_free(NULL);
}

/* REKEY against e2ee.json "rekey" (generated independently with node:crypto). */
static void test_rekey_vectors(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("e2ee.json");
    json_t *vs = el_vec_cases(doc, "rekey", 3);
    size_t i;
    json_t *v;
    json_array_foreach(vs, i, v) {
        uint8_t k[32], want[32], ct[64];
        size_t n;
        el_vec_hex32(el_vec_str(v, "key_hex"), k);
        el_vec_hex32(el_vec_str(v, "rekeyed_hex"), want);
        el_noise_cipher *a, *b;
        assert_int_equal(el_noise_cipher_new(&a), EL_OK);
        assert_int_equal(el_noise_cipher_new(&b), EL_OK);
        el_noise_cipher_set_key(a, k);
        el_noise_cipher_set_key(b, want);
        assert_int_equal(el_noise_cipher_rekey(a), EL_OK);
        /* same key <=> same ciphertext under the same nonce */
        assert_int_equal(el_noise_cipher_encrypt(a, NULL, 0, k, 32, ct, sizeof ct, &n), EL_OK);
        uint8_t ct2[64];
        assert_int_equal(el_noise_cipher_encrypt(b, NULL, 0, k, 32, ct2, sizeof ct2, &n), EL_OK);
        assert_memory_equal(ct, ct2, n);
        el_noise_cipher_free(a);
        el_noise_cipher_free(b);
    }
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_vectors),
        cmocka_unit_test(test_two_step_matches_one_step),
        cmocka_unit_test(test_out_of_turn_and_dead_after_failure),
        cmocka_unit_test(test_low_order_ephemeral),
        cmocka_unit_test(test_cipher_rules),
        cmocka_unit_test(test_rekey_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
