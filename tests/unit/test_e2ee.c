/* test_e2ee.c - src/crypto/e2ee (the §9 handshake and §9.2 channel keys)
 * against tests/vectors/e2ee.json "handshake", "handshake_negative" and
 * "handshake_negative_responder", plus two el_hs talking in memory, MITM,
 * ABORT handling (also after done), messages at the wrong time, the timeout
 * API, labels, and the fuzz seeds of tests/fuzz/corpus/hs through
 * fuzz_hs.c's invariants. */
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
#include "crypto/e2ee.h"
#include "crypto/frame.h"
#include "crypto/identity.h"

#define EL_FUZZ_NO_MAIN
#include "../fuzz/fuzz_hs.c"

/* ---- helpers ---------------------------------------------------------- */

static el_hs_fail fail_code(const char *s)
{
    static const char *names[] = {"none", "binding", "identity", "signature", "malformed", "timeout",
                                  "unexpected", "aborted"};
    for (int i = 0; i < 8; i++)
        if (strcmp(s, names[i]) == 0)
            return (el_hs_fail)i;
    fail_msg("unknown outcome %s", s);
    return EL_HS_FAIL_NONE;
}

/* The channel ciphers of a done handshake use exactly these keys: a frame
 * sealed by tx equals one sealed with want_tx, and rx opens a frame sealed
 * with want_rx (AES-GCM is deterministic for a given key and nonce). */
static void check_channel(const el_hs *hs, const char *label, const uint8_t want_tx[32],
                          const uint8_t want_rx[32])
{
    static const uint8_t pt[] = "\x01{\"t\":\"CHAT\"}";
    uint8_t f1[64], f2[64], back[64];
    size_t l1, l2, bl;
    el_fcipher *tx, *rx, *ref_tx, *ref_rx;
    assert_int_equal(el_hs_channel(hs, label, &tx, &rx), EL_OK);
    assert_int_equal(el_fcipher_new(&ref_tx, want_tx), EL_OK);
    assert_int_equal(el_fcipher_new(&ref_rx, want_rx), EL_OK);
    assert_int_equal(el_fcipher_seal(tx, pt, sizeof pt - 1, f1, sizeof f1, &l1), EL_OK);
    assert_int_equal(el_fcipher_seal(ref_tx, pt, sizeof pt - 1, f2, sizeof f2, &l2), EL_OK);
    assert_int_equal(l1, l2);
    if (memcmp(f1, f2, l1) != 0)
        fail_msg("channel %s: tx key differs", label);
    assert_int_equal(el_fcipher_seal(ref_rx, pt, sizeof pt - 1, f2, sizeof f2, &l2), EL_OK);
    if (el_fcipher_open(rx, f2, l2, back, sizeof back, &bl) != EL_OK)
        fail_msg("channel %s: rx key differs", label);
    assert_memory_equal(back, pt, sizeof pt - 1);
    el_fcipher_free(tx);
    el_fcipher_free(rx);
    el_fcipher_free(ref_tx);
    el_fcipher_free(ref_rx);
}

/* ---- positive vectors ------------------------------------------------- */

static void test_handshake_vectors(void **state)
{
    json_t *doc = *state;
    json_t *vs = el_vec_cases(doc, "handshake", 3);
    size_t i;
    json_t *v;
    json_array_foreach(vs, i, v) {
        const char *name = el_vec_str(v, "name");
        el_identity *ii = el_vec_identity(doc, el_vec_str(v, "initiator"));
        el_identity *rr = el_vec_identity(doc, el_vec_str(v, "responder"));
        uint8_t fpi[32], fpr[32], ei[32], er[32];
        el_vec_hex32(el_vec_str(v, "fp_i_hex"), fpi);
        el_vec_hex32(el_vec_str(v, "fp_r_hex"), fpr);
        el_vec_hex32(el_vec_str(v, "e_i_priv_hex"), ei);
        el_vec_hex32(el_vec_str(v, "e_r_priv_hex"), er);
        /* the prologue of §9 */
        uint8_t pro[18 + 64];
        memcpy(pro, "echolink-v1-noise", 18);
        memcpy(pro + 18, fpi, 32);
        memcpy(pro + 50, fpr, 32);
        el_vec_assert_hex(pro, sizeof pro, el_vec_str(v, "prologue_hex"), "prologue");

        el_hs *hi, *hr;
        assert_int_equal(el_hs_new(&hi, EL_HS_INITIATOR, ii, el_identity_peer_id(rr), fpi, fpr), EL_OK);
        assert_int_equal(el_hs_new(&hr, EL_HS_RESPONDER, rr, el_identity_peer_id(ii), fpi, fpr), EL_OK);
        assert_int_equal(el_hs_set_ephemeral(hi, ei), EL_OK);
        assert_int_equal(el_hs_set_ephemeral(hr, er), EL_OK);
        uint8_t m1[EL_HS_MSG_MAX], m2[EL_HS_MSG_MAX], m3[EL_HS_MSG_MAX], m4[EL_HS_MSG_MAX];
        size_t n1, n2, n3, n4;
        assert_int_equal(el_hs_start(hi, m1, sizeof m1, &n1), EL_OK);
        el_vec_assert_hex(m1, n1, el_vec_str(v, "hs1_hex"), name);
        assert_int_equal(el_hs_recv(hr, m1, n1, m2, sizeof m2, &n2), EL_OK);
        el_vec_assert_hex(m2, n2, el_vec_str(v, "hs2_hex"), name);
        assert_false(el_hs_is_done(hr));
        assert_int_equal(el_hs_recv(hi, m2, n2, m3, sizeof m3, &n3), EL_OK);
        el_vec_assert_hex(m3, n3, el_vec_str(v, "hs3_hex"), name);
        assert_true(el_hs_is_done(hi));
        assert_int_equal(el_hs_recv(hr, m3, n3, m4, sizeof m4, &n4), EL_OK);
        assert_int_equal(n4, 0);
        assert_true(el_hs_is_done(hr));
        el_vec_assert_hex(el_hs_hash(hi), 32, el_vec_str(v, "h_hex"), "h (initiator)");
        el_vec_assert_hex(el_hs_hash(hr), 32, el_vec_str(v, "h_hex"), "h (responder)");
        assert_memory_equal(el_hs_remote_bundle(hi), el_identity_bundle(rr), sizeof(el_id_bundle));
        assert_memory_equal(el_hs_remote_bundle(hr), el_identity_bundle(ii), sizeof(el_id_bundle));
        assert_int_equal(el_hs_failure(hi), EL_HS_FAIL_NONE);
        assert_string_equal(el_hs_error(hi), "");

        /* channel keys; k_ir/k_ri enter only through them (HKDF of each) */
        json_t *chans = el_vec_cases(v, "channels", 1);
        size_t j;
        json_t *c;
        json_array_foreach(chans, j, c) {
            uint8_t kir[32], kri[32];
            const char *label = el_vec_str(c, "label");
            assert_true(el_hs_valid_label(label));
            el_vec_hex32(el_vec_str(c, "key_ir_hex"), kir);
            el_vec_hex32(el_vec_str(c, "key_ri_hex"), kri);
            check_channel(hi, label, kir, kri);
            check_channel(hr, label, kri, kir);
        }
        el_hs_free(hi);
        el_hs_free(hr);
        el_identity_free(ii);
        el_identity_free(rr);
    }
}

/* ---- negative vectors ------------------------------------------------- */

static void check_failed(el_hs *hs, int rc, const uint8_t *out, size_t outlen, el_hs_fail want,
                         const uint8_t *input, size_t inlen, const char *name)
{
    if (rc == EL_OK || el_hs_failure(hs) != want)
        fail_msg("%s: rc %d, failure %d (%s), want %d", name, rc, el_hs_failure(hs), el_hs_error(hs), want);
    assert_false(el_hs_is_done(hs));
    assert_null(el_hs_remote_bundle(hs));
    assert_null(el_hs_hash(hs));
    if (want == EL_HS_FAIL_ABORTED) {
        assert_int_equal(rc, EL_ERR_DENIED);
        assert_int_equal(outlen, 0);
        assert_int_equal(el_hs_peer_reason(hs), input[1]);
        assert_true(strncmp(el_hs_error(hs), "peer aborted: ", 14) == 0);
    } else {
        assert_int_equal(outlen, 2);
        assert_int_equal(out[0], EL_HS_ABORT);
        assert_int_equal(out[1], want);
        assert_int_equal(rc, want == EL_HS_FAIL_MALFORMED ? EL_ERR_INVALID
                             : want == EL_HS_FAIL_UNEXPECTED ? EL_ERR_STATE : EL_ERR_CRYPTO);
    }
    /* final: the ABORT goes out once, nothing works afterwards */
    uint8_t again[EL_HS_MSG_MAX];
    size_t al = 9;
    assert_int_equal(el_hs_recv(hs, input, inlen, again, sizeof again, &al), EL_ERR_STATE);
    assert_int_equal(al, 0);
    assert_int_equal(el_hs_timeout(hs, again, sizeof again, &al), EL_ERR_STATE);
    el_fcipher *tx, *rx;
    assert_int_equal(el_hs_channel(hs, "chat", &tx, &rx), EL_ERR_STATE);
}

static void test_handshake_negative_initiator(void **state)
{
    json_t *doc = *state;
    json_t *vs = el_vec_cases(doc, "handshake_negative", 8);
    static const char *texts[] = {"", "identity/channel binding mismatch", "identity mismatch", "bad signature",
                                  "malformed handshake message", "timeout", "unexpected message", ""};
    size_t i;
    json_t *v;
    json_array_foreach(vs, i, v) {
        const char *name = el_vec_str(v, "name");
        assert_string_equal(el_vec_str(v, "fails_at"), "hs2");
        el_identity *ii = el_vec_identity(doc, el_vec_str(v, "initiator"));
        uint8_t fpi[32], fpr[32], ei[32], out[EL_HS_MSG_MAX];
        size_t n, hs2len;
        el_vec_hex32(el_vec_str(v, "fp_i_hex"), fpi);
        el_vec_hex32(el_vec_str(v, "fp_r_hex"), fpr);
        el_vec_hex32(el_vec_str(v, "e_i_priv_hex"), ei);
        el_hs *hs;
        assert_int_equal(el_hs_new(&hs, EL_HS_INITIATOR, ii, el_vec_str(v, "expected_peer_i"), fpi, fpr), EL_OK);
        assert_int_equal(el_hs_set_ephemeral(hs, ei), EL_OK);
        assert_int_equal(el_hs_start(hs, out, sizeof out, &n), EL_OK);
        el_vec_assert_hex(out, n, el_vec_str(v, "hs1_hex"), name);
        uint8_t *hs2 = el_vec_hex(el_vec_str(v, "hs2_hex"), &hs2len);
        el_hs_fail want = fail_code(el_vec_str(v, "expect_initiator"));
        int rc = el_hs_recv(hs, hs2, hs2len, out, sizeof out, &n);
        check_failed(hs, rc, out, n, want, hs2, hs2len, name);
        if (want != EL_HS_FAIL_ABORTED)
            assert_string_equal(el_hs_error(hs), texts[want]);
        else if (hs2[1] == 2)
            assert_string_equal(el_hs_error(hs), "peer aborted: identity mismatch");
        free(hs2);
        el_hs_free(hs);
        el_identity_free(ii);
    }
}

static void test_handshake_negative_responder(void **state)
{
    json_t *doc = *state;
    json_t *vs = el_vec_cases(doc, "handshake_negative_responder", 4);
    size_t i;
    json_t *v;
    json_array_foreach(vs, i, v) {
        const char *name = el_vec_str(v, "name");
        el_identity *rr = el_vec_identity(doc, el_vec_str(v, "responder"));
        uint8_t fpi[32], fpr[32], er[32], out[EL_HS_MSG_MAX];
        size_t n, hs1len;
        el_vec_hex32(el_vec_str(v, "fp_i_hex_r"), fpi);
        el_vec_hex32(el_vec_str(v, "fp_r_hex_r"), fpr);
        el_vec_hex32(el_vec_str(v, "e_r_priv_hex"), er);
        el_hs *hs;
        assert_int_equal(el_hs_new(&hs, EL_HS_RESPONDER, rr, el_vec_str(v, "expected_peer_r"), fpi, fpr), EL_OK);
        assert_int_equal(el_hs_set_ephemeral(hs, er), EL_OK);
        uint8_t *hs1 = el_vec_hex(el_vec_str(v, "hs1_hex"), &hs1len);
        el_hs_fail want = fail_code(el_vec_str(v, "expect_responder"));
        int rc = el_hs_recv(hs, hs1, hs1len, out, sizeof out, &n);
        if (strcmp(el_vec_str(v, "fails_at"), "hs1") == 0) {
            check_failed(hs, rc, out, n, want, hs1, hs1len, name);
        } else {
            assert_string_equal(el_vec_str(v, "fails_at"), "hs3");
            assert_int_equal(rc, EL_OK);
            if (el_vec_has(v, "hs2_hex"))
                el_vec_assert_hex(out, n, el_vec_str(v, "hs2_hex"), name);
            size_t hs3len;
            uint8_t *hs3 = el_vec_hex(el_vec_str(v, "hs3_hex"), &hs3len);
            rc = el_hs_recv(hs, hs3, hs3len, out, sizeof out, &n);
            check_failed(hs, rc, out, n, want, hs3, hs3len, name);
            free(hs3);
        }
        free(hs1);
        el_hs_free(hs);
        el_identity_free(rr);
    }
}

/* ---- in memory -------------------------------------------------------- */

typedef struct {
    el_identity *a, *b;
    el_hs *i, *r;
} pair;

static void pair_new(pair *p, const uint8_t fpi_i[32], const uint8_t fpr_i[32], const uint8_t fpi_r[32],
                     const uint8_t fpr_r[32])
{
    char err[128];
    assert_int_equal(el_identity_generate(&p->a, err, sizeof err), EL_OK);
    assert_int_equal(el_identity_generate(&p->b, err, sizeof err), EL_OK);
    assert_int_equal(el_hs_new(&p->i, EL_HS_INITIATOR, p->a, el_identity_peer_id(p->b), fpi_i, fpr_i), EL_OK);
    assert_int_equal(el_hs_new(&p->r, EL_HS_RESPONDER, p->b, el_identity_peer_id(p->a), fpi_r, fpr_r), EL_OK);
}

static void pair_free(pair *p)
{
    el_hs_free(p->i);
    el_hs_free(p->r);
    el_identity_free(p->a);
    el_identity_free(p->b);
}

static void test_in_memory_pair(void **state)
{
    (void)state;
    uint8_t fp[2][32], m[4][EL_HS_MSG_MAX];
    size_t n[4];
    RAND_bytes(&fp[0][0], sizeof fp);
    pair p;
    pair_new(&p, fp[0], fp[1], fp[0], fp[1]);
    /* the identities may be freed once the handshakes exist */
    el_fcipher *tx, *rx;
    assert_int_equal(el_hs_channel(p.i, "chat", &tx, &rx), EL_ERR_STATE);
    assert_null(tx);
    assert_int_equal(el_hs_start(p.i, m[0], sizeof m[0], &n[0]), EL_OK);
    assert_int_equal(n[0], EL_HS1_LEN);
    assert_int_equal(m[0][0], EL_HS1);
    assert_int_equal(el_hs_recv(p.r, m[0], n[0], m[1], sizeof m[1], &n[1]), EL_OK);
    assert_int_equal(n[1], EL_HS2_LEN);
    assert_int_equal(m[1][0], EL_HS2);
    assert_int_equal(el_hs_recv(p.i, m[1], n[1], m[2], sizeof m[2], &n[2]), EL_OK);
    assert_int_equal(n[2], EL_HS3_LEN);
    assert_int_equal(m[2][0], EL_HS3);
    assert_int_equal(el_hs_recv(p.r, m[2], n[2], m[3], sizeof m[3], &n[3]), EL_OK);
    assert_int_equal(n[3], 0);
    assert_true(el_hs_is_done(p.i) && el_hs_is_done(p.r));
    assert_memory_equal(el_hs_hash(p.i), el_hs_hash(p.r), 32);
    assert_memory_equal(el_hs_remote_bundle(p.i), el_identity_bundle(p.b), sizeof(el_id_bundle));
    assert_memory_equal(el_hs_remote_bundle(p.r), el_identity_bundle(p.a), sizeof(el_id_bundle));

    /* each direction of each channel works, and channels are independent */
    const char *labels[] = {"chat", "f:0123456789abcdef0123456789abcdef"};
    el_fcipher *c[2][2][2]; /* [label][side][tx/rx] */
    for (int l = 0; l < 2; l++) {
        assert_int_equal(el_hs_channel(p.i, labels[l], &c[l][0][0], &c[l][0][1]), EL_OK);
        assert_int_equal(el_hs_channel(p.r, labels[l], &c[l][1][0], &c[l][1][1]), EL_OK);
    }
    uint8_t f[64], back[64];
    size_t fl, bl;
    uint8_t fr[2][2][64];
    size_t frl[2][2];
    for (int l = 0; l < 2; l++)
        for (int side = 0; side < 2; side++)
            assert_int_equal(el_fcipher_seal(c[l][side][0], (const uint8_t *)"\x01hi", 3, fr[l][side],
                                             sizeof fr[l][side], &frl[l][side]), EL_OK);
    /* first every wrong opener (a rejected frame changes nothing) ... */
    for (int l = 0; l < 2; l++) {
        for (int side = 0; side < 2; side++) {
            assert_int_equal(el_fcipher_open(c[1 - l][1 - side][1], fr[l][side], frl[l][side], back,
                                             sizeof back, &bl), EL_ERR_CRYPTO);
            assert_int_equal(el_fcipher_open(c[l][side][1], fr[l][side], frl[l][side], back, sizeof back, &bl),
                             EL_ERR_CRYPTO);
        }
    }
    /* ... then the right one */
    for (int l = 0; l < 2; l++) {
        for (int side = 0; side < 2; side++) {
            assert_int_equal(el_fcipher_open(c[l][1 - side][1], fr[l][side], frl[l][side], back, sizeof back, &bl),
                             EL_OK);
            assert_memory_equal(back, "\x01hi", 3);
        }
    }
    memcpy(f, fr[0][0], frl[0][0]);
    fl = frl[0][0];
    for (int l = 0; l < 2; l++)
        for (int s = 0; s < 2; s++)
            for (int d = 0; d < 2; d++)
                el_fcipher_free(c[l][s][d]);
    /* frames are not the handshake's business: ignored, still done */
    assert_int_equal(el_hs_recv(p.r, f, fl, m[3], sizeof m[3], &n[3]), EL_ERR_STATE);
    assert_int_equal(n[3], 0);
    assert_true(el_hs_is_done(p.r));
    pair_free(&p);
}

/* A relay terminating DTLS on both sides: the prologues differ. */
static void test_mitm_binding(void **state)
{
    (void)state;
    uint8_t fp[4][32], m1[EL_HS_MSG_MAX], m2[EL_HS_MSG_MAX], m3[EL_HS_MSG_MAX], m4[EL_HS_MSG_MAX];
    size_t n1, n2, n3, n4;
    RAND_bytes(&fp[0][0], sizeof fp);
    pair p;
    pair_new(&p, fp[0], fp[1], fp[2], fp[3]);
    assert_int_equal(el_hs_start(p.i, m1, sizeof m1, &n1), EL_OK);
    assert_int_equal(el_hs_recv(p.r, m1, n1, m2, sizeof m2, &n2), EL_OK); /* R cannot tell yet */
    assert_int_equal(el_hs_recv(p.i, m2, n2, m3, sizeof m3, &n3), EL_ERR_CRYPTO);
    assert_int_equal(el_hs_failure(p.i), EL_HS_FAIL_BINDING);
    assert_string_equal(el_hs_error(p.i), "identity/channel binding mismatch");
    assert_int_equal(n3, 2);
    assert_int_equal(m3[0], EL_HS_ABORT);
    assert_int_equal(m3[1], 1);
    /* the responder receives the ABORT */
    assert_int_equal(el_hs_recv(p.r, m3, n3, m4, sizeof m4, &n4), EL_ERR_DENIED);
    assert_int_equal(n4, 0);
    assert_int_equal(el_hs_failure(p.r), EL_HS_FAIL_ABORTED);
    assert_int_equal(el_hs_peer_reason(p.r), 1);
    assert_string_equal(el_hs_error(p.r), "peer aborted: identity/channel binding mismatch");
    pair_free(&p);
}

/* The responder rejects HS3 after the initiator already considers itself
 * done: the ABORT must undo the initiator's success. */
static void test_abort_after_initiator_done(void **state)
{
    (void)state;
    char err[128];
    uint8_t fp[2][32], m1[EL_HS_MSG_MAX], m2[EL_HS_MSG_MAX], m3[EL_HS_MSG_MAX], m4[EL_HS_MSG_MAX];
    size_t n1, n2, n3, n4;
    RAND_bytes(&fp[0][0], sizeof fp);
    el_identity *a, *b, *c;
    assert_int_equal(el_identity_generate(&a, err, sizeof err), EL_OK);
    assert_int_equal(el_identity_generate(&b, err, sizeof err), EL_OK);
    assert_int_equal(el_identity_generate(&c, err, sizeof err), EL_OK);
    el_hs *i, *r;
    /* c initiates where b expects a */
    assert_int_equal(el_hs_new(&i, EL_HS_INITIATOR, c, el_identity_peer_id(b), fp[0], fp[1]), EL_OK);
    assert_int_equal(el_hs_new(&r, EL_HS_RESPONDER, b, el_identity_peer_id(a), fp[0], fp[1]), EL_OK);
    assert_int_equal(el_hs_start(i, m1, sizeof m1, &n1), EL_OK);
    assert_int_equal(el_hs_recv(r, m1, n1, m2, sizeof m2, &n2), EL_OK);
    assert_int_equal(el_hs_recv(i, m2, n2, m3, sizeof m3, &n3), EL_OK);
    assert_true(el_hs_is_done(i));
    assert_int_equal(el_hs_recv(r, m3, n3, m4, sizeof m4, &n4), EL_ERR_CRYPTO);
    assert_int_equal(el_hs_failure(r), EL_HS_FAIL_IDENTITY);
    assert_string_equal(el_hs_error(r), "identity mismatch");
    assert_int_equal(n4, 2);
    assert_int_equal(m4[1], 2);
    assert_int_equal(el_hs_recv(i, m4, n4, m1, sizeof m1, &n1), EL_ERR_DENIED);
    assert_false(el_hs_is_done(i));
    assert_null(el_hs_hash(i));
    assert_null(el_hs_remote_bundle(i));
    assert_string_equal(el_hs_error(i), "peer aborted: identity mismatch");
    el_fcipher *tx, *rx;
    assert_int_equal(el_hs_channel(i, "chat", &tx, &rx), EL_ERR_STATE);
    el_hs_free(i);
    el_hs_free(r);
    el_identity_free(a);
    el_identity_free(b);
    el_identity_free(c);
}

static void test_wrong_message_wrong_time(void **state)
{
    (void)state;
    uint8_t fp[2][32], m1[EL_HS_MSG_MAX], m2[EL_HS_MSG_MAX], m3[EL_HS_MSG_MAX], o[EL_HS_MSG_MAX];
    size_t n1, n2, n3, on;
    RAND_bytes(&fp[0][0], sizeof fp);

    /* a real transcript to replay at the wrong moments */
    pair p;
    pair_new(&p, fp[0], fp[1], fp[0], fp[1]);
    uint8_t e[32];
    RAND_bytes(e, sizeof e);
    assert_int_equal(el_hs_start(p.i, m1, sizeof m1, &n1), EL_OK);
    assert_int_equal(el_hs_set_ephemeral(p.i, e), EL_ERR_STATE); /* too late */
    assert_int_equal(el_hs_start(p.i, o, sizeof o, &on), EL_ERR_STATE);
    assert_int_equal(on, 0);
    assert_int_equal(el_hs_start(p.r, o, sizeof o, &on), EL_ERR_STATE);
    assert_int_equal(el_hs_recv(p.r, m1, n1, m2, sizeof m2, &n2), EL_OK);
    assert_int_equal(el_hs_recv(p.i, m2, n2, m3, sizeof m3, &n3), EL_OK);

    struct {
        el_hs_role role;
        int fed; /* 0: fresh; 1: initiator started / responder got HS1 */
        const uint8_t *msg;
        size_t len;
    } cases[] = {
        {EL_HS_RESPONDER, 0, m3, 0},          /* HS3 first */
        {EL_HS_RESPONDER, 0, m2, 0},          /* HS2 to a responder */
        {EL_HS_RESPONDER, 1, m1, 0},          /* HS1 twice */
        {EL_HS_INITIATOR, 1, m1, 0},          /* HS1 to an initiator */
        {EL_HS_INITIATOR, 1, m3, 0},          /* HS3 to an initiator */
        {EL_HS_INITIATOR, 0, m2, 0},          /* HS2 before start */
        {EL_HS_INITIATOR, 1, (const uint8_t *)"\x04\x01\x00", 3}, /* ABORT of the wrong length */
        {EL_HS_RESPONDER, 0, (const uint8_t *)"", 0},            /* empty */
        {EL_HS_RESPONDER, 0, m1, 1},          /* type byte only */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        el_hs *hs;
        const el_identity *self = cases[k].role == EL_HS_INITIATOR ? p.a : p.b;
        const el_identity *peer = cases[k].role == EL_HS_INITIATOR ? p.b : p.a;
        assert_int_equal(el_hs_new(&hs, cases[k].role, self, el_identity_peer_id(peer), fp[0], fp[1]), EL_OK);
        if (cases[k].fed && cases[k].role == EL_HS_INITIATOR)
            assert_int_equal(el_hs_start(hs, o, sizeof o, &on), EL_OK);
        if (cases[k].fed && cases[k].role == EL_HS_RESPONDER)
            assert_int_equal(el_hs_recv(hs, m1, n1, o, sizeof o, &on), EL_OK);
        size_t len = cases[k].len ? cases[k].len
                   : cases[k].msg == m1 ? n1 : cases[k].msg == m2 ? n2 : cases[k].msg == m3 ? n3 : 0;
        if (cases[k].msg == m1 && cases[k].len == 1)
            len = 1;
        int rc = el_hs_recv(hs, cases[k].msg, len, o, sizeof o, &on);
        if (rc != EL_ERR_STATE || el_hs_failure(hs) != EL_HS_FAIL_UNEXPECTED)
            fail_msg("case %zu: rc %d, failure %d", k, rc, el_hs_failure(hs));
        assert_int_equal(on, 2);
        assert_int_equal(o[0], EL_HS_ABORT);
        assert_int_equal(o[1], 6);
        assert_string_equal(el_hs_error(hs), "unexpected message");
        el_hs_free(hs);
    }
    pair_free(&p);
}

static void test_timeout_and_abort_reasons(void **state)
{
    (void)state;
    uint8_t fp[2][32], o[EL_HS_MSG_MAX], m[EL_HS_MSG_MAX];
    size_t on, mn;
    RAND_bytes(&fp[0][0], sizeof fp);
    pair p;
    pair_new(&p, fp[0], fp[1], fp[0], fp[1]);

    /* initiator after start: the timer fires */
    assert_int_equal(el_hs_start(p.i, m, sizeof m, &mn), EL_OK);
    assert_int_equal(el_hs_timeout(p.i, o, 1, &on), EL_ERR_TOO_LARGE); /* no room: nothing changes */
    assert_int_equal(el_hs_failure(p.i), EL_HS_FAIL_NONE);
    assert_int_equal(el_hs_timeout(p.i, o, sizeof o, &on), EL_OK);
    assert_int_equal(on, 2);
    assert_int_equal(o[0], EL_HS_ABORT);
    assert_int_equal(o[1], 5);
    assert_int_equal(el_hs_failure(p.i), EL_HS_FAIL_TIMEOUT);
    assert_string_equal(el_hs_error(p.i), "timeout");
    assert_int_equal(el_hs_timeout(p.i, o, sizeof o, &on), EL_ERR_STATE);
    assert_int_equal(on, 0);
    /* the responder learns it */
    assert_int_equal(el_hs_recv(p.r, o, 2, m, sizeof m, &mn), EL_ERR_DENIED);
    assert_string_equal(el_hs_error(p.r), "peer aborted: timeout");
    assert_int_equal(el_hs_peer_reason(p.r), 5);
    pair_free(&p);

    /* a responder that never got HS1 times out too; an unknown reason byte */
    pair_new(&p, fp[0], fp[1], fp[0], fp[1]);
    assert_int_equal(el_hs_timeout(p.r, o, sizeof o, &on), EL_OK);
    assert_int_equal(el_hs_failure(p.r), EL_HS_FAIL_TIMEOUT);
    assert_int_equal(el_hs_start(p.i, m, sizeof m, &mn), EL_OK);
    assert_int_equal(el_hs_recv(p.i, (const uint8_t *)"\x04\xc8", 2, m, sizeof m, &mn), EL_ERR_DENIED);
    assert_string_equal(el_hs_error(p.i), "peer aborted: reason 200");
    assert_int_equal(el_hs_peer_reason(p.i), 200);
    pair_free(&p);

    /* done: the timer is too late */
    pair_new(&p, fp[0], fp[1], fp[0], fp[1]);
    uint8_t a[EL_HS_MSG_MAX], b[EL_HS_MSG_MAX];
    size_t an, bn;
    assert_int_equal(el_hs_start(p.i, a, sizeof a, &an), EL_OK);
    assert_int_equal(el_hs_recv(p.r, a, an, b, sizeof b, &bn), EL_OK);
    /* too small an output buffer is refused before anything happens */
    assert_int_equal(el_hs_recv(p.i, b, bn, a, EL_HS_MSG_MAX - 1, &an), EL_ERR_TOO_LARGE);
    assert_int_equal(el_hs_failure(p.i), EL_HS_FAIL_NONE);
    assert_int_equal(el_hs_recv(p.i, b, bn, a, sizeof a, &an), EL_OK);
    assert_int_equal(el_hs_timeout(p.i, o, sizeof o, &on), EL_ERR_STATE);
    assert_true(el_hs_is_done(p.i));
    pair_free(&p);
}

static void test_labels_and_args(void **state)
{
    json_t *doc = *state;
    assert_true(el_hs_valid_label("chat"));
    assert_true(el_hs_valid_label("f:0123456789abcdef0123456789abcdef"));
    assert_false(el_hs_valid_label("f:0123456789ABCDEF0123456789abcdef"));
    assert_false(el_hs_valid_label("f:0123456789abcdef0123456789abcde"));
    assert_false(el_hs_valid_label("f:0123456789abcdef0123456789abcdef0"));
    assert_false(el_hs_valid_label("f:0123456789abcdef0123456789abcdeg"));
    assert_false(el_hs_valid_label("Chat"));
    assert_false(el_hs_valid_label("chat "));
    assert_false(el_hs_valid_label(""));
    assert_false(el_hs_valid_label(NULL));

    uint8_t fp[32] = {0};
    el_identity *a = el_vec_identity(doc, "alice");
    el_hs *hs = (el_hs *)1;
    assert_int_equal(el_hs_new(&hs, EL_HS_INITIATOR, a, "not-a-peer-id", fp, fp), EL_ERR_INVALID);
    assert_null(hs);
    assert_int_equal(el_hs_new(&hs, EL_HS_INITIATOR, NULL, el_identity_peer_id(a), fp, fp), EL_ERR_INVALID);
    assert_int_equal(el_hs_new(&hs, EL_HS_INITIATOR, a, el_identity_peer_id(a), NULL, fp), EL_ERR_INVALID);
    assert_int_equal(el_hs_new(&hs, EL_HS_RESPONDER, a, el_identity_peer_id(a), fp, fp), EL_OK);
    el_identity_free(a); /* the handshake keeps its own copies */
    el_fcipher *tx, *rx;
    assert_int_equal(el_hs_channel(hs, "bogus", &tx, &rx), EL_ERR_INVALID);
    assert_int_equal(el_hs_channel(hs, "chat", &tx, &rx), EL_ERR_STATE);
    assert_int_equal(el_hs_role_of(hs), EL_HS_RESPONDER);
    assert_int_equal(el_hs_peer_reason(hs), -1);
    el_hs_free(hs);
    el_hs_free(NULL);
}

static void test_fuzz_corpus(void **state)
{
    json_t *doc = *state;
    el_vec_run_corpus("hs", el_fuzz_check_hs, 10);
    /* the fixture's transcript is e2ee.json's alice->bob */
    json_t *v = json_array_get(json_object_get(doc, "handshake"), 0);
    const el_fuzz_hs_fixture *fx = el_fuzz_hs_fx();
    el_vec_assert_hex(fx->hs1, EL_HS1_LEN, el_vec_str(v, "hs1_hex"), "fixture hs1");
    el_vec_assert_hex(fx->hs2, EL_HS2_LEN, el_vec_str(v, "hs2_hex"), "fixture hs2");
    el_vec_assert_hex(fx->hs3, EL_HS3_LEN, el_vec_str(v, "hs3_hex"), "fixture hs3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_vectors),
        cmocka_unit_test(test_handshake_negative_initiator),
        cmocka_unit_test(test_handshake_negative_responder),
        cmocka_unit_test(test_in_memory_pair),
        cmocka_unit_test(test_mitm_binding),
        cmocka_unit_test(test_abort_after_initiator_done),
        cmocka_unit_test(test_wrong_message_wrong_time),
        cmocka_unit_test(test_timeout_and_abort_reasons),
        cmocka_unit_test(test_labels_and_args),
        cmocka_unit_test(test_fuzz_corpus),
    };
    return cmocka_run_group_tests(tests, el_vec_setup_e2ee, el_vec_teardown);
}
