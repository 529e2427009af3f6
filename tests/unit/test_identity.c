/* test_identity.c - src/crypto/identity against tests/vectors/identity.json
 * (made by gen-identity.mjs with node:crypto, an independent implementation)
 * plus round trips, bit flips and argument checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/enc.h"
#include "base/err.h"
#include "crypto/identity.h"
#include "vectors.h"

/* ---- helpers ---------------------------------------------------------- */

/* The nonce check the server does before calling el_id_verify_login*. */
static int decode_nonce(const char *text, uint8_t nonce[EL_ID_NONCE_LEN])
{
    if (strlen(text) != EL_ID_NONCE_B64_LEN)
        return EL_ERR_INVALID;
    if (el_b64url_decode(text, EL_ID_NONCE_B64_LEN, nonce, EL_ID_NONCE_LEN) != EL_ID_NONCE_LEN)
        return EL_ERR_INVALID;
    return EL_OK;
}

/* ---- positive vectors ------------------------------------------------- */

static void test_vectors_reproduce(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("identity.json");
    json_t *vectors = el_vec_cases(doc, "vectors", 3);

    size_t i;
    json_t *v;
    json_array_foreach(vectors, i, v) {
        const char *name = el_vec_str(v, "name");
        el_identity *id = el_vec_identity_of(v);
        const el_id_bundle *mine = el_identity_bundle(id);
        char ik[EL_ID_KEY_B64_SIZE], sk[EL_ID_KEY_B64_SIZE], sig[EL_ID_SIG_B64_SIZE];
        char pid[EL_PEER_ID_LEN + 1];
        char err[256] = "";

        /* Derivation from the private seeds. */
        assert_int_equal(el_id_bundle_to_b64(mine, ik, sk, sig), EL_OK);
        assert_string_equal(ik, el_vec_str(v, "ik"));
        assert_string_equal(sk, el_vec_str(v, "sk"));
        assert_string_equal(sig, el_vec_str(v, "sk_sig")); /* Ed25519 is deterministic */
        assert_string_equal(el_identity_peer_id(id), el_vec_str(v, "peer_id"));
        assert_int_equal(el_id_peer_id(mine->ik, pid), EL_OK);
        assert_string_equal(pid, el_vec_str(v, "peer_id"));
        assert_true(el_id_valid_peer_id(pid));

        /* The public side: decode and verify the bundle text. */
        el_id_bundle b;
        int rc = el_id_bundle_from_b64(&b, el_vec_str(v, "ik"), el_vec_str(v, "sk"),
                                       el_vec_str(v, "sk_sig"), err, sizeof err);
        if (rc != EL_OK)
            fail_msg("%s: bundle rejected: %s", name, err);
        assert_memory_equal(&b, mine, sizeof b);
        assert_int_equal(el_id_bundle_verify(&b), EL_OK);

        /* Login: verify the vector's signature, and make the same one. */
        uint8_t nonce[EL_ID_NONCE_LEN], login[EL_ID_SIG_LEN], mysig[EL_ID_SIG_LEN];
        const char *sid = el_vec_str(v, "sid");
        assert_int_equal(decode_nonce(el_vec_str(v, "nonce"), nonce), EL_OK);
        el_vec_b64_exact(el_vec_str(v, "login_sig"), login, sizeof login);
        assert_int_equal(el_id_verify_login(&b, nonce, sid, login), EL_OK);
        assert_int_equal(el_id_verify_login_b64(&b, nonce, sid, el_vec_str(v, "login_sig")), EL_OK);
        assert_int_equal(el_identity_sign_login(id, nonce, sid, mysig), EL_OK);
        assert_memory_equal(mysig, login, sizeof login);
        assert_int_equal(el_identity_sign_login_b64(id, nonce, sid, sig), EL_OK);
        assert_string_equal(sig, el_vec_str(v, "login_sig"));

        /* Secret export gives back exactly the seeds (no clamping). */
        uint8_t want[EL_ID_KEY_LEN], got[EL_ID_KEY_LEN];
        el_vec_hex_exact(el_vec_str(v, "sk_private_hex"), want, sizeof want);
        assert_int_equal(el_identity_sk_private(id, got), EL_OK);
        assert_memory_equal(got, want, sizeof want);
        el_vec_hex_exact(el_vec_str(v, "ik_seed_hex"), want, sizeof want);
        assert_int_equal(el_identity_ik_seed(id, got), EL_OK);
        assert_memory_equal(got, want, sizeof want);

        el_identity_free(id);
    }
    json_decref(doc);
}

/* The domain strings the generator used are the ones the protocol names. */
static void test_domains(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("identity.json");
    json_t *d = json_object_get(doc, "domains_hex");
    static const struct { const char *key, *text; } dom[] = {
        {"static_key", "echolink-v1-static-key"},
        {"peer_id", "echolink-v1-peer-id"},
        {"login", "echolink-v1-login"},
    };
    for (size_t i = 0; i < sizeof dom / sizeof dom[0]; i++) {
        char hex[128];
        /* strlen + 1: the label followed by exactly one 0x00 byte. */
        el_hex_encode((const uint8_t *)dom[i].text, strlen(dom[i].text) + 1, hex, sizeof hex);
        assert_string_equal(hex, el_vec_str(d, dom[i].key));
    }
    json_decref(doc);
}

/* ---- negative vectors ------------------------------------------------- */

static int expected_rc(const char *expect)
{
    if (strcmp(expect, "invalid") == 0)
        return EL_ERR_INVALID;
    if (strcmp(expect, "bad_signature") == 0)
        return EL_ERR_CRYPTO;
    fail_msg("unknown expect \"%s\"", expect);
    return 1;
}

static void test_negative(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("identity.json");
    json_t *neg = json_object_get(doc, "negative");
    assert_true(json_array_size(neg) > 0);
    size_t i, n_bundle = 0, n_login = 0;
    json_t *c;
    json_array_foreach(neg, i, c) {
        const char *name = el_vec_str(c, "name");
        const char *kind = el_vec_str(c, "kind");
        int want = expected_rc(el_vec_str(c, "expect"));
        json_t *field = json_object_get(c, "field");
        char err[256] = "";
        el_id_bundle b;
        memset(&b, 0xa5, sizeof b);
        int rc = el_id_bundle_from_b64(&b, el_vec_str(c, "ik"), el_vec_str(c, "sk"),
                                       el_vec_str(c, "sk_sig"), err, sizeof err);
        if (strcmp(kind, "bundle") == 0) {
            n_bundle++;
            if (rc != want)
                fail_msg("%s: rc %d (%s), want %d", name, rc, err, want);
            /* The error text names the offending field first. */
            const char *f = field ? json_string_value(field) : "sk_sig";
            if (strncmp(err, f, strlen(f)) != 0 || err[strlen(f)] != ':')
                fail_msg("%s: error text \"%s\" does not name %s", name, err, f);
            static const el_id_bundle zero;
            assert_memory_equal(&b, &zero, sizeof b);
            continue;
        }
        assert_string_equal(kind, "login");
        n_login++;
        if (rc != EL_OK)
            fail_msg("%s: its bundle should be valid: %s", name, err);
        uint8_t nonce[EL_ID_NONCE_LEN];
        rc = decode_nonce(el_vec_str(c, "nonce"), nonce);
        if (rc == EL_OK)
            rc = el_id_verify_login_b64(&b, nonce, el_vec_str(c, "sid"), el_vec_str(c, "login_sig"));
        else
            assert_string_equal(json_string_value(field), "nonce");
        if (rc != want)
            fail_msg("%s: rc %d, want %d", name, rc, want);
        /* The binary entry point agrees whenever the signature decodes. */
        uint8_t sig[EL_ID_SIG_LEN];
        const char *sig_text = el_vec_str(c, "login_sig");
        if (decode_nonce(el_vec_str(c, "nonce"), nonce) == EL_OK && strlen(sig_text) == EL_ID_SIG_B64_LEN &&
            el_b64url_decode(sig_text, EL_ID_SIG_B64_LEN, sig, sizeof sig) == EL_ID_SIG_LEN)
            assert_int_equal(el_id_verify_login(&b, nonce, el_vec_str(c, "sid"), sig), EL_ERR_CRYPTO);
    }
    assert_true(n_bundle > 0 && n_login > 0);
    json_decref(doc);
}

static void test_peer_id_syntax(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("identity.json");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "peer_id_syntax"), i, c) {
        const char *s = el_vec_str(c, "s");
        int want = json_is_true(json_object_get(c, "valid"));
        if (el_id_valid_peer_id(s) != want)
            fail_msg("el_id_valid_peer_id(\"%s\") != %d", s, want);
    }
    assert_false(el_id_valid_peer_id(NULL));
    json_decref(doc);
}

/* Every small-order encoding, in both sign-bit spellings, is refused as ik
 * (with the trivial signature that OpenSSL alone would accept) and as R. */
static void test_small_order(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("identity.json");
    json_t *v0 = json_array_get(json_object_get(doc, "vectors"), 0);
    el_identity *id = el_vec_identity_of(v0);
    uint8_t nonce[EL_ID_NONCE_LEN] = {0};
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(doc, "small_order_hex"), i, h) {
        for (int top = 0; top < 2; top++) {
            uint8_t pt[EL_ID_KEY_LEN];
            el_vec_hex_exact(json_string_value(h), pt, sizeof pt);
            pt[31] |= (uint8_t)(top << 7);
            el_id_bundle b = *el_identity_bundle(id);
            memcpy(b.ik, pt, sizeof pt);
            memset(b.sk_sig, 0, sizeof b.sk_sig);
            b.sk_sig[0] = 1; /* R = identity, S = 0 */
            assert_int_equal(el_id_bundle_verify(&b), EL_ERR_CRYPTO);
            uint8_t sig[EL_ID_SIG_LEN];
            memcpy(sig, b.sk_sig, sizeof sig);
            assert_int_equal(el_id_verify_login(&b, nonce, "sid", sig), EL_ERR_CRYPTO);
            /* Honest ik, small-order R. */
            b = *el_identity_bundle(id);
            memcpy(b.sk_sig, pt, sizeof pt);
            assert_int_equal(el_id_bundle_verify(&b), EL_ERR_CRYPTO);
        }
    }
    el_identity_free(id);
    json_decref(doc);
}

/* ---- properties ------------------------------------------------------- */

static void test_generate_round_trip(void **state)
{
    (void)state;
    el_identity *a = NULL, *b = NULL;
    char err[256] = "";
    assert_int_equal(el_identity_generate(&a, err, sizeof err), EL_OK);
    assert_int_equal(el_identity_generate(&b, err, sizeof err), EL_OK);
    assert_memory_not_equal(el_identity_bundle(a)->ik, el_identity_bundle(b)->ik, EL_ID_KEY_LEN);
    assert_string_not_equal(el_identity_peer_id(a), el_identity_peer_id(b));
    assert_true(el_id_valid_peer_id(el_identity_peer_id(a)));

    /* Bundle through text and back, as the server receives it. */
    char ik[EL_ID_KEY_B64_SIZE], sk[EL_ID_KEY_B64_SIZE], sks[EL_ID_SIG_B64_SIZE];
    assert_int_equal(el_id_bundle_to_b64(el_identity_bundle(a), ik, sk, sks), EL_OK);
    assert_int_equal(strlen(ik), EL_ID_KEY_B64_LEN);
    assert_int_equal(strlen(sk), EL_ID_KEY_B64_LEN);
    assert_int_equal(strlen(sks), EL_ID_SIG_B64_LEN);
    el_id_bundle pub;
    assert_int_equal(el_id_bundle_from_b64(&pub, ik, sk, sks, err, sizeof err), EL_OK);
    char pid[EL_PEER_ID_LEN + 1];
    assert_int_equal(el_id_peer_id(pub.ik, pid), EL_OK);
    assert_string_equal(pid, el_identity_peer_id(a));

    uint8_t nonce[EL_ID_NONCE_LEN];
    char sig[EL_ID_SIG_B64_SIZE];
    assert_int_equal(RAND_bytes(nonce, sizeof nonce), 1);
    assert_int_equal(el_identity_sign_login_b64(a, nonce, "Gm7sVb6m8QFSGyq6AAAB", sig), EL_OK);
    assert_int_equal(el_id_verify_login_b64(&pub, nonce, "Gm7sVb6m8QFSGyq6AAAB", sig), EL_OK);
    /* Not for another connection, and not as someone else. */
    assert_int_equal(el_id_verify_login_b64(&pub, nonce, "Gm7sVb6m8QFSGyq6AAAC", sig), EL_ERR_CRYPTO);
    assert_int_equal(el_id_verify_login_b64(el_identity_bundle(b), nonce, "Gm7sVb6m8QFSGyq6AAAB", sig),
                     EL_ERR_CRYPTO);

    /* Saving and reloading the seeds gives the same identity. */
    uint8_t seed[EL_ID_KEY_LEN], skp[EL_ID_KEY_LEN];
    assert_int_equal(el_identity_ik_seed(a, seed), EL_OK);
    assert_int_equal(el_identity_sk_private(a, skp), EL_OK);
    el_identity *c = NULL;
    assert_int_equal(el_identity_new(&c, seed, skp, err, sizeof err), EL_OK);
    OPENSSL_cleanse(seed, sizeof seed);
    OPENSSL_cleanse(skp, sizeof skp);
    assert_memory_equal(el_identity_bundle(c), el_identity_bundle(a), sizeof(el_id_bundle));
    assert_string_equal(el_identity_peer_id(c), el_identity_peer_id(a));

    el_identity_free(a);
    el_identity_free(b);
    el_identity_free(c);
}

/* Flipping any single bit of any signed input or signature breaks it. */
static void test_bit_flips(void **state)
{
    (void)state;
    json_t *doc = el_vec_load("identity.json");
    json_t *v0 = json_array_get(json_object_get(doc, "vectors"), 0);
    el_identity *id = el_vec_identity_of(v0);
    const el_id_bundle good = *el_identity_bundle(id);
    uint8_t nonce[EL_ID_NONCE_LEN], sig[EL_ID_SIG_LEN];
    char sid[] = "Gm7sVb6m8QFSGyq6AAAB";
    assert_int_equal(RAND_bytes(nonce, sizeof nonce), 1);
    assert_int_equal(el_identity_sign_login(id, nonce, sid, sig), EL_OK);
    assert_int_equal(el_id_verify_login(&good, nonce, sid, sig), EL_OK);

    for (size_t bit = 0; bit < 8 * sizeof good; bit++) {
        el_id_bundle b = good;
        ((uint8_t *)&b)[bit / 8] ^= (uint8_t)(1u << bit % 8);
        if (el_id_bundle_verify(&b) != EL_ERR_CRYPTO)
            fail_msg("bundle still verifies with bit %zu flipped", bit);
        if (bit < 8 * EL_ID_KEY_LEN && el_id_verify_login(&b, nonce, sid, sig) != EL_ERR_CRYPTO)
            fail_msg("login verifies under ik with bit %zu flipped", bit);
    }
    for (size_t bit = 0; bit < 8 * sizeof nonce; bit++) {
        nonce[bit / 8] ^= (uint8_t)(1u << bit % 8);
        assert_int_equal(el_id_verify_login(&good, nonce, sid, sig), EL_ERR_CRYPTO);
        nonce[bit / 8] ^= (uint8_t)(1u << bit % 8);
    }
    for (size_t bit = 0; bit < 8 * sizeof sig; bit++) {
        sig[bit / 8] ^= (uint8_t)(1u << bit % 8);
        if (el_id_verify_login(&good, nonce, sid, sig) != EL_ERR_CRYPTO)
            fail_msg("login verifies with signature bit %zu flipped", bit);
        sig[bit / 8] ^= (uint8_t)(1u << bit % 8);
    }
    for (size_t bit = 0; bit < 8 * (sizeof sid - 1); bit++) {
        sid[bit / 8] ^= (char)(1u << bit % 8);
        /* Either an unacceptable sid or a different message: both fail. */
        if (sid[bit / 8] != '\0')
            assert_int_equal(el_id_verify_login(&good, nonce, sid, sig), EL_ERR_CRYPTO);
        sid[bit / 8] ^= (char)(1u << bit % 8);
    }
    assert_int_equal(el_id_verify_login(&good, nonce, sid, sig), EL_OK);
    el_identity_free(id);
    json_decref(doc);
}

/* ---- argument handling ------------------------------------------------ */

static void test_arguments(void **state)
{
    (void)state;
    char err[256];
    el_id_bundle b;
    el_identity *id = NULL;
    uint8_t k[EL_ID_KEY_LEN] = {7}, nonce[EL_ID_NONCE_LEN] = {0}, sig[EL_ID_SIG_LEN];
    char text[EL_ID_SIG_B64_SIZE];

    el_identity_free(NULL);
    assert_int_equal(el_identity_new(NULL, k, k, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_identity_new(&id, NULL, k, err, sizeof err), EL_ERR_INVALID);
    assert_null(id);
    assert_int_equal(el_identity_generate(NULL, NULL, 0), EL_ERR_INVALID);

    /* Missing fields are named. */
    assert_int_equal(el_id_bundle_from_b64(&b, NULL, "", "", err, sizeof err), EL_ERR_INVALID);
    assert_string_equal(err, "ik: missing");
    assert_int_equal(el_id_bundle_from_b64(NULL, "", "", "", NULL, 0), EL_ERR_INVALID);
    /* A very long field is reported without reading all of it. */
    char big[4096];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(el_id_bundle_from_b64(&b, big, big, big, err, sizeof err), EL_ERR_INVALID);
    assert_non_null(strstr(err, "ik: expected 43"));
    /* A tiny error buffer is still NUL-terminated. */
    char tiny[4];
    assert_int_equal(el_id_bundle_from_b64(&b, "x", "x", "x", tiny, sizeof tiny), EL_ERR_INVALID);
    assert_string_equal(tiny, "ik:");

    assert_int_equal(el_identity_new(&id, k, k, err, sizeof err), EL_OK);
    /* sid: 1..128 printable ASCII characters. */
    char sid[EL_ID_SID_MAX + 2];
    memset(sid, 'a', sizeof sid - 1);
    sid[sizeof sid - 1] = '\0'; /* 129 characters */
    assert_int_equal(el_identity_sign_login(id, nonce, sid, sig), EL_ERR_INVALID);
    sid[EL_ID_SID_MAX] = '\0';  /* 128: fine */
    assert_int_equal(el_identity_sign_login(id, nonce, sid, sig), EL_OK);
    assert_int_equal(el_id_verify_login(el_identity_bundle(id), nonce, sid, sig), EL_OK);
    assert_int_equal(el_identity_sign_login(id, nonce, "", sig), EL_ERR_INVALID);
    assert_int_equal(el_identity_sign_login(id, nonce, "a b", sig), EL_ERR_INVALID);
    assert_int_equal(el_identity_sign_login(id, nonce, "caf\xc3\xa9", sig), EL_ERR_INVALID);
    assert_int_equal(el_identity_sign_login(id, nonce, NULL, sig), EL_ERR_INVALID);
    assert_int_equal(el_identity_sign_login_b64(id, nonce, "", text), EL_ERR_INVALID);
    assert_string_equal(text, "");
    assert_int_equal(el_id_verify_login(el_identity_bundle(id), nonce, NULL, sig), EL_ERR_CRYPTO);
    assert_int_equal(el_id_verify_login(NULL, nonce, "a", sig), EL_ERR_CRYPTO);
    assert_int_equal(el_id_verify_login_b64(el_identity_bundle(id), nonce, "a", NULL), EL_ERR_INVALID);
    assert_int_equal(el_id_verify_login_b64(el_identity_bundle(id), nonce, "a", "AAAA"), EL_ERR_INVALID);
    assert_int_equal(el_id_bundle_verify(NULL), EL_ERR_CRYPTO);

    char pid[EL_PEER_ID_LEN + 1] = "x";
    assert_int_equal(el_id_peer_id(NULL, pid), EL_ERR_INVALID);
    assert_string_equal(pid, "");
    assert_null(el_identity_bundle(NULL));
    assert_null(el_identity_peer_id(NULL));
    assert_int_equal(el_identity_sk_private(NULL, k), EL_ERR_INVALID);
    el_identity_free(id);
}

/* The public key-file calls of include/echolink/el_identity.h. */
static void test_key_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/el-idfile-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char plain[256], sealed[256], missing[256];
    snprintf(plain, sizeof plain, "%s/plain.key", dir);
    snprintf(sealed, sizeof sealed, "%s/sealed.key", dir);
    snprintf(missing, sizeof missing, "%s/none.key", dir);
    char err[256];
    el_identity *id = NULL, *back = NULL, *other = NULL;
    assert_int_equal(el_identity_generate(&id, err, sizeof err), EL_OK);

    /* unencrypted and encrypted round trips keep the peer ID; mode 0600 */
    assert_int_equal(el_identity_save(id, plain, NULL, 0, err, sizeof err), EL_OK);
    struct stat st;
    assert_int_equal(stat(plain, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(el_identity_load(plain, NULL, &back, err, sizeof err), EL_OK);
    assert_string_equal(el_identity_peer_id(back), el_identity_peer_id(id));
    el_identity_free(back);
    back = NULL;
    assert_int_equal(el_identity_save(id, sealed, "correct horse", 0, err, sizeof err), EL_OK);
    assert_int_equal(el_identity_load(sealed, "correct horse", &back, err, sizeof err), EL_OK);
    assert_string_equal(el_identity_peer_id(back), el_identity_peer_id(id));
    el_identity_free(back);
    back = NULL;

    /* an identity is never overwritten by accident; REPLACE does it */
    assert_int_equal(el_identity_generate(&other, err, sizeof err), EL_OK);
    assert_true(el_identity_save(other, plain, NULL, 0, err, sizeof err) < 0);
    assert_int_equal(el_identity_load(plain, NULL, &back, err, sizeof err), EL_OK);
    assert_string_equal(el_identity_peer_id(back), el_identity_peer_id(id));
    el_identity_free(back);
    back = NULL;
    assert_int_equal(el_identity_save(other, plain, NULL, EL_IDENTITY_REPLACE, err, sizeof err), EL_OK);
    assert_int_equal(el_identity_load(plain, NULL, &back, err, sizeof err), EL_OK);
    assert_string_equal(el_identity_peer_id(back), el_identity_peer_id(other));
    el_identity_free(back);
    back = NULL;

    /* refused: no passphrase or a wrong one, a file others can read, no file */
    assert_true(el_identity_load(sealed, NULL, &back, err, sizeof err) < 0);
    assert_null(back);
    assert_true(strlen(err) > 0);
    assert_true(el_identity_load(sealed, "wrong", &back, err, sizeof err) < 0);
    assert_null(back);
    assert_int_equal(chmod(plain, 0644), 0);
    assert_true(el_identity_load(plain, NULL, &back, err, sizeof err) < 0);
    assert_null(back);
    assert_true(el_identity_load(missing, NULL, &back, err, sizeof err) < 0);
    assert_null(back);

    el_identity_free(id);
    el_identity_free(other);
    unlink(plain);
    unlink(sealed);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_reproduce),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_negative),
        cmocka_unit_test(test_peer_id_syntax),
        cmocka_unit_test(test_small_order),
        cmocka_unit_test(test_generate_round_trip),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
